//! Location, end to end against the real binary: location messages and live shares over REST
//! and WebSocket (moves, their rate, one share per user and room, stopping), expiry on time and
//! after a crash, map links, "nearby" (opt-in, reciprocal, coarse, blocks, rate, and a
//! trilateration attempt that learns nothing finer than a cell), location rooms (discovery,
//! joining from inside only), suggestions in all eight languages, share requests, and the
//! location history.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use dovie_protocol::Codec;
use serde_json::{json, Value};

/// Seoul City Hall.
const LAT: f64 = 37.5663;
const LON: f64 = 126.9779;
/// Degrees of latitude per metre.
const DEG_PER_M: f64 = 1.0 / 111_195.0;

fn north(m: f64) -> f64 {
    LAT + m * DEG_PER_M
}

async fn put_location(api: &Rest, u: &User, lat: f64, lon: f64) -> u16 {
    api.call(
        "PUT",
        "/api/users/me/location",
        Some(&u.token),
        Some(json!({ "lat": lat, "lon": lon })),
    )
    .await
    .0
}

async fn nearby(api: &Rest, u: &User, lat: f64, lon: f64, radius: u32) -> (u16, Value) {
    api.get(
        &format!("/api/nearby-users?lat={lat}&lon={lon}&radius_m={radius}"),
        &u.token,
    )
    .await
}

