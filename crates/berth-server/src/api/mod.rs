//! The management REST API: `/api/v1/...` JSON endpoints over the identity
//! repository and the registry store, with an OpenAPI 3 document generated
//! from these handlers at `GET /api/v1/openapi.json`.
//!
//! * Authentication ([`authn`]): a directory token as `Bearer`, or `Basic`
//!   with directory credentials. 401 carries a challenge naming the
//!   directory token endpoint.
//! * Authorization: [`berth_auth::authorize::authorize_management`] — Reader
//!   reads, Contributor and Owner write, only Owner manages role
//!   assignments. The admin account and repository tokens have no rights.
//! * Errors ([`error`]): `{"errors":[{"code","message","field"}]}`.
//! * Secrets are returned only by the request that created them.
//! * [`logs`]: the audit events and explain records (Reader or above).

pub mod admin;
pub mod authn;
pub mod error;
pub mod gc;
pub mod groups;
pub mod lenient;
pub mod logs;
pub mod network_rules;
pub mod purge;
pub mod registry;
pub mod repositories;
pub mod role_assignments;
pub mod scope_maps;
pub mod service_principals;
pub mod tokens;
pub mod users;
pub mod workload_identities;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Json, Router};
use berth_store::identity::SecretInfo;
use berth_store::Registry;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use self::error::{MgmtError, MgmtResult};
use crate::auth::AuthService;

/// State of the management handlers.
#[derive(Clone)]
pub struct ApiState {
    /// Identity layer (repository, authenticator, token service).
    pub auth: Arc<AuthService>,
    /// Repository storage.
    pub registry: Arc<Registry>,
    /// Garbage collection (`None` when the server was built without it).
    pub gc: Option<Arc<crate::gc::GcService>>,
}

/// A stored secret as the API shows it: its name and expiry, never the hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    /// `password`, `password1`, `password2` or a client secret's id.
    pub name: String,
    /// Unix seconds after which it no longer works.
    pub expires_at: Option<u64>,
    /// When it was set, unix milliseconds.
    pub created_at: i64,
}

impl From<SecretInfo> for SecretView {
    fn from(s: SecretInfo) -> Self {
        SecretView {
            name: s.name,
            expires_at: s.expires_at,
            created_at: s.created_at,
        }
    }
}

/// Hash a secret with argon2id on a blocking thread.
pub(crate) async fn hash_secret(state: &ApiState, secret: &str) -> MgmtResult<String> {
    let hasher = state.auth.authenticator.hasher().clone();
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || hasher.hash(&secret))
        .await
        .map_err(MgmtError::internal)?
        .map_err(MgmtError::internal)
}

/// Longest accepted secret validity, days (ten years).
const MAX_EXPIRATION_DAYS: u64 = 3650;

/// Unix seconds `days` from now; `None` when `days` is `None`.
pub(crate) fn expiry(state: &ApiState, days: Option<u64>, field: &str) -> MgmtResult<Option<u64>> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_EXPIRATION_DAYS).contains(&d) => {
            Ok(Some(state.auth.clock.now() + d * 86400))
        }
        Some(_) => Err(MgmtError::invalid(
            field,
            format!("{field} must be between 1 and {MAX_EXPIRATION_DAYS} days"),
        )),
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(title = "berth management API", version = "1"),
    paths(
        users::create, users::list, users::show, users::update, users::delete,
        groups::create, groups::list, groups::show, groups::delete,
        groups::add_member, groups::remove_member,
        service_principals::create, service_principals::list, service_principals::show,
        service_principals::delete, service_principals::reset,
        service_principals::add_secret, service_principals::remove_secret,
        admin::show, admin::enable, admin::disable, admin::renew,
        tokens::create, tokens::list, tokens::show, tokens::update, tokens::generate,
        tokens::delete,
        scope_maps::create, scope_maps::replace, scope_maps::list, scope_maps::show,
        scope_maps::delete,
        role_assignments::create, role_assignments::list, role_assignments::delete,
        network_rules::show, network_rules::add, network_rules::remove,
        registry::show, registry::update,
        repositories::list, repositories::tags, repositories::manifests,
        repositories::untag, repositories::delete_manifest, repositories::delete_repository,
        workload_identities::create, workload_identities::list, workload_identities::show,
        workload_identities::update, workload_identities::delete,
        logs::login, logs::repository, logs::explain,
        gc::start, gc::status, gc::show, purge::start,
    ),
    components(schemas(error::ErrorBody, error::ErrorItem, berth_store::gc::GcDeletion,
        berth_store::gc::GcKind, berth_store::purge::PurgeDeletion,
        berth_store::purge::PurgeKind)),
    modifiers(&SecurityAddon, &CommonResponses),
    security(("bearer" = []), ("basic" = []))
)]
pub struct ApiDoc;

