//! The namenode's pages: overview (`/`, `/dfshealth.html`), datanodes, file browser.

use super::{bytes, duration, page, time};
use crate::webhdfs::Clients;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::{html, Markup};
use std::collections::HashMap;
use std::sync::Arc;
use tusk_client::FileType;
use tusk_namenode::Namesystem;

pub struct NnWeb {
    pub fsn: Arc<Namesystem>,
    pub clients: Arc<Clients>,
    pub rpc_address: String,
}

const NAV: &[(&str, &str)] = &[("/", "Overview"), ("/datanodes", "Datanodes"), ("/explorer", "Browse the file system")];

pub async fn overview(State(web): State<Arc<NnWeb>>) -> Html<String> {
    let fsn = &web.fsn;
    let stats = fsn.cluster_stats();
    let counts = fsn.counts();
    let (safe_on, safe_msg) = fsn
        .safe_mode(&fsn.caller(fsn.superuser()), tusk_namenode::namesystem::SafeModeAction::Get)
        .unwrap_or((false, String::new()));
    let nodes = fsn.datanode_report(None);
    let decommissioning = nodes.iter().filter(|d| d.live && d.admin_state == 1).count();
    let decommissioned = nodes.iter().filter(|d| d.admin_state == 2).count();
    let (ck_txid, ck_ms) = fsn.last_checkpoint();
    let last_txid = fsn.last_txid();
    let used_pct = if stats.capacity == 0 { 0.0 } else { stats.used as f64 * 100.0 / stats.capacity as f64 };
    let b = &stats.blocks;
    let body = html! {
        h2 { "Overview" }
        table.kv {
            tr { th { "Namenode RPC" } td { (web.rpc_address) } }
            tr { th { "Started" } td { (time(fsn.start_time_ms)) } }
            tr { th { "Version" } td { (tusk_common::VERSION) } }
            tr { th { "Cluster ID" } td { (fsn.cluster_id()) } }
            tr { th { "Safe mode" } td {
                @if safe_on { span.warn id="safemode" { "ON" } " " (safe_msg) } @else { span.ok id="safemode" { "OFF" } }
            } }
        }
        h2 { "Summary" }
        table.kv {
            tr { th { "Files and directories" } td id="fs-objects" { (counts.files) " files, " (counts.dirs) " directories, " (counts.blocks) " blocks = " (counts.files + counts.dirs + counts.blocks) " total" } }
            tr { th { "Configured capacity" } td { (bytes(stats.capacity)) } }
            tr { th { "DFS used" } td { (bytes(stats.used)) " (" (format!("{used_pct:.2}")) "%)" } }
            tr { th { "DFS remaining" } td { (bytes(stats.remaining)) } }
            tr { th { a href="/datanodes" { "Live nodes" } } td id="live-nodes" { (stats.live) } }
            tr { th { a href="/datanodes" { "Dead nodes" } } td id="dead-nodes" {
                @if stats.dead > 0 { span.bad { (stats.dead) } } @else { "0" }
            } }
            tr { th { "Decommissioning nodes" } td id="decommissioning-nodes" { (decommissioning) } }
            tr { th { "Decommissioned nodes" } td { (decommissioned) } }
            tr { th { "Under-replicated blocks" } td id="under-replicated" { (b.under_replicated) } }
            tr { th { "Missing blocks" } td id="missing-blocks" {
                @if b.missing > 0 { span.bad { (b.missing) } } @else { "0" }
            } }
            tr { th { "Corrupt blocks" } td id="corrupt-blocks" {
                @if b.corrupt > 0 { span.bad { (b.corrupt) } } @else { "0" }
            } }
        }
        h2 { "Namenode journal status" }
        table.kv {
            tr { th { "Last checkpoint" } td { (time(ck_ms)) " (image at txid " (ck_txid) ")" } }
            tr { th { "Last transaction id" } td { (last_txid) } }
            tr { th { "Transactions since the last checkpoint" } td id="uncheckpointed" { (last_txid.saturating_sub(ck_txid)) } }
        }
    };
    page("namenode", "Overview", NAV, body)
}

pub async fn datanodes(State(web): State<Arc<NnWeb>>) -> Html<String> {
    let mut nodes = web.fsn.datanode_report(None);
    nodes.sort_by(|a, b| (!a.live, &a.ip_addr, a.xfer_port).cmp(&(!b.live, &b.ip_addr, b.xfer_port)));
    let now = tusk_common::now_ms();
    let live = nodes.iter().filter(|d| d.live).count();
    let body = html! {
        p { (live) " live, " (nodes.len() - live) " dead" }
        table id="datanodes" {
            tr { th { "Node" } th { "Host" } th { "Rack" } th { "State" } th { "Last contact" } th { "Capacity" } th { "Used" } th { "Remaining" } th { "Blocks" } th { "Transfers" } }
            @for d in &nodes {
                tr {
                    td { @if d.http_port != 0 { a href=(format!("http://{}:{}/", d.ip_addr, d.http_port)) { (d.ip_addr) ":" (d.xfer_port) } } @else { (d.ip_addr) ":" (d.xfer_port) } }
                    td { (d.hostname) }
                    td { (if d.rack.is_empty() { "/default-rack" } else { &d.rack }) }
                    td { @if !d.live { span.bad { "Dead" } } @else if d.admin_state == 1 { span.warn { "Decommissioning" } } @else if d.admin_state == 2 { "Decommissioned" } @else { span.ok { "In service" } } }
                    td { (duration(now - d.last_update_ms)) " ago" }
                    td.num { (bytes(d.capacity)) }
                    td.num { (bytes(d.dfs_used)) }
                    td.num { (bytes(d.remaining)) }
                    td.num { (d.num_blocks) }
                    td.num { (d.active_transfers) }
                }
            }
        }
    };
    page("namenode", "Datanodes", NAV, body)
}

