//! Pushes end to end: browsers subscribe like browsers (their own key pairs) at a Web Push
//! service stand-in that checks VAPID and decrypts, iOS devices register tokens at an HTTP/2
//! APNs stand-in that checks the provider token; then members who are away get a push with the
//! right badge, those looking at the room get none, settings, mentions and blocks hold, dead
//! targets are removed only on the answers that say so, reads move badges, a crash loses no
//! queued push, and admins (or anyone, to themselves) send notifications.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::standins::push::{ApnsService, Browser, WebPushService};
use common::{rest, Auth, Rest, Server, User, Ws};
use dovie_protocol::Codec;
use serde_json::{json, Value};

/// How long a push may take to arrive in these tests.
const ARRIVES: Duration = Duration::from_secs(10);
/// How long to wait to be sure nothing arrives.
const QUIET: Duration = Duration::from_millis(1500);

struct Rig {
    server: Server,
    web: WebPushService,
    apns: ApnsService,
    _key_dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let web = WebPushService::start();
    let apns = ApnsService::start();
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("apns.p8");
    std::fs::write(&key_file, &apns.key_pem).unwrap();
    let key_path = key_file.to_string_lossy().to_string();
    let server = Server::start_with(
        &[],
        &[
            ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
            ("DOVIE_PUSH__ALLOWED_ENDPOINT_HOSTS", "[\"127.0.0.1\"]"),
            ("DOVIE_PUSH__VAPID_SUBJECT", "mailto:ops@dovie.example"),
            ("DOVIE_PUSH__APNS__BASE_URL", &apns.base_url),
            ("DOVIE_PUSH__APNS__SANDBOX_URL", &apns.base_url),
            ("DOVIE_PUSH__APNS__KEY_FILE", &key_path),
            ("DOVIE_PUSH__APNS__KEY_ID", &apns.key_id),
            ("DOVIE_PUSH__APNS__TEAM_ID", &apns.team_id),
            ("DOVIE_PUSH__APNS__TOPIC", &apns.topic),
        ],
    );
    Rig {
        server,
        web,
        apns,
        _key_dir: key_dir,
    }
}

impl Rig {
    async fn expect_vapid(&self) {
        let (_, body) = rest(&self.server)
            .call("GET", "/api/push-vapid-key", None, None)
            .await;
        self.web
            .expect_vapid_key(body["public_key"].as_str().expect("public_key"));
    }

    /// Subscribes a new browser of `user`; answers it.
    async fn browser(&self, user: &User, encoding: &str) -> Browser {
        let b = Browser::new(&format!("{}-{}", &user.id[..8], common::uuid_like()));
        let endpoint = self.web.subscribe(&b);
        let (status, body) = rest(&self.server)
            .post(
                "/api/push-subscribe",
                &user.token,
                json!({"endpoint": endpoint, "keys": {"p256dh": b.p256dh(), "auth": b.auth()},
                       "encoding": encoding}),
            )
            .await;
        assert_eq!(status, 201, "subscribe: {body}");
        b
    }
}

async fn send(api: &Rest, user: &User, room: &str, content: &str) -> Value {
    api.send(user, room, content).await
}

async fn settings(api: &Rest, user: &User, change: Value) {
    let (status, body) = api
        .call(
            "PUT",
            "/api/notification-settings",
            Some(&user.token),
            Some(change),
        )
        .await;
    assert_eq!(status, 200, "settings: {body}");
}

