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
    ProviderNotConfigured,
    StoreUnavailable,
    /// The node is draining or otherwise not taking this request: try another node.
    Unavailable,
    ResyncRequired,
    Internal,
}

impl ErrorCode {
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
            ErrorCode::BadRequest | ErrorCode::ValidationFailed | ErrorCode::RoomFull => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::ResyncRequired => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
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
