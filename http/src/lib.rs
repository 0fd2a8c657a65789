//! The HTTP face of the daemons (axum): web pages, Prometheus `/metrics` and WebHDFS.
//!
//! - namenode (default :9870): overview, datanodes, file browser; WebHDFS metadata
//!   operations, with OPEN/CREATE/APPEND redirected to a datanode;
//! - datanode (:9864): its page; WebHDFS OPEN/CREATE/APPEND (the data);
//! - jobtracker (:50030): jobs, a job's attempts and counters, trackers.
//!
//! Each router is thin: pages read the daemon's state in-process, WebHDFS calls the
//! namenode through the client library as the request's user.

pub mod checksum;
pub mod dn_webhdfs;
pub mod json;
pub mod metrics;
pub mod pages;
pub mod params;
pub mod remote;
pub mod webhdfs;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use axum::Router;
use std::sync::Arc;

/// Percent-encodes a path for a URL, keeping `/`.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode_query).collect::<Vec<_>>().join("/")
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub fn encode_query(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The namenode's HTTP server.
pub fn namenode_router(web: pages::namenode::NnWeb) -> Router {
    let clients = Arc::clone(&web.clients);
    let web = Arc::new(web);
    let pages = Router::new()
        .route("/", get(pages::namenode::overview))
        .route("/dfshealth.html", get(pages::namenode::overview))
        .route("/datanodes", get(pages::namenode::datanodes))
        .route("/explorer", get(pages::namenode::explorer))
        .with_state(web);
    let webhdfs = Router::new()
        .route("/webhdfs/v1", any(webhdfs::handle_root))
        .route("/webhdfs/v1/", any(webhdfs::handle_root))
        .route("/webhdfs/v1/{*path}", any(webhdfs::handle))
        .with_state(clients);
    pages.merge(webhdfs).route("/metrics", get(metrics::handler))
}

/// A datanode's HTTP server; `clients` reach its namenode.
pub fn datanode_router(dn: tusk_datanode::DatanodeView, clients: Arc<webhdfs::Clients>) -> Router {
    let pages = Router::new()
        .route("/", get(pages::datanode::overview))
        .route("/datanode.html", get(pages::datanode::overview))
        .with_state(Arc::new(dn));
    let webhdfs = Router::new()
        .route("/webhdfs/v1/{*path}", any(dn_webhdfs::handle))
        .layer(DefaultBodyLimit::disable())
        .with_state(clients);
    pages.merge(webhdfs).route("/metrics", get(metrics::handler))
}

/// The jobtracker's HTTP server.
pub fn jobtracker_router(jt: Arc<tusk_mapreduce::jobtracker::JobTracker>) -> Router {
    Router::new()
        .route("/", get(pages::jobtracker::jobs))
        .route("/jobtracker.jsp", get(pages::jobtracker::jobs))
        .route("/job", get(pages::jobtracker::job))
        .route("/trackers", get(pages::jobtracker::trackers))
        .with_state(jt)
        .route("/metrics", get(metrics::handler))
}

/// Serves `app` on `listener` until `shutdown` resolves. Errors are logged, not fatal.
pub fn spawn(
    what: &'static str,
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    metrics::install();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!("{what} HTTP server failed: {e}");
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoding_keeps_slashes_in_paths_only() {
        assert_eq!(super::encode_path("/a b/c%d"), "/a%20b/c%25d");
        assert_eq!(super::encode_query("/a/b"), "%2Fa%2Fb");
    }
}
