//! Writing a file: data is cut into blocks of the file's block size; each block is allocated
//! by the namenode (AddBlock) and streamed through its pipeline ([`BlockWriter`]); `close`
//! completes the file once its last block has a replica.
//!
//! When a pipeline breaks, the writer recovers as HDFS's DataStreamer does: the datanode the
//! failure points at is dropped, the namenode hands out a new generation stamp for the block
//! (UpdateBlockForPipeline), the survivors reopen their replicas under it cut back to the
//! acknowledged bytes, the unacknowledged packets are sent again, and the namenode learns the
//! new pipeline (UpdatePipeline). Replicas left with the old stamp are discarded. When the
//! pipeline is short of the file's replication and the namenode has a spare datanode
//! (GetAdditionalDatanode), a survivor first copies the acknowledged bytes to it
//! (TRANSFER_BLOCK) and it joins the new pipeline; without one the write carries on with
//! the survivors (HDFS's best-effort policy) and the replication monitor restores the count
//! once the file is closed.
//!
//! `hflush` makes what was written visible to new readers, `hsync` also durable on the
//! datanodes' disks; `Client::append` reopens a file's last block.

use crate::error::ClientError;
use crate::nn::Namenode;
use crate::pipeline::{block_name, xfer_addr, BlockWriter, PipelineFailure, Stage};
use crate::Result;
use std::time::{Duration, Instant};
use tusk_proto::client::{ExtendedBlock, LocatedBlock};

/// Attempts to set up a pipeline for one block (each on a fresh block, excluding the
/// datanodes that failed before).
const MAX_BLOCK_ATTEMPTS: usize = 3;
/// Pipeline recoveries one block may go through.
const MAX_RECOVERIES: usize = 5;
/// How long `close` keeps asking the namenode to complete the file.
const COMPLETE_DEADLINE: Duration = Duration::from_secs(60);
/// How long AddBlock is retried while the previous block has no replica yet.
const ADD_BLOCK_DEADLINE: Duration = Duration::from_secs(60);
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How many bytes of a `len`-byte write fit into the current block, which already holds
/// `in_block` of `block_size` bytes.
pub(crate) fn fits_in_block(block_size: u64, in_block: u64, len: usize) -> usize {
    debug_assert!(in_block < block_size);
    let room = block_size - in_block;
    if room >= len as u64 {
        len
    } else {
        room as usize
    }
}

/// Writes one file, sequentially. Not cancel-safe: a `write` dropped half-way leaves the
/// writer failed.
pub struct FileWriter {
    nn: Namenode,
    path: String,
    client_name: String,
    block_size: u64,
    current: Option<BlockWriter>,
    /// The last finished block, with its final length.
    previous: Option<ExtendedBlock>,
    bytes_written: u64,
    /// Once something failed, every later call fails with the same error.
    failed: Option<ClientError>,
    /// Pipeline recoveries of the current block.
    recoveries: usize,
    /// Replicas a block should have: a pipeline that lost datanodes gets new ones up to it.
    replication: usize,
    /// Datanodes that failed in this file's pipelines (uuids): not asked again.
    failed_nodes: Vec<String>,
    /// The namenode had no datanode to add to a pipeline: do not ask again for this file.
    no_spare: bool,
    /// Keeps the client's lease renewed while this file is open.
    pub(crate) lease: Option<crate::lease::WriterLease>,
}

impl FileWriter {
    pub(crate) fn new(nn: Namenode, path: &str, block_size: u64) -> Result<FileWriter> {
        if block_size == 0 {
            return Err(ClientError::Protocol(format!("the namenode gave {path} a block size of 0")));
        }
        let client_name = nn.client_name();
        Ok(FileWriter {
            nn,
            path: path.to_owned(),
            client_name,
            block_size,
            current: None,
            previous: None,
            bytes_written: 0,
            failed: None,
            recoveries: 0,
            replication: 0,
            failed_nodes: Vec::new(),
            no_spare: false,
            lease: None,
        })
    }

    /// A writer for a file reopened by Append: `last` is its last block (None for an empty
    /// file), `tail` the bytes of that block's partial last chunk, `len` the file length.
    pub(crate) async fn for_append(
        nn: Namenode,
        path: &str,
        block_size: u64,
        len: u64,
        last: Option<LocatedBlock>,
        tail: Vec<u8>,
    ) -> Result<FileWriter> {
        let mut w = FileWriter::new(nn, path, block_size)?;
        w.bytes_written = len;
        let Some(lb) = last else { return Ok(w) };
        w.replication = lb.expected_replication as usize;
        let block = lb.block.ok_or_else(|| ClientError::Protocol("append answered a block without a block".into()))?;
        if block.num_bytes >= block_size {
            // A full last block: the appended bytes start a new one.
            w.previous = Some(block);
            return Ok(w);
        }
        let new = w.nn.update_block_for_pipeline(path, block).await?;
        let stage = Stage::Append { old_gs: block.generation_stamp, len: block.num_bytes };
        let located = LocatedBlock { block: Some(new), ..lb.clone() };
        let mut bw = BlockWriter::setup(&located, &w.client_name, stage).await.map_err(|e| {
            ClientError::Io(format!("cannot reopen {} of {path} for append: {}", block_name(&block), e.error))
        })?;
        bw.preload(&tail);
        let nodes: Vec<String> = bw.nodes().iter().map(|d| d.datanode_uuid.clone()).collect();
        w.nn.update_pipeline(path, block, ExtendedBlock { num_bytes: block.num_bytes, ..new }, &nodes).await?;
        w.current = Some(bw);
        Ok(w)
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // Marked failed up front so a write cancelled half-way cannot be continued.
        self.failed = Some(ClientError::Io(format!("an earlier write to {} was interrupted", self.path)));
        let r = self.write_inner(data).await;
        self.failed = r.as_ref().err().cloned();
        r
    }

