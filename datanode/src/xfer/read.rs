//! READ_BLOCK: stream a range of a finalized replica as packets of whole chunks with the
//! checksums stored at write time. The datanode does not re-verify them here: the client
//! does, and reports a bad replica (the scanner is the datanode's own check).

use super::{reply_error, XferContext, IO_TIMEOUT};
use crate::error::DatanodeError;
use crate::store::ReplicaReader;
use std::io;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tusk_proto::data_transfer::{self, PacketHeader, BYTES_PER_CHECKSUM, FLAG_LAST, MAX_PACKET_DATA};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, ReadBlockRequest};

const CHUNK: u64 = BYTES_PER_CHECKSUM as u64;

/// The packets a read sends: `[first_chunk_offset, end)`, chunk-aligned at the start and
/// ending at a chunk boundary or the replica's end.
pub fn packet_range(offset: u64, length: u64, replica_len: u64) -> (u64, u64) {
    let start = offset / CHUNK * CHUNK;
    let end = (offset + length).div_ceil(CHUNK).saturating_mul(CHUNK).min(replica_len);
    (start, end.max(start))
}

pub async fn read_block(mut socket: TcpStream, req: ReadBlockRequest, ctx: &Arc<XferContext>) -> io::Result<()> {
    let Some(block) = req.block else {
        return reply_error(&mut socket, OpStatus::OpErrorInvalid, "ReadBlockRequest without a block").await;
    };
    let block_id = block.block_id;
    let opened = super::open_replica(&ctx.store, move |s, wait| s.open_reader_with(block_id, wait)).await?;
    let reader = match opened {
        Ok(r) => r,
        Err(e) => {
            let status = super::refusal_status(&e);
            if !matches!(e, DatanodeError::ReplicaNotFound { .. }) {
                tracing::warn!("cannot read replica: {e}");
            }
            return reply_error(&mut socket, status, &e.to_string()).await;
        }
    };
    let info = reader.info;
    if info.genstamp < block.generation_stamp {
        let msg = format!(
            "replica of block {block_id} has genstamp {}, older than the requested {}",
            info.genstamp, block.generation_stamp
        );
        return reply_error(&mut socket, OpStatus::OpErrorInvalid, &msg).await;
    }
    let in_range = req.offset.checked_add(req.length).is_some_and(|end| end <= info.len);
    if !in_range {
        let msg = format!(
            "range offset {} length {} is beyond the replica of block {block_id} ({} bytes)",
            req.offset, req.length, info.len
        );
        return reply_error(&mut socket, OpStatus::OpErrorInvalid, &msg).await;
    }
    let (start, end) = packet_range(req.offset, req.length, info.len);
    let resp = BlockOpResponse {
        status: OpStatus::OpSuccess as i32,
        first_chunk_offset: start,
        bytes_per_checksum: BYTES_PER_CHECKSUM as u32,
        ..Default::default()
    };
    data_transfer::write_msg(&mut socket, &resp).await?;
    send_packets(&mut socket, reader, start, end).await?;
    socket.shutdown().await?;
    tracing::debug!(offset = req.offset, length = req.length, "served read");
    Ok(())
}

/// Sends `[start, end)` of the replica then the empty LAST packet.
async fn send_packets(socket: &mut TcpStream, reader: ReplicaReader, start: u64, end: u64) -> io::Result<()> {
    let mut reader = Some(reader);
    let mut bufs = Some((Vec::with_capacity(MAX_PACKET_DATA), Vec::new()));
    let mut pos = start;
    let mut seqno = 0u64;
    while pos < end {
        let n = (end - pos).min(MAX_PACKET_DATA as u64) as usize;
        let (mut r, (mut data, mut sums)) = match (reader.take(), bufs.take()) {
            (Some(r), Some(b)) => (r, b),
            _ => return Err(io::Error::other("reader lost")),
        };
        let (r, data, sums, res) = tokio::task::spawn_blocking(move || {
            let res = r.read(pos, n, &mut data, &mut sums);
            (r, data, sums, res)
        })
        .await
        .map_err(io::Error::other)?;
        if let Err(e) = res {
            // The response already said success; all that is left is to cut the stream.
            tracing::warn!("read failed mid-stream: {e}");
            return Err(io::Error::other(e.to_string()));
        }
        debug_assert_eq!(data.len(), n);
        let header = PacketHeader { data_len: n as u32, offset_in_block: pos, seqno, flags: 0 };
        tokio::time::timeout(IO_TIMEOUT, data_transfer::write_packet(socket, &header, &sums, &data))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "reader stopped reading"))??;
        pos += n as u64;
        seqno += 1;
        reader = Some(r);
        bufs = Some((data, sums));
    }
    metrics::counter!("datanode_bytes_read_total").increment(end - start);
    metrics::counter!("datanode_blocks_read_total").increment(1);
    let last = PacketHeader { data_len: 0, offset_in_block: end, seqno, flags: FLAG_LAST };
    data_transfer::write_packet(socket, &last, &[], &[]).await?;
    socket.flush().await
}

#[cfg(test)]
mod tests {
    use super::packet_range;

    #[test]
    fn ranges() {
        assert_eq!(packet_range(0, 0, 0), (0, 0));
        assert_eq!(packet_range(0, 1000, 1000), (0, 1000));
        assert_eq!(packet_range(700, 100, 5000), (512, 1024));
        assert_eq!(packet_range(700, 0, 5000), (512, 1024));
        assert_eq!(packet_range(1024, 0, 5000), (1024, 1024));
        assert_eq!(packet_range(4900, 100, 5000), (4608, 5000));
        assert_eq!(packet_range(5000, 0, 5000), (4608, 5000));
    }
}
