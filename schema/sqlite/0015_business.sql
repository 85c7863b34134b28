-- Dovie embedded store, schema version 15: business (BIZ-1..6). Posts are
-- listed by their feed key (the business a post speaks for, else its author), business
-- profiles with their name-prefix index, connection requests between businesses (one open
-- request or connection per pair, either way), verification requests, company channels
-- (each a room of type `channel`), per-day analytics counters with the viewers already counted
-- for a post that day.
-- dovie: foreign_keys off
--
-- `chat_rooms.type` gains `channel`; SQLite can only change a CHECK by rebuilding the table
-- (foreign keys are off while it runs and checked before commit, so no member or message row
-- is cascaded away).

CREATE TABLE chat_rooms_v15 (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL CHECK (type IN ('direct', 'group', 'location', 'channel')),
    name       TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- "a:b" with the two user ids sorted: one direct room per pair.
    direct_key TEXT UNIQUE,
    -- The room's last stored seq; advanced in the same transaction as the messages.
    last_seq   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO chat_rooms_v15 (id, type, name, created_by, created_at, direct_key, last_seq)
    SELECT id, type, name, created_by, created_at, direct_key, last_seq FROM chat_rooms;
DROP TABLE chat_rooms;
ALTER TABLE chat_rooms_v15 RENAME TO chat_rooms;

CREATE INDEX IF NOT EXISTS user_posts_by_feed_key
    ON user_posts (coalesce(business_id, author_id), created_at DESC, id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE IF NOT EXISTS businesses (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    website TEXT,
    email TEXT,
    phone TEXT,
    address TEXT,
    hours TEXT,
    admins TEXT NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS businesses_by_category ON businesses (category, id);

CREATE TABLE IF NOT EXISTS business_name_prefixes (
    prefix TEXT NOT NULL,
    business_id TEXT NOT NULL,
    PRIMARY KEY (prefix, business_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS business_connections (
    id TEXT PRIMARY KEY,
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    pair TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    decided_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS business_connections_open_pair
    ON business_connections (pair) WHERE status != 'declined';
CREATE INDEX IF NOT EXISTS business_connections_from ON business_connections (from_id, created_at);
CREATE INDEX IF NOT EXISTS business_connections_to ON business_connections (to_id, created_at);

CREATE TABLE IF NOT EXISTS business_verifications (
    id TEXT PRIMARY KEY,
    business_id TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    documents TEXT NOT NULL,
    note TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    decided_by TEXT,
    created_at INTEGER NOT NULL,
    decided_at INTEGER
);
CREATE INDEX IF NOT EXISTS business_verifications_by_status
    ON business_verifications (status, created_at, id);
CREATE INDEX IF NOT EXISTS business_verifications_by_business
    ON business_verifications (business_id, created_at);

CREATE TABLE IF NOT EXISTS company_channels (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    business_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS company_channels_by_business ON company_channels (business_id, created_at);

CREATE TABLE IF NOT EXISTS business_metrics (
    business_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (business_id, day, metric)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS post_views (
    post_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    viewer_id TEXT NOT NULL,
    PRIMARY KEY (post_id, day, viewer_id)
) WITHOUT ROWID;
