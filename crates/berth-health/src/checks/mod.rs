//! The steps, one module each, and the order they run in.

mod challenge;
mod clock;
mod config_json;
mod connect;
mod kubelet_provider;
mod local_env;
mod login;
mod login_server;
mod management;
mod permissions;
mod pull;
mod pull_secret;
mod realm;
mod secret_expiry;
mod storage;
mod tls;

use std::time::Duration;

use crate::context::Ctx;
use crate::report::{Finding, Report, Status};
use crate::CheckHealthArgs;

/// Time limit of one network step: resolving, connecting, a TLS handshake.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// Time limit for a registry that accepted the connection to answer: a
/// login verifies an argon2id hash, which a busy server may take longer
/// than [`STEP_TIMEOUT`] to do.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Run one step and record it; return the report when the run must stop.
macro_rules! run_step {
    ($r:ident, $ctx:ident, $label:expr, $call:expr) => {
        $r.starting($label);
        let findings = $call.await;
        if !$r.record(findings, $ctx.blocked) {
            return $r.report;
        }
    };
}

/// Collects findings and decides whether to go on.
struct Runner {
    report: Report,
    ignore_errors: bool,
    progress: bool,
}

impl Runner {
    fn starting(&self, step: &str) {
        if self.progress {
            eprintln!("checking {step}…");
        }
    }

    /// The login-server step every run starts with: the run's state, or
    /// `None` when it must stop.
    fn open(&mut self, args: &CheckHealthArgs) -> Option<Ctx> {
        self.starting("login server");
        let (findings, ctx) = login_server::check(args);
        let blocked = ctx.is_none();
        if !self.record(findings, blocked) {
            return None;
        }
        ctx
    }

    /// Record a step's findings; `false` when the run must stop.
    fn record(&mut self, findings: Vec<Finding>, blocked: bool) -> bool {
        let error = findings.iter().any(|f| f.status == Status::Error);
        self.report.checks.extend(findings);
        !(blocked || (error && !self.ignore_errors))
    }
}

/// Run the steps in order.
pub async fn run_all(args: &CheckHealthArgs, progress: bool) -> Report {
    let mut r = Runner {
        report: Report::default(),
        ignore_errors: args.ignore_errors,
        progress,
    };
    if args.pull_secret.is_some() || args.kubelet_provider_config.is_some() {
        return run_kube(r, args).await;
    }
    r.starting("local environment");
    if !r.record(local_env::check().await, false) {
        return r.report;
    }
    let Some(mut ctx) = r.open(args) else {
        return r.report;
    };
    macro_rules! step {
        ($label:expr, $call:expr) => {
            run_step!(r, ctx, $label, $call)
        };
    }
    step!("config.json", config_json::check(&mut ctx));
    step!("DNS", connect::dns(&mut ctx));
    step!("TCP", connect::tcp(&mut ctx));
    step!("TLS", tls::check(&mut ctx));
    step!("challenge", challenge::check(&mut ctx));
    step!("storage", storage::check(&mut ctx));
    step!("realm", realm::check(&mut ctx));
    step!("clock", clock::check(&mut ctx));
    step!("directory login", login::directory(&mut ctx));
    step!("secret expiry", secret_expiry::check(&mut ctx));
    step!("refresh token", login::refresh(&mut ctx));
    step!("management API", management::check(&mut ctx));
    step!("access token", login::access(&mut ctx));
    if ctx.args.repository.is_some() {
        step!("permissions", permissions::check(&mut ctx));
    }
    r.report
}

/// With `--pull-secret` or `--kubelet-provider-config`: the steps a
/// Kubernetes node's pull goes through — the credential kubelet would pick
/// for `--image`, the connection, the registry login as the container
/// runtime does it, the image's manifest, and (for a secret) its expiry.
/// The workstation checks (docker tools, config.json) do not apply.
async fn run_kube(mut r: Runner, args: &CheckHealthArgs) -> Report {
    let Some(mut ctx) = r.open(args) else {
        return r.report;
    };
    macro_rules! step {
        ($label:expr, $call:expr) => {
            run_step!(r, ctx, $label, $call)
        };
    }
    step!("image", pull::image(&mut ctx));
    if ctx.args.pull_secret.is_some() {
        step!("pull secret", pull_secret::check(&mut ctx));
    } else {
        step!("kubelet provider", kubelet_provider::check(&mut ctx));
    }
    step!("DNS", connect::dns(&mut ctx));
    step!("TCP", connect::tcp(&mut ctx));
    step!("TLS", tls::check(&mut ctx));
    step!("challenge", challenge::check(&mut ctx));
    step!("realm", realm::check(&mut ctx));
    step!("clock", clock::check(&mut ctx));
    step!("pull login", pull::login(&mut ctx));
    step!("manifest", pull::manifest(&mut ctx));
    if ctx.args.pull_secret.is_some() {
        step!("expiry", pull::expiry(&mut ctx));
    }
    r.report
}

/// A finding for a step that cannot run because an earlier one failed
/// (only seen with `--ignore-errors`).
fn skipped(name: &str, why: &str) -> Finding {
    Finding::problem(name, "CHECK_SKIPPED", format!("skipped: {why}"))
}

/// Run `fut` with the step time limit.
async fn timed<T>(fut: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(STEP_TIMEOUT, fut).await.ok()
}
