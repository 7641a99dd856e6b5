//! End-to-end tests of the real `tessera` binary: the admin CLI writes the store, `serve`
//! runs on port 0 and announces its address, and the seed page's token lifecycle is driven
//! over HTTP, across a graceful restart. Each test has its own data folder and port; every
//! child process is killed if a test fails.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bound on waiting for the binary to start, answer or stop; generous because CI shares
/// two cores with compilers. Nothing waits for time to pass: these are only ceilings.
const PATIENCE: Duration = Duration::from_secs(60);

/// The node name the tests give the server, reported as `domain`.
const NODE_NAME: &str = "test-node";

/// Every field of API.md §3.
const SESSION_FIELDS: [&str; 15] = [
    "sessionId",
    "userId",
    "externalReferenceId",
    "authenticated",
    "locale",
    "currency",
    "cartId",
    "clientIpAddress",
    "domain",
    "expiresIn",
    "themeId",
    "sessionTag",
    "createdOn",
    "lastAccessed",
    "accessToken",
];

/// The binary, with no stray `TESSERA_*` setting from the environment.
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

/// What an admin command printed.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// A client's credentials as `client create --json` prints them.
#[derive(Clone, Debug)]
struct Credentials {
    client_id: String,
    client_secret: Option<String>,
}

/// One test's data folder and the store in it.
struct DataDir {
    dir: TempDir,
    database_url: String,
}

impl DataDir {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let database_url = format!("sqlite://{}", dir.path().join("t.db").display());
        Ok(Self { dir, database_url })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `tessera ARGS --database-url URL`, feeding `stdin` if given.
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<Output> {
        let mut command = tessera();
        command
            .args(args)
            .args(["--database-url", &self.database_url])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("cannot start tessera")?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A command that refuses its arguments exits without reading: a closed pipe
            // is then expected, and the exit status tells the rest.
            match pipe.write_all(text.as_bytes()).await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => drop(pipe),
            }
        }
        let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .with_context(|| format!("tessera {args:?} did not finish"))??;
        Ok(Output {
            status: output.status,
            stdout: String::from_utf8(output.stdout)?,
            stderr: String::from_utf8(output.stderr)?,
        })
    }

    /// Runs an admin command that must succeed and returns its stdout.
    async fn run_ok(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let output = self.run(args, stdin).await?;
        ensure!(
            output.status.success(),
            "tessera {args:?} failed with {}: {}",
            output.status,
            output.stderr
        );
        Ok(output.stdout)
    }

    /// Runs an admin command that must fail and returns its stderr.
    async fn run_err(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let output = self.run(args, stdin).await?;
        ensure!(
            !output.status.success(),
            "tessera {args:?} should have failed; it printed: {}",
            output.stdout
        );
        ensure!(
            !output.stderr.trim().is_empty(),
            "tessera {args:?} failed without saying why"
        );
        Ok(output.stderr)
    }

    /// `client create --name NAME --json EXTRA...`.
    async fn create_client(&self, name: &str, extra: &[&str]) -> anyhow::Result<Credentials> {
        let mut args = vec!["client", "create", "--name", name, "--json"];
        args.extend_from_slice(extra);
        let stdout = self.run_ok(&args, None).await?;
        let json: Value = serde_json::from_str(stdout.trim())
            .with_context(|| format!("client create --json printed {stdout:?}"))?;
        let object = json.as_object().context("not a JSON object")?;
        ensure!(object.len() == 2, "unexpected keys in {json}");
        Ok(Credentials {
            client_id: json["client_id"]
                .as_str()
                .context("client_id is not a string")?
                .to_owned(),
            client_secret: match &json["client_secret"] {
                Value::Null => None,
                Value::String(secret) => Some(secret.clone()),
                other => bail!("client_secret is {other}"),
            },
        })
    }

    /// Starts `tessera serve` on port 0 and waits for its first line.
    async fn serve(&self, extra: &[&str]) -> anyhow::Result<Server> {
        self.serve_with_env(extra, &[]).await
    }

    /// Starts `tessera serve` on port 0 with extra environment variables and waits for its
    /// first line.
    async fn serve_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let mut command = tessera();
        command
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--node-name", NODE_NAME])
            .args(["--database-url", &self.database_url])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("cannot start tessera serve")?;
        let pid = child.id().context("the server has no pid")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let (lines_tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Drained continuously so the server never blocks on a full pipe; kept for
        // failure messages.
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let stderr_drained = tokio::spawn(async move {
            let mut stderr = stderr;
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = stderr.read(&mut buffer).await {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buffer[..read]);
            }
        });
        let mut server = Server {
            child,
            pid,
            base: String::new(),
            lines,
            logs,
            stderr_drained,
            http: reqwest::Client::builder().no_proxy().build()?,
        };
        let first = server
            .next_line()
            .await?
            .with_context(|| format!("the server printed nothing; stderr: {}", server.logs()))?;
        let base = first
            .strip_prefix("tessera listening on ")
            .with_context(|| format!("unexpected first line {first:?}"))?;
        ensure!(
            base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
            "the first line must name the bound port: {first:?}"
        );
        server.base = base.to_owned();
        Ok(server)
    }
}

/// A running `tessera serve`; killed when dropped, so a failing test leaves nothing
/// behind.
struct Server {
    child: Child,
    pid: u32,
    base: String,
    lines: mpsc::UnboundedReceiver<String>,
    logs: Arc<Mutex<Vec<u8>>>,
    stderr_drained: JoinHandle<()>,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Server {
    /// Everything the server wrote to stderr so far (all of it, once stopped).
    fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// The next line of stdout; `None` once stdout is closed.
    async fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        tokio::time::timeout(PATIENCE, self.lines.recv())
            .await
            .context("the server printed no further line")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM, waits for the exit and returns its status and the stdout lines not
    /// yet read.
    async fn stop(&mut self) -> anyhow::Result<(ExitStatus, Vec<String>)> {
        self.stop_with("TERM").await
    }

    /// Sends the signal named (`TERM`, `INT`), waits for the exit and returns its status
    /// and the stdout lines not yet read.
    async fn stop_with(&mut self, signal: &str) -> anyhow::Result<(ExitStatus, Vec<String>)> {
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .await?;
        ensure!(kill.success(), "kill -{signal} failed");
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .with_context(|| format!("no exit after SIG{signal}; stderr: {}", self.logs()))??;
        let mut rest = Vec::new();
        while let Some(line) = self.next_line().await? {
            rest.push(line);
        }
        tokio::time::timeout(PATIENCE, &mut self.stderr_drained)
            .await
            .context("stderr was not closed after the exit")??;
        Ok((status, rest))
    }

    /// POST /oauth20/token with Basic client authentication.
    async fn token(
        &self,
        client: &Credentials,
        form: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .post(self.url("/oauth20/token"))
            .basic_auth(&client.client_id, client.client_secret.as_deref())
            .form(form)
            .timeout(PATIENCE)
            .send()
            .await?)
    }

