//! Room records and membership.

use super::*;

pub async fn rooms(store: SharedStore) {
    seed(&store).await;
    // Direct rooms: one per pair whatever the order.
    let d1 = match store
        .create_room(room("d1", RoomType::Direct, &["u1", "u3"]))
        .await
        .unwrap()
    {
        Created::New(r) => r,
        Created::Existing(_) => panic!("first direct room must be new"),
    };
    match store
        .create_room(room("d2", RoomType::Direct, &["u3", "u1"]))
        .await
        .unwrap()
    {
        Created::Existing(r) => assert_eq!(r.id, d1.id),
        Created::New(_) => panic!("second direct room for a pair must be the existing one"),
    }
    let g = store.get_room("g").await.unwrap().unwrap();
    assert_eq!(g.member_ids, vec!["u1", "u2"]);
    assert_eq!(g.role_of("u1"), Some(Role::Owner));
    assert!(store.get_room("nope").await.unwrap().is_none());
    let ids = |rooms: Vec<Room>| rooms.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let asked = ["g".to_string(), "nope".to_string(), "g".to_string()];
    assert_eq!(
        ids(store.rooms_by_ids(&asked).await.unwrap()),
        vec!["g", "g"]
    );
    assert_eq!(store.rooms_by_ids(&["g".into()]).await.unwrap()[0], g);
    assert_eq!(
        store
            .rename_room("g", Some("new"))
            .await
            .unwrap()
            .name
            .as_deref(),
        Some("new")
    );
    let err = store
        .add_members("g", &[("u3".into(), Role::Member)], 2)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RoomFull);
    let g = store
        .add_members(
            "g",
            &[("u3".into(), Role::Admin), ("u2".into(), Role::Admin)],
            3,
        )
        .await
        .unwrap();
    assert_eq!(g.member_ids.len(), 3);
    assert_eq!(g.role_of("u3"), Some(Role::Admin));
    assert_eq!(
        g.role_of("u2"),
        Some(Role::Member),
        "existing members keep their role"
    );
    assert_eq!(
        store
            .set_role("g", "u2", Role::Admin)
            .await
            .unwrap()
            .role_of("u2"),
        Some(Role::Admin)
    );
    let g = store.remove_member("g", "u3").await.unwrap();
    assert!(!g.is_member("u3"));
    assert_eq!(
        store.remove_member("g", "u3").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        store.co_members("u1").await.unwrap().len(),
        2,
        "u2 (group) and u3 (direct)"
    );
    // Presence skips rooms above the size limit: at 1 member no room of u1's qualifies; at 2
    // both do (the group has u1 and u2, the direct room u1 and u3).
    assert!(store.presence_audience("u1", 1).await.unwrap().is_empty());
    let mut heard = store.presence_audience("u1", 2).await.unwrap();
    heard.sort();
    assert_eq!(heard, ["u2", "u3"]);
    let mut ids = store.room_ids_of("u1").await.unwrap();
    ids.sort();
    let mut want = vec![d1.id.clone(), "g".to_string()];
    want.sort();
    assert_eq!(ids, want);

    // Unread counts and my rooms.
    append_ok(
        &store,
        "g",
        1,
        vec![
            draft("m1", "u1", "one", None),
            draft("m2", "u1", "two", None),
        ],
    )
    .await;
    assert_eq!(store.unread_counts("u2").await.unwrap()["g"], 2);
    assert_eq!(
        store.unread_counts("u1").await.unwrap()["g"],
        0,
        "senders have read their own"
    );
    let mine = store.rooms_of("u2").await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].last_message.as_ref().unwrap().id, "m2");
    assert_eq!(mine[0].unread_count, 2);
    store
        .set_receipt("g", "u2", ReceiptKind::Read, 1)
        .await
        .unwrap();
    store
        .set_receipt("g", "u2", ReceiptKind::Read, 0)
        .await
        .unwrap();
    assert_eq!(
        store.unread_counts("u2").await.unwrap()["g"],
        1,
        "read marks never go back"
    );
    store
        .set_receipt("g", "u2", ReceiptKind::Delivered, 2)
        .await
        .unwrap();
    assert_eq!(
        store.unread_counts("u2").await.unwrap()["g"],
        1,
        "delivered is not read"
    );

    store.delete_room("g").await.unwrap();
    assert!(store.get_room("g").await.unwrap().is_none());
    assert!(
        store.get_message("m1").await.unwrap().is_none(),
        "a deleted room's messages go with it"
    );
    assert_eq!(
        store.delete_room("g").await.unwrap_err().code,
        ErrorCode::NotFound
    );
}

