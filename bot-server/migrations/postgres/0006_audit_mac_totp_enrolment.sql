-- Each audit row carries a keyed MAC of its chain hash (HMAC-SHA256 under the active
-- HMAC key, named by id): without the key a rewritten chain cannot be signed again.
-- Rows from before this migration have '' and are vouched for by the first signed row
-- after them, whose hash covers them.
ALTER TABLE audit_log ADD COLUMN mac_key TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN mac TEXT NOT NULL DEFAULT '';
-- A TOTP secret being enrolled: it replaces totp_enc only once a first code confirms it.
ALTER TABLE users ADD COLUMN totp_pending_enc TEXT;
