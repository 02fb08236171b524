//! `--pull-secret FILE`: the image pull secret parses as kubelet reads it
//! (a `kubernetes.io/dockerconfigjson` Secret — or the legacy
//! `kubernetes.io/dockercfg` — or a bare `.dockerconfigjson`), and one of
//! its keys matches `--image` by kubelet's rules. The credential of the
//! first key kubelet would try goes on to the login step.

use std::collections::BTreeMap;
use std::io::Read as _;

use base64::Engine as _;
use berth_cli::kube::api::{ANNOTATION_EXPIRES_AT, DOCKERCONFIGJSON_KEY, DOCKERCONFIGJSON_TYPE};
use berth_cli::kube::matching;
use serde_json::Value;

use crate::context::Ctx;
use crate::dockerconfig::from_user_secret;
use crate::report::Finding;

const NAME: &str = "pull secret";
const KEY: &str = "secret key";
const LEGACY_TYPE: &str = "kubernetes.io/dockercfg";
const MAX_FILE: u64 = 4 << 20;

/// One `auths` entry, as kubelet's `DockerConfigEntry` decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A parsed pull secret.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Entries by their key as written.
    pub auths: BTreeMap<String, Entry>,
    /// The Secret's annotations (none for a bare `.dockerconfigjson`).
    pub annotations: BTreeMap<String, String>,
    /// What the file was (for messages).
    pub what: String,
}

/// Parse a Secret manifest (YAML or JSON) or a bare `.dockerconfigjson`.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let doc: Value =
        serde_yaml_ng::from_str(text).map_err(|e| format!("neither YAML nor JSON: {e}"))?;
    if doc.get("kind").and_then(Value::as_str) == Some("Secret") {
        let name = doc["metadata"]["name"].as_str().unwrap_or("(unnamed)");
        let ty = doc["type"].as_str().unwrap_or("Opaque");
        let annotations = doc["metadata"]["annotations"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let data_key = match ty {
            DOCKERCONFIGJSON_TYPE => DOCKERCONFIGJSON_KEY,
            LEGACY_TYPE => ".dockercfg",
            other => {
                return Err(format!(
                    "Secret {name:?} has type {other:?}: kubelet only reads image pull secrets of type {DOCKERCONFIGJSON_TYPE}"
                ))
            }
        };
        let raw = if let Some(b64) = doc["data"][data_key].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.split_whitespace().collect::<String>())
                .map_err(|_| format!("Secret {name:?}: data[{data_key:?}] is not base64"))?;
            String::from_utf8(bytes)
                .map_err(|_| format!("Secret {name:?}: data[{data_key:?}] is not UTF-8"))?
        } else if let Some(plain) = doc["stringData"][data_key].as_str() {
            plain.to_string()
        } else {
            return Err(format!(
                "Secret {name:?} has no data[{data_key:?}] (the key must be exactly {data_key:?})"
            ));
        };
        let inner: Value = serde_json::from_str(&raw)
            .map_err(|e| format!("Secret {name:?}: {data_key} is not JSON: {e}"))?;
        let auths = if ty == LEGACY_TYPE {
            &inner
        } else {
            &inner["auths"]
        };
        return Ok(Parsed {
            auths: entries(auths)?,
            annotations,
            what: format!("Secret {name:?}"),
        });
    }
    if doc.get("auths").is_some() {
        return Ok(Parsed {
            auths: entries(&doc["auths"])?,
            annotations: BTreeMap::new(),
            what: ".dockerconfigjson".into(),
        });
    }
    Err(format!(
        "not a Secret (kind: Secret, type: {DOCKERCONFIGJSON_TYPE}) and not a .dockerconfigjson (no \"auths\")"
    ))
}

/// The `auths` map: `auth` (base64 `user:password`) wins over
/// `username`/`password`, as in kubelet.
fn entries(auths: &Value) -> Result<BTreeMap<String, Entry>, String> {
    let map = auths
        .as_object()
        .ok_or("\"auths\" is not an object of registry entries")?;
    if map.is_empty() {
        return Err("\"auths\" is empty: no registry credentials".into());
    }
    let mut out = BTreeMap::new();
    for (key, v) in map {
        let mut e = Entry {
            username: v["username"].as_str().unwrap_or("").to_string(),
            password: v["password"].as_str().unwrap_or("").to_string(),
        };
        if let Some(auth) = v["auth"].as_str().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("auths[{key:?}].auth is not base64"))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| format!("auths[{key:?}].auth is not base64(username:password)"))?;
            e = Entry {
                username: u.to_string(),
                password: p.to_string(),
            };
        }
        out.insert(key.clone(), e);
    }
    Ok(out)
}

