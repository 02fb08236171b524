//! Structured results and their human (table) and machine (JSON) forms.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::stats::Latency;
use crate::sysmon::ServerUsage;

/// The results of one `berth bench` run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Registry base URL that was measured.
    pub registry: String,
    /// How the registry authenticates (`open`, `basic`, `bearer`).
    pub auth: String,
    /// Unix time the run started.
    pub started_unix: u64,
    /// Logical CPUs of the machine running the client.
    pub client_cpus: usize,
    /// One entry per scenario, in run order.
    pub scenarios: Vec<ScenarioReport>,
}

/// Outcome of one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ran; see the measurements' error counts.
    Ok,
    /// Not applicable to this registry (message says why).
    Skipped,
    /// Setup failed; nothing was measured (counts as one error).
    Failed,
}

/// Results of one scenario: one or more measurements.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Scenario name as given to `--scenario`.
    pub scenario: String,
    /// Whether it ran.
    pub status: Status,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The timed parts.
    pub measurements: Vec<Measurement>,
}

/// One timed phase (e.g. "by-tag c=32").
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Measurement {
    /// Short label, unique within its scenario.
    pub name: String,
    /// Concurrent connections or transfers, where meaningful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Wall-clock time of the timed phase.
    pub duration_s: f64,
    /// Completed operations (requests, blobs or images: see `unit`).
    pub requests: u64,
    /// What one counted operation is (`request`, `blob`, `image`, `page`, `token`).
    pub unit: String,
    /// Verified payload bytes moved.
    pub bytes: u64,
    /// Failed operations (including verification mismatches).
    pub errors: u64,
    /// `requests / duration_s`.
    pub requests_per_s: f64,
    /// `bytes / duration_s`.
    pub bytes_per_s: f64,
    /// Per-operation latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Server usage, with `--server-pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerUsage>,
    /// CPU seconds this client spent (to spot a client-bound run).
    pub client_cpu_s: f64,
    /// The first few error messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

impl Report {
    /// Errors across all scenarios; a failed scenario counts as one.
    pub fn total_errors(&self) -> u64 {
        self.scenarios
            .iter()
            .map(|s| {
                let failed = u64::from(s.status == Status::Failed);
                failed + s.measurements.iter().map(|m| m.errors).sum::<u64>()
            })
            .sum()
    }

    /// The scenario named `name`, if it ran.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioReport> {
        self.scenarios.iter().find(|s| s.scenario == name)
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A fixed-width table for people.
    pub fn to_table(&self) -> String {
        let header = [
            "scenario", "case", "conc", "time", "ops", "ops/s", "MiB/s", "p50 ms", "p90 ms",
            "p99 ms", "errors", "srv RSS", "srv CPU", "cli CPU",
        ];
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut notes = Vec::new();
        for s in &self.scenarios {
            match s.status {
                Status::Ok => {}
                Status::Skipped | Status::Failed => {
                    let msg = s.message.as_deref().unwrap_or_default();
                    let text = if s.status == Status::Failed {
                        format!("FAILED: {msg}")
                    } else {
                        msg.to_owned()
                    };
                    let mut row = vec![s.scenario.clone(), text];
                    row.resize(header.len(), String::new());
                    rows.push(row);
                    continue;
                }
            }
            if let Some(note) = &s.message {
                notes.push(format!("{}: {note}", s.scenario));
            }
            for m in &s.measurements {
                let lat = |f: fn(&Latency) -> f64| {
                    m.latency
                        .as_ref()
                        .map(|l| format!("{:.2}", f(l)))
                        .unwrap_or_default()
                };
                rows.push(vec![
                    s.scenario.clone(),
                    m.name.clone(),
                    m.concurrency.map(|c| c.to_string()).unwrap_or_default(),
                    format!("{:.2}s", m.duration_s),
                    format!("{} {}", m.requests, m.unit),
                    format!("{:.1}", m.requests_per_s),
                    if m.bytes > 0 {
                        format!("{:.1}", m.bytes_per_s / (1024.0 * 1024.0))
                    } else {
                        String::new()
                    },
                    lat(|l| l.p50_ms),
                    lat(|l| l.p90_ms),
                    lat(|l| l.p99_ms),
                    m.errors.to_string(),
                    m.server
                        .as_ref()
                        .map(|u| format!("{:.0} MiB", u.peak_rss_bytes as f64 / 1048576.0))
                        .unwrap_or_default(),
                    m.server
                        .as_ref()
                        .map(|u| format!("{:.2}s", u.cpu_seconds))
                        .unwrap_or_default(),
                    format!("{:.2}s", m.client_cpu_s),
                ]);
                for e in &m.error_samples {
                    notes.push(format!("{} / {}: {e}", s.scenario, m.name));
                }
            }
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for r in &rows {
            // Skip/fail rows span the table; they don't widen columns.
            if r.iter().skip(2).all(String::is_empty) {
                widths[0] = widths[0].max(r[0].len());
                continue;
            }
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "registry {}  auth: {}  client CPUs: {}",
            self.registry, self.auth, self.client_cpus
        );
        let line = |out: &mut String, cells: &[String]| {
            let mut l = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if i < 2 {
                    let _ = write!(l, "{c:<w$}  ");
                } else {
                    let _ = write!(l, "{c:>w$}  ");
                }
            }
            let _ = writeln!(out, "{}", l.trim_end());
        };
        line(&mut out, &header.map(String::from));
        for r in &rows {
            if r.iter().skip(2).all(String::is_empty) {
                let w = widths[0];
                let _ = writeln!(out, "{:<w$}  {}", r[0], r[1]);
            } else {
                line(&mut out, r);
            }
        }
        if !notes.is_empty() {
            let _ = writeln!(out, "\nnotes and errors (first few per case):");
            for n in notes {
                let _ = writeln!(out, "  {n}");
            }
        }
        let _ = writeln!(out, "total errors: {}", self.total_errors());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json_render_and_count_errors() {
        let r = Report {
            registry: "http://x".into(),
            auth: "open".into(),
            scenarios: vec![
                ScenarioReport {
                    scenario: "manifest-get".into(),
                    status: Status::Ok,
                    message: None,
                    measurements: vec![Measurement {
                        name: "by-tag".into(),
                        concurrency: Some(32),
                        requests: 10,
                        errors: 2,
                        error_samples: vec!["boom".into()],
                        latency: Some(Latency::default()),
                        ..Default::default()
                    }],
                },
                ScenarioReport {
                    scenario: "token-issuance".into(),
                    status: Status::Skipped,
                    message: Some("skipped: registry does not challenge".into()),
                    measurements: vec![],
                },
                ScenarioReport {
                    scenario: "tags-list".into(),
                    status: Status::Failed,
                    message: Some("setup".into()),
                    measurements: vec![],
                },
            ],
            ..Default::default()
        };
        assert_eq!(r.total_errors(), 3);
        let t = r.to_table();
        assert!(t.contains("skipped: registry does not challenge"), "{t}");
        assert!(!t.contains("skipped: skipped"), "{t}");
        assert!(t.contains("FAILED: setup"), "{t}");
        assert!(t.contains("by-tag"));
        assert!(t.contains("boom"));
        let back: Report = serde_json::from_str(&r.to_json().expect("json")).expect("parse");
        assert_eq!(back.total_errors(), 3);
    }
}
