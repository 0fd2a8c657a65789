//! Group commit of the edit log, with overlapping syncs.
//!
//! Mutations append encoded records to an in-memory buffer while they hold the namespace
//! lock (so txid order is apply order), release the lock, then wait until their txid is
//! durable. One writer thread owns the segment files: it takes the whole buffer, writes it
//! to every name directory (into the page cache) and hands "fdatasync, covering txids up to
//! T" to one of [`SYNCS_IN_FLIGHT`] sync threads, then goes back for the next buffer without
//! waiting. Records appended while a sync is on the disk therefore start their own sync
//! right away instead of waiting a whole sync for it to return and another for theirs. On
//! the virtual disks we run on, a flush issued while another is running costs little more
//! than one alone (docs/benchmarks.md has the measurements), so a mutation waits about one
//! sync instead of one and a half, and many still share each sync.
//!
//! Exactness: an fdatasync makes durable every page of the file written before it began, so
//! a sync dispatched after the write of the records up to T returned covers every txid <= T.
//! Results are taken in dispatch order ([`Commit`]): a later sync's success is not used
//! while an earlier one is still running, and an earlier failure takes the directory out
//! first. Every sync slot has its own file descriptor, so a writeback error is reported to
//! each slot whose sync may have covered the lost page (Linux reports it once per open
//! file). A directory whose write or sync failed gets no more edits; the log fails when none
//! is left.
//!
//! Rolling (finishing the in-progress segment and starting the next) is a marker in the
//! buffer: records before it go to the old segment, records after it to the new one. The
//! writer rolls only when no sync is in flight, and syncs around a roll itself.

use crate::edit_log::{encode_record, finished_name, inprogress_name, segment_header};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tusk_common::durable::{fsync_dir, write_properties};
use tusk_proto::storage::EditOp;

/// Syncs on the disk at once. More than a few buys nothing: with 4 in flight a sync starts
/// within a quarter of a sync's time of its records being written.
pub const SYNCS_IN_FLIGHT: usize = 4;

struct Roll {
    offset: usize,
    boundary: u64,
    waiters: Vec<mpsc::Sender<Result<u64, String>>>,
}

/// One finished sync: the txids it covers, the directories where it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncResult {
    pub upto: u64,
    pub failed_dirs: Vec<(usize, String)>,
    pub took: Duration,
}

/// The durability bookkeeping, kept pure so that its ordering rules are tested without
/// disks: syncs are numbered when dispatched and their results are taken strictly in that
/// order, whatever order they finish in.
#[derive(Debug)]
pub(crate) struct Commit {
    pub synced_txid: u64,
    /// Name directories (by their position in the list given to `Journal::open`) still
    /// receiving edits.
    pub healthy: Vec<bool>,
    pub failed: Option<String>,
    next_seq: u64,
    next_retire: u64,
    finished: BTreeMap<u64, SyncResult>,
}

impl Commit {
    pub fn new(dirs: usize, synced_txid: u64) -> Commit {
        Commit {
            synced_txid,
            healthy: vec![true; dirs],
            failed: None,
            next_seq: 0,
            next_retire: 0,
            finished: BTreeMap::new(),
        }
    }

