//! `berth registry show|update`.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::mgmt::{Common, Ctx};

const COLUMNS: &[&str] = &[
    "name",
    "loginServer",
    "anonymousPullEnabled",
    "defaultAction",
    "accessTokenTtlSeconds",
    "refreshTokenTtlSeconds",
    "identityTokenTtlSeconds",
    "retentionEnabled",
    "retentionUntaggedDays",
];

/// Registry settings.
#[derive(Args, Debug)]
pub struct RegistryArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: RegistryVerb,
}

/// The network default action.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum DefaultAction {
    #[value(name = "Allow")]
    Allow,
    #[value(name = "Deny")]
    Deny,
}

#[derive(Subcommand, Debug)]
enum RegistryVerb {
    /// Show the registry's settings.
    Show,
    /// Change settings (only those given).
    Update {
        /// Let anyone pull without credentials.
        #[arg(long)]
        anonymous_pull_enabled: Option<bool>,
        /// What happens to clients no network rule allows.
        #[arg(long, value_enum)]
        default_action: Option<DefaultAction>,
        /// Access-token lifetime, seconds.
        #[arg(long)]
        access_token_ttl_seconds: Option<u64>,
        /// Refresh-token lifetime, seconds.
        #[arg(long)]
        refresh_token_ttl_seconds: Option<u64>,
        /// Directory-token lifetime, seconds.
        #[arg(long)]
        identity_token_ttl_seconds: Option<u64>,
        /// Let garbage collection delete untagged manifests (the retention
        /// policy).
        #[arg(long)]
        retention_enabled: Option<bool>,
        /// Days an untagged manifest stays before garbage collection
        /// deletes it (0-365); enables the policy unless
        /// `--retention-enabled false` is given.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=365))]
        retention_untagged_days: Option<u32>,
    },
}

/// Run a `berth registry` verb.
pub async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        RegistryVerb::Show => {
            Ctx::open(c)
                .await?
                .show(Method::GET, "registry", None, COLUMNS)
                .await
        }
        RegistryVerb::Update {
            anonymous_pull_enabled,
            default_action,
            access_token_ttl_seconds,
            refresh_token_ttl_seconds,
            identity_token_ttl_seconds,
            retention_enabled,
            retention_untagged_days,
        } => {
            let mut body = Map::new();
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            };
            set(
                "anonymousPullEnabled",
                anonymous_pull_enabled.map(|b| json!(b)),
            );
            set(
                "defaultAction",
                default_action.map(|d| json!(format!("{d:?}"))),
            );
            set(
                "accessTokenTtlSeconds",
                access_token_ttl_seconds.map(|s| json!(s)),
            );
            set(
                "refreshTokenTtlSeconds",
                refresh_token_ttl_seconds.map(|s| json!(s)),
            );
            set(
                "identityTokenTtlSeconds",
                identity_token_ttl_seconds.map(|s| json!(s)),
            );
            // Setting the days turns the policy on, as in ACR (`az acr
            // config retention update --days N --status enabled`).
            let retention_enabled = retention_enabled.or(retention_untagged_days.map(|_| true));
            set("retentionEnabled", retention_enabled.map(|b| json!(b)));
            set(
                "retentionUntaggedDays",
                retention_untagged_days.map(|d| json!(d)),
            );
            if body.is_empty() {
                anyhow::bail!("nothing to update: give at least one setting");
            }
            let body = Some(Value::Object(body));
            Ctx::open(c)
                .await?
                .show(Method::PATCH, "registry", body, COLUMNS)
                .await
        }
    }
}
