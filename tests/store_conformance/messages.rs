//! History, search, fencing and the room actors' port.

use super::*;

/// Search sees every message sent before it and follows edits and deletes — whether or not the
/// message was already in the full-text index (the embedded store indexes in the background).
pub async fn search_follows_edits_and_deletes(store: SharedStore) {
    seed(&store).await;
    let hits = |store: SharedStore, q: &'static str| async move {
        store
            .search("u1", None, q, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    append_ok(
        &store,
        "g",
        1,
        vec![
            draft("s1", "u1", "alpha one", None),
            draft("s2", "u2", "beta two", None),
        ],
    )
    .await;
    // Edited before any search (not indexed yet in the embedded store).
    store
        .edit_message("s1", "gamma three", &[], 200)
        .await
        .unwrap();
    assert!(hits(store.clone(), "alpha").await.is_empty());
    assert_eq!(hits(store.clone(), "gamma").await, ["s1"]);
    assert_eq!(hits(store.clone(), "beta").await, ["s2"]);
    // Edited and deleted after a search indexed them.
    store
        .edit_message("s2", "delta four", &[], 300)
        .await
        .unwrap();
    assert!(hits(store.clone(), "beta").await.is_empty());
    assert_eq!(hits(store.clone(), "delta").await, ["s2"]);
    store.delete_message("s2", 400).await.unwrap();
    assert!(hits(store.clone(), "delta").await.is_empty());
    // Past the background indexer's period, more messages: found exactly once each.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let more: Vec<Draft> = (0..30)
        .map(|i| draft(&format!("e{i}"), "u1", &format!("epsilon {i}"), None))
        .collect();
    append_ok(&store, "g", 3, more).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let mut found = hits(store.clone(), "epsilon").await;
    found.sort();
    found.dedup();
    assert_eq!(found.len(), 30);
    assert_eq!(
        hits(store.clone(), "epsilon").await.len(),
        30,
        "no duplicates"
    );
}

/// Cluster stores fence owners: an append under an epoch older than the latest claim counts for
/// nothing. (The embedded store has one process and no epochs: it answers epoch 0.)
pub async fn fencing(store: SharedStore) {
    seed(&store).await;
    let old = store.load_room("g", 1).await.unwrap().unwrap().epoch;
    if old == 0 {
        append_ok(&store, "g", 1, vec![draft("m1", "u1", "one", None)]).await;
        return;
    }
    let new = store.load_room("g", 1).await.unwrap().unwrap().epoch;
    assert!(new > old, "a claim takes a newer epoch");
    match store
        .append(
            "g",
            old,
            1,
            vec![draft("m1", "u1", "stale owner", Some("n"))],
        )
        .await
    {
        Err(AppendError::Fenced) => {}
        other => panic!("a stale owner must be fenced: {other:?}"),
    }
    let page = store.history("g", None, None, 10).await.unwrap();
    assert!(
        page.messages.is_empty(),
        "nothing of a fenced append counts"
    );
    let out = store
        .append("g", new, 1, vec![draft("m2", "u1", "new owner", Some("n"))])
        .await
        .unwrap();
    assert!(matches!(&out[0], AppendOutcome::Stored(m) if m.seq == 1 && m.content == "new owner"));
}

pub async fn messages(store: SharedStore) {
    seed(&store).await;
    let out = append_ok(
        &store,
        "g",
        1,
        vec![
            draft("m1", "u1", "hello #Tag <@u2>", Some("n1")),
            draft("m2", "u2", "world", Some("n1")),
            draft("m3", "u1", "again", Some("n1")),
        ],
    )
    .await;
    assert!(matches!(&out[0], AppendOutcome::Stored(m) if m.seq == 1 && m.hashtags == vec!["tag"]));
    // Mentions are stored with the message and read back with it.
    assert_eq!(
        store.get_message("m1").await.unwrap().unwrap().mentions,
        vec!["u2"]
    );
    assert!(store
        .get_message("m2")
        .await
        .unwrap()
        .unwrap()
        .mentions
        .is_empty());
    assert!(
        matches!(&out[1], AppendOutcome::Stored(m) if m.seq == 2),
        "nonces are per sender"
    );
    assert!(
        matches!(&out[2], AppendOutcome::Duplicate(m) if m.id == "m1"),
        "same sender, same nonce"
    );
    // A stale first_seq is refused and stores nothing.
    let epoch = store.load_room("g", 1).await.unwrap().unwrap().epoch;
    match store
        .append("g", epoch, 2, vec![draft("mx", "u1", "x", None)])
        .await
    {
        Err(AppendError::SeqMismatch { last_seq }) => assert_eq!(last_seq, 2),
        other => panic!("{other:?}"),
    }
    assert!(store.get_message("mx").await.unwrap().is_none());
    // A reply must name a message of the room; a rejected draft takes no seq.
    let mut bad = draft("m4", "u1", "re", None);
    bad.reply_to = Some("nope".into());
    let mut good = draft("m5", "u2", "re", None);
    good.reply_to = Some("m1".into());
    let out = append_ok(&store, "g", 3, vec![bad, good]).await;
    assert!(matches!(&out[0], AppendOutcome::Rejected(e) if e.code == ErrorCode::NotFound));
    assert!(
        matches!(&out[1], AppendOutcome::Stored(m) if m.seq == 3 && m.reply_to.as_deref() == Some("m1"))
    );

    let snap = store.load_room("g", 2).await.unwrap().unwrap();
    assert_eq!(snap.last_seq, 3);
    assert_eq!(
        snap.recent.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(store.load_room("nope", 2).await.unwrap().is_none());
    let after = store.messages_after("g", 1, 10).await.unwrap();
    assert_eq!(after.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![2, 3]);

    // Edit, reactions, delete.
    let m = store
        .edit_message("m1", "changed #New", &["new".into()], 200)
        .await
        .unwrap();
    assert_eq!(
        (m.content.as_str(), m.edited_at),
        ("changed #New", Some(200))
    );
    let m = store.set_reaction("m1", "u2", "👍", true).await.unwrap();
    store.set_reaction("m1", "u2", "👍", true).await.unwrap();
    let m2 = store.set_reaction("m1", "u1", "👍", true).await.unwrap();
    assert_eq!(m.reactions["👍"], vec!["u2"]);
    assert_eq!(
        m2.reactions["👍"].len(),
        2,
        "a reaction counts once per user"
    );
    let m = store.set_reaction("m1", "u2", "👍", false).await.unwrap();
    assert_eq!(m.reactions["👍"], vec!["u1"]);
    let m = store.delete_message("m1", 300).await.unwrap();
    assert!(m.deleted && m.content.is_empty() && m.reactions.is_empty() && m.hashtags.is_empty());
    assert_eq!(
        store
            .edit_message("m1", "zombie", &[], 400)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        store.delete_message("nope", 1).await.unwrap_err().code,
        ErrorCode::NotFound
    );

    // History pages.
    let more: Vec<Draft> = (0..10)
        .map(|i| draft(&format!("h{i}"), "u1", &format!("page {i}"), None))
        .collect();
    append_ok(&store, "g", 4, more).await;
    let p = store.history("g", None, None, 5).await.unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![9, 10, 11, 12, 13]
    );
    assert!(p.has_more);
    let p = store.history("g", Some(4), None, 5).await.unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(!p.has_more);
    let p = store.history("g", Some(9), Some(5), 10).await.unwrap();
    assert_eq!(
        p.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );

    // Search and hashtags, scoped to the caller's rooms.
    store
        .create_room(room("other", RoomType::Group, &["u3"]))
        .await
        .unwrap();
    append_ok(
        &store,
        "other",
        1,
        vec![draft("o1", "u3", "page secret #tag", None)],
    )
    .await;
    let found = store.search("u2", None, "page", 50).await.unwrap();
    assert_eq!(found.len(), 10);
    assert!(found.iter().all(|m| m.room_id == "g"));
    assert_eq!(
        store
            .search("u3", Some("other"), "secr", 50)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .search("u2", None, "changed", 50)
            .await
            .unwrap()
            .is_empty(),
        "deleted is not found"
    );
    assert_eq!(store.by_hashtag("u3", "#TAG", 50).await.unwrap().len(), 1);
    assert!(
        store.by_hashtag("u2", "tag", 50).await.unwrap().is_empty(),
        "m1's tag went with its delete"
    );
}

/// Search finds the same messages on every store: old ones under many newer candidates, every
/// word of a multi-word query (any order in the text, whole words but the last), past one
/// message bucket.
pub async fn search_finds_old_messages_and_every_word(store: SharedStore) {
    seed(&store).await;
    // One old match, then 700 newer messages sharing its first word but not its second.
    let mut drafts = vec![draft("old", "u1", "meeting notes pelican", None)];
    drafts.extend((0..700).map(|i| draft(&format!("n{i}"), "u2", &format!("meeting {i}"), None)));
    append_ok(&store, "g", 1, drafts).await;
    let ids =
        |v: Vec<dovie_protocol::model::Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .search("u1", None, "meeting pelican", 20)
            .await
            .unwrap()),
        ["old"]
    );
    assert_eq!(
        ids(store
            .search("u1", None, "pelican meeting", 20)
            .await
            .unwrap()),
        ["old"]
    );
    assert_eq!(
        ids(store
            .search("u1", Some("g"), "notes pel", 20)
            .await
            .unwrap()),
        ["old"]
    );
    assert_eq!(
        ids(store.search("u1", None, "pelican", 20).await.unwrap()),
        ["old"]
    );
    assert!(store
        .search("u1", None, "meeting pelicans", 20)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.search("u1", None, "meeting", 50).await.unwrap().len(),
        50
    );
    // The newest first.
    let first = store.search("u1", None, "meeting", 1).await.unwrap();
    assert_eq!(first[0].seq, 701);
    // Past one message bucket (4,096 seqs): a match in the first is still found.
    let filler: Vec<Draft> = (0..3500)
        .map(|i| draft(&format!("f{i}"), "u1", &format!("filler {i}"), None))
        .collect();
    append_ok(&store, "g", 702, filler).await;
    append_ok(
        &store,
        "g",
        4202,
        vec![draft("late", "u2", "pelican again", None)],
    )
    .await;
    assert_eq!(
        ids(store.search("u1", None, "pelican", 20).await.unwrap()),
        ["late", "old"]
    );
    // Not a member: nothing.
    assert!(store
        .search("u3", None, "pelican", 20)
        .await
        .unwrap()
        .is_empty());
}

