//! Dovie's WebSocket transport, lean by design: what stays allocated for an idle socket is one
//! task, the socket and a small [`Outbox`] — no read or write buffer survives between bursts.
//!
//! - [`handshake`] reads the upgrade request head and writes the `101` (or an error) response.
//! - [`socket`] drives one upgraded socket: decodes client frames (RFC 6455: masking, fragments,
//!   control frames, a size limit) into [`Inbound`] items, and writes what the [`Outbox`] holds,
//!   many frames per `write` call.
//!
//! Frame parsing and encoding use `actix-http`'s WebSocket parser, so both of Dovie's HTTP paths
//! frame bytes identically.

pub mod handshake;
pub mod socket;

pub use handshake::{Head, HeadError};
pub use socket::{drive, Inbound, Outbox, OutboxFull, Settings};
