//! People in the embedded store: provider identities (`user_identities`), phone verifications
//! (`phone_verifications`), contacts (`contacts`) and blocks (`blocks`).

use super::*;

fn entries(
    c: &Connection,
    sql: &str,
    owner: &str,
    after: &str,
    limit: usize,
) -> StoreResult<Vec<ContactEntry>> {
    let mut st = db(c.prepare_cached(sql))?;
    let rows = db(st.query_map(params![owner, after, limit as i64], |r| {
        Ok(ContactEntry {
            user_id: r.get(0)?,
            added_at: r.get(1)?,
        })
    }))?;
    rows.map(db).collect()
}

/// The subset of `ids` for which `sql` (with `?1` fixed and `?2` each id) finds a row.
fn which(c: &Connection, sql: &str, fixed: &str, ids: &[String]) -> StoreResult<Vec<String>> {
    let mut st = db(c.prepare_cached(sql))?;
    let mut out = Vec::new();
    for id in ids {
        if db(st.exists(params![fixed, id]))? {
            out.push(id.clone());
        }
    }
    Ok(out)
}

fn column(c: &Connection, sql: &str, key: &str) -> StoreResult<Vec<String>> {
    let mut st = db(c.prepare_cached(sql))?;
    let rows = db(st.query_map([key], |r| r.get::<_, String>(0)))?;
    rows.map(db).collect()
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<String>> {
        let (provider, subject) = (provider.to_string(), subject.to_string());
        self.read(move |c| {
            db(c.query_row(
                "SELECT user_id FROM user_identities WHERE provider = ?1 AND subject = ?2",
                params![provider, subject],
                |r| r.get(0),
            )
            .optional())
        })
        .await
    }

    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: &str,
        at: i64,
    ) -> StoreResult<String> {
        let (provider, subject, user_id) = (
            provider.to_string(),
            subject.to_string(),
            user_id.to_string(),
        );
        self.write(move |c| {
            db(c.execute(
                "INSERT OR IGNORE INTO user_identities (provider, subject, user_id, linked_at) VALUES (?1, ?2, ?3, ?4)",
                params![provider, subject, user_id, at],
            ))?;
            db(c.query_row(
                "SELECT user_id FROM user_identities WHERE provider = ?1 AND subject = ?2",
                params![provider, subject],
                |r| r.get(0),
            ))
        })
        .await
    }
}

#[async_trait]
impl PhoneStore for SqliteStore {
    async fn create_verification(&self, v: PhoneVerification) -> StoreResult<()> {
        self.write(move |c| {
            // Codes older than a day are of no use to anyone: swept as new ones come.
            db(c.execute(
                "DELETE FROM phone_verifications WHERE created_at < ?1",
                [v.created_at - DAY_MS],
            ))?;
            db(c.execute(
                "INSERT INTO phone_verifications (id, phone, code_hash, created_at, expires_at, attempts, consumed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![v.id, v.phone, v.code_hash, v.created_at, v.expires_at, v.attempts, v.consumed_at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn verification(&self, id: &str) -> StoreResult<Option<PhoneVerification>> {
        let id = id.to_string();
        self.read(move |c| {
            db(c.query_row(
                "SELECT id, phone, code_hash, created_at, expires_at, attempts, consumed_at FROM phone_verifications WHERE id = ?1",
                [&id],
                |r| {
                    Ok(PhoneVerification {
                        id: r.get(0)?,
                        phone: r.get(1)?,
                        code_hash: r.get(2)?,
                        created_at: r.get(3)?,
                        expires_at: r.get(4)?,
                        attempts: r.get(5)?,
                        consumed_at: r.get(6)?,
                    })
                },
            )
            .optional())
        })
        .await
    }

    async fn verifications_since(&self, phone: &str, since: i64) -> StoreResult<Vec<i64>> {
        let phone = phone.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT created_at FROM phone_verifications WHERE phone = ?1 AND created_at >= ?2 ORDER BY created_at DESC",
            ))?;
            let rows = db(st.query_map(params![phone, since], |r| r.get::<_, i64>(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn count_attempt(&self, id: &str, seen: u32) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            Ok(db(c.execute(
                "UPDATE phone_verifications SET attempts = attempts + 1 WHERE id = ?1 AND attempts = ?2",
                params![id, seen],
            ))? == 1)
        })
        .await
    }

    async fn consume_verification(&self, id: &str, at: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            Ok(db(c.execute(
                "UPDATE phone_verifications SET consumed_at = ?2 WHERE id = ?1 AND consumed_at IS NULL",
                params![id, at],
            ))? == 1)
        })
        .await
    }
}

#[async_trait]
impl ContactStore for SqliteStore {
    async fn add_contact(
        &self,
        owner: &str,
        contact: &str,
        at: i64,
    ) -> StoreResult<(ContactEntry, bool)> {
        let (owner, contact) = (owner.to_string(), contact.to_string());
        self.write(move |c| {
            let new = db(c.execute(
                "INSERT OR IGNORE INTO contacts (owner_id, contact_id, added_at) VALUES (?1, ?2, ?3)",
                params![owner, contact, at],
            ))? == 1;
            let added_at = db(c.query_row(
                "SELECT added_at FROM contacts WHERE owner_id = ?1 AND contact_id = ?2",
                params![owner, contact],
                |r| r.get(0),
            ))?;
            Ok((
                ContactEntry {
                    user_id: contact,
                    added_at,
                },
                new,
            ))
        })
        .await
    }

