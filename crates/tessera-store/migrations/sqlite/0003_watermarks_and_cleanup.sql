-- Logout everywhere (revocation watermarks) and expiry clean-up. Depends only on 0001.
--
-- A watermark ends, with one write, every session of a shopper or of a client created at or
-- before it: every token lookup compares the session's created_at with both watermarks,
-- which the lookup reads in the same query by primary key. Watermarks only move forward.
-- A background tidy-up later marks the covered sessions revoked, so that expiry clean-up
-- can delete them; lookups never depend on it.

-- The per-shopper watermark, keyed like sessions.user_id (and, like it, not a reference to
-- shoppers). One row per shopper that was ever logged out everywhere.
CREATE TABLE shopper_watermarks (
    user_id                 TEXT    NOT NULL PRIMARY KEY,
    sessions_revoked_before INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The per-client watermark: NULL until the client's sessions are first revoked. A column,
-- not a table, because every lookup already reads the client's row.
ALTER TABLE clients ADD COLUMN sessions_revoked_before INTEGER;

-- Watermarks whose covered sessions the tidy-up has not finished marking. Written in the
-- same transaction as the watermark, removed when the tidy-up is done, so a tidy-up cut
-- short by a stop is finished by the next clean-up run. Nearly always empty.
CREATE TABLE pending_tidy_ups (
    owner_kind              TEXT    NOT NULL CHECK (owner_kind IN ('shopper', 'client')),
    owner_id                TEXT    NOT NULL,
    sessions_revoked_before INTEGER NOT NULL,
    PRIMARY KEY (owner_kind, owner_id)
) STRICT, WITHOUT ROWID;

-- Indexes cost bytes for every live session (PERFORMANCE.md), so there are only those that
-- batch work cannot do without, and partial ones where a live session need not be in them.

-- A shopper's sessions: the tidy-up after a shopper's watermark and `tessera session list`.
-- Partial: client-token sessions have no user id and cost nothing here.
CREATE INDEX sessions_by_user ON sessions (user_id) WHERE user_id IS NOT NULL;

-- A client's sessions: the tidy-up after a client's watermark. Without it, that tidy-up
-- would scan every session of every client.
CREATE INDEX sessions_by_client ON sessions (client_id);

-- Expired sessions, oldest first, for expiry clean-up.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Revoked sessions (logout, reuse detection, the tidy-up), for clean-up. Partial: only
-- revoked sessions are in it, and clean-up deletes them, so a live session costs nothing.
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- A session's tokens. Required before anything deletes sessions (see 0001): deleting a
-- session deletes its tokens first, and the foreign key check of every deleted session
-- would otherwise scan the whole tokens table.
CREATE INDEX tokens_by_session ON tokens (session_id);

-- Expired access tokens, for clean-up. Partial: a refresh token expires with its session
-- (absolute expiry) and is deleted with it, consumed ones included, which keeps reuse
-- detection working until then; so only access tokens need finding by expiry.
CREATE INDEX access_tokens_by_expiry ON tokens (expires_at) WHERE kind = 'access';
