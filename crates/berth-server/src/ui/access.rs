//! Access: users, groups, service principals (secret expiry, soon-to-expire
//! secrets highlighted), repository tokens with their scope maps, role
//! assignments, network rules, anonymous pull and the admin account; and
//! the effective-access view.
//!
//! Every list and every change goes through the management API's own
//! handlers with the viewer as caller, so the rights are the API's:
//! Readers look, Contributors and Owners change identities and tokens,
//! Owners change policies. Controls a viewer may not use are not rendered,
//! and a POST for them is refused by the handler (403).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use berth_auth::authorize::{authorize_action, Decision, ManagementAction};
use berth_auth::credential::load_policy_context;
use berth_auth::principal::Principal;
use berth_auth::scope::{Action, ResourceType};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, copyable, time_ms, Page};
use super::{UiState, Viewer};
use crate::api::error::{JsonBody, MgmtResult};
use crate::api::{self, SecretView};

/// Secrets expiring within this many days are highlighted.
pub const EXPIRY_WARNING_DAYS: u64 = 30;

/// `expired`, `soon` or `ok` for a secret expiring at `expires_at`.
fn expiry_class(now: u64, expires_at: Option<u64>) -> &'static str {
    match expires_at {
        Some(t) if t <= now => "expired",
        Some(t) if t <= now + EXPIRY_WARNING_DAYS * 86400 => "soon",
        _ => "ok",
    }
}

fn secrets(now: u64, list: &[SecretView]) -> Markup {
    html! {
        ul.secrets {
            @for s in list {
                @let class = expiry_class(now, s.expires_at);
                li class=(class) {
                    (s.name) ": "
                    @match s.expires_at {
                        Some(t) => {
                            @if class == "expired" { "expired " } @else { "expires " }
                            (time_ms(i64::try_from(t).unwrap_or(0).saturating_mul(1000)))
                            @if class == "soon" { " " strong { "(soon)" } }
                        }
                        None => { "never expires" }
                    }
                }
            }
            @if list.is_empty() { li.muted { "no secret" } }
        }
    }
}

async fn all<T>(r: MgmtResult<Json<T>>) -> Result<T, Response> {
    r.map(|Json(v)| v).map_err(layout::api_error)
}

/// `GET /ui/access`.
pub async fn page(State(state): State<UiState>, viewer: Viewer) -> Response {
    if let Err(r) = viewer.require_signed_in() {
        return r;
    }
    match render_page(&state, &viewer, None).await {
        Ok(r) | Err(r) => r,
    }
}

