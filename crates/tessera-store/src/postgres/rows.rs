//! Reading rows back into domain records. Columns are read by position, in the order the
//! column lists in `sql.rs` give; anything that does not decode into a valid record is
//! [`StoreError::Corrupt`], described without the stored value.

use sqlx::postgres::{PgRow, Postgres};
use sqlx::{Decode, Row, Type};
use tessera_core::client::{ClientRecord, ClientSecretHash, GrantSet, PasswordEncoding};
use tessera_core::session::{SessionRecord, TokenLookup, TokenRecord};
use tessera_core::session_admin::{SessionLookup, SessionOwner, TidyUp};
use tessera_core::session_token::SessionTokenRecord;
use tessera_core::shopper::ShopperRecord;
use tessera_core::token::{TokenHash, TokenKind};
use tessera_core::{StoreError, Timestamp};

use super::error::store_error;

crate::row_decoders::row_decoders!(PgRow, Postgres);
