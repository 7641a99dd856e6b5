//! The row decoders every backend shares. The schemas keep the same columns in the same
//! order, so reading a row back into a record is the same code for SQLite and PostgreSQL
//! through sqlx, and for SQLite's writer thread through rusqlite; only the row type and how
//! one column is taken from it differ. Macros (rather than generic code) keep each decoder
//! a plain function over its backend's concrete row type.

/// Defines `Columns` over a sqlx row and the record decoders for one backend. The invoking
/// module brings into scope the domain types, `sqlx::{Decode, Row, Type}` and its
/// backend's `store_error`.
macro_rules! row_decoders {
    ($row:ty, $db:ty) => {
        /// A cursor over one row's columns, so decoders of joined rows can follow each other.
        pub(crate) struct Columns<'r> {
            row: &'r $row,
            next: usize,
        }

        impl<'r> Columns<'r> {
            pub(crate) fn new(row: &'r $row) -> Self {
                Self { row, next: 0 }
            }

            fn take<T>(&mut self) -> Result<T, StoreError>
            where
                T: Decode<'r, $db> + Type<$db>,
            {
                let index = self.next;
                self.next += 1;
                self.row.try_get(index).map_err(store_error)
            }
        }

        $crate::row_decoders::record_decoders!($row);
    };
}

