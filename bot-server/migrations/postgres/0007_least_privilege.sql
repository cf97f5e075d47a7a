-- Row-level security on every table that holds user data. A transaction sees the rows
-- of the user named by `SET LOCAL app.user_id`; the identity service works under
-- '__auth__' (logins look accounts up by email before they know who is asking), the
-- key-usage count and re-encryption under '__maintenance__'. With nothing set, nothing
-- is visible. FORCE applies it to the owning role too.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_scope ON users
    USING (id = current_setting('app.user_id', true) OR current_setting('app.user_id', true) IN ('__auth__', '__maintenance__'))
    WITH CHECK (id = current_setting('app.user_id', true) OR current_setting('app.user_id', true) IN ('__auth__', '__maintenance__'));
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY refresh_tokens_scope ON refresh_tokens
    USING (user_id = current_setting('app.user_id', true) OR current_setting('app.user_id', true) IN ('__auth__', '__maintenance__'))
    WITH CHECK (user_id = current_setting('app.user_id', true) OR current_setting('app.user_id', true) IN ('__auth__', '__maintenance__'));

-- What the server's runtime role may do, granted by the owner that runs migrations:
-- read and write user data, append to and read the audit log (never change or remove
-- it), read which migrations ran. It owns nothing, so it cannot alter a table, drop a
-- trigger or a policy. A later migration that adds a table replaces this function.
CREATE FUNCTION generalbot_grant_runtime(runtime name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), runtime);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON users, refresh_tokens, conversations, messages, shared_sessions, shared_counters TO %I', runtime);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', runtime);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %I', runtime);
    EXECUTE format('GRANT SELECT ON schema_migrations TO %I', runtime);
END
$$;
