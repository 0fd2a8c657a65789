//! MapReduce on the in-process cluster: a jobtracker and a tasktracker beside each of three
//! datanodes, wordcount compared with a count made here, output commit, clear errors, and
//! no map output left behind.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::minicluster::{write_file, MiniCluster};
use tokio::net::TcpListener;
use tusk_mapreduce::jobtracker::JobTracker;
use tusk_mapreduce::service::JobTrackerService;
use tusk_mapreduce::tasktracker::{self, TrackerConfig};
use tusk_proto::mapreduce::job_tracker_server::JobTrackerServer;

struct Mr {
    jt_addr: String,
    nn_addr: String,
    local_dirs: Vec<tempfile::TempDir>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Stops one tracker (as if it died: no more heartbeats, no more shuffle).
    tracker_stops: Vec<tokio::sync::watch::Sender<bool>>,
}

async fn start_mapreduce(mc: &MiniCluster, trackers: usize) -> Mr {
    start_mapreduce_with(mc, trackers, Duration::from_secs(10)).await
}

async fn start_mapreduce_with(mc: &MiniCluster, trackers: usize, tracker_expiry: Duration) -> Mr {
    start_mapreduce_slow(mc, trackers, tracker_expiry, &[]).await
}

/// `slow[i]`: how long tracker i makes every attempt wait first.
async fn start_mapreduce_slow(mc: &MiniCluster, trackers: usize, tracker_expiry: Duration, slow: &[Duration]) -> Mr {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let client = mc.client("root").await;
    let jt = Arc::new(JobTracker::new(client, 4, tracker_expiry));
    let expiry = Arc::clone(&jt);
    let mut s = stop_rx.clone();
    tokio::spawn(async move {
        while !*s.borrow() {
            expiry.expire_trackers();
            let _ = tokio::time::timeout(Duration::from_millis(200), s.changed()).await;
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jt_addr = listener.local_addr().unwrap().to_string();
    let mut s = stop_rx.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(JobTrackerServer::new(JobTrackerService(jt)))
            .serve_with_incoming_shutdown(
                tusk_proto::serve::nodelay(tokio_stream::wrappers::TcpListenerStream::new(listener)),
                async move {
                    let _ = s.wait_for(|v| *v).await;
                },
            ),
    );
    let mut local_dirs = Vec::new();
    let mut tracker_stops = Vec::new();
    for t in 0..trackers {
        let dir = tempfile::tempdir().unwrap();
        let conf = TrackerConfig {
            jobtracker: jt_addr.clone(),
            local_dir: dir.path().to_owned(),
            host: "127.0.0.1".into(),
            map_slots: 2,
            reduce_slots: 2,
            heartbeat: Duration::from_millis(100),
            slow_down: slow.get(t).copied().unwrap_or_default(),
        };
        let client = mc.client("root").await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut s = stop_rx.clone();
        let (one, mut one_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(tasktracker::run(conf, client, listener, async move {
            tokio::select! {
                _ = s.wait_for(|v| *v) => {}
                _ = one_rx.wait_for(|v| *v) => {}
            }
        }));
        local_dirs.push(dir);
        tracker_stops.push(one);
    }
    Mr { jt_addr, nn_addr: mc.nn_addr.clone(), local_dirs, stop, tracker_stops }
}

async fn job(mr: &Mr, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tusk_mapreduce::jobclient::run(&args, &mr.jt_addr, &mr.nn_addr, "root", false, &mut out, &mut err).await;
    (code, String::from_utf8_lossy(&out).into(), String::from_utf8_lossy(&err).into())
}

/// Text with lines of varied length, so block boundaries fall inside lines.
fn text(lines: usize, seed: u64) -> Vec<u8> {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
    let mut x = seed | 1;
    let mut out = Vec::new();
    for _ in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 23) as usize;
        for j in 0..n {
            let w = words[((x >> (j % 50)) as usize + j) % words.len()];
            out.extend_from_slice(w.as_bytes());
            out.push(if j % 7 == 6 { b'\t' } else { b' ' });
        }
        out.push(b'\n');
    }
    out
}

fn count_words(data: &[u8]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for w in data.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()) {
        *m.entry(String::from_utf8_lossy(w).into_owned()).or_default() += 1;
    }
    m
}

