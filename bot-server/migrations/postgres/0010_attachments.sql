-- Attachments: files a user sends in a conversation, sealed with the data key ring and
-- kept in the bucket (or the local files directory) under their id, never their name.
-- The name is encrypted (name_enc); key_id names the data key that sealed the file (the
-- key-usage report counts it). They are temporary files: they expire (expires_at).
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
ALTER TABLE attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY attachments_owner ON attachments
    USING (user_id = current_setting('app.user_id', true) OR current_setting('app.user_id', true) = '__maintenance__')
    WITH CHECK (user_id = current_setting('app.user_id', true));

CREATE OR REPLACE FUNCTION generalbot_grant_runtime(runtime name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), runtime);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON users, refresh_tokens, conversations, messages, shared_sessions, shared_counters, identities, bots, attachments TO %I', runtime);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', runtime);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %I', runtime);
    EXECUTE format('GRANT SELECT ON schema_migrations TO %I', runtime);
END
$$;
