//! The data transfer server: accepts connections on the xfer listener, one task each, at
//! most `max_transfers` at once; reads the op header and hands the connection to
//! [`read::read_block`] or [`write::write_block`]. Framing is `tusk_proto::data_transfer`.

pub mod read;
pub mod short_circuit;
pub mod write;

use crate::error::DatanodeError;
use crate::server::Shutdown;
use crate::store::{Store, Wait};
use prost::Message;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;
use tusk_proto::data_transfer::{self, Opcode};
use tusk_proto::transfer::{
    BlockOpResponse, InitReplicaRecoveryRequest, InitReplicaRecoveryResponse, OpStatus, ReadBlockRequest,
    TransferBlockRequest, UpdateReplicaRequest, UpdateReplicaResponse, WriteBlockRequest,
};

/// How long a peer may stay silent in the middle of an operation.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to the next datanode of a pipeline may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection handler shares.
pub struct XferContext {
    pub store: Arc<Store>,
    /// Operations in progress (reads, writes, replications), reported in heartbeats.
    pub active: AtomicU32,
    /// Name this datanode gives itself as the writer of a replication.
    pub client_name: String,
}

/// Counts one active transfer while alive.
pub struct ActiveGuard<'a>(&'a AtomicU32);

impl<'a> ActiveGuard<'a> {
    pub fn new(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(counter)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Opens a replica on this task when the kernel's caches hold all it needs (a replica just
/// written or read: no thread hand-off), on the blocking pool when it must wait for the disk.
async fn open_replica<T: Send + 'static>(
    store: &Arc<Store>,
    open: impl Fn(&Store, Wait) -> Result<Option<T>, DatanodeError> + Send + 'static,
) -> io::Result<Result<T, DatanodeError>> {
    match open(store, Wait::Never) {
        Ok(Some(opened)) => Ok(Ok(opened)),
        Err(e) => Ok(Err(e)),
        Ok(None) => {
            metrics::counter!("datanode_replica_opens_waited_total").increment(1);
            let store = Arc::clone(store);
            tokio::task::spawn_blocking(move || open(&store, Wait::Allowed)?.ok_or_else(Wait::broken))
                .await
                .map_err(io::Error::other)
        }
    }
}

/// Serves until `shutdown`; then aborts the connections still open (an aborted write
/// removes its unfinished replica) and waits for them.
pub async fn serve(listener: TcpListener, ctx: Arc<XferContext>, max_transfers: usize, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(max_transfers.max(1)));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.wait() => break,
        };
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("data transfer accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let ctx = Arc::clone(&ctx);
        conns.spawn(async move {
            let _permit = permit;
            if let Err(e) = handle_connection(socket, &ctx).await {
                tracing::debug!(%peer, "data transfer connection ended: {e}");
            }
        });
    }
    conns.shutdown().await;
    tracing::info!("data transfer server stopped");
}

