//! Log set-up: `tracing` to stderr (stdout is reserved for what scripts read), filtered by
//! `RUST_LOG`, as text or JSON lines.

use std::io::IsTerminal as _;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber. `default_level` applies when `RUST_LOG` is unset; an
/// unreadable `RUST_LOG` falls back to it directive by directive rather than failing.
pub fn init(format: LogFormat, default_level: LevelFilter) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .with_default_directive(default_level.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
