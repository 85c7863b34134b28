//! The room actors' port on the cluster store: ownership epochs, conditional batch commits,
//! edits, deletes, reactions, receipts and presence audiences.

use super::*;

/// A batch's rows stay under this size (estimated): ScyllaDB warns from 128 KiB and refuses
/// from 1 MiB; a long message's search terms alone can run to thousands of rows.
const BATCH_BYTES: usize = 96 * 1024;
/// What a row adds to a batch beyond its text, estimated.
const ROW_OVERHEAD: usize = 64;

/// One row of a batch (a batch mixes statements, so its values are boxed).
type BatchRow = Box<dyn ::scylla::serialize::row::SerializeRow + Send + Sync>;

/// Unlogged batches being filled: a new one whenever the partition changes or the current one
/// would pass [`BATCH_BYTES`].
#[derive(Default)]
struct PartitionBatches {
    done: Vec<(Batch, Vec<BatchRow>)>,
    rows: Vec<BatchRow>,
    statements: Vec<PreparedStatement>,
    bytes: usize,
    partition: Option<i64>,
}

impl PartitionBatches {
    fn push(&mut self, partition: i64, st: &PreparedStatement, row: BatchRow, bytes: usize) {
        let other_partition = self.partition.is_some_and(|p| p != partition);
        if other_partition || (self.bytes > 0 && self.bytes + bytes > BATCH_BYTES) {
            self.close();
        }
        self.statements.push(st.clone());
        self.rows.push(row);
        self.bytes += bytes;
        self.partition = Some(partition);
    }

    fn close(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_consistency(Consistency::Quorum);
        for st in self.statements.drain(..) {
            batch.append_statement(st);
        }
        self.done.push((batch, std::mem::take(&mut self.rows)));
        self.bytes = 0;
    }

    fn finish(mut self) -> Vec<(Batch, Vec<BatchRow>)> {
        self.close();
        self.done
    }
}

impl ScyllaStore {
    /// The unlogged batches that write these messages and their search terms: one partition
    /// (room and bucket) each, at most [`BATCH_BYTES`] each.
    fn partition_batches(&self, stored: &[Message], epoch: u64) -> Vec<(Batch, Vec<BatchRow>)> {
        let mut batches = PartitionBatches::default();
        for m in stored {
            let b = bucket(m.seq);
            let attachments = serde_json::to_string(&m.attachments).unwrap_or_else(|_| "[]".into());
            let bytes = m.content.len() + attachments.len() + m.id.len() * 3 + ROW_OVERHEAD;
            let row = (
                b,
                epoch as i64,
                m.room_id.clone(),
                m.seq as i64,
                m.id.clone(),
                m.sender_id.clone(),
                m.kind.as_str(),
                m.content.clone(),
                m.nonce.clone(),
                m.reply_to.clone(),
                m.hashtags.clone(),
                attachments,
                m.created_at,
                m.location.as_ref().map(|l| l.to_string()),
                m.suggest_location,
                m.mentions.clone(),
            );
            batches.push(b, &self.st.insert_message, Box::new(row), bytes);
            for t in Self::terms(&m.content) {
                let bytes = t.len() + m.room_id.len() + ROW_OVERHEAD;
                let row = (m.room_id.clone(), b, t, m.seq as i64);
                batches.push(b, &self.st.insert_term, Box::new(row), bytes);
            }
        }
        batches.finish()
    }
}

#[async_trait]
impl dovie_actors::RoomStore for ScyllaStore {
    async fn load_room(
        &self,
        room_id: &str,
        window: usize,
    ) -> Result<Option<RoomSnapshot>, ErrorBody> {
        let Some((room, last_seq)) = ScyllaStore::load_room(self, room_id).await? else {
            return Ok(None);
        };
        let epoch = self.claim(room_id).await?;
        // Read after the claim: whatever the previous owner acknowledged is visible now.
        let last_seq = self.last_seq(room_id).await?.unwrap_or(last_seq);
        let mut recent = self.range(room_id, 0, last_seq + 1, window, false).await?;
        recent.reverse();
        let blocked = match room.member_ids.as_slice() {
            [a, b] if room.kind == RoomType::Direct => self.blocked_either(a, b).await?,
            _ => false,
        };
        Ok(Some(RoomSnapshot {
            room,
            last_seq,
            recent,
            epoch,
            blocked,
        }))
    }

