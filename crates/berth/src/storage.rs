//! `berth storage migrate`: move an embedded registry to PostgreSQL and a
//! blob store (the work is in `berth_store::migrate`; this is the command
//! line, the progress bars and the summary).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use berth_cli::output::{self, Format};
use berth_store::migrate::{MigrationPlan, MigrationProgress, MigrationReport};
use berth_store::{BlobStoreLocation, DatabaseUrl};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Unprinted;

/// `berth storage …`.
#[derive(clap::Subcommand, Debug)]
pub enum StorageCommand {
    /// Move an embedded registry (meta.db and the files under
    /// DIR/blobs) to PostgreSQL and a blob store: blobs (digests verified),
    /// repositories, manifests, tags, referrers, identities, credentials,
    /// tokens, scope maps, role assignments, network rules, settings,
    /// signing keys and audit history. Stop the embedded registry first.
    /// Resumable: run the same command again after an interruption.
    Migrate(MigrateArgs),
}

/// Arguments of `berth storage migrate`.
#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The embedded registry's data directory (holding meta.db and blobs/).
    #[arg(long, value_name = "DIR")]
    pub from_data_dir: PathBuf,
    /// The PostgreSQL database to move the metadata into (empty, or the
    /// target of an earlier run of this migration). Pass a password
    /// through the environment, not the command line: it is never printed.
    #[arg(
        long,
        env = "BERTH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Unprinted,
    /// The blob store to move the blobs into: s3://bucket[/prefix]
    /// (credentials from AWS_*), azure://container[/prefix] (from
    /// AZURE_STORAGE_*) or file:///path.
    #[arg(long, env = "BERTH_BLOB_STORE", value_name = "URL")]
    pub blob_store: String,
    /// Summary format [default: table on a terminal, else json].
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Format>,
}

/// Run a `berth storage` command.
pub fn run(cmd: StorageCommand) -> anyhow::Result<()> {
    match cmd {
        StorageCommand::Migrate(args) => migrate(args),
    }
}

fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let database = DatabaseUrl::parse(&args.database_url.0).map_err(|e| anyhow::anyhow!(e))?;
    let blob_store = args
        .blob_store
        .parse::<BlobStoreLocation>()
        .map_err(|e| anyhow::anyhow!("--blob-store: {e}"))?;
    let plan = MigrationPlan {
        from_data_dir: args.from_data_dir.clone(),
        database,
        blob_store,
    };
    let format = output::resolve(args.output);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bars = Bars::new();
    let report = runtime
        .block_on(berth_store::migrate::migrate(&plan, &bars))
        .with_context(|| {
            format!(
                "migrating {} to {} and {}",
                plan.from_data_dir.display(),
                plan.database,
                plan.blob_store
            )
        })?;
    print!("{}", render(&report, format));
    Ok(())
}

/// The summary: the report itself as JSON; a table of blob and row counts
/// otherwise.
fn render(report: &MigrationReport, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(report).unwrap_or_default() + "\n";
    }
    let mut rows = vec![serde_json::json!({
        "what": "blobs",
        "source": report.blobs.total,
        "copied": report.blobs.copied,
        "skipped": report.blobs.skipped,
    })];
    for t in &report.tables {
        rows.push(serde_json::json!({
            "what": t.table,
            "source": t.source,
            "copied": t.copied,
            "skipped": t.skipped,
        }));
    }
    output::render(
        &serde_json::Value::Array(rows),
        format,
        &["what", "source", "copied", "skipped"],
    )
}

/// indicatif bars on stderr (nothing when stderr is not a terminal): one
/// for blob bytes, then one per table.
struct Bars {
    multi: MultiProgress,
    visible: bool,
    blobs: Mutex<Option<ProgressBar>>,
    table: Mutex<Option<ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        let visible = std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            visible,
            blobs: Mutex::new(None),
            table: Mutex::new(None),
        }
    }

    fn add(&self, total: u64, template: &str, label: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let pb = self.multi.add(ProgressBar::new(total).with_style(style));
        pb.set_prefix(label.to_owned());
        pb
    }
}

impl MigrationProgress for Bars {
    fn blobs_start(&self, _count: u64, bytes: u64) {
        let pb = self.add(
            bytes,
            "{prefix:>28} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed}",
            "blobs",
        );
        if let Ok(mut b) = self.blobs.lock() {
            *b = Some(pb);
        }
    }
    fn blob_done(&self, bytes: u64) {
        if let Ok(b) = self.blobs.lock() {
            if let Some(pb) = b.as_ref() {
                pb.inc(bytes);
            }
        }
    }
    fn blobs_finish(&self) {
        if let Ok(mut b) = self.blobs.lock() {
            if let Some(pb) = b.take() {
                pb.finish();
            }
        }
    }
    fn table_start(&self, table: &str, rows: u64) {
        let pb = self.add(
            rows,
            "{prefix:>28} [{bar:30}] {pos}/{len} rows {elapsed}",
            table,
        );
        if let Ok(mut t) = self.table.lock() {
            *t = Some(pb);
        }
    }
    fn rows_done(&self, rows: u64) {
        if let Ok(t) = self.table.lock() {
            if let Some(pb) = t.as_ref() {
                pb.inc(rows);
            }
        }
    }
    fn table_finish(&self) {
        if let Ok(mut t) = self.table.lock() {
            if let Some(pb) = t.take() {
                pb.finish();
            }
        }
    }
}
