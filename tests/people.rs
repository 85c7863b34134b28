//! People, end to end against the real binary: social login (Google and Facebook against their
//! stand-ins), SMS login and phone linking (Twilio stand-in), sessions and devices, profiles and
//! search, presence, contacts and QR invites, blocking on every path, and the login limits.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::standins::identity::{Facebook, Google, Twilio};
use common::*;
use dovie_protocol::Codec;
use serde_json::{json, Value};

const CLIENT: &str = "dovie-test-client.apps.googleusercontent.com";

fn google_node(g: &Google) -> Server {
    Server::start_with(
        &[],
        &[
            (
                "DOVIE_PROVIDERS__GOOGLE__CLIENT_IDS",
                &format!("[\"{CLIENT}\"]"),
            ),
            ("DOVIE_PROVIDERS__GOOGLE__CERTS_URL", &g.certs_url()),
            ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
        ],
    )
}

async fn social(api: &Rest, provider: &str, token: &str) -> (u16, Value) {
    api.call(
        "POST",
        "/api/auth/social-login",
        None,
        Some(json!({"provider": provider, "token": token, "device": "Pixel 9"})),
    )
    .await
}

#[actix_rt::test]
async fn google_login_creates_links_by_verified_email_and_refuses_bad_tokens() {
    let g = Google::start();
    let server = google_node(&g);
    let api = rest(&server);
    let token = g.sign(
        "k1",
        &Google::claims(CLIENT, "g-1", "gina@example.com", true),
    );
    let (s, first) = social(&api, "google", &token).await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["user"]["email"], "gina@example.com");
    assert!(first["access_token"].is_string() && first["refresh_token"].is_string());
    let (s, again) = social(&api, "google", &token).await;
    assert_eq!((s, &again["user"]["id"]), (200, &first["user"]["id"]));
    // An existing password account is linked by a verified email only.
    let pw = api.register("pat").await;
    let unverified = g.sign("k1", &Google::claims(CLIENT, "g-2", &pw.email, false));
    let (s, body) = social(&api, "google", &unverified).await;
    assert_eq!(s, 409, "{body}");
    let verified = g.sign("k1", &Google::claims(CLIENT, "g-3", &pw.email, true));
    let (s, body) = social(&api, "google", &verified).await;
    assert_eq!(
        (s, body["user"]["id"].as_str()),
        (200, Some(pw.id.as_str()))
    );
    // Bad tokens: another audience, expired, another issuer, unsigned, garbage.
    let mut other_aud = Google::claims("someone-else", "g-4", "x@example.com", true);
    let mut expired = Google::claims(CLIENT, "g-4", "x@example.com", true);
    expired["exp"] = json!(expired["iat"].as_u64().unwrap() - 3600);
    let mut other_iss = Google::claims(CLIENT, "g-4", "x@example.com", true);
    other_iss["iss"] = json!("https://evil.example");
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        base64_url(
            Google::claims(CLIENT, "g-4", "x@example.com", true)
                .to_string()
                .as_bytes()
        )
    );
    other_aud["email"] = json!("x@example.com");
    for bad in [
        g.sign("k1", &other_aud),
        g.sign("k1", &expired),
        g.sign("k1", &other_iss),
        none,
        "not.a.token".to_string(),
    ] {
        let (s, body) = social(&api, "google", &bad).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{body}"
        );
    }
    // A new key is fetched when a token names it; the cache served everything before.
    let fetches = g.fetches();
    assert_eq!(fetches, 1, "one JWKS fetch for every token so far");
    g.rotate("k2");
    let rotated = g.sign(
        "k2",
        &Google::claims(CLIENT, "g-5", "new@example.com", true),
    );
    let (s, body) = social(&api, "google", &rotated).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(g.fetches(), 2);
    // Nothing else was created by the refusals.
    let (s, found) = api.get("/api/users?q=x@example.com", &pw.token).await;
    assert_eq!((s, found["users"].as_array().unwrap().len()), (200, 0));
}

