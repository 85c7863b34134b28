//! `/api/chat-rooms/*` (rooms, participants, read marks) and `/api/unread-counts`.
//! Every call checks that the caller is a member (403) of an existing room (404); changes are
//! written to the store, then handed to the room's actor, which tells the members.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use dovie_actors::ports::ReceiptKind;
use dovie_actors::room::{Receipt, Responder, RoomChanged};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{Role, Room, RoomType};
use serde::{Deserialize, Serialize};

use super::{Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::state::AppState;
use crate::store::Created;

const MAX_ROOM_NAME_CHARS: usize = 100;
/// Ids one request may name (a group holds at most `limits.max_group_members`).
const MAX_MEMBER_IDS: usize = 100;

#[derive(Deserialize)]
struct CreateRoom {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    member_ids: Vec<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct UpdateRoom {
    /// Absent: unchanged; `null` or blank: no name; else the new name.
    #[serde(default, deserialize_with = "super::present")]
    name: Option<Option<String>>,
}

#[derive(Deserialize)]
struct AddParticipants {
    #[serde(default)]
    user_ids: Vec<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
struct SetRole {
    role: String,
}

#[derive(Deserialize)]
struct ReadBody {
    #[serde(deserialize_with = "integral")]
    seq: u64,
}

/// A JSON number that is a whole non-negative integer, written with or without a fraction
/// (`5` or `5.0`: JSON Schema's `integer`), as `u64`.
fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    use serde::de::Error;
    match serde_json::Number::deserialize(d)? {
        n if n.is_u64() => n.as_u64().ok_or_else(|| D::Error::custom("not an integer")),
        n => match n.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Ok(f as u64),
            _ => Err(D::Error::custom("expected a whole number at least 0")),
        },
    }
}

#[derive(Serialize)]
struct RoomEntry {
    room: Room,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_message: Option<dovie_protocol::model::Message>,
    unread_count: u64,
}

fn forbidden(msg: &str) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, msg)
}

fn validate_name(name: Option<String>) -> ApiResult<Option<String>> {
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_ROOM_NAME_CHARS)
    {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "name must be at most 100 characters",
        ));
    }
    Ok(name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()))
}

/// 403 if the caller and any of `others` blocked one another: a blocked user cannot open a
/// direct room with the blocker or add them to a group (nor the blocker them, until unblocked).
async fn refuse_blocked(state: &AppState, me: &str, others: &[String]) -> ApiResult<()> {
    for other in others {
        if state.store.blocked_either(me, other).await? {
            return Err(forbidden("you cannot add this user (blocked)"));
        }
    }
    Ok(())
}

/// The room, if it exists (404) and the caller is a member (403).
pub async fn member_room(state: &AppState, room_id: &str, user_id: &str) -> ApiResult<Room> {
    let room = state
        .store
        .get_room(room_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such room"))?;
    if !room.is_member(user_id) {
        return Err(forbidden("you are not a member of this room"));
    }
    Ok(room)
}

fn role_of(room: &Room, user_id: &str) -> Role {
    room.role_of(user_id).unwrap_or(Role::Member)
}

fn group_only(room: &Room) -> ApiResult<()> {
    if room.kind == RoomType::Direct {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a direct room has exactly its two members",
        ));
    }
    Ok(())
}

/// A new room: the cluster learns its founding members (their nodes follow the room), and the
/// members learn of it from one `room_updated`, which lists them all — not a `user_joined` per
/// founding member, which was members² events (4 million for a 2,000-member group, delaying the
/// room's first messages by seconds).
pub(crate) fn notify_created(state: &AppState, room: &Room) {
    if let Some(c) = &state.cluster {
        c.membership_changed(&room.id, room.member_ids.clone(), Vec::new());
    }
    state.directory.room(&room.id).do_send(RoomChanged {
        room: Some(room.clone()),
        joined: Vec::new(),
        left: Vec::new(),
        created: true,
    });
}

/// Hands a change to the room's actor, which tells old and new members in order with the room's
/// other events. A deleted room is announced here (its actor may not be running) and its actor,
/// if active, stops.
pub(crate) fn notify(
    state: &AppState,
    room_id: &str,
    room: Option<Room>,
    joined: Vec<String>,
    left: Vec<String>,
) {
    if let Some(c) = &state.cluster {
        c.membership_changed(room_id, joined.clone(), left.clone());
    }
    if room.is_some() {
        return state.directory.room(room_id).do_send(RoomChanged {
            room,
            joined,
            left,
            created: false,
        });
    }
    let event = dovie_actors::Event::new(
        dovie_protocol::events::ROOM_DELETED,
        &dovie_protocol::events::RoomDeleted {
            room_id: room_id.to_string(),
        },
    )
    .in_room(std::sync::Arc::from(room_id), None);
    state
        .ports
        .fanout
        .user_event(&left, std::sync::Arc::new(event));
    let gone = RoomChanged {
        room: None,
        joined,
        left: Vec::new(),
        created: false,
    };
    if state.cluster.is_some() {
        // The owner may be another node.
        state.directory.room(room_id).do_send(gone);
    } else if let Some(actor) = state.directory.active(room_id) {
        actor.do_send(gone);
    }
}

