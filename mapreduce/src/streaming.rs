//! Streaming jobs (Hadoop Streaming's semantics): the mapper and the reducer are commands
//! run with `sh -c` in the attempt's working directory (where the job's `-file`s are
//! copied). The mapper gets the split's lines on stdin; each stdout line is a record, the
//! key before the first tab (the whole line when there is none). The reducer gets its
//! partition as sorted `key<TAB>value` lines and its stdout lines are the output. A non-zero
//! exit fails the attempt; stderr lines `reporter:counter:GROUP,NAME,N` add to the job's
//! counters, `reporter:status:MESSAGE` becomes the attempt's status (sent with the
//! tracker's heartbeats, shown by `tusk job history`), other lines go to the tracker's log.
//!
//! A `-combiner` command runs over each partition of a map's sorted output, sorted
//! `key<TAB>value` lines in, combined lines out.
//!
//! Job settings: `stream.map.command`, `stream.reduce.command`, `stream.combine.command`,
//! `stream.files` (DFS paths, comma-separated), `stream.env` (`K=V` pairs, comma-separated).

use crate::lines::LineReader;
use crate::mapout::MapOutput;
use crate::task::{self, Counters, Status, TaskError};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tusk_client::Client;
use tusk_proto::mapreduce::{JobSpec, TaskAssignment};

pub const MAPPER: &str = "streaming";

const WRITE_CHUNK: usize = 1 << 20;

fn setting<'a>(spec: &'a JobSpec, key: &str) -> &'a str {
    spec.settings.get(key).map(String::as_str).unwrap_or("")
}

/// The attempt's working directory, with the job's files copied in. A tracker fetches each
/// job file from the DFS once per job (into `<local>/<job>/files`, as Hadoop's distributed
/// cache does) and copies it into every attempt's directory from there.
async fn workdir(client: &Client, local: &Path, a: &TaskAssignment, spec: &JobSpec) -> Result<PathBuf, String> {
    let dir = local.join(&a.job_id).join(format!("{}.work", a.attempt_id));
    tokio::fs::create_dir_all(&dir).await.map_err(|e| format!("{}: {e}", dir.display()))?;
    let cache = local.join(&a.job_id).join("files");
    for f in setting(spec, "stream.files").split(',').filter(|f| !f.is_empty()) {
        let name = f.rsplit('/').next().unwrap_or(f);
        let cached = cache.join(name);
        if !tokio::fs::try_exists(&cached).await.unwrap_or(false) {
            let mut r = client.open(f).await.map_err(|e| format!("job file {f}: {e}"))?;
            let data = r.read_to_end().await.map_err(|e| format!("job file {f}: {e}"))?;
            // Attempts side by side may fetch it at once: each writes its own copy and
            // renames it into place.
            tokio::fs::create_dir_all(&cache).await.map_err(|e| format!("{}: {e}", cache.display()))?;
            let tmp = cache.join(format!(".{name}.{}", a.attempt_id));
            tokio::fs::write(&tmp, &data).await.map_err(|e| format!("{}: {e}", tmp.display()))?;
            tokio::fs::rename(&tmp, &cached).await.map_err(|e| format!("{}: {e}", cached.display()))?;
        }
        let path = dir.join(name);
        tokio::fs::copy(&cached, &path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).await;
    }
    Ok(dir)
}

fn spawn(cmd: &str, dir: &Path, spec: &JobSpec, a: &TaskAssignment) -> Result<tokio::process::Child, String> {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd).current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.kill_on_drop(true);
    // What Hadoop Streaming tells its commands (configuration names with '.' -> '_').
    c.env("mapreduce_job_id", &a.job_id).env("mapreduce_task_attempt_id", &a.attempt_id);
    c.env("mapreduce_task_partition", a.index.to_string());
    if let Some(split) = &a.split {
        c.env("mapreduce_map_input_file", &split.path).env("mapreduce_map_input_start", split.start.to_string());
    }
    for kv in setting(spec, "stream.env").split(',').filter(|s| !s.is_empty()) {
        if let Some((k, v)) = kv.split_once('=') {
            c.env(k, v);
        }
    }
    c.spawn().map_err(|e| format!("Cannot run program \"{cmd}\": {e}"))
}

/// A started command: its pipes, and the task watching its stderr.
struct Started {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    errs: tokio::task::JoinHandle<(Counters, String)>,
}

