//! Files: records and their metadata, room shares (what grants access), hashtags, listings
//! (readable only, newest first, paged without gaps), deletion (once, giving the quota back),
//! pending previews, link previews, generated secrets, and message amendments.

use dovie::store::{
    FileKind, FileMeta, FileQuery, FileRecord, LinkPreviewRecord, PreviewObject, PreviewState,
    Transcript,
};
use serde_json::json;

use super::*;

fn file(id: &str, uploader: &str, kind: FileKind, size: u64, tags: &[&str]) -> FileRecord {
    FileRecord {
        id: id.into(),
        uploader_id: uploader.into(),
        filename: format!("{id}.bin"),
        content_type: "image/png".into(),
        kind,
        size,
        sha256: "ab".repeat(32),
        object: format!("objects/00/{id}"),
        key_id: "k1".into(),
        wrapped_key: "wrapped".into(),
        chunk_bytes: 65536,
        hashtags: tags.iter().map(|t| t.to_string()).collect(),
        room_id: None,
        public: false,
        meta: FileMeta::default(),
        preview_state: PreviewState::Pending,
        created_at: 1000,
        deleted_at: None,
        transcript: None,
    }
}

fn query(user: &str, rooms: &[&str]) -> FileQuery {
    FileQuery {
        user_id: user.into(),
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        limit: 100,
        ..FileQuery::default()
    }
}

fn ids(files: Vec<FileRecord>) -> Vec<String> {
    files.into_iter().map(|f| f.id).collect()
}

pub async fn files(store: SharedStore) {
    let mut in_room = file("f2", "u1", FileKind::Document, 20, &["trip"]);
    in_room.room_id = Some("r1".into());
    store
        .insert_file(&file("f1", "u1", FileKind::Image, 10, &["trip", "sea"]))
        .await
        .unwrap();
    store.insert_file(&in_room).await.unwrap();
    store
        .insert_file(&file("f3", "u2", FileKind::Image, 30, &[]))
        .await
        .unwrap();
    assert_eq!(
        store.file("f1").await.unwrap().unwrap(),
        file("f1", "u1", FileKind::Image, 10, &["trip", "sea"])
    );
    assert!(store.file("nope").await.unwrap().is_none());
    assert_eq!(store.storage_used("u1").await.unwrap(), 30);

    // Readable: my uploads, and what is shared in my rooms.
    assert_eq!(
        ids(store.list_files(&query("u1", &[])).await.unwrap()),
        ["f2", "f1"]
    );
    assert_eq!(
        ids(store.list_files(&query("u2", &["r1"])).await.unwrap()),
        ["f3", "f2"]
    );
    assert_eq!(
        ids(store.list_files(&query("u3", &[])).await.unwrap()),
        Vec::<String>::new()
    );
    let mut by_room = query("u2", &["r1"]);
    by_room.room_id = Some("r1".into());
    assert_eq!(ids(store.list_files(&by_room).await.unwrap()), ["f2"]);
    let mut by_tag = query("u2", &["r1"]);
    by_tag.hashtag = Some("trip".into());
    assert_eq!(
        ids(store.list_files(&by_tag).await.unwrap()),
        ["f2"],
        "f1 is not shared with u2"
    );
    let mut by_kind = query("u1", &[]);
    by_kind.kind = Some(FileKind::Image);
    assert_eq!(ids(store.list_files(&by_kind).await.unwrap()), ["f1"]);

    // Shared by a message: its room's members read it; hashtags from the message join.
    store.share_file("f1", "r2", "m9").await.unwrap();
    store.share_file("f1", "r2", "m9").await.unwrap();
    store
        .add_file_hashtags("f1", &["sea".into(), "sunset".into()])
        .await
        .unwrap();
    assert_eq!(
        store.file("f1").await.unwrap().unwrap().hashtags,
        ["trip", "sea", "sunset"]
    );
    let mut shares = store.file_shares("f1").await.unwrap();
    shares.sort();
    assert_eq!(shares, [("r2".to_string(), "m9".to_string())]);
    assert_eq!(
        store.file_shares("f2").await.unwrap(),
        [("r1".to_string(), String::new())]
    );
    let mut sunset = query("u3", &["r2"]);
    sunset.hashtag = Some("sunset".into());
    assert_eq!(ids(store.list_files(&sunset).await.unwrap()), ["f1"]);

    // Metadata and previews, and the end of the pending state.
    assert_eq!(
        ids(store.pending_previews(10).await.unwrap()),
        ["f1", "f2", "f3"]
    );
    let meta = FileMeta {
        width: Some(640),
        height: Some(480),
        title: Some("Title".into()),
        previews: vec![PreviewObject {
            size: "small".into(),
            object: "objects/00/p".into(),
            wrapped_key: "w".into(),
            key_id: "k1".into(),
            content_type: "image/jpeg".into(),
            bytes: 123,
            width: 160,
            height: 120,
        }],
        ..FileMeta::default()
    };
    store.set_file_meta("f1", &meta).await.unwrap();
    let f1 = store.file("f1").await.unwrap().unwrap();
    assert_eq!((f1.meta, f1.preview_state), (meta, PreviewState::Done));
    assert_eq!(ids(store.pending_previews(10).await.unwrap()), ["f2", "f3"]);

    // A transcript is kept on the file, a later one replacing it; the rest stays.
    assert_eq!(f1.transcript, None);
    for text in ["안녕하세요", "hello there"] {
        let t = Transcript {
            text: text.into(),
            language: if text.is_ascii() { "en" } else { "ko" }.into(),
            created_at: 4000,
        };
        store.set_file_transcript("f1", &t).await.unwrap();
        let now = store.file("f1").await.unwrap().unwrap();
        assert_eq!(now.transcript, Some(t));
        assert_eq!(now.preview_state, PreviewState::Done);
    }

    // Deleted once: the record stays (marked), listings drop it, the quota gets it back.
    let gone = store.delete_file("f1", 5000).await.unwrap().unwrap();
    assert_eq!(gone.id, "f1");
    assert!(
        store.delete_file("f1", 6000).await.unwrap().is_none(),
        "a repeat deletes nothing"
    );
    assert_eq!(
        store.file("f1").await.unwrap().unwrap().deleted_at,
        Some(5000)
    );
    assert_eq!(store.storage_used("u1").await.unwrap(), 20);
    assert_eq!(
        ids(store.list_files(&query("u1", &["r2"])).await.unwrap()),
        ["f2"]
    );
    assert!(store.list_files(&sunset).await.unwrap().is_empty());
}

