//! `berth gc`: run a garbage collection through the management API and
//! print what it deleted (or, with `--dry-run`, would delete).

use std::time::Duration;

use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};

use crate::mgmt::{Common, Ctx};
use crate::output::Format;

/// Garbage collection.
#[derive(Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    common: Common,
    /// Only report what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

const SUMMARY: &[&str] = &[
    "id",
    "state",
    "dryRun",
    "manifests",
    "links",
    "blobs",
    "bytesFreed",
    "durationMs",
];
const DELETED: &[&str] = &["kind", "repository", "digest", "size"];

/// Run `berth gc`.
pub async fn run(args: GcArgs) -> anyhow::Result<()> {
    let ctx = Ctx::open(&args.common).await?;
    let body = json!({ "dryRun": args.dry_run });
    let call = ctx.call(Method::POST, "gc", Some(body));
    tokio::pin!(call);
    // While it runs, the progress the server records (every replica sees
    // it) goes to standard error.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut call => break r?,
            _ = tick.tick() => {
                if let Ok(Some(status)) = ctx.call(Method::GET, "gc", None).await {
                    if let Some(r) = status.get("running").filter(|r| !r.is_null()) {
                        eprintln!(
                            "garbage collection {}: phase {}, {} links, {} blobs, {} bytes so far",
                            r["id"].as_str().unwrap_or("?"),
                            r["phase"].as_str().unwrap_or("?"),
                            r["links"], r["blobs"], r["bytesFreed"],
                        );
                    }
                }
            }
        }
    };
    let Some(run) = result else {
        anyhow::bail!("the registry answered without a report");
    };
    if ctx.format() == Format::Json {
        ctx.print(&run, &[]);
        return Ok(());
    }
    ctx.print(&run, SUMMARY);
    let deleted = run.get("deleted").cloned().unwrap_or(Value::Array(vec![]));
    if deleted.as_array().is_some_and(|a| !a.is_empty()) {
        println!();
        ctx.print(&deleted, DELETED);
        if run.get("truncated").and_then(Value::as_bool) == Some(true) {
            println!(
                "(only the first {} deletions are listed)",
                deleted.as_array().map_or(0, Vec::len)
            );
        }
    }
    Ok(())
}
