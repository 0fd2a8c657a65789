//! Unfinished replicas after their writer went away: pipeline recovery (the client rebuilds
//! its pipeline under a new generation stamp and re-sends what was not acknowledged),
//! append (a finalized replica reopened under a new stamp), block recovery for lease
//! recovery (the primary datanode asks every holder what it has, picks a length, and has
//! each cut its replica to it and finalize it under the recovery id), and loading `rbw/` at
//! start (each replica kept up to its last chunk whose checksum verifies).

use super::{lock, Fence, RbwReplica, Store, META_WRITE_BUFFER, READ_BUFFER};
use crate::error::DatanodeError;
use crate::meta;
use crate::replica_index::{ReplicaInfo, ReplicaState};
use crate::volume::{ReplicaFile, Volume};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tusk_proto::data_transfer::{chunk_checksums, BYTES_PER_CHECKSUM};

/// How long a recovery waits for the replica's old writer to let go.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

impl Store {
    /// Fences the writer holding `block_id` (its next packet fails) and waits until it has
    /// let go. Blocking.
    fn take_over(&self, block_id: u64) -> Result<(), DatanodeError> {
        let deadline = Instant::now() + RELEASE_WAIT;
        loop {
            match lock(&self.writers).get(&block_id) {
                None => return Ok(()),
                Some(fence) => fence.raise(),
            }
            if Instant::now() > deadline {
                return Err(DatanodeError::Invalid(format!(
                    "block {block_id}: its writer did not let go within {} s",
                    RELEASE_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens the files of an unfinished replica (already `len` bytes long) for writing.
    fn open_rbw(
        self: &Arc<Self>,
        block_id: u64,
        genstamp: u64,
        volume: u16,
        len: u64,
    ) -> Result<RbwReplica, DatanodeError> {
        let fence = Arc::new(Fence::default());
        {
            let mut writers = lock(&self.writers);
            if writers.contains_key(&block_id) {
                return Err(DatanodeError::Invalid(format!("block {block_id} is being written by another writer")));
            }
            writers.insert(block_id, Arc::clone(&fence));
        }
        let mut rbw = RbwReplica::new(Arc::clone(self), block_id, genstamp, volume, len, fence);
        rbw.keep = true;
        let v = self.volume(volume)?;
        let (data_path, meta_path) = (v.rbw_block(block_id), v.rbw_meta(block_id, genstamp));
        let open = |p: &Path| -> Result<File, DatanodeError> {
            let mut f = OpenOptions::new().write(true).open(p).map_err(DatanodeError::io("cannot open", p))?;
            f.seek(SeekFrom::End(0)).map_err(DatanodeError::io("cannot seek", p))?;
            Ok(f)
        };
        rbw.data = Some(open(&data_path)?);
        rbw.meta = Some(BufWriter::with_capacity(META_WRITE_BUFFER, open(&meta_path)?));
        Ok(rbw)
    }

    /// Moves an unfinished replica's meta file to a new stamp and records it.
    fn restamp_rbw(&self, block_id: u64, info: ReplicaInfo, genstamp: u64, len: u64) -> Result<(), DatanodeError> {
        let v = self.volume(info.volume)?;
        let (from, to) = (v.rbw_meta(block_id, info.genstamp), v.rbw_meta(block_id, genstamp));
        fs::rename(&from, &to).map_err(DatanodeError::io("cannot rename", &from))?;
        lock(&self.replicas).insert(block_id, ReplicaInfo { genstamp, len, ..info });
        Ok(())
    }

    /// Pipeline recovery: reopens this node's unfinished replica of `block_id` under
    /// `new_gs`, cut back to the `bytes_acked` every node of the old pipeline had. Blocking.
    pub fn recover_rbw(
        self: &Arc<Self>,
        block_id: u64,
        old_gs: u64,
        new_gs: u64,
        bytes_acked: u64,
    ) -> Result<RbwReplica, DatanodeError> {
        self.take_over(block_id)?;
        let info = self.get(block_id).ok_or(DatanodeError::ReplicaNotFound { block_id })?;
        if info.genstamp < old_gs || info.genstamp >= new_gs {
            return Err(DatanodeError::Invalid(format!(
                "block {block_id}: replica has stamp {}, expected one in [{old_gs}, {new_gs})",
                info.genstamp
            )));
        }
        if info.state == ReplicaState::Finalized {
            // The pipeline broke after this node finalized the block, before the client saw
            // every ack: reopened, it is finalized again by the re-sent last packet.
            if info.len != bytes_acked {
                return Err(DatanodeError::Invalid(format!(
                    "block {block_id}: finalized replica has {} bytes, the client acknowledged {bytes_acked}",
                    info.len
                )));
            }
            return self.reopen_finalized(block_id, info, new_gs);
        }
        if info.len < bytes_acked {
            return Err(DatanodeError::Invalid(format!(
                "block {block_id}: replica has {} bytes, fewer than the {bytes_acked} acknowledged",
                info.len
            )));
        }
        let v = self.volume(info.volume)?;
        cut(&v.rbw_block(block_id), &v.rbw_meta(block_id, info.genstamp), bytes_acked, self.sync_on_close)?;
        self.restamp_rbw(block_id, info, new_gs, bytes_acked)?;
        tracing::info!(block_id, old_gs = info.genstamp, new_gs, bytes_acked, "replica reopened for pipeline recovery");
        self.open_rbw(block_id, new_gs, info.volume, bytes_acked)
    }

    /// Append: reopens the finalized replica of `block_id` (stamp `old_gs`, `len` bytes)
    /// as an unfinished one under `new_gs`. Blocking.
    pub fn reopen_for_append(
        self: &Arc<Self>,
        block_id: u64,
        old_gs: u64,
        new_gs: u64,
        len: u64,
    ) -> Result<RbwReplica, DatanodeError> {
        let info = self.get(block_id).ok_or(DatanodeError::ReplicaNotFound { block_id })?;
        if info.state != ReplicaState::Finalized || info.genstamp != old_gs || info.len != len || new_gs <= old_gs {
            return Err(DatanodeError::Invalid(format!(
                "block {block_id}: cannot append to a replica with stamp {} and {} bytes ({:?}); expected stamp \
                 {old_gs} and {len} bytes, new stamp {new_gs}",
                info.genstamp, info.len, info.state
            )));
        }
        self.reopen_finalized(block_id, info, new_gs)
    }

    /// Moves a finalized replica back to `rbw/` under `new_gs` and opens it for writing.
    fn reopen_finalized(
        self: &Arc<Self>,
        block_id: u64,
        info: ReplicaInfo,
        new_gs: u64,
    ) -> Result<RbwReplica, DatanodeError> {
        if self.is_bad(block_id) {
            return Err(DatanodeError::Invalid(format!("block {block_id}: replica is corrupt")));
        }
        let (old_gs, len) = (info.genstamp, info.len);
        let v = self.volume(info.volume)?;
        self.index.delete(block_id)?;
        let moves = [
            (v.finalized_meta(block_id, old_gs), v.rbw_meta(block_id, new_gs)),
            (v.finalized_block(block_id), v.rbw_block(block_id)),
        ];
        for (from, to) in &moves {
            fs::rename(from, to).map_err(DatanodeError::io("cannot rename", from))?;
        }
        lock(&self.replicas).insert(block_id, ReplicaInfo { genstamp: new_gs, len, state: ReplicaState::Rbw, ..info });
        tracing::info!(block_id, old_gs, new_gs, len, "finalized replica reopened");
        self.open_rbw(block_id, new_gs, info.volume, len)
    }

    /// Block recovery, first step: stops any writer of the replica and says what it holds.
    /// `nn_gs` is the namenode's stamp of the block; a replica older than it is stale.
    pub fn init_recovery(&self, block_id: u64, nn_gs: u64, recovery_id: u64) -> Result<ReplicaInfo, DatanodeError> {
        {
            let mut r = lock(&self.recoveries);
            if let Some(&newer) = r.get(&block_id).filter(|&&id| id > recovery_id) {
                return Err(DatanodeError::Invalid(format!(
                    "block {block_id}: recovery {recovery_id} is older than recovery {newer} in progress"
                )));
            }
            r.insert(block_id, recovery_id);
        }
        self.take_over(block_id)?;
        let info = self.get(block_id).ok_or(DatanodeError::ReplicaNotFound { block_id })?;
        if info.genstamp < nn_gs || info.genstamp >= recovery_id {
            return Err(DatanodeError::Invalid(format!(
                "block {block_id}: replica has stamp {}, expected one in [{nn_gs}, {recovery_id})",
                info.genstamp
            )));
        }
        Ok(info)
    }

    /// Block recovery, second step: cuts the replica to `new_len`, moves it to the stamp
    /// `recovery_id` and finalizes it (queueing its report). Blocking.
    pub fn update_recovery(
        self: &Arc<Self>,
        block_id: u64,
        recovery_id: u64,
        new_len: u64,
    ) -> Result<ReplicaInfo, DatanodeError> {
        if lock(&self.recoveries).get(&block_id) != Some(&recovery_id) {
            return Err(DatanodeError::Invalid(format!("block {block_id} is not under recovery {recovery_id}")));
        }
        self.take_over(block_id)?;
        let info = self.get(block_id).ok_or(DatanodeError::ReplicaNotFound { block_id })?;
        let v = self.volume(info.volume)?;
        let done = match info.state {
            ReplicaState::Rbw => {
                if new_len > info.len {
                    return Err(DatanodeError::Invalid(format!(
                        "block {block_id}: cannot recover to {new_len} bytes, the replica has {}",
                        info.len
                    )));
                }
                cut(&v.rbw_block(block_id), &v.rbw_meta(block_id, info.genstamp), new_len, self.sync_on_close)?;
                self.restamp_rbw(block_id, info, recovery_id, new_len)?;
                self.open_rbw(block_id, recovery_id, info.volume, new_len)?.finalize()?
            }
            ReplicaState::Finalized => {
                if info.len != new_len {
                    return Err(DatanodeError::Invalid(format!(
                        "block {block_id}: finalized replica has {} bytes, recovery wants {new_len}",
                        info.len
                    )));
                }
                let (from, to) = (v.finalized_meta(block_id, info.genstamp), v.finalized_meta(block_id, recovery_id));
                fs::rename(&from, &to).map_err(DatanodeError::io("cannot rename", &from))?;
                let done = ReplicaInfo { genstamp: recovery_id, ..info };
                self.index.put(block_id, &done)?;
                lock(&self.replicas).insert(block_id, done);
                self.push_report(|p| p.received.push((block_id, done)));
                done
            }
        };
        lock(&self.recoveries).remove(&block_id);
        tracing::info!(block_id, recovery_id, len = new_len, "replica recovered");
        Ok(done)
    }
}

/// Cuts a replica's files to `len` bytes, recomputing the checksum of a partial last chunk.
fn cut(data_path: &Path, meta_path: &Path, len: u64, sync: bool) -> Result<(), DatanodeError> {
    let data = OpenOptions::new()
        .read(true)
        .write(true)
        .open(data_path)
        .map_err(DatanodeError::io("cannot open", data_path))?;
    let meta = OpenOptions::new()
        .read(true)
        .write(true)
        .open(meta_path)
        .map_err(DatanodeError::io("cannot open", meta_path))?;
    data.set_len(len).map_err(DatanodeError::io("cannot truncate", data_path))?;
    meta.set_len(meta::meta_len_for(len)).map_err(DatanodeError::io("cannot truncate", meta_path))?;
    let chunk = BYTES_PER_CHECKSUM as u64;
    let tail = len % chunk;
    if tail != 0 {
        let start = len - tail;
        let mut buf = vec![0u8; tail as usize];
        data.read_exact_at(&mut buf, start).map_err(DatanodeError::io("cannot read", data_path))?;
        let mut sums = Vec::with_capacity(4);
        chunk_checksums(&buf, &mut sums);
        meta.write_all_at(&sums, meta::checksum_offset(start / chunk))
            .map_err(DatanodeError::io("cannot write", meta_path))?;
    }
    if sync {
        data.sync_data().map_err(DatanodeError::io("cannot fsync", data_path))?;
        meta.sync_data().map_err(DatanodeError::io("cannot fsync", meta_path))?;
    }
    Ok(())
}

/// Bytes of an unfinished replica whose chunks match their stored checksums; `None` when
/// its meta file has no valid header.
fn verified_len(data_path: &Path, meta_path: &Path) -> Result<Option<u64>, DatanodeError> {
    let data = File::open(data_path).map_err(DatanodeError::io("cannot open", data_path))?;
    let mut meta = BufReader::new(File::open(meta_path).map_err(DatanodeError::io("cannot open", meta_path))?);
    let mut header = [0u8; meta::HEADER_BYTES as usize];
    if meta.read_exact(&mut header).is_err() || meta::check_header(&header).is_err() {
        return Ok(None);
    }
    verified_chunks(data, &mut meta, data_path).map(Some)
}

fn verified_chunks(data: File, meta: &mut BufReader<File>, data_path: &Path) -> Result<u64, DatanodeError> {
    let mut data = BufReader::with_capacity(READ_BUFFER, data);
    let mut chunk = vec![0u8; BYTES_PER_CHECKSUM];
    let (mut len, mut sums) = (0u64, Vec::with_capacity(4));
    loop {
        let mut stored = [0u8; meta::CHECKSUM_BYTES as usize];
        if meta.read_exact(&mut stored).is_err() {
            return Ok(len);
        }
        let mut n = 0;
        while n < chunk.len() {
            match data.read(&mut chunk[n..]).map_err(DatanodeError::io("cannot read", data_path))? {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            return Ok(len);
        }
        sums.clear();
        chunk_checksums(&chunk[..n], &mut sums);
        if sums[..] != stored[..] {
            return Ok(len);
        }
        len += n as u64;
        if n < chunk.len() {
            return Ok(len);
        }
    }
}

/// Loads a volume's `rbw/` at start: each replica with a meta file is kept, cut to its last
/// chunk that verifies (a crash may have torn the tail); anything else is removed. Returns
/// the replicas kept and the number removed.
pub(crate) fn load_rbw(v: &Volume) -> Result<(Vec<(u64, ReplicaInfo)>, usize), DatanodeError> {
    let dir = v.rbw_dir();
    let mut blocks = Vec::new();
    let mut metas: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut junk = Vec::new();
    for entry in fs::read_dir(&dir).map_err(DatanodeError::io("cannot list", &dir))? {
        let entry = entry.map_err(DatanodeError::io("cannot list", &dir))?;
        let path = entry.path();
        match super::parse_name(&path) {
            Some(ReplicaFile::Block(id)) if path.is_file() => blocks.push(id),
            Some(ReplicaFile::Meta(id, gs)) if path.is_file() => metas.entry(id).or_default().push(gs),
            _ => junk.push(path),
        }
    }
    let (mut kept, mut removed) = (Vec::new(), 0);
    for id in blocks {
        let data_path = v.rbw_block(id);
        let Some(mut stamps) = metas.remove(&id) else {
            tracing::info!("removing unfinished replica {} without a meta file", data_path.display());
            junk.push(data_path);
            removed += 1;
            continue;
        };
        stamps.sort_unstable();
        let gs = stamps.pop().unwrap_or_default();
        junk.extend(stamps.into_iter().map(|old| v.rbw_meta(id, old)));
        let meta_path = v.rbw_meta(id, gs);
        let Some(len) = verified_len(&data_path, &meta_path)? else {
            tracing::warn!("removing unfinished replica {} with a broken meta file", data_path.display());
            junk.push(data_path);
            junk.push(meta_path);
            removed += 1;
            continue;
        };
        let on_disk = fs::metadata(&data_path).map_err(DatanodeError::io("cannot stat", &data_path))?.len();
        if len < on_disk {
            tracing::warn!(
                len,
                on_disk,
                "unfinished replica {} cut to its last chunk that verifies",
                data_path.display()
            );
        }
        cut(&data_path, &meta_path, len, true)?;
        tracing::info!(block_id = id, genstamp = gs, len, on_disk, "kept unfinished replica for recovery");
        kept.push((id, ReplicaInfo { genstamp: gs, len, state: ReplicaState::Rbw, volume: v.index }));
    }
    for (id, stamps) in metas {
        junk.extend(stamps.into_iter().map(|gs| v.rbw_meta(id, gs)));
    }
    for path in junk {
        let gone = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        gone.map_err(DatanodeError::io("cannot remove", &path))?;
    }
    Ok((kept, removed))
}
