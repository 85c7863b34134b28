//! WebSocket black-box tests: every command and event, in both codecs, against the real binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use awc::ws::Message;
use common::{rest, Auth, Server, Ws};
use dovie_protocol::Codec;
use serde_json::{json, Value};

const CODECS: [Codec; 2] = [Codec::Json, Codec::MsgPack];

fn config(server_toml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, server_toml).unwrap();
    let p = path.to_str().unwrap().to_string();
    (dir, p)
}

#[actix_rt::test]
async fn auth_by_query_header_and_first_frame_and_failures() {
    let (_d, cfg) = config("[ws]\nauth_timeout_ms = 600\n");
    let server = Server::start_with(&["--config", &cfg], &[]);
    let api = rest(&server);
    let u = api.register("a").await;
    for codec in CODECS {
        for auth in [
            Auth::Query(&u.token),
            Auth::Header(&u.token),
            Auth::Frame(&u.token),
        ] {
            let mut ws = Ws::connect(&server, codec, auth).await;
            let hb = ws.request("ping", json!({})).await;
            assert_eq!(hb["t"], "heartbeat");
            assert!(hb["d"]["server_time"].is_i64());
        }
        // ?format= chooses the codec when no subprotocol is offered.
        let mut ws = Ws::open(&server, codec, &Auth::Query(&u.token), false).await;
        ws.expect("connection_established").await;
        let ok = ws.expect("auth_success").await;
        assert_eq!(ok["d"]["user_id"], u.id.as_str());
        assert!(ok["d"]["session_id"].is_string());
        assert!(ok["d"]["heartbeat_ms"].as_u64().is_some_and(|n| n > 0));

        // A bad token: auth_error, then 4001.
        let mut ws = Ws::open(&server, codec, &Auth::Query("bad.token.x"), true).await;
        let e = ws.expect("auth_error").await;
        assert_eq!(e["d"]["code"], "unauthorized");
        assert_eq!(ws.expect_close().await, 4001);
        // A command before auth: 4001.
        let mut ws = Ws::open(&server, codec, &Auth::None, true).await;
        ws.expect("connection_established").await;
        ws.send_frame("ping", Some(1), json!({})).await;
        ws.expect("auth_error").await;
        assert_eq!(ws.expect_close().await, 4001);
        // Silence past the auth timeout: 4001.
        let mut ws = Ws::open(&server, codec, &Auth::None, true).await;
        ws.expect("auth_error").await;
        assert_eq!(ws.expect_close().await, 4001);
    }
}

