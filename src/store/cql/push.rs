//! Push targets in the cluster store: browsers' Web Push subscriptions (`push_subscriptions`,
//! claimed per endpoint with an LWT; `push_subscriptions_by_user` lists a user's) and APNs
//! device tokens (`apns_tokens`, `apns_tokens_by_user`); notification settings
//! (`notification_settings`, one JSON document per user, compare-and-set on its version). A subscription or token that moves to
//! another user leaves its old user's listing; removals are conditional on the owner, so a
//! removal racing a move never drops the new owner's row. Every write of the two main tables is
//! a lightweight transaction (Paxos and plain writes are not mixed on one row).
//!
//! The push queue of a node on this store without Redis (`push_jobs`): one partition, ids in
//! time order, read whole up to a bound (one node consumes it; a cluster queues in Redis).
//! A job's followers are written before the job is deleted, so a crash between the two repeats
//! the job's expansion (same follower ids: rewritten, not doubled) rather than losing it.

use super::*;

/// Users read with one `IN` per partition-key list.
const USERS_PER_READ: usize = 100;

pub(super) struct PushStmts {
    claim_sub: PreparedStatement,
    sub_by_endpoint: PreparedStatement,
    update_sub: PreparedStatement,
    delete_sub_of: PreparedStatement,
    insert_sub_by_user: PreparedStatement,
    delete_sub_by_user: PreparedStatement,
    subs_of_users: PreparedStatement,
    token_owner: PreparedStatement,
    claim_token: PreparedStatement,
    move_token: PreparedStatement,
    delete_token_of: PreparedStatement,
    insert_token_by_user: PreparedStatement,
    delete_token_by_user: PreparedStatement,
    tokens_of_users: PreparedStatement,
    settings_of: PreparedStatement,
    create_settings: PreparedStatement,
    swap_settings: PreparedStatement,
    settings_of_users: PreparedStatement,
    insert_job: PreparedStatement,
    jobs: PreparedStatement,
    delete_job: PreparedStatement,
    retry_job: PreparedStatement,
    count_jobs: PreparedStatement,
}

