//! WRITE_BLOCK: the write pipeline, client -> dn1 -> dn2 -> dn3, acks flowing back.
//!
//! Each node creates an rbw replica, connects to the next node (if any) and answers its
//! upstream with the downstream's verdict. Then two halves run side by side:
//!
//! - the **receiver** reads a packet from upstream, verifies its checksums, forwards it
//!   downstream and hands it to the replica's **writer**, a blocking thread for the whole
//!   block that appends it to the replica (starting writeback every 8 MiB when replicas are
//!   fsynced at close) and tells the responder, in packet order; the LAST packet finalizes
//!   the replica first. The receiver reads the next packet while the writer writes;
//! - the **responder** waits for the downstream ack of that packet and sends upstream
//!   `[own status] ++ downstream statuses`.
//!
//! Between them is a channel of a few packets: memory per connection is one packet buffer
//! plus that bound. Any failure ends the operation; the unfinished replica removes itself
//! when dropped and closing the sockets tells the neighbours.
//!
//! [`transfer_replica`] is the sending end, used to copy a finalized replica to other
//! datanodes (a namenode's Transfer command) through the same pipeline.

use super::{reply_error, XferContext, CONNECT_TIMEOUT, IO_TIMEOUT};
use crate::error::DatanodeError;
use crate::store::{RbwReplica, Store};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tusk_proto::client::{DatanodeInfo, ExtendedBlock};
use tusk_proto::data_transfer::{
    self, Ack, Opcode, PacketHeader, ACK_ERROR, ACK_ERROR_CHECKSUM, ACK_SUCCESS, FLAG_LAST, FLAG_SYNC, MAX_PACKET_DATA,
};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, WriteBlockRequest, WriteStage};

/// Longest pipeline accepted (an ack carries one status byte per node, at most 255).
const MAX_PIPELINE: usize = 64;
/// Packets received but not yet acknowledged upstream, per connection.
const MAX_PACKETS_IN_FLIGHT: usize = 8;
/// Data written to a replica between two starts of its writeback (when replicas are fsynced
/// at close; HDFS's sync-behind-writes uses 8 MiB too).
const WRITEBACK_BYTES: u64 = 8 << 20;
/// Read buffer on the upstream socket: a packet and a bit.
const SOCKET_BUFFER: usize = 128 << 10;

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("timed out waiting for {what}"))
}

pub async fn write_block(mut upstream: TcpStream, req: WriteBlockRequest, ctx: &Arc<XferContext>) -> io::Result<()> {
    let Some(block) = req.block else {
        return reply_error(&mut upstream, OpStatus::OpErrorInvalid, "WriteBlockRequest without a block").await;
    };
    let stage = WriteStage::try_from(req.stage).unwrap_or(WriteStage::Unspecified);
    if !matches!(
        stage,
        WriteStage::PipelineSetupCreate
            | WriteStage::TransferFinalized
            | WriteStage::PipelineSetupStreamingRecovery
            | WriteStage::PipelineSetupAppend
            | WriteStage::TransferRbw
    ) {
        let msg = format!("unsupported write stage {}", req.stage);
        return reply_error(&mut upstream, OpStatus::OpErrorInvalid, &msg).await;
    }
    if req.targets.len() >= MAX_PIPELINE {
        let msg = format!("pipeline of {} datanodes is too long", req.targets.len() + 1);
        return reply_error(&mut upstream, OpStatus::OpErrorInvalid, &msg).await;
    }
    let (block_id, genstamp) = (block.block_id, block.generation_stamp);
    let (old_gs, acked) = (req.old_generation_stamp, req.bytes_acked);
    let store = Arc::clone(&ctx.store);
    let created = tokio::task::spawn_blocking(move || match stage {
        WriteStage::PipelineSetupStreamingRecovery => store.recover_rbw(block_id, old_gs, genstamp, acked),
        WriteStage::PipelineSetupAppend => store.reopen_for_append(block_id, old_gs, genstamp, acked),
        // A client's unfinished replica stays for recovery; a re-replication's does not.
        _ => store.create_rbw(block_id, genstamp, stage != WriteStage::TransferFinalized),
    })
    .await
    .map_err(io::Error::other)?;
    let rbw = match created {
        Ok(r) => r,
        Err(e @ DatanodeError::ReplicaExists { .. }) => {
            return reply_error(&mut upstream, OpStatus::OpErrorExists, &e.to_string()).await
        }
        Err(e) => {
            tracing::warn!("cannot create replica: {e}");
            return reply_error(&mut upstream, OpStatus::OpError, &e.to_string()).await;
        }
    };
    let mut downstream = None;
    if let Some(next) = req.targets.first() {
        let next_req = WriteBlockRequest {
            block: Some(block),
            targets: req.targets[1..].to_vec(),
            client_name: req.client_name.clone(),
            stage: req.stage,
            old_generation_stamp: req.old_generation_stamp,
            bytes_acked: req.bytes_acked,
        };
        match connect_pipeline(next, &next_req).await {
            Ok(s) => downstream = Some(s),
            Err(resp) => {
                tracing::warn!(first_bad_link = %resp.first_bad_link, "pipeline setup failed: {}", resp.message);
                // A new replica nobody wrote to goes; a reopened one stays for the next try.
                if matches!(stage, WriteStage::PipelineSetupCreate | WriteStage::TransferFinalized) {
                    rbw.discard();
                }
                return data_transfer::write_msg(&mut upstream, &resp).await;
            }
        }
    }
    let ok = BlockOpResponse { status: OpStatus::OpSuccess as i32, ..Default::default() };
    data_transfer::write_msg(&mut upstream, &ok).await?;
    // A replica copied to a datanode joining a pipeline stays unfinished: the client's
    // recovery setup takes it over next.
    let finalize = stage != WriteStage::TransferRbw;
    match run_pipeline(upstream, downstream, rbw, finalize).await {
        Ok(len) => {
            tracing::info!(len, client = %req.client_name, "received block");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(client = %req.client_name, "write aborted: {e}");
            Ok(())
        }
    }
}

