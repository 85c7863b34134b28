//! Ordering, resume and crash tests: many concurrent senders see one order; a reconnecting
//! client gets exactly what it missed; a SIGKILL loses nothing that was acknowledged.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{rest, Auth, Server, Ws};
use dovie_protocol::Codec;
use futures_util::future::join_all;
use serde_json::json;

const FAST: &str =
    "[limits]\nws_rate_per_sec = 100000.0\nws_rate_burst = 100000.0\nws_outbound_queue = 8192\nuser_sends_per_minute = 100000\n";

fn fast_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, FAST).unwrap();
    (
        Server::start_with(&["--config", path.to_str().unwrap()], &[]),
        dir,
    )
}

/// Reads `new_message` seqs for `room` until `count` have arrived (or the timeout).
async fn collect_seqs(ws: &mut Ws, room: &str, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let f = ws
            .next_within(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("only {} of {count} messages arrived", seqs.len()));
        if f["t"] == "new_message" && f["d"]["message"]["room_id"] == room {
            seqs.push(f["d"]["message"]["seq"].as_u64().unwrap());
        }
        assert_ne!(f["t"], "__close", "socket closed while collecting");
    }
    seqs
}

#[actix_rt::test]
async fn fifty_concurrent_senders_all_see_one_gapless_order() {
    const SESSIONS: usize = 50;
    const EACH: usize = 10;
    let (server, _cfg) = fast_server();
    let api = rest(&server);
    let users = join_all((0..SESSIONS).map(|i| {
        let api = &api;
        async move { api.register(&format!("u{i}")).await }
    }))
    .await;
    let others: Vec<&common::User> = users.iter().skip(1).collect();
    let room = api.group(&users[0], &others).await;
    let mut sockets = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let codec = if i % 2 == 0 {
            Codec::MsgPack
        } else {
            Codec::Json
        };
        sockets.push(Ws::connect(&server, codec, Auth::Query(&u.token)).await);
    }
    // Everyone sends at once and reads everything.
    let results = join_all(sockets.iter_mut().enumerate().map(|(i, ws)| {
        let room = room.clone();
        async move {
            for k in 0..EACH {
                let nonce = format!("{i}-{k}");
                ws.send_frame(
                    "send_message",
                    Some(k as u64 + 1),
                    json!({"room_id": room, "content": nonce, "nonce": nonce}),
                )
                .await;
            }
            collect_seqs(ws, &room, SESSIONS * EACH).await
        }
    }))
    .await;
    let expected: Vec<u64> = (1..=(SESSIONS * EACH) as u64).collect();
    for (i, seqs) in results.iter().enumerate() {
        assert_eq!(seqs, &expected, "session {i} saw a different order");
    }
    let history = api.all_messages(&users[0], &room).await;
    assert_eq!(history.len(), SESSIONS * EACH);
    let nonces: HashSet<&str> = history
        .iter()
        .map(|m| m["nonce"].as_str().unwrap())
        .collect();
    assert_eq!(nonces.len(), SESSIONS * EACH, "no duplicates in history");
}

