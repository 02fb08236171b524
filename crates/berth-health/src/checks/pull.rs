//! The pull a Kubernetes node makes with the credential kubelet picked
//! (`--pull-secret`, `--kubelet-provider-config`): the image named, the
//! registry login the container runtime does with it (`GET <realm>` with
//! Basic credentials and the image's pull scope), the manifest, and when
//! the secret's password expires.

use berth_cli::docker_config::TOKEN_USERNAME;
use berth_cli::kube::image::ImageRef;

use super::permissions::{explain, granted_actions, Probe};
use crate::context::Ctx;
use crate::dockerconfig::Credential;
use crate::http::send;
use crate::report::Finding;
use crate::token::human_duration;

const IMAGE: &str = "image";
const LOGIN: &str = "pull login";
const MANIFEST: &str = "manifest";
const EXPIRY: &str = "expiry";
/// Warn when the secret expires within this many seconds.
const WARN_SECS: u64 = 7 * 86_400;
/// The manifest types a container runtime accepts.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

fn now() -> u64 {
    berth_cli::session::now()
}

/// `--image`: parsed, and on the login server being checked.
pub async fn image(ctx: &mut Ctx) -> Vec<Finding> {
    let given = ctx.args.image.clone().unwrap_or_default();
    let image = match ImageRef::parse(&given) {
        Ok(i) => i,
        Err(e) => {
            ctx.blocked = true;
            return vec![Finding::problem(IMAGE, "PULL_IMAGE_INVALID", e)];
        }
    };
    let login_server = ctx.target.host_port();
    if image.registry != login_server {
        ctx.blocked = true;
        return vec![Finding::problem(
            IMAGE,
            "PULL_IMAGE_INVALID",
            format!(
                "image {given:?} is on registry {:?}, not on the login server {login_server:?} being checked",
                image.registry
            ),
        )];
    }
    let f = Finding::ok(
        IMAGE,
        format!(
            "{}, reference {} (kubelet looks up credentials for {:?})",
            image.repository,
            image.reference,
            image.repo_to_pull()
        ),
    );
    ctx.image = Some(image);
    vec![f]
}

/// The Basic credentials the runtime sends.
fn basic(credential: &Credential) -> (String, String) {
    match credential {
        Credential::Password {
            username, password, ..
        } => (username.clone(), password.clone()),
        Credential::RefreshToken(t) => (TOKEN_USERNAME.to_string(), t.clone()),
    }
}

/// Log in as the container runtime does: `GET <realm>?service&scope` with
/// Basic credentials.
pub async fn login(ctx: &mut Ctx) -> Vec<Finding> {
    let (Some(image), Some((credential, origin))) = (ctx.image.clone(), ctx.credential.clone())
    else {
        return vec![super::skipped(LOGIN, "no credential to log in with")];
    };
    if ctx.challenge.is_none() {
        if ctx.v2.as_ref().is_some_and(|v| v.status == 200) {
            return vec![Finding::ok(
                LOGIN,
                "not needed: the registry asks for no login",
            )];
        }
        return vec![super::skipped(LOGIN, "no usable challenge")];
    }
    let (user, password) = basic(&credential);
    let service = ctx.service();
    let scope = format!("repository:{}:pull", image.repository);
    let url = ctx.token_url();
    let req = ctx
        .http
        .get(&url)
        .query(&[("service", service.as_str()), ("scope", scope.as_str())])
        .basic_auth(&user, Some(&password));
    let answer = match send(req).await {
        Ok(a) => a,
        Err(e) => {
            return vec![Finding::problem(
                LOGIN,
                "PULL_LOGIN_ERROR",
                format!("GET {url} failed: {e}"),
            )]
        }
    };
    if let Some(f) = answer.throttled(LOGIN) {
        return vec![f];
    }
    let token = answer.json().and_then(|v| {
        v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .map(str::to_string)
    });
    match token.filter(|_| answer.status == 200) {
        Some(t) => {
            let granted = answer
                .json()
                .and_then(|v| v["scope"].as_str().map(str::to_string))
                .unwrap_or_default();
            ctx.access = Some((t, granted));
            vec![Finding::ok(
                LOGIN,
                format!("{origin}: the registry accepted {user:?} and issued a token"),
            )]
        }
        None => {
            let message = answer.message();
            let code = if message.contains("expired") {
                "PULL_CREDENTIAL_EXPIRED"
            } else if message.contains("disabled") {
                "PULL_CREDENTIAL_DISABLED"
            } else {
                "PULL_LOGIN_ERROR"
            };
            vec![Finding::problem(
                LOGIN,
                code,
                format!(
                    "{origin}: the registry refused {user:?}: {}",
                    answer.describe()
                ),
            )]
        }
    }
}

