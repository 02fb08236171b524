//! Standalone runner with the same flags as `berth bench`, for use before
//! (or without) the `berth` binary:
//! `cargo run --release -p berth-bench --example bench -- http://127.0.0.1:5000`

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "berth-bench",
    about = "Load and throughput test for an OCI registry"
)]
struct Cli {
    #[command(flatten)]
    args: berth_bench::BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    berth_bench::run(Cli::parse().args).await
}
