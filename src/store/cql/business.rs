//! Business in the cluster store: `businesses` with `businesses_by_category` and
//! `business_name_prefixes`, connection requests (`business_connections`, the pair claimed in
//! `connection_pairs` by LWT, listed under both businesses in `connections_by_business`),
//! verification requests (decided by LWT, listed by status and by business), company channels,
//! the analytics counters (`business_metrics`, `post_views` claimed by LWT).

use scylla::value::Counter;

use super::*;

/// A post's viewers of a day are kept this long (seconds): long enough for that day to end.
const VIEWS_TTL_SECS: i32 = 3 * 24 * 3600;

pub(super) struct BusinessStmts {
    insert_business: PreparedStatement,
    business_by_id: PreparedStatement,
    update_business: PreparedStatement,
    set_verified: PreparedStatement,
    insert_by_category: PreparedStatement,
    delete_by_category: PreparedStatement,
    by_category: PreparedStatement,
    insert_prefix: PreparedStatement,
    delete_prefix: PreparedStatement,
    by_prefix: PreparedStatement,
    all_after: PreparedStatement,
    all_first: PreparedStatement,
    claim_pair: PreparedStatement,
    release_pair: PreparedStatement,
    insert_connection: PreparedStatement,
    connection_by_id: PreparedStatement,
    decide_connection: PreparedStatement,
    list_connection: PreparedStatement,
    connections_of: PreparedStatement,
    insert_verification: PreparedStatement,
    verification_by_id: PreparedStatement,
    decide_verification: PreparedStatement,
    list_by_status: PreparedStatement,
    unlist_by_status: PreparedStatement,
    by_status: PreparedStatement,
    by_status_after: PreparedStatement,
    list_by_business: PreparedStatement,
    by_business: PreparedStatement,
    insert_channel: PreparedStatement,
    channel_by_id: PreparedStatement,
    list_channel: PreparedStatement,
    channels_of: PreparedStatement,
    count_metric: PreparedStatement,
    metric_days: PreparedStatement,
    claim_view: PreparedStatement,
}

const BUSINESS_COLS: &str = "id, owner_id, name, category, description, website, email, phone, \
                             address, hours, admins, verified, created_at, updated_at";
const VERIFICATION_COLS: &str = "id, business_id, requested_by, documents, note, status, reason, \
                                 decided_by, created_at, decided_at";

