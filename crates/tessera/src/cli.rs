//! The command line: every subcommand, flag and environment variable, as clap structs.
//! Nothing here does any work; `main` hands each parsed command to its module.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tessera_core::ServiceConfig;
use tessera_core::client::{Grant, PasswordEncoding};
use tessera_core::limits::RequestRate;
use tessera_server::{CorsOrigin, Issuer};

/// Where the store lives when nothing else is said.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./tessera-data/tessera.db";

/// Tessera: an OAuth 2.0 access-token service for shopper sessions, compatible with the
/// Digital River `/oauth20/` API.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: an OAuth 2.0 access-token service for shopper sessions, compatible with \
             Digital River's /oauth20/ API.",
    long_about = "Tessera: an OAuth 2.0 access-token service for shopper sessions, compatible \
                  with Digital River's /oauth20/ API.\n\n\
                  `tessera serve` runs the HTTP service. `tessera client ...` and `tessera \
                  shopper ...` administer the store named by --database-url directly; they \
                  are safe to run while a server uses the same SQLite file.",
    after_help = "Examples:\n  \
                  tessera serve\n  \
                  tessera client create --name storefront --json\n  \
                  tessera client list\n  \
                  printf '%s' \"$PASSWORD\" | tessera shopper create --external-reference-id \
                  c-1001 --username ada --password-stdin",
    propagate_version = true
)]
pub struct Cli {
    /// The store: `sqlite://PATH` (the file and its folder are created on first use), or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (the database must exist; its
    /// tables are created on first use). Prefer the environment variable for a URL with a
    /// password: command lines show up in process listings.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Store options"
    )]
    pub database_url: String,

    /// How long a store operation waits for a lock held by another process (the server
    /// and the admin commands share one SQLite file) before failing.
    #[arg(
        long,
        global = true,
        env = "TESSERA_STORE_BUSY_TIMEOUT_MS",
        default_value_t = 5000,
        value_name = "MILLISECONDS",
        help_heading = "Store options"
    )]
    pub store_busy_timeout_ms: u64,

    /// PostgreSQL: the most connections this process opens, so the most store operations
    /// it runs at once; further requests wait for a connection.
    #[arg(
        long,
        global = true,
        env = "TESSERA_STORE_MAX_CONNECTIONS",
        default_value_t = 10,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        help_heading = "Store options"
    )]
    pub store_max_connections: u32,

    /// PostgreSQL: how long a request waits for a connection (opening one included) before
    /// it is answered 503; while the database is down, requests fail after this long.
    #[arg(
        long,
        global = true,
        env = "TESSERA_STORE_ACQUIRE_TIMEOUT_MS",
        default_value_t = 5000,
        value_name = "MILLISECONDS",
        help_heading = "Store options"
    )]
    pub store_acquire_timeout_ms: u64,

    /// PostgreSQL: the longest one statement may run before the server cancels it and the
    /// request is answered 503. (--store-busy-timeout-ms is PostgreSQL's lock_timeout.)
    #[arg(
        long,
        global = true,
        env = "TESSERA_STORE_STATEMENT_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MILLISECONDS",
        help_heading = "Store options"
    )]
    pub store_statement_timeout_ms: u64,

    /// PostgreSQL: serve even when the server's fsync or synchronous_commit is off, which
    /// lets a crash lose writes Tessera already acknowledged (revocations included). Logs a
    /// warning. Without it, such a server is refused at start.
    #[arg(
        long,
        global = true,
        env = "TESSERA_ALLOW_UNSAFE_POSTGRES",
        help_heading = "Store options"
    )]
    pub allow_unsafe_postgres: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service until SIGINT or SIGTERM.
    #[command(long_about = "Run the HTTP service until SIGINT or SIGTERM.\n\n\
                      The first line printed on stdout is exactly `tessera listening on \
                      http://ADDR:PORT` (`https://` with --tls-cert), with the port actually \
                      bound (useful with --listen 127.0.0.1:0). On first start with an empty \
                      store, a `bootstrap` client allowed every grant is created and its \
                      credentials are printed once, after that line. Logs go to stderr; set \
                      their level with RUST_LOG (default `info`, audit events included). On \
                      SIGINT or SIGTERM the server stops accepting, finishes requests in \
                      flight, closes the store and exits 0. With TLS, SIGHUP reloads the \
                      certificate and key.")]
    Serve(ServeArgs),
    /// Create, list, rotate the secret of, or disable clients (applications holding an API
    /// key).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Create shoppers (end users a partner refers to by its own id).
    #[command(subcommand)]
    Shopper(ShopperCommand),
    /// End sessions ("logout everywhere" for a shopper or a client, or one session) and list
    /// a shopper's live sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Delete expired and revoked sessions and expired tokens now, in small batches.
    #[command(
        long_about = "Delete revoked sessions; then, in a sweep over every session, the \
                      sessions that expired or that a revocation watermark ended; then, in a \
                      sweep over every token, the tokens that expired or whose session \
                      ended or is gone: from the store named by --database-url, in batches \
                      of at most 500 rows, each its own short write transaction, so a server \
                      using the same store keeps answering. Consumed refresh tokens stay \
                      while their session lives, so that a replay is still detected. \
                      `tessera serve` does the same every --gc-interval-secs, sweeping at \
                      most 500,000 sessions and as many tokens a run.\n\n\
                      On a terminal a spinner shows progress on stderr; the result is one \
                      line on stdout: `gc: deleted N tokens, M sessions and K session tokens in X ms`."
    )]
    Gc,
    /// Create the store's tables, or bring them up to date, and exit.
    #[command(
        long_about = "Create the store named by --database-url, or bring its schema up to \
                      date, and exit. `tessera serve` and the admin commands do the same when \
                      they open the store, so this is only needed to migrate ahead of a \
                      rollout. Safe to run while servers use the store, and from several \
                      machines at once: on PostgreSQL an advisory lock makes them take turns. \
                      Prints one line: `migrate: BACKEND schema at version N (DESCRIPTION)`."
    )]
    Migrate,
    /// Move clients, shoppers, watermarks and live sessions with their tokens from one
    /// store to another (e.g. from SQLite to PostgreSQL).
    #[command(
        long_about = "Move everything a server needs from the store --from names into the \
                      store --to names (created or migrated first): clients, shoppers, \
                      revocation watermarks, pending tidy-ups, sessions that are neither \
                      revoked nor expired with their unexpired tokens (consumed refresh \
                      tokens included, so a replay is still detected), and unexpired session \
                      tokens. Rows move as they are, so serve the destination with the same \
                      --token-key-file. Stop the servers using --from first.\n\n\
                      Safe to repeat: a row already in the destination is left as it is, so \
                      running it again, or after an interruption, moves only what is \
                      missing. On a terminal a progress bar per kind shows on stderr; stdout \
                      gets one line per kind, then the result of a check that every row \
                      that should have moved is in the destination. Exits non-zero if the \
                      counts do not match. --database-url is not used."
    )]
    MigrateStore(MigrateStoreArgs),
}

