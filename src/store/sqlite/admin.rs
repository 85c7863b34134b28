//! Administration in the embedded store: the append-only `audit_log` (indexed by time, actor,
//! action and target), `suspensions`, and the listing of every account (by id, email, phone or
//! the name index, which holds every account's name).

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
}
