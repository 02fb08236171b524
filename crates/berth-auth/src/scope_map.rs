//! Scope maps: the permissions of repository-scoped tokens.
//!
//! A scope map is a named list of rules `repositories/<pattern>/<action>`.
//! Permissions add up across every rule whose pattern matches; wildcard
//! patterns cover repositories that do not exist yet. A token has exactly
//! one scope map, read at authorization time, so editing a map affects its
//! tokens at once. Catalog listing can never be granted by a scope map.
//!
//! | scope-map action  | token action     | meaning                          |
//! |-------------------|------------------|----------------------------------|
//! | `content/read`    | `pull`           | pull                             |
//! | `content/write`   | `push`           | push (*use with* `content/read`) |
//! | `content/delete`  | `delete`         | delete                           |
//! | `metadata/read`   | `metadata_read`  | list tags and manifests          |
//! | `metadata/write`  | `metadata_write` | untag, change attributes         |
//!
//! `content/write` grants `push` and nothing else: it does **not** imply
//! `content/read`. Since every push request needs `pull,push`, a map with
//! `content/write` but no `content/read` on a repository cannot push there;
//! that is the reference's "push, with read" and why its system map
//! `_repositories_push` lists both. [`ScopeMap::lint`] points such maps out.
//!
//! Patterns: `*` (every repository), `<prefix>/*` (every repository whose
//! name starts with `<prefix>/`, at any depth, but not `<prefix>` itself),
//! or an exact repository name. A `*` anywhere else (`sample/*/x`,
//! `sample/x*`) is invalid, and the prefix or name must be a valid
//! repository name.

use std::fmt;

use berth_core::RepositoryName;
use serde::{Deserialize, Serialize};

use crate::scope::Action;

/// Most rules a scope map may hold (the reference's limit).
pub const MAX_RULES: usize = 500;

/// System scope map: pull everywhere.
pub const SYSTEM_PULL: &str = "_repositories_pull";
/// System scope map: pull and read metadata everywhere.
pub const SYSTEM_PULL_METADATA_READ: &str = "_repositories_pull_metadata_read";
/// System scope map: pull and push everywhere.
pub const SYSTEM_PUSH: &str = "_repositories_push";
/// System scope map: read and write content and metadata everywhere.
pub const SYSTEM_PUSH_METADATA_WRITE: &str = "_repositories_push_metadata_write";
/// System scope map: all five actions everywhere.
pub const SYSTEM_ADMIN: &str = "_repositories_admin";
/// The five system scope map names.
pub const SYSTEM_SCOPE_MAPS: [&str; 5] = [
    SYSTEM_PULL,
    SYSTEM_PULL_METADATA_READ,
    SYSTEM_PUSH,
    SYSTEM_PUSH_METADATA_WRITE,
    SYSTEM_ADMIN,
];
/// Prefix reserved for system scope maps.
pub const SYSTEM_PREFIX: &str = "_repositories_";

/// One repository action of a scope map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScopeMapAction {
    /// `content/read` → `pull`.
    #[serde(rename = "content/read")]
    ContentRead,
    /// `content/write` → `push`.
    #[serde(rename = "content/write")]
    ContentWrite,
    /// `content/delete` → `delete`.
    #[serde(rename = "content/delete")]
    ContentDelete,
    /// `metadata/read` → `metadata_read`.
    #[serde(rename = "metadata/read")]
    MetadataRead,
    /// `metadata/write` → `metadata_write`.
    #[serde(rename = "metadata/write")]
    MetadataWrite,
}

impl ScopeMapAction {
    /// All five, in canonical order.
    pub const ALL: [ScopeMapAction; 5] = [
        ScopeMapAction::ContentRead,
        ScopeMapAction::ContentWrite,
        ScopeMapAction::ContentDelete,
        ScopeMapAction::MetadataRead,
        ScopeMapAction::MetadataWrite,
    ];

