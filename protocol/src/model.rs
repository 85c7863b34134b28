//! The data model as clients see it: users, rooms, messages. Field names are the wire names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An account as its owner sees it (`/api/auth/me`, login and register answers). Never carries
/// a password hash; others see only its [`PublicUser`] part. An account made by phone (or by a
/// provider that shared no verified email) has no email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default = "default_locale")]
    pub locale: String,
    /// The IANA time zone reminders are read in (e.g. `Asia/Seoul`); none: UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Others may see `online` and `last_seen_at`.
    #[serde(default = "yes")]
    pub presence_visible: bool,
    /// Found by display-name search.
    #[serde(default = "yes")]
    pub discoverable: bool,
    pub created_at: i64,
    #[serde(default)]
    pub role: UserRole,
}

fn yes() -> bool {
    true
}

fn default_locale() -> String {
    DEFAULT_LOCALE.to_string()
}

/// The languages Dovie speaks (BCP 47 tags).
pub const LOCALES: &[&str] = &["ko", "en", "ja", "zh-Hans", "zh-Hant", "es", "fr", "de"];
pub const DEFAULT_LOCALE: &str = "en";

/// The colour scheme a user's clients show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Theme> {
        match s {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            "system" => Some(Theme::System),
            _ => None,
        }
    }
}

impl User {
    /// A new account with the given id, name and creation time, and every setting at its default.
    pub fn new(id: String, display_name: String, created_at: i64) -> User {
        User {
            id,
            email: None,
            phone: None,
            display_name,
            avatar_url: None,
            bio: None,
            status_message: None,
            theme: Theme::default(),
            locale: default_locale(),
            time_zone: None,
            presence_visible: true,
            discoverable: true,
            created_at,
            role: UserRole::default(),
        }
    }

    /// What anyone else may see of this account: no email, no phone, no settings. Presence is
    /// added by whoever knows it and may show it.
    pub fn public(&self) -> PublicUser {
        PublicUser {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            avatar_url: self.avatar_url.clone(),
            bio: self.bio.clone(),
            status_message: self.status_message.clone(),
            created_at: self.created_at,
            online: None,
            last_seen_at: None,
        }
    }
}

/// A user's public profile, as other users see it. `online` and `last_seen_at` are present only
/// when the user shows their presence to the viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicUser {
    pub id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<i64>,
}

/// An account's role in the whole service (not in a room: see [`Role`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    #[default]
    User,
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<UserRole> {
        match s {
            "user" => Some(UserRole::User),
            "admin" => Some(UserRole::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomType {
    Direct,
    Group,
    /// A group at a place: discovered by position, joined from inside its radius.
    Location,
    /// A business's company channel: its admins post, subscribers read and react.
    Channel,
}

impl RoomType {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomType::Direct => "direct",
            RoomType::Group => "group",
            RoomType::Location => "location",
            RoomType::Channel => "channel",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(RoomType::Direct),
            "group" => Some(RoomType::Group),
            "location" => Some(RoomType::Location),
            "channel" => Some(RoomType::Channel),
            _ => None,
        }
    }
}

/// A member's role in a room. Ordered: `Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// A chat room. `roles` is an addition to the v1 shape: every member's role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: RoomType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub member_ids: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
}

impl Room {
    pub fn role_of(&self, user_id: &str) -> Option<Role> {
        self.roles.get(user_id).copied()
    }

    pub fn is_member(&self, user_id: &str) -> bool {
        self.roles.contains_key(user_id)
    }

    /// Whether members of this room see who else is in it: not a channel's subscribers.
    pub fn lists_members_to(&self, user_id: &str) -> bool {
        self.kind != RoomType::Channel
            || self.role_of(user_id).unwrap_or(Role::Member) >= Role::Admin
    }

