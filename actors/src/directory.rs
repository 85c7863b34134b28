//! The room directory: finds the actor of a room this node owns, or starts one under a
//! `Supervisor` on one of the room arbiters (chosen by hashing the room id). With a
//! [`Placement`] (cluster mode) a room owned by another node is reached through a
//! [`RoomHandle::Remote`] instead; when ownership moves, [`RoomDirectory::relinquish_moved`]
//! hands this node's rooms over.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use actix::{Addr, ArbiterHandle, Handler, Supervisor};
use parking_lot::{Mutex, RwLock};

use crate::ports::Ports;
use crate::remote::{Placement, Remotable};
use crate::room::{Leave, RoomActor};

/// Where a room command goes: the local actor, or the owner node.
pub enum RoomHandle {
    Local(Addr<RoomActor>),
    Remote {
        owner: String,
        room_id: String,
        placement: Arc<dyn Placement>,
    },
}

impl RoomHandle {
    /// Sends without waiting; the message's responder carries the answer.
    pub fn do_send<M>(&self, msg: M)
    where
        M: Remotable,
        RoomActor: Handler<M>,
    {
        match self {
            RoomHandle::Local(addr) => addr.do_send(msg),
            RoomHandle::Remote {
                owner,
                room_id,
                placement,
            } => {
                let (call, answer) = msg.into_call();
                placement.call(owner, room_id, call, answer);
            }
        }
    }
}

/// Active room actors of this node.
pub struct RoomDirectory {
    rooms: Mutex<HashMap<Arc<str>, Addr<RoomActor>>>,
    arbiters: Vec<ArbiterHandle>,
    ports: Ports,
    placement: RwLock<Option<Arc<dyn Placement>>>,
}

impl RoomDirectory {
    /// `arbiters` run the room actors; empty means "the current arbiter".
    pub fn new(ports: Ports, arbiters: Vec<ArbiterHandle>) -> Arc<Self> {
        Arc::new(RoomDirectory {
            rooms: Mutex::new(HashMap::new()),
            arbiters,
            ports,
            placement: RwLock::new(None),
        })
    }

    /// Puts the directory in cluster mode: rooms owned elsewhere are reached through `placement`.
    pub fn set_placement(&self, placement: Arc<dyn Placement>) {
        *self.placement.write() = Some(placement);
    }

    /// Where commands for `room_id` go.
    pub fn room(self: &Arc<Self>, room_id: &str) -> RoomHandle {
        let placement = self.placement.read().clone();
        if let Some(p) = placement {
            if let Some(owner) = p.remote_owner(room_id) {
                return RoomHandle::Remote {
                    owner,
                    room_id: room_id.to_string(),
                    placement: p,
                };
            }
        }
        RoomHandle::Local(self.local(room_id))
    }

    /// The local actor of a room this node owns (started if needed); `None` if another node
    /// owns it.
    pub fn owned(self: &Arc<Self>, room_id: &str) -> Option<Addr<RoomActor>> {
        let placement = self.placement.read().clone();
        if placement.is_some_and(|p| p.remote_owner(room_id).is_some()) {
            return None;
        }
        Some(self.local(room_id))
    }

    fn local(self: &Arc<Self>, room_id: &str) -> Addr<RoomActor> {
        let mut rooms = self.rooms.lock();
        if let Some(addr) = rooms.get(room_id) {
            if addr.connected() {
                return addr.clone();
            }
        }
        tracing::debug!(room = %room_id, "starting a room actor");
        let id: Arc<str> = Arc::from(room_id);
        let (ports, dir, rid) = (self.ports.clone(), self.clone(), id.clone());
        let make = move |_: &mut actix::Context<RoomActor>| RoomActor::new(rid, ports, dir);
        let addr = match self.arbiter_for(room_id) {
            Some(arbiter) => Supervisor::start_in_arbiter(arbiter, make),
            None => Supervisor::start(make),
        };
        rooms.insert(id, addr.clone());
        addr
    }

    /// The actor of `room_id` if it is active here, without starting one.
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

    /// After the live set changed: every local room finishes its writes in flight and hands
    /// over; the next command starts a fresh owner — here or on the new owner — which claims
    /// the room again and reloads it from the store. Rooms that stay here reload too, because
    /// while the views of the nodes differed another node may have owned and written them.
    pub fn relinquish_moved(&self) -> usize {
        if self.placement.read().is_none() {
            return 0;
        }
        let moved: Vec<Addr<RoomActor>> = self.rooms.lock().values().cloned().collect();
        for a in &moved {
            a.do_send(Leave);
        }
        moved.len()
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
