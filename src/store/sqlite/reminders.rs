//! Reminders in the embedded store: `reminders`, fired once (`fired_at` set by the one update
//! that finds it empty), pending ones found by the partial indexes on due time.

use super::*;

const REMINDER_COLS: &str = "id, user_id, text, due_at, room_id, message_id, created_at";

fn reminder(r: &Row) -> rusqlite::Result<Reminder> {
    Ok(Reminder {
        id: r.get(0)?,
        user_id: r.get(1)?,
        text: r.get(2)?,
        due_at: r.get(3)?,
        room_id: r.get(4)?,
        message_id: r.get(5)?,
        created_at: r.get(6)?,
    })
}

#[async_trait]
impl ReminderStore for SqliteStore {
    async fn add_reminder(&self, r: &Reminder) -> StoreResult<()> {
        let r = r.clone();
        self.write(move |c| {
            db(c.execute(
                &format!(
                    "INSERT INTO reminders ({REMINDER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    r.id,
                    r.user_id,
                    r.text,
                    r.due_at,
                    r.room_id,
                    r.message_id,
                    r.created_at
                ],
            ))?;
            Ok(())
        })
        .await
    }

    async fn reminders_of(&self, user_id: &str) -> StoreResult<Vec<Reminder>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {REMINDER_COLS} FROM reminders WHERE user_id = ?1 AND fired_at IS NULL \
                 ORDER BY due_at, id"
            )))?;
            let rows = db(st.query_map([&user_id], reminder))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn delete_reminder(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_string(), id.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "DELETE FROM reminders WHERE id = ?1 AND user_id = ?2",
                params![id, user_id],
            ))? == 1)
        })
        .await
    }

    async fn due_reminders(&self, now: i64, limit: usize) -> StoreResult<Vec<Reminder>> {
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {REMINDER_COLS} FROM reminders WHERE fired_at IS NULL AND due_at <= ?1 \
                 ORDER BY due_at, id LIMIT ?2"
            )))?;
            let rows = db(st.query_map(params![now, limit as i64], reminder))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn fire_reminder(&self, r: &Reminder, at: i64) -> StoreResult<bool> {
        let id = r.id.clone();
        self.write(move |c| {
            Ok(db(c.execute(
                "UPDATE reminders SET fired_at = ?1 WHERE id = ?2 AND fired_at IS NULL",
                params![at, id],
            ))? == 1)
        })
        .await
    }
}
