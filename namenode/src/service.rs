//! The client RPC service: converts each request, calls the namesystem, maps the error to a
//! status in one place (`to_status`). Nothing else lives here.

use crate::error::NnError;
use crate::namesystem::{Namesystem, SafeModeAction};
use crate::permission::Caller;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tusk_proto::client::client_namenode_server::ClientNamenode;
use tusk_proto::client::*;

/// Request metadata carrying the caller's user name.
pub const USER_HEADER: &str = "tusk-user";
/// Response metadata naming the Hadoop exception class of an error.
pub const EXCEPTION_HEADER: &str = "tusk-exception";

pub struct ClientService {
    fsn: Arc<Namesystem>,
}

impl ClientService {
    pub fn new(fsn: Arc<Namesystem>) -> Self {
        ClientService { fsn }
    }

    #[allow(clippy::result_large_err)]
    fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        caller_of(&self.fsn, req)
    }
}

/// The caller named by a request's `tusk-user` metadata (simple authentication, as HDFS).
#[allow(clippy::result_large_err)]
pub fn caller_of<T>(fsn: &Namesystem, req: &Request<T>) -> Result<Caller, Status> {
    let user = req
        .metadata()
        .get(USER_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|u| tusk_common::user::valid_principal(u))
        .ok_or_else(|| Status::invalid_argument(format!("missing or invalid `{USER_HEADER}` metadata")))?;
    Ok(fsn.caller(user))
}

