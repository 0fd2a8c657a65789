//! Starting daemons from the command line: config to library call, signals to shutdown.

/// A daemon's status line on stdout. A closed stdout (`tusk namenode | head -1`) must not
/// kill the daemon, as `println!` would by panicking on EPIPE: the line is dropped instead.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tusk_common::config::Config;
use tusk_namenode::{Namesystem, NamesystemConfig};

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}

/// An HTTP server beside a daemon (web pages, /metrics, WebHDFS). Stop it before the daemon.
pub struct HttpServer {
    pub addr: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    fn spawn(what: &'static str, listener: tokio::net::TcpListener, app: axum::Router) -> Result<HttpServer> {
        let addr = listener.local_addr()?;
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        let task = tusk_http::spawn(what, listener, app, async move {
            let _ = rx.wait_for(|s| *s).await;
        });
        Ok(HttpServer { addr, stop, task })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A daemon's HTTP address: as configured, or (empty) the host of its RPC/transfer address
/// `beside` with Hadoop's port, or a free one when that address has port 0 (tests, several
/// daemons on one host); `off` = no HTTP server.
fn http_address(configured: &str, beside: &str, port: u16) -> String {
    if !configured.is_empty() {
        return if configured == "off" { String::new() } else { configured.to_owned() };
    }
    match beside.rsplit_once(':') {
        Some((host, "0")) => format!("{host}:0"),
        Some((host, _)) => format!("{host}:{port}"),
        None => format!("127.0.0.1:{port}"),
    }
}

/// Binds a daemon's HTTP address; empty means no HTTP server. With `fallback` (the embedded
/// pseudo-cluster) a busy port gives way to a free one instead of failing.
async fn bind_http(addr: &str, fallback: bool) -> Result<Option<tokio::net::TcpListener>> {
    if addr.is_empty() {
        return Ok(None);
    }
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e) if fallback => {
            tracing::warn!("cannot listen on {addr} for HTTP ({e}); using a free port");
            Ok(Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?))
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot listen on {addr} for HTTP (set another address, or \"\" for none)"))
        }
    }
}

/// A standalone datanode's data directories (default `./tusk-data/data`) and its bound
/// transfer listener.
async fn bind_xfer(dc: &mut tusk_common::config::DatanodeConfig) -> Result<tokio::net::TcpListener> {
    if dc.data_dirs.is_empty() {
        dc.data_dirs = vec![PathBuf::from("./tusk-data/data")];
    }
    tokio::net::TcpListener::bind(&dc.xfer_address).await.with_context(|| {
        format!(
            "cannot listen on {} (set another address with --xfer-address or datanode.xfer_address)",
            dc.xfer_address
        )
    })
}

/// Starts a datanode and its HTTP server (whose port it registers with the namenode).
async fn start_datanode(
    mut dc: tusk_common::config::DatanodeConfig,
    xfer: tokio::net::TcpListener,
    client: &tusk_common::config::ClientConfig,
    fallback: bool,
) -> Result<(tusk_datanode::DatanodeHandle, Option<HttpServer>)> {
    let http = bind_http(&http_address(&dc.http_address, &dc.xfer_address, 9864), fallback).await?;
    if let Some(l) = &http {
        dc.http_address = l.local_addr()?.to_string();
    }
    let namenode = dc.namenode.clone();
    let dn = tusk_datanode::start(dc, xfer).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let server = match http {
        Some(l) => {
            let clients = tusk_http::webhdfs::Clients::new(namenode, client);
            Some(HttpServer::spawn("datanode", l, tusk_http::datanode_router(dn.view(), clients))?)
        }
        None => None,
    };
    Ok((dn, server))
}

/// Stops a datanode after its HTTP server (which holds a view of its store).
async fn stop_datanode(dn: tusk_datanode::DatanodeHandle, http: Option<HttpServer>) {
    if let Some(h) = http {
        h.stop().await;
    }
    dn.shutdown().await;
}

