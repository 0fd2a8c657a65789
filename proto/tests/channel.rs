//! `RpcChannel` against a real tonic server on loopback: calls, many at once on one
//! connection, a server that goes away and comes back on the same port, a port nobody
//! listens on, and a server that does not answer in time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::{Code, Request, Response, Status};
use tusk_proto::channel::RpcChannel;
use tusk_proto::client::{ReportBadBlocksRequest, ReportBadBlocksResponse};
use tusk_proto::datanode::datanode_namenode_client::DatanodeNamenodeClient;
use tusk_proto::datanode::datanode_namenode_server::{DatanodeNamenode, DatanodeNamenodeServer};
use tusk_proto::datanode::*;

/// Answers heartbeats (and counts them); a datanode called "slow" gets its answer after 5 s.
#[derive(Clone, Default)]
struct Counting {
    heartbeats: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl DatanodeNamenode for Counting {
    async fn version(&self, _: Request<VersionRequest>) -> Result<Response<VersionResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn register(&self, _: Request<DatanodeRegistration>) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn heartbeat(&self, r: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        let r = r.into_inner();
        if r.datanode_uuid == "slow" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if r.datanode_uuid == "unknown" {
            return Err(Status::not_found("no such datanode"));
        }
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(HeartbeatResponse::default()))
    }
    async fn block_report(&self, _: Request<BlockReportRequest>) -> Result<Response<BlockReportResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn block_received_and_deleted(
        &self,
        _: Request<BlockReceivedAndDeletedRequest>,
    ) -> Result<Response<BlockReceivedAndDeletedResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn commit_block_synchronization(
        &self,
        _: Request<CommitBlockSynchronizationRequest>,
    ) -> Result<Response<CommitBlockSynchronizationResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn report_bad_blocks(
        &self,
        _: Request<ReportBadBlocksRequest>,
    ) -> Result<Response<ReportBadBlocksResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
}

/// Serves `svc` on `listener` until the returned sender is dropped or fired.
fn serve(listener: TcpListener, svc: Counting) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let incoming = tusk_proto::serve::nodelay(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(DatanodeNamenodeServer::new(svc))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
            .expect("test server");
    });
    (stop, task)
}

fn client(ch: &RpcChannel) -> DatanodeNamenodeClient<RpcChannel> {
    DatanodeNamenodeClient::with_origin(ch.clone(), ch.origin())
}

fn beat(uuid: &str) -> HeartbeatRequest {
    HeartbeatRequest { datanode_uuid: uuid.into(), ..Default::default() }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_share_one_connection_and_come_back_after_the_server_restarts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let svc = Counting::default();
    let (stop, task) = serve(listener, svc.clone());

    let ch = RpcChannel::connect(&addr.to_string(), SECOND, 10 * SECOND).await.unwrap();
    client(&ch).heartbeat(beat("dn-1")).await.unwrap();

    // 500 calls at once over the one connection (more than a server's default stream limit
    // of concurrent streams is not needed: hyper queues what the peer does not yet allow).
    let calls: Vec<_> = (0..500)
        .map(|i| {
            let mut c = client(&ch);
            tokio::spawn(async move { c.heartbeat(beat(&format!("dn-{i}"))).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(svc.heartbeats.load(Ordering::SeqCst), 501);

    // A status from the server's handler reaches the caller as that status.
    let e = client(&ch).heartbeat(beat("unknown")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(e.message(), "no such datanode");

    // The server goes away: a call fails with UNAVAILABLE, and does not hang.
    stop.send(()).unwrap();
    task.await.unwrap();
    let mut failed = None;
    for _ in 0..50 {
        match client(&ch).heartbeat(beat("dn-1")).await {
            Err(e) => {
                failed = Some(e);
                break;
            }
            // The connection's end may not have been seen yet.
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let e = failed.expect("calls kept succeeding after the server stopped");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");

    // It comes back on the same port: the same channel reconnects on its next call.
    let listener = TcpListener::bind(addr).await.unwrap();
    let (_stop, _task) = serve(listener, svc.clone());
    client(&ch).heartbeat(beat("dn-1")).await.unwrap();
    assert_eq!(svc.heartbeats.load(Ordering::SeqCst), 502);
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_refused_at_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = RpcChannel::connect(&addr.to_string(), SECOND, SECOND).await.err().expect("connected to nothing");
    assert!(e.to_string().contains("Connection refused"), "{e}");
}

#[tokio::test]
async fn a_call_that_outlives_its_timeout_fails_with_deadline_exceeded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = Counting::default();
    let (_stop, _task) = serve(listener, svc.clone());
    let ch = RpcChannel::connect(&addr.to_string(), SECOND, Duration::from_millis(300)).await.unwrap();
    let started = Instant::now();
    let e = client(&ch).heartbeat(beat("slow")).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "waited {:?}", started.elapsed());
    // The connection is still good for the next call.
    client(&ch).heartbeat(beat("dn-1")).await.unwrap();
    assert_eq!(svc.heartbeats.load(Ordering::SeqCst), 1);
}
