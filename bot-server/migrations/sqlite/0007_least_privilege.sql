-- SQLite has no roles and no row-level security: the embedded database is a file only
-- the server's user can read (see the README). Kept so both backends count the same
-- migrations.
SELECT 1;