    async fn remove_contact(&self, owner: &str, contact: &str) -> StoreResult<bool> {
        let (owner, contact) = (owner.to_string(), contact.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "DELETE FROM contacts WHERE owner_id = ?1 AND contact_id = ?2",
                params![owner, contact],
            ))? == 1)
        })
        .await
    }

    async fn contacts(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ContactEntry>> {
        let (owner, after) = (owner.to_string(), after.unwrap_or("").to_string());
        self.read(move |c| {
            entries(
                c,
                "SELECT contact_id, added_at FROM contacts WHERE owner_id = ?1 AND contact_id > ?2 ORDER BY contact_id LIMIT ?3",
                &owner,
                &after,
                limit,
            )
        })
        .await
    }

    async fn has_contacts(&self, owner: &str, others: &[String]) -> StoreResult<Vec<String>> {
        let (owner, others) = (owner.to_string(), others.to_vec());
        self.read(move |c| {
            which(
                c,
                "SELECT 1 FROM contacts WHERE owner_id = ?1 AND contact_id = ?2",
                &owner,
                &others,
            )
        })
        .await
    }

    async fn contact_of(&self, user: &str, others: &[String]) -> StoreResult<Vec<String>> {
        let (user, others) = (user.to_string(), others.to_vec());
        self.read(move |c| {
            which(
                c,
                "SELECT 1 FROM contacts WHERE contact_id = ?1 AND owner_id = ?2",
                &user,
                &others,
            )
        })
        .await
    }

    async fn block(
        &self,
        blocker: &str,
        blocked: &str,
        at: i64,
    ) -> StoreResult<(ContactEntry, bool)> {
        let (blocker, blocked) = (blocker.to_string(), blocked.to_string());
        self.write(move |c| {
            let new = db(c.execute(
                "INSERT OR IGNORE INTO blocks (blocker_id, blocked_id, created_at) VALUES (?1, ?2, ?3)",
                params![blocker, blocked, at],
            ))? == 1;
            let added_at = db(c.query_row(
                "SELECT created_at FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2",
                params![blocker, blocked],
                |r| r.get(0),
            ))?;
            Ok((
                ContactEntry {
                    user_id: blocked,
                    added_at,
                },
                new,
            ))
        })
        .await
    }

    async fn unblock(&self, blocker: &str, blocked: &str) -> StoreResult<bool> {
        let (blocker, blocked) = (blocker.to_string(), blocked.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "DELETE FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2",
                params![blocker, blocked],
            ))? == 1)
        })
        .await
    }

    async fn blocks(
        &self,
        blocker: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ContactEntry>> {
        let (blocker, after) = (blocker.to_string(), after.unwrap_or("").to_string());
        self.read(move |c| {
            entries(
                c,
                "SELECT blocked_id, created_at FROM blocks WHERE blocker_id = ?1 AND blocked_id > ?2 ORDER BY blocked_id LIMIT ?3",
                &blocker,
                &after,
                limit,
            )
        })
        .await
    }

    async fn blocked_by(&self, blocker: &str) -> StoreResult<Vec<String>> {
        let blocker = blocker.to_string();
        self.read(move |c| {
            column(
                c,
                "SELECT blocked_id FROM blocks WHERE blocker_id = ?1",
                &blocker,
            )
        })
        .await
    }

    async fn blockers_of(&self, user: &str) -> StoreResult<Vec<String>> {
        let user = user.to_string();
        self.read(move |c| {
            column(
                c,
                "SELECT blocker_id FROM blocks WHERE blocked_id = ?1",
                &user,
            )
        })
        .await
    }

    async fn blocked_either(&self, a: &str, b: &str) -> StoreResult<bool> {
        let (a, b) = (a.to_string(), b.to_string());
        self.read(move |c| {
            db(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2) OR (blocker_id = ?2 AND blocked_id = ?1))",
                params![a, b],
                |r| r.get::<_, bool>(0),
            ))
        })
        .await
    }
}