async fn create(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<CreateRoom>,
) -> ApiResult<HttpResponse> {
    let kind = RoomType::parse(&b.kind)
        .filter(|k| matches!(k, RoomType::Direct | RoomType::Group))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ValidationFailed,
                "type must be \"direct\" or \"group\" (location rooms: POST /api/location-chat-rooms)",
            )
        })?;
    if b.member_ids.iter().any(String::is_empty) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "member_ids must not hold empty ids",
        ));
    }
    if kind == RoomType::Direct && b.member_ids.len() != 1 {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "a direct room names exactly one other user",
        ));
    }
    if b.member_ids.len() > MAX_MEMBER_IDS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("member_ids holds at most {MAX_MEMBER_IDS} ids"),
        ));
    }
    let mut members: Vec<String> = Vec::new();
    for id in std::iter::once(&who.user_id).chain(b.member_ids.iter()) {
        if !members.contains(id) {
            members.push(id.clone());
        }
    }
    let max = state.config.limits.max_group_members;
    match kind {
        RoomType::Direct if members.len() != 2 => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "a direct room is with another user",
            ));
        }
        RoomType::Group if members.len() > max => {
            return Err(ApiError::new(
                ErrorCode::RoomFull,
                format!("a group has at most {max} members"),
            ));
        }
        _ => {}
    }
    let others: Vec<String> = members.iter().skip(1).cloned().collect();
    let existing = state.store.existing_users(&others).await?;
    if existing.len() != others.len() {
        let missing: Vec<&String> = others.iter().filter(|id| !existing.contains(id)).collect();
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("unknown users: {missing:?}"),
        ));
    }
    refuse_blocked(&state, &who.user_id, &others).await?;
    let mut roles = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        let role = if i == 0 && kind == RoomType::Group {
            Role::Owner
        } else {
            Role::Member
        };
        roles.insert(m.clone(), role);
    }
    let room = Room {
        id: uuid::Uuid::now_v7().to_string(),
        kind,
        name: if kind == RoomType::Group {
            validate_name(b.name)?
        } else {
            None
        },
        member_ids: members,
        created_by: who.user_id.clone(),
        created_at: dovie_actors::now_ms(),
        roles,
    };
    match state.store.create_room(room).await? {
        Created::New(room) => {
            notify_created(&state, &room);
            Ok(out.created(&serde_json::json!({ "room": room })))
        }
        Created::Existing(room) => Ok(out.ok(&serde_json::json!({ "room": room }))),
    }
}

async fn list(state: web::Data<AppState>, out: Out, who: Authed) -> ApiResult<HttpResponse> {
    let rooms: Vec<RoomEntry> = state
        .store
        .rooms_of(&who.user_id)
        .await?
        .into_iter()
        .map(|s| RoomEntry {
            room: s.room.seen_by(&who.user_id).into_owned(),
            last_message: s.last_message.map(|m| {
                let mut one = [m];
                super::messages::shown(&state, &mut one);
                let [m] = one;
                m
            }),
            unread_count: s.unread_count,
        })
        .collect();
    Ok(out.ok(&serde_json::json!({ "rooms": rooms })))
}

async fn get(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let room = member_room(&state, &id, &who.user_id).await?;
    Ok(out.ok(&serde_json::json!({ "room": room.seen_by(&who.user_id) })))
}

async fn update(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<UpdateRoom>,
) -> ApiResult<HttpResponse> {
    let room = member_room(&state, &id, &who.user_id).await?;
    group_only(&room)?;
    if role_of(&room, &who.user_id) < Role::Admin {
        return Err(forbidden("only the owner or an admin can change the room"));
    }
    let Some(name) = b.name else {
        return Ok(out.ok(&serde_json::json!({ "room": room })));
    };
    let room = state
        .store
        .rename_room(&id, validate_name(name)?.as_deref())
        .await?;
    notify(&state, &id, Some(room.clone()), Vec::new(), Vec::new());
    Ok(out.ok(&serde_json::json!({ "room": room })))
}

