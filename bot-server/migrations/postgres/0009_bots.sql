-- Bots: definitions (YAML or JSON, stored as JSON), from the API or a mounted directory.
-- Not personal data, so no row-level security: every user may read them, only
-- administrators change them (checked by the server).
CREATE TABLE bots (
    slug TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('api', 'directory')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL -- unix microseconds: the version every replica compares
);
-- A conversation talks to one bot; where its flow stands is encrypted (state_enc).
ALTER TABLE conversations ADD COLUMN bot_slug TEXT;
ALTER TABLE conversations ADD COLUMN state_enc TEXT;
-- Who said a message: the user or the bot.
ALTER TABLE messages ADD COLUMN sender TEXT NOT NULL DEFAULT 'user' CHECK (sender IN ('user', 'bot'));

CREATE OR REPLACE FUNCTION generalbot_grant_runtime(runtime name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), runtime);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON users, refresh_tokens, conversations, messages, shared_sessions, shared_counters, identities, bots TO %I', runtime);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', runtime);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %I', runtime);
    EXECUTE format('GRANT SELECT ON schema_migrations TO %I', runtime);
END
$$;