#[actix_rt::test]
async fn google_down_is_a_provider_error_and_creates_nothing() {
    let g = Google::start();
    g.up.store(false, std::sync::atomic::Ordering::SeqCst);
    let server = google_node(&g);
    let api = rest(&server);
    let token = g.sign(
        "k1",
        &Google::claims(CLIENT, "g-9", "down@example.com", true),
    );
    let (s, body) = social(&api, "google", &token).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (502, Some("provider_error")),
        "{body}"
    );
    g.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let (s, body) = social(&api, "google", &token).await;
    assert_eq!(s, 201, "the first account of this identity: {body}");
    // Unconfigured providers say so.
    let plain = Server::start();
    let (s, body) = social(&rest(&plain), "facebook", "t").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (503, Some("provider_not_configured"))
    );
    let (s, body) = social(&rest(&plain), "google", &token).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (503, Some("provider_not_configured"))
    );
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[actix_rt::test]
async fn facebook_login_checks_the_app_and_the_user() {
    let fb = Facebook::start(
        "app-1",
        "s3cret",
        vec![("good-token", "fb-100", "Fay Book", "fay@example.com")],
    );
    let server = Server::start_with(
        &[],
        &[
            ("DOVIE_PROVIDERS__FACEBOOK__APP_ID", "app-1"),
            ("DOVIE_PROVIDERS__FACEBOOK__APP_SECRET", "s3cret"),
            ("DOVIE_PROVIDERS__FACEBOOK__GRAPH_URL", &fb.server.base_url),
            ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
        ],
    );
    let api = rest(&server);
    let (s, body) = social(&api, "facebook", "good-token").await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["user"]["display_name"], "Fay Book");
    assert_eq!(body["user"]["email"], "fay@example.com");
    let (s, _) = social(&api, "facebook", "good-token").await;
    assert_eq!(s, 200);
    let (s, body) = social(&api, "facebook", "stolen-token").await;
    assert_eq!(s, 401, "{body}");
    let (s, _) = social(&api, "myspace", "x").await;
    assert_eq!(s, 400);
}

fn twilio_node(t: &Twilio, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        (
            "DOVIE_PROVIDERS__TWILIO__BASE_URL",
            t.server.base_url.clone(),
        ),
        (
            "DOVIE_PROVIDERS__TWILIO__ACCOUNT_SID",
            t.account_sid.clone(),
        ),
        ("DOVIE_PROVIDERS__TWILIO__AUTH_TOKEN", t.auth_token.clone()),
        ("DOVIE_PROVIDERS__TWILIO__FROM", "+15005550006".to_string()),
        ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(&[], &env)
}

async fn send_sms(api: &Rest, phone: &str) -> (u16, Value, awc::http::header::HeaderMap) {
    api.call_full(
        "POST",
        "/api/auth/send-sms",
        None,
        Some(json!({"phone": phone})),
    )
    .await
}

async fn verify(api: &Rest, token: Option<&str>, id: &str, code: &str) -> (u16, Value) {
    api.call(
        "POST",
        "/api/auth/verify-sms",
        token,
        Some(json!({"verification_id": id, "code": code})),
    )
    .await
}

