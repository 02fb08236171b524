//! `berth network-rule add|remove|list`.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use crate::mgmt::{delete_one, list, Common, Ctx};

const COLUMNS: &[&str] = &["defaultAction", "ipRules"];

/// IP allow rules.
#[derive(Args, Debug)]
pub struct NetworkRuleArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    verb: NetworkRuleVerb,
}

#[derive(Subcommand, Debug)]
enum NetworkRuleVerb {
    /// Allow an IP address or CIDR range.
    Add {
        /// e.g. `203.0.113.0/24` or `198.51.100.7`.
        #[arg(long)]
        ip_address: String,
    },
    /// Remove an allow rule (asks for confirmation).
    Remove {
        /// The rule as listed.
        #[arg(long)]
        ip_address: String,
    },
    /// Show the default action and the allow rules.
    List,
}

/// Run a `berth network-rule` verb.
pub async fn run(args: NetworkRuleArgs) -> anyhow::Result<()> {
    let c = &args.common;
    match args.verb {
        NetworkRuleVerb::Add { ip_address } => {
            let body = json!({ "ipAddress": ip_address });
            Ctx::open(c)
                .await?
                .show(Method::POST, "network-rules", Some(body), COLUMNS)
                .await
        }
        NetworkRuleVerb::Remove { ip_address } => {
            let what = format!("the network rule {ip_address}");
            delete_one(c, "network-rules", &ip_address, &what).await
        }
        NetworkRuleVerb::List => list(c, "network-rules", COLUMNS).await,
    }
}
