//! The datanode's side of WebHDFS: where the namenode redirects OPEN, CREATE and APPEND. As
//! in Hadoop the datanode is a client of the file system here: it reads or writes the file
//! through the namenode (its own configured one; the `namenoderpcaddress` parameter is
//! accepted and ignored, so a URL cannot point the datanode elsewhere).

use crate::params::{fs_path, Params};
use crate::remote::RemoteException;
use crate::webhdfs::Clients;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_stream::StreamExt;

type R<T> = Result<T, RemoteException>;

const PIECE: usize = 1 << 20;

pub async fn handle(
    State(clients): State<Arc<Clients>>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    let p = Params::new(query);
    let op = p.op_name();
    let result = match fs_path(&path) {
        Ok(path) => match (method.clone(), op.as_str()) {
            (Method::GET, "OPEN") => open(&clients, &path, &p).await,
            (Method::PUT, "CREATE") => create(&clients, &path, &p, body).await,
            (Method::POST, "APPEND") => append(&clients, &path, &p, body).await,
            _ => Err(RemoteException::illegal_argument(format!(
                "Invalid value for webhdfs parameter \"op\": {method} {op} is not a datanode operation"
            ))),
        },
        Err(e) => Err(e),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn open(clients: &Clients, path: &str, p: &Params) -> R<Response> {
    let c = clients.get(&p.user()).await?;
    let offset = p.u64("offset")?.unwrap_or(0);
    let length = p.u64("length")?;
    let mut reader = c.open(path).await?;
    let len = reader.len();
    if offset > len {
        return Err(RemoteException::io(format!("Offset={offset} out of the range [0, {len}] of {path}")));
    }
    reader.seek(offset)?;
    let count = length.map_or(len - offset, |l| l.min(len - offset));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut left = count;
        while left > 0 {
            let mut buf = vec![0u8; (left.min(PIECE as u64)) as usize];
            let result = match reader.read(&mut buf).await {
                Ok(0) => Err(std::io::Error::other("the file ended early")),
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    metrics::counter!("webhdfs_bytes_read_total").increment(n as u64);
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let failed = result.is_err();
            // An error mid-stream breaks the connection: the client sees a short body.
            if tx.send(result).await.is_err() || failed {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CONTENT_LENGTH, count.to_string())],
        body,
    )
        .into_response())
}

/// Copies the request body into `w` and completes the file.
async fn write_body(mut w: tusk_client::FileWriter, body: Body) -> R<u64> {
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| RemoteException::io(format!("reading the request body: {e}")))?;
        w.write(&piece).await?;
        metrics::counter!("webhdfs_bytes_written_total").increment(piece.len() as u64);
    }
    Ok(w.close().await?)
}

async fn create(clients: &Clients, path: &str, p: &Params, body: Body) -> R<Response> {
    let overwrite = p.bool("overwrite", false)?;
    let block_size = p.u64("blocksize")?.unwrap_or(0);
    let replication = p.replication()?.unwrap_or(0);
    let permission = p.permission()?.unwrap_or(0o644);
    let c = clients.get(&p.user()).await?;
    // As Hadoop's WebHDFS (createparent=true): missing parent directories are made, 755.
    if let Some((parent, _)) = path.rsplit_once('/') {
        if !parent.is_empty() && c.file_info(parent).await?.is_none() {
            c.mkdirs(parent, 0o755, true).await?;
        }
    }
    let w = c.create(path, overwrite, replication, block_size).await?;
    if let Err(e) = c.set_permission(path, permission).await {
        // The file exists now: take it back rather than leave it with other permissions.
        drop(w);
        let _ = c.delete(path, false).await;
        return Err(e.into());
    }
    if let Err(e) = write_body(w, body).await {
        // Half a file is not left behind (the client sees the error and may retry).
        let _ = c.delete(path, false).await;
        return Err(e);
    }
    let location = format!("hdfs://{}{}", clients.namenode(), crate::encode_path(path));
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::CONTENT_LENGTH, "0".into())]).into_response())
}

async fn append(clients: &Clients, path: &str, p: &Params, body: Body) -> R<Response> {
    let c = clients.get(&p.user()).await?;
    let w = c.append(path).await?;
    write_body(w, body).await?;
    Ok((StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response())
}
