//! The automatic transcription queue in the cluster store: `transcription_jobs` (every write an
//! LWT — queued if absent, moved only if its attempts and due time are still the ones read,
//! deleted — so of many nodes taking a job exactly one does) and `transcription_jobs_due`, every
//! job by due time in one partition, what the sweepers read. A due row is written before the job
//! moves to it, so a job is never due without its row; rows left by a move or a deletion are
//! stale and removed when read.

use super::*;

pub(super) struct TranscriptionStmts {
    insert: PreparedStatement,
    by_id: PreparedStatement,
    update: PreparedStatement,
    delete: PreparedStatement,
    insert_due: PreparedStatement,
    due: PreparedStatement,
    delete_due: PreparedStatement,
}

impl TranscriptionStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<TranscriptionStmts, String> {
        let p = |cql: &str| prepare_statement(s, keyspace, cql.to_string());
        Ok(TranscriptionStmts {
            insert: p("INSERT INTO transcription_jobs (file_id, user_id, attempts, due_at, created_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS").await?,
            by_id: p("SELECT file_id, user_id, attempts, due_at, created_at FROM transcription_jobs WHERE file_id = ?").await?,
            update: p("UPDATE transcription_jobs SET attempts = ?, due_at = ? WHERE file_id = ? IF attempts = ? AND due_at = ?").await?,
            delete: p("DELETE FROM transcription_jobs WHERE file_id = ? IF EXISTS").await?,
            insert_due: p("INSERT INTO transcription_jobs_due (shard, due_at, file_id) VALUES (0, ?, ?)").await?,
            due: p("SELECT due_at, file_id FROM transcription_jobs_due WHERE shard = 0 AND due_at <= ? LIMIT ?").await?,
            delete_due: p("DELETE FROM transcription_jobs_due WHERE shard = 0 AND due_at = ? AND file_id = ?").await?,
        })
    }
}

type JobRow = (String, String, i32, i64, i64);

impl ScyllaStore {
    async fn transcription_job(&self, file_id: &str) -> StoreResult<Option<TranscriptionJob>> {
        Ok(self
            .row::<JobRow>(&self.st.transcriptions.by_id, (file_id,))
            .await?
            .map(|r| TranscriptionJob {
                file_id: r.0,
                user_id: r.1,
                attempts: r.2,
                due_at: r.3,
                created_at: r.4,
            }))
    }

    /// Removes the due row `(due_at, file_id)` unless the job is due then (another writer's row).
    async fn drop_due_unless_current(&self, due_at: i64, file_id: &str) -> StoreResult<()> {
        let current = self.transcription_job(file_id).await?;
        if current.is_some_and(|c| c.due_at == due_at) {
            return Ok(());
        }
        self.write(&self.st.transcriptions.delete_due, (due_at, file_id))
            .await
    }
}

#[async_trait]
impl TranscriptionJobs for ScyllaStore {
    async fn queue_transcription(&self, j: &TranscriptionJob) -> StoreResult<bool> {
        let st = &self.st.transcriptions;
        self.write(&st.insert_due, (j.due_at, &j.file_id)).await?;
        let queued = self
            .lwt(
                &st.insert,
                (&j.file_id, &j.user_id, j.attempts, j.due_at, j.created_at),
            )
            .await?;
        if !queued {
            // Queued before, under its own due row: this one would only be stale.
            self.drop_due_unless_current(j.due_at, &j.file_id).await?;
        }
        Ok(queued)
    }

    async fn due_transcriptions(
        &self,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<TranscriptionJob>> {
        let st = &self.st.transcriptions;
        let listed = self
            .rows::<(i64, String)>(&st.due, (now, limit.min(i32::MAX as usize) as i32))
            .await?;
        let jobs = try_join_all(listed.iter().map(|(_, id)| self.transcription_job(id))).await?;
        let mut due = Vec::new();
        for ((due_at, id), job) in listed.into_iter().zip(jobs) {
            match job {
                Some(j) if j.due_at == due_at => due.push(j),
                _ => self.write(&st.delete_due, (due_at, &id)).await?,
            }
        }
        Ok(due)
    }

    async fn move_transcription(
        &self,
        j: &TranscriptionJob,
        attempts: i32,
        due_at: i64,
    ) -> StoreResult<bool> {
        let st = &self.st.transcriptions;
        self.write(&st.insert_due, (due_at, &j.file_id)).await?;
        let moved = self
            .lwt(
                &st.update,
                (attempts, due_at, &j.file_id, j.attempts, j.due_at),
            )
            .await?;
        if moved {
            self.write(&st.delete_due, (j.due_at, &j.file_id)).await?;
        } else if due_at != j.due_at {
            self.drop_due_unless_current(due_at, &j.file_id).await?;
        }
        Ok(moved)
    }

    async fn finish_transcription(&self, j: &TranscriptionJob) -> StoreResult<()> {
        let st = &self.st.transcriptions;
        self.lwt(&st.delete, (&j.file_id,)).await?;
        self.write(&st.delete_due, (j.due_at, &j.file_id)).await
    }
}
