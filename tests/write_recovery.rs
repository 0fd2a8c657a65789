//! Writes that survive failures, on the in-process cluster: a datanode dying in the middle
//! of a write (pipeline recovery), a writer dying in the middle of a file (lease recovery,
//! by the hard limit and by recoverLease), append, and hflush.

mod support;

use std::time::{Duration, Instant};
use support::minicluster::{pattern, read_all, write_file, MiniCluster};
use tusk_client::Client;

const MB: u64 = 1 << 20;

/// Waits until the namenode says `path` is closed.
async fn wait_closed(c: &Client, path: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if !c.get_block_locations(path, 0, u64::MAX).await.unwrap().under_construction {
            return;
        }
        assert!(Instant::now() < deadline, "{path} is still open after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The datanodes (uuids) holding the last block of a file being written.
async fn pipeline_of(c: &Client, path: &str) -> Vec<String> {
    let locs = c.get_block_locations(path, 0, u64::MAX).await.unwrap();
    let last = locs.blocks.last().expect("the file has a block");
    last.locations.iter().map(|d| d.datanode_uuid.clone()).collect()
}

async fn kill_one_of_the_pipeline_mid_write(position: usize) {
    let mut mc = MiniCluster::start(4).await;
    let c = mc.client("root").await;
    let data = pattern(24 * MB as usize + 12_345, 7 + position as u64);
    let mut w = c.create("/big", false, 3, 4 * MB).await.unwrap();
    let (first, rest) = data.split_at(9 * MB as usize + 1000);
    // The kill lands in the third block (8-12 MiB).
    for chunk in first.chunks(100_000) {
        w.write(chunk).await.unwrap();
    }
    w.hflush().await.unwrap();
    let pipeline = pipeline_of(&c, "/big").await;
    assert_eq!(pipeline.len(), 3, "{pipeline:?}");
    let victim = mc.index_of(&pipeline[position]).unwrap();
    mc.stop_datanode(victim).await;
    // Still in the same block: its pipeline is rebuilt with the spare datanode in place of
    // the dead one (the cluster has four).
    let (same_block, rest) = rest.split_at(MB as usize);
    w.write(same_block).await.expect("the write carries on without the dead datanode");
    w.hflush().await.unwrap();
    let rebuilt = pipeline_of(&c, "/big").await;
    assert_eq!(rebuilt.len(), 3, "a replacement joined: {rebuilt:?}");
    assert!(!rebuilt.contains(&pipeline[position]), "{rebuilt:?}");
    for chunk in rest.chunks(100_000) {
        w.write(chunk).await.expect("the write carries on without the dead datanode");
    }
    assert_eq!(w.close().await.unwrap(), data.len() as u64);
    assert_eq!(read_all(&c, "/big").await, data, "the file reads back identical");
    // Every block ends with 3 live replicas again without the dead node (declared dead, or
    // not yet: its replicas do not count here).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let locs = c.get_block_locations("/big", 0, u64::MAX).await.unwrap();
        let others = |b: &tusk_proto::client::LocatedBlock| {
            b.locations.iter().filter(|d| d.datanode_uuid != pipeline[position]).count()
        };
        let short = locs.blocks.iter().filter(|b| others(b) < 3).count();
        if short == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{short} blocks still under-replicated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(read_all(&c, "/big").await, data);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_datanode_of_a_pipeline_dying_mid_write_does_not_fail_it() {
    kill_one_of_the_pipeline_mid_write(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_middle_datanode_of_a_pipeline_dying_mid_write_does_not_fail_it() {
    kill_one_of_the_pipeline_mid_write(1).await;
}

/// A writer that goes away without closing: its client stops renewing, the data it flushed
/// is on the datanodes.
async fn abandoned_file(mc: &MiniCluster, path: &str, flushed: usize, more: usize) -> Vec<u8> {
    let conf = tusk_common::config::ClientConfig { lease_renew_interval_ms: 200, ..Default::default() };
    let writer = Client::connect(&mc.nn_addr, "root", &conf).await.unwrap();
    let data = pattern(flushed + more, flushed as u64);
    let mut w = writer.create(path, false, 3, MB).await.unwrap();
    w.write(&data[..flushed]).await.unwrap();
    w.hflush().await.unwrap();
    w.write(&data[flushed..]).await.unwrap();
    // Killed: nothing more is sent, nothing is closed.
    drop(w);
    drop(writer);
    data
}

fn assert_closed_at_acknowledged(got: &[u8], data: &[u8], flushed: usize) {
    assert!(got.len() >= flushed, "{} bytes, fewer than the {flushed} acknowledged", got.len());
    assert!(got.len() <= data.len(), "{} bytes, more than were written", got.len());
    assert_eq!(got, &data[..got.len()], "the file is not a prefix of what was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_writers_file_is_closed_by_the_hard_limit_at_its_acknowledged_length() {
    let mut mc = MiniCluster::start(3).await;
    mc.lease_soft_limit = Duration::from_secs(1);
    mc.lease_hard_limit = Duration::from_secs(3);
    mc.restart_namenode().await;
    mc.wait_live(3).await;
    let c = mc.client("root").await;
    let flushed = 2 * MB as usize + 300_001;
    let data = abandoned_file(&mc, "/orphan", flushed, 70_000).await;
    // A new reader sees the flushed bytes while the file is still open.
    assert!(c.get_block_locations("/orphan", 0, u64::MAX).await.unwrap().under_construction);
    let early = read_all(&c, "/orphan").await;
    assert!(early.len() >= flushed && early == data[..early.len()], "{} bytes before recovery", early.len());
    wait_closed(&c, "/orphan", Duration::from_secs(30)).await;
    let got = read_all(&c, "/orphan").await;
    assert_closed_at_acknowledged(&got, &data, flushed);
    let st = c.file_info("/orphan").await.unwrap().unwrap();
    assert_eq!(st.length, got.len() as u64);
    // Closed for good: a new writer may append to it.
    let mut w = c.append("/orphan").await.unwrap();
    w.write(b"after recovery").await.unwrap();
    w.close().await.unwrap();
    let mut want = got.clone();
    want.extend_from_slice(b"after recovery");
    assert_eq!(read_all(&c, "/orphan").await, want);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recover_lease_closes_a_dead_writers_file() {
    let mut mc = MiniCluster::start(3).await;
    mc.lease_soft_limit = Duration::from_secs(1);
    mc.restart_namenode().await;
    mc.wait_live(3).await;
    let c = mc.client("root").await;
    let flushed = 700_000;
    let data = abandoned_file(&mc, "/dropped", flushed, 1000).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.recover_lease("/dropped").await.unwrap() {
        assert!(Instant::now() < deadline, "recoverLease never succeeded");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got = read_all(&c, "/dropped").await;
    assert_closed_at_acknowledged(&got, &data, flushed);
    // A closed file: recoverLease says so at once.
    assert!(c.recover_lease("/dropped").await.unwrap());
    assert!(c.recover_lease("/nothing-here").await.is_err());
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn append_twice_reads_back_the_concatenation() {
    let mc = MiniCluster::start(3).await;
    let c = mc.client("root").await;
    let a = pattern(1_000_003, 1);
    let b = pattern(777, 2);
    let d = pattern(2 * MB as usize + 99, 3);
    write_file(&c, "/log", &a, MB).await;
    for part in [&b, &d] {
        let mut w = c.append("/log").await.unwrap();
        for chunk in part.chunks(100_000) {
            w.write(chunk).await.unwrap();
        }
        w.close().await.unwrap();
    }
    let want: Vec<u8> = [a, b, d].concat();
    assert_eq!(read_all(&c, "/log").await, want);
    assert_eq!(c.file_info("/log").await.unwrap().unwrap().length, want.len() as u64);
    // A file open for writing cannot be appended to by someone else.
    let mut w = c.append("/log").await.unwrap();
    let other = mc.client("root").await;
    let e = other.append("/log").await.err().expect("a second writer was let in");
    assert!(e.to_string().contains("currently owned by"), "{e}");
    w.write(b"x").await.unwrap();
    w.close().await.unwrap();
    // Appending to a missing file or a directory fails and changes nothing.
    assert!(c.append("/missing").await.is_err());
    c.mkdirs("/dir", 0o755, false).await.unwrap();
    assert!(c.append("/dir").await.is_err());
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_opened_after_hflush_sees_the_flushed_bytes() {
    let mc = MiniCluster::start(3).await;
    let c = mc.client("root").await;
    let reader = mc.client("root").await;
    let data = pattern(3 * MB as usize, 9);
    let mut w = c.create("/live", false, 3, MB).await.unwrap();
    let mut written = 0;
    for n in [300_001usize, 1_000_000, 1, 900_000] {
        w.write(&data[written..written + n]).await.unwrap();
        written += n;
        w.hflush().await.unwrap();
        let seen = read_all(&reader, "/live").await;
        assert_eq!(seen.len(), written, "a new reader sees every flushed byte");
        assert_eq!(seen, data[..written]);
    }
    w.hsync().await.unwrap();
    w.write(&data[written..]).await.unwrap();
    w.close().await.unwrap();
    assert_eq!(read_all(&reader, "/live").await, data);
    mc.shutdown().await;
}
