//! The block map and the datanode registry: which datanodes are alive, which replicas each
//! holds, what each block needs, and the commands waiting for each datanode's next
//! heartbeat. Decisions are plain data (`choose_targets`, `replication_work`) with unit
//! tests; the RPC handlers deliver them. Protected by one mutex, always taken after the
//! namespace lock when both are needed.
//!
//! Layout (memory is the namenode's limit: tens of millions of blocks): every block is one
//! 40-byte [`Rec`] in a dense `Vec`, found by id through a hash table of `u32` record
//! indexes. Up to three replicas sit inline in the record; a fourth and more, corrupt
//! replicas and write pipelines are rare and live in side tables keyed by record index.
//! Each datanode keeps the set of record indexes it holds (4 bytes a replica, not 8). A
//! removed block's slot goes on a free list and is reused; before that its index is taken out
//! of every holder's set, so a set never names a reused slot.
//!
//! During start-up safe mode the replication queues are not maintained (HDFS does the same):
//! every block would move through two or three queue levels as its replicas are reported.
//! [`BlockMap::init_queues`] files every block once, in one pass, when safe mode ends. The
//! safe-mode counts are kept exact all along.

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};
use tusk_proto::client::{AdminState, DatanodeInfo, ExtendedBlock};

pub type DnIdx = u32;

/// Largest number of block ids in one delete command.
const MAX_DELETES_PER_COMMAND: usize = 1000;
/// Copies one datanode sends at once (HDFS: dfs.namenode.replication.max-streams-hard-limit);
/// also the most handed out on one heartbeat.
const MAX_TRANSFERS_PER_NODE: usize = 4;
/// A scheduled replication not confirmed within this time is scheduled again
/// (HDFS: dfs.namenode.reconstruction.pending.timeout-sec).
const PENDING_TIMEOUT: Duration = Duration::from_secs(300);
/// Blocks looked at per queue level and round, so a round stays short with millions queued.
const SCAN_PER_LEVEL: usize = 10_000;

/// Queue levels of blocks short of replicas, HDFS's `LowRedundancyBlocks`: served in order.
pub const PRIORITY_ONE_REPLICA: usize = 0;
/// Fewer than a third of the replicas it should have.
pub const PRIORITY_VERY_UNDER: usize = 1;
pub const PRIORITY_UNDER: usize = 2;
/// Enough replicas, badly placed (racks); reserved.
pub const PRIORITY_BADLY_PLACED: usize = 3;
/// No good replica left (missing, or only corrupt ones): nothing to copy from.
pub const PRIORITY_NO_GOOD_REPLICA: usize = 4;
const LEVELS: usize = 5;

/// The queue level a complete block with `live` good replicas of `expected` belongs to.
pub fn priority(live: usize, expected: usize) -> Option<usize> {
    if live >= expected {
        None
    } else if live == 0 {
        Some(PRIORITY_NO_GOOD_REPLICA)
    } else if live == 1 {
        Some(PRIORITY_ONE_REPLICA)
    } else if live * 3 < expected {
        Some(PRIORITY_VERY_UNDER)
    } else {
        Some(PRIORITY_UNDER)
    }
}

/// A copy scheduled and not yet confirmed.
#[derive(Debug, Clone)]
struct Pending {
    at: Instant,
    /// The datanode sending the copies; `None` for the replicas a just-completed block's
    /// write pipeline has yet to report (HDFS's `addExpectedReplicasToPending`).
    src: Option<DnIdx>,
    /// Replicas still to arrive.
    copies: usize,
}

#[derive(Debug, Clone)]
pub struct Datanode {
    pub uuid: String,
    pub hostname: String,
    pub ip: String,
    pub xfer_port: u32,
    pub http_port: u32,
    pub ipc_port: u32,
    pub rack: String,
    /// In service, being decommissioned, or decommissioned.
    pub admin: AdminState,
    pub capacity: u64,
    pub dfs_used: u64,
    pub remaining: u64,
    pub active_transfers: u32,
    pub last_heartbeat: Instant,
    pub last_update_ms: i64,
    pub live: bool,
    /// Set by the first heartbeat; until then the space figures are unknown.
    pub reported_storage: bool,
    /// Record indexes (into `BlockMap::recs`) of the blocks it holds a replica of, good or
    /// corrupt: exactly the records that list it in their replicas or corrupt replicas.
    blocks: FxHashSet<u32>,
    pending_deletes: Vec<u64>,
    pending_transfers: VecDeque<(ExtendedBlock, Vec<DnIdx>)>,
    /// Block recoveries this datanode is to run as the primary.
    pending_recoveries: Vec<(ExtendedBlock, u64, Vec<DatanodeInfo>)>,
    /// Copies this datanode has been asked to send and that are not confirmed yet.
    in_flight: usize,
    pub shutdown_requested: bool,
    pub report_requested: bool,
}

impl Datanode {
    pub fn xfer_addr(&self) -> String {
        format!("{}:{}", self.ip, self.xfer_port)
    }

    /// Alive and not leaving: its replicas count, it takes new ones.
    pub fn in_service(&self) -> bool {
        self.live && self.admin == AdminState::Normal
    }

    /// Named by an exclude-file entry: host name, IP, or either with the transfer port.
    pub fn matches(&self, entry: &str) -> bool {
        entry == self.ip
            || entry == self.hostname
            || entry == format!("{}:{}", self.ip, self.xfer_port)
            || entry == format!("{}:{}", self.hostname, self.xfer_port)
    }

    /// Blocks it holds a replica of (good or corrupt).
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }
}

/// A copy of one block's state, for callers outside the block map and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub genstamp: u64,
    pub num_bytes: u64,
    pub expected: u16,
    /// Finished (its file is closed, or a later block was added).
    pub complete: bool,
    /// Live datanodes holding a good replica.
    pub replicas: Vec<DnIdx>,
    /// Datanodes holding a replica found corrupt.
    pub corrupt: Vec<DnIdx>,
    /// A block being written: the datanodes of its pipeline (they report the replica only
    /// once it is finalized). Readers of an hflushed block and lease recovery go there.
    pub pipeline: Vec<DnIdx>,
}

/// Replicas held inline in a record; more go to `BlockMap::extra`.
const INLINE: usize = 3;
/// An empty inline replica slot. Inline slots fill from the front: no hole before a used one.
const NO_DN: DnIdx = DnIdx::MAX;
/// `Rec::queued` of a block in no replication queue.
const NOT_QUEUED: u8 = u8::MAX;

/// Finished (its file is closed, or a later block was added).
const F_COMPLETE: u8 = 1 << 0;
/// In the set of blocks with replicas to remove (extra or corrupt ones).
const F_EXCESS: u8 = 1 << 1;
/// Counted in `BlockMap::complete_count` / `safe_count`.
const F_COUNTED_COMPLETE: u8 = 1 << 2;
const F_COUNTED_SAFE: u8 = 1 << 3;
/// More than [`INLINE`] replicas: the rest are in `BlockMap::extra`.
const F_EXTRA: u8 = 1 << 4;
/// Has an entry in `BlockMap::corrupt`.
const F_CORRUPT: u8 = 1 << 5;
/// Has an entry in `BlockMap::pipeline`.
const F_PIPELINE: u8 = 1 << 6;
/// An unused slot, on the free list.
const F_FREE: u8 = 1 << 7;

/// One block: 40 bytes. Corrupt replicas and pipelines are in side tables (their flag says
/// whether there is an entry, so the common case never looks).
#[derive(Debug, Clone, Copy)]
struct Rec {
    id: u64,
    genstamp: u64,
    num_bytes: u64,
    /// Good replicas on live datanodes, the first [`INLINE`] of them; [`NO_DN`] when unused.
    replicas: [DnIdx; INLINE],
    expected: u16,
    flags: u8,
    /// The replication queue level it sits in, or [`NOT_QUEUED`].
    queued: u8,
}

const _: () = assert!(std::mem::size_of::<Rec>() == 40);

impl Rec {
    const FREE: Rec = Rec {
        id: 0,
        genstamp: 0,
        num_bytes: 0,
        replicas: [NO_DN; INLINE],
        expected: 0,
        flags: F_FREE,
        queued: NOT_QUEUED,
    };

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    fn complete(&self) -> bool {
        self.has(F_COMPLETE)
    }

    fn queued(&self) -> Option<u8> {
        (self.queued != NOT_QUEUED).then_some(self.queued)
    }
}

/// Block ids are handed out by this namenode: a fast integer hash (FxHash) instead of
/// SipHash, which block reports spent ~5% of their time in.
fn hash_id(id: u64) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(id)
}

/// The list of a side table (`corrupt`, `pipeline`) for record `i`, empty when its flag is off.
fn side_list<'a>(table: &'a FxHashMap<u32, Vec<DnIdx>>, rec: &Rec, flag: u8, i: u32) -> &'a [DnIdx] {
    if rec.has(flag) {
        table.get(&i).map_or(&[], Vec::as_slice)
    } else {
        &[]
    }
}

/// Replaces record `i`'s list in a side table; an empty list removes the entry and the flag.
fn set_side_list(table: &mut FxHashMap<u32, Vec<DnIdx>>, rec: &mut Rec, flag: u8, i: u32, list: Vec<DnIdx>) {
    if list.is_empty() {
        if rec.has(flag) {
            table.remove(&i);
        }
        rec.set(flag, false);
    } else {
        table.insert(i, list);
        rec.set(flag, true);
    }
}

/// What a datanode is told on its next heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Delete(Vec<u64>),
    Transfer(ExtendedBlock, Vec<DatanodeInfo>),
    /// Lease recovery: sync the replicas of this block (at these locations) under the
    /// recovery id and report with CommitBlockSynchronization.
    RecoverBlock(ExtendedBlock, u64, Vec<DatanodeInfo>),
    Reregister,
    BlockReport,
    Shutdown,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockStats {
    pub total_complete: u64,
    pub safe: u64,
    pub under_replicated: u64,
    pub corrupt: u64,
    pub missing: u64,
}

