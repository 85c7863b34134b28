//! Business in the embedded store: `businesses` with `business_name_prefixes`,
//! `business_connections` (a partial unique index keeps one open request or connection per
//! pair), `business_verifications`, `company_channels`, the analytics counters
//! (`business_metrics`, `post_views`).

use super::*;

const BUSINESS_COLS: &str = "id, owner_id, name, category, description, website, email, phone, \
                             address, hours, admins, verified, created_at, updated_at";
const CONNECTION_COLS: &str = "id, from_id, to_id, status, created_at, decided_at";
const VERIFICATION_COLS: &str = "id, business_id, requested_by, documents, note, status, reason, \
                                 decided_by, created_at, decided_at";
const CHANNEL_COLS: &str = "id, room_id, business_id, name, description, created_at";

fn business(r: &Row) -> rusqlite::Result<BusinessRecord> {
    let admins: String = r.get(10)?;
    Ok(BusinessRecord {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        name: r.get(2)?,
        category: r.get(3)?,
        description: r.get(4)?,
        website: r.get(5)?,
        email: r.get(6)?,
        phone: r.get(7)?,
        address: r.get(8)?,
        hours: r.get(9)?,
        admins: serde_json::from_str(&admins).unwrap_or_default(),
        verified: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

fn connection(r: &Row) -> rusqlite::Result<ConnectionRecord> {
    Ok(ConnectionRecord {
        id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
        decided_at: r.get(5)?,
    })
}

fn verification(r: &Row) -> rusqlite::Result<VerificationRecord> {
    let documents: String = r.get(3)?;
    Ok(VerificationRecord {
        id: r.get(0)?,
        business_id: r.get(1)?,
        requested_by: r.get(2)?,
        documents: serde_json::from_str(&documents).unwrap_or_default(),
        note: r.get(4)?,
        status: r.get(5)?,
        reason: r.get(6)?,
        decided_by: r.get(7)?,
        created_at: r.get(8)?,
        decided_at: r.get(9)?,
    })
}

fn channel(r: &Row) -> rusqlite::Result<ChannelRecord> {
    Ok(ChannelRecord {
        id: r.get(0)?,
        room_id: r.get(1)?,
        business_id: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn stored_business(c: &Connection, id: &str) -> StoreResult<Option<BusinessRecord>> {
    let mut st = db(c.prepare_cached(&format!(
        "SELECT {BUSINESS_COLS} FROM businesses WHERE id = ?1"
    )))?;
    db(st.query_row([id], business).optional())
}

/// Moves a business's name-index rows from `before`'s name to `after`'s.
fn reindex(c: &Connection, id: &str, before: Option<&str>, after: &str) -> StoreResult<()> {
    let old = before
        .map(crate::store::text::name_prefixes)
        .unwrap_or_default();
    let new = crate::store::text::name_prefixes(after);
    let mut del = db(c.prepare_cached(
        "DELETE FROM business_name_prefixes WHERE prefix = ?1 AND business_id = ?2",
    ))?;
    for p in old.difference(&new) {
        db(del.execute(params![p, id]))?;
    }
    let mut ins = db(c.prepare_cached(
        "INSERT INTO business_name_prefixes (prefix, business_id) VALUES (?1, ?2) \
         ON CONFLICT DO NOTHING",
    ))?;
    for p in new.difference(&old) {
        db(ins.execute(params![p, id]))?;
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The key one pair of businesses shares, whichever asked.
fn pair_of(a: &str, b: &str) -> String {
    if a < b {
        format!("{a}:{b}")
    } else {
        format!("{b}:{a}")
    }
}

#[async_trait]
impl BusinessStore for SqliteStore {
    async fn create_business(&self, b: &BusinessRecord) -> StoreResult<()> {
        let b = b.clone();
        self.write(move |c| {
            db(c.execute(
                &format!(
                    "INSERT INTO businesses ({BUSINESS_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                ),
                params![
                    b.id,
                    b.owner_id,
                    b.name,
                    b.category,
                    b.description,
                    b.website,
                    b.email,
                    b.phone,
                    b.address,
                    b.hours,
                    json(&b.admins),
                    b.verified,
                    b.created_at,
                    b.updated_at
                ],
            ))?;
            reindex(c, &b.id, None, &b.name)
        })
        .await
    }

    async fn business(&self, id: &str) -> StoreResult<Option<BusinessRecord>> {
        let id = id.to_string();
        self.read(move |c| stored_business(c, &id)).await
    }

    async fn update_business(&self, b: &BusinessRecord) -> StoreResult<()> {
        let b = b.clone();
        self.write(move |c| {
            let Some(before) = stored_business(c, &b.id)? else {
                return Err(not_found("business"));
            };
            db(c.execute(
                "UPDATE businesses SET name = ?2, category = ?3, description = ?4, website = ?5, \
                 email = ?6, phone = ?7, address = ?8, hours = ?9, admins = ?10, verified = ?11, \
                 updated_at = ?12 WHERE id = ?1",
                params![
                    b.id,
                    b.name,
                    b.category,
                    b.description,
                    b.website,
                    b.email,
                    b.phone,
                    b.address,
                    b.hours,
                    json(&b.admins),
                    b.verified,
                    b.updated_at
                ],
            ))?;
            reindex(c, &b.id, Some(&before.name), &b.name)
        })
        .await
    }

    async fn search_businesses(
        &self,
        prefix: Option<&str>,
        category: Option<&str>,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<BusinessRecord>> {
        let (prefix, category, after) = (
            prefix.map(String::from),
            category.map(String::from),
            after.to_string(),
        );
        self.read(move |c| {
            let cols = BUSINESS_COLS
                .split(", ")
                .map(|col| format!("b.{}", col.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = match prefix {
                Some(_) => format!(
                    "SELECT {cols} FROM business_name_prefixes p JOIN businesses b \
                     ON b.id = p.business_id WHERE p.prefix = ?1 \
                     AND (?2 IS NULL OR b.category = ?2) AND p.business_id > ?3 \
                     ORDER BY p.business_id LIMIT ?4"
                ),
                None => format!(
                    "SELECT {cols} FROM businesses b WHERE ?1 IS NULL \
                     AND (?2 IS NULL OR b.category = ?2) AND b.id > ?3 ORDER BY b.id LIMIT ?4"
                ),
            };
            let mut st = db(c.prepare_cached(&sql))?;
            let rows = db(st.query_map(params![prefix, category, after, limit as i64], business))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn create_connection(&self, r: &ConnectionRecord) -> StoreResult<()> {
        let r = r.clone();
        self.write(move |c| {
            let open = db(c
                .prepare_cached(
                    "SELECT 1 FROM business_connections WHERE pair = ?1 AND status != 'declined'",
                )
                .and_then(|mut st| st.exists([pair_of(&r.from, &r.to)])))?;
            if open {
                return Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    "these businesses are connected or have a request pending",
                ));
            }
            db(c.execute(
                "INSERT INTO business_connections \
                 (id, from_id, to_id, pair, status, created_at, decided_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.id,
                    r.from,
                    r.to,
                    pair_of(&r.from, &r.to),
                    r.status,
                    r.created_at,
                    r.decided_at
                ],
            ))?;
            Ok(())
        })
        .await
    }

    async fn connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {CONNECTION_COLS} FROM business_connections WHERE id = ?1"
            )))?;
            db(st.query_row([&id], connection).optional())
        })
        .await
    }

    async fn decide_connection(&self, id: &str, status: &str, at: i64) -> StoreResult<bool> {
        let (id, status) = (id.to_string(), status.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "UPDATE business_connections SET status = ?2, decided_at = ?3 \
                 WHERE id = ?1 AND status = 'pending'",
                params![id, status, at],
            ))? == 1)
        })
        .await
    }

    async fn connections_of(
        &self,
        business_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let id = business_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {CONNECTION_COLS} FROM business_connections WHERE from_id = ?1 \
                 UNION ALL SELECT {CONNECTION_COLS} FROM business_connections WHERE to_id = ?1 \
                 ORDER BY created_at DESC, id DESC LIMIT ?2"
            )))?;
            let rows = db(st.query_map(params![id, limit as i64], connection))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn create_business_verification(&self, v: &VerificationRecord) -> StoreResult<()> {
        let v = v.clone();
        self.write(move |c| {
            db(c.execute(
                &format!(
                    "INSERT INTO business_verifications ({VERIFICATION_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    v.id,
                    v.business_id,
                    v.requested_by,
                    json(&v.documents),
                    v.note,
                    v.status,
                    v.reason,
                    v.decided_by,
                    v.created_at,
                    v.decided_at
                ],
            ))?;
            Ok(())
        })
        .await
    }

    async fn business_verification(&self, id: &str) -> StoreResult<Option<VerificationRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {VERIFICATION_COLS} FROM business_verifications WHERE id = ?1"
            )))?;
            db(st.query_row([&id], verification).optional())
        })
        .await
    }

    async fn decide_business_verification(&self, v: &VerificationRecord) -> StoreResult<bool> {
        let v = v.clone();
        self.write(move |c| {
            let decided = db(c.execute(
                "UPDATE business_verifications SET status = ?2, reason = ?3, decided_by = ?4, \
                 decided_at = ?5 WHERE id = ?1 AND status = 'pending'",
                params![v.id, v.status, v.reason, v.decided_by, v.decided_at],
            ))? == 1;
            if decided && v.status == "approved" {
                db(c.execute(
                    "UPDATE businesses SET verified = 1, updated_at = ?2 WHERE id = ?1",
                    params![v.business_id, v.decided_at],
                ))?;
            }
            Ok(decided)
        })
        .await
    }

    async fn business_verifications(
        &self,
        status: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<VerificationRecord>> {
        let status = status.to_string();
        let (at, id) = after.unwrap_or((i64::MIN, String::new()));
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {VERIFICATION_COLS} FROM business_verifications WHERE status = ?1 \
                 AND (created_at > ?2 OR (created_at = ?2 AND id > ?3)) \
                 ORDER BY created_at, id LIMIT ?4"
            )))?;
            let rows = db(st.query_map(params![status, at, id, limit as i64], verification))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn verifications_of(&self, business_id: &str) -> StoreResult<Vec<VerificationRecord>> {
        let id = business_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {VERIFICATION_COLS} FROM business_verifications WHERE business_id = ?1 \
                 ORDER BY created_at DESC, id DESC"
            )))?;
            let rows = db(st.query_map([&id], verification))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn create_channel(&self, ch: &ChannelRecord) -> StoreResult<()> {
        let ch = ch.clone();
        self.write(move |c| {
            db(c.execute(
                &format!(
                    "INSERT INTO company_channels ({CHANNEL_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![
                    ch.id,
                    ch.room_id,
                    ch.business_id,
                    ch.name,
                    ch.description,
                    ch.created_at
                ],
            ))?;
            Ok(())
        })
        .await
    }

    async fn channel(&self, id: &str) -> StoreResult<Option<ChannelRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {CHANNEL_COLS} FROM company_channels WHERE id = ?1"
            )))?;
            db(st.query_row([&id], channel).optional())
        })
        .await
    }

    async fn channels_of(&self, business_id: &str) -> StoreResult<Vec<ChannelRecord>> {
        let id = business_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {CHANNEL_COLS} FROM company_channels WHERE business_id = ?1 \
                 ORDER BY created_at, id"
            )))?;
            let rows = db(st.query_map([&id], channel))?;
            rows.map(db).collect()
        })
        .await
    }
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn count_metric(
        &self,
        business_id: &str,
        day: i64,
        metric: Metric,
        delta: i64,
    ) -> StoreResult<()> {
        let id = business_id.to_string();
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO business_metrics (business_id, day, metric, value) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (business_id, day, metric) DO UPDATE SET value = value + ?4",
                params![id, day, metric.as_str(), delta],
            ))?;
            Ok(())
        })
        .await
    }

    async fn first_view(&self, post_id: &str, day: i64, viewer: &str) -> StoreResult<bool> {
        let (post, viewer) = (post_id.to_string(), viewer.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "INSERT INTO post_views (post_id, day, viewer_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                params![post, day, viewer],
            ))? == 1)
        })
        .await
    }

    async fn metric_days(
        &self,
        business_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, Metric, i64)>> {
        let id = business_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT day, metric, value FROM business_metrics \
                 WHERE business_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day",
            ))?;
            let rows = db(st.query_map(params![id, from, to], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            }))?;
            let mut out = Vec::new();
            for r in rows {
                let (day, metric, value) = db(r)?;
                if let Some(m) = Metric::parse(&metric) {
                    out.push((day, m, value));
                }
            }
            Ok(out)
        })
        .await
    }
}
