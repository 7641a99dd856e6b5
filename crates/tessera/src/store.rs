//! Opening the store named by `--database-url`, shared by `serve`, the admin commands and
//! `migrate`.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tessera_core::Store;
use tessera_store::StoreOptions;

use crate::cli::Cli;

/// Opens the store, creating the SQLite file's folder first so that a fresh machine needs
/// no set-up step.
pub async fn open(cli: &Cli) -> anyhow::Result<Arc<dyn Store>> {
    create_sqlite_folder(cli)?;
    tessera_store::open(&cli.database_url, &options(cli))
        .await
        .with_context(|| format!("cannot open the store {}", redacted(&cli.database_url)))
}

/// Creates the SQLite file's folder, private, when the store is a SQLite file.
fn create_sqlite_folder(cli: &Cli) -> anyhow::Result<()> {
    match tessera_store::sqlite_path(&cli.database_url)
        .as_deref()
        .and_then(Path::parent)
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        Some(folder) => create_private_folder(folder),
        None => Ok(()),
    }
}

/// The store settings the command line gives.
pub fn options(cli: &Cli) -> StoreOptions {
    StoreOptions {
        busy_timeout: Duration::from_millis(cli.store_busy_timeout_ms),
        max_connections: cli.store_max_connections,
        acquire_timeout: Duration::from_millis(cli.store_acquire_timeout_ms),
        statement_timeout: Duration::from_millis(cli.store_statement_timeout_ms),
        allow_unsafe_postgres: cli.allow_unsafe_postgres,
        ..StoreOptions::default()
    }
}

/// `tessera migrate`: opens the store, which applies pending migrations, and says where
/// its schema is now.
pub async fn migrate(cli: &Cli) -> anyhow::Result<()> {
    create_sqlite_folder(cli)?;
    let schema = tessera_store::migrate(&cli.database_url, &options(cli))
        .await
        .with_context(|| format!("cannot migrate the store {}", redacted(&cli.database_url)))?;
    println!(
        "migrate: {} schema at version {} ({})",
        schema.backend, schema.version, schema.description
    );
    Ok(())
}

/// Creates `folder` and any missing parents with mode 0700: the data folder holds the
/// store and the token key file, which nobody else has any business reading. Folders that
/// already exist keep their mode.
pub fn create_private_folder(folder: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .with_context(|| format!("cannot create folder {}", folder.display()))
}

/// The URL with any password in it replaced, fit for logs and error messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority
        .rsplit_once('@')
        .and_then(|(user_info, host)| Some((user_info.split_once(':')?.0, host)))
    {
        Some((user, host)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_hidden() {
        assert_eq!(
            redacted("postgres://tessera:hunter2@db:5432/tessera"),
            "postgres://tessera:***@db:5432/tessera"
        );
        assert_eq!(
            redacted("sqlite://./tessera-data/tessera.db"),
            "sqlite://./tessera-data/tessera.db"
        );
        assert_eq!(redacted("sqlite:t.db"), "sqlite:t.db");
        assert_eq!(
            redacted("postgres://tessera@db/x"),
            "postgres://tessera@db/x"
        );
    }
}
