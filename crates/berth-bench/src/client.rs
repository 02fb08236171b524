//! A small OCI distribution client: just the calls the scenarios time.
//!
//! Every call goes through [`Registry::send`], which adds the right
//! `Authorization` for the call's scope and retries once after a 401
//! challenge. Request builders are closures so a retry can rebuild a
//! streaming body from its generator.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use bytes::Bytes;
use futures::StreamExt;
use indicatif::ProgressBar;
use reqwest::header::{
    HeaderMap, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use sha2::{Digest as _, Sha256};

use crate::auth::{parse_challenges, repository_scope, Auth, Credentials};
use crate::data::BlobSpec;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Accept header for manifest reads: OCI first, Docker v2 as a fallback.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json;q=0.9, application/vnd.oci.image.index.v1+json;q=0.8";

/// Connection settings shared by every client of a run.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Accept self-signed or otherwise invalid TLS certificates.
    pub insecure: bool,
}

struct Inner {
    base: Url,
    http: reqwest::Client,
    auth: Arc<Auth>,
    config: ClientConfig,
}

/// A handle on one registry: base URL, HTTP connection pool and shared auth.
/// Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

/// What `GET /v2/` said about authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `200`: no authentication at all.
    Open,
    /// `401` with a `Basic` challenge.
    Basic,
    /// `401` with a `Bearer` challenge (token service at `realm`).
    Bearer {
        /// Token service URL.
        realm: String,
        /// The `service` parameter.
        service: Option<String>,
    },
}

fn build_http(config: &ClientConfig, pool: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(config.insecure)
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("berth-bench/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building HTTP client")
}

