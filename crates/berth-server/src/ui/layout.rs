//! The page shell and formatting helpers. Pages are maud templates: every
//! `(value)` interpolation is HTML-escaped, so repository names, tags,
//! annotations, usernames tried at login and user agents can never become
//! markup.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::Viewer;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The sign-in form.
    SignIn,
    /// Repositories, tags, manifests.
    Repositories,
    /// Identities and policies.
    Access,
    /// Login and repository activity.
    Activity,
}

fn shell(title: &str, nav: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · berth" }
                link rel="stylesheet" href="/ui/assets/portal.css";
                script src="/ui/assets/portal.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "berth" }
                    (nav)
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

fn nav(viewer: &Viewer, page: Page) -> Markup {
    let item = |p: Page, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(p == page).then_some("page")] { (label) } }
        }
    };
    html! {
        nav aria-label="Main" {
            ul {
                (item(Page::Repositories, "/ui/repositories", "Repositories"))
                @if viewer.signed_in() {
                    (item(Page::Access, "/ui/access", "Access"))
                    (item(Page::Activity, "/ui/activity/logins", "Activity"))
                }
            }
            div.who {
                @if viewer.signed_in() {
                    span { (viewer.display_name()) }
                    form.inline method="post" action="/ui/logout" {
                        input type="hidden" name="csrf" value=(viewer.csrf());
                        button.link type="submit" { "Sign out" }
                    }
                } @else if page != Page::SignIn {
                    a href="/ui/login" { "Sign in" }
                }
            }
        }
    }
}

/// A full page for `viewer`.
pub fn render(viewer: &Viewer, page: Page, title: &str, body: Markup) -> Response {
    html_response(StatusCode::OK, shell(title, nav(viewer, page), body))
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    let mut r = (status, m.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A page that only says what went wrong.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        section.card {
            h1 { (title) }
            p { (message) }
            p { a href="/ui/" { "Back to the portal" } }
        }
    };
    html_response(status, shell(title, html! {}, body))
}

/// A management-API refusal as a page.
pub fn api_error(e: crate::api::error::MgmtError) -> Response {
    let title = match e.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Invalid input",
        StatusCode::CONFLICT => "Already exists",
        _ => "Something went wrong",
    };
    error_page(e.status, title, &e.item.message)
}

/// `2026-11-27 09:00:00 UTC` from unix milliseconds (`-` for 0).
pub fn time_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let t = UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs());
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s.replace('T', " ").replace('Z', " UTC")
}

/// `12.3 MiB` from bytes.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes.max(0) as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `sha256:0123456789ab` — a digest shortened for tables.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
        _ => d.to_string(),
    }
}

const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode a query value.
pub fn q(v: &str) -> String {
    utf8_percent_encode(v, QUERY).to_string()
}

/// A command with a copy button (the script copies `data-copy`).
pub fn copyable(label: &str, command: &str) -> Markup {
    html! {
        div.copy {
            span.label { (label) }
            code { (command) }
            button.copybtn type="button" data-copy=(command) aria-label={ "Copy " (label) " command" } { "Copy" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(time_ms(0), "-");
        assert_eq!(time_ms(1_000), "1970-01-01 00:00:01 UTC");
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
        assert_eq!(q("a/b c&d"), "a%2Fb%20c%26d");
        let m = copyable("docker", "docker pull x/<script>");
        assert!(m.into_string().contains("x/&lt;script&gt;"));
    }
}
