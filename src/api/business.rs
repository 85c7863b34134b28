//! Business over REST (BIZ-1..6): business profiles (created, searched by name and category,
//! edited by their owner and admins, followed), business posts (in their followers' feeds),
//! company channels (rooms of type `channel`: the business's owner and admins post,
//! subscribers read and react, up to `limits.max_channel_subscribers`), networking between
//! businesses (connection requests, accepted or declined), verification (a request with
//! documents, reviewed by an admin, every step in the audit log, the owner told) and analytics
//! (daily series and totals from counters changed as events happen; owner and admins only).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{Role, Room, RoomType};

use super::people::{next_cursor, page_limit, CURSOR_PARAM};
use super::rooms::{notify, notify_created};
use super::social::{is_admin, page_of, publish, tell, Happened, NewPostOf, Page};
use super::{
    invalid, Api, ApiError, ApiResult, Authed, Body, Out, QueryParam, RouteDoc, LIMIT_PARAM,
};
use crate::audit::{self, Target};
use crate::business::{
    self, MAX_ADMINS, MAX_CATEGORY_CHARS, MAX_DESCRIPTION_CHARS, MAX_DETAIL_CHARS, MAX_NAME_CHARS,
    MAX_REPORT_DAYS, MAX_WEBSITE_CHARS,
};
use crate::social::trends::day_of;
use crate::state::AppState;
use crate::store::{
    BusinessRecord, ChannelRecord, ConnectionRecord, Created, Metric, VerificationRecord,
};

/// The longest search query, in characters.
const MAX_QUERY_CHARS: usize = 100;
/// Documents one verification request carries at most.
const MAX_DOCUMENTS: usize = 10;
/// The longest verification note or rejection reason, in characters.
const MAX_NOTE_CHARS: usize = 2000;
/// Connections listed at most.
const MAX_CONNECTIONS: usize = 500;
/// Days an analytics answer covers when `from` is not given.
const DEFAULT_REPORT_DAYS: i64 = 30;

fn no_business() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such business")
}

fn no_channel() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such channel")
}

fn forbidden(msg: &'static str) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, msg)
}

#[derive(Deserialize)]
struct NewBusiness {
    name: Option<String>,
    category: Option<String>,
    description: Option<String>,
    #[serde(default)]
    website: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    hours: Option<String>,
}

/// A patch: an absent field stays, `null` clears an optional one.
#[derive(Deserialize)]
struct BusinessPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "some")]
    website: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    address: Option<Option<String>>,
    #[serde(default, deserialize_with = "some")]
    hours: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn some<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct NewBusinessPost {
    business_id: Option<String>,
    content: Option<String>,
    #[serde(default)]
    attachments: Option<Vec<String>>,
    #[serde(default)]
    visibility: Option<String>,
}

