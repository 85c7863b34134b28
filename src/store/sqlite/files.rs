//! Files in the embedded store: `files` (one row a file, its wrapped key and what the preview
//! jobs learnt), `file_shares` (the rooms a file was shared in: what grants members access),
//! `file_hashtags`, `link_previews` and `secrets`.

use super::*;

const FILE_COLUMNS: &str = "id, uploader_id, filename, content_type, kind, size, sha256, object, \
     key_id, wrapped_key, chunk_bytes, hashtags, room_id, public, meta, preview_state, \
     created_at, deleted_at, transcript";

fn file_from_row(r: &Row) -> rusqlite::Result<FileRecord> {
    let kind: String = r.get(4)?;
    let hashtags: String = r.get(11)?;
    let meta: String = r.get(14)?;
    let state: String = r.get(15)?;
    Ok(FileRecord {
        id: r.get(0)?,
        uploader_id: r.get(1)?,
        filename: r.get(2)?,
        content_type: r.get(3)?,
        kind: FileKind::parse(&kind).unwrap_or(FileKind::Document),
        size: r.get::<_, i64>(5)?.max(0) as u64,
        sha256: r.get(6)?,
        object: r.get(7)?,
        key_id: r.get(8)?,
        wrapped_key: r.get(9)?,
        chunk_bytes: r.get::<_, i64>(10)?.max(0) as u32,
        hashtags: serde_json::from_str(&hashtags).unwrap_or_default(),
        room_id: r.get(12)?,
        public: r.get::<_, i64>(13)? != 0,
        meta: serde_json::from_str(&meta).unwrap_or_default(),
        preview_state: PreviewState::parse(&state),
        created_at: r.get(16)?,
        deleted_at: r.get(17)?,
        transcript: r
            .get::<_, Option<String>>(18)?
            .and_then(|t| serde_json::from_str(&t).ok()),
    })
}

fn file_by_id(c: &Connection, id: &str) -> StoreResult<Option<FileRecord>> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1");
    db(c.query_row(&sql, [id], file_from_row).optional())
}

