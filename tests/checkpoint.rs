//! Checkpoints on the in-process cluster: a merge that a restart starts from, the merged
//! image against the namenode's own -saveNamespace, bounded name directories under load,
//! interrupted and bad transfers, a namenode restarted mid-checkpoint, and a lost name
//! directory rebuilt from the checkpointer.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::minicluster::{pattern, read_all, write_file, MiniCluster};
use tokio_stream::wrappers::ReceiverStream;
use tusk_checkpointer::{Checkpointer, Merge, Merged, Outcome};
use tusk_client::{Client, SafeModeAction};
use tusk_common::checksum::crc32c;
use tusk_common::config::CheckpointConfig;
use tusk_namenode::fsimage::image_name;
use tusk_proto::checkpoint::namenode_checkpoint_client::NamenodeCheckpointClient;
use tusk_proto::checkpoint::put_image_request::Part;
use tusk_proto::checkpoint::*;

fn ck_conf(mc: &MiniCluster, dir: &Path) -> CheckpointConfig {
    CheckpointConfig { namenode: mc.nn_addr.clone(), dir: dir.to_owned(), ..Default::default() }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()
}

fn uploads_left(mc: &MiniCluster) -> Vec<String> {
    names(&mc.name_dir().join("current")).into_iter().filter(|n| n.starts_with("fsimage.ckpt_")).collect()
}

/// Directories, empty files, renames, deletes and attribute changes: every kind of edit.
async fn churn(c: &Client, root: &str, n: usize) {
    for i in 0..n {
        c.mkdirs(&format!("{root}/d{i}/sub"), 0o755, true).await.unwrap();
        c.create_empty(&format!("{root}/d{i}/f"), false).await.unwrap();
        if i % 3 == 0 {
            c.rename(&format!("{root}/d{i}/f"), &format!("{root}/d{i}/g")).await.unwrap();
        }
        if i % 5 == 0 {
            c.delete(&format!("{root}/d{i}/sub"), true).await.unwrap();
        }
        if i % 7 == 0 {
            c.set_permission(&format!("{root}/d{i}"), 0o700).await.unwrap();
            c.set_times(&format!("{root}/d{i}"), 1_000_000 + i as i64, 2_000_000).await.unwrap();
        }
    }
}

fn raw_request<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("tusk-user", "root".parse().unwrap());
    r
}

async fn raw(mc: &MiniCluster) -> NamenodeCheckpointClient<tonic::transport::Channel> {
    NamenodeCheckpointClient::connect(format!("http://{}", mc.nn_addr)).await.unwrap()
}

/// Uploads `bytes` as the image at `txid` with the given trailer.
async fn put(mc: &MiniCluster, txid: u64, bytes: &[u8], total: u64, crc: u32) -> Result<u64, tonic::Status> {
    let mut parts = vec![Part::Header(PutImageHeader { cluster_id: mc.fsn().cluster_id(), txid })];
    parts.extend(bytes.chunks(100_000).map(|c| Part::Data(c.to_vec())));
    parts.push(Part::Trailer(PutImageTrailer { total_bytes: total, crc32c: crc }));
    let stream = tokio_stream::iter(parts.into_iter().map(|p| PutImageRequest { part: Some(p) }));
    raw(mc).await.put_image(raw_request(stream)).await.map(|r| r.into_inner().installed_txid)
}

