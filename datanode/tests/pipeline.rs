//! In-process data plane: three datanodes (their namenode unreachable; the actor just
//! retries), a write through dn1 -> dn2 -> dn3, reads, and the ways a request fails.

mod support;

use support::*;
use tokio::net::TcpListener;
use tusk_proto::data_transfer::{self, ACK_SUCCESS, BYTES_PER_CHECKSUM};
use tusk_proto::transfer::OpStatus;

const NO_NAMENODE: &str = "127.0.0.1:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_pipeline_write_then_read() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut dns = Vec::new();
    for d in &dirs {
        dns.push(start_dn(d.path(), NO_NAMENODE).await);
    }
    let data = test_data(1 << 20, 1);
    let block_id = 1_073_741_825u64;
    let targets = vec![target(dns[1].xfer_addr()), target(dns[2].xfer_addr())];
    let acks = write_block(dns[0].xfer_addr(), block_id, 1001, targets, &data).await.expect("pipeline setup");
    assert_eq!(acks.len(), 17, "16 data packets and the last one");
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack.seqno, i as u64);
        assert_eq!(ack.statuses, vec![ACK_SUCCESS; 3], "ack {i}");
    }
    // The last ack means every node finalized: the files are there, identical.
    for dn in &dns {
        let path = dn.block_file(block_id).expect("finalized replica");
        assert_eq!(std::fs::read(&path).unwrap(), data, "{}", path.display());
        let meta = path.with_file_name(format!("blk_{block_id}_1001.meta"));
        tusk_datanode::meta::verify_replica(&path, &meta).unwrap();
    }
    assert_ne!(dns[0].uuid(), dns[1].uuid());

    // A middle range from dn2: whole chunks around it, with the stored checksums.
    let (offset, length) = (300_000u64, 200_000u64);
    let (resp, packets) = read_block(dns[1].xfer_addr(), block_id, 1001, offset, length).await;
    assert_eq!(resp.status, OpStatus::OpSuccess as i32, "{}", resp.message);
    assert_eq!(resp.first_chunk_offset, offset / 512 * 512);
    assert_eq!(resp.bytes_per_checksum, BYTES_PER_CHECKSUM as u32);
    let mut got = Vec::new();
    let mut pos = resp.first_chunk_offset;
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.header.seqno, i as u64);
        assert_eq!(p.header.offset_in_block, pos);
        assert!(p.data.len() <= 64 * 1024);
        data_transfer::verify_checksums(&p.data, &p.checksums).expect("stored checksums match");
        pos += p.data.len() as u64;
        got.extend_from_slice(&p.data);
    }
    assert!(packets.last().unwrap().header.is_last());
    assert!(packets.last().unwrap().data.is_empty());
    let start = resp.first_chunk_offset as usize;
    let end = (offset + length).div_ceil(512) as usize * 512;
    assert_eq!(got.len(), end - start);
    assert_eq!(&got[..], &data[start..end]);

    // The tail: a partial last chunk ends at the replica's end.
    let odd = test_data(1000, 2);
    let acks = write_block(dns[2].xfer_addr(), 7, 1, vec![], &odd).await.unwrap();
    assert!(acks.iter().all(|a| a.statuses == vec![ACK_SUCCESS]));
    let (resp, packets) = read_block(dns[2].xfer_addr(), 7, 1, 999, 1).await;
    assert_eq!(resp.first_chunk_offset, 512);
    assert_eq!(packets[0].data, &odd[512..]);
    let (resp, packets) = read_block(dns[2].xfer_addr(), 7, 1, 0, 0).await;
    assert_eq!(resp.status, OpStatus::OpSuccess as i32);
    assert_eq!(packets.len(), 1);

    for dn in dns {
        dn.shutdown().await;
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dn = start_dn(dir.path(), NO_NAMENODE).await;
    let data = test_data(5000, 3);
    write_block(dn.xfer_addr(), 42, 5, vec![], &data).await.unwrap();

    let (resp, _) = read_block(dn.xfer_addr(), 43, 5, 0, 10).await;
    assert_eq!(resp.status, OpStatus::OpErrorInvalid as i32);
    assert!(resp.message.contains("not found"), "{}", resp.message);
    let (resp, _) = read_block(dn.xfer_addr(), 42, 5, 4000, 1001).await;
    assert_eq!(resp.status, OpStatus::OpErrorInvalid as i32);
    assert!(resp.message.contains("beyond"), "{}", resp.message);
    let (resp, _) = read_block(dn.xfer_addr(), 42, 5, u64::MAX, 2).await;
    assert_eq!(resp.status, OpStatus::OpErrorInvalid as i32);
    let (resp, _) = read_block(dn.xfer_addr(), 42, 6, 0, 10).await;
    assert_eq!(resp.status, OpStatus::OpErrorInvalid as i32);
    assert!(resp.message.contains("genstamp"), "{}", resp.message);
    let (resp, _) = read_block(dn.xfer_addr(), 42, 4, 0, 5000).await;
    assert_eq!(resp.status, OpStatus::OpSuccess as i32, "an older requested genstamp is fine");

    // The same block again is refused; the replica is untouched.
    let err = write_block(dn.xfer_addr(), 42, 5, vec![], &data).await.unwrap_err();
    assert_eq!(err.status, OpStatus::OpErrorExists as i32);
    assert_eq!(std::fs::read(dn.block_file(42).unwrap()).unwrap(), data);

    // Garbage instead of an op header: the connection is dropped, the server goes on.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(dn.xfer_addr()).await.unwrap();
        s.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
    }
    let (resp, _) = read_block(dn.xfer_addr(), 42, 5, 0, 10).await;
    assert_eq!(resp.status, OpStatus::OpSuccess as i32);
    dn.shutdown().await;
}

