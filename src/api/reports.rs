//! Reports (ADM-4): users report messages, users, posts, comments and rooms they can see, with
//! a snapshot of the target as it was; admins list them (reports of one target grouped by a
//! count) and resolve them — dismissed, the content deleted, or its author suspended — every
//! open report of that target at once, each reporter told (`report_resolved`), the resolution
//! audited.

use actix_web::{web, HttpResponse};
use dovie_actors::room::{self, Responder};
use dovie_protocol::error::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::admin_only;
use super::people::{page_limit, CURSOR_PARAM};
use super::social::{count_for_business, count_trends, visible_post};
use super::{invalid, Api, ApiError, ApiResult, Authed, Body, Out, QueryParam, RouteDoc};
use crate::audit::{self, Target};
use crate::state::AppState;
use crate::store::ReportRecord;

/// What can be reported.
pub const TARGET_TYPES: [&str; 5] = ["message", "user", "post", "comment", "room"];
/// Why.
pub const REASONS: [&str; 5] = ["spam", "abuse", "harassment", "illegal", "other"];
/// How an admin resolves a report.
pub const ACTIONS: [&str; 3] = ["dismiss", "delete_content", "suspend_user"];
/// A reporter's comment or an admin's note, at most (characters).
pub const MAX_COMMENT_CHARS: usize = 1000;
/// An id named in a report, at most (characters).
const MAX_ID_CHARS: usize = 128;

#[derive(Deserialize)]
struct ReportBody {
    target_type: String,
    target_id: String,
    reason: String,
    #[serde(default)]
    comment: Option<String>,
}

/// What the reporter may not see is answered as missing; other errors (a store outage) stay.
fn unseen(e: ApiError, missing: &'static str) -> ApiError {
    if e.0.code == ErrorCode::Forbidden {
        ApiError::new(ErrorCode::NotFound, missing)
    } else {
        e
    }
}

/// The target as `who` sees it now (its snapshot) and the account behind it, if `who` may see
/// it; else not found.
async fn seen(state: &AppState, who: &str, kind: &str, id: &str) -> ApiResult<(Value, String)> {
    match kind {
        "message" => {
            // Not a member: as if there were no such message (a report tells nothing).
            let m = super::messages::member_message(state, id, who)
                .await
                .map_err(|e| unseen(e, "no such message"))?;
            if m.deleted {
                return Err(ApiError::new(ErrorCode::NotFound, "no such message"));
            }
            Ok((
                json!({
                    "id": m.id, "room_id": m.room_id, "seq": m.seq, "sender_id": m.sender_id,
                    "content": m.content, "attachments": m.attachments, "created_at": m.created_at,
                }),
                m.sender_id,
            ))
        }
        "user" => {
            let u = state
                .store
                .user_by_id(id)
                .await?
                .filter(|_| id != who)
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
            Ok((
                json!({
                    "id": u.id, "display_name": u.display_name, "bio": u.bio,
                    "status_message": u.status_message, "avatar_url": u.avatar_url,
                }),
                u.id,
            ))
        }
        "post" => {
            let p = visible_post(state, who, id).await?;
            Ok((
                json!({
                    "id": p.id, "author_id": p.author_id, "business_id": p.business_id,
                    "content": p.content, "attachments": p.attachments,
                    "created_at": p.created_at,
                }),
                p.author_id,
            ))
        }
        "comment" => {
            let no_comment = || ApiError::new(ErrorCode::NotFound, "no such comment");
            let c = state.store.comment(id).await?.ok_or_else(no_comment)?;
            visible_post(state, who, &c.post_id)
                .await
                .map_err(|e| match e.0.code {
                    ErrorCode::NotFound | ErrorCode::Forbidden => no_comment(),
                    _ => e,
                })?;
            Ok((
                json!({
                    "id": c.id, "post_id": c.post_id, "author_id": c.author_id,
                    "content": c.content, "created_at": c.created_at,
                }),
                c.author_id,
            ))
        }
        "room" => {
            let r = super::rooms::member_room(state, id, who)
                .await
                .map_err(|e| unseen(e, "no such room"))?;
            Ok((
                json!({
                    "id": r.id, "type": r.kind, "name": r.name, "created_by": r.created_by,
                    "member_count": r.member_ids.len(),
                }),
                r.created_by,
            ))
        }
        _ => Err(invalid(
            "target_type is message, user, post, comment or room",
        )),
    }
}

