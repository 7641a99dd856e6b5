-- Compact per-session rows. Depends on 0001 to 0006.
--
-- Sessions, their tokens and session tokens make up nearly all of a store, so their rows
-- are built again smaller (docs/PERFORMANCE.md, bytes per live session):
--
-- - Every id Tessera generates (session ids, user ids, API keys, session tags: 32
--   lower-case hex characters) is kept as its 16 bytes, in the rows and in every index
--   entry. Any other id (one a client was created with, say) stays the text it is. Reads
--   turn the bytes back into the same text, so nothing outside the store sees the change.
--   The same rule is `params::id` and `sql::stored_id!` in the store's code.
-- - A token no longer repeats its client: it is always its session's client (a grant
--   mints tokens for the session it opens or joins for the asking client, and a refresh
--   is refused unless the asking client is the session's).
-- - A token's kind is 0 (access) or 1 (refresh) instead of a word.
--
-- `client_id` can no longer reference `clients`, whose ids stay text: clients are never
-- deleted, so no session or session token is left without its client.

CREATE TABLE sessions_compact (
    id                    ANY     NOT NULL PRIMARY KEY
                          CHECK (typeof(id) = 'text' OR length(id) = 16),
    client_id             ANY     NOT NULL
                          CHECK (typeof(client_id) = 'text' OR length(client_id) = 16),
    -- Not a reference to shoppers: anonymous visitors have a user id but no shopper row.
    user_id               ANY
                          CHECK (user_id IS NULL OR typeof(user_id) = 'text'
                                 OR length(user_id) = 16),
    external_reference_id TEXT,
    authenticated         INTEGER NOT NULL CHECK (authenticated IN (0, 1)),
    locale                TEXT    NOT NULL,
    currency              TEXT    NOT NULL,
    cart_id               TEXT,
    client_ip             TEXT    NOT NULL,
    session_tag           ANY     NOT NULL
                          CHECK (typeof(session_tag) = 'text' OR length(session_tag) = 16),
    created_at            INTEGER NOT NULL,
    last_accessed         INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    -- Hash of the newest access token: logout is one conditional UPDATE on it (API.md §4).
    newest_access         BLOB    NOT NULL CHECK (length(newest_access) = 32),
    revoked_at            INTEGER
) STRICT, WITHOUT ROWID;

-- Each id goes through the same expression: `unhex` is NULL for anything but hex
-- digits, and `lower` tells lower-case ones.
INSERT INTO sessions_compact (id, client_id, user_id, external_reference_id, authenticated,
                              locale, currency, cart_id, client_ip, session_tag, created_at,
                              last_accessed, expires_at, newest_access, revoked_at)
    SELECT coalesce(CASE WHEN length(id) = 32 AND id = lower(id) THEN unhex(id) END, id),
           coalesce(CASE WHEN length(client_id) = 32 AND client_id = lower(client_id)
                         THEN unhex(client_id) END, client_id),
           coalesce(CASE WHEN length(user_id) = 32 AND user_id = lower(user_id)
                         THEN unhex(user_id) END, user_id),
           external_reference_id, authenticated, locale, currency, cart_id, client_ip,
           coalesce(CASE WHEN length(session_tag) = 32 AND session_tag = lower(session_tag)
                         THEN unhex(session_tag) END, session_tag),
           created_at, last_accessed, expires_at, newest_access, revoked_at
    FROM sessions;

-- Takes the sessions' indexes with it.
DROP TABLE sessions;
ALTER TABLE sessions_compact RENAME TO sessions;

-- As in 0003, but for the indexes by client and by expiry, which 0008 gives up.
CREATE INDEX sessions_by_user ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE tokens_compact (
    hash        BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    -- 0: access, 1: refresh.
    kind        INTEGER NOT NULL CHECK (kind IN (0, 1)),
    -- Not a reference to sessions (0006).
    session_id  ANY     NOT NULL
                CHECK (typeof(session_id) = 'text' OR length(session_id) = 16),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    consumed_at INTEGER
) STRICT, WITHOUT ROWID;

-- A token whose session is gone is never found (0006), and one of another client than
-- its session's cannot have been issued: neither is kept.
INSERT INTO tokens_compact (hash, kind, session_id, issued_at, expires_at, revoked_at,
                            consumed_at)
    SELECT t.hash, iif(t.kind = 'access', 0, 1), s.id, t.issued_at, t.expires_at,
           t.revoked_at, t.consumed_at
    FROM tokens t JOIN sessions s
        ON s.id = coalesce(CASE WHEN length(t.session_id) = 32
                                     AND t.session_id = lower(t.session_id)
                                THEN unhex(t.session_id) END, t.session_id)
    WHERE s.client_id = coalesce(CASE WHEN length(t.client_id) = 32
                                           AND t.client_id = lower(t.client_id)
                                      THEN unhex(t.client_id) END, t.client_id);

-- Takes `access_tokens_by_expiry` with it, which 0008 gives up.
DROP TABLE tokens;
ALTER TABLE tokens_compact RENAME TO tokens;

CREATE TABLE session_tokens_compact (
    hash        BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    client_id   ANY     NOT NULL
                CHECK (typeof(client_id) = 'text' OR length(client_id) = 16),
    -- Not a reference to sessions (0004).
    session_id  ANY
                CHECK (session_id IS NULL OR typeof(session_id) = 'text'
                       OR length(session_id) = 16),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO session_tokens_compact (hash, client_id, session_id, created_at, expires_at)
    SELECT hash,
           coalesce(CASE WHEN length(client_id) = 32 AND client_id = lower(client_id)
                         THEN unhex(client_id) END, client_id),
           coalesce(CASE WHEN length(session_id) = 32 AND session_id = lower(session_id)
                         THEN unhex(session_id) END, session_id),
           created_at, expires_at
    FROM session_tokens;

DROP TABLE session_tokens;
ALTER TABLE session_tokens_compact RENAME TO session_tokens;

-- As in 0004.
CREATE INDEX session_tokens_by_session ON session_tokens (session_id)
    WHERE session_id IS NOT NULL;
CREATE INDEX session_tokens_by_expiry ON session_tokens (expires_at);
