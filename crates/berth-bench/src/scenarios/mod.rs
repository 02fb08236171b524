//! The scenarios and what they share: the run context and measurement helpers.

mod blob;
mod image;
mod manifest;
mod tags;
mod token;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::args::{BenchArgs, Scenario};
use crate::client::{Probe, Registry};
use crate::data::BlobSpec;
use crate::load::{run_load, LoadOutcome, LoadPlan, Op};
use crate::progress::Progress;
use crate::report::{Measurement, ScenarioReport, Status};
use crate::stats::Samples;
use crate::sysmon::{own_cpu_seconds, ServerMonitor, ServerUsage};

pub(crate) use image::ImageSpec;

/// State shared by the scenarios of one run.
pub(crate) struct Ctx {
    pub args: BenchArgs,
    pub registry: Registry,
    pub progress: Progress,
    pub probe: Probe,
    /// Random per run: push scenarios send content the server has never seen.
    pub run_seed: u64,
    /// Blobs and images pushed earlier in this run, reused by the pulls.
    pub pushed: Mutex<Pushed>,
}

/// What push scenarios left behind for pull scenarios.
#[derive(Default)]
pub(crate) struct Pushed {
    /// Blobs by shape (`monolithic`, `parallel`), each with its digest.
    pub blobs: HashMap<&'static str, Vec<(BlobSpec, String)>>,
    /// Images pushed by image-push: repository, tag, spec, manifest digest.
    pub images: Vec<PushedImage>,
}

/// An image known to be in the registry.
#[derive(Clone)]
pub(crate) struct PushedImage {
    pub repo: String,
    pub tag: String,
    pub spec: ImageSpec,
    pub manifest_digest: String,
}

/// What a scenario returns: measurements, or a reason it did not apply.
pub(crate) enum Outcome {
    Measured {
        measurements: Vec<Measurement>,
        note: Option<String>,
    },
    Skipped(String),
}

impl Outcome {
    fn measured(measurements: Vec<Measurement>) -> Self {
        Outcome::Measured {
            measurements,
            note: None,
        }
    }
}

/// Runs one scenario; setup errors become a `Failed` report.
pub(crate) async fn run_scenario(ctx: &Ctx, scenario: Scenario) -> ScenarioReport {
    let result = match scenario {
        Scenario::BlobPushMonolithic => blob::push_monolithic(ctx).await,
        Scenario::BlobPushChunked => blob::push_chunked(ctx).await,
        Scenario::BlobPushParallel => blob::push_parallel(ctx).await,
        Scenario::BlobPullMonolithic => blob::pull_monolithic(ctx).await,
        Scenario::BlobPullChunked => blob::pull_chunked(ctx).await,
        Scenario::BlobPullParallel => blob::pull_parallel(ctx).await,
        Scenario::ImagePush => image::push(ctx).await,
        Scenario::ImagePull => image::pull(ctx).await,
        Scenario::CiPushPull => image::ci_push_pull(ctx).await,
        Scenario::ManifestGet => manifest::get(ctx).await,
        Scenario::ManifestHead => manifest::head(ctx).await,
        Scenario::TagsList => tags::run(ctx).await,
        Scenario::TokenIssuance => token::run(ctx).await,
        Scenario::ManifestGetAuth => manifest::get_auth(ctx).await,
    };
    let scenario = scenario.name().to_owned();
    match result {
        Ok(Outcome::Measured { measurements, note }) => ScenarioReport {
            scenario,
            status: Status::Ok,
            message: note,
            measurements,
        },
        Ok(Outcome::Skipped(why)) => ScenarioReport {
            scenario,
            status: Status::Skipped,
            message: Some(format!("skipped: {why}")),
            measurements: Vec::new(),
        },
        Err(e) => ScenarioReport {
            scenario,
            status: Status::Failed,
            message: Some(format!("{e:#}")),
            measurements: Vec::new(),
        },
    }
}

/// Resource usage observed around a timed phase.
pub(crate) struct Usage {
    pub server: Option<ServerUsage>,
    pub client_cpu_s: f64,
}

