//! The room actor: the single writer of one active room.
//!
//! It assigns `seq` (consecutive, never reused), batches appends to the store, answers a send only
//! after its batch is durable, then publishes the event once — encoded at most once per codec —
//! to the sessions of every member. It keeps a window of recent messages so reconnecting sessions
//! resume from memory, tracks typing with auto-expiry, and passivates when idle.
//!
//! State machine: `Loading` (mailbox paused while the snapshot loads) → `Ready` | `Missing` |
//! `Unavailable`. A panic in a handler is caught, the actor stops, and its `Supervisor` restarts
//! it: `restarting` answers everything in flight with an error (nothing unacknowledged is
//! claimed stored) and the new incarnation reloads from the store, so nothing acknowledged is
//! lost and no seq is reused (the store rejects a stale `first_seq`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::events::{self as ev};
use dovie_protocol::model::{Message, Role, Room, RoomType};
use dovie_protocol::rules;

use crate::directory::RoomDirectory;
use crate::event::Event;
use crate::ports::{AppendError, AppendOutcome, Draft, Ports, ReceiptKind, RoomSnapshot};

/// Recent messages kept in memory for resume.
/// `ev::MessagePayload` by reference: the same encoding without cloning the message.
#[derive(serde::Serialize)]
struct MessageRef<'a> {
    message: &'a Message,
}

pub const WINDOW: usize = 1024;
/// At most this many drafts go to the store in one append.
pub const MAX_BATCH: usize = 512;
/// A typing indicator with no stop ends by itself after this long.
pub const TYPING_TTL: Duration = Duration::from_secs(6);
/// An idle room actor passivates after this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// How often an owner in a cluster checks that its ownership epoch is still current (bounds how
/// long a node that missed a change of owners can serve stale reads).
const EPOCH_CHECK: Duration = Duration::from_secs(2);
/// A room that failed to load (missing, store down) answers errors this long, then stops.
const FAILED_LINGER: Duration = Duration::from_secs(1);
/// A resume further behind than this many messages gets `resync_required` instead of a replay.
pub const MAX_REPLAY: usize = 2000;

/// Checks what a send carries: text of at most `max_chars` characters — which may be blank only
/// when files are attached — and at most [`rules::MAX_ATTACHMENTS`] files.
pub fn validate_send(content: &str, attachments: usize, max_chars: usize) -> Result<(), ErrorBody> {
    if attachments == 0 {
        return validate_content(content, max_chars);
    }
    if attachments > rules::MAX_ATTACHMENTS {
        return Err(ErrorBody::new(
            ErrorCode::ValidationFailed,
            format!("at most {} attachments", rules::MAX_ATTACHMENTS),
        ));
    }
    if content.chars().count() > max_chars {
        return Err(ErrorBody::new(
            ErrorCode::ValidationFailed,
            format!("content exceeds {max_chars} characters"),
        ));
    }
    Ok(())
}

/// A message's kind from its attachments: what the first file is (`audio` makes a `voice`
/// message, documents and archives a `file` one); `text` with none.
pub fn kind_of_attachments(files: &[serde_json::Value]) -> dovie_protocol::model::MessageKind {
    use dovie_protocol::model::MessageKind;
    match files
        .first()
        .and_then(|f| f.get("kind"))
        .and_then(|k| k.as_str())
    {
        None => MessageKind::Text,
        Some("image") => MessageKind::Image,
        Some("video") => MessageKind::Video,
        Some("audio") => MessageKind::Voice,
        Some(_) => MessageKind::File,
    }
}

/// Checks message text: not blank, at most `max_chars` characters.
pub fn validate_content(content: &str, max_chars: usize) -> Result<(), ErrorBody> {
    if !rules::not_blank(content) {
        return Err(ErrorBody::new(
            ErrorCode::ValidationFailed,
            "content must not be empty",
        ));
    }
    if content.chars().count() > max_chars {
        return Err(ErrorBody::new(
            ErrorCode::ValidationFailed,
            format!("content exceeds {max_chars} characters"),
        ));
    }
    Ok(())
}

/// Checks what a send carries besides its text (REST and WebSocket alike) and normalises it:
/// the nonce at most 128 printable ASCII characters (so at most 128 bytes), empty `nonce` and
/// `reply_to` mean none.
pub fn validate_send_extras(
    nonce: Option<String>,
    reply_to: Option<String>,
) -> Result<(Option<String>, Option<String>), ErrorBody> {
    if nonce.as_ref().is_some_and(|n| !rules::valid_nonce(n)) {
        return Err(ErrorBody::new(
            ErrorCode::ValidationFailed,
            format!(
                "nonce must be at most {} printable ASCII characters",
                rules::MAX_NONCE_CHARS
            ),
        ));
    }
    Ok((
        nonce.filter(|n| !n.is_empty()),
        reply_to.filter(|r| !r.is_empty()),
    ))
}

type Answer<T> = Box<dyn FnOnce(Result<T, ErrorBody>) + Send>;

/// A one-shot answer channel that always answers: dropped unanswered, it answers an error.
pub struct Responder<T: Send + 'static> {
    f: Option<Answer<T>>,
}

