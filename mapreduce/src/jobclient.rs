//! `tusk job`: run a built-in job and follow it, `status ID`, `list`.
//!
//! ```text
//! tusk job run wordcount IN... OUT [-r REDUCES]
//! tusk job run identity IN... OUT [-r REDUCES]       (sorted lines; -r 0: map-only copy)
//! tusk job run sort IN... OUT [-r REDUCES]           (lines sorted end to end across parts)
//! tusk job run grep IN[,IN...] OUT REGEX [GROUP]     (matches counted, most frequent first)
//! tusk job run teragen ROWS OUT [-m MAPS]
//! tusk job run terasort IN OUT [-r REDUCES]
//! tusk job run teravalidate SORTED [TERAGEN_OUT] REPORT
//! tusk job run pi MAPS SAMPLES
//! tusk job status JOB_ID
//! tusk job history JOB_ID                            (every attempt: tracker, start, duration)
//! tusk job list
//! ```

use std::io::Write;
use std::time::Duration;
use tusk_proto::mapreduce::job_tracker_client::JobTrackerClient;
use tusk_proto::mapreduce::{JobSpec, JobState, JobStatus, JobStatusRequest, ListJobsRequest, SubmitJobRequest};

const USAGE: &str = "Usage: tusk job run wordcount|sort|identity <in> [<in>...] <out> [-r <reduces>]\n       tusk job run grep <in>[,<in>...] <out> <regex> [<group>]\n       tusk job run teragen <rows> <out> [-m <maps>]\n       tusk job run terasort <in> <out> [-r <reduces>]\n       tusk job run teravalidate <sorted> [<teragen output>] <report>\n       tusk job run pi <maps> <samples per map>\n       tusk job streaming -input <in> [-input <in>...] -output <out> -mapper <cmd> [-reducer <cmd>] [-combiner <cmd>] [-file <local file>]... [-numReduceTasks <n>] [-cmdenv <k=v>]...\n       tusk job status <job id>\n       tusk job history <job id>\n       tusk job kill <job id>\n       tusk job list";

/// Parses Hadoop Streaming's options into a job and the local files to ship.
fn parse_streaming(args: &[String], user: &str) -> Result<(JobSpec, Vec<String>), String> {
    let mut spec = JobSpec { name: "streaming".into(), user: user.to_owned(), num_reduces: 1, ..Default::default() };
    let (mut files, mut env) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(opt) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{opt} needs a value"));
        match opt.as_str() {
            "-input" => spec.inputs.push(value()?),
            "-output" => spec.output = value()?,
            "-mapper" => {
                spec.mapper = crate::streaming::MAPPER.into();
                spec.settings.insert("stream.map.command".into(), value()?);
            }
            "-reducer" => {
                let cmd = value()?;
                if cmd != "NONE" {
                    spec.reducer = crate::streaming::MAPPER.into();
                    spec.settings.insert("stream.reduce.command".into(), cmd);
                } else {
                    spec.num_reduces = 0;
                }
            }
            "-combiner" => {
                spec.settings.insert("stream.combine.command".into(), value()?);
            }
            "-file" => files.push(value()?),
            "-numReduceTasks" => {
                let v = value()?;
                spec.num_reduces = v.parse().map_err(|_| format!("-numReduceTasks: not a number: {v}"))?;
            }
            "-cmdenv" => env.push(value()?),
            "-D" => {
                let (k, v) = define(&value()?)?;
                spec.settings.insert(k, v);
            }
            d if d.starts_with("-D") => {
                let (k, v) = define(&d[2..])?;
                spec.settings.insert(k, v);
            }
            other => return Err(format!("Unrecognized option: {other}")),
        }
    }
    if spec.inputs.is_empty() || spec.output.is_empty() || spec.mapper.is_empty() {
        return Err("Required arguments missing: -input, -output and -mapper".into());
    }
    if spec.num_reduces > 0 && spec.reducer.is_empty() {
        spec.reducer = "identity".into();
    }
    if spec.num_reduces == 0 {
        spec.reducer.clear();
    }
    if !env.is_empty() {
        spec.settings.insert("stream.env".into(), env.join(","));
    }
    Ok((spec, files))
}

