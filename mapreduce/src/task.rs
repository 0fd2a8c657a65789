//! What a tasktracker does with one attempt: a map (its split's lines through the map
//! function into sorted, partitioned local output, or straight to the DFS for a map-only
//! job) or a reduce (its partition of every map's output, merged, grouped, reduced, written
//! to the DFS under the attempt's temporary directory). No sockets of its own except the
//! DFS client and the shuffle fetches.

use crate::functions::{self, ReduceFn};
use crate::lines::LineReader;
use crate::mapout::{MapOutput, Records};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use tusk_client::Client;
use tusk_proto::mapreduce::shuffle_client::ShuffleClient;
use tusk_proto::mapreduce::{MapOutputRequest, TaskAssignment};

/// Map output buffered before a spill.
const SPILL_BYTES: usize = 64 << 20;
/// Output written to the DFS in pieces of this size.
const WRITE_CHUNK: usize = 1 << 20;

pub type Counters = BTreeMap<String, u64>;

/// Why an attempt failed; a reduce names the maps whose output it could not fetch.
#[derive(Debug, Default)]
pub struct TaskError {
    pub message: String,
    pub fetch_failed_maps: Vec<u32>,
}

impl From<String> for TaskError {
    fn from(message: String) -> Self {
        TaskError { message, fetch_failed_maps: Vec::new() }
    }
}

impl From<&str> for TaskError {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// Where an attempt writes its output file in the DFS.
pub fn temp_output(output: &str, job: &str, attempt: &str) -> String {
    format!("{}/_temporary/{attempt}", staging(output, job))
}

/// Where a job builds its output: a hidden sibling of OUT, renamed to OUT when the job
/// succeeds, so OUT appears complete (with `_SUCCESS`) or not at all.
pub fn staging(output: &str, job: &str) -> String {
    let output = output.trim_end_matches('/');
    let (parent, name) = output.rsplit_once('/').unwrap_or(("", output));
    format!("{parent}/.{name}.{job}")
}

/// The output file name of task `index` (`part-r-00003`, `part-m-00003`).
pub fn part_name(kind_map: bool, index: u32) -> String {
    format!("part-{}-{index:05}", if kind_map { "m" } else { "r" })
}

/// Creates the attempt's output file `<staging>/_temporary/<attempt>/part-{m,r}-NNNNN`.
pub async fn create_part(
    client: &Client,
    output: &str,
    job: &str,
    attempt: &str,
    kind_map: bool,
    index: u32,
) -> Result<tusk_client::FileWriter, String> {
    let dir = temp_output(output, job, attempt);
    client.mkdirs(&dir, 0o755, true).await.map_err(|e| format!("{dir}: {e}"))?;
    let path = format!("{dir}/{}", part_name(kind_map, index));
    client.create(&path, false, 0, 0).await.map_err(|e| format!("{path}: {e}"))
}

/// The local directory of a map attempt's output.
pub fn map_output_dir(local: &Path, job: &str, attempt: &str) -> PathBuf {
    local.join(job).join(attempt)
}

fn combiner(name: &str) -> Result<Option<ReduceFn>, String> {
    if name.is_empty() {
        Ok(None)
    } else {
        functions::reduce_fn(name).map(Some)
    }
}

/// Text output: `key<TAB>value`, or the key alone when the value is empty.
fn text_line(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    out.extend_from_slice(k);
    if !v.is_empty() {
        out.push(b'\t');
        out.extend_from_slice(v);
    }
    out.push(b'\n');
}

/// Runs a map attempt.
pub async fn run_map(client: &Client, local: &Path, a: &TaskAssignment) -> Result<Counters, String> {
    let spec = a.spec.as_ref().ok_or("map task without a job")?;
    if spec.mapper == crate::streaming::MAPPER {
        return crate::streaming::run_map(client, local, a).await;
    }
    let split = a.split.as_ref().ok_or("map task without a split")?;
    let mapper = functions::map_fn(&spec.mapper)?;
    let reader = client.open(&split.path).await.map_err(|e| format!("{}: {e}", split.path))?;
    let mut lines = LineReader::open(reader, split.start, split.length).await.map_err(|e| e.to_string())?;
    let mut counters = Counters::new();
    let (mut records_in, mut records_out) = (0u64, 0u64);
    if spec.num_reduces == 0 {
        // Map-only: straight to the DFS.
        let mut w = create_part(client, &spec.output, &a.job_id, &a.attempt_id, true, a.index).await?;
        let mut buf = Vec::with_capacity(WRITE_CHUNK);
        while let Some(line) = lines.next().await.map_err(|e| e.to_string())? {
            records_in += 1;
            mapper(&line, &mut |k, v| {
                records_out += 1;
                text_line(&mut buf, k, v);
            });
            if buf.len() >= WRITE_CHUNK {
                w.write(&buf).await.map_err(|e| e.to_string())?;
                buf.clear();
            }
        }
        w.write(&buf).await.map_err(|e| e.to_string())?;
        let n = w.close().await.map_err(|e| e.to_string())?;
        counters.insert("HDFS_BYTES_WRITTEN".into(), n);
    } else {
        let dir = map_output_dir(local, &a.job_id, &a.attempt_id);
        let partitions = spec.num_reduces;
        let mut out = MapOutput::new(&dir, partitions, combiner(&spec.combiner)?, SPILL_BYTES)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut failed = None;
        while let Some(line) = lines.next().await.map_err(|e| e.to_string())? {
            records_in += 1;
            mapper(&line, &mut |k, v| {
                records_out += 1;
                if failed.is_none() {
                    if let Err(e) = out.add(functions::partition(k, partitions), k, v) {
                        failed = Some(e);
                    }
                }
            });
            if let Some(e) = failed.take() {
                return Err(format!("map output in {}: {e}", dir.display()));
            }
        }
        counters.insert("SPILLED_RUNS".into(), out.spills() as u64);
        let sizes = tokio::task::spawn_blocking(move || out.finish())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("map output in {}: {e}", dir.display()))?;
        counters.insert("MAP_OUTPUT_BYTES".into(), sizes.iter().sum());
    }
    counters.insert("MAP_INPUT_RECORDS".into(), records_in);
    counters.insert("MAP_OUTPUT_RECORDS".into(), records_out);
    counters.insert("HDFS_BYTES_READ".into(), split.length);
    Ok(counters)
}

