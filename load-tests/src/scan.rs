//! A fast look at a MessagePack frame without decoding it: its type, and the few fields a load
//! run needs (the send stamp at the start of `content`, `seq`, `nonce`). The load client reads
//! hundreds of thousands of frames a second on the same cores as the server; a full decode of
//! every frame would make the client, not the server, the thing measured.

/// The frame types the load client tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    NewMessage,
    /// The relay's echo of a send frame.
    SendMessage,
    Reply,
    Error,
    Other,
}

/// `t` is always the first key of a Dovie frame (and of the frames this client sends).
pub fn kind(frame: &[u8]) -> FrameKind {
    let head = &frame[..frame.len().min(24)];
    if find(head, b"\xa1t\xabnew_message").is_some() {
        FrameKind::NewMessage
    } else if find(head, b"\xa1t\xa5reply").is_some() {
        FrameKind::Reply
    } else if find(head, b"\xa1t\xa5error").is_some() {
        FrameKind::Error
    } else if find(head, b"\xa1t\xacsend_message").is_some() {
        FrameKind::SendMessage
    } else {
        FrameKind::Other
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// The string value following the map key `key` (a fixstr key), if any.
pub fn str_field<'a>(frame: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut needle = vec![0xa0 | key.len() as u8];
    needle.extend_from_slice(key.as_bytes());
    let at = find(frame, &needle)? + needle.len();
    let (len, skip) = match *frame.get(at)? {
        b @ 0xa0..=0xbf => ((b & 0x1f) as usize, 1),
        0xd9 => (*frame.get(at + 1)? as usize, 2),
        0xda => (
            u16::from_be_bytes([*frame.get(at + 1)?, *frame.get(at + 2)?]) as usize,
            3,
        ),
        _ => return None,
    };
    frame.get(at + skip..at + skip + len)
}

/// The unsigned integer following the map key `key`, if any.
pub fn uint_field(frame: &[u8], key: &str) -> Option<u64> {
    let mut needle = vec![0xa0 | key.len() as u8];
    needle.extend_from_slice(key.as_bytes());
    let at = find(frame, &needle)? + needle.len();
    let be = |n: usize| -> Option<u64> {
        let bytes = frame.get(at + 1..at + 1 + n)?;
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
    };
    match *frame.get(at)? {
        b @ 0x00..=0x7f => Some(b as u64),
        0xcc => be(1),
        0xcd => be(2),
        0xce => be(4),
        0xcf => be(8),
        _ => None,
    }
}

/// The send stamp (µs) a load message's content starts with: `"<stamp> xxxx"`.
pub fn stamp(frame: &[u8]) -> Option<u64> {
    let content = str_field(frame, "content")?;
    let digits = content.split(|b| *b == b' ').next()?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dovie_protocol::Codec;
    use serde_json::json;

    #[test]
    fn reads_what_dovie_writes() {
        let long = format!("123456 {}", "x".repeat(300));
        let frame = Codec::MsgPack
            .encode_frame(
                "new_message",
                None,
                &json!({"message": {"id": "m", "room_id": "r", "seq": 70000, "content": long, "hashtags": []}}),
            )
            .expect("encodes");
        assert_eq!(kind(&frame), FrameKind::NewMessage);
        assert_eq!(stamp(&frame), Some(123456));
        assert_eq!(uint_field(&frame, "seq"), Some(70000));
        let reply = Codec::MsgPack
            .encode_frame("reply", Some(&json!(7)), &json!({"message": {"seq": 3}}))
            .expect("encodes");
        assert_eq!(kind(&reply), FrameKind::Reply);
        assert_eq!(uint_field(&reply, "seq"), Some(3));
        let err = Codec::MsgPack
            .encode_frame(
                "error",
                None,
                &json!({"code": "rate_limited", "message": "slow"}),
            )
            .expect("encodes");
        assert_eq!(kind(&err), FrameKind::Error);
        assert_eq!(str_field(&err, "code"), Some(&b"rate_limited"[..]));
    }

    #[test]
    fn reads_the_relays_echo_and_ignores_the_rest() {
        // As the load client writes a send (t first, like every Dovie frame).
        #[derive(serde::Serialize)]
        struct Send {
            t: &'static str,
            id: u64,
            d: serde_json::Value,
        }
        let send = Send {
            t: "send_message",
            id: 1,
            d: json!({"room_id": "r", "content": "42 xx", "nonce": "p0-3-1"}),
        };
        let frame = rmp_serde::to_vec_named(&send).expect("encodes");
        assert_eq!(kind(&frame), FrameKind::SendMessage);
        assert_eq!(stamp(&frame), Some(42));
        assert_eq!(str_field(&frame, "nonce"), Some(&b"p0-3-1"[..]));
        let other = Codec::MsgPack
            .encode_frame("typing_start", None, &json!({}))
            .expect("encodes");
        assert_eq!(kind(&other), FrameKind::Other);
        assert_eq!(stamp(&other), None);
    }
}
