//! The namenode actor against a fake namenode (a real gRPC server in-process): registration,
//! block reports, incremental reports, and the commands riding on heartbeat replies.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tusk_proto::client::{ExtendedBlock, ReportBadBlocksRequest, ReportBadBlocksResponse};
use tusk_proto::datanode::datanode_command::Command;
use tusk_proto::datanode::datanode_namenode_server::{DatanodeNamenode, DatanodeNamenodeServer};
use tusk_proto::datanode::*;

#[derive(Default)]
struct State {
    registrations: Vec<DatanodeRegistration>,
    full_reports: Vec<BlockReportRequest>,
    received: Vec<(String, ReportedBlock)>,
    deleted: Vec<(String, u64)>,
    heartbeats: usize,
    /// Heartbeat streams opened (datanodes heartbeat on one stream per connection).
    streams: usize,
    commands: HashMap<String, Vec<DatanodeCommand>>,
}

#[derive(Clone)]
struct FakeNamenode {
    cluster_id: String,
    state: Arc<Mutex<State>>,
}

impl FakeNamenode {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
    fn beat(&self, r: HeartbeatRequest) -> HeartbeatResponse {
        let mut st = self.st();
        st.heartbeats += 1;
        let storage = r.storage.unwrap_or_default();
        assert!(storage.capacity > 0 && storage.remaining <= storage.capacity);
        let commands = st.commands.remove(&r.datanode_uuid).unwrap_or_default();
        HeartbeatResponse { commands }
    }
    fn command(&self, uuid: &str, c: Command) {
        self.st().commands.entry(uuid.to_string()).or_default().push(DatanodeCommand { command: Some(c) });
    }
}

#[tonic::async_trait]
impl DatanodeNamenode for FakeNamenode {
    async fn version(&self, _: Request<VersionRequest>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse { cluster_id: self.cluster_id.clone(), namenode_version: "test".into() }))
    }
    async fn register(&self, r: Request<DatanodeRegistration>) -> Result<Response<RegisterResponse>, Status> {
        self.st().registrations.push(r.into_inner());
        Ok(Response::new(RegisterResponse {}))
    }
    async fn heartbeat(&self, r: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(self.beat(r.into_inner())))
    }
    type HeartbeatStreamStream = std::pin::Pin<Box<dyn Stream<Item = Result<HeartbeatResponse, Status>> + Send>>;
    async fn heartbeat_stream(
        &self,
        r: Request<Streaming<HeartbeatRequest>>,
    ) -> Result<Response<Self::HeartbeatStreamStream>, Status> {
        self.st().streams += 1;
        let nn = self.clone();
        Ok(Response::new(Box::pin(r.into_inner().map_while(move |r| Some(Ok(nn.beat(r.ok()?)))))))
    }
    async fn block_report(&self, r: Request<BlockReportRequest>) -> Result<Response<BlockReportResponse>, Status> {
        self.st().full_reports.push(r.into_inner());
        Ok(Response::new(BlockReportResponse { commands: vec![] }))
    }
    async fn block_received_and_deleted(
        &self,
        r: Request<BlockReceivedAndDeletedRequest>,
    ) -> Result<Response<BlockReceivedAndDeletedResponse>, Status> {
        let r = r.into_inner();
        let mut st = self.st();
        for b in r.received {
            st.received.push((r.datanode_uuid.clone(), b));
        }
        for d in r.deleted {
            st.deleted.push((r.datanode_uuid.clone(), d));
        }
        Ok(Response::new(BlockReceivedAndDeletedResponse {}))
    }
    async fn report_bad_blocks(
        &self,
        _: Request<ReportBadBlocksRequest>,
    ) -> Result<Response<ReportBadBlocksResponse>, Status> {
        Ok(Response::new(ReportBadBlocksResponse::default()))
    }

    async fn commit_block_synchronization(
        &self,
        _: Request<CommitBlockSynchronizationRequest>,
    ) -> Result<Response<CommitBlockSynchronizationResponse>, Status> {
        Ok(Response::new(CommitBlockSynchronizationResponse::default()))
    }
}

