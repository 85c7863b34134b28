//! Administration over REST (ADM-1, ADM-3): accounts — listed, searched, viewed, suspended,
//! unsuspended, their role changed — and the audit log. Every call is for admins only (403
//! `forbidden` to anyone else, before anything else is looked at); every change is audited
//! through `crate::audit::record`.

use actix_web::{web, HttpResponse};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{User, UserRole};
use serde::Deserialize;
use serde_json::json;

use super::people::{page_limit, CURSOR_PARAM};
use super::social::is_admin;
use super::{invalid, Api, ApiError, ApiResult, Authed, Body, Out, QueryParam, RouteDoc};
use crate::admin::{self, AccountView, MAX_REASON_CHARS};
use crate::audit::{self, Target};
use crate::state::AppState;
use crate::store::{AuditFilter, Suspension};

/// A filter's text (an id, an action), at most.
const MAX_FILTER_CHARS: usize = 256;

/// 403 `forbidden` unless the caller is an admin.
pub(super) async fn admin_only(state: &AppState, who: &Authed) -> ApiResult<()> {
    if !is_admin(state, &who.user_id).await? {
        return Err(ApiError::new(ErrorCode::Forbidden, "only admins do this"));
    }
    Ok(())
}

fn no_user() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such user")
}

fn last_admin() -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        "the last admin cannot be suspended or demoted",
    )
}

async fn account(state: &AppState, id: &str) -> ApiResult<User> {
    state.store.user_by_id(id).await?.ok_or_else(no_user)
}

/// Admins not suspended at `now`.
async fn active_admins(state: &AppState, now: i64) -> ApiResult<usize> {
    let mut active = 0;
    for id in state.store.admin_ids().await? {
        if admin::suspension_in_force(&state.store, &id, now)
            .await?
            .is_none()
        {
            active += 1;
        }
    }
    Ok(active)
}

/// Whether taking `user`'s admin rights away (a demotion or a suspension) would leave no
/// admin.
async fn is_last_admin(state: &AppState, user: &User) -> ApiResult<bool> {
    Ok(user.role == UserRole::Admin && state.store.admin_count().await? <= 1)
}

