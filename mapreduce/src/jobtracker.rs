//! The jobtracker's core: jobs, their tasks and attempts, the trackers, and the scheduling
//! decisions, behind one mutex; the DFS work (splits, commits, cleanup) is done by async
//! methods around it. `service.rs` is the thin gRPC layer.
//!
//! Scheduling (on each tracker heartbeat, HDFS's JobQueueTaskScheduler in miniature): free
//! map slots get pending maps whose split has a replica on the tracker's host first
//! (node-local), then any; once every map of a job is done its reduces are handed out. An
//! attempt that fails makes its task pending again (another tracker preferred) until it has
//! used `max_attempts`, then the job fails. A tracker silent past `tracker_expiry` is lost:
//! its running attempts and the finished maps of jobs still reducing run again.

use crate::task::{part_name, staging, temp_output};
use crate::{partition, splits};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tusk_client::Client;
use tusk_proto::mapreduce::{
    AttemptInfo, AttemptState, JobSpec, JobState, JobStatus, MapOutputLocation, Split, TaskAssignment, TaskKind,
    TaskReport, TrackerHeartbeat, TrackerHeartbeatResponse,
};

/// How long finished jobs are announced to trackers (so they delete the map output).
const CLEANUP_ANNOUNCE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
enum TaskStatus {
    Pending,
    Running,
    /// Succeeded; its output is being renamed into the job's staging directory.
    Committing,
    Done,
}

#[derive(Debug, Clone)]
struct Task {
    status: TaskStatus,
    /// Attempts that count toward `max_attempts`.
    attempts: u32,
    /// Attempts launched (numbers the attempt ids).
    launched: u32,
    /// Attempts running now: attempt id -> (tracker id, when it started).
    running: HashMap<String, (String, Instant)>,
    /// The attempt that succeeded, and its tracker.
    done: Option<(String, String)>,
    failed_on: HashSet<String>,
    last_error: String,
    /// Skip mode: the records (numbers in the split) found bad, and where they are.
    skip: Vec<u64>,
    skipped_at: Vec<String>,
}

impl Task {
    fn new() -> Task {
        Task {
            status: TaskStatus::Pending,
            attempts: 0,
            launched: 0,
            running: HashMap::new(),
            done: None,
            failed_on: HashSet::new(),
            last_error: String::new(),
            skip: Vec::new(),
            skipped_at: Vec::new(),
        }
    }
}

struct Job {
    spec: JobSpec,
    state: JobState,
    splits: Vec<Split>,
    maps: Vec<Task>,
    reduces: Vec<Task>,
    counters: BTreeMap<String, u64>,
    error: String,
    submit_ms: i64,
    finish_ms: i64,
    /// Set while the job's commit or cleanup runs.
    finishing: bool,
    /// How long the successful map and reduce attempts took (for speculation).
    map_times: Vec<Duration>,
    reduce_times: Vec<Duration>,
    /// Failed attempts of this job per tracker: past the limit the tracker gets no more of
    /// its tasks (while another tracker can take them).
    tracker_failures: HashMap<String, u32>,
    max_tracker_failures: u32,
    /// When the last map finished (0 while maps run).
    maps_finish_ms: i64,
    /// Bad records a map task may skip (`skip.records.max`; 0: skipping is off).
    skip_max: u32,
    /// Every attempt launched, by id.
    attempts: BTreeMap<String, AttemptInfo>,
}

/// A job setting: how many bad records a (streaming) map task may skip. After an attempt
/// fails, the next ones run in skip mode: records are fed one at a time, so a crash names
/// the record it happened on, and that record is left out of later attempts (such a
/// failure does not count against `max_attempts`).
pub const SKIP_RECORDS_MAX: &str = "skip.records.max";

/// A job setting: failed attempts on one tracker before it gets no more of the job's tasks
/// (Hadoop's mapreduce.job.maxtaskfailures.per.tracker, default 3).
pub const MAX_TRACKER_FAILURES: &str = "max_tracker_failures";

impl Job {
    fn blacklists(&self, tracker: &str) -> bool {
        self.tracker_failures.get(tracker).is_some_and(|&n| n >= self.max_tracker_failures)
    }

    fn log_start(&mut self, id: &str, map: bool, index: usize, tracker: &str, locality: &str) {
        let kind = if map { TaskKind::Map } else { TaskKind::Reduce };
        self.attempts.insert(
            id.to_owned(),
            AttemptInfo {
                attempt_id: id.to_owned(),
                kind: kind as i32,
                index: index as u32,
                tracker: tracker.to_owned(),
                start_ms: tusk_common::now_ms(),
                state: "RUNNING".into(),
                locality: locality.trim_end_matches("_MAPS").trim_end_matches("_REDUCES").to_owned(),
                ..Default::default()
            },
        );
    }

