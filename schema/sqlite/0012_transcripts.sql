-- Dovie embedded store, schema version 12: transcripts of voice messages, audio and video files
-- (AI-2), kept on the file as JSON (`{"text", "language", "created_at"}`).

ALTER TABLE files ADD COLUMN transcript TEXT;
