//! What the AI assistants keep in the embedded store: saved commands (`commands`, unique per
//! user and name) and translations of messages (`translations`, one per message and target,
//! replaced by a newer version's).

use super::*;

const COMMAND_COLS: &str = "id, user_id, name, text, created_at";

fn command(r: &Row) -> rusqlite::Result<SavedCommand> {
    Ok(SavedCommand {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        text: r.get(3)?,
        created_at: r.get(4)?,
    })
}

#[async_trait]
impl AiStore for SqliteStore {
    async fn put_command(&self, c: &SavedCommand) -> StoreResult<bool> {
        let c = c.clone();
        self.write(move |conn| {
            Ok(db(conn.execute(
                &format!(
                    "INSERT INTO commands ({COMMAND_COLS}) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (user_id, name) DO NOTHING"
                ),
                params![c.id, c.user_id, c.name, c.text, c.created_at],
            ))? == 1)
        })
        .await
    }

    async fn commands(&self, user_id: &str) -> StoreResult<Vec<SavedCommand>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {COMMAND_COLS} FROM commands WHERE user_id = ?1 ORDER BY name"
            )))?;
            let rows = db(st.query_map([&user_id], command))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn command_named(&self, user_id: &str, name: &str) -> StoreResult<Option<SavedCommand>> {
        let (user_id, name) = (user_id.to_string(), name.to_string());
        self.read(move |c| {
            db(c.query_row(
                &format!("SELECT {COMMAND_COLS} FROM commands WHERE user_id = ?1 AND name = ?2"),
                params![user_id, name],
                command,
            )
            .optional())
        })
        .await
    }

    async fn delete_command(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "DELETE FROM commands WHERE user_id = ?1 AND id = ?2",
                params![user_id, id],
            ))? == 1)
        })
        .await
    }

    async fn translation(
        &self,
        message_id: &str,
        target: &str,
    ) -> StoreResult<Option<TranslationRecord>> {
        let (message_id, target) = (message_id.to_string(), target.to_string());
        self.read(move |c| {
            db(c.query_row(
                "SELECT version, source_language, text FROM translations \
                 WHERE message_id = ?1 AND target = ?2",
                params![message_id, target],
                |r| {
                    Ok(TranslationRecord {
                        message_id: message_id.clone(),
                        target: target.clone(),
                        version: r.get(0)?,
                        source_language: r.get(1)?,
                        text: r.get(2)?,
                    })
                },
            )
            .optional())
        })
        .await
    }

    async fn put_translation(&self, t: &TranslationRecord) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO translations (message_id, target, version, source_language, text) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (message_id, target) DO UPDATE SET version = excluded.version, \
                 source_language = excluded.source_language, text = excluded.text \
                 WHERE excluded.version >= translations.version",
                params![t.message_id, t.target, t.version, t.source_language, t.text],
            ))?;
            Ok(())
        })
        .await
    }
}
