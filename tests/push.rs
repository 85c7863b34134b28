//! Push registration through the public interface: the cluster's VAPID key (kept across
//! restarts, one for every node), browsers' Web Push subscriptions (checked like a push service
//! would need them, idempotent per endpoint, nothing stored on bad input) and APNs tokens.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use common::{rest, Server};
use serde_json::{json, Value};

/// A browser's subscription keys: a fresh P-256 key pair's public point and a 16-byte secret.
fn browser_keys() -> Value {
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    json!({
        "p256dh": B64URL.encode(key.public_key().to_sec1_bytes()),
        "auth": B64URL.encode(rand::random::<[u8; 16]>()),
    })
}

fn node() -> Server {
    // A loopback "push service" is allowed only where private addresses are (as in tests).
    Server::start_with(
        &[],
        &[
            ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
            (
                "DOVIE_PUSH__ALLOWED_ENDPOINT_HOSTS",
                "[\"127.0.0.1\", \"*.push.example\"]",
            ),
        ],
    )
}

#[actix_rt::test]
async fn the_vapid_key_is_a_p256_point_kept_across_restarts() {
    let mut server = node();
    let api = rest(&server);
    let (status, body) = api.call("GET", "/api/push-vapid-key", None, None).await;
    assert_eq!(status, 200, "no token needed");
    let key = body["public_key"].as_str().expect("public_key").to_string();
    let point = B64URL.decode(&key).expect("base64url");
    assert_eq!(point.len(), 65);
    assert!(p256::PublicKey::from_sec1_bytes(&point).is_ok());
    // Even after a crash: the key was stored before it was shown.
    server.kill();
    server.restart();
    let (_, again) = rest(&server)
        .call("GET", "/api/push-vapid-key", None, None)
        .await;
    assert_eq!(
        again["public_key"],
        key.as_str(),
        "the same key after a restart"
    );
}

