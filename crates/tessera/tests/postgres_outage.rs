//! Losing PostgreSQL (issue 5): a real `tessera serve` reaches its database through a TCP
//! forwarder in this test, which can make PostgreSQL unreachable two ways: silent (the
//! forwarder stops forwarding and holds new connections unanswered, like a host that no
//! longer answers) and closing (it ends every connection and closes each new one at once,
//! like a host whose PostgreSQL is gone). Either way a token request, a use and a
//! revocation each answer 503 with `Retry-After` within a few seconds (the pool's acquire
//! timeout is set to one second); with the forwarder up again on the same port, the node
//! serves again without a restart, and the token issued before the outage still works.
//!
//! Other tests share the machine's PostgreSQL, so it is never stopped: only the forwarder
//! goes down. The test runs on a fresh database (`tessera_store::test_support`): CI fails
//! when PostgreSQL cannot be reached; elsewhere it prints a notice and skips. Every loop is
//! bounded in count, and every wait has a ceiling.

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tessera_store::test_support::TestDatabase;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The pool's acquire timeout given to the server, in milliseconds.
const ACQUIRE_TIMEOUT_MS: u64 = 1000;

/// Ceiling on how long a 503 may take while PostgreSQL is unreachable: the acquire timeout
/// plus generous slack for a loaded machine. A request hanging would exceed it.
const MAX_503_LATENCY: Duration = Duration::from_secs(5);

/// Recovery attempts after PostgreSQL is reachable again, and the pause between them.
const RECOVERY_ATTEMPTS: usize = 30;
const RECOVERY_PAUSE: Duration = Duration::from_millis(200);

/// The binary, logging at `warn`, with no stray `TESSERA_*` setting from the environment.
fn tessera() -> Command {
    common::tessera("warn")
}

/// Prints a measured figure where `cargo test` shows it even for a passing test.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Splits a PostgreSQL URL into `(scheme and userinfo, host:port, path and query)`, the
/// port defaulting to 5432. An IPv6 host keeps its brackets.
fn split_url(url: &str) -> anyhow::Result<(String, String, String)> {
    let (scheme, rest) = url.split_once("://").context("no scheme in the URL")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (format!("{userinfo}@"), host_port),
        None => (String::new(), authority),
    };
    ensure!(!host_port.is_empty(), "no host in the URL");
    let has_port = match host_port.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && (!host.starts_with('[') || host.ends_with(']'))
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    let target = if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    Ok((format!("{scheme}://{userinfo}"), target, path.to_owned()))
}

/// What the forwarder does with connections to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Pipes each connection to PostgreSQL.
    Up,
    /// Ends every piped connection, and closes each new one as soon as it is accepted:
    /// like a database host that answers but whose PostgreSQL is gone.
    Closing,
    /// Stops forwarding on the piped connections and holds each new one open without
    /// answering: like a database host that no longer answers at all.
    Silent,
}

/// A switchable TCP forwarder to PostgreSQL on `127.0.0.1:<port>`; the port stays the same
/// whatever the mode, so the node is never told of another address.
struct Forwarder {
    port: u16,
    mode: watch::Sender<Mode>,
    accepting: JoinHandle<()>,
}

impl Forwarder {
    async fn start(target: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (mode, state) = watch::channel(Mode::Up);
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut state = state.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let current = *state.borrow_and_update();
                    match current {
                        Mode::Closing => return,
                        Mode::Silent => {
                            let _ = state.wait_for(|mode| *mode != Mode::Silent).await;
                            return;
                        }
                        Mode::Up => {}
                    }
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                        _ = state.wait_for(|mode| *mode != Mode::Up) => {}
                    }
                    // Forwarding has stopped; silent, the sockets stay open until the mode
                    // changes again. Dropping them then ends the connection.
                    if *state.borrow() == Mode::Silent {
                        let _ = state.wait_for(|mode| *mode != Mode::Silent).await;
                    }
                });
            }
        });
        Ok(Self {
            port,
            mode,
            accepting,
        })
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.set(Mode::Closing);
        self.accepting.abort();
    }
}

/// A client's credentials: `(client_id, client_secret)`.
type Client = (String, String);

/// Creates a confidential client allowed every default grant, with the CLI.
async fn create_client(database_url: &str) -> anyhow::Result<Client> {
    common::create_client(tessera(), database_url, "storefront").await
}

/// A running `tessera serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    /// Starts `tessera serve` on port 0 and waits for its listening line.
    async fn start(database_url: &str, key_file: &str, extra: &[&str]) -> anyhow::Result<Self> {
        let (child, base, http) = common::serve(tessera(), database_url, key_file, extra).await?;
        Ok(Self { child, base, http })
    }

    /// The process's id, to show that no restart happened.
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// POST /oauth20/token with the password grant: status, `Retry-After` and body.
    async fn token(&self, client: &Client) -> anyhow::Result<(StatusCode, bool, Value)> {
        let response = self
            .http
            .post(format!("{}/oauth20/token", self.base))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("grant_type", "password")])
            .send()
            .await?;
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, retry_after, body))
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
}