impl<T: Send + 'static> Responder<T> {
    pub fn new(f: impl FnOnce(Result<T, ErrorBody>) + Send + 'static) -> Self {
        Responder {
            f: Some(Box::new(f)),
        }
    }

    /// A responder that answers into a oneshot channel (for REST handlers).
    pub fn channel() -> (Self, tokio::sync::oneshot::Receiver<Result<T, ErrorBody>>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (
            Responder::new(move |r| {
                let _ = tx.send(r);
            }),
            rx,
        )
    }

    pub fn send(mut self, result: Result<T, ErrorBody>) {
        if let Some(f) = self.f.take() {
            f(result);
        }
    }
}

impl<T: Send + 'static> Drop for Responder<T> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            f(Err(ErrorBody::new(
                ErrorCode::Internal,
                "the room was interrupted before answering; retry (sends: with the same nonce)",
            )));
        }
    }
}

/// Posts a message. Answers `(message, created)`; `created` is false for a repeated nonce.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Post {
    pub draft: Draft,
    pub reply: Responder<(Message, bool)>,
    pub started: Instant,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Edit {
    pub user_id: String,
    pub message_id: String,
    pub content: String,
    pub hashtags: Vec<String>,
    pub reply: Responder<Message>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Delete {
    pub user_id: String,
    pub message_id: String,
    /// A site admin acting on a report (`user_id`): no membership or room role is needed.
    pub moderator: bool,
    pub reply: Responder<Message>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct React {
    pub user_id: String,
    pub message_id: String,
    pub emoji: String,
    pub on: bool,
    pub reply: Responder<Message>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub user_id: String,
    pub start: bool,
    pub reply: Responder<()>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Receipt {
    pub user_id: String,
    pub kind: ReceiptKind,
    pub seq: u64,
    pub reply: Responder<()>,
}

/// A member asks for what they missed after `after`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Replay {
    pub user_id: String,
    pub after: u64,
    pub reply: Responder<ReplayAnswer>,
}

/// The answer to a [`Replay`]: every `new_message` in `(after, upto]`, in order (current state),
/// or — too far behind — only `upto`, and the client reloads the room over REST.
pub enum ReplayAnswer {
    Events { upto: u64, events: Vec<Arc<Event>> },
    Resync { upto: u64 },
}

/// The room's record changed (REST: rename, members, delete). `room: None` means deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomChanged {
    pub room: Option<Room>,
    pub joined: Vec<String>,
    pub left: Vec<String>,
    /// A new room: every founding member hears one `room_updated` addressed to them (their
    /// nodes may not follow the room's channel yet).
    pub created: bool,
}

/// Members of a direct room blocked one another, or unblocked (sent by the blocks API to the
/// room's owner).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetBlocked {
    pub blocked: bool,
}

/// Answers once every write in flight is done (drain on shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub reply: Responder<()>,
}

/// Ownership moved to another node: finish the writes in flight, then hand over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave;

/// The server changes what it fills in after a send: one attachment's object (its previews are
/// ready, or it was deleted: replaced by id) or the link previews. Members get
/// `message_edited`; content and `edited_at` stay. Amends of a room run one at a time.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Amend {
    pub message_id: String,
    pub attachment: Option<serde_json::Value>,
    pub link_previews: Option<Vec<serde_json::Value>>,
    pub reply: Responder<Message>,
}

/// Test hook: panics inside the actor, to prove supervision restarts it without loss.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

struct Entry {
    message: Message,
    /// The `new_message` event with the message's current state, shared by live and replay.
    event: Arc<Event>,
}

struct Ready {
    room: Room,
    last_seq: u64,
    epoch: u64,
    /// A direct room whose two members blocked one another: no sends, reactions or typing.
    blocked: bool,
    window: VecDeque<Entry>,
}

enum State {
    Loading,
    Ready(Box<Ready>),
    Missing,
    Unavailable(ErrorBody),
}

/// Sends room actors of this process have accepted and not yet answered (queued, or in a store
/// write): the depth of the rooms' queues, for the metrics.
pub static SENDS_IN_FLIGHT: AtomicI64 = AtomicI64::new(0);

/// Counts a send in [`SENDS_IN_FLIGHT`] from its acceptance until it is dropped (answered or
/// failed: every path ends by dropping it).
struct InFlight;

impl InFlight {
    fn new() -> InFlight {
        SENDS_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        SENDS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Pending {
    draft: Draft,
    reply: Responder<(Message, bool)>,
    started: Instant,
    _in_flight: InFlight,
}

pub struct RoomActor {
    room_id: Arc<str>,
    ports: Ports,
    directory: Arc<RoomDirectory>,
    state: State,
    pending: VecDeque<Pending>,
    flushing: bool,
    drains: Vec<Responder<()>>,
    typing: HashMap<Arc<str>, SpawnHandle>,
    last_active: Instant,
    /// Set when the actor leaves the directory; it then only forwards to its successor.
    passivated: bool,
    /// Ownership moved away: leave as soon as the writes in flight are done.
    leaving: bool,
}

impl RoomActor {
    pub fn new(room_id: Arc<str>, ports: Ports, directory: Arc<RoomDirectory>) -> Self {
        RoomActor {
            room_id,
            ports,
            directory,
            state: State::Loading,
            pending: VecDeque::new(),
            flushing: false,
            drains: Vec::new(),
            typing: HashMap::new(),
            last_active: Instant::now(),
            passivated: false,
            leaving: false,
        }
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        self.state = State::Loading;
        let store = self.ports.store.clone();
        let room_id = self.room_id.clone();
        let fut = async move { store.load_room(&room_id, WINDOW).await };
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| {
            act.state = match res {
                Ok(Some(snap)) => {
                    tracing::debug!(room = %act.room_id, epoch = snap.epoch, last_seq = snap.last_seq, "room loaded");
                    State::Ready(Box::new(act.ready_from(snap)))
                }
                Ok(None) => State::Missing,
                Err(e) => State::Unavailable(e),
            };
            if !matches!(act.state, State::Ready(_)) {
                // Answer what waits (and what arrives meanwhile) with the error, then leave:
                // a later request starts a fresh actor and tries the store again.
                act.fail_pending(act.state_error());
                ctx.run_later(FAILED_LINGER, |act, ctx| act.leave(ctx));
                return;
            }
            act.flush(ctx);
        }));
    }

