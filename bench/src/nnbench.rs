//! `tusk-bench nn-throughput`: namenode operations per second in the style of Hadoop's
//! NNThroughputBenchmark, in-process on `Namesystem` (no RPC, as Hadoop's default mode) and
//! over RPC against a real `tusk namenode` process from this one, with `tasks` concurrent
//! client tasks. Files are made without blocks (create then complete), as Hadoop's create
//! and open operations do, so getBlockLocations answers an empty block list.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tusk_namenode::journal::JournalStats;
use tusk_namenode::permission::Caller;
use tusk_namenode::Namesystem;

#[derive(Clone, Debug, clap::Args)]
pub struct NnOpts {
    /// Runs of every operation (medians are reported); each run starts on an empty namespace.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Files created (then renamed and deleted) and directories made per run.
    #[arg(long, default_value_t = 100_000)]
    pub files: u64,
    /// getFileInfo and getBlockLocations calls per run in-process (listings: a tenth).
    #[arg(long, default_value_t = 2_000_000)]
    pub reads: u64,
    /// The same over RPC.
    #[arg(long, default_value_t = 300_000)]
    pub rpc_reads: u64,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 64)]
    pub tasks: u64,
    /// RPC connections the tasks share (task t uses connection t % connections).
    #[arg(long, default_value_t = 8)]
    pub connections: u64,
    /// Which modes: comma-separated from inproc, rpc.
    #[arg(long, default_value = "inproc,rpc")]
    pub mode: String,
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Create,
    Mkdirs,
    FileInfo,
    BlockLocations,
    Listing,
    Rename,
    Delete,
}

const OPS: [Op; 7] = [Op::Mkdirs, Op::Create, Op::FileInfo, Op::BlockLocations, Op::Listing, Op::Rename, Op::Delete];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create (durable, + complete)",
            Op::Mkdirs => "mkdirs (durable)",
            Op::FileInfo => "getFileInfo",
            Op::BlockLocations => "getBlockLocations",
            Op::Listing => "listing (100-entry directory)",
            Op::Rename => "rename (durable)",
            Op::Delete => "delete (durable)",
        }
    }
}

enum Target {
    InProc { fsn: Arc<Namesystem>, su: Caller },
    Rpc { clients: Vec<tusk_client::Client> },
}

/// Every path a run uses, made before the clock starts (as NNThroughputBenchmark generates
/// its inputs first), so the timed loop measures the namenode and not `format!`. Files live
/// 100 to a directory so that a directory listing is 100 entries.
struct Names {
    files: Vec<String>,
    renamed: Vec<String>,
    dirs: Vec<String>,
    /// The parents of `files` (listed by the listing operation) and of `dirs`, made untimed.
    parents: Vec<String>,
    dir_parents: Vec<String>,
}

impl Names {
    fn new(files: u64) -> Names {
        Names {
            files: (0..files).map(|i| format!("/cr/p{}/f{i}", i / 100)).collect(),
            renamed: (0..files).map(|i| format!("/cr/p{}/g{i}", i / 100)).collect(),
            dirs: (0..files).map(|i| format!("/mk/p{}/d{i}", i / 1000)).collect(),
            parents: (0..files.div_ceil(100)).map(|k| format!("/cr/p{k}")).collect(),
            dir_parents: (0..files.div_ceil(1000)).map(|k| format!("/mk/p{k}")).collect(),
        }
    }
}

