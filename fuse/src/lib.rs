//! `tusk mount`: a Tusk file system as a directory, through FUSE (the fuser crate, no
//! libfuse: mounting runs `fusermount3`).
//!
//! - [`inodes`]: inode numbers for paths (the namespace is path-based).
//! - [`attr`]: attributes from FileStatus; user and group names to uids and gids.
//! - [`fs`]: the FUSE operations, each answered from a task on the tokio runtime.
//! - [`handle`]: an open file as a task taking its reads and writes in order.
//! - [`mount`]: checks, mounts, serves until a signal or an unmount, unmounts.

pub mod attr;
pub mod fs;
pub mod handle;
pub mod inodes;
pub mod mount;

pub use mount::{run, MountArgs};
