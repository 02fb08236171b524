//! The Docker registry token flow, as a client sees it.
//!
//! On `401` the registry answers with `WWW-Authenticate`, either
//! `Basic realm=".."` (send the credentials) or
//! `Bearer realm="..",service="..",scope=".."` (ask the realm for a token with
//! Basic credentials or anonymously, then retry with `Authorization: Bearer`).
//! Tokens are cached per scope until shortly before they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use reqwest::header::HeaderValue;
use serde::Deserialize;

/// Username and password for Basic auth and for the token service.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

/// One parsed challenge from a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Auth scheme, lower-cased (`bearer`, `basic`).
    pub scheme: String,
    /// Parameters with lower-cased names (`realm`, `service`, `scope`, ...).
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// A parameter's value, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges.
///
/// Handles quoted values with backslash escapes, commas and colons inside
/// quotes (`scope="repository:a/b:pull,push"`), optional whitespace, and
/// several challenges in one header (`Basic realm="x", Bearer realm="y"`).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut lexer = Lexer {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        lexer.skip_ws_and_commas();
        if lexer.i >= lexer.s.len() {
            break;
        }
        let Some(word) = lexer.token() else {
            // Stray `=` or `"`: skip it so parsing always makes progress.
            lexer.i += 1;
            continue;
        };
        lexer.skip_ws();
        if lexer.peek() == Some(b'=') && !out.is_empty() {
            // `name=value` belonging to the current challenge.
            lexer.i += 1;
            lexer.skip_ws();
            let value = if lexer.peek() == Some(b'"') {
                lexer.quoted()
            } else {
                lexer.token().unwrap_or_default()
            };
            if let Some(current) = out.last_mut() {
                current.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: HashMap::new(),
            });
        }
    }
    out
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b'=' || c == b',' || c == b' ' || c == b'\t' || c == b'"' {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> String {
        // Caller guarantees the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The token service's JSON answer (both `token` and `access_token` are accepted).
#[derive(Clone, Debug, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (Docker spelling).
    #[serde(default)]
    pub token: Option<String>,
    /// The bearer token (OAuth2 spelling).
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime in seconds; the spec's default is 60.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Present when `offline_token=true` was asked for (or on the refresh grant).
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// The bearer token, whichever field carried it.
    pub fn bearer(&self) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(self.access_token.as_deref().filter(|t| !t.is_empty()))
    }
}

/// Where and how to get bearer tokens, learned from a challenge.
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    /// Token service URL (`realm`).
    pub realm: reqwest::Url,
    /// `service` parameter to send back, if the challenge had one.
    pub service: Option<String>,
}

impl TokenEndpoint {
    /// Builds an endpoint from a Bearer challenge.
    pub fn from_challenge(c: &Challenge) -> anyhow::Result<Self> {
        let realm = c.param("realm").context("Bearer challenge without realm")?;
        Ok(Self {
            realm: reqwest::Url::parse(realm).with_context(|| format!("bad realm {realm:?}"))?,
            service: c.param("service").map(str::to_owned),
        })
    }

    /// `GET realm?service=..&scope=..` with Basic credentials (or anonymously).
    pub async fn fetch(
        &self,
        http: &reqwest::Client,
        creds: Option<&Credentials>,
        scopes: &[&str],
        offline_token: bool,
    ) -> anyhow::Result<TokenResponse> {
        let mut url = self.realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = &self.service {
                q.append_pair("service", s);
            }
            for s in scopes.iter().filter(|s| !s.is_empty()) {
                q.append_pair("scope", s);
            }
            if offline_token {
                q.append_pair("offline_token", "true");
                q.append_pair("client_id", "berth-bench");
            }
        }
        let mut req = http.get(url);
        if let Some(c) = creds {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        parse_token_response(req.send().await.context("token request")?).await
    }

