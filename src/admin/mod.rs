//! Administration of accounts (ADM-1): what an admin sees of an account, suspensions (every
//! session revoked and every socket closed on every node; no login until lifted or ended) and
//! the sweeper that ends suspensions on time — each step in the audit log.

pub mod activity;
pub mod logs;
pub mod monitor;

use std::time::Duration;

use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::User;
use serde::Serialize;

use crate::audit::{self, Actor, Target};
use crate::store::{SharedStore, StoreResult, Suspension};

/// How often ended suspensions are lifted (and logged as lifted).
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// Suspensions read per sweep page.
const SWEEP_PAGE: usize = 500;
/// A suspension's reason, at most (characters).
pub const MAX_REASON_CHARS: usize = 500;

/// An account as administration shows it.
#[derive(Debug, Serialize)]
pub struct AccountView {
    /// The account, with its email and phone.
    pub user: User,
    /// `active` or `suspended`.
    pub status: &'static str,
    /// The suspension in force.
    pub suspension: Option<Suspension>,
    pub last_seen_at: Option<i64>,
    /// Login sessions not revoked or expired.
    pub session_count: usize,
}

/// The suspension of `user_id` in force at `now`.
pub async fn suspension_in_force(
    store: &SharedStore,
    user_id: &str,
    now: i64,
) -> StoreResult<Option<Suspension>> {
    Ok(store.suspension(user_id).await?.filter(|s| s.active(now)))
}

/// The error a suspended account's logins and refreshes get.
pub fn suspended() -> ErrorBody {
    ErrorBody::new(ErrorCode::Suspended, "the account is suspended")
}

/// What administration shows of `user`.
pub async fn view(store: &SharedStore, user: User) -> StoreResult<AccountView> {
    let now = dovie_actors::now_ms();
    let (suspension, last_seen, sessions) = futures_util::try_join!(
        suspension_in_force(store, &user.id, now),
        store.last_seen(&user.id),
        store.sessions_of(&user.id, now),
    )?;
    Ok(AccountView {
        status: if suspension.is_some() {
            "suspended"
        } else {
            "active"
        },
        suspension,
        last_seen_at: last_seen,
        session_count: sessions.len(),
        user,
    })
}

/// The label an account goes by in the audit log: its email, else its name.
pub fn label(user: &User) -> &str {
    user.email.as_deref().unwrap_or(&user.display_name)
}

/// Lifts the suspensions whose end has passed, each logged once (on a cluster only the node
/// whose lift applied logs it).
pub async fn lift_ended(store: &SharedStore, now: i64) -> StoreResult<usize> {
    let mut lifted = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.suspensions(after.as_deref(), SWEEP_PAGE).await?;
        let n = page.len();
        after = page.last().map(|s| s.user_id.clone());
        for s in page.into_iter().filter(|s| !s.active(now)) {
            if store.lift_suspension(&s.user_id).await? {
                lifted += 1;
                let user = store.user_by_id(&s.user_id).await?;
                audit::note(
                    store,
                    Actor {
                        id: audit::SYSTEM,
                        ip: None,
                    },
                    "user.unsuspended",
                    Target {
                        kind: "user",
                        id: &s.user_id,
                        label: user.as_ref().map(label),
                    },
                    serde_json::json!({ "ended": s.until, "reason": s.reason }),
                )
                .await;
            }
        }
        if n < SWEEP_PAGE {
            return Ok(lifted);
        }
    }
}

/// Lifts ended suspensions every [`SWEEP_EVERY`], for as long as the node runs.
pub fn spawn_sweeper(store: SharedStore) {
    actix_rt::spawn(async move {
        loop {
            if let Err(e) = lift_ended(&store, dovie_actors::now_ms()).await {
                tracing::warn!(error = %e.message, "cannot lift ended suspensions");
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    });
}