#[derive(Deserialize)]
struct NewChannel {
    business_id: Option<String>,
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct ChannelQuery {
    business_id: Option<String>,
}

#[derive(Deserialize)]
struct NewConnection {
    from_business_id: Option<String>,
}

#[derive(Deserialize)]
struct NewVerification {
    documents: Option<Vec<String>>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
struct VerificationQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct Rejection {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct ReportQuery {
    business_id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// A required text: trimmed, not blank, at most `max` characters.
fn required(v: Option<String>, field: &str, max: usize) -> ApiResult<String> {
    let v = v.ok_or_else(|| invalid(format!("{field} is required")))?;
    let v = v.trim().to_string();
    if v.is_empty() || v.chars().count() > max {
        return Err(invalid(format!("{field} must be 1 to {max} characters")));
    }
    Ok(v)
}

/// An optional text: trimmed, at most `max` characters; blank is none.
fn optional(v: Option<String>, field: &str, max: usize) -> ApiResult<Option<String>> {
    let Some(v) = v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(invalid(format!("{field} is at most {max} characters")));
    }
    Ok(Some(v))
}

fn category(v: Option<String>) -> ApiResult<String> {
    Ok(required(v, "category", MAX_CATEGORY_CHARS)?.to_lowercase())
}

fn description(v: Option<String>) -> ApiResult<String> {
    let v = v
        .ok_or_else(|| invalid("description is required"))?
        .trim()
        .to_string();
    if v.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(invalid(format!(
            "description is at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(v)
}

fn website(v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.chars().count() <= MAX_WEBSITE_CHARS && business::valid_website(&v) => {
            Ok(Some(v))
        }
        Some(_) => Err(invalid("website must be an http or https address")),
    }
}

fn email(v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.len() <= 254 && business::valid_email(&v) => Ok(Some(v)),
        Some(_) => Err(invalid("email is not an email address")),
    }
}

fn phone(v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if business::valid_phone(&v) => Ok(Some(v)),
        Some(_) => Err(invalid("phone is not a phone number")),
    }
}

/// The business `id`, if `who` may see it (not one whose owner and I blocked either way).
async fn visible_business(state: &AppState, who: &str, id: &str) -> ApiResult<BusinessRecord> {
    let b = state.store.business(id).await?.ok_or_else(no_business)?;
    if b.owner_id != who && state.store.blocked_either(who, &b.owner_id).await? {
        return Err(no_business());
    }
    Ok(b)
}

/// The business `id`, if `who` acts for it (its owner or one of its admins).
async fn business_i_run(state: &AppState, who: &str, id: &str) -> ApiResult<BusinessRecord> {
    let b = visible_business(state, who, id).await?;
    if !b.is_admin(who) {
        return Err(forbidden("only the business's owner or admins do this"));
    }
    Ok(b)
}

async fn business_json(state: &AppState, b: &BusinessRecord) -> ApiResult<serde_json::Value> {
    let followers = state.store.follower_count(&b.id).await?;
    Ok(json!({ "business": business::view(b, followers) }))
}

/// `POST /api/business-profiles`: 201 with the business; I own it.
async fn create(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<NewBusiness>,
) -> ApiResult<HttpResponse> {
    let now = dovie_actors::now_ms();
    let record = BusinessRecord {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: who.user_id.clone(),
        name: required(b.name, "name", MAX_NAME_CHARS)?,
        category: category(b.category)?,
        description: description(b.description)?,
        website: website(b.website)?,
        email: email(b.email)?,
        phone: phone(b.phone)?,
        address: optional(b.address, "address", MAX_DETAIL_CHARS)?,
        hours: optional(b.hours, "hours", MAX_DETAIL_CHARS)?,
        admins: Vec::new(),
        verified: false,
        created_at: now,
        updated_at: now,
    };
    state.store.create_business(&record).await?;
    Ok(out.created(&business_json(&state, &record).await?))
}

/// `GET /api/business-profiles?q=&category=`: by name prefix and category, by id.
async fn search(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(q.limit)?;
    if q.q
        .as_deref()
        .is_some_and(|t| t.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(invalid(format!(
            "q must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    if q.category
        .as_deref()
        .is_some_and(|c| c.chars().count() > MAX_CATEGORY_CHARS)
    {
        return Err(invalid(format!(
            "category is at most {MAX_CATEGORY_CHARS} characters"
        )));
    }
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let prefix = text.map(crate::store::text::normalize_name);
    let category = q
        .category
        .as_deref()
        .map(|c| c.trim().to_lowercase())
        .filter(|c| !c.is_empty());
    let after = q.cursor.as_deref().unwrap_or("");
    let found = state
        .store
        .search_businesses(prefix.as_deref(), category.as_deref(), after, limit)
        .await?;
    let next = next_cursor(&found, limit, |b| b.id.as_str());
    let hidden = crate::people::blocked_either_way(&state.store, &who.user_id).await?;
    let mut shown = Vec::with_capacity(found.len());
    for b in found.iter().filter(|b| !hidden.contains(&b.owner_id)) {
        let followers = state.store.follower_count(&b.id).await?;
        shown.push(business::view(b, followers));
    }
    Ok(out.ok(&json!({ "businesses": shown, "next_cursor": next })))
}

/// `GET /api/business-profiles/{id}`: counts a profile view.
async fn get(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let b = visible_business(&state, &who.user_id, &id).await?;
    business::count(&state.store, &b.id, Metric::ProfileViews, 1).await?;
    Ok(out.ok(&business_json(&state, &b).await?))
}

/// `PATCH /api/business-profiles/{id}`: by its owner or admins.
async fn update(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(p): Body<BusinessPatch>,
) -> ApiResult<HttpResponse> {
    let mut b = business_i_run(&state, &who.user_id, &id).await?;
    if let Some(v) = p.name {
        b.name = required(Some(v), "name", MAX_NAME_CHARS)?;
    }
    if let Some(v) = p.category {
        b.category = category(Some(v))?;
    }
    if let Some(v) = p.description {
        b.description = description(Some(v))?;
    }
    if let Some(v) = p.website {
        b.website = website(v)?;
    }
    if let Some(v) = p.email {
        b.email = email(v)?;
    }
    if let Some(v) = p.phone {
        b.phone = phone(v)?;
    }
    if let Some(v) = p.address {
        b.address = optional(v, "address", MAX_DETAIL_CHARS)?;
    }
    if let Some(v) = p.hours {
        b.hours = optional(v, "hours", MAX_DETAIL_CHARS)?;
    }
    b.updated_at = dovie_actors::now_ms();
    state.store.update_business(&b).await?;
    Ok(out.ok(&business_json(&state, &b).await?))
}

/// Gives or takes a user's admin role in each of the business's channels.
async fn channel_roles(
    state: &AppState,
    b: &BusinessRecord,
    user_id: &str,
    admin: bool,
) -> ApiResult<()> {
    let max = state.config.limits.max_channel_subscribers;
    for ch in state.store.channels_of(&b.id).await? {
        let Some(room) = state.store.get_room(&ch.room_id).await? else {
            continue;
        };
        let room = match (room.is_member(user_id), admin) {
            (false, false) => continue,
            (false, true) => {
                let r = state
                    .store
                    .add_members(&room.id, &[(user_id.to_string(), Role::Admin)], max)
                    .await?;
                notify(
                    state,
                    &r.id,
                    Some(r.clone()),
                    vec![user_id.to_string()],
                    vec![],
                );
                continue;
            }
            (true, true) => state.store.set_role(&room.id, user_id, Role::Admin).await?,
            (true, false) => {
                state
                    .store
                    .set_role(&room.id, user_id, Role::Member)
                    .await?
            }
        };
        notify(state, &room.id, Some(room.clone()), vec![], vec![]);
    }
    Ok(())
}

/// `PUT /api/business-profiles/{id}/admins/{user_id}`: the owner makes a user an admin of the
/// business (and of its channels).
async fn add_admin(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, user_id) = path.into_inner();
    let mut b = visible_business(&state, &who.user_id, &id).await?;
    if b.owner_id != who.user_id {
        return Err(forbidden("only the business's owner names its admins"));
    }
    if user_id == b.owner_id {
        return Err(ApiError::new(ErrorCode::Conflict, "that is you"));
    }
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
    if state.store.blocked_either(&who.user_id, &user.id).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "no such user"));
    }
    if !b.admins.contains(&user.id) {
        if b.admins.len() >= MAX_ADMINS {
            return Err(invalid(format!(
                "a business has at most {MAX_ADMINS} admins"
            )));
        }
        b.admins.push(user.id.clone());
        b.updated_at = dovie_actors::now_ms();
        state.store.update_business(&b).await?;
    }
    channel_roles(&state, &b, &user.id, true).await?;
    Ok(out.ok(&business_json(&state, &b).await?))
}

/// `DELETE /api/business-profiles/{id}/admins/{user_id}`: idempotent.
async fn remove_admin(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (id, user_id) = path.into_inner();
    let mut b = visible_business(&state, &who.user_id, &id).await?;
    if b.owner_id != who.user_id {
        return Err(forbidden("only the business's owner names its admins"));
    }
    if b.admins.contains(&user_id) {
        b.admins.retain(|a| *a != user_id);
        b.updated_at = dovie_actors::now_ms();
        state.store.update_business(&b).await?;
        channel_roles(&state, &b, &user_id, false).await?;
    }
    Ok(out.ok(&business_json(&state, &b).await?))
}

/// `POST /api/business-profiles/{id}/follow`: 204, idempotent.
async fn follow(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let b = visible_business(&state, &who.user_id, &id).await?;
    let new = state
        .store
        .follow(&who.user_id, &b.id, dovie_actors::now_ms())
        .await?;
    if new {
        business::count(&state.store, &b.id, Metric::Followers, 1).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/business-profiles/{id}/follow`: 204, idempotent.
async fn unfollow(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if state.store.unfollow(&who.user_id, &id).await? {
        business::count(&state.store, &id, Metric::Followers, -1).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/business-profiles/{id}/posts`: the business's posts I may see, newest first.
async fn posts(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let b = visible_business(&state, &who.user_id, &id).await?;
    Ok(out.ok(&page_of(&state, &who.user_id, &[b.id], &page).await?))
}

/// `POST /api/business-posts`: 201; by the business's owner or admins, in its followers' feeds.
async fn create_post(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(n): Body<NewBusinessPost>,
) -> ApiResult<HttpResponse> {
    let id = n
        .business_id
        .ok_or_else(|| invalid("business_id is required"))?;
    let b = business_i_run(&state, &who.user_id, &id).await?;
    let p = publish(
        &state,
        NewPostOf {
            author_id: who.user_id.clone(),
            business_id: Some(b.id),
            content: n.content,
            attachments: n.attachments,
            visibility: n.visibility,
        },
    )
    .await?;
    Ok(out.created(&json!({ "post": crate::social::view(&p, false) })))
}

async fn channel_json(state: &AppState, ch: &ChannelRecord) -> ApiResult<serde_json::Value> {
    let room = state.store.get_room(&ch.room_id).await?;
    let subscribers = room.as_ref().map_or(0, |r| {
        r.roles
            .values()
            .filter(|role| **role == Role::Member)
            .count()
    });
    Ok(json!({
        "id": ch.id,
        "room_id": ch.room_id,
        "business_id": ch.business_id,
        "name": ch.name,
        "description": ch.description,
        "subscriber_count": subscribers,
        "created_at": ch.created_at,
    }))
}

/// `POST /api/company-channels`: 201; a room of type `channel` whose owner is the business's
/// owner and whose admins are the business's admins.
async fn create_channel(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(n): Body<NewChannel>,
) -> ApiResult<HttpResponse> {
    let id = n
        .business_id
        .ok_or_else(|| invalid("business_id is required"))?;
    let name = required(n.name, "name", MAX_NAME_CHARS)?;
    let description = optional(n.description, "description", MAX_DESCRIPTION_CHARS)?;
    let b = business_i_run(&state, &who.user_id, &id).await?;
    let now = dovie_actors::now_ms();
    let mut roles: std::collections::BTreeMap<String, Role> =
        b.admins.iter().map(|a| (a.clone(), Role::Admin)).collect();
    roles.insert(b.owner_id.clone(), Role::Owner);
    let room = Room {
        id: uuid::Uuid::now_v7().to_string(),
        kind: RoomType::Channel,
        name: Some(name.clone()),
        member_ids: roles.keys().cloned().collect(),
        created_by: who.user_id.clone(),
        created_at: now,
        roles,
    };
    let ch = ChannelRecord {
        id: uuid::Uuid::now_v7().to_string(),
        room_id: room.id.clone(),
        business_id: b.id.clone(),
        name,
        description,
        created_at: now,
    };
    // The channel record first: a room is never a channel without it (a record whose room
    // failed after is skipped when listed).
    state.store.create_channel(&ch).await?;
    let room = match state.store.create_room(room).await? {
        Created::New(r) | Created::Existing(r) => r,
    };
    notify_created(&state, &room);
    Ok(out.created(&json!({ "channel": channel_json(&state, &ch).await? })))
}

/// `GET /api/company-channels?business_id=`: a business's channels, oldest first.
async fn channels(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<ChannelQuery>,
) -> ApiResult<HttpResponse> {
    let id = q
        .business_id
        .as_deref()
        .ok_or_else(|| invalid("business_id is required"))?;
    let b = visible_business(&state, &who.user_id, id).await?;
    let mut list = Vec::new();
    for ch in state.store.channels_of(&b.id).await? {
        if state.store.get_room(&ch.room_id).await?.is_some() {
            list.push(channel_json(&state, &ch).await?);
        }
    }
    Ok(out.ok(&json!({ "channels": list })))
}

/// The channel `id` and its room, if `who` may see its business.
async fn visible_channel(
    state: &AppState,
    who: &str,
    id: &str,
) -> ApiResult<(ChannelRecord, Room)> {
    let ch = state.store.channel(id).await?.ok_or_else(no_channel)?;
    visible_business(state, who, &ch.business_id)
        .await
        .map_err(|_| no_channel())?;
    let room = state
        .store
        .get_room(&ch.room_id)
        .await?
        .ok_or_else(no_channel)?;
    Ok((ch, room))
}

/// `POST /api/company-channels/{id}/subscribe`: 204, idempotent.
async fn subscribe(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (ch, room) = visible_channel(&state, &who.user_id, &id).await?;
    if room.is_member(&who.user_id) {
        return Ok(HttpResponse::NoContent().finish());
    }
    let max = state.config.limits.max_channel_subscribers;
    let room = state
        .store
        .add_members(&room.id, &[(who.user_id.clone(), Role::Member)], max)
        .await
        .map_err(|e| match e.code {
            ErrorCode::RoomFull => ApiError::new(
                ErrorCode::RoomFull,
                format!("a channel has at most {max} members"),
            ),
            _ => e.into(),
        })?;
    notify(
        &state,
        &room.id,
        Some(room.clone()),
        vec![who.user_id.clone()],
        Vec::new(),
    );
    business::count(&state.store, &ch.business_id, Metric::ChannelSubscribers, 1).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/company-channels/{id}/subscribe`: 204, idempotent; the channel's owner stays.
async fn unsubscribe(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (ch, room) = visible_channel(&state, &who.user_id, &id).await?;
    match room.role_of(&who.user_id) {
        None => return Ok(HttpResponse::NoContent().finish()),
        Some(Role::Owner) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the channel's owner cannot unsubscribe",
            ))
        }
        Some(role) => {
            let room = state.store.remove_member(&room.id, &who.user_id).await?;
            notify(
                &state,
                &room.id,
                Some(room.clone()),
                Vec::new(),
                vec![who.user_id.clone()],
            );
            if role == Role::Member {
                business::count(
                    &state.store,
                    &ch.business_id,
                    Metric::ChannelSubscribers,
                    -1,
                )
                .await?;
            }
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/business-profiles/{id}/connections`: 201; a business I run asks `{id}` to
/// connect.
async fn request_connection(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(n): Body<NewConnection>,
) -> ApiResult<HttpResponse> {
    let from = n
        .from_business_id
        .ok_or_else(|| invalid("from_business_id is required"))?;
    let to = visible_business(&state, &who.user_id, &id).await?;
    let from = business_i_run(&state, &who.user_id, &from).await?;
    if from.id == to.id {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a business does not connect to itself",
        ));
    }
    let c = ConnectionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        from: from.id,
        to: to.id,
        status: "pending".into(),
        created_at: dovie_actors::now_ms(),
        decided_at: None,
    };
    state.store.create_connection(&c).await?;
    Ok(out.created(&json!({ "connection": c })))
}

/// Accepts or declines a pending request to a business I run.
async fn decide(
    state: &AppState,
    who: &str,
    id: &str,
    status: &'static str,
) -> ApiResult<ConnectionRecord> {
    let no_connection = || ApiError::new(ErrorCode::NotFound, "no such connection");
    let mut c = state
        .store
        .connection(id)
        .await?
        .ok_or_else(no_connection)?;
    let to = state
        .store
        .business(&c.to)
        .await?
        .ok_or_else(no_connection)?;
    if !to.is_admin(who) {
        let from = state.store.business(&c.from).await?;
        if from.is_some_and(|f| f.is_admin(who)) {
            return Err(forbidden(
                "only the business asked accepts or declines a request",
            ));
        }
        return Err(no_connection());
    }
    let at = dovie_actors::now_ms();
    if !state.store.decide_connection(&c.id, status, at).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the request was already answered",
        ));
    }
    c.status = status.to_string();
    c.decided_at = Some(at);
    Ok(c)
}

