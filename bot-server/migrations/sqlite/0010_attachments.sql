-- Attachments: files a user sends in a conversation, sealed and stored under their id.
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    name_enc TEXT,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX attachments_expiry ON attachments (expires_at);
CREATE INDEX attachments_user ON attachments (user_id);
