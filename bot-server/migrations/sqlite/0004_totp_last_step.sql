-- The last TOTP time step accepted for each user: a code is accepted once, so a code
-- seen (shoulder surfing, a proxy log) cannot be replayed within its window.
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
