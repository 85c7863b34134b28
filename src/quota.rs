//! Per-user send quotas: at most `limits.user_sends_per_minute` messages per user per minute,
//! whatever the device or node. Decisions never wait: on one node a fixed-window counter; in a
//! cluster each node counts locally and, every [`SYNC_EVERY`], adds its counts to the shared
//! Redis counter of the window (`dovie:quota:<window>:<user>`) and reads the total back — at once
//! when a user is first counted in a window — so a user spread over several nodes is held to
//! about the same quota (a node may overshoot by what it admitted before it heard the total).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dovie_actors::SendQuota;
use parking_lot::Mutex;

use crate::cluster::RedisConn;

/// How often a cluster node reconciles with the shared counters.
pub const SYNC_EVERY: Duration = Duration::from_millis(250);
const WINDOW_MS: i64 = 60_000;

fn window_now() -> i64 {
    dovie_actors::now_ms() / WINDOW_MS
}

#[derive(Default, Clone, Copy)]
struct Count {
    /// The window these counts belong to.
    window: i64,
    /// Sends admitted here and not yet added to the shared counter.
    unsynced: u64,
    /// The shared total as last read (includes what this node synced).
    shared: u64,
}

/// A fixed-window quota, local or shared through Redis.
pub struct Quota {
    /// Names the shared counters: `dovie:<name>:<window>:<user>`.
    name: &'static str,
    limit: u64,
    counts: Mutex<HashMap<String, Count>>,
    /// Woken when a user is first counted in a window: reconcile at once, not at the next tick.
    wake: tokio::sync::Notify,
}

impl Quota {
    pub fn new(limit_per_minute: u64) -> Arc<Quota> {
        Quota::named("quota", limit_per_minute)
    }

    /// A quota of its own counters (the per-user REST bucket is `api`).
    pub fn named(name: &'static str, limit_per_minute: u64) -> Arc<Quota> {
        Arc::new(Quota {
            name,
            limit: limit_per_minute,
            counts: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Starts reconciling with Redis (cluster mode).
    pub fn share(self: &Arc<Self>, conn: RedisConn) {
        let me = self.clone();
        actix_rt::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(SYNC_EVERY) => {}
                    _ = me.wake.notified() => {}
                }
                me.sync(&conn).await;
            }
        });
    }

    async fn sync(&self, conn: &RedisConn) {
        let window = window_now();
        let batch: Vec<(String, u64)> = {
            let mut counts = self.counts.lock();
            counts.retain(|_, c| c.window == window);
            counts
                .iter_mut()
                .map(|(u, c)| {
                    let n = std::mem::take(&mut c.unsynced);
                    (u.clone(), n)
                })
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        // One pipeline per user (its key's slot), all at once.
        let totals = futures_util::future::join_all(batch.iter().map(|(user, n)| {
            let key = format!("dovie:{}:{window}:{user}", self.name);
            let mut pipe = redis::pipe();
            pipe.cmd("INCRBY").arg(&key).arg(*n);
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(2 * WINDOW_MS / 1000)
                .ignore();
            async move { conn.query::<(u64,)>(&pipe).await.map(|(t,)| t) }
        }))
        .await;
        match totals.into_iter().collect::<Result<Vec<u64>, _>>() {
            Ok(totals) => {
                let mut counts = self.counts.lock();
                for ((user, _), total) in batch.iter().zip(totals) {
                    if let Some(c) = counts.get_mut(user) {
                        if c.window == window {
                            c.shared = c.shared.max(total);
                        }
                    }
                }
            }
            Err(e) => {
                // Keep counting locally; put the counts back for the next try.
                tracing::warn!(error = %e, "cannot sync send quotas");
                let mut counts = self.counts.lock();
                for (user, n) in batch {
                    if let Some(c) = counts.get_mut(&user) {
                        if c.window == window {
                            c.unsynced += n;
                        }
                    }
                }
            }
        }
    }
}

/// Seconds until the current quota window ends (a refused caller's `Retry-After`).
pub fn retry_after_secs() -> u64 {
    let now = dovie_actors::now_ms();
    let ends = (now / WINDOW_MS + 1) * WINDOW_MS;
    ((ends - now + 999) / 1000).max(1) as u64
}

impl SendQuota for Quota {
    fn allow_send(&self, user_id: &str) -> bool {
        let window = window_now();
        let mut counts = self.counts.lock();
        let c = counts.entry(user_id.to_string()).or_default();
        if c.window != window {
            *c = Count {
                window,
                ..Count::default()
            };
            // First send of this user here in this window: learn the shared count now.
            self.wake.notify_one();
        }
        if c.shared + c.unsynced >= self.limit {
            return false;
        }
        c.unsynced += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_admits_up_to_its_limit_per_user() {
        let q = Quota::new(3);
        assert!((0..3).all(|_| q.allow_send("u")));
        assert!(!q.allow_send("u"), "the fourth send in a minute is refused");
        assert!(q.allow_send("v"), "users are counted apart");
    }
}
