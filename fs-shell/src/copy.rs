//! `-put`/`-copyFromLocal`/`-moveFromLocal`, `-get`/`-copyToLocal` and `-cp`: Hadoop's
//! CommandWithDestination. Every file is streamed through a fixed buffer into
//! `<target>._COPYING_` and renamed to `<target>` once complete (unless `-d`), so a partial
//! copy never appears under the final name; a failed copy removes its `._COPYING_` file.

use crate::args::ParsedArgs;
use crate::commands::{child_path, is_dir};
use crate::{Io, Shell, Target};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tusk_client::{ClientError, FileReader, FileStatus};

/// Bytes moved per read: memory stays flat whatever the file's size.
pub const BUF_SIZE: usize = 1 << 20;
const COPYING: &str = "._COPYING_";

#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOpts {
    pub overwrite: bool,
    pub direct: bool,
    pub times: bool,
    pub perm: bool,
    pub owner: bool,
    pub move_src: bool,
}

/// A local path as Java's FileNotFoundException names it: absolute, no scheme.
fn local_abs(p: &Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

/// Hadoop's message for a local I/O failure on `shown` (`path` is the file touched).
pub fn local_error(shown: &str, path: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => format!("`{shown}': No such file or directory"),
        ErrorKind::AlreadyExists => format!("`{shown}': File exists"),
        ErrorKind::PermissionDenied => format!("{} (Permission denied)", local_abs(path)),
        ErrorKind::IsADirectory => format!("`{shown}': Is a directory"),
        ErrorKind::NotADirectory => format!("`{shown}': Is not a directory"),
        _ => {
            let msg = e.to_string();
            let msg = msg.split(" (os error").next().unwrap_or(&msg).to_owned();
            format!("{} ({msg})", local_abs(path))
        }
    }
}

/// `file:///x` and `file:/x` name local paths too.
pub fn local_path(arg: &str) -> PathBuf {
    let s = arg.strip_prefix("file://").or_else(|| arg.strip_prefix("file:")).unwrap_or(arg);
    PathBuf::from(if s.is_empty() { "." } else { s })
}

fn ms(t: std::io::Result<SystemTime>) -> i64 {
    t.ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as i64)
}

/// Where bytes come from.
enum Reader {
    File(tokio::fs::File, PathBuf),
    Stdin(tokio::io::Stdin),
    Dfs(Box<FileReader>),
}

impl Reader {
    async fn read(&mut self, buf: &mut [u8], shown: &str) -> Result<usize, String> {
        match self {
            Reader::File(f, p) => f.read(buf).await.map_err(|e| local_error(shown, p, &e)),
            Reader::Stdin(s) => s.read(buf).await.map_err(|e| format!("stdin: {e}")),
            Reader::Dfs(r) => r.read(buf).await.map_err(|e| e.to_string()),
        }
    }
}

/// A copy source: a local or DFS file or directory.
#[derive(Debug, Clone)]
struct Item {
    shown: String,
    local: Option<PathBuf>,
    abs: String,
    is_dir: bool,
    mtime_ms: i64,
    atime_ms: i64,
    perm: u32,
    owner: String,
    group: String,
}

impl Item {
    fn local(shown: String, path: PathBuf, md: &std::fs::Metadata) -> Item {
        use std::os::unix::fs::PermissionsExt;
        Item {
            shown,
            abs: String::new(),
            is_dir: md.is_dir(),
            mtime_ms: ms(md.modified()),
            atime_ms: ms(md.accessed()),
            perm: md.permissions().mode() & 0o7777,
            owner: String::new(),
            group: String::new(),
            local: Some(path),
        }
    }

    fn remote(shown: String, abs: String, st: &FileStatus) -> Item {
        Item {
            shown,
            abs,
            local: None,
            is_dir: is_dir(st),
            mtime_ms: st.modification_time_ms,
            atime_ms: st.access_time_ms,
            perm: st.permission & 0o7777,
            owner: st.owner.clone(),
            group: st.group.clone(),
        }
    }

