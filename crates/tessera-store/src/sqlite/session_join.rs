//! Session tokens and the session changes that use them (`SessionJoinStore`): each
//! change is one `BEGIN IMMEDIATE` transaction whose first statement re-checks its
//! precondition and writes nothing when it no longer holds.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::session_token::{SessionTokenLookup, SessionTokenRecord};
use tessera_core::store::{SessionJoinStore, SessionStore};
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::rows::{self, Columns};
use super::writer::Notify;
use super::{SqliteStore, bind_hash, sql};

/// Inserts a session row on an open transaction.
pub(super) async fn insert_session_row(
    conn: &mut SqliteConnection,
    session: &SessionRecord,
) -> Result<(), StoreError> {
    sqlx::query(sql::INSERT_SESSION)
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
        .execute(conn)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Inserts token rows on an open transaction.
pub(super) async fn insert_token_rows<'t>(
    conn: &mut SqliteConnection,
    tokens: impl IntoIterator<Item = &'t TokenRecord>,
) -> Result<(), StoreError> {
    for token in tokens {
        sqlx::query(sql::INSERT_TOKEN)
            .bind(bind_hash(&token.hash))
            .bind(token.kind.as_str())
            .bind(&token.session_id)
            .bind(&token.client_id)
            .bind(token.issued_at.millis())
            .bind(token.expires_at.millis())
            .bind(token.revoked_at.map(Timestamp::millis))
            .bind(token.consumed_at.map(Timestamp::millis))
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

#[async_trait]
impl SessionJoinStore for SqliteStore {
    async fn insert_session_token(&self, record: &SessionTokenRecord) -> Result<(), StoreError> {
        self.write
            .execute(
                sqlx::query(sql::INSERT_SESSION_TOKEN)
                    .bind(bind_hash(&record.hash))
                    .bind(&record.client_id)
                    .bind(&record.session_id)
                    .bind(record.created_at.millis())
                    .bind(record.expires_at.millis()),
                Notify::Nobody,
            )
            .await?;
        Ok(())
    }

    async fn lookup_session_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionTokenLookup>, StoreError> {
        let row = sqlx::query(sql::SESSION_TOKEN_BY_HASH)
            .bind(bind_hash(hash))
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (record, newest_access) = rows::session_token(&mut Columns::new(&row))?;
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
        let mut tx = self.write.begin().await?;
        let bound = sqlx::query(sql::BIND_SESSION_TOKEN)
            .bind(&session.id)
            .bind(bind_hash(hash))
            .bind(previous)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if bound.rows_affected() != 1 {
            tx.roll_back().await?;
            return Ok(false);
        }
        insert_session_row(&mut tx, session).await?;
        insert_token_rows(&mut tx, tokens).await?;
        tx.commit(Notify::Nobody).await?;
        Ok(true)
    }

    async fn add_session_tokens(
        &self,
        session_id: &str,
        newest_access: &TokenHash,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let live = sqlx::query(sql::SET_NEWEST_ACCESS_IF_LIVE)
            .bind(bind_hash(newest_access))
            .bind(session_id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if live.rows_affected() != 1 {
            tx.roll_back().await?;
            return Ok(false);
        }
        insert_token_rows(&mut tx, tokens).await?;
        tx.commit(Notify::Nobody).await?;
        Ok(true)
    }

    async fn upgrade_session(
        &self,
        previous: &str,
        now: Timestamp,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let ended = sqlx::query(sql::END_ANONYMOUS_SESSION)
            .bind(now.millis())
            .bind(previous)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if ended.rows_affected() != 1 {
            tx.roll_back().await?;
            return Ok(false);
        }
        insert_session_row(&mut tx, session).await?;
        insert_token_rows(&mut tx, tokens).await?;
        sqlx::query(sql::REBIND_SESSION_TOKENS)
            .bind(&session.id)
            .bind(previous)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit(Notify::OtherProcesses).await?;
        Ok(true)
    }

    async fn delete_expired_session_tokens(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = self
            .write
            .execute(
                sqlx::query(sql::DELETE_EXPIRED_SESSION_TOKENS)
                    .bind(now.millis())
                    .bind(i64::from(limit)),
                Notify::Nobody,
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn set_session_preferences(
        &self,
        session_id: &str,
        locale: Option<&str>,
        currency: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = self
            .write
            .execute(
                sqlx::query(sql::SET_SESSION_PREFERENCES)
                    .bind(locale)
                    .bind(currency)
                    .bind(session_id),
                Notify::OtherProcesses,
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
