//! Location in the cluster store: `location_shares` (ended once by an LWT on `ended_at`, moved
//! by a compare-and-set on `updated_at`), `location_shares_by_room`, `location_share_current`
//! (the one live share of a user in a room, claimed with an LWT), `location_shares_due` (what
//! every node's sweeper reads), `location_share_requests`, `location_history` (written with a
//! TTL), and "nearby" positions and location rooms, each also kept by cell of [`CELL_DEG`]
//! degrees, clustered inside the partition of its tile of [`CELLS_PER_TILE`] cells a side: a
//! spatial read is one query per tile its boxes touch, reading only the cells they cover.

use super::*;

/// The side of a cell, in degrees (about 1.1 km of latitude): what a spatial read selects.
const CELL_DEG: f64 = 0.01;
/// Cells along a tile's side: a tile is half a degree (about 55 km of latitude), a partition,
/// so a 50 km search touches a few; a cell row inside it is at most this many cells.
const CELLS_PER_TILE: i64 = 50;
/// Tiles one spatial read may touch: a 50 km search over a pole spans every longitude of three
/// rows of tiles (2,160); a wider one is refused.
const MAX_TILES: usize = 2_200;
/// Tiles read at once.
const TILE_READS: usize = 16;
/// Attempts at claiming a user's current share in a room before giving up.
const CLAIM_ATTEMPTS: usize = 16;
const SET_NEARBY_CELL: &str = "INSERT INTO nearby_by_cell (tile, cell_row, cell_col, user_id, lat, lon, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
const PUT_ROOM_CELL: &str = "INSERT INTO location_rooms_by_cell (tile, cell_row, cell_col, room_id, lat, lon, radius_m) VALUES (?, ?, ?, ?, ?, ?, ?)";
const SHARE_COLS: &str = "id, room_id, user_id, message_id, lat, lon, accuracy_m, heading, \
     label, started_at, live_until, updated_at, ended_at, end_reason";

#[derive(::scylla::DeserializeRow)]
struct ShareRow {
    id: String,
    room_id: String,
    user_id: String,
    message_id: Option<String>,
    lat: f64,
    lon: f64,
    accuracy_m: Option<f64>,
    heading: Option<f64>,
    label: Option<String>,
    started_at: i64,
    live_until: i64,
    updated_at: i64,
    ended_at: Option<i64>,
    end_reason: Option<String>,
}

impl From<ShareRow> for LocationShare {
    fn from(r: ShareRow) -> Self {
        LocationShare {
            id: r.id,
            room_id: r.room_id,
            user_id: r.user_id,
            message_id: r.message_id,
            lat: r.lat,
            lon: r.lon,
            accuracy_m: r.accuracy_m,
            heading: r.heading,
            label: r.label,
            started_at: r.started_at,
            live_until: r.live_until,
            updated_at: r.updated_at,
            ended_at: r.ended_at,
            end_reason: r.end_reason,
        }
    }
}

pub(super) struct GeoStmts {
    insert_share: PreparedStatement,
    share: PreparedStatement,
    move_share: PreparedStatement,
    end_share: PreparedStatement,
    insert_by_room: PreparedStatement,
    delete_by_room: PreparedStatement,
    by_room: PreparedStatement,
    current: PreparedStatement,
    claim_first: PreparedStatement,
    claim: PreparedStatement,
    insert_due: PreparedStatement,
    delete_due: PreparedStatement,
    due: PreparedStatement,
    insert_request: PreparedStatement,
    insert_history: PreparedStatement,
    history: PreparedStatement,
    history_entry: PreparedStatement,
    delete_history_entry: PreparedStatement,
    clear_history: PreparedStatement,
    set_nearby: PreparedStatement,
    nearby: PreparedStatement,
    delete_nearby: PreparedStatement,
    set_nearby_cell: PreparedStatement,
    delete_nearby_cell: PreparedStatement,
    nearby_in_cells: PreparedStatement,
    put_room: PreparedStatement,
    room: PreparedStatement,
    put_room_cell: PreparedStatement,
    rooms_in_cells: PreparedStatement,
}

