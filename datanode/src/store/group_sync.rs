//! Group commit for replica durability. Replicas finalized at the same time on one volume
//! share one flush of that volume's file system (`syncfs(2)`) instead of each paying for its
//! own fsyncs of the block file, the meta file and the two directories it is renamed
//! between: the edit log's group commit, applied to the data directories.
//!
//! A caller asks for a sync *after* its writes. Every sync that starts after the request
//! covers those writes, so the caller joins the next sync to start (the one being gathered),
//! never the one already running; one caller at a time runs a sync while the next round
//! gathers. Every caller of a round gets that round's result: a failed flush fails all of
//! them, including the ones whose own data may have been fine, because the file system does
//! not say whose data it could not write.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// One flush and the callers waiting for it.
#[derive(Default)]
struct Round {
    /// Set once, by the caller that ran the flush.
    result: OnceLock<Result<(), (io::ErrorKind, String)>>,
}

struct State {
    /// The round gathering callers; it starts when no flush is running.
    next: Arc<Round>,
    running: bool,
}

/// What a round runs: a volume's [`SyncFs`], or a closure in the tests.
pub trait Flush {
    fn flush(&self) -> io::Result<()>;
}

impl<F: Fn() -> io::Result<()>> Flush for F {
    fn flush(&self) -> io::Result<()> {
        self()
    }
}

/// Runs `flush` for many callers at once.
pub struct GroupSync<F> {
    flush: F,
    state: Mutex<State>,
    finished: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is plain counters and an `Arc`; a panic elsewhere leaves it consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<F: Flush> GroupSync<F> {
    pub fn new(flush: F) -> GroupSync<F> {
        GroupSync { flush, state: Mutex::new(State { next: Arc::default(), running: false }), finished: Condvar::new() }
    }

    /// Returns once a flush that started after this call has finished: everything the caller
    /// wrote before calling is durable (or the flush's error). Blocking.
    pub fn sync(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        let mine = Arc::clone(&state.next);
        loop {
            if let Some(result) = mine.result.get() {
                return result.clone().map_err(|(kind, message)| io::Error::new(kind, message));
            }
            if state.running {
                state = self.finished.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Nobody is flushing: this caller runs the round it joined (it is `next`, since a
            // round is only taken out of `next` by the caller that runs it).
            state.running = true;
            let round = std::mem::take(&mut state.next);
            debug_assert!(Arc::ptr_eq(&round, &mine));
            drop(state);
            let result = self.flush.flush().map_err(|e| (e.kind(), e.to_string()));
            // Set before the lock is taken again: a waiter checks the result under the lock
            // and then waits, so the notification below cannot be missed.
            let _ = round.result.set(result);
            state = lock(&self.state);
            state.running = false;
            self.finished.notify_all();
        }
    }
}

/// The flush of one volume: `syncfs(2)` on its directory, which writes back every dirty page
/// and inode of that file system and commits its journal (and since Linux 5.8 reports any
/// writeback error on it since the last call). Counted in `datanode_volume_flushes_total`.
pub struct SyncFs {
    dir: File,
}

impl SyncFs {
    pub fn open(dir: &Path) -> io::Result<SyncFs> {
        Ok(SyncFs { dir: File::open(dir)? })
    }
}

impl Flush for SyncFs {
    fn flush(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        metrics::counter!("datanode_volume_flushes_total").increment(1);
        // SAFETY: the descriptor is owned by `self.dir` and open for the whole call.
        if unsafe { libc::syncfs(self.dir.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn a_sync_covers_every_write_made_before_it_was_asked_for() {
        // `written` counts writes; a flush makes durable what was written when it started.
        let written = Arc::new(AtomicU64::new(0));
        let durable = Arc::new(AtomicU64::new(0));
        let flushes = Arc::new(AtomicU64::new(0));
        let (w, d, f) = (Arc::clone(&written), Arc::clone(&durable), Arc::clone(&flushes));
        let group = Arc::new(GroupSync::new(move || {
            f.fetch_add(1, Ordering::SeqCst);
            let upto = w.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            d.fetch_max(upto, Ordering::SeqCst);
            Ok(())
        }));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, written, durable) = (Arc::clone(&group), Arc::clone(&written), Arc::clone(&durable));
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group.sync().unwrap();
                        assert!(
                            durable.load(Ordering::SeqCst) >= mine,
                            "sync returned before write {mine} was flushed"
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (flushes, requests) = (flushes.load(Ordering::SeqCst), written.load(Ordering::SeqCst));
        assert_eq!(requests, 16 * 20);
        // 16 callers and a 2 ms flush: they must have shared flushes.
        assert!(flushes < requests, "{flushes} flushes for {requests} requests");
        assert!(flushes > 0);
    }

    #[test]
    fn a_failed_flush_fails_its_callers_and_the_next_round_starts_clean() {
        let fail = Arc::new(AtomicBool::new(true));
        let flushes = Arc::new(AtomicU64::new(0));
        let (f, n) = (Arc::clone(&fail), Arc::clone(&flushes));
        let group = GroupSync::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
            if f.load(Ordering::SeqCst) {
                Err(io::Error::other("EIO on the test disk"))
            } else {
                Ok(())
            }
        });
        let e = group.sync().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert!(e.to_string().contains("EIO on the test disk"), "{e}");
        fail.store(false, Ordering::SeqCst);
        group.sync().unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn syncfs_flushes_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        let group = GroupSync::new(SyncFs::open(dir.path()).unwrap());
        group.sync().unwrap();
        assert!(SyncFs::open(&dir.path().join("missing")).is_err());
    }
}
