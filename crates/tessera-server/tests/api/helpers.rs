//! `spawn_app` and typed request helpers shared by the API tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use tempfile::TempDir;
use tessera_core::admin::{Admin, NewClient, NewShopper};
use tessera_core::client::{ClientRecord, ClientSecretHash, Grant, GrantSet};
use tessera_core::logout::{LoggedOut, Logout};
use tessera_core::migration::{MigrationBatch, MigrationKey, MigrationKind, MigrationStore};
use tessera_core::rotation::{RefreshExchange, RefreshOutcome};
use tessera_core::session::{SessionRecord, TokenLookup, TokenRecord};
use tessera_core::session_admin::{
    AdminToken, DeletedRows, SessionAdmin, SessionLookup, SessionOwner, SessionSweep, TidyUp,
    TokenSweep,
};
use tessera_core::session_token::{SessionTokenLookup, SessionTokenRecord};
use tessera_core::shopper::ShopperRecord;
use tessera_core::store::{
    ChangeSignal, ClientStore, SessionAdminStore, SessionJoinStore, SessionStore, ShopperStore,
};
use tessera_core::token::{TokenHash, TokenKeys};
use tessera_core::{Clock, ManualClock, ServiceConfig, Store, StoreError, Timestamp, TokenService};
use tessera_server::{HttpLimits, ServerConfig};
use tessera_store::StoreOptions;
use tessera_store::test_support::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// 2026-11-27T12:00:00Z.
pub const START: Timestamp = Timestamp(1_795_780_800_000);

pub const NODE_NAME: &str = "test-node";

/// A confidential client's credentials.
#[derive(Clone)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

impl Credentials {
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.id, self.secret))
        )
    }
}

/// A running server and what the tests need to drive it.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    /// The store as the service writes it: through its lookup cache, when it has one.
    pub store: Arc<dyn Store>,
    /// Token lookups that reached the real store (a cache hit does not count).
    pub lookups: Arc<AtomicUsize>,
    /// `lastAccessed` writes that reached the real store.
    pub touches: Arc<AtomicUsize>,
    /// Client reads that reached the real store (a cache hit does not count).
    pub client_reads: Arc<AtomicUsize>,
    /// Shopper reads by external reference id that reached the real store.
    pub shopper_reads: Arc<AtomicUsize>,
    /// Writes made by another process, as the SQLite store's change signal reports them:
    /// a test that writes through a second store on the same file adds one.
    pub foreign_writes: Arc<AtomicU64>,
    /// Times the lookup cache asked whether another process wrote (SQLite only).
    pub change_looks: Arc<AtomicUsize>,
    /// Held for writing, it stops every token lookup after the real store has answered and
    /// before that answer goes back up: a read that a concurrent write makes stale.
    pub lookup_gate: Arc<tokio::sync::RwLock<()>>,
    /// As `lookup_gate`, for client reads.
    pub client_gate: Arc<tokio::sync::RwLock<()>>,
    pub admin: Admin,
    pub client: Credentials,
    pub public_client_id: String,
    pub database: std::path::PathBuf,
    pub keys: TokenKeys,
    /// The text of the key file `keys` came from.
    pub key_file: tessera_core::Secret,
    /// The administration API, on its own port (`Authorization: Bearer` [`ADMIN_TOKEN`]).
    pub admin_address: String,
    /// The core behind the administration API, for driving the tidy-up and clean-up.
    pub session_admin: Arc<SessionAdmin>,
    shutdown: Option<oneshot::Sender<()>>,
    admin_shutdown: Option<oneshot::Sender<()>>,
    _dir: TempDir,
    /// The PostgreSQL database behind the store when `TESSERA_TEST_STORE=postgres`,
    /// dropped with the app.
    _postgres: Option<TestDatabase>,
}

/// The admin token `spawn_app` configures.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(shutdown) = self.admin_shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(StoreOptions::default()).await
}

pub async fn spawn_app_with(options: StoreOptions) -> TestApp {
    spawn_app_with_options_and_config(options, service_config()).await
}

/// The service settings `spawn_app` uses: every default, and the test node name.
pub fn service_config() -> ServiceConfig {
    ServiceConfig::new(NODE_NAME)
}

/// An app whose token service runs with `config` (start from [`service_config`]).
pub async fn spawn_app_with_config(config: ServiceConfig) -> TestApp {
    spawn_app_with_options_and_config(StoreOptions::default(), config).await
}