/// Connects to the next datanode and sends it the op. `Err` is the answer for upstream:
/// OP_ERROR with the first bad link of the pipeline.
async fn connect_pipeline(next: &DatanodeInfo, req: &WriteBlockRequest) -> Result<TcpStream, BlockOpResponse> {
    let addr = format!("{}:{}", next.ip_addr, next.xfer_port);
    let fail = |first_bad_link: String, message: String| BlockOpResponse {
        status: OpStatus::OpError as i32,
        message,
        first_bad_link,
        ..Default::default()
    };
    let setup = async {
        let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| timed_out("connect"))??;
        s.set_nodelay(true)?;
        data_transfer::write_op(&mut s, Opcode::WriteBlock, req).await?;
        let resp: BlockOpResponse = tokio::time::timeout(IO_TIMEOUT, data_transfer::read_msg(&mut s))
            .await
            .map_err(|_| timed_out("the pipeline setup answer"))??;
        Ok::<_, io::Error>((s, resp))
    };
    match setup.await {
        Err(e) => Err(fail(addr.clone(), format!("cannot connect to datanode {addr}: {e}"))),
        Ok((s, resp)) if resp.status == OpStatus::OpSuccess as i32 => Ok(s),
        Ok((_, resp)) => {
            let link = if resp.first_bad_link.is_empty() { addr.clone() } else { resp.first_bad_link };
            Err(fail(link, format!("datanode {addr} refused the pipeline: {}", resp.message)))
        }
    }
}

/// What the receiver did with downstream for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forward {
    NoDownstream,
    Sent,
    Failed,
}

/// The receiver's word to the responder about one packet.
#[derive(Debug)]
struct Received {
    seqno: u64,
    status: u8,
    forward: Forward,
    last: bool,
    /// Replica length after this packet.
    len: u64,
}

/// Runs receiver and responder until the last packet is acknowledged; returns the length.
async fn run_pipeline(
    upstream: TcpStream,
    downstream: Option<TcpStream>,
    rbw: RbwReplica,
    finalize: bool,
) -> Result<u64, String> {
    let (up_r, up_w) = upstream.into_split();
    let (down_r, down_w) = match downstream {
        Some(s) => {
            let (r, w) = s.into_split();
            (Some(BufReader::new(r)), Some(w))
        }
        None => (None, None),
    };
    let (tx, rx) = mpsc::channel(MAX_PACKETS_IN_FLIGHT);
    let receiver = receive(BufReader::with_capacity(SOCKET_BUFFER, up_r), down_w, rbw, tx, finalize);
    let responder = respond(down_r, up_w, rx);
    tokio::pin!(receiver, responder);
    tokio::select! {
        // The responder ends first only after the last ack or on a failure; either way the
        // receiver has nothing left to do (dropping it removes an unfinished replica).
        r = &mut responder => r,
        r = &mut receiver => {
            let acked = responder.await;
            r?;
            acked
        }
    }
}

