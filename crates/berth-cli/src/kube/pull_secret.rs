//! `berth pull-secret create`: a Kubernetes image pull secret (`Secret`
//! of type `kubernetes.io/dockerconfigjson`) holding a fresh repository
//! token password or service-principal secret that expires.
//!
//! The `.dockerconfigjson` is keyed by the login server exactly as images
//! name it (`host[:port]`, no scheme, no path), which is what kubelet's
//! matching needs; the Secret's annotations say which credential it holds
//! and when it expires, so `berth check-health --pull-secret` can warn
//! before it does.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use crate::kube::api::{
    ANNOTATION_CREDENTIAL, ANNOTATION_EXPIRES_AT, ANNOTATION_LOGIN_SERVER, DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
};
use crate::mgmt::{seg, Common, Ctx};
use crate::session::{now, Sessions};

const DAY: u64 = 86_400;

/// `berth pull-secret ...`.
#[derive(Args, Debug)]
pub struct PullSecretArgs {
    #[command(subcommand)]
    verb: PullSecretVerb,
}

#[derive(Subcommand, Debug)]
enum PullSecretVerb {
    /// Print a Secret of type kubernetes.io/dockerconfigjson holding a
    /// fresh, expiring token password or service-principal secret.
    Create(CreateArgs),
}

/// Output of `pull-secret create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SecretFormat {
    Yaml,
    Json,
}

/// `password1` or `password2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PasswordName {
    Password1,
    Password2,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// The login server (default: the last one logged in to).
    #[arg(short = 'r', long, env = "BERTH_REGISTRY", value_name = "LOGIN_SERVER")]
    registry: Option<String>,
    /// The Secret's name (a DNS subdomain: lowercase letters, digits, `-`, `.`).
    #[arg(long)]
    name: String,
    /// The Secret's namespace (omitted: kubectl's current namespace).
    #[arg(long)]
    namespace: Option<String>,
    /// Regenerate a password of this repository-scoped token (asks for
    /// confirmation: the old password stops working).
    #[arg(
        long,
        value_name = "TOKEN_NAME",
        required_unless_present = "service_principal"
    )]
    token: Option<String>,
    /// Add a client secret to this service principal.
    #[arg(long, value_name = "APP_ID", conflicts_with = "token")]
    service_principal: Option<String>,
    /// Which token password to regenerate.
    #[arg(long, value_enum, default_value = "password1", requires = "token")]
    password_name: PasswordName,
    /// How long the password stays valid, in whole days (`90d`, `2w`).
    #[arg(long, default_value = "90d", value_name = "DURATION")]
    expires_in: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "yaml")]
    output: SecretFormat,
    /// Do not ask before regenerating a token password.
    #[arg(short = 'y', long)]
    yes: bool,
}

/// Run a `berth pull-secret` verb.
pub async fn run(args: PullSecretArgs) -> anyhow::Result<()> {
    match args.verb {
        PullSecretVerb::Create(a) => create(a).await,
    }
}

/// `--expires-in` in whole days.
fn days(text: &str) -> anyhow::Result<u64> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| anyhow::anyhow!("--expires-in {text:?} is not a duration like 90d: {e}"))?;
    let secs = d.as_secs();
    if secs == 0 || secs % DAY != 0 || d.subsec_nanos() != 0 {
        anyhow::bail!(
            "--expires-in {text:?}: give whole days (e.g. 30d); the registry sets expiry in days"
        );
    }
    Ok(secs / DAY)
}

