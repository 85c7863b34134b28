//! Location (LOC-1..6): location messages and live shares, map links, "nearby" people, location
//! rooms, suggestions to share, and the location history. This module owns the rules (what is
//! valid, what is coarse, who hears what) and the live shares' lifecycle; storage is the
//! store's `GeoStore`, routes are `api::location`.
//!
//! Live shares are ended exactly once wherever they end: by the sharer, by a newer share of the
//! same user in the same room, or by the sweeper every node runs ([`Geo::spawn_sweeper`]), which
//! ends shares past `live_until` with the store's compare-and-set — so a share ends on time
//! even when the node that started it is gone, and only the node whose end took announces it.
//!
//! "Nearby" never stores a position: only the centre of its ~1 km cell ([`cells`]); distances
//! are computed between cell centres and rounded to [`NEARBY_STEP_M`], so no number of queries
//! from any number of places can place anyone better than their cell.

pub mod cells;
pub mod nearby;
pub mod suggest;

use std::sync::Arc;
use std::time::Duration;

use dovie_actors::ports::Draft;
use dovie_actors::{Event, Fanout};
use dovie_protocol::commands::LocationUpdate;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::events as ev;
use dovie_protocol::model::Message;
use serde_json::{json, Value};

use crate::config::LocationConfig;
use crate::store::{
    HistoryEntry, LocationShare, NearbyPosition, ShareMove, SharePosition, SharedStore,
};

/// Distances "nearby" shows are multiples of this.
pub const NEARBY_STEP_M: f64 = 500.0;
/// The largest "nearby" and location-room search radius, and the default.
pub const MAX_SEARCH_RADIUS_M: f64 = 50_000.0;
pub const DEFAULT_SEARCH_RADIUS_M: f64 = 5_000.0;
/// Users one "nearby" answer lists at most.
pub const NEARBY_LIMIT: usize = 100;
/// Candidates a spatial read takes at most before distances are computed.
pub const NEARBY_CANDIDATES: usize = 5_000;
/// The radius of a location room, metres.
pub const ROOM_RADIUS_M: std::ops::RangeInclusive<f64> = 100.0..=50_000.0;
/// Rooms one discovery answer lists at most.
pub const ROOMS_LIMIT: usize = 50;
/// How far a "nearby" query may be from the caller's own published cell, metres: farther, and
/// the caller must publish where they are first (at most once a minute), so scanning a city
/// from made-up places is as slow as walking it.
pub const NEARBY_QUERY_SLACK_M: f64 = 2_000.0;
const MAX_LABEL_CHARS: usize = 200;
/// The most a move may come early and still be taken, ms.
const MOVE_GRACE_MS: i64 = 250;
const MAX_ACCURACY_M: f64 = 1_000_000.0;
/// Shares the sweeper ends per round at most.
const SWEEP_BATCH: usize = 500;
/// How late a share may be before a node that the live set does not place it on ends it too
/// (its placed node is gone, or slow): nodes do not all race one compare-and-set on time.
const TAKEOVER_MS: i64 = 1_500;
/// How often expired "nearby" positions and old history are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(60);

fn invalid(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::ValidationFailed, msg)
}

/// Checks a position: finite, latitude within ±90, longitude within ±180.
pub fn check_position(lat: f64, lon: f64) -> Result<(), ErrorBody> {
    if cells::valid(lat, lon) {
        Ok(())
    } else {
        Err(invalid(
            "lat must be a number from -90 to 90 and lon from -180 to 180",
        ))
    }
}

/// Checks an accuracy (0 to 1,000 km) and a heading (0 to 360 degrees).
pub fn check_extras(accuracy_m: Option<f64>, heading: Option<f64>) -> Result<(), ErrorBody> {
    if accuracy_m.is_some_and(|a| !(a.is_finite() && (0.0..=MAX_ACCURACY_M).contains(&a))) {
        return Err(invalid("accuracy_m must be from 0 to 1000000"));
    }
    if heading.is_some_and(|h| !(h.is_finite() && (0.0..=360.0).contains(&h))) {
        return Err(invalid("heading must be from 0 to 360"));
    }
    Ok(())
}

/// Checks a label: at most [`MAX_LABEL_CHARS`]; blank means none.
pub fn check_label(label: Option<String>) -> Result<Option<String>, ErrorBody> {
    match label {
        Some(l) if l.chars().count() > MAX_LABEL_CHARS => Err(invalid(format!(
            "label must be at most {MAX_LABEL_CHARS} characters"
        ))),
        l => Ok(l.map(|l| l.trim().to_string()).filter(|l| !l.is_empty())),
    }
}

