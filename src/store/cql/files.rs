//! Files in the cluster store: `files` (one row a file, its wrapped key and what the preview
//! jobs learnt), the listing indexes `files_by_uploader`, `files_by_room`, `files_by_hashtag`
//! (newest first: file ids are time-ordered), `file_shares` (what grants room members access),
//! `files_pending_previews`, the `file_usage` counters of the storage quota, `link_previews` and
//! `secrets` (claimed with an LWT, so every node agrees on a generated secret).

use scylla::value::Counter;

use super::*;

/// Above every file id (UUIDv7 text): the cursor of a first page.
const TOP: &str = "~";
/// Rounds of candidate reads one listing makes at most before answering what it has.
const LIST_ROUNDS: usize = 16;

const FILE_COLS: &str = "id, uploader_id, filename, content_type, kind, size, sha256, object, \
     key_id, wrapped_key, chunk_bytes, hashtags, room_id, public, meta, preview_state, \
     created_at, deleted_at, transcript";

pub(super) struct FileStmts {
    insert: PreparedStatement,
    by_id: PreparedStatement,
    set_meta: PreparedStatement,
    set_transcript: PreparedStatement,
    set_hashtags: PreparedStatement,
    mark_deleted: PreparedStatement,
    insert_by_uploader: PreparedStatement,
    delete_by_uploader: PreparedStatement,
    insert_by_room: PreparedStatement,
    delete_by_room: PreparedStatement,
    insert_share: PreparedStatement,
    shares_of: PreparedStatement,
    insert_by_tag: PreparedStatement,
    delete_by_tag: PreparedStatement,
    page_by_uploader: PreparedStatement,
    page_by_room: PreparedStatement,
    page_by_tag: PreparedStatement,
    insert_pending: PreparedStatement,
    delete_pending: PreparedStatement,
    pending: PreparedStatement,
    usage_add: PreparedStatement,
    usage_of: PreparedStatement,
    link_preview: PreparedStatement,
    put_link_preview: PreparedStatement,
    claim_secret: PreparedStatement,
    secret: PreparedStatement,
}

