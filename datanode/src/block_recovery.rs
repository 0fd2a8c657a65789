//! Block recovery, run by the primary datanode when the namenode recovers a lease (HDFS's
//! `BlockRecoveryWorker`): ask every holder of the last block what it has (stopping any
//! writer), pick the length every chosen replica can be cut to, have each cut, restamp and
//! finalize its replica, and tell the namenode (CommitBlockSynchronization), which closes
//! the file at that length.

use crate::error::DatanodeError;
use crate::replica_index::{ReplicaInfo, ReplicaState};
use crate::store::Store;
use crate::xfer::{CONNECT_TIMEOUT, IO_TIMEOUT};
use std::sync::Arc;
use tokio::net::TcpStream;
use tonic::transport::Channel;
use tusk_proto::client::DatanodeInfo;
use tusk_proto::data_transfer::{self, Opcode};
use tusk_proto::datanode::datanode_namenode_client::DatanodeNamenodeClient;
use tusk_proto::datanode::{CommitBlockSynchronizationRequest, RecoverBlockCommand};
use tusk_proto::transfer::{
    InitReplicaRecoveryRequest, InitReplicaRecoveryResponse, OpStatus, UpdateReplicaRequest, UpdateReplicaResponse,
};

/// What one holder answered to InitReplicaRecovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Has {
        len: u64,
        finalized: bool,
    },
    /// Reached, and it holds no replica of the block.
    NotFound,
    /// Unreachable, or refused (a stale stamp, a newer recovery).
    Failed,
}

/// The length to recover to and which holders (indexes into `answers`) take part; `None`
/// when nothing can be recovered. A finalized replica fixes the length (the writer
/// finished it); otherwise the shortest unfinished one does, since every replica has at
/// least the acknowledged bytes.
pub fn plan(answers: &[Answer]) -> Option<(u64, Vec<usize>)> {
    let finalized = answers.iter().find_map(|a| match a {
        Answer::Has { len, finalized: true } => Some(*len),
        _ => None,
    });
    let len = match finalized {
        Some(l) => l,
        None => answers
            .iter()
            .filter_map(|a| match a {
                Answer::Has { len, .. } => Some(*len),
                _ => None,
            })
            .min()?,
    };
    let chosen: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| match a {
            Answer::Has { len: l, finalized: true } => *l == len,
            Answer::Has { len: l, finalized: false } => *l >= len,
            _ => false,
        })
        .map(|(i, _)| i)
        .collect();
    Some((len, chosen))
}

async fn remote<Req: prost::Message, Resp: prost::Message + Default>(
    dn: &DatanodeInfo,
    op: Opcode,
    req: &Req,
) -> Result<Resp, String> {
    let addr = format!("{}:{}", dn.ip_addr, dn.xfer_port);
    let call = async {
        let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        s.set_nodelay(true)?;
        data_transfer::write_op(&mut s, op, req).await?;
        data_transfer::read_msg::<Resp, _>(&mut s).await
    };
    // Init waits up to 10 s for a writer to let go.
    tokio::time::timeout(IO_TIMEOUT, call)
        .await
        .map_err(|_| format!("datanode {addr} did not answer"))?
        .map_err(|e| format!("datanode {addr}: {e}"))
}

async fn init(store: &Arc<Store>, me: &str, dn: &DatanodeInfo, cmd: &RecoverBlockCommand) -> Answer {
    let block = cmd.block.unwrap_or_default();
    if dn.datanode_uuid == me {
        let s = Arc::clone(store);
        let id = cmd.recovery_id;
        let r = tokio::task::spawn_blocking(move || s.init_recovery(block.block_id, block.generation_stamp, id)).await;
        return match r {
            Ok(Ok(ReplicaInfo { len, state, .. })) => Answer::Has { len, finalized: state == ReplicaState::Finalized },
            Ok(Err(DatanodeError::ReplicaNotFound { .. })) => Answer::NotFound,
            Ok(Err(e)) => {
                tracing::warn!(block_id = block.block_id, "local replica cannot take part in the recovery: {e}");
                Answer::Failed
            }
            Err(e) => {
                tracing::warn!("recovery task failed: {e}");
                Answer::Failed
            }
        };
    }
    let req = InitReplicaRecoveryRequest { block: Some(block), recovery_id: cmd.recovery_id };
    match remote::<_, InitReplicaRecoveryResponse>(dn, Opcode::InitReplicaRecovery, &req).await {
        Ok(r) if r.status == OpStatus::OpSuccess as i32 => Answer::Has { len: r.length, finalized: r.finalized },
        Ok(r) if r.status == OpStatus::OpErrorInvalid as i32 => Answer::NotFound,
        Ok(r) => {
            tracing::warn!(block_id = block.block_id, datanode = %dn.ip_addr, "replica cannot take part: {}", r.message);
            Answer::Failed
        }
        Err(e) => {
            tracing::warn!(block_id = block.block_id, "{e}");
            Answer::Failed
        }
    }
}

