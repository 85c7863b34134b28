-- Dovie embedded store, schema version 9: the push pipeline — messages carry their mentions
-- (`<@USER_ID>`, members only), and the durable queue of push jobs a single node works through
-- (a job is stored before it is attempted and deleted only when done; a retry moves `due_at`).

ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '[]';

-- Two lanes, claimed apart: 0 expansions (a message, a read, a notice), 1 deliveries.
CREATE TABLE push_jobs (
    id        TEXT PRIMARY KEY,
    lane      INTEGER NOT NULL CHECK (lane IN (0, 1)),
    body      TEXT NOT NULL,
    due_at    INTEGER NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_jobs_by_due ON push_jobs (lane, due_at);
