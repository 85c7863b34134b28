//! People: profiles (`/api/users/*`), user search, presence, contacts and QR invites, blocks.
//! Public profiles never carry email or phone; presence shows only where its owner lets it
//! (`people::presence`); blocks are checked on every path that could reach the blocker.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{Theme, User, LOCALES};
use dovie_protocol::rules;
use serde::{Deserialize, Serialize};

use super::{
    invalid, Api, ApiError, ApiResult, Authed, Body, Out, QueryParam, RouteDoc, LIMIT_PARAM,
};
use crate::people::{invite, presence};
use crate::state::AppState;
use crate::store::{text, ContactEntry, ProfilePatch};

const MAX_BIO_CHARS: usize = 500;
const MAX_STATUS_CHARS: usize = 140;
const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Ids one presence query may name.
const MAX_PRESENCE_IDS: usize = 100;
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

impl Page {
    fn limit(&self) -> ApiResult<usize> {
        page_limit(self.limit)
    }
}

/// `?limit=`: absent is [`DEFAULT_PAGE`]; 0 is refused; more than [`MAX_PAGE`] answers that many.
pub(super) fn page_limit(limit: Option<u64>) -> ApiResult<usize> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(0) => Err(invalid("limit must be at least 1")),
        Some(l) if l > super::LIMIT_CEILING => Err(invalid(format!(
            "limit must be at most {}",
            super::LIMIT_CEILING
        ))),
        Some(l) => Ok(l.min(MAX_PAGE as u64) as usize),
    }
}

/// The cursor of the page after `page` (its last item's id), or `None` when `page` was not full.
pub(super) fn next_cursor<T>(page: &[T], limit: usize, id: impl Fn(&T) -> &str) -> Option<String> {
    (page.len() == limit)
        .then(|| page.last().map(|t| id(t).to_string()))
        .flatten()
}

/// The longest search query, in characters.
const MAX_QUERY_CHARS: usize = 256;

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct PresenceQuery {
    #[serde(default)]
    user_ids: String,
}

#[derive(Deserialize)]
struct PatchMe {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    status_message: Option<Option<String>>,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    time_zone: Option<Option<String>>,
    #[serde(default)]
    presence_visible: Option<bool>,
    #[serde(default)]
    discoverable: Option<bool>,
}

#[derive(Deserialize)]
struct UserRef {
    user_id: String,
}

#[derive(Serialize)]
struct ContactView {
    user: dovie_protocol::model::PublicUser,
    mutual: bool,
    added_at: i64,
}

#[derive(Serialize)]
struct BlockView {
    user: dovie_protocol::model::PublicUser,
    blocked_at: i64,
}

fn no_user() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such user")
}

/// Optional text: trimmed, blank means none, at most `max` characters.
fn optional_text(v: Option<String>, max: usize, name: &str) -> ApiResult<Option<String>> {
    match v {
        Some(t) if t.chars().count() > max => {
            Err(invalid(format!("{name} must be at most {max} characters")))
        }
        Some(t) => Ok(Some(t.trim().to_string()).filter(|t| !t.is_empty())),
        None => Ok(None),
    }
}

fn patch_of(b: PatchMe) -> ApiResult<ProfilePatch> {
    let display_name = match b.display_name {
        Some(n) if n.chars().count() > MAX_DISPLAY_NAME_CHARS || !rules::not_blank(&n) => {
            return Err(invalid(
                "display_name must be 1 to 64 characters, not all blank",
            ))
        }
        Some(n) => Some(n.trim().to_string()),
        None => None,
    };
    let theme = match b.theme.as_deref() {
        Some(t) => Some(
            Theme::parse(t)
                .ok_or_else(|| invalid("theme must be \"light\", \"dark\" or \"system\""))?,
        ),
        None => None,
    };
    if let Some(l) = &b.locale {
        if !LOCALES.contains(&l.as_str()) {
            return Err(invalid(format!(
                "locale must be one of {}",
                LOCALES.join(", ")
            )));
        }
    }
    Ok(ProfilePatch {
        display_name,
        bio: b
            .bio
            .map(|v| optional_text(v, MAX_BIO_CHARS, "bio"))
            .transpose()?,
        status_message: b
            .status_message
            .map(|v| optional_text(v, MAX_STATUS_CHARS, "status_message"))
            .transpose()?,
        theme,
        locale: b.locale,
        time_zone: b.time_zone.map(time_zone).transpose()?,
        presence_visible: b.presence_visible,
        discoverable: b.discoverable,
        avatar_url: None,
    })
}

