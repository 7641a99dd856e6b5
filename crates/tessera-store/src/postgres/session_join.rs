//! Session tokens and the session changes that use them (`SessionJoinStore`): each
//! change is one transaction whose first statement re-checks its precondition, holding
//! the row it checked until the commit, and writes nothing when it no longer holds.

use async_trait::async_trait;
use sqlx::PgConnection;
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::session_token::{SessionTokenLookup, SessionTokenRecord};
use tessera_core::store::{SessionJoinStore, SessionStore};
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use super::error::Failure;
use super::rows::{self, Columns};
use super::{PostgresStore, bind_hash, retrying, sql, storable};

/// Inserts a session row on an open transaction.
pub(super) async fn insert_session_row(
    conn: &mut PgConnection,
    session: &SessionRecord,
) -> Result<(), Failure> {
    bind_session(sqlx::query(sql::INSERT_SESSION), session)
        .execute(conn)
        .await?;
    Ok(())
}

/// Binds a session row's fifteen columns, in table order, as `$1` to `$15`.
pub(super) fn bind_session<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    session: &'q SessionRecord,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&session.id)
        .bind(&session.client_id)
        .bind(&session.user_id)
        .bind(&session.external_reference_id)
        .bind(session.authenticated)
        .bind(&session.locale)
        .bind(&session.currency)
        .bind(&session.cart_id)
        .bind(&session.client_ip)
        .bind(&session.session_tag)
        .bind(session.created_at.millis())
        .bind(session.last_accessed.millis())
        .bind(session.expires_at.millis())
        .bind(bind_hash(&session.newest_access))
        .bind(session.revoked_at.map(Timestamp::millis))
}

/// Token rows as one array per column, bound to the `unnest` of a one-statement insert
/// (`INSERT_SESSION_WITH_TOKENS`, `ROTATE_REFRESH`), in the order of the tokens table.
#[derive(Default)]
pub(super) struct TokenColumns<'t> {
    hashes: Vec<&'t [u8]>,
    kinds: Vec<&'static str>,
    session_ids: Vec<&'t str>,
    client_ids: Vec<&'t str>,
    issued_at: Vec<i64>,
    expires_at: Vec<i64>,
    revoked_at: Vec<Option<i64>>,
    consumed_at: Vec<Option<i64>>,
}

impl<'t> TokenColumns<'t> {
    pub(super) fn of(tokens: impl IntoIterator<Item = &'t TokenRecord>) -> Self {
        let mut columns = Self::default();
        for token in tokens {
            columns.hashes.push(bind_hash(&token.hash));
            columns.kinds.push(token.kind.as_str());
            columns.session_ids.push(&token.session_id);
            columns.client_ids.push(&token.client_id);
            columns.issued_at.push(token.issued_at.millis());
            columns.expires_at.push(token.expires_at.millis());
            columns
                .revoked_at
                .push(token.revoked_at.map(Timestamp::millis));
            columns
                .consumed_at
                .push(token.consumed_at.map(Timestamp::millis));
        }
        columns
    }

    /// Binds the eight arrays, in column order, after what `query` already binds.
    pub(super) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.hashes)
            .bind(&self.kinds)
            .bind(&self.session_ids)
            .bind(&self.client_ids)
            .bind(&self.issued_at)
            .bind(&self.expires_at)
            .bind(&self.revoked_at)
            .bind(&self.consumed_at)
    }
}

