//! The real `tessera` binary serving HTTPS (`--tls-cert`, `--tls-key`): the token flow
//! over TLS 1.2 and 1.3, plain HTTP refused, the handshake bound, the connection cap
//! counting TLS connections, the certificate reloaded on SIGHUP while open connections
//! keep working (and a broken reload changing nothing), and the start-up refusals.
//! Certificates are generated per test with rcgen; the client is rustls with explicit
//! protocol versions, and hyper on top of it, so that one connection can be held open
//! across a reload.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ProtocolVersion, SupportedProtocolVersion};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Bound on waiting for the binary to start, answer or stop; generous because CI shares
/// two cores with compilers. Nothing waits for time to pass: these are only ceilings.
const PATIENCE: Duration = Duration::from_secs(60);

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

/// A self-signed certificate for `localhost`: (certificate PEM, key PEM, certificate DER).
fn new_certificate() -> anyhow::Result<(String, String, CertificateDer<'static>)> {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    Ok((
        generated.cert.pem(),
        generated.signing_key.serialize_pem(),
        generated.cert.der().clone(),
    ))
}

/// One test's data folder, with the certificate and key files the server is given.
struct Setup {
    dir: TempDir,
    database_url: String,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl Setup {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let database_url = format!("sqlite://{}", dir.path().join("tessera.db").display());
        let cert_file = dir.path().join("tls.crt");
        let key_file = dir.path().join("tls.key");
        Ok(Self {
            dir,
            database_url,
            cert_file,
            key_file,
        })
    }

    fn key_file_for_tokens(&self) -> PathBuf {
        self.dir.path().join("tessera.key")
    }

    /// Writes `cert` and `key` (PEM) over the files the server reads.
    fn install(&self, cert: &str, key: &str) -> anyhow::Result<()> {
        std::fs::write(&self.cert_file, cert)?;
        std::fs::write(&self.key_file, key)?;
        Ok(())
    }

    fn tls_args(&self) -> anyhow::Result<Vec<String>> {
        Ok(vec![
            "--tls-cert".to_owned(),
            path_str(&self.cert_file)?.to_owned(),
            "--tls-key".to_owned(),
            path_str(&self.key_file)?.to_owned(),
        ])
    }

    /// `tessera serve --log-format json` with TLS and `extra`, up to its first line.
    async fn serve(&self, extra: &[&str]) -> anyhow::Result<Server> {
        let mut child = tessera()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--database-url", &self.database_url])
            .arg("--token-key-file")
            .arg(self.key_file_for_tokens())
            .args(self.tls_args()?)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start tessera serve")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let (log_tx, logs) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if log_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(PATIENCE, stdout.next_line())
            .await
            .context("the server printed nothing")??
            .context("the server exited before listening")?;
        let address = first
            .strip_prefix("tessera listening on https://")
            .with_context(|| format!("unexpected first line {first:?}"))?
            .to_owned();
        // The bootstrap client's credentials follow the first line.
        let mut bootstrap = Vec::new();
        while bootstrap.len() < 3 {
            let line = tokio::time::timeout(PATIENCE, stdout.next_line())
                .await
                .context("no bootstrap client printed")??
                .context("stdout closed")?;
            if line.trim_start().starts_with("client_") || line.starts_with("Created") {
                bootstrap.push(line);
            }
        }
        let field = |name: &str| -> anyhow::Result<String> {
            bootstrap
                .iter()
                .find_map(|line| line.trim().strip_prefix(name))
                .map(|value| value.trim().to_owned())
                .with_context(|| format!("no {name} in {bootstrap:?}"))
        };
        let client = (field("client_id:")?, field("client_secret:")?);
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Ok(Server {
            child,
            address,
            client,
            logs,
        })
    }

