//! The client library: every Tusk client (the fs shell now; FUSE and the job client later)
//! talks to the namenode through [`Client`]. It carries the caller's identity, bounds every
//! call in time, and turns gRPC statuses back into typed [`ClientError`]s.
//!
//! The data path: [`Client::create`] returns a [`FileWriter`] that asks the namenode for
//! blocks (AddBlock) and streams each through its datanode pipeline over the data transfer
//! protocol (`pipeline`); [`Client::open`] returns a [`FileReader`] that reads block ranges
//! from replicas, verifying every chunk's CRC32C and failing over to the next replica.

mod error;
mod input;
mod lease;
mod nn;
mod output;
mod pipeline;
mod short_circuit;
#[cfg(test)]
mod testutil;

pub use error::ClientError;
pub use input::{FileReader, ReadStatistics};
pub use output::FileWriter;
pub use tusk_proto::client::{
    AdminState, ContentSummary, DatanodeInfo, DatanodeReportType, ExtendedBlock, FileStatus, FileType,
    GetBlockLocationsResponse, LocatedBlock, SafeModeAction,
};

use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::Request;
use tusk_common::config::ClientConfig;
use tusk_proto::channel::{ConnectError, RpcChannel};
use tusk_proto::client::client_namenode_client::ClientNamenodeClient;
use tusk_proto::client::*;

/// Request metadata naming the caller (HDFS "simple" authentication).
pub const USER_HEADER: &str = "tusk-user";

#[derive(Clone)]
pub struct Client {
    rpc: ClientNamenodeClient<RpcChannel>,
    addr: String,
    user: String,
    client_name: String,
    umask: u32,
    /// Idle short-circuit connections, shared by every reader of this client and its clones;
    /// `None` when short-circuit reads are off (client.read_shortcircuit).
    short_circuit: Option<std::sync::Arc<short_circuit::PeerCache>>,
    lease: std::sync::Arc<lease::LeaseRenewer>,
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// One page of a directory listing.
pub struct ListingPage {
    pub dir: FileStatus,
    pub entries: Vec<FileStatus>,
    pub remaining: u64,
}

impl Client {
    /// Connects to the namenode at `addr` (`host:port`) as `user`. Fails within the
    /// configured connect timeout when nothing answers.
    pub async fn connect(addr: &str, user: &str, conf: &ClientConfig) -> Result<Client> {
        if !tusk_common::user::valid_principal(user) {
            return Err(ClientError::InvalidArgument(format!("invalid user name {user:?}")));
        }
        let connect_timeout = Duration::from_millis(conf.connect_timeout_ms);
        let channel = match RpcChannel::connect(addr, connect_timeout, Duration::from_millis(conf.rpc_timeout_ms)).await
        {
            Ok(c) => c,
            Err(ConnectError::InvalidAddress(why)) => {
                return Err(ClientError::InvalidArgument(format!("invalid namenode address {addr:?}: {why}")))
            }
            Err(ConnectError::Failed(why)) => {
                return Err(ClientError::Connect(format!("Call to {addr} failed on connection exception: {why}")))
            }
        };
        let client_name = format!("TUSK_CLIENT_{}_{}", std::process::id(), rand::random::<u32>());
        Ok(Client {
            rpc: ClientNamenodeClient::with_origin(channel.clone(), channel.origin())
                .max_decoding_message_size(64 << 20),
            addr: addr.to_owned(),
            user: user.to_owned(),
            client_name,
            umask: conf.umask,
            short_circuit: conf.read_shortcircuit.then(Default::default),
            lease: lease::LeaseRenewer::new(Duration::from_millis(conf.lease_renew_interval_ms.max(10))),
        })
    }

    pub fn user(&self) -> &str {
        &self.user
    }
    pub fn namenode_addr(&self) -> &str {
        &self.addr
    }
    /// `/user/<name>`, where relative paths resolve.
    pub fn home_dir(&self) -> String {
        format!("/user/{}", self.user)
    }
    pub fn umask(&self) -> u32 {
        self.umask
    }
    /// The name this client holds leases under.
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Ok(v) = MetadataValue::try_from(self.user.as_str()) {
            r.metadata_mut().insert(USER_HEADER, v);
        }
        r
    }

    fn err(&self, s: tonic::Status) -> ClientError {
        ClientError::from_status(&self.addr, s)
    }

    pub async fn server_info(&self) -> Result<ServerInfoResponse> {
        let r = self.rpc.clone().server_info(self.req(ServerInfoRequest {})).await.map_err(|s| self.err(s))?;
        Ok(r.into_inner())
    }

