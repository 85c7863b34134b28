//! The automatic transcription queue in the embedded store: `transcription_jobs`, due ones found
//! by the index on due time, each taken (or put off) by the one update that still finds the
//! attempts and due time it was read with.

use super::*;

const JOB_COLS: &str = "file_id, user_id, attempts, due_at, created_at";

fn job(r: &Row) -> rusqlite::Result<TranscriptionJob> {
    Ok(TranscriptionJob {
        file_id: r.get(0)?,
        user_id: r.get(1)?,
        attempts: r.get(2)?,
        due_at: r.get(3)?,
        created_at: r.get(4)?,
    })
}

#[async_trait]
impl TranscriptionJobs for SqliteStore {
    async fn queue_transcription(&self, j: &TranscriptionJob) -> StoreResult<bool> {
        let j = j.clone();
        self.write(move |c| {
            Ok(db(c.execute(
                &format!(
                    "INSERT INTO transcription_jobs ({JOB_COLS}) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (file_id) DO NOTHING"
                ),
                params![j.file_id, j.user_id, j.attempts, j.due_at, j.created_at],
            ))? == 1)
        })
        .await
    }

    async fn due_transcriptions(
        &self,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<TranscriptionJob>> {
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {JOB_COLS} FROM transcription_jobs WHERE due_at <= ?1 \
                 ORDER BY due_at, file_id LIMIT ?2"
            )))?;
            let rows = db(st.query_map(params![now, limit as i64], job))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn move_transcription(
        &self,
        j: &TranscriptionJob,
        attempts: i32,
        due_at: i64,
    ) -> StoreResult<bool> {
        let j = j.clone();
        self.write(move |c| {
            Ok(db(c.execute(
                "UPDATE transcription_jobs SET attempts = ?1, due_at = ?2 \
                 WHERE file_id = ?3 AND attempts = ?4 AND due_at = ?5",
                params![attempts, due_at, j.file_id, j.attempts, j.due_at],
            ))? == 1)
        })
        .await
    }

    async fn finish_transcription(&self, j: &TranscriptionJob) -> StoreResult<()> {
        let id = j.file_id.clone();
        self.write(move |c| {
            db(c.execute(
                "DELETE FROM transcription_jobs WHERE file_id = ?1",
                params![id],
            ))?;
            Ok(())
        })
        .await
    }
}
