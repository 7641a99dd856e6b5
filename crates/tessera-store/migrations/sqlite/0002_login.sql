-- Shopper login (grant_type=password with a username). Depends only on 0001.
--
-- How each client sends shopper passwords: 'plain' (as typed) or 'base64' (base64 of the
-- password's UTF-8 bytes, as some Digital River storefront code sends it). Every client
-- that existed before this migration keeps sending plain passwords.
ALTER TABLE clients ADD COLUMN password_encoding TEXT NOT NULL DEFAULT 'plain'
    CHECK (password_encoding IN ('plain', 'base64'));

-- Usernames are already UNIQUE in 0001, and SQLite backs each UNIQUE column with an index,
-- so the login's lookup by username is one index search without a new index here.
