//! The portal's stylesheet and script, compiled into the binary: nothing
//! is fetched at run time and nothing is inline (the CSP forbids it).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The stylesheet.
pub const CSS: &str = include_str!("assets/portal.css");
/// The script: copy buttons, confirmations, clickable rows.
pub const JS: &str = include_str!("assets/portal.js");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// `GET /ui/assets/portal.css`.
pub async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `GET /ui/assets/portal.js`.
pub async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}
