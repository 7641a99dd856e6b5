//! Every SQL statement the SQLite store runs, beside the column lists its row decoders
//! (`rows.rs`) read in order. Parameters are numbered so each statement reads on its own.
//!
//! The tables of per-session rows (`sessions`, `tokens`, `session_tokens`) keep every id
//! Tessera generates (32 lower-case hex characters) as its 16 bytes, and any other id as
//! the text it is (`0007_compact_ids.sql`, `params::id`). Their id columns are read back
//! through `shown_id!`, and a text id is compared with them through `stored_id!`.

/// An id column of `sessions`, `tokens` or `session_tokens`, as the text id it stands for.
macro_rules! shown_id {
    ($column:literal) => {
        concat!(
            "iif(typeof(",
            $column,
            ") = 'blob', lower(hex(",
            $column,
            ")), ",
            $column,
            ")"
        )
    };
}

/// A text id (a parameter, or a column of a table that keeps ids as text) as `sessions`,
/// `tokens` and `session_tokens` keep it: the rule of `params::id`, and of the conversion
/// in `0007_compact_ids.sql`. `unhex` is NULL for anything but hex digits, and `lower`
/// tells lower-case ones.
macro_rules! stored_id {
    ($text:literal) => {
        concat!(
            "coalesce(CASE WHEN length(",
            $text,
            ") = 32 AND ",
            $text,
            " = lower(",
            $text,
            ") THEN unhex(",
            $text,
            ") END, ",
            $text,
            ")"
        )
    };
}

/// Client columns, in the order `rows::client` reads them.
macro_rules! client_columns {
    () => {
        "c.id, c.name, c.secret_hash, c.grants, c.disabled, c.access_token_ttl, \
         c.refresh_token_ttl, c.default_locale, c.default_currency, c.theme_id, c.created_at, \
         c.sessions_revoked_before, c.password_encoding, c.resource_server"
    };
}

/// Shopper columns, in the order `rows::shopper` reads them.
macro_rules! shopper_columns {
    () => {
        "p.id, p.external_reference_id, p.username, p.password_hash, p.locale, p.currency, \
         p.created_at, p.first_name, p.last_name, p.email"
    };
}

/// Session columns, in the order `rows::session` reads them.
macro_rules! session_columns {
    () => {
        concat!(
            shown_id!("s.id"),
            ", ",
            shown_id!("s.client_id"),
            ", ",
            shown_id!("s.user_id"),
            ", s.external_reference_id, s.authenticated, s.locale, s.currency, s.cart_id, \
             s.client_ip, ",
            shown_id!("s.session_tag"),
            ", s.created_at, s.last_accessed, s.expires_at, s.newest_access, s.revoked_at"
        )
    };
}

/// Token columns, in the order `rows::token` reads them, from `tokens t` joined with its
/// session `s`: a token's client is its session's (`0007_compact_ids.sql`).
macro_rules! token_columns {
    () => {
        concat!(
            "t.hash, CASE t.kind WHEN 0 THEN 'access' WHEN 1 THEN 'refresh' END, ",
            shown_id!("t.session_id"),
            ", ",
            shown_id!("s.client_id"),
            ", t.issued_at, t.expires_at, t.revoked_at, t.consumed_at"
        )
    };
}

/// The join from a session `s` to its client `c`.
macro_rules! join_client {
    () => {
        concat!(" JOIN clients c ON c.id = ", shown_id!("s.client_id"))
    };
}

/// The join from a session `s` to its shopper's watermark `w`, NULL when never set.
macro_rules! join_shopper_watermark {
    () => {
        concat!(
            " LEFT JOIN shopper_watermarks w ON w.user_id = ",
            shown_id!("s.user_id")
        )
    };
}

pub(crate) const INSERT_CLIENT: &str = "INSERT INTO clients (id, name, secret_hash, grants, \
     disabled, access_token_ttl, refresh_token_ttl, default_locale, default_currency, theme_id, \
     created_at, sessions_revoked_before, password_encoding, resource_server) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

pub(crate) const CLIENT_BY_ID: &str = concat!(
    "SELECT ",
    client_columns!(),
    " FROM clients c WHERE c.id = ?1"
);

