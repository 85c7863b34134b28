//! Files over REST: uploads (raw bodies and `multipart/form-data`, streamed), downloads with
//! ranges and validators, previews, listings, deletion, voice messages and profile images.
//!
//! Reading a file needs one of: a bearer token of someone allowed (the uploader, a member of a
//! room it was shared in), a signed link (`exp` and `sig`, as the file object's `url` carries:
//! for `<img>`, `<video>` and players, which send no `Authorization`), or nothing for public
//! media (profile images, proxied link-preview images).

use std::time::Instant;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use dovie_actors::ports::Authenticator;
use dovie_actors::ports::Draft;
use dovie_actors::room::{self, Responder};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{MessageKind, UserRole};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;

use super::rooms::member_room;
use super::{
    bearer, invalid, Api, ApiError, ApiResult, Authed, Out, QueryParam, RouteDoc, LIMIT_PARAM,
};
use crate::files::{UploadRequest, MAX_FILE_HASHTAGS};
use crate::state::AppState;
use crate::store::{FileKind, FileQuery, FileRecord, ProfilePatch};

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;
const MAX_HASHTAG_CHARS: usize = 64;
/// Content types shown in place (`inline`); everything else downloads as an attachment.
const INLINE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "audio/mpeg",
    "audio/wav",
    "audio/ogg",
    "audio/mp4",
    "text/plain; charset=utf-8",
];
/// The policy of every served file: a sandbox, nothing loaded, nothing run.
const FILE_CSP: &str = "sandbox; default-src 'none'";

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
    #[serde(default)]
    hashtags: Option<String>,
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    sig: Option<String>,
    #[serde(default)]
    size: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    hashtag: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct VoiceQuery {
    room_id: String,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such file")
}

/// `a,b,#c` → normalised tags (lower-case, no `#`), each a valid hashtag.
fn parse_hashtags(raw: Option<&str>) -> ApiResult<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for t in raw.unwrap_or("").split(',') {
        let t = t.trim().trim_start_matches('#');
        if t.is_empty() {
            continue;
        }
        let tag = normal_tag(t)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_FILE_HASHTAGS {
        return Err(invalid(format!("at most {MAX_FILE_HASHTAGS} hashtags")));
    }
    Ok(tags)
}

fn normal_tag(t: &str) -> ApiResult<String> {
    let t = t.trim_start_matches('#');
    let ok = !t.is_empty()
        && t.chars().count() <= MAX_HASHTAG_CHARS
        && t.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !ok {
        return Err(invalid(format!(
            "a hashtag is 1 to {MAX_HASHTAG_CHARS} letters, digits or _"
        )));
    }
    Ok(t.to_lowercase())
}

fn declared_len(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"))
}

async fn role_of(state: &AppState, user_id: &str) -> ApiResult<UserRole> {
    Ok(state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "no such account"))?
        .role)
}

/// Runs an upload from a raw body or from the `file` part of a multipart form (whose file
/// name is used when the query names none).
async fn receive(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    mut up: UploadRequest,
) -> ApiResult<FileRecord> {
    if !is_multipart(req) {
        let body = payload.map_err(|e| e.to_string());
        return state.files.upload(state.store.as_ref(), up, body).await;
    }
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    while let Some(field) = form.next().await {
        let field = field.map_err(|e| invalid(format!("bad multipart body: {e}")))?;
        let cd = field.content_disposition().cloned();
        if cd.as_ref().and_then(|c| c.get_name()) != Some("file") {
            // Skip other parts (bounded by the body limit below: they are drained, not kept).
            let mut f = field;
            let mut skipped = 0usize;
            while let Some(chunk) = f.next().await {
                skipped += chunk.map_err(|e| invalid(e.to_string()))?.len();
                if skipped > state.config.limits.max_body_bytes {
                    return Err(invalid("a form field other than `file` is too large"));
                }
            }
            continue;
        }
        if up.filename.is_empty() {
            if let Some(name) = cd.as_ref().and_then(|c| c.get_filename()) {
                up.filename = name.to_string();
            }
        }
        // The part is shorter than the whole body: the declared length only bounds it.
        let body = field.map_err(|e| e.to_string());
        return state.files.upload(state.store.as_ref(), up, body).await;
    }
    Err(invalid("the form has no `file` part"))
}