pub struct BlockMap {
    nodes: Vec<Datanode>,
    by_uuid: HashMap<String, DnIdx>,
    /// Every block, dense; slots of removed blocks are on `free`.
    recs: Vec<Rec>,
    /// Record indexes, hashed by their record's block id.
    index: HashTable<u32>,
    free: Vec<u32>,
    /// Replicas past the [`INLINE`] ones, by record index (blocks with replication > 3).
    extra: FxHashMap<u32, Vec<DnIdx>>,
    /// Datanodes holding a replica found corrupt, by record index.
    corrupt: FxHashMap<u32, Vec<DnIdx>>,
    /// Pipelines of blocks being written, by record index.
    pipeline: FxHashMap<u32, Vec<DnIdx>>,
    /// The replication queues and the excess set are kept up to date. Off during start-up
    /// safe mode; [`init_queues`](Self::init_queues) turns it on.
    queues_ready: bool,
    /// Complete blocks short of replicas, by priority level (see [`priority`]), by block id.
    needed: [BTreeSet<u64>; LEVELS],
    /// Where the last round stopped in each level: the next one goes on from there.
    cursor: [u64; LEVELS],
    /// Complete blocks with more good replicas than expected, or with corrupt ones to drop.
    excess: BTreeSet<u64>,
    pending_replication: FxHashMap<u64, Pending>,
    /// Live datanodes per rack.
    racks: HashMap<String, usize>,
    /// Complete blocks, and those with a reported good replica: what safe mode counts, kept
    /// up to date by `requeue` so that no report has to recount the whole map.
    complete_count: u64,
    safe_count: u64,
}

impl Default for BlockMap {
    fn default() -> Self {
        Self::new()
    }
}

/// A replica a datanode says it has.
#[derive(Debug, Clone, Copy)]
pub struct Reported {
    pub id: u64,
    pub genstamp: u64,
    pub len: u64,
    pub finalized: bool,
}

impl BlockMap {
    /// An empty block map with its replication queues kept from the start.
    pub fn new() -> Self {
        Self::with_capacity(0, true)
    }

    /// The block map of a namenode starting up: room for `blocks` blocks, replication queues
    /// off until [`init_queues`](Self::init_queues) (when start-up safe mode ends).
    pub fn for_startup(blocks: usize) -> Self {
        Self::with_capacity(blocks, false)
    }

    fn with_capacity(blocks: usize, queues_ready: bool) -> Self {
        BlockMap {
            nodes: Vec::new(),
            by_uuid: HashMap::new(),
            recs: Vec::with_capacity(blocks),
            index: HashTable::with_capacity(blocks),
            free: Vec::new(),
            extra: FxHashMap::default(),
            corrupt: FxHashMap::default(),
            pipeline: FxHashMap::default(),
            queues_ready,
            needed: Default::default(),
            cursor: [0; LEVELS],
            excess: BTreeSet::new(),
            pending_replication: FxHashMap::default(),
            racks: HashMap::new(),
            complete_count: 0,
            safe_count: 0,
        }
    }

    // ---- records ----

    /// The record index of block `id`.
    fn slot(&self, id: u64) -> Option<u32> {
        let recs = &self.recs;
        self.index.find(hash_id(id), |&i| recs[i as usize].id == id).copied()
    }

    fn rec(&self, i: u32) -> &Rec {
        &self.recs[i as usize]
    }

    fn rec_mut(&mut self, i: u32) -> &mut Rec {
        &mut self.recs[i as usize]
    }