// rowid breaks ties between clients created in the same millisecond by insertion order.
pub(crate) const ALL_CLIENTS: &str = concat!(
    "SELECT ",
    client_columns!(),
    " FROM clients c ORDER BY c.created_at, c.rowid"
);

pub(crate) const SET_CLIENT_SECRET: &str = "UPDATE clients SET secret_hash = ?1 WHERE id = ?2";

pub(crate) const SET_CLIENT_DISABLED: &str = "UPDATE clients SET disabled = ?1 WHERE id = ?2";

pub(crate) const INSERT_SHOPPER: &str = "INSERT INTO shoppers (id, external_reference_id, \
     username, password_hash, locale, currency, created_at, first_name, last_name, email) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

pub(crate) const SHOPPER_BY_ID: &str = concat!(
    "SELECT ",
    shopper_columns!(),
    " FROM shoppers p WHERE p.id = ?1"
);

/// Usernames are stored normalised (`tessera_core::shopper::normalize_username`), so this
/// is an exact match on the UNIQUE column's index.
pub(crate) const SHOPPER_BY_USERNAME: &str = concat!(
    "SELECT ",
    shopper_columns!(),
    " FROM shoppers p WHERE p.username = ?1"
);

pub(crate) const SHOPPER_BY_EXTERNAL_REFERENCE: &str = concat!(
    "SELECT ",
    shopper_columns!(),
    " FROM shoppers p WHERE p.external_reference_id = ?1"
);

pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions (id, client_id, user_id, \
     external_reference_id, authenticated, locale, currency, cart_id, client_ip, session_tag, \
     created_at, last_accessed, expires_at, newest_access, revoked_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

pub(crate) const INSERT_TOKEN: &str = "INSERT INTO tokens (hash, kind, session_id, issued_at, \
     expires_at, revoked_at, consumed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// One read by primary keys all the way: the token's hash, its session's id, the session's
/// client's id, and (a LEFT JOIN, NULL when never set) the shopper's revocation watermark
/// by the session's user id.
pub(crate) const LOOKUP_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(),
    ", ",
    session_columns!(),
    ", ",
    client_columns!(),
    ", w.sessions_revoked_before",
    " FROM tokens t JOIN sessions s ON s.id = t.session_id",
    join_client!(),
    join_shopper_watermark!(),
    " WHERE t.hash = ?1"
);

/// Logout (API.md §4) as one conditional write: the check that `?3` is still the newest
/// access token and the revocation cannot be separated by a concurrent refresh.
pub(crate) const END_SESSION_IF_NEWEST: &str = "UPDATE sessions SET revoked_at = ?1 \
     WHERE id = ?2 AND newest_access = ?3 AND revoked_at IS NULL";

/// The first revocation wins and keeps its time; a token of an ended session is already
/// dead, so revoking it again reports nothing done (two racing DELETEs of a session's
/// newest token must not both succeed).
pub(crate) const REVOKE_TOKEN: &str = "UPDATE tokens SET revoked_at = ?1 \
     WHERE hash = ?2 AND revoked_at IS NULL \
     AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = tokens.session_id AND s.revoked_at IS NULL)";

/// Ends a whole session; the first revocation wins and keeps its time.
pub(crate) const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL";

/// Refresh-token rotation, step one: consume the refresh token `?2` of session `?3` only if
/// it is still unconsumed and unrevoked and its session is alive. Whether it matched a row
/// decides the whole rotation, so two racing refreshes of one token cannot both succeed.
pub(crate) const CONSUME_REFRESH: &str = "UPDATE tokens SET consumed_at = ?1 \
     WHERE hash = ?2 AND session_id = ?3 AND kind = 1 \
     AND consumed_at IS NULL AND revoked_at IS NULL \
     AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = tokens.session_id AND s.revoked_at IS NULL)";

/// Refresh-token rotation, last step: the new access token becomes the one whose deletion
/// logs out (API.md §4).
pub(crate) const SET_NEWEST_ACCESS: &str = "UPDATE sessions SET newest_access = ?1 WHERE id = ?2";

/// Only forward: a late, out-of-order touch never moves `last_accessed` back.
pub(crate) const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_accessed = ?1 WHERE id = ?2 AND last_accessed < ?1";

