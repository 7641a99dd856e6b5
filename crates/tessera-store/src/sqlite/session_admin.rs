//! Revocation watermarks, their tidy-up, one-session reads and changes, and expiry clean-up
//! (`SessionAdminStore`). Each write is one statement or one short `BEGIN IMMEDIATE`
//! transaction of at most `limit` rows, so the requests queued behind the single writer
//! wait for one small batch at most.

use std::collections::HashSet;

use async_trait::async_trait;
use tessera_core::session_admin::{DeletedRows, SessionLookup, SessionOwner, TidyUp};
use tessera_core::store::SessionAdminStore;
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::writer::Notify;
use super::{SqliteStore, rows, sql};

#[async_trait]
impl SessionAdminStore for SqliteStore {
    async fn revoke_sessions_before(
        &self,
        owner: &SessionOwner,
        before: Timestamp,
    ) -> Result<bool, StoreError> {
        // Dropping the transaction on an early return rolls it back.
        let mut tx = self.write.begin().await?;
        let set = match owner {
            SessionOwner::Shopper(user_id) => sqlx::query(sql::SET_SHOPPER_WATERMARK)
                .bind(user_id)
                .bind(before.millis()),
            SessionOwner::Client(client_id) => sqlx::query(sql::SET_CLIENT_WATERMARK)
                .bind(before.millis())
                .bind(client_id),
        }
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if set.rows_affected() != 1 {
            tx.roll_back().await?;
            return Ok(false);
        }
        sqlx::query(sql::ADD_PENDING_TIDY_UP)
            .bind(owner.kind())
            .bind(owner.id())
            .bind(before.millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit(Notify::OtherProcesses).await?;
        Ok(true)
    }

    async fn pending_tidy_ups(&self, limit: u32) -> Result<Vec<TidyUp>, StoreError> {
        let found = sqlx::query(sql::PENDING_TIDY_UPS)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        found.iter().map(rows::tidy_up).collect()
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
        let mut tx = self.write.begin().await?;
        let marked = sqlx::query(statement)
            .bind(now.millis())
            .bind(tidy_up.owner.id())
            .bind(tidy_up.before.millis())
            .bind(i64::from(limit))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
        if marked < u64::from(limit) {
            sqlx::query(sql::FINISH_TIDY_UP)
                .bind(tidy_up.owner.kind())
                .bind(tidy_up.owner.id())
                .bind(tidy_up.before.millis())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit(Notify::OtherProcesses).await?;
        Ok(marked)
    }

    async fn session_by_id(&self, session_id: &str) -> Result<Option<SessionLookup>, StoreError> {
        let row = sqlx::query(sql::SESSION_BY_ID)
            .bind(session_id)
            .fetch_optional(&self.read)
            .await
            .map_err(store_error)?;
        row.as_ref().map(rows::session_lookup).transpose()
    }

    async fn shopper_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<SessionLookup>, StoreError> {
        let found = sqlx::query(sql::SHOPPER_SESSIONS)
            .bind(user_id)
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?;
        found.iter().map(rows::session_lookup).collect()
    }

    async fn set_session_cart(
        &self,
        session_id: &str,
        cart_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = self
            .write
            .execute(
                sqlx::query(sql::SET_SESSION_CART)
                    .bind(cart_id)
                    .bind(session_id),
                Notify::OtherProcesses,
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_tokens(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let done = self
            .write
            .execute(
                sqlx::query(sql::DELETE_EXPIRED_ACCESS_TOKENS)
                    .bind(now.millis())
                    .bind(i64::from(limit)),
                Notify::Nobody,
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_dead_sessions(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<DeletedRows, StoreError> {
        let mut tx = self.write.begin().await?;
        // Read inside the write transaction, so no session can come back to life (or gain
        // a token) between being picked and being deleted.
        let mut dead: Vec<String> = sqlx::query_scalar(sql::EXPIRED_SESSIONS)
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        let room = u64::from(limit).saturating_sub(dead.len() as u64);
        if room > 0 {
            let revoked: Vec<String> = sqlx::query_scalar(sql::REVOKED_SESSIONS)
                .bind(i64::try_from(room).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
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
                .await
                .map_err(store_error)?
                .rows_affected();
            deleted.tokens += tokens;
            budget = budget.saturating_sub(tokens);
            if budget == 0 {
                // This session keeps its remaining tokens until the next batch.
                break;
            }
            let sessions = sqlx::query(sql::DELETE_SESSION_IF_EMPTY)
                .bind(session_id)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
            deleted.sessions += sessions;
            budget = budget.saturating_sub(sessions);
            if budget == 0 {
                break;
            }
        }
        tx.commit(Notify::Nobody).await?;
        Ok(deleted)
    }
}
