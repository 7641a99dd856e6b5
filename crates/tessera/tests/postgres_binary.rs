//! The real `tessera` binary on PostgreSQL: `migrate` creates the schema, the admin CLI
//! writes a client, `serve` answers the seed flow, two servers on one database see each
//! other's tokens and revocations, a server whose commits may not be durable is refused
//! unless explicitly allowed, and no password from the URL ever reaches the output.
//! `migrate` on SQLite is here too.
//!
//! Each test runs on a fresh database (`tessera_store::test_support`): CI fails when
//! PostgreSQL cannot be reached; elsewhere the tests print a notice and skip.

mod common;

use anyhow::{Context as _, ensure};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tessera_store::test_support::TestDatabase;
use tokio::process::{Child, Command};

use common::{PATIENCE, run};

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
    /// Starts `tessera serve` on port 0 and waits for its first line.
    async fn start(database_url: &str, key_file: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let (child, base, http) = common::serve(tessera(), database_url, key_file, extra).await?;
        Ok(Self { child, base, http })
    }

    /// An anonymous token from the client `(id, secret)`.
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
        ensure!(
            status == StatusCode::OK,
            "token request answered {status}: {body}"
        );
        Ok(body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// GET or DELETE `/oauth20/access-tokens` with `token`: the status.
    async fn session(&self, method: reqwest::Method, token: &str) -> anyhow::Result<StatusCode> {
        Ok(self
            .http
            .request(method, format!("{}/oauth20/access-tokens", self.base))
            .bearer_auth(token)
            .send()
            .await?
            .status())
    }

    /// SIGTERM, then the exit status.
    async fn stop(mut self) -> anyhow::Result<bool> {
        let pid = self.child.id().context("the server has no pid")?;
        let kill = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        ensure!(kill.success(), "kill -TERM failed");
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .context("no exit after SIGTERM")??;
        Ok(status.success())
    }
}

/// Creates a confidential client with the CLI: `(client_id, client_secret)`.
async fn create_client(database_url: &str) -> anyhow::Result<(String, String)> {
    common::create_client(tessera(), database_url, "storefront").await
}

#[tokio::test]
async fn the_seed_flow_works_on_postgres_and_two_servers_share_it() -> anyhow::Result<()> {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let dir = TempDir::new()?;
    let key_file = dir.path().join("tessera.key").display().to_string();

    let (ok, stdout, stderr) = run(tessera()
        .arg("migrate")
        .args(["--database-url", database.url()]))
    .await?;
    ensure!(ok, "migrate failed: {stderr}");
    ensure!(
        stdout.starts_with("migrate: PostgreSQL schema at version 2 "),
        "migrate printed {stdout:?}"
    );

    let client = create_client(database.url()).await?;
    let a = Server::start(database.url(), &key_file, &[]).await?;
    let b = Server::start(database.url(), &key_file, &[]).await?;

    // The seed flow on A: token, GET, DELETE, GET refused.
    let token = a.anonymous_token(&client).await?;
    ensure!(a.session(reqwest::Method::GET, &token).await? == StatusCode::OK);
    ensure!(a.session(reqwest::Method::DELETE, &token).await? == StatusCode::OK);
    ensure!(a.session(reqwest::Method::GET, &token).await? == StatusCode::UNAUTHORIZED);

    // Issued on A, used on B; revoked on A, refused on B at once.
    let shared = a.anonymous_token(&client).await?;
    ensure!(b.session(reqwest::Method::GET, &shared).await? == StatusCode::OK);
    ensure!(a.session(reqwest::Method::DELETE, &shared).await? == StatusCode::OK);
    ensure!(b.session(reqwest::Method::GET, &shared).await? == StatusCode::UNAUTHORIZED);

    // A token issued on B survives both servers stopping.
    let kept = b.anonymous_token(&client).await?;
    ensure!(a.stop().await?, "A did not stop cleanly");
    ensure!(b.stop().await?, "B did not stop cleanly");
    let again = Server::start(database.url(), &key_file, &[]).await?;
    ensure!(again.session(reqwest::Method::GET, &kept).await? == StatusCode::OK);
    ensure!(again.session(reqwest::Method::GET, &token).await? == StatusCode::UNAUTHORIZED);
    ensure!(
        again.stop().await?,
        "the restarted server did not stop cleanly"
    );
    Ok(())
}

#[tokio::test]
async fn a_postgres_that_may_lose_commits_is_refused_unless_explicitly_allowed()
-> anyhow::Result<()> {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let dir = TempDir::new()?;
    let key_file = dir.path().join("tessera.key").display().to_string();
    // New connections to this database report synchronous_commit = off.
    database
        .execute(&format!(
            "ALTER DATABASE {} SET synchronous_commit = off",
            database.name()
        ))
        .await?;

    let (ok, stdout, stderr) = run(tessera()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-bootstrap-client"])
        .args([
            "--database-url",
            database.url(),
            "--token-key-file",
            &key_file,
        ]))
    .await?;
    ensure!(!ok, "serve must refuse; it printed {stdout}");
    ensure!(
        stderr.contains("synchronous_commit") && stderr.contains("--allow-unsafe-postgres"),
        "the refusal must say why and how to override: {stderr}"
    );

    let server = Server::start(database.url(), &key_file, &["--allow-unsafe-postgres"]).await?;
    ensure!(
        server.stop().await?,
        "the allowed server did not stop cleanly"
    );

    let (ok, _, stderr) = run(tessera()
        .arg("migrate")
        .args(["--database-url", database.url()])
        .env("TESSERA_ALLOW_UNSAFE_POSTGRES", "true"))
    .await?;
    ensure!(ok, "the environment variable allows it too: {stderr}");
    ensure!(
        stderr.contains("synchronous_commit"),
        "and a warning is logged: {stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn migrate_creates_a_sqlite_store_and_reports_its_version() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("data").join("t.db");
    let url = format!("sqlite://{}", path.display());
    let (ok, stdout, stderr) = run(tessera().arg("migrate").args(["--database-url", &url])).await?;
    ensure!(ok, "migrate failed: {stderr}");
    ensure!(
        stdout.starts_with("migrate: SQLite schema at version ") && stdout.lines().count() == 1,
        "migrate printed {stdout:?}"
    );
    ensure!(path.exists(), "the database file was created");
    let (ok, again, _) = run(tessera().arg("migrate").args(["--database-url", &url])).await?;
    ensure!(
        ok && again == stdout,
        "a second run changes nothing: {again:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_password_in_the_database_url_never_reaches_the_output() -> anyhow::Result<()> {
    // Nothing listens on port 1 of the loopback address.
    let url = "postgres://tessera:hunter2@127.0.0.1:1/tessera";
    let dir = TempDir::new()?;
    let key_file = dir.path().join("tessera.key").display().to_string();
    for args in [
        &["client", "list"][..],
        &["migrate"][..],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-key-file",
            &key_file,
        ][..],
    ] {
        let (ok, stdout, stderr) = run(tessera().args(args).args([
            "--database-url",
            url,
            "--store-acquire-timeout-ms",
            "500",
        ]))
        .await?;
        ensure!(!ok, "{args:?} cannot succeed without a database");
        ensure!(
            stderr.contains("127.0.0.1:1"),
            "{args:?} names the server: {stderr}"
        );
        ensure!(
            !stdout.contains("hunter2") && !stderr.contains("hunter2"),
            "{args:?} leaked the password: {stdout} {stderr}"
        );
    }
    Ok(())
}