/// A packet on its way from the receiver to the replica's writer thread.
struct ToWrite {
    seqno: u64,
    /// ACK_SUCCESS, or the receiver's verdict on a packet it refused: the writer passes it
    /// on to the responder in packet order and stops.
    status: u8,
    offset: u64,
    sync: bool,
    last: bool,
    forward: Forward,
    data: Vec<u8>,
    sums: Vec<u8>,
}

/// Reads packets from upstream, checks and forwards them, and hands them to the replica's
/// writer (a blocking thread, [`write_replica`]) so that the next packet is read and
/// forwarded while this one goes to disk. The writer tells the responder; its buffers come
/// back for the next packets.
async fn receive(
    mut up: BufReader<OwnedReadHalf>,
    mut down: Option<OwnedWriteHalf>,
    rbw: RbwReplica,
    acks: mpsc::Sender<Received>,
    finalize: bool,
) -> Result<u64, String> {
    let fence = rbw.fence();
    // Replica length once every packet handed to the writer is written: the offsets the
    // next packet may start at. The writer checks them again against the replica itself.
    let mut len = rbw.len();
    let (jobs_tx, jobs_rx) = mpsc::channel::<ToWrite>(MAX_PACKETS_IN_FLIGHT);
    let (spare_tx, mut spare_rx) = mpsc::channel::<(Vec<u8>, Vec<u8>)>(MAX_PACKETS_IN_FLIGHT + 1);
    let writer = tokio::task::spawn_blocking(move || write_replica(rbw, jobs_rx, acks, spare_tx, finalize));
    let outcome = async {
        loop {
            let (mut data, mut sums) =
                spare_rx.try_recv().unwrap_or_else(|_| (Vec::with_capacity(MAX_PACKET_DATA), Vec::new()));
            let read = tokio::time::timeout(IO_TIMEOUT, data_transfer::read_packet(&mut up, &mut sums, &mut data));
            let header = tokio::select! {
                r = read => r
                    .map_err(|_| "timed out waiting for a packet".to_string())?
                    .map_err(|e| format!("reading a packet from upstream: {e}"))?,
                _ = fence.wake.notified() => return Err("a recovery took the replica over".to_string()),
            };
            let seqno = header.seqno;
            // A refused packet goes to the writer too, so the responder hears of it after
            // every earlier packet's verdict.
            let fail = |status: u8, forward: Forward| ToWrite {
                seqno,
                status,
                offset: 0,
                sync: false,
                last: false,
                forward,
                data: Vec::new(),
                sums: Vec::new(),
            };
            if !crate::store::accepts_offset(len, header.offset_in_block) {
                let _ = jobs_tx.send(fail(ACK_ERROR, Forward::NoDownstream)).await;
                return Err(format!("packet {seqno} at offset {}, expected {len}", header.offset_in_block));
            }
            if let Err(chunk) = data_transfer::verify_checksums(&data, &sums) {
                let _ = jobs_tx.send(fail(ACK_ERROR_CHECKSUM, Forward::NoDownstream)).await;
                return Err(format!("checksum mismatch in packet {seqno}, chunk {chunk}"));
            }
            let mut forward = Forward::NoDownstream;
            if let Some(d) = down.as_mut() {
                let sent =
                    tokio::time::timeout(IO_TIMEOUT, data_transfer::write_packet(d, &header, &sums, &data)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    let _ = jobs_tx.send(fail(ACK_SUCCESS, Forward::Failed)).await;
                    return Err(format!("forwarding packet {seqno} downstream failed"));
                }
                forward = Forward::Sent;
            }
            metrics::counter!("datanode_bytes_written_total").increment(data.len() as u64);
            let last = header.is_last();
            len = header.offset_in_block + data.len() as u64;
            let job = ToWrite {
                seqno,
                status: ACK_SUCCESS,
                offset: header.offset_in_block,
                sync: header.flags & FLAG_SYNC != 0,
                last,
                forward,
                data,
                sums,
            };
            // A closed channel means the writer stopped on an error it has already reported.
            jobs_tx.send(job).await.map_err(|_| "the replica's writer stopped".to_string())?;
            if last {
                if let Some(d) = down.as_mut() {
                    let _ = d.flush().await;
                }
                return Ok(());
            }
        }
    };
    let outcome = outcome.await;
    // The writer ends once every packet handed to it is written (or on its first error).
    drop(jobs_tx);
    let written = writer.await.map_err(|e| format!("write task failed: {e}"))?;
    outcome?;
    written
}

