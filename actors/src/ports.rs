//! The ports: small traits through which the actors reach storage, authentication, the socket
//! and metrics. The server crate implements them; tests implement them in memory.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use dovie_protocol::error::ErrorBody;
use dovie_protocol::model::{Message, Room};

/// A message before the room gives it a `seq` and an id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Draft {
    pub id: String,
    pub sender_id: String,
    pub content: String,
    pub nonce: Option<String>,
    pub reply_to: Option<String>,
    pub hashtags: Vec<String>,
    /// Ids of `<@…>` mentions in `content`; the room keeps only its members.
    #[serde(default)]
    pub mentions: Vec<String>,
    pub created_at: i64,
    /// `text`, or what the first attachment is.
    #[serde(default = "text_kind")]
    pub kind: dovie_protocol::model::MessageKind,
    /// The attached files' objects (as stored: without signed links).
    #[serde(default)]
    pub attachments: Vec<serde_json::Value>,
    /// A `location` message's place (see [`Message::location`]).
    #[serde(default)]
    pub location: Option<serde_json::Value>,
    /// The text asks where someone is (see [`Message::suggest_location`]).
    #[serde(default)]
    pub suggest_location: bool,
}

fn text_kind() -> dovie_protocol::model::MessageKind {
    dovie_protocol::model::MessageKind::Text
}

impl Draft {
    /// The message this draft becomes when stored under `seq` (what every store writes).
    pub fn into_message(self, room_id: &str, seq: u64) -> Message {
        Message {
            id: self.id,
            room_id: room_id.to_string(),
            seq,
            sender_id: self.sender_id,
            kind: self.kind,
            content: self.content,
            nonce: self.nonce,
            reply_to: self.reply_to,
            hashtags: self.hashtags,
            mentions: self.mentions,
            reactions: Default::default(),
            attachments: self.attachments,
            link_previews: Vec::new(),
            location: self.location,
            suggest_location: self.suggest_location,
            created_at: self.created_at,
            edited_at: None,
            deleted: false,
        }
    }
}

/// What the store did with one draft of an append batch.
#[derive(Debug, Clone)]
pub enum AppendOutcome {
    /// Stored durably under this seq.
    Stored(Message),
    /// The sender already used this nonce in this room: the earlier message, nothing stored.
    Duplicate(Message),
    /// The draft is invalid against stored state (e.g. `reply_to` names no message of the
    /// room): nothing stored, no seq taken.
    Rejected(ErrorBody),
}

/// Why an append batch did not go through.
#[derive(Debug, Clone)]
pub enum AppendError {
    /// The store's last seq for the room is not what the room actor believed: it must reload.
    SeqMismatch { last_seq: u64 },
    /// Nothing of the batch was stored.
    Failed(ErrorBody),
    /// Another node claimed the room since this actor loaded it: nothing of the batch counts,
    /// and this actor must stop acting as the owner.
    Fenced,
}

/// Which receipt a member sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReceiptKind {
    Read,
    Delivered,
}

/// What a room actor loads when it starts.
#[derive(Debug, Clone)]
pub struct RoomSnapshot {
    pub room: Room,
    pub last_seq: u64,
    /// The most recent messages, ascending by seq.
    pub recent: Vec<Message>,
    /// The ownership epoch this load claimed (cluster stores); appends carry it back.
    pub epoch: u64,
    /// A direct room whose members blocked one another: nothing can be sent in it.
    pub blocked: bool,
}