/// `tessera migrate-store`.
#[derive(Debug, Args)]
pub struct MigrateStoreArgs {
    /// The store to move from, e.g. `sqlite://./tessera-data/tessera.db`; its rows are left
    /// as they are.
    #[arg(
        long,
        env = "TESSERA_MIGRATE_FROM",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub from: String,
    /// The store to move into, e.g. `postgres://tessera@db.internal/tessera`. Prefer the
    /// environment variable for a URL with a password.
    #[arg(
        long,
        env = "TESSERA_MIGRATE_TO",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub to: String,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `tessera serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the bound one is printed).
    #[arg(
        long,
        env = "TESSERA_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR:PORT"
    )]
    pub listen: SocketAddr,

    /// This node's name, reported as `domain` in session details [default: the host name].
    #[arg(long, env = "TESSERA_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,

    /// File of token MAC keys (`<key id> <base64url key>` per line, newest first). Created
    /// with mode 0600 when missing [default: `tessera.key` beside the SQLite database].
    #[arg(long, env = "TESSERA_TOKEN_KEY_FILE", value_name = "PATH")]
    pub token_key_file: Option<PathBuf>,

    /// Format of the log lines written to stderr.
    #[arg(
        long,
        env = "TESSERA_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,

    /// Do not create the `bootstrap` client when the store has no client.
    #[arg(long, env = "TESSERA_NO_BOOTSTRAP_CLIENT")]
    pub no_bootstrap_client: bool,

    /// Run expiry clean-up in the background every this many seconds (0 turns it off;
    /// `tessera gc` does the same on demand).
    #[arg(
        long,
        env = "TESSERA_GC_INTERVAL_SECS",
        default_value_t = 300,
        value_name = "SECONDS",
        help_heading = "Maintenance"
    )]
    pub gc_interval_secs: u64,

    /// Also serve the administration API on this address (off unless given). Needs an
    /// admin token: --admin-token-file, or the TESSERA_ADMIN_TOKEN environment variable
    /// (never a flag value).
    #[arg(
        long,
        env = "TESSERA_ADMIN_LISTEN",
        value_name = "ADDR:PORT",
        help_heading = "Administration API"
    )]
    pub admin_listen: Option<SocketAddr>,

    /// File holding the administration API's bearer token on its first line (at least 16
    /// printable characters). Wins over TESSERA_ADMIN_TOKEN.
    #[arg(
        long,
        env = "TESSERA_ADMIN_TOKEN_FILE",
        value_name = "PATH",
        help_heading = "Administration API"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// Failed shopper logins admitted per username in any one hour; past it, logins for
    /// that username answer 429 (with Retry-After) until its oldest failure is an hour old.
    #[arg(
        long,
        env = "TESSERA_LOGIN_FAILURES_PER_HOUR_PER_USERNAME",
        default_value_t = ServiceConfig::DEFAULT_LOGIN_FAILURES_PER_HOUR_PER_USERNAME,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        help_heading = "Shopper login"
    )]
    pub login_failures_per_hour_per_username: u32,

    /// Failed shopper logins admitted per client and peer address, over all usernames, in
    /// any one hour. Raise it for a storefront back end that sends all its shoppers' logins
    /// from one address.
    #[arg(
        long,
        env = "TESSERA_LOGIN_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS",
        default_value_t = ServiceConfig::DEFAULT_LOGIN_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        help_heading = "Shopper login"
    )]
    pub login_failures_per_hour_per_client_address: u32,

    /// Failed client authentications (wrong secret, unknown or disabled client) admitted
    /// per presented client id and peer address in any one hour; past it, that client id
    /// from that address answers 429 (with Retry-After), right secret or not, until its
    /// oldest failure is an hour old. Other addresses are not affected.
    #[arg(
        long,
        env = "TESSERA_CLIENT_AUTH_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS",
        default_value_t = ServiceConfig::DEFAULT_CLIENT_AUTH_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        help_heading = "Request limits"
    )]
    pub client_auth_failures_per_hour_per_client_address: u32,

    /// Failed client authentications admitted per peer address, over all client ids, in
    /// any one hour (scanning client ids from one source).
    #[arg(
        long,
        env = "TESSERA_CLIENT_AUTH_FAILURES_PER_HOUR_PER_ADDRESS",
        default_value_t = ServiceConfig::DEFAULT_CLIENT_AUTH_FAILURES_PER_HOUR_PER_ADDRESS,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        help_heading = "Request limits"
    )]
    pub client_auth_failures_per_hour_per_address: u32,

    /// Requests per second admitted per authenticated client on the token, introspection
    /// and revocation endpoints; past it, 429 with Retry-After. 0 (the default): no limit,
    /// since one storefront back end may send tens of thousands a second.
    #[arg(
        long,
        env = "TESSERA_REQUESTS_PER_SECOND_PER_CLIENT",
        default_value_t = 0,
        value_name = "COUNT",
        help_heading = "Request limits"
    )]
    pub requests_per_second_per_client: u32,

    /// Requests one client may send at once past its rate after a quiet spell; 0: as many
    /// as its requests per second.
    #[arg(
        long,
        env = "TESSERA_REQUEST_BURST_PER_CLIENT",
        default_value_t = 0,
        value_name = "COUNT",
        help_heading = "Request limits"
    )]
    pub request_burst_per_client: u32,

    /// Requests per second admitted per peer address on the token, introspection and
    /// revocation endpoints; past it, 429 with Retry-After. 0 (the default): no limit.
    #[arg(
        long,
        env = "TESSERA_REQUESTS_PER_SECOND_PER_ADDRESS",
        default_value_t = 0,
        value_name = "COUNT",
        help_heading = "Request limits"
    )]
    pub requests_per_second_per_address: u32,

    /// Requests one address may send at once past its rate after a quiet spell; 0: as many
    /// as its requests per second.
    #[arg(
        long,
        env = "TESSERA_REQUEST_BURST_PER_ADDRESS",
        default_value_t = 0,
        value_name = "COUNT",
        help_heading = "Request limits"
    )]
    pub request_burst_per_address: u32,

    /// How many shopper password verifications (Argon2id, about 20-50 ms of one core each)
    /// run at once; further logins wait their turn.
    #[arg(
        long,
        env = "TESSERA_PASSWORD_HASHING_CONCURRENCY",
        default_value_t = 2,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u16).range(1..=1024),
        help_heading = "Shopper login"
    )]
    pub password_hashing_concurrency: u16,

    /// How many access-token lookups this node keeps in memory, so session details and
    /// introspection rarely read the store; 0 turns the cache off. SQLite only: every
    /// lookup first asks SQLite whether another process wrote, and any revocation empties
    /// what it affects before it is answered. PostgreSQL stays strict: no cache.
    #[arg(
        long,
        env = "TESSERA_LOOKUP_CACHE_ENTRIES",
        default_value_t = ServiceConfig::DEFAULT_LOOKUP_CACHE_ENTRIES,
        value_name = "COUNT",
        help_heading = "Store options"
    )]
    pub lookup_cache_entries: u64,

    /// A browser origin (`scheme://host[:port]`, e.g. https://shop.example) allowed to call
    /// the token, session and shopper endpoints from its pages (CORS); repeat the flag, or
    /// separate origins with commas. Exact match only: no wildcards, no `null`. None by
    /// default: no CORS headers, so browsers refuse cross-origin calls.
    #[arg(
        long = "cors-origin",
        env = "TESSERA_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ',',
        help_heading = "Browsers"
    )]
    pub cors_origins: Vec<CorsOrigin>,

    /// A proxy or load balancer (address or CIDR range, e.g. 10.0.0.0/8) whose
    /// X-Forwarded-For header names the caller; repeat the flag, or separate entries with
    /// commas. The caller's address (session clientIpAddress, login limits) is otherwise
    /// always the socket peer. None by default.
    #[arg(
        long = "trusted-proxy",
        env = "TESSERA_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_trusted_proxy,
        help_heading = "Network"
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// How long a client may take to send a request's line and headers before its
    /// connection is closed (slow clients holding connections open).
    #[arg(
        long,
        env = "TESSERA_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "HTTP limits"
    )]
    pub header_read_timeout_ms: u64,

    /// How long writing an answer may wait for a client that does not read it; past it
    /// the connection is closed (slow readers holding connections).
    #[arg(
        long,
        env = "TESSERA_RESPONSE_WRITE_TIMEOUT_MS",
        default_value_t = 30_000,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "HTTP limits"
    )]
    pub response_write_timeout_ms: u64,

    /// How long one request may take to be answered; past it the request is abandoned and
    /// answered 503 with Retry-After.
    #[arg(
        long,
        env = "TESSERA_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "HTTP limits"
    )]
    pub request_timeout_ms: u64,

    /// Open connections at most; a connection beyond it is closed at once.
    #[arg(
        long,
        env = "TESSERA_MAX_CONNECTIONS",
        default_value_t = 4096,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "HTTP limits"
    )]
    pub max_connections: u32,

    /// Requests handled at once; one more is answered 503 with Retry-After at once
    /// (load shedding) instead of waiting.
    #[arg(
        long,
        env = "TESSERA_MAX_IN_FLIGHT_REQUESTS",
        default_value_t = 1024,
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "HTTP limits"
    )]
    pub max_in_flight_requests: u32,

    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key. Read
    /// again, with the key, on SIGHUP: new connections get the new certificate, open ones
    /// are kept. TLS 1.2 and 1.3 only. Without it the listener speaks plain HTTP.
    #[arg(
        long,
        env = "TESSERA_TLS_CERT",
        value_name = "PEM_FILE",
        requires = "tls_key",
        help_heading = "TLS"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert; needs --tls-cert.
    #[arg(
        long,
        env = "TESSERA_TLS_KEY",
        value_name = "PEM_FILE",
        requires = "tls_cert",
        help_heading = "TLS"
    )]
    pub tls_key: Option<PathBuf>,

    /// With TLS, how long a client may take to complete the handshake after connecting
    /// before its connection is closed.
    #[arg(
        long,
        env = "TESSERA_TLS_HANDSHAKE_TIMEOUT_MS",
        default_value_t = 10_000,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "TLS"
    )]
    pub tls_handshake_timeout_ms: u64,

    /// The issuer identifier published at /.well-known/oauth-authorization-server
    /// (RFC 8414): the public https:// URL clients reach this server at, without query or
    /// fragment; every endpoint URL in the document is under it [default: http:// and the
    /// bound address].
    #[arg(long, env = "TESSERA_ISSUER", value_name = "URL")]
    pub issuer: Option<Issuer>,
}

