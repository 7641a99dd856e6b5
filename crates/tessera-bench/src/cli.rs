//! The command line of `tessera-bench`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default PostgreSQL server, the same the tests use.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `tessera-bench`: measures the real `tessera serve` against a same-run ceiling.
#[derive(Debug, Parser)]
#[command(
    name = "tessera-bench",
    version,
    about = "Measure the release `tessera serve` under load, as ratios to a same-run ceiling.",
    long_about = "Measure the release `tessera serve` under load, as ratios to a same-run ceiling.\n\n\
                  Starts the real server (the `tessera` binary beside this one, or \
                  --server-binary) on a fresh store in a temporary folder (SQLite, or a fresh \
                  PostgreSQL database with --store postgres), and a trivial handler on the same \
                  HTTP stack (axum on a multi-thread tokio runtime) in another process: the \
                  ceiling. Each scenario is driven by one keep-alive HTTP/1.1 connection per \
                  virtual user on a one-thread runtime for --duration after --warmup; every \
                  response's status is checked, and a wrong one counts as an error, never as \
                  throughput. Prints a table and writes STORE.json and STORE.md (sqlite, \
                  postgres, sqlite-scale, ...) under --results, each scenario with its ratio to the ceiling and the target of \
                  docs/PERFORMANCE.md.\n\n\
                  Examples:\n  \
                  scripts/bench                                  # every scenario on SQLite\n  \
                  scripts/bench --scenario session --scenario issue --duration 5\n  \
                  scripts/bench --store postgres\n  \
                  scripts/bench --scale 10000,1000000            # pre-loaded live sessions"
)]
pub struct Cli {
    /// Internal subcommands.
    #[command(subcommand)]
    pub command: Option<Internal>,

    /// The benchmark's settings.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands the benchmark runs in its own child processes.
#[derive(Debug, Subcommand)]
pub enum Internal {
    /// Serve the ceiling: a fixed small JSON body to `GET /`, on the server's HTTP stack.
    #[command(hide = true)]
    CeilingServer {
        /// Where to listen; port 0 picks a free one. The bound address is printed first.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

/// Which store the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database `tessera_bench_<random>` on --postgres-url, dropped afterwards.
    Postgres,
}

impl StoreKind {
    /// `SQLite` or `PostgreSQL`.
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        }
    }
}

/// The scenarios, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    /// The trivial handler on the same HTTP stack (always measured: every ratio needs it).
    Ceiling,
    /// `GET /oauth20/access-tokens` with a bearer token from a pool of live tokens.
    Session,
    /// `POST /oauth20/introspect` of a pooled token, with client Basic authentication.
    Introspect,
    /// `POST /oauth20/token`: half anonymous, half partner-shopper grants.
    Issue,
    /// An anonymous grant, then `DELETE /oauth20/access-tokens` of its token, as pairs.
    Revoke,
    /// Refresh-token rotation: each virtual user follows its own chain.
    Refresh,
    /// Shopper login (password grant): bound by Argon2id by design; reported, not targeted.
    Login,
    /// Per virtual user: 80% session lookups, 10% issue, 5% refresh, 5% revoke.
    Mixed,
    /// RELIABILITY P14: paced session lookups alone, then again while --flood-connections
    /// flood the password grant; the two p99s and their ratio. Runs only when named.
    #[serde(rename = "password-flood")]
    PasswordFlood,
    /// RELIABILITY P15: paced session lookups alone, then again while --slow-connections
    /// hold slowloris heads, slow bodies, slow reads, 1 MiB bodies and 64 KiB headers;
    /// legitimate success, time to 413/431 and peak RSS. Runs only when named.
    #[serde(rename = "slow-clients")]
    SlowClients,
}

impl ScenarioKind {
    /// Every scenario, in the order they run.
    pub const ALL: [ScenarioKind; 10] = [
        ScenarioKind::Ceiling,
        ScenarioKind::Session,
        ScenarioKind::Introspect,
        ScenarioKind::Issue,
        ScenarioKind::Revoke,
        ScenarioKind::Refresh,
        ScenarioKind::Login,
        ScenarioKind::Mixed,
        ScenarioKind::PasswordFlood,
        ScenarioKind::SlowClients,
    ];

