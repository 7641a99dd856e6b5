//! How PostgreSQL and driver errors become [`StoreError`]s, failing closed (RELIABILITY
//! P11): a uniqueness rule is a [`StoreError::Conflict`]; a serialization failure or a
//! deadlock is retried by the store (`Failure::Retry`) and becomes
//! [`StoreError::Unavailable`] only when the retries run out; damaged data or an
//! undecodable row is [`StoreError::Corrupt`]; everything else, including a lost
//! connection, a pool timeout, a statement or lock timeout and a server shutting down, is
//! [`StoreError::Unavailable`].
//!
//! Messages carry the SQLSTATE and, for the classes whose server messages name only
//! tables, columns and constraints, the server's message; never its `DETAIL`, which quotes
//! the offending values, and never the driver's wider text, which could.

use sqlx::error::DatabaseError;
use sqlx::postgres::PgDatabaseError;
use tessera_core::StoreError;

/// What one attempt of a store operation ended with, short of success.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The transaction was rolled back as a whole by a serialization failure or a deadlock
    /// and may be run again from the start.
    Retry(String),
    /// Anything else: no second attempt.
    Final(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if is_retryable(db.as_ref()) => {
                Self::Retry(describe(db.as_ref()))
            }
            _ => Self::Final(store_error(error)),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Final(error)
    }
}

// SQLSTATEs from https://www.postgresql.org/docs/current/errcodes-appendix.html.
const UNIQUE_VIOLATION: &str = "23505";
const SERIALIZATION_FAILURE: &str = "40001";
const DEADLOCK_DETECTED: &str = "40P01";
const DATA_CORRUPTED: &str = "XX001";
const INDEX_CORRUPTED: &str = "XX002";

fn sqlstate(error: &dyn DatabaseError) -> &str {
    error
        .try_downcast_ref::<PgDatabaseError>()
        .map_or("", PgDatabaseError::code)
}

/// Whether PostgreSQL rolled the transaction back in a way that running it again may cure.
pub(crate) fn is_retryable(error: &dyn DatabaseError) -> bool {
    matches!(sqlstate(error), SERIALIZATION_FAILURE | DEADLOCK_DETECTED)
}

/// `PostgreSQL 40P01 (deadlock detected): deadlock detected`.
pub(crate) fn describe(error: &dyn DatabaseError) -> String {
    let code = sqlstate(error);
    let name = class_name(code);
    // Only classes whose messages name objects, not values, are quoted.
    if matches!(
        code.get(..2),
        Some("08" | "23" | "25" | "40" | "42" | "53" | "55" | "57" | "58")
    ) {
        format!("PostgreSQL {code} ({name}): {}", error.message())
    } else {
        format!("PostgreSQL {code} ({name})")
    }
}

/// Maps any driver error from a store operation.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(db) => {
            let described = describe(db.as_ref());
            match sqlstate(db.as_ref()) {
                UNIQUE_VIOLATION => StoreError::Conflict(described),
                DATA_CORRUPTED | INDEX_CORRUPTED => StoreError::Corrupt(described),
                _ => StoreError::Unavailable(described),
            }
        }
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
        sqlx::Error::Tls(_) => {
            StoreError::Unavailable("the TLS connection to PostgreSQL failed".to_owned())
        }
        // The remaining variants (configuration, protocol, encoding) may quote the URL or
        // the value being handled, so only a fixed text goes out.
        _ => StoreError::Unavailable("unexpected database driver error".to_owned()),
    }
}

/// The SQLSTATE's condition name, for the codes a store meets; the class name otherwise.
fn class_name(code: &str) -> &'static str {
    match code {
        UNIQUE_VIOLATION => "unique violation",
        "23503" => "foreign key violation",
        "23514" => "check violation",
        SERIALIZATION_FAILURE => "serialization failure",
        DEADLOCK_DETECTED => "deadlock detected",
        "22021" => "character not in repertoire",
        "25006" => "read-only transaction",
        "53100" => "disk full",
        "53300" => "too many connections",
        "55P03" => "lock not available",
        "57014" => "query canceled",
        "57P01" => "admin shutdown",
        "57P02" => "crash shutdown",
        "57P03" => "cannot connect now",
        DATA_CORRUPTED => "data corrupted",
        INDEX_CORRUPTED => "index corrupted",
        _ => match code.get(..2) {
            Some("08") => "connection exception",
            Some("22") => "data exception",
            Some("23") => "integrity constraint violation",
            Some("25") => "invalid transaction state",
            Some("28") => "invalid authorization",
            Some("3D") => "invalid catalog name",
            Some("40") => "transaction rollback",
            Some("42") => "syntax error or access rule violation",
            Some("53") => "insufficient resources",
            Some("54") => "program limit exceeded",
            Some("55") => "object not in prerequisite state",
            Some("57") => "operator intervention",
            Some("58") => "system error",
            Some("XX") => "internal error",
            _ => "error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_names_cover_the_codes_that_mean_unavailable() {
        for (code, name) in [
            ("57P01", "admin shutdown"),
            ("57014", "query canceled"),
            ("55P03", "lock not available"),
            ("53300", "too many connections"),
            ("08006", "connection exception"),
        ] {
            assert_eq!(class_name(code), name);
        }
    }

    #[test]
    fn pool_and_connection_failures_are_unavailable() {
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::other("connection reset")),
            sqlx::Error::Protocol("postgres://u:hunter2@db/x".to_owned()),
        ] {
            match store_error(error) {
                StoreError::Unavailable(message) => assert!(!message.contains("hunter2")),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn driver_errors_are_not_retried() {
        assert!(matches!(
            Failure::from(sqlx::Error::PoolTimedOut),
            Failure::Final(StoreError::Unavailable(_))
        ));
    }
}
