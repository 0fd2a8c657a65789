//! `tusk mount MOUNTPOINT [--namenode ADDR] [--daemon] [-o OPT,...]`: checks the namenode
//! answers (within 10 s), mounts, and serves until Ctrl-C, SIGTERM or an unmount
//! (`fusermount3 -u`, `umount`); on a signal it unmounts before it exits, so no stale mount
//! is left behind. `--daemon` starts the same command in the background, logging to a file,
//! and returns once the mount is there.

use crate::fs::TuskFs;
use fuser::MountOption;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tusk_common::config::ClientConfig;

/// How long mounting waits for the namenode.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MountArgs {
    pub mountpoint: PathBuf,
    pub namenode: String,
    /// `-o` options, comma-separated lists flattened.
    pub options: Vec<String>,
    pub daemon: bool,
    /// Where a daemon logs (default `/tmp/tusk-mount-<pid>.log`).
    pub log: Option<PathBuf>,
}

/// The mount options of `-o` (unknown ones go to the kernel as they are).
pub fn mount_options(opts: &[String]) -> (Vec<MountOption>, bool) {
    let mut out = vec![MountOption::FSName("tusk".into()), MountOption::Subtype("tusk".into())];
    let mut read_only = false;
    for o in opts.iter().flat_map(|o| o.split(',')).filter(|o| !o.is_empty()) {
        out.push(match o {
            "ro" => {
                read_only = true;
                MountOption::RO
            }
            "rw" => MountOption::RW,
            "allow_other" => MountOption::AllowOther,
            "allow_root" => MountOption::AllowRoot,
            "auto_unmount" => MountOption::AutoUnmount,
            "default_permissions" => MountOption::DefaultPermissions,
            "noatime" => MountOption::NoAtime,
            "nosuid" => MountOption::NoSuid,
            "nodev" => MountOption::NoDev,
            "noexec" => MountOption::NoExec,
            "sync" => MountOption::Sync,
            other => MountOption::CUSTOM(other.to_owned()),
        });
    }
    (out, read_only)
}

/// Whether `path` is a mount point now (in /proc/mounts).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else { return false };
    let target = canon.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(target.as_str())))
        .unwrap_or(false)
}

/// Runs the mount; the exit code.
pub fn run(args: MountArgs, conf: ClientConfig) -> i32 {
    match run_inner(args, conf) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mount: {e}");
            1
        }
    }
}

fn run_inner(args: MountArgs, conf: ClientConfig) -> Result<(), String> {
    let mp = &args.mountpoint;
    if !mp.is_dir() {
        return Err(format!("{}: not a directory", mp.display()));
    }
    if is_mounted(mp) {
        return Err(format!("{}: something is already mounted there", mp.display()));
    }
    if args.daemon {
        return daemonize(&args);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tusk-fuse")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The namenode must answer before anything is mounted.
    let nn = args.namenode.clone();
    let user = tusk_common::user::current_user();
    rt.block_on(async {
        let check = async {
            let c = tusk_client::Client::connect(&nn, &user, &conf).await?;
            c.server_info().await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, check).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the namenode at {nn} is unreachable: {e}")),
            Err(_) => Err(format!("the namenode at {nn} did not answer within {}s", CONNECT_TIMEOUT.as_secs())),
        }
    })?;
    let (options, read_only) = mount_options(&args.options);
    let fs = TuskFs::new(rt.handle().clone(), args.namenode.clone(), conf, read_only);
    let session = fuser::spawn_mount2(fs, mp, &options).map_err(|e| format!("cannot mount {}: {e}", mp.display()))?;
    tracing::info!(mountpoint = %mp.display(), namenode = %args.namenode, "mounted");
    eprintln!("tusk mounted at {} (namenode {})", mp.display(), args.namenode);
    // Serve until a signal or an unmount from outside.
    let reason = rt.block_on(async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => return format!("cannot watch SIGTERM: {e}"),
        };
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "interrupted".to_owned(),
                _ = term.recv() => return "SIGTERM".to_owned(),
                _ = tick.tick() => {
                    if session.guard.is_finished() {
                        return "unmounted".to_owned();
                    }
                }
            }
        }
    });
    tracing::info!(mountpoint = %mp.display(), "{reason}: unmounting");
    // Dropping the session unmounts (when it is still mounted) and waits for its thread.
    drop(session);
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_mounted(mp) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_mounted(mp) {
        // Busy (a program still has a file open there): detach it now, as `umount -l` does;
        // its open files fail from here on, the directory is free.
        tracing::warn!(mountpoint = %mp.display(), "the mount is busy: detaching it (lazy unmount)");
        let _ = std::process::Command::new("fusermount3").arg("-u").arg("-z").arg(mp).status();
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    if is_mounted(mp) {
        return Err(format!("{} is still mounted: fusermount3 -u {}", mp.display(), mp.display()));
    }
    eprintln!("tusk unmounted {} ({reason})", mp.display());
    Ok(())
}

/// Starts this command again without `--daemon`, detached and logging to a file, and waits
/// until the mount is there (or the child gave up).
fn daemonize(args: &MountArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let log = args.log.clone().unwrap_or_else(|| PathBuf::from(format!("/tmp/tusk-mount-{}.log", std::process::id())));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("mount").arg(&args.mountpoint).arg("--namenode").arg(&args.namenode);
    for o in &args.options {
        cmd.arg("-o").arg(o);
    }
    use std::os::unix::process::CommandExt;
    cmd.stdin(std::process::Stdio::null()).stdout(file).stderr(err).process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the mount: {e}"))?;
    let deadline = Instant::now() + CONNECT_TIMEOUT + Duration::from_secs(5);
    loop {
        if is_mounted(&args.mountpoint) {
            println!("tusk mounted at {} (pid {}, log {})", args.mountpoint.display(), child.id(), log.display());
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let last = tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(format!("the mount exited ({status}): {last}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "no mount at {} after {}s (log {})",
                args.mountpoint.display(),
                deadline.elapsed().as_secs(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let (o, ro) = mount_options(&["allow_other,ro".into(), "max_read=131072".into()]);
        assert!(ro);
        assert!(o.contains(&MountOption::AllowOther) && o.contains(&MountOption::RO));
        assert!(o.contains(&MountOption::CUSTOM("max_read=131072".into())));
        assert!(!is_mounted(Path::new("/no/such/dir")));
        assert!(is_mounted(Path::new("/")));
    }
}
