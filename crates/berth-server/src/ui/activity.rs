//! Activity: login events with filters and a failures-over-time chart
//! (inline SVG rendered here), the explain view of a refusal (leading with
//! the fix), and a repository's push/pull/delete events. The data comes
//! from the management API's `/api/v1/logs/*` handlers, called with the
//! viewer as caller (Reader or above).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use berth_auth::authorize::ManagementAction;
use berth_core::explain::fix_for;
use berth_core::explain::record::{action, asked, recognised, text};
use berth_store::audit::LoginEvent;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, q, short_digest, size, time_ms, Page};
use super::{UiState, Viewer};
use crate::api;

/// Failures read for the chart.
const CHART_EVENTS: i64 = 1000;
/// Bars in the chart.
const BUCKETS: usize = 24;

fn need_reader(viewer: &Viewer) -> Result<(), Response> {
    viewer.require_signed_in()?;
    if viewer.may(ManagementAction::Read) {
        Ok(())
    } else {
        Err(layout::error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Activity needs the Reader, Contributor or Owner role.",
        ))
    }
}

/// `GET /ui/activity/logins` filters.
#[derive(Deserialize, Default)]
pub struct LoginFilters {
    #[serde(default)]
    failures: Option<String>,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

impl LoginFilters {
    fn failures(&self) -> bool {
        matches!(self.failures.as_deref(), Some("1" | "on" | "true"))
    }

    fn params(&self) -> HashMap<String, String> {
        let mut p = HashMap::new();
        for (k, v) in [
            ("identity", &self.identity),
            ("ip", &self.ip),
            ("since", &self.since),
            ("until", &self.until),
            ("cursor", &self.cursor),
        ] {
            if !v.trim().is_empty() {
                p.insert(k.to_string(), v.trim().to_string());
            }
        }
        if self.failures() {
            p.insert("failures".into(), "true".into());
        }
        p
    }

