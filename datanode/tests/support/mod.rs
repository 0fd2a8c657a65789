//! Helpers shared by the datanode's integration tests: a config for an in-process datanode,
//! and a minimal data transfer client built on the framing functions.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use tokio::net::{TcpListener, TcpStream};
use tusk_common::config::DatanodeConfig;
use tusk_datanode::{start, DatanodeHandle};
use tusk_proto::client::{DatanodeInfo, ExtendedBlock};
use tusk_proto::data_transfer::{self, Ack, Opcode, PacketHeader, FLAG_LAST, MAX_PACKET_DATA};
use tusk_proto::transfer::{BlockOpResponse, OpStatus, ReadBlockRequest, WriteBlockRequest, WriteStage};

pub fn conf(data_dir: &Path, namenode: &str) -> DatanodeConfig {
    DatanodeConfig {
        namenode: namenode.to_string(),
        data_dirs: vec![data_dir.to_owned()],
        xfer_address: "127.0.0.1:0".into(),
        advertise_host: "127.0.0.1".into(),
        heartbeat_interval_ms: 100,
        block_report_interval_ms: 3_600_000,
        sync_on_close: true,
        max_transfers: 64,
        ..Default::default()
    }
}

pub async fn start_dn(data_dir: &Path, namenode: &str) -> DatanodeHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start(conf(data_dir, namenode), listener).await.unwrap()
}

pub fn target(addr: SocketAddr) -> DatanodeInfo {
    DatanodeInfo { ip_addr: addr.ip().to_string(), xfer_port: u32::from(addr.port()), ..Default::default() }
}

pub fn test_data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Writes a whole block through a pipeline starting at `first`. `Err` is the setup answer
/// when it was not OP_SUCCESS; `Ok` holds every ack in order.
pub async fn write_block(
    first: SocketAddr,
    block_id: u64,
    genstamp: u64,
    targets: Vec<DatanodeInfo>,
    data: &[u8],
) -> Result<Vec<Ack>, BlockOpResponse> {
    let mut s = TcpStream::connect(first).await.unwrap();
    let req = WriteBlockRequest {
        block: Some(ExtendedBlock { block_id, generation_stamp: genstamp, num_bytes: 0 }),
        targets,
        client_name: "test-client".into(),
        stage: WriteStage::PipelineSetupCreate as i32,
        ..Default::default()
    };
    data_transfer::write_op(&mut s, Opcode::WriteBlock, &req).await.unwrap();
    let resp: BlockOpResponse = data_transfer::read_msg(&mut s).await.unwrap();
    if resp.status != OpStatus::OpSuccess as i32 {
        return Err(resp);
    }
    let (mut r, mut w) = s.into_split();
    let packets = data.len().div_ceil(MAX_PACKET_DATA) as u64 + 1;
    let acks = tokio::spawn(async move {
        let mut acks = Vec::new();
        for _ in 0..packets {
            match data_transfer::read_ack(&mut r).await {
                Ok(a) => acks.push(a),
                Err(_) => break,
            }
        }
        acks
    });
    let mut seqno = 0;
    for (i, chunk) in data.chunks(MAX_PACKET_DATA).enumerate() {
        let mut sums = Vec::new();
        data_transfer::chunk_checksums(chunk, &mut sums);
        let h = PacketHeader {
            data_len: chunk.len() as u32,
            offset_in_block: (i * MAX_PACKET_DATA) as u64,
            seqno,
            flags: 0,
        };
        data_transfer::write_packet(&mut w, &h, &sums, chunk).await.unwrap();
        seqno += 1;
    }
    let last = PacketHeader { data_len: 0, offset_in_block: data.len() as u64, seqno, flags: FLAG_LAST };
    data_transfer::write_packet(&mut w, &last, &[], &[]).await.unwrap();
    Ok(acks.await.unwrap())
}

/// One packet of a read.
pub struct Packet {
    pub header: PacketHeader,
    pub checksums: Vec<u8>,
    pub data: Vec<u8>,
}

/// Sends READ_BLOCK; returns the answer and, on success, every packet up to the LAST one.
pub async fn read_block(
    addr: SocketAddr,
    block_id: u64,
    genstamp: u64,
    offset: u64,
    length: u64,
) -> (BlockOpResponse, Vec<Packet>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = ReadBlockRequest {
        block: Some(ExtendedBlock { block_id, generation_stamp: genstamp, num_bytes: 0 }),
        offset,
        length,
        client_name: "test-client".into(),
    };
    data_transfer::write_op(&mut s, Opcode::ReadBlock, &req).await.unwrap();
    let resp: BlockOpResponse = data_transfer::read_msg(&mut s).await.unwrap();
    let mut packets = Vec::new();
    if resp.status == OpStatus::OpSuccess as i32 {
        loop {
            let (mut checksums, mut data) = (Vec::new(), Vec::new());
            let header = data_transfer::read_packet(&mut s, &mut checksums, &mut data).await.unwrap();
            let last = header.is_last();
            packets.push(Packet { header, checksums, data });
            if last {
                break;
            }
        }
    }
    (resp, packets)
}
