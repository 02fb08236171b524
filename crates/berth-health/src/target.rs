//! The login server as the user gave it: `[scheme://]host[:port][/]`.

use std::net::IpAddr;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed login server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// The port (given, or the scheme's default).
    pub port: u16,
    /// Whether a port was given.
    pub explicit_port: bool,
    /// The scheme, when one was given.
    pub scheme: Option<Scheme>,
}

impl Target {
    /// Parse what the user typed. The error says what is wrong and how
    /// to spell it instead.
    pub fn parse(input: &str) -> Result<Target, String> {
        let trimmed = input.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Some(Scheme::Https), rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Some(Scheme::Http), rest),
            Some((s, _)) => {
                return Err(format!(
                    "login server '{input}' has the scheme '{s}': only http:// and https:// (or none) are possible"
                ))
            }
            None => (None, trimmed),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some((hostport, path)) = rest.split_once('/') {
            return Err(format!(
                "login server '{input}' contains a path ('/{path}'): a login server is host[:port] only, e.g. '{hostport}'"
            ));
        }
        if rest.is_empty() {
            return Err(format!("login server '{input}' has no host"));
        }
        if rest.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "login server '{input}' contains uppercase letters: clients refuse image references with uppercase registry names; use '{}'",
                rest.to_ascii_lowercase()
            ));
        }
        let (host, port) = split_host_port(rest)
            .ok_or_else(|| format!("login server '{input}' is not host[:port]"))?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(format!(
                "login server '{input}' has an invalid host name '{host}'"
            ));
        }
        if host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "login server '{input}' is not host[:port] ('{host}' is not an IPv6 address)"
            ));
        }
        let explicit_port = port.is_some();
        let port = match port {
            Some(p) => p,
            None if scheme == Some(Scheme::Http) => 80,
            None => 443,
        };
        Ok(Target {
            host,
            port,
            explicit_port,
            scheme,
        })
    }

    /// `host[:port]` as given (IPv6 in brackets): the key clients look up
    /// in config.json and the `service` tokens are issued for.
    pub fn host_port(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.explicit_port {
            format!("{host}:{}", self.port)
        } else {
            host
        }
    }

    /// `scheme://host[:port]` for requests.
    pub fn base_url(&self, scheme: Scheme) -> String {
        format!("{}://{}", scheme.as_str(), self.host_port())
    }

    /// Whether the host is a loopback address or `localhost` (clients
    /// allow plain HTTP only there).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// `host[:port]` / `[v6]:port` → (host, port).
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host.to_string(), Some(parse_port(p)?))),
            None if after.is_empty() => Some((host.to_string(), None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), Some(parse_port(p)?))),
        Some(_) => Some((s.to_string(), None)), // bare IPv6
        None => Some((s.to_string(), None)),
    }
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|p| *p != 0)
}

/// A config.json key reduced to compare spellings: no scheme, no trailing
/// slash or path, lowercase, default port dropped.
pub fn normalize_key(key: &str) -> String {
    let k = key.trim().to_ascii_lowercase();
    let k = k.split_once("://").map_or(k.as_str(), |(_, r)| r);
    let k = k.split('/').next().unwrap_or(k);
    k.strip_suffix(":443").unwrap_or(k).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_login_servers() {
        let t = Target::parse("127.0.0.1:5000").expect("ok");
        assert_eq!(
            (t.host.as_str(), t.port, t.scheme),
            ("127.0.0.1", 5000, None)
        );
        assert_eq!(t.host_port(), "127.0.0.1:5000");
        assert!(t.is_loopback());
        let t = Target::parse("https://reg.example.com/").expect("ok");
        assert_eq!((t.port, t.scheme), (443, Some(Scheme::Https)));
        assert_eq!(t.host_port(), "reg.example.com");
        let t = Target::parse("[::1]:8443").expect("ok");
        assert_eq!(t.host, "::1");
        assert_eq!(t.host_port(), "[::1]:8443");
        assert!(Target::parse("Reg.example.com")
            .unwrap_err()
            .contains("'reg.example.com'"));
        assert!(Target::parse("reg.example.com/v2")
            .unwrap_err()
            .contains("path"));
        assert!(Target::parse("reg:99999").is_err());
        assert!(Target::parse("ftp://reg").is_err());
        assert!(Target::parse("").is_err());
        assert!(Target::parse("::::").is_err());
        assert_eq!(
            Target::parse("::1").expect("bare IPv6").host_port(),
            "[::1]"
        );
    }

    #[test]
    fn normalizes_keys() {
        assert_eq!(
            normalize_key("https://Reg.example.com:443/"),
            "reg.example.com"
        );
        assert_eq!(normalize_key("reg:5000"), "reg:5000");
        assert_eq!(normalize_key("http://reg:5000/v2/"), "reg:5000");
    }
}