    /// An attempt ended (`state`: SUCCEEDED, FAILED, KILLED, LOST); the first word counts.
    fn log_end(&mut self, id: &str, state: &str, error: &str) {
        if let Some(a) = self.attempts.get_mut(id) {
            if a.state == "RUNNING" {
                a.state = state.to_owned();
                a.error = error.to_owned();
                a.finish_ms = tusk_common::now_ms();
            }
        }
    }

    /// Starts an attempt of map or reduce `i` on `tracker`, placed as `placement` (a counter
    /// name for maps); returns its id.
    fn start_attempt(&mut self, job_id: &str, map: bool, i: usize, tracker: &str, placement: &str) -> String {
        let task = if map { &mut self.maps[i] } else { &mut self.reduces[i] };
        let id = launch(task, job_id, map, i, tracker);
        self.log_start(&id, map, i, tracker, placement);
        if !placement.is_empty() {
            *self.counters.entry(placement.into()).or_default() += 1;
        }
        let launched = if map { "LAUNCHED_MAPS" } else { "LAUNCHED_REDUCES" };
        *self.counters.entry(launched.into()).or_default() += 1;
        id
    }

    /// The job ended: attempts still running were killed.
    fn end_attempts(&mut self) {
        let running: Vec<String> =
            self.attempts.values().filter(|a| a.state == "RUNNING").map(|a| a.attempt_id.clone()).collect();
        for id in running {
            self.log_end(&id, "KILLED", "the job ended");
        }
    }
}

struct Tracker {
    host: String,
    shuffle_addr: String,
    last_seen: Instant,
    free_maps: u32,
    free_reduces: u32,
}

/// A tracker as the jobtracker's web page shows it.
#[derive(Debug, Clone)]
pub struct TrackerView {
    pub id: String,
    pub host: String,
    pub shuffle_addr: String,
    pub since_heartbeat: Duration,
    pub free_map_slots: u32,
    pub free_reduce_slots: u32,
    /// Attempts running there now.
    pub running: usize,
    /// Jobs that blacklisted it.
    pub blacklisted_by: usize,
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<String, Job>,
    trackers: HashMap<String, Tracker>,
    /// attempt id -> (job id, kind is map, task index)
    attempts: HashMap<String, (String, bool, u32)>,
    ended: Vec<(String, Instant)>,
    next_job: u32,
    /// Attempts each tracker is to abort, by tracker id.
    kills: HashMap<String, Vec<String>>,
}

/// What a heartbeat left for the async part to do.
#[derive(Default)]
pub struct FollowUp {
    /// Reduce (or map-only) attempts to commit: (job, attempt, kind is map, index).
    commits: Vec<(String, String, bool, u32)>,
    /// Jobs whose every task is done.
    complete: Vec<String>,
    /// Jobs that failed.
    failed: Vec<String>,
}

pub struct JobTracker {
    client: Client,
    history: Option<crate::history::History>,
    /// Jobs of earlier runs of the jobtracker, from the history.
    past: Mutex<BTreeMap<String, JobStatus>>,
    max_attempts: u32,
    tracker_expiry: Duration,
    start_id: String,
    state: Mutex<State>,
}

fn attempt_id(job: &str, map: bool, index: u32, n: u32) -> String {
    format!("attempt_{}_{}_{index:06}_{n}", job.trim_start_matches("job_"), if map { "m" } else { "r" })
}

/// A numeric job setting, `default` when it is not set.
fn setting_u32(spec: &JobSpec, key: &str, default: u32) -> Result<u32, String> {
    match spec.settings.get(key) {
        Some(v) => v.parse().map_err(|_| format!("{key}: not a number: {v}")),
        None => Ok(default),
    }
}

/// Starts a new attempt of task `i` on `tracker`; returns its id.
fn launch(t: &mut Task, job_id: &str, map: bool, i: usize, tracker: &str) -> String {
    let id = attempt_id(job_id, map, i as u32, t.launched);
    t.launched += 1;
    t.attempts += 1;
    t.status = TaskStatus::Running;
    t.running.insert(id.clone(), (tracker.to_owned(), Instant::now()));
    id
}