/// Fetches one map's partition from the tracker that ran it.
async fn fetch(addr: &str, job: &str, attempt: &str, partition: u32) -> Result<Vec<u8>, String> {
    let mut c = ShuffleClient::connect(format!("http://{addr}"))
        .await
        .map_err(|e| format!("cannot reach the shuffle service at {addr}: {e}"))?
        .max_decoding_message_size(64 << 20);
    let req = MapOutputRequest { job_id: job.into(), attempt_id: attempt.into(), partition };
    let mut stream = c
        .get_map_output(req)
        .await
        .map_err(|s| format!("fetching {attempt} from {addr}: {}", s.message()))?
        .into_inner();
    let mut buf = Vec::new();
    while let Some(chunk) =
        stream.message().await.map_err(|s| format!("fetching {attempt} from {addr}: {}", s.message()))?
    {
        buf.extend_from_slice(&chunk.data);
    }
    Ok(buf)
}

/// Runs a reduce attempt.
pub async fn run_reduce(client: &Client, local: &Path, a: &TaskAssignment) -> Result<Counters, TaskError> {
    let spec = a.spec.as_ref().ok_or("reduce task without a job")?;
    // Shuffle: every map's partition, several fetches at once.
    let mut fetches = tokio::task::JoinSet::new();
    for m in &a.map_outputs {
        let (addr, job, attempt, p, map) =
            (m.addr.clone(), a.job_id.clone(), m.attempt_id.clone(), a.index, m.map_index);
        fetches.spawn(async move { fetch(&addr, &job, &attempt, p).await.map_err(|e| (map, e)) });
    }
    let mut runs = Vec::new();
    let mut failed = TaskError::default();
    while let Some(r) = fetches.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok(run) => runs.push(run),
            Err((map, e)) => {
                failed.fetch_failed_maps.push(map);
                failed.message = e;
            }
        }
    }
    if !failed.fetch_failed_maps.is_empty() {
        failed.fetch_failed_maps.sort_unstable();
        return Err(failed);
    }
    let shuffled: u64 = runs.iter().map(|r| r.len() as u64).sum();
    if spec.reducer == crate::streaming::MAPPER {
        // The streaming reducer reads the merged partition as sorted key<TAB>value lines.
        let mut sorted = Vec::with_capacity(shuffled as usize);
        merge_runs(&runs, |k, values| {
            for v in values {
                sorted.extend_from_slice(k);
                sorted.push(b'\t');
                sorted.extend_from_slice(v);
                sorted.push(b'\n');
            }
        })?;
        let mut counters = crate::streaming::run_reduce(client, local, a, sorted).await?;
        counters.insert("REDUCE_SHUFFLE_BYTES".into(), shuffled);
        return Ok(counters);
    }
    let reducer = functions::reduce_fn(&spec.reducer)?;
    // Merge the sorted runs, group by key, reduce (the output is held until written: a
    // reduce holds its partition in memory anyway).
    let (mut groups, mut records_out) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(WRITE_CHUNK);
    merge_runs(&runs, |key, values| {
        groups += 1;
        reducer(key, &mut values.iter().copied(), &mut |k, v| {
            records_out += 1;
            text_line(&mut buf, k, v);
        });
    })?;
    let mut w = create_part(client, &spec.output, &a.job_id, &a.attempt_id, false, a.index).await?;
    for piece in buf.chunks(WRITE_CHUNK) {
        w.write(piece).await.map_err(|e| e.to_string())?;
    }
    let n = w.close().await.map_err(|e| e.to_string())?;
    let mut counters = Counters::new();
    counters.insert("REDUCE_SHUFFLE_BYTES".into(), shuffled);
    counters.insert("REDUCE_INPUT_GROUPS".into(), groups);
    counters.insert("REDUCE_OUTPUT_RECORDS".into(), records_out);
    counters.insert("HDFS_BYTES_WRITTEN".into(), n);
    Ok(counters)
}

