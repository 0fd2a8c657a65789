//! One block written through a datanode pipeline: the client sends packets to the first
//! datanode, which forwards them down the pipeline; acks flow back on the same connection and
//! a responder task matches them, in order, against the packets still in flight.
//!
//! Every packet sent stays in the writer's unacknowledged queue until its ack arrives, so
//! when the pipeline breaks (a datanode dies, an error ack) nothing is lost: the caller
//! ([`crate::FileWriter`]) takes the writer apart ([`BlockWriter::into_leftover`]), drops the
//! datanode the failure points at, and builds a new pipeline from the survivors under a new
//! generation stamp ([`BlockWriter::setup`] with [`Stage::Recovery`]); the survivors cut
//! their replicas back to what every node acknowledged and the queue is sent again.

use crate::error::ClientError;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tusk_proto::client::{DatanodeInfo, ExtendedBlock, LocatedBlock};
use tusk_proto::data_transfer::{
    chunk_checksums, read_ack, read_msg, write_op, write_packet, Ack, Opcode, PacketHeader, ACK_ERROR_CHECKSUM,
    ACK_SUCCESS, BYTES_PER_CHECKSUM, FLAG_LAST, FLAG_SYNC, MAX_PACKET_DATA,
};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, TransferBlockRequest, WriteBlockRequest, WriteStage};

/// How long connecting to a datanode may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read (a response, a packet, an ack) or one packet write may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Packets sent but not yet acknowledged. With 64 KiB packets this bounds a writer's
/// outstanding data at about 5 MiB however large the file.
pub(crate) const MAX_PACKETS_IN_FLIGHT: usize = 80;

/// `ip:port` of a datanode's data transfer service.
pub(crate) fn xfer_addr(dn: &DatanodeInfo) -> String {
    let host = if dn.ip_addr.is_empty() { dn.hostname.as_str() } else { dn.ip_addr.as_str() };
    if host.contains(':') {
        format!("[{host}]:{}", dn.xfer_port)
    } else {
        format!("{host}:{}", dn.xfer_port)
    }
}

