-- State every replica shares when no cache is configured: sessions and fixed-window
-- counters (rate limits, failed logins per client address). Times are unix
-- milliseconds; rows past their time are ignored by every read and swept in batches.
-- A session is stored by the SHA-256 of its id, so reading the table gives no live id.
CREATE TABLE shared_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX shared_sessions_expiry ON shared_sessions (expires_at);
CREATE TABLE shared_counters (
    key TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    window_end BIGINT NOT NULL
);
CREATE INDEX shared_counters_expiry ON shared_counters (window_end);
