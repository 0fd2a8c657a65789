//! One function per `tusk fs` command. Each takes parsed arguments, works path by path,
//! reports a failing path and goes on with the next, and returns the exit code.

use crate::args::{parse_args, ParsedArgs};
use crate::format::{self, StatView};
use crate::mode;
use crate::{Io, Shell, Target};
use tusk_client::{ClientError, FileStatus, FileType};

const ANY: usize = usize::MAX;

pub fn parse(name: &str, args: &[String]) -> Result<ParsedArgs, String> {
    match name {
        "ls" => parse_args(name, args, 0, ANY, &["d", "h", "R", "u", "C", "t", "S", "r", "q", "e"], &[]),
        "mkdir" => parse_args(name, args, 1, ANY, &["p"], &[]),
        "mv" => parse_args(name, args, 2, ANY, &[], &[]),
        "rm" => parse_args(name, args, 1, ANY, &["f", "r", "R", "skipTrash", "safely"], &[]),
        "rmdir" => parse_args(name, args, 1, ANY, &["-ignore-fail-on-non-empty"], &[]),
        "touchz" => parse_args(name, args, 1, ANY, &[], &[]),
        "stat" => parse_args(name, args, 1, ANY, &["R"], &[]),
        "test" => {
            let p = parse_args(name, args, 1, 1, &["d", "e", "f", "s", "z", "w", "r"], &[])?;
            match p.flags.len() {
                0 => Err("No test flag given".into()),
                1 => Ok(p),
                _ => Err("Only one test flag is allowed".into()),
            }
        }
        "count" => parse_args(name, args, 1, ANY, &["q", "h", "v", "u"], &[]),
        "chmod" | "chown" | "chgrp" => parse_args(name, args, 2, ANY, &["R"], &[]),
        "put" | "copyFromLocal" | "moveFromLocal" => parse_args(name, args, 1, ANY, &["f", "p", "l", "d"], &["t", "q"]),
        "appendToFile" => parse_args(name, args, 2, ANY, &["n"], &[]),
        "get" | "copyToLocal" => parse_args(name, args, 1, ANY, &["f", "p", "crc", "ignoreCrc"], &["t", "q"]),
        "cat" => parse_args(name, args, 1, ANY, &["ignoreCrc"], &[]),
        "head" => parse_args(name, args, 1, 1, &[], &[]),
        "tail" => parse_args(name, args, 1, 1, &["f"], &["s"]),
        "getmerge" => parse_args(name, args, 2, ANY, &["nl", "skip-empty-file"], &[]),
        "cp" => {
            // Hadoop's popPreserveOption: the first "-p..." before "--" is -p[topax].
            let mut rest = args.to_vec();
            let mut preserve = None;
            if let Some(i) = rest.iter().take_while(|a| a.as_str() != "--").position(|a| a.starts_with("-p")) {
                let letters = rest.remove(i)[2..].to_owned();
                if let Some(bad) = letters.chars().find(|c| !"topax".contains(*c)) {
                    return Err(format!("No enum constant for preserve attribute '{bad}'"));
                }
                preserve = Some(letters);
            }
            let mut p = parse_args(name, &rest, 2, ANY, &["f", "d"], &["t", "q"])?;
            if let Some(l) = preserve {
                p.values.insert("p".into(), l);
            }
            Ok(p)
        }
        "setrep" => parse_args(name, args, 2, ANY, &["R", "w"], &[]),
        "du" => parse_args(name, args, 0, ANY, &["h", "s", "v", "x"], &[]),
        "df" => parse_args(name, args, 0, ANY, &["h"], &[]),
        _ => Err("Unknown command".into()),
    }
}