/// Speculation: the running task (a map, or a reduce when `reduces`) to back up on
/// `tracker`, if one is a straggler: a single attempt, elsewhere, running for longer than
/// twice the median of the job's finished tasks of that kind (at least a second). Off with
/// `mapreduce.map.speculative=false` / `mapreduce.reduce.speculative=false`.
fn straggler(job: &Job, tracker: &str, reduces: bool) -> Option<usize> {
    let (tasks, times, setting) = if reduces {
        (&job.reduces, &job.reduce_times, "mapreduce.reduce.speculative")
    } else {
        (&job.maps, &job.map_times, "mapreduce.map.speculative")
    };
    if job.spec.settings.get(setting).is_some_and(|v| v == "false") || times.is_empty() {
        return None;
    }
    let mut times = times.clone();
    times.sort();
    let threshold = (times[times.len() / 2] * 2).max(Duration::from_secs(1));
    (0..tasks.len())
        .filter(|&i| {
            let t = &tasks[i];
            t.status == TaskStatus::Running && t.running.len() == 1 && !t.running.values().any(|(tr, _)| tr == tracker)
        })
        .filter_map(|i| Some((i, tasks[i].running.values().next()?.1.elapsed())))
        .filter(|(_, age)| *age > threshold)
        .max_by_key(|(_, age)| *age)
        .map(|(i, _)| i)
}

impl JobTracker {
    pub fn new(client: Client, max_attempts: u32, tracker_expiry: Duration) -> JobTracker {
        let start_id = chrono_like_id();
        JobTracker {
            client,
            history: None,
            past: Mutex::new(BTreeMap::new()),
            max_attempts: max_attempts.max(1),
            tracker_expiry,
            start_id,
            state: Mutex::new(State::default()),
        }
    }

    /// Keeps job history in `history`. Jobs an earlier run left running are recorded as
    /// failed and their output paths removed (nothing recovers them). Job numbers go on
    /// after the last one of this start time.
    pub async fn with_history(mut self, history: crate::history::History) -> Result<JobTracker, String> {
        let mut past = BTreeMap::new();
        for mut s in history.load()? {
            if s.state == JobState::JobRunning as i32 {
                s.state = JobState::JobFailed as i32;
                s.error = "the jobtracker stopped while the job ran".into();
                s.finish_time_ms = tusk_common::now_ms();
                if let Err(e) = self.client.delete(&staging(&s.output, &s.job_id), true).await {
                    tracing::warn!(job = %s.job_id, "cannot remove the output of an interrupted job: {e}");
                }
                history.put(&s)?;
            }
            let prefix = format!("job_{}_", self.start_id);
            if let Some(n) = s.job_id.strip_prefix(&prefix).and_then(|n| n.parse::<u32>().ok()) {
                let st = self.state.get_mut();
                st.next_job = st.next_job.max(n);
            }
            past.insert(s.job_id.clone(), s);
        }
        tracing::info!(jobs = past.len(), "job history loaded");
        self.past = Mutex::new(past);
        self.history = Some(history);
        Ok(self)
    }

    fn record(&self, id: &str) {
        let (Some(h), Some(s)) = (&self.history, self.status(id, true)) else { return };
        if let Err(e) = h.put(&s) {
            tracing::warn!(job = id, "{e}");
        }
    }

    /// Checks a job and starts it: the mapper and reducer exist, the output does not, every
    /// input does; splits from the inputs' blocks; the job's staging directory created.
    pub async fn submit(&self, mut spec: JobSpec) -> Result<String, String> {
        let streaming = crate::streaming::MAPPER;
        let command = |key: &str| spec.settings.get(key).is_some_and(|c| !c.trim().is_empty());
        if spec.mapper == streaming && !command("stream.map.command") {
            return Err("a streaming job needs a -mapper command".into());
        }
        if spec.num_reduces > 0 && spec.reducer == streaming && !command("stream.reduce.command") {
            return Err("a streaming job with reduces needs a -reducer command".into());
        }
        crate::functions::check(&spec, streaming)?;
        if spec.inputs.is_empty() && spec.generate_records == 0 {
            return Err("No input paths specified in job".into());
        }
        if spec.output.is_empty() {
            return Err("Output directory not set".into());
        }
        spec.output = spec.output.trim_end_matches('/').to_owned();
        if self.client.file_info(&spec.output).await.map_err(|e| e.to_string())?.is_some() {
            return Err(format!("Output directory {} already exists", spec.output));
        }
        let skip_max = setting_u32(&spec, SKIP_RECORDS_MAX, 0)?;
        let max_tracker_failures = setting_u32(&spec, MAX_TRACKER_FAILURES, 3)?.max(1);
        let splits = if spec.inputs.is_empty() {
            splits::generated(spec.generate_records, spec.generate_maps)
        } else {
            splits::compute(&self.client, &spec.inputs).await?
        };
        // A total-order job gets its split points now; the partitioner is then checked
        // whole, so no map attempt can fail on it.
        partition::sample(&self.client, &mut spec, &splits).await?;
        partition::Partitioner::of(&spec)?;
        let id = {
            let mut st = self.state.lock();
            st.next_job += 1;
            format!("job_{}_{:04}", self.start_id, st.next_job)
        };
        let stage = staging(&spec.output, &id);
        self.client.mkdirs(&format!("{stage}/_temporary"), 0o755, true).await.map_err(|e| format!("{stage}: {e}"))?;
        let reduces = spec.num_reduces as usize;
        tracing::info!(job = %id, maps = splits.len(), reduces, output = %spec.output, "job submitted");
        let nothing_to_run = {
            let mut st = self.state.lock();
            st.jobs.insert(
                id.clone(),
                Job {
                    maps: vec![Task::new(); splits.len()],
                    reduces: vec![Task::new(); reduces],
                    splits,
                    spec,
                    state: JobState::JobRunning,
                    counters: BTreeMap::new(),
                    error: String::new(),
                    submit_ms: tusk_common::now_ms(),
                    finish_ms: 0,
                    finishing: false,
                    map_times: Vec::new(),
                    reduce_times: Vec::new(),
                    tracker_failures: HashMap::new(),
                    max_tracker_failures,
                    maps_finish_ms: 0,
                    attempts: BTreeMap::new(),
                    skip_max,
                },
            );
            st.jobs.get_mut(&id).is_some_and(|j| {
                j.finishing = j.maps.is_empty() && j.reduces.is_empty();
                j.finishing
            })
        };
        self.record(&id);
        if nothing_to_run {
            // Empty input, no reduces: done at once.
            self.follow_up(FollowUp { complete: vec![id.clone()], ..Default::default() }).await;
        }
        Ok(id)
    }