pub async fn spawn_app_with_options_and_config(
    options: StoreOptions,
    config: ServiceConfig,
) -> TestApp {
    match try_spawn(
        options,
        config,
        ServerConfig::default(),
        HttpLimits::default(),
    )
    .await
    {
        Ok(app) => app,
        Err(error) => panic!("test app did not start: {error}"),
    }
}

/// An app whose public router runs with `server` (CORS origins, ...).
pub async fn spawn_app_with_server_config(server: ServerConfig) -> TestApp {
    match try_spawn(
        StoreOptions::default(),
        service_config(),
        server,
        HttpLimits::default(),
    )
    .await
    {
        Ok(app) => app,
        Err(error) => panic!("test app did not start: {error}"),
    }
}

/// An app whose token service runs with `config` and whose public router with `server`.
pub async fn spawn_app_with_configs(config: ServiceConfig, server: ServerConfig) -> TestApp {
    match try_spawn(
        StoreOptions::default(),
        config,
        server,
        HttpLimits::default(),
    )
    .await
    {
        Ok(app) => app,
        Err(error) => panic!("test app did not start: {error}"),
    }
}

/// An app whose public listener enforces `limits` (RELIABILITY P15).
pub async fn spawn_app_with_http_limits(limits: HttpLimits) -> TestApp {
    match try_spawn(
        StoreOptions::default(),
        service_config(),
        ServerConfig::default(),
        limits,
    )
    .await
    {
        Ok(app) => app,
        Err(error) => panic!("test app did not start: {error}"),
    }
}

async fn try_spawn(
    options: StoreOptions,
    config: ServiceConfig,
    server: ServerConfig,
    limits: HttpLimits,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let database = dir.path().join("tessera.db");
    // `TESSERA_TEST_STORE=postgres` runs the same tests on a fresh PostgreSQL database
    // (`.ci/test` does, after the SQLite run).
    let postgres = match std::env::var("TESSERA_TEST_STORE").as_deref() {
        Ok("postgres") => Some(
            TestDatabase::create()
                .await?
                .ok_or("TESSERA_TEST_STORE=postgres, but PostgreSQL is not reachable")?,
        ),
        _ => None,
    };
    let url = match &postgres {
        Some(postgres) => postgres.url().to_owned(),
        None => format!("sqlite://{}", database.display()),
    };
    // Metered as `tessera serve` meters it, so every test also runs through the decorator.
    let real = tessera_store::MeteredStore::wrap(tessera_store::open(&url, &options).await?);
    let lookups = Arc::new(AtomicUsize::new(0));
    let foreign_writes = Arc::new(AtomicU64::new(0));
    let change_looks = Arc::new(AtomicUsize::new(0));
    // SQLite tells of other processes' writes, so lookups are cached; PostgreSQL stays
    // strict whatever its store says.
    let signal = match &postgres {
        Some(_) => real.change_signal(),
        None => Some(Arc::new(ForeignWrites {
            store: real.change_signal(),
            counted: Arc::clone(&foreign_writes),
            looks: Arc::clone(&change_looks),
        }) as Arc<dyn ChangeSignal>),
    };
    let lookup_gate = Arc::new(tokio::sync::RwLock::new(()));
    let client_gate = Arc::new(tokio::sync::RwLock::new(()));
    let touches = Arc::new(AtomicUsize::new(0));
    let client_reads = Arc::new(AtomicUsize::new(0));
    let shopper_reads = Arc::new(AtomicUsize::new(0));
    let store: Arc<dyn Store> = Arc::new(CountingStore {
        inner: real,
        lookups: Arc::clone(&lookups),
        signal,
        lookup_gate: Arc::clone(&lookup_gate),
        client_gate: Arc::clone(&client_gate),
        touches: Arc::clone(&touches),
        client_reads: Arc::clone(&client_reads),
        shopper_reads: Arc::clone(&shopper_reads),
    });
    let clock = ManualClock::new(START);
    let key_file = TokenKeys::generate_file()?;
    let keys = TokenKeys::parse(key_file.expose())?;
    let service = TokenService::new(
        store,
        keys.clone(),
        Arc::new(clock.clone()) as Arc<dyn Clock>,
        config,
    );
    // Every writer goes through the service's store, as in `tessera serve`.
    let store = Arc::clone(service.store());
    let admin = Admin::new(Arc::clone(&store), Arc::new(clock.clone()));
    let (confidential, secret) = admin.create_client(NewClient::named("storefront")).await?;
    let secret = secret.ok_or("a confidential client has a secret")?;
    let mut public = NewClient::named("browser");
    public.public = true;
    let (public, _) = admin.create_client(public).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let (shutdown, stopped) = oneshot::channel::<()>();
    // The metadata's issuer defaults to the bound address, as `tessera serve` does.
    let server = ServerConfig {
        issuer: Some(match server.issuer {
            Some(issuer) => issuer,
            None => tessera_server::Issuer::parse(&address)?,
        }),
        ..server
    };
    let router = tessera_server::router_with(Arc::new(service), server);
    tokio::spawn(async move {
        let _ = tessera_server::serve_with_limits(listener, router, limits, async {
            let _ = stopped.await;
        })
        .await;
    });
    let session_admin = Arc::new(
        SessionAdmin::new(Arc::clone(&store), Arc::new(clock.clone())).with_background_tidy_up(),
    );
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let admin_address = format!("http://{}", admin_listener.local_addr()?);
    let (admin_shutdown, admin_stopped) = oneshot::channel::<()>();
    let admin_router = tessera_server::admin_router(
        Arc::clone(&session_admin),
        AdminToken::new(&tessera_core::Secret::new(ADMIN_TOKEN))?,
    );
    tokio::spawn(async move {
        let _ = tessera_server::serve(admin_listener, admin_router, async {
            let _ = admin_stopped.await;
        })
        .await;
    });
    Ok(TestApp {
        address,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        clock,
        store,
        lookups,
        touches,
        client_reads,
        shopper_reads,
        foreign_writes,
        change_looks,
        lookup_gate,
        client_gate,
        admin,
        client: Credentials {
            id: confidential.id,
            secret: secret.expose().to_owned(),
        },
        public_client_id: public.id,
        database,
        keys,
        key_file,
        admin_address,
        session_admin,
        shutdown: Some(shutdown),
        admin_shutdown: Some(admin_shutdown),
        _dir: dir,
        _postgres: postgres,
    })
}

