//! The audit recorder: a bounded channel in front of one background writer
//! task, so requests never wait for the database.
//!
//! Requests hand events to [`Recorder::record`], which never blocks: when
//! the buffer is full the event is counted in
//! `berth_audit_events_dropped_total{cause="buffer_full"}` and a warning is
//! logged. The writer collects up to [`BATCH`] events (waiting at most
//! 20 ms after the first when fewer are buffered, not at all when a full
//! batch is waiting) and inserts them in transactions of at most
//! [`TX_EVENTS`] (so a push waiting for the single SQLite writer gets it
//! between two of them, not after the whole batch), then appends them
//! to the JSON-lines stream when one is configured. [`RecorderTask::shutdown`] closes the channel and
//! writes what is still buffered. A second task prunes events older than
//! the retention period, at start and then hourly.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_store::audit::{AuditEvent, AuditStore};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Events buffered between requests and the writer (a few MiB at most).
pub const DEFAULT_CAPACITY: usize = 16_384;
/// Most events the writer takes from the buffer at once (one wake-up, one
/// stream write; inserted in transactions of [`TX_EVENTS`]).
pub const BATCH: usize = 2048;
/// Most events inserted in one transaction. The writer connection is
/// shared with pushes and manifest PUTs (SQLite has one writer), and its
/// pool hands it out first come, first served, so this bounds how long a
/// push waits behind the audit log under load.
pub const TX_EVENTS: usize = 256;
/// Longest time the writer waits to fill a batch after its first event.
const LINGER: Duration = Duration::from_millis(20);
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Name of the drop counter.
pub const DROPPED_METRIC: &str = "berth_audit_events_dropped_total";

/// Where the JSON-lines copy of the events goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamTarget {
    /// Standard output (`--audit-log -`).
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

impl StreamTarget {
    /// `-` is stdout, anything else a path.
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            StreamTarget::Stdout
        } else {
            StreamTarget::File(PathBuf::from(s))
        }
    }
}

/// Settings of the recorder.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The login server recorded in login events.
    pub login_server: String,
    /// Events older than this many days are deleted.
    pub retention_days: u32,
    /// Optional JSON-lines stream.
    pub stream: Option<StreamTarget>,
    /// Buffer size.
    pub capacity: usize,
}

/// The sending side: cheap to clone, shared by every request.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<AuditEvent>,
    login_server: Arc<str>,
    dropped: Arc<AtomicU64>,
    /// Events accepted into the buffer since start.
    queued: Arc<AtomicU64>,
    /// Events the writer has finished with (written, or counted as a
    /// failed write) since start.
    done: watch::Receiver<u64>,
}

impl Recorder {
    /// Queue an event for the writer; never waits. A full buffer counts a
    /// drop and logs a warning.
    pub fn record(&self, event: AuditEvent) {
        // Counted before the send so that a flush never waits for less
        // than what is in the buffer (the writer may count it first).
        self.queued.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.tx.try_send(event) {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            let cause = match e {
                mpsc::error::TrySendError::Full(_) => "buffer_full",
                mpsc::error::TrySendError::Closed(_) => "shutting_down",
            };
            self.count_drop(cause, 1);
        }
    }

    fn count_drop(&self, cause: &'static str, n: u64) {
        metrics::counter!(DROPPED_METRIC, "cause" => cause).increment(n);
        let before = self.dropped.fetch_add(n, Ordering::Relaxed);
        // Warn on the first drop and then every 1000 so a flood does not
        // become a flood of warnings too.
        if before / 1000 != (before + n) / 1000 || before == 0 {
            tracing::warn!(cause, dropped_total = before + n, "audit events dropped");
        }
    }

