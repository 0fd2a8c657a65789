//! The real `Namesystem` in-process over temporary name directories: durability across
//! restarts, torn and corrupt edit logs, redundant name directories, saveNamespace and
//! retention, permissions, bad input, group commit and paged listings.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tusk_namenode::namesystem::SafeModeAction;
use tusk_namenode::permission::Caller;
use tusk_namenode::{Namesystem, NamesystemConfig, NnError};
use tusk_proto::client::FileType;

fn conf(dirs: &[PathBuf]) -> NamesystemConfig {
    NamesystemConfig {
        name_dirs: dirs.to_vec(),
        superuser: "nn".into(),
        supergroup: "supergroup".into(),
        safemode_threshold: 0.999,
        safemode_extension: Duration::ZERO,
        default_replication: 3,
        default_block_size: 128 << 20,
        ls_limit: 1000,
        max_directory_items: 1 << 20,
        autoroll_txns: 1_000_000,
        retained_images: 2,
        checkpoint_period: Duration::from_secs(3600),
        heartbeat_expiry: Duration::from_secs(630),
        min_replication: 1,
        topology: Default::default(),
        hosts_exclude: None,
        lease_soft_limit: Duration::from_secs(60),
        lease_hard_limit: Duration::from_secs(3600),
    }
}

fn name_dirs(tmp: &TempDir, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| tmp.path().join(format!("name{i}"))).collect()
}

fn open(dirs: &[PathBuf]) -> Namesystem {
    Namesystem::open(conf(dirs)).unwrap_or_else(|e| panic!("open {dirs:?}: {e}"))
}

/// Closes and drops `fsn` (releasing the directory locks), then opens the same dirs.
fn reopen(fsn: Namesystem, dirs: &[PathBuf]) -> Namesystem {
    fsn.close();
    drop(fsn);
    open(dirs)
}

/// The error `Namesystem::open` gives (it must fail).
fn open_err(dirs: &[PathBuf]) -> String {
    match Namesystem::open(conf(dirs)) {
        Ok(_) => panic!("open of {dirs:?} succeeded but should have failed"),
        Err(e) => e.to_string(),
    }
}

/// Every inode, one line each, sorted by path: walks the tree through `listing` pages.
fn dump(fsn: &Namesystem) -> Vec<String> {
    let su = fsn.caller("nn");
    let line = |path: &str, e: &tusk_proto::client::FileStatus| {
        let kind = if e.file_type == FileType::Directory as i32 { 'd' } else { 'f' };
        format!(
            "{path} {kind} {:o} {}:{} mtime={} atime={} repl={} len={} uc={} id={}",
            e.permission,
            e.owner,
            e.group,
            e.modification_time_ms,
            e.access_time_ms,
            e.replication,
            e.length,
            e.under_construction,
            e.file_id
        )
    };
    let root = fsn.file_info(&su, "/").expect("stat /").expect("/ exists");
    let mut out = vec![line("/", &root)];
    let mut stack = vec!["/".to_string()];
    while let Some(dir) = stack.pop() {
        let mut after = String::new();
        loop {
            let l = fsn.listing(&su, &dir, &after).unwrap_or_else(|e| panic!("listing {dir}: {e}"));
            for e in &l.entries {
                let path = if dir == "/" { format!("/{}", e.name) } else { format!("{dir}/{}", e.name) };
                out.push(line(&path, e));
                if e.file_type == FileType::Directory as i32 {
                    stack.push(path);
                }
            }
            match l.entries.last() {
                Some(last) if l.remaining > 0 => after = last.name.clone(),
                _ => break,
            }
        }
    }
    out.sort();
    out
}

fn exists(fsn: &Namesystem, path: &str) -> bool {
    fsn.file_info(&fsn.caller("nn"), path).expect("stat").is_some()
}

async fn mkdir(fsn: &Namesystem, c: &Caller, path: &str, perm: u32) {
    fsn.mkdirs(c, path, perm, true).await.unwrap_or_else(|e| panic!("mkdirs {path}: {e}"));
}

