//! Short-circuit local reads, the datanode's side: on the abstract Unix socket
//! `@tusk-datanode-<uuid>` ([`tusk_proto::short_circuit`]), a client on this host asks for a
//! finalized replica and gets its block and meta file descriptors, which it reads and
//! verifies itself. Only finalized, unsuspected replicas are handed out; anything else is
//! refused with a status and the client reads over TCP.

use super::{ActiveGuard, XferContext, IO_TIMEOUT};
use crate::server::Shutdown;
use prost::Message;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tusk_proto::data_transfer::{self, Opcode, BYTES_PER_CHECKSUM};
use tusk_proto::short_circuit;
use tusk_proto::transfer::{BlockOpResponse, OpStatus, ReadBlockRequest};

/// Serves short-circuit requests until `shutdown`.
pub async fn serve(listener: UnixListener, ctx: Arc<XferContext>, mut shutdown: Shutdown) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("short-circuit accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let ctx = Arc::clone(&ctx);
        conns.spawn(async move {
            if let Err(e) = handle(stream, &ctx).await {
                tracing::debug!("short-circuit connection ended: {e}");
            }
        });
    }
    conns.shutdown().await;
}

/// How long a connection may sit idle between requests before the datanode closes it (HDFS's
/// `dfs.datanode.socket.reuse.keepalive`, 4 s). Clients keep idle connections for less
/// ([`tusk_proto::short_circuit::CLIENT_IDLE`]), so they rarely find one closed.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(4);
/// Read buffer of a connection: a request is a ReadBlockRequest of some 100 bytes.
const REQUEST_BUFFER: usize = 1024;

/// Serves the requests of one connection, one after another, until the client closes it,
/// leaves it idle for [`KEEPALIVE`], or breaks the protocol.
async fn handle(stream: UnixStream, ctx: &Arc<XferContext>) -> io::Result<()> {
    // A request arrives whole: buffered, it is one receive, not one per field. A client sends
    // the next request only after the answer, so the buffer never holds one ahead.
    let mut stream = tokio::io::BufReader::with_capacity(REQUEST_BUFFER, stream);
    let mut served = 0u64;
    loop {
        let wait = if served == 0 { IO_TIMEOUT } else { KEEPALIVE };
        let (op, body) = match tokio::time::timeout(wait, data_transfer::read_op(&mut stream)).await {
            Ok(Ok(req)) => req,
            // Closed or left idle between requests: the normal end of a kept connection.
            Ok(Err(e)) if served > 0 && e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(_) if served > 0 => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no op header")),
        };
        serve_one(stream.get_ref(), ctx, op, &body).await?;
        served += 1;
    }
}

/// Answers one request: descriptors of a finalized replica, or a refusal.
async fn serve_one(stream: &UnixStream, ctx: &Arc<XferContext>, op: Opcode, body: &[u8]) -> io::Result<()> {
    let _active = ActiveGuard::new(&ctx.active);
    let refuse =
        |status: OpStatus, message: String| BlockOpResponse { status: status as i32, message, ..Default::default() };
    if op != Opcode::ShortCircuitFds {
        let resp = refuse(OpStatus::OpErrorInvalid, format!("{op:?} is not served on the short-circuit socket"));
        return short_circuit::send_with_fds(stream, &resp, &[]).await;
    }
    let Some(block) = ReadBlockRequest::decode(body).ok().and_then(|r| r.block) else {
        let resp = refuse(OpStatus::OpErrorInvalid, "undecodable short-circuit request".into());
        return short_circuit::send_with_fds(stream, &resp, &[]).await;
    };
    let (id, genstamp) = (block.block_id, block.generation_stamp);
    let opened = super::open_replica(&ctx.store, move |s, wait| s.open_short_circuit(id, genstamp, wait)).await?;
    match opened {
        Ok((info, data, meta)) => {
            let resp = BlockOpResponse {
                status: OpStatus::OpSuccess as i32,
                bytes_per_checksum: BYTES_PER_CHECKSUM as u32,
                replica_length: info.len,
                replica_genstamp: info.genstamp,
                ..Default::default()
            };
            short_circuit::send_with_fds(stream, &resp, &[data.as_raw_fd(), meta.as_raw_fd()]).await?;
            metrics::counter!("datanode_short_circuit_grants_total").increment(1);
            tracing::debug!(block_id = block.block_id, "granted a short-circuit read");
            Ok(())
        }
        Err(e) => {
            let status = super::refusal_status(&e);
            if status == OpStatus::OpError {
                tracing::warn!("cannot open a replica for a short-circuit read: {e}");
            }
            short_circuit::send_with_fds(stream, &refuse(status, e.to_string()), &[]).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::sync::atomic::AtomicU32;
    use tusk_proto::client::ExtendedBlock;

    async fn ask(conn: &mut UnixStream, block_id: u64) -> (BlockOpResponse, usize) {
        let block = ExtendedBlock { block_id, generation_stamp: 1001, num_bytes: 5000 };
        let req = ReadBlockRequest { block: Some(block), offset: 0, length: 5000, client_name: "test".into() };
        data_transfer::write_op(conn, Opcode::ShortCircuitFds, &req).await.unwrap();
        let (resp, fds) = short_circuit::recv_with_fds::<BlockOpResponse>(conn, short_circuit::MAX_FDS).await.unwrap();
        (resp, fds.len())
    }

    #[tokio::test]
    async fn one_connection_serves_request_after_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&[dir.path().to_owned()], false).unwrap());
        let mut rbw = store.create_rbw(7, 1001, true).unwrap();
        let (data, mut sums) = (vec![7u8; 5000], Vec::new());
        data_transfer::chunk_checksums(&data, &mut sums);
        rbw.append(&data, &sums).unwrap();
        rbw.finalize().unwrap();
        let ctx = Arc::new(XferContext { store, active: AtomicU32::new(0), client_name: "dn".into() });
        let uuid = format!("test-dn-{}-{}", std::process::id(), line!());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve(short_circuit::bind(&uuid).unwrap(), ctx, Shutdown(stop_rx)));

        let mut conn = short_circuit::connect(&uuid).unwrap();
        let (granted, fds) = ask(&mut conn, 7).await;
        assert_eq!((granted.status, granted.replica_length, fds), (OpStatus::OpSuccess as i32, 5000, 2));
        // A refusal leaves the connection usable too.
        let (refused, fds) = ask(&mut conn, 8).await;
        assert_ne!(refused.status, OpStatus::OpSuccess as i32);
        assert_eq!(fds, 0);
        let (again, fds) = ask(&mut conn, 7).await;
        assert_eq!((again.status, fds), (OpStatus::OpSuccess as i32, 2));
        drop(conn);
        stop.send_replace(true);
        tokio::time::timeout(std::time::Duration::from_secs(10), server).await.unwrap().unwrap();
    }
}