fn start(cmd: &str, dir: &Path, spec: &JobSpec, a: &TaskAssignment, status: &Status) -> Result<Started, String> {
    let mut child = spawn(cmd, dir, spec, a)?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("streaming command without pipes".into());
    };
    let errs = tokio::spawn(watch_stderr(stderr, a.attempt_id.clone(), status.clone()));
    Ok(Started { child, stdin, stdout, errs })
}

/// Reads stderr: counters into `counters`, status messages into `status`, the rest logged;
/// returns the last plain line.
async fn watch_stderr(err: tokio::process::ChildStderr, attempt: String, status: Status) -> (Counters, String) {
    let mut counters = Counters::new();
    let mut last = String::new();
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(c) = line.strip_prefix("reporter:counter:") {
            let mut parts = c.splitn(3, ',');
            if let (Some(g), Some(n), Some(v)) = (parts.next(), parts.next(), parts.next()) {
                if let Ok(v) = v.trim().parse::<u64>() {
                    *counters.entry(format!("{g}.{n}")).or_default() += v;
                    continue;
                }
            }
        }
        if let Some(msg) = line.strip_prefix("reporter:status:") {
            *status.lock() = msg.trim().to_owned();
            continue;
        }
        tracing::info!(%attempt, "stderr: {line}");
        last = line;
    }
    (counters, last)
}

fn split_record(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b'\t') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, b""),
    }
}

/// Copies a command's stdout lines to a DFS file (a missing final newline added); returns
/// the number of lines.
async fn copy_lines(
    out: &mut BufReader<tokio::process::ChildStdout>,
    w: &mut tusk_client::FileWriter,
) -> Result<u64, String> {
    let (mut line, mut buf, mut records) = (Vec::new(), Vec::with_capacity(WRITE_CHUNK), 0u64);
    while out.read_until(b'\n', &mut line).await.map_err(|e| e.to_string())? > 0 {
        records += 1;
        buf.extend_from_slice(&line);
        if line.last() != Some(&b'\n') {
            buf.push(b'\n');
        }
        line.clear();
        if buf.len() >= WRITE_CHUNK {
            w.write(&buf).await.map_err(|e| e.to_string())?;
            buf.clear();
        }
    }
    w.write(&buf).await.map_err(|e| e.to_string())?;
    Ok(records)
}

async fn finish(
    child: &mut tokio::process::Child,
    stderr: tokio::task::JoinHandle<(Counters, String)>,
    cmd: &str,
    counters: &mut Counters,
) -> Result<(), TaskError> {
    let status = child.wait().await.map_err(|e| format!("{cmd}: {e}"))?;
    let (c, last) = stderr.await.unwrap_or_default();
    for (k, v) in c {
        *counters.entry(k).or_default() += v;
    }
    if !status.success() {
        let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        let message = format!("streaming command \"{cmd}\" failed with exit code {code}: {last}");
        // The shell's "command not found" (127) and "cannot execute" (126) will not go away
        // on another attempt: the job fails at once.
        let fatal = matches!(status.code(), Some(126 | 127));
        return Err(TaskError { message, fatal, ..Default::default() });
    }
    Ok(())
}

/// What the feeder of a streaming map saw.
#[derive(Default)]
struct Fed {
    records: u64,
    skipped: u64,
    /// Skip mode: the last record the command read (its number in the split, its offset).
    last_read: Option<(u64, u64)>,
}

/// Feeds the split's lines to the command, in 1 MiB writes.
async fn feed(mut lines: LineReader, mut stdin: tokio::process::ChildStdin) -> Result<Fed, String> {
    let mut fed = Fed::default();
    let mut buf = Vec::with_capacity(WRITE_CHUNK);
    while let Some(line) = lines.next().await.map_err(|e| e.to_string())? {
        fed.records += 1;
        buf.extend_from_slice(&line);
        buf.push(b'\n');
        if buf.len() >= WRITE_CHUNK {
            if stdin.write_all(&buf).await.is_err() {
                return Ok(fed); // the command stopped reading; its exit status tells
            }
            buf.clear();
        }
    }
    let _ = stdin.write_all(&buf).await;
    Ok(fed)
}

