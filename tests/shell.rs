//! `tusk fs` / `tusk dfsadmin` against a real `tusk namenode` process, checking output and
//! exit codes the way `hdfs dfs` prints them, permissions, and bad input.

mod support;

use std::time::{Duration, Instant};
use support::{tusk, Namenode};

const SU: &str = "root";

fn ok(r: &support::Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

/// Checks an `-ls` line: permissions, replication, owner, group, size, date and path.
fn assert_ls_line(line: &str, perm: &str, repl: &str, owner: &str, group: &str, size: &str, path: &str) {
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols.len(), 8, "{line:?}");
    assert_eq!(
        (cols[0], cols[1], cols[2], cols[3], cols[4], cols[7]),
        (perm, repl, owner, group, size, path),
        "{line:?}"
    );
    assert_eq!(cols[5].len(), 10, "date yyyy-MM-dd in {line:?}");
    assert_eq!(cols[6].len(), 5, "time HH:mm in {line:?}");
}

#[test]
fn metadata_commands_print_like_hdfs_dfs() {
    let tmp = tempfile::tempdir().unwrap();
    let nn = Namenode::start(&[tmp.path().join("name")]);
    let a = nn.addr.as_str();
    ok(&tusk(a, SU, &["fs", "-mkdir", "-p", "/a/b/c"]));
    ok(&tusk(a, SU, &["fs", "-touchz", "/a/b/f"]));
    let r = tusk(a, SU, &["fs", "-ls", "-R", "/"]);
    ok(&r);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r:?}");
    assert_ls_line(lines[0], "drwxr-xr-x", "-", SU, "supergroup", "0", "/a");
    assert_ls_line(lines[1], "drwxr-xr-x", "-", SU, "supergroup", "0", "/a/b");
    assert_ls_line(lines[2], "drwxr-xr-x", "-", SU, "supergroup", "0", "/a/b/c");
    assert_ls_line(lines[3], "-rw-r--r--", "3", SU, "supergroup", "0", "/a/b/f");
    // Hadoop's exact column layout: replication right-aligned in 3, size in 10.
    assert!(lines[0].starts_with("drwxr-xr-x   - root supergroup          0 "), "{:?}", lines[0]);

    let r = tusk(a, SU, &["fs", "-ls", "/a/b"]);
    ok(&r);
    assert!(r.stdout.starts_with("Found 2 items\n"), "{r:?}");

    ok(&tusk(a, SU, &["fs", "-mv", "/a/b/f", "/a/g"]));
    ok(&tusk(a, SU, &["fs", "-mv", "/a/g", "/a/b/c"])); // into a directory
    ok(&tusk(a, SU, &["fs", "-chmod", "750", "/a/b"]));
    let r = tusk(a, SU, &["fs", "-stat", "%n %b %r %u %g", "/a/b/c/g", "/a/b"]);
    ok(&r);
    assert_eq!(r.stdout, "g 0 3 root supergroup\nb 0 0 root supergroup\n");
    let r = tusk(a, SU, &["fs", "-stat", "%a %A %F", "/a/b"]);
    assert_eq!(r.stdout, "750 rwxr-x--- directory\n");
    let r = tusk(a, SU, &["fs", "-ls", "-d", "/a/b"]);
    assert_ls_line(r.stdout.trim_end(), "drwxr-x---", "-", SU, "supergroup", "0", "/a/b");
    ok(&tusk(a, SU, &["fs", "-chmod", "-R", "go-rwx,u+x", "/a"]));
    let r = tusk(a, SU, &["fs", "-stat", "%a", "/a", "/a/b/c/g"]);
    assert_eq!(r.stdout, "700\n700\n", "{r:?}");

    let r = tusk(a, SU, &["fs", "-count", "/a"]);
    assert_eq!(r.stdout, format!("{:>12} {:>12} {:>18} /a\n", 3, 1, 0));
    let r = tusk(a, SU, &["fs", "-count", "-q", "/a"]);
    assert_eq!(
        r.stdout,
        format!("{:>12} {:>15} {:>15} {:>15} {:>12} {:>12} {:>18} /a\n", "none", "inf", "none", "inf", 3, 1, 0)
    );

    assert_eq!(tusk(a, SU, &["fs", "-test", "-d", "/a"]).code, 0);
    assert_eq!(tusk(a, SU, &["fs", "-test", "-f", "/a"]).code, 1);
    assert_eq!(tusk(a, SU, &["fs", "-test", "-e", "/nope"]).code, 1);
    assert_eq!(tusk(a, SU, &["fs", "-test", "-z", "/a/b/c/g"]).code, 0);

    // Globs.
    ok(&tusk(a, SU, &["fs", "-mkdir", "/g1", "/g2", "/h1"]));
    let r = tusk(a, SU, &["fs", "-ls", "-d", "/g*"]);
    assert_eq!(r.stdout.lines().count(), 2, "{r:?}");
    let r = tusk(a, SU, &["fs", "-rm", "-r", "/g{1,2}"]);
    assert_eq!(r.stdout, "Deleted /g1\nDeleted /g2\n", "{r:?}");

    let r = tusk(a, SU, &["fs", "-rm", "-r", "/a/b"]);
    ok(&r);
    assert_eq!(r.stdout, "Deleted /a/b\n");
    let r = tusk(a, SU, &["dfs", "-ls", "/a"]); // the alias
    ok(&r);
    assert_eq!(r.stdout, "");

    // Relative paths resolve against /user/<name>.
    ok(&tusk(a, SU, &["fs", "-mkdir", "-p", "/user/root"]));
    ok(&tusk(a, SU, &["fs", "-mkdir", "rel"]));
    let r = tusk(a, SU, &["fs", "-ls"]);
    assert!(r.stdout.trim_end().ends_with(" rel"), "{r:?}");
    assert_eq!(tusk(a, SU, &["fs", "-test", "-d", "/user/root/rel"]).code, 0);

    // Safe mode and saveNamespace.
    let r = tusk(a, SU, &["dfsadmin", "-safemode", "get"]);
    assert_eq!(r.stdout, "Safe mode is OFF\n");
    let r = tusk(a, SU, &["dfsadmin", "-saveNamespace"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Safe mode should be turned ON"), "{r:?}");
    assert_eq!(tusk(a, SU, &["dfsadmin", "-safemode", "enter"]).stdout, "Safe mode is ON\n");
    let r = tusk(a, SU, &["fs", "-mkdir", "/in-safe-mode"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("mkdir: Cannot create directory /in-safe-mode. Name node is in safe mode."), "{r:?}");
    let r = tusk(a, SU, &["dfsadmin", "-saveNamespace"]);
    assert_eq!(r.stdout, "Save namespace successful\n", "{r:?}");
    assert_eq!(tusk(a, SU, &["dfsadmin", "-safemode", "leave"]).stdout, "Safe mode is OFF\n");
    assert_eq!(tusk(a, SU, &["dfsadmin", "-safemode", "wait"]).stdout, "Safe mode is OFF\n");

    // A restart finds the same namespace.
    let before = tusk(a, SU, &["fs", "-ls", "-R", "/"]).stdout;
    nn.stop();
    let nn = Namenode::start(&[tmp.path().join("name")]);
    assert_eq!(tusk(&nn.addr, SU, &["fs", "-ls", "-R", "/"]).stdout, before);
}

#[test]
fn permissions_in_simple_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let nn = Namenode::start(&[tmp.path().join("name")]);
    let a = nn.addr.as_str();
    ok(&tusk(a, SU, &["fs", "-mkdir", "-p", "/user/bob", "/user/alice"]));
    ok(&tusk(a, SU, &["fs", "-chown", "bob", "/user/bob"]));
    ok(&tusk(a, SU, &["fs", "-chown", "alice:staff", "/user/alice"]));
    ok(&tusk(a, "bob", &["fs", "-mkdir", "/user/bob/private"]));
    ok(&tusk(a, "bob", &["fs", "-touchz", "/user/bob/private/secret"]));
    ok(&tusk(a, "bob", &["fs", "-chmod", "700", "/user/bob/private"]));

    let r = tusk(a, "alice", &["fs", "-ls", "/user/bob/private"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "ls: Permission denied: user=alice, access=READ_EXECUTE, inode=\"/user/bob/private\":bob:supergroup:drwx------\n"
    );
    let r = tusk(a, "alice", &["fs", "-rm", "-r", "/user/bob/private"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("rm: Permission denied: user=alice"), "{r:?}");
    let r = tusk(a, "alice", &["fs", "-chmod", "777", "/user/bob/private"]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = tusk(a, "alice", &["fs", "-chown", "bob", "/user/alice"]);
    assert_eq!(r.code, 1, "a non-superuser cannot chown: {r:?}");
    assert!(r.stderr.contains("changing ownership of '/user/alice'"), "{r:?}");
    // Nothing changed.
    let r = tusk(a, "bob", &["fs", "-ls", "/user/bob/private"]);
    assert!(r.stdout.contains("/user/bob/private/secret"), "{r:?}");
    // The superuser can.
    ok(&tusk(a, SU, &["fs", "-ls", "/user/bob/private"]));
    let r = tusk(a, SU, &["fs", "-rm", "-r", "/user/bob/private"]);
    assert_eq!(r.stdout, "Deleted /user/bob/private\n", "{r:?}");
    // alice owns her home and may create there; not in bob's.
    ok(&tusk(a, "alice", &["fs", "-touchz", "/user/alice/x"]));
    let r = tusk(a, "alice", &["fs", "-touchz", "/user/bob/x"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("access=WRITE"), "{r:?}");
}

#[test]
fn bad_input_gets_one_line_and_nonzero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nn = Namenode::start(&[tmp.path().join("name")]);
    let a = nn.addr.clone();
    ok(&tusk(&a, SU, &["fs", "-mkdir", "-p", "/d/sub", "/e"]));
    ok(&tusk(&a, SU, &["fs", "-touchz", "/d/sub/f"]));
    let long = format!("/{}", "x".repeat(256));
    let nul = "/a\u{1}b".replace('\u{1}', "\0");
    let _ = nul; // a NUL cannot travel in argv; the in-process tests cover it.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["fs", "-mkdir", "/a/../b"], "mkdir: Invalid path name Invalid file name: /a/../b"),
        (vec!["fs", "-mkdir", long.as_str()], "mkdir: Invalid path name"),
        (vec!["fs", "-mkdir", "/x/y/z"], "mkdir: `/x/y/z': No such file or directory"),
        (vec!["fs", "-mkdir", "/d"], "mkdir: `/d': File exists"),
        (vec!["fs", "-mv", "/d", "/d/sub/inner"], "mv: `/d' to `/d/sub/inner': is a subdirectory of itself"),
        (vec!["fs", "-rm", "/d"], "rm: `/d': Is a directory"),
        (vec!["fs", "-rmdir", "/d"], "rmdir: `/d': Directory is not empty"),
        (vec!["fs", "-rm", "/nope"], "rm: `/nope': No such file or directory"),
        (vec!["fs", "-ls", "/nope"], "ls: `/nope': No such file or directory"),
        (vec!["fs", "-touchz", "/d"], "touchz: `/d': Is a directory"),
        (vec!["fs", "-mv", "/nope", "/e"], "mv: `/nope': No such file or directory"),
        (vec!["fs", "-chmod", "999", "/d"], "-chmod: chmod : mode '999' does not match the expected pattern."),
    ];
    for (args, want) in &cases {
        let r = tusk(&a, SU, args);
        assert_ne!(r.code, 0, "{args:?} succeeded: {r:?}");
        assert!(r.stderr.starts_with(want), "{args:?}: want {want:?}\n{r:?}");
        if !want.starts_with('-') {
            assert_eq!(r.stderr.lines().count(), 1, "{args:?}: one line\n{r:?}");
        }
    }
    // A usage error exits 255 like Hadoop's FsShell.
    let r = tusk(&a, SU, &["fs", "-ls", "-Z", "/"]);
    assert_eq!(r.code, 255, "{r:?}");
    assert!(r.stderr.starts_with("-ls: Illegal option -Z"), "{r:?}");
    // Nothing changed and the daemon still serves.
    assert!(nn.alive());
    let r = tusk(&a, SU, &["fs", "-ls", "-R", "/d"]);
    assert_eq!(r.stdout.lines().count(), 2, "{r:?}");
    ok(&tusk(&a, SU, &["fs", "-mkdir", "/still-serving"]));
    assert!(!nn.stderr().contains("panicked"), "{}", nn.stderr());
    nn.stop();

    // A namenode that is not running: an error within 5 s, no hang.
    let t0 = Instant::now();
    let r = tusk(&a, SU, &["fs", "-ls", "/"]);
    let took = t0.elapsed();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("ls: Call to "), "{r:?}");
    assert!(r.stderr.contains("Connection refused"), "{r:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// `tusk namenode | head -1`: the reader may be gone before the daemon prints; the namenode
/// must go on serving (a status line written to a closed pipe used to panic it).
#[test]
fn a_daemon_outlives_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(support::tusk_bin())
        .args(["namenode", "--rpc-address", &addr, "--name-dir"])
        .arg(dir.path().join("name"))
        .env("TUSK_LOG", "warn")
        .env("TUSK_NAMENODE__HTTP_ADDRESS", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the namenode died when its stdout closed");
        if tusk(&addr, "root", &["dfsadmin", "-safemode", "get"]).code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the namenode never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the namenode died when its stdout closed");
    let _ = child.kill();
    let _ = child.wait();
}