/// The access token of a successful token response.
fn access_token(body: &Value) -> anyhow::Result<String> {
    Ok(body["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_postgres_is_unreachable_requests_answer_503_quickly_and_the_node_recovers()
-> anyhow::Result<()> {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let (prefix, target, path) = split_url(database.url())?;
    let forwarder = Forwarder::start(target).await?;
    let forwarded_url = format!("{prefix}127.0.0.1:{}{path}", forwarder.port);
    let dir = TempDir::new()?;
    let key_file = dir.path().join("tessera.key").display().to_string();
    let acquire_timeout = ACQUIRE_TIMEOUT_MS.to_string();
    let server = Server::start(
        &forwarded_url,
        &key_file,
        &["--store-acquire-timeout-ms", &acquire_timeout],
    )
    .await?;
    let pid = server.pid();
    let client = create_client(database.url()).await?;

    let (status, _, body) = server.token(&client).await?;
    ensure!(status == StatusCode::OK, "token answered {status}: {body}");
    let live = access_token(&body)?;
    let (status, _) = server.session(Method::GET, &live).await?;
    ensure!(status == StatusCode::OK, "the new token answered {status}");

    // PostgreSQL unreachable, both ways: every request that needs it answers 503, quickly.
    let mut latencies = Vec::new();
    for mode in [Mode::Silent, Mode::Closing] {
        forwarder.set(mode);
        for kind in ["token request", "GET", "DELETE"] {
            let started = Instant::now();
            let (status, retry_after) = match kind {
                "token request" => {
                    let (status, retry_after, _) = server.token(&client).await?;
                    (status, retry_after)
                }
                "GET" => server.session(Method::GET, &live).await?,
                _ => server.session(Method::DELETE, &live).await?,
            };
            let latency = started.elapsed();
            ensure!(
                status == StatusCode::SERVICE_UNAVAILABLE,
                "{kind} with the forwarder {mode:?} answered {status}"
            );
            ensure!(
                retry_after,
                "the 503 for the {kind} ({mode:?}) has no Retry-After"
            );
            ensure!(
                latency < MAX_503_LATENCY,
                "the 503 for the {kind} ({mode:?}) took {latency:?}"
            );
            latencies.push(format!("{mode:?} {kind} {} ms", latency.as_millis()));
        }
    }

    // PostgreSQL reachable again, on the same port: the node serves without a restart.
    forwarder.set(Mode::Up);
    let recovery = Instant::now();
    let mut failed = 0;
    let fresh = loop {
        let (status, _, body) = server.token(&client).await?;
        if status == StatusCode::OK {
            break access_token(&body)?;
        }
        if status != StatusCode::SERVICE_UNAVAILABLE {
            bail!("a token request after the outage answered {status}: {body}");
        }
        failed += 1;
        ensure!(
            failed < RECOVERY_ATTEMPTS,
            "no recovery after {failed} attempts"
        );
        tokio::time::sleep(RECOVERY_PAUSE).await;
    };
    let recovered_in = recovery.elapsed();
    let (status, _) = server.session(Method::GET, &live).await?;
    ensure!(
        status == StatusCode::OK,
        "the token issued before the outage answered {status}"
    );
    let (status, _) = server.session(Method::GET, &fresh).await?;
    ensure!(
        status == StatusCode::OK,
        "the token issued after it answered {status}"
    );
    ensure!(server.pid() == pid, "the server process changed");

    report(&format!(
        "issue 5, PostgreSQL unreachable behind a forwarder (acquire timeout \
         {ACQUIRE_TIMEOUT_MS} ms): 503 with Retry-After for {}; recovered after {failed} \
         503s, {} ms after it was reachable again, same process; the token issued before \
         the outage answers 200",
        latencies.join(", "),
        recovered_in.as_millis()
    ));
    Ok(())
}

#[test]
fn split_url_keeps_everything_but_host_and_port() -> anyhow::Result<()> {
    let cases = [
        (
            "postgres://postgres@127.0.0.1:5432/tessera_test_ab",
            ("postgres://postgres@", "127.0.0.1:5432", "/tessera_test_ab"),
        ),
        (
            "postgresql://u:p%40ss@db.example:6543/x?sslmode=disable",
            (
                "postgresql://u:p%40ss@",
                "db.example:6543",
                "/x?sslmode=disable",
            ),
        ),
        (
            "postgres://localhost/x",
            ("postgres://", "localhost:5432", "/x"),
        ),
        (
            "postgres://u@[::1]:5433/x",
            ("postgres://u@", "[::1]:5433", "/x"),
        ),
        (
            "postgres://u@[::1]/x",
            ("postgres://u@", "[::1]:5432", "/x"),
        ),
    ];
    for (url, (prefix, target, path)) in cases {
        let split = split_url(url)?;
        ensure!(
            split == (prefix.to_owned(), target.to_owned(), path.to_owned()),
            "{url} split as {split:?}"
        );
    }
    Ok(())
}
