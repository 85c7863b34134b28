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
use dovie_protocol::model::{Message, Role, Room, Theme, User, UserRole};

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
    /// The accounts of these ids that exist, in the order asked.
    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>>;
    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>>;
    /// Changes the profile fields the patch names (and the name index with the name or
    /// `discoverable`); `not_found` for no such account.
    async fn update_profile(&self, id: &str, patch: &ProfilePatch) -> StoreResult<User>;
    /// Gives the account this phone (replacing its old one); `conflict` if another account
    /// has it.
    async fn set_phone(&self, id: &str, phone: &str) -> StoreResult<User>;
    /// Discoverable accounts one of whose name prefixes (see [`text::name_prefixes`]) is
    /// `prefix`, ascending by id after `after`, at most `limit`.
    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<User>>;
    /// When the account was last online (`None`: never, or no such account).
    async fn last_seen(&self, id: &str) -> StoreResult<Option<i64>>;
}

/// A profile change: `None` leaves a field alone; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub bio: Option<Option<String>>,
    pub status_message: Option<Option<String>>,
    pub theme: Option<Theme>,
    pub locale: Option<String>,
    /// An IANA time zone, or none (UTC).
    pub time_zone: Option<Option<String>>,
    pub presence_visible: Option<bool>,
    pub discoverable: Option<bool>,
    /// The profile image's link (`/api/profile-images/…`), or none.
    pub avatar_url: Option<Option<String>>,
}

/// Accounts at external identity providers, each linked to one Dovie account.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The account linked to `subject` at `provider`.
    async fn identity(&self, provider: &str, subject: &str) -> StoreResult<Option<String>>;
    /// Links `subject` at `provider` to the account; answers the account it is linked to
    /// afterwards (another one if it was linked before: the first link holds).
    async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: &str,
        at: i64,
    ) -> StoreResult<String>;
}

/// One SMS code sent to a phone (the code is kept only as a keyed hash).
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneVerification {
    pub id: String,
    pub phone: String,
    pub code_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Wrong codes tried so far.
    pub attempts: u32,
    pub consumed_at: Option<i64>,
}

/// Phone verifications (`phone_verifications`).
#[async_trait]
pub trait PhoneStore: Send + Sync {
    async fn create_verification(&self, v: PhoneVerification) -> StoreResult<()>;
    async fn verification(&self, id: &str) -> StoreResult<Option<PhoneVerification>>;
    /// When codes were sent to `phone` at or after `since`, newest first.
    async fn verifications_since(&self, phone: &str, since: i64) -> StoreResult<Vec<i64>>;
    /// Counts one wrong code if `attempts` is still `seen` (compare-and-set: parallel guesses
    /// each count); answers whether it counted.
    async fn count_attempt(&self, id: &str, seen: u32) -> StoreResult<bool>;
    /// Spends the code: true the first time only.
    async fn consume_verification(&self, id: &str, at: i64) -> StoreResult<bool>;
}

/// One entry of my contacts.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactEntry {
    pub user_id: String,
    pub added_at: i64,
}

/// Contacts (one-way: mine are whom I added) and blocks.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Adds `contact` to `owner`'s contacts; answers the entry and whether it is new.
    async fn add_contact(
        &self,
        owner: &str,
        contact: &str,
        at: i64,
    ) -> StoreResult<(ContactEntry, bool)>;
    /// Answers whether there was such a contact.
    async fn remove_contact(&self, owner: &str, contact: &str) -> StoreResult<bool>;
    /// `owner`'s contacts ascending by user id after `after`, at most `limit`.
    async fn contacts(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ContactEntry>>;
    /// Which of `others` are among `owner`'s contacts.
    async fn has_contacts(&self, owner: &str, others: &[String]) -> StoreResult<Vec<String>>;
    /// Which of `others` have `user` among their contacts.
    async fn contact_of(&self, user: &str, others: &[String]) -> StoreResult<Vec<String>>;
    /// `blocker` blocks `blocked`; answers the block (a repeat keeps the first time) and
    /// whether it is new.
    async fn block(
        &self,
        blocker: &str,
        blocked: &str,
        at: i64,
    ) -> StoreResult<(ContactEntry, bool)>;
    async fn unblock(&self, blocker: &str, blocked: &str) -> StoreResult<bool>;
    /// Whom `blocker` blocked, ascending by user id after `after`, at most `limit`.
    async fn blocks(
        &self,
        blocker: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ContactEntry>>;
    /// Every user `blocker` blocked (for filtering events).
    async fn blocked_by(&self, blocker: &str) -> StoreResult<Vec<String>>;
    /// Every user who blocked `user`.
    async fn blockers_of(&self, user: &str) -> StoreResult<Vec<String>>;
    /// Whether either of the two blocked the other.
    async fn blocked_either(&self, a: &str, b: &str) -> StoreResult<bool>;
}

/// A login session: one refresh-token family.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The device name the client gave at login.
    pub device: Option<String>,
    pub user_agent: Option<String>,
    /// The client's address at login or last use (forgotten after `privacy.ip_retention_days`).
    pub ip: Option<String>,
    /// The last login, refresh or socket connect of this session.
    pub last_seen_at: i64,
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
    /// The user's sessions that are neither revoked nor expired at `now`, newest first.
    async fn sessions_of(&self, user_id: &str, now: i64) -> StoreResult<Vec<AuthSession>>;
    async fn session(&self, id: &str) -> StoreResult<Option<AuthSession>>;
    /// Records a use of the session (and the address it came from).
    async fn touch_session(&self, id: &str, at: i64, ip: Option<&str>) -> StoreResult<()>;
    /// Forgets the addresses of sessions last used before `before`; answers how many.
    async fn forget_session_ips(&self, before: i64) -> StoreResult<u64>;
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
    /// The rooms of these ids that exist, in the order asked (one read on the embedded store).
    async fn rooms_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Room>>;
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
    /// The direct room of two users, if they have one.
    async fn direct_room(&self, a: &str, b: &str) -> StoreResult<Option<String>>;
}

