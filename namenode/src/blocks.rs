//! The block map and the datanode registry: which datanodes are alive, which replicas each
//! holds, what each block needs, and the commands waiting for each datanode's next
//! heartbeat. Decisions are plain data (`choose_targets`, `replication_work`) with unit
//! tests; the RPC handlers deliver them. Protected by one mutex, always taken after the
//! namespace lock when both are needed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tusk_proto::client::{DatanodeInfo, ExtendedBlock};

pub type DnIdx = u32;

/// Largest number of block ids in one delete command.
const MAX_DELETES_PER_COMMAND: usize = 1000;
/// Replications scheduled per datanode per heartbeat (a limit on everything).
const MAX_TRANSFERS_PER_NODE: usize = 4;
/// A scheduled replication not confirmed within this time is scheduled again.
const PENDING_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct Datanode {
    pub uuid: String,
    pub hostname: String,
    pub ip: String,
    pub xfer_port: u32,
    pub http_port: u32,
    pub ipc_port: u32,
    pub capacity: u64,
    pub dfs_used: u64,
    pub remaining: u64,
    pub active_transfers: u32,
    pub last_heartbeat: Instant,
    pub last_update_ms: i64,
    pub live: bool,
    /// Set by the first heartbeat; until then the space figures are unknown.
    pub reported_storage: bool,
    pub blocks: HashSet<u64>,
    pending_deletes: Vec<u64>,
    pending_transfers: VecDeque<(ExtendedBlock, Vec<DnIdx>)>,
    pub shutdown_requested: bool,
    pub report_requested: bool,
}

impl Datanode {
    pub fn xfer_addr(&self) -> String {
        format!("{}:{}", self.ip, self.xfer_port)
    }
}

#[derive(Debug, Clone)]
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
}

/// What a datanode is told on its next heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Delete(Vec<u64>),
    Transfer(ExtendedBlock, Vec<DatanodeInfo>),
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

#[derive(Default)]
pub struct BlockMap {
    nodes: Vec<Datanode>,
    by_uuid: HashMap<String, DnIdx>,
    blocks: HashMap<u64, BlockInfo>,
    pending_replication: HashMap<u64, Instant>,
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
    pub fn new() -> Self {
        Self::default()
    }

    // ---- blocks ----

    pub fn add_block(&mut self, id: u64, genstamp: u64, num_bytes: u64, expected: u16, complete: bool) {
        self.blocks.entry(id).or_insert(BlockInfo {
            genstamp,
            num_bytes,
            expected,
            complete,
            replicas: Vec::new(),
            corrupt: Vec::new(),
        });
    }

    pub fn block(&self, id: u64) -> Option<&BlockInfo> {
        self.blocks.get(&id)
    }

    pub fn complete_block(&mut self, id: u64, num_bytes: u64) {
        if let Some(b) = self.blocks.get_mut(&id) {
            b.complete = true;
            b.num_bytes = num_bytes;
        }
    }

    pub fn set_expected(&mut self, id: u64, expected: u16) {
        if let Some(b) = self.blocks.get_mut(&id) {
            b.expected = expected;
        }
    }

    /// Forgets a block (its file was deleted, or the block abandoned) and has every holder
    /// delete its replica.
    pub fn remove_block(&mut self, id: u64) {
        if let Some(b) = self.blocks.remove(&id) {
            for dn in b.replicas.iter().chain(&b.corrupt) {
                let node = &mut self.nodes[*dn as usize];
                node.blocks.remove(&id);
                node.pending_deletes.push(id);
            }
        }
        self.pending_replication.remove(&id);
    }

    /// Live replicas of a block, with the datanodes' addresses.
    pub fn locations(&self, id: u64) -> (Vec<DatanodeInfo>, Vec<DatanodeInfo>) {
        match self.blocks.get(&id) {
            Some(b) => {
                (b.replicas.iter().map(|&d| self.info(d)).collect(), b.corrupt.iter().map(|&d| self.info(d)).collect())
            }
            None => (Vec::new(), Vec::new()),
        }
    }

    pub fn live_replicas(&self, id: u64) -> usize {
        self.blocks.get(&id).map_or(0, |b| b.replicas.len())
    }

    fn add_replica(&mut self, dn: DnIdx, r: Reported) -> bool {
        let Some(b) = self.blocks.get_mut(&r.id) else { return false };
        // A replica with an older stamp, or a finished one of the wrong length, is corrupt.
        let stale = r.genstamp < b.genstamp || (b.complete && r.finalized && r.len != b.num_bytes);
        if stale {
            if !b.corrupt.contains(&dn) {
                b.corrupt.push(dn);
            }
            b.replicas.retain(|&d| d != dn);
        } else if !b.replicas.contains(&dn) && !b.corrupt.contains(&dn) {
            b.replicas.push(dn);
            self.pending_replication.remove(&r.id);
        }
        self.nodes[dn as usize].blocks.insert(r.id);
        true
    }