/// Kubernetes object names: a DNS subdomain (RFC 1123), ≤ 253; a
/// namespace: a DNS label, ≤ 63.
fn check_k8s_name(what: &str, s: &str, label: bool) -> anyhow::Result<()> {
    let max = if label { 63 } else { 253 };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    let ok = s.len() <= max
        && if label {
            part_ok(s)
        } else {
            s.split('.').all(part_ok)
        };
    if !ok {
        anyhow::bail!(
            "--{what} {s:?} is not a valid Kubernetes name (lowercase letters, digits and '-'{}, at most {max} characters)",
            if label { "" } else { ", parts separated by '.'" }
        );
    }
    Ok(())
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    check_k8s_name("name", &a.name, false)?;
    if let Some(ns) = &a.namespace {
        check_k8s_name("namespace", ns, true)?;
    }
    let days = days(&a.expires_in)?;
    let host = Sessions::load()?.resolve_registry(a.registry.as_deref())?;
    let common = Common {
        registry: Some(host.clone()),
        output: None,
        yes: a.yes,
    };
    let (username, password, expires_at, credential) = if let Some(token) = &a.token {
        let which = match a.password_name {
            PasswordName::Password1 => "password1",
            PasswordName::Password2 => "password2",
        };
        common.confirm(&format!(
            "regenerate {which} of token '{token}' (the old {which} stops working)"
        ))?;
        let ctx = Ctx::open(&common).await?;
        let body = json!({ "passwordName": which, "expirationInDays": days });
        let path = format!("tokens/{}/credentials/generate", seg(token));
        let v = ctx
            .call(Method::POST, &path, Some(body))
            .await?
            .unwrap_or(Value::Null);
        let p = v["newPasswords"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == which))
            .ok_or_else(|| anyhow::anyhow!("the registry returned no new {which}"))?;
        let value = p["value"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("the registry returned no password value"))?;
        (
            token.clone(),
            value.to_string(),
            p["expiresAt"].as_u64(),
            format!("token/{token}/{which}"),
        )
    } else if let Some(app_id) = &a.service_principal {
        let ctx = Ctx::open(&common).await?;
        let path = format!("service-principals/{}/credentials", seg(app_id));
        let v = ctx
            .call(
                Method::POST,
                &path,
                Some(json!({ "expirationInDays": days })),
            )
            .await?
            .unwrap_or(Value::Null);
        let secret = v["secret"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("the registry returned no secret"))?;
        let id = v["secretId"].as_str().unwrap_or("");
        (
            app_id.clone(),
            secret.to_string(),
            v["expiresAt"].as_u64(),
            format!("service-principal/{app_id}/{id}"),
        )
    } else {
        anyhow::bail!("give --token or --service-principal");
    };
    let secret = secret_manifest(&a, &host, &username, &password, expires_at, &credential);
    let text = match a.output {
        SecretFormat::Yaml => serde_yaml_ng::to_string(&secret)?,
        SecretFormat::Json => serde_json::to_string_pretty(&secret)? + "\n",
    };
    print!("{text}");
    match expires_at {
        Some(t) => eprintln!(
            "{credential} for {host} expires at {} (in {} days); create a new secret before then",
            rfc3339(t),
            t.saturating_sub(now()).div_ceil(DAY)
        ),
        None => eprintln!("{credential} for {host} does not expire"),
    }
    Ok(())
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// The `.dockerconfigjson` document for one login server.
pub fn dockerconfigjson(host: &str, username: &str, password: &str) -> Value {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    json!({ "auths": { host: { "username": username, "password": password, "auth": auth } } })
}

fn secret_manifest(
    a: &CreateArgs,
    host: &str,
    username: &str,
    password: &str,
    expires_at: Option<u64>,
    credential: &str,
) -> Value {
    let config = dockerconfigjson(host, username, password).to_string();
    let mut annotations = serde_json::Map::new();
    annotations.insert(ANNOTATION_LOGIN_SERVER.into(), json!(host));
    annotations.insert(ANNOTATION_CREDENTIAL.into(), json!(credential));
    if let Some(t) = expires_at {
        annotations.insert(ANNOTATION_EXPIRES_AT.into(), json!(rfc3339(t)));
    }
    let mut metadata = json!({ "name": a.name });
    if let Some(ns) = &a.namespace {
        metadata["namespace"] = json!(ns);
    }
    metadata["annotations"] = Value::Object(annotations);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": DOCKERCONFIGJSON_TYPE,
        "data": {
            DOCKERCONFIGJSON_KEY: base64::engine::general_purpose::STANDARD.encode(config),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_in_days() {
        assert_eq!(days("90d").expect("ok"), 90);
        assert_eq!(days("2w").expect("ok"), 14);
        assert!(days("36h").is_err());
        assert!(days("0d").is_err());
        assert!(days("soon").is_err());
    }

    #[test]
    fn names() {
        assert!(check_k8s_name("name", "registry-pull.v1", false).is_ok());
        assert!(check_k8s_name("name", "Pull", false).is_err());
        assert!(check_k8s_name("namespace", "team.a", true).is_err());
        assert!(check_k8s_name("namespace", "-a", true).is_err());
    }

    #[test]
    fn config_is_keyed_by_the_login_server() {
        let v = dockerconfigjson("127.0.0.1:5000", "ci", "pw");
        assert_eq!(v["auths"]["127.0.0.1:5000"]["auth"], "Y2k6cHc=");
    }
}
