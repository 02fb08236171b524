//! Login-server name checks, done before any network call: berth login
//! servers are lowercase `host[:port]` with a domain (or a port, or a
//! loopback name), no scheme and no path.

use std::net::IpAddr;

/// Check the form of a login server: no scheme, no path, lowercase.
/// `berth serve --login-server` uses this too.
pub fn check_form(s: &str) -> anyhow::Result<()> {
    if s.is_empty() {
        anyhow::bail!("login server must not be empty");
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        anyhow::bail!(
            "login server '{s}' must not include a scheme: use '{}' ({scheme}:// is not part of the name)",
            rest.split('/').next().unwrap_or(rest)
        );
    }
    if s.contains('/') {
        anyhow::bail!(
            "login server '{s}' must not include a path: use '{}'",
            s.split('/').next().unwrap_or(s)
        );
    }
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        anyhow::bail!(
            "login server '{s}' must be lowercase: use '{}'",
            s.to_ascii_lowercase()
        );
    }
    if s.chars().any(|c| c.is_whitespace() || c == '@') {
        anyhow::bail!("login server '{s}' is not a host name");
    }
    Ok(())
}

/// Check a login server given to the CLI: [`check_form`], and a bare name
/// (no domain, no port, not `localhost`) is refused with a request for the
/// full login server.
pub fn check_login_server(s: &str) -> anyhow::Result<()> {
    check_form(s)?;
    let host = host_part(s);
    let bare = !host.contains('.')
        && !s.contains(':')
        && host != "localhost"
        && host.parse::<IpAddr>().is_err();
    if bare {
        anyhow::bail!(
            "'{s}' is a registry name, not a login server: give the full login server, e.g. '{s}.example.com' or '{s}:5000'"
        );
    }
    Ok(())
}

/// The host without its port (`[::1]:5000` → `::1`).
pub fn host_part(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match s.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => s,
    }
}

/// Whether the login server is on this machine (127.0.0.0/8, `::1`,
/// `localhost`): the CLI talks plain HTTP to those, like docker's default
/// insecure registries.
pub fn is_loopback(s: &str) -> bool {
    let host = host_part(s);
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The login server a credential-helper request names: docker sends
/// `host`, `https://host` or `https://host/v1/`; keep the host.
pub fn server_from_url(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_login_servers() {
        for ok in [
            "myreg.example.com",
            "127.0.0.1:5000",
            "localhost",
            "localhost:5000",
            "[::1]:5000",
            "reg:443",
        ] {
            check_login_server(ok).unwrap();
        }
    }

    #[test]
    fn explains_bad_names() {
        let e = check_login_server("MyReg.example.com")
            .unwrap_err()
            .to_string();
        assert!(e.contains("use 'myreg.example.com'"), "{e}");
        let e = check_login_server("myreg").unwrap_err().to_string();
        assert!(e.contains("full login server"), "{e}");
        let e = check_login_server("https://r.example.com/v2/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("use 'r.example.com'"), "{e}");
        let e = check_login_server("r.example.com/team")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must not include a path"), "{e}");
    }

    #[test]
    fn loopback_and_urls() {
        assert!(is_loopback("127.0.0.2:80"));
        assert!(is_loopback("[::1]:5000"));
        assert!(is_loopback("localhost:1"));
        assert!(!is_loopback("reg.example.com"));
        assert_eq!(server_from_url("https://r.io/v1/"), "r.io");
        assert_eq!(server_from_url("r.io:5000"), "r.io:5000");
    }
}
