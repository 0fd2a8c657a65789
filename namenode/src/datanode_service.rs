//! The datanode-facing RPC service: registration, heartbeats (answered with commands) and
//! block reports. Thin: check the message, call the namesystem, convert the answer.

use crate::blocks::{Command, Reported};
use crate::namesystem::{Namesystem, Registration};
use crate::service::{bad_blocks, to_status};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tusk_proto::client::{ReportBadBlocksRequest, ReportBadBlocksResponse};
use tusk_proto::datanode::datanode_command::Command as Pb;
use tusk_proto::datanode::datanode_namenode_server::DatanodeNamenode;
use tusk_proto::datanode::*;

pub struct DatanodeService {
    fsn: Arc<Namesystem>,
    /// Turns true when the server begins to shut down: heartbeat streams end then, so the
    /// graceful shutdown does not wait for datanodes that would never hang up.
    closing: tokio::sync::watch::Receiver<bool>,
}

impl DatanodeService {
    pub fn new(fsn: Arc<Namesystem>, closing: tokio::sync::watch::Receiver<bool>) -> Self {
        DatanodeService { fsn, closing }
    }
}

/// One heartbeat: the datanode's state recorded, its commands taken.
#[allow(clippy::result_large_err)]
fn beat(fsn: &Namesystem, r: HeartbeatRequest) -> Result<HeartbeatResponse, Status> {
    let started = std::time::Instant::now();
    let s = r.storage.unwrap_or_default();
    let commands = match fsn.heartbeat(uuid(&r.datanode_uuid)?, s.capacity, s.dfs_used, s.remaining, r.active_transfers)
    {
        Some(c) => to_pb(c),
        None => reregister(),
    };
    heartbeat_seconds().record(started.elapsed().as_secs_f64());
    Ok(HeartbeatResponse { commands })
}

/// The handler-time histogram, looked up once (the facade's lookup hashes the name on every
/// call). A handle taken before the process's recorder is installed would record nothing
/// forever, so it is cached only once one is.
fn heartbeat_seconds() -> metrics::Histogram {
    static HANDLE: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
    if !tusk_proto::serve::recording() {
        return metrics::histogram!("namenode_heartbeat_seconds");
    }
    HANDLE.get_or_init(|| metrics::histogram!("namenode_heartbeat_seconds")).clone()
}

/// The answers on a heartbeat stream: one per request, in order. It ends after the first
/// invalid request (with that request's status), when the datanode ends its side or breaks
/// the stream, and when the server begins to shut down.
pub struct HeartbeatReplies {
    fsn: Arc<Namesystem>,
    requests: Streaming<HeartbeatRequest>,
    closing: Pin<Box<dyn Future<Output = ()> + Send>>,
    done: bool,
}

impl Stream for HeartbeatReplies {
    type Item = Result<HeartbeatResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done || self.closing.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.requests).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(r))) => {
                let answer = beat(&this.fsn, r);
                this.done = answer.is_err();
                Poll::Ready(Some(answer))
            }
            // The datanode hung up or its stream broke: there is no one left to answer.
            Poll::Ready(Some(Err(_)) | None) => {
                this.done = true;
                Poll::Ready(None)
            }
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn to_pb(commands: Vec<Command>) -> Vec<DatanodeCommand> {
    commands
        .into_iter()
        .map(|c| DatanodeCommand {
            command: Some(match c {
                Command::Delete(ids) => Pb::Delete(DeleteCommand { block_ids: ids }),
                Command::Transfer(block, targets) => Pb::Transfer(TransferCommand { block: Some(block), targets }),
                Command::RecoverBlock(block, recovery_id, locations) => {
                    Pb::RecoverBlock(RecoverBlockCommand { block: Some(block), recovery_id, locations })
                }
                Command::Reregister => Pb::Reregister(ReregisterCommand {}),
                Command::BlockReport => Pb::BlockReport(BlockReportCommand {}),
                Command::Shutdown => Pb::Shutdown(ShutdownCommand {}),
            }),
        })
        .collect()
}

fn reregister() -> Vec<DatanodeCommand> {
    to_pb(vec![Command::Reregister])
}

#[allow(clippy::result_large_err)]
fn reported(blocks: &[ReportedBlock]) -> Result<Vec<Reported>, Status> {
    blocks
        .iter()
        .map(|b| match ReplicaState::try_from(b.state) {
            Ok(ReplicaState::ReplicaFinalized) | Ok(ReplicaState::ReplicaRbw) => Ok(Reported {
                id: b.block_id,
                genstamp: b.generation_stamp,
                len: b.num_bytes,
                finalized: b.state == ReplicaState::ReplicaFinalized as i32,
            }),
            _ => Err(Status::invalid_argument(format!("replica of block {} has no valid state", b.block_id))),
        })
        .collect()
}

