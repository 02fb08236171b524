//! The distributed configuration (`BERTH_TEST_DISTRIBUTED=1`): every
//! [`TestServer`] that asks for nothing special (no database, no blob
//! store, no data directory of its own) becomes two `berth serve` replicas
//! on a private PostgreSQL database and a private moto S3 server, behind a
//! round-robin HTTP proxy in the test process. The proxy sends each
//! request to the next replica in turn, whatever connection it came on (no
//! stickiness), so a test's POST, PATCHes and PUT of one upload, a token
//! request and the request using the token, a push and the pull after it,
//! land on different replicas. See docs/deployment.md.

use std::net::TcpListener;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use berth_testpg::PgServer;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::object_servers::{Kind, ObjectServer};
use super::TestServer;

/// The environment switch.
pub const DISTRIBUTED_ENV: &str = "BERTH_TEST_DISTRIBUTED";

/// Whether the switch is on.
pub fn enabled() -> bool {
    std::env::var(DISTRIBUTED_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// What a distributed [`TestServer`] owns besides its first replica.
/// Fields drop in order: the second replica stops, then the proxy, then
/// the object server and PostgreSQL.
pub struct Cluster {
    /// The second replica.
    pub b: TestServer,
    /// The round-robin proxy in front of both.
    pub proxy: RoundRobin,
    /// The S3 server both keep blobs on.
    pub objects: ObjectServer,
    /// The PostgreSQL server both keep metadata in.
    pub pg: PgServer,
}

/// Start the distributed configuration for `args`/`env`: replica A (the
/// returned server, whose public port is the proxy's) and, in its
/// cluster, replica B, the proxy, moto and PostgreSQL.
pub async fn start(args: &[&str], env: &[(&str, &str)]) -> TestServer {
    let pg = PgServer::start();
    let url = pg.create_database();
    let objects = ObjectServer::start(Kind::S3).await;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = listener.local_addr().expect("proxy addr").port();
    let login = format!("127.0.0.1:{port}");
    let store = objects.blob_store_url(&format!("d-{}", super::random_suffix()));
    let mut all: Vec<&str> = args.to_vec();
    if !args.iter().any(|a| a.starts_with("--login-server")) {
        all.extend_from_slice(&["--login-server", login.as_str()]);
    }
    all.extend_from_slice(&["--blob-store", store.as_str()]);
    let obj_env = objects.env();
    let mut all_env: Vec<(&str, &str)> = env.to_vec();
    all_env.extend(obj_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut a = TestServer::prepare(&all, &all_env, Some(url.clone()), None);
    a.spawn_and_wait().await;
    let mut b = TestServer::prepare(&all, &all_env, Some(url), None);
    b.spawn_and_wait().await;
    let proxy = RoundRobin::start(listener, vec![a.port, b.port]);
    a.public_port = Some(port);
    a.cluster = Some(Box::new(Cluster {
        b,
        proxy,
        objects,
        pg,
    }));
    a
}

/// A round-robin HTTP/1.1 reverse proxy on its own thread and runtime
/// (tests may block their own runtime on a child process such as skopeo).
pub struct RoundRobin {
    backends: Arc<Mutex<Vec<u16>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type ProxyBody = Either<Incoming, Full<Bytes>>;

/// The client's request body on its way to a replica, noting whether it
/// was forwarded to its end.
struct Tracked {
    inner: Incoming,
    done: Arc<AtomicBool>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.done.store(true, Ordering::Release);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A forwarding failure that closes the client's connection without an
/// answer, as the replica closed the proxy's.
#[derive(Debug)]
struct Hangup(String);

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Hangup {}

impl RoundRobin {
    /// Serve on `listener`, forwarding to `127.0.0.1:<port>` of each of
    /// `backends` in turn.
    pub fn start(listener: TcpListener, backends: Vec<u16>) -> RoundRobin {
        listener.set_nonblocking(true).expect("nonblocking");
        let backends = Arc::new(Mutex::new(backends));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let shared = backends.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let client: Client<HttpConnector, Tracked> =
                    Client::builder(TokioExecutor::new()).build_http();
                let next = Arc::new(AtomicUsize::new(0));
                loop {
                    let conn = tokio::select! {
                        _ = &mut rx => break,
                        c = listener.accept() => c,
                    };
                    let Ok((stream, _)) = conn else { continue };
                    let client = client.clone();
                    let next = next.clone();
                    let backends = shared.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            forward(client.clone(), next.clone(), backends.clone(), req)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        RoundRobin {
            backends,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Replace the backend ports (after a replica restarted on a new port).
    pub fn set_backends(&self, ports: Vec<u16>) {
        if let Ok(mut b) = self.backends.lock() {
            *b = ports;
        }
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send `req` to the next backend, unchanged (the `Host` header included,
/// so the replicas build URLs for the proxy); a backend that cannot be
/// reached is a 502.
async fn forward(
    client: Client<HttpConnector, Tracked>,
    next: Arc<AtomicUsize>,
    backends: Arc<Mutex<Vec<u16>>>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Hangup> {
    let port = {
        let ports = backends.lock().map(|b| b.clone()).unwrap_or_default();
        if ports.is_empty() {
            return Ok(bad_gateway("no backends"));
        }
        ports[next.fetch_add(1, Ordering::Relaxed) % ports.len()]
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let uri = match format!("http://127.0.0.1:{port}{path}").parse() {
        Ok(u) => u,
        Err(_) => return Ok(bad_gateway("bad URI")),
    };
    let done = Arc::new(AtomicBool::new(false));
    let mut req = req.map(|inner| Tracked {
        inner,
        done: done.clone(),
    });
    *req.uri_mut() = uri;
    match client.request(req).await {
        Ok(resp) => Ok(resp.map(Either::Left)),
        // The replica closed the connection before it had the whole
        // request body (a server may stop reading an oversized body and
        // hang up): the client sees its connection closed too, not a 502
        // no replica sent.
        Err(e) if !e.is_connect() && !done.load(Ordering::Acquire) && !client_body_failed(&e) => {
            Err(Hangup(format!(
                "replica on port {port} closed mid-request: {e}"
            )))
        }
        // The client's own request body failed (it was cut short): what a
        // load balancer answers then is 400, not 502.
        Err(e) if client_body_failed(&e) => Ok(status(
            hyper::StatusCode::BAD_REQUEST,
            &format!("request body: {e}"),
        )),
        Err(e) => Ok(bad_gateway(&format!("replica on port {port}: {e}"))),
    }
}

/// Whether a forwarding error came from the client's request body rather
/// than from the replica.
fn client_body_failed(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_user() || h.is_body_write_aborted() {
                return true;
            }
        }
        source = s.source();
    }
    false
}

fn status(code: hyper::StatusCode, msg: &str) -> Response<ProxyBody> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(msg.to_string()))));
    *r.status_mut() = code;
    r
}

fn bad_gateway(msg: &str) -> Response<ProxyBody> {
    status(hyper::StatusCode::BAD_GATEWAY, msg)
}