    /// The stored spelling, e.g. `content/read`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeMapAction::ContentRead => "content/read",
            ScopeMapAction::ContentWrite => "content/write",
            ScopeMapAction::ContentDelete => "content/delete",
            ScopeMapAction::MetadataRead => "metadata/read",
            ScopeMapAction::MetadataWrite => "metadata/write",
        }
    }

    /// The token action this grants.
    pub const fn token_action(self) -> Action {
        match self {
            ScopeMapAction::ContentRead => Action::Pull,
            ScopeMapAction::ContentWrite => Action::Push,
            ScopeMapAction::ContentDelete => Action::Delete,
            ScopeMapAction::MetadataRead => Action::MetadataRead,
            ScopeMapAction::MetadataWrite => Action::MetadataWrite,
        }
    }

    /// The scope-map action that grants a token action; `None` for `*`.
    pub const fn for_token_action(action: Action) -> Option<ScopeMapAction> {
        match action {
            Action::Pull => Some(ScopeMapAction::ContentRead),
            Action::Push => Some(ScopeMapAction::ContentWrite),
            Action::Delete => Some(ScopeMapAction::ContentDelete),
            Action::MetadataRead => Some(ScopeMapAction::MetadataRead),
            Action::MetadataWrite => Some(ScopeMapAction::MetadataWrite),
            Action::All => None,
        }
    }
}

impl fmt::Display for ScopeMapAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a scope map, rule or name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeMapError {
    /// A rule does not start with `repositories/`.
    #[error("rule {0:?} must start with repositories/")]
    MissingPrefix(String),
    /// A rule does not end with one of the five actions.
    #[error("rule {0:?} must end with content/read, content/write, content/delete, metadata/read or metadata/write")]
    UnknownAction(String),
    /// A `*` appears somewhere other than a trailing `/*` or the whole pattern.
    #[error("pattern {0:?} may only end in /* or be *")]
    MisplacedWildcard(String),
    /// The repository part is not a valid repository name.
    #[error("pattern {0:?} is not a valid repository name or prefix")]
    InvalidRepository(String),
    /// Name length or characters are wrong.
    #[error("name {name:?} must be 5-50 characters of {allowed}")]
    InvalidName {
        /// The name.
        name: String,
        /// The allowed characters.
        allowed: &'static str,
    },
    /// The name is reserved (system scope maps, the registry's own name).
    #[error("name {0:?} is reserved")]
    ReservedName(String),
    /// More than [`MAX_RULES`] rules.
    #[error("a scope map may hold at most {MAX_RULES} rules, got {0}")]
    TooManyRules(usize),
}

/// The repository part of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RepositoryPattern {
    /// `*`: every repository.
    All,
    /// `<prefix>/*`: every repository below `<prefix>/` (holds the prefix,
    /// without the trailing `/*`).
    Prefix(String),
    /// One repository.
    Exact(String),
}

impl RepositoryPattern {
    /// Parse and validate a pattern.
    pub fn parse(s: &str) -> Result<Self, ScopeMapError> {
        if s == "*" {
            return Ok(RepositoryPattern::All);
        }
        let (body, is_prefix) = match s.strip_suffix("/*") {
            Some(body) => (body, true),
            None => (s, false),
        };
        if body.contains('*') {
            return Err(ScopeMapError::MisplacedWildcard(s.to_string()));
        }
        if body.parse::<RepositoryName>().is_err() {
            return Err(ScopeMapError::InvalidRepository(s.to_string()));
        }
        Ok(if is_prefix {
            RepositoryPattern::Prefix(body.to_string())
        } else {
            RepositoryPattern::Exact(body.to_string())
        })
    }

    /// Whether `repository` falls under this pattern.
    pub fn matches(&self, repository: &str) -> bool {
        match self {
            RepositoryPattern::All => true,
            RepositoryPattern::Prefix(p) => repository
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/')),
            RepositoryPattern::Exact(n) => n == repository,
        }
    }
}

impl fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepositoryPattern::All => f.write_str("*"),
            RepositoryPattern::Prefix(p) => write!(f, "{p}/*"),
            RepositoryPattern::Exact(n) => f.write_str(n),
        }
    }
}

/// One rule: `repositories/<pattern>/<action>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeMapRule {
    /// Which repositories.
    pub pattern: RepositoryPattern,
    /// Which action.
    pub action: ScopeMapAction,
}

impl ScopeMapRule {
    /// Parse the stored form `repositories/<pattern>/<action>`.
    pub fn parse(s: &str) -> Result<Self, ScopeMapError> {
        let rest = s
            .strip_prefix("repositories/")
            .ok_or_else(|| ScopeMapError::MissingPrefix(s.to_string()))?;
        let (pattern, action) = ScopeMapAction::ALL
            .into_iter()
            .find_map(|a| {
                rest.strip_suffix(a.as_str())
                    .and_then(|p| p.strip_suffix('/'))
                    .map(|p| (p, a))
            })
            .ok_or_else(|| ScopeMapError::UnknownAction(s.to_string()))?;
        Ok(ScopeMapRule {
            pattern: RepositoryPattern::parse(pattern)?,
            action,
        })
    }
}