impl ServeArgs {
    /// The request-rate limit per client the flags set; `None` when off.
    pub fn request_rate_per_client(&self) -> Option<RequestRate> {
        request_rate(
            self.requests_per_second_per_client,
            self.request_burst_per_client,
        )
    }

    /// The request-rate limit per address the flags set; `None` when off.
    pub fn request_rate_per_address(&self) -> Option<RequestRate> {
        request_rate(
            self.requests_per_second_per_address,
            self.request_burst_per_address,
        )
    }
}

/// A rate of `per_second` (0: no limit) with bursts of `burst` (0: as many as per second).
fn request_rate(per_second: u32, burst: u32) -> Option<RequestRate> {
    let per_second = NonZeroU32::new(per_second)?;
    Some(RequestRate {
        per_second,
        burst: NonZeroU32::new(burst).unwrap_or(per_second),
    })
}

/// The environment variable that may hold the admin token when no --admin-token-file is
/// given. It is deliberately not a flag: command lines show up in process listings.
pub const ADMIN_TOKEN_ENV: &str = "TESSERA_ADMIN_TOKEN";

/// `tessera session ...`.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// End every session of a shopper, every session of a client, or one session.
    #[command(
        long_about = "End sessions at once: every session of a shopper (--shopper USER_ID), \
                      every session of a client (--client CLIENT_ID), or one session \
                      (--session SESSION_ID). Exactly one of them.\n\n\
                      --shopper and --client set a revocation watermark: one write, however \
                      many sessions, and every token of every session created until now \
                      stops working at the next lookup, also on a server using the same \
                      store. New sessions work as usual. A shopper's sessions are then marked \
                      revoked in small batches, so that clean-up can delete them; clean-up's \
                      sweep deletes a client's as it passes them.",
        after_help = "Examples:\n  \
                      tessera session revoke --shopper 51c0a9e3d2b84f7a9c6e1d0b2a3f4e5d\n  \
                      tessera session revoke --client 3f5c0b8e2a9d4c7f8e1b6a2d9c0e4f17 --json\n  \
                      tessera session revoke --session 9b2f6c1d0e3a4b5c8d7e6f5a4b3c2d1e"
    )]
    Revoke(SessionRevokeArgs),
    /// List a shopper's live sessions (never their tokens).
    List(SessionListArgs),
}

