//! Runs the namenode's RPC server on an already-bound listener until `shutdown` resolves,
//! so tests can run it in-process on `127.0.0.1:0`.

use crate::namesystem::Namesystem;
use crate::service::ClientService;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tusk_proto::client::client_namenode_server::ClientNamenodeServer;

/// Most requests served at once per connection (a limit on everything).
const MAX_CONCURRENT_STREAMS: u32 = 256;

pub async fn run(
    fsn: Arc<Namesystem>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "namenode RPC server listening");
    let result = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .tcp_nodelay(true)
        .add_service(ClientNamenodeServer::new(ClientService::new(fsn.clone())))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    fsn.close();
    tracing::info!("namenode stopped");
    result
}
