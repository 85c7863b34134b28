-- Dovie embedded store, schema version 7: location — live shares, share requests, the
-- location history, "nearby" positions (coarse cells) and location rooms, both indexed by
-- R*Tree; location messages; rooms of type `location`.
-- dovie: foreign_keys off
--
-- `chat_rooms.type` gains `location`; SQLite can only change a CHECK by rebuilding the table
-- (foreign keys are off while it runs and checked before commit, so no member or message row
-- is cascaded away).

CREATE TABLE chat_rooms_v7 (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL CHECK (type IN ('direct', 'group', 'location')),
    name       TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- "a:b" with the two user ids sorted: one direct room per pair.
    direct_key TEXT UNIQUE,
    -- The room's last stored seq; advanced in the same transaction as the messages.
    last_seq   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO chat_rooms_v7 (id, type, name, created_by, created_at, direct_key, last_seq)
    SELECT id, type, name, created_by, created_at, direct_key, last_seq FROM chat_rooms;
DROP TABLE chat_rooms;
ALTER TABLE chat_rooms_v7 RENAME TO chat_rooms;

-- A location message's place (JSON), and whether its text asks where someone is.
ALTER TABLE messages ADD COLUMN location TEXT;
ALTER TABLE messages ADD COLUMN suggest_location INTEGER NOT NULL DEFAULT 0;

-- Live location shares: one live share per user and room (a new one ends the old); ended once
-- (`ended_at` set by a compare-and-set), by the sharer or by the sweeper at `live_until`.
CREATE TABLE location_shares (
    id          TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    message_id  TEXT,
    lat         REAL NOT NULL,
    lon         REAL NOT NULL,
    accuracy_m  REAL,
    heading     REAL,
    label       TEXT,
    started_at  INTEGER NOT NULL,
    live_until  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    end_reason  TEXT
);
CREATE INDEX location_shares_live ON location_shares (room_id, user_id) WHERE ended_at IS NULL;
CREATE INDEX location_shares_due ON location_shares (live_until) WHERE ended_at IS NULL;

CREATE TABLE location_share_requests (
    id           TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL,
    from_user_id TEXT NOT NULL,
    to_user_id   TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Every location a user shared or published (kept `location.history_days`).
CREATE TABLE location_history (
    id      TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('message', 'live', 'nearby')),
    room_id TEXT,
    lat     REAL NOT NULL,
    lon     REAL NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX location_history_by_user ON location_history (user_id, id);
CREATE INDEX location_history_by_time ON location_history (at);

-- "Nearby": one coarse cell per opted-in user (the cell's centre, never the position given),
-- indexed by an R*Tree on `rid`.
CREATE TABLE nearby_users (
    rid        INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL UNIQUE,
    lat        REAL NOT NULL,
    lon        REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX nearby_users_expiry ON nearby_users (expires_at);
CREATE VIRTUAL TABLE nearby_index USING rtree (id, min_lat, max_lat, min_lon, max_lon);

-- Location rooms: a place and a radius, indexed by an R*Tree on `rid`.
CREATE TABLE location_rooms (
    rid      INTEGER PRIMARY KEY,
    room_id  TEXT NOT NULL UNIQUE,
    lat      REAL NOT NULL,
    lon      REAL NOT NULL,
    radius_m REAL NOT NULL
);
CREATE VIRTUAL TABLE location_rooms_index USING rtree (id, min_lat, max_lat, min_lon, max_lon);