#[actix_rt::test]
async fn sms_codes_log_in_link_phones_and_resist_guessing() {
    let t = Twilio::start("AC123", "tw-token", "+15005550006");
    let server = twilio_node(&t, &[("DOVIE_RATE_LIMITS__SMS_RESEND_SECS", "1")]);
    let api = rest(&server);
    let phone = "+821012345678";
    for bad in ["01012345678", "+0123", "+82 10 1234 5678"] {
        let (s, _, _) = send_sms(&api, bad).await;
        assert_eq!(s, 400, "{bad}");
    }
    assert!(
        t.sent.lock().unwrap().is_empty(),
        "nothing sent for bad numbers"
    );
    let (s, sent, _) = send_sms(&api, phone).await;
    assert_eq!(s, 202, "{sent}");
    let id = sent["verification_id"].as_str().unwrap().to_string();
    assert!(sent["expires_at"].as_i64().unwrap() > sent["resend_after"].as_i64().unwrap());
    let code = t.last_code(phone).expect("Twilio got the code");
    let req = &t.server.log.requests()[0];
    assert_eq!(req.path, "/2010-04-01/Accounts/AC123/Messages.json");
    // A resend too soon is refused with Retry-After.
    let (s, body, headers) = send_sms(&api, phone).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(headers.get("retry-after").is_some());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, body) = verify(&api, None, &id, wrong).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("verification_failed"))
    );
    let (s, login) = verify(&api, None, &id, &code).await;
    assert_eq!(s, 201, "a new account of that phone: {login}");
    assert_eq!(login["user"]["phone"], phone);
    assert!(login["user"]["email"].is_null());
    let (s, _) = verify(&api, None, &id, &code).await;
    assert_eq!(s, 400, "a code works once");
    // Five wrong tries spend a code: even the right one fails after them.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, sent, _) = send_sms(&api, phone).await;
    let id2 = sent["verification_id"].as_str().unwrap().to_string();
    let code2 = t.last_code(phone).unwrap();
    for _ in 0..5 {
        let (s, _) = verify(&api, None, &id2, wrong).await;
        assert_eq!(s, 400);
    }
    let (s, _) = verify(&api, None, &id2, &code2).await;
    assert_eq!(s, 400, "spent by five wrong tries");
    // Logging in again finds the same account; a bearer token links a phone instead.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, sent, _) = send_sms(&api, phone).await;
    let (s, again) = verify(
        &api,
        None,
        sent["verification_id"].as_str().unwrap(),
        &t.last_code(phone).unwrap(),
    )
    .await;
    assert_eq!((s, &again["user"]["id"]), (200, &login["user"]["id"]));
    let u = api.register("linker").await;
    let other = "+14155550100";
    let (_, sent, _) = send_sms(&api, other).await;
    let (s, linked) = verify(
        &api,
        Some(&u.token),
        sent["verification_id"].as_str().unwrap(),
        &t.last_code(other).unwrap(),
    )
    .await;
    assert_eq!(
        (s, linked["user"]["phone"].as_str()),
        (200, Some(other)),
        "{linked}"
    );
    let (_, me) = api.get("/api/auth/me", &u.token).await;
    assert_eq!(me["user"]["phone"], other);
    let (s, _) = verify(&api, Some("not-a-token"), &id, &code).await;
    assert_eq!(s, 401);
}

#[actix_rt::test]
async fn sms_texts_speak_the_users_language_and_the_hourly_cap_holds() {
    let t = Twilio::start("AC9", "tok", "+15005550006");
    let server = twilio_node(
        &t,
        &[
            ("DOVIE_RATE_LIMITS__SMS_RESEND_SECS", "0"),
            ("DOVIE_RATE_LIMITS__SMS_PER_HOUR", "2"),
        ],
    );
    let api = rest(&server);
    let (s, _, _) = api
        .call_full(
            "POST",
            "/api/auth/send-sms",
            None,
            Some(json!({"phone": "+821011112222"})),
        )
        .await;
    assert_eq!(s, 202);
    let (_, body, _) = api
        .call_full(
            "POST",
            "/api/auth/send-sms",
            None,
            Some(json!({"phone": "+821011112222"})),
        )
        .await;
    assert!(body["verification_id"].is_string());
    let (s, _, h) = send_sms(&api, "+821011112222").await;
    assert_eq!(s, 429, "two an hour");
    assert!(h.get("retry-after").is_some());
    let (s, _) = api
        .call(
            "POST",
            "/api/auth/send-sms",
            None,
            Some(json!({"phone": "+821033334444"})),
        )
        .await;
    assert_eq!(s, 202, "other phones are apart");
    let bodies: Vec<String> = t
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.clone())
        .collect();
    assert!(
        bodies.iter().all(|b| b.contains("Your code is")),
        "English without a locale"
    );
    // Unconfigured: 503, nothing sent.
    let plain = Server::start();
    let (s, body, _) = send_sms(&rest(&plain), "+821011112222").await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (503, Some("provider_not_configured"))
    );
}

