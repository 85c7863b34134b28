//! Push targets in the embedded store: browsers' Web Push subscriptions (`push_subscriptions`,
//! one row per endpoint), APNs device tokens (`apns_tokens`, one row per token) and notification
//! settings (`notification_settings`, one JSON document per user with a version).

use super::*;

const SUB_COLS: &str = "id, endpoint, user_id, p256dh, auth, encoding, created_at";

fn subscription(r: &Row) -> rusqlite::Result<WebPushSubscription> {
    Ok(WebPushSubscription {
        id: r.get(0)?,
        endpoint: r.get(1)?,
        user_id: r.get(2)?,
        p256dh: r.get(3)?,
        auth: r.get(4)?,
        encoding: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn token(r: &Row) -> rusqlite::Result<ApnsToken> {
    Ok(ApnsToken {
        token: r.get(0)?,
        user_id: r.get(1)?,
        environment: r.get(2)?,
        created_at: r.get(3)?,
    })
}

/// The rows `sql` (with one `?1`) finds for each of `keys`.
fn each<T>(
    c: &Connection,
    sql: &str,
    keys: &[String],
    row: fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut st = db(c.prepare_cached(sql))?;
    let mut out = Vec::new();
    for key in keys {
        let rows = db(st.query_map([key], row))?;
        for r in rows {
            out.push(db(r)?);
        }
    }
    Ok(out)
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn put_web_push(
        &self,
        sub: WebPushSubscription,
    ) -> StoreResult<(WebPushSubscription, bool)> {
        self.write(move |c| {
            let inserted = db(c.execute(
                &format!(
                    "INSERT INTO push_subscriptions ({SUB_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (endpoint) DO NOTHING"
                ),
                params![
                    sub.id,
                    sub.endpoint,
                    sub.user_id,
                    sub.p256dh,
                    sub.auth,
                    sub.encoding,
                    sub.created_at
                ],
            ))? == 1;
            if !inserted {
                db(c.execute(
                    "UPDATE push_subscriptions SET user_id = ?2, p256dh = ?3, auth = ?4, encoding = ?5 \
                     WHERE endpoint = ?1",
                    params![sub.endpoint, sub.user_id, sub.p256dh, sub.auth, sub.encoding],
                ))?;
            }
            let stored = db(c.query_row(
                &format!("SELECT {SUB_COLS} FROM push_subscriptions WHERE endpoint = ?1"),
                [&sub.endpoint],
                subscription,
            ))?;
            Ok((stored, inserted))
        })
        .await
    }

    async fn delete_web_push(&self, user_id: &str, endpoint: &str) -> StoreResult<bool> {
        let (user_id, endpoint) = (user_id.to_string(), endpoint.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint = ?2",
                params![user_id, endpoint],
            ))? == 1)
        })
        .await
    }

    async fn web_push_of(&self, user_ids: &[String]) -> StoreResult<Vec<WebPushSubscription>> {
        let user_ids = user_ids.to_vec();
        self.read(move |c| {
            each(
                c,
                &format!(
                    "SELECT {SUB_COLS} FROM push_subscriptions WHERE user_id = ?1 ORDER BY endpoint"
                ),
                &user_ids,
                subscription,
            )
        })
        .await
    }

    async fn put_apns_token(&self, t: ApnsToken) -> StoreResult<bool> {
        self.write(move |c| {
            let existed = db(c
                .query_row(
                    "SELECT 1 FROM apns_tokens WHERE token = ?1",
                    [&t.token],
                    |_| Ok(()),
                )
                .optional())?
            .is_some();
            db(c.execute(
                "INSERT INTO apns_tokens (token, user_id, environment, created_at) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id, \
                 environment = excluded.environment",
                params![t.token, t.user_id, t.environment, t.created_at],
            ))?;
            Ok(!existed)
        })
        .await
    }

    async fn delete_apns_token(&self, user_id: &str, token: &str) -> StoreResult<bool> {
        let (user_id, token) = (user_id.to_string(), token.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "DELETE FROM apns_tokens WHERE user_id = ?1 AND token = ?2",
                params![user_id, token],
            ))? == 1)
        })
        .await
    }

    async fn notification_settings(&self, user_id: &str) -> StoreResult<Option<(String, i64)>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            db(c.query_row(
                "SELECT settings, version FROM notification_settings WHERE user_id = ?1",
                [&user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional())
        })
        .await
    }

    async fn put_notification_settings(
        &self,
        user_id: &str,
        settings: &str,
        version: i64,
        expected: Option<i64>,
    ) -> StoreResult<bool> {
        let (user_id, settings) = (user_id.to_string(), settings.to_string());
        self.write(move |c| {
            let stored: Option<i64> = db(c
                .query_row(
                    "SELECT version FROM notification_settings WHERE user_id = ?1",
                    [&user_id],
                    |r| r.get(0),
                )
                .optional())?;
            if stored != expected {
                return Ok(false);
            }
            db(c.execute(
                "INSERT INTO notification_settings (user_id, settings, version) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET settings = excluded.settings, \
                 version = excluded.version",
                params![user_id, settings, version],
            ))?;
            Ok(true)
        })
        .await
    }

    async fn apns_tokens_of(&self, user_ids: &[String]) -> StoreResult<Vec<ApnsToken>> {
        let user_ids = user_ids.to_vec();
        self.read(move |c| {
            each(
                c,
                "SELECT token, user_id, environment, created_at FROM apns_tokens \
                 WHERE user_id = ?1 ORDER BY token",
                &user_ids,
                token,
            )
        })
        .await
    }

    async fn notification_settings_of(
        &self,
        user_ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        let user_ids = user_ids.to_vec();
        self.read(move |c| {
            each(
                c,
                "SELECT user_id, settings FROM notification_settings WHERE user_id = ?1",
                &user_ids,
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    async fn add_push_jobs(&self, jobs: &[PushJobRecord]) -> StoreResult<()> {
        let jobs = jobs.to_vec();
        self.write(move |c| insert_jobs(c, &jobs)).await
    }

    async fn due_push_jobs(
        &self,
        lane: u8,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<PushJobRecord>> {
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT id, body, due_at, attempts FROM push_jobs WHERE lane = ?1 AND due_at <= ?2 \
                 ORDER BY due_at, id LIMIT ?3",
            ))?;
            let rows = db(st.query_map(params![lane, now, limit as i64], |r| {
                Ok(PushJobRecord {
                    id: r.get(0)?,
                    body: r.get(1)?,
                    due_at: r.get(2)?,
                    attempts: r.get::<_, i64>(3)? as u32,
                    lane,
                })
            }))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn finish_push_job(
        &self,
        _lane: u8,
        id: &str,
        follow: &[PushJobRecord],
    ) -> StoreResult<()> {
        let (id, follow) = (id.to_string(), follow.to_vec());
        self.write(move |c| {
            db(c.execute("DELETE FROM push_jobs WHERE id = ?1", [&id]))?;
            insert_jobs(c, &follow)
        })
        .await
    }

    async fn retry_push_job(
        &self,
        _lane: u8,
        id: &str,
        due_at: i64,
        attempts: u32,
    ) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |c| {
            db(c.execute(
                "UPDATE push_jobs SET due_at = ?2, attempts = ?3 WHERE id = ?1",
                params![id, due_at, attempts as i64],
            ))?;
            Ok(())
        })
        .await
    }

    async fn push_jobs_queued(&self) -> StoreResult<u64> {
        self.read(|c| {
            let n: i64 = db(c.query_row("SELECT count(*) FROM push_jobs", [], |r| r.get(0)))?;
            Ok(n as u64)
        })
        .await
    }
}

fn insert_jobs(c: &Connection, jobs: &[PushJobRecord]) -> StoreResult<()> {
    let mut st = db(c.prepare_cached(
        "INSERT OR IGNORE INTO push_jobs (id, lane, body, due_at, attempts) VALUES (?1, ?2, ?3, ?4, ?5)",
    ))?;
    for j in jobs {
        db(st.execute(params![j.id, j.lane, j.body, j.due_at, j.attempts as i64]))?;
    }
    Ok(())
}