#[actix_rt::test]
async fn subscriptions_are_checked_idempotent_and_removable() {
    let server = node();
    let api = rest(&server);
    let a = api.register("a").await;
    let endpoint = "http://127.0.0.1:9/push/browser-1";
    let keys = browser_keys();
    let (status, _) = api
        .call(
            "POST",
            "/api/push-subscribe",
            None,
            Some(json!({"endpoint": endpoint, "keys": keys})),
        )
        .await;
    assert_eq!(status, 401);

    // Bad input: a clear error, nothing stored (the good subscription after them is new).
    let mut off_curve = B64URL
        .decode(keys["p256dh"].as_str().unwrap_or_default())
        .unwrap_or_default();
    off_curve[64] ^= 1;
    let bad = [
        json!({"endpoint": "https://evil.example/push", "keys": keys}),
        json!({"endpoint": "ftp://127.0.0.1/push", "keys": keys}),
        json!({"endpoint": endpoint, "keys": {"p256dh": B64URL.encode(&off_curve), "auth": keys["auth"]}}),
        json!({"endpoint": endpoint, "keys": {"p256dh": "AAAA", "auth": keys["auth"]}}),
        json!({"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": B64URL.encode([1u8; 8])}}),
        json!({"endpoint": endpoint, "keys": keys, "encoding": "gzip"}),
        json!({"endpoint": endpoint}),
    ];
    for body in bad {
        let (status, answer) = api
            .post("/api/push-subscribe", &a.token, body.clone())
            .await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], "validation_failed", "{answer}");
    }

    let (status, first) = api
        .post(
            "/api/push-subscribe",
            &a.token,
            json!({"endpoint": endpoint, "keys": keys}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let id = first["subscription"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(first["subscription"]["endpoint"], endpoint);
    assert_eq!(first["subscription"]["encoding"], "aes128gcm");
    // The same endpoint again (new keys, old encoding): 200, the same id.
    let (status, again) = api
        .post(
            "/api/push-subscribe",
            &a.token,
            json!({"endpoint": endpoint, "keys": browser_keys(), "encoding": "aesgcm"}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["subscription"]["id"], id.as_str());
    assert_eq!(again["subscription"]["encoding"], "aesgcm");

    // Unsubscribe: 204 (twice too), then subscribing is new again.
    for _ in 0..2 {
        let (status, _) = api
            .call(
                "DELETE",
                "/api/push-unsubscribe",
                Some(&a.token),
                Some(json!({"endpoint": endpoint})),
            )
            .await;
        assert_eq!(status, 204);
    }
    let (status, _) = api
        .post(
            "/api/push-subscribe",
            &a.token,
            json!({"endpoint": endpoint, "keys": keys}),
        )
        .await;
    assert_eq!(status, 201);
}

#[actix_rt::test]
async fn a_private_address_is_no_push_service_by_default() {
    // The default configuration: the public push services only, no private addresses.
    let server = Server::start();
    let api = rest(&server);
    let a = api.register("a").await;
    for endpoint in [
        "http://127.0.0.1:9/push/1",
        "https://127.0.0.1/push/1",
        "https://[::1]/push/1",
        "https://localhost/push/1",
        "http://fcm.googleapis.com/fcm/send/x",
    ] {
        let (status, _) = api
            .post(
                "/api/push-subscribe",
                &a.token,
                json!({"endpoint": endpoint, "keys": browser_keys()}),
            )
            .await;
        assert_eq!(status, 400, "{endpoint}");
    }
    let (status, body) = api
        .post(
            "/api/push-subscribe",
            &a.token,
            json!({"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": browser_keys()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[actix_rt::test]
async fn ios_tokens_are_hex_and_removable() {
    let server = node();
    let api = rest(&server);
    let a = api.register("a").await;
    let token = "AB".repeat(32);
    for bad in [
        json!({"token": "xyz"}),
        json!({"token": "g".repeat(64)}),
        json!({"token": "a".repeat(63)}),
        json!({"token": token, "environment": "staging"}),
    ] {
        let (status, body) = api.post("/api/ios-push-token", &a.token, bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {body}");
    }
    let (status, body) = api
        .post(
            "/api/ios-push-token",
            &a.token,
            json!({"token": token, "environment": "sandbox"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["token"]["token"],
        "ab".repeat(32),
        "stored in lower case"
    );
    assert_eq!(body["token"]["environment"], "sandbox");
    let (status, body) = api
        .post("/api/ios-push-token", &a.token, json!({"token": token}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token"]["environment"], "production");
    let (status, _) = api
        .call(
            "DELETE",
            "/api/ios-push-token",
            Some(&a.token),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .post("/api/ios-push-token", &a.token, json!({"token": token}))
        .await;
    assert_eq!(status, 201, "removed, so new again");
}

#[actix_rt::test]
async fn notification_settings_change_in_part_and_only_for_my_rooms() {
    let server = node();
    let api = rest(&server);
    let [a, b] = api.register_all(["a", "b"]).await;
    let room = api.group(&a, &[]).await;
    let theirs = api.group(&b, &[]).await;
    let path = "/api/notification-settings";
    let (status, body) = api.get(path, &a.token).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["settings"],
        json!({"enabled": true, "sound": "default", "preview": true, "quiet_hours": null, "rooms": {}}),
        "the defaults"
    );
    let put = |body: Value| {
        let api = rest(&server);
        let token = a.token.clone();
        async move { api.call("PUT", path, Some(&token), Some(body)).await }
    };
    let (status, body) = put(json!({
        "sound": "chime",
        "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Asia/Seoul"},
        "rooms": {room.clone(): {"level": "mentions", "muted_until": 1_900_000_000_000i64}}
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    // A later change is partial: what it does not name stays.
    let (status, body) = put(json!({"preview": false})).await;
    assert_eq!(status, 200, "{body}");
    let s = &body["settings"];
    assert_eq!(
        (s["sound"].as_str(), s["preview"].as_bool()),
        (Some("chime"), Some(false))
    );
    assert_eq!(s["quiet_hours"]["tz"], "Asia/Seoul");
    assert_eq!(s["rooms"][&room]["level"], "mentions");

    // Bad input: a clear error and nothing changed.
    for bad in [
        json!({"sound": "trumpet"}),
        json!({"quiet_hours": {"start": "22:00", "end": "31:00", "tz": "Asia/Seoul"}}),
        json!({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Moon/Base"}}),
        json!({"rooms": {room.clone(): {"level": "loud"}}}),
        json!({"volume": 11}),
    ] {
        let (status, answer) = put(bad.clone()).await;
        assert_eq!(status, 400, "{bad} → {answer}");
    }
    let (status, answer) = put(json!({"rooms": {theirs.clone(): {"level": "none"}}})).await;
    assert_eq!(status, 403, "not my room: {answer}");
    let (status, answer) = put(json!({"rooms": {"no-such-room": {"level": "none"}}})).await;
    assert_eq!(status, 403, "{answer}");
    let (_, now) = api.get(path, &a.token).await;
    assert_eq!(now["settings"], body["settings"], "nothing changed");

    // null removes a room's override and turns quiet hours off.
    let (_, body) = put(json!({"quiet_hours": null, "rooms": {room.clone(): null}})).await;
    assert_eq!(body["settings"]["quiet_hours"], Value::Null);
    assert_eq!(body["settings"]["rooms"], json!({}));
    // Another user's settings are untouched.
    let (_, theirs) = api.get(path, &b.token).await;
    assert_eq!(theirs["settings"]["sound"], "default");
}

#[actix_rt::test]
async fn concurrent_setting_changes_all_land() {
    let server = node();
    let api = rest(&server);
    let a = api.register("a").await;
    let mut rooms = Vec::new();
    for _ in 0..8 {
        rooms.push(api.group(&a, &[]).await);
    }
    // Eight devices each mute a different room at once: every change lands.
    let changes = rooms.iter().map(|room| {
        let api = rest(&server);
        let token = a.token.clone();
        let room = room.clone();
        async move {
            api.call(
                "PUT",
                "/api/notification-settings",
                Some(&token),
                Some(json!({"rooms": {room: {"level": "none"}}})),
            )
            .await
        }
    });
    for (status, body) in futures_util::future::join_all(changes).await {
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = api.get("/api/notification-settings", &a.token).await;
    let muted = body["settings"]["rooms"].as_object().map_or(0, |m| m.len());
    assert_eq!(muted, rooms.len(), "{body}");
}
