//! The replica store: every replica this datanode holds, in memory, in the RocksDB index and
//! as files on the volumes, kept in step.
//!
//! A replica is born in `rbw/` ([`Store::create_rbw`]), grows by checksummed chunks
//! ([`RbwReplica::write_at`]), and is finalized by renaming its two files into
//! `finalized/subdirN/subdirM/` and recording it in the index ([`RbwReplica::finalize`]). An
//! `RbwReplica` of a client write dropped before it is finalized (the writer or a pipeline
//! neighbour went away) stays in `rbw/` as it is, for pipeline or lease recovery
//! (`recovery`); one of a re-replication is removed. At start, [`Store::open`] reconciles
//! the index with the files and keeps what `rbw/` holds up to its last good chunk, so the
//! first block report is right whatever a crash left behind.

mod group_sync;
mod recovery;

use crate::error::DatanodeError;
use crate::meta;
use crate::replica_index::{Entry, ReplicaIndex, ReplicaInfo, ReplicaState};
use crate::volume::{self, ReplicaFile, Space, VersionInfo, Volume};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tusk_proto::data_transfer::BYTES_PER_CHECKSUM;

/// A volume with less free space than this gets no new replicas.
const MIN_FREE_BYTES: u64 = 16 << 20;
/// Incremental reports kept while the namenode is away; past this a full report replaces them.
const MAX_PENDING_REPORTS: usize = 100_000;
/// Buffer of the meta file writer and of replica readers.
const META_WRITE_BUFFER: usize = 64 << 10;
const READ_BUFFER: usize = 1 << 20;

/// Incremental block reports waiting to go to the namenode.
#[derive(Debug, Default)]
pub struct PendingReports {
    pub received: Vec<(u64, ReplicaInfo)>,
    pub deleted: Vec<u64>,
    /// Replicas found corrupt here (by the block scanner), to report as bad blocks.
    pub bad: Vec<(u64, ReplicaInfo)>,
    /// Too much piled up: send a full report instead.
    pub overflowed: bool,
}

/// What [`Store::open`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileStats {
    pub replicas: usize,
    pub index_entries: usize,
    pub added_to_index: usize,
    pub removed_from_index: usize,
    pub rbw_removed: usize,
    /// Unfinished replicas kept from `rbw/` (for recovery).
    pub rbw_kept: usize,
}

/// Raised by a recovery taking over a replica from its writer.
#[derive(Default)]
pub struct Fence {
    raised: AtomicBool,
    /// Wakes the writer's connection so that it ends without waiting for its peer.
    pub wake: Notify,
}

impl Fence {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.wake.notify_one();
    }
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }
}