/// Takes the write lock at once, so a transaction never fails half-way on a lock it could
/// not upgrade to; waits up to `busy_timeout` for it.
pub(crate) const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

pub(crate) const COMMIT: &str = "COMMIT";

pub(crate) const ROLLBACK: &str = "ROLLBACK";

/// When a write of a batch failed, the batch runs again with each write inside this
/// savepoint, so that the failing write is undone without the others (`writer.rs`).
pub(crate) const SAVEPOINT_WRITE: &str = "SAVEPOINT write";

pub(crate) const RELEASE_WRITE: &str = "RELEASE write";

pub(crate) const ROLLBACK_TO_WRITE: &str = "ROLLBACK TO write";

pub(crate) const QUICK_CHECK: &str = "PRAGMA quick_check";
/// Takes the write lock and lets it go, writing nothing: fails on a connection SQLite
/// opened read-only.
pub(crate) const PROBE_WRITE_LOCK: &str = "BEGIN IMMEDIATE; ROLLBACK";

pub(crate) const JOURNAL_MODE: &str = "PRAGMA journal_mode";

pub(crate) const SYNCHRONOUS: &str = "PRAGMA synchronous";

pub(crate) const FOREIGN_KEYS: &str = "PRAGMA foreign_keys";

pub(crate) const PING: &str = "SELECT 1";

/// Copies what it can of the WAL into the database file without waiting for any lock
/// (`checkpoint.rs`); answers (busy, frames in the WAL, frames copied).
pub(crate) const WAL_CHECKPOINT_PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";

pub(crate) const INSERT_SESSION_TOKEN: &str = "INSERT INTO session_tokens (hash, client_id, \
     session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// A session token with its bound session's newest access token, through which the store
/// then reads the session as any lookup does.
pub(crate) const SESSION_TOKEN_BY_HASH: &str = concat!(
    "SELECT st.hash, ",
    shown_id!("st.client_id"),
    ", ",
    shown_id!("st.session_id"),
    ", st.created_at, st.expires_at, s.newest_access FROM session_tokens st \
     LEFT JOIN sessions s ON s.id = st.session_id WHERE st.hash = ?1"
);

/// Binds a session token to a new session only if its binding is still what the caller saw
/// (`?3` NULL: unbound).
pub(crate) const BIND_SESSION_TOKEN: &str = "UPDATE session_tokens SET session_id = ?1 \
     WHERE hash = ?2 AND session_id IS ?3";

/// Joining a session: the new access token becomes the newest, if the session still lives.
pub(crate) const SET_NEWEST_ACCESS_IF_LIVE: &str = "UPDATE sessions SET newest_access = ?1 \
     WHERE id = ?2 AND revoked_at IS NULL";

/// An upgrade ends the anonymous session, and with it the limited token and its refresh
/// token, only if it is still live and still anonymous.
pub(crate) const END_ANONYMOUS_SESSION: &str = "UPDATE sessions SET revoked_at = ?1 \
     WHERE id = ?2 AND revoked_at IS NULL AND authenticated = 0";

pub(crate) const REBIND_SESSION_TOKENS: &str =
    "UPDATE session_tokens SET session_id = ?1 WHERE session_id = ?2";

/// `POST /v1/shoppers/me`: a NULL parameter leaves that preference as it is.
pub(crate) const SET_SESSION_PREFERENCES: &str = "UPDATE sessions \
     SET locale = coalesce(?1, locale), currency = coalesce(?2, currency) \
     WHERE id = ?3 AND revoked_at IS NULL";

// Logout everywhere and expiry clean-up (`SessionAdminStore`, `session_admin.rs`).

/// A shopper's watermark, which only ever moves forward.
pub(crate) const SET_SHOPPER_WATERMARK: &str = "INSERT INTO shopper_watermarks \
     (user_id, sessions_revoked_before) VALUES (?1, ?2) \
     ON CONFLICT (user_id) DO UPDATE SET sessions_revoked_before = \
     max(sessions_revoked_before, excluded.sessions_revoked_before)";

