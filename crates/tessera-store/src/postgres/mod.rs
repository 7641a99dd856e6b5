//! The PostgreSQL store: one database shared by any number of Tessera nodes, reached
//! through a pool of connections.
//!
//! At start it checks that the server acknowledges a commit only once it is on disk
//! (`fsync` and `synchronous_commit` on, RELIABILITY P7) and refuses to serve otherwise
//! unless told to, then applies pending migrations under the migrator's advisory lock, so
//! nodes starting together take turns. Each write is one conditional statement or one
//! transaction, at PostgreSQL's default READ COMMITTED isolation, in which a conditional
//! `UPDATE` that waited for a concurrent change checks its condition again against the
//! committed row: of two racing rotations or revocations exactly one wins, as on SQLite.
//! A serialization failure or a deadlock rolls the whole transaction back; it is run again
//! up to [`ATTEMPTS`] times in all, then reported as [`StoreError::Unavailable`] (503).
//! Every connection carries a `statement_timeout` and a `lock_timeout`, so a stuck server
//! or a held lock turns into a quick 503 rather than a hung request (P11).

mod error;
mod migration;
mod rows;
mod session_admin;
mod session_join;
mod sql;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Row as _};
use tessera_core::client::{ClientRecord, ClientSecretHash};
use tessera_core::session::{SessionRecord, TokenLookup, TokenRecord};
use tessera_core::shopper::ShopperRecord;
use tessera_core::store::{ClientStore, SessionStore, ShopperStore, Store};
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use self::error::{Failure, store_error};
use self::rows::Columns;
use crate::{OpenError, StoreOptions};

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How many times in all a transaction rolled back by a serialization failure or a
/// deadlock is run before the store gives up with [`StoreError::Unavailable`].
pub const ATTEMPTS: u32 = 3;

/// A `postgres://` or `postgresql://` URL, parsed. Its `Debug` and `Display` show the
/// user, host, port and database but never the password, so it is safe in errors and logs.
#[derive(Clone)]
pub struct PostgresUrl {
    options: PgConnectOptions,
    shown: String,
}

impl PostgresUrl {
    /// Parses a PostgreSQL URL (with the `postgres` or `postgresql` scheme; query
    /// parameters as libpq takes them, e.g. `?sslmode=disable`).
    pub fn parse(url: &str) -> Result<Self, OpenError> {
        // The parser's own error could quote the URL, password and all: only a fixed text
        // goes out.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| OpenError::InvalidUrl("the PostgreSQL URL cannot be parsed"))?;
        let shown = match options.get_database() {
            Some(database) => format!(
                "postgres://{}@{}:{}/{database}",
                options.get_username(),
                options.get_host(),
                options.get_port()
            ),
            None => format!(
                "postgres://{}@{}:{}",
                options.get_username(),
                options.get_host(),
                options.get_port()
            ),
        };
        Ok(Self { options, shown })
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl").field(&self.shown).finish()
    }
}

