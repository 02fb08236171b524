//! Garbage collection as the server runs it: on request (`POST /api/v1/gc`)
//! and every `--gc-interval`, with an audit event and metrics per deletion.

use std::sync::Arc;
use std::time::Duration;

use berth_store::audit::{AuditEvent, AuditIdentity, RepositoryEvent};
use berth_store::gc::{DeletionSink, GcDeletion, GcOptions, GcStart};
use berth_store::purge::{PurgeDeletion, PurgeOptions, PurgeReport, PurgeSink};
use berth_store::{Registry, StoreError};

use crate::audit::Recorder;

/// Runs collections with the server's settings.
pub struct GcService {
    registry: Arc<Registry>,
    audit: Option<Recorder>,
    grace: Duration,
}

impl GcService {
    /// A service over `registry`, recording to `audit`, with `grace`
    /// (`--gc-grace`).
    pub fn new(registry: Arc<Registry>, audit: Option<Recorder>, grace: Duration) -> GcService {
        describe();
        GcService {
            registry,
            audit,
            grace,
        }
    }

    /// The grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Run one collection; `requested_by` names the caller (or `interval`),
    /// `identity` is recorded with each deletion's audit event.
    pub async fn run(
        &self,
        dry_run: bool,
        requested_by: &str,
        identity: Option<AuditIdentity>,
    ) -> Result<GcStart, StoreError> {
        let audit = self.audit.clone();
        let sink: DeletionSink = Arc::new(move |d: &GcDeletion| {
            metrics::counter!(DELETED_METRIC, "kind" => kind_label(d)).increment(1);
            if d.kind == berth_store::gc::GcKind::Blob {
                metrics::counter!(BYTES_METRIC).increment(d.size);
            }
            if let Some(rec) = &audit {
                rec.record(AuditEvent::Repository(RepositoryEvent {
                    time_ms: berth_store::now_ms(),
                    correlation_id: String::new(),
                    identity: identity.clone(),
                    client_ip: None,
                    user_agent: None,
                    repository: d.repository.clone().unwrap_or_default(),
                    tag: None,
                    digest: Some(d.digest.clone()),
                    media_type: None,
                    artifact_type: None,
                    size: Some(d.size as i64),
                    operation: d.kind.operation().to_string(),
                    result: 200,
                    duration_ms: 0,
                }));
            }
        });
        let options = GcOptions {
            grace: self.grace,
            dry_run,
            sink: Some(sink),
            requested_by: requested_by.to_string(),
        };
        let res = self.registry.collector().run(&options).await;
        let result = match &res {
            Ok(GcStart::Ran(_)) => "finished",
            Ok(GcStart::Busy(_)) => "busy",
            Err(_) => "failed",
        };
        metrics::counter!(RUNS_METRIC, "result" => result, "dry_run" => if dry_run { "true" } else { "false" })
            .increment(1);
        res
    }

    /// Run a purge (`POST /api/v1/purge`); `identity` is recorded with each
    /// deletion's audit event.
    pub async fn purge(
        &self,
        mut options: PurgeOptions,
        identity: Option<AuditIdentity>,
    ) -> Result<PurgeReport, StoreError> {
        let audit = self.audit.clone();
        let sink: PurgeSink = Arc::new(move |d: &PurgeDeletion| {
            let kind = match d.kind {
                berth_store::purge::PurgeKind::Tag => "tag",
                berth_store::purge::PurgeKind::Manifest => "manifest",
            };
            metrics::counter!(PURGE_DELETED_METRIC, "kind" => kind).increment(1);
            if let Some(rec) = &audit {
                rec.record(AuditEvent::Repository(RepositoryEvent {
                    time_ms: berth_store::now_ms(),
                    correlation_id: String::new(),
                    identity: identity.clone(),
                    client_ip: None,
                    user_agent: None,
                    repository: d.repository.clone(),
                    tag: d.tag.clone(),
                    digest: Some(d.digest.clone()),
                    media_type: None,
                    artifact_type: None,
                    size: Some(d.size as i64),
                    operation: d.kind.operation().to_string(),
                    result: 200,
                    duration_ms: 0,
                }));
            }
        });
        options.sink = Some(sink);
        let dry_run = options.dry_run;
        let res = berth_store::purge::purge(self.registry.meta(), &options).await;
        let result = if res.is_ok() { "finished" } else { "failed" };
        metrics::counter!(PURGE_RUNS_METRIC, "result" => result, "dry_run" => if dry_run { "true" } else { "false" })
            .increment(1);
        res
    }

    /// Collect every `interval` until the process ends (`--gc-interval`).
    pub async fn run_every(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.run(false, "interval", None).await {
                Ok(GcStart::Ran(r)) => {
                    tracing::info!(run = %r.id, links = r.links, blobs = r.blobs,
                    bytes_freed = r.bytes_freed, "scheduled garbage collection finished")
                }
                Ok(GcStart::Busy(_)) => {
                    tracing::info!("scheduled garbage collection skipped: another one is running")
                }
                Err(e) => tracing::warn!(error = %e, "scheduled garbage collection failed"),
            }
        }
    }
}

fn kind_label(d: &GcDeletion) -> &'static str {
    match d.kind {
        berth_store::gc::GcKind::Manifest => "manifest",
        berth_store::gc::GcKind::BlobLink => "blob_link",
        berth_store::gc::GcKind::Blob => "blob",
    }
}

const RUNS_METRIC: &str = "berth_gc_runs_total";
const DELETED_METRIC: &str = "berth_gc_deleted_objects_total";
const BYTES_METRIC: &str = "berth_gc_bytes_freed_total";
const PURGE_RUNS_METRIC: &str = "berth_purge_runs_total";
const PURGE_DELETED_METRIC: &str = "berth_purge_deleted_total";

fn describe() {
    metrics::describe_counter!(
        RUNS_METRIC,
        "Garbage collections by result (finished, busy, failed) and dry_run"
    );
    metrics::describe_counter!(
        DELETED_METRIC,
        "Objects deleted by garbage collection, by kind (manifest, blob_link, blob)"
    );
    metrics::describe_counter!(BYTES_METRIC, "Bytes of blobs deleted by garbage collection");
    metrics::counter!(BYTES_METRIC).increment(0);
    metrics::describe_counter!(
        PURGE_RUNS_METRIC,
        "Purges (berth repository purge) by result (finished, failed) and dry_run"
    );
    metrics::describe_counter!(
        PURGE_DELETED_METRIC,
        "Tags and manifests deleted by purges, by kind (tag, manifest)"
    );
}