    fn query_string(&self, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        if self.failures() {
            parts.push("failures=1".to_string());
        }
        for (k, v) in [
            ("identity", &self.identity),
            ("ip", &self.ip),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", q(v)));
            }
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", q(c)));
        }
        parts.join("&")
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The failures-over-time chart: [`BUCKETS`] bars from `from` to `to`.
pub fn chart(failures: &[LoginEvent], from: i64, to: i64) -> Markup {
    let span = (to - from).max(1);
    let mut counts = [0usize; BUCKETS];
    for e in failures {
        if e.time_ms < from || e.time_ms > to {
            continue;
        }
        let i = usize::try_from((e.time_ms - from) * BUCKETS as i64 / span)
            .unwrap_or(0)
            .min(BUCKETS - 1);
        counts[i] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, bar) = (960usize, 120usize, 40usize);
    html! {
        figure.chart {
            svg #failures-chart role="img" viewBox={ "0 0 " (w) " " (h + 20) } width="100%"
                aria-label={ (failures.len()) " failed logins between " (time_ms(from)) " and " (time_ms(to)) } {
                line x1="0" y1=(h) x2=(w) y2=(h) stroke="#8a8f98" stroke-width="1" {}
                @for (i, c) in counts.iter().enumerate() {
                    @let bh = c * (h - 10) / max;
                    @let t0 = from + span * i as i64 / BUCKETS as i64;
                    rect x=(i * bar + 2) y=(h - bh) width=(bar - 4) height=(bh) fill="#c0392b" {
                        title { (c) " failures from " (time_ms(t0)) }
                    }
                }
                text x="0" y=(h + 16) font-size="11" fill="#5b6270" { (time_ms(from)) }
                text x=(w) y=(h + 16) font-size="11" fill="#5b6270" text-anchor="end" { (time_ms(to)) }
                text x="2" y="10" font-size="11" fill="#5b6270" { "max " (max) }
            }
            figcaption { "Failed logins over time (" (failures.len()) " shown)" }
        }
    }
}

/// `GET /ui/activity/logins`.
pub async fn logins(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(f): Query<LoginFilters>,
) -> Response {
    if let Err(r) = need_reader(&viewer) {
        return r;
    }
    let page = match api::logs::login(State(state.api.clone()), viewer.caller(), Query(f.params()))
        .await
    {
        Ok(Json(p)) => p,
        Err(e) => return layout::api_error(e),
    };
    let mut chart_params = f.params();
    chart_params.remove("cursor");
    chart_params.insert("failures".into(), "true".into());
    chart_params.insert("limit".into(), CHART_EVENTS.to_string());
    let failures = match api::logs::login(
        State(state.api.clone()),
        viewer.caller(),
        Query(chart_params),
    )
    .await
    {
        Ok(Json(p)) => p.events,
        Err(e) => return layout::api_error(e),
    };
    let now = now_ms();
    let to = api::logs::parse_time(f.until.trim(), SystemTime::now()).unwrap_or(now);
    let from = api::logs::parse_time(f.since.trim(), SystemTime::now())
        .or_else(|| {
            failures
                .iter()
                .map(|e| e.time_ms)
                .min()
                .map(|t| t.min(to - 3_600_000))
        })
        .unwrap_or(to - 3_600_000);
    let body = html! {
        h1 { "Login activity" }
        nav.tabs aria-label="Activity" { a href="/ui/activity/logins" aria-current="page" { "Logins" } " " a href="/ui/repositories" { "Repository activity (open a repository)" } }
        form.explainbox method="get" action="/ui/activity/explain" {
            label for="cid" { "Paste a correlation id from an error message" }
            div.row {
                input #cid type="text" name="id" placeholder="e.g. 6f1c2e0a-…" required;
                button type="submit" { "Explain" }
            }
        }
        (chart(&failures, from, to))
        form.filters #login-filters method="get" action="/ui/activity/logins" {
            label.check { input type="checkbox" name="failures" value="1" checked[f.failures()]; " Failures only" }
            label { "Identity " input type="text" name="identity" value=(f.identity) placeholder="name, id or username tried"; }
            label { "Client IP " input type="text" name="ip" value=(f.ip); }
            label { "Since " input type="text" name="since" value=(f.since) placeholder="1h, 7d or RFC 3339"; }
            label { "Until " input type="text" name="until" value=(f.until) placeholder="RFC 3339 or age"; }
            button type="submit" { "Filter" }
        }
        @if page.events.is_empty() { p.muted { "No login events match." } }
        @else {
            div.tablewrap { table #logins {
                thead { tr { th { "Time" } th { "Identity tried" } th { "Client IP" } th { "Operation" } th { "Result" } th { "Reason" } th { "User agent" } } }
                tbody { @for e in &page.events {
                    @let failed = e.result >= 400;
                    @let explain = format!("/ui/activity/explain?id={}", q(&e.correlation_id));
                    tr class=(if failed { "failed" } else { "ok" }) data-href=[failed.then_some(explain.as_str())] {
                        td { @if failed { a href=(explain) { (time_ms(e.time_ms)) } } @else { (time_ms(e.time_ms)) } }
                        td { @match (&e.identity, &e.username) {
                            (Some(i), _) => { (i.kind) " " (i.name) }
                            (None, Some(u)) => { (u) }
                            (None, None) => { span.muted { "none" } }
                        } }
                        td { (e.client_ip.clone().unwrap_or_default()) }
                        td { (e.operation) }
                        td { (e.result) }
                        td.reason { code { (e.reason) } }
                        td.ua { (e.user_agent.clone().unwrap_or_default()) }
                    }
                } }
            } }
            @if let Some(next) = &page.next {
                nav.pager { a href={ "/ui/activity/logins?" (f.query_string(Some(next))) } rel="next" { "Older →" } }
            }
        }
    };
    layout::render(&viewer, Page::Activity, "Login activity", body)
}

fn decision_line(d: &Value) -> String {
    let reason = &d["reason"];
    let mut out = text(&d["result"]);
    if let Some(by) = reason.get("by").and_then(Value::as_str) {
        out.push_str(&format!(" by {by}"));
        let a = &reason["assignment"];
        if let Some(role) = a.get("role").and_then(Value::as_str) {
            out.push_str(&format!(" ({role} on {})", text(&a["scope"])));
        }
        if let Some(map) = reason.get("scope_map").and_then(Value::as_str) {
            out.push_str(&format!(" ({map}: {})", text(&reason["rule"])));
        }
    } else if let Some(code) = reason.get("code").and_then(Value::as_str) {
        out.push_str(&format!(" ({code})"));
    }
    out
}

/// `GET /ui/activity/explain?id=…` query.
#[derive(Deserialize)]
pub struct ExplainQuery {
    #[serde(default)]
    id: String,
}