/// `POST /api/connections/{id}/accept`.
async fn accept(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let c = decide(&state, &who.user_id, &id, "accepted").await?;
    Ok(out.ok(&json!({ "connection": c })))
}

/// `POST /api/connections/{id}/decline`.
async fn decline(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let c = decide(&state, &who.user_id, &id, "declined").await?;
    Ok(out.ok(&json!({ "connection": c })))
}

/// `GET /api/business-profiles/{id}/connections`: accepted connections for everyone; pending
/// and declined requests too for the business's owner and admins.
async fn connections(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let b = visible_business(&state, &who.user_id, &id).await?;
    let mine = b.is_admin(&who.user_id);
    let list: Vec<ConnectionRecord> = state
        .store
        .connections_of(&b.id, MAX_CONNECTIONS)
        .await?
        .into_iter()
        .filter(|c| mine || c.status == "accepted")
        .collect();
    Ok(out.ok(&json!({ "connections": list })))
}

/// `POST /api/business-profiles/{id}/verification`: 201; the owner asks, with documents (files
/// they uploaded), while no request is pending and the business is not verified.
async fn request_verification(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(n): Body<NewVerification>,
) -> ApiResult<HttpResponse> {
    let documents = n
        .documents
        .ok_or_else(|| invalid("documents is required"))?;
    if documents.is_empty() || documents.len() > MAX_DOCUMENTS {
        return Err(invalid(format!(
            "documents names 1 to {MAX_DOCUMENTS} files"
        )));
    }
    let note = optional(n.note, "note", MAX_NOTE_CHARS)?.unwrap_or_default();
    let b = visible_business(&state, &who.user_id, &id).await?;
    if b.owner_id != who.user_id {
        return Err(forbidden("only the business's owner asks to verify it"));
    }
    if b.verified {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the business is verified",
        ));
    }
    let open = state.store.verifications_of(&b.id).await?;
    if open.iter().any(|v| v.status == "pending") {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a verification request is pending",
        ));
    }
    crate::files::own_files(&state.store, &who.user_id, &documents).await?;
    let v = VerificationRecord {
        id: uuid::Uuid::now_v7().to_string(),
        business_id: b.id.clone(),
        requested_by: who.user_id.clone(),
        documents,
        note,
        status: "pending".into(),
        reason: None,
        decided_by: None,
        created_at: dovie_actors::now_ms(),
        decided_at: None,
    };
    for d in &v.documents {
        state
            .store
            .share_file(d, &business::share_key(&v.id), "")
            .await?;
    }
    state.store.create_business_verification(&v).await?;
    audit::record(
        &state.store,
        who.actor(),
        "verification.requested",
        Target {
            kind: "business",
            id: &b.id,
            label: Some(&b.name),
        },
        json!({ "verification_id": v.id, "documents": v.documents }),
    )
    .await?;
    Ok(out.created(&json!({ "verification": v })))
}