/// A search radius: absent means the default; else 1 m to [`MAX_SEARCH_RADIUS_M`].
pub fn search_radius(radius_m: Option<f64>) -> Result<f64, ErrorBody> {
    match radius_m {
        None => Ok(DEFAULT_SEARCH_RADIUS_M),
        Some(r) if (1.0..=MAX_SEARCH_RADIUS_M).contains(&r) => Ok(r),
        Some(_) => Err(invalid("radius_m must be from 1 to 50000")),
    }
}

/// A share as clients see it.
pub fn share_json(s: &LocationShare) -> Value {
    json!({
        "id": s.id, "room_id": s.room_id, "user_id": s.user_id, "message_id": s.message_id,
        "lat": s.lat, "lon": s.lon, "accuracy_m": s.accuracy_m, "heading": s.heading,
        "label": s.label, "started_at": s.started_at, "live_until": s.live_until,
        "updated_at": s.updated_at, "ended_at": s.ended_at, "end_reason": s.end_reason,
    })
}

pub fn history_json(e: &HistoryEntry) -> Value {
    let mut v = json!({ "id": e.id, "kind": e.kind, "lat": e.lat, "lon": e.lon, "at": e.at });
    if let Some(r) = &e.room_id {
        v["room_id"] = json!(r);
    }
    v
}

