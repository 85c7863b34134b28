//! Accounts in the embedded store: `users` and the name index `user_name_prefixes` (every
//! account's; people search joins it to discoverable accounts only).

use super::*;

/// Replaces a user's rows in the name index with those of its current name, inside the caller's
/// write. Every account is indexed (administration finds them all); people search keeps to the
/// discoverable ones.
pub(super) fn reindex_name(c: &Connection, user_id: &str) -> StoreResult<()> {
    db(c.execute(
        "DELETE FROM user_name_prefixes WHERE user_id = ?1",
        [user_id],
    ))?;
    let name: Option<String> = db(c
        .query_row(
            "SELECT display_name FROM users WHERE id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .optional())?;
    let Some(name) = name else {
        return Ok(());
    };
    let mut st = db(c.prepare_cached(
        "INSERT OR IGNORE INTO user_name_prefixes (prefix, user_id) VALUES (?1, ?2)",
    ))?;
    for p in crate::store::text::name_prefixes(&name) {
        db(st.execute(params![p, user_id]))?;
    }
    Ok(())
}

fn user_in(c: &Connection, id: &str) -> StoreResult<Option<User>> {
    query_one(
        c,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id],
        user_from_row,
    )
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, record: UserRecord) -> StoreResult<User> {
        self.write(move |c| {
            let u = &record.user;
            let r = c.execute(
                "INSERT INTO users (id, email, phone, password_hash, display_name, avatar_url, bio, status_message, \
                 theme, locale, presence_visible, discoverable, created_at, role) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    u.id, u.email, u.phone, record.password_hash, u.display_name, u.avatar_url, u.bio,
                    u.status_message, u.theme.as_str(), u.locale, u.presence_visible, u.discoverable,
                    u.created_at, u.role.as_str()
                ],
            );
            match r {
                Ok(_) => {
                    reindex_name(c, &u.id)?;
                    Ok(record.user)
                }
                Err(e) if is_unique_violation(&e) => Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    "an account with this email or phone exists",
                )),
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
                        password_hash: r.get(14)?,
                    })
                },
            )
            .optional())
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_string();
        self.read(move |c| user_in(c, &id)).await
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
            user_in(c, &id)?.ok_or_else(|| not_found("user"))
        })
        .await
    }

    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(u) = user_in(c, &id)? {
                    out.push(u);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>> {
        let phone = phone.to_string();
        self.read(move |c| {
            db(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE phone = ?1"),
                [&phone],
                user_from_row,
            )
            .optional())
        })
        .await
    }

    async fn update_profile(&self, id: &str, patch: &ProfilePatch) -> StoreResult<User> {
        let (id, p) = (id.to_string(), patch.clone());
        self.write(move |c| {
            if user_in(c, &id)?.is_none() {
                return Err(not_found("user"));
            }
            let set = |col: &str, v: &dyn rusqlite::ToSql| {
                db(c.execute(
                    &format!("UPDATE users SET {col} = ?1 WHERE id = ?2"),
                    params![v, id],
                ))
            };
            if let Some(v) = &p.display_name {
                set("display_name", v)?;
            }
            if let Some(v) = &p.bio {
                set("bio", v)?;
            }
            if let Some(v) = &p.status_message {
                set("status_message", v)?;
            }
            if let Some(v) = p.theme {
                set("theme", &v.as_str())?;
            }
            if let Some(v) = &p.locale {
                set("locale", v)?;
            }
            if let Some(v) = &p.time_zone {
                set("time_zone", v)?;
            }
            if let Some(v) = p.presence_visible {
                set("presence_visible", &v)?;
            }
            if let Some(v) = p.discoverable {
                set("discoverable", &v)?;
            }
            if let Some(v) = &p.avatar_url {
                set("avatar_url", v)?;
            }
            if p.display_name.is_some() || p.discoverable.is_some() {
                reindex_name(c, &id)?;
            }
            user_in(c, &id)?.ok_or_else(|| not_found("user"))
        })
        .await
    }

    async fn set_phone(&self, id: &str, phone: &str) -> StoreResult<User> {
        let (id, phone) = (id.to_string(), phone.to_string());
        self.write(move |c| {
            match c.execute(
                "UPDATE users SET phone = ?1 WHERE id = ?2",
                params![phone, id],
            ) {
                Ok(0) => Err(not_found("user")),
                Ok(_) => user_in(c, &id)?.ok_or_else(|| not_found("user")),
                Err(e) if is_unique_violation(&e) => Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    "another account has this phone",
                )),
                Err(e) => Err(unavailable(e)),
            }
        })
        .await
    }

    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        let (prefix, after) = (prefix.to_string(), after.unwrap_or("").to_string());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {} FROM user_name_prefixes p JOIN users u ON u.id = p.user_id \
                 WHERE p.prefix = ?1 AND p.user_id > ?2 AND u.discoverable = 1 ORDER BY p.user_id LIMIT ?3",
                USER_COLUMNS
                    .split(", ")
                    .map(|col| format!("u.{}", col.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))?;
            let rows = db(st.query_map(params![prefix, after, limit as i64], user_from_row))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn last_seen(&self, id: &str) -> StoreResult<Option<i64>> {
        let id = id.to_string();
        self.read(move |c| {
            Ok(db(c
                .query_row("SELECT last_seen_at FROM users WHERE id = ?1", [&id], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .optional())?
            .flatten())
        })
        .await
    }
}
