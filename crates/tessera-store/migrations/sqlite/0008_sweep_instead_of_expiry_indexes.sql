-- Clean-up sweeps the sessions in key order, as it sweeps the tokens (0006), so the
-- indexes that served only clean-up go, and with them an entry per live session in each
-- and a page per index that every batch of new sessions dirtied:
--
-- - `sessions_by_expiry` and `access_tokens_by_expiry`: the sweeps find expired rows;
-- - `sessions_by_client`: the sweep deletes the sessions a client's watermark covers
--   (the tidy-up now marks only a shopper's, through `sessions_by_user`).
--
-- Revoked sessions are still found at once, through `sessions_revoked`, which holds only
-- them. 0007 already built the tables again without these indexes; a file that reached
-- version 7 with them loses them here.

DROP INDEX IF EXISTS sessions_by_client;
DROP INDEX IF EXISTS sessions_by_expiry;
DROP INDEX IF EXISTS access_tokens_by_expiry;