pub struct Geo {
    pub config: LocationConfig,
    store: SharedStore,
    fanout: Arc<dyn Fanout>,
    pub nearby: nearby::NearbyIndex,
    /// The cluster (which node sweeps which share); `None` on one node.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Geo {
    pub fn new(
        config: LocationConfig,
        store: SharedStore,
        fanout: Arc<dyn Fanout>,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Arc<Geo> {
        let nearby = match &cluster {
            Some(c) => nearby::NearbyIndex::Redis(store.clone(), c.connection()),
            None => nearby::NearbyIndex::Store(store.clone()),
        };
        Arc::new(Geo {
            config,
            store,
            fanout,
            nearby,
            cluster,
        })
    }

    /// The `location` of a message: the place, its map links, and the live share if any.
    pub fn location_object(
        &self,
        lat: f64,
        lon: f64,
        accuracy_m: Option<f64>,
        label: Option<&str>,
        live: Option<(&str, i64)>,
    ) -> Value {
        let mut v = json!({
            "lat": lat, "lon": lon, "accuracy_m": accuracy_m, "label": label,
            "map_url": format!("{}?api=1&query={lat},{lon}", self.config.maps_url),
        });
        if !self.config.static_api_key.is_empty() {
            let mut url = url::Url::parse(&self.config.static_map_url).ok();
            if let Some(u) = url.as_mut() {
                u.query_pairs_mut()
                    .append_pair("center", &format!("{lat},{lon}"))
                    .append_pair("zoom", "15")
                    .append_pair("size", "600x300")
                    .append_pair("scale", "2")
                    .append_pair("markers", &format!("{lat},{lon}"))
                    .append_pair("key", &self.config.static_api_key);
            }
            if let Some(u) = url {
                v["static_map_url"] = json!(u.to_string());
            }
        }
        if let Some((share_id, live_until)) = live {
            v["share_id"] = json!(share_id);
            v["live_until"] = json!(live_until);
        }
        v
    }

    async fn members(&self, room_id: &str) -> Result<Vec<String>, ErrorBody> {
        Ok(self
            .store
            .get_room(room_id)
            .await?
            .map(|r| r.member_ids)
            .unwrap_or_default())
    }

    /// Tells a room's members (those who did not block `actor`).
    fn tell_room(
        &self,
        room_id: &str,
        audience: &[String],
        t: &'static str,
        payload: &Value,
        actor: &str,
    ) {
        let event = Event::new(t, payload)
            .in_room(Arc::from(room_id), None)
            .by(actor);
        self.fanout.room_event(room_id, audience, Arc::new(event));
    }

    /// Tells one user (unless they blocked `actor`).
    pub fn tell_user(&self, user_id: &str, t: &'static str, payload: &Value, actor: &str) {
        let event = Event::new(t, payload).by(actor);
        self.fanout
            .user_event(&[user_id.to_string()], Arc::new(event));
    }

    /// Announces that a share ended.
    pub async fn announce_end(&self, s: &LocationShare, reason: &str) {
        crate::metrics::location_share(reason);
        let payload = json!({ "share_id": s.id, "room_id": s.room_id, "reason": reason });
        match self.members(&s.room_id).await {
            Ok(m) => self.tell_room(
                &s.room_id,
                &m,
                ev::LOCATION_SHARE_ENDED,
                &payload,
                &s.user_id,
            ),
            Err(e) => {
                tracing::warn!(share = %s.id, error = %e.message, "cannot announce a share's end")
            }
        }
    }

    /// Ends the live shares in `room` — of `user` only, or all (a deleted room) — telling the
    /// room's members as they are now.
    pub async fn end_shares(
        &self,
        room: &dovie_protocol::model::Room,
        user: Option<&str>,
    ) -> Result<(), ErrorBody> {
        let now = dovie_actors::now_ms();
        for s in self.store.room_shares(&room.id, now).await? {
            if user.is_some_and(|u| u != s.user_id) {
                continue;
            }
            if self.store.end_share(&s.id, "stopped", now).await? {
                crate::metrics::location_share("stopped");
                let payload =
                    json!({ "share_id": s.id, "room_id": s.room_id, "reason": "stopped" });
                self.tell_room(
                    &s.room_id,
                    &room.member_ids,
                    ev::LOCATION_SHARE_ENDED,
                    &payload,
                    &s.user_id,
                );
            }
        }
        Ok(())
    }

    /// Records a place the user shared or published (kept `history_days`).
    pub async fn record(
        &self,
        user_id: &str,
        kind: &str,
        room_id: Option<&str>,
        lat: f64,
        lon: f64,
        at: i64,
    ) -> Result<(), ErrorBody> {
        let e = HistoryEntry {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            kind: kind.to_string(),
            room_id: room_id.map(str::to_string),
            lat,
            lon,
            at,
        };
        self.store.add_history(&e, at + self.history_ms()).await
    }

    pub fn history_ms(&self) -> i64 {
        self.config.history_days as i64 * 86_400_000
    }

    /// `location_update` from a socket: moves the sender's live share and tells the room.
    pub async fn move_share(&self, user_id: &str, c: LocationUpdate) -> Result<Value, ErrorBody> {
        check_position(c.lat, c.lon)?;
        check_extras(c.accuracy_m, c.heading)?;
        let to = SharePosition {
            lat: c.lat,
            lon: c.lon,
            accuracy_m: c.accuracy_m,
            heading: c.heading,
            at: dovie_actors::now_ms(),
        };
        let interval = self.config.update_interval_ms as i64;
        // Moves sent every interval arrive a little bunched by the network and the queues:
        // those are taken (a grace of an eighth, at most 250 ms).
        let grace = (interval / 8).min(MOVE_GRACE_MS);
        let s = match self
            .store
            .move_share(&c.share_id, user_id, to, interval - grace)
            .await?
        {
            ShareMove::Moved(s) => s,
            ShareMove::TooSoon(ms) => {
                crate::metrics::location_update("rate_limited");
                return Err(ErrorBody::new(
                    ErrorCode::RateLimited,
                    format!("at most one update every {interval} ms; try again in {ms} ms"),
                ));
            }
            ShareMove::Ended => {
                crate::metrics::location_update("ended");
                return Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    "this live share has ended",
                ));
            }
            ShareMove::NotFound => {
                crate::metrics::location_update("not_found");
                return Err(ErrorBody::new(
                    ErrorCode::NotFound,
                    "no such live share of yours",
                ));
            }
        };
        crate::metrics::location_update("ok");
        let payload = json!({
            "share_id": s.id, "room_id": s.room_id, "user_id": s.user_id, "lat": s.lat,
            "lon": s.lon, "accuracy_m": s.accuracy_m, "heading": s.heading, "at": s.updated_at,
        });
        let mut members = self.members(&s.room_id).await?;
        if !members.iter().any(|m| m == user_id) {
            // Left the room since: the share ends with the membership.
            if self.store.end_share(&s.id, "stopped", to.at).await? {
                self.announce_end(&s, "stopped").await;
            }
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "you are not a member of this room",
            ));
        }
        // Whom the sharer blocked do not see them move (and those who blocked the sharer are
        // left out by the fan-out, as for every event).
        let blocked = self.store.blocked_by(user_id).await?;
        if !blocked.is_empty() {
            members.retain(|m| !blocked.contains(m));
        }
        self.tell_room(
            &s.room_id,
            &members,
            ev::LOCATION_UPDATED,
            &payload,
            user_id,
        );
        Ok(payload)
    }

    /// Ends every share past its end at `now` that is this node's to end — placed here by the
    /// live set, or late by [`TAKEOVER_MS`] — and answers how many this node ended. A share that
    /// cannot be ended now (the store busy) is left to the next round; the others go on.
    pub async fn sweep_once(&self, now: i64) -> Result<usize, ErrorBody> {
        let mut ended = 0;
        for s in self.store.due_shares(now, SWEEP_BATCH).await? {
            let mine = self.cluster.as_ref().is_none_or(|c| c.places_here(&s.id));
            if !mine && now < s.live_until + TAKEOVER_MS {
                continue;
            }
            match self.store.end_share(&s.id, "expired", s.live_until).await {
                Ok(true) => {
                    self.announce_end(&s, "expired").await;
                    ended += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(share = %s.id, error = %e.message, "cannot end an expired live share yet")
                }
            }
        }
        Ok(ended)
    }

    /// Runs the sweeper: live shares ended at `live_until` (every `sweep_ms`), expired "nearby"
    /// positions and history past its retention dropped (every minute).
    pub fn spawn_sweeper(self: Arc<Self>) {
        let every = Duration::from_millis(self.config.sweep_ms.max(50));
        actix_rt::spawn(async move {
            let mut last_purge: Option<std::time::Instant> = None;
            loop {
                let now = dovie_actors::now_ms();
                if let Err(e) = self.sweep_once(now).await {
                    tracing::warn!(error = %e.message, "cannot end expired live shares");
                }
                if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                    last_purge = Some(std::time::Instant::now());
                    if let Err(e) = self.nearby.purge(now).await {
                        tracing::warn!(error = %e.message, "cannot drop expired nearby positions");
                    }
                    if let Err(e) = self.store.purge_history(now - self.history_ms()).await {
                        tracing::warn!(error = %e.message, "cannot drop old location history");
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Publishes the user's "nearby" cell (the cell of the position, never the position).
    pub async fn set_nearby(
        &self,
        user_id: &str,
        lat: f64,
        lon: f64,
        now: i64,
    ) -> Result<NearbyPosition, ErrorBody> {
        let (clat, clon) = cells::cell_centre(lat, lon);
        let p = NearbyPosition {
            user_id: user_id.to_string(),
            lat: clat,
            lon: clon,
            updated_at: now,
            expires_at: now + self.config.nearby_ttl_secs as i64 * 1000,
        };
        self.nearby.put(&p).await?;
        Ok(p)
    }

    /// Location rooms whose place is within `radius_m` of the point, nearest first, at most
    /// `limit`, with their distances (ring by ring: [`nearby::nearest`]).
    pub async fn rooms_near(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        limit: usize,
    ) -> Result<Vec<(crate::store::LocationRoom, f64)>, ErrorBody> {
        let store = &self.store;
        let fetch = |boxes: Vec<crate::store::GeoBox>| async move {
            store.location_rooms_in(&boxes, NEARBY_CANDIDATES).await
        };
        nearby::nearest(
            (lat, lon),
            radius_m,
            limit,
            fetch,
            |r: &crate::store::LocationRoom| (r.lat, r.lon),
        )
        .await
    }

    /// Marks a message that asks where someone is.
    pub fn prepare(&self, draft: &mut Draft) {
        if draft.location.is_none() && suggest::asks_location(&draft.content).is_some() {
            draft.suggest_location = true;
        }
    }

    /// After a message that asks where someone is: its room's other members get
    /// `location_suggestion`.
    pub async fn suggest(&self, m: &Message) {
        match self.members(&m.room_id).await {
            Ok(members) => {
                let others: Vec<String> =
                    members.into_iter().filter(|u| *u != m.sender_id).collect();
                let payload = json!({ "room_id": m.room_id, "message_id": m.id });
                self.tell_room(
                    &m.room_id,
                    &others,
                    ev::LOCATION_SUGGESTION,
                    &payload,
                    &m.sender_id,
                );
            }
            Err(e) => {
                tracing::warn!(message = %m.id, error = %e.message, "cannot suggest sharing a location")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked() {
        assert!(check_position(90.0, 180.0).is_ok());
        assert!(check_position(f64::NAN, 0.0).is_err());
        assert!(check_position(0.0, -180.5).is_err());
        assert!(check_extras(Some(0.0), Some(360.0)).is_ok());
        assert!(check_extras(Some(-1.0), None).is_err());
        assert!(check_extras(None, Some(f64::INFINITY)).is_err());
        assert_eq!(check_label(Some("  ".into())).unwrap(), None);
        assert!(check_label(Some("x".repeat(201))).is_err());
        assert_eq!(search_radius(None).unwrap(), DEFAULT_SEARCH_RADIUS_M);
        assert!(search_radius(Some(50_000.0)).is_ok());
        assert!(search_radius(Some(50_001.0)).is_err());
        assert!(search_radius(Some(0.0)).is_err());
    }
}
