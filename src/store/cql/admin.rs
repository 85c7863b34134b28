//! Administration in the cluster store: the audit log written whole into `audit_log` (by 30-day
//! period), `audit_by_actor`, `audit_by_action` and `audit_by_target` in one logged batch;
//! `suspensions` and `admins` (one small partition each); the listing of every account (token
//! order, or by id, email, phone and the name index, which holds every account); reports (the
//! row and its listings written first, then the reporter's open claim on the target taken by
//! LWT — a filer who loses it removes its own rows — released when the report is resolved).

use futures_util::StreamExt;

use super::users::{index_rows, to_user, UserRow};
use super::*;

/// An audit period's length: the whole log is partitioned by it.
const PERIOD_MS: i64 = 30 * 86_400_000;
/// How many periods (about ten years) a listing without an actor or target looks back through.
const PERIODS_LISTED: i64 = 120;
/// Rows read per page when entries are filtered on the server's side.
const AUDIT_PAGE: i32 = 500;
/// The one partition of `suspensions` and `admins`.
const BUCKET: i32 = 0;

const AUDIT_COLS: &str =
    "id, at, actor_id, action, target_type, target_id, target_label, ip, details";

type AuditRow = (
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn audit_of(r: AuditRow) -> AuditRecord {
    AuditRecord {
        id: r.0,
        at: r.1,
        actor_id: r.2,
        action: r.3,
        target_type: r.4,
        target_id: r.5,
        target_label: r.6,
        ip: r.7,
        details: r
            .8
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or(serde_json::Value::Null),
    }
}

fn period_of(at: i64) -> i32 {
    at.div_euclid(PERIOD_MS) as i32
}

pub(super) struct AdminStmts {
    insert_log: PreparedStatement,
    insert_by_actor: PreparedStatement,
    insert_by_action: PreparedStatement,
    insert_by_target: PreparedStatement,
    log_page: PreparedStatement,
    actor_page: PreparedStatement,
    action_page: PreparedStatement,
    target_page: PreparedStatement,
    put_suspension: PreparedStatement,
    lift_suspension: PreparedStatement,
    suspension: PreparedStatement,
    suspensions: PreparedStatement,
    pub(super) list_admin: PreparedStatement,
    pub(super) unlist_admin: PreparedStatement,
    count_admins: PreparedStatement,
    admin_ids: PreparedStatement,
    users_first: PreparedStatement,
    users_after: PreparedStatement,
    rooms_first: PreparedStatement,
    rooms_after: PreparedStatement,
    log_window: PreparedStatement,
    forget_log_ip: PreparedStatement,
    forget_actor_ip: PreparedStatement,
    forget_action_ip: PreparedStatement,
    forget_target_ip: PreparedStatement,
    insert_report: PreparedStatement,
    delete_report: PreparedStatement,
    report_by_id: PreparedStatement,
    reports_by_ids: PreparedStatement,
    claim_report: PreparedStatement,
    claimed_report: PreparedStatement,
    release_claim: PreparedStatement,
    list_report: PreparedStatement,
    unlist_report: PreparedStatement,
    reports_listed: PreparedStatement,
    list_report_target: PreparedStatement,
    unlist_report_target: PreparedStatement,
    reports_of_target: PreparedStatement,
    resolve_report: PreparedStatement,
}

const REPORT_COLS: &str = "id, reporter_id, target_type, target_id, reason, comment, snapshot, \
                           status, created_at, action, note, resolved_by, resolved_at";

type ReportRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn report_of(r: ReportRow) -> ReportRecord {
    ReportRecord {
        id: r.0,
        reporter_id: r.1,
        target_type: r.2,
        target_id: r.3,
        reason: r.4,
        comment: r.5,
        snapshot: r
            .6
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null),
        status: r.7,
        created_at: r.8,
        action: r.9,
        note: r.10,
        resolved_by: r.11,
        resolved_at: r.12,
    }
}

/// Tries to read the report another filer claimed before answering that it is missing (its
/// row is written before its claim, so it is there unless that filer's write failed).
const CLAIM_READS: usize = 3;

