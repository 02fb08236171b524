//! Blob push and pull: one big blob (monolithic or chunked) and several in parallel.

use std::time::Instant;

use anyhow::Context as _;
use futures::future::join_all;

use super::{spawn_timed, timed, Ctx, Outcome, Transfers};
use crate::data::{digests, BlobSpec};
use crate::report::Measurement;

/// Key in `Pushed::blobs` for the single big blob.
const SINGLE: &str = "single";
/// Key in `Pushed::blobs` for the parallel set.
const PARALLEL: &str = "parallel";
/// Seed base of the blobs pull scenarios push themselves when run alone, so
/// repeated runs against the same registry find them already there.
const FIXED_SEED: u64 = 0x6265_7274_6862_6c62;

/// Human-readable binary size (`1 GiB`, `128 MiB`, `900 B`).
pub(crate) fn fmt_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, UNITS[unit])
    } else {
        format!("{:.1} {}", v, UNITS[unit])
    }
}

/// Computes digests with a status line (untimed setup).
async fn prepare(ctx: &Ctx, label: &str, specs: &[BlobSpec]) -> anyhow::Result<Vec<String>> {
    let total: u64 = specs.iter().map(|s| s.size).sum();
    let pb = ctx.progress.message(
        label,
        &format!("generating + hashing {} of test data", fmt_size(total)),
    );
    let out = digests(specs).await;
    pb.finish_and_clear();
    out
}

fn remember(ctx: &Ctx, key: &'static str, blobs: Vec<(BlobSpec, String)>) {
    let mut pushed = ctx.pushed.lock().unwrap_or_else(|p| p.into_inner());
    pushed.blobs.insert(key, blobs);
}

/// One big blob pushed with `push`, as a single measurement.
async fn push_single(ctx: &Ctx, label: &str, salt: u64, chunked: bool) -> anyhow::Result<Outcome> {
    let repo = ctx.repo("blobs");
    let spec = BlobSpec::new(ctx.run_seed ^ salt, ctx.args.blob_size);
    let digest = prepare(ctx, label, &[spec])
        .await?
        .pop()
        .context("no digest computed")?;
    let pb = ctx.progress.bytes(label, spec.size);
    let push = async {
        if chunked {
            ctx.registry
                .push_blob_chunked(&repo, spec, &digest, ctx.args.chunk_size, &pb)
                .await
        } else {
            ctx.registry
                .push_blob_monolithic(&repo, spec, &digest, &pb)
                .await
        }
    };
    let ((result, took), usage) = ctx.observe(timed(push)).await;
    pb.finish_and_clear();
    if result.is_ok() {
        remember(ctx, SINGLE, vec![(spec, digest)]);
    }
    let mut t = Transfers::default();
    t.add(result.map(|()| spec.size), took);
    let name = if chunked {
        format!(
            "{} in {} chunks",
            fmt_size(spec.size),
            fmt_size(ctx.args.chunk_size)
        )
    } else {
        format!("{} monolithic", fmt_size(spec.size))
    };
    Ok(Outcome::measured(vec![
        t.into_measurement(&name, 1, "blob", took, usage)
    ]))
}

/// `blob-push-monolithic`.
pub(super) async fn push_monolithic(ctx: &Ctx) -> anyhow::Result<Outcome> {
    push_single(ctx, "blob-push-monolithic", 0x1001, false).await
}

/// `blob-push-chunked`.
pub(super) async fn push_chunked(ctx: &Ctx) -> anyhow::Result<Outcome> {
    push_single(ctx, "blob-push-chunked", 0x1002, true).await
}

fn parallel_specs(ctx: &Ctx, base: u64) -> Vec<BlobSpec> {
    (0..ctx.args.parallel_blobs as u64)
        .map(|i| BlobSpec::new(base ^ (0x2000 + i), ctx.args.parallel_size))
        .collect()
}

/// `blob-push-parallel`.
pub(super) async fn push_parallel(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "blob-push-parallel";
    let repo = ctx.repo("blobs");
    let specs = parallel_specs(ctx, ctx.run_seed);
    let digests = prepare(ctx, label, &specs).await?;
    let total: u64 = specs.iter().map(|s| s.size).sum();
    let pb = ctx.progress.bytes(label, total);
    let pushes = specs.iter().zip(&digests).map(|(spec, digest)| {
        let (registry, repo, pb, digest, spec) = (
            ctx.registry.clone(),
            repo.clone(),
            pb.clone(),
            digest.clone(),
            *spec,
        );
        spawn_timed(async move {
            registry
                .push_blob_monolithic(&repo, spec, &digest, &pb)
                .await
                .map(|()| spec.size)
        })
    });
    let start = Instant::now();
    let (results, usage) = ctx.observe(join_all(pushes)).await;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let mut t = Transfers::default();
    for (r, took) in results {
        t.add(r, took);
    }
    if t.errors == 0 {
        remember(ctx, PARALLEL, specs.into_iter().zip(digests).collect());
    }
    let name = format!(
        "{} x {}",
        ctx.args.parallel_blobs,
        fmt_size(ctx.args.parallel_size)
    );
    let m = t.into_measurement(&name, ctx.args.parallel_blobs, "blob", elapsed, usage);
    Ok(Outcome::measured(vec![m]))
}