async fn login(api: &Rest, user: &User, device: &str) -> Value {
    let (s, body) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": user.email, "password": "correct horse", "device": device})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

#[actix_rt::test]
async fn sessions_are_listed_and_revoked_with_their_sockets() {
    let server = Server::start();
    let api = rest(&server);
    let u = api.register("dev").await;
    let phone = login(&api, &u, "Phone").await;
    let phone_token = phone["access_token"].as_str().unwrap().to_string();
    let (s, list) = api.get("/api/auth/sessions", &u.token).await;
    assert_eq!(s, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let other = sessions
        .iter()
        .find(|s| s["device"] == "Phone")
        .expect("the phone's session");
    assert_eq!(other["ip"], "127.0.0.1");
    let mut ws = Ws::connect(&server, Codec::MsgPack, Auth::Query(&phone_token)).await;
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/auth/sessions/{}", other["id"].as_str().unwrap()),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let kicked = ws.expect("force_logout").await;
    assert!(kicked["d"]["reason"].is_string());
    assert_eq!(ws.expect_close().await, 4003);
    let (s, _) = api.get("/api/auth/me", &phone_token).await;
    assert_eq!(s, 401, "its tokens stop at once");
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/auth/sessions/{}", other["id"].as_str().unwrap()),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(s, 404, "gone");
    // Someone else's session is not mine to revoke.
    let v = api.register("other").await;
    let (_, theirs) = api.get("/api/auth/sessions", &v.token).await;
    let id = theirs["sessions"][0]["id"].as_str().unwrap();
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/auth/sessions/{id}"),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(s, 404);
    // Everywhere.
    let tablet = login(&api, &u, "Tablet").await;
    let (s, _) = api
        .call("POST", "/api/auth/logout-all", Some(&u.token), None)
        .await;
    assert_eq!(s, 204);
    for t in [u.token.as_str(), tablet["access_token"].as_str().unwrap()] {
        assert_eq!(api.get("/api/auth/me", t).await.0, 401);
    }
    let (s, _) = api
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": tablet["refresh_token"]})),
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(
        api.get("/api/auth/me", &v.token).await.0,
        200,
        "others untouched"
    );
}

#[actix_rt::test]
async fn profiles_search_and_presence_respect_privacy() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["alice", "bob", "carol"]).await;
    let patch = |t: &str, body: Value| {
        let t = t.to_string();
        let api = &api;
        async move {
            api.call("PATCH", "/api/users/me", Some(&t), Some(body))
                .await
        }
    };
    let (s, me) = patch(
        &a.token,
        json!({"display_name": "Alice Kim", "bio": "hi", "status_message": "coding",
        "theme": "dark", "locale": "ko"}),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(
        (me["user"]["theme"].as_str(), me["user"]["locale"].as_str()),
        (Some("dark"), Some("ko"))
    );
    for bad in [
        json!({"bio": "x".repeat(501)}),
        json!({"status_message": "x".repeat(141)}),
        json!({"theme": "pink"}),
        json!({"locale": "xx"}),
        json!({"display_name": "  "}),
    ] {
        let (s, body) = patch(&a.token, bad.clone()).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (400, Some("validation_failed")),
            "{bad}"
        );
    }
    let (_, still) = api.get("/api/auth/me", &a.token).await;
    assert_eq!(
        still["user"]["bio"], "hi",
        "a refused patch changes nothing"
    );
    let (s, at_limit) = patch(&a.token, json!({"bio": "x".repeat(500)})).await;
    assert_eq!(
        (s, at_limit["user"]["bio"].as_str().unwrap().len()),
        (200, 500)
    );
    // Search by name prefix, exact email; never an email in the answer.
    let (s, found) = api.get("/api/users?q=alice%20k", &b.token).await;
    assert_eq!(s, 200);
    assert_eq!(found["users"][0]["id"], a.id.as_str(), "{found}");
    assert!(found["users"][0].get("email").is_none());
    let (_, found) = api
        .get(&format!("/api/users?q={}", a.email), &b.token)
        .await;
    assert_eq!(found["users"][0]["id"], a.id.as_str());
    let (_, found) = api.get("/api/users?q=lice", &b.token).await;
    assert!(
        found["users"].as_array().unwrap().is_empty(),
        "prefixes, not substrings"
    );
    patch(&a.token, json!({"discoverable": false})).await;
    let (_, found) = api.get("/api/users?q=alice", &b.token).await;
    assert!(found["users"].as_array().unwrap().is_empty());
    // Presence: room mates see it; strangers do not; hidden presence hides it.
    api.group(&a, &[&b]).await;
    let _ws = Ws::connect(&server, Codec::Json, Auth::Query(&a.token)).await;
    let q = format!("/api/presence?user_ids={},{}", a.id, c.id);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, p) = api.get(&q, &b.token).await;
        if p["presence"][&a.id]["online"] == true {
            assert!(p["presence"].get(&c.id).is_none(), "not mates: {p}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alice never showed online: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, p) = api
        .get(&format!("/api/presence?user_ids={}", a.id), &c.token)
        .await;
    assert!(
        p["presence"].get(&a.id).is_none(),
        "a stranger sees nothing: {p}"
    );
    let (_, prof) = api.get(&format!("/api/users/{}", a.id), &b.token).await;
    assert_eq!(prof["user"]["online"], true);
    patch(&a.token, json!({"presence_visible": false})).await;
    let (_, p) = api
        .get(&format!("/api/presence?user_ids={}", a.id), &b.token)
        .await;
    assert!(p["presence"].get(&a.id).is_none(), "hidden: {p}");
    let (_, prof) = api.get(&format!("/api/users/{}", a.id), &b.token).await;
    assert!(prof["user"].get("online").is_none());
}

fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes.to_vec()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    grids[0].decode().unwrap().1
}

