//! Location over REST (LOC-1..6): location messages and live shares, share requests, "nearby"
//! people, location rooms, and my location history. The rules live in `crate::geo`; every call
//! checks membership and blocks here, as the rest of the API does. Live moves arrive over the
//! socket (`location_update`, handled by `crate::geo::Geo::move_share`).

use std::collections::HashSet;
use std::time::Instant;

use actix_web::{web, HttpResponse};
use dovie_actors::ports::Draft;
use dovie_actors::room::{self, Responder};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::events as ev;
use dovie_protocol::model::{MessageKind, Role, Room, RoomType};
use serde::Deserialize;
use serde_json::{json, Value};

use super::people::{next_cursor, page_limit, CURSOR_PARAM};
use super::rooms::{member_room, notify, notify_created};
use super::{
    invalid, Api, ApiError, ApiResult, Authed, Body, Out, QueryParam, RouteDoc, LIMIT_PARAM,
};
use crate::geo::{self, cells};
use crate::ratelimit::Rule;
use crate::state::AppState;
use crate::store::{Created, LocationRoom, LocationShare, ShareRequest};

/// Share requests one user may send a minute.
const REQUESTS_PER_MINUTE: u64 = 10;
/// "Nearby" and room searches one user may make a minute.
const SEARCHES_PER_MINUTE: u64 = 60;
const MAX_ROOM_NAME_CHARS: usize = 100;

#[derive(Deserialize)]
struct LocationBody {
    lat: f64,
    lon: f64,
    #[serde(default)]
    accuracy_m: Option<f64>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    live_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct Position {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct SearchQuery {
    lat: f64,
    lon: f64,
    #[serde(default)]
    radius_m: Option<f64>,
}

#[derive(Deserialize)]
struct RequestBody {
    user_id: String,
}

#[derive(Deserialize)]
struct CreateLocationRoom {
    name: String,
    lat: f64,
    lon: f64,
    radius_m: f64,
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A location room as clients see it: the room and its place.
fn room_json(room: &Room, place: &LocationRoom) -> Value {
    let mut v = json!(room);
    v["location"] = json!({ "lat": place.lat, "lon": place.lon, "radius_m": place.radius_m });
    v
}

/// Users `me` blocked or who blocked `me`.
async fn blocked_either_way(state: &AppState, me: &str) -> ApiResult<HashSet<String>> {
    Ok(crate::people::blocked_either_way(&state.store, me).await?)
}

/// `POST /api/chat-rooms/{id}/location`: a location message, and with `live_seconds` a live share.
async fn share_location(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<LocationBody>,
) -> ApiResult<HttpResponse> {
    geo::check_position(b.lat, b.lon)?;
    geo::check_extras(b.accuracy_m, None)?;
    let label = geo::check_label(b.label)?;
    let cfg = &state.geo.config;
    if let Some(s) = b.live_seconds {
        if !(cfg.min_live_seconds..=cfg.max_live_seconds).contains(&s) {
            return Err(invalid(format!(
                "live_seconds must be from {} to {}",
                cfg.min_live_seconds, cfg.max_live_seconds
            )));
        }
    }
    if !state.ports.quota.allow_send(&who.user_id) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many messages; slow down",
        ));
    }
    member_room(&state, &id, &who.user_id).await?;
    let now = dovie_actors::now_ms();
    let message_id = uuid::Uuid::now_v7().to_string();
    let share = b.live_seconds.map(|secs| LocationShare {
        id: uuid::Uuid::now_v7().to_string(),
        room_id: id.to_string(),
        user_id: who.user_id.clone(),
        message_id: Some(message_id.clone()),
        lat: b.lat,
        lon: b.lon,
        accuracy_m: b.accuracy_m,
        heading: None,
        label: label.clone(),
        started_at: now,
        live_until: now + secs as i64 * 1000,
        updated_at: now,
        ended_at: None,
        end_reason: None,
    });
    let location = state.geo.location_object(
        b.lat,
        b.lon,
        b.accuracy_m,
        label.as_deref(),
        share.as_ref().map(|s| (s.id.as_str(), s.live_until)),
    );
    // The share is stored before the message that names it: a message never points at a share
    // that is not there. A send the room refuses ends the share again, unannounced.
    let replaced = match &share {
        Some(s) => state.store.start_share(s).await?,
        None => Vec::new(),
    };
    let (reply, rx) = Responder::channel();
    state.directory.room(&id).do_send(room::Post {
        draft: Draft {
            id: message_id,
            sender_id: who.user_id.clone(),
            content: label.clone().unwrap_or_default(),
            nonce: None,
            reply_to: None,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            created_at: now,
            kind: MessageKind::Location,
            attachments: Vec::new(),
            location: Some(location),
            suggest_location: false,
        },
        reply,
        started: Instant::now(),
    });
    let sent = rx
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the room did not answer"))
        .and_then(|r| r.map_err(ApiError::from));
    let (message, _) = match sent {
        Ok(m) => m,
        Err(e) => {
            if let Some(s) = &share {
                let _ = state.store.end_share(&s.id, "stopped", now).await;
            }
            return Err(e);
        }
    };
    for old in &replaced {
        state.geo.announce_end(old, "stopped").await;
    }
    let kind = if share.is_some() { "live" } else { "message" };
    if share.is_some() {
        crate::metrics::location_share("started");
    }
    state
        .geo
        .record(&who.user_id, kind, Some(&id), b.lat, b.lon, now)
        .await?;
    let mut body = json!({ "message": message });
    if let Some(s) = &share {
        body["share"] = geo::share_json(s);
    }
    Ok(out.created(&body))
}

