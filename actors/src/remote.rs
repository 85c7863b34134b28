//! Rooms owned by another node. A command for such a room becomes a [`RoomCall`] that the
//! [`Placement`] port carries to the owner (in the server: over the Redis bus); the owner runs it
//! on its local room actor ([`dispatch`]) and the [`RoomAnswer`] comes back to the caller's
//! responder. Events travel as [`WireEvent`]s. The actors stay free of any network code.

use std::sync::Arc;

use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::events as ev;
use dovie_protocol::model::{Message, Room};
use serde::{Deserialize, Serialize};

use crate::directory::RoomDirectory;
use crate::event::Event;
use crate::ports::{Draft, ReceiptKind};
use crate::room::{self, ReplayAnswer, Responder};

/// An event as it crosses nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    pub t: String,
    pub room_id: Option<String>,
    pub seq: Option<u64>,
    pub skip_user: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
    pub payload: serde_json::Value,
}

impl Event {
    pub fn to_wire(&self) -> WireEvent {
        WireEvent {
            t: self.t.to_string(),
            room_id: self.room_id.as_deref().map(str::to_string),
            seq: self.seq,
            skip_user: self.skip_user.as_deref().map(str::to_string),
            actor: self.actor.as_deref().map(str::to_string),
            payload: self.payload().clone(),
        }
    }

    /// Rebuilds an event; `None` for a type this node does not know.
    pub fn from_wire(w: WireEvent) -> Option<Event> {
        let t = ev::ALL.iter().copied().find(|t| *t == w.t)?;
        let mut e = Event::new(t, &w.payload);
        if let Some(room) = w.room_id {
            e = e.in_room(Arc::from(room.as_str()), w.seq);
        }
        if let Some(u) = w.skip_user {
            e = e.skipping(Arc::from(u.as_str()));
        }
        if let Some(a) = w.actor {
            e = e.by(&a);
        }
        Some(e)
    }
}

/// A room command, as sent to the room's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RoomCall {
    Post {
        draft: Draft,
    },
    Edit {
        user_id: String,
        message_id: String,
        content: String,
        hashtags: Vec<String>,
    },
    Delete {
        user_id: String,
        message_id: String,
        #[serde(default)]
        moderator: bool,
    },
    Amend {
        message_id: String,
        attachment: Option<serde_json::Value>,
        link_previews: Option<Vec<serde_json::Value>>,
    },
    React {
        user_id: String,
        message_id: String,
        emoji: String,
        on: bool,
    },
    Typing {
        user_id: String,
        start: bool,
    },
    Receipt {
        user_id: String,
        kind: ReceiptKind,
        seq: u64,
    },
    Replay {
        user_id: String,
        after: u64,
    },
    Changed {
        room: Option<Room>,
        joined: Vec<String>,
        left: Vec<String>,
        #[serde(default)]
        created: bool,
    },
    Blocked {
        blocked: bool,
    },
}

/// The owner's answer to a [`RoomCall`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RoomAnswer {
    Posted { message: Message, created: bool },
    Message { message: Message },
    Done,
    Replay { upto: u64, events: Vec<WireEvent> },
    Resync { upto: u64 },
}

pub type AnswerFn = Box<dyn FnOnce(Result<RoomAnswer, ErrorBody>) + Send>;

/// Where rooms live, and how to reach the ones that live elsewhere.
pub trait Placement: Send + Sync + 'static {
    /// The node that owns `room_id`, or `None` when this node does.
    fn remote_owner(&self, room_id: &str) -> Option<String>;
    /// Sends `call` to `owner`; `answer` runs exactly once (an error on timeout or loss).
    fn call(&self, owner: &str, room_id: &str, call: RoomCall, answer: AnswerFn);
}

fn unexpected() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::Internal,
        "unexpected answer from the room's node",
    )
}

/// A room message that can also travel to a remote owner.
pub trait Remotable: actix::Message<Result = ()> + Send + 'static {
    fn into_call(self) -> (RoomCall, AnswerFn);
}

impl Remotable for room::Post {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let reply = self.reply;
        (
            RoomCall::Post { draft: self.draft },
            Box::new(move |a| {
                reply.send(a.and_then(|a| match a {
                    RoomAnswer::Posted { message, created } => Ok((message, created)),
                    _ => Err(unexpected()),
                }))
            }),
        )
    }
}

fn message_answer(reply: Responder<Message>) -> AnswerFn {
    Box::new(move |a| {
        reply.send(a.and_then(|a| match a {
            RoomAnswer::Message { message } => Ok(message),
            _ => Err(unexpected()),
        }))
    })
}

fn done_answer(reply: Responder<()>) -> AnswerFn {
    Box::new(move |a| {
        reply.send(a.and_then(|a| match a {
            RoomAnswer::Done => Ok(()),
            _ => Err(unexpected()),
        }))
    })
}

impl Remotable for room::Edit {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let call = RoomCall::Edit {
            user_id: self.user_id,
            message_id: self.message_id,
            content: self.content,
            hashtags: self.hashtags,
        };
        (call, message_answer(self.reply))
    }
}

impl Remotable for room::Delete {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let call = RoomCall::Delete {
            user_id: self.user_id,
            message_id: self.message_id,
            moderator: self.moderator,
        };
        (call, message_answer(self.reply))
    }
}

impl Remotable for room::Amend {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let call = RoomCall::Amend {
            message_id: self.message_id,
            attachment: self.attachment,
            link_previews: self.link_previews,
        };
        (call, message_answer(self.reply))
    }
}

impl Remotable for room::React {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let call = RoomCall::React {
            user_id: self.user_id,
            message_id: self.message_id,
            emoji: self.emoji,
            on: self.on,
        };
        (call, message_answer(self.reply))
    }
}

