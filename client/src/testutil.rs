//! In-crate test doubles: a fake namenode (the few calls the data path makes) and a tiny fake
//! datanode speaking the data transfer framing on a real socket, plus the tests that drive
//! the writer and reader through them.

use crate::nn::Namenode;
use crate::{ClientError, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tusk_proto::client::{DatanodeInfo, ExtendedBlock, GetBlockLocationsResponse, LocatedBlock};
use tusk_proto::data_transfer::*;
use tusk_proto::transfer::{BlockOpResponse, OpStatus, ReadBlockRequest, WriteBlockRequest};
use tusk_proto::Message;

/// Hands out 1-node pipelines from `datanodes` (skipping excluded ones) and records calls.
#[derive(Default)]
pub(crate) struct FakeNamenode {
    pub datanodes: Vec<DatanodeInfo>,
    pub next_block_id: Mutex<u64>,
    /// (previous, excluded) of every AddBlock.
    pub added: Mutex<Vec<(Option<ExtendedBlock>, Vec<String>)>>,
    pub abandoned: Mutex<Vec<ExtendedBlock>>,
    pub completed: Mutex<Option<Option<ExtendedBlock>>>,
    pub locations: Mutex<GetBlockLocationsResponse>,
    pub bad_reports: Mutex<Vec<LocatedBlock>>,
    pub next_genstamp: Mutex<u64>,
    /// (old, new, nodes) of every UpdatePipeline.
    pub pipelines: Mutex<Vec<(ExtendedBlock, ExtendedBlock, Vec<String>)>>,
}

impl FakeNamenode {
    pub(crate) fn add_block(&self, previous: Option<ExtendedBlock>, excluded: &[String]) -> Result<LocatedBlock> {
        self.added.lock().unwrap().push((previous, excluded.to_vec()));
        let mut id = self.next_block_id.lock().unwrap();
        *id += 1;
        let pipeline: Vec<_> =
            self.datanodes.iter().filter(|d| !excluded.contains(&d.datanode_uuid)).take(1).cloned().collect();
        if pipeline.is_empty() {
            return Err(ClientError::Io("no datanode left".into()));
        }
        Ok(LocatedBlock {
            block: Some(ExtendedBlock { block_id: *id, generation_stamp: 1000, num_bytes: 0 }),
            locations: pipeline,
            ..Default::default()
        })
    }
}

/// A datanode keeping blocks in memory. Writes are verified and acked per packet.
pub(crate) struct FakeDatanode {
    pub info: DatanodeInfo,
    pub blocks: Arc<Mutex<HashMap<u64, Vec<u8>>>>,
    pub refuse_writes: Arc<AtomicBool>,
    /// Flip a bit of every packet served from this index on, in each read (after computing
    /// its checksums); `usize::MAX` = never.
    pub corrupt_from_packet: Arc<AtomicUsize>,
    pub ack_status: Arc<AtomicU8>,
    /// ReadBlock operations served.
    pub reads: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDatanode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDatanode {
    pub(crate) async fn start(uuid: &str) -> FakeDatanode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let info = DatanodeInfo {
            datanode_uuid: uuid.into(),
            ip_addr: "127.0.0.1".into(),
            hostname: "localhost".into(),
            xfer_port: port as u32,
            ..Default::default()
        };
        let blocks = Arc::new(Mutex::new(HashMap::new()));
        let refuse_writes = Arc::new(AtomicBool::new(false));
        let corrupt_from_packet = Arc::new(AtomicUsize::new(usize::MAX));
        let ack_status = Arc::new(AtomicU8::new(ACK_SUCCESS));
        let reads = Arc::new(AtomicUsize::new(0));
        let (b, r, c, a, n) =
            (blocks.clone(), refuse_writes.clone(), corrupt_from_packet.clone(), ack_status.clone(), reads.clone());
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (b, r, c, a, n) = (b.clone(), r.clone(), c.clone(), a.clone(), n.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, b, r, c, a, n).await;
                });
            }
        });
        FakeDatanode { info, blocks, refuse_writes, corrupt_from_packet, ack_status, reads, task }
    }
}

