//! The social network over REST (SOC-1..5): posts, likes, comments, follows, the home feed,
//! hashtag trends and each user's activity (likes, comments and replies, follows, mentions —
//! listed, told live as WS `activity` and pushed). Who may see a post is `social::can_see`, asked on every path; a post that
//! cannot be seen is not found, so ids cannot be probed. Public posts feed the trend counters as
//! they are made, edited and deleted.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{extract_hashtags, extract_mentions, UserRole};

use super::people::{next_cursor, page_limit, CURSOR_PARAM};
use super::{
    invalid, Api, ApiError, ApiResult, Authed, Body, Out, QueryParam, RouteDoc, LIMIT_PARAM,
};
use crate::social::{self, trends, Viewer, MAX_COMMENT_CHARS, MAX_POST_CHARS};
use crate::state::AppState;
use crate::store::{ActivityRecord, CommentRecord, PostRecord, Visibility};
use dovie_protocol::rules::MAX_ATTACHMENTS;

/// Followees read for one feed page at most (the feed shows posts of the first this many).
const MAX_FEED_AUTHORS: usize = 5000;
/// Trending tags answered by default, and at most.
const DEFAULT_TRENDS: usize = 10;
const MAX_TRENDS: usize = 50;

#[derive(Deserialize)]
pub(super) struct Page {
    #[serde(default)]
    pub(super) limit: Option<u64>,
    #[serde(default)]
    pub(super) cursor: Option<String>,
}

#[derive(Deserialize)]
struct NewPost {
    content: Option<String>,
    #[serde(default)]
    attachments: Option<Vec<String>>,
    #[serde(default)]
    visibility: Option<String>,
}

#[derive(Deserialize)]
struct PostPatch {
    content: Option<String>,
    visibility: Option<String>,
}

#[derive(Deserialize)]
struct NewComment {
    content: Option<String>,
    #[serde(default)]
    reply_to: Option<String>,
}

pub(super) fn no_post() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such post")
}

fn no_user() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such user")
}

/// A post's text: not blank, at most [`MAX_POST_CHARS`].
pub(super) fn post_text(content: Option<String>) -> ApiResult<String> {
    let content = content.ok_or_else(|| invalid("content is required"))?;
    if content.trim().is_empty() {
        return Err(invalid("the post is empty"));
    }
    if content.chars().count() > MAX_POST_CHARS {
        return Err(invalid(format!(
            "a post is at most {MAX_POST_CHARS} characters"
        )));
    }
    Ok(content)
}

pub(super) fn visibility(v: Option<&str>) -> ApiResult<Visibility> {
    match v {
        None => Ok(Visibility::Public),
        Some(v) => Visibility::parse(v).ok_or_else(|| invalid("visibility is public or followers")),
    }
}

/// Whether `user_id` is an admin.
pub(super) async fn is_admin(state: &AppState, user_id: &str) -> ApiResult<bool> {
    Ok(state
        .store
        .user_by_id(user_id)
        .await?
        .is_some_and(|u| u.role == UserRole::Admin))
}

/// The post `id` if `who` may see it; else not found.
pub(super) async fn visible_post(state: &AppState, who: &str, id: &str) -> ApiResult<PostRecord> {
    let p = state.store.post(id).await?.ok_or_else(no_post)?;
    let viewer = Viewer {
        id: who,
        admin: is_admin(state, who).await?,
    };
    if !social::can_see(&state.store, viewer, &p).await? {
        return Err(no_post());
    }
    Ok(p)
}

/// Whether `who` acts for the business a business post speaks for.
async fn speaks_for(state: &AppState, who: &str, p: &PostRecord) -> ApiResult<bool> {
    let Some(b) = &p.business_id else {
        return Ok(false);
    };
    Ok(state
        .store
        .business(b)
        .await?
        .is_some_and(|b| b.is_admin(who)))
}

