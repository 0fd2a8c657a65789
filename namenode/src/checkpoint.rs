//! Checkpoints, the namenode's side (HDFS's NamenodeProtocol and image transfer): roll the
//! edit log for a checkpointer, tell it which files to fetch, and take an uploaded image
//! back only after checking it, installing it atomically and trimming what retention no
//! longer needs. The gRPC handlers in `checkpoint_service.rs` are thin wrappers over this.
//!
//! An upload is written to `fsimage.ckpt_<txid>` in every name directory while it streams
//! in. Nothing the namenode serves from changes until every check has passed: the length and
//! CRC32C the checkpointer declared, the image's own trailer checksum, its cluster id, and a
//! txid newer than the newest image yet not beyond what the edit log has made durable. Then
//! each copy is renamed to `fsimage_<txid>`. A dropped upload (killed checkpointer, broken
//! connection) removes its files when the [`ImageUpload`] is dropped; a crash leaves files
//! that the next start removes.

use crate::error::{NnError, NnResult};
use crate::fsimage;
use crate::namesystem::Namesystem;
use crate::permission::Caller;
use crate::storage::NameStorage;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tusk_common::checksum::crc32c_append;

/// The newest image and when it was written: the last checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageMark {
    pub txid: u64,
    pub written_ms: i64,
}

/// What [`Namesystem::checkpoint_info`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointStatus {
    pub cluster_id: String,
    pub last_txid: u64,
    pub image: ImageMark,
    pub uncheckpointed_txns: u64,
}

/// What a roll for a checkpoint hands the checkpointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollManifest {
    pub cluster_id: String,
    pub image_txid: u64,
    pub last_finished_txid: u64,
    pub segments: Vec<(u64, u64)>,
}

/// An image arriving from a checkpointer: one open file per name directory.
pub struct ImageUpload {
    pub txid: u64,
    files: Vec<(PathBuf, File)>,
    crc: u32,
    bytes: u64,
    installed: bool,
    busy: Arc<AtomicBool>,
}

impl ImageUpload {
    /// Appends a chunk to every copy.
    pub fn write(&mut self, data: &[u8]) -> NnResult<()> {
        for (p, f) in &mut self.files {
            f.write_all(data)
                .map_err(|e| NnError::Unavailable(format!("cannot write checkpoint upload {}: {e}", p.display())))?;
        }
        self.crc = crc32c_append(self.crc, data);
        self.bytes += data.len() as u64;
        Ok(())
    }
}

impl Drop for ImageUpload {
    fn drop(&mut self) {
        if !self.installed {
            for (p, _) in &self.files {
                if std::fs::remove_file(p).is_ok() {
                    tracing::warn!(file = %p.display(), txid = self.txid, "checkpoint upload abandoned; removed");
                }
            }
        }
        self.busy.store(false, Ordering::Release);
    }
}

fn refuse(msg: String) -> NnError {
    tracing::warn!("checkpoint refused: {msg}");
    NnError::InvalidArgument(msg)
}

impl Namesystem {
    pub fn checkpoint_info(&self) -> CheckpointStatus {
        let image = *self.image.lock();
        let last_txid = self.last_txid();
        CheckpointStatus {
            cluster_id: self.cluster_id(),
            last_txid,
            image,
            uncheckpointed_txns: last_txid.saturating_sub(image.txid),
        }
    }

    /// Finishes the in-progress edit segment and lists the finished segments after the
    /// newest image. Blocking: call it from a blocking thread.
    pub fn roll_for_checkpoint(&self, caller: &Caller) -> NnResult<RollManifest> {
        self.require_superuser(caller, "checkpoint")?;
        let last_finished_txid = self.journal.roll().map_err(NnError::Unavailable)?;
        // The roll's records must be durable before anyone reads the finished file.
        self.journal.wait_synced_blocking(last_finished_txid).map_err(NnError::Unavailable)?;
        let storage = self.storage.lock();
        let image_txid = self.image.lock().txid;
        let segments = storage
            .segments_between(image_txid, last_finished_txid)
            .map_err(|e| NnError::Unavailable(format!("cannot list edits for a checkpoint: {e}")))?;
        tracing::info!(image_txid, last_finished_txid, segments = segments.len(), "edit log rolled for a checkpoint");
        Ok(RollManifest { cluster_id: storage.cluster_id.clone(), image_txid, last_finished_txid, segments })
    }

    /// The file of the image at `txid`, for download.
    pub fn image_for_download(&self, caller: &Caller, txid: u64) -> NnResult<PathBuf> {
        self.require_superuser(caller, "checkpoint")?;
        let name = fsimage::image_name(txid);
        self.storage
            .lock()
            .find(&name)
            .ok_or_else(|| NnError::FileNotFound(format!("{name} (purged or never written)")))
    }

    /// The finished segment `first..=last`, for download.
    pub fn segment_for_download(&self, caller: &Caller, first: u64, last: u64) -> NnResult<PathBuf> {
        self.require_superuser(caller, "checkpoint")?;
        if last < first {
            return Err(NnError::InvalidArgument(format!("segment {first}-{last} is empty")));
        }
        let name = crate::edit_log::finished_name(first, last);
        self.storage.lock().find(&name).ok_or_else(|| NnError::FileNotFound(format!("{name} (purged or not finished)")))
    }