/// The caller, if an admin; else forbidden.
async fn admin_only(state: &AppState, who: &str) -> ApiResult<()> {
    if !is_admin(state, who).await? {
        return Err(forbidden("only admins do this"));
    }
    Ok(())
}

/// `GET /api/admin/verifications?status=`: the review queue, oldest first (pending by default).
async fn verification_queue(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<VerificationQuery>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who.user_id).await?;
    let status = q.status.as_deref().unwrap_or("pending");
    if !matches!(status, "pending" | "approved" | "rejected") {
        return Err(invalid("status is pending, approved or rejected"));
    }
    let limit = page_limit(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .and_then(crate::social::parse_time_cursor);
    let list = state
        .store
        .business_verifications(status, after, limit)
        .await?;
    let next = (list.len() == limit)
        .then(|| {
            list.last()
                .map(|v| crate::social::time_cursor(v.created_at, &v.id))
        })
        .flatten();
    Ok(out.ok(&json!({ "verifications": list, "next_cursor": next })))
}

/// Approves or rejects a pending request: the badge with an approval, the audit log and the
/// owner told either way.
async fn review(
    state: &AppState,
    actor: &Authed,
    id: &str,
    approve: bool,
    reason: Option<String>,
) -> ApiResult<VerificationRecord> {
    let who = actor.user_id.as_str();
    admin_only(state, who).await?;
    let mut v = state
        .store
        .business_verification(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such verification"))?;
    v.status = if approve { "approved" } else { "rejected" }.into();
    v.reason = reason;
    v.decided_by = Some(who.to_string());
    v.decided_at = Some(dovie_actors::now_ms());
    if !state.store.decide_business_verification(&v).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the request was already decided",
        ));
    }
    let action = if approve {
        "verification.approved"
    } else {
        "verification.rejected"
    };
    let label = state.store.business(&v.business_id).await?.map(|b| b.name);
    audit::record(
        &state.store,
        actor.actor(),
        action,
        Target {
            kind: "business",
            id: &v.business_id,
            label: label.as_deref(),
        },
        json!({ "verification_id": v.id, "reason": v.reason }),
    )
    .await?;
    if let Some(b) = state.store.business(&v.business_id).await? {
        let kind = if approve {
            "verified"
        } else {
            "verification_rejected"
        };
        tell(
            state,
            Happened {
                kind,
                user_id: &b.owner_id,
                actor_id: who,
                post_id: None,
                comment_id: None,
                excerpt: v.reason.as_deref().unwrap_or(&b.name),
            },
        )
        .await?;
    }
    Ok(v)
}

