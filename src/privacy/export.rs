//! Data exports (OPS-9): a user's data as one ZIP — JSON of everything they created or that is
//! kept about them, and the bytes of their files — made by a job off the request path and kept
//! encrypted like a file until it expires.
//!
//! The archive streams through three stages joined by bounded channels, so neither a file nor
//! the archive is ever whole in memory or in clear on disk: this task reads the store and the
//! files and sends entries ([`Op`]); a blocking thread writes them as a streamed ZIP (data
//! descriptors, ZIP64 past 4 GiB or 65,535 entries: [`crate::zipstream`]); the archive's bytes are sealed
//! into the object store as they come ([`crate::files::Files::seal_stream`]).
//!
//! One job runs per user at a time (the store's claim); the job beats every [`BEAT_EVERY`], and
//! a job silent for [`STALE_AFTER`] (its node died) is failed and replaced by the next ask. A
//! file whose bytes cannot be read is listed in `manifest.json` as missing instead of failing
//! the archive.

use std::time::{Duration, Instant};

use actix_web::web;
use bytes::Bytes;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::api::{ApiError, ApiResult};
use crate::audit::{self, Actor, Target};
use crate::state::AppState;
use crate::store::{
    AuditFilter, ExportBegin, ExportRecord, ExportStatus, FileKind, FileRecord, PostCursor,
    PreviewState, StoreResult,
};
use crate::zipstream::{write_zip, Op};

/// How long a ready export can be downloaded.
pub const KEEP_FOR: Duration = Duration::from_secs(7 * 86_400);
/// A running job tells the store it is alive this often...
const BEAT_EVERY: Duration = Duration::from_secs(10);
/// ...and one silent for this long is stuck: the next ask replaces it.
pub const STALE_AFTER: Duration = Duration::from_secs(120);
/// Rows read per store page.
const PAGE: usize = 500;
/// Entries the reading stage may be ahead of the ZIP writer.
const OPS_IN_FLIGHT: usize = 16;
/// Archive pieces (of `zipstream::PIECE` bytes) that may wait for the sealer.
const OUT_IN_FLIGHT: usize = 8;
/// How often expired archives are deleted.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// An export as its owner sees it.
pub fn view(state: &AppState, e: &ExportRecord) -> Value {
    let mut v = json!({
        "id": e.id,
        "status": e.status.as_str(),
        "created_at": e.created_at,
    });
    if let Some(at) = e.finished_at {
        v["finished_at"] = json!(at);
    }
    if let Some(err) = &e.error {
        v["error"] = json!(err);
    }
    if e.status == ExportStatus::Ready {
        if let Some(exp) = e.expires_at {
            v["expires_at"] = json!(exp);
            v["size"] = json!(e.size);
            v["download_url"] = json!(format!(
                "{}/api/me/exports/{}/download?{}",
                state.config.public_url,
                e.id,
                state
                    .files
                    .signed_query(&link_subject(e), exp.div_euclid(1000))
            ));
        }
    }
    v
}

/// What a download link of `e` is signed for: the export and its owner.
pub fn link_subject(e: &ExportRecord) -> String {
    format!("export:{}:{}", e.id, e.user_id)
}

/// The archive as a file the download path can serve (its key is bound to the export's id).
pub fn archive_file(e: &ExportRecord) -> Option<FileRecord> {
    Some(FileRecord {
        id: e.id.clone(),
        uploader_id: e.user_id.clone(),
        filename: format!("dovie-export-{}.zip", e.id),
        content_type: "application/zip".into(),
        kind: FileKind::Archive,
        size: e.size,
        sha256: e.sha256.clone()?,
        object: e.object.clone()?,
        key_id: e.key_id.clone()?,
        wrapped_key: e.wrapped_key.clone()?,
        chunk_bytes: e.chunk_bytes,
        hashtags: Vec::new(),
        room_id: None,
        public: false,
        meta: Default::default(),
        preview_state: PreviewState::Done,
        created_at: e.created_at,
        deleted_at: None,
        transcript: None,
    })
}

