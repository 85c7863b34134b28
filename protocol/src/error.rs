//! The error codes the API speaks, on REST (`{"error":{"code","message"}}`) and on the WebSocket
//! (`error` frames and `auth_error`). One enum, so no code is spelled twice.

use serde::{Deserialize, Serialize};

/// Every error code a client can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    ValidationFailed,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    RoomFull,
    /// The path exists, the method does not (REST: 405 with `Allow`).
    MethodNotAllowed,
    /// The account needs a consent it has not given (AI, location, …).
    ConsentRequired,
    /// The account is suspended.
    Suspended,
    /// A wrong or expired code, a forged or expired invite.
    VerificationFailed,
    /// An external provider failed; its cause is logged, never echoed.
    ProviderError,
    ProviderNotConfigured,
    StoreUnavailable,
    /// The node is draining or otherwise not taking this request: try another node.
    Unavailable,
    ResyncRequired,
    Internal,
}

impl ErrorCode {
    /// Every code, for documents that list them (the OpenAPI error schema).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadRequest,
        ErrorCode::ValidationFailed,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::RoomFull,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ConsentRequired,
        ErrorCode::Suspended,
        ErrorCode::VerificationFailed,
        ErrorCode::ProviderError,
        ErrorCode::ProviderNotConfigured,
        ErrorCode::StoreUnavailable,
        ErrorCode::Unavailable,
        ErrorCode::ResyncRequired,
        ErrorCode::Internal,
    ];

    /// The snake_case code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::Suspended => "suspended",
            ErrorCode::VerificationFailed => "verification_failed",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ProviderNotConfigured => "provider_not_configured",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ResyncRequired => "resync_required",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code on REST.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::ValidationFailed
            | ErrorCode::RoomFull
            | ErrorCode::VerificationFailed => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::ConsentRequired | ErrorCode::Suspended => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::ResyncRequired => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::ProviderError => 502,
            ErrorCode::ProviderNotConfigured
            | ErrorCode::StoreUnavailable
            | ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// The payload of an error: `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_speak_their_wire_names_and_statuses() {
        let mut names = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let wire = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(wire.as_str(), Some(code.as_str()));
            assert!(names.insert(code.as_str()), "{} twice", code.as_str());
            assert!((400..600).contains(&code.http_status()));
        }
        assert_eq!(ErrorCode::ProviderNotConfigured.http_status(), 503);
        assert_eq!(ErrorCode::ProviderError.http_status(), 502);
        assert_eq!(ErrorCode::ConsentRequired.http_status(), 403);
        assert_eq!(ErrorCode::Suspended.http_status(), 403);
        assert_eq!(ErrorCode::VerificationFailed.http_status(), 400);
    }
}