/// `POST /api/admin/verifications/{id}/approve`.
async fn approve(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let v = review(&state, &who, &id, true, None).await?;
    Ok(out.ok(&json!({ "verification": v })))
}

/// `POST /api/admin/verifications/{id}/reject` `{"reason"}`.
async fn reject(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(r): Body<Rejection>,
) -> ApiResult<HttpResponse> {
    let reason = required(r.reason, "reason", MAX_NOTE_CHARS)?;
    let v = review(&state, &who, &id, false, Some(reason)).await?;
    Ok(out.ok(&json!({ "verification": v })))
}

/// `GET /api/business-analytics?business_id=&from=&to=`: the owner, the business's admins and
/// site admins; days are `YYYY-MM-DD` (UTC), the last 30 by default, at most 366.
async fn analytics(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    let id = q
        .business_id
        .as_deref()
        .ok_or_else(|| invalid("business_id is required"))?;
    let day = |v: &Option<String>, name: &str| -> ApiResult<Option<i64>> {
        v.as_deref()
            .map(|t| {
                business::parse_day(t).ok_or_else(|| invalid(format!("{name} is a YYYY-MM-DD day")))
            })
            .transpose()
    };
    let to = day(&q.to, "to")?.unwrap_or_else(|| day_of(dovie_actors::now_ms()));
    let from = day(&q.from, "from")?.unwrap_or(to - (DEFAULT_REPORT_DAYS - 1));
    // The days are read first, the business next, the range last: a range too long for a
    // business that does not exist is not found.
    let b = state.store.business(id).await?.ok_or_else(no_business)?;
    if !b.is_admin(&who.user_id) && !is_admin(&state, &who.user_id).await? {
        return Err(forbidden(
            "only the business's owner or admins see its analytics",
        ));
    }
    if from > to {
        return Err(invalid("from is after to"));
    }
    if to - from + 1 > MAX_REPORT_DAYS {
        return Err(invalid(format!(
            "a report covers at most {MAX_REPORT_DAYS} days"
        )));
    }
    let mut report = business::report(&state.store, &b.id, from, to).await?;
    report["follower_count"] = json!(state.store.follower_count(&b.id).await?);
    Ok(out.ok(&report))
}