/// Asks for an export of `user_id`'s data: starts a job, or answers the one still running.
pub async fn request(
    state: &web::Data<AppState>,
    actor: Actor<'_>,
    user_id: &str,
) -> ApiResult<ExportRecord> {
    let now = dovie_actors::now_ms();
    let job = ExportRecord::pending(uuid::Uuid::now_v7().to_string(), user_id.to_string(), now);
    let stale_before = now - STALE_AFTER.as_millis() as i64;
    match state.store.begin_export(&job, stale_before).await? {
        ExportBegin::Running(running) => Ok(*running),
        ExportBegin::Started => {
            audit::note(
                &state.store,
                actor,
                "export.requested",
                user_target(user_id),
                json!({ "export_id": job.id }),
            )
            .await;
            let (state, started) = (state.clone(), job.clone());
            actix_rt::spawn(async move { run(state, started).await });
            Ok(job)
        }
    }
}

/// Runs a job to its end: ready with its archive, or failed with the reason.
async fn run(state: web::Data<AppState>, job: ExportRecord) {
    let started = Instant::now();
    let (ops_tx, ops_rx) = mpsc::channel::<Op>(OPS_IN_FLIGHT);
    let (out_tx, out_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(OUT_IN_FLIGHT);
    let zipper = tokio::task::spawn_blocking(move || write_zip(ops_rx, out_tx));
    let mut archive = tokio_stream_of(out_rx);
    let reading = async {
        let mut w = Writer {
            state: &state,
            job: &job,
            ops: ops_tx,
            last_beat: Instant::now(),
        };
        let result = w.everything().await;
        if let Err(e) = &result {
            let _ = w.ops.send(Op::Abort(e.message.clone())).await;
        }
        result
    };
    let sealing = state
        .files
        .seal_stream(&job.id, Bytes::new(), false, &mut archive, |_| Ok(()));
    let (read, sealed) = futures_util::join!(reading, sealing);
    let _ = zipper.await;
    let now = dovie_actors::now_ms();
    let finished = match (read, sealed) {
        (Ok(()), Ok(s)) => ExportRecord {
            status: ExportStatus::Ready,
            finished_at: Some(now),
            expires_at: Some(now + KEEP_FOR.as_millis() as i64),
            object: Some(s.object),
            key_id: Some(s.key_id),
            wrapped_key: Some(s.wrapped_key),
            chunk_bytes: s.chunk_bytes,
            size: s.size,
            sha256: Some(s.sha256),
            heartbeat_at: now,
            ..job.clone()
        },
        (read, sealed) => {
            let reason = match (read, sealed) {
                (Err(e), _) => e.message,
                (_, Err(e)) => e.0.message,
                _ => "unknown".into(),
            };
            tracing::warn!(export = %job.id, %reason, "a data export failed");
            ExportRecord {
                status: ExportStatus::Failed,
                finished_at: Some(now),
                error: Some(reason),
                heartbeat_at: now,
                ..job.clone()
            }
        }
    };
    if let Err(e) = state.store.end_export(&finished).await {
        tracing::warn!(export = %job.id, error = %e.message, "cannot record an export's end");
        if let Some(o) = &finished.object {
            state.files.delete_object(o).await;
        }
        return;
    }
    tracing::info!(
        export = %job.id, status = finished.status.as_str(), bytes = finished.size,
        seconds = started.elapsed().as_secs_f64(), "data export finished"
    );
    let system = Actor {
        id: audit::SYSTEM,
        ip: None,
    };
    audit::note(
        &state.store,
        system,
        if finished.status == ExportStatus::Ready {
            "export.ready"
        } else {
            "export.failed"
        },
        user_target(&job.user_id),
        json!({ "export_id": job.id, "bytes": finished.size, "error": finished.error }),
    )
    .await;
}

/// The receiving end of a channel as a stream.
fn tokio_stream_of(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// An account as the target of an audit entry.
fn user_target(id: &str) -> Target<'_> {
    Target {
        kind: "user",
        id,
        label: None,
    }
}

/// One file of the archive as the manifest lists it.
#[derive(Serialize)]
struct FileEntry {
    id: String,
    filename: String,
    content_type: String,
    size: u64,
    sha256: String,
    created_at: i64,
    /// Where its bytes are in the archive.
    path: String,
    /// `included`, `missing` (its bytes could not be read) or `incomplete` (reading failed
    /// part way: the entry is cut short).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The reading stage of one job.
struct Writer<'a> {
    state: &'a AppState,
    job: &'a ExportRecord,
    ops: mpsc::Sender<Op>,
    last_beat: Instant,
}

fn gone() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "the archive writer stopped")
}