    /// Runs `tessera serve` with `args` (TLS arguments among them) to its end: its stderr,
    /// after checking that it failed.
    async fn serve_must_fail(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = tokio::time::timeout(
            PATIENCE,
            tessera()
                .args(["serve", "--listen", "127.0.0.1:0"])
                .args(["--database-url", &self.database_url])
                .arg("--token-key-file")
                .arg(self.key_file_for_tokens())
                .args(args)
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .context("serve did not exit")??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        ensure!(
            !output.status.success(),
            "serve {args:?} should have failed; it printed {stdout}"
        );
        ensure!(
            !stdout.contains("listening"),
            "serve {args:?} listened before failing: {stdout}"
        );
        Ok(stderr)
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("a temporary path is not UTF-8")
}

/// A running `tessera serve` over TLS, killed when dropped.
struct Server {
    child: Child,
    address: String,
    /// The bootstrap client's id and secret.
    client: (String, String),
    logs: mpsc::UnboundedReceiver<String>,
}

impl Server {
    /// Waits for a JSON log line whose message is `message`, and returns it.
    async fn log_with_message(&mut self, message: &str) -> anyhow::Result<Value> {
        loop {
            let line = tokio::time::timeout(PATIENCE, self.logs.recv())
                .await
                .with_context(|| format!("no log line {message:?}"))?
                .context("stderr closed")?;
            let json: Value = serde_json::from_str(&line)
                .with_context(|| format!("a log line is not JSON: {line}"))?;
            if json["message"] == message {
                return Ok(json);
            }
        }
    }

    /// Sends `signal` (`HUP`, ...) to the server.
    async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("the server has exited")?;
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await?;
        ensure!(kill.success(), "kill -{signal} failed");
        Ok(())
    }

    async fn tcp(&self) -> anyhow::Result<TcpStream> {
        Ok(TcpStream::connect(&self.address).await?)
    }

    /// A TLS connection trusting `roots`, offering only `versions`.
    async fn tls(
        &self,
        roots: &[&CertificateDer<'static>],
        versions: &[&'static SupportedProtocolVersion],
    ) -> anyhow::Result<TlsStream<TcpStream>> {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add((*root).clone())?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)?
        .with_root_certificates(store)
        .with_no_client_auth();
        let connector = TlsConnector::from(Arc::new(config));
        let tcp = self.tcp().await?;
        let tls = tokio::time::timeout(
            PATIENCE,
            connector.connect(ServerName::try_from("localhost")?, tcp),
        )
        .await
        .context("the TLS handshake did not finish")??;
        Ok(tls)
    }

    /// An HTTP/1.1 connection over a TLS connection trusting `roots`: the request sender
    /// and the certificate the server presented.
    async fn https(
        &self,
        roots: &[&CertificateDer<'static>],
        versions: &[&'static SupportedProtocolVersion],
    ) -> anyhow::Result<(Https, CertificateDer<'static>, ProtocolVersion)> {
        let tls = self.tls(roots, versions).await?;
        let (_, connection) = tls.get_ref();
        let presented = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .context("the server presented no certificate")?
            .clone()
            .into_owned();
        let version = connection
            .protocol_version()
            .context("no protocol version negotiated")?;
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(driver);
        Ok((Https { sender }, presented, version))
    }
}

/// One HTTP/1.1 connection over TLS.
struct Https {
    sender: SendRequest<Full<Bytes>>,
}

impl Https {
    /// Sends one request and reads the whole answer: (status, JSON body or null).
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match form {
            Some(fields) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                fields
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect::<Vec<_>>()
                    .join("&")
            }
            None => String::new(),
        };
        let response = tokio::time::timeout(
            PATIENCE,
            self.sender
                .send_request(request.body(Full::new(Bytes::from(body)))?),
        )
        .await
        .context("no answer")??;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, json))
    }

    /// The anonymous grant for `client`: the access token.
    async fn anonymous_token(&mut self, client: &(String, String)) -> anyhow::Result<String> {
        let (status, body) = self
            .send(
                "POST",
                "/oauth20/token",
                None,
                Some(&[
                    ("grant_type", "password"),
                    ("client_id", &client.0),
                    ("client_secret", &client.1),
                ]),
            )
            .await?;
        ensure!(status == 200, "token answered {status}: {body}");
        Ok(body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// The status of a session lookup with `token`.
    async fn session_status(&mut self, token: &str) -> anyhow::Result<u16> {
        Ok(self
            .send("GET", "/oauth20/access-tokens", Some(token), None)
            .await?
            .0)
    }
}

/// Reads from `stream` until the server closes it (or PATIENCE runs out, an error):
/// everything it sent.
async fn read_until_closed(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await {
            Err(_) => bail!("the server kept the connection open"),
            Ok(Ok(0)) => return Ok(received),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
            // A reset is a close too.
            Ok(Err(_)) => return Ok(received),
        }
    }
}

#[tokio::test]
async fn the_token_flow_works_over_tls_1_3_and_tls_1_2() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (cert, key, der) = new_certificate()?;
    setup.install(&cert, &key)?;
    let server = setup.serve(&[]).await?;