pub struct Store {
    volumes: Vec<Volume>,
    /// One per volume, in the same order: finalizing replicas share its flushes.
    syncs: Vec<group_sync::GroupSync<group_sync::SyncFs>>,
    index: ReplicaIndex,
    replicas: Mutex<HashMap<u64, ReplicaInfo>>,
    identity: Mutex<VersionInfo>,
    next_volume: AtomicUsize,
    sync_on_close: bool,
    pending: Mutex<PendingReports>,
    /// Replicas found corrupt: never served again, reported, deleted when the namenode says.
    bad: Mutex<HashSet<u64>>,
    /// Volumes taken out of service, with why.
    failed: Mutex<HashMap<u16, String>>,
    /// Replicas held open by a writer, each with its fence: raised, the writer's next packet
    /// fails and its connection ends (a recovery took the replica over).
    writers: Mutex<HashMap<u64, Arc<Fence>>>,
    /// Block recoveries in progress: block id -> recovery id. Older ids are refused.
    recoveries: Mutex<HashMap<u64, u64>>,
    /// Woken when a report is pending.
    pub report_ready: Notify,
    stats: ReconcileStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the store down with it; the data is plain values.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Opens the volumes: checks every one is writable, checks their VERSION files agree
    /// (one datanode, one cluster), formats new ones, opens the index and reconciles it with
    /// the files. Blocking.
    pub fn open(dirs: &[PathBuf], sync_on_close: bool) -> Result<Store, DatanodeError> {
        if dirs.is_empty() || dirs.len() > u16::MAX as usize {
            return Err(DatanodeError::Invalid(format!("{} data directories configured", dirs.len())));
        }
        let volumes: Vec<Volume> = dirs.iter().enumerate().map(|(i, d)| Volume::new(i as u16, d.clone())).collect();
        // Check everything before writing anything, so a bad directory changes nothing.
        for v in &volumes {
            v.check_writable()?;
        }
        let versions = volumes.iter().map(|v| v.read_version()).collect::<Result<Vec<_>, _>>()?;
        let mut identity: Option<(PathBuf, VersionInfo)> = None;
        for (v, ver) in volumes.iter().zip(&versions) {
            let Some(ver) = ver else { continue };
            let Some((first_dir, first)) = &mut identity else {
                identity = Some((v.dir.clone(), ver.clone()));
                continue;
            };
            if ver.datanode_uuid != first.datanode_uuid {
                return Err(DatanodeError::ForeignDir {
                    dir: v.dir.clone(),
                    what: "datanode",
                    detail: format!(
                        "datanodeUuid {} differs from {} in {}",
                        ver.datanode_uuid,
                        first.datanode_uuid,
                        first_dir.display()
                    ),
                });
            }
            if !ver.cluster_id.is_empty() {
                if first.cluster_id.is_empty() {
                    first.cluster_id = ver.cluster_id.clone();
                    *first_dir = v.dir.clone();
                } else if ver.cluster_id != first.cluster_id {
                    return Err(DatanodeError::ForeignDir {
                        dir: v.dir.clone(),
                        what: "cluster",
                        detail: format!(
                            "clusterID {} differs from {} in {}",
                            ver.cluster_id,
                            first.cluster_id,
                            first_dir.display()
                        ),
                    });
                }
            }
        }
        let identity = identity
            .map(|(_, v)| v)
            .unwrap_or_else(|| VersionInfo { datanode_uuid: volume::new_uuid(), cluster_id: String::new() });
        for (v, ver) in volumes.iter().zip(&versions) {
            if ver.as_ref() != Some(&identity) {
                v.write_version(&identity)?;
            }
        }
        let index = ReplicaIndex::open(&volumes[0].current().join("replica-index"))?;
        let syncs = volumes
            .iter()
            .map(|v| {
                group_sync::SyncFs::open(&v.dir)
                    .map(group_sync::GroupSync::new)
                    .map_err(DatanodeError::io("cannot open", &v.dir))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut store = Store {
            volumes,
            syncs,
            index,
            replicas: Mutex::new(HashMap::new()),
            identity: Mutex::new(identity),
            next_volume: AtomicUsize::new(0),
            sync_on_close,
            pending: Mutex::new(PendingReports::default()),
            bad: Mutex::new(HashSet::new()),
            failed: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
            recoveries: Mutex::new(HashMap::new()),
            report_ready: Notify::new(),
            stats: ReconcileStats::default(),
        };
        store.stats = store.reconcile()?;
        tracing::info!(
            replicas = store.stats.replicas,
            index_entries = store.stats.index_entries,
            added = store.stats.added_to_index,
            removed = store.stats.removed_from_index,
            rbw_removed = store.stats.rbw_removed,
            rbw_kept = store.stats.rbw_kept,
            "replica store loaded"
        );
        Ok(store)
    }

    /// Loads the index, scans the finalized files of every volume, makes the index match
    /// the files, and keeps the unfinished replicas of `rbw/` cut to their last good chunk.
    fn reconcile(&self) -> Result<ReconcileStats, DatanodeError> {
        let mut stats = ReconcileStats::default();
        let mut found: HashMap<u64, ReplicaInfo> = HashMap::new();
        let mut unfinished: Vec<(u64, ReplicaInfo)> = Vec::new();
        for v in &self.volumes {
            let (kept, removed) = recovery::load_rbw(v)?;
            stats.rbw_removed += removed;
            unfinished.extend(kept);
            for (id, info) in scan_finalized(v)? {
                match found.get(&id) {
                    Some(other) if other.genstamp >= info.genstamp => {
                        tracing::warn!(
                            block_id = id,
                            "replica found on two volumes; keeping genstamp {}",
                            other.genstamp
                        )
                    }
                    _ => {
                        found.insert(id, info);
                    }
                }
            }
        }
        let mut indexed: HashMap<u64, ReplicaInfo> = HashMap::new();
        let mut deletes: Vec<Vec<u8>> = Vec::new();
        for entry in self.index.load()? {
            stats.index_entries += 1;
            match entry {
                Entry::Good(id, info) => {
                    indexed.insert(id, info);
                }
                Entry::Bad(key, reason) => {
                    tracing::warn!(index = %self.index.path().display(), "dropping bad replica index entry: {reason}");
                    deletes.push(key);
                }
            }
        }
        let puts: Vec<(u64, ReplicaInfo)> =
            found.iter().filter(|(id, info)| indexed.get(id) != Some(info)).map(|(id, info)| (*id, *info)).collect();
        for id in indexed.keys().filter(|id| !found.contains_key(id)) {
            tracing::warn!(block_id = id, "replica in the index has no files; removing it from the index");
            deletes.push(id.to_be_bytes().to_vec());
        }
        stats.added_to_index = puts.len();
        stats.removed_from_index = deletes.len();
        if !puts.is_empty() || !deletes.is_empty() {
            self.index.apply(&puts, &deletes)?;
        }
        stats.replicas = found.len();
        for (id, info) in unfinished {
            if found.contains_key(&id) {
                // Finalized elsewhere: the unfinished copy is stale.
                if let Ok(v) = self.volume(info.volume) {
                    let _ = fs::remove_file(v.rbw_block(id));
                    let _ = fs::remove_file(v.rbw_meta(id, info.genstamp));
                }
                stats.rbw_removed += 1;
                continue;
            }
            stats.rbw_kept += 1;
            found.insert(id, info);
        }
        *lock(&self.replicas) = found;
        Ok(stats)
    }

    pub fn reconcile_stats(&self) -> ReconcileStats {
        self.stats
    }

    pub fn uuid(&self) -> String {
        lock(&self.identity).datanode_uuid.clone()
    }

    /// Empty until the first registration.
    pub fn cluster_id(&self) -> String {
        lock(&self.identity).cluster_id.clone()
    }

    /// Records the namenode's cluster id in every volume's VERSION (first registration).
    pub fn set_cluster_id(&self, cluster_id: &str) -> Result<(), DatanodeError> {
        let mut ident = lock(&self.identity).clone();
        ident.cluster_id = cluster_id.to_owned();
        for v in &self.volumes {
            v.write_version(&ident)?;
        }
        *lock(&self.identity) = ident;
        Ok(())
    }

    pub fn volumes(&self) -> &[Volume] {
        &self.volumes
    }

    fn volume(&self, index: u16) -> Result<&Volume, DatanodeError> {
        self.volumes.get(index as usize).ok_or_else(|| DatanodeError::Invalid(format!("volume {index} does not exist")))
    }

    /// Makes everything written to the volume before the call durable, sharing one flush of
    /// its file system with every replica finalizing there at the same time. Blocking.
    fn sync_volume(&self, index: u16) -> Result<(), DatanodeError> {
        let (Some(v), Some(sync)) = (self.volumes.get(index as usize), self.syncs.get(index as usize)) else {
            return Err(DatanodeError::Invalid(format!("volume {index} does not exist")));
        };
        metrics::counter!("datanode_replica_syncs_total").increment(1);
        sync.sync().map_err(DatanodeError::io("cannot sync the file system of", &v.dir))
    }

    pub fn get(&self, block_id: u64) -> Option<ReplicaInfo> {
        lock(&self.replicas).get(&block_id).copied()
    }

    /// Every replica (finalized and being written), for a full block report.
    pub fn report(&self) -> Vec<(u64, ReplicaInfo)> {
        lock(&self.replicas).iter().map(|(id, info)| (*id, *info)).collect()
    }

    /// Bytes held by replicas.
    pub fn dfs_used(&self) -> u64 {
        lock(&self.replicas).values().map(|r| r.len).sum()
    }

    /// Capacity and free space summed over the volumes; also the number of failed volumes.
    pub fn space(&self) -> (Space, u32) {
        let mut total = Space::default();
        let mut failed = 0;
        let out = lock(&self.failed).clone();
        for v in &self.volumes {
            if out.contains_key(&v.index) {
                failed += 1;
                continue;
            }
            match v.space() {
                Ok(s) => {
                    total.capacity += s.capacity;
                    total.available += s.available;
                }
                Err(e) => {
                    tracing::warn!(dir = %v.dir.display(), "cannot stat volume: {e}");
                    failed += 1;
                }
            }
        }
        (total, failed)
    }

    /// Path of the finalized block file of a replica.
    pub fn block_file(&self, block_id: u64) -> Option<PathBuf> {
        let info = self.get(block_id)?;
        if info.state != ReplicaState::Finalized {
            return None;
        }
        Some(self.volume(info.volume).ok()?.finalized_block(block_id))
    }

    /// Round-robin over the volumes with room.
    fn choose_volume(&self, block_id: u64) -> Result<u16, DatanodeError> {
        let n = self.volumes.len();
        let start = self.next_volume.fetch_add(1, Ordering::Relaxed);
        let out = lock(&self.failed).clone();
        for i in 0..n {
            let v = &self.volumes[(start + i) % n];
            if out.contains_key(&v.index) {
                continue;
            }
            match v.space() {
                Ok(s) if s.available >= MIN_FREE_BYTES => return Ok(v.index),
                Ok(_) => {}
                Err(e) => tracing::warn!(dir = %v.dir.display(), "cannot stat volume: {e}"),
            }
        }
        Err(DatanodeError::NoSpace { block_id })
    }

    /// Starts a new replica in `rbw/`. `keep`: an unfinished replica stays when the writer
    /// goes away (client writes), else it is removed (re-replication). An idle unfinished
    /// replica with an older stamp is replaced. Blocking.
    pub fn create_rbw(self: &Arc<Self>, block_id: u64, genstamp: u64, keep: bool) -> Result<RbwReplica, DatanodeError> {
        let volume = self.choose_volume(block_id)?;
        let fence = Arc::new(Fence::default());
        {
            let mut replicas = lock(&self.replicas);
            let mut writers = lock(&self.writers);
            if let Some(old) = replicas.get(&block_id).copied() {
                let stale =
                    old.state == ReplicaState::Rbw && old.genstamp < genstamp && !writers.contains_key(&block_id);
                if !stale {
                    return Err(DatanodeError::ReplicaExists { block_id });
                }
                let v = self.volume(old.volume)?;
                let _ = fs::remove_file(v.rbw_block(block_id));
                let _ = fs::remove_file(v.rbw_meta(block_id, old.genstamp));
                tracing::info!(block_id, old_genstamp = old.genstamp, "replacing a stale unfinished replica");
            }
            replicas.insert(block_id, ReplicaInfo { genstamp, len: 0, state: ReplicaState::Rbw, volume });
            writers.insert(block_id, Arc::clone(&fence));
        }
        // From here the RbwReplica owns the entry: dropping it on an error cleans up.
        let mut rbw = RbwReplica::new(Arc::clone(self), block_id, genstamp, volume, 0, fence);
        let v = self.volume(volume)?;
        let (data_path, meta_path) = (v.rbw_block(block_id), v.rbw_meta(block_id, genstamp));
        let create = |p: &Path| OpenOptions::new().write(true).create_new(true).open(p);
        rbw.data = Some(create(&data_path).map_err(DatanodeError::io("cannot create", &data_path))?);
        let mut meta = BufWriter::with_capacity(
            META_WRITE_BUFFER,
            create(&meta_path).map_err(DatanodeError::io("cannot create", &meta_path))?,
        );
        meta.write_all(&meta::encode_header()).map_err(DatanodeError::io("cannot write", &meta_path))?;
        meta.flush().map_err(DatanodeError::io("cannot write", &meta_path))?;
        rbw.meta = Some(meta);
        rbw.keep = keep;
        Ok(rbw)
    }

    /// Checks every volume in service: its `finalized/` can be listed and a probe file written
    /// and removed in its `current/` (nothing is created otherwise). A volume that fails is
    /// taken out of service (see [`fail_volume`](Self::fail_volume)). Returns the volumes
    /// out of service now, with why. Blocking.
    pub fn check_volumes(&self) -> Vec<(PathBuf, String)> {
        for v in &self.volumes {
            if lock(&self.failed).contains_key(&v.index) {
                continue;
            }
            let probe = v.current().join(".volume-check");
            let result = fs::read_dir(v.finalized_dir())
                .map(|_| ())
                .and_then(|()| fs::write(&probe, b"check"))
                .and_then(|()| fs::remove_file(&probe));
            if let Err(e) = result {
                self.fail_volume(v.index, format!("{e}"));
            }
        }
        self.failed_volumes()
    }

    /// The volumes out of service, with why.
    pub fn failed_volumes(&self) -> Vec<(PathBuf, String)> {
        let failed = lock(&self.failed);
        self.volumes.iter().filter_map(|v| failed.get(&v.index).map(|why| (v.dir.clone(), why.clone()))).collect()
    }

    /// Takes a volume out of service: its replicas are forgotten and reported deleted, so
    /// the namenode has them copied from other datanodes; no new replica goes there.
    pub fn fail_volume(&self, index: u16, why: String) {
        if lock(&self.failed).insert(index, why.clone()).is_some() {
            return;
        }
        let lost: Vec<u64> = {
            let mut replicas = lock(&self.replicas);
            let ids: Vec<u64> = replicas.iter().filter(|(_, r)| r.volume == index).map(|(id, _)| *id).collect();
            for id in &ids {
                replicas.remove(id);
            }
            ids
        };
        for id in &lost {
            if let Err(e) = self.index.delete(*id) {
                tracing::warn!(block_id = id, "cannot drop a lost replica from the index: {e}");
            }
        }
        let dir = self.volumes.get(index as usize).map(|v| v.dir.display().to_string()).unwrap_or_default();
        tracing::error!(volume = %dir, reason = %why, lost_replicas = lost.len(), "data directory failed; taken out of service");
        self.push_report(|p| p.deleted.extend(lost));
    }

    /// Finalized replicas' ids, in order (what a scanner pass walks).
    pub fn finalized_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = lock(&self.replicas)
            .iter()
            .filter(|(_, r)| r.state == ReplicaState::Finalized)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// A finalized replica with its block and meta file paths.
    pub fn finalized_files(&self, block_id: u64) -> Option<(ReplicaInfo, PathBuf, PathBuf)> {
        let info = self.get(block_id).filter(|i| i.state == ReplicaState::Finalized)?;
        let v = self.volume(info.volume).ok()?;
        Some((info, v.finalized_block(block_id), v.finalized_meta(block_id, info.genstamp)))
    }

    /// Records that the replica `info` of `block_id` failed its checksums: it is not served
    /// again and is reported to the namenode, which deletes it once a good copy exists.
    pub fn mark_bad(&self, block_id: u64, info: ReplicaInfo) {
        if lock(&self.bad).insert(block_id) {
            self.push_report(|p| p.bad.push((block_id, info)));
        }
    }

    pub fn is_bad(&self, block_id: u64) -> bool {
        lock(&self.bad).contains(&block_id)
    }

    /// Opens a replica for reading, checking its files against what the store knows. A
    /// replica being written is readable up to the bytes written so far (hflush). Blocking.
    pub fn open_reader(&self, block_id: u64) -> Result<ReplicaReader, DatanodeError> {
        self.open_reader_with(block_id, Wait::Allowed)?.ok_or_else(Wait::broken)
    }

    /// [`Store::open_reader`]; with [`Wait::Never`], `Ok(None)` when a path lookup or the
    /// meta header is not in the kernel's caches (open it with [`Wait::Allowed`] on a
    /// blocking thread then). For a replica just written or read they always are, so a task
    /// can open it without handing off to another thread.
    pub fn open_reader_with(&self, block_id: u64, wait: Wait) -> Result<Option<ReplicaReader>, DatanodeError> {
        let info = self.get(block_id).ok_or(DatanodeError::ReplicaNotFound { block_id })?;
        Ok(self.open_replica(block_id, info, wait)?.map(ReplicaReader::new))
    }

    /// Opens a finalized replica for a short-circuit reader on this host: its files checked
    /// as for a read (sizes, meta header), genstamp at least `genstamp`. Replicas being
    /// written are refused (they change under the reader; HDFS refuses them too). `wait` as
    /// for [`Store::open_reader_with`].
    pub fn open_short_circuit(
        &self,
        block_id: u64,
        genstamp: u64,
        wait: Wait,
    ) -> Result<Option<(ReplicaInfo, File, File)>, DatanodeError> {
        let info = self.get(block_id).ok_or(DatanodeError::ReplicaNotFound { block_id })?;
        if info.state != ReplicaState::Finalized {
            return Err(DatanodeError::Invalid(format!(
                "replica of block {block_id} is being written: read it over TCP"
            )));
        }
        if info.genstamp < genstamp {
            return Err(DatanodeError::Invalid(format!(
                "replica of block {block_id} has genstamp {}, older than the requested {genstamp}",
                info.genstamp
            )));
        }
        Ok(self.open_replica(block_id, info, wait)?.map(|f| (f.info, f.data, f.meta)))
    }

    fn open_replica(
        &self,
        block_id: u64,
        info: ReplicaInfo,
        wait: Wait,
    ) -> Result<Option<ReplicaFiles>, DatanodeError> {
        let v = self.volume(info.volume)?;
        if info.state == ReplicaState::Rbw {
            return ReplicaFiles::open(info, v.rbw_block(block_id), v.rbw_meta(block_id, info.genstamp), true, wait);
        }
        if self.is_bad(block_id) {
            return Err(DatanodeError::Corrupt {
                path: v.finalized_block(block_id),
                reason: "found corrupt by the block scanner; not served".into(),
            });
        }
        ReplicaFiles::open(info, v.finalized_block(block_id), v.finalized_meta(block_id, info.genstamp), false, wait)
    }

    /// Deletes a finalized replica (a namenode command). `Ok(false)` when there was none.
    /// Blocking.
    pub fn delete(&self, block_id: u64) -> Result<bool, DatanodeError> {
        let info = {
            let mut replicas = lock(&self.replicas);
            match replicas.get(&block_id) {
                Some(info) if info.state == ReplicaState::Finalized => {
                    let info = *info;
                    replicas.remove(&block_id);
                    info
                }
                Some(info) if !lock(&self.writers).contains_key(&block_id) => {
                    // An unfinished replica nobody writes any more (a stale stamp).
                    let info = *info;
                    replicas.remove(&block_id);
                    drop(replicas);
                    let v = self.volume(info.volume)?;
                    let _ = fs::remove_file(v.rbw_block(block_id));
                    let _ = fs::remove_file(v.rbw_meta(block_id, info.genstamp));
                    self.push_report(|p| p.deleted.push(block_id));
                    tracing::info!(block_id, "deleted unfinished replica");
                    return Ok(true);
                }
                Some(_) => {
                    tracing::info!(block_id, "not deleting a replica that is being written");
                    return Ok(false);
                }
                None => return Ok(false),
            }
        };
        let v = self.volume(info.volume)?;
        self.index.delete(block_id)?;
        for path in [v.finalized_block(block_id), v.finalized_meta(block_id, info.genstamp)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(block_id, "cannot remove {}: {e}", path.display()),
            }
        }
        lock(&self.bad).remove(&block_id);
        self.push_report(|p| p.deleted.push(block_id));
        tracing::info!(block_id, "deleted replica");
        Ok(true)
    }

    fn push_report(&self, f: impl FnOnce(&mut PendingReports)) {
        {
            let mut p = lock(&self.pending);
            f(&mut p);
            if p.received.len() + p.deleted.len() > MAX_PENDING_REPORTS {
                // A full report replaces received and deleted; bad replicas are not in it.
                let bad = std::mem::take(&mut p.bad);
                *p = PendingReports { overflowed: true, bad, ..Default::default() };
            }
        }
        self.report_ready.notify_one();
    }

    /// Takes the pending incremental reports.
    pub fn take_pending(&self) -> PendingReports {
        std::mem::take(&mut *lock(&self.pending))
    }

    /// Puts reports back after the namenode did not take them.
    pub fn requeue(&self, mut reports: PendingReports) {
        let mut p = lock(&self.pending);
        reports.received.append(&mut p.received);
        reports.deleted.append(&mut p.deleted);
        reports.bad.append(&mut p.bad);
        reports.overflowed |= p.overflowed;
        *p = reports;
    }

    /// Flushes the index (graceful stop).
    pub fn flush(&self) -> Result<(), DatanodeError> {
        self.index.flush()
    }
}

pub(crate) fn parse_name(path: &Path) -> Option<ReplicaFile> {
    volume::parse_file_name(path.file_name()?.to_str()?)
}

/// Every well-formed finalized replica of a volume. Files that do not make a replica
/// (a block without meta, a meta of the wrong size, a misplaced file) are logged and left
/// alone for an operator.
fn scan_finalized(v: &Volume) -> Result<Vec<(u64, ReplicaInfo)>, DatanodeError> {
    let mut out = Vec::new();
    let mut stack = vec![v.finalized_dir()];
    while let Some(dir) = stack.pop() {
        let mut blocks: HashMap<u64, u64> = HashMap::new();
        let mut metas: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
        for entry in fs::read_dir(&dir).map_err(DatanodeError::io("cannot list", &dir))? {
            let entry = entry.map_err(DatanodeError::io("cannot list", &dir))?;
            let ft = entry.file_type().map_err(DatanodeError::io("cannot stat", entry.path()))?;
            if ft.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let len = || entry.metadata().map(|m| m.len()).map_err(DatanodeError::io("cannot stat", entry.path()));
            match parse_name(&entry.path()) {
                Some(ReplicaFile::Block(id)) => {
                    blocks.insert(id, len()?);
                }
                Some(ReplicaFile::Meta(id, gs)) => metas.entry(id).or_default().push((gs, len()?)),
                None => {}
            }
        }
        for (id, len) in blocks {
            let path = dir.join(volume::block_file_name(id));
            if v.block_dir(id) != dir {
                tracing::warn!("ignoring misplaced block file {}", path.display());
                continue;
            }
            let Some((gs, meta_len)) = metas.get(&id).and_then(|m| m.iter().max().copied()) else {
                tracing::warn!("ignoring block file {} without a meta file", path.display());
                continue;
            };
            if meta_len != meta::meta_len_for(len) {
                tracing::warn!(
                    "ignoring replica {}: meta file has {meta_len} bytes, expected {}",
                    path.display(),
                    meta::meta_len_for(len)
                );
                continue;
            }
            out.push((id, ReplicaInfo { genstamp: gs, len, state: ReplicaState::Finalized, volume: v.index }));
        }
    }
    Ok(out)
}

/// A replica being written. Dropped unfinalized, it stays in `rbw/` as it is (`keep`, a
/// client's write: recovery decides) or removes its files and its entry.
/// Whether a packet may start at `offset` of a replica `len` bytes long: at the end, or at
/// the start of a partial last chunk (the writer re-sends that chunk, grown, after an hflush
/// or an append). The write pipeline checks it as packets arrive, and the replica again as
/// they are written.
pub fn accepts_offset(len: u64, offset: u64) -> bool {
    let chunk = BYTES_PER_CHECKSUM as u64;
    offset == len || (offset < len && offset.is_multiple_of(chunk) && len - offset < chunk)
}

pub struct RbwReplica {
    store: Arc<Store>,
    block_id: u64,
    genstamp: u64,
    volume: u16,
    data: Option<File>,
    meta: Option<BufWriter<File>>,
    len: u64,
    done: bool,
    keep: bool,
    /// Raised by a block recovery taking the replica over: every later write fails.
    fence: Arc<Fence>,
}

impl RbwReplica {
    /// A replica being written, files not open yet, removed if dropped before `keep` is set.
    fn new(store: Arc<Store>, block_id: u64, genstamp: u64, volume: u16, len: u64, fence: Arc<Fence>) -> RbwReplica {
        RbwReplica { store, block_id, genstamp, volume, data: None, meta: None, len, done: false, keep: false, fence }
    }

