//! Reading a file: the block list comes from the namenode once at open (and once more when a
//! block has no usable replica); each range is read from the block's replicas in order,
//! every packet verified against its chunk checksums before a byte of it is handed out.
//! A corrupt replica is reported to the namenode and the next one tried.

use crate::error::ClientError;
use crate::nn::Namenode;
use crate::pipeline::{block_name, connect_datanode, timed, xfer_addr};
use crate::short_circuit::{LocalReplica, PeerCache};
use crate::Result;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tusk_proto::client::{DatanodeInfo, LocatedBlock};
use tusk_proto::data_transfer::{read_msg, read_packet, verify_checksums, write_op, Opcode, BYTES_PER_CHECKSUM};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, ReadBlockRequest};

/// Socket read buffer: two packets, so one read usually brings a whole packet.
const READ_BUFFER_BYTES: usize = 128 * 1024;

/// Replicas that failed, as (block id, datanode address).
type DeadReplicas = HashSet<(u64, String)>;

/// The index of the block holding file offset `pos`, if the list has one. Blocks are sorted
/// by offset, as the namenode returns them.
pub(crate) fn find_block(blocks: &[LocatedBlock], pos: u64) -> Option<usize> {
    let i = blocks.partition_point(|b| b.offset <= pos).checked_sub(1)?;
    let lb = &blocks[i];
    let len = lb.block.as_ref()?.num_bytes;
    (pos < lb.offset + len).then_some(i)
}

/// Why one replica could not serve a read.
#[derive(Debug)]
enum ReplicaError {
    Io(String),
    Checksum(String),
}

/// Largest read of a local replica into the stream's own buffer.
const LOCAL_READ_BYTES: u64 = 1 << 20;

/// Where a block stream's bytes come from.
enum Source {
    /// Packets from a datanode over TCP.
    Tcp(BufReader<TcpStream>),
    /// The replica's files, read directly (short-circuit).
    Local(LocalReplica),
}

/// A verified stream of bytes [next, end) of one block from one datanode.
struct BlockStream {
    lb: LocatedBlock,
    node: DatanodeInfo,
    source: Source,
    /// Next byte (within the block) to hand out.
    next: u64,
    end: u64,
    /// Where the next packet must start.
    packet_offset: u64,
    data: Vec<u8>,
    sums: Vec<u8>,
    data_pos: usize,
}

impl BlockStream {
    async fn open(
        lb: &LocatedBlock,
        node: &DatanodeInfo,
        start: u64,
        end: u64,
        client_name: &str,
        short_circuit: Option<&PeerCache>,
    ) -> std::result::Result<BlockStream, ReplicaError> {
        let block = lb.block.unwrap_or_default();
        let addr = xfer_addr(node);
        if let Some(peers) = short_circuit {
            match crate::short_circuit::open(node, &block, client_name, peers).await {
                Ok(Some(local)) if local.len >= end => {
                    let first_chunk = start / BYTES_PER_CHECKSUM as u64 * BYTES_PER_CHECKSUM as u64;
                    return Ok(BlockStream::new(lb, node, Source::Local(local), start, end, first_chunk));
                }
                Ok(Some(local)) => tracing::info!(
                    "short-circuit replica of {} on {addr} holds {} bytes, {end} wanted; reading over TCP",
                    block_name(&block),
                    local.len
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::info!("short-circuit read of {} from {addr}: {e}; reading over TCP", block_name(&block))
                }
            }
        }
        let io = |e: std::io::Error| ReplicaError::Io(format!("datanode {addr}: {e}"));
        let stream = connect_datanode(node).await.map_err(io)?;
        let mut input = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
        let req = ReadBlockRequest {
            block: Some(block),
            offset: start,
            length: end - start,
            client_name: client_name.into(),
        };
        timed("read request", write_op(input.get_mut(), Opcode::ReadBlock, &req)).await.map_err(io)?;
        let resp: BlockOpResponse = timed("read response", read_msg(&mut input)).await.map_err(io)?;
        if resp.status != OpStatus::OpSuccess as i32 {
            let status = OpStatus::try_from(resp.status).map(|s| s.as_str_name()).unwrap_or("unknown status");
            return Err(ReplicaError::Io(format!("datanode {addr} refused the read: {status}: {}", resp.message)));
        }
        if resp.bytes_per_checksum != 0 && resp.bytes_per_checksum as usize != BYTES_PER_CHECKSUM {
            return Err(ReplicaError::Io(format!(
                "datanode {addr} uses {} bytes per checksum, expected {BYTES_PER_CHECKSUM}",
                resp.bytes_per_checksum
            )));
        }
        if resp.first_chunk_offset > start {
            return Err(ReplicaError::Io(format!(
                "datanode {addr} starts the read at {}, after the requested {start}",
                resp.first_chunk_offset
            )));
        }
        Ok(BlockStream::new(lb, node, Source::Tcp(input), start, end, resp.first_chunk_offset))
    }

