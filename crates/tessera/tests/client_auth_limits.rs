//! The real `tessera` binary under a flood of wrong client secrets (RELIABILITY P12):
//! many connections with rotating `X-Forwarded-For` guess one client's secret while that
//! client keeps getting tokens from another address. With the default flags at most the
//! limit of guesses (100 an hour) is ever checked, the rest are 429, every refusal is one
//! audit event and one count in `/metrics`, and the legitimate client is not disturbed.
//!
//! `TESSERA_RELIABILITY_LONG=1` sends the full 10,000 guesses of the figure; by default a
//! fifth of them, which shows the same.

#[allow(
    dead_code,
    reason = "this file starts its server itself, to read its log"
)]
mod common;

use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, ensure};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Child;

use common::PATIENCE;

/// The default limit of failed client authentications per client and address per hour.
const LIMIT: usize = 100;

/// Connections the guesses are spread over.
const CONNECTIONS: usize = 200;

/// A running `tessera serve` whose log lines (stderr) are collected.
struct Server {
    child: Child,
    base: String,
    log: tokio::task::JoinHandle<Vec<String>>,
}

impl Server {
    async fn start(database_url: &str, key_file: &str) -> anyhow::Result<Self> {
        let (mut child, base, _) = common::serve_with_stderr(
            common::tessera("info"),
            database_url,
            key_file,
            &["--log-format", "json"],
            Stdio::piped(),
        )
        .await?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let log = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut kept = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                kept.push(line);
            }
            kept
        });
        Ok(Self { child, base, log })
    }

    /// Stops the server and returns every log line it wrote.
    async fn stop(mut self) -> anyhow::Result<Vec<String>> {
        self.child.kill().await?;
        Ok(tokio::time::timeout(PATIENCE, self.log).await??)
    }
}

/// An HTTP client with at most one connection, from `local` when given.
fn one_connection(local: Option<IpAddr>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .pool_max_idle_per_host(1);
    if let Some(local) = local {
        builder = builder.local_address(local);
    }
    Ok(builder.build()?)
}

async fn token_status(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    secret: &str,
    forwarded_for: Option<&str>,
) -> anyhow::Result<(StatusCode, Option<String>)> {
    let mut request = http
        .post(format!("{base}/oauth20/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(value) = forwarded_for {
        request = request.header("X-Forwarded-For", value);
    }
    let response = request.send().await?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = response.bytes().await?;
    Ok((status, retry_after))
}

#[tokio::test]
async fn a_flood_of_wrong_secrets_admits_at_most_the_limit_and_spares_the_real_client()
-> anyhow::Result<()> {
    let long = std::env::var("TESSERA_RELIABILITY_LONG").is_ok_and(|v| v == "1");
    let wrong_secrets = if long { 10_000 } else { 2_000 };

    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let key_file = dir.path().join("tessera.key");
    let key_file = key_file.to_str().context("key file path")?;
    let (client_id, secret) =
        common::create_client(common::tessera("info"), &database_url, "storefront").await?;
    let server = Server::start(&database_url, key_file).await?;
    let base = server.base.clone();

    // The legitimate client, from another loopback address, asks for tokens throughout.
    let attacking = Arc::new(AtomicBool::new(true));
    let legitimate = {
        let (base, client_id, secret) = (base.clone(), client_id.clone(), secret.clone());
        let attacking = Arc::clone(&attacking);
        let http = one_connection(Some(IpAddr::from([127, 0, 0, 2])))?;
        tokio::spawn(async move {
            let (mut asked, mut issued) = (0usize, 0usize);
            // At least a few requests, however fast the attack ends.
            while attacking.load(Ordering::Relaxed) || asked < 20 {
                asked += 1;
                if let Ok((StatusCode::OK, _)) =
                    token_status(&http, &base, &client_id, &secret, None).await
                {
                    issued += 1;
                }
            }
            (asked, issued)
        })
    };

    // The attack: wrong secrets over many connections, each guess claiming another
    // address in X-Forwarded-For (no proxy is trusted, so the claim is ignored).
    let mut guessers = Vec::with_capacity(CONNECTIONS);
    for connection in 0..CONNECTIONS {
        let (base, client_id) = (base.clone(), client_id.clone());
        let http = one_connection(None)?;
        let count =
            wrong_secrets / CONNECTIONS + usize::from(connection < wrong_secrets % CONNECTIONS);
        guessers.push(tokio::spawn(async move {
            let mut answers = Vec::with_capacity(count);
            for i in 0..count {
                let forged = format!("203.0.113.{}", (connection + i) % 250);
                let guess = format!("tcs_guess_{connection}_{i}");
                answers.push(token_status(&http, &base, &client_id, &guess, Some(&forged)).await);
            }
            answers
        }));
    }
    let (mut admitted, mut refused) = (0usize, 0usize);
    for guesser in guessers {
        for answer in guesser.await? {
            match answer? {
                (StatusCode::UNAUTHORIZED, _) => admitted += 1,
                (StatusCode::TOO_MANY_REQUESTS, Some(retry_after)) => {
                    ensure!(
                        retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
                        "Retry-After {retry_after}"
                    );
                    refused += 1;
                }
                (status, retry_after) => {
                    anyhow::bail!("a guess answered {status} (Retry-After {retry_after:?})")
                }
            }
        }
    }
    attacking.store(false, Ordering::Relaxed);
    let (asked, issued) = legitimate.await?;
    let success = 100.0 * issued as f64 / asked as f64;
    println!(
        "figure P12: wrong_secrets={wrong_secrets} connections={CONNECTIONS} \
         failures_admitted={admitted} legitimate_success={success:.2}%"
    );
    println!("figure P12: legitimate_requests={asked} refused_guesses={refused}");
    ensure!(admitted + refused == wrong_secrets);
    ensure!(admitted <= LIMIT, "{admitted} failures admitted");
    ensure!(admitted == LIMIT, "only {admitted} failures admitted");
    ensure!(success >= 99.0, "legitimate success {success}% of {asked}");

    // Every refusal is counted in /metrics and told once in the audit stream, with the
    // client id and address and never a secret.
    let http = one_connection(None)?;
    let page = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let counted = page
        .lines()
        .find(|line| {
            line.starts_with("tessera_limit_trips_total{")
                && line.contains("limit=\"client_auth_per_client_address\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .context("no tessera_limit_trips_total for the client-auth limit")?;
    ensure!(
        counted as usize == refused,
        "counted {counted}, refused {refused}"
    );
    let log = server.stop().await?;
    let trips: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("\"limit_tripped\""))
        .collect();
    ensure!(
        trips.len() == refused,
        "{} audit events for {refused}",
        trips.len()
    );
    for trip in &trips {
        let event: serde_json::Value = serde_json::from_str(trip)?;
        // One JSON object per line, the event's fields flattened into it.
        let fields = &event;
        ensure!(event["target"] == "tessera::audit", "{trip}");
        ensure!(
            fields["limit"] == "client_auth_per_client_address",
            "{trip}"
        );
        ensure!(fields["client_id"] == client_id.as_str(), "{trip}");
        ensure!(fields["peer"] == "127.0.0.1", "{trip}");
    }
    ensure!(
        !log.iter()
            .any(|line| line.contains("tcs_guess_") || line.contains(&secret)),
        "a secret reached the log"
    );
    Ok(())
}
