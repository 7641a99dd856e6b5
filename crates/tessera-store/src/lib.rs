//! Tessera's storage backends and the one place that picks among them.
//!
//! [`open`] reads a database URL and returns the matching backend as an
//! `Arc<dyn tessera_core::Store>`; the rest of Tessera never learns which one it got. Each
//! backend lives in its own module with its own SQL and its own migrations folder
//! (`migrations/<backend>/`), so no query ever branches on the database kind: SQLite
//! ([`sqlite`], one file, one node) and PostgreSQL ([`postgres`], one database shared by
//! any number of nodes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::Store;

mod bulk_import;
mod metered;
pub mod postgres;
mod row_decoders;
pub mod sqlite;
mod sweep;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use metered::MeteredStore;
pub use postgres::{PostgresStore, PostgresUrl};
pub use sqlite::SqliteStore;

/// Settings every backend understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a write waits for a lock held by someone else (another process on the same
    /// SQLite file, or the queue in front of this process's single writer) before the store
    /// answers [`tessera_core::StoreError::Unavailable`], which the server turns into a 503.
    pub busy_timeout: Duration,
    /// Connections kept for lookups, beside the single writer connection (SQLite).
    pub read_connections: u32,
    /// The most connections the pool opens (PostgreSQL): the most store operations one
    /// node runs at once. Further requests queue for a connection.
    pub max_connections: u32,
    /// How long a store operation waits for a pooled connection, including opening a new
    /// one, before answering [`tessera_core::StoreError::Unavailable`] (PostgreSQL). While
    /// the database is unreachable, requests fail after this long.
    pub acquire_timeout: Duration,
    /// The longest one statement may run before the server cancels it, which the store
    /// answers with [`tessera_core::StoreError::Unavailable`] (PostgreSQL). On PostgreSQL,
    /// `busy_timeout` is the `lock_timeout`: how long a statement waits for a row lock.
    pub statement_timeout: Duration,
    /// Serve even when PostgreSQL's `fsync` or `synchronous_commit` is off (or cannot be
    /// read), with a warning in the log, instead of refusing to start. Acknowledged writes
    /// may then be lost in a crash (RELIABILITY P7).
    pub allow_unsafe_postgres: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            allow_unsafe_postgres: false,
        }
    }
}

const SQLITE_EXAMPLE: &str = "sqlite://./tessera-data/tessera.db";
const POSTGRES_EXAMPLE: &str = "postgres://tessera@db.internal/tessera";

/// Why a store could not be opened. Messages name the file but never repeat the URL, which
/// for a server database may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A URL whose scheme names no backend Tessera has.
    #[error(
        "unsupported database URL scheme `{scheme}`; use a SQLite URL such as \
         {SQLITE_EXAMPLE} or a PostgreSQL URL such as {POSTGRES_EXAMPLE}"
    )]
    UnsupportedScheme {
        /// The scheme as given, or `(none)`.
        scheme: String,
    },
    /// A URL with a known scheme that Tessera cannot use.
    #[error("invalid database URL: {0}")]
    InvalidUrl(&'static str),
    /// The folder meant to hold the database file could not be created.
    #[error("cannot create the database folder {}", .path.display())]
    CreateFolder {
        /// The folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or read.
    #[error("cannot open the database {}", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file exists but is not a database of the expected kind; it is left untouched.
    #[error("{} is not a SQLite database; refusing to use it", .path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The database failed its integrity check at start-up.
    #[error("the database {} is corrupt ({report}); restore it from a backup", .path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The first problems the integrity check found.
        report: String,
    },
    /// The database did not take a setting Tessera's durability promises depend on.
    #[error("the database {} did not accept the setting {setting}", .path.display())]
    Setting {
        /// The database file.
        path: PathBuf,
        /// The setting, e.g. `journal_mode=WAL`.
        setting: &'static str,
    },
    /// The schema could not be brought up to date (for example, the file was written by a
    /// newer Tessera).
    #[error("cannot bring the schema of {} up to date", .path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The migrator's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// PostgreSQL could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}")]
    PostgresConnect {
        /// The database, as [`PostgresUrl`] shows it (never with a password).
        target: String,
        /// What went wrong, described without the URL.
        #[source]
        source: tessera_core::StoreError,
    },
    /// PostgreSQL may acknowledge a commit before it is on disk.
    #[error(
        "PostgreSQL at {target} has {setting} = {value}, so it may acknowledge writes that a \
         crash then loses; turn {setting} on, or start with --allow-unsafe-postgres to serve \
         anyway"
    )]
    UnsafePostgres {
        /// The database, as [`PostgresUrl`] shows it.
        target: String,
        /// `fsync` or `synchronous_commit`.
        setting: &'static str,
        /// What the server reported (`unknown` if it could not be read).
        value: String,
    },
    /// The PostgreSQL schema could not be brought up to date.
    #[error("cannot bring the schema of PostgreSQL at {target} up to date")]
    PostgresMigrate {
        /// The database, as [`PostgresUrl`] shows it.
        target: String,
        /// The migrator's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a database URL points at.
enum Target {
    Sqlite(PathBuf),
    Postgres(Box<PostgresUrl>),
}

impl Target {
    fn parse(url: &str) -> Result<Self, OpenError> {
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(OpenError::UnsupportedScheme {
                scheme: "(none)".to_owned(),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => sqlite_target(rest),
            "postgres" | "postgresql" => {
                PostgresUrl::parse(url).map(|url| Target::Postgres(Box::new(url)))
            }
            // Only echo something that looks like a scheme: whatever precedes the first
            // colon of a malformed URL could be a user name or a password.
            other if is_scheme_like(other) => Err(OpenError::UnsupportedScheme {
                scheme: other.to_owned(),
            }),
            _ => Err(OpenError::UnsupportedScheme {
                scheme: "(none)".to_owned(),
            }),
        }
    }
}

fn is_scheme_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 16
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
}

/// `sqlite://PATH` and `sqlite:PATH`; `sqlite:///abs/path` is absolute, anything else is
/// relative to the working directory.
fn sqlite_target(rest: &str) -> Result<Target, OpenError> {
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.contains('?') {
        return Err(OpenError::InvalidUrl(
            "SQLite URLs take no query parameters: Tessera sets the connection options itself",
        ));
    }
    if path.is_empty() {
        return Err(OpenError::InvalidUrl("the SQLite URL names no file"));
    }
    if path == ":memory:" || path.starts_with("file:") {
        // The writer and the readers are separate connections, so an in-memory database
        // would give each its own empty copy.
        return Err(OpenError::InvalidUrl(
            "Tessera needs a SQLite database file, not an in-memory database",
        ));
    }
    Ok(Target::Sqlite(PathBuf::from(path)))
}

/// The file a `sqlite:` URL names, so the binary can find its data folder; `None` for any
/// other URL.
pub fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    match Target::parse(database_url) {
        Ok(Target::Sqlite(path)) => Some(path),
        Ok(Target::Postgres(_)) | Err(_) => None,
    }
}

