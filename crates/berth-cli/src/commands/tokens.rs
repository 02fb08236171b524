//! `berth token create|update|list|show|delete` and
//! `berth token credential generate`.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::mgmt::{delete_one, list, seg, show_one, Common, Ctx};
use crate::repo_actions::Repositories;

const COLUMNS: &[&str] = &["name", "scopeMap", "status", "passwords"];
const CREATED_COLUMNS: &[&str] = &["name", "scopeMap", "status", "newPasswords"];

/// Repository-scoped tokens.
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: TokenVerb,
}

/// `enabled` or `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Status {
    Enabled,
    Disabled,
}

#[derive(Subcommand, Debug)]
enum TokenVerb {
    /// Create a token; prints both passwords once.
    Create {
        /// Token name (5-50 of [a-zA-Z0-9-]).
        #[arg(long)]
        name: String,
        /// Use an existing scope map.
        #[arg(
            long,
            conflicts_with = "repository",
            required_unless_present = "repository"
        )]
        scope_map: Option<String>,
        /// `--repository R ACTION...`; a scope map `<name>-scope-map` is
        /// made for them.
        #[command(flatten)]
        repository: Repositories,
        /// Password validity in days (default: no expiry).
        #[arg(long)]
        expiration_in_days: Option<u64>,
    },
    /// Enable or disable a token, or point it at another scope map.
    Update {
        /// Token name.
        #[arg(long)]
        name: String,
        /// `enabled` or `disabled` (disabling asks for confirmation).
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// New scope map.
        #[arg(long)]
        scope_map: Option<String>,
    },
    /// List tokens.
    List,
    /// Show one token (never its passwords).
    Show {
        /// Token name.
        #[arg(long)]
        name: String,
    },
    /// Delete a token (asks for confirmation).
    Delete {
        /// Token name.
        #[arg(long)]
        name: String,
    },
    /// Token passwords.
    Credential {
        #[command(subcommand)]
        verb: CredentialVerb,
    },
}

#[derive(Subcommand, Debug)]
enum CredentialVerb {
    /// Regenerate password1 or password2, shown once (asks for confirmation).
    Generate {
        /// Token name.
        #[arg(long)]
        name: String,
        /// Regenerate password1.
        #[arg(
            long,
            conflicts_with = "password2",
            required_unless_present = "password2"
        )]
        password1: bool,
        /// Regenerate password2.
        #[arg(long)]
        password2: bool,
        /// Validity in days (default: no expiry).
        #[arg(long)]
        expiration_in_days: Option<u64>,
    },
}

/// Run a `berth token` verb.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        TokenVerb::Create {
            name,
            scope_map,
            repository,
            expiration_in_days,
        } => {
            let mut body = json!({ "name": name });
            match scope_map {
                Some(m) => body["scopeMap"] = json!(m),
                None => {
                    let repos: Vec<Value> = repository
                        .0
                        .iter()
                        .filter_map(|g| g.split_first())
                        .map(|(r, actions)| json!({ "repository": r, "actions": actions }))
                        .collect();
                    body["repositories"] = json!(repos);
                }
            }
            if let Some(d) = expiration_in_days {
                body["expirationInDays"] = json!(d);
            }
            Ctx::open(c)
                .await?
                .show(Method::POST, "tokens", Some(body), CREATED_COLUMNS)
                .await
        }
        TokenVerb::Update {
            name,
            status,
            scope_map,
        } => {
            if status.is_none() && scope_map.is_none() {
                anyhow::bail!("nothing to update: give --status and/or --scope-map");
            }
            if status == Some(Status::Disabled) {
                c.confirm(&format!("disable token '{name}'"))?;
            }
            let mut body = Map::new();
            if let Some(s) = status {
                let s = if s == Status::Enabled {
                    "enabled"
                } else {
                    "disabled"
                };
                body.insert("status".into(), json!(s));
            }
            if let Some(m) = scope_map {
                body.insert("scopeMap".into(), json!(m));
            }
            let path = format!("tokens/{}", seg(&name));
            Ctx::open(c)
                .await?
                .show(Method::PATCH, &path, Some(Value::Object(body)), COLUMNS)
                .await
        }
        TokenVerb::List => list(c, "tokens", COLUMNS).await,
        TokenVerb::Show { name } => show_one(c, "tokens", &name, COLUMNS).await,
        TokenVerb::Delete { name } => {
            delete_one(c, "tokens", &name, &format!("token '{name}'")).await
        }
        TokenVerb::Credential {
            verb:
                CredentialVerb::Generate {
                    name,
                    password1,
                    expiration_in_days,
                    ..
                },
        } => {
            let which = if password1 { "password1" } else { "password2" };
            c.confirm(&format!("regenerate {which} of token '{name}'"))?;
            let mut body = json!({ "passwordName": which });
            if let Some(d) = expiration_in_days {
                body["expirationInDays"] = json!(d);
            }
            let path = format!("tokens/{}/credentials/generate", seg(&name));
            Ctx::open(c)
                .await?
                .show(Method::POST, &path, Some(body), CREATED_COLUMNS)
                .await
        }
    }
}
