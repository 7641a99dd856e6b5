//! Helpers shared by the test files that drive the real `tessera` binary on PostgreSQL
//! (`postgres_binary`, `multi_node`, `migrate_store`, `postgres_outage`): the `PATIENCE`
//! ceiling, running a command to its end, creating a client with the CLI and starting
//! `tessera serve`. Only what every one of those files uses belongs here, since each file
//! compiles this module on its own and an item one of them leaves unused is dead code
//! there; each file keeps its own `tessera()` (its log level), its `Server` methods and
//! anything else only some of them need. `binary.rs` has its own, richer harness.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Bound on waiting for the binary to start, answer or stop; generous because CI shares
/// two cores with compilers. Nothing waits for time to pass: these are only ceilings.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The binary, logging at `log`, with no stray `TESSERA_*` setting from the environment.
pub fn tessera(log: &str) -> Command {
    tessera_under(&[], log)
}

/// [`tessera`] run by `wrapper` (a program and its arguments, such as a tracer), which is
/// given the binary's path as its last argument; an empty `wrapper` runs the binary itself.
pub fn tessera_under(wrapper: &[&OsStr], log: &str) -> Command {
    let binary = OsStr::new(env!("CARGO_BIN_EXE_tessera"));
    let mut command = match wrapper.split_first() {
        Some((program, arguments)) => {
            let mut command = Command::new(program);
            command.args(arguments).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TESSERA_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", log).kill_on_drop(true);
    command
}

/// Runs a command to its end: (success, stdout, stderr).
pub async fn run(command: &mut Command) -> anyhow::Result<(bool, String, String)> {
    let output = tokio::time::timeout(
        PATIENCE,
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .context("the command did not finish")??;
    Ok((
        output.status.success(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

/// Creates the confidential client `name` with the CLI run by `tessera` (a fresh command
/// from the file's `tessera()`), allowed every default grant: `(client_id, client_secret)`.
pub async fn create_client(
    mut tessera: Command,
    database_url: &str,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let (ok, stdout, stderr) = run(tessera
        .args(["client", "create", "--name", name, "--json"])
        .args(["--database-url", database_url]))
    .await?;
    ensure!(ok, "client create failed: {stderr}");
    let json: Value = serde_json::from_str(stdout.trim())?;
    Ok((
        json["client_id"].as_str().context("client_id")?.to_owned(),
        json["client_secret"]
            .as_str()
            .context("client_secret")?
            .to_owned(),
    ))
}

/// Starts `tessera serve` (run by `tessera`, a fresh command from the file's `tessera()`)
/// on port 0 with `extra` arguments and waits for its first line: the process, killed
/// when dropped, its base URL and an HTTP client for it. Stdout is read to its end
/// in the background, so the server never blocks on a full pipe.
pub async fn serve(
    tessera: Command,
    database_url: &str,
    key_file: &str,
    extra: &[&str],
) -> anyhow::Result<(Child, String, reqwest::Client)> {
    serve_with_stderr(tessera, database_url, key_file, extra, Stdio::null()).await
}

/// [`serve`] with the server's stderr (its log) going to `stderr`, e.g. a pipe the caller
/// takes from the returned child.
pub async fn serve_with_stderr(
    mut tessera: Command,
    database_url: &str,
    key_file: &str,
    extra: &[&str],
    stderr: Stdio,
) -> anyhow::Result<(Child, String, reqwest::Client)> {
    let mut child = tessera
        .args(["serve", "--listen", "127.0.0.1:0", "--no-bootstrap-client"])
        .args(["--database-url", database_url, "--token-key-file", key_file])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("cannot start tessera serve")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .context("the server printed nothing")??
        .context("the server exited before listening")?;
    let base = first
        .strip_prefix("tessera listening on ")
        .with_context(|| format!("unexpected first line {first:?}"))?
        .to_owned();
    // Keep reading stdout, so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()?;
    Ok((child, base, http))
}