/// The namenode's HTTP server, reading `fsn` and calling its RPC port at `rpc` for WebHDFS.
async fn start_namenode_http(
    conf: &Config,
    fsn: &Arc<Namesystem>,
    rpc: std::net::SocketAddr,
    fallback: bool,
) -> Result<Option<HttpServer>> {
    let addr = http_address(&conf.namenode.http_address, &conf.namenode.rpc_address, 9870);
    let Some(l) = bind_http(&addr, fallback).await? else { return Ok(None) };
    let rpc_address = tusk_common::net::connectable(&rpc.to_string());
    let web = tusk_http::pages::namenode::NnWeb {
        fsn: Arc::clone(fsn),
        clients: tusk_http::webhdfs::Clients::new(rpc_address.clone(), &conf.client),
        rpc_address,
    };
    Ok(Some(HttpServer::spawn("namenode", l, tusk_http::namenode_router(web))?))
}

/// The namenode's configuration; a bad rack table stops here.
fn nn_config(conf: &Config, default_dir: PathBuf) -> Result<NamesystemConfig> {
    NamesystemConfig::from_config(&conf.namenode, &conf.checkpoint, default_dir).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn format_namenode(conf: &Config, cluster_id: Option<String>, force: bool) -> Result<i32> {
    let nc = nn_config(conf, PathBuf::from("./tusk-data/name"))?;
    let storage =
        tusk_namenode::storage::NameStorage::format(&nc.name_dirs, cluster_id, force, &nc.superuser, &nc.supergroup)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    for d in &nc.name_dirs {
        say!("Storage directory {} has been successfully formatted.", d.display());
    }
    say!("Cluster id: {}", storage.cluster_id);
    Ok(0)
}

/// `tusk namenode --import-checkpoint [DIR]`: fills empty name directories from the
/// checkpointer's newest image (DIR empty = checkpoint.dir).
pub fn import_checkpoint(conf: &Config, dir: PathBuf) -> Result<()> {
    let nc = nn_config(conf, PathBuf::from("./tusk-data/name"))?;
    let from = if !dir.as_os_str().is_empty() {
        dir
    } else if !conf.checkpoint.dir.as_os_str().is_empty() {
        conf.checkpoint.dir.clone()
    } else {
        PathBuf::from("./tusk-data/checkpoint")
    };
    let (cluster, txid) = tusk_namenode::storage::NameStorage::import_checkpoint(&nc.name_dirs, &from)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    say!(
        "Imported the checkpoint at txid {txid} (cluster {cluster}) from {} into {}; edits after it are not in it.",
        from.display(),
        nc.name_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// `tusk checkpointer [--once]`.
pub async fn run_checkpointer(conf: Config, once: bool) -> Result<i32> {
    let user = tusk_common::user::os_user_name();
    let mut ck =
        tusk_checkpointer::Checkpointer::open(conf.checkpoint.clone(), &user).map_err(|e| anyhow::anyhow!("{e}"))?;
    if once {
        let outcome = ck.checkpoint().await.map_err(|e| anyhow::anyhow!("checkpoint failed: {e}"))?;
        match outcome {
            tusk_checkpointer::Outcome::Done { txid, from_txid, downloaded_bytes, image_bytes, elapsed_ms, .. } => {
                say!(
                    "Checkpoint done: image at txid {txid} ({image_bytes} bytes) merged from txid {from_txid}, \
                     {downloaded_bytes} bytes downloaded, {elapsed_ms} ms"
                )
            }
            tusk_checkpointer::Outcome::UpToDate { txid } => {
                say!("Nothing to checkpoint: the namenode's newest image already holds every transaction (txid {txid})")
            }
        }
        return Ok(0);
    }
    say!("checkpointer: dir {}, namenode {}", ck.dir().root().display(), conf.checkpoint.namenode);
    ck.run(shutdown_signal()).await;
    Ok(0)
}

/// Large allocations straight from and back to the kernel. glibc raises its mmap threshold
/// each time a large block is freed (up to 32 MiB), after which the transient buffers of a
/// block report (the decoded message and its list of replicas, tens of MiB per report of a
/// million blocks) come from the heap and stay resident after the report is done: the
/// namenode's RSS then held about 20 B per file of garbage on top of the namespace
/// (docs/benchmarks.md, 2026-12-04). Setting the threshold fixes it at 256 KiB.
fn return_large_allocations() {
    // SAFETY: mallopt only changes a malloc tunable; it is called once, before the
    // namesystem is loaded, and any value is valid for M_MMAP_THRESHOLD up to 32 MiB.
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10) };
    if ok != 1 {
        tracing::warn!("mallopt(M_MMAP_THRESHOLD) failed; large transient buffers may stay resident");
    }
}

/// Opens the namesystem (a blocking load) and serves until a signal.
async fn start_namenode(nc: NamesystemConfig, rpc_address: &str) -> Result<(Arc<Namesystem>, tokio::net::TcpListener)> {
    return_large_allocations();
    let listener = tokio::net::TcpListener::bind(rpc_address).await.with_context(|| {
        format!("cannot listen on {rpc_address} (is another namenode running? set another address with --rpc-address)")
    })?;
    let fsn = tokio::task::spawn_blocking(move || Namesystem::open(nc))
        .await
        .context("namenode start-up task failed")?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((Arc::new(fsn), listener))
}

pub async fn run_namenode(conf: Config) -> Result<i32> {
    let nc = nn_config(&conf, PathBuf::from("./tusk-data/name"))?;
    let (fsn, listener) = start_namenode(nc, &conf.namenode.rpc_address).await?;
    let addr = listener.local_addr()?;
    let http = start_namenode_http(&conf, &fsn, addr, false).await?;
    say!("namenode: RPC listening on {addr}");
    if let Some(h) = &http {
        say!("namenode: HTTP listening on {}", h.addr);
    }
    tusk_namenode::server::run(fsn, listener, shutdown_signal()).await.context("namenode RPC server failed")?;
    if let Some(h) = http {
        h.stop().await;
    }
    Ok(0)
}

pub async fn run_datanode(conf: Config) -> Result<i32> {
    let mut dc = conf.datanode.clone();
    let listener = bind_xfer(&mut dc).await?;
    let (dn, http) = start_datanode(dc, listener, &conf.client, false).await?;
    say!("datanode: data transfer listening on {}", dn.xfer_addr());
    if let Some(h) = &http {
        say!("datanode: HTTP listening on {}", h.addr);
    }
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = dn.stopped() => {
            tracing::info!("datanode stopped by itself");
        }
    }
    stop_datanode(dn, http).await;
    Ok(0)
}