async fn upload(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    req: HttpRequest,
    q: web::Query<UploadQuery>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let room_id = q.room_id.clone().filter(|r| !r.is_empty());
    if let Some(r) = &room_id {
        member_room(&state, r, &who.user_id).await?;
    }
    let up = UploadRequest {
        role: role_of(&state, &who.user_id).await?,
        uploader_id: who.user_id,
        filename: q.filename.clone().unwrap_or_default(),
        declared_len: declared_len(&req),
        room_id,
        hashtags: parse_hashtags(q.hashtags.as_deref())?,
        public: false,
        only: None,
        max_bytes: None,
    };
    let f = receive(&state, &req, payload, up).await?;
    Ok(out.created(&json!({ "file": state.files.present(&f) })))
}

/// Whether `user` may read `f` (public media: anyone; a post's attachments: whoever may see the
/// post; a verification request's documents: the admins who review it).
async fn may_read(state: &AppState, user: Option<&str>, f: &FileRecord) -> ApiResult<bool> {
    if f.public {
        return Ok(true);
    }
    let Some(user) = user else {
        return Ok(false);
    };
    if f.uploader_id == user {
        return Ok(true);
    }
    let shares = state.store.file_shares(&f.id).await?;
    if shares.is_empty() {
        return Ok(false);
    }
    let admin = state
        .store
        .user_by_id(user)
        .await?
        .is_some_and(|u| u.role == dovie_protocol::model::UserRole::Admin);
    if admin
        && shares
            .iter()
            .any(|(key, _)| crate::business::verification_of_share(key).is_some())
    {
        return Ok(true);
    }
    // A post's attachment is for whoever may see the post.
    for post_id in shares
        .iter()
        .filter_map(|(key, _)| crate::social::post_of_share(key))
    {
        if let Some(p) = state.store.post(post_id).await? {
            let viewer = crate::social::Viewer { id: user, admin };
            if crate::social::can_see(&state.store, viewer, &p).await? {
                return Ok(true);
            }
        }
    }
    let mine = state.store.room_ids_of(user).await?;
    Ok(shares.iter().any(|(room, _)| mine.contains(room)))
}

/// A file not deleted; 404 for none.
async fn live_file(state: &AppState, id: &str) -> ApiResult<FileRecord> {
    state
        .store
        .file(id)
        .await?
        .filter(|f| f.deleted_at.is_none())
        .ok_or_else(not_found)
}

/// A file (not deleted) `user_id` may read: 404 for none, 403 for one they may not.
pub(super) async fn file_readable_by(
    state: &AppState,
    id: &str,
    user_id: &str,
) -> ApiResult<FileRecord> {
    let f = live_file(state, id).await?;
    if !may_read(state, Some(user_id), &f).await? {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you may not read this file",
        ));
    }
    Ok(f)
}

/// The caller, if they sent a bearer token (a wrong one is refused, not ignored).
pub(super) fn optional_caller(state: &AppState, req: &HttpRequest) -> ApiResult<Option<String>> {
    match bearer(req) {
        None => Ok(None),
        Some(token) => Ok(Some(state.auth.verify(token)?.user_id)),
    }
}

/// The file (not deleted) if the request may read it: 404 for none, 401 without any credential,
/// 403 for someone not allowed.
async fn readable(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    link: &LinkQuery,
) -> ApiResult<FileRecord> {
    let f = live_file(state, id).await?;
    if let (Some(exp), Some(sig)) = (link.exp, link.sig.as_deref()) {
        if state.files.link_valid(&f.id, exp, sig) {
            return Ok(f);
        }
        if bearer(req).is_none() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "the link is invalid or expired",
            ));
        }
    }
    let caller = optional_caller(state, req)?;
    if may_read(state, caller.as_deref(), &f).await? {
        return Ok(f);
    }
    Err(match caller {
        None => ApiError::new(
            ErrorCode::Unauthorized,
            "a bearer token or a signed link is required",
        ),
        Some(_) => ApiError::new(ErrorCode::Forbidden, "you may not read this file"),
    })
}