    fn ready_from(&self, snap: RoomSnapshot) -> Ready {
        let window = snap
            .recent
            .into_iter()
            .map(|m| Entry {
                event: self.message_event(&m, None),
                message: m,
            })
            .collect();
        Ready {
            room: snap.room,
            last_seq: snap.last_seq,
            epoch: snap.epoch,
            blocked: snap.blocked,
            window,
        }
    }

    /// The message as members see it: with the signed links of its attachments.
    fn shown(&self, mut m: Message) -> Message {
        if !m.attachments.is_empty() {
            self.ports.extras.present(&mut m);
        }
        m
    }

    fn message_event(&self, m: &Message, origin: Option<Instant>) -> Arc<Event> {
        let shown;
        let m = if m.attachments.is_empty() {
            m
        } else {
            shown = self.shown(m.clone());
            &shown
        };
        let mut e = Event::typed(ev::NEW_MESSAGE, &MessageRef { message: m })
            .in_room(self.room_id.clone(), Some(m.seq))
            .by(&m.sender_id);
        e.origin = origin;
        Arc::new(e)
    }

    fn state_error(&self) -> ErrorBody {
        match &self.state {
            State::Missing => ErrorBody::new(ErrorCode::NotFound, "no such room"),
            State::Unavailable(e) => e.clone(),
            _ => ErrorBody::new(ErrorCode::Internal, "room not ready"),
        }
    }

    fn fail_pending(&mut self, err: ErrorBody) {
        for p in self.pending.drain(..) {
            p.reply.send(Err(err.clone()));
        }
    }

    /// Leaves the directory and stops for good (no supervisor restart: it forwards from now on).
    fn leave(&mut self, ctx: &mut Context<Self>) {
        self.passivated = true;
        self.directory.remove(&self.room_id, &ctx.address());
        ctx.stop();
    }