    for (versions, expected) in [
        (&[&rustls::version::TLS13], ProtocolVersion::TLSv1_3),
        (&[&rustls::version::TLS12], ProtocolVersion::TLSv1_2),
    ] {
        let (mut https, presented, version) = server.https(&[&der], versions).await?;
        ensure!(
            version == expected,
            "negotiated {version:?}, not {expected:?}"
        );
        ensure!(presented == der, "the server presented another certificate");
        let token = https.anonymous_token(&server.client).await?;
        ensure!(https.session_status(&token).await? == 200);
        let (status, _) = https
            .send("DELETE", "/oauth20/access-tokens", Some(&token), None)
            .await?;
        ensure!(status == 200, "logout answered {status}");
        ensure!(https.session_status(&token).await? == 401);
    }
    Ok(())
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_no_http_answer() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (cert, key, _) = new_certificate()?;
    setup.install(&cert, &key)?;
    let server = setup.serve(&[]).await?;

    let mut tcp = server.tcp().await?;
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let received = read_until_closed(&mut tcp).await?;
    ensure!(
        !received.starts_with(b"HTTP/"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&received)
    );
    Ok(())
}

#[tokio::test]
async fn a_connection_that_does_not_complete_its_handshake_is_closed() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (cert, key, der) = new_certificate()?;
    setup.install(&cert, &key)?;
    let server = setup.serve(&["--tls-handshake-timeout-ms", "200"]).await?;

    // Silent after connecting.
    let mut silent = server.tcp().await?;
    let received = read_until_closed(&mut silent).await?;
    ensure!(received.is_empty(), "the server sent {received:?}");

    // The header of a handshake record, and nothing of the ClientHello it announces.
    let mut partial = server.tcp().await?;
    partial.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00]).await?;
    read_until_closed(&mut partial).await?;

    // The listener still serves.
    let (mut https, _, _) = server.https(&[&der], &[&rustls::version::TLS13]).await?;
    https.anonymous_token(&server.client).await?;
    Ok(())
}

