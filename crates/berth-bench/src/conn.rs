//! Lean per-task connections for the request-rate loops.
//!
//! A load task owns one [`Session`]. Against a plain `http://` registry it
//! speaks HTTP/1.1 over its own hyper connection (about half the client CPU
//! per request of a pooled `reqwest` client, which matters when client and
//! server share two cores); for `https://` or other origins it falls back to
//! a single-connection `reqwest` client. Bodies are small and buffered.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, HOST, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use crate::client::Registry;

/// A fully read response.
#[derive(Debug)]
pub struct SmallResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body (empty for HEAD).
    pub body: Bytes,
}

impl SmallResponse {
    /// A header as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails with the status and start of the body unless the status is `ok`.
    pub fn expect(self, ok: StatusCode, what: &str) -> anyhow::Result<Self> {
        if self.status == ok {
            return Ok(self);
        }
        let snippet = String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned();
        anyhow::bail!("{what}: unexpected {}: {}", self.status, snippet.trim())
    }
}

/// Where the raw connection goes: the registry's own `http://` origin.
struct Origin {
    host: String,
    port: u16,
    host_header: HeaderValue,
}

/// One load task's connection plus the shared registry handle (auth, URLs).
pub struct Session {
    registry: Registry,
    origin: Option<Origin>,
    raw: Option<SendRequest<Full<Bytes>>>,
}

impl Session {
    /// A session for one task; `registry` should already be a
    /// single-connection handle (see [`Registry::with_own_connection`]).
    pub fn new(registry: Registry) -> Self {
        let base = registry.base();
        let origin = match (base.scheme(), base.host_str(), base.port_or_known_default()) {
            ("http", Some(host), Some(port)) => {
                let authority = match base.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_owned(),
                };
                HeaderValue::from_str(&authority)
                    .ok()
                    .map(|host_header| Origin {
                        host: host
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .to_owned(),
                        port,
                        host_header,
                    })
            }
            _ => None,
        };
        Self {
            registry,
            origin,
            raw: None,
        }
    }

    /// The registry handle.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sends with the `Authorization` the registry wants for `scope`,
    /// retrying once after a 401 challenge.
    pub async fn send(
        &mut self,
        scope: &str,
        method: Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> anyhow::Result<SmallResponse> {
        let auth = self.registry.auth().clone();
        let authorization = auth.authorization(scope).await?;
        let resp = self
            .send_once(
                method.clone(),
                url,
                headers,
                authorization.as_ref(),
                body.clone(),
            )
            .await?;
        if resp.status != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(challenge) = resp.header(WWW_AUTHENTICATE.as_str()).map(str::to_owned) else {
            return Ok(resp);
        };
        if !auth.on_unauthorized(scope, &challenge).await? {
            return Ok(resp);
        }
        let authorization = auth.authorization(scope).await?;
        self.send_once(method, url, headers, authorization.as_ref(), body)
            .await
    }

    /// Sends exactly once with the given `Authorization` (or none).
    pub async fn send_once(
        &mut self,
        method: Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        authorization: Option<&HeaderValue>,
        body: Bytes,
    ) -> anyhow::Result<SmallResponse> {
        if self.is_raw_target(url) {
            self.send_raw(method, url, headers, authorization, body)
                .await
        } else {
            self.send_reqwest(method, url, headers, authorization, body)
                .await
        }
    }

    fn is_raw_target(&self, url: &Url) -> bool {
        let Some(o) = &self.origin else { return false };
        url.scheme() == "http"
            && url.port_or_known_default() == Some(o.port)
            && url
                .host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
                == Some(o.host.as_str())
    }

    async fn connect(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        let usable = self.raw.as_ref().is_some_and(|s| !s.is_closed());
        if !usable {
            let Some(o) = &self.origin else {
                anyhow::bail!("no plain-HTTP origin to connect to");
            };
            let tcp = tokio::net::TcpStream::connect((o.host.as_str(), o.port))
                .await
                .with_context(|| format!("connecting to {}:{}", o.host, o.port))?;
            tcp.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .context("HTTP/1.1 handshake")?;
            tokio::spawn(async move {
                // Ends when the server or the sender closes the connection.
                let _ = conn.await;
            });
            self.raw = Some(sender);
        }
        self.raw.as_mut().context("connection vanished")
    }

    async fn send_raw(
        &mut self,
        method: Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        authorization: Option<&HeaderValue>,
        body: Bytes,
    ) -> anyhow::Result<SmallResponse> {
        let host = self
            .origin
            .as_ref()
            .map(|o| o.host_header.clone())
            .context("no origin")?;
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(body))
            .context("building request")?;
        let h = req.headers_mut();
        h.insert(HOST, host);
        for (k, v) in headers {
            h.insert(k.clone(), v.clone());
        }
        if let Some(a) = authorization {
            h.insert(AUTHORIZATION, a.clone());
        }
        let sender = self.connect().await?;
        if let Err(e) = sender.ready().await {
            self.raw = None;
            return Err(e).context("connection not ready");
        }
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.raw = None;
                return Err(e).context("sending request");
            }
        };
        let (parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.raw = None;
                return Err(e).context("reading response body");
            }
        };
        Ok(SmallResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    async fn send_reqwest(
        &mut self,
        method: Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        authorization: Option<&HeaderValue>,
        body: Bytes,
    ) -> anyhow::Result<SmallResponse> {
        let mut req = self.registry.http().request(method, url.clone());
        for (k, v) in headers {
            req = req.header(k.clone(), v.clone());
        }
        if let Some(a) = authorization {
            req = req.header(AUTHORIZATION, a.clone());
        }
        if !body.is_empty() {
            req = req.body(body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?;
        Ok(SmallResponse {
            status,
            headers,
            body,
        })
    }
}
