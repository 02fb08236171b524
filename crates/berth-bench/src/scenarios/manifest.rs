//! Manifest request rate: GET and HEAD by tag and by digest, and the cost of
//! authentication (authenticated GET against an anonymous baseline).

use std::sync::Arc;

use anyhow::ensure;
use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue, ACCEPT};
use reqwest::{Method, StatusCode, Url};

use super::image::{push_image, ImageSpec};
use super::{sweep, Ctx, Outcome};
use crate::auth::repository_scope;
use crate::client::{Probe, Registry, MANIFEST_ACCEPT};
use crate::conn::Session;
use crate::data::sha256_digest;
use crate::load::{Op, Operation};

const FIXED_SEED: u64 = 0x6265_7274_686d_6e66;

/// The small image every manifest case reads.
struct Target {
    repo: String,
    tag: String,
    digest: String,
    len: u64,
}

/// Pushes a one-layer image to `<prefix>/manifest:latest` (skipping blobs
/// the registry already has).
async fn setup(ctx: &Ctx, label: &str) -> anyhow::Result<Target> {
    let pb = ctx.progress.message(label, "pushing a small image");
    let image = ImageSpec::generate(FIXED_SEED, 0, 1, 2048, 2048).await?;
    let repo = ctx.repo("manifest");
    let tag = "latest".to_owned();
    push_image(
        ctx.registry.clone(),
        repo.clone(),
        tag.clone(),
        image.clone(),
        1,
        indicatif::ProgressBar::hidden(),
    )
    .await?;
    pb.finish_and_clear();
    Ok(Target {
        repo,
        tag,
        digest: image.manifest_digest,
        len: image.manifest.len() as u64,
    })
}

/// `GET` (or `HEAD`) of one manifest, verified against its digest.
struct ManifestRequest {
    method: Method,
    url: Url,
    scope: String,
    digest: String,
    len: u64,
    headers: [(HeaderName, HeaderValue); 1],
    /// Send no credentials at all (the anonymous baseline).
    anonymous: bool,
}

impl ManifestRequest {
    fn op(
        ctx: &Ctx,
        method: Method,
        t: &Target,
        reference: &str,
        anonymous: bool,
    ) -> anyhow::Result<Op> {
        Ok(Arc::new(ManifestRequest {
            method,
            url: ctx
                .registry
                .url(&format!("v2/{}/manifests/{reference}", t.repo))?,
            scope: repository_scope(&t.repo, "pull"),
            digest: t.digest.clone(),
            len: t.len,
            headers: [(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT))],
            anonymous,
        }))
    }
}

impl Operation for ManifestRequest {
    fn run<'a>(&'a self, s: &'a mut Session, _n: u64) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let resp = if self.anonymous {
                s.send_once(
                    self.method.clone(),
                    &self.url,
                    &self.headers,
                    None,
                    Bytes::new(),
                )
                .await?
            } else {
                s.send(
                    &self.scope,
                    self.method.clone(),
                    &self.url,
                    &self.headers,
                    Bytes::new(),
                )
                .await?
            };
            let resp = resp.expect(StatusCode::OK, "manifest request")?;
            if let Some(got) = resp.header("docker-content-digest") {
                ensure!(
                    got == self.digest,
                    "Docker-Content-Digest {got} != {}",
                    self.digest
                );
            }
            if self.method == Method::HEAD {
                let len = resp
                    .header("content-length")
                    .and_then(|v| v.parse::<u64>().ok());
                ensure!(
                    len == Some(self.len),
                    "HEAD Content-Length {len:?} != {}",
                    self.len
                );
                return Ok(0);
            }
            ensure!(
                sha256_digest(&resp.body) == self.digest,
                "manifest content does not match {}",
                self.digest
            );
            Ok(resp.body.len() as u64)
        })
    }
}

/// `manifest-get`.
pub(super) async fn get(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "manifest-get";
    let t = setup(ctx, label).await?;
    let mut all = sweep(
        ctx,
        label,
        "by-tag",
        "request",
        ManifestRequest::op(ctx, Method::GET, &t, &t.tag, false)?,
    )
    .await?;
    all.extend(
        sweep(
            ctx,
            label,
            "by-digest",
            "request",
            ManifestRequest::op(ctx, Method::GET, &t, &t.digest, false)?,
        )
        .await?,
    );
    Ok(Outcome::measured(all))
}

/// `manifest-head`.
pub(super) async fn head(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "manifest-head";
    let t = setup(ctx, label).await?;
    let mut all = sweep(
        ctx,
        label,
        "by-tag",
        "request",
        ManifestRequest::op(ctx, Method::HEAD, &t, &t.tag, false)?,
    )
    .await?;
    all.extend(
        sweep(
            ctx,
            label,
            "by-digest",
            "request",
            ManifestRequest::op(ctx, Method::HEAD, &t, &t.digest, false)?,
        )
        .await?,
    );
    Ok(Outcome::measured(all))
}

/// GET with no credentials at all, checking the body's digest.
async fn anonymous_get(
    reg: &Registry,
    repo: &str,
    reference: &str,
    digest: &str,
) -> anyhow::Result<u64> {
    let url = reg.url(&format!("v2/{repo}/manifests/{reference}"))?;
    let resp = reg
        .raw(Method::GET, url)
        .header(ACCEPT, MANIFEST_ACCEPT)
        .send()
        .await?;
    let status = resp.status();
    ensure!(
        status == StatusCode::OK,
        "anonymous GET manifest answered {status}"
    );
    let body = resp.bytes().await?;
    ensure!(sha256_digest(&body) == digest, "manifest content mismatch");
    Ok(body.len() as u64)
}

/// `manifest-get-auth`.
pub(super) async fn get_auth(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "manifest-get-auth";
    let mode = match &ctx.probe {
        Probe::Open => return Ok(Outcome::Skipped("registry does not challenge".into())),
        Probe::Basic => "basic",
        Probe::Bearer { .. } => "bearer",
    };
    let t = setup(ctx, label).await?;
    let mut all = sweep(
        ctx,
        label,
        &format!("{mode} by-digest"),
        "request",
        ManifestRequest::op(ctx, Method::GET, &t, &t.digest, false)?,
    )
    .await?;
    let note = match anonymous_get(&ctx.registry, &t.repo, &t.digest, &t.digest).await {
        Ok(_) => {
            let op = ManifestRequest::op(ctx, Method::GET, &t, &t.digest, true)?;
            all.extend(sweep(ctx, label, "anonymous by-digest", "request", op).await?);
            None
        }
        Err(e) => Some(format!(
            "anonymous baseline not measured: the registry refuses anonymous pull ({e:#})"
        )),
    };
    Ok(Outcome::Measured {
        measurements: all,
        note,
    })
}
