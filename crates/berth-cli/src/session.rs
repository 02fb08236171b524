//! berth's own per-login-server sessions: `sessions.json` in
//! `$BERTH_CONFIG_DIR` (else `$XDG_CONFIG_HOME/berth`, else
//! `~/.config/berth`), mode 0600. A session holds what the CLI and the
//! credential helper need to get a fresh refresh token later: the
//! directory token and its expiry, and for a service principal its app id
//! and secret. A user's password is never stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::client::Connection;
use crate::private_file;

/// How a session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoginKind {
    /// A directory user (name + password); renewable while the directory
    /// token lasts.
    User,
    /// A service principal (app id + secret); renewable indefinitely.
    ServicePrincipal,
    /// An identity token handed to the credential helper's `store`.
    Token,
}

/// One login server's session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// How it was opened.
    pub kind: LoginKind,
    /// The user name or app id that logged in.
    pub username: String,
    /// How to reach the login server.
    #[serde(flatten)]
    pub connection: Connection,
    /// The directory token (Bearer for `/api/v1`, input of the exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_token: Option<String>,
    /// Unix seconds at which the directory token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_token_expires_at: Option<u64>,
    /// A service principal's client secret (to renew the directory token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The last registry refresh token obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Seconds before expiry at which a directory token counts as expired.
const EXPIRY_MARGIN: u64 = 60;

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Session {
    /// The directory token, when it is still good for a minute.
    pub fn live_directory_token(&self) -> Option<&str> {
        match (&self.directory_token, self.directory_token_expires_at) {
            (Some(t), Some(exp)) if exp > now() + EXPIRY_MARGIN => Some(t),
            _ => None,
        }
    }
}

/// Every stored session plus the registry logged in to last.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sessions {
    /// The `-r/--registry` default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_registry: Option<String>,
    /// Login server → session.
    #[serde(default)]
    pub sessions: BTreeMap<String, Session>,
    #[serde(skip)]
    path: PathBuf,
}

/// berth's config directory.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("BERTH_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("berth"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("none of BERTH_CONFIG_DIR, XDG_CONFIG_HOME, HOME is set")?;
    Ok(PathBuf::from(home).join(".config").join("berth"))
}

impl Sessions {
    /// Load the session file (empty when missing).
    pub fn load() -> anyhow::Result<Sessions> {
        let path = config_dir()?.join("sessions.json");
        Self::load_from(&path)
    }

    fn load_from(path: &Path) -> anyhow::Result<Sessions> {
        let mut s = match private_file::read_optional(path)? {
            None => Sessions::default(),
            Some(b) => serde_json::from_slice(&b).with_context(|| {
                format!("{} is damaged; delete it and log in again", path.display())
            })?,
        };
        s.path = path.to_path_buf();
        Ok(s)
    }

    /// Write the file back (0600, atomic).
    pub fn save(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        private_file::write_atomic(&self.path, &bytes)
    }

    /// The registry `-r` names, else the last one logged in to.
    pub fn resolve_registry(&self, flag: Option<&str>) -> anyhow::Result<String> {
        match flag.or(self.last_registry.as_deref()) {
            Some(r) => Ok(r.to_string()),
            None => anyhow::bail!(
                "no registry given and none logged in to: pass -r/--registry <login-server> or run `berth login <login-server>`"
            ),
        }
    }

    /// The session for `host`, with a hint when there is none.
    pub fn get(&self, host: &str) -> anyhow::Result<&Session> {
        self.sessions
            .get(host)
            .with_context(|| format!("not logged in to {host}: run `berth login {host}` first"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Scheme;

    #[test]
    fn round_trip_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sessions.json");
        let mut s = Sessions::load_from(&p).unwrap();
        assert!(s.resolve_registry(None).is_err());
        s.last_registry = Some("r.example.com".into());
        s.sessions.insert(
            "r.example.com".into(),
            Session {
                kind: LoginKind::User,
                username: "alice".into(),
                connection: Connection {
                    scheme: Scheme::Https,
                    ca_file: None,
                },
                directory_token: Some("t".into()),
                directory_token_expires_at: Some(now() + 30),
                client_secret: None,
                refresh_token: None,
            },
        );
        s.save().unwrap();
        let s = Sessions::load_from(&p).unwrap();
        assert_eq!(s.resolve_registry(None).unwrap(), "r.example.com");
        assert_eq!(s.resolve_registry(Some("x.io")).unwrap(), "x.io");
        let sess = s.get("r.example.com").unwrap();
        assert!(sess.live_directory_token().is_none(), "inside the margin");
        assert!(s.get("other.io").is_err());
    }
}
