//! The commands that read file data or report space: `-cat`, `-head`, `-tail`,
//! `-getmerge`, `-setrep`, `-du` and `-df`, as Hadoop's Display, Head, Tail, Merge,
//! SetReplication and FsUsage do.

use crate::args::ParsedArgs;
use crate::commands::{child_path, existing, is_dir};
use crate::copy::{local_error, local_path, BUF_SIZE};
use crate::{report, Io, Shell, Target};
use std::io::Write;
use std::time::Duration;
use tusk_client::FileReader;

/// Copies the reader from its position to the end into `out`; returns the bytes copied.
async fn pump(r: &mut FileReader, out: &mut (dyn Write + Send), limit: u64) -> Result<u64, String> {
    let mut buf = vec![0u8; BUF_SIZE.min(limit.max(1) as usize)];
    let mut done = 0u64;
    while done < limit {
        let want = buf.len().min((limit - done) as usize);
        let n = r.read(&mut buf[..want]).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        done += n as u64;
    }
    let _ = out.flush();
    Ok(done)
}

/// Opens a file target; a directory is an error, as in Hadoop's Display commands.
async fn open_file(sh: &mut Shell, t: &Target, st: &tusk_client::FileStatus, io: &mut Io<'_>) -> Option<FileReader> {
    if is_dir(st) {
        sh.fail(io, format!("`{}': Is a directory", t.shown));
        return None;
    }
    match sh.client.open(&t.abs).await {
        Ok(r) => Some(r),
        Err(e) => {
            sh.fail(io, Shell::path_error(&t.shown, &e));
            None
        }
    }
}

pub async fn cat(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    for (t, st) in existing(sh, &p.operands, io).await {
        let Some(mut r) = open_file(sh, &t, &st, io).await else { continue };
        if let Err(msg) = pump(&mut r, io.out, u64::MAX).await {
            sh.fail(io, msg);
        }
    }
}

/// `-head`: the first KiB.
pub async fn head(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    for (t, st) in existing(sh, &p.operands, io).await {
        let Some(mut r) = open_file(sh, &t, &st, io).await else { continue };
        if let Err(msg) = pump(&mut r, io.out, 1024).await {
            sh.fail(io, msg);
        }
    }
}