/// create + complete.
async fn mkfile(fsn: &Namesystem, c: &Caller, path: &str, perm: u32) {
    fsn.create(c, path, perm, false, true, 0, 0, "client-1").await.unwrap_or_else(|e| panic!("create {path}: {e}"));
    assert!(fsn.complete(c, path, "client-1", None).await.unwrap_or_else(|e| panic!("complete {path}: {e}")));
}

fn current(dir: &Path) -> PathBuf {
    dir.join("current")
}

/// File names in `dir/current`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(current(dir))
        .expect("list current")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    v.sort();
    v
}

fn with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    names(dir).into_iter().filter(|n| n.starts_with(prefix)).collect()
}

fn finished_segments(dir: &Path) -> Vec<(u64, u64, String)> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with("edits_") && !n.starts_with("edits_inprogress_"))
        .map(|n| {
            let (a, b) = n["edits_".len()..].split_once('-').expect("edits_<a>-<b>");
            (a.parse().expect("first txid"), b.parse().expect("last txid"), n)
        })
        .collect()
}

/// The one in-progress segment of `dir`.
fn in_progress(dir: &Path) -> PathBuf {
    let v = with_prefix(dir, "edits_inprogress_");
    assert_eq!(v.len(), 1, "exactly one in-progress segment in {}: {v:?}", dir.display());
    current(dir).join(&v[0])
}

fn flip_middle_byte(file: &Path) {
    let mut b = fs::read(file).expect("read segment");
    let i = b.len() / 2;
    b[i] ^= 0x40;
    fs::write(file, b).expect("write segment");
}

fn expect_err<T: std::fmt::Debug>(r: Result<T, NnError>, ok: impl Fn(&NnError) -> bool, what: &str) -> NnError {
    match r {
        Err(e) if ok(&e) => e,
        other => panic!("{what}: unexpected outcome {other:?}"),
    }
}

// ---- 1 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 1);
    let fsn = open(&d);
    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/a/b/c", 0o755).await;
    mkdir(&fsn, &su, "/x", 0o750).await;
    for f in ["/a/f1", "/a/b/f2", "/a/b/c/f3"] {
        mkfile(&fsn, &su, f, 0o644).await;
    }
    fsn.create(&su, "/a/open", 0o600, false, false, 2, 2 << 20, "writer").await.unwrap(); // left under construction
    fsn.rename(&su, "/a/b/c", "/x/c").await.unwrap();
    fsn.rename(&su, "/a/f1", "/x/f1r").await.unwrap();
    assert!(fsn.delete(&su, "/a/b/f2", false).await.unwrap());
    mkdir(&fsn, &su, "/gone/deep/er", 0o700).await;
    assert!(fsn.delete(&su, "/gone", true).await.unwrap());
    fsn.set_permission(&su, "/x", 0o1777).await.unwrap();
    fsn.set_permission(&su, "/x/f1r", 0o600).await.unwrap();
    fsn.set_owner(&su, "/x/c", "alice", "staff").await.unwrap();
    fsn.set_owner(&su, "/a", "", "grp2").await.unwrap();
    fsn.set_times(&su, "/x/c/f3", 12345, 67890).await.unwrap();
    fsn.set_times(&su, "/a", -1, 555).await.unwrap();
    assert!(fsn.set_replication(&su, "/x/f1r", 7).await.unwrap());
    assert!(!fsn.set_replication(&su, "/a", 5).await.unwrap());
    fsn.create(&su, "/x/c/f3", 0o640, true, false, 1, 0, "client-2").await.unwrap(); // overwrite

    let before = dump(&fsn);
    let want = [
        "/ d 755 nn:supergroup",
        "/a d 755 nn:grp2",
        "/a/b d 755 nn:supergroup",
        "/a/open f 600 nn:supergroup", // created before the chgrp of /a
        "/x d 1777 nn:supergroup",
        "/x/c d 755 alice:staff",
        "/x/c/f3 f 640 nn:staff",
        "/x/f1r f 600 nn:supergroup",
    ];
    assert_eq!(before.len(), want.len(), "{before:#?}");
    for (got, w) in before.iter().zip(want) {
        assert!(got.starts_with(&format!("{w} ")), "{got} vs {w}");
    }
    assert!(before[3].contains("repl=2") && before[3].contains("uc=true"), "{}", before[3]);
    assert!(before[6].contains("repl=1") && before[6].contains("uc=true"), "{}", before[6]);
    assert!(before[7].contains("repl=7") && before[7].contains("uc=false"), "{}", before[7]);
    assert!(before[1].contains("atime=555"), "{}", before[1]);
    let last = fsn.last_txid();

    // From the edit log (in-progress segment), then from the finished segment, then from an image.
    let fsn = reopen(fsn, &d);
    assert_eq!((fsn.startup.image_txid, fsn.startup.edits_replayed, fsn.startup.last_txid), (0, last, last));
    assert_eq!(dump(&fsn), before);
    let fsn = reopen(fsn, &d);
    assert_eq!(dump(&fsn), before);
    let su = fsn.caller("nn");
    fsn.safe_mode(&su, SafeModeAction::Enter).unwrap();
    let txid = tokio::task::block_in_place(|| fsn.save_namespace(&su)).unwrap();
    assert_eq!(txid, last);
    let fsn = reopen(fsn, &d);
    assert_eq!((fsn.startup.image_txid, fsn.startup.edits_replayed), (last, 0));
    assert_eq!(dump(&fsn), before);
    fsn.close();
}

