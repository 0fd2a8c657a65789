//! The namenode: the whole namespace in memory, made durable by an edit log and fsimages.
//!
//! A client request arrives in `service` (gRPC, thin), becomes a call on the `namesystem`,
//! which checks it against the `namespace` tree (with `permission`), turns it into edit ops,
//! applies them in memory, appends them to the `journal` (group commit, see `edit_log` for
//! the format) and answers once they are durable. At start-up `storage` loads the newest
//! `fsimage` and replays the edits after it with the very same `Namespace::apply`.

pub mod blocks;
pub mod checkpoint;
pub mod checkpoint_service;
pub mod datanode_service;
pub mod edit_log;
pub mod error;
pub mod fsimage;
pub mod inode;
pub mod journal;
pub mod lease;
pub mod namespace;
pub mod namesystem;
pub mod permission;
pub mod safe_mode;
pub mod server;
pub mod service;
pub mod storage;
pub mod topology;

pub use error::{NnError, NnResult};
pub use namesystem::{Namesystem, NamesystemConfig};
