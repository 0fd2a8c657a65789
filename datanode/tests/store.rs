//! The replica store on real files: the rbw -> finalized path, restart through the index,
//! and reconciling the index with the files.

use std::sync::Arc;
use tusk_datanode::replica_index::ReplicaState;
use tusk_datanode::store::Store;
use tusk_proto::data_transfer::chunk_checksums;

fn write_replica(store: &Arc<Store>, block_id: u64, genstamp: u64, data: &[u8]) {
    let mut rbw = store.create_rbw(block_id, genstamp).unwrap();
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

#[test]
fn unfinished_replicas_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_owned()];
    {
        let store = Arc::new(Store::open(&dirs, false).unwrap());
        // Dropped without finalize: removed at once.
        let mut rbw = store.create_rbw(5, 1).unwrap();
        rbw.append(&[1u8; 512], &{
            let mut s = Vec::new();
            chunk_checksums(&[1u8; 512], &mut s);
            s
        })
        .unwrap();
        assert!(dir.path().join("current/rbw/blk_5").exists());
        assert!(store.create_rbw(5, 1).is_err(), "one writer per block");
        drop(rbw);
        assert!(!dir.path().join("current/rbw/blk_5").exists());
        assert!(store.get(5).is_none());
        // Data after a partial chunk is refused.
        let mut rbw = store.create_rbw(6, 1).unwrap();
        let mut s = Vec::new();
        chunk_checksums(&[1u8; 100], &mut s);
        rbw.append(&[1u8; 100], &s).unwrap();
        assert!(rbw.append(&[1u8; 100], &s).is_err());
    }
    // What a crash leaves in rbw is removed at start.
    std::fs::write(dir.path().join("current/rbw/blk_9"), b"partial").unwrap();
    std::fs::write(dir.path().join("current/rbw/blk_9_1.meta"), b"TUSKMETA").unwrap();
    let store = Store::open(&dirs, false).unwrap();
    assert_eq!(store.reconcile_stats().rbw_removed, 1);
    assert!(std::fs::read_dir(dir.path().join("current/rbw")).unwrap().next().is_none());
    assert!(store.get(9).is_none());
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
