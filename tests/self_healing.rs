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
    let victim = mc.datanodes[0].as_ref().unwrap().uuid().to_owned();
    // A file with a replica on the victim, read without pause while it dies.
    let mut on_victim = None;
    for (p, d) in &files {
        let locs = c.get_block_locations(p, 0, u64::MAX).await.unwrap();
        if locs.blocks.iter().any(|b| b.locations.iter().any(|l| l.datanode_uuid == victim)) {
            on_victim = Some((p.clone(), d.clone()));
            break;
        }
    }
    let (read_path, read_data) = on_victim.expect("the victim holds some replica");
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

    mc.stop_datanode(0).await;
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
