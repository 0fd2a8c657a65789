//! The jobtracker's pages: jobs (`/`, `/jobtracker.jsp`), one job (`/job?id=`), trackers.

use super::{duration, page, percent_bar, time};
use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;
use tusk_mapreduce::jobtracker::JobTracker;
use tusk_proto::mapreduce::{JobState, JobStatus, TaskKind};

const NAV: &[(&str, &str)] = &[("/", "Jobs"), ("/trackers", "Task trackers")];

fn state_name(j: &JobStatus) -> &'static str {
    match j.state() {
        JobState::JobRunning => "RUNNING",
        JobState::JobSucceeded => "SUCCEEDED",
        JobState::JobFailed => "FAILED",
        JobState::JobKilled => "KILLED",
        _ => "PREP",
    }
}

fn elapsed(j: &JobStatus) -> String {
    let end = if j.finish_time_ms > 0 { j.finish_time_ms } else { tusk_common::now_ms() };
    duration(end - j.submit_time_ms)
}

fn jobs_table(title: &str, id: &str, jobs: &[&JobStatus]) -> maud::Markup {
    html! {
        h2 { (title) " (" (jobs.len()) ")" }
        table id=(id) {
            tr { th { "Job" } th { "Name" } th { "State" } th { "Submitted" } th { "Elapsed" } th { "Maps" } th { "Map progress" } th { "Reduces" } th { "Reduce progress" } }
            @for j in jobs {
                tr {
                    td { a href=(format!("/job?id={}", crate::encode_query(&j.job_id))) { (j.job_id) } }
                    td { (j.name) }
                    td { @match j.state() { JobState::JobSucceeded => span.ok { (state_name(j)) }, JobState::JobRunning => span.warn { (state_name(j)) }, _ => span.bad { (state_name(j)) } } }
                    td { (time(j.submit_time_ms)) }
                    td { (elapsed(j)) }
                    td.num { (j.maps_done) "/" (j.maps_total) }
                    td { (percent_bar(j.maps_done.into(), j.maps_total.into())) }
                    td.num { (j.reduces_done) "/" (j.reduces_total) }
                    td { (percent_bar(j.reduces_done.into(), j.reduces_total.into())) }
                }
            }
        }
    }
}

pub async fn jobs(State(jt): State<Arc<JobTracker>>) -> Html<String> {
    let mut all = jt.list();
    all.sort_by_key(|j| std::cmp::Reverse(j.submit_time_ms));
    let running: Vec<_> = all.iter().filter(|j| j.state() == JobState::JobRunning).collect();
    let done: Vec<_> = all.iter().filter(|j| j.state() == JobState::JobSucceeded).collect();
    let failed: Vec<_> =
        all.iter().filter(|j| matches!(j.state(), JobState::JobFailed | JobState::JobKilled)).collect();
    let trackers = jt.trackers();
    let body = html! {
        table.kv {
            tr { th { "Task trackers" } td id="trackers" { a href="/trackers" { (trackers.len()) } } }
            tr { th { "Map slots free" } td { (trackers.iter().map(|t| t.free_map_slots).sum::<u32>()) } }
            tr { th { "Reduce slots free" } td { (trackers.iter().map(|t| t.free_reduce_slots).sum::<u32>()) } }
        }
        (jobs_table("Running jobs", "running", &running))
        (jobs_table("Completed jobs", "completed", &done))
        (jobs_table("Failed and killed jobs", "failed", &failed))
    };
    page("jobtracker", "Jobs", NAV, body)
}

pub async fn job(State(jt): State<Arc<JobTracker>>, Query(q): Query<HashMap<String, String>>) -> Html<String> {
    let id = q.get("id").map(String::as_str).unwrap_or("");
    let Some(j) = jt.status(id, true) else {
        return page("jobtracker", "Job", NAV, html! { p.bad { "No job " (id) } });
    };
    let mut attempts = j.attempts.clone();
    attempts.sort_by_key(|a| (a.kind, a.index, a.start_ms));
    let maps_phase =
        if j.maps_finish_time_ms > 0 { duration(j.maps_finish_time_ms - j.submit_time_ms) } else { "-".into() };
    let body = html! {
        table.kv {
            tr { th { "Job" } td { (j.job_id) } }
            tr { th { "Name" } td { (j.name) } }
            tr { th { "State" } td id="job-state" { (state_name(&j)) } }
            @if !j.error.is_empty() { tr { th { "Error" } td.bad { (j.error) } } }
            tr { th { "Output" } td { (j.output) } }
            tr { th { "Submitted" } td { (time(j.submit_time_ms)) } }
            tr { th { "Finished" } td { (time(j.finish_time_ms)) } }
            tr { th { "Elapsed" } td { (elapsed(&j)) " (map phase " (maps_phase) ")" } }
            tr { th { "Maps" } td { (j.maps_done) "/" (j.maps_total) " " (percent_bar(j.maps_done.into(), j.maps_total.into())) } }
            tr { th { "Reduces" } td { (j.reduces_done) "/" (j.reduces_total) " " (percent_bar(j.reduces_done.into(), j.reduces_total.into())) } }
        }
        h2 { "Counters" }
        table id="counters" {
            tr { th { "Counter" } th { "Value" } }
            @let mut counters: Vec<_> = j.counters.iter().collect();
            ({ counters.sort(); "" })
            @for (k, v) in counters { tr { td { (k) } td.num { (v) } } }
        }
        @if !j.skipped_records.is_empty() {
            h2 { "Skipped records" }
            ul { @for r in &j.skipped_records { li { (r) } } }
        }
        h2 { "Attempts (" (attempts.len()) ")" }
        table id="attempts" {
            tr { th { "Attempt" } th { "Task" } th { "Tracker" } th { "Placement" } th { "Started" } th { "Duration" } th { "State" } th { "Status" } th { "Error" } }
            @for a in &attempts {
                tr {
                    td { (a.attempt_id) }
                    td { (if a.kind == TaskKind::Map as i32 { "map " } else { "reduce " }) (a.index) }
                    td { (a.tracker) }
                    td { (a.locality) }
                    td { (time(a.start_ms)) }
                    td { @if a.finish_ms > 0 { (duration(a.finish_ms - a.start_ms)) } @else { "running" } }
                    td { @match a.state.as_str() { "SUCCEEDED" => span.ok { (a.state) }, "RUNNING" => span.warn { (a.state) }, _ => span.bad { (a.state) } } }
                    td { (a.status) }
                    td { (a.error) }
                }
            }
        }
    };
    page("jobtracker", &format!("Job {}", j.job_id), NAV, body)
}

pub async fn trackers(State(jt): State<Arc<JobTracker>>) -> Html<String> {
    let trackers = jt.trackers();
    let body = html! {
        table id="trackers" {
            tr { th { "Tracker" } th { "Host" } th { "Shuffle" } th { "Last heartbeat" } th { "Free map slots" } th { "Free reduce slots" } th { "Running attempts" } th { "Health" } }
            @for t in &trackers {
                tr {
                    td { (t.id) } td { (t.host) } td { (t.shuffle_addr) }
                    td { (format!("{:.1} s ago", t.since_heartbeat.as_secs_f64())) }
                    td.num { (t.free_map_slots) } td.num { (t.free_reduce_slots) } td.num { (t.running) }
                    td { @if t.blacklisted_by > 0 { span.bad { "blacklisted by " (t.blacklisted_by) " job(s)" } } @else { span.ok { "healthy" } } }
                }
            }
        }
    };
    page("jobtracker", "Task trackers", NAV, body)
}