/// `Content-Disposition` per RFC 6266: an ASCII fallback and the UTF-8 name.
fn disposition(inline: bool, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "{}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" }
    )
}

/// A single `Range: bytes=…` of a file of `size` bytes: `Ok(None)` to send it whole (no range,
/// several ranges, or a form not understood), `Err(())` when unsatisfiable.
fn parse_range(header: Option<&str>, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .saturating_add(1)
                .min(size)
        };
        if start >= size || end <= start {
            return Err(());
        }
        start..end
    };
    Ok(Some(range))
}

fn etag_of(f: &FileRecord) -> String {
    format!("\"{}\"", &f.sha256[..f.sha256.len().min(32)])
}

fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == etag)
        })
}

async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    link: web::Query<LinkQuery>,
) -> ApiResult<HttpResponse> {
    let f = readable(&state, &req, &id, &link).await?;
    let cache = if f.public {
        "public, max-age=31536000, immutable"
    } else {
        "private, max-age=3600"
    };
    serve(&state, &req, &f, cache).await
}

/// Answers a stored file's bytes: whole or the asked range (206; 416 outside it), with its
/// validators (`ETag`, `If-None-Match`), disposition and sandboxing headers.
pub(super) async fn serve(
    state: &AppState,
    req: &HttpRequest,
    f: &FileRecord,
    cache: &'static str,
) -> ApiResult<HttpResponse> {
    let etag = etag_of(f);
    if not_modified(req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let range = match parse_range(range, f.size) {
        Ok(r) => r,
        Err(()) => {
            // 416 with the API's error body (kept by the error, so it is localized too).
            let err = ApiError::new(ErrorCode::ValidationFailed, "the range is outside the file");
            let mut res = HttpResponse::from_error(err);
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = res.headers_mut();
            if let Ok(v) = header::HeaderValue::from_str(&format!("bytes */{}", f.size)) {
                h.insert(header::CONTENT_RANGE, v);
            }
            h.insert(
                header::ACCEPT_RANGES,
                header::HeaderValue::from_static("bytes"),
            );
            return Ok(res);
        }
    };
    let (status, bytes) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None => (StatusCode::OK, 0..f.size),
    };
    let stream = state.files.read(f, bytes.clone()).await?;
    let inline = INLINE_TYPES.contains(&f.content_type.as_str());
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, f.content_type.clone()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((
            header::CONTENT_DISPOSITION,
            disposition(inline, &f.filename),
        ))
        .insert_header((header::CONTENT_SECURITY_POLICY, FILE_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .no_chunking(bytes.end - bytes.start);
    if range.is_some() {
        res.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", bytes.start, bytes.end - 1, f.size),
        ));
    }
    Ok(res.streaming(stream))
}

async fn delete(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let f = state
        .store
        .file(&id)
        .await?
        .filter(|f| f.deleted_at.is_none())
        .ok_or_else(not_found)?;
    if f.uploader_id != who.user_id && role_of(&state, &who.user_id).await? != UserRole::Admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the uploader or an admin can delete a file",
        ));
    }
    let Some(mut gone) = state
        .store
        .delete_file(&f.id, dovie_actors::now_ms())
        .await?
    else {
        return Ok(HttpResponse::NoContent().finish());
    };
    state.files.delete_objects(&gone).await;
    gone.deleted_at = Some(dovie_actors::now_ms());
    state.extras.refresh(&gone);
    Ok(HttpResponse::NoContent().finish())
}

async fn preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    link: web::Query<LinkQuery>,
) -> ApiResult<HttpResponse> {
    let size = link.size.as_deref().unwrap_or("medium");
    if !crate::files::media::SIZES.iter().any(|(s, _)| *s == size) {
        return Err(invalid("size must be small, medium or large"));
    }
    let f = readable(&state, &req, &id, &link).await?;
    serve_preview(&state, &req, &f, size).await
}