    /// `POST realm` with `grant_type=refresh_token`.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &str,
        scope: &str,
    ) -> anyhow::Result<TokenResponse> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "berth-bench"),
            ("scope", scope),
        ];
        if let Some(s) = &self.service {
            form.push(("service", s));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = http
            .post(self.realm.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        parse_token_response(req.send().await.context("refresh token request")?).await
    }
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn parse_token_response(resp: reqwest::Response) -> anyhow::Result<TokenResponse> {
    let status = resp.status();
    let body = resp.bytes().await.context("reading token response")?;
    if !status.is_success() {
        bail!(
            "token service answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let token: TokenResponse =
        serde_json::from_slice(&body).context("token response is not the expected JSON")?;
    if token.bearer().is_none() {
        bail!("token response has neither `token` nor `access_token`");
    }
    Ok(token)
}

/// What the registry asked for, as far as we know.
#[derive(Clone, Debug)]
enum Mode {
    /// Not probed yet, or no challenge seen: send nothing.
    Anonymous,
    /// `Basic` challenge: send the credentials on every request.
    Basic,
    /// `Bearer` challenge: send a token per scope.
    Bearer(TokenEndpoint),
}

struct CachedToken {
    header: HeaderValue,
    refresh_at: Instant,
}

struct State {
    mode: Mode,
    tokens: HashMap<String, CachedToken>,
}

/// Shared auth state of one benchmark run: mode, credentials and token cache.
pub struct Auth {
    creds: Option<Credentials>,
    http: reqwest::Client,
    state: Mutex<State>,
}

impl Auth {
    /// New auth state; `http` is used for token requests only.
    pub fn new(creds: Option<Credentials>, http: reqwest::Client) -> Self {
        Self {
            creds,
            http,
            state: Mutex::new(State {
                mode: Mode::Anonymous,
                tokens: HashMap::new(),
            }),
        }
    }

    /// The configured credentials, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token endpoint, once a Bearer challenge has been seen.
    pub fn token_endpoint(&self) -> Option<TokenEndpoint> {
        match &self.state().mode {
            Mode::Bearer(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Records the challenge of the `GET /v2/` probe so later requests can
    /// authenticate up front (no 401 round trip, no re-sent upload body).
    pub fn learn(&self, challenges: &[Challenge]) -> anyhow::Result<()> {
        let mode = if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            Mode::Bearer(TokenEndpoint::from_challenge(c)?)
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            Mode::Basic
        } else {
            Mode::Anonymous
        };
        self.state().mode = mode;
        Ok(())
    }

    /// The `Authorization` header to send for `scope`, fetching a token first
    /// if the registry uses bearer tokens and none is cached.
    pub async fn authorization(&self, scope: &str) -> anyhow::Result<Option<HeaderValue>> {
        let endpoint = {
            let state = self.state();
            match &state.mode {
                Mode::Anonymous => return Ok(None),
                Mode::Basic => return Ok(self.basic_header()),
                Mode::Bearer(e) => {
                    if let Some(t) = state.tokens.get(scope) {
                        if Instant::now() < t.refresh_at {
                            return Ok(Some(t.header.clone()));
                        }
                    }
                    e.clone()
                }
            }
        };
        self.fetch_and_cache(&endpoint, scope, &[scope])
            .await
            .map(Some)
    }

    /// Reacts to a 401: learns the challenge and says whether a retry can succeed.
    pub async fn on_unauthorized(
        &self,
        scope: &str,
        www_authenticate: &str,
    ) -> anyhow::Result<bool> {
        let challenges = parse_challenges(www_authenticate);
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let endpoint = TokenEndpoint::from_challenge(c)?;
            self.state().mode = Mode::Bearer(endpoint.clone());
            let wanted = c.param("scope").unwrap_or(scope).to_owned();
            let scopes: Vec<&str> = wanted.split(' ').collect();
            self.fetch_and_cache(&endpoint, scope, &scopes).await?;
            return Ok(true);
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let was_basic = matches!(self.state().mode, Mode::Basic);
            self.state().mode = Mode::Basic;
            return Ok(self.creds.is_some() && !was_basic);
        }
        Ok(false)
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        let c = self.creds.as_ref()?;
        let raw = format!("{}:{}", c.username, c.password);
        HeaderValue::from_str(&format!("Basic {}", base64_encode(raw.as_bytes()))).ok()
    }

    async fn fetch_and_cache(
        &self,
        endpoint: &TokenEndpoint,
        cache_key: &str,
        scopes: &[&str],
    ) -> anyhow::Result<HeaderValue> {
        let started = Instant::now();
        let token = endpoint
            .fetch(&self.http, self.creds.as_ref(), scopes, false)
            .await?;
        let bearer = token.bearer().unwrap_or_default();
        let header = HeaderValue::from_str(&format!("Bearer {bearer}"))
            .context("token is not a valid header value")?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(60).max(1));
        let margin = (lifetime / 5).min(Duration::from_secs(10));
        self.state().tokens.insert(
            cache_key.to_owned(),
            CachedToken {
                header: header.clone(),
                refresh_at: started + lifetime - margin,
            },
        );
        Ok(header)
    }
}

/// Standard base64 with padding (for the Basic scheme).
pub fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Scope string for a repository and actions (`repository:name:pull,push`).
pub fn repository_scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_bearer_challenge() {
        let h = r#"Bearer realm="https://auth.example.com/oauth2/token",service="registry.example.com",scope="repository:team/app:pull,push""#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            c[0].param("realm"),
            Some("https://auth.example.com/oauth2/token")
        );
        assert_eq!(c[0].param("service"), Some("registry.example.com"));
        assert_eq!(c[0].param("scope"), Some("repository:team/app:pull,push"));
    }

    #[test]
    fn parses_spaces_escapes_and_multiple_challenges() {
        let h = r#"Basic realm="Registry \"x\"" , Bearer realm="http://h:1/t", service = "s",error="insufficient_scope""#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry \"x\""));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("s"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn parses_unquoted_values_and_garbage_without_panicking() {
        let c = parse_challenges("Bearer realm=http://x/t,service=svc");
        assert_eq!(c[0].param("realm"), Some("http://x/t"));
        assert_eq!(c[0].param("service"), Some("svc"));
        for junk in [
            "",
            ",,,",
            "=\"",
            "Bearer realm=\"unterminated",
            "\"\"=,=",
            "Bearer ,=x",
        ] {
            let _ = parse_challenges(junk);
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(
            form_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(form_encode("a b"), "a+b");
    }
}