/// Copies the `-file`s into a staging directory in the DFS; returns it and their paths.
async fn ship(client: &tusk_client::Client, files: &[String], user: &str) -> Result<(String, Vec<String>), String> {
    let dir = format!("/user/{user}/.staging/job-{}-{}", tusk_common::now_ms(), rand::random::<u32>());
    client.mkdirs(&dir, 0o700, true).await.map_err(|e| format!("{dir}: {e}"))?;
    let mut paths = Vec::new();
    for f in files {
        let data = std::fs::read(f).map_err(|e| format!("-file {f}: {e}"))?;
        let name = std::path::Path::new(f).file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let path = format!("{dir}/{name}");
        let mut w = client.create(&path, false, 0, 0).await.map_err(|e| format!("{path}: {e}"))?;
        w.write(&data).await.map_err(|e| format!("{path}: {e}"))?;
        w.close().await.map_err(|e| format!("{path}: {e}"))?;
        paths.push(path);
    }
    Ok((dir, paths))
}

fn state_name(s: i32) -> &'static str {
    match JobState::try_from(s).unwrap_or(JobState::Unspecified) {
        JobState::JobRunning => "RUNNING",
        JobState::JobSucceeded => "SUCCEEDED",
        JobState::JobFailed => "FAILED",
        JobState::JobKilled => "KILLED",
        JobState::Unspecified => "UNKNOWN",
    }
}

/// `tusk job history ID`: the job's status, then every attempt in the order they started,
/// with its tracker, placement, start (from the submission), duration and how it ended.
fn print_history(out: &mut dyn Write, s: &JobStatus) {
    print_status(out, s);
    let mut attempts = s.attempts.clone();
    attempts.sort_by_key(|a| (a.start_ms, a.attempt_id.clone()));
    let _ = writeln!(out, "Attempts: {}", attempts.len());
    let _ = writeln!(out, "Attempt\tTracker\tPlacement\tStart\tDuration\tState\tStatus\tError");
    let secs = |ms: i64| format!("{:.1}s", ms.max(0) as f64 / 1000.0);
    for a in attempts {
        let duration = if a.finish_ms > 0 { secs(a.finish_ms - a.start_ms) } else { "-".into() };
        let placement = if a.locality.is_empty() { "-" } else { a.locality.as_str() };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t+{}\t{}\t{}\t{}\t{}",
            a.attempt_id,
            a.tracker,
            placement,
            secs(a.start_ms - s.submit_time_ms),
            duration,
            a.state,
            if a.status.is_empty() { "-" } else { a.status.as_str() },
            a.error.lines().next().unwrap_or("")
        );
    }
}

fn pct(done: u32, total: u32) -> u32 {
    (done * 100).checked_div(total).unwrap_or(100)
}

fn print_status(out: &mut dyn Write, s: &JobStatus) {
    let _ = writeln!(out, "Job: {}", s.job_id);
    let _ = writeln!(out, "State: {}", state_name(s.state));
    let _ = writeln!(out, "Output: {}", s.output);
    let _ = writeln!(
        out,
        "map {}% ({}/{}) reduce {}% ({}/{})",
        pct(s.maps_done, s.maps_total),
        s.maps_done,
        s.maps_total,
        pct(s.reduces_done, s.reduces_total),
        s.reduces_done,
        s.reduces_total
    );
    if !s.error.is_empty() {
        let _ = writeln!(out, "Error: {}", s.error);
    }
    if !s.skipped_records.is_empty() {
        let _ = writeln!(out, "Skipped bad records: {}", s.skipped_records.len());
        for at in &s.skipped_records {
            let _ = writeln!(out, "\t{at}");
        }
    }
    let secs = |ms: i64| format!("{:.1}s", ms.max(0) as f64 / 1000.0);
    if s.maps_finish_time_ms > 0 && s.maps_total > 0 {
        let _ = writeln!(out, "Map phase: {}", secs(s.maps_finish_time_ms - s.submit_time_ms));
        if s.finish_time_ms > 0 && s.reduces_total > 0 {
            let _ = writeln!(out, "Reduce phase: {}", secs(s.finish_time_ms - s.maps_finish_time_ms));
        }
    }
    if s.finish_time_ms > 0 {
        let _ = writeln!(out, "Elapsed: {}", secs(s.finish_time_ms - s.submit_time_ms));
    }
    let mut counters: Vec<_> = s.counters.iter().collect();
    counters.sort();
    let _ = writeln!(out, "Counters: {}", counters.len());
    for (k, v) in counters {
        let _ = writeln!(out, "\t{k}={v}");
    }
}

