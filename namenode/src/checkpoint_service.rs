//! The checkpoint RPC service (see `checkpoint.rs` for what each call does): converts
//! requests, streams files in checksummed chunks, and maps errors with `service::to_status`.

use crate::checkpoint::ImageUpload;
use crate::namesystem::Namesystem;
use crate::service::{caller_of, to_status};
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tusk_common::checksum::crc32c_append;
use tusk_proto::checkpoint::namenode_checkpoint_server::NamenodeCheckpoint;
use tusk_proto::checkpoint::put_image_request::Part;
use tusk_proto::checkpoint::*;

/// Size of one streamed chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

pub struct CheckpointService {
    fsn: Arc<Namesystem>,
    /// Turns true when the namenode begins to shut down: an upload in progress is dropped
    /// (its files removed) instead of holding the shutdown up.
    closing: tokio::sync::watch::Receiver<bool>,
}

impl CheckpointService {
    pub fn new(fsn: Arc<Namesystem>, closing: tokio::sync::watch::Receiver<bool>) -> Self {
        CheckpointService { fsn, closing }
    }
}

type Reply<T> = Result<Response<T>, Status>;
type ChunkStream = Pin<Box<dyn Stream<Item = Result<FileChunk, Status>> + Send>>;

/// Streams `path` as data chunks and a final chunk with its length and CRC32C. Reading
/// stops when the receiver goes away.
fn stream_file(path: PathBuf) -> ChunkStream {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let send_err = |e: String| {
            tracing::error!(file = %path.display(), error = %e, "checkpoint download failed");
            let _ = tx.blocking_send(Err(Status::unavailable(e)));
        };
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => return send_err(format!("cannot open {}: {e}", path.display())),
        };
        let (mut crc, mut total) = (0u32, 0u64);
        loop {
            let mut buf = Vec::with_capacity(CHUNK_BYTES);
            let n = match (&mut f).take(CHUNK_BYTES as u64).read_to_end(&mut buf) {
                Ok(n) => n,
                Err(e) => return send_err(format!("cannot read {}: {e}", path.display())),
            };
            if n == 0 {
                break;
            }
            crc = crc32c_append(crc, &buf);
            total += n as u64;
            if tx.blocking_send(Ok(FileChunk { data: buf, ..Default::default() })).is_err() {
                tracing::warn!(file = %path.display(), "checkpoint download abandoned by the checkpointer");
                return;
            }
        }
        let _ = tx.blocking_send(Ok(FileChunk { data: Vec::new(), end: true, total_bytes: total, crc32c: crc }));
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl NamenodeCheckpoint for CheckpointService {
    async fn get_checkpoint_info(&self, req: Request<CheckpointInfoRequest>) -> Reply<CheckpointInfo> {
        let _ = caller_of(&self.fsn, &req)?;
        let s = self.fsn.checkpoint_info();
        Ok(Response::new(CheckpointInfo {
            cluster_id: s.cluster_id,
            last_txid: s.last_txid,
            image_txid: s.image.txid,
            last_checkpoint_ms: s.image.written_ms,
            uncheckpointed_txns: s.uncheckpointed_txns,
        }))
    }

    async fn roll_edit_log(&self, req: Request<RollEditLogRequest>) -> Reply<RollEditLogResponse> {
        let c = caller_of(&self.fsn, &req)?;
        let fsn = self.fsn.clone();
        let m = tokio::task::spawn_blocking(move || fsn.roll_for_checkpoint(&c))
            .await
            .map_err(|e| Status::internal(format!("roll task failed: {e}")))?
            .map_err(to_status)?;
        Ok(Response::new(RollEditLogResponse {
            cluster_id: m.cluster_id,
            image_txid: m.image_txid,
            last_finished_txid: m.last_finished_txid,
            segments: m.segments.into_iter().map(|(first_txid, last_txid)| Segment { first_txid, last_txid }).collect(),
        }))
    }

    type GetImageStream = ChunkStream;

    async fn get_image(&self, req: Request<GetImageRequest>) -> Reply<ChunkStream> {
        let c = caller_of(&self.fsn, &req)?;
        let path = self.fsn.image_for_download(&c, req.get_ref().txid).map_err(to_status)?;
        Ok(Response::new(stream_file(path)))
    }

    type GetEditSegmentStream = ChunkStream;

    async fn get_edit_segment(&self, req: Request<GetEditSegmentRequest>) -> Reply<ChunkStream> {
        let c = caller_of(&self.fsn, &req)?;
        let r = req.get_ref();
        let path = self.fsn.segment_for_download(&c, r.first_txid, r.last_txid).map_err(to_status)?;
        Ok(Response::new(stream_file(path)))
    }

    async fn put_image(&self, req: Request<Streaming<PutImageRequest>>) -> Reply<PutImageResponse> {
        let c = caller_of(&self.fsn, &req)?;
        let mut stream = req.into_inner();
        let header = match stream.next().await {
            Some(Ok(PutImageRequest { part: Some(Part::Header(h)) })) => h,
            Some(Err(e)) => return Err(e),
            _ => return Err(Status::invalid_argument("an image upload starts with a header")),
        };
        let fsn = self.fsn.clone();
        let mut upload: ImageUpload = {
            let fsn = fsn.clone();
            tokio::task::spawn_blocking(move || fsn.begin_image_upload(&c, &header.cluster_id, header.txid))
                .await
                .map_err(|e| Status::internal(format!("upload task failed: {e}")))?
                .map_err(to_status)?
        };
        // Dropping `upload` on any early return (including a broken stream) removes its files.
        let mut closing = self.closing.clone();
        let trailer = loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = closing.wait_for(|c| *c) => {
                    tracing::warn!(txid = upload.txid, "namenode shutting down: checkpoint upload dropped");
                    return Err(Status::unavailable("the namenode is shutting down"));
                }
            };
            match next {
                Some(Ok(PutImageRequest { part: Some(Part::Data(d)) })) => {
                    upload = tokio::task::spawn_blocking(move || upload.write(&d).map(|()| upload))
                        .await
                        .map_err(|e| Status::internal(format!("upload task failed: {e}")))?
                        .map_err(to_status)?;
                }
                Some(Ok(PutImageRequest { part: Some(Part::Trailer(t)) })) => break t,
                Some(Ok(_)) => return Err(Status::invalid_argument("unexpected part in an image upload")),
                Some(Err(e)) => {
                    tracing::warn!(txid = upload.txid, error = %e, "checkpoint upload broken off");
                    return Err(e);
                }
                None => {
                    tracing::warn!(txid = upload.txid, "checkpoint upload ended without its trailer");
                    return Err(Status::invalid_argument("image upload ended without its trailer"));
                }
            }
        };
        let txid =
            tokio::task::spawn_blocking(move || fsn.finish_image_upload(upload, trailer.total_bytes, trailer.crc32c))
                .await
                .map_err(|e| Status::internal(format!("upload task failed: {e}")))?
                .map_err(to_status)?;
        Ok(Response::new(PutImageResponse { installed_txid: txid }))
    }
}
