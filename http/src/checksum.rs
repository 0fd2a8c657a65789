//! GETFILECHECKSUM: HDFS's `MD5-of-xMD5-of-512CRC32C`, computed from the file's bytes.
//!
//! HDFS: each block's datanode hashes (MD5) the block's chunk checksums (a big-endian CRC32C
//! per 512 bytes); the file's checksum is the MD5 of those block MD5s, written as
//! bytesPerCRC (int), crcPerBlock (long) and the 16-byte MD5: 28 bytes. crcPerBlock is the
//! number of chunks in a full block when the file has more than one block, else 0. The same
//! bytes with the same block size give the same checksum as HDFS (its `distcp` check).

use crate::remote::RemoteException;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use tusk_client::{Client, FileType};

const BYTES_PER_CRC: u64 = 512;

pub async fn file_checksum(c: &Client, path: &str) -> Result<Value, RemoteException> {
    let status =
        c.file_info(path).await?.ok_or_else(|| RemoteException::not_found(format!("File does not exist: {path}")))?;
    if status.file_type() == FileType::Directory {
        return Err(RemoteException::not_found(format!("Path is not a file: {path}")));
    }
    let locs = c.get_block_locations(path, 0, status.length.max(1)).await?;
    let mut reader = c.open(path).await?;
    let mut file_md5 = Md5::new();
    let mut buf = vec![0u8; BYTES_PER_CRC as usize];
    for b in &locs.blocks {
        let mut left = b.block.as_ref().map_or(0, |e| e.num_bytes);
        let mut block_md5 = Md5::new();
        while left > 0 {
            let want = left.min(BYTES_PER_CRC) as usize;
            let mut got = 0;
            while got < want {
                let n = reader.read(&mut buf[got..want]).await?;
                if n == 0 {
                    return Err(RemoteException::io(format!("{path}: the file ended before its last block did")));
                }
                got += n;
            }
            block_md5.update(crc32c::crc32c(&buf[..want]).to_be_bytes());
            left -= want as u64;
        }
        file_md5.update(block_md5.finalize());
    }
    let crc_per_block = if locs.blocks.len() > 1 { status.block_size / BYTES_PER_CRC } else { 0 };
    let mut bytes = Vec::with_capacity(28);
    bytes.extend_from_slice(&(BYTES_PER_CRC as u32).to_be_bytes());
    bytes.extend_from_slice(&crc_per_block.to_be_bytes());
    bytes.extend_from_slice(&file_md5.finalize());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(json!({"FileChecksum": {
        "algorithm": format!("MD5-of-{crc_per_block}MD5-of-{BYTES_PER_CRC}CRC32C"),
        "bytes": hex,
        "length": bytes.len(),
    }}))
}
