//! Whole-image push and pull, shaped like skopeo's: per layer HEAD then
//! POST + PUT, a few layers at a time; then config and OCI manifest. Pull
//! reads the manifest, then config and layers, verifying every digest.

use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use futures::future::join_all;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::json;

use super::blob::fmt_size;
use super::{spawn_timed, Ctx, Outcome, PushedImage, Transfers};
use crate::client::{Registry, OCI_MANIFEST};
use crate::data::{digests, sha256_digest, BlobSpec};

const FIXED_SEED: u64 = 0x6265_7274_6869_6d67;
/// Seed of the layer-size sequence (shared by every image and run).
const SIZES_SEED: u64 = 0x6265_7274_6873_697a;
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// A generated image: layers, config and manifest, with their digests.
#[derive(Clone, Debug)]
pub(crate) struct ImageSpec {
    pub layers: Vec<(BlobSpec, String)>,
    pub config: Bytes,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

impl ImageSpec {
    /// Image number `index`: `n` layers with sizes spread uniformly in
    /// `[min, max]` and content from `seed`. The sizes depend only on
    /// `index`, `n`, `min` and `max`, so every run (and every registry)
    /// moves the same amount of data.
    pub async fn generate(
        seed: u64,
        index: u64,
        n: usize,
        min: u64,
        max: u64,
    ) -> anyhow::Result<Self> {
        let mut rng = SmallRng::seed_from_u64(SIZES_SEED ^ (index << 20) ^ n as u64);
        let (lo, hi) = (min.min(max), max.max(min));
        let specs: Vec<BlobSpec> = (0..n as u64)
            .map(|i| BlobSpec::new(seed ^ (i << 32) ^ 0x4c41_5945, rng.gen_range(lo..=hi)))
            .collect();
        let layer_digests = digests(&specs).await?;
        Ok(Self::assemble(
            specs.into_iter().zip(layer_digests).collect(),
        ))
    }

    /// Builds config and manifest around layers whose digests are known.
    pub fn assemble(layers: Vec<(BlobSpec, String)>) -> Self {
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": layers.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
            },
        });
        let config = Bytes::from(config.to_string());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": sha256_digest(&config),
                "size": config.len(),
            },
            "layers": layers.iter().map(|(s, d)| json!({
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": d,
                "size": s.size,
            })).collect::<Vec<_>>(),
        });
        let manifest = Bytes::from(manifest.to_string());
        Self {
            manifest_digest: sha256_digest(&manifest),
            layers,
            config,
            manifest,
        }
    }

    /// Layer bytes plus config bytes.
    pub fn payload_bytes(&self) -> u64 {
        self.layers.iter().map(|(s, _)| s.size).sum::<u64>() + self.config.len() as u64
    }
}

