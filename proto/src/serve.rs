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
#[derive(Clone, Copy, Default)]
pub struct RpcMetricsLayer;

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
        // "/tusk.client.ClientNamenode/GetFileInfo" -> ("ClientNamenode", "GetFileInfo")
        let path = req.uri().path().to_owned();
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
            let (service, method) = match path.rsplit_once('/') {
                Some((s, m)) if code != 12 => (s.rsplit('.').next().unwrap_or("").to_owned(), m.to_owned()),
                _ => ("unknown".to_owned(), "unknown".to_owned()),
            };
            let code_name = tonic::Code::from_i32(code).description().to_owned();
            metrics::counter!("rpc_requests_total", "service" => service.clone(), "method" => method.clone(), "code" => code_name)
                .increment(1);
            metrics::histogram!("rpc_duration_seconds", "service" => service, "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