fn query_files(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> StoreResult<Vec<FileRecord>> {
    let mut st = db(c.prepare(sql))?;
    let rows = db(st.query_map(p, file_from_row))?;
    rows.map(db).collect()
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

#[async_trait]
impl FileStore for SqliteStore {
    async fn insert_file(&self, f: &FileRecord) -> StoreResult<()> {
        let f = f.clone();
        self.write(move |c| {
            db(c.execute(
                &format!(
                    "INSERT INTO files ({FILE_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
                ),
                params![
                    f.id,
                    f.uploader_id,
                    f.filename,
                    f.content_type,
                    f.kind.as_str(),
                    f.size as i64,
                    f.sha256,
                    f.object,
                    f.key_id,
                    f.wrapped_key,
                    f.chunk_bytes as i64,
                    tags_json(&f.hashtags),
                    f.room_id,
                    f.public as i64,
                    serde_json::to_string(&f.meta).unwrap_or_else(|_| "{}".into()),
                    f.preview_state.as_str(),
                    f.created_at,
                    f.deleted_at,
                    f.transcript.as_ref().and_then(|t| serde_json::to_string(t).ok()),
                ],
            ))?;
            for tag in &f.hashtags {
                exec_cached(
                    c,
                    "INSERT OR IGNORE INTO file_hashtags (tag, file_id) VALUES (?1, ?2)",
                    params![tag, f.id],
                )?;
            }
            if let Some(room) = &f.room_id {
                exec_cached(
                    c,
                    "INSERT OR IGNORE INTO file_shares (file_id, room_id, message_id) VALUES (?1, ?2, '')",
                    params![f.id, room],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn file(&self, id: &str) -> StoreResult<Option<FileRecord>> {
        let id = id.to_string();
        self.read(move |c| file_by_id(c, &id)).await
    }

    async fn set_file_meta(&self, id: &str, meta: &FileMeta) -> StoreResult<()> {
        let (id, meta) = (
            id.to_string(),
            serde_json::to_string(meta).unwrap_or_else(|_| "{}".into()),
        );
        self.write(move |c| {
            db(c.execute(
                "UPDATE files SET meta = ?2, preview_state = 'done' WHERE id = ?1",
                params![id, meta],
            ))?;
            Ok(())
        })
        .await
    }

    async fn set_file_transcript(&self, id: &str, t: &Transcript) -> StoreResult<()> {
        let (id, t) = (
            id.to_string(),
            serde_json::to_string(t).unwrap_or_else(|_| "null".into()),
        );
        self.write(move |c| {
            db(c.execute(
                "UPDATE files SET transcript = ?2 WHERE id = ?1",
                params![id, t],
            ))?;
            Ok(())
        })
        .await
    }

    async fn add_file_hashtags(&self, id: &str, tags: &[String]) -> StoreResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let (id, tags) = (id.to_string(), tags.to_vec());
        self.write(move |c| {
            let Some(f) = file_by_id(c, &id)? else {
                return Err(not_found("file"));
            };
            let mut all = f.hashtags;
            for t in tags {
                if !all.contains(&t) {
                    exec_cached(
                        c,
                        "INSERT OR IGNORE INTO file_hashtags (tag, file_id) VALUES (?1, ?2)",
                        params![t, id],
                    )?;
                    all.push(t);
                }
            }
            exec_cached(
                c,
                "UPDATE files SET hashtags = ?2 WHERE id = ?1",
                params![id, tags_json(&all)],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_file(&self, id: &str, at: i64) -> StoreResult<Option<FileRecord>> {
        let id = id.to_string();
        self.write(move |c| {
            let Some(f) = file_by_id(c, &id)?.filter(|f| f.deleted_at.is_none()) else {
                return Ok(None);
            };
            db(c.execute(
                "UPDATE files SET deleted_at = ?2 WHERE id = ?1",
                params![id, at],
            ))?;
            db(c.execute("DELETE FROM file_hashtags WHERE file_id = ?1", [&id]))?;
            Ok(Some(f))
        })
        .await
    }

    async fn share_file(&self, id: &str, room_id: &str, message_id: &str) -> StoreResult<()> {
        let (id, room_id, message_id) =
            (id.to_string(), room_id.to_string(), message_id.to_string());
        self.write(move |c| {
            exec_cached(
                c,
                "INSERT OR IGNORE INTO file_shares (file_id, room_id, message_id) VALUES (?1, ?2, ?3)",
                params![id, room_id, message_id],
            )?;
            Ok(())
        })
        .await
    }

    async fn file_shares(&self, id: &str) -> StoreResult<Vec<(String, String)>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT room_id, message_id FROM file_shares WHERE file_id = ?1 ORDER BY room_id, message_id",
            ))?;
            let rows = db(st.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?))))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn list_files(&self, q: &FileQuery) -> StoreResult<Vec<FileRecord>> {
        let q = q.clone();
        self.read(move |c| {
            let rooms: Vec<&String> = match &q.room_id {
                Some(r) => q.rooms.iter().filter(|x| *x == r).collect(),
                None => q.rooms.iter().collect(),
            };
            let room_list = serde_json::to_string(&rooms).unwrap_or_else(|_| "[]".into());
            // Readable: uploaded by the caller, or shared in one of the caller's rooms (within
            // `room_id`, only the latter).
            let cols = FILE_COLUMNS
                .split(", ")
                .map(|col| format!("f.{}", col.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {cols} FROM files f WHERE f.deleted_at IS NULL \
                 AND ((?2 IS NULL AND f.uploader_id = ?1) OR EXISTS (SELECT 1 FROM file_shares s \
                      WHERE s.file_id = f.id AND s.room_id IN (SELECT value FROM json_each(?3)))) \
                 AND (?4 IS NULL OR EXISTS (SELECT 1 FROM file_hashtags h WHERE h.file_id = f.id AND h.tag = ?4)) \
                 AND (?5 IS NULL OR f.kind = ?5) \
                 AND (?6 IS NULL OR f.id < ?6) \
                 ORDER BY f.id DESC LIMIT ?7"
            );
            query_files(
                c,
                &sql,
                params![
                    q.user_id,
                    q.room_id,
                    room_list,
                    q.hashtag,
                    q.kind.map(FileKind::as_str),
                    q.before,
                    q.limit as i64
                ],
            )
        })
        .await
    }

    async fn storage_used(&self, user_id: &str) -> StoreResult<u64> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let n: i64 = db(c.query_row(
                "SELECT COALESCE(SUM(size), 0) FROM files WHERE uploader_id = ?1 AND deleted_at IS NULL",
                [&user_id],
                |r| r.get(0),
            ))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn pending_previews(&self, limit: usize) -> StoreResult<Vec<FileRecord>> {
        self.read(move |c| {
            let sql = format!(
                "SELECT {FILE_COLUMNS} FROM files WHERE preview_state = 'pending' AND deleted_at IS NULL \
                 ORDER BY created_at LIMIT ?1"
            );
            query_files(c, &sql, [limit as i64])
        })
        .await
    }

    async fn link_preview(&self, url: &str) -> StoreResult<Option<LinkPreviewRecord>> {
        let url = url.to_string();
        self.read(move |c| {
            db(c.query_row(
                "SELECT url, preview, fetched_at FROM link_previews WHERE url = ?1",
                [&url],
                |r| {
                    let preview: String = r.get(1)?;
                    Ok(LinkPreviewRecord {
                        url: r.get(0)?,
                        preview: serde_json::from_str(&preview).unwrap_or(serde_json::Value::Null),
                        fetched_at: r.get(2)?,
                    })
                },
            )
            .optional())
        })
        .await
    }

    async fn put_link_preview(&self, p: &LinkPreviewRecord) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO link_previews (url, preview, fetched_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (url) DO UPDATE SET preview = excluded.preview, fetched_at = excluded.fetched_at",
                params![p.url, p.preview.to_string(), p.fetched_at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn secret_or_insert(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let (name, candidate) = (name.to_string(), candidate.to_string());
        self.write(move |c| {
            exec_cached(
                c,
                "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
                params![name, candidate],
            )?;
            db(
                c.query_row("SELECT value FROM secrets WHERE name = ?1", [&name], |r| {
                    r.get(0)
                }),
            )
        })
        .await
    }
}
