//! The replica store on real files: the rbw -> finalized path, restart through the index,
//! and reconciling the index with the files.

use std::sync::Arc;
use tusk_datanode::replica_index::ReplicaState;
use tusk_datanode::store::{Store, Wait};
use tusk_proto::data_transfer::chunk_checksums;

fn write_replica(store: &Arc<Store>, block_id: u64, genstamp: u64, data: &[u8]) {
    let mut rbw = store.create_rbw(block_id, genstamp, true).unwrap();
    for piece in data.chunks(64 * 1024) {
        let mut sums = Vec::new();
        chunk_checksums(piece, &mut sums);
        rbw.append(piece, &sums).unwrap();
    }
    assert_eq!(store.get(block_id).unwrap().state, ReplicaState::Rbw);
    let info = rbw.finalize().unwrap();
    assert_eq!(info.len, data.len() as u64);
}

fn read_all(store: &Store, block_id: u64) -> Vec<u8> {
    let mut r = store.open_reader(block_id).unwrap();
    let (mut data, mut sums) = (Vec::new(), Vec::new());
    let len = r.info.len as usize;
    r.read(0, len, &mut data, &mut sums).unwrap();
    tusk_proto::data_transfer::verify_checksums(&data, &sums).unwrap();
    data
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)).collect()
}

#[test]
fn replica_survives_restart_and_index_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_owned()];
    let a = data(200_000, 3);
    let b = data(513, 5);
    let uuid;
    {
        let store = Arc::new(Store::open(&dirs, true).unwrap());
        uuid = store.uuid();
        write_replica(&store, 1, 10, &a);
        write_replica(&store, 2 << 16, 11, &b);
        assert!(store.block_file(1).unwrap().starts_with(dir.path().join("current/finalized/subdir0/subdir0")));
        assert!(store.block_file(2 << 16).unwrap().starts_with(dir.path().join("current/finalized/subdir2/subdir0")));
        assert_eq!(store.dfs_used(), 200_513);
        store.flush().unwrap();
    }
    // Reopen: found through the index, nothing to fix.
    {
        let store = Store::open(&dirs, true).unwrap();
        assert_eq!(store.uuid(), uuid);
        let stats = store.reconcile_stats();
        assert_eq!((stats.replicas, stats.index_entries, stats.added_to_index, stats.removed_from_index), (2, 2, 0, 0));
        assert_eq!(read_all(&store, 1), a);
        assert_eq!(read_all(&store, 2 << 16), b);
    }
    // Without the index: rebuilt from the files.
    std::fs::remove_dir_all(dir.path().join("current/replica-index")).unwrap();
    {
        let store = Store::open(&dirs, true).unwrap();
        let stats = store.reconcile_stats();
        assert_eq!((stats.replicas, stats.index_entries, stats.added_to_index), (2, 0, 2));
        assert_eq!(store.get(1).unwrap().genstamp, 10);
        assert_eq!(read_all(&store, 1), a);
        std::fs::remove_file(store.block_file(1).unwrap()).unwrap();
    }
    // A block file gone: its index entry goes too.
    {
        let store = Store::open(&dirs, true).unwrap();
        let stats = store.reconcile_stats();
        assert_eq!((stats.replicas, stats.removed_from_index), (1, 1));
        assert!(store.get(1).is_none());
        assert!(store.open_reader(1).is_err());
    }
    let store = Store::open(&dirs, true).unwrap();
    assert_eq!(store.reconcile_stats().removed_from_index, 0);
}

fn sums(data: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    chunk_checksums(data, &mut s);
    s
}

