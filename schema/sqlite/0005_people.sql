-- Dovie embedded store, schema version 5: people — profiles, phones, provider identities,
-- session devices, contacts, blocks, phone verifications, the user-search name index.
-- dovie: foreign_keys off
--
-- `users.email` becomes optional (accounts made by phone or by a provider without a verified
-- email have none), which SQLite can only do by rebuilding the table; foreign keys are off
-- while it runs (the migration runner turns them off outside the transaction and checks them
-- before committing), so no session row is cascaded away.

CREATE TABLE users_v5 (
    id               TEXT PRIMARY KEY,
    email            TEXT UNIQUE,
    phone            TEXT UNIQUE,
    password_hash    TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    avatar_url       TEXT,
    bio              TEXT,
    status_message   TEXT,
    theme            TEXT NOT NULL DEFAULT 'system' CHECK (theme IN ('light', 'dark', 'system')),
    locale           TEXT NOT NULL DEFAULT 'en',
    presence_visible INTEGER NOT NULL DEFAULT 1,
    discoverable     INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER,
    role             TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'))
);
INSERT INTO users_v5 (id, email, password_hash, display_name, avatar_url, bio, created_at, last_seen_at, role)
    SELECT id, email, password_hash, display_name, avatar_url, bio, created_at, last_seen_at, role FROM users;
DROP TABLE users;
ALTER TABLE users_v5 RENAME TO users;

-- The user-search index: each prefix of a discoverable user's display name and of its words
-- (store/text.rs `name_prefixes`), the same rows as the CQL store's.
CREATE TABLE user_name_prefixes (
    prefix  TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (prefix, user_id)
) WITHOUT ROWID;
CREATE INDEX user_name_prefixes_user ON user_name_prefixes(user_id);

-- An account at an identity provider (Google's `sub`, Facebook's user id), linked to one account.
CREATE TABLE user_identities (
    provider  TEXT NOT NULL,
    subject   TEXT NOT NULL,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities(user_id);

ALTER TABLE auth_sessions ADD COLUMN device TEXT;
ALTER TABLE auth_sessions ADD COLUMN user_agent TEXT;
ALTER TABLE auth_sessions ADD COLUMN ip TEXT;
ALTER TABLE auth_sessions ADD COLUMN last_seen_at INTEGER;
UPDATE auth_sessions SET last_seen_at = created_at;
CREATE INDEX auth_sessions_ip_seen ON auth_sessions(last_seen_at) WHERE ip IS NOT NULL;

-- One-way: `owner_id` added `contact_id`. Mutual when both rows exist.
CREATE TABLE contacts (
    owner_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (owner_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX contacts_reverse ON contacts(contact_id, owner_id);

CREATE TABLE blocks (
    blocker_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_reverse ON blocks(blocked_id, blocker_id);

-- SMS codes, kept as keyed hashes; rows older than a day are swept.
CREATE TABLE phone_verifications (
    id          TEXT PRIMARY KEY,
    phone       TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    consumed_at INTEGER
);
CREATE INDEX phone_verifications_phone ON phone_verifications(phone, created_at);
