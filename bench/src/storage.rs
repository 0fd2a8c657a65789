//! `tusk-bench storage`: the data path side by side with SeaweedFS and with this machine's
//! limits, in one invocation, runs interleaved (see docs/benchmarks.md).
//!
//! - limits: loopback TCP and the CRC32C of our checksum code (the local write and read
//!   limits are the `local` system of DFSIO);
//! - DFSIO: `files` x `file_mib` written by 1 and by 4 concurrent writers, read by 1 and 4
//!   readers, on Tusk (in-process `tusk_client::Client`), SeaweedFS (filer HTTP API) and local
//!   files (each byte written to three files, each 128 MiB block and its checksum file fsynced
//!   at close, as a datanode does with `datanode.sync_on_close`);
//! - small files: `small_files` x 1 KiB written then read by 16 concurrent clients.

use crate::peers::{Http, Seaweed, TuskCluster};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const BLOCK_BYTES: u64 = 128 * MIB;

#[derive(Clone, Debug, clap::Args)]
pub struct StorageOpts {
    /// Runs of every benchmark (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// DFSIO: number of files.
    #[arg(long, default_value_t = 4)]
    pub files: u64,
    /// DFSIO: size of each file in MiB.
    #[arg(long, default_value_t = 1024)]
    pub file_mib: u64,
    /// Small files: how many (1 KiB each).
    #[arg(long, default_value_t = 100_000)]
    pub small_files: u64,
    /// Small files: concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub small_clients: u64,
    /// Which parts to run: comma-separated from limits, dfsio, small.
    #[arg(long, default_value = "limits,dfsio,small")]
    pub only: String,
    /// Which systems: comma-separated from tusk, weed, local (for profiling one alone).
    #[arg(long, default_value = "tusk,weed,local")]
    pub systems: String,
    /// Work directory (default /tmp/tusk-bench-storage-PID; removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The SeaweedFS `weed` binary (default: $WEED, else `weed` on the PATH).
    #[arg(long)]
    pub weed: Option<PathBuf>,
    /// Append the results to this markdown file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Sys {
    Tusk,
    Weed,
    Local,
}

/// Every sample, by (benchmark, system), in the order taken.
#[derive(Default)]
struct Samples(BTreeMap<(String, Sys), Vec<f64>>);

impl Samples {
    fn add(&mut self, bench: &str, sys: Sys, v: f64) {
        println!("  {bench:<28} {sys:?}: {v:.1}");
        self.0.entry((bench.to_owned(), sys)).or_default().push(v);
    }
    fn get(&self, bench: &str, sys: Sys) -> Option<&Vec<f64>> {
        self.0.get(&(bench.to_owned(), sys))
    }
    fn median(&self, bench: &str, sys: Sys) -> Option<f64> {
        self.get(bench, sys).map(|v| median(v.clone()))
    }
    /// Median of the per-run ratios a/b (runs were interleaved).
    fn ratio(&self, bench: &str, a: Sys, b: Sys) -> Option<f64> {
        let (x, y) = (self.get(bench, a)?, self.get(bench, b)?);
        let r: Vec<f64> = x.iter().zip(y).map(|(x, y)| x / y.max(1e-12)).collect();
        (!r.is_empty()).then(|| median(r))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// 1 MiB of bytes that no layer could compress.
fn payload() -> Arc<Vec<u8>> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut v = Vec::with_capacity(MIB as usize);
    while v.len() < MIB as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    Arc::new(v)
}

pub fn run(opts: StorageOpts) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let base = opts
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tusk-bench-storage-{}", std::process::id())));
    if base.exists() {
        std::fs::remove_dir_all(&base)?;
    }
    std::fs::create_dir_all(&base)?;
    let res = rt.block_on(run_all(&opts, &base));
    rt.shutdown_timeout(Duration::from_secs(5));
    // After a failure the logs stay (the data was deleted as the runs went).
    if res.is_ok() {
        std::fs::remove_dir_all(&base).ok();
    } else {
        eprintln!("logs kept in {}", base.display());
    }
    res
}