/// Declares the Bearer and Basic security schemes.
struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("a directory token from POST /directory/token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// Adds the answers every operation can give, so the document lists each
/// status the API really sends (schemathesis checks it, see docs/api.md):
/// 401 and 403 everywhere; 400 where there are parameters or a body; 404
/// on paths with parameters; 413 with a body; 507 on every write.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let templated = path.contains('{');
            let ops = [
                (false, item.get.as_mut()),
                (true, item.put.as_mut()),
                (true, item.post.as_mut()),
                (true, item.delete.as_mut()),
                (true, item.patch.as_mut()),
            ];
            for (writes, op) in ops {
                let Some(op) = op else { continue };
                let has_body = op.request_body.is_some();
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description));
                };
                if has_body || has_params {
                    add(
                        "400",
                        "invalid request (`INVALID`, `field` names the culprit)",
                    );
                }
                add(
                    "401",
                    "no or bad credentials (`UNAUTHORIZED`, with a challenge)",
                );
                add("403", "the caller's role does not allow this (`DENIED`)");
                if templated {
                    add("404", "no such object (`NOT_FOUND`)");
                }
                if has_body {
                    add("413", "the request body is over 1 MiB (`TOO_LARGE`)");
                }
                if writes {
                    add(
                        "507",
                        "storage is full; nothing was changed (`STORAGE_FULL`)",
                    );
                }
            }
        }
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The management API's routes.
pub fn routes(
    auth: Arc<AuthService>,
    registry: Arc<Registry>,
    gc: Option<Arc<crate::gc::GcService>>,
) -> Router {
    use axum::routing::{any, delete};
    let state = ApiState { auth, registry, gc };
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/gc", post(gc::start).get(gc::status))
        .route("/api/v1/gc/{id}", get(gc::show))
        .route("/api/v1/purge", post(purge::start))
        .route("/api/v1/users", post(users::create).get(users::list))
        .route(
            "/api/v1/users/{name}",
            get(users::show).patch(users::update).delete(users::delete),
        )
        .route("/api/v1/groups", post(groups::create).get(groups::list))
        .route(
            "/api/v1/groups/{name}",
            get(groups::show).delete(groups::delete),
        )
        .route("/api/v1/groups/{name}/members", post(groups::add_member))
        .route(
            "/api/v1/groups/{name}/members/{user}",
            delete(groups::remove_member),
        )
        .route(
            "/api/v1/service-principals",
            post(service_principals::create).get(service_principals::list),
        )
        .route(
            "/api/v1/service-principals/{app_id}",
            get(service_principals::show).delete(service_principals::delete),
        )
        .route(
            "/api/v1/service-principals/{app_id}/credentials/reset",
            post(service_principals::reset),
        )
        .route(
            "/api/v1/service-principals/{app_id}/credentials",
            post(service_principals::add_secret),
        )
        .route(
            "/api/v1/service-principals/{app_id}/credentials/{secret_id}",
            delete(service_principals::remove_secret),
        )
        .route("/api/v1/admin", get(admin::show))
        .route("/api/v1/admin/enable", post(admin::enable))
        .route("/api/v1/admin/disable", post(admin::disable))
        .route("/api/v1/admin/renew", post(admin::renew))
        .route("/api/v1/tokens", post(tokens::create).get(tokens::list))
        .route(
            "/api/v1/tokens/{name}",
            get(tokens::show)
                .patch(tokens::update)
                .delete(tokens::delete),
        )
        .route(
            "/api/v1/tokens/{name}/credentials/generate",
            post(tokens::generate),
        )
        .route(
            "/api/v1/scope-maps",
            post(scope_maps::create).get(scope_maps::list),
        )
        .route(
            "/api/v1/scope-maps/{name}",
            get(scope_maps::show)
                .put(scope_maps::replace)
                .delete(scope_maps::delete),
        )
        .route(
            "/api/v1/role-assignments",
            post(role_assignments::create).get(role_assignments::list),
        )
        .route(
            "/api/v1/role-assignments/{id}",
            delete(role_assignments::delete),
        )
        .route(
            "/api/v1/network-rules",
            get(network_rules::show).post(network_rules::add),
        )
        .route(
            "/api/v1/network-rules/{cidr}",
            delete(network_rules::remove),
        )
        .route(
            "/api/v1/registry",
            get(registry::show).patch(registry::update),
        )
        .route("/api/v1/repositories", get(repositories::list))
        .route(
            "/api/v1/workload-identities",
            post(workload_identities::create).get(workload_identities::list),
        )
        .route(
            "/api/v1/workload-identities/{client_id}",
            get(workload_identities::show)
                .patch(workload_identities::update)
                .delete(workload_identities::delete),
        )
        .route(
            "/api/v1/repositories/{*rest}",
            get(repositories::dispatch_get).delete(repositories::dispatch_delete),
        )
        .route("/api/v1/logs/login", get(logs::login))
        .route("/api/v1/logs/repository", get(logs::repository))
        .route("/api/v1/logs/explain/{correlation_id}", get(logs::explain))
        .route("/api/v1/{*rest}", any(not_found))
        .with_state(state)
        .layer(axum::middleware::from_fn(method_guard))
}

/// Unknown paths under `/api/v1` answer 404 in the API's error shape.
async fn not_found() -> MgmtError {
    MgmtError::not_found("no such management API endpoint")
}

/// A method the route does not serve is a 405 from axum; give it the API's
/// error shape and an `Allow` header listing the methods the document
/// gives the path.
async fn method_guard(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::ALLOW;
    use axum::response::IntoResponse;
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = match path.strip_prefix("/api/v1/repositories/") {
            Some(rest) => Some(axum::http::HeaderValue::from_static(repository_allow(rest))),
            None => resp.headers().get(ALLOW).cloned(),
        };
        let mut e = MgmtError::method_not_allowed().into_response();
        if let Some(allow) = allow {
            e.headers_mut().insert(ALLOW, allow);
        }
        return e;
    }
    resp
}

/// The methods of `/api/v1/repositories/<rest>` as the document gives
/// them: `…/tags` and `…/manifests` are read, `…/tags/<tag>`,
/// `…/manifests/<digest>` and the repository itself are deleted.
fn repository_allow(rest: &str) -> &'static str {
    let rest = rest.trim_end_matches('/');
    if rest.ends_with("/tags") || rest.ends_with("/manifests") {
        "GET,HEAD"
    } else {
        "DELETE"
    }
}