async fn update(store: &Arc<Store>, me: &str, dn: &DatanodeInfo, block_id: u64, recovery_id: u64, len: u64) -> bool {
    if dn.datanode_uuid == me {
        let s = Arc::clone(store);
        return match tokio::task::spawn_blocking(move || s.update_recovery(block_id, recovery_id, len)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(block_id, "cannot update the local replica: {e}");
                false
            }
            Err(e) => {
                tracing::warn!("recovery task failed: {e}");
                false
            }
        };
    }
    let req = UpdateReplicaRequest { block_id, recovery_id, new_length: len };
    match remote::<_, UpdateReplicaResponse>(dn, Opcode::UpdateReplica, &req).await {
        Ok(r) if r.status == OpStatus::OpSuccess as i32 => true,
        Ok(r) => {
            tracing::warn!(block_id, datanode = %dn.ip_addr, "replica update failed: {}", r.message);
            false
        }
        Err(e) => {
            tracing::warn!(block_id, "{e}");
            false
        }
    }
}

/// Runs one block recovery and reports it to the namenode at `namenode` (host:port).
pub async fn recover(store: Arc<Store>, cmd: RecoverBlockCommand, namenode: String) -> Result<u64, String> {
    let block = cmd.block.ok_or("RecoverBlock command without a block")?;
    let me = store.uuid();
    let mut answers = Vec::with_capacity(cmd.locations.len());
    for dn in &cmd.locations {
        answers.push(init(&store, &me, dn, &cmd).await);
    }
    let mut commit =
        CommitBlockSynchronizationRequest { block: Some(block), recovery_id: cmd.recovery_id, ..Default::default() };
    match plan(&answers) {
        Some((len, chosen)) => {
            for i in chosen {
                let dn = &cmd.locations[i];
                if update(&store, &me, dn, block.block_id, cmd.recovery_id, len).await {
                    commit.new_targets.push(dn.datanode_uuid.clone());
                }
            }
            if commit.new_targets.is_empty() {
                return Err(format!("block {}: no replica could be updated", block.block_id));
            }
            commit.new_length = len;
        }
        // Every holder was reached and none has the block: the writer never sent a byte.
        None if !answers.is_empty() && answers.iter().all(|a| *a == Answer::NotFound) => commit.delete_block = true,
        None => return Err(format!("block {}: no holder of a replica answered", block.block_id)),
    }
    let channel = Channel::from_shared(format!("http://{namenode}"))
        .map_err(|e| format!("invalid namenode address: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(IO_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("cannot reach the namenode at {namenode}: {e}"))?;
    DatanodeNamenodeClient::new(channel)
        .commit_block_synchronization(commit.clone())
        .await
        .map_err(|s| format!("CommitBlockSynchronization refused: {}", s.message()))?;
    Ok(commit.new_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_the_shortest_unfinished_or_the_finalized() {
        let has = |len, finalized| Answer::Has { len, finalized };
        assert_eq!(plan(&[has(700, false), has(512, false), Answer::Failed]), Some((512, vec![0, 1])));
        assert_eq!(plan(&[has(700, false), has(900, true), has(900, false)]), Some((900, vec![1, 2])));
        assert_eq!(plan(&[Answer::NotFound, Answer::Failed]), None);
        assert_eq!(plan(&[has(0, false)]), Some((0, vec![0])));
    }
}