    /// The loaded room, after checking that `user_id` is a member.
    /// The room for a member who may act in it: not in a direct room whose members blocked
    /// one another.
    fn open_room(&self, user_id: &str) -> Result<&Ready, ErrorBody> {
        let r = self.member_room(user_id)?;
        if r.blocked {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "you cannot message this user (blocked)",
            ));
        }
        Ok(r)
    }

    /// The room for a member who may write in it: in a channel, only its owner and admins
    /// post and type (subscribers read and react).
    fn speaking_room(&self, user_id: &str) -> Result<&Ready, ErrorBody> {
        let r = self.open_room(user_id)?;
        if r.room.kind == RoomType::Channel
            && r.room.role_of(user_id).unwrap_or(Role::Member) < Role::Admin
        {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "only the channel's admins post in it",
            ));
        }
        Ok(r)
    }

    /// A channel's subscribers came or went: each of them hears of it (the room as they may
    /// see it), and so do the channel's admins; the other subscribers hear nothing (with
    /// thousands of them, telling everyone of everyone is quadratic, and they do not list
    /// one another).
    fn channel_changed(&mut self, room: Room, joined: &[String], left: &[String]) {
        let rid = self.room_id.to_string();
        let moved = |t: &'static str, u: &String| {
            let payload = ev::RoomUser {
                room_id: rid.clone(),
                user_id: u.clone(),
            };
            Arc::new(self.room_event(t, &payload))
        };
        let mut for_admins: Vec<Arc<Event>> = Vec::new();
        let mut for_movers: Vec<(String, Arc<Event>)> = Vec::new();
        for (t, users) in [(ev::USER_JOINED, joined), (ev::USER_LEFT, left)] {
            for u in users {
                let e = moved(t, u);
                for_admins.push(e.clone());
                for_movers.push((u.clone(), e));
            }
        }
        for_admins.push(Arc::new(
            self.room_event(ev::ROOM_UPDATED, &ev::RoomPayload { room: room.clone() }),
        ));
        for u in joined.iter().chain(left) {
            let seen = room.seen_by(u).into_owned();
            let e = Arc::new(self.room_event(ev::ROOM_UPDATED, &ev::RoomPayload { room: seen }));
            for_movers.push((u.clone(), e));
        }
        let admins: Vec<String> = room
            .roles
            .iter()
            .filter(|(u, r)| **r >= Role::Admin && !joined.contains(u) && !left.contains(u))
            .map(|(u, _)| u.clone())
            .collect();
        if let State::Ready(r) = &mut self.state {
            r.room = room;
        }
        self.ports
            .fanout
            .room_events(&self.room_id, &admins, &for_admins);
        for (u, e) in for_movers {
            self.ports.fanout.user_event(std::slice::from_ref(&u), e);
        }
    }

    fn member_room(&self, user_id: &str) -> Result<&Ready, ErrorBody> {
        match &self.state {
            State::Ready(r) if r.room.is_member(user_id) => Ok(r),
            State::Ready(_) => Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "you are not a member of this room",
            )),
            _ => Err(self.state_error()),
        }
    }

    fn publish(&self, event: Arc<Event>) {
        if let State::Ready(r) = &self.state {
            self.ports
                .fanout
                .room_event(&self.room_id, &r.room.member_ids, event);
        }
    }

    /// A receipt goes to every member, but in a channel only to its admins and the reader's
    /// own devices (subscribers' receipts to every subscriber would be quadratic).
    fn publish_receipt(&self, reader: &str, event: Arc<Event>) {
        let State::Ready(r) = &self.state else {
            return;
        };
        if r.room.kind != RoomType::Channel {
            return self.publish(event);
        }
        let audience: Vec<String> = r
            .room
            .roles
            .iter()
            .filter(|(u, role)| **role >= Role::Admin || u.as_str() == reader)
            .map(|(u, _)| u.clone())
            .collect();
        self.ports
            .fanout
            .room_event(&self.room_id, &audience, event);
    }

    fn room_event<T: serde::Serialize>(&self, t: &'static str, payload: &T) -> Event {
        Event::new(t, payload).in_room(self.room_id.clone(), None)
    }

    /// Sends the next batch of pending drafts to the store, unless one is in flight.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.pending.is_empty() {
            return;
        }
        let State::Ready(ready) = &self.state else {
            return;
        };
        let n = self.pending.len().min(MAX_BATCH);
        let batch: Vec<Pending> = self.pending.drain(..n).collect();
        let drafts: Vec<Draft> = batch.iter().map(|p| p.draft.clone()).collect();
        let (first_seq, epoch) = (ready.last_seq + 1, ready.epoch);
        let store = self.ports.store.clone();
        let room_id = self.room_id.clone();
        self.flushing = true;
        let fut = async move { store.append(&room_id, epoch, first_seq, drafts).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.flushing = false;
            guarded(act, ctx, move |act, ctx| act.on_appended(batch, res, ctx));
        }));
    }

    fn on_appended(
        &mut self,
        batch: Vec<Pending>,
        res: Result<Vec<AppendOutcome>, AppendError>,
        ctx: &mut Context<Self>,
    ) {
        match res {
            Ok(outcomes) => {
                let mut events = Vec::with_capacity(outcomes.len());
                for (p, outcome) in batch.into_iter().zip(outcomes) {
                    match outcome {
                        AppendOutcome::Stored(m) => events.push(self.on_stored(p, m)),
                        AppendOutcome::Duplicate(m) => p.reply.send(Ok((self.shown(m), false))),
                        AppendOutcome::Rejected(e) => p.reply.send(Err(e)),
                    }
                }
                // The whole batch at once: each recipient gets it in one socket write.
                if let State::Ready(r) = &self.state {
                    self.ports
                        .fanout
                        .room_events(&self.room_id, &r.room.member_ids, &events);
                }
            }
            Err(AppendError::SeqMismatch { last_seq }) => {
                // Someone stored past what we knew (a previous incarnation's write landed late):
                // requeue the batch in order, reload the window, and try again.
                tracing::warn!(room = %self.room_id, last_seq, "seq mismatch on append; reloading");
                for p in batch.into_iter().rev() {
                    self.pending.push_front(p);
                }
                self.load(ctx);
                return;
            }
            Err(AppendError::Failed(e)) => {
                for p in batch {
                    p.reply.send(Err(e.clone()));
                }
            }
            Err(AppendError::Fenced) => {
                // Another node owns the room now: nothing of this batch was acknowledged;
                // clients retry with the same nonce and reach the new owner.
                tracing::warn!(room = %self.room_id, "fenced by a newer owner; handing over");
                let err = ErrorBody::new(
                    ErrorCode::Unavailable,
                    "the room moved to another node; retry",
                );
                for p in batch.into_iter().chain(self.pending.drain(..)) {
                    p.reply.send(Err(err.clone()));
                }
                return self.leave(ctx);
            }
        }
        self.flush(ctx);
        self.answer_drains();
        self.leave_when_idle(ctx);
    }

    /// Records a stored message (window, last seq), acknowledges it, and answers its event for
    /// the batch's fan-out.
    fn on_stored(&mut self, p: Pending, m: Message) -> Arc<Event> {
        self.ports.telemetry.send_durable(p.started.elapsed());
        let event = self.message_event(&m, Some(p.started));
        if let State::Ready(r) = &mut self.state {
            r.last_seq = r.last_seq.max(m.seq);
            r.window.push_back(Entry {
                message: m.clone(),
                event: event.clone(),
            });
            while r.window.len() > WINDOW {
                r.window.pop_front();
            }
        }
        let members = match &self.state {
            State::Ready(r) => &r.room.member_ids[..],
            _ => &[],
        };
        self.ports.extras.stored(&m, members);
        p.reply.send(Ok((self.shown(m), true)));
        event
    }

    fn answer_drains(&mut self) {
        if !self.flushing && self.pending.is_empty() {
            for d in self.drains.drain(..) {
                d.send(Ok(()));
            }
        }
    }

    /// Leaves if another node claimed the room since this actor loaded it.
    fn check_epoch(&mut self, ctx: &mut Context<Self>) {
        let State::Ready(r) = &self.state else { return };
        if r.epoch == 0 || self.passivated {
            return;
        }
        let (mine, store, room_id) = (r.epoch, self.ports.store.clone(), self.room_id.clone());
        let fut = async move { store.current_epoch(&room_id).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            if matches!(res, Ok(e) if e != mine) {
                tracing::warn!(room = %act.room_id, "another node claimed the room; handing over");
                act.leaving = true;
                act.leave_when_idle(ctx);
            }
        }));
    }

    /// Hands the room over once nothing is in flight (see [`Leave`]).
    fn leave_when_idle(&mut self, ctx: &mut Context<Self>) {
        if self.leaving && !self.flushing && self.pending.is_empty() && !self.passivated {
            tracing::info!(room = %self.room_id, "handing the room over to its new owner");
            self.leave(ctx);
        }
    }

    /// Replaces a window entry's message (edit, delete, reaction) and its replay event.
    fn update_window(&mut self, m: &Message) {
        let event = self.message_event(m, None);
        if let State::Ready(r) = &mut self.state {
            if let Some(e) = r.window.iter_mut().find(|e| e.message.id == m.id) {
                e.message = m.clone();
                e.event = event;
            }
        }
    }

    /// Looks a message of this room up (window first) after checking membership, then runs
    /// `then` with it, the caller's role and the responder; answers the error itself otherwise.
    fn with_message(
        &mut self,
        ctx: &mut Context<Self>,
        user_id: Option<&str>,
        message_id: String,
        reply: Responder<Message>,
        then: impl FnOnce(&mut Self, &mut Context<Self>, Message, Role, Responder<Message>) + 'static,
    ) {
        // A member's role; none: a moderator, who acts as the room's owner would.
        let role = match user_id.map(|u| self.member_room(u).map(|r| r.room.role_of(u))) {
            None => Role::Owner,
            Some(Ok(role)) => role.unwrap_or(Role::Member),
            Some(Err(e)) => return reply.send(Err(e)),
        };
        if let State::Ready(r) = &self.state {
            if let Some(e) = r.window.iter().find(|e| e.message.id == message_id) {
                let m = e.message.clone();
                return then(self, ctx, m, role, reply);
            }
        }
        let store = self.ports.store.clone();
        let room_id = self.room_id.clone();
        let fut = async move { store.get_message(&message_id).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(Some(m)) if *m.room_id == *room_id => {
                guarded(act, ctx, move |act, ctx| then(act, ctx, m, role, reply))
            }
            Ok(_) => reply.send(Err(ErrorBody::new(ErrorCode::NotFound, "no such message"))),
            Err(e) => reply.send(Err(e)),
        }));
    }

    /// Runs a store change of one message (edit, delete, reaction); on success updates the
    /// window, answers, and publishes the event `event` makes of the stored message.
    fn change_message<F>(
        &mut self,
        ctx: &mut Context<Self>,
        reply: Responder<Message>,
        change: F,
        event: impl FnOnce(&Self, &Message) -> Event + 'static,
    ) where
        F: std::future::Future<Output = Result<Message, ErrorBody>> + 'static,
    {
        ctx.spawn(change.into_actor(self).map(move |res, act, _| match res {
            Ok(m) => {
                act.update_window(&m);
                let m = act.shown(m);
                let e = event(act, &m);
                reply.send(Ok(m));
                act.publish(Arc::new(e));
            }
            Err(e) => reply.send(Err(e)),
        }));
    }

    fn stop_typing(&mut self, ctx: &mut Context<Self>, user_id: &str) {
        if let Some(h) = self.typing.remove(user_id) {
            ctx.cancel_future(h);
            let uid: Arc<str> = Arc::from(user_id);
            let e = self
                .room_event(
                    ev::TYPING_STOP,
                    &ev::RoomUser {
                        room_id: self.room_id.to_string(),
                        user_id: user_id.to_string(),
                    },
                )
                .skipping(uid);
            self.publish(Arc::new(e));
        }
    }

    fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// Forwards a message that reached a passivated incarnation to the current one.
    fn forward<M>(&self, msg: M)
    where
        M: crate::remote::Remotable,
        RoomActor: Handler<M>,
    {
        self.directory.room(&self.room_id).do_send(msg);
    }
}