    /// The reliability scenarios (RELIABILITY P14, P15): they measure latency under
    /// attack rather than throughput, take two phases each, and run only when named.
    pub fn is_reliability(self) -> bool {
        matches!(
            self,
            ScenarioKind::PasswordFlood | ScenarioKind::SlowClients
        )
    }

    /// The name on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Ceiling => "ceiling",
            ScenarioKind::Session => "session",
            ScenarioKind::Introspect => "introspect",
            ScenarioKind::Issue => "issue",
            ScenarioKind::Revoke => "revoke",
            ScenarioKind::Refresh => "refresh",
            ScenarioKind::Login => "login",
            ScenarioKind::Mixed => "mixed",
            ScenarioKind::PasswordFlood => "password-flood",
            ScenarioKind::SlowClients => "slow-clients",
        }
    }
}

/// Everything that shapes a benchmark run.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// A scenario to run; repeat for several. Default: all of them but the reliability
    /// ones (`password-flood`, `slow-clients`), which run only when named. The ceiling is
    /// always measured first.
    #[arg(long = "scenario", value_enum, value_name = "NAME")]
    pub scenarios: Vec<ScenarioKind>,

    /// Concurrent keep-alive connections, one per virtual user.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,

    /// Connections for the `login` scenario, whose every request costs an Argon2id hash.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub login_connections: u32,

    /// `password-flood`: connections that flood the password grant (each request costs an
    /// Argon2id hash) while the lookups are measured.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub flood_connections: u32,

    /// `slow-clients`: attacking connections, split between slowloris heads (40%), slow
    /// bodies (20%), slow reads (20%), 1 MiB bodies (10%) and 64 KiB headers (10%).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(5..=10_000))]
    pub slow_connections: u32,

    /// `password-flood` and `slow-clients`: the fixed rate of the measured session lookups,
    /// in requests/s over all --connections (paced, so their latency is not queueing
    /// behind a saturated server).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub paced_rate: u32,

    /// Seconds each scenario is measured, after the warm-up.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub duration: Duration,

    /// Seconds each scenario runs before it is measured.
    #[arg(long, default_value = "2", value_parser = parse_seconds, value_name = "SECONDS")]
    pub warmup: Duration,

    /// The store the server runs on.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,

    /// PostgreSQL server on which --store postgres creates (and afterwards drops) a fresh
    /// database; its user must be allowed to create databases.
    #[arg(long, env = "TESSERA_BENCH_POSTGRES_URL", default_value = DEFAULT_POSTGRES_URL, value_name = "URL")]
    pub postgres_url: String,

    /// The `tessera` binary to start [default: the one beside this executable].
    #[arg(long, value_name = "PATH")]
    pub server_binary: Option<PathBuf>,

    /// Folder for the results files, STORE.json and STORE.md (created when missing).
    #[arg(long, default_value = "bench-results", value_name = "DIR")]
    pub results: PathBuf,

    /// Live access tokens pre-issued for the `session`, `introspect` and `mixed` lookups.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub pool: u32,

    /// Scale mode: comma-separated numbers of live sessions to pre-load (through the store,
    /// before the server starts), running `session` and `issue` at each size, e.g.
    /// `10000,1000000,10000000`.
    #[arg(long, value_delimiter = ',', value_name = "SESSIONS")]
    pub scale: Vec<u64>,

    /// Scale mode: how many of the pre-loaded tokens are kept in memory and looked up by
    /// the `session` scenario (a random sample spread over the whole table).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub scale_sample: u64,

    /// Log level of the server (`RUST_LOG`); low, so that logging does not dominate.
    #[arg(long, default_value = "warn", value_name = "FILTER")]
    pub server_log: String,

    /// A label written into the results, e.g. `baseline` or a branch name.
    #[arg(long, default_value = "", value_name = "TEXT")]
    pub label: String,

    /// Extra argument for `tessera serve` (repeat for several), e.g. `--server-arg=--store-max-connections=20`.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

impl RunArgs {
    /// The scenarios asked for, in run order, the ceiling first and always.
    pub fn scenarios_to_run(&self) -> Vec<ScenarioKind> {
        ScenarioKind::ALL
            .into_iter()
            .filter(|kind| {
                *kind == ScenarioKind::Ceiling
                    || (self.scenarios.is_empty() && !kind.is_reliability())
                    || self.scenarios.contains(kind)
            })
            .collect()
    }
}

fn parse_seconds(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number of seconds"))?;
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("`{value}` is not between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