/// Starts uploading `image` as the image at `txid` and sends only its first half; returns
/// once the namenode has begun writing it. Dropping the sender or aborting the task breaks
/// the upload off.
async fn half_upload(
    mc: &MiniCluster,
    txid: u64,
    image: &[u8],
) -> (
    tokio::task::JoinHandle<Result<tonic::Response<PutImageResponse>, tonic::Status>>,
    tokio::sync::mpsc::Sender<PutImageRequest>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let cluster_id = mc.fsn().cluster_id();
    let mut client = raw(mc).await;
    let call = tokio::spawn(async move { client.put_image(raw_request(ReceiverStream::new(rx))).await });
    tx.send(PutImageRequest { part: Some(Part::Header(PutImageHeader { cluster_id, txid })) }).await.unwrap();
    tx.send(PutImageRequest { part: Some(Part::Data(image[..image.len() / 2].to_vec())) }).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while uploads_left(mc).is_empty() {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (call, tx)
}

async fn ready(ck: &mut Checkpointer) -> Merged {
    match ck.merge().await.expect("merge") {
        Merge::Ready(m) => m,
        Merge::UpToDate(t) => panic!("nothing to merge at txid {t}"),
    }
}

async fn block_ids(c: &Client, path: &str) -> Vec<u64> {
    let locs = c.get_block_locations(path, 0, u64::MAX).await.unwrap();
    locs.blocks.iter().filter_map(|b| b.block.map(|b| b.block_id)).collect()
}

async fn wait_out_of_safe_mode(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.safe_mode(SafeModeAction::SafeModeGet).await.map(|(on, _)| on).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the namenode stays in safe mode");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_replays_only_edits_after_the_checkpoint_and_the_merge_equals_save_namespace() {
    let mut mc = MiniCluster::start(1).await;
    let c = mc.client("root").await;
    churn(&c, "/a", 150).await;
    write_file(&c, "/a/data", &pattern(300_000, 1), 1 << 20).await;
    let ck_dir = mc.tmp.path().join("ck");
    let mut ck = Checkpointer::open(ck_conf(&mc, &ck_dir), "root").unwrap();
    let t1 = mc.fsn().last_txid();
    match ck.checkpoint().await.unwrap() {
        Outcome::Done { txid, from_txid: 0, image_downloaded: true, .. } => assert_eq!(txid, t1),
        other => panic!("unexpected {other:?}"),
    }
    assert!(mc.name_dir().join("current").join(image_name(t1)).is_file());
    assert_eq!(mc.fsn().checkpoint_info().image.txid, t1);
    assert_eq!(mc.fsn().checkpoint_info().uncheckpointed_txns, 0);

    churn(&c, "/b", 40).await;
    let t2 = mc.fsn().last_txid();
    mc.restart_namenode().await;
    let s = mc.fsn().startup;
    assert_eq!((s.image_txid, s.edits_replayed, s.last_txid), (t1, t2 - t1, t2), "only the edits after it");
    let c = mc.client("root").await;
    wait_out_of_safe_mode(&c).await;
    assert!(c.file_info("/a/d3/g").await.unwrap().is_some() && c.file_info("/b/d38/f").await.unwrap().is_some());

    // The next checkpoint starts from the namespace it kept in memory: nothing to download
    // but the new edits.
    match ck.checkpoint().await.unwrap() {
        Outcome::Done { txid, from_txid, image_downloaded: false, segments_downloaded, .. } => {
            assert_eq!((txid, from_txid), (t2, t1));
            assert!(segments_downloaded >= 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(ck.checkpoint().await.unwrap(), Outcome::UpToDate { txid } if txid == t2));

    // The merged image is byte for byte what the namenode itself saves at that txid.
    let merged = std::fs::read(ck_dir.join("current").join(image_name(t2))).unwrap();
    c.safe_mode(SafeModeAction::SafeModeEnter).await.unwrap();
    assert_eq!(c.save_namespace().await.unwrap(), t2);
    let own = std::fs::read(mc.name_dir().join("current").join(image_name(t2))).unwrap();
    assert!(merged == own, "merged image ({} bytes) differs from -saveNamespace ({} bytes)", merged.len(), own.len());
    c.safe_mode(SafeModeAction::SafeModeLeave).await.unwrap();

    // dfsadmin -report's figures.
    c.mkdirs("/after", 0o755, false).await.unwrap();
    let st = c.fs_stats().await.unwrap();
    assert_eq!((st.image_txid, st.uncheckpointed_txns), (t2, 1));
    assert!(st.last_checkpoint_ms > 0);
    assert_eq!(read_all(&c, "/a/data").await, pattern(300_000, 1));
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn name_directory_stays_bounded_over_ten_checkpoints_under_load() {
    let mc = MiniCluster::start(0).await;
    let ck_dir = mc.tmp.path().join("ck");
    let mut ck = Checkpointer::open(ck_conf(&mc, &ck_dir), "root").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let c = mc.client("root").await;
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                c.mkdirs(&format!("/load/{}/{n}", n / 1000), 0o755, true).await.unwrap();
                n += 1;
            }
            n
        })
    };
    let current = mc.name_dir().join("current");
    let mut sizes = Vec::new();
    for round in 1..=10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Outcome::Done { txid, .. } = ck.checkpoint().await.unwrap() else { panic!("round {round}: no checkpoint") };
        let files = names(&current);
        let images = files.iter().filter(|n| n.starts_with("fsimage_")).count();
        let segments = files.iter().filter(|n| n.starts_with("edits_")).count();
        println!(
            "checkpoint {round}: txid {txid}, name dir {} bytes, {images} images, {segments} edit files",
            dir_bytes(&current)
        );
        assert!(images <= 2, "round {round}: {files:?}");
        // Finished segments after the older image (one per checkpoint) and the in-progress one.
        assert!(segments <= 3, "round {round}: {files:?}");
        assert!(names(&ck_dir.join("current")).iter().filter(|n| n.starts_with("fsimage_")).count() <= 2);
        sizes.push(dir_bytes(&current));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let created = load.await.unwrap();
    assert!(created > 100, "the load ran ({created} creates)");
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_transfers_and_bad_uploads_leave_the_namenode_on_its_image() {
    let mc = MiniCluster::start(0).await;
    let c = mc.client("root").await;
    churn(&c, "/x", 100).await;
    let ck_dir = mc.tmp.path().join("ck");
    let ck = Checkpointer::open(ck_conf(&mc, &ck_dir), "root").unwrap();
    let before = mc.fsn().checkpoint_info().image;

    // A download abandoned after its first chunk (a checkpointer killed while downloading).
    let mut s =
        raw(&mc).await.get_image(raw_request(GetImageRequest { txid: before.txid })).await.unwrap().into_inner();
    assert!(s.message().await.unwrap().is_some());
    drop(s);
    // ... and what such a checkpointer leaves in its own directory is cleared when it restarts.
    drop(ck);
    std::fs::write(ck_dir.join("current").join(format!("{}.download", image_name(before.txid))), b"half").unwrap();
    let mut ck = Checkpointer::open(ck_conf(&mc, &ck_dir), "root").unwrap();
    assert!(!names(&ck_dir.join("current")).iter().any(|n| n.ends_with(".download")));

    let m = ready(&mut ck).await;
    let image = std::fs::read(&m.path).unwrap();
    let (len, crc) = (image.len() as u64, crc32c(&image));

    // An upload broken off mid-stream (a checkpointer killed while uploading).
    let (call, tx) = half_upload(&mc, m.txid, &image).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    call.abort();
    drop(tx);
    while !uploads_left(&mc).is_empty() {
        assert!(Instant::now() < deadline, "an abandoned upload left {:?}", uploads_left(&mc));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mc.fsn().checkpoint_info().image, before);

    // Damaged in transit: the trailer's CRC does not match the bytes.
    let e = put(&mc, m.txid, &image, len, crc ^ 1).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("damaged"), "{}", e.message());
    // Damaged before it was sent: the transfer checks out, the image's own checksum does not.
    let mut bad = image.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    let e = put(&mc, m.txid, &bad, len, crc32c(&bad)).await.unwrap_err();
    assert!(e.message().contains("checksum mismatch"), "{}", e.message());
    // Not newer than the namenode's image, or beyond its edit log.
    let e = put(&mc, before.txid, &image, len, crc).await.unwrap_err();
    assert!(e.message().contains("not newer"), "{}", e.message());
    let e = put(&mc, mc.fsn().last_txid() + 10, &image, len, crc).await.unwrap_err();
    assert!(e.message().contains("beyond"), "{}", e.message());
    // In the middle of a segment: a restart from it could not find the next edit.
    let e = put(&mc, m.txid - 1, &image, len, crc).await.unwrap_err();
    assert!(e.message().contains("does not end an edit segment"), "{}", e.message());
    // Another cluster's image.
    let mut parts = vec![Part::Header(PutImageHeader { cluster_id: "CID-other".into(), txid: m.txid })];
    parts.push(Part::Trailer(PutImageTrailer { total_bytes: 0, crc32c: 0 }));
    let stream = tokio_stream::iter(parts.into_iter().map(|p| PutImageRequest { part: Some(p) }));
    let e = raw(&mc).await.put_image(raw_request(stream)).await.unwrap_err();
    assert!(e.message().contains("CID-other"), "{}", e.message());
    // Only the superuser may checkpoint.
    let mut r = tonic::Request::new(RollEditLogRequest {});
    r.metadata_mut().insert("tusk-user", "mallory".parse().unwrap());
    assert_eq!(raw(&mc).await.roll_edit_log(r).await.unwrap_err().code(), tonic::Code::PermissionDenied);

    assert_eq!(mc.fsn().checkpoint_info().image, before, "nothing was installed");
    assert!(uploads_left(&mc).is_empty());
    c.mkdirs("/still/serving", 0o755, true).await.unwrap();

    // The next checkpoint succeeds.
    let t = mc.fsn().last_txid();
    match ck.checkpoint().await.unwrap() {
        Outcome::Done { txid, .. } => assert_eq!(txid, t),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(mc.fsn().checkpoint_info().image.txid, t);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namenode_restarted_during_a_checkpoint_loses_nothing() {
    let mut mc = MiniCluster::start(1).await;
    let c = mc.client("root").await;
    write_file(&c, "/before", &pattern(200_000, 2), 1 << 20).await;
    churn(&c, "/p", 30).await;
    let ck_dir = mc.tmp.path().join("ck");
    let mut ck = Checkpointer::open(ck_conf(&mc, &ck_dir), "root").unwrap();
    let m = ready(&mut ck).await;
    // Edits after the roll, then the namenode restarts before the upload.
    write_file(&c, "/between", &pattern(200_000, 3), 1 << 20).await;
    churn(&c, "/q", 30).await;
    mc.restart_namenode().await;
    wait_out_of_safe_mode(&mc.client("root").await).await;
    let t = m.txid;
    match ck.upload(m).await.unwrap() {
        Outcome::Done { txid, .. } => assert_eq!(txid, t),
        other => panic!("unexpected {other:?}"),
    }
    // A restart in the middle of an upload: the upload fails, the next start clears it.
    let m2 = {
        let c = mc.client("root").await;
        churn(&c, "/r", 20).await;
        ready(&mut ck).await
    };
    let image = std::fs::read(&m2.path).unwrap();
    let (call, tx) = half_upload(&mc, m2.txid, &image).await;
    mc.restart_namenode().await;
    drop(tx);
    assert!(call.await.unwrap().is_err(), "an upload cut by a restart fails");
    wait_out_of_safe_mode(&mc.client("root").await).await;
    assert!(uploads_left(&mc).is_empty());
    assert_eq!(mc.fsn().checkpoint_info().image.txid, t);

    let c = mc.client("root").await;
    write_file(&c, "/after", &pattern(200_000, 4), 1 << 20).await;
    mc.restart_namenode().await;
    assert_eq!(mc.fsn().startup.image_txid, t);
    let c = mc.client("root").await;
    wait_out_of_safe_mode(&c).await;
    for (p, seed) in [("/before", 2), ("/between", 3), ("/after", 4)] {
        assert_eq!(read_all(&c, p).await, pattern(200_000, seed), "{p}");
    }
    for p in ["/p/d29/sub", "/q/d29/sub", "/r/d19/sub"] {
        assert!(c.file_info(p).await.unwrap().is_some(), "{p}");
    }
    assert!(matches!(ck.checkpoint().await.unwrap(), Outcome::Done { .. }));
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_name_directory_is_rebuilt_from_the_checkpointer() {
    let mut mc = MiniCluster::start(3).await;
    let c = mc.client("root").await;
    let kept: Vec<(String, Vec<u8>)> =
        (0..4).map(|i| (format!("/kept/f{i}"), pattern(1_500_000 + i * 1000, 10 + i as u64))).collect();
    c.mkdirs("/kept", 0o755, false).await.unwrap();
    for (p, d) in &kept {
        write_file(&c, p, d, 1 << 20).await;
    }
    churn(&c, "/kept/tree", 20).await;
    let ck_dir = mc.tmp.path().join("ck");
    let mut ck = Checkpointer::open(ck_conf(&mc, &ck_dir), "root").unwrap();
    let Outcome::Done { txid: t, .. } = ck.checkpoint().await.unwrap() else { panic!("no checkpoint") };
    // Written after the last checkpoint: lost with the name directory.
    write_file(&c, "/lost", &pattern(1_200_000, 99), 1 << 20).await;
    let lost_blocks: Vec<u64> = block_ids(&c, "/lost").await;
    drop(c);

    mc.stop_namenode().await;
    let name: PathBuf = mc.name_dir();
    std::fs::remove_dir_all(&name).unwrap();
    let (cid, txid) =
        tusk_namenode::storage::NameStorage::import_checkpoint(std::slice::from_ref(&name), &ck_dir).expect("import");
    assert_eq!(txid, t);
    // A second import is refused: the directory now holds a file system.
    assert!(tusk_namenode::storage::NameStorage::import_checkpoint(std::slice::from_ref(&name), &ck_dir)
        .unwrap_err()
        .to_string()
        .contains("already holds"));
    mc.start_namenode().await;
    assert_eq!(mc.fsn().cluster_id(), cid);
    assert_eq!(mc.fsn().startup.image_txid, t);
    mc.wait_live(3).await;
    let c = mc.client("root").await;
    wait_out_of_safe_mode(&c).await;
    for (p, d) in &kept {
        assert_eq!(&read_all(&c, p).await, d, "{p}");
        let locs = c.get_block_locations(p, 0, u64::MAX).await.unwrap();
        assert!(locs.blocks.iter().all(|b| b.locations.len() == 3), "{p}: every replica reported: {locs:?}");
    }
    assert!(c.file_info("/kept/tree/d19/f").await.unwrap().is_some());
    assert!(c.file_info("/lost").await.unwrap().is_none());
    // The datanodes drop the blocks nobody owns any more ...
    let deadline = Instant::now() + Duration::from_secs(30);
    while mc.datanodes.iter().flatten().any(|d| lost_blocks.iter().any(|b| d.block_file(*b).is_some())) {
        assert!(Instant::now() < deadline, "replicas of /lost remain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and new blocks never reuse their ids.
    write_file(&c, "/new", &pattern(1_100_000, 7), 1 << 20).await;
    let new_ids: Vec<u64> = block_ids(&c, "/new").await;
    assert!(new_ids.iter().all(|id| id > lost_blocks.iter().max().unwrap()), "{new_ids:?} vs {lost_blocks:?}");
    assert_eq!(read_all(&c, "/new").await, pattern(1_100_000, 7));
    mc.shutdown().await;
}