    /// A stream handing out [start, end) whose first packet starts at `first_chunk`.
    fn new(lb: &LocatedBlock, node: &DatanodeInfo, source: Source, start: u64, end: u64, first_chunk: u64) -> Self {
        BlockStream {
            lb: lb.clone(),
            node: node.clone(),
            source,
            next: start,
            end,
            packet_offset: first_chunk,
            data: Vec::new(),
            sums: Vec::new(),
            data_pos: 0,
        }
    }

    /// File offset of the next byte this stream hands out.
    fn file_pos(&self) -> u64 {
        self.lb.offset + self.next
    }

    fn exhausted(&self) -> bool {
        self.next >= self.end
    }

    fn is_local(&self) -> bool {
        matches!(self.source, Source::Local(_))
    }

    /// Makes verified bytes available unless the stream is exhausted.
    async fn fill(&mut self) -> std::result::Result<(), ReplicaError> {
        let name = self.lb.block.as_ref().map(block_name).unwrap_or_default();
        let addr = xfer_addr(&self.node);
        while self.data_pos >= self.data.len() && self.next < self.end {
            self.data_pos = 0;
            let start = self.packet_offset;
            match &mut self.source {
                Source::Tcp(input) => {
                    let h = timed("packet read", read_packet(input, &mut self.sums, &mut self.data))
                        .await
                        .map_err(|e| ReplicaError::Io(format!("reading {name} from datanode {addr}: {e}")))?;
                    if h.offset_in_block != start {
                        return Err(ReplicaError::Io(format!(
                            "datanode {addr} sent {name} packet at offset {}, expected {start}",
                            h.offset_in_block
                        )));
                    }
                    if h.data_len == 0 {
                        if h.is_last() {
                            return Err(ReplicaError::Io(format!(
                                "datanode {addr} ended {name} at offset {start}, expected {}",
                                self.end
                            )));
                        }
                        continue;
                    }
                }
                Source::Local(local) => {
                    // Whole chunks up to the one holding `end` (its stored checksum covers it
                    // all), or to the replica's end.
                    let stop = self.end.next_multiple_of(BYTES_PER_CHECKSUM as u64).min(local.len);
                    let n = (stop - start).min(LOCAL_READ_BYTES) as usize;
                    self.data.resize(n, 0);
                    local
                        .read(start, &mut self.data, &mut self.sums)
                        .map_err(|e| ReplicaError::Io(format!("reading {name} locally (datanode {addr}): {e}")))?;
                }
            }
            if let Err(i) = verify_checksums(&self.data, &self.sums) {
                let at = start + (i * BYTES_PER_CHECKSUM) as u64;
                return Err(ReplicaError::Checksum(format!(
                    "checksum error in {name} at offset {at} from datanode {addr}{}",
                    if self.is_local() { " (short-circuit read)" } else { "" }
                )));
            }
            self.packet_offset += self.data.len() as u64;
            let packet_end = self.packet_offset;
            if packet_end <= self.next {
                // Entirely before the requested offset (the first chunk's head).
                self.data.clear();
                continue;
            }
            // Packets are contiguous from first_chunk_offset <= next, so this one holds `next`.
            debug_assert!(start <= self.next);
            self.data_pos = (self.next - start) as usize;
            self.data.truncate((self.end.min(packet_end) - start) as usize);
        }
        Ok(())
    }