/// A time zone as given (an IANA name; blank or null: none).
fn time_zone(v: Option<String>) -> ApiResult<Option<String>> {
    let Some(name) = v.filter(|n| !n.trim().is_empty()) else {
        return Ok(None);
    };
    name.trim()
        .parse::<chrono_tz::Tz>()
        .map(|tz| Some(tz.name().to_string()))
        .map_err(|_| invalid("time_zone must be an IANA time zone, like Asia/Seoul"))
}

/// The target of a contact or block: an existing other user.
async fn other_user(state: &AppState, me: &str, id: &str) -> ApiResult<User> {
    if id == me {
        return Err(ApiError::new(ErrorCode::Conflict, "that is you"));
    }
    state.store.user_by_id(id).await?.ok_or_else(no_user)
}

/// Public profiles of `users` as `viewer` sees them (presence where shown).
async fn profiles(
    state: &AppState,
    viewer: &str,
    users: &[User],
) -> ApiResult<Vec<dovie_protocol::model::PublicUser>> {
    let shown = presence::visible(state, viewer, users).await?;
    Ok(users
        .iter()
        .map(|u| presence::profile(u, shown.get(&u.id)))
        .collect())
}

async fn patch_me(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<PatchMe>,
) -> ApiResult<HttpResponse> {
    let patch = patch_of(b)?;
    let user = state.store.update_profile(&who.user_id, &patch).await?;
    state.profiles.forget(&who.user_id);
    Ok(out.ok(&serde_json::json!({ "user": user })))
}

/// A user's profile: my own account in full; someone else's public profile if they let me see
/// it — we share a room, either keeps the other as a contact, or they are discoverable — and
/// they have not blocked me. Others are not found, so ids cannot be probed.
async fn user(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let target = state.store.user_by_id(&id).await?.ok_or_else(no_user)?;
    if *id == who.user_id {
        return Ok(out.ok(&serde_json::json!({ "user": target })));
    }
    let store = &state.store;
    if store.blocked_by(&target.id).await?.contains(&who.user_id) {
        return Err(no_user());
    }
    let related = target.discoverable
        || store.co_members(&who.user_id).await?.contains(&target.id)
        || !store
            .has_contacts(&who.user_id, std::slice::from_ref(&target.id))
            .await?
            .is_empty()
        || !store
            .contact_of(&who.user_id, std::slice::from_ref(&target.id))
            .await?
            .is_empty();
    if !related {
        return Err(no_user());
    }
    let p = profiles(&state, &who.user_id, &[target]).await?;
    Ok(out.ok(&serde_json::json!({ "user": p.into_iter().next() })))
}

