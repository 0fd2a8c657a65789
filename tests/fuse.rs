//! `tusk mount` for real: the in-process cluster, the `tusk` binary mounting it with FUSE
//! (/dev/fuse, fusermount3 from fuse3; the tests run as root), and ordinary programs
//! (cp, tar, diff, dd, stat) working on the mount.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::minicluster::{read_all, MiniCluster};
use tusk_fuse::mount::is_mounted;

/// A `tusk mount` process; dropped: SIGTERM, and the mount must be gone.
struct Mount {
    child: Option<Child>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Mount {
    fn start(nn: &str) -> Mount {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tusk"))
            .arg("mount")
            .arg(&dir)
            .args(["--namenode", nn])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("mount.log")).unwrap())
            .spawn()
            .unwrap();
        let m = Mount { child: Some(child), dir, _tmp: tmp };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !is_mounted(&m.dir) {
            assert!(Instant::now() < deadline, "not mounted: {}", m.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._tmp.path().join("mount.log")).unwrap_or_default()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p.trim_start_matches('/'))
    }

    /// SIGTERM; returns the exit status, and checks nothing stays mounted.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(!is_mounted(&self.dir), "a stale mount is left behind");
                return status;
            }
            assert!(Instant::now() < deadline, "the mount did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
        if is_mounted(&self.dir) {
            let _ = Command::new("fusermount3").arg("-u").arg(&self.dir).status();
        }
    }
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("bash").args(["-o", "pipefail", "-c", cmd]).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A source tree: nested directories, empty files, small ones and some over a megabyte.
fn make_tree(root: &Path, files: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let dir = root.join(format!("d{}/e{}", i % 7, i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        let len = match i % 50 {
            0 => 0,
            1 => 1_500_000 + (x % 100_000) as usize,
            _ => (x % 9000) as usize,
        };
        let data: Vec<u8> = (0..len).map(|j| ((j as u64 * 31 + x) % 251) as u8).collect();
        std::fs::write(dir.join(format!("f{i}.dat")), data).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cp_tar_and_stat_through_the_mount() {
    let mc = MiniCluster::start(3).await;
    let mut m = Mount::start(&mc.nn_addr);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src, 600);
    // Old times, so that a time tar failed to restore shows.
    let (ok, out) = sh(&format!("find {} -type f -exec touch -d '2020-01-02 03:04:05' {{}} +", src.display()));
    assert!(ok, "{out}");
    // cp -r in and out again: identical.
    let (ok, out) = sh(&format!("cp -r {} {}", src.display(), m.path("tree").display()));
    assert!(ok, "cp in: {out}\n{}", m.log());
    let back = work.path().join("back");
    let (ok, out) = sh(&format!("cp -r {} {}", m.path("tree").display(), back.display()));
    assert!(ok, "cp out: {out}");
    let (ok, out) = sh(&format!("diff -r {} {}", src.display(), back.display()));
    assert!(ok, "diff: {out}");
    // tar -x into the mount, tar -c from it: the same files.
    std::fs::create_dir(m.path("untar")).unwrap();
    let (ok, out) = sh(&format!("tar -c -C {} . | tar -x -C {}", src.display(), m.path("untar").display()));
    assert!(ok, "tar -x: {out}");
    let retar = work.path().join("retar");
    std::fs::create_dir(&retar).unwrap();
    let (ok, out) = sh(&format!("tar -c -C {} . | tar -x -C {}", m.path("untar").display(), retar.display()));
    assert!(ok, "tar -c: {out}");
    let (ok, out) = sh(&format!("diff -r {} {}", src.display(), retar.display()));
    assert!(ok, "diff after tar: {out}");
    // tar restored the times (it sets them before it closes each file).
    let (ok, out) =
        sh(&format!("stat -c %Y {}/d3/e0/f3.dat {}/d3/e0/f3.dat", src.display(), m.path("untar").display()));
    let times: Vec<&str> = out.split_whitespace().collect();
    assert!(ok && times.len() == 2 && times[0] == times[1], "{out}");
    // Sizes, modes, owners and times as the namenode has them.
    let c = mc.client("root").await;
    let f = "/tree/d1/e1/f1.dat";
    let st = c.file_info(f).await.unwrap().unwrap();
    let md = std::fs::metadata(m.path(f)).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(md.len(), st.length);
    assert_eq!(md.len(), std::fs::metadata(src.join("d1/e1/f1.dat")).unwrap().len());
    assert_eq!(md.mode() & 0o7777, st.permission);
    assert_eq!(md.uid(), 0, "owned by root, who wrote it");
    assert_eq!(md.mtime() * 1000 + md.mtime_nsec() / 1_000_000, st.modification_time_ms);
    let (ok, find) = sh(&format!("find {} -type f | wc -l", m.path("tree").display()));
    assert!(ok && find.trim() == "600", "{find}");
    let (ok, ls) = sh(&format!("ls -l {}", m.path("tree/d0/e0").display()));
    assert!(ok && ls.lines().skip(1).all(|l| l.starts_with("-rw-r--r-- 1 root ")), "{ls}");
    // chmod, utimens, rename, unlink, rmdir.
    let (ok, out) = sh(&format!(
        "chmod 600 {f} && touch -d '2020-01-02 03:04:05 UTC' {f} && mv {f} {g} && rm {g} && rm -r {d}",
        f = m.path("tree/d0/e0/f0.dat").display(),
        g = m.path("tree/moved.dat").display(),
        d = m.path("tree/d2").display()
    ));
    assert!(ok, "{out}");
    assert!(c.file_info("/tree/moved.dat").await.unwrap().is_none());
    assert!(c.file_info("/tree/d2").await.unwrap().is_none());
    let (ok, out) = sh(&format!("chmod 640 {0} && stat -c '%a %Y' {0}", m.path("tree/d1/e1/f1.dat").display()));
    assert!(ok && out.starts_with("640 "), "{out}");
    // statfs: the cluster's capacity.
    let (ok, df) = sh(&format!("df -k {}", m.dir.display()));
    assert!(ok && df.contains("tusk"), "{df}");
    assert!(m.stop().success());
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_are_sequential_random_writes_fail_cleanly() {
    let mc = MiniCluster::start(3).await;
    let m = Mount::start(&mc.nn_addr);
    let c = mc.client("root").await;
    let f = m.path("f.txt");
    // A file written with dd through the mount reads back through the client, and back.
    let (ok, out) = sh(&format!("dd if=/dev/urandom of={} bs=1M count=24 status=none", m.path("big").display()));
    assert!(ok, "{out}");
    let through_client = read_all(&c, "/big").await;
    assert_eq!(through_client.len(), 24 << 20);
    assert_eq!(std::fs::read(m.path("big")).unwrap(), through_client);
    // Append, and O_TRUNC replaces.
    let (ok, out) = sh(&format!("echo one > {0} && echo two >> {0}", f.display()));
    assert!(ok, "{out}");
    assert_eq!(read_all(&c, "/f.txt").await, b"one\ntwo\n");
    let (ok, _) = sh(&format!("echo three > {}", f.display()));
    assert!(ok);
    assert_eq!(std::fs::read(&f).unwrap(), b"three\n");
    // A write in the middle: a clear error, and nothing changes.
    let (ok, out) = sh(&format!("printf X | dd of={} bs=1 seek=2 conv=notrunc status=none", f.display()));
    assert!(!ok, "a random write must fail");
    assert!(out.contains("Operation not supported"), "{out}");
    assert_eq!(read_all(&c, "/f.txt").await, b"three\n");
    assert!(m.log().contains("refused a write at offset 2"), "{}", m.log());
    // At the end it is an append.
    let (ok, out) = sh(&format!("printf X | dd of={} bs=1 seek=6 conv=notrunc status=none", f.display()));
    assert!(ok, "{out}");
    assert_eq!(read_all(&c, "/f.txt").await, b"three\nX");
    // Random reads.
    let mut file = std::fs::File::open(m.path("big")).unwrap();
    use std::io::{Read, Seek, SeekFrom};
    for at in [5_000_000u64, 17, 20_000_000, 1_048_575] {
        file.seek(SeekFrom::Start(at)).unwrap();
        let mut buf = [0u8; 1000];
        file.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &through_client[at as usize..at as usize + 1000], "at {at}");
    }
    // SIGTERM with a file still open: the mount goes all the same.
    let mut m = m;
    assert!(m.stop().success(), "{}", m.log());
    drop(file);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mounting_without_a_namenode_fails_fast_and_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tusk"))
        .arg("mount")
        .arg(tmp.path())
        .args(["--namenode", "127.0.0.1:1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    assert!(err.contains("namenode at 127.0.0.1:1"), "{err}");
    assert!(!is_mounted(tmp.path()));
    let out = Command::new(env!("CARGO_BIN_EXE_tusk")).args(["mount", "/no/such/dir"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mount_rides_out_dead_datanodes_and_a_namenode_restart() {
    let mut mc = MiniCluster::start(3).await;
    let c = mc.client("root").await;
    let data = support::minicluster::pattern(24 << 20, 7);
    support::minicluster::write_file(&c, "/data.bin", &data, 1 << 20).await;
    let mut m = Mount::start(&mc.nn_addr);
    // Read the first third, stop two of the three datanodes, read the rest: the client
    // fails over to the replica left.
    let path = m.path("data.bin");
    let (mut file, first) = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(path).unwrap();
        let mut buf = vec![0u8; 8 << 20];
        f.read_exact(&mut buf).unwrap();
        (f, buf)
    })
    .await
    .unwrap();
    mc.stop_datanode(0).await;
    mc.stop_datanode(1).await;
    let rest = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).unwrap();
        rest
    })
    .await
    .unwrap();
    assert_eq!([first, rest].concat(), data, "read whole through the failover");
    // The namenode goes away: EIO and a clear log line; back: the mount works again.
    mc.stop_namenode().await;
    let probe = m.path("not-cached-yet");
    let err = tokio::task::spawn_blocking(move || std::fs::metadata(probe).unwrap_err()).await.unwrap();
    assert_eq!(err.raw_os_error(), Some(5), "EIO: {err}");
    assert!(m.log().contains("the namenode is unreachable"), "{}", m.log());
    mc.start_namenode().await;
    let path = m.path("data.bin");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = path.clone();
        if let Ok(md) = tokio::task::spawn_blocking(move || std::fs::metadata(p)).await.unwrap() {
            assert_eq!(md.len(), data.len() as u64);
            break;
        }
        assert!(Instant::now() < deadline, "the mount did not recover: {}", m.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(m.stop().success());
    mc.shutdown().await;
}