#[actix_rt::test]
async fn away_members_get_a_decryptable_push_and_those_looking_get_none() {
    let rig = rig();
    rig.expect_vapid().await;
    let api = rest(&rig.server);
    let [a, b, c, d] = api.register_all(["ann", "bob", "cat", "dan"]).await;
    let room = api.group(&a, &[&b, &c, &d]).await;
    let a_browser = rig.browser(&a, "aes128gcm").await;
    let b_browser = rig.browser(&b, "aes128gcm").await;
    let b_old = rig.browser(&b, "aesgcm").await;
    let c_browser = rig.browser(&c, "aes128gcm").await;
    let d_browser = rig.browser(&d, "aes128gcm").await;
    // Cat has the room on screen; Dan's tab is open but shows no room.
    let mut c_ws = Ws::connect(&rig.server, Codec::Json, Auth::Query(&c.token)).await;
    c_ws.request("active", json!({"room_id": room})).await;
    let mut d_ws = Ws::connect(&rig.server, Codec::MsgPack, Auth::Query(&d.token)).await;
    d_ws.request("active", json!({"room_id": null})).await;

    let m1 = send(&api, &a, &room, "lunch at noon?").await;
    let m2 = send(&api, &a, &room, "or one?").await;

    let got = rig.web.wait_for(&b_browser, 2, ARRIVES).await;
    assert_eq!(got.len(), 2, "both messages pushed to Bob: {got:?}");
    let p = &got[0].payload;
    assert_eq!(p["type"], "new_message");
    assert_eq!(p["room_id"], room.as_str());
    assert_eq!(p["message_id"], m1["id"]);
    assert_eq!(p["seq"], m1["seq"]);
    assert_eq!(p["title"], "ann in g", "sender and room");
    assert_eq!(p["body"], "lunch at noon?");
    assert_eq!(p["badge"], 1, "one unread");
    assert_eq!(p["sound"], "default");
    assert_eq!(got[1].payload["message_id"], m2["id"]);
    assert_eq!(got[1].payload["badge"], 2, "two unread");
    assert_eq!(got[0].encoding, "aes128gcm");
    assert_eq!(
        got[0].topic.as_deref(),
        Some(room.replace('-', "").as_str())
    );
    assert_eq!(got[0].urgency.as_deref(), Some("high"));
    assert!(got[0].ttl.is_some_and(|t| t > 0 && t <= 86_400));
    // An old browser gets the same, in `aesgcm`.
    let old = rig.web.wait_for(&b_old, 2, ARRIVES).await;
    assert_eq!(old.len(), 2);
    assert_eq!(old[0].encoding, "aesgcm");
    assert_eq!(old[0].payload["body"], "lunch at noon?");
    // Dan's open tab shows no room: pushed.
    assert_eq!(rig.web.wait_for(&d_browser, 2, ARRIVES).await.len(), 2);

    tokio::time::sleep(QUIET).await;
    assert!(
        rig.web.delivered_to(&c_browser).is_empty(),
        "Cat looks at the room"
    );
    assert!(
        rig.web.delivered_to(&a_browser).is_empty(),
        "no push to the sender"
    );
    assert!(rig.web.refused().is_empty(), "{:?}", rig.web.refused());

    // Cat leaves the room's screen, then closes the app: pushed again.
    c_ws.request("active", json!({"room_id": null})).await;
    send(&api, &a, &room, "third").await;
    assert_eq!(rig.web.wait_for(&c_browser, 1, ARRIVES).await.len(), 1);
    c_ws.request("active", json!({"room_id": room})).await;
    drop(c_ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&api, &a, &room, "fourth").await;
    let got = rig.web.wait_for(&c_browser, 2, ARRIVES).await;
    assert_eq!(got.len(), 2, "a closed session shows nothing");
    assert_eq!(got[1].payload["body"], "fourth");
    assert_eq!(
        got[1].payload["badge"], 4,
        "looking is not reading: all four unread"
    );

    // `active` refuses what is not a room id.
    let mut ws = Ws::connect(&rig.server, Codec::Json, Auth::Query(&d.token)).await;
    let err = ws.request("active", json!({"room_id": ""})).await;
    assert_eq!(err["t"], "error", "{err}");
    assert_eq!(err["d"]["code"], "validation_failed");
}