    /// A local replica with nothing buffered, at a chunk boundary: reads whole chunks straight
    /// into `out` and verifies them there (one copy out of the page cache instead of two).
    /// `None` when this stream cannot (TCP, bytes buffered, `out` smaller than a chunk).
    fn read_direct(&mut self, out: &mut [u8]) -> Option<std::result::Result<usize, ReplicaError>> {
        let Source::Local(local) = &self.source else { return None };
        if self.data_pos < self.data.len() || self.next != self.packet_offset || self.next >= self.end {
            return None;
        }
        let chunk = BYTES_PER_CHECKSUM as u64;
        let avail = self.end - self.next;
        let mut n = avail.min(out.len() as u64);
        // A cut chunk's stored checksum covers bytes past the cut, unless the cut is the
        // replica's end.
        if !(n == avail && self.end == local.len) {
            n = n / chunk * chunk;
        }
        if n == 0 {
            return None;
        }
        let out = &mut out[..n as usize];
        let name = self.lb.block.as_ref().map(block_name).unwrap_or_default();
        let addr = xfer_addr(&self.node);
        if let Err(e) = local.read(self.next, out, &mut self.sums) {
            return Some(Err(ReplicaError::Io(format!("reading {name} locally (datanode {addr}): {e}"))));
        }
        if let Err(i) = verify_checksums(out, &self.sums) {
            let at = self.next + i as u64 * chunk;
            return Some(Err(ReplicaError::Checksum(format!(
                "checksum error in {name} at offset {at} from datanode {addr} (short-circuit read)"
            ))));
        }
        self.next += n;
        self.packet_offset += n;
        Some(Ok(n as usize))
    }

    /// Copies available verified bytes into `out`.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let avail = &self.data[self.data_pos.min(self.data.len())..];
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.data_pos += n;
        self.next += n as u64;
        n
    }
}

/// What both `read` and `pread` need to reach the namenode and datanodes.
struct Ctx<'a> {
    nn: &'a Namenode,
    path: &'a str,
    client_name: &'a str,
    /// Kept short-circuit connections; `None` when short-circuit reads are off.
    short_circuit: Option<&'a PeerCache>,
}

impl Ctx<'_> {
    /// A stream of the block holding `pos`, from `pos` to the block's end or `end_limit`
    /// (a file offset), on the first replica not in `dead` that answers. Refetches the block
    /// list once (per call chain, `refetched`) when no replica is left.
    async fn stream_at(
        &self,
        blocks: &mut Arc<Vec<LocatedBlock>>,
        pos: u64,
        end_limit: u64,
        dead: &mut DeadReplicas,
        refetched: &mut bool,
    ) -> Result<BlockStream> {
        loop {
            let found = find_block(blocks, pos).map(|i| blocks[i].clone());
            if let Some(lb) = &found {
                let block = lb.block.unwrap_or_default();
                let start = pos - lb.offset;
                let end = block.num_bytes.min(end_limit.saturating_sub(lb.offset));
                for node in &lb.locations {
                    if dead.contains(&(block.block_id, xfer_addr(node))) {
                        continue;
                    }
                    match BlockStream::open(lb, node, start, end, self.client_name, self.short_circuit).await {
                        Ok(s) => return Ok(s),
                        Err(e) => self.replica_failed(lb, node, e, dead).await,
                    }
                }
            }
            if *refetched {
                let what = match &found {
                    Some(lb) => lb.block.as_ref().map(block_name).unwrap_or_default(),
                    None => format!("at offset {pos}"),
                };
                return Err(ClientError::BlockMissing(format!("Could not obtain block: {what} file={}", self.path)));
            }
            *refetched = true;
            dead.clear();
            tracing::info!(path = %self.path, offset = pos, "no usable replica; fetching block locations again");
            *blocks = Arc::new(self.nn.locations(self.path).await?.blocks);
        }
    }

    async fn replica_failed(&self, lb: &LocatedBlock, node: &DatanodeInfo, e: ReplicaError, dead: &mut DeadReplicas) {
        let block = lb.block.unwrap_or_default();
        match e {
            ReplicaError::Io(msg) => tracing::warn!(path = %self.path, "{msg}; trying another replica"),
            ReplicaError::Checksum(msg) => {
                tracing::warn!(path = %self.path, "{msg}; reporting it and trying another replica");
                let bad = LocatedBlock {
                    block: Some(block),
                    offset: lb.offset,
                    locations: vec![node.clone()],
                    ..Default::default()
                };
                if let Err(e) = self.nn.report_bad_blocks(vec![bad]).await {
                    tracing::warn!(path = %self.path, "could not report the bad replica of {}: {e}", block_name(&block));
                }
            }
        }
        dead.insert((block.block_id, xfer_addr(node)));
    }
}

