//! The readable form of an explain record (`berth logs explain`): who was
//! recognised, what was asked, what was granted, which rule decided, the
//! message and what to do about it.

use serde_json::Value;

use berth_core::explain::record::{action, asked, recognised, text};
pub use berth_core::explain::{fix_for, FIXES};

/// `allowed by role_assignment (AcrPull on registry)`, `denied
/// (insufficient_permission)`; the full decision is in `--output json`.
fn decision(d: &Value) -> String {
    let reason = &d["reason"];
    let mut out = text(&d["result"]);
    if let Some(by) = reason.get("by").and_then(Value::as_str) {
        out.push_str(&format!(" by {by}"));
        let a = &reason["assignment"];
        if let Some(role) = a.get("role").and_then(Value::as_str) {
            out.push_str(&format!(" ({role} on {})", text(&a["scope"])));
        }
    } else if let Some(code) = reason.get("code").and_then(Value::as_str) {
        out.push_str(&format!(" ({code})"));
    }
    out
}

/// Lines for what was granted.
fn granted(record: &Value) -> Vec<String> {
    match record.get("granted") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|g| format!("{} → {}", action(g), decision(&g["decision"])))
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => match other.get("token_access") {
            Some(access) => vec![format!("the token grants only {access}")],
            None => vec![other.to_string()],
        },
    }
}

/// Render an explain answer (`{time, correlation_id, record}`).
pub fn render(answer: &Value) -> String {
    let r = &answer["record"];
    let d = &r["decided_by"];
    let mut lines: Vec<(&str, String)> = vec![
        ("Correlation id", text(&answer["correlation_id"])),
        ("Time", text(&answer["time"])),
        (
            "Request",
            format!(
                "{} {} → {} from {}",
                text(&r["method"]),
                text(&r["path"]),
                text(&r["status"]),
                text(&r["client_ip"])
            ),
        ),
    ];
    if !r["operation"].is_null() {
        lines.push(("Operation", text(&r["operation"])));
    }
    lines.push(("Recognised", recognised(r)));
    let asked = asked(r);
    lines.push((
        "Asked",
        if asked.is_empty() {
            "-".into()
        } else {
            asked.join("\n")
        },
    ));
    let granted = granted(r);
    lines.push((
        "Granted",
        if granted.is_empty() {
            "nothing".into()
        } else {
            granted.join("\n")
        },
    ));
    let rule = text(&d["rule"]);
    lines.push((
        "Decided by",
        format!("{rule} ({})", text(d.get("reason").unwrap_or(&r["reason"]))),
    ));
    lines.push(("Message", text(&d["message"])));
    if let Some(fix) = fix_for(&rule) {
        lines.push(("Fix", fix.to_string()));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in lines {
        let mut first = true;
        for part in v.split('\n') {
            let label = if first {
                format!("{k}:")
            } else {
                String::new()
            };
            out.push_str(&format!("{label:<width$} {part}\n"));
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readable_record() {
        let answer = json!({"time": "2026-11-27T09:00:00.000Z", "correlation_id": "c1",
            "record": {"method": "PUT", "path": "/v2/app/manifests/v1", "status": 403,
              "client_ip": "127.0.0.1", "operation": "push",
              "recognised": {"kind": "token", "id": "ci-token", "name": "ci-token"},
              "asked": [{"type": "repository", "name": "app", "action": "push"}],
              "granted": [{"type": "repository", "name": "app", "action": "push",
                           "decision": {"result": "denied", "reason": {"code": "scope_map_missing_action"}}}],
              "decided_by": {"rule": "scope_map", "reason": "scope_map_missing_action",
                             "message": "scope map lacks content/write", "detail": {}}}});
        let s = render(&answer);
        assert!(
            s.contains("Recognised:     token ci-token (id ci-token)"),
            "{s}"
        );
        assert!(s.contains("Asked:          repository app: push"), "{s}");
        assert!(
            s.contains("repository app: push → denied (scope_map_missing_action)"),
            "{s}"
        );
        let allowed = json!({"result": "allowed", "reason": {"by": "role_assignment",
            "assignment": {"role": "AcrPull", "scope": "registry"}}});
        assert_eq!(
            decision(&allowed),
            "allowed by role_assignment (AcrPull on registry)"
        );
        assert!(
            s.contains("Decided by:     scope_map (scope_map_missing_action)"),
            "{s}"
        );
        assert!(s.contains("Fix:            add the missing action"), "{s}");
        let anon = json!({"record": {"username": "ghost", "decided_by": {"rule": "credential"}}});
        assert!(render(&anon).contains("nobody (the credentials presented for 'ghost'"));
        assert!(FIXES.iter().all(|(r, _)| fix_for(r).is_some()));
    }
}
