//! A tasktracker: serves its map output (Shuffle), heartbeats the jobtracker with its free
//! slots and the attempts that ended, runs what the replies assign (each attempt a task of
//! its own), and deletes the map output of jobs that ended.

use crate::service::ShuffleService;
use crate::task;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tusk_client::Client;
use tusk_proto::mapreduce::job_tracker_client::JobTrackerClient;
use tusk_proto::mapreduce::shuffle_server::ShuffleServer;
use tusk_proto::mapreduce::{AttemptState, TaskKind, TaskReport, TrackerHeartbeat};

pub struct TrackerConfig {
    pub jobtracker: String,
    pub local_dir: PathBuf,
    pub host: String,
    pub map_slots: u32,
    pub reduce_slots: u32,
    pub heartbeat: Duration,
    /// Each attempt waits this long before it starts (`mapreduce.slow_down_ms`: a slow
    /// tracker on purpose, to see speculation work).
    pub slow_down: Duration,
}

struct Shared {
    reports: Mutex<Vec<TaskReport>>,
    /// An attempt ended: heartbeat now rather than at the next tick (Hadoop's out-of-band
    /// heartbeat), so its slot and its result reach the jobtracker at once.
    ended: tokio::sync::Notify,
    free_maps: AtomicU32,
    free_reduces: AtomicU32,
}

