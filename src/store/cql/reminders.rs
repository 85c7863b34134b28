//! Reminders in the cluster store: `reminders` (every write of the table an LWT, so Paxos and
//! plain writes never mix on a row: the insert, the firing — which needs the row to exist and
//! `fired_at` to be empty, so of many sweeping nodes exactly one fires it and a deleted one
//! never fires — and the deletion), each user's pending ones (`reminders_by_user`) and every
//! pending one by due time (`reminders_due`, what the sweepers read; one partition, like the
//! live shares' due list).

use super::*;

pub(super) struct ReminderStmts {
    insert: PreparedStatement,
    by_id: PreparedStatement,
    fire: PreparedStatement,
    delete: PreparedStatement,
    insert_by_user: PreparedStatement,
    by_user: PreparedStatement,
    delete_by_user: PreparedStatement,
    insert_due: PreparedStatement,
    due: PreparedStatement,
    delete_due: PreparedStatement,
}

impl ReminderStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<ReminderStmts, String> {
        let p = |cql: &str| prepare_statement(s, keyspace, cql.to_string());
        Ok(ReminderStmts {
            insert: p("INSERT INTO reminders (id, user_id, text, due_at, room_id, message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS").await?,
            by_id: p("SELECT id, user_id, text, due_at, room_id, message_id, created_at, fired_at FROM reminders WHERE id = ?").await?,
            fire: p("UPDATE reminders SET fired_at = ? WHERE id = ? IF fired_at = null AND user_id = ?").await?,
            delete: p("DELETE FROM reminders WHERE id = ? IF user_id = ?").await?,
            insert_by_user: p("INSERT INTO reminders_by_user (user_id, due_at, id) VALUES (?, ?, ?)").await?,
            by_user: p("SELECT id FROM reminders_by_user WHERE user_id = ?").await?,
            delete_by_user: p("DELETE FROM reminders_by_user WHERE user_id = ? AND due_at = ? AND id = ?").await?,
            insert_due: p("INSERT INTO reminders_due (shard, due_at, id) VALUES (0, ?, ?)").await?,
            due: p("SELECT id FROM reminders_due WHERE shard = 0 AND due_at <= ? LIMIT ?").await?,
            delete_due: p("DELETE FROM reminders_due WHERE shard = 0 AND due_at = ? AND id = ?").await?,
        })
    }
}

type ReminderRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

impl ScyllaStore {
    /// A reminder and whether it fired.
    async fn reminder_row(&self, id: &str) -> StoreResult<Option<(Reminder, bool)>> {
        Ok(self
            .row::<ReminderRow>(&self.st.reminders.by_id, (id,))
            .await?
            .map(|r| {
                let fired = r.7.is_some();
                (
                    Reminder {
                        id: r.0,
                        user_id: r.1,
                        text: r.2,
                        due_at: r.3,
                        room_id: r.4,
                        message_id: r.5,
                        created_at: r.6,
                    },
                    fired,
                )
            }))
    }

    /// The reminders of these ids that exist (fired or not).
    async fn reminders_by_id(&self, ids: &[String]) -> StoreResult<Vec<(Reminder, bool)>> {
        let found = try_join_all(ids.iter().map(|id| self.reminder_row(id))).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Drops a reminder from its user's list and the due list.
    async fn unlist_reminder(&self, r: &Reminder) -> StoreResult<()> {
        let st = &self.st.reminders;
        self.write(&st.delete_by_user, (&r.user_id, r.due_at, &r.id))
            .await?;
        self.write(&st.delete_due, (r.due_at, &r.id)).await
    }
}

#[async_trait]
impl ReminderStore for ScyllaStore {
    async fn add_reminder(&self, r: &Reminder) -> StoreResult<()> {
        let st = &self.st.reminders;
        // Listed first: a list row without its reminder is skipped, never the other way round.
        self.write(&st.insert_by_user, (&r.user_id, r.due_at, &r.id))
            .await?;
        self.write(&st.insert_due, (r.due_at, &r.id)).await?;
        self.lwt(
            &st.insert,
            (
                &r.id,
                &r.user_id,
                &r.text,
                r.due_at,
                &r.room_id,
                &r.message_id,
                r.created_at,
            ),
        )
        .await?;
        Ok(())
    }

    async fn reminders_of(&self, user_id: &str) -> StoreResult<Vec<Reminder>> {
        // Clustered by due time: already soonest first.
        let ids: Vec<String> = self
            .rows::<(String,)>(&self.st.reminders.by_user, (user_id,))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        Ok(self
            .reminders_by_id(&ids)
            .await?
            .into_iter()
            .filter(|(r, fired)| !fired && r.user_id == user_id)
            .map(|(r, _)| r)
            .collect())
    }

    async fn delete_reminder(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let Some((r, _)) = self.reminder_row(id).await? else {
            return Ok(false);
        };
        if r.user_id != user_id {
            return Ok(false);
        }
        let deleted = self.lwt(&self.st.reminders.delete, (id, user_id)).await?;
        self.unlist_reminder(&r).await?;
        Ok(deleted)
    }

    async fn due_reminders(&self, now: i64, limit: usize) -> StoreResult<Vec<Reminder>> {
        let ids: Vec<String> = self
            .rows::<(String,)>(
                &self.st.reminders.due,
                (now, limit.min(i32::MAX as usize) as i32),
            )
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
        let mut due = Vec::new();
        for (r, fired) in self.reminders_by_id(&ids).await? {
            if fired {
                // Fired before: a crash may have left its list rows.
                self.unlist_reminder(&r).await?;
            } else {
                due.push(r);
            }
        }
        due.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        Ok(due)
    }

    async fn fire_reminder(&self, r: &Reminder, at: i64) -> StoreResult<bool> {
        let fired = self
            .lwt(&self.st.reminders.fire, (at, &r.id, &r.user_id))
            .await?;
        self.unlist_reminder(r).await?;
        Ok(fired)
    }
}
