//! The namenode actor: the datanode's only conversation with the namenode, which never
//! calls a datanode. One loop: connect, Version (cluster id check), Register, full block
//! report; then heartbeats on a tick (on one `HeartbeatStream` per connection), incremental
//! reports as soon as replicas are finalized or deleted, a full report on its period; and
//! execute the commands that ride on the replies. Any failure drops the connection and starts over after a backoff (1 s doubling
//! to 30 s), registering again: a namenode that restarted has forgotten this datanode.

use crate::replica_index::{ReplicaInfo, ReplicaState};
use crate::server::{Shutdown, StopSignal};
use crate::store::Store;
use crate::xfer::{write, XferContext};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tusk_common::config::DatanodeConfig;
use tusk_proto::channel::RpcChannel;
use tusk_proto::datanode::datanode_command::Command;
use tusk_proto::datanode::datanode_namenode_client::DatanodeNamenodeClient;
use tusk_proto::datanode::{
    BlockReceivedAndDeletedRequest, BlockReportRequest, DatanodeCommand, DatanodeRegistration, HeartbeatRequest,
    ReportedBlock, StorageReport, VersionRequest,
};
use tusk_proto::heartbeat::HeartbeatStream;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RPC_TIMEOUT: Duration = Duration::from_secs(60);
/// Replications run at once; more wait for the namenode to ask again.
const MAX_REPLICATIONS: usize = 16;
/// Block reports larger than gRPC's default message limit are fine.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// How a session with the namenode ended.
enum SessionEnd {
    /// The local stop signal was given.
    Shutdown,
    /// The namenode sent Shutdown.
    Commanded,
    /// Registration is impossible (incompatible cluster id): stop the datanode.
    Fatal(String),
    /// The namenode could not be reached or failed a call: try again later.
    Failed(String),
}

/// What a command asks of the loop.
#[derive(Default)]
struct Next {
    reregister: bool,
    full_report: bool,
    shutdown: bool,
}

pub struct NamenodeActor {
    conf: DatanodeConfig,
    xfer_port: u16,
    ctx: Arc<XferContext>,
    shutdown: Shutdown,
    stop: StopSignal,
    replications: JoinSet<()>,
}

impl NamenodeActor {
    pub fn new(
        conf: DatanodeConfig,
        xfer_port: u16,
        ctx: Arc<XferContext>,
        shutdown: Shutdown,
        stop: StopSignal,
    ) -> NamenodeActor {
        NamenodeActor { conf, xfer_port, ctx, shutdown, stop, replications: JoinSet::new() }
    }

    fn store(&self) -> &Arc<Store> {
        &self.ctx.store
    }