    fn name(&self) -> String {
        match &self.local {
            Some(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            None => self.abs.rsplit('/').next().unwrap_or("").to_owned(),
        }
    }

    /// The children, in name order.
    async fn children(&self, sh: &Shell) -> Result<Vec<Item>, String> {
        if let Some(dir) = &self.local {
            let rd = std::fs::read_dir(dir).map_err(|e| local_error(&self.shown, dir, &e))?;
            let mut names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
            names.sort();
            let mut out = Vec::new();
            for n in names {
                let name = n.to_string_lossy().into_owned();
                let path = dir.join(&n);
                let shown = child_path(&self.shown, &name);
                match std::fs::metadata(&path) {
                    Ok(md) => out.push(Item::local(shown, path, &md)),
                    Err(e) => return Err(local_error(&shown, &path, &e)),
                }
            }
            return Ok(out);
        }
        let (_, entries) = sh.client.list_all(&self.abs).await.map_err(|e| Shell::path_error(&self.shown, &e))?;
        Ok(entries
            .iter()
            .map(|e| Item::remote(child_path(&self.shown, &e.name), child_path(&self.abs, &e.name), e))
            .collect())
    }

    async fn open(&self, sh: &Shell) -> Result<Reader, String> {
        match &self.local {
            Some(p) => tokio::fs::File::open(p)
                .await
                .map(|f| Reader::File(f, p.clone()))
                .map_err(|e| local_error(&self.shown, p, &e)),
            None => sh
                .client
                .open(&self.abs)
                .await
                .map(|r| Reader::Dfs(Box::new(r)))
                .map_err(|e| Shell::path_error(&self.shown, &e)),
        }
    }
}

fn child_target(t: &Target, name: &str) -> Target {
    Target { shown: child_path(&t.shown, name), abs: child_path(&t.abs, name) }
}

/// Streams `reader` into the DFS file `target` through `target._COPYING_`.
async fn write_remote(
    sh: &Shell,
    reader: &mut Reader,
    src_shown: &str,
    target: &Target,
    target_exists: bool,
    opts: CopyOpts,
) -> Result<(), String> {
    let tmp = if opts.direct {
        target.clone()
    } else {
        Target { shown: format!("{}{COPYING}", target.shown), abs: format!("{}{COPYING}", target.abs) }
    };
    let mut w = sh
        .client
        .create(&tmp.abs, true, sh.replication, sh.block_size)
        .await
        .map_err(|e| Shell::path_error(&tmp.shown, &e))?;
    let mut buf = vec![0u8; BUF_SIZE];
    let mut failure = None;
    loop {
        match reader.read(&mut buf, src_shown).await {
            Ok(0) => break,
            Ok(n) => {
                if let Err(e) = w.write(&buf[..n]).await {
                    failure = Some(e.to_string());
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let result = match failure {
        None => w.close().await.map(|_| ()).map_err(|e| e.to_string()),
        Some(e) => {
            drop(w);
            Err(e)
        }
    };
    if let Err(e) = result {
        if !opts.direct {
            let _ = sh.client.delete(&tmp.abs, false).await;
        }
        return Err(e);
    }
    if !opts.direct {
        if target_exists {
            sh.client.delete(&target.abs, false).await.map_err(|e| Shell::path_error(&target.shown, &e))?;
        }
        if let Err(e) = sh.client.rename(&tmp.abs, &target.abs).await {
            let _ = sh.client.delete(&tmp.abs, false).await;
            return Err(Shell::path_error(&target.shown, &e));
        }
    }
    Ok(())
}

async fn preserve_remote(sh: &Shell, item: &Item, target: &Target, opts: CopyOpts) -> Result<(), String> {
    let err = |e: ClientError| Shell::path_error(&target.shown, &e);
    if opts.times {
        sh.client.set_times(&target.abs, item.mtime_ms, item.atime_ms).await.map_err(err)?;
    }
    if opts.owner && item.local.is_none() {
        sh.client.set_owner(&target.abs, Some(&item.owner), Some(&item.group)).await.map_err(err)?;
    }
    if opts.perm {
        sh.client.set_permission(&target.abs, item.perm).await.map_err(err)?;
    }
    Ok(())
}

enum Work {
    Copy(Item, Target, bool),
    Finish(Item, Target, u64),
}

/// Copies `item` (a file or a whole tree) to the DFS path `target`.
async fn copy_to_remote(sh: &mut Shell, item: Item, target: Target, opts: CopyOpts, io: &mut Io<'_>) {
    let mut failures = 0u64;
    let mut work = vec![Work::Copy(item, target, true)];
    while let Some(w) = work.pop() {
        match w {
            Work::Copy(item, target, top) => {
                let st = match sh.client.file_info(&target.abs).await {
                    Ok(s) => s,
                    Err(e) => {
                        failures += 1;
                        sh.fail(io, Shell::path_error(&target.shown, &e));
                        continue;
                    }
                };
                if item.is_dir {
                    match &st {
                        Some(s) if !is_dir(s) => {
                            failures += 1;
                            sh.fail(io, format!("`{}': Is not a directory", target.shown));
                            continue;
                        }
                        Some(_) if top && opts.move_src => {
                            failures += 1;
                            sh.fail(io, format!("`{}': File exists", target.shown));
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            if let Err(e) = sh.client.mkdirs(&target.abs, 0o777, false).await {
                                failures += 1;
                                sh.fail(io, Shell::path_error(&target.shown, &e));
                                continue;
                            }
                        }
                    }
                    match item.children(sh).await {
                        Ok(children) => {
                            work.push(Work::Finish(item, target.clone(), failures));
                            for c in children.into_iter().rev() {
                                let t = child_target(&target, &c.name());
                                work.push(Work::Copy(c, t, false));
                            }
                        }
                        Err(msg) => {
                            failures += 1;
                            sh.fail(io, msg);
                        }
                    }
                    continue;
                }
                if st.as_ref().is_some_and(|s| is_dir(s) || !opts.overwrite) {
                    failures += 1;
                    sh.fail(io, format!("`{}': File exists", target.shown));
                    continue;
                }
                let res = async {
                    let mut r = item.open(sh).await?;
                    write_remote(sh, &mut r, &item.shown, &target, st.is_some(), opts).await?;
                    preserve_remote(sh, &item, &target, opts).await
                }
                .await;
                match res {
                    Ok(()) => {
                        if let (true, Some(p)) = (opts.move_src, &item.local) {
                            if let Err(e) = std::fs::remove_file(p) {
                                failures += 1;
                                sh.fail(io, local_error(&item.shown, p, &e));
                            }
                        }
                    }
                    Err(msg) => {
                        failures += 1;
                        sh.fail(io, msg);
                    }
                }
            }
            Work::Finish(item, target, before) => {
                if let Err(msg) = preserve_remote(sh, &item, &target, opts).await {
                    failures += 1;
                    sh.fail(io, msg);
                }
                if let (true, Some(p), true) = (opts.move_src, &item.local, failures == before) {
                    if let Err(e) = std::fs::remove_dir(p) {
                        failures += 1;
                        sh.fail(io, local_error(&item.shown, p, &e));
                    }
                }
            }
        }
    }
}

/// Splits `<src> ... <dst>`; with one operand the destination is the current directory.
fn split_dst(operands: &[String]) -> (&[String], String) {
    if operands.len() < 2 {
        (operands, ".".to_owned())
    } else {
        (&operands[..operands.len() - 1], operands[operands.len() - 1].clone())
    }
}

/// Hadoop's `PathData.representsDirectory`: "d/", ".", "..", "d/." and "d/..".
fn represents_dir(shown: &str) -> bool {
    let last = shown.rsplit('/').next().unwrap_or("");
    shown.ends_with('/') || last == "." || last == ".."
}

/// CommandWithDestination.processArguments for a DFS destination: Ok(dst is a directory).
async fn check_remote_dst(
    sh: &mut Shell,
    dst: &Target,
    nsrcs: usize,
    overwrite: bool,
    io: &mut Io<'_>,
) -> Option<bool> {
    let st = match sh.client.file_info(&dst.abs).await {
        Ok(s) => s,
        Err(e) => {
            sh.fail(io, Shell::path_error(&dst.shown, &e));
            return None;
        }
    };
    let not_found = format!("`{}': No such file or directory", dst.shown);
    match st {
        Some(s) if is_dir(&s) => Some(true),
        Some(_) if nsrcs > 1 => {
            sh.fail(io, format!("`{}': Is not a directory", dst.shown));
            None
        }
        Some(_) if !overwrite => {
            sh.fail(io, format!("`{}': File exists", dst.shown));
            None
        }
        Some(_) => Some(false),
        None if nsrcs > 1 || represents_dir(&dst.shown) => {
            sh.fail(io, not_found);
            None
        }
        None => {
            let parent = match dst.abs.rfind('/') {
                Some(0) | None => "/".to_owned(),
                Some(i) => dst.abs[..i].to_owned(),
            };
            match sh.client.file_info(&parent).await {
                Ok(Some(p)) if is_dir(&p) => Some(false),
                _ => {
                    sh.fail(io, not_found);
                    None
                }
            }
        }
    }
}

/// Expands a glob in the last component of a local path (the rest is taken literally); no
/// match leaves the pattern, which then fails as a missing file.
fn expand_local(arg: &str) -> Vec<String> {
    let (dir, pat) = match arg.rfind('/') {
        Some(i) => (&arg[..i + 1], &arg[i + 1..]),
        None => ("", arg),
    };
    if !crate::glob::has_glob(pat) || crate::glob::has_glob(dir) {
        return vec![arg.to_owned()];
    }
    let pats = crate::glob::expand_braces(pat);
    let mut names: Vec<String> = std::fs::read_dir(if dir.is_empty() { Path::new(".") } else { Path::new(dir) })
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| pats.iter().any(|p| crate::glob::matches(p, n)));
    names.sort();
    if names.is_empty() {
        return vec![arg.to_owned()];
    }
    names.into_iter().map(|n| format!("{dir}{n}")).collect()
}

/// `-put`, `-copyFromLocal`, `-moveFromLocal`.
pub async fn put(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    let opts = CopyOpts {
        overwrite: p.flags.contains("f"),
        direct: p.flags.contains("d"),
        times: p.flags.contains("p"),
        perm: p.flags.contains("p"),
        owner: false,
        move_src: sh.name == "moveFromLocal",
    };
    let (srcs, dst_arg) = split_dst(&p.operands);
    let dst = Target { shown: dst_arg.clone(), abs: sh.abs(&dst_arg) };
    if srcs.len() == 1 && srcs[0] == "-" {
        let target = match sh.client.file_info(&dst.abs).await {
            Ok(Some(s)) if is_dir(&s) => child_target(&dst, "-"),
            Ok(_) => dst.clone(),
            Err(e) => return sh.fail(io, Shell::path_error(&dst.shown, &e)),
        };
        let st = match sh.client.file_info(&target.abs).await {
            Ok(s) => s,
            Err(e) => return sh.fail(io, Shell::path_error(&target.shown, &e)),
        };
        if st.as_ref().is_some_and(|s| is_dir(s) || !opts.overwrite) {
            return sh.fail(io, format!("`{}': File exists", target.shown));
        }
        // Hadoop's create makes missing parents; only stdin gets here without a parent check.
        if let Some(parent) = target.abs.rfind('/').map(|i| &target.abs[..i]).filter(|p| !p.is_empty()) {
            if let Ok(None) = sh.client.file_info(parent).await {
                if let Err(e) = sh.client.mkdirs(parent, 0o777, true).await {
                    return sh.fail(io, Shell::path_error(&target.shown, &e));
                }
            }
        }
        let mut r = Reader::Stdin(tokio::io::stdin());
        if let Err(msg) = write_remote(sh, &mut r, "-", &target, st.is_some(), opts).await {
            sh.fail(io, msg);
        }
        return;
    }
    let mut items = Vec::new();
    for src in srcs.iter().flat_map(|s| expand_local(s)) {
        let path = local_path(&src);
        match std::fs::metadata(&path) {
            Ok(md) => items.push(Item::local(src, path, &md)),
            Err(e) => sh.fail(io, local_error(&src, &path, &e)),
        }
    }
    let n = items.len() + usize::from(sh.failed);
    if items.is_empty() {
        return;
    }
    let Some(dst_is_dir) = check_remote_dst(sh, &dst, n, opts.overwrite, io).await else { return };
    for item in items {
        let target = if dst_is_dir { child_target(&dst, &item.name()) } else { dst.clone() };
        copy_to_remote(sh, item, target, opts, io).await;
    }
}

/// `-cp`: DFS to DFS through this client.
pub async fn cp(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    let letters = p.values.get("p").cloned();
    let all = letters.as_deref() == Some("");
    let has = |c: char| all || letters.as_deref().is_some_and(|l| l.contains(c));
    let opts = CopyOpts {
        overwrite: p.flags.contains("f"),
        direct: p.flags.contains("d"),
        times: has('t'),
        perm: has('p'),
        owner: has('o'),
        move_src: false,
    };
    let (srcs, dst_arg) = split_dst(&p.operands);
    let dst = Target { shown: dst_arg.clone(), abs: sh.abs(&dst_arg) };
    let found = crate::commands::existing(sh, srcs, io).await;
    if found.is_empty() {
        return;
    }
    let n = found.len() + usize::from(sh.failed);
    let Some(dst_is_dir) = check_remote_dst(sh, &dst, n, opts.overwrite, io).await else { return };
    for (src, st) in found {
        let item = Item::remote(src.shown.clone(), src.abs.clone(), &st);
        let target = if dst_is_dir { child_target(&dst, &item.name()) } else { dst.clone() };
        if item.is_dir {
            if target.abs == item.abs {
                let q = format!("hdfs://{}{}", sh.client.namenode_addr(), target.abs);
                sh.fail(io, format!("`{}' to `{q}': are identical", item.shown));
                continue;
            }
            let prefix = if item.abs.ends_with('/') { item.abs.clone() } else { format!("{}/", item.abs) };
            if target.abs.starts_with(&prefix) {
                sh.fail(io, format!("`{}' to `{}': is a subdirectory of itself", item.shown, target.shown));
                continue;
            }
        }
        copy_to_remote(sh, item, target, opts, io).await;
    }
}

/// A local copy destination.
#[derive(Debug, Clone)]
struct LocalTarget {
    shown: String,
    path: PathBuf,
}

impl LocalTarget {
    fn child(&self, name: &str) -> LocalTarget {
        LocalTarget { shown: child_path(&self.shown, name), path: self.path.join(name) }
    }
}

fn preserve_local(item: &Item, path: &Path, opts: CopyOpts) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if opts.times {
        let t = |ms: i64| UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
        let times = std::fs::FileTimes::new().set_modified(t(item.mtime_ms)).set_accessed(t(item.atime_ms));
        std::fs::File::options().read(true).open(path)?.set_times(times)?;
    }
    if opts.perm {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(item.perm))?;
    }
    Ok(())
}

/// Streams the DFS file `item` to `target` through `target._COPYING_`.
async fn get_file(sh: &Shell, item: &Item, target: &LocalTarget, opts: CopyOpts) -> Result<(), String> {
    let mut reader = item.open(sh).await?;
    let mut tmp_os = target.path.clone().into_os_string();
    tmp_os.push(COPYING);
    let tmp = PathBuf::from(tmp_os);
    let tmp_shown = format!("{}{COPYING}", target.shown);
    let mut f = tokio::fs::File::create(&tmp).await.map_err(|e| local_error(&tmp_shown, &tmp, &e))?;
    let mut buf = vec![0u8; BUF_SIZE];
    let res: Result<(), String> = async {
        loop {
            let n = reader.read(&mut buf, &item.shown).await?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n]).await.map_err(|e| local_error(&tmp_shown, &tmp, &e))?;
        }
        f.flush().await.map_err(|e| local_error(&tmp_shown, &tmp, &e))?;
        drop(f);
        std::fs::rename(&tmp, &target.path).map_err(|e| local_error(&target.shown, &target.path, &e))
    }
    .await;
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    preserve_local(item, &target.path, opts).map_err(|e| local_error(&target.shown, &target.path, &e))
}

