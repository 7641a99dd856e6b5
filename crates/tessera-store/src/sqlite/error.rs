//! How SQLite and driver errors become [`StoreError`]s, failing closed (RELIABILITY P11):
//! only a uniqueness rule is a [`StoreError::Conflict`]; a damaged file or an undecodable
//! row is [`StoreError::Corrupt`]; everything else, including a lock held too long, a full
//! disk, a read-only file and a closed store, is [`StoreError::Unavailable`].
//!
//! Messages carry SQLite's result code and its own message, which names tables, columns and
//! constraints but never a bound value, and never the driver's wider error text, which
//! could.

use sqlx::error::DatabaseError;
use tessera_core::StoreError;

// Result codes from https://sqlite.org/rescode.html. Extended codes keep the primary code in
// their low byte.
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// SQLite's extended result code of a database error.
pub(crate) fn extended_code(error: &dyn DatabaseError) -> i32 {
    error
        .code()
        .and_then(|code| code.parse().ok())
        .unwrap_or(-1)
}

/// Whether the error says the file is not a SQLite database at all.
pub(crate) fn is_not_a_database(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if extended_code(db.as_ref()) & 0xff == SQLITE_NOTADB)
}

/// Whether the error says the file is damaged.
pub(crate) fn is_corrupt(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if extended_code(db.as_ref()) & 0xff == SQLITE_CORRUPT)
}

/// `SQLite BUSY (5): database is locked`.
pub(crate) fn describe(error: &dyn DatabaseError) -> String {
    let code = extended_code(error);
    format!(
        "SQLite {} ({code}): {}",
        primary_name(code & 0xff),
        error.message()
    )
}

/// Sorts a SQLite failure by its extended result `code`: a uniqueness rule, a damaged
/// file, or anything else (unavailable).
fn classify(code: i32, described: String) -> StoreError {
    match code {
        SQLITE_CONSTRAINT_PRIMARYKEY | SQLITE_CONSTRAINT_UNIQUE => StoreError::Conflict(described),
        _ if matches!(code & 0xff, SQLITE_CORRUPT | SQLITE_NOTADB) => {
            StoreError::Corrupt(described)
        }
        _ => StoreError::Unavailable(described),
    }
}

/// Maps any driver error from a store operation.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(db) => classify(extended_code(db.as_ref()), describe(db.as_ref())),
        sqlx::Error::ColumnDecode { index, .. } => {
            StoreError::Corrupt(format!("column {index} holds a value that cannot be read"))
        }
        sqlx::Error::Decode(_) => StoreError::Corrupt("a stored value cannot be read".to_owned()),
        sqlx::Error::ColumnNotFound(name) => {
            StoreError::Corrupt(format!("the column {name} is missing"))
        }
        sqlx::Error::ColumnIndexOutOfBounds { index, len } => {
            StoreError::Corrupt(format!("a row has {len} columns, not {}", index + 1))
        }
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".to_owned())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("the store is closed".to_owned()),
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable("the database connection's worker stopped".to_owned())
        }
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("I/O error: {io}")),
        error @ (sqlx::Error::BeginFailed | sqlx::Error::InvalidSavePointStatement) => {
            StoreError::Unavailable(error.to_string())
        }
        // The remaining variants (encoding, protocol, configuration) may quote the value
        // being handled, so only a fixed text goes out.
        _ => StoreError::Unavailable("unexpected database driver error".to_owned()),
    }
}

/// Maps an error of the writer thread's `rusqlite` connection, as [`store_error`] does a
/// driver error.
pub(crate) fn rusqlite_error(error: &rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let code = failure.extended_code;
            let described = format!(
                "SQLite {} ({code}): {}",
                primary_name(code & 0xff),
                message.clone().unwrap_or_else(|| failure.to_string())
            );
            classify(code, described)
        }
        rusqlite::Error::FromSqlConversionFailure(index, ..)
        | rusqlite::Error::InvalidColumnType(index, ..)
        | rusqlite::Error::IntegralValueOutOfRange(index, _) => {
            StoreError::Corrupt(format!("column {index} holds a value that cannot be read"))
        }
        // The remaining variants may quote the value being handled, so only a fixed text
        // goes out.
        _ => StoreError::Unavailable("unexpected SQLite error".to_owned()),
    }
}

fn primary_name(code: i32) -> &'static str {
    match code {
        1 => "ERROR",
        2 => "INTERNAL",
        3 => "PERM",
        4 => "ABORT",
        5 => "BUSY",
        6 => "LOCKED",
        7 => "NOMEM",
        8 => "READONLY",
        9 => "INTERRUPT",
        10 => "IOERR",
        11 => "CORRUPT",
        12 => "NOTFOUND",
        13 => "FULL",
        14 => "CANTOPEN",
        15 => "PROTOCOL",
        17 => "SCHEMA",
        18 => "TOOBIG",
        19 => "CONSTRAINT",
        20 => "MISMATCH",
        21 => "MISUSE",
        22 => "NOLFS",
        23 => "AUTH",
        25 => "RANGE",
        26 => "NOTADB",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_the_codes_that_mean_unavailable() {
        for (code, name) in [
            (5, "BUSY"),
            (6, "LOCKED"),
            (8, "READONLY"),
            (10, "IOERR"),
            (13, "FULL"),
            (14, "CANTOPEN"),
        ] {
            assert_eq!(primary_name(code), name);
        }
    }

    #[test]
    fn pool_failures_are_unavailable() {
        assert!(matches!(
            store_error(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            store_error(sqlx::Error::PoolClosed),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            store_error(sqlx::Error::Io(std::io::Error::other("disk gone"))),
            StoreError::Unavailable(_)
        ));
    }
}