/// What `tusk job run` does: one job or several in a row (grep searches, then sorts by
/// count), a scratch directory of theirs to remove at the end, and what to show after.
#[derive(Debug)]
struct Plan {
    jobs: Vec<JobSpec>,
    scratch: Option<String>,
    after: After,
}

#[derive(Debug, PartialEq)]
enum After {
    Nothing,
    /// Print teravalidate's report (this directory) and fail if it found an error.
    Report(String),
    /// Print pi's estimate from the counts in this directory.
    Pi(String),
}

const JOBS: &str = "wordcount, grep, sort, identity, teragen, terasort, teravalidate, pi";

fn job(name: &str, inputs: Vec<String>, output: String, mapper: &str, reducer: &str, reduces: u32) -> JobSpec {
    JobSpec {
        name: name.into(),
        inputs,
        output,
        mapper: mapper.into(),
        reducer: if reduces == 0 { String::new() } else { reducer.into() },
        num_reduces: reduces,
        ..Default::default()
    }
}

/// A `-D key=value` setting (Hadoop's generic option).
fn define(kv: &str) -> Result<(String, String), String> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("-D needs key=value, not '{kv}'")),
    }
}

fn number<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{what}: not a number: {v}"))
}

/// Parses `run NAME ARGS...` (Hadoop's example programs' arguments) into a plan. `scratch`
/// names a fresh hidden directory for jobs that need one.
fn parse_run(args: &[String], scratch: &str) -> Result<Plan, String> {
    let (name, rest) = args.split_first().ok_or("run needs a job name")?;
    let mut paths = Vec::new();
    let (mut reduces, mut maps) = (None, None);
    let mut settings = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-r" => reduces = Some(number::<u32>("-r", it.next().ok_or("-r needs a number")?)?),
            "-m" => maps = Some(number::<u32>("-m", it.next().ok_or("-m needs a number")?)?),
            "-D" => settings.push(define(it.next().ok_or("-D needs key=value")?)?),
            d if d.starts_with("-D") => settings.push(define(&d[2..])?),
            _ => paths.push(a.clone()),
        }
    }
    let mut plan = plan(name, paths, reduces, maps, scratch)?;
    for spec in &mut plan.jobs {
        spec.settings.extend(settings.iter().cloned());
    }
    Ok(plan)
}

