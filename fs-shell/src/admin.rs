//! `tusk dfsadmin`: cluster administration, with `hdfs dfsadmin`'s commands and output.

use crate::report::{byte_desc, java_date, java_fixed};
use crate::{Io, EXIT_USAGE};
use chrono::TimeZone;
use tusk_client::SafeModeAction;
use tusk_client::{Client, DatanodeInfo, DatanodeReportType};

const USAGE: &str = "Usage: tusk dfsadmin\n\t[-report [-live] [-dead] [-decommissioning]]\n\t[-safemode <enter | leave | get | wait>]\n\t\
[-saveNamespace]\n\t[-refreshNodes]\n\t[-printTopology]\n\t[-shutdownDatanode <datanode_host:ipc_port> [upgrade]]\n\t[-help]";

pub async fn run(
    args: &[String],
    namenode: &str,
    user: &str,
    conf: &tusk_common::config::ClientConfig,
    io: &mut Io<'_>,
) -> i32 {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    enum Cmd {
        SafeMode(&'static str),
        Save,
        Report(bool, bool, bool),
        Topology,
        Refresh,
        Shutdown(String),
    }
    let cmd = match words.as_slice() {
        ["-safemode", "get"] => Cmd::SafeMode("get"),
        ["-safemode", "enter"] => Cmd::SafeMode("enter"),
        ["-safemode", "leave"] => Cmd::SafeMode("leave"),
        ["-safemode", "wait"] => Cmd::SafeMode("wait"),
        ["-saveNamespace"] => Cmd::Save,
        ["-printTopology"] => Cmd::Topology,
        ["-refreshNodes"] => Cmd::Refresh,
        ["-report", rest @ ..] if rest.iter().all(|a| matches!(*a, "-live" | "-dead" | "-decommissioning")) => {
            Cmd::Report(rest.contains(&"-live"), rest.contains(&"-dead"), rest.contains(&"-decommissioning"))
        }
        ["-shutdownDatanode", addr] | ["-shutdownDatanode", addr, "upgrade"] => Cmd::Shutdown((*addr).to_owned()),
        ["-help", ..] => {
            let _ = writeln!(io.out, "{USAGE}");
            return 0;
        }
        _ => {
            let first = words.first().copied().unwrap_or("");
            if !first.is_empty() {
                let _ = writeln!(io.err, "{first}: Unknown command or wrong arguments");
            }
            let _ = writeln!(io.err, "{USAGE}");
            return EXIT_USAGE;
        }
    };
    let client = match Client::connect(namenode, user, conf).await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(io.err, "dfsadmin: {e}");
            return 1;
        }
    };
    let result = match cmd {
        Cmd::SafeMode(action) => safe_mode(&client, action, io).await,
        Cmd::Save => client.save_namespace().await.map(|_| {
            let _ = writeln!(io.out, "Save namespace successful");
        }),
        Cmd::Report(live, dead, decom) => report(&client, [live, dead, decom], io).await,
        Cmd::Refresh => client.refresh_nodes().await.map(|_| {
            let _ = writeln!(io.out, "Refresh nodes successful");
        }),
        Cmd::Topology => client.datanode_report(DatanodeReportType::DatanodeReportAll).await.map(|nodes| {
            let _ = write!(io.out, "{}", topology(&nodes));
        }),
        Cmd::Shutdown(addr) => client.shutdown_datanode(&addr).await.map(|_| {
            let _ = writeln!(io.out, "Submitted a shutdown request to datanode {addr}");
        }),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let which = words.first().map(|w| w.trim_start_matches('-')).unwrap_or("dfsadmin");
            let _ = writeln!(io.err, "{which}: {e}");
            1
        }
    }
}

