//! `berth user create|list|show|update|delete`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::mgmt::{delete_one, list, seg, show_one, Common, Ctx};

const COLUMNS: &[&str] = &["name", "id", "enabled", "hasPassword"];

/// Directory users.
#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: UserVerb,
}

#[derive(Subcommand, Debug)]
enum UserVerb {
    /// Create a user (a password is generated and shown once when none is given).
    Create {
        /// User name.
        #[arg(long)]
        name: String,
        /// Initial password.
        #[arg(long)]
        password: Option<String>,
    },
    /// List users.
    List,
    /// Show one user.
    Show {
        /// User name.
        #[arg(long)]
        name: String,
    },
    /// Enable/disable a user or set their password.
    Update {
        /// User name.
        #[arg(long)]
        name: String,
        /// `true` or `false`; disabling asks for confirmation.
        #[arg(long)]
        enabled: Option<bool>,
        /// New password.
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete a user (asks for confirmation).
    Delete {
        /// User name.
        #[arg(long)]
        name: String,
    },
}

/// Run a `berth user` verb.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        UserVerb::Create { name, password } => {
            let mut body = json!({ "name": name });
            if let Some(p) = password {
                body["password"] = json!(p);
            }
            let cols = &["name", "id", "enabled", "password"];
            Ctx::open(c)
                .await?
                .show(Method::POST, "users", Some(body), cols)
                .await
        }
        UserVerb::List => list(c, "users", COLUMNS).await,
        UserVerb::Show { name } => show_one(c, "users", &name, COLUMNS).await,
        UserVerb::Update {
            name,
            enabled,
            password,
        } => {
            if enabled.is_none() && password.is_none() {
                anyhow::bail!("nothing to update: give --enabled and/or --password");
            }
            if enabled == Some(false) {
                c.confirm(&format!("disable user '{name}'"))?;
            }
            let mut body = Map::new();
            if let Some(e) = enabled {
                body.insert("enabled".into(), json!(e));
            }
            if let Some(p) = password {
                body.insert("password".into(), json!(p));
            }
            let path = format!("users/{}", seg(&name));
            Ctx::open(c)
                .await?
                .show(Method::PATCH, &path, Some(Value::Object(body)), COLUMNS)
                .await
        }
        UserVerb::Delete { name } => delete_one(c, "users", &name, &format!("user '{name}'")).await,
    }
}