async fn run_all(opts: &StorageOpts, base: &Path) -> Result<()> {
    let parts: Vec<&str> = opts.only.split(',').map(str::trim).collect();
    let mut s = Samples::default();
    let tusk_bin = crate::tusk_bin()?;
    let need_clusters = parts.iter().any(|p| *p == "dfsio" || *p == "small");
    let wanted: Vec<&str> = opts.systems.split(',').map(str::trim).collect();
    let mut clusters = None;
    if need_clusters {
        // SeaweedFS (and the `weed` binary) only when it is one of the systems measured.
        let weed_bin = if wanted.contains(&"weed") { Some(crate::peers::find_weed(opts.weed.clone())?) } else { None };
        println!(
            "starting tusk cluster up (3 datanodes){}",
            if weed_bin.is_some() { " and SeaweedFS (master, 3 volume servers, filer)" } else { "" }
        );
        let tusk = TuskCluster::start(&tusk_bin, &base.join("tusk")).await?;
        let weed = match &weed_bin {
            Some(bin) => Some(Seaweed::start(bin, &base.join("weed")).await?),
            None => None,
        };
        println!(
            "tusk namenode {}, SeaweedFS filer {}",
            tusk.namenode,
            weed.as_ref().map_or("not started", |w| w.filer.as_str())
        );
        clusters = Some((tusk, weed));
    }
    let data = payload();
    for run in 0..opts.runs {
        println!("== run {} of {}", run + 1, opts.runs);
        if parts.contains(&"limits") {
            s.add("loopback TCP (MiB/s)", Sys::Local, loopback_tcp(4096)?);
            s.add("CRC32C per 512 B (MiB/s)", Sys::Local, crc_speed(1024, &data));
        }
        if let Some((tusk, weed)) = &clusters {
            let mut order = [Sys::Local, Sys::Tusk, Sys::Weed];
            order.rotate_left(run % 3);
            let order: Vec<Sys> =
                order.into_iter().filter(|s| wanted.contains(&format!("{s:?}").to_lowercase().as_str())).collect();
            let weed = weed.as_ref().map(|w| w.clone_handle());
            let ctx = Ctx { base, tusk: &tusk.namenode, weed, data: data.clone(), opts };
            if parts.contains(&"dfsio") {
                for &sys in &order {
                    dfsio_round(&ctx, sys, &mut s).await.with_context(|| format!("DFSIO on {sys:?}"))?;
                }
            }
            if parts.contains(&"small") {
                for &sys in order.iter().filter(|s| **s != Sys::Local) {
                    small_round(&ctx, sys, &mut s).await.with_context(|| format!("small files on {sys:?}"))?;
                }
            }
        }
    }
    if let Some((mut tusk, weed)) = clusters {
        tusk.stop();
        if let Some(mut weed) = weed {
            weed.stop();
        }
    }
    let table = table(opts, &s);
    println!("\n{table}");
    crate::append_report(&opts.report, "storage", &table)?;
    Ok(())
}

struct Ctx<'a> {
    base: &'a Path,
    tusk: &'a str,
    /// None when SeaweedFS is not among `--systems`.
    weed: Option<crate::peers::SeaweedHandle>,
    data: Arc<Vec<u8>>,
    opts: &'a StorageOpts,
}

impl Ctx<'_> {
    fn weed(&self) -> Result<&crate::peers::SeaweedHandle> {
        self.weed.as_ref().context("SeaweedFS is not running (not among --systems)")
    }

    /// The filer's address for the tasks of a round; empty when SeaweedFS was not started
    /// (no round runs on it then).
    fn weed_filer(&self) -> String {
        self.weed.as_ref().map(|w| w.filer.clone()).unwrap_or_default()
    }
}

// ---- limits ----

/// MiB/s through one loopback TCP connection, 1 MiB writes.
fn loopback_tcp(total_mib: u64) -> Result<f64> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut c, _) = l.accept()?;
        let mut buf = vec![0u8; MIB as usize];
        let mut n = 0u64;
        loop {
            let k = c.read(&mut buf)?;
            if k == 0 {
                return Ok(n);
            }
            n += k as u64;
        }
    });
    let buf = payload();
    let t0 = Instant::now();
    let mut c = std::net::TcpStream::connect(addr)?;
    for _ in 0..total_mib {
        c.write_all(&buf)?;
    }
    drop(c);
    let got = reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??;
    anyhow::ensure!(got == total_mib * MIB, "loopback: {got} bytes arrived");
    Ok(total_mib as f64 / t0.elapsed().as_secs_f64())
}

