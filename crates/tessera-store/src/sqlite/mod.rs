//! The SQLite store: one file, one writer connection on a thread of its own (`writer.rs`),
//! a few read-only connections, and one connection that checkpoints the WAL beside the
//! writer (`checkpoint.rs`).
//!
//! Durability settings follow RELIABILITY.md: WAL journal, `synchronous=NORMAL` with a
//! batched `fdatasync` of the WAL that every write waits for before it is acknowledged
//! (group commit, P6/P7; see `writer.rs`), `foreign_keys=ON`, a `busy_timeout` that turns a
//! lock held elsewhere into [`StoreError::Unavailable`] (P11), and `quick_check` before the
//! file is used. All writes go through a single connection, so this process never contends
//! with itself for SQLite's one write lock; lookups use a separate read-only pool, which in
//! WAL mode never waits for the writer. Writes that other processes on the same file must
//! hear of bump the counter in `<database>-changes` (`changes.rs`).

mod changes;
mod checkpoint;
mod error;
mod logout;
mod migration;
mod params;
mod refresh;
mod rows;
mod session_admin;
mod session_join;
mod sql;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tessera_core::client::{ClientRecord, ClientSecretHash};
use tessera_core::logout::{LoggedOut, Logout};
use tessera_core::rotation::{RefreshExchange, RefreshOutcome};
use tessera_core::session::{SessionRecord, TokenLookup, TokenRecord};
use tessera_core::shopper::ShopperRecord;
use tessera_core::store::{ChangeSignal, ClientStore, SessionStore, ShopperStore, Store};
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use self::changes::ChangeFile;
use self::error::store_error;
use self::rows::Columns;
use self::writer::{Notify, Opener, Writer};
use crate::{OpenError, StoreOptions};

