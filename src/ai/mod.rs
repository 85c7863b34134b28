//! AI assistants (AI-1..6): what may be sent to a provider, and how its answers are read. Local
//! first — language detection ([`lang`]), hashtag suggestions from what the caller can read
//! ([`hashtags`]), saved commands ([`commands`]) need no provider at all. Provider calls (the
//! chat model, YouTube) go through [`Ai`]: each is bounded by [`CALL_TIMEOUT`], counted in
//! `dovie_ai_calls_total` and `dovie_ai_call_seconds`, and answers `provider_error` when the
//! provider fails (its cause logged, never echoed) or `provider_not_configured` without a key.
//! Who may call — the `ai` consent, the hourly quota, what the caller can read — is checked by
//! the API before anything reaches here.

pub mod commands;
pub mod hashtags;
pub mod lang;
pub mod reminders;
pub mod replies;
pub mod transcriber;
pub mod transcripts;
pub mod when;

use std::future::Future;
use std::time::{Duration, Instant};

use dovie_protocol::error::ErrorBody;

use crate::config::Config;
use crate::egress::Egress;
use crate::providers::openai::{Ask, OpenAi};
use crate::providers::youtube::{Video, VideoDetail, YouTube};
use crate::providers::{failed, not_configured};

/// The longest a provider call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Ai {
    openai: Option<OpenAi>,
    youtube: YouTube,
}

impl Ai {
    pub fn new(config: &Config, egress: &Egress) -> Result<Ai, String> {
        Ok(Ai {
            openai: OpenAi::new(&config.providers.openai, egress)?,
            youtube: YouTube::new(config.providers.youtube.clone(), egress.clone()),
        })
    }

    /// Whether the chat model is configured.
    pub fn has_chat_model(&self) -> bool {
        self.openai.is_some()
    }

    /// `provider_not_configured` unless the chat model is configured.
    pub fn chat_ready(&self) -> Result<&OpenAi, ErrorBody> {
        self.openai
            .as_ref()
            .ok_or_else(|| not_configured("The AI model (providers.openai)"))
    }

    /// `provider_not_configured` unless transcription is configured (a key and a model).
    pub fn transcribe_ready(&self) -> Result<&OpenAi, ErrorBody> {
        self.openai
            .as_ref()
            .filter(|m| m.can_transcribe())
            .ok_or_else(|| not_configured("Transcription (providers.openai)"))
    }

    /// The transcript of a file's `size` bytes streamed from `body` (sent as `upload_name`),
    /// and the language the model heard as it names it.
    pub async fn transcribe<S>(
        &self,
        upload_name: &'static str,
        content_type: &str,
        size: u64,
        body: S,
    ) -> Result<(String, Option<String>), ErrorBody>
    where
        S: futures_util::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        bytes::Bytes: From<S::Ok>,
    {
        let model = self.transcribe_ready()?;
        timed(
            "openai",
            "transcribe",
            model.transcribe(upload_name, content_type, size, body),
        )
        .await
    }

    /// `provider_not_configured` unless YouTube search is configured.
    pub fn youtube_ready(&self) -> Result<(), ErrorBody> {
        if self.youtube.configured() {
            return Ok(());
        }
        Err(not_configured("YouTube search (providers.youtube)"))
    }

    /// The chat model's answer to `ask`, for the API call `call` (a metrics label).
    pub async fn ask(&self, call: &'static str, ask: &Ask<'_>) -> Result<String, ErrorBody> {
        let model = self.chat_ready()?;
        let (text, (prompt, completion)) = timed("openai", call, model.chat(ask)).await?;
        crate::metrics::ai_tokens(prompt, completion);
        Ok(text)
    }

    /// The video `id` as YouTube describes it (`None`: no such video), for link previews.
    pub async fn youtube_video(&self, id: &str) -> Result<Option<VideoDetail>, ErrorBody> {
        self.youtube_ready()?;
        timed("youtube", "video", self.youtube.video(id)).await
    }

    /// YouTube videos matching `q`.
    pub async fn youtube_search(&self, q: &str, limit: u32) -> Result<Vec<Video>, ErrorBody> {
        self.youtube_ready()?;
        timed("youtube", "search", self.youtube.search(q, limit)).await
    }
}

/// Runs a provider call within [`CALL_TIMEOUT`], counting it.
async fn timed<T>(
    provider: &'static str,
    call: &'static str,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, ErrorBody> {
    let started = Instant::now();
    let (result, outcome) = match tokio::time::timeout(CALL_TIMEOUT, work).await {
        Ok(Ok(v)) => (Ok(v), "ok"),
        Ok(Err(cause)) => (Err(failed(provider, cause)), "failed"),
        Err(_) => (
            Err(failed(
                provider,
                format!("no answer within {CALL_TIMEOUT:?}"),
            )),
            "timeout",
        ),
    };
    crate::metrics::ai_call(provider, call, outcome, started.elapsed());
    result
}