fn plan(
    name: &str,
    mut paths: Vec<String>,
    reduces: Option<u32>,
    maps: Option<u32>,
    scratch: &str,
) -> Result<Plan, String> {
    let one = |spec: JobSpec| Ok(Plan { jobs: vec![spec], scratch: None, after: After::Nothing });
    let in_out = |paths: &mut Vec<String>, usage: &str| -> Result<(Vec<String>, String), String> {
        if paths.len() < 2 {
            return Err(format!("Usage: tusk job run {name} {usage}"));
        }
        let out = paths.pop().unwrap_or_default();
        Ok((std::mem::take(paths), out))
    };
    let total_order = |mut spec: JobSpec| {
        spec.settings.insert(crate::partition::SETTING.into(), crate::partition::TOTAL_ORDER.into());
        spec
    };
    match name {
        "wordcount" => {
            let (ins, out) = in_out(&mut paths, "<in>... <out> [-r <reduces>]")?;
            let mut spec = job(name, ins, out, "wordcount", "sum", reduces.unwrap_or(1));
            spec.combiner = if spec.num_reduces > 0 { "sum".into() } else { String::new() };
            one(spec)
        }
        "identity" => {
            let (ins, out) = in_out(&mut paths, "<in>... <out> [-r <reduces>]")?;
            one(job(name, ins, out, "identity", "identity", reduces.unwrap_or(1)))
        }
        "sort" => {
            let (ins, out) = in_out(&mut paths, "<in>... <out> [-r <reduces>]")?;
            one(total_order(job(name, ins, out, "identity", "identity", reduces.unwrap_or(1).max(1))))
        }
        "grep" => {
            if !(3..=4).contains(&paths.len()) {
                return Err("Usage: tusk job run grep <in>[,<in>...] <out> <regex> [<group>]".into());
            }
            let ins: Vec<String> = paths[0].split(',').map(str::to_owned).collect();
            let search_out = format!("{scratch}/search");
            let mut search = job("grep-search", ins, search_out.clone(), "grep", "sum", reduces.unwrap_or(1).max(1));
            search.combiner = "sum".into();
            search.settings.insert("grep.pattern".into(), paths[2].clone());
            if let Some(g) = paths.get(3) {
                search.settings.insert("grep.group".into(), g.clone());
            }
            let sort = job("grep-sort", vec![search_out], paths[1].clone(), "grep-sort", "grep-sort", 1);
            Ok(Plan { jobs: vec![search, sort], scratch: Some(scratch.to_owned()), after: After::Nothing })
        }
        "teragen" => {
            let [rows, out] = &paths[..] else {
                return Err("Usage: tusk job run teragen <rows> <out> [-m <maps>]".into());
            };
            let rows: u64 = number("teragen rows", rows)?;
            // By default a map per 128 MiB of rows (one block each).
            let maps = maps.unwrap_or_else(|| (rows * 100).div_ceil(128 << 20).clamp(1, 10_000) as u32);
            let mut spec = job(name, Vec::new(), out.clone(), "teragen", "", 0);
            spec.generate_records = rows;
            spec.generate_maps = maps;
            spec.settings.insert("output.format".into(), "tera".into());
            one(spec)
        }
        "terasort" => {
            let (ins, out) = in_out(&mut paths, "<in> <out> [-r <reduces>]")?;
            let mut spec = total_order(job(name, ins, out, "tera", "identity", reduces.unwrap_or(1).max(1)));
            spec.settings.insert("output.format".into(), "tera".into());
            one(spec)
        }
        "teravalidate" => {
            if !(2..=3).contains(&paths.len()) {
                return Err("Usage: tusk job run teravalidate <sorted> [<teragen output>] <report>".into());
            }
            let (ins, out) = in_out(&mut paths, "")?;
            let spec = job(name, ins, out.clone(), "teravalidate", "teravalidate", 1);
            Ok(Plan { jobs: vec![spec], scratch: None, after: After::Report(out) })
        }
        "pi" => {
            let [nmaps, samples] = &paths[..] else {
                return Err("Usage: tusk job run pi <maps> <samples per map>".into());
            };
            let (nmaps, samples): (u32, u64) = (number("pi maps", nmaps)?, number("pi samples", samples)?);
            if nmaps == 0 || samples == 0 {
                return Err("pi needs at least one map and one sample".into());
            }
            let out = format!("{scratch}/out");
            let mut spec = job(name, Vec::new(), out.clone(), "pi", "sum", 1);
            spec.generate_records = u64::from(nmaps).saturating_mul(samples);
            spec.generate_maps = nmaps;
            Ok(Plan { jobs: vec![spec], scratch: Some(scratch.to_owned()), after: After::Pi(out) })
        }
        other => Err(format!("Unknown job: {other} (built-in jobs: {JOBS})")),
    }
}

/// Makes relative paths absolute under /user/<user>, as the shell does.
fn absolute(p: &str, user: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/user/{user}/{p}")
    }
}

fn dfs_client_error(e: impl std::fmt::Display) -> String {
    format!("cannot reach the namenode: {e}")
}

async fn dfs(namenode: &str, user: &str) -> Result<tusk_client::Client, String> {
    let conf = tusk_common::config::ClientConfig::default();
    tusk_client::Client::connect(namenode, user, &conf).await.map_err(dfs_client_error)
}

