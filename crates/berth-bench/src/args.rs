//! Command-line arguments of `berth bench`.

use std::time::Duration;

use anyhow::{bail, Context as _};

/// Which workload to run (`--scenario`, repeatable; default: all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Scenario {
    /// One `--blob-size` blob: `POST`, then `PUT ?digest=` with the whole body.
    BlobPushMonolithic,
    /// One `--blob-size` blob in `--chunk-size` `PATCH`es, then `PUT ?digest=`.
    BlobPushChunked,
    /// `--parallel-blobs` blobs of `--parallel-size`, pushed concurrently.
    BlobPushParallel,
    /// `GET` one `--blob-size` blob, verifying its sha256 while streaming.
    BlobPullMonolithic,
    /// `GET` one `--blob-size` blob in `--chunk-size` `Range` requests.
    BlobPullChunked,
    /// `GET` `--parallel-blobs` blobs concurrently.
    BlobPullParallel,
    /// Push `--images` images of `--layers` layers the way skopeo does.
    ImagePush,
    /// Pull those images: manifest, config, layers, all verified.
    ImagePull,
    /// The CI pattern: push `--images` fresh images, then pull them from a
    /// second client (its own connections and token), then pull them again.
    CiPushPull,
    /// Manifest `GET` by tag and by digest at each `--connections` level.
    ManifestGet,
    /// Manifest `HEAD` by tag and by digest at each `--connections` level.
    ManifestHead,
    /// Create `--tags` tags, then page through `tags/list` with `n=--page-size`.
    TagsList,
    /// Token service: Basic-credential and refresh-token grants.
    TokenIssuance,
    /// Authenticated manifest `GET` against an anonymous baseline.
    ManifestGetAuth,
}

impl Scenario {
    /// Every scenario, in the order a full run uses (pushes before pulls).
    pub const ALL: [Scenario; 14] = [
        Scenario::BlobPushMonolithic,
        Scenario::BlobPushChunked,
        Scenario::BlobPushParallel,
        Scenario::BlobPullMonolithic,
        Scenario::BlobPullChunked,
        Scenario::BlobPullParallel,
        Scenario::ImagePush,
        Scenario::ImagePull,
        Scenario::CiPushPull,
        Scenario::ManifestGet,
        Scenario::ManifestHead,
        Scenario::TagsList,
        Scenario::TokenIssuance,
        Scenario::ManifestGetAuth,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::BlobPushMonolithic => "blob-push-monolithic",
            Scenario::BlobPushChunked => "blob-push-chunked",
            Scenario::BlobPushParallel => "blob-push-parallel",
            Scenario::BlobPullMonolithic => "blob-pull-monolithic",
            Scenario::BlobPullChunked => "blob-pull-chunked",
            Scenario::BlobPullParallel => "blob-pull-parallel",
            Scenario::ImagePush => "image-push",
            Scenario::ImagePull => "image-pull",
            Scenario::CiPushPull => "ci-push-pull",
            Scenario::ManifestGet => "manifest-get",
            Scenario::ManifestHead => "manifest-head",
            Scenario::TagsList => "tags-list",
            Scenario::TokenIssuance => "token-issuance",
            Scenario::ManifestGetAuth => "manifest-get-auth",
        }
    }
}

/// Report format (`--output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned table for people.
    Table,
    /// Pretty-printed JSON (see `Report`).
    Json,
}

