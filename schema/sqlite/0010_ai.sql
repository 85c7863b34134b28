-- Dovie embedded store, schema version 10: the AI assistants — saved commands (`/name` sent
-- alone is sent as its text), consents with their whole history (a change is a new row), and
-- translations of messages kept per target language and message version.

CREATE TABLE commands (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE consents (
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    granted  INTEGER NOT NULL,
    PRIMARY KEY (user_id, at, kind)
);

CREATE TABLE translations (
    message_id       TEXT NOT NULL,
    target           TEXT NOT NULL,
    version          INTEGER NOT NULL,
    source_language  TEXT NOT NULL,
    text             TEXT NOT NULL,
    PRIMARY KEY (message_id, target)
);
