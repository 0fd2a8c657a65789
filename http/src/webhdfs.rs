//! The namenode's side of WebHDFS (`/webhdfs/v1/PATH?op=...`): metadata operations answered
//! here, data operations (OPEN, CREATE, APPEND) redirected with a 307 to a datanode's HTTP
//! server, which does the reading or writing (crate::dn_webhdfs), as in Hadoop.
//!
//! Every request is made with a client for the caller (`user.name`) on the namenode's own
//! RPC port, so permissions, path rules and errors are exactly those of `tusk fs`.

use crate::json;
use crate::params::{fs_path, Params};
use crate::remote::RemoteException;
use axum::extract::{Path, Query, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tusk_client::{Client, DatanodeReportType, FileType};
use tusk_common::config::ClientConfig;

type R<T> = Result<T, RemoteException>;

/// Clients by user name, on the namenode's RPC address.
pub struct Clients {
    namenode: String,
    conf: ClientConfig,
    by_user: Mutex<HashMap<String, Client>>,
}

impl Clients {
    /// WebHDFS applies no umask of its own: permissions are what the request says (or
    /// Hadoop's defaults, 755 for directories and 644 for files).
    pub fn new(namenode: String, conf: &ClientConfig) -> Arc<Clients> {
        let conf = ClientConfig { umask: 0, ..conf.clone() };
        Arc::new(Clients { namenode, conf, by_user: Mutex::new(HashMap::new()) })
    }

    pub fn namenode(&self) -> &str {
        &self.namenode
    }

    pub async fn get(&self, user: &str) -> R<Client> {
        if let Some(c) = self.by_user.lock().unwrap_or_else(|e| e.into_inner()).get(user) {
            return Ok(c.clone());
        }
        let c = Client::connect(&self.namenode, user, &self.conf).await.map_err(|e| match e {
            tusk_client::ClientError::InvalidArgument(m) => RemoteException::new("SecurityException", m),
            e => RemoteException::from(e),
        })?;
        let mut map = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 1024 {
            map.clear(); // many one-off user names: start over rather than grow without bound
        }
        map.insert(user.to_owned(), c.clone());
        Ok(c)
    }
}

pub async fn handle_root(
    state: State<Arc<Clients>>,
    method: Method,
    query: Query<HashMap<String, String>>,
) -> Response {
    handle(state, method, Path(String::new()), query).await
}

pub async fn handle(
    State(clients): State<Arc<Clients>>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let params = Params::new(query);
    let op = params.op_name();
    let started = std::time::Instant::now();
    let result = match fs_path(&path) {
        Ok(path) => dispatch(&clients, &method, &op, &path, &params).await,
        Err(e) => Err(e),
    };
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("webhdfs_requests_total", "op" => known_op(&op), "outcome" => outcome).increment(1);
    metrics::histogram!("webhdfs_request_duration_seconds", "op" => known_op(&op))
        .record(started.elapsed().as_secs_f64());
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The op as a metrics label: one of the known ones, else "other" (labels stay bounded).
fn known_op(op: &str) -> &'static str {
    const OPS: &[&str] = &[
        "OPEN",
        "GETFILESTATUS",
        "LISTSTATUS",
        "LISTSTATUS_BATCH",
        "GETCONTENTSUMMARY",
        "GETFILECHECKSUM",
        "GETHOMEDIRECTORY",
        "GETFILEBLOCKLOCATIONS",
        "GET_BLOCK_LOCATIONS",
        "CREATE",
        "MKDIRS",
        "RENAME",
        "SETREPLICATION",
        "SETOWNER",
        "SETPERMISSION",
        "SETTIMES",
        "APPEND",
        "CONCAT",
        "TRUNCATE",
        "DELETE",
    ];
    OPS.iter().find(|o| **o == op).copied().unwrap_or("other")
}

fn no_such_op(method: &Method, op: &str) -> RemoteException {
    let class = match *method {
        Method::GET => "GetOpParam",
        Method::PUT => "PutOpParam",
        Method::POST => "PostOpParam",
        Method::DELETE => "DeleteOpParam",
        _ => return RemoteException::unsupported(format!("HTTP method {method} is not supported by WebHDFS")),
    };
    RemoteException::illegal_argument(format!(
        "Invalid value for webhdfs parameter \"op\": No enum constant org.apache.hadoop.hdfs.web.resources.{class}.Op.{op}"
    ))
}

fn boolean(b: bool) -> Response {
    Json(json!({ "boolean": b })).into_response()
}

fn empty_ok() -> Response {
    (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response()
}

async fn dispatch(clients: &Clients, method: &Method, op: &str, path: &str, p: &Params) -> R<Response> {
    p.check_buffersize()?;
    let user = p.user();
    match (method.clone(), op) {
        (Method::GET, "GETHOMEDIRECTORY") => Ok(Json(json!({ "Path": format!("/user/{user}") })).into_response()),
        (Method::GET, "GETFILESTATUS") => {
            let c = clients.get(&user).await?;
            let s = c
                .file_info(path)
                .await?
                .ok_or_else(|| RemoteException::not_found(format!("File does not exist: {path}")))?;
            Ok(Json(json!({ "FileStatus": json::file_status(&s, "") })).into_response())
        }
        (Method::GET, "LISTSTATUS") => {
            let c = clients.get(&user).await?;
            let (dir, entries) = c.list_all(path).await?;
            let list: Vec<_> = if dir.file_type() == FileType::Directory {
                entries.iter().map(|e| json::file_status(e, &e.name)).collect()
            } else {
                vec![json::file_status(&dir, "")]
            };
            Ok(Json(json!({ "FileStatuses": { "FileStatus": list } })).into_response())
        }
        (Method::GET, "LISTSTATUS_BATCH") => {
            let c = clients.get(&user).await?;
            let page = c.list_page(path, p.get("startafter").unwrap_or("")).await?;
            let list: Vec<_> = if page.dir.file_type() == FileType::Directory {
                page.entries.iter().map(|e| json::file_status(e, &e.name)).collect()
            } else {
                vec![json::file_status(&page.dir, "")]
            };
            Ok(Json(json!({ "DirectoryListing": {
                "partialListing": { "FileStatuses": { "FileStatus": list } },
                "remainingEntries": page.remaining,
            }}))
            .into_response())
        }
        (Method::GET, "GETCONTENTSUMMARY") => {
            let c = clients.get(&user).await?;
            Ok(Json(json::content_summary(&c.content_summary(path).await?)).into_response())
        }
        (Method::GET, "GETFILECHECKSUM") => {
            let c = clients.get(&user).await?;
            Ok(Json(crate::checksum::file_checksum(&c, path).await?).into_response())
        }
        (Method::GET, "GETFILEBLOCKLOCATIONS") | (Method::GET, "GET_BLOCK_LOCATIONS") => {
            let c = clients.get(&user).await?;
            require_file(&c, path).await?;
            let offset = p.u64("offset")?.unwrap_or(0);
            let length = p.u64("length")?.unwrap_or(i64::MAX as u64);
            let r = c.get_block_locations(path, offset, length).await?;
            if op == "GET_BLOCK_LOCATIONS" {
                let pool = format!("BP-{}", c.server_info().await?.cluster_id);
                Ok(Json(json::located_blocks(&r, &pool)).into_response())
            } else {
                Ok(Json(json::block_locations(&r)).into_response())
            }
        }
        (Method::GET, "OPEN") => {
            let c = clients.get(&user).await?;
            let status = require_file(&c, path).await?;
            let offset = p.u64("offset")?.unwrap_or(0);
            let length = p.u64("length")?;
            if offset > status.length {
                return Err(RemoteException::io(format!(
                    "Offset={offset} out of the range [0, {}] of {path}",
                    status.length
                )));
            }
            // A datanode holding the block where reading starts; any live one for an empty file.
            let r = c.get_block_locations(path, offset, 1).await?;
            let holder = r.blocks.first().and_then(|b| b.locations.iter().find(|d| d.http_port != 0)).cloned();
            let dn = match holder {
                Some(d) => d,
                None => any_datanode(&c).await?,
            };
            let mut extra = format!("&offset={offset}");
            if let Some(l) = length {
                extra.push_str(&format!("&length={l}"));
            }
            redirect(p, &dn, "OPEN", path, &user, clients.namenode(), &extra)
        }
        (Method::PUT, "CREATE") => {
            let overwrite = p.bool("overwrite", false)?;
            let block_size = p.u64("blocksize")?;
            let replication = p.replication()?;
            let permission = p.permission()?;
            let c = clients.get(&user).await?;
            let dn = any_datanode(&c).await?;
            let mut extra = format!("&overwrite={overwrite}");
            if let Some(b) = block_size {
                extra.push_str(&format!("&blocksize={b}"));
            }
            if let Some(r) = replication {
                extra.push_str(&format!("&replication={r}"));
            }
            if let Some(m) = permission {
                extra.push_str(&format!("&permission={m:o}"));
            }
            redirect(p, &dn, "CREATE", path, &user, clients.namenode(), &extra)
        }
        (Method::POST, "APPEND") => {
            let c = clients.get(&user).await?;
            require_file(&c, path).await?;
            let dn = any_datanode(&c).await?;
            redirect(p, &dn, "APPEND", path, &user, clients.namenode(), "")
        }
        (Method::PUT, "MKDIRS") => {
            let perm = p.permission()?.unwrap_or(0o755);
            let c = clients.get(&user).await?;
            c.mkdirs(path, perm, true).await?;
            Ok(boolean(true))
        }
        (Method::PUT, "RENAME") => {
            let dst = fs_path(p.required("destination")?)?;
            let c = clients.get(&user).await?;
            match c.rename(path, &dst).await {
                Ok(()) => Ok(boolean(true)),
                // As Hadoop's rename: false, not an error, when the source is missing or the
                // destination is taken.
                Err(tusk_client::ClientError::NotFound(_)) | Err(tusk_client::ClientError::AlreadyExists(_)) => {
                    Ok(boolean(false))
                }
                Err(e) => Err(e.into()),
            }
        }
        (Method::PUT, "SETREPLICATION") => {
            // Absent: Hadoop's dfs.replication default.
            let replication = p.replication()?.unwrap_or(3);
            let c = clients.get(&user).await?;
            Ok(boolean(c.set_replication(path, replication).await?))
        }
        (Method::PUT, "SETOWNER") => {
            let owner = p.get("owner");
            let group = p.get("group");
            if owner.is_none() && group.is_none() {
                return Err(RemoteException::illegal_argument("Both owner and group are empty."));
            }
            let c = clients.get(&user).await?;
            c.set_owner(path, owner, group).await?;
            Ok(empty_ok())
        }
        (Method::PUT, "SETPERMISSION") => {
            let perm = p.permission()?.unwrap_or(0o755);
            let c = clients.get(&user).await?;
            c.set_permission(path, perm).await?;
            Ok(empty_ok())
        }
        (Method::PUT, "SETTIMES") => {
            let mtime = p.time("modificationtime")?;
            let atime = p.time("accesstime")?;
            let c = clients.get(&user).await?;
            c.set_times(path, mtime, atime).await?;
            Ok(empty_ok())
        }
        (Method::DELETE, "DELETE") => {
            let recursive = p.bool("recursive", false)?;
            let c = clients.get(&user).await?;
            match c.delete(path, recursive).await {
                Ok(b) => Ok(boolean(b)),
                Err(tusk_client::ClientError::NotFound(_)) => Ok(boolean(false)),
                Err(e) => Err(e.into()),
            }
        }
        (Method::POST, "CONCAT") | (Method::POST, "TRUNCATE") => {
            // Parameters are checked as Hadoop does before saying what is missing.
            if op == "CONCAT" {
                p.required("sources")?;
            } else {
                p.u64("newlength")?.ok_or_else(|| {
                    RemoteException::illegal_argument("Required param newlength for op: TRUNCATE is null or empty")
                })?;
            }
            Err(RemoteException::unsupported(format!("{op} is not supported by Tusk's namenode yet")))
        }
        _ => Err(no_such_op(method, if op.is_empty() { "null" } else { op })),
    }
}

async fn require_file(c: &Client, path: &str) -> R<tusk_client::FileStatus> {
    match c.file_info(path).await? {
        None => Err(RemoteException::not_found(format!("File does not exist: {path}"))),
        Some(s) if s.file_type() == FileType::Directory => {
            Err(RemoteException::not_found(format!("Path is not a file: {path}")))
        }
        Some(s) => Ok(s),
    }
}

/// A live datanode with an HTTP server, picked at random.
async fn any_datanode(c: &Client) -> R<tusk_client::DatanodeInfo> {
    let live = c.datanode_report(DatanodeReportType::DatanodeReportLive).await?;
    let with_http: Vec<_> = live.into_iter().filter(|d| d.http_port != 0 && d.admin_state == 0).collect();
    if with_http.is_empty() {
        return Err(RemoteException::io("Failed to find datanode, suggest to check cluster health."));
    }
    let i = rand::random_range(0..with_http.len());
    Ok(with_http[i].clone())
}

/// 307 to the datanode (or, with `noredirect=true`, 200 and the Location in JSON).
fn redirect(
    p: &Params,
    dn: &tusk_client::DatanodeInfo,
    op: &str,
    path: &str,
    user: &str,
    namenode: &str,
    extra: &str,
) -> R<Response> {
    let host = if dn.ip_addr.is_empty() { &dn.hostname } else { &dn.ip_addr };
    let url = format!(
        "http://{host}:{}/webhdfs/v1{}?op={op}&user.name={}&namenoderpcaddress={namenode}{extra}",
        dn.http_port,
        crate::encode_path(path),
        crate::encode_query(user),
    );
    if p.bool("noredirect", false)? {
        return Ok(Json(json!({ "Location": url })).into_response());
    }
    Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, url)], "").into_response())
}