/// The storage a room actor needs. Implementations must make `append` atomic per batch and
/// durable before returning `Ok`.
#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// The room, its last seq and up to `window` most recent messages; `None` if no such room.
    /// A cluster store also claims the room for the caller (a new ownership epoch).
    async fn load_room(
        &self,
        room_id: &str,
        window: usize,
    ) -> Result<Option<RoomSnapshot>, ErrorBody>;
    /// Stores drafts as seqs `first_seq, first_seq+1, …` (duplicates by nonce take no seq).
    /// Fails with `SeqMismatch` if the room's stored last seq is not `first_seq - 1`, and with
    /// `Fenced` if the room was claimed with a newer epoch than `epoch`.
    async fn append(
        &self,
        room_id: &str,
        epoch: u64,
        first_seq: u64,
        drafts: Vec<Draft>,
    ) -> Result<Vec<AppendOutcome>, AppendError>;
    /// Messages with `seq > after`, ascending, at most `limit`.
    async fn messages_after(
        &self,
        room_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ErrorBody>;
    async fn get_message(&self, message_id: &str) -> Result<Option<Message>, ErrorBody>;
    /// Replaces the content (edit) and hashtags; returns the message as stored.
    async fn edit_message(
        &self,
        message_id: &str,
        content: &str,
        hashtags: &[String],
        at: i64,
    ) -> Result<Message, ErrorBody>;
    /// Replaces what the server fills in after a send — the attachments' objects (a file was
    /// deleted) and the link previews — leaving content and `edited_at` alone; returns the
    /// message as stored.
    async fn amend_message(
        &self,
        message_id: &str,
        attachments: Option<&[serde_json::Value]>,
        link_previews: Option<&[serde_json::Value]>,
    ) -> Result<Message, ErrorBody>;
    /// Turns the message into a tombstone; returns it as stored.
    async fn delete_message(&self, message_id: &str, at: i64) -> Result<Message, ErrorBody>;
    /// Adds or removes one reaction; returns the message as stored.
    async fn set_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        on: bool,
    ) -> Result<Message, ErrorBody>;
    /// Raises the member's read or delivered mark to `seq` (never lowers it).
    async fn set_receipt(
        &self,
        room_id: &str,
        user_id: &str,
        kind: ReceiptKind,
        seq: u64,
    ) -> Result<(), ErrorBody>;
    /// The room's current ownership epoch (0 where the store has none).
    async fn current_epoch(&self, room_id: &str) -> Result<u64, ErrorBody>;
    /// Every user who shares at least one room with `user_id`.
    async fn co_members(&self, user_id: &str) -> Result<Vec<String>, ErrorBody>;
    /// Who hears `user_id`'s presence: every user sharing a room of at most `max_room_members`
    /// members with them (large rooms carry no presence: it would cost members² events), none
    /// when the user hides their presence, and no one either of them blocked.
    async fn presence_audience(
        &self,
        user_id: &str,
        max_room_members: usize,
    ) -> Result<Vec<String>, ErrorBody>;
    /// Records when the user was last online.
    async fn set_last_seen(&self, user_id: &str, at: i64) -> Result<(), ErrorBody>;
    /// Everyone `user_id` blocked: their sessions get none of those users' events.
    async fn blocked_users(&self, user_id: &str) -> Result<Vec<String>, ErrorBody>;
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    /// The login session (refresh-token family) the token was issued to.
    pub auth_session_id: String,
}

/// Checks access tokens (signature, expiry, revocation).
pub trait Authenticator: Send + Sync + 'static {
    fn verify(&self, token: &str) -> Result<Identity, ErrorBody>;
}

/// The write half of one socket, as the session actor sees it.
pub trait Outlet: Send + 'static {
    /// Queues a frame; `Err` when the bounded queue is full (the peer does not read).
    fn send(&self, frame: Bytes) -> Result<(), OutletFull>;
    /// Sends a WebSocket ping.
    fn ping(&self);
    /// Answers a client's WebSocket ping.
    fn send_pong(&self, payload: Bytes);
    /// Closes the socket with a close code, dropping what is still queued if it must.
    fn close(&self, code: u16, reason: &str);
    /// Queues several frames at once (one wake of the writer); `Err` if they did not all fit.
    fn send_batch(&self, frames: &mut dyn Iterator<Item = Bytes>) -> Result<(), OutletFull> {
        for f in frames {
            self.send(f)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct OutletFull;

/// Metrics the actors emit; the server maps them onto Prometheus series.
pub trait Telemetry: Send + Sync + 'static {
    fn command(&self, name: &str);
    /// `n` events of type `t` were handed to sessions.
    fn events_delivered(&self, t: &str, n: u64);
    fn send_durable(&self, elapsed: Duration);
    /// A message's event reached every local recipient, `elapsed` after its send arrived
    /// (observed once per event and fan-out, not once per recipient).
    fn send_delivered(&self, elapsed: Duration);
    fn room_actor_started(&self);
    fn room_actor_stopped(&self);
    fn session_opened(&self, codec: &str);
    fn session_closed(&self, codec: &str);
    /// A `resume` replay was answered from `source`: `memory` (the room's window), `store`, or
    /// `resync` (too far behind).
    fn replay(&self, source: &'static str);
}

/// Delivers events to users' sessions wherever they are connected: this node's registry alone,
/// or — in a cluster — the bus that reaches every node.
#[async_trait]
pub trait Fanout: Send + Sync + 'static {
    /// A room's event, for the room's `audience` (its members).
    fn room_event(&self, room_id: &str, audience: &[String], event: Arc<crate::Event>);
    /// A room's events of one store batch, in seq order: recipients get them in one write.
    fn room_events(&self, room_id: &str, audience: &[String], events: &[Arc<crate::Event>]) {
        for e in events {
            self.room_event(room_id, audience, e.clone());
        }
    }
    /// An event of no room (presence), for `audience`.
    fn user_event(&self, audience: &[String], event: Arc<crate::Event>);
    /// A user's first session on this node connected (a cluster follows their rooms). Answers
    /// whether it is their first session anywhere, i.e. whether to announce `user_online`.
    async fn local_user_online(&self, _user_id: &str) -> bool {
        true
    }
    /// A user's last session on this node closed. Answers whether they have no session left
    /// anywhere, i.e. whether to announce `user_offline`.
    async fn local_user_offline(&self, _user_id: &str) -> bool {
        true
    }
}

/// Per-user send quota (messages per minute, across all of a user's sessions — and, in a
/// cluster, across nodes). Answers without waiting: a cluster counts locally and reconciles
/// with the shared counters in the background.
pub trait SendQuota: Send + Sync + 'static {
    /// Counts one send; false when the user is over the quota (nothing is counted then).
    fn allow_send(&self, user_id: &str) -> bool;
}

