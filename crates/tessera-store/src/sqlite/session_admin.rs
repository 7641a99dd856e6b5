//! Revocation watermarks, their tidy-up, one-session reads and changes, and expiry clean-up
//! (`SessionAdminStore`). Each write is one statement or a few, of at most `limit` rows,
//! run by the writer thread as one write of its current batch, so the requests
//! queued behind the single writer wait for one small batch at most.

use async_trait::async_trait;
use rusqlite::Connection;
use rusqlite::types::Value;
use tessera_core::session_admin::{DeletedRows, SessionLookup, SessionOwner, TidyUp, TokenSweep};
use tessera_core::store::SessionAdminStore;
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::writer::Notify;
use super::{SqliteStore, bind_hash, params, rows, sql};

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
        let pending = vec![
            params::text(owner.kind()),
            params::text(owner.id()),
            params::millis(before),
        ];
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                if params::run(connection, statement, &set)? != 1 {
                    return Ok((false, false));
                }
                params::run(connection, sql::ADD_PENDING_TIDY_UP, &pending)?;
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
        let statement = match tidy_up.owner {
            SessionOwner::Shopper(_) => sql::TIDY_UP_SHOPPER_SESSIONS,
            SessionOwner::Client(_) => sql::TIDY_UP_CLIENT_SESSIONS,
        };
        let mark = vec![
            params::millis(now),
            params::id(tidy_up.owner.id()),
            params::millis(tidy_up.before),
            params::integer(limit),
        ];
        let finish = vec![
            params::text(tidy_up.owner.kind()),
            params::text(tidy_up.owner.id()),
            params::millis(tidy_up.before),
        ];
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                let marked = params::run(connection, statement, &mark)? as u64;
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

    async fn delete_expired_tokens(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let params = vec![params::millis(now), params::integer(limit)];
        let deleted = self
            .execute(Notify::Nobody, sql::DELETE_EXPIRED_ACCESS_TOKENS, params)
            .await?;
        Ok(deleted as u64)
    }

    async fn delete_dead_sessions(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<DeletedRows, StoreError> {
        self.write
            .write(Notify::Nobody, move |connection| {
                let deleted = delete_dead_sessions(connection, now, limit)?;
                Ok((deleted, true))
            })
            .await
    }

    async fn sweep_tokens(
        &self,
        after: Option<&TokenHash>,
        now: Timestamp,
        limit: u32,
    ) -> Result<TokenSweep, StoreError> {
        // The tokens are read through the read pool, not inside a write: on a large store
        // the sessions they join may be cold pages, and reading them must not hold up the
        // writes queued behind the writer thread. Deadness never ends, so a token read dead
        // here is still dead when the write below deletes it.
        let examined = sqlx::query(sql::SWEEP_TOKENS)
            .bind(after.map_or(&[][..], bind_hash))
            .bind(now.millis())
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(store_error)?
            .iter()
            .map(rows::swept_token)
            .collect::<Result<Vec<_>, _>>()?;
        let dead: Vec<Value> = examined
            .iter()
            .filter(|(_, dead)| *dead)
            .map(|(key, _)| params::hash(key))
            .collect();
        let deleted = if dead.is_empty() {
            0
        } else {
            // Only dead tokens go, which no lookup finds live: nobody needs telling.
            self.write
                .write(Notify::Nobody, move |connection| {
                    let mut deleted = 0;
                    for key in &dead {
                        deleted +=
                            params::run(connection, sql::DELETE_TOKEN, std::slice::from_ref(key))?;
                    }
                    Ok((deleted as u64, deleted > 0))
                })
                .await?
        };
        let last = examined.last().map(|(key, _)| *key);
        Ok(TokenSweep::of_batch(examined.len(), last, deleted, limit))
    }
}

/// Read inside the write transaction, so no session can come back to life between being
/// picked and being deleted. Its tokens stay for the sweep, never found meanwhile: every
/// lookup joins the session.
fn delete_dead_sessions(
    connection: &Connection,
    now: Timestamp,
    limit: u32,
) -> rusqlite::Result<DeletedRows> {
    // Ids as stored, given back as they are.
    let ids = |statement: &str, params: &[Value]| -> rusqlite::Result<Vec<Value>> {
        connection
            .prepare_cached(statement)?
            .query_map(rusqlite::params_from_iter(params), |row| row.get(0))?
            .collect()
    };
    let mut dead = ids(
        sql::EXPIRED_SESSIONS,
        &[params::millis(now), params::integer(limit)],
    )?;
    let room = u64::from(limit).saturating_sub(dead.len() as u64);
    if room > 0 {
        dead.extend(ids(
            sql::REVOKED_SESSIONS,
            &[
                params::millis(now),
                Value::Integer(i64::try_from(room).unwrap_or(i64::MAX)),
            ],
        )?);
    }

    let mut deleted = DeletedRows::default();
    for session_id in &dead {
        deleted.sessions += params::run(
            connection,
            sql::DELETE_SESSION,
            std::slice::from_ref(session_id),
        )? as u64;
    }
    Ok(deleted)
}
