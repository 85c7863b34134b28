//! Location: live shares (one per user and room, moved no faster than the interval, ended
//! once), share requests, the location history (mine only, newest first, paged, deletable,
//! retention), "nearby" positions (replaced, expiring, found by box) and location rooms (found
//! by box, across the antimeridian), and location messages as stored.

use dovie::store::{
    GeoBox, HistoryEntry, LocationRoom, LocationShare, NearbyPosition, ShareMove, SharePosition,
    ShareRequest,
};
use serde_json::json;

use super::*;

fn share(id: &str, room: &str, user: &str, started: i64, until: i64) -> LocationShare {
    LocationShare {
        id: id.into(),
        room_id: room.into(),
        user_id: user.into(),
        message_id: Some(format!("m-{id}")),
        lat: 37.5,
        lon: 127.0,
        accuracy_m: Some(10.0),
        heading: None,
        label: Some("here".into()),
        started_at: started,
        live_until: until,
        updated_at: started,
        ended_at: None,
        end_reason: None,
    }
}

fn at(lat: f64, lon: f64, at: i64) -> SharePosition {
    SharePosition {
        lat,
        lon,
        accuracy_m: None,
        heading: Some(90.0),
        at,
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|t| id(t).to_string()).collect()
}

fn around(lat: f64, lon: f64, d: f64) -> GeoBox {
    GeoBox {
        min_lat: lat - d,
        max_lat: lat + d,
        min_lon: lon - d,
        max_lon: lon + d,
    }
}

