//! `tusk job`: run a built-in job and follow it, `status ID`, `list`.
//!
//! ```text
//! tusk job run wordcount IN... OUT [-r REDUCES]
//! tusk job run identity IN... OUT [-r REDUCES]       (sorted lines; -r 0: map-only copy)
//! tusk job status JOB_ID
//! tusk job list
//! ```

use std::io::Write;
use std::time::Duration;
use tusk_proto::mapreduce::job_tracker_client::JobTrackerClient;
use tusk_proto::mapreduce::{JobSpec, JobState, JobStatus, JobStatusRequest, ListJobsRequest, SubmitJobRequest};

const USAGE: &str = "Usage: tusk job run <wordcount|identity> <in> [<in>...] <out> [-r <reduces>]\n       tusk job streaming -input <in> [-input <in>...] -output <out> -mapper <cmd> [-reducer <cmd>] [-file <local file>]... [-numReduceTasks <n>] [-cmdenv <k=v>]...\n       tusk job status <job id>\n       tusk job kill <job id>\n       tusk job list";

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
            "-file" => files.push(value()?),
            "-numReduceTasks" => {
                let v = value()?;
                spec.num_reduces = v.parse().map_err(|_| format!("-numReduceTasks: not a number: {v}"))?;
            }
            "-cmdenv" => env.push(value()?),
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
    let mut counters: Vec<_> = s.counters.iter().collect();
    counters.sort();
    let _ = writeln!(out, "Counters: {}", counters.len());
    for (k, v) in counters {
        let _ = writeln!(out, "\t{k}={v}");
    }
}

/// Parses `run NAME IN... OUT [-r N]` into a job.
fn parse_run(args: &[String], user: &str) -> Result<JobSpec, String> {
    let (name, rest) = args.split_first().ok_or("run needs a job name")?;
    let mut paths = Vec::new();
    let mut reduces = 1u32;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if a == "-r" {
            let v = it.next().ok_or("-r needs a number")?;
            reduces = v.parse().map_err(|_| format!("-r: not a number: {v}"))?;
        } else {
            paths.push(a.clone());
        }
    }
    if paths.len() < 2 {
        return Err(format!("{name} needs <in> and <out>"));
    }
    let output = paths.pop().unwrap_or_default();
    let (mapper, reducer, combiner) = match name.as_str() {
        "wordcount" => ("wordcount", "sum", "sum"),
        "identity" => ("identity", "identity", ""),
        other => return Err(format!("Unknown job: {other} (built-in jobs: wordcount, identity)")),
    };
    Ok(JobSpec {
        name: name.clone(),
        inputs: paths,
        output,
        mapper: mapper.into(),
        reducer: if reduces == 0 { String::new() } else { reducer.into() },
        combiner: if reduces == 0 { String::new() } else { combiner.into() },
        num_reduces: reduces,
        settings: Default::default(),
        user: user.to_owned(),
    })
}

/// Makes relative paths absolute under /user/<user>, as the shell does.
fn absolute(p: &str, user: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/user/{user}/{p}")
    }
}

pub async fn run(
    args: &[String],
    jobtracker: &str,
    namenode: &str,
    user: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        let _ = writeln!(err, "{USAGE}");
        return 1;
    };
    let mut spec = None;
    let mut staging = None;
    match cmd.as_str() {
        "streaming" => match parse_streaming(rest, user) {
            Ok((mut s, files)) => {
                s.inputs = s.inputs.iter().map(|p| absolute(p, user)).collect();
                s.output = absolute(&s.output, user);
                if !files.is_empty() {
                    let conf = tusk_common::config::ClientConfig::default();
                    let shipped = match tusk_client::Client::connect(namenode, user, &conf).await {
                        Ok(c) => ship(&c, &files, user).await.map(|r| (c, r)),
                        Err(e) => Err(e.to_string()),
                    };
                    match shipped {
                        Ok((c, (dir, paths))) => {
                            s.settings.insert("stream.files".into(), paths.join(","));
                            staging = Some((c, dir));
                        }
                        Err(e) => {
                            let _ = writeln!(err, "job: {e}");
                            return 1;
                        }
                    }
                }
                spec = Some(s);
            }
            Err(e) => {
                let _ = writeln!(err, "job: {e}\n{USAGE}");
                return 1;
            }
        },
        "run" => match parse_run(rest, user) {
            Ok(mut s) => {
                s.inputs = s.inputs.iter().map(|p| absolute(p, user)).collect();
                s.output = absolute(&s.output, user);
                spec = Some(s);
            }
            Err(e) => {
                let _ = writeln!(err, "job: {e}\n{USAGE}");
                return 1;
            }
        },
        "status" | "list" | "kill" => {}
        _ => {
            let _ = writeln!(err, "{USAGE}");
            return 1;
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
            match c.kill_job(JobStatusRequest { job_id: id.clone() }).await {
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
        "status" => {
            let Some(id) = rest.first() else {
                let _ = writeln!(err, "{USAGE}");
                return 1;
            };
            match c.get_job_status(JobStatusRequest { job_id: id.clone() }).await {
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
            let Some(spec) = spec else { return 1 };
            let code = follow(&mut c, spec, out, err).await;
            if let Some((client, dir)) = staging {
                let _ = client.delete(&dir, true).await;
            }
            code
        }
    }
}

/// Submits a job and prints its progress until it ends; the exit code.
async fn follow(
    c: &mut JobTrackerClient<tonic::transport::Channel>,
    spec: JobSpec,
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
    let mut last = String::new();
    loop {
        let s = match c.get_job_status(JobStatusRequest { job_id: id.clone() }).await {
            Ok(s) => s.into_inner(),
            Err(s) => {
                let _ = writeln!(err, "job: {}", s.message());
                return 1;
            }
        };
        let line = format!(" map {}% reduce {}%", pct(s.maps_done, s.maps_total), pct(s.reduces_done, s.reduces_total));
        if line != last {
            let _ = writeln!(out, "{line}");
            last = line;
        }
        if s.state != JobState::JobRunning as i32 {
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
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let s = parse_run(&a(&["wordcount", "/in", "/in2", "/out", "-r", "3"]), "u").unwrap();
        assert_eq!((s.inputs.len(), s.output.as_str(), s.num_reduces), (2, "/out", 3));
        assert!(parse_run(&a(&["nosuch", "/in", "/out"]), "u").unwrap_err().contains("Unknown job"));
        assert!(parse_run(&a(&["wordcount", "/in"]), "u").is_err());
        assert_eq!(absolute("x", "bob"), "/user/bob/x");
    }
}
