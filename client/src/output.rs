//! Writing a file: data is cut into blocks of the file's block size; each block is allocated
//! by the namenode (AddBlock) and streamed through its pipeline ([`BlockWriter`]); `close`
//! completes the file once its last block has a replica.

use crate::error::ClientError;
use crate::nn::Namenode;
use crate::pipeline::{block_name, xfer_addr, BlockWriter};
use crate::Result;
use std::time::{Duration, Instant};
use tusk_proto::client::ExtendedBlock;

/// Attempts to set up a pipeline for one block (each on a fresh block, excluding the
/// datanodes that failed before).
const MAX_BLOCK_ATTEMPTS: usize = 3;
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
            lease: None,
        })
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
            current.write(&data[..n]).await?;
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
        if let Some(w) = self.current.take() {
            let block = w.finish().await?;
            tracing::debug!(path = %self.path, block = %block_name(&block), bytes = block.num_bytes, "block written");
            self.previous = Some(block);
        }
        Ok(())
    }

    /// Asks for a new block and sets up its pipeline, excluding datanodes that fail.
    async fn allocate_block(&mut self) -> Result<BlockWriter> {
        let mut excluded: Vec<String> = Vec::new();
        let mut last_error = None;
        for _ in 0..MAX_BLOCK_ATTEMPTS {
            let lb = self.add_block(&excluded).await?;
            match BlockWriter::setup(&lb, &self.client_name).await {
                Ok(w) => return Ok(w),
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
