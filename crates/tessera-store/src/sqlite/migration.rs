//! Reading rows out and writing rows in for `tessera migrate-store` ([`MigrationStore`]).
//! Exports read on the read-only pool; each import batch is one `BEGIN IMMEDIATE`
//! transaction on the writer.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use tessera_core::client::ClientSecretHash;
use tessera_core::migration::{
    MigrationBatch, MigrationKey, MigrationKind, MigrationStore, ShopperWatermark,
};
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::rows::{self, Columns};
use super::writer::Notify;
use super::{SqliteStore, bind_hash, sql};

crate::bulk_import::bulk_import!(sqlx::Sqlite, SqliteConnection);

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

fn watermark(row: &SqliteRow) -> Result<ShopperWatermark, StoreError> {
    Ok(ShopperWatermark {
        user_id: row.try_get(0).map_err(store_error)?,
        before: Timestamp(row.try_get(1).map_err(store_error)?),
    })
}

async fn count(
    conn: &mut SqliteConnection,
    query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
) -> Result<u64, StoreError> {
    let n: i64 = query
        .fetch_one(conn)
        .await
        .map_err(store_error)?
        .try_get(0)
        .map_err(store_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl MigrationStore for SqliteStore {
    async fn count_to_move(&self, kind: MigrationKind, now: Timestamp) -> Result<u64, StoreError> {
        let query = match kind {
            MigrationKind::Clients => sqlx::query(sql::COUNT_CLIENTS),
            MigrationKind::Shoppers => sqlx::query(sql::COUNT_SHOPPERS),
            MigrationKind::ShopperWatermarks => sqlx::query(sql::COUNT_SHOPPER_WATERMARKS),
            MigrationKind::PendingTidyUps => sqlx::query(sql::COUNT_PENDING_TIDY_UPS),
            MigrationKind::Sessions => sqlx::query(sql::COUNT_LIVE_SESSIONS).bind(now.millis()),
            MigrationKind::Tokens => sqlx::query(sql::COUNT_LIVE_TOKENS).bind(now.millis()),
            MigrationKind::SessionTokens => {
                sqlx::query(sql::COUNT_LIVE_SESSION_TOKENS).bind(now.millis())
            }
        };
        let mut conn = self.read.acquire().await.map_err(store_error)?;
        count(&mut conn, query).await
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
        let read = &self.read;
        Ok(match kind {
            MigrationKind::Clients => {
                let found = sqlx::query(sql::EXPORT_CLIENTS)
                    .bind(text_after(after))
                    .bind(limit)
                    .fetch_all(read)
                    .await
                    .map_err(store_error)?;
                MigrationBatch::Clients(
                    found
                        .iter()
                        .map(|row| rows::client(&mut Columns::new(row)))
                        .collect::<Result<_, _>>()?,
                )
            }
            MigrationKind::Shoppers => {
                let found = sqlx::query(sql::EXPORT_SHOPPERS)
                    .bind(text_after(after))
                    .bind(limit)
                    .fetch_all(read)
                    .await
                    .map_err(store_error)?;
                MigrationBatch::Shoppers(
                    found
                        .iter()
                        .map(|row| rows::shopper(&mut Columns::new(row)))
                        .collect::<Result<_, _>>()?,
                )
            }
            MigrationKind::ShopperWatermarks => {
                let found = sqlx::query(sql::EXPORT_SHOPPER_WATERMARKS)
                    .bind(text_after(after))
                    .bind(limit)
                    .fetch_all(read)
                    .await
                    .map_err(store_error)?;
                MigrationBatch::ShopperWatermarks(
                    found.iter().map(watermark).collect::<Result<_, _>>()?,
                )
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
                    .fetch_all(read)
                    .await
                    .map_err(store_error)?;
                MigrationBatch::PendingTidyUps(
                    found.iter().map(rows::tidy_up).collect::<Result<_, _>>()?,
                )
            }
            MigrationKind::Sessions => {
                let found = sqlx::query(sql::EXPORT_SESSIONS)
                    .bind(text_after(after))
                    .bind(now)
                    .bind(limit)
                    .fetch_all(read)
                    .await
                    .map_err(store_error)?;
                MigrationBatch::Sessions(
                    found
                        .iter()
                        .map(|row| rows::session(&mut Columns::new(row)))
                        .collect::<Result<_, _>>()?,
                )
            }
            MigrationKind::Tokens => {
                let found = sqlx::query(sql::EXPORT_TOKENS)
                    .bind(hash_after(after))
                    .bind(now)
                    .bind(limit)
                    .fetch_all(read)
                    .await
                    .map_err(store_error)?;
                MigrationBatch::Tokens(
                    found
                        .iter()
                        .map(|row| rows::token(&mut Columns::new(row)))
                        .collect::<Result<_, _>>()?,
                )
            }
            MigrationKind::SessionTokens => {
                let found = sqlx::query(sql::EXPORT_SESSION_TOKENS)
                    .bind(hash_after(after))
                    .bind(now)
                    .bind(limit)
                    .fetch_all(read)
                    .await
                    .map_err(store_error)?;
                MigrationBatch::SessionTokens(
                    found
                        .iter()
                        .map(|row| rows::session_token(&mut Columns::new(row)).map(|(r, _)| r))
                        .collect::<Result<_, _>>()?,
                )
            }
        })
    }

    async fn import_rows(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        // Dropping the transaction on any early return rolls the whole batch back.
        let mut tx = self.write.begin().await?;
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
                        .await
                        .map_err(store_error)?
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
                        .await
                        .map_err(store_error)?
                        .rows_affected();
                }
            }
            MigrationBatch::ShopperWatermarks(rows) => {
                for mark in rows {
                    written += sqlx::query(sql::IMPORT_SHOPPER_WATERMARK)
                        .bind(&mark.user_id)
                        .bind(mark.before.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?
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
                        .await
                        .map_err(store_error)?
                        .rows_affected();
                }
            }
            MigrationBatch::Sessions(rows) => {
                written += insert_sessions(&mut tx, rows).await.map_err(store_error)?;
            }
            MigrationBatch::Tokens(rows) => {
                written += insert_tokens(&mut tx, rows).await.map_err(store_error)?;
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
                        .await
                        .map_err(store_error)?
                        .rows_affected();
                }
            }
        }
        tx.commit(Notify::OtherProcesses).await?;
        Ok(written)
    }

    async fn count_present(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        // Point reads by primary key on one connection: cheap on a local file.
        let mut conn = self.read.acquire().await.map_err(store_error)?;
        let mut present = 0;
        match batch {
            MigrationBatch::Clients(rows) => {
                for row in rows {
                    present +=
                        count(&mut conn, sqlx::query(sql::CLIENT_EXISTS).bind(&row.id)).await?;
                }
            }
            MigrationBatch::Shoppers(rows) => {
                for row in rows {
                    present +=
                        count(&mut conn, sqlx::query(sql::SHOPPER_EXISTS).bind(&row.id)).await?;
                }
            }
            MigrationBatch::ShopperWatermarks(rows) => {
                for row in rows {
                    present += count(
                        &mut conn,
                        sqlx::query(sql::SHOPPER_WATERMARK_EXISTS).bind(&row.user_id),
                    )
                    .await?;
                }
            }
            MigrationBatch::PendingTidyUps(rows) => {
                for row in rows {
                    present += count(
                        &mut conn,
                        sqlx::query(sql::PENDING_TIDY_UP_EXISTS)
                            .bind(row.owner.kind())
                            .bind(row.owner.id()),
                    )
                    .await?;
                }
            }
            MigrationBatch::Sessions(rows) => {
                for row in rows {
                    present +=
                        count(&mut conn, sqlx::query(sql::SESSION_EXISTS).bind(&row.id)).await?;
                }
            }
            MigrationBatch::Tokens(rows) => {
                for row in rows {
                    present += count(
                        &mut conn,
                        sqlx::query(sql::TOKEN_EXISTS).bind(bind_hash(&row.hash)),
                    )
                    .await?;
                }
            }
            MigrationBatch::SessionTokens(rows) => {
                for row in rows {
                    present += count(
                        &mut conn,
                        sqlx::query(sql::SESSION_TOKEN_EXISTS).bind(bind_hash(&row.hash)),
                    )
                    .await?;
                }
            }
        }
        Ok(present)
    }
}
