//! Who has somewhere to be pushed to (a Web Push subscription or an APNs token), cached: the
//! room's hot path asks this before queueing anything, so rooms whose members have no devices —
//! most of a load test, many bots — never touch the queue. Entries live [`TTL`]; a change of a
//! user's devices (here, or on another node: the cluster's broadcast) forgets the entry at once.
//! A user not known is looked up once however many messages ask meanwhile: later askers wait
//! for that lookup instead of starting their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::Notify;

use crate::store::SharedStore;

/// How long an answer is trusted without a change notice.
pub const TTL: Duration = Duration::from_secs(60);
/// Entries kept at most (the cache starts over when full).
const MAX_ENTRIES: usize = 200_000;

enum Entry {
    Known(bool, Instant),
    /// Being looked up; woken when the answer is in.
    Asked(Arc<Notify>),
}

pub struct Devices {
    store: SharedStore,
    known: RwLock<HashMap<String, Entry>>,
}

/// What the cache says of a set of users.
enum Seen {
    Some,
    None,
    /// Users to look up, and lookups of others to wait for.
    Unknown(Vec<String>, Vec<Arc<Notify>>),
}

impl Devices {
    pub fn new(store: SharedStore) -> Devices {
        Devices {
            store,
            known: RwLock::new(HashMap::new()),
        }
    }

    fn seen<'a>(&self, users: impl Iterator<Item = &'a String>) -> Seen {
        let known = self.known.read();
        let (mut missing, mut waits) = (Vec::new(), Vec::new());
        for u in users {
            match known.get(u) {
                Some(Entry::Known(true, at)) if at.elapsed() < TTL => return Seen::Some,
                Some(Entry::Known(false, at)) if at.elapsed() < TTL => {}
                Some(Entry::Asked(n)) => waits.push(n.clone()),
                _ => missing.push(u.clone()),
            }
        }
        if missing.is_empty() && waits.is_empty() {
            Seen::None
        } else {
            Seen::Unknown(missing, waits)
        }
    }

    /// Whether one of `users` has a device, if the cache knows (`None`: it must be asked).
    pub fn cached_any<'a>(&self, users: impl Iterator<Item = &'a String>) -> Option<bool> {
        match self.seen(users) {
            Seen::Some => Some(true),
            Seen::None => Some(false),
            Seen::Unknown(..) => None,
        }
    }

    /// Whether one of `users` has a device (the store asked for those nobody is asking about).
    pub async fn any(&self, users: &[String]) -> bool {
        // Bounded: each round either answers, or waits for lookups that end.
        for _ in 0..3 {
            let (missing, waits) = match self.seen(users.iter()) {
                Seen::Some => return true,
                Seen::None => return false,
                Seen::Unknown(missing, waits) => (missing, waits),
            };
            // Created before the lookups can end, so none of their wake-ups is missed.
            let waiting: Vec<_> = waits.iter().map(|n| n.notified()).collect();
            if !missing.is_empty() && self.look_up(missing).await {
                return true;
            }
            futures_util::future::join_all(waiting).await;
        }
        // Still unknown (the store did not answer): queue the job; the pipeline reads again.
        true
    }

    /// Looks `users` up (those another lookup took over meanwhile are left to it); whether one
    /// of them has a device.
    async fn look_up(&self, users: Vec<String>) -> bool {
        let notify = Arc::new(Notify::new());
        let mine: Vec<String> = {
            let mut known = self.known.write();
            if known.len() + users.len() > MAX_ENTRIES {
                known.clear();
            }
            let mut mine = Vec::with_capacity(users.len());
            for u in users {
                if !matches!(known.get(&u), Some(Entry::Asked(_))) {
                    known.insert(u.clone(), Entry::Asked(notify.clone()));
                    mine.push(u);
                }
            }
            mine
        };
        if mine.is_empty() {
            return false;
        }
        let (subs, tokens) = tokio::join!(
            self.store.web_push_of(&mine),
            self.store.apns_tokens_of(&mine)
        );
        let found = match (subs, tokens) {
            (Ok(subs), Ok(tokens)) => {
                let with: std::collections::HashSet<&str> = subs
                    .iter()
                    .map(|s| s.user_id.as_str())
                    .chain(tokens.iter().map(|t| t.user_id.as_str()))
                    .collect();
                let now = Instant::now();
                let mut known = self.known.write();
                for u in &mine {
                    // Not if the user's devices changed meanwhile (`forget`): what was read may
                    // be from before the change.
                    if matches!(known.get(u), Some(Entry::Asked(n)) if Arc::ptr_eq(n, &notify)) {
                        known.insert(u.clone(), Entry::Known(with.contains(u.as_str()), now));
                    }
                }
                !with.is_empty()
            }
            _ => {
                // Unknown: forget the claim so the next asker tries again; this one queues.
                let mut known = self.known.write();
                for u in &mine {
                    if matches!(known.get(u), Some(Entry::Asked(n)) if Arc::ptr_eq(n, &notify)) {
                        known.remove(u);
                    }
                }
                true
            }
        };
        notify.notify_waiters();
        found
    }

    /// `user`'s devices changed (a lookup under way for them keeps its answer to itself).
    pub fn forget(&self, user: &str) {
        self.known.write().remove(user);
    }
}
