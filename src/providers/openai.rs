//! The chat model of an OpenAI-compatible API (OpenAI, or a self-hosted server with the same
//! API) through `async-openai`, sending with the egress client: its base URL is checked by the
//! egress guard when the client is made, and every name it resolves by the client's resolver.
//! The SDK's own retries are off (a provider's 429 or 5xx is answered at once as
//! `provider_error`; the caller may try again), so one API call is one provider call.
//!
//! Transcriptions (`audio/transcriptions`) are sent by this module itself on the same client:
//! the SDK takes a file as bytes in memory, while a file here is streamed — decrypted chunk by
//! chunk from the file store straight into the multipart body.

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use reqwest::multipart::{Form, Part};

use crate::config::OpenAiConfig;
use crate::egress::Egress;

pub struct OpenAi {
    client: Client<OpenAIConfig>,
    chat_model: String,
    /// The egress client, the API base, the key: for transcriptions.
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    transcribe_model: String,
}

/// The longest a transcription request may take (the egress client's own bound is for short
/// calls).
const TRANSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// One chat completion: the instructions, the content, and the most the answer may be.
pub struct Ask<'a> {
    pub system: &'a str,
    pub user: &'a str,
    pub max_tokens: u32,
    pub temperature: f32,
}

impl OpenAi {
    /// The client, if an API key is configured.
    pub fn new(config: &OpenAiConfig, egress: &Egress) -> Result<Option<OpenAi>, String> {
        if config.api_key.is_empty() {
            return Ok(None);
        }
        egress
            .check(&config.base_url)
            .map_err(|e| format!("providers.openai.base_url: {e:?}"))?;
        let api = OpenAIConfig::new()
            .with_api_base(config.base_url.trim_end_matches('/'))
            .with_api_key(config.api_key.clone());
        let no_retries = backoff::ExponentialBackoff {
            max_elapsed_time: Some(Duration::ZERO),
            ..Default::default()
        };
        let client = Client::with_config(api)
            .with_http_client(egress.client().clone())
            .with_backoff(no_retries);
        Ok(Some(OpenAi {
            client,
            chat_model: config.chat_model.clone(),
            http: egress.client().clone(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            api_key: config.api_key.clone(),
            transcribe_model: config.transcribe_model.clone(),
        }))
    }

    /// Whether transcriptions have a model.
    pub fn can_transcribe(&self) -> bool {
        !self.transcribe_model.is_empty()
    }

    /// The transcript of `size` bytes of audio streamed from `body`, sent as `upload_name` of
    /// `content_type`, and the language the model heard as it names it (Whisper: `korean`).
    pub async fn transcribe<S>(
        &self,
        upload_name: &'static str,
        content_type: &str,
        size: u64,
        body: S,
    ) -> Result<(String, Option<String>), String>
    where
        S: futures_util::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        bytes::Bytes: From<S::Ok>,
    {
        let file = Part::stream_with_length(reqwest::Body::wrap_stream(body), size)
            .file_name(upload_name)
            .mime_str(content_type)
            .map_err(|e| format!("content type: {e}"))?;
        let form = Form::new()
            .part("file", file)
            .text("model", self.transcribe_model.clone())
            .text("response_format", "verbose_json");
        let res = self
            .http
            .post(format!("{}/audio/transcriptions", self.base_url))
            .bearer_auth(&self.api_key)
            .timeout(TRANSCRIBE_TIMEOUT)
            .multipart(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            let e: ErrorAnswer = serde_json::from_slice(&body).unwrap_or_default();
            return Err(format!(
                "API error {status} {}: {}",
                e.error.code.as_deref().unwrap_or("-"),
                e.error.message
            ));
        }
        let answer: TranscriptionAnswer =
            serde_json::from_slice(&body).map_err(|e| format!("answer: {e}"))?;
        Ok((answer.text.trim().to_string(), answer.language))
    }

    /// The model's answer (its first choice's text) and the tokens it reported using
    /// (prompt, completion).
    pub async fn chat(&self, ask: &Ask<'_>) -> Result<(String, (u64, u64)), String> {
        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ChatCompletionRequestSystemMessage::from(ask.system).into(),
            ChatCompletionRequestUserMessage::from(ask.user).into(),
        ];
        let request = CreateChatCompletionRequestArgs::default()
            .model(&self.chat_model)
            .messages(messages)
            .max_completion_tokens(ask.max_tokens)
            .temperature(ask.temperature)
            .n(1)
            .build()
            .map_err(|e| format!("request: {e}"))?;
        let response = self.client.chat().create(request).await.map_err(describe)?;
        let used = response.usage.as_ref().map_or((0, 0), |u| {
            (u.prompt_tokens as u64, u.completion_tokens as u64)
        });
        let text = response
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .filter(|t| !t.trim().is_empty())
            .ok_or("the model answered no text")?;
        Ok((text, used))
    }
}

/// What a transcription answered: the text and the language the model heard, as it named it
/// (Whisper: an English name such as `korean`; some compatible servers: an ISO code).
#[derive(Debug, serde::Deserialize)]
struct TranscriptionAnswer {
    text: String,
    #[serde(default)]
    language: Option<String>,
}

/// An OpenAI error body's code, for the log.
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
}

/// A provider failure for the log (never for the caller).
fn describe(e: OpenAIError) -> String {
    match e {
        OpenAIError::ApiError(api) => format!(
            "API error {}: {}",
            api.code.as_deref().unwrap_or("-"),
            api.message
        ),
        other => other.to_string(),
    }
}