/// Starts a jobtracker serving on `listener`, reading and writing through the namenode at
/// `namenode`; it runs until `stop` turns true.
pub async fn start_jobtracker(
    conf: &Config,
    namenode: &str,
    history_dir: &std::path::Path,
    listener: tokio::net::TcpListener,
    http: Option<tokio::net::TcpListener>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let user = tusk_common::user::os_user_name();
    let client = tusk_client::Client::connect(namenode, &user, &conf.client)
        .await
        .map_err(|e| anyhow::anyhow!("jobtracker: cannot reach the namenode at {namenode}: {e}"))?;
    let mr = &conf.mapreduce;
    let history =
        tusk_mapreduce::history::History::open(history_dir).map_err(|e| anyhow::anyhow!("jobtracker: {e}"))?;
    let jt = tusk_mapreduce::jobtracker::JobTracker::new(
        client,
        mr.max_attempts,
        std::time::Duration::from_millis(mr.tracker_expiry_ms),
    )
    .with_history(history)
    .await
    .map_err(|e| anyhow::anyhow!("jobtracker: {e}"))?;
    let jt = Arc::new(jt);
    let http = match http {
        Some(l) => {
            let mut http_stop = stop.clone();
            say!("jobtracker: HTTP listening on {}", l.local_addr()?);
            Some(tusk_http::spawn("jobtracker", l, tusk_http::jobtracker_router(Arc::clone(&jt)), async move {
                let _ = http_stop.wait_for(|s| *s).await;
            }))
        }
        None => None,
    };
    let expiry = Arc::clone(&jt);
    let mut expiry_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = expiry_stop.wait_for(|s| *s) => return,
            }
            expiry.expire_trackers();
        }
    });
    let svc = tusk_proto::mapreduce::job_tracker_server::JobTrackerServer::new(
        tusk_mapreduce::service::JobTrackerService(jt),
    );
    Ok(tokio::spawn(async move {
        let incoming = tusk_proto::serve::nodelay(tokio_stream::wrappers::TcpListenerStream::new(listener));
        let served = tonic::transport::Server::builder()
            .layer(tusk_proto::serve::RpcMetricsLayer)
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!("jobtracker RPC server failed: {e}");
        }
        if let Some(h) = http {
            let _ = h.await;
        }
    }))
}

