//! Reading rows back into domain records. Columns are read by position, in the order the
//! column lists in `sql.rs` give; anything that does not decode into a valid record is
//! [`StoreError::Corrupt`], described without the stored value.

use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{Decode, Row, Type};
use tessera_core::client::{ClientRecord, ClientSecretHash, GrantSet, PasswordEncoding};
use tessera_core::session::{SessionRecord, TokenLookup, TokenRecord};
use tessera_core::session_admin::{SessionLookup, SessionOwner, TidyUp};
use tessera_core::session_token::SessionTokenRecord;
use tessera_core::shopper::ShopperRecord;
use tessera_core::token::{TokenHash, TokenKind};
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;

crate::row_decoders::row_decoders!(SqliteRow, Sqlite);

/// The same decoders over the writer thread's `rusqlite` rows, for the reads a write makes
/// inside its own transaction (the refresh exchange reads its token there).
#[allow(
    dead_code,
    reason = "the shared decoders come as one set; the writer reads token lookups only"
)]
pub(super) mod on_writer {
    use rusqlite::Row;
    use rusqlite::types::ValueRef;
    use tessera_core::client::{ClientRecord, ClientSecretHash, GrantSet, PasswordEncoding};
    use tessera_core::session::{SessionRecord, TokenLookup, TokenRecord};
    use tessera_core::session_admin::{SessionLookup, SessionOwner, TidyUp};
    use tessera_core::session_token::SessionTokenRecord;
    use tessera_core::shopper::ShopperRecord;
    use tessera_core::token::{TokenHash, TokenKind};
    use tessera_core::{StoreError, Timestamp};

    use super::super::error::rusqlite_error;

    /// A cursor over one row's columns, as the sqlx one above.
    pub(crate) struct Columns<'r> {
        row: &'r Row<'r>,
        next: usize,
    }

    impl<'r> Columns<'r> {
        pub(crate) fn new(row: &'r Row<'r>) -> Self {
            Self { row, next: 0 }
        }

        fn take<T: Column<'r>>(&mut self) -> Result<T, StoreError> {
            let index = self.next;
            self.next += 1;
            let value = self.row.get_ref(index).map_err(|e| rusqlite_error(&e))?;
            T::from_value(value).ok_or_else(|| {
                StoreError::Corrupt(format!("column {index} holds a value of another type"))
            })
        }
    }

    /// A column value the decoders read, borrowed from the row where it can be.
    trait Column<'r>: Sized {
        /// `None` when the value is of another type.
        fn from_value(value: ValueRef<'r>) -> Option<Self>;
    }

    impl<'r> Column<'r> for i64 {
        fn from_value(value: ValueRef<'r>) -> Option<Self> {
            match value {
                ValueRef::Integer(integer) => Some(integer),
                _ => None,
            }
        }
    }

    impl<'r> Column<'r> for bool {
        fn from_value(value: ValueRef<'r>) -> Option<Self> {
            match value {
                ValueRef::Integer(0) => Some(false),
                ValueRef::Integer(1) => Some(true),
                _ => None,
            }
        }
    }

    impl<'r> Column<'r> for &'r str {
        fn from_value(value: ValueRef<'r>) -> Option<Self> {
            match value {
                ValueRef::Text(text) => std::str::from_utf8(text).ok(),
                _ => None,
            }
        }
    }

    impl<'r> Column<'r> for String {
        fn from_value(value: ValueRef<'r>) -> Option<Self> {
            <&str>::from_value(value).map(str::to_owned)
        }
    }

    impl<'r> Column<'r> for &'r [u8] {
        fn from_value(value: ValueRef<'r>) -> Option<Self> {
            match value {
                ValueRef::Blob(bytes) => Some(bytes),
                _ => None,
            }
        }
    }

    impl<'r, T: Column<'r>> Column<'r> for Option<T> {
        fn from_value(value: ValueRef<'r>) -> Option<Self> {
            match value {
                ValueRef::Null => Some(None),
                value => T::from_value(value).map(Some),
            }
        }
    }

    crate::row_decoders::record_decoders!(Row<'_>);

    /// The lookup of `hash` read on the writer connection, inside the transaction of the
    /// write asking: `None` when there is no such token, `Some(Err)` for a row that cannot
    /// be decoded.
    pub(crate) fn lookup_token(
        connection: &rusqlite::Connection,
        hash: &TokenHash,
    ) -> rusqlite::Result<Option<Result<TokenLookup, StoreError>>> {
        let mut statement = connection.prepare_cached(super::super::sql::LOOKUP_TOKEN)?;
        let mut rows = statement.query([super::super::params::hash(hash)])?;
        Ok(rows.next()?.map(lookup))
    }
}
