//! Tessera's storage backends and the one place that picks among them.
//!
//! [`open`] reads a database URL and returns the matching backend as an
//! `Arc<dyn tessera_core::Store>`; the rest of Tessera never learns which one it got. Each
//! backend lives in its own module with its own SQL and its own migrations folder
//! (`migrations/<backend>/`), so no query ever branches on the database kind. Today there
//! is SQLite ([`sqlite`]); PostgreSQL comes later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::Store;

pub mod sqlite;

pub use sqlite::SqliteStore;

/// Settings every backend understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a write waits for a lock held by someone else (another process on the same
    /// SQLite file, or the queue in front of this process's single writer) before the store
    /// answers [`tessera_core::StoreError::Unavailable`], which the server turns into a 503.
    pub busy_timeout: Duration,
    /// Connections kept for lookups, beside the single writer connection.
    pub read_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
        }
    }
}

const SQLITE_EXAMPLE: &str = "sqlite://./tessera-data/tessera.db";

/// Why a store could not be opened. Messages name the file but never repeat the URL, which
/// for a server database may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A `postgres://` or `postgresql://` URL.
    #[error("PostgreSQL support is not built yet; use a SQLite URL such as {SQLITE_EXAMPLE}")]
    PostgresNotBuilt,
    /// A URL whose scheme names no backend Tessera has.
    #[error(
        "unsupported database URL scheme `{scheme}`; use a SQLite URL such as {SQLITE_EXAMPLE}"
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
}

/// What a database URL points at.
enum Target {
    Sqlite(PathBuf),
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
            "postgres" | "postgresql" => Err(OpenError::PostgresNotBuilt),
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
        Err(_) => None,
    }
}

/// Opens the store `database_url` names, creating and migrating it on first use.
///
/// For SQLite (`sqlite://PATH` or `sqlite:PATH`, relative paths from the working
/// directory) the parent folder and the file are created when missing; an existing file
/// must pass `PRAGMA quick_check`.
pub async fn open(database_url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, OpenError> {
    match Target::parse(database_url)? {
        Target::Sqlite(path) => {
            create_parent(&path)?;
            let store = SqliteStore::open(&path, options).await?;
            Ok(Arc::new(store))
        }
    }
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
    fn postgres_urls_say_postgres_is_not_built_yet() {
        for url in [
            "postgres://tessera:hunter2@localhost/tessera",
            "postgresql://localhost/tessera",
        ] {
            let Err(error) = Target::parse(url) else {
                panic!("{url} must be refused");
            };
            let message = error.to_string();
            assert!(
                message.contains("PostgreSQL support is not built yet"),
                "{message}"
            );
            assert!(!message.contains("hunter2"));
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
