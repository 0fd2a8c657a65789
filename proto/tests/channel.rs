//! `RpcChannel` against a real tonic server on loopback: calls, many at once on one
//! connection, a server that goes away and comes back on the same port, a port nobody
//! listens on, and a server that does not answer in time; and `HeartbeatStream` over it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};
use tusk_proto::channel::RpcChannel;
use tusk_proto::client::{ReportBadBlocksRequest, ReportBadBlocksResponse};
use tusk_proto::datanode::datanode_namenode_client::DatanodeNamenodeClient;
use tusk_proto::datanode::datanode_namenode_server::{DatanodeNamenode, DatanodeNamenodeServer};
use tusk_proto::datanode::*;
use tusk_proto::heartbeat::HeartbeatStream;

/// Answers heartbeats (and counts them); a datanode called "slow" gets its answer after 5 s.
#[derive(Clone, Default)]
struct Counting {
    heartbeats: Arc<AtomicUsize>,
}

impl Counting {
    async fn answer(&self, r: HeartbeatRequest) -> Result<HeartbeatResponse, Status> {
        if r.datanode_uuid == "slow" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if r.datanode_uuid == "unknown" {
            return Err(Status::not_found("no such datanode"));
        }
        let n = self.heartbeats.fetch_add(1, Ordering::SeqCst);
        // The answer says which heartbeat it answers: a command naming the request's uuid
        // and the count so far.
        let name = format!("{}#{n}", r.datanode_uuid);
        let command = datanode_command::Command::Delete(DeleteCommand { block_ids: vec![name.len() as u64] });
        Ok(HeartbeatResponse { commands: vec![DatanodeCommand { command: Some(command) }] })
    }
}

type Answers = Pin<Box<dyn Stream<Item = Result<HeartbeatResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DatanodeNamenode for Counting {
    async fn version(&self, _: Request<VersionRequest>) -> Result<Response<VersionResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn register(&self, _: Request<DatanodeRegistration>) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn heartbeat(&self, r: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(self.answer(r.into_inner()).await?))
    }
    type HeartbeatStreamStream = Answers;
    /// As the namenode does: one answer per request, in order; the first error ends it.
    async fn heartbeat_stream(&self, r: Request<Streaming<HeartbeatRequest>>) -> Result<Response<Answers>, Status> {
        let svc = self.clone();
        let answers = r
            .into_inner()
            .map_while(|r| r.ok())
            .then(move |r| {
                let svc = svc.clone();
                async move { svc.answer(r).await }
            })
            .map_while({
                let mut failed = false;
                move |a: Result<HeartbeatResponse, Status>| {
                    if failed {
                        return None;
                    }
                    failed = a.is_err();
                    Some(a)
                }
            });
        Ok(Response::new(Box::pin(answers)))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_on_one_stream_are_answered_in_order_until_one_fails_or_the_server_dies() {
    // The server runs on a runtime of its own, so that dropping it kills the process's side
    // of every connection at once, as a crash would.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let svc = Counting::default();
    let (_stop, _task) = {
        let _in = server.enter();
        serve(TcpListener::from_std(std_listener).unwrap(), svc.clone())
    };
    let ch = RpcChannel::connect(&addr.to_string(), SECOND, 10 * SECOND).await.unwrap();

    // Each answer is the one for its own request (uuids of different lengths, counted).
    let mut stream = HeartbeatStream::open(&mut client(&ch), 10 * SECOND).await.unwrap();
    for i in 0..200u64 {
        let uuid = "d".repeat(1 + (i % 7) as usize);
        let answer = stream.beat(beat(&uuid)).await.unwrap();
        let expected = format!("{uuid}#{i}").len() as u64;
        match &answer.commands[..] {
            [DatanodeCommand { command: Some(datanode_command::Command::Delete(d)) }] => {
                assert_eq!(d.block_ids, vec![expected], "answer {i}")
            }
            other => panic!("answer {i}: {other:?}"),
        }
    }
    assert_eq!(svc.heartbeats.load(Ordering::SeqCst), 200);

    // An answer that is an error ends the stream with that status; the next heartbeat on
    // it fails too, and a new stream works.
    let e = stream.beat(beat("unknown")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(stream.beat(beat("dn-1")).await.is_err());
    let mut stream = HeartbeatStream::open(&mut client(&ch), 10 * SECOND).await.unwrap();
    stream.beat(beat("dn-1")).await.unwrap();

    // An answer later than the timeout: DEADLINE_EXCEEDED, not a wait for ever.
    let mut short = HeartbeatStream::open(&mut client(&ch), Duration::from_millis(300)).await.unwrap();
    let started = Instant::now();
    let e = short.beat(beat("slow")).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "waited {:?}", started.elapsed());

    // The server dies: the open stream fails instead of waiting for an answer.
    server.shutdown_background();
    let started = Instant::now();
    let e = stream.beat(beat("dn-1")).await.unwrap_err();
    assert_ne!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "waited {:?}", started.elapsed());
}
