-- Dovie embedded store, schema version 6: files (encrypted bytes live in the object store; a
-- row holds what they are and the wrapped key), where they were shared, their hashtags, link
-- previews, generated secrets — and the link previews of messages.

CREATE TABLE files (
    id TEXT PRIMARY KEY,
    uploader_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    object TEXT NOT NULL,
    key_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    chunk_bytes INTEGER NOT NULL,
    hashtags TEXT NOT NULL DEFAULT '[]',
    room_id TEXT,
    public INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    preview_state TEXT NOT NULL DEFAULT 'pending',
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX files_by_uploader ON files (uploader_id, id);
CREATE INDEX files_pending_previews ON files (created_at) WHERE preview_state = 'pending' AND deleted_at IS NULL;

-- A file shared in a room: by a message (`message_id`), or uploaded to it (`message_id` '').
CREATE TABLE file_shares (
    file_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (file_id, room_id, message_id)
);
CREATE INDEX file_shares_by_room ON file_shares (room_id, file_id);

CREATE TABLE file_hashtags (
    tag TEXT NOT NULL,
    file_id TEXT NOT NULL,
    PRIMARY KEY (tag, file_id)
);

CREATE TABLE link_previews (
    url TEXT PRIMARY KEY,
    preview TEXT NOT NULL,
    fetched_at INTEGER NOT NULL
);

CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

ALTER TABLE messages ADD COLUMN link_previews TEXT NOT NULL DEFAULT '[]';
