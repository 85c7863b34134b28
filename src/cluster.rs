//! Cluster mode over Redis: membership leases, room ownership by rendezvous hashing over the live
//! nodes, room commands forwarded to the owner and answered back, each room event published once
//! on the room's channel (one subscription per node, counted by the node's local members), and
//! broadcasts for membership changes, presence and token revocation.
//!
//! Lifecycle: `start` registers the node's lease and reads the live set before the node serves;
//! three tasks run until the process ends — the lease keeper (renews every [`LEASE_RENEW`]; a
//! node that cannot renew within [`LEASE_TTL`] stops owning rooms: fail-stop), the publisher (one
//! connection, pipelined, in order) and the subscriber (reconnects and resubscribes on its own
//! after a Redis restart; what was missed meanwhile is recovered by clients' `resume`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dovie_actors::remote::{dispatch, AnswerFn, Placement, RoomAnswer, RoomCall, WireEvent};
use dovie_actors::{Event, Fanout, Registry, RoomDirectory};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::auth::AuthService;
use crate::store::SharedStore;

/// A node's lease lasts this long without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the lease is renewed and the live set read.
pub const LEASE_RENEW: Duration = Duration::from_millis(1000);
/// A forwarded command not answered within this is answered `unavailable` (the client retries
/// with the same nonce, so a late success on the owner is not sent twice).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often unanswered forwarded commands are looked for (independent of Redis).
const CALL_SWEEP: Duration = Duration::from_millis(250);
/// A Redis command not answered within this fails (Redis restarting or unreachable), so no
/// caller waits on a connection that is being re-established.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
const NODES_KEY: &str = "dovie:nodes";
const BROADCAST: &str = "dovie:bcast";
const MAX_PIPELINE: usize = 512;

fn inbox(node: &str) -> String {
    format!("dovie:inbox:{node}")
}

/// A node's report; the `{reports}` hash tag puts every node's in one Redis Cluster slot.
fn report_key(node: &str) -> String {
    format!("dovie:{{reports}}:{node}")
}

/// A node's report outlives its last publication by this much.
pub const REPORT_TTL: Duration = Duration::from_secs(10);

fn room_channel(room_id: &str) -> String {
    format!("dovie:room:{room_id}")
}

fn now_ms() -> i64 {
    dovie_actors::now_ms()
}

/// The owner of `room` among `nodes` (rendezvous hashing), as every node computes it.
pub fn owner_of<'a>(nodes: &'a [String], room: &str) -> Option<&'a String> {
    nodes.iter().max_by_key(|n| hrw(n, room))
}