impl Writer<'_> {
    async fn send(&self, op: Op) -> StoreResult<()> {
        self.ops.send(op).await.map_err(|_| gone())
    }

    async fn entry(&self, name: &str, deflate: bool) -> StoreResult<()> {
        self.send(Op::Entry {
            name: name.to_string(),
            deflate,
        })
        .await
    }

    /// Tells the store the job is alive (every [`BEAT_EVERY`]); fails if another job took over.
    async fn beat(&mut self) -> StoreResult<()> {
        if self.last_beat.elapsed() < BEAT_EVERY {
            return Ok(());
        }
        self.last_beat = Instant::now();
        let mine = self
            .state
            .store
            .beat_export(&self.job.user_id, &self.job.id, dovie_actors::now_ms())
            .await?;
        if !mine {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "another export replaced this one",
            ));
        }
        Ok(())
    }

    /// A whole JSON document as one entry.
    async fn json(&mut self, name: &str, value: &impl Serialize) -> StoreResult<()> {
        let bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        self.entry(name, true).await?;
        self.send(Op::Data(Bytes::from(bytes))).await?;
        self.beat().await
    }

    /// A JSON array written item by item (never whole in memory).
    async fn array_start(&self, name: &str) -> StoreResult<JsonArray> {
        self.entry(name, true).await?;
        self.send(Op::Data(Bytes::from_static(b"[\n"))).await?;
        Ok(JsonArray { count: 0 })
    }

    async fn array_item(&mut self, a: &mut JsonArray, item: &impl Serialize) -> StoreResult<()> {
        let mut bytes = Vec::new();
        if a.count > 0 {
            bytes.extend_from_slice(b",\n");
        }
        serde_json::to_writer(&mut bytes, item)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        a.count += 1;
        self.send(Op::Data(Bytes::from(bytes))).await
    }

    async fn array_end(&mut self, a: JsonArray) -> StoreResult<u64> {
        self.send(Op::Data(Bytes::from_static(b"\n]\n"))).await?;
        self.beat().await?;
        Ok(a.count)
    }

    /// Every section, then the files, then the manifest.
    async fn everything(&mut self) -> StoreResult<()> {
        let store = self.state.store.clone();
        let me = self.job.user_id.clone();
        let now = dovie_actors::now_ms();
        let mut sections: Vec<(&'static str, u64)> = Vec::new();

        let user = store
            .user_by_id(&me)
            .await?
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "no such user"))?;
        let settings = store.notification_settings(&me).await?;
        self.json(
            "profile.json",
            &json!({ "user": user, "notification_settings": settings.map(|(s, at)| json!({ "settings": serde_json::from_str::<Value>(&s).unwrap_or(Value::Null), "updated_at": at })) }),
        )
        .await?;
        sections.push(("profile.json", 1));

        let sessions: Vec<Value> = store
            .sessions_of(&me, now)
            .await?
            .into_iter()
            .map(|s| {
                json!({ "id": s.id, "device": s.device, "user_agent": s.user_agent, "ip": s.ip,
                        "created_at": s.created_at, "last_seen_at": s.last_seen_at, "expires_at": s.expires_at })
            })
            .collect();
        sections.push(("sessions.json", sessions.len() as u64));
        self.json("sessions.json", &sessions).await?;

        for (name, blocks) in [("contacts.json", false), ("blocks.json", true)] {
            let mut a = self.array_start(name).await?;
            let mut after: Option<String> = None;
            loop {
                let page = if blocks {
                    store.blocks(&me, after.as_deref(), PAGE).await?
                } else {
                    store.contacts(&me, after.as_deref(), PAGE).await?
                };
                for c in &page {
                    self.array_item(
                        &mut a,
                        &json!({ "user_id": c.user_id, "added_at": c.added_at }),
                    )
                    .await?;
                }
                if page.len() < PAGE {
                    break;
                }
                after = page.last().map(|c| c.user_id.clone());
            }
            sections.push((name, self.array_end(a).await?));
        }

        let rooms: Vec<Value> = store
            .rooms_of(&me)
            .await?
            .into_iter()
            .map(|s| json!({ "room": s.room, "unread_count": s.unread_count }))
            .collect();
        sections.push(("rooms.json", rooms.len() as u64));
        self.json("rooms.json", &rooms).await?;

        // My messages, in every room I ever sent in (left ones too), by room and seq.
        let mut a = self.array_start("messages.json").await?;
        for room in store.rooms_sent_in(&me).await? {
            let mut after = 0u64;
            loop {
                let page = store.history(&room, None, Some(after), PAGE).await?;
                for m in page.messages.iter().filter(|m| m.sender_id == me) {
                    self.array_item(&mut a, m).await?;
                }
                match page.messages.last() {
                    Some(last) if page.has_more => after = last.seq,
                    _ => break,
                }
                self.beat().await?;
            }
        }
        sections.push(("messages.json", self.array_end(a).await?));

        let mut a = self.array_start("posts.json").await?;
        let mut before: Option<PostCursor> = None;
        loop {
            let page = store
                .posts_by_authors(std::slice::from_ref(&me), before.as_ref(), PAGE)
                .await?;
            for p in &page {
                self.array_item(&mut a, &crate::social::view(p, false))
                    .await?;
            }
            if page.len() < PAGE {
                break;
            }
            before = page.last().map(PostCursor::of);
        }
        sections.push(("posts.json", self.array_end(a).await?));

        let mut a = self.array_start("comments.json").await?;
        let mut after: Option<String> = None;
        loop {
            let page = store.comments_by(&me, after.as_deref(), PAGE).await?;
            for c in &page {
                self.array_item(&mut a, c).await?;
            }
            if page.len() < PAGE {
                break;
            }
            after = page.last().map(|c| c.id.clone());
        }
        sections.push(("comments.json", self.array_end(a).await?));

        let mut a = self.array_start("likes.json").await?;
        let mut after: Option<String> = None;
        loop {
            let page = store.likes_by(&me, after.as_deref(), PAGE).await?;
            for (post_id, at) in &page {
                self.array_item(&mut a, &json!({ "post_id": post_id, "liked_at": at }))
                    .await?;
            }
            if page.len() < PAGE {
                break;
            }
            after = page.last().map(|l| l.0.clone());
        }
        sections.push(("likes.json", self.array_end(a).await?));

        for (name, followers) in [("following.json", false), ("followers.json", true)] {
            let mut a = self.array_start(name).await?;
            let mut after = String::new();
            loop {
                let page = if followers {
                    store.followers(&me, &after, PAGE).await?
                } else {
                    store.following(&me, &after, PAGE).await?
                };
                for id in &page {
                    self.array_item(&mut a, &json!({ "user_id": id })).await?;
                }
                if page.len() < PAGE {
                    break;
                }
                after = page.last().cloned().unwrap_or_default();
            }
            sections.push((name, self.array_end(a).await?));
        }

        let mut a = self.array_start("location_history.json").await?;
        let mut before: Option<String> = None;
        loop {
            let page = store
                .location_history(&me, 0, before.as_deref(), PAGE)
                .await?;
            for h in &page {
                self.array_item(
                    &mut a,
                    &json!({ "id": h.id, "kind": h.kind, "room_id": h.room_id, "lat": h.lat, "lon": h.lon, "at": h.at }),
                )
                .await?;
            }
            if page.len() < PAGE {
                break;
            }
            before = page.last().map(|h| h.id.clone());
        }
        sections.push(("location_history.json", self.array_end(a).await?));

        let consents = store.consents(&me).await?;
        sections.push(("consents.json", consents.len() as u64));
        self.json("consents.json", &consents).await?;

        let me_list = std::slice::from_ref(&me);
        let web_push: Vec<Value> = store
            .web_push_of(me_list)
            .await?
            .into_iter()
            .map(|s| json!({ "id": s.id, "endpoint": s.endpoint, "encoding": s.encoding, "created_at": s.created_at }))
            .collect();
        let apns: Vec<Value> = store
            .apns_tokens_of(me_list)
            .await?
            .into_iter()
            .map(|t| json!({ "token": t.token, "environment": t.environment, "created_at": t.created_at }))
            .collect();
        sections.push((
            "push_subscriptions.json",
            (web_push.len() + apns.len()) as u64,
        ));
        self.json(
            "push_subscriptions.json",
            &json!({ "web_push": web_push, "apns": apns }),
        )
        .await?;

        let commands = store.commands(&me).await?;
        sections.push(("saved_commands.json", commands.len() as u64));
        self.json("saved_commands.json", &commands).await?;
        let reminders = store.reminders_of(&me).await?;
        sections.push(("reminders.json", reminders.len() as u64));
        self.json("reminders.json", &reminders).await?;

        // My security events: what I did, and what was done to my account.
        let mut a = self.array_start("security_events.json").await?;
        for filter in [
            AuditFilter {
                actor_id: Some(me.clone()),
                ..Default::default()
            },
            AuditFilter {
                target: Some(("user".into(), me.clone())),
                ..Default::default()
            },
        ] {
            let mut filter = filter;
            loop {
                let page = store.audit_entries(&filter, PAGE).await?;
                for e in &page {
                    // Each entry once (mine and about me: listed with the first).
                    if filter.target.is_some() && e.actor_id == me {
                        continue;
                    }
                    self.array_item(&mut a, e).await?;
                }
                if page.len() < PAGE {
                    break;
                }
                filter.before = page.last().map(|e| (e.at, e.id.clone()));
            }
        }
        sections.push(("security_events.json", self.array_end(a).await?));

        // My files: their records, then their bytes.
        let mut files: Vec<FileRecord> = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let (page, next) = crate::files::uploaded_by(&store, &me, before.take(), PAGE).await?;
            files.extend(page);
            match next {
                Some(id) => before = Some(id),
                None => break,
            }
        }
        files.reverse(); // oldest first
        let mut listed = Vec::with_capacity(files.len());
        for f in &files {
            listed.push(self.file(f).await?);
            self.beat().await?;
        }
        sections.push(("files", listed.len() as u64));

        self.json(
            "manifest.json",
            &json!({
                "format": "dovie-export",
                "version": 1,
                "export_id": self.job.id,
                "user_id": me,
                "created_at": self.job.created_at,
                "written_at": dovie_actors::now_ms(),
                "sections": sections.iter().map(|(n, c)| json!({ "name": n, "items": c })).collect::<Vec<_>>(),
                "files": listed,
            }),
        )
        .await
    }

    /// One file's bytes as an entry (`files/<id>/<name>`), streamed and decrypted.
    async fn file(&mut self, f: &FileRecord) -> StoreResult<FileEntry> {
        let path = format!("files/{}/{}", f.id, zip_name(&f.filename));
        let mut listed = FileEntry {
            id: f.id.clone(),
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            created_at: f.created_at,
            path: path.clone(),
            status: "included",
            reason: None,
        };
        let stream = match self.state.files.read(f, 0..f.size).await {
            Ok(s) => s,
            Err(ApiError(e, _)) => {
                tracing::warn!(file = %f.id, error = %e.message, "an exported file is missing");
                listed.status = "missing";
                listed.reason = Some(e.message);
                return Ok(listed);
            }
        };
        self.entry(&path, false).await?;
        let mut stream = Box::pin(stream);
        while let Some(piece) = stream.next().await {
            match piece {
                Ok(b) => self.send(Op::Data(b)).await?,
                Err(e) => {
                    listed.status = "incomplete";
                    listed.reason = Some(e.to_string());
                    break;
                }
            }
        }
        Ok(listed)
    }
}