#[test]
fn unfinished_replicas_stay_for_recovery_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_owned()];
    let d = data(1500, 9);
    {
        let store = Arc::new(Store::open(&dirs, false).unwrap());
        // A client's write whose writer went away: kept, with what was written.
        let mut rbw = store.create_rbw(5, 1, true).unwrap();
        rbw.append(&d[..1024], &sums(&d[..1024])).unwrap();
        assert!(store.create_rbw(5, 1, true).is_err(), "one writer per block");
        drop(rbw);
        let info = store.get(5).unwrap();
        assert_eq!((info.state, info.len, info.genstamp), (ReplicaState::Rbw, 1024, 1));
        // A re-replication's is removed.
        let mut rbw = store.create_rbw(6, 1, false).unwrap();
        rbw.append(&d[..512], &sums(&d[..512])).unwrap();
        drop(rbw);
        assert!(store.get(6).is_none());
        assert!(!dir.path().join("current/rbw/blk_6").exists());
        // Data after a partial chunk is refused; the partial chunk itself may be rewritten.
        let mut rbw = store.create_rbw(7, 1, true).unwrap();
        rbw.append(&d[..100], &sums(&d[..100])).unwrap();
        assert!(rbw.append(&d[100..200], &sums(&d[100..200])).is_err());
        rbw.write_at(0, &d[..700], &sums(&d[..700])).unwrap();
        assert_eq!(rbw.len(), 700);
        assert!(rbw.write_at(512, &d[512..700], &sums(&d[512..700])).is_ok(), "the partial chunk again");
        assert!(rbw.write_at(0, &d[..10], &sums(&d[..10])).is_err(), "not a whole chunk back");
        // Readable while being written, up to what was written.
        assert_eq!(read_all(&store, 7), d[..700]);
    }
    // A crash tore the end of replica 5: data beyond its checksums is cut at start.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join("current/rbw/blk_5")).unwrap();
        f.write_all(&[0xAA; 300]).unwrap();
    }
    std::fs::write(dir.path().join("current/rbw/blk_9"), b"partial").unwrap();
    std::fs::write(dir.path().join("current/rbw/blk_9_1.meta"), b"TUSKMETA").unwrap();
    let store = Arc::new(Store::open(&dirs, false).unwrap());
    assert_eq!(store.reconcile_stats().rbw_kept, 2);
    assert_eq!(store.reconcile_stats().rbw_removed, 1, "a replica with a broken meta header is junk");
    assert!(store.get(9).is_none());
    assert_eq!(store.get(5).unwrap().len, 1024);
    assert_eq!(store.get(7).unwrap().len, 700);
    assert_eq!(read_all(&store, 5), d[..1024]);
}

#[test]
fn pipeline_recovery_cuts_back_and_restamps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&[dir.path().to_owned()], false).unwrap());
    let d = data(3000, 11);
    let mut rbw = store.create_rbw(3, 1, true).unwrap();
    rbw.append(&d[..2048], &sums(&d[..2048])).unwrap();
    drop(rbw);
    assert!(store.recover_rbw(3, 1, 2, 2049).is_err(), "more than it has");
    assert!(store.recover_rbw(3, 2, 3, 1000).is_err(), "a stamp older than the client's");
    let mut rbw = store.recover_rbw(3, 1, 2, 1000).unwrap();
    assert_eq!(rbw.len(), 1000);
    assert!(dir.path().join("current/rbw/blk_3_2.meta").exists());
    assert!(!dir.path().join("current/rbw/blk_3_1.meta").exists());
    // The client re-sends from the start of the partial chunk.
    rbw.write_at(512, &d[512..3000], &sums(&d[512..3000])).unwrap();
    let info = rbw.finalize().unwrap();
    assert_eq!((info.len, info.genstamp), (3000, 2));
    assert_eq!(read_all(&store, 3), d);
}

#[test]
fn block_recovery_and_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&[dir.path().to_owned()], false).unwrap());
    let d = data(2000, 13);
    let mut rbw = store.create_rbw(4, 10, true).unwrap();
    rbw.append(&d[..1500], &sums(&d[..1500])).unwrap();
    // A live writer is fenced off by the recovery.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let refused = rbw.append(&[0u8; 0], &[]).is_err();
        drop(rbw);
        refused
    });
    let info = store.init_recovery(4, 10, 12).unwrap();
    assert!(writer.join().unwrap(), "the old writer's next write fails");
    assert_eq!((info.len, info.state), (1500, ReplicaState::Rbw));
    assert!(store.init_recovery(4, 10, 11).is_err(), "an older recovery id");
    assert!(store.update_recovery(4, 13, 1200).is_err(), "not this recovery");
    let done = store.update_recovery(4, 12, 1200).unwrap();
    assert_eq!((done.len, done.genstamp, done.state), (1200, 12, ReplicaState::Finalized));
    assert_eq!(read_all(&store, 4), d[..1200]);
    assert_eq!(store.take_pending().received.len(), 1, "the recovered replica is reported");
    // Append reopens it under a new stamp; the partial chunk goes again with the new bytes.
    assert!(store.reopen_for_append(4, 11, 13, 1200).is_err(), "wrong stamp");
    let mut rbw = store.reopen_for_append(4, 12, 13, 1200).unwrap();
    rbw.write_at(1024, &d[1024..2000], &sums(&d[1024..2000])).unwrap();
    let info = rbw.finalize().unwrap();
    assert_eq!((info.len, info.genstamp), (2000, 13));
    assert_eq!(read_all(&store, 4), d);
}

#[test]
fn delete_removes_files_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_owned()];
    let store = Arc::new(Store::open(&dirs, false).unwrap());
    write_replica(&store, 3, 1, &data(1000, 7));
    let path = store.block_file(3).unwrap();
    let _ = store.take_pending();
    assert!(store.delete(3).unwrap());
    assert!(!path.exists());
    assert!(!store.delete(3).unwrap());
    assert_eq!(store.take_pending().deleted, vec![3]);
    drop(store);
    let store = Store::open(&dirs, false).unwrap();
    assert!(store.get(3).is_none());
    assert_eq!(store.reconcile_stats().removed_from_index, 0);
}

