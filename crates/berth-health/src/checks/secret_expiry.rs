//! With `--service-principal`: when its client secrets all expire within
//! 7 days. The management API shows a service principal its own secrets'
//! expiry only when it holds a management-read role (Reader or higher);
//! otherwise the check says it could not look.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::context::Ctx;
use crate::dockerconfig::Credential;
use crate::http::send;
use crate::report::Finding;
use crate::token::human_duration;

const NAME: &str = "secret expiry";
/// Warn when the last secret expires within this many seconds.
const WARN_SECS: u64 = 7 * 86_400;

/// Look up the service principal's secrets.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let Some((
        Credential::Password {
            username,
            password,
            service_principal: true,
        },
        _,
    )) = ctx.credential.clone()
    else {
        return Vec::new();
    };
    let url = format!("{}/api/v1/service-principals/{username}", ctx.base_url());
    let answer = send(ctx.http.get(&url).basic_auth(&username, Some(&password))).await;
    let body = match answer {
        Ok(a) if a.status == 200 => a.json(),
        Ok(a) => {
            return vec![Finding::ok(
                NAME,
                format!("not checked: the management API does not show this service principal its secrets ({}; needs Reader or higher)", a.status),
            )]
        }
        Err(e) => return vec![Finding::ok(NAME, format!("not checked: {e}"))],
    };
    let latest = body
        .as_ref()
        .and_then(|v| v["secrets"].as_array())
        .and_then(|s| s.iter().filter_map(|s| s["expiresAt"].as_u64()).max());
    let Some(latest) = latest else {
        return vec![Finding::ok(NAME, "no secret expiry listed")];
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = latest.saturating_sub(now);
    if left < WARN_SECS {
        return vec![Finding::problem(
            NAME,
            "CREDENTIAL_EXPIRING_SOON",
            format!(
                "every client secret of service principal {username} expires within 7 days (the last in {})",
                human_duration(left)
            ),
        )
        .with_fix("Add a new secret (`POST /api/v1/service-principals/<appId>/credentials`), switch your clients to it, then delete the old one.")];
    }
    vec![Finding::ok(
        NAME,
        format!("the last client secret expires in {}", human_duration(left)),
    )]
}
