//! `tessera migrate-store` with the real binary: a SQLite store populated through a running
//! `tessera serve` moves to a fresh PostgreSQL database, twice (the second run changes
//! nothing), and a server on PostgreSQL with the same key file then serves the moved
//! tokens exactly as the SQLite one would have: live tokens work, the logged-out one does
//! not, a replayed refresh token is still detected as reuse, client secrets still
//! authenticate. Also: the same store on both sides is refused, and no password from a URL
//! reaches the output.
//!
//! The PostgreSQL test runs on a fresh database (`tessera_store::test_support`): CI fails
//! when PostgreSQL cannot be reached; elsewhere it prints a notice and skips.

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

/// Client credentials: `(client_id, client_secret)`.
type Client = (String, String);

/// A successful token response's tokens.
struct Tokens {
    access: String,
    refresh: String,
}

/// A running `tessera serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// Starts `tessera serve` on port 0 and waits for its first line.
    async fn start(database_url: &str, key_file: &str) -> anyhow::Result<Self> {
        let (child, base, http) = common::serve(tessera(), database_url, key_file, &[]).await?;
        Ok(Self { child, base, http })
    }

    /// POST /oauth20/token with Basic client authentication: the status and the body.
    async fn token(
        &self,
        client: &Client,
        form: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}/oauth20/token", self.base))
            .basic_auth(&client.0, Some(&client.1))
            .form(form)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }

    /// A token request that must succeed.
    async fn tokens(&self, client: &Client, form: &[(&str, &str)]) -> anyhow::Result<Tokens> {
        let (status, body) = self.token(client, form).await?;
        ensure!(
            status == StatusCode::OK,
            "token request answered {status}: {body}"
        );
        Ok(Tokens {
            access: body["access_token"]
                .as_str()
                .context("access_token")?
                .to_owned(),
            refresh: body["refresh_token"]
                .as_str()
                .context("refresh_token")?
                .to_owned(),
        })
    }

    /// `grant_type=refresh_token`: the status and the body.
    async fn refresh(&self, client: &Client, refresh: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.token(
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await
    }

    /// GET or DELETE `/oauth20/access-tokens` with `token`: the status and the body.
    async fn session(
        &self,
        method: reqwest::Method,
        token: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .request(method, format!("{}/oauth20/access-tokens", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }

    /// The session details of a live token.
    async fn details(&self, token: &str) -> anyhow::Result<Value> {
        let (status, body) = self.session(reqwest::Method::GET, token).await?;
        ensure!(status == StatusCode::OK, "GET answered {status}: {body}");
        Ok(body)
    }

    /// The status of GET with `token`.
    async fn status(&self, token: &str) -> anyhow::Result<StatusCode> {
        Ok(self.session(reqwest::Method::GET, token).await?.0)
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

/// Runs an admin command that must succeed; its stdout.
async fn run_ok(args: &[&str], database_url: &str) -> anyhow::Result<String> {
    let (ok, stdout, stderr) =
        run(tessera().args(args).args(["--database-url", database_url])).await?;
    ensure!(ok, "{args:?} failed: {stderr}");
    Ok(stdout)
}

/// Creates a confidential client with the CLI.
async fn create_client(database_url: &str, name: &str) -> anyhow::Result<Client> {
    common::create_client(tessera(), database_url, name).await
}

/// `migrate-store --from FROM --to TO`, which must succeed: its stdout.
async fn migrate_store(from: &str, to: &str) -> anyhow::Result<String> {
    let (ok, stdout, stderr) =
        run(tessera().args(["migrate-store", "--from", from, "--to", to])).await?;
    ensure!(ok, "migrate-store failed: {stdout} {stderr}");
    Ok(stdout)
}

/// The `N to move, M written` numbers of one kind's line.
fn moved(stdout: &str, kind: &str) -> anyhow::Result<(u64, u64)> {
    let prefix = format!("migrate-store: {kind}: ");
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .with_context(|| format!("no line for {kind} in {stdout:?}"))?;
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .take(2)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    ensure!(numbers.len() == 2, "unexpected line {line:?}");
    Ok((numbers[0], numbers[1]))
}

/// The same session details but for what moves with the clock (the time left and the last
/// access).
fn same_session(after: &Value, before: &Value) -> anyhow::Result<()> {
    let fixed = |details: &Value| {
        let mut details = details.clone();
        if let Some(object) = details.as_object_mut() {
            object.remove("expiresIn");
            object.remove("lastAccessed");
        }
        details
    };
    ensure!(
        fixed(after) == fixed(before),
        "the session details changed: {before} became {after}"
    );
    Ok(())
}

#[tokio::test]
async fn a_populated_sqlite_store_moves_to_postgres_and_its_tokens_keep_working()
-> anyhow::Result<()> {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let dir = TempDir::new()?;
    let sqlite = format!(
        "sqlite://{}",
        dir.path().join("data").join("t.db").display()
    );
    let key_file = dir.path().join("tessera.key").display().to_string();

    // Populate SQLite: two clients and a partner shopper with the CLI, then tokens through
    // a running server.
    let storefront = create_client(&sqlite, "storefront").await?;
    let partner = create_client(&sqlite, "partner").await?;
    run_ok(
        &[
            "shopper",
            "create",
            "--external-reference-id",
            "ext-2001",
            "--locale",
            "fr_FR",
            "--currency",
            "EUR",
        ],
        &sqlite,
    )
    .await?;
    let server = Server::start(&sqlite, &key_file).await?;
    let anonymous = server
        .tokens(&storefront, &[("grant_type", "password")])
        .await?;
    let shopper = server
        .tokens(
            &partner,
            &[
                ("grant_type", "client_credentials"),
                ("dr_external_reference_id", "ext-2001"),
            ],
        )
        .await?;
    // A rotation: `rotated_out` is consumed, `rotated` is live.
    let rotated_out = server
        .tokens(&storefront, &[("grant_type", "password")])
        .await?;
    let (status, body) = server.refresh(&storefront, &rotated_out.refresh).await?;
    ensure!(
        status == StatusCode::OK,
        "refresh answered {status}: {body}"
    );
    let rotated = Tokens {
        access: body["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned(),
        refresh: body["refresh_token"]
            .as_str()
            .context("refresh_token")?
            .to_owned(),
    };
    // A logged-out session.
    let logged_out = server
        .tokens(&storefront, &[("grant_type", "password")])
        .await?;
    let (status, _) = server
        .session(reqwest::Method::DELETE, &logged_out.access)
        .await?;
    ensure!(status == StatusCode::OK, "logout answered {status}");

    let anonymous_before = server.details(&anonymous.access).await?;
    let shopper_before = server.details(&shopper.access).await?;
    let rotated_before = server.details(&rotated.access).await?;
    ensure!(
        server.stop().await?,
        "the SQLite server did not stop cleanly"
    );

    // Move, then move again: the second run finds everything there and writes nothing.
    let first = migrate_store(&sqlite, database.url()).await?;
    let second = migrate_store(&sqlite, database.url()).await?;
    let expected = [
        ("clients", 2),
        ("shoppers", 1),
        ("shopper watermarks", 0),
        ("pending tidy-ups", 0),
        // Anonymous, partner, rotated; not the logged-out one.
        ("sessions", 3),
        // Two per session, plus the rotation's first pair (its refresh token consumed).
        ("tokens", 8),
        ("session tokens", 0),
    ];
    for (kind, count) in expected {
        ensure!(
            moved(&first, kind)? == (count, count),
            "first run, {kind}: {first}"
        );
        ensure!(
            moved(&second, kind)? == (count, 0),
            "second run, {kind}: {second}"
        );
    }
    for run in [&first, &second] {
        ensure!(
            run.contains("migrate-store: check passed"),
            "the count check passes: {run}"
        );
    }

    // PostgreSQL, same key file.
    let server = Server::start(database.url(), &key_file).await?;
    for (token, before) in [
        (&anonymous.access, &anonymous_before),
        (&shopper.access, &shopper_before),
        (&rotated.access, &rotated_before),
    ] {
        same_session(&server.details(token).await?, before)?;
    }
    ensure!(
        shopper_before["externalReferenceId"] == "ext-2001",
        "{shopper_before}"
    );
    ensure!(server.status(&logged_out.access).await? == StatusCode::UNAUTHORIZED);

    // Client secrets still authenticate, and wrong ones still do not.
    server
        .tokens(&partner, &[("grant_type", "password")])
        .await?;
    let wrong = (storefront.0.clone(), "tcs_wrong".to_owned());
    let (status, _) = server.token(&wrong, &[("grant_type", "password")]).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "a wrong secret answered {status}"
    );

    // The live refresh token of the anonymous session refreshes.
    let (status, body) = server.refresh(&storefront, &anonymous.refresh).await?;
    ensure!(
        status == StatusCode::OK,
        "refresh answered {status}: {body}"
    );

    // Replaying the rotated-out refresh token is refused and ends its session: reuse
    // detection survived the move.
    let (status, body) = server.refresh(&storefront, &rotated_out.refresh).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant",
        "the replay answered {status}: {body}"
    );
    ensure!(server.status(&rotated.access).await? == StatusCode::UNAUTHORIZED);
    let (status, _) = server.refresh(&storefront, &rotated.refresh).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST,
        "the successor after the replay: {status}"
    );
    ensure!(
        server.stop().await?,
        "the PostgreSQL server did not stop cleanly"
    );
    Ok(())
}

#[tokio::test]
async fn the_same_store_on_both_sides_is_refused() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    run_ok(&["migrate"], &url).await?;
    let other_spelling = format!("sqlite:{}", path.display());
    for to in [&url, &other_spelling] {
        let (ok, _, stderr) =
            run(tessera().args(["migrate-store", "--from", &url, "--to", to])).await?;
        ensure!(!ok, "moving a store into itself must fail");
        ensure!(stderr.contains("same store"), "{stderr}");
    }
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    let (ok, _, stderr) =
        run(tessera().args(["migrate-store", "--from", &missing, "--to", &url])).await?;
    ensure!(!ok && stderr.contains("does not exist"), "{stderr}");
    ensure!(
        !dir.path().join("missing.db").exists(),
        "no empty source is created"
    );
    Ok(())
}

#[tokio::test]
async fn a_password_in_either_url_never_reaches_the_output() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let sqlite = format!("sqlite://{}", dir.path().join("t.db").display());
    run_ok(&["migrate"], &sqlite).await?;
    // Nothing listens on port 1 of the loopback address.
    let postgres = "postgres://tessera:hunter2@127.0.0.1:1/tessera";
    for (from, to) in [
        (sqlite.as_str(), postgres),
        (postgres, sqlite.as_str()),
        (postgres, postgres),
    ] {
        let (ok, stdout, stderr) = run(tessera()
            .args(["migrate-store", "--from", from, "--to", to])
            .args(["--store-acquire-timeout-ms", "500"]))
        .await?;
        ensure!(!ok, "{from} -> {to} cannot succeed without PostgreSQL");
        ensure!(
            !stdout.contains("hunter2") && !stderr.contains("hunter2"),
            "the password leaked: {stdout} {stderr}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_count_that_does_not_match_fails_with_the_kind_named() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let from = format!("sqlite://{}", dir.path().join("from.db").display());
    let to = format!("sqlite://{}", dir.path().join("to.db").display());
    // Two different shoppers with the same partner reference: the source's cannot move.
    for url in [&from, &to] {
        run_ok(
            &["shopper", "create", "--external-reference-id", "ext-3001"],
            url,
        )
        .await?;
    }
    create_client(&from, "storefront").await?;
    let (ok, stdout, stderr) =
        run(tessera().args(["migrate-store", "--from", &from, "--to", &to])).await?;
    ensure!(!ok, "a mismatch must fail: {stdout}");
    ensure!(
        stderr.contains("the counts do not match")
            && stderr.contains("shoppers: 1 in the source, 0 of them in the destination"),
        "{stderr}"
    );
    ensure!(
        moved(&stdout, "clients")? == (1, 1) && moved(&stdout, "shoppers")? == (1, 0),
        "everything else moved: {stdout}"
    );
    Ok(())
}