async fn serve_preview(
    state: &AppState,
    req: &HttpRequest,
    f: &FileRecord,
    size: &str,
) -> ApiResult<HttpResponse> {
    let p = f
        .meta
        .previews
        .iter()
        .find(|p| p.size == size)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "this file has no preview (yet)"))?;
    let etag = format!("\"{}-{}\"", &f.sha256[..f.sha256.len().min(24)], p.size);
    let cache = if f.public {
        "public, max-age=31536000, immutable"
    } else {
        "private, max-age=3600"
    };
    if not_modified(req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish());
    }
    let bytes = state.files.read_preview(&f.id, p).await?;
    crate::metrics::file_bytes("out", bytes.len() as u64);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, p.content_type.clone()))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_SECURITY_POLICY, FILE_CSP))
        .insert_header((header::CONTENT_DISPOSITION, "inline"))
        .body(Bytes::from(bytes)))
}

async fn list(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = match q.limit {
        None => DEFAULT_PAGE,
        Some(0) => return Err(invalid("limit must be at least 1")),
        Some(l) if l > super::LIMIT_CEILING => return Err(invalid("limit is too large")),
        Some(l) => (l as usize).min(MAX_PAGE),
    };
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(
            FileKind::parse(k)
                .ok_or_else(|| invalid("kind must be image, video, audio, document or archive"))?,
        ),
    };
    let hashtag = q
        .hashtag
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(normal_tag)
        .transpose()?;
    let room_id = q.room_id.clone().filter(|r| !r.is_empty());
    if let Some(r) = &room_id {
        member_room(&state, r, &who.user_id).await?;
    }
    let query = FileQuery {
        rooms: state.store.room_ids_of(&who.user_id).await?,
        user_id: who.user_id,
        room_id,
        hashtag,
        kind,
        before: q.cursor.clone().filter(|c| !c.is_empty()),
        limit,
    };
    let page = state.store.list_files(&query).await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|f| f.id.clone()))
        .flatten();
    let files: Vec<_> = page.iter().map(|f| state.files.present(f)).collect();
    Ok(out.ok(&json!({ "files": files, "next_cursor": next })))
}

async fn voice_message(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    req: HttpRequest,
    q: web::Query<VoiceQuery>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    member_room(&state, &q.room_id, &who.user_id).await?;
    let (nonce, _) = room::validate_send_extras(q.nonce.clone(), None)?;
    let up = UploadRequest {
        role: role_of(&state, &who.user_id).await?,
        uploader_id: who.user_id.clone(),
        filename: q.filename.clone().unwrap_or_else(|| "voice".into()),
        declared_len: declared_len(&req),
        room_id: Some(q.room_id.clone()),
        hashtags: Vec::new(),
        public: false,
        only: Some(&[FileKind::Audio]),
        max_bytes: None,
    };
    let mut f = receive(&state, &req, payload, up).await?;
    // The duration belongs in the message itself: read it now (the preview job reads it too).
    let reader = state
        .files
        .blocking_reader(&f, tokio::runtime::Handle::current())?;
    let (len, ct) = (f.size, f.content_type.clone());
    let duration =
        tokio::task::spawn_blocking(move || crate::files::media::audio_duration(reader, len, &ct))
            .await
            .ok()
            .flatten();
    let Some(duration) = duration else {
        state
            .store
            .delete_file(&f.id, dovie_actors::now_ms())
            .await?;
        state.files.delete_objects(&f).await;
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the audio cannot be read (no duration)",
        ));
    };
    f.meta.duration_ms = Some(duration);
    if !state.ports.quota.allow_send(&who.user_id) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many messages; slow down",
        ));
    }
    let message_id = uuid::Uuid::now_v7().to_string();
    let objects = {
        use dovie_actors::ports::MessageExtras;
        state
            .extras
            .attach(&who.user_id, &q.room_id, &message_id, &[f.id.clone()], &[])
            .await?
    };
    let mut objects = objects;
    if let Some(o) = objects.first_mut().and_then(|o| o.as_object_mut()) {
        o.insert("duration_ms".into(), json!(duration));
    }
    let (reply, rx) = Responder::channel();
    state.directory.room(&q.room_id).do_send(room::Post {
        draft: Draft {
            id: message_id,
            sender_id: who.user_id,
            content: String::new(),
            nonce,
            reply_to: None,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            created_at: dovie_actors::now_ms(),
            kind: MessageKind::Voice,
            attachments: objects,
            location: None,
            suggest_location: false,
        },
        reply,
        started: Instant::now(),
    });
    let (message, created) = rx
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "the room did not answer"))??;
    let body = json!({ "message": message });
    Ok(out.created_or_ok(created, &body))
}

