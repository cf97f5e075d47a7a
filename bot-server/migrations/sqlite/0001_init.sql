-- Users: the email is encrypted (email_enc) and found through its blind index.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email_enc TEXT NOT NULL,
    email_index TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'user')),
    totp_enc TEXT,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
-- Refresh tokens: only an HMAC of the token is stored.
CREATE TABLE refresh_tokens (
    token_hmac TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used BIGINT NOT NULL DEFAULT 0,
    revoked BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- Audit log: append-only, each row chained to the previous one by hash.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Messages: the text is encrypted (body_enc).
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    body_enc TEXT NOT NULL,
    created_at BIGINT NOT NULL -- unix microseconds
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);
