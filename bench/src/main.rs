//! Tusk benchmarks. `tusk-bench nn-million` builds a namespace of N files in-process,
//! saves it, then measures the real `tusk namenode` binary starting on it: start-up time
//! (with the edits replayed, and from the saved image), resident memory, and that
//! `tusk fs -count /` prints the same before and after the restart.
//!
//! Run: `cargo build --release -p tusk-cli -p tusk-bench && target/release/tusk-bench nn-million`
//! (see docs/benchmarks.md).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tusk_namenode::namesystem::SafeModeAction;
use tusk_namenode::{Namesystem, NamesystemConfig};

mod nnbench;
mod nnscale;
mod peers;
mod rpcbench;
mod storage;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Storage: DFSIO, small files and this machine's limits, side by side with SeaweedFS.
    Storage(storage::StorageOpts),
    /// Namenode operations per second (NNThroughputBenchmark style), in-process and over RPC.
    NnThroughput(nnbench::NnOpts),
    /// A namenode holding N files: build, save, restart, measure.
    NnMillion {
        #[arg(long, default_value_t = 1_000_000)]
        files: u64,
        /// Work directory (default: a new temporary directory, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Concurrent in-process creators.
        #[arg(long, default_value_t = 64)]
        threads: u64,
        /// Append the results to this markdown file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Namenode memory and start-up with files of one block, three replicas reported by
    /// simulated datanodes (issue 10, benchmark 5).
    NnMemory(nnscale::MemoryOpts),
    /// A namenode under 1,000 simulated datanodes: block reports, heartbeats' CPU, and
    /// nn-throughput with and without the heartbeats (issue 10, benchmark 6).
    NnCluster(nnscale::ClusterOpts),
    /// Unary gRPC calls through tonic's `Channel` and through our `RpcChannel`, side by side.
    RpcChannel(rpcbench::RpcOpts),
    /// Checkpoints: restart times without and with one after N transactions, then 10
    /// checkpoints under a steady load of creates with the name directory's size after each.
    Checkpoint {
        /// Transactions before the checkpoint (each file is a create and a complete: two).
        #[arg(long, default_value_t = 500_000)]
        txns: u64,
        /// Starts measured each way (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Checkpoints under load.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Seconds of load between two checkpoints.
        #[arg(long, default_value_t = 3)]
        load_secs: u64,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Leave the work directory in place (name directory and checkpoint) afterwards.
        #[arg(long)]
        keep: bool,
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

fn nn_config(dir: &Path) -> NamesystemConfig {
    let mut c = NamesystemConfig::from_config(&Default::default(), &Default::default(), dir.to_path_buf())
        .expect("default configuration");
    c.name_dirs = vec![dir.to_path_buf()];
    c
}

struct Started {
    child: std::process::Child,
    addr: String,
    elapsed: Duration,
}

fn tusk_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("tusk");
    if !bin.exists() {
        bail!("{} not found: build it first (cargo build --release -p tusk-cli)", bin.display());
    }
    Ok(bin)
}

fn start_namenode(dir: &Path) -> Result<Started> {
    start_namenode_logging(dir, None)
}

/// Starts `tusk namenode` on `dir`; with `log`, its info-level log goes there.
fn start_namenode_logging(dir: &Path, log: Option<&Path>) -> Result<Started> {
    let t0 = Instant::now();
    let mut cmd = Command::new(tusk_bin()?);
    cmd.args(["namenode", "--rpc-address", "127.0.0.1:0", "--name-dir"]).arg(dir).stdout(Stdio::piped());
    match log {
        Some(l) => cmd.env("TUSK_LOG", "info").stderr(std::fs::File::create(l)?),
        None => cmd.env("TUSK_LOG", "warn"),
    };
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let Some(line) = lines.next() else { bail!("namenode exited before serving") };
        if let Some(addr) = line?.strip_prefix("namenode: RPC listening on ") {
            let elapsed = t0.elapsed();
            // Keep draining: a daemon whose stdout is closed dies on its next status line.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(Started { child, addr: addr.trim().to_owned(), elapsed });
        }
    }
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn count_root(addr: &str) -> Result<String> {
    let out = Command::new(tusk_bin()?).args(["fs", "-count", "/"]).env("TUSK_NAMENODE", addr).output()?;
    if !out.status.success() {
        bail!("-count failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn stop(mut s: Started) -> Result<()> {
    nix_kill(s.child.id());
    s.child.wait()?;
    Ok(())
}

fn nix_kill(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            total += if p.is_dir() { dir_bytes(&p) } else { e.metadata().map(|m| m.len()).unwrap_or(0) };
        }
    }
    total
}

async fn build(fsn: Arc<Namesystem>, files: u64, threads: u64) -> Result<Duration> {
    let su = fsn.caller(fsn.superuser());
    let dirs = files.div_ceil(1000);
    for d in 0..dirs {
        fsn.mkdirs(&su, &format!("/bench/d{d:05}"), 0o755, true).await?;
    }
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..threads {
        let fsn = fsn.clone();
        let su = su.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < files {
                let p = format!("/bench/d{:05}/f{:07}", i / 1000, i);
                fsn.create(&su, &p, 0o644, false, false, 3, 0, "bench").await?;
                fsn.complete(&su, &p, "bench", None).await?;
                i += threads;
            }
            Ok::<_, tusk_namenode::NnError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(t0.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The median of `v` (the upper one of an even count); NaN when `v` is empty.
fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The `edits_replayed=N` of a namenode's "namespace loaded" log line.
fn edits_replayed(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("namespace loaded"))?;
    let rest = &line[line.find("edits_replayed=")? + "edits_replayed=".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn run_checkpointer_once(addr: &str, dir: &Path) -> Result<Duration> {
    let t0 = Instant::now();
    let out = Command::new(tusk_bin()?)
        .args(["checkpointer", "--once", "--namenode", addr, "--dir"])
        .arg(dir)
        .env("TUSK_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!("checkpointer --once failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t0.elapsed())
}

fn append_report(report: &Option<PathBuf>, title: &str, table: &str) -> Result<()> {
    let Some(r) = report else { return Ok(()) };
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(r)?;
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    writeln!(
        f,
        "\n### {title}, {} — commit {commit}, {} cores ({cpu})\n\n{table}",
        chrono_like_now(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn checkpoint_bench(
    txns: u64,
    runs: usize,
    rounds: usize,
    load_secs: u64,
    dir: Option<PathBuf>,
    keep: bool,
    report: Option<PathBuf>,
) -> Result<()> {
    let base = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("tusk-bench-ck-{}", std::process::id())));
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    let (name, ck, log) = (base.join("name"), base.join("checkpoint"), base.join("namenode.log"));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let fsn = Arc::new(Namesystem::open(nn_config(&name)).map_err(|e| anyhow::anyhow!("{e}"))?);
    rt.block_on(build(fsn.clone(), txns / 2, 64))?;
    let built = fsn.last_txid();
    fsn.close();
    drop(fsn);
    println!("built {} transactions", built);

    // Without a checkpoint: every start replays every edit.
    let mut without = Vec::new();
    let mut replayed_without = 0;
    let mut count_before = String::new();
    for _ in 0..runs.max(1) {
        let s = start_namenode_logging(&name, Some(&log))?;
        without.push(s.elapsed);
        replayed_without = edits_replayed(&log).unwrap_or(0);
        count_before = count_root(&s.addr)?;
        stop(s)?;
    }
    // One checkpoint by the real checkpointer.
    let s = start_namenode(&name)?;
    let ck_time = run_checkpointer_once(&s.addr, &ck)?;
    stop(s)?;
    let mut with = Vec::new();
    let mut replayed_with = u64::MAX;
    let mut count_after = String::new();
    for _ in 0..runs.max(1) {
        let s = start_namenode_logging(&name, Some(&log))?;
        with.push(s.elapsed);
        replayed_with = edits_replayed(&log).unwrap_or(u64::MAX);
        count_after = count_root(&s.addr)?;
        stop(s)?;
    }
    let (mw, mc) = (median(without), median(with));
    let restart_table = format!(
        "| transactions | start without checkpoint (median of {runs}) | edits replayed | checkpoint (`tusk checkpointer --once`) | start after it (median of {runs}) | edits replayed | speed-up | -count identical |\n\
         |---|---|---|---|---|---|---|---|\n\
         | {built} | {mw:.2?} | {replayed_without} | {ck_time:.2?} | {mc:.2?} | {replayed_with} | {:.1}x | {} |\n",
        mw.as_secs_f64() / mc.as_secs_f64().max(1e-9),
        count_before == count_after
    );
    print!("{restart_table}");

    // Ten checkpoints under a steady load of creates over RPC.
    let s = start_namenode(&name)?;
    let addr = s.addr.clone();
    let stop_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (addr, stop_flag) = (addr.clone(), stop_flag.clone());
        rt.spawn(async move {
            let c = tusk_client::Client::connect(&addr, "root", &Default::default()).await?;
            let mut n = 0u64;
            while !stop_flag.load(std::sync::atomic::Ordering::Relaxed) {
                c.mkdirs(&format!("/load/{}/{n}", n / 1000), 0o755, true).await?;
                n += 1;
            }
            Ok::<u64, anyhow::Error>(n)
        })
    };
    let mut rows = String::from(
        "| checkpoint | txid after | checkpoint took | name dir size | images (bytes) | edit files (bytes) |\n|---|---|---|---|---|---|\n",
    );
    for round in 1..=rounds {
        std::thread::sleep(Duration::from_secs(load_secs));
        let took = run_checkpointer_once(&addr, &ck)?;
        let current = name.join("current");
        let files: Vec<String> =
            std::fs::read_dir(&current)?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        let size_of = |prefix: &str| -> (usize, u64) {
            let sel: Vec<&String> = files.iter().filter(|n| n.starts_with(prefix)).collect();
            let bytes = sel.iter().filter_map(|n| std::fs::metadata(current.join(n)).ok()).map(|m| m.len()).sum();
            (sel.len(), bytes)
        };
        let (images, image_bytes) = size_of("fsimage_");
        let (edits, edit_bytes) = size_of("edits_");
        let txid = files.iter().filter_map(|n| n.strip_prefix("fsimage_")?.parse::<u64>().ok()).max().unwrap_or(0);
        let row = format!(
            "| {round} | {txid} | {took:.2?} | {:.1} MiB | {images} ({image_bytes}) | {edits} ({edit_bytes}) |\n",
            dir_bytes(&current) as f64 / (1 << 20) as f64
        );
        print!("{row}");
        rows.push_str(&row);
    }
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    let created = rt.block_on(load)??;
    stop(s)?;
    println!("{created} creates during the checkpoints");
    let table = format!("{restart_table}\nThen {rounds} checkpoints, {load_secs} s of RPC creates (one client) before each, {created} creates in all:\n\n{rows}");
    append_report(&report, "checkpoint", &table)?;
    if !keep {
        std::fs::remove_dir_all(&base).ok();
    }
    if count_before != count_after {
        bail!("-count differs after the checkpoint");
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.bench {
        Bench::Storage(opts) => storage::run(opts)?,
        Bench::NnThroughput(opts) => nnbench::run(opts)?,
        Bench::NnMemory(opts) => nnscale::memory(opts)?,
        Bench::NnCluster(opts) => nnscale::cluster(opts)?,
        Bench::RpcChannel(opts) => rpcbench::main(opts)?,
        Bench::Checkpoint { txns, runs, rounds, load_secs, dir, keep, report } => {
            checkpoint_bench(txns, runs, rounds, load_secs, dir, keep, report)?;
        }
        Bench::NnMillion { files, dir, threads, report } => {
            let tmp;
            let dir = match dir {
                Some(d) => d,
                None => {
                    tmp = std::env::temp_dir().join(format!("tusk-bench-{}", std::process::id()));
                    tmp
                }
            };
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let fsn = Arc::new(Namesystem::open(nn_config(&dir)).map_err(|e| anyhow::anyhow!("{e}"))?);
            let build_time = rt.block_on(build(fsn.clone(), files, threads))?;
            let stats = fsn.journal_stats();
            let txns = fsn.last_txid();
            fsn.close();
            drop(fsn);
            let ops_per_s = (2 * files) as f64 / build_time.as_secs_f64();
            println!("built {files} files ({txns} txns) in {build_time:.1?}: {ops_per_s:.0} mutations/s, {} syncs ({:.1} records per sync)", stats.syncs, stats.records_per_sync());

            // Start 1: replay every edit.
            let s = start_namenode(&dir)?;
            let replay_time = s.elapsed;
            let replay_rss = status_kb(s.child.id(), "VmRSS:");
            let count_before = count_root(&s.addr)?;
            // Save the namespace through the real admin commands.
            let admin = |args: &[&str], addr: &str| -> Result<()> {
                let out = Command::new(tusk_bin()?).arg("dfsadmin").args(args).env("TUSK_NAMENODE", addr).output()?;
                if !out.status.success() {
                    bail!("dfsadmin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
                }
                Ok(())
            };
            admin(&["-safemode", "enter"], &s.addr)?;
            let t_save = Instant::now();
            admin(&["-saveNamespace"], &s.addr)?;
            let save_time = t_save.elapsed();
            admin(&["-safemode", "leave"], &s.addr)?;
            stop(s)?;
            let name_bytes = dir_bytes(&dir);

            // Start 2: from the image.
            let s = start_namenode(&dir)?;
            let image_time = s.elapsed;
            std::thread::sleep(Duration::from_millis(200));
            let rss = status_kb(s.child.id(), "VmRSS:");
            let hwm = status_kb(s.child.id(), "VmHWM:");
            let count_after = count_root(&s.addr)?;
            stop(s)?;
            let same = count_before == count_after;
            println!("-count / before restart: {}", count_before.trim_end());
            println!("-count / after restart:  {}", count_after.trim_end());
            let table = format!(
                "| files | build (in-process, {threads} tasks) | start, replaying {txns} edits | saveNamespace | start from fsimage | RSS after start | peak RSS | bytes/file (RSS) | name dir size | -count identical |\n\
                 |---|---|---|---|---|---|---|---|---|---|\n\
                 | {files} | {build_time:.1?} ({ops_per_s:.0} mutations/s, {rps:.0} records/sync) | {replay_time:.2?} (RSS {rr} MiB) | {save_time:.2?} | {image_time:.2?} | {rss} MiB | {hwm} MiB | {bpf} | {nb} MiB | {same} |\n",
                rps = stats.records as f64 / stats.syncs.max(1) as f64,
                rr = replay_rss / 1024,
                rss = rss / 1024,
                hwm = hwm / 1024,
                bpf = rss * 1024 / files.max(1),
                nb = name_bytes >> 20,
            );
            print!("{table}");
            append_report(&report, "nn-million", &table)?;
            std::fs::remove_dir_all(&dir).ok();
            if !same {
                bail!("-count differs after restart");
            }
            let _ = SafeModeAction::Get;
        }
    }
    Ok(())
}

fn chrono_like_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}