/// The replica's writer: writes each packet at its offset (hsync when asked), finalizes the
/// replica with the last one, and tells the responder, in packet order. Runs on a blocking
/// thread for the whole block, not one hand-off per packet. Returns the replica's length.
fn write_replica(
    mut replica: RbwReplica,
    mut jobs: mpsc::Receiver<ToWrite>,
    acks: mpsc::Sender<Received>,
    spare: mpsc::Sender<(Vec<u8>, Vec<u8>)>,
    finalize: bool,
) -> Result<u64, String> {
    // Start of the data not yet handed to writeback.
    let mut writeback_from = replica.len();
    while let Some(job) = jobs.blocking_recv() {
        let ToWrite { seqno, status, offset, sync, last, forward, data, sums } = job;
        if status != ACK_SUCCESS || forward == Forward::Failed {
            let _ = acks.blocking_send(Received { seqno, status, forward, last: false, len: 0 });
            return Err(format!("packet {seqno} refused"));
        }
        let mut written = replica.write_at(offset, &data, &sums).map(|_| replica.len());
        if sync && written.is_ok() {
            written = replica.sync().map(|_| replica.len());
        }
        let _ = spare.try_send((data, sums));
        if written.is_ok() && !last && replica.len() >= writeback_from + WRITEBACK_BYTES {
            written = replica.start_writeback(writeback_from).map(|_| replica.len());
            writeback_from = replica.len();
        }
        let len = match written {
            Ok(len) => len,
            Err(e) => {
                tracing::warn!("local write failed: {e}");
                let _ = acks.blocking_send(Received { seqno, status: ACK_ERROR, forward, last: false, len: 0 });
                return Err(e.to_string());
            }
        };
        if last {
            let done = if finalize { replica.finalize().map(|info| info.len) } else { Ok(len) };
            return match done {
                Ok(len) => {
                    acks.blocking_send(Received { seqno, status: ACK_SUCCESS, forward, last, len })
                        .map_err(|_| "responder stopped".to_string())?;
                    Ok(len)
                }
                Err(e) => {
                    tracing::warn!("finalizing the replica failed: {e}");
                    let _ = acks.blocking_send(Received { seqno, status: ACK_ERROR, forward, last: false, len: 0 });
                    Err(e.to_string())
                }
            };
        }
        acks.blocking_send(Received { seqno, status: ACK_SUCCESS, forward, last, len })
            .map_err(|_| "responder stopped".to_string())?;
    }
    // Upstream stopped before the last packet: the unfinished replica is dropped (removed,
    // or kept for a recovery) here.
    Err("upstream stopped before the last packet".into())
}

async fn respond(
    mut down: Option<BufReader<OwnedReadHalf>>,
    mut up: OwnedWriteHalf,
    mut received: mpsc::Receiver<Received>,
) -> Result<u64, String> {
    while let Some(r) = received.recv().await {
        let mut statuses = vec![r.status];
        let mut problem = None;
        match (r.forward, down.as_mut()) {
            (Forward::Sent, Some(d)) => match tokio::time::timeout(IO_TIMEOUT, data_transfer::read_ack(d)).await {
                Ok(Ok(ack)) if ack.seqno == r.seqno && ack.statuses.len() < MAX_PIPELINE => {
                    statuses.extend_from_slice(&ack.statuses)
                }
                Ok(Ok(ack)) => {
                    statuses.push(ACK_ERROR);
                    problem = Some(format!(
                        "downstream acked seqno {} with {} statuses, expected seqno {}",
                        ack.seqno,
                        ack.statuses.len(),
                        r.seqno
                    ));
                }
                Ok(Err(e)) => {
                    statuses.push(ACK_ERROR);
                    problem = Some(format!("reading the downstream ack: {e}"));
                }
                Err(_) => {
                    statuses.push(ACK_ERROR);
                    problem = Some("timed out waiting for the downstream ack".into());
                }
            },
            (Forward::Failed, _) => statuses.push(ACK_ERROR),
            _ => {}
        }
        let ack = Ack { seqno: r.seqno, statuses };
        let ok = ack.ok();
        tokio::time::timeout(IO_TIMEOUT, data_transfer::write_ack(&mut up, &ack))
            .await
            .map_err(|_| "timed out sending an ack upstream".to_string())?
            .map_err(|e| format!("sending an ack upstream: {e}"))?;
        if !ok {
            return Err(problem.unwrap_or_else(|| format!("packet {} failed: statuses {:?}", r.seqno, ack.statuses)));
        }
        if r.last {
            return Ok(r.len);
        }
    }
    Err("upstream stopped before the last packet".into())
}

/// Copies a finalized replica to `targets` with stage TRANSFER_FINALIZED, acting as the
/// client of a pipeline. Returns the bytes sent.
pub async fn transfer_replica(
    store: Arc<Store>,
    block_id: u64,
    targets: Vec<DatanodeInfo>,
    client_name: String,
) -> Result<u64, String> {
    transfer(store, block_id, targets, client_name, None).await
}