/// Inserts token rows on an open transaction, in one statement.
pub(super) async fn insert_token_rows<'t>(
    conn: &mut PgConnection,
    tokens: impl IntoIterator<Item = &'t TokenRecord>,
) -> Result<(), Failure> {
    let columns = TokenColumns::of(tokens);
    columns
        .bind(sqlx::query(sql::INSERT_TOKENS))
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl SessionJoinStore for PostgresStore {
    async fn insert_session_token(&self, record: &SessionTokenRecord) -> Result<(), StoreError> {
        retrying("insert_session_token", || {
            Box::pin(async move {
                sqlx::query(sql::INSERT_SESSION_TOKEN)
                    .bind(bind_hash(&record.hash))
                    .bind(&record.client_id)
                    .bind(&record.session_id)
                    .bind(record.created_at.millis())
                    .bind(record.expires_at.millis())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn lookup_session_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionTokenLookup>, StoreError> {
        let found = retrying("lookup_session_token", || {
            Box::pin(async move {
                let row = sqlx::query(sql::SESSION_TOKEN_BY_HASH)
                    .bind(bind_hash(hash))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row
                    .map(|row| rows::session_token(&mut Columns::new(&row)))
                    .transpose()?)
            })
        })
        .await?;
        let Some((record, newest_access)) = found else {
            return Ok(None);
        };
        let bound = match newest_access {
            Some(newest) => self.lookup_token(&newest).await?,
            None => None,
        };
        Ok(Some(SessionTokenLookup { record, bound }))
    }

    async fn insert_bound_session(
        &self,
        hash: &TokenHash,
        previous: Option<&str>,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        if !previous.is_none_or(storable) {
            return Ok(false);
        }
        retrying("insert_bound_session", || {
            Box::pin(async move {
                let mut tx = self.pool.begin().await?;
                let bound = sqlx::query(sql::BIND_SESSION_TOKEN)
                    .bind(&session.id)
                    .bind(bind_hash(hash))
                    .bind(previous)
                    .execute(&mut *tx)
                    .await?;
                if bound.rows_affected() != 1 {
                    return Ok(false);
                }
                insert_session_row(&mut tx, session).await?;
                insert_token_rows(&mut tx, tokens).await?;
                tx.commit().await?;
                Ok(true)
            })
        })
        .await
    }

    async fn add_session_tokens(
        &self,
        session_id: &str,
        newest_access: &TokenHash,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        if !storable(session_id) {
            return Ok(false);
        }
        retrying("add_session_tokens", || {
            Box::pin(async move {
                let mut tx = self.pool.begin().await?;
                let live = sqlx::query(sql::SET_NEWEST_ACCESS_IF_LIVE)
                    .bind(bind_hash(newest_access))
                    .bind(session_id)
                    .execute(&mut *tx)
                    .await?;
                if live.rows_affected() != 1 {
                    return Ok(false);
                }
                insert_token_rows(&mut tx, tokens).await?;
                tx.commit().await?;
                Ok(true)
            })
        })
        .await
    }

    async fn upgrade_session(
        &self,
        previous: &str,
        now: Timestamp,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        if !storable(previous) {
            return Ok(false);
        }
        retrying("upgrade_session", || {
            Box::pin(async move {
                let mut tx = self.pool.begin().await?;
                let ended = sqlx::query(sql::END_ANONYMOUS_SESSION)
                    .bind(now.millis())
                    .bind(previous)
                    .execute(&mut *tx)
                    .await?;
                if ended.rows_affected() != 1 {
                    return Ok(false);
                }
                insert_session_row(&mut tx, session).await?;
                insert_token_rows(&mut tx, tokens).await?;
                sqlx::query(sql::REBIND_SESSION_TOKENS)
                    .bind(&session.id)
                    .bind(previous)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            })
        })
        .await
    }

    async fn delete_expired_session_tokens(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        retrying("delete_expired_session_tokens", || {
            Box::pin(async move {
                let done = sqlx::query(sql::DELETE_EXPIRED_SESSION_TOKENS)
                    .bind(now.millis())
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    async fn set_session_preferences(
        &self,
        session_id: &str,
        locale: Option<&str>,
        currency: Option<&str>,
    ) -> Result<bool, StoreError> {
        if !storable(session_id) {
            return Ok(false);
        }
        retrying("set_session_preferences", || {
            Box::pin(async move {
                let done = sqlx::query(sql::SET_SESSION_PREFERENCES)
                    .bind(locale)
                    .bind(currency)
                    .bind(session_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }
}