    fn status_of(id: &str, j: &Job, with_attempts: bool) -> JobStatus {
        let done = |t: &[Task]| t.iter().filter(|t| t.status == TaskStatus::Done).count() as u32;
        JobStatus {
            job_id: id.to_owned(),
            name: j.spec.name.clone(),
            state: j.state as i32,
            maps_total: j.maps.len() as u32,
            maps_done: done(&j.maps),
            reduces_total: j.reduces.len() as u32,
            reduces_done: done(&j.reduces),
            error: j.error.clone(),
            counters: j.counters.clone().into_iter().collect(),
            submit_time_ms: j.submit_ms,
            finish_time_ms: j.finish_ms,
            output: j.spec.output.clone(),
            maps_finish_time_ms: j.maps_finish_ms,
            attempts: if with_attempts { j.attempts.values().cloned().collect() } else { Vec::new() },
            skipped_records: j.maps.iter().flat_map(|t| t.skipped_at.iter().cloned()).collect(),
        }
    }

    /// A job's status; its attempts too when `with_attempts` (its history).
    pub fn status(&self, id: &str, with_attempts: bool) -> Option<JobStatus> {
        let st = self.state.lock();
        st.jobs.get(id).map(|j| Self::status_of(id, j, with_attempts)).or_else(|| {
            let mut s = self.past.lock().get(id).cloned()?;
            if !with_attempts {
                s.attempts.clear();
            }
            Some(s)
        })
    }

    pub fn list(&self) -> Vec<JobStatus> {
        let st = self.state.lock();
        let mut all: BTreeMap<String, JobStatus> = self
            .past
            .lock()
            .iter()
            .map(|(id, s)| (id.clone(), JobStatus { attempts: Vec::new(), ..s.clone() }))
            .collect();
        all.extend(st.jobs.iter().map(|(id, j)| (id.clone(), Self::status_of(id, j, false))));
        all.into_values().collect()
    }

    /// A heartbeat: takes the tracker's reports, hands it work. The commits and job ends it
    /// causes are done by [`follow_up`](Self::follow_up).
    pub fn heartbeat(&self, hb: &TrackerHeartbeat) -> (TrackerHeartbeatResponse, FollowUp) {
        let mut st = self.state.lock();
        let mut follow = FollowUp::default();
        let now = Instant::now();
        st.trackers
            .entry(hb.tracker_id.clone())
            .and_modify(|t| {
                t.last_seen = now;
                t.host = hb.host.clone();
                t.shuffle_addr = hb.shuffle_addr.clone();
                t.free_maps = hb.free_map_slots;
                t.free_reduces = hb.free_reduce_slots;
            })
            .or_insert_with(|| {
                tracing::info!(tracker = %hb.tracker_id, host = %hb.host, "tasktracker joined");
                Tracker {
                    host: hb.host.clone(),
                    shuffle_addr: hb.shuffle_addr.clone(),
                    last_seen: now,
                    free_maps: hb.free_map_slots,
                    free_reduces: hb.free_reduce_slots,
                }
            });
        for r in &hb.reports {
            self.report(&mut st, &hb.tracker_id, r, &mut follow);
        }
        let tasks = self.assign(&mut st, hb);
        st.ended.retain(|(_, at)| at.elapsed() < CLEANUP_ANNOUNCE);
        let finished_jobs = st.ended.iter().map(|(id, _)| id.clone()).collect();
        let kill_attempts = st.kills.remove(&hb.tracker_id).unwrap_or_default();
        (TrackerHeartbeatResponse { tasks, finished_jobs, kill_attempts }, follow)
    }