#[test]
fn volumes_round_robin_and_foreign_dirs_refused() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let dirs = vec![d1.path().to_owned(), d2.path().to_owned()];
    {
        let store = Arc::new(Store::open(&dirs, false).unwrap());
        for id in 0..4u64 {
            write_replica(&store, id, 1, &data(100, 1));
        }
        let on_first = (0..4).filter(|id| store.block_file(*id).unwrap().starts_with(d1.path())).count();
        assert_eq!(on_first, 2);
        store.set_cluster_id("CID-a").unwrap();
    }
    // Same ids and cluster in both VERSION files; a volume of another cluster is refused.
    let other = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&[other.path().to_owned()], false).unwrap();
        store.set_cluster_id("CID-b").unwrap();
    }
    let err = match Store::open(&[d1.path().to_owned(), other.path().to_owned()], false) {
        Ok(_) => panic!("foreign volume accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("belongs to another datanode"), "{err}");
    // Same datanode id but another cluster.
    let third = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(third.path().join("current")).unwrap();
    let uuid = Store::open(&dirs, false).unwrap().uuid();
    tusk_common::durable::write_properties(
        &third.path().join("current/VERSION"),
        &[
            ("datanodeUuid", uuid),
            ("clusterID", "CID-c".into()),
            ("storageType", "DATA_NODE".into()),
            ("layoutVersion", "1".into()),
        ],
    )
    .unwrap();
    let err = match Store::open(&[d1.path().to_owned(), third.path().to_owned()], false) {
        Ok(_) => panic!("volume of another cluster accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("belongs to another cluster") && err.contains("CID-c"), "{err}");
    let store = Store::open(&dirs, false).unwrap();
    assert_eq!(store.cluster_id(), "CID-a");
    assert_eq!(store.report().len(), 4);
}

/// Opening without waiting for the disk gives what the blocking open gives for a replica in
/// the kernel's caches, and defers (`None`) rather than fails on anything else, leaving the
/// error to the blocking open.
#[test]
fn a_cached_open_reads_what_a_blocking_open_reads_and_defers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&[dir.path().to_owned()], false).unwrap());
    let small = data(1000, 7);
    write_replica(&store, 1, 10, &small);
    write_replica(&store, 2, 10, &data(3000, 9));

    let mut r = store.open_reader_with(1, Wait::Never).unwrap().expect("a replica just written is in the caches");
    let (mut got, mut sums) = (Vec::new(), Vec::new());
    r.read(0, small.len(), &mut got, &mut sums).unwrap();
    tusk_proto::data_transfer::verify_checksums(&got, &sums).unwrap();
    assert_eq!(got, small);
    let (info, data_file, _meta) = store.open_short_circuit(1, 10, Wait::Never).unwrap().expect("cached");
    assert_eq!((info.len, data_file.metadata().unwrap().len()), (1000, 1000));

    // Refusals that need no disk are the same either way.
    assert!(store.open_reader_with(99, Wait::Never).is_err());
    assert!(store.open_short_circuit(1, 11, Wait::Never).is_err(), "a newer genstamp than the replica's");

    // A file gone under the store: the cached open defers, the blocking one says why.
    std::fs::remove_file(store.block_file(2).unwrap()).unwrap();
    assert!(store.open_reader_with(2, Wait::Never).unwrap().is_none());
    assert!(store.open_short_circuit(2, 10, Wait::Never).unwrap().is_none());
    let err = store.open_reader(2).err().expect("the blocking open fails").to_string();
    assert!(err.contains("cannot open"), "{err}");
}

/// Reading a replica leaves its access time alone (`O_NOATIME`): under `relatime`, the first
/// read after a write would otherwise dirty the inode, a journal write for every small file.
#[test]
fn reads_leave_the_replicas_access_time_alone() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&[dir.path().to_owned()], false).unwrap());
    write_replica(&store, 1, 10, &data(4000, 3));
    let path = store.block_file(1).unwrap();
    // An access time older than the modification time: relatime would update it on a read.
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_accessed(old))
        .unwrap();
    let before = std::fs::metadata(&path).unwrap().accessed().unwrap();
    assert_eq!(read_all(&store, 1), data(4000, 3));
    let mut cached = store.open_reader_with(1, Wait::Never).unwrap().expect("cached");
    let (mut got, mut sums) = (Vec::new(), Vec::new());
    cached.read(0, 4000, &mut got, &mut sums).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().accessed().unwrap(), before);
}