pub fn to_status(e: NnError) -> Status {
    use tonic::Code;
    let code = match &e {
        NnError::FileNotFound(_) => Code::NotFound,
        NnError::AlreadyExists(_) => Code::AlreadyExists,
        NnError::PermissionDenied(_) => Code::PermissionDenied,
        NnError::InvalidPath(_) | NnError::InvalidArgument(_) => Code::InvalidArgument,
        NnError::LimitExceeded(_) => Code::ResourceExhausted,
        NnError::Unavailable(_) => Code::Unavailable,
        NnError::ParentNotDirectory(_)
        | NnError::NotDirectory(_)
        | NnError::IsDirectory(_)
        | NnError::NotEmpty(_)
        | NnError::SafeMode(_)
        | NnError::LeaseConflict(_)
        | NnError::RecoveryInProgress(_) => Code::FailedPrecondition,
    };
    let mut status = Status::new(code, e.to_string());
    if let Ok(v) = e.exception_class().parse() {
        status.metadata_mut().insert(EXCEPTION_HEADER, v);
    }
    status
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ClientNamenode for ClientService {
    async fn server_info(&self, _req: Request<ServerInfoRequest>) -> Reply<ServerInfoResponse> {
        let (safe_mode, _) =
            self.fsn.safe_mode(&self.fsn.caller(self.fsn.superuser()), SafeModeAction::Get).map_err(to_status)?;
        Ok(Response::new(ServerInfoResponse {
            cluster_id: self.fsn.cluster_id(),
            version: tusk_common::VERSION.into(),
            superuser: self.fsn.superuser().into(),
            safe_mode,
            last_txid: self.fsn.last_txid(),
            start_time_ms: self.fsn.start_time_ms,
        }))
    }

    async fn mkdirs(&self, req: Request<MkdirsRequest>) -> Reply<MkdirsResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        self.fsn.mkdirs(&c, &r.path, r.permission, r.create_parent).await.map_err(to_status)?;
        Ok(Response::new(MkdirsResponse {}))
    }

    async fn create(&self, req: Request<CreateRequest>) -> Reply<CreateResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        let st = self
            .fsn
            .create(
                &c,
                &r.path,
                r.permission,
                r.overwrite,
                r.create_parent,
                r.replication,
                r.block_size,
                &r.client_name,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(CreateResponse { status: Some(st) }))
    }

    async fn complete(&self, req: Request<CompleteRequest>) -> Reply<CompleteResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        let completed = self.fsn.complete(&c, &r.path, &r.client_name, r.last).await.map_err(to_status)?;
        Ok(Response::new(CompleteResponse { completed }))
    }

    async fn get_file_info(&self, req: Request<GetFileInfoRequest>) -> Reply<GetFileInfoResponse> {
        let c = self.caller(&req)?;
        let status = self.fsn.file_info(&c, &req.get_ref().path).map_err(to_status)?;
        Ok(Response::new(GetFileInfoResponse { status }))
    }

    async fn get_listing(&self, req: Request<GetListingRequest>) -> Reply<GetListingResponse> {
        let c = self.caller(&req)?;
        let r = req.get_ref();
        let l = self.fsn.listing(&c, &r.path, &r.start_after).map_err(to_status)?;
        Ok(Response::new(GetListingResponse { dir: Some(l.dir), entries: l.entries, remaining_entries: l.remaining }))
    }

    async fn rename(&self, req: Request<RenameRequest>) -> Reply<RenameResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        self.fsn.rename(&c, &r.src, &r.dst).await.map_err(to_status)?;
        Ok(Response::new(RenameResponse {}))
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Reply<DeleteResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        let deleted = self.fsn.delete(&c, &r.path, r.recursive).await.map_err(to_status)?;
        Ok(Response::new(DeleteResponse { deleted }))
    }

    async fn set_permission(&self, req: Request<SetPermissionRequest>) -> Reply<SetPermissionResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        self.fsn.set_permission(&c, &r.path, r.permission).await.map_err(to_status)?;
        Ok(Response::new(SetPermissionResponse {}))
    }

    async fn set_owner(&self, req: Request<SetOwnerRequest>) -> Reply<SetOwnerResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        self.fsn.set_owner(&c, &r.path, &r.owner, &r.group).await.map_err(to_status)?;
        Ok(Response::new(SetOwnerResponse {}))
    }

    async fn set_times(&self, req: Request<SetTimesRequest>) -> Reply<SetTimesResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        self.fsn.set_times(&c, &r.path, r.modification_time_ms, r.access_time_ms).await.map_err(to_status)?;
        Ok(Response::new(SetTimesResponse {}))
    }

    async fn set_replication(&self, req: Request<SetReplicationRequest>) -> Reply<SetReplicationResponse> {
        let c = self.caller(&req)?;
        let r = req.into_inner();
        let is_file = self.fsn.set_replication(&c, &r.path, r.replication).await.map_err(to_status)?;
        Ok(Response::new(SetReplicationResponse { is_file }))
    }

    async fn get_content_summary(&self, req: Request<ContentSummaryRequest>) -> Reply<ContentSummaryResponse> {
        let c = self.caller(&req)?;
        let s = self.fsn.content_summary(&c, &req.get_ref().path).map_err(to_status)?;
        Ok(Response::new(ContentSummaryResponse {
            summary: Some(ContentSummary {
                length: s.length,
                file_count: s.files,
                directory_count: s.dirs,
                quota: -1,
                space_consumed: s.space_consumed,
                space_quota: -1,
            }),
        }))
    }

    async fn set_safe_mode(&self, req: Request<SetSafeModeRequest>) -> Reply<SetSafeModeResponse> {
        let c = self.caller(&req)?;
        let action = match tusk_proto::client::SafeModeAction::try_from(req.get_ref().action) {
            Ok(tusk_proto::client::SafeModeAction::SafeModeGet) => crate::namesystem::SafeModeAction::Get,
            Ok(tusk_proto::client::SafeModeAction::SafeModeEnter) => crate::namesystem::SafeModeAction::Enter,
            Ok(tusk_proto::client::SafeModeAction::SafeModeLeave) => crate::namesystem::SafeModeAction::Leave,
            _ => return Err(Status::invalid_argument("unknown safe mode action")),
        };
        let (in_safe_mode, status) = self.fsn.safe_mode(&c, action).map_err(to_status)?;
        Ok(Response::new(SetSafeModeResponse { in_safe_mode, status }))
    }

    async fn save_namespace(&self, req: Request<SaveNamespaceRequest>) -> Reply<SaveNamespaceResponse> {
        let c = self.caller(&req)?;
        let fsn = self.fsn.clone();
        let txid = tokio::task::spawn_blocking(move || fsn.save_namespace(&c))
            .await
            .map_err(|e| Status::internal(format!("saveNamespace task failed: {e}")))?
            .map_err(to_status)?;
        Ok(Response::new(SaveNamespaceResponse { txid }))
    }

    async fn fs_stats(&self, _req: Request<FsStatsRequest>) -> Reply<FsStatsResponse> {
        let counts = self.fsn.counts();
        let s = self.fsn.cluster_stats();
        let ck = self.fsn.checkpoint_info();
        Ok(Response::new(FsStatsResponse {
            files: counts.files,
            directories: counts.dirs,
            blocks: counts.blocks,
            last_txid: self.fsn.last_txid(),
            capacity: s.capacity,
            used: s.used,
            remaining: s.remaining,
            under_replicated_blocks: s.blocks.under_replicated,
            corrupt_blocks: s.blocks.corrupt,
            missing_blocks: s.blocks.missing,
            live_datanodes: s.live,
            dead_datanodes: s.dead,
            image_txid: ck.image.txid,
            last_checkpoint_ms: ck.image.written_ms,
            uncheckpointed_txns: ck.uncheckpointed_txns,
        }))
    }

    async fn add_block(&self, req: Request<AddBlockRequest>) -> Reply<AddBlockResponse> {
        let c = self.caller(&req)?;
        let ip = req.remote_addr().map(|a| a.ip().to_string());
        let r = req.into_inner();
        let b = self
            .fsn
            .add_block(&c, &r.path, &r.client_name, r.previous, &r.excluded_nodes, ip.as_deref())
            .await
            .map_err(to_status)?;
        Ok(Response::new(AddBlockResponse { block: Some(b) }))
    }

    async fn abandon_block(&self, req: Request<AbandonBlockRequest>) -> Reply<AbandonBlockResponse> {
        let _c = self.caller(&req)?;
        let r = req.into_inner();
        let block = r.block.ok_or_else(|| Status::invalid_argument("abandonBlock needs a block"))?;
        self.fsn.abandon_block(&r.path, &r.client_name, block).await.map_err(to_status)?;
        Ok(Response::new(AbandonBlockResponse {}))
    }

    async fn get_block_locations(&self, req: Request<GetBlockLocationsRequest>) -> Reply<GetBlockLocationsResponse> {
        let c = self.caller(&req)?;
        let ip = req.remote_addr().map(|a| a.ip().to_string());
        let r = req.get_ref();
        let (file_length, blocks, under_construction) =
            self.fsn.block_locations(&c, &r.path, r.offset, r.length, ip.as_deref()).map_err(to_status)?;
        Ok(Response::new(GetBlockLocationsResponse { file_length, blocks, under_construction }))
    }

    async fn report_bad_blocks(&self, req: Request<ReportBadBlocksRequest>) -> Reply<ReportBadBlocksResponse> {
        let _c = self.caller(&req)?;
        self.fsn.report_bad_blocks(&bad_blocks(req.get_ref()));
        Ok(Response::new(ReportBadBlocksResponse {}))
    }

    async fn datanode_report(&self, req: Request<DatanodeReportRequest>) -> Reply<DatanodeReportResponse> {
        let live = match DatanodeReportType::try_from(req.get_ref().r#type) {
            Ok(DatanodeReportType::DatanodeReportLive) => Some(true),
            Ok(DatanodeReportType::DatanodeReportDead) => Some(false),
            _ => None,
        };
        Ok(Response::new(DatanodeReportResponse { datanodes: self.fsn.datanode_report(live) }))
    }

    async fn shutdown_datanode(&self, req: Request<ShutdownDatanodeRequest>) -> Reply<ShutdownDatanodeResponse> {
        let c = self.caller(&req)?;
        self.fsn.shutdown_datanode(&c, &req.get_ref().address).map_err(to_status)?;
        Ok(Response::new(ShutdownDatanodeResponse {}))
    }

    async fn renew_lease(&self, req: Request<RenewLeaseRequest>) -> Reply<RenewLeaseResponse> {
        let _ = self.caller(&req)?;
        let holder = &req.get_ref().client_name;
        if holder.is_empty() {
            return Err(Status::invalid_argument("renewLease needs a client name"));
        }
        self.fsn.renew_lease(holder);
        Ok(Response::new(RenewLeaseResponse {}))
    }

    async fn refresh_nodes(&self, req: Request<RefreshNodesRequest>) -> Reply<RefreshNodesResponse> {
        let c = self.caller(&req)?;
        self.fsn.refresh_nodes(&c).map_err(to_status)?;
        Ok(Response::new(RefreshNodesResponse {}))
    }

    async fn append(&self, req: Request<AppendRequest>) -> Reply<AppendResponse> {
        let c = self.caller(&req)?;
        let r = req.get_ref();
        let (last_block, status) = self.fsn.append(&c, &r.path, &r.client_name).await.map_err(to_status)?;
        Ok(Response::new(AppendResponse { last_block, status: Some(status) }))
    }

    async fn update_block_for_pipeline(
        &self,
        req: Request<UpdateBlockForPipelineRequest>,
    ) -> Reply<UpdateBlockForPipelineResponse> {
        let _ = self.caller(&req)?;
        let r = req.get_ref();
        let block = r.block.ok_or_else(|| Status::invalid_argument("updateBlockForPipeline needs a block"))?;
        let lb = self.fsn.update_block_for_pipeline(&r.path, &r.client_name, block).await.map_err(to_status)?;
        Ok(Response::new(UpdateBlockForPipelineResponse { block: Some(lb) }))
    }

    async fn update_pipeline(&self, req: Request<UpdatePipelineRequest>) -> Reply<UpdatePipelineResponse> {
        let _ = self.caller(&req)?;
        let r = req.get_ref();
        let (Some(old), Some(new)) = (r.old_block, r.new_block) else {
            return Err(Status::invalid_argument("updatePipeline needs the old and the new block"));
        };
        self.fsn.update_pipeline(&r.path, &r.client_name, old, new, &r.new_nodes).await.map_err(to_status)?;
        Ok(Response::new(UpdatePipelineResponse {}))
    }

    async fn get_additional_datanode(
        &self,
        req: Request<GetAdditionalDatanodeRequest>,
    ) -> Reply<GetAdditionalDatanodeResponse> {
        let _ = self.caller(&req)?;
        let ip = req.remote_addr().map(|a| a.ip().to_string());
        let r = req.get_ref();
        let block = r.block.ok_or_else(|| Status::invalid_argument("getAdditionalDatanode needs a block"))?;
        let dn = self
            .fsn
            .additional_datanode(&r.path, &r.client_name, block, &r.existing, &r.excluded, ip.as_deref())
            .map_err(to_status)?;
        Ok(Response::new(GetAdditionalDatanodeResponse { datanode: Some(dn) }))
    }

    async fn fsync(&self, req: Request<FsyncRequest>) -> Reply<FsyncResponse> {
        let _ = self.caller(&req)?;
        let r = req.get_ref();
        self.fsn.fsync(&r.path, &r.client_name, r.last_block_length).map_err(to_status)?;
        Ok(Response::new(FsyncResponse {}))
    }

    async fn recover_lease(&self, req: Request<RecoverLeaseRequest>) -> Reply<RecoverLeaseResponse> {
        let c = self.caller(&req)?;
        let r = req.get_ref();
        let closed = self.fsn.recover_lease(&c, &r.path, &r.client_name).await.map_err(to_status)?;
        Ok(Response::new(RecoverLeaseResponse { closed }))
    }
}

/// (block id, datanode uuids) pairs out of a bad-block report.
pub fn bad_blocks(r: &ReportBadBlocksRequest) -> Vec<(u64, Vec<String>)> {
    r.blocks
        .iter()
        .filter_map(|lb| {
            let b = lb.block.as_ref()?;
            Some((b.block_id, lb.locations.iter().map(|d| d.datanode_uuid.clone()).collect()))
        })
        .collect()
}
