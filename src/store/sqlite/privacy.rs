//! Privacy records in the embedded store: consents with their whole history (`consents`, a
//! row per change).

use super::*;

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn add_consents(&self, user_id: &str, changes: &[ConsentRecord]) -> StoreResult<()> {
        let (user_id, changes) = (user_id.to_string(), changes.to_vec());
        self.write(move |c| {
            let mut st = db(c.prepare_cached(
                "INSERT INTO consents (user_id, at, kind, granted) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id, at, kind) DO UPDATE SET granted = excluded.granted",
            ))?;
            for ch in &changes {
                db(st.execute(params![user_id, ch.at, ch.kind, ch.granted]))?;
            }
            Ok(())
        })
        .await
    }

    async fn consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT kind, granted, at FROM consents WHERE user_id = ?1 ORDER BY at, kind",
            ))?;
            let rows = db(st.query_map([&user_id], |r| {
                Ok(ConsentRecord {
                    kind: r.get(0)?,
                    granted: r.get(1)?,
                    at: r.get(2)?,
                })
            }))?;
            rows.map(db).collect()
        })
        .await
    }
}

const EXPORT_COLS: &str =
    "id, user_id, status, created_at, heartbeat_at, finished_at, expires_at, \
                           error, object, key_id, wrapped_key, chunk_bytes, size, sha256";

fn export_row(r: &Row) -> rusqlite::Result<ExportRecord> {
    let status: String = r.get(2)?;
    let chunk_bytes: i64 = r.get(11)?;
    let size: i64 = r.get(12)?;
    Ok(ExportRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        status: ExportStatus::parse(&status),
        created_at: r.get(3)?,
        heartbeat_at: r.get(4)?,
        finished_at: r.get(5)?,
        expires_at: r.get(6)?,
        error: r.get(7)?,
        object: r.get(8)?,
        key_id: r.get(9)?,
        wrapped_key: r.get(10)?,
        chunk_bytes: chunk_bytes.max(0) as u32,
        size: size.max(0) as u64,
        sha256: r.get(13)?,
    })
}

fn export_by_id(c: &Connection, id: &str) -> StoreResult<Option<ExportRecord>> {
    let mut st = db(c.prepare_cached(&format!("SELECT {EXPORT_COLS} FROM exports WHERE id = ?1")))?;
    db(st.query_row([id], export_row).optional())
}