#[actix_rt::test]
async fn resume_replays_exactly_what_was_missed_in_order() {
    let (server, _cfg) = fast_server();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let quiet = api.group(&a, &[&b]).await;
    for i in 0..5 {
        api.send(&a, &room, &format!("before {i}")).await;
    }
    for codec in [Codec::Json, Codec::MsgPack] {
        let last_seen = api.all_messages(&a, &room).await.len() as u64;
        // b is offline while a sends; some edits and deletes happen too.
        let mut missed = Vec::new();
        for i in 0..20 {
            missed.push(api.send(&a, &room, &format!("missed {i}")).await);
        }
        let edited = missed[3]["id"].as_str().unwrap().to_string();
        api.call(
            "PUT",
            &format!("/api/messages/{edited}"),
            Some(&a.token),
            Some(json!({"content": "edited later"})),
        )
        .await;
        let deleted = missed[4]["id"].as_str().unwrap().to_string();
        api.call(
            "DELETE",
            &format!("/api/messages/{deleted}"),
            Some(&a.token),
            None,
        )
        .await;

        let mut ws = Ws::connect(&server, codec, Auth::Query(&b.token)).await;
        ws.send_frame(
            "resume",
            None,
            json!({"rooms": {room.clone(): last_seen, quiet.clone(): 0}}),
        )
        .await;
        let mut replayed = Vec::new();
        let done = loop {
            let f = ws.next().await;
            match f["t"].as_str() {
                Some("new_message") => replayed.push(f["d"]["message"].clone()),
                Some("resume_done") => break f,
                _ => {}
            }
        };
        let seqs: Vec<u64> = replayed
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (last_seen + 1..=last_seen + 20).collect();
        assert_eq!(seqs, expected, "exactly the missed messages, in order");
        assert_eq!(
            replayed[3]["content"], "edited later",
            "edits replay as current state"
        );
        assert_eq!(replayed[4]["deleted"], true, "deletes replay as tombstones");
        assert_eq!(done["d"]["rooms"][&room], last_seen + 20);
        assert_eq!(done["d"]["rooms"][&quiet], 0);
        // Resuming again from the end replays nothing.
        ws.send_frame(
            "resume",
            Some(9),
            json!({"rooms": {room.clone(): last_seen + 20}}),
        )
        .await;
        let f = ws.expect("resume_done").await;
        assert_eq!(f["d"]["rooms"][&room], last_seen + 20);
        ws.expect_none("new_message", Duration::from_millis(200))
            .await;
    }
}

#[actix_rt::test]
async fn a_rooms_resume_error_comes_before_resume_done() {
    let (server, _cfg) = fast_server();
    let api = rest(&server);
    let (a, b, c) = (
        api.register("a").await,
        api.register("b").await,
        api.register("c").await,
    );
    let mine = api.group(&a, &[&b]).await;
    let theirs = api.group(&a, &[&c]).await;
    api.send(&a, &mine, "hello").await;
    // The session's first error waits for the account's language: resume_done waits too.
    let mut ws = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    ws.send_frame(
        "resume",
        None,
        json!({"rooms": {mine.clone(): 0, theirs.clone(): 0}}),
    )
    .await;
    let mut order = Vec::new();
    loop {
        let f = ws.next().await;
        let t = f["t"].as_str().unwrap_or("").to_string();
        if t == "error" {
            assert!(f["d"]["message"].as_str().unwrap().contains(&theirs), "{f}");
        }
        let done = t == "resume_done";
        order.push(t);
        if done {
            assert_eq!(f["d"]["rooms"][&mine], 1, "{f}");
            assert!(f["d"]["rooms"].get(&theirs).is_none(), "{f}");
            break;
        }
    }
    assert_eq!(
        order.iter().filter(|t| *t == "error").count(),
        1,
        "{order:?}"
    );
    assert_eq!(order.last().map(String::as_str), Some("resume_done"));
    ws.expect_none("error", Duration::from_millis(300)).await;
}

#[actix_rt::test]
async fn resume_racing_live_traffic_has_no_gap_and_no_duplicate() {
    let (server, _cfg) = fast_server();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let mut sender = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    for i in 0..30 {
        sender
            .send_frame(
                "send_message",
                None,
                json!({"room_id": room, "content": "x", "nonce": format!("p{i}")}),
            )
            .await;
    }
    collect_seqs(&mut sender, &room, 30).await;
    // b reconnects and resumes from 10 while a keeps sending.
    let mut ws = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    for i in 0..100 {
        sender
            .send_frame(
                "send_message",
                None,
                json!({"room_id": room, "content": "y", "nonce": format!("q{i}")}),
            )
            .await;
        if i == 5 {
            ws.send_frame("resume", None, json!({"rooms": {room.clone(): 10}}))
                .await;
        }
    }
    // Whatever arrived live before the resume answer is fine; from the replay on, b must see
    // every seq after 10 exactly once and in order.
    let mut seqs = Vec::new();
    let mut after_resume = false;
    while seqs.last().copied() != Some(130) {
        let f = ws
            .next_within(Duration::from_secs(20))
            .await
            .expect("stalled");
        if f["t"] == "new_message" {
            let seq = f["d"]["message"]["seq"].as_u64().unwrap();
            if seq == 11 {
                after_resume = true;
            }
            if after_resume {
                seqs.push(seq);
            }
        }
    }
    let expected: Vec<u64> = (11..=130).collect();
    assert_eq!(seqs, expected);
}

