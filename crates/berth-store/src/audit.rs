//! Audit events in the metadata database: login attempts, repository
//! operations and the explain record of each refusal (issue 5).
//!
//! The schema is `migrations/sqlite/0004_audit.sql`. Events are written in
//! batches by the server's background recorder ([`AuditStore::insert`]),
//! read back newest first with filters and id-based pagination, and pruned
//! by age ([`AuditStore::prune`]). The serialised form of the record types
//! is the JSON contract of `GET /api/v1/logs/...` and of the JSON-lines
//! stream (`--audit-log`): snake_case fields, `time` in RFC 3339.

use serde::{Serialize, Serializer};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use utoipa::ToSchema;

use crate::error::StoreError;
use crate::meta::MetaStore;

/// Who was recognised: a principal's kind, id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditIdentity {
    /// Principal kind code (`user`, `service_principal`, `token`, `admin`, …).
    pub kind: String,
    /// Stable id (user id, app id, token name).
    pub id: String,
    /// Display name.
    pub name: String,
}

/// One authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LoginEvent {
    /// When the request arrived, unix milliseconds.
    #[serde(rename = "time", serialize_with = "rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub time_ms: i64,
    /// The request's `X-Correlation-Id`.
    pub correlation_id: String,
    /// The login server the registry answers as.
    pub login_server: String,
    /// The identity recognised, if any.
    pub identity: Option<AuditIdentity>,
    /// The username (or app id) presented, when one was.
    pub username: Option<String>,
    /// Client address as the network rules see it.
    pub client_ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Which login path: `token_get`, `token_post`, `exchange`,
    /// `directory_token`, `v2_basic`, `v2_bearer`, `management`.
    pub operation: String,
    /// HTTP status of the response.
    pub result: u16,
    /// Precise reason code (`ok` on success; see docs/errors.md).
    pub reason: String,
    /// Request duration, milliseconds.
    pub duration_ms: i64,
}

/// The repository-event operation filter that matches both
/// `delete_manifest` and `delete_repository`.
pub const DELETE_ALIAS: &str = "delete";

/// One repository operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RepositoryEvent {
    /// When the request arrived, unix milliseconds.
    #[serde(rename = "time", serialize_with = "rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub time_ms: i64,
    /// The request's `X-Correlation-Id`.
    pub correlation_id: String,
    /// Who did it (`null` for anonymous pulls or with auth disabled).
    pub identity: Option<AuditIdentity>,
    /// Client address.
    pub client_ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// Repository name.
    pub repository: String,
    /// Tag, when the reference was one.
    pub tag: Option<String>,
    /// Manifest digest.
    pub digest: Option<String>,
    /// Manifest media type.
    pub media_type: Option<String>,
    /// Manifest `artifactType` (push).
    pub artifact_type: Option<String>,
    /// Manifest size in bytes.
    pub size: Option<i64>,
    /// `push`, `pull`, `untag`, `delete_manifest` or `delete_repository`.
    pub operation: String,
    /// HTTP status of the response.
    pub result: u16,
    /// Request duration, milliseconds.
    pub duration_ms: i64,
}

/// Why a request was refused, in full, keyed by correlation id.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExplainRecord {
    /// When the request arrived, unix milliseconds.
    #[serde(rename = "time", serialize_with = "rfc3339_ms")]
    #[schema(value_type = String, format = DateTime)]
    pub time_ms: i64,
    /// The request's `X-Correlation-Id`.
    pub correlation_id: String,
    /// `recognised`, `asked`, `granted`, `decided_by`, … (see docs/api.md).
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

/// Anything the recorder writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A login event.
    Login(LoginEvent),
    /// A repository event.
    Repository(RepositoryEvent),
    /// An explain record.
    Explain(ExplainRecord),
}

/// Filters of [`AuditStore::login_events`].
#[derive(Debug, Clone, Default)]
pub struct LoginQuery {
    /// Only events at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Only events before this time (unix ms).
    pub until_ms: Option<i64>,
    /// Identity name or id, or the username tried (case-insensitive).
    pub identity: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Exact HTTP status.
    pub result: Option<u16>,
    /// Only failures (status ≥ 400).
    pub failures: bool,
    /// Operation.
    pub operation: Option<String>,
    /// Only rows with a smaller id (the pagination cursor).
    pub before_id: Option<i64>,
    /// Most rows returned.
    pub limit: i64,
}

