//! The accept loop shared by plain HTTP and HTTPS: connection limits and
//! timeouts, so slow or idle clients cannot hold file descriptors and
//! memory for ever.
//!
//! * **Connection limits**: at most [`ConnLimits::max_connections`] open
//!   connections, and [`ConnLimits::max_connections_per_address`] from one
//!   client address (IPv6 by its /64; trusted proxies are exempt, since
//!   all their clients share their address). A connection over a limit is
//!   answered at once (plain HTTP: `429 TOOMANYREQUESTS` for the address
//!   limit, `503 UNAVAILABLE` for the global one, in the OCI envelope,
//!   then closed; HTTPS: closed) and never reaches hyper.
//! * **Header-read timeout**: the TLS handshake, and the request head from
//!   its first byte (HTTP/1.1) or the first request of a connection, must
//!   arrive within [`ConnLimits::header_read_timeout`]; else the
//!   connection is closed.
//! * **Idle timeout**: a connection with no request in progress and no
//!   bytes moving either way for [`ConnLimits::idle_timeout`] is closed
//!   (gracefully: HTTP/2 gets a GOAWAY). A response being streamed to a
//!   client that stopped reading counts as idle.
//!
//! One watchdog per connection sleeps until the earliest moment one of
//! these could fire, so idle connections cost no wakeups in between.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// Limits on client connections.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Time allowed for the TLS handshake, a connection's first request
    /// and every HTTP/1.1 request head from its first byte.
    pub header_read_timeout: Duration,
    /// A connection doing nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most.
    pub max_connections_per_address: usize,
    /// Addresses exempt from the per-address limit (trusted proxies).
    pub exempt: Vec<IpNet>,
}

/// Default header-read timeout.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Default idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default global connection limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default per-address connection limit.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            exempt: Vec::new(),
        }
    }
}

/// The address a client is counted under: an IPv4 address (also when
/// IPv4-mapped) as is, an IPv6 address by its /64 (one host usually holds
/// a whole /64, so single addresses would be free to rotate).
pub fn address_bucket(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(v4) => IpNet::from(IpAddr::V4(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpNet::from(IpAddr::V4(v4)),
            None => ipnet::Ipv6Net::new(v6, 64)
                .map(|n| IpNet::V6(n.trunc()))
                .unwrap_or_else(|_| IpNet::from(IpAddr::V6(v6))),
        },
    }
}

// ---- connection slots ------------------------------------------------------

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Global,
    Address,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpNet, usize>,
}

struct Slots {
    limits: ConnLimits,
    counts: Mutex<Counts>,
}

/// One admitted connection; dropping it frees its slot.
struct Slot {
    slots: Arc<Slots>,
    bucket: Option<IpNet>,
}

impl Slots {
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let bucket = address_bucket(ip);
        let exempt = self.limits.exempt.iter().any(|n| n.contains(&ip));
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.limits.max_connections {
            return Err(Refused::Global);
        }
        if !exempt {
            let n = c.per_address.entry(bucket).or_insert(0);
            if *n >= self.limits.max_connections_per_address {
                return Err(Refused::Address);
            }
            *n += 1;
        }
        c.total += 1;
        metrics::gauge!(OPEN_METRIC).set(c.total as f64);
        Ok(Slot {
            slots: self.clone(),
            bucket: (!exempt).then_some(bucket),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(b) = self.bucket {
            if let Some(n) = c.per_address.get_mut(&b) {
                *n -= 1;
                if *n == 0 {
                    c.per_address.remove(&b);
                }
            }
        }
        metrics::gauge!(OPEN_METRIC).set(c.total as f64);
    }
}

const OPEN_METRIC: &str = "berth_connections_open";
const REFUSED_METRIC: &str = "berth_connections_refused_total";
const CLOSED_METRIC: &str = "berth_connections_closed_total";

/// HELP texts of the connection metrics.
pub fn describe_metrics() {
    metrics::describe_gauge!(OPEN_METRIC, "Client connections open");
    metrics::describe_counter!(
        REFUSED_METRIC,
        "Connections refused by a connection limit (global, address)"
    );
    metrics::describe_counter!(
        CLOSED_METRIC,
        "Connections closed by the server for a timeout (header_timeout, idle_timeout)"
    );
    metrics::gauge!(OPEN_METRIC).set(0.0);
}

// ---- activity ---------------------------------------------------------------

/// What a connection is doing, shared by its IO, its service and its
/// watchdog. Times are milliseconds since `start`; 0 in `head_started`
/// means no request head is being read.
struct Activity {
    start: Instant,
    last_io: AtomicU64,
    idle_since: AtomicU64,
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    http2: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_io: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            http2: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Milliseconds since the connection was accepted (at least 1).
    fn now(&self) -> u64 {
        (self.start.elapsed().as_millis() as u64).max(1)
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// A request reached the service.
    fn begin(self: &Arc<Self>, version: axum::http::Version) -> RequestGuard {
        if version == axum::http::Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// When the connection must be closed if nothing changes, and why;
    /// `None` while a request is in progress.
    fn deadline(&self, limits: &ConnLimits) -> Option<(u64, &'static str)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let header = limits.header_read_timeout.as_millis() as u64;
        if self.requests.load(Ordering::Relaxed) == 0 {
            return Some((header, "header_timeout"));
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != 0 && !self.http2.load(Ordering::Relaxed) {
            return Some((head + header, "header_timeout"));
        }
        let since = self
            .idle_since
            .load(Ordering::Relaxed)
            .max(self.last_io.load(Ordering::Relaxed));
        Some((
            since + limits.idle_timeout.as_millis() as u64,
            "idle_timeout",
        ))
    }
}

/// A request in progress; dropping it marks the connection idle.
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Relaxed);
        a.head_started.store(0, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An IO stream that reports its reads and writes to an [`Activity`].
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

/// A client connection's stream: plain TCP can `sendfile` (see
/// [`crate::sendfile`]), TLS cannot.
pub(crate) trait ConnIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Whether [`ConnIo::poll_sendfile`] works on this stream.
    const SENDFILE: bool = false;

    /// Send up to `len` bytes of `file` from `offset` to the peer.
    fn poll_sendfile(
        &mut self,
        _cx: &mut Context<'_>,
        _file: &std::fs::File,
        _offset: u64,
        _len: usize,
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::Unsupported.into()))
    }
}

impl ConnIo for TcpStream {
    const SENDFILE: bool = cfg!(target_os = "linux");

