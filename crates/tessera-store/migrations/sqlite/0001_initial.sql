-- Tessera's SQLite schema.
--
-- Timestamps are INTEGER milliseconds since the Unix epoch (UTC). Tokens are kept only as
-- the SHA-256 of the token string, so a copy of this file yields no usable token
-- (RELIABILITY P2). STRICT tables refuse values of the wrong type instead of storing them,
-- and the CHECKs keep rows decodable, so a bad write fails loudly rather than leaving a
-- record the store must later report as corrupt.

CREATE TABLE clients (
    id                TEXT    NOT NULL PRIMARY KEY,
    name              TEXT    NOT NULL,
    -- ClientSecretHash::to_bytes: 16-byte salt then 32-byte HMAC; NULL for a public client.
    secret_hash       BLOB    CHECK (secret_hash IS NULL OR length(secret_hash) = 48),
    -- GrantSet::bits.
    grants            INTEGER NOT NULL CHECK (grants >= 0),
    disabled          INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    access_token_ttl  INTEGER NOT NULL,
    refresh_token_ttl INTEGER NOT NULL,
    default_locale    TEXT    NOT NULL,
    default_currency  TEXT    NOT NULL,
    theme_id          TEXT,
    created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE shoppers (
    id                    TEXT    NOT NULL PRIMARY KEY,
    -- UNIQUE lets any number of NULLs through: shoppers without either are allowed.
    external_reference_id TEXT    UNIQUE,
    username              TEXT    UNIQUE,
    -- Argon2id PHC string.
    password_hash         TEXT,
    locale                TEXT,
    currency              TEXT,
    created_at            INTEGER NOT NULL
) STRICT;

-- WITHOUT ROWID: sessions and tokens are only ever reached by primary key, so keeping the
-- row in the key's own b-tree saves a second lookup and the rowid index's space.
CREATE TABLE sessions (
    id                    TEXT    NOT NULL PRIMARY KEY,
    client_id             TEXT    NOT NULL REFERENCES clients (id),
    -- Not a reference to shoppers: anonymous visitors have a user id but no shopper row.
    user_id               TEXT,
    external_reference_id TEXT,
    authenticated         INTEGER NOT NULL CHECK (authenticated IN (0, 1)),
    locale                TEXT    NOT NULL,
    currency              TEXT    NOT NULL,
    cart_id               TEXT,
    client_ip             TEXT    NOT NULL,
    session_tag           TEXT    NOT NULL,
    created_at            INTEGER NOT NULL,
    last_accessed         INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    -- Hash of the newest access token: logout is one conditional UPDATE on it (API.md §4).
    newest_access         BLOB    NOT NULL CHECK (length(newest_access) = 32),
    revoked_at            INTEGER
) STRICT, WITHOUT ROWID;

-- No index on session_id yet: nothing looks tokens up by session, and each index costs
-- bytes per live session (PERFORMANCE.md). Whatever first deletes sessions (expiry
-- clean-up) must add one, or every deleted session scans this table for the foreign key.
CREATE TABLE tokens (
    hash        BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    kind        TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    session_id  TEXT    NOT NULL REFERENCES sessions (id),
    client_id   TEXT    NOT NULL REFERENCES clients (id),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    consumed_at INTEGER
) STRICT, WITHOUT ROWID;