    pub fn block_id(&self) -> u64 {
        self.block_id
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn paths(&self) -> Result<(PathBuf, PathBuf), DatanodeError> {
        let v = self.store.volume(self.volume)?;
        Ok((v.rbw_block(self.block_id), v.rbw_meta(self.block_id, self.genstamp)))
    }

    pub fn genstamp(&self) -> u64 {
        self.genstamp
    }

    /// Removes the replica (a new one whose pipeline could not be set up: no client will
    /// recover it).
    pub fn discard(mut self) {
        self.keep = false;
    }

    /// The fence a recovery raises to take this replica over.
    pub fn fence(&self) -> Arc<Fence> {
        Arc::clone(&self.fence)
    }

    /// Whether a packet may start at `offset`: at the end, or at the start of a partial last
    /// chunk (the writer re-sends that chunk, grown, after an hflush or an append).
    pub fn accepts_offset(&self, offset: u64) -> bool {
        accepts_offset(self.len, offset)
    }

    /// Appends data and its (already verified) chunk checksums. Only the last append of a
    /// replica may end in a partial chunk, so the meta file stays one checksum per chunk.
    pub fn append(&mut self, data: &[u8], checksums: &[u8]) -> Result<(), DatanodeError> {
        self.write_at(self.len, data, checksums)
    }

    /// Writes data and its (already verified) chunk checksums at `offset`, which
    /// [`accepts_offset`](Self::accepts_offset): a partial last chunk is rewritten. The
    /// meta file stays one checksum per chunk, flushed with the data so a reader sees both.
    pub fn write_at(&mut self, offset: u64, data: &[u8], checksums: &[u8]) -> Result<(), DatanodeError> {
        if self.fence.is_raised() {
            return Err(DatanodeError::Invalid(format!("block {}: replica taken over by a recovery", self.block_id)));
        }
        if checksums.len() as u64 != meta::chunks_for(data.len() as u64) * meta::CHECKSUM_BYTES {
            return Err(DatanodeError::Invalid(format!(
                "{} checksum bytes for {} data bytes",
                checksums.len(),
                data.len()
            )));
        }
        if !self.accepts_offset(offset) {
            return Err(DatanodeError::Invalid(format!(
                "block {}: write at offset {offset} of a replica of {} bytes",
                self.block_id, self.len
            )));
        }
        if !data.is_empty() && !offset.is_multiple_of(BYTES_PER_CHECKSUM as u64) {
            return Err(DatanodeError::Invalid(format!(
                "block {}: data after a partial chunk at offset {}",
                self.block_id, self.len
            )));
        }
        let (data_path, meta_path) = self.paths()?;
        let (Some(file), Some(meta)) = (self.data.as_mut(), self.meta.as_mut()) else {
            return Err(DatanodeError::Invalid(format!("block {}: replica is closed", self.block_id)));
        };
        if offset < self.len {
            // Rewrite of the partial last chunk: cut both files back to its start.
            meta.flush().map_err(DatanodeError::io("cannot write", &meta_path))?;
            file.set_len(offset).map_err(DatanodeError::io("cannot truncate", &data_path))?;
            file.seek(SeekFrom::Start(offset)).map_err(DatanodeError::io("cannot seek", &data_path))?;
            let meta_len = meta::meta_len_for(offset);
            meta.get_ref().set_len(meta_len).map_err(DatanodeError::io("cannot truncate", &meta_path))?;
            meta.seek(SeekFrom::Start(meta_len)).map_err(DatanodeError::io("cannot seek", &meta_path))?;
            self.len = offset;
        }
        file.write_all(data).map_err(DatanodeError::io("cannot write", &data_path))?;
        meta.write_all(checksums).map_err(DatanodeError::io("cannot write", &meta_path))?;
        meta.flush().map_err(DatanodeError::io("cannot write", &meta_path))?;
        self.len += data.len() as u64;
        if let Some(r) = lock(&self.store.replicas).get_mut(&self.block_id) {
            r.len = self.len;
        }
        Ok(())
    }

    /// Starts writing back the replica's data written so far (HDFS's
    /// `dfs.datanode.sync.behind.writes`), when replicas are fsynced at close: the disk works
    /// while the rest of the block arrives, and the fsync at finalize has little left to do.
    /// Does not wait and promises nothing: durability is still the fsync's job.
    pub fn start_writeback(&self, from: u64) -> Result<(), DatanodeError> {
        if !self.store.sync_on_close || from >= self.len {
            return Ok(());
        }
        let Some(file) = self.data.as_ref() else { return Ok(()) };
        let (Ok(offset), Ok(nbytes)) = (i64::try_from(from), i64::try_from(self.len - from)) else {
            return Ok(());
        };
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor belongs to `file`, which outlives the call; the call only
        // schedules writeback of that file's dirty pages in the range.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, nbytes, libc::SYNC_FILE_RANGE_WRITE) };
        if rc != 0 {
            let (data_path, _) = self.paths()?;
            return Err(DatanodeError::io("cannot start writeback of", &data_path)(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// hsync: makes what was written durable.
    pub fn sync(&mut self) -> Result<(), DatanodeError> {
        let (data_path, meta_path) = self.paths()?;
        if let Some(f) = self.data.as_ref() {
            f.sync_data().map_err(DatanodeError::io("cannot fsync", &data_path))?;
        }
        if let Some(m) = self.meta.as_mut() {
            m.flush().map_err(DatanodeError::io("cannot write", &meta_path))?;
            m.get_ref().sync_data().map_err(DatanodeError::io("cannot fsync", &meta_path))?;
        }
        Ok(())
    }

    /// Makes the replica durable and final (when configured to sync at close): its two files
    /// are made durable, renamed into the finalized tree, the renames made durable, and only
    /// then is it recorded in the index and queued for the incremental report, so
    /// `finalized/` never holds a replica whose bytes a crash could lose. Both flushes are
    /// shared with the other replicas finalizing on the volume at the same time (group
    /// commit, `group_sync`): two `syncfs` per batch instead of four or six fsyncs per
    /// replica. Blocking.
    pub fn finalize(mut self) -> Result<ReplicaInfo, DatanodeError> {
        let (data_path, meta_path) = self.paths()?;
        let store = Arc::clone(&self.store);
        let sync = store.sync_on_close;
        let file = self.data.take();
        let meta = self.meta.take();
        let (Some(file), Some(meta)) = (file, meta) else {
            return Err(DatanodeError::Invalid(format!("block {}: replica is closed", self.block_id)));
        };
        let meta = meta.into_inner().map_err(|e| DatanodeError::Io {
            context: "cannot write",
            path: meta_path.clone(),
            source: e.into_error(),
        })?;
        // What was written must read back as a well-formed replica before it is trusted.
        let data_len = file.metadata().map_err(DatanodeError::io("cannot stat", &data_path))?.len();
        let meta_len = meta.metadata().map_err(DatanodeError::io("cannot stat", &meta_path))?.len();
        if data_len != self.len || meta_len != meta::meta_len_for(self.len) {
            return Err(DatanodeError::Corrupt {
                path: data_path,
                reason: format!("{data_len} data and {meta_len} meta bytes after writing {} bytes", self.len),
            });
        }
        drop((file, meta));
        if sync {
            // The bytes of both files, before their names move into `finalized/`.
            store.sync_volume(self.volume)?;
        }
        let v = store.volume(self.volume)?;
        let dir = v.block_dir(self.block_id);
        fs::create_dir_all(&dir).map_err(DatanodeError::io("cannot create", &dir))?;
        // Meta first: a crash between the renames leaves a block without meta in rbw (removed
        // at start), never a finalized block without checksums.
        let final_meta = v.finalized_meta(self.block_id, self.genstamp);
        let final_data = v.finalized_block(self.block_id);
        fs::rename(&meta_path, &final_meta).map_err(DatanodeError::io("cannot rename", &meta_path))?;
        fs::rename(&data_path, &final_data).map_err(DatanodeError::io("cannot rename", &data_path))?;
        if sync {
            // The renames and any directory just made, before anyone is told.
            store.sync_volume(self.volume)?;
        }
        let info =
            ReplicaInfo { genstamp: self.genstamp, len: self.len, state: ReplicaState::Finalized, volume: self.volume };
        store.index.put(self.block_id, &info)?;
        lock(&store.replicas).insert(self.block_id, info);
        self.done = true;
        store.push_report(|p| p.received.push((self.block_id, info)));
        tracing::debug!(block_id = self.block_id, len = self.len, "finalized replica");
        Ok(info)
    }
}

impl Drop for RbwReplica {
    fn drop(&mut self) {
        {
            let mut writers = lock(&self.store.writers);
            if writers.get(&self.block_id).is_some_and(|f| Arc::ptr_eq(f, &self.fence)) {
                writers.remove(&self.block_id);
            }
        }
        if self.done {
            return;
        }
        if self.keep {
            if let Some(mut m) = self.meta.take() {
                let _ = m.flush();
            }
            self.data = None;
            tracing::debug!(block_id = self.block_id, len = self.len, "unfinished replica kept for recovery");
            return;
        }
        self.data = None;
        self.meta = None;
        if let Ok((data_path, meta_path)) = self.paths() {
            for path in [data_path, meta_path] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(block_id = self.block_id, "cannot remove {}: {e}", path.display()),
                }
            }
        }
        let mut replicas = lock(&self.store.replicas);
        if replicas.get(&self.block_id).is_some_and(|r| r.state == ReplicaState::Rbw && r.genstamp == self.genstamp) {
            replicas.remove(&self.block_id);
        }
        tracing::debug!(block_id = self.block_id, "removed unfinished replica");
    }
}

/// Reads a finalized replica's data and stored checksums, chunk-aligned.
pub struct ReplicaReader {
    pub info: ReplicaInfo,
    data: BufReader<File>,
    meta: BufReader<File>,
    data_path: PathBuf,
    meta_path: PathBuf,
    /// Where the next `read` continues (None = seek first).
    pos: Option<u64>,
    /// A replica being written: the stored checksum of a partial last chunk may already
    /// cover bytes past `info.len`, so that one is computed from the data read.
    unfinished: bool,
}

/// Whether opening a replica may wait for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Allowed,
    /// Give up (`Ok(None)`) where the kernel would have to go to the disk.
    Never,
}

impl Wait {
    /// An open allowed to wait that did not finish: a bug, reported rather than unwrapped.
    pub(crate) fn broken() -> DatanodeError {
        DatanodeError::Invalid("a blocking open of a replica gave up waiting".into())
    }
}

/// A replica's two files, open and checked against what the store knows.
struct ReplicaFiles {
    info: ReplicaInfo,
    data: File,
    meta: File,
    data_path: PathBuf,
    meta_path: PathBuf,
    /// Being written (readable up to `info.len`).
    unfinished: bool,
}

impl ReplicaFiles {
    fn open(
        info: ReplicaInfo,
        data_path: PathBuf,
        meta_path: PathBuf,
        unfinished: bool,
        wait: Wait,
    ) -> Result<Option<ReplicaFiles>, DatanodeError> {
        let (Some(data), Some(meta)) = (open_file(&data_path, wait)?, open_file(&meta_path, wait)?) else {
            return Ok(None);
        };
        let data_len = data.metadata().map_err(DatanodeError::io("cannot stat", &data_path))?.len();
        let meta_len = meta.metadata().map_err(DatanodeError::io("cannot stat", &meta_path))?.len();
        // The files must be exactly what finalize wrote (at least what was written so far).
        let short = data_len < info.len || meta_len < meta::meta_len_for(info.len);
        let wrong = data_len != info.len || meta_len != meta::meta_len_for(info.len);
        if (unfinished && short) || (!unfinished && wrong) {
            return Err(DatanodeError::Corrupt {
                path: data_path,
                reason: format!(
                    "{data_len} data and {meta_len} meta bytes, expected {} and {}",
                    info.len,
                    meta::meta_len_for(info.len)
                ),
            });
        }
        let mut header = [0u8; meta::HEADER_BYTES as usize];
        match wait {
            Wait::Allowed => {
                std::os::unix::fs::FileExt::read_exact_at(&meta, &mut header, 0)
                    .map_err(DatanodeError::io("cannot read", &meta_path))?;
            }
            Wait::Never => {
                let mut iov = [io::IoSliceMut::new(&mut header)];
                match rustix::io::preadv2(&meta, &mut iov, 0, rustix::io::ReadWriteFlags::NOWAIT) {
                    Ok(n) if n == header.len() => {}
                    // Not cached, short, or an error: the blocking open reads it (and reports).
                    _ => return Ok(None),
                }
            }
        }
        meta::check_header(&header).map_err(|reason| DatanodeError::Corrupt { path: meta_path.clone(), reason })?;
        Ok(Some(ReplicaFiles { info, data, meta, data_path, meta_path, unfinished }))
    }
}

/// Set once an `O_NOATIME` open was refused (`EPERM`: the files belong to another user and
/// this process may not override that); replicas are then opened without it.
static NOATIME_REFUSED: AtomicBool = AtomicBool::new(false);

/// Opens `path` read-only, without updating its access time (`O_NOATIME`: a read of a just
/// written replica would otherwise dirty its inode, a journal write per read; nothing here
/// uses access times). With [`Wait::Never`], only if every step of the lookup is in the
/// dentry cache (`openat2` with `RESOLVE_CACHED`, Linux 5.12), else `Ok(None)` — also on
/// kernels without it, and on any error, which the blocking open then reports.
fn open_file(path: &Path, wait: Wait) -> Result<Option<File>, DatanodeError> {
    let noatime = !NOATIME_REFUSED.load(Ordering::Relaxed);
    match wait {
        Wait::Allowed => {
            use std::os::unix::fs::OpenOptionsExt;
            let flags = if noatime { libc::O_NOATIME } else { 0 };
            match OpenOptions::new().read(true).custom_flags(flags).open(path) {
                Err(e) if noatime && e.raw_os_error() == Some(libc::EPERM) => {
                    NOATIME_REFUSED.store(true, Ordering::Relaxed);
                    tracing::info!("O_NOATIME refused on {}: replicas are opened without it", path.display());
                    File::open(path).map(Some).map_err(DatanodeError::io("cannot open", path))
                }
                r => r.map(Some).map_err(DatanodeError::io("cannot open", path)),
            }
        }
        Wait::Never => {
            use rustix::fs::{OFlags, ResolveFlags, CWD};
            let mut flags = OFlags::RDONLY | OFlags::CLOEXEC;
            if noatime {
                flags |= OFlags::NOATIME;
            }
            Ok(rustix::fs::openat2(CWD, path, flags, rustix::fs::Mode::empty(), ResolveFlags::CACHED)
                .ok()
                .map(File::from))
        }
    }
}

impl ReplicaReader {
    /// Buffers no larger than the replica: a 1 KiB file gets no 1 MiB buffer.
    fn new(files: ReplicaFiles) -> ReplicaReader {
        let ReplicaFiles { info, data, meta, data_path, meta_path, unfinished } = files;
        let data_buf = usize::try_from(info.len).unwrap_or(READ_BUFFER).clamp(BYTES_PER_CHECKSUM, READ_BUFFER);
        let meta_buf = usize::try_from(meta::meta_len_for(info.len)).unwrap_or(READ_BUFFER).clamp(64, READ_BUFFER / 64);
        ReplicaReader {
            info,
            data: BufReader::with_capacity(data_buf, data),
            meta: BufReader::with_capacity(meta_buf, meta),
            data_path,
            meta_path,
            // The first read seeks.
            pos: None,
            unfinished,
        }
    }

    /// Reads `len` bytes at chunk-aligned `pos` into `data` and their stored checksums into
    /// `checksums` (both resized). Sequential calls do not seek.
    pub fn read(
        &mut self,
        pos: u64,
        len: usize,
        data: &mut Vec<u8>,
        checksums: &mut Vec<u8>,
    ) -> Result<(), DatanodeError> {
        let end = pos.checked_add(len as u64).filter(|&e| e <= self.info.len);
        if !pos.is_multiple_of(BYTES_PER_CHECKSUM as u64) || end.is_none() {
            return Err(DatanodeError::Invalid(format!(
                "read of {len} bytes at {pos} in a replica of {}",
                self.info.len
            )));
        }
        if self.pos != Some(pos) {
            let chunk = pos / BYTES_PER_CHECKSUM as u64;
            self.data.seek(SeekFrom::Start(pos)).map_err(DatanodeError::io("cannot seek", &self.data_path))?;
            self.meta
                .seek(SeekFrom::Start(meta::checksum_offset(chunk)))
                .map_err(DatanodeError::io("cannot seek", &self.meta_path))?;
        }
        data.resize(len, 0);
        self.data.read_exact(data).map_err(DatanodeError::io("cannot read", &self.data_path))?;
        checksums.resize((meta::chunks_for(len as u64) * meta::CHECKSUM_BYTES) as usize, 0);
        self.meta.read_exact(checksums).map_err(DatanodeError::io("cannot read", &self.meta_path))?;
        let end = pos + len as u64;
        let tail = (end % BYTES_PER_CHECKSUM as u64) as usize;
        // The stored checksum of a chunk cut by this read (or still growing) covers other bytes.
        if (self.unfinished || end < self.info.len) && tail != 0 && len >= tail {
            let mut sum = Vec::with_capacity(4);
            tusk_proto::data_transfer::chunk_checksums(&data[len - tail..], &mut sum);
            let n = checksums.len();
            checksums[n - 4..].copy_from_slice(&sum);
            // The stored checksum was not where the next read expects the file position.
            self.pos = None;
            return Ok(());
        }
        self.pos = Some(end);
        Ok(())
    }
}
