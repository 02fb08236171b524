//! `berth sp create|list|show|delete` and `berth sp credential reset|add|delete`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use crate::mgmt::{delete_one, list, seg, show_one, Common, Ctx};

const COLUMNS: &[&str] = &["name", "appId", "enabled", "secrets"];
const SECRET_COLUMNS: &[&str] = &["appId", "name", "secret", "secretId", "expiresAt"];

/// Service principals.
#[derive(Args, Debug)]
pub struct SpArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: SpVerb,
}

#[derive(Subcommand, Debug)]
enum SpVerb {
    /// Create a service principal; prints its appId and secret once.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Secret validity in days (default: the server's, one year).
        #[arg(long)]
        expiration_in_days: Option<u64>,
    },
    /// List service principals.
    List,
    /// Show one service principal.
    Show {
        /// App id.
        #[arg(long)]
        id: String,
    },
    /// Delete a service principal (asks for confirmation).
    Delete {
        /// App id.
        #[arg(long)]
        id: String,
    },
    /// Client secrets.
    Credential {
        #[command(subcommand)]
        verb: CredentialVerb,
    },
}

#[derive(Subcommand, Debug)]
enum CredentialVerb {
    /// Replace every secret with a new one, shown once (asks for confirmation).
    Reset {
        /// App id.
        #[arg(long)]
        id: String,
        /// Secret validity in days.
        #[arg(long)]
        expiration_in_days: Option<u64>,
    },
    /// Add a secret, shown once.
    Add {
        /// App id.
        #[arg(long)]
        id: String,
        /// Secret validity in days.
        #[arg(long)]
        expiration_in_days: Option<u64>,
    },
    /// Delete one secret (asks for confirmation).
    Delete {
        /// App id.
        #[arg(long)]
        id: String,
        /// The secret's id.
        #[arg(long)]
        secret_id: String,
    },
}

fn days(d: Option<u64>) -> serde_json::Value {
    match d {
        Some(d) => json!({ "expirationInDays": d }),
        None => json!({}),
    }
}

/// Run a `berth sp` verb.
pub async fn run(args: SpArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        SpVerb::Create {
            name,
            expiration_in_days,
        } => {
            let mut body = days(expiration_in_days);
            body["name"] = json!(name);
            let path = "service-principals";
            Ctx::open(c)
                .await?
                .show(Method::POST, path, Some(body), SECRET_COLUMNS)
                .await
        }
        SpVerb::List => list(c, "service-principals", COLUMNS).await,
        SpVerb::Show { id } => show_one(c, "service-principals", &id, COLUMNS).await,
        SpVerb::Delete { id } => {
            delete_one(
                c,
                "service-principals",
                &id,
                &format!("service principal {id}"),
            )
            .await
        }
        SpVerb::Credential { verb } => credential(c, verb).await,
    }
}

async fn credential(c: &Common, verb: CredentialVerb) -> anyhow::Result<()> {
    match verb {
        CredentialVerb::Reset {
            id,
            expiration_in_days,
        } => {
            c.confirm(&format!("replace every secret of service principal {id}"))?;
            let path = format!("service-principals/{}/credentials/reset", seg(&id));
            let body = Some(days(expiration_in_days));
            Ctx::open(c)
                .await?
                .show(Method::POST, &path, body, SECRET_COLUMNS)
                .await
        }
        CredentialVerb::Add {
            id,
            expiration_in_days,
        } => {
            let path = format!("service-principals/{}/credentials", seg(&id));
            let body = Some(days(expiration_in_days));
            Ctx::open(c)
                .await?
                .show(Method::POST, &path, body, SECRET_COLUMNS)
                .await
        }
        CredentialVerb::Delete { id, secret_id } => {
            c.confirm(&format!(
                "delete secret {secret_id} of service principal {id}"
            ))?;
            let path = format!(
                "service-principals/{}/credentials/{}",
                seg(&id),
                seg(&secret_id)
            );
            Ctx::open(c)
                .await?
                .show(Method::DELETE, &path, None, &[])
                .await
        }
    }
}
