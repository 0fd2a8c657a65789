//! `tusk-bench rpc-channel`: unary gRPC calls through tonic's `Channel` and through our
//! `RpcChannel`, side by side, against one tonic server in a separate process (this binary,
//! re-run as `tusk-bench rpc-channel --serve`). The server answers `Heartbeat` at once, so the
//! figures are the RPC stack's and the kernel's, not a namenode's. Each caller makes one call
//! at a time on its own connection, the way `tusk fs`, FUSE and a datanode's heartbeats do.
//! Reported per channel: calls/s (median of `--runs`, the two channels alternated), and the
//! write system calls per call of the calling process and of the server (`syscw` in
//! `/proc/PID/io`).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};
use tusk_proto::channel::RpcChannel;
use tusk_proto::client::{ReportBadBlocksRequest, ReportBadBlocksResponse};
use tusk_proto::datanode::datanode_namenode_client::DatanodeNamenodeClient;
use tusk_proto::datanode::datanode_namenode_server::{DatanodeNamenode, DatanodeNamenodeServer};
use tusk_proto::datanode::*;

#[derive(clap::Args)]
pub struct RpcOpts {
    /// Runs per channel and caller count (the channels alternate; medians are reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 3)]
    pub secs: u64,
    /// Concurrent callers, comma-separated; each has its own connection.
    #[arg(long, default_value = "1,16")]
    pub callers: String,
    /// Serve instead of measuring (what the benchmark starts in a child process).
    #[arg(long, hide = true)]
    pub serve: bool,
    /// Append the table to this markdown file.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
}

/// Answers every heartbeat at once; nothing else is called.
struct Answer;

#[tonic::async_trait]
impl DatanodeNamenode for Answer {
    async fn version(&self, _: Request<VersionRequest>) -> Result<Response<VersionResponse>, Status> {
        Err(Status::unimplemented("rpc-channel bench"))
    }
    async fn register(&self, _: Request<DatanodeRegistration>) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("rpc-channel bench"))
    }
    async fn heartbeat(&self, _: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(HeartbeatResponse::default()))
    }
    type HeartbeatStreamStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<HeartbeatResponse, Status>> + Send>>;
    async fn heartbeat_stream(
        &self,
        _: Request<tonic::Streaming<HeartbeatRequest>>,
    ) -> Result<Response<Self::HeartbeatStreamStream>, Status> {
        Err(Status::unimplemented("rpc-channel bench"))
    }
    async fn block_report(&self, _: Request<BlockReportRequest>) -> Result<Response<BlockReportResponse>, Status> {
        Err(Status::unimplemented("rpc-channel bench"))
    }
    async fn block_received_and_deleted(
        &self,
        _: Request<BlockReceivedAndDeletedRequest>,
    ) -> Result<Response<BlockReceivedAndDeletedResponse>, Status> {
        Err(Status::unimplemented("rpc-channel bench"))
    }
    async fn commit_block_synchronization(
        &self,
        _: Request<CommitBlockSynchronizationRequest>,
    ) -> Result<Response<CommitBlockSynchronizationResponse>, Status> {
        Err(Status::unimplemented("rpc-channel bench"))
    }
    async fn report_bad_blocks(
        &self,
        _: Request<ReportBadBlocksRequest>,
    ) -> Result<Response<ReportBadBlocksResponse>, Status> {
        Err(Status::unimplemented("rpc-channel bench"))
    }
}

async fn serve() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("rpc-channel: listening on {}", listener.local_addr()?);
    let incoming = tusk_proto::serve::nodelay(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tonic::transport::Server::builder()
        .add_service(DatanodeNamenodeServer::new(Answer))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// Write system calls made so far by process `pid`.
fn syscw(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("syscw:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Tonic,
    Ours,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tonic => "tonic `Channel`",
            Kind::Ours => "`RpcChannel`",
        }
    }
}

struct Run {
    calls_per_sec: f64,
    client_writes: f64,
    server_writes: f64,
}