/// Sets up a one-node write of a new replica of `block_id` (stamp 1) by hand, for tests that
/// send packets themselves.
async fn open_single_node_write(addr: std::net::SocketAddr, block_id: u64) -> tokio::net::TcpStream {
    use tusk_proto::client::ExtendedBlock;
    use tusk_proto::data_transfer::Opcode;
    use tusk_proto::transfer::{BlockOpResponse, WriteBlockRequest, WriteStage};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = WriteBlockRequest {
        block: Some(ExtendedBlock { block_id, generation_stamp: 1, num_bytes: 0 }),
        targets: vec![],
        client_name: "t".into(),
        stage: WriteStage::PipelineSetupCreate as i32,
        ..Default::default()
    };
    data_transfer::write_op(&mut s, Opcode::WriteBlock, &req).await.unwrap();
    let resp: BlockOpResponse = data_transfer::read_msg(&mut s).await.unwrap();
    assert_eq!(resp.status, OpStatus::OpSuccess as i32, "{}", resp.message);
    s
}

#[tokio::test]
async fn corrupt_packet_gets_checksum_error_and_leaves_nothing() {
    use tusk_proto::data_transfer::{PacketHeader, ACK_ERROR_CHECKSUM};
    let dir = tempfile::tempdir().unwrap();
    let dn = start_dn(dir.path(), NO_NAMENODE).await;
    let mut s = open_single_node_write(dn.xfer_addr(), 9).await;
    let data = test_data(4096, 4);
    let mut sums = Vec::new();
    data_transfer::chunk_checksums(&data, &mut sums);
    sums[5] ^= 1;
    let h = PacketHeader { data_len: 4096, offset_in_block: 0, seqno: 0, flags: 0 };
    data_transfer::write_packet(&mut s, &h, &sums, &data).await.unwrap();
    let ack = data_transfer::read_ack(&mut s).await.unwrap();
    assert_eq!(ack.statuses, vec![ACK_ERROR_CHECKSUM]);
    // The unfinished replica stays for a recovery, without the bad packet.
    let rbw = dir.path().join("current/rbw/blk_9");
    for _ in 0..100 {
        if dn.replica_state(9).is_some_and(|(_, len, finalized)| len == 0 && !finalized) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::metadata(&rbw).unwrap().len(), 0, "nothing of the bad packet was written");
    assert!(dn.block_file(9).is_none(), "not finalized");
    // A write of the block under a newer stamp replaces it.
    let acks = write_block(dn.xfer_addr(), 9, 2, vec![], &data).await.unwrap();
    assert_eq!(acks.last().unwrap().statuses, vec![ACK_SUCCESS]);
    assert!(!rbw.exists());
    dn.shutdown().await;
}