/// `-get`, `-copyToLocal`.
pub async fn get(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    let opts = CopyOpts {
        overwrite: p.flags.contains("f"),
        times: p.flags.contains("p"),
        perm: p.flags.contains("p"),
        ..CopyOpts::default()
    };
    let (srcs, dst_arg) = split_dst(&p.operands);
    let dst = LocalTarget { shown: dst_arg.clone(), path: local_path(&dst_arg) };
    let found = crate::commands::existing(sh, srcs, io).await;
    if found.is_empty() {
        return;
    }
    let nsrcs = found.len() + usize::from(sh.failed);
    let dst_md = std::fs::metadata(&dst.path);
    let dst_is_dir = dst_md.as_ref().is_ok_and(|m| m.is_dir());
    match &dst_md {
        Ok(m) if !m.is_dir() && nsrcs > 1 => return sh.fail(io, format!("`{}': Is not a directory", dst.shown)),
        Ok(m) if !m.is_dir() && !opts.overwrite => return sh.fail(io, format!("`{}': File exists", dst.shown)),
        Ok(_) => {}
        Err(_) => {
            let parent_ok = match dst.path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.is_dir(),
                _ => true,
            };
            if nsrcs > 1 || !parent_ok || dst_arg.ends_with('/') {
                return sh.fail(io, format!("`{}': No such file or directory", dst.shown));
            }
        }
    }
    for (src, st) in found {
        let item = Item::remote(src.shown.clone(), src.abs.clone(), &st);
        let target = if dst_is_dir { dst.child(&item.name()) } else { dst.clone() };
        let mut work = vec![(item, target)];
        while let Some((item, target)) = work.pop() {
            let existing = std::fs::metadata(&target.path);
            if item.is_dir {
                match existing {
                    Ok(m) if !m.is_dir() => {
                        sh.fail(io, format!("`{}': Is not a directory", target.shown));
                        continue;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        if let Err(e) = std::fs::create_dir(&target.path) {
                            sh.fail(io, local_error(&target.shown, &target.path, &e));
                            continue;
                        }
                    }
                }
                match item.children(sh).await {
                    Ok(children) => {
                        for c in children.into_iter().rev() {
                            let t = target.child(&c.name());
                            work.push((c, t));
                        }
                    }
                    Err(msg) => sh.fail(io, msg),
                }
                continue;
            }
            if existing.as_ref().is_ok_and(|m| m.is_dir() || !opts.overwrite) {
                sh.fail(io, format!("`{}': File exists", target.shown));
                continue;
            }
            if let Err(msg) = get_file(sh, &item, &target, opts).await {
                sh.fail(io, msg);
            }
        }
    }
}

