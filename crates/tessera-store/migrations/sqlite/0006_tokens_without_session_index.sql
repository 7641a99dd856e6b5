-- Tokens without `tokens_by_session`. Depends on 0001 and 0003.
--
-- The index served only clean-up, which deleted a dead session's tokens through it before
-- the session (the foreign key check of a deleted session would otherwise have scanned
-- the whole table). It cost every token a second entry, and every refresh-token rotation
-- a page in the rotating session's own part of the index: the page that made up most of
-- what a rotation wrote (docs/PERFORMANCE.md).
--
-- Clean-up now deletes dead sessions alone and sweeps the tokens in key order, deleting
-- those that expired or whose session ended or is gone. A token may so outlive its
-- session for a while, so `session_id` can no longer reference `sessions`; SQLite drops a
-- foreign key only by building the table again. Every lookup joins the session, so a
-- token whose session is gone is never found.

CREATE TABLE tokens_rebuilt (
    hash        BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    kind        TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    -- Not a reference to sessions: see above.
    session_id  TEXT    NOT NULL,
    client_id   TEXT    NOT NULL REFERENCES clients (id),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    consumed_at INTEGER
) STRICT, WITHOUT ROWID;

INSERT INTO tokens_rebuilt (hash, kind, session_id, client_id, issued_at, expires_at,
                            revoked_at, consumed_at)
    SELECT hash, kind, session_id, client_id, issued_at, expires_at, revoked_at, consumed_at
    FROM tokens;

-- Takes `tokens_by_session` and `access_tokens_by_expiry` with it.
DROP TABLE tokens;
ALTER TABLE tokens_rebuilt RENAME TO tokens;

-- As in 0003: expired access tokens are found by expiry, so most dead tokens go without
-- waiting for the sweep. Their expiry grows with time, so new entries append.
CREATE INDEX access_tokens_by_expiry ON tokens (expires_at) WHERE kind = 'access';