/// Rendezvous (highest random weight) score of a node for a room: FNV-1a over both ids, so
/// every node of any build computes the same owner.
fn hrw(node: &str, room: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0u8]).chain(room.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Finalize (splitmix) so nearby inputs spread.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The command connection: one Redis server (reconnecting manager), or a Redis Cluster — then
/// pub/sub is sharded (SPUBLISH/SSUBSCRIBE: a channel lives on the shard of its slot).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Runs a pipeline whose keys all live in one slot (every pipeline here does).
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        let answer = match self {
            RedisConn::Single(c) => {
                tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async(&mut c.clone())).await
            }
            RedisConn::Cluster(c) => {
                tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async(&mut c.clone())).await
            }
        };
        answer.unwrap_or_else(|_| {
            Err(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "Redis did not answer in time")
                    .into(),
            )
        })
    }

    fn sharded(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

/// What travels on the bus (MessagePack).
#[derive(Debug, Serialize, Deserialize)]
enum BusMsg {
    Call {
        from: String,
        req: u64,
        room_id: String,
        call: RoomCall,
    },
    Answer {
        req: u64,
        answer: Result<RoomAnswer, ErrorBody>,
    },
    Event {
        audience: Vec<String>,
        event: WireEvent,
    },
    Membership {
        room_id: String,
        joined: Vec<String>,
        left: Vec<String>,
    },
    Revoke {
        session_id: String,
    },
    Block {
        user_id: String,
        other: String,
        on: bool,
    },
    /// A user's push devices changed.
    Devices {
        user_id: String,
    },
}

enum SubCmd {
    Subscribe(String),
    Unsubscribe(String),
}

struct PendingCall {
    owner: String,
    at: Instant,
    answer: AnswerFn,
}

/// Which rooms this node follows, for which of its local users.
#[derive(Default)]
struct LocalSubs {
    room_users: HashMap<String, HashSet<String>>,
    user_rooms: HashMap<String, HashSet<String>>,
}

pub struct Cluster {
    node_id: String,
    conn: RedisConn,
    live: RwLock<Vec<String>>,
    /// Until when this node's lease is known to hold (ms since the epoch).
    lease_until: AtomicI64,
    pending: Mutex<HashMap<u64, PendingCall>>,
    next_req: AtomicU64,
    out: mpsc::UnboundedSender<(String, Vec<u8>)>,
    subs_tx: mpsc::UnboundedSender<SubCmd>,
    subs: Mutex<LocalSubs>,
    registry: Arc<Registry>,
    directory: OnceLock<Arc<RoomDirectory>>,
    devices: OnceLock<Arc<crate::push::devices::Devices>>,
    auth: Arc<AuthService>,
    store: SharedStore,
}

impl Cluster {
    /// Connects, takes this node's lease, reads the live set, and starts the bus tasks.
    pub async fn start(
        url: &str,
        node_id: &str,
        registry: Arc<Registry>,
        auth: Arc<AuthService>,
        store: SharedStore,
    ) -> Result<Arc<Cluster>, String> {
        if url.is_empty() {
            return Err("--bus redis needs --redis URL".into());
        }
        // Several URLs: the seed nodes of a Redis Cluster.
        let seeds: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let (push_tx, push_rx) = mpsc::unbounded_channel::<redis::PushInfo>();
        let (conn, single_client) = if seeds.len() > 1 {
            let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push_tx)
                .build()
                .map_err(|e| format!("redis cluster {url}: {e}"))?;
            let conn = tokio::time::timeout(Duration::from_secs(10), client.get_async_connection())
                .await
                .map_err(|_| format!("cannot reach the Redis Cluster at {url} within 10 s"))?
                .map_err(|e| format!("cannot connect to the Redis Cluster at {url}: {e}"))?;
            (RedisConn::Cluster(conn), None)
        } else {
            let client = redis::Client::open(url).map_err(|e| format!("redis URL {url}: {e}"))?;
            let conn =
                tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
                    .await
                    .map_err(|_| format!("cannot reach Redis at {url} within 10 s"))?
                    .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
            (RedisConn::Single(conn), Some(client))
        };
        let (out, out_rx) = mpsc::unbounded_channel();
        let (subs_tx, subs_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            node_id: node_id.to_string(),
            conn,
            live: RwLock::new(Vec::new()),
            lease_until: AtomicI64::new(0),
            pending: Mutex::new(HashMap::new()),
            next_req: AtomicU64::new(1),
            out,
            subs_tx,
            subs: Mutex::new(LocalSubs::default()),
            registry,
            directory: OnceLock::new(),
            devices: OnceLock::new(),
            auth,
            store,
        });
        cluster
            .renew()
            .await
            .map_err(|e| format!("cannot register the node in Redis: {e}"))?;
        actix_rt::spawn(cluster.clone().publisher(out_rx));
        match single_client {
            Some(client) => actix_rt::spawn(cluster.clone().subscriber(client, subs_rx)),
            None => actix_rt::spawn(cluster.clone().sharded_subscriber(push_rx, subs_rx)),
        };
        actix_rt::spawn(cluster.clone().lease_keeper());
        actix_rt::spawn(cluster.clone().call_sweeper());
        tracing::info!(node = %node_id, live = ?cluster.live.read(), "joined the cluster");
        Ok(cluster)
    }

    /// Hands the cluster the room directory (created after the ports that hold the cluster).
    pub fn set_directory(&self, directory: Arc<RoomDirectory>) {
        let _ = self.directory.set(directory);
    }

    fn is_live(&self) -> bool {
        now_ms() < self.lease_until.load(Ordering::Relaxed)
    }

    /// A handle on the command connection (shared counters use it).
    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    /// The nodes holding a lease, as last read.
    pub fn live_nodes(&self) -> Vec<String> {
        self.live.read().clone()
    }

    /// Whether this node is the one the live set places `key` on (rendezvous hashing, as rooms
    /// are placed): work every node could do is done by one, and by another once it is gone.
    pub fn places_here(&self, key: &str) -> bool {
        let live = self.live.read();
        owner_of(&live, key).is_none_or(|owner| *owner == self.node_id)
    }

    /// Renews the lease, drops expired ones, reads the live set; true if the set changed.
    async fn renew(&self) -> Result<bool, String> {
        let now = now_ms();
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(NODES_KEY)
            .arg(now + LEASE_TTL.as_millis() as i64)
            .arg(&self.node_id)
            .cmd("ZREMRANGEBYSCORE")
            .arg(NODES_KEY)
            .arg("-inf")
            .arg(now)
            .cmd("ZRANGE")
            .arg(NODES_KEY)
            .arg(0)
            .arg(-1);
        let (_, _, mut live): ((), (), Vec<String>) =
            self.conn.query(&pipe).await.map_err(|e| e.to_string())?;
        self.lease_until
            .store(now + LEASE_TTL.as_millis() as i64, Ordering::Relaxed);
        live.sort();
        let mut current = self.live.write();
        let changed = *current != live;
        *current = live;
        Ok(changed)
    }

    /// Leaves the live set at once (drain), so the other nodes take the rooms over.
    pub async fn leave(&self) {
        self.lease_until.store(0, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM").arg(NODES_KEY).arg(&self.node_id).ignore();
        let _: Result<(), _> = self.conn.query(&pipe).await;
        self.live.write().retain(|n| n != &self.node_id);
    }

    async fn lease_keeper(self: Arc<Self>) {
        let mut was_live = true;
        loop {
            tokio::time::sleep(LEASE_RENEW).await;
            if self.lease_until.load(Ordering::Relaxed) == 0 {
                return; // left the cluster (drain)
            }
            match self.renew().await {
                Ok(true) => {
                    tracing::info!(live = ?self.live.read(), "cluster membership changed");
                    self.on_membership_change();
                }
                Ok(false) => {}
                Err(e) => {
                    // Our view of the cluster may be stale (Redis restarted or unreachable):
                    // rooms here reload and re-claim before serving again.
                    tracing::warn!(error = %e, "cannot renew the node lease");
                    self.on_membership_change();
                }
            }
            let live = self.is_live();
            if was_live && !live {
                tracing::error!(
                    "node lease lost: no longer owning rooms until Redis answers again"
                );
                self.on_membership_change();
            } else if !was_live && live {
                tracing::info!("node lease renewed: owning rooms again");
            }
            was_live = live;
        }
    }

    /// Answers forwarded commands whose owner stayed silent, on its own clock: a renewal
    /// stuck on an unreachable Redis must not hold those answers back.
    async fn call_sweeper(self: Arc<Self>) {
        loop {
            tokio::time::sleep(CALL_SWEEP).await;
            if self.lease_until.load(Ordering::Relaxed) == 0 && self.pending.lock().is_empty() {
                return; // left the cluster and nothing is waiting
            }
            self.expire_calls();
        }
    }

    fn on_membership_change(&self) {
        if let Some(dir) = self.directory.get() {
            let moved = dir.relinquish_moved();
            if moved > 0 {
                tracing::info!(rooms = moved, "handing rooms over to their new owners");
            }
        }
        // Calls waiting on a node that left will not be answered.
        let live: HashSet<String> = self.live.read().iter().cloned().collect();
        let gone: Vec<PendingCall> = {
            let mut pending = self.pending.lock();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| !live.contains(&p.owner))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
        for p in gone {
            (p.answer)(Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "the room's node left; retry",
            )));
        }
    }

    fn expire_calls(&self) {
        let expired: Vec<PendingCall> = {
            let mut pending = self.pending.lock();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| p.at.elapsed() > CALL_TIMEOUT)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
        for p in expired {
            (p.answer)(Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "the room's node did not answer; retry",
            )));
        }
    }

    fn publish(&self, channel: String, msg: &BusMsg) {
        match rmp_serde::to_vec_named(msg) {
            Ok(bytes) => {
                let _ = self.out.send((channel, bytes));
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a bus message"),
        }
    }

    /// Publishes in order: on one server, pipelining whatever is queued on one connection; on a
    /// Redis Cluster, one SPUBLISH at a time (each to its channel's shard), in queue order.
    async fn publisher(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
        let sharded = self.conn.sharded();
        let verb = if sharded { "SPUBLISH" } else { "PUBLISH" };
        while let Some((channel, bytes)) = rx.recv().await {
            let mut pipe = redis::pipe();
            pipe.cmd(verb).arg(channel).arg(bytes).ignore();
            let mut n = 1;
            while n < MAX_PIPELINE && !sharded {
                match rx.try_recv() {
                    Ok((c, b)) => {
                        pipe.cmd(verb).arg(c).arg(b).ignore();
                        n += 1;
                    }
                    Err(_) => break,
                }
            }
            if let Err(e) = self.conn.query::<()>(&pipe).await {
                // Lost events are recovered by clients' resume; lost calls time out.
                tracing::warn!(error = %e, messages = n, "cannot publish to Redis");
            }
        }
    }

    /// On a Redis Cluster: sharded subscriptions on the cluster connection (which resubscribes
    /// by itself after reconnecting); messages arrive as RESP3 pushes.
    async fn sharded_subscriber(
        self: Arc<Self>,
        mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
        mut cmds: mpsc::UnboundedReceiver<SubCmd>,
    ) {
        let RedisConn::Cluster(conn) = self.conn.clone() else {
            return;
        };
        let mut conn = conn;
        for ch in [inbox(&self.node_id), BROADCAST.to_string()] {
            let mut backoff = Duration::from_millis(100);
            while let Err(e) = conn.ssubscribe(&ch).await {
                tracing::warn!(error = %e, channel = %ch, "cannot subscribe; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        tracing::info!("subscribed to the cluster bus (sharded)");
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(SubCmd::Subscribe(ch)) => { let _ = conn.ssubscribe(&ch).await; }
                    Some(SubCmd::Unsubscribe(ch)) => { let _ = conn.sunsubscribe(&ch).await; }
                    None => return,
                },
                push = pushes.recv() => match push {
                    Some(p) if matches!(p.kind, redis::PushKind::SMessage | redis::PushKind::Message) => {
                        if let Some(redis::Value::BulkString(payload)) = p.data.get(1) {
                            self.on_message(payload);
                        }
                    }
                    Some(_) => {}
                    None => return,
                },
            }
        }
    }

    /// Subscribes to this node's inbox, the broadcast channel and the followed rooms; reconnects
    /// and resubscribes whenever the connection drops.
    async fn subscriber(
        self: Arc<Self>,
        client: redis::Client,
        mut cmds: mpsc::UnboundedReceiver<SubCmd>,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let pubsub = match client.get_async_pubsub().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the Redis subscription; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            let (mut sink, mut stream) = pubsub.split();
            let mut channels = vec![inbox(&self.node_id), BROADCAST.to_string()];
            channels.extend(self.subs.lock().room_users.keys().map(|r| room_channel(r)));
            if let Err(e) = sink.subscribe(channels).await {
                tracing::warn!(error = %e, "cannot subscribe; retrying");
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(100);
            tracing::info!("subscribed to the cluster bus");
            loop {
                tokio::select! {
                    cmd = cmds.recv() => match cmd {
                        Some(SubCmd::Subscribe(ch)) => { let _ = sink.subscribe(ch).await; }
                        Some(SubCmd::Unsubscribe(ch)) => { let _ = sink.unsubscribe(ch).await; }
                        None => return,
                    },
                    msg = stream.next() => match msg {
                        Some(m) => self.on_message(m.get_payload_bytes()),
                        None => break,
                    },
                }
            }
            tracing::warn!("lost the Redis subscription; reconnecting");
        }
    }

    fn on_message(self: &Arc<Self>, bytes: &[u8]) {
        let msg: BusMsg = match rmp_serde::from_slice(bytes) {
            Ok(m) => m,
            Err(e) => return tracing::warn!(error = %e, "undecodable bus message"),
        };
        match msg {
            BusMsg::Call {
                from,
                req,
                room_id,
                call,
            } => {
                let Some(dir) = self.directory.get() else {
                    return;
                };
                let me = self.clone();
                dispatch(
                    dir,
                    &room_id,
                    call,
                    Box::new(move |answer| {
                        me.publish(inbox(&from), &BusMsg::Answer { req, answer })
                    }),
                );
            }
            BusMsg::Answer { req, answer } => {
                let pending = self.pending.lock().remove(&req);
                if let Some(p) = pending {
                    (p.answer)(answer);
                }
            }
            BusMsg::Event { audience, event } => {
                if let Some(e) = Event::from_wire(event) {
                    self.registry
                        .deliver_to_users(audience.iter().map(String::as_str), &Arc::new(e));
                }
            }
            BusMsg::Membership {
                room_id,
                joined,
                left,
            } => {
                for u in joined.iter().filter(|u| self.registry.is_online(u)) {
                    self.follow(&room_id, u);
                }
                for u in &left {
                    self.unfollow(&room_id, u);
                }
            }
            BusMsg::Revoke { session_id } => {
                self.auth.revoke_local(&session_id);
                self.registry.kick_auth_session(&session_id, "logged out");
            }
            BusMsg::Block { user_id, other, on } => {
                self.registry.block_changed(&user_id, &other, on);
            }
            BusMsg::Devices { user_id } => {
                if let Some(d) = self.devices.get() {
                    d.forget(&user_id);
                }
            }
        }
    }

    /// Starts following a room for a local user (subscribing on the first one).
    fn follow(&self, room_id: &str, user_id: &str) {
        let mut subs = self.subs.lock();
        let users = subs.room_users.entry(room_id.to_string()).or_default();
        let first = users.is_empty();
        users.insert(user_id.to_string());
        subs.user_rooms
            .entry(user_id.to_string())
            .or_default()
            .insert(room_id.to_string());
        if first {
            let _ = self.subs_tx.send(SubCmd::Subscribe(room_channel(room_id)));
        }
    }

    fn unfollow(&self, room_id: &str, user_id: &str) {
        let mut subs = self.subs.lock();
        if let Some(rooms) = subs.user_rooms.get_mut(user_id) {
            rooms.remove(room_id);
        }
        if let Some(users) = subs.room_users.get_mut(room_id) {
            users.remove(user_id);
            if users.is_empty() {
                subs.room_users.remove(room_id);
                let _ = self
                    .subs_tx
                    .send(SubCmd::Unsubscribe(room_channel(room_id)));
            }
        }
    }

    /// Adds `delta` to this node's session count for the user (`dovie:presence:<user>`, one
    /// field per node) and answers how many sessions the *other* live nodes hold: 0 means this
    /// node's change is the user's first or last one anywhere. Unreachable Redis: 0 (announce).
    async fn count_presence(&self, user_id: &str, delta: i64) -> i64 {
        let key = format!("dovie:presence:{user_id}");
        let mut pipe = redis::pipe();
        pipe.cmd("HINCRBY")
            .arg(&key)
            .arg(&self.node_id)
            .arg(delta)
            .cmd("HGETALL")
            .arg(&key);
        let res: Result<((), HashMap<String, i64>), _> = self.conn.query(&pipe).await;
        let Ok((_, counts)) = res else { return 0 };
        let live: HashSet<String> = self.live.read().iter().cloned().collect();
        counts
            .into_iter()
            .filter(|(node, n)| *node != self.node_id && live.contains(node) && *n > 0)
            .map(|(_, n)| n)
            .sum()
    }

    /// Which of `ids` hold a session on some live node (`dovie:presence:<user>` counts).
    /// Unreachable Redis: none.
    pub async fn online_users(&self, ids: &[String]) -> HashSet<String> {
        let live: HashSet<String> = self.live.read().iter().cloned().collect();
        let counts = futures_util::future::join_all(ids.iter().map(|id| async move {
            let mut pipe = redis::pipe();
            pipe.cmd("HGETALL").arg(format!("dovie:presence:{id}"));
            let res: Result<(HashMap<String, i64>,), _> = self.conn.query(&pipe).await;
            (id, res.map(|(c,)| c).unwrap_or_default())
        }))
        .await;
        counts
            .into_iter()
            .filter(|(_, c)| c.iter().any(|(node, n)| *n > 0 && live.contains(node)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Publishes this node's report (status and room activity, see `admin::monitor`), kept
    /// for [`REPORT_TTL`]: a node that stops reporting drops out of the status by itself.
    pub async fn put_report(&self, report: &[u8]) -> Result<(), String> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(report_key(&self.node_id))
            .arg(report)
            .arg("PX")
            .arg(REPORT_TTL.as_millis() as u64)
            .ignore();
        self.conn
            .query::<()>(&pipe)
            .await
            .map_err(|e| e.to_string())
    }

    /// The last report of every live node that has one (keys share one slot: one round trip).
    pub async fn reports(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let live = self.live_nodes();
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for node in &live {
            pipe.cmd("GET").arg(report_key(node));
        }
        let found: Vec<Option<Vec<u8>>> =
            self.conn.query(&pipe).await.map_err(|e| e.to_string())?;
        Ok(live
            .into_iter()
            .zip(found)
            .filter_map(|(node, r)| r.map(|r| (node, r)))
            .collect())
    }

    /// How long a PING to Redis takes.
    pub async fn ping(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        let _: (String,) = self.conn.query(&pipe).await.map_err(|e| e.to_string())?;
        Ok(started.elapsed())
    }

    /// A user blocked or unblocked another: every node's fan-out learns it.
    pub fn block_changed(&self, user_id: &str, other: &str, on: bool) {
        self.publish(
            BROADCAST.to_string(),
            &BusMsg::Block {
                user_id: user_id.to_string(),
                other: other.to_string(),
                on,
            },
        );
    }

    /// A user's push devices changed: every node forgets what it knew of them.
    pub fn devices_changed(&self, user_id: &str) {
        self.publish(
            BROADCAST.to_string(),
            &BusMsg::Devices {
                user_id: user_id.to_string(),
            },
        );
    }

    /// Hands the cluster the node's cache of who has push devices.
    pub fn set_devices(&self, devices: Arc<crate::push::devices::Devices>) {
        let _ = self.devices.set(devices);
    }

    /// A room's members changed (REST, on any node): every node follows it for its local users.
    pub fn membership_changed(&self, room_id: &str, joined: Vec<String>, left: Vec<String>) {
        let msg = BusMsg::Membership {
            room_id: room_id.to_string(),
            joined,
            left,
        };
        self.publish(BROADCAST.to_string(), &msg);
    }

    /// A login session was revoked: every node drops its tokens and closes its sockets.
    pub fn revoke(&self, session_id: &str) {
        self.publish(
            BROADCAST.to_string(),
            &BusMsg::Revoke {
                session_id: session_id.to_string(),
            },
        );
    }
}

impl Placement for Cluster {
    fn remote_owner(&self, room_id: &str) -> Option<String> {
        let live = self.live.read();
        let me_live = self.is_live();
        let owner = live
            .iter()
            .filter(|n| me_live || **n != self.node_id)
            .max_by_key(|n| hrw(n, room_id));
        match owner {
            Some(o) if *o == self.node_id => None,
            Some(o) => Some(o.clone()),
            None => Some(String::new()),
        }
    }

    fn call(&self, owner: &str, room_id: &str, call: RoomCall, answer: AnswerFn) {
        if owner.is_empty() {
            return answer(Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "no node can own rooms right now; retry",
            )));
        }
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(
            req,
            PendingCall {
                owner: owner.to_string(),
                at: Instant::now(),
                answer,
            },
        );
        let msg = BusMsg::Call {
            from: self.node_id.clone(),
            req,
            room_id: room_id.to_string(),
            call,
        };
        self.publish(inbox(owner), &msg);
    }
}

