//! Connections: a cap per listener, a deadline for a new connection's first bytes, TCP and HTTP/2
//! keep-alive, and (REST) hyper's header-read timeout.
//!
//! - The cap is a semaphore per listener, and a count per peer address ([`ConnCap`]). A
//!   connection holds its places for as long as its socket lives; past either cap a new
//!   connection is accepted and closed at once (rather than left in the
//!   kernel's backlog, where it would wait, and make the probes wait, behind every other one).
//! - [`Guarded`] wraps each accepted socket: it holds the permit and fails reads once the
//!   handshake deadline passes before the connection has sent [`PREFACE_BYTES`] bytes (the HTTP/2
//!   client preface; any HTTP/1 request line and headers are as long). This closes connections that
//!   send nothing, or a byte now and then, before hyper's own timeouts start: hyper-util's protocol
//!   detection and the HTTP/2 handshake have none.
//! - REST is served with hyper-util's auto (HTTP/1 and HTTP/2) builder, one task per connection,
//!   with hyper's header-read timeout (the request head must arrive within it, and on a kept-alive
//!   connection the next one too: it is also the HTTP/1 idle timeout), HTTP/2 keep-alive pings and
//!   a cap on concurrent streams; `axum::serve` exposes none of these.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Sleep;

/// Bytes a new connection must send before the handshake deadline: the HTTP/2 client preface.
pub const PREFACE_BYTES: usize = 24;

/// The connection settings of both listeners.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// `None`: TCP keep-alive off.
    pub tcp_keepalive: Option<Duration>,
    /// Connections one peer address may hold open per listener.
    pub max_connections_per_peer: usize,
    pub max_concurrent_streams: u32,
}

impl ConnLimits {
    pub fn from_settings(s: &crate::config::Settings) -> Self {
        Self {
            max_connections: s.max_connections.max(1),
            header_read_timeout: Duration::from_secs(s.header_read_timeout_secs.max(1)),
            http2_keepalive_interval: Duration::from_secs(s.http2_keepalive_interval_secs.max(1)),
            http2_keepalive_timeout: Duration::from_secs(s.http2_keepalive_timeout_secs.max(1)),
            tcp_keepalive: (s.tcp_keepalive_secs > 0)
                .then(|| Duration::from_secs(s.tcp_keepalive_secs)),
            max_concurrent_streams: s.max_concurrent_streams.max(1),
            max_connections_per_peer: s.max_connections_per_peer.max(1),
        }
    }
}

/// The connection caps of one listener: in total, and per peer address (so that one address
/// holding idle connections leaves room for every other client: a red team's unauthenticated
/// idle-connection flood failed about two thirds of REST probes with only the total cap).
#[derive(Debug, Clone)]
pub struct ConnCap {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Open connections per peer address; an address leaves the map with its last connection,
    /// so the map never holds more entries than the total cap.
    peers: PeerCounts,
    per_peer: usize,
    refused: Arc<AtomicU64>,
    listener: &'static str,
}

/// One admitted connection's places: in the listener's total and in its peer's count, given
/// back when the connection closes.
#[derive(Debug)]
pub struct ConnPermit {
    _total: OwnedSemaphorePermit,
    peer: Option<(IpAddr, PeerCounts)>,
}

/// Open connections per peer address of one listener.
type PeerCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Some((addr, peers)) = self.peer.take()
            && let Ok(mut peers) = peers.lock()
            && let Some(n) = peers.get_mut(&addr)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                peers.remove(&addr);
            }
        }
    }
}

impl ConnCap {
    pub fn new(listener: &'static str, limit: usize, per_peer: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            peers: Arc::default(),
            per_peer: per_peer.clamp(1, limit.max(1)),
            refused: Arc::new(AtomicU64::new(0)),
            listener,
        }
    }

    /// A permit for one more connection from `peer` (`None`: the address is unknown, counted in
    /// the total only), or `None` past either cap (logged once per 1,000 refusals, so a flood
    /// cannot flood the log).
    pub fn admit(&self, peer: Option<IpAddr>) -> Option<ConnPermit> {
        let Ok(total) = self.permits.clone().try_acquire_owned() else {
            return self.refuse("connection cap reached: new connections are closed at once");
        };
        let Some(addr) = peer else {
            return Some(ConnPermit {
                _total: total,
                peer: None,
            });
        };
        let admitted = self.peers.lock().is_ok_and(|mut peers| {
            let n = peers.entry(addr).or_insert(0);
            let room = *n < self.per_peer;
            if room {
                *n += 1;
            }
            room
        });
        if !admitted {
            return self.refuse(
                "connection cap per peer address reached: its new connections are closed at once",
            );
        }
        Some(ConnPermit {
            _total: total,
            peer: Some((addr, self.peers.clone())),
        })
    }

    fn refuse(&self, what: &'static str) -> Option<ConnPermit> {
        let n = self.refused.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(1000) {
            tracing::warn!(
                listener = self.listener,
                limit = self.limit,
                per_peer = self.per_peer,
                refused = n + 1,
                "{what}"
            );
        }
        None
    }
}

/// Sets TCP keep-alive on an accepted socket (best effort).
pub fn set_tcp_keepalive(tcp: &TcpStream, idle: Option<Duration>) {
    if let Some(idle) = idle {
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(Duration::from_secs(10));
        let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&ka);
    }
}

pin_project_lite::pin_project! {
    /// An accepted connection: holds its listener's permit, and fails reads once the handshake
    /// deadline has passed before [`PREFACE_BYTES`] bytes arrived (see the module docs).
    pub struct Guarded<IO> {
        #[pin]
        io: IO,
        deadline: Option<Pin<Box<Sleep>>>,
        awaiting: usize,
        _permit: ConnPermit,
    }
}

impl<IO> Guarded<IO> {
    pub fn new(io: IO, permit: ConnPermit, handshake: Duration) -> Self {
        Self {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(handshake))),
            awaiting: PREFACE_BYTES,
            _permit: permit,
        }
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request within the header-read timeout",
            )));
        }
        let before = buf.filled().len();
        ready!(this.io.poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        if this.deadline.is_some() {
            *this.awaiting = this.awaiting.saturating_sub(read);
            if *this.awaiting == 0 {
                *this.deadline = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Serves the REST router on `listener` until `shutdown` turns true, then stops accepting and
/// waits for open connections to finish their requests (the caller bounds the wait).
pub async fn serve_rest<S, B>(
    listener: TcpListener,
    service: S,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()>
where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let cap = ConnCap::new(
        "rest",
        limits.max_connections,
        limits.max_connections_per_peer,
    );
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::error!(error = %e, "accepting a REST connection failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(permit) = cap.admit(Some(peer.ip())) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        set_tcp_keepalive(&tcp, limits.tcp_keepalive);
        let io = TokioIo::new(Guarded::new(tcp, permit, limits.header_read_timeout));
        let service = TowerToHyperService::new(service.clone());
        let conn = graceful.watch(builder.serve_connection(io, service).into_owned());
        tokio::spawn(async move {
            // A client that went away or timed out: nothing to report.
            let _ = conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
