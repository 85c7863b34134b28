//! The registry of live sessions on this node, by user and by login session. Room actors use it
//! to fan events out; logout uses it to kick a login session's sockets; drain uses it to close
//! everything. Reads (fan-out) take a shared lock and never await.

use std::collections::HashMap;
use std::sync::Arc;

use actix::Addr;
use parking_lot::RwLock;

use crate::event::Event;
use crate::session::{Deliver, Kick, SessionActor};

#[derive(Clone)]
struct Entry {
    conn_id: u64,
    auth_session_id: Arc<str>,
    addr: Addr<SessionActor>,
}

/// Live sessions by user id.
#[derive(Default)]
pub struct Registry {
    by_user: RwLock<HashMap<Arc<str>, Vec<Entry>>>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// Adds a session; returns true if it is the user's first (the user came online).
    pub fn register(
        &self,
        user_id: Arc<str>,
        conn_id: u64,
        auth_session_id: Arc<str>,
        addr: Addr<SessionActor>,
    ) -> bool {
        let mut map = self.by_user.write();
        let list = map.entry(user_id).or_default();
        list.push(Entry {
            conn_id,
            auth_session_id,
            addr,
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
            return removed;
        }
        false
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        self.by_user.read().contains_key(user_id)
    }

    /// Delivers an event to every session of a user (skipping what the event says to skip).
    pub fn deliver_to_user(&self, user_id: &str, event: &Arc<Event>) {
        if event.skip_user.as_deref() == Some(user_id) {
            return;
        }
        let map = self.by_user.read();
        if let Some(list) = map.get(user_id) {
            for e in list {
                e.addr.do_send(Deliver(event.clone()));
            }
        }
    }

    /// Delivers an event to every session of every listed user.
    pub fn deliver_to_users<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
        event: &Arc<Event>,
    ) {
        for u in users {
            self.deliver_to_user(u, event);
        }
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

    fn user_event(&self, audience: &[String], event: Arc<Event>) {
        self.deliver_to_users(audience.iter().map(String::as_str), &event);
    }
}