async fn profile_image(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let up = UploadRequest {
        role: role_of(&state, &who.user_id).await?,
        uploader_id: who.user_id.clone(),
        filename: "avatar".into(),
        declared_len: declared_len(&req),
        room_id: None,
        hashtags: Vec::new(),
        public: true,
        only: Some(&[FileKind::Image]),
        max_bytes: Some(state.files.config().profile_image_bytes),
    };
    let f = receive(&state, &req, payload, up).await?;
    if f.content_type == "image/svg+xml" {
        state
            .store
            .delete_file(&f.id, dovie_actors::now_ms())
            .await?;
        state.files.delete_objects(&f).await;
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "a profile image must be JPEG, PNG, GIF or WebP",
        ));
    }
    let ext = match f.content_type.as_str() {
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "jpg",
    };
    let patch = ProfilePatch {
        avatar_url: Some(Some(format!("/api/profile-images/{}.{ext}", f.id))),
        ..ProfilePatch::default()
    };
    let user = state.store.update_profile(&who.user_id, &patch).await?;
    state.profiles.forget(&who.user_id);
    Ok(out.created(&json!({ "user": user })))
}

/// A profile image: public and cacheable; its square thumbnail (`?size=`, default medium)
/// once made, the image itself until then.
async fn get_profile_image(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    link: web::Query<LinkQuery>,
) -> ApiResult<HttpResponse> {
    let id = name.split('.').next().unwrap_or("");
    let f = state
        .store
        .file(id)
        .await?
        .filter(|f| f.public && f.deleted_at.is_none() && f.kind == FileKind::Image)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such profile image"))?;
    let size = link.size.as_deref().unwrap_or("medium");
    if !crate::files::media::AVATAR_SIZES
        .iter()
        .any(|(s, _)| *s == size)
    {
        return Err(invalid("size must be small, medium or large"));
    }
    if f.meta.previews.iter().any(|p| p.size == size) {
        return serve_preview(&state, &req, &f, size).await;
    }
    let none = web::Query(LinkQuery {
        exp: None,
        sig: None,
        size: None,
    });
    download(state, req, web::Path::from(f.id.clone()), none).await
}

/// The file objects of a REST send's `attachments`, shared into the room.
pub async fn attach(
    state: &AppState,
    sender: &str,
    room_id: &str,
    message_id: &str,
    ids: &[String],
    hashtags: &[String],
) -> ApiResult<Vec<serde_json::Value>> {
    use dovie_actors::ports::MessageExtras;
    Ok(state
        .extras
        .attach(sender, room_id, message_id, ids, hashtags)
        .await?)
}

