//! The `tessera-bench` binary: see the crate documentation and `tessera-bench --help`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tessera_bench::cli::{Cli, Internal};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Internal::CeilingServer { listen }) = cli.command {
        return tessera_bench::ceiling::run(listen);
    }
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    // One worker thread: the load generator takes one core of the machine, leaving the
    // rest to the server, the way docs/PERFORMANCE.md measures.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(tessera_bench::run::run(&cli.run, command_line))?;
    print!("{}", report.to_text());
    let (json, markdown) = report.write(&cli.run.results)?;
    eprintln!("wrote {} and {}", json.display(), markdown.display());
    Ok(())
}