async fn serve(
    sock: TcpStream,
    blocks: Arc<Mutex<HashMap<u64, Vec<u8>>>>,
    refuse: Arc<AtomicBool>,
    corrupt_from: Arc<AtomicUsize>,
    ack_status: Arc<AtomicU8>,
    reads: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut sock = BufReader::new(sock);
    let (op, body) = read_op(&mut sock).await?;
    match op {
        Opcode::WriteBlock => {
            let req = WriteBlockRequest::decode(&body[..]).unwrap();
            let id = req.block.unwrap().block_id;
            if refuse.load(Ordering::SeqCst) {
                let resp = BlockOpResponse {
                    status: OpStatus::OpError as i32,
                    message: "refused".into(),
                    ..Default::default()
                };
                return write_msg(sock.get_mut(), &resp).await;
            }
            write_msg(sock.get_mut(), &BlockOpResponse { status: OpStatus::OpSuccess as i32, ..Default::default() })
                .await?;
            let (mut sums, mut data, mut block) = (Vec::new(), Vec::new(), Vec::new());
            loop {
                let h = read_packet(&mut sock, &mut sums, &mut data).await?;
                assert_eq!(h.offset_in_block, block.len() as u64);
                let mut status = ack_status.load(Ordering::SeqCst);
                if verify_checksums(&data, &sums).is_err() {
                    status = ACK_ERROR_CHECKSUM;
                }
                block.extend_from_slice(&data);
                write_ack(sock.get_mut(), &Ack { seqno: h.seqno, statuses: vec![status] }).await?;
                if h.is_last() {
                    break;
                }
            }
            blocks.lock().unwrap().insert(id, block);
            Ok(())
        }
        Opcode::ReadBlock => {
            reads.fetch_add(1, Ordering::SeqCst);
            let req = ReadBlockRequest::decode(&body[..]).unwrap();
            let data = blocks.lock().unwrap().get(&req.block.unwrap().block_id).cloned().unwrap_or_default();
            let first = req.offset / 512 * 512;
            let end = (req.offset + req.length).div_ceil(512).saturating_mul(512).min(data.len() as u64);
            let resp = BlockOpResponse {
                status: OpStatus::OpSuccess as i32,
                first_chunk_offset: first,
                bytes_per_checksum: 512,
                ..Default::default()
            };
            write_msg(sock.get_mut(), &resp).await?;
            let (mut off, mut seqno) = (first, 0);
            while off < end {
                let n = (end - off).min(MAX_PACKET_DATA as u64);
                let mut chunk = data[off as usize..(off + n) as usize].to_vec();
                let mut sums = Vec::new();
                chunk_checksums(&chunk, &mut sums);
                if seqno as usize >= corrupt_from.load(Ordering::SeqCst) {
                    chunk[0] ^= 0x40;
                }
                let h = PacketHeader { data_len: n as u32, offset_in_block: off, seqno, flags: 0 };
                write_packet(sock.get_mut(), &h, &sums, &chunk).await?;
                off += n;
                seqno += 1;
            }
            let h = PacketHeader { data_len: 0, offset_in_block: off, seqno, flags: FLAG_LAST };
            write_packet(sock.get_mut(), &h, &[], &[]).await
        }
        // Block recovery is the real datanode's business.
        Opcode::InitReplicaRecovery | Opcode::UpdateReplica | Opcode::TransferBlock | Opcode::ShortCircuitFds => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileReader, FileWriter};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
    }

    #[tokio::test]
    async fn writes_three_blocks_through_a_one_node_pipeline() {
        let dn = FakeDatanode::start("dn-1").await;
        let nn = Arc::new(FakeNamenode { datanodes: vec![dn.info.clone()], ..Default::default() });
        // Not a multiple of the packet or chunk size, so every boundary case is crossed.
        let block_size = 200_000;
        let mut w = FileWriter::new(Namenode::Fake(nn.clone()), "/f", block_size).unwrap();
        let data = pattern(500_000);
        for piece in data.chunks(7_777) {
            w.write(piece).await.unwrap();
        }
        assert_eq!(w.bytes_written(), 500_000);
        assert_eq!(w.close().await.unwrap(), 500_000);

        let stored = dn.blocks.lock().unwrap().clone();
        assert_eq!(stored.len(), 3);
        let lens: Vec<usize> = (1..=3).map(|id| stored[&id].len()).collect();
        assert_eq!(lens, [200_000, 200_000, 100_000]);
        let joined: Vec<u8> = (1..=3).flat_map(|id| stored[&id].clone()).collect();
        assert_eq!(joined, data);

        let added = nn.added.lock().unwrap().clone();
        let previous: Vec<Option<(u64, u64)>> =
            added.iter().map(|(p, _)| p.as_ref().map(|b| (b.block_id, b.num_bytes))).collect();
        assert_eq!(previous, [None, Some((1, 200_000)), Some((2, 200_000))]);
        let last = (*nn.completed.lock().unwrap()).unwrap().unwrap();
        assert_eq!((last.block_id, last.generation_stamp, last.num_bytes), (3, 1000, 100_000));
    }

    #[tokio::test]
    async fn an_empty_file_allocates_no_block() {
        let nn = Arc::new(FakeNamenode::default());
        let w = FileWriter::new(Namenode::Fake(nn.clone()), "/empty", 1 << 20).unwrap();
        assert_eq!(w.close().await.unwrap(), 0);
        assert!(nn.added.lock().unwrap().is_empty());
        assert_eq!(*nn.completed.lock().unwrap(), Some(None));
    }

    #[tokio::test]
    async fn a_refusing_datanode_is_abandoned_and_excluded() {
        let bad = FakeDatanode::start("dn-bad").await;
        bad.refuse_writes.store(true, Ordering::SeqCst);
        let good = FakeDatanode::start("dn-good").await;
        let nn = Arc::new(FakeNamenode { datanodes: vec![bad.info.clone(), good.info.clone()], ..Default::default() });
        let mut w = FileWriter::new(Namenode::Fake(nn.clone()), "/f", 1 << 20).unwrap();
        w.write(b"hello").await.unwrap();
        assert_eq!(w.close().await.unwrap(), 5);
        assert_eq!(nn.abandoned.lock().unwrap().iter().map(|b| b.block_id).collect::<Vec<_>>(), [1]);
        assert_eq!(nn.added.lock().unwrap()[1].1, ["dn-bad".to_string()]);
        assert_eq!(good.blocks.lock().unwrap()[&2], b"hello");
    }

    #[tokio::test]
    async fn an_error_ack_fails_the_write_naming_the_datanode() {
        let dn = FakeDatanode::start("dn-1").await;
        dn.ack_status.store(ACK_ERROR, Ordering::SeqCst);
        let nn = Arc::new(FakeNamenode { datanodes: vec![dn.info.clone()], ..Default::default() });
        let mut w = FileWriter::new(Namenode::Fake(nn.clone()), "/f", 1 << 20).unwrap();
        // Enough packets that the failure may surface in write or in close.
        let r = match w.write(&pattern(300_000)).await {
            Ok(()) => w.close().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let err = r.unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{}", dn.info.xfer_port)), "{err}");
        assert!(nn.completed.lock().unwrap().is_none());
    }

    /// Three 100 000-byte blocks on two datanodes; returns the data.
    fn place_file(nn: &FakeNamenode, dns: &[&FakeDatanode]) -> Vec<u8> {
        let data = pattern(250_000);
        let mut blocks = Vec::new();
        for (i, piece) in data.chunks(100_000).enumerate() {
            let id = i as u64 + 1;
            for dn in dns {
                dn.blocks.lock().unwrap().insert(id, piece.to_vec());
            }
            blocks.push(LocatedBlock {
                block: Some(ExtendedBlock { block_id: id, generation_stamp: 7, num_bytes: piece.len() as u64 }),
                offset: i as u64 * 100_000,
                locations: dns.iter().map(|d| d.info.clone()).collect(),
                ..Default::default()
            });
        }
        *nn.locations.lock().unwrap() =
            GetBlockLocationsResponse { file_length: data.len() as u64, blocks, under_construction: false };
        data
    }

    #[tokio::test]
    async fn reads_fail_over_from_a_corrupt_replica() {
        let corrupt = FakeDatanode::start("dn-corrupt").await;
        corrupt.corrupt_from_packet.store(0, Ordering::SeqCst);
        let good = FakeDatanode::start("dn-good").await;
        let nn = Arc::new(FakeNamenode::default());
        let data = place_file(&nn, &[&corrupt, &good]);
        let mut r = FileReader::open(Namenode::Fake(nn.clone()), "/f").await.unwrap();
        assert_eq!(r.len(), 250_000);

        // A range across the first block boundary, not chunk-aligned.
        let mut buf = vec![0u8; 3_000];
        assert_eq!(r.pread(99_001, &mut buf).await.unwrap(), 3_000);
        assert_eq!(buf, data[99_001..102_001]);
        assert_eq!(r.position(), 0);
        let reports = nn.bad_reports.lock().unwrap().clone();
        assert!(!reports.is_empty());
        assert!(reports.iter().all(|b| b.locations.len() == 1 && b.locations[0].datanode_uuid == "dn-corrupt"));
        assert_eq!(reports[0].block.as_ref().unwrap().block_id, 1);

        // Sequential reads after a seek, in odd sizes.
        r.seek(1_234).unwrap();
        assert_eq!(read_to_end(&mut r, 10_007).await, data[1_234..]);
        assert_eq!(r.position(), 250_000);
        let mut past = vec![0u8; 10];
        assert_eq!(r.pread(249_995, &mut past).await.unwrap(), 5);
        assert_eq!(past[..5], data[249_995..]);
        assert!(r.seek(250_001).is_err());
    }

    async fn read_to_end(r: &mut FileReader, buf_size: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; buf_size];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn sequential_reads_hold_one_connection_per_block() {
        let dn = FakeDatanode::start("dn-1").await;
        let nn = Arc::new(FakeNamenode::default());
        let data = place_file(&nn, &[&dn]);
        for (pass, buf_size) in [4_096, 150_000].into_iter().enumerate() {
            let mut r = FileReader::open(Namenode::Fake(nn.clone()), "/f").await.unwrap();
            assert_eq!(read_to_end(&mut r, buf_size).await, data);
            assert_eq!(dn.reads.load(Ordering::SeqCst), 3 * (pass + 1));
        }
        assert!(nn.bad_reports.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_replica_failing_mid_block_is_left_for_the_next() {
        let flaky = FakeDatanode::start("dn-flaky").await;
        flaky.corrupt_from_packet.store(1, Ordering::SeqCst);
        let good = FakeDatanode::start("dn-good").await;
        let nn = Arc::new(FakeNamenode::default());
        let data = place_file(&nn, &[&flaky, &good]);
        let mut r = FileReader::open(Namenode::Fake(nn.clone()), "/f").await.unwrap();
        let mut buf = vec![0u8; 150_000];
        // The first packet was good and is returned; the corrupt second one is not.
        assert_eq!(r.read(&mut buf).await.unwrap(), MAX_PACKET_DATA);
        let rest = read_to_end(&mut r, 150_000).await;
        assert_eq!([&buf[..MAX_PACKET_DATA], &rest[..]].concat(), data);
        // Each block's flaky replica was reported once and then avoided.
        let reported: Vec<u64> =
            nn.bad_reports.lock().unwrap().iter().map(|b| b.block.as_ref().unwrap().block_id).collect();
        assert_eq!(reported, [1, 2]);
    }

    #[tokio::test]
    async fn no_good_replica_names_the_block_and_file() {
        let a = FakeDatanode::start("dn-a").await;
        let b = FakeDatanode::start("dn-b").await;
        a.corrupt_from_packet.store(0, Ordering::SeqCst);
        b.corrupt_from_packet.store(0, Ordering::SeqCst);
        let nn = Arc::new(FakeNamenode::default());
        place_file(&nn, &[&a, &b]);
        let mut r = FileReader::open(Namenode::Fake(nn.clone()), "/f").await.unwrap();
        r.seek(150_000).unwrap();
        let mut buf = vec![0u8; 100];
        let err = r.read(&mut buf).await.unwrap_err();
        assert!(matches!(err, ClientError::BlockMissing(_)), "{err:?}");
        assert_eq!(err.to_string(), "Could not obtain block: blk_2_7 file=/f");
    }
}
