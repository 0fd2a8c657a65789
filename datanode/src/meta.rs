//! The meta file kept beside every block file: a 14-byte header, then one CRC32C per
//! 512-byte chunk of the block, all big-endian.
//!
//! ```text
//! [8 bytes "TUSKMETA"][u16 version = 1][u32 bytes_per_checksum = 512][u32 crc32c per chunk ...]
//! ```
//!
//! The datanode stores the checksums the writer sent (after verifying them), and serves
//! them unchanged on reads, so a reader checks the bytes against what the writer computed.

use crate::error::DatanodeError;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use tusk_proto::data_transfer::BYTES_PER_CHECKSUM;

pub use tusk_proto::block_meta::{
    check_header, checksum_offset, chunks_for, encode_header, meta_len_for, CHECKSUM_BYTES, HEADER_BYTES, MAGIC,
    VERSION,
};

/// Writes a complete meta file for `data` (tests and tools; the pipeline appends instead).
pub fn write_meta_for(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut buf = encode_header().to_vec();
    tusk_proto::data_transfer::chunk_checksums(data, &mut buf);
    std::fs::write(path, buf)
}

/// Reads a block and its meta file and verifies every chunk: the check a scanner runs.
/// `Err` names the file and the first bad chunk.
pub fn verify_replica(block_path: &Path, meta_path: &Path) -> Result<(), DatanodeError> {
    let corrupt = |path: &Path, reason: String| DatanodeError::Corrupt { path: path.to_owned(), reason };
    let block_len = std::fs::metadata(block_path).map_err(DatanodeError::io("cannot stat", block_path))?.len();
    let meta_file = File::open(meta_path).map_err(DatanodeError::io("cannot open", meta_path))?;
    let meta_len = meta_file.metadata().map_err(DatanodeError::io("cannot stat", meta_path))?.len();
    if meta_len != meta_len_for(block_len) {
        return Err(corrupt(
            meta_path,
            format!("{meta_len} bytes, expected {} for a block of {block_len} bytes", meta_len_for(block_len)),
        ));
    }
    let mut meta = BufReader::with_capacity(1 << 16, meta_file);
    let mut header = [0u8; HEADER_BYTES as usize];
    meta.read_exact(&mut header).map_err(DatanodeError::io("cannot read", meta_path))?;
    check_header(&header).map_err(|r| corrupt(meta_path, r))?;
    let mut data = BufReader::with_capacity(
        1 << 20,
        File::open(block_path).map_err(DatanodeError::io("cannot open", block_path))?,
    );
    let mut chunk = vec![0u8; BYTES_PER_CHECKSUM];
    let mut remaining = block_len;
    let mut index = 0u64;
    while remaining > 0 {
        let n = remaining.min(BYTES_PER_CHECKSUM as u64) as usize;
        data.read_exact(&mut chunk[..n]).map_err(DatanodeError::io("cannot read", block_path))?;
        let mut sum = [0u8; 4];
        meta.read_exact(&mut sum).map_err(DatanodeError::io("cannot read", meta_path))?;
        if tusk_common::checksum::crc32c(&chunk[..n]).to_be_bytes() != sum {
            return Err(corrupt(block_path, format!("checksum mismatch in chunk {index} (offset {})", index * 512)));
        }
        remaining -= n as u64;
        index += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(meta_len_for(0), 14);
        assert_eq!(meta_len_for(1), 18);
        assert_eq!(meta_len_for(512), 18);
        assert_eq!(meta_len_for(513), 22);
        assert_eq!(checksum_offset(2), 22);
    }

    #[test]
    fn round_trip_and_corruption_detection() {
        let dir = tempfile::tempdir().unwrap();
        let block = dir.path().join("blk_1");
        let meta = dir.path().join("blk_1_1.meta");
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31) as u8).collect();
        std::fs::write(&block, &data).unwrap();
        write_meta_for(&meta, &data).unwrap();
        assert_eq!(std::fs::metadata(&meta).unwrap().len(), meta_len_for(5000));
        verify_replica(&block, &meta).unwrap();

        // A flipped data byte is found in its chunk.
        let mut bad = data.clone();
        bad[4321] ^= 0x10;
        std::fs::write(&block, &bad).unwrap();
        let err = verify_replica(&block, &meta).unwrap_err().to_string();
        assert!(err.contains("chunk 8"), "{err}");

        // A bad magic, a wrong version and a truncated meta file are each refused.
        std::fs::write(&block, &data).unwrap();
        let good = std::fs::read(&meta).unwrap();
        let mut m = good.clone();
        m[0] = b'X';
        std::fs::write(&meta, &m).unwrap();
        assert!(verify_replica(&block, &meta).unwrap_err().to_string().contains("bad magic"));
        let mut m = good.clone();
        m[9] = 2;
        std::fs::write(&meta, &m).unwrap();
        assert!(verify_replica(&block, &meta).unwrap_err().to_string().contains("version 2"));
        std::fs::write(&meta, &good[..good.len() - 1]).unwrap();
        assert!(verify_replica(&block, &meta).unwrap_err().to_string().contains("expected"));
        let mut m = good.clone();
        let last = m.len() - 1;
        m[last] ^= 1;
        std::fs::write(&meta, &m).unwrap();
        assert!(verify_replica(&block, &meta).unwrap_err().to_string().contains("chunk 9"));
    }
}