    async fn write_inner(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let mut current = match self.current.take() {
                Some(w) => w,
                None => self.allocate_block().await?,
            };
            let n = fits_in_block(self.block_size, current.bytes_in_block(), data.len());
            let mut part = &data[..n];
            loop {
                match current.write(part).await {
                    Ok(()) => break,
                    Err((failure, taken)) => {
                        part = &part[taken..];
                        current = self.recover(current, failure).await?;
                    }
                }
            }
            self.bytes_written += n as u64;
            data = &data[n..];
            self.current = Some(current);
            if self.current.as_ref().is_some_and(|w| w.bytes_in_block() == self.block_size) {
                self.end_block().await?;
            }
        }
        Ok(())
    }

    async fn end_block(&mut self) -> Result<()> {
        if let Some(mut w) = self.current.take() {
            let block = loop {
                match w.finish().await {
                    Ok(b) => break b,
                    Err(failure) => w = self.recover(w, failure).await?,
                }
            };
            tracing::debug!(path = %self.path, block = %block_name(&block), bytes = block.num_bytes, "block written");
            self.previous = Some(block);
            self.recoveries = 0;
        }
        Ok(())
    }

    /// hflush: every byte written so far reaches every datanode of the pipeline and is
    /// visible to readers that open the file from now on.
    pub async fn hflush(&mut self) -> Result<()> {
        self.flush(false).await
    }

    /// hsync: as hflush, and the datanodes have the bytes on disk.
    pub async fn hsync(&mut self) -> Result<()> {
        self.flush(true).await
    }

    async fn flush(&mut self, sync: bool) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(mut w) = self.current.take() else {
            // At a block boundary: the namenode learns the finished block's length with the
            // next AddBlock; readers need it now.
            return match self.previous {
                Some(p) => self.nn.fsync(&self.path, p.num_bytes).await,
                None => Ok(()),
            };
        };
        self.failed = Some(ClientError::Io(format!("an earlier flush of {} was interrupted", self.path)));
        let r = async {
            let len = loop {
                match w.flush(sync).await {
                    Ok(len) => break len,
                    Err(failure) => w = self.recover(w, failure).await?,
                }
            };
            self.nn.fsync(&self.path, len).await?;
            Ok::<_, ClientError>(w)
        }
        .await;
        match r {
            Ok(w) => {
                self.current = Some(w);
                self.failed = None;
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Rebuilds the pipeline of `w` without the datanode `failure` blames.
    async fn recover(&mut self, w: BlockWriter, failure: PipelineFailure) -> Result<BlockWriter> {
        let mut left = w.into_leftover();
        let mut failure = failure;
        loop {
            self.recoveries += 1;
            let name = block_name(&left.block);
            if failure.bad_node < left.nodes.len() {
                let bad = left.nodes.remove(failure.bad_node);
                tracing::warn!(
                    path = %self.path, block = %name, datanode = %xfer_addr(&bad), survivors = left.nodes.len(),
                    "pipeline failed: {}; recovering", failure.error
                );
                self.failed_nodes.push(bad.datanode_uuid);
            }
            if left.nodes.is_empty() {
                return Err(ClientError::Io(format!(
                    "All datanodes of {name} of {} are bad. Aborting...: {}",
                    self.path, failure.error
                )));
            }
            if self.recoveries > MAX_RECOVERIES {
                return Err(ClientError::Io(format!(
                    "{name} of {}: giving up after {MAX_RECOVERIES} pipeline recoveries: {}",
                    self.path, failure.error
                )));
            }
            let mut nodes = left.nodes.clone();
            if nodes.len() < self.replication && !self.no_spare {
                if let Some(dn) = self.replacement(&nodes, left.block, left.bytes_acked()).await {
                    nodes.push(dn);
                }
            }
            let new = self.nn.update_block_for_pipeline(&self.path, left.block).await?;
            match BlockWriter::resume(&left, new, nodes.clone(), &self.client_name).await {
                Ok(w) => {
                    let nodes: Vec<String> = w.nodes().iter().map(|d| d.datanode_uuid.clone()).collect();
                    let acked = ExtendedBlock { num_bytes: left.bytes_acked(), ..new };
                    self.nn.update_pipeline(&self.path, left.block, acked, &nodes).await?;
                    tracing::info!(path = %self.path, block = %block_name(&w.block()), datanodes = nodes.len(), "pipeline recovered");
                    return Ok(w);
                }
                // The next round starts again from what `left` holds, under a newer stamp
                // (the survivors accept any stamp between the old one and it). The datanode
                // to blame is counted in this round's pipeline, which may have a new one.
                Err((_, f)) => {
                    left.nodes = nodes;
                    failure = f;
                }
            }
        }
    }

    /// A datanode to replace a failed one (HDFS's replace-datanode-on-failure, best effort):
    /// the namenode picks it, a survivor copies the acknowledged bytes to it. `None` when
    /// the cluster has no spare datanode or the copy fails.
    async fn replacement(
        &mut self,
        nodes: &[tusk_proto::client::DatanodeInfo],
        block: ExtendedBlock,
        bytes_acked: u64,
    ) -> Option<tusk_proto::client::DatanodeInfo> {
        let source = nodes.first()?;
        let existing: Vec<String> = nodes.iter().map(|d| d.datanode_uuid.clone()).collect();
        let dn = match self.nn.additional_datanode(&self.path, block, &existing, &self.failed_nodes).await {
            Ok(dn) => dn,
            Err(e) => {
                tracing::info!(path = %self.path, "no datanode to replace the failed one; carrying on with {}: {e}", nodes.len());
                self.no_spare = true;
                return None;
            }
        };
        let copy = ExtendedBlock { num_bytes: bytes_acked, ..block };
        match crate::pipeline::copy_replica(source, copy, &dn, &self.client_name).await {
            Ok(()) => {
                tracing::warn!(path = %self.path, block = %block_name(&block), datanode = %xfer_addr(&dn), bytes = bytes_acked, "datanode added to the pipeline");
                Some(dn)
            }
            Err(e) => {
                tracing::warn!(path = %self.path, "could not add datanode {}: {e}", xfer_addr(&dn));
                self.failed_nodes.push(dn.datanode_uuid);
                None
            }
        }
    }

    /// Asks for a new block and sets up its pipeline, excluding datanodes that fail.
    async fn allocate_block(&mut self) -> Result<BlockWriter> {
        let mut excluded: Vec<String> = Vec::new();
        let mut last_error = None;
        for _ in 0..MAX_BLOCK_ATTEMPTS {
            let lb = self.add_block(&excluded).await?;
            match BlockWriter::setup(&lb, &self.client_name, Stage::Create).await {
                Ok(w) => {
                    self.replication = lb.expected_replication as usize;
                    return Ok(w);
                }
                Err(e) => {
                    let bad = lb.locations.get(e.bad_node);
                    tracing::warn!(
                        path = %self.path,
                        datanode = %bad.map(xfer_addr).unwrap_or_default(),
                        "abandoning block: {}", e.error
                    );
                    if let Some(b) = lb.block {
                        self.nn.abandon_block(&self.path, b).await?;
                    }
                    if let Some(dn) = bad {
                        excluded.push(dn.datanode_uuid.clone());
                    }
                    last_error = Some(e.error);
                }
            }
        }
        let why = last_error.map(|e| e.to_string()).unwrap_or_default();
        Err(ClientError::Io(format!("Unable to create new block for {}: {why}", self.path)))
    }

    async fn add_block(&self, excluded: &[String]) -> Result<crate::LocatedBlock> {
        let deadline = Instant::now() + ADD_BLOCK_DEADLINE;
        let mut backoff = BACKOFF_START;
        loop {
            match self.nn.add_block(&self.path, self.previous, excluded).await {
                Err(ClientError::NotReplicatedYet(m)) if Instant::now() + backoff < deadline => {
                    tracing::debug!(path = %self.path, "add block: {m}; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                other => return other,
            }
        }
    }

    /// Flushes the last block, then completes the file (retrying while the namenode says the
    /// last block has no replica yet). Returns the file length.
    pub async fn close(mut self) -> Result<u64> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.end_block().await?;
        let deadline = Instant::now() + COMPLETE_DEADLINE;
        let mut backoff = BACKOFF_START;
        loop {
            if self.nn.complete(&self.path, self.previous).await? {
                return Ok(self.bytes_written);
            }
            if Instant::now() + backoff > deadline {
                return Err(ClientError::Io(format!(
                    "Unable to close file {} because the last block does not have enough number of replicas",
                    self.path
                )));
            }
            tracing::debug!(path = %self.path, "complete: last block not yet replicated; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_cut_at_the_block_size() {
        assert_eq!(fits_in_block(100, 0, 30), 30);
        assert_eq!(fits_in_block(100, 90, 30), 10);
        assert_eq!(fits_in_block(100, 99, 1), 1);
        assert_eq!(fits_in_block(u64::MAX, 0, usize::MAX), usize::MAX);
        // A 250-byte write into 100-byte blocks lands as 100 + 100 + 50.
        let (mut in_block, mut left, mut cuts) = (0u64, 250usize, Vec::new());
        while left > 0 {
            let n = fits_in_block(100, in_block, left);
            cuts.push(n);
            left -= n;
            in_block = (in_block + n as u64) % 100;
        }
        assert_eq!(cuts, [100, 100, 50]);
    }
}
