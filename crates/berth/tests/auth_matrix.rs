//! The access matrix over real HTTP: each credential type × each role or
//! scope map × each action, allowed or denied, through the token flow a
//! client uses (fetch a token for the action's scope, then make the
//! request with it). One server, many identities.
//!
//! The expected table is written from `shared/reference/login-model.md`
//! (§3 credentials, §4 scope maps, §5 built-in roles, §6 anonymous pull,
//! §1 "GET/HEAD → pull; POST/PUT/PATCH → pull+push; DELETE → delete;
//! catalog → registry:catalog:*"), not from berth's code. Cells the
//! reference leaves open are `Open`: they run (and must not fail with a
//! server error) but either answer is accepted.

mod common;

use std::fmt;

use common::login::*;
use common::*;
use serde_json::json;

/// Repository inside the prefix used by scoped assignments and the custom map.
const IN_PREFIX: &str = "mx/team/app";
/// A repository outside that prefix.
const OTHER: &str = "mx/other";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    /// GET a manifest (pull).
    Pull,
    /// GET tags/list (a GET, so pull per the reference).
    Tags,
    /// POST a blob (pull+push).
    Push,
    /// DELETE a manifest (delete).
    Delete,
    /// GET /v2/_catalog (registry:catalog:*).
    Catalog,
    /// Pull a repository outside the prefix.
    PullOther,
}

const ACTIONS: [Action; 6] = [
    Action::Pull,
    Action::Tags,
    Action::Push,
    Action::Delete,
    Action::Catalog,
    Action::PullOther,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Allow,
    Deny,
    /// The reference does not say.
    Open,
}
use Want::{Allow as Y, Deny as N, Open as O};

/// Expected answers in [`ACTIONS`] order for a registry-wide role (§5).
fn role_row(role: &str) -> [Want; 6] {
    match role {
        "Owner" | "Contributor" => [Y, Y, Y, Y, Y, Y],
        "Reader" | "AcrPull" => [Y, Y, N, N, Y, Y],
        "AcrPush" => [Y, Y, Y, N, Y, Y],
        // Delete only; whether a delete-only role may list is not stated.
        "AcrDelete" => [N, N, N, Y, O, N],
        // Signing only.
        "AcrImageSigner" => [N, N, N, N, O, N],
        // No role assignment at all.
        "none" => [N, N, N, N, N, N],
        // AcrPush on repositories/mx/team/*: the prefix only; catalog for
        // a repository-scoped role is not stated.
        "AcrPush@prefix" => [Y, Y, Y, N, O, N],
        other => panic!("no row for {other}"),
    }
}

/// Expected answers for a repository-scoped token with a scope map (§4:
/// never the catalog).
fn scope_map_row(map: &str) -> [Want; 6] {
    match map {
        "_repositories_pull" | "_repositories_pull_metadata_read" => [Y, Y, N, N, N, Y],
        "_repositories_push" | "_repositories_push_metadata_write" => [Y, Y, Y, N, N, Y],
        "_repositories_admin" => [Y, Y, Y, Y, N, Y],
        // mx/team/* content/read + content/write.
        "custom-wildcard" => [Y, Y, Y, N, N, N],
        other => panic!("no row for {other}"),
    }
}

/// How a row obtains its tokens.
#[derive(Clone)]
enum Cred {
    /// GET /oauth2/token with Basic user:password (directory user, service
    /// principal app id + secret, admin account, repository token).
    Basic(String, String),
    /// POST /oauth2/token grant_type=refresh_token with a refresh token
    /// from directory token → exchange (None: the exchange was refused).
    Refresh(Option<String>),
    /// GET /oauth2/token with Basic 00000000-…:<refresh token>.
    NullUser(Option<String>),
    /// No credentials.
    Anonymous,
}