/// Counts `delta` of `metric` for the business a business post speaks for.
pub(super) async fn count_for_business(
    state: &AppState,
    p: &PostRecord,
    metric: crate::store::Metric,
    delta: i64,
) -> ApiResult<()> {
    if let Some(b) = &p.business_id {
        crate::business::count(&state.store, b, metric, delta).await?;
    }
    Ok(())
}

/// The post as `who` sees it.
pub(super) async fn post_json(
    state: &AppState,
    who: &str,
    p: &PostRecord,
) -> ApiResult<serde_json::Value> {
    let liked = state
        .store
        .liked_posts(who, std::slice::from_ref(&p.id))
        .await?;
    Ok(json!({ "post": social::view(p, !liked.is_empty()) }))
}

/// Counts a public post's tags into the trends (`delta` +1 when it becomes public, −1 when it
/// stops being).
pub(super) async fn count_trends(state: &AppState, p: &PostRecord, delta: i64) -> ApiResult<()> {
    if p.visibility == Visibility::Public && !p.hashtags.is_empty() {
        trends::count(&state.store, &p.hashtags, &p.author_id, p.created_at, delta).await?;
    }
    Ok(())
}

/// What happened, for whom, by whom, about what.
pub(super) struct Happened<'a> {
    pub(super) kind: &'static str,
    pub(super) user_id: &'a str,
    pub(super) actor_id: &'a str,
    pub(super) post_id: Option<&'a str>,
    pub(super) comment_id: Option<&'a str>,
    /// What the push shows under its title (a post's or comment's text).
    pub(super) excerpt: &'a str,
}

/// The longest excerpt a push shows.
const EXCERPT_CHARS: usize = 120;

/// Records an activity for its user (never one's own doing, nothing across a block), tells
/// their sockets (`activity`) and queues a push, keyed by the activity so it is sent once.
pub(super) async fn tell(state: &AppState, h: Happened<'_>) -> ApiResult<()> {
    if h.user_id == h.actor_id || state.store.blocked_either(h.user_id, h.actor_id).await? {
        return Ok(());
    }
    let a = ActivityRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: h.user_id.to_string(),
        kind: h.kind.to_string(),
        actor_id: h.actor_id.to_string(),
        post_id: h.post_id.map(String::from),
        comment_id: h.comment_id.map(String::from),
        created_at: dovie_actors::now_ms(),
    };
    state.store.add_activity(&a).await?;
    let payload = json!({ "item": a });
    let event = dovie_actors::Event::new(dovie_protocol::events::ACTIVITY, &payload).by(h.actor_id);
    state
        .ports
        .fanout
        .user_event(std::slice::from_ref(&a.user_id), std::sync::Arc::new(event));
    let (user, actor) = futures_util::try_join!(
        state.store.user_by_id(h.user_id),
        state.store.user_by_id(h.actor_id)
    )?;
    let (Some(user), Some(actor)) = (user, actor) else {
        return Ok(());
    };
    let title = state.texts.text(
        &user.locale,
        &format!("activity-{}", h.kind),
        &[("name", actor.display_name.as_str())],
    );
    let body: String = h.excerpt.chars().take(EXCERPT_CHARS).collect();
    let data = json!({ "type": dovie_protocol::events::ACTIVITY, "activity_id": a.id, "post_id": a.post_id });
    if let Err(e) = state
        .pusher
        .notify_as(
            format!("activity:{}", a.id),
            &a.user_id,
            title,
            body,
            Some(data),
        )
        .await
    {
        tracing::warn!(activity = %a.id, error = %e.message, "cannot queue an activity's push");
    }
    Ok(())
}