#[async_trait::async_trait]
impl Fanout for Cluster {
    fn room_event(&self, room_id: &str, audience: &[String], event: Arc<Event>) {
        let msg = BusMsg::Event {
            audience: audience.to_vec(),
            event: event.to_wire(),
        };
        self.publish(room_channel(room_id), &msg);
    }

    fn user_event(&self, audience: &[String], event: Arc<Event>) {
        let msg = BusMsg::Event {
            audience: audience.to_vec(),
            event: event.to_wire(),
        };
        self.publish(BROADCAST.to_string(), &msg);
    }

    async fn local_user_online(&self, user_id: &str) -> bool {
        match self.store.room_ids_of(user_id).await {
            // The user may have left meanwhile.
            Ok(rooms) if self.registry.is_online(user_id) => {
                for r in rooms {
                    self.follow(&r, user_id);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "cannot read the user's rooms"),
        }
        self.count_presence(user_id, 1).await == 0
    }

    async fn local_user_offline(&self, user_id: &str) -> bool {
        let rooms: Vec<String> = self
            .subs
            .lock()
            .user_rooms
            .remove(user_id)
            .map(|r| r.into_iter().collect())
            .unwrap_or_default();
        for r in rooms {
            self.unfollow(&r, user_id);
        }
        self.count_presence(user_id, -1).await == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_owner_is_stable_and_spread() {
        let nodes = ["n1", "n2", "n3"];
        let owner = |room: &str| *nodes.iter().max_by_key(|n| hrw(n, room)).unwrap_or(&"");
        let mut counts = HashMap::new();
        for i in 0..3000 {
            let room = format!("room-{i}");
            *counts.entry(owner(&room)).or_insert(0) += 1;
            assert_eq!(owner(&room), owner(&room));
        }
        for n in nodes {
            let c = counts.get(n).copied().unwrap_or(0);
            assert!((700..1300).contains(&c), "{n} owns {c} of 3000");
        }
        // Removing a node moves only that node's rooms.
        let two = ["n1", "n2"];
        for i in 0..300 {
            let room = format!("room-{i}");
            let before = owner(&room);
            let after = *two.iter().max_by_key(|n| hrw(n, &room)).unwrap_or(&"");
            if before != "n3" {
                assert_eq!(before, after);
            }
        }
    }
}
