//! The web portal at `/ui/`: server-rendered pages over the same store
//! calls, handlers and access checks as the management API (`/api/v1`).
//!
//! * [`session`]: sign-in with a directory user's password or a service
//!   principal's secret (the same credential path as Basic logins),
//!   cookie sessions kept in the database, CSRF tokens, the [`Viewer`]
//!   every page is rendered for.
//! * [`layout`]: the page shell, navigation and small formatting helpers
//!   (maud escapes every interpolated value).
//! * [`repos`]: repositories, tags, manifest detail, deletes.
//! * [`access`]: identities, tokens, roles, network rules, settings and the
//!   effective-access view.
//! * [`activity`]: login activity with the failures chart, the explain
//!   view, repository activity.
//! * [`assets`]: the stylesheet and script, compiled into the binary.
//!
//! Every `/ui` response carries a Content-Security-Policy without
//! `unsafe-inline` and the other headers in [`security_headers`].

// Refusals are complete pages built where the reason is known; returning
// them by value is the natural shape in axum (as in `auth`).
#![allow(clippy::result_large_err)]

pub mod access;
pub mod activity;
pub mod assets;
pub mod layout;
pub mod repos;
pub mod session;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_store::portal::PortalStore;
use berth_store::Registry;

use crate::api::ApiState;
use crate::auth::AuthService;

pub use session::Viewer;

/// State of the portal's handlers.
#[derive(Clone)]
pub struct UiState {
    /// The management API's state (its handlers are called directly).
    pub api: ApiState,
    /// Sessions and the repository overview.
    pub portal: PortalStore,
    /// Whether the server speaks HTTPS (cookies get `Secure`).
    pub secure: bool,
}

/// The Content-Security-Policy of every portal response: only berth's own
/// files, no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The portal's routes, under `/ui`.
pub fn routes(auth: Arc<AuthService>, registry: Arc<Registry>) -> Router {
    let secure = auth.settings.realm.starts_with("https://");
    let portal = PortalStore::new(registry.meta());
    let state = UiState {
        api: ApiState {
            auth,
            registry,
            gc: None,
        },
        portal,
        secure,
    };
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(home))
        .route("/ui/assets/portal.css", get(assets::css))
        .route("/ui/assets/portal.js", get(assets::js))
        .route(
            "/ui/login",
            get(session::login_page).post(session::login_submit),
        )
        .route("/ui/logout", post(session::logout))
        .route("/ui/repositories", get(repos::list))
        .route("/ui/repository", get(repos::repository))
        .route("/ui/manifest", get(repos::manifest))
        .route("/ui/delete", get(repos::confirm_delete).post(repos::delete))
        .route("/ui/access", get(access::page))
        .route("/ui/access/tokens", post(access::create_token))
        .route("/ui/access/tokens/delete", post(access::delete_token))
        .route("/ui/access/settings", post(access::update_settings))
        .route("/ui/access/effective", get(access::effective))
        .route("/ui/activity/logins", get(activity::logins))
        .route("/ui/activity/explain", get(activity::explain))
        .route("/ui/activity/repository", get(activity::repository))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(security_headers))
}

async fn home() -> Redirect {
    Redirect::to("/ui/repositories")
}

async fn not_found() -> Response {
    layout::error_page(
        axum::http::StatusCode::NOT_FOUND,
        "Not found",
        "There is no portal page here.",
    )
}

/// Adds the portal's security headers: CSP, no sniffing, no framing, no
/// referrer to other sites, and no caching of pages (they show secrets
/// once and per-identity data).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/ui/assets/");
    let mut resp = next.run(req).await.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