fn nearby_ids(body: &Value) -> Vec<(String, u64)> {
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["user"]["id"].as_str().unwrap().to_string(),
                e["distance_m"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn history_len(api: &Rest, u: &User, room: &str) -> usize {
    api.history(u, room, "").await.len()
}

#[actix_rt::test]
async fn location_messages_and_live_shares() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["ana", "ben", "cy"]).await;
    let room = api.group(&a, &[&b]).await;
    let mut wb = Ws::connect(&server, Codec::MsgPack, Auth::Query(&b.token)).await;
    let mut wa = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    let path = format!("/api/chat-rooms/{room}/location");

    // A static location: a `location` message with a map link, no static map without a key.
    let (status, body) = api
        .post(
            &path,
            &a.token,
            json!({"lat": LAT, "lon": LON, "accuracy_m": 12.5, "label": "City Hall"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let m = &body["message"];
    assert_eq!(m["kind"], "location");
    assert_eq!(m["location"]["lat"], json!(LAT));
    assert_eq!(m["location"]["accuracy_m"], json!(12.5));
    assert_eq!(m["location"]["label"], "City Hall");
    let map = m["location"]["map_url"].as_str().unwrap();
    assert!(
        map.starts_with("https://www.google.com/maps/") && map.contains(&format!("{LAT},{LON}")),
        "{map}"
    );
    assert!(
        m["location"].get("static_map_url").is_none(),
        "no key, no static map: {m}"
    );
    assert!(body.get("share").is_none());
    let event = wb.expect("new_message").await;
    assert_eq!(event["d"]["message"]["location"]["label"], "City Hall");

    // Bad input changes nothing.
    let before = history_len(&api, &a, &room).await;
    for bad in [
        json!({"lat": 90.5, "lon": LON}),
        json!({"lat": LAT, "lon": -180.01}),
        json!({"lat": LAT}),
        json!({"lat": "north", "lon": LON}),
        json!({"lat": LAT, "lon": LON, "live_seconds": 59}),
        json!({"lat": LAT, "lon": LON, "live_seconds": 86_401}),
        json!({"lat": LAT, "lon": LON, "live_seconds": -5}),
        json!({"lat": LAT, "lon": LON, "accuracy_m": -1}),
        json!({"lat": LAT, "lon": LON, "label": "x".repeat(201)}),
    ] {
        let (status, body) = api.post(&path, &a.token, bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {status} {body}");
    }
    assert_eq!(history_len(&api, &a, &room).await, before);
    let (status, _) = api
        .post(&path, &c.token, json!({"lat": LAT, "lon": LON}))
        .await;
    assert_eq!(status, 403, "a non-member cannot share into the room");
    let (status, _) = api
        .post(
            "/api/chat-rooms/nope/location",
            &a.token,
            json!({"lat": LAT, "lon": LON}),
        )
        .await;
    assert_eq!(status, 404);

    // A live share at the limits of its length.
    for secs in [60, 86_400] {
        let (status, body) = api
            .post(
                &path,
                &a.token,
                json!({"lat": LAT, "lon": LON, "live_seconds": secs}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let share = &body["share"];
        let until = share["live_until"].as_i64().unwrap();
        assert_eq!(until - share["started_at"].as_i64().unwrap(), secs * 1000);
        assert_eq!(body["message"]["location"]["share_id"], share["id"]);
        assert_eq!(body["message"]["location"]["live_until"], json!(until));
    }
    // The second replaced the first: one live share per user and room.
    let ended = wb.expect("location_share_ended").await;
    assert_eq!(ended["d"]["reason"], "stopped");
    let (_, shares) = api
        .get(&format!("/api/chat-rooms/{room}/location-shares"), &b.token)
        .await;
    let shares = shares["shares"].as_array().unwrap().clone();
    assert_eq!(shares.len(), 1, "{shares:?}");
    let share_id = shares[0]["id"].as_str().unwrap().to_string();
    assert_ne!(ended["d"]["share_id"], json!(share_id));

    // Moves over the socket: members hear them; the next within 2 s is refused.
    let reply = wa
        .request("location_update", json!({"share_id": share_id, "lat": north(100.0), "lon": LON, "heading": 90, "accuracy_m": 5}))
        .await;
    assert_eq!(reply["t"], "reply", "{reply}");
    let moved = wb.expect("location_updated").await;
    let d = &moved["d"];
    assert_eq!(
        (
            d["share_id"].as_str(),
            d["room_id"].as_str(),
            d["user_id"].as_str()
        ),
        (
            Some(share_id.as_str()),
            Some(room.as_str()),
            Some(a.id.as_str())
        )
    );
    assert_eq!(d["lat"], json!(north(100.0)));
    assert_eq!(d["heading"], json!(90.0));
    assert!(d["at"].is_i64());
    let again = wa
        .request(
            "location_update",
            json!({"share_id": share_id, "lat": north(200.0), "lon": LON}),
        )
        .await;
    assert_eq!(
        (again["t"].as_str(), again["d"]["code"].as_str()),
        (Some("error"), Some("rate_limited")),
        "{again}"
    );
    wb.expect_none("location_updated", Duration::from_millis(300))
        .await;
    // The latest position is readable; live moves are events, not messages.
    let (_, shares) = api
        .get(&format!("/api/chat-rooms/{room}/location-shares"), &b.token)
        .await;
    assert_eq!(shares["shares"][0]["lat"], json!(north(100.0)));
    let (status, _) = api
        .get(&format!("/api/chat-rooms/{room}/location-shares"), &c.token)
        .await;
    assert_eq!(status, 403);
    let count = history_len(&api, &a, &room).await;
    // Nobody else moves my share; bad positions change nothing.
    let mut wc = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    let theirs = wc
        .request(
            "location_update",
            json!({"share_id": share_id, "lat": LAT, "lon": LON}),
        )
        .await;
    assert_eq!(theirs["d"]["code"], "not_found", "{theirs}");
    for bad in [
        json!({"share_id": share_id, "lat": 91, "lon": LON}),
        json!({"share_id": share_id, "lat": LAT, "lon": LON, "heading": 361}),
        json!({"share_id": share_id, "lat": LAT}),
    ] {
        let r = wa.request("location_update", bad.clone()).await;
        assert_eq!(r["t"], "error", "{bad}: {r}");
        assert_eq!(r["d"]["code"], "validation_failed", "{bad}: {r}");
    }
    assert_eq!(history_len(&api, &a, &room).await, count);

    // Stopping: the sharer only; members hear it; an ended share does not move.
    let stop = format!("/api/location-shares/{share_id}");
    assert_eq!(api.call("DELETE", &stop, Some(&b.token), None).await.0, 403);
    assert_eq!(
        api.call("DELETE", "/api/location-shares/nope", Some(&a.token), None)
            .await
            .0,
        404
    );
    assert_eq!(api.call("DELETE", &stop, Some(&a.token), None).await.0, 204);
    let ended = wb.expect("location_share_ended").await;
    assert_eq!(
        (
            ended["d"]["share_id"].as_str(),
            ended["d"]["reason"].as_str()
        ),
        (Some(share_id.as_str()), Some("stopped"))
    );
    assert_eq!(
        api.call("DELETE", &stop, Some(&a.token), None).await.0,
        204,
        "stopping twice is fine"
    );
    wb.expect_none("location_share_ended", Duration::from_millis(300))
        .await;
    let r = wa
        .request(
            "location_update",
            json!({"share_id": share_id, "lat": LAT, "lon": LON}),
        )
        .await;
    assert_eq!(r["d"]["code"], "conflict", "{r}");
    let (_, shares) = api
        .get(&format!("/api/chat-rooms/{room}/location-shares"), &a.token)
        .await;
    assert!(shares["shares"].as_array().unwrap().is_empty());

    // Metrics.
    let metrics = get_text(&server.url("/metrics")).await;
    for series in [
        "dovie_location_shares_total{event=\"started\"}",
        "dovie_location_updates_total{result=\"rate_limited\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing");
    }
}

async fn get_text(url: &str) -> String {
    let mut res = awc::Client::default().get(url).send().await.unwrap();
    String::from_utf8(res.body().limit(4 << 20).await.unwrap().to_vec()).unwrap()
}

#[actix_rt::test]
async fn static_maps_only_with_a_key() {
    let server = Server::start_with(&[], &[("DOVIE_LOCATION__STATIC_API_KEY", "test-key-1")]);
    let api = rest(&server);
    let [a, b] = api.register_all(["ana", "ben"]).await;
    let room = api.group(&a, &[&b]).await;
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{room}/location"),
            &a.token,
            json!({"lat": LAT, "lon": LON}),
        )
        .await;
    assert_eq!(status, 201);
    let url = body["message"]["location"]["static_map_url"]
        .as_str()
        .unwrap();
    assert!(
        url.starts_with("https://maps.googleapis.com/maps/api/staticmap?"),
        "{url}"
    );
    assert!(
        url.contains("key=test-key-1") && url.contains(&format!("center={LAT}%2C{LON}")),
        "{url}"
    );
}

/// Shares end at `live_until` by the server — also when the node was down at that moment — and
/// an older share's end never ends a newer one.
#[actix_rt::test]
async fn live_shares_expire_on_time_and_after_a_crash() {
    let mut server = Server::start_with(&[], &[("DOVIE_LOCATION__MIN_LIVE_SECONDS", "1")]);
    let api = rest(&server);
    let [a, b] = api.register_all(["ana", "ben"]).await;
    let room = api.group(&a, &[&b]).await;
    let path = format!("/api/chat-rooms/{room}/location");
    let mut wb = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;

    let (_, first) = api
        .post(
            &path,
            &a.token,
            json!({"lat": LAT, "lon": LON, "live_seconds": 2}),
        )
        .await;
    let started = Instant::now();
    let ended = wb.expect("location_share_ended").await;
    let took = started.elapsed();
    assert_eq!(
        (
            ended["d"]["share_id"].clone(),
            ended["d"]["reason"].as_str()
        ),
        (first["share"]["id"].clone(), Some("expired"))
    );
    assert!(
        took >= Duration::from_millis(1_900) && took < Duration::from_millis(3_500),
        "ended after {took:?}"
    );

    // S1 (3 s) replaced by S2 (6 s): S1's end time passes and S2 stays live.
    let (_, s1) = api
        .post(
            &path,
            &a.token,
            json!({"lat": LAT, "lon": LON, "live_seconds": 3}),
        )
        .await;
    let (_, s2) = api
        .post(
            &path,
            &a.token,
            json!({"lat": LAT, "lon": LON, "live_seconds": 6}),
        )
        .await;
    let replaced = wb.expect("location_share_ended").await;
    assert_eq!(
        (
            replaced["d"]["share_id"].clone(),
            replaced["d"]["reason"].as_str()
        ),
        (s1["share"]["id"].clone(), Some("stopped"))
    );
    tokio::time::sleep(Duration::from_millis(3_800)).await;
    let (_, shares) = api
        .get(&format!("/api/chat-rooms/{room}/location-shares"), &b.token)
        .await;
    assert_eq!(shares["shares"][0]["id"], s2["share"]["id"], "{shares}");
    wb.expect_none("location_share_ended", Duration::from_millis(100))
        .await;
    let ended = wb.expect("location_share_ended").await;
    assert_eq!(
        (
            ended["d"]["share_id"].clone(),
            ended["d"]["reason"].as_str()
        ),
        (s2["share"]["id"].clone(), Some("expired"))
    );

    // A share whose end passes while the node is down is ended when it is back.
    let (_, s3) = api
        .post(
            &path,
            &a.token,
            json!({"lat": LAT, "lon": LON, "live_seconds": 2}),
        )
        .await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.restart();
    let api = rest(&server);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, shares) = api
            .get(&format!("/api/chat-rooms/{room}/location-shares"), &b.token)
            .await;
        if shares["shares"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the share outlived the crash: {shares}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, history) = api
        .get(&format!("/api/chat-rooms/{room}/messages"), &b.token)
        .await;
    let last = history["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["location"]["share_id"], s3["share"]["id"],
        "the share's message survived"
    );
}

#[actix_rt::test]
async fn nearby_is_reciprocal_coarse_and_respects_blocks() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c, d, e] = api.register_all(["ana", "ben", "cy", "dee", "eve"]).await;

    // Not opted in: no answer (reciprocal).
    let (status, body) = nearby(&api, &a, LAT, LON, 5000).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{body}"
    );
    assert_eq!(put_location(&api, &a, LAT, LON).await, 204);
    // At most one update a minute.
    let (status, _, headers) = api
        .call_full(
            "PUT",
            "/api/users/me/location",
            Some(&a.token),
            Some(json!({"lat": LAT, "lon": LON})),
        )
        .await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_some());
    assert_eq!(put_location(&api, &b, north(300.0), LON).await, 204);
    assert_eq!(put_location(&api, &c, north(3_000.0), LON).await, 204);
    assert_eq!(put_location(&api, &d, north(100_000.0), LON).await, 204);
    for bad in [
        json!({"lat": 91, "lon": 0}),
        json!({"lat": 0, "lon": 181}),
        json!({"lat": 0}),
    ] {
        let (status, _) = api
            .call(
                "PUT",
                "/api/users/me/location",
                Some(&e.token),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }

    let (status, body) = nearby(&api, &a, LAT, LON, 5000).await;
    assert_eq!(status, 200, "{body}");
    let found = nearby_ids(&body);
    let names: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        names,
        vec![b.id.as_str(), c.id.as_str()],
        "nearest first, not me, not the far one"
    );
    assert!(
        found
            .iter()
            .all(|(_, dist)| dist % 500 == 0 && *dist >= 500),
        "{found:?}"
    );
    assert!(
        body["users"][0]["user"].get("email").is_none(),
        "public profiles only"
    );
    // Profiles are kept a few seconds for listings, but a change made through this node shows
    // in the next answer.
    let (status, _) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&b.token),
            Some(json!({"display_name": "ben renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = nearby(&api, &a, LAT, LON, 5000).await;
    assert_eq!(
        body["users"][0]["user"]["display_name"], "ben renamed",
        "{body}"
    );
    // Radius and position limits.
    let (status, _) = nearby(&api, &a, LAT, LON, 50_001).await;
    assert_eq!(status, 400);
    let (status, _) = api.get("/api/nearby-users?lat=abc&lon=1", &a.token).await;
    assert_eq!(status, 400);
    let (status, _) = api
        .get(&format!("/api/nearby-users?lat=91&lon={LON}"), &a.token)
        .await;
    assert_eq!(status, 400);
    // Far from my own published cell: publish first (scanning from made-up places is refused).
    let (status, body) = nearby(&api, &a, north(20_000.0), LON, 5000).await;
    assert_eq!(status, 409, "{body}");
    // Reciprocity: e never opted in.
    let (status, _) = nearby(&api, &e, LAT, LON, 5000).await;
    assert_eq!(status, 403);

    // Blocks hide both ways.
    let (status, _) = api
        .post("/api/blocks", &a.token, json!({"user_id": c.id}))
        .await;
    assert!(status == 200 || status == 201);
    let (_, body) = nearby(&api, &a, LAT, LON, 5000).await;
    assert!(!nearby_ids(&body).iter().any(|(id, _)| *id == c.id));
    let (_, body) = nearby(&api, &c, north(3_000.0), LON, 5000).await;
    assert!(!nearby_ids(&body).iter().any(|(id, _)| *id == a.id));
    assert!(nearby_ids(&body).iter().any(|(id, _)| *id == b.id));

    // Opting out.
    assert_eq!(
        api.call("DELETE", "/api/users/me/location", Some(&a.token), None)
            .await
            .0,
        204
    );
    let (_, body) = nearby(&api, &b, north(300.0), LON, 5000).await;
    assert!(!nearby_ids(&body).iter().any(|(id, _)| *id == a.id));
    let (status, _) = nearby(&api, &a, LAT, LON, 5000).await;
    assert_eq!(status, 403);
}

/// The strongest attacker: free to publish any position at any rate (the one-a-minute limit
/// off), querying from dozens of places around two victims 400 m apart in one cell. Every
/// answer about one is the same as about the other: nothing places them finer than the cell.
#[actix_rt::test]
async fn nearby_cannot_be_trilaterated_below_the_cell() {
    let server = Server::start_with(&[], &[("DOVIE_LOCATION__NEARBY_UPDATE_SECS", "0")]);
    let api = rest(&server);
    let [v1, v2, attacker] = api.register_all(["v1", "v2", "mallory"]).await;
    // Two places in one ~1 km cell, ~400 m apart (the cell of LAT, LON: found by publishing).
    assert_eq!(put_location(&api, &v1, LAT, LON).await, 204);
    let (_, h) = api.get("/api/location-history", &v1.token).await;
    let cell = (
        h["items"][0]["lat"].as_f64().unwrap(),
        h["items"][0]["lon"].as_f64().unwrap(),
    );
    assert_eq!(h["items"][0]["kind"], "nearby");
    assert!(
        cell != (LAT, LON),
        "the published place is the cell, not the position"
    );
    let p1 = (cell.0 - 180.0 * DEG_PER_M, cell.1 - 0.002);
    let p2 = (cell.0 + 200.0 * DEG_PER_M, cell.1 + 0.002);
    assert_eq!(put_location(&api, &v1, p1.0, p1.1).await, 204);
    assert_eq!(put_location(&api, &v2, p2.0, p2.1).await, 204);
    let mut answers = Vec::new();
    for i in 0..36 {
        let angle = (i as f64) * 10f64.to_radians();
        let r = 300.0 + 120.0 * i as f64;
        let (lat, lon) = (
            cell.0 + r * angle.cos() * DEG_PER_M,
            cell.1 + r * angle.sin() * DEG_PER_M / cell.0.to_radians().cos(),
        );
        assert_eq!(put_location(&api, &attacker, lat, lon).await, 204);
        let (status, body) = nearby(&api, &attacker, lat, lon, 10_000).await;
        assert_eq!(status, 200, "{body}");
        let found = nearby_ids(&body);
        let d1 = found.iter().find(|(id, _)| *id == v1.id).map(|f| f.1);
        let d2 = found.iter().find(|(id, _)| *id == v2.id).map(|f| f.1);
        assert!(d1.is_some(), "v1 within 10 km: {found:?}");
        assert_eq!(
            d1, d2,
            "two people of one cell are told apart from ({lat}, {lon})"
        );
        answers.push(d1.unwrap());
    }
    // Distances do vary with the attacker's place: the answers are real, just coarse.
    answers.sort_unstable();
    answers.dedup();
    assert!(answers.len() > 3, "{answers:?}");
}

#[actix_rt::test]
async fn location_rooms_are_found_nearby_and_joined_from_inside() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["ana", "ben"]).await;
    let mut wa = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    let create = |name: &str, lat: f64, radius: f64| json!({"name": name, "lat": lat, "lon": LON, "radius_m": radius});
    let mut ids = Vec::new();
    for (name, lat, radius) in [
        ("plaza", LAT, 500.0),
        ("park", north(2_000.0), 1_000.0),
        ("far", north(100_000.0), 50_000.0),
        ("edge", north(4_000.0), 100.0),
    ] {
        let (status, body) = api
            .post(
                "/api/location-chat-rooms",
                &a.token,
                create(name, lat, radius),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["room"]["type"], "location");
        assert_eq!(body["room"]["location"]["radius_m"], json!(radius));
        ids.push(body["room"]["id"].as_str().unwrap().to_string());
    }
    for bad in [
        create("x", LAT, 99.0),
        create("x", LAT, 50_001.0),
        create(" ", LAT, 500.0),
        create("x", 95.0, 500.0),
        json!({"name": "x", "lat": LAT, "lon": LON}),
    ] {
        let (status, _) = api
            .post("/api/location-chat-rooms", &a.token, bad.clone())
            .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "location", "member_ids": []}),
        )
        .await;
    assert_eq!(status, 400, "location rooms are made at a place");

    let (status, body) = api
        .get(
            &format!("/api/location-chat-rooms?lat={LAT}&lon={LON}&radius_m=5000"),
            &b.token,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let found: Vec<&str> = body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        found,
        vec![ids[0].as_str(), ids[1].as_str(), ids[3].as_str()],
        "nearest first, not the far one"
    );
    let second = &body["rooms"][1];
    let dist = second["distance_m"].as_u64().unwrap();
    assert!((1_950..=2_050).contains(&dist), "{dist}");
    assert_eq!(second["member_count"], 1);
    // Who is in a room is for its members: a stranger sees how many, not who.
    for found in body["rooms"].as_array().unwrap() {
        assert!(found["room"].get("member_ids").is_none(), "{found}");
        assert!(found["room"].get("roles").is_none(), "{found}");
    }
    let (_, mine) = api
        .get(
            &format!("/api/location-chat-rooms?lat={LAT}&lon={LON}&radius_m=5000"),
            &a.token,
        )
        .await;
    assert_eq!(
        mine["rooms"][0]["room"]["member_ids"],
        json!([a.id]),
        "members see the members"
    );
    let (status, _) = api
        .get(
            &format!("/api/location-chat-rooms?lat={LAT}&lon={LON}&radius_m=60000"),
            &b.token,
        )
        .await;
    assert_eq!(status, 400);

    // Joining: from inside the radius only.
    let join = format!("/api/chat-rooms/{}/join", ids[0]);
    let (status, _) = api
        .post(&join, &b.token, json!({"lat": north(800.0), "lon": LON}))
        .await;
    assert_eq!(status, 403, "outside the radius");
    let (status, body) = api
        .post(&join, &b.token, json!({"lat": north(100.0), "lon": LON}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["room"]["member_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(b.id)));
    let joined = wa.expect("user_joined").await;
    assert_eq!(joined["d"]["user_id"], json!(b.id));
    let (status, _) = api
        .post(&join, &b.token, json!({"lat": north(100.0), "lon": LON}))
        .await;
    assert_eq!(status, 200, "joining again is fine");
    api.send(&b, &ids[0], "hello plaza").await;
    let (status, _) = api
        .post(&join, &b.token, json!({"lat": 91, "lon": LON}))
        .await;
    assert_eq!(status, 400);
    let group = api.group(&a, &[]).await;
    let (status, _) = api
        .post(
            &format!("/api/chat-rooms/{group}/join"),
            &b.token,
            json!({"lat": LAT, "lon": LON}),
        )
        .await;
    assert_eq!(status, 409, "groups are not joined by position");
    let (status, _) = api
        .post(
            "/api/chat-rooms/none/join",
            &b.token,
            json!({"lat": LAT, "lon": LON}),
        )
        .await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn suggestions_in_every_language_and_share_requests() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["ana", "ben", "cy"]).await;
    let room = api.group(&a, &[&b]).await;
    let mut wb = Ws::connect(&server, Codec::MsgPack, Auth::Query(&b.token)).await;
    let mut wa = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    for text in [
        "어디야?",
        "Where are you?",
        "今どこ？",
        "你在哪？",
        "你在哪裡？",
        "¿Dónde estás?",
        "Où es-tu ?",
        "Wo bist du?",
    ] {
        let m = api.send(&a, &room, text).await;
        assert_eq!(m["suggest_location"], true, "{text}");
        let s = wb.expect("location_suggestion").await;
        assert_eq!(
            (s["d"]["room_id"].as_str(), s["d"]["message_id"].clone()),
            (Some(room.as_str()), m["id"].clone()),
            "{text}"
        );
    }
    // Over the socket too.
    let r = wa
        .request(
            "send_message",
            json!({"room_id": room, "content": "where r u", "nonce": "n1"}),
        )
        .await;
    assert_eq!(r["d"]["message"]["suggest_location"], true, "{r}");
    wb.expect("location_suggestion").await;
    wa.expect_none("location_suggestion", Duration::from_millis(200))
        .await;
    // Ordinary text: no flag, no event.
    let m = api.send(&a, &room, "where is the meeting doc?").await;
    assert!(
        m.get("suggest_location").is_none() || m["suggest_location"] == false,
        "{m}"
    );
    wb.expect_none("location_suggestion", Duration::from_millis(300))
        .await;

    // Asking a member to share.
    let path = format!("/api/chat-rooms/{room}/location-requests");
    let (status, body) = api.post(&path, &a.token, json!({"user_id": b.id})).await;
    assert_eq!(status, 201, "{body}");
    let asked = wb.expect("location_share_requested").await;
    assert_eq!(
        (
            asked["d"]["room_id"].as_str(),
            asked["d"]["from_user_id"].as_str()
        ),
        (Some(room.as_str()), Some(a.id.as_str()))
    );
    assert_eq!(asked["d"]["request_id"], body["request_id"]);
    assert_eq!(
        api.post(&path, &a.token, json!({"user_id": c.id})).await.0,
        404,
        "not a member"
    );
    assert_eq!(
        api.post(&path, &a.token, json!({"user_id": a.id})).await.0,
        400,
        "not myself"
    );
    assert_eq!(
        api.post(&path, &c.token, json!({"user_id": b.id})).await.0,
        403,
        "a non-member asks"
    );
    api.post("/api/blocks", &b.token, json!({"user_id": a.id}))
        .await;
    assert_eq!(
        api.post(&path, &a.token, json!({"user_id": b.id})).await.0,
        403,
        "blocked"
    );
    wb.expect_none("location_share_requested", Duration::from_millis(200))
        .await;
}

#[actix_rt::test]
async fn location_history_lists_and_forgets() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["ana", "ben"]).await;
    let room = api.group(&a, &[&b]).await;
    let path = format!("/api/chat-rooms/{room}/location");
    api.post(&path, &a.token, json!({"lat": LAT, "lon": LON}))
        .await;
    api.post(
        &path,
        &a.token,
        json!({"lat": LAT, "lon": LON, "live_seconds": 600}),
    )
    .await;
    put_location(&api, &a, LAT, LON).await;
    let (status, body) = api.get("/api/location-history", &a.token).await;
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["nearby", "live", "message"], "newest first");
    assert_eq!(body["items"][2]["room_id"], json!(room));
    assert_eq!(body["items"][2]["lat"], json!(LAT));
    // Paged.
    let (_, page) = api.get("/api/location-history?limit=2", &a.token).await;
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest_page) = api
        .get(
            &format!("/api/location-history?limit=2&cursor={cursor}"),
            &a.token,
        )
        .await;
    assert_eq!(rest_page["items"].as_array().unwrap().len(), 1);
    // Mine only.
    let (_, theirs) = api.get("/api/location-history", &b.token).await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let first = body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/location-history/{first}"),
            Some(&b.token),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/location-history/{first}"),
            Some(&a.token),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/location-history/{first}"),
            Some(&a.token),
            None
        )
        .await
        .0,
        404
    );
    let (_, body) = api.get("/api/location-history", &a.token).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.call("DELETE", "/api/location-history", Some(&a.token), None)
            .await
            .0,
        204
    );
    let (_, body) = api.get("/api/location-history", &a.token).await;
    assert!(body["items"].as_array().unwrap().is_empty());
    let (status, _) = api.get("/api/location-history?limit=0", &a.token).await;
    assert_eq!(status, 400);
}