pub async fn file_listings_page_without_gaps(store: SharedStore) {
    // Ids are time-ordered: newest first is descending id.
    for i in 0..25 {
        let mut f = file(
            &format!("f{i:03}"),
            if i % 2 == 0 { "u1" } else { "u2" },
            FileKind::Image,
            1,
            &["t"],
        );
        if i % 3 == 0 {
            f.room_id = Some("r1".into());
        }
        store.insert_file(&f).await.unwrap();
    }
    // u1 sees its own (13) and the room's (9, of which 5 are its own): 17.
    let mut seen = Vec::new();
    let mut q = query("u1", &["r1"]);
    q.limit = 4;
    q.hashtag = Some("t".into());
    for _ in 0..20 {
        let page = store.list_files(&q).await.unwrap();
        let n = page.len();
        seen.extend(ids(page));
        if n < q.limit {
            break;
        }
        q.before = seen.last().cloned();
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, no duplicates");
    assert_eq!(seen.len(), 17);
}

pub async fn link_previews_secrets_and_amendments(store: SharedStore) {
    assert!(store
        .link_preview("https://a.example/")
        .await
        .unwrap()
        .is_none());
    let p = LinkPreviewRecord {
        url: "https://a.example/".into(),
        preview: json!({"url": "https://a.example/", "title": "A"}),
        fetched_at: 10,
    };
    store.put_link_preview(&p).await.unwrap();
    assert_eq!(store.link_preview(&p.url).await.unwrap().unwrap(), p);
    let none = LinkPreviewRecord {
        preview: serde_json::Value::Null,
        fetched_at: 20,
        ..p.clone()
    };
    store.put_link_preview(&none).await.unwrap();
    assert_eq!(store.link_preview(&p.url).await.unwrap().unwrap(), none);

    // The first secret stored wins, whoever asks later.
    assert_eq!(store.secret_or_insert("s", "one").await.unwrap(), "one");
    assert_eq!(store.secret_or_insert("s", "two").await.unwrap(), "one");
    let racing = futures_util::future::join_all((0..8).map(|i| {
        let store = store.clone();
        async move {
            store
                .secret_or_insert("race", &format!("v{i}"))
                .await
                .unwrap()
        }
    }))
    .await;
    assert!(racing.iter().all(|v| v == &racing[0]), "{racing:?}");

    // Messages keep attachments and get link previews and amended attachments later.
    seed(&store).await;
    let mut d = draft("m1", "u1", "see https://a.example/", None);
    d.kind = dovie_protocol::model::MessageKind::Image;
    d.attachments = vec![json!({"id": "f1", "kind": "image"})];
    let stored = append_ok(&store, "g", 1, vec![d]).await;
    let AppendOutcome::Stored(m) = &stored[0] else {
        panic!("stored")
    };
    assert_eq!(m.kind, dovie_protocol::model::MessageKind::Image);
    let got = store.get_message("m1").await.unwrap().unwrap();
    assert_eq!(got.attachments, vec![json!({"id": "f1", "kind": "image"})]);
    assert!(got.link_previews.is_empty());
    let previews = [json!({"url": "https://a.example/", "title": "A"})];
    let amended = store
        .amend_message("m1", None, Some(&previews))
        .await
        .unwrap();
    assert_eq!(amended.link_previews, previews);
    assert_eq!(amended.attachments, got.attachments, "untouched");
    let deleted = [json!({"id": "f1", "kind": "image", "deleted": true})];
    let amended = store
        .amend_message("m1", Some(&deleted), None)
        .await
        .unwrap();
    assert_eq!(
        (
            amended.attachments.as_slice(),
            amended.link_previews.as_slice()
        ),
        (&deleted[..], &previews[..])
    );
    assert_eq!(amended.edited_at, None, "an amendment is not an edit");
    let tomb = store.delete_message("m1", 99).await.unwrap();
    assert!(tomb.attachments.is_empty() && tomb.link_previews.is_empty());
}
