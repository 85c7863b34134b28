//! Transcribing files (AI-2), asked for (`POST /api/transcribe`) or automatic: with
//! `ai.auto_transcribe`, a voice message's audio is queued in the store before the message is
//! sent (so an acknowledged voice message is never left untranscribed by a crash), if its sender
//! gave the `ai` consent. Every node sweeps the queue; a job is taken by one conditional write
//! (one node of many) under a lease — a node that dies holding it leaves it due again when the
//! lease ends — and a failed call is put off with a growing delay, given up after
//! [`MAX_ATTEMPTS`]. Consent and the sender's hourly quota are checked again when the job runs.
//! A transcript is kept on the file and the messages carrying it are amended (`message_edited`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dovie_protocol::error::{ErrorBody, ErrorCode};

use super::{lang, transcripts, Ai};
use crate::files::attach::ServerExtras;
use crate::files::Files;
use crate::ratelimit::{Limiter, Rule};
use crate::store::{FileKind, FileRecord, SharedStore, Transcript, TranscriptionJob};

/// Attempts at one file before it is given up.
pub const MAX_ATTEMPTS: i32 = 5;
/// How long a taken job is its node's: past it, another node takes it again.
const LEASE_MS: i64 = 4 * super::CALL_TIMEOUT.as_millis() as i64;
/// The longest a failed job is put off.
const MAX_DELAY_MS: i64 = 6 * 3600 * 1000;
/// How often each node looks for due jobs (a job queued on this node is looked at at once).
const SWEEP: Duration = Duration::from_secs(1);
/// Due jobs read per sweep.
const SWEEP_BATCH: usize = 100;
/// Jobs a node runs at once.
const WORKERS: usize = 2;

pub struct Transcriber {
    ai: Arc<Ai>,
    files: Arc<Files>,
    store: SharedStore,
    extras: Arc<ServerExtras>,
    limiter: Arc<Limiter>,
    requests_per_hour: u64,
    /// `ai.auto_transcribe`.
    auto: bool,
    /// The first delay after a failure (`ai.transcribe_retry_ms`); each next one is 4 times
    /// longer.
    retry_ms: i64,
    wake: tokio::sync::Notify,
    started: OnceLock<()>,
}

/// What became of a job (the metric's `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Not to be transcribed after all: the file is gone or cannot be, or consent was withdrawn.
    Skipped,
    /// Put off: the call failed, or the sender's quota is spent.
    Retry,
    GaveUp,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Skipped => "skipped",
            Outcome::Retry => "retry",
            Outcome::GaveUp => "gave_up",
        }
    }
}

impl Transcriber {
    pub fn new(
        config: &crate::config::AiConfig,
        ai: Arc<Ai>,
        files: Arc<Files>,
        store: SharedStore,
        extras: Arc<ServerExtras>,
        limiter: Arc<Limiter>,
    ) -> Arc<Transcriber> {
        Arc::new(Transcriber {
            ai,
            files,
            store,
            extras,
            limiter,
            requests_per_hour: config.requests_per_hour,
            auto: config.auto_transcribe,
            retry_ms: config.transcribe_retry_ms.max(1) as i64,
            wake: tokio::sync::Notify::new(),
            started: OnceLock::new(),
        })
    }

