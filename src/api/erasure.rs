//! Account erasure (OPS-9, ADM-1): `DELETE /api/me` `{"password"}` and, for admins,
//! `DELETE /api/admin/users/{id}`.
//!
//! Asked for, the account stops at once — suspended with [`ERASING`] (no login), every session
//! revoked (sockets told `force_logout`, closed 4003 on every node) — and the call answers 202.
//! The erasure then runs off the request path: every message the account sent (rooms it left
//! too) becomes a tombstone through its room (members are told `message_deleted`); it leaves
//! every room (an owner's group passes to its longest-standing admin, else member); its files'
//! bytes and previews, its exports' archives, its posts, comments and likes, follows both ways,
//! contacts, blocks both ways, push subscriptions, location history and position, saved
//! commands and reminders go; last the account itself and what names it
//! ([`crate::store::PrivacyStore::forget_account`]) — after which the email may register again.
//!
//! Every step is idempotent: a node that dies part way leaves the [`ERASING`] suspension, and
//! the resumer (every [`RESUME_EVERY`], one node per account in a cluster) runs the erasure
//! again. The audit log keeps its entries (`user.erasure_requested`, `user.erased`).

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use dovie_actors::room::{self, Responder};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{User, UserRole};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;

use super::{Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::audit::{self, Actor, Target};
use crate::state::AppState;
use crate::store::{ExportStatus, PostCursor, Suspension};

/// The reason of the suspension that marks an account being erased.
pub const ERASING: &str = "account erasure in progress";
/// How often accounts left part-erased (their node died) are looked for.
pub const RESUME_EVERY: Duration = Duration::from_secs(60);
/// An erasure begun this long ago and still marked is taken up again.
const RESUME_AFTER_MS: i64 = 120_000;
/// Rows read per page.
const PAGE: usize = 500;

/// Accounts whose erasure runs in this process (not started twice here).
static RUNNING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

#[derive(Deserialize)]
struct EraseBody {
    password: String,
}

/// `DELETE /api/me`: erases my account (my password confirms it).
async fn erase_me(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<EraseBody>,
) -> ApiResult<HttpResponse> {
    let user = state
        .store
        .user_by_id(&who.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
    if !state.auth.password_matches(&user, &b.password).await? {
        return Err(ApiError::new(ErrorCode::Unauthorized, "wrong password"));
    }
    if user.role == UserRole::Admin && state.store.admin_count().await? <= 1 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the last admin cannot be erased",
        ));
    }
    begin(&state, who.actor(), &user).await?;
    Ok(out.accepted(&json!({ "erasure": { "user_id": user.id, "status": "erasing" } })))
}

/// `DELETE /api/admin/users/{id}`: an admin erases an account (not their own: `DELETE /api/me`).
async fn erase_user(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    super::admin::admin_only(&state, &who).await?;
    let user = state
        .store
        .user_by_id(&id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
    if user.id == who.user_id {
        return Err(super::invalid(
            "admins erase their own account with DELETE /api/me",
        ));
    }
    if user.role == UserRole::Admin && state.store.admin_count().await? <= 1 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the last admin cannot be erased",
        ));
    }
    begin(&state, who.actor(), &user).await?;
    Ok(out.accepted(&json!({ "erasure": { "user_id": user.id, "status": "erasing" } })))
}

/// Stops the account at once (suspension, sessions revoked), audits the request and starts
/// the erasure.
async fn begin(state: &web::Data<AppState>, actor: Actor<'_>, user: &User) -> ApiResult<()> {
    let now = dovie_actors::now_ms();
    state
        .store
        .put_suspension(&Suspension {
            user_id: user.id.clone(),
            reason: ERASING.into(),
            since: now,
            until: None,
            by: actor.id.to_string(),
        })
        .await?;
    for session in state.store.sessions_of(&user.id, now).await? {
        super::auth::revoke(state, &session.id, "account erased").await?;
    }
    audit::record(
        &state.store,
        actor,
        "user.erasure_requested",
        Target {
            kind: "user",
            id: &user.id,
            label: user.email.as_deref(),
        },
        json!({}),
    )
    .await?;
    spawn(state.clone(), user.clone());
    Ok(())
}

