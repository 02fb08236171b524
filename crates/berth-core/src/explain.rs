//! What to do about a refusal, by the kind of rule that decided it
//! (`decided_by.rule` of an explain record). One table, shown by `berth
//! logs explain` and by the web portal's explain view.

/// What to do, by the kind of rule that decided (`decided_by.rule`).
pub const FIXES: &[(&str, &str)] = &[
    ("credential", "log in again with a valid name and secret (`berth login`); an expired or regenerated secret needs a new one (`berth sp credential reset`, `berth token credential generate`), a disabled identity or token must be enabled again"),
    ("network_rule", "allow the client's address (`berth network-rule add --ip-address CIDR`) or connect from an allowed network"),
    ("throttling", "wait for the throttling window to pass, then log in with the right credentials"),
    ("role_assignment", "give the identity a role that includes the action (`berth role-assignment create --assignee NAME --role ROLE [--scope repositories/PREFIX/*]`)"),
    ("scope_map", "add the missing action to the token's scope map (`berth scope-map update --name MAP --add-repository REPO ACTION`)"),
    ("settings", "log in first, or change the registry setting named in the message (`berth registry update`)"),
    ("token_scope", "ask for a new access token whose scope covers this request (log in again; the client asks for the scope it needs)"),
    ("request", "correct the request as the message says (repository name, action)"),
];

/// The fix for a deciding rule.
pub fn fix_for(rule: &str) -> Option<&'static str> {
    FIXES.iter().find(|(r, _)| *r == rule).map(|(_, f)| *f)
}

/// Readers of an explain record's JSON, shared by `berth logs explain` and
/// the portal's explain view so both say the same thing.
pub mod record {
    use serde_json::Value;

    /// A JSON value as text: strings bare, `null` empty, the rest as JSON.
    pub fn text(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// `user alice (id 4f…)`, or who was not recognised.
    pub fn recognised(record: &Value) -> String {
        match record.get("recognised") {
            Some(Value::Object(i)) => format!(
                "{} {} (id {})",
                text(i.get("kind").unwrap_or(&Value::Null)),
                text(i.get("name").unwrap_or(&Value::Null)),
                text(i.get("id").unwrap_or(&Value::Null))
            ),
            _ => match record.get("username").and_then(Value::as_str) {
                Some(u) => format!("nobody (the credentials presented for '{u}' did not verify)"),
                None => "nobody (no usable credentials)".into(),
            },
        }
    }

    /// One needed action: `repository app: push`.
    pub fn action(a: &Value) -> String {
        format!(
            "{} {}: {}",
            text(&a["type"]),
            text(&a["name"]),
            text(&a["action"])
        )
    }

    /// Lines for what was asked.
    pub fn asked(record: &Value) -> Vec<String> {
        match record.get("asked") {
            Some(Value::Array(list)) => list.iter().map(action).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => match other.get("management") {
                Some(m) => vec![format!("management API: {}", text(m))],
                None => vec![other.to_string()],
            },
        }
    }
}
