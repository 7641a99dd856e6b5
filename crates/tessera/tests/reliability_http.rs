//! The HTTP half of docs/RELIABILITY.md against the real binary:
//!
//! - P4: every endpoint family driven with valid and invalid input while the server logs
//!   at TRACE for every target (text and JSON), then its whole stdout and stderr searched
//!   for every token, random part, client secret, password and admin token it saw; error
//!   bodies and headers are searched too.
//! - P13: interleaved samples of an unknown client against a wrong secret, and of an
//!   unknown username against a wrong password: identical status and body are asserted;
//!   the timings are only measured and printed (speed is for `scripts/bench`, never an
//!   assertion).
//!
//! Short by default, so it fits `cargo test`; `TESSERA_RELIABILITY_LONG=1` takes more
//! samples.

mod common;

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

use common::{PATIENCE, run};

/// At least this many characters, so that no short, common string counts as a hit.
const ADMIN_TOKEN: &str = "reliability-admin-token-5c1f0e9a7d";
/// Shopper password with the characters form-encoding changes.
const PASSWORD: &str = "s3cret&pass=word+plus %25";
const WRONG_PASSWORD: &str = "wr0ng&guess=word+plus";
/// A password for a shopper created by the API rather than the CLI.
const API_PASSWORD: &str = "api-created pässword 42";

/// Whether the longer sample counts were asked for.
fn long_run() -> bool {
    std::env::var("TESSERA_RELIABILITY_LONG").is_ok_and(|value| value == "1")
}

/// The binary logging at `log`, its environment cleaned of `TESSERA_*`.
fn tessera(log: &str) -> tokio::process::Command {
    common::tessera(log)
}

/// One test's data folder and its SQLite store.
struct DataDir {
    _dir: TempDir,
    database_url: String,
    key_file: String,
}

impl DataDir {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let database_url = format!("sqlite://{}", dir.path().join("t.db").display());
        let key_file = dir.path().join("t.key").display().to_string();
        Ok(Self {
            _dir: dir,
            database_url,
            key_file,
        })
    }

    /// `client create --name NAME --json EXTRA...`: `(client_id, client_secret)`.
    async fn create_client(&self, name: &str, extra: &[&str]) -> anyhow::Result<(String, String)> {
        let (ok, stdout, stderr) = run(tessera("warn")
            .args(["client", "create", "--name", name, "--json"])
            .args(extra)
            .args(["--database-url", &self.database_url]))
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

    /// `tessera serve` with every log line captured: the process, its base URL, the admin
    /// listener's base URL and the captured output (stdout and stderr, in arrival order).
    async fn serve_logged(&self, format: &str) -> anyhow::Result<LoggedServer> {
        let mut child = tessera("trace")
            .env("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN)
            .args(["serve", "--listen", "127.0.0.1:0", "--no-bootstrap-client"])
            .args(["--admin-listen", "127.0.0.1:0", "--log-format", format])
            .args(["--database-url", &self.database_url])
            .args(["--token-key-file", &self.key_file])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start tessera serve")?;
        let captured = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, mut lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let sink = Arc::clone(&captured);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let mut bytes = sink.lock().unwrap_or_else(PoisonError::into_inner);
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                drop(bytes);
                let _ = lines_tx.send(line);
            }
        });
        let mut stderr = child.stderr.take().context("no stderr pipe")?;
        let sink = Arc::clone(&captured);
        let stderr_drained = tokio::spawn(async move {
            let mut buffer = [0u8; 8192];
            while let Ok(read @ 1..) = stderr.read(&mut buffer).await {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buffer[..read]);
            }
        });
        let mut next_line = async || {
            tokio::time::timeout(PATIENCE, lines.recv())
                .await
                .context("the server printed no further line")?
                .context("the server closed stdout")
        };
        let first = next_line().await?;
        let base = first
            .strip_prefix("tessera listening on ")
            .with_context(|| format!("unexpected first line {first:?}"))?
            .to_owned();
        let second = next_line().await?;
        let admin = second
            .strip_prefix("tessera admin listening on ")
            .with_context(|| format!("unexpected second line {second:?}"))?
            .to_owned();
        Ok(LoggedServer {
            child,
            base,
            admin,
            captured,
            stderr_drained,
        })
    }
}

/// A running `tessera serve` whose output is kept; killed when dropped.
struct LoggedServer {
    child: Child,
    base: String,
    admin: String,
    captured: Arc<Mutex<Vec<u8>>>,
    stderr_drained: tokio::task::JoinHandle<()>,
}

impl LoggedServer {
    /// SIGTERM, then everything the process wrote.
    async fn stop(mut self) -> anyhow::Result<(ExitStatus, Vec<u8>)> {
        let pid = self.child.id().context("no pid")?;
        let kill = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        ensure!(kill.success(), "kill -TERM failed");
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .context("no exit after SIGTERM")??;
        tokio::time::timeout(PATIENCE, &mut self.stderr_drained)
            .await
            .context("stderr was not closed after the exit")??;
        let captured =
            std::mem::take(&mut *self.captured.lock().unwrap_or_else(PoisonError::into_inner));
        Ok((status, captured))
    }
}

