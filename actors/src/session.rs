//! The session actor: one per WebSocket connection.
//!
//! It owns the socket's write half (an [`Outlet`] with a bounded queue), decodes inbound frames
//! in the codec negotiated at the upgrade, authenticates (token on the upgrade or a first `auth`
//! frame within [`SessionConfig::auth_timeout`]), rate-limits with a token bucket, sends pings and
//! drops dead peers, forwards commands to room actors, and writes the events room actors publish.
//!
//! Lifecycle: `started` arms the heartbeat and auth timer → authenticated (registered, presence
//! online) → `stopping` unregisters (presence offline when it was the user's last session).
//! A client that does not read is closed with 4008; sustained abuse of the rate limit with 4029.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use dovie_protocol::commands::{self as cmd, Command};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::events as ev;
use dovie_protocol::model::{extract_hashtags, extract_mentions};
use dovie_protocol::{Codec, Frame};
use serde_json::{json, Value};

use crate::directory::RoomDirectory;
use crate::event::Event;
use crate::ports::{Draft, Identity, Outlet, Ports, ReceiptKind};
use crate::registry::{Registry, SessionLink};
use crate::room::{self, Responder};

pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_AUTH_FAILED: u16 = 4001;
pub const CLOSE_FORCED_LOGOUT: u16 = 4003;
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const CLOSE_RATE_LIMITED: u16 = 4029;
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Rooms one `resume` may name.
pub const MAX_RESUME_ROOMS: usize = 1000;
/// Live events buffered per room while its replay is pending; past this the client is too slow.
const MAX_RESUME_BUFFER: usize = 10_000;
/// Longest room id `active` accepts (ids are UUIDs).
const MAX_ROOM_ID_BYTES: usize = 64;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Tunables of a session, from the server config.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub heartbeat: Duration,
    pub client_timeout: Duration,
    pub auth_timeout: Duration,
    /// Commands per second a session may sustain, and the burst above that.
    pub rate_per_sec: f64,
    pub rate_burst: f64,
    /// Rate-limited commands in a row (without a quiet second) before closing with 4029.
    pub max_strikes: u32,
    pub max_message_chars: usize,
    /// Rooms larger than this carry no presence events.
    pub presence_max_room_members: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            heartbeat: Duration::from_secs(25),
            client_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            rate_per_sec: 50.0,
            rate_burst: 100.0,
            max_strikes: 50,
            max_message_chars: 4000,
            presence_max_room_members: 100,
        }
    }
}

/// What the socket reader hands the session.
#[derive(Debug)]
pub enum Inbound {
    Frame(Bytes),
    Ping(Bytes),
    Pong,
    /// A frame over the size limit.
    TooLarge,
    /// The peer broke the WebSocket protocol.
    Invalid(String),
    Closed,
}

/// An event for this session's client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Event>);

/// Close the session with an event first (logout, drain).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Kick {
    pub code: u16,
    pub t: &'static str,
    pub payload: Value,
}

impl Kick {
    pub fn logout(reason: &str) -> Kick {
        Kick {
            code: CLOSE_FORCED_LOGOUT,
            t: ev::FORCE_LOGOUT,
            payload: json!({ "reason": reason }),
        }
    }

    pub fn maintenance(message: &str) -> Kick {
        Kick {
            code: CLOSE_GOING_AWAY,
            t: ev::SERVER_MAINTENANCE,
            payload: json!({ "message": message, "at": crate::now_ms() }),
        }
    }
}

/// The answer of a room actor to a command of this session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CommandDone {
    pub id: Option<Value>,
    pub result: Result<ReplyBody, ErrorBody>,
}

/// The `d` of a `reply`: a JSON value, or — on the hot send path — the stored message itself,
/// encoded straight from its type.
pub enum ReplyBody {
    Value(Value),
    Message(Box<dovie_protocol::model::Message>),
}

/// A room's answer to this session's `resume`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplayResult {
    pub room_id: Arc<str>,
    pub answer: Result<room::ReplayAnswer, ErrorBody>,
}

struct TokenBucket {
    tokens: f64,
    last: Instant,
}

struct Resume {
    id: Option<Value>,
    outstanding: usize,
    latest: HashMap<String, u64>,
}

