//! [`start`] opens the store, then runs the data transfer server and the namenode actor as
//! tasks; [`DatanodeHandle`] stops them. One stop signal serves both ways of stopping: the
//! handle's `shutdown`, and the actor stopping the datanode by itself (a namenode's
//! Shutdown command, an incompatible cluster id).

use crate::error::DatanodeError;
use crate::namenode_actor::NamenodeActor;
use crate::store::Store;
use crate::xfer::{self, XferContext};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tusk_common::config::DatanodeConfig;

/// Data directory used when none is configured.
pub const DEFAULT_DATA_DIR: &str = "./tusk-data/data";
/// How long `shutdown` waits for stragglers (blocking disk work of cancelled writes) to let
/// go of the store, so the index is closed when it returns.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// The receiving end of the stop signal.
#[derive(Clone)]
pub struct Shutdown(pub(crate) watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once the stop signal is given (or its sender is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The sending end: anyone holding it can stop the datanode.
#[derive(Clone)]
pub struct StopSignal(Arc<watch::Sender<bool>>);

impl StopSignal {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// One data directory as the web page shows it.
#[derive(Debug, Clone)]
pub struct VolumeStatus {
    pub dir: PathBuf,
    pub capacity: u64,
    pub available: u64,
    /// Why it was taken out of service, if it was.
    pub failure: Option<String>,
}

/// A datanode's state (`DatanodeHandle::status`).
#[derive(Debug, Clone)]
pub struct DatanodeStatus {
    pub uuid: String,
    pub cluster_id: String,
    pub xfer_addr: SocketAddr,
    pub namenode: String,
    pub volumes: Vec<VolumeStatus>,
    pub finalized: u64,
    pub being_written: u64,
    pub bytes: u64,
    pub active_transfers: u32,
    pub scanner: crate::scanner::ScanProgress,
}

/// What a datanode's web page reads (`DatanodeHandle::view`).
#[derive(Clone)]
pub struct DatanodeView {
    xfer_addr: SocketAddr,
    namenode: String,
    ctx: Arc<XferContext>,
    scan: Arc<std::sync::Mutex<crate::scanner::ScanProgress>>,
    store: Arc<Store>,
}

impl DatanodeView {
    /// What the datanode holds and does now, for its web page.
    pub fn status(&self) -> DatanodeStatus {
        let failed = self.store.failed_volumes();
        let volumes = self
            .store
            .volumes()
            .iter()
            .map(|v| {
                let failure = failed.iter().find(|(d, _)| *d == v.dir).map(|(_, why)| why.clone());
                let space = v.space().ok();
                VolumeStatus {
                    dir: v.dir.clone(),
                    capacity: space.map_or(0, |s| s.capacity),
                    available: space.map_or(0, |s| s.available),
                    failure,
                }
            })
            .collect();
        let (mut finalized, mut rbw, mut bytes) = (0u64, 0u64, 0u64);
        for (_, r) in self.store.report() {
            bytes += r.len;
            if r.state == crate::replica_index::ReplicaState::Finalized {
                finalized += 1;
            } else {
                rbw += 1;
            }
        }
        DatanodeStatus {
            uuid: self.store.uuid(),
            cluster_id: self.store.cluster_id(),
            xfer_addr: self.xfer_addr,
            namenode: self.namenode.clone(),
            volumes,
            finalized,
            being_written: rbw,
            bytes,
            active_transfers: self.ctx.active.load(std::sync::atomic::Ordering::Relaxed),
            scanner: *self.scan.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// A running datanode.
pub struct DatanodeHandle {
    xfer_addr: SocketAddr,
    namenode: String,
    ctx: Arc<XferContext>,
    scan: Arc<std::sync::Mutex<crate::scanner::ScanProgress>>,
    store: Arc<Store>,
    stop: StopSignal,
    stopped: watch::Receiver<bool>,
}

impl DatanodeHandle {
    /// Where the data transfer server listens.
    pub fn xfer_addr(&self) -> SocketAddr {
        self.xfer_addr
    }

    /// The datanode's id, kept in every volume's VERSION file.
    pub fn uuid(&self) -> String {
        self.store.uuid()
    }

    /// Stops gracefully: stops serving (aborting transfers in progress, whose unfinished
    /// replicas are removed), flushes the index, and returns once the store is closed.
    pub async fn shutdown(self) {
        self.stop.stop();
        self.stopped().await;
        let DatanodeHandle { store, .. } = self;
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        while Arc::strong_count(&store) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if Arc::strong_count(&store) > 1 {
            tracing::warn!("datanode store still in use after shutdown");
        }
    }

    /// Resolves when the datanode has stopped: by itself (the namenode's Shutdown command, an
    /// incompatible cluster id) or through [`DatanodeHandle::shutdown`].
    pub async fn stopped(&self) {
        let mut rx = self.stopped.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// A handle for the web page: the datanode's state, read when asked. Drop it before
    /// [`DatanodeHandle::shutdown`] (it holds the store).
    pub fn view(&self) -> DatanodeView {
        DatanodeView {
            xfer_addr: self.xfer_addr,
            namenode: self.namenode.clone(),
            ctx: Arc::clone(&self.ctx),
            scan: Arc::clone(&self.scan),
            store: Arc::clone(&self.store),
        }
    }

    /// Test hook: (generation stamp, length, finalized) of a replica this datanode holds.
    pub fn replica_state(&self, block_id: u64) -> Option<(u64, u64, bool)> {
        self.store.get(block_id).map(|r| (r.genstamp, r.len, r.state == crate::replica_index::ReplicaState::Finalized))
    }

    /// Test hook: the finalized block file of a replica this datanode holds.
    pub fn block_file(&self, block_id: u64) -> Option<PathBuf> {
        self.store.block_file(block_id)
    }
}

/// Checks the data directories every `every`; stops the datanode when more than `tolerated`
/// have failed (HDFS's behaviour), or when the one holding the replica index fails.
async fn check_volumes(store: Arc<Store>, every: Duration, tolerated: u32, mut shutdown: Shutdown, stop: StopSignal) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let s = Arc::clone(&store);
        let Ok(failed) = tokio::task::spawn_blocking(move || s.check_volumes()).await else { continue };
        let index_lost = failed.iter().any(|(dir, _)| *dir == store.volumes()[0].dir);
        if failed.len() > tolerated as usize || index_lost {
            tracing::error!(
                failed = failed.len(),
                tolerated,
                index_lost,
                "too many failed data directories (or the one holding the replica index): stopping the datanode"
            );
            stop.stop();
            return;
        }
    }
}

/// Starts a datanode serving data transfers on `xfer_listener`. Fails (changing nothing)
/// when a data directory cannot be created or written or belongs to another datanode or
/// cluster. An unreachable namenode is not an error: the actor keeps trying.
pub async fn start(conf: DatanodeConfig, xfer_listener: TcpListener) -> Result<DatanodeHandle, DatanodeError> {
    let dirs = if conf.data_dirs.is_empty() { vec![PathBuf::from(DEFAULT_DATA_DIR)] } else { conf.data_dirs.clone() };
    let sync_on_close = conf.sync_on_close;
    let store = tokio::task::spawn_blocking(move || Store::open(&dirs, sync_on_close))
        .await
        .map_err(|e| DatanodeError::Fatal(format!("store start-up task failed: {e}")))??;
    let store = Arc::new(store);
    let xfer_addr = xfer_listener
        .local_addr()
        .map_err(|e| DatanodeError::Fatal(format!("data transfer listener has no address: {e}")))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = StopSignal(Arc::new(stop_tx));
    let (stopped_tx, stopped_rx) = watch::channel(false);
    let uuid = store.uuid();
    tracing::info!(%uuid, %xfer_addr, namenode = %conf.namenode, "datanode starting");
    let ctx = Arc::new(XferContext {
        store: Arc::clone(&store),
        active: AtomicU32::new(0),
        client_name: format!("datanode-{uuid}"),
    });
    let server =
        tokio::spawn(xfer::serve(xfer_listener, Arc::clone(&ctx), conf.max_transfers, Shutdown(stop_rx.clone())));
    let local_reads = if conf.short_circuit {
        match tusk_proto::short_circuit::bind(&uuid) {
            Ok(l) => Some(tokio::spawn(xfer::short_circuit::serve(l, Arc::clone(&ctx), Shutdown(stop_rx.clone())))),
            Err(e) => {
                let name = tusk_proto::short_circuit::socket_name(&uuid);
                tracing::warn!("short-circuit reads off: cannot listen on @{name}: {e}");
                None
            }
        }
    } else {
        None
    };
    let scan = crate::scanner::ScanConfig {
        period: Duration::from_secs(conf.scan_period_secs),
        bytes_per_sec: conf.scan_bytes_per_sec,
    };
    let scanner = crate::scanner::Scanner::new(Arc::clone(&store), scan);
    let scan_progress = scanner.progress();
    let scanner = tokio::spawn(scanner.run(Shutdown(stop_rx.clone())));
    let checker = tokio::spawn(check_volumes(
        Arc::clone(&store),
        Duration::from_millis(conf.volume_check_interval_ms.max(100)),
        conf.failed_volumes_tolerated,
        Shutdown(stop_rx.clone()),
        stop.clone(),
    ));
    let namenode = conf.namenode.clone();
    let handle_ctx = Arc::clone(&ctx);
    let actor = NamenodeActor::new(conf, xfer_addr.port(), Arc::clone(&ctx), Shutdown(stop_rx), stop.clone());
    let actor = tokio::spawn(actor.run());
    let flush_store = Arc::clone(&store);
    let stop_all = stop.clone();
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!("data transfer server task failed: {e}");
        }
        // The server ends only when stopping; make sure the actor follows.
        stop_all.stop();
        if let Err(e) = actor.await {
            tracing::error!("namenode actor task failed: {e}");
        }
        if let Err(e) = scanner.await {
            tracing::error!("block scanner task failed: {e}");
        }
        if let Err(e) = checker.await {
            tracing::error!("volume checker task failed: {e}");
        }
        if let Some(Err(e)) = match local_reads {
            Some(t) => Some(t.await),
            None => None,
        } {
            tracing::error!("short-circuit server task failed: {e}");
        }
        drop(ctx);
        match tokio::task::spawn_blocking(move || flush_store.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot flush the replica index: {e}"),
            Err(e) => tracing::warn!("index flush task failed: {e}"),
        }
        tracing::info!("datanode stopped");
        stopped_tx.send_replace(true);
    });
    Ok(DatanodeHandle { xfer_addr, namenode, ctx: handle_ctx, scan: scan_progress, store, stop, stopped: stopped_rx })
}