/// The key of a direct room's pair: both ids, sorted, joined by `:`.
pub fn pair_key(a: &str, b: &str) -> String {
    let mut pair = [a, b];
    pair.sort();
    pair.join(":")
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

/// What a file is, by its sniffed type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Image,
    Video,
    Audio,
    Document,
    Archive,
}

impl FileKind {
    pub const ALL: [FileKind; 5] = [
        FileKind::Image,
        FileKind::Video,
        FileKind::Audio,
        FileKind::Document,
        FileKind::Archive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Video => "video",
            FileKind::Audio => "audio",
            FileKind::Document => "document",
            FileKind::Archive => "archive",
        }
    }

    pub fn parse(s: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One stored preview image of a file (encrypted like the file, under its own data key).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreviewObject {
    /// `small`, `medium` or `large`.
    pub size: String,
    pub object: String,
    pub wrapped_key: String,
    pub key_id: String,
    pub content_type: String,
    /// Plaintext bytes.
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

/// What the preview jobs learn of a file: dimensions, duration, pages, title, previews.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previews: Vec<PreviewObject>,
}

/// Where a file's preview work stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreviewState {
    /// Queued (or interrupted: picked up again at start).
    Pending,
    /// Done: `meta` holds what could be learnt.
    Done,
}

impl PreviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewState::Pending => "pending",
            PreviewState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> PreviewState {
        if s == "done" {
            PreviewState::Done
        } else {
            PreviewState::Pending
        }
    }
}

/// A stored file: what it is, where its encrypted bytes are, and under which wrapped key.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub id: String,
    pub uploader_id: String,
    /// The original name (only ever sent back in `Content-Disposition` and the file object).
    pub filename: String,
    pub content_type: String,
    pub kind: FileKind,
    /// Plaintext bytes.
    pub size: u64,
    pub sha256: String,
    /// The object's random name in the object store.
    pub object: String,
    pub key_id: String,
    pub wrapped_key: String,
    pub chunk_bytes: u32,
    pub hashtags: Vec<String>,
    pub room_id: Option<String>,
    /// Readable by anyone (profile images).
    pub public: bool,
    pub meta: FileMeta,
    pub preview_state: PreviewState,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    /// What a transcription model heard in it (audio and video).
    pub transcript: Option<Transcript>,
}

/// A file's transcript (AI-2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transcript {
    pub text: String,
    /// ISO 639-1 (`und`: undetermined).
    pub language: String,
    pub created_at: i64,
}

/// Which files a listing wants. `rooms`: the caller's rooms (files shared there are readable);
/// files the caller uploaded are always in.
#[derive(Debug, Clone, Default)]
pub struct FileQuery {
    pub user_id: String,
    pub rooms: Vec<String>,
    /// Only files shared in this room (it must be one of `rooms`).
    pub room_id: Option<String>,
    pub hashtag: Option<String>,
    pub kind: Option<FileKind>,
    /// Ids below this one (ids are time-ordered), newest first.
    pub before: Option<String>,
    pub limit: usize,
}

/// A cached link preview.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPreviewRecord {
    pub url: String,
    /// The preview object (`url`, `title`, `description`, `image_url`, `site_name`), or `null`
    /// when the page had none (cached too, so a page is not fetched again and again).
    pub preview: serde_json::Value,
    pub fetched_at: i64,
}

/// Files, their room shares, link previews and the store's generated secrets.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Records a new file (and its hashtags, and its first room share when `room_id` is set).
    async fn insert_file(&self, f: &FileRecord) -> StoreResult<()>;
    /// The file, deleted ones included (`deleted_at` set).
    async fn file(&self, id: &str) -> StoreResult<Option<FileRecord>>;
    /// Stores what the preview jobs learnt and marks the file done.
    async fn set_file_meta(&self, id: &str, meta: &FileMeta) -> StoreResult<()>;
    /// Keeps a file's transcript (a later one replaces it).
    async fn set_file_transcript(&self, id: &str, t: &Transcript) -> StoreResult<()>;
    /// Adds hashtags (from a message that carries the file).
    async fn add_file_hashtags(&self, id: &str, tags: &[String]) -> StoreResult<()>;
    /// Marks the file deleted (its bytes go separately); answers the record as it was, `None` if
    /// there is no such file or it was deleted already.
    async fn delete_file(&self, id: &str, at: i64) -> StoreResult<Option<FileRecord>>;
    /// Records that the file was shared in a room (by a message, or `""` for an upload to it).
    async fn share_file(&self, id: &str, room_id: &str, message_id: &str) -> StoreResult<()>;
    /// The rooms and messages the file was shared in.
    async fn file_shares(&self, id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Files the query allows, newest first.
    async fn list_files(&self, q: &FileQuery) -> StoreResult<Vec<FileRecord>>;
    /// Plaintext bytes of the user's files not deleted.
    async fn storage_used(&self, user_id: &str) -> StoreResult<u64>;
    /// Files whose previews are still to be made (after a restart), oldest first.
    async fn pending_previews(&self, limit: usize) -> StoreResult<Vec<FileRecord>>;
    async fn link_preview(&self, url: &str) -> StoreResult<Option<LinkPreviewRecord>>;
    async fn put_link_preview(&self, p: &LinkPreviewRecord) -> StoreResult<()>;
    /// The secret stored under `name`, storing `candidate` if there is none yet: every node of a
    /// cluster ends up with the same value (the first one stored wins).
    async fn secret_or_insert(&self, name: &str, candidate: &str) -> StoreResult<String>;
}

/// A live location share.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationShare {
    pub id: String,
    pub room_id: String,
    pub user_id: String,
    /// The `location` message that started it.
    pub message_id: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
    pub heading: Option<f64>,
    pub label: Option<String>,
    pub started_at: i64,
    pub live_until: i64,
    /// When the position last changed (`started_at` at first).
    pub updated_at: i64,
    pub ended_at: Option<i64>,
    /// `stopped` or `expired`.
    pub end_reason: Option<String>,
}

impl LocationShare {
    /// Live at `now`: not ended and not past `live_until`.
    pub fn is_live(&self, now: i64) -> bool {
        self.ended_at.is_none() && now < self.live_until
    }
}