/// One answer as seen by the client.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("not JSON ({}): {}", self.status, self.body))
    }

    fn field(&self, name: &str) -> anyhow::Result<String> {
        Ok(self.json()?[name]
            .as_str()
            .with_context(|| format!("no {name} in {}", self.body))?
            .to_owned())
    }

    fn expect(self, status: StatusCode, what: &str) -> anyhow::Result<Self> {
        ensure!(
            self.status == status,
            "{what}: expected {status}, got {}: {}",
            self.status,
            self.body
        );
        Ok(self)
    }
}

/// Every secret the test handled, and every answer it got.
#[derive(Default)]
struct Ledger {
    /// Strings that must appear nowhere: tokens, their payloads and random parts, secrets,
    /// passwords (plain and form-encoded), Basic credentials, session tokens, admin token.
    needles: Vec<String>,
    tokens: usize,
    secrets: usize,
    answers: Vec<(String, Answer)>,
}

impl Ledger {
    /// A token, its payload and its random part (characters 8 to 50 of the payload encode
    /// only the 32 random bytes, after the 6 time bytes; see `tessera-core/src/token.rs`).
    fn token(&mut self, token: &str) -> anyhow::Result<()> {
        let rest = token
            .strip_prefix("tsa_")
            .or_else(|| token.strip_prefix("tsr_"))
            .with_context(|| format!("not a Tessera token: {token}"))?;
        let (_kid, payload) = rest.split_once('_').context("no key id")?;
        ensure!(payload.len() == 72, "payload of {token}");
        self.needles.push(token.to_owned());
        self.needles.push(payload.to_owned());
        self.needles.push(payload[8..50].to_owned());
        self.tokens += 1;
        Ok(())
    }

    /// A secret in every form it travels in: as is, form-encoded and (for a client
    /// secret) inside the Basic header of its client.
    fn secret(&mut self, secret: &str) {
        self.needles.push(secret.to_owned());
        let encoded = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
        if encoded != secret {
            self.needles.push(encoded);
        }
        self.secrets += 1;
    }

    fn client(&mut self, id: &str, secret: &str) {
        self.secret(secret);
        self.needles.push(basic_value(id, secret));
        self.needles
            .push(STANDARD.encode(format!("{id}:{secret}")).to_owned());
    }

    /// Both tokens of a token answer, when there.
    fn issued(&mut self, answer: &Answer) -> anyhow::Result<(String, Option<String>)> {
        let json = answer.json()?;
        let access = json["access_token"]
            .as_str()
            .with_context(|| format!("no access_token: {}", answer.body))?
            .to_owned();
        self.token(&access)?;
        let refresh = json["refresh_token"].as_str().map(str::to_owned);
        if let Some(refresh) = &refresh {
            self.token(refresh)?;
        }
        Ok((access, refresh))
    }

    /// Where a needle occurs in `haystack`, if anywhere.
    fn find_in(&self, haystack: &[u8]) -> Vec<&str> {
        self.needles
            .iter()
            .filter(|needle| {
                haystack
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            })
            .map(String::as_str)
            .collect()
    }
}