/// A Tessera store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects, checks the server's durability settings, and applies any pending
    /// migrations. The database must exist; its schema is created on first use.
    pub async fn open(url: &PostgresUrl, options: &StoreOptions) -> Result<Self, OpenError> {
        let connect_error = |source: sqlx::Error| OpenError::PostgresConnect {
            target: url.to_string(),
            source: store_error(source),
        };
        let base = url.options.clone().application_name("tessera");
        let pooled = base.clone().options([
            ("statement_timeout", options.statement_timeout.as_millis()),
            ("lock_timeout", options.busy_timeout.as_millis()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            // A connection the server dropped (a restart, a failover) is noticed before a
            // request gets it, so the nodes recover on their own when PostgreSQL returns.
            .test_before_acquire(true)
            .connect_with(pooled)
            .await
            .map_err(connect_error)?;

        let checked = async {
            check_durability(&pool, url, options.allow_unsafe_postgres).await?;
            migrate(&base, url).await
        };
        if let Err(error) = checked.await {
            pool.close().await;
            return Err(error);
        }
        tracing::debug!(
            database = %url,
            max_connections = options.max_connections.max(1),
            "opened the PostgreSQL store"
        );
        Ok(Self { pool })
    }
}

/// `SHOW fsync` and `SHOW synchronous_commit` on a pooled connection, which commits with
/// the settings it reports. Either being `off` means a commit may be acknowledged before
/// it is on disk: refused, unless `allow_unsafe`, which only warns.
async fn check_durability(
    pool: &PgPool,
    url: &PostgresUrl,
    allow_unsafe: bool,
) -> Result<(), OpenError> {
    for (setting, statement) in [
        ("fsync", sql::SHOW_FSYNC),
        ("synchronous_commit", sql::SHOW_SYNCHRONOUS_COMMIT),
    ] {
        let value = match sqlx::query_scalar::<_, String>(statement)
            .fetch_one(pool)
            .await
        {
            Ok(value) => value,
            // A PostgreSQL-compatible server may not know the setting: then it cannot be
            // shown to be safe either.
            Err(sqlx::Error::Database(db)) => {
                tracing::debug!(setting, error = %error::describe(db.as_ref()), "SHOW failed");
                "unknown".to_owned()
            }
            Err(other) => {
                return Err(OpenError::PostgresConnect {
                    target: url.to_string(),
                    source: store_error(other),
                });
            }
        };
        if value.eq_ignore_ascii_case("off") || value == "unknown" {
            if !allow_unsafe {
                return Err(OpenError::UnsafePostgres {
                    target: url.to_string(),
                    setting,
                    value,
                });
            }
            tracing::warn!(
                database = %url,
                setting,
                value = %value,
                "PostgreSQL may acknowledge commits before they are on disk; serving anyway \
                 because unsafe PostgreSQL settings were explicitly allowed: acknowledged \
                 revocations and rotations can be lost in a crash"
            );
        }
    }
    Ok(())
}

/// Applies pending migrations on a connection of its own, without the pool's statement
/// and lock timeouts: the migrator waits on an advisory lock while another node migrates.
async fn migrate(base: &PgConnectOptions, url: &PostgresUrl) -> Result<(), OpenError> {
    let migrate_error =
        |source: Box<dyn std::error::Error + Send + Sync>| OpenError::PostgresMigrate {
            target: url.to_string(),
            source,
        };
    let mut connection = base
        .connect()
        .await
        .map_err(|e| OpenError::PostgresConnect {
            target: url.to_string(),
            source: store_error(e),
        })?;
    let migrated = MIGRATOR.run(&mut connection).await;
    // Closing is a courtesy to the server; the migration's outcome is already decided.
    let _ = connection.close().await;
    migrated.map_err(|e| migrate_error(Box::new(e)))
}

/// One attempt of a store operation, borrowing what the operation needs.
pub(crate) type Attempt<'a, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'a>>;

/// Runs `attempt` until it succeeds, fails for good, or has been rolled back by a
/// serialization failure or a deadlock [`ATTEMPTS`] times.
pub(crate) async fn retrying<'a, T>(
    what: &'static str,
    mut attempt: impl FnMut() -> Attempt<'a, T>,
) -> Result<T, StoreError> {
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Retry(described)) if tries < ATTEMPTS => {
                tracing::debug!(operation = what, attempt = tries, error = %described, "retrying");
                // A short pause, longer each time, lets the transaction that won finish.
                tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                tries += 1;
            }
            Err(Failure::Retry(described)) => {
                tracing::warn!(operation = what, attempts = tries, error = %described, "giving up");
                return Err(StoreError::Unavailable(format!(
                    "{described} (gave up after {tries} attempts)"
                )));
            }
        }
    }
}

/// A connection failure, described without the URL (for the test helpers that create
/// databases).
#[cfg(feature = "test-support")]
pub(crate) fn describe_connect_error(error: sqlx::Error) -> String {
    store_error(error).to_string()
}

fn bind_hash(hash: &TokenHash) -> &[u8] {
    &hash.0
}

