-- Dovie embedded store, schema version 8: push — browsers' Web Push subscriptions (one row per
-- endpoint: a browser profile subscribed once, whoever is logged in on it now) and APNs device
-- tokens (one row per token); notification settings.

CREATE TABLE push_subscriptions (
    id          TEXT PRIMARY KEY,
    endpoint    TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    p256dh      TEXT NOT NULL,
    auth        TEXT NOT NULL,
    encoding    TEXT NOT NULL CHECK (encoding IN ('aes128gcm', 'aesgcm')),
    created_at  INTEGER NOT NULL
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

CREATE TABLE apns_tokens (
    token        TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    environment  TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
    created_at   INTEGER NOT NULL
);
CREATE INDEX apns_tokens_by_user ON apns_tokens (user_id);

-- Notification settings: one JSON document per user, changed by compare-and-set on `version`.
CREATE TABLE notification_settings (
    user_id   TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    settings  TEXT NOT NULL,
    version   INTEGER NOT NULL
);
