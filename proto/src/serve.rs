//! How our gRPC servers accept connections.

/// Accepted connections with TCP_NODELAY. tonic's `tcp_nodelay` applies only when it binds
/// the listener itself; our servers serve already-bound listeners (port 0 in tests), and
/// without it a response's trailers wait behind its data for the peer's delayed ACK (40 ms
/// on Linux), so that every unary call took 40 ms.
pub fn nodelay(
    incoming: tokio_stream::wrappers::TcpListenerStream,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    incoming.map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    })
}

/// A tower layer counting every gRPC call by method and timing it (Prometheus, through the
/// `metrics` facade): `rpc_requests_total{service,method,code}` and
/// `rpc_duration_seconds{service,method}`, until the response's headers (the whole call for
/// unary methods). Unknown methods count as `method="unknown"`, so a client cannot grow the
/// label set.
///
/// The handles are looked up once per method and code, not per call (the facade's lookup
/// formats three label strings and hashes them into the registry on every call, a measurable
/// part of a heartbeat's cost). Handles only mean something once the process's recorder is
/// installed (a handle taken before that is a no-op forever), so nothing is recorded or
/// cached until [`recorder_installed`] has been called.
#[derive(Clone, Copy, Default)]
pub struct RpcMetricsLayer;

static RECORDER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called by whoever installs the process's metrics recorder, right after installing it.
pub fn recorder_installed() {
    RECORDER.store(true, std::sync::atomic::Ordering::Release);
}

/// Whether the process's metrics recorder is installed, so that a handle taken now records.
pub fn recording() -> bool {
    RECORDER.load(std::sync::atomic::Ordering::Acquire)
}

/// gRPC status codes are 0..=16.
const CODES: usize = 17;

/// One method's handles: its duration histogram and a counter per status code, each
/// registered on first use so `/metrics` lists only codes that happened.
struct MethodMetrics {
    service: String,
    method: String,
    duration: metrics::Histogram,
    requests: [std::sync::OnceLock<metrics::Counter>; CODES],
}

impl MethodMetrics {
    fn new(service: &str, method: &str) -> MethodMetrics {
        MethodMetrics {
            service: service.to_owned(),
            method: method.to_owned(),
            duration: metrics::histogram!("rpc_duration_seconds", "service" => service.to_owned(), "method" => method.to_owned()),
            requests: Default::default(),
        }
    }

    fn record(&self, code: i32, elapsed: std::time::Duration) {
        let code = usize::try_from(code).ok().filter(|c| *c < CODES).unwrap_or(2);
        let counter = self.requests[code].get_or_init(|| {
            let name = tonic::Code::from_i32(code as i32).description();
            metrics::counter!("rpc_requests_total", "service" => self.service.clone(), "method" => self.method.clone(), "code" => name)
        });
        counter.increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// Every method served so far, by request path. Bounded by the services' methods: a path
/// enters only once a call to it was answered with something other than UNIMPLEMENTED.
type MethodTable = std::sync::RwLock<std::collections::HashMap<Box<str>, std::sync::Arc<MethodMetrics>>>;

fn table() -> &'static MethodTable {
    static TABLE: std::sync::OnceLock<MethodTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(Default::default)
}

fn unknown() -> &'static MethodMetrics {
    static UNKNOWN: std::sync::OnceLock<MethodMetrics> = std::sync::OnceLock::new();
    UNKNOWN.get_or_init(|| MethodMetrics::new("unknown", "unknown"))
}

/// The handles of the method at `path` ("/tusk.client.ClientNamenode/GetFileInfo" ->
/// service "ClientNamenode", method "GetFileInfo"), made on its first answered call.
fn method_metrics(path: &str) -> std::sync::Arc<MethodMetrics> {
    if let Some(m) = table().read().unwrap_or_else(|e| e.into_inner()).get(path) {
        return m.clone();
    }
    let (service, method) = match path.rsplit_once('/') {
        Some((s, m)) => (s.rsplit('.').next().unwrap_or(""), m),
        None => ("", path),
    };
    let mut t = table().write().unwrap_or_else(|e| e.into_inner());
    t.entry(path.into()).or_insert_with(|| std::sync::Arc::new(MethodMetrics::new(service, method))).clone()
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The request's path, kept to name the method once the answer's code is known: the cached
/// handles when the method was seen before, else the path itself.
enum Seen {
    Known(std::sync::Arc<MethodMetrics>),
    New(String),
}

impl<S, B, RB> tower::Service<tonic::codegen::http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<tonic::codegen::http::Request<B>, Response = tonic::codegen::http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        if !recording() {
            return Box::pin(self.inner.call(req));
        }
        let path = req.uri().path();
        let seen = match table().read().unwrap_or_else(|e| e.into_inner()).get(path) {
            Some(m) => Seen::Known(m.clone()),
            None => Seen::New(path.to_owned()),
        };
        let started = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            let code = match &result {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            let elapsed = started.elapsed();
            match seen {
                Seen::Known(m) => m.record(code, elapsed),
                // UNIMPLEMENTED: an unknown path, which must not become a label.
                Seen::New(_) if code == tonic::Code::Unimplemented as i32 => unknown().record(code, elapsed),
                Seen::New(path) => method_metrics(&path).record(code, elapsed),
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_named_from_the_path() {
        let m = method_metrics("/tusk.client.ClientNamenode/GetFileInfo");
        assert_eq!((m.service.as_str(), m.method.as_str()), ("ClientNamenode", "GetFileInfo"));
        // The same handles on the next call.
        assert!(std::sync::Arc::ptr_eq(&m, &method_metrics("/tusk.client.ClientNamenode/GetFileInfo")));
        let odd = method_metrics("NoSlash");
        assert_eq!((odd.service.as_str(), odd.method.as_str()), ("", "NoSlash"));
    }
}