/// `GET /api/users?q=`: an exact email or phone finds its account; anything else is a prefix
/// of the display names of discoverable users. Users who blocked me are never found.
async fn search(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    if q.q.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!(
            "q must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let query = q.q.trim();
    let limit = page_limit(q.limit)?;
    let store = &state.store;
    let blockers = store.blockers_of(&who.user_id).await?;
    let (found, next): (Vec<User>, Option<String>) = if query.is_empty() {
        (Vec::new(), None)
    } else if query.contains('@') {
        let u = store.user_by_email(&query.to_lowercase()).await?;
        (u.map(|r| r.user).into_iter().collect(), None)
    } else if rules::valid_phone(query) {
        (
            store.user_by_phone(query).await?.into_iter().collect(),
            None,
        )
    } else {
        let prefix = text::normalize_name(query);
        let page = store
            .search_users(&prefix, q.cursor.as_deref(), limit)
            .await?;
        let next = next_cursor(&page, limit, |u| &u.id);
        (page, next)
    };
    let found: Vec<User> = found
        .into_iter()
        .filter(|u| u.id != who.user_id && !blockers.contains(&u.id))
        .collect();
    let users = profiles(&state, &who.user_id, &found).await?;
    Ok(out.ok(&serde_json::json!({ "users": users, "next_cursor": next })))
}

async fn presence_of(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<PresenceQuery>,
) -> ApiResult<HttpResponse> {
    let mut ids: Vec<String> = Vec::new();
    for id in q
        .user_ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    if ids.len() > MAX_PRESENCE_IDS {
        return Err(invalid(format!(
            "user_ids names at most {MAX_PRESENCE_IDS} users"
        )));
    }
    let users = state.store.users_by_ids(&ids).await?;
    let shown = presence::visible(&state, &who.user_id, &users).await?;
    let map: HashMap<String, presence::Presence> = shown.into_iter().collect();
    Ok(out.ok(&serde_json::json!({ "presence": map })))
}

async fn contact_views(
    state: &AppState,
    me: &str,
    entries: Vec<ContactEntry>,
) -> ApiResult<Vec<ContactView>> {
    let ids: Vec<String> = entries.iter().map(|e| e.user_id.clone()).collect();
    let users = state.store.users_by_ids(&ids).await?;
    let mutual = state.store.contact_of(me, &ids).await?;
    let shown = profiles(state, me, &users).await?;
    let by_id: HashMap<&str, &dovie_protocol::model::PublicUser> =
        shown.iter().map(|p| (p.id.as_str(), p)).collect();
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let user = (*by_id.get(e.user_id.as_str())?).clone();
            Some(ContactView {
                mutual: mutual.contains(&e.user_id),
                user,
                added_at: e.added_at,
            })
        })
        .collect())
}

async fn list_contacts(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let limit = page.limit()?;
    let entries = state
        .store
        .contacts(&who.user_id, page.cursor.as_deref(), limit)
        .await?;
    let next = next_cursor(&entries, limit, |e| &e.user_id);
    let contacts = contact_views(&state, &who.user_id, entries).await?;
    Ok(out.ok(&serde_json::json!({ "contacts": contacts, "next_cursor": next })))
}

/// Makes `other` my contact (refused across a block); answers the view and whether it is new.
async fn befriend(state: &AppState, me: &str, other: &User) -> ApiResult<(ContactView, bool)> {
    if state.store.blocked_either(me, &other.id).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you cannot add this user (blocked)",
        ));
    }
    let (entry, new) = state
        .store
        .add_contact(me, &other.id, dovie_actors::now_ms())
        .await?;
    let view = contact_views(state, me, vec![entry])
        .await?
        .into_iter()
        .next()
        .ok_or_else(no_user)?;
    Ok((view, new))
}

async fn add_contact(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<UserRef>,
) -> ApiResult<HttpResponse> {
    let other = other_user(&state, &who.user_id, &b.user_id).await?;
    let (contact, new) = befriend(&state, &who.user_id, &other).await?;
    let body = serde_json::json!({ "contact": contact });
    Ok(out.created_or_ok(new, &body))
}

async fn remove_contact(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if !state.store.remove_contact(&who.user_id, &id).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "no such contact"));
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn create_invite(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
) -> ApiResult<HttpResponse> {
    let expires_at = dovie_actors::now_ms() + invite::INVITE_TTL_MS;
    let token = invite::sign(&state.auth, &who.user_id, expires_at);
    let url = format!("{}/invite/{token}", state.config.public_url);
    Ok(out.created(&serde_json::json!({
        "invite": { "token": token, "url": url, "expires_at": expires_at }
    })))
}