const EXP_PARAM: QueryParam = QueryParam {
    name: "exp",
    required: false,
    schema: r#"{"type": "integer", "minimum": 0, "maximum": 9007199254740991, "description": "expiry of a signed link (unix seconds)"}"#,
};
const SIG_PARAM: QueryParam = QueryParam {
    name: "sig",
    required: false,
    schema: r#"{"type": "string", "maxLength": 128}"#,
};
const SIZE_PARAM: QueryParam = QueryParam {
    name: "size",
    required: false,
    schema: r#"{"type": "string", "enum": ["small", "medium", "large"]}"#,
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
        r("POST", "/api/upload", "Upload a file: the raw bytes streamed as the body, or a multipart form's `file` part; the type is told from the bytes", true, Some("FileUpload"),
          (201, Some("FileResponse")), &[400, 403, 404, 413, 415], &[
            QueryParam { name: "filename", required: false, schema: r#"{"type": "string", "maxLength": 1024}"# },
            QueryParam { name: "room_id", required: false, schema: r#"{"type": "string", "maxLength": 128}"# },
            QueryParam { name: "hashtags", required: false, schema: r#"{"type": "string", "maxLength": 1400, "description": "comma-separated"}"# },
          ], &[]),
        upload,
    );
    api.route(
        r("GET", "/api/files", "Files I may read (mine, and those shared in my rooms), newest first; by hashtag, room and kind", true, None,
          (200, Some("FileList")), &[400, 403, 404], &[
            QueryParam { name: "hashtag", required: false, schema: r#"{"type": "string", "maxLength": 65}"# },
            QueryParam { name: "room_id", required: false, schema: r#"{"type": "string", "maxLength": 128}"# },
            QueryParam { name: "kind", required: false, schema: r#"{"type": "string", "enum": ["image", "video", "audio", "document", "archive"]}"# },
            LIMIT_PARAM,
            QueryParam { name: "cursor", required: false, schema: r#"{"type": "string", "maxLength": 128}"# },
          ], &[]),
        list,
    );
    api.route(
        r(
            "GET",
            "/api/files/{id}",
            "A file's bytes (Range, ETag); a bearer token of someone allowed, or a signed link",
            false,
            None,
            (200, Some("Binary")),
            &[401, 403, 404, 416],
            &[EXP_PARAM, SIG_PARAM],
            &[206, 304],
        ),
        download,
    );
    api.route(
        r(
            "DELETE",
            "/api/files/{id}",
            "Delete a file (uploader or admin): its bytes go, messages keep a deleted attachment",
            true,
            None,
            (204, None),
            &[403, 404],
            &[],
            &[],
        ),
        delete,
    );
    api.route(
        r("GET", "/api/file-preview/{id}", "A file's preview image: a thumbnail, a video's poster frame, a document's first page or card", false, None,
          (200, Some("Binary")), &[400, 401, 403, 404], &[SIZE_PARAM, EXP_PARAM, SIG_PARAM], &[304]),
        preview,
    );
    api.route(
        r("POST", "/api/voice-messages", "Send a voice message: the audio streamed as the body; answers the message with its duration", true, Some("FileUpload"),
          (201, Some("MessageResponse")), &[400, 403, 404, 413, 415, 429], &[
            QueryParam { name: "room_id", required: true, schema: r#"{"type": "string", "maxLength": 128}"# },
            QueryParam { name: "filename", required: false, schema: r#"{"type": "string", "maxLength": 1024}"# },
            QueryParam { name: "nonce", required: false, schema: r#"{"type": "string", "maxLength": 128}"# },
          ], &[200]),
        voice_message,
    );
    api.route(
        r(
            "POST",
            "/api/profile-images",
            "Set my profile image (JPEG, PNG, GIF or WebP, at most 5 MB)",
            true,
            Some("FileUpload"),
            (201, Some("UserResponse")),
            &[400, 413, 415],
            &[],
            &[],
        ),
        profile_image,
    );
    api.route(
        r(
            "GET",
            "/api/profile-images/{filename}",
            "A profile image (public, cacheable): its square thumbnail",
            false,
            None,
            (200, Some("Binary")),
            &[400, 404],
            &[SIZE_PARAM],
            &[304],
        ),
        get_profile_image,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_like_rfc_9110() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some(90..100)));
        assert_eq!(parse_range(Some("bytes=95-500"), 100), Ok(Some(95..100)));
        assert_eq!(parse_range(Some("bytes=-500"), 100), Ok(Some(0..100)));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=5-2"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
    }

    #[test]
    fn dispositions_carry_utf8_names() {
        assert_eq!(
            disposition(false, "사진 1.jpg"),
            "attachment; filename=\"__ 1.jpg\"; filename*=UTF-8''%EC%82%AC%EC%A7%84%201.jpg"
        );
        assert!(disposition(true, "a\"b.txt").starts_with("inline; filename=\"a_b.txt\""));
    }

    #[test]
    fn hashtags_are_normalised_and_checked() {
        assert_eq!(
            parse_hashtags(Some("Trip, #beach,trip,,")).unwrap(),
            vec!["trip", "beach"]
        );
        assert!(parse_hashtags(Some("no spaces")).is_err());
        assert!(parse_hashtags(Some("a-b")).is_err());
    }
}