/// A client's watermark, which only ever moves forward; matches no row for an unknown client.
pub(crate) const SET_CLIENT_WATERMARK: &str = "UPDATE clients SET sessions_revoked_before = \
     max(coalesce(sessions_revoked_before, ?1), ?1) WHERE id = ?2";

/// Records (or moves forward) the tidy-up a new watermark needs.
pub(crate) const ADD_PENDING_TIDY_UP: &str = "INSERT INTO pending_tidy_ups \
     (owner_kind, owner_id, sessions_revoked_before) VALUES (?1, ?2, ?3) \
     ON CONFLICT (owner_kind, owner_id) DO UPDATE SET sessions_revoked_before = \
     max(sessions_revoked_before, excluded.sessions_revoked_before)";

pub(crate) const PENDING_TIDY_UPS: &str = "SELECT owner_kind, owner_id, sessions_revoked_before \
     FROM pending_tidy_ups ORDER BY sessions_revoked_before, owner_kind, owner_id LIMIT ?1";

/// One tidy-up batch for a shopper's watermark, through `sessions_by_user`.
pub(crate) const TIDY_UP_SHOPPER_SESSIONS: &str = "UPDATE sessions SET revoked_at = ?1 \
     WHERE id IN (SELECT id FROM sessions WHERE user_id = ?2 AND created_at <= ?3 \
     AND revoked_at IS NULL LIMIT ?4)";

/// A finished tidy-up, unless a newer watermark replaced it meanwhile.
pub(crate) const FINISH_TIDY_UP: &str = "DELETE FROM pending_tidy_ups \
     WHERE owner_kind = ?1 AND owner_id = ?2 AND sessions_revoked_before = ?3";

/// One session with its client and its shopper's watermark, by primary keys.
pub(crate) const SESSION_BY_ID: &str = concat!(
    "SELECT ",
    session_columns!(),
    ", ",
    client_columns!(),
    ", w.sessions_revoked_before",
    " FROM sessions s",
    join_client!(),
    join_shopper_watermark!(),
    " WHERE s.id = ",
    stored_id!("?1")
);

/// A shopper's sessions that may be live, through `sessions_by_user`.
pub(crate) const SHOPPER_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    ", ",
    client_columns!(),
    ", w.sessions_revoked_before",
    " FROM sessions s",
    join_client!(),
    join_shopper_watermark!(),
    " WHERE s.user_id = ",
    stored_id!("?1"),
    " AND s.revoked_at IS NULL AND s.expires_at > ?2 \
     AND (w.sessions_revoked_before IS NULL OR s.created_at > w.sessions_revoked_before) \
     ORDER BY s.created_at, s.id LIMIT ?3"
);

pub(crate) const SET_SESSION_CART: &str =
    "UPDATE sessions SET cart_id = ?1 WHERE id = ?2 AND revoked_at IS NULL";

/// One clean-up batch of revoked sessions, through the partial index `sessions_revoked`;
/// their tokens are left to the sweep (`0006_tokens_without_session_index`).
pub(crate) const DELETE_REVOKED_SESSIONS: &str = "DELETE FROM sessions WHERE id IN \
     (SELECT id FROM sessions WHERE revoked_at IS NOT NULL LIMIT ?1)";

/// One batch of the session sweep: up to `?3` sessions after id `?1`, in key order, each
/// with whether it is dead for good at `?2`: expired, revoked, or created at or before its
/// client's or its shopper's watermark (watermarks only move forward). A row read dead
/// here is dead whenever it is deleted.
pub(crate) const SWEEP_SESSIONS: &str = concat!(
    "SELECT ",
    shown_id!("s.id"),
    ", s.expires_at <= ?2 OR s.revoked_at IS NOT NULL \
     OR s.created_at <= coalesce(c.sessions_revoked_before, -1) \
     OR s.created_at <= coalesce(w.sessions_revoked_before, -1) \
     FROM sessions s LEFT JOIN clients c ON c.id = ",
    shown_id!("s.client_id"),
    join_shopper_watermark!(),
    " WHERE s.id > ",
    stored_id!("?1"),
    " ORDER BY s.id LIMIT ?3"
);

/// One session, by id.
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = ?1";

