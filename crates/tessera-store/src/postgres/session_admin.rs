//! Revocation watermarks, their tidy-up, one-session reads and changes, and expiry clean-up
//! (`SessionAdminStore`). Each write is one statement or one short transaction of at most
//! `limit` rows, so the row locks it takes are held briefly.

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgRow, Postgres};
use tessera_core::session_admin::{
    DeletedRows, SessionLookup, SessionOwner, SessionSweep, TidyUp, TokenSweep,
};
use tessera_core::store::SessionAdminStore;
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use super::error::Failure;
use super::{PostgresStore, bind_hash, retrying, rows, sql, storable};
use crate::sweep::dead_keys;

#[async_trait]
impl SessionAdminStore for PostgresStore {
    async fn revoke_sessions_before(
        &self,
        owner: &SessionOwner,
        before: Timestamp,
    ) -> Result<bool, StoreError> {
        if !storable(owner.id()) {
            return Ok(false);
        }
        retrying("revoke_sessions_before", || {
            Box::pin(async move {
                // Dropping the transaction on an early return rolls it back.
                let mut tx = self.pool.begin().await?;
                let set = match owner {
                    SessionOwner::Shopper(user_id) => sqlx::query(sql::SET_SHOPPER_WATERMARK)
                        .bind(user_id)
                        .bind(before.millis()),
                    SessionOwner::Client(client_id) => sqlx::query(sql::SET_CLIENT_WATERMARK)
                        .bind(before.millis())
                        .bind(client_id),
                }
                .execute(&mut *tx)
                .await?;
                if set.rows_affected() != 1 {
                    return Ok(false);
                }
                // A client's sessions are left to the sweep.
                if matches!(owner, SessionOwner::Shopper(_)) {
                    sqlx::query(sql::ADD_PENDING_TIDY_UP)
                        .bind(owner.kind())
                        .bind(owner.id())
                        .bind(before.millis())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            })
        })
        .await
    }

    async fn pending_tidy_ups(&self, limit: u32) -> Result<Vec<TidyUp>, StoreError> {
        retrying("pending_tidy_ups", || {
            Box::pin(async move {
                let found = sqlx::query(sql::PENDING_TIDY_UPS)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(found.iter().map(rows::tidy_up).collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn tidy_up_batch(
        &self,
        tidy_up: &TidyUp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // A client's, recorded by an earlier release, marks nothing: the sweep deletes the
        // sessions it covers.
        let shopper = matches!(tidy_up.owner, SessionOwner::Shopper(_));
        retrying("tidy_up_batch", || {
            Box::pin(async move {
                let mut tx = self.pool.begin().await?;
                let marked = if shopper {
                    sqlx::query(sql::TIDY_UP_SHOPPER_SESSIONS)
                        .bind(now.millis())
                        .bind(tidy_up.owner.id())
                        .bind(tidy_up.before.millis())
                        .bind(i64::from(limit))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                } else {
                    0
                };
                if marked < u64::from(limit) {
                    sqlx::query(sql::FINISH_TIDY_UP)
                        .bind(tidy_up.owner.kind())
                        .bind(tidy_up.owner.id())
                        .bind(tidy_up.before.millis())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(marked)
            })
        })
        .await
    }

    async fn session_by_id(&self, session_id: &str) -> Result<Option<SessionLookup>, StoreError> {
        if !storable(session_id) {
            return Ok(None);
        }
        retrying("session_by_id", || {
            Box::pin(async move {
                let row = sqlx::query(sql::SESSION_BY_ID)
                    .bind(session_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(rows::session_lookup).transpose()?)
            })
        })
        .await
    }

    async fn shopper_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<SessionLookup>, StoreError> {
        if !storable(user_id) {
            return Ok(Vec::new());
        }
        retrying("shopper_sessions", || {
            Box::pin(async move {
                let found = sqlx::query(sql::SHOPPER_SESSIONS)
                    .bind(user_id)
                    .bind(now.millis())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(found
                    .iter()
                    .map(rows::session_lookup)
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn set_session_cart(
        &self,
        session_id: &str,
        cart_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        if !storable(session_id) {
            return Ok(false);
        }
        retrying("set_session_cart", || {
            Box::pin(async move {
                let done = sqlx::query(sql::SET_SESSION_CART)
                    .bind(cart_id)
                    .bind(session_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn delete_revoked_sessions(&self, limit: u32) -> Result<DeletedRows, StoreError> {
        retrying("delete_revoked_sessions", || {
            Box::pin(async move {
                let mut tx = self.pool.begin().await?;
                let revoked: Vec<String> = sqlx::query_scalar(sql::REVOKED_SESSIONS)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let deleted = delete_with_tokens(&mut tx, &revoked, u64::from(limit)).await?;
                tx.commit().await?;
                Ok(deleted)
            })
        })
        .await
    }

    async fn sweep_sessions(
        &self,
        after: Option<&str>,
        now: Timestamp,
        limit: u32,
    ) -> Result<SessionSweep, StoreError> {
        let after = after.unwrap_or_default();
        retrying("sweep_sessions", || {
            Box::pin(async move {
                let examined = read_sweep(
                    &self.pool,
                    sql::SWEEP_SESSIONS,
                    after,
                    now,
                    limit,
                    rows::swept_session,
                )
                .await?;
                // Deadness never ends, so a session read dead is still dead here. Its
                // tokens go with it however many there are (a long rotation chain keeps
                // every consumed refresh token), so the sweep never passes a dead session.
                let dead = dead_keys(&examined, String::clone);
                let deleted = if dead.is_empty() {
                    DeletedRows::default()
                } else {
                    let mut tx = self.pool.begin().await?;
                    let deleted = delete_with_tokens(&mut tx, &dead, u64::MAX).await?;
                    tx.commit().await?;
                    deleted
                };
                Ok(SessionSweep::of_batch(examined, deleted, limit))
            })
        })
        .await
    }

    async fn sweep_tokens(
        &self,
        after: Option<&TokenHash>,
        now: Timestamp,
        limit: u32,
    ) -> Result<TokenSweep, StoreError> {
        // Every key is 32 bytes, so after the empty string of bytes comes the first.
        let after = after.map_or(&[][..], bind_hash);
        retrying("sweep_tokens", || {
            Box::pin(async move {
                let examined = read_sweep(
                    &self.pool,
                    sql::SWEEP_TOKENS,
                    after,
                    now,
                    limit,
                    rows::swept_token,
                )
                .await?;
                // Deadness never ends, so a token read dead is still dead here.
                let dead = dead_keys(&examined, bind_hash);
                let deleted = DeletedRows {
                    sessions: 0,
                    tokens: if dead.is_empty() {
                        0
                    } else {
                        sqlx::query(sql::DELETE_TOKENS)
                            .bind(dead)
                            .execute(&self.pool)
                            .await?
                            .rows_affected()
                    },
                };
                Ok(TokenSweep::of_batch(examined, deleted, limit))
            })
        })
        .await
    }
}

/// One sweep batch: up to `limit` rows of `statement` after `after`, each key with
/// whether it is dead at `now`.
async fn read_sweep<'q, A, K>(
    pool: &PgPool,
    statement: &'static str,
    after: A,
    now: Timestamp,
    limit: u32,
    decode: fn(&PgRow) -> Result<(K, bool), StoreError>,
) -> Result<Vec<(K, bool)>, Failure>
where
    A: 'q + Send + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
{
    let found = sqlx::query(statement)
        .bind(after)
        .bind(now.millis())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(found.iter().map(decode).collect::<Result<_, _>>()?)
}

/// Deletes the sessions `ids` with their tokens, at most `budget` rows in all; a session
/// whose tokens did not all fit stays, with the rest of them, for a later batch.
async fn delete_with_tokens(
    tx: &mut sqlx::PgConnection,
    ids: &[String],
    budget: u64,
) -> Result<DeletedRows, sqlx::Error> {
    let mut budget = budget;
    let mut deleted = DeletedRows::default();
    for session_id in ids {
        let tokens = sqlx::query(sql::DELETE_SESSION_TOKENS)
            .bind(session_id)
            .bind(i64::try_from(budget).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        deleted.tokens += tokens;
        budget = budget.saturating_sub(tokens);
        if budget == 0 {
            break;
        }
        // A session that gained a token meanwhile (a rotation racing its expiry) keeps
        // it: the NOT EXISTS sees the committed token, and the foreign key refuses the
        // delete if it was committed after.
        let sessions = sqlx::query(sql::DELETE_SESSION_IF_EMPTY)
            .bind(session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        deleted.sessions += sessions;
        budget = budget.saturating_sub(sessions);
        if budget == 0 {
            break;
        }
    }
    Ok(deleted)
}
