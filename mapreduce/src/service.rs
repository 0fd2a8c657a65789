//! The jobtracker's gRPC service (job client and tasktrackers) and the tasktracker's Shuffle
//! service. Thin: convert, call the core, convert back.

use crate::jobtracker::JobTracker;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tusk_proto::mapreduce::job_tracker_server::JobTracker as JobTrackerRpc;
use tusk_proto::mapreduce::shuffle_server::Shuffle;
use tusk_proto::mapreduce::*;

pub struct JobTrackerService(pub Arc<JobTracker>);

#[tonic::async_trait]
impl JobTrackerRpc for JobTrackerService {
    async fn submit_job(&self, req: Request<SubmitJobRequest>) -> Result<Response<SubmitJobResponse>, Status> {
        let spec = req.into_inner().spec.ok_or_else(|| Status::invalid_argument("submitJob needs a job"))?;
        let job_id = self.0.submit(spec).await.map_err(Status::invalid_argument)?;
        Ok(Response::new(SubmitJobResponse { job_id }))
    }

    async fn get_job_status(&self, req: Request<JobStatusRequest>) -> Result<Response<JobStatus>, Status> {
        let r = req.get_ref();
        let id = &r.job_id;
        self.0.status(id, r.with_attempts).map(Response::new).ok_or_else(|| Status::not_found(format!("no job {id}")))
    }

    async fn list_jobs(&self, _req: Request<ListJobsRequest>) -> Result<Response<ListJobsResponse>, Status> {
        Ok(Response::new(ListJobsResponse { jobs: self.0.list() }))
    }

    async fn kill_job(&self, req: Request<JobStatusRequest>) -> Result<Response<JobStatus>, Status> {
        let id = &req.get_ref().job_id;
        self.0.kill(id).await.map(Response::new).map_err(Status::failed_precondition)
    }

    async fn heartbeat(&self, req: Request<TrackerHeartbeat>) -> Result<Response<TrackerHeartbeatResponse>, Status> {
        let hb = req.into_inner();
        if hb.tracker_id.is_empty() {
            return Err(Status::invalid_argument("heartbeat without a tracker id"));
        }
        let (resp, follow) = self.0.heartbeat(&hb);
        let jt = Arc::clone(&self.0);
        tokio::spawn(async move { jt.follow_up(follow).await });
        Ok(Response::new(resp))
    }
}

/// Serves map output from a tracker's local directory.
pub struct ShuffleService {
    pub local_dir: PathBuf,
}

const CHUNK: usize = 1 << 20;

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[tonic::async_trait]
impl Shuffle for ShuffleService {
    type GetMapOutputStream = Pin<Box<dyn Stream<Item = Result<MapOutputChunk, Status>> + Send>>;

    async fn get_map_output(
        &self,
        req: Request<MapOutputRequest>,
    ) -> Result<Response<Self::GetMapOutputStream>, Status> {
        let r = req.into_inner();
        // Ids become path components: nothing but what the jobtracker makes.
        if !valid_id(&r.job_id) || !valid_id(&r.attempt_id) {
            return Err(Status::invalid_argument("bad job or attempt id"));
        }
        let dir = crate::task::map_output_dir(&self.local_dir, &r.job_id, &r.attempt_id);
        let p = r.partition;
        let data = tokio::task::spawn_blocking(move || crate::mapout::read_partition(&dir, p))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::not_found(format!("map output of {} partition {p}: {e}", r.attempt_id)))?;
        let chunks: Vec<Result<MapOutputChunk, Status>> =
            data.chunks(CHUNK).map(|c| Ok(MapOutputChunk { data: c.to_vec() })).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}