fn invite_url(state: &AppState, token: &str) -> ApiResult<String> {
    invite::verify(&state.auth, token, dovie_actors::now_ms())?;
    Ok(format!("{}/invite/{token}", state.config.public_url))
}

async fn invite_png(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let png = invite::png(&invite_url(&state, &token)?)?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("cache-control", "private, max-age=300"))
        .body(png))
}

async fn invite_svg(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let svg = invite::svg(&invite_url(&state, &token)?)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("cache-control", "private, max-age=300"))
        .body(svg))
}

async fn accept_invite(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let inv = invite::verify(&state.auth, &token, dovie_actors::now_ms())?;
    let inviter = other_user(&state, &who.user_id, &inv.inviter)
        .await
        .map_err(|e| match e.0.code {
            ErrorCode::NotFound => ApiError::new(
                ErrorCode::VerificationFailed,
                "the invite's account no longer exists",
            ),
            _ => e,
        })?;
    let (contact, _) = befriend(&state, &who.user_id, &inviter).await?;
    let me = state
        .store
        .user_by_id(&who.user_id)
        .await?
        .ok_or_else(no_user)?;
    befriend(&state, &inviter.id, &me).await?;
    // The view was made before the inviter added me back: both are contacts now.
    let contact = ContactView {
        mutual: true,
        ..contact
    };
    Ok(out.ok(&serde_json::json!({ "contact": contact })))
}

/// Tells every node's fan-out and the pair's direct room that a block changed.
async fn blocks_changed(state: &AppState, me: &str, other: &str, on: bool) -> ApiResult<()> {
    state.registry.block_changed(me, other, on);
    if let Some(c) = &state.cluster {
        c.block_changed(me, other, on);
    }
    if let Some(room) = state.store.direct_room(me, other).await? {
        let blocked = state.store.blocked_either(me, other).await?;
        state
            .directory
            .room(&room)
            .do_send(dovie_actors::room::SetBlocked { blocked });
    }
    Ok(())
}

async fn list_blocks(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let limit = page.limit()?;
    let entries = state
        .store
        .blocks(&who.user_id, page.cursor.as_deref(), limit)
        .await?;
    let next = next_cursor(&entries, limit, |e| &e.user_id);
    let ids: Vec<String> = entries.iter().map(|e| e.user_id.clone()).collect();
    let users: HashMap<String, User> = state
        .store
        .users_by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let blocks: Vec<BlockView> = entries
        .into_iter()
        .filter_map(|e| {
            Some(BlockView {
                user: users.get(&e.user_id)?.public(),
                blocked_at: e.added_at,
            })
        })
        .collect();
    Ok(out.ok(&serde_json::json!({ "blocks": blocks, "next_cursor": next })))
}

async fn block(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<UserRef>,
) -> ApiResult<HttpResponse> {
    let other = other_user(&state, &who.user_id, &b.user_id).await?;
    let (entry, new) = state
        .store
        .block(&who.user_id, &other.id, dovie_actors::now_ms())
        .await?;
    blocks_changed(&state, &who.user_id, &other.id, true).await?;
    let body = serde_json::json!({ "block": BlockView { user: other.public(), blocked_at: entry.added_at } });
    Ok(out.created_or_ok(new, &body))
}

