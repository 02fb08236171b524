//! Repository names, tags and manifest references, validated against the
//! distribution spec's grammar.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::Digest;

/// Longest repository name berth accepts (the spec's advice for name + host).
pub const MAX_NAME_LEN: usize = 255;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("static regex")
});
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("static regex"));

/// A validated repository name such as `library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a name or tag was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The repository name breaks the grammar.
    #[error("repository name must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*")]
    InvalidName,
    /// The repository name is too long.
    #[error("repository name must be at most {MAX_NAME_LEN} characters")]
    TooLong,
    /// The tag breaks the grammar.
    #[error("tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    InvalidTag,
}

impl FromStr for RepositoryName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if !NAME_RE.is_match(s) {
            return Err(NameError::InvalidName);
        }
        Ok(RepositoryName(s.to_string()))
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated tag such as `v1.2.3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if TAG_RE.is_match(s) {
            Ok(Tag(s.to_string()))
        } else {
            Err(NameError::InvalidTag)
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// By tag.
    Tag(Tag),
    /// By digest.
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse::<Digest>()
                .map(Reference::Digest)
                .map_err(|e| e.to_string())
        } else {
            s.parse::<Tag>()
                .map(Reference::Tag)
                .map_err(|e| e.to_string())
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/alpine",
            "a.b_c__d--e/f",
            "x/y/z",
            "my-org/sub.team/app_1",
        ] {
            assert!(ok.parse::<RepositoryName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a:b",
            "a b",
            "Library/x",
        ] {
            assert!(bad.parse::<RepositoryName>().is_err(), "{bad}");
        }
        assert_eq!(
            "a".repeat(256).parse::<RepositoryName>(),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn tags() {
        assert!("latest".parse::<Tag>().is_ok());
        assert!("_x.Y-1".parse::<Tag>().is_ok());
        assert!("a".repeat(128).parse::<Tag>().is_ok());
        assert!("a".repeat(129).parse::<Tag>().is_err());
        assert!(".x".parse::<Tag>().is_err());
        assert!("-x".parse::<Tag>().is_err());
        assert!("".parse::<Tag>().is_err());
    }

    #[test]
    fn references() {
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        let d = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }
}
