//! The checkpointer (HDFS's secondary namenode). It keeps the namenode's restart short and
//! its name directories small: every `checkpoint.period` seconds, or as soon as
//! `checkpoint.txns` transactions are not in an image, it
//!
//! 1. asks the namenode to roll its edit log (`link`),
//! 2. downloads the image the merge starts from, unless it already has it, and the finished
//!    edit segments after it, each streamed and checked against its CRC32C (`link`, `store`),
//! 3. loads the image and replays the edits with the namenode crate's own code (`merge`),
//! 4. writes the new image and uploads it; the namenode checks and installs it (`run`).
//!
//! Its directory has the layout of a name directory (`current/VERSION`, `fsimage_*`,
//! `edits_*`), so `tusk namenode --import-checkpoint DIR` can rebuild a lost name directory
//! from it.

pub mod link;
pub mod merge;
pub mod run;
pub mod store;

pub use run::{Checkpointer, Merge, Merged, Outcome};

/// Why a checkpoint failed. The namenode is never left worse off: it keeps serving on its
/// previous image until an upload has passed every check.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckpointError(pub String);

pub type Result<T> = std::result::Result<T, CheckpointError>;