// ---- 2 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn torn_tail_is_cut_and_garbage_tolerated() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 1);
    let fsn = open(&d);
    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/t", 0o755).await;
    for i in 0..9 {
        mkdir(&fsn, &su, &format!("/t/d{i}"), 0o755).await;
    }
    let before_last = dump(&fsn);
    mkdir(&fsn, &su, "/t/d9", 0o755).await;
    assert_eq!(fsn.last_txid(), 11);
    fsn.close();
    drop(fsn);

    let seg = in_progress(&d[0]);
    assert!(seg.ends_with("edits_inprogress_0000000000000000001"), "{}", seg.display());
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 3).unwrap();

    let fsn = open(&d);
    assert_eq!((fsn.startup.edits_replayed, fsn.startup.last_txid), (10, 10));
    assert!(!exists(&fsn, "/t/d9"));
    assert_eq!(dump(&fsn), before_last);
    // The loader kept the valid records as a finished segment and starts again at txid 11.
    assert_eq!(finished_segments(&d[0]).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(1, 10)]);
    assert!(in_progress(&d[0]).ends_with("edits_inprogress_0000000000000000011"));

    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/t/d9", 0o755).await;
    for i in 0..5 {
        mkfile(&fsn, &su, &format!("/t/d9/f{i}"), 0o644).await;
    }
    let before = dump(&fsn);
    let last = fsn.last_txid();
    assert_eq!(last, 21);
    fsn.close();
    drop(fsn);
    let seg = in_progress(&d[0]);
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend((0..30u8).map(|i| i.wrapping_mul(37) ^ 0xA5));
    fs::write(&seg, bytes).unwrap();

    let fsn = open(&d);
    assert_eq!((fsn.startup.edits_replayed, fsn.startup.last_txid), (last, last)); // segments 1-10 and 11-21
    assert_eq!(dump(&fsn), before);
    let fsn = reopen(fsn, &d);
    assert_eq!(dump(&fsn), before);
    fsn.close();
}

// ---- 3 ----

async fn two_hundred_mkdirs(d: &[PathBuf]) {
    let fsn = open(d);
    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/c", 0o755).await;
    for i in 0..200 {
        mkdir(&fsn, &su, &format!("/c/d{i:03}"), 0o755).await;
    }
    assert_eq!(fsn.last_txid(), 201);
    fsn.close();
}

fn assert_names_offset(err: &str, file: &Path) {
    assert!(err.contains(&file.display().to_string()), "error does not name {}: {err}", file.display());
    assert!(err.contains("offset"), "error has no offset: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corruption_in_the_middle_stops_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    // In-progress segment.
    let d = vec![tmp.path().join("inprogress")];
    two_hundred_mkdirs(&d).await;
    let seg = in_progress(&d[0]);
    flip_middle_byte(&seg);
    let err = open_err(&d);
    assert_names_offset(&err, &seg);
    // Nothing was rewritten by the failed start.
    assert_eq!(in_progress(&d[0]), seg);
    assert!(finished_segments(&d[0]).is_empty());

    // Finished segment.
    let d = vec![tmp.path().join("finished")];
    two_hundred_mkdirs(&d).await;
    open(&d).close(); // finishes the segment
    let segs = finished_segments(&d[0]);
    assert_eq!(segs.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(1, 201)]);
    let seg = current(&d[0]).join(&segs[0].2);
    flip_middle_byte(&seg);
    let err = open_err(&d);
    assert_names_offset(&err, &seg);
}