    /// `None` when the path does not exist.
    pub async fn file_info(&self, path: &str) -> Result<Option<FileStatus>> {
        let r = self
            .rpc
            .clone()
            .get_file_info(self.req(GetFileInfoRequest { path: path.into() }))
            .await
            .map_err(|s| self.err(s))?;
        Ok(r.into_inner().status)
    }

    pub async fn list_page(&self, path: &str, start_after: &str) -> Result<ListingPage> {
        let r = self
            .rpc
            .clone()
            .get_listing(self.req(GetListingRequest { path: path.into(), start_after: start_after.into() }))
            .await
            .map_err(|s| self.err(s))?
            .into_inner();
        let dir = r.dir.ok_or_else(|| ClientError::Protocol("listing without the listed path".into()))?;
        Ok(ListingPage { dir, entries: r.entries, remaining: r.remaining_entries })
    }

    /// The whole listing of `path` (a file lists as itself), fetched page by page.
    pub async fn list_all(&self, path: &str) -> Result<(FileStatus, Vec<FileStatus>)> {
        let first = self.list_page(path, "").await?;
        let dir = first.dir;
        let mut entries = first.entries;
        let mut remaining = first.remaining;
        while remaining > 0 {
            let after = match entries.last() {
                Some(e) => e.name.clone(),
                None => break,
            };
            let page = self.list_page(path, &after).await?;
            if page.entries.is_empty() {
                break;
            }
            remaining = page.remaining;
            entries.extend(page.entries);
        }
        Ok((dir, entries))
    }

    /// Creates a directory with `perm` less the umask.
    pub async fn mkdirs(&self, path: &str, perm: u32, create_parent: bool) -> Result<()> {
        let permission = perm & !self.umask;
        self.rpc
            .clone()
            .mkdirs(self.req(MkdirsRequest { path: path.into(), permission, create_parent }))
            .await
            .map_err(|s| self.err(s))?;
        Ok(())
    }

    /// Creates an empty file and closes it (what `-touchz` does until block writes exist).
    pub async fn create_empty(&self, path: &str, overwrite: bool) -> Result<FileStatus> {
        let req = CreateRequest {
            path: path.into(),
            permission: 0o666 & !self.umask,
            overwrite,
            create_parent: false,
            replication: 0,
            block_size: 0,
            client_name: self.client_name.clone(),
        };
        let st = self.rpc.clone().create(self.req(req)).await.map_err(|s| self.err(s))?.into_inner().status;
        let req = CompleteRequest { path: path.into(), client_name: self.client_name.clone(), last: None };
        self.rpc.clone().complete(self.req(req)).await.map_err(|s| self.err(s))?;
        st.ok_or_else(|| ClientError::Protocol("create answered without a status".into()))
    }

    pub async fn rename(&self, src: &str, dst: &str) -> Result<()> {
        self.rpc
            .clone()
            .rename(self.req(RenameRequest { src: src.into(), dst: dst.into() }))
            .await
            .map_err(|s| self.err(s))?;
        Ok(())
    }

    /// Returns false when the path did not exist.
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<bool> {
        let r = self
            .rpc
            .clone()
            .delete(self.req(DeleteRequest { path: path.into(), recursive }))
            .await
            .map_err(|s| self.err(s))?;
        Ok(r.into_inner().deleted)
    }

    pub async fn set_permission(&self, path: &str, permission: u32) -> Result<()> {
        self.rpc
            .clone()
            .set_permission(self.req(SetPermissionRequest { path: path.into(), permission }))
            .await
            .map_err(|s| self.err(s))?;
        Ok(())
    }

