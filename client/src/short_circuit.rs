//! Short-circuit local reads, the client's side ([`tusk_proto::short_circuit`]): when a
//! replica's datanode listens on this host, ask it for the replica's block and meta file
//! descriptors and read them directly. The datanode checked the files before handing them
//! out; they are checked again here (sizes, meta header) and every chunk read is verified
//! against its stored CRC32C by the reader, exactly as bytes from a socket are.

use crate::pipeline::timed;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::Instant;
use tokio::net::UnixStream;
use tusk_proto::block_meta;
use tusk_proto::client::{DatanodeInfo, ExtendedBlock};
use tusk_proto::data_transfer::{write_op, Opcode, BYTES_PER_CHECKSUM};
use tusk_proto::short_circuit::{self, recv_with_fds, CLIENT_IDLE, MAX_FDS};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, ReadBlockRequest};

/// A finalized replica's files, open for reading.
pub(crate) struct LocalReplica {
    data: File,
    meta: File,
    /// The replica's length (the block file's size).
    pub(crate) len: u64,
}

/// Idle short-circuit connections by datanode uuid, kept for the next read (HDFS's
/// `PeerCache`): a small file's read then costs one request and answer on the Unix socket,
/// not a connect, an accept and a new datanode task as well. Shared by a client's clones.
#[derive(Default)]
pub(crate) struct PeerCache {
    idle: Mutex<HashMap<String, Vec<(UnixStream, Instant)>>>,
}

/// Most idle connections kept per datanode (one per concurrent reader is plenty).
const IDLE_PER_DATANODE: usize = 8;