/// What the server adds around messages beyond the room's own work: attachments, links that
/// expire, work that follows a stored message (link previews, location suggestions), and the
/// commands of feature domains beyond the chat core (`location_update`).
#[async_trait]
pub trait MessageExtras: Send + Sync + 'static {
    /// Fills in what the server derives from a draft's text before it reaches the room (whether
    /// it asks where someone is).
    fn prepare(&self, _draft: &mut Draft) {}
    /// A command of a feature domain (not the chat core's): answers the reply's `d`.
    async fn feature_command(
        &self,
        _user_id: &str,
        command: dovie_protocol::commands::Command,
    ) -> Result<serde_json::Value, ErrorBody> {
        Err(ErrorBody::new(
            dovie_protocol::error::ErrorCode::BadRequest,
            format!("`{}` is not available here", command.name()),
        ))
    }
    /// The text a WebSocket send's content stands for, if it calls one of the sender's saved
    /// commands (`/name`); `None`: send the content as it is.
    async fn expand_command(
        &self,
        _user_id: &str,
        _content: &str,
    ) -> Result<Option<String>, ErrorBody> {
        Ok(None)
    }
    /// Checks a send's attachments (the sender's own files, not deleted, at most the limit) and
    /// shares each into the room; answers their objects in order. Called before the send
    /// reaches the room.
    async fn attach(
        &self,
        sender_id: &str,
        room_id: &str,
        message_id: &str,
        file_ids: &[String],
        hashtags: &[String],
    ) -> Result<Vec<serde_json::Value>, ErrorBody>;
    /// A new message was stored in a room of these members.
    fn stored(&self, message: &Message, members: &[String]);
    /// `user_id` read `room_id` up to a new point (their unread counts changed).
    fn read(&self, _user_id: &str, _room_id: &str) {}
    /// Adds to a message what it carries only when shown (signed links of its attachments).
    fn present(&self, message: &mut Message);
}

/// No attachments, nothing after a store: for tests of the actors alone.
pub struct NoExtras;

#[async_trait]
impl MessageExtras for NoExtras {
    async fn attach(
        &self,
        _: &str,
        _: &str,
        _: &str,
        file_ids: &[String],
        _: &[String],
    ) -> Result<Vec<serde_json::Value>, ErrorBody> {
        if file_ids.is_empty() {
            Ok(Vec::new())
        } else {
            Err(ErrorBody::new(
                dovie_protocol::error::ErrorCode::ValidationFailed,
                "attachments are not available here",
            ))
        }
    }

    fn stored(&self, _: &Message, _: &[String]) {}

    fn present(&self, _: &mut Message) {}
}

/// Renders texts a person reads in their language: a session's errors.
#[async_trait]
pub trait Localizer: Send + Sync + 'static {
    /// The language of a connection before its account is known, from its `Accept-Language`.
    fn negotiate(&self, account: Option<&str>, accept_language: Option<&str>) -> &'static str;
    /// `err` in `locale`'s words; its code unchanged.
    fn localize(&self, locale: &str, err: &ErrorBody) -> ErrorBody;
    /// The language `user_id`'s account chose (`None`: unknown, or the store did not answer).
    async fn account_locale(&self, user_id: &str) -> Option<String>;
}

/// Texts as the code wrote them (English): for tests of the actors alone.
pub struct English;

#[async_trait]
impl Localizer for English {
    fn negotiate(&self, _: Option<&str>, _: Option<&str>) -> &'static str {
        "en"
    }

    fn localize(&self, _: &str, err: &ErrorBody) -> ErrorBody {
        err.clone()
    }

    async fn account_locale(&self, _: &str) -> Option<String> {
        None
    }
}

/// Which room each session shows (WS `active`): no push reaches a user for a room one of their
/// sessions shows, on any node.
pub trait Activity: Send + Sync + 'static {
    /// One of `user_id`'s sessions moved from showing `from` to showing `to` (`None`: no room;
    /// a closing session moves to `None`).
    fn active_changed(&self, user_id: &str, from: Option<&str>, to: Option<&str>);
}

/// Nobody watches: for tests of the actors alone.
pub struct NoActivity;

impl Activity for NoActivity {
    fn active_changed(&self, _: &str, _: Option<&str>, _: Option<&str>) {}
}

/// Everything the actors need from the outside, shared.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn RoomStore>,
    pub auth: Arc<dyn Authenticator>,
    pub telemetry: Arc<dyn Telemetry>,
    pub fanout: Arc<dyn Fanout>,
    pub quota: Arc<dyn SendQuota>,
    pub extras: Arc<dyn MessageExtras>,
    pub texts: Arc<dyn Localizer>,
    pub activity: Arc<dyn Activity>,
}