    pub async fn set_owner(&self, path: &str, owner: Option<&str>, group: Option<&str>) -> Result<()> {
        let req =
            SetOwnerRequest { path: path.into(), owner: owner.unwrap_or("").into(), group: group.unwrap_or("").into() };
        self.rpc.clone().set_owner(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    pub async fn set_times(&self, path: &str, mtime_ms: i64, atime_ms: i64) -> Result<()> {
        let req = SetTimesRequest { path: path.into(), modification_time_ms: mtime_ms, access_time_ms: atime_ms };
        self.rpc.clone().set_times(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    pub async fn set_replication(&self, path: &str, replication: u32) -> Result<bool> {
        let r = self
            .rpc
            .clone()
            .set_replication(self.req(SetReplicationRequest { path: path.into(), replication }))
            .await
            .map_err(|s| self.err(s))?;
        Ok(r.into_inner().is_file)
    }

    pub async fn content_summary(&self, path: &str) -> Result<ContentSummary> {
        let r = self
            .rpc
            .clone()
            .get_content_summary(self.req(ContentSummaryRequest { path: path.into() }))
            .await
            .map_err(|s| self.err(s))?;
        r.into_inner().summary.ok_or_else(|| ClientError::Protocol("content summary missing".into()))
    }

    /// get / enter / leave: returns (on, explanation).
    pub async fn safe_mode(&self, action: SafeModeAction) -> Result<(bool, String)> {
        let r = self
            .rpc
            .clone()
            .set_safe_mode(self.req(SetSafeModeRequest { action: action as i32 }))
            .await
            .map_err(|s| self.err(s))?
            .into_inner();
        Ok((r.in_safe_mode, r.status))
    }

    pub async fn save_namespace(&self) -> Result<u64> {
        let r = self.rpc.clone().save_namespace(self.req(SaveNamespaceRequest {})).await.map_err(|s| self.err(s))?;
        Ok(r.into_inner().txid)
    }

    pub async fn fs_stats(&self) -> Result<FsStatsResponse> {
        Ok(self.rpc.clone().fs_stats(self.req(FsStatsRequest {})).await.map_err(|s| self.err(s))?.into_inner())
    }

    /// Creates `path` (replication/block_size 0 = the namenode's default) and returns a writer.
    pub async fn create(&self, path: &str, overwrite: bool, replication: u32, block_size: u64) -> Result<FileWriter> {
        let req = CreateRequest {
            path: path.into(),
            permission: 0o666 & !self.umask,
            overwrite,
            create_parent: false,
            replication,
            block_size,
            client_name: self.client_name.clone(),
        };
        let st = self.rpc.clone().create(self.req(req)).await.map_err(|s| self.err(s))?.into_inner().status;
        let st = st.ok_or_else(|| ClientError::Protocol("create answered without a status".into()))?;
        let mut w = FileWriter::new(nn::Namenode::Rpc(self.clone()), path, st.block_size)?;
        w.lease = Some(self.lease.writer_opened(self));
        Ok(w)
    }

    pub async fn open(&self, path: &str) -> Result<FileReader> {
        FileReader::open(nn::Namenode::Rpc(self.clone()), path).await
    }

    pub async fn get_block_locations(&self, path: &str, offset: u64, length: u64) -> Result<GetBlockLocationsResponse> {
        let req = GetBlockLocationsRequest { path: path.into(), offset, length };
        Ok(self.rpc.clone().get_block_locations(self.req(req)).await.map_err(|s| self.err(s))?.into_inner())
    }

    pub async fn datanode_report(&self, kind: DatanodeReportType) -> Result<Vec<DatanodeInfo>> {
        let req = DatanodeReportRequest { r#type: kind as i32 };
        Ok(self.rpc.clone().datanode_report(self.req(req)).await.map_err(|s| self.err(s))?.into_inner().datanodes)
    }

    pub async fn shutdown_datanode(&self, address: &str) -> Result<()> {
        let req = ShutdownDatanodeRequest { address: address.into() };
        self.rpc.clone().shutdown_datanode(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    /// Tells the namenode this client, and so its files open for writing, is alive.
    pub async fn renew_lease(&self) -> Result<()> {
        let req = RenewLeaseRequest { client_name: self.client_name.clone() };
        self.rpc.clone().renew_lease(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    /// `dfsadmin -refreshNodes`: the namenode re-reads its exclude file.
    pub async fn refresh_nodes(&self) -> Result<()> {
        self.rpc.clone().refresh_nodes(self.req(RefreshNodesRequest {})).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    /// Reports replicas found corrupt: each block with the datanodes holding the bad copies.
    pub async fn report_bad_blocks(&self, blocks: Vec<LocatedBlock>) -> Result<()> {
        let req = ReportBadBlocksRequest { blocks };
        self.rpc.clone().report_bad_blocks(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    pub(crate) async fn add_block(
        &self,
        path: &str,
        previous: Option<ExtendedBlock>,
        excluded: &[String],
    ) -> Result<LocatedBlock> {
        let req = AddBlockRequest {
            path: path.into(),
            client_name: self.client_name.clone(),
            previous,
            excluded_nodes: excluded.to_vec(),
        };
        let r = self.rpc.clone().add_block(self.req(req)).await.map_err(|s| self.err(s))?.into_inner();
        r.block.ok_or_else(|| ClientError::Protocol("add block answered without a block".into()))
    }

    pub(crate) async fn abandon_block(&self, path: &str, block: ExtendedBlock) -> Result<()> {
        let req = AbandonBlockRequest { path: path.into(), client_name: self.client_name.clone(), block: Some(block) };
        self.rpc.clone().abandon_block(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    /// True when the file is closed; false while its last block has no replica yet.
    pub(crate) async fn complete(&self, path: &str, last: Option<ExtendedBlock>) -> Result<bool> {
        let req = CompleteRequest { path: path.into(), client_name: self.client_name.clone(), last };
        Ok(self.rpc.clone().complete(self.req(req)).await.map_err(|s| self.err(s))?.into_inner().completed)
    }

    /// Opens `path` for appending (HDFS's append): new bytes go after the current end,
    /// into the file's partly filled last block first.
    pub async fn append(&self, path: &str) -> Result<FileWriter> {
        let req = AppendRequest { path: path.into(), client_name: self.client_name.clone() };
        let r = self.rpc.clone().append(self.req(req)).await.map_err(|s| self.err(s))?.into_inner();
        let st = r.status.ok_or_else(|| ClientError::Protocol("append answered without a status".into()))?;
        let lease = self.lease.writer_opened(self);
        // The partial last chunk of the last block is sent again with the first new bytes.
        let mut tail = Vec::new();
        if let Some(b) = r.last_block.as_ref().and_then(|lb| lb.block) {
            let r = b.num_bytes % tusk_proto::data_transfer::BYTES_PER_CHECKSUM as u64;
            if b.num_bytes < st.block_size && r != 0 {
                let reader = FileReader::open(nn::Namenode::Rpc(self.clone()), path).await?;
                tail.resize(r as usize, 0);
                let mut got = 0;
                while got < tail.len() {
                    let n = reader.pread(st.length - r + got as u64, &mut tail[got..]).await?;
                    if n == 0 {
                        return Err(ClientError::Io(format!("cannot read the last {r} bytes of {path} to append")));
                    }
                    got += n;
                }
            }
        }
        let nn = nn::Namenode::Rpc(self.clone());
        let mut w = FileWriter::for_append(nn, path, st.block_size, st.length, r.last_block, tail).await?;
        w.lease = Some(lease);
        Ok(w)
    }

    /// `recoverLease`: asks the namenode to recover the lease of `path` now. `true` when the
    /// file is closed.
    pub async fn recover_lease(&self, path: &str) -> Result<bool> {
        let req = RecoverLeaseRequest { path: path.into(), client_name: self.client_name.clone() };
        Ok(self.rpc.clone().recover_lease(self.req(req)).await.map_err(|s| self.err(s))?.into_inner().closed)
    }

    pub(crate) async fn update_block_for_pipeline(&self, path: &str, block: ExtendedBlock) -> Result<ExtendedBlock> {
        let req = UpdateBlockForPipelineRequest {
            block: Some(block),
            client_name: self.client_name.clone(),
            path: path.into(),
        };
        let r = self.rpc.clone().update_block_for_pipeline(self.req(req)).await.map_err(|s| self.err(s))?;
        r.into_inner()
            .block
            .and_then(|lb| lb.block)
            .ok_or_else(|| ClientError::Protocol("updateBlockForPipeline answered without a block".into()))
    }

    pub(crate) async fn update_pipeline(
        &self,
        path: &str,
        old: ExtendedBlock,
        new: ExtendedBlock,
        nodes: &[String],
    ) -> Result<()> {
        let req = UpdatePipelineRequest {
            client_name: self.client_name.clone(),
            old_block: Some(old),
            new_block: Some(new),
            new_nodes: nodes.to_vec(),
            path: path.into(),
        };
        self.rpc.clone().update_pipeline(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }

    pub(crate) async fn additional_datanode(
        &self,
        path: &str,
        block: ExtendedBlock,
        existing: &[String],
        excluded: &[String],
    ) -> Result<DatanodeInfo> {
        let req = GetAdditionalDatanodeRequest {
            path: path.into(),
            block: Some(block),
            existing: existing.to_vec(),
            excluded: excluded.to_vec(),
            client_name: self.client_name.clone(),
        };
        let r = self.rpc.clone().get_additional_datanode(self.req(req)).await.map_err(|s| self.err(s))?;
        r.into_inner()
            .datanode
            .ok_or_else(|| ClientError::Protocol("getAdditionalDatanode answered without a datanode".into()))
    }

    pub(crate) async fn fsync(&self, path: &str, last_block_length: u64) -> Result<()> {
        let req = FsyncRequest { path: path.into(), client_name: self.client_name.clone(), last_block_length };
        self.rpc.clone().fsync(self.req(req)).await.map_err(|s| self.err(s))?;
        Ok(())
    }
}