#[actix_rt::test]
async fn mutes_levels_mentions_blocks_previews_and_quiet_hours_hold() {
    let rig = rig();
    rig.expect_vapid().await;
    let api = rest(&rig.server);
    let [a, b, c, d, e, f] = api
        .register_all(["ann", "bob", "cat", "dan", "eve", "fay"])
        .await;
    let room = api.group(&a, &[&b, &c, &d, &e, &f]).await;
    let other = api.group(&a, &[&c]).await;
    let [bb, cb, db, eb, fb] = [
        rig.browser(&b, "aes128gcm").await,
        rig.browser(&c, "aes128gcm").await,
        rig.browser(&d, "aes128gcm").await,
        rig.browser(&e, "aes128gcm").await,
        rig.browser(&f, "aes128gcm").await,
    ];
    // Bob: mentions only. Cat: this room muted for an hour. Dan blocked Ann. Eve: no previews.
    // Fay: quiet hours around the clock (badge only).
    settings(
        &api,
        &b,
        json!({"rooms": {room.clone(): {"level": "mentions"}}}),
    )
    .await;
    let later = dovie_actors::now_ms() + 3_600_000;
    settings(
        &api,
        &c,
        json!({"rooms": {room.clone(): {"level": "all", "muted_until": later}}}),
    )
    .await;
    let (status, _) = api
        .post("/api/blocks", &d.token, json!({"user_id": a.id}))
        .await;
    assert_eq!(status, 201);
    settings(&api, &e, json!({"preview": false, "sound": "chime"})).await;
    let hhmm = |ms: i64| {
        let m = ms.rem_euclid(86_400_000) / 60_000;
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    let now = dovie_actors::now_ms();
    settings(
        &api,
        &f,
        json!({"quiet_hours": {"start": hhmm(now - 3_600_000), "end": hhmm(now + 3_600_000), "tz": "UTC"}}),
    )
    .await;

    send(&api, &a, &room, "hello all").await;
    let mention = send(
        &api,
        &a,
        &room,
        &format!("<@{}> and <@{}> look", b.id, "not-a-member"),
    )
    .await;
    assert_eq!(mention["mentions"], json!([b.id]), "members only");
    send(&api, &a, &other, "only for cat").await;

    let got = rig.web.wait_for(&bb, 1, ARRIVES).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].payload["message_id"], mention["id"],
        "only the mention"
    );
    let eve = rig.web.wait_for(&eb, 2, ARRIVES).await;
    assert_eq!(eve.len(), 2);
    assert!(
        eve[0].payload.get("body").is_none(),
        "no preview: {}",
        eve[0].payload
    );
    assert_eq!(eve[0].payload["title"], "ann in g");
    assert_eq!(eve[0].payload["sound"], "chime");
    let fay = rig.web.wait_for(&fb, 2, ARRIVES).await;
    assert_eq!(fay.len(), 2);
    assert_eq!(
        fay[0].payload,
        json!({"type": "badge", "badge": 1}),
        "quiet hours: badge only"
    );
    assert_eq!(fay[1].payload, json!({"type": "badge", "badge": 2}));
    let cat = rig.web.wait_for(&cb, 1, ARRIVES).await;
    assert_eq!(cat.len(), 1, "Cat hears of the other room only");
    assert_eq!(cat[0].payload["room_id"], other.as_str());
    assert_eq!(
        cat[0].payload["badge"], 1,
        "the muted room's unread do not count"
    );
    tokio::time::sleep(QUIET).await;
    assert_eq!(rig.web.delivered_to(&bb).len(), 1);
    assert_eq!(rig.web.delivered_to(&cb).len(), 1);
    assert!(rig.web.delivered_to(&db).is_empty(), "Dan blocked Ann");

    // Off altogether.
    settings(&api, &e, json!({"enabled": false})).await;
    send(&api, &a, &room, "anyone?").await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(rig.web.delivered_to(&eb).len(), 2);
}

#[actix_rt::test]
async fn dead_subscriptions_go_only_when_the_service_says_so() {
    let rig = rig();
    rig.expect_vapid().await;
    let api = rest(&rig.server);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    let room = api.group(&a, &[&b]).await;
    let gone = rig.browser(&b, "aes128gcm").await;
    let missing = rig.browser(&b, "aes128gcm").await;
    let bad = rig.browser(&b, "aes128gcm").await;
    let busy = rig.browser(&b, "aes128gcm").await;
    rig.web.answer(&gone, &[410]);
    rig.web.answer(&missing, &[404]);
    rig.web.answer(&bad, &[400]);
    rig.web.answer(&busy, &[429, 503]);

    send(&api, &a, &room, "one").await;
    // 429 then 503: retried (after Retry-After and backoff), then accepted.
    let got = rig.web.wait_for(&busy, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "retried until accepted");
    assert_eq!(rig.web.attempts(&busy), 3);
    assert_eq!(rig.web.attempts(&gone), 1);
    assert_eq!(rig.web.attempts(&bad), 1, "a 400 is not retried");

    send(&api, &a, &room, "two").await;
    assert_eq!(
        rig.web.wait_for(&bad, 1, ARRIVES).await.len(),
        1,
        "400: kept"
    );
    assert_eq!(rig.web.wait_for(&busy, 2, ARRIVES).await.len(), 2);
    tokio::time::sleep(QUIET).await;
    assert_eq!(rig.web.attempts(&gone), 1, "410: removed, not tried again");
    assert_eq!(rig.web.attempts(&missing), 1, "404: removed");
    // Subscribing again is new (201): the old one is gone.
    let (status, _) = api
        .post(
            "/api/push-subscribe",
            &b.token,
            json!({"endpoint": rig.web.subscribe(&gone), "keys": {"p256dh": gone.p256dh(), "auth": gone.auth()}}),
        )
        .await;
    assert_eq!(status, 201);
}