    fn report(&self, st: &mut State, tracker: &str, r: &TaskReport, follow: &mut FollowUp) {
        let Some((job_id, is_map, index)) = st.attempts.get(&r.attempt_id).cloned() else { return };
        if let Some(a) = st.jobs.get_mut(&job_id).and_then(|j| j.attempts.get_mut(&r.attempt_id)) {
            if !r.status.is_empty() {
                a.status = r.status.clone();
            }
        }
        if r.state == AttemptState::AttemptRunning as i32 {
            return;
        }
        let max = self.max_attempts;
        let mut kills = Vec::new();
        let Some(job) = st.jobs.get_mut(&job_id) else { return };
        let map_only = job.reduces.is_empty();
        let task = if is_map { &mut job.maps[index as usize] } else { &mut job.reduces[index as usize] };
        let Some((_, started)) = task.running.remove(&r.attempt_id) else { return };
        let state = AttemptState::try_from(r.state).unwrap_or(AttemptState::Unspecified);
        let mut ended: Vec<(String, &str, String)> = Vec::new();
        let kind = if is_map { "map" } else { "reduce" };
        let outcome = match state {
            AttemptState::AttemptSucceeded => "succeeded",
            AttemptState::AttemptFailed => "failed",
            _ => "other",
        };
        metrics::counter!("jobtracker_attempts_total", "kind" => kind, "outcome" => outcome).increment(1);
        metrics::histogram!("jobtracker_attempt_duration_seconds", "kind" => kind, "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        match state {
            AttemptState::AttemptSucceeded if !matches!(task.status, TaskStatus::Done | TaskStatus::Committing) => {
                // Output in the DFS counts once it is committed (see `follow_up`); map output
                // on a tracker's disk counts at once.
                let commit = !is_map || map_only;
                task.status = if commit { TaskStatus::Committing } else { TaskStatus::Done };
                task.done = Some((r.attempt_id.clone(), tracker.to_owned()));
                // The first to finish wins; the others are aborted.
                ended.push((r.attempt_id.clone(), "SUCCEEDED", String::new()));
                for (other, (on, _)) in task.running.drain() {
                    tracing::info!(job = %job_id, attempt = %other, winner = %r.attempt_id, "killing the slower attempt");
                    ended.push((other.clone(), "KILLED", format!("{} finished first", r.attempt_id)));
                    kills.push((on, other));
                }
                if is_map {
                    job.map_times.push(started.elapsed());
                } else {
                    job.reduce_times.push(started.elapsed());
                }
                for (k, v) in &r.counters {
                    *job.counters.entry(k.clone()).or_default() += v;
                }
                if !is_map || map_only {
                    follow.commits.push((job_id.clone(), r.attempt_id.clone(), is_map, index));
                }
            }
            AttemptState::AttemptSucceeded => {
                ended.push((r.attempt_id.clone(), "KILLED", "another attempt won".into()))
            }
            _ if !r.fetch_failed_maps.is_empty() => {
                ended.push((r.attempt_id.clone(), "FAILED", r.error.clone()));
                // Not the reduce's fault: the maps whose output is gone run again, and the
                // reduce waits for them.
                tracing::warn!(job = %job_id, attempt = %r.attempt_id, maps = ?r.fetch_failed_maps, "map output could not be fetched: {}", r.error);
                task.attempts = task.attempts.saturating_sub(1);
                if task.running.is_empty() {
                    task.status = TaskStatus::Pending;
                }
                for &m in &r.fetch_failed_maps {
                    if let Some(mt) = job.maps.get_mut(m as usize) {
                        if mt.status == TaskStatus::Done {
                            mt.status = TaskStatus::Pending;
                            mt.done = None;
                            *job.counters.entry("MAPS_RERUN_FETCH_FAILED".into()).or_default() += 1;
                        }
                    }
                }
            }
            _ => {
                ended.push((r.attempt_id.clone(), "FAILED", r.error.clone()));
                if let Some(bad) = r.bad_record {
                    if is_map && !task.skip.contains(&bad) && (task.skip.len() as u32) < job.skip_max {
                        tracing::warn!(job = %job_id, attempt = %r.attempt_id, record = bad, at = %r.bad_record_at, "skipping a bad record from now on");
                        task.skip.push(bad);
                        task.skipped_at.push(r.bad_record_at.clone());
                        // Found a bad record: the attempt does not count.
                        task.attempts = task.attempts.saturating_sub(1);
                        *job.counters.entry("BAD_RECORDS_FOUND".into()).or_default() += 1;
                    }
                }
                tracing::warn!(job = %job_id, attempt = %r.attempt_id, tracker, "attempt failed: {}", r.error);
                task.failed_on.insert(tracker.to_owned());
                task.last_error = r.error.clone();
                *job.counters.entry("FAILED_ATTEMPTS".into()).or_default() += 1;
                let failures = job.tracker_failures.entry(tracker.to_owned()).or_default();
                *failures += 1;
                if *failures == job.max_tracker_failures {
                    tracing::warn!(job = %job_id, tracker, failures = *failures, "tracker blacklisted for this job");
                    *job.counters.entry("BLACKLISTED_TRACKERS".into()).or_default() += 1;
                }
                if r.fatal {
                    job.state = JobState::JobFailed;
                    job.error = format!(
                        "task {} failed, not retried: {}",
                        if is_map { format!("m_{index:06}") } else { format!("r_{index:06}") },
                        r.error
                    );
                    follow.failed.push(job_id.clone());
                } else if task.attempts >= max && task.running.is_empty() {
                    job.state = JobState::JobFailed;
                    job.error = format!(
                        "task {} failed {} times; last error: {}",
                        if is_map { format!("m_{index:06}") } else { format!("r_{index:06}") },
                        task.attempts,
                        r.error
                    );
                    follow.failed.push(job_id.clone());
                } else if task.running.is_empty() {
                    task.status = TaskStatus::Pending;
                }
            }
        }
        for (id, state, error) in ended {
            job.log_end(&id, state, &error);
        }
        // The map phase ends when the last map becomes done (a late report of a losing
        // speculative attempt does not move it).
        let map_done_now = is_map
            && state == AttemptState::AttemptSucceeded
            && job.maps[index as usize].done.as_ref().is_some_and(|(a, _)| *a == r.attempt_id);
        if map_done_now && job.maps.iter().all(|t| t.status == TaskStatus::Done) {
            job.maps_finish_ms = tusk_common::now_ms();
        }
        if job.state == JobState::JobRunning && !job.finishing {
            let all = |t: &[Task]| t.iter().all(|t| t.status == TaskStatus::Done);
            if all(&job.maps) && all(&job.reduces) {
                job.finishing = true;
                follow.complete.push(job_id);
            }
        }
        for (on, attempt) in kills {
            st.kills.entry(on).or_default().push(attempt);
        }
    }

