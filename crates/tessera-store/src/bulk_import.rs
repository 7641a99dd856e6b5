//! Multi-row inserts for the import of sessions and tokens, the two kinds a migration or a
//! scale pre-load moves by the million. One statement per row costs a round trip each (to
//! the PostgreSQL server; on SQLite, a statement step); one statement per few hundred rows
//! costs one. A macro (as in `row_decoders`) keeps each function over its backend's
//! concrete sqlx types; PostgreSQL uses it, while the SQLite store, whose writes run on a
//! `rusqlite` connection, builds the same statements itself (`sqlite/migration.rs`). Every
//! row still goes in with `ON CONFLICT DO NOTHING`, so an import stays idempotent and
//! reports only the rows it wrote.

/// Defines `insert_sessions` and `insert_tokens` for one backend. The invoking module
/// brings its `sql` module (with `IMPORT_SESSIONS_INTO`, `IMPORT_TOKENS_INTO` and
/// `IMPORT_ON_CONFLICT`) into scope.
macro_rules! bulk_import {
    ($db:ty, $connection:ty) => {
        /// Rows per statement: 500 sessions bind 7,500 values, under SQLite's 32,766 and
        /// PostgreSQL's 65,535 bound parameters per statement.
        const ROWS_PER_STATEMENT: usize = 500;

        /// Inserts the sessions that are not there yet; returns how many it wrote.
        pub(crate) async fn insert_sessions(
            connection: &mut $connection,
            rows: &[tessera_core::session::SessionRecord],
        ) -> Result<u64, sqlx::Error> {
            let mut written = 0;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut statement = sqlx::QueryBuilder::<$db>::new(sql::IMPORT_SESSIONS_INTO);
                statement.push_values(chunk, |mut row, session| {
                    row.push_bind(&session.id)
                        .push_bind(&session.client_id)
                        .push_bind(&session.user_id)
                        .push_bind(&session.external_reference_id)
                        .push_bind(session.authenticated)
                        .push_bind(&session.locale)
                        .push_bind(&session.currency)
                        .push_bind(&session.cart_id)
                        .push_bind(&session.client_ip)
                        .push_bind(&session.session_tag)
                        .push_bind(session.created_at.millis())
                        .push_bind(session.last_accessed.millis())
                        .push_bind(session.expires_at.millis())
                        .push_bind(&session.newest_access.0[..])
                        .push_bind(session.revoked_at.map(tessera_core::Timestamp::millis));
                });
                statement.push(sql::IMPORT_ON_CONFLICT);
                written += statement
                    .build()
                    .execute(&mut *connection)
                    .await?
                    .rows_affected();
            }
            Ok(written)
        }

        /// Inserts the tokens that are not there yet; returns how many it wrote.
        pub(crate) async fn insert_tokens(
            connection: &mut $connection,
            rows: &[tessera_core::session::TokenRecord],
        ) -> Result<u64, sqlx::Error> {
            let mut written = 0;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut statement = sqlx::QueryBuilder::<$db>::new(sql::IMPORT_TOKENS_INTO);
                statement.push_values(chunk, |mut row, token| {
                    row.push_bind(&token.hash.0[..])
                        .push_bind(token.kind.as_str())
                        .push_bind(&token.session_id)
                        .push_bind(&token.client_id)
                        .push_bind(token.issued_at.millis())
                        .push_bind(token.expires_at.millis())
                        .push_bind(token.revoked_at.map(tessera_core::Timestamp::millis))
                        .push_bind(token.consumed_at.map(tessera_core::Timestamp::millis));
                });
                statement.push(sql::IMPORT_ON_CONFLICT);
                written += statement
                    .build()
                    .execute(&mut *connection)
                    .await?
                    .rows_affected();
            }
            Ok(written)
        }
    };
}

pub(crate) use bulk_import;