    /// An anonymous (limited) token, as the seed page starts.
    async fn anonymous_token(&self, client: &Credentials) -> anyhow::Result<TokenPair> {
        let response = self.token(client, &[("grant_type", "password")]).await?;
        TokenPair::from_response(response, &self.logs()).await
    }

    /// GET or DELETE /oauth20/access-tokens with the token as bearer.
    async fn session(
        &self,
        method: reqwest::Method,
        token: &str,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .request(method, self.url("/oauth20/access-tokens"))
            .header("Authorization", format!("bearer {token}"))
            .timeout(PATIENCE)
            .send()
            .await?)
    }
}

/// A successful token response.
struct TokenPair {
    access_token: String,
    refresh_token: String,
}

impl TokenPair {
    /// Checks an RFC 6749 §5.1 success and keeps the tokens.
    async fn from_response(response: reqwest::Response, logs: &str) -> anyhow::Result<Self> {
        let status = response.status();
        let cache_control = header(&response, "cache-control");
        let body = response.text().await?;
        ensure!(
            status == StatusCode::OK,
            "token request answered {status}: {body}; server stderr: {logs}"
        );
        ensure!(
            cache_control.contains("no-store"),
            "Cache-Control: {cache_control}"
        );
        let json: Value = serde_json::from_str(&body)?;
        ensure!(
            json["token_type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
            "token_type in {body}"
        );
        ensure!(
            json["expires_in"].as_i64().is_some_and(|s| s > 0),
            "expires_in in {body}"
        );
        Ok(Self {
            access_token: json["access_token"]
                .as_str()
                .context("no access_token")?
                .to_owned(),
            refresh_token: json["refresh_token"]
                .as_str()
                .context("no refresh_token")?
                .to_owned(),
        })
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Reads the session details of a token, which must be live, and checks the fields.
async fn session_details(server: &Server, token: &str) -> anyhow::Result<Value> {
    let response = server.session(reqwest::Method::GET, token).await?;
    let status = response.status();
    let cache_control = header(&response, "cache-control");
    let body = response.text().await?;
    ensure!(status == StatusCode::OK, "GET answered {status}: {body}");
    ensure!(
        cache_control.contains("no-store"),
        "Cache-Control: {cache_control}"
    );
    let json: Value = serde_json::from_str(&body)?;
    let object = json
        .as_object()
        .context("session details are not an object")?;
    for field in SESSION_FIELDS {
        ensure!(object.contains_key(field), "`{field}` missing from {body}");
    }
    ensure!(json["accessToken"] == token, "accessToken is not the token");
    ensure!(json["domain"] == NODE_NAME, "domain in {body}");
    ensure!(
        json["clientIpAddress"] == "127.0.0.1",
        "clientIpAddress in {body}"
    );
    ensure!(
        json["expiresIn"]
            .as_i64()
            .is_some_and(|s| s > 0 && s <= 3600),
        "expiresIn in {body}"
    );
    ensure!(
        json["sessionTag"].as_str().is_some_and(
            |t| t.len() == 32 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        ),
        "sessionTag in {body}"
    );
    for field in [
        "sessionId",
        "locale",
        "currency",
        "createdOn",
        "lastAccessed",
    ] {
        ensure!(
            json[field].is_string(),
            "`{field}` is not a string in {body}"
        );
    }
    Ok(json)
}

/// Asserts a bearer refusal as RFC 6750 §3 and API.md §5 describe it.
async fn assert_refused(server: &Server, token: &str) -> anyhow::Result<()> {
    let response = server.session(reqwest::Method::GET, token).await?;
    let status = response.status();
    let challenge = header(&response, "www-authenticate");
    let body = response.text().await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "GET answered {status}: {body}"
    );
    ensure!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "WWW-Authenticate: {challenge}"
    );
    ensure!(!body.contains(token), "the refusal echoes the token");
    Ok(())
}

fn parse_labelled(lines: &[String], label: &str) -> Option<String> {
    lines.iter().find_map(|line| {
        line.trim()
            .strip_prefix(label)
            .map(|rest| rest.trim().to_owned())
    })
}

#[tokio::test]
async fn the_seed_flow_works_end_to_end_and_its_effects_survive_a_restart() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let client = data.create_client("t", &[]).await?;
    ensure!(
        client.client_secret.is_some(),
        "a confidential client has a secret"
    );

    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    let health = server.http.get(server.url("/healthz")).send().await?;
    ensure!(
        health.status() == StatusCode::OK,
        "/healthz answered {}",
        health.status()
    );

    // Get a token, look up its session, delete it, and see it refused.
    let revoked = server.anonymous_token(&client).await?;
    let details = session_details(&server, &revoked.access_token).await?;
    ensure!(
        details["authenticated"] == "false",
        "anonymous tokens are limited"
    );
    let deleted = server
        .session(reqwest::Method::DELETE, &revoked.access_token)
        .await?;
    ensure!(
        deleted.status() == StatusCode::OK,
        "DELETE answered {}",
        deleted.status()
    );
    assert_refused(&server, &revoked.access_token).await?;

    // A second session stays live.
    let live = server.anonymous_token(&client).await?;
    session_details(&server, &live.access_token).await?;

    let (status, rest) = server.stop().await?;
    ensure!(
        status.success(),
        "SIGTERM exit: {status}; stderr: {}",
        server.logs()
    );
    ensure!(
        rest.is_empty(),
        "nothing is printed after the listening line: {rest:?}"
    );

    // Same store, new process: the revocation and the live token both persisted.
    let server = data.serve(&["--no-bootstrap-client"]).await?;
    assert_refused(&server, &revoked.access_token).await?;
    let details = session_details(&server, &live.access_token).await?;
    ensure!(
        details["authenticated"] == "false",
        "still the same limited session"
    );
    Ok(())
}

