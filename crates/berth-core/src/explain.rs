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
