-- Accounts signed in through a directory service, linked by the issuer's subject (never
-- by email alone). Row-level security like users: the identity service's scope, or the
-- user's own rows.
CREATE TABLE identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX identities_user ON identities (user_id);
ALTER TABLE identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE identities FORCE ROW LEVEL SECURITY;
CREATE POLICY identities_scope ON identities
    USING (user_id = current_setting('app.user_id', true) OR current_setting('app.user_id', true) IN ('__auth__', '__maintenance__'))
    WITH CHECK (user_id = current_setting('app.user_id', true) OR current_setting('app.user_id', true) IN ('__auth__', '__maintenance__'));

-- The runtime role's grants, with the new table.
CREATE OR REPLACE FUNCTION generalbot_grant_runtime(runtime name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), runtime);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON users, refresh_tokens, conversations, messages, shared_sessions, shared_counters, identities TO %I', runtime);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', runtime);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %I', runtime);
    EXECUTE format('GRANT SELECT ON schema_migrations TO %I', runtime);
END
$$;