#[actix_rt::test]
async fn messages_flow_to_every_session_of_every_member() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    let room = api.group(&a, &[&b]).await;
    for (ca, cb) in [(Codec::Json, Codec::MsgPack), (Codec::MsgPack, Codec::Json)] {
        let mut a1 = Ws::connect(&server, ca, Auth::Query(&a.token)).await;
        let mut a2 = Ws::connect(&server, cb, Auth::Query(&a.token)).await;
        let mut b1 = Ws::connect(&server, cb, Auth::Query(&b.token)).await;
        let mut c1 = Ws::connect(&server, ca, Auth::Query(&c.token)).await;

        let nonce = common::uuid_like();
        let r = a1
            .request(
                "send_message",
                json!({"room_id": room, "content": "hi #там", "nonce": nonce}),
            )
            .await;
        assert_eq!(r["t"], "reply", "{r}");
        let m = &r["d"]["message"];
        assert_eq!(m["content"], "hi #там");
        assert_eq!(m["nonce"], nonce.as_str());
        assert_eq!(m["hashtags"], json!(["там"]));
        let seq = m["seq"].as_u64().unwrap();
        for ws in [&mut a1, &mut a2, &mut b1] {
            let e = ws.expect("new_message").await;
            assert_eq!(e["d"]["message"]["id"], m["id"]);
            assert_eq!(e["d"]["message"]["seq"], seq);
        }
        c1.expect_none("new_message", Duration::from_millis(300))
            .await;

        // Same nonce: the same message, no second event.
        let r2 = a1
            .request(
                "send_message",
                json!({"room_id": room, "content": "hi #там", "nonce": nonce}),
            )
            .await;
        assert_eq!(r2["d"]["message"]["id"], m["id"]);
        b1.expect_none("new_message", Duration::from_millis(300))
            .await;

        // REST sends reach sockets too.
        let rm = api.send(&b, &room, "from rest").await;
        let e = a1.expect("new_message").await;
        assert_eq!(e["d"]["message"]["id"], rm["id"]);

        // Edit, react, unreact, delete.
        let mid = m["id"].as_str().unwrap();
        let r = a1
            .request(
                "edit_message",
                json!({"message_id": mid, "content": "edited"}),
            )
            .await;
        assert_eq!(r["d"]["message"]["content"], "edited");
        let e = b1.expect("message_edited").await;
        assert_eq!(e["d"]["message"]["content"], "edited");
        let r = b1
            .request(
                "edit_message",
                json!({"message_id": mid, "content": "hijack"}),
            )
            .await;
        assert_eq!(
            (r["t"].as_str(), r["d"]["code"].as_str()),
            (Some("error"), Some("forbidden"))
        );

        let r = b1
            .request("react", json!({"message_id": mid, "emoji": "❤️"}))
            .await;
        assert_eq!(r["t"], "reply");
        let e = a2.expect("message_liked").await;
        assert_eq!(e["d"]["user_id"], b.id.as_str());
        assert_eq!(e["d"]["emoji"], "❤️");
        assert_eq!(e["d"]["reactions"], json!({"❤️": [b.id]}));
        b1.request("unreact", json!({"message_id": mid, "emoji": "❤️"}))
            .await;
        let e = a2.expect("message_liked").await;
        assert_eq!(e["d"]["reactions"], json!({}));

        let r = c1
            .request("delete_message", json!({"message_id": mid}))
            .await;
        assert_eq!(r["d"]["code"], "forbidden");
        let r = a1
            .request("delete_message", json!({"message_id": mid}))
            .await;
        assert_eq!(r["t"], "reply");
        let e = b1.expect("message_deleted").await;
        assert_eq!(
            e["d"],
            json!({"room_id": room, "message_id": mid, "seq": seq})
        );

        // Read and delivered receipts go to the members.
        b1.request("delivered", json!({"room_id": room, "seq": seq}))
            .await;
        let e = a1.expect("message_delivered").await;
        assert_eq!(
            e["d"],
            json!({"room_id": room, "user_id": b.id, "seq": seq})
        );
        b1.request("read", json!({"room_id": room, "seq": seq}))
            .await;
        let e = a1.expect("message_read").await;
        assert_eq!(e["d"]["seq"], seq);

        // Non-members are refused.
        let r = c1
            .request(
                "send_message",
                json!({"room_id": room, "content": "x", "nonce": "z"}),
            )
            .await;
        assert_eq!(r["d"]["code"], "forbidden");
        let r = c1.request("read", json!({"room_id": room, "seq": 1})).await;
        assert_eq!(r["d"]["code"], "forbidden");
        let r = a1
            .request(
                "send_message",
                json!({"room_id": "no-such-room", "content": "x", "nonce": "z"}),
            )
            .await;
        assert_eq!(r["d"]["code"], "not_found");
    }
}

#[actix_rt::test]
async fn typing_is_not_echoed_and_expires_on_its_own() {
    let server = Server::start();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    for codec in CODECS {
        let mut a1 = Ws::connect(&server, codec, Auth::Query(&a.token)).await;
        let mut b1 = Ws::connect(&server, codec, Auth::Query(&b.token)).await;
        a1.request("typing_start", json!({"room_id": room})).await;
        let e = b1.expect("typing_start").await;
        assert_eq!(e["d"], json!({"room_id": room, "user_id": a.id}));
        a1.request("typing_stop", json!({"room_id": room})).await;
        b1.expect("typing_stop").await;
        a1.expect_none("typing_start", Duration::from_millis(200))
            .await;
        a1.expect_none("typing_stop", Duration::from_millis(10))
            .await;
    }
    let mut a1 = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    let mut b1 = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    a1.request("typing_start", json!({"room_id": room})).await;
    b1.expect("typing_start").await;
    let started = std::time::Instant::now();
    let e = b1.expect("typing_stop").await;
    let took = started.elapsed();
    assert_eq!(e["d"]["user_id"], a.id.as_str());
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "expired after {took:?}"
    );
}

