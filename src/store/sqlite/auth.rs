//! Login sessions and refresh tokens in the embedded store: `auth_sessions`, `refresh_tokens`.

use super::*;

const SESSION_COLUMNS: &str =
    "s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at, s.device, s.user_agent, s.ip, s.last_seen_at";

fn session_from_row(r: &Row) -> rusqlite::Result<AuthSession> {
    let created_at: i64 = r.get(2)?;
    Ok(AuthSession {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at,
        expires_at: r.get(3)?,
        revoked_at: r.get(4)?,
        device: r.get(5)?,
        user_agent: r.get(6)?,
        ip: r.get(7)?,
        last_seen_at: r.get::<_, Option<i64>>(8)?.unwrap_or(created_at),
    })
}

#[async_trait]
impl AuthStore for SqliteStore {
    async fn create_session(&self, s: AuthSession, refresh_hash: &str) -> StoreResult<()> {
        let refresh_hash = refresh_hash.to_string();
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO auth_sessions (id, user_id, created_at, expires_at, device, user_agent, ip, last_seen_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![s.id, s.user_id, s.created_at, s.expires_at, s.device, s.user_agent, s.ip, s.last_seen_at],
            ))?;
            db(c.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![refresh_hash, s.id, s.created_at, s.expires_at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        old: &str,
        new: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Rotation> {
        let (old, new) = (old.to_string(), new.to_string());
        self.write(move |c| {
            let row = db(c
                .query_row(
                    &format!("SELECT {SESSION_COLUMNS}, t.used_at, t.expires_at \
                     FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = ?1"),
                    [&old],
                    |r| {
                        Ok((
                            session_from_row(r)?,
                            r.get::<_, Option<i64>>(9)?,
                            r.get::<_, i64>(10)?,
                        ))
                    },
                )
                .optional())?;
            let Some((mut session, used_at, token_expires)) = row else {
                return Ok(Rotation::Invalid);
            };
            if session.revoked_at.is_some() || token_expires <= now {
                return Ok(Rotation::Invalid);
            }
            if used_at.is_some() {
                // A spent token came back: someone holds a copy. Revoke the whole family.
                db(c.execute("UPDATE auth_sessions SET revoked_at = ?2 WHERE id = ?1", params![session.id, now]))?;
                session.revoked_at = Some(now);
                return Ok(Rotation::Reused(session));
            }
            db(c.execute("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1", params![old, now]))?;
            db(c.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![new, session.id, now, expires_at],
            ))?;
            db(c.execute(
                "UPDATE auth_sessions SET expires_at = ?2, last_seen_at = ?3 WHERE id = ?1",
                params![session.id, expires_at, now],
            ))?;
            session.last_seen_at = now;
            session.expires_at = expires_at;
            Ok(Rotation::Rotated(session))
        })
        .await
    }

    async fn revoke_session(&self, session_id: &str, at: i64) -> StoreResult<()> {
        let id = session_id.to_string();
        self.write(move |c| {
            db(c.execute(
                "UPDATE auth_sessions SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn revoked_since(&self, since: i64) -> StoreResult<Vec<String>> {
        self.read(move |c| {
            let mut stmt =
                db(c.prepare_cached("SELECT id FROM auth_sessions WHERE revoked_at >= ?1"))?;
            let rows = db(stmt.query_map([since], |r| r.get::<_, String>(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn sessions_of(&self, user_id: &str, now: i64) -> StoreResult<Vec<AuthSession>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.user_id = ?1 AND s.revoked_at IS NULL \
                 AND s.expires_at > ?2 ORDER BY s.created_at DESC, s.id DESC"
            )))?;
            let rows = db(st.query_map(params![user_id, now], session_from_row))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn session(&self, id: &str) -> StoreResult<Option<AuthSession>> {
        let id = id.to_string();
        self.read(move |c| {
            db(c.query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.id = ?1"),
                [&id],
                session_from_row,
            )
            .optional())
        })
        .await
    }

    async fn touch_session(&self, id: &str, at: i64, ip: Option<&str>) -> StoreResult<()> {
        let (id, ip) = (id.to_string(), ip.map(str::to_string));
        self.write(move |c| {
            db(c.execute(
                "UPDATE auth_sessions SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?2), ip = COALESCE(?3, ip) WHERE id = ?1",
                params![id, at, ip],
            ))?;
            Ok(())
        })
        .await
    }

    async fn forget_session_ips(&self, before: i64) -> StoreResult<u64> {
        self.write(move |c| {
            Ok(db(c.execute(
                "UPDATE auth_sessions SET ip = NULL WHERE ip IS NOT NULL AND last_seen_at < ?1",
                [before],
            ))? as u64)
        })
        .await
    }
}
