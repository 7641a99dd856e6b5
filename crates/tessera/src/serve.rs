//! `tessera serve`: wires the store, the token keys, the core service and the HTTP server
//! together, announces the bound address, creates the bootstrap client on an empty store,
//! serves the administration API on its own listener when asked, runs the background
//! clean-up, and runs until SIGINT or SIGTERM, which stops both listeners. It installs the
//! metrics recorder that `/metrics` renders, and times every store operation. With TLS,
//! SIGHUP reloads the public listener's certificate and key.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tessera_core::admin::{Admin, NewClient};
use tessera_core::client::{Grant, GrantSet};
use tessera_core::session_admin::{SWEPT_PER_BACKGROUND_RUN, SessionAdmin};
use tessera_core::{Clock, ServiceConfig, Store, SystemClock, TokenService};
use tessera_server::{Issuer, ServerTls};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::cli::{Cli, ServeArgs};
use crate::keys;
use crate::maintenance;

/// Name of the client created on first start.
const BOOTSTRAP_CLIENT_NAME: &str = "bootstrap";

/// Runs the service until a shutdown signal, then closes the store.
pub async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    // Installed first, so a signal that arrives while starting up still shuts down cleanly
    // instead of killing the process.
    let signals = Signals::install()?;

    let sqlite_file = tessera_store::sqlite_path(&cli.database_url);
    let key_path = args
        .token_key_file
        .clone()
        .unwrap_or_else(|| keys::default_path(sqlite_file.as_deref()));
    let token_keys = keys::load_or_create(&key_path)?;
    let node_name = match &args.node_name {
        Some(name) => name.clone(),
        None => gethostname::gethostname().to_string_lossy().into_owned(),
    };

    // Installed before anything records, so no figure of this process is lost.
    let metrics = tessera_server::Metrics::install()?;
    let store = tessera_store::MeteredStore::wrap(crate::store::open(cli).await?);
    tracing::info!(
        database = %crate::store::redacted(&cli.database_url),
        key_file = %key_path.display(),
        signing_key = token_keys.signing_key_id(),
        node = %node_name,
        "store opened"
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let service = Arc::new(TokenService::new(
        Arc::clone(&store),
        token_keys,
        Arc::clone(&clock),
        ServiceConfig {
            password_hashing_concurrency: usize::from(args.password_hashing_concurrency),
            login_failures_per_hour_per_username: args.login_failures_per_hour_per_username,
            login_failures_per_hour_per_client_address: args
                .login_failures_per_hour_per_client_address,
            client_auth_failures_per_hour_per_client_address: args
                .client_auth_failures_per_hour_per_client_address,
            client_auth_failures_per_hour_per_address: args
                .client_auth_failures_per_hour_per_address,
            requests_per_client: args.request_rate_per_client(),
            requests_per_address: args.request_rate_per_address(),
            lookup_cache_entries: args.lookup_cache_entries,
            ..ServiceConfig::new(node_name)
        },
    ));

    // Every writer of this process goes through the service's store, so that its lookup
    // cache sees each write.
    let store = Arc::clone(service.store());
    let served = serve(args, &store, clock, service, metrics, signals).await;
    store.close().await;
    if served.is_ok() {
        tracing::info!("stopped");
    }
    served
}

