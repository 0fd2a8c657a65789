//! Safe mode: a read-only state. At start-up the namenode is in safe mode until the
//! fraction `threshold` of its blocks have a reported replica (then it waits `extension`
//! and leaves by itself; at once when there are no blocks). An administrator can enter and
//! leave it at any time; manual safe mode is left only manually.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SafeMode {
    manual: bool,
    startup: bool,
    threshold: f64,
    extension: Duration,
    block_total: u64,
    block_safe: u64,
    reached_at: Option<Instant>,
}

impl SafeMode {
    /// Start-up safe mode over `block_total` blocks.
    pub fn starting(block_total: u64, threshold: f64, extension: Duration, now: Instant) -> Self {
        let mut sm = SafeMode {
            manual: false,
            startup: true,
            threshold,
            extension,
            block_total,
            block_safe: 0,
            reached_at: None,
        };
        sm.check(now);
        sm
    }

    fn threshold_met(&self) -> bool {
        self.block_total == 0 || self.block_safe as f64 >= self.threshold * self.block_total as f64
    }

    /// Re-evaluates the automatic exit; returns true when this call left safe mode.
    pub fn check(&mut self, now: Instant) -> bool {
        if !self.startup {
            return false;
        }
        if !self.threshold_met() {
            self.reached_at = None;
            return false;
        }
        let reached = *self.reached_at.get_or_insert(now);
        if self.block_total == 0 || now.duration_since(reached) >= self.extension {
            self.startup = false;
            if !self.manual {
                tracing::info!(blocks = self.block_total, "leaving safe mode");
            }
            return !self.manual;
        }
        false
    }

    /// Still in start-up safe mode (the block reports are not all in): the namenode builds
    /// its replication queues when this turns false.
    pub fn in_startup(&self) -> bool {
        self.startup
    }

    pub fn is_on(&self) -> bool {
        self.manual || self.startup
    }

    pub fn enter(&mut self) {
        self.manual = true;
    }

    /// Leaves safe mode now, manual or not.
    pub fn leave(&mut self) {
        self.manual = false;
        self.startup = false;
    }

    /// Reported-block accounting (fed by block reports).
    pub fn set_blocks(&mut self, total: u64, safe: u64, now: Instant) {
        self.block_total = total;
        self.block_safe = safe;
        self.check(now);
    }

    /// The explanation HDFS appends to a SafeModeException.
    pub fn tip(&self) -> String {
        if self.manual {
            "It was turned on manually. Use \"tusk dfsadmin -safemode leave\" to turn safe mode off.".into()
        } else if self.startup && !self.threshold_met() {
            format!(
                "The reported blocks {} needs additional {} blocks to reach the threshold {:.4} of total blocks {}.",
                self.block_safe,
                ((self.threshold * self.block_total as f64).ceil() as u64).saturating_sub(self.block_safe),
                self.threshold,
                self.block_total
            )
        } else if self.startup {
            "The reported blocks have reached the threshold; safe mode will be turned off shortly.".into()
        } else {
            "Safe mode is OFF.".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_blocks_leaves_at_once() {
        let sm = SafeMode::starting(0, 0.999, Duration::from_secs(30), Instant::now());
        assert!(!sm.is_on());
    }

    #[test]
    fn threshold_then_extension() {
        let t0 = Instant::now();
        let mut sm = SafeMode::starting(1000, 0.999, Duration::from_secs(30), t0);
        assert!(sm.is_on());
        sm.set_blocks(1000, 998, t0);
        assert!(sm.is_on());
        assert!(sm.tip().contains("needs additional 1 blocks"), "{}", sm.tip());
        sm.set_blocks(1000, 999, t0);
        assert!(sm.is_on());
        assert!(sm.check(t0 + Duration::from_secs(31)));
        assert!(!sm.is_on());
    }

    #[test]
    fn manual_stays_until_left() {
        let t0 = Instant::now();
        let mut sm = SafeMode::starting(0, 0.999, Duration::ZERO, t0);
        sm.enter();
        assert!(!sm.check(t0));
        assert!(sm.is_on());
        assert!(sm.tip().contains("manually"));
        sm.leave();
        assert!(!sm.is_on());
    }
}
