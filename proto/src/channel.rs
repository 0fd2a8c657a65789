//! How our gRPC clients reach a server: one HTTP/2 connection (the `h2` crate, which hyper
//! and tonic are built on), a call's frames queued straight onto it, and a new connection when
//! the old one has gone.
//!
//! Why not tonic's `Channel`: every call goes through three tasks before its first byte is
//! written. tonic queues it to a worker task (`tower::buffer`), which hands it to hyper's
//! dispatch task, which opens the HTTP/2 stream; and because h2 assigns send window to a new
//! stream only once the connection task has opened it, hyper's dispatch cannot queue the
//! request's DATA with its HEADERS: it spawns one more task that waits for the window. So a
//! unary call took two writes (HEADERS, then DATA) and three task hops (measured: 2.0
//! `writev`s per call). h2 allows DATA to be queued before the window is granted (it is
//! buffered until then), so [`RpcChannel`] queues HEADERS and a small request's DATA in one go,
//! on the caller's task, and the connection task writes them together. What we rely on from
//! tonic's `Channel` is kept: an eager connect with a timeout, TCP_NODELAY, a per-call
//! timeout, and reconnecting on the next call after the connection broke (a namenode
//! restart). A generated client takes it as its transport:
//! `ClientNamenodeClient::with_origin(channel.clone(), channel.origin())`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http_body::{Body as _, Frame};
use tonic::body::Body;
use tonic::codegen::http::{Request, Response, Uri};
use tonic::Status;

/// Receive windows we advertise (hyper's client defaults): a large answer (a listing, the
/// block locations of a big file) arrives without waiting for window updates.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 5 << 20;

/// A request body's bytes queued before the server has granted window for them. Unary
/// requests are far smaller; a larger body waits for window beyond this, so a big upload is
/// not buffered whole.
const UNGRANTED_BYTES: usize = 256 << 10;

/// A cheap-to-clone handle on one HTTP/2 connection to `addr`; clones share the connection.
#[derive(Clone)]
pub struct RpcChannel {
    shared: Arc<Shared>,
}

struct Shared {
    addr: String,
    origin: Uri,
    connect_timeout: Duration,
    call_timeout: Duration,
    /// The live connection's sender and whether its task is still running; `None` until
    /// (re)connected.
    sender: Mutex<Option<Live>>,
    /// Held while connecting, so that calls finding the connection gone open one, not many.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Live {
    sender: SendRequest<Bytes>,
    /// Cleared when the connection's task ends (the peer closed it, or it failed).
    open: Arc<AtomicBool>,
}

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// `addr` is not a `host:port` an origin can be made of (the parser's reason).
    InvalidAddress(String),
    /// The innermost cause, as the operating system put it ("Connection refused (os error
    /// 111)"), or that it timed out.
    Failed(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::InvalidAddress(why) => write!(f, "invalid address: {why}"),
            ConnectError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ConnectError {}

impl RpcChannel {
    /// Connects to `addr` (`host:port`) now, failing within `connect_timeout`; every call
    /// then fails with `DEADLINE_EXCEEDED` if its answer's headers take longer than
    /// `call_timeout`.
    pub async fn connect(
        addr: &str,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<RpcChannel, ConnectError> {
        let origin =
            format!("http://{addr}").parse::<Uri>().map_err(|e| ConnectError::InvalidAddress(e.to_string()))?;
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            origin,
            connect_timeout,
            call_timeout,
            sender: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        });
        let live = shared.open().await?;
        *shared.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(live);
        Ok(RpcChannel { shared })
    }

    /// `http://host:port`, the origin generated clients put in front of a method's path.
    pub fn origin(&self) -> Uri {
        self.shared.origin.clone()
    }
}