    fn assign(&self, st: &mut State, hb: &TrackerHeartbeat) -> Vec<TaskAssignment> {
        let mut out = Vec::new();
        let (mut maps, mut reduces) = (hb.free_map_slots, hb.free_reduce_slots);
        let mut new_attempts = Vec::new();
        let trackers = &st.trackers;
        for (job_id, job) in st.jobs.iter_mut() {
            if job.state != JobState::JobRunning || job.finishing {
                continue;
            }
            // A tracker that failed too many of the job's tasks gets no more of them, as long
            // as some other tracker may take them.
            if job.blacklists(&hb.tracker_id) && trackers.keys().any(|t| !job.blacklists(t)) {
                continue;
            }
            // Maps: node-local first, then any; a tracker that failed the task comes last.
            while maps > 0 {
                let pending = |t: &Task| t.status == TaskStatus::Pending;
                let local = (0..job.maps.len()).find(|&i| {
                    pending(&job.maps[i])
                        && job.splits[i].hosts.contains(&hb.host)
                        && !job.maps[i].failed_on.contains(&hb.tracker_id)
                });
                let any = || {
                    (0..job.maps.len())
                        .find(|&i| pending(&job.maps[i]) && !job.maps[i].failed_on.contains(&hb.tracker_id))
                        .or_else(|| (0..job.maps.len()).find(|&i| pending(&job.maps[i])))
                };
                let (i, locality) = match local {
                    Some(i) => (i, "DATA_LOCAL_MAPS"),
                    None => match any() {
                        Some(i) => (i, "OTHER_LOCAL_MAPS"),
                        None => match straggler(job, &hb.tracker_id, false) {
                            Some(i) => (i, "SPECULATIVE_MAPS"),
                            None => break,
                        },
                    },
                };
                let id = job.start_attempt(job_id, true, i, &hb.tracker_id, locality);
                new_attempts.push((id.clone(), job_id.clone(), true, i as u32));
                out.push(TaskAssignment {
                    job_id: job_id.clone(),
                    attempt_id: id,
                    kind: TaskKind::Map as i32,
                    index: i as u32,
                    spec: Some(job.spec.clone()),
                    split: Some(job.splits[i].clone()),
                    map_outputs: Vec::new(),
                    skip_mode: job.skip_max > 0
                        && job.spec.mapper == crate::streaming::MAPPER
                        && !job.maps[i].last_error.is_empty(),
                    skip_records: job.maps[i].skip.clone(),
                });
                maps -= 1;
            }
            if !job.maps.iter().all(|t| t.status == TaskStatus::Done) {
                continue;
            }
            // One reduce per heartbeat (as Hadoop's scheduler), so a job's reduces spread over
            // the trackers: a pending one (one that did not fail here first), else a backup of
            // a straggler.
            if reduces > 0 {
                let pending = |i: &usize| job.reduces[*i].status == TaskStatus::Pending;
                let fresh = (0..job.reduces.len())
                    .filter(pending)
                    .find(|&i| !job.reduces[i].failed_on.contains(&hb.tracker_id))
                    .or_else(|| (0..job.reduces.len()).find(pending));
                let (i, speculative) = match fresh {
                    Some(i) => (i, false),
                    None => match straggler(job, &hb.tracker_id, true) {
                        Some(i) => (i, true),
                        None => continue,
                    },
                };
                let map_outputs = job
                    .maps
                    .iter()
                    .enumerate()
                    .filter_map(|(m, t)| {
                        let (attempt, tracker) = t.done.as_ref()?;
                        Some(MapOutputLocation {
                            map_index: m as u32,
                            attempt_id: attempt.clone(),
                            addr: trackers.get(tracker).map(|t| t.shuffle_addr.clone()).unwrap_or_default(),
                        })
                    })
                    .collect();
                let placement = if speculative { "SPECULATIVE_REDUCES" } else { "" };
                let id = job.start_attempt(job_id, false, i, &hb.tracker_id, placement);
                new_attempts.push((id.clone(), job_id.clone(), false, i as u32));
                out.push(TaskAssignment {
                    job_id: job_id.clone(),
                    attempt_id: id,
                    kind: TaskKind::Reduce as i32,
                    index: i as u32,
                    spec: Some(job.spec.clone()),
                    split: None,
                    map_outputs,
                    ..Default::default()
                });
                reduces -= 1;
            }
        }
        for (id, job, map, i) in new_attempts {
            st.attempts.insert(id, (job, map, i));
        }
        out
    }

