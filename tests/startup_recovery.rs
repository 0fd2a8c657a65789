//! Start-up against damaged edit logs, through the real binary: a torn final record is cut
//! and the start succeeds; a flipped byte in the middle of a segment stops the start with a
//! message naming the file and the offset.

mod support;

use std::path::{Path, PathBuf};
use support::{tusk, Namenode};

fn inprogress_segment(dir: &Path) -> PathBuf {
    let cur = dir.join("current");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cur)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("edits_inprogress_"))
        .collect();
    found.sort();
    found.pop().expect("an in-progress segment")
}

fn count_root(addr: &str) -> String {
    let r = tusk(addr, "root", &["fs", "-count", "/"]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

#[test]
fn torn_tail_is_cut_and_a_flipped_byte_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("name");
    let nn = Namenode::start(std::slice::from_ref(&dir));
    for i in 0..200 {
        let r = tusk(&nn.addr, "root", &["fs", "-mkdir", &format!("/d{i:03}")]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    assert_eq!(count_root(&nn.addr), format!("{:>12} {:>12} {:>18} /\n", 201, 0, 0));
    nn.sigkill();
    let seg = inprogress_segment(&dir);
    let good = std::fs::read(&seg).unwrap();

    // A flipped byte in the middle: the start stops, naming the file and the offset.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x5a;
    std::fs::write(&seg, &bad).unwrap();
    let err = match Namenode::try_start(std::slice::from_ref(&dir)) {
        Ok(_) => panic!("namenode started on a corrupt edit log"),
        Err(e) => e,
    };
    assert!(err.contains(&seg.display().to_string()), "{err}");
    assert!(err.contains("corrupt at offset"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Nothing was changed by the failed start.
    assert_eq!(std::fs::read(&seg).unwrap(), bad);

    // A torn final record: cut off, and the start succeeds with everything before it.
    let mut torn = good.clone();
    torn.truncate(good.len() - 7);
    std::fs::write(&seg, &torn).unwrap();
    let nn = Namenode::start(std::slice::from_ref(&dir));
    assert!(nn.stderr().contains("torn final record"), "{}", nn.stderr());
    assert_eq!(count_root(&nn.addr), format!("{:>12} {:>12} {:>18} /\n", 200, 0, 0));
    let r = tusk(&nn.addr, "root", &["fs", "-test", "-d", "/d199"]);
    assert_eq!(r.code, 1, "the torn record was /d199");
    // And the namespace keeps working and persisting.
    assert_eq!(tusk(&nn.addr, "root", &["fs", "-mkdir", "/after"]).code, 0);
    nn.stop();
    let nn = Namenode::start(std::slice::from_ref(&dir));
    assert_eq!(count_root(&nn.addr), format!("{:>12} {:>12} {:>18} /\n", 201, 0, 0));
    nn.stop();
}