/// A response read whole.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn error_code(&self) -> Option<&str> {
        self.body["error"].as_str()
    }

    /// The `code` of a Digital River style error body.
    pub fn dr_code(&self) -> Option<&str> {
        self.body["errors"]["error"][0]["code"].as_str()
    }

    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_default().to_owned()
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

impl TestApp {
    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs a form to the token endpoint with the given `Authorization` header.
    pub async fn token_with(&self, authorization: Option<&str>, form: &str) -> Answer {
        self.token_at("/oauth20/token", authorization, form).await
    }

    pub async fn token_at(&self, path: &str, authorization: Option<&str>, form: &str) -> Answer {
        let mut request = self
            .http
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        answer(
            request
                .send()
                .await
                .unwrap_or_else(|e| panic!("request failed: {e}")),
        )
        .await
    }

    /// POSTs a form with the confidential client's Basic credentials.
    pub async fn token(&self, form: &str) -> Answer {
        self.token_with(Some(&self.client.basic()), form).await
    }

    /// An anonymous token pair: (access, refresh).
    pub async fn anonymous_tokens(&self) -> (String, String) {
        let answer = self.token("grant_type=password").await;
        assert_eq!(answer.status, 200, "anonymous token: {}", answer.text);
        (answer.str("access_token"), answer.str("refresh_token"))
    }

    pub async fn get_session(&self, token: &str) -> Answer {
        self.bearer(reqwest::Method::GET, "/oauth20/access-tokens", token)
            .await
    }

    pub async fn delete_session(&self, token: &str) -> Answer {
        self.bearer(reqwest::Method::DELETE, "/oauth20/access-tokens", token)
            .await
    }

    pub async fn bearer(&self, method: reqwest::Method, path: &str, token: &str) -> Answer {
        let response = self
            .http
            .request(method, self.url(path))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request failed: {e}"));
        answer(response).await
    }

    pub async fn request(&self, request: reqwest::RequestBuilder) -> Answer {
        answer(
            request
                .send()
                .await
                .unwrap_or_else(|e| panic!("request failed: {e}")),
        )
        .await
    }

    /// Creates a shopper with an external reference id; returns its user id.
    pub async fn shopper(&self, external_reference_id: &str) -> String {
        let shopper = self
            .admin
            .create_shopper(NewShopper {
                external_reference_id: Some(external_reference_id.to_owned()),
                locale: Some("de_DE".to_owned()),
                currency: Some("EUR".to_owned()),
                ..NewShopper::default()
            })
            .await
            .unwrap_or_else(|e| panic!("shopper: {e}"));
        shopper.id
    }