/// The stored form `repositories/<pattern>/<action>`.
impl fmt::Display for ScopeMapRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "repositories/{}/{}", self.pattern, self.action)
    }
}

impl std::str::FromStr for ScopeMapRule {
    type Err = ScopeMapError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScopeMapRule::parse(s)
    }
}

impl Serialize for ScopeMapRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeMapRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScopeMapRule::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A warning about a valid but probably mistaken scope map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeMapWarning {
    /// `content/write` on a pattern without `content/read` covering the same
    /// repositories: pushes will be refused (they need pull too).
    WriteWithoutRead {
        /// The pattern of the `content/write` rule.
        pattern: String,
    },
}

impl fmt::Display for ScopeMapWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeMapWarning::WriteWithoutRead { pattern } => write!(
                f,
                "repositories/{pattern}/content/write without content/read: pushes need both"
            ),
        }
    }
}

/// A named, validated scope map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeMap {
    name: String,
    rules: Vec<ScopeMapRule>,
}

impl ScopeMap {
    /// A user-defined scope map. The name must pass
    /// [`validate_scope_map_name`] and not use the system prefix; duplicate
    /// rules are dropped.
    pub fn new(name: &str, rules: Vec<ScopeMapRule>) -> Result<Self, ScopeMapError> {
        validate_scope_map_name(name)?;
        if name.starts_with(SYSTEM_PREFIX) {
            return Err(ScopeMapError::ReservedName(name.to_string()));
        }
        Self::build(name, rules)
    }

