//! Login sessions and refresh tokens in the cluster store: `auth_sessions`, `refresh_tokens`,
//! `revoked_sessions`.

use super::*;

#[async_trait]
impl AuthStore for ScyllaStore {
    async fn create_session(&self, s: AuthSession, refresh_hash: &str) -> StoreResult<()> {
        self.write(
            &self.st.insert_session,
            (&s.id, &s.user_id, s.created_at, s.expires_at),
        )
        .await?;
        self.write(
            &self.st.insert_refresh,
            (refresh_hash, &s.id, s.created_at, s.expires_at),
        )
        .await
    }

    async fn rotate_refresh(
        &self,
        old: &str,
        new: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Rotation> {
        let Some((session_id, token_expires, used_at)) = self
            .row::<(String, i64, Option<i64>)>(&self.st.refresh_by_hash, (old,))
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        type SessionRow = (String, String, i64, i64, Option<i64>);
        let Some(r) = self
            .row::<SessionRow>(&self.st.session_by_id, (&session_id,))
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        let mut session = AuthSession {
            id: r.0,
            user_id: r.1,
            created_at: r.2,
            expires_at: r.3,
            revoked_at: r.4,
        };
        if session.revoked_at.is_some() || token_expires <= now {
            return Ok(Rotation::Invalid);
        }
        // Spend the token exactly once, even when two nodes race to rotate it.
        if used_at.is_some() || !self.lwt(&self.st.use_refresh, (now, old)).await? {
            self.revoke_session(&session.id, now).await?;
            session.revoked_at = Some(now);
            return Ok(Rotation::Reused(session));
        }
        self.write(&self.st.insert_refresh, (new, &session.id, now, expires_at))
            .await?;
        self.write(&self.st.set_session_expiry, (expires_at, &session.id))
            .await?;
        session.expires_at = expires_at;
        Ok(Rotation::Rotated(session))
    }

    async fn revoke_session(&self, session_id: &str, at: i64) -> StoreResult<()> {
        type SessionRow = (String, String, i64, i64, Option<i64>);
        let Some(r) = self
            .row::<SessionRow>(&self.st.session_by_id, (session_id,))
            .await?
        else {
            return Ok(());
        };
        if r.4.is_some() {
            return Ok(());
        }
        self.write(&self.st.revoke_session, (at, session_id))
            .await?;
        self.write(&self.st.insert_revoked, (at / DAY_MS, at, session_id))
            .await
    }

    async fn revoked_since(&self, since: i64) -> StoreResult<Vec<String>> {
        let today = dovie_actors::now_ms() / DAY_MS;
        let first = (since.max(0) / DAY_MS).max(today - 60);
        let mut out = Vec::new();
        for day in first..=today.max(first) {
            for (id,) in self
                .rows::<(String,)>(&self.st.revoked_in_day, (day, since))
                .await?
            {
                out.push(id);
            }
        }
        Ok(out)
    }
}
