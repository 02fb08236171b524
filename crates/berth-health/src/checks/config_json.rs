//! Step 3: docker's config.json for this login server — credentials
//! stored under another spelling of the host, credential helpers that are
//! not installed — and the credential the login steps will use, with a
//! warning when it expires within 7 days.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::context::Ctx;
use crate::dockerconfig::{config_path, helper_get, Credential, DockerConfig};
use crate::report::Finding;
use crate::target::normalize_key;
use crate::token::{expiry, human_duration};
use crate::tools::on_path;

const NAME: &str = "config.json";
const CREDENTIALS: &str = "credentials";
/// Warn when a stored credential expires within this many seconds.
const EXPIRY_WARNING_SECS: u64 = 7 * 86_400;

/// Keys of `auths` that name this registry with another spelling.
fn other_spellings(config: &DockerConfig, key: &str, host: &str) -> Vec<String> {
    let wanted = normalize_key(key);
    config
        .auth_keys()
        .into_iter()
        .filter(|k| k != key)
        .filter(|k| {
            let n = normalize_key(k);
            let n_host = n.rsplit_once(':').map_or(n.as_str(), |(h, _)| h);
            n == wanted || n_host == host
        })
        .collect()
}

/// The credential stored for `key`: through a helper, else inline.
async fn stored_credential(
    config: &DockerConfig,
    key: &str,
    findings: &mut Vec<Finding>,
) -> Option<(Credential, String)> {
    if let Some(helper) = config.helper_for(key) {
        let program = format!("docker-credential-{helper}");
        if on_path(&program).is_none() {
            findings.push(Finding::problem(
                NAME,
                "CREDENTIAL_HELPER_MISSING",
                format!("config.json sends credentials for {key} to the helper '{helper}', but {program} is not on PATH"),
            ));
            return None;
        }
        return match helper_get(&helper, key).await {
            Ok(Some(c)) => Some((c, format!("credential helper {program}"))),
            Ok(None) => None,
            Err(e) => {
                findings.push(Finding::problem(NAME, "CREDENTIAL_HELPER_ERROR", e));
                None
            }
        };
    }
    match config.inline_credential(key) {
        Ok(Some(c)) => Some((c, format!("config.json auths[\"{key}\"]"))),
        Ok(None) => None,
        Err(e) => {
            findings.push(Finding::problem(NAME, "CONFIG_JSON_ERROR", e));
            None
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A warning when a stored refresh token expires soon (or has expired).
fn expiry_finding(credential: &Credential, origin: &str) -> Option<Finding> {
    let Credential::RefreshToken(token) = credential else {
        return None;
    };
    let exp = expiry(token)?;
    let now = now();
    if exp <= now {
        return Some(Finding::problem(
            CREDENTIALS,
            "CREDENTIAL_EXPIRING_SOON",
            format!(
                "the registry refresh token in {origin} expired {} ago",
                human_duration(now - exp)
            ),
        ));
    }
    (exp - now < EXPIRY_WARNING_SECS).then(|| {
        Finding::problem(
            CREDENTIALS,
            "CREDENTIAL_EXPIRING_SOON",
            format!(
                "the registry refresh token in {origin} expires in {}",
                human_duration(exp - now)
            ),
        )
    })
}

/// Check config.json and choose the credential.
pub async fn check(ctx: &mut Ctx) -> Vec<Finding> {
    let mut findings = Vec::new();
    let key = ctx.target.host_port();
    let path = config_path();
    let config = match path.as_deref().map(DockerConfig::load) {
        None => None,
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            findings.push(Finding::problem(NAME, "CONFIG_JSON_ERROR", e));
            None
        }
    };
    let shown = path
        .as_ref()
        .map_or("config.json".to_string(), |p| p.display().to_string());
    let mut stored = None;
    if let Some(config) = &config {
        stored = stored_credential(config, &key, &mut findings).await;
        if stored.is_none() {
            let others = other_spellings(config, &key, &ctx.target.host);
            if !others.is_empty() {
                findings.push(Finding::problem(
                    NAME,
                    "CREDENTIAL_KEY_MISMATCH",
                    format!(
                        "{shown} has no credentials under \"{key}\" but has some under {}: clients look up the exact string \"{key}\" and send nothing",
                        others
                            .iter()
                            .map(|k| format!("\"{k}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    if findings.is_empty() {
        findings.push(Finding::ok(
            NAME,
            if config.is_some() {
                format!("{shown} is readable")
            } else {
                format!("{shown} does not exist")
            },
        ));
    }
    if let (Some(user), Some(password)) = (&ctx.args.username, &ctx.args.password) {
        let credential = Credential::Password {
            username: user.clone(),
            password: password.clone(),
            service_principal: ctx.args.service_principal,
        };
        let origin = if ctx.args.service_principal {
            "--service-principal --username/--password"
        } else {
            "--username/--password"
        };
        findings.push(Finding::ok(CREDENTIALS, format!("using {origin}")));
        ctx.credential = Some((credential, origin.to_string()));
        return findings;
    }
    match stored {
        Some((credential, origin)) => {
            let kind = match &credential {
                Credential::RefreshToken(_) => "a registry refresh token".to_string(),
                Credential::Password { username, .. } => {
                    format!("username {username:?} and a password")
                }
            };
            findings.push(
                expiry_finding(&credential, &origin)
                    .unwrap_or_else(|| Finding::ok(CREDENTIALS, format!("{kind} from {origin}"))),
            );
            ctx.credential = Some((credential, origin));
            ctx.stored_credential = true;
        }
        None => findings.push(Finding::problem(
            CREDENTIALS,
            "CREDENTIALS_MISSING",
            format!("no credentials for {key} (checking anonymous access only)"),
        )),
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_other_spellings_of_the_host() {
        let c = DockerConfig {
            doc: serde_json::json!({"auths": {
                "https://reg.test:5000/": {}, "reg.test": {}, "other:5000": {}, "reg.test:5000": {}
            }}),
        };
        let mut o = other_spellings(&c, "reg.test:5000", "reg.test");
        o.sort();
        assert_eq!(o, vec!["https://reg.test:5000/", "reg.test"]);
    }

    fn token_with_exp(exp: u64) -> Credential {
        use base64::Engine as _;
        let claims =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp}}}"));
        Credential::RefreshToken(format!("e30.{claims}.sig"))
    }

    #[test]
    fn warns_about_tokens_expiring_within_seven_days() {
        let soon = expiry_finding(&token_with_exp(now() + 3 * 3600), "x").expect("warning");
        assert_eq!(soon.code, Some("CREDENTIAL_EXPIRING_SOON"));
        assert!(
            soon.message.contains("expires in 2h 59m") || soon.message.contains("expires in 3h")
        );
        let gone = expiry_finding(&token_with_exp(now() - 120), "x").expect("warning");
        assert!(gone.message.contains("expired 2m ago"), "{}", gone.message);
        assert_eq!(
            expiry_finding(&token_with_exp(now() + 30 * 86_400), "x"),
            None
        );
        let password = Credential::Password {
            username: "u".into(),
            password: "p".into(),
            service_principal: false,
        };
        assert_eq!(expiry_finding(&password, "x"), None);
    }
}