/// Messages of the longest kind, all distinct words, sent together (their index rows run to
/// thousands, more than one write may carry): each is found by its first and its last word.
pub async fn search_finds_every_word_of_long_messages(store: SharedStore) {
    seed(&store).await;
    let text = |m: usize| {
        let mut words = Vec::new();
        let mut len = 0;
        for w in 0.. {
            let word = format!("w{m}x{w:04}abcdefghij");
            len += word.len() + 1;
            if len > 4_000 {
                break;
            }
            words.push(word);
        }
        words.join(" ")
    };
    let drafts: Vec<Draft> = (0..8)
        .map(|m| draft(&format!("long{m}"), "u1", &text(m), None))
        .collect();
    let texts: Vec<String> = drafts.iter().map(|d| d.content.clone()).collect();
    append_ok(&store, "g", 1, drafts).await;
    for (m, t) in texts.iter().enumerate() {
        let words: Vec<&str> = t.split(' ').collect();
        assert!(words.len() > 150, "{} words", words.len());
        for w in [words[0], words[words.len() - 1]] {
            let found = store.search("u1", None, w, 5).await.unwrap();
            let ids: Vec<_> = found.iter().map(|m| m.id.as_str()).collect();
            assert_eq!(ids, [format!("long{m}").as_str()], "{w}");
        }
    }
}