/// Pushes `image` to `repo:tag`; returns the payload bytes sent.
pub(crate) async fn push_image(
    registry: Registry,
    repo: String,
    tag: String,
    image: ImageSpec,
    layer_concurrency: usize,
    pb: ProgressBar,
) -> anyhow::Result<u64> {
    let sent: u64 = futures::stream::iter(image.layers.clone())
        .map(|(spec, digest)| {
            let (registry, repo, pb) = (registry.clone(), repo.clone(), pb.clone());
            async move {
                let task = tokio::spawn(async move {
                    if registry.blob_exists(&repo, &digest).await? {
                        return Ok(0);
                    }
                    registry
                        .push_blob_monolithic(&repo, spec, &digest, &pb)
                        .await
                        .map(|()| spec.size)
                });
                task.await.context("layer task")?
            }
        })
        .buffer_unordered(layer_concurrency.max(1))
        .try_fold(
            0u64,
            |acc, n| async move { Ok::<_, anyhow::Error>(acc + n) },
        )
        .await?;
    registry
        .push_small_blob(&repo, image.config.clone())
        .await?;
    let digest = registry
        .put_manifest(&repo, &tag, OCI_MANIFEST, image.manifest.clone())
        .await?;
    anyhow::ensure!(digest == image.manifest_digest, "manifest digest changed");
    Ok(sent + image.config.len() as u64)
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Pulls `repo:tag` and verifies everything against `expected_digest`;
/// returns the payload bytes received.
pub(crate) async fn pull_image(
    registry: Registry,
    repo: String,
    tag: String,
    expected_digest: String,
    layer_concurrency: usize,
    pb: ProgressBar,
) -> anyhow::Result<u64> {
    let body = registry
        .get_manifest_verified(&repo, &tag, &expected_digest)
        .await?;
    let manifest: Manifest =
        serde_json::from_slice(&body).context("manifest is not an OCI manifest")?;
    registry
        .pull_blob_verified(
            &repo,
            &manifest.config.digest,
            manifest.config.size,
            None,
            &pb,
        )
        .await?;
    let layers: u64 = futures::stream::iter(manifest.layers)
        .map(|layer| {
            let (registry, repo, pb) = (registry.clone(), repo.clone(), pb.clone());
            async move {
                let task = tokio::spawn(async move {
                    registry
                        .pull_blob_verified(&repo, &layer.digest, layer.size, None, &pb)
                        .await
                        .map(|()| layer.size)
                });
                task.await.context("layer task")?
            }
        })
        .buffer_unordered(layer_concurrency.max(1))
        .try_fold(
            0u64,
            |acc, n| async move { Ok::<_, anyhow::Error>(acc + n) },
        )
        .await?;
    Ok(layers + manifest.config.size)
}

async fn generate_images(ctx: &Ctx, label: &str, seed: u64) -> anyhow::Result<Vec<ImageSpec>> {
    let a = &ctx.args;
    let approx = a.images as u64 * a.layers as u64 * (a.layer_min_size + a.layer_max_size) / 2;
    let pb = ctx.progress.message(
        label,
        &format!("generating + hashing ~{} of layers", fmt_size(approx)),
    );
    let mut out = Vec::with_capacity(a.images);
    for i in 0..a.images as u64 {
        let image_seed = seed ^ (0x3000 + i).wrapping_mul(0x1000_0000_01b3);
        out.push(
            ImageSpec::generate(image_seed, i, a.layers, a.layer_min_size, a.layer_max_size)
                .await?,
        );
    }
    pb.finish_and_clear();
    Ok(out)
}

fn measurement_name(ctx: &Ctx, images: &[ImageSpec]) -> String {
    let total: u64 = images.iter().map(ImageSpec::payload_bytes).sum();
    format!(
        "{} x {} layers ({} total)",
        images.len(),
        ctx.args.layers,
        fmt_size(total)
    )
}

/// `image-push`.
pub(super) async fn push(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "image-push";
    let images = generate_images(ctx, label, ctx.run_seed).await?;
    let tag = format!("push-{:016x}", ctx.run_seed);
    let total: u64 = images.iter().map(ImageSpec::payload_bytes).sum();
    let pb = ctx.progress.bytes(label, total);
    let pushes = images.iter().enumerate().map(|(i, image)| {
        let repo = ctx.repo(&format!("image-{i}"));
        let fut = push_image(
            ctx.registry.clone(),
            repo,
            tag.clone(),
            image.clone(),
            ctx.args.layer_concurrency,
            pb.clone(),
        );
        spawn_timed(fut)
    });
    let start = Instant::now();
    let (results, usage) = ctx.observe(join_all(pushes)).await;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let mut t = Transfers::default();
    let mut pushed = Vec::new();
    for (i, (r, took)) in results.into_iter().enumerate() {
        if r.is_ok() {
            if let Some(spec) = images.get(i) {
                pushed.push(PushedImage {
                    repo: ctx.repo(&format!("image-{i}")),
                    tag: tag.clone(),
                    manifest_digest: spec.manifest_digest.clone(),
                    spec: spec.clone(),
                });
            }
        }
        t.add(r, took);
    }
    if t.errors == 0 {
        ctx.pushed.lock().unwrap_or_else(|p| p.into_inner()).images = pushed;
    }
    let name = measurement_name(ctx, &images);
    Ok(Outcome::measured(vec![t.into_measurement(
        &name,
        images.len(),
        "image",
        elapsed,
        usage,
    )]))
}

/// Pull `images` with `registry`, all at once, timed and observed.
async fn pull_all(
    ctx: &Ctx,
    registry: &Registry,
    images: &[PushedImage],
    label: &str,
) -> (Transfers, std::time::Duration, super::Usage) {
    let total: u64 = images.iter().map(|i| i.spec.payload_bytes()).sum();
    let pb = ctx.progress.bytes(label, total);
    let pulls = images.iter().map(|img| {
        spawn_timed(pull_image(
            registry.clone(),
            img.repo.clone(),
            img.tag.clone(),
            img.manifest_digest.clone(),
            ctx.args.layer_concurrency,
            pb.clone(),
        ))
    });
    let start = Instant::now();
    let (results, usage) = ctx.observe(join_all(pulls)).await;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let mut t = Transfers::default();
    for (r, took) in results {
        t.add(r, took);
    }
    (t, elapsed, usage)
}

/// `ci-push-pull`: what a CI job and the deploy after it do. Fresh images
/// (never seen by the server) are pushed; right after, a second client
/// with its own connections pulls them (with `--drop-caches`, after the
/// page cache was emptied); then it pulls them once more (warm).
pub(super) async fn ci_push_pull(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "ci-push-pull";
    let images = generate_images(ctx, label, ctx.run_seed ^ 0x6369_2d70_7573_6800).await?;
    let tag = format!("ci-{:016x}", ctx.run_seed);
    let total: u64 = images.iter().map(ImageSpec::payload_bytes).sum();
    let pb = ctx.progress.bytes(&format!("{label} push"), total);
    let pushes = images.iter().enumerate().map(|(i, image)| {
        spawn_timed(push_image(
            ctx.registry.clone(),
            ctx.repo(&format!("ci-{i}")),
            tag.clone(),
            image.clone(),
            ctx.args.layer_concurrency,
            pb.clone(),
        ))
    });
    let start = Instant::now();
    let (results, usage) = ctx.observe(join_all(pushes)).await;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let mut t = Transfers::default();
    for (r, took) in results {
        t.add(r, took);
    }
    let name = measurement_name(ctx, &images);
    let pushed_ok = t.errors == 0;
    let mut out = vec![t.into_measurement(
        &format!("push {name}"),
        images.len(),
        "image",
        elapsed,
        usage,
    )];
    if !pushed_ok {
        return Ok(Outcome::measured(out));
    }
    let pushed: Vec<PushedImage> = images
        .iter()
        .enumerate()
        .map(|(i, spec)| PushedImage {
            repo: ctx.repo(&format!("ci-{i}")),
            tag: tag.clone(),
            manifest_digest: spec.manifest_digest.clone(),
            spec: spec.clone(),
        })
        .collect();
    if ctx.args.drop_caches {
        crate::sysmon::drop_page_cache()?;
    }
    let second = ctx.second_client().await?;
    for (case, pull_label) in [
        (
            "pull from a second client, right after the push",
            "ci-push-pull pull",
        ),
        ("second pull (warm)", "ci-push-pull pull again"),
    ] {
        let (t, elapsed, usage) = pull_all(ctx, &second, &pushed, pull_label).await;
        out.push(t.into_measurement(
            &format!("{case}, {name}"),
            pushed.len(),
            "image",
            elapsed,
            usage,
        ));
    }
    Ok(Outcome::measured(out))
}

/// Images to pull: those image-push left, or fixed ones pushed now (untimed)
/// unless the registry already has them.
async fn images_to_pull(ctx: &Ctx, label: &str) -> anyhow::Result<Vec<PushedImage>> {
    let earlier = ctx
        .pushed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .images
        .clone();
    if !earlier.is_empty() {
        return Ok(earlier);
    }
    let specs = generate_images(ctx, label, FIXED_SEED).await?;
    let mut out = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        let repo = ctx.repo(&format!("image-{i}"));
        let tag = "bench".to_owned();
        let present = ctx
            .registry
            .get_manifest_verified(&repo, &tag, &spec.manifest_digest)
            .await
            .is_ok();
        if !present {
            let pb = ctx
                .progress
                .bytes(&format!("{label} (setup)"), spec.payload_bytes());
            push_image(
                ctx.registry.clone(),
                repo.clone(),
                tag.clone(),
                spec.clone(),
                ctx.args.layer_concurrency,
                pb.clone(),
            )
            .await?;
            pb.finish_and_clear();
        }
        out.push(PushedImage {
            repo,
            tag,
            manifest_digest: spec.manifest_digest.clone(),
            spec,
        });
    }
    Ok(out)
}

