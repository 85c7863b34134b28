//! Login sessions and refresh tokens in the embedded store: `auth_sessions`, `refresh_tokens`.

use super::*;

#[async_trait]
impl AuthStore for SqliteStore {
    async fn create_session(&self, s: AuthSession, refresh_hash: &str) -> StoreResult<()> {
        let refresh_hash = refresh_hash.to_string();
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO auth_sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![s.id, s.user_id, s.created_at, s.expires_at],
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
                    "SELECT s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at, t.used_at, t.expires_at \
                     FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = ?1",
                    [&old],
                    |r| {
                        Ok((
                            AuthSession {
                                id: r.get(0)?,
                                user_id: r.get(1)?,
                                created_at: r.get(2)?,
                                expires_at: r.get(3)?,
                                revoked_at: r.get(4)?,
                            },
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, i64>(6)?,
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
            db(c.execute("UPDATE auth_sessions SET expires_at = ?2 WHERE id = ?1", params![session.id, expires_at]))?;
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
}