fn basic_value(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The HTTP client of the P4 drive, recording every answer.
struct Driver {
    http: reqwest::Client,
    base: String,
    admin: String,
    ledger: Ledger,
}

impl Driver {
    async fn send(&mut self, what: &str, request: RequestBuilder) -> anyhow::Result<&Answer> {
        let response = request
            .timeout(PATIENCE)
            .send()
            .await
            .with_context(|| format!("{what}: no answer"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await?;
        ensure!(
            !status.is_server_error(),
            "{what} answered {status}: {body}"
        );
        self.ledger.answers.push((
            what.to_owned(),
            Answer {
                status,
                headers,
                body,
            },
        ));
        let (_, answer) = self.ledger.answers.last().context("just pushed")?;
        Ok(answer)
    }

    /// Like `send`, returning a copy of the answer that must have `status`.
    async fn expect(
        &mut self,
        what: &str,
        status: StatusCode,
        request: RequestBuilder,
    ) -> anyhow::Result<Answer> {
        let answer = self.send(what, request).await?;
        let copy = Answer {
            status: answer.status,
            headers: answer.headers.clone(),
            body: answer.body.clone(),
        };
        copy.expect(status, what)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    fn admin_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.admin))
    }

    fn token(&self, authorization: &str, form: &[(&str, &str)]) -> RequestBuilder {
        self.request(Method::POST, "/oauth20/token")
            .header(AUTHORIZATION, authorization)
            .form(form)
    }

    /// A token grant that must succeed; its tokens are remembered.
    async fn grant(
        &mut self,
        what: &str,
        authorization: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<(String, Option<String>)> {
        let request = self.token(authorization, form);
        let answer = self.expect(what, StatusCode::OK, request).await?;
        self.ledger.issued(&answer)
    }
}

/// Drives every endpoint family with valid and invalid input; returns the ledger.
#[allow(clippy::too_many_lines)] // one linear script of requests reads best in one place
async fn drive_every_endpoint(
    server: &LoggedServer,
    storefront: (&str, &str),
    other: (&str, &str),
) -> anyhow::Result<Ledger> {
    let ok = StatusCode::OK;
    let bad = StatusCode::BAD_REQUEST;
    let unauthorized = StatusCode::UNAUTHORIZED;
    let mut d = Driver {
        http: reqwest::Client::builder().no_proxy().build()?,
        base: server.base.clone(),
        admin: server.admin.clone(),
        ledger: Ledger::default(),
    };
    let (id, secret) = storefront;
    let (other_id, other_secret) = other;
    d.ledger.client(id, secret);
    d.ledger.client(other_id, other_secret);
    d.ledger.secret(PASSWORD);
    d.ledger.secret(WRONG_PASSWORD);
    d.ledger.secret(API_PASSWORD);
    d.ledger.secret(ADMIN_TOKEN);
    let basic = basic_value(id, secret);
    let other_basic = basic_value(other_id, other_secret);
    let wrong_secret = format!("{secret}x");
    d.ledger.secret(&wrong_secret);
    let wrong_basic = basic_value(id, &wrong_secret);

    // Shoppers: one registered over the API with a password, one by external id.
    let created = d
        .expect(
            "register a shopper",
            StatusCode::CREATED,
            d.request(Method::POST, "/v1/shoppers")
                .header(AUTHORIZATION, &basic)
                .json(
                    &json!({"username": "api.shopper@example.com", "password": API_PASSWORD,
                              "externalReferenceId": "ext-api-1", "locale": "en_US",
                              "currency": "USD"}),
                ),
        )
        .await?;
    let api_user = created.field("id")?;
    d.expect(
        "register a taken username",
        StatusCode::CONFLICT,
        d.request(Method::POST, "/v1/shoppers")
            .header(AUTHORIZATION, &basic)
            .json(&json!({"username": "api.shopper@example.com", "password": API_PASSWORD})),
    )
    .await?;
    d.expect(
        "register with a wrong secret",
        unauthorized,
        d.request(Method::POST, "/v1/shoppers")
            .header(AUTHORIZATION, &wrong_basic)
            .json(&json!({"username": "x@example.com", "password": API_PASSWORD})),
    )
    .await?;

    // Every grant, right and wrong.
    let (anonymous, anonymous_refresh) = d
        .grant("anonymous", &basic, &[("grant_type", "password")])
        .await?;
    let anonymous_refresh = anonymous_refresh.context("anonymous refresh token")?;
    d.grant(
        "legacy anonymous",
        &basic,
        &[
            ("grant_type", "password"),
            ("username", "anonymous"),
            ("password", "anonymous"),
        ],
    )
    .await?;
    let (client_token, _) = d
        .grant(
            "client token",
            &basic,
            &[("grant_type", "client_credentials")],
        )
        .await?;
    let (partner, partner_refresh) = d
        .grant(
            "partner shopper",
            &basic,
            &[
                ("grant_type", "client_credentials"),
                ("dr_external_reference_id", "ext-cli-1"),
            ],
        )
        .await?;
    let (shopper, shopper_refresh) = d
        .grant(
            "password login",
            &basic,
            &[
                ("grant_type", "password"),
                ("username", "cli.shopper@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await?;
    d.grant(
        "password login of the API shopper",
        &basic,
        &[
            ("grant_type", "password"),
            ("username", "api.shopper@example.com"),
            ("password", API_PASSWORD),
        ],
    )
    .await?;
    let request = d.token(
        &basic,
        &[
            ("grant_type", "password"),
            ("username", "cli.shopper@example.com"),
            ("password", WRONG_PASSWORD),
        ],
    );
    d.expect("wrong password", bad, request).await?;
    let request = d.token(
        &basic,
        &[
            ("grant_type", "password"),
            ("username", "nobody@example.com"),
            ("password", PASSWORD),
        ],
    );
    d.expect("unknown username", bad, request).await?;
    let request = d.token(
        &other_basic,
        &[
            ("grant_type", "password"),
            ("username", "cli.shopper@example.com"),
            ("password", PASSWORD),
        ],
    );
    d.expect("a client without the password grant", bad, request)
        .await?;

    // Upgrades: a limited token as Bearer, and as dr_limited_token.
    let (limited, _) = d
        .grant("limited for bearer", &basic, &[("grant_type", "password")])
        .await?;
    let request = d.token(
        &format!("Bearer {limited}"),
        &[
            ("grant_type", "password"),
            ("username", "cli.shopper@example.com"),
            ("password", PASSWORD),
        ],
    );
    let answer = d.expect("upgrade by bearer", ok, request).await?;
    d.ledger.issued(&answer)?;
    let (limited, _) = d
        .grant(
            "limited for the form",
            &basic,
            &[("grant_type", "password")],
        )
        .await?;
    d.grant(
        "upgrade by dr_limited_token",
        &basic,
        &[
            ("grant_type", "password"),
            ("username", "cli.shopper@example.com"),
            ("password", PASSWORD),
            ("dr_limited_token", &limited),
        ],
    )
    .await?;
    let request = d.token(
        &basic,
        &[
            ("grant_type", "password"),
            ("username", "cli.shopper@example.com"),
            ("password", PASSWORD),
            ("dr_limited_token", &limited),
        ],
    );
    d.expect("an upgraded limited token again", bad, request)
        .await?;
    let request = d.token(
        &format!("Bearer {client_token}"),
        &[("grant_type", "client_credentials")],
    );
    d.expect("a bearer on another grant", unauthorized, request)
        .await?;

    // Session tokens.
    let minted = d
        .expect(
            "mint a session token",
            ok,
            d.request(Method::GET, "/oauth20/session-token")
                .header(AUTHORIZATION, &basic),
        )
        .await?;
    let session_token = minted.field("session_token")?;
    d.ledger.secret(&session_token);
    d.grant(
        "grant joining a session token",
        &basic,
        &[
            ("grant_type", "password"),
            ("dr_session_token", &session_token),
        ],
    )
    .await?;
    let request = d.token(
        &other_basic,
        &[
            ("grant_type", "password"),
            ("dr_session_token", &session_token),
        ],
    );
    d.expect("another client's session token", bad, request)
        .await?;
    d.expect(
        "a session token with a wrong secret",
        unauthorized,
        d.request(Method::GET, "/oauth20/session-token")
            .header(AUTHORIZATION, &wrong_basic),
    )
    .await?;

    // Refresh: rotate, replay (ends the session), another client's, an access token.
    let (rotated, rotated_refresh) = d
        .grant(
            "refresh",
            &basic,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &anonymous_refresh),
            ],
        )
        .await?;
    let rotated_refresh = rotated_refresh.context("rotated refresh token")?;
    let partner_refresh = partner_refresh.context("partner refresh token")?;
    let request = d.token(
        &other_basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &partner_refresh),
        ],
    );
    d.expect("another client's refresh token", bad, request)
        .await?;
    let request = d.token(
        &basic,
        &[("grant_type", "refresh_token"), ("refresh_token", &partner)],
    );
    d.expect("an access token as a refresh token", bad, request)
        .await?;
    let request = d.token(
        &basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &anonymous_refresh),
        ],
    );
    d.expect("replay of a consumed refresh token", bad, request)
        .await?;
    let request = d.token(
        &basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rotated_refresh),
        ],
    );
    d.expect("the successor after the replay", bad, request)
        .await?;
    let tampered = format!("{}A", &shopper_refresh.clone().unwrap_or_default());
    let request = d.token(
        &basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tampered),
        ],
    );
    d.expect("an extended refresh token", bad, request).await?;

    // Secrets in the query string and other misplaced credentials at the token endpoint.
    for (what, query) in [
        (
            "client_secret in the query",
            format!("client_secret={secret}"),
        ),
        ("password in the query", format!("password={PASSWORD}")),
        (
            "refresh_token in the query",
            format!("refresh_token={partner_refresh}"),
        ),
        (
            "dr_limited_token in the query",
            format!("dr_limited_token={anonymous}"),
        ),
    ] {
        let request = d
            .request(Method::POST, &format!("/oauth20/token?{query}"))
            .header(AUTHORIZATION, &basic)
            .form(&[("grant_type", "password")]);
        d.expect(what, bad, request).await?;
    }
    let request = d.request(Method::POST, "/oauth20/token").form(&[
        ("grant_type", "password"),
        ("client_id", id),
        ("client_secret", secret),
    ]);
    let answer = d.expect("client_secret_post", ok, request).await?;
    d.ledger.issued(&answer)?;
    let request = d.request(Method::POST, "/oauth20/token").form(&[
        ("grant_type", "password"),
        ("client_id", id),
        ("client_secret", &wrong_secret),
    ]);
    d.expect("client_secret_post, wrong secret", unauthorized, request)
        .await?;
    let request = d
        .request(Method::POST, "/oauth20/token")
        .header(AUTHORIZATION, &basic)
        .form(&[("grant_type", "password"), ("client_secret", secret)]);
    d.expect("Basic and a body secret", bad, request).await?;
    let request = d
        .request(Method::POST, "/oauth20/token")
        .header(AUTHORIZATION, &basic)
        .header(CONTENT_TYPE, "application/json")
        .body(
            json!({"grant_type": "password", "username": "cli.shopper@example.com",
                   "password": PASSWORD, "client_secret": secret})
            .to_string(),
        );
    d.expect("a JSON body holding secrets", bad, request)
        .await?;
    let request = d
        .request(Method::POST, "/oauth20/token")
        .header(AUTHORIZATION, &basic)
        .header(AUTHORIZATION, &other_basic)
        .form(&[("grant_type", "password")]);
    d.expect("two Authorization headers", bad, request).await?;
    let request = d.request(
        Method::GET,
        &format!("/oauth20/token?client_secret={secret}"),
    );
    d.send("GET on the token endpoint", request).await?;

    // Bad Basic headers.
    let no_colon = format!("Basic {}", STANDARD.encode(format!("{id}{secret}")));
    d.ledger.needles.push(no_colon.clone());
    let unknown_id = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{secret}", "0".repeat(32)))
    );
    d.ledger.needles.push(unknown_id.clone());
    for (what, authorization) in [
        ("Basic, not base64", format!("Basic {secret}!!")),
        ("Basic without a colon", no_colon),
        ("Basic of an unknown client", unknown_id),
        ("Basic with a wrong secret", wrong_basic.clone()),
        ("Basic, empty", "Basic ".to_owned()),
        (
            "Basic in lower case, two spaces",
            basic.replacen("Basic ", "basic  ", 1),
        ),
    ] {
        let request = d.token(&authorization, &[("grant_type", "password")]);
        let answer = d.send(what, request).await?;
        ensure!(
            answer.status == unauthorized || answer.status == ok,
            "{what}: {}",
            answer.status
        );
        if answer.status == ok {
            let answer = Answer {
                status: answer.status,
                headers: answer.headers.clone(),
                body: answer.body.clone(),
            };
            d.ledger.issued(&answer)?;
        }
    }

    // Session lookups: header, query, both, mismatched, refresh token, garbage.
    d.expect(
        "lookup by header",
        ok,
        d.request(Method::GET, "/oauth20/access-tokens")
            .bearer_auth(&shopper),
    )
    .await?;
    d.expect(
        "lookup by query",
        ok,
        d.request(
            Method::GET,
            &format!("/oauth20/access-tokens?token={shopper}"),
        ),
    )
    .await?;
    d.expect(
        "lookup by header and query",
        ok,
        d.request(
            Method::GET,
            &format!("/oauth20/access-tokens.json?token={shopper}"),
        )
        .bearer_auth(&shopper),
    )
    .await?;
    d.expect(
        "lookup with two different tokens",
        bad,
        d.request(
            Method::GET,
            &format!("/oauth20/access-token?token={partner}"),
        )
        .bearer_auth(&shopper),
    )
    .await?;
    d.expect(
        "lookup with Basic beside the query",
        ok,
        d.request(
            Method::GET,
            &format!("/oauth20/access-tokens?token={partner}"),
        )
        .header(AUTHORIZATION, &basic),
    )
    .await?;
    d.expect(
        "lookup with a wrong Basic beside the query",
        unauthorized,
        d.request(
            Method::GET,
            &format!("/oauth20/access-tokens?token={partner}"),
        )
        .header(AUTHORIZATION, &wrong_basic),
    )
    .await?;
    d.expect(
        "lookup of a refresh token",
        unauthorized,
        d.request(Method::GET, "/oauth20/access-tokens")
            .bearer_auth(&rotated_refresh),
    )
    .await?;
    d.expect(
        "lookup of a revoked session's token",
        unauthorized,
        d.request(Method::GET, "/oauth20/access-tokens")
            .bearer_auth(&rotated),
    )
    .await?;
    d.expect(
        "lookup with trailing garbage",
        unauthorized,
        d.request(Method::GET, "/oauth20/access-tokens")
            .header(AUTHORIZATION, format!("Bearer {shopper}x")),
    )
    .await?;
    d.expect(
        "lookup with the token twice in the query",
        bad,
        d.request(
            Method::GET,
            &format!("/oauth20/access-tokens?token={shopper}&token={shopper}"),
        ),
    )
    .await?;
    d.send(
        "unknown path with a token in the query",
        d.request(Method::GET, &format!("/oauth20/nothing?token={shopper}")),
    )
    .await?;
    d.send(
        "a token as a path segment",
        d.request(Method::GET, &format!("/oauth20/access-tokens/{shopper}")),
    )
    .await?;
    d.send(
        "POST on the lookup path with a token in the query",
        d.request(
            Method::POST,
            &format!("/oauth20/access-tokens?token={shopper}"),
        ),
    )
    .await?;

    // Shopper resources.
    d.expect(
        "the token's shopper",
        ok,
        d.request(Method::GET, "/v1/shoppers/me")
            .bearer_auth(&shopper),
    )
    .await?;
    d.expect(
        "change the session's locale",
        ok,
        d.request(Method::POST, "/v1/shoppers/me?locale=fr_FR&currency=EUR")
            .bearer_auth(&shopper),
    )
    .await?;
    d.expect(
        "shopper of a refresh token",
        unauthorized,
        d.request(Method::POST, "/v1/shoppers/me?locale=fr_FR")
            .bearer_auth(&rotated_refresh),
    )
    .await?;
    d.expect(
        "the shopper of a client token",
        StatusCode::FORBIDDEN,
        d.request(Method::GET, "/v1/shoppers/me")
            .bearer_auth(&client_token),
    )
    .await?;

    // Introspection and revocation.
    for (what, token) in [
        ("introspect an access token", partner.as_str()),
        ("introspect a refresh token", partner_refresh.as_str()),
        ("introspect a dead token", rotated.as_str()),
        ("introspect garbage", "tsa_x_garbage"),
    ] {
        d.expect(
            what,
            ok,
            d.request(Method::POST, "/oauth20/introspect")
                .header(AUTHORIZATION, &basic)
                .form(&[("token", token), ("token_type_hint", "access_token")]),
        )
        .await?;
    }
    d.expect(
        "introspect with body credentials",
        ok,
        d.request(Method::POST, "/oauth20/introspect").form(&[
            ("token", partner.as_str()),
            ("client_id", id),
            ("client_secret", secret),
        ]),
    )
    .await?;
    d.expect(
        "introspect with a wrong secret",
        unauthorized,
        d.request(Method::POST, "/oauth20/introspect")
            .header(AUTHORIZATION, &wrong_basic)
            .form(&[("token", partner.as_str())]),
    )
    .await?;
    d.expect(
        "introspect with a bearer",
        unauthorized,
        d.request(Method::POST, "/oauth20/introspect")
            .bearer_auth(&partner)
            .form(&[("token", partner.as_str())]),
    )
    .await?;
    d.expect(
        "introspect with the token in the query",
        bad,
        d.request(
            Method::POST,
            &format!("/oauth20/introspect?token={partner}"),
        )
        .header(AUTHORIZATION, &basic)
        .form(&[("token_type_hint", "access_token")]),
    )
    .await?;
    d.expect(
        "revoke another client's token",
        bad,
        d.request(Method::POST, "/oauth20/revoke")
            .header(AUTHORIZATION, &other_basic)
            .form(&[("token", partner.as_str())]),
    )
    .await?;
    d.expect(
        "revoke with a wrong secret",
        unauthorized,
        d.request(Method::POST, "/oauth20/revoke")
            .header(AUTHORIZATION, &wrong_basic)
            .form(&[("token", partner.as_str())]),
    )
    .await?;
    d.expect(
        "revoke a refresh token",
        ok,
        d.request(Method::POST, "/oauth20/revoke")
            .header(AUTHORIZATION, &basic)
            .form(&[("token", partner_refresh.as_str())]),
    )
    .await?;
    d.expect(
        "session details before logout",
        ok,
        d.request(Method::GET, "/oauth20/access-tokens")
            .bearer_auth(&shopper),
    )
    .await?;
    d.expect(
        "logout",
        ok,
        d.request(Method::DELETE, "/oauth20/access-tokens")
            .bearer_auth(&shopper),
    )
    .await?;
    d.expect(
        "logout twice",
        unauthorized,
        d.request(
            Method::DELETE,
            &format!("/oauth20/access-tokens?token={shopper}"),
        ),
    )
    .await?;

    // Metadata and documentation: URLs built by the server.
    d.expect(
        "metadata",
        ok,
        d.request(Method::GET, "/.well-known/oauth-authorization-server"),
    )
    .await?;

    let (cart_token, _) = d
        .grant(
            "a session for the cart",
            &basic,
            &[("grant_type", "password")],
        )
        .await?;
    let lookup = d
        .expect(
            "session details for the cart",
            ok,
            d.request(Method::GET, "/oauth20/access-tokens")
                .bearer_auth(&cart_token),
        )
        .await?;
    let session_id = lookup.field("sessionId")?;

    // The admin API: no, wrong and right admin token.
    let wrong_admin = format!("{ADMIN_TOKEN}x");
    d.ledger.secret(&wrong_admin);
    let sessions_path = format!("/admin/v1/shoppers/{api_user}/sessions");
    d.expect(
        "admin without a token",
        unauthorized,
        d.admin_request(Method::GET, &sessions_path),
    )
    .await?;
    d.expect(
        "admin with a wrong token",
        unauthorized,
        d.admin_request(Method::GET, &sessions_path)
            .bearer_auth(&wrong_admin),
    )
    .await?;
    d.expect(
        "admin with the token in the query",
        unauthorized,
        d.admin_request(Method::GET, &format!("{sessions_path}?token={ADMIN_TOKEN}")),
    )
    .await?;
    d.expect(
        "admin session list",
        ok,
        d.admin_request(Method::GET, &sessions_path)
            .bearer_auth(ADMIN_TOKEN),
    )
    .await?;
    d.expect(
        "admin cart",
        ok,
        d.admin_request(
            Method::PUT,
            &format!("/admin/v1/sessions/{session_id}/cart"),
        )
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"cartId": "cart-1"})),
    )
    .await?;
    d.expect(
        "admin shopper revoke",
        ok,
        d.admin_request(
            Method::POST,
            &format!("/admin/v1/shoppers/{api_user}/sessions/revoke"),
        )
        .bearer_auth(ADMIN_TOKEN),
    )
    .await?;
    d.expect(
        "admin client revoke",
        ok,
        d.admin_request(
            Method::POST,
            &format!("/admin/v1/clients/{other_id}/sessions/revoke"),
        )
        .bearer_auth(ADMIN_TOKEN),
    )
    .await?;
    d.expect(
        "admin session delete",
        ok,
        d.admin_request(Method::DELETE, &format!("/admin/v1/sessions/{session_id}"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await?;

    d.expect(
        "lookup of a token of a session ended by reuse",
        unauthorized,
        d.request(Method::GET, "/oauth20/access-tokens")
            .bearer_auth(&anonymous),
    )
    .await?;
    Ok(d.ledger)
}

/// Creates the two clients and the CLI shoppers P4 uses.
async fn p4_fixtures(data: &DataDir) -> anyhow::Result<((String, String), (String, String))> {
    let storefront = data
        .create_client(
            "storefront",
            &[
                "--grant",
                "anonymous,client_credentials,password,refresh_token",
            ],
        )
        .await?;
    let other = common::create_client(tessera("warn"), &data.database_url, "other").await?;
    let mut command = tessera("warn");
    command
        .args(["shopper", "create", "--json"])
        .args(["--external-reference-id", "ext-cli-1"])
        .args(["--username", "cli.shopper@example.com", "--password-stdin"])
        .args(["--database-url", &data.database_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    tokio::io::AsyncWriteExt::write_all(&mut stdin, format!("{PASSWORD}\n").as_bytes()).await?;
    drop(stdin);
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output()).await??;
    ensure!(
        output.status.success(),
        "shopper create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((storefront, other))
}

#[tokio::test]
async fn p4_no_token_or_secret_reaches_the_trace_logs_urls_or_error_bodies() -> anyhow::Result<()> {
    let mut log_bytes = 0;
    let mut tokens = 0;
    let mut secrets = 0;
    let mut answers = 0;
    for format in ["text", "json"] {
        let data = DataDir::new()?;
        let (storefront, other) = p4_fixtures(&data).await?;
        let server = data.serve_logged(format).await?;
        let driven = drive_every_endpoint(
            &server,
            (&storefront.0, &storefront.1),
            (&other.0, &other.1),
        )
        .await;
        let (status, logs) = server.stop().await?;
        let ledger = driven.with_context(|| {
            format!(
                "the drive failed; the server's last output: {}",
                tail(&logs)
            )
        })?;
        ensure!(status.success(), "SIGTERM exit: {status}");

        // Logging below info really was on, for the server's crates and its libraries
        // alike (nothing logs at TRACE itself; the statements of sqlx and the request
        // events of tower-http are DEBUG).
        let text = String::from_utf8_lossy(&logs);
        for target in [
            "sqlx::query",
            "tower_http::trace",
            "request finished",
            "DEBUG",
        ] {
            ensure!(
                text.contains(target),
                "{format} logs at trace lack {target:?}: {}",
                tail(&logs)
            );
        }

        // The search does find tokens where they belong: in the successful answers.
        let mut delivered = Vec::new();
        for (_, answer) in &ledger.answers {
            if answer.status.is_success() {
                delivered.extend_from_slice(answer.body.as_bytes());
            }
        }
        ensure!(
            ledger.find_in(&delivered).len() >= ledger.tokens,
            "the search misses tokens in the answers that carried them"
        );

        let leaked = ledger.find_in(&logs);
        ensure!(
            leaked.is_empty(),
            "{format} logs hold {} secrets, e.g. {:?}",
            leaked.len(),
            leaked.first()
        );
        for (what, answer) in &ledger.answers {
            let mut headers = Vec::new();
            for (name, value) in &answer.headers {
                headers.extend_from_slice(name.as_str().as_bytes());
                headers.extend_from_slice(b": ");
                headers.extend_from_slice(value.as_bytes());
                headers.push(b'\n');
            }
            let in_headers = ledger.find_in(&headers);
            ensure!(
                in_headers.is_empty(),
                "{what}: the headers of the answer ({}) hold {in_headers:?}",
                answer.status
            );
            if !answer.status.is_success() {
                let in_body = ledger.find_in(answer.body.as_bytes());
                ensure!(
                    in_body.is_empty(),
                    "{what}: the error body ({}) holds {in_body:?}: {}",
                    answer.status,
                    answer.body
                );
            }
        }
        log_bytes += logs.len();
        tokens += ledger.tokens;
        secrets += ledger.secrets;
        answers += ledger.answers.len();
    }
    println!(
        "figure P4: tokens={tokens} secrets={secrets} requests={answers} \
         log_bytes={log_bytes} hits=0 (RUST_LOG=trace, text and JSON)"
    );
    Ok(())
}

/// The last lines of a capture, for failure messages.
fn tail(logs: &[u8]) -> String {
    let text = String::from_utf8_lossy(logs);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One request's answer and its client-side time.
struct Sample {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: String,
    micros: f64,
}

async fn timed(request: RequestBuilder) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let response = request.timeout(PATIENCE).send().await?;
    let status = response.status();
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await?;
    let micros = started.elapsed().as_secs_f64() * 1e6;
    Ok(Sample {
        status,
        www_authenticate,
        body,
        micros,
    })
}

/// Sorted timings and the figures printed for them.
struct Timings(Vec<f64>);

impl Timings {
    fn of(samples: &[Sample]) -> Self {
        let mut micros: Vec<f64> = samples.iter().map(|s| s.micros).collect();
        micros.sort_by(f64::total_cmp);
        Self(micros)
    }

    fn quantile(&self, q: f64) -> f64 {
        let last = self.0.len().saturating_sub(1);
        let index = ((last as f64) * q).round() as usize;
        self.0.get(index.min(last)).copied().unwrap_or(f64::NAN)
    }

    fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    fn iqr(&self) -> f64 {
        self.quantile(0.75) - self.quantile(0.25)
    }
}

/// Asserts the two sets got one answer, and prints their timing figures.
fn compare(label: &str, a_name: &str, a: &[Sample], b_name: &str, b: &[Sample]) -> String {
    let first = a.first().or_else(|| b.first());
    for sample in a.iter().chain(b) {
        let Some(first) = first else { break };
        assert_eq!(sample.status, first.status, "{label}: status differs");
        assert_eq!(sample.body, first.body, "{label}: body differs");
        assert_eq!(
            sample.www_authenticate, first.www_authenticate,
            "{label}: WWW-Authenticate differs"
        );
    }
    let (ta, tb) = (Timings::of(a), Timings::of(b));
    let gap = ta.median() - tb.median();
    // Spread: the larger of the two interquartile ranges; a gap well inside it is noise.
    let spread = ta.iqr().max(tb.iqr()).max(f64::MIN_POSITIVE);
    format!(
        "{label} n={}+{} median_{a_name}={:.0}us p90_{a_name}={:.0}us median_{b_name}={:.0}us \
         p90_{b_name}={:.0}us gap={gap:+.0}us gap/iqr={:+.2} (one answer: {} {})",
        a.len(),
        b.len(),
        ta.median(),
        ta.quantile(0.9),
        tb.median(),
        tb.quantile(0.9),
        gap / spread,
        first.map_or(0, |s| s.status.as_u16()),
        first.map_or("", |s| s.body.as_str()),
    )
}

#[tokio::test]
async fn p13_unknown_and_wrong_credentials_get_one_answer_and_their_timings_are_measured()
-> anyhow::Result<()> {
    let (client_samples, user_samples) = if long_run() { (2000, 500) } else { (200, 60) };
    let data = DataDir::new()?;
    let (client_id, client_secret) = data
        .create_client("storefront", &["--grant", "anonymous,password"])
        .await?;
    let (_child, base, http) = common::serve(
        tessera("warn"),
        &data.database_url,
        &data.key_file,
        &[
            "--login-failures-per-hour-per-username",
            "1000000",
            "--login-failures-per-hour-per-client-address",
            "1000000",
            "--client-auth-failures-per-hour-per-client-address",
            "1000000",
            "--client-auth-failures-per-hour-per-address",
            "1000000",
        ],
    )
    .await?;
    let token_url = format!("{base}/oauth20/token");
    let created = http
        .post(format!("{base}/v1/shoppers"))
        .basic_auth(&client_id, Some(&client_secret))
        .json(&json!({"username": "known@example.com", "password": PASSWORD}))
        .send()
        .await?;
    ensure!(
        created.status() == StatusCode::CREATED,
        "{}",
        created.status()
    );

    // Clients: an unknown id (a fresh one each time, so no cache can remember it) against
    // the known id with a wrong secret, alternating which goes first.
    let wrong_secret = format!("{client_secret}x");
    let mut unknown = Vec::with_capacity(client_samples);
    let mut wrong = Vec::with_capacity(client_samples);
    for index in 0..client_samples + 10 {
        let unknown_request = http
            .post(&token_url)
            .basic_auth(format!("{index:032x}"), Some(&wrong_secret))
            .form(&[("grant_type", "password")]);
        let wrong_request = http
            .post(&token_url)
            .basic_auth(&client_id, Some(&wrong_secret))
            .form(&[("grant_type", "password")]);
        let (u, w) = if index % 2 == 0 {
            let u = timed(unknown_request).await?;
            (u, timed(wrong_request).await?)
        } else {
            let w = timed(wrong_request).await?;
            (timed(unknown_request).await?, w)
        };
        // The first few warm the connection and the caches.
        if index >= 10 {
            unknown.push(u);
            wrong.push(w);
        }
    }
    ensure!(
        unknown[0].status == StatusCode::UNAUTHORIZED,
        "{}",
        unknown[0].body
    );
    let clients = compare("client", "unknown", &unknown, "wrong_secret", &wrong);

    // Shoppers: an unknown username against a known one with a wrong password.
    let mut unknown = Vec::with_capacity(user_samples);
    let mut wrong = Vec::with_capacity(user_samples);
    for index in 0..user_samples + 4 {
        let login = |username: String| {
            http.post(&token_url)
                .basic_auth(&client_id, Some(&client_secret))
                .form(&[
                    ("grant_type", "password"),
                    ("username", username.as_str()),
                    ("password", WRONG_PASSWORD),
                ])
        };
        let unknown_request = login(format!("nobody-{index}@example.com"));
        let wrong_request = login("known@example.com".to_owned());
        let (u, w) = if index % 2 == 0 {
            let u = timed(unknown_request).await?;
            (u, timed(wrong_request).await?)
        } else {
            let w = timed(wrong_request).await?;
            (timed(unknown_request).await?, w)
        };
        if index >= 4 {
            unknown.push(u);
            wrong.push(w);
        }
    }
    ensure!(
        unknown[0].status == StatusCode::BAD_REQUEST,
        "{}",
        unknown[0].body
    );
    let users = compare("user", "unknown", &unknown, "wrong_password", &wrong);
    println!("figure P13: {clients}; {users}");
    Ok(())
}
