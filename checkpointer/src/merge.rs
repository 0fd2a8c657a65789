//! The merge: an fsimage loaded and edit segments replayed on it with the namenode crate's
//! own `fsimage::load`, `edit_log::read_segment` and `Namespace::apply`, then saved with its
//! `fsimage::save`. One implementation of the formats, never two. No sockets here.
//!
//! The merged namespace stays in memory between checkpoints: when the namenode's newest image
//! is the one this merger last wrote (the usual case), the next checkpoint only replays the
//! new edits, as HDFS's secondary namenode does.

use crate::{CheckpointError, Result};
use std::path::Path;
use tusk_namenode::edit_log::read_segment;
use tusk_namenode::fsimage;
use tusk_namenode::namespace::Namespace;

#[derive(Default)]
pub struct Merger {
    /// The namespace and the txid it is at, when known to be whole.
    state: Option<(Namespace, u64)>,
}

impl Merger {
    /// The txid the in-memory namespace is at.
    pub fn txid(&self) -> Option<u64> {
        self.state.as_ref().map(|(_, t)| *t)
    }

    /// Forgets the in-memory namespace (after a failure part-way through a replay).
    pub fn invalidate(&mut self) {
        self.state = None;
    }

    /// Loads the image at `txid` from `path`, checking its checksum, txid, cluster and
    /// invariants.
    pub fn load_image(&mut self, path: &Path, txid: u64, cluster_id: &str) -> Result<()> {
        self.state = None;
        let (ns, summary) = fsimage::load(path).map_err(|e| CheckpointError(e.to_string()))?;
        if summary.txid != txid {
            return Err(CheckpointError(format!("{} says txid {}, expected {txid}", path.display(), summary.txid)));
        }
        if summary.cluster_id != cluster_id {
            return Err(CheckpointError(format!(
                "{} belongs to cluster {}, expected {cluster_id}",
                path.display(),
                summary.cluster_id
            )));
        }
        ns.check_invariants().map_err(|e| CheckpointError(format!("{} is inconsistent: {e}", path.display())))?;
        self.state = Some((ns, txid));
        Ok(())
    }

    /// Replays the finished segment `first..=last` from `path`. The namespace must be at
    /// `first - 1`; every record's checksum and txid is checked, and the segment must end at
    /// `last`. On failure the in-memory namespace is dropped.
    pub fn replay(&mut self, path: &Path, first: u64, last: u64) -> Result<()> {
        let Some((ns, at)) = self.state.as_mut() else {
            return Err(CheckpointError("no image loaded to replay edits on".into()));
        };
        if *at + 1 != first {
            return Err(CheckpointError(format!("namespace is at txid {at}; segment {first}-{last} does not follow")));
        }
        let result = read_segment(path, Some(first), false, |txid, op| {
            ns.apply(&op).map_err(|e| format!("{e} (txid {txid})"))?;
            // Deleted blocks matter to a namenode's block map, not to a merge.
            ns.take_removed_blocks();
            Ok(())
        });
        match result {
            Ok(scan) if scan.last_txid == last => {
                *at = last;
                Ok(())
            }
            Ok(scan) => {
                self.state = None;
                Err(CheckpointError(format!("{} ends at txid {}, expected {last}", path.display(), scan.last_txid)))
            }
            Err(e) => {
                self.state = None;
                Err(CheckpointError(e.to_string()))
            }
        }
    }

    /// Checks the namespace and writes it as `path` (atomically); returns its txid.
    pub fn save(&self, path: &Path, cluster_id: &str) -> Result<u64> {
        let Some((ns, txid)) = &self.state else {
            return Err(CheckpointError("nothing to save: no image loaded".into()));
        };
        ns.check_invariants().map_err(|e| CheckpointError(format!("merged namespace is inconsistent: {e}")))?;
        fsimage::save(ns, *txid, cluster_id, path)
            .map_err(|e| CheckpointError(format!("cannot write {}: {e}", path.display())))?;
        Ok(*txid)
    }

    /// The merged namespace, for tests and tools.
    pub fn namespace(&self) -> Option<&Namespace> {
        self.state.as_ref().map(|(ns, _)| ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tusk_namenode::edit_log::{encode_record, finished_name, segment_header};
    use tusk_proto::storage::{edit_op::Op, EditOp, OpMkdir};

    fn mkdir(path: &str, t: i64) -> EditOp {
        EditOp {
            op: Some(Op::Mkdir(OpMkdir {
                path: path.into(),
                permission: 0o755,
                owner: "root".into(),
                group: "supergroup".into(),
                time_ms: t,
            })),
        }
    }

    fn write_segment(dir: &Path, first: u64, ops: &[EditOp]) -> std::path::PathBuf {
        let mut bytes = segment_header(first).to_vec();
        for (i, op) in ops.iter().enumerate() {
            encode_record(&mut bytes, first + i as u64, op);
        }
        let p = dir.join(finished_name(first, first + ops.len() as u64 - 1));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn image_plus_edits_equals_the_namespace_the_edits_built() {
        let t = tempfile::tempdir().unwrap();
        let mut direct = Namespace::new("root", "supergroup", 1);
        let img = t.path().join(fsimage::image_name(0));
        fsimage::save(&direct, 0, "CID-x", &img).unwrap();
        let ops: Vec<EditOp> = (0..50).map(|i| mkdir(&format!("/d{i}"), i)).collect();
        for op in &ops {
            direct.apply(op).unwrap();
        }
        let s1 = write_segment(t.path(), 1, &ops[..20]);
        let s2 = write_segment(t.path(), 21, &ops[20..]);
        let mut m = Merger::default();
        m.load_image(&img, 0, "CID-x").unwrap();
        m.replay(&s1, 1, 20).unwrap();
        assert!(m.replay(&s1, 1, 20).is_err(), "a segment that does not follow is refused");
        m.load_image(&img, 0, "CID-x").unwrap();
        m.replay(&s1, 1, 20).unwrap();
        m.replay(&s2, 21, 50).unwrap();
        let merged = t.path().join("merged");
        assert_eq!(m.save(&merged, "CID-x").unwrap(), 50);
        let own = t.path().join("own");
        fsimage::save(&direct, 50, "CID-x", &own).unwrap();
        assert_eq!(std::fs::read(merged).unwrap(), std::fs::read(own).unwrap());
    }

    #[test]
    fn damaged_segment_or_wrong_image_is_refused_and_forgotten() {
        let t = tempfile::tempdir().unwrap();
        let ns = Namespace::new("root", "supergroup", 1);
        let img = t.path().join(fsimage::image_name(0));
        fsimage::save(&ns, 0, "CID-x", &img).unwrap();
        let mut m = Merger::default();
        assert!(m.load_image(&img, 0, "CID-other").is_err());
        assert!(m.load_image(&img, 5, "CID-x").is_err());
        let s = write_segment(t.path(), 1, &[mkdir("/a", 1), mkdir("/b", 2)]);
        let mut bytes = std::fs::read(&s).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x40;
        std::fs::write(&s, bytes).unwrap();
        m.load_image(&img, 0, "CID-x").unwrap();
        assert!(m.replay(&s, 1, 2).is_err());
        assert_eq!(m.txid(), None, "a half-replayed namespace is not kept");
    }
}
