//! Leases and what hangs on them (HDFS's LeaseManager and the recovery half of
//! FSNamesystem): one writer per file, renewed while it writes; append; the calls of a
//! client rebuilding its pipeline (a new generation stamp, the new pipeline); hflush's
//! visible length; and lease recovery.
//!
//! Lease recovery closes a file whose writer went away: past the soft limit another client
//! may take the file over (`recoverLease`, an append, an overwrite); past the hard limit the
//! namenode does it by itself. A file whose blocks are all complete is closed at once.
//! Otherwise its last block gets a recovery id (a new stamp) and one datanode holding it,
//! the primary, is told (RecoverBlock on its heartbeat) to sync the replicas: it asks each
//! holder what it has, cuts them all to one length (at least what the client had
//! acknowledged) and finalizes them under the recovery id, then calls
//! CommitBlockSynchronization, which closes the file at that length. A recovery that does
//! not finish within [`RECOVERY_RETRY`] is started again with a new id.

use crate::error::{NnError, NnResult};
use crate::inode::Block;
use crate::namesystem::{op, Namesystem};
use crate::permission::{Access, Caller, Need};
use std::time::{Duration, Instant};
use tusk_proto::client::{ExtendedBlock, FileStatus, LocatedBlock};
use tusk_proto::storage::edit_op::Op;
use tusk_proto::storage::{OpAppend, OpClose, OpSetGenstamp, OpUpdateBlocks};

/// A block recovery not committed within this long is started again.
pub const RECOVERY_RETRY: Duration = Duration::from_secs(20);

/// A writer's lease.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub renewed: Instant,
    /// Files it has under construction (may overcount a file deleted while open; the hard
    /// limit check corrects that).
    pub open_files: usize,
}

/// A block recovery in progress.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub path: String,
    pub holder: String,
    pub recovery_id: u64,
    pub started: Instant,
}

fn storage_blocks(list: &[Block]) -> Vec<tusk_proto::storage::Block> {
    list.iter()
        .map(|b| tusk_proto::storage::Block { block_id: b.id, generation_stamp: b.genstamp, num_bytes: b.len })
        .collect()
}

impl Namesystem {
    /// A lease holder shows it is alive (every write call does; idle writers call RenewLease).
    pub fn renew_lease(&self, holder: &str) {
        if let Some(l) = self.leases.lock().get_mut(holder) {
            l.renewed = Instant::now();
        }
    }

    /// Whether `holder` has been silent longer than the soft limit.
    pub(crate) fn lease_soft_expired(&self, holder: &str) -> bool {
        let last = self.leases.lock().get(holder).map(|l| l.renewed).unwrap_or(self.opened);
        last.elapsed() > self.conf.lease_soft_limit
    }

    /// `holder` opened a file for writing.
    pub(crate) fn lease_opened(&self, holder: &str) {
        let mut leases = self.leases.lock();
        let l = leases.entry(holder.to_owned()).or_insert(Lease { renewed: Instant::now(), open_files: 0 });
        l.renewed = Instant::now();
        l.open_files += 1;
    }

    /// A file of `holder` was closed: its lease goes with its last file.
    pub(crate) fn lease_closed(&self, holder: &str) {
        let mut leases = self.leases.lock();
        if let Some(l) = leases.get_mut(holder) {
            l.open_files = l.open_files.saturating_sub(1);
            if l.open_files == 0 {
                leases.remove(holder);
            }
        }
    }

