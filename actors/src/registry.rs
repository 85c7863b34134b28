//! The registry of live sessions on this node, by user and by login session. Room actors use it
//! to fan events out; logout uses it to kick a login session's sockets; drain uses it to close
//! everything. Reads (fan-out) take a shared lock and never await.
//!
//! Fan-out writes an event's encoded bytes straight into the session's socket outbox (a
//! [`SessionLink`]) — no actor hop per recipient — unless the session must see the event first:
//! while a `resume` replay is pending, or while earlier events still wait in its mailbox (so a
//! room's events never overtake each other).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use dovie_protocol::Codec;

use actix::Addr;
use parking_lot::RwLock;

use crate::event::Event;
use crate::ports::{Outlet, Telemetry};
use crate::session::{Deliver, Kick, SessionActor, TooSlow};

/// A session's socket as fan-out reaches it directly.
pub struct SessionLink {
    outlet: Arc<dyn Outlet + Sync>,
    codec: Codec,
    /// Rooms whose `resume` replay is pending: their events must pass through the session.
    pub(crate) holding: AtomicUsize,
    /// Events sent through the session's mailbox and not yet written.
    pub(crate) queued: AtomicUsize,
    /// The outbox overflowed once: the session is closing (4008).
    overflowed: AtomicBool,
}

impl SessionLink {
    pub fn new(outlet: Arc<dyn Outlet + Sync>, codec: Codec) -> Arc<SessionLink> {
        Arc::new(SessionLink {
            outlet,
            codec,
            holding: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
        })
    }

    /// Several events of one room, in order: one outbox write when they can go direct (else
    /// through the session's mailbox, which counts them when it writes them). Answers whether
    /// they went direct.
    fn deliver_batch(&self, events: &[Arc<Event>], addr: &Addr<SessionActor>) -> bool {
        if self.holding.load(Ordering::SeqCst) > 0 || self.queued.load(Ordering::SeqCst) > 0 {
            for e in events {
                self.queued.fetch_add(1, Ordering::SeqCst);
                addr.do_send(Deliver(e.clone()));
            }
            return false;
        }
        let mut frames = events.iter().map(|e| e.bytes(self.codec));
        if self.outlet.send_batch(&mut frames).is_err() {
            if !self.overflowed.swap(true, Ordering::SeqCst) {
                addr.do_send(TooSlow);
            }
            return false;
        }
        true
    }
}

#[derive(Clone)]
struct Entry {
    conn_id: u64,
    auth_session_id: Arc<str>,
    addr: Addr<SessionActor>,
    link: Arc<SessionLink>,
}

/// Live sessions by user id. User ids are the node's own (UUIDs it generated), so the map
/// uses a fast hasher: fan-out looks a user up once per recipient.
pub struct Registry {
    by_user: RwLock<HashMap<Arc<str>, Vec<Entry>, foldhash::fast::RandomState>>,
    /// Whom each local user blocked (only users who blocked someone): their sessions get no
    /// event of those users. Loaded when a user's first session here registers, kept current by
    /// the blocks API (on every node).
    blocks: RwLock<HashMap<Arc<str>, HashSet<Arc<str>>>>,
    /// Whether `blocks` holds anyone (the fan-out skips its lock when not).
    any_blocks: AtomicBool,
    telemetry: Arc<dyn Telemetry>,
}

impl Registry {
    pub fn new(telemetry: Arc<dyn Telemetry>) -> Arc<Registry> {
        Arc::new(Registry {
            by_user: RwLock::new(HashMap::default()),
            blocks: RwLock::new(HashMap::new()),
            any_blocks: AtomicBool::new(false),
            telemetry,
        })
    }

    /// Counts what one fan-out handed over directly, and when it finished for each message.
    fn delivered(&self, events: &[Arc<Event>], direct: u64, reached_anyone: bool) {
        for e in events {
            if direct > 0 {
                self.telemetry.events_delivered(e.t, direct);
            }
            if let (true, Some(origin)) = (reached_anyone, e.origin) {
                self.telemetry.send_delivered(origin.elapsed());
            }
        }
    }

    /// Adds a session; returns true if it is the user's first (the user came online).
    pub fn register(
        &self,
        user_id: Arc<str>,
        conn_id: u64,
        auth_session_id: Arc<str>,
        addr: Addr<SessionActor>,
        link: Arc<SessionLink>,
    ) -> bool {
        let mut map = self.by_user.write();
        let list = map.entry(user_id).or_default();
        list.push(Entry {
            conn_id,
            auth_session_id,
            addr,
            link,
        });
        list.len() == 1
    }

    /// Removes a session; returns true if it was the user's last (the user went offline).
    pub fn unregister(&self, user_id: &str, conn_id: u64) -> bool {
        let mut map = self.by_user.write();
        let Some(list) = map.get_mut(user_id) else {
            return false;
        };
        let before = list.len();
        list.retain(|e| e.conn_id != conn_id);
        let removed = list.len() < before;
        if list.is_empty() {
            map.remove(user_id);
            drop(map);
            self.set_blocks(user_id, Vec::new());
            return removed;
        }
        false
    }