    /// Wait (at most `timeout`) until every event recorded before this call
    /// has been written, so a read right after a refusal finds it (the
    /// writer lingers up to 20 ms to fill a batch). Returns whether it
    /// caught up.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let target = self.queued.load(Ordering::SeqCst);
        let mut done = self.done.clone();
        tokio::time::timeout(timeout, done.wait_for(|n| *n >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The login server recorded in login events.
    pub fn login_server(&self) -> &str {
        &self.login_server
    }

    /// Events dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The background tasks; [`shutdown`](RecorderTask::shutdown) flushes.
pub struct RecorderTask {
    stop: oneshot::Sender<()>,
    writer: JoinHandle<()>,
    pruner: JoinHandle<()>,
}

impl RecorderTask {
    /// Stop accepting events, write everything buffered, stop pruning.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.writer.await {
            tracing::error!(error = %e, "audit writer task failed");
        }
        self.pruner.abort();
    }
}

/// Start the writer and the pruner.
pub async fn start(
    store: AuditStore,
    config: AuditConfig,
) -> anyhow::Result<(Recorder, RecorderTask)> {
    let (tx, rx) = mpsc::channel(config.capacity.max(1));
    let stream = match &config.stream {
        None => None,
        Some(StreamTarget::Stdout) => Some(Stream::Stdout(tokio::io::stdout())),
        Some(StreamTarget::File(p)) => Some(Stream::File(
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .await
                .map_err(|e| anyhow::anyhow!("opening audit log {}: {e}", p.display()))?,
        )),
    };
    let (done_tx, done) = watch::channel(0u64);
    let recorder = Recorder {
        tx,
        login_server: Arc::from(config.login_server.as_str()),
        dropped: Arc::default(),
        queued: Arc::default(),
        done,
    };
    let (stop, stop_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(
        store.clone(),
        rx,
        stop_rx,
        stream,
        recorder.clone(),
        done_tx,
    ));
    let pruner = tokio::spawn(prune_loop(store, config.retention_days));
    Ok((
        recorder,
        RecorderTask {
            stop,
            writer,
            pruner,
        },
    ))
}

enum Stream {
    Stdout(tokio::io::Stdout),
    File(tokio::fs::File),
}

impl Stream {
    async fn write(&mut self, events: &[AuditEvent]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for e in events {
            serde_json::to_writer(&mut buf, e).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        match self {
            Stream::Stdout(s) => {
                s.write_all(&buf).await?;
                s.flush().await
            }
            Stream::File(f) => {
                f.write_all(&buf).await?;
                f.flush().await
            }
        }
    }
}

async fn write_loop(
    store: AuditStore,
    mut rx: mpsc::Receiver<AuditEvent>,
    mut stop: oneshot::Receiver<()>,
    mut stream: Option<Stream>,
    recorder: Recorder,
    done: watch::Sender<u64>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut stopping = false;
    loop {
        let first = if stopping {
            rx.recv().await
        } else {
            tokio::select! {
                e = rx.recv() => e,
                _ = &mut stop => {
                    // No new events; what is buffered is still written.
                    stopping = true;
                    rx.close();
                    rx.recv().await
                }
            }
        };
        let Some(first) = first else { break };
        batch.push(first);
        drain(&mut rx, &mut batch);
        // A quiet moment: linger briefly, without waking per event, so
        // that a trickle becomes few large transactions (one commit, one
        // fsync each) instead of many small ones. A backlog is written at
        // once: the writer lingers only when the batch is not full, so
        // under load it writes back to back at the database's pace.
        if !stopping && batch.len() < BATCH {
            tokio::time::sleep(LINGER).await;
            drain(&mut rx, &mut batch);
        }
        for chunk in batch.chunks(TX_EVENTS) {
            if let Err(e) = store.insert(chunk).await {
                tracing::error!(error = %e, events = chunk.len(), "writing audit events failed");
                recorder.count_drop("write_failed", chunk.len() as u64);
            }
        }
        if let Some(s) = stream.as_mut() {
            if let Err(e) = s.write(&batch).await {
                tracing::error!(error = %e, "writing the audit log stream failed");
            }
        }
        let n = batch.len() as u64;
        done.send_modify(|d| *d += n);
        batch.clear();
    }
}

/// Move what is buffered into `batch`, up to [`BATCH`] events.
fn drain(rx: &mut mpsc::Receiver<AuditEvent>, batch: &mut Vec<AuditEvent>) {
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(e) => batch.push(e),
            Err(_) => break,
        }
    }
}

async fn prune_loop(store: AuditStore, days: u32) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tick.tick().await;
        let cutoff = berth_store::now_ms() - i64::from(days) * 86_400_000;
        match store.prune(cutoff).await {
            Ok(p) if p.login + p.repository + p.explain > 0 => tracing::info!(
                login = p.login,
                repository = p.repository,
                explain = p.explain,
                "pruned old audit events"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning audit events failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_store::audit::ExplainRecord;

    use super::*;

    fn event(n: i64) -> AuditEvent {
        AuditEvent::Explain(ExplainRecord {
            time_ms: n,
            correlation_id: n.to_string(),
            record: serde_json::Value::Null,
        })
    }

    #[test]
    fn a_full_buffer_counts_drops_instead_of_blocking() {
        let (tx, mut rx) = mpsc::channel(2);
        let (_done_tx, done) = watch::channel(0);
        let recorder = Recorder {
            tx,
            login_server: Arc::from("r.example"),
            dropped: Arc::default(),
            queued: Arc::default(),
            done,
        };
        for n in 0..5 {
            recorder.record(event(n));
        }
        assert_eq!(recorder.dropped(), 3);
        assert!(rx.try_recv().is_ok());
        recorder.record(event(9));
        assert_eq!(recorder.dropped(), 3, "room again after a receive");
    }

    #[tokio::test]
    async fn shutdown_writes_what_is_buffered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = berth_store::meta::MetaStore::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        let store = AuditStore::new(&meta);
        let (recorder, task) = start(
            store.clone(),
            AuditConfig {
                login_server: "r.example".into(),
                retention_days: 30,
                stream: None,
                capacity: 1024,
            },
        )
        .await
        .expect("start");
        let now = berth_store::now_ms();
        for n in 0..600 {
            recorder.record(event(now + n));
        }
        task.shutdown().await;
        for n in [0, 299, 599] {
            let id = (now + n).to_string();
            assert!(
                store.explain(&id).await.expect("query").is_some(),
                "event {n} was not written before shutdown returned"
            );
        }
        assert_eq!(recorder.dropped(), 0);
    }
}
