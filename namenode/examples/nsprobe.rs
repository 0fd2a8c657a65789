//! The namespace alone, in-process, for before/after comparisons of `inode.rs`,
//! `namespace.rs`, `fsimage.rs` and replay (docs/benchmarks.md, "Namespace: memory, reads
//! and start-up"). Build it in a checkout of each version and alternate the binaries:
//!
//! ```text
//! cargo build --release -p tusk-namenode --example nsprobe
//! nsprobe mem 1000000            # 1M files (add + close, one block each) applied directly:
//!                                # RSS per file, apply rate, image save and two-thread load
//! nsprobe lookup 100000          # Namespace::lookup of pre-parsed paths, one thread
//! nsprobe read 100000 2000000    # 100k files via Namesystem, then getFileInfo from 64 tasks
//! nsprobe replay 300000 [again]  # 300k durable creates, then Namesystem::open (edit replay) x3
//! nsprobe load 3                 # load the image `mem` left in /tmp, 3 times
//! ```
use std::sync::Arc;
use std::time::Instant;
use tusk_namenode::namespace::Namespace;
use tusk_proto::storage::{edit_op::Op, Block, EditOp, OpAdd, OpClose, OpMkdir};

fn mkdir_op(path: String) -> EditOp {
    EditOp {
        op: Some(Op::Mkdir(OpMkdir {
            path,
            permission: 0o755,
            owner: "root".into(),
            group: "supergroup".into(),
            time_ms: 5,
        })),
    }
}