    /// Starts receiving the image at `txid`. One upload at a time; refused when its cluster is
    /// not ours or its txid is not newer than the newest image or not yet durable here.
    pub fn begin_image_upload(&self, caller: &Caller, cluster_id: &str, txid: u64) -> NnResult<ImageUpload> {
        self.require_superuser(caller, "checkpoint")?;
        let ours = self.cluster_id();
        if cluster_id != ours {
            return Err(refuse(format!(
                "uploaded image belongs to cluster {cluster_id:?}; this namenode serves {ours}"
            )));
        }
        self.check_upload_txid(&self.storage.lock(), txid)?;
        if self.upload_busy.swap(true, Ordering::AcqRel) {
            return Err(NnError::Unavailable("another checkpoint upload is in progress".into()));
        }
        let busy = self.upload_busy.clone();
        let mut files = Vec::new();
        let paths = self.storage.lock().upload_paths(txid);
        let mut upload = ImageUpload { txid, files: Vec::new(), crc: 0, bytes: 0, installed: false, busy };
        for p in paths {
            match File::create(&p) {
                Ok(f) => files.push((p, f)),
                Err(e) => {
                    upload.files = files;
                    return Err(NnError::Unavailable(format!("cannot create {}: {e}", p.display())));
                }
            }
        }
        upload.files = files;
        tracing::info!(txid, "receiving a checkpoint image");
        Ok(upload)
    }

    /// An image is acceptable at `txid` when it is newer than the newest image, durable in
    /// the edit log, and at the end of a finished segment reachable from the newest image:
    /// a restart from it must find the segment that starts at `txid + 1`.
    fn check_upload_txid(&self, storage: &NameStorage, txid: u64) -> NnResult<()> {
        let newest = self.image.lock().txid;
        if txid <= newest {
            return Err(refuse(format!(
                "uploaded image has txid {txid}, not newer than the namenode's newest image ({newest})"
            )));
        }
        let synced = self.journal.last_synced_txid();
        if txid > synced {
            return Err(refuse(format!(
                "uploaded image has txid {txid}, beyond the edit log's last durable txid {synced}"
            )));
        }
        storage.segments_between(newest, txid).map_err(|e| {
            refuse(format!(
                "uploaded image has txid {txid}, which does not end an edit segment after txid {newest}: {e}"
            ))
        })?;
        Ok(())
    }

    /// Checks a finished upload against the declared length and CRC32C and its own contents,
    /// then installs it and purges. Blocking: call it from a blocking thread.
    pub fn finish_image_upload(&self, mut upload: ImageUpload, total_bytes: u64, crc32c: u32) -> NnResult<u64> {
        let txid = upload.txid;
        if upload.bytes != total_bytes || upload.crc != crc32c {
            return Err(refuse(format!(
                "uploaded image at txid {txid} is damaged: received {} bytes with CRC32C {:08x}, the checkpointer \
                 declared {total_bytes} bytes with {crc32c:08x}",
                upload.bytes, upload.crc
            )));
        }
        for (p, f) in &upload.files {
            f.sync_all().map_err(|e| NnError::Unavailable(format!("cannot sync {}: {e}", p.display())))?;
        }
        let first = upload.files.first().map(|(p, _)| p.clone()).ok_or_else(|| refuse("no name directory".into()))?;
        let summary = fsimage::verify(&first).map_err(|e| refuse(format!("uploaded image is unusable: {e}")))?;
        if summary.txid != txid {
            return Err(refuse(format!("uploaded image says txid {}, its upload said {txid}", summary.txid)));
        }
        let storage = self.storage.lock();
        if summary.cluster_id != storage.cluster_id {
            return Err(refuse(format!(
                "uploaded image belongs to cluster {:?}; this namenode serves {}",
                summary.cluster_id, storage.cluster_id
            )));
        }
        // Checked again under the storage lock: a -saveNamespace may have run meanwhile.
        self.check_upload_txid(&storage, txid)?;
        storage.install_uploaded(txid).map_err(|e| NnError::Unavailable(e.to_string()))?;
        upload.installed = true;
        *self.image.lock() = crate::checkpoint::ImageMark { txid, written_ms: tusk_common::now_ms() };
        if let Err(e) = storage.purge(self.conf.retained_images) {
            tracing::error!(error = %e, "cannot purge old images and edits after a checkpoint");
        }
        tracing::info!(txid, bytes = total_bytes, "checkpoint image installed");
        Ok(txid)
    }

    /// Logs a warning when no checkpoint has happened for twice the checkpoint period (once
    /// per period while it lasts). Called by the namenode's monitor.
    pub fn check_checkpoint_age(&self) {
        let period = self.conf.checkpoint_period;
        if period.is_zero() {
            return;
        }
        let image = *self.image.lock();
        let age = Duration::from_millis(u64::try_from(tusk_common::now_ms() - image.written_ms).unwrap_or(0));
        let pending = self.last_txid().saturating_sub(image.txid);
        if age < 2 * period || pending == 0 {
            return;
        }
        let mut warned = self.checkpoint_warned.lock();
        if warned.is_some_and(|at| at.elapsed() < period) {
            return;
        }
        *warned = Some(std::time::Instant::now());
        tracing::warn!(
            last_checkpoint_txid = image.txid,
            uncheckpointed_txns = pending,
            age_s = age.as_secs(),
            "no checkpoint for more than twice the checkpoint period: is the checkpointer running? \
             (a restart replays every edit since the last image)"
        );
    }
}