/// What moving a live share did.
#[derive(Debug, Clone, PartialEq)]
pub enum ShareMove {
    Moved(Box<LocationShare>),
    /// The last move was less than the interval ago: try again in this many ms.
    TooSoon(i64),
    /// Ended, or past `live_until`.
    Ended,
    /// No such share, or not the caller's.
    NotFound,
}

impl ShareMove {
    /// Why `s` cannot move to `to` now, if it cannot: ended or past its end, or moved less than
    /// `min_interval_ms` ago (the first move may follow the start at once: the start placed
    /// it). Every store decides moves by this.
    pub fn refusal(
        s: &LocationShare,
        to: &SharePosition,
        min_interval_ms: i64,
    ) -> Option<ShareMove> {
        if !s.is_live(to.at) {
            return Some(ShareMove::Ended);
        }
        let wait = s.updated_at + min_interval_ms - to.at;
        (s.updated_at != s.started_at && wait > 0).then_some(ShareMove::TooSoon(wait))
    }

    /// The share moved to `to`.
    pub fn moved(mut s: LocationShare, to: &SharePosition) -> ShareMove {
        (s.lat, s.lon, s.accuracy_m, s.heading, s.updated_at) =
            (to.lat, to.lon, to.accuracy_m, to.heading, to.at);
        ShareMove::Moved(Box::new(s))
    }
}

/// A new position of a live share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharePosition {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
    pub heading: Option<f64>,
    pub at: i64,
}

/// A member asked another to share their location.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRequest {
    pub id: String,
    pub room_id: String,
    pub from_user_id: String,
    pub to_user_id: String,
    pub created_at: i64,
}

/// One entry of a user's location history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// Time-ordered (UUIDv7).
    pub id: String,
    pub user_id: String,
    /// `message`, `live` or `nearby`.
    pub kind: String,
    pub room_id: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub at: i64,
}

/// An opted-in user's coarse "nearby" position: the centre of their cell, never the position
/// they gave.
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyPosition {
    pub user_id: String,
    pub lat: f64,
    pub lon: f64,
    pub updated_at: i64,
    pub expires_at: i64,
}

/// A box of latitudes and longitudes (degrees; `min_lon <= max_lon`: a box across the
/// antimeridian is asked as two).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoBox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lon: f64,
    pub max_lon: f64,
}