/// The HDFS-style name of a block, as users see it in errors and fsck.
pub(crate) fn block_name(b: &ExtendedBlock) -> String {
    format!("blk_{}_{}", b.block_id, b.generation_stamp)
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// Connects to a datanode's data transfer port, bounded by [`CONNECT_TIMEOUT`].
pub(crate) async fn connect_datanode(dn: &DatanodeInfo) -> io::Result<TcpStream> {
    let addr = xfer_addr(dn);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
        .await
        .map_err(|_| timed_out(&format!("connect to {addr}")))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs `fut` with [`IO_TIMEOUT`], turning an elapsed timer into an `io::Error`.
pub(crate) async fn timed<T>(what: &str, fut: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(IO_TIMEOUT, fut).await.map_err(|_| timed_out(what))?
}

/// Has `source` (a datanode of the pipeline) copy the first `block.num_bytes` bytes of its
/// replica being written to `target`, which joins the pipeline next.
pub(crate) async fn copy_replica(
    source: &DatanodeInfo,
    block: ExtendedBlock,
    target: &DatanodeInfo,
    client_name: &str,
) -> std::result::Result<(), String> {
    let addr = xfer_addr(source);
    let stream = connect_datanode(source).await.map_err(|e| format!("cannot connect to datanode {addr}: {e}"))?;
    let (input, mut out) = stream.into_split();
    let mut input = BufReader::new(input);
    let req =
        TransferBlockRequest { block: Some(block), targets: vec![target.clone()], client_name: client_name.to_owned() };
    timed("transfer request", write_op(&mut out, Opcode::TransferBlock, &req))
        .await
        .map_err(|e| format!("datanode {addr}: {e}"))?;
    let resp: BlockOpResponse =
        timed("transfer", read_msg(&mut input)).await.map_err(|e| format!("datanode {addr}: {e}"))?;
    if resp.status != OpStatus::OpSuccess as i32 {
        return Err(format!(
            "datanode {addr} could not copy {} to {}: {}",
            block_name(&block),
            xfer_addr(target),
            resp.message
        ));
    }
    Ok(())
}

/// Why a pipeline could not be set up, and which datanode (index into the pipeline) to blame.
#[derive(Debug)]
pub(crate) struct SetupError {
    pub bad_node: usize,
    pub error: ClientError,
}

/// Matches an ack against the oldest packet in flight. Pure, so the rules are unit-tested.
/// `Err` holds the reason and the index of the datanode to blame.
pub(crate) fn check_ack(
    expected_seqno: u64,
    ack: &Ack,
    nodes: &[DatanodeInfo],
    block: &str,
) -> std::result::Result<(), (String, usize)> {
    let first = nodes.first().map(xfer_addr).unwrap_or_default();
    if ack.seqno != expected_seqno {
        return Err((
            format!(
                "datanode {first} acknowledged packet {} of {block} while packet {expected_seqno} was expected",
                ack.seqno
            ),
            0,
        ));
    }
    if let Some(i) = ack.statuses.iter().position(|&s| s != ACK_SUCCESS) {
        let node = nodes.get(i).map(xfer_addr).unwrap_or_else(|| format!("#{i}"));
        let why = if ack.statuses[i] == ACK_ERROR_CHECKSUM { "a checksum error" } else { "an error" };
        return Err((format!("datanode {node} reported {why} for packet {} of {block}", ack.seqno), i));
    }
    if ack.statuses.len() != nodes.len() {
        return Err((
            format!(
                "datanode {first} acknowledged packet {} of {block} for {} datanodes, the pipeline has {}",
                ack.seqno,
                ack.statuses.len(),
                nodes.len()
            ),
            0,
        ));
    }
    Ok(())
}

/// Picks the datanode to exclude after a failed setup: the `first_bad_link` the first
/// datanode named, else the first datanode itself.
pub(crate) fn blame(first_bad_link: &str, nodes: &[DatanodeInfo]) -> usize {
    if first_bad_link.is_empty() {
        return 0;
    }
    nodes
        .iter()
        .position(|dn| xfer_addr(dn) == first_bad_link || format!("{}:{}", dn.hostname, dn.xfer_port) == first_bad_link)
        .unwrap_or(0)
}

/// A packet sent and not yet acknowledged: kept until its ack, re-sent after a recovery.
pub(crate) struct Packet {
    header: PacketHeader,
    sums: Vec<u8>,
    data: Vec<u8>,
}

impl Packet {
    pub(crate) fn offset(&self) -> u64 {
        self.header.offset_in_block
    }
    fn end(&self) -> u64 {
        self.header.offset_in_block + self.data.len() as u64
    }
    fn is_last(&self) -> bool {
        self.header.flags & FLAG_LAST != 0
    }
}

/// What writer and responder share: the packets in flight, oldest first, and the end of
/// the data acknowledged so far.
#[derive(Default)]
struct Shared {
    unacked: std::sync::Mutex<VecDeque<Arc<Packet>>>,
    acked_end: std::sync::atomic::AtomicU64,
    acked: tokio::sync::Notify,
}

impl Shared {
    fn unacked(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Packet>>> {
        // Plain values: a panic elsewhere leaves nothing half-done.
        self.unacked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pipeline that stopped working: why, and which datanode (index) to blame.
#[derive(Debug)]
pub(crate) struct PipelineFailure {
    pub bad_node: usize,
    pub error: ClientError,
}

/// How a pipeline is set up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stage {
    /// A new block.
    Create,
    /// Rebuilt after a failure: replicas (stamp `old_gs`) are cut back to `bytes_acked`.
    Recovery { old_gs: u64, bytes_acked: u64 },
    /// A finalized block of `len` bytes (stamp `old_gs`) reopened for appending.
    Append { old_gs: u64, len: u64 },
}

/// What is left of a failed writer: enough to carry on with a new pipeline.
pub(crate) struct Leftover {
    /// The block as the namenode knows it (stamp of the last pipeline it was told about).
    pub block: ExtendedBlock,
    pub nodes: Vec<DatanodeInfo>,
    unacked: Vec<Arc<Packet>>,
    acked_end: u64,
    buf: Vec<u8>,
    sent_bytes: u64,
    last_sent: bool,
}

impl Leftover {
    /// Bytes every datanode of the pipeline has: replicas are cut back to this.
    pub(crate) fn bytes_acked(&self) -> u64 {
        self.unacked.first().map(|p| p.offset()).unwrap_or(self.acked_end)
    }
}

/// Writes one block through its pipeline.
pub(crate) struct BlockWriter {
    block: ExtendedBlock,
    nodes: Vec<DatanodeInfo>,
    out: OwnedWriteHalf,
    /// Data not yet sent: less than one packet.
    buf: Vec<u8>,
    next_seqno: u64,
    /// Where the next packet starts (pulled back to a chunk start after an hflush that
    /// ended mid-chunk: that chunk is sent again, grown).
    sent_bytes: u64,
    last_sent: bool,
    shared: Arc<Shared>,
    inflight: mpsc::Sender<u64>,
    responder: Option<JoinHandle<std::result::Result<(), PipelineFailure>>>,
}

impl BlockWriter {
    /// Connects to the first datanode of `lb.locations` and sets up the pipeline.
    pub(crate) async fn setup(
        lb: &LocatedBlock,
        client_name: &str,
        stage: Stage,
    ) -> std::result::Result<BlockWriter, SetupError> {
        let block = lb.block.ok_or_else(|| SetupError {
            bad_node: 0,
            error: ClientError::Protocol("located block without a block".into()),
        })?;
        let name = block_name(&block);
        let nodes = lb.locations.clone();
        let first = nodes.first().ok_or_else(|| SetupError {
            bad_node: 0,
            error: ClientError::Io(format!("no datanode to write {name} to")),
        })?;
        let first_addr = xfer_addr(first);
        let fail = |bad_node: usize, msg: String| SetupError { bad_node, error: ClientError::Io(msg) };
        let stream = connect_datanode(first)
            .await
            .map_err(|e| fail(0, format!("could not connect to datanode {first_addr} to write {name}: {e}")))?;
        let (input, mut out) = stream.into_split();
        let mut input = BufReader::new(input);
        let (stage_pb, old_generation_stamp, bytes_acked, start) = match stage {
            Stage::Create => (WriteStage::PipelineSetupCreate, 0, 0, 0),
            Stage::Recovery { old_gs, bytes_acked } => {
                (WriteStage::PipelineSetupStreamingRecovery, old_gs, bytes_acked, bytes_acked)
            }
            Stage::Append { old_gs, len } => (WriteStage::PipelineSetupAppend, old_gs, len, len),
        };
        let req = WriteBlockRequest {
            block: Some(ExtendedBlock { num_bytes: start, ..block }),
            targets: nodes[1..].to_vec(),
            client_name: client_name.to_owned(),
            stage: stage_pb as i32,
            old_generation_stamp,
            bytes_acked,
        };
        let io_fail = |e: io::Error| fail(0, format!("setting up the pipeline for {name} at {first_addr}: {e}"));
        timed("write request", write_op(&mut out, Opcode::WriteBlock, &req)).await.map_err(io_fail)?;
        let resp: BlockOpResponse = timed("pipeline setup", read_msg(&mut input)).await.map_err(io_fail)?;
        if resp.status != OpStatus::OpSuccess as i32 {
            let bad = blame(&resp.first_bad_link, &nodes);
            let status = OpStatus::try_from(resp.status).map(|s| s.as_str_name()).unwrap_or("unknown status");
            let mut msg = format!("datanode {first_addr} refused to write {name}: {status}");
            if !resp.message.is_empty() {
                msg.push_str(&format!(": {}", resp.message));
            }
            if !resp.first_bad_link.is_empty() {
                msg.push_str(&format!(" (first bad link {})", resp.first_bad_link));
            }
            return Err(fail(bad, msg));
        }
        let shared = Arc::new(Shared::default());
        shared.acked_end.store(start, std::sync::atomic::Ordering::Release);
        let (tx, rx) = mpsc::channel(MAX_PACKETS_IN_FLIGHT);
        let responder = tokio::spawn(respond(input, rx, Arc::clone(&shared), nodes.clone(), name));
        // An append starts at the end of the block; the partial last chunk, if any, is
        // sent again by the caller (see `FileWriter`), so the first packet starts at a chunk.
        let sent_bytes = start - start % BYTES_PER_CHECKSUM as u64;
        Ok(BlockWriter {
            block,
            nodes,
            out,
            buf: Vec::with_capacity(MAX_PACKET_DATA),
            next_seqno: 0,
            sent_bytes,
            last_sent: false,
            shared,
            inflight: tx,
            responder: Some(responder),
        })
    }

    /// Sets up a new pipeline on `nodes` for what `left` holds, under `block`'s new stamp:
    /// the survivors cut their replicas back, the unacknowledged packets go again, and the
    /// unsent data is carried over.
    pub(crate) async fn resume(
        left: &Leftover,
        block: ExtendedBlock,
        nodes: Vec<DatanodeInfo>,
        client_name: &str,
    ) -> std::result::Result<BlockWriter, (Option<BlockWriter>, PipelineFailure)> {
        // On a failure the caller starts again from `left`, so nothing here consumes it.
        let stage = Stage::Recovery { old_gs: left.block.generation_stamp, bytes_acked: left.bytes_acked() };
        let lb = LocatedBlock { block: Some(block), locations: nodes, ..Default::default() };
        let mut w = match BlockWriter::setup(&lb, client_name, stage).await {
            Ok(w) => w,
            Err(e) => return Err((None, PipelineFailure { bad_node: e.bad_node, error: e.error })),
        };
        w.sent_bytes = left.bytes_acked();
        for p in &left.unacked {
            let packet = Packet { header: p.header, sums: p.sums.clone(), data: p.data.clone() };
            if let Err(f) = w.send(packet).await {
                return Err((Some(w), f));
            }
        }
        w.buf = left.buf.clone();
        w.sent_bytes = left.sent_bytes;
        w.last_sent = left.last_sent;
        Ok(w)
    }

    /// Replaces a buffered partial chunk (append: the bytes of the block's last partial
    /// chunk, to be sent again with what follows).
    pub(crate) fn preload(&mut self, tail: &[u8]) {
        debug_assert!(self.buf.is_empty());
        self.buf.extend_from_slice(tail);
    }

    pub(crate) fn block(&self) -> ExtendedBlock {
        self.block
    }

    pub(crate) fn nodes(&self) -> &[DatanodeInfo] {
        &self.nodes
    }

    /// Bytes written into this block so far (sent or buffered).
    pub(crate) fn bytes_in_block(&self) -> u64 {
        self.sent_bytes + self.buf.len() as u64
    }

    /// Buffers `data` and sends every full packet. Packets hold whole 64 KiB (so whole
    /// 512-byte chunks); only a flushed or the block's last packet may be shorter. On a
    /// failure, says how much of `data` was taken (into a packet in flight or the buffer).
    pub(crate) async fn write(&mut self, data: &[u8]) -> std::result::Result<(), (PipelineFailure, usize)> {
        let mut taken = 0;
        while taken < data.len() {
            let n = (MAX_PACKET_DATA - self.buf.len()).min(data.len() - taken);
            self.buf.extend_from_slice(&data[taken..taken + n]);
            taken += n;
            if self.buf.len() == MAX_PACKET_DATA {
                self.send_buffered(0).await.map_err(|f| (f, taken))?;
            }
        }
        Ok(())
    }

    /// hflush (hsync when `sync`): sends what is buffered and waits until every datanode
    /// of the pipeline acknowledged everything. Returns the bytes now in the block.
    pub(crate) async fn flush(&mut self, sync: bool) -> std::result::Result<u64, PipelineFailure> {
        if !self.buf.is_empty() || sync {
            let end = self.bytes_in_block();
            let tail = (end % BYTES_PER_CHECKSUM as u64) as usize;
            let keep = self.buf[self.buf.len() - tail.min(self.buf.len())..].to_vec();
            self.send_buffered(if sync { FLAG_SYNC } else { 0 }).await?;
            if tail != 0 {
                // The partial last chunk goes again, grown, with the next packet.
                self.sent_bytes = end - tail as u64;
                self.buf = keep;
            }
        }
        let shared = Arc::clone(&self.shared);
        loop {
            let notified = shared.acked.notified();
            if shared.unacked().is_empty() {
                return Ok(self.bytes_in_block());
            }
            if self.responder.as_ref().is_some_and(|h| h.is_finished()) {
                let fallback = self.io_error("the ack reader stopped");
                return Err(self.responder_failure(fallback).await);
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    /// Sends what is buffered and the empty LAST packet, waits for every ack and returns the
    /// block with its final length.
    pub(crate) async fn finish(&mut self) -> std::result::Result<ExtendedBlock, PipelineFailure> {
        if !self.last_sent {
            if !self.buf.is_empty() {
                self.send_buffered(0).await?;
            }
            self.send_buffered(FLAG_LAST).await?;
            self.last_sent = true;
        }
        let outcome = match self.responder.take() {
            Some(handle) => handle.await.unwrap_or_else(|e| {
                Err(PipelineFailure { bad_node: 0, error: ClientError::Io(format!("ack reader failed: {e}")) })
            }),
            None => Err(PipelineFailure { bad_node: 0, error: ClientError::Io("ack reader already gone".into()) }),
        };
        outcome?;
        Ok(ExtendedBlock { num_bytes: self.sent_bytes, ..self.block })
    }

    async fn send_buffered(&mut self, flags: u8) -> std::result::Result<(), PipelineFailure> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(MAX_PACKET_DATA));
        let mut sums = Vec::with_capacity(data.len() / 128 + 4);
        chunk_checksums(&data, &mut sums);
        let header = PacketHeader { data_len: data.len() as u32, offset_in_block: self.sent_bytes, seqno: 0, flags };
        self.send(Packet { header, sums, data }).await
    }

    /// Sends one packet (with the next seqno), first queueing it as unacknowledged.
    async fn send(&mut self, mut packet: Packet) -> std::result::Result<(), PipelineFailure> {
        let seqno = self.next_seqno;
        self.next_seqno += 1;
        packet.header.seqno = seqno;
        let end = packet.end();
        let last = packet.is_last();
        let packet = Arc::new(packet);
        self.shared.unacked().push_back(Arc::clone(&packet));
        self.sent_bytes = end;
        if last {
            self.last_sent = true;
        }
        // Waits while MAX_PACKETS_IN_FLIGHT packets are unacknowledged; fails when the
        // responder has stopped (it has the reason).
        if self.inflight.send(seqno).await.is_err() {
            let fallback = self.io_error("the ack reader stopped");
            return Err(self.responder_failure(fallback).await);
        }
        let written =
            timed("packet write", write_packet(&mut self.out, &packet.header, &packet.sums, &packet.data)).await;
        if let Err(e) = written {
            // The responder usually knows better (an error ack, a closed pipeline).
            let fallback = self.io_error(&e.to_string());
            return Err(self.responder_failure(fallback).await);
        }
        Ok(())
    }

    fn io_error(&self, what: &str) -> ClientError {
        ClientError::Io(format!(
            "writing {} to datanode {}: {what}",
            block_name(&self.block),
            self.nodes.first().map(xfer_addr).unwrap_or_default()
        ))
    }

    /// The responder's failure if it has one within a second, else `fallback` blaming the
    /// first datanode. The responder is stopped either way.
    async fn responder_failure(&mut self, fallback: ClientError) -> PipelineFailure {
        let fallback = PipelineFailure { bad_node: 0, error: fallback };
        let Some(mut handle) = self.responder.take() else { return fallback };
        match tokio::time::timeout(Duration::from_secs(1), &mut handle).await {
            Ok(Ok(Err(f))) => f,
            Ok(_) => fallback,
            Err(_) => {
                handle.abort();
                fallback
            }
        }
    }

    /// Takes a failed writer apart for a recovery.
    pub(crate) fn into_leftover(mut self) -> Leftover {
        if let Some(h) = self.responder.take() {
            h.abort();
        }
        let unacked: Vec<Arc<Packet>> = self.shared.unacked().drain(..).collect();
        Leftover {
            block: self.block,
            nodes: std::mem::take(&mut self.nodes),
            unacked,
            acked_end: self.shared.acked_end.load(std::sync::atomic::Ordering::Acquire),
            buf: std::mem::take(&mut self.buf),
            sent_bytes: self.sent_bytes,
            last_sent: self.last_sent,
        }
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        // An abandoned writer must not leave its ack reader waiting on the socket.
        if let Some(h) = self.responder.take() {
            h.abort();
        }
    }
}

/// Reads acks in order and checks each against the oldest packet in flight; returns after
/// the LAST packet's ack, or with the first failure.
async fn respond(
    mut input: BufReader<OwnedReadHalf>,
    mut inflight: mpsc::Receiver<u64>,
    shared: Arc<Shared>,
    nodes: Vec<DatanodeInfo>,
    block: String,
) -> std::result::Result<(), PipelineFailure> {
    let first = nodes.first().map(xfer_addr).unwrap_or_default();
    while let Some(seqno) = inflight.recv().await {
        let ack = timed("ack", read_ack(&mut input)).await.map_err(|e| PipelineFailure {
            bad_node: 0,
            error: ClientError::Io(format!("reading the ack of packet {seqno} of {block} from datanode {first}: {e}")),
        })?;
        check_ack(seqno, &ack, &nodes, &block)
            .map_err(|(msg, bad_node)| PipelineFailure { bad_node, error: ClientError::Io(msg) })?;
        let done = {
            let mut q = shared.unacked();
            let p = q.pop_front();
            if let Some(p) = &p {
                shared.acked_end.fetch_max(p.end(), std::sync::atomic::Ordering::AcqRel);
            }
            p
        };
        shared.acked.notify_waiters();
        if done.is_some_and(|p| p.is_last()) {
            return Ok(());
        }
    }
    // The writer went away without a LAST packet: nothing to report to anyone.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tusk_proto::data_transfer::ACK_ERROR;

    fn dn(port: u32) -> DatanodeInfo {
        DatanodeInfo {
            datanode_uuid: format!("uuid-{port}"),
            ip_addr: "10.0.0.1".into(),
            hostname: "h".into(),
            xfer_port: port,
            ..Default::default()
        }
    }

    #[test]
    fn ack_must_match_the_oldest_packet_and_succeed_everywhere() {
        let nodes = [dn(1), dn(2)];
        let ok = Ack { seqno: 3, statuses: vec![ACK_SUCCESS, ACK_SUCCESS] };
        assert_eq!(check_ack(3, &ok, &nodes, "blk_1_1"), Ok(()));
        let (wrong, _) = check_ack(4, &ok, &nodes, "blk_1_1").unwrap_err();
        assert!(wrong.contains("packet 3") && wrong.contains("packet 4"), "{wrong}");
        let bad = Ack { seqno: 3, statuses: vec![ACK_SUCCESS, ACK_ERROR] };
        let (msg, blamed) = check_ack(3, &bad, &nodes, "blk_1_1").unwrap_err();
        assert!(msg.contains("10.0.0.1:2"), "{msg}");
        assert_eq!(blamed, 1, "the datanode whose status failed");
        let short = Ack { seqno: 3, statuses: vec![ACK_SUCCESS] };
        assert!(check_ack(3, &short, &nodes, "blk_1_1").is_err());
    }

    #[test]
    fn blame_follows_first_bad_link() {
        let nodes = [dn(1), dn(2), dn(3)];
        assert_eq!(blame("", &nodes), 0);
        assert_eq!(blame("10.0.0.1:3", &nodes), 2);
        assert_eq!(blame("h:2", &nodes), 1);
        assert_eq!(blame("elsewhere:9", &nodes), 0);
    }

    #[test]
    fn addresses() {
        assert_eq!(xfer_addr(&dn(9866)), "10.0.0.1:9866");
        let v6 = DatanodeInfo { ip_addr: "::1".into(), xfer_port: 5, ..Default::default() };
        assert_eq!(xfer_addr(&v6), "[::1]:5");
        assert_eq!(block_name(&ExtendedBlock { block_id: 7, generation_stamp: 1001, num_bytes: 0 }), "blk_7_1001");
    }
}