async fn render_page(
    state: &UiState,
    viewer: &Viewer,
    notice: Option<Markup>,
) -> Result<Response, Response> {
    if !viewer.may(ManagementAction::Read) {
        let body = html! {
            h1 { "Access" }
            p { "Seeing the registry's identities and policies needs the Reader, Contributor or Owner role." }
        };
        return Ok(layout::render(viewer, Page::Access, "Access", body));
    }
    let s = || State(state.api.clone());
    let c = || viewer.caller();
    let registry = all(api::registry::show(s(), c()).await).await?;
    let admin = all(api::admin::show(s(), c()).await).await?;
    let users = all(api::users::list(s(), c()).await).await?;
    let groups = all(api::groups::list(s(), c()).await).await?;
    let sps = all(api::service_principals::list(s(), c()).await).await?;
    let tokens = all(api::tokens::list(s(), c()).await).await?;
    let maps = all(api::scope_maps::list(s(), c()).await).await?;
    let roles = all(api::role_assignments::list(
        s(),
        c(),
        Query(api::role_assignments::ListQuery { assignee: None }),
    )
    .await)
    .await?;
    let network = all(api::network_rules::show(s(), c()).await).await?;
    let now = state.api.auth.clock.now();
    let may_write = viewer.may(ManagementAction::Write);
    let may_policies = viewer.may(ManagementAction::ChangePolicies);
    let csrf = viewer.csrf();
    let user_name = |id: &uuid::Uuid| {
        users
            .iter()
            .find(|u| u.id == *id)
            .map_or_else(|| id.to_string(), |u| u.name.clone())
    };
    let body = html! {
        h1 { "Access" }
        @if let Some(n) = notice { (n) }
        p.muted { "You are "
            @if may_policies { "an Owner: you may change everything here." }
            @else if may_write { "a Contributor: you may change identities and tokens; policies need an Owner." }
            @else { "a Reader: you may look, not change." }
            " " a href="/ui/access/effective" { "Effective access →" } }

        section #settings {
            h2 { "Registry" }
            dl.facts {
                dt { "Login server" } dd { (registry.login_server) }
                dt { "Anonymous pull" } dd #anonymous-pull { @if registry.anonymous_pull_enabled { "enabled" } @else { "disabled" } }
                dt { "Default network action" } dd { (registry.default_action) }
                dt { "Admin account" } dd #admin { @if admin.enabled { "enabled (user " (admin.username) ")" } @else { "disabled" } }
                @if admin.enabled { dt { "Admin passwords" } dd { (secrets(now, &admin.passwords)) } }
            }
            @if may_policies {
                form #settings-form method="post" action="/ui/access/settings" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="anonymous_pull" value=(if registry.anonymous_pull_enabled { "off" } else { "on" });
                    button type="submit" { @if registry.anonymous_pull_enabled { "Disable anonymous pull" } @else { "Enable anonymous pull" } }
                }
            }
        }

        section #network {
            h2 { "Network rules" }
            p { "Default action: " strong { (network.default_action) } }
            @if network.ip_rules.is_empty() { p.muted { "No IP rules." } }
            @else { ul { @for r in &network.ip_rules { li { code { (r) } } } } }
        }

        section #users {
            h2 { "Users" }
            div.tablewrap { table {
                thead { tr { th { "Name" } th { "Status" } th { "Groups" } th { "Created" } } }
                tbody { @for u in &users {
                    tr {
                        td { (u.name) }
                        td { @if u.enabled { "enabled" } @else { span.bad { "disabled" } } }
                        td { @for g in &u.groups { @if let Some(g) = groups.iter().find(|x| x.id == *g) { span.tag { (g.name) } " " } } }
                        td { (time_ms(u.created_at)) }
                    }
                } }
            } }
        }

        section #groups {
            h2 { "Groups" }
            @if groups.is_empty() { p.muted { "No groups." } }
            @else { div.tablewrap { table {
                thead { tr { th { "Name" } th { "Members" } } }
                tbody { @for g in &groups {
                    tr { td { (g.name) } td { @for m in &g.members { span.tag { (user_name(m)) } " " } } }
                } }
            } } }
        }

        section #service-principals {
            h2 { "Service principals" }
            @if sps.is_empty() { p.muted { "No service principals." } }
            @else { div.tablewrap { table {
                thead { tr { th { "Name" } th { "App id" } th { "Status" } th { "Secrets" } } }
                tbody { @for sp in &sps {
                    tr {
                        td { (sp.name) }
                        td { code { (sp.app_id) } }
                        td { @if sp.enabled { "enabled" } @else { span.bad { "disabled" } } }
                        td { (secrets(now, &sp.secrets)) }
                    }
                } }
            } } }
        }

        section #tokens {
            h2 { "Repository tokens" }
            @if tokens.is_empty() { p.muted { "No tokens." } }
            @else { div.tablewrap { table #token-list {
                thead { tr { th { "Name" } th { "Scope map" } th { "Status" } th { "Passwords" } @if may_write { th { span.sr { "Actions" } } } } }
                tbody { @for t in &tokens {
                    @let map = maps.iter().find(|m| m.name == t.scope_map);
                    tr {
                        td { (t.name) }
                        td { (t.scope_map)
                            @if let Some(m) = map { ul.rules { @for a in &m.actions { li { code { (a) } } } } } }
                        td { (t.status) }
                        td { (secrets(now, &t.passwords)) }
                        @if may_write {
                            td { form method="post" action="/ui/access/tokens/delete" data-confirm={ "Delete token " (t.name) "?" } {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="name" value=(t.name);
                                button.danger type="submit" aria-label={ "Delete token " (t.name) } { "Delete" }
                            } }
                        }
                    }
                } }
            } } }
            @if may_write {
                details #create-token open[tokens.is_empty()] {
                    summary { "Create a token" }
                    form #create-token-form method="post" action="/ui/access/tokens" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="token-name" { "Name" }
                        input #token-name type="text" name="name" required pattern="[A-Za-z0-9-]{5,50}" title="5–50 letters, digits or dashes";
                        label for="token-repo" { "Repository (or pattern like team/*)" }
                        input #token-repo type="text" name="repository" required;
                        fieldset {
                            legend { "Actions" }
                            @for (field, label) in [("content_read", "content/read"), ("content_write", "content/write"), ("content_delete", "content/delete"), ("metadata_read", "metadata/read"), ("metadata_write", "metadata/write")] {
                                label.check { input type="checkbox" name=(field) value="on" checked[field == "content_read"]; " " (label) }
                            }
                        }
                        label for="token-days" { "Expires in days (empty: never)" }
                        input #token-days type="number" name="expiration_in_days" min="1" max="3650";
                        button type="submit" { "Create token" }
                    }
                }
            }
        }

        section #scope-maps {
            h2 { "Scope maps" }
            div.tablewrap { table {
                thead { tr { th { "Name" } th { "Actions" } th { "Description" } } }
                tbody { @for m in &maps {
                    tr { td { (m.name) @if m.system { " " span.tag { "system" } } } td { ul.rules { @for a in &m.actions { li { code { (a) } } } } } td { (m.description) } }
                } }
            } }
        }

        section #roles {
            h2 { "Role assignments" }
            div.tablewrap { table {
                thead { tr { th { "Assignee" } th { "Kind" } th { "Role" } th { "Scope" } } }
                tbody { @for r in &roles {
                    tr { td { (r.assignee_name.clone().unwrap_or_else(|| r.assignee_id.to_string())) } td { (r.assignee_kind) } td { (r.role) } td { code { (r.scope) } } }
                } }
            } }
        }
    };
    Ok(layout::render(viewer, Page::Access, "Access", body))
}

