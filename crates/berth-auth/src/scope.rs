//! The Docker token scope grammar: `type:name:action[,action]`.
//!
//! Grammar (distribution's token-scope spec, with berth's actions):
//!
//! ```text
//! scope         := resourcescope [ ' ' resourcescope ]*
//! resourcescope := resourcetype ":" resourcename ":" action [ ',' action ]*
//! resourcetype  := /[a-z0-9]+/ [ '(' /[a-z0-9]+/ ')' ]
//! ```
//!
//! The name may itself contain a `:` (a `host:port` prefix), so the type is
//! what precedes the *first* `:` and the actions what follows the *last* one.
//!
//! Decisions where the spec leaves room:
//! - The resource class is deprecated and ignored: `repository(plugin)` is
//!   `repository`, and scopes are always written back without a class.
//! - Known types are `repository` and `registry`. A syntactically valid but
//!   unknown type is a typed error ([`ScopeError::UnknownType`]): the spec
//!   requires the authorization server to understand a type before granting
//!   anything on it.
//! - Actions must match `[a-z0-9_*]+`; anything else is
//!   [`ScopeError::InvalidAction`]. A well-formed action berth does not know
//!   (say `catalog` or a future action) is *kept aside* in
//!   [`RequestedScope::unknown_actions`]: never granted, but not fatal, because
//!   the token service answers with the intersection of what was asked and
//!   what is allowed. Empty actions (`repository:x:` or `pull,,push`) are
//!   skipped.
//! - `*` on a repository scope means "every repository action" and is
//!   expanded on parse, so berth never issues a repository `*` it did not
//!   check action by action. On `registry` scopes `*` is the action itself
//!   (`registry:catalog:*`).

use std::fmt;
use std::ops::{BitAnd, BitOr};

use serde::{Deserialize, Serialize};

/// One action a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Read content (`pull`).
    #[serde(rename = "pull")]
    Pull,
    /// Write content (`push`).
    #[serde(rename = "push")]
    Push,
    /// Delete manifests, blobs, repositories (`delete`).
    #[serde(rename = "delete")]
    Delete,
    /// List tags and manifests, read attributes (`metadata_read`).
    #[serde(rename = "metadata_read")]
    MetadataRead,
    /// Untag, change attributes (`metadata_write`).
    #[serde(rename = "metadata_write")]
    MetadataWrite,
    /// The literal `*` action; used by `registry:catalog:*`.
    #[serde(rename = "*")]
    All,
}

impl Action {
    /// Every action, in canonical (wire) order.
    pub const ALL_ACTIONS: [Action; 6] = [
        Action::Pull,
        Action::Push,
        Action::Delete,
        Action::MetadataRead,
        Action::MetadataWrite,
        Action::All,
    ];