/// Runs a handler body, turning a panic into a supervised restart instead of a dead arbiter.
fn guarded(
    act: &mut RoomActor,
    ctx: &mut Context<RoomActor>,
    f: impl FnOnce(&mut RoomActor, &mut Context<RoomActor>),
) {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(act, ctx)));
    if result.is_err() {
        tracing::error!(room = %act.room_id, "room actor panicked; restarting from the store");
        ctx.stop();
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.passivated {
            return;
        }
        self.ports.telemetry.room_actor_started();
        self.load(ctx);
        ctx.run_interval(EPOCH_CHECK, |act, ctx| act.check_epoch(ctx));
        ctx.run_interval(IDLE_CHECK, |act, ctx| {
            let idle = act.last_active.elapsed() >= IDLE_TIMEOUT;
            if idle && act.pending.is_empty() && !act.flushing && act.typing.is_empty() {
                act.leave(ctx);
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if !self.passivated {
            self.ports.telemetry.room_actor_stopped();
        }
        self.fail_pending(ErrorBody::new(ErrorCode::Internal, "room stopped; retry"));
    }
}

impl Supervised for RoomActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        if self.passivated {
            return;
        }
        // Everything not yet durable is answered with an error (clients retry with the same
        // nonce); the next `started` reloads the room from the store.
        self.fail_pending(ErrorBody::new(
            ErrorCode::Internal,
            "room restarted; retry with the same nonce",
        ));
        self.flushing = false;
        self.typing.clear();
        self.state = State::Loading;
        self.ports.telemetry.room_actor_stopped();
    }
}