/// Binds, announces, bootstraps and serves; the caller closes the store whatever happens.
async fn serve(
    args: &ServeArgs,
    store: &Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    service: Arc<TokenService>,
    metrics: tessera_server::Metrics,
    signals: Signals,
) -> anyhow::Result<()> {
    // Checked before anything is bound: a missing or weak admin token, or a certificate
    // or key that cannot be used, stops the start-up.
    let admin_token = crate::admin_api::token(args)?;
    let tls = tls(args)?;
    let mut config = tessera_server::ServerConfig {
        cors_origins: args.cors_origins.clone(),
        trusted_proxies: args.trusted_proxies.clone(),
        metrics: Some(metrics),
        ..tessera_server::ServerConfig::default()
    };
    if !config.cors_origins.is_empty() {
        let origins: Vec<&str> = config.cors_origins.iter().map(|o| o.as_str()).collect();
        tracing::info!(origins = %origins.join(" "), "CORS allowed for these origins");
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    // RFC 8414: the published issuer; without --issuer, the address actually bound.
    let issuer = args.issuer.clone().unwrap_or_else(|| match tls {
        Some(_) => Issuer::for_tls_listen_address(address),
        None => Issuer::for_listen_address(address),
    });
    tracing::info!(%issuer, "issuer of the authorization server metadata");
    config.issuer = Some(issuer);
    let router = tessera_server::router_with(service, config);
    announce(address, tls.is_some());

    let session_admin = Arc::new(
        SessionAdmin::new(Arc::clone(store), Arc::clone(&clock))
            .with_background_tidy_up()
            .with_bounded_sweep(SWEPT_PER_BACKGROUND_RUN),
    );
    let admin = match (crate::admin_api::bind(args).await?, admin_token) {
        (Some(admin_listener), Some(token)) => {
            let admin_address = admin_listener
                .local_addr()
                .context("cannot read the bound admin address")?;
            print_stdout(&format!(
                "tessera admin listening on http://{admin_address}\n"
            ));
            tracing::info!(address = %admin_address, "administration API listening");
            let admin_router = tessera_server::admin_router(Arc::clone(&session_admin), token);
            Some((admin_listener, admin_router))
        }
        _ => None,
    };

    if !args.no_bootstrap_client {
        bootstrap(store, clock).await?;
    }

    let clean_up = maintenance::spawn_clean_up(Arc::clone(&session_admin), args.gc_interval_secs);
    // One signal stops both listeners.
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        signals.recv().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let public = async {
        let limits = http_limits(args);
        let until_stopped = until_stopped(stopped.clone());
        match tls {
            Some(tls) => {
                tessera_server::serve_tls_with_limits(listener, router, limits, tls, until_stopped)
                    .await
            }
            None => {
                tessera_server::serve_with_limits(listener, router, limits, until_stopped).await
            }
        }
        .context("the HTTP server failed")
    };
    let admin = async {
        match admin {
            Some((admin_listener, admin_router)) => {
                tessera_server::serve(admin_listener, admin_router, until_stopped(stopped.clone()))
                    .await
                    .context("the admin HTTP server failed")
            }
            None => Ok(()),
        }
    };
    let served = tokio::try_join!(public, admin).map(|((), ())| ());
    if let Some(task) = clean_up {
        task.abort();
    }
    served
}

/// The public listener's limits from the command line (RELIABILITY P15); the rest keep
/// their defaults.
fn http_limits(args: &ServeArgs) -> tessera_server::HttpLimits {
    tessera_server::HttpLimits {
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        max_connections: args.max_connections as usize,
        max_in_flight_requests: args.max_in_flight_requests as usize,
        tls_handshake_timeout: Duration::from_millis(args.tls_handshake_timeout_ms),
        response_write_timeout: Duration::from_millis(args.response_write_timeout_ms),
        ..tessera_server::HttpLimits::default()
    }
}

/// The public listener's TLS when --tls-cert and --tls-key are given (clap requires both
/// or neither), with SIGHUP reloading them from then on.
fn tls(args: &ServeArgs) -> anyhow::Result<Option<ServerTls>> {
    let (Some(certificate_file), Some(key_file)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let tls = ServerTls::load(certificate_file, key_file).context("cannot set up TLS")?;
    let mut hangups = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tracing::info!(
        certificate = %certificate_file.display(),
        key = %key_file.display(),
        "TLS on; SIGHUP reloads the certificate and key"
    );
    let reloading = tls.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let certificate = reloading.certificate_file().display();
            let key = reloading.key_file().display();
            match reloading.reload() {
                Ok(()) => tracing::info!(
                    %certificate,
                    %key,
                    "reloaded the TLS certificate and key"
                ),
                Err(error) => tracing::error!(
                    error = %error,
                    "cannot reload the TLS certificate and key; still serving the previous ones"
                ),
            }
        }
    });
    Ok(Some(tls))
}

/// Prints the first line of stdout, which scripts and tests wait for.
fn announce(address: SocketAddr, tls: bool) {
    let scheme = if tls { "https" } else { "http" };
    print_stdout(&format!("tessera listening on {scheme}://{address}\n"));
    tracing::info!(%address, scheme, "listening");
}

/// Creates the bootstrap client if the store holds no client, and prints its credentials
/// once.
async fn bootstrap(store: &Arc<dyn Store>, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let admin = Admin::new(Arc::clone(store), clock);
    let clients = admin
        .clients()
        .await
        .context("cannot list clients to decide on a bootstrap client")?;
    if !clients.is_empty() {
        return Ok(());
    }
    let grants = GrantSet::all();
    let new = NewClient {
        grants,
        ..NewClient::named(BOOTSTRAP_CLIENT_NAME)
    };
    let (client, secret) = admin
        .create_client(new)
        .await
        .context("cannot create the bootstrap client")?;
    let secret = secret.context("the bootstrap client was created without a secret")?;
    let grant_names: Vec<&str> = grants.iter().map(Grant::name).collect();
    print_stdout(&format!(
        "Created the bootstrap client (allowed grants: {}).\n  \
         client_id:     {}\n  \
         client_secret: {}\n\
         These credentials will not be shown again: the secret is stored only as a hash. \
         Keep them now, or create another client with `tessera client create`.\n",
        grant_names.join(", "),
        client.id,
        secret.expose(),
    ));
    tracing::info!(client_id = %client.id, "created the bootstrap client");
    Ok(())
}

/// Writes to stdout and flushes. A closed stdout is not a reason to stop serving, so a
/// failure is only logged.
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        tracing::warn!(error = %e, "cannot write to stdout");
    }
}

/// SIGINT and SIGTERM handlers, installed eagerly.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    /// Resolves on the first signal. A second signal while shutting down exits at once,
    /// for when in-flight requests take too long.
    async fn recv(mut self) {
        let name = self.next().await;
        tracing::info!(
            signal = name,
            "shutting down: no new connections, finishing requests in flight (signal again \
             to exit at once)"
        );
        tokio::spawn(async move {
            let name = self.next().await;
            tracing::warn!(
                signal = name,
                "exiting without finishing requests in flight"
            );
            std::process::exit(130);
        });
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
