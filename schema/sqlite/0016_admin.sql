-- Dovie embedded store, schema version 16: administration (ADM-1, ADM-3, ADM-4) — the append-only
-- audit log of admin actions and security events (the target's label kept as it was, so it
-- outlives the target), account suspensions and reports.

CREATE TABLE IF NOT EXISTS audit_log (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    target_label TEXT,
    ip TEXT,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_by_actor ON audit_log (actor_id, at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_by_action ON audit_log (action, at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_by_target ON audit_log (target_type, target_id, at DESC, id DESC);

CREATE TABLE IF NOT EXISTS suspensions (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,
    until INTEGER,
    suspended_by TEXT NOT NULL
);

-- Reports (ADM-4): one open report per reporter and target (a partial unique index).
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY,
    reporter_id TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    comment TEXT,
    snapshot TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'dismissed')),
    created_at INTEGER NOT NULL,
    action TEXT,
    note TEXT,
    resolved_by TEXT,
    resolved_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS reports_open_once
    ON reports (reporter_id, target_type, target_id) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS reports_by_status ON reports (status, created_at, id);
CREATE INDEX IF NOT EXISTS reports_by_target ON reports (target_type, target_id, status);