/// The create-token form.
#[derive(Deserialize)]
pub struct CreateTokenForm {
    #[serde(default)]
    csrf: String,
    name: String,
    repository: String,
    content_read: Option<String>,
    content_write: Option<String>,
    content_delete: Option<String>,
    metadata_read: Option<String>,
    metadata_write: Option<String>,
    #[serde(default)]
    expiration_in_days: String,
}

/// `POST /ui/access/tokens`: create a token through the API's handler and
/// show its passwords this once.
pub async fn create_token(
    State(state): State<UiState>,
    viewer: Viewer,
    Form(f): Form<CreateTokenForm>,
) -> Response {
    if let Err(r) = viewer.check_csrf(&f.csrf) {
        return r;
    }
    let actions: Vec<String> = [
        (&f.content_read, "content/read"),
        (&f.content_write, "content/write"),
        (&f.content_delete, "content/delete"),
        (&f.metadata_read, "metadata/read"),
        (&f.metadata_write, "metadata/write"),
    ]
    .into_iter()
    .filter(|(v, _)| v.is_some())
    .map(|(_, a)| a.to_string())
    .collect();
    let days = match f.expiration_in_days.trim() {
        "" => None,
        d => match d.parse::<u64>() {
            Ok(d) => Some(d),
            Err(_) => {
                return layout::error_page(
                    StatusCode::BAD_REQUEST,
                    "Invalid input",
                    "Expiry must be a number of days.",
                )
            }
        },
    };
    let req = api::tokens::CreateToken {
        name: f.name.trim().to_string(),
        scope_map: None,
        repositories: Some(vec![api::tokens::RepositoryActions {
            repository: f.repository.trim().to_string(),
            actions,
        }]),
        expiration_in_days: days,
    };
    let created =
        match api::tokens::create(State(state.api.clone()), viewer.caller(), JsonBody(req)).await {
            Ok((_, Json(c))) => c,
            Err(e) => return layout::api_error(e),
        };
    let login_server = &state.api.auth.settings.login_server;
    let notice = html! {
        section.card.once #new-token role="status" {
            h2 { "Token " (created.token.name) " created" }
            p { strong { "Copy the passwords now: berth shows them only this once." } }
            @for p in &created.new_passwords {
                div.secret {
                    span.label { (p.name) }
                    code.password { (p.value) }
                    button.copybtn type="button" data-copy=(p.value) aria-label={ "Copy " (p.name) } { "Copy" }
                }
            }
            (copyable("login", &format!("docker login {login_server} -u {}", created.token.name)))
        }
    };
    match render_page(&state, &viewer, Some(notice)).await {
        Ok(r) | Err(r) => r,
    }
}

/// A form naming a token.
#[derive(Deserialize)]
pub struct NamedForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

/// `POST /ui/access/tokens/delete`.
pub async fn delete_token(
    State(state): State<UiState>,
    viewer: Viewer,
    Form(f): Form<NamedForm>,
) -> Response {
    if let Err(r) = viewer.check_csrf(&f.csrf) {
        return r;
    }
    match api::tokens::delete(
        State(state.api.clone()),
        viewer.caller(),
        axum::extract::Path(f.name),
    )
    .await
    {
        Ok(_) => Redirect::to("/ui/access#tokens").into_response(),
        Err(e) => layout::api_error(e),
    }
}

/// The settings form.
#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    anonymous_pull: String,
}

/// `POST /ui/access/settings`: turn anonymous pull on or off (Owner).
pub async fn update_settings(
    State(state): State<UiState>,
    viewer: Viewer,
    Form(f): Form<SettingsForm>,
) -> Response {
    if let Err(r) = viewer.check_csrf(&f.csrf) {
        return r;
    }
    let req = api::registry::UpdateRegistry {
        anonymous_pull_enabled: Some(f.anonymous_pull == "on"),
        default_action: None,
        access_token_ttl_seconds: None,
        refresh_token_ttl_seconds: None,
        identity_token_ttl_seconds: None,
        retention_enabled: None,
        retention_untagged_days: None,
    };
    match api::registry::update(State(state.api.clone()), viewer.caller(), JsonBody(req)).await {
        Ok(_) => Redirect::to("/ui/access#settings").into_response(),
        Err(e) => layout::api_error(e),
    }
}

