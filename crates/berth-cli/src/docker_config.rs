//! docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): read, change one host's entry, write back
//! atomically with mode 0600, keeping every other field as it was.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::private_file;

/// The username docker and berth use with a registry refresh token.
pub const TOKEN_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// A loaded docker config file.
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// The directory holding docker's config: `$DOCKER_CONFIG` or `~/.docker`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither DOCKER_CONFIG nor HOME is set: cannot find docker's config.json")?;
    Ok(PathBuf::from(home).join(".docker"))
}

/// The credential helper a config document routes `host` to:
/// `credHelpers[host]`, else `credsStore` (docker's rule).
pub fn helper_in(doc: &Map<String, Value>, host: &str) -> Option<String> {
    let named = doc
        .get("credHelpers")
        .and_then(|h| h.get(host))
        .and_then(Value::as_str);
    named
        .or_else(|| doc.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

impl DockerConfig {
    /// Load the config file (an empty one when it does not exist yet).
    pub fn load() -> anyhow::Result<DockerConfig> {
        let path = config_dir()?.join("config.json");
        let doc = match private_file::read_optional(&path)? {
            None => Map::new(),
            Some(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Map::new(),
            Some(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => anyhow::bail!("{} is not a JSON object", path.display()),
                Err(e) => anyhow::bail!(
                    "{} is not valid JSON ({e}); fix or move it, berth will not overwrite it",
                    path.display()
                ),
            },
        };
        Ok(DockerConfig { path, doc })
    }

    /// Where the file lives.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The credential helper that holds `host`'s credentials:
    /// `credHelpers[host]`, else `credsStore`.
    pub fn helper_for(&self, host: &str) -> Option<String> {
        helper_in(&self.doc, host)
    }

    /// Run `f` on the `auths` object (created when missing).
    fn with_auths<R>(&mut self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        let mut auths = match self.doc.remove("auths") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let r = f(&mut auths);
        self.doc.insert("auths".into(), Value::Object(auths));
        r
    }

    /// `auths[host] = {auth: base64("<TOKEN_USERNAME>:"), identitytoken}`.
    pub fn set_identity_token(&mut self, host: &str, refresh_token: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USERNAME}:"));
        let entry = json!({ "auth": auth, "identitytoken": refresh_token });
        self.with_auths(|a| a.insert(host.to_string(), entry));
    }

    /// `auths[host] = {}`: the host's secret lives in a credential helper.
    pub fn set_helper_entry(&mut self, host: &str) {
        self.with_auths(|a| a.insert(host.to_string(), json!({})));
    }

    /// Drop `auths[host]`; whether there was one.
    pub fn remove(&mut self, host: &str) -> bool {
        self.with_auths(|a| a.remove(host).is_some())
    }

    /// Write the file back.
    pub fn save(&self) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&self.doc)?;
        bytes.push(b'\n');
        private_file::write_atomic(&self.path, &bytes)
    }
}
