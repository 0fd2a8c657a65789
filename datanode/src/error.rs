//! `DatanodeError`: what went wrong, in words an operator can act on. Start-up failures name
//! the data directory; replica errors carry the block id so a pipeline can answer its client.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DatanodeError {
    /// A data directory cannot be created or written.
    #[error("data directory {dir} is not writable: {source}")]
    DirNotWritable { dir: PathBuf, source: io::Error },
    /// A data directory is formatted for another cluster or another datanode.
    #[error("data directory {dir} belongs to another {what}: {detail}")]
    ForeignDir { dir: PathBuf, what: &'static str, detail: String },
    /// A file the datanode trusts failed its checks (VERSION, meta file, index).
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// An I/O error on a named file or directory.
    #[error("{context} {path}: {source}")]
    Io { context: &'static str, path: PathBuf, source: io::Error },
    /// The RocksDB replica index failed.
    #[error("replica index {path}: {message}")]
    Index { path: PathBuf, message: String },
    #[error("replica of block {block_id} already exists")]
    ReplicaExists { block_id: u64 },
    #[error("replica of block {block_id} not found")]
    ReplicaNotFound { block_id: u64 },
    /// A request the datanode refuses (bad range, old generation stamp, replica not finalized).
    #[error("{0}")]
    Invalid(String),
    /// No volume has room for a new replica.
    #[error("no data directory has room for block {block_id}")]
    NoSpace { block_id: u64 },
    /// The datanode stopped itself (bad cluster id, shutdown command).
    #[error("{0}")]
    Fatal(String),
}

impl DatanodeError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> DatanodeError {
        let path = path.into();
        move |source| DatanodeError::Io { context, path, source }
    }
}