/// `berth bench <registry-url> [options]`: load and throughput test for any
/// OCI registry. Data is random, streamed, and verified on the way back.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// Registry base URL, e.g. http://127.0.0.1:5000
    #[arg(value_name = "REGISTRY_URL")]
    pub registry: String,

    /// Username for Basic auth / the token service.
    #[arg(long, env = "BERTH_BENCH_USERNAME")]
    pub username: Option<String>,

    /// Password or token (prefer the environment variable).
    #[arg(long, env = "BERTH_BENCH_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Scenario to run; repeat or comma-separate. Default: all.
    #[arg(long = "scenario", value_enum, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,

    /// Report format. Default: table when stdout is a terminal, else json.
    #[arg(long, value_enum)]
    pub output: Option<OutputFormat>,

    /// Size of the single blob in the monolithic and chunked scenarios.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub blob_size: u64,

    /// PATCH / Range piece size in the chunked scenarios.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub chunk_size: u64,

    /// Number of blobs in the parallel scenarios.
    #[arg(long, default_value_t = 8)]
    pub parallel_blobs: usize,

    /// Size of each blob in the parallel scenarios.
    #[arg(long, default_value = "128MiB", value_parser = parse_size)]
    pub parallel_size: u64,

    /// Layers per image.
    #[arg(long, default_value_t = 30)]
    pub layers: usize,

    /// Smallest layer size (sizes are spread uniformly between min and max).
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub layer_min_size: u64,

    /// Largest layer size.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub layer_max_size: u64,

    /// Images pushed / pulled concurrently.
    #[arg(long, default_value_t = 3)]
    pub images: usize,

    /// Layers transferred concurrently per image (skopeo-like).
    #[arg(long, default_value_t = 4)]
    pub layer_concurrency: usize,

    /// How long each request-rate case runs (e.g. 10s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Fixed number of requests per request-rate case, instead of --duration.
    #[arg(long)]
    pub requests: Option<u64>,

    /// Concurrent connections for the request-rate cases (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,32,128")]
    pub connections: Vec<usize>,

    /// Tags to create in the tags-list scenario.
    #[arg(long, default_value_t = 10_000)]
    pub tags: usize,

    /// `n` for tags/list paging.
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,

    /// Concurrent manifest PUTs while creating tags.
    #[arg(long, default_value_t = 32)]
    pub tag_concurrency: usize,

    /// PID of the registry server: report its peak RSS and CPU time per
    /// case. Repeat it (or give a comma-separated list) for a registry of
    /// several processes, such as replicas behind a load balancer: CPU time
    /// is then the sum over the processes and peak RSS that of the largest.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,

    /// Before each timed blob pull, write dirty pages back and drop the
    /// kernel's page cache (Linux, needs root), so every registry serves
    /// the pull from its disk rather than from whatever its push left in
    /// memory.
    #[arg(long)]
    pub drop_caches: bool,

    /// Accept invalid (e.g. self-signed) TLS certificates.
    #[arg(long)]
    pub insecure: bool,

    /// Repository namespace the benchmark writes under.
    #[arg(long, default_value = "berth-bench")]
    pub repo_prefix: String,
}

impl BenchArgs {
    /// Arguments with every default, for `registry` (handy in tests).
    pub fn defaults(registry: &str) -> anyhow::Result<Self> {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: BenchArgs,
        }
        Ok(Wrapper::try_parse_from(["berth-bench", registry])?.args)
    }

    /// The selected scenarios in run order, without duplicates.
    pub fn selected(&self) -> Vec<Scenario> {
        if self.scenarios.is_empty() {
            return Scenario::ALL.to_vec();
        }
        Scenario::ALL
            .into_iter()
            .filter(|s| self.scenarios.contains(s))
            .collect()
    }
}

/// Parses sizes like `1GiB`, `16MiB`, `512k`, `1000` (binary multiples;
/// `KB`/`MB`/`GB` are decimal).
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => bail!("unknown size unit {other:?} in {s:?}"),
    };
    let bytes = num * mult as f64;
    if !(bytes.is_finite() && bytes >= 0.0) {
        bail!("bad size {s:?}");
    }
    Ok(bytes.round() as u64)
}

/// Parses durations like `10s`, `500ms`, `2m`, `1.5s` (bare numbers are seconds).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    let secs = match unit.trim() {
        "" | "s" => num,
        "ms" => num / 1000.0,
        "m" | "min" => num * 60.0,
        other => bail!("unknown duration unit {other:?} in {s:?}"),
    };
    Duration::try_from_secs_f64(secs).with_context(|| format!("bad duration {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1GiB").ok(), Some(1 << 30));
        assert_eq!(parse_size("16MiB").ok(), Some(16 << 20));
        assert_eq!(parse_size("512k").ok(), Some(512 << 10));
        assert_eq!(parse_size("1.5m").ok(), Some(3 << 19));
        assert_eq!(parse_size("10MB").ok(), Some(10_000_000));
        assert_eq!(parse_size("42").ok(), Some(42));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1 parsec").is_err());
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3").ok(), Some(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults_and_selection() {
        let a = BenchArgs::defaults("http://127.0.0.1:5000").expect("defaults parse");
        assert_eq!(a.blob_size, 1 << 30);
        assert_eq!(a.connections, vec![1, 32, 128]);
        assert_eq!(a.selected().len(), Scenario::ALL.len());
        let b = BenchArgs {
            scenarios: vec![
                Scenario::TagsList,
                Scenario::BlobPushChunked,
                Scenario::TagsList,
            ],
            ..a
        };
        assert_eq!(
            b.selected(),
            vec![Scenario::BlobPushChunked, Scenario::TagsList]
        );
        for s in Scenario::ALL {
            let v = clap::ValueEnum::to_possible_value(&s).expect("visible");
            assert_eq!(v.get_name(), s.name());
        }
    }
}
