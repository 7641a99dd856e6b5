//! The real `tessera` binary on SQLite: MAC key rotation across restarts (RELIABILITY P3:
//! the newest key signs, every configured key verifies, a removed key's tokens die), and
//! the HTTP limit flags reaching the listener (P15).

mod common;

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use reqwest::StatusCode;
use serde_json::Value;
use tessera_core::token::TokenKeys;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

use common::PATIENCE;

/// The binary, logging at `info`, with no stray `TESSERA_*` setting from the environment.
fn tessera() -> Command {
    common::tessera("info")
}

/// A running `tessera serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    async fn start(database_url: &str, key_file: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let key_file = key_file.to_str().context("key file path")?;
        let (child, base, http) = common::serve(tessera(), database_url, key_file, extra).await?;
        Ok(Self { child, base, http })
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// An anonymous access token from the client `(id, secret)`.
    async fn anonymous_token(&self, client: &(String, String)) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/oauth20/token", self.base))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("grant_type", "password")])
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        ensure!(status == StatusCode::OK, "token answered {status}: {body}");
        Ok(body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// The status of a session lookup with `token`.
    async fn session_status(&self, token: &str) -> anyhow::Result<StatusCode> {
        Ok(self
            .http
            .get(format!("{}/oauth20/access-tokens", self.base))
            .bearer_auth(token)
            .send()
            .await?
            .status())
    }
}

/// A fresh key: `(key id, its key file line)`.
fn new_key() -> anyhow::Result<(String, String)> {
    let text = TokenKeys::generate_file()?;
    let line = text
        .expose()
        .lines()
        .find(|line| !line.starts_with('#') && !line.trim().is_empty())
        .context("a generated key file holds a key")?
        .to_owned();
    let kid = line
        .split_whitespace()
        .next()
        .context("a key line starts with its id")?
        .to_owned();
    Ok((kid, line))
}

/// Replaces the key file with `lines`, newest first, readable by its owner only.
fn write_key_file(path: &Path, lines: &[&str]) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut file, format!("{}\n", lines.join("\n")).as_bytes())?;
    Ok(())
}

#[tokio::test]
async fn a_rotated_key_keeps_old_tokens_until_it_is_removed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let key_file = dir.path().join("tessera.key");
    let (k1, k1_line) = new_key()?;
    let (k2, k2_line) = new_key()?;
    let client = common::create_client(tessera(), &database_url, "rotation").await?;

    // [k1]: token A is signed with k1.
    write_key_file(&key_file, &[&k1_line])?;
    let server = Server::start(&database_url, &key_file, &[]).await?;
    let token_a = server.anonymous_token(&client).await?;
    ensure!(token_a.starts_with(&format!("tsa_{k1}_")), "{token_a}");
    ensure!(server.session_status(&token_a).await? == StatusCode::OK);
    server.stop().await?;

    // [k2, k1]: k2 signs, both verify.
    write_key_file(&key_file, &[&k2_line, &k1_line])?;
    let server = Server::start(&database_url, &key_file, &[]).await?;
    assert_eq!(server.session_status(&token_a).await?, StatusCode::OK);
    let token_b = server.anonymous_token(&client).await?;
    assert!(token_b.starts_with(&format!("tsa_{k2}_")), "{token_b}");
    assert_eq!(server.session_status(&token_b).await?, StatusCode::OK);
    server.stop().await?;

    // [k2]: k1's tokens are dead, k2's live on.
    write_key_file(&key_file, &[&k2_line])?;
    let server = Server::start(&database_url, &key_file, &[]).await?;
    assert_eq!(
        server.session_status(&token_a).await?,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(server.session_status(&token_b).await?, StatusCode::OK);
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_header_read_timeout_flag_cuts_off_a_slow_client() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let key_file = dir.path().join("tessera.key");
    let server = Server::start(
        &database_url,
        &key_file,
        &["--header-read-timeout-ms", "300", "--max-connections", "8"],
    )
    .await?;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await?;
    stream.write_all(b"GET /heal").await?;
    let mut received = Vec::new();
    // A reset counts as closed too.
    let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received)).await;
    ensure!(closed.is_ok(), "the slow connection was never closed");
    let reply = String::from_utf8_lossy(&received);
    ensure!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    assert_eq!(health.status(), StatusCode::OK);
    server.stop().await?;
    Ok(())
}
