//! `berth login <login-server>` and `berth logout <login-server>`.
//!
//! Login gets a directory token (password or client-credentials grant),
//! exchanges it for a registry refresh token, stores berth's session and
//! writes docker's config.json so docker, podman, skopeo and buildkit use
//! the refresh token: `auths[<host>] = {auth: base64("0000…:"),
//! identitytoken}`, or through the credential helper the config routes the
//! host to.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::client::{Client, Connection};
use crate::cred_helper;
use crate::docker_config::{DockerConfig, TOKEN_USERNAME};
use crate::names;
use crate::prompt;
use crate::session::{now, LoginKind, Session, Sessions};

/// How to reach the login server.
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Use plain HTTP even for a non-loopback login server (loopback
    /// servers — 127.0.0.0/8, ::1, localhost — always use plain HTTP
    /// unless --ca-file is given).
    #[arg(long, env = "BERTH_PLAIN_HTTP")]
    pub plain_http: bool,
    /// Trust the CA certificates in this PEM file (implies HTTPS).
    #[arg(long, env = "BERTH_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// `berth login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The login server, e.g. `myregistry.example.com` or `127.0.0.1:5000`.
    pub login_server: String,
    /// Directory user name, or the app id with --service-principal.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password, or the client secret with --service-principal (prefer
    /// --password-stdin: arguments are visible to other local users).
    #[arg(short = 'p', long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password (or client secret) from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Log in as a service principal: --username is its app id, the
    /// password its client secret. Its session renews itself.
    #[arg(long, requires = "username")]
    pub service_principal: bool,
    /// Print `{"accessToken", "loginServer"}` instead of writing docker's
    /// config; uses the stored berth session (or asks on a terminal).
    #[arg(long, conflicts_with_all = ["username", "password", "password_stdin", "service_principal"])]
    pub expose_token: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// `berth logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The login server to forget.
    pub login_server: String,
}

/// Run `berth login`.
pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let host = args.login_server.clone();
    names::check_login_server(&host)?;
    let mut sessions = Sessions::load()?;
    if args.expose_token {
        return expose_token(&args, &mut sessions).await;
    }
    let refresh = open_session(&args, &mut sessions).await?;
    write_docker_config(&host, &refresh)?;
    println!("Login Succeeded");
    Ok(())
}

/// Get credentials, log in to the directory, exchange, and save the
/// session; the registry refresh token.
async fn open_session(args: &LoginArgs, sessions: &mut Sessions) -> anyhow::Result<String> {
    let host = &args.login_server;
    let connection = Connection::decide(
        host,
        args.connection.plain_http,
        args.connection.ca_file.clone(),
    );
    let username = match &args.username {
        Some(u) => u.clone(),
        None if prompt::interactive() => prompt::line("Username: ")?,
        None => anyhow::bail!("no --username given and stdin is not a terminal to ask on"),
    };
    if username.is_empty() {
        anyhow::bail!("the username must not be empty");
    }
    let password = if let Some(p) = &args.password {
        eprintln!("WARNING: a password on the command line is visible to other local users; prefer --password-stdin");
        p.clone()
    } else if args.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else if prompt::interactive() {
        prompt::password("Password: ")?
    } else {
        anyhow::bail!("no password given: use --password-stdin, --password, or run on a terminal")
    };
    if password.is_empty() {
        anyhow::bail!("the password must not be empty");
    }
    let client = Client::new(host, &connection)?;
    let (kind, dir) = if args.service_principal {
        (
            LoginKind::ServicePrincipal,
            client
                .directory_client_credentials(&username, &password)
                .await?,
        )
    } else {
        (
            LoginKind::User,
            client.directory_password(&username, &password).await?,
        )
    };
    let refresh = client.exchange(&dir.access_token).await?;
    sessions.sessions.insert(
        host.clone(),
        Session {
            kind,
            username,
            connection,
            directory_token: Some(dir.access_token),
            directory_token_expires_at: Some(now() + dir.expires_in),
            client_secret: args.service_principal.then_some(password),
            refresh_token: Some(refresh.clone()),
        },
    );
    sessions.last_registry = Some(host.clone());
    sessions.save()?;
    Ok(refresh)
}

/// Record the refresh token where docker looks for `host`'s credentials.
fn write_docker_config(host: &str, refresh: &str) -> anyhow::Result<()> {
    let mut config = DockerConfig::load()?;
    match config.helper_for(host) {
        Some(helper) if helper == cred_helper::OWN_NAME => config.set_helper_entry(host),
        Some(helper) => {
            cred_helper::store_in(&helper, host, refresh)?;
            config.set_helper_entry(host);
        }
        None => config.set_identity_token(host, refresh),
    }
    config.save()
}

/// `--expose-token`: a refresh token from the stored session (or a new
/// interactive login), printed for daemonless use.
async fn expose_token(args: &LoginArgs, sessions: &mut Sessions) -> anyhow::Result<()> {
    let host = &args.login_server;
    let token = if sessions.sessions.contains_key(host) {
        crate::renew::refresh_token(sessions, host).await?
    } else if prompt::interactive() {
        open_session(args, sessions).await?
    } else {
        anyhow::bail!(
            "no berth session for {host}: run `berth login {host}` first (it cannot be combined with --expose-token)"
        )
    };
    sessions.last_registry = Some(host.clone());
    sessions.save()?;
    let out = json!({ "accessToken": token, "loginServer": host });
    println!("{}", serde_json::to_string_pretty(&out)?);
    eprintln!(
        "Use it as a password with the username {TOKEN_USERNAME}, e.g.:\n  docker login {host} --username {TOKEN_USERNAME} --password-stdin <<< \"$TOKEN\""
    );
    Ok(())
}

/// Run `berth logout`.
pub fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let host = &args.login_server;
    names::check_login_server(host)?;
    let mut sessions = Sessions::load()?;
    let had_session = sessions.sessions.remove(host).is_some();
    if sessions.last_registry.as_deref() == Some(host.as_str()) {
        sessions.last_registry = None;
    }
    sessions.save()?;
    let mut config = DockerConfig::load()?;
    if let Some(helper) = config.helper_for(host) {
        if helper != cred_helper::OWN_NAME {
            cred_helper::erase_in(&helper, host)?;
        }
    }
    let had_entry = config.remove(host);
    if had_entry {
        config.save()?;
    }
    if had_session || had_entry {
        println!("Removed login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(())
}