pub async fn live_shares(store: SharedStore) {
    // One live share per user and room: a new one ends the old, not others' or other rooms'.
    assert!(store
        .start_share(&share("s1", "r1", "u1", 1_000, 100_000))
        .await
        .unwrap()
        .is_empty());
    store
        .start_share(&share("o1", "r1", "u2", 1_000, 100_000))
        .await
        .unwrap();
    store
        .start_share(&share("x1", "r2", "u1", 1_000, 100_000))
        .await
        .unwrap();
    let ended = store
        .start_share(&share("s2", "r1", "u1", 2_000, 200_000))
        .await
        .unwrap();
    assert_eq!(ids(&ended, |s| &s.id), vec!["s1"]);
    assert_eq!(ended[0].end_reason.as_deref(), Some("stopped"));
    let s1 = store.share("s1").await.unwrap().unwrap();
    assert_eq!(
        (s1.ended_at, s1.end_reason.as_deref()),
        (Some(2_000), Some("stopped"))
    );
    assert_eq!(
        ids(&store.room_shares("r1", 3_000).await.unwrap(), |s| &s.id),
        vec!["o1", "s2"]
    );
    assert!(store.share("nope").await.unwrap().is_none());

    // Moves: the sharer's only, the first at once, then no faster than the interval.
    assert_eq!(
        store
            .move_share("s2", "u2", at(1.0, 2.0, 2_100), 2_000)
            .await
            .unwrap(),
        ShareMove::NotFound
    );
    assert_eq!(
        store
            .move_share("zz", "u1", at(1.0, 2.0, 2_100), 2_000)
            .await
            .unwrap(),
        ShareMove::NotFound
    );
    let ShareMove::Moved(moved) = store
        .move_share("s2", "u1", at(1.0, 2.0, 2_100), 2_000)
        .await
        .unwrap()
    else {
        panic!("the first move is taken");
    };
    assert_eq!(
        (moved.lat, moved.lon, moved.heading, moved.updated_at),
        (1.0, 2.0, Some(90.0), 2_100)
    );
    assert_eq!(
        store
            .move_share("s2", "u1", at(3.0, 4.0, 3_000), 2_000)
            .await
            .unwrap(),
        ShareMove::TooSoon(1_100)
    );
    assert!(matches!(
        store
            .move_share("s2", "u1", at(3.0, 4.0, 4_100), 2_000)
            .await
            .unwrap(),
        ShareMove::Moved(_)
    ));
    let stored = store.share("s2").await.unwrap().unwrap();
    assert_eq!(
        (stored.lat, stored.lon, stored.updated_at),
        (3.0, 4.0, 4_100)
    );
    // An ended share does not move; nor one past its end.
    assert_eq!(
        store
            .move_share("s1", "u1", at(1.0, 1.0, 9_000), 2_000)
            .await
            .unwrap(),
        ShareMove::Ended
    );
    assert_eq!(
        store
            .move_share("s2", "u1", at(1.0, 1.0, 200_000), 2_000)
            .await
            .unwrap(),
        ShareMove::Ended
    );

    // Due shares: past their end, not ended, soonest first; ended once, by one caller.
    let due = store.due_shares(150_000, 10).await.unwrap();
    assert_eq!(
        ids(&due, |s| &s.id),
        vec!["o1", "x1"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    );
    let ends =
        futures_util::future::join_all((0..4).map(|_| store.end_share("o1", "expired", 100_000)))
            .await;
    assert_eq!(
        ends.iter().filter(|r| *r.as_ref().unwrap()).count(),
        1,
        "ended exactly once"
    );
    assert!(!store.end_share("nope", "expired", 1).await.unwrap());
    let o1 = store.share("o1").await.unwrap().unwrap();
    assert_eq!(
        (o1.ended_at, o1.end_reason.as_deref()),
        (Some(100_000), Some("expired"))
    );
    assert_eq!(
        ids(&store.due_shares(150_000, 10).await.unwrap(), |s| &s.id),
        vec!["x1"]
    );
    assert!(store.due_shares(50_000, 10).await.unwrap().is_empty());
    assert_eq!(
        ids(&store.room_shares("r1", 3_000).await.unwrap(), |s| &s.id),
        vec!["s2"]
    );
    // Past its end a share is not live, even before the sweeper ends it.
    assert!(store.room_shares("r1", 200_000).await.unwrap().is_empty());

    store
        .add_share_request(&ShareRequest {
            id: "q1".into(),
            room_id: "r1".into(),
            from_user_id: "u1".into(),
            to_user_id: "u2".into(),
            created_at: 5,
        })
        .await
        .unwrap();
}

pub async fn location_history(store: SharedStore) {
    let entry = |id: &str, user: &str, kind: &str, at: i64| HistoryEntry {
        id: id.into(),
        user_id: user.into(),
        kind: kind.into(),
        room_id: (kind != "nearby").then(|| "r1".to_string()),
        lat: 37.5,
        lon: 127.0,
        at,
    };
    let keep = dovie_actors::now_ms() + 86_400_000;
    for (i, kind) in ["message", "live", "nearby", "message", "live"]
        .iter()
        .enumerate()
    {
        let id = format!("h{i}");
        store
            .add_history(&entry(&id, "u1", kind, 1_000 + i as i64), keep)
            .await
            .unwrap();
    }
    // Ids are time-ordered: an old entry has a low one.
    store
        .add_history(&entry("a0", "u1", "message", 10), keep)
        .await
        .unwrap();
    store
        .add_history(&entry("z9", "u2", "message", 1_000), keep)
        .await
        .unwrap();
    // Mine only, newest first, from `since`, paged by id.
    let page = store.location_history("u1", 500, None, 3).await.unwrap();
    assert_eq!(ids(&page, |e| &e.id), vec!["h4", "h3", "h2"]);
    assert_eq!(page[2].room_id, None);
    assert_eq!(page[0], entry("h4", "u1", "live", 1_004));
    let next = store
        .location_history("u1", 500, Some("h2"), 3)
        .await
        .unwrap();
    assert_eq!(ids(&next, |e| &e.id), vec!["h1", "h0"]);
    assert_eq!(
        store
            .location_history("u1", 0, Some("h0"), 3)
            .await
            .unwrap()
            .len(),
        1
    );
    // One by one (mine only), then all.
    assert!(!store.delete_history_entry("u2", "h1").await.unwrap());
    assert!(store.delete_history_entry("u1", "h1").await.unwrap());
    assert!(!store.delete_history_entry("u1", "h1").await.unwrap());
    assert_eq!(
        store
            .location_history("u1", 500, None, 10)
            .await
            .unwrap()
            .len(),
        4
    );
    // Retention: entries older than the cutoff are dropped (or expire by themselves).
    store.purge_history(500).await.unwrap();
    assert!(store
        .location_history("u1", 500, None, 10)
        .await
        .unwrap()
        .iter()
        .all(|e| e.at >= 500));
    store.clear_history("u1").await.unwrap();
    assert!(store
        .location_history("u1", 0, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .location_history("u2", 0, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn nearby(store: SharedStore) {
    let now = dovie_actors::now_ms();
    let pos = |user: &str, lat: f64, lon: f64, expires: i64| NearbyPosition {
        user_id: user.into(),
        lat,
        lon,
        updated_at: now,
        expires_at: expires,
    };
    let day = now + 86_400_000;
    store
        .set_nearby(&pos("u1", 37.50, 127.00, day))
        .await
        .unwrap();
    store
        .set_nearby(&pos("u2", 37.52, 127.01, day))
        .await
        .unwrap();
    store
        .set_nearby(&pos("u3", 35.10, 129.00, day))
        .await
        .unwrap();
    store
        .set_nearby(&pos("gone", 37.50, 127.00, now - 1))
        .await
        .unwrap();
    // Moving replaces: found at the new place only (here: into another CQL tile).
    store
        .set_nearby(&pos("u2", 37.40, 126.70, day))
        .await
        .unwrap();
    let found = store
        .nearby_in(&[around(37.5, 127.0, 0.05)], now, 100)
        .await
        .unwrap();
    assert_eq!(ids(&found, |p| &p.user_id), vec!["u1"]);
    let wide = store
        .nearby_in(&[around(37.5, 127.0, 0.5)], now, 100)
        .await
        .unwrap();
    let mut users = ids(&wide, |p| &p.user_id);
    users.sort();
    assert_eq!(users, vec!["u1", "u2"]);
    assert_eq!(
        store
            .nearby_in(&[around(37.5, 127.0, 0.5)], now, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let u2 = store.nearby_position("u2", now).await.unwrap().unwrap();
    assert_eq!((u2.lat, u2.lon, u2.expires_at), (37.40, 126.70, day));
    assert!(store.nearby_position("gone", now).await.unwrap().is_none());
    store.purge_nearby(now).await.unwrap();
    assert!(store.nearby_position("gone", now).await.unwrap().is_none());
    // Opting out.
    assert!(store.remove_nearby("u1").await.unwrap());
    assert!(!store.remove_nearby("u1").await.unwrap());
    assert!(store
        .nearby_in(&[around(37.5, 127.0, 0.05)], now, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(store.nearby_position("u1", now).await.unwrap().is_none());
}

pub async fn location_rooms(store: SharedStore) {
    let place = |id: &str, lat: f64, lon: f64| LocationRoom {
        room_id: id.into(),
        lat,
        lon,
        radius_m: 500.0,
    };
    seed(&store).await;
    store
        .put_location_room(&place("near", 37.501, 127.001))
        .await
        .unwrap();
    store
        .put_location_room(&place("far", 35.1, 129.0))
        .await
        .unwrap();
    store
        .put_location_room(&place("east", 10.0, 179.99))
        .await
        .unwrap();
    store
        .put_location_room(&place("west", 10.0, -179.99))
        .await
        .unwrap();
    assert_eq!(
        store.location_room("near").await.unwrap(),
        Some(place("near", 37.501, 127.001))
    );
    assert!(store.location_room("none").await.unwrap().is_none());
    let found = store
        .location_rooms_in(&[around(37.5, 127.0, 0.1)], 50)
        .await
        .unwrap();
    assert_eq!(ids(&found, |r| &r.room_id), vec!["near"]);
    // A search across the antimeridian is two boxes.
    let across = [
        GeoBox {
            min_lat: 9.9,
            max_lat: 10.1,
            min_lon: 179.9,
            max_lon: 180.0,
        },
        GeoBox {
            min_lat: 9.9,
            max_lat: 10.1,
            min_lon: -180.0,
            max_lon: -179.9,
        },
    ];
    let mut both = ids(&store.location_rooms_in(&across, 50).await.unwrap(), |r| {
        &r.room_id
    });
    both.sort();
    assert_eq!(both, vec!["east", "west"]);
    // Rooms of type `location`.
    let mut r = room("lr", RoomType::Location, &["u1"]);
    r.roles.insert("u1".into(), Role::Owner);
    store.create_room(r).await.unwrap();
    assert_eq!(
        store.get_room("lr").await.unwrap().unwrap().kind,
        RoomType::Location
    );
}

/// A location message keeps its place; a message that asks where someone is keeps its flag;
/// a delete drops both.
pub async fn location_messages(store: SharedStore) {
    seed(&store).await;
    let place = json!({ "lat": 37.5, "lon": 127.0, "map_url": "https://maps.example/?q=37.5,127" });
    let mut loc = draft("l1", "u1", "here", None);
    loc.kind = dovie_protocol::model::MessageKind::Location;
    loc.location = Some(place.clone());
    let mut ask = draft("l2", "u2", "where are you?", None);
    ask.suggest_location = true;
    append_ok(&store, "g", 1, vec![loc, ask]).await;
    let page = store.history("g", None, None, 10).await.unwrap();
    assert_eq!(page.messages[0].location, Some(place));
    assert!(!page.messages[0].suggest_location);
    assert!(page.messages[1].suggest_location && page.messages[1].location.is_none());
    let m = store.get_message("l1").await.unwrap().unwrap();
    assert_eq!(m.kind, dovie_protocol::model::MessageKind::Location);
    let gone = store.delete_message("l1", 9).await.unwrap();
    assert!(gone.location.is_none() && gone.deleted);
    assert!(store
        .get_message("l1")
        .await
        .unwrap()
        .unwrap()
        .location
        .is_none());
}
