//! The room actors' port on the embedded store: loading a room, appending through the group
//! commit, edits, deletes, reactions, receipts and presence audiences.

use super::*;

/// Whether the room is a direct room one of whose two members blocked the other.
fn direct_pair_blocked(c: &Connection, room: &Room) -> StoreResult<bool> {
    let [a, b] = room.member_ids.as_slice() else {
        return Ok(false);
    };
    if room.kind != RoomType::Direct {
        return Ok(false);
    }
    db(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2) OR (blocker_id = ?2 AND blocked_id = ?1))",
        params![a, b],
        |r| r.get::<_, bool>(0),
    ))
}

#[async_trait]
impl dovie_actors::RoomStore for SqliteStore {
    async fn load_room(
        &self,
        room_id: &str,
        window: usize,
    ) -> Result<Option<RoomSnapshot>, ErrorBody> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            let Some(room) = load_room(c, &room_id)? else {
                return Ok(None);
            };
            let last_seq = last_seq(c, &room_id)?.unwrap_or(0);
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 ORDER BY seq DESC LIMIT ?2");
            let mut recent = query_messages(c, &sql, params![room_id, window as i64])?;
            recent.reverse();
            let blocked = direct_pair_blocked(c, &room)?;
            // One process owns an embedded store: no epochs to claim.
            Ok(Some(RoomSnapshot { room, last_seq, recent, epoch: 0, blocked }))
        })
        .await
    }

    async fn append(
        &self,
        room_id: &str,
        _epoch: u64,
        first_seq: u64,
        drafts: Vec<Draft>,
    ) -> Result<Vec<AppendOutcome>, AppendError> {
        let room_id = room_id.to_string();
        // Senders of this room not yet in the rooms-sent-in index: recorded in the same
        // transaction as their messages.
        let unseen = self
            .seen_senders
            .unseen(&room_id, drafts.iter().map(|d| d.sender_id.as_str()));
        let (seen, recorded_room, recorded) =
            (self.seen_senders.clone(), room_id.clone(), unseen.clone());
        let result = self
            .write(move |c| {
                let stored_last = last_seq(c, &room_id)?.ok_or_else(|| not_found("room"))?;
                if stored_last + 1 != first_seq {
                    return Ok(Err(stored_last));
                }
                for sender in &unseen {
                    exec_cached(
                        c,
                        "INSERT OR IGNORE INTO sender_rooms (sender_id, room_id) VALUES (?1, ?2)",
                        params![sender, room_id],
                    )?;
                }
                let mut next = first_seq;
                let mut out = Vec::with_capacity(drafts.len());
                let mut read_upto: HashMap<String, u64> = HashMap::new();
                // A repeated nonce inserts nothing (the unique index answers it in the same
                // probe as the insert); only then is the stored message looked up.
                let mut insert = db(c.prepare_cached(
                    "INSERT INTO messages (id, room_id, seq, sender_id, kind, content, nonce, reply_to, hashtags, created_at, attachments, location, suggest_location, mentions) \
                     VALUES (?1, ?2, ?3, ?4, ?10, ?5, ?6, ?7, ?8, ?9, ?11, ?12, ?13, ?14) \
                     ON CONFLICT (room_id, sender_id, nonce) WHERE nonce IS NOT NULL DO NOTHING",
                ))?;
                let mut reply_exists = db(c.prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND room_id = ?2"))?;
                let mut receipt = db(c.prepare_cached(
                    "UPDATE chat_participants SET read_seq = MAX(read_seq, ?3), delivered_seq = MAX(delivered_seq, ?3) \
                     WHERE room_id = ?1 AND user_id = ?2",
                ))?;
                for d in drafts {
                    if let Some(reply_to) = &d.reply_to {
                        if !db(reply_exists.exists(params![reply_to, room_id]))? {
                            out.push(AppendOutcome::Rejected(ErrorBody::new(
                                ErrorCode::NotFound,
                                "reply_to names no message of this room",
                            )));
                            continue;
                        }
                    }
                    let hashtags = serde_json::to_string(&d.hashtags).unwrap_or_else(|_| "[]".into());
                    let attachments = serde_json::to_string(&d.attachments).unwrap_or_else(|_| "[]".into());
                    let location = d.location.as_ref().map(|l| l.to_string());
                    let mentions = serde_json::to_string(&d.mentions).unwrap_or_else(|_| "[]".into());
                    let inserted = db(insert.execute(params![
                        d.id, room_id, next as i64, d.sender_id, d.content, d.nonce, d.reply_to, hashtags, d.created_at,
                        d.kind.as_str(), attachments, location, d.suggest_location as i64, mentions
                    ]))?;
                    if inserted == 0 {
                        // The nonce was used before: answer the stored message.
                        let by_nonce = format!(
                            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND sender_id = ?2 AND nonce = ?3"
                        );
                        let found = query_messages(c, &by_nonce, params![room_id, d.sender_id, d.nonce])?;
                        match found.into_iter().next() {
                            Some(m) => out.push(AppendOutcome::Duplicate(m)),
                            None => return Err(unavailable("a message was neither stored nor found by its nonce")),
                        }
                        continue;
                    }
                    // Sending implies having read everything up to one's own message (one
                    // update per sender and batch, below).
                    read_upto.insert(d.sender_id.clone(), next);
                    let m = d.into_message(&room_id, next);
                    insert_hashtags(c, &m)?;
                    out.push(AppendOutcome::Stored(m));
                    next += 1;
                }
                for (sender, seq) in &read_upto {
                    db(receipt.execute(params![room_id, sender, *seq as i64]))?;
                }
                exec_cached(c, "UPDATE chat_rooms SET last_seq = ?2 WHERE id = ?1", params![room_id, (next - 1) as i64])?;
                Ok(Ok(out))
            })
            .await;
        match result {
            Ok(Ok(out)) => {
                seen.recorded(&recorded_room, &recorded);
                Ok(out)
            }
            Ok(Err(last_seq)) => Err(AppendError::SeqMismatch { last_seq }),
            Err(e) => Err(AppendError::Failed(e)),
        }
    }

    async fn messages_after(
        &self,
        room_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ErrorBody> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3");
            query_messages(c, &sql, params![room_id, after as i64, limit as i64])
        })
        .await
    }

    async fn get_message(&self, message_id: &str) -> Result<Option<Message>, ErrorBody> {
        let id = message_id.to_string();
        self.read(move |c| get_message(c, &id)).await
    }

    async fn edit_message(
        &self,
        id: &str,
        content: &str,
        hashtags: &[String],
        at: i64,
    ) -> Result<Message, ErrorBody> {
        let (id, content, tags) = (id.to_string(), content.to_string(), hashtags.to_vec());
        self.write(move |c| {
            let tags_json = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
            let n = db(c.execute(
                "UPDATE messages SET content = ?2, hashtags = ?3, edited_at = ?4 WHERE id = ?1 AND deleted = 0",
                params![id, content, tags_json, at],
            ))?;
            if n == 0 {
                return Err(not_found("message"));
            }
            let m = get_message(c, &id)?.ok_or_else(|| not_found("message"))?;
            replace_hashtags(c, &m)?;
            Ok(m)
        })
        .await
    }

    async fn delete_message(&self, id: &str, at: i64) -> Result<Message, ErrorBody> {
        let id = id.to_string();
        self.write(move |c| {
            let n = db(c.execute(
                "UPDATE messages SET content = '', hashtags = '[]', reactions = '{}', attachments = '[]', \
                 link_previews = '[]', location = NULL, suggest_location = 0, deleted = 1, edited_at = ?2 \
                 WHERE id = ?1",
                params![id, at],
            ))?;
            if n == 0 {
                return Err(not_found("message"));
            }
            db(c.execute("DELETE FROM message_hashtags WHERE message_id = ?1", [&id]))?;
            db(c.execute("DELETE FROM message_likes WHERE message_id = ?1", [&id]))?;
            // Its translations held its text too.
            db(c.execute("DELETE FROM translations WHERE message_id = ?1", [&id]))?;
            get_message(c, &id)?.ok_or_else(|| not_found("message"))
        })
        .await
    }

    async fn amend_message(
        &self,
        id: &str,
        attachments: Option<&[serde_json::Value]>,
        link_previews: Option<&[serde_json::Value]>,
    ) -> Result<Message, ErrorBody> {
        let json =
            |v: &[serde_json::Value]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let (id, attachments, link_previews) = (
            id.to_string(),
            attachments.map(json),
            link_previews.map(json),
        );
        self.write(move |c| {
            let n = db(c.execute(
                "UPDATE messages SET attachments = COALESCE(?2, attachments), \
                 link_previews = COALESCE(?3, link_previews) WHERE id = ?1",
                params![id, attachments, link_previews],
            ))?;
            if n == 0 {
                return Err(not_found("message"));
            }
            get_message(c, &id)?.ok_or_else(|| not_found("message"))
        })
        .await
    }

    async fn set_reaction(
        &self,
        id: &str,
        user_id: &str,
        emoji: &str,
        on: bool,
    ) -> Result<Message, ErrorBody> {
        let (id, user_id, emoji) = (id.to_string(), user_id.to_string(), emoji.to_string());
        self.write(move |c| {
            if on {
                db(c.execute(
                    "INSERT OR IGNORE INTO message_likes (message_id, user_id, emoji, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, user_id, emoji, dovie_actors::now_ms()],
                ))?;
            } else {
                db(c.execute(
                    "DELETE FROM message_likes WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3",
                    params![id, user_id, emoji],
                ))?;
            }
            let reactions = reactions_of(c, &id)?;
            let json = serde_json::to_string(&reactions).unwrap_or_else(|_| "{}".into());
            db(c.execute("UPDATE messages SET reactions = ?2 WHERE id = ?1", params![id, json]))?;
            get_message(c, &id)?.ok_or_else(|| not_found("message"))
        })
        .await
    }

    async fn set_receipt(
        &self,
        room_id: &str,
        user_id: &str,
        kind: ReceiptKind,
        seq: u64,
    ) -> Result<(), ErrorBody> {
        let (room_id, user_id) = (room_id.to_string(), user_id.to_string());
        self.write(move |c| {
            let sql = match kind {
                ReceiptKind::Read => "UPDATE chat_participants SET read_seq = MAX(read_seq, ?3), \
                                      delivered_seq = MAX(delivered_seq, ?3) WHERE room_id = ?1 AND user_id = ?2",
                ReceiptKind::Delivered => "UPDATE chat_participants SET delivered_seq = MAX(delivered_seq, ?3) \
                                           WHERE room_id = ?1 AND user_id = ?2",
            };
            exec_cached(c, sql, params![room_id, user_id, seq as i64])?;
            Ok(())
        })
        .await
    }

    async fn current_epoch(&self, _room_id: &str) -> Result<u64, ErrorBody> {
        Ok(0)
    }

    async fn co_members(&self, user_id: &str) -> Result<Vec<String>, ErrorBody> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                "SELECT DISTINCT b.user_id FROM chat_participants a JOIN chat_participants b ON a.room_id = b.room_id \
                 WHERE a.user_id = ?1 AND b.user_id != ?1",
            ))?;
            let rows = db(stmt.query_map([&user_id], |r| r.get::<_, String>(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn presence_audience(
        &self,
        user_id: &str,
        max_room_members: usize,
    ) -> Result<Vec<String>, ErrorBody> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                // The user's small rooms first (each counted only up to the limit; channels
                // carry no presence), then their members: a large room costs at most
                // `limit + 1` rows, once.
                "WITH small AS MATERIALIZED ( \
                     SELECT m.room_id FROM chat_participants m WHERE m.user_id = ?1 \
                     AND (SELECT type FROM chat_rooms r WHERE r.id = m.room_id) != 'channel' \
                     AND (SELECT COUNT(*) FROM (SELECT 1 FROM chat_participants n \
                          WHERE n.room_id = m.room_id LIMIT ?2 + 1)) <= ?2) \
                 SELECT DISTINCT b.user_id FROM chat_participants b JOIN small s ON s.room_id = b.room_id \
                 WHERE b.user_id != ?1 \
                 AND (SELECT presence_visible FROM users WHERE id = ?1) != 0 \
                 AND NOT EXISTS (SELECT 1 FROM blocks k WHERE (k.blocker_id = ?1 AND k.blocked_id = b.user_id) \
                                 OR (k.blocker_id = b.user_id AND k.blocked_id = ?1))",
            ))?;
            let rows = db(stmt.query_map(params![user_id, max_room_members as i64], |r| {
                r.get::<_, String>(0)
            }))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn set_last_seen(&self, user_id: &str, at: i64) -> Result<(), ErrorBody> {
        let user_id = user_id.to_string();
        self.write(move |c| {
            db(c.execute(
                "UPDATE users SET last_seen_at = ?2 WHERE id = ?1",
                params![user_id, at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn blocked_users(&self, user_id: &str) -> Result<Vec<String>, ErrorBody> {
        ContactStore::blocked_by(self, user_id).await
    }
}
