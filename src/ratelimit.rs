//! Rate limits of the sensitive calls (login, social login, register, SMS send and verify):
//! fixed-window counters per rule and key (a client address, an account, a phone), decided on
//! the shared Redis counter in a cluster (`dovie:rl:<rule>:<window>:<key>`, INCR + EXPIRE), so
//! every node enforces one limit; on one node — or when Redis cannot answer — in memory. A
//! refused hit answers how long until the window ends (`Retry-After`). The per-user bucket of
//! every authenticated call is a [`crate::quota::Quota`] (decided without waiting, reconciled in
//! the background), since it sits on every request.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

use crate::cluster::RedisConn;

/// Local counters kept at most; past this, counters of ended windows are dropped.
const MAX_LOCAL_KEYS: usize = 100_000;

/// One limit: at most `limit` hits per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub limit: u64,
    pub window: Duration,
}

impl Rule {
    pub fn per_minute(name: &'static str, limit: u64) -> Rule {
        Rule {
            name,
            limit,
            window: Duration::from_secs(60),
        }
    }

    pub fn per_hour(name: &'static str, limit: u64) -> Rule {
        Rule {
            name,
            limit,
            window: Duration::from_secs(3600),
        }
    }

    fn window_ms(&self) -> i64 {
        (self.window.as_millis() as i64).max(1)
    }
}

/// A refused hit: try again in this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

/// Local counters: (rule, key) → (window, hits in it).
type Counters = HashMap<(&'static str, String), (i64, u64)>;

#[derive(Default)]
pub struct Limiter {
    local: Mutex<Counters>,
    shared: OnceLock<RedisConn>,
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter::default()
    }

    /// Decides on Redis from now on (cluster mode).
    pub fn share(&self, conn: RedisConn) {
        let _ = self.shared.set(conn);
    }

    /// Counts one hit of `key` under `rule`; `Err` when the window's limit is spent (the hit
    /// still counts, so hammering does not reopen the window early).
    pub async fn hit(&self, rule: Rule, key: &str) -> Result<(), Limited> {
        self.hit_at(rule, key, dovie_actors::now_ms()).await
    }

    async fn hit_at(&self, rule: Rule, key: &str, now: i64) -> Result<(), Limited> {
        let window = now / rule.window_ms();
        let count = match self.shared.get() {
            Some(conn) => match shared_count(conn, rule, key, window).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, rule = rule.name, "rate limit counter unreachable; counting locally");
                    self.local_count(rule, key, window)
                }
            },
            None => self.local_count(rule, key, window),
        };
        if count <= rule.limit {
            return Ok(());
        }
        let ends = (window + 1) * rule.window_ms();
        Err(Limited {
            retry_after_secs: ((ends - now + 999) / 1000).max(1) as u64,
        })
    }

    fn local_count(&self, rule: Rule, key: &str, window: i64) -> u64 {
        let mut local = self.local.lock();
        if local.len() >= MAX_LOCAL_KEYS {
            local.retain(|(name, _), (w, _)| {
                // Keep only counters whose window is still running for their own rule.
                *name != rule.name || *w >= window
            });
        }
        let entry = local
            .entry((rule.name, key.to_string()))
            .or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 += 1;
        entry.1
    }
}

async fn shared_count(
    conn: &RedisConn,
    rule: Rule,
    key: &str,
    window: i64,
) -> redis::RedisResult<u64> {
    // The key's hash tag keeps both commands on one slot of a Redis Cluster.
    let k = format!("dovie:rl:{{{}:{key}}}:{window}", rule.name);
    let mut pipe = redis::pipe();
    pipe.cmd("INCR").arg(&k);
    pipe.cmd("EXPIRE")
        .arg(&k)
        .arg(2 * rule.window.as_secs().max(1))
        .ignore();
    let (n,): (u64,) = conn.query(&pipe).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn a_window_admits_its_limit_then_answers_when_it_ends() {
        let l = Limiter::new();
        let rule = Rule::per_minute("t", 3);
        let t = 60_000 * 1000 + 15_000; // 15 s into a minute
        for _ in 0..3 {
            assert!(l.hit_at(rule, "k", t).await.is_ok());
        }
        assert_eq!(
            l.hit_at(rule, "k", t).await,
            Err(Limited {
                retry_after_secs: 45
            })
        );
        assert!(l.hit_at(rule, "other", t).await.is_ok(), "keys are apart");
        assert!(l.hit_at(rule, "k", t + 45_000).await.is_ok(), "next window");
    }
}