/// Tells the users a post mentions who may see it.
pub(super) async fn tell_mentions(
    state: &AppState,
    p: &PostRecord,
    already: &[String],
) -> ApiResult<()> {
    for user_id in p.mentions.iter().filter(|m| !already.contains(m)) {
        let Some(user) = state.store.user_by_id(user_id).await? else {
            continue;
        };
        let viewer = Viewer {
            id: &user.id,
            admin: user.role == UserRole::Admin,
        };
        if social::can_see(&state.store, viewer, p).await? {
            tell(
                state,
                Happened {
                    kind: "mention",
                    user_id: &user.id,
                    actor_id: &p.author_id,
                    post_id: Some(&p.id),
                    comment_id: None,
                    excerpt: &p.content,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// The file objects of a post's `attachments`: at most [`MAX_ATTACHMENTS`] of the poster's own
/// files, not deleted, each once; shared to the post (whoever may see the post may read them).
async fn post_attachments(
    state: &AppState,
    poster: &str,
    post_id: &str,
    ids: &[String],
) -> ApiResult<Vec<serde_json::Value>> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(invalid(format!("at most {MAX_ATTACHMENTS} attachments")));
    }
    let files = crate::files::own_files(&state.store, poster, ids).await?;
    let mut objects = Vec::with_capacity(files.len());
    for f in files {
        state
            .store
            .share_file(&f.id, &social::share_key(post_id), "")
            .await?;
        objects.push(crate::files::object_of(&f));
    }
    Ok(objects)
}

/// What a new post says, by whom, for which business.
pub(super) struct NewPostOf {
    pub(super) author_id: String,
    pub(super) business_id: Option<String>,
    pub(super) content: Option<String>,
    pub(super) attachments: Option<Vec<String>>,
    pub(super) visibility: Option<String>,
}

/// Checks and stores a new post (its attachments shared to it, its tags counted, the users
/// it mentions told); answers it.
pub(super) async fn publish(state: &AppState, n: NewPostOf) -> ApiResult<PostRecord> {
    let content = post_text(n.content)?;
    let visibility = visibility(n.visibility.as_deref())?;
    let id = uuid::Uuid::now_v7().to_string();
    let attachments = post_attachments(
        state,
        &n.author_id,
        &id,
        n.attachments.as_deref().unwrap_or(&[]),
    )
    .await?;
    let p = PostRecord {
        id,
        author_id: n.author_id,
        business_id: n.business_id,
        hashtags: extract_hashtags(&content),
        mentions: extract_mentions(&content),
        content,
        attachments,
        visibility,
        like_count: 0,
        comment_count: 0,
        created_at: dovie_actors::now_ms(),
        edited_at: None,
    };
    state.store.create_post(&p).await?;
    count_trends(state, &p, 1).await?;
    tell_mentions(state, &p, &[]).await?;
    Ok(p)
}

/// `POST /api/posts`: 201 with the post.
async fn create(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<NewPost>,
) -> ApiResult<HttpResponse> {
    let p = publish(
        &state,
        NewPostOf {
            author_id: who.user_id.clone(),
            business_id: None,
            content: b.content,
            attachments: b.attachments,
            visibility: b.visibility,
        },
    )
    .await?;
    Ok(out.created(&json!({ "post": social::view(&p, false) })))
}

/// `GET /api/posts/{id}`.
async fn get(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let p = visible_post(&state, &who.user_id, &id).await?;
    crate::business::count_impressions(&state.store, &who.user_id, std::slice::from_ref(&p))
        .await?;
    Ok(out.ok(&post_json(&state, &who.user_id, &p).await?))
}

/// `PATCH /api/posts/{id}`: the author edits the text or the visibility.
async fn edit(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<PostPatch>,
) -> ApiResult<HttpResponse> {
    let before = visible_post(&state, &who.user_id, &id).await?;
    if before.author_id != who.user_id && !speaks_for(&state, &who.user_id, &before).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only its author edits a post",
        ));
    }
    if b.content.is_none() && b.visibility.is_none() {
        return Err(invalid("give content or visibility"));
    }
    let mut after = before.clone();
    if let Some(c) = b.content {
        after.content = post_text(Some(c))?;
        after.hashtags = extract_hashtags(&after.content);
        after.mentions = extract_mentions(&after.content);
    }
    if let Some(v) = b.visibility.as_deref() {
        after.visibility = visibility(Some(v))?;
    }
    after.edited_at = Some(dovie_actors::now_ms());
    state.store.update_post(&after).await?;
    count_trends(&state, &before, -1).await?;
    count_trends(&state, &after, 1).await?;
    tell_mentions(&state, &after, &before.mentions).await?;
    Ok(out.ok(&post_json(&state, &who.user_id, &after).await?))
}