/// `-tail [-f] [-s ms]`: the last KiB, then (with -f) whatever is appended, until killed.
pub async fn tail(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> Result<(), String> {
    let follow = p.flags.contains("f");
    let delay_ms = match p.values.get("s").map(String::as_str) {
        None | Some("") => 1000,
        Some(v) => v.parse::<u64>().map_err(|_| format!("For input string: \"{v}\""))?,
    };
    for (t, st) in existing(sh, &p.operands, io).await {
        if is_dir(&st) {
            sh.fail(io, format!("`{}': Is a directory", t.shown));
            continue;
        }
        let mut offset = st.length.saturating_sub(1024);
        loop {
            match dump_from(sh, &t, offset, io).await {
                Ok(o) => offset = o,
                Err(msg) => {
                    sh.fail(io, msg);
                    break;
                }
            }
            if !follow {
                break;
            }
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
    }
    Ok(())
}

/// Tail's dumpFromOffset: prints from `offset` to the current end; returns the new offset.
async fn dump_from(sh: &Shell, t: &Target, offset: u64, io: &mut Io<'_>) -> Result<u64, String> {
    let len = match sh.client.file_info(&t.abs).await {
        Ok(Some(st)) => st.length,
        Ok(None) => return Err(format!("`{}': No such file or directory", t.shown)),
        Err(e) => return Err(Shell::path_error(&t.shown, &e)),
    };
    if offset >= len {
        return Ok(len.min(offset));
    }
    let mut r = sh.client.open(&t.abs).await.map_err(|e| Shell::path_error(&t.shown, &e))?;
    r.seek(offset).map_err(|e| e.to_string())?;
    let n = pump(&mut r, io.out, u64::MAX).await?;
    Ok(offset + n)
}

/// `-getmerge [-nl] [-skip-empty-file] <src> ... <localdst>`.
pub async fn getmerge(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    let nl = p.flags.contains("nl");
    let skip_empty = p.flags.contains("skip-empty-file");
    let (srcs, dst_arg) = p.operands.split_at(p.operands.len() - 1);
    let dst_arg = &dst_arg[0];
    let dst = local_path(dst_arg);
    if dst.is_dir() {
        return sh.fail(io, format!("`{dst_arg}': Is a directory"));
    }
    let mut files: Vec<(Target, u64)> = Vec::new();
    for (t, st) in existing(sh, srcs, io).await {
        if !is_dir(&st) {
            files.push((t, st.length));
            continue;
        }
        match sh.client.list_all(&t.abs).await {
            Ok((_, entries)) => files.extend(entries.iter().filter(|e| !is_dir(e)).map(|e| {
                (Target { shown: child_path(&t.shown, &e.name), abs: child_path(&t.abs, &e.name) }, e.length)
            })),
            Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
        }
    }
    if sh.failed {
        return;
    }
    let mut out = match std::fs::File::create(&dst) {
        Ok(f) => std::io::BufWriter::with_capacity(BUF_SIZE, f),
        Err(e) => return sh.fail(io, local_error(dst_arg, &dst, &e)),
    };
    for (t, len) in files {
        if len != 0 {
            let mut r = match sh.client.open(&t.abs).await {
                Ok(r) => r,
                Err(e) => return sh.fail(io, Shell::path_error(&t.shown, &e)),
            };
            if let Err(msg) = pump(&mut r, &mut out, u64::MAX).await {
                return sh.fail(io, msg);
            }
        } else if skip_empty {
            continue;
        }
        if nl {
            if let Err(e) = out.write_all(b"\n") {
                return sh.fail(io, local_error(dst_arg, &dst, &e));
            }
        }
    }
    if let Err(e) = out.flush() {
        sh.fail(io, local_error(dst_arg, &dst, &e));
    }
}

/// Parses setrep's replication as Java's `Short.parseShort`, then checks it is >= 1.
pub fn parse_replication(s: &str) -> Result<u16, (bool, String)> {
    let v: i64 = match s.strip_prefix('+').unwrap_or(s).parse::<i64>() {
        Ok(v) if !s.starts_with("+-") && !s.is_empty() => v,
        _ => return Err((true, format!("For input string: \"{s}\""))),
    };
    if !(i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&v) {
        return Err((true, format!("Value out of range. Value:\"{s}\" Radix:10")));
    }
    if v < 1 {
        return Err((false, "replication must be >= 1".into()));
    }
    Ok(v as u16)
}

/// `-setrep [-R] [-w] <rep> <path> ...`: directories are always recursed.
pub async fn setrep(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> Result<(), String> {
    let rep = parse_replication(&p.operands[0]).map_err(|(_, m)| m)?;
    let wait = p.flags.contains("w");
    let mut waiting: Vec<Target> = Vec::new();
    for (t, st) in existing(sh, &p.operands[1..], io).await {
        let mut stack = vec![(t, st)];
        while let Some((t, st)) = stack.pop() {
            if is_dir(&st) {
                match sh.client.list_all(&t.abs).await {
                    Ok((_, entries)) => {
                        for e in entries.into_iter().rev() {
                            let c = Target { shown: child_path(&t.shown, &e.name), abs: child_path(&t.abs, &e.name) };
                            stack.push((c, e));
                        }
                    }
                    Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
                }
                continue;
            }
            match sh.client.set_replication(&t.abs, u32::from(rep)).await {
                Ok(true) => {
                    let _ = writeln!(io.out, "Replication {rep} set: {}", t.shown);
                    if wait {
                        waiting.push(t);
                    }
                }
                Ok(false) => sh.fail(io, format!("Could not set replication for: {}", t.shown)),
                Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
            }
        }
    }
    for t in waiting {
        let _ = write!(io.out, "Waiting for {} ...", t.shown);
        let _ = io.out.flush();
        let mut warned = false;
        loop {
            let done = match sh.client.get_block_locations(&t.abs, 0, u64::MAX >> 1).await {
                Ok(resp) => {
                    let mut all = true;
                    for b in &resp.blocks {
                        let bad: Vec<&str> = b.corrupt_locations.iter().map(|d| d.datanode_uuid.as_str()).collect();
                        let n = b.locations.iter().filter(|d| !bad.contains(&d.datanode_uuid.as_str())).count();
                        if n != usize::from(rep) {
                            if !warned && n > usize::from(rep) {
                                let _ = writeln!(
                                    io.out,
                                    "\nWARNING: the waiting time may be long for DECREASING the number of replications."
                                );
                                warned = true;
                            }
                            all = false;
                            break;
                        }
                    }
                    all
                }
                Err(e) => {
                    let _ = writeln!(io.out);
                    sh.fail(io, Shell::path_error(&t.shown, &e));
                    break;
                }
            };
            if done {
                let _ = writeln!(io.out, " done");
                break;
            }
            let _ = write!(io.out, ".");
            let _ = io.out.flush();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(())
}

/// `-du [-s] [-h] [-v] [-x] <path> ...`.
pub async fn du(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    let human = p.flags.contains("h");
    let summary = p.flags.contains("s");
    let fmt = |n: u64| if human { crate::format::human_bytes(n) } else { n.to_string() };
    let operands = if p.operands.is_empty() { vec![".".to_string()] } else { p.operands.clone() };
    let mut items: Vec<Target> = Vec::new();
    for (t, st) in existing(sh, &operands, io).await {
        if summary || !is_dir(&st) {
            items.push(t);
            continue;
        }
        match sh.client.list_all(&t.abs).await {
            Ok((_, entries)) => items.extend(
                entries
                    .iter()
                    .map(|e| Target { shown: child_path(&t.shown, &e.name), abs: child_path(&t.abs, &e.name) }),
            ),
            Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
        }
    }
    let mut rows = Vec::new();
    for t in items {
        match sh.client.content_summary(&t.abs).await {
            Ok(s) => rows.push((fmt(s.length), fmt(s.space_consumed), t.shown)),
            Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
        }
    }
    for line in report::format_du(&rows, p.flags.contains("v")) {
        let _ = writeln!(io.out, "{line}");
    }
}

/// `-df [-h] [<path> ...]`.
pub async fn df(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    let operands = if p.operands.is_empty() { vec!["/".to_string()] } else { p.operands.clone() };
    let n = existing(sh, &operands, io).await.len();
    if n == 0 {
        return;
    }
    let stats = match sh.client.fs_stats().await {
        Ok(s) => s,
        Err(e) => return sh.fail(io, e.to_string()),
    };
    let uri = format!("hdfs://{}", sh.client.namenode_addr());
    for line in report::format_df(&uri, stats.capacity, stats.used, stats.remaining, n, p.flags.contains("h")) {
        let _ = writeln!(io.out, "{line}");
    }
}
