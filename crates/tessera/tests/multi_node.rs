//! Several real `tessera serve` processes on one store (RELIABILITY P5, P8, P11): two
//! servers on one PostgreSQL database and two on one SQLite file share tokens at once; a
//! revocation acknowledged by A is refused by B for every request sent after the
//! acknowledgement, while concurrent clients use the token on B; parallel refreshes of one
//! token spread over two servers yield at most one successor; and a server whose
//! PostgreSQL connections are ended under load answers only 200, 401 or 503 (with
//! `Retry-After`), loses no acknowledged write and recovers without a restart.
//!
//! PostgreSQL tests run on a fresh database each (`tessera_store::test_support`): CI fails
//! when PostgreSQL cannot be reached; elsewhere they print a notice and skip. Every loop
//! is bounded in count, and every wait has a ceiling; nothing waits for time to pass.

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tessera_store::test_support::TestDatabase;
use tokio::process::{Child, Command};
use tokio::sync::{Barrier, Notify};

use common::PATIENCE;

/// Revoke-on-A iterations per store.
const REVOCATION_ITERATIONS: usize = 200;

/// Concurrent clients using the token on B in each iteration.
const USERS_OF_B: usize = 4;

/// Requests each user of B sends after it has seen A's acknowledgement.
const REQUESTS_AFTER_ACK: usize = 3;

/// Ceiling on the requests one user of B sends in one iteration.
const MAX_REQUESTS_PER_USER: usize = 200;

/// The binary, logging at `warn`, with no stray `TESSERA_*` setting from the environment.
fn tessera() -> Command {
    common::tessera("warn")
}

/// Prints a measured figure where `cargo test` shows it even for a passing test.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A client's credentials: `(client_id, client_secret)`.
type Client = (String, String);

/// Creates a confidential client allowed every default grant, with the CLI.
async fn create_client(database_url: &str) -> anyhow::Result<Client> {
    common::create_client(tessera(), database_url, "storefront").await
}

/// A running `tessera serve`, killed when dropped.
struct Server {
    _child: Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// Starts `tessera serve` on port 0 and waits for its listening line.
    async fn start(database_url: &str, key_file: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let (child, base, http) = common::serve(tessera(), database_url, key_file, extra).await?;
        Ok(Self {
            _child: child,
            base,
            http,
        })
    }