    /// The five actions that apply to a repository.
    pub const REPOSITORY: [Action; 5] = [
        Action::Pull,
        Action::Push,
        Action::Delete,
        Action::MetadataRead,
        Action::MetadataWrite,
    ];

    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::MetadataRead => "metadata_read",
            Action::MetadataWrite => "metadata_write",
            Action::All => "*",
        }
    }

    /// Parse a wire spelling; `None` for anything berth does not know.
    pub fn from_wire(s: &str) -> Option<Action> {
        Action::ALL_ACTIONS.into_iter().find(|a| a.as_str() == s)
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Action`]s, stored as a bitset.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ActionSet(u8);

impl ActionSet {
    /// No action.
    pub const EMPTY: ActionSet = ActionSet(0);
    /// `pull`.
    pub const PULL: ActionSet = ActionSet::of(&[Action::Pull]);
    /// `pull,push`: what a write request (POST/PUT/PATCH) needs.
    pub const PULL_PUSH: ActionSet = ActionSet::of(&[Action::Pull, Action::Push]);
    /// The five repository actions.
    pub const REPOSITORY_ALL: ActionSet = ActionSet::of(&Action::REPOSITORY);

    /// A set holding `actions`.
    pub const fn of(actions: &[Action]) -> ActionSet {
        let mut bits = 0u8;
        let mut i = 0;
        while i < actions.len() {
            bits |= actions[i].bit();
            i += 1;
        }
        ActionSet(bits)
    }

    /// Whether `action` is in the set.
    pub const fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Whether every action of `other` is in the set.
    pub const fn contains_all(self, other: ActionSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Add `action`.
    pub fn insert(&mut self, action: Action) {
        self.0 |= action.bit();
    }

    /// Remove `action`.
    pub fn remove(&mut self, action: Action) {
        self.0 &= !action.bit();
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of actions in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Actions in both sets.
    pub const fn intersection(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & other.0)
    }

    /// Actions in either set.
    pub const fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    /// Actions in `self` but not in `other`.
    pub const fn difference(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & !other.0)
    }

    /// The actions, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL_ACTIONS
            .into_iter()
            .filter(move |a| self.contains(*a))
    }

    /// The wire spellings, in canonical order.
    pub fn to_strings(self) -> Vec<String> {
        self.iter().map(|a| a.as_str().to_string()).collect()
    }

    /// The actions a repository request needs, by HTTP method, as the
    /// reference registry derives them: GET/HEAD → pull; POST/PUT/PATCH →
    /// pull+push; DELETE → delete. Any other method needs nothing that a
    /// token could grant, and gets the empty set (the server should refuse
    /// it on its own grounds). A cross-repository mount additionally needs
    /// pull on the source repository; the server asks for that separately.
    pub fn required_for_method(method: &str) -> ActionSet {
        match method.to_ascii_uppercase().as_str() {
            "GET" | "HEAD" => ActionSet::PULL,
            "POST" | "PUT" | "PATCH" => ActionSet::PULL_PUSH,
            "DELETE" => ActionSet::of(&[Action::Delete]),
            _ => ActionSet::EMPTY,
        }
    }
}

impl fmt::Debug for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionSet({self})")
    }
}

/// Comma-separated wire form, canonical order: `pull,push`.
impl fmt::Display for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for a in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(a.as_str())?;
        }
        Ok(())
    }
}

impl BitOr for ActionSet {
    type Output = ActionSet;
    fn bitor(self, rhs: ActionSet) -> ActionSet {
        self.union(rhs)
    }
}

impl BitAnd for ActionSet {
    type Output = ActionSet;
    fn bitand(self, rhs: ActionSet) -> ActionSet {
        self.intersection(rhs)
    }
}

impl From<Action> for ActionSet {
    fn from(a: Action) -> ActionSet {
        ActionSet(a.bit())
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> ActionSet {
        let mut s = ActionSet::EMPTY;
        for a in iter {
            s.insert(a);
        }
        s
    }
}

/// The kind of resource a scope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    /// One repository (`repository`, also `repository(plugin)`).
    Repository,
    /// The registry as a whole (`registry:catalog:*`).
    Registry,
}

impl ResourceType {
    /// The wire spelling (never with a class).
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceType::Repository => "repository",
            ResourceType::Registry => "registry",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The only `registry`-type resource name berth knows.
pub const CATALOG: &str = "catalog";

/// Why a scope string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Fewer than two `:` separators.
    #[error("scope {0:?} is not of the form type:name:actions")]
    MissingSeparator(String),
    /// The resource type is not `[a-z0-9]+` with an optional `(class)`.
    #[error("scope resource type {0:?} is malformed")]
    InvalidType(String),
    /// A well-formed resource type berth does not know.
    #[error("scope resource type {0:?} is not supported (known: repository, registry)")]
    UnknownType(String),
    /// The resource name is empty.
    #[error("scope {0:?} has an empty resource name")]
    EmptyName(String),
    /// The resource name holds characters no name may contain.
    #[error("scope resource name {0:?} is malformed")]
    InvalidName(String),
    /// An action is not `[a-z0-9_*]+`.
    #[error("scope action {0:?} is malformed")]
    InvalidAction(String),
}

/// One parsed resource scope, as requested by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedScope {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name (a repository name, or `catalog`).
    pub name: String,
    /// The actions berth knows, after `*` expansion on repositories.
    pub actions: ActionSet,
    /// Well-formed actions berth does not know; never granted.
    pub unknown_actions: Vec<String>,
}

impl RequestedScope {
    /// `repository:<name>:<actions>`.
    pub fn repository(name: impl Into<String>, actions: ActionSet) -> Self {
        Self {
            resource_type: ResourceType::Repository,
            name: name.into(),
            actions,
            unknown_actions: Vec::new(),
        }
    }

    /// `registry:catalog:*`.
    pub fn catalog() -> Self {
        Self {
            resource_type: ResourceType::Registry,
            name: CATALOG.to_string(),
            actions: Action::All.into(),
            unknown_actions: Vec::new(),
        }
    }

    /// Whether this is `registry:catalog`.
    pub fn is_catalog(&self) -> bool {
        self.resource_type == ResourceType::Registry && self.name == CATALOG
    }

    /// Parse one `type:name:actions` resource scope.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let (first, last) = match (s.find(':'), s.rfind(':')) {
            (Some(f), Some(l)) if f < l => (f, l),
            _ => return Err(ScopeError::MissingSeparator(s.to_string())),
        };
        let type_part = &s[..first];
        let name = &s[first + 1..last];
        let actions_part = &s[last + 1..];

        let resource_type = parse_type(type_part)?;
        if name.is_empty() {
            return Err(ScopeError::EmptyName(s.to_string()));
        }
        if name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
        {
            return Err(ScopeError::InvalidName(name.to_string()));
        }

        let mut actions = ActionSet::EMPTY;
        let mut unknown_actions: Vec<String> = Vec::new();
        for raw in actions_part.split(',') {
            if raw.is_empty() {
                continue;
            }
            if !raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'*')
            {
                return Err(ScopeError::InvalidAction(raw.to_string()));
            }
            match (resource_type, Action::from_wire(raw)) {
                (ResourceType::Repository, Some(Action::All)) => {
                    actions = actions.union(ActionSet::REPOSITORY_ALL)
                }
                (_, Some(a)) => actions.insert(a),
                (_, None) => {
                    if !unknown_actions.iter().any(|u| u == raw) {
                        unknown_actions.push(raw.to_string());
                    }
                }
            }
        }
        Ok(Self {
            resource_type,
            name: name.to_string(),
            actions,
            unknown_actions,
        })
    }

    /// The access-claim entry for these actions (see [`ResourceActions`]).
    pub fn to_resource_actions(&self) -> ResourceActions {
        ResourceActions {
            resource_type: self.resource_type.as_str().to_string(),
            name: self.name.clone(),
            actions: self.actions.to_strings(),
        }
    }

    /// The registry error `detail` entries for these actions, as in
    /// `[{"Type":"repository","Name":"library/hello","Action":"pull"}]`.
    pub fn error_detail(&self) -> Vec<serde_json::Value> {
        self.actions
            .iter()
            .map(|a| {
                serde_json::json!({
                    "Type": self.resource_type.as_str(),
                    "Name": self.name,
                    "Action": a.as_str(),
                })
            })
            .collect()
    }
}

fn parse_type(s: &str) -> Result<ResourceType, ScopeError> {
    let valid_word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let base = match s.find('(') {
        Some(open) => {
            let class = s[open + 1..]
                .strip_suffix(')')
                .ok_or_else(|| ScopeError::InvalidType(s.to_string()))?;
            if !valid_word(class) {
                return Err(ScopeError::InvalidType(s.to_string()));
            }
            &s[..open]
        }
        None => s,
    };
    if !valid_word(base) {
        return Err(ScopeError::InvalidType(s.to_string()));
    }
    match base {
        "repository" => Ok(ResourceType::Repository),
        "registry" => Ok(ResourceType::Registry),
        _ => Err(ScopeError::UnknownType(s.to_string())),
    }
}

/// The wire form `type:name:actions` (no class; unknown actions dropped).
impl fmt::Display for RequestedScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.resource_type, self.name, self.actions)
    }
}

impl std::str::FromStr for RequestedScope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequestedScope::parse(s)
    }
}

/// Parse one `scope` field: one or more resource scopes separated by spaces
/// (the POST form). Strict: the first malformed scope fails the whole field.
/// Repeated resources are merged (their actions added up).
pub fn parse_scope_list(field: &str) -> Result<Vec<RequestedScope>, ScopeError> {
    let mut out = Vec::new();
    for part in field.split_whitespace() {
        merge_into(&mut out, RequestedScope::parse(part)?);
    }
    Ok(out)
}

/// The outcome of [`parse_scope_params`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedScopes {
    /// The well-formed scopes, merged per resource, in order of first mention.
    pub scopes: Vec<RequestedScope>,
    /// The malformed ones, verbatim, with the reason (for the audit log).
    pub rejected: Vec<(String, ScopeError)>,
}

/// Parse every `scope` field of a token request (GET repeats the field, POST
/// space-separates; both may be mixed). Lenient, like the reference token
/// server: a malformed scope is set aside in [`ParsedScopes::rejected`] and
/// simply not granted, so one odd scope does not fail a whole login.
pub fn parse_scope_params<'a, I>(fields: I) -> ParsedScopes
where
    I: IntoIterator<Item = &'a str>,
{
    let mut parsed = ParsedScopes::default();
    for field in fields {
        for part in field.split_whitespace() {
            match RequestedScope::parse(part) {
                Ok(s) => merge_into(&mut parsed.scopes, s),
                Err(e) => parsed.rejected.push((part.to_string(), e)),
            }
        }
    }
    parsed
}

fn merge_into(out: &mut Vec<RequestedScope>, scope: RequestedScope) {
    if let Some(existing) = out
        .iter_mut()
        .find(|s| s.resource_type == scope.resource_type && s.name == scope.name)
    {
        existing.actions = existing.actions.union(scope.actions);
        for u in scope.unknown_actions {
            if !existing.unknown_actions.contains(&u) {
                existing.unknown_actions.push(u);
            }
        }
    } else {
        out.push(scope);
    }
}

/// The `scope` value of a `WWW-Authenticate` challenge for a repository
/// request, e.g. `repository:library/hello:pull,push`.
pub fn challenge_scope(repository: &str, actions: ActionSet) -> String {
    RequestedScope::repository(repository, actions).to_string()
}

/// One entry of an access token's `access` claim (Docker JWT spec):
/// `{"type":"repository","name":"samalba/my-app","actions":["pull","push"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    /// Resource type, e.g. `repository`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Resource name.
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

impl ResourceActions {
    /// Whether this entry covers `action` on `resource_type`/`name`. A `*`
    /// action in a token covers every action (as the reference registry
    /// reads tokens); a `(class)` on the type is ignored.
    pub fn allows(&self, resource_type: ResourceType, name: &str, action: Action) -> bool {
        let base_type = self
            .resource_type
            .split('(')
            .next()
            .unwrap_or(&self.resource_type);
        base_type == resource_type.as_str()
            && self.name == name
            && self
                .actions
                .iter()
                .any(|a| a == "*" || a == action.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): scope strings and the `scope` fields of token
    /// requests never panic.
    #[test]
    fn fuzz_scopes() {
        berth_core::fuzz::run_str(
            "scope",
            &[
                "repository:team/app:pull,push",
                "repository:a:b:pull",
                "registry:catalog:*",
                "repository(plugin):x:delete",
                "repository:x:",
                "repository:team/app:pull repository:other:*",
                ":::",
            ],
            |s| {
                if let Ok(scope) = RequestedScope::parse(s) {
                    let _ = scope.is_catalog();
                }
                let _ = parse_scope_list(s);
                let _ = parse_scope_params(s.split('&'));
            },
        );
    }

    fn set(a: &[Action]) -> ActionSet {
        ActionSet::of(a)
    }

    #[test]
    fn simple_scope_round_trips() {
        let s = RequestedScope::parse("repository:samalba/my-app:pull,push").unwrap();
        assert_eq!(s.resource_type, ResourceType::Repository);
        assert_eq!(s.name, "samalba/my-app");
        assert_eq!(s.actions, ActionSet::PULL_PUSH);
        assert_eq!(s.to_string(), "repository:samalba/my-app:pull,push");
    }

    #[test]
    fn host_port_in_name() {
        let s = RequestedScope::parse("repository:localhost:5000/foo/bar:pull").unwrap();
        assert_eq!(s.name, "localhost:5000/foo/bar");
        assert_eq!(s.actions, ActionSet::PULL);
        assert_eq!(s.to_string(), "repository:localhost:5000/foo/bar:pull");
        let s = RequestedScope::parse("repository:[::1]:5000/x:push").unwrap();
        assert_eq!(s.name, "[::1]:5000/x");
    }

    #[test]
    fn plugin_class_is_ignored() {
        let s = RequestedScope::parse("repository(plugin):vieux/sshfs:pull").unwrap();
        assert_eq!(s.resource_type, ResourceType::Repository);
        assert_eq!(s.to_string(), "repository:vieux/sshfs:pull");
        assert!(matches!(
            RequestedScope::parse("repository(:x:pull"),
            Err(ScopeError::InvalidType(_))
        ));
        assert!(matches!(
            RequestedScope::parse("repository(Plugin):x:pull"),
            Err(ScopeError::InvalidType(_))
        ));
        assert!(matches!(
            RequestedScope::parse("repository():x:pull"),
            Err(ScopeError::InvalidType(_))
        ));
    }

    #[test]
    fn catalog_scope() {
        let s = RequestedScope::parse("registry:catalog:*").unwrap();
        assert!(s.is_catalog());
        assert_eq!(s.actions, Action::All.into());
        assert_eq!(s, RequestedScope::catalog());
        assert_eq!(s.to_string(), "registry:catalog:*");
    }

    #[test]
    fn repository_star_expands() {
        let s = RequestedScope::parse("repository:a:*").unwrap();
        assert_eq!(s.actions, ActionSet::REPOSITORY_ALL);
        assert!(!s.actions.contains(Action::All));
        assert_eq!(
            s.to_string(),
            "repository:a:pull,push,delete,metadata_read,metadata_write"
        );
    }

    #[test]
    fn all_actions_parse() {
        let s = RequestedScope::parse("repository:a:metadata_write,delete,metadata_read,push,pull")
            .unwrap();
        assert_eq!(s.actions, ActionSet::REPOSITORY_ALL);
    }

    #[test]
    fn unknown_actions_are_kept_aside_not_granted() {
        let s = RequestedScope::parse("repository:a:pull,frobnicate,frobnicate,,").unwrap();
        assert_eq!(s.actions, ActionSet::PULL);
        assert_eq!(s.unknown_actions, vec!["frobnicate".to_string()]);
        assert_eq!(s.to_string(), "repository:a:pull");
    }

    #[test]
    fn empty_actions_are_allowed_and_grant_nothing() {
        let s = RequestedScope::parse("repository:a:").unwrap();
        assert!(s.actions.is_empty());
    }

    type Case = (&'static str, fn(&ScopeError) -> bool);

    #[test]
    fn malformed_scopes_are_typed_errors() {
        use ScopeError::*;
        let cases: &[Case] = &[
            ("repository", |e| matches!(e, MissingSeparator(_))),
            ("repository:a", |e| matches!(e, MissingSeparator(_))),
            ("", |e| matches!(e, MissingSeparator(_))),
            (":a:pull", |e| matches!(e, InvalidType(_))),
            ("Repository:a:pull", |e| matches!(e, InvalidType(_))),
            ("repo-sitory:a:pull", |e| matches!(e, InvalidType(_))),
            ("blob:a:pull", |e| matches!(e, UnknownType(_))),
            ("repository::pull", |e| matches!(e, EmptyName(_))),
            ("repository:a\"b:pull", |e| matches!(e, InvalidName(_))),
            ("repository:a:Pull", |e| matches!(e, InvalidAction(_))),
            ("repository:a:pull push", |e| matches!(e, InvalidAction(_))),
            ("repository:a:pu-ll", |e| matches!(e, InvalidAction(_))),
        ];
        for (input, check) in cases {
            let err = RequestedScope::parse(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn several_scopes_space_separated_and_merged() {
        let v = parse_scope_list(
            "repository:a:pull  repository:b:push registry:catalog:* repository:a:push",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].to_string(), "repository:a:pull,push");
        assert_eq!(v[1].to_string(), "repository:b:push");
        assert!(v[2].is_catalog());
        assert!(parse_scope_list("repository:a:pull bogus").is_err());
        assert_eq!(parse_scope_list("").unwrap(), vec![]);
    }

    #[test]
    fn repeated_fields_lenient() {
        let p = parse_scope_params([
            "repository:a:pull",
            "repository:b:push bogus",
            "repository(plugin):a:delete",
            "widget:x:pull",
        ]);
        assert_eq!(p.scopes.len(), 2);
        assert_eq!(p.scopes[0].actions, set(&[Action::Pull, Action::Delete]));
        assert_eq!(p.rejected.len(), 2);
        assert_eq!(p.rejected[0].0, "bogus");
        assert!(matches!(p.rejected[1].1, ScopeError::UnknownType(_)));
    }

    #[test]
    fn challenge_and_methods() {
        assert_eq!(
            challenge_scope("library/hello", ActionSet::PULL_PUSH),
            "repository:library/hello:pull,push"
        );
        assert_eq!(ActionSet::required_for_method("GET"), ActionSet::PULL);
        assert_eq!(ActionSet::required_for_method("head"), ActionSet::PULL);
        for m in ["POST", "PUT", "PATCH"] {
            assert_eq!(ActionSet::required_for_method(m), ActionSet::PULL_PUSH);
        }
        assert_eq!(
            ActionSet::required_for_method("DELETE"),
            set(&[Action::Delete])
        );
        assert_eq!(ActionSet::required_for_method("TRACE"), ActionSet::EMPTY);
    }

    #[test]
    fn action_set_algebra() {
        let a = set(&[Action::Pull, Action::Push]);
        let b = set(&[Action::Push, Action::Delete]);
        assert_eq!(a & b, set(&[Action::Push]));
        assert_eq!((a | b).len(), 3);
        assert_eq!(a.difference(b), ActionSet::PULL);
        assert!(a.contains_all(ActionSet::PULL));
        assert!(!ActionSet::PULL.contains_all(a));
        let mut c = ActionSet::EMPTY;
        c.insert(Action::All);
        c.remove(Action::All);
        assert!(c.is_empty());
        assert_eq!(format!("{:?}", a), "ActionSet(pull,push)");
        assert_eq!(
            [Action::Delete, Action::Pull]
                .into_iter()
                .collect::<ActionSet>(),
            set(&[Action::Pull, Action::Delete])
        );
    }

    #[test]
    fn error_detail_matches_registry_shape() {
        let d = RequestedScope::repository("library/hello", ActionSet::PULL).error_detail();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"[{"Action":"pull","Name":"library/hello","Type":"repository"}]"#
        );
    }

    #[test]
    fn resource_actions_allows() {
        let ra = ResourceActions {
            resource_type: "repository".into(),
            name: "a".into(),
            actions: vec!["pull".into()],
        };
        assert!(ra.allows(ResourceType::Repository, "a", Action::Pull));
        assert!(!ra.allows(ResourceType::Repository, "a", Action::Push));
        assert!(!ra.allows(ResourceType::Repository, "b", Action::Pull));
        assert!(!ra.allows(ResourceType::Registry, "a", Action::Pull));
        let star = ResourceActions {
            resource_type: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        };
        assert!(star.allows(ResourceType::Registry, "catalog", Action::All));
        let plugin = ResourceActions {
            resource_type: "repository(plugin)".into(),
            ..ra
        };
        assert!(plugin.allows(ResourceType::Repository, "a", Action::Pull));
    }
}