/// Writes every column of `e` (insert or replace).
fn put_export(c: &Connection, e: &ExportRecord) -> StoreResult<()> {
    exec_cached(
        c,
        &format!(
            "INSERT OR REPLACE INTO exports ({EXPORT_COLS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ),
        params![
            e.id,
            e.user_id,
            e.status.as_str(),
            e.created_at,
            e.heartbeat_at,
            e.finished_at,
            e.expires_at,
            e.error,
            e.object,
            e.key_id,
            e.wrapped_key,
            e.chunk_bytes as i64,
            e.size as i64,
            e.sha256
        ],
    )?;
    Ok(())
}

#[async_trait]
impl PrivacyStore for SqliteStore {
    async fn begin_export(&self, e: &ExportRecord, stale_before: i64) -> StoreResult<ExportBegin> {
        let e = e.clone();
        self.write(move |c| {
            let running: Option<(String, i64)> = db(c
                .query_row(
                    "SELECT export_id, heartbeat_at FROM running_exports WHERE user_id = ?1",
                    [&e.user_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional())?;
            if let Some((id, beat)) = running {
                let current = export_by_id(c, &id)?;
                if let Some(current) = current.filter(|x| x.status == ExportStatus::Pending) {
                    if beat >= stale_before {
                        return Ok(ExportBegin::Running(Box::new(current)));
                    }
                    put_export(
                        c,
                        &ExportRecord {
                            status: ExportStatus::Failed,
                            finished_at: Some(e.created_at),
                            error: Some("stuck: its worker stopped".into()),
                            ..current
                        },
                    )?;
                }
            }
            put_export(c, &e)?;
            exec_cached(
                c,
                "INSERT OR REPLACE INTO running_exports (user_id, export_id, heartbeat_at) VALUES (?1, ?2, ?3)",
                params![e.user_id, e.id, e.heartbeat_at],
            )?;
            Ok(ExportBegin::Started)
        })
        .await
    }

    async fn beat_export(&self, user_id: &str, id: &str, at: i64) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |c| {
            let mine = exec_cached(
                c,
                "UPDATE running_exports SET heartbeat_at = ?3 WHERE user_id = ?1 AND export_id = ?2",
                params![user_id, id, at],
            )? > 0;
            if mine {
                exec_cached(
                    c,
                    "UPDATE exports SET heartbeat_at = ?2 WHERE id = ?1",
                    params![id, at],
                )?;
            }
            Ok(mine)
        })
        .await
    }

    async fn end_export(&self, e: &ExportRecord) -> StoreResult<()> {
        let e = e.clone();
        self.write(move |c| {
            put_export(c, &e)?;
            exec_cached(
                c,
                "DELETE FROM running_exports WHERE user_id = ?1 AND export_id = ?2",
                params![e.user_id, e.id],
            )?;
            Ok(())
        })
        .await
    }

    async fn export(&self, id: &str) -> StoreResult<Option<ExportRecord>> {
        let id = id.to_string();
        self.read(move |c| export_by_id(c, &id)).await
    }

    async fn exports_of(&self, user_id: &str) -> StoreResult<Vec<ExportRecord>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {EXPORT_COLS} FROM exports WHERE user_id = ?1 ORDER BY created_at DESC, id DESC"
            )))?;
            let rows = db(st.query_map([&user_id], export_row))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn expired_exports(&self, now: i64, limit: usize) -> StoreResult<Vec<ExportRecord>> {
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {EXPORT_COLS} FROM exports WHERE status = 'ready' AND expires_at <= ?1 \
                 ORDER BY expires_at LIMIT ?2"
            )))?;
            let rows = db(st.query_map(params![now, limit as i64], export_row))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn rooms_sent_in(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT room_id FROM sender_rooms WHERE sender_id = ?1 ORDER BY room_id",
            ))?;
            let rows = db(st.query_map([&user_id], |r| r.get(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn likes_by(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, i64)>> {
        let (user_id, after) = (user_id.to_string(), after.unwrap_or("").to_string());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT post_id, created_at FROM post_likes WHERE user_id = ?1 AND post_id > ?2 \
                 ORDER BY post_id LIMIT ?3",
            ))?;
            let rows = db(st.query_map(params![user_id, after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            }))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn forget_account(&self, user: &User) -> StoreResult<()> {
        let id = user.id.clone();
        self.write(move |c| {
            // Rows that name the account without a foreign key to it (those with one go with
            // the account row: sessions and their refresh tokens, name prefixes, identities,
            // contacts and blocks both ways, push subscriptions and tokens, notification
            // settings, saved commands, consents, reminders, the suspension).
            for sql in [
                "DELETE FROM activities WHERE user_id = ?1 OR actor_id = ?1",
                "DELETE FROM follows WHERE follower_id = ?1 OR followee_id = ?1",
                "DELETE FROM post_likes WHERE user_id = ?1",
                "DELETE FROM exports WHERE user_id = ?1",
                "DELETE FROM running_exports WHERE user_id = ?1",
                "DELETE FROM sender_rooms WHERE sender_id = ?1",
                "DELETE FROM location_history WHERE user_id = ?1",
                "DELETE FROM file_hashtags WHERE file_id IN (SELECT id FROM files WHERE uploader_id = ?1)",
                "DELETE FROM file_shares WHERE file_id IN (SELECT id FROM files WHERE uploader_id = ?1)",
                "DELETE FROM files WHERE uploader_id = ?1",
                "DELETE FROM users WHERE id = ?1",
            ] {
                exec_cached(c, sql, [&id])?;
            }
            Ok(())
        })
        .await
    }

    async fn comments_by(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>> {
        let (user_id, after) = (user_id.to_string(), after.unwrap_or("").to_string());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {} FROM post_comments WHERE author_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                super::social::COMMENT_COLS
            )))?;
            let rows = db(st.query_map(
                params![user_id, after, limit as i64],
                super::social::comment,
            ))?;
            rows.map(db).collect()
        })
        .await
    }
}
