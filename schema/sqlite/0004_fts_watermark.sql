-- Dovie embedded store, schema version 4: the full-text watermark follows deletes.
--
-- `messages` has no AUTOINCREMENT: after the newest rows are deleted (a room delete), the next
-- message takes a rowid at or below `fts_progress.indexed_upto`. The indexer (which takes rows
-- above the watermark) then never indexed it, while its later edit or delete told the index to
-- drop content it never had — "database disk image is malformed". Now the delete trigger, after
-- removing an indexed row from the index, lowers the watermark to the highest rowid left, so a
-- reused rowid is always above it and gets indexed. One trigger does both, in that order.

DROP TRIGGER messages_fts_delete;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content)
        SELECT 'delete', old.rowid, old.content
        WHERE old.rowid <= (SELECT indexed_upto FROM fts_progress WHERE id = 1);
    UPDATE fts_progress SET indexed_upto = (SELECT COALESCE(MAX(rowid), 0) FROM messages)
        WHERE id = 1 AND indexed_upto > (SELECT COALESCE(MAX(rowid), 0) FROM messages);
END;

-- An index the old trigger may have left inconsistent is rebuilt from the messages, whole.
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
UPDATE fts_progress SET indexed_upto = (SELECT COALESCE(MAX(rowid), 0) FROM messages) WHERE id = 1;