    async fn append(
        &self,
        room_id: &str,
        epoch: u64,
        first_seq: u64,
        drafts: Vec<Draft>,
    ) -> Result<Vec<AppendOutcome>, AppendError> {
        let failed = AppendError::Failed;
        // Everything the batch is decided on, read at once: the owner's epoch and the last
        // committed seq (early answers only: the conditional commit below is what decides),
        // earlier messages with these nonces, and the senders' receipt marks.
        let marks = self.row::<(Option<i64>, Option<i64>)>(&self.st.room_marks, (room_id,));
        let earlier = try_join_all(drafts.iter().map(|d| async move {
            let Some(nonce) = &d.nonce else {
                return Ok::<_, ErrorBody>(Vec::new());
            };
            // One row per epoch that stored the nonce; only a message that is really its seq's
            // and the same counts (and only once committed: checked below).
            let seqs = self
                .rows::<(i64,)>(&self.st.nonce_seq, (room_id, &d.sender_id, nonce))
                .await?;
            let mut found = Vec::new();
            for (seq,) in seqs {
                if let Some(m) = self.message_at(room_id, seq as u64).await? {
                    if m.nonce.as_ref() == Some(nonce) && m.sender_id == d.sender_id {
                        found.push(m);
                    }
                }
            }
            Ok(found)
        }));
        let senders: BTreeSet<String> = drafts.iter().map(|d| d.sender_id.clone()).collect();
        let receipts = try_join_all(senders.into_iter().map(|sender| async move {
            let marks = self
                .row::<(Option<i64>, Option<i64>)>(&self.st.member_marks, (room_id, &sender))
                .await?;
            Ok::<_, ErrorBody>((sender, marks))
        }));
        let (marks, earlier, receipts) =
            futures_util::try_join!(marks, earlier, receipts).map_err(failed)?;
        let owner = marks.and_then(|(e, _)| e).unwrap_or(0).max(0) as u64;
        if owner != epoch {
            return Err(AppendError::Fenced);
        }
        let stored_last = marks
            .map(|(_, last)| last.unwrap_or(0).max(0) as u64)
            .ok_or_else(|| AppendError::Failed(not_found("room")))?;
        if stored_last + 1 != first_seq {
            return Err(AppendError::SeqMismatch {
                last_seq: stored_last,
            });
        }
        let earlier: Vec<Option<Message>> = earlier
            .into_iter()
            .map(|found| found.into_iter().find(|m| m.seq <= stored_last))
            .collect();
        let mut next = first_seq;
        let mut out = Vec::with_capacity(drafts.len());
        let mut batch_nonces: HashMap<(String, String), Message> = HashMap::new();
        let mut stored = Vec::new();
        for (d, earlier) in drafts.into_iter().zip(earlier) {
            if let Some(m) = earlier {
                out.push(AppendOutcome::Duplicate(m));
                continue;
            }
            if let Some(nonce) = &d.nonce {
                if let Some(m) = batch_nonces.get(&(d.sender_id.clone(), nonce.clone())) {
                    out.push(AppendOutcome::Duplicate(m.clone()));
                    continue;
                }
            }
            if let Some(reply_to) = &d.reply_to {
                let target = self.get_message_by_id(reply_to).await.map_err(failed)?;
                let in_room = target.is_some_and(|m| m.room_id == room_id)
                    || stored.iter().any(|m: &Message| &m.id == reply_to);
                if !in_room {
                    out.push(AppendOutcome::Rejected(ErrorBody::new(
                        ErrorCode::NotFound,
                        "reply_to names no message of this room",
                    )));
                    continue;
                }
            }
            let m = d.into_message(room_id, next);
            if let Some(n) = &m.nonce {
                batch_nonces.insert((m.sender_id.clone(), n.clone()), m.clone());
            }
            stored.push(m.clone());
            out.push(AppendOutcome::Stored(m));
            next += 1;
        }
        if stored.is_empty() {
            return Ok(out);
        }
        // The rooms-sent-in index first: no stored message lacks its sender's row.
        self.record_senders(room_id, stored.iter().map(|m| m.sender_id.as_str()))
            .await
            .map_err(failed)?;
        // A bucket's messages and their search terms share one partition: they go in unlogged
        // batches of that partition (one mutation each on the servers), at most
        // [`BATCH_BYTES`] apiece; the rows of other partitions in parallel; `last_seq` (what
        // makes the messages count) only after all of them.
        let batches =
            self.partition_batches(&stored, epoch)
                .into_iter()
                .map(|(batch, values)| async move {
                    let _permit = self.writes.acquire().await.map_err(unavailable)?;
                    self.session
                        .batch(&batch, values)
                        .await
                        .map_err(unavailable)?;
                    Ok::<_, ErrorBody>(())
                });
        let side = stored.iter().map(|m| async move {
            self.write(
                &self.st.insert_message_id,
                (&m.id, &m.room_id, m.seq as i64, epoch as i64),
            )
            .await?;
            if let Some(n) = &m.nonce {
                self.write(
                    &self.st.insert_nonce,
                    (&m.room_id, &m.sender_id, n, epoch as i64, m.seq as i64),
                )
                .await?;
            }
            self.index_tags(m).await
        });
        // Senders have read up to their own message: a raise to it (the marks were read with
        // the rest; the owner serializes receipts, so read-then-raise needs no transaction).
        let mut last_by_sender: HashMap<&str, u64> = HashMap::new();
        for m in &stored {
            last_by_sender.insert(&m.sender_id, m.seq);
        }
        let raises = receipts.into_iter().filter_map(|(sender, marks)| {
            let (read, delivered) = marks?;
            let seq = *last_by_sender.get(sender.as_str())?;
            let read = read.unwrap_or(0).max(seq as i64);
            let delivered = delivered.unwrap_or(0).max(seq as i64);
            Some(self.write(&self.st.set_read, (read, delivered, room_id, sender)))
        });
        futures_util::try_join!(
            try_join_all(batches),
            try_join_all(side),
            try_join_all(raises)
        )
        .map_err(failed)?;
        // The batch counts only if this node still owns the room and nobody committed meanwhile:
        // one conditional write per batch. Otherwise nothing here is acknowledged, and the rows
        // left behind carry an epoch lower than any later owner's, so they never show.
        let committed = self
            .lwt(
                &self.st.commit_last_seq,
                ((next - 1) as i64, room_id, epoch as i64, stored_last as i64),
            )
            .await
            .map_err(failed)?;
        if !committed {
            return Err(AppendError::Fenced);
        }
        Ok(out)
    }