/// Reads one file. `read` streams sequentially (one connection per block, held open);
/// `pread` reads anywhere without moving the position. A `read` dropped half-way leaves the
/// position where it was (the held connection is dropped with it).
pub struct FileReader {
    nn: Namenode,
    path: String,
    client_name: String,
    short_circuit: Option<Arc<PeerCache>>,
    len: u64,
    blocks: Arc<Vec<LocatedBlock>>,
    pos: u64,
    stream: Option<BlockStream>,
    dead: DeadReplicas,
    bytes_read: AtomicU64,
    short_circuit_bytes_read: AtomicU64,
}

/// What a [`FileReader`] has read so far (HDFS's `HdfsDataInputStream.getReadStatistics()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStatistics {
    /// Bytes handed out by `read` and `pread`.
    pub total_bytes_read: u64,
    /// Of those, bytes read directly from a local replica's files (short-circuit).
    pub short_circuit_bytes_read: u64,
}

impl FileReader {
    pub(crate) async fn open(nn: Namenode, path: &str) -> Result<FileReader> {
        let r = nn.locations(path).await?;
        let client_name = nn.client_name();
        Ok(FileReader {
            short_circuit: nn.short_circuit_peers(),
            nn,
            path: path.to_owned(),
            client_name,
            len: r.file_length,
            blocks: Arc::new(r.blocks),
            pos: 0,
            stream: None,
            dead: HashSet::new(),
            bytes_read: AtomicU64::new(0),
            short_circuit_bytes_read: AtomicU64::new(0),
        })
    }

    /// Bytes read so far, and how many of them short-circuit.
    pub fn read_statistics(&self) -> ReadStatistics {
        ReadStatistics {
            total_bytes_read: self.bytes_read.load(Ordering::Relaxed),
            short_circuit_bytes_read: self.short_circuit_bytes_read.load(Ordering::Relaxed),
        }
    }

    fn count(&self, n: usize, local: bool) {
        self.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        if local {
            self.short_circuit_bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn seek(&mut self, pos: u64) -> Result<()> {
        if pos > self.len {
            return Err(ClientError::InvalidArgument(format!(
                "Cannot seek after EOF: {pos} is past the length {} of {}",
                self.len, self.path
            )));
        }
        if pos != self.pos {
            self.stream = None;
            self.pos = pos;
        }
        Ok(())
    }

    /// Sequential read at the current position; Ok(0) at end of file.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        let ctx = Ctx {
            nn: &self.nn,
            path: &self.path,
            client_name: &self.client_name,
            short_circuit: self.short_circuit.as_deref(),
        };
        let mut refetched = false;
        loop {
            let mut s = match self.stream.take() {
                Some(s) if s.file_pos() == self.pos && !s.exhausted() => s,
                _ => ctx.stream_at(&mut self.blocks, self.pos, self.len, &mut self.dead, &mut refetched).await?,
            };
            if let Some(r) = s.read_direct(buf) {
                match r {
                    Ok(n) => {
                        self.pos += n as u64;
                        self.count(n, true);
                        if !s.exhausted() {
                            self.stream = Some(s);
                        }
                        return Ok(n);
                    }
                    Err(e) => {
                        ctx.replica_failed(&s.lb, &s.node, e, &mut self.dead).await;
                        continue;
                    }
                }
            }
            match s.fill().await {
                Ok(()) => {
                    let mut n = s.take(buf);
                    if n == 0 {
                        return Err(ClientError::Protocol(format!(
                            "empty stream for {} at offset {}",
                            self.path, self.pos
                        )));
                    }
                    // Large buffers get more than one packet, up to the block's end.
                    let mut healthy = true;
                    while n < buf.len() && !s.exhausted() {
                        match s.fill().await {
                            Ok(()) => n += s.take(&mut buf[n..]),
                            Err(e) => {
                                // What was read is good; the next call starts on another replica.
                                ctx.replica_failed(&s.lb, &s.node, e, &mut self.dead).await;
                                healthy = false;
                                break;
                            }
                        }
                    }
                    self.pos += n as u64;
                    self.count(n, s.is_local());
                    if healthy && !s.exhausted() {
                        self.stream = Some(s);
                    }
                    return Ok(n);
                }
                Err(e) => ctx.replica_failed(&s.lb, &s.node, e, &mut self.dead).await,
            }
        }
    }