/// `tessera session revoke`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("sessions")
        .required(true)
        .args(["shopper", "client", "session"])
))]
pub struct SessionRevokeArgs {
    /// End every session of the shopper with this user id.
    #[arg(long, value_name = "USER_ID", value_parser = parse_non_empty)]
    pub shopper: Option<String>,

    /// End every session of this client (it keeps working for new sessions).
    #[arg(long, value_name = "CLIENT_ID", value_parser = parse_non_empty)]
    pub client: Option<String>,

    /// End this one session.
    #[arg(long, value_name = "SESSION_ID", value_parser = parse_non_empty)]
    pub session: Option<String>,

    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `tessera session list`.
#[derive(Debug, Args)]
pub struct SessionListArgs {
    /// The shopper's user id.
    #[arg(long, value_name = "USER_ID", value_parser = parse_non_empty)]
    pub shopper: String,

    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `tessera client ...`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a client and print its API key and, unless public, its secret (shown once).
    #[command(
        long_about = "Create a client and print its API key (client_id) and, unless it is \
                      public, its secret (client_secret). The secret is stored only as a \
                      hash: it is shown this once.\n\n\
                      Without --grant a client may use every grant except shopper password \
                      login, which must always be named (a public client also leaves out \
                      client_credentials, which needs a secret).",
        after_help = "Examples:\n  \
                      tessera client create --name storefront\n  \
                      tessera client create --name spa --public --grant anonymous --grant \
                      refresh_token --json\n  \
                      tessera client create --name partner --grant client_credentials,password"
    )]
    Create(ClientCreateArgs),
    /// List every client (secrets are never shown).
    List(JsonFlag),
    /// Replace a confidential client's secret and print the new one; the old secret stops
    /// working at once.
    RotateSecret(ClientIdArgs),
    /// Disable a client: it can no longer authenticate and its tokens stop working.
    Disable(ClientIdArgs),
}