async fn read_output(c: &tusk_client::Client, dir: &str) -> (Vec<String>, BTreeMap<String, u64>) {
    let (_, entries) = c.list_all(dir).await.unwrap();
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    let mut counts = BTreeMap::new();
    for n in names.iter().filter(|n| n.starts_with("part-")) {
        let data = support::minicluster::read_all(c, &format!("{dir}/{n}")).await;
        for line in String::from_utf8(data).unwrap().lines() {
            let (k, v) = line.split_once('\t').expect("key<TAB>value");
            assert!(counts.insert(k.to_owned(), v.parse::<u64>().unwrap()).is_none(), "{k} twice");
        }
    }
    (names, counts)
}

fn leftovers(mr: &Mr) -> usize {
    mr.local_dirs.iter().map(|d| std::fs::read_dir(d.path()).map(|r| r.count()).unwrap_or(0)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wordcount_equals_a_local_count_and_cleans_up() {
    let mc = MiniCluster::start(3).await;
    let mr = start_mapreduce(&mc, 3).await;
    let c = mc.client("root").await;
    c.mkdirs("/in", 0o755, true).await.unwrap();
    let a = text(60_000, 7);
    let b = text(9_000, 11);
    write_file(&c, "/in/a.txt", &a, 1 << 20).await;
    write_file(&c, "/in/b.txt", &b, 1 << 20).await;
    let (code, out, err) = job(&mr, &["run", "wordcount", "/in", "/out", "-r", "3"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("completed successfully"), "{out}");
    let (names, counts) = read_output(&c, "/out").await;
    assert_eq!(names, ["_SUCCESS", "part-r-00000", "part-r-00001", "part-r-00002"]);
    let mut want = count_words(&a);
    for (k, v) in count_words(&b) {
        *want.entry(k).or_default() += v;
    }
    assert_eq!(counts, want);
    let maps: u64 = out.lines().find_map(|l| l.trim().strip_prefix("LAUNCHED_MAPS=")).unwrap().parse().unwrap();
    let local: u64 =
        out.lines().find_map(|l| l.trim().strip_prefix("DATA_LOCAL_MAPS=")).unwrap_or("0").parse().unwrap();
    assert!(maps >= 2 && local == maps, "every map ran beside its data: {out}");
    // Map output is gone from every tracker once the job ended.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leftovers(&mr) > 0 {
        assert!(std::time::Instant::now() < deadline, "map output left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A map-only identity job copies the lines.
    let (code, out, err) = job(&mr, &["run", "identity", "/in/b.txt", "/copy", "-r", "0"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let copy = support::minicluster::read_all(&c, "/copy/part-m-00000").await;
    assert_eq!(copy, b);
    // An empty input with no reduces has nothing to run: done at once, with _SUCCESS.
    c.create_empty("/empty.txt", false).await.unwrap();
    let (code, out, err) = job(&mr, &["run", "identity", "/empty.txt", "/e", "-r", "0"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(c.file_info("/e/_SUCCESS").await.unwrap().is_some());
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_jobs_fail_clearly_and_leave_nothing() {
    let mc = MiniCluster::start(1).await;
    let mr = start_mapreduce(&mc, 1).await;
    let c = mc.client("root").await;
    write_file(&c, "/in.txt", b"a b\n", 1 << 20).await;
    c.mkdirs("/exists", 0o755, false).await.unwrap();
    let (code, _, err) = job(&mr, &["run", "wordcount", "/in.txt", "/exists"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("Output directory /exists already exists"), "{err}");
    let (code, _, err) = job(&mr, &["run", "wordcount", "/missing", "/o1"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("Input path does not exist: /missing"), "{err}");
    assert!(c.file_info("/o1").await.unwrap().is_none(), "nothing at the output path");
    let (code, _, err) = job(&mr, &["run", "nosuchjob", "/in.txt", "/o2"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("Unknown job: nosuchjob"), "{err}");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

/// Whether a tracker's local directory holds a finished map output.
fn holds_map_output(dir: &std::path::Path) -> bool {
    let Ok(jobs) = std::fs::read_dir(dir) else { return false };
    jobs.flatten()
        .any(|j| std::fs::read_dir(j.path()).is_ok_and(|a| a.flatten().any(|a| a.path().join("file.index").exists())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_tracker_s_maps_run_again_and_the_job_still_succeeds() {
    let mc = MiniCluster::start(3).await;
    let mr = Arc::new(start_mapreduce_with(&mc, 3, Duration::from_secs(2)).await);
    let c = mc.client("root").await;
    let data = text(120_000, 5);
    write_file(&c, "/in.txt", &data, 1 << 20).await;
    let runner = {
        let mr = Arc::clone(&mr);
        tokio::spawn(async move { job(&mr, &["run", "wordcount", "/in.txt", "/out", "-r", "2"]).await })
    };
    // Kill a tracker as soon as it holds finished map output the reduces will need.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let victim = loop {
        if let Some(i) = mr.local_dirs.iter().position(|d| holds_map_output(d.path())) {
            break i;
        }
        assert!(std::time::Instant::now() < deadline, "no map finished");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = mr.tracker_stops[victim].send(true);
    let (code, out, err) = runner.await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let (_, counts) = read_output(&c, "/out").await;
    assert_eq!(counts, count_words(&data), "identical output");
    let counter = |name: &str| -> u64 {
        out.lines().find_map(|l| l.trim().strip_prefix(name)?.strip_prefix('=')?.parse().ok()).unwrap_or(0)
    };
    let maps = out.lines().find_map(|l| l.strip_prefix("map 100% (")?.split('/').next()?.parse::<u64>().ok()).unwrap();
    // The maps it had done (reported or not) ran again elsewhere, and the counters say so.
    assert!(counter("LAUNCHED_MAPS") > maps, "{out}");
    assert!(
        counter("ATTEMPTS_KILLED_LOST_TRACKER")
            + counter("MAPS_RERUN_LOST_TRACKER")
            + counter("MAPS_RERUN_FETCH_FAILED")
            // Its unreported maps may also be backed up as stragglers before it is declared lost.
            + counter("SPECULATIVE_MAPS")
            >= 1,
        "{out}"
    );
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

const MAPPER_PY: &str = "#!/usr/bin/env python3\nimport sys\nfor line in sys.stdin:\n    for w in line.split():\n        print(f\"{w}\\t1\")\n";
const REDUCER_PY: &str = "#!/usr/bin/env python3\nimport sys\ncur, n = None, 0\nfor line in sys.stdin:\n    k, v = line.rstrip(\"\\n\").split(\"\\t\", 1)\n    if k != cur:\n        if cur is not None:\n            print(f\"{cur}\\t{n}\")\n        cur, n = k, 0\n    n += int(v)\nif cur is not None:\n    print(f\"{cur}\\t{n}\")\nprint(\"reporter:counter:wc,reducers,1\", file=sys.stderr)\nprint(\"reporter:status:reduced\", file=sys.stderr)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streaming_python_wordcount_equals_the_built_in_one() {
    let mc = MiniCluster::start(3).await;
    let mr = start_mapreduce(&mc, 3).await;
    let c = mc.client("root").await;
    let data = text(30_000, 3);
    write_file(&c, "/in.txt", &data, 1 << 20).await;
    let scripts = tempfile::tempdir().unwrap();
    let (m, r) = (scripts.path().join("mapper.py"), scripts.path().join("reducer.py"));
    std::fs::write(&m, MAPPER_PY).unwrap();
    std::fs::write(&r, REDUCER_PY).unwrap();
    let (m, r) = (m.to_str().unwrap(), r.to_str().unwrap());
    let args = [
        "streaming",
        "-input",
        "/in.txt",
        "-output",
        "/st",
        "-mapper",
        "python3 mapper.py",
        "-reducer",
        "python3 reducer.py",
        "-combiner",
        "python3 reducer.py",
        "-file",
        m,
        "-file",
        r,
        "-numReduceTasks",
        "2",
    ];
    let (code, out, err) = job(&mr, &args).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wc.reducers=2"), "stderr counters are honoured: {out}");
    let combined: u64 =
        out.lines().find_map(|l| l.trim().strip_prefix("COMBINE_OUTPUT_RECORDS=")?.parse().ok()).unwrap_or(0);
    let mapped: u64 = out.lines().find_map(|l| l.trim().strip_prefix("MAP_OUTPUT_RECORDS=")?.parse().ok()).unwrap();
    assert!(combined > 0 && combined < mapped / 10, "the combiner ran: {combined} of {mapped}: {out}");
    let id = out.lines().find_map(|l| l.strip_prefix("Running job: ")).unwrap().to_owned();
    let (_, hist, _) = job(&mr, &["history", &id]).await;
    assert!(hist.contains("\tSUCCEEDED\treduced\t"), "reporter:status is the attempt's status: {hist}");
    let (code, out, err) = job(&mr, &["run", "wordcount", "/in.txt", "/wc", "-r", "2"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (_, streamed) = read_output(&c, "/st").await;
    let (_, built_in) = read_output(&c, "/wc").await;
    assert_eq!(streamed, built_in);
    assert_eq!(streamed, count_words(&data));
    // The shipped files' staging directory is gone.
    let (_, staging) = c.list_all("/user/root/.staging").await.unwrap();
    assert!(staging.is_empty(), "{staging:?}");
    // A mapper command that does not exist: the job fails with the reason, nothing at the output.
    let (code, out, _) =
        job(&mr, &["streaming", "-input", "/in.txt", "-output", "/bad", "-mapper", "no-such-command-xyz"]).await;
    assert_eq!(code, 1);
    assert!(out.contains("no-such-command-xyz") && out.contains("exit code 127"), "{out}");
    assert!(out.contains("not retried") && out.contains("LAUNCHED_MAPS=2"), "no map is retried (2 maps): {out}");
    assert!(c.file_info("/bad").await.unwrap().is_none());
    let (_, root) = c.list_all("/").await.unwrap();
    assert!(root.iter().all(|e| !e.name.starts_with(".bad")), "its staging directory is gone: {root:?}");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_job_leaves_nothing_behind() {
    use tusk_proto::mapreduce::job_tracker_client::JobTrackerClient;
    use tusk_proto::mapreduce::{JobSpec, JobState, JobStatusRequest, SubmitJobRequest};
    let mc = MiniCluster::start(3).await;
    let mr = start_mapreduce(&mc, 3).await;
    let c = mc.client("root").await;
    write_file(&c, "/in.txt", &text(200_000, 9), 1 << 20).await;
    let mut jt = JobTrackerClient::connect(format!("http://{}", mr.jt_addr)).await.unwrap();
    let spec = JobSpec {
        inputs: vec!["/in.txt".into()],
        output: "/killed".into(),
        mapper: "wordcount".into(),
        reducer: "sum".into(),
        num_reduces: 2,
        ..Default::default()
    };
    let id = jt.submit_job(SubmitJobRequest { spec: Some(spec) }).await.unwrap().into_inner().job_id;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (code, out, err) = job(&mr, &["kill", &id]).await;
    assert_eq!(code, 0, "{out}{err}");
    let st =
        jt.get_job_status(JobStatusRequest { job_id: id.clone(), with_attempts: false }).await.unwrap().into_inner();
    assert_eq!(st.state, JobState::JobKilled as i32);
    // Its attempts are aborted and its map output removed; nothing appears at the output path.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leftovers(&mr) > 0 {
        assert!(std::time::Instant::now() < deadline, "map output left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c.file_info("/killed").await.unwrap().is_none(), "nothing at the output path");
    let (_, root) = c.list_all("/").await.unwrap();
    assert!(root.iter().all(|e| !e.name.starts_with(".killed")), "its staging directory is gone: {root:?}");
    let (code, _, err) = job(&mr, &["kill", &id]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not running"), "{err}");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_history_survives_a_jobtracker_restart() {
    use tusk_mapreduce::history::History;
    use tusk_proto::mapreduce::{JobSpec, JobState};
    let mc = MiniCluster::start(1).await;
    let c = mc.client("root").await;
    write_file(&c, "/in.txt", b"a b a\n", 1 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = |out: &str| JobSpec {
        inputs: vec!["/in.txt".into()],
        output: out.into(),
        mapper: "wordcount".into(),
        reducer: "sum".into(),
        num_reduces: 1,
        ..Default::default()
    };
    let id = {
        // No tracker: the job is still running when this jobtracker goes away.
        let jt = JobTracker::new(mc.client("root").await, 4, Duration::from_secs(10))
            .with_history(History::open(dir.path()).unwrap())
            .await
            .unwrap();
        let id = jt.submit(spec("/interrupted")).await.unwrap();
        assert!(c.file_info("/interrupted").await.unwrap().is_none(), "no partial output directory");
        assert!(c.file_info(&format!("/.interrupted.{id}")).await.unwrap().is_some(), "staging");
        id
    };
    let jt = JobTracker::new(mc.client("root").await, 4, Duration::from_secs(10))
        .with_history(History::open(dir.path()).unwrap())
        .await
        .unwrap();
    let st = jt.status(&id, false).expect("the job is remembered");
    assert_eq!(st.state, JobState::JobFailed as i32);
    assert!(st.error.contains("jobtracker stopped"), "{}", st.error);
    assert!(c.file_info(&format!("/.interrupted.{id}")).await.unwrap().is_none(), "what it built is removed");
    let next = jt.submit(spec("/next")).await.unwrap();
    assert_ne!(next, id, "job numbers go on");
    assert_eq!(jt.list().len(), 2);
    mc.shutdown().await;
}

/// A mapper that fails the first attempt of every third map and stalls the first attempt of
/// the next third for 5 s (Hadoop Streaming's environment says which attempt it is).
const FLAKY_MAPPER_SH: &str = r#"#!/bin/sh
p=$mapreduce_task_partition
case "$mapreduce_task_attempt_id" in
  *_0)
    if [ $((p % 3)) -eq 0 ]; then echo "failing on purpose" >&2; exit 1; fi
    if [ $((p % 3)) -eq 1 ]; then sleep 5; fi
    ;;
esac
exec tr -s ' \t' '\n' | grep -v '^$' | sed 's/$/\t1/'
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flaky_streaming_mappers_do_not_change_the_answer_or_show_partial_output() {
    let mc = MiniCluster::start(3).await;
    let mr = Arc::new(start_mapreduce(&mc, 3).await);
    let c = mc.client("root").await;
    let data = text(60_000, 13);
    write_file(&c, "/in.txt", &data, 1 << 20).await;
    let scripts = tempfile::tempdir().unwrap();
    let m = scripts.path().join("flaky.sh");
    std::fs::write(&m, FLAKY_MAPPER_SH).unwrap();
    let m = m.to_str().unwrap().to_owned();
    let runner = {
        let mr = Arc::clone(&mr);
        tokio::spawn(async move {
            let args = [
                "streaming",
                "-input",
                "/in.txt",
                "-output",
                "/flaky",
                "-mapper",
                "sh flaky.sh",
                "-reducer",
                "awk -F'\t' '{n[$1]+=$2} END {for (k in n) print k \"\\t\" n[k]}'",
                "-file",
                &m,
                "-numReduceTasks",
                "2",
            ];
            job(&mr, &args).await
        })
    };
    // Nobody sees a partial output directory while the job runs.
    while !runner.is_finished() {
        if let Some(st) = c.file_info("/flaky").await.unwrap() {
            let (_, entries) = c.list_all("/flaky").await.unwrap();
            assert!(entries.iter().any(|e| e.name == "_SUCCESS"), "a partial /flaky: {entries:?} {st:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, out, err) = runner.await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let failed: u64 = out.lines().find_map(|l| l.trim().strip_prefix("FAILED_ATTEMPTS=")?.parse().ok()).unwrap_or(0);
    assert!(failed >= 1, "some attempts failed on purpose: {out}");
    let (_, counts) = read_output(&c, "/flaky").await;
    assert_eq!(counts, count_words(&data), "no record lost or doubled");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_tracker_s_maps_get_speculative_backups() {
    let mc = MiniCluster::start(3).await;
    // Tracker 0 makes every attempt wait 6 s: its maps are stragglers.
    let slow = [Duration::from_secs(6)];
    let mr = start_mapreduce_slow(&mc, 3, Duration::from_secs(30), &slow).await;
    let c = mc.client("root").await;
    let data = text(150_000, 17);
    write_file(&c, "/in.txt", &data, 1 << 20).await;
    let (code, out, err) = job(&mr, &["run", "wordcount", "/in.txt", "/spec", "-r", "2"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let speculative: u64 =
        out.lines().find_map(|l| l.trim().strip_prefix("SPECULATIVE_MAPS=")?.parse().ok()).unwrap_or(0);
    assert!(speculative >= 1, "backups were launched: {out}");
    // The history shows them: a SPECULATIVE attempt, and the slower of a pair KILLED.
    let id = out.lines().find_map(|l| l.strip_prefix("Running job: ")).unwrap().to_owned();
    let (code, hist, err) = job(&mr, &["history", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert!(hist.contains("\tSPECULATIVE\t") && hist.contains("\tKILLED\t"), "{hist}");
    assert!(hist.contains("Map phase: ") && hist.contains("Reduce phase: "), "{hist}");
    assert!(!hist.contains("\tRUNNING\t"), "every attempt ended: {hist}");
    let (_, counts) = read_output(&c, "/spec").await;
    assert_eq!(counts, count_words(&data), "first to finish wins, nothing doubled");
    // The losing attempts were aborted and left no map output.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leftovers(&mr) > 0 {
        assert!(std::time::Instant::now() < deadline, "map output left behind");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

/// Every part file of `dir`, concatenated in name order.
async fn concat_parts(c: &tusk_client::Client, dir: &str) -> Vec<u8> {
    let (_, mut entries) = c.list_all(dir).await.unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut all = Vec::new();
    for e in entries.iter().filter(|e| e.name.starts_with("part-")) {
        all.extend(support::minicluster::read_all(c, &format!("{dir}/{}", e.name)).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teragen_terasort_teravalidate() {
    let mc = MiniCluster::start(3).await;
    let mr = start_mapreduce(&mc, 3).await;
    let c = mc.client("root").await;
    let rows = 30_000u64;
    let (code, out, err) = job(&mr, &["run", "teragen", &rows.to_string(), "/gen", "-m", "3"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let generated = concat_parts(&c, "/gen").await;
    assert_eq!(generated.len() as u64, rows * 100, "rows of 100 bytes");
    assert!(generated.chunks(100).all(|r| r.ends_with(b"\r\n")));
    // Sorted across 3 reduces, with compressed map output: the part files are sorted end to
    // end and hold exactly the generated rows.
    let (code, out, err) =
        job(&mr, &["run", "terasort", "-D", "map.output.compress=lz4", "/gen", "/sorted", "-r", "3"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (_, parts) = c.list_all("/sorted").await.unwrap();
    let sizes: Vec<u64> = parts.iter().filter(|e| e.name.starts_with("part-r-")).map(|e| e.length).collect();
    assert_eq!(sizes.len(), 3);
    assert!(sizes.iter().all(|&s| s > rows * 100 / 6), "the sampled split points balance the reduces: {sizes:?}");
    let sorted = concat_parts(&c, "/sorted").await;
    let mut want: Vec<&[u8]> = generated.chunks(100).collect();
    want.sort();
    assert_eq!(sorted, want.concat(), "sorted rows, byte for byte");
    let (code, out, err) = job(&mr, &["run", "teravalidate", "/sorted", "/gen", "/report"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sorted and complete") && out.contains(&format!("rows\t{rows}")), "{out}");
    // The unsorted input does not pass.
    let (code, out, err) = job(&mr, &["run", "teravalidate", "/gen", "/report2"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("error\t") && err.contains("NOT valid"), "{out}{err}");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sort_grep_and_pi() {
    let mc = MiniCluster::start(3).await;
    let mr = start_mapreduce(&mc, 3).await;
    let c = mc.client("root").await;
    let data = text(40_000, 5);
    write_file(&c, "/words.txt", &data, 1 << 20).await;
    // sort: lines in byte order across the parts (zstd map output on the way).
    let (code, out, err) =
        job(&mr, &["run", "sort", "-D", "map.output.compress=zstd", "/words.txt", "/sorted", "-r", "3"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    lines.pop();
    lines.sort();
    let mut want = Vec::new();
    for l in lines {
        want.extend_from_slice(l);
        want.push(b'\n');
    }
    assert_eq!(concat_parts(&c, "/sorted").await, want);
    // grep: matches counted, most frequent first, as `count<TAB>match`.
    let (code, out, err) = job(&mr, &["run", "grep", "/words.txt", "/grep", "[a-z]*ta\\b"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let got = String::from_utf8(concat_parts(&c, "/grep").await).unwrap();
    let re = regex::bytes::Regex::new("[a-z]*ta\\b").unwrap();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for m in re.find_iter(&data) {
        *counts.entry(String::from_utf8_lossy(m.as_bytes()).into_owned()).or_default() += 1;
    }
    let mut want: Vec<(u64, String)> = counts.into_iter().map(|(w, n)| (n, w)).collect();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let want: String = want.iter().map(|(n, w)| format!("{n}\t{w}\n")).collect();
    assert_eq!(got, want);
    let (_, home) = c.list_all("/user/root").await.unwrap_or_default();
    assert!(home.iter().all(|e| !e.name.starts_with(".tusk-tmp")), "grep's scratch directory is gone");
    // A bad expression is refused before anything runs.
    let (code, _, err) = job(&mr, &["run", "grep", "/words.txt", "/grep2", "("]).await;
    assert_eq!(code, 1);
    assert!(err.contains("bad regular expression"), "{err}");
    assert!(c.file_info("/grep2").await.unwrap().is_none());
    // pi from 4 maps of 20,000 samples.
    let (code, out, err) = job(&mr, &["run", "pi", "4", "20000"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let est: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Estimated value of Pi is "))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!((est - std::f64::consts::PI).abs() < 0.01, "{est}");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

/// A mapper that dies on any line holding POISON (Python reads ahead, as real mappers do).
const POISONED_MAPPER_PY: &str = "#!/usr/bin/env python3\nimport sys\nfor line in sys.stdin:\n    if 'POISON' in line:\n        sys.exit(3)\n    for w in line.split():\n        print(f\"{w}\\t1\")\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_records_are_skipped_when_the_job_allows_it() {
    let mc = MiniCluster::start(3).await;
    let mr = start_mapreduce(&mc, 3).await;
    let c = mc.client("root").await;
    let mut data = text(40_000, 23);
    let clean = data.clone();
    // Two poisoned lines, in different blocks.
    for at in [data.len() / 5, data.len() * 4 / 5] {
        let nl = at + data[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
        data.splice(nl..nl, b"POISON pill\n".iter().copied());
    }
    write_file(&c, "/in.txt", &data, 1 << 20).await;
    let scripts = tempfile::tempdir().unwrap();
    let (m, r) = (scripts.path().join("mapper.py"), scripts.path().join("reducer.py"));
    std::fs::write(&m, POISONED_MAPPER_PY).unwrap();
    std::fs::write(&r, REDUCER_PY).unwrap();
    let (m, r) = (m.to_str().unwrap(), r.to_str().unwrap());
    let args = |out: &'static str, skip: &'static str| {
        let a = ["streaming", "-input", "/in.txt", "-output", out, "-mapper", "python3 mapper.py", "-reducer"];
        let b = ["python3 reducer.py", "-file", m, "-file", r, "-numReduceTasks", "2", "-D", skip];
        a.into_iter().chain(b).collect::<Vec<&str>>()
    };
    // Without skipping: every attempt dies on its poison, the job fails.
    let (code, out, _) = job(&mr, &args("/noskip", "skip.records.max=0")).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("exit code 3"), "{out}");
    assert!(c.file_info("/noskip").await.unwrap().is_none());
    // With skipping: the two lines are found, left out, counted and named.
    let (code, out, err) = job(&mr, &args("/skip", "skip.records.max=2")).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Skipped bad records: 2"), "{out}");
    assert!(out.contains("MAP_SKIPPED_RECORDS=2") && out.contains("BAD_RECORDS_FOUND=2"), "{out}");
    let (_, counts) = read_output(&c, "/skip").await;
    assert_eq!(counts, count_words(&clean), "everything but the poisoned lines");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tracker_failing_a_job_s_tasks_gets_no_more_of_them() {
    let mc = MiniCluster::start(3).await;
    let mr = start_mapreduce(&mc, 3).await;
    let c = mc.client("root").await;
    let data = text(150_000, 29);
    write_file(&c, "/in.txt", &data, 1 << 20).await;
    // Attempts run in <local dir>/<job>/<attempt>.work: a mark in tracker 0's local directory
    // makes every attempt there fail.
    std::fs::write(mr.local_dirs[0].path().join("BROKEN"), b"").unwrap();
    let mapper = "[ -e ../../BROKEN ] && { echo broken tracker >&2; exit 1; }; tr -s ' \\t' '\\n' | grep -v '^$' | sed 's/$/\\t1/'";
    let (code, out, err) =
        job(&mr, &["streaming", "-input", "/in.txt", "-output", "/bl", "-mapper", mapper, "-numReduceTasks", "0"])
            .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("BLACKLISTED_TRACKERS=1"), "{out}");
    let id = out.lines().find_map(|l| l.strip_prefix("Running job: ")).unwrap().to_owned();
    let (_, hist, _) = job(&mr, &["history", &id]).await;
    let bad_tracker_attempts = hist.lines().filter(|l| l.contains("\tFAILED\t")).count();
    // Three failures blacklist it; attempts it had already started may fail too (2 slots).
    assert!((3..=5).contains(&bad_tracker_attempts), "{bad_tracker_attempts} failures: {hist}");
    let _ = mr.stop.send(true);
    mc.shutdown().await;
}