#[actix_rt::test]
async fn contacts_and_qr_invites() {
    let server = Server::start_with(&[], &[("DOVIE_PUBLIC_URL", "https://chat.example")]);
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    let (s, added) = api
        .post("/api/contacts", &a.token, json!({"user_id": b.id}))
        .await;
    assert_eq!(s, 201, "{added}");
    assert_eq!(
        (
            added["contact"]["mutual"].as_bool(),
            added["contact"]["user"]["id"].as_str()
        ),
        (Some(false), Some(b.id.as_str()))
    );
    assert!(added["contact"]["user"].get("email").is_none());
    assert_eq!(
        api.post("/api/contacts", &a.token, json!({"user_id": b.id}))
            .await
            .0,
        200
    );
    assert_eq!(
        api.post("/api/contacts", &a.token, json!({"user_id": a.id}))
            .await
            .0,
        409
    );
    assert_eq!(
        api.post("/api/contacts", &a.token, json!({"user_id": "nobody"}))
            .await
            .0,
        404
    );
    api.post("/api/contacts", &b.token, json!({"user_id": a.id}))
        .await;
    let (_, list) = api.get("/api/contacts", &a.token).await;
    assert_eq!(list["contacts"][0]["mutual"], true, "{list}");
    assert!(list["next_cursor"].is_null());
    // An invite: a link under public_url, a QR code that decodes to it, accepted once by c.
    let (s, inv) = api.post("/api/contacts/invites", &a.token, json!({})).await;
    assert_eq!(s, 201, "{inv}");
    let token = inv["invite"]["token"].as_str().unwrap().to_string();
    let url = inv["invite"]["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://chat.example/"), "{url}");
    let (s, ct, png) = api
        .raw(
            "GET",
            &format!("/api/contacts/invites/{token}/qr.png"),
            &[],
            vec![],
        )
        .await;
    assert_eq!((s, ct.as_str()), (200, "image/png"));
    assert_eq!(decode_qr(&png), url);
    let (s, ct, svg) = api
        .raw(
            "GET",
            &format!("/api/contacts/invites/{token}/qr.svg"),
            &[],
            vec![],
        )
        .await;
    assert_eq!((s, ct.as_str()), (200, "image/svg+xml"));
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));
    let forged = format!("{}x", &token[..token.len() - 1]);
    let (s, _, _) = api
        .raw(
            "GET",
            &format!("/api/contacts/invites/{forged}/qr.png"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(s, 400);
    let (s, body) = api
        .post(
            &format!("/api/contacts/invites/{forged}/accept"),
            &c.token,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("verification_failed"))
    );
    let (s, body) = api
        .post(
            &format!("/api/contacts/invites/{token}/accept"),
            &a.token,
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "not your own: {body}");
    let (s, body) = api
        .post(
            &format!("/api/contacts/invites/{token}/accept"),
            &c.token,
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (
            body["contact"]["user"]["id"].as_str(),
            body["contact"]["mutual"].as_bool()
        ),
        (Some(a.id.as_str()), Some(true))
    );
    let (_, list) = api.get("/api/contacts", &a.token).await;
    let ids: Vec<&str> = list["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["user"]["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&c.id.as_str()), "both ways: {list}");
    // Paging.
    let (_, page) = api.get("/api/contacts?limit=1", &a.token).await;
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest_page) = api
        .get(&format!("/api/contacts?limit=1&cursor={cursor}"), &a.token)
        .await;
    assert_ne!(
        page["contacts"][0]["user"]["id"],
        rest_page["contacts"][0]["user"]["id"]
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/contacts/{}", b.id),
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
            &format!("/api/contacts/{}", b.id),
            Some(&a.token),
            None
        )
        .await
        .0,
        404
    );
}