/// Runs the erasure of `user` here unless it already runs here.
fn spawn(state: web::Data<AppState>, user: User) {
    if !RUNNING.lock().insert(user.id.clone()) {
        return;
    }
    actix_rt::spawn(async move {
        let result = erase(&state, &user).await;
        RUNNING.lock().remove(&user.id);
        match result {
            Ok(counts) => {
                tracing::info!(user = %user.id, ?counts, "account erased");
                let system = Actor {
                    id: audit::SYSTEM,
                    ip: None,
                };
                audit::note(
                    &state.store,
                    system,
                    "user.erased",
                    Target {
                        kind: "user",
                        id: &user.id,
                        label: None,
                    },
                    json!(counts),
                )
                .await;
            }
            Err(e) => tracing::warn!(
                user = %user.id, error = %e.0.message,
                "an erasure stopped part way; it is taken up again"
            ),
        }
    });
}

/// What an erasure removed, by kind (for the log and the audit entry).
#[derive(Debug, Default, serde::Serialize)]
struct Counts {
    messages: u64,
    rooms: u64,
    files: u64,
    exports: u64,
    posts: u64,
    comments: u64,
    likes: u64,
    follows: u64,
    contacts: u64,
    blocks: u64,
    push: u64,
    commands: u64,
    reminders: u64,
}