/// `image-pull`.
pub(super) async fn pull(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "image-pull";
    let images = images_to_pull(ctx, label).await?;
    let total: u64 = images.iter().map(|i| i.spec.payload_bytes()).sum();
    let pb = ctx.progress.bytes(label, total);
    let pulls = images.iter().map(|img| {
        spawn_timed(pull_image(
            ctx.registry.clone(),
            img.repo.clone(),
            img.tag.clone(),
            img.manifest_digest.clone(),
            ctx.args.layer_concurrency,
            pb.clone(),
        ))
    });
    let start = Instant::now();
    let (results, usage) = ctx.observe(join_all(pulls)).await;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let mut t = Transfers::default();
    for (r, took) in results {
        t.add(r, took);
    }
    let specs: Vec<ImageSpec> = images.into_iter().map(|i| i.spec).collect();
    let name = measurement_name(ctx, &specs);
    Ok(Outcome::measured(vec![t.into_measurement(
        &name,
        specs.len(),
        "image",
        elapsed,
        usage,
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn image_is_consistent() {
        let img = ImageSpec::generate(5, 0, 3, 100, 2000)
            .await
            .expect("generate");
        assert_eq!(img.layers.len(), 3);
        assert!(img
            .layers
            .iter()
            .all(|(s, _)| (100..=2000).contains(&s.size)));
        let m: Manifest = serde_json::from_slice(&img.manifest).expect("manifest json");
        assert_eq!(m.config.digest, sha256_digest(&img.config));
        assert_eq!(m.layers.len(), 3);
        assert_eq!(img.manifest_digest, sha256_digest(&img.manifest));
        let again = ImageSpec::generate(5, 0, 3, 100, 2000)
            .await
            .expect("generate");
        assert_eq!(again.manifest_digest, img.manifest_digest);
    }
}