const USER_COLS: &str = "id, email, display_name, avatar_url, bio, created_at, role, phone, \
                         status_message, theme, locale, presence_visible, discoverable, time_zone";

impl AdminStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<AdminStmts, String> {
        let p = |cql: String| prepare_statement(s, keyspace, cql);
        Ok(AdminStmts {
            insert_log: p(format!("INSERT INTO audit_log (period, {AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            insert_by_actor: p(format!("INSERT INTO audit_by_actor ({AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            insert_by_action: p(format!("INSERT INTO audit_by_action (period, {AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            insert_by_target: p(format!("INSERT INTO audit_by_target ({AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            log_page: p(format!("SELECT {AUDIT_COLS} FROM audit_log WHERE period = ? AND (at, id) < (?, ?) LIMIT ?")).await?,
            actor_page: p(format!("SELECT {AUDIT_COLS} FROM audit_by_actor WHERE actor_id = ? AND (at, id) < (?, ?) LIMIT ?")).await?,
            action_page: p(format!("SELECT {AUDIT_COLS} FROM audit_by_action WHERE action = ? AND period = ? AND (at, id) < (?, ?) LIMIT ?")).await?,
            target_page: p(format!("SELECT {AUDIT_COLS} FROM audit_by_target WHERE target_type = ? AND target_id = ? AND (at, id) < (?, ?) LIMIT ?")).await?,
            put_suspension: p("INSERT INTO suspensions (bucket, user_id, reason, since, until, suspended_by) VALUES (?, ?, ?, ?, ?, ?)".into()).await?,
            lift_suspension: p("DELETE FROM suspensions WHERE bucket = ? AND user_id = ? IF EXISTS".into()).await?,
            suspension: p("SELECT user_id, reason, since, until, suspended_by FROM suspensions WHERE bucket = ? AND user_id = ?".into()).await?,
            suspensions: p("SELECT user_id, reason, since, until, suspended_by FROM suspensions WHERE bucket = ? AND user_id > ? LIMIT ?".into()).await?,
            list_admin: p(format!("INSERT INTO admins (bucket, user_id) VALUES ({BUCKET}, ?)")).await?,
            unlist_admin: p(format!("DELETE FROM admins WHERE bucket = {BUCKET} AND user_id = ?")).await?,
            count_admins: p("SELECT count(*) FROM admins WHERE bucket = ?".into()).await?,
            admin_ids: p("SELECT user_id FROM admins WHERE bucket = ?".into()).await?,
            users_first: p(format!("SELECT {USER_COLS} FROM users LIMIT ?")).await?,
            users_after: p(format!("SELECT {USER_COLS} FROM users WHERE token(id) > token(?) LIMIT ?")).await?,
            rooms_first: p("SELECT id FROM chat_rooms LIMIT ?".into()).await?,
            rooms_after: p("SELECT id FROM chat_rooms WHERE token(id) > token(?) LIMIT ?".into()).await?,
            log_window: p(format!("SELECT {AUDIT_COLS} FROM audit_log WHERE period = ? AND at >= ? AND at < ?")).await?,
            forget_log_ip: p("UPDATE audit_log SET ip = null WHERE period = ? AND at = ? AND id = ?".into()).await?,
            forget_actor_ip: p("UPDATE audit_by_actor SET ip = null WHERE actor_id = ? AND at = ? AND id = ?".into()).await?,
            forget_action_ip: p("UPDATE audit_by_action SET ip = null WHERE action = ? AND period = ? AND at = ? AND id = ?".into()).await?,
            forget_target_ip: p("UPDATE audit_by_target SET ip = null WHERE target_type = ? AND target_id = ? AND at = ? AND id = ?".into()).await?,
            insert_report: p(format!("INSERT INTO reports ({REPORT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            delete_report: p("DELETE FROM reports WHERE id = ?".into()).await?,
            report_by_id: p(format!("SELECT {REPORT_COLS} FROM reports WHERE id = ?")).await?,
            reports_by_ids: p(format!("SELECT {REPORT_COLS} FROM reports WHERE id IN ?")).await?,
            claim_report: p("INSERT INTO open_report_claims (reporter_id, target_type, target_id, report_id) VALUES (?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            claimed_report: p("SELECT report_id FROM open_report_claims WHERE reporter_id = ? AND target_type = ? AND target_id = ?".into()).await?,
            release_claim: p("DELETE FROM open_report_claims WHERE reporter_id = ? AND target_type = ? AND target_id = ? IF report_id = ?".into()).await?,
            list_report: p("INSERT INTO reports_by_status (status, created_at, id) VALUES (?, ?, ?)".into()).await?,
            unlist_report: p("DELETE FROM reports_by_status WHERE status = ? AND created_at = ? AND id = ?".into()).await?,
            reports_listed: p("SELECT id FROM reports_by_status WHERE status = ? AND (created_at, id) > (?, ?) LIMIT ?".into()).await?,
            list_report_target: p("INSERT INTO reports_by_target (target_type, target_id, id) VALUES (?, ?, ?)".into()).await?,
            unlist_report_target: p("DELETE FROM reports_by_target WHERE target_type = ? AND target_id = ? AND id = ?".into()).await?,
            reports_of_target: p("SELECT id FROM reports_by_target WHERE target_type = ? AND target_id = ?".into()).await?,
            resolve_report: p("UPDATE reports SET status = ?, action = ?, note = ?, resolved_by = ?, resolved_at = ? WHERE id = ? IF status = 'open'".into()).await?,
        })
    }
}

type SuspensionRow = (String, String, i64, Option<i64>, String);

fn suspension_of(r: SuspensionRow) -> Suspension {
    Suspension {
        user_id: r.0,
        reason: r.1,
        since: r.2,
        until: r.3,
        by: r.4,
    }
}

/// Run when the admin schema is applied: every existing account's name goes into the name
/// index (before, only discoverable ones were), and the admins are listed.
pub(super) async fn index_accounts(session: &Session) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("indexing accounts: {e}");
    let put_prefix = session
        .prepare("INSERT INTO user_name_prefixes (prefix, user_id) VALUES (?, ?)")
        .await
        .map_err(|e| err(&e))?;
    let list_admin = session
        .prepare(format!(
            "INSERT INTO admins (bucket, user_id) VALUES ({BUCKET}, ?)"
        ))
        .await
        .map_err(|e| err(&e))?;
    let mut users = session
        .query_iter(format!("SELECT {USER_COLS} FROM users"), &[])
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<UserRow>()
        .map_err(|e| err(&e))?;
    while let Some(row) = users.next().await {
        let u = to_user(row.map_err(|e| err(&e))?);
        if !u.discoverable {
            for p in index_rows(&u) {
                session
                    .execute_unpaged(&put_prefix, (p, &u.id))
                    .await
                    .map_err(|e| err(&e))?;
            }
        }
        if u.role == UserRole::Admin {
            session
                .execute_unpaged(&list_admin, (&u.id,))
                .await
                .map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

impl ScyllaStore {
    /// Writes one change to an audit entry's four copies (`statements`: log, by actor, by
    /// action, by target) in one logged batch.
    async fn audit_copies(
        &self,
        statements: [&PreparedStatement; 4],
        values: impl ::scylla::serialize::batch::BatchValues,
    ) -> StoreResult<()> {
        let mut batch = Batch::new(BatchType::Logged);
        batch.set_consistency(Consistency::Quorum);
        for s in statements {
            batch.append_statement(s.clone());
        }
        let _permit = self.writes.acquire().await.map_err(unavailable)?;
        self.session
            .batch(&batch, values)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Entries of one partition's pages (`page` reads a page strictly older than the cursor),
    /// kept when `keep` holds, until `limit` are found or the partition ends.
    async fn audit_scan<F, Fut>(
        &self,
        before: (i64, String),
        limit: usize,
        keep: impl Fn(&AuditRecord) -> bool,
        page: F,
    ) -> StoreResult<Vec<AuditRecord>>
    where
        F: Fn((i64, String)) -> Fut,
        Fut: std::future::Future<Output = StoreResult<Vec<AuditRow>>>,
    {
        let mut out = Vec::new();
        let mut cursor = before;
        loop {
            let rows = page(cursor.clone()).await?;
            let n = rows.len();
            for r in rows {
                let e = audit_of(r);
                cursor = (e.at, e.id.clone());
                if out.len() < limit && keep(&e) {
                    out.push(e);
                }
            }
            if out.len() >= limit || n < AUDIT_PAGE as usize {
                return Ok(out);
            }
        }
    }
}

#[async_trait]
impl AuditStore for ScyllaStore {
    async fn append_audit(&self, a: &AuditRecord) -> StoreResult<()> {
        let st = &self.st.admin;
        let details = a.details.to_string();
        let period = period_of(a.at);
        let row = (
            &a.id,
            a.at,
            &a.actor_id,
            &a.action,
            &a.target_type,
            &a.target_id,
            &a.target_label,
            &a.ip,
            &details,
        );
        let with_period = (
            period,
            &a.id,
            a.at,
            &a.actor_id,
            &a.action,
            &a.target_type,
            &a.target_id,
            &a.target_label,
            &a.ip,
            &details,
        );
        // An entry is in every listing or in none.
        self.audit_copies(
            [
                &st.insert_log,
                &st.insert_by_actor,
                &st.insert_by_action,
                &st.insert_by_target,
            ],
            (with_period, row, with_period, row),
        )
        .await
    }

    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        let st = &self.st.admin;
        let before = filter.before.clone().unwrap_or((i64::MAX, String::new()));
        let f = filter.clone();
        let keep = move |e: &AuditRecord| {
            f.actor_id.as_ref().is_none_or(|a| *a == e.actor_id)
                && f.action.as_ref().is_none_or(|a| *a == e.action)
                && f.target
                    .as_ref()
                    .is_none_or(|(t, id)| *t == e.target_type && *id == e.target_id)
        };
        if let Some(actor) = &filter.actor_id {
            return self
                .audit_scan(before, limit, keep, |(at, id)| {
                    self.rows::<AuditRow>(&st.actor_page, (actor, at, id, AUDIT_PAGE))
                })
                .await;
        }
        if let Some((kind, target)) = &filter.target {
            return self
                .audit_scan(before, limit, keep, |(at, id)| {
                    self.rows::<AuditRow>(&st.target_page, (kind, target, at, id, AUDIT_PAGE))
                })
                .await;
        }
        // By period, newest first, from the cursor's (or now's) back.
        let start = period_of(before.0.min(dovie_actors::now_ms() + PERIOD_MS));
        let mut out: Vec<AuditRecord> = Vec::new();
        let mut cursor = before;
        for period in (start as i64 - PERIODS_LISTED..=start as i64).rev() {
            let period = period as i32;
            let want = limit - out.len();
            let found = match &filter.action {
                Some(action) => {
                    self.audit_scan(cursor.clone(), want, &keep, |(at, id)| {
                        self.rows::<AuditRow>(&st.action_page, (action, period, at, id, AUDIT_PAGE))
                    })
                    .await?
                }
                None => {
                    self.audit_scan(cursor.clone(), want, &keep, |(at, id)| {
                        self.rows::<AuditRow>(&st.log_page, (period, at, id, AUDIT_PAGE))
                    })
                    .await?
                }
            };
            out.extend(found);
            if out.len() >= limit {
                break;
            }
            // Older periods hold only older entries: any cursor inside them is the same.
            cursor = (i64::MAX, String::new());
        }
        Ok(out)
    }

    async fn forget_audit_ips(&self, since: i64, before: i64) -> StoreResult<u64> {
        let st = &self.st.admin;
        let mut forgot = 0;
        for period in period_of(since)..=period_of(before.max(since)) {
            let rows = self
                .rows::<AuditRow>(&st.log_window, (period, since, before))
                .await?;
            for e in rows.into_iter().map(audit_of).filter(|e| e.ip.is_some()) {
                // The entry's four copies.
                self.audit_copies(
                    [
                        &st.forget_log_ip,
                        &st.forget_actor_ip,
                        &st.forget_action_ip,
                        &st.forget_target_ip,
                    ],
                    (
                        (period, e.at, &e.id),
                        (&e.actor_id, e.at, &e.id),
                        (&e.action, period, e.at, &e.id),
                        (&e.target_type, &e.target_id, e.at, &e.id),
                    ),
                )
                .await?;
                forgot += 1;
            }
        }
        Ok(forgot)
    }
}

#[async_trait]
impl AdminStore for ScyllaStore {
    async fn put_suspension(&self, s: &Suspension) -> StoreResult<()> {
        if self.user_by_id(&s.user_id).await?.is_none() {
            return Err(not_found("user"));
        }
        self.write(
            &self.st.admin.put_suspension,
            (BUCKET, &s.user_id, &s.reason, s.since, s.until, &s.by),
        )
        .await
    }

    async fn lift_suspension(&self, user_id: &str) -> StoreResult<bool> {
        self.lwt(&self.st.admin.lift_suspension, (BUCKET, user_id))
            .await
    }

    async fn suspension(&self, user_id: &str) -> StoreResult<Option<Suspension>> {
        Ok(self
            .row::<SuspensionRow>(&self.st.admin.suspension, (BUCKET, user_id))
            .await?
            .map(suspension_of))
    }

    async fn suspensions(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<Suspension>> {
        let limit = limit.min(i32::MAX as usize) as i32;
        Ok(self
            .rows::<SuspensionRow>(
                &self.st.admin.suspensions,
                (BUCKET, after.unwrap_or(""), limit),
            )
            .await?
            .into_iter()
            .map(suspension_of)
            .collect())
    }

    async fn admin_users(
        &self,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        let page = limit.min(i32::MAX as usize) as i32;
        let Some(q) = q else {
            let rows = match after {
                None => {
                    self.rows::<UserRow>(&self.st.admin.users_first, (page,))
                        .await?
                }
                Some(a) => {
                    self.rows::<UserRow>(&self.st.admin.users_after, (a, page))
                        .await?
                }
            };
            return Ok(rows.into_iter().map(to_user).collect());
        };
        let after = after.unwrap_or("");
        let prefix = crate::store::text::normalize_name(q);
        let email = q.trim().to_lowercase();
        // Exact matches (id, email, phone) and the name index's, by id.
        let mut ids: BTreeSet<String> = BTreeSet::new();
        ids.insert(q.to_string());
        if let Some(u) = self.user_by_email(&email).await? {
            ids.insert(u.user.id);
        }
        if let Some(u) = self.user_by_phone(q).await? {
            ids.insert(u.id);
        }
        let named = self
            .rows::<(String,)>(&self.st.name_prefix_users, (&prefix, after, page))
            .await?;
        ids.extend(named.into_iter().map(|(id,)| id));
        let wanted: Vec<String> = ids.into_iter().filter(|id| id.as_str() > after).collect();
        let mut users: Vec<User> = self
            .users_by_ids(&wanted)
            .await?
            .into_iter()
            .filter(|u| {
                u.id == q
                    || u.email.as_deref() == Some(email.as_str())
                    || u.phone.as_deref() == Some(q)
                    || index_rows(u).contains(&prefix)
            })
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.truncate(limit);
        Ok(users)
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        Ok(self
            .row::<(i64,)>(&self.st.admin.count_admins, (BUCKET,))
            .await?
            .map_or(0, |(n,)| n.max(0) as u64))
    }

    async fn admin_ids(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .rows::<(String,)>(&self.st.admin.admin_ids, (BUCKET,))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect())
    }

    async fn all_room_ids(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        let page = limit.min(i32::MAX as usize) as i32;
        let rows = match after {
            None => {
                self.rows::<(String,)>(&self.st.admin.rooms_first, (page,))
                    .await?
            }
            Some(a) => {
                self.rows::<(String,)>(&self.st.admin.rooms_after, (a, page))
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

impl ScyllaStore {
    /// Reports of these ids, oldest first.
    async fn reports_of_ids(&self, ids: Vec<String>) -> StoreResult<Vec<ReportRecord>> {
        let mut out: Vec<ReportRecord> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let rows = self
                .rows::<ReportRow>(&self.st.admin.reports_by_ids, (chunk.to_vec(),))
                .await?;
            out.extend(rows.into_iter().map(report_of));
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }
}

#[async_trait]
impl ReportStore for ScyllaStore {
    async fn file_report(&self, r: &ReportRecord) -> StoreResult<(ReportRecord, bool)> {
        let st = &self.st.admin;
        let snapshot = r.snapshot.to_string();
        self.write(
            &st.insert_report,
            (
                &r.id,
                &r.reporter_id,
                &r.target_type,
                &r.target_id,
                &r.reason,
                &r.comment,
                &snapshot,
                &r.status,
                r.created_at,
                &r.action,
                &r.note,
                &r.resolved_by,
                r.resolved_at,
            ),
        )
        .await?;
        self.write(&st.list_report, (&r.status, r.created_at, &r.id))
            .await?;
        self.write(
            &st.list_report_target,
            (&r.target_type, &r.target_id, &r.id),
        )
        .await?;
        let key = (&r.reporter_id, &r.target_type, &r.target_id);
        if self
            .lwt(&st.claim_report, (key.0, key.1, key.2, &r.id))
            .await?
        {
            return Ok((r.clone(), true));
        }
        // The reporter has an open report of this target: this one goes.
        self.write(&st.unlist_report, (&r.status, r.created_at, &r.id))
            .await?;
        self.write(
            &st.unlist_report_target,
            (&r.target_type, &r.target_id, &r.id),
        )
        .await?;
        self.write(&st.delete_report, (&r.id,)).await?;
        for _ in 0..CLAIM_READS {
            if let Some((id,)) = self
                .row::<(String,)>(&st.claimed_report, (key.0, key.1, key.2))
                .await?
            {
                if let Some(open) = self.report(&id).await? {
                    return Ok((open, false));
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err(unavailable("a report's claim names no report"))
    }

    async fn report(&self, id: &str) -> StoreResult<Option<ReportRecord>> {
        Ok(self
            .row::<ReportRow>(&self.st.admin.report_by_id, (id,))
            .await?
            .map(report_of))
    }

    async fn reports(
        &self,
        status: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<ReportRecord>> {
        let (at, id) = after.unwrap_or((i64::MIN, String::new()));
        let limit = limit.min(i32::MAX as usize) as i32;
        let ids: Vec<String> = self
            .rows::<(String,)>(&self.st.admin.reports_listed, (status, at, id, limit))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        Ok(self
            .reports_of_ids(ids)
            .await?
            .into_iter()
            .filter(|r| r.status == status)
            .collect())
    }

    async fn open_reports_of(
        &self,
        target_type: &str,
        target_id: &str,
    ) -> StoreResult<Vec<ReportRecord>> {
        let ids: Vec<String> = self
            .rows::<(String,)>(&self.st.admin.reports_of_target, (target_type, target_id))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        Ok(self
            .reports_of_ids(ids)
            .await?
            .into_iter()
            .filter(|r| r.status == "open")
            .collect())
    }

    async fn resolve_report(&self, r: &ReportRecord) -> StoreResult<bool> {
        let st = &self.st.admin;
        if !self
            .lwt(
                &st.resolve_report,
                (
                    &r.status,
                    &r.action,
                    &r.note,
                    &r.resolved_by,
                    r.resolved_at,
                    &r.id,
                ),
            )
            .await?
        {
            return Ok(false);
        }
        self.write(&st.unlist_report, ("open", r.created_at, &r.id))
            .await?;
        self.write(&st.list_report, (&r.status, r.created_at, &r.id))
            .await?;
        self.lwt(
            &st.release_claim,
            (&r.reporter_id, &r.target_type, &r.target_id, &r.id),
        )
        .await?;
        Ok(true)
    }
}