// ---- 4 ----

/// Both directories hold the same files with the same bytes (VERSION may differ only in cTime).
fn assert_dirs_identical(a: &Path, b: &Path) {
    assert_eq!(names(a), names(b));
    for n in names(a) {
        let (x, y) = (fs::read(current(a).join(&n)).unwrap(), fs::read(current(b).join(&n)).unwrap());
        if n == "VERSION" {
            let strip = |v: &[u8]| {
                String::from_utf8_lossy(v)
                    .lines()
                    .filter(|l| !l.starts_with("cTime=") && !l.starts_with("crc32c="))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(&x), strip(&y));
        } else {
            assert!(x == y, "{n} differs between {} and {}", a.display(), b.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_name_dirs_mirror_and_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 2);
    let fsn = open(&d);
    let su = fsn.caller("nn");
    for i in 0..20 {
        mkfile(&fsn, &su, &format!("/m/f{i}"), 0o644).await;
    }
    fsn.rename(&su, "/m/f0", "/m0").await.unwrap();
    let fsn = reopen(fsn, &d);
    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/n/o", 0o700).await;
    fsn.delete(&su, "/m/f1", false).await.unwrap();
    let before = dump(&fsn);
    fsn.close();
    drop(fsn);
    assert!(!finished_segments(&d[0]).is_empty());
    assert_dirs_identical(&d[0], &d[1]);

    // Wipe the first directory entirely (the loader looks there first): it is filled again
    // from the second.
    for e in fs::read_dir(&d[0]).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap()
        } else {
            fs::remove_file(&p).unwrap()
        }
    }
    let fsn = open(&d);
    assert_eq!(dump(&fsn), before);
    let last = fsn.last_txid();
    let image = format!("fsimage_{last:019}");
    assert!(current(&d[0]).join("VERSION").exists());
    assert_eq!(with_prefix(&d[0], "fsimage_"), std::slice::from_ref(&image));
    assert_eq!(fs::read(current(&d[0]).join(&image)).unwrap(), fs::read(current(&d[1]).join(&image)).unwrap());
    let fsn = reopen(fsn, &d);
    assert_eq!((fsn.startup.image_txid, fsn.startup.edits_replayed), (last, 0));
    assert_eq!(dump(&fsn), before);

    // Edits after that image, finished in both directories; then the first copy goes bad.
    let su = fsn.caller("nn");
    for i in 0..30 {
        mkdir(&fsn, &su, &format!("/n/o/p{i}"), 0o755).await;
    }
    let before = dump(&fsn);
    let fsn = reopen(fsn, &d);
    fsn.close();
    drop(fsn);
    let seg = finished_segments(&d[0]).into_iter().max().expect("a finished segment").2;
    assert_eq!(fs::read(current(&d[0]).join(&seg)).unwrap(), fs::read(current(&d[1]).join(&seg)).unwrap());
    flip_middle_byte(&current(&d[0]).join(&seg));
    let fsn = open(&d);
    assert_eq!((fsn.startup.image_txid, fsn.startup.edits_replayed), (last, 30));
    assert_eq!(dump(&fsn), before);
    let fsn = reopen(fsn, &d);
    assert_eq!(dump(&fsn), before);

    // A copy of the in-progress segment corrupt in the middle: the other copy is used.
    let su = fsn.caller("nn");
    for i in 0..30 {
        mkdir(&fsn, &su, &format!("/q/{i}"), 0o755).await;
    }
    let before = dump(&fsn);
    let last = fsn.last_txid();
    fsn.close();
    drop(fsn);
    flip_middle_byte(&in_progress(&d[0]));
    let fsn = open(&d);
    assert_eq!((fsn.startup.last_txid, dump(&fsn)), (last, before.clone()));
    let fsn = reopen(fsn, &d);
    assert_eq!(dump(&fsn), before);
    fsn.close();
}

