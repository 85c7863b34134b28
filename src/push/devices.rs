//! Who has somewhere to be pushed to (a Web Push subscription or an APNs token), cached: the
//! room's hot path asks this before queueing anything, so rooms whose members have no devices —
//! most of a load test, many bots — never touch the queue. Entries live [`TTL`]; a change of a
//! user's devices (here, or on another node: the cluster's broadcast) forgets the entry at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::store::SharedStore;

/// How long an answer is trusted without a change notice.
pub const TTL: Duration = Duration::from_secs(60);
/// Entries kept at most (the cache starts over when full).
const MAX_ENTRIES: usize = 200_000;

pub struct Devices {
    store: SharedStore,
    known: RwLock<HashMap<String, (bool, Instant)>>,
}

impl Devices {
    pub fn new(store: SharedStore) -> Devices {
        Devices {
            store,
            known: RwLock::new(HashMap::new()),
        }
    }

    /// Whether one of `users` has a device, if the cache knows (`None`: it must be asked).
    pub fn cached_any<'a>(&self, users: impl Iterator<Item = &'a String>) -> Option<bool> {
        let known = self.known.read();
        let mut unknown = false;
        for u in users {
            match known.get(u) {
                Some((true, at)) if at.elapsed() < TTL => return Some(true),
                Some((false, at)) if at.elapsed() < TTL => {}
                _ => unknown = true,
            }
        }
        (!unknown).then_some(false)
    }

    /// Whether one of `users` has a device (the store asked for those the cache does not know).
    pub async fn any(&self, users: &[String]) -> bool {
        let missing: Vec<String> = {
            let known = self.known.read();
            let mut missing = Vec::new();
            for u in users {
                match known.get(u) {
                    Some((true, at)) if at.elapsed() < TTL => return true,
                    Some((false, at)) if at.elapsed() < TTL => {}
                    _ => missing.push(u.clone()),
                }
            }
            missing
        };
        if missing.is_empty() {
            return false;
        }
        let (subs, tokens) = tokio::join!(
            self.store.web_push_of(&missing),
            self.store.apns_tokens_of(&missing)
        );
        let (Ok(subs), Ok(tokens)) = (subs, tokens) else {
            // Unknown: queue the job (the pipeline reads the devices again, and retries).
            return true;
        };
        let with: std::collections::HashSet<&str> = subs
            .iter()
            .map(|s| s.user_id.as_str())
            .chain(tokens.iter().map(|t| t.user_id.as_str()))
            .collect();
        let now = Instant::now();
        let mut known = self.known.write();
        if known.len() + missing.len() > MAX_ENTRIES {
            known.clear();
        }
        for u in &missing {
            known.insert(u.clone(), (with.contains(u.as_str()), now));
        }
        !with.is_empty()
    }

    /// `user`'s devices changed.
    pub fn forget(&self, user: &str) {
        self.known.write().remove(user);
    }
}
