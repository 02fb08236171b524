//! `berth`: a self-hosted OCI container registry.

mod config;
mod logging;
mod malloc_tuning;
mod serve;
mod storage;

use clap::{CommandFactory, Parser, Subcommand};

/// berth — an OCI container registry whose logins explain themselves.
#[derive(Parser, Debug)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the registry server.
    Serve(config::ServeArgs),
    /// Measure any OCI registry: blob push/pull, image push/pull, manifest
    /// and tag-list request rates, token issuance (data verified on pull).
    Bench(berth_bench::BenchArgs),
    /// Diagnose why logging in to a registry, pushing or pulling fails.
    CheckHealth(berth_health::CheckHealthArgs),
    /// Move the registry's storage (`berth storage migrate`: embedded to
    /// PostgreSQL + object storage).
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    #[command(flatten)]
    Client(berth_cli::Command),
}

fn run_bench(args: berth_bench::BenchArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(berth_bench::run(args))
}

fn main() -> std::process::ExitCode {
    if let Some(code) = berth_cli::run_as_credential_helper() {
        return code;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckHealth(mut args) => {
            // Default: the registry of --image, else the one `berth login`
            // used last.
            if args.login_server.is_none() {
                args.login_server = args
                    .image
                    .as_deref()
                    .and_then(|i| berth_cli::kube::image::ImageRef::parse(i).ok())
                    .map(|i| i.registry)
                    .or_else(|| {
                        berth_cli::session::Sessions::load()
                            .ok()
                            .and_then(|s| s.last_registry)
                    });
            }
            return berth_health::run_blocking(args);
        }
        Command::Serve(args) => {
            malloc_tuning::apply();
            serve::run(args)
        }
        Command::Bench(args) => run_bench(args),
        Command::Storage(cmd) => storage::run(cmd),
        Command::Client(c) => return berth_cli::run(c, Cli::command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