impl GeoBox {
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

/// A location room's place.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationRoom {
    pub room_id: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

/// Location: live shares, share requests, the location history, "nearby" positions and
/// location rooms. Spatial reads take boxes and answer what lies in them (an index, never a
/// scan); distances and ordering are the caller's (`crate::geo`).
#[async_trait]
pub trait GeoStore: Send + Sync {
    /// Stores a new live share and ends (`stopped`, at its `started_at`) the sharer's other live
    /// shares in that room: one live share per user and room. Answers the shares it ended.
    async fn start_share(&self, share: &LocationShare) -> StoreResult<Vec<LocationShare>>;
    async fn share(&self, id: &str) -> StoreResult<Option<LocationShare>>;
    /// Moves `user_id`'s live share if its last move is at least `min_interval_ms` old.
    async fn move_share(
        &self,
        id: &str,
        user_id: &str,
        to: SharePosition,
        min_interval_ms: i64,
    ) -> StoreResult<ShareMove>;
    /// Ends the share if nothing ended it yet: true for the one call that did (on every node
    /// of a cluster together).
    async fn end_share(&self, id: &str, reason: &str, at: i64) -> StoreResult<bool>;
    /// The room's shares live at `now`, oldest first.
    async fn room_shares(&self, room_id: &str, now: i64) -> StoreResult<Vec<LocationShare>>;
    /// Shares not ended whose `live_until` is at or before `now`, soonest first, at most `limit`.
    async fn due_shares(&self, now: i64, limit: usize) -> StoreResult<Vec<LocationShare>>;
    async fn add_share_request(&self, r: &ShareRequest) -> StoreResult<()>;
    /// Records a history entry, kept until `keep_until` (a store may drop it then by itself).
    async fn add_history(&self, e: &HistoryEntry, keep_until: i64) -> StoreResult<()>;
    /// The user's entries at or after `since`, newest first, ids below `before`, at most `limit`.
    async fn location_history(
        &self,
        user_id: &str,
        since: i64,
        before: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<HistoryEntry>>;
    /// Answers whether there was such an entry of the user's.
    async fn delete_history_entry(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    async fn clear_history(&self, user_id: &str) -> StoreResult<()>;
    /// Removes entries older than `before` (a store whose rows expire by themselves — CQL's
    /// TTL — has nothing left to remove and answers 0); answers how many.
    async fn purge_history(&self, before: i64) -> StoreResult<u64>;
    /// Sets the user's "nearby" position (replacing the old one).
    async fn set_nearby(&self, p: &NearbyPosition) -> StoreResult<()>;
    /// The user's position, if opted in and not expired at `now`.
    async fn nearby_position(&self, user_id: &str, now: i64)
        -> StoreResult<Option<NearbyPosition>>;
    /// Opts the user out; answers whether they were in.
    async fn remove_nearby(&self, user_id: &str) -> StoreResult<bool>;
    /// Positions not expired at `now` inside the boxes, at most `limit`.
    async fn nearby_in(
        &self,
        boxes: &[GeoBox],
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<NearbyPosition>>;
    /// Removes positions expired at `now`; answers how many.
    async fn purge_nearby(&self, now: i64) -> StoreResult<u64>;
    async fn put_location_room(&self, r: &LocationRoom) -> StoreResult<()>;
    async fn location_room(&self, room_id: &str) -> StoreResult<Option<LocationRoom>>;
    /// Location rooms whose place is inside the boxes, at most `limit`.
    async fn location_rooms_in(
        &self,
        boxes: &[GeoBox],
        limit: usize,
    ) -> StoreResult<Vec<LocationRoom>>;
}

/// A browser's Web Push subscription (RFC 8030 endpoint; RFC 8291 keys, base64url).
#[derive(Debug, Clone, PartialEq)]
pub struct WebPushSubscription {
    pub id: String,
    pub endpoint: String,
    pub user_id: String,
    /// The browser's P-256 public key (uncompressed point).
    pub p256dh: String,
    /// The browser's 16-byte authentication secret.
    pub auth: String,
    /// `aes128gcm` (RFC 8188) or `aesgcm` (older browsers).
    pub encoding: String,
    pub created_at: i64,
}

/// An iOS device's APNs token.
#[derive(Debug, Clone, PartialEq)]
pub struct ApnsToken {
    /// Lower-case hex.
    pub token: String,
    pub user_id: String,
    /// `production` or `sandbox`.
    pub environment: String,
    pub created_at: i64,
}

/// A job of the push pipeline's durable queue (a node without Redis keeps it in its store).
#[derive(Debug, Clone, PartialEq)]
pub struct PushJobRecord {
    /// Unique; a job added again under the same id is not added twice.
    pub id: String,
    /// What to do (the pipeline's JSON).
    pub body: String,
    /// Not attempted before this (ms since the epoch).
    pub due_at: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Which kind of work (the pipeline's lanes: 0 expansions, 1 deliveries), claimed apart.
    pub lane: u8,
}

/// Where a user's pushes go: browsers' subscriptions and iOS devices' tokens.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// Stores `sub` under its endpoint. An endpoint already stored keeps its id and creation
    /// time and takes `sub`'s user and keys (the browser profile's new owner or keys). Answers
    /// the stored subscription and whether the endpoint is new.
    async fn put_web_push(
        &self,
        sub: WebPushSubscription,
    ) -> StoreResult<(WebPushSubscription, bool)>;
    /// Removes `user_id`'s subscription of `endpoint`; whether there was one.
    async fn delete_web_push(&self, user_id: &str, endpoint: &str) -> StoreResult<bool>;
    /// The subscriptions of these users.
    async fn web_push_of(&self, user_ids: &[String]) -> StoreResult<Vec<WebPushSubscription>>;
    /// Stores a device token for its user (a token moves to the user who registers it last);
    /// whether the token is new.
    async fn put_apns_token(&self, token: ApnsToken) -> StoreResult<bool>;
    /// Removes `user_id`'s `token`; whether there was one.
    async fn delete_apns_token(&self, user_id: &str, token: &str) -> StoreResult<bool>;
    /// The device tokens of these users.
    async fn apns_tokens_of(&self, user_ids: &[String]) -> StoreResult<Vec<ApnsToken>>;
    /// A user's notification settings (a JSON document) and its version; `None`: never set.
    async fn notification_settings(&self, user_id: &str) -> StoreResult<Option<(String, i64)>>;
    /// Stores `settings` as `version` if the stored version is still `expected` (`None`: nothing
    /// stored yet); whether it did (compare-and-set: of two changes from the same version, one
    /// lands and the other reads again).
    async fn put_notification_settings(
        &self,
        user_id: &str,
        settings: &str,
        version: i64,
        expected: Option<i64>,
    ) -> StoreResult<bool>;
    /// The stored settings documents of those of `user_ids` who changed theirs.
    async fn notification_settings_of(
        &self,
        user_ids: &[String],
    ) -> StoreResult<Vec<(String, String)>>;
    /// Adds jobs to the queue (an id already queued keeps its job).
    async fn add_push_jobs(&self, jobs: &[PushJobRecord]) -> StoreResult<()>;
    /// Up to `limit` queued jobs of `lane` due at `now`, oldest due first.
    async fn due_push_jobs(
        &self,
        lane: u8,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<PushJobRecord>>;
    /// Removes a done job and adds what follows from it, at once (never one without the other).
    async fn finish_push_job(
        &self,
        lane: u8,
        id: &str,
        follow: &[PushJobRecord],
    ) -> StoreResult<()>;
    /// Puts a job back for another attempt at `due_at`.
    async fn retry_push_job(
        &self,
        lane: u8,
        id: &str,
        due_at: i64,
        attempts: u32,
    ) -> StoreResult<()>;
    /// How many jobs are queued.
    async fn push_jobs_queued(&self) -> StoreResult<u64>;
}

/// A user's saved command: `/name` sent alone is sent as `text`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedCommand {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub name: String,
    pub text: String,
    pub created_at: i64,
}

/// One change of a consent: `kind` (`ai`, `location`, `analytics`, `marketing`) given or
/// withdrawn at `at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentRecord {
    pub kind: String,
    pub granted: bool,
    pub at: i64,
}

/// A message's translation, kept per target language and message version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationRecord {
    pub message_id: String,
    pub target: String,
    /// The message's `edited_at` (0: never edited) when it was translated.
    pub version: i64,
    pub source_language: String,
    pub text: String,
}

/// What the AI assistants keep: saved commands and translations.
#[async_trait]
pub trait AiStore: Send + Sync {
    /// Stores a command; `false` if the user already has one of that name (nothing changed).
    async fn put_command(&self, c: &SavedCommand) -> StoreResult<bool>;
    /// The user's commands, by name.
    async fn commands(&self, user_id: &str) -> StoreResult<Vec<SavedCommand>>;
    /// The user's command of that name.
    async fn command_named(&self, user_id: &str, name: &str) -> StoreResult<Option<SavedCommand>>;
    /// Removes the user's command `id`; whether there was one.
    async fn delete_command(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    /// The kept translation of a message into `target`, whatever its version.
    async fn translation(
        &self,
        message_id: &str,
        target: &str,
    ) -> StoreResult<Option<TranslationRecord>>;
    /// Keeps a translation (replacing one of an older version).
    async fn put_translation(&self, t: &TranslationRecord) -> StoreResult<()>;
}

/// A reminder (AI-5): `text` told to its user at `due_at`, once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reminder {
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    pub text: String,
    pub due_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub created_at: i64,
}

/// Reminders, each fired exactly once however many nodes sweep for them.
#[async_trait]
pub trait ReminderStore: Send + Sync {
    async fn add_reminder(&self, r: &Reminder) -> StoreResult<()>;
    /// The user's reminders not yet fired, soonest first.
    async fn reminders_of(&self, user_id: &str) -> StoreResult<Vec<Reminder>>;
    /// Removes the user's reminder `id` (fired or not: it will not fire); whether there was one.
    async fn delete_reminder(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    /// Up to `limit` reminders due at `now` and not yet fired, most overdue first.
    async fn due_reminders(&self, now: i64, limit: usize) -> StoreResult<Vec<Reminder>>;
    /// Marks `r` fired at `at`: `true` for exactly one caller, `false` if it was fired or
    /// deleted before.
    async fn fire_reminder(&self, r: &Reminder, at: i64) -> StoreResult<bool>;
}

/// A file waiting for its automatic transcription (AI-2, `ai.auto_transcribe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionJob {
    pub file_id: String,
    /// Whose voice message it is: their consent and quota count.
    pub user_id: String,
    /// Attempts begun so far.
    pub attempts: i32,
    /// When it is next due: queued, retried after a failure, or taken again once the node that
    /// took it has had its lease and not finished.
    pub due_at: i64,
    pub created_at: i64,
}

/// The durable queue of automatic transcriptions: any node may take a due job, and of many
/// taking it with the same view exactly one gets it.
#[async_trait]
pub trait TranscriptionJobs: Send + Sync {
    /// Queues `job` unless its file is queued already; whether it was queued.
    async fn queue_transcription(&self, job: &TranscriptionJob) -> StoreResult<bool>;
    /// Up to `limit` jobs due at `now`, most overdue first.
    async fn due_transcriptions(
        &self,
        now: i64,
        limit: usize,
    ) -> StoreResult<Vec<TranscriptionJob>>;
    /// Moves `job` — as read: its attempts and due time — to `attempts`, due at `due_at`:
    /// `true` for exactly one of many callers holding the same view, `false` when another moved
    /// it first or it is gone. Taking a job and putting it off after a failure are both this.
    async fn move_transcription(
        &self,
        job: &TranscriptionJob,
        attempts: i32,
        due_at: i64,
    ) -> StoreResult<bool>;
    /// Removes `job` (done, or given up).
    async fn finish_transcription(&self, job: &TranscriptionJob) -> StoreResult<()>;
}

/// Who may see a post: anyone, or only its author's followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Followers,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Followers => "followers",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "followers" => Some(Visibility::Followers),
            _ => None,
        }
    }
}