impl PeerCache {
    /// The most recently used idle connection to `uuid` not older than [`CLIENT_IDLE`].
    fn take(&self, uuid: &str) -> Option<UnixStream> {
        let mut idle = self.idle.lock().ok()?;
        let kept = idle.get_mut(uuid)?;
        while let Some((stream, since)) = kept.pop() {
            if since.elapsed() < CLIENT_IDLE {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps `stream`, idle after a whole exchange, for the next read from `uuid`.
    fn put(&self, uuid: &str, stream: UnixStream) {
        let Ok(mut idle) = self.idle.lock() else { return };
        let kept = idle.entry(uuid.to_owned()).or_default();
        kept.retain(|(_, since)| since.elapsed() < CLIENT_IDLE);
        if kept.len() < IDLE_PER_DATANODE {
            kept.push((stream, Instant::now()));
        }
    }

    #[cfg(test)]
    fn idle(&self, uuid: &str) -> usize {
        self.idle.lock().unwrap().get(uuid).map_or(0, Vec::len)
    }
}

/// One request and its answer on `stream`.
async fn exchange(
    stream: &mut UnixStream,
    block: &ExtendedBlock,
    client_name: &str,
) -> io::Result<(BlockOpResponse, Vec<OwnedFd>)> {
    let req =
        ReadBlockRequest { block: Some(*block), offset: 0, length: block.num_bytes, client_name: client_name.into() };
    timed("short-circuit request", write_op(stream, Opcode::ShortCircuitFds, &req)).await?;
    timed("short-circuit answer", recv_with_fds::<BlockOpResponse>(stream, MAX_FDS)).await
}

/// Opens `block`'s replica on `node` for a short-circuit read, on a connection kept in
/// `peers` when there is one. `Ok(None)` when `node` does not serve short-circuit reads to
/// this process (another host or container, or turned off); `Err` when it does but refused
/// or answered something unusable (read over TCP then).
pub(crate) async fn open(
    node: &DatanodeInfo,
    block: &ExtendedBlock,
    client_name: &str,
    peers: &PeerCache,
) -> io::Result<Option<LocalReplica>> {
    let uuid = &node.datanode_uuid;
    if uuid.is_empty() {
        return Ok(None);
    }
    let kept = match peers.take(uuid) {
        Some(mut stream) => match exchange(&mut stream, block, client_name).await {
            Ok(answer) => Some((answer, stream)),
            // Closed by the datanode (idle too long, restarted): not a verdict on the replica.
            Err(e) => {
                tracing::debug!("kept short-circuit connection to {uuid} failed ({e}); opening a new one");
                None
            }
        },
        None => None,
    };
    let ((resp, fds), stream) = match kept {
        Some(done) => done,
        None => match short_circuit::connect(uuid) {
            Ok(mut stream) => (exchange(&mut stream, block, client_name).await?, stream),
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        },
    };
    // A whole exchange leaves the connection ready for the next, whatever it answered.
    peers.put(uuid, stream);
    if resp.status != OpStatus::OpSuccess as i32 {
        let status = OpStatus::try_from(resp.status).map(|s| s.as_str_name()).unwrap_or("unknown status");
        return Err(io::Error::other(format!("refused: {status}: {}", resp.message)));
    }
    let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    let mut files = fds.into_iter().map(File::from);
    let (Some(data), Some(meta), None) = (files.next(), files.next(), files.next()) else {
        return bad("the answer did not carry exactly two descriptors".into());
    };
    if resp.bytes_per_checksum as usize != BYTES_PER_CHECKSUM {
        return bad(format!("{} bytes per checksum, expected {BYTES_PER_CHECKSUM}", resp.bytes_per_checksum));
    }
    if resp.replica_genstamp < block.generation_stamp || resp.replica_length < block.num_bytes {
        return bad(format!(
            "replica has genstamp {} and {} bytes, the block genstamp {} and {} bytes",
            resp.replica_genstamp, resp.replica_length, block.generation_stamp, block.num_bytes
        ));
    }
    let (data_len, meta_len) = (data.metadata()?.len(), meta.metadata()?.len());
    if data_len != resp.replica_length || meta_len != block_meta::meta_len_for(resp.replica_length) {
        return bad(format!(
            "replica files hold {data_len} data and {meta_len} meta bytes, expected {} and {}",
            resp.replica_length,
            block_meta::meta_len_for(resp.replica_length)
        ));
    }
    let mut header = [0u8; block_meta::HEADER_BYTES as usize];
    meta.read_exact_at(&mut header, 0)?;
    if let Err(why) = block_meta::check_header(&header) {
        return bad(format!("meta file: {why}"));
    }
    Ok(Some(LocalReplica { data, meta, len: resp.replica_length }))
}

impl LocalReplica {
    /// Reads `data.len()` bytes at chunk-aligned `pos` and their stored checksums (`sums`
    /// resized). The range must end on a chunk boundary or at the replica's end, so that the
    /// stored checksums cover exactly these bytes.
    pub(crate) fn read(&self, pos: u64, data: &mut [u8], sums: &mut Vec<u8>) -> io::Result<()> {
        let chunk = BYTES_PER_CHECKSUM as u64;
        let end = pos + data.len() as u64;
        if !pos.is_multiple_of(chunk) || end > self.len || (!end.is_multiple_of(chunk) && end != self.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("read of {} bytes at {pos} in a replica of {}", data.len(), self.len),
            ));
        }
        sums.resize((block_meta::chunks_for(data.len() as u64) * block_meta::CHECKSUM_BYTES) as usize, 0);
        let sums_at = block_meta::checksum_offset(pos / chunk);
        // What the page cache holds is read here, on the task's own thread; only bytes that
        // would wait for the disk are read where blocking is allowed.
        let (got, got_sums) = (read_cached(&self.data, data, pos), read_cached(&self.meta, sums, sums_at));
        if got < data.len() || got_sums < sums.len() {
            blocking(|| {
                self.data.read_exact_at(&mut data[got..], pos + got as u64)?;
                self.meta.read_exact_at(&mut sums[got_sums..], sums_at + got_sums as u64)
            })?;
        }
        Ok(())
    }
}

/// Reads as much of `buf.len()` bytes at `pos` as the page cache holds, without waiting for
/// the disk (`preadv2` with `RWF_NOWAIT`), and returns how many it read: all of them for a
/// replica read soon after it was written or read. The caller reads the rest the blocking
/// way, which also reports any error this hit.
fn read_cached(file: &File, buf: &mut [u8], pos: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let mut iov = [io::IoSliceMut::new(&mut buf[done..])];
        match rustix::io::preadv2(file, &mut iov, pos + done as u64, rustix::io::ReadWriteFlags::NOWAIT) {
            Ok(n) if n > 0 => done += n,
            _ => break,
        }
    }
    done
}