/// `GET /ui/access/effective` query.
#[derive(Deserialize)]
pub struct EffectiveQuery {
    #[serde(default)]
    identity: String,
    #[serde(default)]
    repository: String,
}

/// `GET /ui/access/effective?identity=…&repository=…`: what may this
/// identity do on this repository, and which role or scope map decides —
/// berth-auth's own decisions and reasons.
pub async fn effective(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(query): Query<EffectiveQuery>,
) -> Response {
    if let Err(r) = viewer.require_signed_in() {
        return r;
    }
    match render_effective(&state, &viewer, &query).await {
        Ok(r) | Err(r) => r,
    }
}

async fn render_effective(
    state: &UiState,
    viewer: &Viewer,
    query: &EffectiveQuery,
) -> Result<Response, Response> {
    let s = || State(state.api.clone());
    let c = || viewer.caller();
    let users = all(api::users::list(s(), c()).await).await?;
    let sps = all(api::service_principals::list(s(), c()).await).await?;
    let tokens = all(api::tokens::list(s(), c()).await).await?;
    let registry_name = state.api.auth.settings.registry_name.clone();
    let mut choices: Vec<(String, String, Principal, bool)> = Vec::new();
    for u in &users {
        choices.push((
            format!("user:{}", u.id),
            format!("user {}", u.name),
            Principal::DirectoryUser {
                id: u.id,
                name: u.name.clone(),
                groups: u.groups.clone(),
            },
            u.enabled,
        ));
    }
    for sp in &sps {
        choices.push((
            format!("sp:{}", sp.app_id),
            format!("service principal {}", sp.name),
            Principal::ServicePrincipal {
                app_id: sp.app_id,
                name: sp.name.clone(),
            },
            sp.enabled,
        ));
    }
    for t in &tokens {
        choices.push((
            format!("token:{}", t.name),
            format!("token {}", t.name),
            Principal::RepositoryToken {
                name: t.name.clone(),
                scope_map: t.scope_map.clone(),
            },
            t.status == "enabled",
        ));
    }
    choices.push((
        format!("admin:{registry_name}"),
        format!("admin account {registry_name}"),
        Principal::Admin {
            registry: registry_name.clone(),
        },
        true,
    ));
    choices.push((
        "anonymous".into(),
        "anonymous".into(),
        Principal::Anonymous,
        true,
    ));
    let chosen = choices.iter().find(|(k, ..)| *k == query.identity);
    let repo = query.repository.trim();
    let mut rows = Vec::new();
    if let Some((_, _, principal, _)) = chosen {
        if !repo.is_empty() {
            let policy = load_policy_context(&state.api.auth.repo, principal)
                .await
                .map_err(|e| layout::api_error(e.into()))?;
            for action in Action::REPOSITORY {
                rows.push((
                    action,
                    authorize_action(principal, &policy, ResourceType::Repository, repo, action),
                ));
            }
        }
    }
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/access" { "Access" } " / " span { "Effective access" } }
        h1 { "Effective access" }
        p.muted { "What may an identity do on a repository, and which role assignment or scope-map rule decides. These are the same decisions the token service and the /v2 gate make." }
        form.search #effective-form method="get" action="/ui/access/effective" {
            label for="identity" { "Identity" }
            select #identity name="identity" required {
                option value="" { "choose…" }
                @for (k, label, _, _) in &choices {
                    option value=(k) selected[*k == query.identity] { (label) }
                }
            }
            label for="repository" { "Repository" }
            input #repository type="text" name="repository" value=(query.repository) placeholder="library/alpine" required;
            button type="submit" { "Show" }
        }
        @if let Some((_, label, _, enabled)) = chosen {
            @if !rows.is_empty() {
                h2 { (label) " on " code { (repo) } }
                @if !enabled { p.alert.bad { "This identity is disabled: every login is refused whatever the roles say." } }
                div.tablewrap { table #effective {
                    thead { tr { th { "Action" } th { "Result" } th { "Why" } th { "Code" } } }
                    tbody { @for (action, d) in &rows {
                        tr class=(if d.is_allowed() { "allowed" } else { "denied" }) {
                            td { code { (action.as_str()) } }
                            td { @if d.is_allowed() { "allowed" } @else { "denied" } }
                            td { @match d { Decision::Allowed(a) => { "by " (a.to_string()) } Decision::Denied(r) => { (r.to_string()) } } }
                            td { code { (d.code()) } }
                        }
                    } }
                } }
            }
        }
        @if !query.identity.is_empty() && chosen.is_none() {
            p.alert.bad { "No such identity." }
        }
    };
    Ok(layout::render(
        viewer,
        Page::Access,
        "Effective access",
        body,
    ))
}
