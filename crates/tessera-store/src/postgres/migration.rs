//! Reading rows out and writing rows in for `tessera migrate-store` ([`MigrationStore`]).
//! Each import batch is one transaction; like every other operation, each call is retried
//! after a serialization failure or a deadlock.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use tessera_core::client::ClientSecretHash;
use tessera_core::migration::{
    MigrationBatch, MigrationKey, MigrationKind, MigrationStore, ShopperWatermark,
};
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::rows::{self, Columns};
use super::{PostgresStore, bind_hash, retrying, sql};

crate::bulk_import::bulk_import!(sqlx::Postgres, sqlx::PgConnection);

/// Where an export of `kind` starts: after `after`, or before every key.
fn text_after(after: Option<&MigrationKey>) -> &str {
    match after {
        Some(MigrationKey::Id(id)) => id,
        _ => "",
    }
}

fn hash_after(after: Option<&MigrationKey>) -> &[u8] {
    match after {
        Some(MigrationKey::Hash(hash)) => &hash.0,
        _ => &[],
    }
}

fn watermark(row: &PgRow) -> Result<ShopperWatermark, StoreError> {
    Ok(ShopperWatermark {
        user_id: row.try_get(0).map_err(store_error)?,
        before: Timestamp(row.try_get(1).map_err(store_error)?),
    })
}

fn decode_all<T>(
    found: &[PgRow],
    decode: impl Fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    found.iter().map(decode).collect()
}

fn ids<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<String> {
    ids.cloned().collect()
}

fn hashes<'a>(hashes: impl Iterator<Item = &'a tessera_core::token::TokenHash>) -> Vec<Vec<u8>> {
    hashes.map(|hash| hash.0.to_vec()).collect()
}