/// One batch of the token sweep: up to `?3` tokens after key `?1`, in key order, each
/// with whether it is dead for good at `?2`: expired, or its session revoked or gone (a
/// session's expiry is never before its tokens'). Deadness never ends, so a row read here
/// dead is dead whenever it is deleted.
pub(crate) const SWEEP_TOKENS: &str = "SELECT t.hash, \
     t.expires_at <= ?2 OR s.id IS NULL OR s.revoked_at IS NOT NULL \
     FROM tokens t LEFT JOIN sessions s ON s.id = t.session_id \
     WHERE t.hash > ?1 ORDER BY t.hash LIMIT ?3";

/// One token, by key.
pub(crate) const DELETE_TOKEN: &str = "DELETE FROM tokens WHERE hash = ?1";

/// One clean-up batch of expired session tokens, through the expiry index.
pub(crate) const DELETE_EXPIRED_SESSION_TOKENS: &str = "DELETE FROM session_tokens \
     WHERE hash IN (SELECT hash FROM session_tokens WHERE expires_at <= ?1 LIMIT ?2)";

// Moving a store's contents (`MigrationStore`, `migration.rs`). Each export reads rows in
// primary-key order after a key (keyset pagination); each import skips a row whose key is
// taken, so a repeated run changes nothing. The live-row conditions match
// `tessera_core::migration::MigrationKind`.

pub(crate) const EXPORT_CLIENTS: &str = concat!(
    "SELECT ",
    client_columns!(),
    " FROM clients c WHERE c.id > ?1 ORDER BY c.id LIMIT ?2"
);

pub(crate) const EXPORT_SHOPPERS: &str = concat!(
    "SELECT ",
    shopper_columns!(),
    " FROM shoppers p WHERE p.id > ?1 ORDER BY p.id LIMIT ?2"
);

pub(crate) const EXPORT_SHOPPER_WATERMARKS: &str = "SELECT user_id, sessions_revoked_before \
     FROM shopper_watermarks WHERE user_id > ?1 ORDER BY user_id LIMIT ?2";

pub(crate) const EXPORT_PENDING_TIDY_UPS: &str = "SELECT owner_kind, owner_id, \
     sessions_revoked_before FROM pending_tidy_ups WHERE (owner_kind, owner_id) > (?1, ?2) \
     ORDER BY owner_kind, owner_id LIMIT ?3";

pub(crate) const EXPORT_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions s WHERE s.id > ",
    stored_id!("?1"),
    " AND s.revoked_at IS NULL AND s.expires_at > ?2 ORDER BY s.id LIMIT ?3"
);

pub(crate) const EXPORT_TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash > ?1 \
     AND t.expires_at > ?2 AND s.revoked_at IS NULL AND s.expires_at > ?2 \
     ORDER BY t.hash LIMIT ?3"
);

/// The last column stands in for the bound session's newest access hash that
/// `rows::session_token` also reads.
pub(crate) const EXPORT_SESSION_TOKENS: &str = concat!(
    "SELECT st.hash, ",
    shown_id!("st.client_id"),
    ", ",
    shown_id!("st.session_id"),
    ", st.created_at, st.expires_at, NULL FROM session_tokens st WHERE st.hash > ?1 \
     AND st.expires_at > ?2 ORDER BY st.hash LIMIT ?3"
);

pub(crate) const COUNT_CLIENTS: &str = "SELECT count(*) FROM clients";

pub(crate) const COUNT_SHOPPERS: &str = "SELECT count(*) FROM shoppers";

pub(crate) const COUNT_SHOPPER_WATERMARKS: &str = "SELECT count(*) FROM shopper_watermarks";

pub(crate) const COUNT_PENDING_TIDY_UPS: &str = "SELECT count(*) FROM pending_tidy_ups";

pub(crate) const COUNT_LIVE_SESSIONS: &str =
    "SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?1";

pub(crate) const COUNT_LIVE_TOKENS: &str = "SELECT count(*) FROM tokens t \
     JOIN sessions s ON s.id = t.session_id WHERE t.expires_at > ?1 \
     AND s.revoked_at IS NULL AND s.expires_at > ?1";

pub(crate) const COUNT_LIVE_SESSION_TOKENS: &str =
    "SELECT count(*) FROM session_tokens WHERE expires_at > ?1";