/// `GET /ui/activity/explain?id=…`: why a request was refused, leading
/// with what to do.
pub async fn explain(
    State(state): State<UiState>,
    viewer: Viewer,
    recorder: Option<axum::Extension<crate::audit::Recorder>>,
    Query(query): Query<ExplainQuery>,
) -> Response {
    if let Err(r) = need_reader(&viewer) {
        return r;
    }
    let id = query.id.trim().to_string();
    if id.is_empty() {
        return Redirect::to("/ui/activity/logins").into_response();
    }
    let record = match api::logs::explain(
        State(state.api.clone()),
        viewer.caller(),
        recorder,
        Path(id.clone()),
    )
    .await
    {
        Ok(Json(r)) => r,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            let body = html! {
                h1 { "No refusal recorded" }
                p { "berth has no refusal with correlation id " code { (id) } ". Only 401 and 403 responses have one, and records older than the audit retention are pruned." }
                p { a href="/ui/activity/logins" { "Back to login activity" } }
            };
            let mut r = layout::render(&viewer, Page::Activity, "Explain", body);
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
        Err(e) => return layout::api_error(e),
    };
    let r = &record.record;
    let d = &r["decided_by"];
    let rule = text(&d["rule"]);
    let fix = fix_for(&rule);
    let recognised = recognised(r);
    let asked = asked(r);
    let granted: Vec<(String, String, bool)> = match r.get("granted") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|g| {
                (
                    action(g),
                    decision_line(&g["decision"]),
                    g["decision"]["result"] == "allowed",
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let detail = serde_json::to_string_pretty(&d["detail"]).unwrap_or_default();
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/activity/logins" { "Login activity" } " / " span { "Explain" } }
        h1 { "Why was this refused?" }
        section.fix #fix role="status" {
            h2 { "What to do" }
            p { (fix.unwrap_or("see the message below; docs/errors.md lists every code")) }
        }
        dl.facts #explain {
            dt { "Refused by" } dd { code #rule { (rule) } " · " code #reason { (text(d.get("reason").unwrap_or(&r["reason"]))) } }
            dt { "Message" } dd #message { (text(&d["message"])) }
            dt { "Recognised" } dd { (recognised) }
            dt { "Asked" } dd { @if asked.is_empty() { "-" } @for a in &asked { div { (a) } } }
            dt { "Each rule decided" } dd {
                @if granted.is_empty() { "nothing was granted" }
                @for (a, dec, ok) in &granted { div class=(if *ok { "allowed" } else { "denied" }) { (a) " → " (dec) } }
            }
            dt { "Request" } dd { (text(&r["method"])) " " code { (text(&r["path"])) } " → " (text(&r["status"])) " from " (text(&r["client_ip"])) }
            @if !r["operation"].is_null() { dt { "Operation" } dd { (text(&r["operation"])) } }
            dt { "Time" } dd { (time_ms(record.time_ms)) }
            dt { "Correlation id" } dd { code { (record.correlation_id) } }
        }
        details { summary { "Decision detail (JSON)" } pre { (detail) } }
        p.muted { "The same record: " code { "berth logs explain " (record.correlation_id) } }
    };
    layout::render(&viewer, Page::Activity, "Explain", body)
}

/// `GET /ui/activity/repository?name=…`.
#[derive(Deserialize)]
pub struct RepoActivityQuery {
    name: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /ui/activity/repository?name=…`: pushes, pulls and deletes.
pub async fn repository(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(query): Query<RepoActivityQuery>,
) -> Response {
    if let Err(r) = need_reader(&viewer) {
        return r;
    }
    let mut params = HashMap::new();
    params.insert("repository".to_string(), query.name.clone());
    if !query.cursor.is_empty() {
        params.insert("cursor".to_string(), query.cursor.clone());
    }
    let page = match api::logs::repository(State(state.api.clone()), viewer.caller(), Query(params))
        .await
    {
        Ok(Json(p)) => p,
        Err(e) => return layout::api_error(e),
    };
    let name = &query.name;
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/repositories" { "Repositories" } " / " a href={ "/ui/repository?name=" (q(name)) } { (name) } " / " span { "Activity" } }
        h1 { "Activity of " (name) }
        @if page.events.is_empty() { p.muted { "No push, pull or delete recorded." } }
        @else {
            div.tablewrap { table #repository-activity {
                thead { tr { th { "Time" } th { "Operation" } th { "Reference" } th { "Who" } th { "Client IP" } th { "Result" } th.num { "Size" } } }
                tbody { @for e in &page.events {
                    tr class=(if e.result >= 400 { "failed" } else { "ok" }) {
                        td { (time_ms(e.time_ms)) }
                        td { (e.operation) }
                        td { @if let Some(t) = &e.tag { span.tag { (t) } " " } @if let Some(d) = &e.digest { code { (short_digest(d)) } } }
                        td { @match &e.identity { Some(i) => { (i.kind) " " (i.name) } None => { span.muted { "anonymous" } } } }
                        td { (e.client_ip.clone().unwrap_or_default()) }
                        td { (e.result) }
                        td.num { @if let Some(s) = e.size { (size(s)) } }
                    }
                } }
            } }
            @if let Some(next) = &page.next {
                nav.pager { a href={ "/ui/activity/repository?name=" (q(name)) "&cursor=" (q(next)) } rel="next" { "Older →" } }
            }
        }
    };
    layout::render(&viewer, Page::Activity, "Repository activity", body)
}