impl Handler<Post> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Post, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        guarded(self, ctx, move |act, ctx| {
            if let Err(e) = act.speaking_room(&msg.draft.sender_id) {
                return msg.reply.send(Err(e));
            }
            act.stop_typing(ctx, &msg.draft.sender_id.clone());
            let mut draft = msg.draft;
            if let State::Ready(r) = &act.state {
                // Mentions name members only (an id that is not one stays plain text).
                draft.mentions.retain(|m| r.room.member_ids.contains(m));
            }
            act.pending.push_back(Pending {
                draft,
                reply: msg.reply,
                started: msg.started,
                _in_flight: InFlight::new(),
            });
            act.flush(ctx);
        });
    }
}

impl Handler<Edit> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Edit, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        let Edit {
            user_id,
            message_id,
            content,
            hashtags,
            reply,
        } = msg;
        guarded(self, ctx, move |act, ctx| {
            act.with_message(
                ctx,
                Some(&user_id.clone()),
                message_id,
                reply,
                move |act, ctx, m, _, reply| {
                    if m.sender_id != user_id {
                        return reply.send(Err(ErrorBody::new(
                            ErrorCode::Forbidden,
                            "only the sender can edit a message",
                        )));
                    }
                    if m.deleted {
                        return reply.send(Err(ErrorBody::new(
                            ErrorCode::Conflict,
                            "the message was deleted",
                        )));
                    }
                    let store = act.ports.store.clone();
                    let change = async move {
                        store
                            .edit_message(&m.id, &content, &hashtags, crate::now_ms())
                            .await
                    };
                    act.change_message(ctx, reply, change, |act, m| {
                        act.room_event(
                            ev::MESSAGE_EDITED,
                            &ev::MessagePayload { message: m.clone() },
                        )
                        .by(&m.sender_id)
                    });
                },
            );
        });
    }
}

impl Handler<Amend> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Amend, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        let Amend {
            message_id,
            attachment,
            link_previews,
            reply,
        } = msg;
        guarded(self, ctx, move |act, ctx| {
            if !matches!(act.state, State::Ready(_)) {
                return reply.send(Err(act.state_error()));
            }
            let store = act.ports.store.clone();
            let room_id = act.room_id.clone();
            let change = async move {
                let m = store
                    .get_message(&message_id)
                    .await?
                    .filter(|m| *m.room_id == *room_id)
                    .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "no such message"))?;
                if m.deleted {
                    return Ok(None);
                }
                let attachments = attachment.map(|new| {
                    let mut all = m.attachments.clone();
                    for a in all.iter_mut() {
                        if a.get("id").is_some() && a.get("id") == new.get("id") {
                            *a = new.clone();
                        }
                    }
                    all
                });
                store
                    .amend_message(&m.id, attachments.as_deref(), link_previews.as_deref())
                    .await
                    .map(Some)
            };
            // `wait`: the read-modify-write of one amend ends before the next starts.
            ctx.wait(change.into_actor(act).map(move |res, act, _| match res {
                Ok(Some(m)) => {
                    act.update_window(&m);
                    let m = act.shown(m);
                    let e = act
                        .room_event(
                            ev::MESSAGE_EDITED,
                            &ev::MessagePayload { message: m.clone() },
                        )
                        .by(&m.sender_id);
                    reply.send(Ok(m));
                    act.publish(Arc::new(e));
                }
                Ok(None) => reply.send(Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    "the message was deleted",
                ))),
                Err(e) => reply.send(Err(e)),
            }));
        });
    }
}

impl Handler<Delete> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Delete, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        let Delete {
            user_id,
            message_id,
            moderator,
            reply,
        } = msg;
        guarded(self, ctx, move |act, ctx| {
            let member = (!moderator).then(|| user_id.clone());
            act.with_message(
                ctx,
                member.as_deref(),
                message_id,
                reply,
                move |act, ctx, m, role, reply| {
                    if !moderator && m.sender_id != user_id && role < Role::Admin {
                        return reply.send(Err(ErrorBody::new(
                            ErrorCode::Forbidden,
                            "only the sender or a room admin can delete a message",
                        )));
                    }
                    if m.deleted {
                        return reply.send(Ok(m));
                    }
                    let store = act.ports.store.clone();
                    let change = async move { store.delete_message(&m.id, crate::now_ms()).await };
                    act.change_message(ctx, reply, change, |act, m| {
                        let d = ev::MessageDeleted {
                            room_id: m.room_id.clone(),
                            message_id: m.id.clone(),
                            seq: m.seq,
                        };
                        act.room_event(ev::MESSAGE_DELETED, &d)
                    });
                },
            );
        });
    }
}

