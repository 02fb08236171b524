//! Closed-loop load: N tasks, each with its own connection, issuing one
//! operation after another for a fixed duration or a fixed total count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use indicatif::ProgressBar;
use tokio::sync::Barrier;

use crate::client::Registry;
use crate::conn::Session;
use crate::stats::Samples;

/// How much load to apply.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Concurrent tasks, one connection each.
    pub connections: usize,
    /// Run time when `requests` is `None`.
    pub duration: Duration,
    /// Total operations across all tasks, instead of a duration.
    pub requests: Option<u64>,
    /// Do one untimed operation per connection first (opens the connection).
    pub warm_up: bool,
}

/// One unit of load: runs on the task's own [`Session`] with a global
/// sequence number (`u64::MAX` for the warm-up call) and returns the
/// verified payload bytes it moved.
pub trait Operation: Send + Sync + 'static {
    /// Performs the operation once.
    fn run<'a>(&'a self, session: &'a mut Session, n: u64) -> BoxFuture<'a, anyhow::Result<u64>>;
}

/// A shareable operation.
pub type Op = Arc<dyn Operation>;

/// What a load run produced.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Timed wall-clock span (after warm-up).
    pub elapsed: Duration,
    /// Successful operations.
    pub ok: u64,
    /// Failed operations.
    pub errors: u64,
    /// Payload bytes of successful operations.
    pub bytes: u64,
    /// Latency of every operation, failed ones included.
    pub samples: Samples,
    /// The first few error messages.
    pub error_samples: Vec<String>,
}

const MAX_ERROR_SAMPLES: usize = 5;

/// Runs `op` under `plan` and collects the outcome.
pub async fn run_load(
    registry: &Registry,
    plan: &LoadPlan,
    progress: ProgressBar,
    op: Op,
) -> anyhow::Result<LoadOutcome> {
    let connections = plan.connections.max(1);
    let barrier = Arc::new(Barrier::new(connections + 1));
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut session = Session::new(registry.with_own_connection()?);
        let (barrier, seq, op, progress, plan) = (
            barrier.clone(),
            seq.clone(),
            op.clone(),
            progress.clone(),
            plan.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = LoadOutcome::default();
            if plan.warm_up {
                // Opens this task's connection; its result is not counted.
                let _ = op.run(&mut session, u64::MAX).await;
            }
            barrier.wait().await;
            let deadline = Instant::now() + plan.duration;
            loop {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                match plan.requests {
                    Some(total) if n >= total => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                let t = Instant::now();
                let result = op.run(&mut session, n).await;
                out.samples.record(t.elapsed());
                match result {
                    Ok(bytes) => {
                        out.ok += 1;
                        out.bytes += bytes;
                    }
                    Err(e) => {
                        out.errors += 1;
                        if out.error_samples.len() < MAX_ERROR_SAMPLES {
                            out.error_samples.push(format!("{e:#}"));
                        }
                    }
                }
                progress.inc(1);
            }
            out
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut total = LoadOutcome::default();
    for t in tasks {
        let out = t.await?;
        total.ok += out.ok;
        total.errors += out.errors;
        total.bytes += out.bytes;
        total.samples.merge(out.samples);
        for e in out.error_samples {
            if total.error_samples.len() < MAX_ERROR_SAMPLES {
                total.error_samples.push(e);
            }
        }
    }
    total.elapsed = start.elapsed();
    progress.finish_and_clear();
    Ok(total)
}
