//! Benchmarks 5 and 6 of issue 10: a namenode whose files have blocks with replicas.
//!
//! `tusk-bench nn-memory`: N files of one block (replication 3) built in-process through the
//! namesystem's own calls (create, addBlock, the replicas received, complete; every one a
//! durable edit), then the real `tusk namenode` binary started on that directory (replaying
//! every edit, then from the image it saved), three simulated datanodes register over gRPC and
//! send full block reports of every block, and the process's resident memory is read.
//!
//! `tusk-bench nn-cluster`: the same kind of namespace, then 1,000 simulated datanodes (only
//! the protocol, no data; distinct uuids and fake ports on 127.0.0.1, nothing listens there
//! and the namenode never calls a datanode) register, send full block reports of all the
//! blocks (three replicas each, spread over the datanodes), heartbeat every 3 s on a
//! heartbeat stream as datanodes do, and the namenode's CPU is read from /proc with and
//! without heartbeats (and, with `--compare-unary`, with heartbeats as unary calls, the way
//! before the stream); nn-throughput's RPC operations run with and without the heartbeats,
//! interleaved.

use crate::nnbench::NnOpts;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tusk_namenode::blocks::Reported;
use tusk_namenode::namesystem::Registration;
use tusk_namenode::Namesystem;
use tusk_proto::channel::RpcChannel;
use tusk_proto::client::ExtendedBlock;
use tusk_proto::datanode::datanode_namenode_client::DatanodeNamenodeClient;
use tusk_proto::datanode::{
    BlockReportRequest, DatanodeRegistration, HeartbeatRequest, ReplicaState, ReportedBlock, StorageReport,
};
use tusk_proto::heartbeat::HeartbeatStream;

/// Length every block is given (one small block per file, as HDFS's figures assume).
const BLOCK_LEN: u64 = 1024;
/// Heartbeat interval of a datanode (DESIGN.md: 3 s).
const HEARTBEAT: Duration = Duration::from_secs(3);
/// What the simulated datanodes' heartbeat tasks do: nothing, heartbeat on their streams, or
/// heartbeat with unary calls.
const OFF: u8 = 0;
const STREAM: u8 = 1;
const UNARY: u8 = 2;

