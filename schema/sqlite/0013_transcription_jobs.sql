-- Dovie embedded store, schema version 13: the durable queue of automatic transcriptions of new
-- voice messages (`ai.auto_transcribe`). A job is taken, and put off after a failure, by one
-- update conditional on the attempts and due time it was read with; it is deleted when done.

CREATE TABLE IF NOT EXISTS transcription_jobs (
    file_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS transcription_jobs_due ON transcription_jobs (due_at, file_id);
