//! Messages over REST: send, history, edit, delete, reactions, search. Writes go through the
//! room's actor (the single writer), exactly like WebSocket commands, so both paths share
//! ordering, idempotency and fan-out.

use std::time::Instant;

use actix_web::{web, HttpResponse};
use dovie_actors::ports::Draft;
use dovie_actors::room::{self, Responder};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::{extract_hashtags, Message};
use serde::Deserialize;

use super::rooms::member_room;
use super::{
    Api, ApiError, ApiResult, Authed, Body, Out, QueryParam, RouteDoc, LIMIT_CEILING, LIMIT_PARAM,
};
use crate::state::AppState;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;
const DEFAULT_REACTION: &str = "👍";
const MAX_EMOJI_CHARS: usize = 16;

#[derive(Deserialize)]
struct SendBody {
    #[serde(default)]
    content: String,
    #[serde(default)]
    attachments: Vec<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    reply_to: Option<String>,
}

#[derive(Deserialize)]
struct EditBody {
    content: String,
}

#[derive(Deserialize)]
struct LikeBody {
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct HistoryQuery {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u64>,
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    hashtag: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
    limit: Option<u64>,
}

/// The highest `before`/`after` a history request may name (seqs are JSON-safe integers).
const MAX_SEQ_PARAM: u64 = (1 << 53) - 1;

/// A page size from `?limit=`: absent means the default; 1 to [`LIMIT_CEILING`] is taken (and
/// answered with at most [`MAX_PAGE`]); anything else is refused.
fn page_limit(limit: Option<u64>) -> ApiResult<usize> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=LIMIT_CEILING).contains(&n) => Ok((n as usize).min(MAX_PAGE)),
        Some(_) => Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("limit must be 1 to {LIMIT_CEILING} (at most {MAX_PAGE} are answered)"),
        )),
    }
}

fn seq_param(name: &str, v: Option<u64>) -> ApiResult<Option<u64>> {
    match v {
        Some(n) if n > MAX_SEQ_PARAM => Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("{name} must be at most {MAX_SEQ_PARAM}"),
        )),
        v => Ok(v),
    }
}

pub(super) async fn answer<T: Send + 'static>(
    rx: tokio::sync::oneshot::Receiver<Result<T, ErrorBody>>,
) -> ApiResult<T> {
    rx.await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the room did not answer"))?
        .map_err(ApiError::from)
}

async fn send(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    path: web::Path<String>,
    Body(mut b): Body<SendBody>,
) -> ApiResult<HttpResponse> {
    b.content = super::ai::expand(&state, &who.user_id, b.content).await?;
    room::validate_send(
        &b.content,
        b.attachments.len(),
        state.config.limits.max_message_chars,
    )?;
    let (nonce, reply_to) = room::validate_send_extras(b.nonce, b.reply_to)?;
    if !state.ports.quota.allow_send(&who.user_id) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many messages; slow down",
        ));
    }
    let (reply, rx) = Responder::channel();
    let id = uuid::Uuid::now_v7().to_string();
    let hashtags = extract_hashtags(&b.content);
    let attachments = if b.attachments.is_empty() {
        Vec::new()
    } else {
        let room_id = path.as_str();
        super::files::attach(
            &state,
            &who.user_id,
            room_id,
            &id,
            &b.attachments,
            &hashtags,
        )
        .await?
    };
    let mut draft = Draft {
        id,
        sender_id: who.user_id,
        hashtags,
        mentions: dovie_protocol::model::extract_mentions(&b.content),
        content: b.content,
        nonce,
        reply_to,
        created_at: dovie_actors::now_ms(),
        kind: room::kind_of_attachments(&attachments),
        attachments,
        location: None,
        suggest_location: false,
    };
    {
        use dovie_actors::ports::MessageExtras;
        state.extras.prepare(&mut draft);
    }
    state.directory.room(&path).do_send(room::Post {
        draft,
        reply,
        started: Instant::now(),
    });
    let (message, created) = answer(rx).await?;
    let body = serde_json::json!({ "message": message });
    Ok(out.created_or_ok(created, &body))
}