#[actix_rt::test]
async fn reads_send_badge_only_pushes() {
    let rig = rig();
    rig.expect_vapid().await;
    let api = rest(&rig.server);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    let room = api.group(&a, &[&b]).await;
    let phone = rig.browser(&b, "aes128gcm").await;
    send(&api, &a, &room, "one").await;
    let m2 = send(&api, &a, &room, "two").await;
    assert_eq!(rig.web.wait_for(&phone, 2, ARRIVES).await.len(), 2);
    // Bob reads the first on his laptop (WebSocket), then everything (REST).
    let mut laptop = Ws::connect(&rig.server, Codec::Json, Auth::Query(&b.token)).await;
    laptop
        .request("read", json!({"room_id": room, "seq": 1}))
        .await;
    let got = rig.web.wait_for(&phone, 3, ARRIVES).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].payload, json!({"type": "badge", "badge": 1}));
    assert_eq!(got[2].urgency.as_deref(), Some("low"));
    let (status, _) = api
        .post(
            &format!("/api/chat-rooms/{room}/read"),
            &b.token,
            json!({"seq": m2["seq"]}),
        )
        .await;
    assert_eq!(status, 204);
    let got = rig.web.wait_for(&phone, 4, ARRIVES).await;
    assert_eq!(got.len(), 4);
    assert_eq!(got[3].payload, json!({"type": "badge", "badge": 0}));
}

