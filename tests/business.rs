//! Business end to end on one node: profiles (limits, search, edits by owner and admins),
//! business posts in followers' feeds with attachments only their viewers may read, company
//! channels beyond a group's 100 members where only admins post, networking requests, the
//! verification flow through the admin queue and the audit log, and analytics numbers
//! against the events that made them.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{rest, Auth, Rest, Server, User, Ws};
use dovie_protocol::Codec;
use serde_json::{json, Value};

fn assert_error(status: u16, body: &Value, want: u16, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn call(
    api: &Rest,
    method: &str,
    path: &str,
    who: &User,
    body: Option<Value>,
) -> (u16, Value) {
    api.call(method, path, Some(&who.token), body).await
}

async fn create_business(api: &Rest, owner: &User, name: &str, category: &str) -> Value {
    let (status, body) = api
        .post(
            "/api/business-profiles",
            &owner.token,
            json!({"name": name, "category": category, "description": "fresh every day"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["business"].clone()
}

/// The status of downloading file `id` as `who`.
async fn download_status(api: &Rest, who: &User, id: &str) -> u16 {
    let auth = format!("Bearer {}", who.token);
    let (status, _, _) = api
        .raw(
            "GET",
            &format!("/api/files/{id}"),
            &[("authorization", auth.as_str())],
            Vec::new(),
        )
        .await;
    status
}

async fn feed_ids(api: &Rest, who: &User, path: &str) -> Vec<String> {
    let (status, body) = api.get(path, &who.token).await;
    assert_eq!(status, 200, "{body}");
    body["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn profiles_posts_and_feeds() {
    let server = Server::start();
    let api = rest(&server);
    let [owner, helper, fan, stranger] = api
        .register_all(["owner", "helper", "fan", "stranger"])
        .await;

    // Bad input gets a clear error and creates nothing.
    let good = json!({"name": "x".repeat(100), "category": "Food", "description": ""});
    for (field, bad) in [
        ("name", json!("x".repeat(101))),
        ("name", json!("   ")),
        ("category", json!("c".repeat(51))),
        ("description", json!("d".repeat(2001))),
        ("website", json!("shop.example")),
        ("website", json!("https://has space")),
        ("email", json!("nobody")),
        ("phone", json!("12-34")),
        ("address", json!("a".repeat(501))),
    ] {
        let mut body = good.clone();
        body[field] = bad;
        let (status, body) = api.post("/api/business-profiles", &owner.token, body).await;
        assert_error(status, &body, 400, "validation_failed");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("description");
    let (status, body) = api
        .post("/api/business-profiles", &owner.token, missing)
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = api
        .get("/api/business-profiles?category=food", &owner.token)
        .await;
    assert_eq!(
        (status, body["businesses"].as_array().unwrap().len()),
        (200, 0)
    );

    // At the limits it is made; the category is kept in lower case.
    let (status, body) = api
        .post("/api/business-profiles", &owner.token, good.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["business"]["category"], "food");
    let shop = create_business(&api, &owner, "Kim's Bakery", "Food").await;
    let shop_id = shop["id"].as_str().unwrap().to_string();
    assert_eq!(shop["verified"], false);
    assert_eq!(shop["follower_count"], 0);
    assert_eq!(shop["owner_id"], owner.id.as_str());
    create_business(&api, &stranger, "Kim Motors", "cars").await;

    // Search by a word prefix, by category, both.
    let names = |body: &Value| -> Vec<String> {
        body["businesses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, body) = api.get("/api/business-profiles?q=bak", &fan.token).await;
    assert_eq!(names(&body), ["Kim's Bakery"]);
    let (_, body) = api
        .get("/api/business-profiles?q=KIM&category=cars", &fan.token)
        .await;
    assert_eq!(names(&body), ["Kim Motors"]);
    let (status, body) = api
        .get(
            &format!("/api/business-profiles?q={}", "q".repeat(101)),
            &fan.token,
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");

    // Edits: the owner and the admins they name; nobody else.
    let path = format!("/api/business-profiles/{shop_id}");
    let (status, body) = call(
        &api,
        "PATCH",
        &path,
        &helper,
        Some(json!({"name": "Mine now"})),
    )
    .await;
    assert_error(status, &body, 403, "forbidden");
    let admins = format!("{path}/admins/{}", helper.id);
    let (status, body) = call(&api, "PUT", &admins, &helper, None).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = call(&api, "PUT", &admins, &owner, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["business"]["admins"], json!([helper.id]));
    let (status, body) = call(
        &api,
        "PATCH",
        &path,
        &helper,
        Some(
            json!({"website": "https://bakery.example", "phone": "+821012345678", "hours": "8-20"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &api,
        "PATCH",
        &path,
        &owner,
        Some(json!({"phone": null, "email": "x"})),
    )
    .await;
    assert_error(status, &body, 400, "validation_failed");
    let (_, body) = api.get(&path, &fan.token).await;
    assert_eq!(body["business"]["website"], "https://bakery.example");
    assert_eq!(body["business"]["phone"], "+821012345678");
    let (status, body) = call(&api, "PATCH", &path, &owner, Some(json!({"phone": null}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["business"]["phone"], Value::Null);
    assert_eq!(body["business"]["hours"], "8-20");

    // Business posts: by its owner and admins, into its followers' feeds.
    assert_eq!(
        call(&api, "POST", &format!("{path}/follow"), &fan, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&api, "POST", &format!("{path}/follow"), &fan, None)
            .await
            .0,
        204
    );
    let (_, body) = api.get(&path, &fan.token).await;
    assert_eq!(body["business"]["follower_count"], 1);
    let (status, body) = api
        .post(
            "/api/business-posts",
            &stranger.token,
            json!({"business_id": shop_id, "content": "fake news"}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let photo = api
        .upload(&helper, "bread.txt", b"fresh bread".to_vec())
        .await;
    let (status, body) = api
        .post(
            "/api/business-posts",
            &helper.token,
            json!({"business_id": shop_id, "content": "New #bread today", "attachments": [photo]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let public_post = body["post"].clone();
    assert_eq!(public_post["business_id"], shop_id.as_str());
    assert_eq!(public_post["author_id"], helper.id.as_str());
    assert_eq!(public_post["attachments"][0]["id"], photo.as_str());
    let (status, body) = api
        .post(
            "/api/business-posts",
            &owner.token,
            json!({"business_id": shop_id, "content": "for regulars", "visibility": "followers"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let followers_post = body["post"]["id"].as_str().unwrap().to_string();
    let public_id = public_post["id"].as_str().unwrap().to_string();
    assert_eq!(
        feed_ids(&api, &fan, "/api/feed").await,
        [followers_post.clone(), public_id.clone()]
    );
    assert!(feed_ids(&api, &stranger, "/api/feed").await.is_empty());
    // The business's page: the followers-only post only for its followers.
    let posts = format!("{path}/posts");
    assert_eq!(
        feed_ids(&api, &stranger, &posts).await,
        std::slice::from_ref(&public_id)
    );
    let (status, _) = api
        .get(&format!("/api/posts/{followers_post}"), &stranger.token)
        .await;
    assert_eq!(status, 404);
    // Not on the writer's own page: it speaks for the business.
    assert!(
        feed_ids(&api, &fan, &format!("/api/users/{}/posts", helper.id))
            .await
            .is_empty()
    );

    // A post's attachment is readable by whoever may see the post.
    assert_eq!(download_status(&api, &stranger, &photo).await, 200);
    let secret = api
        .upload(&fan, "secret.txt", b"for my followers".to_vec())
        .await;
    let (status, body) = api
        .post(
            "/api/posts",
            &fan.token,
            json!({"content": "only friends", "visibility": "followers", "attachments": [secret]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(download_status(&api, &stranger, &secret).await, 403);
    call(
        &api,
        "POST",
        &format!("/api/users/{}/follow", fan.id),
        &stranger,
        None,
    )
    .await;
    assert_eq!(download_status(&api, &stranger, &secret).await, 200);
    // Attachments: one's own files, each once, at most 10.
    for (bad, status_want, code) in [
        (json!([photo]), 403, "forbidden"),
        (json!([secret, secret]), 400, "validation_failed"),
        (json!(["no-such-file"]), 404, "not_found"),
        (json!(vec![secret.clone(); 11]), 400, "validation_failed"),
    ] {
        let (status, body) = api
            .post(
                "/api/posts",
                &fan.token,
                json!({"content": "x", "attachments": bad}),
            )
            .await;
        assert_error(status, &body, status_want, code);
    }

    // Unfollowed: the business's posts leave the feed.
    assert_eq!(
        call(&api, "DELETE", &format!("{path}/follow"), &fan, None)
            .await
            .0,
        204
    );
    assert!(!feed_ids(&api, &fan, "/api/feed").await.contains(&public_id));
    // Admins removed lose the right to edit.
    let (status, _) = call(&api, "DELETE", &admins, &owner, None).await;
    assert_eq!(status, 200);
    let (status, body) = call(&api, "PATCH", &path, &helper, Some(json!({"name": "Back"}))).await;
    assert_error(status, &body, 403, "forbidden");
}

#[actix_rt::test]
async fn channels_outgrow_groups_and_only_admins_post() {
    let server = Server::start();
    let api = rest(&server);
    let [owner, helper] = api.register_all(["chowner", "chhelper"]).await;
    let shop = create_business(&api, &owner, "Channel Shop", "news").await;
    let shop_id = shop["id"].as_str().unwrap();
    call(
        &api,
        "PUT",
        &format!("/api/business-profiles/{shop_id}/admins/{}", helper.id),
        &owner,
        None,
    )
    .await;
    let (status, body) = api
        .post(
            "/api/company-channels",
            &helper.token,
            json!({"business_id": shop_id, "name": "Announcements", "description": "deals"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let channel = body["channel"].clone();
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let room = channel["room_id"].as_str().unwrap().to_string();
    assert_eq!(channel["subscriber_count"], 0);

    // More subscribers than a group may have members (100).
    const SUBSCRIBERS: usize = 130;
    let mut subscribers = Vec::with_capacity(SUBSCRIBERS);
    for i in 0..SUBSCRIBERS {
        let u = api.register(&format!("sub{i}")).await;
        let (status, body) = call(
            &api,
            "POST",
            &format!("/api/company-channels/{channel_id}/subscribe"),
            &u,
            None,
        )
        .await;
        assert_eq!(status, 204, "{body}");
        subscribers.push(u);
    }
    let (_, body) = api
        .get(
            &format!("/api/company-channels?business_id={shop_id}"),
            &owner.token,
        )
        .await;
    assert_eq!(body["channels"][0]["subscriber_count"], SUBSCRIBERS);

    // Online subscribers get the admin's post; a subscriber cannot post or type, but reacts.
    let mut online = Vec::new();
    for u in subscribers.iter().step_by(13) {
        online.push(Ws::connect(&server, Codec::Json, Auth::Query(&u.token)).await);
    }
    let sent = api.send(&helper, &room, "50% off today").await;
    for ws in &mut online {
        let e = ws.expect("new_message").await;
        assert_eq!(e["d"]["message"]["content"], "50% off today");
    }
    let reader = &subscribers[0];
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{room}/messages"),
            &reader.token,
            json!({"content": "me too"}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let r = online[0]
        .request(
            "send_message",
            json!({"room_id": room, "content": "hi", "nonce": "n1"}),
        )
        .await;
    assert_eq!(r["t"], "error", "{r}");
    assert_eq!(r["d"]["code"], "forbidden", "{r}");
    let r = online[0]
        .request("typing_start", json!({"room_id": room}))
        .await;
    assert_eq!(r["t"], "error", "{r}");
    let message_id = sent["id"].as_str().unwrap();
    let r = online[0]
        .request(
            "react",
            json!({"room_id": room, "message_id": message_id, "emoji": "👍"}),
        )
        .await;
    assert_eq!(r["t"], "reply", "{r}");

    // A subscriber sees the admins and themself, never the other subscribers.
    let (status, body) = api
        .get(&format!("/api/chat-rooms/{room}"), &reader.token)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut seen: Vec<String> = body["room"]["member_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut want = vec![owner.id.clone(), helper.id.clone(), reader.id.clone()];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(body["room"]["type"], "channel");
    let (_, body) = api
        .get(&format!("/api/chat-rooms/{room}"), &owner.token)
        .await;
    assert_eq!(
        body["room"]["member_ids"].as_array().unwrap().len(),
        SUBSCRIBERS + 2
    );
    // Others' joins are not told to subscribers.
    let late = api.register("late").await;
    call(
        &api,
        "POST",
        &format!("/api/company-channels/{channel_id}/subscribe"),
        &late,
        None,
    )
    .await;
    online[1]
        .expect_none("user_joined", Duration::from_millis(500))
        .await;

    // Members join by subscribing only; the owner stays; unsubscribing is idempotent.
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{room}/participants"),
            &owner.token,
            json!({"user_ids": [late.id]}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let unsubscribe = format!("/api/company-channels/{channel_id}/subscribe");
    let (status, body) = call(&api, "DELETE", &unsubscribe, &owner, None).await;
    assert_error(status, &body, 409, "conflict");
    assert_eq!(call(&api, "DELETE", &unsubscribe, &late, None).await.0, 204);
    assert_eq!(call(&api, "DELETE", &unsubscribe, &late, None).await.0, 204);
    let (_, body) = api
        .get(
            &format!("/api/company-channels?business_id={shop_id}"),
            &owner.token,
        )
        .await;
    assert_eq!(body["channels"][0]["subscriber_count"], SUBSCRIBERS);
    // A channel is not made through the rooms API.
    let (status, body) = api
        .post(
            "/api/chat-rooms",
            &owner.token,
            json!({"type": "channel", "member_ids": [helper.id]}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
}

#[actix_rt::test]
async fn the_subscriber_limit_holds() {
    let server = Server::start_with(&[], &[("DOVIE_LIMITS__MAX_CHANNEL_SUBSCRIBERS", "3")]);
    let api = rest(&server);
    let [owner, a, b, c] = api.register_all(["limowner", "la", "lb", "lc"]).await;
    let shop = create_business(&api, &owner, "Tiny", "news").await;
    let (_, body) = api
        .post(
            "/api/company-channels",
            &owner.token,
            json!({"business_id": shop["id"], "name": "Small"}),
        )
        .await;
    let path = format!(
        "/api/company-channels/{}/subscribe",
        body["channel"]["id"].as_str().unwrap()
    );
    // The owner is one of the room's three places.
    assert_eq!(call(&api, "POST", &path, &a, None).await.0, 204);
    assert_eq!(call(&api, "POST", &path, &b, None).await.0, 204);
    let (status, body) = call(&api, "POST", &path, &c, None).await;
    assert_error(status, &body, 400, "room_full");
    assert_eq!(body["error"]["message"], "a channel has at most 3 members");
}

#[actix_rt::test]
async fn networking_and_verification() {
    let server = Server::start();
    let api = rest(&server);
    let [alice, bob, carol, admin] = api.register_all(["alice", "bob", "carol", "admin"]).await;
    server.grant_admin(&admin);
    let a = create_business(&api, &alice, "Alpha Supplies", "trade").await;
    let b = create_business(&api, &bob, "Beta Retail", "trade").await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    // A request from a business I run only; not to itself; one open per pair.
    let to_b = format!("/api/business-profiles/{b_id}/connections");
    let (status, body) = api
        .post(&to_b, &carol.token, json!({"from_business_id": a_id}))
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = api
        .post(&to_b, &bob.token, json!({"from_business_id": b_id}))
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = api
        .post(&to_b, &alice.token, json!({"from_business_id": a_id}))
        .await;
    assert_eq!(status, 201, "{body}");
    let request = body["connection"].clone();
    assert_eq!(request["status"], "pending");
    let (status, body) = api
        .post(
            &format!("/api/business-profiles/{a_id}/connections"),
            &bob.token,
            json!({"from_business_id": b_id}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    // Pending requests are for the two businesses' people only.
    let (_, body) = api.get(&to_b, &carol.token).await;
    assert!(body["connections"].as_array().unwrap().is_empty());
    let (_, body) = api.get(&to_b, &bob.token).await;
    assert_eq!(body["connections"][0]["status"], "pending");
    // Only the business asked answers; once.
    let accept = format!(
        "/api/connections/{}/accept",
        request["id"].as_str().unwrap()
    );
    let (status, body) = call(&api, "POST", &accept, &alice, None).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = call(&api, "POST", &accept, &carol, None).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = call(&api, "POST", &accept, &bob, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["connection"]["status"], "accepted");
    let (status, body) = call(&api, "POST", &accept, &bob, None).await;
    assert_error(status, &body, 409, "conflict");
    let (_, body) = api.get(&to_b, &carol.token).await;
    assert_eq!(body["connections"][0]["status"], "accepted");

    // Verification: the owner asks with their own documents, once at a time.
    let doc = api
        .upload(&alice, "licence.txt", b"licence no. 42".to_vec())
        .await;
    let other = api.upload(&bob, "other.txt", b"not alice's".to_vec()).await;
    let ask = format!("/api/business-profiles/{a_id}/verification");
    for (who, body, status_want, code) in [
        (&bob, json!({"documents": [doc]}), 403, "forbidden"),
        (&alice, json!({"documents": []}), 400, "validation_failed"),
        (&alice, json!({"documents": [other]}), 403, "forbidden"),
        (
            &alice,
            json!({"documents": [doc, doc]}),
            400,
            "validation_failed",
        ),
    ] {
        let (status, body) = api.post(&ask, &who.token, body).await;
        assert_error(status, &body, status_want, code);
    }
    let (status, body) = api
        .post(
            &ask,
            &alice.token,
            json!({"documents": [doc], "note": "our licence"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let first = body["verification"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["verification"]["status"], "pending");
    let (status, body) = api
        .post(&ask, &alice.token, json!({"documents": [doc]}))
        .await;
    assert_error(status, &body, 409, "conflict");

    // The queue is for admins, who may read the documents.
    let (status, body) = api.get("/api/admin/verifications", &alice.token).await;
    assert_error(status, &body, 403, "forbidden");
    assert_eq!(download_status(&api, &carol, &doc).await, 403);
    let (status, body) = api.get("/api/admin/verifications", &admin.token).await;
    assert_eq!(status, 200, "{body}");
    let queued: Vec<&str> = body["verifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(queued, [first.as_str()]);
    assert_eq!(download_status(&api, &admin, &doc).await, 200);

    // Rejected with a reason; asked again; approved.
    let reject = format!("/api/admin/verifications/{first}/reject");
    let (status, body) = api
        .post(&reject, &admin.token, json!({"reason": " "}))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = api
        .post(
            &reject,
            &admin.token,
            json!({"reason": "the scan is blurry"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verification"]["status"], "rejected");
    let (status, body) = call(
        &api,
        "POST",
        &format!("/api/admin/verifications/{first}/approve"),
        &admin,
        None,
    )
    .await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = api
        .post(&ask, &alice.token, json!({"documents": [doc]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let second = body["verification"]["id"].as_str().unwrap().to_string();
    let mut alice_ws = Ws::connect(&server, Codec::Json, Auth::Query(&alice.token)).await;
    let (status, body) = call(
        &api,
        "POST",
        &format!("/api/admin/verifications/{second}/approve"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = api
        .get(&format!("/api/business-profiles/{a_id}"), &carol.token)
        .await;
    assert_eq!(body["business"]["verified"], true);
    let (status, body) = api
        .post(&ask, &alice.token, json!({"documents": [doc]}))
        .await;
    assert_error(status, &body, 409, "conflict");

    // The owner is told, live and in their activity.
    let told = alice_ws.expect("activity").await;
    assert_eq!(told["d"]["item"]["kind"], "verified", "{told}");
    let (_, body) = api.get("/api/activity", &alice.token).await;
    let kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["verified", "verification_rejected"]);

    // Every step is in the audit log, newest first.
    let audit = format!("/api/admin/audit-log?target_type=business&target_id={a_id}");
    let (status, body) = api.get(&audit, &alice.token).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = api.get(&audit, &admin.token).await;
    assert_eq!(status, 200, "{body}");
    let steps: Vec<(String, String)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for e in body["entries"].as_array().unwrap() {
        assert_eq!(e["target_label"], "Alpha Supplies", "{e}");
        assert!(e["ip"].as_str().is_some_and(|ip| ip == "127.0.0.1"), "{e}");
    }
    assert_eq!(
        steps,
        [
            ("verification.approved".to_string(), admin.id.clone()),
            ("verification.requested".to_string(), alice.id.clone()),
            ("verification.rejected".to_string(), admin.id.clone()),
            ("verification.requested".to_string(), alice.id.clone()),
        ]
    );
}

#[actix_rt::test]
async fn analytics_count_what_happened() {
    let server = Server::start();
    let api = rest(&server);
    let [owner, v1, v2, v3] = api.register_all(["anowner", "v1", "v2", "v3"]).await;
    let shop = create_business(&api, &owner, "Counted", "retail").await;
    let id = shop["id"].as_str().unwrap().to_string();
    let path = format!("/api/business-profiles/{id}");
    // Followers: three follow (one twice), one leaves.
    for v in [&v1, &v2, &v3, &v1] {
        call(&api, "POST", &format!("{path}/follow"), v, None).await;
    }
    call(&api, "DELETE", &format!("{path}/follow"), &v3, None).await;
    // Profile views: every GET by id.
    for v in [&v1, &v2, &v2] {
        api.get(&path, &v.token).await;
    }
    // A post: seen by v1 in the feed and by id (one impression), by v2 by id twice (one).
    let (_, body) = api
        .post(
            "/api/business-posts",
            &owner.token,
            json!({"business_id": id, "content": "sale"}),
        )
        .await;
    let post_id = body["post"]["id"].as_str().unwrap().to_string();
    api.get("/api/feed", &v1.token).await;
    api.get(&format!("/api/posts/{post_id}"), &v1.token).await;
    api.get(&format!("/api/posts/{post_id}"), &v2.token).await;
    api.get(&format!("/api/posts/{post_id}"), &v2.token).await;
    api.get("/api/feed", &owner.token).await;
    // Likes: two, one taken back, one repeated; comments: three, one deleted.
    for v in [&v1, &v2, &v1] {
        call(&api, "POST", &format!("/api/posts/{post_id}/like"), v, None).await;
    }
    call(
        &api,
        "DELETE",
        &format!("/api/posts/{post_id}/like"),
        &v2,
        None,
    )
    .await;
    let mut comments = Vec::new();
    for v in [&v1, &v2, &v3] {
        let (_, body) = api
            .post(
                &format!("/api/posts/{post_id}/comments"),
                &v.token,
                json!({"content": "nice"}),
            )
            .await;
        comments.push(body["comment"]["id"].as_str().unwrap().to_string());
    }
    call(
        &api,
        "DELETE",
        &format!("/api/comments/{}", comments[2]),
        &v3,
        None,
    )
    .await;
    // Channel subscribers: two.
    let (_, body) = api
        .post(
            "/api/company-channels",
            &owner.token,
            json!({"business_id": id, "name": "News"}),
        )
        .await;
    let channel = body["channel"]["id"].as_str().unwrap().to_string();
    for v in [&v1, &v2] {
        call(
            &api,
            "POST",
            &format!("/api/company-channels/{channel}/subscribe"),
            v,
            None,
        )
        .await;
    }

    let report = format!("/api/business-analytics?business_id={id}");
    let (status, body) = api.get(&report, &v1.token).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = api.get(&report, &owner.token).await;
    assert_eq!(status, 200, "{body}");
    let want = json!({"followers": 2, "profile_views": 3, "post_views": 2, "likes": 1,
                      "comments": 2, "channel_subscribers": 2});
    assert_eq!(body["totals"], want, "{body}");
    let daily = body["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    let today = daily.last().unwrap();
    assert_eq!(today["day"], body["to"]);
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&today[k], v, "{k}");
    }
    assert_eq!(body["follower_count"], 2);
    assert_eq!(daily[0]["likes"], 0);
    // One day asked for: that day only.
    let to = body["to"].as_str().unwrap().to_string();
    let (_, body) = api
        .get(&format!("{report}&from={to}&to={to}"), &owner.token)
        .await;
    assert_eq!(body["daily"].as_array().unwrap().len(), 1);
    assert_eq!(body["totals"], want);
    for bad in [
        "&from=2026-13-01",
        "&from=2026-01-02&to=2026-01-01",
        "&from=2020-01-01&to=2026-01-01",
    ] {
        let (status, body) = api.get(&format!("{report}{bad}"), &owner.token).await;
        assert_error(status, &body, 400, "validation_failed");
    }
}