impl Shared {
    /// Opens a connection and starts its task; the task ends when the connection does.
    async fn open(&self) -> Result<Live, ConnectError> {
        let stream = match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(&self.addr)).await
        {
            Err(_) => return Err(ConnectError::Failed("connection timed out".into())),
            Ok(Err(e)) => return Err(ConnectError::Failed(e.to_string())),
            Ok(Ok(s)) => s,
        };
        // Unary calls are small writes; without this an answer's trailers can wait behind
        // its data for the peer's delayed ACK.
        stream.set_nodelay(true).map_err(|e| ConnectError::Failed(e.to_string()))?;
        let handshake = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake::<_, Bytes>(stream);
        let (sender, connection) = match tokio::time::timeout(self.connect_timeout, handshake).await {
            Err(_) => return Err(ConnectError::Failed("HTTP/2 handshake timed out".into())),
            Ok(Err(e)) => return Err(ConnectError::Failed(e.to_string())),
            Ok(Ok(pair)) => pair,
        };
        let open = Arc::new(AtomicBool::new(true));
        let flag = open.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("gRPC connection ended: {e}");
            }
            flag.store(false, Ordering::Release);
        });
        Ok(Live { sender, open })
    }

    /// The live connection, or `None` when there is none or it has closed.
    fn live(&self) -> Option<Live> {
        let mut live = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        match &*live {
            Some(l) if l.open.load(Ordering::Acquire) => Some(l.clone()),
            Some(_) => {
                *live = None;
                None
            }
            None => None,
        }
    }

    /// The live connection, opening a new one if it has gone.
    async fn connection(&self) -> Result<Live, Status> {
        if let Some(l) = self.live() {
            return Ok(l);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(l) = self.live() {
            return Ok(l);
        }
        let live = self
            .open()
            .await
            .map_err(|e| Status::unavailable(format!("transport error: failed to connect to {}: {e}", self.addr)))?;
        *self.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(live.clone());
        Ok(live)
    }

    async fn call(&self, req: Request<Body>) -> Result<Response<RecvBody>, Status> {
        let call = async {
            let (head, body) = req.into_parts();
            let conn = self.connection().await?;
            // Ready at once unless the connection has failed or is going away; then nothing
            // of this call was sent, so it is safe to go to a new connection.
            let (conn, mut sender) = match conn.sender.clone().ready().await {
                Ok(s) => (conn, s),
                Err(_) => {
                    conn.open.store(false, Ordering::Release);
                    let conn = self.connection().await?;
                    let sender = conn.sender.clone().ready().await.map_err(|e| transport_error(&conn, e))?;
                    (conn, sender)
                }
            };
            let eos = body.is_end_stream();
            let (answer, stream) =
                sender.send_request(Request::from_parts(head, ()), eos).map_err(|e| transport_error(&conn, e))?;
            if !eos {
                send_body(stream, body);
            }
            let answer = answer.await.map_err(|e| transport_error(&conn, e))?;
            let (head, recv) = answer.into_parts();
            Ok(Response::from_parts(head, RecvBody { recv, data_done: false }))
        };
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded("Timeout expired")),
        }
    }
}

/// An error from the connection: the caller gets UNAVAILABLE (as from tonic's channel), and
/// the next call a new connection if this one is done for.
fn transport_error(conn: &Live, e: h2::Error) -> Status {
    if e.is_io() || e.is_go_away() {
        conn.open.store(false, Ordering::Release);
    }
    Status::unavailable(format!("transport error: {e}"))
}

/// Queues `body` on `stream`. What the body has ready now is queued now, before the caller
/// yields, so the connection task writes it with the HEADERS; only a body that has to wait
/// for its next chunk (a client stream) continues on a task of its own.
fn send_body(stream: SendStream<Bytes>, body: Body) {
    let mut pump = Box::pin(pump_body(stream, body));
    let waker = std::task::Waker::noop();
    if pump.as_mut().poll(&mut Context::from_waker(waker)).is_pending() {
        tokio::spawn(pump);
    }
}

async fn pump_body(mut stream: SendStream<Bytes>, mut body: Body) {
    let mut ungranted = UNGRANTED_BYTES;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let (sent, last) = match frame {
            None => (stream.send_data(Bytes::new(), true), true),
            Some(Err(e)) => {
                tracing::debug!("request body failed: {e}");
                stream.send_reset(h2::Reason::CANCEL);
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let eos = body.is_end_stream();
                    (send_chunk(&mut stream, data, eos, &mut ungranted).await, eos)
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => (stream.send_trailers(trailers), true),
                    Err(_) => continue,
                },
            },
        };
        if let Err(e) = sent {
            tracing::debug!("request body not sent: {e}");
            return;
        }
        if last {
            return;
        }
    }
}

/// Queues one chunk: at once while the bytes queued ahead of the server's window stay under
/// [`UNGRANTED_BYTES`], otherwise as the server grants window.
async fn send_chunk(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    eos: bool,
    ungranted: &mut usize,
) -> Result<(), h2::Error> {
    if data.len() <= *ungranted {
        *ungranted -= data.len();
        return stream.send_data(data, eos);
    }
    while data.has_remaining() {
        stream.reserve_capacity(data.len());
        let granted = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        let piece = data.split_to(granted.min(data.len()));
        stream.send_data(piece, eos && !data.has_remaining())?;
    }
    Ok(())
}

/// An answer's body: the stream's DATA, then its trailers (where gRPC puts the status).
pub struct RecvBody {
    recv: RecvStream,
    data_done: bool,
}

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Give the window back at once: tonic holds at most one message.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

impl tower::Service<Request<Body>> for RpcChannel {
    type Response = Response<RecvBody>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>> + Send>>;

    /// Always ready: a call waits for the connection (or a new one) inside its future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { shared.call(req).await })
    }
}