/// What the upgrade request told a new session.
#[derive(Debug, Clone)]
pub struct Hello {
    /// A token given on the upgrade (query or `Authorization`), checked when the session starts.
    pub token: Option<String>,
    /// The language of its texts until its account is known (from `Accept-Language`).
    pub locale: &'static str,
}

pub struct SessionActor {
    conn_id: u64,
    session_id: String,
    codec: Codec,
    outlet: Arc<dyn Outlet + Sync>,
    /// This session's entry point for fan-out (set once authenticated).
    link: Option<Arc<SessionLink>>,
    ports: Ports,
    registry: Arc<Registry>,
    directory: Arc<RoomDirectory>,
    config: SessionConfig,
    identity: Option<Identity>,
    user_id: Arc<str>,
    /// A token given on the upgrade, checked in `started`.
    upgrade_token: Option<String>,
    last_heard: Instant,
    bucket: TokenBucket,
    strikes: u32,
    /// Rooms whose replay is pending, with the live events held back meanwhile.
    held: HashMap<Arc<str>, Vec<Arc<Event>>>,
    resume: Option<Resume>,
    closing: bool,
    /// The language of this session's error texts: its `Accept-Language` until authenticated,
    /// then the account's (read at the first error).
    locale: &'static str,
    account_locale: AccountLocale,
    /// The room this session shows (WS `active`): no pushes for it while it does.
    active_room: Option<String>,
}

/// Whether the account's language has been read for this session's errors.
enum AccountLocale {
    Unasked,
    /// Being read; the errors met meanwhile, and the frames that must follow them, in order.
    Asking(Vec<Waiting>),
    Known,
}

/// What waits for the account's locale to be known.
enum Waiting {
    Error(Option<Value>, ErrorBody),
    /// A frame that must not overtake the errors before it (`resume_done`).
    Frame(&'static str, Option<Value>, Value),
}

impl SessionActor {
    pub fn new(
        codec: Codec,
        outlet: Box<dyn Outlet + Sync>,
        ports: Ports,
        registry: Arc<Registry>,
        directory: Arc<RoomDirectory>,
        config: SessionConfig,
        hello: Hello,
    ) -> Self {
        let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        SessionActor {
            conn_id,
            session_id: format!("s_{}", uuid::Uuid::now_v7().simple()),
            codec,
            outlet: Arc::from(outlet),
            link: None,
            ports,
            registry,
            directory,
            bucket: TokenBucket {
                tokens: config.rate_burst,
                last: Instant::now(),
            },
            config,
            identity: None,
            user_id: Arc::from(""),
            upgrade_token: hello.token,
            last_heard: Instant::now(),
            strikes: 0,
            held: HashMap::new(),
            resume: None,
            closing: false,
            locale: hello.locale,
            account_locale: AccountLocale::Unasked,
            active_room: None,
        }
    }

    fn write(&mut self, ctx: &mut Context<Self>, frame: Bytes) {
        if self.closing {
            return;
        }
        if self.outlet.send(frame).is_err() {
            self.too_slow(ctx);
        }
    }

    /// The socket's outbox is full: the client does not read its events.
    fn too_slow(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(session = %self.session_id, "client does not read its events; closing 4008");
        self.close(ctx, CLOSE_TOO_SLOW, "too slow");
    }

    fn write_frame<T: serde::Serialize>(
        &mut self,
        ctx: &mut Context<Self>,
        t: &str,
        id: Option<&Value>,
        d: &T,
    ) {
        match self.codec.encode_frame(t, id, d) {
            Ok(bytes) => self.write(ctx, bytes),
            Err(e) => tracing::error!(error = %e, t, "cannot encode frame"),
        }
    }

    /// An `error` frame in the session's language. After authentication the account's language
    /// is read once, at the first error (most sessions never see one): errors met meanwhile wait
    /// for it, in order; other frames do not.
    fn write_error(&mut self, ctx: &mut Context<Self>, id: Option<&Value>, err: &ErrorBody) {
        if self.identity.is_none() {
            return self.write_localized_error(ctx, id, err);
        }
        match &mut self.account_locale {
            AccountLocale::Known => self.write_localized_error(ctx, id, err),
            AccountLocale::Asking(waiting) => {
                waiting.push(Waiting::Error(id.cloned(), err.clone()))
            }
            AccountLocale::Unasked => {
                self.account_locale =
                    AccountLocale::Asking(vec![Waiting::Error(id.cloned(), err.clone())]);
                let texts = self.ports.texts.clone();
                let user_id = self.user_id.to_string();
                let read = async move { texts.account_locale(&user_id).await };
                ctx.spawn(read.into_actor(self).map(|locale, act, ctx| {
                    if let Some(l) = locale {
                        act.locale = act.ports.texts.negotiate(Some(&l), None);
                    }
                    act.flush_waiting_errors(ctx);
                }));
            }
        }
    }