impl FileStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<FileStmts, String> {
        let p = |cql: String| prepare_statement(s, keyspace, cql);
        Ok(FileStmts {
            insert: p(format!("INSERT INTO files ({FILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            by_id: p(format!("SELECT {FILE_COLS} FROM files WHERE id = ?")).await?,
            set_meta: p("UPDATE files SET meta = ?, preview_state = 'done' WHERE id = ?".into()).await?,
            set_transcript: p("UPDATE files SET transcript = ? WHERE id = ?".into()).await?,
            set_hashtags: p("UPDATE files SET hashtags = ? WHERE id = ?".into()).await?,
            mark_deleted: p("UPDATE files SET deleted_at = ? WHERE id = ? IF deleted_at = null".into()).await?,
            insert_by_uploader: p("INSERT INTO files_by_uploader (uploader_id, file_id) VALUES (?, ?)".into()).await?,
            delete_by_uploader: p("DELETE FROM files_by_uploader WHERE uploader_id = ? AND file_id = ?".into()).await?,
            insert_by_room: p("INSERT INTO files_by_room (room_id, file_id, message_id) VALUES (?, ?, ?)".into()).await?,
            delete_by_room: p("DELETE FROM files_by_room WHERE room_id = ? AND file_id = ?".into()).await?,
            insert_share: p("INSERT INTO file_shares (file_id, room_id, message_id) VALUES (?, ?, ?)".into()).await?,
            shares_of: p("SELECT room_id, message_id FROM file_shares WHERE file_id = ?".into()).await?,
            insert_by_tag: p("INSERT INTO files_by_hashtag (tag, file_id) VALUES (?, ?)".into()).await?,
            delete_by_tag: p("DELETE FROM files_by_hashtag WHERE tag = ? AND file_id = ?".into()).await?,
            page_by_uploader: p("SELECT file_id FROM files_by_uploader WHERE uploader_id = ? AND file_id < ? LIMIT ?".into()).await?,
            page_by_room: p("SELECT file_id FROM files_by_room WHERE room_id = ? AND file_id < ? LIMIT ?".into()).await?,
            page_by_tag: p("SELECT file_id FROM files_by_hashtag WHERE tag = ? AND file_id < ? LIMIT ?".into()).await?,
            insert_pending: p("INSERT INTO files_pending_previews (shard, file_id) VALUES (0, ?)".into()).await?,
            delete_pending: p("DELETE FROM files_pending_previews WHERE shard = 0 AND file_id = ?".into()).await?,
            pending: p("SELECT file_id FROM files_pending_previews WHERE shard = 0 LIMIT ?".into()).await?,
            usage_add: p("UPDATE file_usage SET bytes = bytes + ? WHERE user_id = ?".into()).await?,
            usage_of: p("SELECT bytes FROM file_usage WHERE user_id = ?".into()).await?,
            link_preview: p("SELECT url, preview, fetched_at FROM link_previews WHERE url = ?".into()).await?,
            put_link_preview: p("INSERT INTO link_previews (url, preview, fetched_at) VALUES (?, ?, ?)".into()).await?,
            claim_secret: p("INSERT INTO secrets (name, value) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            secret: p("SELECT value FROM secrets WHERE name = ?".into()).await?,
        })
    }
}

#[derive(scylla::DeserializeRow, scylla::SerializeRow)]
struct FileRow {
    id: String,
    uploader_id: String,
    filename: String,
    content_type: String,
    kind: String,
    size: i64,
    sha256: String,
    object: String,
    key_id: String,
    wrapped_key: String,
    chunk_bytes: i32,
    hashtags: Option<Vec<String>>,
    room_id: Option<String>,
    public: Option<bool>,
    meta: Option<String>,
    preview_state: Option<String>,
    created_at: i64,
    deleted_at: Option<i64>,
    transcript: Option<String>,
}

impl FileRow {
    fn of(f: &FileRecord) -> FileRow {
        FileRow {
            id: f.id.clone(),
            uploader_id: f.uploader_id.clone(),
            filename: f.filename.clone(),
            content_type: f.content_type.clone(),
            kind: f.kind.as_str().into(),
            size: f.size as i64,
            sha256: f.sha256.clone(),
            object: f.object.clone(),
            key_id: f.key_id.clone(),
            wrapped_key: f.wrapped_key.clone(),
            chunk_bytes: f.chunk_bytes as i32,
            hashtags: Some(f.hashtags.clone()),
            room_id: f.room_id.clone(),
            public: Some(f.public),
            meta: serde_json::to_string(&f.meta).ok(),
            preview_state: Some(f.preview_state.as_str().into()),
            created_at: f.created_at,
            deleted_at: f.deleted_at,
            transcript: f
                .transcript
                .as_ref()
                .and_then(|t| serde_json::to_string(t).ok()),
        }
    }

    fn record(self) -> FileRecord {
        FileRecord {
            id: self.id,
            uploader_id: self.uploader_id,
            filename: self.filename,
            content_type: self.content_type,
            kind: FileKind::parse(&self.kind).unwrap_or(FileKind::Document),
            size: self.size.max(0) as u64,
            sha256: self.sha256,
            object: self.object,
            key_id: self.key_id,
            wrapped_key: self.wrapped_key,
            chunk_bytes: self.chunk_bytes.max(0) as u32,
            hashtags: self.hashtags.unwrap_or_default(),
            room_id: self.room_id,
            public: self.public.unwrap_or(false),
            meta: self
                .meta
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
            preview_state: PreviewState::parse(self.preview_state.as_deref().unwrap_or("")),
            created_at: self.created_at,
            deleted_at: self.deleted_at,
            transcript: self.transcript.and_then(|t| serde_json::from_str(&t).ok()),
        }
    }
}

impl ScyllaStore {
    async fn ids_page(
        &self,
        st: &PreparedStatement,
        key: &str,
        before: &str,
        n: usize,
    ) -> StoreResult<Vec<String>> {
        Ok(self
            .rows::<(String,)>(st, (key, before, n as i32))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect())
    }

    /// Whether `f` is readable through the query: the caller's own upload (outside a room
    /// filter), or shared in one of the query's rooms.
    async fn listable(&self, f: &FileRecord, q: &FileQuery) -> StoreResult<bool> {
        if f.deleted_at.is_some() || q.kind.is_some_and(|k| k != f.kind) {
            return Ok(false);
        }
        if let Some(tag) = &q.hashtag {
            if !f.hashtags.contains(tag) {
                return Ok(false);
            }
        }
        if q.room_id.is_none() && f.uploader_id == q.user_id {
            return Ok(true);
        }
        let shares = self.file_shares(&f.id).await?;
        Ok(shares.iter().any(|(room, _)| {
            q.rooms.contains(room) && q.room_id.as_ref().is_none_or(|r| r == room)
        }))
    }
}

#[async_trait]
impl FileStore for ScyllaStore {
    async fn insert_file(&self, f: &FileRecord) -> StoreResult<()> {
        let st = &self.st.files;
        self.write(&st.insert, FileRow::of(f)).await?;
        self.write(&st.insert_by_uploader, (&f.uploader_id, &f.id))
            .await?;
        for tag in &f.hashtags {
            self.write(&st.insert_by_tag, (tag, &f.id)).await?;
        }
        if let Some(room) = &f.room_id {
            self.share_file(&f.id, room, "").await?;
        }
        if f.preview_state == PreviewState::Pending {
            self.write(&st.insert_pending, (&f.id,)).await?;
        }
        self.write(&st.usage_add, (Counter(f.size as i64), &f.uploader_id))
            .await
    }

    async fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        Ok(self
            .row::<FileRow>(&self.st.files.by_id, (id,))
            .await?
            .map(FileRow::record))
    }

    async fn set_file_meta(&self, id: &str, meta: &FileMeta) -> StoreResult<()> {
        let json = serde_json::to_string(meta).unwrap_or_else(|_| "{}".into());
        self.write(&self.st.files.set_meta, (json, id)).await?;
        self.write(&self.st.files.delete_pending, (id,)).await
    }

    async fn set_file_transcript(&self, id: &str, t: &Transcript) -> StoreResult<()> {
        let json = serde_json::to_string(t).unwrap_or_else(|_| "null".into());
        self.write(&self.st.files.set_transcript, (json, id)).await
    }

    async fn add_file_hashtags(&self, id: &str, tags: &[String]) -> StoreResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let f = self.file(id).await?.ok_or_else(|| not_found("file"))?;
        let mut all = f.hashtags;
        for t in tags {
            if !all.contains(t) {
                self.write(&self.st.files.insert_by_tag, (t, id)).await?;
                all.push(t.clone());
            }
        }
        self.write(&self.st.files.set_hashtags, (all, id)).await
    }