    /// POST /oauth20/token with Basic client authentication: status, `Retry-After` and body.
    async fn token(
        &self,
        client: &Client,
        form: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, bool, Value)> {
        let response = self
            .http
            .post(format!("{}/oauth20/token", self.base))
            .basic_auth(&client.0, Some(&client.1))
            .form(form)
            .send()
            .await?;
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, retry_after, body))
    }

    /// An anonymous token pair: `(access_token, refresh_token)`.
    async fn anonymous_token(&self, client: &Client) -> anyhow::Result<(String, String)> {
        let (status, _, body) = self.token(client, &[("grant_type", "password")]).await?;
        ensure!(status == StatusCode::OK, "token answered {status}: {body}");
        token_pair(&body)
    }

    /// GET or DELETE /oauth20/access-tokens with `token`: status and `Retry-After`.
    async fn session(&self, method: Method, token: &str) -> anyhow::Result<(StatusCode, bool)> {
        let response = self
            .http
            .request(method, format!("{}/oauth20/access-tokens", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        Ok((
            response.status(),
            response.headers().contains_key("retry-after"),
        ))
    }

    /// The status of GET /oauth20/access-tokens with `token`.
    async fn get(&self, token: &str) -> anyhow::Result<StatusCode> {
        Ok(self.session(Method::GET, token).await?.0)
    }
}

/// `(access_token, refresh_token)` of a successful token response.
fn token_pair(body: &Value) -> anyhow::Result<(String, String)> {
    Ok((
        body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned(),
        body["refresh_token"]
            .as_str()
            .context("no refresh_token")?
            .to_owned(),
    ))
}

/// What the revocation race measured.
#[derive(Debug, Default)]
struct RaceFigures {
    requests: usize,
    accepted_before: usize,
    refused_after: usize,
    accepted_after: usize,
}

/// One user of B: sends GETs with `token` until it has sent [`REQUESTS_AFTER_ACK`] after
/// seeing `acked`; returns (instant before each send, status).
async fn use_token(
    b: Arc<Server>,
    token: Arc<String>,
    started: Arc<Barrier>,
    acked: Arc<AtomicBool>,
) -> anyhow::Result<Vec<(Instant, StatusCode)>> {
    let mut seen = Vec::new();
    let mut after_ack = 0;
    while seen.len() < MAX_REQUESTS_PER_USER && after_ack < REQUESTS_AFTER_ACK {
        if acked.load(Ordering::SeqCst) {
            after_ack += 1;
        }
        let sent = Instant::now();
        let status = b.get(&token).await?;
        seen.push((sent, status));
        if seen.len() == 1 {
            // Every user has an answer before A revokes, so the race starts with live use.
            started.wait().await;
        }
    }
    Ok(seen)
}

/// Issue on A and use on B at once; then [`REVOCATION_ITERATIONS`] times: issue on A,
/// let [`USERS_OF_B`] clients use it on B, revoke on A, and check that B accepted no
/// request sent after A's 200 was received.
async fn revocation_race(
    a: Arc<Server>,
    b: Arc<Server>,
    client: &Client,
) -> anyhow::Result<RaceFigures> {
    let (shared, _) = a.anonymous_token(client).await?;
    ensure!(
        b.get(&shared).await? == StatusCode::OK,
        "issued on A, refused on B"
    );
    let (shared, _) = b.anonymous_token(client).await?;
    ensure!(
        a.get(&shared).await? == StatusCode::OK,
        "issued on B, refused on A"
    );

    let mut figures = RaceFigures::default();
    for iteration in 0..REVOCATION_ITERATIONS {
        let (token, _) = a.anonymous_token(client).await?;
        let token = Arc::new(token);
        let started = Arc::new(Barrier::new(USERS_OF_B + 1));
        let acked = Arc::new(AtomicBool::new(false));
        let users: Vec<_> = (0..USERS_OF_B)
            .map(|_| {
                tokio::spawn(use_token(
                    Arc::clone(&b),
                    Arc::clone(&token),
                    Arc::clone(&started),
                    Arc::clone(&acked),
                ))
            })
            .collect();
        started.wait().await;
        let (status, _) = a.session(Method::DELETE, &token).await?;
        let received = Instant::now();
        acked.store(true, Ordering::SeqCst);
        ensure!(status == StatusCode::OK, "DELETE on A answered {status}");
        for user in users {
            for (sent, status) in user.await?? {
                figures.requests += 1;
                match (sent > received, status) {
                    (false, StatusCode::OK) => figures.accepted_before += 1,
                    (false, StatusCode::UNAUTHORIZED) => {}
                    (true, StatusCode::OK) => figures.accepted_after += 1,
                    (true, StatusCode::UNAUTHORIZED) => figures.refused_after += 1,
                    (_, other) => bail!("iteration {iteration}: B answered {other}"),
                }
            }
        }
        ensure!(
            figures.accepted_after == 0,
            "iteration {iteration}: B accepted a request sent after A's 200: {figures:?}"
        );
    }
    Ok(figures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_database_refuse_a_token_at_once_after_a_revocation()
-> anyhow::Result<()> {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let dir = TempDir::new()?;
    let key_file = dir.path().join("tessera.key").display().to_string();
    let a = Arc::new(Server::start(database.url(), &key_file, &[]).await?);
    let b = Arc::new(Server::start(database.url(), &key_file, &[]).await?);
    let client = create_client(database.url()).await?;
    let figures = revocation_race(a, b, &client).await?;
    report(&format!(
        "P5 PostgreSQL, {REVOCATION_ITERATIONS} iterations: {figures:?}"
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_sqlite_file_refuse_a_token_at_once_after_a_revocation()
-> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let key_file = dir.path().join("tessera.key").display().to_string();
    let a = Arc::new(Server::start(&url, &key_file, &[]).await?);
    let b = Arc::new(Server::start(&url, &key_file, &[]).await?);
    let client = create_client(&url).await?;
    let figures = revocation_race(a, b, &client).await?;
    report(&format!(
        "P5 SQLite, {REVOCATION_ITERATIONS} iterations: {figures:?}"
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refreshes_across_two_postgres_servers_rotate_exactly_once() -> anyhow::Result<()>
{
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let dir = TempDir::new()?;
    let key_file = dir.path().join("tessera.key").display().to_string();
    let servers = [
        Arc::new(Server::start(database.url(), &key_file, &[]).await?),
        Arc::new(Server::start(database.url(), &key_file, &[]).await?),
    ];
    let client = Arc::new(create_client(database.url()).await?);
    for (parallel, trials) in [(2_usize, 50_usize), (8, 30)] {
        let mut winners = [0_usize; 2];
        let mut usable_successors = 0;
        for trial in 0..trials {
            let (_, refresh) = servers[trial % 2].anonymous_token(&client).await?;
            let refresh = Arc::new(refresh);
            let started = Arc::new(Barrier::new(parallel));
            let attempts: Vec<_> = (0..parallel)
                .map(|i| {
                    let server = Arc::clone(&servers[i % 2]);
                    let (client, refresh, started) = (
                        Arc::clone(&client),
                        Arc::clone(&refresh),
                        Arc::clone(&started),
                    );
                    tokio::spawn(async move {
                        started.wait().await;
                        server
                            .token(
                                &client,
                                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                            )
                            .await
                    })
                })
                .collect();
            let mut successors = Vec::new();
            for attempt in attempts {
                let (status, _, body) = attempt.await??;
                match status {
                    StatusCode::OK => successors.push(token_pair(&body)?),
                    StatusCode::BAD_REQUEST if body["error"] == "invalid_grant" => {}
                    other => bail!("{parallel} parallel, trial {trial}: {other} {body}"),
                }
            }
            // At most one rotation wins (P8); and one does, since the token was valid.
            ensure!(
                successors.len() == 1,
                "{parallel} parallel, trial {trial}: {} refreshes succeeded",
                successors.len()
            );
            // A successor is usable when its access token is accepted on both servers and
            // its refresh token can be refreshed once more. The losers presented a consumed
            // token, which ends the whole session (P9), so usually none is.
            let mut usable = 0;
            for (access, refresh) in &successors {
                let both = servers[0].get(access).await? == StatusCode::OK
                    && servers[1].get(access).await? == StatusCode::OK;
                let (status, _, _) = servers[1]
                    .token(
                        &client,
                        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
                    )
                    .await?;
                if both && status == StatusCode::OK {
                    usable += 1;
                }
            }
            ensure!(
                usable <= 1,
                "{parallel} parallel, trial {trial}: {usable} usable"
            );
            winners[successors.len()] += 1;
            usable_successors += usable;
        }
        report(&format!(
            "P8 PostgreSQL, two servers, {parallel} parallel refreshes x {trials} trials: \
             one 200 in {}, no 200 in {}, usable successors {usable_successors}, 5xx 0",
            winners[1], winners[0]
        ));
    }
    Ok(())
}

/// One request of the fault test's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Issue,
    Use,
    Revoke,
}

/// Everything the load recorded: each answer, the tokens whose issuance was acknowledged
/// and kept, and those whose revocation was acknowledged.
#[derive(Debug, Default)]
struct Load {
    answers: Vec<(Kind, StatusCode, bool)>,
    kept: Vec<String>,
    revoked: Vec<String>,
}

/// Issue, use, and (every other time) revoke tokens on `server` until `stop`, at most
/// `limit` cycles, counting answered writes in `done` and signalling each on `progress`.
async fn load(
    server: Arc<Server>,
    client: Arc<Client>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    progress: Arc<Notify>,
    limit: usize,
) -> anyhow::Result<Load> {
    let mut load = Load::default();
    for cycle in 0..limit {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (status, retry_after, body) =
            server.token(&client, &[("grant_type", "password")]).await?;
        load.answers.push((Kind::Issue, status, retry_after));
        done.fetch_add(1, Ordering::SeqCst);
        progress.notify_one();
        if status != StatusCode::OK {
            continue;
        }
        let (token, _) = token_pair(&body)?;
        let (status, retry_after) = server.session(Method::GET, &token).await?;
        load.answers.push((Kind::Use, status, retry_after));
        if cycle % 2 == 0 {
            load.kept.push(token);
            continue;
        }
        let (status, retry_after) = server.session(Method::DELETE, &token).await?;
        load.answers.push((Kind::Revoke, status, retry_after));
        done.fetch_add(1, Ordering::SeqCst);
        progress.notify_one();
        if status == StatusCode::OK {
            load.revoked.push(token);
        }
    }
    Ok(load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ending_a_servers_postgres_connections_under_load_gives_503s_no_false_200_and_recovery()
-> anyhow::Result<()> {
    const WORKERS: usize = 3;
    const FAULTS: usize = 40;
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let dir = TempDir::new()?;
    let key_file = dir.path().join("tessera.key").display().to_string();
    let server = Arc::new(
        Server::start(
            database.url(),
            &key_file,
            &["--store-acquire-timeout-ms", "2000"],
        )
        .await?,
    );
    let client = Arc::new(create_client(database.url()).await?);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(load(
                Arc::clone(&server),
                Arc::clone(&client),
                Arc::clone(&stop),
                Arc::clone(&done),
                Arc::clone(&progress),
                2_000,
            ))
        })
        .collect();

    // End every connection the server holds to its database, then wait (with a ceiling)
    // until the load has had a few more writes answered, and again.
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid <> pg_backend_pid()",
        database.name()
    );
    for _ in 0..FAULTS {
        database.execute(&terminate).await?;
        let target = done.load(Ordering::SeqCst) + 4;
        while done.load(Ordering::SeqCst) < target {
            tokio::time::timeout(PATIENCE, progress.notified())
                .await
                .context("the load stopped making progress")?;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut all = Load::default();
    for worker in workers {
        let part = worker.await??;
        all.answers.extend(part.answers);
        all.kept.extend(part.kept);
        all.revoked.extend(part.revoked);
    }

    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (kind, status, retry_after) in &all.answers {
        *counts
            .entry(format!("{kind:?} {}", status.as_u16()))
            .or_default() += 1;
        match status.as_u16() {
            200 => {}
            503 => ensure!(*retry_after, "a 503 for {kind:?} without Retry-After"),
            // A fresh, unrevoked token refused would be a lost issuance.
            other => bail!("{kind:?} answered {other}"),
        }
    }

    // The server recovers by itself: a token request succeeds within bounded retries.
    let mut retries = 0;
    loop {
        let (status, _, _) = server.token(&client, &[("grant_type", "password")]).await?;
        if status == StatusCode::OK {
            break;
        }
        ensure!(
            status == StatusCode::SERVICE_UNAVAILABLE,
            "recovery answered {status}"
        );
        retries += 1;
        ensure!(retries < 20, "no recovery after {retries} retries");
    }

    // No acknowledged write lost: kept tokens work, revoked ones stay refused.
    for token in &all.kept {
        ensure!(
            server.get(token).await? == StatusCode::OK,
            "an issued token was lost"
        );
    }
    for token in &all.revoked {
        ensure!(
            server.get(token).await? == StatusCode::UNAUTHORIZED,
            "a revoked token works again"
        );
    }
    report(&format!(
        "P11 PostgreSQL, {FAULTS} rounds of ended connections under {WORKERS} workers: \
         {counts:?}; kept {} all usable, revoked {} all refused; recovered after {retries} \
         503s",
        all.kept.len(),
        all.revoked.len()
    ));
    Ok(())
}
