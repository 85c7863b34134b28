//! Accounts in the cluster store: `users`, `users_by_email` and `users_by_phone` (each claimed
//! with an LWT), and the name index `user_name_prefixes` (every account's; people search
//! checks each candidate is discoverable).

use super::*;

/// Accounts one `IN` read asks for (ScyllaDB's default `max_partition_key_restrictions_per_query`
/// is 100).
const USERS_PER_READ: usize = 100;

/// A `users` row as `user_by_id` reads it.
pub(super) type UserRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<bool>,
    Option<String>,
);

pub(super) fn to_user(r: UserRow) -> User {
    User {
        id: r.0,
        email: r.1,
        display_name: r.2,
        avatar_url: r.3,
        bio: r.4,
        created_at: r.5,
        role: r.6.as_deref().and_then(UserRole::parse).unwrap_or_default(),
        phone: r.7,
        status_message: r.8,
        theme: r.9.as_deref().and_then(Theme::parse).unwrap_or_default(),
        locale: r
            .10
            .unwrap_or_else(|| dovie_protocol::model::DEFAULT_LOCALE.to_string()),
        presence_visible: r.11.unwrap_or(true),
        discoverable: r.12.unwrap_or(true),
        time_zone: r.13,
    }
}

/// The name-index rows of a user as it is: the prefixes of its name. Every account is indexed
/// (administration finds them all); people search keeps to the discoverable ones.
pub(super) fn index_rows(u: &User) -> BTreeSet<String> {
    super::super::text::name_prefixes(&u.display_name)
}