/// MiB/s of checking 512-byte chunks against their CRC32Cs with the data path's own code
/// (`tusk_proto::data_transfer::verify_checksums`, what every reader and datanode runs).
fn crc_speed(total_mib: u64, data: &[u8]) -> f64 {
    let mut sums = Vec::new();
    tusk_proto::data_transfer::chunk_checksums(data, &mut sums);
    let t0 = Instant::now();
    let mut bad = 0usize;
    for _ in 0..total_mib {
        bad += usize::from(tusk_proto::data_transfer::verify_checksums(std::hint::black_box(data), &sums).is_err());
    }
    std::hint::black_box(bad);
    total_mib as f64 / t0.elapsed().as_secs_f64()
}

// ---- DFSIO ----

async fn dfsio_round(ctx: &Ctx<'_>, sys: Sys, s: &mut Samples) -> Result<()> {
    let total_mib = (ctx.opts.files * ctx.opts.file_mib) as f64;
    clear(ctx, sys, "/dfsio").await?;
    let t = write_files(ctx, sys, 1).await?;
    s.add("DFSIO write, 1 writer", sys, total_mib / t);
    let t = read_files(ctx, sys, 1).await?;
    s.add("DFSIO read, 1 reader", sys, total_mib / t);
    let t = read_files(ctx, sys, 4).await?;
    s.add("DFSIO read, 4 readers", sys, total_mib / t);
    clear(ctx, sys, "/dfsio").await?;
    let t = write_files(ctx, sys, 4).await?;
    s.add("DFSIO write, 4 writers", sys, total_mib / t);
    clear(ctx, sys, "/dfsio").await?;
    Ok(())
}

fn local_dir(ctx: &Ctx<'_>) -> PathBuf {
    ctx.base.join("local")
}

