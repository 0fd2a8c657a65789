//! What a tasktracker does with one attempt: a map (its split's lines through the map
//! function into sorted, partitioned local output, or straight to the DFS for a map-only
//! job) or a reduce (its partition of every map's output, merged, grouped, reduced, written
//! to the DFS under the attempt's temporary directory). No sockets of its own except the
//! DFS client and the shuffle fetches.

use crate::codec::Codec;
use crate::functions::{self, OutputFormat, ReduceFn};
use crate::lines::SplitReader;
use crate::mapout::MapOutput;
use crate::merge::{self, Runs};
use crate::partition::Partitioner;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tusk_client::Client;
use tusk_proto::mapreduce::shuffle_client::ShuffleClient;
use tusk_proto::mapreduce::{JobSpec, MapOutputRequest, TaskAssignment};

/// Map output buffered before a spill.
const SPILL_BYTES: usize = 64 << 20;
/// Output written to the DFS in pieces of this size.
const WRITE_CHUNK: usize = 1 << 20;

pub type Counters = BTreeMap<String, u64>;

/// What an attempt says about itself while it runs (a streaming command's
/// `reporter:status:` lines); the tasktracker sends it with its heartbeats.
pub type Status = std::sync::Arc<parking_lot::Mutex<String>>;

/// Why an attempt failed; a reduce names the maps whose output it could not fetch.
#[derive(Debug, Default)]
pub struct TaskError {
    pub message: String,
    pub fetch_failed_maps: Vec<u32>,
    /// A map in skip mode that failed on a record: its number in the split, where it is.
    pub bad_record: Option<(u64, String)>,
    /// Another attempt cannot do better (a command that does not exist): the job fails now.
    pub fatal: bool,
}

