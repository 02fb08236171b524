//! Tag listing: create many tags on one manifest, then page through
//! `tags/list?n=` following the `Link` header.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::image::ImageSpec;
use super::{from_load, Ctx, Outcome, Transfers};
use crate::auth::repository_scope;
use crate::client::OCI_MANIFEST;
use crate::conn::Session;
use crate::load::{run_load, LoadPlan, Op, Operation};

const FIXED_SEED: u64 = 0x6265_7274_6874_6167;

/// Tag name for index `i` (zero-padded so lexical order is numeric order).
fn tag_name(i: u64) -> String {
    format!("t{i:06}")
}

/// `PUT` of the same manifest under tag number `n`.
struct TagPut {
    repo: String,
    scope: String,
    digest: String,
    manifest: Bytes,
    headers: [(HeaderName, HeaderValue); 1],
}

impl Operation for TagPut {
    fn run<'a>(&'a self, s: &'a mut Session, n: u64) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let url = s
                .registry()
                .url(&format!("v2/{}/manifests/{}", self.repo, tag_name(n)))?;
            let resp = s
                .send(
                    &self.scope,
                    Method::PUT,
                    &url,
                    &self.headers,
                    self.manifest.clone(),
                )
                .await?
                .expect(StatusCode::CREATED, "PUT manifest")?;
            if let Some(got) = resp.header("docker-content-digest") {
                ensure!(
                    got == self.digest,
                    "Docker-Content-Digest {got} != {}",
                    self.digest
                );
            }
            Ok(0)
        })
    }
}

/// `tags-list`.
pub(super) async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "tags-list";
    let repo = ctx.repo(&format!("tags-{:08x}", ctx.run_seed as u32));
    let n_tags = ctx.args.tags as u64;

    // Setup: one tiny image's blobs.
    let image = ImageSpec::generate(FIXED_SEED, 0, 1, 512, 512).await?;
    for (spec, _) in &image.layers {
        ctx.registry
            .push_small_blob(&repo, Bytes::from(spec.bytes_range(0, spec.size)))
            .await?;
    }
    ctx.registry
        .push_small_blob(&repo, image.config.clone())
        .await?;

    // Timed: PUT the same manifest under every tag, concurrently.
    let put: Op = Arc::new(TagPut {
        repo: repo.clone(),
        scope: repository_scope(&repo, "pull,push"),
        digest: image.manifest_digest.clone(),
        manifest: image.manifest.clone(),
        headers: [(CONTENT_TYPE, HeaderValue::from_static(OCI_MANIFEST))],
    });
    let plan = LoadPlan {
        connections: ctx.args.tag_concurrency.max(1),
        duration: Duration::ZERO,
        requests: Some(n_tags),
        warm_up: false,
    };
    let pb = ctx.progress.count(&format!("{label} create"), n_tags);
    let (created, usage) = ctx.observe(run_load(&ctx.registry, &plan, pb, put)).await;
    let create = from_load(
        &format!("create {n_tags} tags (PUT manifest)"),
        plan.connections,
        "request",
        created?,
        usage,
    );

    // Timed: page through the list.
    let pages = ctx.progress.timed(&format!("{label} pages"));
    let list = async {
        let mut t = Transfers::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut largest_page = 0usize;
        let mut url = ctx.registry.url(&format!("v2/{repo}/tags/list"))?;
        url.query_pairs_mut()
            .append_pair("n", &ctx.args.page_size.to_string());
        let mut next = Some(url);
        let limit = n_tags / ctx.args.page_size.max(1) as u64 + 10;
        while let Some(url) = next.take() {
            let start = Instant::now();
            let page = ctx.registry.tags_page(&repo, url).await;
            let took = start.elapsed();
            pages.inc(1);
            match page {
                Ok((tags, link)) => {
                    largest_page = largest_page.max(tags.len());
                    seen.extend(tags);
                    t.add(Ok(0), took);
                    next = link;
                }
                Err(e) => t.add(Err(e), took),
            }
            if t.ok + t.errors > limit {
                t.add(
                    Err(anyhow::anyhow!("more pages than tags: Link loop?")),
                    Duration::ZERO,
                );
                break;
            }
        }
        let missing = (0..n_tags)
            .filter(|i| !seen.contains(&tag_name(*i)))
            .count();
        let extra = seen.len() as u64 + missing as u64 - n_tags;
        let check: anyhow::Result<()> = (|| {
            ensure!(
                missing == 0,
                "{missing} created tags missing from the listing"
            );
            ensure!(extra == 0, "{extra} unexpected tags in the listing");
            Ok(())
        })();
        if let Err(e) = check {
            t.errors += 1;
            t.error_samples.push(format!("{e:#}"));
        }
        anyhow::Ok((t, largest_page))
    };
    let start = Instant::now();
    let (listed, usage) = ctx.observe(list).await;
    let elapsed = start.elapsed();
    pages.finish_and_clear();
    let (listed, largest_page) = listed?;
    let note = (largest_page > ctx.args.page_size).then(|| {
        format!(
            "registry ignores n={}: returned up to {largest_page} tags per page",
            ctx.args.page_size
        )
    });
    let list = listed.into_measurement(
        &format!("list {n_tags} tags, n={}", ctx.args.page_size),
        1,
        "page",
        elapsed,
        usage,
    );
    Ok(Outcome::Measured {
        measurements: vec![create, list],
        note,
    })
}