impl GeoStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<GeoStmts, String> {
        let p = |cql: String| prepare_statement(s, keyspace, cql);
        Ok(GeoStmts {
            insert_share: p(format!("INSERT INTO location_shares ({SHARE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, null)")).await?,
            share: p(format!("SELECT {SHARE_COLS} FROM location_shares WHERE id = ?")).await?,
            move_share: p("UPDATE location_shares SET lat = ?, lon = ?, accuracy_m = ?, heading = ?, updated_at = ? WHERE id = ? IF updated_at = ? AND ended_at = null".into()).await?,
            end_share: p("UPDATE location_shares SET ended_at = ?, end_reason = ? WHERE id = ? IF ended_at = null".into()).await?,
            insert_by_room: p("INSERT INTO location_shares_by_room (room_id, share_id) VALUES (?, ?)".into()).await?,
            delete_by_room: p("DELETE FROM location_shares_by_room WHERE room_id = ? AND share_id = ?".into()).await?,
            by_room: p("SELECT share_id FROM location_shares_by_room WHERE room_id = ?".into()).await?,
            current: p("SELECT share_id FROM location_share_current WHERE room_id = ? AND user_id = ?".into()).await?,
            claim_first: p("INSERT INTO location_share_current (room_id, user_id, share_id) VALUES (?, ?, ?) IF NOT EXISTS".into()).await?,
            claim: p("UPDATE location_share_current SET share_id = ? WHERE room_id = ? AND user_id = ? IF share_id = ?".into()).await?,
            insert_due: p("INSERT INTO location_shares_due (shard, live_until, share_id) VALUES (0, ?, ?)".into()).await?,
            delete_due: p("DELETE FROM location_shares_due WHERE shard = 0 AND live_until = ? AND share_id = ?".into()).await?,
            due: p("SELECT share_id FROM location_shares_due WHERE shard = 0 AND live_until <= ? LIMIT ?".into()).await?,
            insert_request: p("INSERT INTO location_share_requests (id, room_id, from_user_id, to_user_id, created_at) VALUES (?, ?, ?, ?, ?)".into()).await?,
            insert_history: p("INSERT INTO location_history (user_id, id, kind, room_id, lat, lon, at) VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?".into()).await?,
            history: p("SELECT id, user_id, kind, room_id, lat, lon, at FROM location_history WHERE user_id = ? AND id < ? LIMIT ?".into()).await?,
            history_entry: p("SELECT id FROM location_history WHERE user_id = ? AND id = ?".into()).await?,
            delete_history_entry: p("DELETE FROM location_history WHERE user_id = ? AND id = ?".into()).await?,
            clear_history: p("DELETE FROM location_history WHERE user_id = ?".into()).await?,
            set_nearby: p("INSERT INTO nearby_users (user_id, tile, lat, lon, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?".into()).await?,
            nearby: p("SELECT user_id, tile, lat, lon, updated_at, expires_at FROM nearby_users WHERE user_id = ?".into()).await?,
            delete_nearby: p("DELETE FROM nearby_users WHERE user_id = ?".into()).await?,
            set_nearby_cell: p(format!("{SET_NEARBY_CELL} USING TTL ?")).await?,
            delete_nearby_cell: p("DELETE FROM nearby_by_cell WHERE tile = ? AND cell_row = ? AND cell_col = ? AND user_id = ?".into()).await?,
            nearby_in_cells: p("SELECT user_id, lat, lon, updated_at, expires_at FROM nearby_by_cell WHERE tile = ? AND cell_row IN ? AND cell_col >= ? AND cell_col <= ? LIMIT ?".into()).await?,
            put_room: p("INSERT INTO location_rooms (room_id, lat, lon, radius_m) VALUES (?, ?, ?, ?)".into()).await?,
            room: p("SELECT room_id, lat, lon, radius_m FROM location_rooms WHERE room_id = ?".into()).await?,
            put_room_cell: p(PUT_ROOM_CELL.into()).await?,
            rooms_in_cells: p("SELECT room_id, lat, lon, radius_m FROM location_rooms_by_cell WHERE tile = ? AND cell_row IN ? AND cell_col >= ? AND cell_col <= ? LIMIT ?".into()).await?,
        })
    }
}

