//! Accounts in the cluster store: `users`, `users_by_email` (claimed with an LWT).

use super::*;

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
        if !self.lwt(&self.st.claim_email, (&u.email, &u.id)).await? {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "an account with this email exists",
            ));
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
            ),
        )
        .await?;
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
        type UserRow = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            Option<String>,
        );
        Ok(self
            .row::<UserRow>(&self.st.user_by_id, (id,))
            .await?
            .map(|r| User {
                id: r.0,
                email: r.1,
                display_name: r.2,
                avatar_url: r.3,
                bio: r.4,
                created_at: r.5,
                role: r.6.as_deref().and_then(UserRole::parse).unwrap_or_default(),
            }))
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
        self.user_by_id(id).await?.ok_or_else(|| not_found("user"))
    }
}
