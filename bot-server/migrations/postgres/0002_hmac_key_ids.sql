-- The HMAC key that made each blind index and refresh-token digest, so the server can
-- re-index under the active key and report which keys stored rows still need. Rows
-- written before this migration have '' (unknown): re-indexing finds their key.
ALTER TABLE users ADD COLUMN email_index_key TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN hmac_key TEXT NOT NULL DEFAULT '';
