//! Privacy records in the cluster store: consents with their whole history (`consents`, a row
//! per change, clustered by time).

use futures_util::StreamExt;

use super::*;

#[async_trait]
impl ConsentStore for ScyllaStore {
    async fn add_consents(&self, user_id: &str, changes: &[ConsentRecord]) -> StoreResult<()> {
        try_join_all(changes.iter().map(|ch| {
            self.write(
                &self.st.ai.insert_consent,
                (user_id, ch.at, &ch.kind, ch.granted),
            )
        }))
        .await?;
        Ok(())
    }

    async fn consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        // Clustered by (at, kind): oldest first.
        let rows = self
            .rows::<(String, bool, i64)>(&self.st.ai.consents_of, (user_id,))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, granted, at)| ConsentRecord { kind, granted, at })
            .collect())
    }
}

const EXPORT_COLS: &str =
    "id, user_id, status, created_at, heartbeat_at, finished_at, expires_at, \
                           error, object, key_id, wrapped_key, chunk_bytes, size, sha256";
/// Days of `exports_by_expiry` the sweeper reads back from today (exports expire days after
/// they are made; a node down for longer than this leaves older ones to a manual sweep).
const EXPIRY_DAYS_BACK: i64 = 60;
/// Compare-and-set rounds on a user's running export before the store counts as busy.
const CLAIM_ATTEMPTS: usize = 8;

type ExportRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<String>,
);

fn export_of(r: ExportRow) -> ExportRecord {
    ExportRecord {
        id: r.0,
        user_id: r.1,
        status: ExportStatus::parse(&r.2),
        created_at: r.3,
        heartbeat_at: r.4,
        finished_at: r.5,
        expires_at: r.6,
        error: r.7,
        object: r.8,
        key_id: r.9,
        wrapped_key: r.10,
        chunk_bytes: r.11.unwrap_or(0).max(0) as u32,
        size: r.12.unwrap_or(0).max(0) as u64,
        sha256: r.13,
    }
}

