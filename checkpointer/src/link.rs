//! The checkpointer's calls to the namenode: status, roll, downloads and the upload. Files
//! travel in 1 MiB chunks; a download's last chunk carries the file's length and CRC32C and
//! is checked before the file is renamed into place; an upload ends with the same trailer,
//! which the namenode checks.

use crate::store::CheckpointDir;
use crate::{CheckpointError, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};
use tusk_common::checksum::crc32c_append;
use tusk_proto::checkpoint::namenode_checkpoint_client::NamenodeCheckpointClient;
use tusk_proto::checkpoint::put_image_request::Part;
use tusk_proto::checkpoint::*;

const CHUNK_BYTES: usize = 1 << 20;
/// Metadata naming the caller (simple authentication, as HDFS).
const USER_HEADER: &str = "tusk-user";

#[derive(Clone)]
pub struct NamenodeLink {
    rpc: NamenodeCheckpointClient<Channel>,
    addr: String,
    user: String,
}

impl NamenodeLink {
    /// A link that connects on first use and reconnects after the namenode restarts.
    pub fn new(addr: &str, user: &str) -> Result<NamenodeLink> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| CheckpointError(format!("bad namenode address {addr:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let rpc = NamenodeCheckpointClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(16 << 20)
            .max_encoding_message_size(16 << 20);
        Ok(NamenodeLink { rpc, addr: addr.to_owned(), user: user.to_owned() })
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Ok(v) = self.user.parse() {
            r.metadata_mut().insert(USER_HEADER, v);
        }
        r
    }

    fn err(&self, what: &str, s: Status) -> CheckpointError {
        if s.code() == tonic::Code::Unavailable && s.message().contains("transport") {
            CheckpointError(format!("{what}: cannot reach the namenode at {}: {}", self.addr, s.message()))
        } else {
            CheckpointError(format!("{what}: the namenode at {} answered: {}", self.addr, s.message()))
        }
    }

    pub async fn info(&self) -> Result<CheckpointInfo> {
        let mut rpc = self.rpc.clone();
        let call = rpc.get_checkpoint_info(self.req(CheckpointInfoRequest {}));
        match tokio::time::timeout(Duration::from_secs(30), call).await {
            Ok(r) => r.map(|r| r.into_inner()).map_err(|s| self.err("checkpoint status", s)),
            Err(_) => Err(CheckpointError(format!("checkpoint status: the namenode at {} did not answer", self.addr))),
        }
    }

    pub async fn roll(&self) -> Result<RollEditLogResponse> {
        self.rpc
            .clone()
            .roll_edit_log(self.req(RollEditLogRequest {}))
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.err("roll edit log", s))
    }

    pub async fn download_image(&self, txid: u64, dir: &CheckpointDir) -> Result<u64> {
        let stream = self
            .rpc
            .clone()
            .get_image(self.req(GetImageRequest { txid }))
            .await
            .map_err(|s| self.err("download image", s))?
            .into_inner();
        self.receive(stream, &dir.image_path(txid), dir).await
    }

    pub async fn download_segment(&self, first: u64, last: u64, dir: &CheckpointDir) -> Result<u64> {
        let stream = self
            .rpc
            .clone()
            .get_edit_segment(self.req(GetEditSegmentRequest { first_txid: first, last_txid: last }))
            .await
            .map_err(|s| self.err("download edits", s))?
            .into_inner();
        self.receive(stream, &dir.segment_path(first, last), dir).await
    }

    /// Writes a chunk stream to `dest` through a `.download` file, checked against the final
    /// chunk's length and CRC32C. Returns the bytes received.
    async fn receive(&self, mut stream: Streaming<FileChunk>, dest: &Path, dir: &CheckpointDir) -> Result<u64> {
        let tmp = CheckpointDir::download_path(dest);
        let io = |e: std::io::Error| CheckpointError(format!("cannot write {}: {e}", tmp.display()));
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
        let (mut crc, mut total) = (0u32, 0u64);
        let outcome = loop {
            match stream.next().await {
                Some(Ok(c)) if c.end => break Ok((c.total_bytes, c.crc32c)),
                Some(Ok(c)) => {
                    crc = crc32c_append(crc, &c.data);
                    total += c.data.len() as u64;
                    if let Err(e) = file.write_all(&c.data) {
                        break Err(io(e));
                    }
                }
                Some(Err(s)) => break Err(self.err(&format!("download {}", dest.display()), s)),
                None => break Err(CheckpointError(format!("download of {} ended early", dest.display()))),
            }
        };
        let result = outcome.and_then(|(want_len, want_crc)| {
            if (want_len, want_crc) != (total, crc) {
                return Err(CheckpointError(format!(
                    "download of {} is damaged: {total} bytes with CRC32C {crc:08x}, the namenode sent \
                     {want_len} bytes with {want_crc:08x}",
                    dest.display()
                )));
            }
            let f = file.into_inner().map_err(|e| io(e.into_error()))?;
            f.sync_all().map_err(io)?;
            dir.commit_download(&tmp, dest)
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| total)
    }

    /// Streams the image at `path` to the namenode. Returns the txid it installed.
    pub async fn upload_image(&self, path: &Path, cluster_id: &str, txid: u64) -> Result<u64> {
        let mut file =
            std::fs::File::open(path).map_err(|e| CheckpointError(format!("cannot open {}: {e}", path.display())))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<PutImageRequest>(4);
        let header = PutImageHeader { cluster_id: cluster_id.to_owned(), txid };
        let shown = path.display().to_string();
        let reader = tokio::task::spawn_blocking(move || -> Result<()> {
            let send = |part: Part| tx.blocking_send(PutImageRequest { part: Some(part) }).is_ok();
            if !send(Part::Header(header)) {
                return Ok(()); // the call ended; its status says why
            }
            let (mut crc, mut total) = (0u32, 0u64);
            loop {
                let mut buf = Vec::with_capacity(CHUNK_BYTES);
                let n = (&mut file)
                    .take(CHUNK_BYTES as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| CheckpointError(format!("cannot read {shown}: {e}")))?;
                if n == 0 {
                    break;
                }
                crc = crc32c_append(crc, &buf);
                total += n as u64;
                if !send(Part::Data(buf)) {
                    return Ok(());
                }
            }
            send(Part::Trailer(PutImageTrailer { total_bytes: total, crc32c: crc }));
            Ok(())
        });
        let call = self.rpc.clone().put_image(self.req(tokio_stream::wrappers::ReceiverStream::new(rx))).await;
        reader.await.map_err(|e| CheckpointError(format!("upload reader failed: {e}")))??;
        call.map(|r| r.into_inner().installed_txid).map_err(|s| self.err("upload image", s))
    }
}
