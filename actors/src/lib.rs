//! Dovie's actor system. One [`SessionActor`] per WebSocket connection, one [`RoomActor`] per
//! active room (the room's single writer), the [`RoomDirectory`] that finds or starts room actors
//! under supervision, and the [`Registry`] of live sessions by user.
//!
//! No HTTP and no database driver live here: the actors reach the world through the small traits
//! in [`ports`], which the server crate implements (SQLite or ScyllaDB, local or Redis bus).

pub mod directory;
pub mod event;
pub mod ports;
pub mod push;
pub mod registry;
pub mod remote;
pub mod room;
pub mod session;

pub use directory::RoomDirectory;
pub use event::Event;
pub use ports::{Authenticator, Fanout, Identity, Outlet, Ports, RoomStore, SendQuota, Telemetry};
pub use registry::Registry;
pub use room::RoomActor;
pub use session::{SessionActor, SessionConfig};

/// Milliseconds since the Unix epoch: every `_at` field on the wire.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
