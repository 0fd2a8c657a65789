//! The data commands against an in-process namenode without datanodes: every file here is
//! empty, which exercises the control flow (targets, `._COPYING_` renames, messages, exit
//! codes) and the report formats without block storage.

#[path = "../../tests/support/minicluster.rs"]
mod minicluster;

use minicluster::MiniCluster as Nn;
use tusk_common::config::ClientConfig;

/// A namenode and no datanode.
async fn namenode() -> Nn {
    Nn::start(0).await
}

async fn fs(nn: &Nn, args: &[&str]) -> (i32, String, String) {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = {
        let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
        tusk_fs_shell::run(&argv, &nn.nn_addr, "root", &ClientConfig::default(), &mut io).await
    };
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

async fn fsck(nn: &Nn, args: &[&str]) -> (i32, String, String) {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = {
        let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
        tusk_fs_shell::fsck::run(&argv, &nn.nn_addr, "root", &ClientConfig::default(), &mut io).await
    };
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_commands_on_empty_files() {
    let nn = namenode().await;
    let local = tempfile::tempdir().unwrap();
    let l = |p: &str| local.path().join(p).display().to_string();
    std::fs::write(l("e"), b"").unwrap();
    std::fs::create_dir_all(l("tree/sub")).unwrap();
    std::fs::write(l("tree/a"), b"").unwrap();
    std::fs::write(l("tree/sub/b"), b"").unwrap();

    assert_eq!(fs(&nn, &["-mkdir", "/d"]).await.0, 0);
    assert_eq!(fs(&nn, &["-put", &l("e"), "/d"]).await, (0, String::new(), String::new()));
    assert_eq!(fs(&nn, &["-put", &l("e"), "/d/e"]).await, (1, String::new(), "put: `/d/e': File exists\n".into()));
    assert_eq!(fs(&nn, &["-put", "-f", &l("e"), "/d/e"]).await.0, 0);
    let missing = l("nope");
    assert_eq!(
        fs(&nn, &["-put", &missing, "/d/x"]).await,
        (1, String::new(), format!("put: `{missing}': No such file or directory\n"))
    );
    assert_eq!(fs(&nn, &["-put", &l("e"), "/nodir/x"]).await.2, "put: `/nodir/x': No such file or directory\n");
    assert_eq!(fs(&nn, &["-put", &l("e"), &l("e"), "/d/e"]).await.2, "put: `/d/e': Is not a directory\n");
    assert_eq!(fs(&nn, &["-copyFromLocal", &l("tree"), "/d"]).await, (0, String::new(), String::new()));
    let (_, ls, _) = fs(&nn, &["-ls", "-R", "/d"]).await;
    let names: Vec<&str> = ls.lines().map(|x| x.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names, ["/d/e", "/d/tree", "/d/tree/a", "/d/tree/sub", "/d/tree/sub/b"]);

    let (code, out, _) = fs(&nn, &["-du", "/d"]).await;
    assert_eq!((code, out.as_str()), (0, "0  0  /d/e\n0  0  /d/tree\n"));
    assert_eq!(fs(&nn, &["-du", "-s", "-v", "/d"]).await.1, "SIZE  DISK_SPACE_CONSUMED_WITH_ALL_REPLICAS  FULL_PATH_NAME\n0     0                                      /d\n");
    let (code, out, _) = fs(&nn, &["-df"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("Filesystem "), "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with(&format!("hdfs://{}  ", nn.nn_addr)), "{out}");
    assert_eq!(fs(&nn, &["-df", "/nothere"]).await.2, "df: `/nothere': No such file or directory\n");

    assert_eq!(
        fs(&nn, &["-setrep", "2", "/d/tree"]).await.1,
        "Replication 2 set: /d/tree/a\nReplication 2 set: /d/tree/sub/b\n"
    );
    let (code, _, err) = fs(&nn, &["-setrep", "x", "/d"]).await;
    assert_eq!(code, 255);
    assert!(
        err.starts_with("setrep: Illegal replication, a positive integer expected\n-setrep: For input string: \"x\"\n"),
        "{err}"
    );
    assert!(fs(&nn, &["-setrep", "0", "/d"]).await.2.starts_with("-setrep: replication must be >= 1\n"));
    assert_eq!(
        fs(&nn, &["-setrep", "-w", "1", "/d/e"]).await.1,
        "Replication 1 set: /d/e\nWaiting for /d/e ... done\n"
    );

    assert_eq!(fs(&nn, &["-cat", "/d/e", "/d/tree/a"]).await, (0, String::new(), String::new()));
    assert_eq!(fs(&nn, &["-cat", "/d"]).await.2, "cat: `/d': Is a directory\n");
    assert_eq!(fs(&nn, &["-tail", "/d"]).await.2, "tail: `/d': Is a directory\n");
    assert_eq!(fs(&nn, &["-head", "/d/nope"]).await.2, "head: `/d/nope': No such file or directory\n");

    assert_eq!(fs(&nn, &["-cp", "/d/tree", "/d/tree2"]).await, (0, String::new(), String::new()));
    assert_eq!(
        fs(&nn, &["-cp", "/d/tree", "/d/tree/sub"]).await.2,
        "cp: `/d/tree' to `/d/tree/sub/tree': is a subdirectory of itself\n"
    );
    assert_eq!(fs(&nn, &["-cp", "/d/e", "/d/tree2/a"]).await.2, "cp: `/d/tree2/a': File exists\n");
    let (_, ls, _) = fs(&nn, &["-ls", "-R", "/d/tree2"]).await;
    assert_eq!(ls.lines().count(), 3, "{ls}");

    let got = l("got");
    std::fs::create_dir(&got).unwrap();
    assert_eq!(fs(&nn, &["-get", "/d/tree", &got]).await, (0, String::new(), String::new()));
    assert!(std::path::Path::new(&l("got/tree/sub/b")).is_file());
    let exists = l("got/tree/a");
    assert_eq!(
        fs(&nn, &["-copyToLocal", "/d/tree/a", &exists]).await.2,
        format!("copyToLocal: `{exists}': File exists\n")
    );
    assert_eq!(fs(&nn, &["-get", "-f", "/d/tree/a", &exists]).await.0, 0);
    assert!(std::fs::read_dir(l("got/tree")).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("_COPYING_")));

    assert_eq!(fs(&nn, &["-getmerge", "-nl", "/d/tree", &l("merged")]).await.0, 0);
    assert_eq!(std::fs::read(l("merged")).unwrap(), b"\n");
    assert_eq!(fs(&nn, &["-getmerge", "-nl", "-skip-empty-file", "/d/tree", &l("merged")]).await.0, 0);
    assert_eq!(std::fs::read(l("merged")).unwrap(), b"");

    assert_eq!(fs(&nn, &["-moveFromLocal", &l("tree"), "/d/moved"]).await, (0, String::new(), String::new()));
    assert!(!std::path::Path::new(&l("tree")).exists());

    let (code, out, err) = fsck(&nn, &["/d/tree", "-files", "-blocks"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.starts_with(&format!(
        "Connecting to namenode via hdfs://{}/fsck?ugi=root&files=1&blocks=1&path=%2Fd%2Ftree",
        nn.nn_addr
    )));
    assert!(out.starts_with("FSCK started by root (auth:SIMPLE) from /127.0.0.1 for path /d/tree at "), "{out}");
    assert!(
        out.contains(
            "\n/d/tree <dir>\n/d/tree/a 0 bytes, replicated: replication=2, 0 block(s):  OK\n\n/d/tree/sub <dir>\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\nStatus: HEALTHY\n Number of data-nodes:\t0\n Number of racks:\t\t0\n Total dirs:\t\t\t2\n"),
        "{out}"
    );
    assert!(out.ends_with("\n\n\nThe filesystem under path '/d/tree' is HEALTHY\n"), "{out}");
    let (code, out, _) = fsck(&nn, &["/x"]).await;
    assert_eq!(code, 0);
    assert!(out.ends_with("\n\n\nPath '/x' does not exist\n"), "{out}");
    let (code, out, _) = fsck(&nn, &["/", "-list-corruptfileblocks"]).await;
    assert_eq!((code, out.as_str()), (0, "\nThe filesystem under path '/' has no CORRUPT files\n"));
    assert_eq!(fsck(&nn, &["/a", "/b"]).await.0, 255);
    println!("{}", fsck(&nn, &["/d", "-files", "-blocks", "-locations"]).await.1);
}
