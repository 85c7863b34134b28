//! Client → server WebSocket commands, typed. A [`Frame`](crate::Frame) becomes a [`Command`]
//! with [`Command::parse`]; an unknown `t` or a payload of the wrong shape is an error the
//! gateway answers with an `error` frame.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::Frame;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendMessage {
    pub room_id: String,
    #[serde(default)]
    pub content: String,
    pub nonce: Option<String>,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Ids of the sender's uploaded files (at most `rules::MAX_ATTACHMENTS`).
    #[serde(default)]
    pub attachments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditMessage {
    pub message_id: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRef {
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct React {
    pub message_id: String,
    pub emoji: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomRef {
    pub room_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSeq {
    pub room_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    pub rooms: BTreeMap<String, u64>,
}

/// Which room the session shows now (`None`: none, or the app is in the background): no push
/// reaches the user for a room one of their sessions shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub room_id: Option<String>,
}

/// A new position of the sender's live location share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationUpdate {
    pub share_id: String,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub accuracy_m: Option<f64>,
    /// Degrees from north, 0 to 360.
    #[serde(default)]
    pub heading: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Auth {
    pub token: String,
}

/// Every command a client may send.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Auth(Auth),
    SendMessage(SendMessage),
    EditMessage(EditMessage),
    DeleteMessage(MessageRef),
    React(React),
    Unreact(React),
    TypingStart(RoomRef),
    TypingStop(RoomRef),
    Read(RoomSeq),
    Delivered(RoomSeq),
    Resume(Resume),
    Ping,
    LocationUpdate(LocationUpdate),
    Active(Active),
}

/// Why a frame is not a valid command.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandError {
    UnknownType(String),
    BadPayload(String),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::UnknownType(t) => write!(f, "unknown command type `{t}`"),
            CommandError::BadPayload(e) => write!(f, "invalid payload: {e}"),
        }
    }
}

/// Every command type a client may send (what `Command::name` answers).
pub const ALL: &[&str] = &[
    "auth",
    "send_message",
    "edit_message",
    "delete_message",
    "react",
    "unreact",
    "typing_start",
    "typing_stop",
    "read",
    "delivered",
    "resume",
    "ping",
    "location_update",
    "active",
];

impl Command {
    /// The command's wire name (its `t`), also the metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Auth(_) => "auth",
            Command::SendMessage(_) => "send_message",
            Command::EditMessage(_) => "edit_message",
            Command::DeleteMessage(_) => "delete_message",
            Command::React(_) => "react",
            Command::Unreact(_) => "unreact",
            Command::TypingStart(_) => "typing_start",
            Command::TypingStop(_) => "typing_stop",
            Command::Read(_) => "read",
            Command::Delivered(_) => "delivered",
            Command::Resume(_) => "resume",
            Command::LocationUpdate(_) => "location_update",
            Command::Active(_) => "active",
            Command::Ping => "ping",
        }
    }

    pub fn parse(frame: Frame) -> Result<Command, CommandError> {
        fn d<T: for<'de> Deserialize<'de>>(v: serde_json::Value) -> Result<T, CommandError> {
            serde_json::from_value(v).map_err(|e| CommandError::BadPayload(e.to_string()))
        }
        Ok(match frame.t.as_str() {
            "auth" => Command::Auth(d(frame.d)?),
            "send_message" => Command::SendMessage(d(frame.d)?),
            "edit_message" => Command::EditMessage(d(frame.d)?),
            "delete_message" => Command::DeleteMessage(d(frame.d)?),
            "react" => Command::React(d(frame.d)?),
            "unreact" => Command::Unreact(d(frame.d)?),
            "typing_start" => Command::TypingStart(d(frame.d)?),
            "typing_stop" => Command::TypingStop(d(frame.d)?),
            "read" => Command::Read(d(frame.d)?),
            "delivered" => Command::Delivered(d(frame.d)?),
            "resume" => Command::Resume(d(frame.d)?),
            "ping" => Command::Ping,
            "location_update" => Command::LocationUpdate(d(frame.d)?),
            "active" => Command::Active(d(frame.d)?),
            other => return Err(CommandError::UnknownType(other.chars().take(64).collect())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_rejects_bad_ones() {
        let frame = Frame {
            t: "read".into(),
            id: None,
            d: serde_json::json!({"room_id": "r", "seq": 3}),
        };
        assert_eq!(
            Command::parse(frame),
            Ok(Command::Read(RoomSeq {
                room_id: "r".into(),
                seq: 3
            }))
        );
        let bad = Frame {
            t: "read".into(),
            id: None,
            d: serde_json::json!({"room_id": 5}),
        };
        assert!(matches!(
            Command::parse(bad),
            Err(CommandError::BadPayload(_))
        ));
        let unknown = Frame {
            t: "nope".into(),
            id: None,
            d: serde_json::Value::Null,
        };
        assert!(matches!(
            Command::parse(unknown),
            Err(CommandError::UnknownType(_))
        ));
    }
}
