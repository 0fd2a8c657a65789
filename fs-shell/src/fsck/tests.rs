use super::*;

fn loc(i: u32, rack: &str) -> Loc {
    Loc { addr: format!("127.0.0.1:{}", 9865 + i), uuid: format!("u{i}"), rack: rack.into() }
}

fn block(id: u64, len: u64, live: Vec<Loc>, corrupt: Vec<Loc>) -> BlockView {
    BlockView { id, gs: 1000 + id, len, live, corrupt }
}

fn opts(files: bool, blocks: bool, locations: bool) -> Opts {
    Opts { files, blocks, locations, ..Opts::default() }
}

const R: &str = "/default-rack";

#[test]
fn healthy_with_files_blocks_locations() {
    let mut ck = Checker::new(opts(true, true, true), 1, "CID-1");
    ck.dir("/");
    let b = block(1_073_741_825, 12, vec![loc(1, R), loc(2, R), loc(3, R)], vec![]);
    assert!(!ck.file("/a", 12, 3, false, &[b]));
    assert_eq!(
        ck.out,
        "/ <dir>\n/a 12 bytes, replicated: replication=3, 1 block(s):  OK\n\
         0. blk_1073741825_1073742825 len=12 Live_repl=3  [DatanodeInfoWithStorage[127.0.0.1:9866,u1,DISK], \
         DatanodeInfoWithStorage[127.0.0.1:9867,u2,DISK], DatanodeInfoWithStorage[127.0.0.1:9868,u3,DISK]]\n\n"
    );
    assert!(ck.healthy());
    assert_eq!(
        ck.summary(3),
        format!(
            "\nStatus: HEALTHY\n Number of data-nodes:\t3\n Number of racks:\t\t1\n Total dirs:\t\t\t1\n \
             Total symlinks:\t\t0\n\nReplicated Blocks:\n Total size:\t12 B\n Total files:\t1\n \
             Total blocks (validated):\t1 (avg. block size 12 B)\n Minimally replicated blocks:\t1 (100.0 %)\n \
             Over-replicated blocks:\t0 (0.0 %)\n Under-replicated blocks:\t0 (0.0 %)\n \
             Mis-replicated blocks:\t\t0 (0.0 %)\n Default replication factor:\t3\n \
             Average block replication:\t3.0\n Missing blocks:\t\t0\n Corrupt blocks:\t\t0\n \
             Missing replicas:\t\t0 (0.0 %)\n\nErasure Coded Block Groups:\n{EC_EMPTY}\n"
        )
    );
}

#[test]
fn empty_tree_summary() {
    let mut ck = Checker::new(Opts::default(), 0, "");
    ck.dir("/");
    assert_eq!(
        ck.replicated_summary(),
        " Total size:\t0 B\n Total files:\t0\n Total blocks (validated):\t0\n Minimally replicated blocks:\t0\n \
         Over-replicated blocks:\t0\n Under-replicated blocks:\t0\n Mis-replicated blocks:\t\t0\n \
         Default replication factor:\t3\n Average block replication:\t0.0\n Missing blocks:\t\t0\n \
         Corrupt blocks:\t\t0\n Missing replicas:\t\t0"
    );
}

#[test]
fn under_replicated_corrupt_and_missing() {
    let mut ck = Checker::new(Opts::default(), 1, "CID-1");
    ck.dir("/");
    let b1 = block(1, 200, vec![loc(1, R)], vec![]);
    let b2 = block(2, 100, vec![], vec![loc(2, R)]);
    assert!(ck.file("/b", 300, 3, false, &[b1, b2]));
    assert!(ck.file("/c", 5, 2, false, &[block(3, 5, vec![], vec![])]));
    assert_eq!(
        ck.out,
        "\n/b:  Under replicated blk_1_1001. Target Replicas is 3 but found 1 live replica(s), \
         0 decommissioned replica(s), 0 decommissioning replica(s).\n\
         \n/b: CORRUPT blockpool CID-1 block blk_2\n\
         \n/b: CORRUPT 1 blocks of total size 100 B.\
         \n/c: MISSING 1 blocks of total size 5 B."
    );
    assert!(!ck.healthy());
    assert_eq!(
        ck.replicated_summary(),
        " Total size:\t305 B\n Total files:\t2\n Total blocks (validated):\t3 (avg. block size 101 B)\n  \
         ********************************\n  UNDER MIN REPL'D BLOCKS:\t2 (66.666664 %)\n  \
         dfs.namenode.replication.min:\t1\n  CORRUPT FILES:\t2\n  MISSING BLOCKS:\t1\n  \
         MISSING SIZE:\t\t5 B\n  CORRUPT BLOCKS: \t1\n  CORRUPT SIZE:\t\t100 B\n  \
         ********************************\n Minimally replicated blocks:\t1 (33.333332 %)\n \
         Over-replicated blocks:\t0 (0.0 %)\n Under-replicated blocks:\t1 (33.333332 %)\n \
         Mis-replicated blocks:\t\t0 (0.0 %)\n Default replication factor:\t3\n \
         Average block replication:\t0.33333334\n Missing blocks:\t\t1\n Corrupt blocks:\t\t1\n \
         Missing replicas:\t\t2 (25.0 %)"
    );
    assert!(ck.summary(1).starts_with("\nStatus: CORRUPT\n"));
    assert_eq!(ck.corrupt_list, vec![("blk_2".to_string(), "/b".to_string()), ("blk_3".to_string(), "/c".to_string())]);
}

