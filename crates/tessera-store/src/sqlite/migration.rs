//! Reading rows out and writing rows in for `tessera migrate-store` ([`MigrationStore`]).
//! Exports read on the read-only pool; each import batch is one write on the writer thread
//! (`writer.rs`), undone whole if any of its statements fails.

use async_trait::async_trait;
use rusqlite::types::Value;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use tessera_core::migration::{
    MigrationBatch, MigrationKey, MigrationKind, MigrationStore, ShopperWatermark,
};
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;
use super::rows::{self, Columns};
use super::writer::Notify;
use super::{SqliteStore, bind_hash, params, sql};

/// Rows per multi-row insert: 500 sessions bind 7,500 values, under SQLite's 32,766 bound
/// parameters per statement. One statement per few hundred rows costs one step instead of
/// one per row.
const ROWS_PER_STATEMENT: usize = 500;

/// The statements that import `batch`, each with its parameters. Every row goes in with
/// `ON CONFLICT DO NOTHING`, so an import stays idempotent and counts only the rows it
/// wrote.
fn import_statements(batch: &MigrationBatch) -> Vec<(String, Vec<Value>)> {
    let each = |statement: &str, rows: Vec<Vec<Value>>| {
        rows.into_iter()
            .map(|params| (statement.to_owned(), params))
            .collect()
    };
    match batch {
        MigrationBatch::Clients(rows) => each(
            sql::IMPORT_CLIENT,
            rows.iter().map(params::client).collect(),
        ),
        MigrationBatch::Shoppers(rows) => each(
            sql::IMPORT_SHOPPER,
            rows.iter().map(params::shopper).collect(),
        ),
        MigrationBatch::ShopperWatermarks(rows) => each(
            sql::IMPORT_SHOPPER_WATERMARK,
            rows.iter()
                .map(|mark| vec![params::text(&mark.user_id), params::millis(mark.before)])
                .collect(),
        ),
        MigrationBatch::PendingTidyUps(rows) => each(
            sql::IMPORT_PENDING_TIDY_UP,
            rows.iter()
                .map(|tidy_up| {
                    vec![
                        params::text(tidy_up.owner.kind()),
                        params::text(tidy_up.owner.id()),
                        params::millis(tidy_up.before),
                    ]
                })
                .collect(),
        ),
        MigrationBatch::Sessions(rows) => multi_row(
            sql::IMPORT_SESSIONS_INTO,
            rows.iter().map(params::session).collect(),
        ),
        MigrationBatch::Tokens(rows) => multi_row(
            sql::IMPORT_TOKENS_INTO,
            rows.iter().map(params::token).collect(),
        ),
        MigrationBatch::SessionTokens(rows) => each(
            sql::IMPORT_SESSION_TOKEN,
            rows.iter()
                .map(|record| {
                    vec![
                        params::hash(&record.hash),
                        params::id(&record.client_id),
                        params::optional_id(record.session_id.as_deref()),
                        params::millis(record.created_at),
                        params::millis(record.expires_at),
                    ]
                })
                .collect(),
        ),
    }
}

/// `head VALUES (?, ...), ... ON CONFLICT DO NOTHING`, [`ROWS_PER_STATEMENT`] rows at a
/// time.
fn multi_row(head: &str, rows: Vec<Vec<Value>>) -> Vec<(String, Vec<Value>)> {
    rows.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let columns = chunk.first().map_or(0, Vec::len);
            let row = format!("({})", vec!["?"; columns].join(", "));
            let statement = format!(
                "{head}VALUES {}{}",
                vec![row; chunk.len()].join(", "),
                sql::IMPORT_ON_CONFLICT
            );
            (statement, chunk.concat())
        })
        .collect()
}

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
        let statements = import_statements(batch);
        // An error undoes the whole batch.
        self.write
            .write(Notify::OtherProcesses, move |connection| {
                let mut written = 0;
                for (statement, params) in &statements {
                    written += params::run(connection, statement, params)? as u64;
                }
                Ok((written, written > 0))
            })
            .await
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
