//! The namenode calls the data path makes, behind one small type so the writer and reader can
//! be driven by an in-process fake in tests (no gRPC server needed).

use crate::{Client, Result};
use tusk_proto::client::{ExtendedBlock, GetBlockLocationsResponse, LocatedBlock};

// Only the test build has a second variant; boxing the real client to please the lint
// would cost every build an allocation for nothing.
#[cfg_attr(test, allow(clippy::large_enum_variant))]
#[derive(Clone)]
pub(crate) enum Namenode {
    Rpc(Client),
    #[cfg(test)]
    Fake(std::sync::Arc<crate::testutil::FakeNamenode>),
}

impl Namenode {
    pub(crate) fn client_name(&self) -> String {
        match self {
            Namenode::Rpc(c) => c.client_name().to_owned(),
            #[cfg(test)]
            Namenode::Fake(_) => "TUSK_CLIENT_test".to_owned(),
        }
    }

    /// The client's kept short-circuit connections when readers try short-circuit local
    /// reads (client.read_shortcircuit); `None` when they do not.
    pub(crate) fn short_circuit_peers(&self) -> Option<std::sync::Arc<crate::short_circuit::PeerCache>> {
        match self {
            Namenode::Rpc(c) => c.short_circuit.clone(),
            #[cfg(test)]
            Namenode::Fake(_) => None,
        }
    }

    pub(crate) async fn add_block(
        &self,
        path: &str,
        previous: Option<ExtendedBlock>,
        excluded: &[String],
    ) -> Result<LocatedBlock> {
        match self {
            Namenode::Rpc(c) => c.add_block(path, previous, excluded).await,
            #[cfg(test)]
            Namenode::Fake(f) => f.add_block(previous, excluded),
        }
    }

    pub(crate) async fn abandon_block(&self, path: &str, block: ExtendedBlock) -> Result<()> {
        match self {
            Namenode::Rpc(c) => c.abandon_block(path, block).await,
            #[cfg(test)]
            Namenode::Fake(f) => {
                f.abandoned.lock().unwrap().push(block);
                Ok(())
            }
        }
    }

    pub(crate) async fn complete(&self, path: &str, last: Option<ExtendedBlock>) -> Result<bool> {
        match self {
            Namenode::Rpc(c) => c.complete(path, last).await,
            #[cfg(test)]
            Namenode::Fake(f) => {
                *f.completed.lock().unwrap() = Some(last);
                Ok(true)
            }
        }
    }

    pub(crate) async fn locations(&self, path: &str) -> Result<GetBlockLocationsResponse> {
        match self {
            Namenode::Rpc(c) => c.get_block_locations(path, 0, u64::MAX).await,
            #[cfg(test)]
            Namenode::Fake(f) => Ok(f.locations.lock().unwrap().clone()),
        }
    }

    pub(crate) async fn report_bad_blocks(&self, blocks: Vec<LocatedBlock>) -> Result<()> {
        match self {
            Namenode::Rpc(c) => c.report_bad_blocks(blocks).await,
            #[cfg(test)]
            Namenode::Fake(f) => {
                f.bad_reports.lock().unwrap().extend(blocks);
                Ok(())
            }
        }
    }

    /// A new generation stamp for the last block (pipeline recovery, append).
    pub(crate) async fn update_block_for_pipeline(&self, path: &str, block: ExtendedBlock) -> Result<ExtendedBlock> {
        match self {
            Namenode::Rpc(c) => c.update_block_for_pipeline(path, block).await,
            #[cfg(test)]
            Namenode::Fake(f) => {
                let mut gs = f.next_genstamp.lock().unwrap();
                *gs = (*gs).max(block.generation_stamp) + 1;
                Ok(ExtendedBlock { generation_stamp: *gs, ..block })
            }
        }
    }

    pub(crate) async fn update_pipeline(
        &self,
        path: &str,
        old: ExtendedBlock,
        new: ExtendedBlock,
        nodes: &[String],
    ) -> Result<()> {
        match self {
            Namenode::Rpc(c) => c.update_pipeline(path, old, new, nodes).await,
            #[cfg(test)]
            Namenode::Fake(f) => {
                f.pipelines.lock().unwrap().push((old, new, nodes.to_vec()));
                Ok(())
            }
        }
    }

    /// A datanode to join a pipeline that lost one.
    pub(crate) async fn additional_datanode(
        &self,
        path: &str,
        block: ExtendedBlock,
        existing: &[String],
        excluded: &[String],
    ) -> Result<tusk_proto::client::DatanodeInfo> {
        match self {
            Namenode::Rpc(c) => c.additional_datanode(path, block, existing, excluded).await,
            #[cfg(test)]
            Namenode::Fake(f) => f
                .datanodes
                .iter()
                .find(|d| !existing.contains(&d.datanode_uuid) && !excluded.contains(&d.datanode_uuid))
                .cloned()
                .ok_or_else(|| crate::ClientError::Io("no datanode left".into())),
        }
    }

    pub(crate) async fn fsync(&self, path: &str, last_block_length: u64) -> Result<()> {
        match self {
            Namenode::Rpc(c) => c.fsync(path, last_block_length).await,
            #[cfg(test)]
            Namenode::Fake(_) => Ok(()),
        }
    }
}
