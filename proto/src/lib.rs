//! Wire and storage schemas of Tusk. `client` is the client<->namenode gRPC service;
//! `storage` holds the records the namenode persists (edit-log ops and fsimage entries).
//! Everything here is generated from `proto/tusk/*.proto` at build time.

/// Client <-> namenode service and messages.
pub mod client {
    tonic::include_proto!("tusk.client");
}

/// Datanode <-> namenode service and messages.
pub mod datanode {
    tonic::include_proto!("tusk.datanode");
}

/// Headers of the data transfer protocol; framing in [`data_transfer`].
pub mod transfer {
    tonic::include_proto!("tusk.transfer");
}

pub mod block_meta;
pub mod channel;
pub mod data_transfer;
pub mod heartbeat;
pub mod serve;
pub mod short_circuit;

/// Checkpointer <-> namenode service (roll, image and edit download, image upload).
pub mod checkpoint {
    tonic::include_proto!("tusk.checkpoint");
}

/// Edit-log and fsimage records.
pub mod storage {
    tonic::include_proto!("tusk.storage");
}

pub use prost::Message;

/// Job client and tasktrackers <-> jobtracker; reduces <-> tasktrackers (shuffle).
pub mod mapreduce {
    tonic::include_proto!("tusk.mapreduce");
}