/// Blobs to pull: those pushed earlier in this run, or fixed ones pushed now
/// (untimed) unless the registry already has them.
async fn blobs_to_pull(
    ctx: &Ctx,
    label: &str,
    key: &'static str,
) -> anyhow::Result<Vec<(BlobSpec, String)>> {
    if let Some(b) = ctx
        .pushed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .blobs
        .get(key)
    {
        return Ok(b.clone());
    }
    let repo = ctx.repo("blobs");
    let specs = if key == SINGLE {
        vec![BlobSpec::new(FIXED_SEED ^ 0x1001, ctx.args.blob_size)]
    } else {
        parallel_specs(ctx, FIXED_SEED)
    };
    let digests = prepare(ctx, label, &specs).await?;
    let blobs: Vec<(BlobSpec, String)> = specs.into_iter().zip(digests).collect();
    for (spec, digest) in &blobs {
        if !ctx.registry.blob_exists(&repo, digest).await? {
            let pb = ctx.progress.bytes(&format!("{label} (setup)"), spec.size);
            ctx.registry
                .push_blob_monolithic(&repo, *spec, digest, &pb)
                .await?;
            pb.finish_and_clear();
        }
    }
    remember(ctx, key, blobs.clone());
    Ok(blobs)
}

/// One big blob pulled whole or in `Range` pieces.
async fn pull_single(ctx: &Ctx, label: &str, ranged: bool) -> anyhow::Result<Outcome> {
    let repo = ctx.repo("blobs");
    let blobs = blobs_to_pull(ctx, label, SINGLE).await?;
    let Some((spec, digest)) = blobs.into_iter().next() else {
        anyhow::bail!("no blob to pull");
    };
    let range = ranged.then_some(ctx.args.chunk_size);
    if ctx.args.drop_caches {
        crate::sysmon::drop_page_cache()?;
    }
    let pb = ctx.progress.bytes(label, spec.size);
    let pull = ctx
        .registry
        .pull_blob_verified(&repo, &digest, spec.size, range, &pb);
    let ((result, took), usage) = ctx.observe(timed(pull)).await;
    pb.finish_and_clear();
    let mut t = Transfers::default();
    t.add(result.map(|()| spec.size), took);
    let name = if ranged {
        format!(
            "{} in {} ranges",
            fmt_size(spec.size),
            fmt_size(ctx.args.chunk_size)
        )
    } else {
        format!("{} whole", fmt_size(spec.size))
    };
    Ok(Outcome::measured(vec![
        t.into_measurement(&name, 1, "blob", took, usage)
    ]))
}

/// `blob-pull-monolithic`.
pub(super) async fn pull_monolithic(ctx: &Ctx) -> anyhow::Result<Outcome> {
    pull_single(ctx, "blob-pull-monolithic", false).await
}

/// `blob-pull-chunked`.
pub(super) async fn pull_chunked(ctx: &Ctx) -> anyhow::Result<Outcome> {
    pull_single(ctx, "blob-pull-chunked", true).await
}

/// `blob-pull-parallel`.
pub(super) async fn pull_parallel(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let label = "blob-pull-parallel";
    let repo = ctx.repo("blobs");
    let blobs = blobs_to_pull(ctx, label, PARALLEL).await?;
    let total: u64 = blobs.iter().map(|(s, _)| s.size).sum();
    if ctx.args.drop_caches {
        crate::sysmon::drop_page_cache()?;
    }
    let pb = ctx.progress.bytes(label, total);
    let pulls = blobs.iter().map(|(spec, digest)| {
        let (registry, repo, pb, digest, spec) = (
            ctx.registry.clone(),
            repo.clone(),
            pb.clone(),
            digest.clone(),
            *spec,
        );
        spawn_timed(async move {
            registry
                .pull_blob_verified(&repo, &digest, spec.size, None, &pb)
                .await
                .map(|()| spec.size)
        })
    });
    let start = Instant::now();
    let (results, usage) = ctx.observe(join_all(pulls)).await;
    let elapsed = start.elapsed();
    pb.finish_and_clear();
    let mut t = Transfers::default();
    for (r, took) in results {
        t.add(r, took);
    }
    let name = format!("{} x {}", blobs.len(), fmt_size(ctx.args.parallel_size));
    let m: Measurement = t.into_measurement(&name, blobs.len(), "blob", elapsed, usage);
    Ok(Outcome::measured(vec![m]))
}

#[cfg(test)]
mod tests {
    use super::fmt_size;

    #[test]
    fn sizes_read_well() {
        assert_eq!(fmt_size(1 << 30), "1 GiB");
        assert_eq!(fmt_size(16 << 20), "16 MiB");
        assert_eq!(fmt_size(1536), "1.5 KiB");
        assert_eq!(fmt_size(900), "900 B");
    }
}
