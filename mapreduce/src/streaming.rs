//! Streaming jobs (Hadoop Streaming's semantics): the mapper and the reducer are commands
//! run with `sh -c` in the attempt's working directory (where the job's `-file`s are
//! copied). The mapper gets the split's lines on stdin; each stdout line is a record, the
//! key before the first tab (the whole line when there is none). The reducer gets its
//! partition as sorted `key<TAB>value` lines and its stdout lines are the output. A non-zero
//! exit fails the attempt; stderr lines `reporter:counter:GROUP,NAME,N` add to the job's
//! counters, other lines go to the tracker's log.
//!
//! Job settings: `stream.map.command`, `stream.reduce.command`, `stream.files` (DFS paths,
//! comma-separated), `stream.env` (`K=V` pairs, comma-separated).

use crate::lines::LineReader;
use crate::mapout::MapOutput;
use crate::task::{self, Counters};
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

/// The attempt's working directory, with the job's files copied in.
async fn workdir(client: &Client, local: &Path, a: &TaskAssignment, spec: &JobSpec) -> Result<PathBuf, String> {
    let dir = local.join(&a.job_id).join(format!("{}.work", a.attempt_id));
    tokio::fs::create_dir_all(&dir).await.map_err(|e| format!("{}: {e}", dir.display()))?;
    for f in setting(spec, "stream.files").split(',').filter(|f| !f.is_empty()) {
        let name = f.rsplit('/').next().unwrap_or(f);
        let mut r = client.open(f).await.map_err(|e| format!("job file {f}: {e}"))?;
        let mut data = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf).await.map_err(|e| format!("job file {f}: {e}"))?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        let path = dir.join(name);
        tokio::fs::write(&path, &data).await.map_err(|e| format!("{}: {e}", path.display()))?;
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

fn start(cmd: &str, dir: &Path, spec: &JobSpec, a: &TaskAssignment) -> Result<Started, String> {
    let mut child = spawn(cmd, dir, spec, a)?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("streaming command without pipes".into());
    };
    let errs = tokio::spawn(watch_stderr(stderr, a.attempt_id.clone()));
    Ok(Started { child, stdin, stdout, errs })
}

/// Reads stderr: counters into `counters`, the rest logged; returns the last plain line.
async fn watch_stderr(err: tokio::process::ChildStderr, attempt: String) -> (Counters, String) {
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
        if line.starts_with("reporter:status:") {
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
) -> Result<(), String> {
    let status = child.wait().await.map_err(|e| format!("{cmd}: {e}"))?;
    let (c, last) = stderr.await.unwrap_or_default();
    for (k, v) in c {
        *counters.entry(k).or_default() += v;
    }
    if !status.success() {
        let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        return Err(format!("streaming command \"{cmd}\" failed with exit code {code}: {last}"));
    }
    Ok(())
}

/// A streaming map attempt.
pub async fn run_map(client: &Client, local: &Path, a: &TaskAssignment) -> Result<Counters, String> {
    let spec = a.spec.as_ref().ok_or("map task without a job")?;
    let split = a.split.as_ref().ok_or("map task without a split")?;
    let cmd = setting(spec, "stream.map.command").to_owned();
    let dir = workdir(client, local, a, spec).await?;
    let Started { mut child, mut stdin, stdout, errs } = start(&cmd, &dir, spec, a)?;
    // Feed the split's lines while the output is read.
    let reader = client.open(&split.path).await.map_err(|e| format!("{}: {e}", split.path))?;
    let mut lines = LineReader::open(reader, split.start, split.length).await.map_err(|e| e.to_string())?;
    let feeder = tokio::spawn(async move {
        let mut n = 0u64;
        let mut buf = Vec::with_capacity(WRITE_CHUNK);
        while let Some(line) = lines.next().await.map_err(|e| e.to_string())? {
            n += 1;
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            if buf.len() >= WRITE_CHUNK {
                if stdin.write_all(&buf).await.is_err() {
                    return Ok(n); // the command stopped reading; its exit status tells
                }
                buf.clear();
            }
        }
        let _ = stdin.write_all(&buf).await;
        Ok::<u64, String>(n)
    });
    let mut counters = Counters::new();
    let mut out_lines = BufReader::with_capacity(WRITE_CHUNK, stdout);
    let mut line = Vec::new();
    let mut records_out = 0u64;
    if spec.num_reduces == 0 {
        let mut w = task::create_part(client, &spec.output, &a.job_id, &a.attempt_id, true, a.index).await?;
        records_out = copy_lines(&mut out_lines, &mut w).await?;
        finish(&mut child, errs, &cmd, &mut counters).await?;
        w.close().await.map_err(|e| e.to_string())?;
    } else {
        let out_dir = task::map_output_dir(local, &a.job_id, &a.attempt_id);
        let parts = spec.num_reduces;
        let mut out =
            MapOutput::new(&out_dir, parts, None, 64 << 20).map_err(|e| format!("{}: {e}", out_dir.display()))?;
        while out_lines.read_until(b'\n', &mut line).await.map_err(|e| e.to_string())? > 0 {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            records_out += 1;
            let (k, v) = split_record(&line);
            out.add(crate::functions::partition(k, parts), k, v).map_err(|e| e.to_string())?;
            line.clear();
        }
        finish(&mut child, errs, &cmd, &mut counters).await?;
        tokio::task::spawn_blocking(move || out.finish())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let records_in = feeder.await.map_err(|e| e.to_string())??;
    counters.insert("MAP_INPUT_RECORDS".into(), records_in);
    counters.insert("MAP_OUTPUT_RECORDS".into(), records_out);
    counters.insert("HDFS_BYTES_READ".into(), split.length);
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(counters)
}

/// A streaming reduce attempt over `sorted`, the partition as sorted `key<TAB>value` lines.
pub async fn run_reduce(
    client: &Client,
    local: &Path,
    a: &TaskAssignment,
    sorted: Vec<u8>,
) -> Result<Counters, String> {
    let spec = a.spec.as_ref().ok_or("reduce task without a job")?;
    let cmd = setting(spec, "stream.reduce.command").to_owned();
    let dir = workdir(client, local, a, spec).await?;
    let Started { mut child, mut stdin, stdout, errs } = start(&cmd, &dir, spec, a)?;
    let feeder = tokio::spawn(async move {
        let _ = stdin.write_all(&sorted).await;
    });
    let mut w = task::create_part(client, &spec.output, &a.job_id, &a.attempt_id, false, a.index).await?;
    let mut out = BufReader::with_capacity(WRITE_CHUNK, stdout);
    let records = copy_lines(&mut out, &mut w).await?;
    let _ = feeder.await;
    let mut counters = Counters::new();
    finish(&mut child, errs, &cmd, &mut counters).await?;
    let n = w.close().await.map_err(|e| e.to_string())?;
    counters.insert("REDUCE_OUTPUT_RECORDS".into(), records);
    counters.insert("HDFS_BYTES_WRITTEN".into(), n);
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(counters)
}