/// Runs a tracker until `shutdown` resolves. `shuffle` is its bound shuffle listener.
pub async fn run(
    conf: TrackerConfig,
    client: Client,
    shuffle: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    std::fs::create_dir_all(&conf.local_dir).map_err(|e| format!("{}: {e}", conf.local_dir.display()))?;
    let bound = shuffle.local_addr().map_err(|e| e.to_string())?;
    // Listening on every interface (a container): reducers fetch from the address this host
    // reaches the jobtracker from, which is also the address its datanode registers from (the
    // namenode records the datanode's source address). Found again on every reconnection, as a
    // container reconnected to its network may have a new address.
    let follow_route = conf.host.is_empty() && bound.ip().is_unspecified();
    let mut shuffle_addr = std::net::SocketAddr::new(tusk_common::net::advertised_ip(bound), bound.port());
    let mut host = if conf.host.is_empty() { shuffle_addr.ip().to_string() } else { conf.host.clone() };
    let tracker_id = format!("tracker_{host}:{}", shuffle_addr.port());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let svc = ShuffleServer::new(ShuffleService { local_dir: conf.local_dir.clone() });
    let mut stop_srv = stop_rx.clone();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(tusk_proto::serve::RpcMetricsLayer)
            .add_service(svc)
            .serve_with_incoming_shutdown(
                tusk_proto::serve::nodelay(tokio_stream::wrappers::TcpListenerStream::new(shuffle)),
                async move {
                    let _ = stop_srv.wait_for(|s| *s).await;
                },
            ),
    );
    tracing::info!(%tracker_id, shuffle = %shuffle_addr, jobtracker = %conf.jobtracker, "tasktracker started");
    let shared = Arc::new(Shared {
        reports: Mutex::new(Vec::new()),
        ended: tokio::sync::Notify::new(),
        free_maps: AtomicU32::new(conf.map_slots.max(1)),
        free_reduces: AtomicU32::new(conf.reduce_slots.max(1)),
    });
    let mut jt: Option<JobTrackerClient<tonic::transport::Channel>> = None;
    // Attempts running, by job: aborted when the jobtracker says the job ended (killed or
    // failed), so that nothing of it is written afterwards.
    let mut running: std::collections::HashMap<String, Vec<tokio::task::AbortHandle>> = Default::default();
    let mut by_attempt: std::collections::HashMap<String, (tokio::task::AbortHandle, bool, String)> =
        Default::default();
    // Status messages of running attempts, and the last one sent of each.
    let mut statuses: std::collections::HashMap<String, (task::Status, String)> = Default::default();
    let mut tick = tokio::time::interval(conf.heartbeat);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.ended.notified() => {}
            _ = stop_rx.wait_for(|s| *s) => break,
        }
        if jt.is_none() {
            match JobTrackerClient::connect(format!("http://{}", conf.jobtracker)).await {
                Ok(c) => {
                    jt = Some(c);
                    if follow_route {
                        let to = conf.jobtracker.clone();
                        if let Ok(Some(ip)) = tokio::task::spawn_blocking(move || tusk_common::net::route_ip(&to)).await
                        {
                            if ip != shuffle_addr.ip() {
                                tracing::info!(%ip, "advertising a new address");
                                shuffle_addr.set_ip(ip);
                                host = ip.to_string();
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!("jobtracker {} not reachable: {e}", conf.jobtracker);
                    continue;
                }
            }
        }
        let Some(c) = jt.as_mut() else { continue };
        let mut reports = std::mem::take(&mut *shared.reports.lock());
        statuses.retain(|id, _| by_attempt.get(id).is_some_and(|(h, _, _)| !h.is_finished()));
        for (id, (status, sent)) in statuses.iter_mut() {
            let now = status.lock().clone();
            if now != *sent {
                reports.push(TaskReport {
                    attempt_id: id.clone(),
                    state: AttemptState::AttemptRunning as i32,
                    status: now.clone(),
                    ..Default::default()
                });
                *sent = now;
            }
        }
        let hb = TrackerHeartbeat {
            tracker_id: tracker_id.clone(),
            host: host.clone(),
            shuffle_addr: shuffle_addr.to_string(),
            free_map_slots: shared.free_maps.load(Ordering::Acquire),
            free_reduce_slots: shared.free_reduces.load(Ordering::Acquire),
            reports: reports.clone(),
        };
        let resp = match c.heartbeat(hb).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                tracing::warn!("heartbeat to the jobtracker failed: {}", s.message());
                shared.reports.lock().extend(reports);
                jt = None;
                continue;
            }
        };
        by_attempt.retain(|_, (h, _, _)| !h.is_finished());
        for attempt in resp.kill_attempts {
            if let Some((h, is_map, job)) = by_attempt.remove(&attempt) {
                tracing::info!(%attempt, "attempt killed: another attempt of its task won");
                h.abort();
                if is_map {
                    let _ = tokio::fs::remove_dir_all(task::map_output_dir(&conf.local_dir, &job, &attempt)).await;
                }
            }
        }
        for handles in running.values_mut() {
            handles.retain(|h| !h.is_finished());
        }
        running.retain(|_, h| !h.is_empty());
        for job in resp.finished_jobs {
            for h in running.remove(&job).unwrap_or_default() {
                h.abort();
            }
            let dir = conf.local_dir.join(&job);
            if dir.exists() {
                tracing::info!(%job, "job ended: removing its map output");
                let _ = tokio::fs::remove_dir_all(&dir).await;
            }
        }
        for a in resp.tasks {
            let is_map = a.kind == TaskKind::Map as i32;
            let slots = if is_map { &shared.free_maps } else { &shared.free_reduces };
            slots.fetch_sub(1, Ordering::AcqRel);
            let (shared, client, local) = (Arc::clone(&shared), client.clone(), conf.local_dir.clone());
            let job_id = a.job_id.clone();
            // Gives the slot back however the attempt ends, aborted included.
            struct Slot(Arc<Shared>, bool);
            impl Drop for Slot {
                fn drop(&mut self) {
                    let slots = if self.1 { &self.0.free_maps } else { &self.0.free_reduces };
                    slots.fetch_add(1, Ordering::AcqRel);
                }
            }
            let slot = Slot(Arc::clone(&shared), is_map);
            let slow_down = conf.slow_down;
            let (attempt_id, job_of) = (a.attempt_id.clone(), a.job_id.clone());
            let status = task::Status::default();
            statuses.insert(attempt_id.clone(), (status.clone(), String::new()));
            let handle = tokio::spawn(async move {
                let slot = slot;
                if !slow_down.is_zero() {
                    tokio::time::sleep(slow_down).await;
                }
                tracing::info!(attempt = %a.attempt_id, "attempt started");
                let result = if is_map {
                    task::run_map(&client, &local, &a, &status).await
                } else {
                    task::run_reduce(&client, &local, &a, &status).await
                };
                let report = match result {
                    Ok(counters) => {
                        tracing::info!(attempt = %a.attempt_id, "attempt succeeded");
                        TaskReport {
                            attempt_id: a.attempt_id.clone(),
                            state: AttemptState::AttemptSucceeded as i32,
                            error: String::new(),
                            counters: counters.into_iter().collect(),
                            fetch_failed_maps: Vec::new(),
                            status: status.lock().clone(),
                            ..Default::default()
                        }
                    }
                    Err(e) => {
                        tracing::warn!(attempt = %a.attempt_id, "attempt failed: {}", e.message);
                        if is_map {
                            let _ =
                                tokio::fs::remove_dir_all(task::map_output_dir(&local, &a.job_id, &a.attempt_id)).await;
                        }
                        TaskReport {
                            attempt_id: a.attempt_id.clone(),
                            state: AttemptState::AttemptFailed as i32,
                            error: e.message,
                            counters: Default::default(),
                            fetch_failed_maps: e.fetch_failed_maps,
                            status: status.lock().clone(),
                            bad_record: e.bad_record.as_ref().map(|b| b.0),
                            bad_record_at: e.bad_record.map(|b| b.1).unwrap_or_default(),
                            fatal: e.fatal,
                        }
                    }
                };
                drop(slot);
                shared.reports.lock().push(report);
                shared.ended.notify_one();
            });
            running.entry(job_id).or_default().push(handle.abort_handle());
            by_attempt.insert(attempt_id, (handle.abort_handle(), is_map, job_of));
        }
    }
    let _ = server.await;
    Ok(())
}