/// `POST /api/reports`: 201 with the new report, 200 with the reporter's open one of the same
/// target.
async fn file(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<ReportBody>,
) -> ApiResult<HttpResponse> {
    if !TARGET_TYPES.contains(&b.target_type.as_str()) {
        return Err(invalid(
            "target_type is message, user, post, comment or room",
        ));
    }
    if !REASONS.contains(&b.reason.as_str()) {
        return Err(invalid(
            "reason is spam, abuse, harassment, illegal or other",
        ));
    }
    if b.target_id.is_empty() || b.target_id.chars().count() > MAX_ID_CHARS {
        return Err(invalid(format!(
            "target_id must be 1 to {MAX_ID_CHARS} characters"
        )));
    }
    let comment = b
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
        return Err(invalid(format!(
            "comment must be at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    let (snapshot, _) = seen(&state, &who.user_id, &b.target_type, &b.target_id).await?;
    let r = ReportRecord {
        id: uuid::Uuid::now_v7().to_string(),
        reporter_id: who.user_id.clone(),
        target_type: b.target_type,
        target_id: b.target_id,
        reason: b.reason,
        comment: comment.map(str::to_string),
        snapshot,
        status: "open".into(),
        created_at: dovie_actors::now_ms(),
        action: None,
        note: None,
        resolved_by: None,
        resolved_at: None,
    };
    let (open, new) = state.store.file_report(&r).await?;
    Ok(out.created_or_ok(new, &json!({ "report": reporter_view(&open) })))
}

/// A report as its reporter sees it.
fn reporter_view(r: &ReportRecord) -> Value {
    json!({
        "id": r.id, "status": r.status, "target_type": r.target_type, "target_id": r.target_id,
        "reason": r.reason, "comment": r.comment, "created_at": r.created_at,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /api/admin/reports?status=`: oldest first (`open` by default), each with how many open
/// reports its target has.
async fn list(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let status = q.status.as_deref().unwrap_or("open");
    if !matches!(status, "open" | "resolved" | "dismissed") {
        return Err(invalid("status is open, resolved or dismissed"));
    }
    let limit = page_limit(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .and_then(crate::social::parse_time_cursor);
    let page = state.store.reports(status, after, limit).await?;
    let next = (page.len() == limit)
        .then(|| {
            page.last()
                .map(|r| crate::social::time_cursor(r.created_at, &r.id))
        })
        .flatten();
    let mut counts: std::collections::HashMap<(String, String), usize> = Default::default();
    let mut shown = Vec::with_capacity(page.len());
    for r in page {
        let key = (r.target_type.clone(), r.target_id.clone());
        let open = match counts.get(&key) {
            Some(n) => *n,
            None => {
                let n = state.store.open_reports_of(&key.0, &key.1).await?.len();
                counts.insert(key, n);
                n
            }
        };
        let mut v = serde_json::to_value(&r)
            .map_err(|_| ApiError::new(ErrorCode::Internal, "cannot show the report"))?;
        v["open_reports_of_target"] = json!(open);
        shown.push(v);
    }
    Ok(out.ok(&json!({ "reports": shown, "next_cursor": next })))
}

#[derive(Deserialize)]
struct ResolveBody {
    action: String,
    #[serde(default)]
    note: Option<String>,
}

/// Deletes the reported content as a moderator: a message (a tombstone, told to its room), a
/// post or a comment (with what hangs on them).
async fn delete_content(state: &AppState, r: &ReportRecord) -> ApiResult<()> {
    match r.target_type.as_str() {
        "message" => {
            let Some(m) = state.store.get_message(&r.target_id).await? else {
                return Ok(());
            };
            let (reply, rx) = Responder::channel();
            state.directory.room(&m.room_id).do_send(room::Delete {
                user_id: crate::audit::SYSTEM.to_string(),
                message_id: m.id,
                moderator: true,
                reply,
            });
            super::messages::answer(rx).await?;
        }
        "post" => {
            if let Some(p) = state.store.post(&r.target_id).await? {
                if state
                    .store
                    .delete_post(&p.id, dovie_actors::now_ms())
                    .await?
                {
                    count_trends(state, &p, -1).await?;
                }
            }
        }
        "comment" => {
            if let Some(c) = state.store.comment(&r.target_id).await? {
                let gone = state.store.delete_comment(&c).await?;
                if let Some(p) = state.store.post(&c.post_id).await? {
                    count_for_business(state, &p, crate::store::Metric::Comments, -(gone as i64))
                        .await?;
                }
            }
        }
        _ => {
            return Err(invalid(
                "delete_content applies to messages, posts and comments",
            ))
        }
    }
    Ok(())
}

/// `POST /api/admin/reports/{id}/resolve`: acts once, resolves every open report of the same
/// target, tells each reporter, and writes the audit log.
async fn resolve(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<ResolveBody>,
) -> ApiResult<HttpResponse> {
    admin_only(&state, &who).await?;
    let report = state
        .store
        .report(&id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such report"))?;
    if !ACTIONS.contains(&b.action.as_str()) {
        return Err(invalid("action is dismiss, delete_content or suspend_user"));
    }
    let note = b.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_COMMENT_CHARS) {
        return Err(invalid(format!(
            "note must be at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    if report.status != "open" {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the report was already resolved",
        ));
    }
    // Whose content it is: the snapshot's author (the target itself may be gone by now).
    let author = ["sender_id", "author_id", "created_by", "id"]
        .iter()
        .find_map(|k| match (k, report.target_type.as_str()) {
            (&"id", "user") => report.snapshot["id"].as_str(),
            (&"id", _) => None,
            _ => report.snapshot[*k].as_str(),
        })
        .map(str::to_string);
    match b.action.as_str() {
        "delete_content" => delete_content(&state, &report).await?,
        "suspend_user" => {
            if report.target_type == "room" {
                return Err(invalid(
                    "suspend_user applies to messages, posts, comments and users",
                ));
            }
            let author = author
                .as_deref()
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
            let user = state
                .store
                .user_by_id(author)
                .await?
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
            let reason = format!("report {}: {}", report.id, report.reason);
            super::admin::suspend_account(&state, &who, &user, &reason, None).await?;
        }
        _ => {}
    }
    let status = if b.action == "dismiss" {
        "dismissed"
    } else {
        "resolved"
    };
    let now = dovie_actors::now_ms();
    let mut resolved = Vec::new();
    for open in state
        .store
        .open_reports_of(&report.target_type, &report.target_id)
        .await?
    {
        let done = ReportRecord {
            status: status.into(),
            action: Some(b.action.clone()),
            note: note.map(str::to_string),
            resolved_by: Some(who.user_id.clone()),
            resolved_at: Some(now),
            ..open
        };
        if state.store.resolve_report(&done).await? {
            tell_reporter(&state, &done);
            resolved.push(done);
        }
    }
    audit::record(
        &state.store,
        who.actor(),
        "report.resolved",
        Target {
            kind: match report.target_type.as_str() {
                "message" => "message",
                "user" => "user",
                "post" => "post",
                "comment" => "comment",
                _ => "room",
            },
            id: &report.target_id,
            label: report.snapshot["display_name"]
                .as_str()
                .or(report.snapshot["name"].as_str()),
        },
        json!({
            "action": b.action, "note": note, "reports": resolved.iter().map(|r| &r.id).collect::<Vec<_>>(),
            "author_id": author,
        }),
    )
    .await?;
    let this = resolved
        .into_iter()
        .find(|r| r.id == report.id)
        .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "the report was already resolved"))?;
    Ok(out.ok(&json!({ "report": this })))
}

/// `report_resolved` to the reporter's sockets, on every node.
fn tell_reporter(state: &AppState, r: &ReportRecord) {
    let payload = json!({ "report": reporter_view(r), "action": r.action });
    let event = dovie_actors::Event::new(dovie_protocol::events::REPORT_RESOLVED, &payload)
        .by(&r.reporter_id);
    state.ports.fanout.user_event(
        std::slice::from_ref(&r.reporter_id),
        std::sync::Arc::new(event),
    );
}

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    const STATUS: QueryParam = QueryParam {
        name: "status",
        required: false,
        schema: r#"{"type": "string", "enum": ["open", "resolved", "dismissed"], "default": "open"}"#,
    };
    const LIST_QUERY: [QueryParam; 3] = [STATUS, super::LIMIT_PARAM, CURSOR_PARAM];
    api.route(
        RouteDoc {
            also_ok: &[200],
            ..r(
                "POST",
                "/api/reports",
                "Report a message, user, post, comment or room I can see (201; 200: my open report of it)",
                Some("ReportRequest"),
                (201, Some("ReportResponse")),
                &[400, 404],
                &[],
            )
        },
        file,
    );
    api.route(
        r(
            "GET",
            "/api/admin/reports",
            "Admins: reports by status, oldest first, each with its target's count of open reports",
            None,
            (200, Some("ReportList")),
            &[400, 403],
            &LIST_QUERY,
        ),
        list,
    );
    api.route(
        r(
            "POST",
            "/api/admin/reports/{id}/resolve",
            "Admins: dismiss, delete the content or suspend its author; every open report of the target resolved, each reporter told",
            Some("ReportResolution"),
            (200, Some("AdminReportResponse")),
            &[400, 403, 404, 409],
            &[],
        ),
        resolve,
    );
}
