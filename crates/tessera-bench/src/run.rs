//! One benchmark run: set-up, the scenarios (or the scale mode), and the report.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::StatusCode;
use tessera_store::StoreOptions;

use crate::cli::{RunArgs, ScenarioKind, StoreKind};
use crate::http::{Call, Connection, basic_authorization};
use crate::load::Stats;
use crate::load::{Window, drive};
use crate::procstat::{ProcessUsage, Sampler, rss_kib};
use crate::reliability;
use crate::report::{Machine, Report, ScaleResult, ScenarioResult};
use crate::scale::{Preloader, create_key_file};
use crate::scenarios::{Fixtures, Issued, ScenarioUser};
use crate::server::{self, ClientCredentials, Process, Store};

/// Shoppers the partner-shopper grant cycles through.
const PARTNER_SHOPPERS: usize = 8;
const LOGIN_USERNAME: &str = "bench-login";
const LOGIN_PASSWORD: &str = "bench-password-7f3a9c1e5b";
/// Connections that issue the lookup pool before the run.
const POOL_CONNECTIONS: usize = 10;
/// A pause between scenarios, so one's tail does not spill into the next.
pub(crate) const SETTLE: Duration = Duration::from_millis(500);

/// Runs the benchmark `args` describes and returns its report.
pub async fn run(args: &RunArgs, command_line: String) -> anyhow::Result<Report> {
    let binary = server::server_binary(args)?;
    let mut report = Report {
        label: args.label.clone(),
        started_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        command_line,
        store: args.store,
        machine: Machine::read(),
        connections: args.connections,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        scenarios: Vec::new(),
        scale: Vec::new(),
    };
    let ceiling = server::start_ceiling()
        .await
        .context("cannot start the ceiling")?;
    let store = Store::create(args).await?;
    let outcome = if args.scale.is_empty() {
        scenarios(args, &binary, &store, &ceiling, &mut report).await
    } else {
        scale(args, &binary, &store, &ceiling, &mut report).await
    };
    let removed = store.remove().await;
    let _ = ceiling.stop().await;
    outcome?;
    removed?;
    Ok(report)
}

/// Every asked scenario against one server, after the ceiling.
async fn scenarios(
    args: &RunArgs,
    binary: &Path,
    store: &Store,
    ceiling: &Process,
    report: &mut Report,
) -> anyhow::Result<()> {
    eprintln!("setting up the {} store ...", args.store.label());
    let client = server::create_client(binary, store, &args.server_log).await?;
    let partner_ids = create_partner_shoppers(binary, store, args).await?;
    server::create_shopper(
        binary,
        store,
        &args.server_log,
        LOGIN_USERNAME,
        Some((LOGIN_USERNAME, LOGIN_PASSWORD)),
    )
    .await?;
    let server = server::start_server(binary, store, args).await?;
    let basic = basic_authorization(&client.id, &client.secret)?;
    eprintln!("issuing {} tokens to look up ...", args.pool);
    let lookup_tokens = issue_pool(server.address, &client, args.pool as usize).await?;
    let fixtures = Arc::new(Fixtures {
        basic,
        lookup_tokens,
        partner_ids,
        login: (LOGIN_USERNAME.to_owned(), LOGIN_PASSWORD.to_owned()),
    });
    let outcome = async {
        for kind in args.scenarios_to_run() {
            let (process, connections) = match kind {
                ScenarioKind::Ceiling => (ceiling, args.connections),
                ScenarioKind::Login => (&server, args.login_connections),
                _ => (&server, args.connections),
            };
            let result = match kind {
                ScenarioKind::PasswordFlood => {
                    reliability::password_flood(&server, &fixtures, args).await?
                }
                ScenarioKind::SlowClients => {
                    reliability::slow_clients(&server, &fixtures, args).await?
                }
                _ => measure(kind, process, connections, &fixtures, args).await?,
            };
            report.scenarios.push(result);
        }
        anyhow::Ok(())
    }
    .await;
    server.stop().await?;
    outcome?;
    if let Some(ceiling) = report.scenarios.first().cloned() {
        for result in &mut report.scenarios {
            result.judge(&ceiling, args.store);
        }
    }
    Ok(())
}

