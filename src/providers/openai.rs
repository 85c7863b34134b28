//! The chat model of an OpenAI-compatible API (OpenAI, or a self-hosted server with the same
//! API) through `async-openai`, sending with the egress client: its base URL is checked by the
//! egress guard when the client is made, and every name it resolves by the client's resolver.
//! The SDK's own retries are off (a provider's 429 or 5xx is answered at once as
//! `provider_error`; the caller may try again), so one API call is one provider call.

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use async_openai::Client;

use crate::config::OpenAiConfig;
use crate::egress::Egress;

pub struct OpenAi {
    client: Client<OpenAIConfig>,
    chat_model: String,
}

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
        }))
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
