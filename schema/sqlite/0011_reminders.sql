-- Dovie embedded store, schema version 11: reminders — each user's IANA time zone (reminders
-- are read in it) and reminders, fired once (`fired_at` set by the one sweep that fires it).

ALTER TABLE users ADD COLUMN time_zone TEXT;

CREATE TABLE reminders (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    room_id     TEXT,
    message_id  TEXT,
    created_at  INTEGER NOT NULL,
    fired_at    INTEGER
);

CREATE INDEX reminders_pending_of_user ON reminders (user_id, due_at) WHERE fired_at IS NULL;
CREATE INDEX reminders_pending ON reminders (due_at) WHERE fired_at IS NULL;
