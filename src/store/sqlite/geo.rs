//! Location in the embedded store: `location_shares` (ended once, by a conditional update),
//! `location_share_requests`, `location_history`, `nearby_users` and `location_rooms`, the last
//! two indexed by R*Trees (`nearby_index`, `location_rooms_index`) that spatial reads probe.

use super::*;

const SHARE_COLS: &str = "id, room_id, user_id, message_id, lat, lon, accuracy_m, heading, \
     label, started_at, live_until, updated_at, ended_at, end_reason";

fn share_from_row(r: &Row) -> rusqlite::Result<LocationShare> {
    Ok(LocationShare {
        id: r.get(0)?,
        room_id: r.get(1)?,
        user_id: r.get(2)?,
        message_id: r.get(3)?,
        lat: r.get(4)?,
        lon: r.get(5)?,
        accuracy_m: r.get(6)?,
        heading: r.get(7)?,
        label: r.get(8)?,
        started_at: r.get(9)?,
        live_until: r.get(10)?,
        updated_at: r.get(11)?,
        ended_at: r.get(12)?,
        end_reason: r.get(13)?,
    })
}

fn shares(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<LocationShare>> {
    let mut st = db(c.prepare_cached(sql))?;
    let rows = db(st.query_map(params, share_from_row))?;
    rows.map(db).collect()
}

fn get_share(c: &Connection, id: &str) -> StoreResult<Option<LocationShare>> {
    Ok(shares(
        c,
        &format!("SELECT {SHARE_COLS} FROM location_shares WHERE id = ?1"),
        [id],
    )?
    .into_iter()
    .next())
}

fn nearby_from_row(r: &Row) -> rusqlite::Result<NearbyPosition> {
    Ok(NearbyPosition {
        user_id: r.get(0)?,
        lat: r.get(1)?,
        lon: r.get(2)?,
        updated_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

fn room_from_row(r: &Row) -> rusqlite::Result<LocationRoom> {
    Ok(LocationRoom {
        room_id: r.get(0)?,
        lat: r.get(1)?,
        lon: r.get(2)?,
        radius_m: r.get(3)?,
    })
}

/// The rows of an R*Tree probe (`sql` takes a box as ?1–?4, the rows still wanted as ?5, and
/// `more` as ?6) for each box in turn, at most `limit` in all.
fn in_boxes<T>(
    c: &Connection,
    sql: &str,
    boxes: &[GeoBox],
    limit: usize,
    more: Option<i64>,
    map: fn(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut st = db(c.prepare_cached(sql))?;
    let mut out = Vec::new();
    for b in boxes {
        let left = limit.saturating_sub(out.len()) as i64;
        if left == 0 {
            break;
        }
        let mut args: Vec<&dyn rusqlite::ToSql> =
            vec![&b.min_lat, &b.max_lat, &b.min_lon, &b.max_lon, &left];
        if let Some(m) = more.as_ref() {
            args.push(m);
        }
        let rows = db(st.query_map(args.as_slice(), map))?;
        for r in rows {
            out.push(db(r)?);
        }
    }
    Ok(out)
}

fn history_from_row(r: &Row) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: r.get(0)?,
        user_id: r.get(1)?,
        kind: r.get(2)?,
        room_id: r.get(3)?,
        lat: r.get(4)?,
        lon: r.get(5)?,
        at: r.get(6)?,
    })
}

#[async_trait]
impl GeoStore for SqliteStore {
    async fn start_share(&self, share: &LocationShare) -> StoreResult<Vec<LocationShare>> {
        let s = share.clone();
        self.write(move |c| {
            let mut ended = shares(
                c,
                &format!(
                    "SELECT {SHARE_COLS} FROM location_shares \
                     WHERE room_id = ?1 AND user_id = ?2 AND ended_at IS NULL"
                ),
                params![s.room_id, s.user_id],
            )?;
            exec_cached(
                c,
                "UPDATE location_shares SET ended_at = ?3, end_reason = 'stopped' \
                 WHERE room_id = ?1 AND user_id = ?2 AND ended_at IS NULL",
                params![s.room_id, s.user_id, s.started_at],
            )?;
            for e in &mut ended {
                e.ended_at = Some(s.started_at);
                e.end_reason = Some("stopped".into());
            }
            exec_cached(
                c,
                &format!(
                    "INSERT INTO location_shares ({SHARE_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, NULL)"
                ),
                params![
                    s.id,
                    s.room_id,
                    s.user_id,
                    s.message_id,
                    s.lat,
                    s.lon,
                    s.accuracy_m,
                    s.heading,
                    s.label,
                    s.started_at,
                    s.live_until,
                    s.updated_at
                ],
            )?;
            Ok(ended)
        })
        .await
    }

    async fn share(&self, id: &str) -> StoreResult<Option<LocationShare>> {
        let id = id.to_string();
        self.read(move |c| get_share(c, &id)).await
    }

    async fn move_share(
        &self,
        id: &str,
        user_id: &str,
        to: SharePosition,
        min_interval_ms: i64,
    ) -> StoreResult<ShareMove> {
        let (id, user_id) = (id.to_string(), user_id.to_string());
        self.write(move |c| {
            let Some(s) = get_share(c, &id)?.filter(|s| s.user_id == user_id) else {
                return Ok(ShareMove::NotFound);
            };
            if let Some(refused) = ShareMove::refusal(&s, &to, min_interval_ms) {
                return Ok(refused);
            }
            exec_cached(
                c,
                "UPDATE location_shares SET lat = ?2, lon = ?3, accuracy_m = ?4, heading = ?5, \
                 updated_at = ?6 WHERE id = ?1",
                params![id, to.lat, to.lon, to.accuracy_m, to.heading, to.at],
            )?;
            Ok(ShareMove::moved(s, &to))
        })
        .await
    }

    async fn end_share(&self, id: &str, reason: &str, at: i64) -> StoreResult<bool> {
        let (id, reason) = (id.to_string(), reason.to_string());
        self.write(move |c| {
            Ok(exec_cached(
                c,
                "UPDATE location_shares SET ended_at = ?2, end_reason = ?3 \
                 WHERE id = ?1 AND ended_at IS NULL",
                params![id, at, reason],
            )? == 1)
        })
        .await
    }

    async fn room_shares(&self, room_id: &str, now: i64) -> StoreResult<Vec<LocationShare>> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            shares(
                c,
                &format!(
                    "SELECT {SHARE_COLS} FROM location_shares \
                     WHERE room_id = ?1 AND ended_at IS NULL AND live_until > ?2 \
                     ORDER BY started_at, id"
                ),
                params![room_id, now],
            )
        })
        .await
    }

    async fn due_shares(&self, now: i64, limit: usize) -> StoreResult<Vec<LocationShare>> {
        self.read(move |c| {
            shares(
                c,
                &format!(
                    "SELECT {SHARE_COLS} FROM location_shares \
                     WHERE ended_at IS NULL AND live_until <= ?1 ORDER BY live_until, id LIMIT ?2"
                ),
                params![now, limit as i64],
            )
        })
        .await
    }

    async fn add_share_request(&self, r: &ShareRequest) -> StoreResult<()> {
        let r = r.clone();
        self.write(move |c| {
            exec_cached(
                c,
                "INSERT INTO location_share_requests (id, room_id, from_user_id, to_user_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id, r.room_id, r.from_user_id, r.to_user_id, r.created_at],
            )
            .map(drop)
        })
        .await
    }

    async fn add_history(&self, e: &HistoryEntry, _keep_until: i64) -> StoreResult<()> {
        let e = e.clone();
        self.write(move |c| {
            exec_cached(
                c,
                "INSERT INTO location_history (id, user_id, kind, room_id, lat, lon, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.id, e.user_id, e.kind, e.room_id, e.lat, e.lon, e.at],
            )
            .map(drop)
        })
        .await
    }

    async fn location_history(
        &self,
        user_id: &str,
        since: i64,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<HistoryEntry>> {
        let (user_id, before) = (user_id.to_string(), before.unwrap_or("~").to_string());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT id, user_id, kind, room_id, lat, lon, at FROM location_history \
                 WHERE user_id = ?1 AND id < ?2 AND at >= ?3 ORDER BY id DESC LIMIT ?4",
            ))?;
            let rows = db(st.query_map(
                params![user_id, before, since, limit as i64],
                history_from_row,
            ))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn delete_history_entry(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |c| {
            Ok(exec_cached(
                c,
                "DELETE FROM location_history WHERE id = ?1 AND user_id = ?2",
                params![id, user_id],
            )? == 1)
        })
        .await
    }

    async fn clear_history(&self, user_id: &str) -> StoreResult<()> {
        let user_id = user_id.to_string();
        self.write(move |c| {
            exec_cached(
                c,
                "DELETE FROM location_history WHERE user_id = ?1",
                [user_id],
            )
            .map(drop)
        })
        .await
    }

    async fn purge_history(&self, before: i64) -> StoreResult<u64> {
        self.write(move |c| {
            exec_cached(c, "DELETE FROM location_history WHERE at < ?1", [before]).map(|n| n as u64)
        })
        .await
    }

    async fn set_nearby(&self, p: &NearbyPosition) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            exec_cached(
                c,
                "INSERT INTO nearby_users (user_id, lat, lon, updated_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id) DO UPDATE SET \
                 lat = excluded.lat, lon = excluded.lon, updated_at = excluded.updated_at, \
                 expires_at = excluded.expires_at",
                params![p.user_id, p.lat, p.lon, p.updated_at, p.expires_at],
            )?;
            let rid: i64 = db(c.query_row(
                "SELECT rid FROM nearby_users WHERE user_id = ?1",
                [&p.user_id],
                |r| r.get(0),
            ))?;
            exec_cached(
                c,
                "INSERT OR REPLACE INTO nearby_index (id, min_lat, max_lat, min_lon, max_lon) \
                 VALUES (?1, ?2, ?2, ?3, ?3)",
                params![rid, p.lat, p.lon],
            )
            .map(drop)
        })
        .await
    }

    async fn nearby_position(
        &self,
        user_id: &str,
        now: i64,
    ) -> StoreResult<Option<NearbyPosition>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            db(c.query_row(
                "SELECT user_id, lat, lon, updated_at, expires_at FROM nearby_users \
                 WHERE user_id = ?1 AND expires_at > ?2",
                params![user_id, now],
                nearby_from_row,
            )
            .optional())
        })
        .await
    }

    async fn remove_nearby(&self, user_id: &str) -> StoreResult<bool> {
        let user_id = user_id.to_string();
        self.write(move |c| {
            exec_cached(
                c,
                "DELETE FROM nearby_index WHERE id = (SELECT rid FROM nearby_users WHERE user_id = ?1)",
                [&user_id],
            )?;
            Ok(exec_cached(c, "DELETE FROM nearby_users WHERE user_id = ?1", [&user_id])? == 1)
        })
        .await
    }

    async fn nearby_in(
        &self,
        boxes: &[GeoBox],
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<NearbyPosition>> {
        let boxes = boxes.to_vec();
        self.read(move |c| {
            in_boxes(
                c,
                "SELECT u.user_id, u.lat, u.lon, u.updated_at, u.expires_at \
                 FROM nearby_index i JOIN nearby_users u ON u.rid = i.id \
                 WHERE i.max_lat >= ?1 AND i.min_lat <= ?2 AND i.max_lon >= ?3 AND i.min_lon <= ?4 \
                 AND u.expires_at > ?6 LIMIT ?5",
                &boxes,
                limit,
                Some(now),
                nearby_from_row,
            )
        })
        .await
    }

    async fn purge_nearby(&self, now: i64) -> StoreResult<u64> {
        self.write(move |c| {
            exec_cached(
                c,
                "DELETE FROM nearby_index WHERE id IN \
                 (SELECT rid FROM nearby_users WHERE expires_at <= ?1)",
                [now],
            )?;
            exec_cached(c, "DELETE FROM nearby_users WHERE expires_at <= ?1", [now])
                .map(|n| n as u64)
        })
        .await
    }

    async fn put_location_room(&self, r: &LocationRoom) -> StoreResult<()> {
        let r = r.clone();
        self.write(move |c| {
            exec_cached(
                c,
                "INSERT INTO location_rooms (room_id, lat, lon, radius_m) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (room_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, \
                 radius_m = excluded.radius_m",
                params![r.room_id, r.lat, r.lon, r.radius_m],
            )?;
            let rid: i64 = db(c.query_row(
                "SELECT rid FROM location_rooms WHERE room_id = ?1",
                [&r.room_id],
                |row| row.get(0),
            ))?;
            exec_cached(
                c,
                "INSERT OR REPLACE INTO location_rooms_index (id, min_lat, max_lat, min_lon, max_lon) \
                 VALUES (?1, ?2, ?2, ?3, ?3)",
                params![rid, r.lat, r.lon],
            )
            .map(drop)
        })
        .await
    }

    async fn location_room(&self, room_id: &str) -> StoreResult<Option<LocationRoom>> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            db(c.query_row(
                "SELECT room_id, lat, lon, radius_m FROM location_rooms WHERE room_id = ?1",
                [room_id],
                room_from_row,
            )
            .optional())
        })
        .await
    }

    async fn location_rooms_in(
        &self,
        boxes: &[GeoBox],
        limit: usize,
    ) -> StoreResult<Vec<LocationRoom>> {
        let boxes = boxes.to_vec();
        self.read(move |c| {
            in_boxes(
                c,
                "SELECT r.room_id, r.lat, r.lon, r.radius_m \
                 FROM location_rooms_index i JOIN location_rooms r ON r.rid = i.id \
                 WHERE i.max_lat >= ?1 AND i.min_lat <= ?2 AND i.max_lon >= ?3 AND i.min_lon <= ?4 \
                 LIMIT ?5",
                &boxes,
                limit,
                None,
                room_from_row,
            )
        })
        .await
    }
}