struct Row {
    label: String,
    cred: Cred,
    want: [Want; 6],
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

fn scope_of(action: Action) -> String {
    match action {
        Action::Pull | Action::Tags => format!("repository:{IN_PREFIX}:pull"),
        Action::Push => format!("repository:{IN_PREFIX}:pull,push"),
        Action::Delete => format!("repository:{IN_PREFIX}:delete"),
        Action::Catalog => "registry:catalog:*".into(),
        Action::PullOther => format!("repository:{OTHER}:pull"),
    }
}

/// A token for `scope`, or None when the token endpoint refused.
async fn fetch_token(server: &TestServer, cred: &Cred, scope: &str) -> Option<String> {
    let r = match cred {
        Cred::Basic(u, p) => token_get(server, u, p, &[scope], false).await,
        Cred::Refresh(Some(rt)) => token_refresh(server, rt, &[scope]).await,
        Cred::NullUser(Some(rt)) => token_get(server, NULL_USER, rt, &[scope], false).await,
        Cred::Refresh(None) | Cred::NullUser(None) => return None,
        Cred::Anonymous => token_get_anonymous(server, &[scope]).await,
    };
    let status = r.status().as_u16();
    assert!(status < 500, "token endpoint failed: {status}");
    if status != 200 {
        return None;
    }
    Some(str_field(&json_of(r).await, "access_token"))
}

/// Perform `action` with `token`; its HTTP status.
async fn perform(server: &TestServer, action: Action, token: &str) -> u16 {
    let base = server.base_url();
    let client = plain();
    let req = match action {
        Action::Pull => client.get(format!("{base}/v2/{IN_PREFIX}/manifests/v1")),
        Action::Tags => client.get(format!("{base}/v2/{IN_PREFIX}/tags/list")),
        Action::PullOther => client.get(format!("{base}/v2/{OTHER}/manifests/v1")),
        Action::Catalog => client.get(format!("{base}/v2/_catalog")),
        Action::Push => {
            let data = random_bytes(32);
            client
                .post(format!(
                    "{base}/v2/{IN_PREFIX}/blobs/uploads/?digest={}",
                    sha256(&data)
                ))
                .body(data)
        }
        Action::Delete => {
            // A manifest of its own for each attempt, pushed by the Owner.
            let image = Image::random(1, 16);
            server
                .registry()
                .push_image(IN_PREFIX, &format!("del-{}", random_suffix()), &image)
                .await
                .expect_status(201);
            client.delete(format!(
                "{base}/v2/{IN_PREFIX}/manifests/{}",
                image.digest()
            ))
        }
    };
    req.bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Run one row; returns the mismatches.
async fn run_row(server: &TestServer, row: &Row) -> Vec<String> {
    let mut out = Vec::new();
    for (i, action) in ACTIONS.iter().enumerate() {
        let scope = scope_of(*action);
        let status = match fetch_token(server, &row.cred, &scope).await {
            Some(token) => perform(server, *action, &token).await,
            None => 0, // refused at the token endpoint
        };
        assert!(
            status < 500,
            "{} {action}: server error {status}",
            row.label
        );
        let allowed = (200..300).contains(&status);
        let denied = matches!(status, 0 | 401 | 403);
        let ok = match row.want[i] {
            Want::Allow => allowed,
            Want::Deny => denied,
            Want::Open => allowed || denied,
        };
        if !ok {
            out.push(format!(
                "{:<40} {:<10} expected {:?}, got {}",
                row.label,
                action.to_string(),
                row.want[i],
                if status == 0 {
                    "token refused".to_string()
                } else {
                    status.to_string()
                }
            ));
        }
    }
    out
}

/// A refresh token for a directory user via directory token → exchange.
async fn exchanged_refresh(server: &TestServer, user: &str, pw: &str) -> Option<String> {
    let directory = user_directory_token(server, user, pw).await;
    let r = exchange(server, &directory).await;
    if r.status() != 200 {
        return None;
    }
    Some(str_field(&json_of(r).await, "refresh_token"))
}

const ROLES: [&str; 9] = [
    "Owner",
    "Contributor",
    "Reader",
    "AcrPush",
    "AcrPull",
    "AcrDelete",
    "AcrImageSigner",
    "none",
    "AcrPush@prefix",
];

const SCOPE_MAPS: [&str; 6] = [
    "_repositories_pull",
    "_repositories_pull_metadata_read",
    "_repositories_push",
    "_repositories_push_metadata_write",
    "_repositories_admin",
    "custom-wildcard",
];

async fn assign_role(api: &Api, assignee: &str, role: &str) {
    match role {
        "none" => {}
        "AcrPush@prefix" => {
            api.assign(assignee, "AcrPush", Some("repositories/mx/team/*"))
                .await;
        }
        r => {
            api.assign(assignee, r, None).await;
        }
    }
}

#[tokio::test]
async fn credential_role_action_matrix() {
    let server = TestServer::start().await;
    let reg = server.registry();
    reg.push_image(IN_PREFIX, "v1", &Image::random(1, 64))
        .await
        .expect_status(201);
    reg.push_image(OTHER, "v1", &Image::random(1, 64))
        .await
        .expect_status(201);
    let api = Api::owner(&server).await;
    let mut rows = Vec::new();

    for (i, role) in ROLES.iter().enumerate() {
        // A directory user and a service principal holding this role.
        let user = format!("mx-user-{i}");
        let pw = api.user(&user).await;
        assign_role(&api, &user, role).await;
        let (app_id, secret) = api.service_principal(&format!("mx-sp-{i}"), None).await;
        assign_role(&api, &app_id, role).await;
        let refresh = exchanged_refresh(&server, &user, &pw).await;
        let want = role_row(role);
        rows.push(Row {
            label: format!("user Basic / {role}"),
            cred: Cred::Basic(user.clone(), pw.clone()),
            want,
        });
        rows.push(Row {
            label: format!("user exchange+refresh / {role}"),
            cred: Cred::Refresh(refresh.clone()),
            want,
        });
        rows.push(Row {
            label: format!("null-uuid refresh / {role}"),
            cred: Cred::NullUser(refresh),
            want,
        });
        rows.push(Row {
            label: format!("service principal / {role}"),
            cred: Cred::Basic(app_id, secret),
            want,
        });
    }

    // Admin account (§3): always full push+pull; delete and catalog are
    // not stated.
    let admin_pw = api.enable_admin().await;
    rows.push(Row {
        label: "admin account".into(),
        cred: Cred::Basic("berth".into(), admin_pw),
        want: [Y, Y, Y, O, O, Y],
    });

    for (i, map) in SCOPE_MAPS.iter().enumerate() {
        let name = format!("mx-token-{i}");
        let body = if *map == "custom-wildcard" {
            json!({"name": name, "repositories": [
                {"repository": "mx/team/*", "actions": ["content/read", "content/write"]}
            ]})
        } else {
            json!({"name": name, "scopeMap": map})
        };
        let pw = api.repo_token(body).await;
        rows.push(Row {
            label: format!("repository token / {map}"),
            cred: Cred::Basic(name, pw),
            want: scope_map_row(map),
        });
    }

    let mut mismatches = Vec::new();
    for row in &rows {
        mismatches.extend(run_row(&server, row).await);
    }

    // Anonymous (§6): nothing while anonymous pull is off; pull only when on.
    let anonymous_off = Row {
        label: "anonymous, anonymous pull off".into(),
        cred: Cred::Anonymous,
        want: [N, N, N, N, N, N],
    };
    mismatches.extend(run_row(&server, &anonymous_off).await);
    api.registry_settings(json!({"anonymousPullEnabled": true}))
        .await;
    let anonymous_on = Row {
        label: "anonymous, anonymous pull on".into(),
        cred: Cred::Anonymous,
        want: [Y, Y, N, N, N, Y],
    };
    mismatches.extend(run_row(&server, &anonymous_on).await);

    assert!(
        mismatches.is_empty(),
        "{} of {} cells differ from the reference:\n{}",
        mismatches.len(),
        (rows.len() + 2) * ACTIONS.len(),
        mismatches.join("\n")
    );
}
