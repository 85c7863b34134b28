//! Frames and the two codecs. A connection negotiates its codec once, at the upgrade; every frame
//! after that is a map `{"t": <type>, "id"?: <client request id>, "d": <payload map>}` in that
//! codec: MessagePack in binary WebSocket frames, JSON in text frames.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// How deep a decoded frame may nest before it is rejected (guards the decoder's stack).
const MAX_DEPTH: usize = 32;

/// The codec of a connection (or a REST body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Json,
    MsgPack,
}

impl Codec {
    /// The WebSocket subprotocol name of this codec.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Codec::Json => "dovie.json.v1",
            Codec::MsgPack => "dovie.msgpack.v1",
        }
    }

    /// Parses a subprotocol name (`dovie.msgpack.v1`, `dovie.json.v1`).
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        match name.trim() {
            "dovie.json.v1" => Some(Codec::Json),
            "dovie.msgpack.v1" => Some(Codec::MsgPack),
            _ => None,
        }
    }

    /// Parses the `?format=` query value (`json`, `msgpack`).
    pub fn from_format(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Codec::Json),
            "msgpack" => Some(Codec::MsgPack),
            _ => None,
        }
    }

    /// The metric label of this codec.
    pub fn label(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::MsgPack => "msgpack",
        }
    }

    /// Encodes any serializable value in this codec (MessagePack as maps with field names).
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, EncodeError> {
        match self {
            Codec::Json => serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|e| EncodeError(e.to_string())),
            Codec::MsgPack => rmp_serde::to_vec_named(value)
                .map(Bytes::from)
                .map_err(|e| EncodeError(e.to_string())),
        }
    }

    /// Decodes a value in this codec. Never panics, whatever the bytes.
    pub fn decode<T: for<'de> Deserialize<'de>>(self, bytes: &[u8]) -> Result<T, DecodeError> {
        if nesting_exceeds(self, bytes, MAX_DEPTH) {
            return Err(DecodeError("frame nests too deeply".into()));
        }
        match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string())),
            Codec::MsgPack => rmp_serde::from_slice(bytes).map_err(|e| DecodeError(e.to_string())),
        }
    }

    /// Encodes a server frame `{"t", "id"?, "d"}`.
    pub fn encode_frame<T: Serialize + ?Sized>(
        self,
        t: &str,
        id: Option<&serde_json::Value>,
        d: &T,
    ) -> Result<Bytes, EncodeError> {
        self.encode(&OutFrame { t, id, d })
    }
}

/// A decoded inbound frame. `d` stays generic until the command type is known.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Frame {
    pub t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    #[serde(default)]
    pub d: serde_json::Value,
}

#[derive(Serialize)]
struct OutFrame<'a, T: ?Sized> {
    t: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    d: &'a T,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed frame: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

#[derive(Debug, Clone, PartialEq)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot encode: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

