//! A server event, encoded at most once per codec and shared by every recipient session.
//!
//! A room publishes an [`Event`] behind an `Arc`; each session asks for the bytes of its codec.
//! The first ask encodes; every later ask (thousands of recipients) clones a `Bytes` handle.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use dovie_protocol::Codec;
use serde::Serialize;

/// One event: its type, the room and seq it belongs to (if any), and its payload.
pub struct Event {
    pub t: &'static str,
    pub room_id: Option<Arc<str>>,
    /// `seq` of the message a `new_message` carries; sessions use it to order resumes.
    pub seq: Option<u64>,
    /// Sessions of this user do not receive the event (typing is never echoed).
    pub skip_user: Option<Arc<str>>,
    /// The user whose action this is (sender, reactor, typer, reader): users who blocked them
    /// do not receive it.
    pub actor: Option<Arc<str>>,
    /// When the client's send that caused this event arrived (send→delivered latency).
    pub origin: Option<Instant>,
    /// The payload as a value: given, or (for a typed event) decoded from the MessagePack frame
    /// the first time something asks (a JSON session, the cluster bus).
    payload: OnceLock<serde_json::Value>,
    json: OnceLock<Bytes>,
    msgpack: OnceLock<Bytes>,
}

impl Event {
    pub fn new<T: Serialize>(t: &'static str, payload: &T) -> Event {
        // A derive-serialized payload always converts; Null is a safe floor.
        let value = serde_json::to_value(payload).unwrap_or(serde_json::Value::Null);
        Event::with(t, OnceLock::from(value), OnceLock::new())
    }

    fn with(
        t: &'static str,
        payload: OnceLock<serde_json::Value>,
        msgpack: OnceLock<Bytes>,
    ) -> Event {
        Event {
            t,
            room_id: None,
            seq: None,
            skip_user: None,
            actor: None,
            origin: None,
            payload,
            json: OnceLock::new(),
            msgpack,
        }
    }

    /// An event encoded straight from its typed payload into MessagePack (the hot path: most
    /// sessions speak MessagePack, and no intermediate value is built). Other forms are derived
    /// from those bytes on first use.
    pub fn typed<T: Serialize>(t: &'static str, payload: &T) -> Event {
        match Codec::MsgPack.encode_frame(t, None, payload) {
            Ok(bytes) => Event::with(t, OnceLock::new(), OnceLock::from(bytes)),
            Err(_) => Event::new(t, payload),
        }
    }

    pub fn in_room(mut self, room_id: Arc<str>, seq: Option<u64>) -> Event {
        self.room_id = Some(room_id);
        self.seq = seq;
        self
    }

    /// Not for this user's own sessions (and, being theirs, not for those who blocked them).
    pub fn skipping(mut self, user_id: Arc<str>) -> Event {
        self.actor = Some(user_id.clone());
        self.skip_user = Some(user_id);
        self
    }

    /// Caused by this user.
    pub fn by(mut self, user_id: &str) -> Event {
        self.actor = Some(Arc::from(user_id));
        self
    }

    /// The payload (`d`) of the event.
    pub fn payload(&self) -> &serde_json::Value {
        self.payload.get_or_init(|| {
            self.msgpack
                .get()
                .and_then(|b| Codec::MsgPack.decode::<dovie_protocol::Frame>(b).ok())
                .map(|f| f.d)
                .unwrap_or(serde_json::Value::Null)
        })
    }

    /// The encoded frame `{"t", "d"}` in `codec`, encoded on first use.
    pub fn bytes(&self, codec: Codec) -> Bytes {
        let cell = match codec {
            Codec::Json => &self.json,
            Codec::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| {
            codec
                .encode_frame(self.t, None, self.payload())
                .unwrap_or_default()
        })
        .clone()
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("t", &self.t)
            .field("room_id", &self.room_id)
            .field("seq", &self.seq)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_event_reads_the_same_in_every_form() {
        let d = serde_json::json!({"message": {"seq": 3, "content": "hé"}});
        let typed = Event::typed("new_message", &d);
        let plain = Event::new("new_message", &d);
        assert_eq!(typed.bytes(Codec::MsgPack), plain.bytes(Codec::MsgPack));
        assert_eq!(typed.bytes(Codec::Json), plain.bytes(Codec::Json));
        assert_eq!(typed.payload(), plain.payload());
    }

    #[test]
    fn encodes_once_per_codec() {
        let e = Event::new("heartbeat", &serde_json::json!({"server_time": 1}));
        let a = e.bytes(Codec::Json);
        let b = e.bytes(Codec::Json);
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "second ask must share the first encoding"
        );
        assert_eq!(&a[..], br#"{"t":"heartbeat","d":{"server_time":1}}"#);
        let m = e.bytes(Codec::MsgPack);
        let frame: dovie_protocol::Frame = Codec::MsgPack.decode(&m).expect("decode");
        assert_eq!(frame.t, "heartbeat");
    }
}
