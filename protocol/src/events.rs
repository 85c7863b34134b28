//! Server → client event payloads (the `d` of each event frame) and their names.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{Message, Room};

pub const NEW_MESSAGE: &str = "new_message";
pub const MESSAGE_EDITED: &str = "message_edited";
pub const MESSAGE_DELETED: &str = "message_deleted";
pub const MESSAGE_LIKED: &str = "message_liked";
pub const MESSAGE_DELIVERED: &str = "message_delivered";
pub const MESSAGE_READ: &str = "message_read";
pub const TYPING_START: &str = "typing_start";
pub const TYPING_STOP: &str = "typing_stop";
pub const USER_ONLINE: &str = "user_online";
pub const USER_OFFLINE: &str = "user_offline";
pub const USER_JOINED: &str = "user_joined";
pub const USER_LEFT: &str = "user_left";
pub const ROOM_UPDATED: &str = "room_updated";
pub const ROOM_DELETED: &str = "room_deleted";
pub const HEARTBEAT: &str = "heartbeat";
pub const SERVER_MAINTENANCE: &str = "server_maintenance";
pub const FORCE_LOGOUT: &str = "force_logout";
pub const CONNECTION_ESTABLISHED: &str = "connection_established";
pub const AUTH_SUCCESS: &str = "auth_success";
pub const AUTH_ERROR: &str = "auth_error";
pub const RESUME_DONE: &str = "resume_done";
pub const RESYNC_REQUIRED: &str = "resync_required";
pub const REPLY: &str = "reply";
pub const LOCATION_UPDATED: &str = "location_updated";
pub const LOCATION_SHARE_ENDED: &str = "location_share_ended";
pub const LOCATION_SHARE_REQUESTED: &str = "location_share_requested";
pub const LOCATION_SUGGESTION: &str = "location_suggestion";
pub const REMINDER_DUE: &str = "reminder_due";
/// A report I filed was resolved (dismissed or acted on).
pub const REPORT_RESOLVED: &str = "report_resolved";
pub const ACTIVITY: &str = "activity";
pub const ERROR: &str = "error";

/// Every event name, so an event that crossed nodes maps back onto its constant.
pub const ALL: &[&str] = &[
    NEW_MESSAGE,
    MESSAGE_EDITED,
    MESSAGE_DELETED,
    MESSAGE_LIKED,
    MESSAGE_DELIVERED,
    MESSAGE_READ,
    TYPING_START,
    TYPING_STOP,
    USER_ONLINE,
    USER_OFFLINE,
    USER_JOINED,
    USER_LEFT,
    ROOM_UPDATED,
    ROOM_DELETED,
    HEARTBEAT,
    SERVER_MAINTENANCE,
    FORCE_LOGOUT,
    CONNECTION_ESTABLISHED,
    AUTH_SUCCESS,
    AUTH_ERROR,
    RESUME_DONE,
    RESYNC_REQUIRED,
    REPLY,
    ERROR,
    LOCATION_UPDATED,
    LOCATION_SHARE_ENDED,
    LOCATION_SHARE_REQUESTED,
    LOCATION_SUGGESTION,
    REMINDER_DUE,
    REPORT_RESOLVED,
    ACTIVITY,
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagePayload {
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDeleted {
    pub room_id: String,
    pub message_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageLiked {
    pub room_id: String,
    pub message_id: String,
    pub user_id: String,
    pub emoji: String,
    pub reactions: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub room_id: String,
    pub user_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomUser {
    pub room_id: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomPayload {
    pub room: Room,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomDeleted {
    pub room_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub server_time: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForceLogout {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthSuccess {
    pub user_id: String,
    pub session_id: String,
    pub heartbeat_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionEstablished {
    pub server_time: i64,
    pub codec: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeDone {
    pub rooms: HashMap<String, u64>,
}

/// Sent instead of a replay when a room is too far behind to replay: reload it over REST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResyncRequired {
    pub room_id: String,
    pub latest_seq: u64,
}