/// Seconds to write every file, file i by task i % tasks.
async fn write_files(ctx: &Ctx<'_>, sys: Sys, tasks: u64) -> Result<f64> {
    if sys == Sys::Tusk {
        let c = tusk_client::Client::connect(ctx.tusk, "root", &Default::default()).await?;
        c.mkdirs("/dfsio", 0o755, true).await?;
    }
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (files, size) = (ctx.opts.files, ctx.opts.file_mib * MIB);
        let data = ctx.data.clone();
        let (tusk, weed, local) = (ctx.tusk.to_owned(), ctx.weed_filer(), local_dir(ctx));
        set.spawn(async move {
            let mut i = t;
            while i < files {
                match sys {
                    Sys::Local => {
                        let (data, local) = (data.clone(), local.clone());
                        tokio::task::spawn_blocking(move || local_write(&local, i, size, &data)).await??;
                    }
                    Sys::Tusk => {
                        let c = tusk_client::Client::connect(&tusk, "root", &Default::default()).await?;
                        let mut w = c.create(&format!("/dfsio/f{i}"), true, 3, 0).await?;
                        let mut left = size;
                        while left > 0 {
                            let n = left.min(data.len() as u64) as usize;
                            w.write(&data[..n]).await?;
                            left -= n as u64;
                        }
                        w.close().await?;
                    }
                    Sys::Weed => {
                        let mut h = Http::connect(&weed).await?;
                        h.put_repeated(&format!("/dfsio/f{i}"), &data, size).await?;
                    }
                }
                i += tasks;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Writes file `i` three times (three "replicas"), each in 128 MiB block files plus a
/// checksum file of a datanode's meta size, both fsynced at close, the three in parallel.
fn local_write(dir: &Path, i: u64, size: u64, data: &[u8]) -> Result<()> {
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..3)
            .map(|copy| {
                sc.spawn(move || -> Result<()> {
                    let d = dir.join(format!("copy{copy}"));
                    std::fs::create_dir_all(&d)?;
                    let mut off = 0;
                    let mut b = 0;
                    while off < size {
                        let len = (size - off).min(BLOCK_BYTES);
                        let mut f = std::fs::File::create(d.join(format!("f{i}_blk{b}")))?;
                        let mut left = len;
                        while left > 0 {
                            let n = left.min(data.len() as u64) as usize;
                            f.write_all(&data[..n])?;
                            left -= n as u64;
                        }
                        let mut m = std::fs::File::create(d.join(format!("f{i}_blk{b}.meta")))?;
                        m.write_all(&vec![0u8; (7 + len.div_ceil(512) * 4) as usize])?;
                        f.sync_all()?;
                        m.sync_all()?;
                        off += len;
                        b += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| anyhow::anyhow!("local writer panicked"))??;
        }
        Ok(())
    })
}

/// Reads file `i`'s first copy (from the page cache: it was just written).
fn local_read(dir: &Path, i: u64, size: u64) -> Result<u64> {
    let d = dir.join("copy0");
    let mut buf = vec![0u8; MIB as usize];
    let (mut n, mut b) = (0u64, 0);
    while n < size {
        let p = d.join(format!("f{i}_blk{b}"));
        let mut f = std::fs::File::open(&p).with_context(|| format!("{}", p.display()))?;
        loop {
            let k = f.read(&mut buf)?;
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        b += 1;
    }
    Ok(n)
}

/// Seconds to read every file once, file i by task i % tasks.
async fn read_files(ctx: &Ctx<'_>, sys: Sys, tasks: u64) -> Result<f64> {
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (files, size) = (ctx.opts.files, ctx.opts.file_mib * MIB);
        let (tusk, weed, local) = (ctx.tusk.to_owned(), ctx.weed_filer(), local_dir(ctx));
        set.spawn(async move {
            let mut i = t;
            while i < files {
                let got = match sys {
                    Sys::Local => {
                        let local = local.clone();
                        tokio::task::spawn_blocking(move || local_read(&local, i, size)).await??
                    }
                    Sys::Tusk => {
                        let c = tusk_client::Client::connect(&tusk, "root", &Default::default()).await?;
                        let mut r = c.open(&format!("/dfsio/f{i}")).await?;
                        let mut buf = vec![0u8; MIB as usize];
                        let mut n = 0u64;
                        loop {
                            let k = r.read(&mut buf).await?;
                            if k == 0 {
                                break;
                            }
                            n += k as u64;
                        }
                        n
                    }
                    Sys::Weed => Http::connect(&weed).await?.get_discard(&format!("/dfsio/f{i}")).await?,
                };
                if got != size {
                    bail!("file {i}: read {got} bytes of {size}");
                }
                i += tasks;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Removes a benchmark's files and waits (up to 60 s) until the system's disk usage has
/// dropped back, so that runs do not pile up tens of GB of garbage.
async fn clear(ctx: &Ctx<'_>, sys: Sys, path: &str) -> Result<()> {
    match sys {
        Sys::Local => {
            let d = local_dir(ctx);
            if d.exists() {
                std::fs::remove_dir_all(&d)?;
            }
            return Ok(());
        }
        Sys::Tusk => {
            let c = tusk_client::Client::connect(ctx.tusk, "root", &Default::default()).await?;
            c.delete(path, true).await?;
        }
        Sys::Weed => {
            let mut h = Http::connect(&ctx.weed()?.filer).await?;
            h.delete(&format!("{path}/?recursive=true&ignoreRecursiveError=true")).await?;
        }
    }
    let dir = ctx.base.join(if sys == Sys::Tusk { "tusk" } else { "weed" });
    let t0 = Instant::now();
    loop {
        if sys == Sys::Weed {
            // SeaweedFS reclaims deleted needles only when a volume is vacuumed.
            let mut h = Http::connect(&ctx.weed()?.master).await?;
            h.get("/vol/vacuum?garbageThreshold=0.01").await.ok();
        }
        let used = crate::dir_bytes(&dir);
        if used < 256 * MIB {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(60) {
            println!("  warning: {sys:?} still uses {} MiB 60 s after deleting {path}", used / MIB);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---- small files ----

async fn small_round(ctx: &Ctx<'_>, sys: Sys, s: &mut Samples) -> Result<()> {
    let (n, clients) = (ctx.opts.small_files, ctx.opts.small_clients);
    clear(ctx, sys, "/small").await?;
    if sys == Sys::Tusk {
        let c = tusk_client::Client::connect(ctx.tusk, "root", &Default::default()).await?;
        for d in 0..n.div_ceil(1000) {
            c.mkdirs(&format!("/small/d{d}"), 0o755, true).await?;
        }
    }
    for write in [true, false] {
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for t in 0..clients {
            let (tusk, weed) = (ctx.tusk.to_owned(), ctx.weed_filer());
            let body = ctx.data[..1024].to_vec();
            set.spawn(async move {
                let mut tc = None;
                let mut wc = None;
                match sys {
                    Sys::Tusk => tc = Some(tusk_client::Client::connect(&tusk, "root", &Default::default()).await?),
                    _ => wc = Some(Http::connect(&weed).await?),
                }
                let mut i = t;
                while i < n {
                    let path = format!("/small/d{}/f{i}", i / 1000);
                    match (&tc, &mut wc, write) {
                        (Some(c), _, true) => {
                            let mut w = c.create(&path, true, 3, 0).await?;
                            w.write(&body).await?;
                            w.close().await?;
                        }
                        (Some(c), _, false) => {
                            let got = c.open(&path).await?.read_to_end().await?;
                            anyhow::ensure!(got == body, "{path}: read back {} bytes, not what was written", got.len());
                        }
                        (None, Some(h), true) => h.put(&path, &body).await?,
                        (None, Some(h), false) => {
                            let got = h.get(&path).await?;
                            anyhow::ensure!(got == body, "{path}: read back {} bytes, not what was written", got.len());
                        }
                        _ => bail!("no client"),
                    }
                    i += clients;
                }
                Ok::<_, anyhow::Error>(())
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        let rate = n as f64 / t0.elapsed().as_secs_f64();
        s.add(if write { "small files write (files/s)" } else { "small files read (files/s)" }, sys, rate);
    }
    clear(ctx, sys, "/small").await?;
    Ok(())
}

// ---- the table ----

fn table(opts: &StorageOpts, s: &Samples) -> String {
    let f = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "not measured".into());
    let r = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    let ran = |part: &str| opts.only.split(',').any(|p| p.trim() == part);
    let mut parts = Vec::new();
    if ran("dfsio") {
        parts.push(format!("DFSIO: {} files x {} MiB", opts.files, opts.file_mib));
    }
    if ran("small") {
        parts.push(format!("small files: {} x 1 KiB, {} clients", opts.small_files, opts.small_clients));
    }
    if ran("limits") {
        parts.push("limits: loopback TCP 4 GiB, CRC32C 1 GiB".into());
    }
    let mut out = format!(
        "Pseudo-clusters on one machine, all on 127.0.0.1: Tusk (`tusk cluster up`, 3 datanodes, replication 3, \
         in-process `tusk_client`) and SeaweedFS (`weed` master + 3 volume servers, replication 002, filer HTTP \
         API); systems {}. {}. Median of {} interleaved runs; ratios are medians of per-run ratios.\n\n\
         | benchmark | Tusk | SeaweedFS | local limit | Tusk / local | Tusk / SeaweedFS | target | met |\n\
         |---|---|---|---|---|---|---|---|\n",
        opts.systems,
        parts.join("; "),
        opts.runs
    );
    let rows: [(&str, Option<f64>, f64); 6] = [
        ("DFSIO write, 1 writer", Some(0.5), 2.0),
        ("DFSIO write, 4 writers", Some(0.5), 2.0),
        ("DFSIO read, 1 reader", Some(0.5), 2.0),
        ("DFSIO read, 4 readers", Some(0.5), 2.0),
        ("small files write (files/s)", None, 2.0),
        ("small files read (files/s)", None, 2.0),
    ];
    for (bench, local_target, weed_target) in rows {
        if s.get(bench, Sys::Tusk).is_none() {
            continue;
        }
        let unit = if bench.starts_with("DFSIO") { " (MiB/s)" } else { "" };
        let rl = s.ratio(bench, Sys::Tusk, Sys::Local);
        let rw = s.ratio(bench, Sys::Tusk, Sys::Weed);
        let (target, met) = match local_target {
            Some(lt) => (
                format!(">= {lt:.0}% of local, >= {weed_target:.0}x SeaweedFS", lt = lt * 100.0),
                rl.zip(rw).map(|(l, w)| l >= lt && w >= weed_target),
            ),
            None => (format!(">= {weed_target:.0}x SeaweedFS"), rw.map(|w| w >= weed_target)),
        };
        out.push_str(&format!(
            "| {bench}{unit} | {} | {} | {} | {} | {} | {target} | {} |\n",
            f(s.median(bench, Sys::Tusk)),
            f(s.median(bench, Sys::Weed)),
            if local_target.is_some() { f(s.median(bench, Sys::Local)) } else { "-".into() },
            if local_target.is_some() { r(rl) } else { "-".into() },
            r(rw),
            // A target is judged only when every system it compares with was measured.
            match met {
                None => "-",
                Some(true) => "yes",
                Some(false) => "**no**",
            }
        ));
    }
    for bench in ["loopback TCP (MiB/s)", "CRC32C per 512 B (MiB/s)"] {
        if let Some(v) = s.median(bench, Sys::Local) {
            out.push_str(&format!("| {bench} | - | - | {v:.0} | - | - | - | - |\n"));
        }
    }
    out
}