/// `--json`.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of readable text.
    #[arg(long)]
    pub json: bool,
}

/// `tessera client create`.
#[derive(Debug, Args)]
pub struct ClientCreateArgs {
    /// A human name for listings.
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// A public client (a browser or mobile app) that holds no secret.
    #[arg(long)]
    pub public: bool,

    /// A resource server: it may introspect every client's access tokens at
    /// /oauth20/introspect, where other clients see only their own. It keeps the grants it
    /// is given like any client. Needs a secret, so not with --public.
    #[arg(long, conflicts_with = "public")]
    pub resource_server: bool,

    /// A grant the client may use; repeat or separate with commas. One of `anonymous`,
    /// `client_credentials`, `password`, `refresh_token` [default: all but `password`].
    #[arg(
        long = "grant",
        value_name = "GRANT",
        value_delimiter = ',',
        value_parser = parse_grant
    )]
    pub grants: Vec<Grant>,

    /// Locale of the client's new sessions, e.g. `en_US` [default: en_US].
    #[arg(long, value_name = "LOCALE", value_parser = parse_locale)]
    pub locale: Option<String>,

    /// Currency of the client's new sessions, e.g. `USD` [default: USD].
    #[arg(long, value_name = "CURRENCY", value_parser = parse_currency)]
    pub currency: Option<String>,

    /// Storefront theme id reported as `themeId` in session details.
    #[arg(long, value_name = "ID")]
    pub theme_id: Option<String>,

    /// How the client sends shopper passwords with the login grant: `plain`, or `base64`
    /// (base64 of the password, as some Digital River storefront code sends it).
    #[arg(
        long,
        value_name = "ENCODING",
        default_value = "plain",
        value_parser = parse_password_encoding
    )]
    pub password_encoding: PasswordEncoding,

    /// Access token lifetime [default: 3600].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..))]
    pub access_token_ttl: Option<i64>,

    /// Absolute refresh token (session) lifetime [default: 31536000, one year].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..))]
    pub refresh_token_ttl: Option<i64>,

    /// Print exactly one JSON object: `{"client_id": ..., "client_secret": ...}`
    /// (`client_secret` is null for a public client).
    #[arg(long)]
    pub json: bool,
}