#[actix_rt::test]
async fn presence_and_membership_events() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    let room = api.group(&a, &[&b]).await;
    let mut a1 = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let b1 = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    let e = a1.expect("user_online").await;
    assert_eq!(e["d"]["user_id"], b.id.as_str());
    // A second device is not a second "online".
    let b2 = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    a1.expect_none("user_online", Duration::from_millis(300))
        .await;
    drop(b1);
    a1.expect_none("user_offline", Duration::from_millis(300))
        .await;
    drop(b2);
    let e = a1.expect("user_offline").await;
    assert_eq!(e["d"]["user_id"], b.id.as_str());
    assert!(e["d"]["last_seen_at"].is_i64());

    let mut c1 = Ws::connect(&server, Codec::Json, Auth::Query(&c.token)).await;
    api.post(
        &format!("/api/chat-rooms/{room}/participants"),
        &a.token,
        json!({"user_ids": [c.id]}),
    )
    .await;
    let e = a1.expect("user_joined").await;
    assert_eq!(e["d"], json!({"room_id": room, "user_id": c.id}));
    let e = c1.expect("room_updated").await;
    assert_eq!(e["d"]["room"]["member_ids"].as_array().unwrap().len(), 3);
    api.remove_participant(&room, &c.id, &c).await;
    let e = a1.expect("user_left").await;
    assert_eq!(e["d"]["user_id"], c.id.as_str());
    c1.expect("user_left").await;
    // c no longer receives the room's messages.
    api.send(&a, &room, "after c left").await;
    a1.expect("new_message").await;
    c1.expect_none("new_message", Duration::from_millis(300))
        .await;
}

#[actix_rt::test]
async fn malformed_and_oversized_frames() {
    let (_d, cfg) = config("[limits]\nmax_frame_bytes = 8192\n");
    let server = Server::start_with(&["--config", &cfg], &[]);
    let api = rest(&server);
    let a = api.register("a").await;
    let room = api.group(&a, &[]).await;
    for codec in CODECS {
        let mut ws = Ws::connect(&server, codec, Auth::Query(&a.token)).await;
        ws.send_raw(Message::Binary(bytes::Bytes::from_static(&[
            0xc1, 0xff, 0x00,
        ])))
        .await;
        let e = ws.expect("error").await;
        assert_eq!(e["d"]["code"], "bad_request");
        ws.send_raw(Message::Text("{\"t\":".into())).await;
        ws.expect("error").await;
        ws.send_frame("no_such_command", Some(5), json!({})).await;
        let e = ws.expect("error").await;
        assert_eq!(
            (e["id"].as_u64(), e["d"]["code"].as_str()),
            (Some(5), Some("bad_request"))
        );
        let r = ws.request("send_message", json!({"room_id": 7})).await;
        assert_eq!(r["d"]["code"], "validation_failed");
        let r = ws
            .request(
                "send_message",
                json!({"room_id": room, "content": "x".repeat(4001), "nonce": "n"}),
            )
            .await;
        assert_eq!(r["d"]["code"], "validation_failed");
        // Still alive after all that.
        let r = ws
            .request(
                "send_message",
                json!({"room_id": room, "content": "still here", "nonce": common::uuid_like()}),
            )
            .await;
        assert_eq!(r["t"], "reply");
        // A frame past the size limit: error, then close 1009.
        ws.send_frame(
            "send_message",
            Some(9),
            json!({"room_id": room, "content": "y".repeat(9000)}),
        )
        .await;
        assert_eq!(ws.expect_close().await, 1009);
    }
    // Nothing malformed was stored.
    let all = api.all_messages(&a, &room).await;
    assert_eq!(all.len(), 2);
}