    fn write_localized_error(
        &mut self,
        ctx: &mut Context<Self>,
        id: Option<&Value>,
        err: &ErrorBody,
    ) {
        let err = self.ports.texts.localize(self.locale, err);
        self.write_frame(ctx, ev::ERROR, id, &err);
    }

    /// Writes the errors that waited for the account's language (in the best one known now).
    fn flush_waiting_errors(&mut self, ctx: &mut Context<Self>) {
        let AccountLocale::Asking(waiting) = &mut self.account_locale else {
            return;
        };
        let waiting = std::mem::take(waiting);
        self.account_locale = AccountLocale::Known;
        for w in waiting {
            match w {
                Waiting::Error(id, err) => self.write_localized_error(ctx, id.as_ref(), &err),
                Waiting::Frame(t, id, d) => self.write_frame(ctx, t, id.as_ref(), &d),
            }
        }
    }

    /// Writes a frame after every error already written or waiting for its language.
    fn write_after_errors<T: serde::Serialize>(
        &mut self,
        ctx: &mut Context<Self>,
        t: &'static str,
        id: Option<&Value>,
        d: &T,
    ) {
        if let AccountLocale::Asking(waiting) = &mut self.account_locale {
            let d = serde_json::to_value(d).unwrap_or(Value::Null);
            waiting.push(Waiting::Frame(t, id.cloned(), d));
            return;
        }
        self.write_frame(ctx, t, id, d);
    }

    /// `auth_error`, then the 4001 close.
    fn refuse_auth(
        &mut self,
        ctx: &mut Context<Self>,
        id: Option<&Value>,
        err: &ErrorBody,
        reason: &str,
    ) {
        let err = self.ports.texts.localize(self.locale, err);
        self.write_frame(ctx, ev::AUTH_ERROR, id, &err);
        self.close(ctx, CLOSE_AUTH_FAILED, reason);
    }

    fn write_event(&mut self, ctx: &mut Context<Self>, event: &Event) {
        // Counted here when it came through the mailbox; its send→delivered latency was
        // observed when the fan-out handed it over.
        self.ports.telemetry.events_delivered(event.t, 1);
        let bytes = event.bytes(self.codec);
        self.write(ctx, bytes);
    }

    fn close(&mut self, ctx: &mut Context<Self>, code: u16, reason: &str) {
        // Errors still waiting for the account's language go out before the close.
        self.flush_waiting_errors(ctx);
        if !self.closing {
            self.closing = true;
            self.outlet.close(code, reason);
        }
        ctx.stop();
    }

    fn authenticate(&mut self, ctx: &mut Context<Self>, token: &str, id: Option<&Value>) {
        match self.ports.auth.verify(token) {
            Ok(identity) => {
                self.user_id = Arc::from(identity.user_id.as_str());
                let link = SessionLink::new(self.outlet.clone(), self.codec);
                self.link = Some(link.clone());
                let first = self.registry.register(
                    self.user_id.clone(),
                    self.conn_id,
                    Arc::from(identity.auth_session_id.as_str()),
                    ctx.address(),
                    link,
                );
                let ok = ev::AuthSuccess {
                    user_id: identity.user_id.clone(),
                    session_id: self.session_id.clone(),
                    heartbeat_ms: self.config.heartbeat.as_millis() as u64,
                };
                self.identity = Some(identity);
                self.write_frame(ctx, ev::AUTH_SUCCESS, id, &ok);
                if first {
                    self.load_blocks();
                    self.announce_presence(true);
                }
            }
            Err(e) => self.refuse_auth(ctx, id, &e, "authentication failed"),
        }
    }