#[tokio::test]
async fn the_bootstrap_client_is_printed_once_after_the_listening_line_and_works()
-> anyhow::Result<()> {
    let data = DataDir::new()?;
    let mut server = data.serve(&[]).await?;
    let mut printed = Vec::new();
    while printed.len() < 10 {
        let line = server.next_line().await?.context("stdout closed early")?;
        let done = line.contains("will not be shown again");
        printed.push(line);
        if done {
            break;
        }
    }
    let bootstrap = Credentials {
        client_id: parse_labelled(&printed, "client_id:").context("no client_id line")?,
        client_secret: Some(
            parse_labelled(&printed, "client_secret:").context("no client_secret line")?,
        ),
    };
    let pair = server.anonymous_token(&bootstrap).await?;
    session_details(&server, &pair.access_token).await?;
    let partnerless = server
        .token(&bootstrap, &[("grant_type", "client_credentials")])
        .await?;
    ensure!(
        partnerless.status() == StatusCode::OK,
        "the bootstrap client may use client_credentials: {}",
        partnerless.status()
    );
    let listed = data.run_ok(&["client", "list"], None).await?;
    ensure!(listed.contains("bootstrap"), "client list: {listed}");
    let (status, _) = server.stop().await?;
    ensure!(status.success(), "SIGTERM exit: {status}");

    // The store has a client now: a second start creates and prints nothing. Ctrl-C
    // (SIGINT) stops it as cleanly as SIGTERM.
    let mut server = data.serve(&[]).await?;
    server
        .http
        .get(server.url("/healthz"))
        .send()
        .await?
        .error_for_status()?;
    let (status, rest) = server.stop_with("INT").await?;
    ensure!(status.success(), "SIGINT exit: {status}");
    ensure!(rest.is_empty(), "a second start printed {rest:?}");
    Ok(())
}

#[tokio::test]
async fn no_bootstrap_client_means_no_client_is_created() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    let (status, rest) = server.stop().await?;
    ensure!(status.success(), "SIGTERM exit: {status}");
    ensure!(rest.is_empty(), "printed {rest:?}");
    let listed = data.run_ok(&["client", "list", "--json"], None).await?;
    ensure!(
        serde_json::from_str::<Value>(&listed)? == Value::Array(vec![]),
        "{listed}"
    );
    Ok(())
}

#[tokio::test]
async fn a_public_client_gets_a_null_secret_and_listings_never_show_secrets() -> anyhow::Result<()>
{
    let data = DataDir::new()?;
    let public = data.create_client("spa", &["--public"]).await?;
    ensure!(
        public.client_secret.is_none(),
        "a public client has no secret"
    );
    let confidential = data
        .create_client("shop", &["--grant", "anonymous", "--grant", "password"])
        .await?;
    let secret = confidential.client_secret.context("no secret")?;

    let listed: Value =
        serde_json::from_str(&data.run_ok(&["client", "list", "--json"], None).await?)?;
    let clients = listed
        .as_array()
        .context("client list --json is not an array")?;
    ensure!(clients.len() == 2, "{listed}");
    let spa = clients
        .iter()
        .find(|c| c["client_id"] == public.client_id.as_str())
        .context("the public client is not listed")?;
    ensure!(spa["public"] == true && spa["name"] == "spa", "{spa}");
    let shop = clients
        .iter()
        .find(|c| c["client_id"] == confidential.client_id.as_str())
        .context("the confidential client is not listed")?;
    ensure!(
        shop["grants"] == serde_json::json!(["anonymous", "password"]),
        "{shop}"
    );

    let text = data.run_ok(&["client", "list"], None).await?;
    for listing in [text, listed.to_string()] {
        ensure!(!listing.contains(&secret), "a listing shows a secret");
        ensure!(
            !listing.contains("tcs_"),
            "a listing shows something like a secret"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_partner_shopper_created_with_the_cli_gets_a_full_token() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let client = data.create_client("partner", &[]).await?;
    let stdout = data
        .run_ok(
            &[
                "shopper",
                "create",
                "--external-reference-id",
                "ext-1001",
                "--locale",
                "fr_FR",
                "--currency",
                "EUR",
                "--json",
            ],
            None,
        )
        .await?;
    let created: Value = serde_json::from_str(stdout.trim())?;
    let user_id = created["user_id"]
        .as_str()
        .context("no user_id")?
        .to_owned();
    ensure!(created.as_object().map(|o| o.len()) == Some(1), "{created}");

    let duplicate = data
        .run_err(
            &["shopper", "create", "--external-reference-id", "ext-1001"],
            None,
        )
        .await?;
    ensure!(duplicate.contains("already exists"), "{duplicate}");

    let server = data.serve(&["--no-bootstrap-client"]).await?;
    let response = server
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("dr_external_reference_id", "ext-1001"),
            ],
        )
        .await?;
    let pair = TokenPair::from_response(response, &server.logs()).await?;
    let details = session_details(&server, &pair.access_token).await?;
    ensure!(details["authenticated"] == "true", "{details}");
    ensure!(details["externalReferenceId"] == "ext-1001", "{details}");
    ensure!(details["userId"] == user_id.as_str(), "{details}");
    ensure!(
        details["locale"] == "fr_FR" && details["currency"] == "EUR",
        "{details}"
    );

    let unknown = server
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("dr_external_reference_id", "ext-unknown"),
            ],
        )
        .await?;
    ensure!(
        unknown.status() == StatusCode::BAD_REQUEST,
        "{}",
        unknown.status()
    );
    Ok(())
}

#[tokio::test]
async fn a_shopper_password_comes_from_stdin_and_only_with_a_username() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let stdout = data
        .run_ok(
            &[
                "shopper",
                "create",
                "--external-reference-id",
                "ext-7",
                "--username",
                "Ada@Example.com",
                "--password-stdin",
                "--json",
            ],
            Some("correct horse battery staple\n"),
        )
        .await?;
    let created: Value = serde_json::from_str(stdout.trim())?;
    ensure!(created["user_id"].is_string(), "{created}");

    let taken = data
        .run_err(
            &[
                "shopper",
                "create",
                "--username",
                "Ada@Example.com",
                "--password-stdin",
            ],
            Some("another\n"),
        )
        .await?;
    ensure!(taken.contains("already exists"), "{taken}");

    let no_username = data
        .run_err(
            &[
                "shopper",
                "create",
                "--external-reference-id",
                "ext-8",
                "--password-stdin",
            ],
            Some("pw\n"),
        )
        .await?;
    ensure!(no_username.contains("--username"), "{no_username}");

    let empty = data
        .run_err(
            &["shopper", "create", "--username", "bob", "--password-stdin"],
            Some("\n"),
        )
        .await?;
    ensure!(empty.contains("empty"), "{empty}");
    Ok(())
}

