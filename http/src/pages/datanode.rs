//! The datanode's page (`/`, `/datanode.html`): volumes, replicas, transfers, scanner.

use super::{bytes, page, time};
use axum::extract::State;
use axum::response::Html;
use maud::html;
use std::sync::Arc;
use tusk_datanode::DatanodeView;

const NAV: &[(&str, &str)] = &[("/", "Overview")];

pub async fn overview(State(dn): State<Arc<DatanodeView>>) -> Html<String> {
    let s = {
        let dn = Arc::clone(&dn);
        // Summing the replicas and stat-ing the volumes touches the disk.
        match tokio::task::spawn_blocking(move || dn.status()).await {
            Ok(s) => s,
            Err(e) => return page("datanode", "Overview", NAV, html! { p.bad { "status unavailable: " (e) } }),
        }
    };
    let sc = &s.scanner;
    let body = html! {
        h2 { "Datanode" }
        table.kv {
            tr { th { "Data transfer address" } td { (s.xfer_addr) } }
            tr { th { "Datanode UUID" } td { (s.uuid) } }
            tr { th { "Cluster ID" } td { (s.cluster_id) } }
            tr { th { "Namenode" } td { (s.namenode) } }
            tr { th { "Version" } td { (tusk_common::VERSION) } }
        }
        h2 { "Volumes" }
        table id="volumes" {
            tr { th { "Directory" } th { "State" } th { "Capacity" } th { "Available" } }
            @for v in &s.volumes {
                tr {
                    td { (v.dir.display()) }
                    td { @match &v.failure { Some(why) => span.bad { "Failed: " (why) }, None => span.ok { "In service" } } }
                    td.num { (bytes(v.capacity)) }
                    td.num { (bytes(v.available)) }
                }
            }
        }
        h2 { "Replicas and transfers" }
        table.kv {
            tr { th { "Finalized replicas" } td id="replicas" { (s.finalized) } }
            tr { th { "Replicas being written" } td id="rbw" { (s.being_written) } }
            tr { th { "Bytes held" } td { (bytes(s.bytes)) } }
            tr { th { "Active transfers" } td id="transfers" { (s.active_transfers) } }
        }
        h2 { "Block scanner" }
        table.kv {
            tr { th { "Period" } td { @if sc.period_secs == 0 { "disabled" } @else { (sc.period_secs / 3600) " h" } } }
            tr { th { "Rate limit" } td { @if sc.bytes_per_sec == 0 { "none" } @else { (bytes(sc.bytes_per_sec)) "/s" } } }
            tr { th { "Current pass started" } td { (time(sc.pass_start_ms)) } }
            tr { th { "Last pass ended" } td { (time(sc.last_pass_end_ms)) } }
            tr { th { "Passes since start" } td { (sc.stats.passes) } }
            tr { th { "Replicas scanned since start" } td id="scanned" { (sc.stats.scanned) } }
            tr { th { "Corrupt replicas found" } td { @if sc.stats.bad > 0 { span.bad { (sc.stats.bad) } } @else { "0" } } }
        }
    };
    page("datanode", "Overview", NAV, body)
}