#[actix_rt::test]
async fn rate_limit_answers_then_closes_4029() {
    let (_d, cfg) =
        config("[limits]\nws_rate_per_sec = 5.0\nws_rate_burst = 10.0\nws_max_strikes = 20\n");
    let server = Server::start_with(&["--config", &cfg], &[]);
    let api = rest(&server);
    let a = api.register("a").await;
    for codec in CODECS {
        let mut ws = Ws::connect(&server, codec, Auth::Query(&a.token)).await;
        for i in 0..10 {
            ws.send_frame("ping", Some(i), json!({})).await;
        }
        for _ in 0..10 {
            assert_eq!(ws.expect("heartbeat").await["t"], "heartbeat");
        }
        ws.send_frame("ping", Some(100), json!({})).await;
        let e = ws.expect("error").await;
        assert_eq!(
            (e["id"].as_u64(), e["d"]["code"].as_str()),
            (Some(100), Some("rate_limited"))
        );
        for i in 0..40 {
            ws.send_frame("ping", Some(200 + i), json!({})).await;
        }
        assert_eq!(ws.expect_close().await, 4029);
    }
}

#[actix_rt::test]
async fn a_client_that_does_not_read_is_closed_4008() {
    let (_d, cfg) = config(
        "[limits]\nws_outbound_queue = 64\nws_rate_per_sec = 100000.0\nws_rate_burst = 100000.0\nuser_sends_per_minute = 100000\n",
    );
    let server = Server::start_with(&["--config", &cfg], &[]);
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let mut slow = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    let mut fast = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    // Big messages fill the socket buffers and then the bounded queue while `slow` reads
    // nothing; `fast` drains its own copies between bursts.
    let content = "z".repeat(3900);
    let mut closed = None;
    'send: for burst in 0..600 {
        for i in 0..10 {
            let nonce = format!("n{burst}-{i}");
            fast.send_frame(
                "send_message",
                None,
                json!({"room_id": room, "content": content, "nonce": nonce}),
            )
            .await;
        }
        // `fast` reads its own copies of the burst before sending the next one, so it never
        // falls behind however slow the machine is.
        let mut copies = 0;
        while copies < 10 {
            let f = fast
                .next_within(Duration::from_secs(30))
                .await
                .expect("fast gets its copies");
            assert_ne!(f["t"], "__close", "the reading client must not be closed");
            if f["t"] == "new_message" {
                copies += 1;
            }
        }
        if burst % 20 == 19 {
            // Has the slow reader been closed yet? Peek without reading its backlog of events.
            if let Ok(n) = api
                .get("/metrics", &a.token)
                .await
                .1
                .as_str()
                .map(str::to_string)
                .ok_or(())
            {
                if n.contains("dovie_ws_connections{codec=\"json\"} 0") {
                    closed = Some(burst);
                    break 'send;
                }
            }
        }
    }
    assert!(closed.is_some(), "the slow reader was never closed");
    let code = loop {
        let f = slow
            .next_within(Duration::from_secs(20))
            .await
            .expect("no close frame for the slow reader");
        if f["t"] == "__close" {
            break f["code"].as_u64().unwrap();
        }
    };
    assert_eq!(code, 4008);
    // The reading client is unaffected.
    let r = fast.request("ping", json!({})).await;
    assert_eq!(r["t"], "heartbeat");
}

