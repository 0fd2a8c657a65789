//! The block scanner (HDFS's `VolumeScanner`): every finalized replica is read back and
//! checked against its meta file's CRC32Cs once per `scan_period_secs` (three weeks by
//! default, as HDFS), at most `scan_bytes_per_sec` on average, so it never competes with
//! clients for the disks. A replica that fails is marked bad in the store (no longer served)
//! and reported to the namenode, which has a good copy made elsewhere and then deletes this one.
//!
//! A pass walks the replicas in block-id order. Its start time and the last block checked are
//! kept in `scanner.cursor` in the first volume (written every few seconds), so a restarted
//! datanode carries on where it was instead of starting over or forgetting the schedule.

use crate::error::DatanodeError;
use crate::server::Shutdown;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tusk_common::durable::{read_properties, write_properties};

/// How often the cursor is written during a pass.
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct ScanConfig {
    /// Time between the starts of two passes; zero disables the scanner.
    pub period: Duration,
    /// Average read rate; zero means unlimited.
    pub bytes_per_sec: u64,
}

/// Where the scanner is: the pass it is in and the last block it checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    pass_start_ms: i64,
    /// `None` before the first block of the pass; `Some(u64::MAX)` once the pass is done.
    last: Option<u64>,
}

/// What the scanner did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    pub passes: u64,
    pub scanned: u64,
    pub bad: u64,
}

/// What the scanner is doing, for the datanode's web page.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanProgress {
    pub stats: ScanStats,
    /// When the current (or last) pass started, ms since the epoch; 0 before the first.
    pub pass_start_ms: i64,
    /// When the last pass ended; 0 if none has.
    pub last_pass_end_ms: i64,
    pub period_secs: u64,
    pub bytes_per_sec: u64,
}

pub struct Scanner {
    store: Arc<Store>,
    conf: ScanConfig,
    cursor_path: PathBuf,
    progress: Arc<std::sync::Mutex<ScanProgress>>,
}

impl Scanner {
    pub fn new(store: Arc<Store>, conf: ScanConfig) -> Scanner {
        let cursor_path = store.volumes()[0].current().join("scanner.cursor");
        let progress = ScanProgress {
            period_secs: conf.period.as_secs(),
            bytes_per_sec: conf.bytes_per_sec,
            ..Default::default()
        };
        Scanner { store, conf, cursor_path, progress: Arc::new(std::sync::Mutex::new(progress)) }
    }

    /// A handle on the scanner's progress, updated as it goes.
    pub fn progress(&self) -> Arc<std::sync::Mutex<ScanProgress>> {
        Arc::clone(&self.progress)
    }

    fn publish(&self, stats: ScanStats, pass_start_ms: i64, pass_ended: bool) {
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.stats = stats;
        p.pass_start_ms = pass_start_ms;
        if pass_ended {
            p.last_pass_end_ms = tusk_common::now_ms();
        }
    }

    fn load_cursor(&self) -> Cursor {
        let fresh = Cursor { pass_start_ms: tusk_common::now_ms(), last: None };
        let Ok(props) = read_properties(&self.cursor_path) else { return fresh };
        let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        match (get("passStartMs").and_then(|v| v.parse().ok()), get("lastBlockId")) {
            (Some(pass_start_ms), Some(last)) => {
                Cursor { pass_start_ms, last: if last == "none" { None } else { last.parse().ok() } }
            }
            _ => fresh,
        }
    }

    fn save_cursor(&self, c: Cursor) {
        let last = c.last.map_or_else(|| "none".to_owned(), |l| l.to_string());
        if let Err(e) =
            write_properties(&self.cursor_path, &[("passStartMs", c.pass_start_ms.to_string()), ("lastBlockId", last)])
        {
            tracing::warn!(file = %self.cursor_path.display(), "cannot save the scanner cursor: {e}");
        }
    }

    /// Checks one replica. `Ok(None)` when it went away meanwhile; `Ok(Some(bytes))` when good.
    fn check(store: &Store, block_id: u64) -> Result<Option<u64>, DatanodeError> {
        let Some((info, block, meta)) = store.finalized_files(block_id) else { return Ok(None) };
        if store.is_bad(block_id) {
            return Ok(Some(0));
        }
        match crate::meta::verify_replica(&block, &meta) {
            Ok(()) => Ok(Some(info.len)),
            Err(e) => {
                // Deleted or rewritten while being read: not a corruption.
                if store.finalized_files(block_id).map(|(i, _, _)| i) != Some(info) {
                    return Ok(None);
                }
                tracing::error!(block_id, error = %e, "block scanner found a corrupt replica");
                store.mark_bad(block_id, info);
                Err(e)
            }
        }
    }