/// `DELETE /api/location-shares/{id}`: the sharer stops a live share.
async fn stop_share(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let share = state
        .store
        .share(&id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such live share"))?;
    if share.user_id != who.user_id {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the sharer can stop a live share",
        ));
    }
    let now = dovie_actors::now_ms();
    if share.is_live(now) && state.store.end_share(&share.id, "stopped", now).await? {
        state.geo.announce_end(&share, "stopped").await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/chat-rooms/{id}/location-shares`: the room's live shares, latest positions.
async fn room_shares(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    member_room(&state, &id, &who.user_id).await?;
    let hidden = blocked_either_way(&state, &who.user_id).await?;
    let shares: Vec<Value> = state
        .store
        .room_shares(&id, dovie_actors::now_ms())
        .await?
        .iter()
        .filter(|s| !hidden.contains(&s.user_id))
        .map(geo::share_json)
        .collect();
    Ok(out.ok(&json!({ "shares": shares })))
}

/// `POST /api/chat-rooms/{id}/location-requests`: ask a member to share their location.
async fn request_share(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<RequestBody>,
) -> ApiResult<HttpResponse> {
    let room = member_room(&state, &id, &who.user_id).await?;
    if b.user_id == who.user_id {
        return Err(invalid("ask another member"));
    }
    if !room.is_member(&b.user_id) {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "that user is not a member of this room",
        ));
    }
    if state.store.blocked_either(&who.user_id, &b.user_id).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you cannot ask this user (blocked)",
        ));
    }
    let rule = Rule::per_minute("location_request", REQUESTS_PER_MINUTE);
    state.limiter.hit(rule, &who.user_id).await?;
    let r = ShareRequest {
        id: uuid::Uuid::now_v7().to_string(),
        room_id: id.to_string(),
        from_user_id: who.user_id.clone(),
        to_user_id: b.user_id.clone(),
        created_at: dovie_actors::now_ms(),
    };
    state.store.add_share_request(&r).await?;
    let payload =
        json!({ "room_id": r.room_id, "from_user_id": r.from_user_id, "request_id": r.id });
    state.geo.tell_user(
        &r.to_user_id,
        ev::LOCATION_SHARE_REQUESTED,
        &payload,
        &who.user_id,
    );
    Ok(out.created(&json!({
        "request_id": r.id, "room_id": r.room_id, "user_id": r.to_user_id, "created_at": r.created_at,
    })))
}

/// `PUT /api/users/me/location`: opt in to "nearby" at this place (stored as its cell).
async fn set_my_location(
    state: web::Data<AppState>,
    who: Authed,
    Body(b): Body<Position>,
) -> ApiResult<HttpResponse> {
    geo::check_position(b.lat, b.lon)?;
    let now = dovie_actors::now_ms();
    let every_ms = state.geo.config.nearby_update_secs as i64 * 1000;
    if let Some(p) = state.store.nearby_position(&who.user_id, now).await? {
        let wait = p.updated_at + every_ms - now;
        if wait > 0 {
            return Err(ApiError::rate_limited(((wait + 999) / 1000) as u64));
        }
    }
    let p = state
        .geo
        .set_nearby(&who.user_id, b.lat, b.lon, now)
        .await?;
    state
        .geo
        .record(&who.user_id, "nearby", None, p.lat, p.lon, now)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/users/me/location`: opt out of "nearby".
async fn clear_my_location(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    state.geo.nearby.remove(&who.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/nearby-users`: opted-in, unblocked users near my own published cell.
async fn nearby_users(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let started = Instant::now();
    geo::check_position(q.lat, q.lon)?;
    let radius = geo::search_radius(q.radius_m)?;
    let now = dovie_actors::now_ms();
    let (me, hidden) = futures_util::try_join!(
        async { Ok::<_, ApiError>(state.geo.nearby.position(&who.user_id, now).await?) },
        blocked_either_way(&state, &who.user_id),
    )?;
    let me = me.ok_or_else(|| {
        ApiError::new(
            ErrorCode::ConsentRequired,
            "share your own position first (PUT /api/users/me/location): nearby is reciprocal",
        )
    })?;
    if cells::distance_m(q.lat, q.lon, me.lat, me.lon) > geo::NEARBY_QUERY_SLACK_M {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you are far from the position you published: update it first (PUT /api/users/me/location)",
        ));
    }
    let rule = Rule::per_minute("nearby_search", SEARCHES_PER_MINUTE);
    state.limiter.hit(rule, &who.user_id).await?;
    // Searched from my cell's centre, never from the position given: every answer is about
    // cells, not places.
    // Enough to fill a page after leaving out me and whoever is hidden from me.
    let want = geo::NEARBY_LIMIT + hidden.len() + 1;
    let near = state
        .geo
        .nearby
        .around(me.lat, me.lon, radius, now, want)
        .await?;
    let near: Vec<_> = near
        .into_iter()
        .filter(|(p, _)| p.user_id != who.user_id && !hidden.contains(&p.user_id))
        .take(geo::NEARBY_LIMIT)
        .collect();
    let ids: Vec<String> = near.iter().map(|(p, _)| p.user_id.clone()).collect();
    let users = state.profiles.public(&ids).await?;
    let answer: Vec<Value> = near
        .iter()
        .filter_map(|(p, d)| {
            let u = users.get(&p.user_id)?;
            Some(json!({ "user": u, "distance_m": cells::rounded(*d, geo::NEARBY_STEP_M) }))
        })
        .collect();
    crate::metrics::location_search("nearby", started.elapsed());
    Ok(out.ok(&json!({ "users": answer })))
}

/// `POST /api/location-chat-rooms`: a room at a place.
async fn create_room(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<CreateLocationRoom>,
) -> ApiResult<HttpResponse> {
    geo::check_position(b.lat, b.lon)?;
    let name = b.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(invalid(format!(
            "name must be 1 to {MAX_ROOM_NAME_CHARS} characters"
        )));
    }
    if !(b.radius_m.is_finite() && geo::ROOM_RADIUS_M.contains(&b.radius_m)) {
        return Err(invalid("radius_m must be from 100 to 50000"));
    }
    let room = Room {
        id: uuid::Uuid::now_v7().to_string(),
        kind: RoomType::Location,
        name: Some(name),
        member_ids: vec![who.user_id.clone()],
        created_by: who.user_id.clone(),
        created_at: dovie_actors::now_ms(),
        roles: [(who.user_id.clone(), Role::Owner)].into_iter().collect(),
    };
    let place = LocationRoom {
        room_id: room.id.clone(),
        lat: b.lat,
        lon: b.lon,
        radius_m: b.radius_m,
    };
    // The place first: a room is never without its place (a room whose record failed after is
    // an orphan place, skipped by discovery).
    state.store.put_location_room(&place).await?;
    let room = match state.store.create_room(room).await? {
        Created::New(r) | Created::Existing(r) => r,
    };
    notify_created(&state, &room);
    Ok(out.created(&json!({ "room": room_json(&room, &place) })))
}

/// `GET /api/location-chat-rooms`: location rooms near a point, nearest first.
async fn discover_rooms(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let started = Instant::now();
    geo::check_position(q.lat, q.lon)?;
    let radius = geo::search_radius(q.radius_m)?;
    let rule = Rule::per_minute("room_search", SEARCHES_PER_MINUTE);
    state.limiter.hit(rule, &who.user_id).await?;
    // A few more than a page: a place whose room was deleted is skipped.
    let near = state
        .geo
        .rooms_near(q.lat, q.lon, radius, geo::ROOMS_LIMIT + 8)
        .await?;
    let ids: Vec<String> = near.iter().map(|(p, _)| p.room_id.clone()).collect();
    let found = state.store.rooms_by_ids(&ids).await?;
    // A place whose room was deleted is skipped. Who is in a room is for its members: others
    // see how many, not who.
    let rooms: Vec<Value> = near
        .iter()
        .filter_map(|(place, d)| {
            let room = found.iter().find(|r| r.id == place.room_id)?;
            let mut shown = room_json(room, place);
            if !room.is_member(&who.user_id) {
                if let Some(o) = shown.as_object_mut() {
                    o.remove("member_ids");
                    o.remove("roles");
                }
            }
            Some(json!({
                "room": shown, "distance_m": d.round() as u64,
                "member_count": room.member_ids.len(),
            }))
        })
        .take(geo::ROOMS_LIMIT)
        .collect();
    crate::metrics::location_search("rooms", started.elapsed());
    Ok(out.ok(&json!({ "rooms": rooms })))
}

/// `POST /api/chat-rooms/{id}/join`: join a location room from inside its radius.
async fn join_room(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<Position>,
) -> ApiResult<HttpResponse> {
    geo::check_position(b.lat, b.lon)?;
    let room = state
        .store
        .get_room(&id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such room"))?;
    let place = match (room.kind, state.store.location_room(&id).await?) {
        (RoomType::Location, Some(p)) => p,
        _ => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "only location rooms are joined by position",
            ))
        }
    };
    if room.is_member(&who.user_id) {
        return Ok(out.ok(&json!({ "room": room_json(&room, &place) })));
    }
    if cells::distance_m(b.lat, b.lon, place.lat, place.lon) > place.radius_m {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you are outside this room's area",
        ));
    }
    let room = state
        .store
        .add_members(
            &id,
            &[(who.user_id.clone(), Role::Member)],
            state.config.limits.max_group_members,
        )
        .await?;
    notify(
        &state,
        &id,
        Some(room.clone()),
        vec![who.user_id.clone()],
        Vec::new(),
    );
    Ok(out.ok(&json!({ "room": room_json(&room, &place) })))
}

/// `GET /api/location-history`: every place I shared or published, newest first.
async fn history(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<HistoryQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(q.limit)?;
    let since = dovie_actors::now_ms() - state.geo.history_ms();
    let page = state
        .store
        .location_history(&who.user_id, since, q.cursor.as_deref(), limit)
        .await?;
    let items: Vec<Value> = page.iter().map(geo::history_json).collect();
    let cursor = next_cursor(&page, limit, |e| e.id.as_str());
    Ok(out.ok(&json!({ "items": items, "next_cursor": cursor })))
}

async fn delete_history_entry(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if !state.store.delete_history_entry(&who.user_id, &id).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "no such history entry"));
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn clear_history(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    state.store.clear_history(&who.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

const POSITION_PARAMS: &[QueryParam] = &[
    QueryParam {
        name: "lat",
        required: true,
        schema: r#"{"type": "number", "minimum": -90, "maximum": 90}"#,
    },
    QueryParam {
        name: "lon",
        required: true,
        schema: r#"{"type": "number", "minimum": -180, "maximum": 180}"#,
    },
    QueryParam {
        name: "radius_m",
        required: false,
        schema: r#"{"type": "number", "minimum": 1, "maximum": 50000, "description": "5000 by default"}"#,
    },
];

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    api.route(
        r(
            "POST",
            "/api/chat-rooms/{id}/location",
            "Share a place in a room, or start a live share (live_seconds)",
            Some("LocationRequest"),
            (201, Some("LocationResponse")),
            &[400, 403, 404, 429],
            &[],
        ),
        share_location,
    );
    api.route(
        r(
            "GET",
            "/api/chat-rooms/{id}/location-shares",
            "The room's live shares and their latest positions",
            None,
            (200, Some("LocationShareList")),
            &[403, 404],
            &[],
        ),
        room_shares,
    );
    api.route(
        r(
            "DELETE",
            "/api/location-shares/{id}",
            "Stop my live share (members get location_share_ended)",
            None,
            (204, None),
            &[403, 404],
            &[],
        ),
        stop_share,
    );
    api.route(
        r(
            "POST",
            "/api/chat-rooms/{id}/location-requests",
            "Ask a member to share their location (they get location_share_requested)",
            Some("UserRefRequest"),
            (201, Some("LocationRequestSent")),
            &[400, 403, 404, 429],
            &[],
        ),
        request_share,
    );
    api.route(
        r("PUT", "/api/users/me/location", "Opt in to nearby at this place (kept as its ~1 km cell for 24 h; at most once a minute)",
          Some("PositionRequest"), (204, None), &[400, 429], &[]),
        set_my_location,
    );
    api.route(
        r(
            "DELETE",
            "/api/users/me/location",
            "Opt out of nearby",
            None,
            (204, None),
            &[],
            &[],
        ),
        clear_my_location,
    );
    api.route(
        r(
            "GET",
            "/api/nearby-users",
            "Opted-in people near my published cell (distances rounded to 500 m)",
            None,
            (200, Some("NearbyUsers")),
            &[400, 403, 409, 429],
            POSITION_PARAMS,
        ),
        nearby_users,
    );
    api.route(
        r(
            "POST",
            "/api/location-chat-rooms",
            "Create a room at a place",
            Some("CreateLocationRoomRequest"),
            (201, Some("LocationRoomResponse")),
            &[400],
            &[],
        ),
        create_room,
    );
    api.route(
        r(
            "GET",
            "/api/location-chat-rooms",
            "Location rooms near a point, nearest first",
            None,
            (200, Some("LocationRoomList")),
            &[400, 429],
            POSITION_PARAMS,
        ),
        discover_rooms,
    );
    api.route(
        r(
            "POST",
            "/api/chat-rooms/{id}/join",
            "Join a location room from inside its radius",
            Some("PositionRequest"),
            (200, Some("LocationRoomResponse")),
            &[400, 403, 404, 409],
            &[],
        ),
        join_room,
    );
    api.route(
        r(
            "GET",
            "/api/location-history",
            "Every place I shared or published, newest first",
            None,
            (200, Some("LocationHistory")),
            &[400],
            &[LIMIT_PARAM, CURSOR_PARAM],
        ),
        history,
    );
    api.route(
        r(
            "DELETE",
            "/api/location-history/{id}",
            "Forget one place of my history",
            None,
            (204, None),
            &[404],
            &[],
        ),
        delete_history_entry,
    );
    api.route(
        r(
            "DELETE",
            "/api/location-history",
            "Forget my whole location history",
            None,
            (204, None),
            &[],
            &[],
        ),
        clear_history,
    );
}
