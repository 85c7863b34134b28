//! Which rooms users have on screen (WS `active`, PUSH-5), counted per node: this node's
//! sessions in memory, and in a cluster also in Redis (`dovie:active:<node>`, a hash of
//! `room|user` → sessions), written in order by one task. A reader asks every live node's hash;
//! a dead node's entries are ignored (its lease is gone) and cleared when it starts again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dovie_actors::ports::Activity;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::cluster::{Cluster, RedisConn};

fn key(node: &str) -> String {
    format!("dovie:active:{node}")
}

fn field(room: &str, user: &str) -> String {
    format!("{room}|{user}")
}

pub struct ActiveRooms {
    /// (room, user) → this node's sessions showing it.
    local: Mutex<HashMap<(String, String), u32>>,
    shared: Option<Shared>,
}

struct Shared {
    cluster: Arc<Cluster>,
    conn: RedisConn,
    node: String,
    /// (field, sessions) to write, in order.
    writes: mpsc::UnboundedSender<(String, u32)>,
}

impl ActiveRooms {
    /// Local counting only (one node).
    pub fn local() -> Arc<ActiveRooms> {
        Arc::new(ActiveRooms {
            local: Mutex::new(HashMap::new()),
            shared: None,
        })
    }

    /// Counting shared through Redis; clears what an earlier run of this node left.
    pub async fn shared(cluster: Arc<Cluster>, node: &str) -> Arc<ActiveRooms> {
        let conn = cluster.connection();
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(key(node)).ignore();
        if let Err(e) = conn.query::<()>(&pipe).await {
            tracing::warn!(error = %e, "cannot clear this node's active rooms");
        }
        let (writes, rx) = mpsc::unbounded_channel();
        actix_rt::spawn(writer(conn.clone(), key(node), rx));
        Arc::new(ActiveRooms {
            local: Mutex::new(HashMap::new()),
            shared: Some(Shared {
                cluster,
                conn,
                node: node.to_string(),
                writes,
            }),
        })
    }

    fn count(&self, room: &str, user: &str, delta: i32) {
        let n = {
            let mut local = self.local.lock();
            let k = (room.to_string(), user.to_string());
            let n = local
                .get(&k)
                .copied()
                .unwrap_or(0)
                .saturating_add_signed(delta);
            if n == 0 {
                local.remove(&k);
            } else {
                local.insert(k, n);
            }
            n
        };
        if let Some(s) = &self.shared {
            let _ = s.writes.send((field(room, user), n));
        }
    }

    /// Those of `users` with `room` on screen in some session, on any live node.
    pub async fn among(&self, room: &str, users: &[String]) -> HashSet<String> {
        let mut on: HashSet<String> = {
            let local = self.local.lock();
            users
                .iter()
                .filter(|u| local.contains_key(&(room.to_string(), (*u).clone())))
                .cloned()
                .collect()
        };
        let Some(s) = &self.shared else { return on };
        let fields: Vec<String> = users.iter().map(|u| field(room, u)).collect();
        if fields.is_empty() {
            return on;
        }
        for node in s.cluster.live_nodes().into_iter().filter(|n| *n != s.node) {
            let mut pipe = redis::pipe();
            pipe.cmd("HMGET").arg(key(&node)).arg(&fields);
            match s.conn.query::<(Vec<Option<u32>>,)>(&pipe).await {
                Ok((counts,)) => {
                    for (u, c) in users.iter().zip(counts) {
                        if c.unwrap_or(0) > 0 {
                            on.insert(u.clone());
                        }
                    }
                }
                // Unknown: pushing to someone who may be looking beats silencing them.
                Err(e) => tracing::warn!(node, error = %e, "cannot read a node's active rooms"),
            }
        }
        on
    }
}

impl Activity for ActiveRooms {
    fn active_changed(&self, user_id: &str, from: Option<&str>, to: Option<&str>) {
        if let Some(room) = from {
            self.count(room, user_id, -1);
        }
        if let Some(room) = to {
            self.count(room, user_id, 1);
        }
    }
}

/// Applies this node's changes to its hash, in order.
async fn writer(conn: RedisConn, key: String, mut rx: mpsc::UnboundedReceiver<(String, u32)>) {
    while let Some((field, n)) = rx.recv().await {
        let mut pipe = redis::pipe();
        if n == 0 {
            pipe.cmd("HDEL").arg(&key).arg(&field).ignore();
        } else {
            pipe.cmd("HSET").arg(&key).arg(&field).arg(n).ignore();
        }
        if let Err(e) = conn.query::<()>(&pipe).await {
            tracing::warn!(error = %e, "cannot record an active room");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn sessions_are_counted_per_room_and_user() {
        let a = ActiveRooms::local();
        let users = vec!["u1".to_string(), "u2".to_string()];
        a.active_changed("u1", None, Some("r1"));
        a.active_changed("u1", None, Some("r1"));
        assert_eq!(
            a.among("r1", &users).await,
            HashSet::from(["u1".to_string()])
        );
        a.active_changed("u1", Some("r1"), Some("r2"));
        assert!(
            a.among("r1", &users).await.contains("u1"),
            "one session still shows r1"
        );
        a.active_changed("u1", Some("r1"), None);
        assert!(a.among("r1", &users).await.is_empty());
        assert!(a.among("r2", &users).await.contains("u1"));
    }
}
