//! Short-circuit local reads, the client's side ([`tusk_proto::short_circuit`]): when a
//! replica's datanode listens on this host, ask it for the replica's block and meta file
//! descriptors and read them directly. The datanode checked the files before handing them
//! out; they are checked again here (sizes, meta header) and every chunk read is verified
//! against its stored CRC32C by the reader, exactly as bytes from a socket are.

use crate::pipeline::timed;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use tusk_proto::block_meta;
use tusk_proto::client::{DatanodeInfo, ExtendedBlock};
use tusk_proto::data_transfer::{write_op, Opcode, BYTES_PER_CHECKSUM};
use tusk_proto::short_circuit::{self, recv_with_fds, MAX_FDS};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, ReadBlockRequest};

/// A finalized replica's files, open for reading.
pub(crate) struct LocalReplica {
    data: File,
    meta: File,
    /// The replica's length (the block file's size).
    pub(crate) len: u64,
}

/// Opens `block`'s replica on `node` for a short-circuit read. `Ok(None)` when `node` does not
/// serve short-circuit reads to this process (another host or container, or turned off);
/// `Err` when it does but refused or answered something unusable (read over TCP then).
pub(crate) async fn open(
    node: &DatanodeInfo,
    block: &ExtendedBlock,
    client_name: &str,
) -> io::Result<Option<LocalReplica>> {
    if node.datanode_uuid.is_empty() {
        return Ok(None);
    }
    let mut stream = match short_circuit::connect(&node.datanode_uuid) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let req =
        ReadBlockRequest { block: Some(*block), offset: 0, length: block.num_bytes, client_name: client_name.into() };
    timed("short-circuit request", write_op(&mut stream, Opcode::ShortCircuitFds, &req)).await?;
    let (resp, fds) = timed("short-circuit answer", recv_with_fds::<BlockOpResponse>(&stream, MAX_FDS)).await?;
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
        blocking(|| {
            self.data.read_exact_at(data, pos)?;
            self.meta.read_exact_at(sums, block_meta::checksum_offset(pos / chunk))
        })
    }
}

/// Runs file reads without stalling other tasks of a multi-threaded runtime (their worker
/// moves to another thread meanwhile); inline elsewhere.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
