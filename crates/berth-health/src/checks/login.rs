//! Steps 10–12: directory login, refresh token, access token — the way
//! the user's own tools log in.
//!
//! * username/password: `POST /directory/token` (password grant; with
//!   `--service-principal` the client-credentials grant), then
//!   `POST /oauth2/exchange` for a refresh token. A name the directory does
//!   not know (admin account, repository-scoped token) is tried as docker
//!   does: `GET <realm>?offline_token=true` with Basic credentials.
//! * a stored refresh token (docker's `identitytoken`): straight to
//!   `POST <realm>` with `grant_type=refresh_token`.
//! * nothing: an anonymous token (works only with anonymous pull on).

use crate::context::Ctx;
use crate::dockerconfig::Credential;
use crate::http::{send, Answer};
use crate::report::Finding;

const DIRECTORY: &str = "directory login";
const REFRESH: &str = "refresh token";
const ACCESS: &str = "access token";

/// Whether a login step applies: `Err(finding)` explains why not.
fn needs_login(ctx: &Ctx, name: &str) -> Result<(), Finding> {
    if ctx.challenge.is_some() {
        return Ok(());
    }
    if ctx.v2.as_ref().is_some_and(|v| v.status == 200) {
        return Err(Finding::ok(
            name,
            "not needed: the registry asks for no login",
        ));
    }
    Err(super::skipped(name, "no usable challenge"))
}

/// Whether the registry hands out anonymous tokens (anonymous pull on).
async fn anonymous_pull_on(ctx: &Ctx) -> bool {
    let service = ctx.service();
    let req = ctx
        .http
        .get(ctx.token_url())
        .query(&[("service", service.as_str())]);
    matches!(send(req).await, Ok(a) if a.status == 200)
}

/// The findings for a refused stored credential: a stale-credentials
/// warning first when anonymous pull would have worked.
async fn refused(ctx: &Ctx, finding: Finding) -> Vec<Finding> {
    let mut out = Vec::new();
    if ctx.stored_credential && anonymous_pull_on(ctx).await {
        out.push(Finding::problem(
            finding.name.as_str(),
            "STALE_CREDENTIALS_ANONYMOUS_PULL",
            format!(
                "anonymous pull is on, but the stored credentials for {} are refused; clients send them and fail where anonymous pull would work",
                ctx.target.host_port()
            ),
        ));
    }
    out.push(finding);
    out
}

/// Whether `password` is a registry refresh token (a JWT whose claims say
/// `grant_type: refresh_token`; read, not verified).
fn is_refresh_token(password: &str) -> bool {
    crate::token::claims(password)
        .is_some_and(|c| c["grant_type"].as_str() == Some("refresh_token"))
}

fn token_field(a: &Answer, field: &str) -> Option<String> {
    a.json()?[field].as_str().map(str::to_string)
}

/// Send; a transport failure or a 429 becomes the step's finding.
async fn answer_or_finding(
    request: reqwest::RequestBuilder,
    check: &str,
    code: &str,
    what: String,
) -> Result<Answer, Vec<Finding>> {
    let answer = send(request)
        .await
        .map_err(|e| vec![Finding::problem(check, code, format!("{what} failed: {e}"))])?;
    match answer.throttled(check) {
        Some(f) => Err(vec![f]),
        None => Ok(answer),
    }
}

/// Docker's login: `GET <realm>?service=…&offline_token=true` with Basic;
/// a transport failure or a 429 becomes the finding.
async fn docker_login(ctx: &Ctx, user: &str, password: &str) -> Result<Answer, Vec<Finding>> {
    let service = ctx.service();
    let request = ctx
        .http
        .get(ctx.token_url())
        .query(&[
            ("service", service.as_str()),
            ("offline_token", "true"),
            ("client_id", "berth-check-health"),
        ])
        .basic_auth(user, Some(password));
    answer_or_finding(
        request,
        DIRECTORY,
        "CONNECTIVITY_AAD_LOGIN_ERROR",
        format!("GET {}", ctx.token_url()),
    )
    .await
}

