//! `berth bench`: a load and throughput tool for any OCI registry.
//!
//! It pushes and pulls generated, incompressible data (streamed, never held
//! in memory), verifies every byte that comes back by sha256, and reports
//! per scenario: bytes/s, requests/s, latency percentiles, errors, and with
//! `--server-pid` the server's peak RSS and CPU time. It speaks the plain
//! OCI distribution API and the Docker token flow, so the same run works
//! against berth and against the CNCF distribution registry.
//!
//! The `berth` binary exposes [`BenchArgs`] as `berth bench` and calls [`run`].

mod args;
pub mod auth;
pub mod client;
pub mod conn;
pub mod data;
pub mod load;
mod progress;
pub mod report;
mod scenarios;
pub mod stats;
pub mod sysmon;

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rand::RngCore as _;

pub use args::{parse_duration, parse_size, BenchArgs, OutputFormat, Scenario};
pub use report::{Measurement, Report, ScenarioReport, Status};

use auth::Credentials;
use client::{ClientConfig, Probe, Registry};
use progress::Progress;
use scenarios::Ctx;

/// Runs the benchmark and prints the report to stdout (a table on a
/// terminal, JSON otherwise, or as `--output` says). Fails if any request
/// failed or any verification mismatched, after printing the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let format = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        OutputFormat::Table
    } else {
        OutputFormat::Json
    });
    let report = run_to_report(args).await?;
    match format {
        OutputFormat::Table => print!("{}", report.to_table()),
        OutputFormat::Json => println!("{}", report.to_json()?),
    }
    let errors = report.total_errors();
    anyhow::ensure!(errors == 0, "benchmark finished with {errors} error(s)");
    Ok(())
}

/// Runs the selected scenarios and returns the structured results (nothing
/// is printed except progress bars on a terminal's stderr).
pub async fn run_to_report(args: BenchArgs) -> anyhow::Result<Report> {
    let creds = match (&args.username, &args.password) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        (None, None) => None,
        _ => anyhow::bail!("--username and --password go together"),
    };
    let registry = Registry::new(
        &args.registry,
        creds,
        ClientConfig {
            insecure: args.insecure,
        },
    )?;
    let probe = registry
        .probe()
        .await
        .with_context(|| format!("probing {}", args.registry))?;
    let mut report = Report {
        registry: args.registry.clone(),
        auth: match &probe {
            Probe::Open => "open".into(),
            Probe::Basic => "basic".into(),
            Probe::Bearer { realm, .. } => format!("bearer ({realm})"),
        },
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        client_cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        scenarios: Vec::new(),
    };
    let selected = args.selected();
    let ctx = Ctx {
        registry,
        progress: Progress::new(),
        probe,
        run_seed: rand::thread_rng().next_u64(),
        pushed: Mutex::default(),
        args,
    };
    for scenario in selected {
        report
            .scenarios
            .push(scenarios::run_scenario(&ctx, scenario).await);
    }
    Ok(report)
}
