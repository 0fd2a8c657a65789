//! Runs the namenode's RPC server on an already-bound listener until `shutdown` resolves,
//! so tests can run it in-process on `127.0.0.1:0`.

use crate::checkpoint_service::CheckpointService;
use crate::datanode_service::DatanodeService;
use crate::namesystem::Namesystem;
use crate::service::ClientService;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tusk_proto::checkpoint::namenode_checkpoint_server::NamenodeCheckpointServer;
use tusk_proto::client::client_namenode_server::ClientNamenodeServer;
use tusk_proto::datanode::datanode_namenode_server::DatanodeNamenodeServer;

/// Most requests served at once per connection (a limit on everything).
const MAX_CONCURRENT_STREAMS: u32 = 256;
/// How long requests still running at shutdown may take before the server stops anyway.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn run(
    fsn: Arc<Namesystem>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "namenode RPC server listening");
    // Block management: dead datanodes, safe mode, replication. One loop, one shape.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let monitor = {
        let fsn = fsn.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.changed() => return,
                }
                n += 1;
                fsn.check_leases().await;
                let fsn = fsn.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    fsn.block_management_tick(n.is_multiple_of(3));
                    if n.is_multiple_of(60) {
                        fsn.check_checkpoint_age();
                    }
                })
                .await;
            }
        })
    };
    // `closing` turns true when shutdown begins: long calls (a checkpoint upload, heartbeat
    // streams) end early.
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let mut grace = closing.clone();
    let serve = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .layer(tusk_proto::serve::RpcMetricsLayer)
        .add_service(ClientNamenodeServer::new(ClientService::new(fsn.clone())).max_decoding_message_size(256 << 20))
        .add_service(
            DatanodeNamenodeServer::new(DatanodeService::new(fsn.clone(), closing.clone()))
                .max_decoding_message_size(256 << 20),
        )
        .add_service(
            NamenodeCheckpointServer::new(CheckpointService::new(fsn.clone(), closing))
                .max_decoding_message_size(16 << 20),
        )
        .serve_with_incoming_shutdown(tusk_proto::serve::nodelay(TcpListenerStream::new(listener)), shutdown);
    tokio::pin!(serve);
    let result = tokio::select! {
        r = &mut serve => r,
        _ = async {
            let _ = grace.wait_for(|c| *c).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("requests still running {} s after shutdown began; stopping without them", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    let _ = monitor.await;
    fsn.close();
    tracing::info!("namenode stopped");
    result
}