impl From<String> for TaskError {
    fn from(message: String) -> Self {
        TaskError { message, ..Default::default() }
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

/// Runs a map attempt.
pub async fn run_map(
    client: &Client,
    local: &Path,
    a: &TaskAssignment,
    status: &Status,
) -> Result<Counters, TaskError> {
    let spec = a.spec.as_ref().ok_or("map task without a job")?;
    if spec.mapper == crate::streaming::MAPPER {
        return crate::streaming::run_map(client, local, a, status).await;
    }
    Ok(run_builtin_map(client, local, a, spec).await?)
}

async fn run_builtin_map(
    client: &Client,
    local: &Path,
    a: &TaskAssignment,
    spec: &JobSpec,
) -> Result<Counters, String> {
    let split = a.split.as_ref().ok_or("map task without a split")?;
    let mut mapper = functions::mapper(spec, split)?;
    let format = OutputFormat::of(spec)?;
    let mut records = SplitReader::open(client, split).await?;
    let mut counters = Counters::new();
    let (mut records_in, mut records_out) = (0u64, 0u64);
    if spec.num_reduces == 0 {
        // Map-only: straight to the DFS.
        let mut w = create_part(client, &spec.output, &a.job_id, &a.attempt_id, true, a.index).await?;
        let mut buf = Vec::with_capacity(WRITE_CHUNK);
        while let Some(record) = records.next().await? {
            records_in += 1;
            mapper.map(&record, &mut |k, v| {
                records_out += 1;
                format.write(&mut buf, k, v);
            });
            if buf.len() >= WRITE_CHUNK {
                w.write(&buf).await.map_err(|e| e.to_string())?;
                buf.clear();
            }
        }
        mapper.close(&mut |k, v| {
            records_out += 1;
            format.write(&mut buf, k, v);
        });
        w.write(&buf).await.map_err(|e| e.to_string())?;
        let n = w.close().await.map_err(|e| e.to_string())?;
        counters.insert("HDFS_BYTES_WRITTEN".into(), n);
    } else {
        let dir = map_output_dir(local, &a.job_id, &a.attempt_id);
        let partitioner = Partitioner::of(spec)?;
        let codec = Codec::of(spec)?;
        let mut out = MapOutput::new(&dir, spec.num_reduces, combiner(&spec.combiner)?, codec, SPILL_BYTES)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        // The first error writing map output (a full disk) ends the attempt.
        let mut failed: Option<std::io::Error> = None;
        let fail = |e: std::io::Error| format!("map output in {}: {e}", dir.display());
        let mut emit_to = |out: &mut MapOutput, failed: &mut Option<std::io::Error>, k: &[u8], v: &[u8]| {
            records_out += 1;
            if let Err(e) = out.add(partitioner.partition(k), k, v) {
                failed.get_or_insert(e);
            }
        };
        while let Some(record) = records.next().await? {
            records_in += 1;
            mapper.map(&record, &mut |k, v| emit_to(&mut out, &mut failed, k, v));
            if let Some(e) = failed.take() {
                return Err(fail(e));
            }
        }
        mapper.close(&mut |k, v| emit_to(&mut out, &mut failed, k, v));
        if let Some(e) = failed.take() {
            return Err(fail(e));
        }
        counters.insert("SPILLED_RUNS".into(), out.spills() as u64);
        let sizes = tokio::task::spawn_blocking(move || out.finish())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("map output in {}: {e}", dir.display()))?;
        counters.insert("MAP_OUTPUT_BYTES".into(), sizes.iter().map(|s| s.0).sum());
        counters.insert("MAP_OUTPUT_MATERIALIZED_BYTES".into(), sizes.iter().map(|s| s.1).sum());
    }
    counters.extend(mapper.counters());
    counters.insert("MAP_INPUT_RECORDS".into(), records_in);
    counters.insert("MAP_OUTPUT_RECORDS".into(), records_out);
    if !split.path.is_empty() {
        counters.insert("HDFS_BYTES_READ".into(), split.length);
    }
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
pub async fn run_reduce(
    client: &Client,
    local: &Path,
    a: &TaskAssignment,
    status: &Status,
) -> Result<Counters, TaskError> {
    let spec = a.spec.as_ref().ok_or("reduce task without a job")?;
    // Shuffle: every map's partition, several fetches at once.
    let mut fetches = tokio::task::JoinSet::new();
    for m in &a.map_outputs {
        let (addr, job, attempt, p, map) =
            (m.addr.clone(), a.job_id.clone(), m.attempt_id.clone(), a.index, m.map_index);
        fetches.spawn(async move { fetch(&addr, &job, &attempt, p).await.map_err(|e| (map, e)) });
    }
    let mut blobs = Vec::new();
    let mut failed = TaskError::default();
    while let Some(r) = fetches.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok(blob) => blobs.push(blob),
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
    let shuffled: u64 = blobs.iter().map(|r| r.len() as u64).sum();
    // Decode the runs, keeping what fits the memory budget and spilling the rest.
    let mut runs =
        Runs::new(&local.join(&a.job_id).join(format!("{}.merge", a.attempt_id)), merge::memory_budget(spec)?);
    let runs = tokio::task::spawn_blocking(move || {
        for blob in blobs {
            let raw = crate::codec::decode(&blob).map_err(|e| format!("shuffled map output: {e}"))?;
            drop(blob);
            runs.add(raw).map_err(|e| format!("spilling map output: {e}"))?;
        }
        Ok::<_, String>(runs)
    })
    .await
    .map_err(|e| e.to_string())??;
    let spilled = runs.spilled() as u64;
    // Merge, group and reduce on a blocking thread; what it makes goes to the writer here
    // in pieces, so neither the input nor the output has to fit in memory.
    let (tx, mut rx) = merge::pieces();
    let streaming = spec.reducer == crate::streaming::MAPPER;
    let job = spec.clone();
    let merging = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(WRITE_CHUNK);
        let (mut groups, mut records_out) = (0u64, 0u64);
        let result = if streaming {
            // The streaming reducer reads the merged partition as sorted key<TAB>value lines.
            merge::merge(&runs.runs, |k, values| {
                groups += 1;
                for v in values {
                    buf.extend_from_slice(k);
                    buf.push(b'\t');
                    buf.extend_from_slice(v);
                    buf.push(b'\n');
                }
                if buf.len() >= WRITE_CHUNK {
                    tx.send(std::mem::replace(&mut buf, Vec::with_capacity(WRITE_CHUNK)))?;
                }
                Ok(())
            })
        } else {
            functions::reducer(&job.reducer).and_then(|mut reducer| {
                let format = OutputFormat::of(&job)?;
                merge::merge(&runs.runs, |key, values| {
                    groups += 1;
                    reducer.reduce(key, &mut values.iter().copied(), &mut |k, v| {
                        records_out += 1;
                        format.write(&mut buf, k, v);
                    });
                    if buf.len() >= WRITE_CHUNK {
                        tx.send(std::mem::replace(&mut buf, Vec::with_capacity(WRITE_CHUNK)))?;
                    }
                    Ok(())
                })?;
                reducer.close(&mut |k, v| {
                    records_out += 1;
                    format.write(&mut buf, k, v);
                });
                Ok(())
            })
        };
        let result = result.and_then(|()| tx.send(buf));
        drop(runs);
        tx.finish(result);
        (groups, records_out)
    });
    let mut counters = if streaming {
        crate::streaming::run_reduce(client, local, a, rx, status).await?
    } else {
        let mut w = create_part(client, &spec.output, &a.job_id, &a.attempt_id, false, a.index).await?;
        while let Some(piece) = rx.next().await? {
            w.write(&piece).await.map_err(|e| e.to_string())?;
        }
        let n = w.close().await.map_err(|e| e.to_string())?;
        Counters::from([("HDFS_BYTES_WRITTEN".to_owned(), n)])
    };
    let (groups, records_out) = merging.await.map_err(|e| e.to_string())?;
    counters.insert("REDUCE_SHUFFLE_BYTES".into(), shuffled);
    counters.insert("REDUCE_INPUT_GROUPS".into(), groups);
    counters.entry("REDUCE_OUTPUT_RECORDS".into()).or_insert(records_out);
    if spilled > 0 {
        counters.insert("REDUCE_SPILLED_RUNS".into(), spilled);
    }
    Ok(counters)
}