#[actix_rt::test]
async fn apns_gets_alerts_with_a_provider_token_and_dead_tokens_go() {
    let rig = rig();
    let api = rest(&rig.server);
    let [a, b, c] = api.register_all(["ann", "bob", "cat"]).await;
    let room = api.group(&a, &[&b, &c]).await;
    let token = |i: u8| format!("{:02x}", i).repeat(32);
    let (live, unregistered, bad_token, other_400) = (token(1), token(2), token(3), token(4));
    for (user, t, env) in [
        (&b, &live, "production"),
        (&b, &unregistered, "production"),
        (&c, &bad_token, "sandbox"),
        (&c, &other_400, "production"),
    ] {
        let (status, body) = api
            .post(
                "/api/ios-push-token",
                &user.token,
                json!({"token": t, "environment": env}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    rig.apns.answer(&unregistered, &[(410, "Unregistered")]);
    rig.apns.answer(&bad_token, &[(400, "BadDeviceToken")]);
    rig.apns.answer(&other_400, &[(400, "BadExpirationDate")]);

    let m = send(&api, &a, &room, "hi from ann").await;
    let got = rig.apns.wait_for(&live, 1, ARRIVES).await;
    // The dead tokens are answered, and the answers handled, before the next message (a push
    // expanded before a token's removal may still reach it once).
    for t in [&unregistered, &bad_token, &other_400] {
        assert_eq!(rig.apns.wait_answered(t, 1, ARRIVES).await, 1, "{t}");
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(got.len(), 1, "refused: {:?}", rig.apns.refused());
    let p = &got[0].payload;
    assert_eq!(p["aps"]["alert"]["title"], "ann in g");
    assert_eq!(p["aps"]["alert"]["body"], "hi from ann");
    assert_eq!(p["aps"]["badge"], 1);
    assert_eq!(p["aps"]["sound"], "default");
    assert_eq!(p["aps"]["thread-id"], room.as_str());
    assert_eq!(p["aps"]["mutable-content"], 1);
    assert_eq!(p["message_id"], m["id"]);
    assert_eq!(got[0].push_type, "alert");
    assert_eq!(got[0].priority.as_deref(), Some("10"));

    send(&api, &a, &room, "again").await;
    assert_eq!(rig.apns.wait_for(&live, 2, ARRIVES).await.len(), 2);
    assert_eq!(
        rig.apns.wait_for(&other_400, 1, ARRIVES).await.len(),
        1,
        "another 400 keeps the token"
    );
    tokio::time::sleep(QUIET).await;
    assert!(rig.apns.refused().is_empty(), "{:?}", rig.apns.refused());
    let sent_to = |t: &str| rig.apns.delivered().iter().filter(|d| d.token == t).count();
    assert_eq!(sent_to(&unregistered), 0);
    assert_eq!(sent_to(&bad_token), 0);
    assert_eq!(
        rig.apns.requests(),
        6,
        "four for the first message, two for the second: none twice"
    );
    // Both dead tokens are gone: registering them again is new.
    let (status, _) = api
        .post(
            "/api/ios-push-token",
            &b.token,
            json!({"token": unregistered}),
        )
        .await;
    assert_eq!(status, 201, "410 Unregistered removed the token");
    let (status, _) = api
        .post("/api/ios-push-token", &c.token, json!({"token": bad_token}))
        .await;
    assert_eq!(status, 201, "400 BadDeviceToken removed the token");
    assert_eq!(rig.apns.connections(), 1, "one pooled HTTP/2 connection");
}

#[actix_rt::test]
async fn notifications_go_to_oneself_or_from_an_admin() {
    let rig = rig();
    rig.expect_vapid().await;
    let api = rest(&rig.server);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    let a_browser = rig.browser(&a, "aes128gcm").await;
    let b_browser = rig.browser(&b, "aes128gcm").await;
    let (status, body) = api
        .post(
            "/api/send-notification",
            &a.token,
            json!({"user_id": a.id, "title": "Reminder", "body": "stand-up", "data": {"k": 1}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(body["job_id"].is_string());
    let got = rig.web.wait_for(&a_browser, 1, ARRIVES).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["type"], "notification");
    assert_eq!(got[0].payload["title"], "Reminder");
    assert_eq!(got[0].payload["body"], "stand-up");
    assert_eq!(got[0].payload["data"], json!({"k": 1}));

    let to_bob = json!({"user_id": b.id, "title": "Hi", "body": "x"});
    let (status, _) = api
        .post("/api/send-notification", &a.token, to_bob.clone())
        .await;
    assert_eq!(status, 403, "not an admin");
    for bad in [
        json!({"user_id": a.id, "title": "", "body": "x"}),
        json!({"user_id": a.id, "title": "t".repeat(201), "body": "x"}),
        json!({"user_id": a.id, "title": "t", "body": "x", "data": [1]}),
        json!({"user_id": a.id, "title": "t"}),
    ] {
        let (status, body) = api
            .post("/api/send-notification", &a.token, bad.clone())
            .await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
        .args(["admin", "grant", &a.email, "--data-dir"])
        .arg(rig.server.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let (status, _) = api.post("/api/send-notification", &a.token, to_bob).await;
    assert_eq!(status, 202);
    assert_eq!(rig.web.wait_for(&b_browser, 1, ARRIVES).await.len(), 1);
    let (status, _) = api
        .post(
            "/api/send-notification",
            &a.token,
            json!({"user_id": "nobody", "title": "t", "body": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    tokio::time::sleep(QUIET).await;
    assert_eq!(rig.web.delivered_to(&a_browser).len(), 1, "nothing else");
}

#[actix_rt::test]
async fn a_crash_loses_no_queued_push_and_sends_none_twice() {
    let mut rig = rig();
    rig.expect_vapid().await;
    let api = rest(&rig.server);
    let a = api.register("ann").await;
    let mut members = Vec::new();
    for i in 0..20 {
        members.push(api.register(&format!("m{i}")).await);
    }
    let refs: Vec<&User> = members.iter().collect();
    let room = api.group(&a, &refs).await;
    let mut browsers = Vec::new();
    for m in &members {
        let b = rig.browser(m, "aes128gcm").await;
        // The push service fails the first attempt: every push waits queued for its retry.
        rig.web.answer(&b, &[500]);
        browsers.push(b);
    }
    send(&api, &a, &room, "before the crash").await;
    let deadline = std::time::Instant::now() + ARRIVES;
    while browsers.iter().any(|b| rig.web.attempts(b) == 0) && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        browsers.iter().all(|b| rig.web.attempts(b) == 1),
        "every push attempted once"
    );
    rig.server.kill();
    rig.server.restart();
    for b in &browsers {
        let got = rig.web.wait_for(b, 1, Duration::from_secs(20)).await;
        assert_eq!(got.len(), 1, "delivered after the restart");
        assert_eq!(got[0].payload["body"], "before the crash");
    }
    tokio::time::sleep(QUIET).await;
    for b in &browsers {
        assert_eq!(rig.web.delivered_to(b).len(), 1, "exactly once");
    }
}