    fn remove_replica(&mut self, dn: DnIdx, id: u64) {
        if let Some(b) = self.blocks.get_mut(&id) {
            b.replicas.retain(|&d| d != dn);
            b.corrupt.retain(|&d| d != dn);
        }
        self.nodes[dn as usize].blocks.remove(&id);
    }

    /// A client or scanner found `dn`'s replica of `id` corrupt.
    pub fn mark_corrupt(&mut self, id: u64, uuid: &str) -> bool {
        let Some(&dn) = self.by_uuid.get(uuid) else { return false };
        let Some(b) = self.blocks.get_mut(&id) else { return false };
        b.replicas.retain(|&d| d != dn);
        if !b.corrupt.contains(&dn) {
            b.corrupt.push(dn);
        }
        tracing::warn!(block = id, datanode = %self.nodes[dn as usize].xfer_addr(), "replica marked corrupt");
        true
    }

    pub fn stats(&self, in_safe_mode: bool) -> BlockStats {
        let mut s = BlockStats::default();
        for b in self.blocks.values() {
            if !b.complete {
                continue;
            }
            s.total_complete += 1;
            if !b.replicas.is_empty() {
                s.safe += 1;
            }
            if !b.corrupt.is_empty() {
                s.corrupt += 1;
            }
            if b.replicas.is_empty() && !in_safe_mode {
                s.missing += 1;
            } else if b.replicas.len() < b.expected as usize {
                s.under_replicated += 1;
            }
        }
        s
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
            rack: "/default-rack".into(),
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
                self.nodes.push(Datanode {
                    uuid: uuid.to_owned(),
                    hostname: String::new(),
                    ip: String::new(),
                    xfer_port: 0,
                    http_port: 0,
                    ipc_port: 0,
                    capacity: 0,
                    dfs_used: 0,
                    remaining: 0,
                    active_transfers: 0,
                    last_heartbeat: now,
                    last_update_ms: tusk_common::now_ms(),
                    live: true,
                    reported_storage: false,
                    blocks: HashSet::new(),
                    pending_deletes: Vec::new(),
                    pending_transfers: VecDeque::new(),
                    shutdown_requested: false,
                    report_requested: false,
                });
                self.by_uuid.insert(uuid.to_owned(), i);
                i
            }
        };
        let n = &mut self.nodes[idx as usize];
        n.hostname = hostname.to_owned();
        n.ip = ip.to_owned();
        n.xfer_port = xfer_port;
        n.http_port = http_port;
        n.ipc_port = ipc_port;
        n.last_heartbeat = now;
        n.live = true;
        n.shutdown_requested = false;
        tracing::info!(uuid, addr = %addr, "datanode registered");
        idx
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
        let held: Vec<u64> = node.blocks.drain().collect();
        for id in held {
            if let Some(b) = self.blocks.get_mut(&id) {
                b.replicas.retain(|&d| d != dn);
                b.corrupt.retain(|&d| d != dn);
            }
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
        let before: HashSet<u64> = self.nodes[dn as usize].blocks.clone();
        let mut seen = HashSet::with_capacity(reported.len());
        let mut orphans = Vec::new();
        for r in reported {
            seen.insert(r.id);
            if !self.add_replica(dn, *r) {
                orphans.push(r.id);
            }
        }
        for id in before.difference(&seen) {
            self.remove_replica(dn, *id);
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
        for id in deleted {
            self.remove_replica(dn, *id);
        }
        Some(())
    }

    pub fn live_nodes(&self) -> Vec<DnIdx> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.live).map(|(i, _)| i as DnIdx).collect()
    }

    /// Picks `n` distinct live datanodes for a new block (see [`choose_targets`]).
    pub fn choose(&self, n: usize, writer_ip: Option<&str>, excluded: &[String], block_size: u64) -> Vec<DnIdx> {
        let candidates: Vec<Candidate> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, d)| d.live && !excluded.contains(&d.uuid))
            .map(|(i, d)| Candidate {
                dn: i as DnIdx,
                ip: d.ip.clone(),
                // Registered but no heartbeat yet (due in seconds): assume room, ranked
                // below the datanodes known to have it.
                remaining: if d.reported_storage { d.remaining } else { block_size },
                load: d.active_transfers,
            })
            .collect();
        choose_targets(&candidates, n, writer_ip, block_size)
    }

    /// Schedules copies of under-replicated blocks and removal of extra and corrupt
    /// replicas; returns how many copies were scheduled. Runs on a timer.
    pub fn replication_work(&mut self, now: Instant, max_copies: usize) -> usize {
        self.pending_replication.retain(|_, at| now.duration_since(*at) < PENDING_TIMEOUT);
        let mut scheduled = 0;
        let ids: Vec<u64> = self.blocks.keys().copied().collect();
        for id in ids {
            let Some(b) = self.blocks.get(&id) else { continue };
            if !b.complete {
                continue;
            }
            let live = b.replicas.len();
            let expected = b.expected as usize;
            if live > 0 && live < expected && scheduled < max_copies && !self.pending_replication.contains_key(&id) {
                let holders = b.replicas.clone();
                let block = ExtendedBlock { block_id: id, generation_stamp: b.genstamp, num_bytes: b.num_bytes };
                let excluded: Vec<String> =
                    holders.iter().chain(&b.corrupt).map(|&d| self.nodes[d as usize].uuid.clone()).collect();
                let targets = self.choose(expected - live, None, &excluded, b.num_bytes);
                if targets.is_empty() {
                    continue;
                }
                // The least busy holder sends.
                let Some(&src) = holders.iter().min_by_key(|&&d| self.nodes[d as usize].active_transfers) else {
                    continue;
                };
                self.nodes[src as usize].pending_transfers.push_back((block, targets));
                self.pending_replication.insert(id, now);
                scheduled += 1;
            } else if live >= expected && !b.corrupt.is_empty() {
                // Enough good copies: the corrupt ones can go.
                let corrupt = b.corrupt.clone();
                for dn in corrupt {
                    self.remove_replica(dn, id);
                    self.nodes[dn as usize].pending_deletes.push(id);
                }
            } else if live > expected {
                // Remove from the fullest holder; never below the target.
                let b = &self.blocks[&id];
                let mut holders = b.replicas.clone();
                holders.sort_by_key(|&d| self.nodes[d as usize].remaining);
                for dn in holders.into_iter().take(live - expected) {
                    self.remove_replica(dn, id);
                    self.nodes[dn as usize].pending_deletes.push(id);
                }
            }
        }
        scheduled
    }
}