    /// Trackers silent past the expiry are lost: what they ran, or hold for running jobs,
    /// runs again.
    /// The live trackers, by id.
    pub fn trackers(&self) -> Vec<TrackerView> {
        let st = self.state.lock();
        let mut out: Vec<TrackerView> = st
            .trackers
            .iter()
            .map(|(id, t)| {
                let running_on = |tasks: &[Task]| {
                    tasks.iter().map(|k| k.running.values().filter(|(tr, _)| tr == id).count()).sum::<usize>()
                };
                let running = st.jobs.values().map(|j| running_on(&j.maps) + running_on(&j.reduces)).sum();
                TrackerView {
                    id: id.clone(),
                    host: t.host.clone(),
                    shuffle_addr: t.shuffle_addr.clone(),
                    since_heartbeat: t.last_seen.elapsed(),
                    free_map_slots: t.free_maps,
                    free_reduce_slots: t.free_reduces,
                    running,
                    blacklisted_by: st.jobs.values().filter(|j| j.blacklists(id)).count(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn expire_trackers(&self) -> Vec<String> {
        let mut st = self.state.lock();
        let lost: Vec<String> = st
            .trackers
            .iter()
            .filter(|(_, t)| t.last_seen.elapsed() > self.tracker_expiry)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &lost {
            st.trackers.remove(id);
            tracing::warn!(tracker = %id, "tasktracker lost: its tasks run again");
            for job in st.jobs.values_mut() {
                if job.state != JobState::JobRunning || job.finishing {
                    continue;
                }
                let reducing = !job.reduces.iter().all(|t| t.status == TaskStatus::Done);
                let map_only = job.reduces.is_empty();
                let (mut rerun, mut killed) = (0, 0);
                let mut lost_attempts = Vec::new();
                for (is_map, tasks) in [(true, &mut job.maps), (false, &mut job.reduces)] {
                    for t in tasks.iter_mut() {
                        let gone: Vec<String> =
                            t.running.iter().filter(|(_, (tr, _))| tr == id).map(|(a, _)| a.clone()).collect();
                        t.running.retain(|_, (tr, _)| tr != id);
                        killed += gone.len() as u64;
                        lost_attempts.extend(gone);
                        let lost_output =
                            is_map && !map_only && reducing && t.done.as_ref().is_some_and(|(_, tr)| tr == id);
                        if lost_output {
                            t.done = None;
                            t.status = TaskStatus::Pending;
                            rerun += 1;
                        } else if t.status == TaskStatus::Running && t.running.is_empty() {
                            t.status = TaskStatus::Pending;
                        }
                    }
                }
                for a in lost_attempts {
                    job.log_end(&a, "LOST", &format!("tasktracker {id} lost"));
                }
                if rerun > 0 {
                    *job.counters.entry("MAPS_RERUN_LOST_TRACKER".into()).or_default() += rerun;
                }
                if killed > 0 {
                    *job.counters.entry("ATTEMPTS_KILLED_LOST_TRACKER".into()).or_default() += killed;
                }
            }
        }
        lost
    }

    /// Commits attempts and finishes or fails jobs, as a heartbeat asked.
    pub async fn follow_up(&self, f: FollowUp) {
        let mut complete = f.complete;
        for (job, attempt, is_map, index) in f.commits {
            let output = match self.state.lock().jobs.get(&job) {
                Some(j) => j.spec.output.clone(),
                None => continue,
            };
            let name = part_name(is_map, index);
            let from = format!("{}/{name}", temp_output(&output, &job, &attempt));
            let to = format!("{}/{name}", staging(&output, &job));
            if let Err(e) = self.client.rename(&from, &to).await {
                self.fail(&job, format!("cannot commit {attempt}: {e}")).await;
                continue;
            }
            // Committed: the task is done, and maybe the job (follow-ups of different
            // heartbeats run side by side; the job completes after its last commit).
            let mut st = self.state.lock();
            let Some(j) = st.jobs.get_mut(&job) else { continue };
            let tasks = if is_map { &mut j.maps } else { &mut j.reduces };
            if let Some(t) = tasks.get_mut(index as usize) {
                t.status = TaskStatus::Done;
            }
            let all = |t: &[Task]| t.iter().all(|t| t.status == TaskStatus::Done);
            if j.state == JobState::JobRunning && !j.finishing && all(&j.maps) && all(&j.reduces) {
                j.finishing = true;
                complete.push(job);
            }
        }
        for job in complete {
            let output = match self.state.lock().jobs.get(&job) {
                Some(j) => j.spec.output.clone(),
                None => continue,
            };
            let done = async {
                let stage = staging(&output, &job);
                self.client.delete(&format!("{stage}/_temporary"), true).await?;
                self.client.create_empty(&format!("{stage}/_SUCCESS"), false).await?;
                // OUT appears whole, in one rename, or not at all.
                self.client.rename(&stage, &output).await?;
                Ok::<_, tusk_client::ClientError>(())
            }
            .await;
            let mut st = self.state.lock();
            if let Some(j) = st.jobs.get_mut(&job) {
                j.finish_ms = tusk_common::now_ms();
                j.end_attempts();
                match done {
                    Ok(()) => {
                        j.state = JobState::JobSucceeded;
                        tracing::info!(job = %job, "job succeeded");
                    }
                    Err(e) => {
                        j.state = JobState::JobFailed;
                        j.error = format!("cannot commit the job: {e}");
                    }
                }
            }
            st.ended.push((job.clone(), Instant::now()));
            drop(st);
            self.record(&job);
        }
        for job in f.failed {
            let error = self.state.lock().jobs.get(&job).map(|j| j.error.clone()).unwrap_or_default();
            self.fail(&job, error).await;
        }
    }

    /// Kills a running job (`tusk job kill`): trackers abort its attempts when they hear it
    /// ended, and what it built is removed. Returns its status.
    pub async fn kill(&self, id: &str) -> Result<JobStatus, String> {
        let output = {
            let mut st = self.state.lock();
            let Some(j) = st.jobs.get_mut(id) else { return Err(format!("no job {id}")) };
            if j.state != JobState::JobRunning || j.finishing {
                return Err(format!("job {id} is not running"));
            }
            j.state = JobState::JobKilled;
            j.finishing = true;
            j.error = "killed".into();
            j.finish_ms = tusk_common::now_ms();
            j.end_attempts();
            let out = staging(&j.spec.output, id);
            st.ended.push((id.to_owned(), Instant::now()));
            out
        };
        tracing::info!(job = id, "job killed");
        self.record(id);
        if let Err(e) = self.client.delete(&output, true).await {
            tracing::warn!(job = id, "cannot remove the output of a killed job {output}: {e}");
        }
        self.status(id, false).ok_or_else(|| format!("no job {id}"))
    }

    /// Fails a job and removes what it built (its output path never appeared).
    async fn fail(&self, job: &str, error: String) {
        let output = {
            let mut st = self.state.lock();
            let Some(j) = st.jobs.get_mut(job) else { return };
            j.state = JobState::JobFailed;
            j.finishing = true;
            j.error = error.clone();
            j.finish_ms = tusk_common::now_ms();
            j.end_attempts();
            let out = staging(&j.spec.output, job);
            st.ended.push((job.to_owned(), Instant::now()));
            out
        };
        tracing::warn!(job, "job failed: {error}");
        self.record(job);
        if let Err(e) = self.client.delete(&output, true).await {
            tracing::warn!(job, "cannot remove the output of a failed job {output}: {e}");
        }
    }
}

/// A job id prefix in Hadoop's style: the jobtracker's start time, yyyyMMddHHmm.
fn chrono_like_id() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M").to_string()
}
