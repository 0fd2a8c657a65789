//! Self-healing on the in-process cluster: blocks of a dead datanode are copied back to full
//! replication, highest priority first, while readers keep reading.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::minicluster::{pattern, read_all, write_file, MiniCluster};
use tusk_client::DatanodeReportType;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blocks_of_a_dead_datanode_are_copied_back_while_readers_read() {
    let mut mc = MiniCluster::start(4).await;
    let c = mc.client("root").await;
    c.mkdirs("/data", 0o755, false).await.unwrap();
    let files: Vec<(String, Vec<u8>)> =
        (0..8).map(|i| (format!("/data/f{i}"), pattern(1_500_000 + i * 7919, 100 + i as u64))).collect();
    for (p, d) in &files {
        write_file(&c, p, d, 1 << 20).await;
    }
    // The victim holds a replica of the first file, which is read without pause while it dies.
    let locs = c.get_block_locations(&files[0].0, 0, u64::MAX).await.unwrap();
    let victim = locs.blocks[0].locations[0].datanode_uuid.clone();
    let victim_idx = mc.index_of(&victim).unwrap();
    let (read_path, read_data) = files[0].clone();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, reads) = (stop.clone(), reads.clone());
        let c = mc.client("root").await;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(read_all(&c, &read_path).await, read_data, "a reader saw wrong bytes");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    mc.stop_datanode(victim_idx).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.datanode_report(DatanodeReportType::DatanodeReportDead).await.unwrap().len() != 1 {
        assert!(Instant::now() < deadline, "the stopped datanode is never declared dead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead_at = Instant::now();
    let reads_at_death = reads.load(Ordering::Relaxed);
    loop {
        let mut short = 0;
        for (p, _) in &files {
            let locs = c.get_block_locations(p, 0, u64::MAX).await.unwrap();
            for b in &locs.blocks {
                let live: Vec<_> = b.locations.iter().filter(|l| l.datanode_uuid != victim).collect();
                if live.len() < 3 || live.len() != b.locations.len() {
                    short += 1;
                }
            }
        }
        let st = c.fs_stats().await.unwrap();
        assert_eq!(st.missing_blocks, 0, "no block may go missing");
        if short == 0 && st.under_replicated_blocks == 0 {
            break;
        }
        assert!(dead_at.elapsed() < Duration::from_secs(60), "{short} blocks still short 60 s after the death");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("every block back at 3 replicas {:?} after the dead declaration", dead_at.elapsed());
    // The reader went on reading through the death and the copying.
    let deadline = Instant::now() + Duration::from_secs(10);
    while reads.load(Ordering::Relaxed) <= reads_at_death + 1 {
        assert!(Instant::now() < deadline, "the reader stopped making progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("the reader never saw an error");
    for (p, d) in &files {
        assert_eq!(&read_all(&c, p).await, d, "{p}");
    }
    mc.shutdown().await;
}

/// Test hook: the block scanner finds a flipped byte, the namenode has a good copy made on
/// another datanode, then deletes the bad one; the bad replica is never offered to readers.
async fn scanner_finds_and_replaces(datanodes: usize) {
    let mut mc = MiniCluster::start(datanodes).await;
    mc.scan_period_secs = 1;
    for i in 0..datanodes {
        mc.restart_datanode(i).await;
    }
    mc.wait_live(datanodes).await;
    let c = mc.client("root").await;
    let data = pattern(2_500_000, 77);
    write_file(&c, "/scanned", &data, 1 << 20).await;
    let locs = c.get_block_locations("/scanned", 0, u64::MAX).await.unwrap();
    let b1 = locs.blocks[1].block.unwrap().block_id;
    let bad_uuid = locs.blocks[1].locations[0].datanode_uuid.clone();
    let bad = mc.index_of(&bad_uuid).unwrap();
    assert!(mc.corrupt_replica(bad, b1));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_corrupt = false;
    loop {
        let locs = c.get_block_locations("/scanned", 0, u64::MAX).await.unwrap();
        let b = &locs.blocks[1];
        if b.corrupt_locations.iter().any(|d| d.datanode_uuid == bad_uuid) {
            seen_corrupt = true;
            assert!(!b.locations.iter().any(|d| d.datanode_uuid == bad_uuid), "a corrupt replica is offered");
        }
        // Healed: three good replicas, none known corrupt, and the bad file gone or replaced.
        let healed = b.locations.len() == 3
            && b.corrupt_locations.is_empty()
            && mc.datanodes[bad].as_ref().unwrap().block_file(b1).is_none_or(|p| {
                let on_disk = std::fs::read(p).unwrap_or_default();
                on_disk == data[1 << 20..2 << 20]
            });
        if seen_corrupt && healed {
            break;
        }
        assert!(Instant::now() < deadline, "not healed: seen corrupt {seen_corrupt}, block {b:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(read_all(&c, "/scanned").await, data);
    let st = c.fs_stats().await.unwrap();
    assert_eq!((st.corrupt_blocks, st.missing_blocks, st.under_replicated_blocks), (0, 0, 0));
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scanner_finds_a_corrupt_replica_and_it_is_replaced_elsewhere() {
    scanner_finds_and_replaces(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_three_datanodes_the_corrupt_replica_makes_room_for_a_good_one() {
    scanner_finds_and_replaces(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_two_racks_every_block_spans_both() {
    let mc = MiniCluster::start_with_racks(&["/r1", "/r1", "/r2", "/r2"]).await;
    let c = mc.client("root").await;
    let data = pattern(5 * (1 << 20) + 333, 5);
    write_file(&c, "/racked", &data, 1 << 20).await;
    let locs = c.get_block_locations("/racked", 0, u64::MAX).await.unwrap();
    assert_eq!(locs.blocks.len(), 6);
    for b in &locs.blocks {
        let racks: std::collections::BTreeSet<&str> = b.locations.iter().map(|d| d.rack.as_str()).collect();
        assert_eq!(b.locations.len(), 3, "{b:?}");
        assert_eq!(racks.len(), 2, "every block on both racks: {b:?}");
    }
    // What an operator sees: fsck -racks and dfsadmin -printTopology.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
    let args: Vec<String> = ["/racked", "-files", "-blocks", "-racks"].iter().map(|s| s.to_string()).collect();
    let code = tusk_fs_shell::fsck::run(&args, &mc.nn_addr, "root", &Default::default(), &mut io).await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("/r1/127.0.0.") && out.contains("/r2/127.0.0."), "{out}");
    assert!(out.contains("Number of racks:\t\t2"), "{out}");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
    let args = vec!["-printTopology".to_string()];
    assert_eq!(tusk_fs_shell::admin::run(&args, &mc.nn_addr, "root", &Default::default(), &mut io).await, 0);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("Rack: /r1\n   127.0.0.1:"), "{out}");
    assert!(out.contains("\nRack: /r2\n   127.0.0.3:"), "{out}");
    assert_eq!(read_all(&c, "/racked").await, data);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decommissioned_datanode_leaves_no_block_under_replicated() {
    let mc = MiniCluster::start(4).await;
    let c = mc.client("root").await;
    c.mkdirs("/d", 0o755, false).await.unwrap();
    let files: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("/d/f{i}"), pattern(1_300_000 + i * 101, 300 + i as u64))).collect();
    for (p, d) in &files {
        write_file(&c, p, d, 1 << 20).await;
    }
    // The datanode holding the first block leaves.
    let locs = c.get_block_locations(&files[0].0, 0, u64::MAX).await.unwrap();
    let leaving = locs.blocks[0].locations[0].clone();
    let addr = format!("{}:{}", leaving.ip_addr, leaving.xfer_port);
    std::fs::write(mc.exclude_file(), format!("# leaving for repairs\n{addr}\n")).unwrap();
    let admin = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let nn = mc.nn_addr.clone();
        async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
            let code = tusk_fs_shell::admin::run(&args, &nn, "root", &Default::default(), &mut io).await;
            (code, String::from_utf8(out).unwrap())
        }
    };
    assert_eq!(admin(&["-refreshNodes"]).await, (0, "Refresh nodes successful\n".to_string()));
    let state = |nodes: &[tusk_client::DatanodeInfo]| {
        nodes.iter().find(|d| d.datanode_uuid == leaving.datanode_uuid).map(|d| d.admin_state).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut saw_in_progress = false;
    loop {
        let nodes = c.datanode_report(DatanodeReportType::DatanodeReportLive).await.unwrap();
        match tusk_client::AdminState::try_from(state(&nodes)).unwrap() {
            tusk_client::AdminState::DecommissionInProgress => saw_in_progress = true,
            tusk_client::AdminState::Decommissioned => break,
            tusk_client::AdminState::Normal => panic!("the excluded datanode is in service"),
        }
        // It keeps serving reads meanwhile.
        assert_eq!(read_all(&c, &files[0].0).await, files[0].1);
        assert!(Instant::now() < deadline, "never decommissioned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("decommissioned (seen in progress first: {saw_in_progress})");
    // Every block has 3 replicas on datanodes in service; the decommissioned one still has its
    // copies (listed last) and serves them.
    for (p, d) in &files {
        let locs = c.get_block_locations(p, 0, u64::MAX).await.unwrap();
        for b in &locs.blocks {
            let in_service = b.locations.iter().filter(|l| l.datanode_uuid != leaving.datanode_uuid).count();
            assert!(in_service >= 3, "{p}: {b:?}");
            if let Some(pos) = b.locations.iter().position(|l| l.datanode_uuid == leaving.datanode_uuid) {
                assert_eq!(pos, b.locations.len() - 1, "a leaving datanode's replica is offered last");
            }
        }
        assert_eq!(&read_all(&c, p).await, d);
    }
    let st = c.fs_stats().await.unwrap();
    assert_eq!((st.under_replicated_blocks, st.missing_blocks), (0, 0));
    let (code, report) = admin(&["-report"]).await;
    assert_eq!(code, 0);
    assert!(report.contains("Decommission Status : Decommissioned"), "{report}");
    let (_, topo) = admin(&["-printTopology"]).await;
    assert!(topo.contains(&format!("{addr} (")) && topo.contains("Decommissioned"), "{topo}");
    // Taken off the list: back in service.
    std::fs::write(mc.exclude_file(), "").unwrap();
    assert_eq!(admin(&["-refreshNodes"]).await.0, 0);
    let nodes = c.datanode_report(DatanodeReportType::DatanodeReportLive).await.unwrap();
    assert_eq!(state(&nodes), tusk_client::AdminState::Normal as i32);
    mc.shutdown().await;
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("blk_") && !n.ends_with(".meta"))
            {
                out.push(p);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_data_directory_is_taken_out_and_its_replicas_copied_elsewhere() {
    let mut mc = MiniCluster::start(4).await;
    mc.volumes = 2;
    mc.failed_volumes_tolerated = 1;
    for i in 0..4 {
        mc.restart_datanode(i).await;
    }
    mc.wait_live(4).await;
    let c = mc.client("root").await;
    c.mkdirs("/v", 0o755, false).await.unwrap();
    let files: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("/v/f{i}"), pattern(1_200_000 + i * 13, 500 + i as u64))).collect();
    for (p, d) in &files {
        write_file(&c, p, d, 1 << 20).await;
    }
    // Datanode 0's second directory holds some replicas; it goes away under it.
    let dir = mc.data_dirs(0)[1].clone();
    let mut lost = Vec::new();
    files_under(&dir, &mut lost);
    assert!(!lost.is_empty(), "round-robin put replicas on the second directory");
    let uuid = mc.datanodes[0].as_ref().unwrap().uuid().to_owned();
    std::fs::rename(dir.join("current"), dir.join("current.gone")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut short = 0;
        for (p, _) in &files {
            for b in c.get_block_locations(p, 0, u64::MAX).await.unwrap().blocks {
                if b.locations.len() < 3 {
                    short += 1;
                }
            }
        }
        let st = c.fs_stats().await.unwrap();
        assert_eq!(st.missing_blocks, 0);
        let dn0_blocks = c
            .datanode_report(DatanodeReportType::DatanodeReportLive)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.datanode_uuid == uuid)
            .map(|d| d.num_blocks);
        let dn0_blocks = dn0_blocks.expect("the datanode keeps running on its other directory");
        if short == 0 && st.under_replicated_blocks == 0 && dn0_blocks > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{short} blocks short of replicas");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (p, d) in &files {
        assert_eq!(&read_all(&c, p).await, d, "{p}");
    }
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setrep_w_waits_for_more_and_for_fewer_replicas() {
    let mc = MiniCluster::start(4).await;
    let c = mc.client("root").await;
    let data = pattern(2_200_000, 9);
    write_file(&c, "/rep", &data, 1 << 20).await;
    let shell = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let nn = mc.nn_addr.clone();
        async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut io = tusk_fs_shell::Io { out: &mut out, err: &mut err };
            let code = tusk_fs_shell::run(&args, &nn, "root", &Default::default(), &mut io).await;
            (code, String::from_utf8(out).unwrap())
        }
    };
    let replicas = |locs: &tusk_client::GetBlockLocationsResponse| -> Vec<usize> {
        locs.blocks.iter().map(|b| b.locations.len()).collect()
    };
    for (n, want) in [(4, vec![4, 4, 4]), (1, vec![1, 1, 1])] {
        let (code, out) =
            tokio::time::timeout(Duration::from_secs(60), shell(&["-setrep", "-w", &n.to_string(), "/rep"]))
                .await
                .expect("-setrep -w returns once the target is met");
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with(&format!("Replication {n} set: /rep\nWaiting for /rep ...")), "{out}");
        assert!(out.trim_end().ends_with("done"), "{out}");
        let locs = c.get_block_locations("/rep", 0, u64::MAX).await.unwrap();
        assert_eq!(replicas(&locs), want);
    }
    assert_eq!(read_all(&c, "/rep").await, data);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_writer_per_file_until_its_lease_lapses() {
    let mut mc = MiniCluster::start(1).await;
    mc.lease_soft_limit = Duration::from_millis(1500);
    mc.restart_namenode().await;
    mc.wait_live(1).await;
    let conf = tusk_common::config::ClientConfig { lease_renew_interval_ms: 200, ..Default::default() };
    let a = tusk_client::Client::connect(&mc.nn_addr, "root", &conf).await.unwrap();
    let b = tusk_client::Client::connect(&mc.nn_addr, "root", &conf).await.unwrap();
    let mut w = a.create("/leased", false, 1, 1 << 20).await.unwrap();
    w.write(&pattern(100_000, 1)).await.unwrap();
    let refused = |r: Result<tusk_client::FileWriter, tusk_client::ClientError>| match r {
        Ok(_) => panic!("a second writer was let in"),
        Err(e) => assert!(e.to_string().contains("currently owned by"), "{e}"),
    };
    refused(b.create("/leased", true, 1, 1 << 20).await);
    // Past the soft limit, but the first writer's client renews its lease while the file is open.
    tokio::time::sleep(Duration::from_secs(3)).await;
    refused(b.create("/leased", true, 1, 1 << 20).await);
    w.write(&pattern(100_000, 2)).await.unwrap();
    // The first writer goes away without closing: once its lease lapses, the file can be taken.
    drop(w);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut w = b.create("/leased", true, 1, 1 << 20).await.expect("the lapsed lease is taken over");
    w.write(&pattern(50_000, 3)).await.unwrap();
    assert_eq!(w.close().await.unwrap(), 50_000);
    assert_eq!(read_all(&b, "/leased").await, pattern(50_000, 3));
    mc.shutdown().await;
}
