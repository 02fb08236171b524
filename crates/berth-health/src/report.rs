//! Findings and their two output forms: JSON
//! (`{"checks":[{"name","status","code","message","fix"}]}`) and a table.

use std::fmt::Write as _;

use serde::Serialize;

use crate::codes;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing wrong.
    Ok,
    /// Works now, but something is off or will break.
    Warning,
    /// Logging in, pushing or pulling fails because of this.
    Error,
}

impl Status {
    /// `ok`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check (e.g. `DNS`, `access token`).
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// Code from [`codes::CODES`]; `null` when the check passed.
    pub code: Option<&'static str>,
    /// What was found.
    pub message: String,
    /// What to do; `null` when the check passed.
    pub fix: Option<String>,
}

impl Finding {
    /// A passed check.
    pub fn ok(name: &str, message: impl Into<String>) -> Finding {
        Finding {
            name: name.to_string(),
            status: Status::Ok,
            code: None,
            message: message.into(),
            fix: None,
        }
    }

    /// A problem with the table's severity and fix for `code`.
    pub fn problem(name: &str, code: &str, message: impl Into<String>) -> Finding {
        let info = codes::info(code);
        Finding {
            name: name.to_string(),
            status: info.severity,
            code: Some(info.code),
            message: message.into(),
            fix: Some(info.fix.to_string()),
        }
    }

    /// The same finding with another status (a milder one when the
    /// problem does not block this machine).
    pub fn with_status(mut self, status: Status) -> Finding {
        self.status = status;
        self
    }

    /// The same finding with a more specific fix text.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// All findings of a run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// In the order the checks ran.
    pub checks: Vec<Finding>,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.checks.iter().any(|f| f.status == Status::Error)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            // Serialising plain strings cannot fail; keep the envelope anyway.
            format!("{{\"checks\":[],\"error\":\"{e}\"}}")
        })
    }

    /// A fixed-width table for people: check, status, code, message, and
    /// the fix on its own line under each problem.
    pub fn to_table(&self) -> String {
        let header = ["CHECK", "STATUS", "CODE", "MESSAGE"];
        let mut widths = header.map(str::len);
        for f in &self.checks {
            widths[0] = widths[0].max(f.name.chars().count());
            widths[1] = widths[1].max(f.status.as_str().len());
            widths[2] = widths[2].max(f.code.map_or(0, str::len));
        }
        let [w0, w1, w2, _] = widths;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            header[0], header[1], header[2], header[3]
        );
        for f in &self.checks {
            let _ = writeln!(
                out,
                "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                f.name,
                f.status.as_str(),
                f.code.unwrap_or("-"),
                f.message
            );
            if let Some(fix) = &f.fix {
                let pad = w0 + w1 + w2 + 6;
                let _ = writeln!(out, "{:pad$}fix: {fix}", "");
            }
        }
        let errors = self
            .checks
            .iter()
            .filter(|f| f.status == Status::Error)
            .count();
        let warnings = self
            .checks
            .iter()
            .filter(|f| f.status == Status::Warning)
            .count();
        let _ = writeln!(out, "{errors} error(s), {warnings} warning(s)");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_table_forms() {
        let r = Report {
            checks: vec![
                Finding::ok("DNS", "resolves to 127.0.0.1"),
                Finding::problem("TCP", "CONNECTIVITY_TCP_ERROR", "connection refused"),
            ],
        };
        assert!(r.has_errors());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
        assert_eq!(v["checks"][0]["status"], "ok");
        assert!(v["checks"][0]["code"].is_null());
        assert_eq!(v["checks"][1]["status"], "error");
        assert_eq!(v["checks"][1]["code"], "CONNECTIVITY_TCP_ERROR");
        assert!(v["checks"][1]["fix"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
        let t = r.to_table();
        assert!(t.contains("CONNECTIVITY_TCP_ERROR"), "{t}");
        assert!(t.contains("fix: "), "{t}");
        assert!(t.ends_with("1 error(s), 0 warning(s)\n"), "{t}");
    }
}
