//! Session tokens and the session changes that use them (`SessionJoinStore`): each
//! change is one write of the writer thread (`writer.rs`) whose first statement re-checks
//! its precondition and writes nothing more when it no longer holds.

use async_trait::async_trait;
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::session_token::{SessionTokenLookup, SessionTokenRecord};
use tessera_core::store::{SessionJoinStore, SessionStore};
use tessera_core::token::TokenHash;
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::rows::{self, Columns};
use super::writer::Notify;
use super::{SqliteStore, bind_hash, params, sql};

#[async_trait]
impl SessionJoinStore for SqliteStore {
    async fn insert_session_token(&self, record: &SessionTokenRecord) -> Result<(), StoreError> {
        let params = vec![
            params::hash(&record.hash),
            params::id(&record.client_id),
            params::optional_id(record.session_id.as_deref()),
            params::millis(record.created_at),
            params::millis(record.expires_at),
        ];
        self.execute(Notify::Nobody, sql::INSERT_SESSION_TOKEN, params)
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
        let bind = vec![
            params::id(&session.id),
            params::hash(hash),
            params::optional_id(previous),
        ];
        let session = params::session(session);
        let tokens: Vec<_> = tokens.iter().map(params::token).collect();
        self.write
            .write(Notify::Nobody, move |connection| {
                if params::run(connection, sql::BIND_SESSION_TOKEN, &bind)? != 1 {
                    return Ok((false, false));
                }
                params::run(connection, sql::INSERT_SESSION, &session)?;
                params::insert_tokens(connection, &tokens)?;
                Ok((true, true))
            })
            .await
    }

    async fn add_session_tokens(
        &self,
        session_id: &str,
        newest_access: &TokenHash,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        let live = vec![params::hash(newest_access), params::id(session_id)];
        let tokens: Vec<_> = tokens.iter().map(params::token).collect();
        self.write
            .write(Notify::Nobody, move |connection| {
                if params::run(connection, sql::SET_NEWEST_ACCESS_IF_LIVE, &live)? != 1 {
                    return Ok((false, false));
                }
                params::insert_tokens(connection, &tokens)?;
                Ok((true, true))
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
        let end = vec![params::millis(now), params::id(previous)];
        let rebind = vec![params::id(&session.id), params::id(previous)];
        let session = params::session(session);
        let tokens: Vec<_> = tokens.iter().map(params::token).collect();
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                if params::run(connection, sql::END_ANONYMOUS_SESSION, &end)? != 1 {
                    return Ok((false, false));
                }
                params::run(connection, sql::INSERT_SESSION, &session)?;
                params::insert_tokens(connection, &tokens)?;
                params::run(connection, sql::REBIND_SESSION_TOKENS, &rebind)?;
                Ok((true, true))
            })
            .await
    }

    async fn delete_expired_session_tokens(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let params = vec![params::millis(now), params::integer(limit)];
        let deleted = self
            .execute(Notify::Nobody, sql::DELETE_EXPIRED_SESSION_TOKENS, params)
            .await?;
        Ok(deleted as u64)
    }

    async fn set_session_preferences(
        &self,
        session_id: &str,
        locale: Option<&str>,
        currency: Option<&str>,
    ) -> Result<bool, StoreError> {
        let params = vec![
            params::optional_text(locale),
            params::optional_text(currency),
            params::id(session_id),
        ];
        let changed = self
            .execute(Notify::OtherProcesses, sql::SET_SESSION_PREFERENCES, params)
            .await?;
        Ok(changed == 1)
    }
}