#[test]
fn files_mode_marks_problems_inline() {
    let mut ck = Checker::new(opts(true, true, false), 1, "CID-1");
    ck.file("/u", 10, 3, false, &[block(5, 10, vec![loc(1, R)], vec![loc(2, R)])]);
    ck.file("/m", 7, 1, false, &[block(6, 7, vec![], vec![])]);
    assert_eq!(
        ck.out,
        "/u 10 bytes, replicated: replication=3, 1 block(s):  Under replicated blk_5_1005. Target Replicas is 3 \
         but found 1 live replica(s), 0 decommissioned replica(s), 0 decommissioning replica(s).\n\
         0. blk_5_1005 len=10 Live_repl=1\n\n\
         /m 7 bytes, replicated: replication=1, 1 block(s):  MISSING 1 blocks of total size 7 B\n\
         0. blk_6_1006 len=7 MISSING!\n\n"
    );
}

#[test]
fn racks_details_and_misreplication() {
    let o = Opts { files: true, blocks: true, racks: true, replica_details: true, ..Opts::default() };
    let mut ck = Checker::new(o, 2, "");
    ck.file("/r", 1, 2, false, &[block(9, 1, vec![loc(1, "/r1"), loc(2, "/r1")], vec![loc(3, "/r2")])]);
    assert_eq!(
        ck.out,
        "/r 1 bytes, replicated: replication=2, 1 block(s):  Replica placement policy is violated for blk_9_1009. \
         Block should be additionally replicated on 1 more rack(s). Total number of racks in the cluster: 2\n\
         0. blk_9_1009 len=1 Live_repl=2  [/r1/127.0.0.1:9866(LIVE), /r1/127.0.0.1:9867(LIVE), \
         /r2/127.0.0.1:9868(CORRUPT)]\n\n"
    );
    assert_eq!(ck.res.mis, 1);
    assert!(ck.healthy());
}

#[test]
fn open_files_are_counted_apart() {
    let mut ck = Checker::new(opts(true, false, false), 1, "");
    assert!(!ck.file("/w", 100, 3, true, &[block(1, 100, vec![loc(1, R)], vec![])]));
    assert!(ck.out.is_empty());
    assert!(ck.replicated_summary().starts_with(
        " Total size:\t0 B (Total open files size: 100 B)\n Total files:\t0 (Files currently being written: 1)\n \
         Total blocks (validated):\t0 (Total open file blocks (not validated): 1)\n"
    ));
}

#[test]
fn arguments() {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = parse(&v(&["-files", "/p", "-blocks", "-locations"])).unwrap();
    assert_eq!(o.path.as_deref(), Some("/p"));
    assert!(o.files && o.blocks && o.locations && !o.racks);
    assert_eq!(parse(&v(&["/a", "/b"])).unwrap_err(), "fsck: can only operate on one path at a time '/b'");
    assert_eq!(parse(&v(&["-x"])).unwrap_err(), "fsck: Illegal option '-x'");
    assert_eq!(parse(&[]).unwrap().path, None);
    assert_eq!(
        query("al", &parse(&v(&["/a b/ü", "-files"])).unwrap(), "/a b/ü"),
        "/fsck?ugi=al&files=1&path=%2Fa+b%2F%C3%BC"
    );
}