async fn history(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    q: web::Query<HistoryQuery>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(q.limit)?;
    let (before, after) = (seq_param("before", q.before)?, seq_param("after", q.after)?);
    member_room(&state, &id, &who.user_id).await?;
    let page = state.store.history(&id, before, after, limit).await?;
    let mut messages = page.messages;
    shown(&state, &mut messages);
    Ok(out.ok(&serde_json::json!({ "messages": messages, "has_more": page.has_more })))
}

/// Messages as members see them: with fresh signed links to their attachments.
pub fn shown(state: &AppState, messages: &mut [Message]) {
    use dovie_actors::ports::MessageExtras;
    for m in messages.iter_mut().filter(|m| !m.attachments.is_empty()) {
        state.extras.present(m);
    }
}

/// The message (404 if none) after checking the caller is a member of its room (403).
pub(crate) async fn member_message(
    state: &AppState,
    message_id: &str,
    user_id: &str,
) -> ApiResult<Message> {
    let m = state
        .store
        .get_message(message_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such message"))?;
    member_room(state, &m.room_id, user_id).await?;
    Ok(m)
}

async fn edit(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<EditBody>,
) -> ApiResult<HttpResponse> {
    room::validate_content(&b.content, state.config.limits.max_message_chars)?;
    let m = member_message(&state, &id, &who.user_id).await?;
    let (reply, rx) = Responder::channel();
    state.directory.room(&m.room_id).do_send(room::Edit {
        user_id: who.user_id,
        message_id: m.id,
        hashtags: extract_hashtags(&b.content),
        content: b.content,
        reply,
    });
    let message = answer(rx).await?;
    Ok(out.ok(&serde_json::json!({ "message": message })))
}

async fn delete(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let m = member_message(&state, &id, &who.user_id).await?;
    let (reply, rx) = Responder::channel();
    state.directory.room(&m.room_id).do_send(room::Delete {
        user_id: who.user_id,
        message_id: m.id,
        moderator: false,
        reply,
    });
    answer(rx).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn react(
    state: &AppState,
    out: Out,
    who: Authed,
    id: &str,
    emoji: Option<String>,
    on: bool,
) -> ApiResult<HttpResponse> {
    let emoji = emoji.unwrap_or_else(|| DEFAULT_REACTION.to_string());
    if emoji.trim().is_empty() || emoji.chars().count() > MAX_EMOJI_CHARS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "emoji must be 1 to 16 characters",
        ));
    }
    let m = member_message(state, id, &who.user_id).await?;
    let (reply, rx) = Responder::channel();
    state.directory.room(&m.room_id).do_send(room::React {
        user_id: who.user_id,
        message_id: m.id,
        emoji,
        on,
        reply,
    });
    let message = answer(rx).await?;
    Ok(out.ok(&serde_json::json!({ "message": message })))
}

async fn like(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<LikeBody>,
) -> ApiResult<HttpResponse> {
    react(&state, out, who, &id, b.emoji, true).await
}

async fn unlike(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<LikeBody>,
) -> ApiResult<HttpResponse> {
    react(&state, out, who, &id, b.emoji, false).await
}

async fn search(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    run_search(
        &state,
        out,
        &who.user_id,
        q.room_id,
        q.q,
        q.hashtag,
        q.limit,
    )
    .await
}

async fn search_room(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    q: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    member_room(&state, &id, &who.user_id).await?;
    let q = q.into_inner();
    run_search(
        &state,
        out,
        &who.user_id,
        Some(id.into_inner()),
        q.q,
        q.hashtag,
        q.limit,
    )
    .await
}

async fn run_search(
    state: &AppState,
    out: Out,
    user_id: &str,
    room_id: Option<String>,
    q: Option<String>,
    hashtag: Option<String>,
    limit: Option<u64>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(limit)?;
    let messages = match (
        q.filter(|s| !s.trim().is_empty()),
        hashtag.filter(|s| !s.trim().is_empty()),
    ) {
        (_, Some(tag)) => {
            let mut found = state.store.by_hashtag(user_id, &tag, limit).await?;
            if let Some(room) = &room_id {
                found.retain(|m| &m.room_id == room);
            }
            found
        }
        (Some(q), None) => {
            state
                .store
                .search(user_id, room_id.as_deref(), &q, limit)
                .await?
        }
        // Nothing to look for finds nothing.
        (None, None) => Vec::new(),
    };
    let mut messages = messages;
    shown(state, &mut messages);
    Ok(out.ok(&serde_json::json!({ "messages": messages })))
}