    /// Loads whom this user blocked, so the fan-out holds back those users' events.
    fn load_blocks(&self) {
        let store = self.ports.store.clone();
        let registry = self.registry.clone();
        let user_id = self.user_id.to_string();
        actix::spawn(async move {
            match store.blocked_users(&user_id).await {
                Ok(blocked) if registry.is_online(&user_id) => {
                    registry.set_blocks(&user_id, blocked)
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e.message, "cannot load the user's blocks"),
            }
        });
    }

    /// Tells everyone who shares a room with this user that they came online or went offline.
    fn announce_presence(&self, online: bool) {
        let store = self.ports.store.clone();
        let registry = self.registry.clone();
        let fanout = self.ports.fanout.clone();
        let user_id = self.user_id.to_string();
        let max_room = self.config.presence_max_room_members;
        actix::spawn(async move {
            // Counted across the cluster: only a user's first and last session announce.
            let announce = if online {
                fanout.local_user_online(&user_id).await
            } else {
                fanout.local_user_offline(&user_id).await
            };
            if !announce {
                return;
            }
            let last_seen_at = if online {
                None
            } else {
                let at = crate::now_ms();
                if let Err(e) = store.set_last_seen(&user_id, at).await {
                    tracing::warn!(error = %e.message, "cannot record last seen");
                }
                Some(at)
            };
            // A user who reconnected meanwhile is not offline.
            if !online && registry.is_online(&user_id) {
                return;
            }
            let Ok(peers) = store.presence_audience(&user_id, max_room).await else {
                return;
            };
            let t = if online {
                ev::USER_ONLINE
            } else {
                ev::USER_OFFLINE
            };
            let event = Arc::new(Event::new(
                t,
                &ev::Presence {
                    user_id: user_id.clone(),
                    last_seen_at,
                },
            ));
            let peers: Vec<String> = peers.into_iter().filter(|p| *p != user_id).collect();
            fanout.user_event(&peers, event);
        });
    }

