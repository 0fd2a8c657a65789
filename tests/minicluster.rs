//! Block storage in-process: a MiniCluster (namenode + 3 datanodes) written to and read
//! from through the client library; replicas corrupted, datanodes stopped and restarted.

mod support;

use std::time::{Duration, Instant};
use support::minicluster::{pattern, read_all, write_file, MiniCluster};
use tusk_client::{Client, ReadStatistics};
use tusk_common::config::ClientConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_read_corrupt_and_restart() {
    let mut mc = MiniCluster::start(3).await;
    let c = mc.client("root").await;
    // 3.5 blocks of 1 MiB, replicated three times.
    let data = pattern(3 * 1024 * 1024 + 512 * 1024 + 17, 42);
    write_file(&c, "/f", &data, 1 << 20).await;
    assert_eq!(read_all(&c, "/f").await, data);
    let locs = c.get_block_locations("/f", 0, u64::MAX).await.unwrap();
    assert_eq!(locs.file_length, data.len() as u64);
    assert_eq!(locs.blocks.len(), 4);
    for b in &locs.blocks {
        let mut ids: Vec<&str> = b.locations.iter().map(|d| d.datanode_uuid.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3, "block on 3 distinct datanodes: {b:?}");
    }
    // Positional reads across a block boundary.
    let r = c.open("/f").await.unwrap();
    let mut buf = vec![0u8; 4000];
    let n = r.pread((1 << 20) - 1000, &mut buf).await.unwrap();
    assert_eq!(&buf[..n], &data[(1 << 20) - 1000..(1 << 20) - 1000 + n]);

    // Corrupt the first replica of block 1: reads still return the right bytes and the
    // namenode learns of the bad replica.
    let b1 = locs.blocks[1].block.unwrap();
    let first = mc.index_of(&locs.blocks[1].locations[0].datanode_uuid).unwrap();
    assert!(mc.corrupt_replica(first, b1.block_id));
    // Replicas are offered in random order: read until a reader has hit the bad one.
    let bad_uuid = locs.blocks[1].locations[0].datanode_uuid.clone();
    let mut learnt = false;
    for _ in 0..40 {
        assert_eq!(read_all(&c, "/f").await, data);
        let now = c.get_block_locations("/f", 0, u64::MAX).await.unwrap();
        if now.blocks[1].corrupt_locations.iter().any(|d| d.datanode_uuid == bad_uuid) {
            assert!(
                !now.blocks[1].locations.iter().any(|d| d.datanode_uuid == bad_uuid),
                "a corrupt replica is never offered"
            );
            learnt = true;
            break;
        }
    }
    assert!(learnt, "the namenode never learnt of the corrupt replica");

    // Stop a datanode: reads fail over to the others.
    mc.stop_datanode(2).await;
    assert_eq!(read_all(&c, "/f").await, data);
    mc.restart_datanode(2).await;
    mc.wait_live(3).await;
    assert_eq!(read_all(&c, "/f").await, data);

    // Deleting the file deletes the replicas on the datanodes.
    let b0 = locs.blocks[0].block.unwrap().block_id;
    assert!(c.delete("/f", false).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while mc.datanodes.iter().flatten().any(|d| d.block_file(b0).is_some()) {
        assert!(Instant::now() < deadline, "replicas of a deleted file remain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mc.shutdown().await;
}

/// Reads `path` whole through one reader with `buf_len`-byte reads; its read statistics.
async fn read_counted(c: &Client, path: &str, buf_len: usize) -> (Vec<u8>, ReadStatistics) {
    let mut r = c.open(path).await.expect("open");
    let mut out = Vec::new();
    let mut buf = vec![0u8; buf_len];
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    (out, r.read_statistics())
}

/// Short-circuit local reads (on by default; every MiniCluster datanode is on this host):
/// every byte comes from the replica files, in large reads (straight into the caller's
/// buffer), small ones and positional ones; off, every byte comes over TCP. A corrupt
/// replica is caught either way, reported, and read around.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_circuit_reads_local_replicas_and_verify_them() {
    let mc = MiniCluster::start(3).await;
    let c = mc.client("root").await;
    let tcp = mc.client_with("root", &ClientConfig { read_shortcircuit: false, ..Default::default() }).await;
    let data = pattern(2 * 1024 * 1024 + 300_001, 9);
    write_file(&c, "/sc", &data, 1 << 20).await;
    let len = data.len() as u64;
    for buf_len in [4 << 20, 1 << 20, 70_000, 1000, 1] {
        if buf_len == 1 {
            // One byte at a time over a whole file is slow; a 3 KiB file will do.
            write_file(&c, "/small", &data[..3000], 1 << 20).await;
            let (got, st) = read_counted(&c, "/small", 1).await;
            assert_eq!(got, &data[..3000]);
            assert_eq!(st, ReadStatistics { total_bytes_read: 3000, short_circuit_bytes_read: 3000 });
            continue;
        }
        let (got, st) = read_counted(&c, "/sc", buf_len).await;
        assert!(got == data, "short-circuit read with {buf_len}-byte buffers differs");
        assert_eq!(st, ReadStatistics { total_bytes_read: len, short_circuit_bytes_read: len }, "{buf_len}");
        let (got, st) = read_counted(&tcp, "/sc", buf_len).await;
        assert!(got == data, "TCP read with {buf_len}-byte buffers differs");
        assert_eq!(st, ReadStatistics { total_bytes_read: len, short_circuit_bytes_read: 0 }, "{buf_len}");
    }
    // Positional reads: unaligned, across a block boundary, up to the end of the file.
    let r = c.open("/sc").await.unwrap();
    for (pos, n) in [(0u64, 1usize), (777, 5000), ((1 << 20) - 1000, 4000), (len - 10, 100), (1 << 20, 1 << 20)] {
        let mut buf = vec![0u8; n];
        let got = r.pread(pos, &mut buf).await.unwrap();
        let want = &data[pos as usize..(pos as usize + n).min(data.len())];
        assert_eq!(&buf[..got], want, "pread {n} at {pos}");
    }
    let st = r.read_statistics();
    assert!(st.total_bytes_read > 0 && st.short_circuit_bytes_read == st.total_bytes_read, "{st:?}");

    // Corrupt every replica of the middle block but one: short-circuit readers still get
    // the right bytes (reading around the bad ones), and the namenode learns of the bad ones.
    let locs = c.get_block_locations("/sc", 0, u64::MAX).await.unwrap();
    let b1 = &locs.blocks[1];
    let block_id = b1.block.unwrap().block_id;
    let bad: Vec<String> = b1.locations[..2].iter().map(|d| d.datanode_uuid.clone()).collect();
    for uuid in &bad {
        assert!(mc.corrupt_replica(mc.index_of(uuid).unwrap(), block_id));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, st) = read_counted(&c, "/sc", 1 << 20).await;
        assert!(got == data, "a read of a file with corrupt replicas returned other bytes");
        assert_eq!(st.short_circuit_bytes_read, len);
        let now = c.get_block_locations("/sc", 0, u64::MAX).await.unwrap();
        let known: Vec<&str> = now.blocks[1].corrupt_locations.iter().map(|d| d.datanode_uuid.as_str()).collect();
        if bad.iter().all(|u| known.contains(&u.as_str())) {
            assert!(now.blocks[1].locations.iter().all(|d| !bad.contains(&d.datanode_uuid)));
            break;
        }
        assert!(Instant::now() < deadline, "the namenode never learnt of both corrupt replicas: {known:?}");
    }
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_above_cluster_size_still_writes() {
    let mc = MiniCluster::start(2).await;
    let c = mc.client("root").await;
    let data = pattern(200_000, 7);
    write_file(&c, "/r3", &data, 1 << 20).await; // asks for 3, only 2 datanodes
    assert_eq!(read_all(&c, "/r3").await, data);
    let locs = c.get_block_locations("/r3", 0, u64::MAX).await.unwrap();
    assert_eq!(locs.blocks[0].locations.len(), 2);
    let stats = c.fs_stats().await.unwrap();
    assert_eq!(stats.under_replicated_blocks, 1, "{stats:?}");
    // An empty file has no block at all.
    let w = c.create("/empty", false, 3, 0).await.unwrap();
    assert_eq!(w.close().await.unwrap(), 0);
    assert_eq!(read_all(&c, "/empty").await, Vec::<u8>::new());
    mc.shutdown().await;
}

/// Datanodes heartbeat on long-lived streams. The namenode still stops at once (an open
/// stream must not hold its graceful shutdown until the 10 s grace runs out), and after a
/// restart the datanodes find it, register again and keep heartbeating: they are still
/// live after longer than the heartbeat expiry (4 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namenode_stops_and_restarts_under_heartbeat_streams() {
    let mut mc = MiniCluster::start(2).await;
    mc.wait_live(2).await;
    tokio::time::sleep(Duration::from_millis(1000)).await; // heartbeats every 300 ms
    let t = Instant::now();
    mc.stop_namenode().await;
    assert!(t.elapsed() < Duration::from_secs(8), "the namenode took {:?} to stop", t.elapsed());
    mc.start_namenode().await;
    mc.wait_live(2).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let c = mc.client("root").await;
    let live = c.datanode_report(tusk_client::DatanodeReportType::DatanodeReportLive).await.unwrap();
    assert_eq!(live.len(), 2, "{live:?}");
    mc.shutdown().await;
}
