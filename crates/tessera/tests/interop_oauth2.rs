//! Interoperability with the `oauth2` crate, an OAuth 2.0 client library Tessera's authors
//! did not write: the real `tessera` binary on port 0, driven only through the crate's own
//! API (client credentials with HTTP Basic and with request-body authentication, refresh
//! rotation, RFC 7662 introspection, RFC 7009 revocation, and its typed errors).
//!
//! The crate has no RFC 8414 discovery, so the endpoint URLs it is configured with are
//! read from `/.well-known/oauth-authorization-server`; discovery through a library's own
//! API is covered by the Python `authlib` tests in `interop/python/`.
//!
//! The crate refuses a revocation endpoint that is not `https` (RFC 7009 §2: "Clients MUST
//! verify that the URL is an HTTPS URL"). So the server runs as it is deployed behind a
//! TLS-terminating proxy, with `--issuer https://...`, and the HTTP client handed to the
//! crate ([`TlsTerminator`]) stands in for that proxy: it forwards each request the crate
//! built, unchanged but for the scheme and authority, to the server's loopback address.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRequestTokenError,
    BasicRevocationErrorResponse, BasicTokenResponse, BasicTokenType,
};
use oauth2::{
    AccessToken, AsyncHttpClient, AuthType, Client, ClientId, ClientSecret, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpClientError, HttpRequest, HttpResponse, IntrospectionUrl,
    RefreshToken, RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername,
    RevocableToken as _, RevocationErrorResponseType, RevocationUrl, StandardRevocableToken,
    StandardTokenIntrospectionResponse, TokenIntrospectionResponse as _, TokenResponse as _,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Bound on waiting for the binary to start, answer or stop; generous because CI shares
/// two cores with compilers. Nothing waits for time to pass: these are only ceilings.
const PATIENCE: Duration = Duration::from_secs(60);

/// The partner's id for the shopper the tests sign in.
const EXTERNAL_REFERENCE_ID: &str = "interop-shopper-1";

/// The public URL the server is told it is reached at (`--issuer`).
const ISSUER: &str = "https://tessera.test";

/// Tessera's introspection answer names the session (`sid`), which RFC 7662 leaves to
/// extensions: the crate's extension point for such fields.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct SessionField {
    sid: Option<String>,
}

impl ExtraTokenFields for SessionField {}

type Introspection = StandardTokenIntrospectionResponse<SessionField, BasicTokenType>;

/// The crate's client type with the token, introspection and revocation endpoints set.
type OAuthClient = Client<
    BasicErrorResponse,
    BasicTokenResponse,
    Introspection,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
    EndpointSet,
>;

/// What a failed token request gives back.
type TokenError = BasicRequestTokenError<HttpClientError<oauth2::reqwest::Error>>;

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

/// One test's data folder, store, clients and running server.
struct Fixture {
    _dir: TempDir,
    server: Server,
    /// The endpoint URLs from the server's RFC 8414 metadata.
    endpoints: Endpoints,
    /// A confidential client allowed the default grants.
    client: Credentials,
    /// A second client, whose tokens the first must not see or revoke.
    other: Credentials,
    /// The shopper registered under [`EXTERNAL_REFERENCE_ID`].
    shopper_user_id: String,
    http: TlsTerminator,
}

#[derive(Clone, Debug)]
struct Credentials {
    client_id: String,
    client_secret: String,
}

#[derive(Clone, Debug)]
struct Endpoints {
    token: String,
    introspection: String,
    revocation: String,
}

/// A running `tessera serve`; killed when dropped, so a failing test leaves nothing
/// behind. Its stderr goes to a file, read for failure messages.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit, which must be clean.
    async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the server has already exited")?;
        let kill = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await?;
        ensure!(kill.success(), "kill -TERM failed");
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .context("no exit after SIGTERM")??;
        ensure!(status.success(), "exit {status}; stderr: {}", self.logs());
        Ok(())
    }
}

/// The HTTP client given to the crate: the crate's own `reqwest` integration, behind a
/// stand-in for the TLS-terminating proxy a deployment puts in front of Tessera. Requests
/// for [`ISSUER`] go to the server's loopback address with their path, query, headers and
/// body untouched; any other URL is an error.
struct TlsTerminator {
    http: oauth2::reqwest::Client,
    upstream: String,
}

