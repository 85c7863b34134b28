//! Privacy records in the cluster store: consents with their whole history (`consents`, a row
//! per change, clustered by time).

use super::*;

#[async_trait]
impl ConsentStore for ScyllaStore {
    async fn add_consents(&self, user_id: &str, changes: &[ConsentRecord]) -> StoreResult<()> {
        try_join_all(changes.iter().map(|ch| {
            self.write(
                &self.st.ai.insert_consent,
                (user_id, ch.at, &ch.kind, ch.granted),
            )
        }))
        .await?;
        Ok(())
    }

    async fn consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        // Clustered by (at, kind): oldest first.
        let rows = self
            .rows::<(String, bool, i64)>(&self.st.ai.consents_of, (user_id,))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, granted, at)| ConsentRecord { kind, granted, at })
            .collect())
    }
}