impl BusinessStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<BusinessStmts, String> {
        let p = |cql: String| prepare_statement(s, keyspace, cql);
        Ok(BusinessStmts {
            insert_business: p(format!("INSERT INTO businesses ({BUSINESS_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            business_by_id: p(format!("SELECT {BUSINESS_COLS} FROM businesses WHERE id = ?")).await?,
            update_business: p("UPDATE businesses SET name = ?, category = ?, description = ?, website = ?, email = ?, phone = ?, address = ?, hours = ?, admins = ?, verified = ?, updated_at = ? WHERE id = ?".into()).await?,
            set_verified: p("UPDATE businesses SET verified = ?, updated_at = ? WHERE id = ?".into()).await?,
            insert_by_category: p("INSERT INTO businesses_by_category (category, id) VALUES (?, ?)".into()).await?,
            delete_by_category: p("DELETE FROM businesses_by_category WHERE category = ? AND id = ?".into()).await?,
            by_category: p("SELECT id FROM businesses_by_category WHERE category = ? AND id > ? LIMIT ?".into()).await?,
            insert_prefix: p("INSERT INTO business_name_prefixes (prefix, business_id) VALUES (?, ?)".into()).await?,
            delete_prefix: p("DELETE FROM business_name_prefixes WHERE prefix = ? AND business_id = ?".into()).await?,
            by_prefix: p("SELECT business_id FROM business_name_prefixes WHERE prefix = ? AND business_id > ? LIMIT ?".into()).await?,
            all_after: p("SELECT id FROM businesses WHERE token(id) > token(?) LIMIT ?".into()).await?,
            all_first: p("SELECT id FROM businesses LIMIT ?".into()).await?,
            claim_pair: p("INSERT INTO connection_pairs (pair, connection_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            release_pair: p("DELETE FROM connection_pairs WHERE pair = ? IF connection_id = ?".into()).await?,
            insert_connection: p("INSERT INTO business_connections (id, from_id, to_id, status, created_at, decided_at) VALUES (?, ?, ?, ?, ?, ?)".into()).await?,
            connection_by_id: p("SELECT id, from_id, to_id, status, created_at, decided_at FROM business_connections WHERE id = ?".into()).await?,
            decide_connection: p("UPDATE business_connections SET status = ?, decided_at = ? WHERE id = ? IF status = 'pending'".into()).await?,
            list_connection: p("INSERT INTO connections_by_business (business_id, created_at, id) VALUES (?, ?, ?)".into()).await?,
            connections_of: p("SELECT id FROM connections_by_business WHERE business_id = ? LIMIT ?".into()).await?,
            insert_verification: p(format!("INSERT INTO business_verifications ({VERIFICATION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            verification_by_id: p(format!("SELECT {VERIFICATION_COLS} FROM business_verifications WHERE id = ?")).await?,
            decide_verification: p("UPDATE business_verifications SET status = ?, reason = ?, decided_by = ?, decided_at = ? WHERE id = ? IF status = 'pending'".into()).await?,
            list_by_status: p("INSERT INTO verifications_by_status (status, created_at, id) VALUES (?, ?, ?)".into()).await?,
            unlist_by_status: p("DELETE FROM verifications_by_status WHERE status = ? AND created_at = ? AND id = ?".into()).await?,
            by_status: p("SELECT id FROM verifications_by_status WHERE status = ? LIMIT ?".into()).await?,
            by_status_after: p("SELECT id FROM verifications_by_status WHERE status = ? AND (created_at, id) > (?, ?) LIMIT ?".into()).await?,
            list_by_business: p("INSERT INTO verifications_by_business (business_id, created_at, id) VALUES (?, ?, ?)".into()).await?,
            by_business: p("SELECT id FROM verifications_by_business WHERE business_id = ?".into()).await?,
            insert_channel: p("INSERT INTO company_channels (id, room_id, business_id, name, description, created_at) VALUES (?, ?, ?, ?, ?, ?)".into()).await?,
            channel_by_id: p("SELECT id, room_id, business_id, name, description, created_at FROM company_channels WHERE id = ?".into()).await?,
            list_channel: p("INSERT INTO channels_by_business (business_id, created_at, id) VALUES (?, ?, ?)".into()).await?,
            channels_of: p("SELECT id FROM channels_by_business WHERE business_id = ?".into()).await?,
            count_metric: p("UPDATE business_metrics SET value = value + ? WHERE business_id = ? AND day = ? AND metric = ?".into()).await?,
            metric_days: p("SELECT day, metric, value FROM business_metrics WHERE business_id = ? AND day >= ? AND day <= ?".into()).await?,
            claim_view: p("INSERT INTO post_views (post_id, day, viewer_id) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?".into()).await?,
        })
    }
}

type BusinessRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<bool>,
    i64,
    i64,
);

fn business_of(r: BusinessRow) -> BusinessRecord {
    BusinessRecord {
        id: r.0,
        owner_id: r.1,
        name: r.2,
        category: r.3,
        description: r.4.unwrap_or_default(),
        website: r.5,
        email: r.6,
        phone: r.7,
        address: r.8,
        hours: r.9,
        admins: r.10.unwrap_or_default(),
        verified: r.11.unwrap_or(false),
        created_at: r.12,
        updated_at: r.13,
    }
}

type ConnectionRow = (String, String, String, String, i64, Option<i64>);

type VerificationRow = (
    String,
    String,
    String,
    Option<Vec<String>>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

fn verification_of(r: VerificationRow) -> VerificationRecord {
    VerificationRecord {
        id: r.0,
        business_id: r.1,
        requested_by: r.2,
        documents: r.3.unwrap_or_default(),
        note: r.4.unwrap_or_default(),
        status: r.5,
        reason: r.6,
        decided_by: r.7,
        created_at: r.8,
        decided_at: r.9,
    }
}

type ChannelRow = (String, String, String, String, Option<String>, i64);

/// The key one pair of businesses shares, whichever asked.
fn pair_of(a: &str, b: &str) -> String {
    if a < b {
        format!("{a}:{b}")
    } else {
        format!("{b}:{a}")
    }
}

impl ScyllaStore {
    /// The businesses `ids` names that exist, in that order.
    async fn businesses_by_ids(&self, ids: &[String]) -> StoreResult<Vec<BusinessRecord>> {
        Ok(try_join_all(ids.iter().map(|id| self.business(id)))
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Moves a business's name-index and category rows from `before` to `after`.
    async fn reindex_business(
        &self,
        before: Option<&BusinessRecord>,
        after: &BusinessRecord,
    ) -> StoreResult<()> {
        let st = &self.st.business;
        let old = before
            .map(|b| crate::store::text::name_prefixes(&b.name))
            .unwrap_or_default();
        let new = crate::store::text::name_prefixes(&after.name);
        try_join_all(
            old.difference(&new)
                .map(|p| self.write(&st.delete_prefix, (p, &after.id))),
        )
        .await?;
        try_join_all(
            new.difference(&old)
                .map(|p| self.write(&st.insert_prefix, (p, &after.id))),
        )
        .await?;
        if let Some(b) = before.filter(|b| b.category != after.category) {
            self.write(&st.delete_by_category, (&b.category, &b.id))
                .await?;
        }
        self.write(&st.insert_by_category, (&after.category, &after.id))
            .await
    }
}

#[async_trait]
impl BusinessStore for ScyllaStore {
    async fn create_business(&self, b: &BusinessRecord) -> StoreResult<()> {
        // Indexes first, the row last: a business is found only once complete (an index row
        // without its business is skipped by readers).
        self.reindex_business(None, b).await?;
        self.write(
            &self.st.business.insert_business,
            (
                &b.id,
                &b.owner_id,
                &b.name,
                &b.category,
                &b.description,
                &b.website,
                &b.email,
                &b.phone,
                &b.address,
                &b.hours,
                &b.admins,
                b.verified,
                b.created_at,
                b.updated_at,
            ),
        )
        .await
    }

    async fn business(&self, id: &str) -> StoreResult<Option<BusinessRecord>> {
        Ok(self
            .row::<BusinessRow>(&self.st.business.business_by_id, (id,))
            .await?
            .map(business_of))
    }

    async fn update_business(&self, b: &BusinessRecord) -> StoreResult<()> {
        let before = self
            .business(&b.id)
            .await?
            .ok_or_else(|| not_found("business"))?;
        self.reindex_business(Some(&before), b).await?;
        self.write(
            &self.st.business.update_business,
            (
                &b.name,
                &b.category,
                &b.description,
                &b.website,
                &b.email,
                &b.phone,
                &b.address,
                &b.hours,
                &b.admins,
                b.verified,
                b.updated_at,
                &b.id,
            ),
        )
        .await
    }

    async fn search_businesses(
        &self,
        prefix: Option<&str>,
        category: Option<&str>,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<BusinessRecord>> {
        let st = &self.st.business;
        let mut out = Vec::new();
        let mut cursor = after.to_string();
        let page = limit.clamp(1, 1000) as i32;
        // The index may hold a business renamed or recategorised a moment ago: each candidate
        // is checked against its row, and pages are read until `limit` are found.
        loop {
            let ids: Vec<String> = match (prefix, category) {
                (Some(p), _) => {
                    self.rows::<(String,)>(&st.by_prefix, (p, &cursor, page))
                        .await?
                }
                (None, Some(c)) => {
                    self.rows::<(String,)>(&st.by_category, (c, &cursor, page))
                        .await?
                }
                (None, None) if cursor.is_empty() => {
                    self.rows::<(String,)>(&st.all_first, (page,)).await?
                }
                (None, None) => {
                    self.rows::<(String,)>(&st.all_after, (&cursor, page))
                        .await?
                }
            }
            .into_iter()
            .map(|(id,)| id)
            .collect();
            let n = ids.len();
            if let Some(last) = ids.last() {
                cursor = last.clone();
            }
            for b in self.businesses_by_ids(&ids).await? {
                let named =
                    prefix.is_none_or(|p| crate::store::text::name_prefixes(&b.name).contains(p));
                let kind = category.is_none_or(|c| b.category == c);
                if named && kind && out.len() < limit {
                    out.push(b);
                }
            }
            if out.len() >= limit || n < page as usize {
                return Ok(out);
            }
        }
    }

    async fn create_connection(&self, c: &ConnectionRecord) -> StoreResult<()> {
        let st = &self.st.business;
        let pair = pair_of(&c.from, &c.to);
        if !self.lwt(&st.claim_pair, (&pair, &c.id)).await? {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "these businesses are connected or have a request pending",
            ));
        }
        self.write(
            &st.insert_connection,
            (&c.id, &c.from, &c.to, &c.status, c.created_at, c.decided_at),
        )
        .await?;
        for b in [&c.from, &c.to] {
            self.write(&st.list_connection, (b, c.created_at, &c.id))
                .await?;
        }
        Ok(())
    }

    async fn connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>> {
        Ok(self
            .row::<ConnectionRow>(&self.st.business.connection_by_id, (id,))
            .await?
            .map(|r| ConnectionRecord {
                id: r.0,
                from: r.1,
                to: r.2,
                status: r.3,
                created_at: r.4,
                decided_at: r.5,
            }))
    }

    async fn decide_connection(&self, id: &str, status: &str, at: i64) -> StoreResult<bool> {
        let st = &self.st.business;
        let Some(c) = self.connection(id).await? else {
            return Ok(false);
        };
        if !self.lwt(&st.decide_connection, (status, at, id)).await? {
            return Ok(false);
        }
        if status == "declined" {
            // The pair may ask again.
            self.lwt(&st.release_pair, (pair_of(&c.from, &c.to), id))
                .await?;
        }
        Ok(true)
    }

    async fn connections_of(
        &self,
        business_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let limit = limit.min(i32::MAX as usize) as i32;
        let ids = self
            .rows::<(String,)>(&self.st.business.connections_of, (business_id, limit))
            .await?;
        Ok(try_join_all(ids.iter().map(|(id,)| self.connection(id)))
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn create_business_verification(&self, v: &VerificationRecord) -> StoreResult<()> {
        let st = &self.st.business;
        self.write(
            &st.insert_verification,
            (
                &v.id,
                &v.business_id,
                &v.requested_by,
                &v.documents,
                &v.note,
                &v.status,
                &v.reason,
                &v.decided_by,
                v.created_at,
                v.decided_at,
            ),
        )
        .await?;
        self.write(&st.list_by_business, (&v.business_id, v.created_at, &v.id))
            .await?;
        self.write(&st.list_by_status, (&v.status, v.created_at, &v.id))
            .await
    }

    async fn business_verification(&self, id: &str) -> StoreResult<Option<VerificationRecord>> {
        Ok(self
            .row::<VerificationRow>(&self.st.business.verification_by_id, (id,))
            .await?
            .map(verification_of))
    }

    async fn decide_business_verification(&self, v: &VerificationRecord) -> StoreResult<bool> {
        let st = &self.st.business;
        if !self
            .lwt(
                &st.decide_verification,
                (&v.status, &v.reason, &v.decided_by, v.decided_at, &v.id),
            )
            .await?
        {
            return Ok(false);
        }
        self.write(&st.list_by_status, (&v.status, v.created_at, &v.id))
            .await?;
        self.write(&st.unlist_by_status, ("pending", v.created_at, &v.id))
            .await?;
        if v.status == "approved" {
            self.write(
                &st.set_verified,
                (true, v.decided_at.unwrap_or_default(), &v.business_id),
            )
            .await?;
        }
        Ok(true)
    }

    async fn business_verifications(
        &self,
        status: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<VerificationRecord>> {
        let st = &self.st.business;
        let limit = limit.min(i32::MAX as usize) as i32;
        let ids = match after {
            Some((at, id)) => {
                self.rows::<(String,)>(&st.by_status_after, (status, at, id, limit))
                    .await?
            }
            None => {
                self.rows::<(String,)>(&st.by_status, (status, limit))
                    .await?
            }
        };
        Ok(
            try_join_all(ids.iter().map(|(id,)| self.business_verification(id)))
                .await?
                .into_iter()
                .flatten()
                // A listing a decision is still moving is skipped.
                .filter(|v| v.status == status)
                .collect(),
        )
    }

    async fn verifications_of(&self, business_id: &str) -> StoreResult<Vec<VerificationRecord>> {
        let ids = self
            .rows::<(String,)>(&self.st.business.by_business, (business_id,))
            .await?;
        Ok(
            try_join_all(ids.iter().map(|(id,)| self.business_verification(id)))
                .await?
                .into_iter()
                .flatten()
                .collect(),
        )
    }

    async fn create_channel(&self, c: &ChannelRecord) -> StoreResult<()> {
        let st = &self.st.business;
        self.write(
            &st.insert_channel,
            (
                &c.id,
                &c.room_id,
                &c.business_id,
                &c.name,
                &c.description,
                c.created_at,
            ),
        )
        .await?;
        self.write(&st.list_channel, (&c.business_id, c.created_at, &c.id))
            .await
    }

    async fn channel(&self, id: &str) -> StoreResult<Option<ChannelRecord>> {
        Ok(self
            .row::<ChannelRow>(&self.st.business.channel_by_id, (id,))
            .await?
            .map(|r| ChannelRecord {
                id: r.0,
                room_id: r.1,
                business_id: r.2,
                name: r.3,
                description: r.4,
                created_at: r.5,
            }))
    }

    async fn channels_of(&self, business_id: &str) -> StoreResult<Vec<ChannelRecord>> {
        let ids = self
            .rows::<(String,)>(&self.st.business.channels_of, (business_id,))
            .await?;
        Ok(try_join_all(ids.iter().map(|(id,)| self.channel(id)))
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
}

#[async_trait]
impl AnalyticsStore for ScyllaStore {
    async fn count_metric(
        &self,
        business_id: &str,
        day: i64,
        metric: Metric,
        delta: i64,
    ) -> StoreResult<()> {
        self.write(
            &self.st.business.count_metric,
            (Counter(delta), business_id, day, metric.as_str()),
        )
        .await
    }

    async fn first_view(&self, post_id: &str, day: i64, viewer: &str) -> StoreResult<bool> {
        self.lwt(
            &self.st.business.claim_view,
            (post_id, day, viewer, VIEWS_TTL_SECS),
        )
        .await
    }

    async fn metric_days(
        &self,
        business_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, Metric, i64)>> {
        let rows = self
            .rows::<(i64, String, Option<Counter>)>(
                &self.st.business.metric_days,
                (business_id, from, to),
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(day, m, v)| Some((day, Metric::parse(&m)?, v.map_or(0, |c| c.0))))
            .collect())
    }
}
