//! The room directory: finds the actor of an active room, or starts one under a `Supervisor` on
//! one of the room arbiters (chosen by hashing the room id). In single-node mode every room is
//! owned here; the cluster directory (Redis) decides ownership across nodes on top of this.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use actix::{Addr, ArbiterHandle, Supervisor};
use parking_lot::Mutex;

use crate::ports::Ports;
use crate::registry::Registry;
use crate::room::RoomActor;

/// Active room actors of this node.
pub struct RoomDirectory {
    rooms: Mutex<HashMap<Arc<str>, Addr<RoomActor>>>,
    arbiters: Vec<ArbiterHandle>,
    ports: Ports,
    registry: Arc<Registry>,
}

impl RoomDirectory {
    /// `arbiters` run the room actors; empty means "the current arbiter".
    pub fn new(ports: Ports, registry: Arc<Registry>, arbiters: Vec<ArbiterHandle>) -> Arc<Self> {
        Arc::new(RoomDirectory {
            rooms: Mutex::new(HashMap::new()),
            arbiters,
            ports,
            registry,
        })
    }

    /// The actor of `room_id`, started (and loading from the store) if it was not active.
    pub fn room(self: &Arc<Self>, room_id: &str) -> Addr<RoomActor> {
        let mut rooms = self.rooms.lock();
        if let Some(addr) = rooms.get(room_id) {
            if addr.connected() {
                return addr.clone();
            }
        }
        let id: Arc<str> = Arc::from(room_id);
        let (ports, registry, dir, rid) = (
            self.ports.clone(),
            self.registry.clone(),
            self.clone(),
            id.clone(),
        );
        let make =
            move |_: &mut actix::Context<RoomActor>| RoomActor::new(rid, ports, registry, dir);
        let addr = match self.arbiter_for(room_id) {
            Some(arbiter) => Supervisor::start_in_arbiter(arbiter, make),
            None => Supervisor::start(make),
        };
        rooms.insert(id, addr.clone());
        addr
    }

    /// The actor of `room_id` if it is active, without starting one.
    pub fn active(&self, room_id: &str) -> Option<Addr<RoomActor>> {
        self.rooms
            .lock()
            .get(room_id)
            .filter(|a| a.connected())
            .cloned()
    }

    /// Forgets a room actor that passivates; only if `addr` is still the registered one.
    pub fn remove(&self, room_id: &str, addr: &Addr<RoomActor>) {
        let mut rooms = self.rooms.lock();
        if rooms.get(room_id) == Some(addr) {
            rooms.remove(room_id);
        }
    }

    pub fn active_count(&self) -> usize {
        self.rooms.lock().len()
    }

    /// Every active room actor, for drain.
    pub fn all(&self) -> Vec<Addr<RoomActor>> {
        self.rooms.lock().values().cloned().collect()
    }

    fn arbiter_for(&self, room_id: &str) -> Option<&ArbiterHandle> {
        if self.arbiters.is_empty() {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        room_id.hash(&mut h);
        let i = (h.finish() % self.arbiters.len() as u64) as usize;
        self.arbiters.get(i)
    }
}