    /// Spends one token; false when the session is over its rate.
    fn take_token(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.bucket.last).as_secs_f64();
        self.bucket.last = now;
        self.bucket.tokens =
            (self.bucket.tokens + elapsed * self.config.rate_per_sec).min(self.config.rate_burst);
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            if elapsed >= 1.0 {
                self.strikes = 0;
            }
            true
        } else {
            false
        }
    }

    fn on_frame(&mut self, ctx: &mut Context<Self>, bytes: Bytes) {
        let frame: Frame = match self.codec.decode(&bytes) {
            Ok(f) => f,
            Err(e) => {
                let err = ErrorBody::new(ErrorCode::BadRequest, e.to_string());
                return self.write_error(ctx, None, &err);
            }
        };
        let id = frame.id.clone();
        if !self.take_token() {
            self.strikes += 1;
            if self.strikes >= self.config.max_strikes {
                return self.close(ctx, CLOSE_RATE_LIMITED, "rate limited");
            }
            let err = ErrorBody::new(ErrorCode::RateLimited, "slow down");
            return self.write_error(ctx, id.as_ref(), &err);
        }
        let command = match Command::parse(frame) {
            Ok(c) => c,
            Err(e) => {
                let code = match e {
                    cmd::CommandError::UnknownType(_) => ErrorCode::BadRequest,
                    cmd::CommandError::BadPayload(_) => ErrorCode::ValidationFailed,
                };
                if self.identity.is_none() {
                    let err = ErrorBody::new(ErrorCode::Unauthorized, "authenticate first");
                    return self.refuse_auth(ctx, id.as_ref(), &err, "authentication required");
                }
                return self.write_error(ctx, id.as_ref(), &ErrorBody::new(code, e.to_string()));
            }
        };
        self.ports.telemetry.command(command.name());
        match (command, self.identity.is_some()) {
            (Command::Auth(a), false) => self.authenticate(ctx, &a.token, id.as_ref()),
            (Command::Auth(_), true) => {
                let err = ErrorBody::new(ErrorCode::Conflict, "already authenticated");
                self.write_error(ctx, id.as_ref(), &err);
            }
            (_, false) => {
                let err = ErrorBody::new(ErrorCode::Unauthorized, "authenticate first");
                self.refuse_auth(ctx, id.as_ref(), &err, "authentication required");
            }
            (command, true) => self.dispatch(ctx, command, id),
        }
    }

    fn responder<T: Send + 'static>(
        &self,
        ctx: &mut Context<Self>,
        id: Option<Value>,
        to_json: impl FnOnce(T) -> Value + Send + 'static,
    ) -> Responder<T> {
        self.reply_with(ctx, id, move |t| ReplyBody::Value(to_json(t)))
    }

    fn reply_with<T: Send + 'static>(
        &self,
        ctx: &mut Context<Self>,
        id: Option<Value>,
        to_body: impl FnOnce(T) -> ReplyBody + Send + 'static,
    ) -> Responder<T> {
        let addr = ctx.address();
        Responder::new(move |r: Result<T, ErrorBody>| {
            addr.do_send(CommandDone {
                id,
                result: r.map(to_body),
            })
        })
    }

    fn dispatch(&mut self, ctx: &mut Context<Self>, command: Command, id: Option<Value>) {
        let user_id = self.user_id.to_string();
        match command {
            Command::SendMessage(c) => {
                let check = room::validate_send(
                    &c.content,
                    c.attachments.len(),
                    self.config.max_message_chars,
                );
                if let Err(e) = check {
                    return self.write_error(ctx, id.as_ref(), &e);
                }
                let (nonce, reply_to) = match room::validate_send_extras(c.nonce, c.reply_to) {
                    Ok(extras) => extras,
                    Err(e) => return self.write_error(ctx, id.as_ref(), &e),
                };
                if !self.ports.quota.allow_send(&user_id) {
                    let err =
                        ErrorBody::new(ErrorCode::RateLimited, "too many messages; slow down");
                    return self.write_error(ctx, id.as_ref(), &err);
                }
                let reply = self.reply_with(ctx, id, |(m, _)| ReplyBody::Message(Box::new(m)));
                let hashtags = extract_hashtags(&c.content);
                let mut draft = Draft {
                    id: uuid::Uuid::now_v7().to_string(),
                    sender_id: user_id,
                    hashtags,
                    mentions: extract_mentions(&c.content),
                    content: c.content,
                    nonce,
                    reply_to,
                    created_at: crate::now_ms(),
                    kind: dovie_protocol::model::MessageKind::Text,
                    attachments: Vec::new(),
                    location: None,
                    suggest_location: false,
                };
                let room = self.directory.room(&c.room_id);
                // `/name` alone may be one of the sender's saved commands: looked up first.
                let may_be_command = draft.content.trim_start().starts_with('/');
                if c.attachments.is_empty() && !may_be_command {
                    self.ports.extras.prepare(&mut draft);
                    return room.do_send(room::Post {
                        draft,
                        reply,
                        started: Instant::now(),
                    });
                }
                let (extras, room_id, files) =
                    (self.ports.extras.clone(), c.room_id, c.attachments);
                let started = Instant::now();
                actix::spawn(async move {
                    let mut draft = draft;
                    if may_be_command {
                        match extras
                            .expand_command(&draft.sender_id, &draft.content)
                            .await
                        {
                            Ok(Some(text)) => {
                                draft.hashtags = extract_hashtags(&text);
                                draft.mentions = extract_mentions(&text);
                                draft.content = text;
                            }
                            Ok(None) => {}
                            Err(e) => return reply.send(Err(e)),
                        }
                    }
                    extras.prepare(&mut draft);
                    if !files.is_empty() {
                        match extras
                            .attach(
                                &draft.sender_id,
                                &room_id,
                                &draft.id,
                                &files,
                                &draft.hashtags,
                            )
                            .await
                        {
                            Ok(objects) => {
                                draft.kind = room::kind_of_attachments(&objects);
                                draft.attachments = objects;
                            }
                            Err(e) => return reply.send(Err(e)),
                        }
                    }
                    room.do_send(room::Post {
                        draft,
                        reply,
                        started,
                    });
                });
            }
            Command::EditMessage(c) => {
                if let Err(e) = room::validate_content(&c.content, self.config.max_message_chars) {
                    return self.write_error(ctx, id.as_ref(), &e);
                }
                let reply = self.responder(ctx, id, |m| json!({ "message": m }));
                self.to_message_room(ctx, c.message_id.clone(), reply, move |reply| room::Edit {
                    user_id,
                    message_id: c.message_id,
                    hashtags: extract_hashtags(&c.content),
                    content: c.content,
                    reply,
                });
            }
            Command::DeleteMessage(c) => {
                let reply = self.responder(ctx, id, |_| json!({}));
                self.to_message_room(ctx, c.message_id.clone(), reply, move |reply| {
                    room::Delete {
                        user_id,
                        message_id: c.message_id,
                        moderator: false,
                        reply,
                    }
                });
            }
            Command::React(c) | Command::Unreact(c)
                if c.emoji.is_empty() || c.emoji.chars().count() > 16 =>
            {
                let err = ErrorBody::new(
                    ErrorCode::ValidationFailed,
                    "emoji must be 1 to 16 characters",
                );
                self.write_error(ctx, id.as_ref(), &err);
            }
            Command::React(c) => self.react(ctx, id, c, true),
            Command::Unreact(c) => self.react(ctx, id, c, false),
            Command::TypingStart(c) | Command::TypingStop(c) if c.room_id.is_empty() => {
                let err = ErrorBody::new(ErrorCode::ValidationFailed, "room_id is required");
                self.write_error(ctx, id.as_ref(), &err);
            }
            Command::TypingStart(c) => {
                let reply = self.responder(ctx, id, |_| json!({}));
                self.directory.room(&c.room_id).do_send(room::Typing {
                    user_id,
                    start: true,
                    reply,
                });
            }
            Command::TypingStop(c) => {
                let reply = self.responder(ctx, id, |_| json!({}));
                self.directory.room(&c.room_id).do_send(room::Typing {
                    user_id,
                    start: false,
                    reply,
                });
            }
            Command::Read(c) => self.receipt(ctx, id, c, ReceiptKind::Read),
            Command::Delivered(c) => self.receipt(ctx, id, c, ReceiptKind::Delivered),
            Command::Resume(c) => self.start_resume(ctx, id, c.rooms),
            Command::Ping => {
                let hb = ev::Heartbeat {
                    server_time: crate::now_ms(),
                };
                self.write_frame(ctx, ev::HEARTBEAT, id.as_ref(), &hb);
            }
            Command::Active(c) => {
                if let Some(room) = &c.room_id {
                    if room.is_empty() || room.len() > MAX_ROOM_ID_BYTES {
                        let err = ErrorBody::new(
                            ErrorCode::ValidationFailed,
                            "room_id must be a room id or null",
                        );
                        return self.write_error(ctx, id.as_ref(), &err);
                    }
                }
                if self.active_room != c.room_id {
                    self.ports.activity.active_changed(
                        &user_id,
                        self.active_room.as_deref(),
                        c.room_id.as_deref(),
                    );
                    self.active_room = c.room_id;
                }
                let reply = self.responder(ctx, id, |_| json!({}));
                reply.send(Ok(()));
            }
            command @ Command::LocationUpdate(_) => {
                let reply = self.responder(ctx, id, |v| v);
                let extras = self.ports.extras.clone();
                actix::spawn(async move {
                    reply.send(extras.feature_command(&user_id, command).await);
                });
            }
            Command::Auth(_) => {}
        }
    }

    fn react(&mut self, ctx: &mut Context<Self>, id: Option<Value>, c: cmd::React, on: bool) {
        let reply = self.responder(ctx, id, |m| json!({ "message": m }));
        let user_id = self.user_id.to_string();
        self.to_message_room(ctx, c.message_id.clone(), reply, move |reply| room::React {
            user_id,
            message_id: c.message_id,
            emoji: c.emoji,
            on,
            reply,
        });
    }

    fn receipt(
        &mut self,
        ctx: &mut Context<Self>,
        id: Option<Value>,
        c: cmd::RoomSeq,
        kind: ReceiptKind,
    ) {
        let reply = self.responder(ctx, id, |_| json!({}));
        self.directory.room(&c.room_id).do_send(room::Receipt {
            user_id: self.user_id.to_string(),
            kind,
            seq: c.seq,
            reply,
        });
    }

    /// Finds the room of a message (store lookup), then hands the command to its room actor.
    fn to_message_room<M, T>(
        &self,
        ctx: &mut Context<Self>,
        message_id: String,
        reply: Responder<T>,
        make: impl FnOnce(Responder<T>) -> M + 'static,
    ) where
        T: Send + 'static,
        M: crate::remote::Remotable,
        room::RoomActor: Handler<M>,
    {
        let store = self.ports.store.clone();
        let fut = async move { store.get_message(&message_id).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, _| match res {
            Ok(Some(m)) => act.directory.room(&m.room_id).do_send(make(reply)),
            Ok(None) => reply.send(Err(ErrorBody::new(ErrorCode::NotFound, "no such message"))),
            Err(e) => reply.send(Err(e)),
        }));
    }

    fn start_resume(
        &mut self,
        ctx: &mut Context<Self>,
        id: Option<Value>,
        rooms: BTreeMap<String, u64>,
    ) {
        if self.resume.is_some() {
            let err = ErrorBody::new(ErrorCode::Conflict, "a resume is already in progress");
            return self.write_error(ctx, id.as_ref(), &err);
        }
        if rooms.len() > MAX_RESUME_ROOMS {
            let err = ErrorBody::new(
                ErrorCode::ValidationFailed,
                format!("at most {MAX_RESUME_ROOMS} rooms per resume"),
            );
            return self.write_error(ctx, id.as_ref(), &err);
        }
        if rooms.is_empty() {
            let done = ev::ResumeDone {
                rooms: HashMap::new(),
            };
            self.write_frame(ctx, ev::RESUME_DONE, None, &done);
            if id.is_some() {
                self.write_frame(ctx, ev::REPLY, id.as_ref(), &done);
            }
            return;
        }
        self.resume = Some(Resume {
            id,
            outstanding: rooms.len(),
            latest: HashMap::new(),
        });
        for (room_id, after) in rooms {
            if self
                .held
                .insert(Arc::from(room_id.as_str()), Vec::new())
                .is_none()
            {
                if let Some(link) = &self.link {
                    link.holding.fetch_add(1, Ordering::SeqCst);
                }
            }
            let session = ctx.address();
            let rid: Arc<str> = Arc::from(room_id.as_str());
            let reply = Responder::new(move |answer| {
                session.do_send(ReplayResult {
                    room_id: rid,
                    answer,
                })
            });
            self.directory.room(&room_id).do_send(room::Replay {
                user_id: self.user_id.to_string(),
                after,
                reply,
            });
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.ports.telemetry.session_opened(self.codec.label());
        let hello = ev::ConnectionEstablished {
            server_time: crate::now_ms(),
            codec: self.codec.label().to_string(),
        };
        self.write_frame(ctx, ev::CONNECTION_ESTABLISHED, None, &hello);
        if let Some(token) = self.upgrade_token.take() {
            self.authenticate(ctx, &token, None);
        }
        ctx.run_later(self.config.auth_timeout, |act, ctx| {
            if act.identity.is_none() {
                let err = ErrorBody::new(ErrorCode::Unauthorized, "authentication timed out");
                act.refuse_auth(ctx, None, &err, "authentication timed out");
            }
        });
        ctx.run_interval(self.config.heartbeat, |act, ctx| {
            if act.last_heard.elapsed() > act.config.client_timeout {
                tracing::info!(session = %act.session_id, "peer silent past the timeout; closing");
                return act.close(ctx, CLOSE_GOING_AWAY, "heartbeat timeout");
            }
            act.outlet.ping();
        });
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        if !self.closing {
            self.closing = true;
            self.outlet.close(1000, "");
        }
        if self.identity.is_some() && self.registry.unregister(&self.user_id, self.conn_id) {
            self.announce_presence(false);
        }
        if let Some(room) = self.active_room.take() {
            self.ports
                .activity
                .active_changed(&self.user_id, Some(&room), None);
        }
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.ports.telemetry.session_closed(self.codec.label());
    }
}

