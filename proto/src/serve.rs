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