// ---- 5 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn save_namespace_and_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 2);
    let fsn = open(&d);
    let su = fsn.caller("nn");
    let alice = fsn.caller("alice");
    mkdir(&fsn, &su, "/s", 0o777).await;
    mkfile(&fsn, &su, "/s/f", 0o644).await;
    fsn.create(&su, "/s/open", 0o644, false, false, 0, 0, "w").await.unwrap();
    expect_err(fsn.save_namespace(&su), |e| matches!(e, NnError::SafeMode(_)), "save outside safe mode");
    assert!(!fsn.safe_mode(&su, SafeModeAction::Get).unwrap().0);
    expect_err(
        fsn.safe_mode(&alice, SafeModeAction::Enter),
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice enters safe mode",
    );

    let mut saved = Vec::new();
    for round in 0..3 {
        assert!(fsn.safe_mode(&su, SafeModeAction::Enter).unwrap().0);
        if round == 0 {
            // Every mutation is refused and changes nothing.
            let (before, txid) = (dump(&fsn), fsn.last_txid());
            let sm = |e: &NnError| matches!(e, NnError::SafeMode(_));
            expect_err(fsn.mkdirs(&su, "/s/new", 0o755, true).await, sm, "mkdirs");
            expect_err(fsn.create(&su, "/s/g", 0o644, false, true, 0, 0, "c").await, sm, "create");
            expect_err(fsn.complete(&su, "/s/open", "w", None).await, sm, "complete");
            expect_err(fsn.rename(&su, "/s/f", "/s/f2").await, sm, "rename");
            expect_err(fsn.delete(&su, "/s", true).await, sm, "delete");
            expect_err(fsn.set_permission(&su, "/s", 0o700).await, sm, "chmod");
            expect_err(fsn.set_owner(&su, "/s", "bob", "").await, sm, "chown");
            expect_err(fsn.set_times(&su, "/s/f", 1, 1).await, sm, "setTimes");
            expect_err(fsn.set_replication(&su, "/s/f", 1).await, sm, "setReplication");
            expect_err(
                tokio::task::block_in_place(|| fsn.save_namespace(&alice)),
                |e| matches!(e, NnError::PermissionDenied(_)),
                "alice saves",
            );
            assert_eq!((dump(&fsn), fsn.last_txid()), (before, txid));
        }
        let txid = tokio::task::block_in_place(|| fsn.save_namespace(&su)).unwrap();
        assert_eq!(txid, fsn.last_txid());
        for dir in &d {
            assert!(current(dir).join(format!("fsimage_{txid:019}")).exists(), "round {round}: {:?}", names(dir));
        }
        saved.push(txid);
        assert!(!fsn.safe_mode(&su, SafeModeAction::Leave).unwrap().0);
        for i in 0..=round {
            mkdir(&fsn, &su, &format!("/s/r{round}/d{i}"), 0o755).await;
        }
    }
    assert!(fsn.complete(&su, "/s/open", "w", None).await.unwrap());
    let after_last_save = fsn.last_txid() - saved[2];
    assert_eq!(after_last_save, 5); // /s/r2, three dirs under it, the close
    assert!(saved[0] < saved[1] && saved[1] < saved[2], "{saved:?}");
    for dir in &d {
        let images = with_prefix(dir, "fsimage_");
        assert_eq!(images, [format!("fsimage_{:019}", saved[1]), format!("fsimage_{:019}", saved[2])]);
        for (_, last, n) in finished_segments(dir) {
            assert!(last > saved[1], "{n} should have been purged (older kept image is {})", saved[1]);
        }
        let kept: Vec<_> = finished_segments(dir).into_iter().map(|s| (s.0, s.1)).collect();
        assert_eq!(kept, [(saved[1] + 1, saved[2])]);
    }
    assert_dirs_identical(&d[0], &d[1]);
    let before = dump(&fsn);
    let fsn = reopen(fsn, &d);
    assert_eq!((fsn.startup.image_txid, fsn.startup.edits_replayed), (saved[2], after_last_save));
    assert_eq!(dump(&fsn), before);
    fsn.close();
}

