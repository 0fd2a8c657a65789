//! The data commands end to end: an in-process namenode and three datanodes, real blocks.

#[path = "../../tests/support/minicluster.rs"]
mod minicluster;

use minicluster::MiniCluster as Cluster;
use std::path::PathBuf;
use tusk_common::config::ClientConfig;

type Out = (i32, Vec<u8>, String);

async fn fs(c: &Cluster, args: &[&str]) -> Out {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = {
        let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
        tusk_fs_shell::run(&argv, &c.nn_addr, "root", &ClientConfig::default(), &mut io).await
    };
    (code, out, String::from_utf8_lossy(&err).into_owned())
}

async fn tool(c: &Cluster, which: &str, args: &[&str]) -> (i32, String, String) {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = {
        let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
        let conf = ClientConfig::default();
        if which == "fsck" {
            tusk_fs_shell::fsck::run(&argv, &c.nn_addr, "root", &conf, &mut io).await
        } else {
            tusk_fs_shell::admin::run(&argv, &c.nn_addr, "root", &conf, &mut io).await
        }
    };
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_get_cat_fsck_with_datanodes() {
    let c = Cluster::start(3).await;
    let local = |p: &str| -> PathBuf { c.tmp.path().join(p) };
    let s = |p: PathBuf| p.display().to_string();
    let big = data(3 * 1024 * 1024 + 123);
    std::fs::write(local("big"), &big).unwrap();
    std::fs::create_dir_all(local("tree")).unwrap();
    std::fs::write(local("tree/x"), b"hello\n").unwrap();
    std::fs::write(local("tree/y"), b"world").unwrap();

    assert_eq!(fs(&c, &["-mkdir", "/d"]).await.0, 0);
    let r = fs(&c, &["-put", "-p", &s(local("big")), "/d/big"]).await;
    assert_eq!((r.0, r.2.as_str()), (0, ""));
    assert_eq!(fs(&c, &["-put", &s(local("tree")), "/d"]).await.0, 0);
    let (code, out, _) = fs(&c, &["-cat", "/d/big"]).await;
    assert_eq!(code, 0);
    assert!(out == big, "cat returned {} bytes", out.len());
    assert_eq!(fs(&c, &["-cat", "/d/tree/x", "/d/tree/y"]).await.1, b"hello\nworld");
    assert_eq!(fs(&c, &["-head", "/d/big"]).await.1, big[..1024]);
    assert_eq!(fs(&c, &["-tail", "/d/big"]).await.1, big[big.len() - 1024..]);
    let (_, ls, _) = fs(&c, &["-ls", "/d"]).await;
    assert!(!String::from_utf8_lossy(&ls).contains("_COPYING_"));

    let got = s(local("got"));
    assert_eq!(fs(&c, &["-get", "/d/big", &got]).await.0, 0);
    assert!(std::fs::read(&got).unwrap() == big);
    assert_eq!(fs(&c, &["-cp", "/d/big", "/d/big2"]).await.0, 0);
    assert!(fs(&c, &["-cat", "/d/big2"]).await.1 == big);
    assert_eq!(fs(&c, &["-getmerge", "-nl", "/d/tree", &s(local("merged"))]).await.0, 0);
    assert_eq!(std::fs::read(local("merged")).unwrap(), b"hello\n\nworld\n");

    let (_, du, _) = fs(&c, &["-du", "-s", "/d/tree"]).await;
    assert_eq!(String::from_utf8_lossy(&du), "11  33  /d/tree\n");

    let (code, out, _) = tool(&c, "fsck", &["/d", "-files", "-blocks", "-locations"]).await;
    println!("{out}");
    assert_eq!(code, 0);
    assert!(out.contains("/d/big 3145851 bytes, replicated: replication=3, 1 block(s):  OK\n0. blk_"), "{out}");
    assert!(out.contains(" Live_repl=3  [DatanodeInfoWithStorage[127.0.0.1:"), "{out}");
    assert!(out.contains(" Number of data-nodes:\t3\n"), "{out}");
    assert!(out.ends_with("is HEALTHY\n"), "{out}");

    let (code, out, _) = tool(&c, "dfsadmin", &["-report"]).await;
    println!("{out}");
    assert_eq!(code, 0);
    assert!(
        out.contains("\n-------------------------------------------------\nLive datanodes (3):\n\nName: 127.0.0.1:"),
        "{out}"
    );

    let (code, out, _) = fs(&c, &["-setrep", "-w", "2", "/d/tree/x"]).await;
    assert_eq!(
        (code, String::from_utf8_lossy(&out).starts_with("Replication 2 set: /d/tree/x\nWaiting for /d/tree/x ...")),
        (0, true)
    );
    assert!(String::from_utf8_lossy(&out).ends_with(" done\n"));

    c.shutdown().await;
}
