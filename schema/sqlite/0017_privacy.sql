-- Privacy (OPS-9): data export jobs, and the indexes a user's export and erasure need to find
-- what they wrote: every room they stored a message in (kept after they leave it), their
-- likes and their comments.

CREATE TABLE IF NOT EXISTS exports (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    finished_at  INTEGER,
    expires_at   INTEGER,
    error        TEXT,
    object       TEXT,
    key_id       TEXT,
    wrapped_key  TEXT,
    chunk_bytes  INTEGER NOT NULL DEFAULT 0,
    size         INTEGER NOT NULL DEFAULT 0,
    sha256       TEXT
);
CREATE INDEX IF NOT EXISTS exports_by_user ON exports (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS exports_by_expiry ON exports (expires_at) WHERE status = 'ready';

-- The user's running export (one at a time).
CREATE TABLE IF NOT EXISTS running_exports (
    user_id      TEXT PRIMARY KEY,
    export_id    TEXT NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS sender_rooms (
    sender_id TEXT NOT NULL,
    room_id   TEXT NOT NULL,
    PRIMARY KEY (sender_id, room_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO sender_rooms (sender_id, room_id) SELECT DISTINCT sender_id, room_id FROM messages;

CREATE INDEX IF NOT EXISTS post_likes_by_user ON post_likes (user_id, post_id);
CREATE INDEX IF NOT EXISTS post_comments_by_author ON post_comments (author_id, id);