/// Packets are written by the replica's writer thread while the next ones are read: the
/// verdicts must still come back in packet order, a refused packet's after every earlier
/// packet's, and every packet acknowledged before it must be in the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_packets_before_a_corrupt_one_are_written_and_acked_in_order() {
    use tusk_proto::data_transfer::{PacketHeader, ACK_ERROR_CHECKSUM};
    let dir = tempfile::tempdir().unwrap();
    let dn = start_dn(dir.path(), NO_NAMENODE).await;
    let mut s = open_single_node_write(dn.xfer_addr(), 11).await;
    const GOOD: u64 = 6;
    let packet = 64 * 1024;
    let data = test_data(packet * (GOOD as usize + 1), 6);
    // Every packet is sent before any ack is read.
    for seqno in 0..=GOOD {
        let chunk = &data[seqno as usize * packet..(seqno as usize + 1) * packet];
        let mut sums = Vec::new();
        data_transfer::chunk_checksums(chunk, &mut sums);
        if seqno == GOOD {
            sums[0] ^= 1;
        }
        let h = PacketHeader { data_len: packet as u32, offset_in_block: seqno * packet as u64, seqno, flags: 0 };
        data_transfer::write_packet(&mut s, &h, &sums, chunk).await.unwrap();
    }
    for seqno in 0..=GOOD {
        let ack = data_transfer::read_ack(&mut s).await.unwrap();
        assert_eq!(ack.seqno, seqno, "acks come in packet order");
        let want = if seqno == GOOD { ACK_ERROR_CHECKSUM } else { ACK_SUCCESS };
        assert_eq!(ack.statuses, vec![want], "packet {seqno}");
    }
    // The replica (kept for a recovery) holds exactly the acknowledged packets.
    let good_len = GOOD * packet as u64;
    for _ in 0..100 {
        if dn.replica_state(11).is_some_and(|(_, len, finalized)| len == good_len && !finalized) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let rbw = dir.path().join("current/rbw/blk_11");
    assert_eq!(std::fs::read(&rbw).unwrap(), &data[..good_len as usize]);
    assert!(dn.block_file(11).is_none(), "not finalized");
    dn.shutdown().await;
}

#[tokio::test]
async fn unreachable_second_node_is_the_first_bad_link() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let dn1 = start_dn(dirs[0].path(), NO_NAMENODE).await;
    let dn3 = start_dn(dirs[1].path(), NO_NAMENODE).await;
    // A port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let targets = vec![target(dead), target(dn3.xfer_addr())];
    let err = write_block(dn1.xfer_addr(), 77, 1, targets, &test_data(1000, 5)).await.unwrap_err();
    assert_eq!(err.status, OpStatus::OpError as i32);
    assert_eq!(err.first_bad_link, dead.to_string());
    assert!(dn1.block_file(77).is_none());
    assert!(std::fs::read_dir(dirs[0].path().join("current/rbw")).unwrap().next().is_none());

    // Bad link further down: dn1 -> dn3 -> dead.
    let targets = vec![target(dn3.xfer_addr()), target(dead)];
    let err = write_block(dn1.xfer_addr(), 78, 1, targets, &test_data(1000, 5)).await.unwrap_err();
    assert_eq!(err.status, OpStatus::OpError as i32);
    assert_eq!(err.first_bad_link, dead.to_string());
    dn1.shutdown().await;
    dn3.shutdown().await;
}

#[tokio::test]
async fn unwritable_data_dir_fails_start_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let bad = file.join("data");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = match tusk_datanode::start(conf(&bad, NO_NAMENODE), listener).await {
        Ok(_) => panic!("start succeeded on {}", bad.display()),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with(&format!("data directory {} is not writable: ", bad.display())), "{err}");
    assert!(!bad.exists());
}

#[tokio::test]
async fn restart_keeps_replicas_and_identity() {
    let dir = tempfile::tempdir().unwrap();
    let dn = start_dn(dir.path(), NO_NAMENODE).await;
    let uuid = dn.uuid();
    let data = test_data(70_000, 6);
    write_block(dn.xfer_addr(), 5, 3, vec![], &data).await.unwrap();
    dn.shutdown().await;
    let dn = start_dn(dir.path(), NO_NAMENODE).await;
    assert_eq!(dn.uuid(), uuid);
    let (resp, packets) = read_block(dn.xfer_addr(), 5, 3, 0, 70_000).await;
    assert_eq!(resp.status, OpStatus::OpSuccess as i32, "{}", resp.message);
    let got: Vec<u8> = packets.iter().flat_map(|p| p.data.clone()).collect();
    assert_eq!(got, data);
    dn.shutdown().await;
}