/// The record decoders, over a `Columns` cursor the invoking module defines for `$row`
/// with `new(&$row)` and a `take::<T>()` for every column type the decoders read (strings,
/// integers, booleans and byte slices, and their `Option`s).
macro_rules! record_decoders {
    ($row:ty) => {
        impl Columns<'_> {
            fn timestamp(&mut self) -> Result<Timestamp, StoreError> {
                self.take::<i64>().map(Timestamp)
            }

            fn optional_timestamp(&mut self) -> Result<Option<Timestamp>, StoreError> {
                Ok(self.take::<Option<i64>>()?.map(Timestamp))
            }

            fn token_hash(&mut self, what: &str) -> Result<TokenHash, StoreError> {
                let bytes: &[u8] = self.take()?;
                <[u8; 32]>::try_from(bytes)
                    .map(TokenHash)
                    .map_err(|_| StoreError::Corrupt(format!("{what} is not a 32-byte hash")))
            }
        }

        /// Reads the columns of `client_columns!`.
        pub(crate) fn client(columns: &mut Columns<'_>) -> Result<ClientRecord, StoreError> {
            let id = columns.take()?;
            let name = columns.take()?;
            let secret_hash = match columns.take::<Option<&[u8]>>()? {
                None => None,
                Some(bytes) => Some(ClientSecretHash::from_bytes(bytes).ok_or_else(|| {
                    StoreError::Corrupt("a client secret hash has the wrong length".to_owned())
                })?),
            };
            let grants = u32::try_from(columns.take::<i64>()?)
                .map(GrantSet::from_bits)
                .map_err(|_| {
                    StoreError::Corrupt("a client's grants are out of range".to_owned())
                })?;
            Ok(ClientRecord {
                id,
                name,
                secret_hash,
                grants,
                disabled: columns.take()?,
                access_token_ttl: columns.take()?,
                refresh_token_ttl: columns.take()?,
                default_locale: columns.take()?,
                default_currency: columns.take()?,
                theme_id: columns.take()?,
                created_at: columns.timestamp()?,
                sessions_revoked_before: columns.optional_timestamp()?,
                password_encoding: PasswordEncoding::parse(columns.take()?).ok_or_else(|| {
                    StoreError::Corrupt("a client has an unknown password encoding".to_owned())
                })?,
                resource_server: columns.take()?,
            })
        }

        /// Reads the columns of `shopper_columns!`.
        pub(crate) fn shopper(columns: &mut Columns<'_>) -> Result<ShopperRecord, StoreError> {
            Ok(ShopperRecord {
                id: columns.take()?,
                external_reference_id: columns.take()?,
                username: columns.take()?,
                password_hash: columns.take()?,
                locale: columns.take()?,
                currency: columns.take()?,
                created_at: columns.timestamp()?,
                first_name: columns.take()?,
                last_name: columns.take()?,
                email: columns.take()?,
            })
        }

        /// Reads the columns of `session_columns!`.
        pub(crate) fn session(columns: &mut Columns<'_>) -> Result<SessionRecord, StoreError> {
            Ok(SessionRecord {
                id: columns.take()?,
                client_id: columns.take()?,
                user_id: columns.take()?,
                external_reference_id: columns.take()?,
                authenticated: columns.take()?,
                locale: columns.take()?,
                currency: columns.take()?,
                cart_id: columns.take()?,
                client_ip: columns.take()?,
                session_tag: columns.take()?,
                created_at: columns.timestamp()?,
                last_accessed: columns.timestamp()?,
                expires_at: columns.timestamp()?,
                newest_access: columns.token_hash("a session's newest access token")?,
                revoked_at: columns.optional_timestamp()?,
            })
        }

        /// Reads the columns of `token_columns!`.
        pub(crate) fn token(columns: &mut Columns<'_>) -> Result<TokenRecord, StoreError> {
            let hash = columns.token_hash("a token hash")?;
            let kind = TokenKind::parse(columns.take()?)
                .ok_or_else(|| StoreError::Corrupt("a token has an unknown kind".to_owned()))?;
            Ok(TokenRecord {
                hash,
                kind,
                session_id: columns.take()?,
                client_id: columns.take()?,
                issued_at: columns.timestamp()?,
                expires_at: columns.timestamp()?,
                revoked_at: columns.optional_timestamp()?,
                consumed_at: columns.optional_timestamp()?,
            })
        }

        /// Reads a row of `sql::LOOKUP_TOKEN`.
        pub(crate) fn lookup(row: &$row) -> Result<TokenLookup, StoreError> {
            let mut columns = Columns::new(row);
            Ok(TokenLookup {
                token: token(&mut columns)?,
                session: session(&mut columns)?,
                client: client(&mut columns)?,
                shopper_sessions_revoked_before: columns.optional_timestamp()?,
                rendered: tessera_core::session::Rendered::default(),
            })
        }

        /// Reads a session token and its bound session's newest access token hash (NULL when
        /// unbound or when the session is gone).
        pub(crate) fn session_token(
            columns: &mut Columns<'_>,
        ) -> Result<(SessionTokenRecord, Option<TokenHash>), StoreError> {
            let hash = columns.token_hash("a session token hash")?;
            let record = SessionTokenRecord {
                hash,
                client_id: columns.take()?,
                session_id: columns.take()?,
                created_at: columns.timestamp()?,
                expires_at: columns.timestamp()?,
            };
            let newest = match columns.take::<Option<&[u8]>>()? {
                None => None,
                Some(bytes) => Some(<[u8; 32]>::try_from(bytes).map(TokenHash).map_err(|_| {
                    StoreError::Corrupt("a session's newest access hash is not 32 bytes".to_owned())
                })?),
            };
            Ok((record, newest))
        }

        /// Reads a row of `sql::SESSION_BY_ID` or `sql::SHOPPER_SESSIONS`.
        pub(crate) fn session_lookup(row: &$row) -> Result<SessionLookup, StoreError> {
            let mut columns = Columns::new(row);
            Ok(SessionLookup {
                session: session(&mut columns)?,
                client: client(&mut columns)?,
                shopper_sessions_revoked_before: columns.optional_timestamp()?,
            })
        }

        /// Reads a row of `sql::SWEEP_SESSIONS`: a session's id, and whether it is dead.
        pub(crate) fn swept_session(row: &$row) -> Result<(String, bool), StoreError> {
            let mut columns = Columns::new(row);
            Ok((columns.take()?, columns.take()?))
        }

        /// Reads a row of `sql::SWEEP_TOKENS`: a token's key, and whether it is dead.
        pub(crate) fn swept_token(row: &$row) -> Result<(TokenHash, bool), StoreError> {
            let mut columns = Columns::new(row);
            Ok((columns.token_hash("a token key")?, columns.take()?))
        }

        /// Reads a row of `sql::PENDING_TIDY_UPS`.
        pub(crate) fn tidy_up(row: &$row) -> Result<TidyUp, StoreError> {
            let mut columns = Columns::new(row);
            let kind: String = columns.take()?;
            let id: String = columns.take()?;
            let owner = SessionOwner::parse(&kind, id).ok_or_else(|| {
                StoreError::Corrupt("a pending tidy-up has an unknown owner".to_owned())
            })?;
            Ok(TidyUp {
                owner,
                before: columns.timestamp()?,
            })
        }
    };
}

pub(crate) use {record_decoders, row_decoders};