    /// A confidential client allowed only `grants`.
    pub async fn client_with(&self, grants: &[Grant]) -> Credentials {
        let mut new = NewClient::named("limited");
        new.grants = GrantSet::from_grants(grants.iter().copied());
        let (record, secret) = self
            .admin
            .create_client(new)
            .await
            .unwrap_or_else(|e| panic!("client: {e}"));
        Credentials {
            id: record.id,
            secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
        }
    }

    /// Sends raw bytes on a new connection and returns what came back before the server
    /// closed the connection or `limit` elapsed.
    pub async fn raw(&self, bytes: &[u8], limit: Duration) -> String {
        let address = self.address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let _ = stream.write_all(bytes).await;
        let mut received = Vec::new();
        let _ = tokio::time::timeout(limit, stream.read_to_end(&mut received)).await;
        String::from_utf8_lossy(&received).into_owned()
    }
}

/// The hash the store keys a token by.
pub fn hash_of(token: &str) -> TokenHash {
    TokenHash::of_token(token)
}

/// The real store, counting token lookups so tests can prove that forged tokens never
/// reach it.
struct CountingStore {
    inner: Arc<dyn Store>,
    lookups: Arc<AtomicUsize>,
    signal: Option<Arc<dyn ChangeSignal>>,
    lookup_gate: Arc<tokio::sync::RwLock<()>>,
    client_gate: Arc<tokio::sync::RwLock<()>>,
    touches: Arc<AtomicUsize>,
    client_reads: Arc<AtomicUsize>,
    shopper_reads: Arc<AtomicUsize>,
}

/// The SQLite store's own change signal (when it has one), plus the writes a test counts
/// for the second store it opens on the same file, which stands for another process.
struct ForeignWrites {
    store: Option<Arc<dyn ChangeSignal>>,
    counted: Arc<AtomicU64>,
    looks: Arc<AtomicUsize>,
}

impl ChangeSignal for ForeignWrites {
    fn foreign_changes(&self) -> u64 {
        self.looks.fetch_add(1, Ordering::SeqCst);
        let seen = self.store.as_ref().map_or(0, |s| s.foreign_changes());
        seen.wrapping_add(self.counted.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl ClientStore for CountingStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.inner.insert_client(client).await
    }
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let found = self.inner.client(id).await;
        // Counted once the store has answered, as lookups are.
        self.client_reads.fetch_add(1, Ordering::SeqCst);
        let _pass = self.client_gate.read().await;
        found
    }
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.inner.clients().await
    }
    async fn set_client_secret(
        &self,
        id: &str,
        secret: &ClientSecretHash,
    ) -> Result<bool, StoreError> {
        self.inner.set_client_secret(id, secret).await
    }
    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        self.inner.set_client_disabled(id, disabled).await
    }
}