/// A command that names one client.
#[derive(Debug, Args)]
pub struct ClientIdArgs {
    /// The client's API key (`client_id`), as `tessera client list` shows it.
    #[arg(value_name = "CLIENT_ID")]
    pub client_id: String,

    /// Print JSON instead of readable text.
    #[arg(long)]
    pub json: bool,
}

/// `tessera shopper ...`.
#[derive(Debug, Subcommand)]
pub enum ShopperCommand {
    /// Create a shopper known by a partner's external reference id and/or a username and
    /// password.
    #[command(
        long_about = "Create a shopper. A partner client gets a full token for it with \
                      `grant_type=client_credentials&dr_external_reference_id=ID`. With \
                      --username and --password-stdin the shopper can also sign in with a \
                      password, through clients allowed the `password` grant.\n\n\
                      The password is read from standard input (one trailing newline is \
                      dropped), never from the command line.",
        after_help = "Examples:\n  \
                      tessera shopper create --external-reference-id c-1001 --json\n  \
                      printf '%s' \"$PASSWORD\" | tessera shopper create \
                      --external-reference-id c-1002 --username ada --password-stdin"
    )]
    Create(ShopperCreateArgs),
}

/// `tessera shopper create`.
#[derive(Debug, Args)]
pub struct ShopperCreateArgs {
    /// The partner's own id for the shopper; unique in the store.
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "username",
        value_parser = parse_non_empty
    )]
    pub external_reference_id: Option<String>,

    /// Login name; unique in the store. Needs --password-stdin.
    #[arg(long, value_name = "USERNAME", requires = "password_stdin", value_parser = parse_non_empty)]
    pub username: Option<String>,

    /// Read the shopper's password from standard input. Needs --username.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,

    /// The shopper's preferred locale, e.g. `fr_FR` [default: the client's].
    #[arg(long, value_name = "LOCALE", value_parser = parse_locale)]
    pub locale: Option<String>,

    /// The shopper's preferred currency, e.g. `EUR` [default: the client's].
    #[arg(long, value_name = "CURRENCY", value_parser = parse_currency)]
    pub currency: Option<String>,

    /// Print exactly one JSON object: `{"user_id": ...}`.
    #[arg(long)]
    pub json: bool,
}

