-- Session tokens (API.md §2 "Session-aware"): minted for one client, bound to a session by
-- the first token request that carries one. Only the SHA-256 of the value is kept.
CREATE TABLE session_tokens (
    hash        BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    client_id   TEXT    NOT NULL REFERENCES clients (id),
    -- Not a reference to sessions: expiry clean-up may delete the session first, and a
    -- session token bound to a session that is gone simply starts a new one.
    session_id  TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- An upgrade moves every session token bound to the anonymous session to the new one.
CREATE INDEX session_tokens_by_session ON session_tokens (session_id)
    WHERE session_id IS NOT NULL;

-- Expiry clean-up deletes expired session tokens in batches.
CREATE INDEX session_tokens_by_expiry ON session_tokens (expires_at);

-- Shopper details a partner may record with POST /v1/shoppers.
ALTER TABLE shoppers ADD COLUMN first_name TEXT;
ALTER TABLE shoppers ADD COLUMN last_name TEXT;
ALTER TABLE shoppers ADD COLUMN email TEXT;
