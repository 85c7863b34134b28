//! People in the cluster store: provider identities (`user_identities`, claimed with an LWT),
//! phone verifications (`phone_verifications`, `verifications_by_phone`; attempts and use
//! decided by compare-and-set), contacts (`contacts`, `contacts_of`) and blocks (`blocks`,
//! `blocked_by`).

use super::*;

#[async_trait]
impl IdentityStore for ScyllaStore {
    async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<String>> {
        Ok(self
            .row::<(String,)>(&self.st.identity_of, (provider, subject))
            .await?
            .map(|(u,)| u))
    }

    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: &str,
        at: i64,
    ) -> StoreResult<String> {
        // The account's index first: an erasure finds every identity it may hold.
        self.write(
            &self.st.privacy.index_identity,
            (user_id, provider, subject),
        )
        .await?;
        if self
            .lwt(&self.st.claim_identity, (provider, subject, user_id, at))
            .await?
        {
            return Ok(user_id.to_string());
        }
        self.identity(provider, subject)
            .await?
            .ok_or_else(|| unavailable("an identity claim answered no holder"))
    }
}

#[async_trait]
impl PhoneStore for ScyllaStore {
    async fn create_verification(&self, v: PhoneVerification) -> StoreResult<()> {
        self.write(
            &self.st.insert_verification,
            (
                &v.id,
                &v.phone,
                &v.code_hash,
                v.created_at,
                v.expires_at,
                v.attempts as i32,
                v.consumed_at,
            ),
        )
        .await?;
        self.write(
            &self.st.insert_verification_by_phone,
            (&v.phone, v.created_at, &v.id),
        )
        .await
    }

    async fn verification(&self, id: &str) -> StoreResult<Option<PhoneVerification>> {
        type Row = (String, String, String, i64, i64, Option<i32>, Option<i64>);
        Ok(self
            .row::<Row>(&self.st.verification_by_id, (id,))
            .await?
            .map(|r| PhoneVerification {
                id: r.0,
                phone: r.1,
                code_hash: r.2,
                created_at: r.3,
                expires_at: r.4,
                attempts: r.5.unwrap_or(0).max(0) as u32,
                consumed_at: r.6,
            }))
    }

    async fn verifications_since(&self, phone: &str, since: i64) -> StoreResult<Vec<i64>> {
        Ok(self
            .rows::<(i64,)>(&self.st.verifications_since, (phone, since))
            .await?
            .into_iter()
            .map(|(t,)| t)
            .collect())
    }

    async fn count_attempt(&self, id: &str, seen: u32) -> StoreResult<bool> {
        self.lwt(&self.st.count_attempt, (seen as i32 + 1, id, seen as i32))
            .await
    }

    async fn consume_verification(&self, id: &str, at: i64) -> StoreResult<bool> {
        self.lwt(&self.st.consume_verification, (at, id)).await
    }
}

impl ScyllaStore {
    async fn entries(
        &self,
        st: &PreparedStatement,
        owner: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ContactEntry>> {
        Ok(self
            .rows::<(String, i64)>(st, (owner, after.unwrap_or(""), limit as i32))
            .await?
            .into_iter()
            .map(|(user_id, added_at)| ContactEntry { user_id, added_at })
            .collect())
    }

    /// The subset of `pairs` (owner, contact) for which a contact row exists, by `pick`.
    async fn existing_contacts(
        &self,
        pairs: Vec<(String, String, String)>,
    ) -> StoreResult<Vec<String>> {
        let found = try_join_all(pairs.iter().map(|(owner, contact, answer)| async move {
            Ok::<_, ErrorBody>(
                self.row::<(i64,)>(&self.st.contact_added, (owner, contact))
                    .await?
                    .map(|_| answer.clone()),
            )
        }))
        .await?;
        Ok(found.into_iter().flatten().collect())
    }
}

#[async_trait]
impl ContactStore for ScyllaStore {
    async fn add_contact(
        &self,
        owner: &str,
        contact: &str,
        at: i64,
    ) -> StoreResult<(ContactEntry, bool)> {
        let new = self
            .lwt(&self.st.insert_contact, (owner, contact, at))
            .await?;
        self.write(&self.st.insert_contact_of, (contact, owner))
            .await?;
        let added_at = self
            .row::<(i64,)>(&self.st.contact_added, (owner, contact))
            .await?
            .map_or(at, |(t,)| t);
        Ok((
            ContactEntry {
                user_id: contact.to_string(),
                added_at,
            },
            new,
        ))
    }

    async fn remove_contact(&self, owner: &str, contact: &str) -> StoreResult<bool> {
        let existed = self
            .row::<(i64,)>(&self.st.contact_added, (owner, contact))
            .await?
            .is_some();
        self.write(&self.st.delete_contact, (owner, contact))
            .await?;
        self.write(&self.st.delete_contact_of, (contact, owner))
            .await?;
        Ok(existed)
    }

    async fn contacts(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ContactEntry>> {
        self.entries(&self.st.contacts_page, owner, after, limit)
            .await
    }

    async fn has_contacts(&self, owner: &str, others: &[String]) -> StoreResult<Vec<String>> {
        let pairs = others
            .iter()
            .map(|o| (owner.to_string(), o.clone(), o.clone()))
            .collect();
        self.existing_contacts(pairs).await
    }

    async fn contact_of(&self, user: &str, others: &[String]) -> StoreResult<Vec<String>> {
        let pairs = others
            .iter()
            .map(|o| (o.clone(), user.to_string(), o.clone()))
            .collect();
        self.existing_contacts(pairs).await
    }

    async fn block(
        &self,
        blocker: &str,
        blocked: &str,
        at: i64,
    ) -> StoreResult<(ContactEntry, bool)> {
        let new = self
            .lwt(&self.st.insert_block, (blocker, blocked, at))
            .await?;
        self.write(&self.st.insert_blocked_by, (blocked, blocker))
            .await?;
        let added_at = self
            .row::<(i64,)>(&self.st.block_at, (blocker, blocked))
            .await?
            .map_or(at, |(t,)| t);
        Ok((
            ContactEntry {
                user_id: blocked.to_string(),
                added_at,
            },
            new,
        ))
    }

    async fn unblock(&self, blocker: &str, blocked: &str) -> StoreResult<bool> {
        let existed = self
            .row::<(i64,)>(&self.st.block_at, (blocker, blocked))
            .await?
            .is_some();
        self.write(&self.st.delete_block, (blocker, blocked))
            .await?;
        self.write(&self.st.delete_blocked_by, (blocked, blocker))
            .await?;
        Ok(existed)
    }

    async fn blocks(
        &self,
        blocker: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ContactEntry>> {
        self.entries(&self.st.blocks_page, blocker, after, limit)
            .await
    }

    async fn blocked_by(&self, blocker: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .rows::<(String,)>(&self.st.blocked_of, (blocker,))
            .await?
            .into_iter()
            .map(|(u,)| u)
            .collect())
    }

    async fn blockers_of(&self, user: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .rows::<(String,)>(&self.st.blockers, (user,))
            .await?
            .into_iter()
            .map(|(u,)| u)
            .collect())
    }

    async fn blocked_either(&self, a: &str, b: &str) -> StoreResult<bool> {
        let (x, y) = futures_util::future::try_join(
            self.row::<(i64,)>(&self.st.block_at, (a, b)),
            self.row::<(i64,)>(&self.st.block_at, (b, a)),
        )
        .await?;
        Ok(x.is_some() || y.is_some())
    }
}