#[async_trait]
impl ShopperStore for CountingStore {
    async fn insert_shopper(&self, shopper: &ShopperRecord) -> Result<(), StoreError> {
        self.inner.insert_shopper(shopper).await
    }
    async fn shopper(&self, id: &str) -> Result<Option<ShopperRecord>, StoreError> {
        self.inner.shopper(id).await
    }
    async fn shopper_by_external_reference(
        &self,
        external_reference_id: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        self.shopper_reads.fetch_add(1, Ordering::SeqCst);
        self.inner
            .shopper_by_external_reference(external_reference_id)
            .await
    }
    async fn shopper_by_username(
        &self,
        username: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        self.inner.shopper_by_username(username).await
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError> {
        self.inner.insert_session(session, tokens).await
    }
    async fn lookup_token(&self, hash: &TokenHash) -> Result<Option<TokenLookup>, StoreError> {
        let found = self.inner.lookup_token(hash).await;
        // Counted once the store has answered, so a test that waits for the count knows
        // the read is done.
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let _pass = self.lookup_gate.read().await;
        found
    }
    async fn end_session_if_newest(
        &self,
        session_id: &str,
        access: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner
            .end_session_if_newest(session_id, access, now)
            .await
    }
    async fn revoke_token(&self, hash: &TokenHash, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.revoke_token(hash, now).await
    }
    async fn touch_session(&self, session_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch_session(session_id, now).await
    }
    async fn revoke_session(&self, session_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.revoke_session(session_id, now).await
    }
    async fn rotate_refresh(
        &self,
        consumed: &TokenHash,
        now: Timestamp,
        access: &TokenRecord,
        refresh: &TokenRecord,
    ) -> Result<bool, StoreError> {
        self.inner
            .rotate_refresh(consumed, now, access, refresh)
            .await
    }
    async fn exchange_refresh(
        &self,
        exchange: &RefreshExchange,
    ) -> Result<RefreshOutcome, StoreError> {
        let exchanged = self.inner.exchange_refresh(exchange).await;
        // The exchange reads the presented token inside the store: a lookup like any other.
        self.lookups.fetch_add(1, Ordering::SeqCst);
        exchanged
    }
    async fn log_out(&self, logout: &Logout) -> Result<Option<LoggedOut>, StoreError> {
        let logged_out = self.inner.log_out(logout).await;
        // The logout reads the presented token inside the store, as the exchange does.
        self.lookups.fetch_add(1, Ordering::SeqCst);
        logged_out
    }
}

#[async_trait]
impl SessionJoinStore for CountingStore {
    async fn insert_session_token(&self, record: &SessionTokenRecord) -> Result<(), StoreError> {
        self.inner.insert_session_token(record).await
    }
    async fn lookup_session_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionTokenLookup>, StoreError> {
        self.inner.lookup_session_token(hash).await
    }
    async fn insert_bound_session(
        &self,
        hash: &TokenHash,
        previous: Option<&str>,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        self.inner
            .insert_bound_session(hash, previous, session, tokens)
            .await
    }
    async fn add_session_tokens(
        &self,
        session_id: &str,
        newest_access: &TokenHash,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        self.inner
            .add_session_tokens(session_id, newest_access, tokens)
            .await
    }
    async fn upgrade_session(
        &self,
        previous: &str,
        now: Timestamp,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        self.inner
            .upgrade_session(previous, now, session, tokens)
            .await
    }
    async fn delete_expired_session_tokens(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner.delete_expired_session_tokens(now, limit).await
    }
    async fn set_session_preferences(
        &self,
        session_id: &str,
        locale: Option<&str>,
        currency: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.inner
            .set_session_preferences(session_id, locale, currency)
            .await
    }
}

#[async_trait]
impl SessionAdminStore for CountingStore {
    async fn revoke_sessions_before(
        &self,
        owner: &SessionOwner,
        before: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.revoke_sessions_before(owner, before).await
    }
    async fn pending_tidy_ups(&self, limit: u32) -> Result<Vec<TidyUp>, StoreError> {
        self.inner.pending_tidy_ups(limit).await
    }
    async fn tidy_up_batch(
        &self,
        tidy_up: &TidyUp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner.tidy_up_batch(tidy_up, now, limit).await
    }
    async fn session_by_id(&self, session_id: &str) -> Result<Option<SessionLookup>, StoreError> {
        self.inner.session_by_id(session_id).await
    }
    async fn shopper_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<SessionLookup>, StoreError> {
        self.inner.shopper_sessions(user_id, now, limit).await
    }
    async fn set_session_cart(
        &self,
        session_id: &str,
        cart_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.inner.set_session_cart(session_id, cart_id).await
    }
    async fn delete_revoked_sessions(&self, limit: u32) -> Result<DeletedRows, StoreError> {
        self.inner.delete_revoked_sessions(limit).await
    }
    async fn sweep_sessions(
        &self,
        after: Option<&str>,
        now: Timestamp,
        limit: u32,
    ) -> Result<SessionSweep, StoreError> {
        self.inner.sweep_sessions(after, now, limit).await
    }
    async fn sweep_tokens(
        &self,
        after: Option<&TokenHash>,
        now: Timestamp,
        limit: u32,
    ) -> Result<TokenSweep, StoreError> {
        self.inner.sweep_tokens(after, now, limit).await
    }
}

#[async_trait]
impl MigrationStore for CountingStore {
    async fn count_to_move(&self, kind: MigrationKind, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.count_to_move(kind, now).await
    }
    async fn export_rows(
        &self,
        kind: MigrationKind,
        after: Option<&MigrationKey>,
        now: Timestamp,
        limit: u32,
    ) -> Result<MigrationBatch, StoreError> {
        self.inner.export_rows(kind, after, now, limit).await
    }
    async fn import_rows(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        self.inner.import_rows(batch).await
    }
    async fn count_present(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        self.inner.count_present(batch).await
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    fn change_signal(&self) -> Option<Arc<dyn ChangeSignal>> {
        self.signal.clone()
    }
}