#[tokio::test]
async fn rotating_a_secret_retires_the_old_one_at_once() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let old = data.create_client("rotating", &[]).await?;
    let server = data.serve(&["--no-bootstrap-client"]).await?;
    server.anonymous_token(&old).await?;

    // The admin command writes the store the running server uses.
    let stdout = data
        .run_ok(&["client", "rotate-secret", &old.client_id, "--json"], None)
        .await?;
    let rotated: Value = serde_json::from_str(stdout.trim())?;
    ensure!(rotated["client_id"] == old.client_id.as_str(), "{rotated}");
    let new = Credentials {
        client_id: old.client_id.clone(),
        client_secret: Some(
            rotated["client_secret"]
                .as_str()
                .context("no client_secret")?
                .to_owned(),
        ),
    };
    ensure!(new.client_secret != old.client_secret, "the secret changed");

    let refused = server.token(&old, &[("grant_type", "password")]).await?;
    ensure!(
        refused.status() == StatusCode::UNAUTHORIZED,
        "{}",
        refused.status()
    );
    let body: Value = refused.json().await?;
    ensure!(body["error"] == "invalid_client", "{body}");
    server.anonymous_token(&new).await?;

    let public = data.create_client("spa", &["--public"]).await?;
    let stderr = data
        .run_err(&["client", "rotate-secret", &public.client_id], None)
        .await?;
    ensure!(stderr.contains("public"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn a_disabled_client_can_no_longer_authenticate_nor_use_its_tokens() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let client = data.create_client("doomed", &[]).await?;
    let server = data.serve(&["--no-bootstrap-client"]).await?;
    let pair = server.anonymous_token(&client).await?;
    session_details(&server, &pair.access_token).await?;

    let stdout = data
        .run_ok(&["client", "disable", &client.client_id], None)
        .await?;
    ensure!(stdout.contains(&client.client_id), "{stdout}");

    let refused = server.token(&client, &[("grant_type", "password")]).await?;
    ensure!(
        refused.status() == StatusCode::UNAUTHORIZED,
        "{}",
        refused.status()
    );
    assert_refused(&server, &pair.access_token).await?;
    let listed: Value =
        serde_json::from_str(&data.run_ok(&["client", "list", "--json"], None).await?)?;
    ensure!(listed[0]["disabled"] == true, "{listed}");
    Ok(())
}

#[tokio::test]
async fn admin_mistakes_fail_with_a_clear_message() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    for command in ["rotate-secret", "disable"] {
        let stderr = data
            .run_err(&["client", command, "no-such-client"], None)
            .await?;
        ensure!(stderr.contains("no-such-client"), "{command}: {stderr}");
    }
    let stderr = data
        .run_err(
            &["client", "create", "--name", "x", "--grant", "implicit"],
            None,
        )
        .await?;
    ensure!(
        stderr.contains("implicit") && stderr.contains("client_credentials"),
        "{stderr}"
    );
    let stderr = data
        .run_err(
            &[
                "client",
                "create",
                "--name",
                "x",
                "--public",
                "--grant",
                "client_credentials",
            ],
            None,
        )
        .await?;
    ensure!(stderr.contains("public"), "{stderr}");
    let listed = data.run_ok(&["client", "list", "--json"], None).await?;
    ensure!(
        listed.trim() == "[]",
        "refused commands created nothing: {listed}"
    );
    Ok(())
}

#[tokio::test]
async fn help_describes_every_command() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let top = data.run_ok(&["--help"], None).await?;
    for word in [
        "serve",
        "client",
        "shopper",
        "--database-url",
        "TESSERA_DATABASE_URL",
    ] {
        ensure!(
            top.contains(word),
            "`tessera --help` does not mention {word}: {top}"
        );
    }
    let client = data.run_ok(&["client", "--help"], None).await?;
    for word in ["create", "list", "rotate-secret", "disable"] {
        ensure!(
            client.contains(word),
            "`tessera client --help` lacks {word}: {client}"
        );
    }
    let shopper = data.run_ok(&["shopper", "--help"], None).await?;
    ensure!(shopper.contains("create"), "{shopper}");
    let serve = data.run_ok(&["serve", "--help"], None).await?;
    for word in [
        "--listen",
        "TESSERA_LISTEN",
        "--node-name",
        "TESSERA_NODE_NAME",
        "--token-key-file",
        "TESSERA_TOKEN_KEY_FILE",
        "--log-format",
        "TESSERA_LOG_FORMAT",
        "--no-bootstrap-client",
        "TESSERA_NO_BOOTSTRAP_CLIENT",
        "--store-busy-timeout-ms",
        "TESSERA_STORE_BUSY_TIMEOUT_MS",
    ] {
        ensure!(
            serve.contains(word),
            "`tessera serve --help` lacks {word}: {serve}"
        );
    }
    let create = data.run_ok(&["client", "create", "--help"], None).await?;
    for word in [
        "anonymous",
        "client_credentials",
        "password",
        "refresh_token",
        "--json",
    ] {
        ensure!(
            create.contains(word),
            "`client create --help` lacks {word}: {create}"
        );
    }
    let shopper_create = data.run_ok(&["shopper", "create", "--help"], None).await?;
    for word in ["--external-reference-id", "--username", "--password-stdin"] {
        ensure!(
            shopper_create.contains(word),
            "lacks {word}: {shopper_create}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_key_file_is_created_beside_the_database_for_its_owner_only() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let key_file: PathBuf = data.path().join("tessera.key");
    ensure!(!key_file.exists(), "no key file before the first start");
    let client = data.create_client("t", &[]).await?;
    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    let mode = std::fs::metadata(&key_file)?.permissions().mode() & 0o777;
    ensure!(mode == 0o600, "key file mode is {mode:o}");
    let before = std::fs::read_to_string(&key_file)?;
    let pair = server.anonymous_token(&client).await?;
    let (status, _) = server.stop().await?;
    ensure!(status.success(), "SIGTERM exit: {status}");

    // The same key is read back, so tokens signed before the restart still verify.
    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    ensure!(
        std::fs::read_to_string(&key_file)? == before,
        "the key file changed"
    );
    session_details(&server, &pair.access_token).await?;
    let (status, _) = server.stop().await?;
    ensure!(status.success(), "SIGTERM exit: {status}");

    // An explicit key file elsewhere is created there instead; its key signs differently,
    // so tokens from the first key no longer verify.
    let other = data.path().join("keys").join("other.key");
    let server = data
        .serve(&[
            "--no-bootstrap-client",
            "--token-key-file",
            other.to_str().context("path")?,
        ])
        .await?;
    ensure!(other.exists(), "--token-key-file was not created");
    assert_refused(&server, &pair.access_token).await?;
    Ok(())
}

#[tokio::test]
async fn tokens_and_secrets_never_reach_the_database_files_or_the_logs() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let client = data.create_client("t", &[]).await?;
    let mut server = data
        .serve(&["--no-bootstrap-client", "--log-format", "json"])
        .await?;
    let pair = server.anonymous_token(&client).await?;
    session_details(&server, &pair.access_token).await?;
    let (status, _) = server.stop().await?;
    ensure!(status.success(), "SIGTERM exit: {status}");

    let secret = client.client_secret.context("no secret")?;
    let needles = [&pair.access_token, &pair.refresh_token, &secret];
    let mut scanned = 0;
    for entry in std::fs::read_dir(data.path())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with("t.db") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        scanned += bytes.len();
        for needle in needles {
            ensure!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{name} holds a token or secret in clear"
            );
        }
    }
    ensure!(scanned > 0, "no database file was found to scan");

    let logs = server.logs();
    let mut requests = 0;
    for line in logs.lines() {
        let entry: Value = serde_json::from_str(line)
            .with_context(|| format!("--log-format json wrote a non-JSON line: {line}"))?;
        if entry["message"] == "request finished" {
            requests += 1;
        }
    }
    ensure!(requests >= 2, "one log line per request: {logs}");
    for needle in needles {
        ensure!(
            !logs.contains(needle.as_str()),
            "the logs hold a token or secret"
        );
    }
    Ok(())
}

