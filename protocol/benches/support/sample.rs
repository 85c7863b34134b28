//! The message both benchmark suites (`dovie-protocol`'s codec, `dovie`'s fan-out) encode: a
//! typical group-chat text with a hashtag and a nonce.

use dovie_protocol::model::{Message, MessageKind};

/// A text message of a fixed room and sender; `seq` also names its id and nonce.
pub fn message(seq: u64) -> Message {
    Message {
        id: format!("0192f5d8-6c1e-7b3a-9f4e-{seq:012}"),
        room_id: "0192f5d8-6c1e-7b3a-9f4e-2d7c1a5b0001".into(),
        seq,
        sender_id: "0192f5d8-6c1e-7b3a-9f4e-2d7c1a5b0002".into(),
        kind: MessageKind::Text,
        content: "Lunch at noon? Bring the #roadmap notes and the numbers from Tuesday.".into(),
        nonce: Some(format!("c-{seq}")),
        reply_to: None,
        hashtags: vec!["roadmap".into()],
        mentions: Vec::new(),
        reactions: Default::default(),
        attachments: Vec::new(),
        link_previews: Vec::new(),
        location: None,
        suggest_location: false,
        created_at: 1_795_000_000_000,
        edited_at: None,
        deleted: false,
    }
}
