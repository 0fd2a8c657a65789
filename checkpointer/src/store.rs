//! The checkpointer's directory: `in_use.lock`, and `current/` laid out as a name directory
//! (VERSION naming the cluster, `fsimage_<txid>`, `edits_<first>-<last>`). Downloads land in
//! `<name>.download`, are checked, fsynced and renamed, so a killed checkpointer never leaves
//! a half file under a real name; left-overs are removed when the directory is opened.

use crate::{CheckpointError, Result};
use std::path::{Path, PathBuf};
use tusk_common::durable::{fsync_dir, read_properties, write_properties};
use tusk_namenode::edit_log::finished_name;
use tusk_namenode::fsimage::{image_name, parse_image_name};
use tusk_namenode::storage::{purge_dir, NameDir, LAYOUT_VERSION};

pub const DOWNLOAD_SUFFIX: &str = ".download";

pub struct CheckpointDir {
    dir: NameDir,
}

fn io_err(what: &str, p: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError(format!("{what} {}: {e}", p.display()))
}

impl CheckpointDir {
    /// Creates and locks the directory; removes interrupted downloads.
    pub fn open(root: &Path) -> Result<CheckpointDir> {
        let dir = NameDir::open(root).map_err(|e| CheckpointError(e.to_string()))?;
        std::fs::create_dir_all(&dir.current).map_err(|e| io_err("cannot create", &dir.current, e))?;
        let d = CheckpointDir { dir };
        for n in d.names()? {
            if n.ends_with(DOWNLOAD_SUFFIX) || n.ends_with(".tmp") {
                let p = d.current().join(&n);
                tracing::info!(file = %p.display(), "removing an interrupted download");
                std::fs::remove_file(&p).map_err(|e| io_err("cannot remove", &p, e))?;
            }
        }
        Ok(d)
    }

    pub fn root(&self) -> &Path {
        &self.dir.root
    }

    pub fn current(&self) -> &Path {
        &self.dir.current
    }

    fn names(&self) -> Result<Vec<String>> {
        self.dir.file_names().map_err(|e| CheckpointError(e.to_string()))
    }

    /// The cluster this directory's images belong to, once a checkpoint has run.
    pub fn cluster_id(&self) -> Result<Option<String>> {
        let p = self.current().join("VERSION");
        if !p.exists() {
            return Ok(None);
        }
        let props = read_properties(&p).map_err(|e| CheckpointError(e.to_string()))?;
        props
            .into_iter()
            .find(|(k, _)| k == "clusterID")
            .map(|(_, v)| Some(v))
            .ok_or_else(|| CheckpointError(format!("{} has no clusterID", p.display())))
    }

    /// Ties the directory to `cluster_id` on first use; refuses another cluster's namenode.
    pub fn adopt_cluster(&self, cluster_id: &str) -> Result<()> {
        match self.cluster_id()? {
            Some(c) if c == cluster_id => Ok(()),
            Some(c) => Err(CheckpointError(format!(
                "checkpoint directory {} holds images of cluster {c}, but the namenode serves {cluster_id}; \
                 use another --dir",
                self.root().display()
            ))),
            None => write_properties(
                &self.current().join("VERSION"),
                &[
                    ("clusterID", cluster_id.to_owned()),
                    ("layoutVersion", LAYOUT_VERSION.to_string()),
                    ("storageType", "CHECKPOINTER".into()),
                    ("cTime", tusk_common::now_ms().to_string()),
                ],
            )
            .map_err(|e| io_err("cannot write VERSION in", self.current(), e)),
        }
    }

    pub fn image_path(&self, txid: u64) -> PathBuf {
        self.current().join(image_name(txid))
    }

    pub fn segment_path(&self, first: u64, last: u64) -> PathBuf {
        self.current().join(finished_name(first, last))
    }

    /// The newest image held here.
    pub fn newest_image(&self) -> Result<Option<u64>> {
        Ok(self.names()?.iter().filter_map(|n| parse_image_name(n)).max())
    }

    /// Keeps the newest `retain` images and the edits after the oldest of them.
    pub fn purge(&self, retain: usize) -> Result<()> {
        purge_dir(self.current(), retain).map_err(|e| CheckpointError(e.to_string()))
    }

    /// Where a download of `dest` is written before it is checked.
    pub fn download_path(dest: &Path) -> PathBuf {
        let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(DOWNLOAD_SUFFIX);
        dest.with_file_name(name)
    }

    /// Moves a checked download into place durably.
    pub fn commit_download(&self, tmp: &Path, dest: &Path) -> Result<()> {
        std::fs::rename(tmp, dest).map_err(|e| io_err("cannot rename download to", dest, e))?;
        fsync_dir(self.current()).map_err(|e| io_err("cannot sync", self.current(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_is_adopted_once_and_others_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = CheckpointDir::open(t.path()).unwrap();
        assert_eq!(d.cluster_id().unwrap(), None);
        d.adopt_cluster("CID-a").unwrap();
        d.adopt_cluster("CID-a").unwrap();
        let e = d.adopt_cluster("CID-b").unwrap_err().to_string();
        assert!(e.contains("CID-a") && e.contains("CID-b"), "{e}");
    }

    #[test]
    fn interrupted_downloads_are_removed_and_the_directory_is_locked() {
        let t = tempfile::tempdir().unwrap();
        {
            let d = CheckpointDir::open(t.path()).unwrap();
            let tmp = CheckpointDir::download_path(&d.image_path(7));
            std::fs::write(&tmp, b"half").unwrap();
            assert!(CheckpointDir::open(t.path()).is_err(), "a second checkpointer on one directory is refused");
        }
        let d = CheckpointDir::open(t.path()).unwrap();
        assert!(std::fs::read_dir(d.current()).unwrap().next().is_none());
    }
}