/// A cheap pre-scan that bounds container nesting, so no decoder recursion can run deep.
/// For JSON it counts brackets outside strings; for MessagePack it walks the type markers.
fn nesting_exceeds(codec: Codec, bytes: &[u8], max: usize) -> bool {
    match codec {
        Codec::Json => {
            let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
            for &b in bytes {
                if in_str {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_str = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'[' | b'{' => {
                        depth += 1;
                        if depth > max {
                            return true;
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            false
        }
        Codec::MsgPack => msgpack_depth_exceeds(bytes, max),
    }
}

/// Walks MessagePack markers with an explicit stack of "items left" per open container.
fn msgpack_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut stack: Vec<u64> = Vec::new();
    let mut pos = 0usize;
    let read_n = |pos: usize, n: usize| -> Option<u64> {
        let s = bytes.get(pos..pos + n)?;
        Some(s.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    while pos < bytes.len() {
        let m = bytes[pos];
        pos += 1;
        // (skip bytes, container items)
        let (skip, items): (u64, Option<u64>) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, None),
            0x80..=0x8f => (0, Some(u64::from(m & 0x0f) * 2)),
            0x90..=0x9f => (0, Some(u64::from(m & 0x0f))),
            0xa0..=0xbf => (u64::from(m & 0x1f), None),
            0xc4 | 0xd9 => match read_n(pos, 1) {
                Some(n) => {
                    pos += 1;
                    (n, None)
                }
                None => return false,
            },
            0xc5 | 0xda => match read_n(pos, 2) {
                Some(n) => {
                    pos += 2;
                    (n, None)
                }
                None => return false,
            },
            0xc6 | 0xdb => match read_n(pos, 4) {
                Some(n) => {
                    pos += 4;
                    (n, None)
                }
                None => return false,
            },
            0xc7 => (read_n(pos, 1).map_or(0, |n| n + 2), None),
            0xc8 => (read_n(pos, 2).map_or(0, |n| n + 3), None),
            0xc9 => (read_n(pos, 4).map_or(0, |n| n + 5), None),
            0xca => (4, None),
            0xcb => (8, None),
            0xcc | 0xd0 => (1, None),
            0xcd | 0xd1 => (2, None),
            0xce | 0xd2 => (4, None),
            0xcf | 0xd3 => (8, None),
            0xd4 => (2, None),
            0xd5 => (3, None),
            0xd6 => (5, None),
            0xd7 => (9, None),
            0xd8 => (17, None),
            0xdc => match read_n(pos, 2) {
                Some(n) => {
                    pos += 2;
                    (0, Some(n))
                }
                None => return false,
            },
            0xdd => match read_n(pos, 4) {
                Some(n) => {
                    pos += 4;
                    (0, Some(n))
                }
                None => return false,
            },
            0xde => match read_n(pos, 2) {
                Some(n) => {
                    pos += 2;
                    (0, Some(n * 2))
                }
                None => return false,
            },
            0xdf => match read_n(pos, 4) {
                Some(n) => {
                    pos += 4;
                    (0, Some(n * 2))
                }
                None => return false,
            },
            0xc1 => return false,
        };
        pos = pos.saturating_add(usize::try_from(skip).unwrap_or(usize::MAX));
        // This value fills one slot of the enclosing container.
        while let Some(top) = stack.last_mut() {
            if *top == 0 {
                stack.pop();
                continue;
            }
            *top -= 1;
            break;
        }
        if let Some(n) = items {
            if n > 0 {
                stack.push(n);
                if stack.len() > max {
                    return true;
                }
            }
        }
        while stack.last() == Some(&0) {
            stack.pop();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn both_codecs_carry_the_same_frame() {
        let d = serde_json::json!({"room_id": "r1", "content": "hi", "nonce": "n"});
        for codec in [Codec::Json, Codec::MsgPack] {
            let bytes = codec
                .encode_frame("send_message", Some(&serde_json::json!(7)), &d)
                .expect("encode");
            let frame: Frame = codec.decode(&bytes).expect("decode");
            assert_eq!(frame.t, "send_message");
            assert_eq!(frame.id, Some(serde_json::json!(7)));
            assert_eq!(frame.d, d);
        }
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let json = "[".repeat(100_000);
        assert!(Codec::Json.decode::<Frame>(json.as_bytes()).is_err());
        let msgpack = vec![0x91u8; 100_000];
        assert!(Codec::MsgPack.decode::<Frame>(&msgpack).is_err());
        let mut nested = serde_json::json!(1);
        for _ in 0..40 {
            nested = serde_json::json!([nested]);
        }
        let bytes = Codec::MsgPack
            .encode(&serde_json::json!({"t": "x", "d": nested}))
            .expect("encode");
        assert!(Codec::MsgPack.decode::<Frame>(&bytes).is_err());
    }

    /// Property: arbitrary bytes never panic either decoder (seeded, so failures reproduce).
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x0d0f1e);
        let valid = Codec::MsgPack
            .encode_frame(
                "send_message",
                None,
                &serde_json::json!({"room_id": "r", "x": [1, 2, {"a": null}]}),
            )
            .expect("encode");
        for i in 0..50_000 {
            let len = rng.gen_range(0..96);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if i % 2 == 0 {
                // Mutate a valid frame: the interesting inputs live near valid ones.
                bytes = valid.to_vec();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
            }
            let _ = Codec::MsgPack.decode::<Frame>(&bytes);
            let _ = Codec::Json.decode::<Frame>(&bytes);
        }
    }
}
