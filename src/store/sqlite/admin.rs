//! Administration in the embedded store: the append-only `audit_log` (indexed by time, actor,
//! action and target), `suspensions`, `reports` (one open per reporter and target), and the
//! listing of every account (by id, email, phone or the name index, which holds every account's
//! name).

use super::*;

const AUDIT_COLS: &str =
    "id, at, actor_id, action, target_type, target_id, target_label, ip, details";

fn audit_from_row(r: &Row) -> rusqlite::Result<AuditRecord> {
    let details: String = r.get(8)?;
    Ok(AuditRecord {
        id: r.get(0)?,
        at: r.get(1)?,
        actor_id: r.get(2)?,
        action: r.get(3)?,
        target_type: r.get(4)?,
        target_id: r.get(5)?,
        target_label: r.get(6)?,
        ip: r.get(7)?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
    })
}

fn suspension_from_row(r: &Row) -> rusqlite::Result<Suspension> {
    Ok(Suspension {
        user_id: r.get(0)?,
        reason: r.get(1)?,
        since: r.get(2)?,
        until: r.get(3)?,
        by: r.get(4)?,
    })
}

const SUSPENSION_COLS: &str = "user_id, reason, since, until, suspended_by";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, a: &AuditRecord) -> StoreResult<()> {
        let a = a.clone();
        self.write(move |c| {
            exec_cached(
                c,
                &format!("INSERT INTO audit_log ({AUDIT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    a.id,
                    a.at,
                    a.actor_id,
                    a.action,
                    a.target_type,
                    a.target_id,
                    a.target_label,
                    a.ip,
                    a.details.to_string()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        let f = filter.clone();
        self.read(move |c| {
            // Fixed clauses, each with its own numbered parameter: the statement is one of a
            // few shapes (cached), and every value is bound.
            let mut clauses = Vec::new();
            if f.actor_id.is_some() {
                clauses.push("actor_id = ?1");
            }
            if f.action.is_some() {
                clauses.push("action = ?2");
            }
            if f.target.is_some() {
                clauses.push("target_type = ?3 AND target_id = ?4");
            }
            if f.before.is_some() {
                clauses.push("(at < ?5 OR (at = ?5 AND id < ?6))");
            }
            // SQLite counts parameters up to the highest number (?7), used or not.
            let filter = if clauses.is_empty() {
                "1".to_string()
            } else {
                clauses.join(" AND ")
            };
            let sql = format!(
                "SELECT {AUDIT_COLS} FROM audit_log WHERE {filter} ORDER BY at DESC, id DESC LIMIT ?7"
            );
            let mut st = db(c.prepare_cached(&sql))?;
            let (target_type, target_id) = f.target.clone().unzip();
            let (before_at, before_id) = f.before.clone().unzip();
            let rows = db(st.query_map(
                params![
                    f.actor_id,
                    f.action,
                    target_type,
                    target_id,
                    before_at,
                    before_id,
                    limit as i64
                ],
                audit_from_row,
            ))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn forget_audit_ips(&self, since: i64, before: i64) -> StoreResult<u64> {
        self.write(move |c| {
            Ok(exec_cached(
                c,
                "UPDATE audit_log SET ip = NULL WHERE at >= ?1 AND at < ?2 AND ip IS NOT NULL",
                params![since, before],
            )? as u64)
        })
        .await
    }
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn put_suspension(&self, s: &Suspension) -> StoreResult<()> {
        let s = s.clone();
        self.write(move |c| {
            let n = exec_cached(
                c,
                "INSERT INTO suspensions (user_id, reason, since, until, suspended_by) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1) \
                 ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, \
                 since = excluded.since, until = excluded.until, suspended_by = excluded.suspended_by",
                params![s.user_id, s.reason, s.since, s.until, s.by],
            )?;
            if n == 0 {
                return Err(not_found("user"));
            }
            Ok(())
        })
        .await
    }

    async fn lift_suspension(&self, user_id: &str) -> StoreResult<bool> {
        let id = user_id.to_string();
        self.write(move |c| {
            Ok(exec_cached(c, "DELETE FROM suspensions WHERE user_id = ?1", [&id])? > 0)
        })
        .await
    }

    async fn suspension(&self, user_id: &str) -> StoreResult<Option<Suspension>> {
        let id = user_id.to_string();
        self.read(move |c| {
            query_one(
                c,
                &format!("SELECT {SUSPENSION_COLS} FROM suspensions WHERE user_id = ?1"),
                [&id],
                suspension_from_row,
            )
        })
        .await
    }

    async fn suspensions(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<Suspension>> {
        let after = after.unwrap_or("").to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {SUSPENSION_COLS} FROM suspensions WHERE user_id > ?1 ORDER BY user_id LIMIT ?2"
            )))?;
            let rows = db(st.query_map(params![after, limit as i64], suspension_from_row))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn admin_users(
        &self,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        let after = after.unwrap_or("").to_string();
        let q = q.map(|q| {
            (
                q.to_string(),
                q.trim().to_lowercase(),
                crate::store::text::normalize_name(q),
            )
        });
        self.read(move |c| {
            let rows = match &q {
                None => {
                    let mut st = db(c.prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE id > ?1 ORDER BY id LIMIT ?2"
                    )))?;
                    let rows = db(st.query_map(params![after, limit as i64], user_from_row))?;
                    rows.map(db).collect::<StoreResult<Vec<_>>>()?
                }
                Some((exact, email, prefix)) => {
                    let mut st = db(c.prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users WHERE id > ?4 AND (id = ?1 OR email = ?2 \
                         OR phone = ?1 OR id IN (SELECT user_id FROM user_name_prefixes WHERE prefix = ?3)) \
                         ORDER BY id LIMIT ?5"
                    )))?;
                    let rows = db(st.query_map(
                        params![exact, email, prefix, after, limit as i64],
                        user_from_row,
                    ))?;
                    rows.map(db).collect::<StoreResult<Vec<_>>>()?
                }
            };
            Ok(rows)
        })
        .await
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        self.read(|c| {
            let n: i64 = db(c.query_row(
                "SELECT count(*) FROM users WHERE role = 'admin'",
                [],
                |r| r.get(0),
            ))?;
            Ok(n as u64)
        })
        .await
    }

    async fn admin_ids(&self) -> StoreResult<Vec<String>> {
        self.read(|c| {
            let mut st =
                db(c.prepare_cached("SELECT id FROM users WHERE role = 'admin' ORDER BY id"))?;
            let rows = db(st.query_map([], |r| r.get(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn all_room_ids(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        let after = after.unwrap_or("").to_string();
        self.read(move |c| {
            let mut st = db(
                c.prepare_cached("SELECT id FROM chat_rooms WHERE id > ?1 ORDER BY id LIMIT ?2")
            )?;
            let rows = db(st.query_map(params![after, limit as i64], |r| r.get(0)))?;
            rows.map(db).collect()
        })
        .await
    }
}

const REPORT_COLS: &str = "id, reporter_id, target_type, target_id, reason, comment, snapshot, \
                           status, created_at, action, note, resolved_by, resolved_at";

fn report_from_row(r: &Row) -> rusqlite::Result<ReportRecord> {
    let snapshot: String = r.get(6)?;
    Ok(ReportRecord {
        id: r.get(0)?,
        reporter_id: r.get(1)?,
        target_type: r.get(2)?,
        target_id: r.get(3)?,
        reason: r.get(4)?,
        comment: r.get(5)?,
        snapshot: serde_json::from_str(&snapshot).unwrap_or(serde_json::Value::Null),
        status: r.get(7)?,
        created_at: r.get(8)?,
        action: r.get(9)?,
        note: r.get(10)?,
        resolved_by: r.get(11)?,
        resolved_at: r.get(12)?,
    })
}

#[async_trait]
impl ReportStore for SqliteStore {
    async fn file_report(&self, r: &ReportRecord) -> StoreResult<(ReportRecord, bool)> {
        let r = r.clone();
        self.write(move |c| {
            // The partial unique index keeps one open report per reporter and target.
            let n = exec_cached(
                c,
                &format!(
                    "INSERT OR IGNORE INTO reports ({REPORT_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    r.id,
                    r.reporter_id,
                    r.target_type,
                    r.target_id,
                    r.reason,
                    r.comment,
                    r.snapshot.to_string(),
                    r.status,
                    r.created_at,
                    r.action,
                    r.note,
                    r.resolved_by,
                    r.resolved_at
                ],
            )?;
            if n == 1 {
                return Ok((r, true));
            }
            let open = query_one(
                c,
                &format!(
                    "SELECT {REPORT_COLS} FROM reports WHERE reporter_id = ?1 AND target_type = ?2 \
                     AND target_id = ?3 AND status = 'open'"
                ),
                params![r.reporter_id, r.target_type, r.target_id],
                report_from_row,
            )?;
            open.map(|o| (o, false))
                .ok_or_else(|| unavailable("a report was neither filed nor open"))
        })
        .await
    }

    async fn report(&self, id: &str) -> StoreResult<Option<ReportRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            query_one(
                c,
                &format!("SELECT {REPORT_COLS} FROM reports WHERE id = ?1"),
                [&id],
                report_from_row,
            )
        })
        .await
    }

    async fn reports(
        &self,
        status: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<ReportRecord>> {
        let status = status.to_string();
        let (at, id) = after.unwrap_or((i64::MIN, String::new()));
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {REPORT_COLS} FROM reports WHERE status = ?1 \
                 AND (created_at > ?2 OR (created_at = ?2 AND id > ?3)) \
                 ORDER BY created_at, id LIMIT ?4"
            )))?;
            let rows = db(st.query_map(params![status, at, id, limit as i64], report_from_row))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn open_reports_of(
        &self,
        target_type: &str,
        target_id: &str,
    ) -> StoreResult<Vec<ReportRecord>> {
        let (kind, id) = (target_type.to_string(), target_id.to_string());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {REPORT_COLS} FROM reports WHERE target_type = ?1 AND target_id = ?2 \
                 AND status = 'open' ORDER BY created_at, id"
            )))?;
            let rows = db(st.query_map(params![kind, id], report_from_row))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn resolve_report(&self, r: &ReportRecord) -> StoreResult<bool> {
        let r = r.clone();
        self.write(move |c| {
            Ok(exec_cached(
                c,
                "UPDATE reports SET status = ?2, action = ?3, note = ?4, resolved_by = ?5, \
                 resolved_at = ?6 WHERE id = ?1 AND status = 'open'",
                params![
                    r.id,
                    r.status,
                    r.action,
                    r.note,
                    r.resolved_by,
                    r.resolved_at
                ],
            )? == 1)
        })
        .await
    }
}
