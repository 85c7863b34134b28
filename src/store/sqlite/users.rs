//! Accounts in the embedded store: `users`.

use super::*;

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, record: UserRecord) -> StoreResult<User> {
        self.write(move |c| {
            let u = &record.user;
            let r = c.execute(
                "INSERT INTO users (id, email, password_hash, display_name, avatar_url, bio, created_at, role) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![u.id, u.email, record.password_hash, u.display_name, u.avatar_url, u.bio, u.created_at, u.role.as_str()],
            );
            match r {
                Ok(_) => Ok(record.user),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(ErrorBody::new(ErrorCode::Conflict, "an account with this email exists"))
                }
                Err(e) => Err(unavailable(e)),
            }
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_string();
        self.read(move |c| {
            db(c.query_row(
                &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1"),
                [&email],
                |r| {
                    Ok(UserRecord {
                        user: user_from_row(r)?,
                        password_hash: r.get(7)?,
                    })
                },
            )
            .optional())
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_string();
        self.read(move |c| {
            db(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [&id],
                user_from_row,
            )
            .optional())
        })
        .await
    }

    async fn existing_users(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached("SELECT 1 FROM users WHERE id = ?1"))?;
            let mut found = Vec::new();
            for id in ids {
                if db(stmt.exists([&id]))? {
                    found.push(id);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn set_user_role(&self, id: &str, role: UserRole) -> StoreResult<User> {
        let id = id.to_string();
        self.write(move |c| {
            if db(c.execute(
                "UPDATE users SET role = ?1 WHERE id = ?2",
                params![role.as_str(), id],
            ))? == 0
            {
                return Err(not_found("user"));
            }
            db(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [&id],
                user_from_row,
            ))
        })
        .await
    }
}