#[allow(clippy::result_large_err)]
fn uuid(u: &str) -> Result<&str, Status> {
    if u.is_empty() || u.len() > 128 {
        return Err(Status::invalid_argument("missing or invalid datanode uuid"));
    }
    Ok(u)
}

#[tonic::async_trait]
impl DatanodeNamenode for DatanodeService {
    async fn version(&self, _req: Request<VersionRequest>) -> Reply<VersionResponse> {
        Ok(Response::new(VersionResponse {
            cluster_id: self.fsn.cluster_id(),
            namenode_version: tusk_common::VERSION.into(),
        }))
    }

    async fn register(&self, req: Request<DatanodeRegistration>) -> Reply<RegisterResponse> {
        let peer = req.remote_addr().map(|a| a.ip().to_string());
        let r = req.into_inner();
        uuid(&r.datanode_uuid)?;
        if r.xfer_port == 0 || r.xfer_port > 65535 {
            return Err(Status::invalid_argument("registration without a data transfer port"));
        }
        let ip = if r.ip_addr.is_empty() { peer.unwrap_or_default() } else { r.ip_addr };
        let hostname = if r.hostname.is_empty() { ip.clone() } else { r.hostname };
        self.fsn
            .register_datanode(Registration {
                uuid: r.datanode_uuid,
                cluster_id: r.cluster_id,
                hostname,
                ip,
                xfer_port: r.xfer_port,
                http_port: r.http_port,
                ipc_port: r.ipc_port,
            })
            .map_err(to_status)?;
        Ok(Response::new(RegisterResponse {}))
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Reply<HeartbeatResponse> {
        Ok(Response::new(beat(&self.fsn, req.into_inner())?))
    }

    type HeartbeatStreamStream = HeartbeatReplies;

    async fn heartbeat_stream(&self, req: Request<Streaming<HeartbeatRequest>>) -> Reply<HeartbeatReplies> {
        let mut closing = self.closing.clone();
        Ok(Response::new(HeartbeatReplies {
            fsn: self.fsn.clone(),
            requests: req.into_inner(),
            closing: Box::pin(async move {
                let _ = closing.wait_for(|c| *c).await;
            }),
            done: false,
        }))
    }

    async fn block_report(&self, req: Request<BlockReportRequest>) -> Reply<BlockReportResponse> {
        let started = std::time::Instant::now();
        let r = req.into_inner();
        let blocks = reported(&r.blocks)?;
        let commands = match self.fsn.block_report(uuid(&r.datanode_uuid)?, &blocks) {
            Some(c) => to_pb(c),
            None => reregister(),
        };
        metrics::histogram!("namenode_block_report_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("namenode_block_report_blocks").record(blocks.len() as f64);
        Ok(Response::new(BlockReportResponse { commands }))
    }

    async fn block_received_and_deleted(
        &self,
        req: Request<BlockReceivedAndDeletedRequest>,
    ) -> Reply<BlockReceivedAndDeletedResponse> {
        let r = req.into_inner();
        let received = reported(&r.received)?;
        if self.fsn.received_and_deleted(uuid(&r.datanode_uuid)?, &received, &r.deleted).is_none() {
            return Err(Status::failed_precondition("datanode is not registered; register again"));
        }
        Ok(Response::new(BlockReceivedAndDeletedResponse {}))
    }

    async fn report_bad_blocks(&self, req: Request<ReportBadBlocksRequest>) -> Reply<ReportBadBlocksResponse> {
        self.fsn.report_bad_blocks(&bad_blocks(req.get_ref()));
        Ok(Response::new(ReportBadBlocksResponse {}))
    }

    async fn commit_block_synchronization(
        &self,
        req: Request<CommitBlockSynchronizationRequest>,
    ) -> Reply<CommitBlockSynchronizationResponse> {
        let r = req.into_inner();
        let block = r.block.ok_or_else(|| Status::invalid_argument("commitBlockSynchronization needs a block"))?;
        self.fsn
            .commit_block_synchronization(block, r.recovery_id, r.new_length, &r.new_targets, r.delete_block)
            .await
            .map_err(to_status)?;
        Ok(Response::new(CommitBlockSynchronizationResponse {}))
    }
}
