//! Public profiles as listings show them ("nearby" people), kept on each node for a few seconds:
//! a page of a hundred people is a lookup in memory, not a hundred store reads. A change made on
//! this node is seen at once (the caller forgets the entry); one made on another node within
//! [`PROFILE_TTL`]. Only public fields are kept, never email or phone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dovie_protocol::model::PublicUser;
use parking_lot::Mutex;

use crate::store::{SharedStore, StoreResult};

/// How long a profile read from the store is shown without reading it again.
pub const PROFILE_TTL: Duration = Duration::from_secs(5);
/// Profiles kept at most (about 300 bytes each); past it the expired go, then all.
const MAX_PROFILES: usize = 100_000;

pub struct Profiles {
    store: SharedStore,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, PublicUser)>>,
}

impl Profiles {
    pub fn new(store: SharedStore) -> Profiles {
        Profiles::with_ttl(store, PROFILE_TTL)
    }

    pub fn with_ttl(store: SharedStore, ttl: Duration) -> Profiles {
        Profiles {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The public profiles of these ids that exist, by id.
    pub async fn public(&self, ids: &[String]) -> StoreResult<HashMap<String, PublicUser>> {
        let now = Instant::now();
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock();
            for id in ids {
                match cache.get(id) {
                    Some((at, p)) if now.duration_since(*at) < self.ttl => {
                        out.insert(id.clone(), p.clone());
                    }
                    _ => missing.push(id.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let found = self.store.users_by_ids(&missing).await?;
        let mut cache = self.cache.lock();
        if cache.len() + found.len() > MAX_PROFILES {
            cache.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            if cache.len() + found.len() > MAX_PROFILES {
                cache.clear();
            }
        }
        for u in found {
            let p = u.public();
            cache.insert(u.id.clone(), (now, p.clone()));
            out.insert(u.id, p);
        }
        Ok(out)
    }

    /// Drops a user's profile (changed on this node): the next listing reads it again.
    pub fn forget(&self, id: &str) {
        self.cache.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ProfilePatch, UserRecord};
    use dovie_protocol::model::User;

    async fn store_with(ids: &[&str]) -> (SharedStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = std::sync::Arc::new(
            crate::store::sqlite::SqliteStore::open(dir.path(), "NORMAL", 1).unwrap(),
        );
        for id in ids {
            // Deserialized: every other field takes its default.
            let user: User = serde_json::from_value(serde_json::json!({
                "id": id, "email": format!("{id}@example.com"),
                "display_name": format!("name of {id}"), "created_at": 1,
            }))
            .unwrap();
            store
                .create_user(UserRecord {
                    user,
                    password_hash: "x".into(),
                })
                .await
                .unwrap();
        }
        (store, dir)
    }

    fn rename(to: &str) -> ProfilePatch {
        ProfilePatch {
            display_name: Some(to.into()),
            ..ProfilePatch::default()
        }
    }

    #[actix_rt::test]
    async fn profiles_are_kept_for_their_time_and_forgotten_on_demand() {
        let (store, _dir) = store_with(&["a", "b"]).await;
        let profiles = Profiles::new(store.clone());
        let ids = vec!["a".to_string(), "b".to_string(), "nobody".to_string()];
        let first = profiles.public(&ids).await.unwrap();
        assert_eq!(first.len(), 2, "only those that exist");
        assert_eq!(first["a"].display_name, "name of a");
        store.update_profile("a", &rename("changed")).await.unwrap();
        // Within its time the kept profile is shown …
        assert_eq!(
            profiles.public(&ids).await.unwrap()["a"].display_name,
            "name of a"
        );
        // … until this node forgets it.
        profiles.forget("a");
        assert_eq!(
            profiles.public(&ids).await.unwrap()["a"].display_name,
            "changed"
        );
    }

    #[actix_rt::test]
    async fn an_expired_profile_is_read_again() {
        let (store, _dir) = store_with(&["a"]).await;
        let profiles = Profiles::with_ttl(store.clone(), Duration::ZERO);
        let ids = vec!["a".to_string()];
        profiles.public(&ids).await.unwrap();
        store.update_profile("a", &rename("changed")).await.unwrap();
        assert_eq!(
            profiles.public(&ids).await.unwrap()["a"].display_name,
            "changed"
        );
    }
}
