//! Every SQL statement the SQLite store runs, beside the column lists its row decoders
//! (`rows.rs`) read in order. Parameters are numbered so each statement reads on its own.

/// Client columns, in the order `rows::client` reads them.
macro_rules! client_columns {
    () => {
        "c.id, c.name, c.secret_hash, c.grants, c.disabled, c.access_token_ttl, \
         c.refresh_token_ttl, c.default_locale, c.default_currency, c.theme_id, c.created_at"
    };
}

/// Shopper columns, in the order `rows::shopper` reads them.
macro_rules! shopper_columns {
    () => {
        "p.id, p.external_reference_id, p.username, p.password_hash, p.locale, p.currency, \
         p.created_at"
    };
}

/// Session columns, in the order `rows::session` reads them.
macro_rules! session_columns {
    () => {
        "s.id, s.client_id, s.user_id, s.external_reference_id, s.authenticated, s.locale, \
         s.currency, s.cart_id, s.client_ip, s.session_tag, s.created_at, s.last_accessed, \
         s.expires_at, s.newest_access, s.revoked_at"
    };
}

/// Token columns, in the order `rows::token` reads them.
macro_rules! token_columns {
    () => {
        "t.hash, t.kind, t.session_id, t.client_id, t.issued_at, t.expires_at, t.revoked_at, \
         t.consumed_at"
    };
}

pub(crate) const INSERT_CLIENT: &str = "INSERT INTO clients (id, name, secret_hash, grants, \
     disabled, access_token_ttl, refresh_token_ttl, default_locale, default_currency, theme_id, \
     created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

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
     username, password_hash, locale, currency, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

pub(crate) const SHOPPER_BY_ID: &str = concat!(
    "SELECT ",
    shopper_columns!(),
    " FROM shoppers p WHERE p.id = ?1"
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

pub(crate) const INSERT_TOKEN: &str = "INSERT INTO tokens (hash, kind, session_id, client_id, \
     issued_at, expires_at, revoked_at, consumed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// One read by primary keys all the way: the token's hash, its session's id, the session's
/// client's id.
pub(crate) const LOOKUP_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(),
    ", ",
    session_columns!(),
    ", ",
    client_columns!(),
    " FROM tokens t JOIN sessions s ON s.id = t.session_id JOIN clients c ON c.id = s.client_id \
     WHERE t.hash = ?1"
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

/// Only forward: a late, out-of-order touch never moves `last_accessed` back.
pub(crate) const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_accessed = ?1 WHERE id = ?2 AND last_accessed < ?1";

/// Takes the write lock at once, so a transaction never fails half-way on a lock it could
/// not upgrade to; waits up to `busy_timeout` for it.
pub(crate) const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

pub(crate) const QUICK_CHECK: &str = "PRAGMA quick_check";

pub(crate) const JOURNAL_MODE: &str = "PRAGMA journal_mode";

pub(crate) const SYNCHRONOUS: &str = "PRAGMA synchronous";

pub(crate) const FOREIGN_KEYS: &str = "PRAGMA foreign_keys";

pub(crate) const PING: &str = "SELECT 1";