async fn safe_mode(client: &Client, action: &str, io: &mut Io<'_>) -> Result<(), tusk_client::ClientError> {
    let (on, _) = match action {
        "enter" => client.safe_mode(SafeModeAction::SafeModeEnter).await?,
        "leave" => client.safe_mode(SafeModeAction::SafeModeLeave).await?,
        "wait" => loop {
            let (on, tip) = client.safe_mode(SafeModeAction::SafeModeGet).await?;
            if !on {
                break (on, tip);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        },
        _ => client.safe_mode(SafeModeAction::SafeModeGet).await?,
    };
    let _ = writeln!(io.out, "Safe mode is {}", if on { "ON" } else { "OFF" });
    Ok(())
}

/// Hadoop's `AdminStates` names, as `-report` and `-printTopology` print them.
fn admin_state_name(d: &DatanodeInfo) -> &'static str {
    match tusk_client::AdminState::try_from(d.admin_state) {
        Ok(tusk_client::AdminState::DecommissionInProgress) => "Decommission in progress",
        Ok(tusk_client::AdminState::Decommissioned) => "Decommissioned",
        _ => "In Service",
    }
}

/// `hdfs dfsadmin -printTopology`: datanodes by rack, racks and nodes sorted, as DFSAdmin.
pub fn topology(nodes: &[DatanodeInfo]) -> String {
    let mut racks: std::collections::BTreeMap<&str, Vec<&DatanodeInfo>> = Default::default();
    for d in nodes {
        racks.entry(if d.rack.is_empty() { "/default-rack" } else { d.rack.as_str() }).or_default().push(d);
    }
    let mut s = String::new();
    for (rack, mut ds) in racks {
        ds.sort_by_key(|d| (d.ip_addr.clone(), d.xfer_port));
        s.push_str(&format!("Rack: {rack}\n"));
        for d in ds {
            let state = if !d.live { "Dead" } else { admin_state_name(d) };
            s.push_str(&format!("   {}:{} ({}) {state}\n", d.ip_addr, d.xfer_port, d.hostname));
        }
        s.push('\n');
    }
    s
}

/// `hdfs dfsadmin -report`: the cluster totals, then one block per datanode.
/// `which`: -live, -dead, -decommissioning; none set means all three sections.
async fn report(client: &Client, which: [bool; 3], io: &mut Io<'_>) -> Result<(), tusk_client::ClientError> {
    let info = client.server_info().await?;
    let stats = client.fs_stats().await?;
    let present = stats.used + stats.remaining;
    let mut s = String::new();
    if info.safe_mode {
        s.push_str("Safe mode is ON\n");
    }
    let pct = if present == 0 { 0.0 } else { stats.used as f64 / present as f64 * 100.0 };
    s.push_str(&format!(
        "Configured Capacity: {c} ({cd})\nPresent Capacity: {p} ({pd})\nDFS Remaining: {r} ({rd})\n\
         DFS Used: {u} ({ud})\nDFS Used%: {pct}%\nReplicated Blocks:\n\tUnder replicated blocks: {under}\n\
         \tBlocks with corrupt replicas: {corrupt}\n\tMissing blocks: {missing}\n\
         Last checkpoint: {ck} (txid {ck_txid})\nUn-checkpointed transactions: {pending}\n\n\
         -------------------------------------------------\n",
        c = stats.capacity,
        cd = byte_desc(stats.capacity),
        p = present,
        pd = byte_desc(present),
        r = stats.remaining,
        rd = byte_desc(stats.remaining),
        u = stats.used,
        ud = byte_desc(stats.used),
        pct = java_fixed(pct, 2),
        under = stats.under_replicated_blocks,
        corrupt = stats.corrupt_blocks,
        missing = stats.missing_blocks,
        ck = match chrono::Local.timestamp_millis_opt(stats.last_checkpoint_ms) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => java_date(&t),
            chrono::LocalResult::None => stats.last_checkpoint_ms.to_string(),
        },
        ck_txid = stats.image_txid,
        pending = stats.uncheckpointed_txns,
    ));
    let all = which.iter().all(|on| !on);
    let sections = [
        (DatanodeReportType::DatanodeReportLive, "Live"),
        (DatanodeReportType::DatanodeReportDead, "Dead"),
        (DatanodeReportType::DatanodeReportAll, "Decommissioning"),
    ];
    for (i, (kind, label)) in sections.into_iter().enumerate() {
        let on = which[i];
        if !(all || on) {
            continue;
        }
        let mut nodes = client.datanode_report(kind).await?;
        if label == "Decommissioning" {
            nodes.retain(|d| d.live && d.admin_state == tusk_client::AdminState::DecommissionInProgress as i32);
        }
        if !nodes.is_empty() || on {
            s.push_str(&format!("{label} datanodes ({}):\n\n", nodes.len()));
        }
        for d in &nodes {
            s.push_str(&datanode_report(d, &chrono::Local));
            s.push_str("\n\n");
        }
    }
    let _ = write!(io.out, "{s}");
    Ok(())
}