/// PostgreSQL cannot hold a NUL character in a TEXT value, so no stored id, username or
/// reference contains one: a key with a NUL matches nothing, and is answered without a
/// query (which PostgreSQL would refuse with an error).
pub(crate) fn storable(key: &str) -> bool {
    !key.contains('\0')
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        retrying("insert_client", || {
            Box::pin(async move {
                sqlx::query(sql::INSERT_CLIENT)
                    .bind(&client.id)
                    .bind(&client.name)
                    .bind(client.secret_hash.as_ref().map(ClientSecretHash::to_bytes))
                    .bind(i64::from(client.grants.bits()))
                    .bind(client.disabled)
                    .bind(client.access_token_ttl)
                    .bind(client.refresh_token_ttl)
                    .bind(&client.default_locale)
                    .bind(&client.default_currency)
                    .bind(&client.theme_id)
                    .bind(client.created_at.millis())
                    .bind(client.sessions_revoked_before.map(Timestamp::millis))
                    .bind(client.password_encoding.name())
                    .bind(client.resource_server)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        retrying("client", || {
            Box::pin(async move {
                let row = sqlx::query(sql::CLIENT_BY_ID)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .map(|row| rows::client(&mut Columns::new(&row)))
                    .transpose()?)
            })
        })
        .await
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        retrying("clients", || {
            Box::pin(async move {
                let found = sqlx::query(sql::ALL_CLIENTS).fetch_all(&self.pool).await?;
                Ok(found
                    .iter()
                    .map(|row| rows::client(&mut Columns::new(row)))
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn set_client_secret(
        &self,
        id: &str,
        secret: &ClientSecretHash,
    ) -> Result<bool, StoreError> {
        if !storable(id) {
            return Ok(false);
        }
        retrying("set_client_secret", || {
            Box::pin(async move {
                let done = sqlx::query(sql::SET_CLIENT_SECRET)
                    .bind(secret.to_bytes())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        if !storable(id) {
            return Ok(false);
        }
        retrying("set_client_disabled", || {
            Box::pin(async move {
                let done = sqlx::query(sql::SET_CLIENT_DISABLED)
                    .bind(disabled)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }
}

#[async_trait]
impl ShopperStore for PostgresStore {
    async fn insert_shopper(&self, shopper: &ShopperRecord) -> Result<(), StoreError> {
        retrying("insert_shopper", || {
            Box::pin(async move {
                sqlx::query(sql::INSERT_SHOPPER)
                    .bind(&shopper.id)
                    .bind(&shopper.external_reference_id)
                    .bind(&shopper.username)
                    .bind(&shopper.password_hash)
                    .bind(&shopper.locale)
                    .bind(&shopper.currency)
                    .bind(shopper.created_at.millis())
                    .bind(&shopper.first_name)
                    .bind(&shopper.last_name)
                    .bind(&shopper.email)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn shopper(&self, id: &str) -> Result<Option<ShopperRecord>, StoreError> {
        self.one_shopper("shopper", sql::SHOPPER_BY_ID, id).await
    }

    async fn shopper_by_external_reference(
        &self,
        external_reference_id: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        self.one_shopper(
            "shopper_by_external_reference",
            sql::SHOPPER_BY_EXTERNAL_REFERENCE,
            external_reference_id,
        )
        .await
    }

    async fn shopper_by_username(
        &self,
        username: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        self.one_shopper("shopper_by_username", sql::SHOPPER_BY_USERNAME, username)
            .await
    }
}

impl PostgresStore {
    /// One shopper by the key `statement` compares.
    async fn one_shopper(
        &self,
        what: &'static str,
        statement: &'static str,
        key: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        if !storable(key) {
            return Ok(None);
        }
        retrying(what, || {
            Box::pin(async move {
                let row = sqlx::query(statement)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .map(|row| rows::shopper(&mut Columns::new(&row)))
                    .transpose()?)
            })
        })
        .await
    }

    /// One conditional write on a session or token: the number of rows it changed.
    async fn conditional(
        &self,
        what: &'static str,
        statement: &'static str,
        now: Timestamp,
        key: Key<'_>,
    ) -> Result<u64, StoreError> {
        retrying(what, || {
            Box::pin(async move {
                let query = sqlx::query(statement).bind(now.millis());
                let query = match key {
                    Key::Id(id) => query.bind(id),
                    Key::Hash(hash) => query.bind(bind_hash(hash)),
                };
                Ok(query.execute(&self.pool).await?.rows_affected())
            })
        })
        .await
    }
}

/// The row a conditional write names.
#[derive(Clone, Copy)]
enum Key<'a> {
    Id(&'a str),
    Hash(&'a TokenHash),
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError> {
        let columns = session_join::TokenColumns::of(tokens);
        retrying("insert_session", || {
            Box::pin(async {
                // One statement: all or nothing without a transaction of its own.
                let session_row = session_join::bind_session(
                    sqlx::query(sql::INSERT_SESSION_WITH_TOKENS),
                    session,
                );
                columns.bind(session_row).execute(&self.pool).await?;
                Ok(())
            })
        })
        .await
    }

    async fn lookup_token(&self, hash: &TokenHash) -> Result<Option<TokenLookup>, StoreError> {
        retrying("lookup_token", || {
            Box::pin(async move {
                let row = sqlx::query(sql::LOOKUP_TOKEN)
                    .bind(bind_hash(hash))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(rows::lookup).transpose()?)
            })
        })
        .await
    }

    async fn end_session_if_newest(
        &self,
        session_id: &str,
        access: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if !storable(session_id) {
            return Ok(false);
        }
        retrying("end_session_if_newest", || {
            Box::pin(async move {
                let done = sqlx::query(sql::END_SESSION_IF_NEWEST)
                    .bind(now.millis())
                    .bind(session_id)
                    .bind(bind_hash(access))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn revoke_token(&self, hash: &TokenHash, now: Timestamp) -> Result<bool, StoreError> {
        let done = self
            .conditional("revoke_token", sql::REVOKE_TOKEN, now, Key::Hash(hash))
            .await?;
        Ok(done == 1)
    }

    async fn touch_session(&self, session_id: &str, now: Timestamp) -> Result<(), StoreError> {
        if !storable(session_id) {
            return Ok(());
        }
        self.conditional(
            "touch_session",
            sql::TOUCH_SESSION,
            now,
            Key::Id(session_id),
        )
        .await?;
        Ok(())
    }

    async fn revoke_session(&self, session_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        if !storable(session_id) {
            return Ok(false);
        }
        let done = self
            .conditional(
                "revoke_session",
                sql::REVOKE_SESSION,
                now,
                Key::Id(session_id),
            )
            .await?;
        Ok(done == 1)
    }

    async fn rotate_refresh(
        &self,
        consumed: &TokenHash,
        now: Timestamp,
        access: &TokenRecord,
        refresh: &TokenRecord,
    ) -> Result<bool, StoreError> {
        let columns = session_join::TokenColumns::of([access, refresh]);
        retrying("rotate_refresh", || {
            Box::pin(async {
                // One statement, so all or nothing: a lost race writes nothing, and a
                // failed insert leaves the old refresh token unconsumed.
                let rotate = sqlx::query(sql::ROTATE_REFRESH)
                    .bind(now.millis())
                    .bind(bind_hash(consumed))
                    .bind(&refresh.session_id)
                    .bind(bind_hash(&access.hash))
                    .bind(&access.session_id);
                let row = columns.bind(rotate).fetch_one(&self.pool).await?;
                let rotated: i64 = row.try_get(0)?;
                Ok(rotated == 1)
            })
        })
        .await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        if self.pool.is_closed() {
            return Err(StoreError::Unavailable("the store is closed".to_owned()));
        }
        sqlx::query(sql::PING)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_show_everything_but_the_password() -> Result<(), OpenError> {
        let url = PostgresUrl::parse("postgres://tessera:hunter2@db.internal:6432/tokens")?;
        assert_eq!(
            url.to_string(),
            "postgres://tessera@db.internal:6432/tokens"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        let url = PostgresUrl::parse("postgresql://db/tokens?sslmode=disable")?;
        assert!(url.to_string().ends_with("@db:5432/tokens"), "{url}");
        Ok(())
    }

    #[test]
    fn unparsable_urls_are_refused_without_echoing_them() {
        let Err(error) = PostgresUrl::parse("postgres://tessera:hunter2@db:notaport/x") else {
            panic!("a bad port must be refused");
        };
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn keys_with_a_nul_are_never_stored() {
        assert!(storable("c0ffee"));
        assert!(!storable("c0\0ffee"));
    }
}
