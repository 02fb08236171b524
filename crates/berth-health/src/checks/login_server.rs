//! Step 2: the login server as given, and the trust and HTTP client the
//! network steps use.

use std::time::Duration;

use super::{ANSWER_TIMEOUT, STEP_TIMEOUT};
use crate::context::Ctx;
use crate::report::Finding;
use crate::target::{Scheme, Target};
use crate::trust::Trust;
use crate::CheckHealthArgs;

const NAME: &str = "login server";

/// Parse the login server and set up the run's state; `None` when the
/// run cannot continue.
pub fn check(args: &CheckHealthArgs) -> (Vec<Finding>, Option<Ctx>) {
    let Some(given) = args.login_server.as_deref() else {
        return (
            vec![Finding::problem(
                NAME,
                "LOGIN_SERVER_ERROR",
                "no login server given and no earlier `berth login` to default to: name it (berth check-health <login-server>)",
            )],
            None,
        );
    };
    let target = match Target::parse(given) {
        Ok(t) => t,
        Err(e) => return (vec![Finding::problem(NAME, "LOGIN_SERVER_ERROR", e)], None),
    };
    let trust = match Trust::new(args.ca_cert.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            return (
                vec![Finding::problem(NAME, "CONNECTIVITY_SSL_ERROR", e)
                    .with_fix("Pass a readable PEM file of CA certificates to --ca-cert (and check SSL_CERT_FILE).")],
                None,
            )
        }
    };
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*trust.config).clone())
        .timeout(ANSWER_TIMEOUT)
        .connect_timeout(STEP_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(crate::USER_AGENT)
        .build();
    let http = match http {
        Ok(h) => h,
        Err(e) => {
            return (
                vec![Finding::problem(
                    NAME,
                    "CONNECTIVITY_SSL_ERROR",
                    format!("cannot set up the HTTP client: {e}"),
                )],
                None,
            )
        }
    };
    let finding = Finding::ok(
        NAME,
        format!("{} (port {})", target.host_port(), target.port),
    );
    let ctx = Ctx {
        args: args.clone(),
        scheme: target.scheme.unwrap_or(Scheme::Https),
        target,
        trust,
        http,
        addrs: Vec::new(),
        credential: None,
        stored_credential: false,
        v2: None,
        challenge: None,
        identity_token: None,
        refresh_token: None,
        access: None,
        image: None,
        pull_expiry: None,
        blocked: false,
    };
    (vec![finding], Some(ctx))
}