/// Merges sorted runs of map output (a heap over them), calling `f` with each key and all
/// its values in order.
fn merge_runs(runs: &[Vec<u8>], mut f: impl FnMut(&[u8], &[&[u8]])) -> Result<(), String> {
    let mut iters: Vec<Records> = runs.iter().map(|r| Records::new(r)).collect();
    let mut heap = BinaryHeap::new();
    for (i, it) in iters.iter_mut().enumerate() {
        if let Some(r) = it.next() {
            let (k, v) = r.map_err(|e| format!("map output: {e}"))?;
            heap.push(Reverse((k, i, v)));
        }
    }
    let mut values: Vec<&[u8]> = Vec::new();
    while let Some(Reverse((key, i, v))) = heap.pop() {
        values.clear();
        values.push(v);
        if let Some(r) = iters[i].next() {
            let (k, v) = r.map_err(|e| format!("map output: {e}"))?;
            heap.push(Reverse((k, i, v)));
        }
        while heap.peek().is_some_and(|Reverse((k, _, _))| *k == key) {
            let Some(Reverse((_, j, v))) = heap.pop() else { break };
            values.push(v);
            if let Some(r) = iters[j].next() {
                let (k, v) = r.map_err(|e| format!("map output: {e}"))?;
                heap.push(Reverse((k, j, v)));
            }
        }
        f(key, &values);
    }
    Ok(())
}