fn crumbs(path: &str) -> Markup {
    let mut acc = String::new();
    html! {
        a href="/explorer?path=/" { "/" }
        @for part in path.split('/').filter(|p| !p.is_empty()) {
            ({ acc.push('/'); acc.push_str(part); "" })
            a href=(format!("/explorer?path={}", crate::encode_query(&acc))) { (part) } "/"
        }
    }
}

/// The file browser: a directory's entries, or a file's blocks with their locations and a
/// download link (WebHDFS OPEN, redirected to a datanode). Reads as `user.name` (dr.who).
pub async fn explorer(State(web): State<Arc<NnWeb>>, Query(q): Query<HashMap<String, String>>) -> Html<String> {
    let path = q.get("path").map(String::as_str).unwrap_or("/");
    let user = q.get("user.name").map(String::as_str).unwrap_or("dr.who");
    let body = match explore(&web, path, user).await {
        Ok(m) => m,
        Err(e) => html! { p { "Path: " (crumbs(path)) } p.bad { (e.exception) ": " (e.message) } },
    };
    page("namenode", "Browse the file system", NAV, body)
}

async fn explore(web: &NnWeb, raw: &str, user: &str) -> Result<Markup, crate::remote::RemoteException> {
    let path = crate::params::fs_path(raw)?;
    let c = web.clients.get(user).await?;
    let status = c
        .file_info(&path)
        .await?
        .ok_or_else(|| crate::remote::RemoteException::not_found(format!("File does not exist: {path}")))?;
    if status.file_type() == FileType::Directory {
        let (_, entries) = c.list_all(&path).await?;
        let base = if path == "/" { String::new() } else { path.clone() };
        Ok(html! {
            p { "Path: " (crumbs(&path)) " — " (entries.len()) " entries" }
            table id="listing" {
                tr { th { "Permission" } th { "Owner" } th { "Group" } th { "Size" } th { "Last modified" } th { "Replication" } th { "Block size" } th { "Name" } }
                @for e in &entries {
                    @let child = format!("{base}/{}", e.name);
                    @let dir = e.file_type() == FileType::Directory;
                    tr {
                        td { (tusk_fs_shell::format::permission_string(dir, (e.permission & 0o7777) as u16)) }
                        td { (e.owner) } td { (e.group) }
                        td.num { @if dir { "" } @else { (bytes(e.length)) } }
                        td { (time(e.modification_time_ms)) }
                        td.num { @if !dir { (e.replication) } }
                        td.num { @if !dir { (bytes(e.block_size)) } }
                        td { a href=(format!("/explorer?path={}", crate::encode_query(&child))) { (e.name) @if dir { "/" } } }
                    }
                }
            }
        })
    } else {
        let locs = c.get_block_locations(&path, 0, status.length.max(1)).await?;
        let download =
            format!("/webhdfs/v1{}?op=OPEN&user.name={}", crate::encode_path(&path), crate::encode_query(user));
        Ok(html! {
            p { "Path: " (crumbs(&path)) }
            table.kv {
                tr { th { "Size" } td { (status.length) " bytes (" (bytes(status.length)) ")" } }
                tr { th { "Owner / group / permission" } td { (status.owner) " / " (status.group) " / " (rwx(status.permission)) } }
                tr { th { "Replication / block size" } td { (status.replication) " / " (bytes(status.block_size)) } }
                tr { th { "Modified" } td { (time(status.modification_time_ms)) } }
                tr { th { "Download" } td { a href=(download) { "Download" } } }
            }
            h2 { "Blocks" }
            table id="blocks" {
                tr { th { "Block" } th { "Offset" } th { "Length" } th { "Generation stamp" } th { "Locations" } }
                @for b in &locs.blocks {
                    @let e = b.block.unwrap_or_default();
                    tr {
                        td { "blk_" (e.block_id) } td.num { (b.offset) } td.num { (e.num_bytes) } td.num { (e.generation_stamp) }
                        td { @for (i, d) in b.locations.iter().enumerate() { @if i > 0 { ", " } (d.ip_addr) ":" (d.xfer_port) } }
                    }
                }
            }
        })
    }
}

/// `rwxr-xr-x` (sticky as t/T), as `tusk fs -ls` prints it.
fn rwx(mode: u32) -> String {
    tusk_fs_shell::format::permission_string(false, (mode & 0o7777) as u16)[1..].to_owned()
}