struct JsonArray {
    count: u64,
}

/// A file name safe inside the archive: no directories, no control characters.
fn zip_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match cleaned.trim_matches('.') {
        "" => "file".into(),
        trimmed => trimmed.to_string(),
    }
}

/// Deletes the archives of exports past their `expires_at` (every node; each archive once or
/// more, harmlessly), every [`SWEEP_EVERY`].
pub fn spawn_sweeper(state: web::Data<AppState>) {
    actix_rt::spawn(async move {
        loop {
            match state
                .store
                .expired_exports(dovie_actors::now_ms(), PAGE)
                .await
            {
                Ok(due) => {
                    for e in due {
                        if let Some(o) = &e.object {
                            state.files.delete_object(o).await;
                        }
                        let expired = ExportRecord {
                            status: ExportStatus::Expired,
                            object: None,
                            key_id: None,
                            wrapped_key: None,
                            ..e
                        };
                        if let Err(err) = state.store.end_export(&expired).await {
                            tracing::warn!(error = %err.message, "cannot mark an export expired");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e.message, "cannot list expired exports"),
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_their_folder() {
        assert_eq!(zip_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(zip_name("a\\b\nc.txt"), "a_b_c.txt");
        assert_eq!(zip_name(".."), "file");
        assert_eq!(zip_name("사진.jpg"), "사진.jpg");
    }
}