#[actix_rt::test]
async fn blocking_closes_every_path() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    let (s, direct) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "direct", "member_ids": [b.id]}),
        )
        .await;
    assert_eq!(s, 201);
    let direct = direct["room"]["id"].as_str().unwrap().to_string();
    let group = api.group(&c, &[&a, &b]).await;
    let mut a_ws = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut b_ws = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    // a blocks b.
    assert_eq!(
        api.post("/api/blocks", &a.token, json!({"user_id": a.id}))
            .await
            .0,
        409
    );
    assert_eq!(
        api.post("/api/blocks", &a.token, json!({"user_id": "nobody"}))
            .await
            .0,
        404
    );
    let (s, blk) = api
        .post("/api/blocks", &a.token, json!({"user_id": b.id}))
        .await;
    assert_eq!(s, 201, "{blk}");
    assert_eq!(
        api.post("/api/blocks", &a.token, json!({"user_id": b.id}))
            .await
            .0,
        200
    );
    let (_, list) = api.get("/api/blocks", &a.token).await;
    assert_eq!(list["blocks"][0]["user"]["id"], b.id.as_str());
    // b cannot send in the direct room (REST and WS), open another, or add a to a group.
    let (s, body) = api
        .post(
            &format!("/api/chat-rooms/{direct}/messages"),
            &b.token,
            json!({"content": "hey"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let r = b_ws
        .request(
            "send_message",
            json!({"room_id": direct, "content": "hey", "nonce": "n1"}),
        )
        .await;
    assert_eq!(
        (r["t"].as_str(), r["d"]["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{r}"
    );
    let (s, _) = api
        .post(
            "/api/chat-rooms",
            &b.token,
            json!({"type": "direct", "member_ids": [a.id]}),
        )
        .await;
    assert_eq!(s, 403);
    let other_group = api.group(&b, &[&c]).await;
    let (s, _) = api
        .post(
            &format!("/api/chat-rooms/{other_group}/participants"),
            &b.token,
            json!({"user_ids": [a.id]}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = api
        .post(
            "/api/chat-rooms",
            &b.token,
            json!({"type": "group", "member_ids": [a.id]}),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(
        api.post("/api/contacts", &b.token, json!({"user_id": a.id}))
            .await
            .0,
        403
    );
    // In the shared group, a hears nothing of b; c still hears b.
    let mut c_ws = Ws::connect(&server, Codec::Json, Auth::Query(&c.token)).await;
    api.send(&b, &group, "from b").await;
    let seen = c_ws.expect("new_message").await;
    assert_eq!(seen["d"]["message"]["content"], "from b");
    b_ws.send_frame("typing_start", None, json!({"room_id": group}))
        .await;
    c_ws.expect("typing_start").await;
    api.send(&c, &group, "from c").await;
    let next = a_ws.expect("new_message").await;
    assert_eq!(
        next["d"]["message"]["content"], "from c",
        "b's message never reached a: {next}"
    );
    a_ws.expect_none("typing_start", Duration::from_millis(300))
        .await;
    // The profile of a is hidden from b; unblocking opens the direct room again.
    assert_eq!(
        api.get(&format!("/api/users/{}", a.id), &b.token).await.0,
        404
    );
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/api/blocks/{}", b.id),
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
            &format!("/api/blocks/{}", b.id),
            Some(&a.token),
            None
        )
        .await
        .0,
        404
    );
    let (s, _) = api
        .post(
            &format!("/api/chat-rooms/{direct}/messages"),
            &b.token,
            json!({"content": "hi again"}),
        )
        .await;
    assert_eq!(s, 201);
    let m = a_ws.expect("new_message").await;
    assert_eq!(m["d"]["message"]["content"], "hi again");
}

/// Binds the client side of a connection to another loopback address (127.0.0.0/8 is all
/// loopback on Linux), so a test can be several clients.
async fn login_from(server: &Server, ip: &str, email: &str, password: &str) -> u16 {
    let local: std::net::IpAddr = ip.parse().unwrap();
    let client = reqwest::Client::builder()
        .local_address(local)
        .build()
        .unwrap();
    client
        .post(server.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(json!({"email": email, "password": password}).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_rt::test]
async fn login_limits_slow_a_sprayer_and_no_one_else() {
    let server = Server::start_with(&[], &[("DOVIE_RATE_LIMITS__LOGIN_PER_MINUTE", "10")]);
    let api = rest(&server);
    let victims = api.register_all(["v1", "v2", "v3"]).await;
    let mut refused = 0;
    for i in 0..30 {
        let v = &victims[i % 3];
        match login_from(&server, "127.0.0.2", &v.email, "wrong password").await {
            401 => {}
            429 => refused += 1,
            s => panic!("login answered {s}"),
        }
    }
    assert_eq!(refused, 20, "ten tries a minute from one address");
    // Another address logs in fine, the victims' own accounts too (per-account limit: the
    // sprayer spent ten tries on each account... not past ten per account here).
    assert_eq!(
        login_from(&server, "127.0.0.3", &victims[0].email, "correct horse").await,
        200
    );
    let (s, body, h) = api
        .call_full(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": "x@example.com", "password": "p"})),
        )
        .await;
    assert_eq!(s, 401, "{body}");
    assert!(h.get("retry-after").is_none());
    let (s, body, h) = {
        let mut last = (0, Value::Null, awc::http::header::HeaderMap::new());
        for _ in 0..11 {
            last = api
                .call_full(
                    "POST",
                    "/api/auth/login",
                    None,
                    Some(json!({"email": victims[1].email, "password": "nope"})),
                )
                .await;
        }
        last
    };
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    let secs: u64 = h
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs));
}