/// Deleting a room removes everything that hangs off it: members, messages, ids, nonces, likes,
/// hashtags and the search index — counted in the store's own tables.
pub async fn a_room_delete_leaves_nothing(store: SharedStore, probe: Probe) {
    seed(&store).await;
    store
        .create_room(room("del", RoomType::Group, &["u1", "u2", "u3"]))
        .await
        .unwrap();
    let drafts: Vec<Draft> = (0..12)
        .map(|i| {
            let nonce = format!("n{i}");
            draft(
                &format!("d{i}"),
                if i % 2 == 0 { "u1" } else { "u2" },
                &format!("zanzibar quokka {i} #deltag"),
                Some(&nonce),
            )
        })
        .collect();
    append_ok(&store, "del", 1, drafts).await;
    store.set_reaction("d0", "u2", "👍", true).await.unwrap();
    store.set_reaction("d3", "u1", "🎉", true).await.unwrap();
    // Searched once, so the embedded store's background index holds the messages too.
    assert_eq!(
        store
            .search("u1", Some("del"), "zanzibar", 50)
            .await
            .unwrap()
            .len(),
        12
    );
    let ids: Vec<String> = (0..12).map(|i| format!("d{i}")).collect();
    let nonces: Vec<(String, String)> = (0..12)
        .map(|i| {
            (
                (if i % 2 == 0 { "u1" } else { "u2" }).to_string(),
                format!("n{i}"),
            )
        })
        .collect();
    let nonces: Vec<(&str, &str)> = nonces
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let traces = Traces {
        room_id: "del",
        members: &["u1", "u2", "u3"],
        message_ids: &ids,
        nonces: &nonces,
        tags: &["deltag"],
        words: &["zanzibar", "quokka"],
    };
    assert!(
        !probe.leftovers(&traces).await.is_empty(),
        "the probe sees the room before the delete"
    );
    store.delete_room("del").await.unwrap();
    assert_eq!(
        probe.leftovers(&traces).await,
        BTreeMap::new(),
        "left behind"
    );
    assert!(store.get_room("del").await.unwrap().is_none());
    assert!(!store
        .room_ids_of("u3")
        .await
        .unwrap()
        .contains(&"del".to_string()));
    // The other room is untouched.
    assert!(store.get_room("g").await.unwrap().is_some());
}

/// A request naming a user more than once adds them once and counts them once.
pub async fn repeated_ids_are_added_once(store: SharedStore) {
    seed(&store).await;
    store.create_user(user("u4")).await.unwrap();
    let m = |id: &str| (id.to_string(), Role::Member);
    let r = store
        .add_members("g", &[m("u3"), m("u4"), m("u3"), m("u4"), m("u3")], 4)
        .await
        .unwrap();
    assert_eq!(r.member_ids, ["u1", "u2", "u3", "u4"]);
    // At the limit exactly: repeats of members do not count against it.
    let r = store
        .add_members("g", &[m("u1"), m("u3"), m("u3")], 4)
        .await
        .unwrap();
    assert_eq!(r.member_ids.len(), 4);
}

/// Adds racing on one room never pass the member limit (the cluster store decides them on the
/// roster with compare-and-set; the embedded store in its single writer).
pub async fn the_member_limit_holds_under_concurrent_adds(store: SharedStore) {
    seed(&store).await;
    const MAX: usize = 10;
    let ids: Vec<String> = (0..24).map(|i| format!("c{i}")).collect();
    for id in &ids {
        store.create_user(user(id)).await.unwrap();
    }
    // 24 single adds and a few pairs, all at once, into a room of 2.
    let mut calls = Vec::new();
    for id in &ids {
        let (store, id) = (store.clone(), id.clone());
        calls.push(tokio::spawn(async move {
            store
                .add_members("g", &[(id, Role::Member)], MAX)
                .await
                .map(|_| 1)
        }));
    }
    for pair in ids.chunks(2).take(4) {
        let store = store.clone();
        let pair: Vec<(String, Role)> = pair.iter().map(|u| (u.clone(), Role::Member)).collect();
        calls.push(tokio::spawn(async move {
            store.add_members("g", &pair, MAX).await.map(|_| 2)
        }));
    }
    let mut full = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::RoomFull => full += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    let room = store.get_room("g").await.unwrap().unwrap();
    assert_eq!(
        room.member_ids.len(),
        MAX,
        "exactly full: {:?}",
        room.member_ids
    );
    assert!(full > 0, "some adds were refused");
    // Every member row has its room in the member's list, and nobody else does.
    for id in &ids {
        let listed = store
            .room_ids_of(id)
            .await
            .unwrap()
            .contains(&"g".to_string());
        assert_eq!(listed, room.is_member(id), "{id}");
    }
}