#[derive(Deserialize)]
struct UserQuery {
    q: Option<String>,
    status: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /api/admin/users?q=&status=`: accounts (all, or those whose id, email, phone or a name
/// prefix is `q`), `active` or `suspended` ones only with `status`.
async fn users(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<UserQuery>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let limit = page_limit(q.limit)?;
    let status = q.status.as_deref();
    if !matches!(status, None | Some("active") | Some("suspended")) {
        return Err(invalid("status is active or suspended"));
    }
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > MAX_FILTER_CHARS) {
        return Err(invalid(format!(
            "q must be at most {MAX_FILTER_CHARS} characters"
        )));
    }
    let after = q.cursor.as_deref();
    let now = dovie_actors::now_ms();
    // The page read (accounts, or the suspensions' accounts), and the cursor after it.
    let (page, next) = if status == Some("suspended") && text.is_none() {
        let list = state.store.suspensions(after, limit).await?;
        let next = (list.len() == limit)
            .then(|| list.last().map(|s| s.user_id.clone()))
            .flatten();
        let ids: Vec<String> = list
            .into_iter()
            .filter(|s| s.active(now))
            .map(|s| s.user_id)
            .collect();
        (state.store.users_by_ids(&ids).await?, next)
    } else {
        let list = state.store.admin_users(text, after, limit).await?;
        let next = (list.len() == limit)
            .then(|| list.last().map(|u| u.id.clone()))
            .flatten();
        (list, next)
    };
    let mut views: Vec<AccountView> = Vec::with_capacity(page.len());
    for u in page {
        let v = admin::view(&state.store, u).await?;
        if status.is_none_or(|s| s == v.status) {
            views.push(v);
        }
    }
    Ok(out.ok(&json!({ "users": views, "next_cursor": next })))
}

/// `GET /api/admin/users/{id}`: one account, with its sessions.
async fn user(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let u = account(&state, &id).await?;
    let sessions = state
        .store
        .sessions_of(&u.id, dovie_actors::now_ms())
        .await?;
    let view = admin::view(&state.store, u).await?;
    let mut body = serde_json::to_value(&view)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "cannot show the account"))?;
    body["sessions"] = json!(sessions
        .iter()
        .map(|s| json!({
            "id": s.id, "device": s.device, "user_agent": s.user_agent, "ip": s.ip,
            "created_at": s.created_at, "last_seen_at": s.last_seen_at,
        }))
        .collect::<Vec<_>>());
    Ok(out.ok(&body))
}

#[derive(Deserialize)]
struct SuspendBody {
    reason: String,
    #[serde(default)]
    until: Option<i64>,
}

/// `POST /api/admin/users/{id}/suspend`: no login until lifted (or `until`); every session of
/// the account revoked, its sockets told `force_logout` and closed 4003 on every node.
async fn suspend(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<SuspendBody>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let u = account(&state, &id).await?;
    let reason = b.reason.trim();
    if reason.is_empty() || b.reason.chars().count() > MAX_REASON_CHARS {
        return Err(invalid(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters, not all blank"
        )));
    }
    let now = dovie_actors::now_ms();
    if b.until.is_some_and(|t| t <= now) {
        return Err(invalid("until must be in the future"));
    }
    suspend_account(&state, &who, &u, reason, b.until).await?;
    Ok(out.ok(&admin::view(&state.store, u).await?))
}

/// Suspends `u` (already checked: not the actor, not the last admin): writes the suspension,
/// revokes every session (sockets told `force_logout` and closed 4003 on every node) and audits
/// it.
pub(super) async fn suspend_account(
    state: &AppState,
    who: &Authed,
    u: &User,
    reason: &str,
    until: Option<i64>,
) -> ApiResult<()> {
    if u.id == who.user_id {
        return Err(invalid("admins cannot suspend themselves"));
    }
    if is_last_admin(state, u).await? {
        return Err(last_admin());
    }
    let now = dovie_actors::now_ms();
    let was_suspended = admin::suspension_in_force(&state.store, &u.id, now)
        .await?
        .is_some();
    let s = Suspension {
        user_id: u.id.clone(),
        reason: reason.to_string(),
        since: now,
        until,
        by: who.user_id.clone(),
    };
    state.store.put_suspension(&s).await?;
    // Two admins suspending each other at once could leave none able to act: a suspension
    // that leaves no admin in good standing takes itself back.
    if u.role == UserRole::Admin && !was_suspended && active_admins(state, now).await? == 0 {
        state.store.lift_suspension(&u.id).await?;
        return Err(last_admin());
    }
    let sessions = state.store.sessions_of(&u.id, now).await?;
    for session in &sessions {
        super::auth::revoke(state, &session.id, "account suspended").await?;
    }
    audit::record(
        &state.store,
        who.actor(),
        "user.suspended",
        Target {
            kind: "user",
            id: &u.id,
            label: Some(admin::label(u)),
        },
        json!({ "reason": s.reason, "until": s.until, "sessions_revoked": sessions.len() }),
    )
    .await?;
    Ok(())
}

/// `POST /api/admin/users/{id}/unsuspend`: lifts the suspension (if any: answers the account
/// either way).
async fn unsuspend(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let u = account(&state, &id).await?;
    if state.store.lift_suspension(&u.id).await? {
        audit::record(
            &state.store,
            who.actor(),
            "user.unsuspended",
            Target {
                kind: "user",
                id: &u.id,
                label: Some(admin::label(&u)),
            },
            json!({}),
        )
        .await?;
    }
    Ok(out.ok(&admin::view(&state.store, u).await?))
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
}

/// `PUT /api/admin/users/{id}/role` `{"role"}`: the last admin is never demoted.
async fn set_role(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<RoleBody>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let u = account(&state, &id).await?;
    let role = UserRole::parse(&b.role).ok_or_else(|| invalid("role is user or admin"))?;
    if role == u.role {
        return Ok(out.ok(&admin::view(&state.store, u).await?));
    }
    if role == UserRole::User && is_last_admin(&state, &u).await? {
        return Err(last_admin());
    }
    let changed = state.store.set_user_role(&u.id, role).await?;
    // Two admins demoting each other at once both pass the check above; the one that finds no
    // admin left afterwards takes its change back.
    if role == UserRole::User && state.store.admin_count().await? == 0 {
        state.store.set_user_role(&u.id, UserRole::Admin).await?;
        return Err(last_admin());
    }
    audit::record(
        &state.store,
        who.actor(),
        "user.role_changed",
        Target {
            kind: "user",
            id: &u.id,
            label: Some(admin::label(&u)),
        },
        json!({ "from": u.role.as_str(), "to": role.as_str() }),
    )
    .await?;
    Ok(out.ok(&admin::view(&state.store, changed).await?))
}

#[derive(Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// A filter's text, trimmed; blank is none.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// `GET /api/admin/audit-log?actor=&action=&target_type=&target_id=`: newest first.
async fn audit_log(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let limit = page_limit(q.limit)?;
    for (name, v) in [
        ("actor", &q.actor),
        ("action", &q.action),
        ("target_type", &q.target_type),
        ("target_id", &q.target_id),
    ] {
        if given(v).is_some_and(|t| t.chars().count() > MAX_FILTER_CHARS) {
            return Err(invalid(format!(
                "{name} must be at most {MAX_FILTER_CHARS} characters"
            )));
        }
    }
    let target = match (given(&q.target_type), given(&q.target_id)) {
        (Some(t), Some(id)) => Some((t.to_string(), id.to_string())),
        (None, None) => None,
        _ => return Err(invalid("target_type and target_id go together")),
    };
    let filter = AuditFilter {
        actor_id: given(&q.actor).map(str::to_string),
        action: given(&q.action).map(str::to_string),
        target,
        before: q
            .cursor
            .as_deref()
            .and_then(crate::social::parse_time_cursor),
    };
    let entries = state.store.audit_entries(&filter, limit).await?;
    let next = (entries.len() == limit)
        .then(|| {
            entries
                .last()
                .map(|e| crate::social::time_cursor(e.at, &e.id))
        })
        .flatten();
    Ok(out.ok(&json!({ "entries": entries, "next_cursor": next })))
}

const Q_PARAM: QueryParam = QueryParam {
    name: "q",
    required: false,
    schema: r#"{"type": "string", "maxLength": 256, "description": "an id, email or phone, or the start of a name or of one of its words"}"#,
};
const USER_STATUS_PARAM: QueryParam = QueryParam {
    name: "status",
    required: false,
    schema: r#"{"type": "string", "enum": ["active", "suspended"]}"#,
};
const FILTER_PARAMS: [QueryParam; 4] = [
    QueryParam {
        name: "actor",
        required: false,
        schema: r#"{"type": "string", "maxLength": 256, "description": "an account id, or system"}"#,
    },
    QueryParam {
        name: "action",
        required: false,
        schema: r#"{"type": "string", "maxLength": 256}"#,
    },
    QueryParam {
        name: "target_type",
        required: false,
        schema: r#"{"type": "string", "maxLength": 256, "description": "with target_id"}"#,
    },
    QueryParam {
        name: "target_id",
        required: false,
        schema: r#"{"type": "string", "maxLength": 256, "description": "with target_type"}"#,
    },
];

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    const USERS_QUERY: [QueryParam; 4] =
        [Q_PARAM, USER_STATUS_PARAM, super::LIMIT_PARAM, CURSOR_PARAM];
    const AUDIT_QUERY: [QueryParam; 6] = [
        FILTER_PARAMS[0],
        FILTER_PARAMS[1],
        FILTER_PARAMS[2],
        FILTER_PARAMS[3],
        super::LIMIT_PARAM,
        CURSOR_PARAM,
    ];
    api.route(
        r(
            "GET",
            "/api/admin/users",
            "Admins: accounts, searched by id, email, phone or name, by status",
            None,
            (200, Some("AdminUserList")),
            &[400, 403],
            &USERS_QUERY,
        ),
        users,
    );
    api.route(
        r(
            "GET",
            "/api/admin/users/{id}",
            "Admins: one account with its status, last seen time and sessions",
            None,
            (200, Some("AdminUser")),
            &[403, 404],
            &[],
        ),
        user,
    );
    api.route(
        r(
            "POST",
            "/api/admin/users/{id}/suspend",
            "Admins: suspends an account (sessions revoked, sockets closed 4003 on every node, login 403 suspended until lifted or until)",
            Some("SuspendRequest"),
            (200, Some("AdminUser")),
            &[400, 403, 404, 409],
            &[],
        ),
        suspend,
    );
    api.route(
        r(
            "POST",
            "/api/admin/users/{id}/unsuspend",
            "Admins: lifts an account's suspension",
            None,
            (200, Some("AdminUser")),
            &[403, 404],
            &[],
        ),
        unsuspend,
    );
    api.route(
        r(
            "PUT",
            "/api/admin/users/{id}/role",
            "Admins: changes an account's role (the last admin is not demoted)",
            Some("RoleRequest"),
            (200, Some("AdminUser")),
            &[400, 403, 404, 409],
            &[],
        ),
        set_role,
    );
    api.route(
        r(
            "GET",
            "/api/admin/audit-log",
            "Admins: the audit log of admin actions and security events, newest first",
            None,
            (200, Some("AuditList")),
            &[400, 403],
            &AUDIT_QUERY,
        ),
        audit_log,
    );
}