/// `tusk jobtracker`.
pub async fn run_jobtracker(conf: Config) -> Result<i32> {
    let addr = conf.mapreduce.jobtracker.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set mapreduce.jobtracker)"))?;
    say!("jobtracker: RPC listening on {}", listener.local_addr()?);
    let http = bind_http(&http_address(&conf.mapreduce.jobtracker_http_address, &addr, 50030), false).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task =
        start_jobtracker(&conf, &conf.mapreduce.namenode, &conf.mapreduce.jobtracker_dir, listener, http, stop_rx)
            .await?;
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    Ok(0)
}

fn tracker_config(conf: &Config, jobtracker: &str, local_dir: PathBuf) -> tusk_mapreduce::tasktracker::TrackerConfig {
    let mr = &conf.mapreduce;
    tusk_mapreduce::tasktracker::TrackerConfig {
        jobtracker: jobtracker.to_owned(),
        local_dir,
        host: mr.datanode_host.clone(),
        map_slots: mr.map_slots,
        reduce_slots: mr.reduce_slots,
        heartbeat: std::time::Duration::from_millis(mr.heartbeat_interval_ms.max(50)),
        slow_down: std::time::Duration::from_millis(mr.slow_down_ms),
    }
}

/// `tusk tasktracker`.
pub async fn run_tasktracker(conf: Config) -> Result<i32> {
    let mr = &conf.mapreduce;
    let listener = tokio::net::TcpListener::bind(&mr.shuffle_address)
        .await
        .with_context(|| format!("cannot listen on {} (set mapreduce.shuffle_address)", mr.shuffle_address))?;
    say!("tasktracker: shuffle listening on {}", listener.local_addr()?);
    let user = tusk_common::user::os_user_name();
    let client = tusk_client::Client::connect(&mr.namenode, &user, &conf.client)
        .await
        .map_err(|e| anyhow::anyhow!("tasktracker: cannot reach the namenode at {}: {e}", mr.namenode))?;
    let tc = tracker_config(&conf, &mr.jobtracker, mr.local_dir.clone());
    tusk_mapreduce::tasktracker::run(tc, client, listener, shutdown_signal()).await.map_err(|e| anyhow::anyhow!(e))?;
    Ok(0)
}