/// A post (SOC-1): `user_posts`, its counts kept beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRecord {
    pub id: String,
    pub author_id: String,
    /// A business post (BIZ-3): the business it speaks for.
    pub business_id: Option<String>,
    pub content: String,
    pub hashtags: Vec<String>,
    pub mentions: Vec<String>,
    /// File objects, as in messages.
    pub attachments: Vec<serde_json::Value>,
    pub visibility: Visibility,
    pub like_count: i64,
    pub comment_count: i64,
    pub created_at: i64,
    pub edited_at: Option<i64>,
}

/// A place in a newest-first list of posts: the ones strictly older come next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostCursor {
    pub created_at: i64,
    pub id: String,
}

impl PostRecord {
    /// Whose list the post is in: the business it speaks for, else its author. The feed and a
    /// profile's posts read by this key; followers-only posts are for this key's followers.
    pub fn feed_key(&self) -> &str {
        self.business_id.as_deref().unwrap_or(&self.author_id)
    }
}

impl PostCursor {
    pub fn of(p: &PostRecord) -> PostCursor {
        PostCursor {
            created_at: p.created_at,
            id: p.id.clone(),
        }
    }
}

/// A comment on a post (SOC-2): `post_comments`; a reply names a top-level comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommentRecord {
    pub id: String,
    pub post_id: String,
    pub author_id: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    pub created_at: i64,
}