fn read(path: &str) -> Result<String, String> {
    let mut text = String::new();
    let result = if path == "-" {
        std::io::stdin().take(MAX_FILE).read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_FILE).read_to_string(&mut text))
    };
    result.map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(text)
}

/// Parse the secret and pick the credential kubelet would use.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let path = ctx.args.pull_secret.clone().unwrap_or_default();
    let Some(image) = ctx.image.clone() else {
        return vec![super::skipped(NAME, "no image")];
    };
    let parsed = match read(&path).and_then(|t| parse(&t)) {
        Ok(p) => p,
        Err(e) => {
            ctx.blocked = true;
            return vec![Finding::problem(NAME, "PULL_SECRET_INVALID", e)];
        }
    };
    let mut out = vec![Finding::ok(
        NAME,
        format!(
            "{} with {} registry key(s): {}",
            parsed.what,
            parsed.auths.len(),
            parsed
                .auths
                .keys()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )];
    let target = image.repo_to_pull();
    let matched = matching::lookup(parsed.auths.keys().map(String::as_str), &target);
    let Some(key) = matched.first().map(|k| k.to_string()) else {
        let why: Vec<String> = parsed
            .auths
            .keys()
            .map(|k| match matching::keyring_key(k) {
                None => format!("{k:?}: kubelet ignores it (not host[:port][/path])"),
                Some(norm) => match matching::match_str(&norm, &target) {
                    Err(m) => format!("{k:?}: {m}"),
                    Ok(()) => format!("{k:?}: matches"),
                },
            })
            .collect();
        ctx.blocked = true;
        out.push(Finding::problem(
            KEY,
            "PULL_SECRET_KEY_MISMATCH",
            format!(
                "no key matches {target:?} the way kubelet matches it, so the pod pulls without credentials: {}; the key should be {:?}",
                why.join("; "),
                image.registry
            ),
        ));
        return out;
    };
    let Some(entry) = parsed.auths.get(&key).cloned() else {
        return out;
    };
    let norm = matching::keyring_key(&key).unwrap_or_default();
    if norm != key {
        out.push(Finding::problem(
            KEY,
            "PULL_SECRET_KEY_SCHEME",
            format!(
                "key {key:?} matches {target:?} only because kubelet reads it as {norm:?}: the scheme (or /v1/, /v2/ path) is dropped and chooses nothing"
            ),
        ));
    } else {
        out.push(Finding::ok(
            KEY,
            format!("key {key:?} matches {target:?} (kubelet tries it first)"),
        ));
    }
    if let Some(at) = parsed
        .annotations
        .get(ANNOTATION_EXPIRES_AT)
        .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    {
        ctx.pull_expiry = Some((at.as_secs(), format!("{ANNOTATION_EXPIRES_AT} annotation")));
    }
    let credential = from_user_secret(&entry.username, &entry.password);
    if let crate::dockerconfig::Credential::RefreshToken(t) = &credential {
        if let Some(exp) = crate::token::expiry(t) {
            ctx.pull_expiry = Some((exp, "the refresh token's exp".into()));
        }
    }
    ctx.credential = Some((credential, format!("{} key {key:?}", parsed.what)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_secrets_like_kubelet() {
        let config = r#"{"auths":{"reg:5000":{"username":"u","password":"p","auth":"YTpi"}}}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(config);
        let yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    berth.io/expires-at: \"2030-01-01T00:00:00Z\"\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {b64}\n"
        );
        let p = parse(&yaml).expect("secret");
        assert_eq!(
            p.auths["reg:5000"],
            Entry {
                username: "a".into(),
                password: "b".into()
            }
        );
        assert!(p.annotations.contains_key(ANNOTATION_EXPIRES_AT));
        let bare = parse(config).expect("bare");
        assert_eq!(bare.what, ".dockerconfigjson");
        assert!(parse(&yaml.replace("kubernetes.io/dockerconfigjson", "Opaque")).is_err());
        assert!(parse(&yaml.replace(".dockerconfigjson:", ".dockerconfig:")).is_err());
        assert!(parse(r#"{"auths":{}}"#).is_err());
        assert!(parse(r#"{"auths":{"r":{"auth":"!!"}}}"#).is_err());
        assert!(parse("kind: Pod").is_err());
    }
}
