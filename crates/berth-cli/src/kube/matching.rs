//! kubelet's rules for which credentials belong to an image, reproduced
//! exactly (kubernetes `pkg/credentialprovider/keyring.go` and the
//! provider plugin's `isImageAllowed`):
//!
//! * A pattern (a `matchImages` entry, a pull-secret key, a provider's
//!   `auth` key) and an image are both read as URLs without a scheme:
//!   `https://` is put in front and Go's `url.Parse` splits host and path.
//! * They match when the ports are equal (a pattern without a port only
//!   matches images without one), the hosts have the same number of
//!   dot-separated parts and each pattern part glob-matches the image's
//!   (Go's `filepath.Match`: `*`, `?`, `[...]`; one part per glob, so
//!   `*.io` never matches `a.b.io`), and the pattern's path is a prefix
//!   of the image's path — a plain string prefix, so `host/team` also
//!   matches `host/teamwork/app`.
//! * Keys of a dockerconfigjson (and of a provider's `auth`) are first
//!   normalised: a leading `https://` or `http://` is dropped, a leading
//!   `/v1/` or `/v2/` of the path is dropped, a path of `/` is dropped.
//!   `matchImages` entries are *not* normalised: a scheme there never
//!   matches.
//! * Keys are tried longest first (reverse lexical order); with no match,
//!   an image on Docker Hub falls back to the key `index.docker.io`.

use std::collections::BTreeSet;

/// A URL without scheme, as Go's `url.Parse("https://" + s)` splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemelessUrl {
    /// `host[:port]` (brackets kept for IPv6), userinfo removed.
    pub host: String,
    /// The path, percent-decoded; empty when there is none.
    pub path: String,
}

/// Parse `s` as kubelet's `ParseSchemelessURL` does; `None` where Go's
/// parser returns an error (such a pattern never matches).
pub fn parse_schemeless(s: &str) -> Option<SchemelessUrl> {
    let s = s.split_once('#').map_or(s, |(a, _)| a);
    let s = s.split_once('?').map_or(s, |(a, _)| a);
    let (authority, path) = match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if !valid_host(host) {
        return None;
    }
    Some(SchemelessUrl {
        host: host.to_string(),
        path: percent_decode(path)?,
    })
}

/// Go's `parseHost`: brackets for IPv6, an optional `:digits` port, no
/// spaces or control characters.
fn valid_host(host: &str) -> bool {
    if host.chars().any(|c| c.is_control() || c == ' ' || c == '%') {
        return false;
    }
    let port = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, after)) => after,
            None => return false,
        }
    } else {
        match host.rfind(':') {
            Some(i) => &host[i..],
            None => "",
        }
    };
    port.is_empty() || (port.starts_with(':') && port[1..].chars().all(|c| c.is_ascii_digit()))
}

