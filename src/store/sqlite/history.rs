//! Reading history and searching in the embedded store: `messages`, the FTS5 index and
//! `message_hashtags`.

use super::*;

#[async_trait]
impl History for SqliteStore {
    async fn history(
        &self,
        room_id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            let take = limit as i64 + 1;
            let lo = after.unwrap_or(0) as i64;
            let hi = before.map_or(i64::MAX, |b| b as i64);
            let (sql, ascending) = if after.is_some() {
                (format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq ASC LIMIT ?4"), true)
            } else {
                (format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"), false)
            };
            let mut messages = query_messages(c, &sql, params![room_id, lo, hi, take])?;
            let has_more = messages.len() > limit;
            messages.truncate(limit);
            if !ascending {
                messages.reverse();
            }
            Ok(Page { messages, has_more })
        })
        .await
    }

    async fn search(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let Some(q) = fts_query(query) else {
            return Ok(Vec::new());
        };
        // Everything sent before this search is searchable: bring the index up to date first.
        self.write(|c| {
            while index_pending(c, INDEX_BATCH)? as i64 >= INDEX_BATCH {}
            Ok(())
        })
        .await?;
        let (user_id, room_id) = (user_id.to_string(), room_id.map(str::to_string));
        self.read(move |c| {
            let cols = MESSAGE_COLUMNS
                .split(", ")
                .map(|col| format!("m.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {cols} FROM messages_fts f JOIN messages m ON m.rowid = f.rowid \
                 JOIN chat_participants p ON p.room_id = m.room_id AND p.user_id = ?1 \
                 WHERE messages_fts MATCH ?2 AND m.deleted = 0 AND (?3 IS NULL OR m.room_id = ?3) \
                 ORDER BY m.created_at DESC, m.seq DESC LIMIT ?4"
            );
            query_messages(c, &sql, params![user_id, q, room_id, limit as i64])
        })
        .await
    }

    async fn by_hashtag(
        &self,
        user_id: &str,
        tag: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let (user_id, tag) = (
            user_id.to_string(),
            tag.trim_start_matches('#').to_lowercase(),
        );
        self.read(move |c| {
            let cols = MESSAGE_COLUMNS
                .split(", ")
                .map(|col| format!("m.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {cols} FROM message_hashtags h JOIN messages m ON m.id = h.message_id \
                 JOIN chat_participants p ON p.room_id = h.room_id AND p.user_id = ?1 \
                 WHERE h.tag = ?2 AND m.deleted = 0 ORDER BY h.created_at DESC LIMIT ?3"
            );
            query_messages(c, &sql, params![user_id, tag, limit as i64])
        })
        .await
    }
}
