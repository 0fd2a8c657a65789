//! Prometheus `/metrics`: one recorder per process (the `metrics` facade, which the daemons'
//! crates write to), rendered in the Prometheus text format. Durations (`*_seconds`) and sizes
//! (`*_records`, `*_blocks`) are histograms with fixed buckets.

use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const SECONDS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const COUNTS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 1e6];

/// Installs the process's recorder (once); `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_records".into()), COUNTS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_blocks".into()), COUNTS));
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(e) => {
                    tracing::warn!("metrics disabled: {e}");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    tusk_proto::serve::recorder_installed();
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!("metrics disabled: {e}");
                    None
                }
            }
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample (value and time) in a queue until the next
/// upkeep or scrape folds it into the buckets; with nothing scraping `/metrics` a namenode
/// answering thousands of calls a second would grow that queue without end. One thread for
/// the process, since the recorder is one for the process.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
        std::thread::sleep(UPKEEP_INTERVAL);
        handle.run_upkeep();
    });
    if let Err(e) = spawned {
        tracing::warn!("metrics upkeep thread not started ({e}): histograms drain only when /metrics is scraped");
    }
}

pub async fn handler() -> impl IntoResponse {
    let body = install().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