/// The text of every part file of a job's output directory, in order.
async fn read_output(client: &tusk_client::Client, dir: &str) -> Result<String, String> {
    let (_, mut entries) = client.list_all(dir).await.map_err(|e| format!("{dir}: {e}"))?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut text = Vec::new();
    for e in entries.iter().filter(|e| e.name.starts_with("part-")) {
        let path = format!("{dir}/{}", e.name);
        let mut r = client.open(&path).await.map_err(|e| format!("{path}: {e}"))?;
        text.extend(r.read_to_end().await.map_err(|e| format!("{path}: {e}"))?);
    }
    String::from_utf8(text).map_err(|_| format!("{dir}: the output is not text"))
}

/// What a plan shows once its jobs succeeded; the exit code.
async fn after(
    client: &tusk_client::Client,
    after: &After,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let (dir, pi) = match after {
        After::Nothing => return 0,
        After::Report(dir) => (dir, false),
        After::Pi(dir) => (dir, true),
    };
    let text = match read_output(client, dir).await {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "job: {e}");
            return 1;
        }
    };
    if pi {
        let count = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('\t')?.parse::<u64>().ok()).unwrap_or(0)
        };
        let (inside, outside) = (count("inside"), count("outside"));
        let _ = writeln!(out, "Estimated value of Pi is {:.20}", crate::functions::pi_estimate(inside, outside));
        return 0;
    }
    let _ = write!(out, "teravalidate report ({dir}):\n{text}");
    if text.lines().any(|l| l.starts_with("error\t")) {
        let _ = writeln!(err, "teravalidate: the output is NOT valid (see the error lines above)");
        1
    } else {
        let _ = writeln!(out, "teravalidate: the output is sorted and complete");
        0
    }
}

