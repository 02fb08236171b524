//! Getting a usable directory token and a fresh registry refresh token
//! out of a stored session: a live directory token is reused; a service
//! principal's is renewed with its stored secret; a user's session lasts as
//! long as its directory token (berth never stores a user's password).

use base64::Engine as _;
use serde_json::Value;

use crate::client::Client;
use crate::session::{now, LoginKind, Sessions};

/// A live directory token for `host`, renewing a service principal's and
/// saving the session file when it changed.
pub async fn directory_token(
    sessions: &mut Sessions,
    host: &str,
) -> anyhow::Result<(Client, String)> {
    let session = sessions.get(host)?.clone();
    let client = Client::new(host, &session.connection)?;
    if let Some(t) = session.live_directory_token() {
        return Ok((client, t.to_string()));
    }
    match (session.kind, &session.client_secret) {
        (LoginKind::ServicePrincipal, Some(secret)) => {
            let t = client
                .directory_client_credentials(&session.username, secret)
                .await?;
            if let Some(s) = sessions.sessions.get_mut(host) {
                s.directory_token = Some(t.access_token.clone());
                s.directory_token_expires_at = Some(now() + t.expires_in);
            }
            sessions.save()?;
            Ok((client, t.access_token))
        }
        (LoginKind::Token, _) => anyhow::bail!(
            "the credentials stored for {host} are a registry token only; run `berth login {host}` to use management commands"
        ),
        _ => anyhow::bail!(
            "your login session for {host} has expired: run `berth login {host}` again (use --service-principal for unattended jobs)"
        ),
    }
}

/// A registry refresh token for `host` that is valid now: exchanged from
/// the session's directory token when possible, else the last one stored
/// while it has not expired.
pub async fn refresh_token(sessions: &mut Sessions, host: &str) -> anyhow::Result<String> {
    let session = sessions.get(host)?.clone();
    let renewable = session.live_directory_token().is_some()
        || (session.kind == LoginKind::ServicePrincipal && session.client_secret.is_some());
    if renewable {
        let (client, dir) = directory_token(sessions, host).await?;
        let rt = client.exchange(&dir).await?;
        if let Some(s) = sessions.sessions.get_mut(host) {
            s.refresh_token = Some(rt.clone());
        }
        sessions.save()?;
        return Ok(rt);
    }
    match session.refresh_token {
        Some(rt) if jwt_expiry(&rt).is_none_or(|exp| exp > now() + 60) => Ok(rt),
        _ => anyhow::bail!(
            "your login session for {host} has expired: run `berth login {host}` again (use --service-principal for unattended jobs)"
        ),
    }
}

/// The `exp` claim of a JWT, read without verifying it (the server
/// verifies; this only avoids handing out a token known to be stale).
pub fn jwt_expiry(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1234}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")), Some(1234));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
    }
}