/// Hadoop's `DatanodeInfo.getDatanodeReport()` (ends with a newline).
pub fn datanode_report<Tz: chrono::TimeZone>(d: &DatanodeInfo, tz: &Tz) -> String {
    let c = d.capacity;
    let (u, r) = (d.dfs_used, d.remaining);
    let non_dfs = c.saturating_sub(u).saturating_sub(r);
    let percent = |n: u64, empty: f32| {
        let v = if c == 0 { empty } else { n as f32 * 100.0 / c as f32 };
        format!("{}%", java_fixed(f64::from(v), 2))
    };
    let mut s = format!("Name: {}:{} ({})\nHostname: {}\n", d.ip_addr, d.xfer_port, d.hostname, d.hostname);
    if !d.rack.is_empty() && d.rack != "/default-rack" {
        s.push_str(&format!("Rack: {}\n", d.rack));
    }
    let last = match tz.timestamp_millis_opt(d.last_update_ms) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => java_date(&t),
        chrono::LocalResult::None => d.last_update_ms.to_string(),
    };
    s.push_str(&format!(
        "Decommission Status : {}\nConfigured Capacity: {c} ({})\nDFS Used: {u} ({})\n\
         Non DFS Used: {non_dfs} ({})\nDFS Remaining: {r} ({})\nDFS Used%: {}\nDFS Remaining%: {}\n\
         Configured Cache Capacity: 0 (0 B)\nCache Used: 0 (0 B)\nCache Remaining: 0 (0 B)\n\
         Cache Used%: 100.00%\nCache Remaining%: 0.00%\nXceivers: {}\nLast contact: {last}\n\
         Num of Blocks: {}\n",
        match admin_state_name(d) {
            "In Service" => "Normal",
            other => other,
        },
        byte_desc(c),
        byte_desc(u),
        byte_desc(non_dfs),
        byte_desc(r),
        percent(u, 100.0),
        percent(r, 0.0),
        d.active_transfers,
        d.num_blocks,
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_datanode() {
        let d = DatanodeInfo {
            datanode_uuid: "u-1".into(),
            hostname: "localhost".into(),
            ip_addr: "127.0.0.1".into(),
            xfer_port: 9866,
            capacity: 499_963_174_912,
            dfs_used: 24_576,
            remaining: 450_760_462_336,
            active_transfers: 1,
            last_update_ms: 1_795_363_614_000,
            live: true,
            num_blocks: 7,
            ..Default::default()
        };
        assert_eq!(
            datanode_report(&d, &chrono::Utc),
            "Name: 127.0.0.1:9866 (localhost)\nHostname: localhost\nDecommission Status : Normal\n\
             Configured Capacity: 499963174912 (465.63 GB)\nDFS Used: 24576 (24 KB)\n\
             Non DFS Used: 49202688000 (45.82 GB)\nDFS Remaining: 450760462336 (419.80 GB)\n\
             DFS Used%: 0.00%\nDFS Remaining%: 90.16%\nConfigured Cache Capacity: 0 (0 B)\n\
             Cache Used: 0 (0 B)\nCache Remaining: 0 (0 B)\nCache Used%: 100.00%\nCache Remaining%: 0.00%\n\
             Xceivers: 1\nLast contact: Sun Nov 22 16:06:54 UTC 2026\nNum of Blocks: 7\n"
        );
    }
}