async fn start_namenode(cluster_id: &str) -> (FakeNamenode, String) {
    let nn = FakeNamenode { cluster_id: cluster_id.into(), state: Arc::default() };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let svc = DatanodeNamenodeServer::new(nn.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (nn, addr)
}

/// Waits for `cond`, failing the test after 10 s.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_reports_and_obeys_commands() {
    let (nn, addr) = start_namenode("CID-test").await;
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let dn1 = start_dn(d1.path(), &addr).await;
    let dn2 = start_dn(d2.path(), &addr).await;
    eventually("both registrations and first reports", || {
        let st = nn.st();
        st.registrations.len() == 2 && st.full_reports.len() == 2
    })
    .await;
    {
        let st = nn.st();
        let reg = st.registrations.iter().find(|r| r.datanode_uuid == dn1.uuid()).unwrap();
        assert_eq!(reg.cluster_id, "CID-test");
        assert_eq!(reg.ip_addr, "127.0.0.1");
        assert_eq!(reg.xfer_port, u32::from(dn1.xfer_addr().port()));
        assert!(st.full_reports.iter().all(|r| r.blocks.is_empty()));
    }
    let version = std::fs::read_to_string(d1.path().join("current/VERSION")).unwrap();
    assert!(version.contains("clusterID=CID-test"), "{version}");

    // A finalized replica is reported at once (well within a heartbeat of 100 ms would do,
    // but the report must not wait for one).
    let data = test_data(100_000, 9);
    write_block(dn1.xfer_addr(), 11, 2, vec![target(dn2.xfer_addr())], &data).await.unwrap();
    eventually("received reports from both", || {
        let st = nn.st();
        st.received.iter().filter(|(_, b)| b.block_id == 11 && b.num_bytes == 100_000).count() == 2
    })
    .await;
    assert!(nn.st().received.iter().all(|(_, b)| b.state == ReplicaState::ReplicaFinalized as i32));

    // Transfer: dn1 copies block 12 to dn2.
    write_block(dn1.xfer_addr(), 12, 3, vec![], &data[..70_000]).await.unwrap();
    nn.command(
        &dn1.uuid(),
        Command::Transfer(TransferCommand {
            block: Some(ExtendedBlock { block_id: 12, generation_stamp: 3, num_bytes: 70_000 }),
            targets: vec![target(dn2.xfer_addr())],
        }),
    );
    eventually("replica copied to dn2", || dn2.block_file(12).is_some()).await;
    assert_eq!(std::fs::read(dn2.block_file(12).unwrap()).unwrap(), &data[..70_000]);
    let dn2_uuid = dn2.uuid();
    eventually("dn2 reports the copy", || nn.st().received.iter().any(|(u, b)| *u == dn2_uuid && b.block_id == 12))
        .await;

    // Delete.
    nn.command(&dn1.uuid(), Command::Delete(DeleteCommand { block_ids: vec![11, 999] }));
    let dn1_uuid = dn1.uuid();
    eventually("deletion reported", || nn.st().deleted.iter().any(|(u, id)| *u == dn1_uuid && *id == 11)).await;
    assert!(dn1.block_file(11).is_none());
    assert!(dn2.block_file(11).is_some());

    // Full report on request includes what is there.
    let before = nn.st().full_reports.len();
    nn.command(&dn2.uuid(), Command::BlockReport(BlockReportCommand {}));
    eventually("requested report", || nn.st().full_reports.len() > before).await;
    let mut ids: Vec<u64> = nn.st().full_reports.last().unwrap().blocks.iter().map(|b| b.block_id).collect();
    ids.sort();
    assert_eq!(ids, vec![11, 12]);

    // Those commands rode on heartbeats sent on one stream per datanode's connection.
    {
        let st = nn.st();
        assert_eq!(st.streams, 2, "heartbeat streams opened");
        assert!(st.heartbeats >= 4, "{} heartbeats", st.heartbeats);
    }

    // Shutdown from the namenode: stopped() resolves.
    nn.command(&dn2.uuid(), Command::Shutdown(ShutdownCommand {}));
    tokio::time::timeout(Duration::from_secs(10), dn2.stopped()).await.expect("dn2 stopped");
    dn1.shutdown().await;
    dn2.shutdown().await;
}

#[tokio::test]
async fn incompatible_cluster_id_stops_the_datanode() {
    let (nn_a, addr_a) = start_namenode("CID-a").await;
    let dir = tempfile::tempdir().unwrap();
    let dn = start_dn(dir.path(), &addr_a).await;
    eventually("registration", || nn_a.st().registrations.len() == 1).await;
    dn.shutdown().await;

    let (nn_b, addr_b) = start_namenode("CID-b").await;
    let dn = start_dn(dir.path(), &addr_b).await;
    tokio::time::timeout(Duration::from_secs(10), dn.stopped()).await.expect("datanode stopped by itself");
    assert!(nn_b.st().registrations.is_empty());
    let version = std::fs::read_to_string(dir.path().join("current/VERSION")).unwrap();
    assert!(version.contains("clusterID=CID-a"), "{version}");
    dn.shutdown().await;
}

#[tokio::test]
async fn namenode_that_comes_late_is_found() {
    // Reserve a port, start the datanode against it, then start the namenode there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let dn = start_dn(dir.path(), &addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let nn = FakeNamenode { cluster_id: "CID-late".into(), state: Arc::default() };
    let listener = TcpListener::bind(&addr).await.unwrap();
    let svc = DatanodeNamenodeServer::new(nn.clone());
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await;
    });
    eventually("late registration", || nn.st().registrations.len() == 1).await;
    dn.shutdown().await;
}