/// `-appendToFile <localsrc> ... <dst>`: appends local files (`-` is stdin) to `dst`,
/// creating it when it does not exist (Hadoop's AppendToFile).
pub async fn append_to_file(sh: &mut Shell, p: &ParsedArgs, io: &mut Io<'_>) {
    let (srcs, dst_arg) = split_dst(&p.operands);
    let dst = Target { shown: dst_arg.clone(), abs: sh.abs(&dst_arg) };
    // Every source must be there before anything is appended.
    let mut readers = Vec::new();
    for src in srcs {
        if src == "-" {
            readers.push((src.clone(), None));
            continue;
        }
        let path = local_path(src);
        match std::fs::metadata(&path) {
            Ok(md) if md.is_dir() => return sh.fail(io, format!("`{src}': Is a directory")),
            Ok(_) => readers.push((src.clone(), Some(path))),
            Err(e) => return sh.fail(io, local_error(src, &path, &e)),
        }
    }
    let st = match sh.client.file_info(&dst.abs).await {
        Ok(s) => s,
        Err(e) => return sh.fail(io, Shell::path_error(&dst.shown, &e)),
    };
    if st.as_ref().is_some_and(is_dir) {
        return sh.fail(io, format!("`{}': Is a directory", dst.shown));
    }
    let opened = match st {
        Some(_) => sh.client.append(&dst.abs).await,
        None => sh.client.create(&dst.abs, false, sh.replication, sh.block_size).await,
    };
    let mut w = match opened {
        Ok(w) => w,
        Err(e) => return sh.fail(io, Shell::path_error(&dst.shown, &e)),
    };
    let mut buf = vec![0u8; BUF_SIZE];
    for (shown, path) in readers {
        let mut r = match path {
            None => Reader::Stdin(tokio::io::stdin()),
            Some(path) => match tokio::fs::File::open(&path).await {
                Ok(f) => Reader::File(f, path),
                Err(e) => return sh.fail(io, local_error(&shown, &path, &e)),
            },
        };
        loop {
            match r.read(&mut buf, &shown).await {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = w.write(&buf[..n]).await {
                        return sh.fail(io, Shell::path_error(&dst.shown, &e));
                    }
                }
                Err(e) => return sh.fail(io, e),
            }
        }
    }
    if let Err(e) = w.close().await {
        sh.fail(io, Shell::path_error(&dst.shown, &e));
    }
}
