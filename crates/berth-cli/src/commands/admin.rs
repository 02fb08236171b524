//! `berth admin enable|disable|show|renew`.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::json;

use crate::mgmt::{Common, Ctx};

const COLUMNS: &[&str] = &["username", "enabled", "passwords", "newPasswords"];

/// The admin account.
#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: AdminVerb,
}

/// Which admin password.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum PasswordName {
    Password,
    Password2,
}

#[derive(Subcommand, Debug)]
enum AdminVerb {
    /// Enable the admin account (new passwords are shown once when it had none).
    Enable,
    /// Disable the admin account (asks for confirmation).
    Disable,
    /// Show the admin account (never its passwords).
    Show,
    /// Regenerate one password, shown once.
    Renew {
        /// `password` or `password2`.
        #[arg(long, value_enum)]
        password_name: PasswordName,
    },
}

/// Run a `berth admin` verb.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        AdminVerb::Enable => {
            Ctx::open(c)
                .await?
                .show(Method::POST, "admin/enable", None, COLUMNS)
                .await
        }
        AdminVerb::Disable => {
            c.confirm("disable the admin account")?;
            Ctx::open(c)
                .await?
                .show(Method::POST, "admin/disable", None, COLUMNS)
                .await
        }
        AdminVerb::Show => {
            Ctx::open(c)
                .await?
                .show(Method::GET, "admin", None, COLUMNS)
                .await
        }
        AdminVerb::Renew { password_name } => {
            let name = match password_name {
                PasswordName::Password => "password",
                PasswordName::Password2 => "password2",
            };
            let body = json!({ "passwordName": name });
            Ctx::open(c)
                .await?
                .show(Method::POST, "admin/renew", Some(body), COLUMNS)
                .await
        }
    }
}
