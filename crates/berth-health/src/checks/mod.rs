//! The steps, one module each, and the order they run in.

mod challenge;
mod clock;
mod config_json;
mod connect;
mod local_env;
mod login;
mod login_server;
mod management;
mod permissions;
mod realm;
mod secret_expiry;
mod tls;

use std::time::Duration;

use crate::report::{Finding, Report, Status};
use crate::CheckHealthArgs;

/// Time limit of one network step: resolving, connecting, a TLS handshake.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// Time limit for a registry that accepted the connection to answer: a
/// login verifies an argon2id hash, which a busy server may take longer
/// than [`STEP_TIMEOUT`] to do.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

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
    r.starting("local environment");
    if !r.record(local_env::check().await, false) {
        return r.report;
    }
    r.starting("login server");
    let (findings, ctx) = login_server::check(args);
    let blocked = ctx.is_none();
    if !r.record(findings, blocked) {
        return r.report;
    }
    let Some(mut ctx) = ctx else {
        return r.report;
    };
    macro_rules! step {
        ($label:expr, $call:expr) => {
            r.starting($label);
            let findings = $call.await;
            if !r.record(findings, ctx.blocked) {
                return r.report;
            }
        };
    }
    step!("config.json", config_json::check(&mut ctx));
    step!("DNS", connect::dns(&mut ctx));
    step!("TCP", connect::tcp(&mut ctx));
    step!("TLS", tls::check(&mut ctx));
    step!("challenge", challenge::check(&mut ctx));
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

/// A finding for a step that cannot run because an earlier one failed
/// (only seen with `--ignore-errors`).
fn skipped(name: &str, why: &str) -> Finding {
    Finding::problem(name, "CHECK_SKIPPED", format!("skipped: {why}"))
}

/// Run `fut` with the step time limit.
async fn timed<T>(fut: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(STEP_TIMEOUT, fut).await.ok()
}