// ---- 6 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permissions_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 1);
    let fsn = open(&d);
    let (su, alice, bob) = (fsn.caller("nn"), fsn.caller("alice"), fsn.caller("bob"));
    assert!(su.superuser && !alice.superuser && !bob.superuser);
    mkdir(&fsn, &su, "/b", 0o755).await;
    fsn.set_owner(&su, "/b", "bob", "").await.unwrap();
    fsn.mkdirs(&bob, "/b/priv", 0o700, false).await.unwrap();
    mkfile(&fsn, &bob, "/b/priv/secret", 0o644).await;
    mkfile(&fsn, &bob, "/b/pub", 0o644).await;
    expect_err(
        fsn.mkdirs(&alice, "/b/alices", 0o755, false).await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice mkdir in bob's dir",
    );
    let before = dump(&fsn);

    let e = expect_err(
        fsn.listing(&alice, "/b/priv", "").map(|l| l.entries),
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice lists",
    );
    assert!(e.to_string().starts_with("Permission denied: user=alice, access=READ_EXECUTE"), "{e}");
    expect_err(
        fsn.file_info(&alice, "/b/priv/secret"),
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice stats through 700",
    );
    expect_err(
        fsn.delete(&alice, "/b/priv", true).await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice deletes",
    );
    expect_err(
        fsn.delete(&alice, "/b/pub", false).await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice deletes a file",
    );
    expect_err(
        fsn.set_permission(&alice, "/b/pub", 0o777).await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice chmods",
    );
    expect_err(
        fsn.set_owner(&bob, "/b/pub", "alice", "").await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "bob gives away",
    );
    expect_err(
        fsn.set_owner(&bob, "/b/pub", "", "supergroup").await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "bob chgrp",
    );
    expect_err(
        fsn.set_times(&alice, "/b/pub", 1, 1).await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice setTimes",
    );
    expect_err(
        fsn.rename(&alice, "/b/pub", "/stolen").await,
        |e| matches!(e, NnError::PermissionDenied(_)),
        "alice renames",
    );
    assert_eq!(dump(&fsn), before, "refused operations changed the namespace");

    // The owner and the superuser may.
    fsn.set_owner(&bob, "/b/pub", "bob", "").await.unwrap();
    fsn.set_permission(&bob, "/b/pub", 0o600).await.unwrap();
    let l = fsn.listing(&su, "/b/priv", "").unwrap();
    assert_eq!(l.entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["secret"]);
    assert!(fsn.delete(&su, "/b/priv", true).await.unwrap());
    assert!(!exists(&fsn, "/b/priv"));
    fsn.set_owner(&su, "/b/pub", "alice", "staff").await.unwrap();
    let st = fsn.file_info(&su, "/b/pub").unwrap().unwrap();
    assert_eq!((st.owner.as_str(), st.group.as_str(), st.permission), ("alice", "staff", 0o600));
    let before = dump(&fsn);
    let fsn = reopen(fsn, &d);
    assert_eq!(dump(&fsn), before);
    fsn.close();
}