    #[cfg(target_os = "linux")]
    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> Poll<std::io::Result<usize>> {
        use std::os::fd::AsRawFd;
        let sock = self.as_raw_fd();
        loop {
            std::task::ready!(self.poll_write_ready(cx))?;
            match self.try_io(tokio::io::Interest::WRITABLE, || {
                crate::sendfile::sendfile_once(sock, file, offset, len)
            }) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }
}

impl ConnIo for tokio_rustls::server::TlsStream<TcpStream> {}

impl<T: ConnIo> Tracked<T> {
    /// A write that `sendfile` can do instead: the first slice lies in a
    /// registered blob mapping (sent from the file), or slices before one
    /// that does (written up to it). `None`: write normally.
    fn poll_zero_copy(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Option<Poll<std::io::Result<usize>>> {
        let first = bufs.iter().position(|b| !b.is_empty())?;
        match crate::sendfile::lookup(&bufs[first]) {
            Some((file, offset, n)) => match self.inner.poll_sendfile(cx, &file, offset, n) {
                // A file system without sendfile: the mapping is readable.
                Poll::Ready(Err(e))
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                    ) =>
                {
                    None
                }
                r => Some(r),
            },
            None => {
                let next = bufs[first + 1..]
                    .iter()
                    .position(|b| crate::sendfile::lookup(b).is_some())?;
                Some(Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..first + 1 + next]))
            }
        }
    }
}

impl<T: ConnIo> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let zero_copy = if T::SENDFILE && crate::sendfile::any_live() {
            self.poll_zero_copy(cx, bufs)
        } else {
            None
        };
        let r = match zero_copy {
            Some(r) => r,
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        };
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---- the accept loop --------------------------------------------------------