    /// Reopens a closed file for appending by `client_name`. Returns the file's last block
    /// (when it has one, with its replicas) and the file's status.
    pub async fn append(
        &self,
        caller: &Caller,
        path: &str,
        client_name: &str,
    ) -> NnResult<(Option<LocatedBlock>, FileStatus)> {
        let path = Self::parse(path)?;
        if client_name.is_empty() {
            return Err(NnError::InvalidArgument("append needs a client name".into()));
        }
        let mut recover = None;
        let last = self
            .mutate(|ns| {
                self.check_safe_mode("append to file", path.as_str())?;
                let res = ns.resolve(&path);
                let i = res.last().ok_or_else(|| NnError::FileNotFound(path.to_string()))?;
                let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(path.to_string()))?;
                caller.check(ns, &res, Need { target: Some(Access::WRITE), ..Default::default() })?;
                if let Some(holder) = f.holder() {
                    if holder == client_name {
                        return Err(NnError::LeaseConflict(format!(
                            "Failed to APPEND_FILE {path} for {client_name} because {client_name} is already the current lease holder."
                        )));
                    }
                    if self.lease_soft_expired(holder) {
                        recover = Some(holder.to_owned());
                        return Ok((Vec::new(), None));
                    }
                    return Err(NnError::LeaseConflict(format!(
                        "Failed to APPEND_FILE {path} for {client_name} because this file lease is currently owned by {holder}"
                    )));
                }
                let append = OpAppend { path: path.to_string(), client_name: client_name.to_owned() };
                Ok((vec![op(Op::Append(append))], Some((f.blocks.last().copied(), f.block_size, f.replication))))
            })
            .await?;
        let Some((last, block_size, replication)) = last else {
            // The holder is gone: recover its lease; the caller retries.
            let _ = self.internal_release_lease(path.as_str()).await;
            return Err(NnError::RecoveryInProgress(format!(
                "Failed to APPEND_FILE {path} for {client_name} because lease recovery is in progress (holder {}). Try again later.",
                recover.unwrap_or_default()
            )));
        };
        self.lease_opened(client_name);
        let located = last.map(|b| {
            let mut blocks = self.blocks.lock();
            if b.len < block_size {
                blocks.reopen_block(b.id);
            }
            let (locations, corrupt) = blocks.locations(b.id);
            let ns = self.ns.read();
            let offset = ns.lookup(&path).and_then(|i| ns.inode(i).file().map(|f| f.length() - b.len)).unwrap_or(0);
            LocatedBlock {
                block: Some(ExtendedBlock { block_id: b.id, generation_stamp: b.genstamp, num_bytes: b.len }),
                offset,
                locations,
                corrupt_locations: corrupt,
                expected_replication: u32::from(replication),
            }
        });
        let ns = self.ns.read();
        let i = ns.lookup(&path).ok_or_else(|| Self::not_found(&path))?;
        Ok((located, Self::status(&ns, i)))
    }

    /// Checks that `client_name` writes `path` and that `block` is its last block; returns
    /// that block as the namespace has it.
    fn writers_last_block(
        ns: &crate::namespace::Namespace,
        path: &tusk_common::path::FsPath,
        client_name: &str,
        block_id: u64,
    ) -> NnResult<(Block, Vec<Block>)> {
        let i = ns.lookup(path).ok_or_else(|| Self::not_found(path))?;
        let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(path.to_string()))?;
        if f.holder() != Some(client_name) {
            return Err(NnError::LeaseConflict(format!(
                "No lease on {path}: File is not open for writing by {client_name}"
            )));
        }
        match f.blocks.last() {
            Some(b) if b.id == block_id => Ok((*b, f.blocks.to_vec())),
            other => Err(NnError::InvalidArgument(format!(
                "{path}: block {block_id} is not the last block ({:?}) of the file",
                other.map(|b| b.id)
            ))),
        }
    }

    /// A new generation stamp for the last block of a file being written, for a pipeline
    /// rebuilt after a failure or reopened by append.
    pub async fn update_block_for_pipeline(
        &self,
        path: &str,
        client_name: &str,
        block: ExtendedBlock,
    ) -> NnResult<LocatedBlock> {
        let path = Self::parse(path)?;
        self.renew_lease(client_name);
        let gs = self
            .mutate(|ns| {
                let (last, _) = Self::writers_last_block(ns, &path, client_name, block.block_id)?;
                if block.generation_stamp != last.genstamp {
                    return Err(NnError::InvalidArgument(format!(
                        "{path}: block {} has stamp {}, the client says {}",
                        last.id, last.genstamp, block.generation_stamp
                    )));
                }
                let gs = ns.next_genstamp();
                Ok((vec![op(Op::SetGenstamp(OpSetGenstamp { genstamp: gs }))], gs))
            })
            .await?;
        Ok(LocatedBlock { block: Some(ExtendedBlock { generation_stamp: gs, ..block }), ..Default::default() })
    }

    /// The client rebuilt its pipeline: the last block now has `new`'s stamp, on `nodes`.
    pub async fn update_pipeline(
        &self,
        path: &str,
        client_name: &str,
        old: ExtendedBlock,
        new: ExtendedBlock,
        nodes: &[String],
    ) -> NnResult<()> {
        let path = Self::parse(path)?;
        self.renew_lease(client_name);
        if old.block_id != new.block_id || new.generation_stamp <= old.generation_stamp {
            return Err(NnError::InvalidArgument(format!(
                "updatePipeline: blk_{}_{} is not a newer stamp of blk_{}_{}",
                new.block_id, new.generation_stamp, old.block_id, old.generation_stamp
            )));
        }
        self.mutate(|ns| {
            let (last, mut list) = Self::writers_last_block(ns, &path, client_name, old.block_id)?;
            if last.genstamp != old.generation_stamp {
                return Err(NnError::InvalidArgument(format!(
                    "updatePipeline {path}: block {} has stamp {}, not {}",
                    last.id, last.genstamp, old.generation_stamp
                )));
            }
            if new.generation_stamp > ns.next_genstamp() - 1 {
                return Err(NnError::InvalidArgument(format!(
                    "updatePipeline {path}: stamp {} was never handed out",
                    new.generation_stamp
                )));
            }
            if let Some(b) = list.last_mut() {
                b.genstamp = new.generation_stamp;
                b.len = new.num_bytes.max(b.len);
            }
            let update = OpUpdateBlocks { path: path.to_string(), blocks: storage_blocks(&list) };
            Ok((vec![op(Op::UpdateBlocks(update))], ()))
        })
        .await?;
        self.blocks.lock().set_pipeline(new.block_id, new.generation_stamp, nodes);
        tracing::info!(%path, block = new.block_id, gs = new.generation_stamp, nodes = nodes.len(), "pipeline updated");
        Ok(())
    }

    /// A datanode to join the pipeline of the last block of `path`, which lost one: not one
    /// of `existing` or `excluded`, placed as a new replica would be.
    pub fn additional_datanode(
        &self,
        path: &str,
        client_name: &str,
        block: ExtendedBlock,
        existing: &[String],
        excluded: &[String],
        writer_ip: Option<&str>,
    ) -> NnResult<tusk_proto::client::DatanodeInfo> {
        let path = Self::parse(path)?;
        self.renew_lease(client_name);
        let block_size = {
            let ns = self.ns.read();
            let (_, _) = Self::writers_last_block(&ns, &path, client_name, block.block_id)?;
            ns.lookup(&path).and_then(|i| ns.inode(i).file().map(|f| f.block_size)).unwrap_or(0)
        };
        let avoid: Vec<String> = existing.iter().chain(excluded).cloned().collect();
        let blocks = self.blocks.lock();
        let chosen = blocks.choose(1, writer_ip, &avoid, block_size);
        let dn = chosen.first().ok_or_else(|| {
            NnError::Unavailable(format!(
                "no datanode to add to the pipeline of blk_{} of {path}: {} in it, {} excluded",
                block.block_id,
                existing.len(),
                excluded.len()
            ))
        })?;
        Ok(blocks.info(*dn))
    }

    /// hflush/hsync: readers opening the file from now on see `len` bytes of its last block.
    pub fn fsync(&self, path: &str, client_name: &str, len: u64) -> NnResult<()> {
        let path = Self::parse(path)?;
        self.renew_lease(client_name);
        let mut ns = self.ns.write();
        let i = ns.lookup(&path).ok_or_else(|| Self::not_found(&path))?;
        let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(path.to_string()))?;
        if f.holder() != Some(client_name) {
            return Err(NnError::LeaseConflict(format!(
                "No lease on {path}: File is not open for writing by {client_name}"
            )));
        }
        ns.set_last_block_len(i, len);
        Ok(())
    }

    /// `recoverLease`: starts recovering the lease of `path` now, whoever holds it (HDFS's
    /// forced recovery). `Ok(true)` when the file is closed.
    pub async fn recover_lease(&self, caller: &Caller, path: &str, client_name: &str) -> NnResult<bool> {
        let fpath = Self::parse(path)?;
        self.check_safe_mode("recover the lease of", fpath.as_str())?;
        {
            let ns = self.ns.read();
            let res = ns.resolve(&fpath);
            let i = res.last().ok_or_else(|| NnError::FileNotFound(fpath.to_string()))?;
            let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(fpath.to_string()))?;
            caller.check(&ns, &res, Need { target: Some(Access::WRITE), ..Default::default() })?;
            if f.under_construction.is_none() {
                return Ok(true);
            }
        }
        tracing::info!(path = %fpath, by = client_name, "recoverLease");
        self.internal_release_lease(fpath.as_str()).await
    }

    /// Closes `path` if it can be closed as it is, else starts (or keeps waiting for) the
    /// recovery of its last block. `Ok(true)` when the file is closed.
    pub(crate) async fn internal_release_lease(&self, path: &str) -> NnResult<bool> {
        let fpath = Self::parse(path)?;
        enum Plan {
            Closed(String),
            Recover { holder: String, block: ExtendedBlock, recovery_id: u64 },
            InProgress,
        }
        let plan = self
            .mutate(|ns| {
                let i = ns.lookup(&fpath).ok_or_else(|| Self::not_found(&fpath))?;
                let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(fpath.to_string()))?;
                let Some(holder) = f.holder().map(str::to_owned) else {
                    return Ok((Vec::new(), Plan::InProgress));
                };
                let blocks = self.blocks.lock();
                let mut list = f.blocks.to_vec();
                let last_uc = list.last().filter(|b| blocks.is_complete(b.id) == Some(false)).copied();
                let close = |list: &[Block]| {
                    op(Op::Close(OpClose {
                        path: fpath.to_string(),
                        time_ms: tusk_common::now_ms(),
                        blocks: storage_blocks(list),
                    }))
                };
                let Some(last) = last_uc else {
                    return Ok((vec![close(&list)], Plan::Closed(holder)));
                };
                if let Some(r) = self.recovering.lock().get(&last.id) {
                    if r.started.elapsed() < RECOVERY_RETRY {
                        return Ok((Vec::new(), Plan::InProgress));
                    }
                }
                if blocks.uc_locations(last.id).is_empty() {
                    if blocks.block(last.id).is_some_and(|b| b.pipeline.is_empty() && b.replicas.is_empty()) {
                        // Allocated, never written to any datanode: drop it and close.
                        list.pop();
                        return Ok((vec![close(&list)], Plan::Closed(holder)));
                    }
                    return Err(NnError::Unavailable(format!(
                        "lease recovery of {fpath}: no live datanode holds its last block blk_{}; will retry",
                        last.id
                    )));
                }
                let recovery_id = ns.next_genstamp();
                let block = ExtendedBlock { block_id: last.id, generation_stamp: last.genstamp, num_bytes: last.len };
                Ok((
                    vec![op(Op::SetGenstamp(OpSetGenstamp { genstamp: recovery_id }))],
                    Plan::Recover { holder, block, recovery_id },
                ))
            })
            .await?;
        match plan {
            Plan::Closed(holder) => {
                self.lease_closed(&holder);
                tracing::info!(path = %fpath, %holder, "lease released: file closed");
                // Blocks dropped by the close (an empty last block) are forgotten here.
                let ns = self.ns.read();
                if let Some(i) = ns.lookup(&fpath) {
                    if let Some(f) = ns.inode(i).file() {
                        let mut blocks = self.blocks.lock();
                        for b in &f.blocks {
                            blocks.complete_block(b.id, b.len);
                        }
                    }
                }
                Ok(true)
            }
            Plan::InProgress => Ok(false),
            Plan::Recover { holder, block, recovery_id } => {
                let mut blocks = self.blocks.lock();
                let locations = blocks.uc_locations(block.block_id);
                // The primary: the holder that heartbeated last is the likeliest alive.
                let primary = locations.iter().max_by_key(|d| d.last_update_ms).map(|d| d.datanode_uuid.clone());
                if let Some(primary) = primary {
                    blocks.queue_recovery(&primary, block, recovery_id, locations.clone());
                    tracing::info!(
                        path = %fpath, %holder, block = block.block_id, recovery_id, %primary,
                        replicas = locations.len(), "lease recovery: block recovery started"
                    );
                }
                drop(blocks);
                self.recovering.lock().insert(
                    block.block_id,
                    Recovery { path: fpath.to_string(), holder, recovery_id, started: Instant::now() },
                );
                Ok(false)
            }
        }
    }

    /// The primary datanode synced the replicas of a block under recovery: the block gets
    /// the recovery id as its stamp and `len` bytes (or is dropped) and the file is closed.
    pub async fn commit_block_synchronization(
        &self,
        block: ExtendedBlock,
        recovery_id: u64,
        len: u64,
        targets: &[String],
        delete_block: bool,
    ) -> NnResult<()> {
        let recovery = self.recovering.lock().get(&block.block_id).cloned();
        let Some(recovery) = recovery.filter(|r| r.recovery_id == recovery_id) else {
            return Err(NnError::InvalidArgument(format!(
                "block {} is not under recovery {recovery_id} (a newer recovery or none)",
                block.block_id
            )));
        };
        let fpath = Self::parse(&recovery.path)?;
        let drop_block = delete_block || len == 0;
        self.mutate(|ns| {
            let i = ns.lookup(&fpath).ok_or_else(|| Self::not_found(&fpath))?;
            let f = ns.inode(i).file().ok_or_else(|| NnError::IsDirectory(fpath.to_string()))?;
            if f.under_construction.is_none() {
                return Err(NnError::InvalidArgument(format!("{fpath} is already closed")));
            }
            let mut list = f.blocks.to_vec();
            match list.last_mut() {
                Some(b) if b.id == block.block_id => {
                    b.genstamp = recovery_id;
                    b.len = len;
                }
                _ => {
                    return Err(NnError::InvalidArgument(format!(
                        "block {} is not the last block of {fpath}",
                        block.block_id
                    )))
                }
            }
            if drop_block {
                list.pop();
            }
            let close =
                OpClose { path: fpath.to_string(), time_ms: tusk_common::now_ms(), blocks: storage_blocks(&list) };
            Ok((vec![op(Op::Close(close))], ()))
        })
        .await?;
        {
            let mut blocks = self.blocks.lock();
            if drop_block {
                blocks.remove_block(block.block_id);
            } else {
                blocks.commit_recovered(block.block_id, recovery_id, len, targets);
            }
        }
        self.recovering.lock().remove(&block.block_id);
        self.lease_closed(&recovery.holder);
        tracing::info!(path = %fpath, block = block.block_id, recovery_id, len, dropped = drop_block, "lease recovered: file closed");
        Ok(())
    }

    /// The lease monitor (every second): recovers the files of holders silent past the hard
    /// limit, and restarts block recoveries that did not finish.
    pub async fn check_leases(&self) {
        // As HDFS: no lease is recovered in safe mode (the block reports are not all in).
        if self.check_safe_mode("", "").is_err() {
            return;
        }
        let hard = self.conf.lease_hard_limit;
        let expired: Vec<String> =
            self.leases.lock().iter().filter(|(_, l)| l.renewed.elapsed() > hard).map(|(h, _)| h.clone()).collect();
        let mut paths: Vec<String> = Vec::new();
        if !expired.is_empty() {
            let ns = self.ns.read();
            ns.walk(crate::inode::ROOT, |i, ino| {
                if let Some(holder) = ino.file().and_then(|f| f.holder()) {
                    if expired.iter().any(|h| h.as_str() == holder) {
                        paths.push(ns.path_of(i));
                    }
                }
            });
            let mut leases = self.leases.lock();
            for h in &expired {
                tracing::warn!(holder = %h, "lease past its hard limit: recovering its files");
                leases.remove(h);
            }
        }
        let stale: Vec<String> = self
            .recovering
            .lock()
            .values()
            .filter(|r| r.started.elapsed() >= RECOVERY_RETRY)
            .map(|r| r.path.clone())
            .collect();
        paths.extend(stale);
        paths.sort();
        paths.dedup();
        for p in paths {
            match self.internal_release_lease(&p).await {
                Ok(_) => {}
                Err(NnError::FileNotFound(_)) => {
                    self.recovering.lock().retain(|_, r| r.path != p);
                }
                Err(e) => {
                    // Not startable now (no live holder of the last block): the file keeps
                    // an expired lease, so the next rounds try again.
                    tracing::warn!(path = %p, "lease recovery: {e}; retrying in {} s", RECOVERY_RETRY.as_secs());
                    let holder = {
                        let ns = self.ns.read();
                        Self::parse(&p)
                            .ok()
                            .and_then(|fp| ns.lookup(&fp))
                            .and_then(|i| ns.inode(i).file().and_then(|f| f.holder().map(str::to_owned)))
                    };
                    if let Some(holder) = holder {
                        let renewed = Instant::now()
                            .checked_sub(hard.saturating_sub(RECOVERY_RETRY))
                            .unwrap_or_else(Instant::now);
                        let mut leases = self.leases.lock();
                        let l = leases.entry(holder).or_insert(Lease { renewed, open_files: 0 });
                        l.renewed = l.renewed.min(renewed);
                        l.open_files = l.open_files.max(1);
                    }
                }
            }
        }
    }
}