/// `tusk cluster up`: every daemon in this process, all state under `dir` (configured name
/// and data directories do not apply: the pseudo-cluster is one directory). The namenode
/// listens on 127.0.0.1:`port`, else on `namenode.rpc_address`.
pub async fn cluster_up(conf: Config, dir: PathBuf, datanodes: u32, port: Option<u16>) -> Result<i32> {
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create cluster directory {}", dir.display()))?;
    let mut nc = nn_config(&conf, dir.join("name"))?;
    if !conf.namenode.name_dirs.is_empty() {
        tracing::warn!("namenode.name_dirs is ignored by `cluster up`: its state is under {}", dir.display());
    }
    nc.name_dirs = vec![dir.join("name")];
    // A pseudo-cluster notices a dead datanode in 30 s, not HDFS's 10.5 min.
    if conf.namenode.heartbeat_expiry_ms == tusk_common::config::NamenodeConfig::default().heartbeat_expiry_ms {
        nc.heartbeat_expiry = std::time::Duration::from_secs(30);
    }
    let addr = match port {
        Some(p) => format!("127.0.0.1:{p}"),
        None => conf.namenode.rpc_address.clone(),
    };
    let (fsn, listener) = start_namenode(nc, &addr).await?;
    let bound = listener.local_addr()?;
    let nn_http = start_namenode_http(&conf, &fsn, bound, true).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut nn_stop = stop_rx.clone();
    let cluster_id = fsn.cluster_id();
    let nn_task = tokio::spawn(tusk_namenode::server::run(fsn, listener, async move {
        let _ = nn_stop.changed().await;
    }));
    let mut dns = Vec::new();
    for i in 1..=datanodes {
        let mut dc = conf.datanode.clone();
        dc.namenode = bound.to_string();
        dc.data_dirs = vec![dir.join(format!("data{i}"))];
        dc.http_address = "127.0.0.1:0".into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let dn = start_datanode(dc, listener, &conf.client, true).await.with_context(|| format!("datanode {i}"))?;
        dns.push(dn);
    }
    let mut ck_conf = conf.checkpoint.clone();
    ck_conf.namenode = bound.to_string();
    if ck_conf.dir.as_os_str().is_empty() {
        ck_conf.dir = dir.join("checkpoint");
    }
    let ck_dir = ck_conf.dir.clone();
    let checkpointer = tusk_checkpointer::Checkpointer::open(ck_conf, &tusk_common::user::os_user_name())
        .map_err(|e| anyhow::anyhow!("checkpointer: {e}"))?;
    let mut ck_stop = stop_rx.clone();
    let ck_task = tokio::spawn(checkpointer.run(async move {
        let _ = ck_stop.changed().await;
    }));
    // MapReduce: a jobtracker, and a tasktracker beside every datanode.
    let jt_addr = match port {
        Some(_) => "127.0.0.1:0".to_owned(),
        None => conf.mapreduce.jobtracker.clone(),
    };
    let jt_listener = tokio::net::TcpListener::bind(&jt_addr)
        .await
        .with_context(|| format!("jobtracker: cannot listen on {jt_addr}"))?;
    let jt_bound = jt_listener.local_addr()?;
    let jt_http =
        bind_http(&http_address(&conf.mapreduce.jobtracker_http_address, &conf.mapreduce.jobtracker, 50030), true)
            .await?;
    let jt_http_addr = jt_http.as_ref().and_then(|l| l.local_addr().ok());
    let jt_task =
        start_jobtracker(&conf, &bound.to_string(), &dir.join("jobtracker"), jt_listener, jt_http, stop_rx.clone())
            .await?;
    let mut tts = Vec::new();
    for i in 1..=datanodes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let user = tusk_common::user::os_user_name();
        let client = tusk_client::Client::connect(&bound.to_string(), &user, &conf.client)
            .await
            .map_err(|e| anyhow::anyhow!("tasktracker {i}: {e}"))?;
        let mut tc = tracker_config(&conf, &jt_bound.to_string(), dir.join(format!("mapred{i}")));
        tc.host = "127.0.0.1".into();
        let mut tt_stop = stop_rx.clone();
        tts.push(tokio::spawn(tusk_mapreduce::tasktracker::run(tc, client, listener, async move {
            let _ = tt_stop.wait_for(|s| *s).await;
        })));
    }
    say!("Tusk pseudo-cluster is up (state in {})", dir.display());
    say!("  namenode   {bound}   (cluster {cluster_id})");
    for (i, (dn, http)) in dns.iter().enumerate() {
        match http {
            Some(h) => say!("  datanode {} {}   (http://{})", i + 1, dn.xfer_addr(), h.addr),
            None => say!("  datanode {} {}", i + 1, dn.xfer_addr()),
        }
    }
    say!("  checkpointer      (images in {})", ck_dir.display());
    say!("  jobtracker {jt_bound}   ({} tasktrackers)", tts.len());
    if let Some(h) = &nn_http {
        say!("  web        namenode http://{}/", h.addr);
    }
    if let Some(a) = jt_http_addr {
        say!("  web        jobtracker http://{a}/");
    }
    say!("Try: tusk fs -put FILE / && tusk fsck / -files -blocks -locations     (Ctrl-C stops the cluster)");
    shutdown_signal().await;
    if let Some(h) = nn_http {
        h.stop().await;
    }
    for (dn, http) in dns {
        stop_datanode(dn, http).await;
    }
    let _ = stop_tx.send(true);
    let _ = ck_task.await;
    let _ = jt_task.await;
    for t in tts {
        let _ = t.await;
    }
    drop(stop_rx);
    nn_task.await.context("namenode task failed")?.context("namenode RPC server failed")?;
    Ok(0)
}