async fn delete(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let room = member_room(&state, &id, &who.user_id).await?;
    group_only(&room)?;
    if role_of(&room, &who.user_id) != Role::Owner {
        return Err(forbidden("only the owner can delete the room"));
    }
    state.store.delete_room(&id).await?;
    notify(&state, &id, None, Vec::new(), room.member_ids.clone());
    state.geo.end_shares(&room, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn add_participants(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<AddParticipants>,
) -> ApiResult<HttpResponse> {
    let room = member_room(&state, &id, &who.user_id).await?;
    group_only(&room)?;
    if room.kind == RoomType::Channel {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a channel's subscribers join by subscribing",
        ));
    }
    let my_role = role_of(&room, &who.user_id);
    if my_role < Role::Admin {
        return Err(forbidden("only the owner or an admin can add members"));
    }
    let role = match b.role.as_deref() {
        None | Some("member") => Role::Member,
        Some("admin") if my_role == Role::Owner => Role::Admin,
        Some("admin") => return Err(forbidden("only the owner can add admins")),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "role must be \"member\" or \"admin\"",
            ))
        }
    };
    let mut ids: Vec<String> = b.user_ids;
    ids.extend(b.user_id);
    if ids.iter().any(String::is_empty) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "user ids must not be empty",
        ));
    }
    if ids.len() > MAX_MEMBER_IDS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("user_ids holds at most {MAX_MEMBER_IDS} ids"),
        ));
    }
    // Each user once, wherever they repeat (`[a, b, a]`), in the order first named.
    let mut seen = std::collections::HashSet::new();
    ids.retain(|u| seen.insert(u.clone()));
    if ids.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "user_ids must name at least one user",
        ));
    }
    let existing = state.store.existing_users(&ids).await?;
    if existing.len() != ids.len() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "unknown user in user_ids",
        ));
    }
    let joined: Vec<String> = ids.iter().filter(|u| !room.is_member(u)).cloned().collect();
    refuse_blocked(&state, &who.user_id, &joined).await?;
    let members: Vec<(String, Role)> = ids.into_iter().map(|u| (u, role)).collect();
    let room = state
        .store
        .add_members(&id, &members, state.config.limits.max_group_members)
        .await?;
    notify(&state, &id, Some(room.clone()), joined, Vec::new());
    Ok(out.ok(&serde_json::json!({ "room": room })))
}

async fn remove_participant(
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, target) = path.into_inner();
    let room = member_room(&state, &id, &who.user_id).await?;
    group_only(&room)?;
    let target_role = room
        .role_of(&target)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "that user is not a member"))?;
    let my_role = role_of(&room, &who.user_id);
    if target == who.user_id {
        if my_role == Role::Owner && room.member_ids.len() > 1 {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the owner must hand ownership over before leaving",
            ));
        }
    } else if my_role < Role::Admin || target_role >= my_role {
        return Err(forbidden("you cannot remove this member"));
    }
    if target == who.user_id && room.member_ids.len() == 1 {
        // The last member leaving: a group nobody is in is deleted (nobody could ever delete it
        // otherwise), and its history with it.
        state.store.delete_room(&id).await?;
        notify(&state, &id, None, Vec::new(), room.member_ids.clone());
        state.geo.end_shares(&room, None).await?;
        return Ok(HttpResponse::NoContent().finish());
    }
    let room = state.store.remove_member(&id, &target).await?;
    // A member who is gone no longer shows where they are.
    state.geo.end_shares(&room, Some(&target)).await?;
    notify(&state, &id, Some(room), Vec::new(), vec![target]);
    Ok(HttpResponse::NoContent().finish())
}

/// Takes `user_id` out of `room_id` for good (an erased account): an owner of a group with
/// others first hands ownership to its longest-standing admin (else member); a room left empty
/// is deleted; live shares end; members and the room's actor are told.
pub(crate) async fn leave_for_good(
    state: &AppState,
    room_id: &str,
    user_id: &str,
) -> ApiResult<()> {
    let Some(room) = state.store.get_room(room_id).await? else {
        return Ok(());
    };
    if !room.is_member(user_id) {
        return Ok(());
    }
    if room.member_ids.len() == 1 {
        state.store.delete_room(room_id).await?;
        notify(state, room_id, None, Vec::new(), room.member_ids.clone());
        state.geo.end_shares(&room, None).await?;
        return Ok(());
    }
    if room.role_of(user_id) == Some(Role::Owner) {
        // member_ids are in joining order.
        let others = room.member_ids.iter().filter(|m| *m != user_id);
        let heir = others
            .clone()
            .find(|m| room.role_of(m) == Some(Role::Admin))
            .or_else(|| others.clone().next())
            .cloned();
        if let Some(heir) = heir {
            let room = state.store.set_role(room_id, &heir, Role::Owner).await?;
            notify(state, room_id, Some(room), Vec::new(), Vec::new());
        }
    }
    let room = state.store.remove_member(room_id, user_id).await?;
    state.geo.end_shares(&room, Some(user_id)).await?;
    notify(
        state,
        room_id,
        Some(room),
        Vec::new(),
        vec![user_id.to_string()],
    );
    Ok(())
}

