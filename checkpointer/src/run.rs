//! One checkpoint, and the loop that decides when to take one.

use crate::link::NamenodeLink;
use crate::merge::Merger;
use crate::store::CheckpointDir;
use crate::{CheckpointError, Result};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tusk_common::config::CheckpointConfig;

/// What one checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new image at `txid` is installed on the namenode.
    Done {
        txid: u64,
        /// The image the merge started from.
        from_txid: u64,
        /// Whether that image had to be downloaded (else it was in memory or on disk here).
        image_downloaded: bool,
        segments_downloaded: usize,
        downloaded_bytes: u64,
        image_bytes: u64,
        elapsed_ms: u64,
    },
    /// Every transaction is already in the namenode's newest image.
    UpToDate { txid: u64 },
}

/// A merged image written here, not uploaded yet.
#[derive(Debug)]
pub struct Merged {
    pub txid: u64,
    pub from_txid: u64,
    pub cluster_id: String,
    pub path: PathBuf,
    image_downloaded: bool,
    segments_downloaded: usize,
    downloaded_bytes: u64,
    image_bytes: u64,
    started: Instant,
}

#[derive(Debug)]
pub enum Merge {
    /// Every transaction is already in the namenode's newest image (at this txid).
    UpToDate(u64),
    Ready(Merged),
}

pub struct Checkpointer {
    pub conf: CheckpointConfig,
    dir: CheckpointDir,
    link: NamenodeLink,
    /// Shared with blocking merge tasks.
    merger: Arc<Mutex<Merger>>,
}

impl Checkpointer {
    /// Opens (and locks) the checkpoint directory. The namenode is reached on first use.
    pub fn open(conf: CheckpointConfig, user: &str) -> Result<Checkpointer> {
        let root =
            if conf.dir.as_os_str().is_empty() { PathBuf::from("./tusk-data/checkpoint") } else { conf.dir.clone() };
        let dir = CheckpointDir::open(&root)?;
        let link = NamenodeLink::new(&conf.namenode, user)?;
        Ok(Checkpointer { conf, dir, link, merger: Arc::new(Mutex::new(Merger::default())) })
    }

    pub fn dir(&self) -> &CheckpointDir {
        &self.dir
    }

    pub fn link(&self) -> &NamenodeLink {
        &self.link
    }

    /// Why a checkpoint is due now, or `None`.
    pub async fn due(&self) -> Result<Option<String>> {
        let info = self.link.info().await?;
        if info.uncheckpointed_txns == 0 {
            return Ok(None);
        }
        if info.uncheckpointed_txns >= self.conf.txns {
            return Ok(Some(format!(
                "{} un-checkpointed transactions (limit {})",
                info.uncheckpointed_txns, self.conf.txns
            )));
        }
        let age_s = (tusk_common::now_ms() - info.last_checkpoint_ms).max(0) as u64 / 1000;
        if age_s >= self.conf.period {
            return Ok(Some(format!("{age_s} s since the last checkpoint (period {} s)", self.conf.period)));
        }
        Ok(None)
    }

    fn merger(&self) -> std::sync::MutexGuard<'_, Merger> {
        self.merger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one checkpoint now: [`merge`](Self::merge) then [`upload`](Self::upload). On
    /// failure the in-memory namespace is forgotten, files here stay consistent and the
    /// namenode keeps its previous image.
    pub async fn checkpoint(&mut self) -> Result<Outcome> {
        match self.merge().await? {
            Merge::UpToDate(txid) => Ok(Outcome::UpToDate { txid }),
            Merge::Ready(m) => self.upload(m).await,
        }
    }

    /// The first half of a checkpoint: roll, fetch what is missing, merge, write the new
    /// image here. Nothing on the namenode changes but the roll.
    pub async fn merge(&mut self) -> Result<Merge> {
        let result = self.merge_inner().await;
        if result.is_err() {
            self.merger().invalidate();
        }
        result
    }