impl StreamHandler<Inbound> for SessionActor {
    fn handle(&mut self, item: Inbound, ctx: &mut Context<Self>) {
        self.on_inbound(item, ctx);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// What the socket read, handed over by a transport that drives the socket itself.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromSocket(pub Inbound);

impl Handler<FromSocket> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: FromSocket, ctx: &mut Context<Self>) {
        self.on_inbound(msg.0, ctx);
    }
}

impl SessionActor {
    fn on_inbound(&mut self, item: Inbound, ctx: &mut Context<Self>) {
        self.last_heard = Instant::now();
        match item {
            Inbound::Frame(bytes) => self.on_frame(ctx, bytes),
            Inbound::Ping(payload) => self.outlet.send_pong(payload),
            Inbound::Pong => {}
            Inbound::TooLarge => {
                let err =
                    ErrorBody::new(ErrorCode::PayloadTooLarge, "frame exceeds the size limit");
                self.write_error(ctx, None, &err);
                self.close(ctx, CLOSE_TOO_BIG, "frame too large");
            }
            Inbound::Invalid(reason) => {
                tracing::debug!(%reason, "websocket protocol error");
                self.close(ctx, 1002, "protocol error");
            }
            Inbound::Closed => self.close(ctx, 1000, ""),
        }
    }
}

