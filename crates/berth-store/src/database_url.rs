//! The metadata database's URL (`--database-url`), which may carry a
//! password: it is kept whole only for connecting, and every way of
//! printing it (`Display`, `Debug`, error messages) shows `***` instead.

use std::fmt;

/// A `postgres://` (or `postgresql://`) URL. Printing it never shows the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
}

impl DatabaseUrl {
    /// Parse a URL; only PostgreSQL URLs are accepted (SQLite is the
    /// default and needs none). The message never repeats the password.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "database URL {} must look like postgres://user@host:5432/berth",
                redact(url)
            ));
        };
        if !matches!(scheme, "postgres" | "postgresql") {
            return Err(format!(
                "database URL {}: unsupported scheme {scheme:?} (berth supports postgres://; \
                 without --database-url it keeps SQLite in the data directory)",
                redact(url)
            ));
        }
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        if host.is_empty() || (host.starts_with('/') && !url.contains("host=")) {
            return Err(format!("database URL {} names no host", redact(url)));
        }
        Ok(DatabaseUrl {
            url: url.to_string(),
        })
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The password, when the URL has one (to scrub it from messages).
    fn password(&self) -> Option<&str> {
        let rest = self.url.split_once("://")?.1;
        let userinfo = rest.rsplit_once('@')?.0;
        let pw = userinfo.split_once(':')?.1;
        (!pw.is_empty()).then_some(pw)
    }

    /// `text` with every occurrence of this URL's password replaced by
    /// `***` (for errors from the driver, which may quote what it was
    /// given).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.url, &redact(&self.url));
        if let Some(pw) = self.password() {
            out = out.replace(pw, "***");
        }
        out
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.url))
    }
}

/// `url` with the password of its user info (and any `password=` query
/// parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => head.to_string(),
            },
            None => head.to_string(),
        },
        None => head.to_string(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_never_shows_the_password() {
        let u = DatabaseUrl::parse("postgres://berth:s3cr%40t@db.example:5432/berth").unwrap();
        assert_eq!(u.to_string(), "postgres://berth:***@db.example:5432/berth");
        assert!(!format!("{u:?}").contains("s3cr"));
        assert_eq!(u.scrub("failed: s3cr%40t nope"), "failed: *** nope");
        assert_eq!(
            redact("postgres://db/berth?user=a&password=x&sslmode=require"),
            "postgres://db/berth?user=a&password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://a@h/b"), "postgres://a@h/b");
    }

    #[test]
    fn only_postgres_urls() {
        assert!(DatabaseUrl::parse("mysql://u:p@h/db")
            .unwrap_err()
            .contains("u:***@h"));
        assert!(DatabaseUrl::parse("nonsense").is_err());
        assert!(DatabaseUrl::parse("postgresql://u@h/db").is_ok());
    }
}