    async fn delete_file(&self, id: &str, at: i64) -> StoreResult<Option<FileRecord>> {
        let Some(f) = self.file(id).await?.filter(|f| f.deleted_at.is_none()) else {
            return Ok(None);
        };
        // The compare-and-set decides the one delete that counts (and gives the bytes back).
        if !self.lwt(&self.st.files.mark_deleted, (at, id)).await? {
            return Ok(None);
        }
        let st = &self.st.files;
        self.write(&st.usage_add, (Counter(-(f.size as i64)), &f.uploader_id))
            .await?;
        self.write(&st.delete_by_uploader, (&f.uploader_id, id))
            .await?;
        for tag in &f.hashtags {
            self.write(&st.delete_by_tag, (tag, id)).await?;
        }
        for (room, _) in self.file_shares(id).await? {
            self.write(&st.delete_by_room, (room, id)).await?;
        }
        self.write(&st.delete_pending, (id,)).await?;
        Ok(Some(f))
    }

    async fn share_file(&self, id: &str, room_id: &str, message_id: &str) -> StoreResult<()> {
        let st = &self.st.files;
        self.write(&st.insert_share, (id, room_id, message_id))
            .await?;
        self.write(&st.insert_by_room, (room_id, id, message_id))
            .await
    }

    async fn file_shares(&self, id: &str) -> StoreResult<Vec<(String, String)>> {
        self.rows::<(String, String)>(&self.st.files.shares_of, (id,))
            .await
    }

