//! Revocation watermarks, their tidy-up, one-session reads and changes, and expiry clean-up
//! (`SessionAdminStore`). Each write is one statement or a few, of at most `limit` rows,
//! run by the writer thread as one write of its current batch, so the requests
//! queued behind the single writer wait for one small batch at most.

use async_trait::async_trait;
use rusqlite::types::Value;
use sqlx::sqlite::{Sqlite, SqliteRow};
use tessera_core::session_admin::{
    DeletedRows, SessionLookup, SessionOwner, SessionSweep, TidyUp, TokenSweep,
};
use tessera_core::store::SessionAdminStore;
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::writer::Notify;
use super::{SqliteStore, bind_hash, params, rows, sql};
use crate::sweep::dead_keys;

#[async_trait]
impl SessionAdminStore for SqliteStore {
    async fn revoke_sessions_before(
        &self,
        owner: &SessionOwner,
        before: Timestamp,
    ) -> Result<bool, StoreError> {
        let (statement, set) = match owner {
            SessionOwner::Shopper(user_id) => (
                sql::SET_SHOPPER_WATERMARK,
                vec![params::text(user_id), params::millis(before)],
            ),
            SessionOwner::Client(client_id) => (
                sql::SET_CLIENT_WATERMARK,
                vec![params::millis(before), params::text(client_id)],
            ),
        };
        // A client's sessions are left to the sweep.
        let pending = matches!(owner, SessionOwner::Shopper(_)).then(|| {
            vec![
                params::text(owner.kind()),
                params::text(owner.id()),
                params::millis(before),
            ]
        });
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                if params::run(connection, statement, &set)? != 1 {
                    return Ok((false, false));
                }
                if let Some(pending) = &pending {
                    params::run(connection, sql::ADD_PENDING_TIDY_UP, pending)?;
                }
                Ok((true, true))
            })
            .await
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
        // A client's, recorded by an earlier release, marks nothing: the sweep deletes
        // the sessions it covers.
        let mark = matches!(tidy_up.owner, SessionOwner::Shopper(_)).then(|| {
            vec![
                params::millis(now),
                params::id(tidy_up.owner.id()),
                params::millis(tidy_up.before),
                params::integer(limit),
            ]
        });
        let finish = vec![
            params::text(tidy_up.owner.kind()),
            params::text(tidy_up.owner.id()),
            params::millis(tidy_up.before),
        ];
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                let marked = match &mark {
                    Some(mark) => {
                        params::run(connection, sql::TIDY_UP_SHOPPER_SESSIONS, mark)? as u64
                    }
                    None => 0,
                };
                if marked < u64::from(limit) {
                    params::run(connection, sql::FINISH_TIDY_UP, &finish)?;
                }
                Ok((marked, true))
            })
            .await
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
        let params = vec![params::optional_text(cart_id), params::id(session_id)];
        let changed = self
            .execute(Notify::OtherProcesses, sql::SET_SESSION_CART, params)
            .await?;
        Ok(changed == 1)
    }

    async fn delete_revoked_sessions(&self, limit: u32) -> Result<DeletedRows, StoreError> {
        let params = vec![params::integer(limit)];
        let sessions = self
            .execute(Notify::Nobody, sql::DELETE_REVOKED_SESSIONS, params)
            .await?;
        Ok(DeletedRows {
            sessions: sessions as u64,
            tokens: 0,
        })
    }

    async fn sweep_sessions(
        &self,
        after: Option<&str>,
        now: Timestamp,
        limit: u32,
    ) -> Result<SessionSweep, StoreError> {
        let examined = self
            .read_sweep(
                sql::SWEEP_SESSIONS,
                after.unwrap_or_default(),
                now,
                limit,
                rows::swept_session,
            )
            .await?;
        let deleted = DeletedRows {
            sessions: self
                .delete_each(
                    sql::DELETE_SESSION,
                    dead_keys(&examined, |id| params::id(id)),
                )
                .await?,
            tokens: 0,
        };
        Ok(SessionSweep::of_batch(examined, deleted, limit))
    }

    async fn sweep_tokens(
        &self,
        after: Option<&TokenHash>,
        now: Timestamp,
        limit: u32,
    ) -> Result<TokenSweep, StoreError> {
        let after = after.map_or(&[][..], bind_hash);
        let examined = self
            .read_sweep(sql::SWEEP_TOKENS, after, now, limit, rows::swept_token)
            .await?;
        let deleted = DeletedRows {
            sessions: 0,
            tokens: self
                .delete_each(sql::DELETE_TOKEN, dead_keys(&examined, params::hash))
                .await?,
        };
        Ok(TokenSweep::of_batch(examined, deleted, limit))
    }
}

impl SqliteStore {
    /// One sweep batch: up to `limit` rows of `statement` after `after`, each key with
    /// whether it is dead at `now`. Read through the read pool, not inside a write: on a
    /// large store the rows they join may be cold pages, and reading them must not hold up
    /// the writes queued behind the writer thread. Deadness never ends, so a row read dead
    /// here is still dead when [`SqliteStore::delete_each`] deletes it.
    async fn read_sweep<'q, A, K>(
        &self,
        statement: &'static str,
        after: A,
        now: Timestamp,
        limit: u32,
        decode: fn(&SqliteRow) -> Result<(K, bool), StoreError>,
    ) -> Result<Vec<(K, bool)>, StoreError>
    where
        A: 'q + Send + sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
    {
        sqlx::query(statement)
            .bind(after)
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?
            .iter()
            .map(decode)
            .collect()
    }

    /// Runs `statement` once for each key, in one write; the rows it deleted. Only rows
    /// dead for good are deleted this way, which no lookup finds live: nobody needs
    /// telling.
    async fn delete_each(
        &self,
        statement: &'static str,
        keys: Vec<Value>,
    ) -> Result<u64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.write
            .write(Notify::Nobody, move |connection| {
                let mut deleted = 0;
                for key in &keys {
                    deleted += params::run(connection, statement, std::slice::from_ref(key))?;
                }
                Ok((deleted as u64, deleted > 0))
            })
            .await
    }
}