    /// Numbers a sync about to be dispatched.
    pub fn dispatch(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// Syncs dispatched whose result has not been taken yet.
    pub fn outstanding(&self) -> u64 {
        self.next_seq - self.next_retire
    }

    /// Takes a directory out for good; the log fails when none is left.
    pub fn fail_dir(&mut self, dir: usize, error: &str) {
        if self.healthy.get(dir).copied().unwrap_or(false) {
            self.healthy[dir] = false;
            tracing::error!(dir, error, "name directory failed; it no longer receives edits");
        }
        if self.failed.is_none() && !self.healthy.iter().any(|&h| h) {
            tracing::error!(
                error,
                "every name directory failed; the namenode refuses all further changes and must be restarted"
            );
            self.failed = Some(format!("the edit log cannot be written: {error}"));
        }
    }

    /// Records the result of sync `seq`; returns the results taken (in dispatch order) as
    /// `(upto, records newly durable, took)`.
    pub fn finish(&mut self, seq: u64, result: SyncResult) -> Vec<(u64, u64, Duration)> {
        debug_assert!(seq >= self.next_retire && seq < self.next_seq, "sync {seq} finished twice or never dispatched");
        self.finished.insert(seq, result);
        let mut taken = Vec::new();
        while let Some(r) = self.finished.remove(&self.next_retire) {
            self.next_retire += 1;
            for (dir, e) in &r.failed_dirs {
                self.fail_dir(*dir, e);
            }
            // Every directory still healthy synced these records: a failed one was taken
            // out above, by this result or an earlier one.
            if self.failed.is_none() && r.upto > self.synced_txid {
                taken.push((r.upto, r.upto - self.synced_txid, r.took));
                self.synced_txid = r.upto;
            }
        }
        taken
    }

    /// A sync the writer did itself with nothing in flight (around a roll).
    pub fn synced_inline(&mut self, upto: u64) {
        debug_assert_eq!(self.outstanding(), 0);
        self.synced_txid = self.synced_txid.max(upto);
    }
}

struct State {
    buf: Vec<u8>,
    /// Txid the next appended record gets.
    next_txid: u64,
    roll: Option<Roll>,
    shutdown: bool,
    commit: Commit,
    /// Sync threads waiting for work.
    free_slots: Vec<usize>,
    /// Async callers waiting for their txid, woken only when it is durable (not on every
    /// sync: with several syncs in flight, waking all 64 waiters each time costs more CPU
    /// than the mutations themselves). Dropped senders mean "look at `commit.failed`".
    waiters: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here for records, a roll, a free sync slot or shutdown.
    work: Condvar,
    synced: Condvar,
    syncs: AtomicU64,
    synced_records: AtomicU64,
    /// Time spent in the fdatasyncs counted in `syncs`.
    sync_nanos: AtomicU64,
}

impl Shared {
    /// Tells every waiter where durability stands. Called with the state locked, so that
    /// two sync threads cannot publish out of order.
    fn publish(&self, st: &mut State) {
        if st.commit.failed.is_some() {
            st.waiters.clear();
        } else {
            let later = st.waiters.split_off(&(st.commit.synced_txid + 1));
            for (_, senders) in std::mem::replace(&mut st.waiters, later) {
                for s in senders {
                    let _ = s.send(());
                }
            }
        }
        self.synced.notify_all();
    }

    fn count(&self, taken: &[(u64, u64, Duration)]) {
        for &(_, records, took) in taken {
            metrics::histogram!("namenode_editlog_sync_seconds").record(took.as_secs_f64());
            metrics::histogram!("namenode_editlog_sync_batch_records").record(records as f64);
            metrics::counter!("namenode_editlog_transactions_total").increment(records);
            self.syncs.fetch_add(1, Ordering::Relaxed);
            self.sync_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
            self.synced_records.fetch_add(records, Ordering::Relaxed);
        }
    }
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalStats {
    pub syncs: u64,
    pub records: u64,
    /// Time spent in those syncs (fdatasync of every name directory).
    pub sync_time: Duration,
}

impl JournalStats {
    /// The counts between `earlier` and these.
    pub fn since(self, earlier: JournalStats) -> JournalStats {
        JournalStats {
            syncs: self.syncs.saturating_sub(earlier.syncs),
            records: self.records.saturating_sub(earlier.records),
            sync_time: self.sync_time.saturating_sub(earlier.sync_time),
        }
    }

