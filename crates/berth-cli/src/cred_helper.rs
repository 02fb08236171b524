//! The docker credential-helper protocol, both ways.
//!
//! * Calling a helper (`docker-credential-<name> store|erase`) when
//!   docker's config routes a login server to one.
//! * Being one: `docker-credential-berth` (or `berth credential-helper`)
//!   answers `get` with a fresh registry refresh token (username
//!   `<token>`) renewed from berth's stored session, so jobs outlive the
//!   3-hour tokens. Errors go to stdout with exit status 1, as docker
//!   expects; an unknown server gets `credentials not found in native
//!   keychain`.

use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::names;
use crate::renew;
use crate::session::{LoginKind, Session, Sessions};

/// The username meaning "Secret is an identity token".
pub const IDENTITY_USERNAME: &str = "<token>";

/// The text docker recognises as "no credentials for this server".
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// The helper name berth itself answers to (`credsStore: "berth"`).
pub const OWN_NAME: &str = "berth";

/// The helper protocol's credentials record.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    /// The server, as docker named it.
    #[serde(rename = "ServerURL")]
    pub server_url: String,
    /// `<token>` for identity tokens.
    #[serde(rename = "Username")]
    pub username: String,
    /// The secret.
    #[serde(rename = "Secret")]
    pub secret: String,
}

/// The helper verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verb {
    /// stdin: a server URL; stdout: its credentials.
    Get,
    /// stdin: credentials to keep.
    Store,
    /// stdin: a server URL whose credentials to forget.
    Erase,
    /// stdout: `{server: username}`.
    List,
    /// stdout: the helper's version.
    Version,
}

/// Run `docker-credential-<helper> <verb>` with `input` on stdin.
fn call(helper: &str, verb: &str, input: &[u8]) -> anyhow::Result<Vec<u8>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("docker's config routes this registry to {program}, which cannot be run (is it on PATH?)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("{program} {verb} failed: {} {}", msg.trim(), err.trim());
    }
    Ok(out.stdout)
}

/// Hand `secret` for `host` to an external helper.
pub fn store_in(helper: &str, host: &str, secret: &str) -> anyhow::Result<()> {
    let creds = Credentials {
        server_url: host.to_string(),
        username: IDENTITY_USERNAME.to_string(),
        secret: secret.to_string(),
    };
    call(helper, "store", &serde_json::to_vec(&creds)?).map(|_| ())
}

/// Ask an external helper to forget `host`.
pub fn erase_in(helper: &str, host: &str) -> anyhow::Result<()> {
    match call(helper, "erase", host.as_bytes()) {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains(NOT_FOUND) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Serve one helper request on stdin/stdout; the process's exit status.
pub fn serve(verb: Verb) -> ExitCode {
    let mut input = String::new();
    if verb != Verb::List && verb != Verb::Version {
        if let Err(e) = std::io::stdin().read_to_string(&mut input) {
            return fail(&format!("reading stdin: {e}"));
        }
    }
    let answer = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(answer(verb, input.trim())),
        Err(e) => Err(e.into()),
    };
    match answer {
        Ok(Some(out)) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str) -> ExitCode {
    println!("{message}");
    ExitCode::FAILURE
}

async fn answer(verb: Verb, input: &str) -> anyhow::Result<Option<String>> {
    match verb {
        Verb::Version => Ok(Some(format!(
            "docker-credential-berth (berth {})",
            env!("CARGO_PKG_VERSION")
        ))),
        Verb::List => {
            let sessions = Sessions::load()?;
            let list: Map<String, Value> = sessions
                .sessions
                .iter()
                .map(|(host, s)| (host.clone(), json!(list_username(s))))
                .collect();
            Ok(Some(Value::Object(list).to_string()))
        }
        Verb::Get => {
            let host = names::server_from_url(input);
            let mut sessions = Sessions::load()?;
            if !sessions.sessions.contains_key(&host) {
                anyhow::bail!(NOT_FOUND);
            }
            let secret = renew::refresh_token(&mut sessions, &host).await?;
            let creds = Credentials {
                server_url: input.to_string(),
                username: IDENTITY_USERNAME.to_string(),
                secret,
            };
            Ok(Some(serde_json::to_string(&creds)?))
        }
        Verb::Store => {
            let creds: Credentials = serde_json::from_str(input)
                .context("store expects {\"ServerURL\",\"Username\",\"Secret\"} on stdin")?;
            let mut sessions = Sessions::load()?;
            store_own(&mut sessions, &creds)?;
            sessions.save()?;
            Ok(None)
        }
        Verb::Erase => {
            let host = names::server_from_url(input);
            let mut sessions = Sessions::load()?;
            if sessions.sessions.remove(&host).is_none() {
                anyhow::bail!(NOT_FOUND);
            }
            if sessions.last_registry.as_deref() == Some(host.as_str()) {
                sessions.last_registry = None;
            }
            sessions.save()?;
            Ok(None)
        }
    }
}

fn list_username(s: &Session) -> &str {
    match s.kind {
        LoginKind::ServicePrincipal => &s.username,
        _ => IDENTITY_USERNAME,
    }
}

/// berth's own `store`: identity tokens only. A `berth login` session for
/// the host keeps its renewal data and takes the new token; otherwise a
/// token-only session is recorded. Passwords are refused: berth does not
/// keep them in files.
pub fn store_own(sessions: &mut Sessions, creds: &Credentials) -> anyhow::Result<()> {
    if creds.username != IDENTITY_USERNAME {
        anyhow::bail!(
            "docker-credential-berth stores identity tokens only (Username \"<token>\"); use `berth login` instead of storing a password"
        );
    }
    let host = names::server_from_url(&creds.server_url);
    names::check_form(&host)?;
    if let Some(s) = sessions.sessions.get_mut(&host) {
        s.refresh_token = Some(creds.secret.clone());
        return Ok(());
    }
    let connection = crate::client::Connection::decide(&host, false, None);
    sessions.sessions.insert(
        host,
        Session {
            kind: LoginKind::Token,
            username: IDENTITY_USERNAME.to_string(),
            connection,
            directory_token: None,
            directory_token_expires_at: None,
            client_secret: None,
            refresh_token: Some(creds.secret.clone()),
        },
    );
    Ok(())
}