impl Ctx {
    /// Repository name under the run's prefix.
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{}", self.args.repo_prefix.trim_end_matches('/'), name)
    }

    /// A second client of the same registry: its own connection pool and
    /// its own token (the deploy job after the CI job that pushed).
    /// It probes `/v2/` as the first client did, so it knows the
    /// registry's authentication scheme (Basic or bearer) before it pulls.
    pub async fn second_client(&self) -> anyhow::Result<Registry> {
        let creds = match (&self.args.username, &self.args.password) {
            (Some(u), Some(p)) => Some(crate::auth::Credentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        };
        let registry = Registry::new(
            &self.args.registry,
            creds,
            crate::client::ClientConfig {
                insecure: self.args.insecure,
            },
        )?;
        registry.probe().await?;
        Ok(registry)
    }

    /// Runs `f` while watching the server (with `--server-pid`) and this process.
    pub async fn observe<F: Future>(&self, f: F) -> (F::Output, Usage) {
        let monitor = ServerMonitor::start(&self.args.server_pid);
        let cpu0 = own_cpu_seconds();
        let out = f.await;
        let usage = Usage {
            server: monitor.map(ServerMonitor::stop),
            client_cpu_s: (own_cpu_seconds() - cpu0).max(0.0),
        };
        (out, usage)
    }

    /// The request-rate plan for `connections` concurrent connections.
    pub fn plan(&self, connections: usize) -> LoadPlan {
        LoadPlan {
            connections,
            duration: self.args.duration,
            requests: self.args.requests,
            warm_up: true,
        }
    }
}

/// Runs `op` at each `--connections` level, one measurement per level.
pub(crate) async fn sweep(
    ctx: &Ctx,
    label: &str,
    case: &str,
    unit: &str,
    op: Op,
) -> anyhow::Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for &c in &ctx.args.connections {
        let pb = ctx.progress.timed(&format!("{label} {case} c={c}"));
        let plan = ctx.plan(c);
        let (result, usage) = ctx
            .observe(run_load(&ctx.registry, &plan, pb, op.clone()))
            .await;
        out.push(from_load(case, c, unit, result?, usage));
    }
    Ok(out)
}

/// A measurement from a closed-loop load run.
pub(crate) fn from_load(
    name: &str,
    concurrency: usize,
    unit: &str,
    mut o: LoadOutcome,
    u: Usage,
) -> Measurement {
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    Measurement {
        name: name.to_owned(),
        concurrency: Some(concurrency),
        duration_s: o.elapsed.as_secs_f64(),
        requests: o.ok,
        unit: unit.to_owned(),
        bytes: o.bytes,
        errors: o.errors,
        requests_per_s: o.ok as f64 / secs,
        bytes_per_s: o.bytes as f64 / secs,
        latency: o.samples.summary(),
        server: u.server,
        client_cpu_s: u.client_cpu_s,
        error_samples: o.error_samples,
    }
}

/// Tallies transfers (blobs or images) that ran concurrently.
#[derive(Default)]
pub(crate) struct Transfers {
    pub ok: u64,
    pub errors: u64,
    pub bytes: u64,
    pub samples: Samples,
    pub error_samples: Vec<String>,
}

impl Transfers {
    /// Records one transfer of `bytes` that took `took`.
    pub fn add(&mut self, result: anyhow::Result<u64>, took: Duration) {
        self.samples.record(took);
        match result {
            Ok(b) => {
                self.ok += 1;
                self.bytes += b;
            }
            Err(e) => {
                self.errors += 1;
                if self.error_samples.len() < 5 {
                    self.error_samples.push(format!("{e:#}"));
                }
            }
        }
    }

    /// Into a measurement covering `elapsed`.
    pub fn into_measurement(
        self,
        name: &str,
        concurrency: usize,
        unit: &str,
        elapsed: Duration,
        u: Usage,
    ) -> Measurement {
        from_load(
            name,
            concurrency,
            unit,
            LoadOutcome {
                elapsed,
                ok: self.ok,
                errors: self.errors,
                bytes: self.bytes,
                samples: self.samples,
                error_samples: self.error_samples,
            },
            u,
        )
    }
}

/// Runs `f` once and times it (for single transfers).
pub(crate) async fn timed<F, T>(f: F) -> (T, Duration)
where
    F: Future<Output = T>,
{
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

/// Runs `f` on its own task (so transfers spread over all cores) and times it.
/// A panicked task is reported as an error.
pub(crate) async fn spawn_timed<F, T>(f: F) -> (anyhow::Result<T>, Duration)
where
    F: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let t = Instant::now();
    let out = match tokio::spawn(f).await {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("transfer task failed: {e}")),
    };
    (out, t.elapsed())
}