fn non_negative(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl MigrationStore for PostgresStore {
    async fn count_to_move(&self, kind: MigrationKind, now: Timestamp) -> Result<u64, StoreError> {
        let (query, with_now) = match kind {
            MigrationKind::Clients => (sql::COUNT_CLIENTS, false),
            MigrationKind::Shoppers => (sql::COUNT_SHOPPERS, false),
            MigrationKind::ShopperWatermarks => (sql::COUNT_SHOPPER_WATERMARKS, false),
            MigrationKind::PendingTidyUps => (sql::COUNT_PENDING_TIDY_UPS, false),
            MigrationKind::Sessions => (sql::COUNT_LIVE_SESSIONS, true),
            MigrationKind::Tokens => (sql::COUNT_LIVE_TOKENS, true),
            MigrationKind::SessionTokens => (sql::COUNT_LIVE_SESSION_TOKENS, true),
        };
        retrying("count_to_move", || {
            Box::pin(async move {
                let mut counted = sqlx::query_scalar::<_, i64>(query);
                if with_now {
                    counted = counted.bind(now.millis());
                }
                Ok(non_negative(counted.fetch_one(&self.pool).await?))
            })
        })
        .await
    }

    async fn export_rows(
        &self,
        kind: MigrationKind,
        after: Option<&MigrationKey>,
        now: Timestamp,
        limit: u32,
    ) -> Result<MigrationBatch, StoreError> {
        let limit = i64::from(limit);
        let now = now.millis();
        retrying("export_rows", || {
            Box::pin(async move {
                let pool = &self.pool;
                Ok(match kind {
                    MigrationKind::Clients => {
                        let found = sqlx::query(sql::EXPORT_CLIENTS)
                            .bind(text_after(after))
                            .bind(limit)
                            .fetch_all(pool)
                            .await?;
                        MigrationBatch::Clients(decode_all(&found, |row| {
                            rows::client(&mut Columns::new(row))
                        })?)
                    }
                    MigrationKind::Shoppers => {
                        let found = sqlx::query(sql::EXPORT_SHOPPERS)
                            .bind(text_after(after))
                            .bind(limit)
                            .fetch_all(pool)
                            .await?;
                        MigrationBatch::Shoppers(decode_all(&found, |row| {
                            rows::shopper(&mut Columns::new(row))
                        })?)
                    }
                    MigrationKind::ShopperWatermarks => {
                        let found = sqlx::query(sql::EXPORT_SHOPPER_WATERMARKS)
                            .bind(text_after(after))
                            .bind(limit)
                            .fetch_all(pool)
                            .await?;
                        MigrationBatch::ShopperWatermarks(decode_all(&found, watermark)?)
                    }
                    MigrationKind::PendingTidyUps => {
                        let (owner_kind, owner_id) = match after {
                            Some(MigrationKey::Owner(owner)) => (owner.kind(), owner.id()),
                            _ => ("", ""),
                        };
                        let found = sqlx::query(sql::EXPORT_PENDING_TIDY_UPS)
                            .bind(owner_kind)
                            .bind(owner_id)
                            .bind(limit)
                            .fetch_all(pool)
                            .await?;
                        MigrationBatch::PendingTidyUps(decode_all(&found, rows::tidy_up)?)
                    }
                    MigrationKind::Sessions => {
                        let found = sqlx::query(sql::EXPORT_SESSIONS)
                            .bind(text_after(after))
                            .bind(now)
                            .bind(limit)
                            .fetch_all(pool)
                            .await?;
                        MigrationBatch::Sessions(decode_all(&found, |row| {
                            rows::session(&mut Columns::new(row))
                        })?)
                    }
                    MigrationKind::Tokens => {
                        let found = sqlx::query(sql::EXPORT_TOKENS)
                            .bind(hash_after(after))
                            .bind(now)
                            .bind(limit)
                            .fetch_all(pool)
                            .await?;
                        MigrationBatch::Tokens(decode_all(&found, |row| {
                            rows::token(&mut Columns::new(row))
                        })?)
                    }
                    MigrationKind::SessionTokens => {
                        let found = sqlx::query(sql::EXPORT_SESSION_TOKENS)
                            .bind(hash_after(after))
                            .bind(now)
                            .bind(limit)
                            .fetch_all(pool)
                            .await?;
                        MigrationBatch::SessionTokens(decode_all(&found, |row| {
                            rows::session_token(&mut Columns::new(row)).map(|(record, _)| record)
                        })?)
                    }
                })
            })
        })
        .await
    }

    async fn import_rows(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        retrying("import_rows", || {
            Box::pin(async move {
                // Dropping the transaction on any early return rolls the whole batch back.
                let mut tx = self.pool.begin().await?;
                let mut written = 0;
                match batch {
                    MigrationBatch::Clients(rows) => {
                        for client in rows {
                            written += sqlx::query(sql::IMPORT_CLIENT)
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
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                        }
                    }
                    MigrationBatch::Shoppers(rows) => {
                        for shopper in rows {
                            written += sqlx::query(sql::IMPORT_SHOPPER)
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
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                        }
                    }
                    MigrationBatch::ShopperWatermarks(rows) => {
                        for mark in rows {
                            written += sqlx::query(sql::IMPORT_SHOPPER_WATERMARK)
                                .bind(&mark.user_id)
                                .bind(mark.before.millis())
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                        }
                    }
                    MigrationBatch::PendingTidyUps(rows) => {
                        for tidy_up in rows {
                            written += sqlx::query(sql::IMPORT_PENDING_TIDY_UP)
                                .bind(tidy_up.owner.kind())
                                .bind(tidy_up.owner.id())
                                .bind(tidy_up.before.millis())
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                        }
                    }
                    MigrationBatch::Sessions(rows) => {
                        written += insert_sessions(&mut tx, rows).await?;
                    }
                    MigrationBatch::Tokens(rows) => {
                        written += insert_tokens(&mut tx, rows).await?;
                    }
                    MigrationBatch::SessionTokens(rows) => {
                        for record in rows {
                            written += sqlx::query(sql::IMPORT_SESSION_TOKEN)
                                .bind(bind_hash(&record.hash))
                                .bind(&record.client_id)
                                .bind(&record.session_id)
                                .bind(record.created_at.millis())
                                .bind(record.expires_at.millis())
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                        }
                    }
                }
                tx.commit().await?;
                Ok(written)
            })
        })
        .await
    }

    async fn count_present(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        retrying("count_present", || {
            Box::pin(async move {
                let pool = &self.pool;
                let present = match batch {
                    MigrationBatch::Clients(rows) => {
                        sqlx::query_scalar::<_, i64>(sql::CLIENTS_PRESENT)
                            .bind(ids(rows.iter().map(|row| &row.id)))
                            .fetch_one(pool)
                            .await?
                    }
                    MigrationBatch::Shoppers(rows) => {
                        sqlx::query_scalar::<_, i64>(sql::SHOPPERS_PRESENT)
                            .bind(ids(rows.iter().map(|row| &row.id)))
                            .fetch_one(pool)
                            .await?
                    }
                    MigrationBatch::ShopperWatermarks(rows) => {
                        sqlx::query_scalar::<_, i64>(sql::SHOPPER_WATERMARKS_PRESENT)
                            .bind(ids(rows.iter().map(|row| &row.user_id)))
                            .fetch_one(pool)
                            .await?
                    }
                    MigrationBatch::PendingTidyUps(rows) => {
                        let kinds: Vec<&str> = rows.iter().map(|row| row.owner.kind()).collect();
                        let owners: Vec<&str> = rows.iter().map(|row| row.owner.id()).collect();
                        sqlx::query_scalar::<_, i64>(sql::PENDING_TIDY_UPS_PRESENT)
                            .bind(kinds)
                            .bind(owners)
                            .fetch_one(pool)
                            .await?
                    }
                    MigrationBatch::Sessions(rows) => {
                        sqlx::query_scalar::<_, i64>(sql::SESSIONS_PRESENT)
                            .bind(ids(rows.iter().map(|row| &row.id)))
                            .fetch_one(pool)
                            .await?
                    }
                    MigrationBatch::Tokens(rows) => {
                        sqlx::query_scalar::<_, i64>(sql::TOKENS_PRESENT)
                            .bind(hashes(rows.iter().map(|row| &row.hash)))
                            .fetch_one(pool)
                            .await?
                    }
                    MigrationBatch::SessionTokens(rows) => {
                        sqlx::query_scalar::<_, i64>(sql::SESSION_TOKENS_PRESENT)
                            .bind(hashes(rows.iter().map(|row| &row.hash)))
                            .fetch_one(pool)
                            .await?
                    }
                };
                Ok(non_negative(present))
            })
        })
        .await
    }
}
