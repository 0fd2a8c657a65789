//! Group commit of the edit log.
//!
//! Mutations append encoded records to an in-memory buffer while they hold the namespace
//! lock (so txid order is apply order), release the lock, then wait until their txid is
//! durable. One syncer thread owns the segment files: it takes the whole buffer, writes it
//! to every name directory and fdatasyncs, then wakes every waiter whose txid it covered.
//! While it is on the disk, new records pile up and go out together in the next round, so
//! many concurrent mutations share one fsync and no lock of the namespace is held meanwhile.
//!
//! Rolling (finishing the in-progress segment and starting the next) is a marker in the
//! buffer: records before it go to the old segment, records after it to the new one.

use crate::edit_log::{encode_record, finished_name, inprogress_name, segment_header};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::watch;
use tusk_common::durable::{fsync_dir, write_properties};
use tusk_proto::storage::EditOp;

/// Where durability stands, broadcast to async waiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncState {
    pub synced_txid: u64,
    pub failed: bool,
}

struct Roll {
    offset: usize,
    boundary: u64,
    waiters: Vec<std::sync::mpsc::Sender<Result<u64, String>>>,
}

struct State {
    buf: Vec<u8>,
    /// Txid the next appended record gets.
    next_txid: u64,
    synced_txid: u64,
    roll: Option<Roll>,
    failed: Option<String>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    synced: Condvar,
    watch: watch::Sender<SyncState>,
    syncs: AtomicU64,
    synced_records: AtomicU64,
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalStats {
    pub syncs: u64,
    pub records: u64,
}

pub struct Journal {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct SegmentFile {
    current_dir: PathBuf,
    file: File,
}

struct Syncer {
    shared: Arc<Shared>,
    segments: Vec<SegmentFile>,
    segment_first: u64,
    segment_last: u64,
    autoroll_txns: u64,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding this lock already stops the namenode; keep going to report it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates `edits_inprogress_<first>` (header written and fsynced) and records `seen_txid`.
fn open_segment(current_dir: &Path, first: u64) -> std::io::Result<SegmentFile> {
    let path = current_dir.join(inprogress_name(first));
    let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
    file.write_all(&segment_header(first))?;
    file.sync_all()?;
    fsync_dir(current_dir)?;
    write_properties(&current_dir.join("seen_txid"), &[("seenTxid", first.to_string())])?;
    Ok(SegmentFile { current_dir: current_dir.to_owned(), file })
}

impl Journal {
    /// Starts a new in-progress segment at `first_txid` in every `current/` directory.
    pub fn open(current_dirs: &[PathBuf], first_txid: u64, autoroll_txns: u64) -> std::io::Result<Journal> {
        let mut segments = Vec::new();
        for d in current_dirs {
            segments.push(open_segment(d, first_txid)?);
        }
        let (watch, _) = watch::channel(SyncState { synced_txid: first_txid - 1, failed: false });
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(1 << 16),
                next_txid: first_txid,
                synced_txid: first_txid - 1,
                roll: None,
                failed: None,
                shutdown: false,
            }),
            work: Condvar::new(),
            synced: Condvar::new(),
            watch,
            syncs: AtomicU64::new(0),
            synced_records: AtomicU64::new(0),
        });
        let syncer = Syncer {
            shared: shared.clone(),
            segments,
            segment_first: first_txid,
            segment_last: first_txid - 1,
            autoroll_txns: autoroll_txns.max(1),
        };
        let thread = std::thread::Builder::new().name("edit-log-sync".into()).spawn(move || syncer.run())?;
        Ok(Journal { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Buffers one record and returns its txid. Called with the namespace lock held, right
    /// after the op was applied, so that txids follow apply order.
    pub fn append(&self, op: &EditOp) -> Result<u64, String> {
        let mut st = lock(&self.shared.state);
        if let Some(f) = &st.failed {
            return Err(f.clone());
        }
        if st.shutdown {
            // The syncer is gone: a record appended now would never become durable.
            return Err("the edit log is closed".into());
        }
        let txid = st.next_txid;
        st.next_txid += 1;
        encode_record(&mut st.buf, txid, op);
        drop(st);
        self.shared.work.notify_one();
        Ok(txid)
    }

    /// Fails when records can no longer be made durable (all name directories failed, or
    /// the log is closed). Mutations check this before touching the namespace.
    pub fn check_writable(&self) -> Result<(), String> {
        let st = lock(&self.shared.state);
        if let Some(f) = &st.failed {
            return Err(f.clone());
        }
        if st.shutdown {
            return Err("the edit log is closed".into());
        }
        Ok(())
    }

    /// The last txid handed out.
    pub fn last_written_txid(&self) -> u64 {
        lock(&self.shared.state).next_txid - 1
    }

    pub fn last_synced_txid(&self) -> u64 {
        lock(&self.shared.state).synced_txid
    }

    pub fn stats(&self) -> JournalStats {
        JournalStats {
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            records: self.shared.synced_records.load(Ordering::Relaxed),
        }
    }

    /// Waits until `txid` is durable in every healthy name directory.
    pub async fn wait_synced(&self, txid: u64) -> Result<(), String> {
        let mut rx = self.shared.watch.subscribe();
        let state = rx
            .wait_for(|s| s.synced_txid >= txid || s.failed)
            .await
            .map_err(|_| "the edit log was closed".to_string())?;
        if state.synced_txid >= txid {
            Ok(())
        } else {
            Err(lock(&self.shared.state).failed.clone().unwrap_or_else(|| "edit log failed".into()))
        }
    }

    /// Blocking form of [`wait_synced`](Self::wait_synced), for threads outside the runtime.
    pub fn wait_synced_blocking(&self, txid: u64) -> Result<(), String> {
        let mut st = lock(&self.shared.state);
        loop {
            if st.synced_txid >= txid {
                return Ok(());
            }
            if let Some(f) = &st.failed {
                return Err(f.clone());
            }
            st = self.shared.synced.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Finishes the in-progress segment after every record appended so far and starts the
    /// next. Returns the last txid of the finished segment. Blocks until done.
    pub fn roll(&self) -> Result<u64, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let mut st = lock(&self.shared.state);
            if let Some(f) = &st.failed {
                return Err(f.clone());
            }
            let boundary = st.next_txid - 1;
            let offset = st.buf.len();
            match &mut st.roll {
                Some(r) => r.waiters.push(tx),
                None => st.roll = Some(Roll { offset, boundary, waiters: vec![tx] }),
            }
        }
        self.shared.work.notify_one();
        rx.recv().map_err(|_| "the edit log syncer stopped".to_string())?
    }

    /// Flushes what is buffered and stops the syncer. The in-progress segment stays as it
    /// is; the next start finishes it.
    pub fn close(&self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.work.notify_one();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

impl Syncer {
    fn run(mut self) {
        loop {
            let (bytes, last_txid, roll) = {
                let mut st = lock(&self.shared.state);
                while st.buf.is_empty() && st.roll.is_none() && !st.shutdown {
                    st = self.shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.buf.is_empty() && st.roll.is_none() {
                    return; // shutdown with nothing left
                }
                let bytes = std::mem::replace(&mut st.buf, Vec::with_capacity(1 << 16));
                (bytes, st.next_txid - 1, st.roll.take())
            };
            let sync_started = std::time::Instant::now();
            let result = match roll {
                None => self.write_and_sync(&bytes, last_txid),
                Some(r) => {
                    let res = self
                        .write_and_sync(&bytes[..r.offset], r.boundary)
                        .and_then(|()| self.roll(r.boundary))
                        .and_then(|()| self.write_and_sync(&bytes[r.offset..], last_txid));
                    for w in r.waiters {
                        let _ = w.send(res.clone().map(|()| r.boundary));
                    }
                    res
                }
            };
            let result = result.and_then(|()| {
                if self.segment_last + 1 - self.segment_first >= self.autoroll_txns {
                    self.roll(self.segment_last)
                } else {
                    Ok(())
                }
            });
            let mut st = lock(&self.shared.state);
            match result {
                Ok(()) => {
                    let records = last_txid - st.synced_txid;
                    metrics::histogram!("namenode_editlog_sync_seconds").record(sync_started.elapsed().as_secs_f64());
                    metrics::histogram!("namenode_editlog_sync_batch_records").record(records as f64);
                    metrics::counter!("namenode_editlog_transactions_total").increment(records);
                    st.synced_txid = last_txid;
                    self.shared.syncs.fetch_add(1, Ordering::Relaxed);
                    self.shared.synced_records.fetch_add(records, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "every name directory failed; the namenode refuses all further changes and must be restarted");
                    st.failed = Some(format!("the edit log cannot be written: {e}"));
                }
            }
            let state = SyncState { synced_txid: st.synced_txid, failed: st.failed.is_some() };
            drop(st);
            self.shared.synced.notify_all();
            self.shared.watch.send_replace(state);
            if state.failed {
                return;
            }
        }
    }

    /// Writes to every healthy directory; a directory that fails is dropped with an error
    /// log; the call fails only when none is left.
    fn write_and_sync(&mut self, bytes: &[u8], last_txid: u64) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut first_err = None;
        self.segments.retain_mut(|s| {
            match s.file.write_all(bytes).and_then(|()| s.file.sync_data()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(dir = %s.current_dir.display(), error = %e, "name directory failed; it no longer receives edits");
                    first_err.get_or_insert_with(|| format!("{}: {e}", s.current_dir.display()));
                    false
                }
            }
        });
        if self.segments.is_empty() {
            return Err(first_err.unwrap_or_else(|| "no name directory".into()));
        }
        self.segment_last = last_txid;
        Ok(())
    }

    fn roll(&mut self, boundary: u64) -> Result<(), String> {
        debug_assert_eq!(boundary, self.segment_last);
        if boundary < self.segment_first {
            return Ok(()); // nothing in this segment yet
        }
        let mut next = Vec::new();
        let mut first_err = None;
        for s in self.segments.drain(..) {
            let from = s.current_dir.join(inprogress_name(self.segment_first));
            let to = s.current_dir.join(finished_name(self.segment_first, boundary));
            let res = s
                .file
                .sync_all()
                .and_then(|()| std::fs::rename(&from, &to))
                .and_then(|()| open_segment(&s.current_dir, boundary + 1));
            match res {
                Ok(seg) => next.push(seg),
                Err(e) => {
                    tracing::error!(dir = %s.current_dir.display(), error = %e, "name directory failed while rolling the edit log");
                    first_err.get_or_insert_with(|| format!("{}: {e}", s.current_dir.display()));
                }
            }
        }
        self.segments = next;
        if self.segments.is_empty() {
            return Err(first_err.unwrap_or_else(|| "no name directory".into()));
        }
        tracing::info!(first = self.segment_first, last = boundary, "edit log segment finished");
        self.segment_first = boundary + 1;
        self.segment_last = boundary;
        Ok(())
    }
}