/// `callers` tasks, one connection each, calling one at a time for `secs`.
async fn run(kind: Kind, addr: &str, callers: usize, secs: u64, server: u32) -> Result<Run> {
    let mut clients = Vec::new();
    for _ in 0..callers {
        let c = match kind {
            Kind::Tonic => {
                let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(30))
                    .connect()
                    .await?;
                Either::Tonic(DatanodeNamenodeClient::new(ch))
            }
            Kind::Ours => {
                let ch = RpcChannel::connect(addr, Duration::from_secs(5), Duration::from_secs(30)).await?;
                Either::Ours(DatanodeNamenodeClient::with_origin(ch.clone(), ch.origin()))
            }
        };
        clients.push(c);
    }
    let calls = Arc::new(AtomicU64::new(0));
    let (w0, s0) = (syscw(std::process::id()), syscw(server));
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(secs);
    let mut set = tokio::task::JoinSet::new();
    for c in clients {
        let calls = calls.clone();
        set.spawn(async move {
            let req = || HeartbeatRequest { datanode_uuid: "bench-dn-0001".into(), ..Default::default() };
            while Instant::now() < deadline {
                match &c {
                    Either::Tonic(c) => c.clone().heartbeat(req()).await?,
                    Either::Ours(c) => c.clone().heartbeat(req()).await?,
                };
                calls.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Status>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let n = calls.load(Ordering::Relaxed).max(1) as f64;
    Ok(Run {
        calls_per_sec: n / elapsed,
        client_writes: (syscw(std::process::id()) - w0) as f64 / n,
        server_writes: (syscw(server) - s0) as f64 / n,
    })
}

enum Either {
    Tonic(DatanodeNamenodeClient<tonic::transport::Channel>),
    Ours(DatanodeNamenodeClient<RpcChannel>),
}

pub fn main(opts: RpcOpts) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if opts.serve {
        return rt.block_on(serve());
    }
    let callers: Vec<usize> = opts
        .callers
        .split(',')
        .map(|c| c.trim().parse().context("--callers: a comma-separated list of numbers"))
        .collect::<Result<_>>()?;
    if opts.runs == 0 || callers.contains(&0) {
        bail!("--runs and every --callers entry must be at least 1");
    }
    let mut child = Command::new(std::env::current_exe()?)
        .args(["rpc-channel", "--serve"])
        .stdout(Stdio::piped())
        .spawn()
        .context("start the server process")?;
    let result = (|| {
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let addr = loop {
            let Some(line) = lines.next() else { bail!("the server process exited before listening") };
            if let Some(a) = line?.strip_prefix("rpc-channel: listening on ") {
                break a.trim().to_owned();
            }
        };
        let mut rows = String::new();
        for &n in &callers {
            let mut by_kind: Vec<(Kind, Vec<Run>)> = vec![(Kind::Tonic, vec![]), (Kind::Ours, vec![])];
            for r in 0..opts.runs {
                // Alternate which channel goes first, so a drift in the machine favours neither.
                let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let kind = by_kind[i].0;
                    let run = rt.block_on(run(kind, &addr, n, opts.secs, child.id()))?;
                    println!(
                        "{} callers, {}, run {}: {:.0} calls/s, {:.2} writes per call (client), {:.2} (server)",
                        n,
                        kind.name(),
                        r + 1,
                        run.calls_per_sec,
                        run.client_writes,
                        run.server_writes
                    );
                    by_kind[i].1.push(run);
                }
            }
            let tonic = crate::median_f(by_kind[0].1.iter().map(|r| r.calls_per_sec).collect());
            let ratios: Vec<f64> =
                by_kind[0].1.iter().zip(&by_kind[1].1).map(|(t, o)| o.calls_per_sec / t.calls_per_sec).collect();
            for (kind, runs) in &by_kind {
                let rate = crate::median_f(runs.iter().map(|r| r.calls_per_sec).collect());
                rows.push_str(&format!(
                    "| {n} | {} | {rate:.0} | {:.1} | {:.2} | {:.2} | {} |\n",
                    kind.name(),
                    1e6 * n as f64 / rate,
                    crate::median_f(runs.iter().map(|r| r.client_writes).collect()),
                    crate::median_f(runs.iter().map(|r| r.server_writes).collect()),
                    if *kind == Kind::Ours {
                        format!("{:.2}", crate::median_f(ratios.clone()))
                    } else {
                        format!("1 ({tonic:.0}/s)")
                    }
                ));
            }
        }
        Ok(rows)
    })();
    let _ = child.kill();
    let _ = child.wait();
    let rows = result?;
    let table = format!(
        "Unary calls (`Heartbeat`, answered at once) from this process to a tonic server in another process on 127.0.0.1; each caller one call at a time on its own connection; {} runs of {} s per channel, alternated; medians, ratio = median of per-run ratios.\n\n| callers | channel | calls/s | µs per call (per caller) | writes per call, caller | writes per call, server | vs tonic |\n|---|---|---|---|---|---|---|\n{rows}",
        opts.runs, opts.secs
    );
    println!("\n{table}");
    crate::append_report(&opts.report, "rpc-channel", &table)?;
    Ok(())
}
