//! Lease renewal (HDFS's `LeaseRenewer`): while a client has files open for writing it tells
//! the namenode every `client.lease_renew_interval_ms` that it is alive, so that no other
//! writer takes its files over (the namenode's soft limit). Writing calls renew too; this
//! covers a writer that is slow or idle between writes. One task per client, running only
//! while a file is open.

use crate::Client;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct LeaseRenewer {
    open: AtomicUsize,
    running: AtomicBool,
    interval: Duration,
}

/// Held by an open [`FileWriter`](crate::FileWriter); dropping it (close, or the writer
/// dropped on an error) lets the renewal stop once no file is open.
pub(crate) struct WriterLease {
    renewer: Arc<LeaseRenewer>,
}

impl Drop for WriterLease {
    fn drop(&mut self) {
        self.renewer.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LeaseRenewer {
    pub(crate) fn new(interval: Duration) -> Arc<LeaseRenewer> {
        Arc::new(LeaseRenewer { open: AtomicUsize::new(0), running: AtomicBool::new(false), interval })
    }

    /// A file was opened for writing by `client`: renew until every such file is closed.
    pub(crate) fn writer_opened(self: &Arc<Self>, client: &Client) -> WriterLease {
        self.open.fetch_add(1, Ordering::AcqRel);
        if !self.running.swap(true, Ordering::AcqRel) {
            let (me, client) = (Arc::clone(self), client.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(me.interval).await;
                    if me.open.load(Ordering::Acquire) == 0 {
                        me.running.store(false, Ordering::Release);
                        // A writer opened meanwhile may have seen `running` still set.
                        if me.open.load(Ordering::Acquire) == 0 || me.running.swap(true, Ordering::AcqRel) {
                            return;
                        }
                    }
                    if let Err(e) = client.renew_lease().await {
                        tracing::warn!(error = %e, "cannot renew the lease on files open for writing");
                    }
                }
            });
        }
        WriterLease { renewer: Arc::clone(self) }
    }
}