    /// The rest of the file, from the current position.
    pub async fn read_to_end(&mut self) -> Result<Vec<u8>> {
        let mut data = vec![0u8; self.len.saturating_sub(self.pos) as usize];
        let mut done = 0;
        while done < data.len() {
            match self.read(&mut data[done..]).await? {
                0 => break,
                n => done += n,
            }
        }
        data.truncate(done);
        Ok(data)
    }

    /// Positional read that does not move the position; fills as much of buf as the file has.
    pub async fn pread(&self, pos: u64, buf: &mut [u8]) -> Result<usize> {
        if pos >= self.len {
            return Ok(0);
        }
        let want = (self.len - pos).min(buf.len() as u64) as usize;
        let ctx = Ctx {
            nn: &self.nn,
            path: &self.path,
            client_name: &self.client_name,
            short_circuit: self.short_circuit.as_deref(),
        };
        let mut blocks = self.blocks.clone();
        let mut dead = DeadReplicas::new();
        let mut refetched = false;
        let mut done = 0;
        while done < want {
            let mut s =
                ctx.stream_at(&mut blocks, pos + done as u64, pos + want as u64, &mut dead, &mut refetched).await?;
            loop {
                if let Some(r) = s.read_direct(&mut buf[done..want]) {
                    match r {
                        Ok(n) => {
                            done += n;
                            self.count(n, true);
                            if done == want || s.exhausted() {
                                break;
                            }
                            continue;
                        }
                        Err(e) => {
                            ctx.replica_failed(&s.lb, &s.node, e, &mut dead).await;
                            break;
                        }
                    }
                }
                match s.fill().await {
                    Ok(()) => {
                        let n = s.take(&mut buf[done..want]);
                        done += n;
                        self.count(n, s.is_local());
                        if n == 0 || done == want {
                            break;
                        }
                    }
                    Err(e) => {
                        ctx.replica_failed(&s.lb, &s.node, e, &mut dead).await;
                        break;
                    }
                }
            }
        }
        Ok(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tusk_proto::client::ExtendedBlock;

    fn lb(id: u64, offset: u64, len: u64) -> LocatedBlock {
        LocatedBlock {
            block: Some(ExtendedBlock { block_id: id, generation_stamp: 1, num_bytes: len }),
            offset,
            ..Default::default()
        }
    }

    #[test]
    fn finds_the_block_holding_an_offset() {
        let blocks = [lb(1, 0, 100), lb(2, 100, 100), lb(3, 200, 5)];
        assert_eq!(find_block(&blocks, 0), Some(0));
        assert_eq!(find_block(&blocks, 99), Some(0));
        assert_eq!(find_block(&blocks, 100), Some(1));
        assert_eq!(find_block(&blocks, 204), Some(2));
        assert_eq!(find_block(&blocks, 205), None);
        assert_eq!(find_block(&[], 0), None);
        // A gap (a block the namenode did not list) is not papered over.
        assert_eq!(find_block(&[lb(1, 0, 100), lb(3, 200, 100)], 150), None);
    }
}