/// Filters of [`AuditStore::repository_events`].
#[derive(Debug, Clone, Default)]
pub struct RepositoryQuery {
    /// Only events at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Only events before this time (unix ms).
    pub until_ms: Option<i64>,
    /// Identity name or id (case-insensitive).
    pub identity: Option<String>,
    /// Repository name.
    pub repository: Option<String>,
    /// Operation; [`DELETE_ALIAS`] matches both kinds of deletion.
    pub operation: Option<String>,
    /// Exact HTTP status.
    pub result: Option<u16>,
    /// Only failures (status ≥ 400).
    pub failures: bool,
    /// Only rows with a smaller id (the pagination cursor).
    pub before_id: Option<i64>,
    /// Most rows returned.
    pub limit: i64,
}

/// Rows deleted by [`AuditStore::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Login events.
    pub login: u64,
    /// Repository events.
    pub repository: u64,
    /// Explain records.
    pub explain: u64,
}

/// The audit tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditStore {
    read: AnyPool,
    write: AnyPool,
}

enum Bind {
    Int(i64),
    Text(String),
}

/// A `WHERE` clause built from optional filters with `$N` placeholders.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Filter {
    /// Add `clause`, whose `{}` placeholders each take a fresh `$N` bound to `value`.
    fn add(&mut self, clause: &str, value: Bind) {
        let n = clause.matches("{}").count();
        let mut out = String::new();
        let mut rest = clause;
        for _ in 0..n {
            if let Some((head, tail)) = rest.split_once("{}") {
                out.push_str(head);
                self.binds.push(match &value {
                    Bind::Int(i) => Bind::Int(*i),
                    Bind::Text(s) => Bind::Text(s.clone()),
                });
                out.push_str(&format!("${}", self.binds.len()));
                rest = tail;
            }
        }
        out.push_str(rest);
        self.clauses.push(out);
    }

    fn common(
        &mut self,
        since: Option<i64>,
        until: Option<i64>,
        result: Option<u16>,
        failures: bool,
        before: Option<i64>,
    ) {
        if let Some(t) = since {
            self.add("time_ms >= {}", Bind::Int(t));
        }
        if let Some(t) = until {
            self.add("time_ms < {}", Bind::Int(t));
        }
        if let Some(r) = result {
            self.add("result = {}", Bind::Int(i64::from(r)));
        }
        if failures {
            self.clauses.push("result >= 400".into());
        }
        if let Some(id) = before {
            self.add("id < {}", Bind::Int(id));
        }
    }

    fn sql(&self, select: &str, limit: i64) -> String {
        let mut sql = select.to_string();
        if !self.clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.clauses.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.max(0)));
        sql
    }

    async fn fetch(&self, pool: &AnyPool, sql: &str) -> Result<Vec<AnyRow>, StoreError> {
        let mut q = sqlx::query(sql);
        for b in &self.binds {
            q = match b {
                Bind::Int(i) => q.bind(*i),
                Bind::Text(s) => q.bind(s.clone()),
            };
        }
        Ok(q.fetch_all(pool).await?)
    }
}

const LOGIN_COLUMNS: &str = "SELECT id, time_ms, correlation_id, login_server, identity_kind, \
     identity_id, identity_name, username, client_ip, user_agent, operation, result, reason, \
     duration_ms FROM audit_login_events";

const REPOSITORY_COLUMNS: &str = "SELECT id, time_ms, correlation_id, identity_kind, identity_id, \
     identity_name, client_ip, user_agent, repository, tag, digest, media_type, artifact_type, \
     size, operation, result, duration_ms FROM audit_repository_events";

impl AuditStore {
    /// The audit tables of `meta`'s database.
    pub fn new(meta: &MetaStore) -> Self {
        AuditStore {
            read: meta.read_pool().clone(),
            write: meta.write_pool().clone(),
        }
    }