#[actix_rt::test]
async fn logout_kicks_that_sessions_sockets_with_4003() {
    let server = Server::start();
    let api = rest(&server);
    let a = api.register("a").await;
    let (_, login) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": a.email, "password": "correct horse"})),
        )
        .await;
    let other = login["access_token"].as_str().unwrap().to_string();
    for codec in CODECS {
        let mut kicked = Ws::connect(&server, codec, Auth::Query(&a.token)).await;
        let mut kept = Ws::connect(&server, codec, Auth::Query(&other)).await;
        if codec == Codec::MsgPack {
            let (s, _) = api
                .call("POST", "/api/auth/logout", Some(&a.token), None)
                .await;
            assert_eq!(s, 204);
        } else {
            // JSON pass: log out a fresh login, keep `a.token` for the msgpack pass.
            kicked = {
                let (_, l) = api
                    .call(
                        "POST",
                        "/api/auth/login",
                        None,
                        Some(json!({"email": a.email, "password": "correct horse"})),
                    )
                    .await;
                let t = l["access_token"].as_str().unwrap().to_string();
                let ws = Ws::connect(&server, codec, Auth::Query(&t)).await;
                api.call("POST", "/api/auth/logout", Some(&t), None).await;
                ws
            };
        }
        let e = kicked.expect("force_logout").await;
        assert!(e["d"]["reason"].is_string());
        assert_eq!(kicked.expect_close().await, 4003);
        let r = kept.request("ping", json!({})).await;
        assert_eq!(r["t"], "heartbeat", "other login sessions stay connected");
    }
    // The revoked token cannot reconnect.
    let mut ws = Ws::open(&server, Codec::Json, &Auth::Query(&a.token), true).await;
    ws.expect("auth_error").await;
    assert_eq!(ws.expect_close().await, 4001);
}

#[actix_rt::test]
async fn sigterm_sends_maintenance_and_closes_1001() {
    let mut server = Server::start();
    let api = rest(&server);
    let a = api.register("a").await;
    let mut j = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    let mut m = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let addr = server.addr.clone();
    let exited = std::thread::spawn(move || server.terminate());
    for ws in [&mut j, &mut m] {
        let e = ws.expect("server_maintenance").await;
        assert!(e["d"]["message"].is_string());
        assert_eq!(ws.expect_close().await, 1001);
    }
    assert!(exited.join().unwrap(), "exit status after SIGTERM");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed"
    );
}

#[actix_rt::test]
async fn a_silent_peer_is_dropped_after_the_client_timeout() {
    let (_d, cfg) = config("[ws]\nheartbeat_ms = 200\nclient_timeout_ms = 700\n");
    let server = Server::start_with(&["--config", &cfg], &[]);
    let api = rest(&server);
    let a = api.register("a").await;
    let mut silent = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut alive = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    // `alive` keeps talking (and answers pings while reading); `silent` reads nothing, so it
    // sends no pong and no frame.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let r = alive.request("ping", json!({})).await;
        assert_eq!(r["t"], "heartbeat");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        silent.expect_close().await,
        1001,
        "the silent peer was dropped"
    );
    let r = alive.request("ping", json!({})).await;
    assert_eq!(r["t"], "heartbeat", "the talking peer stays");
}

