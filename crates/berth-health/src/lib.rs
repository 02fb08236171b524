//! `berth check-health`: diagnose, step by step, why logging in to a
//! registry, pushing or pulling fails on this machine, with a stable code,
//! what it means and the fix for every problem.
//!
//! The steps run in the order of issue 5: local environment, config.json,
//! DNS, TCP, TLS, the `/v2/` challenge, network rules, realm, clock skew,
//! directory login, refresh token, access token, and with `--repository`
//! a permission probe. Without `--ignore-errors` the run stops at the
//! first error. Codes live in one table ([`codes::CODES`]) that also
//! generates `docs/errors.md`.

#![warn(missing_docs)]

pub mod codes;
pub mod dockerconfig;
pub mod report;
pub mod target;
pub mod tools;
pub mod trust;
pub mod x509;

mod checks;
mod context;
mod http;
mod token;

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::report::{Report, Status};

/// `User-Agent` of every request check-health sends.
pub const USER_AGENT: &str = concat!("berth-check-health/", env!("CARGO_PKG_VERSION"));

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// A table for people.
    #[default]
    Table,
    /// `{"checks":[{"name","status","code","message","fix"}]}`.
    Json,
}

/// Flags of `berth check-health`.
#[derive(Args, Debug, Clone, Default)]
pub struct CheckHealthArgs {
    /// The registry's login server, `host[:port]` as you push to it (a
    /// scheme is allowed). Default: the registry `berth login` used last.
    #[arg(value_name = "LOGIN_SERVER")]
    pub login_server: Option<String>,
    /// Also probe whether you may pull, push and delete in this repository.
    #[arg(long, value_name = "NAME")]
    pub repository: Option<String>,
    /// Run every check even after an error.
    #[arg(long)]
    pub ignore_errors: bool,
    /// Answer yes to prompts (check-health asks none; accepted for scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Log in with this username (or app id with --service-principal)
    /// instead of the stored credentials.
    #[arg(long, short = 'u', requires = "password")]
    pub username: Option<String>,
    /// Password (or client secret) for --username.
    #[arg(long, short = 'p', requires = "username")]
    pub password: Option<String>,
    /// --username/--password are a service principal's app id and client
    /// secret (client-credentials grant).
    #[arg(long, requires = "username")]
    pub service_principal: bool,
    /// Check this access token (one a client already holds, e.g. from a CI
    /// log) instead of requesting a new one; with `--repository` the
    /// permission probes use it and say when access changed after it was
    /// issued.
    #[arg(long, value_name = "JWT")]
    pub access_token: Option<String>,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

/// Run every check and collect the findings. `progress` prints each step
/// on stderr as it starts.
pub async fn diagnose(args: &CheckHealthArgs, progress: bool) -> Report {
    checks::run_all(args, progress).await
}

/// `berth check-health`: print the report; exit status 1 when any check
/// found an error.
pub async fn run(args: CheckHealthArgs) -> std::process::ExitCode {
    let progress = std::io::stdout().is_terminal();
    let report = diagnose(&args, progress).await;
    let text = match args.output {
        OutputFormat::Json => format!("{}\n", report.to_json()),
        OutputFormat::Table => report.to_table(),
    };
    // A closed stdout (`| head`) is not worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    if report.checks.iter().any(|f| f.status == Status::Error) {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// [`run`] on a new Tokio runtime, for a synchronous `main`.
pub fn run_blocking(args: CheckHealthArgs) -> std::process::ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