    /// Parse a user-defined scope map from stored rule strings.
    pub fn parse<S: AsRef<str>>(name: &str, rules: &[S]) -> Result<Self, ScopeMapError> {
        let parsed = rules
            .iter()
            .map(|r| ScopeMapRule::parse(r.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(name, parsed)
    }

    fn build(name: &str, rules: Vec<ScopeMapRule>) -> Result<Self, ScopeMapError> {
        let mut deduped: Vec<ScopeMapRule> = Vec::with_capacity(rules.len());
        for r in rules {
            if !deduped.contains(&r) {
                deduped.push(r);
            }
        }
        if deduped.len() > MAX_RULES {
            return Err(ScopeMapError::TooManyRules(deduped.len()));
        }
        Ok(ScopeMap {
            name: name.to_string(),
            rules: deduped,
        })
    }

    /// The system scope map of that name, if it is one.
    pub fn system(name: &str) -> Option<ScopeMap> {
        use ScopeMapAction::*;
        let actions: &[ScopeMapAction] = match name {
            SYSTEM_PULL => &[ContentRead],
            SYSTEM_PULL_METADATA_READ => &[ContentRead, MetadataRead],
            SYSTEM_PUSH => &[ContentRead, ContentWrite],
            SYSTEM_PUSH_METADATA_WRITE => &[ContentRead, ContentWrite, MetadataRead, MetadataWrite],
            SYSTEM_ADMIN => &ScopeMapAction::ALL,
            _ => return None,
        };
        Some(ScopeMap {
            name: name.to_string(),
            rules: actions
                .iter()
                .map(|a| ScopeMapRule {
                    pattern: RepositoryPattern::All,
                    action: *a,
                })
                .collect(),
        })
    }

    /// Whether this is one of the five system maps.
    pub fn is_system(&self) -> bool {
        SYSTEM_SCOPE_MAPS.contains(&self.name.as_str())
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rules.
    pub fn rules(&self) -> &[ScopeMapRule] {
        &self.rules
    }

    /// The first rule granting `action` on `repository`, if any.
    pub fn rule_granting(&self, repository: &str, action: ScopeMapAction) -> Option<&ScopeMapRule> {
        self.rules
            .iter()
            .find(|r| r.action == action && r.pattern.matches(repository))
    }

    /// Every token action the map grants on `repository` (the rules add up).
    pub fn actions_for(&self, repository: &str) -> crate::scope::ActionSet {
        self.rules
            .iter()
            .filter(|r| r.pattern.matches(repository))
            .map(|r| r.action.token_action())
            .collect()
    }

    /// Valid-but-suspicious rules, for the management API to show.
    pub fn lint(&self) -> Vec<ScopeMapWarning> {
        self.rules
            .iter()
            .filter(|w| w.action == ScopeMapAction::ContentWrite)
            .filter(|w| {
                !self.rules.iter().any(|r| {
                    r.action == ScopeMapAction::ContentRead && covers(&r.pattern, &w.pattern)
                })
            })
            .map(|w| ScopeMapWarning::WriteWithoutRead {
                pattern: w.pattern.to_string(),
            })
            .collect()
    }
}

/// Whether every repository matched by `inner` is matched by `outer`.
fn covers(outer: &RepositoryPattern, inner: &RepositoryPattern) -> bool {
    use RepositoryPattern::*;
    match (outer, inner) {
        (All, _) => true,
        (_, All) => false,
        (Prefix(o), Prefix(i)) => o == i || Prefix(o.clone()).matches(i),
        (Prefix(_), Exact(i)) => outer.matches(i),
        (Exact(o), Exact(i)) => o == i,
        (Exact(_), Prefix(_)) => false,
    }
}

fn validate_name(name: &str, extra: &[u8], allowed: &'static str) -> Result<(), ScopeMapError> {
    let ok = (5..=50).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || extra.contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ScopeMapError::InvalidName {
            name: name.to_string(),
            allowed,
        })
    }
}

/// Scope-map names: 5–50 characters of `[a-zA-Z0-9_-]`.
pub fn validate_scope_map_name(name: &str) -> Result<(), ScopeMapError> {
    validate_name(name, b"_", "[a-zA-Z0-9_-]")
}

/// Repository-token names: 5–50 characters of `[a-zA-Z0-9-]`, and not the
/// registry's own name in any case (that username logs in as the admin
/// account).
pub fn validate_token_name(name: &str, registry_name: &str) -> Result<(), ScopeMapError> {
    validate_name(name, b"", "[a-zA-Z0-9-]")?;
    if name.eq_ignore_ascii_case(registry_name) {
        return Err(ScopeMapError::ReservedName(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ActionSet;

    #[test]
    fn rule_round_trip() {
        for s in [
            "repositories/*/content/read",
            "repositories/sample/*/content/write",
            "repositories/sample/hello-world/content/delete",
            "repositories/a.b/c_d/*/metadata/read",
            "repositories/x/metadata/write",
        ] {
            let r = ScopeMapRule::parse(s).unwrap();
            assert_eq!(r.to_string(), s);
        }
    }

    type Case = (&'static str, fn(&ScopeMapError) -> bool);

    #[test]
    fn invalid_rules() {
        use ScopeMapError::*;
        let cases: &[Case] = &[
            ("sample/content/read", |e| matches!(e, MissingPrefix(_))),
            ("repositories/sample/content/list", |e| {
                matches!(e, UnknownAction(_))
            }),
            ("repositories/sample/pull", |e| {
                matches!(e, UnknownAction(_))
            }),
            ("repositories/content/read", |e| {
                matches!(e, UnknownAction(_))
            }),
            ("repositories/sample/*/x/content/read", |e| {
                matches!(e, MisplacedWildcard(_))
            }),
            ("repositories/sample/x*/content/read", |e| {
                matches!(e, MisplacedWildcard(_))
            }),
            ("repositories/sam*ple/content/read", |e| {
                matches!(e, MisplacedWildcard(_))
            }),
            ("repositories/**/content/read", |e| {
                matches!(e, MisplacedWildcard(_))
            }),
            ("repositories//*/content/read", |e| {
                matches!(e, InvalidRepository(_))
            }),
            ("repositories/Sample/content/read", |e| {
                matches!(e, InvalidRepository(_))
            }),
            ("repositories/sample//content/read", |e| {
                matches!(e, InvalidRepository(_))
            }),
            ("repositories/a:b/content/read", |e| {
                matches!(e, InvalidRepository(_))
            }),
        ];
        for (input, check) in cases {
            let err = ScopeMapRule::parse(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn pattern_matching() {
        let all = RepositoryPattern::parse("*").unwrap();
        let pre = RepositoryPattern::parse("sample/*").unwrap();
        let exact = RepositoryPattern::parse("sample").unwrap();
        assert!(all.matches("anything/at/all"));
        assert!(pre.matches("sample/a"));
        assert!(pre.matches("sample/a/b"));
        assert!(
            !pre.matches("sample"),
            "prefix/* does not cover prefix itself"
        );
        assert!(!pre.matches("sample2/a"));
        assert!(!pre.matches("samplea"));
        assert!(!pre.matches("other/sample/a"));
        assert!(exact.matches("sample"));
        assert!(!exact.matches("sample/a"));
    }

    #[test]
    fn permissions_add_up() {
        let m = ScopeMap::parse(
            "my-map",
            &[
                "repositories/team/*/content/read",
                "repositories/team/app/content/write",
                "repositories/*/metadata/read",
            ],
        )
        .unwrap();
        assert_eq!(
            m.actions_for("team/app"),
            ActionSet::of(&[Action::Pull, Action::Push, Action::MetadataRead])
        );
        assert_eq!(
            m.actions_for("team/other"),
            ActionSet::of(&[Action::Pull, Action::MetadataRead])
        );
        assert_eq!(
            m.actions_for("not-yet/created"),
            ActionSet::of(&[Action::MetadataRead])
        );
        assert_eq!(
            m.rule_granting("team/app", ScopeMapAction::ContentWrite)
                .unwrap()
                .to_string(),
            "repositories/team/app/content/write"
        );
        assert!(m
            .rule_granting("team", ScopeMapAction::ContentRead)
            .is_none());
    }

    #[test]
    fn system_maps() {
        let expect = [
            (SYSTEM_PULL, ActionSet::PULL),
            (
                SYSTEM_PULL_METADATA_READ,
                ActionSet::of(&[Action::Pull, Action::MetadataRead]),
            ),
            (SYSTEM_PUSH, ActionSet::PULL_PUSH),
            (
                SYSTEM_PUSH_METADATA_WRITE,
                ActionSet::of(&[
                    Action::Pull,
                    Action::Push,
                    Action::MetadataRead,
                    Action::MetadataWrite,
                ]),
            ),
            (SYSTEM_ADMIN, ActionSet::REPOSITORY_ALL),
        ];
        for (name, actions) in expect {
            let m = ScopeMap::system(name).unwrap();
            assert!(m.is_system());
            assert_eq!(m.actions_for("any/repo"), actions, "{name}");
            assert!(m.lint().is_empty());
        }
        assert!(ScopeMap::system("_repositories_other").is_none());
        assert!(matches!(
            ScopeMap::parse::<&str>(SYSTEM_PULL, &[]),
            Err(ScopeMapError::ReservedName(_))
        ));
    }

    #[test]
    fn names() {
        assert!(validate_scope_map_name("my_map-1").is_ok());
        assert!(validate_scope_map_name("abcd").is_err());
        assert!(validate_scope_map_name(&"a".repeat(50)).is_ok());
        assert!(validate_scope_map_name(&"a".repeat(51)).is_err());
        assert!(validate_scope_map_name("my map").is_err());
        assert!(validate_token_name("ci-token", "myregistry").is_ok());
        assert!(validate_token_name("ci_token", "myregistry").is_err());
        assert!(validate_token_name("ci$token", "myregistry").is_err());
        assert!(matches!(
            validate_token_name("MyRegistry", "myregistry"),
            Err(ScopeMapError::ReservedName(_))
        ));
    }

    #[test]
    fn too_many_rules_and_dedup() {
        let rules: Vec<String> = (0..501)
            .map(|i| format!("repositories/r{i}/content/read"))
            .collect();
        assert!(matches!(
            ScopeMap::parse("big-map", &rules),
            Err(ScopeMapError::TooManyRules(501))
        ));
        let m = ScopeMap::parse(
            "dup-map",
            &["repositories/a/content/read", "repositories/a/content/read"],
        )
        .unwrap();
        assert_eq!(m.rules().len(), 1);
    }

    #[test]
    fn lint_write_without_read() {
        let m = ScopeMap::parse(
            "lint-map",
            &[
                "repositories/a/content/write",
                "repositories/team/*/content/read",
                "repositories/team/x/content/write",
                "repositories/team/*/content/write",
            ],
        )
        .unwrap();
        let w = m.lint();
        assert_eq!(
            w,
            vec![ScopeMapWarning::WriteWithoutRead {
                pattern: "a".into()
            }]
        );
        assert!(w[0].to_string().contains("pushes need both"));
    }

    #[test]
    fn serde_uses_stored_form() {
        let m = ScopeMap::parse("json-map", &["repositories/a/*/content/read"]).unwrap();
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["rules"][0], "repositories/a/*/content/read");
        let back: ScopeMap = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<ScopeMapRule>("\"repositories/a*/content/read\"").is_err());
    }
}