/// A file opened for writing by a client, no block yet.
fn add_op(path: String) -> EditOp {
    EditOp {
        op: Some(Op::Add(OpAdd {
            path,
            permission: 0o644,
            owner: "root".into(),
            group: "supergroup".into(),
            time_ms: 6,
            replication: 3,
            block_size: 128 << 20,
            client_name: "DFSClient_x".into(),
            overwrite: false,
        })),
    }
}

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Makes `n` empty files (create + complete, durable) from `tasks` concurrent tasks, in
/// directories of `per_dir` files: directory `k` is `dir(k)`, file `i` is `file(i)`.
async fn create_files(
    fsn: &Arc<tusk_namenode::Namesystem>,
    su: &Arc<tusk_namenode::permission::Caller>,
    n: u64,
    tasks: u64,
    per_dir: u64,
    dir: fn(u64) -> String,
    file: fn(u64) -> String,
) {
    for k in 0..n.div_ceil(per_dir) {
        fsn.mkdirs(su, &dir(k), 0o755, true).await.unwrap();
    }
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (fsn, su) = (fsn.clone(), su.clone());
        set.spawn(async move {
            let mut i = t;
            while i < n {
                let p = file(i);
                fsn.create(&su, &p, 0o644, false, false, 3, 0, "bench").await.unwrap();
                fsn.complete(&su, &p, "bench", None).await.unwrap();
                i += tasks;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args[1].as_str();
    let n: u64 = args[2].parse().unwrap();
    match mode {
        "mem" => {
            let before = rss();
            let mut ns = Namespace::new("root", "supergroup", 1);
            let t0 = Instant::now();
            ns.apply(&mkdir_op("/bench".into())).unwrap();
            for d in 0..n.div_ceil(1000) {
                ns.apply(&mkdir_op(format!("/bench/d{d:05}"))).unwrap();
            }
            for i in 0..n {
                let p = format!("/bench/d{:05}/f{:08}", i / 1000, i);
                ns.apply(&add_op(p.clone())).unwrap();
                ns.apply(&EditOp {
                    op: Some(Op::Close(OpClose {
                        path: p,
                        time_ms: 7,
                        blocks: vec![Block { block_id: (1 << 30) + i, generation_stamp: 1001 + i, num_bytes: 1024 }],
                    })),
                })
                .unwrap();
            }
            let built = t0.elapsed();
            let after = rss();
            println!(
                "build {n} files (2 ops each, apply only): {built:?} ({:.0} ops/s)",
                2.0 * n as f64 / built.as_secs_f64()
            );
            println!("namespace RSS: {} bytes/file", (after - before) / n);
            let path = std::path::Path::new("/tmp/nsprobe-img");
            let t = Instant::now();
            tusk_namenode::fsimage::save(&ns, 1, "CID", path).unwrap();
            println!("save: {:?}", t.elapsed());
            drop(ns);
            let before = rss();
            let t = Instant::now();
            let (ns, _) = tusk_namenode::fsimage::load(path).unwrap();
            let load = t.elapsed();
            let t = Instant::now();
            ns.check_invariants().unwrap();
            println!(
                "load: {load:?}, check_invariants: {:?}, RSS after load: {} bytes/file",
                t.elapsed(),
                (rss().saturating_sub(before)) / n
            );
        }
        "lookup" => {
            let mut ns = Namespace::new("root", "supergroup", 1);
            ns.apply(&mkdir_op("/cr".into())).unwrap();
            for k in 0..n.div_ceil(100) {
                ns.apply(&mkdir_op(format!("/cr/p{k}"))).unwrap();
            }
            for i in 0..n {
                let p = format!("/cr/p{}/f{i}", i / 100);
                ns.apply(&add_op(p.clone())).unwrap();
            }
            let paths: Vec<tusk_common::path::FsPath> = (0..n)
                .map(|i| {
                    let r = (i.wrapping_mul(7919)) % n;
                    tusk_common::path::FsPath::parse(&format!("/cr/p{}/f{r}", r / 100)).unwrap()
                })
                .collect();
            for _ in 0..3 {
                let t = Instant::now();
                let mut found = 0u64;
                for _ in 0..10 {
                    for p in &paths {
                        found += u64::from(ns.lookup(p).is_some());
                    }
                }
                println!("lookup: {:.0}/s ({found})", found as f64 / t.elapsed().as_secs_f64());
            }
        }
        "replay" => {
            let dir = std::path::PathBuf::from("/tmp/nsprobe-replay");
            let conf = || {
                let mut c =
                    tusk_namenode::NamesystemConfig::from_config(&Default::default(), &Default::default(), dir.clone())
                        .unwrap();
                c.name_dirs = vec![dir.clone()];
                c
            };
            if args.get(3).map(String::as_str) != Some("again") {
                std::fs::remove_dir_all(&dir).ok();
                std::fs::create_dir_all(&dir).unwrap();
                let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
                let fsn = Arc::new(tusk_namenode::Namesystem::open(conf()).unwrap());
                let su = Arc::new(fsn.caller(fsn.superuser()));
                rt.block_on(create_files(
                    &fsn,
                    &su,
                    n,
                    128,
                    1000,
                    |k| format!("/bench/d{k:05}"),
                    |i| format!("/bench/d{:05}/f{i:08}", i / 1000),
                ));
                fsn.close();
            }
            for _ in 0..3 {
                let t = Instant::now();
                let fsn = tusk_namenode::Namesystem::open(conf()).unwrap();
                println!("open (replay): {:?}", t.elapsed());
                fsn.close();
            }
        }
        "load" => {
            let path = std::path::Path::new("/tmp/nsprobe-img");
            for _ in 0..n {
                let t = Instant::now();
                let (ns, _) = tusk_namenode::fsimage::load(path).unwrap();
                println!("load: {:?}", t.elapsed());
                drop(ns);
            }
        }
        "read" => {
            let reads: u64 = args[3].parse().unwrap();
            let dir = std::path::PathBuf::from("/tmp/nsprobe-dir");
            std::fs::remove_dir_all(&dir).ok();
            std::fs::create_dir_all(&dir).unwrap();
            let mut c =
                tusk_namenode::NamesystemConfig::from_config(&Default::default(), &Default::default(), dir.clone())
                    .unwrap();
            c.name_dirs = vec![dir.clone()];
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            let fsn = Arc::new(tusk_namenode::Namesystem::open(c).unwrap());
            let su = Arc::new(fsn.caller(fsn.superuser()));
            rt.block_on(async {
                create_files(&fsn, &su, n, 64, 100, |k| format!("/cr/p{k}"), |i| format!("/cr/p{}/f{i}", i / 100))
                    .await;
                for round in 0..3 {
                    let t0 = Instant::now();
                    let mut set = tokio::task::JoinSet::new();
                    for t in 0..64u64 {
                        let fsn = fsn.clone();
                        let su = su.clone();
                        set.spawn(async move {
                            let mut i = t;
                            while i < reads {
                                let r = (i.wrapping_mul(7919)) % n;
                                fsn.file_info(&su, &format!("/cr/p{}/f{r}", r / 100)).unwrap().unwrap();
                                i += 64;
                            }
                        });
                    }
                    while let Some(r) = set.join_next().await {
                        r.unwrap();
                    }
                    println!("round {round}: getFileInfo {:.0}/s", reads as f64 / t0.elapsed().as_secs_f64());
                }
            });
            fsn.close();
        }
        _ => panic!("mode"),
    }
}