/// Posts, likes and comments. Counts are exact under concurrency: a like or a comment changes
/// its post's count only when it was not there (or was) before.
#[async_trait]
pub trait PostStore: Send + Sync {
    async fn create_post(&self, p: &PostRecord) -> StoreResult<()>;
    /// The post `id` unless deleted, with its counts.
    async fn post(&self, id: &str) -> StoreResult<Option<PostRecord>>;
    /// Replaces what an edit may change: content, hashtags, mentions, attachments,
    /// visibility, `edited_at`.
    async fn update_post(&self, p: &PostRecord) -> StoreResult<()>;
    /// Deletes the post (its likes and comments go with it); whether it was there.
    async fn delete_post(&self, id: &str, at: i64) -> StoreResult<bool>;
    /// Posts whose [`PostRecord::feed_key`] is any of `authors` (users or businesses), newest
    /// first, strictly older than `before`.
    async fn posts_by_authors(
        &self,
        authors: &[String],
        before: Option<&PostCursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>>;
    /// Public posts carrying `tag`, newest first (what hashtag suggestions read).
    async fn public_posts_tagged(&self, tag: &str, limit: usize) -> StoreResult<Vec<PostRecord>>;
    /// Adds `user_id`'s like; whether it is new.
    async fn like_post(&self, post_id: &str, user_id: &str, at: i64) -> StoreResult<bool>;
    /// Removes `user_id`'s like; whether there was one.
    async fn unlike_post(&self, post_id: &str, user_id: &str) -> StoreResult<bool>;
    /// Which of `post_ids` `user_id` likes.
    async fn liked_posts(&self, user_id: &str, post_ids: &[String]) -> StoreResult<Vec<String>>;
    async fn add_comment(&self, c: &CommentRecord) -> StoreResult<()>;
    async fn comment(&self, id: &str) -> StoreResult<Option<CommentRecord>>;
    /// A post's comments, oldest first, after the comment `after` (by time, then id).
    async fn comments(
        &self,
        post_id: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>>;
    /// Deletes a comment and its replies; how many went.
    async fn delete_comment(&self, c: &CommentRecord) -> StoreResult<usize>;
}

/// Follows (SOC-4): one-way, from a follower to a followee (a user or a business).
#[async_trait]
pub trait FollowStore: Send + Sync {
    /// Whether the follow is new.
    async fn follow(&self, follower: &str, followee: &str, at: i64) -> StoreResult<bool>;
    /// Whether there was one.
    async fn unfollow(&self, follower: &str, followee: &str) -> StoreResult<bool>;
    async fn is_following(&self, follower: &str, followee: &str) -> StoreResult<bool>;
    /// Whom `follower` follows, by id after `after`.
    async fn following(
        &self,
        follower: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>>;
    /// How many follow `followee`, exactly.
    async fn follower_count(&self, followee: &str) -> StoreResult<i64>;
    /// Who follows `followee`, by id after `after`.
    async fn followers(
        &self,
        followee: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>>;
}

/// A day in milliseconds (trend days are UTC days since 1970-01-01).
pub const DAY_MS: i64 = 86_400_000;

/// Something that happened to a user (SOC activity): a like or a comment on their post, a
/// reply to their comment, a follow, a mention in a post.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActivityRecord {
    pub id: String,
    /// Whom it is for.
    #[serde(skip)]
    pub user_id: String,
    /// `like`, `comment`, `reply`, `follow` or `mention`.
    pub kind: String,
    /// Who did it.
    pub actor_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<String>,
    pub created_at: i64,
}

/// Each user's activity, newest first.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    async fn add_activity(&self, a: &ActivityRecord) -> StoreResult<()>;
    /// `user_id`'s activity, newest first, strictly older than `before` (time, then id).
    async fn activities(
        &self,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<ActivityRecord>>;
}

/// One day of a hashtag's use in public posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TagDay {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub uses: i64,
    /// Distinct accounts that used it.
    pub accounts: i64,
}

/// Hashtag trends (SOC-3), kept incrementally: per tag and day the uses and the distinct
/// accounts, and each tag's peak score (what decays).
#[async_trait]
pub trait TrendStore: Send + Sync {
    /// Counts `delta` (+1 or −1) uses of `tag` by `account` on `day`: the day's accounts change
    /// when the account's first use comes, or its last goes.
    async fn count_tag_use(
        &self,
        tag: &str,
        day: i64,
        account: &str,
        delta: i64,
    ) -> StoreResult<()>;
    /// The tag's days among `days` (a day without use: zeros).
    async fn tag_days(&self, tag: &str, days: &[i64]) -> StoreResult<Vec<TagDay>>;
    /// The tag's peak score and when it was reached.
    async fn tag_peak(&self, tag: &str) -> StoreResult<Option<(f64, i64)>>;
    /// Records a peak (listed under the peak's day).
    async fn set_tag_peak(&self, tag: &str, score: f64, at: i64) -> StoreResult<()>;
    /// Tags whose peak came on one of `days`.
    async fn tags_peaked_on(&self, days: &[i64]) -> StoreResult<Vec<String>>;
}

/// A business profile (BIZ-1).
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessRecord {
    pub id: String,
    pub owner_id: String,
    pub name: String,
    /// Lower-case, as searched.
    pub category: String,
    pub description: String,
    pub website: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub hours: Option<String>,
    /// Users who act for the business beside its owner (post, run its channels).
    pub admins: Vec<String>,
    pub verified: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl BusinessRecord {
    /// Whether `user_id` acts for the business (its owner or one of its admins).
    pub fn is_admin(&self, user_id: &str) -> bool {
        self.owner_id == user_id || self.admins.iter().any(|a| a == user_id)
    }
}

/// A connection request between two businesses (BIZ-4).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConnectionRecord {
    pub id: String,
    pub from: String,
    pub to: String,
    /// `pending`, `accepted` or `declined`.
    pub status: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
}

/// A business's request to be verified (BIZ-5).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VerificationRecord {
    pub id: String,
    pub business_id: String,
    pub requested_by: String,
    /// File ids.
    pub documents: Vec<String>,
    pub note: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
}

/// A business's company channel (BIZ-2): a room of type `channel`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRecord {
    pub id: String,
    pub room_id: String,
    pub business_id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: i64,
}

/// Business profiles, their networking, verification requests and channels.
#[async_trait]
pub trait BusinessStore: Send + Sync {
    async fn create_business(&self, b: &BusinessRecord) -> StoreResult<()>;
    async fn business(&self, id: &str) -> StoreResult<Option<BusinessRecord>>;
    /// Replaces what may change (everything but id, owner and creation), reindexing the name.
    async fn update_business(&self, b: &BusinessRecord) -> StoreResult<()>;
    /// Businesses whose name has the word prefix `prefix` (as `text::name_prefixes` makes them)
    /// and, when given, of `category`; by id after `after`.
    async fn search_businesses(
        &self,
        prefix: Option<&str>,
        category: Option<&str>,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<BusinessRecord>>;
    /// Records a request; a conflict while the pair (either way) has one pending or accepted.
    async fn create_connection(&self, c: &ConnectionRecord) -> StoreResult<()>;
    async fn connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>>;
    /// Decides a pending request; whether it was pending.
    async fn decide_connection(&self, id: &str, status: &str, at: i64) -> StoreResult<bool>;
    /// Requests from or to `business_id`, newest first.
    async fn connections_of(
        &self,
        business_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>>;
    async fn create_business_verification(&self, v: &VerificationRecord) -> StoreResult<()>;
    async fn business_verification(&self, id: &str) -> StoreResult<Option<VerificationRecord>>;
    /// Decides a pending request (and the business's badge with it); whether it was pending.
    async fn decide_business_verification(&self, v: &VerificationRecord) -> StoreResult<bool>;
    /// Requests in `status`, oldest first, after (time, id).
    async fn business_verifications(
        &self,
        status: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<VerificationRecord>>;
    /// A business's requests, newest first.
    async fn verifications_of(&self, business_id: &str) -> StoreResult<Vec<VerificationRecord>>;
    async fn create_channel(&self, c: &ChannelRecord) -> StoreResult<()>;
    async fn channel(&self, id: &str) -> StoreResult<Option<ChannelRecord>>;
    /// A business's channels, oldest first.
    async fn channels_of(&self, business_id: &str) -> StoreResult<Vec<ChannelRecord>>;
}

/// A business figure counted by day (BIZ-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Followers,
    ProfileViews,
    PostViews,
    Likes,
    Comments,
    ChannelSubscribers,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::Followers,
        Metric::ProfileViews,
        Metric::PostViews,
        Metric::Likes,
        Metric::Comments,
        Metric::ChannelSubscribers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Followers => "followers",
            Metric::ProfileViews => "profile_views",
            Metric::PostViews => "post_views",
            Metric::Likes => "likes",
            Metric::Comments => "comments",
            Metric::ChannelSubscribers => "channel_subscribers",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Business analytics: per business, day and metric a count changed as events happen, and
/// the viewers already counted for a post on a day (impressions count once per viewer per day).
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn count_metric(
        &self,
        business_id: &str,
        day: i64,
        metric: Metric,
        delta: i64,
    ) -> StoreResult<()>;
    /// Marks `viewer` as having seen `post_id` on `day`; whether this is the first time.
    async fn first_view(&self, post_id: &str, day: i64, viewer: &str) -> StoreResult<bool>;
    /// The counts of days `from..=to` (days without any: absent).
    async fn metric_days(
        &self,
        business_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, Metric, i64)>>;
}

/// One entry of the audit log: who did what to what, from where, and when. The target's label
/// (a name or email as it was then) outlives the target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    pub id: String,
    pub at: i64,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub target_label: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

/// Which audit entries to list: each named filter must match; entries strictly older than
/// `before` (`at`, `id`), newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    /// `(target_type, target_id)`.
    pub target: Option<(String, String)>,
    pub before: Option<(i64, String)>,
}

/// The audit log: appended to, never changed.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, a: &AuditRecord) -> StoreResult<()>;
    /// Entries matching `filter`, newest first, at most `limit`.
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>>;
    /// Drops the address of entries written at or after `since` and before `before` (data
    /// minimization: `privacy.ip_retention_days`); answers how many had one.
    async fn forget_audit_ips(&self, since: i64, before: i64) -> StoreResult<u64>;
}

