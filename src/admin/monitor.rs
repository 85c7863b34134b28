//! Cluster status (ADM-5) and room monitoring (ADM-2), cluster-wide.
//!
//! Each node of a cluster publishes a report every [`REPORT_EVERY`] — its version, start,
//! readiness, sessions, room actors, memory, and its [`ActivityBoard`] — kept in Redis for
//! `REPORT_TTL`; an admin call on any node reads the reports of every live node (one round
//! trip) beside its own, measured at the call. A single node answers from itself.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::web;
use dovie_protocol::model::Room;
use serde::{Deserialize, Serialize};

use super::activity::{merge, RoomActivity};
use crate::config::{BusKind, StoreKind};
use crate::state::AppState;
use crate::store::StoreResult;

/// How often a cluster node publishes its report.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);
/// The key the store is probed with (CQL refuses empty keys).
const PROBE_KEY: &str = "dovie-readiness-probe";

/// When this node started (ms): the process's start, read once.
static STARTED_AT: LazyLock<i64> = LazyLock::new(|| {
    crate::metrics::process::start_time_secs()
        .map(|s| s * 1000)
        .unwrap_or_else(dovie_actors::now_ms)
});

/// One node as the status shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: String,
    pub version: String,
    pub started_at: i64,
    /// Serving: the store answered its last probe and the node is not draining.
    pub ready: bool,
    /// WebSocket sessions connected to the node.
    pub sessions: usize,
    /// Room actors the node runs.
    pub active_rooms: usize,
    /// Resident memory (bytes).
    pub rss_bytes: i64,
    /// When the node made this report (ms).
    pub reported_at: i64,
}

/// What a node publishes.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    node: NodeStatus,
    rooms: HashMap<String, RoomActivity>,
}

/// A backend's health.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `embedded` or `cql` (store); `local` or `redis` (bus).
    pub kind: &'static str,
    pub ok: bool,
    /// One round trip (a point read of the store; a PING of Redis), measured now.
    pub latency_ms: Option<f64>,
    /// Why it is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer of `GET /api/admin/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub nodes: Vec<NodeStatus>,
    pub store: Health,
    pub bus: Health,
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// A point read of the store, timed.
async fn probe_store(state: &AppState) -> Health {
    let started = Instant::now();
    let answer = state.store.user_by_id(PROBE_KEY).await;
    Health {
        kind: match state.config.store {
            StoreKind::Embedded => "embedded",
            StoreKind::Scylla => "cql",
        },
        ok: answer.is_ok(),
        latency_ms: answer.as_ref().ok().map(|_| millis(started.elapsed())),
        error: answer.err().map(|e| e.message),
    }
}

async fn probe_bus(state: &AppState) -> Health {
    match (&state.cluster, state.config.bus) {
        (Some(c), _) => {
            let ping = c.ping().await;
            Health {
                kind: "redis",
                ok: ping.is_ok(),
                latency_ms: ping.as_ref().ok().map(|d| millis(*d)),
                error: ping.err(),
            }
        }
        (None, BusKind::Local | BusKind::Redis) => Health {
            kind: "local",
            ok: true,
            latency_ms: None,
            error: None,
        },
    }
}

/// This node, now (`store_ok`: the store's last probe answered).
fn this_node(state: &AppState, store_ok: bool) -> NodeStatus {
    NodeStatus {
        node_id: state.config.node_id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: *STARTED_AT,
        ready: store_ok && !state.is_draining(),
        sessions: state.registry.session_count(),
        active_rooms: state.directory.active_count(),
        rss_bytes: crate::metrics::process::resident_bytes().unwrap_or(0),
        reported_at: dovie_actors::now_ms(),
    }
}