/// `grant_type=refresh_token` for `refresh_token`; returns the status and the JSON body.
async fn refresh_grant(
    server: &Server,
    client: &Credentials,
    refresh_token: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let response = server
        .token(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await?;
    let status = response.status();
    let body = response.text().await?;
    Ok((status, serde_json::from_str(&body)?))
}

#[tokio::test]
async fn a_rotation_survives_a_restart_and_a_replay_afterwards_ends_the_session()
-> anyhow::Result<()> {
    let data = DataDir::new()?;
    let client = data.create_client("t", &[]).await?;
    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    let first = server.anonymous_token(&client).await?;
    let response = server
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first.refresh_token),
            ],
        )
        .await?;
    let rotated = TokenPair::from_response(response, &server.logs()).await?;
    let before = session_details(&server, &rotated.access_token).await?;
    let (status, _) = server.stop().await?;
    ensure!(
        status.success(),
        "SIGTERM exit: {status}; stderr: {}",
        server.logs()
    );

    // Same store, new process: the rotation is durable, the old token is still consumed.
    let server = data.serve(&["--no-bootstrap-client"]).await?;
    let after = session_details(&server, &rotated.access_token).await?;
    ensure!(
        after["sessionId"] == before["sessionId"],
        "the successor still belongs to the same session"
    );
    let (status, body) = refresh_grant(&server, &client, &first.refresh_token).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant",
        "a replay after the restart answered {status}: {body}"
    );
    // The replay was detected as reuse: the whole session is gone.
    assert_refused(&server, &rotated.access_token).await?;
    let (status, body) = refresh_grant(&server, &client, &rotated.refresh_token).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant",
        "the successor refresh token after the replay answered {status}: {body}"
    );
    Ok(())
}

