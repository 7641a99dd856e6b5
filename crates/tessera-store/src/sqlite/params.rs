//! Statement parameters for the writer thread: owned values, moved with the write to the
//! thread that runs it (`writer.rs`), and the helper that runs one statement there.

use rusqlite::Connection;
use rusqlite::types::Value;
use tessera_core::Timestamp;
use tessera_core::client::{ClientRecord, ClientSecretHash};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::shopper::ShopperRecord;
use tessera_core::token::{TokenHash, TokenKind};

/// Runs one statement, prepared once per connection; the rows it changed.
pub(super) fn run(
    connection: &Connection,
    statement: &str,
    params: &[Value],
) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(statement)?
        .execute(rusqlite::params_from_iter(params))
}

pub(super) fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

pub(super) fn optional_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

/// An id as `sessions`, `tokens` and `session_tokens` keep it: one Tessera generated (32
/// lower-case hex characters) as its 16 bytes, any other as the text it is. The same rule
/// as `sql::stored_id!` and the conversion in `0007_compact_ids.sql`.
pub(super) fn id(value: &str) -> Value {
    let mut bytes = [0u8; 16];
    let generated = value.len() == 32
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && hex::decode_to_slice(value, &mut bytes).is_ok();
    if generated {
        Value::Blob(bytes.to_vec())
    } else {
        text(value)
    }
}

pub(super) fn optional_id(value: Option<&str>) -> Value {
    value.map_or(Value::Null, id)
}

/// A token's kind as `tokens.kind` keeps it; `sql::token_columns!` reads it back.
pub(super) fn kind(kind: TokenKind) -> Value {
    Value::Integer(match kind {
        TokenKind::Access => 0,
        TokenKind::Refresh => 1,
    })
}

pub(super) fn hash(hash: &TokenHash) -> Value {
    Value::Blob(hash.0.to_vec())
}

pub(super) fn millis(at: Timestamp) -> Value {
    Value::Integer(at.millis())
}

pub(super) fn optional_millis(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, millis)
}

pub(super) fn integer(value: impl Into<i64>) -> Value {
    Value::Integer(value.into())
}

/// `INSERT_CLIENT` and `IMPORT_CLIENT`.
pub(super) fn client(client: &ClientRecord) -> Vec<Value> {
    vec![
        text(&client.id),
        text(&client.name),
        client.secret_hash.as_ref().map_or(Value::Null, |secret| {
            Value::Blob(ClientSecretHash::to_bytes(secret))
        }),
        integer(client.grants.bits()),
        integer(client.disabled),
        integer(client.access_token_ttl),
        integer(client.refresh_token_ttl),
        text(&client.default_locale),
        text(&client.default_currency),
        optional_text(client.theme_id.as_deref()),
        millis(client.created_at),
        optional_millis(client.sessions_revoked_before),
        text(client.password_encoding.name()),
        integer(client.resource_server),
    ]
}

/// `INSERT_SHOPPER` and `IMPORT_SHOPPER`.
pub(super) fn shopper(shopper: &ShopperRecord) -> Vec<Value> {
    vec![
        text(&shopper.id),
        optional_text(shopper.external_reference_id.as_deref()),
        optional_text(shopper.username.as_deref()),
        optional_text(shopper.password_hash.as_deref()),
        optional_text(shopper.locale.as_deref()),
        optional_text(shopper.currency.as_deref()),
        millis(shopper.created_at),
        optional_text(shopper.first_name.as_deref()),
        optional_text(shopper.last_name.as_deref()),
        optional_text(shopper.email.as_deref()),
    ]
}

/// `INSERT_SESSION`, and one row of `IMPORT_SESSIONS_INTO`.
pub(super) fn session(session: &SessionRecord) -> Vec<Value> {
    vec![
        id(&session.id),
        id(&session.client_id),
        optional_id(session.user_id.as_deref()),
        optional_text(session.external_reference_id.as_deref()),
        integer(session.authenticated),
        text(&session.locale),
        text(&session.currency),
        optional_text(session.cart_id.as_deref()),
        text(&session.client_ip),
        id(&session.session_tag),
        millis(session.created_at),
        millis(session.last_accessed),
        millis(session.expires_at),
        hash(&session.newest_access),
        optional_millis(session.revoked_at),
    ]
}

/// `INSERT_TOKEN`, and one row of `IMPORT_TOKENS_INTO`. The client is the session's, so it
/// is not kept again.
pub(super) fn token(token: &TokenRecord) -> Vec<Value> {
    vec![
        hash(&token.hash),
        kind(token.kind),
        id(&token.session_id),
        millis(token.issued_at),
        millis(token.expires_at),
        optional_millis(token.revoked_at),
        optional_millis(token.consumed_at),
    ]
}

/// Inserts a session's token rows.
pub(super) fn insert_tokens(
    connection: &Connection,
    tokens: &[Vec<Value>],
) -> rusqlite::Result<()> {
    for token in tokens {
        run(connection, super::sql::INSERT_TOKEN, token)?;
    }
    Ok(())
}
