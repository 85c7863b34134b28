-- Dovie embedded store, schema version 16: administration (ADM-1, ADM-3) — the append-only
-- audit log of admin actions and security events (the target's label kept as it was, so it
-- outlives the target), and account suspensions.

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