impl TlsTerminator {
    fn new(upstream: &str) -> anyhow::Result<Self> {
        // As the crate's documentation advises: no redirects followed. No proxy either,
        // so loopback traffic stays on loopback whatever the environment says.
        let http = oauth2::reqwest::Client::builder()
            .redirect(oauth2::reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(PATIENCE)
            .build()?;
        Ok(Self {
            http,
            upstream: upstream.to_owned(),
        })
    }

    fn forward(
        &self,
        request: HttpRequest,
    ) -> Result<HttpRequest, HttpClientError<oauth2::reqwest::Error>> {
        let (mut parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let rest = url
            .strip_prefix(ISSUER)
            .filter(|rest| rest.starts_with('/'))
            .ok_or_else(|| HttpClientError::Other(format!("{url} is not under {ISSUER}")))?;
        parts.uri = format!("{}{rest}", self.upstream)
            .parse()
            .map_err(|e| HttpClientError::Http(oauth2::http::Error::from(e)))?;
        Ok(HttpRequest::from_parts(parts, body))
    }
}

impl<'c> AsyncHttpClient<'c> for TlsTerminator {
    type Error = HttpClientError<oauth2::reqwest::Error>;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        match self.forward(request) {
            Ok(request) => self.http.call(request),
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }
}

/// Runs an admin command with `--json` on the store and parses what it printed.
async fn admin(database_url: &str, args: &[&str]) -> anyhow::Result<Value> {
    let output = tessera()
        .args(args)
        .args(["--json", "--database-url", database_url])
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(PATIENCE, output)
        .await
        .with_context(|| format!("tessera {args:?} did not finish"))??;
    ensure!(
        output.status.success(),
        "tessera {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

async fn create_client(database_url: &str, name: &str) -> anyhow::Result<Credentials> {
    let json = admin(database_url, &["client", "create", "--name", name]).await?;
    Ok(Credentials {
        client_id: json["client_id"].as_str().context("client_id")?.to_owned(),
        client_secret: json["client_secret"]
            .as_str()
            .context("client_secret")?
            .to_owned(),
    })
}

/// Starts `tessera serve` on port 0 and reads the bound address from its first line.
async fn serve(dir: &TempDir, database_url: &str) -> anyhow::Result<Server> {
    let log = dir.path().join("stderr.log");
    let mut child = tessera()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-bootstrap-client"])
        .args(["--issuer", ISSUER])
        .args(["--database-url", database_url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("cannot start tessera serve")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .context("the server printed no line")??;
    // Nothing else is expected on stdout; draining it keeps the server from ever blocking.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut server = Server {
        child,
        base: String::new(),
        log,
    };
    let Some(first) = first else {
        bail!("the server printed nothing; stderr: {}", server.logs());
    };
    server.base = first
        .strip_prefix("tessera listening on ")
        .with_context(|| format!("unexpected first line {first:?}"))?
        .to_owned();
    Ok(server)
}

/// The endpoints from the metadata document (RFC 8414 §3), which must be absolute URLs
/// under the configured issuer.
async fn discover(base: &str) -> anyhow::Result<Endpoints> {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .timeout(PATIENCE)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "metadata: {}",
        response.status()
    );
    let metadata: Value = response.json().await?;
    ensure!(metadata["issuer"] == ISSUER, "issuer in {metadata}");
    let endpoint = |name: &str| -> anyhow::Result<String> {
        let url = metadata[name]
            .as_str()
            .with_context(|| format!("{name} missing from {metadata}"))?;
        ensure!(
            url.starts_with(&format!("{ISSUER}/")),
            "{name} is not under the issuer: {url}"
        );
        Ok(url.to_owned())
    };
    Ok(Endpoints {
        token: endpoint("token_endpoint")?,
        introspection: endpoint("introspection_endpoint")?,
        revocation: endpoint("revocation_endpoint")?,
    })
}

impl Fixture {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let database_url = format!("sqlite://{}", dir.path().join("t.db").display());
        let client = create_client(&database_url, "interop").await?;
        let other = create_client(&database_url, "interop-other").await?;
        let shopper = admin(
            &database_url,
            &[
                "shopper",
                "create",
                "--external-reference-id",
                EXTERNAL_REFERENCE_ID,
            ],
        )
        .await?;
        let shopper_user_id = shopper["user_id"].as_str().context("user_id")?.to_owned();
        let server = serve(&dir, &database_url).await?;
        let endpoints = discover(&server.base).await?;
        let http = TlsTerminator::new(&server.base)?;
        Ok(Self {
            _dir: dir,
            server,
            endpoints,
            client,
            other,
            shopper_user_id,
            http,
        })
    }

    /// An `oauth2` client for `credentials` that authenticates with `auth_type`.
    fn oauth(&self, credentials: &Credentials, auth_type: AuthType) -> anyhow::Result<OAuthClient> {
        Ok(Client::new(ClientId::new(credentials.client_id.clone()))
            .set_client_secret(ClientSecret::new(credentials.client_secret.clone()))
            .set_auth_type(auth_type)
            .set_token_uri(TokenUrl::new(self.endpoints.token.clone())?)
            .set_introspection_url(IntrospectionUrl::new(self.endpoints.introspection.clone())?)
            .set_revocation_url(RevocationUrl::new(self.endpoints.revocation.clone())?))
    }

    /// The same client with a secret it was never given.
    fn with_wrong_secret(&self, auth_type: AuthType) -> anyhow::Result<OAuthClient> {
        let wrong = Credentials {
            client_id: self.client.client_id.clone(),
            client_secret: format!("{}x", self.client.client_secret),
        };
        self.oauth(&wrong, auth_type)
    }

    /// An anonymous (limited) session through the password grant in its legacy
    /// `anonymous` / `anonymous` form, the only one the crate's `exchange_password` can
    /// express (it always sends a username).
    async fn anonymous(&self, oauth: &OAuthClient) -> anyhow::Result<BasicTokenResponse> {
        oauth
            .exchange_password(
                &ResourceOwnerUsername::new("anonymous".to_owned()),
                &ResourceOwnerPassword::new("anonymous".to_owned()),
            )
            .request_async(&self.http)
            .await
            .map_err(|e| self.explain(e))
    }

    async fn introspect(
        &self,
        oauth: &OAuthClient,
        token: &str,
        hint: Option<&str>,
    ) -> anyhow::Result<Introspection> {
        let token = AccessToken::new(token.to_owned());
        let mut request = oauth.introspect(&token);
        if let Some(hint) = hint {
            request = request.set_token_type_hint(hint);
        }
        request
            .request_async(&self.http)
            .await
            .map_err(|e| self.explain(e))
    }

    /// A failed request as a readable error, with the server's log beside it.
    fn explain<E: std::error::Error + Send + Sync + 'static>(&self, error: E) -> anyhow::Error {
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        anyhow::anyhow!("{chain}; server stderr: {}", self.server.logs())
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}

/// The RFC 6749 §5.2 error code a token request failed with.
fn error_code(result: Result<BasicTokenResponse, TokenError>) -> anyhow::Result<String> {
    match result {
        Ok(_) => bail!("the request should have failed"),
        Err(RequestTokenError::ServerResponse(response)) => {
            Ok(response.error().as_ref().to_owned())
        }
        Err(other) => bail!("expected an error response, got {other:?}"),
    }
}

/// Checks the RFC 7662 §2.2 answer for an active token of `client_id`.
fn assert_active(
    introspection: &Introspection,
    client_id: &str,
    token_type: &BasicTokenType,
) -> anyhow::Result<()> {
    ensure!(introspection.active(), "inactive: {introspection:?}");
    ensure!(
        introspection.client_id().map(|id| id.as_str()) == Some(client_id),
        "client_id in {introspection:?}"
    );
    ensure!(
        introspection.token_type() == Some(token_type),
        "token_type in {introspection:?}"
    );
    let (Some(exp), Some(iat)) = (introspection.exp(), introspection.iat()) else {
        bail!("exp and iat missing from {introspection:?}");
    };
    ensure!(exp > iat, "exp {exp} is not after iat {iat}");
    ensure!(
        introspection.extra_fields().sid.is_some(),
        "sid missing from {introspection:?}"
    );
    Ok(())
}

/// Checks RFC 7662 §2.2 for an inactive token: `active` false, and nothing else.
fn assert_inactive(introspection: &Introspection) -> anyhow::Result<()> {
    ensure!(!introspection.active(), "active: {introspection:?}");
    ensure!(
        introspection.client_id().is_none()
            && introspection.token_type().is_none()
            && introspection.sub().is_none()
            && introspection.exp().is_none()
            && introspection.iat().is_none()
            && introspection.username().is_none()
            && introspection.scopes().is_none()
            && introspection.extra_fields().sid.is_none(),
        "an inactive token must reveal nothing: {introspection:?}"
    );
    Ok(())
}

#[tokio::test]
async fn client_credentials_work_with_basic_and_with_request_body_authentication()
-> anyhow::Result<()> {
    let fixture = Fixture::start().await?;
    for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
        let oauth = fixture.oauth(&fixture.client, auth_type.clone())?;
        let token = oauth
            .exchange_client_credentials()
            .request_async(&fixture.http)
            .await
            .map_err(|e| fixture.explain(e))?;
        ensure!(
            *token.token_type() == BasicTokenType::Bearer,
            "{auth_type:?}: token_type {:?}",
            token.token_type()
        );
        ensure!(
            token.expires_in().is_some_and(|d| !d.is_zero()),
            "{auth_type:?}: expires_in {:?}",
            token.expires_in()
        );
        ensure!(
            token.refresh_token().is_none(),
            "{auth_type:?}: a client token carries no refresh token"
        );
        let introspection = fixture
            .introspect(&oauth, token.access_token().secret(), None)
            .await?;
        assert_active(
            &introspection,
            &fixture.client.client_id,
            &BasicTokenType::Bearer,
        )
        .with_context(|| format!("{auth_type:?}"))?;
    }
    fixture.stop().await
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_on_every_endpoint_with_either_authentication()
-> anyhow::Result<()> {
    let fixture = Fixture::start().await?;
    let good = fixture.oauth(&fixture.client, AuthType::BasicAuth)?;
    let live = fixture
        .anonymous(&good)
        .await?
        .access_token()
        .secret()
        .clone();
    for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
        let wrong = fixture.with_wrong_secret(auth_type.clone())?;
        let token = wrong
            .exchange_client_credentials()
            .request_async(&fixture.http)
            .await;
        ensure!(
            error_code(token)? == "invalid_client",
            "{auth_type:?}: token endpoint"
        );

        let token = AccessToken::new(live.clone());
        match wrong.introspect(&token).request_async(&fixture.http).await {
            Err(RequestTokenError::ServerResponse(response))
                if *response.error() == BasicErrorResponseType::InvalidClient => {}
            other => bail!("{auth_type:?}: introspection answered {other:?}"),
        }

        match wrong
            .revoke_token(StandardRevocableToken::AccessToken(token))?
            .request_async(&fixture.http)
            .await
        {
            Err(RequestTokenError::ServerResponse(response))
                if *response.error()
                    == RevocationErrorResponseType::Basic(
                        BasicErrorResponseType::InvalidClient,
                    ) => {}
            other => bail!("{auth_type:?}: revocation answered {other:?}"),
        }
    }
    // Nothing the wrong secret sent had any effect.
    let introspection = fixture.introspect(&good, &live, None).await?;
    assert_active(
        &introspection,
        &fixture.client.client_id,
        &BasicTokenType::Bearer,
    )?;
    fixture.stop().await
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_and_a_replay_is_invalid_grant() -> anyhow::Result<()> {
    let fixture = Fixture::start().await?;
    for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
        let oauth = fixture.oauth(&fixture.client, auth_type.clone())?;
        let first = fixture.anonymous(&oauth).await?;
        let first_refresh = first
            .refresh_token()
            .context("an anonymous session has a refresh token")?
            .clone();

        let second = oauth
            .exchange_refresh_token(&first_refresh)
            .request_async(&fixture.http)
            .await
            .map_err(|e| fixture.explain(e))?;
        let second_refresh = second
            .refresh_token()
            .context("a refresh answers with a new refresh token")?
            .clone();
        ensure!(
            second_refresh.secret() != first_refresh.secret(),
            "{auth_type:?}: the refresh token was not rotated"
        );
        ensure!(
            second.access_token().secret() != first.access_token().secret(),
            "{auth_type:?}: the access token was not renewed"
        );
        let renewed = fixture
            .introspect(&oauth, second.access_token().secret(), None)
            .await?;
        assert_active(&renewed, &fixture.client.client_id, &BasicTokenType::Bearer)?;
        let consumed = fixture
            .introspect(&oauth, first_refresh.secret(), Some("refresh_token"))
            .await?;
        assert_inactive(&consumed).context("the consumed refresh token")?;

        let replay = oauth
            .exchange_refresh_token(&first_refresh)
            .request_async(&fixture.http)
            .await;
        ensure!(
            error_code(replay)? == "invalid_grant",
            "{auth_type:?}: replayed refresh token"
        );
        // Reuse detection (RFC 9700 §4.14.2): the replay ended the whole session.
        for token in [second.access_token().secret(), second_refresh.secret()] {
            let after = fixture.introspect(&oauth, token, None).await?;
            assert_inactive(&after).with_context(|| format!("{auth_type:?}: after a replay"))?;
        }
    }
    fixture.stop().await
}

#[tokio::test]
async fn a_partner_shopper_session_refreshes_and_names_its_shopper() -> anyhow::Result<()> {
    let fixture = Fixture::start().await?;
    let oauth = fixture.oauth(&fixture.client, AuthType::BasicAuth)?;
    let token = oauth
        .exchange_client_credentials()
        .add_extra_param("dr_external_reference_id", EXTERNAL_REFERENCE_ID)
        .request_async(&fixture.http)
        .await
        .map_err(|e| fixture.explain(e))?;
    let refresh = token
        .refresh_token()
        .context("a shopper session has a refresh token")?;
    let introspection = fixture
        .introspect(&oauth, token.access_token().secret(), None)
        .await?;
    assert_active(
        &introspection,
        &fixture.client.client_id,
        &BasicTokenType::Bearer,
    )?;
    ensure!(
        introspection.sub() == Some(fixture.shopper_user_id.as_str()),
        "sub in {introspection:?}"
    );

    let refreshed = oauth
        .exchange_refresh_token(refresh)
        .request_async(&fixture.http)
        .await
        .map_err(|e| fixture.explain(e))?;
    let after = fixture
        .introspect(&oauth, refreshed.access_token().secret(), None)
        .await?;
    ensure!(
        after.sub() == Some(fixture.shopper_user_id.as_str())
            && after.extra_fields().sid == introspection.extra_fields().sid,
        "a refresh keeps the shopper and the session: {after:?}"
    );

    let unknown = oauth
        .exchange_client_credentials()
        .add_extra_param("dr_external_reference_id", "nobody-by-that-id")
        .request_async(&fixture.http)
        .await;
    ensure!(
        error_code(unknown)? == "invalid_grant",
        "unknown external id"
    );
    fixture.stop().await
}

#[tokio::test]
async fn introspection_tells_active_tokens_from_everything_else() -> anyhow::Result<()> {
    let fixture = Fixture::start().await?;
    let oauth = fixture.oauth(&fixture.client, AuthType::BasicAuth)?;
    let by_body = fixture.oauth(&fixture.client, AuthType::RequestBody)?;
    let other = fixture.oauth(&fixture.other, AuthType::BasicAuth)?;
    let tokens = fixture.anonymous(&oauth).await?;
    let access = tokens.access_token().secret();
    let refresh = tokens.refresh_token().context("no refresh token")?.secret();

    for client in [&oauth, &by_body] {
        let introspection = fixture.introspect(client, access, None).await?;
        assert_active(
            &introspection,
            &fixture.client.client_id,
            &BasicTokenType::Bearer,
        )?;
        ensure!(
            introspection.sub().is_some(),
            "an anonymous visitor is a shopper too: {introspection:?}"
        );
    }

    let access_session = fixture
        .introspect(&oauth, access, Some("access_token"))
        .await?
        .extra_fields()
        .sid
        .clone();
    let of_refresh = fixture
        .introspect(&oauth, refresh, Some("refresh_token"))
        .await?;
    assert_active(
        &of_refresh,
        &fixture.client.client_id,
        &BasicTokenType::Extension("refresh_token".to_owned()),
    )?;
    ensure!(
        of_refresh.extra_fields().sid == access_session,
        "a refresh token belongs to the session of its access token"
    );
    // A wrong hint is only a hint (RFC 7662 §2.1).
    let misled = fixture
        .introspect(&oauth, refresh, Some("access_token"))
        .await?;
    ensure!(misled.active(), "a wrong hint hid a live refresh token");

    for garbage in ["not-a-token", "tsa_x_y", &format!("{access}x")] {
        let introspection = fixture.introspect(&oauth, garbage, None).await?;
        assert_inactive(&introspection).with_context(|| format!("token {garbage:?}"))?;
    }
    // An empty `token` counts as none at all (RFC 6749 §3.1), which RFC 7662 §2.1 requires.
    let empty = AccessToken::new(String::new());
    match oauth.introspect(&empty).request_async(&fixture.http).await {
        Err(RequestTokenError::ServerResponse(response))
            if *response.error() == BasicErrorResponseType::InvalidRequest => {}
        other => bail!("an empty token was answered with {other:?}"),
    }
    for token in [access, refresh] {
        let introspection = fixture.introspect(&other, token, None).await?;
        assert_inactive(&introspection).context("another client's token")?;
    }
    fixture.stop().await
}

#[tokio::test]
async fn revocation_ends_tokens_and_refuses_another_clients() -> anyhow::Result<()> {
    let fixture = Fixture::start().await?;
    let oauth = fixture.oauth(&fixture.client, AuthType::BasicAuth)?;
    let by_body = fixture.oauth(&fixture.client, AuthType::RequestBody)?;
    let other = fixture.oauth(&fixture.other, AuthType::BasicAuth)?;

    // An access token: revoked, as by DELETE on the session-details path.
    let first = fixture.anonymous(&oauth).await?;
    oauth
        .revoke_token(first.access_token().into())?
        .request_async(&fixture.http)
        .await
        .map_err(|e| fixture.explain(e))?;
    let after = fixture
        .introspect(&oauth, first.access_token().secret(), None)
        .await?;
    assert_inactive(&after).context("a revoked access token")?;

    // A refresh token, with request-body authentication: the whole session ends.
    let second = fixture.anonymous(&oauth).await?;
    let second_refresh: &RefreshToken = second.refresh_token().context("no refresh token")?;
    by_body
        .revoke_token(second_refresh.into())?
        .request_async(&fixture.http)
        .await
        .map_err(|e| fixture.explain(e))?;
    for token in [second.access_token().secret(), second_refresh.secret()] {
        let after = fixture.introspect(&oauth, token, None).await?;
        assert_inactive(&after).context("a token of a session whose refresh token was revoked")?;
    }

    // Tokens Tessera never issued: 200 (RFC 7009 §2.2).
    for unknown in ["not-a-token", "tsa_x_y"] {
        oauth
            .revoke_token(AccessToken::new(unknown.to_owned()).into())?
            .request_async(&fixture.http)
            .await
            .map_err(|e| fixture.explain(e))?;
    }

    // Another client's token: refused, and it stays valid.
    let third = fixture.anonymous(&oauth).await?;
    for token in [
        StandardRevocableToken::from(third.access_token()),
        StandardRevocableToken::from(third.refresh_token().context("no refresh token")?),
    ] {
        let refused = other
            .revoke_token(token.clone())?
            .request_async(&fixture.http)
            .await;
        ensure!(
            matches!(
                &refused,
                Err(RequestTokenError::ServerResponse(response))
                    if *response.error()
                        == RevocationErrorResponseType::Basic(
                            BasicErrorResponseType::UnauthorizedClient
                        )
            ),
            "another client revoked {:?}: {refused:?}",
            token.type_hint()
        );
    }
    let still = fixture
        .introspect(&oauth, third.access_token().secret(), None)
        .await?;
    assert_active(&still, &fixture.client.client_id, &BasicTokenType::Bearer)?;
    fixture.stop().await
}