/// An account's suspension: no login, no session, until lifted or `until` passes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suspension {
    pub user_id: String,
    pub reason: String,
    pub since: i64,
    /// When it ends by itself; none: until lifted.
    pub until: Option<i64>,
    pub by: String,
}

impl Suspension {
    /// In force at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.until.is_none_or(|u| u > now)
    }
}

/// A user's report of something they could see (ADM-4), with a snapshot of it as it was.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReportRecord {
    pub id: String,
    pub reporter_id: String,
    /// `message`, `user`, `post`, `comment` or `room`.
    pub target_type: String,
    pub target_id: String,
    /// `spam`, `abuse`, `harassment`, `illegal` or `other`.
    pub reason: String,
    pub comment: Option<String>,
    /// The target as the reporter saw it when reporting.
    pub snapshot: serde_json::Value,
    /// `open`, `resolved` (acted on) or `dismissed`.
    pub status: String,
    pub created_at: i64,
    /// `dismiss`, `delete_content` or `suspend_user`, once resolved.
    pub action: Option<String>,
    pub note: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<i64>,
}

/// Reports (ADM-4): one open report per reporter and target.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Files `r` unless its reporter has an open report of the same target: answers the
    /// report that is open (`r`, or the earlier one) and whether it is `r`.
    async fn file_report(&self, r: &ReportRecord) -> StoreResult<(ReportRecord, bool)>;
    async fn report(&self, id: &str) -> StoreResult<Option<ReportRecord>>;
    /// Reports of `status`, oldest first after `after` (`created_at`, `id`), at most `limit`.
    async fn reports(
        &self,
        status: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<ReportRecord>>;
    /// The open reports of one target, oldest first.
    async fn open_reports_of(
        &self,
        target_type: &str,
        target_id: &str,
    ) -> StoreResult<Vec<ReportRecord>>;
    /// Writes `r`'s resolution (status, action, note, by, at) if it is still open; answers
    /// whether it was (a report is resolved once).
    async fn resolve_report(&self, r: &ReportRecord) -> StoreResult<bool>;
}

/// What administration keeps about accounts (ADM-1): suspensions, and the listing of every
/// account (discoverable or not) by id, email, phone or name.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Suspends (or re-suspends, replacing the reason and end) an account.
    async fn put_suspension(&self, s: &Suspension) -> StoreResult<()>;
    /// Lifts an account's suspension; answers whether there was one.
    async fn lift_suspension(&self, user_id: &str) -> StoreResult<bool>;
    /// The account's suspension, in force or ended (until lifted).
    async fn suspension(&self, user_id: &str) -> StoreResult<Option<Suspension>>;
    /// Every recorded suspension, by user id after `after`, at most `limit`.
    async fn suspensions(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<Suspension>>;
    /// Accounts ascending by id after `after`, at most `limit`: all of them without `q`, else
    /// those whose id, email or phone is `q` or one of whose name prefixes
    /// ([`text::name_prefixes`]) is `q` lowercased — discoverable or not.
    async fn admin_users(
        &self,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<User>>;
    /// How many accounts are admins.
    async fn admin_count(&self) -> StoreResult<u64>;
    /// The ids of the admins.
    async fn admin_ids(&self) -> StoreResult<Vec<String>>;
    /// Room ids after `after` in the store's own order (by id on the embedded store, by token
    /// on CQL: stable while rooms are added), at most `limit`.
    async fn all_room_ids(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<String>>;
}

/// Consents (OPS-9): what each user agreed to, with every change kept.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Appends consent changes (history is never rewritten).
    async fn add_consents(&self, user_id: &str, changes: &[ConsentRecord]) -> StoreResult<()>;
    /// Every consent change of the user, oldest first.
    async fn consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>>;
}

/// Where a data export (OPS-9) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Pending,
    Ready,
    Failed,
    /// Ready once; its archive was deleted at `expires_at`.
    Expired,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Pending => "pending",
            ExportStatus::Ready => "ready",
            ExportStatus::Failed => "failed",
            ExportStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> ExportStatus {
        match s {
            "ready" => ExportStatus::Ready,
            "failed" => ExportStatus::Failed,
            "expired" => ExportStatus::Expired,
            _ => ExportStatus::Pending,
        }
    }
}

