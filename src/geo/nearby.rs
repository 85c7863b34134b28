//! Where "nearby" positions are searched: the store's spatial index (an R*Tree on the embedded
//! store, tiles on CQL) on one node, or Redis GEO in a cluster (`GEOSEARCH`, nearest first),
//! with a sorted set of expiry times beside it, since GEO members cannot expire one by one.
//! The store keeps every position either way: it answers "am I opted in" and "when did I last
//! move" on every node, and is what a restarted Redis is refilled from.

use crate::cluster::RedisConn;
use crate::store::{NearbyPosition, SharedStore, StoreResult};

use super::cells;

/// Both keys share one hash slot (`{…}`), so each pipeline stays on one Redis Cluster node.
const GEO_KEY: &str = "{dovie:nearby}:geo";
const EXPIRY_KEY: &str = "{dovie:nearby}:exp";

pub enum NearbyIndex {
    Store(SharedStore),
    Redis(SharedStore, RedisConn),
}

fn redis_error(e: redis::RedisError) -> dovie_protocol::error::ErrorBody {
    crate::store::unavailable_from("redis", e)
}

impl NearbyIndex {
    fn store(&self) -> &SharedStore {
        match self {
            NearbyIndex::Store(s) | NearbyIndex::Redis(s, _) => s,
        }
    }

    /// Sets a user's position (a cell centre).
    pub async fn put(&self, p: &NearbyPosition) -> StoreResult<()> {
        self.store().set_nearby(p).await?;
        if let NearbyIndex::Redis(_, r) = self {
            let mut pipe = redis::pipe();
            pipe.cmd("GEOADD")
                .arg(GEO_KEY)
                .arg(p.lon)
                .arg(p.lat)
                .arg(&p.user_id)
                .ignore()
                .cmd("ZADD")
                .arg(EXPIRY_KEY)
                .arg(p.expires_at)
                .arg(&p.user_id)
                .ignore();
            r.query::<()>(&pipe).await.map_err(redis_error)?;
        }
        Ok(())
    }

    /// Opts a user out; answers whether they were in.
    pub async fn remove(&self, user_id: &str) -> StoreResult<bool> {
        if let NearbyIndex::Redis(_, r) = self {
            let mut pipe = redis::pipe();
            pipe.cmd("ZREM")
                .arg(GEO_KEY)
                .arg(user_id)
                .ignore()
                .cmd("ZREM")
                .arg(EXPIRY_KEY)
                .arg(user_id)
                .ignore();
            r.query::<()>(&pipe).await.map_err(redis_error)?;
        }
        self.store().remove_nearby(user_id).await
    }

    /// Positions within `radius_m` of the point, not expired at `now`, nearest first, at most
    /// `limit`; each with its distance in metres.
    pub async fn around(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<(NearbyPosition, f64)>> {
        match self {
            NearbyIndex::Store(store) => {
                let boxes = cells::boxes_around(lat, lon, radius_m);
                let found = store
                    .nearby_in(&boxes, now, super::NEARBY_CANDIDATES)
                    .await?;
                let mut near: Vec<(NearbyPosition, f64)> = found
                    .into_iter()
                    .map(|p| {
                        let d = cells::distance_m(lat, lon, p.lat, p.lon);
                        (p, d)
                    })
                    .filter(|(_, d)| *d <= radius_m)
                    .collect();
                near.sort_by(|a, b| a.1.total_cmp(&b.1));
                near.truncate(limit);
                Ok(near)
            }
            NearbyIndex::Redis(_, r) => {
                let mut pipe = redis::pipe();
                pipe.cmd("GEOSEARCH")
                    .arg(GEO_KEY)
                    .arg("FROMLONLAT")
                    .arg(lon)
                    .arg(lat)
                    .arg("BYRADIUS")
                    .arg(radius_m)
                    .arg("m")
                    .arg("ASC")
                    .arg("COUNT")
                    .arg(super::NEARBY_CANDIDATES)
                    .arg("WITHCOORD");
                let (hits,): (Vec<(String, (f64, f64))>,) =
                    r.query(&pipe).await.map_err(redis_error)?;
                if hits.is_empty() {
                    return Ok(Vec::new());
                }
                let mut pipe = redis::pipe();
                let cmd = pipe.cmd("ZMSCORE").arg(EXPIRY_KEY);
                for (user, _) in &hits {
                    cmd.arg(user);
                }
                let (expiries,): (Vec<Option<f64>>,) = r.query(&pipe).await.map_err(redis_error)?;
                let mut near = Vec::new();
                for ((user_id, (plon, plat)), exp) in hits.into_iter().zip(expiries) {
                    let Some(exp) = exp.map(|e| e as i64).filter(|e| *e > now) else {
                        continue;
                    };
                    let d = cells::distance_m(lat, lon, plat, plon);
                    let p = NearbyPosition {
                        user_id,
                        lat: plat,
                        lon: plon,
                        updated_at: 0,
                        expires_at: exp,
                    };
                    near.push((p, d));
                    if near.len() == limit {
                        break;
                    }
                }
                Ok(near)
            }
        }
    }

    /// Drops positions expired at `now`; answers how many.
    pub async fn purge(&self, now: i64) -> StoreResult<u64> {
        let mut n = self.store().purge_nearby(now).await?;
        if let NearbyIndex::Redis(_, r) = self {
            let mut pipe = redis::pipe();
            pipe.cmd("ZRANGEBYSCORE")
                .arg(EXPIRY_KEY)
                .arg("-inf")
                .arg(now)
                .arg("LIMIT")
                .arg(0)
                .arg(10_000);
            let (gone,): (Vec<String>,) = r.query(&pipe).await.map_err(redis_error)?;
            if !gone.is_empty() {
                let mut pipe = redis::pipe();
                pipe.cmd("ZREM").arg(GEO_KEY).arg(&gone).ignore();
                pipe.cmd("ZREM").arg(EXPIRY_KEY).arg(&gone).ignore();
                r.query::<()>(&pipe).await.map_err(redis_error)?;
                n = n.max(gone.len() as u64);
            }
        }
        Ok(n)
    }
}
