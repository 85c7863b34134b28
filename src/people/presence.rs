//! Who sees whose presence (CHAT-10): a user shows `online` and `last_seen_at` to themselves
//! and — unless they hide it (`presence_visible: false`) — to the users who share a room with
//! them or whom they keep as a contact, never across a block either way. Online is this node's
//! registry alone, or in a cluster the per-node session counts in Redis.

use std::collections::{HashMap, HashSet};

use dovie_protocol::model::{PublicUser, User};

use crate::state::AppState;
use crate::store::StoreResult;

/// One user's presence as a viewer may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Presence {
    pub online: bool,
    pub last_seen_at: Option<i64>,
}

/// The presence of those `targets` whose presence `viewer` may see.
pub async fn visible(
    state: &AppState,
    viewer: &str,
    targets: &[User],
) -> StoreResult<HashMap<String, Presence>> {
    if targets.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let store = &state.store;
    let (mates, keeps_me, blocked, blockers) = futures_util::future::try_join4(
        store.co_members(viewer),
        store.contact_of(viewer, &ids),
        store.blocked_by(viewer),
        store.blockers_of(viewer),
    )
    .await?;
    let mates: HashSet<String> = mates.into_iter().collect();
    let keeps_me: HashSet<String> = keeps_me.into_iter().collect();
    let hidden: HashSet<String> = blocked.into_iter().chain(blockers).collect();
    let shown: Vec<&User> = targets
        .iter()
        .filter(|t| {
            t.id == viewer
                || (t.presence_visible
                    && !hidden.contains(&t.id)
                    && (mates.contains(&t.id) || keeps_me.contains(&t.id)))
        })
        .collect();
    let shown_ids: Vec<String> = shown.iter().map(|t| t.id.clone()).collect();
    let online = online(state, &shown_ids).await;
    let mut out = HashMap::new();
    for t in shown {
        let last_seen_at = store.last_seen(&t.id).await?;
        out.insert(
            t.id.clone(),
            Presence {
                online: online.contains(&t.id),
                last_seen_at,
            },
        );
    }
    Ok(out)
}

/// Which of `ids` have a session anywhere.
pub async fn online(state: &AppState, ids: &[String]) -> HashSet<String> {
    let mut on: HashSet<String> = ids
        .iter()
        .filter(|id| state.registry.is_online(id))
        .cloned()
        .collect();
    if let Some(c) = &state.cluster {
        let rest: Vec<String> = ids.iter().filter(|id| !on.contains(*id)).cloned().collect();
        on.extend(c.online_users(&rest).await);
    }
    on
}

/// A public profile with the presence the viewer may see.
pub fn profile(user: &User, presence: Option<&Presence>) -> PublicUser {
    let mut p = user.public();
    if let Some(pr) = presence {
        p.online = Some(pr.online);
        p.last_seen_at = pr.last_seen_at;
    }
    p
}