impl Handler<React> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: React, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        let React {
            user_id,
            message_id,
            emoji,
            on,
            reply,
        } = msg;
        guarded(self, ctx, move |act, ctx| {
            if let Err(e) = act.open_room(&user_id) {
                return reply.send(Err(e));
            }
            act.with_message(
                ctx,
                Some(&user_id.clone()),
                message_id,
                reply,
                move |act, ctx, m, _, reply| {
                    if m.deleted {
                        return reply.send(Err(ErrorBody::new(
                            ErrorCode::Conflict,
                            "the message was deleted",
                        )));
                    }
                    let store = act.ports.store.clone();
                    let (uid, em) = (user_id.clone(), emoji.clone());
                    let change = async move { store.set_reaction(&m.id, &uid, &em, on).await };
                    act.change_message(ctx, reply, change, move |act, m| {
                        let by = user_id.clone();
                        let liked = ev::MessageLiked {
                            room_id: m.room_id.clone(),
                            message_id: m.id.clone(),
                            user_id,
                            emoji,
                            reactions: m.reactions.clone(),
                        };
                        act.room_event(ev::MESSAGE_LIKED, &liked).by(&by)
                    });
                },
            );
        });
    }
}

impl Handler<Typing> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Typing, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        guarded(self, ctx, move |act, ctx| {
            let check = if msg.start {
                act.speaking_room(&msg.user_id).map(|_| ())
            } else {
                act.member_room(&msg.user_id).map(|_| ())
            };
            if let Err(e) = check {
                return msg.reply.send(Err(e));
            }
            msg.reply.send(Ok(()));
            if !msg.start {
                return act.stop_typing(ctx, &msg.user_id);
            }
            let uid: Arc<str> = Arc::from(msg.user_id.as_str());
            let expire_uid = msg.user_id.clone();
            let handle = ctx.run_later(TYPING_TTL, move |act, ctx| {
                act.stop_typing(ctx, &expire_uid);
            });
            if let Some(old) = act.typing.insert(uid.clone(), handle) {
                // Still typing: the expiry restarts, no second start event.
                ctx.cancel_future(old);
                return;
            }
            let e = act
                .room_event(
                    ev::TYPING_START,
                    &ev::RoomUser {
                        room_id: act.room_id.to_string(),
                        user_id: msg.user_id.clone(),
                    },
                )
                .skipping(uid);
            act.publish(Arc::new(e));
        });
    }
}

impl Handler<Receipt> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Receipt, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        guarded(self, ctx, move |act, ctx| {
            let last_seq = match act.member_room(&msg.user_id) {
                Ok(r) => r.last_seq,
                Err(e) => return msg.reply.send(Err(e)),
            };
            let seq = msg.seq.min(last_seq);
            let store = act.ports.store.clone();
            let (room_id, user_id, kind) = (act.room_id.clone(), msg.user_id.clone(), msg.kind);
            let fut = async move { store.set_receipt(&room_id, &user_id, kind, seq).await };
            let reply = msg.reply;
            let user_id = msg.user_id;
            ctx.spawn(fut.into_actor(act).map(move |res, act, _| match res {
                Ok(()) => {
                    reply.send(Ok(()));
                    if kind == ReceiptKind::Read {
                        act.ports.extras.read(&user_id, &act.room_id);
                    }
                    let t = match kind {
                        ReceiptKind::Read => ev::MESSAGE_READ,
                        ReceiptKind::Delivered => ev::MESSAGE_DELIVERED,
                    };
                    let e = act
                        .room_event(
                            t,
                            &ev::Receipt {
                                room_id: act.room_id.to_string(),
                                user_id: user_id.clone(),
                                seq,
                            },
                        )
                        .by(&user_id);
                    act.publish_receipt(&user_id, Arc::new(e));
                }
                Err(e) => reply.send(Err(e)),
            }));
        });
    }
}

impl Handler<Replay> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Replay, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        guarded(self, ctx, move |act, ctx| {
            let Replay {
                user_id,
                after,
                reply,
            } = msg;
            let epoch = match &act.state {
                State::Ready(r) => r.epoch,
                _ => 0,
            };
            if epoch == 0 {
                return act.replay(ctx, &user_id, after, reply);
            }
            // In a cluster, another node may have claimed the room since this actor loaded it
            // (for a moment after a membership change the nodes' views of the live set
            // differ): what it wrote is not in this actor's memory, so a resume is answered
            // only while this actor's claim is still the room's.
            let (store, room_id) = (act.ports.store.clone(), act.room_id.clone());
            let fut = async move { store.current_epoch(&room_id).await };
            ctx.spawn(fut.into_actor(act).map(move |res, act, ctx| match res {
                Ok(current) if current == epoch => act.replay(ctx, &user_id, after, reply),
                Ok(_) => {
                    tracing::warn!(room = %act.room_id, "another node claimed the room; handing over");
                    act.leaving = true;
                    act.leave_when_idle(ctx);
                    reply.send(Err(ErrorBody::new(
                        ErrorCode::Unavailable,
                        "the room moved to another node; resume again",
                    )));
                }
                Err(e) => reply.send(Err(e)),
            }));
        });
    }
}

