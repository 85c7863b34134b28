//! One thin client per external service, each with a configurable base URL and all on the one
//! egress client: Google (ID tokens against its JWKS), Facebook (Graph `debug_token`, `/me`),
//! Twilio (Messages API), an OpenAI-compatible chat model (through `async-openai`), YouTube
//! (Data API v3 `search.list`). Only these modules know a provider's wire format. An unconfigured
//! provider answers `provider_not_configured`; a provider that fails answers `provider_error`
//! with the cause logged, never echoed.

pub mod facebook;
pub mod google;
pub mod openai;
pub mod twilio;
pub mod youtube;

use dovie_protocol::error::{ErrorBody, ErrorCode};

pub(crate) fn not_configured(provider: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::ProviderNotConfigured,
        format!("{provider} is not configured on this server"),
    )
}

/// The provider failed (down, refused, answered nonsense): logged with its cause.
pub(crate) fn failed(provider: &'static str, cause: impl std::fmt::Display) -> ErrorBody {
    tracing::warn!(provider, %cause, "provider call failed");
    ErrorBody::new(
        ErrorCode::ProviderError,
        format!("{provider} did not answer as expected; try again later"),
    )
}

/// A token the provider does not vouch for.
pub(crate) fn rejected(what: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unauthorized, what)
}