/// Claims the first free slot `root/worker-N`: its `in_use.lock` is locked (flock) for as long
/// as the returned file lives. Replicas of one container sharing one volume each get their own
/// slot, and a restarted replica takes a free one back with its datanode's identity and blocks.
pub fn claim_slot(root: &std::path::Path) -> Result<(PathBuf, std::fs::File)> {
    for n in 1..=4096 {
        let dir = root.join(format!("worker-{n}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let lock = dir.join("in_use.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .with_context(|| format!("cannot open {}", lock.display()))?;
        match file.try_lock() {
            Ok(()) => return Ok((dir, file)),
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock.display()));
            }
        }
    }
    anyhow::bail!("every worker slot under {} is taken (4096)", root.display())
}

/// `tusk worker [--slots DIR]`: a datanode and a tasktracker in one process, as one container
/// of a compose cluster runs them. It stops when either stops (non-zero) or on a signal (zero).
pub async fn run_worker(mut conf: Config, slots: Option<PathBuf>) -> Result<i32> {
    let _slot = match slots {
        Some(root) => {
            let (dir, lock) = claim_slot(&root)?;
            say!("worker: slot {}", dir.display());
            conf.datanode.data_dirs = vec![dir.join("data")];
            conf.mapreduce.local_dir = dir.join("mapred");
            Some(lock)
        }
        None => None,
    };
    let mut dc = conf.datanode.clone();
    let xfer = bind_xfer(&mut dc).await?;
    let mr = &conf.mapreduce;
    let shuffle = tokio::net::TcpListener::bind(&mr.shuffle_address)
        .await
        .with_context(|| format!("cannot listen on {} (set mapreduce.shuffle_address)", mr.shuffle_address))?;
    let (dn, http) = start_datanode(dc, xfer, &conf.client, false).await?;
    say!("worker: datanode on {}, shuffle on {}", dn.xfer_addr(), shuffle.local_addr()?);
    let user = tusk_common::user::os_user_name();
    let client = match tusk_client::Client::connect(&mr.namenode, &user, &conf.client).await {
        Ok(c) => c,
        Err(e) => {
            stop_datanode(dn, http).await;
            anyhow::bail!("tasktracker: cannot reach the namenode at {}: {e}", mr.namenode);
        }
    };
    let tc = tracker_config(&conf, &mr.jobtracker, mr.local_dir.clone());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut tracker = tokio::spawn(tusk_mapreduce::tasktracker::run(tc, client, shuffle, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let (code, tracker_done) = tokio::select! {
        _ = shutdown_signal() => (0, false),
        _ = dn.stopped() => {
            tracing::error!("the datanode stopped by itself: stopping the worker");
            (1, false)
        }
        r = &mut tracker => {
            match r {
                Ok(Ok(())) => tracing::error!("the tasktracker stopped by itself: stopping the worker"),
                Ok(Err(e)) => tracing::error!("the tasktracker failed: {e}"),
                Err(e) => tracing::error!("the tasktracker task failed: {e}"),
            }
            (1, true)
        }
    };
    let _ = stop_tx.send(true);
    if !tracker_done {
        let _ = tracker.await;
    }
    stop_datanode(dn, http).await;
    Ok(code)
}