fn grant_names() -> String {
    Grant::ALL
        .iter()
        .map(|g| g.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_grant(value: &str) -> Result<Grant, String> {
    Grant::parse(value.trim()).ok_or_else(|| {
        format!(
            "unknown grant `{value}`; expected one of: {}",
            grant_names()
        )
    })
}

fn parse_password_encoding(value: &str) -> Result<PasswordEncoding, String> {
    PasswordEncoding::parse(value.trim()).ok_or_else(|| {
        let names: Vec<&str> = PasswordEncoding::ALL.iter().map(|e| e.name()).collect();
        format!(
            "unknown password encoding `{value}`; expected one of: {}",
            names.join(", ")
        )
    })
}

fn parse_non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// A locale as Digital River writes it: a language, optionally `_` and a region
/// (`en`, `en_US`).
fn parse_locale(value: &str) -> Result<String, String> {
    let (language, region) = match value.split_once('_') {
        Some((language, region)) => (language, Some(region)),
        None => (value, None),
    };
    let language_ok =
        (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok = region.is_none_or(|r| {
        (r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
            || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
    });
    if language_ok && region_ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{value}` is not a locale like `en_US` (language, underscore, region)"
        ))
    }
}

/// An ISO 4217 currency code.
fn parse_currency(value: &str) -> Result<String, String> {
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{value}` is not an ISO 4217 currency code like `USD`"
        ))
    }
}

/// A trusted proxy: a CIDR range, or one address (a range of one).
fn parse_trusted_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or CIDR range"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn trusted_proxies_are_addresses_or_cidr_ranges() {
        assert_eq!(
            super::parse_trusted_proxy("10.0.0.0/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".to_owned())
        );
        assert_eq!(
            super::parse_trusted_proxy(" 192.0.2.10 ").map(|n| n.to_string()),
            Ok("192.0.2.10/32".to_owned())
        );
        assert!(super::parse_trusted_proxy("::1").is_ok());
        assert!(super::parse_trusted_proxy("lb.internal").is_err());
        assert!(super::parse_trusted_proxy("10.0.0.0/33").is_err());
    }

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn session_revoke_needs_exactly_one_target() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["tessera", "session", "revoke"].iter().chain(args).copied())
        };
        assert!(parse(&[]).is_err());
        assert!(parse(&["--shopper", "u1", "--client", "c1"]).is_err());
        assert!(parse(&["--session", ""]).is_err());
        for flag in ["--shopper", "--client", "--session"] {
            assert!(parse(&[flag, "x1", "--json"]).is_ok(), "{flag}");
        }
    }

    #[test]
    fn the_admin_token_is_no_flag() {
        let cli =
            Cli::try_parse_from(["tessera", "serve", "--admin-token", "secret-secret-secret"]);
        assert!(cli.is_err());
    }

    #[test]
    fn grant_names_parse_and_unknown_ones_are_refused() {
        assert_eq!(parse_grant("password"), Ok(Grant::Password));
        assert_eq!(parse_grant("refresh_token"), Ok(Grant::RefreshToken));
        let error = parse_grant("implicit").err().unwrap_or_default();
        assert!(error.contains("client_credentials"), "{error}");
    }

    #[test]
    fn password_encodings_parse_and_default_to_plain() -> Result<(), clap::Error> {
        let parse = |extra: &[&str]| {
            Cli::try_parse_from(
                ["tessera", "client", "create", "--name", "x"]
                    .iter()
                    .chain(extra)
                    .copied(),
            )
        };
        for (extra, expected) in [
            (&[][..], PasswordEncoding::Plain),
            (
                &["--password-encoding", "base64"][..],
                PasswordEncoding::Base64,
            ),
            (
                &["--password-encoding", "plain"][..],
                PasswordEncoding::Plain,
            ),
        ] {
            let Command::Client(ClientCommand::Create(args)) = parse(extra)?.command else {
                panic!("parsed the wrong command");
            };
            assert_eq!(args.password_encoding, expected);
        }
        let error = parse(&["--password-encoding", "rot13"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("base64"), "{error}");
        Ok(())
    }

    #[test]
    fn the_lookup_cache_defaults_to_the_service_default_and_zero_turns_it_off()
    -> Result<(), clap::Error> {
        for (extra, expected) in [
            (&[][..], ServiceConfig::DEFAULT_LOOKUP_CACHE_ENTRIES),
            (&["--lookup-cache-entries", "0"][..], 0),
        ] {
            let cli = Cli::try_parse_from(["tessera", "serve"].iter().chain(extra))?;
            let Command::Serve(args) = cli.command else {
                panic!("parsed the wrong command");
            };
            assert_eq!(args.lookup_cache_entries, expected);
        }
        Ok(())
    }

    #[test]
    fn login_limits_default_to_the_service_defaults_and_refuse_zero() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["tessera", "serve"])?;
        let Command::Serve(args) = cli.command else {
            panic!("parsed the wrong command");
        };
        assert_eq!(args.login_failures_per_hour_per_username, 100);
        assert_eq!(args.login_failures_per_hour_per_client_address, 1000);
        assert_eq!(args.password_hashing_concurrency, 2);
        for flag in [
            "--login-failures-per-hour-per-username",
            "--login-failures-per-hour-per-client-address",
            "--password-hashing-concurrency",
        ] {
            assert!(Cli::try_parse_from(["tessera", "serve", flag, "0"]).is_err());
        }
        Ok(())
    }

    #[test]
    fn client_auth_limits_are_on_and_rate_limits_off_by_default() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["tessera", "serve"])?;
        let Command::Serve(args) = cli.command else {
            panic!("parsed the wrong command");
        };
        assert_eq!(args.client_auth_failures_per_hour_per_client_address, 100);
        assert_eq!(args.client_auth_failures_per_hour_per_address, 1000);
        assert_eq!(args.request_rate_per_client(), None);
        assert_eq!(args.request_rate_per_address(), None);
        for flag in [
            "--client-auth-failures-per-hour-per-client-address",
            "--client-auth-failures-per-hour-per-address",
        ] {
            assert!(Cli::try_parse_from(["tessera", "serve", flag, "0"]).is_err());
        }
        let cli = Cli::try_parse_from([
            "tessera",
            "serve",
            "--requests-per-second-per-client",
            "50",
            "--requests-per-second-per-address",
            "20",
            "--request-burst-per-address",
            "100",
        ])?;
        let Command::Serve(args) = cli.command else {
            panic!("parsed the wrong command");
        };
        let rate = |per_second, burst| {
            Some(RequestRate {
                per_second: NonZeroU32::new(per_second)?,
                burst: NonZeroU32::new(burst)?,
            })
        };
        assert_eq!(args.request_rate_per_client(), rate(50, 50));
        assert_eq!(args.request_rate_per_address(), rate(20, 100));
        Ok(())
    }

    #[test]
    fn locales_and_currencies_are_checked() {
        assert!(parse_locale("en_US").is_ok());
        assert!(parse_locale("fr").is_ok());
        assert!(parse_locale("es_419").is_ok());
        assert!(parse_locale("EN_us").is_err());
        assert!(parse_locale("en-US").is_err());
        assert!(parse_currency("EUR").is_ok());
        assert!(parse_currency("eur").is_err());
        assert!(parse_currency("EURO").is_err());
    }

    #[test]
    fn repeated_and_comma_separated_grants_both_work() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from([
            "tessera",
            "client",
            "create",
            "--name",
            "x",
            "--grant",
            "anonymous,password",
            "--grant",
            "refresh_token",
        ])?;
        let Command::Client(ClientCommand::Create(args)) = cli.command else {
            panic!("parsed the wrong command");
        };
        assert_eq!(
            args.grants,
            vec![Grant::Anonymous, Grant::Password, Grant::RefreshToken]
        );
        Ok(())
    }

    #[test]
    fn a_password_needs_a_username_and_a_username_needs_a_password() {
        let without_username = Cli::try_parse_from([
            "tessera",
            "shopper",
            "create",
            "--external-reference-id",
            "e1",
            "--password-stdin",
        ]);
        assert!(without_username.is_err());
        let without_password = Cli::try_parse_from([
            "tessera",
            "shopper",
            "create",
            "--external-reference-id",
            "e1",
            "--username",
            "ada",
        ]);
        assert!(without_password.is_err());
    }

    #[test]
    fn the_database_url_is_accepted_after_the_subcommand() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from([
            "tessera",
            "client",
            "list",
            "--database-url",
            "sqlite:///tmp/x.db",
        ])?;
        assert_eq!(cli.database_url, "sqlite:///tmp/x.db");
        Ok(())
    }
}
