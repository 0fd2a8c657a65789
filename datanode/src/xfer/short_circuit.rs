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

async fn handle(mut stream: UnixStream, ctx: &Arc<XferContext>) -> io::Result<()> {
    let (op, body) = tokio::time::timeout(IO_TIMEOUT, data_transfer::read_op(&mut stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no op header"))??;
    let _active = ActiveGuard::new(&ctx.active);
    let refuse =
        |status: OpStatus, message: String| BlockOpResponse { status: status as i32, message, ..Default::default() };
    if op != Opcode::ShortCircuitFds {
        let resp = refuse(OpStatus::OpErrorInvalid, format!("{op:?} is not served on the short-circuit socket"));
        return short_circuit::send_with_fds(&stream, &resp, &[]).await;
    }
    let Some(block) = ReadBlockRequest::decode(&body[..]).ok().and_then(|r| r.block) else {
        let resp = refuse(OpStatus::OpErrorInvalid, "undecodable short-circuit request".into());
        return short_circuit::send_with_fds(&stream, &resp, &[]).await;
    };
    let store = Arc::clone(&ctx.store);
    let opened = tokio::task::spawn_blocking(move || store.open_short_circuit(block.block_id, block.generation_stamp))
        .await
        .map_err(io::Error::other)?;
    match opened {
        Ok((info, data, meta)) => {
            let resp = BlockOpResponse {
                status: OpStatus::OpSuccess as i32,
                bytes_per_checksum: BYTES_PER_CHECKSUM as u32,
                replica_length: info.len,
                replica_genstamp: info.genstamp,
                ..Default::default()
            };
            short_circuit::send_with_fds(&stream, &resp, &[data.as_raw_fd(), meta.as_raw_fd()]).await?;
            metrics::counter!("datanode_short_circuit_grants_total").increment(1);
            tracing::debug!(block_id = block.block_id, "granted a short-circuit read");
            Ok(())
        }
        Err(e) => {
            let status = super::refusal_status(&e);
            if status == OpStatus::OpError {
                tracing::warn!("cannot open a replica for a short-circuit read: {e}");
            }
            short_circuit::send_with_fds(&stream, &refuse(status, e.to_string()), &[]).await
        }
    }
}