/// A datanode as placement sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub dn: DnIdx,
    pub ip: String,
    pub remaining: u64,
    pub load: u32,
}

/// Placement: distinct datanodes with room for a block; the writer's own datanode first when
/// it is one; then the ones with the most free space, less busy first among equals (free
/// space in 1 GiB steps so that load can matter).
pub fn choose_targets(candidates: &[Candidate], n: usize, writer_ip: Option<&str>, block_size: u64) -> Vec<DnIdx> {
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
    // Only one target may be the writer's host (several datanodes can share an IP on a
    // pseudo-cluster; they still count as distinct nodes).
    fit.into_iter().take(n).map(|c| c.dn).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(dn: DnIdx, ip: &str, gib: u64, load: u32) -> Candidate {
        Candidate { dn, ip: ip.into(), remaining: gib << 30, load }
    }

    #[test]
    fn placement_prefers_writer_then_space_then_load() {
        let c = vec![
            cand(0, "10.0.0.1", 10, 0),
            cand(1, "10.0.0.2", 50, 5),
            cand(2, "10.0.0.3", 50, 1),
            cand(3, "10.0.0.4", 0, 0),
        ];
        assert_eq!(choose_targets(&c, 3, Some("10.0.0.1"), 1 << 27), vec![0, 2, 1]);
        assert_eq!(choose_targets(&c, 2, None, 1 << 27), vec![2, 1]);
        // The full node never gets a block; asking for more than there are gives fewer.
        assert_eq!(choose_targets(&c, 5, None, 1 << 27).len(), 3);
    }

    fn rep(id: u64, len: u64) -> Reported {
        Reported { id, genstamp: 1001, len, finalized: true }
    }

    #[test]
    fn reports_follow_replicas_and_death_forgets_them() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        let a = m.register("a", "h", "127.0.0.1", 1, 0, 0, now);
        let b = m.register("b", "h", "127.0.0.1", 2, 0, 0, now);
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
        let _ = a;
    }

    #[test]
    fn extra_and_corrupt_replicas_are_removed_never_the_last() {
        let mut m = BlockMap::new();
        let now = Instant::now();
        for (u, port) in [("a", 1), ("b", 2), ("c", 3)] {
            m.register(u, "h", "127.0.0.1", port, 0, 0, now);
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
    }
}