/// Accept connections on `listener` (TLS when `tls` is given) and serve
/// `router` on them within `limits`, until `shutdown` resolves; then stop
/// accepting, let every connection finish its requests and return.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    describe_metrics();
    raise_fd_limit(limits.max_connections);
    let limits = Arc::new(limits);
    let slots = Arc::new(Slots {
        limits: (*limits).clone(),
        counts: Mutex::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let slot = match slots.acquire(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                refuse(tcp, peer, why, tls.is_some());
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            router: router.clone(),
            limits: limits.clone(),
            peer,
            stop: stop_rx.clone(),
            _slot: slot,
        };
        let tls = tls.clone();
        tracker.spawn(async move {
            match tls {
                None => conn.run(tcp).await,
                Some(acceptor) => {
                    let hs =
                        tokio::time::timeout(conn.limits.header_read_timeout, acceptor.accept(tcp));
                    match hs.await {
                        Ok(Ok(stream)) => conn.run(stream).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => {
                            metrics::counter!(CLOSED_METRIC, "reason" => "header_timeout")
                                .increment(1);
                            tracing::debug!(client = %peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// File descriptors kept for everything but client connections (blob
/// files, the database, upload files).
const FD_RESERVE: u64 = 256;

/// Raise the soft limit on open files to the hard one, and warn when it
/// cannot hold `max_connections` connections besides [`FD_RESERVE`].
fn raise_fd_limit(max_connections: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let want = max_connections as u64 + FD_RESERVE;
    let current: u64 = lim.rlim_cur;
    if current < want {
        tracing::warn!(
            open_files = current,
            max_connections,
            "the open-file limit is below --max-connections plus {FD_RESERVE}; raise it (ulimit -n, LimitNOFILE=) or lower --max-connections"
        );
    }
}

/// Answer a connection over a limit and close it. Plain HTTP gets a short
/// response (written only if the socket takes it at once); TLS is closed.
fn refuse(tcp: TcpStream, peer: SocketAddr, why: Refused, tls: bool) {
    let (limit, status, code, message) = match why {
        Refused::Global => (
            "global",
            "503 Service Unavailable",
            "UNAVAILABLE",
            "the registry has too many open connections; retry shortly",
        ),
        Refused::Address => (
            "address",
            "429 Too Many Requests",
            "TOOMANYREQUESTS",
            "too many open connections from this address; reuse connections or retry shortly",
        ),
    };
    metrics::counter!(REFUSED_METRIC, "limit" => limit).increment(1);
    tracing::debug!(client = %peer, limit, "connection refused by a connection limit");
    if tls {
        return;
    }
    let body = format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#);
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.try_write(resp.as_bytes());
    // Close without blocking; unread request bytes may turn this into a
    // reset, which clients report as a refused connection all the same.
    tokio::spawn(async move {
        let mut tcp = tcp;
        let _ = tokio::time::timeout(Duration::from_secs(1), tcp.shutdown()).await;
    });
}

/// One admitted connection.
struct Connection {
    router: Router,
    limits: Arc<ConnLimits>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    _slot: Slot,
}

impl Connection {
    async fn run<T: ConnIo>(mut self, io: T) {
        let activity = Arc::new(Activity::new());
        let peer = self.peer;
        let router = self.router.clone();
        let act = activity.clone();
        let service =
            tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if T::SENDFILE
                    && matches!(
                        req.version(),
                        axum::http::Version::HTTP_10 | axum::http::Version::HTTP_11
                    )
                {
                    req.extensions_mut().insert(crate::body::ZeroCopy);
                }
                let guard = act.begin(req.version());
                let router = router.clone();
                async move {
                    let resp = router.oneshot(req).await;
                    drop(guard);
                    resp
                }
            });
        let mut builder = Builder::new(TokioExecutor::new());
        // Timeouts are the watchdog's (hyper's own header timer would also
        // cut idle keep-alive connections at the header timeout).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None);
        builder.http2().timer(TokioTimer::new());
        let conn = builder.serve_connection_with_upgrades(
            TokioIo::new(Tracked {
                inner: io,
                activity: activity.clone(),
            }),
            TowerToHyperService::new(service),
        );
        tokio::pin!(conn);
        let poll_in_flight = self
            .limits
            .header_read_timeout
            .min(self.limits.idle_timeout);
        let mut stopping = false;
        loop {
            let wait = match activity.deadline(&self.limits) {
                None => poll_in_flight,
                Some((at, why)) => {
                    let now = activity.now();
                    if now >= at {
                        metrics::counter!(CLOSED_METRIC, "reason" => why).increment(1);
                        tracing::debug!(client = %peer, reason = why, "closing connection");
                        if why == "idle_timeout" {
                            conn.as_mut().graceful_shutdown();
                            let _ =
                                tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await;
                        }
                        return;
                    }
                    Duration::from_millis(at - now)
                }
            };
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(client = %peer, error = %e, "connection ended with error");
                    }
                    return;
                }
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_buckets_by_64() {
        let a = address_bucket("2001:db8:1:2::5".parse().expect("ip"));
        let b = address_bucket("2001:db8:1:2:ffff::1".parse().expect("ip"));
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let v4 = address_bucket("::ffff:10.0.0.1".parse().expect("ip"));
        assert_eq!(v4.to_string(), "10.0.0.1/32");
    }

    #[test]
    fn slots_limit_per_address_and_in_total() {
        let slots = Arc::new(Slots {
            limits: ConnLimits {
                max_connections: 3,
                max_connections_per_address: 2,
                exempt: vec!["10.9.0.0/16".parse().expect("net")],
                ..ConnLimits::default()
            },
            counts: Mutex::default(),
        });
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let a1 = slots.acquire(ip("10.0.0.1")).expect("1");
        let _a2 = slots.acquire(ip("10.0.0.1")).expect("2");
        assert_eq!(slots.acquire(ip("10.0.0.1")).err(), Some(Refused::Address));
        let _b = slots.acquire(ip("10.9.0.1")).expect("exempt");
        assert_eq!(slots.acquire(ip("10.0.0.2")).err(), Some(Refused::Global));
        drop(a1);
        let _a3 = slots.acquire(ip("10.0.0.1")).expect("freed");
    }
}
