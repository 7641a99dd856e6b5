//! Fresh PostgreSQL databases for tests (the `test-support` feature): the store's behaviour
//! suite, the API tests and the real-binary tests each create one per test and drop it
//! afterwards.
//!
//! The server is `TESSERA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), a database of a role allowed to create
//! databases. When it cannot be reached, [`TestDatabase::create`] fails if the `CI`
//! environment variable is set (CI starts PostgreSQL, so a missing server is a broken
//! build), and otherwise prints a notice to stderr and returns `None`, so that a developer
//! without PostgreSQL sees the tests skipped, never silently passed.

use std::io::Write as _;
use std::str::FromStr as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};

use crate::PostgresUrl;

/// The environment variable naming the PostgreSQL server tests use.
pub const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";

/// The server tests use when [`POSTGRES_URL_VAR`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a test waits for PostgreSQL to answer before deciding it is not there.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a test database could not be had: a message for the test's failure report.
#[derive(thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

/// The message alone, as a test's `Error: ...` line shows it.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Self(crate::postgres::describe_connect_error(error))
    }
}

impl From<tessera_core::StoreError> for Error {
    fn from(error: tessera_core::StoreError) -> Self {
        Self(error.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Self(error.to_string())
    }
}

/// A database created for one test, dropped (with any connections still open to it) when
/// this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin: PgConnectOptions,
}

/// Whether this run is CI's, where PostgreSQL must be there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false" && value != "0")
}

/// The server URL tests use.
pub fn server_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

impl TestDatabase {
    /// Creates an empty database `tessera_test_<random>` on the test server; `None`, after
    /// a notice on stderr, when the server cannot be reached outside CI.
    pub async fn create() -> Result<Option<Self>, Error> {
        let server = server_url();
        let shown = PostgresUrl::parse(&server)
            .map_err(|e| format!("{POSTGRES_URL_VAR} is not a PostgreSQL URL: {e}"))?
            .to_string();
        let admin = PgConnectOptions::from_str(&server)
            .map_err(|_| format!("{POSTGRES_URL_VAR} cannot be parsed"))?
            .application_name("tessera-tests");
        if let Some(reason) = UNREACHABLE.get() {
            return skip_or_fail(&shown, reason);
        }
        let mut connection = match connect(&admin).await {
            Ok(connection) => connection,
            Err(error) => {
                // Decided once per test process, so that a missing server costs one wait.
                let reason = UNREACHABLE.get_or_init(|| error.to_string());
                return skip_or_fail(&shown, reason);
            }
        };
        let name = format!("tessera_test_{}", tessera_core::id::random_hex(8)?);
        // The name is made of hex digits only, so it needs no quoting.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await?;
        let _ = connection.close().await;
        let url = with_database(&server, &name)?;
        Ok(Some(Self { name, url, admin }))
    }

    /// The database's URL, for `tessera_store::open` or `--database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs SQL on this database over a connection of its own, e.g. to change a setting
    /// for the connections opened after it (`ALTER DATABASE ... SET ...`).
    pub async fn execute(&self, statement: &str) -> Result<(), Error> {
        let mut connection = PgConnection::connect(&self.url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut connection)
            .await?;
        connection.close().await?;
        Ok(())
    }
}

/// Set once PostgreSQL was found unreachable in this process.
static UNREACHABLE: OnceLock<String> = OnceLock::new();

/// Set once the skip notice was printed in this process.
static NOTICE_PRINTED: AtomicBool = AtomicBool::new(false);

/// Fails in CI; elsewhere prints the notice (once per process) and skips.
fn skip_or_fail(shown: &str, reason: &str) -> Result<Option<TestDatabase>, Error> {
    if in_ci() {
        return Err(format!(
            "PostgreSQL not reachable at {shown} ({reason}), and CI must run the PostgreSQL \
             tests: start PostgreSQL (.ci/run does) or set {POSTGRES_URL_VAR}"
        )
        .into());
    }
    if !NOTICE_PRINTED.swap(true, Ordering::SeqCst) {
        // Straight to the process's stderr: the test harness captures `eprintln!` of
        // passing tests, and this notice must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL not reachable at {shown} ({reason}); skipping PostgreSQL tests \
             (start it, or set {POSTGRES_URL_VAR} to a server that lets its user create \
             databases)"
        );
    }
    Ok(None)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot wait on the test's runtime, which may be shutting down: a thread with
        // a runtime of its own drops the database. `WITH (FORCE)` (PostgreSQL 13 and
        // later) ends connections a test left open.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await?;
                let _ = connection.close().await;
                Ok::<(), Error>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop the test database {}: {error}",
                self.name
            );
        }
    }
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, Error> {
    match tokio::time::timeout(REACH_TIMEOUT, options.connect()).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => Err(format!("no answer within {} s", REACH_TIMEOUT.as_secs()).into()),
    }
}

/// `server` with its database replaced by `database`, query parameters kept.
fn with_database(server: &str, database: &str) -> Result<String, Error> {
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| format!("{POSTGRES_URL_VAR} has no scheme"))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    let mut url = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() -> Result<(), Error> {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1")?,
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t2")?,
            "postgresql://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t3")?, "postgres://h/t3");
        Ok(())
    }
}