impl Target {
    async fn op(&self, names: &Names, task: u64, op: Op, i: u64) -> Result<()> {
        // Reads go over the files in a scattered order.
        let n = names.files.len();
        let (i, r) = ((i % n as u64) as usize, (i.wrapping_mul(7919) % n as u64) as usize);
        let (file, read, renamed, dir) = (&names.files[i], &names.files[r], &names.renamed[i], &names.dirs[i]);
        let parent = &names.parents[r / 100];
        match self {
            Target::InProc { fsn, su } => match op {
                Op::Create => {
                    fsn.create(su, file, 0o644, false, false, 3, 0, "bench").await?;
                    fsn.complete(su, file, "bench", None).await?;
                }
                Op::Mkdirs => fsn.mkdirs(su, dir, 0o755, false).await?,
                Op::FileInfo => {
                    fsn.file_info(su, read)?.context("missing file")?;
                }
                Op::BlockLocations => {
                    fsn.block_locations(su, read, 0, u64::MAX, None)?;
                }
                Op::Listing => {
                    let l = fsn.listing(su, parent, "")?;
                    std::hint::black_box(l);
                }
                Op::Rename => fsn.rename(su, file, renamed).await?,
                Op::Delete => {
                    fsn.delete(su, renamed, false).await?;
                }
            },
            Target::Rpc { clients } => {
                let c = &clients[(task as usize) % clients.len()];
                match op {
                    Op::Create => {
                        c.create_empty(file, false).await?;
                    }
                    Op::Mkdirs => c.mkdirs(dir, 0o755, false).await?,
                    Op::FileInfo => {
                        c.file_info(read).await?.context("missing file")?;
                    }
                    Op::BlockLocations => {
                        c.get_block_locations(read, 0, u64::MAX).await?;
                    }
                    Op::Listing => {
                        let page = c.list_page(parent, "").await?;
                        anyhow::ensure!(page.entries.len() == 100, "listing has {} entries", page.entries.len());
                    }
                    Op::Rename => c.rename(file, renamed).await?,
                    Op::Delete => {
                        c.delete(renamed, false).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Operations per second of `count` operations from `tasks` tasks.
async fn drive(target: &Arc<Target>, names: &Arc<Names>, op: Op, count: u64, tasks: u64) -> Result<f64> {
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (target, names) = (target.clone(), names.clone());
        set.spawn(async move {
            let mut i = t;
            while i < count {
                target.op(&names, t, op, i).await.with_context(|| format!("{} #{i}", op.name()))?;
                i += tasks;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(count as f64 / t0.elapsed().as_secs_f64())
}

/// The parent directories, not timed.
async fn prepare(target: &Target, names: &Names) -> Result<()> {
    for d in names.parents.iter().chain(&names.dir_parents) {
        match target {
            Target::InProc { fsn, su } => fsn.mkdirs(su, d, 0o755, true).await?,
            Target::Rpc { clients } => clients[0].mkdirs(d, 0o755, true).await?,
        }
    }
    Ok(())
}

/// One operation's result in a run: ops/s, and for durable operations in-process how the
/// edit log grouped them (the edit log is not visible over RPC).
#[derive(Clone, Copy, Debug)]
struct Sample {
    rate: f64,
    group: Option<GroupCommit>,
}

/// Edits per fdatasync and the mean fdatasync, over one operation's run.
#[derive(Clone, Copy, Debug)]
struct GroupCommit {
    edits_per_sync: f64,
    mean_sync: Duration,
}

fn group_commit(before: JournalStats, after: JournalStats) -> Option<GroupCommit> {
    let d = after.since(before);
    let syncs = u32::try_from(d.syncs).ok().filter(|&n| n > 0)?;
    Some(GroupCommit { edits_per_sync: d.records_per_sync(), mean_sync: d.sync_time / syncs })
}

async fn one_run(target: Arc<Target>, o: &NnOpts, reads: u64) -> Result<Vec<Sample>> {
    let names = Arc::new(Names::new(o.files.max(1)));
    prepare(&target, &names).await?;
    let stats = || match &*target {
        Target::InProc { fsn, .. } => Some(fsn.journal_stats()),
        Target::Rpc { .. } => None,
    };
    let mut out = Vec::new();
    for op in OPS {
        let count = match op {
            Op::FileInfo | Op::BlockLocations => reads,
            Op::Listing => reads / 10,
            _ => o.files,
        };
        let before = stats();
        let rate = drive(&target, &names, op, count, o.tasks).await?;
        let group = before.zip(stats()).and_then(|(b, a)| group_commit(b, a));
        match group {
            Some(g) => println!(
                "  {:<32} {rate:>12.0} ops/s   {:.1} edits per sync, {:.0} us per sync",
                op.name(),
                g.edits_per_sync,
                g.mean_sync.as_secs_f64() * 1e6
            ),
            None => println!("  {:<32} {rate:>12.0} ops/s", op.name()),
        }
        out.push(Sample { rate, group });
    }
    Ok(out)
}

pub fn run(o: NnOpts) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let base =
        o.dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("tusk-bench-nn-{}", std::process::id())));
    let modes: Vec<&str> = o.mode.split(',').map(str::trim).collect();
    // results[mode][op] = samples
    let mut inproc: Vec<Vec<f64>> = vec![Vec::new(); OPS.len()];
    let mut groups: Vec<Vec<GroupCommit>> = vec![Vec::new(); OPS.len()];
    let mut rpc: Vec<Vec<f64>> = vec![Vec::new(); OPS.len()];
    for run in 0..o.runs {
        if modes.contains(&"inproc") {
            println!("== in-process, run {} of {}", run + 1, o.runs);
            let dir = base.join("inproc");
            fresh(&dir)?;
            let fsn = Arc::new(Namesystem::open(crate::nn_config(&dir)).map_err(|e| anyhow::anyhow!("{e}"))?);
            let su = fsn.caller(fsn.superuser());
            let target = Arc::new(Target::InProc { fsn: fsn.clone(), su });
            let rates = rt.block_on(one_run(target, &o, o.reads))?;
            fsn.close();
            drop(fsn);
            for (k, r) in rates.into_iter().enumerate() {
                inproc[k].push(r.rate);
                groups[k].extend(r.group);
            }
        }
        if modes.contains(&"rpc") {
            println!("== over RPC ({} tasks, {} connections), run {} of {}", o.tasks, o.connections, run + 1, o.runs);
            let dir = base.join("rpc");
            fresh(&dir)?;
            let nn = crate::start_namenode(&dir)?;
            let addr = nn.addr.clone();
            let res = rt.block_on(async {
                let mut clients = Vec::new();
                for _ in 0..o.connections.max(1) {
                    clients.push(tusk_client::Client::connect(&addr, "root", &Default::default()).await?);
                }
                one_run(Arc::new(Target::Rpc { clients }), &o, o.rpc_reads).await
            });
            crate::stop(nn)?;
            for (k, r) in res?.into_iter().enumerate() {
                rpc[k].push(r.rate);
            }
        }
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    std::fs::remove_dir_all(&base).ok();

    let med = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied()
    };
    let fmt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "not measured".into());
    let mut table = format!(
        "{} files per run, 100 per directory; {} tasks; in-process reads {} (listings a tenth), over RPC {} \
         (from this process to a `tusk namenode` process, {} connections). Median of {} runs, ops/s.\n\n\
         | operation | in-process | target | met | over RPC | target | met |\n|---|---|---|---|---|---|---|\n",
        o.files, o.tasks, o.reads, o.rpc_reads, o.connections, o.runs
    );
    for (k, op) in OPS.iter().enumerate() {
        let (i, r) = (med(&inproc[k]), med(&rpc[k]));
        let (ti, tr) = match op {
            Op::Create => (Some(200_000.0), Some(30_000.0)),
            Op::FileInfo => (Some(2_000_000.0), Some(80_000.0)),
            _ => (None, None),
        };
        let met = |v: Option<f64>, t: Option<f64>| match (v, t) {
            (Some(v), Some(t)) if v >= t => "yes",
            (Some(_), Some(_)) => "**no**",
            _ => "-",
        };
        let tgt = |t: Option<f64>| t.map(|t| format!(">= {t:.0}")).unwrap_or_else(|| "-".into());
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            op.name(),
            fmt(i),
            tgt(ti),
            met(i, ti),
            fmt(r),
            tgt(tr),
            met(r, tr)
        ));
    }
    // Each task waits for its edit to be durable before the next, so an edit's wait is
    // tasks / (edits/s); set beside the sync time, it says how many syncs an edit waits.
    let grouped: Vec<String> = OPS
        .iter()
        .enumerate()
        .filter_map(|(k, op)| {
            let per = med(&groups[k].iter().map(|g| g.edits_per_sync).collect())?;
            let sync_us = med(&groups[k].iter().map(|g| g.mean_sync.as_secs_f64() * 1e6).collect())?;
            let edits = if *op == Op::Create { 2.0 } else { 1.0 };
            let wait_us = 1e6 * o.tasks as f64 / (edits * med(&inproc[k])?);
            Some(format!(
                "{}: {per:.1} edits per fdatasync of {sync_us:.0} us, an edit waits {wait_us:.0} us ({:.1} syncs)",
                op.name(),
                wait_us / sync_us
            ))
        })
        .collect();
    if !grouped.is_empty() {
        table.push_str(&format!(
            "\nIn-process group commit (medians; a create is two edits, create and complete): {}.\n",
            grouped.join("; ")
        ));
    }
    println!("\n{table}");
    crate::append_report(&o.report, "nn-throughput", &table)?;
    Ok(())
}

/// One over-RPC run of every operation against the namenode at `addr` (for benchmarks
/// that share a namenode, e.g. nn-cluster): the rates in the order of [`op_names`]. Removes
/// what the run made afterwards, so the next run starts from the same namespace.
pub(crate) async fn rpc_run(addr: &str, o: &NnOpts) -> Result<Vec<f64>> {
    let mut clients = Vec::new();
    for _ in 0..o.connections.max(1) {
        clients.push(tusk_client::Client::connect(addr, "root", &Default::default()).await?);
    }
    let cleanup = clients[0].clone();
    let rates = one_run(Arc::new(Target::Rpc { clients }), o, o.rpc_reads).await?.into_iter().map(|s| s.rate).collect();
    for d in ["/cr", "/mk"] {
        cleanup.delete(d, true).await.with_context(|| format!("removing {d}"))?;
    }
    Ok(rates)
}

/// The operations' names, in the order runs report them.
pub(crate) fn op_names() -> Vec<&'static str> {
    OPS.iter().map(|o| o.name()).collect()
}

fn fresh(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(())
}
