//! A datanode's heartbeats on one long-lived gRPC stream (`HeartbeatStream`), as datanodes
//! and the benchmark's simulated datanodes send them.
//!
//! Why a stream: a unary call opens an HTTP/2 stream per heartbeat, with HEADERS and hpack
//! both ways, gRPC trailers, a task spawned on the namenode and its routing and metrics
//! layers; on the stream a heartbeat is one DATA frame each way, answered in order by the
//! same task. The namenode's cost per heartbeat is what issue 10 measures with 1,000
//! simulated datanodes.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::channel::RpcChannel;
use crate::datanode::datanode_namenode_client::DatanodeNamenodeClient;
use crate::datanode::{HeartbeatRequest, HeartbeatResponse};

/// An open heartbeat stream: [`HeartbeatStream::beat`] sends one heartbeat and waits for its
/// answer. Dropping it ends the stream.
pub struct HeartbeatStream {
    requests: mpsc::Sender<HeartbeatRequest>,
    answers: Streaming<HeartbeatResponse>,
    timeout: Duration,
}

impl HeartbeatStream {
    /// Opens the stream; every heartbeat then fails with DEADLINE_EXCEEDED if its answer
    /// takes longer than `timeout`.
    pub async fn open(
        nn: &mut DatanodeNamenodeClient<RpcChannel>,
        timeout: Duration,
    ) -> Result<HeartbeatStream, Status> {
        // One heartbeat is in flight at a time, so one slot is all the queue needs.
        let (requests, rx) = mpsc::channel(1);
        let answers = nn.heartbeat_stream(ReceiverStream::new(rx)).await?.into_inner();
        Ok(HeartbeatStream { requests, answers, timeout })
    }

    /// One heartbeat on the stream kept in `slot`, opened there first if there is none (a
    /// datanode opens it at its first heartbeat and keeps it as long as the connection).
    pub async fn beat_on(
        slot: &mut Option<HeartbeatStream>,
        nn: &mut DatanodeNamenodeClient<RpcChannel>,
        timeout: Duration,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, Status> {
        let stream = match slot {
            Some(stream) => stream,
            None => slot.insert(HeartbeatStream::open(nn, timeout).await?),
        };
        stream.beat(req).await
    }

    /// One heartbeat and the namenode's answer to it.
    pub async fn beat(&mut self, req: HeartbeatRequest) -> Result<HeartbeatResponse, Status> {
        let exchange = async {
            self.requests.send(req).await.map_err(|_| Status::unavailable("the heartbeat stream has closed"))?;
            match self.answers.message().await? {
                Some(answer) => Ok(answer),
                None => Err(Status::unavailable("the namenode ended the heartbeat stream")),
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded("Timeout expired")),
        }
    }
}