/// The image's manifest, fetched with the token: pull allowed and the
/// image there.
pub async fn manifest(ctx: &mut Ctx) -> Vec<Finding> {
    let Some(image) = ctx.image.clone() else {
        return vec![super::skipped(MANIFEST, "no image")];
    };
    let repo = image.repository.clone();
    let token = match (&ctx.access, &ctx.challenge) {
        (Some((token, scope)), _) => {
            let granted = granted_actions(scope, &repo);
            if !granted.iter().any(|a| a == "pull" || a == "*") {
                let reason = probe_reason(ctx, &image, token).await;
                let why = explain(Probe::Pull, &repo, reason.as_deref());
                let code = reason.map(|r| format!(" [{r}]")).unwrap_or_default();
                return vec![Finding::problem(
                    MANIFEST,
                    "PULL_PERMISSION_ERROR",
                    format!("the credential may not pull {repo}: {why}{code}"),
                )];
            }
            Some(token.clone())
        }
        (None, None) => None,
        (None, Some(_)) => return vec![super::skipped(MANIFEST, "no access token")],
    };
    let url = format!("{}/v2/{repo}/manifests/{}", ctx.base_url(), image.reference);
    let mut req = ctx.http.get(&url).header("Accept", ACCEPT);
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    let answer = match send(req).await {
        Ok(a) => a,
        Err(e) => {
            return vec![Finding::problem(
                MANIFEST,
                "PULL_LOGIN_ERROR",
                format!("GET {url} failed: {e}"),
            )]
        }
    };
    match answer.status {
        200 => {
            let digest = answer.header("docker-content-digest").unwrap_or_default();
            vec![Finding::ok(
                MANIFEST,
                format!(
                    "{repo}:{} exists ({digest}) and may be pulled",
                    image.reference
                ),
            )]
        }
        404 => {
            let code = answer
                .json()
                .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_string))
                .unwrap_or_default();
            // NAME_UNKNOWN (the OCI code for a repository that does not exist).
            let what = if code.starts_with("NAME_") {
                format!("repository {repo} does not exist")
            } else {
                format!("{repo} has no manifest {:?}", image.reference)
            };
            vec![Finding::problem(
                MANIFEST,
                "PULL_IMAGE_NOT_FOUND",
                format!("{what} ({})", answer.describe()),
            )]
        }
        _ => {
            let reason = answer.json().and_then(|v| {
                v["errors"][0]["detail"][0]["reason"]
                    .as_str()
                    .map(str::to_string)
            });
            let why = explain(Probe::Pull, &repo, reason.as_deref());
            vec![Finding::problem(
                MANIFEST,
                "PULL_PERMISSION_ERROR",
                format!("GET {url} → {}: {why}", answer.describe()),
            )]
        }
    }
}

/// Why the registry refuses the token a pull: the 403's reason code.
async fn probe_reason(ctx: &Ctx, image: &ImageRef, token: &str) -> Option<String> {
    let url = format!(
        "{}/v2/{}/manifests/{}",
        ctx.base_url(),
        image.repository,
        image.reference
    );
    let a = send(
        ctx.http
            .get(&url)
            .header("Accept", ACCEPT)
            .bearer_auth(token),
    )
    .await
    .ok()?;
    a.json().and_then(|v| {
        v["errors"][0]["detail"][0]["reason"]
            .as_str()
            .map(str::to_string)
    })
}

/// When the pull secret's password expires.
pub async fn expiry(ctx: &mut Ctx) -> Vec<Finding> {
    let Some((at, how)) = ctx.pull_expiry.clone() else {
        return vec![Finding::ok(
            EXPIRY,
            "not known: the secret has no berth.io/expires-at annotation (secrets made by `berth pull-secret create` have one) and its password is not a token",
        )];
    };
    let now = now();
    let when = berth_cli::kube::pull_secret::rfc3339(at);
    if at <= now {
        return vec![Finding::problem(
            EXPIRY,
            "PULL_CREDENTIAL_EXPIRED",
            format!("the password expired at {when} ({how})"),
        )];
    }
    let left = at - now;
    if left < WARN_SECS {
        return vec![Finding::problem(
            EXPIRY,
            "PULL_CREDENTIAL_EXPIRING",
            format!(
                "the password expires at {when}, in {} ({how}); pods that start after that fail with ImagePullBackOff",
                human_duration(left)
            ),
        )];
    }
    vec![Finding::ok(
        EXPIRY,
        format!(
            "the password expires at {when}, in {} ({how})",
            human_duration(left)
        ),
    )]
}
