//! Revocation watermarks, their tidy-up, one-session reads and changes, and expiry clean-up
//! (`SessionAdminStore`). Each write is one statement or one short transaction of at most
//! `limit` rows, so the row locks it takes are held briefly.

use std::collections::HashSet;

use async_trait::async_trait;
use tessera_core::session_admin::{DeletedRows, SessionLookup, SessionOwner, TidyUp, TokenSweep};
use tessera_core::store::SessionAdminStore;
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use super::{PostgresStore, bind_hash, retrying, rows, sql, storable};

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
                sqlx::query(sql::ADD_PENDING_TIDY_UP)
                    .bind(owner.kind())
                    .bind(owner.id())
                    .bind(before.millis())
                    .execute(&mut *tx)
                    .await?;
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
        let statement = match tidy_up.owner {
            SessionOwner::Shopper(_) => sql::TIDY_UP_SHOPPER_SESSIONS,
            SessionOwner::Client(_) => sql::TIDY_UP_CLIENT_SESSIONS,
        };
        retrying("tidy_up_batch", || {
            Box::pin(async move {
                let mut tx = self.pool.begin().await?;
                let marked = sqlx::query(statement)
                    .bind(now.millis())
                    .bind(tidy_up.owner.id())
                    .bind(tidy_up.before.millis())
                    .bind(i64::from(limit))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
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

    async fn delete_expired_tokens(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        retrying("delete_expired_tokens", || {
            Box::pin(async move {
                let done = sqlx::query(sql::DELETE_EXPIRED_ACCESS_TOKENS)
                    .bind(now.millis())
                    .bind(i64::from(limit))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
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
                let examined = sqlx::query(sql::SWEEP_TOKENS)
                    .bind(after)
                    .bind(now.millis())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(rows::swept_token)
                    .collect::<Result<Vec<_>, _>>()?;
                // Deadness never ends, so a token read dead is still dead here.
                let dead: Vec<&[u8]> = examined
                    .iter()
                    .filter(|(_, dead)| *dead)
                    .map(|(key, _)| bind_hash(key))
                    .collect();
                let deleted = if dead.is_empty() {
                    0
                } else {
                    sqlx::query(sql::DELETE_TOKENS)
                        .bind(dead)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                };
                let last = examined.last().map(|(key, _)| *key);
                Ok(TokenSweep::of_batch(examined.len(), last, deleted, limit))
            })
        })
        .await
    }

    async fn delete_dead_sessions(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<DeletedRows, StoreError> {
        retrying("delete_dead_sessions", || {
            Box::pin(async move {
                let mut tx = self.pool.begin().await?;
                let mut dead: Vec<String> = sqlx::query_scalar(sql::EXPIRED_SESSIONS)
                    .bind(now.millis())
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let room = u64::from(limit).saturating_sub(dead.len() as u64);
                if room > 0 {
                    let revoked: Vec<String> = sqlx::query_scalar(sql::REVOKED_SESSIONS)
                        .bind(i64::try_from(room).unwrap_or(i64::MAX))
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut seen: HashSet<String> = dead.iter().cloned().collect();
                    dead.extend(revoked.into_iter().filter(|id| seen.insert(id.clone())));
                }

                let mut budget = u64::from(limit);
                let mut deleted = DeletedRows::default();
                for session_id in &dead {
                    let tokens = sqlx::query(sql::DELETE_SESSION_TOKENS)
                        .bind(session_id)
                        .bind(i64::try_from(budget).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    deleted.tokens += tokens;
                    budget = budget.saturating_sub(tokens);
                    if budget == 0 {
                        // This session keeps its remaining tokens until the next batch.
                        break;
                    }
                    // A session that gained a token meanwhile (a rotation racing its
                    // expiry) keeps it: the NOT EXISTS sees the committed token, and the
                    // foreign key refuses the delete if it was committed after.
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
                tx.commit().await?;
                Ok(deleted)
            })
        })
        .await
    }
}