#[derive(Clone, Debug, clap::Args)]
pub struct MemoryOpts {
    /// Files, each one block with replication 3.
    #[arg(long, default_value_t = 1_000_000)]
    pub files: u64,
    /// Concurrent in-process builders.
    #[arg(long, default_value_t = 128)]
    pub tasks: u64,
    /// Starts from the image (the median is reported; the last one gets the block reports).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Skip the start that replays every edit (and save the image in-process instead).
    #[arg(long)]
    pub no_replay: bool,
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the work directory (its `name/` holds the namespace, for profiling start-up with
    /// `tusk namenode --name-dir DIR/name`).
    #[arg(long)]
    pub keep: bool,
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Clone, Debug, clap::Args)]
pub struct ClusterOpts {
    /// Files, each one block with replication 3: the block reports total three times this
    /// many replicas (3,333,334 files: 10M).
    #[arg(long, default_value_t = 3_333_334)]
    pub files: u64,
    /// Simulated datanodes.
    #[arg(long, default_value_t = 1000)]
    pub datanodes: u32,
    #[arg(long, default_value_t = 128)]
    pub tasks: u64,
    /// Block reports in flight at once (the namenode handles one at a time anyway).
    #[arg(long, default_value_t = 4)]
    pub report_concurrency: usize,
    /// Seconds of each CPU window (idle, then heartbeats; `--runs` of each, interleaved).
    #[arg(long, default_value_t = 15)]
    pub cpu_secs: u64,
    /// Runs of each measurement (CPU windows; throughput with and without heartbeats).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// nn-throughput over RPC: files (and directories) per run.
    #[arg(long, default_value_t = 20_000)]
    pub nn_files: u64,
    /// nn-throughput over RPC: getFileInfo and getBlockLocations calls per run.
    #[arg(long, default_value_t = 100_000)]
    pub nn_reads: u64,
    /// Also CPU windows with every heartbeat a unary `Heartbeat` call (how datanodes sent
    /// them before `HeartbeatStream`), interleaved with the others: an A/B in one run.
    #[arg(long)]
    pub compare_unary: bool,
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// A block as the namenode knows it.
#[derive(Clone, Copy)]
struct Blk {
    id: u64,
    genstamp: u64,
}

// ---- building the namespace ----

/// Creates `files` files of one block (replication 3) on a fresh name directory through the
/// namesystem's calls, with three in-process datanodes reporting each replica as received so
/// that `complete` closes the file. Every call is durable (group commit). Returns the blocks.
fn build_namespace(dir: &Path, files: u64, tasks: u64, save_image: bool) -> Result<(Vec<Blk>, String)> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let fsn = Arc::new(Namesystem::open(crate::nn_config(dir)).map_err(|e| anyhow::anyhow!("{e}"))?);
    let su = fsn.caller(fsn.superuser());
    for k in 0..3u32 {
        fsn.register_datanode(Registration {
            uuid: format!("build-dn-{k}"),
            cluster_id: String::new(),
            hostname: "127.0.0.1".into(),
            ip: "127.0.0.1".into(),
            xfer_port: 1 + k,
            http_port: 0,
            ipc_port: 0,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        fsn.heartbeat(&format!("build-dn-{k}"), 1 << 50, 0, 1 << 50, 0);
    }
    let t0 = Instant::now();
    let blocks = rt.block_on(async {
        for d in 0..files.div_ceil(1000) {
            fsn.mkdirs(&su, &format!("/bench/d{d:05}"), 0o755, true).await?;
        }
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let (fsn, su) = (fsn.clone(), su.clone());
            set.spawn(async move {
                let client = format!("bench-{t}");
                let mut out = Vec::with_capacity((files / tasks + 1) as usize);
                let mut i = t;
                while i < files {
                    let p = format!("/bench/d{:05}/f{i:08}", i / 1000);
                    fsn.create(&su, &p, 0o644, false, false, 3, 0, &client).await?;
                    let lb = fsn.add_block(&su, &p, &client, None, &[], None).await?;
                    let b = lb.block.context("addBlock answered no block")?;
                    let r = Reported { id: b.block_id, genstamp: b.generation_stamp, len: BLOCK_LEN, finalized: true };
                    for loc in &lb.locations {
                        fsn.received_and_deleted(&loc.datanode_uuid, &[r], &[]).context("build datanode gone")?;
                    }
                    let last = ExtendedBlock { num_bytes: BLOCK_LEN, ..b };
                    if !fsn.complete(&su, &p, &client, Some(last)).await? {
                        bail!("complete {p} refused: replicas not counted");
                    }
                    out.push(Blk { id: b.block_id, genstamp: b.generation_stamp });
                    i += tasks;
                }
                Ok::<_, anyhow::Error>(out)
            });
        }
        let mut all = Vec::with_capacity(files as usize);
        while let Some(r) = set.join_next().await {
            all.extend(r??);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let took = t0.elapsed();
    let stats = fsn.journal_stats();
    let txns = fsn.last_txid();
    let mut how = format!(
        "built in-process in {took:.1?}: {files} x (create, addBlock, 3 replicas received, complete), {txns} durable edits, \
         {:.0} edits/s, {:.1} records per fsync",
        txns as f64 / took.as_secs_f64(),
        stats.records_per_sync()
    );
    if save_image {
        let t = Instant::now();
        fsn.safe_mode(&su, tusk_namenode::namesystem::SafeModeAction::Enter).map_err(|e| anyhow::anyhow!("{e}"))?;
        fsn.save_namespace(&su).map_err(|e| anyhow::anyhow!("{e}"))?;
        how.push_str(&format!("; image saved in-process (saveNamespace) in {:.1?}", t.elapsed()));
    }
    fsn.close();
    drop(fsn);
    rt.shutdown_timeout(Duration::from_secs(5));
    println!("{how}");
    Ok((blocks, how))
}

// ---- the namenode process ----

struct Nn {
    child: std::process::Child,
    rpc: String,
    http: String,
    started_in: Duration,
}

impl Nn {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn stop(mut self) -> Result<()> {
        crate::nix_kill(self.child.id());
        self.child.wait()?;
        Ok(())
    }
}

/// Starts `tusk namenode` on `dir`: start-up time is spawn to the "RPC listening" line.
fn start_nn(dir: &Path) -> Result<Nn> {
    let t0 = Instant::now();
    let mut child = Command::new(crate::tusk_bin()?)
        .args(["namenode", "--rpc-address", "127.0.0.1:0", "--name-dir"])
        .arg(dir)
        .env("TUSK_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut rpc = None;
    let mut started_in = Duration::ZERO;
    let http = loop {
        let Some(line) = lines.next() else {
            let _ = child.kill();
            bail!("namenode exited before serving")
        };
        let line = line?;
        if let Some(a) = line.strip_prefix("namenode: RPC listening on ") {
            started_in = t0.elapsed();
            rpc = Some(a.trim().to_owned());
        } else if let Some(a) = line.strip_prefix("namenode: HTTP listening on ") {
            break a.trim().to_owned();
        }
    };
    // Keep draining: a daemon whose stdout is closed dies on its next status line.
    std::thread::spawn(move || lines.for_each(drop));
    let rpc = rpc.context("namenode printed its HTTP address before its RPC address")?;
    Ok(Nn { child, rpc, http, started_in })
}

/// (utime + stime) of a process, in seconds.
fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("odd /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("no utime")?.parse::<u64>()? + f.get(12).context("no stime")?.parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks() as f64)
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Sum and count of a Prometheus histogram on the namenode's `/metrics`.
fn histogram(http: &str, name: &str) -> Result<(f64, f64)> {
    let mut s = std::net::TcpStream::connect(http)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {http}\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    let value = |suffix: &str| -> f64 {
        let key = format!("{name}_{suffix}");
        body.lines()
            .find(|l| l.split([' ', '{']).next() == Some(key.as_str()))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    Ok((value("sum"), value("count")))
}

fn admin(addr: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(crate::tusk_bin()?).arg("dfsadmin").args(args).env("TUSK_NAMENODE", addr).output()?;
    if !out.status.success() {
        bail!("dfsadmin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

// ---- simulated datanodes ----

struct SimDn {
    uuid: String,
    port: u32,
    nn: DatanodeNamenodeClient<RpcChannel>,
    /// Opened at the first heartbeat sent on a stream.
    beats: Option<HeartbeatStream>,
}

impl SimDn {
    async fn connect(addr: &str, k: u32) -> Result<SimDn> {
        // One connection per datanode, as a real cluster has.
        let ch = RpcChannel::connect(addr, Duration::from_secs(10), Duration::from_secs(120)).await?;
        let nn = DatanodeNamenodeClient::with_origin(ch.clone(), ch.origin()).max_encoding_message_size(256 << 20);
        Ok(SimDn { uuid: format!("sim-dn-{k:05}"), port: 40_000 + k, nn, beats: None })
    }

    async fn register(&mut self) -> Result<()> {
        let reg = DatanodeRegistration {
            datanode_uuid: self.uuid.clone(),
            cluster_id: String::new(),
            hostname: "127.0.0.1".into(),
            ip_addr: "127.0.0.1".into(),
            // Fake ports: nothing listens there, and the namenode never calls a datanode.
            xfer_port: self.port,
            http_port: self.port + 10_000,
            ipc_port: self.port + 20_000,
            software_version: tusk_common::VERSION.into(),
        };
        self.nn.register(reg).await.with_context(|| format!("register {}", self.uuid))?;
        Ok(())
    }

    /// One heartbeat, on the datanode's heartbeat stream or (`unary`) as a call of its own.
    /// Returns whether the namenode asked for a new registration.
    async fn heartbeat(&mut self, unary: bool) -> Result<bool> {
        let req = HeartbeatRequest {
            datanode_uuid: self.uuid.clone(),
            storage: Some(StorageReport {
                capacity: 1 << 42,
                dfs_used: 1 << 30,
                remaining: (1 << 42) - (1 << 30),
                failed_volumes: 0,
            }),
            active_transfers: 0,
        };
        let resp = if unary {
            self.nn.heartbeat(req).await?.into_inner()
        } else {
            HeartbeatStream::beat_on(&mut self.beats, &mut self.nn, Duration::from_secs(120), req).await?
        };
        use tusk_proto::datanode::datanode_command::Command as C;
        Ok(resp.commands.iter().any(|c| matches!(c.command, Some(C::Reregister(_)))))
    }
}

fn report_request(uuid: &str, blocks: impl Iterator<Item = Blk>) -> BlockReportRequest {
    BlockReportRequest {
        datanode_uuid: uuid.to_owned(),
        blocks: blocks
            .map(|b| ReportedBlock {
                block_id: b.id,
                generation_stamp: b.genstamp,
                num_bytes: BLOCK_LEN,
                state: ReplicaState::ReplicaFinalized as i32,
            })
            .collect(),
    }
}

/// Sends full block reports, `concurrency` in flight at once. Returns (wall time of all,
/// the slowest single report's send-to-answer time).
async fn send_reports(
    dns: &[SimDn],
    reqs: Vec<BlockReportRequest>,
    concurrency: usize,
) -> Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut set = tokio::task::JoinSet::new();
    for (dn, req) in dns.iter().zip(reqs) {
        if set.len() >= concurrency.max(1) {
            if let Some(r) = set.join_next().await {
                slowest = slowest.max(r??);
            }
        }
        // A client is a handle on the datanode's connection: cloning it is cheap.
        let (mut nn, uuid) = (dn.nn.clone(), dn.uuid.clone());
        set.spawn(async move {
            let t = Instant::now();
            nn.block_report(req).await.with_context(|| format!("block report of {uuid}"))?;
            Ok::<_, anyhow::Error>(t.elapsed())
        });
    }
    while let Some(r) = set.join_next().await {
        slowest = slowest.max(r??);
    }
    Ok((t0.elapsed(), slowest))
}

fn work_dir(dir: &Option<PathBuf>, tag: &str) -> Result<PathBuf> {
    let d =
        dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("tusk-bench-{tag}-{}", std::process::id())));
    if d.exists() {
        std::fs::remove_dir_all(&d)?;
    }
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

// ---- benchmark 5 ----

pub fn memory(o: MemoryOpts) -> Result<()> {
    let base = work_dir(&o.dir, "nnmem")?;
    let res = memory_in(&o, &base);
    if o.keep {
        println!("kept {}", base.display());
    } else {
        std::fs::remove_dir_all(&base).ok();
    }
    res
}

fn memory_in(o: &MemoryOpts, base: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // An empty namenode: the baseline the per-file figure is counted from.
    let empty = base.join("empty");
    let mut empty_rss = Vec::new();
    for _ in 0..3 {
        std::fs::remove_dir_all(&empty).ok();
        let nn = start_nn(&empty)?;
        std::thread::sleep(Duration::from_millis(500));
        empty_rss.push(crate::status_kb(nn.pid(), "VmRSS:") as f64);
        nn.stop()?;
    }
    let empty_rss = crate::median_f(empty_rss) as u64;
    println!("empty namenode: RSS {empty_rss} KiB");

    let name = base.join("name");
    let (blocks, how) = build_namespace(&name, o.files, o.tasks, o.no_replay)?;
    let files = blocks.len() as u64;

    let mut replay = String::from("not run (--no-replay)");
    if !o.no_replay {
        let nn = start_nn(&name)?;
        let rss = crate::status_kb(nn.pid(), "VmRSS:");
        replay = format!("{:.2?} (RSS {} MiB)", nn.started_in, rss >> 10);
        admin(&nn.rpc, &["-safemode", "enter"])?;
        let t = Instant::now();
        admin(&nn.rpc, &["-saveNamespace"])?;
        println!("start replaying every edit: {replay}; saveNamespace {:.2?}", t.elapsed());
        nn.stop()?;
    }
    let image_bytes = std::fs::read_dir(name.join("current"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("fsimage_"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .max()
        .unwrap_or(0);

    let mut starts = Vec::new();
    let mut last = None;
    for r in 0..o.runs.max(1) {
        let nn = start_nn(&name)?;
        starts.push(nn.started_in);
        println!("start from the image, run {}: {:.2?}", r + 1, nn.started_in);
        if r + 1 < o.runs.max(1) {
            nn.stop()?;
        } else {
            last = Some(nn);
        }
    }
    let nn = last.context("no namenode started")?;
    let start_median = crate::median(starts);
    std::thread::sleep(Duration::from_millis(300));
    let rss_loaded = crate::status_kb(nn.pid(), "VmRSS:");

    // Three datanodes report every block: the block map then holds three locations each.
    let addr = nn.rpc.clone();
    let report = rt.block_on(async {
        let mut dns = Vec::new();
        for k in 0..3 {
            let mut dn = SimDn::connect(&addr, k).await?;
            dn.register().await?;
            dn.heartbeat(false).await?;
            dns.push(dn);
        }
        let mut times = Vec::new();
        for dn in dns.iter_mut() {
            let req = report_request(&dn.uuid, blocks.iter().copied());
            let t = Instant::now();
            dn.nn.block_report(req).await.with_context(|| format!("block report of {}", dn.uuid))?;
            times.push(t.elapsed());
            println!("full block report of {files} blocks: {:.2?}", t.elapsed());
        }
        Ok::<_, anyhow::Error>((dns, times))
    });
    let (dns, times) = match report {
        Ok(v) => v,
        Err(e) => {
            nn.stop()?;
            return Err(e);
        }
    };
    let (bsum, bcount) = histogram(&nn.http, "namenode_block_report_seconds").unwrap_or((0.0, 0.0));
    std::thread::sleep(Duration::from_millis(500));
    let rss = crate::status_kb(nn.pid(), "VmRSS:");
    let hwm = crate::status_kb(nn.pid(), "VmHWM:");
    let safemode = admin(&nn.rpc, &["-safemode", "get"]).unwrap_or_default();
    let count = crate::count_root(&nn.rpc).unwrap_or_default();
    drop(dns);
    nn.stop()?;
    drop(rt);
    println!("{safemode}; -count /: {}", count.trim());

    let per_file = |kb: u64| (kb.saturating_sub(empty_rss) * 1024) / files.max(1);
    let report_med = crate::median(times.clone());
    let table = format!(
        "Namespace: {how}. Block reports: 3 simulated datanodes (gRPC, no data), one full report each of all {files} blocks.\n\n\
         | files (1 block, 3 replicas) | start, replaying every edit | start from fsimage (median of {runs}) | fsimage size | empty namenode RSS | RSS after start (no locations) | RSS after 3 full reports | peak RSS (VmHWM) | bytes/file (RSS - empty) | target <= 250 | met | one full report of {files} blocks (median of 3, send to answer) | blocks/s | namenode's own report handling (sum of {bcount:.0}) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
         | {files} | {replay} | {start_median:.2?} | {img} MiB | {e} MiB | {l} MiB ({pl} B/file) | {r} MiB | {h} MiB | **{pf}** | <= 250 | {met} | {report_med:.2?} | {bps:.0} | {bsum:.2} s ({nbps:.0} blocks/s) |\n",
        runs = o.runs.max(1),
        img = image_bytes >> 20,
        e = empty_rss >> 10,
        l = rss_loaded >> 10,
        pl = per_file(rss_loaded),
        r = rss >> 10,
        h = hwm >> 10,
        pf = per_file(rss),
        met = if per_file(rss) <= 250 { "yes" } else { "**no**" },
        bps = files as f64 / report_med.as_secs_f64(),
        nbps = 3.0 * files as f64 / bsum.max(1e-9),
    );
    print!("\n{table}");
    crate::append_report(&o.report, "nn-memory", &table)?;
    Ok(())
}

// ---- benchmark 6 ----

pub fn cluster(o: ClusterOpts) -> Result<()> {
    let base = work_dir(&o.dir, "nncluster")?;
    let res = cluster_in(&o, &base);
    std::fs::remove_dir_all(&base).ok();
    res
}

fn cluster_in(o: &ClusterOpts, base: &Path) -> Result<()> {
    let name = base.join("name");
    let (blocks, how) = build_namespace(&name, o.files, o.tasks, true)?;
    let nn = start_nn(&name)?;
    println!("namenode started from the image in {:.2?}", nn.started_in);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let res = rt.block_on(cluster_run(o, &nn, blocks, &how));
    let stopped = nn.stop();
    rt.shutdown_timeout(Duration::from_secs(5));
    let table = res?;
    stopped?;
    crate::append_report(&o.report, "nn-cluster", &table)?;
    Ok(())
}

async fn cluster_run(o: &ClusterOpts, nn: &Nn, blocks: Vec<Blk>, how: &str) -> Result<String> {
    let d = o.datanodes.max(3);
    let mut dns = Vec::with_capacity(d as usize);
    for k in 0..d {
        let mut dn = SimDn::connect(&nn.rpc, k).await?;
        dn.register().await?;
        dns.push(dn);
    }
    println!("{d} simulated datanodes registered");
    // Replica j of block i goes to datanode (3i + j) mod d: three distinct datanodes per block.
    let requests = |dns: &[SimDn]| -> Vec<BlockReportRequest> {
        let mut per: Vec<Vec<Blk>> = vec![Vec::new(); d as usize];
        for (i, b) in blocks.iter().enumerate() {
            for j in 0..3 {
                per[(3 * i + j) % d as usize].push(*b);
            }
        }
        dns.iter().zip(per).map(|(dn, v)| report_request(&dn.uuid, v.into_iter())).collect()
    };
    let replicas = 3 * blocks.len() as u64;
    let mut report_rows = String::new();
    for round in ["first (start-up: no locations known)", "second (same replicas again)"] {
        let reqs = requests(&dns);
        let (s0, c0) = histogram(&nn.http, "namenode_block_report_seconds")?;
        let cpu0 = cpu_secs(nn.pid())?;
        let (wall, slowest) = send_reports(&dns, reqs, o.report_concurrency).await?;
        let cpu = cpu_secs(nn.pid())? - cpu0;
        let (s1, c1) = histogram(&nn.http, "namenode_block_report_seconds")?;
        let own = s1 - s0;
        let row = format!(
            "| {round} | {n:.0} reports, {replicas} replicas | {wall:.2?} | **{bps:.0}** | {own:.2} s: {obps:.0} | {cpu:.2} s | {slowest:.0?} | {met} |\n",
            n = c1 - c0,
            bps = replicas as f64 / wall.as_secs_f64(),
            obps = replicas as f64 / own.max(1e-9),
            met = if replicas as f64 / wall.as_secs_f64() >= 1e6 { "yes" } else { "**no**" },
        );
        print!("{row}");
        report_rows.push_str(&row);
    }
    let safemode = admin(&nn.rpc, &["-safemode", "get"]).unwrap_or_else(|e| e.to_string());
    println!("{safemode}");
    if safemode.contains("ON") {
        admin(&nn.rpc, &["-safemode", "leave"])?;
    }

    // Heartbeats: every datanode every 3 s, spread over the interval; `mode` pauses them or
    // picks how they are sent.
    let mode = Arc::new(AtomicU8::new(OFF));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut hb_tasks = tokio::task::JoinSet::new();
    for (k, mut dn) in dns.into_iter().enumerate() {
        let (mode, sent, stop) = (mode.clone(), sent.clone(), stop.clone());
        let offset = HEARTBEAT.mul_f64(k as f64 / d as f64);
        hb_tasks.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let how = mode.load(Ordering::Relaxed);
                if how != OFF && !stop.load(Ordering::Relaxed) {
                    if dn.heartbeat(how == UNARY).await? {
                        dn.register().await?;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    let window = Duration::from_secs(o.cpu_secs.max(3));
    // Each run: idle, the stream and (when compared) unary calls; the order of the two kinds
    // of heartbeat alternates between runs.
    let (mut idle, mut hb, mut hb_rate, mut unary, mut unary_rate) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (h0, hc0) = histogram(&nn.http, "namenode_heartbeat_seconds")?;
    for run in 0..o.runs.max(1) {
        let mut order = vec![OFF, STREAM];
        if o.compare_unary {
            order.insert(if run % 2 == 0 { 2 } else { 1 }, UNARY);
        }
        for how in order {
            mode.store(how, Ordering::Relaxed);
            // Let a whole interval pass so every datanode is in the new state.
            tokio::time::sleep(HEARTBEAT).await;
            let (c0, n0, t0) = (cpu_secs(nn.pid())?, sent.load(Ordering::Relaxed), Instant::now());
            tokio::time::sleep(window).await;
            let el = t0.elapsed().as_secs_f64();
            let pct = 100.0 * (cpu_secs(nn.pid())? - c0) / el;
            let rate = (sent.load(Ordering::Relaxed) - n0) as f64 / el;
            println!(
                "CPU window {} {}: namenode {pct:.2}% of a core, {rate:.0} heartbeats/s",
                run + 1,
                ["idle", "heartbeats (stream)", "heartbeats (unary calls)"][usize::from(how)]
            );
            match how {
                OFF => idle.push(pct),
                STREAM => {
                    hb.push(pct);
                    hb_rate.push(rate);
                }
                _ => {
                    unary.push(pct);
                    unary_rate.push(rate);
                }
            }
        }
    }
    let (h1, hc1) = histogram(&nn.http, "namenode_heartbeat_seconds")?;
    let (idle_m, hb_m) = (crate::median_f(idle.clone()), crate::median_f(hb.clone()));
    let cost = hb_m - idle_m;
    let handler_us = 1e6 * (h1 - h0) / (hc1 - hc0).max(1.0);
    let unary_row = if o.compare_unary {
        let um = crate::median_f(unary.clone());
        // Per run: the stream's cost over the unary calls' cost, both above that run's idle.
        let ratio =
            crate::median_f(idle.iter().zip(&hb).zip(&unary).map(|((i, s), u)| (s - i) / (u - i).max(1e-9)).collect());
        format!(
            "| unary calls, for comparison | {idle_m:.2}% | {um:.2}% ({u:?}) | {c:.2}% of a core | {r:.0} | stream / unary (median of per-run ratios): {ratio:.2} | - |\n",
            u = unary.iter().map(|v| (v * 100.0).round() / 100.0).collect::<Vec<_>>(),
            c = um - idle_m,
            r = crate::median_f(unary_rate),
        )
    } else {
        String::new()
    };

    // nn-throughput over RPC without and with the heartbeats, interleaved.
    let nn_opts = NnOpts {
        runs: 1,
        files: o.nn_files,
        reads: 0,
        rpc_reads: o.nn_reads,
        tasks: 64,
        connections: 8,
        mode: "rpc".into(),
        dir: None,
        report: None,
    };
    let mut without: Vec<Vec<f64>> = Vec::new();
    let mut with: Vec<Vec<f64>> = Vec::new();
    for run in 0..o.runs.max(1) {
        let order = if run % 2 == 0 { [false, true] } else { [true, false] };
        for on in order {
            mode.store(if on { STREAM } else { OFF }, Ordering::Relaxed);
            tokio::time::sleep(HEARTBEAT).await;
            println!(
                "== nn-throughput over RPC, run {}, {}",
                run + 1,
                if on { "with heartbeats" } else { "without heartbeats" }
            );
            let rates = crate::nnbench::rpc_run(&nn.rpc, &nn_opts).await?;
            if on {
                with.push(rates);
            } else {
                without.push(rates);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    mode.store(OFF, Ordering::Relaxed);
    while let Some(r) = hb_tasks.join_next().await {
        r??;
    }

    let mut tp_rows = String::new();
    for (k, name) in crate::nnbench::op_names().iter().enumerate() {
        let wo = crate::median_f(without.iter().map(|r| r[k]).collect());
        let wi = crate::median_f(with.iter().map(|r| r[k]).collect());
        let ratio = crate::median_f(without.iter().zip(&with).map(|(a, b)| b[k] / a[k]).collect());
        tp_rows.push_str(&format!(
            "| {name} | {wo:.0} | {wi:.0} | {ratio:.3} | {} |\n",
            if ratio >= 0.9 { "yes" } else { "**no**" }
        ));
    }
    let table = format!(
        "Namespace: {how}; the real `tusk namenode` started from that image. {d} simulated datanodes (gRPC, one \
         connection each, no data; uuids sim-dn-*, fake ports on 127.0.0.1), each block's three replicas reported by \
         datanodes 3i, 3i+1, 3i+2 (mod {d}). Block reports {conc} in flight at once. {safemode}.\n\n\
         Full block reports, totalling {replicas} replicas (target: >= 1,000,000 blocks/s):\n\n\
         | round | reports | send to last answer | blocks/s | namenode's own handling (namenode_block_report_seconds sum): blocks/s | namenode CPU meanwhile | slowest report | met |\n\
         |---|---|---|---|---|---|---|---|\n{report_rows}\n\
         Heartbeats: {d} datanodes every 3 s on heartbeat streams, {runs} windows of {w} s each way, interleaved (target: < 5% of a core):\n\n\
         | heartbeats | namenode CPU idle (median) | with heartbeats (median) | heartbeat cost | heartbeats/s | namenode's handler time per heartbeat | met |\n\
         |---|---|---|---|---|---|---|\n\
         | stream (as datanodes send them) | {idle_m:.2}% ({idle:?}) | {hb_m:.2}% ({hb:?}) | **{cost:.2}% of a core** | {rate:.0} | {handler_us:.1} µs | {hbmet} |\n{unary_row}\n\
         nn-throughput over RPC ({nf} files, {nr} reads, 64 tasks, 8 connections) with and without the heartbeats, \
         {runs} runs each way, interleaved; ratio = median of per-run ratios (target: >= 0.90, a drop under 10%):\n\n\
         | operation | without heartbeats ops/s | with | ratio | met |\n|---|---|---|---|---|\n{tp_rows}",
        conc = o.report_concurrency,
        runs = o.runs.max(1),
        w = window.as_secs(),
        idle = idle.iter().map(|v| (v * 100.0).round() / 100.0).collect::<Vec<_>>(),
        hb = hb.iter().map(|v| (v * 100.0).round() / 100.0).collect::<Vec<_>>(),
        rate = crate::median_f(hb_rate),
        hbmet = if cost < 5.0 { "yes" } else { "**no**" },
        nf = o.nn_files,
        nr = o.nn_reads,
    );
    println!("\n{table}");
    Ok(table)
}
