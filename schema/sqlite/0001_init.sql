-- Dovie embedded store, schema version 1 (SQLite, WAL). Applied by `dovie migrate` and at start.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    avatar_url    TEXT,
    bio           TEXT,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER
);

-- A login session is one refresh-token family; revoking it revokes its access tokens too.
CREATE TABLE auth_sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX auth_sessions_user ON auth_sessions(user_id);
CREATE INDEX auth_sessions_revoked ON auth_sessions(revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens are stored as SHA-256 hashes; `used_at` marks a rotated (spent) token.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE chat_rooms (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL CHECK (type IN ('direct', 'group')),
    name       TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- "a:b" with the two user ids sorted: one direct room per pair.
    direct_key TEXT UNIQUE,
    -- The room's last stored seq; advanced in the same transaction as the messages.
    last_seq   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE chat_participants (
    room_id       TEXT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at     INTEGER NOT NULL,
    read_seq      INTEGER NOT NULL DEFAULT 0,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX chat_participants_user ON chat_participants(user_id);

CREATE TABLE messages (
    rowid       INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    room_id     TEXT NOT NULL REFERENCES chat_rooms(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    sender_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    content     TEXT NOT NULL,
    nonce       TEXT,
    reply_to    TEXT,
    hashtags    TEXT NOT NULL DEFAULT '[]',
    reactions   TEXT NOT NULL DEFAULT '{}',
    attachments TEXT NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    edited_at   INTEGER,
    deleted     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (room_id, seq)
);
-- Idempotent send: one message per (room, sender, nonce), durable across restarts.
CREATE UNIQUE INDEX messages_nonce ON messages(room_id, sender_id, nonce) WHERE nonce IS NOT NULL;

-- Who reacted with what; messages.reactions is its per-message summary, kept in the same write.
CREATE TABLE message_likes (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

CREATE TABLE message_hashtags (
    tag        TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    room_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tag, message_id)
);

CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content = 'messages', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
