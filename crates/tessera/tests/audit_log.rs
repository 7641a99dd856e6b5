//! The audit event stream of the real `tessera` binary with JSON logs: every grant that
//! issues tokens, a refresh, a replayed refresh token, each scope of revocation (one
//! token, logout, a refresh token, an operator's session, every session of a shopper and
//! of a client) and a failed login each give exactly one event on the target
//! `tessera::audit`, with the ids of what they concern, and no token, secret, password or
//! username reaches any log line.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Bound on waiting for the binary to start, answer or stop; generous because CI shares
/// two cores with compilers. Nothing waits for time to pass: these are only ceilings.
const PATIENCE: Duration = Duration::from_secs(60);

const ADMIN_TOKEN: &str = "audit-test-admin-token-0123456789";
const USERNAME: &str = "ada.lovelace@example.test";
const PASSWORD: &str = "correct horse battery staple";
const WRONG_PASSWORD: &str = "incorrect horse battery staple";
const REFERENCE: &str = "c-1001";

/// The binary, logging at `info`, with no stray `TESSERA_*` setting from the environment.
fn tessera() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TESSERA_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info").kill_on_drop(true);
    command
}

/// Runs an admin command with `stdin` to its end and returns its stdout (JSON).
async fn admin_command(database_url: &str, args: &[&str], stdin: &str) -> anyhow::Result<Value> {
    let mut child = tessera()
        .args(args)
        .args(["--database-url", database_url, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut pipe = child.stdin.take().context("no stdin pipe")?;
    pipe.write_all(stdin.as_bytes()).await?;
    drop(pipe);
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .context("the command did not finish")??;
    ensure!(
        output.status.success(),
        "tessera {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// A running `tessera serve --log-format json` with the admin API, killed when dropped.
struct Server {
    child: Child,
    base: String,
    admin: String,
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    logs: Arc<Mutex<Vec<String>>>,
    stderr_drained: JoinHandle<()>,
}

impl Server {
    async fn start(database_url: &str, key_file: &str) -> anyhow::Result<Self> {
        let client = admin_command(
            database_url,
            &[
                "client",
                "create",
                "--name",
                "shop",
                "--grant",
                "anonymous,client_credentials,refresh_token,password",
            ],
            "",
        )
        .await?;
        let mut child = tessera()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--no-bootstrap-client", "--admin-listen", "127.0.0.1:0"])
            .args(["--database-url", database_url, "--token-key-file", key_file])
            .env("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start tessera serve")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let stderr_drained = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut stdout = BufReader::new(stdout).lines();
        let first = next_line(&mut stdout).await?;
        let base = first
            .strip_prefix("tessera listening on ")
            .with_context(|| format!("unexpected first line {first:?}"))?
            .to_owned();
        let second = next_line(&mut stdout).await?;
        let admin = second
            .strip_prefix("tessera admin listening on ")
            .with_context(|| format!("unexpected second line {second:?}"))?
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Ok(Self {
            child,
            base,
            admin,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(PATIENCE)
                .build()?,
            client_id: client["client_id"]
                .as_str()
                .context("client_id")?
                .to_owned(),
            client_secret: client["client_secret"]
                .as_str()
                .context("client_secret")?
                .to_owned(),
            logs,
            stderr_drained,
        })
    }

    /// `POST /oauth20/token` with the client's credentials and `form`: (status, body).
    async fn token(&self, form: &[(&str, &str)]) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}/oauth20/token", self.base))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await?;
        Ok((response.status(), response.json().await?))
    }

    /// A successful grant: (access token, refresh token if any).
    async fn issue(&self, form: &[(&str, &str)]) -> anyhow::Result<(String, Option<String>)> {
        let (status, body) = self.token(form).await?;
        ensure!(
            status == StatusCode::OK,
            "{form:?} answered {status}: {body}"
        );
        Ok((
            body["access_token"]
                .as_str()
                .context("access_token")?
                .to_owned(),
            body["refresh_token"].as_str().map(str::to_owned),
        ))
    }

    /// The session details of a live access token.
    async fn session(&self, access_token: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/oauth20/access-tokens", self.base))
            .bearer_auth(access_token)
            .send()
            .await?;
        ensure!(response.status() == StatusCode::OK, "{}", response.status());
        Ok(response.json().await?)
    }

    /// `DELETE /oauth20/access-tokens` with `access_token`.
    async fn log_out(&self, access_token: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .delete(format!("{}/oauth20/access-tokens", self.base))
            .bearer_auth(access_token)
            .send()
            .await?;
        ensure!(response.status() == StatusCode::OK, "{}", response.status());
        Ok(())
    }

    /// An admin API request that must succeed.
    async fn admin(&self, method: reqwest::Method, path: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "{path} answered {}",
            response.status()
        );
        Ok(())
    }

    /// Stops the server with SIGTERM and returns every line it wrote to stderr.
    async fn stop(mut self) -> anyhow::Result<Vec<String>> {
        let pid = self.child.id().context("the server has exited")?;
        let kill = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        ensure!(kill.success(), "kill -TERM failed");
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .context("no exit after SIGTERM")??;
        tokio::time::timeout(PATIENCE, &mut self.stderr_drained)
            .await
            .context("stderr was not closed after the exit")??;
        Ok(std::mem::take(
            &mut *self.logs.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> anyhow::Result<String> {
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .context("the server printed nothing")??
        .context("the server exited")
}

fn session_id(details: &Value) -> anyhow::Result<String> {
    Ok(details["sessionId"]
        .as_str()
        .context("no sessionId")?
        .to_owned())
}

/// Finds the one event named `name` whose fields include every `(field, value)` of
/// `expected`, checking that exactly one matches.
fn the_event<'a>(
    events: &'a [Value],
    name: &str,
    expected: &[(&str, &str)],
) -> anyhow::Result<&'a Value> {
    let matching: Vec<&Value> = events
        .iter()
        .filter(|event| event["event"] == name)
        .filter(|event| {
            expected
                .iter()
                .all(|(field, value)| event[*field] == *value)
        })
        .collect();
    ensure!(
        matching.len() == 1,
        "{} {name} events with {expected:?}: {matching:?}",
        matching.len()
    );
    Ok(matching[0])
}

#[tokio::test]
async fn every_issue_refresh_reuse_revocation_and_failed_login_is_one_audit_event()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let key_file = dir.path().join("tessera.key");
    let key_file = key_file.to_str().context("key file path")?;
    let shopper = admin_command(
        &database_url,
        &[
            "shopper",
            "create",
            "--external-reference-id",
            REFERENCE,
            "--username",
            USERNAME,
            "--password-stdin",
        ],
        PASSWORD,
    )
    .await?;
    let shopper_id = shopper["user_id"].as_str().context("user_id")?.to_owned();
    let server = Server::start(&database_url, key_file).await?;
    let client_id = server.client_id.clone();
    let mut issued_tokens = Vec::new();

    // One grant of each kind.
    let (anonymous, anonymous_refresh) = server.issue(&[("grant_type", "password")]).await?;
    let anonymous_details = server.session(&anonymous).await?;
    let anonymous_session = session_id(&anonymous_details)?;
    let visitor_id = anonymous_details["userId"]
        .as_str()
        .context("no userId")?
        .to_owned();
    let (client_token, _) = server
        .issue(&[("grant_type", "client_credentials")])
        .await?;
    let client_session = session_id(&server.session(&client_token).await?)?;
    let (partner, partner_refresh) = server
        .issue(&[
            ("grant_type", "client_credentials"),
            ("dr_external_reference_id", REFERENCE),
        ])
        .await?;
    let partner_session = session_id(&server.session(&partner).await?)?;
    let (login, login_refresh) = server
        .issue(&[
            ("grant_type", "password"),
            ("username", USERNAME),
            ("password", PASSWORD),
        ])
        .await?;
    let login_session = session_id(&server.session(&login).await?)?;

    // A failed login.
    let (status, _) = server
        .token(&[
            ("grant_type", "password"),
            ("username", USERNAME),
            ("password", WRONG_PASSWORD),
        ])
        .await?;
    ensure!(status == StatusCode::BAD_REQUEST, "{status}");

    // A refresh, then a replay of the consumed refresh token.
    let login_refresh = login_refresh.context("a login has a refresh token")?;
    let (refreshed, refreshed_refresh) = server
        .issue(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &login_refresh),
        ])
        .await?;
    let (status, _) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &login_refresh),
        ])
        .await?;
    ensure!(status == StatusCode::BAD_REQUEST, "{status}");

    // One access token of a session that goes on, then the session's newest (logout).
    let anonymous_refresh = anonymous_refresh.context("an anonymous token has a refresh token")?;
    let (anonymous_newest, anonymous_newest_refresh) = server
        .issue(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &anonymous_refresh),
        ])
        .await?;
    server.log_out(&anonymous).await?;
    server.log_out(&anonymous_newest).await?;

    // RFC 7009 on a refresh token: its session ends.
    let partner_refresh = partner_refresh.context("a partner token has a refresh token")?;
    let revoked = server
        .http
        .post(format!("{}/oauth20/revoke", server.base))
        .basic_auth(&server.client_id, Some(&server.client_secret))
        .form(&[("token", partner_refresh.as_str())])
        .send()
        .await?;
    ensure!(revoked.status() == StatusCode::OK, "{}", revoked.status());

    // The operator's three scopes.
    server
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/v1/sessions/{client_session}"),
        )
        .await?;
    server
        .admin(
            reqwest::Method::POST,
            &format!("/admin/v1/shoppers/{shopper_id}/sessions/revoke"),
        )
        .await?;
    server
        .admin(
            reqwest::Method::POST,
            &format!("/admin/v1/clients/{client_id}/sessions/revoke"),
        )
        .await?;

    issued_tokens.extend([
        anonymous,
        anonymous_refresh,
        client_token,
        partner,
        partner_refresh,
        login,
        login_refresh,
        refreshed,
        anonymous_newest,
    ]);
    issued_tokens.extend(refreshed_refresh);
    issued_tokens.extend(anonymous_newest_refresh);
    let client_secret = server.client_secret.clone();
    let lines = server.stop().await?;

    // Nothing secret in any line, audit or not.
    for line in &lines {
        for secret in issued_tokens.iter().map(String::as_str).chain([
            client_secret.as_str(),
            PASSWORD,
            WRONG_PASSWORD,
            ADMIN_TOKEN,
            USERNAME,
        ]) {
            ensure!(!line.contains(secret), "a secret in the log: {line}");
        }
    }

    let mut events = Vec::new();
    for line in &lines {
        let json: Value =
            serde_json::from_str(line).with_context(|| format!("not a JSON log line: {line}"))?;
        if json["target"] == "tessera::audit" {
            events.push(json);
        }
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for event in &events {
        let name = event["event"]
            .as_str()
            .context("an audit event without a name")?;
        *counts.entry(name.to_owned()).or_default() += 1;
    }
    let expected_counts = HashMap::from(
        [
            ("token_issued", 4),
            ("token_refreshed", 2),
            ("refresh_reuse_detected", 1),
            ("token_revoked", 1),
            ("session_revoked", 3),
            ("sessions_revoked", 2),
            ("login_failed", 1),
        ]
        .map(|(name, count)| (name.to_owned(), count)),
    );
    ensure!(counts == expected_counts, "audit events: {counts:?}");

    let client = client_id.as_str();
    let peer = "127.0.0.1";
    the_event(
        &events,
        "token_issued",
        &[
            ("grant", "anonymous"),
            ("grant_type", "password"),
            ("client_id", client),
            ("session_id", &anonymous_session),
            ("shopper_id", &visitor_id),
            ("session", "new"),
            ("peer", peer),
        ],
    )?;
    let client_token_event = the_event(
        &events,
        "token_issued",
        &[
            ("grant", "client_token"),
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("session_id", &client_session),
            ("peer", peer),
        ],
    )?;
    ensure!(
        client_token_event.get("shopper_id").is_none()
            && client_token_event["with_refresh_token"] == false,
        "{client_token_event}"
    );
    for (grant, session) in [
        ("partner_shopper", &partner_session),
        ("shopper_login", &login_session),
    ] {
        the_event(
            &events,
            "token_issued",
            &[
                ("grant", grant),
                ("client_id", client),
                ("session_id", session),
                ("shopper_id", &shopper_id),
                ("peer", peer),
            ],
        )?;
    }
    let failed = the_event(
        &events,
        "login_failed",
        &[
            ("client_id", client),
            ("shopper_id", &shopper_id),
            ("peer", peer),
        ],
    )?;
    ensure!(failed["level"] == "WARN", "{failed}");
    for session in [&login_session, &anonymous_session] {
        the_event(
            &events,
            "token_refreshed",
            &[
                ("client_id", client),
                ("session_id", session),
                ("peer", peer),
            ],
        )?;
    }
    let reuse = the_event(
        &events,
        "refresh_reuse_detected",
        &[
            ("client_id", client),
            ("session_id", &login_session),
            ("shopper_id", &shopper_id),
            ("peer", peer),
        ],
    )?;
    ensure!(reuse["session_ended"] == true, "{reuse}");
    the_event(
        &events,
        "token_revoked",
        &[
            ("scope", "token"),
            ("client_id", client),
            ("session_id", &anonymous_session),
        ],
    )?;
    for (scope, session) in [
        ("logout", &anonymous_session),
        ("refresh_token", &partner_session),
        ("admin", &client_session),
    ] {
        the_event(
            &events,
            "session_revoked",
            &[
                ("scope", scope),
                ("client_id", client),
                ("session_id", session),
            ],
        )?;
    }
    the_event(
        &events,
        "sessions_revoked",
        &[("scope", "shopper"), ("shopper_id", &shopper_id)],
    )?;
    the_event(
        &events,
        "sessions_revoked",
        &[("scope", "client"), ("client_id", client)],
    )?;
    Ok(())
}