    /// Records whom a local user blocked (replacing what was known).
    pub fn set_blocks(&self, user_id: &str, blocked: Vec<String>) {
        let mut blocks = self.blocks.write();
        if blocked.is_empty() {
            blocks.remove(user_id);
        } else {
            blocks.insert(
                Arc::from(user_id),
                blocked.iter().map(|b| Arc::from(b.as_str())).collect(),
            );
        }
        self.any_blocks.store(!blocks.is_empty(), Ordering::SeqCst);
    }

    /// `user_id` blocked (`on`) or unblocked `other`; kept only while the user has sessions here.
    pub fn block_changed(&self, user_id: &str, other: &str, on: bool) {
        if !self.is_online(user_id) {
            return;
        }
        let mut blocks = self.blocks.write();
        if on {
            blocks
                .entry(Arc::from(user_id))
                .or_default()
                .insert(Arc::from(other));
        } else if let Some(set) = blocks.get_mut(user_id) {
            set.remove(other);
            if set.is_empty() {
                blocks.remove(user_id);
            }
        }
        self.any_blocks.store(!blocks.is_empty(), Ordering::SeqCst);
    }

    /// Whether `recipient` blocked whoever caused `event`.
    fn blocked_for(
        blocks: Option<&HashMap<Arc<str>, HashSet<Arc<str>>>>,
        recipient: &str,
        event: &Event,
    ) -> bool {
        match (blocks, event.actor.as_deref()) {
            (Some(b), Some(actor)) => b.get(recipient).is_some_and(|s| s.contains(actor)),
            _ => false,
        }
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        self.by_user.read().contains_key(user_id)
    }

    /// Delivers an event to every session of a user (skipping what the event says to skip).
    pub fn deliver_to_user(&self, user_id: &str, event: &Arc<Event>) {
        self.deliver_to_users([user_id], event);
    }

    /// Delivers an event to every session of every listed user (one read lock for all).
    pub fn deliver_to_users<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
        event: &Arc<Event>,
    ) {
        let skip = event.skip_user.as_deref();
        let (mut direct, mut reached) = (0u64, false);
        {
            let blocks = self
                .any_blocks
                .load(Ordering::Relaxed)
                .then(|| self.blocks.read());
            let map = self.by_user.read();
            for user_id in users {
                if skip == Some(user_id) || Self::blocked_for(blocks.as_deref(), user_id, event) {
                    continue;
                }
                if let Some(list) = map.get(user_id) {
                    for e in list {
                        reached = true;
                        direct +=
                            u64::from(e.link.deliver_batch(std::slice::from_ref(event), &e.addr));
                    }
                }
            }
        }
        self.delivered(std::slice::from_ref(event), direct, reached);
    }

    /// Delivers a room's events (in order, none skipping anyone) to every session of every
    /// listed user: each session gets them in one outbox write.
    pub fn deliver_batch_to_users<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
        events: &[Arc<Event>],
    ) {
        let filtered =
            self.any_blocks.load(Ordering::Relaxed) && events.iter().any(|e| e.actor.is_some());
        if filtered || events.iter().any(|e| e.skip_user.is_some()) {
            let users: Vec<&str> = users.into_iter().collect();
            for e in events {
                self.deliver_to_users(users.iter().copied(), e);
            }
            return;
        }
        let (mut direct, mut reached) = (0u64, false);
        {
            let map = self.by_user.read();
            for user_id in users {
                if let Some(list) = map.get(user_id) {
                    for e in list {
                        reached = true;
                        direct += u64::from(e.link.deliver_batch(events, &e.addr));
                    }
                }
            }
        }
        self.delivered(events, direct, reached);
    }

    /// Kicks every socket of a login session (logout): `force_logout`, then close 4003.
    pub fn kick_auth_session(&self, auth_session_id: &str, reason: &str) -> usize {
        let map = self.by_user.read();
        let mut n = 0;
        for e in map.values().flatten() {
            if &*e.auth_session_id == auth_session_id {
                e.addr.do_send(Kick::logout(reason));
                n += 1;
            }
        }
        n
    }

    /// Every live session, for drain.
    pub fn all(&self) -> Vec<Addr<SessionActor>> {
        self.by_user
            .read()
            .values()
            .flatten()
            .map(|e| e.addr.clone())
            .collect()
    }

    pub fn session_count(&self) -> usize {
        self.by_user.read().values().map(Vec::len).sum()
    }
}

/// The single-node fanout: this node's sessions are everyone's sessions.
#[async_trait::async_trait]
impl crate::ports::Fanout for Registry {
    fn room_event(&self, _room_id: &str, audience: &[String], event: Arc<Event>) {
        self.deliver_to_users(audience.iter().map(String::as_str), &event);
    }

    fn room_events(&self, _room_id: &str, audience: &[String], events: &[Arc<Event>]) {
        match events {
            [] => {}
            [one] => self.deliver_to_users(audience.iter().map(String::as_str), one),
            _ => self.deliver_batch_to_users(audience.iter().map(String::as_str), events),
        }
    }

    fn user_event(&self, audience: &[String], event: Arc<Event>) {
        self.deliver_to_users(audience.iter().map(String::as_str), &event);
    }
}