impl Registry {
    /// A client for the registry at `base` (e.g. `http://127.0.0.1:5000`).
    pub fn new(
        base: &str,
        creds: Option<Credentials>,
        config: ClientConfig,
    ) -> anyhow::Result<Self> {
        let mut base = Url::parse(base).with_context(|| format!("bad registry URL {base:?}"))?;
        ensure!(
            matches!(base.scheme(), "http" | "https"),
            "registry URL must be http:// or https://"
        );
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = build_http(&config, 256)?;
        let auth = Arc::new(Auth::new(creds, build_http(&config, 32)?));
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                http,
                auth,
                config,
            }),
        })
    }

    /// The same registry and auth state over a client with its own single
    /// connection (for load loops: one connection per task).
    pub fn with_own_connection(&self) -> anyhow::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                base: self.inner.base.clone(),
                http: build_http(&self.inner.config, 1)?,
                auth: self.inner.auth.clone(),
                config: self.inner.config.clone(),
            }),
        })
    }

    /// The registry's base URL (always ends with `/`).
    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    /// Shared auth state.
    pub fn auth(&self) -> &Arc<Auth> {
        &self.inner.auth
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `base` joined with a path such as `v2/name/manifests/tag`.
    pub fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.inner
            .base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("bad path {path:?}"))
    }

    /// Resolves a `Location`/`Link` target, which may be relative.
    pub fn resolve(&self, location: &str) -> anyhow::Result<Url> {
        self.inner
            .base
            .join(location)
            .with_context(|| format!("bad location {location:?}"))
    }

    /// `GET /v2/` and record how the registry wants to be authenticated.
    pub async fn probe(&self) -> anyhow::Result<Probe> {
        let resp = self
            .inner
            .http
            .get(self.url("v2/")?)
            .send()
            .await
            .context("GET /v2/")?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Probe::Open);
        }
        ensure!(
            status == StatusCode::UNAUTHORIZED,
            "GET /v2/ answered {status}: is this an OCI registry?"
        );
        let header = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let challenges = parse_challenges(header);
        self.inner.auth.learn(&challenges)?;
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            return Ok(Probe::Bearer {
                realm: c.param("realm").unwrap_or_default().to_owned(),
                service: c.param("service").map(str::to_owned),
            });
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return Ok(Probe::Basic);
        }
        bail!("GET /v2/ answered 401 without a usable WWW-Authenticate: {header:?}")
    }

    /// Sends a request built by `build`, authenticated for `scope`; on a 401
    /// challenge gets credentials for it and rebuilds and resends once.
    pub async fn send<F>(&self, scope: &str, build: F) -> anyhow::Result<Response>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let auth = &self.inner.auth;
        let mut req = build(&self.inner.http);
        if let Some(h) = auth.authorization(scope).await? {
            req = req.header(reqwest::header::AUTHORIZATION, h);
        }
        let resp = req.send().await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let Some(challenge) = challenge else {
            return Ok(resp);
        };
        if !auth.on_unauthorized(scope, &challenge).await? {
            return Ok(resp);
        }
        let mut req = build(&self.inner.http);
        if let Some(h) = auth.authorization(scope).await? {
            req = req.header(reqwest::header::AUTHORIZATION, h);
        }
        Ok(req.send().await?)
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: does the repository have the blob?
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> anyhow::Result<bool> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send(&repository_scope(repo, "pull"), |c| c.head(url.clone()))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => bail!("HEAD blob {digest} answered {s}"),
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/`: opens an upload session, returns its URL.
    pub async fn start_upload(&self, repo: &str) -> anyhow::Result<Url> {
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let resp = self
            .send(&repository_scope(repo, "pull,push"), |c| {
                c.post(url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        let resp = expect_status(resp, &[StatusCode::ACCEPTED], "POST blob upload").await?;
        self.location(resp.headers())
    }

    fn location(&self, headers: &HeaderMap) -> anyhow::Result<Url> {
        let loc = headers
            .get(LOCATION)
            .and_then(|h| h.to_str().ok())
            .context("upload response without Location")?;
        self.resolve(loc)
    }

    /// Monolithic upload: `POST`, then one `PUT ?digest=` carrying the whole
    /// body, streamed from the generator.
    pub async fn push_blob_monolithic(
        &self,
        repo: &str,
        spec: BlobSpec,
        digest: &str,
        progress: &ProgressBar,
    ) -> anyhow::Result<()> {
        let location = self.start_upload(repo).await?;
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .send(&repository_scope(repo, "pull,push"), |c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, spec.size)
                    .body(reqwest::Body::wrap_stream(spec.stream(progress.clone())))
            })
            .await?;
        let resp = expect_status(resp, &[StatusCode::CREATED], "PUT blob").await?;
        check_digest_header(resp.headers(), digest)
    }

    /// Chunked upload: `POST`, `PATCH` chunks with `Content-Range: start-end`
    /// (following the `Location` each answer returns), then `PUT ?digest=`.
    pub async fn push_blob_chunked(
        &self,
        repo: &str,
        spec: BlobSpec,
        digest: &str,
        chunk: u64,
        progress: &ProgressBar,
    ) -> anyhow::Result<()> {
        ensure!(chunk > 0, "chunk size must be positive");
        let scope = repository_scope(repo, "pull,push");
        let mut location = self.start_upload(repo).await?;
        let mut start = 0u64;
        while start < spec.size {
            let end = (start + chunk).min(spec.size);
            let url = location.clone();
            let resp = self
                .send(&scope, |c| {
                    c.patch(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, end - start)
                        .header("Content-Range", format!("{}-{}", start, end - 1))
                        .body(reqwest::Body::wrap_stream(spec.stream_range(
                            start,
                            end,
                            progress.clone(),
                        )))
                })
                .await?;
            let resp = expect_status(resp, &[StatusCode::ACCEPTED], "PATCH blob chunk").await?;
            location = self.location(resp.headers())?;
            start = end;
        }
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self
            .send(&scope, |c| c.put(url.clone()).header(CONTENT_LENGTH, "0"))
            .await?;
        let resp = expect_status(resp, &[StatusCode::CREATED], "PUT blob (close chunked)").await?;
        check_digest_header(resp.headers(), digest)
    }

    /// Uploads a small in-memory blob (config, tiny layers) unless present.
    pub async fn push_small_blob(&self, repo: &str, bytes: Bytes) -> anyhow::Result<String> {
        let digest = crate::data::sha256_digest(&bytes);
        if self.blob_exists(repo, &digest).await? {
            return Ok(digest);
        }
        let mut url = self.start_upload(repo).await?;
        url.query_pairs_mut().append_pair("digest", &digest);
        let resp = self
            .send(&repository_scope(repo, "pull,push"), |c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        let resp = expect_status(resp, &[StatusCode::CREATED], "PUT small blob").await?;
        check_digest_header(resp.headers(), &digest)?;
        Ok(digest)
    }

    /// `GET` a blob (optionally in `Range` pieces of `range_chunk` bytes),
    /// hashing while streaming; fails unless size and sha256 match.
    pub async fn pull_blob_verified(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        range_chunk: Option<u64>,
        progress: &ProgressBar,
    ) -> anyhow::Result<()> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let scope = repository_scope(repo, "pull");
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        match range_chunk {
            None => {
                let resp = self.send(&scope, |c| c.get(url.clone())).await?;
                let resp = expect_status(resp, &[StatusCode::OK], "GET blob").await?;
                received += hash_body(resp, &mut hasher, progress).await?;
            }
            Some(chunk) => {
                ensure!(chunk > 0, "chunk size must be positive");
                let mut start = 0u64;
                while start < size {
                    let end = (start + chunk).min(size);
                    let resp = self
                        .send(&scope, |c| {
                            c.get(url.clone())
                                .header("Range", format!("bytes={}-{}", start, end - 1))
                        })
                        .await?;
                    let resp =
                        expect_status(resp, &[StatusCode::PARTIAL_CONTENT], "GET blob range")
                            .await?;
                    let n = hash_body(resp, &mut hasher, progress).await?;
                    ensure!(
                        n == end - start,
                        "range {start}-{} returned {n} bytes, expected {}",
                        end - 1,
                        end - start
                    );
                    received += n;
                    start = end;
                }
            }
        }
        ensure!(
            received == size,
            "blob {digest}: got {received} bytes, expected {size}"
        );
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        ensure!(
            got == digest,
            "blob content mismatch: expected {digest}, got {got}"
        );
        Ok(())
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; returns the digest the server
    /// reported (checked against the body's sha256).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> anyhow::Result<String> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let digest = crate::data::sha256_digest(&body);
        let resp = self
            .send(&repository_scope(repo, "pull,push"), |c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        let resp = expect_status(resp, &[StatusCode::CREATED], "PUT manifest").await?;
        check_digest_header(resp.headers(), &digest)?;
        Ok(digest)
    }

    /// `GET /v2/<repo>/manifests/<reference>` and check the body's digest.
    /// `expected` is the manifest's digest; returns the body.
    pub async fn get_manifest_verified(
        &self,
        repo: &str,
        reference: &str,
        expected: &str,
    ) -> anyhow::Result<Bytes> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&repository_scope(repo, "pull"), |c| {
                c.get(url.clone()).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let resp = expect_status(resp, &[StatusCode::OK], "GET manifest").await?;
        check_digest_header(resp.headers(), expected)?;
        let body = resp.bytes().await.context("reading manifest")?;
        let got = crate::data::sha256_digest(&body);
        ensure!(
            got == expected,
            "manifest content mismatch: expected {expected}, got {got}"
        );
        Ok(body)
    }

    /// `HEAD /v2/<repo>/manifests/<reference>`: checks status, digest and length.
    pub async fn head_manifest_verified(
        &self,
        repo: &str,
        reference: &str,
        expected: &str,
        expected_len: u64,
    ) -> anyhow::Result<()> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&repository_scope(repo, "pull"), |c| {
                c.head(url.clone()).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let resp = expect_status(resp, &[StatusCode::OK], "HEAD manifest").await?;
        check_digest_header(resp.headers(), expected)?;
        let len = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|h| h.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok());
        ensure!(
            len == Some(expected_len),
            "HEAD manifest Content-Length {len:?}, expected {expected_len}"
        );
        Ok(())
    }

    /// One page of `GET /v2/<repo>/tags/list`; returns the tags and the next
    /// page's URL from the `Link: <...>; rel="next"` header, if any.
    pub async fn tags_page(
        &self,
        repo: &str,
        url: Url,
    ) -> anyhow::Result<(Vec<String>, Option<Url>)> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let resp = self
            .send(&repository_scope(repo, "pull"), |c| c.get(url.clone()))
            .await?;
        let resp = expect_status(resp, &[StatusCode::OK], "GET tags/list").await?;
        let next = match resp.headers().get("link").and_then(|h| h.to_str().ok()) {
            Some(link) => next_link(link).map(|l| self.resolve(&l)).transpose()?,
            None => None,
        };
        let body = resp.bytes().await.context("reading tag list")?;
        let list: TagList = serde_json::from_slice(&body).context("tag list is not JSON")?;
        Ok((list.tags.unwrap_or_default(), next))
    }

    /// A plain request with an explicit method, for load loops that must not
    /// authenticate (anonymous baselines).
    pub fn raw(&self, method: Method, url: Url) -> RequestBuilder {
        self.inner.http.request(method, url)
    }
}

/// Extracts the `rel="next"` target from a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    for part in header.split(',') {
        let part = part.trim();
        let (Some(open), Some(close)) = (part.find('<'), part.find('>')) else {
            continue;
        };
        if close <= open {
            continue;
        }
        let params = &part[close + 1..];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        if is_next {
            return Some(part[open + 1..close].to_owned());
        }
    }
    None
}

/// Reads the body into `hasher`, returning the byte count.
async fn hash_body(
    resp: Response,
    hasher: &mut Sha256,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let mut n = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading blob body")?;
        hasher.update(&chunk);
        n += chunk.len() as u64;
        progress.inc(chunk.len() as u64);
    }
    Ok(n)
}

/// Passes the response through if its status is one of `ok`; otherwise an
/// error with the status and the start of the body (OCI error JSON).
pub async fn expect_status(
    resp: Response,
    ok: &[StatusCode],
    what: &str,
) -> anyhow::Result<Response> {
    let status = resp.status();
    if ok.contains(&status) {
        return Ok(resp);
    }
    let body = resp.bytes().await.unwrap_or_default();
    bail!(
        "{what}: unexpected {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(300)]).trim()
    )
}

/// If the server sent `Docker-Content-Digest`, it must equal `expected`.
fn check_digest_header(headers: &HeaderMap, expected: &str) -> anyhow::Result<()> {
    if let Some(got) = headers.get("docker-content-digest") {
        let got = got.to_str().unwrap_or_default();
        ensure!(
            got == expected,
            "Docker-Content-Digest {got:?} does not match {expected}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_link() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=t0099&n=100>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=t0099&n=100")
        );
        assert_eq!(
            next_link(r#"<http://x/prev>; rel="prev", <http://x/next>;rel=next"#).as_deref(),
            Some("http://x/next")
        );
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link(r#"<>; rel="prev""#), None);
    }
}