    /// The name `f` is sent to the model under, or why it cannot be transcribed.
    pub fn transcribable(f: &FileRecord) -> Result<&'static str, ErrorBody> {
        let invalid = |m: &str| ErrorBody::new(ErrorCode::ValidationFailed, m);
        if !matches!(f.kind, FileKind::Audio | FileKind::Video) {
            return Err(invalid(
                "only voice messages, audio and video files can be transcribed",
            ));
        }
        let name = transcripts::upload_name(&f.content_type)
            .ok_or_else(|| invalid("this file's format cannot be transcribed"))?;
        if f.size > transcripts::MAX_BYTES {
            return Err(invalid("files over 25 MB cannot be transcribed"));
        }
        Ok(name)
    }

    /// Transcribes `f` (sent as `upload_name`), keeps the transcript on the file and amends the
    /// messages carrying it. Who may ask, and whether they may spend a call, is the caller's.
    pub async fn transcribe(
        &self,
        f: &FileRecord,
        upload_name: &'static str,
    ) -> Result<Transcript, ErrorBody> {
        self.ai.transcribe_ready()?;
        let body = self.files.read(f, 0..f.size).await.map_err(|e| e.0)?;
        let (text, heard) = self
            .ai
            .transcribe(upload_name, &f.content_type, f.size, body)
            .await?;
        let language = transcripts::iso_of_heard(heard.as_deref())
            .or_else(|| lang::detect(&text).map(|d| d.language))
            .unwrap_or("und");
        let t = Transcript {
            text,
            language: language.to_string(),
            created_at: dovie_actors::now_ms(),
        };
        self.store.set_file_transcript(&f.id, &t).await?;
        if let Some(now) = self.store.file(&f.id).await? {
            self.extras.refresh(&now);
        }
        Ok(t)
    }

    /// Queues the automatic transcription of a voice message's audio `f`, sent by `sender_id`,
    /// when `ai.auto_transcribe` is on, a model is configured, the file can be transcribed and
    /// has not been, and the sender gave the `ai` consent. Durable when this answers.
    pub async fn queue(&self, f: &FileRecord, sender_id: &str) -> Result<(), ErrorBody> {
        if !self.auto
            || self.ai.transcribe_ready().is_err()
            || f.transcript.is_some()
            || Self::transcribable(f).is_err()
            || !self.consented(sender_id).await?
        {
            return Ok(());
        }
        let now = dovie_actors::now_ms();
        let job = TranscriptionJob {
            file_id: f.id.clone(),
            user_id: sender_id.to_string(),
            attempts: 0,
            due_at: now,
            created_at: now,
        };
        if self.store.queue_transcription(&job).await? {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn consented(&self, user_id: &str) -> Result<bool, ErrorBody> {
        let history = self.store.consents(user_id).await?;
        Ok(crate::api::privacy::granted(&history, "ai"))
    }

    /// Runs the jobs due at `now` (at most [`WORKERS`] at once); how many this node took.
    pub async fn sweep_once(&self, now: i64) -> Result<usize, ErrorBody> {
        use futures_util::StreamExt;
        let due = self.store.due_transcriptions(now, SWEEP_BATCH).await?;
        let taken = std::sync::atomic::AtomicUsize::new(0);
        futures_util::stream::iter(due)
            .for_each_concurrent(WORKERS, |job| {
                let taken = &taken;
                async move {
                    match self.run(job.clone(), now).await {
                        Ok(Some(outcome)) => {
                            taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            crate::metrics::auto_transcription(outcome.label());
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(
                            file = %job.file_id, error = %e.message,
                            "automatic transcription: the store failed; the job stays queued"
                        ),
                    }
                }
            })
            .await;
        Ok(taken.into_inner())
    }

    /// Takes `job` and runs it; `None` when another node took it first.
    async fn run(&self, job: TranscriptionJob, now: i64) -> Result<Option<Outcome>, ErrorBody> {
        let attempts = job.attempts + 1;
        if !self
            .store
            .move_transcription(&job, attempts, now + LEASE_MS)
            .await?
        {
            return Ok(None);
        }
        let taken = TranscriptionJob {
            attempts,
            due_at: now + LEASE_MS,
            ..job
        };
        let outcome = self.attempt(&taken).await;
        match outcome {
            Ok(()) => {
                self.store.finish_transcription(&taken).await?;
                Ok(Some(Outcome::Done))
            }
            Err(Stop::Skip(why)) => {
                tracing::info!(file = %taken.file_id, %why, "automatic transcription skipped");
                self.store.finish_transcription(&taken).await?;
                Ok(Some(Outcome::Skipped))
            }
            Err(Stop::Limited { after_ms }) => {
                // A spent quota is no failure of the file's: that attempt does not count.
                let at = dovie_actors::now_ms() + after_ms;
                self.store
                    .move_transcription(&taken, job.attempts, at)
                    .await?;
                Ok(Some(Outcome::Retry))
            }
            Err(Stop::Failed(e)) if taken.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(file = %taken.file_id, error = %e.message, attempts = taken.attempts,
                    "automatic transcription given up");
                self.store.finish_transcription(&taken).await?;
                Ok(Some(Outcome::GaveUp))
            }
            Err(Stop::Failed(e)) => {
                let delay = delay_after(self.retry_ms, taken.attempts);
                tracing::info!(file = %taken.file_id, error = %e.message, retry_in_ms = delay,
                    "automatic transcription failed; put off");
                let at = dovie_actors::now_ms() + delay;
                self.store
                    .move_transcription(&taken, taken.attempts, at)
                    .await?;
                Ok(Some(Outcome::Retry))
            }
        }
    }

    /// One attempt at a taken job.
    async fn attempt(&self, job: &TranscriptionJob) -> Result<(), Stop> {
        let f = match self.store.file(&job.file_id).await {
            Ok(Some(f)) if f.deleted_at.is_none() => f,
            Ok(_) => return Err(Stop::Skip("the file is gone")),
            Err(e) => return Err(Stop::Failed(e)),
        };
        if f.transcript.is_some() {
            return Ok(());
        }
        let Ok(name) = Self::transcribable(&f) else {
            return Err(Stop::Skip("the file cannot be transcribed"));
        };
        match self.consented(&job.user_id).await {
            Ok(true) => {}
            Ok(false) => return Err(Stop::Skip("the sender's `ai` consent is not given")),
            Err(e) => return Err(Stop::Failed(e)),
        }
        let rule = Rule::per_hour("ai", self.requests_per_hour);
        if let Err(limited) = self.limiter.hit(rule, &job.user_id).await {
            return Err(Stop::Limited {
                after_ms: limited.retry_after_secs as i64 * 1000,
            });
        }
        match self.transcribe(&f, name).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::ProviderNotConfigured => {
                Err(Stop::Skip("no transcription model is configured"))
            }
            Err(e) => Err(Stop::Failed(e)),
        }
    }

    /// Runs the sweeper (once), when automatic transcription is on: jobs left by a previous
    /// run, or by a node that died, are taken at once.
    pub fn spawn_sweeper(self: Arc<Self>) {
        if !self.auto || self.started.set(()).is_err() {
            return;
        }
        actix_rt::spawn(async move {
            loop {
                if let Err(e) = self.sweep_once(dovie_actors::now_ms()).await {
                    tracing::warn!(error = %e.message, "cannot look for due transcriptions");
                }
                let _ = tokio::time::timeout(SWEEP, self.wake.notified()).await;
            }
        });
    }
}

/// How long a job is put off after its `attempts`th failure: `retry_ms`, then 4 times longer
/// each time, at most [`MAX_DELAY_MS`].
fn delay_after(retry_ms: i64, attempts: i32) -> i64 {
    let factor = 4_i64.saturating_pow(attempts.saturating_sub(1).max(0) as u32);
    retry_ms.saturating_mul(factor).min(MAX_DELAY_MS)
}

/// Why an attempt did not end in a transcript.
enum Stop {
    Skip(&'static str),
    /// The sender's hourly quota is spent for this long.
    Limited {
        after_ms: i64,
    },
    Failed(ErrorBody),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_put_off_ever_longer_up_to_a_ceiling() {
        let delays: Vec<i64> = (1..=5).map(|n| delay_after(30_000, n)).collect();
        assert_eq!(delays, [30_000, 120_000, 480_000, 1_920_000, 7_680_000]);
        assert_eq!(delay_after(30_000, 7), MAX_DELAY_MS);
        assert_eq!(delay_after(500, 0), 500);
        assert_eq!(delay_after(i64::MAX, 40), MAX_DELAY_MS);
    }
}