    async fn messages_after(
        &self,
        room_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ErrorBody> {
        self.range(room_id, after, u64::MAX / 2, limit, true).await
    }

    async fn get_message(&self, message_id: &str) -> Result<Option<Message>, ErrorBody> {
        self.get_message_by_id(message_id).await
    }

    async fn edit_message(
        &self,
        id: &str,
        content: &str,
        hashtags: &[String],
        at: i64,
    ) -> Result<Message, ErrorBody> {
        let (old, epoch) = self
            .locate(id)
            .await?
            .filter(|(m, _)| !m.deleted)
            .ok_or_else(|| not_found("message"))?;
        self.unindex_tags(&old).await?;
        self.write(
            &self.st.edit_message,
            (
                content,
                hashtags.to_vec(),
                at,
                &old.room_id,
                bucket(old.seq),
                old.seq as i64,
                epoch,
            ),
        )
        .await?;
        let m = self
            .message_at(&old.room_id, old.seq)
            .await?
            .ok_or_else(|| not_found("message"))?;
        self.index(&m).await?;
        Ok(m)
    }

    async fn delete_message(&self, id: &str, at: i64) -> Result<Message, ErrorBody> {
        let (old, epoch) = self.locate(id).await?.ok_or_else(|| not_found("message"))?;
        self.unindex_tags(&old).await?;
        self.write(&self.st.delete_likes, (id,)).await?;
        // Its translations held its text too.
        self.write(&self.st.delete_translations, (id,)).await?;
        self.write(
            &self.st.tombstone,
            (at, &old.room_id, bucket(old.seq), old.seq as i64, epoch),
        )
        .await?;
        self.message_at(&old.room_id, old.seq)
            .await?
            .ok_or_else(|| not_found("message"))
    }

    async fn amend_message(
        &self,
        id: &str,
        attachments: Option<&[serde_json::Value]>,
        link_previews: Option<&[serde_json::Value]>,
    ) -> Result<Message, ErrorBody> {
        let (m, epoch) = self.locate(id).await?.ok_or_else(|| not_found("message"))?;
        let at = (&m.room_id, bucket(m.seq), m.seq as i64, epoch);
        let json =
            |v: &[serde_json::Value]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        if let Some(a) = attachments {
            self.write(
                &self.st.amend_attachments,
                (json(a), at.0, at.1, at.2, at.3),
            )
            .await?;
        }
        if let Some(l) = link_previews {
            self.write(
                &self.st.amend_link_previews,
                (json(l), at.0, at.1, at.2, at.3),
            )
            .await?;
        }
        self.message_at(&m.room_id, m.seq)
            .await?
            .ok_or_else(|| not_found("message"))
    }

    async fn set_reaction(
        &self,
        id: &str,
        user_id: &str,
        emoji: &str,
        on: bool,
    ) -> Result<Message, ErrorBody> {
        let (m, epoch) = self.locate(id).await?.ok_or_else(|| not_found("message"))?;
        if on {
            let already = self
                .reactions_of(id)
                .await?
                .get(emoji)
                .is_some_and(|us| us.iter().any(|u| u == user_id));
            if !already {
                self.write(
                    &self.st.insert_like,
                    (id, emoji, user_id, dovie_actors::now_ms()),
                )
                .await?;
            }
        } else {
            self.write(&self.st.delete_like, (id, emoji, user_id))
                .await?;
        }
        let reactions = self.reactions_of(id).await?;
        let json = serde_json::to_string(&reactions).unwrap_or_else(|_| "{}".into());
        self.write(
            &self.st.set_reactions,
            (json, &m.room_id, bucket(m.seq), m.seq as i64, epoch),
        )
        .await?;
        self.message_at(&m.room_id, m.seq)
            .await?
            .ok_or_else(|| not_found("message"))
    }

    async fn set_receipt(
        &self,
        room_id: &str,
        user_id: &str,
        kind: ReceiptKind,
        seq: u64,
    ) -> Result<(), ErrorBody> {
        // The room's owner serializes receipts, so read-then-raise needs no transaction.
        let Some((read, delivered)) = self
            .row::<(Option<i64>, Option<i64>)>(&self.st.member_marks, (room_id, user_id))
            .await?
        else {
            return Ok(());
        };
        let (read, delivered) = (
            read.unwrap_or(0).max(0) as u64,
            delivered.unwrap_or(0).max(0) as u64,
        );
        match kind {
            ReceiptKind::Read if seq > read || seq > delivered => {
                self.write(
                    &self.st.set_read,
                    (
                        seq.max(read) as i64,
                        seq.max(delivered) as i64,
                        room_id,
                        user_id,
                    ),
                )
                .await
            }
            ReceiptKind::Delivered if seq > delivered => {
                self.write(&self.st.set_delivered, (seq as i64, room_id, user_id))
                    .await
            }
            _ => Ok(()),
        }
    }

    async fn current_epoch(&self, room_id: &str) -> Result<u64, ErrorBody> {
        self.epoch(room_id).await
    }

    async fn co_members(&self, user_id: &str) -> Result<Vec<String>, ErrorBody> {
        self.room_mates(user_id, usize::MAX).await
    }

    async fn presence_audience(
        &self,
        user_id: &str,
        max_room_members: usize,
    ) -> Result<Vec<String>, ErrorBody> {
        if !self
            .user_by_id(user_id)
            .await?
            .is_none_or(|u| u.presence_visible)
        {
            return Ok(Vec::new());
        }
        let (mates, blocked, blockers) = futures_util::future::try_join3(
            self.room_mates(user_id, max_room_members),
            ContactStore::blocked_by(self, user_id),
            self.blockers_of(user_id),
        )
        .await?;
        let hidden: BTreeSet<String> = blocked.into_iter().chain(blockers).collect();
        Ok(mates.into_iter().filter(|m| !hidden.contains(m)).collect())
    }

    async fn blocked_users(&self, user_id: &str) -> Result<Vec<String>, ErrorBody> {
        ContactStore::blocked_by(self, user_id).await
    }

    async fn set_last_seen(&self, user_id: &str, at: i64) -> Result<(), ErrorBody> {
        self.write(&self.st.set_last_seen, (at, user_id)).await
    }
}

impl ScyllaStore {
    /// Everyone sharing a room of at most `max_room_members` members with the user.
    async fn room_mates(
        &self,
        user_id: &str,
        max_room_members: usize,
    ) -> Result<Vec<String>, ErrorBody> {
        let rooms = self.my_rooms(user_id).await?;
        // Channels carry no presence: their (possibly many) members are never read here.
        let kinds = try_join_all(
            rooms
                .iter()
                .map(|r| self.row::<RoomRow>(&self.st.room_by_id, (r,))),
        )
        .await?;
        let members = try_join_all(
            rooms
                .iter()
                .zip(kinds)
                .filter(|(_, row)| {
                    row.as_ref()
                        .is_some_and(|row| RoomType::parse(&row.1) != Some(RoomType::Channel))
                })
                .map(|(r, _)| self.rows::<(String, String, i64)>(&self.st.members_of, (r,))),
        )
        .await?;
        let set: BTreeSet<String> = members
            .into_iter()
            .filter(|m| m.len() <= max_room_members)
            .flatten()
            .map(|(u, _, _)| u)
            .filter(|u| u != user_id)
            .collect();
        Ok(set.into_iter().collect())
    }
}