pub async fn run(
    args: &[String],
    jobtracker: &str,
    namenode: &str,
    user: &str,
    progress: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        let _ = writeln!(err, "{USAGE}");
        return 1;
    };
    let mut plan = None;
    // Files shipped for a streaming job, removed when it ends.
    let mut staging = None;
    match cmd.as_str() {
        "streaming" => match parse_streaming(rest, user) {
            Ok((s, files)) => {
                if !files.is_empty() {
                    let shipped = match dfs(namenode, user).await {
                        Ok(c) => ship(&c, &files, user).await.map(|r| (c, r)),
                        Err(e) => Err(e),
                    };
                    match shipped {
                        Ok((c, (dir, paths))) => {
                            let mut s = s;
                            s.settings.insert("stream.files".into(), paths.join(","));
                            staging = Some((c, dir));
                            plan = Some(Plan { jobs: vec![s], scratch: None, after: After::Nothing });
                        }
                        Err(e) => {
                            let _ = writeln!(err, "job: {e}");
                            return 1;
                        }
                    }
                } else {
                    plan = Some(Plan { jobs: vec![s], scratch: None, after: After::Nothing });
                }
            }
            Err(e) => {
                let _ = writeln!(err, "job: {e}\n{USAGE}");
                return 1;
            }
        },
        "run" => {
            let scratch = format!("/user/{user}/.tusk-tmp-{}-{:08x}", tusk_common::now_ms(), rand::random::<u32>());
            match parse_run(rest, &scratch) {
                Ok(p) => plan = Some(p),
                Err(e) => {
                    let _ = writeln!(err, "job: {e}\n{USAGE}");
                    return 1;
                }
            }
        }
        "status" | "list" | "kill" | "history" => {}
        _ => {
            let _ = writeln!(err, "{USAGE}");
            return 1;
        }
    }
    if let Some(p) = &mut plan {
        for spec in &mut p.jobs {
            spec.user = user.to_owned();
            spec.inputs = spec.inputs.iter().map(|i| absolute(i, user)).collect();
            spec.output = absolute(&spec.output, user);
        }
    }
    let mut c = match JobTrackerClient::connect(format!("http://{jobtracker}")).await {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "job: cannot reach the jobtracker at {jobtracker}: {e}");
            return 1;
        }
    };
    match cmd.as_str() {
        "list" => match c.list_jobs(ListJobsRequest {}).await {
            Ok(r) => {
                let jobs = r.into_inner().jobs;
                let _ = writeln!(out, "Total jobs:{}", jobs.len());
                let _ = writeln!(out, "JobId\tState\tMaps\tReduces\tOutput");
                for j in jobs {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}/{}\t{}/{}\t{}",
                        j.job_id,
                        state_name(j.state),
                        j.maps_done,
                        j.maps_total,
                        j.reduces_done,
                        j.reduces_total,
                        j.output
                    );
                }
                0
            }
            Err(s) => {
                let _ = writeln!(err, "job: {}", s.message());
                1
            }
        },
        "kill" => {
            let Some(id) = rest.first() else {
                let _ = writeln!(err, "{USAGE}");
                return 1;
            };
            match c.kill_job(JobStatusRequest { job_id: id.clone(), with_attempts: false }).await {
                Ok(_) => {
                    let _ = writeln!(out, "Killed job {id}");
                    0
                }
                Err(s) => {
                    let _ = writeln!(err, "job: {}", s.message());
                    1
                }
            }
        }
        "status" | "history" => {
            let Some(id) = rest.first() else {
                let _ = writeln!(err, "{USAGE}");
                return 1;
            };
            let history = cmd == "history";
            match c.get_job_status(JobStatusRequest { job_id: id.clone(), with_attempts: history }).await {
                Ok(s) if history => {
                    print_history(out, s.get_ref());
                    0
                }
                Ok(s) => {
                    print_status(out, s.get_ref());
                    0
                }
                Err(s) => {
                    let _ = writeln!(err, "job: {}", s.message());
                    1
                }
            }
        }
        _ => {
            let Some(plan) = plan else { return 1 };
            let mut code = 0;
            for spec in plan.jobs {
                code = follow(&mut c, spec, progress, out, err).await;
                if code != 0 {
                    break;
                }
            }
            let needs_dfs = plan.scratch.is_some() || plan.after != After::Nothing;
            if needs_dfs {
                match dfs(namenode, user).await {
                    Ok(client) => {
                        if code == 0 {
                            code = after(&client, &plan.after, out, err).await;
                        }
                        if let Some(dir) = &plan.scratch {
                            let _ = client.delete(dir, true).await;
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(err, "job: {e}");
                        code = 1;
                    }
                }
            }
            if let Some((client, dir)) = staging {
                let _ = client.delete(&dir, true).await;
            }
            code
        }
    }
}