impl RoomActor {
    /// Answers a replay from this actor's window, or the store for older messages.
    fn replay(
        &mut self,
        ctx: &mut Context<Self>,
        user_id: &str,
        after: u64,
        reply: Responder<ReplayAnswer>,
    ) {
        let ready = match self.member_room(user_id) {
            Ok(r) => r,
            Err(e) => return reply.send(Err(e)),
        };
        let upto = ready.last_seq;
        if after >= upto {
            self.ports.telemetry.replay("memory");
            return reply.send(Ok(ReplayAnswer::Events {
                upto,
                events: Vec::new(),
            }));
        }
        let covered = ready
            .window
            .front()
            .is_some_and(|e| e.message.seq <= after + 1);
        if covered {
            self.ports.telemetry.replay("memory");
            let events = ready
                .window
                .iter()
                .filter(|e| e.message.seq > after)
                .map(|e| {
                    // Signed links expire: a message with attachments is shown anew.
                    if e.message.attachments.is_empty() {
                        e.event.clone()
                    } else {
                        self.message_event(&e.message, None)
                    }
                })
                .collect();
            return reply.send(Ok(ReplayAnswer::Events { upto, events }));
        }
        let missed = (upto - after) as usize;
        if missed > MAX_REPLAY {
            self.ports.telemetry.replay("resync");
            return reply.send(Ok(ReplayAnswer::Resync { upto }));
        }
        self.ports.telemetry.replay("store");
        let store = self.ports.store.clone();
        let rid = self.room_id.clone();
        let fut = async move { store.messages_after(&rid, after, missed).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, _| {
            let answer = res.map(|msgs| ReplayAnswer::Events {
                upto,
                events: msgs
                    .into_iter()
                    .filter(|m| m.seq <= upto)
                    .map(|m| act.message_event(&m, None))
                    .collect(),
            });
            reply.send(answer);
        }));
    }
}

impl Handler<SetBlocked> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: SetBlocked, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        guarded(self, ctx, move |act, _| {
            if let State::Ready(r) = &mut act.state {
                r.blocked = msg.blocked;
            }
        });
    }
}

impl Handler<RoomChanged> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: RoomChanged, ctx: &mut Context<Self>) {
        if self.passivated {
            return self.forward(msg);
        }
        self.touch();
        guarded(self, ctx, move |act, ctx| {
            let Some(room) = msg.room else {
                // Deleted: the REST layer told the members; answer what waits and go.
                act.state = State::Missing;
                act.fail_pending(ErrorBody::new(ErrorCode::NotFound, "the room was deleted"));
                return act.leave(ctx);
            };
            if room.kind == RoomType::Channel && !msg.created {
                return act.channel_changed(room, &msg.joined, &msg.left);
            }
            let rid = act.room_id.to_string();
            let mut events = Vec::new();
            for (t, users) in [(ev::USER_JOINED, &msg.joined), (ev::USER_LEFT, &msg.left)] {
                for u in users {
                    let payload = ev::RoomUser {
                        room_id: rid.clone(),
                        user_id: u.clone(),
                    };
                    events.push(Arc::new(act.room_event(t, &payload)));
                }
            }
            events.push(Arc::new(act.room_event(
                ev::ROOM_UPDATED,
                &ev::RoomPayload { room: room.clone() },
            )));
            // Members who stay hear it on the room's way (in a cluster: its channel, in order
            // with its messages); members who just joined or left are not on that way yet (or no
            // longer), so they hear it addressed to them — every one of them exactly once.
            let founders = if msg.created {
                &room.member_ids[..]
            } else {
                &[]
            };
            let movers: HashSet<&str> = msg
                .joined
                .iter()
                .chain(msg.left.iter())
                .chain(founders.iter())
                .map(String::as_str)
                .collect();
            let stayers: Vec<String> = room
                .member_ids
                .iter()
                .filter(|u| !movers.contains(u.as_str()))
                .cloned()
                .collect();
            let movers: Vec<String> = movers.into_iter().map(str::to_string).collect();
            if let State::Ready(r) = &mut act.state {
                r.room = room;
            }
            act.ports
                .fanout
                .room_events(&act.room_id, &stayers, &events);
            if !movers.is_empty() {
                for e in events {
                    act.ports.fanout.user_event(&movers, e);
                }
            }
        });
    }
}

impl Handler<Drain> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Drain, _: &mut Context<Self>) {
        if self.passivated {
            return msg.reply.send(Ok(()));
        }
        self.drains.push(msg.reply);
        self.answer_drains();
    }
}

impl Handler<Leave> for RoomActor {
    type Result = ();

    fn handle(&mut self, _: Leave, ctx: &mut Context<Self>) {
        self.leaving = true;
        self.leave_when_idle(ctx);
    }
}

impl Handler<InjectPanic> for RoomActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded(self, ctx, |_, _| panic!("injected room actor panic"));
    }
}
