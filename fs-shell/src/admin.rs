//! `tusk dfsadmin`: cluster administration, with `hdfs dfsadmin`'s commands and output.

use crate::{Io, EXIT_USAGE};
use tusk_client::Client;
use tusk_client::SafeModeAction;

const USAGE: &str =
    "Usage: tusk dfsadmin\n\t[-report]\n\t[-safemode <enter | leave | get | wait>]\n\t[-saveNamespace]\n\t[-help]";

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
        Report,
    }
    let cmd = match words.as_slice() {
        ["-safemode", "get"] => Cmd::SafeMode("get"),
        ["-safemode", "enter"] => Cmd::SafeMode("enter"),
        ["-safemode", "leave"] => Cmd::SafeMode("leave"),
        ["-safemode", "wait"] => Cmd::SafeMode("wait"),
        ["-saveNamespace"] => Cmd::Save,
        ["-report", ..] => Cmd::Report,
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
        Cmd::Report => report(&client, io).await,
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

async fn report(client: &Client, io: &mut Io<'_>) -> Result<(), tusk_client::ClientError> {
    let info = client.server_info().await?;
    let stats = client.fs_stats().await?;
    let _ = writeln!(
        io.out,
        "Configured Capacity: {c} ({ch})\nPresent Capacity: {c} ({ch})\nDFS Remaining: {r} ({rh})\nDFS Used: {u} ({uh})\n\
         Cluster ID: {cid}\nSafe mode: {sm}\nFiles and directories: {fd} ({f} files, {d} directories)\nBlocks: {b}\nLast transaction id: {tx}\n\
         \n-------------------------------------------------\nLive datanodes (0):\n\nDead datanodes (0):\n\n\
         (datanodes arrive with block storage, issue 3)",
        c = stats.capacity,
        ch = crate::format::human_bytes(stats.capacity) + " B",
        r = stats.remaining,
        rh = crate::format::human_bytes(stats.remaining) + " B",
        u = stats.used,
        uh = crate::format::human_bytes(stats.used) + " B",
        cid = info.cluster_id,
        sm = if info.safe_mode { "ON" } else { "OFF" },
        fd = stats.files + stats.directories,
        f = stats.files,
        d = stats.directories,
        b = stats.blocks,
        tx = stats.last_txid,
    );
    Ok(())
}
