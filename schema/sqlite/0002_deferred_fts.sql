-- Dovie embedded store, schema version 2: full-text indexing leaves the send path.
--
-- The writer indexes new messages in batches, in rowid order, and records how far it got in
-- fts_progress (in the same transaction as the index rows, so a crash loses no progress and
-- indexes nothing twice). Search first brings the index up to date, so a search still sees
-- every message sent before it. Edits and deletes keep the index exact for rows already indexed;
-- a row not yet indexed is indexed with its content as it is when its turn comes.

CREATE TABLE fts_progress (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
);
-- Every existing row was indexed by the version-1 insert trigger.
INSERT INTO fts_progress (id, indexed_upto) SELECT 1, COALESCE(MAX(rowid), 0) FROM messages;

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_delete;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.rowid <= (SELECT indexed_upto FROM fts_progress WHERE id = 1)
BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.rowid <= (SELECT indexed_upto FROM fts_progress WHERE id = 1)
BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