/// A blocked member does not see the blocker move; a member who leaves stops showing where they
/// are; a deleted room's shares end.
#[actix_rt::test]
async fn blocks_and_leaving_hide_live_shares() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["ana", "ben", "cy"]).await;
    let room = api.group(&a, &[&b, &c]).await;
    let path = format!("/api/chat-rooms/{room}/location");
    let mut wa = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    let mut wb = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    let mut wc = Ws::connect(&server, Codec::Json, Auth::Query(&c.token)).await;
    let (_, body) = api
        .post(
            &path,
            &a.token,
            json!({"lat": LAT, "lon": LON, "live_seconds": 600}),
        )
        .await;
    let share = body["share"]["id"].as_str().unwrap().to_string();
    let (status, _) = api
        .post("/api/blocks", &a.token, json!({"user_id": c.id}))
        .await;
    assert!(status == 200 || status == 201);
    let r = wa
        .request(
            "location_update",
            json!({"share_id": share, "lat": north(50.0), "lon": LON}),
        )
        .await;
    assert_eq!(r["t"], "reply", "{r}");
    wb.expect("location_updated").await;
    wc.expect_none("location_updated", Duration::from_millis(400))
        .await;
    let shares = format!("/api/chat-rooms/{room}/location-shares");
    let (_, seen_by_c) = api.get(&shares, &c.token).await;
    assert!(
        seen_by_c["shares"].as_array().unwrap().is_empty(),
        "{seen_by_c}"
    );
    let (_, seen_by_b) = api.get(&shares, &b.token).await;
    assert_eq!(seen_by_b["shares"].as_array().unwrap().len(), 1);

    // b shares, then leaves: the share ends and the others hear it.
    let (_, body) = api
        .post(
            &path,
            &b.token,
            json!({"lat": LAT, "lon": LON, "live_seconds": 600}),
        )
        .await;
    let b_share = body["share"]["id"].clone();
    assert_eq!(api.remove_participant(&room, &b.id, &b).await, 204);
    let ended = wc.expect("location_share_ended").await;
    assert_eq!(
        (
            ended["d"]["share_id"].clone(),
            ended["d"]["reason"].as_str()
        ),
        (b_share, Some("stopped"))
    );
    let (_, left) = api.get(&shares, &a.token).await;
    let ids: Vec<&str> = left["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.id.as_str()]);

    // The room is deleted: a's share ends.
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/chat-rooms/{room}"),
            Some(&a.token),
            None
        )
        .await
        .0,
        204
    );
    let r = wa
        .request(
            "location_update",
            json!({"share_id": share, "lat": north(90.0), "lon": LON}),
        )
        .await;
    assert_eq!(r["d"]["code"], "conflict", "{r}");
}