pub(super) struct PrivacyStmts {
    put_export: PreparedStatement,
    export: PreparedStatement,
    list_export: PreparedStatement,
    exports_of: PreparedStatement,
    list_expiry: PreparedStatement,
    unlist_expiry: PreparedStatement,
    expiring: PreparedStatement,
    claim_running: PreparedStatement,
    running: PreparedStatement,
    take_over_running: PreparedStatement,
    beat_running: PreparedStatement,
    beat_export: PreparedStatement,
    release_running: PreparedStatement,
    pub(super) record_sender: PreparedStatement,
    rooms_sent_in: PreparedStatement,
    pub(super) index_like: PreparedStatement,
    pub(super) unindex_like: PreparedStatement,
    likes_by: PreparedStatement,
    pub(super) index_comment: PreparedStatement,
    comments_by: PreparedStatement,
    pub(super) index_identity: PreparedStatement,
    identities_of: PreparedStatement,
    forget: Vec<(&'static str, PreparedStatement)>,
    forget_identity: PreparedStatement,
    forget_prefix: PreparedStatement,
    forget_email: PreparedStatement,
    forget_phone: PreparedStatement,
    sessions_of: PreparedStatement,
    forget_session: PreparedStatement,
    exports_of_user: PreparedStatement,
    forget_export: PreparedStatement,
    files_of: PreparedStatement,
    forget_file: PreparedStatement,
}

/// Partitions (and single rows) keyed by the account alone, deleted whole by an erasure.
const FORGET_BY_USER: [(&str, &str); 14] = [
    ("users", "DELETE FROM users WHERE id = ?"),
    (
        "identities_by_user",
        "DELETE FROM identities_by_user WHERE user_id = ?",
    ),
    (
        "sessions_by_user",
        "DELETE FROM sessions_by_user WHERE user_id = ?",
    ),
    ("consents", "DELETE FROM consents WHERE user_id = ?"),
    (
        "notification_settings",
        "DELETE FROM notification_settings WHERE user_id = ?",
    ),
    ("activities", "DELETE FROM activities WHERE user_id = ?"),
    (
        "exports_by_user",
        "DELETE FROM exports_by_user WHERE user_id = ?",
    ),
    (
        "running_exports",
        "DELETE FROM running_exports WHERE user_id = ?",
    ),
    (
        "sender_rooms",
        "DELETE FROM sender_rooms WHERE sender_id = ?",
    ),
    (
        "likes_by_user",
        "DELETE FROM likes_by_user WHERE user_id = ?",
    ),
    (
        "comments_by_author",
        "DELETE FROM comments_by_author WHERE author_id = ?",
    ),
    (
        "files_by_uploader",
        "DELETE FROM files_by_uploader WHERE uploader_id = ?",
    ),
    (
        "suspensions",
        "DELETE FROM suspensions WHERE bucket = 0 AND user_id = ?",
    ),
    (
        "admins",
        "DELETE FROM admins WHERE bucket = 0 AND user_id = ?",
    ),
];

impl PrivacyStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<PrivacyStmts, String> {
        let p = |cql: String| prepare_statement(s, keyspace, cql);
        Ok(PrivacyStmts {
            put_export: p(format!("INSERT INTO exports ({EXPORT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            export: p(format!("SELECT {EXPORT_COLS} FROM exports WHERE id = ?")).await?,
            list_export: p("INSERT INTO exports_by_user (user_id, created_at, id) VALUES (?, ?, ?)".into()).await?,
            exports_of: p("SELECT id FROM exports_by_user WHERE user_id = ?".into()).await?,
            list_expiry: p("INSERT INTO exports_by_expiry (day, expires_at, id) VALUES (?, ?, ?)".into()).await?,
            unlist_expiry: p("DELETE FROM exports_by_expiry WHERE day = ? AND expires_at = ? AND id = ?".into()).await?,
            expiring: p("SELECT id FROM exports_by_expiry WHERE day = ? AND expires_at <= ? LIMIT ?".into()).await?,
            claim_running: p("INSERT INTO running_exports (user_id, export_id, heartbeat_at) VALUES (?, ?, ?) IF NOT EXISTS".into()).await?,
            running: p("SELECT export_id, heartbeat_at FROM running_exports WHERE user_id = ?".into()).await?,
            take_over_running: p("UPDATE running_exports SET export_id = ?, heartbeat_at = ? WHERE user_id = ? IF export_id = ? AND heartbeat_at = ?".into()).await?,
            beat_running: p("UPDATE running_exports SET heartbeat_at = ? WHERE user_id = ? IF export_id = ?".into()).await?,
            beat_export: p("UPDATE exports SET heartbeat_at = ? WHERE id = ?".into()).await?,
            release_running: p("DELETE FROM running_exports WHERE user_id = ? IF export_id = ?".into()).await?,
            record_sender: p("INSERT INTO sender_rooms (sender_id, room_id) VALUES (?, ?)".into()).await?,
            rooms_sent_in: p("SELECT room_id FROM sender_rooms WHERE sender_id = ?".into()).await?,
            index_like: p("INSERT INTO likes_by_user (user_id, post_id, created_at) VALUES (?, ?, ?)".into()).await?,
            unindex_like: p("DELETE FROM likes_by_user WHERE user_id = ? AND post_id = ?".into()).await?,
            likes_by: p("SELECT post_id, created_at FROM likes_by_user WHERE user_id = ? AND post_id > ? LIMIT ?".into()).await?,
            index_comment: p("INSERT INTO comments_by_author (author_id, id) VALUES (?, ?)".into()).await?,
            comments_by: p("SELECT id FROM comments_by_author WHERE author_id = ? AND id > ? LIMIT ?".into()).await?,
            index_identity: p("INSERT INTO identities_by_user (user_id, provider, subject) VALUES (?, ?, ?)".into()).await?,
            identities_of: p("SELECT provider, subject FROM identities_by_user WHERE user_id = ?".into()).await?,
            forget: {
                let mut out = Vec::with_capacity(FORGET_BY_USER.len());
                for (table, cql) in FORGET_BY_USER {
                    out.push((table, p(cql.into()).await?));
                }
                out
            },
            forget_identity: p("DELETE FROM user_identities WHERE provider = ? AND subject = ? IF user_id = ?".into()).await?,
            forget_prefix: p("DELETE FROM user_name_prefixes WHERE prefix = ? AND user_id = ?".into()).await?,
            forget_email: p("DELETE FROM users_by_email WHERE email = ? IF user_id = ?".into()).await?,
            forget_phone: p("DELETE FROM users_by_phone WHERE phone = ? IF user_id = ?".into()).await?,
            sessions_of: p("SELECT session_id FROM sessions_by_user WHERE user_id = ?".into()).await?,
            forget_session: p("DELETE FROM auth_sessions WHERE id = ?".into()).await?,
            exports_of_user: p("SELECT id FROM exports_by_user WHERE user_id = ?".into()).await?,
            forget_export: p("DELETE FROM exports WHERE id = ?".into()).await?,
            files_of: p("SELECT file_id FROM files_by_uploader WHERE uploader_id = ?".into()).await?,
            forget_file: p("DELETE FROM files WHERE id = ?".into()).await?,
        })
    }
}

/// Indexes what existing users wrote (the migration that added the indexes): the rooms each
/// sent messages in, their likes and their comments.
pub(super) async fn index_authors(session: &Session) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("indexing authors: {e}");
    let sender = session
        .prepare("INSERT INTO sender_rooms (sender_id, room_id) VALUES (?, ?)")
        .await
        .map_err(|e| err(&e))?;
    let like = session
        .prepare("INSERT INTO likes_by_user (user_id, post_id, created_at) VALUES (?, ?, ?)")
        .await
        .map_err(|e| err(&e))?;
    let comment = session
        .prepare("INSERT INTO comments_by_author (author_id, id) VALUES (?, ?)")
        .await
        .map_err(|e| err(&e))?;
    let mut seen: std::collections::HashSet<(String, String)> = Default::default();
    let mut messages = session
        .query_iter("SELECT room_id, sender_id FROM messages", &[])
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<(String, Option<String>)>()
        .map_err(|e| err(&e))?;
    while let Some(row) = messages.next().await {
        let (room, sender_id) = row.map_err(|e| err(&e))?;
        let Some(sender_id) = sender_id else { continue };
        if seen.insert((sender_id.clone(), room.clone())) {
            session
                .execute_unpaged(&sender, (&sender_id, &room))
                .await
                .map_err(|e| err(&e))?;
        }
    }
    let mut likes = session
        .query_iter("SELECT post_id, user_id, created_at FROM post_likes", &[])
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<(String, String, Option<i64>)>()
        .map_err(|e| err(&e))?;
    while let Some(row) = likes.next().await {
        let (post, user, at) = row.map_err(|e| err(&e))?;
        session
            .execute_unpaged(&like, (&user, &post, at.unwrap_or(0)))
            .await
            .map_err(|e| err(&e))?;
    }
    let identity = session
        .prepare("INSERT INTO identities_by_user (user_id, provider, subject) VALUES (?, ?, ?)")
        .await
        .map_err(|e| err(&e))?;
    let mut identities = session
        .query_iter(
            "SELECT provider, subject, user_id FROM user_identities",
            &[],
        )
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<(String, String, Option<String>)>()
        .map_err(|e| err(&e))?;
    while let Some(row) = identities.next().await {
        let (provider, subject, user) = row.map_err(|e| err(&e))?;
        if let Some(user) = user {
            session
                .execute_unpaged(&identity, (&user, &provider, &subject))
                .await
                .map_err(|e| err(&e))?;
        }
    }
    let mut comments = session
        .query_iter("SELECT id, author_id FROM post_comments", &[])
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<(String, Option<String>)>()
        .map_err(|e| err(&e))?;
    while let Some(row) = comments.next().await {
        let (id, author) = row.map_err(|e| err(&e))?;
        if let Some(author) = author {
            session
                .execute_unpaged(&comment, (&author, &id))
                .await
                .map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

impl ScyllaStore {
    async fn put_export_row(&self, e: &ExportRecord) -> StoreResult<()> {
        self.write(
            &self.st.privacy.put_export,
            (
                &e.id,
                &e.user_id,
                e.status.as_str(),
                e.created_at,
                e.heartbeat_at,
                e.finished_at,
                e.expires_at,
                &e.error,
                &e.object,
                &e.key_id,
                &e.wrapped_key,
                e.chunk_bytes as i32,
                e.size as i64,
                &e.sha256,
            ),
        )
        .await
    }

    /// Records the senders of a batch in `sender_rooms` (once per pair and process), before
    /// their messages count.
    pub(super) async fn record_senders<'a>(
        &self,
        room_id: &str,
        senders: impl IntoIterator<Item = &'a str>,
    ) -> StoreResult<()> {
        let unseen = self.seen_senders.unseen(room_id, senders);
        if unseen.is_empty() {
            return Ok(());
        }
        try_join_all(
            unseen
                .iter()
                .map(|s| self.write(&self.st.privacy.record_sender, (s, room_id))),
        )
        .await?;
        self.seen_senders.recorded(room_id, &unseen);
        Ok(())
    }
}

#[async_trait]
impl PrivacyStore for ScyllaStore {
    async fn begin_export(&self, e: &ExportRecord, stale_before: i64) -> StoreResult<ExportBegin> {
        let st = &self.st.privacy;
        for _ in 0..CLAIM_ATTEMPTS {
            let claimed = self
                .lwt(&st.claim_running, (&e.user_id, &e.id, e.heartbeat_at))
                .await?;
            if !claimed {
                let Some((running, beat)) = self
                    .row::<(String, i64)>(&st.running, (&e.user_id,))
                    .await?
                else {
                    continue; // released meanwhile: claim again
                };
                let current = self.export(&running).await?;
                if beat >= stale_before {
                    // Its record is written right after its claim: until then, as claimed.
                    let running_now = current.clone().unwrap_or_else(|| {
                        ExportRecord::pending(running.clone(), e.user_id.clone(), beat)
                    });
                    if running_now.status == ExportStatus::Pending {
                        return Ok(ExportBegin::Running(Box::new(running_now)));
                    }
                }
                let taken = self
                    .lwt(
                        &st.take_over_running,
                        (&e.id, e.heartbeat_at, &e.user_id, &running, beat),
                    )
                    .await?;
                if !taken {
                    continue;
                }
                if let Some(stuck) = current.filter(|c| c.status == ExportStatus::Pending) {
                    self.put_export_row(&ExportRecord {
                        status: ExportStatus::Failed,
                        finished_at: Some(e.created_at),
                        error: Some("stuck: its worker stopped".into()),
                        ..stuck
                    })
                    .await?;
                }
            }
            self.put_export_row(e).await?;
            self.write(&st.list_export, (&e.user_id, e.created_at, &e.id))
                .await?;
            return Ok(ExportBegin::Started);
        }
        Err(unavailable("the export claim stayed contended"))
    }

    async fn beat_export(&self, user_id: &str, id: &str, at: i64) -> StoreResult<bool> {
        let st = &self.st.privacy;
        let mine = self.lwt(&st.beat_running, (at, user_id, id)).await?;
        if mine {
            self.write(&st.beat_export, (at, id)).await?;
        }
        Ok(mine)
    }

    async fn end_export(&self, e: &ExportRecord) -> StoreResult<()> {
        let st = &self.st.privacy;
        let before = self.export(&e.id).await?;
        self.put_export_row(e).await?;
        // The expiry index follows the record: listed while ready, unlisted once expired.
        if let Some(at) = before.as_ref().and_then(|b| b.expires_at) {
            if e.status != ExportStatus::Ready || e.expires_at != Some(at) {
                self.write(&st.unlist_expiry, (day_of(at), at, &e.id))
                    .await?;
            }
        }
        if let (ExportStatus::Ready, Some(at)) = (e.status, e.expires_at) {
            self.write(&st.list_expiry, (day_of(at), at, &e.id)).await?;
        }
        if matches!(e.status, ExportStatus::Ready | ExportStatus::Failed) {
            self.lwt(&st.release_running, (&e.user_id, &e.id)).await?;
        }
        Ok(())
    }

    async fn export(&self, id: &str) -> StoreResult<Option<ExportRecord>> {
        Ok(self
            .row::<ExportRow>(&self.st.privacy.export, (id,))
            .await?
            .map(export_of))
    }

    async fn exports_of(&self, user_id: &str) -> StoreResult<Vec<ExportRecord>> {
        let ids = self
            .rows::<(String,)>(&self.st.privacy.exports_of, (user_id,))
            .await?;
        Ok(try_join_all(ids.iter().map(|(id,)| self.export(id)))
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn expired_exports(&self, now: i64, limit: usize) -> StoreResult<Vec<ExportRecord>> {
        let today = day_of(now);
        let mut out = Vec::new();
        for day in (today - EXPIRY_DAYS_BACK)..=today {
            if out.len() >= limit {
                break;
            }
            let page = (limit - out.len()).min(i32::MAX as usize) as i32;
            let ids = self
                .rows::<(String,)>(&self.st.privacy.expiring, (day, now, page))
                .await?;
            for (id,) in ids {
                if let Some(e) = self.export(&id).await? {
                    if e.status == ExportStatus::Ready {
                        out.push(e);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn rooms_sent_in(&self, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .rows::<(String,)>(&self.st.privacy.rooms_sent_in, (user_id,))
            .await?
            .into_iter()
            .map(|(r,)| r)
            .collect())
    }

    async fn likes_by(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, i64)>> {
        let page = limit.min(i32::MAX as usize) as i32;
        self.rows::<(String, i64)>(
            &self.st.privacy.likes_by,
            (user_id, after.unwrap_or(""), page),
        )
        .await
    }

    async fn forget_account(&self, user: &User) -> StoreResult<()> {
        let st = &self.st.privacy;
        let id = user.id.as_str();
        // What the account's partitions point at, read before they go.
        let identities = self
            .rows::<(String, String)>(&st.identities_of, (id,))
            .await?;
        for (provider, subject) in &identities {
            self.lwt(&st.forget_identity, (provider, subject, id))
                .await?;
        }
        for (session,) in self.rows::<(String,)>(&st.sessions_of, (id,)).await? {
            self.write(&st.forget_session, (&session,)).await?;
        }
        for (export,) in self.rows::<(String,)>(&st.exports_of_user, (id,)).await? {
            self.write(&st.forget_export, (&export,)).await?;
        }
        for (file,) in self.rows::<(String,)>(&st.files_of, (id,)).await? {
            self.write(&st.forget_file, (&file,)).await?;
        }
        for prefix in super::users::index_rows(user) {
            self.write(&st.forget_prefix, (&prefix, id)).await?;
        }
        if let Some(email) = &user.email {
            self.lwt(&st.forget_email, (email, id)).await?;
        }
        if let Some(phone) = &user.phone {
            self.lwt(&st.forget_phone, (phone, id)).await?;
        }
        // The account row last: until then a retry finds everything again.
        for (_, stmt) in st.forget.iter().rev() {
            self.write(stmt, (id,)).await?;
        }
        Ok(())
    }

    async fn comments_by(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>> {
        let mut out = Vec::new();
        let mut after = after.unwrap_or("").to_string();
        // Skips ids whose comment is gone (see `comments_by_author`), page after page.
        loop {
            let page = (limit - out.len()).min(i32::MAX as usize) as i32;
            let ids = self
                .rows::<(String,)>(&self.st.privacy.comments_by, (user_id, &after, page))
                .await?;
            let Some((last,)) = ids.last().cloned() else {
                return Ok(out);
            };
            let full = ids.len() == page as usize;
            let found = try_join_all(ids.iter().map(|(id,)| self.comment(id))).await?;
            out.extend(found.into_iter().flatten());
            if out.len() >= limit || !full {
                return Ok(out);
            }
            after = last;
        }
    }
}