/// Copies the first `len` bytes of a replica being written (stamp at least `genstamp`) to
/// `targets` with stage TRANSFER_RBW, for a datanode joining a client's pipeline.
pub async fn transfer_rbw(
    store: Arc<Store>,
    block_id: u64,
    genstamp: u64,
    len: u64,
    targets: Vec<DatanodeInfo>,
    client_name: String,
) -> Result<u64, String> {
    transfer(store, block_id, targets, client_name, Some((genstamp, len))).await
}

async fn transfer(
    store: Arc<Store>,
    block_id: u64,
    targets: Vec<DatanodeInfo>,
    client_name: String,
    rbw: Option<(u64, u64)>,
) -> Result<u64, String> {
    let Some(first) = targets.first() else {
        return Err("no targets".into());
    };
    let reader = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || store.open_reader(block_id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    let info = reader.info;
    let (stage, len) = match rbw {
        None if info.state != crate::replica_index::ReplicaState::Finalized => {
            return Err(format!("replica of block {block_id} is not finalized"));
        }
        None => (WriteStage::TransferFinalized, info.len),
        // A pipeline recovery that failed half-way may have moved it to a newer stamp.
        Some((gs, _)) if info.genstamp < gs => {
            return Err(format!("replica of block {block_id} has stamp {}, older than {gs}", info.genstamp));
        }
        Some((_, len)) if len > info.len => {
            return Err(format!("replica of block {block_id} has {} bytes, fewer than {len}", info.len));
        }
        Some((_, len)) => (WriteStage::TransferRbw, len),
    };
    let req = WriteBlockRequest {
        block: Some(ExtendedBlock { block_id, generation_stamp: info.genstamp, num_bytes: len }),
        targets: targets[1..].to_vec(),
        client_name,
        stage: stage as i32,
        ..Default::default()
    };
    let stream = connect_pipeline(first, &req).await.map_err(|resp| resp.message)?;
    let (r, mut w) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<(u64, bool)>(MAX_PACKETS_IN_FLIGHT);
    let acker = tokio::spawn(async move {
        let mut r = BufReader::new(r);
        while let Some((seqno, last)) = rx.recv().await {
            let ack = tokio::time::timeout(IO_TIMEOUT, data_transfer::read_ack(&mut r))
                .await
                .map_err(|_| "timed out waiting for an ack".to_string())?
                .map_err(|e| format!("reading an ack: {e}"))?;
            if ack.seqno != seqno || !ack.ok() {
                return Err(format!("ack {} with statuses {:?} for packet {seqno}", ack.seqno, ack.statuses));
            }
            if last {
                return Ok(());
            }
        }
        Err("sender stopped early".to_string())
    });
    let sent = async {
        let mut reader = Some(reader);
        let mut bufs = Some((Vec::with_capacity(MAX_PACKET_DATA), Vec::new()));
        let (mut pos, mut seqno) = (0u64, 0u64);
        while pos < len {
            let n = (len - pos).min(MAX_PACKET_DATA as u64) as usize;
            let (Some(mut rd), Some((mut data, mut sums))) = (reader.take(), bufs.take()) else {
                return Err("reader lost".to_string());
            };
            let (rd, data, sums, res) = tokio::task::spawn_blocking(move || {
                let res = rd.read(pos, n, &mut data, &mut sums);
                (rd, data, sums, res)
            })
            .await
            .map_err(|e| e.to_string())?;
            res.map_err(|e| e.to_string())?;
            let header = PacketHeader { data_len: n as u32, offset_in_block: pos, seqno, flags: 0 };
            tx.send((seqno, false)).await.map_err(|_| "pipeline failed".to_string())?;
            data_transfer::write_packet(&mut w, &header, &sums, &data).await.map_err(|e| e.to_string())?;
            pos += n as u64;
            seqno += 1;
            reader = Some(rd);
            bufs = Some((data, sums));
        }
        let last = PacketHeader { data_len: 0, offset_in_block: pos, seqno, flags: FLAG_LAST };
        tx.send((seqno, true)).await.map_err(|_| "pipeline failed".to_string())?;
        data_transfer::write_packet(&mut w, &last, &[], &[]).await.map_err(|e| e.to_string())?;
        w.flush().await.map_err(|e| e.to_string())
    };
    let sent = sent.await;
    // Ends the acker's wait if the sender stopped early.
    drop(tx);
    let acked = acker.await.map_err(|e| e.to_string())?;
    sent?;
    acked?;
    Ok(len)
}