#[tokio::test]
async fn a_shopper_created_with_the_cli_logs_in_with_a_password_over_http() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let storefront = data
        .create_client("storefront", &["--grant", "password,refresh_token"])
        .await?;
    let legacy = data
        .create_client(
            "legacy",
            &["--grant", "password", "--password-encoding", "base64"],
        )
        .await?;
    // The CLI stores the username by the one rule: trimmed, lower-cased, NFC.
    let password = "p&ss=w+rd \u{e9}";
    let stdout = data
        .run_ok(
            &[
                "shopper",
                "create",
                "--username",
                " Ada.Lovelace@Example.COM ",
                "--password-stdin",
                "--locale",
                "fr_FR",
                "--currency",
                "EUR",
                "--json",
            ],
            Some(&format!("{password}\n")),
        )
        .await?;
    let created: Value = serde_json::from_str(stdout.trim())?;
    let user_id = created["user_id"]
        .as_str()
        .context("no user_id")?
        .to_owned();

    let listed: Value = serde_json::from_str(
        data.run_ok(&["client", "list", "--json"], None)
            .await?
            .trim(),
    )?;
    let encoding_of = |id: &str| {
        listed
            .as_array()
            .and_then(|all| all.iter().find(|c| c["client_id"] == id))
            .map(|c| c["password_encoding"].clone())
    };
    ensure!(
        encoding_of(&storefront.client_id) == Some(Value::from("plain"))
            && encoding_of(&legacy.client_id) == Some(Value::from("base64")),
        "{listed}"
    );

    let server = data
        .serve(&[
            "--no-bootstrap-client",
            "--login-failures-per-hour-per-username",
            "2",
        ])
        .await?;
    let login = |client: &Credentials, username: &str, password: &str| {
        let form = [
            ("grant_type", "password".to_owned()),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        let request = server
            .http
            .post(server.url("/oauth20/token"))
            .basic_auth(&client.client_id, client.client_secret.as_deref())
            .form(&form)
            .timeout(PATIENCE);
        async move { anyhow::Ok(request.send().await?) }
    };

    let response = login(&storefront, "ada.lovelace@example.com", password).await?;
    let pair = TokenPair::from_response(response, &server.logs()).await?;
    let details = session_details(&server, &pair.access_token).await?;
    ensure!(details["authenticated"] == "true", "{details}");
    ensure!(details["userId"] == user_id.as_str(), "{details}");
    ensure!(
        details["locale"] == "fr_FR" && details["currency"] == "EUR",
        "{details}"
    );

    // The base64 client sends the same password base64-encoded.
    let encoded = "cCZzcz13K3JkIMOp";
    let response = login(&legacy, "ADA.LOVELACE@example.com", encoded).await?;
    TokenPair::from_response(response, &server.logs()).await?;

    // The flag's limit: two failures, then 429 with about an hour to wait.
    for _ in 0..2 {
        let response = login(&storefront, "ada.lovelace@example.com", "wrong").await?;
        ensure!(
            response.status() == StatusCode::BAD_REQUEST,
            "{}",
            response.status()
        );
    }
    let response = login(&storefront, "ada.lovelace@example.com", password).await?;
    ensure!(
        response.status() == StatusCode::TOO_MANY_REQUESTS,
        "{}",
        response.status()
    );
    let retry_after: u64 = header(&response, "retry-after").parse()?;
    ensure!(
        (3500..=3600).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    // The session from before is untouched.
    session_details(&server, &pair.access_token).await?;
    Ok(())
}

/// `shopper create --external-reference-id REFERENCE --json`; returns the user id.
async fn create_shopper(data: &DataDir, reference: &str) -> anyhow::Result<String> {
    let stdout = data
        .run_ok(
            &[
                "shopper",
                "create",
                "--external-reference-id",
                reference,
                "--json",
            ],
            None,
        )
        .await?;
    let created: Value = serde_json::from_str(stdout.trim())?;
    Ok(created["user_id"]
        .as_str()
        .context("no user_id")?
        .to_owned())
}

/// A partner-shopper token for the shopper with this external reference id.
async fn partner_token(
    server: &Server,
    client: &Credentials,
    reference: &str,
) -> anyhow::Result<TokenPair> {
    let response = server
        .token(
            client,
            &[
                ("grant_type", "client_credentials"),
                ("dr_external_reference_id", reference),
            ],
        )
        .await?;
    TokenPair::from_response(response, &server.logs()).await
}

#[tokio::test]
async fn session_revoke_on_a_running_servers_store_takes_effect_at_once() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let client = data.create_client("partner", &[]).await?;
    let ann = create_shopper(&data, "ext-ann").await?;
    create_shopper(&data, "ext-bob").await?;
    let server = data.serve(&["--no-bootstrap-client"]).await?;
    let first = partner_token(&server, &client, "ext-ann").await?;
    let second = partner_token(&server, &client, "ext-ann").await?;
    let bob = partner_token(&server, &client, "ext-bob").await?;
    let first_id = session_details(&server, &first.access_token).await?["sessionId"].clone();
    let second_id = session_details(&server, &second.access_token).await?["sessionId"].clone();

    // `session list` shows both live sessions, never a token.
    let listed = data
        .run_ok(&["session", "list", "--shopper", &ann, "--json"], None)
        .await?;
    let sessions: Value = serde_json::from_str(listed.trim())?;
    let ids: Vec<&Value> = sessions
        .as_array()
        .context("session list --json is not an array")?
        .iter()
        .map(|s| &s["session_id"])
        .collect();
    ensure!(ids == [&first_id, &second_id], "{listed}");
    ensure!(
        sessions[0]["client_id"] == client.client_id.as_str(),
        "{listed}"
    );
    ensure!(sessions[0]["authenticated"] == true, "{listed}");
    for field in ["created_on", "last_accessed", "expires_on"] {
        ensure!(sessions[0][field].is_string(), "{field}: {listed}");
    }
    let text = data
        .run_ok(&["session", "list", "--shopper", &ann], None)
        .await?;
    ensure!(
        text.starts_with("SESSION_ID") && text.lines().count() == 3,
        "{text}"
    );
    for listing in [&listed, &text] {
        ensure!(
            !listing.contains("tsa_") && !listing.contains("tsr_"),
            "a listing shows a token: {listing}"
        );
    }

    // Every session of the shopper ends at once, on the running server too.
    let revoked = data
        .run_ok(&["session", "revoke", "--shopper", &ann, "--json"], None)
        .await?;
    let revoked: Value = serde_json::from_str(revoked.trim())?;
    ensure!(revoked["user_id"] == ann.as_str(), "{revoked}");
    ensure!(revoked["sessions_revoked_before"].is_string(), "{revoked}");
    assert_refused(&server, &first.access_token).await?;
    assert_refused(&server, &second.access_token).await?;
    let (status, _) = refresh_grant(&server, &client, &first.refresh_token).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST,
        "refresh after revoke: {status}"
    );
    session_details(&server, &bob.access_token).await?;
    let after = data
        .run_ok(&["session", "list", "--shopper", &ann, "--json"], None)
        .await?;
    ensure!(after.trim() == "[]", "{after}");

    // One session by id, then every session of the client.
    let bob_id = session_details(&server, &bob.access_token).await?["sessionId"].clone();
    let bob_id = bob_id.as_str().context("sessionId")?;
    let ended = data
        .run_ok(&["session", "revoke", "--session", bob_id], None)
        .await?;
    ensure!(ended.contains(bob_id), "{ended}");
    assert_refused(&server, &bob.access_token).await?;
    let anonymous = server.anonymous_token(&client).await?;
    data.run_ok(&["session", "revoke", "--client", &client.client_id], None)
        .await?;
    assert_refused(&server, &anonymous.access_token).await?;

    for (args, expected) in [
        (vec!["session", "revoke"], "--shopper"),
        (
            vec![
                "session",
                "revoke",
                "--shopper",
                &ann,
                "--client",
                &client.client_id,
            ],
            "cannot be used",
        ),
        (
            vec!["session", "revoke", "--shopper", "no-such-user"],
            "no-such-user",
        ),
        (
            vec!["session", "list", "--shopper", "no-such-user"],
            "no-such-user",
        ),
    ] {
        let stderr = data.run_err(&args, None).await?;
        ensure!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    Ok(())
}

#[tokio::test]
async fn gc_prints_one_summary_line_when_not_on_a_terminal() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let client = data.create_client("t", &[]).await?;
    let server = data.serve(&["--no-bootstrap-client"]).await?;
    let logged_out = server.anonymous_token(&client).await?;
    let deleted = server
        .session(reqwest::Method::DELETE, &logged_out.access_token)
        .await?;
    ensure!(deleted.status() == StatusCode::OK, "{}", deleted.status());
    let live = server.anonymous_token(&client).await?;

    // Beside the running server: the logged-out session goes, with its two tokens.
    let output = data.run(&["gc"], None).await?;
    ensure!(output.status.success(), "gc failed: {}", output.stderr);
    let line = output.stdout.trim_end();
    ensure!(output.stdout.lines().count() == 1, "{:?}", output.stdout);
    let rest = line
        .strip_prefix("gc: deleted 2 tokens, 1 sessions and 0 session tokens in ")
        .with_context(|| format!("unexpected summary {line:?}"))?;
    ensure!(
        rest.strip_suffix(" ms")
            .is_some_and(|ms| ms.parse::<u64>().is_ok()),
        "{line}"
    );
    ensure!(
        output.stderr.trim().is_empty(),
        "no progress bar off a terminal: {}",
        output.stderr
    );
    session_details(&server, &live.access_token).await?;
    assert_refused(&server, &logged_out.access_token).await?;

    let again = data.run_ok(&["gc"], None).await?;
    ensure!(
        again.starts_with("gc: deleted 0 tokens, 0 sessions and 0 session tokens in "),
        "{again}"
    );
    Ok(())
}