#[actix_rt::test]
async fn a_users_send_quota_counts_every_device_and_path() {
    let (_d, cfg) = config("[limits]\nuser_sends_per_minute = 6\n");
    let server = Server::start_with(&["--config", &cfg], &[]);
    let api = rest(&server);
    let a = api.register("a").await;
    let room = api.group(&a, &[]).await;
    common::fit_in_one_quota_window(std::time::Duration::from_secs(15)).await;
    let mut phone = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut laptop = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    for i in 0..2 {
        let r = phone
            .request(
                "send_message",
                json!({"room_id": room, "content": "p", "nonce": format!("p{i}")}),
            )
            .await;
        assert_eq!(r["t"], "reply");
        let r = laptop
            .request(
                "send_message",
                json!({"room_id": room, "content": "l", "nonce": format!("l{i}")}),
            )
            .await;
        assert_eq!(r["t"], "reply");
        api.send(&a, &room, "rest").await;
    }
    // Six sent: the seventh, from anywhere, is refused and stores nothing.
    let r = phone
        .request(
            "send_message",
            json!({"room_id": room, "content": "x", "nonce": "x"}),
        )
        .await;
    assert_eq!(
        (r["t"].as_str(), r["d"]["code"].as_str()),
        (Some("error"), Some("rate_limited"))
    );
    let (s, e) = api
        .post(
            &format!("/api/chat-rooms/{room}/messages"),
            &a.token,
            json!({"content": "y"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(api.all_messages(&a, &room).await.len(), 6);
}

/// A raw HTTP exchange on a TCP connection: writes `request`, reads one response head.
async fn raw_exchange(stream: &mut tokio::net::TcpStream, request: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            return (head, buf[end + 4..].to_vec());
        }
        assert!(std::time::Instant::now() < deadline, "no response head");
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads WebSocket frames (server to client) until `n` arrived.
async fn raw_frames(stream: &mut tokio::net::TcpStream, leftover: Vec<u8>, n: usize) -> Vec<Value> {
    use actix_http::ws::{OpCode, Parser};
    use tokio::io::AsyncReadExt;
    let mut buf = bytes::BytesMut::from(&leftover[..]);
    let mut out = Vec::new();
    while out.len() < n {
        while let Some((_, op, payload)) = Parser::parse(&mut buf, false, 1 << 20).unwrap() {
            assert_eq!(op, OpCode::Binary, "msgpack events are binary frames");
            out.push(Codec::MsgPack.decode::<Value>(&payload.unwrap()).unwrap());
        }
        if out.len() >= n {
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(&mut buf))
            .await
            .expect("frames in time")
            .unwrap();
        assert!(n > 0, "closed early");
    }
    out
}

fn upgrade_request(path_and_query: &str, extra: &str) -> String {
    format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: dovie\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

#[actix_rt::test]
async fn both_upgrade_paths_speak_the_same_protocol_and_refuse_bad_upgrades() {
    let server = Server::start();
    let api = rest(&server);
    let u = api.register("raw").await;
    let addr = server.addr.as_str();

    // A fresh connection: the lean transport answers the upgrade itself.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = upgrade_request(
        &format!("/ws?token={}", u.token),
        "Sec-WebSocket-Protocol: chat, dovie.msgpack.v1\r\n",
    );
    let (head, rest) = raw_exchange(&mut s, &req).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(
        lower.contains("sec-websocket-protocol: dovie.msgpack.v1"),
        "{head}"
    );
    let frames = raw_frames(&mut s, rest, 2).await;
    assert_eq!(frames[0]["t"], "connection_established");
    assert_eq!(frames[1]["t"], "auth_success");
    assert_eq!(frames[1]["d"]["user_id"], u.id.as_str());

    // A keep-alive connection that first served REST: actix-web serves the upgrade.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (head, _) = raw_exchange(&mut s, "GET /health HTTP/1.1\r\nHost: dovie\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The health body is small and already read with the head or right after it; drain it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut sink = [0u8; 4096];
    let _ = s.try_read(&mut sink);
    let req = upgrade_request(&format!("/ws?format=msgpack&token={}", u.token), "");
    let (head, rest) = raw_exchange(&mut s, &req).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let frames = raw_frames(&mut s, rest, 2).await;
    assert_eq!(frames[0]["t"], "connection_established");
    assert_eq!(frames[1]["t"], "auth_success");

    // Refusals on the lean path: the API's error body, the connection closed.
    for (req, status, code) in [
        (
            "GET /ws HTTP/1.1\r\nHost: dovie\r\n\r\n".to_string(),
            "400",
            "bad_request",
        ),
        (upgrade_request("/ws?format=xml", ""), "400", "bad_request"),
        (
            upgrade_request("/ws", &format!("X-Big: {}\r\n", "a".repeat(9000))),
            "400",
            "bad_request",
        ),
    ] {
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (head, mut body) = raw_exchange(&mut s, &req).await;
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut body))
            .await
            .expect("closed in time")
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
    }
}

/// The delivery series count what reached sessions: one `ws_events_total` per event and session
/// (a user's two devices count twice), one `send_delivered` and one `send_durable` observation
/// per message.
#[actix_rt::test]
async fn delivery_metrics_count_sessions_and_messages() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    let room = api.group(&a, &[&b, &c]).await;
    let mut sessions = vec![
        Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await,
        Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await,
        Ws::connect(&server, Codec::MsgPack, Auth::Query(&b.token)).await,
        Ws::connect(&server, Codec::Json, Auth::Query(&c.token)).await,
    ];
    let series = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let scrape = || async {
        let (s, body) = api.get("/metrics", &a.token).await;
        assert_eq!(s, 200);
        body.as_str().unwrap().to_string()
    };
    let before = scrape().await;
    for i in 0..5 {
        let r = sessions[0]
            .request(
                "send_message",
                json!({"room_id": room, "content": format!("m{i}"), "nonce": format!("n{i}")}),
            )
            .await;
        assert_eq!(r["t"], "reply", "{r}");
    }
    for s in &mut sessions {
        for _ in 0..5 {
            s.expect("new_message").await;
        }
    }
    let after = scrape().await;
    let delta = |name: &str| series(&after, name) - series(&before, name);
    assert_eq!(delta("dovie_ws_events_total{type=\"new_message\"}"), 20.0);
    assert_eq!(delta("dovie_send_delivered_seconds_count"), 5.0);
    assert_eq!(delta("dovie_send_durable_seconds_count"), 5.0);
}

