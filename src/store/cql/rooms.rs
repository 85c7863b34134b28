//! Room records and membership in the cluster store: `chat_rooms`, `direct_rooms`,
//! `room_members`, `user_rooms`.

use super::*;

#[async_trait]
impl RoomRecords for ScyllaStore {
    async fn create_room(&self, room: Room) -> StoreResult<Created> {
        if room.kind == RoomType::Direct {
            let mut pair = room.member_ids.clone();
            pair.sort();
            let pair = pair.join(":");
            if !self.lwt(&self.st.claim_pair, (&pair, &room.id)).await? {
                // The pair has a room: answer it (it may still be being written by its creator).
                for _ in 0..50 {
                    let existing = self
                        .rows::<(String,)>(&self.st.room_of_pair, (&pair,))
                        .await?;
                    if let Some((id,)) = existing.into_iter().next() {
                        if let Some((r, _)) = self.load_room(&id).await? {
                            if r.member_ids.len() == 2 {
                                return Ok(Created::Existing(r));
                            }
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                return Err(unavailable("direct room claimed but not readable"));
            }
        }
        // Members first, the room row last: a room is visible only once complete.
        let writes = room.member_ids.iter().enumerate().map(|(i, user)| {
            let role = room.role_of(user).unwrap_or(Role::Member);
            let joined = room.created_at + i as i64;
            let room_id = room.id.clone();
            async move {
                self.write(
                    &self.st.insert_member,
                    (&room_id, user, role.as_str(), joined, 0i64, 0i64),
                )
                .await?;
                self.write(&self.st.insert_user_room, (user, &room_id))
                    .await
            }
        });
        try_join_all(writes).await?;
        if room.kind != RoomType::Direct {
            let founders: BTreeSet<String> = room.member_ids.iter().cloned().collect();
            self.lwt(&self.st.create_roster, (&room.id, &founders))
                .await?;
        }
        self.write(
            &self.st.insert_room,
            (
                &room.id,
                room.kind.as_str(),
                &room.name,
                &room.created_by,
                room.created_at,
            ),
        )
        .await?;
        Ok(Created::New(self.room_or_404(&room.id).await?))
    }

    async fn get_room(&self, id: &str) -> StoreResult<Option<Room>> {
        Ok(self.load_room(id).await?.map(|(r, _)| r))
    }

    async fn rooms_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Room>> {
        self.load_rooms(ids).await
    }

    async fn rename_room(&self, id: &str, name: Option<&str>) -> StoreResult<Room> {
        self.room_or_404(id).await?;
        self.write(&self.st.rename_room, (name, id)).await?;
        self.room_or_404(id).await
    }

    async fn delete_room(&self, id: &str) -> StoreResult<()> {
        let (room, last) = self.load_room(id).await?.ok_or_else(|| not_found("room"))?;
        // The room row first: from here on the room is gone for every reader; what follows
        // removes what hangs off it, bucket by bucket (a retry after a failure finds the rest).
        self.write(&self.st.delete_room, (id,)).await?;
        try_join_all(
            room.member_ids
                .iter()
                .map(|u| self.write(&self.st.delete_user_room, (u, id))),
        )
        .await?;
        self.write(&self.st.delete_members, (id,)).await?;
        self.write(&self.st.delete_roster, (id,)).await?;
        for b in 0..=bucket(last) {
            self.delete_bucket(id, b).await?;
        }
        Ok(())
    }

    async fn add_members(
        &self,
        id: &str,
        members: &[(String, Role)],
        max: usize,
    ) -> StoreResult<Room> {
        let (room, last) = self.load_room(id).await?.ok_or_else(|| not_found("room"))?;
        let mut wanted: Vec<&(String, Role)> = Vec::new();
        for m in members {
            if !wanted.iter().any(|w| w.0 == m.0) {
                wanted.push(m);
            }
        }
        // Decided on the roster with a compare-and-set: concurrent adds on any nodes are
        // serialised there, so the limit holds.
        let (_, after) = self
            .change_roster(id, &room, |roster| {
                let mut next = roster.clone();
                next.extend(wanted.iter().map(|(u, _)| u.clone()));
                if next.len() > max {
                    return Err(ErrorBody::new(
                        ErrorCode::RoomFull,
                        format!("a group has at most {max} members"),
                    ));
                }
                Ok(next)
            })
            .await?;
        let now = dovie_actors::now_ms();
        let rows = wanted
            .into_iter()
            // Rows for every wanted user the roster now holds but the rows do not (also heals a
            // roster entry whose rows a crash left unwritten).
            .filter(|(u, _)| after.contains(u) && !room.is_member(u));
        try_join_all(rows.enumerate().map(|(i, (user, role))| async move {
            self.write(
                &self.st.insert_member,
                (
                    id,
                    user,
                    role.as_str(),
                    now + i as i64,
                    last as i64,
                    last as i64,
                ),
            )
            .await?;
            self.write(&self.st.insert_user_room, (user, id)).await
        }))
        .await?;
        self.room_or_404(id).await
    }

    async fn remove_member(&self, id: &str, user_id: &str) -> StoreResult<Room> {
        let room = self.room_or_404(id).await?;
        if !room.is_member(user_id) {
            return Err(not_found("member"));
        }
        if room.kind != RoomType::Direct {
            self.change_roster(id, &room, |roster| {
                let mut next = roster.clone();
                next.remove(user_id);
                Ok(next)
            })
            .await?;
        }
        self.write(&self.st.delete_member, (id, user_id)).await?;
        self.write(&self.st.delete_user_room, (user_id, id)).await?;
        self.room_or_404(id).await
    }

    async fn set_role(&self, id: &str, user_id: &str, role: Role) -> StoreResult<Room> {
        let room = self.room_or_404(id).await?;
        if !room.is_member(user_id) {
            return Err(not_found("member"));
        }
        self.write(&self.st.set_role, (role.as_str(), id, user_id))
            .await?;
        self.room_or_404(id).await
    }

    async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<RoomSummary>> {
        let rooms = self.my_rooms(user_id).await?;
        let loaded = try_join_all(rooms.iter().map(|id| async move {
            let Some((room, last)) = self.load_room(id).await? else {
                return Ok::<_, ErrorBody>(None);
            };
            let read = self
                .row::<(Option<i64>, Option<i64>)>(&self.st.member_marks, (id, user_id))
                .await?
                .and_then(|(r, _)| r)
                .unwrap_or(0)
                .max(0) as u64;
            let last_message = if last > 0 {
                self.message_at(id, last).await?
            } else {
                None
            };
            Ok(Some(RoomSummary {
                room,
                last_message,
                unread_count: last.saturating_sub(read),
            }))
        }))
        .await?;
        let mut out: Vec<RoomSummary> = loaded.into_iter().flatten().collect();
        out.sort_by_key(|s| {
            std::cmp::Reverse(
                s.last_message
                    .as_ref()
                    .map_or(s.room.created_at, |m| m.created_at),
            )
        });
        Ok(out)
    }

    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.my_rooms(user_id).await
    }

    async fn unread_counts(&self, user_id: &str) -> StoreResult<HashMap<String, u64>> {
        Ok(self
            .rooms_of(user_id)
            .await?
            .into_iter()
            .map(|s| (s.room.id, s.unread_count))
            .collect())
    }

    async fn direct_room(&self, a: &str, b: &str) -> StoreResult<Option<String>> {
        let key = crate::store::pair_key(a, b);
        let Some((id,)) = self
            .row::<(String,)>(&self.st.room_of_pair, (&key,))
            .await?
        else {
            return Ok(None);
        };
        // The claim outlives nothing: a deleted room's pair row goes with it, but check.
        Ok(self.load_room(&id).await?.map(|(r, _)| r.id))
    }
}

impl ScyllaStore {
    /// Changes a group's roster with a compare-and-set, retried on contention: `decide` sees the
    /// current roster and answers the next one (an error from it ends the change). Answers the
    /// roster before and after. A room created before rosters existed gets its roster from its
    /// member rows first.
    async fn change_roster<F>(
        &self,
        id: &str,
        room: &Room,
        decide: F,
    ) -> StoreResult<(BTreeSet<String>, BTreeSet<String>)>
    where
        F: Fn(&BTreeSet<String>) -> StoreResult<BTreeSet<String>>,
    {
        for attempt in 0..ROSTER_ATTEMPTS {
            let current = self
                .row::<(Option<BTreeSet<String>>,)>(&self.st.roster, (id,))
                .await?;
            let Some((Some(roster),)) = current else {
                let members: BTreeSet<String> = room.member_ids.iter().cloned().collect();
                self.lwt(&self.st.create_roster, (id, &members)).await?;
                continue;
            };
            let next = decide(&roster)?;
            if next == roster || self.lwt(&self.st.swap_roster, (&next, id, &roster)).await? {
                return Ok((roster, next));
            }
            // Lost a race: back off a little (spread by attempt) and decide again.
            tokio::time::sleep(std::time::Duration::from_millis(2 + 3 * attempt as u64)).await;
        }
        Err(unavailable("the room's roster is too contended; try again"))
    }

    /// Removes one message bucket of a room and everything that hangs off its messages: ids,
    /// nonces, likes, hashtag rows and the bucket's search terms.
    async fn delete_bucket(&self, room_id: &str, b: i64) -> StoreResult<()> {
        type Keys = (String, String, Option<String>, Option<Vec<String>>, i64);
        let mut pager = self
            .paged::<Keys>(&self.st.bucket_keys, (room_id, b))
            .await?;
        use futures_util::StreamExt;
        let mut seen = BTreeSet::new();
        while let Some(row) = pager.next().await {
            let (message_id, sender, nonce, tags, created_at) = row.map_err(unavailable)?;
            if !seen.insert(message_id.clone()) {
                continue;
            }
            let tags = tags.unwrap_or_default();
            let per_tag = tags
                .iter()
                .map(|t| self.write(&self.st.delete_tag, (t, created_at, &message_id)));
            futures_util::future::try_join3(
                self.write(&self.st.delete_message_id, (&message_id,)),
                self.write(&self.st.delete_likes, (&message_id,)),
                try_join_all(per_tag),
            )
            .await?;
            if let Some(nonce) = nonce {
                self.write(&self.st.delete_nonces, (room_id, &sender, &nonce))
                    .await?;
            }
        }
        self.write(&self.st.delete_terms, (room_id, b)).await?;
        self.write(&self.st.delete_bucket, (room_id, b)).await
    }
}