fn percent_decode(p: &str) -> Option<String> {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = p.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// kubelet's `SplitURL`: the host's dot-separated parts and the port
/// (`""` when Go's `net.SplitHostPort` fails, e.g. no port).
pub fn split_url(u: &SchemelessUrl) -> (Vec<&str>, &str) {
    let (host, port) = split_host_port(&u.host).unwrap_or((u.host.as_str(), ""));
    (host.split('.').collect(), port)
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let i = hp.rfind(':')?;
    let host = &hp[..i];
    if host.contains(':') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

/// Why a pattern does not match an image (the first rule that fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The pattern or the image is not a parseable URL.
    Unparseable,
    /// Ports differ (`""` = none).
    Port {
        /// The pattern's port.
        pattern: String,
        /// The image's port.
        image: String,
    },
    /// The hosts have a different number of dot-separated parts.
    PartCount {
        /// The pattern's count.
        pattern: usize,
        /// The image's count.
        image: usize,
    },
    /// The pattern's path is not a prefix of the image's.
    Path {
        /// The pattern's path.
        pattern: String,
        /// The image's path.
        image: String,
    },
    /// A host part does not glob-match.
    Part {
        /// The pattern's part.
        pattern: String,
        /// The image's part.
        image: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |p: &str| {
            if p.is_empty() {
                "none".to_string()
            } else {
                format!("{p:?}")
            }
        };
        match self {
            Mismatch::Unparseable => write!(f, "not a valid host[:port][/path]"),
            Mismatch::Port { pattern, image } => write!(
                f,
                "the port differs (key: {}, image: {}); kubelet compares ports exactly and adds no default",
                shown(pattern),
                shown(image)
            ),
            Mismatch::PartCount { pattern, image } => write!(
                f,
                "the host has {pattern} dot-separated part(s), the image's has {image}"
            ),
            Mismatch::Path { pattern, image } => write!(
                f,
                "the key's path {pattern:?} is not a prefix of the image's path {image:?}"
            ),
            Mismatch::Part { pattern, image } => {
                write!(f, "host part {pattern:?} does not match {image:?}")
            }
        }
    }
}

/// kubelet's `URLsMatchStr(glob, target)`, saying why not.
pub fn match_str(pattern: &str, image: &str) -> Result<(), Mismatch> {
    let (Some(p), Some(t)) = (parse_schemeless(pattern), parse_schemeless(image)) else {
        return Err(Mismatch::Unparseable);
    };
    let (p_parts, p_port) = split_url(&p);
    let (t_parts, t_port) = split_url(&t);
    if p_port != t_port {
        return Err(Mismatch::Port {
            pattern: p_port.to_string(),
            image: t_port.to_string(),
        });
    }
    if p_parts.len() != t_parts.len() {
        return Err(Mismatch::PartCount {
            pattern: p_parts.len(),
            image: t_parts.len(),
        });
    }
    if !t.path.starts_with(&p.path) {
        return Err(Mismatch::Path {
            pattern: p.path.clone(),
            image: t.path.clone(),
        });
    }
    for (g, part) in p_parts.iter().zip(&t_parts) {
        if !go_match(g, part).unwrap_or(false) {
            return Err(Mismatch::Part {
                pattern: g.to_string(),
                image: part.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether kubelet's `URLsMatchStr(pattern, image)` is true.
pub fn urls_match(pattern: &str, image: &str) -> bool {
    match_str(pattern, image).is_ok()
}

/// The key kubelet files a dockerconfigjson entry (or a provider's
/// `auth` entry) under: scheme, a leading `/v1` or `/v2` and a bare `/`
/// path dropped. `None` when Go's parser refuses it (kubelet ignores the
/// entry).
pub fn keyring_key(loc: &str) -> Option<String> {
    let rest = loc
        .strip_prefix("https://")
        .or_else(|| loc.strip_prefix("http://"))
        .unwrap_or(loc);
    let u = parse_schemeless(rest)?;
    let mut path = u.path.as_str();
    if path.starts_with("/v2/") || path.starts_with("/v1/") {
        path = &path[3..];
    }
    if path.is_empty() || path == "/" {
        Some(u.host)
    } else {
        Some(format!("{}{path}", u.host))
    }
}

/// The registry kubelet falls back to for Docker Hub images.
pub const DEFAULT_REGISTRY_KEY: &str = "index.docker.io";

/// kubelet's `isDefaultRegistryMatch`: the image is on Docker Hub.
pub fn is_default_registry_match(image: &str) -> bool {
    let (first, rest) = match image.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (image, None),
    };
    if first.is_empty() {
        return false;
    }
    if rest.is_none() || first == "docker.io" || first == "index.docker.io" {
        return true;
    }
    !first.contains(['.', ':']) && first != "localhost"
}

/// kubelet's `BasicDockerKeyring.Lookup` over the entries' original keys:
/// the original keys whose credentials kubelet would try for `image`, in
/// the order it tries them.
pub fn lookup<'a>(keys: impl IntoIterator<Item = &'a str>, image: &str) -> Vec<&'a str> {
    let mut by_key: Vec<(String, &'a str)> = keys
        .into_iter()
        .filter_map(|k| keyring_key(k).map(|n| (n, k)))
        .collect();
    let index: BTreeSet<String> = by_key.iter().map(|(n, _)| n.clone()).collect();
    by_key.sort_by(|a, b| a.1.cmp(b.1));
    let mut out = Vec::new();
    for norm in index.iter().rev() {
        if urls_match(norm, image) {
            out.extend(by_key.iter().filter(|(n, _)| n == norm).map(|(_, k)| *k));
        }
    }
    if out.is_empty() && is_default_registry_match(image) {
        out.extend(
            by_key
                .iter()
                .filter(|(n, _)| n == DEFAULT_REGISTRY_KEY)
                .map(|(_, k)| *k),
        );
    }
    out
}

/// Go's `filepath.ErrBadPattern`: a malformed glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path/filepath.Match` on Unix (`*`, `?`, `[^a-z]`, `\` escapes);
/// `Err` for a malformed pattern.
pub fn go_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> Result<bool, BadPattern> {
    let Some((&c, rest)) = p.split_first() else {
        return Ok(n.is_empty());
    };
    match c {
        '*' => {
            let rest = {
                let mut r = rest;
                while let Some((&'*', more)) = r.split_first() {
                    r = more;
                }
                r
            };
            for i in 0..=n.len() {
                if i > 0 && n[i - 1] == '/' {
                    break;
                }
                if match_from(rest, &n[i..])? {
                    return Ok(true);
                }
            }
            // Go reports a malformed remainder even when nothing matched.
            check_pattern(rest)?;
            Ok(false)
        }
        '?' => match n.split_first() {
            Some((&x, more)) if x != '/' => match_from(rest, more),
            _ => check_pattern(rest).map(|_| false),
        },
        '[' => {
            let (set, after) = parse_class(rest)?;
            match n.split_first() {
                Some((&x, more)) if x != '/' && set.contains(x) => match_from(after, more),
                _ => check_pattern(after).map(|_| false),
            }
        }
        '\\' => {
            let Some((&lit, after)) = rest.split_first() else {
                return Err(BadPattern);
            };
            match n.split_first() {
                Some((&x, more)) if x == lit => match_from(after, more),
                _ => check_pattern(after).map(|_| false),
            }
        }
        lit => match n.split_first() {
            Some((&x, more)) if x == lit => match_from(rest, more),
            _ => check_pattern(rest).map(|_| false),
        },
    }
}

/// Walk a pattern only to find whether it is malformed.
fn check_pattern(p: &[char]) -> Result<(), BadPattern> {
    let mut p = p;
    while let Some((&c, rest)) = p.split_first() {
        p = match c {
            '[' => parse_class(rest)?.1,
            '\\' => rest.split_first().ok_or(BadPattern)?.1,
            _ => rest,
        };
    }
    Ok(())
}

/// A `[...]` character class.
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// Parse a class after its `[`; the class and the pattern after `]`.
fn parse_class(p: &[char]) -> Result<(Class, &[char]), BadPattern> {
    let mut p = p;
    let negated = if let Some((&'^', rest)) = p.split_first() {
        p = rest;
        true
    } else {
        false
    };
    let mut ranges = Vec::new();
    loop {
        if let Some((&']', rest)) = p.split_first() {
            if !ranges.is_empty() {
                return Ok((Class { negated, ranges }, rest));
            }
        }
        let (lo, rest) = class_char(p)?;
        p = rest;
        let mut hi = lo;
        if let Some((&'-', rest)) = p.split_first() {
            let (h, rest) = class_char(rest)?;
            hi = h;
            p = rest;
        }
        ranges.push((lo, hi));
    }
}

/// Go's `getEsc`: one possibly escaped character of a class.
fn class_char(p: &[char]) -> Result<(char, &[char]), BadPattern> {
    match p.split_first() {
        None | Some((&('-' | ']'), _)) => Err(BadPattern),
        Some((&'\\', rest)) => rest.split_first().map(|(&c, r)| (c, r)).ok_or(BadPattern),
        Some((&c, rest)) => Ok((c, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_match_like_kubelet() {
        // Cases of kubernetes' keyring_test.go / URLsMatch documentation.
        let yes = [
            ("*.kubernetes.io", "prefix.kubernetes.io"),
            ("prefix.*.io", "prefix.kubernetes.io"),
            ("prefix.kubernetes.*", "prefix.kubernetes.io"),
            ("*-good.kubernetes.io", "prefix-good.kubernetes.io"),
            ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah"),
            ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar"),
            (
                "*.kubernetes.io:1111/blah",
                "prefix.kubernetes.io:1111/blah",
            ),
            ("127.0.0.1:5000", "127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000/team", "127.0.0.1:5000/teamwork/app"),
            ("[::1]:5000", "[::1]:5000/app"),
            ("reg.example.com", "reg.example.com/app:1.0"),
        ];
        for (p, i) in yes {
            assert!(urls_match(p, i), "{p} should match {i}");
        }
        let no = [
            ("*.kubernetes.io", "kubernetes.io"),
            ("*.*.kubernetes.io", "prefix.kubernetes.io"),
            ("*.kubernetes.io", "kubernetes.com"),
            ("*.kubernetes.io", "*.io"),
            ("*.kubernetes.io:1111", "prefix.kubernetes.io:1112"),
            ("*.kubernetes.io", "prefix.kubernetes.io:1111"),
            ("prefix.kubernetes.io/foo", "prefix.kubernetes.io/bar"),
            ("127.0.0.1", "127.0.0.1:5000/app"),
            ("127.0.0.1:5000", "127.0.0.1/app"),
            ("https://127.0.0.1:5000", "127.0.0.1:5000/app"),
            ("reg.example.com", "reg.example.com:443/app"),
            ("Reg.example.com", "reg.example.com/app"),
        ];
        for (p, i) in no {
            assert!(!urls_match(p, i), "{p} should not match {i}");
        }
        assert!(matches!(
            match_str("127.0.0.1", "127.0.0.1:5000/app"),
            Err(Mismatch::Port { .. })
        ));
    }

    #[test]
    fn keys_are_normalised_like_the_keyring() {
        assert_eq!(
            keyring_key("https://127.0.0.1:5000").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(keyring_key("http://reg:5000/").as_deref(), Some("reg:5000"));
        assert_eq!(keyring_key("https://reg/v2/").as_deref(), Some("reg"));
        assert_eq!(keyring_key("reg/v1/team").as_deref(), Some("reg/team"));
        assert_eq!(keyring_key("reg/team").as_deref(), Some("reg/team"));
        assert_eq!(keyring_key("reg:x"), None);
        let keys = ["reg:5000", "https://reg:5000/team", "other:5000", "reg"];
        assert_eq!(
            lookup(keys, "reg:5000/team/app"),
            vec!["https://reg:5000/team", "reg:5000"]
        );
        assert!(lookup(keys, "reg:5001/app").is_empty());
        assert_eq!(
            lookup(["index.docker.io"], "library/alpine"),
            vec!["index.docker.io"]
        );
        assert!(is_default_registry_match("docker.io/library/alpine"));
        assert!(!is_default_registry_match("localhost/app"));
        assert!(!is_default_registry_match("reg:5000/app"));
    }

    #[test]
    fn globs_follow_go() {
        assert_eq!(go_match("a*", "abc"), Ok(true));
        assert_eq!(go_match("a?c", "abc"), Ok(true));
        assert_eq!(go_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(go_match("[^a-c]x", "bx"), Ok(false));
        assert_eq!(go_match("\\*", "*"), Ok(true));
        assert_eq!(go_match("[]", "a"), Err(BadPattern));
        assert_eq!(go_match("a[", "b"), Err(BadPattern));
        assert_eq!(go_match("*", ""), Ok(true));
    }
}