// ---- 7 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_without_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 1);
    let fsn = open(&d);
    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/r/a/b", 0o755).await;
    mkfile(&fsn, &su, "/r/file", 0o644).await;
    fsn.mkdirs(&su, &format!("/r/{}", "y".repeat(255)), 0o755, false).await.unwrap(); // 255 is fine
    fsn.delete(&su, &format!("/r/{}", "y".repeat(255)), false).await.unwrap();
    let before = dump(&fsn);
    let txid = fsn.last_txid();

    let long = format!("/r/{}", "x".repeat(256));
    for bad in ["/r/../etc", "/r/a\0b", long.as_str(), "r/a", "", "/r//a", "/r/./a", "/r/a:b"] {
        let inv = |e: &NnError| matches!(e, NnError::InvalidPath(_));
        expect_err(fsn.mkdirs(&su, bad, 0o755, true).await, inv, &format!("mkdirs {bad:?}"));
        expect_err(fsn.create(&su, bad, 0o644, true, true, 0, 0, "c").await, inv, &format!("create {bad:?}"));
        expect_err(fsn.rename(&su, "/r/file", bad).await, inv, &format!("rename to {bad:?}"));
        expect_err(fsn.delete(&su, bad, true).await, inv, &format!("delete {bad:?}"));
        expect_err(fsn.file_info(&su, bad), inv, &format!("stat {bad:?}"));
    }

    let nf = |e: &NnError| matches!(e, NnError::FileNotFound(_));
    expect_err(fsn.mkdirs(&su, "/r/missing/child", 0o755, false).await, nf, "mkdirs without parent");
    expect_err(fsn.mkdirs(&su, "/r/missing/deeper/child", 0o755, false).await, nf, "mkdirs without parents");
    expect_err(fsn.create(&su, "/r/missing/f", 0o644, false, false, 0, 0, "c").await, nf, "create without parent");
    expect_err(fsn.rename(&su, "/r/nope", "/r/x").await, nf, "rename missing source");
    expect_err(fsn.rename(&su, "/r/file", "/r/missing/x").await, nf, "rename into missing dir");
    expect_err(
        fsn.mkdirs(&su, "/r/file/sub", 0o755, true).await,
        |e| matches!(e, NnError::ParentNotDirectory(_)),
        "mkdirs under a file",
    );
    expect_err(
        fsn.create(&su, "/r/file/sub", 0o644, false, true, 0, 0, "c").await,
        |e| matches!(e, NnError::ParentNotDirectory(_)),
        "create under a file",
    );
    expect_err(
        fsn.mkdirs(&su, "/r/file", 0o755, true).await,
        |e| matches!(e, NnError::AlreadyExists(_)),
        "mkdirs over a file",
    );
    expect_err(
        fsn.rename(&su, "/r/a", "/r/a/b/c").await,
        |e| matches!(e, NnError::InvalidArgument(_)),
        "rename into own subtree",
    );
    expect_err(fsn.rename(&su, "/r/a", "/r/a").await, |e| matches!(e, NnError::AlreadyExists(_)), "rename onto itself");
    expect_err(
        fsn.rename(&su, "/r/a", "/r/file").await,
        |e| matches!(e, NnError::AlreadyExists(_)),
        "rename onto a file",
    );
    expect_err(fsn.rename(&su, "/", "/z").await, |e| matches!(e, NnError::InvalidArgument(_)), "rename root");
    expect_err(fsn.delete(&su, "/r/a", false).await, |e| matches!(e, NnError::NotEmpty(_)), "delete non-empty");
    expect_err(fsn.delete(&su, "/", true).await, |e| matches!(e, NnError::InvalidArgument(_)), "delete root");
    expect_err(
        fsn.create(&su, "/r/a", 0o644, true, false, 0, 0, "c").await,
        |e| matches!(e, NnError::IsDirectory(_)),
        "create over a dir",
    );
    expect_err(
        fsn.create(&su, "/", 0o644, true, false, 0, 0, "c").await,
        |e| matches!(e, NnError::IsDirectory(_)),
        "create /",
    );
    expect_err(
        fsn.create(&su, "/r/file", 0o644, false, false, 0, 0, "c").await,
        |e| matches!(e, NnError::AlreadyExists(_)),
        "create existing",
    );
    let ia = |e: &NnError| matches!(e, NnError::InvalidArgument(_));
    expect_err(fsn.create(&su, "/r/g", 0o644, false, false, 513, 0, "c").await, ia, "replication too high");
    expect_err(fsn.create(&su, "/r/g", 0o644, false, false, 0, 1000, "c").await, ia, "block size too small");
    expect_err(fsn.create(&su, "/r/g", 0o644, false, false, 0, 0, "").await, ia, "no client name");
    expect_err(fsn.set_replication(&su, "/r/file", 0).await, ia, "replication 0");
    expect_err(fsn.set_owner(&su, "/r/file", "", "").await, ia, "empty owner and group");
    assert!(!fsn.delete(&su, "/r/nope", true).await.unwrap());
    assert!(fsn.listing(&su, "/r/nope", "").is_err());

    assert_eq!(fsn.last_txid(), txid, "a refused request was logged");
    assert_eq!(dump(&fsn), before, "a refused request changed the namespace");
    assert!(!exists(&fsn, "/r/missing"));
    mkdir(&fsn, &su, "/r/still/works", 0o755).await;
    let before = dump(&fsn);
    let fsn = reopen(fsn, &d);
    assert_eq!(dump(&fsn), before);
    fsn.close();
}