    /// The room as `user_id` may see it: a channel's subscriber sees its admins and
    /// themself, never the other subscribers.
    pub fn seen_by(&self, user_id: &str) -> std::borrow::Cow<'_, Room> {
        if self.lists_members_to(user_id) {
            return std::borrow::Cow::Borrowed(self);
        }
        let keep = |u: &str| u == user_id || self.role_of(u).is_some_and(|r| r >= Role::Admin);
        std::borrow::Cow::Owned(Room {
            id: self.id.clone(),
            kind: self.kind,
            name: self.name.clone(),
            member_ids: self
                .member_ids
                .iter()
                .filter(|u| keep(u))
                .cloned()
                .collect(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            roles: self
                .roles
                .iter()
                .filter(|(u, _)| keep(u))
                .map(|(u, r)| (u.clone(), *r))
                .collect(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Video,
    Voice,
    File,
    Location,
    System,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::Video => "video",
            MessageKind::Voice => "voice",
            MessageKind::File => "file",
            MessageKind::Location => "location",
            MessageKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(MessageKind::Text),
            "image" => Some(MessageKind::Image),
            "video" => Some(MessageKind::Video),
            "voice" => Some(MessageKind::Voice),
            "file" => Some(MessageKind::File),
            "location" => Some(MessageKind::Location),
            "system" => Some(MessageKind::System),
            _ => None,
        }
    }
}

/// A message in a room. `seq` is its position in the room: 1, 2, 3… never reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub room_id: String,
    pub seq: u64,
    pub sender_id: String,
    pub kind: MessageKind,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// The members `<@USER_ID>` in `content` names (members only, in order, unique).
    #[serde(default)]
    pub mentions: Vec<String>,
    #[serde(default)]
    pub reactions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
    /// Previews of the links in `content`, filled in after the message is stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_previews: Vec<serde_json::Value>,
    /// A `location` message's place: `lat`, `lon`, `accuracy_m`, `label`, `map_url`,
    /// `static_map_url`?, and for a live share `share_id` and `live_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<serde_json::Value>,
    /// The text asks where someone is: clients may offer to share a location.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suggest_location: bool,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    #[serde(default)]
    pub deleted: bool,
}

/// Extracts `#hashtags` from message text: a `#` at the start or after a non-word character,
/// followed by letters, digits or `_` (any script). Lower-cased, unique, in order of appearance.
pub fn extract_hashtags(text: &str) -> Vec<String> {
    const MAX_TAG_CHARS: usize = 64;
    let mut tags: Vec<String> = Vec::new();
    let mut prev_is_word = false;
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '#' && !prev_is_word {
            let mut tag = String::new();
            while let Some(&(_, n)) = chars.peek() {
                if n.is_alphanumeric() || n == '_' {
                    tag.extend(n.to_lowercase());
                    chars.next();
                } else {
                    break;
                }
            }
            let len = tag.chars().count();
            if len > 0 && len <= MAX_TAG_CHARS && !tags.contains(&tag) {
                tags.push(tag);
            }
            prev_is_word = len > 0;
            continue;
        }
        prev_is_word = c.is_alphanumeric() || c == '_';
    }
    tags
}

/// Mentions one message may carry (more `<@…>` are plain text).
pub const MAX_MENTIONS: usize = 50;

/// Extracts the user ids of `<@USER_ID>` mentions from message text: ids of 1–64 ASCII letters,
/// digits, `-` or `_`, unique, in order of appearance, at most [`MAX_MENTIONS`]. Whether each is
/// a member of the room is the room's to check.
pub fn extract_mentions(text: &str) -> Vec<String> {
    const MAX_ID_CHARS: usize = 64;
    let mut ids: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("<@") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find('>') else { break };
        let id = &rest[..end];
        let valid = !id.is_empty()
            && id.len() <= MAX_ID_CHARS
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
                if ids.len() == MAX_MENTIONS {
                    break;
                }
            }
            rest = &rest[end + 1..];
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_extracted_unique_and_bounded() {
        assert_eq!(
            extract_mentions("hi <@u-1> and <@u_2>, again <@u-1>; <@bad id> <@> <@x"),
            vec!["u-1", "u_2"]
        );
        assert_eq!(extract_mentions("<<@a>>"), vec!["a"]);
        let many: String = (0..60).map(|i| format!("<@u{i}> ")).collect();
        assert_eq!(extract_mentions(&many).len(), MAX_MENTIONS);
        assert!(extract_mentions("no mentions").is_empty());
    }

    #[test]
    fn hashtags_are_extracted_lowercased_and_unique() {
        assert_eq!(
            extract_hashtags("Hi #Rust and #rust, #한국어 #a_b! not#this ## #"),
            vec!["rust", "한국어", "a_b"]
        );
        assert!(extract_hashtags("no tags here").is_empty());
    }
}
