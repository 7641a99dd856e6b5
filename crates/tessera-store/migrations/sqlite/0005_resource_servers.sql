-- Resource servers (RFC 7662): a client marked as one may introspect every client's
-- tokens; any other client sees only its own. Every client that existed before this
-- migration is an ordinary client.
ALTER TABLE clients ADD COLUMN resource_server INTEGER NOT NULL DEFAULT 0
    CHECK (resource_server IN (0, 1));