    /// Store a batch of events in one transaction, one multi-row `INSERT`
    /// per table and chunk (each statement is a round trip to the database
    /// worker, so per-row statements would cost more than the rows).
    pub async fn insert(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut logins = Vec::new();
        let mut repos = Vec::new();
        let mut explains = Vec::new();
        for e in events {
            match e {
                AuditEvent::Login(l) => logins.push(l),
                AuditEvent::Repository(r) => repos.push(r),
                AuditEvent::Explain(x) => explains.push(x),
            }
        }
        let mut tx = self.write.begin().await?;
        for chunk in chunks(&logins) {
            let sql = format!(
                "INSERT INTO audit_login_events (time_ms, correlation_id, login_server, \
                 identity_kind, identity_id, identity_name, username, client_ip, user_agent, \
                 operation, result, reason, duration_ms) VALUES {}",
                values_clause(chunk.len(), 13)
            );
            let mut q = sqlx::query(&sql);
            for l in chunk {
                let (kind, id, name) = identity_columns(&l.identity);
                q = q
                    .bind(l.time_ms)
                    .bind(l.correlation_id.clone())
                    .bind(l.login_server.clone())
                    .bind(kind)
                    .bind(id)
                    .bind(name)
                    .bind(l.username.clone())
                    .bind(l.client_ip.clone())
                    .bind(l.user_agent.clone())
                    .bind(l.operation.clone())
                    .bind(i64::from(l.result))
                    .bind(l.reason.clone())
                    .bind(l.duration_ms);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in chunks(&repos) {
            let sql = format!(
                "INSERT INTO audit_repository_events (time_ms, correlation_id, identity_kind, \
                 identity_id, identity_name, client_ip, user_agent, repository, tag, digest, \
                 media_type, artifact_type, size, operation, result, duration_ms) VALUES {}",
                values_clause(chunk.len(), 16)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                let (kind, id, name) = identity_columns(&r.identity);
                q = q
                    .bind(r.time_ms)
                    .bind(r.correlation_id.clone())
                    .bind(kind)
                    .bind(id)
                    .bind(name)
                    .bind(r.client_ip.clone())
                    .bind(r.user_agent.clone())
                    .bind(r.repository.clone())
                    .bind(r.tag.clone())
                    .bind(r.digest.clone())
                    .bind(r.media_type.clone())
                    .bind(r.artifact_type.clone())
                    .bind(r.size)
                    .bind(r.operation.clone())
                    .bind(i64::from(r.result))
                    .bind(r.duration_ms);
            }
            q.execute(&mut *tx).await?;
        }
        // Correlation ids are unique per request; the upsert only guards
        // against a replayed batch.
        for x in explains {
            sqlx::query(
                "INSERT INTO audit_explain (correlation_id, time_ms, record) \
                 VALUES ($1, $2, $3) ON CONFLICT (correlation_id) DO UPDATE \
                 SET record = excluded.record",
            )
            .bind(x.correlation_id.clone())
            .bind(x.time_ms)
            .bind(x.record.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Login events matching `q`, newest first, with their row ids (the
    /// pagination cursor).
    pub async fn login_events(&self, q: &LoginQuery) -> Result<Vec<(i64, LoginEvent)>, StoreError> {
        let mut f = Filter::default();
        f.common(q.since_ms, q.until_ms, q.result, q.failures, q.before_id);
        if let Some(who) = &q.identity {
            f.add(
                "(LOWER(identity_name) = LOWER({}) OR LOWER(identity_id) = LOWER({}) \
                 OR LOWER(username) = LOWER({}))",
                Bind::Text(who.clone()),
            );
        }
        if let Some(ip) = &q.ip {
            f.add("client_ip = {}", Bind::Text(ip.clone()));
        }
        if let Some(op) = &q.operation {
            f.add("operation = {}", Bind::Text(op.clone()));
        }
        let rows = f.fetch(&self.read, &f.sql(LOGIN_COLUMNS, q.limit)).await?;
        rows.iter().map(login_row).collect()
    }

    /// Repository events matching `q`, newest first, with their row ids.
    pub async fn repository_events(
        &self,
        q: &RepositoryQuery,
    ) -> Result<Vec<(i64, RepositoryEvent)>, StoreError> {
        let mut f = Filter::default();
        f.common(q.since_ms, q.until_ms, q.result, q.failures, q.before_id);
        if let Some(who) = &q.identity {
            f.add(
                "(LOWER(identity_name) = LOWER({}) OR LOWER(identity_id) = LOWER({}))",
                Bind::Text(who.clone()),
            );
        }
        if let Some(r) = &q.repository {
            f.add("repository = {}", Bind::Text(r.clone()));
        }
        match q.operation.as_deref() {
            None => {}
            // `delete` (issue 5's spelling) = both kinds of deletion.
            Some(DELETE_ALIAS) => f
                .clauses
                .push("operation IN ('delete_manifest', 'delete_repository')".into()),
            Some(op) => f.add("operation = {}", Bind::Text(op.to_string())),
        }
        let rows = f
            .fetch(&self.read, &f.sql(REPOSITORY_COLUMNS, q.limit))
            .await?;
        rows.iter().map(repository_row).collect()
    }

    /// The explain record of a refused request.
    pub async fn explain(&self, correlation_id: &str) -> Result<Option<ExplainRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT correlation_id, time_ms, record FROM audit_explain WHERE correlation_id = $1",
        )
        .bind(correlation_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(2)?;
        let record = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("stored explain record is not JSON: {e}"))?;
        Ok(Some(ExplainRecord {
            correlation_id: row.try_get(0)?,
            time_ms: row.try_get(1)?,
            record,
        }))
    }

    /// Delete everything recorded before `before_ms` (unix ms).
    pub async fn prune(&self, before_ms: i64) -> Result<Pruned, StoreError> {
        let mut tx = self.write.begin().await?;
        let mut counts = [0u64; 3];
        for (i, table) in [
            "audit_login_events",
            "audit_repository_events",
            "audit_explain",
        ]
        .iter()
        .enumerate()
        {
            let sql = format!("DELETE FROM {table} WHERE time_ms < $1");
            counts[i] = sqlx::query(&sql)
                .bind(before_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(Pruned {
            login: counts[0],
            repository: counts[1],
            explain: counts[2],
        })
    }
}

/// Most rows per multi-row `INSERT`. Small on purpose: SQLite looks up
/// each `$N` parameter by name in a list, so binding costs grow with the
/// square of the parameters per statement; 8 rows (≤128 parameters) keep
/// both that and the round trips per row low.
const ROWS_PER_STATEMENT: usize = 8;

/// Split `rows` into chunks whose sizes are powers of two (8, 4, 2, 1),
/// so that only a handful of distinct statements exist and the
/// connection's statement cache keeps them prepared.
fn chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let mut n = ROWS_PER_STATEMENT;
        while n > rest.len() {
            n /= 2;
        }
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// `($1, $2, …), ($n+1, …)` for `rows` rows of `cols` columns.
fn values_clause(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * cols + c + 1));
        }
        out.push(')');
    }
    out
}

type IdentityColumns = (Option<String>, Option<String>, Option<String>);

fn identity_columns(identity: &Option<AuditIdentity>) -> IdentityColumns {
    match identity {
        Some(i) => (
            Some(i.kind.clone()),
            Some(i.id.clone()),
            Some(i.name.clone()),
        ),
        None => (None, None, None),
    }
}

/// The identity stored in columns `at`, `at + 1`, `at + 2`.
fn identity_at(row: &AnyRow, at: usize) -> Result<Option<AuditIdentity>, StoreError> {
    let kind: Option<String> = row.try_get(at)?;
    let id: Option<String> = row.try_get(at + 1)?;
    let name: Option<String> = row.try_get(at + 2)?;
    Ok(match (kind, id, name) {
        (Some(kind), Some(id), Some(name)) => Some(AuditIdentity { kind, id, name }),
        _ => None,
    })
}

fn status(row: &AnyRow, at: usize) -> Result<u16, StoreError> {
    let v: i64 = row.try_get(at)?;
    Ok(u16::try_from(v).unwrap_or(0))
}

fn login_row(row: &AnyRow) -> Result<(i64, LoginEvent), StoreError> {
    Ok((
        row.try_get(0)?,
        LoginEvent {
            time_ms: row.try_get(1)?,
            correlation_id: row.try_get(2)?,
            login_server: row.try_get(3)?,
            identity: identity_at(row, 4)?,
            username: row.try_get(7)?,
            client_ip: row.try_get(8)?,
            user_agent: row.try_get(9)?,
            operation: row.try_get(10)?,
            result: status(row, 11)?,
            reason: row.try_get(12)?,
            duration_ms: row.try_get(13)?,
        },
    ))
}

fn repository_row(row: &AnyRow) -> Result<(i64, RepositoryEvent), StoreError> {
    Ok((
        row.try_get(0)?,
        RepositoryEvent {
            time_ms: row.try_get(1)?,
            correlation_id: row.try_get(2)?,
            identity: identity_at(row, 3)?,
            client_ip: row.try_get(6)?,
            user_agent: row.try_get(7)?,
            repository: row.try_get(8)?,
            tag: row.try_get(9)?,
            digest: row.try_get(10)?,
            media_type: row.try_get(11)?,
            artifact_type: row.try_get(12)?,
            size: row.try_get(13)?,
            operation: row.try_get(14)?,
            result: status(row, 15)?,
            duration_ms: row.try_get(16)?,
        },
    ))
}

/// Serialise unix milliseconds as RFC 3339 with milliseconds (UTC).
pub fn rfc3339_ms<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(*ms).unwrap_or(0));
    s.collect_str(&humantime::format_rfc3339_millis(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(t: i64, user: &str, result: u16) -> AuditEvent {
        AuditEvent::Login(LoginEvent {
            time_ms: t,
            correlation_id: format!("c-{t}"),
            login_server: "r.example".into(),
            identity: None,
            username: Some(user.into()),
            client_ip: Some("10.0.0.1".into()),
            user_agent: None,
            operation: "token_get".into(),
            result,
            reason: if result == 200 { "ok" } else { "bad_secret" }.into(),
            duration_ms: 1,
        })
    }

    #[test]
    fn values_clause_numbers_every_parameter() {
        assert_eq!(values_clause(2, 2), "($1, $2), ($3, $4)");
        let rows: Vec<u8> = vec![0; 200];
        let sizes: Vec<usize> = chunks(&rows).iter().map(|c| c.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(sizes
            .iter()
            .all(|s| s.is_power_of_two() && *s <= ROWS_PER_STATEMENT));
    }

    #[tokio::test]
    async fn insert_query_paginate_prune_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        insert_query_paginate_prune(&meta).await;
    }

    #[tokio::test]
    async fn insert_query_paginate_prune_postgres() {
        let pg = berth_testpg::PgServer::start();
        let url = crate::DatabaseUrl::parse(&pg.create_database()).expect("url");
        let meta = MetaStore::open_postgres(&url).await.expect("open");
        insert_query_paginate_prune(&meta).await;
    }

    async fn insert_query_paginate_prune(meta: &MetaStore) {
        let store = AuditStore::new(meta);
        let events: Vec<AuditEvent> = (1..=5)
            .map(|i| login(i * 1000, if i % 2 == 0 { "Bob" } else { "amy" }, 401))
            .chain([login(6000, "amy", 200)])
            .collect();
        store.insert(&events).await.expect("insert");
        let q = LoginQuery {
            failures: true,
            limit: 2,
            ..Default::default()
        };
        let page = store.login_events(&q).await.expect("query");
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].1.time_ms, 5000, "newest first, successes filtered");
        let next = store
            .login_events(&LoginQuery {
                before_id: Some(page[1].0),
                ..q.clone()
            })
            .await
            .expect("page 2");
        assert_eq!(next[0].1.time_ms, 3000);
        let bob = store
            .login_events(&LoginQuery {
                identity: Some("bob".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("bob");
        assert_eq!(bob.len(), 2);
        let pruned = store.prune(3500).await.expect("prune");
        assert_eq!(pruned.login, 3);
        let json = serde_json::to_value(&bob[0].1).expect("json");
        assert_eq!(json["time"], "1970-01-01T00:00:04.000Z");
        assert_eq!(json["reason"], "bad_secret");
    }

    fn repo_event(t: i64, operation: &str) -> AuditEvent {
        AuditEvent::Repository(RepositoryEvent {
            time_ms: t,
            correlation_id: format!("r-{t}"),
            identity: None,
            client_ip: None,
            user_agent: None,
            repository: "app".into(),
            tag: None,
            digest: None,
            media_type: None,
            artifact_type: None,
            size: None,
            operation: operation.into(),
            result: 202,
            duration_ms: 1,
        })
    }

    #[tokio::test]
    async fn delete_matches_both_deletions_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        delete_matches_both_deletions(&meta).await;
    }

    #[tokio::test]
    async fn delete_matches_both_deletions_postgres() {
        let pg = berth_testpg::PgServer::start();
        let url = crate::DatabaseUrl::parse(&pg.create_database()).expect("url");
        let meta = MetaStore::open_postgres(&url).await.expect("open");
        delete_matches_both_deletions(&meta).await;
    }

    async fn delete_matches_both_deletions(meta: &MetaStore) {
        let store = AuditStore::new(meta);
        let ops = ["push", "delete_manifest", "untag", "delete_repository"];
        let events: Vec<AuditEvent> = ops
            .iter()
            .zip(1..)
            .map(|(op, t)| repo_event(t, op))
            .collect();
        store.insert(&events).await.expect("insert");
        let found = |op: &str| {
            let q = RepositoryQuery {
                operation: Some(op.into()),
                limit: 10,
                ..Default::default()
            };
            let store = store.clone();
            async move {
                let rows = store.repository_events(&q).await.expect("query");
                rows.into_iter()
                    .map(|(_, e)| e.operation)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            found(DELETE_ALIAS).await,
            ["delete_repository", "delete_manifest"]
        );
        assert_eq!(found("untag").await, ["untag"]);
        assert!(found("delet").await.is_empty());
    }
}
