//! Dovie's wire contract as Rust types: the REST/WebSocket data model, frames, client commands,
//! server events, error codes, and the two codecs (JSON and MessagePack).
//!
//! This crate does no I/O. It is shared by the server, the actors and any client or load tool, so
//! that everyone agrees on one schema. PROTOCOL.md is the human-readable twin of this crate.

pub mod codec;
pub mod commands;
pub mod error;
pub mod events;
pub mod model;
pub mod rules;

pub use codec::{Codec, DecodeError, Frame};
pub use error::ErrorCode;