const SEQ_BEFORE: QueryParam = QueryParam {
    name: "before",
    required: false,
    schema: r#"{"type": "integer", "minimum": 0, "maximum": 9007199254740991, "description": "the messages right before this seq"}"#,
};
const SEQ_AFTER: QueryParam = QueryParam {
    name: "after",
    required: false,
    schema: r#"{"type": "integer", "minimum": 0, "maximum": 9007199254740991, "description": "the messages right after this seq (wins over before)"}"#,
};
const SEARCH_Q: QueryParam = QueryParam {
    name: "q",
    required: false,
    schema: r#"{"type": "string", "description": "words; all must match, the last as a prefix (hashtag wins when both are given; neither finds nothing)"}"#,
};
const SEARCH_HASHTAG: QueryParam = QueryParam {
    name: "hashtag",
    required: false,
    schema: r#"{"type": "string", "description": "a tag, with or without #"}"#,
};
const SEARCH_ROOM: QueryParam = QueryParam {
    name: "room_id",
    required: false,
    schema: r#"{"type": "string", "description": "only this room (one of mine)"}"#,
};

pub fn register(api: &mut Api) {
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/chat-rooms/{id}/messages",
            summary: "Send a message; answered after it is durable. Same nonce again: 200 with the same message",
            auth: true,
            body: Some("SendMessageRequest"),
            ok: (201, Some("MessageResponse")),
            errors: &[400, 403, 404, 413, 415, 429, 503],
            query: &[],
            also_ok: &[200],
        },
        send,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/chat-rooms/{id}/messages",
            summary:
                "History, ascending by seq: ?before=SEQ&after=SEQ&limit=N (default 50, max 100)",
            auth: true,
            body: None,
            ok: (200, Some("MessagePage")),
            errors: &[400, 403, 404],
            query: &[SEQ_BEFORE, SEQ_AFTER, LIMIT_PARAM],
            also_ok: &[],
        },
        history,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/chat-rooms/{id}/messages/search",
            summary: "Search one room: ?q=words or ?hashtag=tag",
            auth: true,
            body: None,
            ok: (200, Some("MessageList")),
            errors: &[400, 403, 404],
            query: &[SEARCH_Q, SEARCH_HASHTAG, LIMIT_PARAM],
            also_ok: &[],
        },
        search_room,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/messages/search",
            summary: "Search all my rooms: ?q=words or ?hashtag=tag (&room_id=), newest first",
            auth: true,
            body: None,
            ok: (200, Some("MessageList")),
            errors: &[400],
            query: &[SEARCH_Q, SEARCH_HASHTAG, SEARCH_ROOM, LIMIT_PARAM],
            also_ok: &[],
        },
        search,
    );
    api.route(
        RouteDoc {
            method: "PUT",
            path: "/api/messages/{id}",
            summary: "Edit a message (the sender only)",
            auth: true,
            body: Some("EditMessageRequest"),
            ok: (200, Some("MessageResponse")),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        edit,
    );
    api.route(
        RouteDoc {
            method: "DELETE",
            path: "/api/messages/{id}",
            summary: "Delete a message (sender or room admin); it stays as a tombstone",
            auth: true,
            body: None,
            ok: (204, None),
            errors: &[403, 404],
            query: &[],
            also_ok: &[],
        },
        delete,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/messages/{id}/like",
            summary: "React to a message (emoji, default 👍)",
            auth: true,
            body: Some("LikeRequest"),
            ok: (200, Some("MessageResponse")),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        like,
    );
    api.route(
        RouteDoc {
            method: "DELETE",
            path: "/api/messages/{id}/like",
            summary: "Remove my reaction (emoji, default 👍)",
            auth: true,
            body: Some("LikeRequest"),
            ok: (200, Some("MessageResponse")),
            errors: &[400, 403, 404, 409],
            query: &[],
            also_ok: &[],
        },
        unlike,
    );
}
