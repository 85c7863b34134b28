//! Reading history and searching in the cluster store: `messages`, `message_terms`,
//! `message_hashtags`.

use super::*;

#[async_trait]
impl History for ScyllaStore {
    async fn history(
        &self,
        room_id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page> {
        let lo = after.unwrap_or(0);
        let hi = before.unwrap_or(u64::MAX / 2);
        let ascending = after.is_some();
        let mut messages = self.range(room_id, lo, hi, limit + 1, ascending).await?;
        let has_more = messages.len() > limit;
        messages.truncate(limit);
        if !ascending {
            messages.reverse();
        }
        Ok(Page { messages, has_more })
    }

    async fn search(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let words = super::text::query_words(query);
        let Some(last) = words.last() else {
            return Ok(Vec::new());
        };
        // The index term: a whole word when there are several (every message that matches
        // holds it; the longest is usually the rarest), else the only word's prefix (at most
        // MAX_PREFIX characters are indexed) or, if too short to be a prefix, the word itself.
        let term: String = if words.len() == 1 && super::text::last_is_prefix(&words) {
            last.chars().take(MAX_PREFIX).collect()
        } else {
            words[..words.len() - 1]
                .iter()
                .max_by_key(|w| w.chars().count())
                .unwrap_or(last)
                .clone()
        };
        let mine = self.my_rooms(user_id).await?;
        let rooms: Vec<String> = match room_id {
            Some(r) if mine.iter().any(|m| m == r) => vec![r.to_string()],
            Some(_) => Vec::new(),
            None => mine,
        };
        let found = try_join_all(
            rooms
                .iter()
                .map(|room| self.search_room(room, &term, &words, limit)),
        )
        .await?;
        let mut out: Vec<Message> = found.into_iter().flatten().collect();
        out.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.seq)));
        out.truncate(limit);
        Ok(out)
    }

    async fn by_hashtag(
        &self,
        user_id: &str,
        tag: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let tag = tag.trim_start_matches('#').to_lowercase();
        let mine: BTreeSet<String> = self.my_rooms(user_id).await?.into_iter().collect();
        let mut out = Vec::new();
        // Newest first; the driver pages through the tag's partition.
        let mut pager = self
            .paged::<(String, String)>(&self.st.messages_by_tag, (&tag,))
            .await?;
        use futures_util::StreamExt;
        while let Some(row) = pager.next().await {
            let (message_id, room) = row.map_err(unavailable)?;
            if !mine.contains(&room) {
                continue;
            }
            if let Some(m) = self.get_message_by_id(&message_id).await? {
                if !m.deleted && m.hashtags.contains(&tag) {
                    out.push(m);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Search candidates read at once.
const CANDIDATE_READS: usize = 32;

impl ScyllaStore {
    /// The newest `limit` messages of one room matching `words`, from the candidates of `term`:
    /// newest bucket first, every candidate of a bucket paged through, until `limit` match.
    async fn search_room(
        &self,
        room: &str,
        term: &str,
        words: &[String],
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        use futures_util::StreamExt;
        let last = self.last_seq(room).await?.unwrap_or(0);
        let mut out = Vec::new();
        for b in (0..=bucket(last)).rev() {
            // Candidates newest first, read CANDIDATE_READS at a time.
            let mut seqs = self
                .paged::<(i64,)>(&self.st.term_seqs, (room, b, term))
                .await?
                .chunks(CANDIDATE_READS);
            while let Some(rows) = seqs.next().await {
                let seqs: Vec<u64> = rows
                    .into_iter()
                    .map(|r| r.map(|(seq,)| seq as u64).map_err(unavailable))
                    .collect::<StoreResult<_>>()?;
                let found =
                    try_join_all(seqs.iter().map(|&seq| self.message_at(room, seq))).await?;
                for m in found.into_iter().flatten() {
                    if !m.deleted && super::text::matches(&m.content, words) {
                        out.push(m);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Indexes every stored message into `search_terms` (once, when the migration that created it
/// runs on a keyspace with history). The session is in the store's keyspace.
pub(super) async fn reindex_search(session: &Session) -> Result<(), String> {
    use futures_util::StreamExt;
    let err = |e: &dyn std::fmt::Display| format!("re-indexing search: {e}");
    let insert = session
        .prepare("INSERT INTO search_terms (room_id, bucket, term, seq) VALUES (?, ?, ?, ?)")
        .await
        .map_err(|e| err(&e))?;
    let messages = session
        .prepare("SELECT seq, content, deleted FROM messages WHERE room_id = ? AND bucket = ?")
        .await
        .map_err(|e| err(&e))?;
    let mut rooms = session
        .query_iter("SELECT id, last_seq FROM chat_rooms", &[])
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<(String, Option<i64>)>()
        .map_err(|e| err(&e))?;
    let mut indexed = 0usize;
    while let Some(room) = rooms.next().await {
        let (room_id, last) = room.map_err(|e| err(&e))?;
        for b in 0..=bucket(last.unwrap_or(0).max(0) as u64) {
            let mut rows = session
                .execute_iter(messages.clone(), (&room_id, b))
                .await
                .map_err(|e| err(&e))?
                .rows_stream::<(i64, Option<String>, Option<bool>)>()
                .map_err(|e| err(&e))?;
            while let Some(row) = rows.next().await {
                let (seq, content, deleted) = row.map_err(|e| err(&e))?;
                if deleted.unwrap_or(false) {
                    continue;
                }
                for term in ScyllaStore::terms(content.as_deref().unwrap_or_default()) {
                    session
                        .execute_unpaged(&insert, (&room_id, b, term, seq))
                        .await
                        .map_err(|e| err(&e))?;
                }
                indexed += 1;
            }
        }
    }
    if indexed > 0 {
        tracing::info!(messages = indexed, "search index rebuilt");
    }
    Ok(())
}