/// `DELETE /api/posts/{id}`: by its author or an admin; its likes and comments go with it.
async fn delete(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let p = visible_post(&state, &who.user_id, &id).await?;
    if p.author_id != who.user_id
        && !speaks_for(&state, &who.user_id, &p).await?
        && !is_admin(&state, &who.user_id).await?
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only its author or an admin deletes a post",
        ));
    }
    if state
        .store
        .delete_post(&p.id, dovie_actors::now_ms())
        .await?
    {
        count_trends(&state, &p, -1).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// A page of posts by `authors` that `who` may see, newest first, and the next cursor.
pub(super) async fn page_of(
    state: &AppState,
    who: &str,
    authors: &[String],
    page: &Page,
) -> ApiResult<serde_json::Value> {
    let limit = page_limit(page.limit)?;
    let viewer = Viewer {
        id: who,
        admin: is_admin(state, who).await?,
    };
    let cursor = page.cursor.as_deref().and_then(social::parse_cursor);
    let (shown, next) = social::page(&state.store, viewer, authors, cursor, limit).await?;
    let next = next.map(|c| social::time_cursor(c.created_at, &c.id));
    crate::business::count_impressions(&state.store, who, &shown).await?;
    let posts = social::views(&state.store, who, &shown).await?;
    Ok(json!({ "posts": posts, "next_cursor": next }))
}

/// `GET /api/users/{id}/posts`: the posts of a user I may see, newest first.
async fn user_posts(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let author = state.store.user_by_id(&id).await?.ok_or_else(no_user)?;
    if author.id != who.user_id && state.store.blocked_either(&who.user_id, &author.id).await? {
        return Err(no_user());
    }
    Ok(out.ok(&page_of(&state, &who.user_id, &[author.id], &page).await?))
}

/// `GET /api/feed`: my posts and those of whom I follow that I may see, newest first.
async fn feed(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let mut authors = state
        .store
        .following(&who.user_id, "", MAX_FEED_AUTHORS)
        .await?;
    authors.push(who.user_id.clone());
    Ok(out.ok(&page_of(&state, &who.user_id, &authors, &page).await?))
}

/// `POST /api/posts/{id}/like`: idempotent.
async fn like(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let p = visible_post(&state, &who.user_id, &id).await?;
    let new = state
        .store
        .like_post(&p.id, &who.user_id, dovie_actors::now_ms())
        .await?;
    if new {
        count_for_business(&state, &p, crate::store::Metric::Likes, 1).await?;
        tell(
            &state,
            Happened {
                kind: "like",
                user_id: &p.author_id,
                actor_id: &who.user_id,
                post_id: Some(&p.id),
                comment_id: None,
                excerpt: &p.content,
            },
        )
        .await?;
    }
    let now = state.store.post(&p.id).await?.ok_or_else(no_post)?;
    Ok(out.ok(&post_json(&state, &who.user_id, &now).await?))
}

/// `DELETE /api/posts/{id}/like`: idempotent.
async fn unlike(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let p = visible_post(&state, &who.user_id, &id).await?;
    if state.store.unlike_post(&p.id, &who.user_id).await? {
        count_for_business(&state, &p, crate::store::Metric::Likes, -1).await?;
    }
    let now = state.store.post(&p.id).await?.ok_or_else(no_post)?;
    Ok(out.ok(&post_json(&state, &who.user_id, &now).await?))
}

/// `POST /api/posts/{id}/comments`: 201; a reply names a top-level comment of the same post.
async fn comment(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    Body(b): Body<NewComment>,
) -> ApiResult<HttpResponse> {
    let p = visible_post(&state, &who.user_id, &id).await?;
    let content = b.content.ok_or_else(|| invalid("content is required"))?;
    if content.trim().is_empty() {
        return Err(invalid("the comment is empty"));
    }
    if content.chars().count() > MAX_COMMENT_CHARS {
        return Err(invalid(format!(
            "a comment is at most {MAX_COMMENT_CHARS} characters"
        )));
    }
    let mut parent_author = None;
    let reply_to = match b.reply_to.filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => {
            let parent = state
                .store
                .comment(&r)
                .await?
                .filter(|c| c.post_id == p.id)
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such comment"))?;
            if parent.reply_to.is_some() {
                return Err(invalid("replies are to comments, not to replies"));
            }
            parent_author = Some(parent.author_id);
            Some(parent.id)
        }
    };
    let c = CommentRecord {
        id: uuid::Uuid::now_v7().to_string(),
        post_id: p.id.clone(),
        author_id: who.user_id.clone(),
        content,
        reply_to,
        created_at: dovie_actors::now_ms(),
    };
    state.store.add_comment(&c).await?;
    count_for_business(&state, &p, crate::store::Metric::Comments, 1).await?;
    let about = |kind, user_id| Happened {
        kind,
        user_id,
        actor_id: &c.author_id,
        post_id: Some(&c.post_id),
        comment_id: Some(&c.id),
        excerpt: &c.content,
    };
    tell(&state, about("comment", &p.author_id)).await?;
    if let Some(parent) = parent_author.as_deref().filter(|a| *a != p.author_id) {
        tell(&state, about("reply", parent)).await?;
    }
    Ok(out.created(&json!({ "comment": c })))
}