/// Step 10: log in to the directory (or as docker does).
pub async fn directory(ctx: &mut Ctx) -> Vec<Finding> {
    if let Err(f) = needs_login(ctx, DIRECTORY) {
        return vec![f];
    }
    let Some((credential, origin)) = ctx.credential.clone() else {
        return vec![Finding::ok(
            DIRECTORY,
            "skipped: no credentials (anonymous)",
        )];
    };
    let (username, password, sp) = match credential {
        Credential::RefreshToken(t) => {
            ctx.refresh_token = Some(t);
            return vec![Finding::ok(
                DIRECTORY,
                format!("not needed: {origin} holds a registry refresh token"),
            )];
        }
        Credential::Password {
            username,
            password,
            service_principal,
        } => (username, password, service_principal),
    };
    let token_username = [berth_cli::docker_config::TOKEN_USERNAME, "<token>"];
    if !token_username.contains(&username.as_str()) && is_refresh_token(&password) {
        // The registry refuses this whatever the username (it tells from
        // the password alone); no need to send it.
        return vec![Finding::problem(
            DIRECTORY,
            "REFRESH_TOKEN_USERNAME_ERROR",
            format!(
                "the password for {username:?} (from {origin}) is a registry refresh token: it only works with the username {}",
                berth_cli::docker_config::TOKEN_USERNAME
            ),
        )];
    }
    let url = format!("{}/directory/token", ctx.base_url());
    let form: Vec<(&str, &str)> = if sp {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", &username),
            ("client_secret", &password),
        ]
    } else {
        vec![
            ("grant_type", "password"),
            ("username", &username),
            ("password", &password),
        ]
    };
    let answer = match answer_or_finding(
        ctx.http.post(&url).form(&form),
        DIRECTORY,
        "CONNECTIVITY_AAD_LOGIN_ERROR",
        format!("POST {url}"),
    )
    .await
    {
        Ok(a) => a,
        Err(f) => return f,
    };
    if answer.status == 200 && !sp {
        if let Some(t) = token_field(&answer, "access_token") {
            ctx.identity_token = Some(t);
            return vec![Finding::ok(
                DIRECTORY,
                format!("directory user {username:?} logged in (directory token)"),
            )];
        }
    }
    if answer.status == 200 && sp {
        // berth exchanges only users' directory tokens; service principals
        // log in to the registry with app id and secret, as docker does.
        let a = match docker_login(ctx, &username, &password).await {
            Ok(a) => a,
            Err(f) => return f,
        };
        return match token_field(&a, "refresh_token").filter(|_| a.status == 200) {
            Some(t) => {
                ctx.refresh_token = Some(t);
                vec![Finding::ok(
                    DIRECTORY,
                    format!("service principal {username:?} logged in (directory token; registry login with app id and secret)"),
                )]
            }
            None => vec![Finding::problem(
                DIRECTORY,
                "CONNECTIVITY_AAD_LOGIN_ERROR",
                format!("registry login with app id and secret → {}", a.describe()),
            )],
        };
    }
    let directory_refusal = answer.describe();
    if sp {
        return refused(
            ctx,
            Finding::problem(
                DIRECTORY,
                "CONNECTIVITY_AAD_LOGIN_ERROR",
                format!("POST /directory/token (client credentials) → {directory_refusal}"),
            ),
        )
        .await;
    }
    // Not a directory user? The admin account and repository-scoped tokens
    // log in at the token endpoint, as docker does.
    let docker = match docker_login(ctx, &username, &password).await {
        Ok(a) => a,
        Err(f) => return f,
    };
    if docker.status == 200 {
        if let Some(t) = token_field(&docker, "refresh_token") {
            ctx.refresh_token = Some(t);
            return vec![Finding::ok(
                DIRECTORY,
                format!("{username:?} is not a directory user; the token endpoint accepted it (admin account or repository-scoped token)"),
            )];
        }
    }
    refused(
        ctx,
        Finding::problem(
            DIRECTORY,
            "CONNECTIVITY_AAD_LOGIN_ERROR",
            format!(
                "login as {username:?} refused: {} (directory: {directory_refusal})",
                docker.describe()
            ),
        ),
    )
    .await
}

