//! The datanode: stores block replicas on local data directories, serves them over the data
//! transfer protocol, and keeps the namenode informed.
//!
//! How data flows: a client (or another datanode) connects to the transfer server
//! ([`xfer`]) and sends WRITE_BLOCK; the datanode creates a replica in `rbw/` ([`store`]),
//! forwards every packet to the next datanode of the pipeline, verifies and appends it,
//! and acks it upstream once the downstream acked it. The LAST packet finalizes the
//! replica: its block and [`meta`] files are renamed into `finalized/` on a [`volume`] and
//! recorded in the RocksDB [`replica_index`]; the [`namenode_actor`] reports it to the
//! namenode at once. READ_BLOCK streams a finalized replica's chunks with their stored
//! checksums. The actor also heartbeats, sends full block reports, and executes the
//! namenode's commands (delete, replicate, re-register, report, shut down). The [`scanner`]
//! re-reads every replica against its checksums in the background and reports bad ones.
//! A replica whose writer went away stays in `rbw/` for pipeline recovery, append and
//! lease recovery ([`block_recovery`] runs the namenode's RecoverBlock command).
//!
//! [`start`] runs a datanode in-process on an already-bound listener and returns a
//! [`DatanodeHandle`].

pub mod block_recovery;
pub mod error;
pub mod meta;
pub mod namenode_actor;
pub mod replica_index;
pub mod scanner;
pub mod server;
pub mod store;
pub mod volume;
pub mod xfer;

pub use error::DatanodeError;
pub use server::{start, DatanodeHandle, DatanodeStatus, DatanodeView, VolumeStatus};