async fn unblock(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if !state.store.unblock(&who.user_id, &id).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "no such block"));
    }
    blocks_changed(&state, &who.user_id, &id, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(super) const CURSOR_PARAM: QueryParam = QueryParam {
    name: "cursor",
    required: false,
    schema: r#"{"type": "string", "description": "next_cursor of the previous page"}"#,
};

pub fn register(api: &mut Api) {
    let r = |method, path, summary, auth, body, ok, errors, query, also_ok| RouteDoc {
        method,
        path,
        summary,
        auth,
        body,
        ok,
        errors,
        query,
        also_ok,
    };
    api.route(
        r(
            "PATCH",
            "/api/users/me",
            "Change my profile and settings",
            true,
            Some("PatchMeRequest"),
            (200, Some("UserResponse")),
            &[400],
            &[],
            &[],
        ),
        patch_me,
    );
    api.route(
        r("GET", "/api/users", "Find people: an exact email or phone, or a display-name prefix among discoverable users", true, None,
          (200, Some("UserList")), &[400], &[
            QueryParam { name: "q", required: false, schema: r#"{"type": "string", "maxLength": 256}"# },
            LIMIT_PARAM, CURSOR_PARAM], &[]),
        search,
    );
    api.route(
        r(
            "GET",
            "/api/users/{id}",
            "A user's profile: mine in full, another's public profile if they let me see it",
            true,
            None,
            (200, Some("ProfileResponse")),
            &[404],
            &[],
            &[],
        ),
        user,
    );
    api.route(
        r("GET", "/api/presence", "Online and last seen of users who show it to me (shared room or they keep me as a contact)", true, None,
          (200, Some("PresenceMap")), &[400], &[QueryParam { name: "user_ids", required: false,
            schema: r#"{"type": "string", "description": "comma-separated user ids, at most 100"}"# }], &[]),
        presence_of,
    );
    api.route(
        r(
            "GET",
            "/api/contacts",
            "My contacts, by user id, with whether each keeps me too",
            true,
            None,
            (200, Some("ContactList")),
            &[],
            &[LIMIT_PARAM, CURSOR_PARAM],
            &[],
        ),
        list_contacts,
    );
    api.route(
        r(
            "POST",
            "/api/contacts",
            "Add a contact (200 if already one)",
            true,
            Some("UserRefRequest"),
            (201, Some("ContactResponse")),
            &[400, 403, 404, 409],
            &[],
            &[200],
        ),
        add_contact,
    );
    api.route(
        r(
            "DELETE",
            "/api/contacts/{user_id}",
            "Remove a contact",
            true,
            None,
            (204, None),
            &[404],
            &[],
            &[],
        ),
        remove_contact,
    );
    api.route(
        r(
            "POST",
            "/api/contacts/invites",
            "A signed contact invite, valid 24 h, with its link under public_url",
            true,
            None,
            (201, Some("InviteResponse")),
            &[],
            &[],
            &[],
        ),
        create_invite,
    );
    api.route(
        r(
            "GET",
            "/api/contacts/invites/{token}/qr.png",
            "The invite link as a QR code (PNG); no auth",
            false,
            None,
            (200, Some("Png")),
            &[400],
            &[],
            &[],
        ),
        invite_png,
    );
    api.route(
        r(
            "GET",
            "/api/contacts/invites/{token}/qr.svg",
            "The invite link as a QR code (SVG); no auth",
            false,
            None,
            (200, Some("Svg")),
            &[400],
            &[],
            &[],
        ),
        invite_svg,
    );
    api.route(
        r(
            "POST",
            "/api/contacts/invites/{token}/accept",
            "Accept an invite: the inviter and I become each other's contacts",
            true,
            None,
            (200, Some("ContactResponse")),
            &[400, 403, 409],
            &[],
            &[],
        ),
        accept_invite,
    );
    api.route(
        r(
            "GET",
            "/api/blocks",
            "Whom I blocked",
            true,
            None,
            (200, Some("BlockList")),
            &[],
            &[LIMIT_PARAM, CURSOR_PARAM],
            &[],
        ),
        list_blocks,
    );
    api.route(
        r("POST", "/api/blocks", "Block a user: no direct room, group add, message or event of theirs reaches me (200 if already blocked)", true, Some("UserRefRequest"),
          (201, Some("BlockResponse")), &[400, 404, 409], &[], &[200]),
        block,
    );
    api.route(
        r(
            "DELETE",
            "/api/blocks/{user_id}",
            "Unblock a user",
            true,
            None,
            (204, None),
            &[404],
            &[],
            &[],
        ),
        unblock,
    );
}