    /// Runs passes until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) -> ScanStats {
        let mut stats = ScanStats::default();
        if self.conf.period.is_zero() {
            return stats;
        }
        let mut cursor = self.load_cursor();
        loop {
            // Wait for the next pass when this one is done.
            if cursor.last == Some(u64::MAX) {
                let due = cursor.pass_start_ms + self.conf.period.as_millis() as i64;
                let wait = Duration::from_millis(u64::try_from(due - tusk_common::now_ms()).unwrap_or(0));
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                cursor = Cursor { pass_start_ms: tusk_common::now_ms(), last: None };
            }
            let ids: Vec<u64> =
                self.store.finalized_ids().into_iter().filter(|&id| cursor.last.is_none_or(|l| id > l)).collect();
            tracing::debug!(replicas = ids.len(), "block scanner pass");
            let mut saved = Instant::now();
            for id in ids {
                let t0 = Instant::now();
                let store = Arc::clone(&self.store);
                let checked = tokio::task::spawn_blocking(move || Self::check(&store, id)).await;
                let bytes = match checked {
                    Ok(Ok(Some(b))) => {
                        stats.scanned += 1;
                        b
                    }
                    Ok(Ok(None)) => 0,
                    Ok(Err(_)) => {
                        stats.scanned += 1;
                        stats.bad += 1;
                        metrics::counter!("datanode_scanner_corrupt_replicas_total").increment(1);
                        0
                    }
                    Err(e) => {
                        tracing::warn!("scanner task failed: {e}");
                        0
                    }
                };
                cursor.last = Some(id);
                metrics::counter!("datanode_scanner_bytes_total").increment(bytes);
                self.publish(stats, cursor.pass_start_ms, false);
                if saved.elapsed() >= CURSOR_SAVE_EVERY {
                    self.save_cursor(cursor);
                    saved = Instant::now();
                }
                // Throttle: a block of `bytes` may take no less than bytes / rate.
                let pause = if self.conf.bytes_per_sec == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_secs_f64(bytes as f64 / self.conf.bytes_per_sec as f64).saturating_sub(t0.elapsed())
                };
                tokio::select! {
                    _ = shutdown.wait() => {
                        self.save_cursor(cursor);
                        return stats;
                    }
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            cursor.last = Some(u64::MAX);
            stats.passes += 1;
            self.publish(stats, cursor.pass_start_ms, true);
            self.save_cursor(cursor);
            tracing::info!(scanned = stats.scanned, bad = stats.bad, "block scanner pass done");
        }
        self.save_cursor(cursor);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_replica(store: &Arc<Store>, block_id: u64, data: &[u8]) {
        let mut rbw = store.create_rbw(block_id, 1001, true).unwrap();
        let mut sums = Vec::new();
        tusk_proto::data_transfer::chunk_checksums(data, &mut sums);
        rbw.append(data, &sums).unwrap();
        rbw.finalize().unwrap();
    }

    #[tokio::test]
    async fn a_pass_finds_the_flipped_byte_and_a_restart_does_not_rescan_early() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&[dir.path().to_owned()], false).unwrap());
        for id in 1..=3 {
            write_replica(&store, id, &vec![id as u8; 5000]);
        }
        let path = store.block_file(2).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[1234] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let _ = store.take_pending();
        let conf = ScanConfig { period: Duration::from_secs(3600), bytes_per_sec: 0 };

        let (tx, rx) = tokio::sync::watch::channel(false);
        let run = tokio::spawn(Scanner::new(Arc::clone(&store), conf).run(Shutdown(rx)));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !store.is_bad(2) {
            assert!(Instant::now() < deadline, "the scanner never found the bad replica");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send_replace(true);
        let stats = run.await.unwrap();
        assert_eq!(stats, ScanStats { passes: 1, scanned: 3, bad: 1 });
        assert!(store.open_reader(2).is_err(), "a bad replica is not served");
        assert!(store.open_reader(1).is_ok());
        let pending = store.take_pending();
        assert_eq!(pending.bad.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![2]);

        // The pass is recorded as done: a restarted scanner waits for the period.
        let (tx, rx) = tokio::sync::watch::channel(false);
        let run = tokio::spawn(Scanner::new(Arc::clone(&store), conf).run(Shutdown(rx)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send_replace(true);
        assert_eq!(run.await.unwrap(), ScanStats::default());
        // Deleting the bad replica clears the mark.
        assert!(store.delete(2).unwrap());
        assert!(!store.is_bad(2));
    }
}