/// The reports of the other live nodes (none on a single node, or when Redis does not answer:
/// the bus health says so).
async fn other_reports(state: &AppState) -> Vec<Report> {
    let Some(cluster) = &state.cluster else {
        return Vec::new();
    };
    match cluster.reports().await {
        Ok(found) => found
            .into_iter()
            .filter(|(node, _)| *node != state.config.node_id)
            .filter_map(
                |(node, bytes)| match rmp_serde::from_slice::<Report>(&bytes) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(%node, error = %e, "unreadable node report");
                        None
                    }
                },
            )
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the nodes' reports");
            Vec::new()
        }
    }
}

/// Every live node, the store and the bus, measured now.
pub async fn status(state: &AppState) -> Status {
    let (store, bus, others) =
        futures_util::join!(probe_store(state), probe_bus(state), other_reports(state));
    let mut nodes = vec![this_node(state, store.ok)];
    nodes.extend(others.into_iter().map(|r| r.node));
    // A live node that has not reported yet (just joined) is there, not ready.
    let live = state
        .cluster
        .as_ref()
        .map(|c| c.live_nodes())
        .unwrap_or_default();
    for node in live {
        if !nodes.iter().any(|n| n.node_id == node) {
            nodes.push(NodeStatus {
                node_id: node,
                version: String::new(),
                started_at: 0,
                ready: false,
                sessions: 0,
                active_rooms: 0,
                rss_bytes: 0,
                reported_at: 0,
            });
        }
    }
    nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Status { nodes, store, bus }
}

/// The last hour of every room with messages in it, over every live node.
pub async fn activity(state: &AppState) -> HashMap<String, RoomActivity> {
    let now = dovie_actors::now_ms();
    let mine = state.extras.activity.snapshot(now);
    let others = other_reports(state).await;
    merge(std::iter::once(mine).chain(others.into_iter().map(|r| r.rooms)))
}

/// Publishes this node's report every [`REPORT_EVERY`] (cluster mode only).
pub fn spawn_reporter(state: web::Data<AppState>) {
    let Some(cluster) = state.cluster.clone() else {
        return;
    };
    actix_rt::spawn(async move {
        loop {
            let store_ok = state.store.user_by_id(PROBE_KEY).await.is_ok();
            let report = Report {
                node: this_node(&state, store_ok),
                rooms: state.extras.activity.snapshot(dovie_actors::now_ms()),
            };
            match rmp_serde::to_vec_named(&report) {
                Ok(bytes) => {
                    if let Err(e) = cluster.put_report(&bytes).await {
                        tracing::warn!(error = %e, "cannot publish this node's report");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode this node's report"),
            }
            tokio::time::sleep(REPORT_EVERY).await;
        }
    });
}

/// A room as monitoring shows it.
#[derive(Debug, Serialize)]
pub struct RoomStats {
    pub room: Room,
    pub member_count: usize,
    /// Members with a session on some live node.
    pub online_members: usize,
    pub messages_last_hour: u64,
    pub last_message_at: Option<i64>,
}

/// How many of `ids` are connected somewhere.
async fn online_count(state: &AppState, ids: &[String]) -> usize {
    match &state.cluster {
        Some(c) => c.online_users(ids).await.len(),
        None => ids.iter().filter(|id| state.registry.is_online(id)).count(),
    }
}

/// `room`'s figures; `activity` is the cluster's board (a room not on it had no message in the
/// last hour: its last message is read from the store).
pub async fn room_stats(
    state: &AppState,
    room: Room,
    activity: &HashMap<String, RoomActivity>,
) -> StoreResult<RoomStats> {
    let online = online_count(state, &room.member_ids).await;
    let (messages_last_hour, last_message_at) = match activity.get(&room.id) {
        Some(a) => (a.messages_last_hour, Some(a.last_message_at)),
        None => {
            let page = state.store.history(&room.id, None, None, 1).await?;
            (0, page.messages.last().map(|m| m.created_at))
        }
    };
    Ok(RoomStats {
        member_count: room.member_ids.len(),
        online_members: online,
        messages_last_hour,
        last_message_at,
        room,
    })
}