/// Scale mode: the ceiling once, then for each size (smallest first) pre-load up to it with
/// the server stopped, start it, and run `session` and `issue`.
async fn scale(
    args: &RunArgs,
    binary: &Path,
    store: &Store,
    ceiling: &Process,
    report: &mut Report,
) -> anyhow::Result<()> {
    eprintln!("setting up the {} store ...", args.store.label());
    let keys = create_key_file(&store.key_file)?;
    let client = server::create_client(binary, store, &args.server_log).await?;
    let partner_ids = create_partner_shoppers(binary, store, args).await?;
    let empty_bytes = match args.store {
        // PostgreSQL starts with a catalogue of several MiB: count only what sessions add.
        StoreKind::Postgres => store.size_bytes().await?,
        StoreKind::Sqlite => 0,
    };
    let basic = basic_authorization(&client.id, &client.secret)?;
    let sample_size = usize::try_from(args.scale_sample).unwrap_or(usize::MAX);
    let mut preloader = Preloader::new(keys, client.id.clone(), sample_size)?;

    let fixtures = Arc::new(Fixtures {
        basic: basic.clone(),
        lookup_tokens: Vec::new(),
        partner_ids: partner_ids.clone(),
        login: (String::new(), String::new()),
    });
    let ceiling_result = measure(
        ScenarioKind::Ceiling,
        ceiling,
        args.connections,
        &fixtures,
        args,
    )
    .await?;
    report.scenarios.push(ceiling_result.clone());

    let mut sizes = args.scale.clone();
    sizes.sort_unstable();
    sizes.dedup();
    for size in sizes {
        let opened = tessera_store::open(&store.database_url, &StoreOptions::default())
            .await
            .context("cannot open the store to pre-load it")?;
        let loaded = async {
            let live = Preloader::live_sessions(opened.as_ref()).await?;
            if size > live {
                eprintln!("pre-loading {} sessions to reach {size} ...", size - live);
                preloader.load(opened.as_ref(), size - live).await?;
            }
            Preloader::live_sessions(opened.as_ref()).await
        }
        .await;
        opened.close().await;
        let sessions = loaded?;
        let bytes = store.size_bytes().await?.saturating_sub(empty_bytes);

        let server = server::start_server(binary, store, args).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_rss_mib = rss_kib(server.pid()?).map(|kib| kib as f64 / 1024.0);
        let fixtures = Arc::new(Fixtures {
            basic: basic.clone(),
            lookup_tokens: preloader.sample().to_vec(),
            partner_ids: partner_ids.clone(),
            login: (String::new(), String::new()),
        });
        let measured = async {
            let mut results = Vec::new();
            for kind in [ScenarioKind::Session, ScenarioKind::Issue] {
                let mut result = measure(kind, &server, args.connections, &fixtures, args).await?;
                result.sessions = Some(sessions);
                result.judge(&ceiling_result, args.store);
                results.push(result);
            }
            anyhow::Ok(results)
        }
        .await;
        server.stop().await?;
        let mut results = measured?.into_iter();
        let (Some(session), Some(issue)) = (results.next(), results.next()) else {
            anyhow::bail!("scale mode measured too few scenarios");
        };
        report.scale.push(ScaleResult {
            sessions,
            bytes_per_session: bytes as f64 / sessions.max(1) as f64,
            idle_rss_mib,
            session,
            issue,
        });
        eprintln!("{}", report.to_text());
    }
    Ok(())
}

async fn create_partner_shoppers(
    binary: &Path,
    store: &Store,
    args: &RunArgs,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(PARTNER_SHOPPERS);
    for index in 0..PARTNER_SHOPPERS {
        let id = format!("bench-partner-{index}");
        server::create_shopper(binary, store, &args.server_log, &id, None).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Issues `count` anonymous access tokens over a few connections.
async fn issue_pool(
    address: SocketAddr,
    client: &ClientCredentials,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let basic = basic_authorization(&client.id, &client.secret)?;
    let call = Call::form_post("/oauth20/token", &basic, "grant_type=password".to_owned());
    let mut tasks = Vec::new();
    for worker in 0..POOL_CONNECTIONS {
        let share = count / POOL_CONNECTIONS + usize::from(worker < count % POOL_CONNECTIONS);
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(address).await?;
            let mut tokens = Vec::with_capacity(share);
            for _ in 0..share {
                let (status, body) = connection.send(&call).await?;
                anyhow::ensure!(
                    status == StatusCode::OK,
                    "issuing a token to look up answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                let issued: Issued = serde_json::from_slice(&body)?;
                tokens.push(issued.access_token);
            }
            anyhow::Ok(tokens)
        }));
    }
    let mut tokens = Vec::with_capacity(count);
    for task in tasks {
        tokens.extend(task.await??);
    }
    Ok(tokens)
}

/// Runs one scenario against `process` and gathers its figures.
async fn measure(
    kind: ScenarioKind,
    process: &Process,
    connections: u32,
    fixtures: &Arc<Fixtures>,
    args: &RunArgs,
) -> anyhow::Result<ScenarioResult> {
    eprintln!(
        "{}: {connections} connections, {:.0} s warm-up + {:.0} s ...",
        kind.name(),
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    let window = Window::after(args.warmup, args.duration);
    let sampler = Sampler::start(process.pid()?, window);
    let users = ScenarioUser::crowd(kind, fixtures, connections as usize);
    let stats = drive(process.address, users, window).await?;
    let usage = sampler.finish();
    Ok(scenario_result(
        kind,
        connections,
        &stats,
        usage,
        args.duration,
    ))
}

/// One scenario's row, from what its virtual users saw over `duration`.
pub(crate) fn scenario_result(
    kind: ScenarioKind,
    connections: u32,
    stats: &Stats,
    usage: ProcessUsage,
    duration: Duration,
) -> ScenarioResult {
    let seconds = duration.as_secs_f64().max(1e-9);
    let millis = |quantile: f64| stats.latency.value_at_quantile(quantile) as f64 / 1000.0;
    ScenarioResult {
        scenario: kind,
        connections,
        sessions: None,
        requests: stats.ok,
        requests_per_s: stats.ok as f64 / seconds,
        pairs_per_s: (kind == ScenarioKind::Revoke).then(|| stats.pairs as f64 / seconds),
        p50_ms: millis(0.5),
        p99_ms: millis(0.99),
        p999_ms: millis(0.999),
        non_2xx: stats.non_2xx,
        errors: stats.errors(),
        error_samples: stats.error_samples.clone(),
        server_cpu_cores: usage.cpu_cores,
        peak_rss_mib: usage.peak_rss_mib,
        ratio: None,
        target: None,
        met: None,
        p99_vs_ceiling: None,
        p99_target: None,
        p99_met: None,
        reliability: None,
    }
}