/// A new room is announced to its founding members with one `room_updated` listing them all,
/// not a `user_joined` per founding member (members² events for a large group); later joins
/// still announce `user_joined`.
#[actix_rt::test]
async fn a_new_room_is_one_room_updated_for_its_founders() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c, d] = api.register_all(["a", "b", "c", "d"]).await;
    let mut b1 = Ws::connect(&server, Codec::MsgPack, Auth::Query(&b.token)).await;
    let room = api.group(&a, &[&b, &c]).await;
    let e = b1.expect("room_updated").await;
    assert_eq!(e["d"]["room"]["id"], room.as_str());
    assert_eq!(e["d"]["room"]["member_ids"].as_array().unwrap().len(), 3);
    b1.expect_none("user_joined", Duration::from_millis(300))
        .await;
    b1.expect_none("room_updated", Duration::from_millis(100))
        .await;
    api.post(
        &format!("/api/chat-rooms/{room}/participants"),
        &a.token,
        json!({"user_ids": [d.id]}),
    )
    .await;
    let e = b1.expect("user_joined").await;
    assert_eq!(e["d"], json!({"room_id": room, "user_id": d.id}));
}

/// `send_message` on the WebSocket checks what REST checks: a nonce over 128 bytes (or not
/// printable ASCII) is refused and stores nothing; an empty `reply_to` means no reply.
#[actix_rt::test]
async fn ws_sends_are_checked_like_rest_sends() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["a", "b"]).await;
    let room = api.group(&a, &[&b]).await;
    for codec in CODECS {
        let mut ws = Ws::connect(&server, codec, Auth::Query(&a.token)).await;
        for nonce in ["x".repeat(129), "é".repeat(65)] {
            let r = ws
                .request(
                    "send_message",
                    json!({"room_id": room, "content": "hi", "nonce": nonce}),
                )
                .await;
            assert_eq!(r["t"], "error", "{r}");
            assert_eq!(r["d"]["code"], "validation_failed");
        }
        let r = ws
            .request(
                "send_message",
                json!({"room_id": room, "content": "hi", "nonce": "x".repeat(128), "reply_to": ""}),
            )
            .await;
        assert_eq!(r["t"], "reply", "{r}");
        assert!(
            r["d"]["message"].get("reply_to").is_none_or(Value::is_null),
            "{r}"
        );
        let (s, _) = api
            .post(
                &format!("/api/chat-rooms/{room}/messages"),
                &a.token,
                json!({"content": "hi", "nonce": "x".repeat(129)}),
            )
            .await;
        assert_eq!(s, 400);
    }
    // The accepted sends (one per codec, the same nonce) are one message; the refused ones none.
    assert_eq!(
        api.all_messages(&a, &room).await.len(),
        1,
        "same nonce: one message"
    );
}