/// Opens the store `database_url` names, creating and migrating it on first use.
///
/// For SQLite (`sqlite://PATH` or `sqlite:PATH`, relative paths from the working
/// directory) the parent folder and the file are created when missing; an existing file
/// must pass `PRAGMA quick_check`.
///
/// For PostgreSQL (`postgres://` or `postgresql://`, as libpq takes them) the database must
/// exist; its `fsync` and `synchronous_commit` must be on unless
/// [`StoreOptions::allow_unsafe_postgres`], and its schema is created or brought up to date
/// under an advisory lock, so nodes starting at once take turns.
pub async fn open(database_url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, OpenError> {
    match Target::parse(database_url)? {
        Target::Sqlite(path) => {
            create_parent(&path)?;
            let store = SqliteStore::open(&path, options).await?;
            Ok(Arc::new(store))
        }
        Target::Postgres(url) => Ok(Arc::new(PostgresStore::open(&url, options).await?)),
    }
}

/// What [`migrate`] brought a store to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaVersion {
    /// `SQLite` or `PostgreSQL`.
    pub backend: &'static str,
    /// The newest migration this build knows, which the store's schema is now at.
    pub version: i64,
    /// That migration's description, e.g. `initial`.
    pub description: String,
}

/// Opens the store `database_url` names, which applies any pending migrations (creating
/// the store if need be, as [`open`] does), closes it again, and reports the schema version.
pub async fn migrate(
    database_url: &str,
    options: &StoreOptions,
) -> Result<SchemaVersion, OpenError> {
    let (backend, migrator) = match Target::parse(database_url)? {
        Target::Sqlite(_) => ("SQLite", &sqlite::MIGRATOR),
        Target::Postgres(_) => ("PostgreSQL", &postgres::MIGRATOR),
    };
    let store = open(database_url, options).await?;
    store.close().await;
    let (version, description) = migrator
        .iter()
        .last()
        .map(|m| (m.version, m.description.to_string()))
        .unwrap_or_default();
    Ok(SchemaVersion {
        backend,
        version,
        description,
    })
}

fn create_parent(path: &Path) -> Result<(), OpenError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|source| OpenError::CreateFolder {
                path: parent.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_files_relative_to_the_working_directory() {
        assert_eq!(
            sqlite_path("sqlite://./tessera-data/tessera.db"),
            Some(PathBuf::from("./tessera-data/tessera.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:tessera.db"),
            Some(PathBuf::from("tessera.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://data/tessera.db"),
            Some(PathBuf::from("data/tessera.db"))
        );
        assert_eq!(
            sqlite_path("SQLite:///var/lib/tessera/tessera.db"),
            Some(PathBuf::from("/var/lib/tessera/tessera.db"))
        );
    }

    #[test]
    fn unusable_sqlite_urls_are_refused() {
        for url in [
            "sqlite:",
            "sqlite://",
            "sqlite::memory:",
            "sqlite://x.db?mode=ro",
            "sqlite:file:x.db",
        ] {
            assert!(
                matches!(Target::parse(url), Err(OpenError::InvalidUrl(_))),
                "{url}"
            );
            assert_eq!(sqlite_path(url), None, "{url}");
        }
    }

    #[test]
    fn postgres_urls_select_postgres_and_hide_the_password() {
        for url in [
            "postgres://tessera:hunter2@localhost/tessera",
            "postgresql://tessera:hunter2@localhost/tessera",
            "PostgreSQL://tessera:hunter2@localhost/tessera",
        ] {
            let Ok(Target::Postgres(parsed)) = Target::parse(url) else {
                panic!("{url} must select PostgreSQL");
            };
            assert_eq!(
                parsed.to_string(),
                "postgres://tessera@localhost:5432/tessera"
            );
            assert!(!format!("{parsed:?}").contains("hunter2"));
            assert_eq!(sqlite_path(url), None);
        }
    }

    #[test]
    fn other_schemes_are_named_but_nothing_else_is_echoed() {
        let Err(error) = Target::parse("mysql://root:hunter2@db/tessera") else {
            panic!("mysql must be refused");
        };
        let message = error.to_string();
        assert!(message.contains("`mysql`"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");

        let Err(error) = Target::parse("hunter2 and spaces:rest") else {
            panic!("a malformed URL must be refused");
        };
        assert!(!error.to_string().contains("hunter2"));

        assert!(matches!(
            Target::parse("tessera.db"),
            Err(OpenError::UnsupportedScheme { .. })
        ));
    }
}