#[actix_rt::test]
async fn resume_far_behind_reads_the_store_and_too_far_asks_for_resync() {
    let (server, _cfg) = fast_server();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let mut sender = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    // More than the room actor's memory window (1024), less than the replay cap (2000).
    for i in 0..1500 {
        sender
            .send_frame(
                "send_message",
                None,
                json!({"room_id": room, "content": "m", "nonce": format!("m{i}")}),
            )
            .await;
    }
    collect_seqs(&mut sender, &room, 1500).await;
    let mut ws = Ws::connect(&server, Codec::MsgPack, Auth::Query(&b.token)).await;
    ws.send_frame("resume", None, json!({"rooms": {room.clone(): 0}}))
        .await;
    let seqs = collect_seqs(&mut ws, &room, 1500).await;
    assert_eq!(seqs, (1..=1500).collect::<Vec<u64>>());
    ws.expect("resume_done").await;
    // Past the cap: resync_required instead of a flood.
    for i in 0..600 {
        sender
            .send_frame(
                "send_message",
                None,
                json!({"room_id": room, "content": "m", "nonce": format!("n{i}")}),
            )
            .await;
    }
    collect_seqs(&mut sender, &room, 600).await;
    let mut ws = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    ws.send_frame("resume", None, json!({"rooms": {room.clone(): 0}}))
        .await;
    let r = ws.expect("resync_required").await;
    assert_eq!(r["d"], json!({"room_id": room, "latest_seq": 2100}));
    let done = ws.expect("resume_done").await;
    assert_eq!(done["d"]["rooms"][&room], 2100);
    ws.expect_none("new_message", Duration::from_millis(200))
        .await;
}

#[actix_rt::test]
async fn sigkill_mid_traffic_loses_no_acknowledged_message() {
    let (mut server, _cfg) = fast_server();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let mut ws = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let total = 3000u64;
    let mut sent = 0u64;
    // Send continuously, record acks, and kill the server while acks are still arriving.
    let mut killed = false;
    while sent < total || !killed {
        if sent < total {
            for _ in 0..50 {
                ws.send_frame("send_message", Some(sent), json!({"room_id": room, "content": format!("c{sent}"), "nonce": format!("k{sent}")}))
                    .await;
                sent += 1;
            }
        }
        while let Some(f) = ws
            .next_within(Duration::from_millis(if killed { 500 } else { 1 }))
            .await
        {
            if f["t"] == "reply" {
                let m = &f["d"]["message"];
                acked.insert(
                    m["nonce"].as_str().unwrap().to_string(),
                    m["seq"].as_u64().unwrap(),
                );
            }
            if f["t"] == "__close" {
                break;
            }
        }
        if !killed && acked.len() >= 1000 {
            server.kill();
            killed = true;
        }
        if killed {
            break;
        }
    }
    assert!(killed && !acked.is_empty());
    server.restart();
    let api = rest(&server);
    let history = api.all_messages(&a, &room).await;
    let stored = common::assert_history_accounts_for(&history, &acked);
    // Retrying everything with the same nonces creates only what was never stored.
    let before = history.len();
    let mut ws = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    let mut new = 0;
    for i in 0..sent {
        let nonce = format!("k{i}");
        ws.send_frame(
            "send_message",
            Some(i),
            json!({"room_id": room, "content": format!("c{i}"), "nonce": nonce}),
        )
        .await;
    }
    let mut answered = 0;
    while answered < sent {
        let f = ws
            .next_within(Duration::from_secs(20))
            .await
            .expect("a retry was not answered");
        if f["t"] == "error" {
            panic!("retry failed: {f}");
        }
        if f["t"] != "reply" {
            continue;
        }
        answered += 1;
        let m = &f["d"]["message"];
        match stored.get(m["nonce"].as_str().unwrap()) {
            Some(seq) => assert_eq!(
                m["seq"].as_u64(),
                Some(*seq),
                "a retry of a stored message moved it"
            ),
            None => new += 1,
        }
    }
    let after = api.all_messages(&a, &room).await;
    assert_eq!(after.len(), before + new);
    assert_eq!(after.len() as u64, sent, "every nonce stored exactly once");
    eprintln!(
        "sigkill: sent {sent}, acked {} before the kill, stored {before}, retried-new {new}",
        acked.len()
    );
}
