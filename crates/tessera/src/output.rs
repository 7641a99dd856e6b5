//! What the admin commands print: stdout carries only what scripts read (results and
//! `--json` objects), flushed at once; everything else goes to stderr through logging.

use std::io::Write as _;

use anyhow::Context as _;

/// Prints one JSON value on its own line.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(value).context("cannot encode the output")?;
    text.push('\n');
    print(&text)
}

/// Prints `text` as it is and flushes.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")
}