/// A data export job and, once ready, its archive (stored encrypted like a file: the object,
/// its data key wrapped by the master key `key_id`, the chunk size, and the plain size and
/// SHA-256).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRecord {
    pub id: String,
    pub user_id: String,
    pub status: ExportStatus,
    pub created_at: i64,
    /// The last sign of life of the job's worker (a job silent for long is stuck).
    pub heartbeat_at: i64,
    pub finished_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    pub object: Option<String>,
    pub key_id: Option<String>,
    pub wrapped_key: Option<String>,
    pub chunk_bytes: u32,
    pub size: u64,
    pub sha256: Option<String>,
}

impl ExportRecord {
    /// A job of `user_id` just asked for (or claimed) at `at`, nothing made yet.
    pub fn pending(id: String, user_id: String, at: i64) -> ExportRecord {
        ExportRecord {
            id,
            user_id,
            status: ExportStatus::Pending,
            created_at: at,
            heartbeat_at: at,
            finished_at: None,
            expires_at: None,
            error: None,
            object: None,
            key_id: None,
            wrapped_key: None,
            chunk_bytes: 0,
            size: 0,
            sha256: None,
        }
    }
}

/// How asking for an export ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportBegin {
    /// The new job is the user's running one (a stuck one before it was failed).
    Started,
    /// The user's job that is still running (one at a time).
    Running(Box<ExportRecord>),
}

/// Privacy (OPS-9): data export jobs, and what a user wrote that their data export and their
/// erasure must find wherever it is (the rooms they sent messages in — left ones too — the
/// posts they liked, their comments).
#[async_trait]
pub trait PrivacyStore: Send + Sync {
    /// Makes `e` (pending) the user's running export unless another one beat within
    /// `stale_before` (then answers it); a stuck one is failed and replaced.
    async fn begin_export(&self, e: &ExportRecord, stale_before: i64) -> StoreResult<ExportBegin>;
    /// A running export's sign of life; false when it is no longer the user's running one.
    async fn beat_export(&self, user_id: &str, id: &str, at: i64) -> StoreResult<bool>;
    /// Writes a finished (ready, failed) or expired export; a finished one stops being the
    /// user's running one.
    async fn end_export(&self, e: &ExportRecord) -> StoreResult<()>;
    async fn export(&self, id: &str) -> StoreResult<Option<ExportRecord>>;
    /// The user's exports, newest first.
    async fn exports_of(&self, user_id: &str) -> StoreResult<Vec<ExportRecord>>;
    /// Ready exports whose `expires_at` is at or before `now`, at most `limit`.
    async fn expired_exports(&self, now: i64, limit: usize) -> StoreResult<Vec<ExportRecord>>;
    /// Every room the user ever stored a message in (rooms left since too).
    async fn rooms_sent_in(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Posts the user liked, `(post id, liked at)` by post id after `after`, at most `limit`.
    async fn likes_by(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, i64)>>;
    /// Erases the account itself, last step of an erasure (the rest — messages, rooms,
    /// contacts, follows, posts, files — goes first through their own calls): the account row
    /// and its email, phone and name lookups (the email may register again), linked
    /// identities, login sessions, consents, notification settings, activities, exports,
    /// suspension, and the indexes of what it wrote. The audit log keeps its entries.
    async fn forget_account(&self, user: &User) -> StoreResult<()>;
    /// The user's comments, by id after `after`, at most `limit`.
    async fn comments_by(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>>;
}

/// The (room, sender) pairs a store already recorded in its rooms-sent-in index, so the hot
/// path writes each pair once per process (bounded: cleared past [`SEEN_SENDERS_MAX`]).
#[derive(Default)]
pub struct SeenSenders(parking_lot::Mutex<std::collections::HashSet<(String, String)>>);

/// Pairs remembered at most.
const SEEN_SENDERS_MAX: usize = 1_000_000;

impl SeenSenders {
    /// The senders of `pairs` not recorded yet.
    pub fn unseen<'a>(
        &self,
        room_id: &str,
        senders: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let seen = self.0.lock();
        let mut out: Vec<String> = senders
            .into_iter()
            .filter(|s| !seen.contains(&(room_id.to_string(), s.to_string())))
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `senders` of `room_id` are recorded.
    pub fn recorded(&self, room_id: &str, senders: &[String]) {
        let mut seen = self.0.lock();
        if seen.len() + senders.len() > SEEN_SENDERS_MAX {
            seen.clear();
        }
        for s in senders {
            seen.insert((room_id.to_string(), s.clone()));
        }
    }
}

/// Everything a node's store provides.
pub trait Store:
    UserStore
    + ActivityStore
    + PostStore
    + FollowStore
    + TrendStore
    + BusinessStore
    + AnalyticsStore
    + AuditStore
    + AdminStore
    + ReportStore
    + AiStore
    + ReminderStore
    + TranscriptionJobs
    + ConsentStore
    + PrivacyStore
    + PushStore
    + FileStore
    + GeoStore
    + AuthStore
    + IdentityStore
    + PhoneStore
    + ContactStore
    + RoomRecords
    + History
    + dovie_actors::RoomStore
{
}

impl<T> Store for T where
    T: UserStore
        + ActivityStore
        + PostStore
        + FollowStore
        + TrendStore
        + BusinessStore
        + AnalyticsStore
        + AuditStore
        + AdminStore
        + ReportStore
        + AiStore
        + ReminderStore
        + TranscriptionJobs
        + ConsentStore
        + PrivacyStore
        + PushStore
        + FileStore
        + GeoStore
        + AuthStore
        + IdentityStore
        + PhoneStore
        + ContactStore
        + RoomRecords
        + History
        + dovie_actors::RoomStore
{
}

pub type SharedStore = Arc<dyn Store>;

/// The error a store answers when its backend fails: logged with the cause (tagged with the
/// backend), answered without it.
pub(crate) fn unavailable_from(backend: &'static str, cause: impl std::fmt::Display) -> ErrorBody {
    tracing::error!(%cause, backend, "store error");
    crate::metrics::store_error(backend);
    ErrorBody::new(
        ErrorCode::StoreUnavailable,
        "the store is unavailable; try again",
    )
}

pub(crate) fn not_found(what: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotFound, format!("no such {what}"))
}
