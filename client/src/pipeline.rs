//! One block written through a datanode pipeline: the client sends packets to the first
//! datanode, which forwards them down the pipeline; acks flow back on the same connection and
//! a responder task matches them, in order, against the packets still in flight.
//!
//! There is no pipeline recovery yet: any failure after setup fails the block (and the file)
//! with an error naming the datanode, rather than retrying or hanging.

use crate::error::ClientError;
use crate::Result;
use std::io;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tusk_proto::client::{DatanodeInfo, ExtendedBlock, LocatedBlock};
use tusk_proto::data_transfer::{
    chunk_checksums, read_ack, read_msg, write_op, write_packet, Ack, Opcode, PacketHeader, ACK_ERROR_CHECKSUM,
    ACK_SUCCESS, FLAG_LAST, MAX_PACKET_DATA,
};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, WriteBlockRequest, WriteStage};

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

/// Why a pipeline could not be set up, and which datanode (index into the pipeline) to blame.
#[derive(Debug)]
pub(crate) struct SetupError {
    pub bad_node: usize,
    pub error: ClientError,
}

/// Matches an ack against the oldest packet in flight. Pure, so the rules are unit-tested.
pub(crate) fn check_ack(
    expected_seqno: u64,
    ack: &Ack,
    nodes: &[DatanodeInfo],
    block: &str,
) -> std::result::Result<(), String> {
    let first = nodes.first().map(xfer_addr).unwrap_or_default();
    if ack.seqno != expected_seqno {
        return Err(format!(
            "datanode {first} acknowledged packet {} of {block} while packet {expected_seqno} was expected",
            ack.seqno
        ));
    }
    if let Some(i) = ack.statuses.iter().position(|&s| s != ACK_SUCCESS) {
        let node = nodes.get(i).map(xfer_addr).unwrap_or_else(|| format!("#{i}"));
        let why = if ack.statuses[i] == ACK_ERROR_CHECKSUM { "a checksum error" } else { "an error" };
        return Err(format!("datanode {node} reported {why} for packet {} of {block}", ack.seqno));
    }
    if ack.statuses.len() != nodes.len() {
        return Err(format!(
            "datanode {first} acknowledged packet {} of {block} for {} datanodes, the pipeline has {}",
            ack.seqno,
            ack.statuses.len(),
            nodes.len()
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

/// A packet in flight, as the responder sees it.
struct Sent {
    seqno: u64,
    last: bool,
}

/// Writes one block through its pipeline.
pub(crate) struct BlockWriter {
    block: ExtendedBlock,
    nodes: Vec<DatanodeInfo>,
    out: OwnedWriteHalf,
    /// Data not yet sent: less than one packet.
    buf: Vec<u8>,
    sums: Vec<u8>,
    next_seqno: u64,
    /// Bytes already sent in packets.
    sent_bytes: u64,
    inflight: mpsc::Sender<Sent>,
    responder: Option<JoinHandle<Result<()>>>,
}

impl BlockWriter {
    /// Connects to the first datanode of `lb.locations` and sets up the pipeline.
    pub(crate) async fn setup(lb: &LocatedBlock, client_name: &str) -> std::result::Result<BlockWriter, SetupError> {
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
        let req = WriteBlockRequest {
            block: Some(ExtendedBlock { num_bytes: 0, ..block }),
            targets: nodes[1..].to_vec(),
            client_name: client_name.to_owned(),
            stage: WriteStage::PipelineSetupCreate as i32,
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
        let (tx, rx) = mpsc::channel(MAX_PACKETS_IN_FLIGHT);
        let responder = tokio::spawn(respond(input, rx, nodes.clone(), name));
        Ok(BlockWriter {
            block,
            nodes,
            out,
            buf: Vec::with_capacity(MAX_PACKET_DATA),
            sums: Vec::with_capacity(MAX_PACKET_DATA / 128),
            next_seqno: 0,
            sent_bytes: 0,
            inflight: tx,
            responder: Some(responder),
        })
    }

    /// Bytes written into this block so far (sent or buffered).
    pub(crate) fn bytes_in_block(&self) -> u64 {
        self.sent_bytes + self.buf.len() as u64
    }

    /// Buffers `data` and sends every full packet. Packets hold whole 64 KiB (so whole
    /// 512-byte chunks); only the block's last packet may be shorter.
    pub(crate) async fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = (MAX_PACKET_DATA - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == MAX_PACKET_DATA {
                self.send_packet(0).await?;
            }
        }
        Ok(())
    }

    /// Sends what is buffered and the empty LAST packet, waits for every ack and returns the
    /// block with its final length.
    pub(crate) async fn finish(mut self) -> Result<ExtendedBlock> {
        if !self.buf.is_empty() {
            self.send_packet(0).await?;
        }
        self.send_packet(FLAG_LAST).await?;
        let outcome = match self.responder.take() {
            Some(handle) => handle.await.unwrap_or_else(|e| Err(ClientError::Io(format!("ack reader failed: {e}")))),
            None => Err(ClientError::Io("ack reader already gone".into())),
        };
        outcome?;
        Ok(ExtendedBlock { num_bytes: self.sent_bytes, ..self.block })
    }

    async fn send_packet(&mut self, flags: u8) -> Result<()> {
        let seqno = self.next_seqno;
        self.next_seqno += 1;
        // Waits while MAX_PACKETS_IN_FLIGHT packets are unacknowledged; fails when the
        // responder has stopped (it has the reason).
        if self.inflight.send(Sent { seqno, last: flags & FLAG_LAST != 0 }).await.is_err() {
            let fallback = self.io_error("the ack reader stopped");
            return Err(self.responder_error(fallback).await);
        }
        self.sums.clear();
        chunk_checksums(&self.buf, &mut self.sums);
        let header = PacketHeader { data_len: self.buf.len() as u32, offset_in_block: self.sent_bytes, seqno, flags };
        if let Err(e) = timed("packet write", write_packet(&mut self.out, &header, &self.sums, &self.buf)).await {
            // The responder usually knows better (an error ack, a closed pipeline).
            let fallback = self.io_error(&e.to_string());
            return Err(self.responder_error(fallback).await);
        }
        self.sent_bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn io_error(&self, what: &str) -> ClientError {
        ClientError::Io(format!(
            "writing {} to datanode {}: {what}",
            block_name(&self.block),
            self.nodes.first().map(xfer_addr).unwrap_or_default()
        ))
    }

    /// The responder's error if it has one within a second, else `fallback`. The responder
    /// is stopped either way.
    async fn responder_error(&mut self, fallback: ClientError) -> ClientError {
        let Some(mut handle) = self.responder.take() else { return fallback };
        match tokio::time::timeout(Duration::from_secs(1), &mut handle).await {
            Ok(Ok(Err(e))) => e,
            Ok(_) => fallback,
            Err(_) => {
                handle.abort();
                fallback
            }
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
    mut inflight: mpsc::Receiver<Sent>,
    nodes: Vec<DatanodeInfo>,
    block: String,
) -> Result<()> {
    let first = nodes.first().map(xfer_addr).unwrap_or_default();
    while let Some(sent) = inflight.recv().await {
        let ack = timed("ack", read_ack(&mut input)).await.map_err(|e| {
            ClientError::Io(format!("reading the ack of packet {} of {block} from datanode {first}: {e}", sent.seqno))
        })?;
        check_ack(sent.seqno, &ack, &nodes, &block).map_err(ClientError::Io)?;
        if sent.last {
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
        let wrong = check_ack(4, &ok, &nodes, "blk_1_1").unwrap_err();
        assert!(wrong.contains("packet 3") && wrong.contains("packet 4"), "{wrong}");
        let bad = Ack { seqno: 3, statuses: vec![ACK_SUCCESS, ACK_ERROR] };
        let msg = check_ack(3, &bad, &nodes, "blk_1_1").unwrap_err();
        assert!(msg.contains("10.0.0.1:2"), "{msg}");
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