impl Handler<Deliver> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.on_deliver(msg.0, ctx);
        if let Some(link) = &self.link {
            link.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The socket's outbox overflowed during a fan-out: the client does not read.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TooSlow;

impl Handler<TooSlow> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: TooSlow, ctx: &mut Context<Self>) {
        self.too_slow(ctx);
    }
}

impl SessionActor {
    fn on_deliver(&mut self, event: Arc<Event>, ctx: &mut Context<Self>) {
        if let Some(room_id) = &event.room_id {
            if let Some(held) = self.held.get_mut(room_id) {
                held.push(event);
                if held.len() > MAX_RESUME_BUFFER {
                    self.close(ctx, CLOSE_TOO_SLOW, "too slow");
                }
                return;
            }
        }
        self.write_event(ctx, &event);
    }
}

impl Handler<Kick> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Kick, ctx: &mut Context<Self>) {
        self.write_frame(ctx, msg.t, None, &msg.payload);
        self.close(ctx, msg.code, msg.t);
    }
}

impl Handler<CommandDone> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: CommandDone, ctx: &mut Context<Self>) {
        match msg.result {
            Ok(_) if msg.id.is_none() => {}
            Ok(ReplyBody::Value(d)) => self.write_frame(ctx, ev::REPLY, msg.id.as_ref(), &d),
            Ok(ReplyBody::Message(m)) => {
                let d = ev::MessagePayload { message: *m };
                self.write_frame(ctx, ev::REPLY, msg.id.as_ref(), &d);
            }
            Err(e) => self.write_error(ctx, msg.id.as_ref(), &e),
        }
    }
}

