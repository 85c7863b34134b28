//! Room records and membership in the embedded store: `chat_rooms`, `room_members`.

use super::*;

#[async_trait]
impl RoomRecords for SqliteStore {
    async fn create_room(&self, room: Room) -> StoreResult<Created> {
        self.write(move |c| {
            let direct_key = (room.kind == RoomType::Direct).then(|| {
                let mut pair = room.member_ids.clone();
                pair.sort();
                pair.join(":")
            });
            let inserted = db(c.execute(
                "INSERT INTO chat_rooms (id, type, name, created_by, created_at, direct_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (direct_key) DO NOTHING",
                params![room.id, room.kind.as_str(), room.name, room.created_by, room.created_at, direct_key],
            ))?;
            if inserted == 0 {
                let existing: String = db(c.query_row(
                    "SELECT id FROM chat_rooms WHERE direct_key = ?1",
                    [&direct_key],
                    |r| r.get(0),
                ))?;
                return Ok(Created::Existing(room_or_404(c, &existing)?));
            }
            let mut stmt = db(c.prepare_cached(
                "INSERT INTO chat_participants (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
            ))?;
            for (i, user) in room.member_ids.iter().enumerate() {
                let role = room.role_of(user).unwrap_or(Role::Member);
                db(stmt.execute(params![room.id, user, role.as_str(), room.created_at + i as i64]))?;
            }
            Ok(Created::New(room_or_404(c, &room.id)?))
        })
        .await
    }

    async fn get_room(&self, id: &str) -> StoreResult<Option<Room>> {
        let id = id.to_string();
        self.read(move |c| load_room(c, &id)).await
    }

    async fn rooms_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Room>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                out.extend(load_room(c, id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn rename_room(&self, id: &str, name: Option<&str>) -> StoreResult<Room> {
        let (id, name) = (id.to_string(), name.map(str::to_string));
        self.write(move |c| {
            db(c.execute(
                "UPDATE chat_rooms SET name = ?2 WHERE id = ?1",
                params![id, name],
            ))?;
            room_or_404(c, &id)
        })
        .await
    }

    async fn delete_room(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |c| {
            let n = db(c.execute("DELETE FROM chat_rooms WHERE id = ?1", [&id]))?;
            if n == 0 {
                return Err(not_found("room"));
            }
            Ok(())
        })
        .await
    }

    async fn add_members(
        &self,
        id: &str,
        members: &[(String, Role)],
        max: usize,
    ) -> StoreResult<Room> {
        let (id, members) = (id.to_string(), members.to_vec());
        self.write(move |c| {
            let room = room_or_404(c, &id)?;
            // Each user once, however often the request names them.
            let mut new: Vec<&(String, Role)> = Vec::new();
            for m in members.iter().filter(|(u, _)| !room.is_member(u)) {
                if !new.iter().any(|n| n.0 == m.0) {
                    new.push(m);
                }
            }
            if room.member_ids.len() + new.len() > max {
                return Err(ErrorBody::new(ErrorCode::RoomFull, format!("a group has at most {max} members")));
            }
            let now = dovie_actors::now_ms();
            let last = last_seq(c, &id)?.unwrap_or(0) as i64;
            let mut stmt = db(c.prepare_cached(
                "INSERT INTO chat_participants (room_id, user_id, role, joined_at, read_seq, delivered_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            ))?;
            for (i, (user, role)) in new.into_iter().enumerate() {
                // A new member has nothing unread from before they joined.
                db(stmt.execute(params![id, user, role.as_str(), now + i as i64, last]))?;
            }
            room_or_404(c, &id)
        })
        .await
    }

    async fn remove_member(&self, id: &str, user_id: &str) -> StoreResult<Room> {
        let (id, user_id) = (id.to_string(), user_id.to_string());
        self.write(move |c| {
            let n = db(c.execute(
                "DELETE FROM chat_participants WHERE room_id = ?1 AND user_id = ?2",
                params![id, user_id],
            ))?;
            if n == 0 {
                return Err(not_found("member"));
            }
            room_or_404(c, &id)
        })
        .await
    }

    async fn set_role(&self, id: &str, user_id: &str, role: Role) -> StoreResult<Room> {
        let (id, user_id) = (id.to_string(), user_id.to_string());
        self.write(move |c| {
            let n = db(c.execute(
                "UPDATE chat_participants SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
                params![id, user_id, role.as_str()],
            ))?;
            if n == 0 {
                return Err(not_found("member"));
            }
            room_or_404(c, &id)
        })
        .await
    }

    async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<RoomSummary>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                "SELECT r.id, r.last_seq, p.read_seq FROM chat_rooms r \
                 JOIN chat_participants p ON p.room_id = r.id WHERE p.user_id = ?1",
            ))?;
            let rows: Vec<(String, i64, i64)> = db(stmt
                .query_map([&user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>()))?;
            let last_sql =
                format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq = ?2");
            let mut out = Vec::with_capacity(rows.len());
            for (room_id, last, read) in rows {
                let Some(room) = load_room(c, &room_id)? else {
                    continue;
                };
                let last_message = query_messages(c, &last_sql, params![room_id, last])?
                    .into_iter()
                    .next();
                out.push(RoomSummary {
                    room,
                    last_message,
                    unread_count: (last - read).max(0) as u64,
                });
            }
            out.sort_by_key(|s| {
                std::cmp::Reverse(
                    s.last_message
                        .as_ref()
                        .map_or(s.room.created_at, |m| m.created_at),
                )
            });
            Ok(out)
        })
        .await
    }

    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt =
                db(c.prepare_cached("SELECT room_id FROM chat_participants WHERE user_id = ?1"))?;
            let rows = db(stmt.query_map([&user_id], |r| r.get::<_, String>(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn unread_counts(&self, user_id: &str) -> StoreResult<HashMap<String, u64>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                "SELECT r.id, MAX(r.last_seq - p.read_seq, 0) FROM chat_rooms r \
                 JOIN chat_participants p ON p.room_id = r.id WHERE p.user_id = ?1",
            ))?;
            let rows = db(stmt.query_map([&user_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            }))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn direct_room(&self, a: &str, b: &str) -> StoreResult<Option<String>> {
        let key = crate::store::pair_key(a, b);
        self.read(move |c| {
            db(c.query_row(
                "SELECT id FROM chat_rooms WHERE direct_key = ?1",
                [&key],
                |r| r.get(0),
            )
            .optional())
        })
        .await
    }
}
