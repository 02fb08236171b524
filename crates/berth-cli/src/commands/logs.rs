//! `berth logs login|repository|explain`: the registry's audit events
//! (`GET /api/v1/logs/...`, Reader role or above).

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::explain_view;
use crate::mgmt::{seg, Common, Ctx};
use crate::output::Format;

/// Table columns of `berth logs login`.
const LOGIN_COLUMNS: &[&str] = &[
    "time",
    "identity",
    "clientIp",
    "operation",
    "result",
    "reason",
    "correlationId",
];

/// Table columns of `berth logs repository`.
const REPOSITORY_COLUMNS: &[&str] = &[
    "time",
    "identity",
    "clientIp",
    "repository",
    "tag",
    "digest",
    "operation",
    "result",
    "correlationId",
];

/// The registry's audit events.
#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: LogsVerb,
}

#[derive(Subcommand, Debug)]
enum LogsVerb {
    /// Login events: every authentication attempt, newest first.
    Login {
        #[command(flatten)]
        filters: Filters,
        /// Only attempts from this client IP.
        #[arg(long)]
        ip: Option<String>,
        /// Only this login path: token_get, token_post, exchange,
        /// directory_token, v2_basic, v2_bearer, v2_anonymous,
        /// v2_malformed, management.
        #[arg(long)]
        operation: Option<String>,
    },
    /// Repository events (push, pull, untag, deletions), newest first.
    Repository {
        #[command(flatten)]
        filters: Filters,
        /// Only this repository.
        #[arg(long)]
        repository: Option<String>,
        /// Only this operation: push, pull, untag, delete_manifest,
        /// delete_repository, delete (both deletions), gc_unlink_blob or
        /// gc_delete_blob.
        #[arg(long)]
        operation: Option<String>,
    },
    /// Why a request was refused: who was recognised, what was asked, what
    /// was granted and which rule decided.
    Explain {
        /// The refusal's correlation id (`X-Correlation-Id`, also at the end
        /// of the refusal's message).
        correlation_id: String,
    },
}

/// Filters and paging both event lists take.
#[derive(Args, Debug)]
struct Filters {
    /// Events at or after this time: RFC 3339 (2026-01-31T08:00:00Z) or an
    /// age (90s, 15m, 1h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Events before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// Only this identity (name or id; for login events also the username
    /// tried).
    #[arg(long)]
    identity: Option<String>,
    /// Only this HTTP status, e.g. 401.
    #[arg(long)]
    result: Option<u16>,
    /// Only failures (status 400 or above).
    #[arg(long)]
    failures: bool,
    /// Events per page, 1-1000 (server default 100).
    #[arg(long)]
    limit: Option<u32>,
    /// Follow the `next` cursors and print every page, not only the first.
    #[arg(long)]
    all: bool,
}

impl Filters {
    /// The query parameters, `extra` included (unset ones left out).
    fn query(&self, extra: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                q.push((k.to_string(), v));
            }
        };
        put("since", self.since.clone());
        put("until", self.until.clone());
        put("identity", self.identity.clone());
        put("result", self.result.map(|r| r.to_string()));
        put("failures", self.failures.then(|| "true".to_string()));
        put("limit", self.limit.map(|l| l.to_string()));
        for (k, v) in extra {
            put(k, v.map(str::to_string));
        }
        q
    }
}

/// `path?k=v&...`, values escaped.
fn with_query(path: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let parts: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", seg(v)))
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// Fetch one page, or every page with `all`: `{"events": [...], "next"}`
/// where `next` is the cursor after the last page fetched.
async fn fetch(
    ctx: &Ctx,
    path: &str,
    mut query: Vec<(String, String)>,
    all: bool,
) -> anyhow::Result<Value> {
    let mut events = Vec::new();
    loop {
        let page = ctx
            .call(Method::GET, &with_query(path, &query), None)
            .await?
            .unwrap_or(Value::Null);
        if let Some(list) = page.get("events").and_then(Value::as_array) {
            events.extend(list.iter().cloned());
        }
        let next = page.get("next").and_then(Value::as_str).map(str::to_string);
        match next {
            Some(cursor) if all => {
                query.retain(|(k, _)| k != "cursor");
                query.push(("cursor".into(), cursor));
            }
            next => return Ok(json!({ "events": events, "next": next })),
        }
    }
}

/// One event as a table row: the identity's name (else the username
/// tried), camelCase keys.
fn row(event: &Value) -> Value {
    let mut out = Map::new();
    if let Some(m) = event.as_object() {
        for (k, v) in m {
            out.insert(camel(k), v.clone());
        }
    }
    let who = event
        .get("identity")
        .and_then(|i| i.get("name"))
        .or_else(|| event.get("username"))
        .cloned()
        .unwrap_or(Value::Null);
    out.insert("identity".into(), who);
    Value::Object(out)
}

/// `correlation_id` → `correlationId`.
fn camel(key: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Print a fetched list: the envelope as JSON, else one row per event.
fn print_events(ctx: &Ctx, fetched: &Value, columns: &[&str]) {
    if ctx.format() == Format::Json {
        ctx.print(fetched, columns);
        return;
    }
    let rows: Vec<Value> = fetched["events"]
        .as_array()
        .map(|a| a.iter().map(row).collect())
        .unwrap_or_default();
    ctx.print(&Value::Array(rows), columns);
    if !fetched["next"].is_null() {
        eprintln!("more events: pass --all to fetch every page");
    }
}

/// Run a `berth logs` verb.
pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let ctx = Ctx::open(&args.common).await?;
    match args.verb {
        LogsVerb::Login {
            filters,
            ip,
            operation,
        } => {
            let q = filters.query(&[("ip", ip.as_deref()), ("operation", operation.as_deref())]);
            let fetched = fetch(&ctx, "logs/login", q, filters.all).await?;
            print_events(&ctx, &fetched, LOGIN_COLUMNS);
        }
        LogsVerb::Repository {
            filters,
            repository,
            operation,
        } => {
            let q = filters.query(&[
                ("repository", repository.as_deref()),
                ("operation", operation.as_deref()),
            ]);
            let fetched = fetch(&ctx, "logs/repository", q, filters.all).await?;
            print_events(&ctx, &fetched, REPOSITORY_COLUMNS);
        }
        LogsVerb::Explain { correlation_id } => {
            let path = format!("logs/explain/{}", seg(&correlation_id));
            let record = ctx
                .call(Method::GET, &path, None)
                .await?
                .unwrap_or(Value::Null);
            match ctx.format() {
                Format::Json => ctx.print(&record, &[]),
                _ => print!("{}", explain_view::render(&record)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_queries() {
        let e = json!({"correlation_id": "c1", "client_ip": "10.0.0.1",
                       "identity": null, "username": "ghost"});
        let r = row(&e);
        assert_eq!(r["correlationId"], "c1");
        assert_eq!(r["clientIp"], "10.0.0.1");
        assert_eq!(r["identity"], "ghost");
        let e =
            json!({"identity": {"kind": "user", "id": "u1", "name": "alice"}, "username": "alice"});
        assert_eq!(row(&e)["identity"], "alice");
        let q = vec![
            ("since".to_string(), "1h".to_string()),
            ("until".to_string(), "2026-01-31T08:00:00+01:00".to_string()),
        ];
        assert_eq!(
            with_query("logs/login", &q),
            "logs/login?since=1h&until=2026-01-31T08%3A00%3A00%2B01%3A00"
        );
        assert_eq!(with_query("logs/login", &[]), "logs/login");
    }
}