pub async fn dispatch(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> Result<i32, String> {
    let code = match sh.name.as_str() {
        "ls" => ls(sh, p, io).await,
        "mkdir" => mkdir(sh, p, io).await,
        "mv" => mv(sh, p, io).await,
        "rm" => rm(sh, p, io).await,
        "rmdir" => rmdir(sh, p, io).await,
        "touchz" => touchz(sh, p, io).await,
        "stat" => stat(sh, p, io).await,
        "test" => return Ok(test(sh, p).await),
        "count" => count(sh, p, io).await,
        "chmod" | "chown" | "chgrp" => return change_attrs(sh, p, io).await,
        "put" | "copyFromLocal" | "moveFromLocal" => {
            crate::copy::put(sh, p, io).await;
            0
        }
        "appendToFile" => {
            crate::copy::append_to_file(sh, p, io).await;
            0
        }
        "get" | "copyToLocal" => {
            crate::copy::get(sh, p, io).await;
            0
        }
        "cp" => {
            crate::copy::cp(sh, p, io).await;
            0
        }
        "cat" => {
            crate::data::cat(sh, p, io).await;
            0
        }
        "head" => {
            crate::data::head(sh, p, io).await;
            0
        }
        "tail" => {
            crate::data::tail(sh, p, io).await?;
            0
        }
        "getmerge" => {
            crate::data::getmerge(sh, p, io).await;
            0
        }
        "setrep" => {
            crate::data::setrep(sh, p, io).await?;
            0
        }
        "du" => {
            crate::data::du(sh, p, io).await;
            0
        }
        "df" => {
            crate::data::df(sh, p, io).await;
            0
        }
        other => return Err(format!("Unknown command {other}")),
    };
    let _ = code;
    Ok(if sh.failed { 1 } else { 0 })
}

pub(crate) fn is_dir(st: &FileStatus) -> bool {
    st.file_type == FileType::Directory as i32
}

fn view(st: &FileStatus) -> StatView {
    StatView {
        is_dir: is_dir(st),
        length: st.length,
        replication: st.replication,
        block_size: st.block_size,
        mtime_ms: st.modification_time_ms,
        atime_ms: st.access_time_ms,
        permission: (st.permission & 0o7777) as u16,
        owner: st.owner.clone(),
        group: st.group.clone(),
    }
}

/// How a child is shown: Hadoop shows the children of `.` by their bare names.
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    if parent == "." {
        name.to_owned()
    } else if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Expands every operand; failures are reported and skipped.
pub(crate) async fn targets(sh: &mut Shell, operands: &[String], io: &mut Io<'_>) -> Vec<Target> {
    let mut out = Vec::new();
    for arg in operands {
        match sh.expand(arg).await {
            Ok(t) => out.extend(t),
            Err(e) => {
                let msg = Shell::path_error(arg, &e);
                sh.fail(io, msg);
            }
        }
    }
    out
}

/// Targets that exist, with their status.
pub(crate) async fn existing(sh: &mut Shell, operands: &[String], io: &mut Io<'_>) -> Vec<(Target, FileStatus)> {
    let mut out = Vec::new();
    for t in targets(sh, operands, io).await {
        match sh.client.file_info(&t.abs).await {
            Ok(Some(st)) => out.push((t, st)),
            Ok(None) => sh.fail(io, format!("`{}': No such file or directory", t.shown)),
            Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
        }
    }
    out
}

// ---- ls ----

async fn ls(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    let dirs_as_files = p.flags.contains("d");
    let human = p.flags.contains("h");
    let recursive = p.flags.contains("R");
    let use_atime = p.flags.contains("u");
    let operands = if p.operands.is_empty() { vec![".".to_string()] } else { p.operands.clone() };
    for (t, st) in existing(sh, &operands, io).await {
        if is_dir(&st) && !dirs_as_files {
            ls_dir(sh, &t.shown, &t.abs, human, recursive, use_atime, io).await;
        } else {
            print_ls(&[(view(&st), t.shown.clone())], human, use_atime, io);
        }
    }
    0
}

fn print_ls(entries: &[(StatView, String)], human: bool, use_atime: bool, io: &mut Io<'_>) {
    for line in format::format_ls_time(entries, human, use_atime, &chrono::Local) {
        let _ = writeln!(io.out, "{line}");
    }
}

/// Lists a directory; with `recursive`, each subdirectory's listing follows its own line,
/// as Hadoop's Ls does (column widths are per directory).
async fn ls_dir(
    sh: &mut Shell,
    shown: &str,
    abs: &str,
    human: bool,
    recursive: bool,
    use_atime: bool,
    io: &mut Io<'_>,
) {
    let mut stack: Vec<(String, String)> = vec![(shown.to_owned(), abs.to_owned())];
    // Depth-first, printing a directory's entries then descending in order: keep a stack
    // of pending (entries, index) frames.
    struct Frame {
        entries: Vec<(FileStatus, String, String)>,
        lines: Vec<String>,
        next: usize,
    }
    let mut frames: Vec<Frame> = Vec::new();
    let (s, a) = stack.pop().unwrap_or_default();
    match listing_frame(sh, &s, &a, human, use_atime, recursive, io).await {
        Some(f) => frames.push(Frame { entries: f.0, lines: f.1, next: 0 }),
        None => return,
    }
    while let Some(top) = frames.last_mut() {
        if top.next >= top.entries.len() {
            frames.pop();
            continue;
        }
        let i = top.next;
        top.next += 1;
        let _ = writeln!(io.out, "{}", top.lines[i]);
        let (st, cs, ca) = top.entries[i].clone();
        if recursive && is_dir(&st) {
            if let Some(f) = listing_frame(sh, &cs, &ca, human, use_atime, recursive, io).await {
                frames.push(Frame { entries: f.0, lines: f.1, next: 0 });
            }
        }
    }
}

type FrameData = (Vec<(FileStatus, String, String)>, Vec<String>);

async fn listing_frame(
    sh: &mut Shell,
    shown: &str,
    abs: &str,
    human: bool,
    use_atime: bool,
    recursive: bool,
    io: &mut Io<'_>,
) -> Option<FrameData> {
    match sh.client.list_all(abs).await {
        Ok((_, entries)) => {
            if !recursive && !entries.is_empty() {
                let _ = writeln!(io.out, "Found {} items", entries.len());
            }
            let rows: Vec<(FileStatus, String, String)> = entries
                .into_iter()
                .map(|e| (child_path(shown, &e.name), child_path(abs, &e.name), e))
                .map(|(s, a, e)| (e, s, a))
                .collect();
            let views: Vec<(StatView, String)> = rows.iter().map(|(e, s, _)| (view(e), s.clone())).collect();
            let lines = format::format_ls_time(&views, human, use_atime, &chrono::Local);
            Some((rows, lines))
        }
        Err(e) => {
            sh.fail(io, Shell::path_error(shown, &e));
            None
        }
    }
}

// ---- mkdir ----

async fn mkdir(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    let parents = p.flags.contains("p");
    for arg in &p.operands {
        let abs = sh.abs(arg);
        match sh.client.file_info(&abs).await {
            Ok(Some(st)) => {
                if !(parents && is_dir(&st)) {
                    let msg = if is_dir(&st) {
                        format!("`{arg}': File exists")
                    } else {
                        format!("`{arg}': Is not a directory")
                    };
                    sh.fail(io, msg);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                sh.fail(io, Shell::path_error(arg, &e));
                continue;
            }
        }
        match sh.client.mkdirs(&abs, 0o777, parents).await {
            Ok(()) => {}
            Err(ClientError::NotFound(_)) => sh.fail(io, format!("`{arg}': No such file or directory")),
            Err(e @ (ClientError::ParentNotDirectory(_) | ClientError::AlreadyExists(_))) => {
                let shown = if let ClientError::ParentNotDirectory(m) = &e { m.clone() } else { arg.clone() };
                sh.fail(io, format!("`{shown}': Is not a directory"));
            }
            Err(e) => sh.fail(io, Shell::path_error(arg, &e)),
        }
    }
    0
}

// ---- mv ----

async fn mv(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    let (srcs, dst) = p.operands.split_at(p.operands.len() - 1);
    let dst_arg = &dst[0];
    let dst_abs = sh.abs(dst_arg);
    let dst_stat = match sh.client.file_info(&dst_abs).await {
        Ok(s) => s,
        Err(e) => {
            sh.fail(io, Shell::path_error(dst_arg, &e));
            return 1;
        }
    };
    let dst_is_dir = dst_stat.as_ref().is_some_and(is_dir);
    if srcs.len() > 1 && !dst_is_dir {
        let msg = match dst_stat {
            None => format!("`{dst_arg}': No such file or directory"),
            Some(_) => format!("`{dst_arg}': Is not a directory"),
        };
        sh.fail(io, msg);
        return 1;
    }
    for (src, _st) in existing(sh, srcs, io).await {
        let name = src.abs.rsplit('/').next().unwrap_or("").to_owned();
        let (target_shown, target_abs) = if dst_is_dir {
            (child_path(dst_arg, &name), child_path(&dst_abs, &name))
        } else {
            (dst_arg.clone(), dst_abs.clone())
        };
        if target_abs == src.abs {
            sh.fail(io, format!("`{}' to `{}': are identical", src.shown, target_shown));
            continue;
        }
        if target_abs.starts_with(&format!("{}/", src.abs)) || src.abs == "/" {
            sh.fail(io, format!("`{}' to `{}': is a subdirectory of itself", src.shown, target_shown));
            continue;
        }
        match sh.client.rename(&src.abs, &target_abs).await {
            Ok(()) => {}
            Err(ClientError::AlreadyExists(_)) => sh.fail(io, format!("`{target_shown}': File exists")),
            Err(ClientError::NotFound(m)) if m.contains("destination") => {
                sh.fail(io, format!("`{target_shown}': No such file or directory"))
            }
            Err(e) => sh.fail(io, Shell::path_error(&src.shown, &e)),
        }
    }
    0
}

// ---- rm / rmdir ----

async fn rm(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    let force = p.flags.contains("f");
    let recursive = p.flags.contains("r") || p.flags.contains("R");
    for arg in &p.operands {
        let ts = match sh.expand(arg).await {
            Ok(t) => t,
            Err(ClientError::NotFound(_)) if force => continue,
            Err(e) => {
                sh.fail(io, Shell::path_error(arg, &e));
                continue;
            }
        };
        for t in ts {
            let st = match sh.client.file_info(&t.abs).await {
                Ok(Some(st)) => st,
                Ok(None) if force => continue,
                Ok(None) => {
                    sh.fail(io, format!("`{}': No such file or directory", t.shown));
                    continue;
                }
                Err(e) => {
                    sh.fail(io, Shell::path_error(&t.shown, &e));
                    continue;
                }
            };
            if is_dir(&st) && !recursive {
                sh.fail(io, format!("`{}': Is a directory", t.shown));
                continue;
            }
            match sh.client.delete(&t.abs, recursive).await {
                Ok(true) => {
                    let _ = writeln!(io.out, "Deleted {}", t.shown);
                }
                Ok(false) if force => {}
                Ok(false) => sh.fail(io, format!("`{}': No such file or directory", t.shown)),
                Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
            }
        }
    }
    0
}

async fn rmdir(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    let ignore_non_empty = p.flags.contains("-ignore-fail-on-non-empty");
    for (t, st) in existing(sh, &p.operands, io).await {
        if !is_dir(&st) {
            sh.fail(io, format!("`{}': Is not a directory", t.shown));
            continue;
        }
        match sh.client.delete(&t.abs, false).await {
            Ok(_) => {}
            Err(ClientError::NotEmpty(_)) if ignore_non_empty => {}
            Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
        }
    }
    0
}

// ---- touchz ----

async fn touchz(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    for arg in &p.operands {
        let abs = sh.abs(arg);
        match sh.client.file_info(&abs).await {
            Ok(Some(st)) if is_dir(&st) => {
                sh.fail(io, format!("`{arg}': Is a directory"));
                continue;
            }
            Ok(Some(st)) if st.length != 0 => {
                sh.fail(io, format!("`{arg}': Not a zero-length file"));
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                sh.fail(io, Shell::path_error(arg, &e));
                continue;
            }
        }
        match sh.client.create_empty(&abs, true).await {
            Ok(_) => {}
            Err(ClientError::NotFound(_)) => sh.fail(io, format!("`{arg}': No such file or directory")),
            Err(e) => sh.fail(io, Shell::path_error(arg, &e)),
        }
    }
    0
}

// ---- stat / test / count ----

async fn stat(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    let mut operands = p.operands.clone();
    let fmt = if operands.len() > 1 && operands[0].contains('%') { operands.remove(0) } else { "%y".to_string() };
    for (t, st) in existing(sh, &operands, io).await {
        let name = t.abs.rsplit('/').next().unwrap_or("").to_owned();
        let _ = writeln!(io.out, "{}", format::format_stat(&fmt, &view(&st), &name));
    }
    0
}

async fn test(sh: &mut Shell, p: &ParsedArgs) -> i32 {
    let flag = p.flags.iter().next().cloned().unwrap_or_default();
    let abs = sh.abs(&p.operands[0]);
    let st = match sh.client.file_info(&abs).await {
        Ok(Some(st)) => st,
        Ok(None) => return 1,
        Err(_) => return 1,
    };
    let yes = match flag.as_str() {
        "e" => true,
        "d" => is_dir(&st),
        "f" => !is_dir(&st),
        "s" => st.length > 0,
        "z" => st.length == 0,
        // Without the caller's groups at hand, -r/-w answer by the owner and other bits.
        "r" | "w" => {
            let bit = if flag == "r" { 4 } else { 2 };
            let perm = st.permission;
            if st.owner == sh.client.user() {
                perm >> 6 & bit != 0
            } else {
                perm & bit != 0
            }
        }
        _ => false,
    };
    if yes {
        0
    } else {
        1
    }
}

async fn count(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> i32 {
    let quotas = p.flags.contains("q") || p.flags.contains("u");
    let human = p.flags.contains("h");
    if p.flags.contains("v") {
        let _ = writeln!(io.out, "{}", if quotas { format::COUNT_QUOTA_HEADER } else { format::COUNT_HEADER });
    }
    for t in targets(sh, &p.operands, io).await {
        match sh.client.content_summary(&t.abs).await {
            Ok(s) => {
                let line = if quotas {
                    format::format_count_quota(
                        s.quota,
                        -1,
                        s.space_quota,
                        -1,
                        s.directory_count,
                        s.file_count,
                        s.length,
                        &t.shown,
                        human,
                    )
                } else {
                    format::format_count(s.directory_count, s.file_count, s.length, &t.shown, human)
                };
                let _ = writeln!(io.out, "{line}");
            }
            Err(e) => sh.fail(io, Shell::path_error(&t.shown, &e)),
        }
    }
    0
}

// ---- chmod / chown / chgrp ----

enum Change {
    Mode(mode::ModeSpec),
    Owner(Option<String>, Option<String>),
}

async fn change_attrs(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) -> Result<i32, String> {
    let recursive = p.flags.contains("R");
    let spec = &p.operands[0];
    let change = match sh.name.as_str() {
        "chmod" => Change::Mode(mode::parse_mode(spec)?),
        "chown" => {
            let (o, g) = mode::parse_owner_group(spec)?;
            Change::Owner(o, g)
        }
        _ => Change::Owner(None, Some(mode::parse_group(spec)?)),
    };
    for (t, st) in existing(sh, &p.operands[1..], io).await {
        let mut pending = vec![(t.shown.clone(), t.abs.clone(), st)];
        while let Some((shown, abs, st)) = pending.pop() {
            let res = match &change {
                Change::Mode(m) => {
                    let new = m.apply((st.permission & 0o7777) as u16, is_dir(&st));
                    sh.client.set_permission(&abs, u32::from(new)).await
                }
                Change::Owner(o, g) => sh.client.set_owner(&abs, o.as_deref(), g.as_deref()).await,
            };
            if let Err(e) = res {
                let what = match &change {
                    Change::Mode(_) => "changing permissions of",
                    Change::Owner(..) => "changing ownership of",
                };
                let msg = match e {
                    ClientError::NotFound(_) => Shell::path_error(&shown, &e),
                    e => format!("{what} '{shown}': {e}"),
                };
                sh.fail(io, msg);
                continue;
            }
            if recursive && is_dir(&st) {
                match sh.client.list_all(&abs).await {
                    Ok((_, entries)) => {
                        for e in entries.into_iter().rev() {
                            pending.push((child_path(&shown, &e.name), child_path(&abs, &e.name), e));
                        }
                    }
                    Err(e) => sh.fail(io, Shell::path_error(&shown, &e)),
                }
            }
        }
    }
    Ok(if sh.failed { 1 } else { 0 })
}