impl Remotable for room::Typing {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let call = RoomCall::Typing {
            user_id: self.user_id,
            start: self.start,
        };
        (call, done_answer(self.reply))
    }
}

impl Remotable for room::Receipt {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let call = RoomCall::Receipt {
            user_id: self.user_id,
            kind: self.kind,
            seq: self.seq,
        };
        (call, done_answer(self.reply))
    }
}

impl Remotable for room::Replay {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let reply = self.reply;
        let call = RoomCall::Replay {
            user_id: self.user_id,
            after: self.after,
        };
        let answer: AnswerFn = Box::new(move |a| {
            reply.send(a.and_then(|a| {
                match a {
                    RoomAnswer::Replay { upto, events } => Ok(ReplayAnswer::Events {
                        upto,
                        events: events
                            .into_iter()
                            .filter_map(Event::from_wire)
                            .map(Arc::new)
                            .collect(),
                    }),
                    RoomAnswer::Resync { upto } => Ok(ReplayAnswer::Resync { upto }),
                    _ => Err(unexpected()),
                }
            }))
        });
        (call, answer)
    }
}

impl Remotable for room::RoomChanged {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        let call = RoomCall::Changed {
            room: self.room,
            joined: self.joined,
            left: self.left,
            created: self.created,
        };
        (call, Box::new(|_| {}))
    }
}

impl Remotable for room::SetBlocked {
    fn into_call(self) -> (RoomCall, AnswerFn) {
        (
            RoomCall::Blocked {
                blocked: self.blocked,
            },
            Box::new(|_| {}),
        )
    }
}

/// On the owner: runs a call that came from another node on the local room actor.
pub fn dispatch(directory: &Arc<RoomDirectory>, room_id: &str, call: RoomCall, answer: AnswerFn) {
    let Some(addr) = directory.owned(room_id) else {
        return answer(Err(ErrorBody::new(
            ErrorCode::Unavailable,
            "the room is moving to another node; retry",
        )));
    };
    match call {
        RoomCall::Post { draft } => addr.do_send(room::Post {
            draft,
            reply: Responder::new(move |r| {
                answer(r.map(|(message, created)| RoomAnswer::Posted { message, created }))
            }),
            started: std::time::Instant::now(),
        }),
        RoomCall::Edit {
            user_id,
            message_id,
            content,
            hashtags,
        } => addr.do_send(room::Edit {
            user_id,
            message_id,
            content,
            hashtags,
            reply: Responder::new(move |r| {
                answer(r.map(|message| RoomAnswer::Message { message }))
            }),
        }),
        RoomCall::Amend {
            message_id,
            attachment,
            link_previews,
        } => addr.do_send(room::Amend {
            message_id,
            attachment,
            link_previews,
            reply: Responder::new(move |r| {
                answer(r.map(|message| RoomAnswer::Message { message }))
            }),
        }),
        RoomCall::Delete {
            user_id,
            message_id,
            moderator,
        } => addr.do_send(room::Delete {
            user_id,
            message_id,
            moderator,
            reply: Responder::new(move |r| {
                answer(r.map(|message| RoomAnswer::Message { message }))
            }),
        }),
        RoomCall::React {
            user_id,
            message_id,
            emoji,
            on,
        } => addr.do_send(room::React {
            user_id,
            message_id,
            emoji,
            on,
            reply: Responder::new(move |r| {
                answer(r.map(|message| RoomAnswer::Message { message }))
            }),
        }),
        RoomCall::Typing { user_id, start } => addr.do_send(room::Typing {
            user_id,
            start,
            reply: Responder::new(move |r| answer(r.map(|()| RoomAnswer::Done))),
        }),
        RoomCall::Receipt { user_id, kind, seq } => addr.do_send(room::Receipt {
            user_id,
            kind,
            seq,
            reply: Responder::new(move |r| answer(r.map(|()| RoomAnswer::Done))),
        }),
        RoomCall::Replay { user_id, after } => addr.do_send(room::Replay {
            user_id,
            after,
            reply: Responder::new(move |r| {
                answer(r.map(|a| match a {
                    ReplayAnswer::Events { upto, events } => RoomAnswer::Replay {
                        upto,
                        events: events.iter().map(|e| e.to_wire()).collect(),
                    },
                    ReplayAnswer::Resync { upto } => RoomAnswer::Resync { upto },
                }))
            }),
        }),
        RoomCall::Changed {
            room,
            joined,
            left,
            created,
        } => {
            addr.do_send(room::RoomChanged {
                room,
                joined,
                left,
                created,
            });
            answer(Ok(RoomAnswer::Done));
        }
        RoomCall::Blocked { blocked } => {
            addr.do_send(room::SetBlocked { blocked });
            answer(Ok(RoomAnswer::Done));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cross_the_wire_unchanged() {
        let e = Event::new(
            ev::TYPING_START,
            &serde_json::json!({"room_id": "r", "user_id": "u"}),
        )
        .in_room(Arc::from("r"), Some(4))
        .skipping(Arc::from("u"));
        let back = Event::from_wire(e.to_wire()).expect("known type");
        assert_eq!(back.to_wire(), e.to_wire());
        assert_eq!(
            back.bytes(dovie_protocol::Codec::Json),
            e.bytes(dovie_protocol::Codec::Json)
        );
        let unknown = WireEvent {
            t: "nope".into(),
            room_id: None,
            seq: None,
            skip_user: None,
            actor: None,
            payload: serde_json::Value::Null,
        };
        assert!(Event::from_wire(unknown).is_none());
    }
}