/// `GET /api/posts/{id}/comments`: oldest first.
async fn comments(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let p = visible_post(&state, &who.user_id, &id).await?;
    let limit = page_limit(page.limit)?;
    let after = page.cursor.as_deref().and_then(social::parse_time_cursor);
    let list = state.store.comments(&p.id, after, limit).await?;
    let next = next_cursor(&list, limit, |c| c.id.as_str()).and_then(|_| {
        list.last()
            .map(|c| social::time_cursor(c.created_at, &c.id))
    });
    Ok(out.ok(&json!({ "comments": list, "next_cursor": next })))
}

/// `DELETE /api/comments/{id}`: by the comment's author, the post's author or an admin; its
/// replies go with it.
async fn delete_comment(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let no_comment = || ApiError::new(ErrorCode::NotFound, "no such comment");
    let c = state.store.comment(&id).await?.ok_or_else(no_comment)?;
    let p = visible_post(&state, &who.user_id, &c.post_id)
        .await
        .map_err(|_| no_comment())?;
    let allowed = c.author_id == who.user_id
        || p.author_id == who.user_id
        || is_admin(&state, &who.user_id).await?;
    if !allowed {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the comment's author, the post's author or an admin deletes a comment",
        ));
    }
    let gone = state.store.delete_comment(&c).await?;
    count_for_business(&state, &p, crate::store::Metric::Comments, -(gone as i64)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The user `id` another user may follow: exists, not me, no block either way.
async fn followable(state: &AppState, me: &str, id: &str) -> ApiResult<String> {
    if id == me {
        return Err(ApiError::new(ErrorCode::Conflict, "that is you"));
    }
    let target = state.store.user_by_id(id).await?.ok_or_else(no_user)?;
    if state.store.blocked_either(me, &target.id).await? {
        return Err(no_user());
    }
    Ok(target.id)
}

/// `POST /api/users/{id}/follow`: 204, idempotent.
async fn follow(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let target = followable(&state, &who.user_id, &id).await?;
    let new = state
        .store
        .follow(&who.user_id, &target, dovie_actors::now_ms())
        .await?;
    if new {
        tell(
            &state,
            Happened {
                kind: "follow",
                user_id: &target,
                actor_id: &who.user_id,
                post_id: None,
                comment_id: None,
                excerpt: "",
            },
        )
        .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/users/{id}/follow`: 204, idempotent.
async fn unfollow(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.store.unfollow(&who.user_id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Which way a follow list goes.
#[derive(Clone, Copy)]
enum Side {
    Followers,
    Following,
}

/// A user's followers or whom they follow, by id: public profiles, blocks either way left
/// out; none of them for a user who blocked me (not found).
async fn follow_list(
    state: &AppState,
    who: &str,
    id: &str,
    page: &Page,
    side: Side,
) -> ApiResult<serde_json::Value> {
    let limit = page_limit(page.limit)?;
    let user = state.store.user_by_id(id).await?.ok_or_else(no_user)?;
    if user.id != who && state.store.blocked_either(who, &user.id).await? {
        return Err(no_user());
    }
    let after = page.cursor.as_deref().unwrap_or("");
    let ids = match side {
        Side::Followers => state.store.followers(&user.id, after, limit).await?,
        Side::Following => state.store.following(&user.id, after, limit).await?,
    };
    let next = next_cursor(&ids, limit, |s| s.as_str());
    let hidden = crate::people::blocked_either_way(&state.store, who).await?;
    let shown: Vec<String> = ids.into_iter().filter(|i| !hidden.contains(i)).collect();
    let profiles = state.profiles.public(&shown).await?;
    let users: Vec<_> = shown.iter().filter_map(|i| profiles.get(i)).collect();
    Ok(json!({ "users": users, "next_cursor": next }))
}

/// `GET /api/users/{id}/followers`.
async fn followers(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let list = follow_list(&state, &who.user_id, &id, &page, Side::Followers).await?;
    Ok(out.ok(&list))
}

/// `GET /api/users/{id}/following`.
async fn following(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let list = follow_list(&state, &who.user_id, &id, &page, Side::Following).await?;
    Ok(out.ok(&list))
}

/// `GET /api/activity`: what happened to me, newest first.
async fn activity(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(page.limit)?;
    let before = page.cursor.as_deref().and_then(social::parse_time_cursor);
    let items = state.store.activities(&who.user_id, before, limit).await?;
    let next = next_cursor(&items, limit, |a| a.id.as_str()).and_then(|_| {
        items
            .last()
            .map(|a| social::time_cursor(a.created_at, &a.id))
    });
    Ok(out.ok(&json!({ "items": items, "next_cursor": next })))
}

#[derive(Deserialize)]
struct TrendQuery {
    #[serde(default)]
    limit: Option<u64>,
}

/// `GET /api/trends/hashtags`: the tags rising now in public posts.
async fn trending(
    state: web::Data<AppState>,
    out: Out,
    _who: Authed,
    q: web::Query<TrendQuery>,
) -> ApiResult<HttpResponse> {
    let limit = match q.limit {
        None => DEFAULT_TRENDS,
        Some(l) if (1..=MAX_TRENDS as u64).contains(&l) => l as usize,
        Some(_) => return Err(invalid("limit is 1 to 50")),
    };
    let list = trends::trending(&state.store, dovie_actors::now_ms(), limit).await?;
    Ok(out.ok(&json!({ "hashtags": list })))
}

const TRENDS_LIMIT: QueryParam = QueryParam {
    name: "limit",
    required: false,
    schema: r#"{"type": "integer", "minimum": 1, "maximum": 50, "default": 10}"#,
};

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    let page: &'static [QueryParam] = &[LIMIT_PARAM, CURSOR_PARAM];
    api.route(
        r("POST", "/api/posts", "Posts a text to my followers or to everyone (hashtags and <@id> mentions read from it), with my files attached (404 for a file that is not there, 403 for another's)",
          Some("PostRequest"), (201, Some("PostResponse")), &[400, 403, 404], &[]),
        create,
    );
    api.route(
        r(
            "GET",
            "/api/posts/{id}",
            "A post I may see",
            None,
            (200, Some("PostResponse")),
            &[404],
            &[],
        ),
        get,
    );
    api.route(
        r(
            "PATCH",
            "/api/posts/{id}",
            "Edits my post's text or visibility",
            Some("PostPatch"),
            (200, Some("PostResponse")),
            &[400, 403, 404],
            &[],
        ),
        edit,
    );
    api.route(
        r(
            "DELETE",
            "/api/posts/{id}",
            "Deletes a post (its author or an admin), with its likes and comments",
            None,
            (204, None),
            &[403, 404],
            &[],
        ),
        delete,
    );
    api.route(
        r(
            "GET",
            "/api/users/{id}/posts",
            "A user's posts I may see, newest first",
            None,
            (200, Some("PostList")),
            &[400, 404],
            page,
        ),
        user_posts,
    );
    api.route(
        r(
            "GET",
            "/api/feed",
            "My posts and those of whom I follow that I may see, newest first",
            None,
            (200, Some("PostList")),
            &[400],
            page,
        ),
        feed,
    );
    api.route(
        r(
            "POST",
            "/api/posts/{id}/like",
            "Likes a post (idempotent)",
            None,
            (200, Some("PostResponse")),
            &[404],
            &[],
        ),
        like,
    );
    api.route(
        r(
            "DELETE",
            "/api/posts/{id}/like",
            "Takes my like back (idempotent)",
            None,
            (200, Some("PostResponse")),
            &[404],
            &[],
        ),
        unlike,
    );
    api.route(
        r(
            "POST",
            "/api/posts/{id}/comments",
            "Comments on a post, or replies to a comment of it",
            Some("CommentRequest"),
            (201, Some("CommentResponse")),
            &[400, 404],
            &[],
        ),
        comment,
    );
    api.route(
        r(
            "GET",
            "/api/posts/{id}/comments",
            "A post's comments, oldest first",
            None,
            (200, Some("CommentList")),
            &[400, 404],
            page,
        ),
        comments,
    );
    api.route(
        r(
            "DELETE",
            "/api/comments/{id}",
            "Deletes a comment and its replies (its author, the post's author or an admin)",
            None,
            (204, None),
            &[403, 404],
            &[],
        ),
        delete_comment,
    );
    api.route(
        r(
            "POST",
            "/api/users/{id}/follow",
            "Follows a user (idempotent; 409 for oneself)",
            None,
            (204, None),
            &[404, 409],
            &[],
        ),
        follow,
    );
    api.route(
        r(
            "DELETE",
            "/api/users/{id}/follow",
            "Stops following a user (idempotent)",
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
            "/api/users/{id}/followers",
            "Who follows a user, by id",
            None,
            (200, Some("FollowList")),
            &[400, 404],
            page,
        ),
        followers,
    );
    api.route(
        r(
            "GET",
            "/api/users/{id}/following",
            "Whom a user follows, by id",
            None,
            (200, Some("FollowList")),
            &[400, 404],
            page,
        ),
        following,
    );
    api.route(
        r("GET", "/api/activity", "What happened to me: likes and comments on my posts, replies to my comments, follows, mentions; newest first",
          None, (200, Some("ActivityList")), &[400], page),
        activity,
    );
    api.route(
        r("GET", "/api/trends/hashtags", "Hashtags rising now in public posts (distinct accounts today against yesterday, decaying from the peak)",
          None, (200, Some("TrendList")), &[400], &[TRENDS_LIMIT]),
        trending,
    );
}