    /// Records made durable per sync (0 with no sync).
    pub fn records_per_sync(&self) -> f64 {
        self.records as f64 / self.syncs.max(1) as f64
    }
}

pub struct Journal {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

struct SegmentFile {
    /// Position in the directory list (`Commit::healthy`).
    dir: usize,
    current_dir: PathBuf,
    file: File,
    /// One descriptor per sync slot (see the module comment).
    sync_fds: Vec<Arc<File>>,
}

/// One sync for a sync thread: fdatasync these files, which makes `upto` durable.
struct Job {
    seq: u64,
    slot: usize,
    upto: u64,
    files: Vec<(usize, Arc<File>)>,
}

struct Writer {
    shared: Arc<Shared>,
    segments: Vec<SegmentFile>,
    segment_first: u64,
    segment_last: u64,
    autoroll_txns: u64,
    workers: Vec<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding this lock already stops the namenode; keep going to report it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates `edits_inprogress_<first>` (header written and fsynced) and records `seen_txid`.
fn open_segment(dir: usize, current_dir: &Path, first: u64) -> std::io::Result<SegmentFile> {
    let path = current_dir.join(inprogress_name(first));
    let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
    file.write_all(&segment_header(first))?;
    file.sync_all()?;
    fsync_dir(current_dir)?;
    write_properties(&current_dir.join("seen_txid"), &[("seenTxid", first.to_string())])?;
    let mut sync_fds = Vec::with_capacity(SYNCS_IN_FLIGHT);
    for _ in 0..SYNCS_IN_FLIGHT {
        sync_fds.push(Arc::new(OpenOptions::new().write(true).open(&path)?));
    }
    Ok(SegmentFile { dir, current_dir: current_dir.to_owned(), file, sync_fds })
}

impl Journal {
    /// Starts a new in-progress segment at `first_txid` in every `current/` directory.
    pub fn open(current_dirs: &[PathBuf], first_txid: u64, autoroll_txns: u64) -> std::io::Result<Journal> {
        let mut segments = Vec::new();
        for (i, d) in current_dirs.iter().enumerate() {
            segments.push(open_segment(i, d, first_txid)?);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(1 << 16),
                next_txid: first_txid,
                roll: None,
                shutdown: false,
                commit: Commit::new(current_dirs.len(), first_txid - 1),
                free_slots: (0..SYNCS_IN_FLIGHT).collect(),
                waiters: BTreeMap::new(),
            }),
            work: Condvar::new(),
            synced: Condvar::new(),
            syncs: AtomicU64::new(0),
            synced_records: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
        });
        let mut workers = Vec::new();
        for slot in 0..SYNCS_IN_FLIGHT {
            let (tx, rx) = mpsc::channel();
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("edit-log-sync-{slot}"))
                .spawn(move || sync_thread(&shared, &rx))?;
            workers.push((tx, handle));
        }
        let writer = Writer {
            shared: shared.clone(),
            segments,
            segment_first: first_txid,
            segment_last: first_txid - 1,
            autoroll_txns: autoroll_txns.max(1),
            workers,
        };
        let thread = std::thread::Builder::new().name("edit-log-write".into()).spawn(move || writer.run())?;
        Ok(Journal { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Buffers one record and returns its txid. Called with the namespace lock held, right
    /// after the op was applied, so that txids follow apply order.
    pub fn append(&self, op: &EditOp) -> Result<u64, String> {
        let mut st = lock(&self.shared.state);
        if let Some(f) = &st.commit.failed {
            return Err(f.clone());
        }
        if st.shutdown {
            // The writer is gone: a record appended now would never become durable.
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
        if let Some(f) = &st.commit.failed {
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
        lock(&self.shared.state).commit.synced_txid
    }

    pub fn stats(&self) -> JournalStats {
        JournalStats {
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            records: self.shared.synced_records.load(Ordering::Relaxed),
            sync_time: Duration::from_nanos(self.shared.sync_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Waits until `txid` is durable in every healthy name directory.
    pub async fn wait_synced(&self, txid: u64) -> Result<(), String> {
        let rx = {
            let mut st = lock(&self.shared.state);
            if st.commit.synced_txid >= txid {
                return Ok(());
            }
            if let Some(f) = &st.commit.failed {
                return Err(f.clone());
            }
            let (tx, rx) = oneshot::channel();
            st.waiters.entry(txid).or_default().push(tx);
            rx
        };
        // An error means the sender was dropped: the log failed or is gone.
        let _ = rx.await;
        let st = lock(&self.shared.state);
        if st.commit.synced_txid >= txid {
            Ok(())
        } else {
            Err(st.commit.failed.clone().unwrap_or_else(|| "the edit log was closed".into()))
        }
    }

    /// Blocking form of [`wait_synced`](Self::wait_synced), for threads outside the runtime.
    pub fn wait_synced_blocking(&self, txid: u64) -> Result<(), String> {
        let mut st = lock(&self.shared.state);
        loop {
            if st.commit.synced_txid >= txid {
                return Ok(());
            }
            if let Some(f) = &st.commit.failed {
                return Err(f.clone());
            }
            st = self.shared.synced.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Finishes the in-progress segment after every record appended so far and starts the
    /// next. Returns the last txid of the finished segment. Blocks until done.
    pub fn roll(&self) -> Result<u64, String> {
        let (tx, rx) = mpsc::channel();
        {
            let mut st = lock(&self.shared.state);
            if let Some(f) = &st.commit.failed {
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
        rx.recv().map_err(|_| "the edit log writer stopped".to_string())?
    }

    /// Flushes what is buffered and stops the writer. The in-progress segment stays as it
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

/// A sync thread: fdatasyncs what it is given and takes the results in dispatch order.
fn sync_thread(shared: &Shared, jobs: &mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        let started = Instant::now();
        let failed_dirs =
            job.files.iter().filter_map(|(dir, f)| f.sync_data().err().map(|e| (*dir, e.to_string()))).collect();
        let result = SyncResult { upto: job.upto, failed_dirs, took: started.elapsed() };
        drop(job.files);
        let mut st = lock(&shared.state);
        st.free_slots.push(job.slot);
        let taken = st.commit.finish(job.seq, result);
        // Counted before anyone is answered, so that the stats cover every answered record.
        shared.count(&taken);
        shared.publish(&mut st);
        drop(st);
        shared.work.notify_one();
    }
}

/// What the writer takes from the shared state in one round.
enum Round {
    /// Write these bytes (records up to the txid) and dispatch their sync.
    Write(Vec<u8>, u64),
    /// Nothing in flight: write, sync and roll here (a requested roll, or the segment is full).
    Inline(Vec<u8>, u64, Option<Roll>),
    Stop,
}

impl Writer {
    fn autoroll_due(&self) -> bool {
        self.segment_last + 1 - self.segment_first >= self.autoroll_txns
    }

    fn next_round(&mut self) -> Round {
        let shared = self.shared.clone();
        let mut st = lock(&shared.state);
        loop {
            if st.commit.failed.is_some() {
                return Round::Stop;
            }
            let quiet = st.commit.outstanding() == 0;
            let roll_due = st.roll.is_some() || self.autoroll_due();
            if roll_due && quiet {
                break;
            }
            if !roll_due && !st.buf.is_empty() && !st.free_slots.is_empty() {
                break;
            }
            if st.shutdown && st.buf.is_empty() && st.roll.is_none() && quiet {
                return Round::Stop;
            }
            st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        // Directories whose sync failed get nothing more.
        self.segments.retain(|s| st.commit.healthy.get(s.dir).copied().unwrap_or(false));
        let bytes = std::mem::replace(&mut st.buf, Vec::with_capacity(1 << 16));
        let last_txid = st.next_txid - 1;
        if st.roll.is_some() || self.autoroll_due() {
            Round::Inline(bytes, last_txid, st.roll.take())
        } else {
            Round::Write(bytes, last_txid)
        }
    }

    fn run(mut self) {
        loop {
            match self.next_round() {
                Round::Stop => break,
                Round::Write(bytes, last_txid) => self.write_and_dispatch(&bytes, last_txid),
                Round::Inline(bytes, last_txid, roll) => self.inline(&bytes, last_txid, roll),
            }
        }
        // Closing the channels ends the sync threads once their last job is done.
        for (tx, handle) in std::mem::take(&mut self.workers) {
            drop(tx);
            let _ = handle.join();
        }
    }

    fn write_and_dispatch(&mut self, bytes: &[u8], last_txid: u64) {
        let mut failed = Vec::new();
        self.segments.retain_mut(|s| match s.file.write_all(bytes) {
            Ok(()) => true,
            Err(e) => {
                failed.push((s.dir, format!("{}: {e}", s.current_dir.display())));
                false
            }
        });
        self.segment_last = last_txid;
        let shared = self.shared.clone();
        let mut st = lock(&shared.state);
        for (dir, e) in &failed {
            st.commit.fail_dir(*dir, e);
        }
        if st.commit.failed.is_some() {
            shared.publish(&mut st);
            return;
        }
        let Some(slot) = st.free_slots.pop() else {
            unreachable!("the writer takes a round only with a sync slot free");
        };
        let seq = st.commit.dispatch();
        drop(st);
        let files = self.segments.iter().map(|s| (s.dir, s.sync_fds[slot].clone())).collect();
        // A send fails only when the sync thread is gone, which happens after this thread
        // stops; the job then never finishes and the log cannot be trusted.
        if self.workers[slot].0.send(Job { seq, slot, upto: last_txid, files }).is_err() {
            let mut st = lock(&shared.state);
            st.commit.failed = Some("an edit-log sync thread stopped".into());
            shared.publish(&mut st);
        }
    }

    fn inline(&mut self, bytes: &[u8], last_txid: u64, roll: Option<Roll>) {
        let started = Instant::now();
        let mut roll_answer = None;
        let result = match roll {
            None => self.write_and_sync(bytes, last_txid),
            Some(r) => {
                let res = self
                    .write_and_sync(&bytes[..r.offset], r.boundary)
                    .and_then(|()| self.roll(r.boundary))
                    .and_then(|()| self.write_and_sync(&bytes[r.offset..], last_txid));
                roll_answer = Some((r.waiters, res.clone().map(|()| r.boundary)));
                res
            }
        };
        let result = result.and_then(|()| if self.autoroll_due() { self.roll(self.segment_last) } else { Ok(()) });
        let shared = self.shared.clone();
        let mut st = lock(&shared.state);
        if let Err(e) = &result {
            if st.commit.failed.is_none() {
                tracing::error!(error = %e, "every name directory failed; the namenode refuses all further changes and must be restarted");
                st.commit.failed = Some(format!("the edit log cannot be written: {e}"));
            }
        }
        // Directories dropped above (their error is logged there) are out for good.
        let mut kept = vec![false; st.commit.healthy.len()];
        for s in &self.segments {
            kept[s.dir] = true;
        }
        for (dir, kept) in kept.into_iter().enumerate() {
            if !kept {
                st.commit.fail_dir(dir, "failed while syncing or rolling the edit log");
            }
        }
        let mut taken = Vec::new();
        if result.is_ok() && st.commit.failed.is_none() {
            let before = st.commit.synced_txid;
            st.commit.synced_inline(last_txid);
            if last_txid > before {
                taken.push((last_txid, last_txid - before, started.elapsed()));
            }
        }
        shared.count(&taken);
        shared.publish(&mut st);
        drop(st);
        // Answered after the state says the records are durable, so a caller of `roll`
        // sees its boundary synced.
        if let Some((waiters, answer)) = roll_answer {
            for w in waiters {
                let _ = w.send(answer.clone());
            }
        }
    }

    /// Writes and syncs in every healthy directory; a directory that fails is dropped with
    /// an error log; the call fails only when none is left.
    fn write_and_sync(&mut self, bytes: &[u8], last_txid: u64) -> Result<(), String> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut first_err = None;
        self.segments.retain_mut(|s| match s.file.write_all(bytes).and_then(|()| s.file.sync_data()) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(dir = %s.current_dir.display(), error = %e, "name directory failed; it no longer receives edits");
                first_err.get_or_insert_with(|| format!("{}: {e}", s.current_dir.display()));
                false
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
                .and_then(|()| open_segment(s.dir, &s.current_dir, boundary + 1));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit_log::read_segment;
    use tusk_proto::storage::{edit_op::Op, OpDelete};

    fn ok(upto: u64) -> SyncResult {
        SyncResult { upto, failed_dirs: Vec::new(), took: Duration::ZERO }
    }

    #[test]
    fn results_are_taken_in_dispatch_order() {
        let mut c = Commit::new(1, 0);
        let (a, b, d) = (c.dispatch(), c.dispatch(), c.dispatch());
        // The later syncs finish first: nothing is durable until the first one is in.
        assert!(c.finish(d, ok(30)).is_empty());
        assert!(c.finish(b, ok(20)).is_empty());
        assert_eq!(c.synced_txid, 0);
        let taken = c.finish(a, ok(10));
        assert_eq!(taken.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(), [(10, 10), (20, 10), (30, 10)]);
        assert_eq!(c.synced_txid, 30);
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn an_earlier_failure_voids_a_later_success_in_that_directory() {
        let mut c = Commit::new(1, 0);
        let (a, b) = (c.dispatch(), c.dispatch());
        assert!(c.finish(b, ok(20)).is_empty());
        let failed = SyncResult { upto: 10, failed_dirs: vec![(0, "EIO".into())], took: Duration::ZERO };
        assert!(c.finish(a, failed).is_empty());
        assert_eq!(c.synced_txid, 0, "nothing may be acknowledged after the only directory failed");
        assert!(c.failed.is_some());
    }

    #[test]
    fn a_failed_directory_leaves_the_others_in_service() {
        let mut c = Commit::new(2, 5);
        let (a, b) = (c.dispatch(), c.dispatch());
        let failed = SyncResult { upto: 10, failed_dirs: vec![(1, "EIO".into())], took: Duration::ZERO };
        assert_eq!(c.finish(a, failed).len(), 1);
        assert_eq!(c.synced_txid, 10);
        assert_eq!(c.healthy, [true, false]);
        // A later report about the dead directory changes nothing.
        let again = SyncResult { upto: 20, failed_dirs: vec![(1, "EIO".into())], took: Duration::ZERO };
        assert_eq!(c.finish(b, again).len(), 1);
        assert_eq!(c.synced_txid, 20);
        assert!(c.failed.is_none());
    }

    fn op(i: u64) -> EditOp {
        EditOp { op: Some(Op::Delete(OpDelete { path: format!("/file-{i}"), time_ms: i as i64 })) }
    }

    fn txids(dir: &Path) -> Vec<u64> {
        let mut names: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let mut seen = Vec::new();
        for n in names.iter().filter(|n| n.starts_with("edits_")) {
            read_segment(&dir.join(n), None, n.contains("inprogress"), |t, _| {
                seen.push(t);
                Ok(())
            })
            .unwrap();
        }
        seen
    }

    /// Many threads appending and waiting at once, with rolls in between: every
    /// acknowledged record is in the file when it is acknowledged, and the segments hold
    /// every txid once, in order, in both directories.
    #[test]
    fn overlapping_syncs_acknowledge_only_written_records_and_keep_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = [tmp.path().join("a"), tmp.path().join("b")];
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let j = Arc::new(Journal::open(&dirs, 1, 500).unwrap());
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let j = j.clone();
                std::thread::spawn(move || {
                    for k in 0..100 {
                        let txid = j.append(&op(t * 1000 + k)).unwrap();
                        j.wait_synced_blocking(txid).unwrap();
                        assert!(j.last_synced_txid() >= txid);
                    }
                })
            })
            .collect();
        for r in 0..3 {
            std::thread::sleep(Duration::from_millis(5));
            let boundary = j.roll().unwrap();
            assert!(boundary <= j.last_synced_txid(), "roll {r}: a finished segment holds only durable records");
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(j.last_synced_txid(), 1600);
        let stats = j.stats();
        assert_eq!(stats.records, 1600);
        assert!(stats.syncs <= stats.records);
        j.close();
        for d in &dirs {
            assert_eq!(txids(d), (1..=1600).collect::<Vec<_>>(), "{}", d.display());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_waiters_wake_when_their_txid_is_durable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let j = Arc::new(Journal::open(std::slice::from_ref(&dir), 1, 1_000_000).unwrap());
        let mut tasks = Vec::new();
        for t in 0..32 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                for k in 0..20 {
                    let txid = j.append(&op(t * 100 + k)).unwrap();
                    j.wait_synced(txid).await.unwrap();
                    assert!(j.last_synced_txid() >= txid);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(j.last_synced_txid(), 640);
        assert!(lock(&j.shared.state).waiters.is_empty(), "every waiter was answered and removed");
        j.close();
        assert_eq!(txids(&dir), (1..=640).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_failed_log_answers_its_waiters_with_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Arc::new(Journal::open(&[tmp.path().to_owned()], 1, 1_000_000).unwrap());
        // A txid that will never be written: only the failure can end the wait.
        let waiter = tokio::spawn({
            let j = j.clone();
            async move { j.wait_synced(1000).await }
        });
        while lock(&j.shared.state).waiters.is_empty() {
            tokio::task::yield_now().await;
        }
        {
            let mut st = lock(&j.shared.state);
            st.commit.fail_dir(0, "EIO (injected)");
            j.shared.publish(&mut st);
        }
        let err = waiter.await.unwrap().unwrap_err();
        assert!(err.contains("EIO (injected)"), "{err}");
        assert!(j.append(&op(1)).is_err(), "a failed log takes no more records");
    }

    #[test]
    fn acknowledged_records_are_on_disk_when_waited_for() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let j = Journal::open(std::slice::from_ref(&dir), 1, 1_000_000).unwrap();
        for i in 0..50 {
            let txid = j.append(&op(i)).unwrap();
            j.wait_synced_blocking(txid).unwrap();
            // Read back without closing: what was acknowledged is in the in-progress file.
            assert_eq!(txids(&dir).last().copied(), Some(txid));
        }
        j.close();
    }
}
