//! The meta file a datanode keeps beside every block file: a 14-byte header, then one
//! CRC32C per 512-byte chunk of the block, all big-endian. The datanode writes and serves it;
//! a short-circuit reader ([`crate::short_circuit`]) reads it directly, so both sides share
//! this definition.
//!
//! ```text
//! [8 bytes "TUSKMETA"][u16 version = 1][u32 bytes_per_checksum = 512][u32 crc32c per chunk ...]
//! ```

use crate::data_transfer::BYTES_PER_CHECKSUM;

pub const MAGIC: &[u8; 8] = b"TUSKMETA";
pub const VERSION: u16 = 1;
pub const HEADER_BYTES: u64 = 14;
pub const CHECKSUM_BYTES: u64 = 4;

/// The header every meta file starts with.
pub fn encode_header() -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_be_bytes());
    h[10..14].copy_from_slice(&(BYTES_PER_CHECKSUM as u32).to_be_bytes());
    h
}

/// Checks a meta file's header; `Err` holds the reason.
pub fn check_header(h: &[u8]) -> Result<(), String> {
    if h.len() < HEADER_BYTES as usize {
        return Err(format!("header is {} bytes, expected {HEADER_BYTES}", h.len()));
    }
    if &h[..8] != MAGIC {
        return Err("bad magic (not a Tusk meta file)".into());
    }
    let version = u16::from_be_bytes([h[8], h[9]]);
    if version != VERSION {
        return Err(format!("meta format version {version}, expected {VERSION}"));
    }
    let bpc = u32::from_be_bytes([h[10], h[11], h[12], h[13]]);
    if bpc as usize != BYTES_PER_CHECKSUM {
        return Err(format!("bytes per checksum {bpc}, expected {BYTES_PER_CHECKSUM}"));
    }
    Ok(())
}

/// Number of chunks (and checksums) of a block of `block_len` bytes.
pub fn chunks_for(block_len: u64) -> u64 {
    block_len.div_ceil(BYTES_PER_CHECKSUM as u64)
}

/// Exact size of the meta file of a block of `block_len` bytes.
pub fn meta_len_for(block_len: u64) -> u64 {
    HEADER_BYTES + chunks_for(block_len) * CHECKSUM_BYTES
}

/// Offset in the meta file of the checksum of chunk `chunk_index`.
pub fn checksum_offset(chunk_index: u64) -> u64 {
    HEADER_BYTES + chunk_index * CHECKSUM_BYTES
}