/// A room delete that removes the newest messages does not confuse the search index: messages
/// sent after it (which may take the deleted rows' places) are found, and can be edited and
/// deleted.
pub async fn search_survives_deleting_the_newest_messages(store: SharedStore) {
    seed(&store).await;
    store
        .create_room(room("x", RoomType::Group, &["u1", "u2"]))
        .await
        .unwrap();
    append_ok(&store, "g", 1, vec![draft("a1", "u1", "kiwi one", None)]).await;
    let newest: Vec<Draft> = (0..3)
        .map(|i| draft(&format!("x{i}"), "u2", &format!("kiwi x{i}"), None))
        .collect();
    append_ok(&store, "x", 1, newest).await;
    assert_eq!(store.search("u1", None, "kiwi", 10).await.unwrap().len(), 4);
    store.delete_room("x").await.unwrap();
    append_ok(
        &store,
        "g",
        2,
        vec![
            draft("a2", "u1", "kiwi two", None),
            draft("a3", "u2", "kiwi three", None),
        ],
    )
    .await;
    store
        .edit_message("a2", "mango two", &[], 300)
        .await
        .unwrap();
    assert_eq!(store.search("u1", None, "kiwi", 10).await.unwrap().len(), 2);
    store.delete_message("a3", 400).await.unwrap();
    let found: Vec<String> = store
        .search("u1", None, "mango", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(found, ["a2"]);
    store
        .edit_message("a2", "papaya two", &[], 500)
        .await
        .unwrap();
    store.delete_room("g").await.unwrap();
}