/// A live bar on the terminal (stderr), when there is one.
fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(200);
    let style = indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Submits a job and prints its progress until it ends (Hadoop's ` map 45% reduce 12%`
/// lines, or a live bar when `progress`); the exit code.
async fn follow(
    c: &mut JobTrackerClient<tonic::transport::Channel>,
    spec: JobSpec,
    progress: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let id = match c.submit_job(SubmitJobRequest { spec: Some(spec) }).await {
        Ok(r) => r.into_inner().job_id,
        Err(s) => {
            let _ = writeln!(err, "job: {}", s.message());
            return 1;
        }
    };
    let _ = writeln!(out, "Running job: {id}");
    let bar = progress.then(progress_bar);
    let mut last = String::new();
    let mut poll = Duration::from_millis(20);
    loop {
        let s = match c.get_job_status(JobStatusRequest { job_id: id.clone(), with_attempts: false }).await {
            Ok(s) => s.into_inner(),
            Err(s) => {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                let _ = writeln!(err, "job: {}", s.message());
                return 1;
            }
        };
        let (m, r) = (pct(s.maps_done, s.maps_total), pct(s.reduces_done, s.reduces_total));
        let line = format!(" map {m}% reduce {r}%");
        match &bar {
            Some(b) => {
                b.set_position(u64::from(m + r));
                b.set_message(format!(
                    "{id}  map {m}% ({}/{})  reduce {r}% ({}/{})",
                    s.maps_done, s.maps_total, s.reduces_done, s.reduces_total
                ));
            }
            None if line != last => {
                let _ = writeln!(out, "{line}");
            }
            None => {}
        }
        last = line;
        if s.state != JobState::JobRunning as i32 {
            if let Some(b) = &bar {
                b.finish_and_clear();
                let _ = writeln!(out, "{last}");
            }
            let ok = s.state == JobState::JobSucceeded as i32;
            let how = match JobState::try_from(s.state) {
                Ok(JobState::JobSucceeded) => "completed successfully",
                Ok(JobState::JobKilled) => "was killed",
                _ => "failed",
            };
            let _ = writeln!(out, "Job {id} {how}");
            print_status(out, &s);
            return if ok { 0 } else { 1 };
        }
        // Quick at first (a small job is done in well under a second), then every 300 ms.
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(Duration::from_millis(300));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn run_arguments() {
        let p = parse_run(&a(&["wordcount", "/in", "/in2", "/out", "-r", "3"]), "/tmp/x").unwrap();
        let s = &p.jobs[0];
        assert_eq!((s.inputs.len(), s.output.as_str(), s.num_reduces, s.combiner.as_str()), (2, "/out", 3, "sum"));
        assert!(parse_run(&a(&["nosuch", "/in", "/out"]), "/s").unwrap_err().contains("Unknown job"));
        assert!(parse_run(&a(&["wordcount", "/in"]), "/s").is_err());
        assert!(parse_run(&a(&["wordcount", "/in", "/out", "-r", "x"]), "/s").unwrap_err().contains("not a number"));
        assert_eq!(absolute("x", "bob"), "/user/bob/x");
    }

    #[test]
    fn example_programs() {
        let p = parse_run(&a(&["grep", "/in1,/in2", "/out", "dfs[a-z.]+"]), "/s").unwrap();
        assert_eq!(p.jobs.len(), 2);
        assert_eq!(p.jobs[0].inputs, ["/in1", "/in2"]);
        assert_eq!(p.jobs[0].settings["grep.pattern"], "dfs[a-z.]+");
        assert_eq!((p.jobs[1].inputs[0].as_str(), p.jobs[1].output.as_str()), ("/s/search", "/out"));
        assert_eq!(p.scratch.as_deref(), Some("/s"));

        let p = parse_run(&a(&["teragen", "10000000", "/gen"]), "/s").unwrap();
        let g = &p.jobs[0];
        assert_eq!((g.generate_records, g.generate_maps, g.num_reduces), (10_000_000, 8, 0));
        assert!(g.inputs.is_empty());
        let p = parse_run(&a(&["teragen", "100", "/gen", "-m", "3"]), "/s").unwrap();
        assert_eq!(p.jobs[0].generate_maps, 3);

        let p = parse_run(&a(&["terasort", "/gen", "/sorted", "-r", "4"]), "/s").unwrap();
        assert_eq!(p.jobs[0].settings["partitioner"], "total-order");
        assert_eq!(p.jobs[0].settings["output.format"], "tera");
        let p = parse_run(&a(&["teravalidate", "/sorted", "/gen", "/report"]), "/s").unwrap();
        assert_eq!((p.jobs[0].inputs.len(), p.after), (2, After::Report("/report".into())));

        let p = parse_run(&a(&["pi", "4", "1000"]), "/s").unwrap();
        assert_eq!((p.jobs[0].generate_records, p.jobs[0].generate_maps), (4000, 4));
        assert_eq!(p.after, After::Pi("/s/out".into()));
        assert!(parse_run(&a(&["pi", "0", "10"]), "/s").is_err());
        assert!(parse_run(&a(&["teragen", "lots", "/gen"]), "/s").unwrap_err().contains("not a number"));
        let p = parse_run(&a(&["wordcount", "-D", "map.output.compress=zstd", "/in", "-Dx=1", "/out"]), "/s").unwrap();
        assert_eq!(
            (p.jobs[0].settings["map.output.compress"].as_str(), p.jobs[0].settings["x"].as_str()),
            ("zstd", "1")
        );
        assert!(parse_run(&a(&["wordcount", "-D", "novalue", "/in", "/out"]), "/s").is_err());
    }
}
