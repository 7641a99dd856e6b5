-- Clean-up sweeps the sessions and the tokens in key order (as SQLite's, whose migrations
-- 0006 to 0008 give the reasons), so the indexes that served only clean-up go:
--
-- - `sessions_by_expiry` and `access_tokens_by_expiry`: the sweeps find expired rows;
-- - `sessions_by_client`: the sweep deletes the sessions a client's watermark covers,
--   which the tidy-up no longer marks one by one.

DROP INDEX sessions_by_client;
DROP INDEX sessions_by_expiry;
DROP INDEX access_tokens_by_expiry;
