//! Step 11b: may the identity use the management API (`berth` management
//! commands, `/api/v1`)? Probed with the directory token of a directory
//! user's login: `GET /api/v1/registry` needs management read (Reader,
//! Contributor or Owner, registry-wide). A refusal is a warning: pushing
//! and pulling do not need it.

use crate::context::Ctx;
use crate::http::send;
use crate::report::Finding;

const NAME: &str = "management API";

/// Probe management read with the directory token, when there is one.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let Some(token) = ctx.identity_token.clone() else {
        return Vec::new();
    };
    let url = format!("{}/api/v1/registry", ctx.base_url());
    match send(ctx.http.get(&url).bearer_auth(&token)).await {
        Ok(a) if a.status == 200 => vec![Finding::ok(
            NAME,
            "may read the registry's configuration (management read)",
        )],
        Ok(a) if a.status == 403 => vec![Finding::problem(
            NAME,
            "MANAGEMENT_ROLE_MISSING",
            format!("GET {url} → {}", a.describe()),
        )],
        Ok(a) => vec![Finding::ok(
            NAME,
            format!("not checked: GET {url} → {}", a.describe()),
        )],
        Err(e) => vec![Finding::ok(
            NAME,
            format!("not checked: GET {url} failed: {e}"),
        )],
    }
}