    async fn list_files(&self, q: &FileQuery) -> StoreResult<Vec<FileRecord>> {
        let st = &self.st.files;
        // The candidate streams, each newest first: the hashtag's index, or the room's, or the
        // caller's uploads and every room of theirs — merged by id.
        let sources: Vec<(&PreparedStatement, String)> = if let Some(tag) = &q.hashtag {
            vec![(&st.page_by_tag, tag.clone())]
        } else if let Some(room) = &q.room_id {
            if !q.rooms.contains(room) {
                return Ok(Vec::new());
            }
            vec![(&st.page_by_room, room.clone())]
        } else {
            std::iter::once((&st.page_by_uploader, q.user_id.clone()))
                .chain(q.rooms.iter().map(|r| (&st.page_by_room, r.clone())))
                .collect()
        };
        let mut before = q.before.clone().unwrap_or_else(|| TOP.into());
        let ask = q.limit * 2 + 16;
        let mut out: Vec<FileRecord> = Vec::new();
        for _ in 0..LIST_ROUNDS {
            let pages = try_join_all(
                sources
                    .iter()
                    .map(|(st, key)| self.ids_page(st, key, &before, ask)),
            )
            .await?;
            // Below the lowest id a full page reached, a source may hold ids not read yet:
            // only ids above every such edge are complete this round.
            let edge = pages
                .iter()
                .filter(|p| p.len() == ask)
                .filter_map(|p| p.last().cloned())
                .max();
            let mut ids: Vec<String> = pages.into_iter().flatten().collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids.dedup();
            if let Some(edge) = &edge {
                ids.retain(|id| id >= edge);
            }
            for id in &ids {
                if let Some(f) = self.file(id).await? {
                    if self.listable(&f, q).await? {
                        out.push(f);
                        if out.len() >= q.limit {
                            return Ok(out);
                        }
                    }
                }
            }
            match (edge, ids.last()) {
                (Some(_), Some(last)) => before = last.clone(),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn storage_used(&self, user_id: &str) -> StoreResult<u64> {
        Ok(self
            .row::<(Option<Counter>,)>(&self.st.files.usage_of, (user_id,))
            .await?
            .and_then(|(n,)| n)
            .map_or(0, |c| c.0)
            .max(0) as u64)
    }

    async fn pending_previews(&self, limit: usize) -> StoreResult<Vec<FileRecord>> {
        let ids = self
            .rows::<(String,)>(&self.st.files.pending, (limit as i32,))
            .await?;
        let mut out = Vec::new();
        for (id,) in ids {
            match self.file(&id).await? {
                Some(f) if f.deleted_at.is_none() && f.preview_state == PreviewState::Pending => {
                    out.push(f)
                }
                _ => self.write(&self.st.files.delete_pending, (&id,)).await?,
            }
        }
        Ok(out)
    }

    async fn link_preview(&self, url: &str) -> StoreResult<Option<LinkPreviewRecord>> {
        Ok(self
            .row::<(String, Option<String>, Option<i64>)>(&self.st.files.link_preview, (url,))
            .await?
            .map(|(url, preview, at)| LinkPreviewRecord {
                url,
                preview: preview
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or(serde_json::Value::Null),
                fetched_at: at.unwrap_or(0),
            }))
    }

    async fn put_link_preview(&self, p: &LinkPreviewRecord) -> StoreResult<()> {
        self.write(
            &self.st.files.put_link_preview,
            (&p.url, p.preview.to_string(), p.fetched_at),
        )
        .await
    }

    async fn secret_or_insert(&self, name: &str, candidate: &str) -> StoreResult<String> {
        if let Some((v,)) = self
            .row::<(String,)>(&self.st.files.secret, (name,))
            .await?
        {
            return Ok(v);
        }
        if self
            .lwt(&self.st.files.claim_secret, (name, candidate))
            .await?
        {
            return Ok(candidate.to_string());
        }
        self.row::<(String,)>(&self.st.files.secret, (name,))
            .await?
            .map(|(v,)| v)
            .ok_or_else(|| unavailable("a secret claim answered no value"))
    }
}
