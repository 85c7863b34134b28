//! Storage: one trait per concern, implemented by the embedded store (SQLite) and — in cluster
//! mode — the ScyllaDB store. The room actors' port (`dovie_actors::RoomStore`) is one more of
//! these concerns. Everything returns `ErrorBody` errors the API can speak directly
//! (`store_unavailable` for an unreachable or failing database, never a leaked cause).
//!
//! Each implementation is a folder with one module per concern (`sqlite/users.rs`,
//! `cql/rooms.rs`, …) beside its plumbing (`mod.rs`); a new concern adds its trait here and a
//! file to each folder. The conformance tests in `tests/store_conformance/` (one file per
//! concern) run against every implementation.

pub mod cql;
pub mod sqlite;
pub mod text;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::{Message, Role, Room, User, UserRole};

pub type StoreResult<T> = Result<T, ErrorBody>;

/// A user row with its password hash (never leaves the server).
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// Accounts.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; `conflict` if the email is taken.
    async fn create_user(&self, record: UserRecord) -> StoreResult<User>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// The subset of `ids` that are existing users.
    async fn existing_users(&self, ids: &[String]) -> StoreResult<Vec<String>>;
    /// Sets an account's role; `not_found` if there is no such account.
    async fn set_user_role(&self, id: &str, role: UserRole) -> StoreResult<User>;
}

/// A login session: one refresh-token family.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// What rotating a refresh token found.
#[derive(Debug, Clone)]
pub enum Rotation {
    /// The token was current: it is now used, the new one is current.
    Rotated(AuthSession),
    /// The token was already used once: a replay; the session is now revoked.
    Reused(AuthSession),
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

/// Login sessions and refresh tokens (stored as SHA-256 hashes, never in clear).
#[async_trait]
pub trait AuthStore: Send + Sync {
    async fn create_session(&self, session: AuthSession, refresh_hash: &str) -> StoreResult<()>;
    /// Rotates `old_hash` to `new_hash` atomically.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Rotation>;
    async fn revoke_session(&self, session_id: &str, at: i64) -> StoreResult<()>;
    /// Sessions revoked at or after `since` (to warm the revocation cache at start). Callers ask
    /// for recent history only — about one access-token lifetime back — never all time.
    async fn revoked_since(&self, since: i64) -> StoreResult<Vec<String>>;
}

/// How a create of a room ended.
#[derive(Debug, Clone)]
pub enum Created {
    New(Room),
    /// A direct room for this pair already existed.
    Existing(Room),
}

/// One row of "my rooms".
#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub room: Room,
    pub last_message: Option<Message>,
    pub unread_count: u64,
}

/// Room records and membership.
#[async_trait]
pub trait RoomRecords: Send + Sync {
    /// Creates a room; a direct room for an existing pair answers `Existing`.
    async fn create_room(&self, room: Room) -> StoreResult<Created>;
    async fn get_room(&self, id: &str) -> StoreResult<Option<Room>>;
    async fn rename_room(&self, id: &str, name: Option<&str>) -> StoreResult<Room>;
    async fn delete_room(&self, id: &str) -> StoreResult<()>;
    /// Adds members (existing ones keep their role); fails with `room_full` past `max`.
    async fn add_members(
        &self,
        id: &str,
        members: &[(String, Role)],
        max: usize,
    ) -> StoreResult<Room>;
    async fn remove_member(&self, id: &str, user_id: &str) -> StoreResult<Room>;
    async fn set_role(&self, id: &str, user_id: &str, role: Role) -> StoreResult<Room>;
    /// My rooms, most recently active first, with last message and unread count.
    async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<RoomSummary>>;
    async fn unread_counts(&self, user_id: &str) -> StoreResult<HashMap<String, u64>>;
    /// The ids of my rooms (cheap: no room records).
    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>>;
}

/// A page of history.
#[derive(Debug, Clone)]
pub struct Page {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

/// Reading history and searching.
#[async_trait]
pub trait History: Send + Sync {
    /// Ascending by seq. `after`: the `limit` messages right after it; else `before`: the `limit`
    /// messages right before it; else the latest `limit`.
    async fn history(
        &self,
        room_id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page>;
    /// Full-text search over the rooms of `user_id` (or one of them), newest first.
    async fn search(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;
    /// Messages tagged `#tag` in the rooms of `user_id`, newest first.
    async fn by_hashtag(&self, user_id: &str, tag: &str, limit: usize)
        -> StoreResult<Vec<Message>>;
}

/// Everything a node's store provides.
pub trait Store: UserStore + AuthStore + RoomRecords + History + dovie_actors::RoomStore {}

impl<T: UserStore + AuthStore + RoomRecords + History + dovie_actors::RoomStore> Store for T {}

pub type SharedStore = Arc<dyn Store>;

/// The error a store answers when its backend fails: logged with the cause (tagged with the
/// backend), answered without it.
pub(crate) fn unavailable_from(backend: &'static str, cause: impl std::fmt::Display) -> ErrorBody {
    tracing::error!(%cause, backend, "store error");
    ErrorBody::new(
        ErrorCode::StoreUnavailable,
        "the store is unavailable; try again",
    )
}

pub(crate) fn not_found(what: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotFound, format!("no such {what}"))
}