/// Runs file reads that may wait for the disk without stalling other tasks of a
/// multi-threaded runtime (their worker moves to another thread meanwhile, at the cost of a
/// thread hand-off); inline elsewhere.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tusk_proto::data_transfer::read_op;
    use tusk_proto::short_circuit::send_with_fds;

    /// A datanode's short-circuit socket that answers `per_connection` requests on each
    /// connection, then closes it, granting the same replica every time.
    fn fake_datanode(uuid: &str, dir: &std::path::Path, per_connection: usize) -> Arc<AtomicUsize> {
        let body = b"hello";
        std::fs::File::create(dir.join("blk")).unwrap().write_all(body).unwrap();
        let mut meta = std::fs::File::create(dir.join("meta")).unwrap();
        meta.write_all(&block_meta::encode_header()).unwrap();
        meta.write_all(&tusk_common::checksum::crc32c(body).to_be_bytes()).unwrap();
        let (data, meta) = (File::open(dir.join("blk")).unwrap(), File::open(dir.join("meta")).unwrap());
        let listener = short_circuit::bind(uuid).unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepts);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                for _ in 0..per_connection {
                    if read_op(&mut conn).await.is_err() {
                        break;
                    }
                    let resp = BlockOpResponse {
                        status: OpStatus::OpSuccess as i32,
                        bytes_per_checksum: BYTES_PER_CHECKSUM as u32,
                        replica_length: 5,
                        replica_genstamp: 1,
                        ..Default::default()
                    };
                    send_with_fds(&conn, &resp, &[data.as_raw_fd(), meta.as_raw_fd()]).await.unwrap();
                }
            }
        });
        accepts
    }

    async fn read_all(node: &DatanodeInfo, peers: &PeerCache) -> Vec<u8> {
        let block = ExtendedBlock { block_id: 1, generation_stamp: 1, num_bytes: 5 };
        let replica = open(node, &block, "test", peers).await.unwrap().expect("a short-circuit grant");
        let (mut data, mut sums) = (vec![0u8; 5], Vec::new());
        replica.read(0, &mut data, &mut sums).unwrap();
        assert_eq!(sums, tusk_common::checksum::crc32c(&data).to_be_bytes());
        data
    }

    #[tokio::test]
    async fn reads_reuse_a_kept_connection_and_retry_one_the_datanode_closed() {
        let dir = tempfile::tempdir().unwrap();
        let uuid = format!("test-client-{}-{}", std::process::id(), line!());
        let accepts = fake_datanode(&uuid, dir.path(), 2);
        let node = DatanodeInfo { datanode_uuid: uuid.clone(), ..Default::default() };
        let peers = PeerCache::default();
        assert_eq!(read_all(&node, &peers).await, b"hello");
        assert_eq!(read_all(&node, &peers).await, b"hello");
        assert_eq!(accepts.load(Ordering::SeqCst), 1, "the second read reuses the first connection");
        assert_eq!(peers.idle(&uuid), 1);
        // The datanode closed that connection after its second answer: the kept one fails,
        // and the read goes on over a new connection, which is kept in turn.
        assert_eq!(read_all(&node, &peers).await, b"hello");
        assert_eq!(accepts.load(Ordering::SeqCst), 2);
        assert_eq!(peers.idle(&uuid), 1);
    }

    #[tokio::test]
    async fn no_datanode_on_this_host_means_no_short_circuit() {
        let node =
            DatanodeInfo { datanode_uuid: format!("nobody-{}-{}", std::process::id(), line!()), ..Default::default() };
        let block = ExtendedBlock { block_id: 1, generation_stamp: 1, num_bytes: 5 };
        assert!(open(&node, &block, "test", &PeerCache::default()).await.unwrap().is_none());
    }
}