const Q_PARAM: QueryParam = QueryParam {
    name: "q",
    required: false,
    schema: r#"{"type": "string", "maxLength": 100, "description": "a prefix of a word of the name"}"#,
};
const CATEGORY_PARAM: QueryParam = QueryParam {
    name: "category",
    required: false,
    schema: r#"{"type": "string", "maxLength": 50}"#,
};
const BUSINESS_PARAM: QueryParam = QueryParam {
    name: "business_id",
    required: true,
    schema: r#"{"type": "string", "maxLength": 128}"#,
};
const STATUS_PARAM: QueryParam = QueryParam {
    name: "status",
    required: false,
    schema: r#"{"type": "string", "enum": ["pending", "approved", "rejected"], "default": "pending"}"#,
};
const FROM_PARAM: QueryParam = QueryParam {
    name: "from",
    required: false,
    schema: r#"{"type": "string", "format": "date", "description": "first day (UTC); 29 days before `to` by default"}"#,
};
const TO_PARAM: QueryParam = QueryParam {
    name: "to",
    required: false,
    schema: r#"{"type": "string", "format": "date", "description": "last day (UTC); today by default"}"#,
};

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    let page: &'static [QueryParam] = &[LIMIT_PARAM, CURSOR_PARAM];
    api.route(
        r(
            "POST",
            "/api/business-profiles",
            "Creates a business profile that I own",
            Some("BusinessRequest"),
            (201, Some("BusinessResponse")),
            &[400],
            &[],
        ),
        create,
    );
    api.route(
        r(
            "GET",
            "/api/business-profiles",
            "Business profiles by a prefix of a word of their name and by category, by id",
            None,
            (200, Some("BusinessList")),
            &[400],
            &[Q_PARAM, CATEGORY_PARAM, LIMIT_PARAM, CURSOR_PARAM],
        ),
        search,
    );
    api.route(
        r(
            "GET",
            "/api/business-profiles/{id}",
            "A business profile (counts a profile view)",
            None,
            (200, Some("BusinessResponse")),
            &[404],
            &[],
        ),
        get,
    );
    api.route(
        r(
            "PATCH",
            "/api/business-profiles/{id}",
            "Edits a business profile (its owner or admins; null clears an optional field)",
            Some("BusinessPatch"),
            (200, Some("BusinessResponse")),
            &[400, 403, 404],
            &[],
        ),
        update,
    );
    api.route(
        r(
            "PUT",
            "/api/business-profiles/{id}/admins/{user_id}",
            "Makes a user an admin of the business and its channels (its owner)",
            None,
            (200, Some("BusinessResponse")),
            &[400, 403, 404, 409],
            &[],
        ),
        add_admin,
    );
    api.route(
        r(
            "DELETE",
            "/api/business-profiles/{id}/admins/{user_id}",
            "Takes a user's admin role in the business and its channels (its owner; idempotent)",
            None,
            (200, Some("BusinessResponse")),
            &[403, 404],
            &[],
        ),
        remove_admin,
    );
    api.route(
        r(
            "POST",
            "/api/business-profiles/{id}/follow",
            "Follows a business (idempotent): its posts come into my feed",
            None,
            (204, None),
            &[404],
            &[],
        ),
        follow,
    );
    api.route(
        r(
            "DELETE",
            "/api/business-profiles/{id}/follow",
            "Stops following a business (idempotent)",
            None,
            (204, None),
            &[],
            &[],
        ),
        unfollow,
    );
    api.route(
        r(
            "GET",
            "/api/business-profiles/{id}/posts",
            "A business's posts I may see, newest first",
            None,
            (200, Some("PostList")),
            &[400, 404],
            page,
        ),
        posts,
    );
    api.route(
        r(
            "POST",
            "/api/business-posts",
            "Posts for a business I run (its owner or admins): in its followers' feeds",
            Some("BusinessPostRequest"),
            (201, Some("PostResponse")),
            &[400, 403, 404],
            &[],
        ),
        create_post,
    );
    api.route(
        r("POST", "/api/company-channels", "Creates a company channel: a room of type channel where the business's owner and admins post and subscribers read",
          Some("ChannelRequest"), (201, Some("ChannelResponse")), &[400, 403, 404], &[]),
        create_channel,
    );
    api.route(
        r(
            "GET",
            "/api/company-channels",
            "A business's channels, oldest first",
            None,
            (200, Some("ChannelList")),
            &[400, 404],
            &[BUSINESS_PARAM],
        ),
        channels,
    );
    api.route(
        r(
            "POST",
            "/api/company-channels/{id}/subscribe",
            "Subscribes to a channel (idempotent; at most limits.max_channel_subscribers)",
            None,
            (204, None),
            &[404, 409],
            &[],
        ),
        subscribe,
    );
    api.route(
        r(
            "DELETE",
            "/api/company-channels/{id}/subscribe",
            "Unsubscribes from a channel (idempotent)",
            None,
            (204, None),
            &[404, 409],
            &[],
        ),
        unsubscribe,
    );
    api.route(
        r(
            "POST",
            "/api/business-profiles/{id}/connections",
            "A business I run asks this one to connect",
            Some("ConnectionRequest"),
            (201, Some("ConnectionResponse")),
            &[400, 403, 404, 409],
            &[],
        ),
        request_connection,
    );
    api.route(
        r(
            "POST",
            "/api/connections/{id}/accept",
            "Accepts a request to a business I run",
            None,
            (200, Some("ConnectionResponse")),
            &[403, 404, 409],
            &[],
        ),
        accept,
    );
    api.route(
        r(
            "POST",
            "/api/connections/{id}/decline",
            "Declines a request to a business I run (the pair may ask again)",
            None,
            (200, Some("ConnectionResponse")),
            &[403, 404, 409],
            &[],
        ),
        decline,
    );
    api.route(
        r(
            "GET",
            "/api/business-profiles/{id}/connections",
            "A business's connections (its owner and admins also see requests), newest first",
            None,
            (200, Some("ConnectionList")),
            &[404],
            &[],
        ),
        connections,
    );
    api.route(
        r(
            "POST",
            "/api/business-profiles/{id}/verification",
            "The owner asks for the verified badge, with documents (files they uploaded)",
            Some("VerificationRequest"),
            (201, Some("VerificationResponse")),
            &[400, 403, 404, 409],
            &[],
        ),
        request_verification,
    );
    api.route(
        r(
            "GET",
            "/api/admin/verifications",
            "Admins: verification requests by status, oldest first",
            None,
            (200, Some("VerificationList")),
            &[400, 403],
            &[STATUS_PARAM, LIMIT_PARAM, CURSOR_PARAM],
        ),
        verification_queue,
    );
    api.route(
        r(
            "POST",
            "/api/admin/verifications/{id}/approve",
            "Admins: approves a request (the business is verified, its owner told)",
            None,
            (200, Some("VerificationResponse")),
            &[403, 404, 409],
            &[],
        ),
        approve,
    );
    api.route(
        r(
            "POST",
            "/api/admin/verifications/{id}/reject",
            "Admins: rejects a request with a reason (its owner told)",
            Some("VerificationRejection"),
            (200, Some("VerificationResponse")),
            &[400, 403, 404, 409],
            &[],
        ),
        reject,
    );
    api.route(
        r("GET", "/api/business-analytics", "A business's analytics (its owner and admins): totals and daily series of followers, profile views, post views, likes, comments, channel subscribers",
          None, (200, Some("BusinessAnalytics")), &[400, 403, 404], &[BUSINESS_PARAM, FROM_PARAM, TO_PARAM]),
        analytics,
    );
}