#[tokio::test]
async fn tls_connections_count_against_the_connection_cap() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (cert, key, der) = new_certificate()?;
    setup.install(&cert, &key)?;
    let server = setup.serve(&["--max-connections", "1"]).await?;

    let (mut held, _, _) = server.https(&[&der], &[&rustls::version::TLS13]).await?;
    held.anonymous_token(&server.client).await?;
    // Over the cap: closed before any handshake.
    let mut over = server.tcp().await?;
    let received = read_until_closed(&mut over).await?;
    ensure!(received.is_empty(), "the server sent {received:?}");
    ensure!(
        server
            .tls(&[&der], &[&rustls::version::TLS13])
            .await
            .is_err(),
        "a handshake succeeded over the connection cap"
    );
    // The held connection still works.
    held.anonymous_token(&server.client).await?;
    Ok(())
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (cert_a, key_a, der_a) = new_certificate()?;
    let (cert_b, key_b, der_b) = new_certificate()?;
    setup.install(&cert_a, &key_a)?;
    let mut server = setup.serve(&[]).await?;
    let both = [&der_a, &der_b];

    let (mut old, presented, _) = server.https(&both, &[&rustls::version::TLS13]).await?;
    ensure!(presented == der_a, "the first certificate is not A");
    let token = old.anonymous_token(&server.client).await?;

    setup.install(&cert_b, &key_b)?;
    server.signal("HUP").await?;
    let reloaded = server
        .log_with_message("reloaded the TLS certificate and key")
        .await?;
    ensure!(
        reloaded["certificate"] == path_str(&setup.cert_file)?,
        "{reloaded}"
    );
    for versions in [&[&rustls::version::TLS13], &[&rustls::version::TLS12]] {
        let (mut new, presented, _) = server.https(&both, versions).await?;
        ensure!(presented == der_b, "a new connection was not given B");
        new.anonymous_token(&server.client).await?;
    }
    // The connection opened before the reload still serves requests.
    ensure!(old.session_status(&token).await? == 200);
    old.anonymous_token(&server.client).await?;

    // A broken certificate file: the reload fails, names the file, and B stays.
    std::fs::write(
        &setup.cert_file,
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )?;
    server.signal("HUP").await?;
    let failed = server
        .log_with_message(
            "cannot reload the TLS certificate and key; still serving the previous ones",
        )
        .await?;
    let line = failed.to_string();
    ensure!(line.contains(path_str(&setup.cert_file)?), "{line}");
    ensure!(failed["level"] == "ERROR", "{line}");
    let (mut after, presented, _) = server.https(&both, &[&rustls::version::TLS13]).await?;
    ensure!(
        presented == der_b,
        "a failed reload changed the certificate"
    );
    after.anonymous_token(&server.client).await?;

    // A key that does not belong to the certificate: refused, naming both files, without
    // a byte of the key in the log.
    setup.install(&cert_b, &key_a)?;
    server.signal("HUP").await?;
    let mismatched = server
        .log_with_message(
            "cannot reload the TLS certificate and key; still serving the previous ones",
        )
        .await?
        .to_string();
    ensure!(mismatched.contains("does not match"), "{mismatched}");
    ensure!(
        mismatched.contains(path_str(&setup.key_file)?),
        "{mismatched}"
    );
    for key in [&key_a, &key_b] {
        let body = key
            .lines()
            .find(|line| !line.starts_with("-----"))
            .context("an empty key")?;
        ensure!(!mismatched.contains(body), "key material in the log");
    }
    let (_, presented, _) = server.https(&both, &[&rustls::version::TLS13]).await?;
    ensure!(
        presented == der_b,
        "a failed reload changed the certificate"
    );
    Ok(())
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_usable_certificate_and_key() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (cert_a, key_a, _) = new_certificate()?;
    let (_, key_b, _) = new_certificate()?;
    setup.install(&cert_a, &key_a)?;
    let cert = path_str(&setup.cert_file)?;
    let key = path_str(&setup.key_file)?;

    let stderr = setup.serve_must_fail(&["--tls-cert", cert]).await?;
    ensure!(stderr.contains("--tls-key"), "{stderr}");
    let stderr = setup.serve_must_fail(&["--tls-key", key]).await?;
    ensure!(stderr.contains("--tls-cert"), "{stderr}");

    let missing = setup.dir.path().join("missing.crt");
    let missing = path_str(&missing)?;
    let stderr = setup
        .serve_must_fail(&["--tls-cert", missing, "--tls-key", key])
        .await?;
    ensure!(
        stderr.contains("cannot read") && stderr.contains(missing),
        "{stderr}"
    );

    let garbage = setup.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "neither a certificate nor a key\n")?;
    let garbage = path_str(&garbage)?;
    let stderr = setup
        .serve_must_fail(&["--tls-cert", garbage, "--tls-key", key])
        .await?;
    ensure!(
        stderr.contains(garbage) && stderr.contains("certificate"),
        "{stderr}"
    );
    let stderr = setup
        .serve_must_fail(&["--tls-cert", cert, "--tls-key", garbage])
        .await?;
    ensure!(
        stderr.contains(garbage) && stderr.contains("private key"),
        "{stderr}"
    );

    let other_key = setup.dir.path().join("other.key");
    std::fs::write(&other_key, &key_b)?;
    let other_key = path_str(&other_key)?;
    let stderr = setup
        .serve_must_fail(&["--tls-cert", cert, "--tls-key", other_key])
        .await?;
    ensure!(stderr.contains("does not match"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_a_tls_server_with_an_open_connection() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (cert, key, der) = new_certificate()?;
    setup.install(&cert, &key)?;
    let mut server = setup.serve(&[]).await?;

    let (mut held, _, _) = server.https(&[&der], &[&rustls::version::TLS13]).await?;
    held.anonymous_token(&server.client).await?;
    server.signal("TERM").await?;
    let status = tokio::time::timeout(PATIENCE, server.child.wait())
        .await
        .context("no exit after SIGTERM with an idle TLS connection open")??;
    ensure!(status.success(), "exited with {status}");
    Ok(())
}