fn cell_index(deg: f64) -> i32 {
    (deg / CELL_DEG).floor() as i32
}

/// Where a point is kept: its tile (`"<lat index>:<lon index>"`, the partition) and its cell's
/// row and column (the clustering key). The tile is the cell's, so the two always agree.
#[derive(Debug, Clone, PartialEq)]
struct CellKey {
    tile: String,
    row: i32,
    col: i32,
}

fn tile_key(row: i64, col: i64) -> String {
    format!(
        "{}:{}",
        row.div_euclid(CELLS_PER_TILE),
        col.div_euclid(CELLS_PER_TILE)
    )
}

fn cell_of(lat: f64, lon: f64) -> CellKey {
    let (row, col) = (cell_index(lat), cell_index(lon));
    CellKey {
        tile: tile_key(row.into(), col.into()),
        row,
        col,
    }
}

/// One query of a spatial table: a tile's partition, the rows of cells inside it and the span
/// of columns the boxes cover.
#[derive(Debug, PartialEq)]
struct CellRead {
    tile: String,
    rows: Vec<i32>,
    cols: (i32, i32),
}

/// The reads covering the boxes, a tile at a time, at most [`MAX_TILES`].
fn cell_reads(boxes: &[GeoBox]) -> StoreResult<Vec<CellRead>> {
    let mut out = Vec::new();
    for b in boxes {
        let rows = (
            i64::from(cell_index(b.min_lat)),
            i64::from(cell_index(b.max_lat)),
        );
        let cols = (
            i64::from(cell_index(b.min_lon)),
            i64::from(cell_index(b.max_lon)),
        );
        let tiles =
            |(lo, hi): (i64, i64)| lo.div_euclid(CELLS_PER_TILE)..=hi.div_euclid(CELLS_PER_TILE);
        // The part of a span inside tile `t`.
        let within = |(lo, hi): (i64, i64), t: i64| {
            (
                lo.max(t * CELLS_PER_TILE),
                hi.min((t + 1) * CELLS_PER_TILE - 1),
            )
        };
        for tr in tiles(rows) {
            let (r0, r1) = within(rows, tr);
            for tc in tiles(cols) {
                let (c0, c1) = within(cols, tc);
                out.push(CellRead {
                    tile: format!("{tr}:{tc}"),
                    rows: (r0..=r1).map(|r| r as i32).collect(),
                    cols: (c0 as i32, c1 as i32),
                });
                if out.len() > MAX_TILES {
                    return Err(ErrorBody::new(
                        ErrorCode::ValidationFailed,
                        "the area is too large to search",
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Seconds from `now` until `until`, at least 1 (a CQL TTL).
fn ttl_secs(until: i64, now: i64) -> i32 {
    ((until - now) / 1000).clamp(1, i32::MAX as i64) as i32
}

type NearbyRow = (String, f64, f64, i64, i64);
/// A `nearby_users` row: user, tile, cell centre, updated, expires.
type NearbyUserRow = (String, Option<String>, f64, f64, i64, i64);

fn nearby_of(r: NearbyRow) -> NearbyPosition {
    NearbyPosition {
        user_id: r.0,
        lat: r.1,
        lon: r.2,
        updated_at: r.3,
        expires_at: r.4,
    }
}

impl ScyllaStore {
    async fn share_row(&self, id: &str) -> StoreResult<Option<LocationShare>> {
        Ok(self
            .row::<ShareRow>(&self.st.geo.share, (id,))
            .await?
            .map(LocationShare::from))
    }

    async fn shares_by_id(&self, ids: Vec<String>) -> StoreResult<Vec<LocationShare>> {
        let found = try_join_all(ids.iter().map(|id| self.share_row(id))).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Drops an ended share from the room's list and the due list.
    async fn unlist_share(&self, s: &LocationShare) -> StoreResult<()> {
        self.write(&self.st.geo.delete_by_room, (&s.room_id, &s.id))
            .await?;
        self.write(&self.st.geo.delete_due, (s.live_until, &s.id))
            .await
    }

    /// Makes `id` the user's current share in the room; answers the one it replaced.
    async fn claim_current(
        &self,
        room_id: &str,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<String>> {
        for _ in 0..CLAIM_ATTEMPTS {
            let old = self
                .row::<(Option<String>,)>(&self.st.geo.current, (room_id, user_id))
                .await?
                .map(|(s,)| s);
            let applied = match &old {
                None => {
                    self.lwt(&self.st.geo.claim_first, (room_id, user_id, id))
                        .await?
                }
                Some(o) => {
                    self.lwt(&self.st.geo.claim, (id, room_id, user_id, o))
                        .await?
                }
            };
            if applied {
                return Ok(old.flatten());
            }
        }
        Err(unavailable(
            "cannot claim the live share: too much contention",
        ))
    }

    /// What the reads find (`st` selects by tile, rows `IN`, a span of columns and a limit), at
    /// most `limit`.
    async fn cells_read<R, T>(
        &self,
        reads: Vec<CellRead>,
        st: &PreparedStatement,
        limit: usize,
        map: impl Fn(R) -> T,
    ) -> StoreResult<Vec<T>>
    where
        R: for<'f, 'm> ::scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let limit_each = limit.min(i32::MAX as usize) as i32;
        let mut out = Vec::new();
        for chunk in reads.chunks(TILE_READS) {
            let pages =
                try_join_all(chunk.iter().map(|r| {
                    self.rows::<R>(st, (&r.tile, &r.rows, r.cols.0, r.cols.1, limit_each))
                }))
                .await?;
            out.extend(pages.into_iter().flatten().map(&map));
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

#[async_trait]
impl GeoStore for ScyllaStore {
    async fn start_share(&self, s: &LocationShare) -> StoreResult<Vec<LocationShare>> {
        let old = self.claim_current(&s.room_id, &s.user_id, &s.id).await?;
        self.write(
            &self.st.geo.insert_share,
            (
                &s.id,
                &s.room_id,
                &s.user_id,
                &s.message_id,
                s.lat,
                s.lon,
                s.accuracy_m,
                s.heading,
                &s.label,
                s.started_at,
                s.live_until,
                s.updated_at,
            ),
        )
        .await?;
        self.write(&self.st.geo.insert_by_room, (&s.room_id, &s.id))
            .await?;
        self.write(&self.st.geo.insert_due, (s.live_until, &s.id))
            .await?;
        let mut ended = Vec::new();
        if let Some(old) = old {
            if self.end_share(&old, "stopped", s.started_at).await? {
                ended.extend(self.share_row(&old).await?);
            }
        }
        Ok(ended)
    }

    async fn share(&self, id: &str) -> StoreResult<Option<LocationShare>> {
        self.share_row(id).await
    }

    async fn move_share(
        &self,
        id: &str,
        user_id: &str,
        to: SharePosition,
        min_interval_ms: i64,
    ) -> StoreResult<ShareMove> {
        let Some(s) = self.share_row(id).await?.filter(|s| s.user_id == user_id) else {
            return Ok(ShareMove::NotFound);
        };
        if let Some(refused) = ShareMove::refusal(&s, &to, min_interval_ms) {
            return Ok(refused);
        }
        let applied = self
            .lwt(
                &self.st.geo.move_share,
                (
                    to.lat,
                    to.lon,
                    to.accuracy_m,
                    to.heading,
                    to.at,
                    id,
                    s.updated_at,
                ),
            )
            .await?;
        if !applied {
            // Moved by another call meanwhile, or ended.
            return Ok(match self.share_row(id).await? {
                Some(now) if now.is_live(to.at) => ShareMove::TooSoon(min_interval_ms),
                _ => ShareMove::Ended,
            });
        }
        Ok(ShareMove::moved(s, &to))
    }

    async fn end_share(&self, id: &str, reason: &str, at: i64) -> StoreResult<bool> {
        let Some(s) = self.share_row(id).await? else {
            return Ok(false);
        };
        if s.ended_at.is_some() {
            // Ended before: make sure its list rows are gone (a crash may have left them).
            self.unlist_share(&s).await?;
            return Ok(false);
        }
        let applied = self.lwt(&self.st.geo.end_share, (at, reason, id)).await?;
        self.unlist_share(&s).await?;
        Ok(applied)
    }

    async fn room_shares(&self, room_id: &str, now: i64) -> StoreResult<Vec<LocationShare>> {
        let ids = self
            .rows::<(String,)>(&self.st.geo.by_room, (room_id,))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let mut shares: Vec<LocationShare> = self
            .shares_by_id(ids)
            .await?
            .into_iter()
            .filter(|s| s.is_live(now))
            .collect();
        shares.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(shares)
    }

    async fn due_shares(&self, now: i64, limit: usize) -> StoreResult<Vec<LocationShare>> {
        let ids: Vec<String> = self
            .rows::<(String,)>(&self.st.geo.due, (now, limit.min(i32::MAX as usize) as i32))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let mut due = Vec::new();
        for s in self.shares_by_id(ids).await? {
            if s.ended_at.is_some() {
                self.unlist_share(&s).await?;
            } else {
                due.push(s);
            }
        }
        Ok(due)
    }

    async fn add_share_request(&self, r: &ShareRequest) -> StoreResult<()> {
        self.write(
            &self.st.geo.insert_request,
            (
                &r.id,
                &r.room_id,
                &r.from_user_id,
                &r.to_user_id,
                r.created_at,
            ),
        )
        .await
    }

    async fn add_history(&self, e: &HistoryEntry, keep_until: i64) -> StoreResult<()> {
        self.write(
            &self.st.geo.insert_history,
            (
                &e.user_id,
                &e.id,
                &e.kind,
                &e.room_id,
                e.lat,
                e.lon,
                e.at,
                ttl_secs(keep_until, dovie_actors::now_ms()),
            ),
        )
        .await
    }

    async fn location_history(
        &self,
        user_id: &str,
        since: i64,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<HistoryEntry>> {
        type Row = (String, String, String, Option<String>, f64, f64, i64);
        // Entries past the retention are only the oldest (ids are time-ordered), and may still
        // be there until their TTL runs out: pages are read on until `limit` are in or the
        // partition ends.
        let page = limit.min(i32::MAX as usize);
        let mut cursor = before.unwrap_or("~").to_string();
        let mut out = Vec::new();
        loop {
            let rows = self
                .rows::<Row>(&self.st.geo.history, (user_id, &cursor, page as i32))
                .await?;
            let full = rows.len() == page;
            if let Some(last) = rows.last() {
                cursor = last.0.clone();
            }
            out.extend(
                rows.into_iter()
                    .filter(|r| r.6 >= since)
                    .map(|r| HistoryEntry {
                        id: r.0,
                        user_id: r.1,
                        kind: r.2,
                        room_id: r.3,
                        lat: r.4,
                        lon: r.5,
                        at: r.6,
                    }),
            );
            if out.len() >= limit || !full {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }

    async fn delete_history_entry(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let found = self
            .row::<(String,)>(&self.st.geo.history_entry, (user_id, id))
            .await?
            .is_some();
        if found {
            self.write(&self.st.geo.delete_history_entry, (user_id, id))
                .await?;
        }
        Ok(found)
    }

    async fn clear_history(&self, user_id: &str) -> StoreResult<()> {
        self.write(&self.st.geo.clear_history, (user_id,)).await
    }

    async fn purge_history(&self, _before: i64) -> StoreResult<u64> {
        // Entries are written with a TTL of the retention: the server drops them itself.
        Ok(0)
    }

    async fn set_nearby(&self, p: &NearbyPosition) -> StoreResult<()> {
        let cell = cell_of(p.lat, p.lon);
        let old = self
            .row::<NearbyUserRow>(&self.st.geo.nearby, (&p.user_id,))
            .await?
            .map(|r| cell_of(r.2, r.3));
        if let Some(old) = old.filter(|c| *c != cell) {
            self.write(
                &self.st.geo.delete_nearby_cell,
                (old.tile, old.row, old.col, &p.user_id),
            )
            .await?;
        }
        let ttl = ttl_secs(p.expires_at, p.updated_at);
        self.write(
            &self.st.geo.set_nearby,
            (
                &p.user_id,
                &cell.tile,
                p.lat,
                p.lon,
                p.updated_at,
                p.expires_at,
                ttl,
            ),
        )
        .await?;
        self.write(
            &self.st.geo.set_nearby_cell,
            (
                &cell.tile,
                cell.row,
                cell.col,
                &p.user_id,
                p.lat,
                p.lon,
                p.updated_at,
                p.expires_at,
                ttl,
            ),
        )
        .await
    }

    async fn nearby_position(
        &self,
        user_id: &str,
        now: i64,
    ) -> StoreResult<Option<NearbyPosition>> {
        Ok(self
            .row::<NearbyUserRow>(&self.st.geo.nearby, (user_id,))
            .await?
            .map(|r| nearby_of((r.0, r.2, r.3, r.4, r.5)))
            .filter(|p| p.expires_at > now))
    }

    async fn remove_nearby(&self, user_id: &str) -> StoreResult<bool> {
        let Some((_, _, lat, lon, ..)) = self
            .row::<NearbyUserRow>(&self.st.geo.nearby, (user_id,))
            .await?
        else {
            return Ok(false);
        };
        let cell = cell_of(lat, lon);
        self.write(
            &self.st.geo.delete_nearby_cell,
            (cell.tile, cell.row, cell.col, user_id),
        )
        .await?;
        self.write(&self.st.geo.delete_nearby, (user_id,)).await?;
        Ok(true)
    }

    async fn nearby_in(
        &self,
        boxes: &[GeoBox],
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<NearbyPosition>> {
        let found = self
            .cells_read::<NearbyRow, _>(
                cell_reads(boxes)?,
                &self.st.geo.nearby_in_cells,
                limit,
                nearby_of,
            )
            .await?;
        let mut out: Vec<NearbyPosition> = found
            .into_iter()
            .filter(|p| p.expires_at > now && boxes.iter().any(|b| b.contains(p.lat, p.lon)))
            .collect();
        out.truncate(limit);
        Ok(out)
    }

    async fn purge_nearby(&self, _now: i64) -> StoreResult<u64> {
        // Positions are written with a TTL of their expiry: the server drops them itself.
        Ok(0)
    }

    async fn put_location_room(&self, r: &LocationRoom) -> StoreResult<()> {
        self.write(
            &self.st.geo.put_room,
            (&r.room_id, r.lat, r.lon, r.radius_m),
        )
        .await?;
        let cell = cell_of(r.lat, r.lon);
        self.write(
            &self.st.geo.put_room_cell,
            (
                cell.tile, cell.row, cell.col, &r.room_id, r.lat, r.lon, r.radius_m,
            ),
        )
        .await
    }

    async fn location_room(&self, room_id: &str) -> StoreResult<Option<LocationRoom>> {
        Ok(self
            .row::<(String, f64, f64, f64)>(&self.st.geo.room, (room_id,))
            .await?
            .map(|r| LocationRoom {
                room_id: r.0,
                lat: r.1,
                lon: r.2,
                radius_m: r.3,
            }))
    }

    async fn location_rooms_in(
        &self,
        boxes: &[GeoBox],
        limit: usize,
    ) -> StoreResult<Vec<LocationRoom>> {
        let found = self
            .cells_read::<(String, f64, f64, f64), _>(
                cell_reads(boxes)?,
                &self.st.geo.rooms_in_cells,
                limit,
                |r| LocationRoom {
                    room_id: r.0,
                    lat: r.1,
                    lon: r.2,
                    radius_m: r.3,
                },
            )
            .await?;
        let mut out: Vec<LocationRoom> = found
            .into_iter()
            .filter(|r| boxes.iter().any(|b| b.contains(r.lat, r.lon)))
            .collect();
        out.truncate(limit);
        Ok(out)
    }
}

/// Copies every place of schema version 5 into the cells of version 6 (location rooms, and
/// "nearby" positions not yet expired, with what is left of their time to live).
pub(super) async fn index_cells(session: &Session) -> Result<(), String> {
    use futures_util::StreamExt;
    let err = |e: &dyn std::fmt::Display| format!("indexing places by cell: {e}");
    let put_room = session.prepare(PUT_ROOM_CELL).await.map_err(|e| err(&e))?;
    let set_nearby = session
        .prepare(format!("{SET_NEARBY_CELL} USING TTL ?"))
        .await
        .map_err(|e| err(&e))?;
    let mut rooms = session
        .query_iter(
            "SELECT room_id, lat, lon, radius_m FROM location_rooms",
            &[],
        )
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<(String, f64, f64, f64)>()
        .map_err(|e| err(&e))?;
    let mut copied = 0usize;
    while let Some(row) = rooms.next().await {
        let (room_id, lat, lon, radius_m) = row.map_err(|e| err(&e))?;
        let c = cell_of(lat, lon);
        session
            .execute_unpaged(
                &put_room,
                (c.tile, c.row, c.col, room_id, lat, lon, radius_m),
            )
            .await
            .map_err(|e| err(&e))?;
        copied += 1;
    }
    let now = dovie_actors::now_ms();
    let mut nearby = session
        .query_iter(
            "SELECT user_id, lat, lon, updated_at, expires_at FROM nearby_users",
            &[],
        )
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<NearbyRow>()
        .map_err(|e| err(&e))?;
    while let Some(row) = nearby.next().await {
        let p = nearby_of(row.map_err(|e| err(&e))?);
        if p.expires_at <= now {
            continue;
        }
        let c = cell_of(p.lat, p.lon);
        let values = (
            c.tile,
            c.row,
            c.col,
            &p.user_id,
            p.lat,
            p.lon,
            p.updated_at,
            p.expires_at,
            ttl_secs(p.expires_at, now),
        );
        session
            .execute_unpaged(&set_nearby, values)
            .await
            .map_err(|e| err(&e))?;
        copied += 1;
    }
    if copied > 0 {
        tracing::info!(places = copied, "places indexed by cell");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(min_lat: f64, max_lat: f64, min_lon: f64, max_lon: f64) -> GeoBox {
        GeoBox {
            min_lat,
            max_lat,
            min_lon,
            max_lon,
        }
    }

    #[test]
    fn a_point_is_kept_in_the_tile_of_its_cell() {
        assert_eq!(
            cell_of(37.5, 127.0),
            CellKey {
                tile: "75:254".into(),
                row: 3750,
                col: 12700
            }
        );
        let c = cell_of(-0.001, -0.001);
        assert_eq!((c.tile.as_str(), c.row, c.col), ("-1:-1", -1, -1));
        for lat in [0.49, 0.5, 0.51, -0.5, 89.99, 90.0] {
            let c = cell_of(lat, 0.0);
            let row_tile = i64::from(c.row).div_euclid(CELLS_PER_TILE);
            assert!(c.tile.starts_with(&format!("{row_tile}:")), "{lat}: {c:?}");
        }
    }

    #[test]
    fn reads_cover_the_boxes_cell_by_cell() {
        // Inside one tile: one read of the rows and columns the box covers.
        assert_eq!(
            cell_reads(&[bx(37.512, 37.535, 127.012, 127.025)]).unwrap(),
            vec![CellRead {
                tile: "75:254".into(),
                rows: vec![3751, 3752, 3753],
                cols: (12701, 12702),
            }]
        );
        // Across a corner of four tiles: one read each, split at the tiles' edges.
        let reads = cell_reads(&[bx(37.495, 37.515, 126.995, 127.015)]).unwrap();
        let got: Vec<_> = reads
            .iter()
            .map(|r| (r.tile.as_str(), r.rows.clone(), r.cols))
            .collect();
        assert_eq!(
            got,
            vec![
                ("74:253", vec![3749], (12699, 12699)),
                ("74:254", vec![3749], (12700, 12701)),
                ("75:253", vec![3750, 3751], (12699, 12699)),
                ("75:254", vec![3750, 3751], (12700, 12701)),
            ]
        );
        // No read ever asks for more rows than a tile has.
        let wide = cell_reads(&[bx(37.0, 38.0, 126.0, 127.0)]).unwrap();
        assert!(wide.iter().all(|r| r.rows.len() <= CELLS_PER_TILE as usize));
        assert!(cell_reads(&[bx(-90.0, 90.0, -180.0, 180.0)]).is_err());
    }
}