/// Every step of an erasure, each one idempotent.
async fn erase(state: &AppState, user: &User) -> ApiResult<Counts> {
    let store = &state.store;
    let me = user.id.as_str();
    let mine = std::slice::from_ref(&user.id);
    let mut n = Counts::default();

    // Messages become tombstones through their rooms (rooms left too).
    for room_id in store.rooms_sent_in(me).await? {
        let mut after = 0u64;
        loop {
            let page = store.history(&room_id, None, Some(after), PAGE).await?;
            for m in page
                .messages
                .iter()
                .filter(|m| m.sender_id == me && !m.deleted)
            {
                let (reply, rx) = Responder::channel();
                state.directory.room(&room_id).do_send(room::Delete {
                    user_id: audit::SYSTEM.to_string(),
                    message_id: m.id.clone(),
                    moderator: true,
                    reply,
                });
                super::messages::answer(rx).await?;
                n.messages += 1;
            }
            match page.messages.last() {
                Some(last) if page.has_more => after = last.seq,
                _ => break,
            }
        }
    }
    for room_id in store.room_ids_of(me).await? {
        super::rooms::leave_for_good(state, &room_id, me).await?;
        n.rooms += 1;
    }

    // Files and export archives: their bytes first, then the records. Every list below is
    // walked with a cursor, so a row a step leaves behind cannot hold the walk.
    let mut before: Option<String> = None;
    loop {
        let (page, next) = crate::files::uploaded_by(store, me, before.take(), PAGE).await?;
        for f in &page {
            match store.delete_file(&f.id, dovie_actors::now_ms()).await? {
                Some(gone) => state.files.delete_objects(&gone).await,
                None => state.files.delete_objects(f).await,
            }
            n.files += 1;
        }
        match next {
            Some(id) => before = Some(id),
            None => break,
        }
    }
    for e in store.exports_of(me).await? {
        if let Some(o) = &e.object {
            state.files.delete_object(o).await;
        }
        if e.status == ExportStatus::Ready {
            n.exports += 1;
        }
    }

    // The social graph and what I wrote there.
    let mut before: Option<PostCursor> = None;
    loop {
        let page = store.posts_by_authors(mine, before.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        before = Some(PostCursor::of(last));
        for p in &page {
            if store.delete_post(&p.id, dovie_actors::now_ms()).await? {
                super::social::count_trends(state, p, -1).await?;
                n.posts += 1;
            }
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = store.comments_by(me, after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for c in &page {
            n.comments += store.delete_comment(c).await? as u64;
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = store.likes_by(me, after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.0.clone());
        for (post_id, _) in &page {
            store.unlike_post(post_id, me).await?;
            n.likes += 1;
        }
    }
    for followers in [false, true] {
        let mut after = String::new();
        loop {
            let page = if followers {
                store.followers(me, &after, PAGE).await?
            } else {
                store.following(me, &after, PAGE).await?
            };
            let Some(last) = page.last() else { break };
            after = last.clone();
            for other in &page {
                if followers {
                    store.unfollow(other, me).await?;
                } else {
                    store.unfollow(me, other).await?;
                }
                n.follows += 1;
            }
        }
    }

    // People, devices, places, assistants.
    let mut after: Option<String> = None;
    loop {
        let page = store.contacts(me, after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        for c in &page {
            store.remove_contact(me, &c.user_id).await?;
            n.contacts += 1;
        }
    }
    for other in store.blocked_by(me).await? {
        store.unblock(me, &other).await?;
        n.blocks += 1;
    }
    for other in store.blockers_of(me).await? {
        store.unblock(&other, me).await?;
        n.blocks += 1;
    }
    for s in store.web_push_of(mine).await? {
        store.delete_web_push(me, &s.endpoint).await?;
        n.push += 1;
    }
    for t in store.apns_tokens_of(mine).await? {
        store.delete_apns_token(me, &t.token).await?;
        n.push += 1;
    }
    store.clear_history(me).await?;
    store.remove_nearby(me).await?;
    for c in store.commands(me).await? {
        store.delete_command(me, &c.id).await?;
        n.commands += 1;
    }
    for r in store.reminders_of(me).await? {
        store.delete_reminder(me, &r.id).await?;
        n.reminders += 1;
    }

    // Last, the account and what names it: the email is free again.
    store.forget_account(user).await?;
    state.profiles.forget(me);
    Ok(n)
}

/// Takes up erasures left part way (their node died), every [`RESUME_EVERY`]; in a cluster
/// each account's by one node.
pub fn spawn_resumer(state: web::Data<AppState>) {
    actix_rt::spawn(async move {
        loop {
            tokio::time::sleep(RESUME_EVERY).await;
            let mut after: Option<String> = None;
            loop {
                let page = match state.store.suspensions(after.as_deref(), PAGE).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e.message, "cannot list suspensions");
                        break;
                    }
                };
                let now = dovie_actors::now_ms();
                for s in &page {
                    let due = s.reason == ERASING && s.since < now - RESUME_AFTER_MS;
                    let here = state
                        .cluster
                        .as_ref()
                        .is_none_or(|c| c.places_here(&s.user_id));
                    if !due || !here {
                        continue;
                    }
                    match state.store.user_by_id(&s.user_id).await {
                        Ok(Some(user)) => spawn(state.clone(), user),
                        Ok(None) => {
                            // The account went; only its mark is left.
                            let _ = state.store.lift_suspension(&s.user_id).await;
                        }
                        Err(e) => tracing::warn!(error = %e.message, "cannot read an account"),
                    }
                }
                if page.len() < PAGE {
                    break;
                }
                after = page.last().map(|s| s.user_id.clone());
            }
        }
    });
}

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    api.route(
        r(
            "DELETE",
            "/api/me",
            "Erases my account (my password confirms it): it stops at once; messages become tombstones, rooms, files, posts, follows, contacts, subscriptions and location history go; the email may register again",
            Some("EraseRequest"),
            (202, Some("ErasureResponse")),
            &[400, 401, 409],
            &[],
        ),
        erase_me,
    );
    api.route(
        r(
            "DELETE",
            "/api/admin/users/{id}",
            "Admins: erases an account as DELETE /api/me does (not their own; never the last admin)",
            None,
            (202, Some("ErasureResponse")),
            &[400, 403, 404, 409],
            &[],
        ),
        erase_user,
    );
}