async fn handle_connection(mut socket: TcpStream, ctx: &Arc<XferContext>) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let (op, body) = tokio::time::timeout(IO_TIMEOUT, data_transfer::read_op(&mut socket))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no op header"))??;
    let _active = ActiveGuard::new(&ctx.active);
    match op {
        Opcode::ReadBlock => {
            let Ok(req) = ReadBlockRequest::decode(&body[..]) else {
                return reply_error(&mut socket, OpStatus::OpErrorInvalid, "undecodable ReadBlockRequest").await;
            };
            let block_id = req.block.as_ref().map(|b| b.block_id).unwrap_or_default();
            read::read_block(socket, req, ctx).instrument(tracing::info_span!("read_block", block_id)).await
        }
        Opcode::WriteBlock => {
            let Ok(req) = WriteBlockRequest::decode(&body[..]) else {
                return reply_error(&mut socket, OpStatus::OpErrorInvalid, "undecodable WriteBlockRequest").await;
            };
            let block_id = req.block.as_ref().map(|b| b.block_id).unwrap_or_default();
            write::write_block(socket, req, ctx).instrument(tracing::info_span!("write_block", block_id)).await
        }
        Opcode::InitReplicaRecovery => {
            let Ok(req) = InitReplicaRecoveryRequest::decode(&body[..]) else {
                return reply_error(&mut socket, OpStatus::OpErrorInvalid, "undecodable InitReplicaRecoveryRequest")
                    .await;
            };
            let block = req.block.unwrap_or_default();
            let store = Arc::clone(&ctx.store);
            let r = tokio::task::spawn_blocking(move || {
                store.init_recovery(block.block_id, block.generation_stamp, req.recovery_id)
            })
            .await
            .map_err(io::Error::other)?;
            let resp = match r {
                Ok(info) => InitReplicaRecoveryResponse {
                    status: OpStatus::OpSuccess as i32,
                    generation_stamp: info.genstamp,
                    length: info.len,
                    finalized: info.state == crate::replica_index::ReplicaState::Finalized,
                    ..Default::default()
                },
                Err(e) => {
                    tracing::info!(block_id = block.block_id, "replica recovery refused: {e}");
                    let not_found = matches!(e, crate::error::DatanodeError::ReplicaNotFound { .. });
                    InitReplicaRecoveryResponse {
                        status: if not_found { OpStatus::OpErrorInvalid } else { OpStatus::OpError } as i32,
                        message: e.to_string(),
                        ..Default::default()
                    }
                }
            };
            data_transfer::write_msg(&mut socket, &resp).await
        }
        Opcode::TransferBlock => {
            let Ok(req) = TransferBlockRequest::decode(&body[..]) else {
                return reply_error(&mut socket, OpStatus::OpErrorInvalid, "undecodable TransferBlockRequest").await;
            };
            let block = req.block.unwrap_or_default();
            let to: Vec<String> = req.targets.iter().map(|t| format!("{}:{}", t.ip_addr, t.xfer_port)).collect();
            let store = Arc::clone(&ctx.store);
            let r = write::transfer_rbw(
                store,
                block.block_id,
                block.generation_stamp,
                block.num_bytes,
                req.targets,
                req.client_name,
            )
            .await;
            let resp = match r {
                Ok(len) => {
                    tracing::info!(block_id = block.block_id, len, ?to, "copied a replica being written");
                    BlockOpResponse { status: OpStatus::OpSuccess as i32, ..Default::default() }
                }
                Err(e) => {
                    tracing::warn!(block_id = block.block_id, ?to, "copy of a replica being written failed: {e}");
                    BlockOpResponse { status: OpStatus::OpError as i32, message: e, ..Default::default() }
                }
            };
            data_transfer::write_msg(&mut socket, &resp).await
        }
        Opcode::ShortCircuitFds => {
            reply_error(&mut socket, OpStatus::OpErrorInvalid, "short-circuit reads are served on the Unix socket")
                .await
        }
        Opcode::UpdateReplica => {
            let Ok(req) = UpdateReplicaRequest::decode(&body[..]) else {
                return reply_error(&mut socket, OpStatus::OpErrorInvalid, "undecodable UpdateReplicaRequest").await;
            };
            let store = Arc::clone(&ctx.store);
            let r = tokio::task::spawn_blocking(move || {
                store.update_recovery(req.block_id, req.recovery_id, req.new_length)
            })
            .await
            .map_err(io::Error::other)?;
            let resp = match r {
                Ok(_) => UpdateReplicaResponse { status: OpStatus::OpSuccess as i32, ..Default::default() },
                Err(e) => {
                    tracing::warn!(block_id = req.block_id, "replica update refused: {e}");
                    UpdateReplicaResponse { status: OpStatus::OpError as i32, message: e.to_string() }
                }
            };
            data_transfer::write_msg(&mut socket, &resp).await
        }
    }
}

/// The status that answers a replica that cannot be served: the client's mistake (no such
/// replica, a bad request) or the datanode's.
pub fn refusal_status(e: &crate::error::DatanodeError) -> OpStatus {
    use crate::error::DatanodeError::{Invalid, ReplicaNotFound};
    if matches!(e, ReplicaNotFound { .. } | Invalid(_)) {
        OpStatus::OpErrorInvalid
    } else {
        OpStatus::OpError
    }
}

/// Answers an op header with an error.
pub async fn reply_error(socket: &mut TcpStream, status: OpStatus, message: &str) -> io::Result<()> {
    let resp = BlockOpResponse { status: status as i32, message: message.to_owned(), ..Default::default() };
    data_transfer::write_msg(socket, &resp).await
}
