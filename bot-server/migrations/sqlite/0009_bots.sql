-- Bots: definitions (YAML or JSON, stored as JSON), from the API or a mounted directory.
CREATE TABLE bots (
    slug TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('api', 'directory')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- A conversation talks to one bot; where its flow stands is encrypted (state_enc).
ALTER TABLE conversations ADD COLUMN bot_slug TEXT;
ALTER TABLE conversations ADD COLUMN state_enc TEXT;
-- Who said a message: the user or the bot.
ALTER TABLE messages ADD COLUMN sender TEXT NOT NULL DEFAULT 'user' CHECK (sender IN ('user', 'bot'));