async fn set_role(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    path: web::Path<(String, String)>,
    Body(b): Body<SetRole>,
) -> ApiResult<HttpResponse> {
    let (id, target) = path.into_inner();
    let room = member_room(&state, &id, &who.user_id).await?;
    group_only(&room)?;
    if role_of(&room, &who.user_id) != Role::Owner {
        return Err(forbidden("only the owner can change roles"));
    }
    if !room.is_member(&target) {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "that user is not a member",
        ));
    }
    let role = Role::parse(&b.role).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            "role must be owner, admin or member",
        )
    })?;
    if target == who.user_id {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "hand ownership over by making another member owner",
        ));
    }
    let mut room = state.store.set_role(&id, &target, role).await?;
    if role == Role::Owner {
        // One owner: the previous one becomes an admin.
        room = state.store.set_role(&id, &who.user_id, Role::Admin).await?;
    }
    notify(&state, &id, Some(room.clone()), Vec::new(), Vec::new());
    Ok(out.ok(&serde_json::json!({ "room": room })))
}

async fn read(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<ReadBody>,
) -> ApiResult<HttpResponse> {
    if b.seq > dovie_protocol::rules::MAX_SEQ {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("seq must be at most {}", dovie_protocol::rules::MAX_SEQ),
        ));
    }
    let (reply, rx) = Responder::channel();
    state.directory.room(&id).do_send(Receipt {
        user_id: who.user_id,
        kind: ReceiptKind::Read,
        seq: b.seq,
        reply,
    });
    rx.await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the room did not answer"))??;
    Ok(HttpResponse::NoContent().finish())
}

async fn unread_counts(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
) -> ApiResult<HttpResponse> {
    let counts = state.store.unread_counts(&who.user_id).await?;
    Ok(out.ok(&serde_json::json!({ "counts": counts })))
}

pub fn register(api: &mut Api) {
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/chat-rooms",
            summary: "Create a direct room (idempotent per pair: 200 with the existing one) or a group (at most 100 members)",
            auth: true,
            body: Some("CreateRoomRequest"),
            ok: (201, Some("RoomResponse")),
            errors: &[400, 404, 409, 413, 415],
            query: &[],
            also_ok: &[200],
        },
        create,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/chat-rooms",
            summary:
                "My rooms with their last message and unread count, most recently active first",
            auth: true,
            body: None,
            ok: (200, Some("RoomList")),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        list,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/chat-rooms/{id}",
            summary: "One room",
            auth: true,
            body: None,
            ok: (200, Some("RoomResponse")),
            errors: &[403, 404],
            query: &[],
            also_ok: &[],
        },
        get,
    );
    api.route(
        RouteDoc {
            method: "PUT",
            path: "/api/chat-rooms/{id}",
            summary: "Rename a group (owner or admin)",
            auth: true,
            body: Some("UpdateRoomRequest"),
            ok: (200, Some("RoomResponse")),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        update,
    );
    api.route(
        RouteDoc {
            method: "DELETE",
            path: "/api/chat-rooms/{id}",
            summary: "Delete a group and its history (owner)",
            auth: true,
            body: None,
            ok: (204, None),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        delete,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/chat-rooms/{id}/participants",
            summary: "Add members to a group (owner or admin; admins only by the owner)",
            auth: true,
            body: Some("AddParticipantsRequest"),
            ok: (200, Some("RoomResponse")),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        add_participants,
    );
    api.route(
        RouteDoc {
            method: "DELETE",
            path: "/api/chat-rooms/{id}/participants/{user_id}",
            summary: "Remove a member (an admin removes members, the owner admins) or leave",
            auth: true,
            body: None,
            ok: (204, None),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        remove_participant,
    );
    api.route(
        RouteDoc {
            method: "PUT",
            path: "/api/chat-rooms/{id}/participants/{user_id}",
            summary: "Change a member's role (owner); making someone owner hands ownership over",
            auth: true,
            body: Some("SetRoleRequest"),
            ok: (200, Some("RoomResponse")),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        set_role,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/chat-rooms/{id}/read",
            summary: "Mark the room read up to seq (members are told with message_read)",
            auth: true,
            body: Some("ReadRequest"),
            ok: (204, None),
            errors: &[400, 403, 404],
            query: &[],
            also_ok: &[],
        },
        read,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/unread-counts",
            summary: "Unread messages per room",
            auth: true,
            body: None,
            ok: (200, Some("UnreadCounts")),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        unread_counts,
    );
}
