//! Reading credentials the way docker does: `config.json` (`auths`,
//! `credsStore`, `credHelpers`) and the credential-helper protocol
//! (`docker-credential-<name> get`, server URL on stdin, JSON on stdout).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

/// Username that marks the password as a registry refresh token.
pub use berth_cli::docker_config::TOKEN_USERNAME;

/// How a client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password: a directory user, the admin account, a
    /// repository-scoped token, or (with `service_principal`) an app id and
    /// client secret.
    Password {
        /// Username or app id.
        username: String,
        /// Password or client secret.
        password: String,
        /// Use the client-credentials grant.
        service_principal: bool,
    },
    /// A registry refresh token (docker's `identitytoken`).
    RefreshToken(String),
}

/// The path docker reads: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
/// The same lookup `berth login` writes through, so the check reads the
/// file the login wrote.
pub fn config_path() -> Option<PathBuf> {
    berth_cli::docker_config::config_dir()
        .ok()
        .map(|d| d.join("config.json"))
}

/// A parsed config.json.
#[derive(Debug, Default)]
pub struct DockerConfig {
    /// The whole document.
    pub doc: Value,
}

impl DockerConfig {
    /// Read `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<DockerConfig>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
        if !doc.is_object() {
            return Err(format!("{} is not a JSON object", path.display()));
        }
        Ok(Some(DockerConfig { doc }))
    }

    /// The keys of `auths`.
    pub fn auth_keys(&self) -> Vec<String> {
        self.doc["auths"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The helper that serves `key`: `credHelpers[key]`, else `credsStore`.
    pub fn helper_for(&self, key: &str) -> Option<String> {
        berth_cli::docker_config::helper_in(self.doc.as_object()?, key)
    }

    /// The credential stored inline under `auths[key]`.
    pub fn inline_credential(&self, key: &str) -> Result<Option<Credential>, String> {
        let entry = &self.doc["auths"][key];
        if let Some(t) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::RefreshToken(t.to_string())));
        }
        let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("auths[\"{key}\"].auth is not base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| format!("auths[\"{key}\"].auth is not UTF-8"))?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| format!("auths[\"{key}\"].auth is not base64(user:password)"))?;
        Ok(Some(from_user_secret(user, pass)))
    }
}

/// A username/secret pair as a [`Credential`]: the token username (or
/// docker's `<token>`) means the secret is a refresh token.
pub fn from_user_secret(user: &str, secret: &str) -> Credential {
    if user == TOKEN_USERNAME || user == "<token>" {
        Credential::RefreshToken(secret.to_string())
    } else {
        Credential::Password {
            username: user.to_string(),
            password: secret.to_string(),
            service_principal: false,
        }
    }
}

/// `docker-credential-<helper> get` for `server`: `Ok(None)` when the
/// helper has no credentials for it.
pub async fn helper_get(helper: &str, server: &str) -> Result<Option<Credential>, String> {
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| format!("{program}: writing the server URL: {e}"))?;
    }
    let out = tokio::time::timeout(Duration::from_secs(3), child.wait_with_output())
        .await
        .map_err(|_| format!("{program} get did not answer within 3 s"))?
        .map_err(|e| format!("{program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "{program} get failed ({}): {}",
            out.status,
            stdout.trim()
        ));
    }
    let v: Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("{program} get did not print credential JSON: {e}"))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(s)) if !s.is_empty() => Ok(Some(from_user_secret(u, s))),
        _ => Err(format!("{program} get printed no Username/Secret")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (issue 16): any config.json object is read (auths keys,
    /// helpers, inline credentials) without a panic.
    #[test]
    fn fuzz_docker_config() {
        berth_core::fuzz::run(
            "docker_config",
            &[
                br#"{"auths":{"r.example.com":{"auth":"YWxpY2U6c2VjcmV0"},"https://r2/v1/":{"auth":"","identitytoken":"t"}},"credsStore":"desktop","credHelpers":{"r3":"ecr"}}"#,
                br#"{"auths":{"x":{"auth":"!!!"}}}"#,
                br#"{"auths":[]}"#,
            ],
            |bytes| {
                let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
                    return;
                };
                let config = DockerConfig { doc };
                for key in config.auth_keys() {
                    let _ = config.helper_for(&key);
                    let _ = config.inline_credential(&key);
                }
                let _ = config.helper_for("r3");
            },
        );
    }

    #[test]
    fn reads_inline_credentials() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:pw");
        let tok = base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USERNAME}:"));
        let c = DockerConfig {
            doc: serde_json::json!({
                "auths": {
                    "a:1": {"auth": auth},
                    "b:1": {"auth": tok, "identitytoken": "rt"},
                    "c:1": {}
                },
                "credHelpers": {"d:1": "pass"},
                "credsStore": "desktop"
            }),
        };
        assert_eq!(
            c.inline_credential("a:1").expect("ok"),
            Some(Credential::Password {
                username: "alice".into(),
                password: "pw".into(),
                service_principal: false
            })
        );
        assert_eq!(
            c.inline_credential("b:1").expect("ok"),
            Some(Credential::RefreshToken("rt".into()))
        );
        assert_eq!(c.inline_credential("c:1").expect("ok"), None);
        assert_eq!(c.helper_for("d:1").as_deref(), Some("pass"));
        assert_eq!(c.helper_for("a:1").as_deref(), Some("desktop"));
        let bad = DockerConfig {
            doc: serde_json::json!({"auths": {"x": {"auth": "!!"}}}),
        };
        assert!(bad.inline_credential("x").is_err());
    }
}