#[tokio::test]
async fn joining_and_upgrading_a_session_say_so_in_the_issue_event() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let key_file = dir.path().join("tessera.key");
    let key_file = key_file.to_str().context("key file path")?;
    let shopper = admin_command(
        &database_url,
        &["shopper", "create", "--external-reference-id", REFERENCE],
        "",
    )
    .await?;
    let shopper_id = shopper["user_id"].as_str().context("user_id")?.to_owned();
    let server = Server::start(&database_url, key_file).await?;

    let minted = server
        .http
        .get(format!("{}/oauth20/session-token", server.base))
        .basic_auth(&server.client_id, Some(&server.client_secret))
        .send()
        .await?;
    ensure!(minted.status() == StatusCode::OK, "{}", minted.status());
    let minted: Value = minted.json().await?;
    let session_token = minted["session_token"]
        .as_str()
        .context("session_token")?
        .to_owned();
    let with_session_token = [
        ("grant_type", "password"),
        ("dr_session_token", session_token.as_str()),
    ];
    let (first, _) = server.issue(&with_session_token).await?;
    let (second, _) = server.issue(&with_session_token).await?;
    let anonymous_session = session_id(&server.session(&first).await?)?;
    ensure!(session_id(&server.session(&second).await?)? == anonymous_session);
    let (upgraded, _) = server
        .issue(&[
            ("grant_type", "client_credentials"),
            ("dr_external_reference_id", REFERENCE),
            ("dr_limited_token", &second),
        ])
        .await?;
    let shopper_session = session_id(&server.session(&upgraded).await?)?;
    let client = server.client_id.clone();
    let client_secret = server.client_secret.clone();
    let lines = server.stop().await?;

    for line in &lines {
        for secret in [&first, &second, &upgraded, &session_token, &client_secret] {
            ensure!(
                !line.contains(secret.as_str()),
                "a secret in the log: {line}"
            );
        }
    }
    let mut events = Vec::new();
    for line in &lines {
        let json: Value =
            serde_json::from_str(line).with_context(|| format!("not a JSON log line: {line}"))?;
        if json["target"] == "tessera::audit" {
            events.push(json);
        }
    }
    ensure!(
        events.len() == 3 && events.iter().all(|e| e["event"] == "token_issued"),
        "{events:?}"
    );
    for origin in ["new", "joined"] {
        let event = the_event(
            &events,
            "token_issued",
            &[
                ("grant", "anonymous"),
                ("session", origin),
                ("client_id", &client),
                ("session_id", &anonymous_session),
            ],
        )?;
        ensure!(event.get("upgraded_session_id").is_none(), "{event}");
    }
    the_event(
        &events,
        "token_issued",
        &[
            ("grant", "partner_shopper"),
            ("session", "upgraded"),
            ("client_id", &client),
            ("session_id", &shopper_session),
            ("shopper_id", &shopper_id),
            ("upgraded_session_id", &anonymous_session),
        ],
    )?;
    Ok(())
}
