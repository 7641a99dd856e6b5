-- Tessera's PostgreSQL schema: the same tables, rules and indexes as the SQLite schema
-- (migrations/sqlite/0001 to 0005), written for PostgreSQL in one step. A later change
-- to the schema adds a migration to both folders.
--
-- Timestamps are BIGINT milliseconds since the Unix epoch (UTC), ids are TEXT, hashes are
-- BYTEA. Tokens are kept only as the SHA-256 of the token string, so a copy of this
-- database yields no usable token (RELIABILITY P2). The CHECKs keep rows decodable, so a
-- bad write fails loudly rather than leaving a record the store must later report as
-- corrupt.

CREATE TABLE clients (
    id                      TEXT    NOT NULL PRIMARY KEY,
    -- Insertion order, which breaks ties between clients created in the same millisecond
    -- in listings (SQLite uses its rowid).
    seq                     BIGINT  GENERATED ALWAYS AS IDENTITY,
    name                    TEXT    NOT NULL,
    -- ClientSecretHash::to_bytes: 16-byte salt then 32-byte HMAC; NULL for a public client.
    secret_hash             BYTEA   CHECK (secret_hash IS NULL OR octet_length(secret_hash) = 48),
    -- GrantSet::bits.
    grants                  BIGINT  NOT NULL CHECK (grants >= 0),
    disabled                BOOLEAN NOT NULL,
    access_token_ttl        BIGINT  NOT NULL,
    refresh_token_ttl       BIGINT  NOT NULL,
    default_locale          TEXT    NOT NULL,
    default_currency        TEXT    NOT NULL,
    theme_id                TEXT,
    created_at              BIGINT  NOT NULL,
    -- The client's revocation watermark ("logout everywhere"): NULL until first set.
    sessions_revoked_before BIGINT,
    -- How the client sends shopper passwords with the login grant.
    password_encoding       TEXT    NOT NULL DEFAULT 'plain'
        CHECK (password_encoding IN ('plain', 'base64')),
    -- A resource server (RFC 7662) may introspect every client's tokens.
    resource_server         BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE shoppers (
    id                    TEXT   NOT NULL PRIMARY KEY,
    -- UNIQUE lets any number of NULLs through: shoppers without either are allowed. Each
    -- UNIQUE constraint is backed by an index, which the login's lookup by username uses.
    external_reference_id TEXT   UNIQUE,
    username              TEXT   UNIQUE,
    -- Argon2id PHC string.
    password_hash         TEXT,
    locale                TEXT,
    currency              TEXT,
    created_at            BIGINT NOT NULL,
    first_name            TEXT,
    last_name             TEXT,
    email                 TEXT
);

CREATE TABLE sessions (
    id                    TEXT    NOT NULL PRIMARY KEY,
    client_id             TEXT    NOT NULL REFERENCES clients (id),
    -- Not a reference to shoppers: anonymous visitors have a user id but no shopper row.
    user_id               TEXT,
    external_reference_id TEXT,
    authenticated         BOOLEAN NOT NULL,
    locale                TEXT    NOT NULL,
    currency              TEXT    NOT NULL,
    cart_id               TEXT,
    client_ip             TEXT    NOT NULL,
    session_tag           TEXT    NOT NULL,
    created_at            BIGINT  NOT NULL,
    last_accessed         BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    -- Hash of the newest access token: logout is one conditional UPDATE on it (API.md §4).
    newest_access         BYTEA   NOT NULL CHECK (octet_length(newest_access) = 32),
    revoked_at            BIGINT
);

CREATE TABLE tokens (
    hash        BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    kind        TEXT   NOT NULL CHECK (kind IN ('access', 'refresh')),
    session_id  TEXT   NOT NULL REFERENCES sessions (id),
    client_id   TEXT   NOT NULL REFERENCES clients (id),
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    consumed_at BIGINT
);

-- Logout everywhere: the per-shopper watermark, keyed like sessions.user_id (and, like it,
-- not a reference to shoppers). Watermarks only move forward.
CREATE TABLE shopper_watermarks (
    user_id                 TEXT   NOT NULL PRIMARY KEY,
    sessions_revoked_before BIGINT NOT NULL
);

-- Watermarks whose covered sessions the tidy-up has not finished marking. Written in the
-- same transaction as the watermark, removed when the tidy-up is done. Nearly always
-- empty.
CREATE TABLE pending_tidy_ups (
    owner_kind              TEXT   NOT NULL CHECK (owner_kind IN ('shopper', 'client')),
    owner_id                TEXT   NOT NULL,
    sessions_revoked_before BIGINT NOT NULL,
    PRIMARY KEY (owner_kind, owner_id)
);

-- Session tokens (API.md §2 "Session-aware"): minted for one client, bound to a session by
-- the first token request that carries one. Only the SHA-256 of the value is kept.
CREATE TABLE session_tokens (
    hash       BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    client_id  TEXT   NOT NULL REFERENCES clients (id),
    -- Not a reference to sessions: expiry clean-up may delete the session first, and a
    -- session token bound to a session that is gone simply starts a new one.
    session_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Indexes cost bytes for every live session, so there are only those that batch work
-- cannot do without, and partial ones where a live session need not be in them; the
-- reasons for each are in migrations/sqlite/0003_watermarks_and_cleanup.sql and 0004.

-- A shopper's sessions: the tidy-up after a shopper's watermark and session listings.
CREATE INDEX sessions_by_user ON sessions (user_id) WHERE user_id IS NOT NULL;

-- A client's sessions: the tidy-up after a client's watermark.
CREATE INDEX sessions_by_client ON sessions (client_id);

-- Expired sessions, oldest first, for expiry clean-up.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Revoked sessions, for clean-up; only revoked sessions are in it.
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- A session's tokens: deleting a session deletes its tokens first, and the foreign key
-- check of every deleted session would otherwise scan the whole tokens table.
CREATE INDEX tokens_by_session ON tokens (session_id);

-- Expired access tokens, for clean-up. Refresh tokens go with their session.
CREATE INDEX access_tokens_by_expiry ON tokens (expires_at) WHERE kind = 'access';

-- An upgrade moves every session token bound to the anonymous session to the new one.
CREATE INDEX session_tokens_by_session ON session_tokens (session_id)
    WHERE session_id IS NOT NULL;

-- Expiry clean-up deletes expired session tokens in batches.
CREATE INDEX session_tokens_by_expiry ON session_tokens (expires_at);