impl PushStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<PushStmts, String> {
        let p = |cql: String| prepare_statement(s, keyspace, cql);
        Ok(PushStmts {
            claim_sub: p("INSERT INTO push_subscriptions (endpoint, id, user_id, p256dh, auth, encoding, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            sub_by_endpoint: p("SELECT id, endpoint, user_id, p256dh, auth, encoding, created_at FROM push_subscriptions WHERE endpoint = ?".into()).await?,
            update_sub: p("UPDATE push_subscriptions SET user_id = ?, p256dh = ?, auth = ?, encoding = ? WHERE endpoint = ? IF EXISTS".into()).await?,
            delete_sub_of: p("DELETE FROM push_subscriptions WHERE endpoint = ? IF user_id = ?".into()).await?,
            insert_sub_by_user: p("INSERT INTO push_subscriptions_by_user (user_id, endpoint, id, p256dh, auth, encoding, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)".into()).await?,
            delete_sub_by_user: p("DELETE FROM push_subscriptions_by_user WHERE user_id = ? AND endpoint = ?".into()).await?,
            subs_of_users: p("SELECT id, endpoint, user_id, p256dh, auth, encoding, created_at FROM push_subscriptions_by_user WHERE user_id IN ?".into()).await?,
            token_owner: p("SELECT user_id FROM apns_tokens WHERE device_token = ?".into()).await?,
            claim_token: p("INSERT INTO apns_tokens (device_token, user_id, environment, created_at) VALUES (?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            move_token: p("UPDATE apns_tokens SET user_id = ?, environment = ? WHERE device_token = ? IF EXISTS".into()).await?,
            delete_token_of: p("DELETE FROM apns_tokens WHERE device_token = ? IF user_id = ?".into()).await?,
            insert_token_by_user: p("INSERT INTO apns_tokens_by_user (user_id, device_token, environment, created_at) VALUES (?, ?, ?, ?)".into()).await?,
            delete_token_by_user: p("DELETE FROM apns_tokens_by_user WHERE user_id = ? AND device_token = ?".into()).await?,
            settings_of: p("SELECT settings, version FROM notification_settings WHERE user_id = ?".into()).await?,
            create_settings: p("INSERT INTO notification_settings (user_id, settings, version) VALUES (?, ?, ?) IF NOT EXISTS".into()).await?,
            swap_settings: p("UPDATE notification_settings SET settings = ?, version = ? WHERE user_id = ? IF version = ?".into()).await?,
            settings_of_users: p("SELECT user_id, settings FROM notification_settings WHERE user_id IN ?".into()).await?,
            insert_job: p("INSERT INTO push_jobs (lane, id, body, due_at, attempts) VALUES (?, ?, ?, ?, ?)".into()).await?,
            jobs: p("SELECT id, body, due_at, attempts FROM push_jobs WHERE lane = ? LIMIT ?".into()).await?,
            delete_job: p("DELETE FROM push_jobs WHERE lane = ? AND id = ?".into()).await?,
            retry_job: p("UPDATE push_jobs SET due_at = ?, attempts = ? WHERE lane = ? AND id = ?".into()).await?,
            count_jobs: p("SELECT count(*) FROM push_jobs WHERE lane IN (0, 1)".into()).await?,
            tokens_of_users: p("SELECT device_token, user_id, environment, created_at FROM apns_tokens_by_user WHERE user_id IN ?".into()).await?,
        })
    }
}

type SubRow = (String, String, String, String, String, String, i64);

fn subscription(r: SubRow) -> WebPushSubscription {
    WebPushSubscription {
        id: r.0,
        endpoint: r.1,
        user_id: r.2,
        p256dh: r.3,
        auth: r.4,
        encoding: r.5,
        created_at: r.6,
    }
}

#[async_trait]
impl PushStore for ScyllaStore {
    async fn put_web_push(
        &self,
        sub: WebPushSubscription,
    ) -> StoreResult<(WebPushSubscription, bool)> {
        let st = &self.st.push;
        let claimed = self
            .lwt(
                &st.claim_sub,
                (
                    &sub.endpoint,
                    &sub.id,
                    &sub.user_id,
                    &sub.p256dh,
                    &sub.auth,
                    &sub.encoding,
                    sub.created_at,
                ),
            )
            .await?;
        let stored = if claimed {
            sub
        } else {
            let before = self
                .row::<SubRow>(&st.sub_by_endpoint, (&sub.endpoint,))
                .await?
                .map(subscription)
                .ok_or_else(|| unavailable("a subscription claim answered no holder"))?;
            let moved = self
                .lwt(
                    &st.update_sub,
                    (
                        &sub.user_id,
                        &sub.p256dh,
                        &sub.auth,
                        &sub.encoding,
                        &sub.endpoint,
                    ),
                )
                .await?;
            if !moved {
                return Err(unavailable("a subscription vanished while it was updated"));
            }
            if before.user_id != sub.user_id {
                self.write(&st.delete_sub_by_user, (&before.user_id, &sub.endpoint))
                    .await?;
            }
            WebPushSubscription {
                id: before.id,
                created_at: before.created_at,
                ..sub
            }
        };
        self.write(
            &st.insert_sub_by_user,
            (
                &stored.user_id,
                &stored.endpoint,
                &stored.id,
                &stored.p256dh,
                &stored.auth,
                &stored.encoding,
                stored.created_at,
            ),
        )
        .await?;
        Ok((stored, claimed))
    }

    async fn delete_web_push(&self, user_id: &str, endpoint: &str) -> StoreResult<bool> {
        let st = &self.st.push;
        let deleted = self.lwt(&st.delete_sub_of, (endpoint, user_id)).await?;
        self.write(&st.delete_sub_by_user, (user_id, endpoint))
            .await?;
        Ok(deleted)
    }

    async fn web_push_of(&self, user_ids: &[String]) -> StoreResult<Vec<WebPushSubscription>> {
        let mut out = Vec::new();
        for chunk in user_ids.chunks(USERS_PER_READ) {
            let rows = self
                .rows::<SubRow>(&self.st.push.subs_of_users, (chunk,))
                .await?;
            out.extend(rows.into_iter().map(subscription));
        }
        Ok(out)
    }