impl ScyllaStore {
    /// Moves a user's name-index rows from what `before` had to what `after` has.
    async fn reindex_name(&self, before: Option<&User>, after: &User) -> StoreResult<()> {
        let old = before.map(index_rows).unwrap_or_default();
        let new = index_rows(after);
        try_join_all(
            old.difference(&new)
                .map(|p| self.write(&self.st.delete_name_prefix, (p, &after.id))),
        )
        .await?;
        try_join_all(
            new.difference(&old)
                .map(|p| self.write(&self.st.insert_name_prefix, (p, &after.id))),
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl UserStore for ScyllaStore {
    async fn create_user(&self, record: UserRecord) -> StoreResult<User> {
        let u = &record.user;
        if self
            .row::<(String,)>(&self.st.user_exists, (&u.id,))
            .await?
            .is_some()
        {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "an account with this id exists",
            ));
        }
        let taken = || {
            ErrorBody::new(
                ErrorCode::Conflict,
                "an account with this email or phone exists",
            )
        };
        if let Some(email) = &u.email {
            if !self.lwt(&self.st.claim_email, (email, &u.id)).await? {
                return Err(taken());
            }
        }
        if let Some(phone) = &u.phone {
            if !self.lwt(&self.st.claim_phone, (phone, &u.id)).await? {
                if let Some(email) = &u.email {
                    self.write(&self.st.release_email, (email, &u.id)).await?;
                }
                return Err(taken());
            }
        }
        self.write(
            &self.st.insert_user,
            (
                &u.id,
                &u.email,
                &record.password_hash,
                &u.display_name,
                &u.avatar_url,
                &u.bio,
                u.created_at,
                u.role.as_str(),
                &u.phone,
                &u.status_message,
                u.theme.as_str(),
                &u.locale,
                u.presence_visible,
                u.discoverable,
                &u.time_zone,
            ),
        )
        .await?;
        self.reindex_name(None, u).await?;
        Ok(record.user)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let Some((id,)) = self
            .row::<(String,)>(&self.st.user_id_by_email, (email,))
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.user_by_id(&id).await? else {
            return Ok(None);
        };
        let hash = self
            .row::<(Option<String>,)>(&self.st.password_of, (&id,))
            .await?
            .and_then(|(h,)| h)
            .unwrap_or_default();
        Ok(Some(UserRecord {
            user,
            password_hash: hash,
        }))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(self
            .row::<UserRow>(&self.st.user_by_id, (id,))
            .await?
            .map(to_user))
    }

    async fn existing_users(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        let found = try_join_all(ids.iter().map(|id| async move {
            Ok::<_, ErrorBody>(
                self.row::<(String,)>(&self.st.user_exists, (id,))
                    .await?
                    .map(|_| id.clone()),
            )
        }))
        .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn set_user_role(&self, id: &str, role: UserRole) -> StoreResult<User> {
        if self.user_by_id(id).await?.is_none() {
            return Err(not_found("user"));
        }
        self.write(&self.st.set_user_role, (role.as_str(), id))
            .await?;
        // The admins are listed apart, to be counted (the last one is never demoted).
        match role {
            UserRole::Admin => self.write(&self.st.admin.list_admin, (id,)).await?,
            UserRole::User => self.write(&self.st.admin.unlist_admin, (id,)).await?,
        }
        self.user_by_id(id).await?.ok_or_else(|| not_found("user"))
    }

    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>> {
        // One multi-partition read per chunk (the coordinator fans out on the servers' side):
        // a page of a hundred profiles is one round trip, not a hundred requests.
        let chunks = try_join_all(
            ids.chunks(USERS_PER_READ)
                .map(|chunk| self.rows::<UserRow>(&self.st.users_by_ids, (chunk.to_vec(),))),
        )
        .await?;
        let found: HashMap<String, User> = chunks
            .into_iter()
            .flatten()
            .map(|r| (r.0.clone(), to_user(r)))
            .collect();
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>> {
        let Some((id,)) = self
            .row::<(String,)>(&self.st.user_id_by_phone, (phone,))
            .await?
        else {
            return Ok(None);
        };
        // The claim may outlive a change of phone: the account must still have it.
        Ok(self
            .user_by_id(&id)
            .await?
            .filter(|u| u.phone.as_deref() == Some(phone)))
    }

    async fn update_profile(&self, id: &str, p: &ProfilePatch) -> StoreResult<User> {
        let before = self
            .user_by_id(id)
            .await?
            .ok_or_else(|| not_found("user"))?;
        let mut after = before.clone();
        if let Some(v) = &p.display_name {
            after.display_name = v.clone();
        }
        if let Some(v) = &p.bio {
            after.bio = v.clone();
        }
        if let Some(v) = &p.status_message {
            after.status_message = v.clone();
        }
        if let Some(v) = p.theme {
            after.theme = v;
        }
        if let Some(v) = &p.locale {
            after.locale = v.clone();
        }
        if let Some(v) = &p.time_zone {
            after.time_zone = v.clone();
        }
        if let Some(v) = p.presence_visible {
            after.presence_visible = v;
        }
        if let Some(v) = p.discoverable {
            after.discoverable = v;
        }
        if let Some(v) = &p.avatar_url {
            after.avatar_url = v.clone();
            self.write(&self.st.set_avatar, (v, id)).await?;
        }
        self.write(
            &self.st.update_profile,
            (
                &after.display_name,
                &after.bio,
                &after.status_message,
                after.theme.as_str(),
                &after.locale,
                after.presence_visible,
                after.discoverable,
                &after.time_zone,
                id,
            ),
        )
        .await?;
        self.reindex_name(Some(&before), &after).await?;
        Ok(after)
    }

    async fn set_phone(&self, id: &str, phone: &str) -> StoreResult<User> {
        let before = self
            .user_by_id(id)
            .await?
            .ok_or_else(|| not_found("user"))?;
        if before.phone.as_deref() == Some(phone) {
            return Ok(before);
        }
        if !self.lwt(&self.st.claim_phone, (phone, id)).await? {
            // Claimed before: by this account (a retry), or by one that may no longer have it.
            let conflict = || ErrorBody::new(ErrorCode::Conflict, "another account has this phone");
            match self
                .row::<(String,)>(&self.st.user_id_by_phone, (phone,))
                .await?
            {
                Some((h,)) if h == id => {}
                Some((h,)) => {
                    let still = self
                        .user_by_id(&h)
                        .await?
                        .is_some_and(|u| u.phone.as_deref() == Some(phone));
                    if still || !self.lwt(&self.st.take_phone, (id, phone, &h)).await? {
                        return Err(conflict());
                    }
                }
                None => return Err(conflict()),
            }
        }
        self.write(&self.st.set_phone, (phone, id)).await?;
        if let Some(old) = &before.phone {
            self.write(&self.st.release_phone, (old, id)).await?;
        }
        self.user_by_id(id).await?.ok_or_else(|| not_found("user"))
    }

    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        let mut out = Vec::new();
        let mut cursor = after.unwrap_or("").to_string();
        // The index may briefly hold a user who is no longer discoverable or named so: each
        // candidate is checked against the account, and pages are read until `limit` are found.
        loop {
            let page = limit.max(1) as i32;
            let ids = self
                .rows::<(String,)>(&self.st.name_prefix_users, (prefix, &cursor, page))
                .await?;
            let n = ids.len();
            if let Some((last,)) = ids.last() {
                cursor = last.clone();
            }
            let users = self
                .users_by_ids(&ids.into_iter().map(|(u,)| u).collect::<Vec<_>>())
                .await?;
            for u in users {
                if out.len() < limit && u.discoverable && index_rows(&u).contains(prefix) {
                    out.push(u);
                }
            }
            if out.len() >= limit || n < page as usize {
                return Ok(out);
            }
        }
    }

    async fn last_seen(&self, id: &str) -> StoreResult<Option<i64>> {
        Ok(self
            .row::<(Option<i64>,)>(&self.st.last_seen_of, (id,))
            .await?
            .and_then(|(t,)| t))
    }
}
