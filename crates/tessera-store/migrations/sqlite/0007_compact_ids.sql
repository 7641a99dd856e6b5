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

INSERT INTO sessions_compact (id, client_id, user_id, external_reference_id, authenticated,
                              locale, currency, cart_id, client_ip, session_tag, created_at,
                              last_accessed, expires_at, newest_access, revoked_at)
    SELECT iif(length(id) = 32 AND NOT id GLOB '*[^0-9a-f]*', unhex(id), id),
           iif(length(client_id) = 32 AND NOT client_id GLOB '*[^0-9a-f]*',
               unhex(client_id), client_id),
           iif(length(user_id) = 32 AND NOT user_id GLOB '*[^0-9a-f]*',
               unhex(user_id), user_id),
           external_reference_id, authenticated, locale, currency, cart_id, client_ip,
           iif(length(session_tag) = 32 AND NOT session_tag GLOB '*[^0-9a-f]*',
               unhex(session_tag), session_tag),
           created_at, last_accessed, expires_at, newest_access, revoked_at
    FROM sessions;

-- Takes the sessions' indexes with it.
DROP TABLE sessions;
ALTER TABLE sessions_compact RENAME TO sessions;

-- As in 0003.
CREATE INDEX sessions_by_user ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_by_client ON sessions (client_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
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
        ON s.id = iif(length(t.session_id) = 32 AND NOT t.session_id GLOB '*[^0-9a-f]*',
                      unhex(t.session_id), t.session_id)
    WHERE s.client_id = iif(length(t.client_id) = 32 AND NOT t.client_id GLOB '*[^0-9a-f]*',
                            unhex(t.client_id), t.client_id);

DROP TABLE tokens;
ALTER TABLE tokens_compact RENAME TO tokens;

-- As in 0006.
CREATE INDEX access_tokens_by_expiry ON tokens (expires_at) WHERE kind = 0;

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
           iif(length(client_id) = 32 AND NOT client_id GLOB '*[^0-9a-f]*',
               unhex(client_id), client_id),
           iif(length(session_id) = 32 AND NOT session_id GLOB '*[^0-9a-f]*',
               unhex(session_id), session_id),
           created_at, expires_at
    FROM session_tokens;

DROP TABLE session_tokens;
ALTER TABLE session_tokens_compact RENAME TO session_tokens;

-- As in 0004.
CREATE INDEX session_tokens_by_session ON session_tokens (session_id)
    WHERE session_id IS NOT NULL;
CREATE INDEX session_tokens_by_expiry ON session_tokens (expires_at);