    /// Good replicas of record `i`, in the order they arrived.
    fn replicas(&self, i: u32) -> impl Iterator<Item = DnIdx> + '_ {
        let r = self.rec(i);
        let extra = side_list(&self.extra, r, F_EXTRA, i);
        r.replicas.iter().copied().take_while(|&d| d != NO_DN).chain(extra.iter().copied())
    }

    fn replica_count(&self, i: u32) -> usize {
        let r = self.rec(i);
        r.replicas.iter().take_while(|&&d| d != NO_DN).count() + side_list(&self.extra, r, F_EXTRA, i).len()
    }

    fn has_replica(&self, i: u32, dn: DnIdx) -> bool {
        self.replicas(i).any(|d| d == dn)
    }

    fn corrupt_of(&self, i: u32) -> &[DnIdx] {
        side_list(&self.corrupt, self.rec(i), F_CORRUPT, i)
    }

    fn pipeline_of(&self, i: u32) -> &[DnIdx] {
        side_list(&self.pipeline, self.rec(i), F_PIPELINE, i)
    }

    fn push_replica(&mut self, i: u32, dn: DnIdx) {
        debug_assert!(!self.has_replica(i, dn));
        let r = &mut self.recs[i as usize];
        if let Some(s) = r.replicas.iter_mut().find(|s| **s == NO_DN) {
            *s = dn;
        } else {
            r.set(F_EXTRA, true);
            self.extra.entry(i).or_default().push(dn);
        }
    }

    /// Takes `dn` out of record `i`'s good replicas; returns whether it was there. Keeps the
    /// order and the inline slots packed (the first extra replica moves inline).
    fn unlist_replica(&mut self, i: u32, dn: DnIdx) -> bool {
        let r = &mut self.recs[i as usize];
        if let Some(p) = r.replicas.iter().position(|&d| d == dn) {
            r.replicas.copy_within(p + 1.., p);
            r.replicas[INLINE - 1] = NO_DN;
            if r.has(F_EXTRA) {
                let more = self.extra.get_mut(&i).filter(|v| !v.is_empty());
                assert!(more.is_some(), "block {} flags extra replicas and has none", r.id);
                if let Some(v) = more {
                    r.replicas[INLINE - 1] = v.remove(0);
                    if v.is_empty() {
                        self.extra.remove(&i);
                        r.set(F_EXTRA, false);
                    }
                }
            }
            return true;
        }
        if !r.has(F_EXTRA) {
            return false;
        }
        let Some(v) = self.extra.get_mut(&i) else { return false };
        let Some(p) = v.iter().position(|&d| d == dn) else { return false };
        v.remove(p);
        if v.is_empty() {
            self.extra.remove(&i);
            r.set(F_EXTRA, false);
        }
        true
    }

    fn add_corrupt(&mut self, i: u32, dn: DnIdx) {
        let r = &mut self.recs[i as usize];
        let list = self.corrupt.entry(i).or_default();
        if !list.contains(&dn) {
            list.push(dn);
        }
        r.set(F_CORRUPT, true);
    }

    fn unlist_corrupt(&mut self, i: u32, dn: DnIdx) {
        let r = &mut self.recs[i as usize];
        if !r.has(F_CORRUPT) {
            return;
        }
        let mut list = self.corrupt.remove(&i).unwrap_or_default();
        list.retain(|&d| d != dn);
        set_side_list(&mut self.corrupt, r, F_CORRUPT, i, list);
    }

    fn set_pipeline_list(&mut self, i: u32, list: Vec<DnIdx>) {
        let r = &mut self.recs[i as usize];
        set_side_list(&mut self.pipeline, r, F_PIPELINE, i, list);
    }

    /// Keeps only the good replicas of record `i` on `keep`; the others leave the record and,
    /// unless they hold a corrupt replica of it, their datanode's set.
    fn retain_replicas(&mut self, i: u32, keep: &[DnIdx]) {
        let drop: Vec<DnIdx> = self.replicas(i).filter(|d| !keep.contains(d)).collect();
        for dn in drop {
            self.unlist_replica(i, dn);
            if !self.corrupt_of(i).contains(&dn) {
                self.nodes[dn as usize].blocks.remove(&i);
            }
        }
    }

    // ---- blocks ----

    pub fn add_block(&mut self, id: u64, genstamp: u64, num_bytes: u64, expected: u16, complete: bool) {
        if self.slot(id).is_some() {
            return;
        }
        let flags = if complete { F_COMPLETE } else { 0 };
        let rec = Rec { id, genstamp, num_bytes, replicas: [NO_DN; INLINE], expected, flags, queued: NOT_QUEUED };
        let i = match self.free.pop() {
            Some(i) => {
                assert!(self.rec(i).has(F_FREE), "slot {i} on the free list is in use");
                self.recs[i as usize] = rec;
                i
            }
            None => {
                // A limit, not an input check: 4 billion blocks is far past what one namenode's
                // memory holds.
                let i = u32::try_from(self.recs.len()).expect("more than 2^32 blocks");
                self.recs.push(rec);
                i
            }
        };
        let recs = &self.recs;
        self.index.insert_unique(hash_id(id), i, |&j| hash_id(recs[j as usize].id));
        self.requeue(i);
    }

    /// Whether the block is finished (None: no such block).
    pub fn is_complete(&self, id: u64) -> Option<bool> {
        self.slot(id).map(|i| self.rec(i).complete())
    }

    /// The replication queue level and the excess flag record `i` calls for.
    fn wanted(&self, i: u32) -> (Option<u8>, bool) {
        let r = self.rec(i);
        if !r.complete() {
            return (None, false);
        }
        let live = self.replicas(i).filter(|&d| self.nodes[d as usize].in_service()).count();
        let readable = self.replica_count(i);
        let expected = r.expected as usize;
        let badly_placed = self.racks.len() > 1 && expected > 1 && live >= expected && {
            let racks = self.replica_racks(i);
            racks.iter().all(|r| *r == racks[0])
        };
        let want = if badly_placed {
            Some(PRIORITY_BADLY_PLACED as u8)
        } else if live < expected && readable > 0 && live <= 1 {
            // One copy in service, or none with the rest on datanodes being decommissioned.
            Some(PRIORITY_ONE_REPLICA as u8)
        } else {
            priority(live, expected).map(|p| p as u8)
        };
        let excess = !badly_placed && (live > expected || (r.has(F_CORRUPT) && live >= expected));
        (want, excess)
    }

    /// Updates the safe-mode counts of record `i`, and (queues ready) puts it in the queue
    /// level its replicas call for (or takes it out) and in or out of the excess set. Called
    /// after every change to a block's replicas or target.
    fn requeue(&mut self, i: u32) {
        let readable = self.replica_count(i);
        let r = &mut self.recs[i as usize];
        let complete = r.complete();
        let safe = complete && readable > 0;
        if complete != r.has(F_COUNTED_COMPLETE) {
            r.set(F_COUNTED_COMPLETE, complete);
            if complete {
                self.complete_count += 1;
            } else {
                self.complete_count -= 1;
            }
        }
        if safe != r.has(F_COUNTED_SAFE) {
            r.set(F_COUNTED_SAFE, safe);
            if safe {
                self.safe_count += 1;
            } else {
                self.safe_count -= 1;
            }
        }
        if !self.queues_ready {
            return;
        }
        let (want, excess) = self.wanted(i);
        let r = &mut self.recs[i as usize];
        let id = r.id;
        if r.queued() != want {
            if let Some(old) = r.queued() {
                self.needed[old as usize].remove(&id);
            }
            if let Some(new) = want {
                self.needed[new as usize].insert(id);
            }
            r.queued = want.unwrap_or(NOT_QUEUED);
        }
        if excess != r.has(F_EXCESS) {
            r.set(F_EXCESS, excess);
            if excess {
                self.excess.insert(id);
            } else {
                self.excess.remove(&id);
            }
        }
    }

    /// Whether the replication queues are kept (false during start-up safe mode).
    pub fn queues_ready(&self) -> bool {
        self.queues_ready
    }

    /// Files every block in its replication queue level and the excess set, in one pass,
    /// and keeps them up to date from then on. Called when start-up safe mode ends (HDFS's
    /// `initializeReplQueues`); does nothing the second time.
    pub fn init_queues(&mut self) {
        if self.queues_ready {
            return;
        }
        let t0 = Instant::now();
        let mut levels: [Vec<u64>; LEVELS] = Default::default();
        let mut excess = Vec::new();
        for i in 0..self.recs.len() as u32 {
            if self.rec(i).has(F_FREE) {
                continue;
            }
            let (want, ex) = self.wanted(i);
            let r = &mut self.recs[i as usize];
            assert!(r.queued().is_none() && !r.has(F_EXCESS), "block {} queued before the queues were built", r.id);
            r.queued = want.unwrap_or(NOT_QUEUED);
            r.set(F_EXCESS, ex);
            if let Some(level) = want {
                levels[level as usize].push(r.id);
            }
            if ex {
                excess.push(r.id);
            }
        }
        for (set, ids) in self.needed.iter_mut().zip(levels) {
            assert!(set.is_empty(), "replication queue filled before the queues were built");
            *set = ids.into_iter().collect();
        }
        assert!(self.excess.is_empty(), "excess set filled before the queues were built");
        self.excess = excess.into_iter().collect();
        self.queues_ready = true;
        tracing::info!(
            blocks = self.recs.len() - self.free.len(),
            needed = self.needed.iter().map(BTreeSet::len).sum::<usize>(),
            excess = self.excess.len(),
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "replication queues built"
        );
    }

    /// (complete blocks, complete blocks with a good replica reported): what safe mode needs,
    /// without a scan.
    pub fn safe_counts(&self) -> (u64, u64) {
        (self.complete_count, self.safe_count)
    }

    /// Blocks queued at each priority level.
    pub fn queue_lengths(&self) -> [usize; LEVELS] {
        std::array::from_fn(|i| self.needed[i].len())
    }

    /// Copies scheduled and not confirmed yet.
    pub fn pending_replications(&self) -> usize {
        self.pending_replication.len()
    }

    fn drop_pending(&mut self, id: u64) {
        if let Some(Pending { src: Some(src), .. }) = self.pending_replication.remove(&id) {
            let n = &mut self.nodes[src as usize];
            n.in_flight = n.in_flight.saturating_sub(1);
        }
    }

    /// A copy of a block's state.
    pub fn block(&self, id: u64) -> Option<BlockInfo> {
        let i = self.slot(id)?;
        let r = self.rec(i);
        Some(BlockInfo {
            genstamp: r.genstamp,
            num_bytes: r.num_bytes,
            expected: r.expected,
            complete: r.complete(),
            replicas: self.replicas(i).collect(),
            corrupt: self.corrupt_of(i).to_vec(),
            pipeline: self.pipeline_of(i).to_vec(),
        })
    }

    pub fn complete_block(&mut self, id: u64, num_bytes: u64) {
        let Some(i) = self.slot(id) else { return };
        let r = self.rec_mut(i);
        r.set(F_COMPLETE, true);
        r.num_bytes = num_bytes;
        // `complete` needs one reported replica, not all: the pipeline's others are usually
        // still finalizing. Count them as copies on their way, so that the replication
        // monitor does not copy the block to a datanode about to report it (it would find the
        // replica there already); if they never come, the pending entry times out.
        let coming = self
            .pipeline_of(i)
            .iter()
            .filter(|&&d| self.nodes[d as usize].live && !self.has_replica(i, d) && !self.corrupt_of(i).contains(&d))
            .count();
        let short = (self.rec(i).expected as usize).saturating_sub(self.in_service_replicas(i).len());
        if coming > 0 && short > 0 && self.queues_ready && !self.pending_replication.contains_key(&id) {
            let pending = Pending { at: Instant::now(), src: None, copies: coming.min(short) };
            self.pending_replication.insert(id, pending);
        }
        self.requeue(i);
    }

    /// The pipeline of a block being written (set by AddBlock, UpdatePipeline, Append).
    pub fn set_pipeline(&mut self, id: u64, genstamp: u64, uuids: &[String]) {
        let nodes: Vec<DnIdx> = uuids.iter().filter_map(|u| self.by_uuid.get(u).copied()).collect();
        let Some(i) = self.slot(id) else { return };
        let r = self.rec_mut(i);
        r.genstamp = r.genstamp.max(genstamp);
        // Replicas outside the new pipeline keep an older stamp: they no longer count.
        self.retain_replicas(i, &nodes);
        self.set_pipeline_list(i, nodes);
        self.requeue(i);
    }

    /// Append reopened a complete block: it is being written again, by its replicas.
    pub fn reopen_block(&mut self, id: u64) {
        let Some(i) = self.slot(id) else { return };
        self.rec_mut(i).set(F_COMPLETE, false);
        let holders: Vec<DnIdx> = self.replicas(i).collect();
        self.set_pipeline_list(i, holders);
        self.requeue(i);
    }

    /// Where the replicas of a block being written are: its pipeline and the nodes that
    /// reported one, live ones only.
    pub fn uc_locations(&self, id: u64) -> Vec<DatanodeInfo> {
        let Some(i) = self.slot(id) else { return Vec::new() };
        let mut nodes: Vec<DnIdx> = self.pipeline_of(i).to_vec();
        for d in self.replicas(i) {
            if !nodes.contains(&d) {
                nodes.push(d);
            }
        }
        nodes.retain(|&d| self.nodes[d as usize].live);
        nodes.iter().map(|&d| self.info(d)).collect()
    }

    /// Lease recovery finished: the block is complete with `len` bytes under `genstamp` on
    /// the datanodes `uuids` (their reports confirm it).
    pub fn commit_recovered(&mut self, id: u64, genstamp: u64, len: u64, uuids: &[String]) {
        let nodes: Vec<DnIdx> = uuids.iter().filter_map(|u| self.by_uuid.get(u).copied()).collect();
        let Some(i) = self.slot(id) else { return };
        let r = self.rec_mut(i);
        r.genstamp = genstamp;
        r.num_bytes = len;
        self.set_pipeline_list(i, Vec::new());
        self.retain_replicas(i, &nodes);
        for &d in &nodes {
            if self.nodes[d as usize].live && !self.has_replica(i, d) && !self.corrupt_of(i).contains(&d) {
                self.push_replica(i, d);
                self.nodes[d as usize].blocks.insert(i);
            }
        }
        self.complete_block(id, len);
    }

    /// Queues a RecoverBlock command for `primary`.
    pub fn queue_recovery(
        &mut self,
        primary: &str,
        block: ExtendedBlock,
        recovery_id: u64,
        locations: Vec<DatanodeInfo>,
    ) {
        if let Some(&dn) = self.by_uuid.get(primary) {
            self.nodes[dn as usize].pending_recoveries.push((block, recovery_id, locations));
        }
    }

    pub fn set_expected(&mut self, id: u64, expected: u16) {
        let Some(i) = self.slot(id) else { return };
        self.rec_mut(i).expected = expected;
        self.requeue(i);
    }

    /// Forgets a block (its file was deleted, or the block abandoned) and has every holder
    /// delete its replica.
    pub fn remove_block(&mut self, id: u64) {
        if let Some(i) = self.slot(id) {
            let holders: Vec<DnIdx> = self.replicas(i).chain(self.corrupt_of(i).iter().copied()).collect();
            for dn in holders {
                let node = &mut self.nodes[dn as usize];
                node.blocks.remove(&i);
                node.pending_deletes.push(id);
            }
            let r = *self.rec(i);
            if let Some(level) = r.queued() {
                self.needed[level as usize].remove(&id);
            }
            if r.has(F_EXCESS) {
                self.excess.remove(&id);
            }
            self.complete_count -= u64::from(r.has(F_COUNTED_COMPLETE));
            self.safe_count -= u64::from(r.has(F_COUNTED_SAFE));
            let recs = &self.recs;
            match self.index.find_entry(hash_id(id), |&j| recs[j as usize].id == id) {
                Ok(e) => {
                    e.remove();
                }
                Err(_) => unreachable!("block {id} was just found in the index"),
            }
            self.extra.remove(&i);
            self.corrupt.remove(&i);
            self.pipeline.remove(&i);
            self.recs[i as usize] = Rec::FREE;
            self.free.push(i);
        }
        self.drop_pending(id);
    }

    /// Live replicas of a block, with the datanodes' addresses.
    pub fn locations(&self, id: u64) -> (Vec<DatanodeInfo>, Vec<DatanodeInfo>) {
        match self.slot(id) {
            Some(i) => (
                self.replicas(i).map(|d| self.info(d)).collect(),
                self.corrupt_of(i).iter().map(|&d| self.info(d)).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        }
    }

    pub fn live_replicas(&self, id: u64) -> usize {
        self.slot(id).map_or(0, |i| self.replica_count(i))
    }

    /// Records `dn`'s replica `r`. False when no file has the block (the caller has it
    /// deleted).
    fn add_replica(&mut self, dn: DnIdx, r: Reported) -> bool {
        let Some(i) = self.slot(r.id) else { return false };
        let b = *self.rec(i);
        if b.complete() && !r.finalized {
            // An unfinished replica of a finished block: left over from a failed pipeline
            // (an older stamp: delete it) or about to be finalized (its report follows).
            if r.genstamp < b.genstamp {
                self.nodes[dn as usize].pending_deletes.push(r.id);
            }
            // What we knew of it stands (a full report keeps it in the datanode's set).
            if self.has_replica(i, dn) || self.corrupt_of(i).contains(&dn) {
                self.nodes[dn as usize].blocks.insert(i);
            }
            return true;
        }
        // A replica with an older stamp, or a finished one of the wrong length, is corrupt.
        let stale = r.genstamp < b.genstamp || (b.complete() && r.finalized && r.len != b.num_bytes);
        let changed = if stale {
            let was_corrupt = self.corrupt_of(i).contains(&dn);
            self.add_corrupt(i, dn);
            self.unlist_replica(i, dn) || !was_corrupt
        } else if !self.has_replica(i, dn) && !self.corrupt_of(i).contains(&dn) {
            self.push_replica(i, dn);
            let arrived = match self.pending_replication.get_mut(&r.id) {
                Some(p) => {
                    p.copies = p.copies.saturating_sub(1);
                    p.copies == 0
                }
                None => false,
            };
            if arrived {
                self.drop_pending(r.id);
            }
            true
        } else {
            false
        };
        self.nodes[dn as usize].blocks.insert(i);
        // A replica already known changes nothing: no queue to revisit (a repeated report).
        if changed {
            self.requeue(i);
        }
        true
    }

    /// `dn` no longer holds record `i`'s replica (deleted, or absent from its report).
    fn drop_replica(&mut self, dn: DnIdx, i: u32) {
        self.unlist_replica(i, dn);
        self.unlist_corrupt(i, dn);
        self.nodes[dn as usize].blocks.remove(&i);
        self.requeue(i);
    }

    /// A client or scanner found `dn`'s replica of `id` corrupt.
    pub fn mark_corrupt(&mut self, id: u64, uuid: &str) -> bool {
        let Some(&dn) = self.by_uuid.get(uuid) else { return false };
        let Some(i) = self.slot(id) else { return false };
        self.unlist_replica(i, dn);
        self.add_corrupt(i, dn);
        self.nodes[dn as usize].blocks.insert(i);
        tracing::warn!(block = id, datanode = %self.nodes[dn as usize].xfer_addr(), "replica marked corrupt");
        self.requeue(i);
        true
    }

    pub fn stats(&self, in_safe_mode: bool) -> BlockStats {
        let mut s = BlockStats::default();
        for (i, r) in self.recs.iter().enumerate() {
            if r.has(F_FREE) || !r.complete() {
                continue;
            }
            let i = i as u32;
            let readable = self.replica_count(i);
            s.total_complete += 1;
            if readable > 0 {
                s.safe += 1;
            }
            if r.has(F_CORRUPT) {
                s.corrupt += 1;
            }
            // Before the queues are built (start-up safe mode), the level they would give.
            let level = if self.queues_ready { r.queued() } else { self.wanted(i).0 };
            if readable == 0 && !in_safe_mode {
                s.missing += 1;
            } else if readable > 0 && matches!(level, Some(l) if (l as usize) <= PRIORITY_UNDER) {
                // Short of replicas on datanodes in service (those being decommissioned do
                // not count), as the replication queues see it.
                s.under_replicated += 1;
            }
        }
        s
    }

    /// Checks that every datanode's set names exactly the records that list it, that inline
    /// replicas are packed, side-table flags match their tables, the index finds every
    /// record, and the safe-mode counts match a recount. Costs a full scan: tests only.
    #[cfg(test)]
    fn check_invariants(&self) {
        let mut holders: Vec<FxHashSet<u32>> = vec![FxHashSet::default(); self.nodes.len()];
        let (mut complete, mut safe) = (0, 0);
        for (i, r) in self.recs.iter().enumerate() {
            let i = i as u32;
            if r.has(F_FREE) {
                assert!(self.free.contains(&i));
                continue;
            }
            assert_eq!(self.slot(r.id), Some(i));
            let used = r.replicas.iter().take_while(|&&d| d != NO_DN).count();
            assert!(r.replicas[used..].iter().all(|&d| d == NO_DN), "holes in inline replicas of {}", r.id);
            assert_eq!(r.has(F_EXTRA), self.extra.contains_key(&i));
            assert!(!r.has(F_EXTRA) || used == INLINE);
            assert_eq!(r.has(F_CORRUPT), self.corrupt.contains_key(&i));
            assert_eq!(r.has(F_PIPELINE), self.pipeline.contains_key(&i));
            for d in self.replicas(i).chain(self.corrupt_of(i).iter().copied()) {
                assert!(holders[d as usize].insert(i), "datanode {d} listed twice for block {}", r.id);
            }
            complete += u64::from(r.complete());
            safe += u64::from(r.complete() && used > 0);
        }
        for (n, h) in self.nodes.iter().zip(&holders) {
            assert_eq!(&n.blocks, h, "datanode {}'s set", n.uuid);
        }
        assert_eq!(self.index.len(), self.recs.len() - self.free.len());
        assert_eq!(self.safe_counts(), (complete, safe));
    }

    // ---- datanodes ----

    pub fn info(&self, dn: DnIdx) -> DatanodeInfo {
        let n = &self.nodes[dn as usize];
        DatanodeInfo {
            datanode_uuid: n.uuid.clone(),
            hostname: n.hostname.clone(),
            ip_addr: n.ip.clone(),
            xfer_port: n.xfer_port,
            http_port: n.http_port,
            ipc_port: n.ipc_port,
            capacity: n.capacity,
            dfs_used: n.dfs_used,
            remaining: n.remaining,
            active_transfers: n.active_transfers,
            last_update_ms: n.last_update_ms,
            live: n.live,
            rack: n.rack.clone(),
            admin_state: n.admin as i32,
            num_blocks: n.blocks.len() as u64,
        }
    }

    pub fn datanodes(&self) -> impl Iterator<Item = (DnIdx, &Datanode)> {
        self.nodes.iter().enumerate().map(|(i, n)| (i as DnIdx, n))
    }

    pub fn find(&self, uuid: &str) -> Option<DnIdx> {
        self.by_uuid.get(uuid).copied()
    }

    /// Finds a datanode by `host:port` (its data transfer address, by IP or host name).
    pub fn find_by_addr(&self, addr: &str) -> Option<DnIdx> {
        self.nodes
            .iter()
            .position(|n| {
                n.xfer_addr() == addr
                    || format!("{}:{}", n.hostname, n.xfer_port) == addr
                    || format!("{}:{}", n.ip, n.ipc_port) == addr
            })
            .map(|i| i as DnIdx)
    }

    /// (blocks waiting for replication, replications in flight, blocks with excess replicas).
    pub fn queue_totals(&self) -> (usize, usize, usize) {
        (self.needed.iter().map(|l| l.len()).sum(), self.pending_replication.len(), self.excess.len())
    }

    /// Registers (or re-registers) a datanode. A different datanode that claimed the same
    /// address before is dropped: that machine was wiped and came back.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &mut self,
        uuid: &str,
        hostname: &str,
        ip: &str,
        xfer_port: u32,
        http_port: u32,
        ipc_port: u32,
        rack: &str,
        now: Instant,
    ) -> DnIdx {
        let addr = format!("{ip}:{xfer_port}");
        let stale: Vec<DnIdx> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.uuid != uuid && n.live && n.xfer_addr() == addr)
            .map(|(i, _)| i as DnIdx)
            .collect();
        for s in stale {
            self.mark_dead(s);
        }
        let idx = match self.by_uuid.get(uuid) {
            Some(&i) => i,
            None => {
                let i = self.nodes.len() as DnIdx;
                assert!(i != NO_DN, "datanode index {i} is the empty-slot marker");
                self.nodes.push(Datanode {
                    uuid: uuid.to_owned(),
                    hostname: String::new(),
                    ip: String::new(),
                    xfer_port: 0,
                    http_port: 0,
                    ipc_port: 0,
                    rack: String::new(),
                    admin: AdminState::Normal,
                    capacity: 0,
                    dfs_used: 0,
                    remaining: 0,
                    active_transfers: 0,
                    last_heartbeat: now,
                    last_update_ms: tusk_common::now_ms(),
                    live: true,
                    reported_storage: false,
                    blocks: FxHashSet::default(),
                    pending_deletes: Vec::new(),
                    pending_transfers: VecDeque::new(),
                    pending_recoveries: Vec::new(),
                    in_flight: 0,
                    shutdown_requested: false,
                    report_requested: false,
                });
                self.by_uuid.insert(uuid.to_owned(), i);
                i
            }
        };
        let racks_before = self.racks.len();
        let n = &mut self.nodes[idx as usize];
        if n.live && !n.rack.is_empty() {
            let old = n.rack.clone();
            self.leave_rack(&old);
        }
        let n = &mut self.nodes[idx as usize];
        n.hostname = hostname.to_owned();
        n.ip = ip.to_owned();
        n.xfer_port = xfer_port;
        n.http_port = http_port;
        n.ipc_port = ipc_port;
        n.rack = rack.to_owned();
        n.last_heartbeat = now;
        n.live = true;
        n.shutdown_requested = false;
        *self.racks.entry(rack.to_owned()).or_default() += 1;
        tracing::info!(uuid, addr = %addr, rack, "datanode registered");
        if (racks_before > 1) != (self.racks.len() > 1) {
            self.requeue_all();
        }
        idx
    }

    fn leave_rack(&mut self, rack: &str) {
        if let Some(c) = self.racks.get_mut(rack) {
            *c -= 1;
            if *c == 0 {
                self.racks.remove(rack);
            }
        }
    }

    /// Re-files every block: when the cluster goes from one rack to several (or back),
    /// placement rules change for all of them. (Before the queues are built there is
    /// nothing to re-file: `init_queues` files every block with the racks of that time.)
    fn requeue_all(&mut self) {
        if !self.queues_ready {
            return;
        }
        for i in 0..self.recs.len() as u32 {
            if !self.rec(i).has(F_FREE) {
                self.requeue(i);
            }
        }
    }

    /// Racks holding good replicas of record `i` on datanodes in service.
    fn replica_racks(&self, i: u32) -> Vec<&str> {
        self.replicas(i)
            .filter(|&d| self.nodes[d as usize].in_service())
            .map(|d| self.nodes[d as usize].rack.as_str())
            .collect()
    }

    fn in_service_replicas(&self, i: u32) -> Vec<DnIdx> {
        self.replicas(i).filter(|&d| self.nodes[d as usize].in_service()).collect()
    }

    /// Puts datanodes named in `excluded` (host, IP, or either with the port) into
    /// decommissioning, and takes the others out of it. Returns how many changed.
    pub fn apply_excludes(&mut self, excluded: &[String]) -> usize {
        let mut changed = Vec::new();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let listed = excluded.iter().any(|e| n.matches(e));
            let new = match (listed, n.admin) {
                (true, AdminState::Normal) => AdminState::DecommissionInProgress,
                (false, AdminState::DecommissionInProgress | AdminState::Decommissioned) => AdminState::Normal,
                (_, same) => same,
            };
            if new != n.admin {
                tracing::info!(datanode = %n.xfer_addr(), from = ?n.admin, to = ?new, "datanode admin state");
                n.admin = new;
                changed.push(i as DnIdx);
            }
        }
        for &dn in &changed {
            let held: Vec<u32> = self.nodes[dn as usize].blocks.iter().copied().collect();
            for i in held {
                self.requeue(i);
            }
        }
        changed.len()
    }

    /// Datanodes being decommissioned whose every block has enough replicas on datanodes in
    /// service become decommissioned (they keep serving reads). Returns how many finished.
    pub fn check_decommissioning(&mut self) -> usize {
        let mut done = 0;
        for dn in 0..self.nodes.len() {
            let n = &self.nodes[dn];
            if n.admin != AdminState::DecommissionInProgress || !n.live {
                continue;
            }
            let ready = n.blocks.iter().all(|&i| {
                let r = self.rec(i);
                !r.complete() || self.in_service_replicas(i).len() >= r.expected as usize
            });
            if ready {
                let n = &mut self.nodes[dn];
                n.admin = AdminState::Decommissioned;
                tracing::info!(datanode = %n.xfer_addr(), blocks = n.blocks.len(), "datanode decommissioned");
                done += 1;
            }
        }
        done
    }

    /// A heartbeat: fresh numbers in, waiting commands out. `None` when the datanode must
    /// register first.
    pub fn heartbeat(
        &mut self,
        uuid: &str,
        capacity: u64,
        dfs_used: u64,
        remaining: u64,
        active: u32,
        now: Instant,
    ) -> Option<Vec<Command>> {
        let dn = *self.by_uuid.get(uuid)?;
        let node = &mut self.nodes[dn as usize];
        if !node.live {
            return None;
        }
        node.reported_storage = true;
        node.capacity = capacity;
        node.dfs_used = dfs_used;
        node.remaining = remaining;
        node.active_transfers = active;
        node.last_heartbeat = now;
        node.last_update_ms = tusk_common::now_ms();
        Some(self.take_commands(dn))
    }

    pub fn take_commands(&mut self, dn: DnIdx) -> Vec<Command> {
        let mut out = Vec::new();
        let node = &mut self.nodes[dn as usize];
        if node.shutdown_requested {
            out.push(Command::Shutdown);
            return out;
        }
        if std::mem::take(&mut node.report_requested) {
            out.push(Command::BlockReport);
        }
        while !node.pending_deletes.is_empty() {
            let n = node.pending_deletes.len().min(MAX_DELETES_PER_COMMAND);
            out.push(Command::Delete(node.pending_deletes.drain(..n).collect()));
        }
        for (block, recovery_id, locations) in std::mem::take(&mut node.pending_recoveries) {
            out.push(Command::RecoverBlock(block, recovery_id, locations));
        }
        let node = &mut self.nodes[dn as usize];
        let transfers: Vec<_> = (0..MAX_TRANSFERS_PER_NODE).map_while(|_| node.pending_transfers.pop_front()).collect();
        for (block, targets) in transfers {
            out.push(Command::Transfer(block, targets.iter().map(|&t| self.info(t)).collect()));
        }
        out
    }

    pub fn request_shutdown(&mut self, dn: DnIdx) {
        self.nodes[dn as usize].shutdown_requested = true;
    }

    fn mark_dead(&mut self, dn: DnIdx) {
        let node = &mut self.nodes[dn as usize];
        if !node.live {
            return;
        }
        node.live = false;
        node.pending_deletes.clear();
        node.pending_transfers.clear();
        node.pending_recoveries.clear();
        let held: Vec<u32> = node.blocks.drain().collect();
        let rack = node.rack.clone();
        let racks_before = self.racks.len();
        self.leave_rack(&rack);
        if (racks_before > 1) != (self.racks.len() > 1) {
            self.requeue_all();
        }
        for i in held {
            self.unlist_replica(i, dn);
            self.unlist_corrupt(i, dn);
            self.requeue(i);
        }
        // Copies it was to send will not come: schedule them again at once.
        // Nor will its replica of a block it was writing in a pipeline.
        let sending: Vec<u64> = self
            .pending_replication
            .iter()
            .filter(|(&id, p)| match p.src {
                Some(src) => src == dn,
                None => self.slot(id).is_some_and(|i| self.pipeline_of(i).contains(&dn)),
            })
            .map(|(&id, _)| id)
            .collect();
        for id in sending {
            self.drop_pending(id);
        }
        tracing::warn!(datanode = %self.nodes[dn as usize].xfer_addr(), "datanode is dead; its replicas no longer count");
    }

    /// Declares dead every datanode silent for longer than `expiry`.
    pub fn check_heartbeats(&mut self, now: Instant, expiry: Duration) -> usize {
        let late: Vec<DnIdx> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.live && now.duration_since(n.last_heartbeat) > expiry)
            .map(|(i, _)| i as DnIdx)
            .collect();
        for &dn in &late {
            self.mark_dead(dn);
        }
        late.len()
    }

    /// A full block report replaces what we knew of the datanode's replicas. Replicas of
    /// blocks no file has are deleted.
    pub fn block_report(&mut self, uuid: &str, reported: &[Reported]) -> Option<()> {
        let dn = *self.by_uuid.get(uuid)?;
        if !self.nodes[dn as usize].live {
            return None;
        }
        // The report's replicas make up the datanode's new set; what the old one holds and
        // the new one does not is gone.
        let fresh = FxHashSet::with_capacity_and_hasher(reported.len(), Default::default());
        let before = std::mem::replace(&mut self.nodes[dn as usize].blocks, fresh);
        let mut orphans = Vec::new();
        for r in reported {
            if !self.add_replica(dn, *r) {
                orphans.push(r.id);
            }
        }
        let after = &self.nodes[dn as usize].blocks;
        let gone: Vec<u32> = before.into_iter().filter(|i| !after.contains(i)).collect();
        for i in gone {
            self.drop_replica(dn, i);
        }
        if !orphans.is_empty() {
            tracing::info!(datanode = %self.nodes[dn as usize].xfer_addr(), count = orphans.len(), "replicas of no file; deleting");
            self.nodes[dn as usize].pending_deletes.extend(orphans);
        }
        Some(())
    }

    /// Incremental report: replicas finished and replicas deleted.
    pub fn received_and_deleted(&mut self, uuid: &str, received: &[Reported], deleted: &[u64]) -> Option<()> {
        let dn = *self.by_uuid.get(uuid)?;
        if !self.nodes[dn as usize].live {
            return None;
        }
        for r in received {
            if !self.add_replica(dn, *r) {
                self.nodes[dn as usize].pending_deletes.push(r.id);
            }
        }
        for &id in deleted {
            if let Some(i) = self.slot(id) {
                self.drop_replica(dn, i);
            }
        }
        Some(())
    }

    pub fn live_nodes(&self) -> Vec<DnIdx> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.live).map(|(i, _)| i as DnIdx).collect()
    }

    /// Picks `n` distinct live datanodes for a new block (see [`choose_targets`]).
    pub fn choose(&self, n: usize, writer_ip: Option<&str>, excluded: &[String], block_size: u64) -> Vec<DnIdx> {
        self.choose_with(n, writer_ip, excluded, block_size, &[])
    }

    /// Like [`choose`](Self::choose), for a block that already has replicas on `have` racks.
    pub fn choose_with(
        &self,
        n: usize,
        writer_ip: Option<&str>,
        excluded: &[String],
        block_size: u64,
        have: &[String],
    ) -> Vec<DnIdx> {
        let candidates: Vec<Candidate> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, d)| d.in_service() && !excluded.contains(&d.uuid))
            .map(|(i, d)| Candidate {
                dn: i as DnIdx,
                ip: d.ip.clone(),
                rack: d.rack.clone(),
                // Registered but no heartbeat yet (due in seconds): assume room, ranked
                // below the datanodes known to have it.
                remaining: if d.reported_storage { d.remaining } else { block_size },
                load: d.active_transfers,
            })
            .collect();
        choose_targets(&candidates, n, writer_ip, block_size, have, self.racks.len())
    }

    /// One round of the replication monitor: copies for queued blocks, highest priority
    /// first, each sent by the least busy holder that has a free stream (at most
    /// [`MAX_TRANSFERS_PER_NODE`] in flight per datanode), at most `max_copies` in all; copies
    /// not confirmed within [`PENDING_TIMEOUT`] are scheduled again; then extra and corrupt
    /// replicas are removed. Returns how many copies were scheduled. Nothing before the
    /// queues are built.
    pub fn replication_work(&mut self, now: Instant, max_copies: usize) -> usize {
        if !self.queues_ready {
            return 0;
        }
        let expired: Vec<u64> = self
            .pending_replication
            .iter()
            .filter(|(_, p)| now.duration_since(p.at) >= PENDING_TIMEOUT)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            tracing::info!(block = id, "replication not confirmed in time; scheduling it again");
            self.drop_pending(id);
        }
        let mut scheduled = 0;
        for level in [PRIORITY_ONE_REPLICA, PRIORITY_VERY_UNDER, PRIORITY_UNDER, PRIORITY_BADLY_PLACED] {
            if scheduled >= max_copies {
                break;
            }
            let from = self.cursor[level];
            let ids: Vec<u64> = self.needed[level]
                .range(from.saturating_add(1)..)
                .chain(self.needed[level].range(..=from))
                .take(SCAN_PER_LEVEL)
                .copied()
                .collect();
            for id in ids {
                if scheduled >= max_copies {
                    break;
                }
                self.cursor[level] = id;
                if self.schedule_copy(id, now) {
                    scheduled += 1;
                }
            }
        }
        let excess: Vec<u64> = self.excess.iter().copied().collect();
        for id in excess {
            self.remove_extra_replicas(id);
        }
        scheduled
    }

    /// Schedules copies of `id` to reach its target, when it has none pending, a holder with
    /// a free stream and somewhere to copy to.
    fn schedule_copy(&mut self, id: u64, now: Instant) -> bool {
        if self.pending_replication.contains_key(&id) {
            return false;
        }
        let Some(i) = self.slot(id) else { return false };
        let b = *self.rec(i);
        let (live, expected) = (self.in_service_replicas(i).len(), b.expected as usize);
        let badly_placed = b.queued() == Some(PRIORITY_BADLY_PLACED as u8);
        if self.replica_count(i) == 0 || (live >= expected && !badly_placed) {
            return false;
        }
        // Datanodes being decommissioned send first (they take no new writes).
        let Some(src) =
            self.replicas(i).filter(|&d| self.nodes[d as usize].in_flight < MAX_TRANSFERS_PER_NODE).min_by_key(|&d| {
                let n = &self.nodes[d as usize];
                (n.admin == AdminState::Normal, n.in_flight, n.active_transfers)
            })
        else {
            return false;
        };
        let mut excluded: Vec<String> = self
            .replicas(i)
            .chain(self.corrupt_of(i).iter().copied())
            .map(|d| self.nodes[d as usize].uuid.clone())
            .collect();
        let block = ExtendedBlock { block_id: id, generation_stamp: b.genstamp, num_bytes: b.num_bytes };
        let have: Vec<String> = self.replica_racks(i).into_iter().map(str::to_owned).collect();
        let targets = if badly_placed {
            // One copy to another rack; the extra replica is then removed from the crowded one.
            excluded.extend(self.nodes.iter().filter(|n| have.contains(&n.rack)).map(|n| n.uuid.clone()));
            self.choose_with(1, None, &excluded, b.num_bytes, &have)
        } else {
            self.choose_with(expected - live, None, &excluded, b.num_bytes, &have)
        };
        if targets.is_empty() {
            // Every other datanode holds it, some only a corrupt copy (a small cluster): drop
            // the corrupt copies so that those datanodes can take a good one next round.
            let corrupt = self.corrupt_of(i).to_vec();
            for dn in corrupt {
                tracing::info!(block = id, datanode = %self.nodes[dn as usize].xfer_addr(), "no other target: deleting a corrupt replica to make room for a good one");
                self.drop_replica(dn, i);
                self.nodes[dn as usize].pending_deletes.push(id);
            }
            return false;
        }
        let copies = targets.len();
        let node = &mut self.nodes[src as usize];
        node.pending_transfers.push_back((block, targets));
        node.in_flight += 1;
        self.pending_replication.insert(id, Pending { at: now, src: Some(src), copies });
        true
    }

    /// Drops corrupt replicas once enough good ones exist, and extra good ones from the
    /// fullest holders; never below the target, never the last good copy.
    fn remove_extra_replicas(&mut self, id: u64) {
        let Some(i) = self.slot(id) else { return };
        let mut holders = self.in_service_replicas(i);
        let (live, expected) = (holders.len(), self.rec(i).expected as usize);
        let mut drop = Vec::new();
        if live >= expected {
            drop.extend(self.corrupt_of(i).iter().copied());
        }
        if live > expected {
            // HDFS's rule: from the rack with the most replicas (so every rack keeps one when it
            // can), the holder with the least free space first. Replicas on datanodes being
            // decommissioned are left alone: they go with their datanode.
            for _ in 0..live - expected {
                let mut per_rack: HashMap<&str, usize> = HashMap::new();
                for &d in &holders {
                    *per_rack.entry(self.nodes[d as usize].rack.as_str()).or_default() += 1;
                }
                let Some(&victim) = holders.iter().max_by_key(|&&d| {
                    let n = &self.nodes[d as usize];
                    (per_rack[n.rack.as_str()], std::cmp::Reverse(n.remaining))
                }) else {
                    break;
                };
                holders.retain(|&d| d != victim);
                drop.push(victim);
            }
        }
        for dn in drop {
            self.drop_replica(dn, i);
            self.nodes[dn as usize].pending_deletes.push(id);
        }
    }
}

