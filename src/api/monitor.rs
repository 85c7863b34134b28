//! Monitoring over REST, for admins only: rooms with their live figures (ADM-2), the cluster's
//! status (ADM-5) and a node's recent log lines (ADM-3).

use actix_web::{web, HttpResponse};
use dovie_protocol::error::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use super::admin::admin_only;
use super::people::{page_limit, CURSOR_PARAM};
use super::{invalid, Api, ApiError, ApiResult, Authed, Out, QueryParam, RouteDoc};
use crate::admin::activity::RoomActivity;
use crate::admin::{logs, monitor};
use crate::state::AppState;

/// Log lines answered by default, and at most.
const DEFAULT_LOG_LINES: usize = 200;
const MAX_LOG_LINES: usize = logs::CAPACITY;

#[derive(Deserialize)]
struct RoomsQuery {
    sort: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// Where a room stands in the `activity` order: most messages in the last hour first, then
/// the latest message, then the id.
type Rank = (std::cmp::Reverse<u64>, std::cmp::Reverse<i64>, String);

fn rank(id: &str, a: &RoomActivity) -> Rank {
    (
        std::cmp::Reverse(a.messages_last_hour),
        std::cmp::Reverse(a.last_message_at),
        id.to_string(),
    )
}

fn activity_cursor(r: &Rank) -> String {
    format!("{}.{}.{}", r.0 .0, r.1 .0, r.2)
}

fn parse_activity_cursor(c: &str) -> Option<Rank> {
    let mut parts = c.splitn(3, '.');
    let count = parts.next()?.parse().ok()?;
    let at = parts.next()?.parse().ok()?;
    let id = parts.next()?.to_string();
    Some((std::cmp::Reverse(count), std::cmp::Reverse(at), id))
}

/// `GET /api/admin/rooms?sort=activity|id`: `activity` (the default) lists the rooms with a
/// message in the last hour on any node, busiest first; `id` lists every room.
async fn rooms(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<RoomsQuery>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let limit = page_limit(q.limit)?;
    let activity = monitor::activity(&state).await;
    let (ids, next) = match q.sort.as_deref().unwrap_or("activity") {
        "activity" => {
            let after = match q.cursor.as_deref() {
                None => None,
                Some(c) => Some(parse_activity_cursor(c).ok_or_else(|| invalid("bad cursor"))?),
            };
            let mut ranked: Vec<Rank> = activity
                .iter()
                .map(|(id, a)| rank(id, a))
                .filter(|r| after.as_ref().is_none_or(|after| r > after))
                .collect();
            ranked.sort();
            let next = (ranked.len() > limit).then(|| activity_cursor(&ranked[limit - 1]));
            ranked.truncate(limit);
            (ranked.into_iter().map(|r| r.2).collect::<Vec<_>>(), next)
        }
        "id" => {
            let ids = state.store.all_room_ids(q.cursor.as_deref(), limit).await?;
            let next = (ids.len() == limit).then(|| ids.last().cloned()).flatten();
            (ids, next)
        }
        _ => return Err(invalid("sort is activity or id")),
    };
    let found = state.store.rooms_by_ids(&ids).await?;
    let mut rooms = Vec::with_capacity(found.len());
    for room in found {
        rooms.push(monitor::room_stats(&state, room, &activity).await?);
    }
    Ok(out.ok(&json!({ "rooms": rooms, "next_cursor": next })))
}

/// `GET /api/admin/rooms/{id}`: one room's figures.
async fn room(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let room = state
        .store
        .get_room(&id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such room"))?;
    let activity = monitor::activity(&state).await;
    Ok(out.ok(&monitor::room_stats(&state, room, &activity).await?))
}

/// `GET /api/admin/status`: every live node, the store and the bus.
async fn status(state: web::Data<AppState>, out: Out, who: Authed) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    Ok(out.ok(&monitor::status(&state).await))
}

#[derive(Deserialize)]
struct LogsQuery {
    level: Option<String>,
    since: Option<i64>,
    limit: Option<u64>,
}

/// `GET /api/admin/logs?level=&since=&limit=`: this node's last log lines at `level` (default
/// `info`) or more severe, logged after `since` (ms), oldest first.
async fn logs(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<LogsQuery>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let level = match q.level.as_deref() {
        None => tracing::Level::INFO,
        Some(name) => logs::parse_level(name)
            .ok_or_else(|| invalid("level is error, warn, info, debug or trace"))?,
    };
    let limit = match q.limit {
        None => DEFAULT_LOG_LINES,
        Some(0) => return Err(invalid("limit must be at least 1")),
        Some(n) => (n.min(MAX_LOG_LINES as u64)) as usize,
    };
    let lines = logs::recent(level, q.since, limit);
    Ok(out.ok(&json!({ "node_id": state.config.node_id, "lines": lines })))
}

const SORT_PARAM: QueryParam = QueryParam {
    name: "sort",
    required: false,
    schema: r#"{"type": "string", "enum": ["activity", "id"], "description": "activity (default): rooms with a message in the last hour, busiest first; id: every room"}"#,
};
const LEVEL_PARAM: QueryParam = QueryParam {
    name: "level",
    required: false,
    schema: r#"{"type": "string", "enum": ["error", "warn", "info", "debug", "trace"], "description": "this level and more severe (default info)"}"#,
};
const SINCE_PARAM: QueryParam = QueryParam {
    name: "since",
    required: false,
    schema: r#"{"type": "integer", "minimum": 0, "maximum": 9007199254740991, "description": "only lines logged after this time (ms)"}"#,
};

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    const ROOMS_QUERY: [QueryParam; 3] = [SORT_PARAM, super::LIMIT_PARAM, CURSOR_PARAM];
    const LOGS_QUERY: [QueryParam; 3] = [LEVEL_PARAM, SINCE_PARAM, super::LIMIT_PARAM];
    api.route(
        r(
            "GET",
            "/api/admin/rooms",
            "Admins: rooms with member and online counts, messages in the last hour and last activity, cluster-wide",
            None,
            (200, Some("AdminRoomList")),
            &[400, 403],
            &ROOMS_QUERY,
        ),
        rooms,
    );
    api.route(
        r(
            "GET",
            "/api/admin/rooms/{id}",
            "Admins: one room's live figures",
            None,
            (200, Some("AdminRoom")),
            &[403, 404],
            &[],
        ),
        room,
    );
    api.route(
        r(
            "GET",
            "/api/admin/status",
            "Admins: every live node (version, start, readiness, sessions, rooms, memory), the store's and the bus's health",
            None,
            (200, Some("ClusterStatus")),
            &[403],
            &[],
        ),
        status,
    );
    api.route(
        r(
            "GET",
            "/api/admin/logs",
            "Admins: the answering node's recent log lines",
            None,
            (200, Some("LogLines")),
            &[400, 403],
            &LOGS_QUERY,
        ),
        logs,
    );
}