impl Handler<ReplayResult> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: ReplayResult, ctx: &mut Context<Self>) {
        let was_held = self.held.remove(&msg.room_id);
        let release_hold = was_held.is_some();
        let held = was_held.unwrap_or_default();
        let mut upto = u64::MAX;
        match msg.answer {
            Ok(room::ReplayAnswer::Events { upto: u, events }) => {
                upto = u;
                for e in &events {
                    self.write_event(ctx, e);
                }
            }
            Ok(room::ReplayAnswer::Resync { upto: u }) => {
                upto = u;
                let resync = ev::ResyncRequired {
                    room_id: msg.room_id.to_string(),
                    latest_seq: u,
                };
                self.write_frame(ctx, ev::RESYNC_REQUIRED, None, &resync);
            }
            Err(e) => {
                let err = ErrorBody::new(e.code, format!("{} (room {})", e.message, msg.room_id));
                self.write_error(ctx, None, &err);
            }
        }
        if upto != u64::MAX {
            if let Some(r) = &mut self.resume {
                r.latest.insert(msg.room_id.to_string(), upto);
            }
        }
        let upto = if upto == u64::MAX { 0 } else { upto };
        // Live events that raced the replay: the replay already carried every seq up to `upto`.
        for e in held {
            if e.seq.is_none_or(|s| s > upto) {
                self.write_event(ctx, &e);
            }
        }
        // From here on the room's events may reach the socket directly again.
        if release_hold {
            if let Some(link) = &self.link {
                link.holding.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let finished = match &mut self.resume {
            Some(r) => {
                r.outstanding = r.outstanding.saturating_sub(1);
                r.outstanding == 0
            }
            None => false,
        };
        if finished {
            if let Some(r) = self.resume.take() {
                // After the rooms' errors (which may be waiting for the account's language).
                let done = ev::ResumeDone { rooms: r.latest };
                self.write_after_errors(ctx, ev::RESUME_DONE, None, &done);
                if r.id.is_some() {
                    self.write_after_errors(ctx, ev::REPLY, r.id.as_ref(), &done);
                }
            }
        }
    }
}