    async fn put_apns_token(&self, t: ApnsToken) -> StoreResult<bool> {
        let st = &self.st.push;
        let claimed = self
            .lwt(
                &st.claim_token,
                (&t.token, &t.user_id, &t.environment, t.created_at),
            )
            .await?;
        let before = if claimed {
            None
        } else {
            let owner = self
                .row::<(Option<String>,)>(&st.token_owner, (&t.token,))
                .await?
                .and_then(|(u,)| u);
            let moved = self
                .lwt(&st.move_token, (&t.user_id, &t.environment, &t.token))
                .await?;
            if !moved {
                return Err(unavailable("a token vanished while it was moved"));
            }
            owner
        };
        if let Some(old) = before.as_deref().filter(|old| *old != t.user_id) {
            self.write(&st.delete_token_by_user, (old, &t.token))
                .await?;
        }
        self.write(
            &st.insert_token_by_user,
            (&t.user_id, &t.token, &t.environment, t.created_at),
        )
        .await?;
        Ok(claimed)
    }

    async fn delete_apns_token(&self, user_id: &str, token: &str) -> StoreResult<bool> {
        let st = &self.st.push;
        let deleted = self.lwt(&st.delete_token_of, (token, user_id)).await?;
        self.write(&st.delete_token_by_user, (user_id, token))
            .await?;
        Ok(deleted)
    }

    async fn notification_settings(&self, user_id: &str) -> StoreResult<Option<(String, i64)>> {
        self.row::<(String, i64)>(&self.st.push.settings_of, (user_id,))
            .await
    }

    async fn put_notification_settings(
        &self,
        user_id: &str,
        settings: &str,
        version: i64,
        expected: Option<i64>,
    ) -> StoreResult<bool> {
        let st = &self.st.push;
        match expected {
            None => {
                self.lwt(&st.create_settings, (user_id, settings, version))
                    .await
            }
            Some(seen) => {
                self.lwt(&st.swap_settings, (settings, version, user_id, seen))
                    .await
            }
        }
    }

    async fn apns_tokens_of(&self, user_ids: &[String]) -> StoreResult<Vec<ApnsToken>> {
        let mut out = Vec::new();
        for chunk in user_ids.chunks(USERS_PER_READ) {
            let rows = self
                .rows::<(String, String, String, i64)>(&self.st.push.tokens_of_users, (chunk,))
                .await?;
            out.extend(rows.into_iter().map(|r| ApnsToken {
                token: r.0,
                user_id: r.1,
                environment: r.2,
                created_at: r.3,
            }));
        }
        Ok(out)
    }

    async fn notification_settings_of(
        &self,
        user_ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in user_ids.chunks(USERS_PER_READ) {
            out.extend(
                self.rows::<(String, String)>(&self.st.push.settings_of_users, (chunk,))
                    .await?,
            );
        }
        Ok(out)
    }

    async fn add_push_jobs(&self, jobs: &[PushJobRecord]) -> StoreResult<()> {
        let st = &self.st.push.insert_job;
        let writes = jobs.iter().map(|j| {
            self.write(
                st,
                (j.lane as i32, &j.id, &j.body, j.due_at, j.attempts as i32),
            )
        });
        for r in futures_util::future::join_all(writes).await {
            r?;
        }
        Ok(())
    }

    async fn due_push_jobs(
        &self,
        lane: u8,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<PushJobRecord>> {
        // A lane's partition is in id order; a bounded read finds the due ones.
        let rows = self
            .rows::<(String, String, i64, i32)>(&self.st.push.jobs, (lane as i32, MAX_JOBS_SCANNED))
            .await?;
        let mut due: Vec<PushJobRecord> = rows
            .into_iter()
            .filter(|r| r.2 <= now)
            .map(|(id, body, due_at, attempts)| PushJobRecord {
                id,
                body,
                due_at,
                attempts: attempts.max(0) as u32,
                lane,
            })
            .collect();
        due.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn finish_push_job(
        &self,
        lane: u8,
        id: &str,
        follow: &[PushJobRecord],
    ) -> StoreResult<()> {
        self.add_push_jobs(follow).await?;
        self.write(&self.st.push.delete_job, (lane as i32, id))
            .await
    }

    async fn retry_push_job(
        &self,
        lane: u8,
        id: &str,
        due_at: i64,
        attempts: u32,
    ) -> StoreResult<()> {
        self.write(
            &self.st.push.retry_job,
            (due_at, attempts as i32, lane as i32, id),
        )
        .await
    }

    async fn push_jobs_queued(&self) -> StoreResult<u64> {
        let n = self
            .row::<(i64,)>(&self.st.push.count_jobs, ())
            .await?
            .map_or(0, |r| r.0);
        Ok(n.max(0) as u64)
    }
}

/// Queued jobs read at most at once when looking for due ones.
const MAX_JOBS_SCANNED: i32 = 5000;