    pub async fn run(mut self) {
        let mut backoff = INITIAL_BACKOFF;
        let mut shutdown = self.shutdown.clone();
        loop {
            // A stop interrupts anything, even a call the namenode is slow to answer.
            let end = tokio::select! {
                end = self.session(&mut backoff) => end,
                _ = shutdown.wait() => SessionEnd::Shutdown,
            };
            match end {
                SessionEnd::Shutdown => break,
                SessionEnd::Commanded => {
                    tracing::info!("namenode ordered a shutdown");
                    self.stop.stop();
                    break;
                }
                SessionEnd::Fatal(msg) => {
                    tracing::error!("{msg}");
                    self.stop.stop();
                    break;
                }
                SessionEnd::Failed(e) => {
                    tracing::warn!(
                        "cannot reach namenode at {}: {e}; retrying in {}s",
                        self.conf.namenode,
                        backoff.as_secs()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait() => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.replications.shutdown().await;
    }

    async fn connect(&self) -> Result<DatanodeNamenodeClient<RpcChannel>, String> {
        let channel =
            RpcChannel::connect(&self.conf.namenode, CONNECT_TIMEOUT, RPC_TIMEOUT).await.map_err(|e| e.to_string())?;
        Ok(DatanodeNamenodeClient::with_origin(channel.clone(), channel.origin())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// One connection's life: handshake, then the heartbeat loop until something fails.
    async fn session(&mut self, backoff: &mut Duration) -> SessionEnd {
        let mut shutdown = self.shutdown.clone();
        let handshake = async {
            let mut nn = self.connect().await.map_err(SessionEnd::Failed)?;
            self.handshake(&mut nn).await?;
            Ok::<_, SessionEnd>(nn)
        };
        let mut nn = tokio::select! {
            r = handshake => match r {
                Ok(nn) => nn,
                Err(end) => return end,
            },
            _ = shutdown.wait() => return SessionEnd::Shutdown,
        };
        *backoff = INITIAL_BACKOFF;
        let mut next = Next { full_report: true, ..Default::default() };
        // Opened at the first heartbeat; it lives as long as the connection.
        let mut beats: Option<HeartbeatStream> = None;
        let mut heartbeat = tokio::time::interval(Duration::from_millis(self.conf.heartbeat_interval_ms.max(1)));
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat.reset(); // the registration just told the namenode we are alive
        let report_period = Duration::from_millis(self.conf.block_report_interval_ms.max(1));
        let mut next_full_report = Instant::now() + report_period;
        loop {
            let result = if next.shutdown {
                return SessionEnd::Commanded;
            } else if next.reregister {
                next.reregister = false;
                next.full_report = true;
                self.handshake(&mut nn).await.err()
            } else if next.full_report {
                next.full_report = false;
                next_full_report = Instant::now() + report_period;
                self.full_report(&mut nn, &mut next).await.err()
            } else {
                let store = Arc::clone(self.store());
                tokio::select! {
                    _ = shutdown.wait() => return SessionEnd::Shutdown,
                    _ = heartbeat.tick() => self.heartbeat(&mut nn, &mut beats, &mut next).await.err(),
                    _ = store.report_ready.notified() => self.incremental_report(&mut nn, &mut next).await.err(),
                    _ = tokio::time::sleep_until(next_full_report) => {
                        next.full_report = true;
                        None
                    }
                }
            };
            if let Some(end) = result {
                return end;
            }
        }
    }

    /// Version, cluster id check, Register.
    async fn handshake(&self, nn: &mut DatanodeNamenodeClient<RpcChannel>) -> Result<(), SessionEnd> {
        let version = nn.version(VersionRequest {}).await.map_err(|s| status_failed("Version", &s))?.into_inner();
        let ours = self.store().cluster_id();
        if version.cluster_id.is_empty() {
            return Err(SessionEnd::Failed("namenode sent an empty clusterID".into()));
        }
        if ours.is_empty() {
            let store = Arc::clone(self.store());
            let theirs = version.cluster_id.clone();
            tokio::task::spawn_blocking(move || store.set_cluster_id(&theirs))
                .await
                .map_err(|e| SessionEnd::Fatal(format!("cannot record the clusterID: {e}")))?
                .map_err(|e| SessionEnd::Fatal(format!("cannot record the clusterID: {e}")))?;
            tracing::info!(cluster_id = %version.cluster_id, "joined cluster");
        } else if ours != version.cluster_id {
            let dirs: Vec<String> = self.store().volumes().iter().map(|v| v.dir.display().to_string()).collect();
            return Err(SessionEnd::Fatal(format!(
                "Incompatible clusterIDs in {}: namenode clusterID = {}; datanode clusterID = {}",
                dirs.join(", "),
                version.cluster_id,
                ours
            )));
        }
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| self.conf.advertise_host.clone());
        let registration = DatanodeRegistration {
            datanode_uuid: self.store().uuid(),
            cluster_id: version.cluster_id,
            hostname,
            ip_addr: self.conf.advertise_host.clone(),
            xfer_port: u32::from(self.xfer_port),
            http_port: self.conf.http_address.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(0),
            ipc_port: 0,
            software_version: tusk_common::VERSION.to_string(),
        };
        nn.register(registration).await.map_err(|s| status_failed("Register", &s))?;
        tracing::info!(namenode = %self.conf.namenode, "registered with the namenode");
        Ok(())
    }

    async fn heartbeat(
        &mut self,
        nn: &mut DatanodeNamenodeClient<RpcChannel>,
        beats: &mut Option<HeartbeatStream>,
        next: &mut Next,
    ) -> Result<(), SessionEnd> {
        let (space, failed_volumes) = self.store().space();
        metrics::gauge!("datanode_capacity_bytes").set(space.capacity as f64);
        metrics::gauge!("datanode_remaining_bytes").set(space.available as f64);
        metrics::gauge!("datanode_failed_volumes").set(f64::from(failed_volumes));
        metrics::gauge!("datanode_active_transfers").set(f64::from(self.ctx.active.load(Ordering::Relaxed)));
        metrics::counter!("datanode_heartbeats_total").increment(1);
        let req = HeartbeatRequest {
            datanode_uuid: self.store().uuid(),
            storage: Some(StorageReport {
                capacity: space.capacity,
                dfs_used: self.store().dfs_used(),
                remaining: space.available,
                failed_volumes,
            }),
            active_transfers: self.ctx.active.load(Ordering::Relaxed),
        };
        // A failed heartbeat ends the session, and with it the stream.
        let resp =
            HeartbeatStream::beat_on(beats, nn, RPC_TIMEOUT, req).await.map_err(|s| status_failed("Heartbeat", &s))?;
        self.execute(resp.commands, next).await;
        Ok(())
    }

    async fn full_report(
        &mut self,
        nn: &mut DatanodeNamenodeClient<RpcChannel>,
        next: &mut Next,
    ) -> Result<(), SessionEnd> {
        // Pending increments taken now are covered by the snapshot taken after; bad replicas
        // are not in a block report, so they stay queued.
        let covered = self.store().take_pending();
        if !covered.bad.is_empty() {
            self.store().requeue(crate::store::PendingReports { bad: covered.bad, ..Default::default() });
        }
        let blocks: Vec<ReportedBlock> = self.store().report().into_iter().map(|(id, r)| reported(id, &r)).collect();
        let n = blocks.len();
        let req = BlockReportRequest { datanode_uuid: self.store().uuid(), blocks };
        let resp = nn.block_report(req).await.map_err(|s| status_failed("BlockReport", &s))?.into_inner();
        tracing::info!(blocks = n, "sent full block report");
        self.execute(resp.commands, next).await;
        Ok(())
    }

    async fn incremental_report(
        &mut self,
        nn: &mut DatanodeNamenodeClient<RpcChannel>,
        next: &mut Next,
    ) -> Result<(), SessionEnd> {
        let mut pending = self.store().take_pending();
        if pending.overflowed {
            next.full_report = true;
            return Ok(());
        }
        let bad = std::mem::take(&mut pending.bad);
        if !bad.is_empty() {
            let req = bad_blocks_request(&self.store().uuid(), &bad);
            if let Err(s) = nn.report_bad_blocks(req).await {
                pending.bad = bad;
                self.store().requeue(pending);
                return Err(status_failed("ReportBadBlocks", &s));
            }
            tracing::warn!(count = bad.len(), "reported corrupt replicas to the namenode");
        }
        if pending.received.is_empty() && pending.deleted.is_empty() {
            return Ok(());
        }
        let req = BlockReceivedAndDeletedRequest {
            datanode_uuid: self.store().uuid(),
            received: pending.received.iter().map(|(id, r)| reported(*id, r)).collect(),
            deleted: pending.deleted.clone(),
        };
        if let Err(s) = nn.block_received_and_deleted(req).await {
            self.store().requeue(pending);
            return Err(status_failed("BlockReceivedAndDeleted", &s));
        }
        tracing::debug!(received = pending.received.len(), deleted = pending.deleted.len(), "sent incremental report");
        Ok(())
    }

    async fn execute(&mut self, commands: Vec<DatanodeCommand>, next: &mut Next) {
        while self.replications.try_join_next().is_some() {}
        for cmd in commands {
            match cmd.command {
                Some(Command::Delete(d)) => {
                    let store = Arc::clone(self.store());
                    let ids = d.block_ids;
                    let done = tokio::task::spawn_blocking(move || {
                        for id in ids {
                            if let Err(e) = store.delete(id) {
                                tracing::warn!(block_id = id, "cannot delete replica: {e}");
                            }
                        }
                    })
                    .await;
                    if let Err(e) = done {
                        tracing::warn!("delete task failed: {e}");
                    }
                }
                Some(Command::Transfer(t)) => {
                    let Some(block) = t.block else {
                        tracing::warn!("Transfer command without a block");
                        continue;
                    };
                    if t.targets.is_empty() {
                        tracing::warn!(block_id = block.block_id, "Transfer command without targets");
                        continue;
                    }
                    if self.replications.len() >= MAX_REPLICATIONS {
                        tracing::info!(block_id = block.block_id, "too many replications running; skipping");
                        continue;
                    }
                    let store = Arc::clone(self.store());
                    let ctx = Arc::clone(&self.ctx);
                    let targets = t.targets;
                    let block_id = block.block_id;
                    self.replications.spawn(async move {
                        let _active = crate::xfer::ActiveGuard::new(&ctx.active);
                        let to: Vec<String> =
                            targets.iter().map(|t| format!("{}:{}", t.ip_addr, t.xfer_port)).collect();
                        match write::transfer_replica(store, block_id, targets, ctx.client_name.clone()).await {
                            Ok(len) => tracing::info!(block_id, len, ?to, "replicated block"),
                            Err(e) => tracing::warn!(block_id, ?to, "replication failed: {e}"),
                        }
                    });
                }
                Some(Command::RecoverBlock(r)) => {
                    let store = Arc::clone(self.store());
                    let namenode = self.conf.namenode.clone();
                    let block_id = r.block.map(|b| b.block_id).unwrap_or_default();
                    self.replications.spawn(async move {
                        match crate::block_recovery::recover(store, r, namenode).await {
                            Ok(len) => tracing::info!(block_id, len, "block recovered"),
                            Err(e) => tracing::warn!(block_id, "block recovery failed: {e}"),
                        }
                    });
                }
                Some(Command::Reregister(_)) => next.reregister = true,
                Some(Command::BlockReport(_)) => next.full_report = true,
                Some(Command::Shutdown(_)) => next.shutdown = true,
                None => tracing::warn!("empty command from the namenode"),
            }
        }
    }
}

fn reported(block_id: u64, r: &ReplicaInfo) -> ReportedBlock {
    let state = match r.state {
        ReplicaState::Finalized => tusk_proto::datanode::ReplicaState::ReplicaFinalized,
        ReplicaState::Rbw => tusk_proto::datanode::ReplicaState::ReplicaRbw,
    };
    ReportedBlock { block_id, generation_stamp: r.genstamp, num_bytes: r.len, state: state as i32 }
}

/// Replicas this datanode found corrupt, as a ReportBadBlocks request naming it.
fn bad_blocks_request(uuid: &str, bad: &[(u64, ReplicaInfo)]) -> tusk_proto::client::ReportBadBlocksRequest {
    use tusk_proto::client::{DatanodeInfo, ExtendedBlock, LocatedBlock};
    let me = DatanodeInfo { datanode_uuid: uuid.to_owned(), ..Default::default() };
    let blocks = bad
        .iter()
        .map(|(id, r)| LocatedBlock {
            block: Some(ExtendedBlock { block_id: *id, generation_stamp: r.genstamp, num_bytes: r.len }),
            locations: vec![me.clone()],
            ..Default::default()
        })
        .collect();
    tusk_proto::client::ReportBadBlocksRequest { blocks }
}

fn status_failed(call: &str, s: &tonic::Status) -> SessionEnd {
    SessionEnd::Failed(format!("{call} failed: {} ({:?})", s.message(), s.code()))
}
