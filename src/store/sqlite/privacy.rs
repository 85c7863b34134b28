//! Privacy records in the embedded store: consents with their whole history (`consents`, a
//! row per change).

use super::*;

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn add_consents(&self, user_id: &str, changes: &[ConsentRecord]) -> StoreResult<()> {
        let (user_id, changes) = (user_id.to_string(), changes.to_vec());
        self.write(move |c| {
            let mut st = db(c.prepare_cached(
                "INSERT INTO consents (user_id, at, kind, granted) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id, at, kind) DO UPDATE SET granted = excluded.granted",
            ))?;
            for ch in &changes {
                db(st.execute(params![user_id, ch.at, ch.kind, ch.granted]))?;
            }
            Ok(())
        })
        .await
    }

    async fn consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT kind, granted, at FROM consents WHERE user_id = ?1 ORDER BY at, kind",
            ))?;
            let rows = db(st.query_map([&user_id], |r| {
                Ok(ConsentRecord {
                    kind: r.get(0)?,
                    granted: r.get(1)?,
                    at: r.get(2)?,
                })
            }))?;
            rows.map(db).collect()
        })
        .await
    }
}