/// Step 11: a refresh token — exchanged for the directory token, or the
/// one already held shown to be accepted.
pub async fn refresh(ctx: &mut Ctx) -> Vec<Finding> {
    if let Err(f) = needs_login(ctx, REFRESH) {
        return vec![f];
    }
    if ctx.credential.is_none() {
        return vec![Finding::ok(REFRESH, "skipped: no credentials (anonymous)")];
    }
    let service = ctx.service();
    if let Some(identity) = ctx.identity_token.clone() {
        let url = format!("{}/oauth2/exchange", ctx.base_url());
        let form = [
            ("grant_type", "access_token"),
            ("service", service.as_str()),
            ("access_token", identity.as_str()),
        ];
        let answer = match answer_or_finding(
            ctx.http.post(&url).form(&form),
            REFRESH,
            "CONNECTIVITY_REFRESH_TOKEN_ERROR",
            format!("POST {url}"),
        )
        .await
        {
            Ok(a) => a,
            Err(f) => return f,
        };
        return match token_field(&answer, "refresh_token").filter(|_| answer.status == 200) {
            Some(t) => {
                ctx.refresh_token = Some(t);
                vec![Finding::ok(
                    REFRESH,
                    "the directory token was exchanged for a registry refresh token",
                )]
            }
            None => vec![Finding::problem(
                REFRESH,
                "CONNECTIVITY_REFRESH_TOKEN_ERROR",
                format!("POST /oauth2/exchange → {}", answer.describe()),
            )],
        };
    }
    let Some(refresh) = ctx.refresh_token.clone() else {
        return vec![super::skipped(REFRESH, "no login succeeded")];
    };
    let form = [
        ("grant_type", "refresh_token"),
        ("service", service.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    let url = ctx.token_url();
    let answer = match answer_or_finding(
        ctx.http.post(&url).form(&form),
        REFRESH,
        "CONNECTIVITY_REFRESH_TOKEN_ERROR",
        format!("POST {url}"),
    )
    .await
    {
        Ok(a) => a,
        Err(f) => return f,
    };
    if answer.status == 200 {
        return vec![Finding::ok(
            REFRESH,
            "the registry accepts the refresh token",
        )];
    }
    let finding = Finding::problem(
        REFRESH,
        "CONNECTIVITY_REFRESH_TOKEN_ERROR",
        format!(
            "POST {url} (grant_type=refresh_token) → {}",
            answer.describe()
        ),
    );
    ctx.refresh_token = None;
    refused(ctx, finding).await
}

/// The `access` claim of an access token as a token response's `scope`
/// (`repository:app:pull,push …`; read, not verified).
fn granted_scope(token: &str) -> String {
    let Some(claims) = crate::token::claims(token) else {
        return String::new();
    };
    let entries = claims["access"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let actions: Vec<&str> = e["actions"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str())
                .collect();
            Some(format!(
                "{}:{}:{}",
                e["type"].as_str()?,
                e["name"].as_str()?,
                actions.join(",")
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The scope asked for: the probed repository's pull, push and delete.
fn probe_scope(ctx: &Ctx) -> Option<String> {
    ctx.args
        .repository
        .as_ref()
        .map(|r| format!("repository:{r}:pull,push,delete"))
}

/// Step 12: an access token, and `/v2/` accepting it.
pub async fn access(ctx: &mut Ctx) -> Vec<Finding> {
    if let Err(f) = needs_login(ctx, ACCESS) {
        return vec![f];
    }
    if let Some(token) = ctx.args.access_token.clone() {
        let granted = granted_scope(&token);
        ctx.access = Some((token, granted.clone()));
        return vec![Finding::ok(
            ACCESS,
            format!("using the token from --access-token (scope {granted:?})"),
        )];
    }
    let service = ctx.service();
    let scope = probe_scope(ctx);
    let url = ctx.token_url();
    let anonymous = ctx.credential.is_none();
    let request = if anonymous {
        let mut q = vec![("service", service.clone())];
        if let Some(s) = &scope {
            q.push(("scope", s.clone()));
        }
        ctx.http.get(&url).query(&q)
    } else {
        let Some(refresh) = ctx.refresh_token.clone() else {
            return vec![super::skipped(ACCESS, "no refresh token")];
        };
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("service", service.clone()),
            ("refresh_token", refresh),
        ];
        if let Some(s) = &scope {
            form.push(("scope", s.clone()));
        }
        ctx.http.post(&url).form(&form)
    };
    let answer = match answer_or_finding(
        request,
        ACCESS,
        "CONNECTIVITY_ACCESS_TOKEN_ERROR",
        url.clone(),
    )
    .await
    {
        Ok(a) => a,
        Err(f) => return f,
    };
    let token = token_field(&answer, "access_token").or_else(|| token_field(&answer, "token"));
    let Some(token) = token.filter(|_| answer.status == 200) else {
        let hint = if anonymous {
            " (no credentials, and anonymous pull is off)"
        } else if !url.starts_with(&format!("{}/", ctx.base_url())) {
            " (this token endpoint is the challenge's realm, which is not on the login server: see the realm check)"
        } else {
            ""
        };
        return vec![Finding::problem(
            ACCESS,
            "CONNECTIVITY_ACCESS_TOKEN_ERROR",
            format!("{url} → {}{hint}", answer.describe()),
        )];
    };
    let granted = token_field(&answer, "scope").unwrap_or_default();
    ctx.access = Some((token.clone(), granted.clone()));
    let who = if anonymous { "anonymous " } else { "" };
    if anonymous {
        return vec![Finding::ok(
            ACCESS,
            format!("{who}access token issued (scope {granted:?})"),
        )];
    }
    let v2 = format!("{}/v2/", ctx.base_url());
    let a = match answer_or_finding(
        ctx.http.get(&v2).bearer_auth(&token),
        ACCESS,
        "CONNECTIVITY_ACCESS_TOKEN_ERROR",
        format!("GET {v2}"),
    )
    .await
    {
        Ok(a) => a,
        Err(f) => return f,
    };
    if a.status == 200 {
        return vec![Finding::ok(
            ACCESS,
            format!("access token issued (scope {granted:?}) and accepted by GET /v2/"),
        )];
    }
    vec![Finding::problem(
        ACCESS,
        "CONNECTIVITY_ACCESS_TOKEN_ERROR",
        format!("GET /v2/ with the new access token → {}", a.describe()),
    )]
}
