//! Helpers for end-to-end tests: run the real `tusk` binary the way a user does.
#![allow(dead_code)]

pub mod minicluster;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn tusk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tusk"))
}

/// A `tusk namenode` process on a free port.
pub struct Namenode {
    pub child: Child,
    pub addr: String,
    pub dirs: Vec<PathBuf>,
    stderr_log: PathBuf,
}

impl Namenode {
    /// Starts a namenode on `dirs` and waits until it serves.
    pub fn start(dirs: &[PathBuf]) -> Namenode {
        match Self::try_start(dirs) {
            Ok(nn) => nn,
            Err(e) => panic!("namenode did not start: {e}"),
        }
    }

    /// Starts a namenode; `Err` carries its stderr when it exits instead of serving.
    pub fn try_start(dirs: &[PathBuf]) -> Result<Namenode, String> {
        let log = dirs[0].with_extension("stderr.log");
        let mut cmd = Command::new(tusk_bin());
        cmd.arg("namenode").arg("--rpc-address").arg("127.0.0.1:0");
        for d in dirs {
            cmd.arg("--name-dir").arg(d);
        }
        let err_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = cmd
            .env("TUSK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("namenode: RPC listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addr) => Ok(Namenode { child, addr, dirs: dirs.to_vec(), stderr_log: log }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map_err(|e| e.to_string())?;
                let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                Err(format!("exited with {status}; stderr:\n{stderr}"))
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn sigkill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Namenode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Result of one shell command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `tusk <args>` against `addr` as `user`.
pub fn tusk(addr: &str, user: &str, args: &[&str]) -> Run {
    let out: Output = Command::new(tusk_bin())
        .args(args)
        .env("TUSK_NAMENODE", addr)
        .env("TUSK_USER", user)
        .env("TZ", "UTC")
        .output()
        .expect("run tusk");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn name_dir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

/// `tusk cluster up --port 0 --datanodes 3 --dir DIR` with the extra environment `env` and
/// stderr to `stderr`. Its stdout lines arrive on the receiver; a thread keeps draining them.
pub fn spawn_cluster_up(dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(tusk_bin());
    cmd.args(["cluster", "up", "--port", "0", "--datanodes", "3", "--dir"]).arg(dir).env("TUSK_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn tusk cluster up");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}