#[tokio::test]
async fn the_admin_api_is_served_on_its_own_listener_and_stops_with_the_server()
-> anyhow::Result<()> {
    const TOKEN: &str = "binary-test-admin-token-0123456789";
    let data = DataDir::new()?;
    let client = data.create_client("t", &[]).await?;
    let mut server = data
        .serve_with_env(
            &["--no-bootstrap-client", "--admin-listen", "127.0.0.1:0"],
            &[("TESSERA_ADMIN_TOKEN", TOKEN)],
        )
        .await?;
    let second = server.next_line().await?.context("no admin line")?;
    let admin = second
        .strip_prefix("tessera admin listening on ")
        .with_context(|| format!("unexpected second line {second:?}"))?
        .to_owned();
    ensure!(
        admin.starts_with("http://127.0.0.1:") && !admin.ends_with(":0") && admin != server.base,
        "{second}"
    );
    let pair = server.anonymous_token(&client).await?;
    let revoke = format!(
        "{admin}/admin/v1/clients/{}/sessions/revoke",
        client.client_id
    );

    let refused = server.http.post(&revoke).send().await?;
    ensure!(
        refused.status() == StatusCode::UNAUTHORIZED,
        "{}",
        refused.status()
    );
    let wrong = server
        .http
        .post(&revoke)
        .bearer_auth("wrong")
        .send()
        .await?;
    ensure!(
        wrong.status() == StatusCode::UNAUTHORIZED,
        "{}",
        wrong.status()
    );
    session_details(&server, &pair.access_token).await?;
    let public = server
        .http
        .post(server.url(&format!(
            "/admin/v1/clients/{}/sessions/revoke",
            client.client_id
        )))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    ensure!(
        public.status() == StatusCode::NOT_FOUND,
        "{}",
        public.status()
    );

    let done = server.http.post(&revoke).bearer_auth(TOKEN).send().await?;
    ensure!(done.status() == StatusCode::OK, "{}", done.status());
    let body: Value = done.json().await?;
    ensure!(body["clientId"] == client.client_id.as_str(), "{body}");
    assert_refused(&server, &pair.access_token).await?;

    let (status, rest) = server.stop().await?;
    ensure!(
        status.success(),
        "SIGTERM exit: {status}; {}",
        server.logs()
    );
    ensure!(rest.is_empty(), "printed {rest:?}");
    ensure!(
        server
            .http
            .get(format!("{admin}/admin/v1/sessions/x"))
            .send()
            .await
            .is_err(),
        "the admin listener stopped too"
    );
    ensure!(
        !server.logs().contains(TOKEN),
        "the logs hold the admin token"
    );

    // From a file instead; without any token the admin listener refuses to start.
    let token_file = data.path().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n"))?;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))?;
    let mut from_file = data
        .serve(&[
            "--no-bootstrap-client",
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token-file",
            token_file.to_str().context("path")?,
        ])
        .await?;
    let line = from_file.next_line().await?.context("no admin line")?;
    let admin = line
        .strip_prefix("tessera admin listening on ")
        .with_context(|| format!("unexpected second line {line:?}"))?;
    let listed = from_file
        .http
        .get(format!("{admin}/admin/v1/shoppers/nobody/sessions"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    ensure!(
        listed.status() == StatusCode::NOT_FOUND,
        "{}",
        listed.status()
    );
    from_file.stop().await?;

    let stderr = data
        .run_err(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ],
            None,
        )
        .await?;
    ensure!(stderr.contains("TESSERA_ADMIN_TOKEN"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn help_describes_the_session_commands_and_their_flags() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let session = data.run_ok(&["session", "--help"], None).await?;
    for word in ["revoke", "list"] {
        ensure!(
            session.contains(word),
            "`session --help` lacks {word}: {session}"
        );
    }
    let revoke = data.run_ok(&["session", "revoke", "--help"], None).await?;
    for word in ["--shopper", "--client", "--session", "--json"] {
        ensure!(revoke.contains(word), "lacks {word}: {revoke}");
    }
    let gc = data.run_ok(&["gc", "--help"], None).await?;
    ensure!(gc.contains("gc: deleted"), "{gc}");
    let serve = data.run_ok(&["serve", "--help"], None).await?;
    for word in [
        "--gc-interval-secs",
        "TESSERA_GC_INTERVAL_SECS",
        "--admin-listen",
        "TESSERA_ADMIN_LISTEN",
        "--admin-token-file",
        "TESSERA_ADMIN_TOKEN_FILE",
        "TESSERA_ADMIN_TOKEN",
    ] {
        ensure!(serve.contains(word), "`serve --help` lacks {word}: {serve}");
    }
    Ok(())
}

/// GET /.well-known/oauth-authorization-server as JSON.
async fn metadata(server: &Server) -> anyhow::Result<Value> {
    let response = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .timeout(PATIENCE)
        .send()
        .await?;
    ensure!(response.status() == StatusCode::OK, "{}", response.status());
    Ok(response.json().await?)
}

#[tokio::test]
async fn the_issuer_flag_is_published_in_the_metadata_and_checked_at_start() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let mut server = data
        .serve(&[
            "--no-bootstrap-client",
            "--issuer",
            "https://auth.example.test",
        ])
        .await?;
    let document = metadata(&server).await?;
    ensure!(
        document["issuer"] == "https://auth.example.test",
        "{document}"
    );
    for (field, path) in [
        ("token_endpoint", "/oauth20/token"),
        ("introspection_endpoint", "/oauth20/introspect"),
        ("revocation_endpoint", "/oauth20/revoke"),
    ] {
        ensure!(
            document[field] == format!("https://auth.example.test{path}").as_str(),
            "{field}: {document}"
        );
    }
    server.stop().await?;

    // TESSERA_ISSUER does the same; without either, the issuer is the bound address.
    let mut server = data
        .serve_with_env(
            &["--no-bootstrap-client"],
            &[("TESSERA_ISSUER", "https://env.example.test/")],
        )
        .await?;
    let document = metadata(&server).await?;
    ensure!(
        document["issuer"] == "https://env.example.test",
        "{document}"
    );
    server.stop().await?;
    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    let document = metadata(&server).await?;
    ensure!(document["issuer"] == server.base.as_str(), "{document}");
    ensure!(
        document["token_endpoint"] == format!("{}/oauth20/token", server.base).as_str(),
        "{document}"
    );
    server.stop().await?;

    for bad in [
        "https://auth.example.test/?tenant=1",
        "https://auth.example.test/#x",
        "auth.example.test",
    ] {
        let stderr = data
            .run_err(&["serve", "--listen", "127.0.0.1:0", "--issuer", bad], None)
            .await?;
        ensure!(stderr.contains("issuer"), "{bad}: {stderr}");
    }
    Ok(())
}

#[tokio::test]
async fn a_resource_server_created_with_the_cli_introspects_other_clients_tokens()
-> anyhow::Result<()> {
    let data = DataDir::new()?;
    let storefront = data.create_client("storefront", &[]).await?;
    let api = data
        .create_client(
            "api",
            &["--resource-server", "--grant", "client_credentials"],
        )
        .await?;
    let refused = data
        .run_err(
            &[
                "client",
                "create",
                "--name",
                "x",
                "--public",
                "--resource-server",
            ],
            None,
        )
        .await?;
    ensure!(refused.contains("--resource-server"), "{refused}");
    let listed: Value = serde_json::from_str(
        data.run_ok(&["client", "list", "--json"], None)
            .await?
            .trim(),
    )?;
    let flags: Vec<(String, bool)> = listed
        .as_array()
        .context("not an array")?
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["resource_server"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    ensure!(
        flags == [("storefront".to_owned(), false), ("api".to_owned(), true)],
        "{flags:?}"
    );
    let table = data.run_ok(&["client", "list"], None).await?;
    ensure!(table.contains("resource-server"), "{table}");

    let server = data.serve(&["--no-bootstrap-client"]).await?;
    let pair = server.anonymous_token(&storefront).await?;
    let introspect = |who: &Credentials| {
        server
            .http
            .post(server.url("/oauth20/introspect"))
            .basic_auth(&who.client_id, who.client_secret.as_deref())
            .form(&[("token", pair.access_token.as_str())])
            .timeout(PATIENCE)
            .send()
    };
    let seen: Value = introspect(&api).await?.json().await?;
    ensure!(seen["active"] == true, "{seen}");
    ensure!(seen["client_id"] == storefront.client_id.as_str(), "{seen}");
    let other = data.create_client("other", &[]).await?;
    let hidden: Value = introspect(&other).await?.json().await?;
    ensure!(hidden == serde_json::json!({"active": false}), "{hidden}");
    Ok(())
}

/// A CORS preflight for `POST /oauth20/token` from `origin`.
async fn preflight(server: &Server, origin: &str) -> anyhow::Result<reqwest::Response> {
    Ok(server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/oauth20/token"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .timeout(PATIENCE)
        .send()
        .await?)
}

#[tokio::test]
async fn cors_origins_come_from_flags_or_the_environment_and_are_checked_at_start()
-> anyhow::Result<()> {
    let data = DataDir::new()?;
    let mut server = data
        .serve(&[
            "--no-bootstrap-client",
            "--cors-origin",
            "https://Shop.Example:443",
            "--cors-origin",
            "http://localhost:3000",
        ])
        .await?;
    for origin in ["https://shop.example", "http://localhost:3000"] {
        let response = preflight(&server, origin).await?;
        ensure!(response.status() == 200, "{origin}: {}", response.status());
        ensure!(
            header(&response, "access-control-allow-origin") == origin,
            "{origin}"
        );
    }
    let refused = preflight(&server, "https://shop.example.evil.test").await?;
    ensure!(refused.status() == 405, "{}", refused.status());
    ensure!(header(&refused, "access-control-allow-origin").is_empty());
    server.stop().await?;

    let mut server = data
        .serve_with_env(
            &["--no-bootstrap-client"],
            &[(
                "TESSERA_CORS_ORIGINS",
                "https://a.example, https://b.example",
            )],
        )
        .await?;
    let response = preflight(&server, "https://b.example").await?;
    ensure!(
        header(&response, "access-control-allow-origin") == "https://b.example",
        "{:?}",
        response.headers()
    );
    server.stop().await?;

    // Without the flag there is no CORS at all.
    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    let response = preflight(&server, "https://a.example").await?;
    ensure!(response.status() == 405, "{}", response.status());
    ensure!(header(&response, "vary").is_empty());
    server.stop().await?;

    for bad in [
        "*",
        "null",
        "https://shop.example/",
        "shop.example",
        "https://*.shop.example",
    ] {
        let stderr = data
            .run_err(
                &["serve", "--listen", "127.0.0.1:0", "--cors-origin", bad],
                None,
            )
            .await?;
        ensure!(stderr.contains("--cors-origin"), "{bad}: {stderr}");
    }
    Ok(())
}

#[tokio::test]
async fn the_binary_serves_its_openapi_document_and_the_docs_from_itself() -> anyhow::Result<()> {
    let data = DataDir::new()?;
    let mut server = data.serve(&["--no-bootstrap-client"]).await?;
    let document: Value = server
        .http
        .get(server.url("/openapi.json"))
        .timeout(PATIENCE)
        .send()
        .await?
        .json()
        .await?;
    ensure!(document["openapi"] == "3.1.0", "{}", document["openapi"]);
    ensure!(
        document["paths"]["/oauth20/token"]["post"].is_object(),
        "no token endpoint in the document"
    );
    let page = server
        .http
        .get(server.url("/docs"))
        .timeout(PATIENCE)
        .send()
        .await?;
    ensure!(page.status() == 200, "{}", page.status());
    ensure!(page.text().await?.contains("swagger-ui-bundle.js"));
    let asset = server
        .http
        .get(server.url("/docs/swagger-ui-bundle.js"))
        .timeout(PATIENCE)
        .send()
        .await?;
    ensure!(asset.status() == 200, "{}", asset.status());
    ensure!(asset.bytes().await?.len() > 100_000);
    server.stop().await?;
    Ok(())
}