// ---- 8 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_shares_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 2);
    let fsn = Arc::new(open(&d));
    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/gc", 0o755).await;
    let stats0 = fsn.journal_stats();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let (fsn, su) = (fsn.clone(), su.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..50 {
                fsn.mkdirs(&su, &format!("/gc/t{t:02}/d{j:02}"), 0o755, true)
                    .await
                    .unwrap_or_else(|e| panic!("t{t} d{j}: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let stats = fsn.journal_stats();
    let (syncs, records) = (stats.syncs - stats0.syncs, stats.records - stats0.records);
    println!("group commit: {records} records in {syncs} syncs");
    assert_eq!(records, 64 + 64 * 50);
    assert!(syncs < records, "no sharing: {syncs} syncs for {records} records");
    let before = dump(&fsn);
    let fsn = Arc::into_inner(fsn).expect("every task is done");
    let fsn = reopen(fsn, &d);
    assert_eq!(fsn.counts().dirs, 1 + 1 + 64 + 64 * 50);
    for t in 0..64 {
        for j in 0..50 {
            assert!(exists(&fsn, &format!("/gc/t{t:02}/d{j:02}")), "t{t} d{j} lost");
        }
    }
    assert_eq!(dump(&fsn), before);
    fsn.close();
}

// ---- 9 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let d = name_dirs(&tmp, 1);
    let fsn = Arc::new(open(&d));
    let su = fsn.caller("nn");
    mkdir(&fsn, &su, "/big", 0o755).await;
    // Unpadded numbers and mixed case, so byte order is not creation or numeric order.
    let mut want: Vec<String> = (0..2500).map(|i| if i % 3 == 0 { format!("E{i}") } else { format!("e{i}") }).collect();
    let mut tasks = Vec::new();
    for chunk in want.chunks(125) {
        let (fsn, su, chunk) = (fsn.clone(), su.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for n in chunk {
                fsn.mkdirs(&su, &format!("/big/{n}"), 0o755, false).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    want.sort();

    let mut got = Vec::new();
    let mut after = String::new();
    let mut remaining = Vec::new();
    loop {
        let l = fsn.listing(&su, "/big", &after).unwrap();
        assert!(l.entries.len() <= 1000);
        assert_eq!(l.dir.children_num, 2500);
        got.extend(l.entries.iter().map(|e| e.name.clone()));
        remaining.push((l.entries.len(), l.remaining));
        match l.entries.last() {
            Some(last) if l.remaining > 0 => after = last.name.clone(),
            _ => break,
        }
    }
    assert_eq!(remaining, [(1000, 1500), (1000, 500), (500, 0)]);
    assert_eq!(got, want);

    // A start_after that is not a child starts at the next name in byte order.
    for missing in ["e1000a", "E", "a", "e99999", "zzz", "E0 "] {
        assert!(!want.contains(&missing.to_string()));
        let l = fsn.listing(&su, "/big", missing).unwrap();
        let expect: Vec<&String> = want.iter().filter(|n| n.as_str() > missing).collect();
        let names: Vec<&String> = l.entries.iter().map(|e| &e.name).collect();
        assert_eq!(names, expect.iter().take(1000).copied().collect::<Vec<_>>(), "start_after {missing}");
        assert_eq!(l.remaining as usize, expect.len().saturating_sub(1000), "start_after {missing}");
    }
    // The last name: nothing after it.
    let l = fsn.listing(&su, "/big", want.last().unwrap()).unwrap();
    assert_eq!((l.entries.len(), l.remaining), (0, 0));
    // A file lists as itself.
    mkfile(&fsn, &su, "/big/E0/f", 0o644).await;
    let l = fsn.listing(&su, "/big/E0/f", "").unwrap();
    assert_eq!((l.entries.len(), l.entries[0].name.as_str(), l.remaining), (1, "f", 0));
    Arc::into_inner(fsn).expect("tasks done").close();
}
