//! Where "nearby" positions are searched: the store's spatial index (an R*Tree on the embedded
//! store, tiles on CQL) on one node, or Redis GEO in a cluster (`GEOSEARCH`, nearest first),
//! with a sorted set of expiry times beside it, since GEO members cannot expire one by one.
//! The store keeps every position either way: it answers "am I opted in" and "when did I last
//! move" on every node, and is what a restarted Redis is refilled from.

use crate::cluster::RedisConn;
use crate::store::{GeoBox, NearbyPosition, SharedStore, StoreResult};

use super::cells;

/// Both keys share one hash slot (`{…}`), so each pipeline stays on one Redis Cluster node.
const GEO_KEY: &str = "{dovie:nearby}:geo";
const EXPIRY_KEY: &str = "{dovie:nearby}:exp";
/// The rings a store search widens through, metres (the asked radius ends it).
const RINGS_M: [f64; 5] = [1_000.0, 2_500.0, 5_000.0, 10_000.0, 25_000.0];

/// The nearest `limit` of what `fetch` finds within `radius_m` of `from`, nearest first, with
/// their distances. An index that cannot order by distance is asked ring by ring ([`RINGS_M`],
/// up to the radius): once a ring holds `limit`, the nearest `limit` are all in it, so a search
/// in a dense city reads a few hundred rows, not every one within 50 km.
pub async fn nearest<T, F, Fut>(
    from: (f64, f64),
    radius_m: f64,
    limit: usize,
    fetch: F,
    place: impl Fn(&T) -> (f64, f64),
) -> StoreResult<Vec<(T, f64)>>
where
    F: Fn(Vec<GeoBox>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<T>>>,
{
    let rings = RINGS_M.iter().copied().filter(|r| *r < radius_m);
    for ring in rings.chain([radius_m]) {
        let mut near: Vec<(T, f64)> = fetch(cells::boxes_around(from.0, from.1, ring))
            .await?
            .into_iter()
            .map(|t| {
                let (lat, lon) = place(&t);
                let d = cells::distance_m(from.0, from.1, lat, lon);
                (t, d)
            })
            .filter(|(_, d)| *d <= ring)
            .collect();
        if near.len() >= limit || ring >= radius_m {
            near.sort_by(|a, b| a.1.total_cmp(&b.1));
            near.truncate(limit);
            return Ok(near);
        }
    }
    Ok(Vec::new())
}

/// The `count` nearest positions within the radius, nearest first, with those expired left out;
/// and how many Redis found before that.
async fn redis_search(
    r: &RedisConn,
    lat: f64,
    lon: f64,
    radius_m: f64,
    now: i64,
    count: usize,
) -> StoreResult<(Vec<(NearbyPosition, f64)>, usize)> {
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
        .arg(count)
        .arg("WITHCOORD");
    let (hits,): (Vec<(String, (f64, f64))>,) = r.query(&pipe).await.map_err(redis_error)?;
    if hits.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut pipe = redis::pipe();
    let cmd = pipe.cmd("ZMSCORE").arg(EXPIRY_KEY);
    for (user, _) in &hits {
        cmd.arg(user);
    }
    let (expiries,): (Vec<Option<f64>>,) = r.query(&pipe).await.map_err(redis_error)?;
    let found = hits.len();
    let near = hits
        .into_iter()
        .zip(expiries)
        .filter_map(|((user_id, (plon, plat)), exp)| {
            let exp = exp.map(|e| e as i64).filter(|e| *e > now)?;
            let p = NearbyPosition {
                user_id,
                lat: plat,
                lon: plon,
                updated_at: 0,
                expires_at: exp,
            };
            Some((p, cells::distance_m(lat, lon, plat, plon)))
        })
        .collect();
    Ok((near, found))
}

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

    /// Where a user searches from: their position if opted in and not expired at `now` (its
    /// `updated_at` only from the store). With Redis, read from Redis, the store's copy only when
    /// Redis has none.
    pub async fn position(&self, user_id: &str, now: i64) -> StoreResult<Option<NearbyPosition>> {
        if let NearbyIndex::Redis(_, r) = self {
            let mut pipe = redis::pipe();
            pipe.cmd("GEOPOS")
                .arg(GEO_KEY)
                .arg(user_id)
                .cmd("ZSCORE")
                .arg(EXPIRY_KEY)
                .arg(user_id);
            let (pos, exp): (Vec<Option<(f64, f64)>>, Option<f64>) =
                r.query(&pipe).await.map_err(redis_error)?;
            if let (Some(Some((lon, lat))), Some(exp)) = (pos.into_iter().next(), exp) {
                let expires_at = exp as i64;
                return Ok((expires_at > now).then(|| NearbyPosition {
                    user_id: user_id.to_string(),
                    lat,
                    lon,
                    updated_at: 0,
                    expires_at,
                }));
            }
        }
        self.store().nearby_position(user_id, now).await
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
    /// `limit`; each with its distance in metres. The store's index is read by [`nearest`].
    /// Redis answers nearest first itself; it is asked for `limit` at a time, more only when
    /// expired positions were among them.
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
                let fetch = |boxes: Vec<GeoBox>| async move {
                    store.nearby_in(&boxes, now, super::NEARBY_CANDIDATES).await
                };
                nearest((lat, lon), radius_m, limit, fetch, |p: &NearbyPosition| {
                    (p.lat, p.lon)
                })
                .await
            }
            NearbyIndex::Redis(_, r) => {
                // GEOSEARCH reads every member within the radius before it sorts and counts
                // (2.3 ms for 5 km of a dense city): rings here too.
                let rings = RINGS_M.iter().copied().filter(|ring| *ring < radius_m);
                for ring in rings.chain([radius_m]) {
                    let mut count = limit.max(1);
                    loop {
                        let (near, hits) = redis_search(r, lat, lon, ring, now, count).await?;
                        // This ring holds no more (or no more may be read).
                        let spent = hits < count || count >= super::NEARBY_CANDIDATES;
                        if near.len() >= limit || (spent && ring >= radius_m) {
                            let mut near = near;
                            near.truncate(limit);
                            return Ok(near);
                        }
                        if spent {
                            break;
                        }
                        count = (count * 4).min(super::NEARBY_CANDIDATES);
                    }
                }
                Ok(Vec::new())
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