pub(crate) const IMPORT_CLIENT: &str = "INSERT INTO clients (id, name, secret_hash, grants, \
     disabled, access_token_ttl, refresh_token_ttl, default_locale, default_currency, theme_id, \
     created_at, sessions_revoked_before, password_encoding, resource_server) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT DO NOTHING";

pub(crate) const IMPORT_SHOPPER: &str = "INSERT INTO shoppers (id, external_reference_id, \
     username, password_hash, locale, currency, created_at, first_name, last_name, email) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";

pub(crate) const IMPORT_SHOPPER_WATERMARK: &str = "INSERT INTO shopper_watermarks \
     (user_id, sessions_revoked_before) VALUES (?1, ?2) ON CONFLICT DO NOTHING";

pub(crate) const IMPORT_PENDING_TIDY_UP: &str = "INSERT INTO pending_tidy_ups \
     (owner_kind, owner_id, sessions_revoked_before) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

/// The head of a multi-row session import; `bulk_import` adds the rows' `VALUES`.
pub(crate) const IMPORT_SESSIONS_INTO: &str = "INSERT INTO sessions (id, client_id, user_id, \
     external_reference_id, authenticated, locale, currency, cart_id, client_ip, session_tag, \
     created_at, last_accessed, expires_at, newest_access, revoked_at) ";

/// The head of a multi-row token import; `bulk_import` adds the rows' `VALUES`.
pub(crate) const IMPORT_TOKENS_INTO: &str = "INSERT INTO tokens (hash, kind, session_id, \
     issued_at, expires_at, revoked_at, consumed_at) ";

/// The tail of a multi-row import: rows already there are left as they are.
pub(crate) const IMPORT_ON_CONFLICT: &str = " ON CONFLICT DO NOTHING";

pub(crate) const IMPORT_SESSION_TOKEN: &str = "INSERT INTO session_tokens (hash, client_id, \
     session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

pub(crate) const CLIENT_EXISTS: &str = "SELECT count(*) FROM clients WHERE id = ?1";

pub(crate) const SHOPPER_EXISTS: &str = "SELECT count(*) FROM shoppers WHERE id = ?1";

pub(crate) const SHOPPER_WATERMARK_EXISTS: &str =
    "SELECT count(*) FROM shopper_watermarks WHERE user_id = ?1";

pub(crate) const PENDING_TIDY_UP_EXISTS: &str =
    "SELECT count(*) FROM pending_tidy_ups WHERE owner_kind = ?1 AND owner_id = ?2";

pub(crate) const SESSION_EXISTS: &str = concat!(
    "SELECT count(*) FROM sessions WHERE id = ",
    stored_id!("?1")
);

pub(crate) const TOKEN_EXISTS: &str = "SELECT count(*) FROM tokens WHERE hash = ?1";

pub(crate) const SESSION_TOKEN_EXISTS: &str = "SELECT count(*) FROM session_tokens WHERE hash = ?1";

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use rusqlite::types::Value;

    use super::super::params;

    /// `params::id` (the writes) and `stored_id!` (the reads' parameters and joins) keep an
    /// id the same way, and `shown_id!` gives back the id as it was.
    #[test]
    fn ids_are_stored_alike_by_writes_and_reads_and_shown_as_they_were() -> rusqlite::Result<()> {
        let connection = Connection::open_in_memory()?;
        let generated = tessera_core::id::new_session_id()
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.to_string().into()))?;
        for id in [
            generated.as_str(),
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcde ",
            "storefront-eu",
            "0123456789abcdef0123456789abcdé",
            "",
        ] {
            let written = params::id(id);
            let stored: Value =
                connection
                    .query_row(concat!("SELECT ", stored_id!("?1")), [id], |row| row.get(0))?;
            assert_eq!(stored, written, "{id:?}");
            let shown: String =
                connection.query_row(concat!("SELECT ", shown_id!("?1")), [&written], |row| {
                    row.get(0)
                })?;
            assert_eq!(shown, id);
        }
        assert!(matches!(params::id(&generated), Value::Blob(bytes) if bytes.len() == 16));
        Ok(())
    }
}