/// Skip mode: feeds one line at a time, leaving out the known bad records, and waits until
/// the command has read each (the pipe is empty again) before the next, so that when the
/// command dies the record it died on is known: the last one it read.
async fn feed_one_by_one(
    mut lines: LineReader,
    mut stdin: tokio::process::ChildStdin,
    skip: Vec<u64>,
    output_done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Fed, String> {
    use std::sync::atomic::Ordering;
    let mut fed = Fed::default();
    let mut index = 0u64;
    loop {
        let offset = lines.position();
        let Some(mut line) = lines.next().await.map_err(|e| e.to_string())? else { break };
        let i = index;
        index += 1;
        if skip.contains(&i) {
            fed.skipped += 1;
            continue;
        }
        fed.records += 1;
        line.push(b'\n');
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
        let mut wait = std::time::Duration::from_micros(20);
        loop {
            match rustix::io::ioctl_fionread(&stdin) {
                Ok(0) => {
                    fed.last_read = Some((i, offset));
                    break;
                }
                Ok(_) if !output_done.load(Ordering::Acquire) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_millis(5));
                }
                // The command ended without reading it, or the pipe cannot say.
                _ => return Ok(fed),
            }
        }
    }
    Ok(fed)
}

/// A streaming map attempt.
pub async fn run_map(
    client: &Client,
    local: &Path,
    a: &TaskAssignment,
    status: &Status,
) -> Result<Counters, TaskError> {
    let spec = a.spec.as_ref().ok_or("map task without a job")?;
    let split = a.split.as_ref().ok_or("map task without a split")?;
    let cmd = setting(spec, "stream.map.command").to_owned();
    let dir = workdir(client, local, a, spec).await?;
    let Started { mut child, stdin, stdout, errs } = start(&cmd, &dir, spec, a, status)?;
    // Feed the split's lines while the output is read.
    let lines = LineReader::of_split(client, split).await?;
    let output_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = if a.skip_mode {
        tokio::spawn(feed_one_by_one(lines, stdin, a.skip_records.clone(), output_done.clone()))
    } else {
        tokio::spawn(feed(lines, stdin))
    };
    let mut counters = Counters::new();
    let mut out_lines = BufReader::with_capacity(WRITE_CHUNK, stdout);
    let mut line = Vec::new();
    let mut records_out = 0u64;
    let mut output = None;
    let result: Result<(), TaskError> = async {
        if spec.num_reduces == 0 {
            let mut w = task::create_part(client, &spec.output, &a.job_id, &a.attempt_id, true, a.index).await?;
            records_out = copy_lines(&mut out_lines, &mut w).await?;
            output = Some(w);
        } else {
            let final_dir = task::map_output_dir(local, &a.job_id, &a.attempt_id);
            let combine = setting(spec, "stream.combine.command").to_owned();
            // With a combiner the mapper's output is sorted first, then combined into the
            // final output (Hadoop Streaming's -combiner).
            let out_dir = if combine.is_empty() { final_dir.clone() } else { dir.join("uncombined") };
            let partitioner = crate::partition::Partitioner::of(spec)?;
            let codec = if combine.is_empty() { crate::codec::Codec::of(spec)? } else { crate::codec::Codec::None };
            let mut out = MapOutput::new(&out_dir, spec.num_reduces, None, codec, 64 << 20)
                .map_err(|e| format!("{}: {e}", out_dir.display()))?;
            while out_lines.read_until(b'\n', &mut line).await.map_err(|e| e.to_string())? > 0 {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                records_out += 1;
                let (k, v) = split_record(&line);
                out.add(partitioner.partition(k), k, v).map_err(|e| e.to_string())?;
                line.clear();
            }
            output_done.store(true, std::sync::atomic::Ordering::Release);
            finish(&mut child, errs, &cmd, &mut counters).await?;
            tokio::task::spawn_blocking(move || out.finish())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if !combine.is_empty() {
                let combined = run_combiner(&combine, &dir, &out_dir, &final_dir, spec, a, status).await?;
                counters.insert("COMBINE_OUTPUT_RECORDS".into(), combined);
            }
            return Ok(());
        }
        output_done.store(true, std::sync::atomic::Ordering::Release);
        finish(&mut child, errs, &cmd, &mut counters).await
    }
    .await;
    output_done.store(true, std::sync::atomic::Ordering::Release);
    let fed = feeder.await.map_err(|e| e.to_string())??;
    if let Err(mut e) = result {
        // In skip mode, a command that died after reading a record died on it.
        if a.skip_mode {
            e.bad_record = fed.last_read.map(|(i, offset)| (i, format!("{}:{offset}", split.path)));
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    if let Some(w) = output {
        w.close().await.map_err(|e| e.to_string())?;
    }
    counters.insert("MAP_INPUT_RECORDS".into(), fed.records);
    counters.insert("MAP_OUTPUT_RECORDS".into(), records_out);
    counters.insert("HDFS_BYTES_READ".into(), split.length);
    if fed.skipped > 0 {
        counters.insert("MAP_SKIPPED_RECORDS".into(), fed.skipped);
    }
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(counters)
}

/// Runs the `-combiner` command over each partition of the sorted map output in `sorted_dir`
/// (its input `key<TAB>value` lines, sorted) and writes what it prints as the map's output
/// in `final_dir`; returns the records written.
async fn run_combiner(
    cmd: &str,
    dir: &Path,
    sorted_dir: &Path,
    final_dir: &Path,
    spec: &JobSpec,
    a: &TaskAssignment,
    status: &Status,
) -> Result<u64, String> {
    let partitioner = crate::partition::Partitioner::of(spec)?;
    let mut out = MapOutput::new(final_dir, spec.num_reduces, None, crate::codec::Codec::of(spec)?, 64 << 20)
        .map_err(|e| format!("{}: {e}", final_dir.display()))?;
    let mut records = 0u64;
    for p in 0..spec.num_reduces.max(1) {
        let blob = crate::mapout::read_partition(sorted_dir, p).map_err(|e| format!("map output: {e}"))?;
        let raw = crate::codec::decode(&blob).map_err(|e| format!("map output: {e}"))?;
        let mut lines = Vec::with_capacity(raw.len());
        for r in crate::mapout::Records::new(&raw) {
            let (k, v) = r.map_err(|e| format!("map output: {e}"))?;
            lines.extend_from_slice(k);
            lines.push(b'\t');
            lines.extend_from_slice(v);
            lines.push(b'\n');
        }
        if lines.is_empty() {
            continue;
        }
        let Started { mut child, mut stdin, stdout, errs } = start(cmd, dir, spec, a, status)?;
        let feeder = tokio::spawn(async move {
            let _ = stdin.write_all(&lines).await;
        });
        let mut out_lines = BufReader::with_capacity(WRITE_CHUNK, stdout);
        let mut line = Vec::new();
        while out_lines.read_until(b'\n', &mut line).await.map_err(|e| e.to_string())? > 0 {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let (k, v) = split_record(&line);
            out.add(partitioner.partition(k), k, v).map_err(|e| e.to_string())?;
            records += 1;
            line.clear();
        }
        let _ = feeder.await;
        finish(&mut child, errs, cmd, &mut Counters::new()).await.map_err(|e| e.message)?;
    }
    tokio::task::spawn_blocking(move || out.finish()).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    Ok(records)
}

/// A streaming reduce attempt over `sorted`, the partition as sorted `key<TAB>value` lines
/// in pieces from the merge.
pub async fn run_reduce(
    client: &Client,
    local: &Path,
    a: &TaskAssignment,
    mut sorted: crate::merge::Pieces,
    status: &Status,
) -> Result<Counters, TaskError> {
    let spec = a.spec.as_ref().ok_or("reduce task without a job")?;
    let cmd = setting(spec, "stream.reduce.command").to_owned();
    let dir = workdir(client, local, a, spec).await?;
    let Started { mut child, mut stdin, stdout, errs } = start(&cmd, &dir, spec, a, status)?;
    // The merge's pieces to the command's stdin; the merge must have reached its end.
    let feeder = tokio::spawn(async move {
        while let Some(piece) = sorted.next().await? {
            if stdin.write_all(&piece).await.is_err() {
                break; // the command stopped reading; its exit status tells
            }
        }
        Ok::<(), String>(())
    });
    let mut w = task::create_part(client, &spec.output, &a.job_id, &a.attempt_id, false, a.index).await?;
    let mut out = BufReader::with_capacity(WRITE_CHUNK, stdout);
    let records = copy_lines(&mut out, &mut w).await?;
    feeder.await.map_err(|e| e.to_string())??;
    let mut counters = Counters::new();
    finish(&mut child, errs, &cmd, &mut counters).await?;
    let n = w.close().await.map_err(|e| e.to_string())?;
    counters.insert("REDUCE_OUTPUT_RECORDS".into(), records);
    counters.insert("HDFS_BYTES_WRITTEN".into(), n);
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(counters)
}