    /// The second half: upload the merged image; the namenode checks and installs it. Then
    /// this directory keeps what retention says.
    pub async fn upload(&mut self, m: Merged) -> Result<Outcome> {
        tracing::info!(txid = m.txid, "uploading the merged image");
        let installed = match self.link.upload_image(&m.path, &m.cluster_id, m.txid).await {
            Ok(t) => t,
            Err(e) => {
                self.merger().invalidate();
                return Err(e);
            }
        };
        if installed != m.txid {
            return Err(CheckpointError(format!("the namenode installed txid {installed}, not {}", m.txid)));
        }
        self.dir.purge(self.conf.retained_images)?;
        let outcome = Outcome::Done {
            txid: m.txid,
            from_txid: m.from_txid,
            image_downloaded: m.image_downloaded,
            segments_downloaded: m.segments_downloaded,
            downloaded_bytes: m.downloaded_bytes,
            image_bytes: m.image_bytes,
            elapsed_ms: m.started.elapsed().as_millis() as u64,
        };
        tracing::info!(?outcome, "checkpoint done");
        Ok(outcome)
    }

    async fn merge_inner(&mut self) -> Result<Merge> {
        let t0 = Instant::now();
        let roll = self.link.roll().await?;
        self.dir.adopt_cluster(&roll.cluster_id)?;
        let cluster = roll.cluster_id.clone();
        let (from, to) = (roll.image_txid, roll.last_finished_txid);
        if to <= from {
            return Ok(Merge::UpToDate(from));
        }
        let mut downloaded_bytes = 0;
        // 1. The image the merge starts from: in memory, here on disk, or downloaded.
        let mut image_downloaded = false;
        if self.merger().txid() != Some(from) {
            let path = self.dir.image_path(from);
            if !path.exists() {
                tracing::info!(txid = from, "downloading the namenode's image");
                downloaded_bytes += self.link.download_image(from, &self.dir).await?;
                image_downloaded = true;
            }
            tracing::info!(txid = from, "loading the image");
            let (m, c) = (self.merger.clone(), cluster.clone());
            blocking(move || m.lock().unwrap_or_else(|p| p.into_inner()).load_image(&path, from, &c)).await?;
        }
        // 2. The finished segments after it, each replayed as soon as it is here.
        let mut segments_downloaded = 0;
        let mut next = from + 1;
        for seg in &roll.segments {
            let (first, last) = (seg.first_txid, seg.last_txid);
            if first != next || last < first || last > to {
                return Err(CheckpointError(format!(
                    "the namenode listed segment {first}-{last} where txid {next} was expected"
                )));
            }
            let path = self.dir.segment_path(first, last);
            if !path.exists() {
                tracing::info!(first, last, "downloading edits");
                downloaded_bytes += self.link.download_segment(first, last, &self.dir).await?;
                segments_downloaded += 1;
            }
            tracing::info!(first, last, "replaying edits");
            let m = self.merger.clone();
            blocking(move || m.lock().unwrap_or_else(|p| p.into_inner()).replay(&path, first, last)).await?;
            next = last + 1;
        }
        if next != to + 1 {
            return Err(CheckpointError(format!("the namenode's segments end at txid {}, the roll at {to}", next - 1)));
        }
        // 3. The new image, written here, then uploaded.
        let out = self.dir.image_path(to);
        tracing::info!(txid = to, "writing the merged image");
        let (m, c, o) = (self.merger.clone(), cluster.clone(), out.clone());
        blocking(move || m.lock().unwrap_or_else(|p| p.into_inner()).save(&o, &c)).await?;
        let image_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        Ok(Merge::Ready(Merged {
            txid: to,
            from_txid: from,
            cluster_id: cluster,
            path: out,
            image_downloaded,
            segments_downloaded,
            downloaded_bytes,
            image_bytes,
            started: t0,
        }))
    }

    /// Checks every `check_period` seconds and checkpoints when due, until `shutdown`.
    /// Failures are logged and retried at the next check.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let every = Duration::from_secs(self.conf.check_period.max(1));
        tracing::info!(
            dir = %self.dir.root().display(),
            namenode = %self.conf.namenode,
            period_s = self.conf.period,
            txns = self.conf.txns,
            check_s = self.conf.check_period,
            "checkpointer running"
        );
        loop {
            match self.due().await {
                Ok(Some(why)) => {
                    tracing::info!(reason = %why, "checkpoint due");
                    if let Err(e) = self.checkpoint().await {
                        tracing::error!(error = %e, "checkpoint failed; the namenode keeps its previous image");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check whether a checkpoint is due"),
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        tracing::info!("checkpointer stopped");
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| CheckpointError(format!("merge task failed: {e}")))?
}
