//! The `tessera` binary: parses the command line, sets up logging and the runtime, and
//! hands each command to its module. It only wires things together: the rules live in
//! `tessera-core`, HTTP in `tessera-server`, SQL in `tessera-store`.
//!
//! `anyhow` is used here and only here: the binary reports errors to a person, with their
//! chain of causes, and never needs to match on them.

mod admin_api;
mod admin_cmd;
mod cli;
mod keys;
mod logging;
mod maintenance;
mod migrate_store;
mod output;
mod serve;
mod session_cmd;
mod store;

use std::process::ExitCode;

use clap::Parser as _;
use tracing::level_filters::LevelFilter;

use crate::cli::{Cli, Command, LogFormat};

/// mimalloc rather than the C library's allocator: glibc keeps the large blocks that
/// Argon2id allocates per shopper login in per-thread arenas, so every blocking thread
/// that ever verified a password held some 19 MiB after it, and resident memory climbed
/// into the hundreds of MiB after a burst of logins; mimalloc returns them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs =
        matches!(&cli.command, Command::Serve(args) if args.log_format == LogFormat::Json);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if json_logs {
                // Keep stderr all JSON lines for log collectors.
                tracing::error!(error = format!("{error:#}"), "tessera serve failed");
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    // The server logs at `info`; admin commands stay quiet unless something goes wrong,
    // so their stdout and stderr are only what the person asked for.
    let (format, level) = match &cli.command {
        Command::Serve(args) => (args.log_format, LevelFilter::INFO),
        Command::Client(_)
        | Command::Shopper(_)
        | Command::Session(_)
        | Command::Gc
        | Command::Migrate
        | Command::MigrateStore(_) => (LogFormat::Text, LevelFilter::WARN),
    };
    logging::init(format, level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        match &cli.command {
            Command::Serve(args) => serve::run(cli, args).await,
            Command::Client(command) => admin_cmd::client(cli, command).await,
            Command::Shopper(command) => admin_cmd::shopper(cli, command).await,
            Command::Session(command) => session_cmd::session(cli, command).await,
            Command::Gc => session_cmd::gc(cli).await,
            Command::Migrate => crate::store::migrate(cli).await,
            Command::MigrateStore(args) => migrate_store::run(cli, args).await,
        }
    })
}