/// A datanode as placement sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub dn: DnIdx,
    pub ip: String,
    pub rack: String,
    pub remaining: u64,
    pub load: u32,
}

/// Placement: distinct datanodes with room for a block, ranked by preference: the writer's
/// own datanode first when it is one; then the most free space (in 1 GiB steps so that load
/// can matter), the least busy among equals. With several racks (`racks` live ones), HDFS's
/// rule picks from that order: the first replica anywhere (the writer's node), the second on
/// another rack, the third on the second's rack, further ones spread so that no rack holds
/// more than `(replicas - 1) / racks + 2`. `have` are the racks of replicas the block already
/// has (re-replication). With one rack it is just the ranking.
pub fn choose_targets(
    candidates: &[Candidate],
    n: usize,
    writer_ip: Option<&str>,
    block_size: u64,
    have: &[String],
    racks: usize,
) -> Vec<DnIdx> {
    let mut fit: Vec<&Candidate> = candidates.iter().filter(|c| c.remaining >= block_size).collect();
    fit.sort_by(|a, b| {
        let local = |c: &Candidate| writer_ip.is_some_and(|w| w == c.ip);
        local(b)
            .cmp(&local(a))
            .then((b.remaining >> 30).cmp(&(a.remaining >> 30)))
            .then(a.load.cmp(&b.load))
            .then(b.remaining.cmp(&a.remaining))
            .then(a.dn.cmp(&b.dn))
    });
    if racks <= 1 {
        return fit.into_iter().take(n).map(|c| c.dn).collect();
    }
    let mut placed: Vec<String> = have.to_vec();
    let max_per_rack = (have.len() + n).saturating_sub(1) / racks + 2;
    let mut out = Vec::new();
    while out.len() < n && !fit.is_empty() {
        let count = |r: &str| placed.iter().filter(|p| p.as_str() == r).count();
        let prefer = |c: &&Candidate| -> bool {
            match placed.as_slice() {
                [] => true,
                [first] => c.rack != *first,
                [first, second] if first != second => c.rack == *second,
                [first, _] => c.rack != *first,
                _ => count(&c.rack) < max_per_rack,
            }
        };
        let i =
            fit.iter().position(prefer).or_else(|| fit.iter().position(|c| count(&c.rack) < max_per_rack)).unwrap_or(0);
        let c = fit.remove(i);
        placed.push(c.rack.clone());
        out.push(c.dn);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(dn: DnIdx, ip: &str, gib: u64, load: u32) -> Candidate {
        Candidate { dn, ip: ip.into(), rack: "/default-rack".into(), remaining: gib << 30, load }
    }

    #[test]
    fn placement_prefers_writer_then_space_then_load() {
        let c = vec![
            cand(0, "10.0.0.1", 10, 0),
            cand(1, "10.0.0.2", 50, 5),
            cand(2, "10.0.0.3", 50, 1),
            cand(3, "10.0.0.4", 0, 0),
        ];
        assert_eq!(choose_targets(&c, 3, Some("10.0.0.1"), 1 << 27, &[], 1), vec![0, 2, 1]);
        assert_eq!(choose_targets(&c, 2, None, 1 << 27, &[], 1), vec![2, 1]);
        // The full node never gets a block; asking for more than there are gives fewer.
        assert_eq!(choose_targets(&c, 5, None, 1 << 27, &[], 1).len(), 3);
    }

    fn rep(id: u64, len: u64) -> Reported {
        Reported { id, genstamp: 1001, len, finalized: true }
    }

    #[test]
    fn reports_follow_replicas_and_death_forgets_them() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        let a = m.register("a", "h", "127.0.0.1", 1, 0, 0, "/default-rack", now);
        let b = m.register("b", "h", "127.0.0.1", 2, 0, 0, "/default-rack", now);
        m.add_block(7, 1001, 100, 2, true);
        m.block_report("a", &[rep(7, 100), rep(99, 5)]).unwrap();
        assert_eq!(m.live_replicas(7), 1);
        // An unknown block is deleted on the next heartbeat.
        let cmds = m.heartbeat("a", 1 << 40, 0, 1 << 40, 0, now).unwrap();
        assert_eq!(cmds, vec![Command::Delete(vec![99])]);
        // Under-replicated: a copy from a to b is scheduled, once.
        m.heartbeat("b", 1 << 40, 0, 1 << 40, 0, now).unwrap();
        assert_eq!(m.replication_work(now, 10), 1);
        assert_eq!(m.replication_work(now, 10), 0);
        let cmds = m.take_commands(a);
        assert!(matches!(&cmds[..], [Command::Transfer(blk, t)] if blk.block_id == 7 && t[0].datanode_uuid == "b"));
        m.received_and_deleted("b", &[rep(7, 100)], &[]).unwrap();
        assert_eq!(m.live_replicas(7), 2);
        // A wrong length is a corrupt replica.
        m.add_block(8, 1001, 100, 1, true);
        m.block_report("b", &[rep(7, 100), rep(8, 50)]).unwrap();
        assert_eq!(m.block(8).unwrap().corrupt, vec![b]);
        // Death forgets a's replicas; a heartbeat after that asks to register again.
        assert_eq!(m.check_heartbeats(now + Duration::from_secs(700), Duration::from_secs(630)), 2);
        assert_eq!(m.live_replicas(7), 0);
        assert!(m.heartbeat("a", 0, 0, 0, 0, now).is_none());
        m.check_invariants();
        let _ = a;
    }

    #[test]
    fn extra_and_corrupt_replicas_are_removed_never_the_last() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        for (u, port) in [("a", 1), ("b", 2), ("c", 3)] {
            m.register(u, "h", "127.0.0.1", port, 0, 0, "/default-rack", now);
        }
        m.add_block(5, 1001, 10, 1, true);
        for u in ["a", "b", "c"] {
            m.received_and_deleted(u, &[rep(5, 10)], &[]).unwrap();
        }
        m.replication_work(now, 10);
        assert_eq!(m.live_replicas(5), 1);
        m.add_block(6, 1001, 10, 1, true);
        m.received_and_deleted("a", &[rep(6, 10)], &[]).unwrap();
        assert!(m.mark_corrupt(6, "a"));
        m.replication_work(now, 10);
        // The only copy is corrupt: it is kept (and reported), not deleted.
        assert_eq!(m.block(6).unwrap().corrupt.len(), 1);
        m.check_invariants();
    }

    #[test]
    fn queue_levels_follow_replicas_and_the_neediest_go_first() {
        assert_eq!(priority(3, 3), None);
        assert_eq!(priority(0, 3), Some(PRIORITY_NO_GOOD_REPLICA));
        assert_eq!(priority(1, 3), Some(PRIORITY_ONE_REPLICA));
        assert_eq!(priority(2, 10), Some(PRIORITY_VERY_UNDER));
        assert_eq!(priority(2, 3), Some(PRIORITY_UNDER));
        let mut m = BlockMap::new();
        let now = Instant::now();
        for (u, port) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
            m.register(u, "h", "127.0.0.1", port, 0, 0, "/default-rack", now);
            m.heartbeat(u, 1 << 40, 0, 1 << 40, 0, now).unwrap();
        }
        // Block 1 has two replicas of three, block 2 only one: block 2 is copied first.
        m.add_block(1, 1001, 10, 3, true);
        m.add_block(2, 1001, 10, 3, true);
        m.add_block(3, 1001, 10, 3, false);
        for u in ["a", "b"] {
            m.received_and_deleted(u, &[rep(1, 10)], &[]).unwrap();
        }
        m.received_and_deleted("c", &[rep(2, 10), rep(3, 10)], &[]).unwrap();
        assert_eq!(m.queue_lengths(), [1, 0, 1, 0, 0], "an unfinished block is not queued");
        assert_eq!(m.replication_work(now, 1), 1);
        let c = m.find("c").unwrap();
        assert!(matches!(&m.take_commands(c)[..], [Command::Transfer(b, t)] if b.block_id == 2 && t.len() == 2));
        // Confirmed copies take it out of the queue.
        m.received_and_deleted("a", &[rep(2, 10)], &[]).unwrap();
        assert_eq!(m.queue_lengths(), [0, 0, 2, 0, 0]);
        assert_eq!(m.pending_replications(), 1, "one of two copies still to come");
        m.received_and_deleted("d", &[rep(2, 10)], &[]).unwrap();
        assert_eq!(m.pending_replications(), 0);
        assert_eq!(m.queue_lengths(), [0, 0, 1, 0, 0]);
        // Losing its only holder leaves a block with nothing to copy from.
        m.add_block(4, 1001, 10, 2, true);
        m.received_and_deleted("b", &[rep(4, 10)], &[]).unwrap();
        assert_eq!(m.check_heartbeats(now + Duration::from_secs(700), Duration::from_secs(630)), 4);
        assert_eq!(m.queue_lengths(), [0, 0, 0, 0, 3], "every complete block; the unfinished one is not queued");
        m.check_invariants();
    }

    #[test]
    fn blocks_being_written_follow_their_pipeline_through_recovery() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        for (u, port) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
            m.register(u, "h", "127.0.0.1", port, 0, 0, "/default-rack", now);
            m.heartbeat(u, 1 << 40, 0, 1 << 40, 0, now).unwrap();
        }
        let uuids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let names = |v: Vec<DatanodeInfo>| v.into_iter().map(|d| d.datanode_uuid).collect::<Vec<_>>();
        m.add_block(7, 1001, 0, 3, false);
        m.set_pipeline(7, 1001, &uuids(&["a", "b", "c"]));
        assert_eq!(names(m.uc_locations(7)), ["a", "b", "c"], "readers of an hflushed block go to the pipeline");
        // "b" failed: the rebuilt pipeline has a newer stamp and a replacement.
        m.set_pipeline(7, 1002, &uuids(&["a", "c", "d"]));
        assert_eq!(m.block(7).unwrap().genstamp, 1002);
        assert_eq!(names(m.uc_locations(7)), ["a", "c", "d"]);
        // Lease recovery committed: complete, with the synced replicas only.
        m.commit_recovered(7, 1005, 4096, &uuids(&["a", "c"]));
        let b = m.block(7).unwrap();
        assert!(b.complete);
        assert_eq!((b.genstamp, b.num_bytes, b.replicas.len()), (1005, 4096, 2));
        // An unfinished replica with the old stamp, reported later, is deleted, not counted.
        let stale = Reported { id: 7, genstamp: 1002, len: 100, finalized: false };
        m.block_report("d", &[stale]).unwrap();
        assert_eq!(m.live_replicas(7), 2);
        let d = m.find("d").unwrap();
        assert!(m.take_commands(d).iter().any(|c| matches!(c, Command::Delete(ids) if ids.contains(&7))));
        // Recovery commands ride on the primary's next heartbeat.
        let block = ExtendedBlock { block_id: 7, generation_stamp: 1005, num_bytes: 0 };
        m.queue_recovery("c", block, 1006, Vec::new());
        let c = m.find("c").unwrap();
        assert!(matches!(&m.take_commands(c)[..], [Command::RecoverBlock(b, 1006, _)] if b.block_id == 7));
        m.check_invariants();
    }

    #[test]
    fn a_holder_sends_a_bounded_number_of_copies_and_late_ones_are_rescheduled() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        for (u, port) in [("a", 1), ("b", 2)] {
            m.register(u, "h", "127.0.0.1", port, 0, 0, "/default-rack", now);
            m.heartbeat(u, 1 << 40, 0, 1 << 40, 0, now).unwrap();
        }
        for id in 1..=10 {
            m.add_block(id, 1001, 10, 2, true);
            m.received_and_deleted("a", &[rep(id, 10)], &[]).unwrap();
        }
        assert_eq!(m.replication_work(now, 100), MAX_TRANSFERS_PER_NODE);
        assert_eq!(m.replication_work(now, 100), 0, "the only holder is busy");
        // Never confirmed: after the timeout they are scheduled again.
        let later = now + PENDING_TIMEOUT;
        assert_eq!(m.replication_work(later, 100), MAX_TRANSFERS_PER_NODE);
        let a = m.find("a").unwrap();
        assert_eq!(m.take_commands(a).len(), MAX_TRANSFERS_PER_NODE);
    }

    #[test]
    fn two_racks_get_every_block_and_the_third_replica_joins_the_second() {
        let on = |dn: DnIdx, rack: &str| Candidate {
            dn,
            ip: format!("10.0.0.{dn}"),
            rack: rack.into(),
            remaining: 100 << 30,
            load: dn,
        };
        let c = vec![on(0, "/a"), on(1, "/a"), on(2, "/a"), on(3, "/b"), on(4, "/b")];
        // Writer on node 0 (rack /a): second on /b, third on /b too.
        let t = choose_targets(&c, 3, Some("10.0.0.0"), 1 << 27, &[], 2);
        assert_eq!(t, vec![0, 3, 4]);
        // Re-replication of a block with two replicas on /a: the new one goes to /b.
        let have = vec!["/a".to_string(), "/a".to_string()];
        assert_eq!(choose_targets(&c[1..], 1, None, 1 << 27, &have, 2), vec![3]);
        // One rack: the ranking alone.
        assert_eq!(choose_targets(&c, 3, None, 1 << 27, &[], 1), vec![0, 1, 2]);
    }

    #[test]
    fn a_completed_blocks_pipeline_replicas_count_as_coming() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        let names = cluster(&mut m, 4, now);
        m.init_queues();
        let pipeline: Vec<String> = names[..3].to_vec();
        // `complete` after the first of three reports: the other two are on their way.
        m.add_block(1, 1001, 10, 3, false);
        m.set_pipeline(1, 1001, &pipeline);
        m.received_and_deleted("a", &[rep(1, 10)], &[]).unwrap();
        m.complete_block(1, 10);
        assert_eq!(m.pending_replications(), 1);
        assert_eq!(m.replication_work(now, 10), 0, "no copy of a block whose pipeline has yet to report");
        m.received_and_deleted("b", &[rep(1, 10)], &[]).unwrap();
        m.received_and_deleted("c", &[rep(1, 10)], &[]).unwrap();
        assert_eq!(m.pending_replications(), 0);
        assert_eq!(m.queue_lengths(), [0; LEVELS]);
        // A pipeline datanode that dies instead: the copy is made at once, from a holder.
        m.add_block(2, 1001, 10, 3, false);
        m.set_pipeline(2, 1001, &pipeline);
        m.received_and_deleted("a", &[rep(2, 10)], &[]).unwrap();
        m.received_and_deleted("b", &[rep(2, 10)], &[]).unwrap();
        m.complete_block(2, 10);
        assert_eq!(m.replication_work(now, 10), 0);
        for u in ["a", "b", "d"] {
            m.heartbeat(u, 1 << 40, 0, 1 << 40, 0, now + Duration::from_secs(650)).unwrap();
        }
        assert_eq!(m.check_heartbeats(now + Duration::from_secs(700), Duration::from_secs(630)), 1);
        assert_eq!(m.pending_replications(), 0);
        // Block 2, and block 1, whose replica on "c" is gone with it.
        assert_eq!(m.replication_work(now + Duration::from_secs(700), 10), 2);
        // One that stays silent: the wait times out and the copy is made then.
        m.add_block(3, 1001, 10, 3, false);
        m.set_pipeline(3, 1001, &names[..2]);
        m.received_and_deleted("a", &[rep(3, 10)], &[]).unwrap();
        m.complete_block(3, 10);
        // (The pending entry is stamped with the real clock.)
        let later = Instant::now();
        assert_eq!(m.replication_work(later, 10), 0);
        assert!(m.replication_work(later + PENDING_TIMEOUT, 10) >= 1);
        m.check_invariants();
    }

    #[test]
    fn a_block_on_one_rack_of_two_is_moved() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        for (u, port, rack) in [("a", 1, "/r1"), ("b", 2, "/r1"), ("c", 3, "/r1"), ("d", 4, "/r2")] {
            m.register(u, "h", "127.0.0.1", port, 0, 0, rack, now);
            m.heartbeat(u, 1 << 40, 0, 1 << 40, 0, now).unwrap();
        }
        m.add_block(1, 1001, 10, 3, true);
        for u in ["a", "b", "c"] {
            m.received_and_deleted(u, &[rep(1, 10)], &[]).unwrap();
        }
        assert_eq!(m.queue_lengths()[PRIORITY_BADLY_PLACED], 1);
        assert_eq!(m.replication_work(now, 10), 1);
        let src = m.pending_replication[&1].src.unwrap();
        let cmds = m.take_commands(src);
        assert!(matches!(&cmds[..], [Command::Transfer(_, t)] if t.len() == 1 && t[0].datanode_uuid == "d"));
        m.received_and_deleted("d", &[rep(1, 10)], &[]).unwrap();
        // Four replicas, two racks: one of /r1's three goes.
        m.replication_work(now, 10);
        let racks: Vec<&str> =
            m.block(1).unwrap().replicas.iter().map(|&d| m.nodes[d as usize].rack.as_str()).collect();
        assert_eq!(racks.len(), 3);
        assert!(racks.contains(&"/r2") && racks.iter().filter(|r| **r == "/r1").count() == 2, "{racks:?}");
        assert_eq!(m.queue_lengths(), [0; LEVELS]);
        m.check_invariants();
    }

    #[test]
    fn safe_counts_follow_every_change_without_a_scan() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        let check = |m: &BlockMap| {
            let st = m.stats(true);
            assert_eq!(m.safe_counts(), (st.total_complete, st.safe));
            m.check_invariants();
        };
        for (u, port) in [("a", 1), ("b", 2)] {
            m.register(u, "h", "127.0.0.1", port, 0, 0, "/default-rack", now);
        }
        m.add_block(1, 1001, 10, 2, true);
        m.add_block(2, 1001, 10, 2, false);
        check(&m);
        m.received_and_deleted("a", &[rep(1, 10), rep(2, 10)], &[]).unwrap();
        check(&m);
        m.complete_block(2, 10);
        check(&m);
        assert_eq!(m.safe_counts(), (2, 2));
        m.received_and_deleted("a", &[], &[1]).unwrap();
        check(&m);
        m.remove_block(2);
        check(&m);
        m.received_and_deleted("b", &[rep(1, 10)], &[]).unwrap();
        m.check_heartbeats(now + Duration::from_secs(700), Duration::from_secs(630));
        check(&m);
        assert_eq!(m.safe_counts(), (1, 0));
    }

    /// Registers datanodes "a", "b", ... (one rack) with a first heartbeat.
    fn cluster(m: &mut BlockMap, n: usize, now: Instant) -> Vec<String> {
        let names: Vec<String> = (0..n).map(|i| ((b'a' + i as u8) as char).to_string()).collect();
        for (port, u) in names.iter().enumerate() {
            m.register(u, "h", "127.0.0.1", port as u32 + 1, 0, 0, "/default-rack", now);
            m.heartbeat(u, 1 << 40, 0, 1 << 40, 0, now).unwrap();
        }
        names
    }

    #[test]
    fn a_record_is_forty_bytes_and_replicas_past_three_overflow_in_order() {
        assert_eq!(std::mem::size_of::<Rec>(), 40);
        let mut m = BlockMap::new();
        let now = Instant::now();
        let names = cluster(&mut m, 6, now);
        m.add_block(1, 1001, 10, 5, true);
        for u in &names[..5] {
            m.received_and_deleted(u, &[rep(1, 10)], &[]).unwrap();
        }
        assert_eq!(m.block(1).unwrap().replicas, vec![0, 1, 2, 3, 4]);
        m.check_invariants();
        // Out of the inline slots: the first extra replica moves in, the order is kept.
        m.received_and_deleted("b", &[], &[1]).unwrap();
        assert_eq!(m.block(1).unwrap().replicas, vec![0, 2, 3, 4]);
        m.check_invariants();
        // Out of the overflow: the side entry goes with its last replica.
        m.received_and_deleted("e", &[], &[1]).unwrap();
        assert_eq!(m.block(1).unwrap().replicas, vec![0, 2, 3]);
        assert!(m.extra.is_empty());
        m.check_invariants();
        // A corrupt copy (wrong length) leaves the good list for the side table.
        m.received_and_deleted("f", &[rep(1, 10)], &[]).unwrap();
        m.block_report("c", &[rep(1, 7)]).unwrap();
        let b = m.block(1).unwrap();
        assert_eq!((b.replicas, b.corrupt), (vec![0, 3, 5], vec![2]));
        m.check_invariants();
        assert_eq!(m.queue_lengths(), [0, 0, 1, 0, 0], "3 good of 5");
    }

    #[test]
    fn a_freed_slot_is_reused_and_its_old_holders_do_not_inherit_it() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        cluster(&mut m, 3, now);
        m.add_block(1, 1001, 10, 2, true);
        m.add_block(2, 1001, 10, 2, true);
        m.received_and_deleted("a", &[rep(1, 10), rep(2, 10)], &[]).unwrap();
        m.received_and_deleted("b", &[rep(1, 10)], &[]).unwrap();
        let slot = m.slot(1).unwrap();
        m.remove_block(1);
        assert!(m.block(1).is_none());
        m.check_invariants();
        // Block 3 takes block 1's slot; "a" and "b" held 1, not 3.
        m.add_block(3, 1001, 10, 2, true);
        assert_eq!(m.slot(3), Some(slot));
        assert_eq!(m.live_replicas(3), 0);
        assert_eq!(m.datanodes().map(|(_, d)| d.num_blocks()).collect::<Vec<_>>(), [1, 0, 0]);
        m.check_invariants();
        // Both were told to delete block 1.
        for u in ["a", "b"] {
            let dn = m.find(u).unwrap();
            assert!(m.take_commands(dn).iter().any(|c| matches!(c, Command::Delete(ids) if ids == &[1])));
        }
        m.block_report("c", &[rep(3, 10), rep(2, 10)]).unwrap();
        assert_eq!((m.live_replicas(2), m.live_replicas(3)), (2, 1));
        m.check_invariants();
    }

    #[test]
    fn a_full_report_replaces_what_the_datanode_held() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        cluster(&mut m, 2, now);
        for id in 1..=4 {
            m.add_block(id, 1001, 10, 2, true);
        }
        m.block_report("a", &[rep(1, 10), rep(2, 10), rep(3, 10)]).unwrap();
        m.block_report("b", &[rep(1, 10)]).unwrap();
        assert_eq!(m.queue_lengths(), [2, 0, 0, 0, 1]);
        // The same report again changes nothing.
        m.block_report("a", &[rep(1, 10), rep(2, 10), rep(3, 10)]).unwrap();
        assert_eq!(m.queue_lengths(), [2, 0, 0, 0, 1]);
        m.check_invariants();
        // 2 is gone from "a", 4 arrived; an unfinished copy of the finished block 3 (about to
        // be finalized) keeps what was known of it.
        let unfinished = Reported { id: 3, genstamp: 1001, len: 10, finalized: false };
        m.block_report("a", &[rep(1, 10), unfinished, rep(4, 10)]).unwrap();
        assert_eq!((1..=4).map(|id| m.live_replicas(id)).collect::<Vec<_>>(), [2, 0, 1, 1]);
        assert_eq!(m.safe_counts(), (4, 3));
        m.check_invariants();
    }

    /// Every block's level and excess flag, for comparing two maps.
    fn filing(m: &BlockMap) -> Vec<(u64, Option<u8>, bool)> {
        let mut v: Vec<_> =
            m.recs.iter().filter(|r| !r.has(F_FREE)).map(|r| (r.id, r.queued(), r.has(F_EXCESS))).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn queues_built_once_after_start_up_match_queues_kept_all_along() {
        let now = Instant::now();
        let mut kept = BlockMap::new();
        let mut startup = BlockMap::for_startup(100);
        for m in [&mut kept, &mut startup] {
            let names = cluster(m, 4, now);
            for id in 0..100u64 {
                m.add_block(id, 1001, 10, 1 + (id % 4) as u16, id % 10 != 9);
            }
            // Block i on (i % 5) datanodes, some of them a corrupt copy.
            for (n, u) in names.iter().enumerate() {
                let reps: Vec<Reported> = (0..100u64)
                    .filter(|id| (id % 5) as usize > n)
                    .map(|id| rep(id, if id % 7 == 0 && n == 0 { 3 } else { 10 }))
                    .collect();
                m.block_report(u, &reps).unwrap();
            }
            m.remove_block(50);
            m.check_invariants();
        }
        assert_eq!(startup.queue_totals(), (0, 0, 0), "no queue during start-up");
        assert_eq!(startup.replication_work(now, 100), 0);
        assert_eq!(startup.safe_counts(), kept.safe_counts());
        assert_eq!(startup.stats(false), kept.stats(false), "stats do not depend on the queues");
        startup.init_queues();
        assert_eq!(filing(&startup), filing(&kept));
        assert_eq!(startup.queue_lengths(), kept.queue_lengths());
        assert_eq!(startup.queue_totals(), kept.queue_totals());
        assert!(kept.queue_totals().0 > 0 && kept.queue_totals().2 > 0);
        // From now on kept up to date as in the other map.
        for m in [&mut kept, &mut startup] {
            m.received_and_deleted("d", &[rep(3, 10), rep(8, 10)], &[]).unwrap();
            m.check_heartbeats(now + Duration::from_secs(700), Duration::from_secs(630));
        }
        assert_eq!(filing(&startup), filing(&kept));
        assert_eq!(startup.queue_lengths(), kept.queue_lengths());
    }
}
