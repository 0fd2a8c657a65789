//! Block storage through the real binary, as a user drives it: `tusk cluster up`, then
//! `tusk fs -put/-get/-cat`, `tusk fsck`, `tusk dfsadmin`, corrupt replicas, SIGKILL and
//! restart, and bad input.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{tusk, tusk_bin};

const SU: &str = "root";

struct Cluster {
    child: Child,
    addr: String,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let stderr = Stdio::from(std::fs::File::create(dir.with_extension("log")).unwrap());
        let (child, lines) = support::spawn_cluster_up(dir, &[], stderr);
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("cluster up prints the namenode address");
            if let Some(addr) = line.trim_start().strip_prefix("namenode").and_then(|r| r.split_whitespace().next()) {
                break addr.to_string();
            }
        };
        let c = Cluster { child, addr };
        c.wait_for(
            || tusk(&c.addr, SU, &["dfsadmin", "-report"]).stdout.contains("Live datanodes (3):"),
            "3 live datanodes",
        );
        c
    }

    fn wait_for(&self, mut f: impl FnMut() -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn sigkill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn random_file(path: &Path, len: usize) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).unwrap();
}

fn block_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                block_files(&p, out);
            } else if p.file_name().unwrap().to_string_lossy().starts_with("blk_")
                && p.extension().is_none()
                && p.to_string_lossy().contains("finalized")
            {
                out.push(p);
            }
        }
    }
}

fn ok(r: &support::Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn put_get_fsck_corrupt_and_kill_the_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let cluster = Cluster::start(&dir);
    let a = cluster.addr.clone();
    let local = tmp.path().join("big");
    random_file(&local, 300 * 1000 * 1000);
    let lp = local.to_str().unwrap();
    ok(&tusk(&a, SU, &["fs", "-D", "dfs.blocksize=64m", "-put", lp, "/big"]));
    let back = tmp.path().join("back");
    ok(&tusk(&a, SU, &["fs", "-get", "/big", back.to_str().unwrap()]));
    assert!(std::fs::read(&local).unwrap() == std::fs::read(&back).unwrap(), "-get returned different bytes");

    let r = tusk(&a, SU, &["fsck", "/", "-files", "-blocks", "-locations"]);
    ok(&r);
    assert!(r.stdout.contains("is HEALTHY"), "{r:?}");
    let block_lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains(" len=") && l.contains("blk_")).collect();
    assert_eq!(block_lines.len(), 5, "{r:?}");
    for l in &block_lines {
        assert!(l.contains("Live_repl=3"), "{l}");
        let nodes = l.matches("DatanodeInfoWithStorage[").count();
        assert_eq!(nodes, 3, "{l}");
    }

    // One flipped byte in one replica: -cat still returns the right bytes, fsck shows it.
    let mut files = Vec::new();
    block_files(&dir.join("data1"), &mut files);
    files.sort();
    let victim = files.first().expect("datanode 1 holds replicas").clone();
    let good = std::fs::read(&victim).unwrap();
    let mut bytes = good.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let want = std::fs::read(&local).unwrap();
    let mut seen = false;
    for _ in 0..30 {
        let out = Command::new(tusk_bin())
            .args(["fs", "-cat", "/big"])
            .env("TUSK_NAMENODE", &a)
            .env("TUSK_USER", SU)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(out.stdout == want, "-cat returned wrong bytes");
        let r = tusk(&a, SU, &["fsck", "/", "-files", "-blocks", "-replicaDetails"]);
        if r.stdout.contains("(CORRUPT)") {
            // Two good replicas remain: the file is still whole.
            assert!(r.stdout.contains("is HEALTHY"), "{r:?}");
            seen = true;
            break;
        }
        // On three datanodes the corrupt copy is deleted at once to make room for a good one:
        // healing can beat fsck to it.
        if std::fs::read(&victim).is_ok_and(|b| b == good) && r.stdout.contains("is HEALTHY") {
            seen = true;
            break;
        }
    }
    assert!(seen, "fsck never showed the corrupt replica, and it was not replaced either");

    // SIGKILL the whole pseudo-cluster and start it again.
    cluster.sigkill();
    let cluster = Cluster::start(&dir);
    let a = cluster.addr.clone();
    cluster.wait_for(
        || tusk(&a, SU, &["dfsadmin", "-safemode", "get"]).stdout == "Safe mode is OFF\n",
        "safe mode to end by itself",
    );
    let back2 = tmp.path().join("back2");
    ok(&tusk(&a, SU, &["fs", "-get", "/big", back2.to_str().unwrap()]));
    assert!(std::fs::read(&local).unwrap() == std::fs::read(&back2).unwrap(), "bytes differ after the restart");
}

#[test]
fn bad_input_on_the_data_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let cluster = Cluster::start(&dir);
    let a = cluster.addr.clone();
    let f = tmp.path().join("small");
    random_file(&f, 10_000);
    let fp = f.to_str().unwrap();
    ok(&tusk(&a, SU, &["fs", "-put", fp, "/small"]));
    // -put onto an existing file without -f.
    let r = tusk(&a, SU, &["fs", "-put", fp, "/small"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("put: `/small': File exists"), "{r:?}");
    // -put of a missing local file.
    let r = tusk(&a, SU, &["fs", "-put", "/no/such/file", "/x"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(tusk(&a, SU, &["fs", "-test", "-e", "/x"]).code, 1);
    assert_eq!(tusk(&a, SU, &["fs", "-test", "-e", "/x._COPYING_"]).code, 1);
    // -get onto an existing local file without -f.
    let r = tusk(&a, SU, &["fs", "-get", "/small", fp]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("File exists"), "{r:?}");
    ok(&tusk(&a, SU, &["fs", "-get", "-f", "/small", fp]));
    // Replication above the number of datanodes: written, and fsck says under-replicated.
    ok(&tusk(&a, SU, &["fs", "-D", "dfs.replication=5", "-put", fp, "/r5"]));
    let r = tusk(&a, SU, &["fsck", "/r5"]);
    assert!(r.stdout.contains("Under-replicated blocks:\t1"), "{r:?}");
    // A datanode whose data directory cannot be created: a clear message, exit 1.
    let r = tusk(&a, SU, &["datanode", "--data-dir", &format!("{fp}/data"), "--xfer-address", "127.0.0.1:0"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("{fp}/data")), "{r:?}");
    // A datanode pointed at a wrong namenode: retries with a clear log line, no crash.
    let data = tmp.path().join("lonely");
    let mut dn = Command::new(tusk_bin())
        .args(["datanode", "--namenode", "127.0.0.1:1", "--xfer-address", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(dn.try_wait().unwrap().is_none(), "datanode exited");
    let _ = dn.kill();
    let out = dn.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("127.0.0.1:1"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    drop(cluster);
}
