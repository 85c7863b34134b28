//! Login sessions and refresh tokens in the cluster store: `auth_sessions`, `sessions_by_user`,
//! `refresh_tokens`, `revoked_sessions`, `session_ips_by_day`.

use super::*;

/// Days back the address sweep looks for sessions it has not seen yet.
const IP_SWEEP_LOOKBACK_DAYS: i64 = 90;

type SessionRow = (
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn to_session(r: SessionRow) -> AuthSession {
    AuthSession {
        id: r.0,
        user_id: r.1,
        created_at: r.2,
        expires_at: r.3,
        revoked_at: r.4,
        device: r.5,
        user_agent: r.6,
        ip: r.7,
        last_seen_at: r.8.unwrap_or(r.2),
    }
}

#[async_trait]
impl AuthStore for ScyllaStore {
    async fn create_session(&self, s: AuthSession, refresh_hash: &str) -> StoreResult<()> {
        self.write(
            &self.st.insert_session,
            (
                &s.id,
                &s.user_id,
                s.created_at,
                s.expires_at,
                &s.device,
                &s.user_agent,
                &s.ip,
                s.last_seen_at,
            ),
        )
        .await?;
        self.write(&self.st.insert_user_session, (&s.user_id, &s.id))
            .await?;
        if s.ip.is_some() {
            self.write(&self.st.insert_ip_day, (s.last_seen_at / DAY_MS, &s.id))
                .await?;
        }
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
        let Some(mut session) = self.session(&session_id).await? else {
            return Ok(Rotation::Invalid);
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
        self.write(&self.st.set_session_expiry, (expires_at, now, &session.id))
            .await?;
        session.expires_at = expires_at;
        session.last_seen_at = now;
        Ok(Rotation::Rotated(session))
    }

    async fn revoke_session(&self, session_id: &str, at: i64) -> StoreResult<()> {
        let Some(s) = self.session(session_id).await? else {
            return Ok(());
        };
        if s.revoked_at.is_some() {
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

    async fn sessions_of(&self, user_id: &str, now: i64) -> StoreResult<Vec<AuthSession>> {
        let ids = self
            .rows::<(String,)>(&self.st.sessions_of_user, (user_id,))
            .await?;
        let found = try_join_all(ids.iter().map(|(id,)| self.session(id))).await?;
        let mut live: Vec<AuthSession> = found
            .into_iter()
            .flatten()
            .filter(|s| s.user_id == user_id && s.revoked_at.is_none() && s.expires_at > now)
            .collect();
        live.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(live)
    }

    async fn session(&self, id: &str) -> StoreResult<Option<AuthSession>> {
        Ok(self
            .row::<SessionRow>(&self.st.session_by_id, (id,))
            .await?
            .map(to_session))
    }

    async fn touch_session(&self, id: &str, at: i64, ip: Option<&str>) -> StoreResult<()> {
        let Some(s) = self.session(id).await? else {
            return Ok(());
        };
        let at = at.max(s.last_seen_at);
        match ip {
            Some(ip) => {
                self.write(&self.st.touch_session_ip, (at, ip, id)).await?;
                self.write(&self.st.insert_ip_day, (at / DAY_MS, id)).await
            }
            None => self.write(&self.st.touch_session, (at, id)).await,
        }
    }

    async fn forget_session_ips(&self, before: i64) -> StoreResult<u64> {
        let last_day = before / DAY_MS;
        let mut forgotten = 0;
        for day in (last_day - IP_SWEEP_LOOKBACK_DAYS)..=last_day {
            for (id,) in self.rows::<(String,)>(&self.st.ips_in_day, (day,)).await? {
                let s = self.session(&id).await?;
                let seen = s.as_ref().map_or(0, |s| s.last_seen_at);
                if seen >= before {
                    // Used since: its address is still kept (a newer day holds it too).
                    if seen / DAY_MS > day {
                        self.write(&self.st.delete_ip_day, (day, &id)).await?;
                    }
                    continue;
                }
                if s.is_some_and(|s| s.ip.is_some()) {
                    self.write(&self.st.clear_ip, (&id,)).await?;
                    forgotten += 1;
                }
                self.write(&self.st.delete_ip_day, (day, &id)).await?;
            }
        }
        Ok(forgotten)
    }
}