/// Bytes a WAL file is truncated to when SQLite starts it again.
const JOURNAL_SIZE_LIMIT: u64 = 32 * 1024 * 1024;

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// A Tessera store in one SQLite file.
///
/// Every write runs on the writer thread inside a `BEGIN IMMEDIATE` transaction it shares
/// with the writes queued beside it (a failing write is undone alone: see `writer.rs`): no
/// write can fail half-way for want of a lock, and a lock held too long elsewhere ends in
/// [`StoreError::Unavailable`] after `busy_timeout`. Every write returns only once it is
/// on disk.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The writer thread; its writes wait for the durability barrier.
    write: Writer,
    /// Read-only connections for lookups.
    read: SqlitePool,
    /// The `-changes` counter; `None` when the file could not be opened.
    changes: Option<Arc<ChangeFile>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`, checks it, and applies any
    /// pending migrations. The parent folder must exist.
    pub async fn open(path: &Path, options: &StoreOptions) -> Result<Self, OpenError> {
        let common = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);

        // A connection of its own creates the file, checks it and migrates it, in the same
        // settings as the writer thread's; the writer thread takes over once it is ready.
        let setup_options = common
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let checkpoint_options = setup_options.clone();
        let setup = pool_options(1, options)
            .min_connections(1)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    // A file SQLite could open only read-only is refused at once rather
                    // than found out at the first write.
                    sqlx::raw_sql(sql::PROBE_WRITE_LOCK)
                        .execute(&mut *connection)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(setup_options)
            .await
            .map_err(|e| open_error(path, e))?;

        let checked = async {
            check_integrity(&setup, path).await?;
            check_settings(&setup, path).await?;
            migrate(&setup, path).await
        };
        if let Err(error) = checked.await {
            setup.close().await;
            return Err(error);
        }
        let changes = match ChangeFile::open(path) {
            Ok(changes) => Some(Arc::new(changes)),
            Err(error) => {
                tracing::warn!(
                    path = %changes::path_for(path).display(),
                    %error,
                    "cannot open the change counter; other processes' writes cannot be \
                     detected, so no lookup will be cached"
                );
                None
            }
        };
        let checkpoint = match pool_options(1, options)
            .connect_with(checkpoint_options)
            .await
        {
            Ok(connection) => connection,
            Err(error) => {
                setup.close().await;
                return Err(open_error(path, error));
            }
        };
        let opener = Opener {
            path: path.to_owned(),
            busy_timeout: options.busy_timeout,
            journal_size_limit: JOURNAL_SIZE_LIMIT,
        };
        let started = Writer::start(opener, changes.clone(), checkpoint).await;
        // Closed only now, so that it is never the last connection to the file (which
        // would checkpoint and remove the WAL on its way out).
        setup.close().await;
        let write = started.map_err(|error| OpenError::Open {
            path: path.to_owned(),
            source: Box::new(error),
        })?;
        // The migrations (and the WAL file just created) reach the disk before anything
        // is served from them.
        if let Err(error) = write.sync().await {
            write.close().await;
            return Err(OpenError::Open {
                path: path.to_owned(),
                source: Box::new(error),
            });
        }

        // Opened after the writer has created the file and its WAL index, which a
        // read-only connection cannot create itself.
        let read = match pool_options(options.read_connections.max(1), options)
            .connect_with(common.read_only(true))
            .await
        {
            Ok(read) => read,
            Err(error) => {
                write.close().await;
                return Err(open_error(path, error));
            }
        };

        tracing::debug!(
            path = %path.display(),
            read_connections = options.read_connections.max(1),
            "opened the SQLite store"
        );
        Ok(Self {
            write,
            read,
            changes,
        })
    }
}

fn pool_options(connections: u32, options: &StoreOptions) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(connections)
        // Waiting longer for our own writer than for another process's lock would make the
        // timeout meaningless; either way the caller answers 503 and may retry.
        .acquire_timeout(options.busy_timeout)
        // A local file does not go stale the way a network connection does: no per-use
        // ping, no recycling.
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
}

fn open_error(path: &Path, error: sqlx::Error) -> OpenError {
    let path = path.to_owned();
    if error::is_not_a_database(&error) {
        OpenError::NotADatabase { path }
    } else if let (true, sqlx::Error::Database(db)) = (error::is_corrupt(&error), &error) {
        OpenError::Corrupt {
            path,
            report: error::describe(db.as_ref()),
        }
    } else {
        OpenError::Open {
            path,
            source: Box::new(error),
        }
    }
}

/// `PRAGMA quick_check`: refuse a damaged file rather than serve from it.
async fn check_integrity(write: &SqlitePool, path: &Path) -> Result<(), OpenError> {
    let report: Vec<String> = sqlx::query_scalar(sql::QUICK_CHECK)
        .fetch_all(write)
        .await
        .map_err(|e| open_error(path, e))?;
    if report.len() == 1 && report[0] == "ok" {
        return Ok(());
    }
    let mut summary = report.into_iter().take(3).collect::<Vec<_>>().join("; ");
    if summary.is_empty() {
        summary = "the integrity check returned nothing".to_owned();
    }
    Err(OpenError::Corrupt {
        path: path.to_owned(),
        report: summary,
    })
}

/// The connection options ask for these; check SQLite took them, since it can silently
/// refuse (WAL on a file system without shared memory, for one).
async fn check_settings(write: &SqlitePool, path: &Path) -> Result<(), OpenError> {
    let setting = |setting| OpenError::Setting {
        path: path.to_owned(),
        setting,
    };
    let journal: String = sqlx::query_scalar(sql::JOURNAL_MODE)
        .fetch_one(write)
        .await
        .map_err(|e| open_error(path, e))?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(setting("journal_mode=WAL"));
    }
    // 1 is NORMAL (https://sqlite.org/pragma.html#pragma_synchronous): no fsync at commit
    // in WAL mode, which the writer's barrier makes up for.
    let synchronous: i64 = sqlx::query_scalar(sql::SYNCHRONOUS)
        .fetch_one(write)
        .await
        .map_err(|e| open_error(path, e))?;
    if synchronous != 1 {
        return Err(setting("synchronous=NORMAL"));
    }
    let foreign_keys: i64 = sqlx::query_scalar(sql::FOREIGN_KEYS)
        .fetch_one(write)
        .await
        .map_err(|e| open_error(path, e))?;
    if foreign_keys != 1 {
        return Err(setting("foreign_keys=ON"));
    }
    Ok(())
}

/// Applies pending migrations inside one `BEGIN IMMEDIATE`, so two processes starting on a
/// new file at once take turns instead of both creating the schema.
async fn migrate(write: &SqlitePool, path: &Path) -> Result<(), OpenError> {
    let migrate_error = |source: Box<dyn std::error::Error + Send + Sync>| OpenError::Migrate {
        path: PathBuf::from(path),
        source,
    };
    let mut tx = write
        .begin_with(sql::BEGIN_IMMEDIATE)
        .await
        .map_err(|e| open_error(path, e))?;
    // The migrator's own per-migration transactions become savepoints inside this one.
    MIGRATOR
        .run(&mut *tx)
        .await
        .map_err(|e| migrate_error(Box::new(e)))?;
    tx.commit().await.map_err(|e| migrate_error(Box::new(e)))?;
    Ok(())
}

fn bind_hash(hash: &TokenHash) -> &[u8] {
    &hash.0
}

impl SqliteStore {
    /// One statement on the writer thread; the rows it changed.
    async fn execute(
        &self,
        notify: Notify,
        statement: &'static str,
        params: Vec<Value>,
    ) -> Result<usize, StoreError> {
        self.write
            .write(notify, move |connection| {
                let changed = params::run(connection, statement, &params)?;
                Ok((changed, changed > 0))
            })
            .await
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.execute(Notify::Nobody, sql::INSERT_CLIENT, params::client(client))
            .await?;
        Ok(())
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query(sql::CLIENT_BY_ID)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        row.map(|row| rows::client(&mut Columns::new(&row)))
            .transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let found = sqlx::query(sql::ALL_CLIENTS)
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        found
            .iter()
            .map(|row| rows::client(&mut Columns::new(row)))
            .collect()
    }

    async fn set_client_secret(
        &self,
        id: &str,
        secret: &ClientSecretHash,
    ) -> Result<bool, StoreError> {
        let params = vec![Value::Blob(secret.to_bytes()), params::text(id)];
        let changed = self
            .execute(Notify::OtherProcesses, sql::SET_CLIENT_SECRET, params)
            .await?;
        Ok(changed == 1)
    }

    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        // SQLite counts matched rows, so setting the value a client already has is `true`.
        let params = vec![params::integer(disabled), params::text(id)];
        let changed = self
            .execute(Notify::OtherProcesses, sql::SET_CLIENT_DISABLED, params)
            .await?;
        Ok(changed == 1)
    }
}

#[async_trait]
impl ShopperStore for SqliteStore {
    async fn insert_shopper(&self, shopper: &ShopperRecord) -> Result<(), StoreError> {
        self.execute(
            Notify::Nobody,
            sql::INSERT_SHOPPER,
            params::shopper(shopper),
        )
        .await?;
        Ok(())
    }

    async fn shopper(&self, id: &str) -> Result<Option<ShopperRecord>, StoreError> {
        let row = sqlx::query(sql::SHOPPER_BY_ID)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        row.map(|row| rows::shopper(&mut Columns::new(&row)))
            .transpose()
    }

    async fn shopper_by_external_reference(
        &self,
        external_reference_id: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        let row = sqlx::query(sql::SHOPPER_BY_EXTERNAL_REFERENCE)
            .bind(external_reference_id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        row.map(|row| rows::shopper(&mut Columns::new(&row)))
            .transpose()
    }

    async fn shopper_by_username(
        &self,
        username: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        let row = sqlx::query(sql::SHOPPER_BY_USERNAME)
            .bind(username)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        row.map(|row| rows::shopper(&mut Columns::new(&row)))
            .transpose()
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError> {
        let session = params::session(session);
        let tokens: Vec<_> = tokens.iter().map(params::token).collect();
        // An error undoes this write's statements: all or nothing.
        self.write
            .write(Notify::Nobody, move |connection| {
                params::run(connection, sql::INSERT_SESSION, &session)?;
                params::insert_tokens(connection, &tokens)?;
                Ok(((), true))
            })
            .await
    }

    async fn lookup_token(&self, hash: &TokenHash) -> Result<Option<TokenLookup>, StoreError> {
        let row = sqlx::query(sql::LOOKUP_TOKEN)
            .bind(bind_hash(hash))
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        row.as_ref().map(rows::lookup).transpose()
    }

    async fn end_session_if_newest(
        &self,
        session_id: &str,
        access: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let params = vec![
            params::millis(now),
            params::id(session_id),
            params::hash(access),
        ];
        let changed = self
            .execute(Notify::OtherProcesses, sql::END_SESSION_IF_NEWEST, params)
            .await?;
        Ok(changed == 1)
    }

    async fn revoke_token(&self, hash: &TokenHash, now: Timestamp) -> Result<bool, StoreError> {
        let params = vec![params::millis(now), params::hash(hash)];
        let changed = self
            .execute(Notify::OtherProcesses, sql::REVOKE_TOKEN, params)
            .await?;
        Ok(changed == 1)
    }

    async fn touch_session(&self, session_id: &str, now: Timestamp) -> Result<(), StoreError> {
        let params = vec![params::millis(now), params::id(session_id)];
        self.execute(Notify::Nobody, sql::TOUCH_SESSION, params)
            .await?;
        Ok(())
    }

    async fn revoke_session(&self, session_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let params = vec![params::millis(now), params::id(session_id)];
        let changed = self
            .execute(Notify::OtherProcesses, sql::REVOKE_SESSION, params)
            .await?;
        Ok(changed == 1)
    }

    async fn rotate_refresh(
        &self,
        consumed: &TokenHash,
        now: Timestamp,
        access: &TokenRecord,
        refresh: &TokenRecord,
    ) -> Result<bool, StoreError> {
        let consume = vec![
            params::millis(now),
            params::hash(consumed),
            params::id(&refresh.session_id),
        ];
        let tokens = vec![params::token(access), params::token(refresh)];
        let newest = vec![params::hash(&access.hash), params::id(&access.session_id)];
        // An error undoes this write's statements: a failed insert leaves the old refresh
        // token unconsumed.
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                // Whether the refresh token was still unconsumed decides the whole rotation:
                // a lost race writes nothing.
                if params::run(connection, sql::CONSUME_REFRESH, &consume)? != 1 {
                    return Ok((false, false));
                }
                params::insert_tokens(connection, &tokens)?;
                params::run(connection, sql::SET_NEWEST_ACCESS, &newest)?;
                Ok((true, true))
            })
            .await
    }

    async fn exchange_refresh(
        &self,
        exchange: &RefreshExchange,
    ) -> Result<RefreshOutcome, StoreError> {
        let exchange = exchange.clone();
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                refresh::exchange(connection, &exchange)
            })
            .await?
    }

    async fn log_out(&self, logout: &Logout) -> Result<Option<LoggedOut>, StoreError> {
        let logout = *logout;
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                logout::log_out(connection, &logout)
            })
            .await?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        if self.write.is_closed() {
            return Err(StoreError::Unavailable("the store is closed".to_owned()));
        }
        sqlx::query(sql::PING)
            .execute(&self.read)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn close(&self) {
        // Readers first: when the writer, the last connection, closes, SQLite checkpoints
        // the WAL into the main file and removes it.
        self.read.close().await;
        self.write.close().await;
    }

    fn change_signal(&self) -> Option<Arc<dyn ChangeSignal>> {
        self.changes
            .clone()
            .map(|changes| changes as Arc<dyn ChangeSignal>)
    }
}
