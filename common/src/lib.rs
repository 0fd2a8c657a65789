//! What every Tusk crate shares: configuration (`config`), path rules (`path`), CRC32C
//! checksums (`checksum`), files written atomically and durably (`durable`), and the
//! identity of the calling user (`user`). Nothing here does network I/O.

pub mod checksum;
pub mod config;
pub mod durable;
pub mod net;
pub mod path;
pub mod user;

/// Milliseconds since the Unix epoch, the unit of every timestamp Tusk stores.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The version string every daemon and client reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
