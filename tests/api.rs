//! REST black-box tests: auth, rooms, messages, limits, codecs, OpenAPI — against the real binary.

#![allow(clippy::unwrap_used)]

mod common;

use common::{rest, Server};
use serde_json::{json, Value};

#[actix_rt::test]
async fn auth_register_login_refresh_logout() {
    let server = Server::start();
    let api = rest(&server);

    let (s, b) = api
        .call(
            "POST",
            "/api/auth/register",
            None,
            Some(
                json!({"email": "Ann@Example.com", "password": "12345678", "display_name": "Ann"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["user"]["email"], "ann@example.com");
    assert!(b["user"]["created_at"].is_i64());
    assert!(b["expires_in"].as_u64().is_some_and(|n| n > 0));
    assert!(
        !b.to_string().contains("password"),
        "no password material in {b}"
    );
    let token = b["access_token"].as_str().unwrap().to_string();
    let refresh = b["refresh_token"].as_str().unwrap().to_string();

    // Conflicts and validation.
    let dup = json!({"email": "ann@example.com", "password": "12345678", "display_name": "Ann"});
    let (s, b) = api
        .call("POST", "/api/auth/register", None, Some(dup))
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("conflict")));
    for bad in [
        json!({"email": "not-an-email", "password": "12345678", "display_name": "x"}),
        json!({"email": "b@example.com", "password": "1234567", "display_name": "x"}),
        json!({"email": "b@example.com", "password": "12345678"}),
    ] {
        let (s, b) = api
            .call("POST", "/api/auth/register", None, Some(bad))
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("validation_failed")),
            "{b}"
        );
    }
    // At the password minimum: accepted.
    let (s, _) = api
        .call(
            "POST",
            "/api/auth/register",
            None,
            Some(json!({"email": "c@example.com", "password": "8chars!!", "display_name": "C"})),
        )
        .await;
    assert_eq!(s, 201);

    // Login.
    let (s, b) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": "ann@example.com", "password": "12345678"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["user"]["display_name"], "Ann");
    let other_session = b["access_token"].as_str().unwrap().to_string();
    let (s, b) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": "ann@example.com", "password": "wrong-password"})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (s, _) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "12345678"})),
        )
        .await;
    assert_eq!(s, 401);

    // Me, with and without a valid token.
    let (s, b) = api.get("/api/auth/me", &token).await;
    assert_eq!(
        (s, b["user"]["email"].as_str()),
        (200, Some("ann@example.com"))
    );
    let (s, b) = api.call("GET", "/api/auth/me", None, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (s, _) = api.get("/api/auth/me", "garbage.token.here").await;
    assert_eq!(s, 401);
    let forged = format!("{}x", &token[..token.len() - 1]);
    let (s, _) = api.get("/api/auth/me", &forged).await;
    assert_eq!(s, 401, "a token with a changed signature must fail");

    // Refresh rotates: the new pair works, the old refresh token does not.
    let (s, b) = api
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let token2 = b["access_token"].as_str().unwrap().to_string();
    let refresh2 = b["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh);
    let (s, _) = api.get("/api/auth/me", &token2).await;
    assert_eq!(s, 200);
    let (s, b) = api
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // Replaying the spent token revoked the family: the newest refresh and access tokens die too.
    let (s, _) = api
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = api.get("/api/auth/me", &token2).await;
    assert_eq!(s, 401);

    // Logout revokes the session's tokens at once, access token included.
    let (s, b) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": "ann@example.com", "password": "12345678"})),
        )
        .await;
    assert_eq!(s, 200);
    let t = b["access_token"].as_str().unwrap().to_string();
    let r = b["refresh_token"].as_str().unwrap().to_string();
    let (s, _) = api.call("POST", "/api/auth/logout", Some(&t), None).await;
    assert_eq!(s, 204);
    let (s, _) = api.get("/api/auth/me", &t).await;
    assert_eq!(s, 401);
    let (s, _) = api
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": r})),
        )
        .await;
    assert_eq!(s, 401);
    // Other sessions of the same user are untouched.
    let (s, _) = api.get("/api/auth/me", &other_session).await;
    assert_eq!(s, 200);
}

#[actix_rt::test]
async fn access_tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[auth]\naccess_ttl_secs = 1\n").unwrap();
    let server = Server::start_with(&["--config", cfg.to_str().unwrap()], &[]);
    let api = rest(&server);
    let u = api.register("exp").await;
    let (s, _) = api.get("/api/auth/me", &u.token).await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, b) = api.get("/api/auth/me", &u.token).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // The refresh token still gets a fresh access token.
    let (s, b) = api
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": u.refresh})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .get("/api/auth/me", b["access_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 200);
}

#[actix_rt::test]
async fn rooms_direct_group_roles_and_membership() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;

    // Direct rooms are one per pair, from either side.
    let (s, r1) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "direct", "member_ids": [b.id]}),
        )
        .await;
    assert_eq!(s, 201, "{r1}");
    let room_id = r1["room"]["id"].as_str().unwrap().to_string();
    assert_eq!(r1["room"]["type"], "direct");
    let members = r1["room"]["member_ids"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let (s, r2) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "direct", "member_ids": [b.id]}),
        )
        .await;
    assert_eq!(
        (s, r2["room"]["id"].as_str()),
        (200, Some(room_id.as_str()))
    );
    let (s, r3) = api
        .post(
            "/api/chat-rooms",
            &b.token,
            json!({"type": "direct", "member_ids": [a.id]}),
        )
        .await;
    assert_eq!(
        (s, r3["room"]["id"].as_str()),
        (200, Some(room_id.as_str()))
    );
    // A third user cannot see it.
    let (s, e) = api
        .get(&format!("/api/chat-rooms/{room_id}"), &c.token)
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = api.get("/api/chat-rooms/no-such-room", &a.token).await;
    assert_eq!(s, 404);
    // Bad shapes.
    let (s, _) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "direct", "member_ids": [b.id, c.id]}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "circle", "member_ids": [b.id]}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, e) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "group", "member_ids": ["nobody"]}),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));

    // Groups: over 100 members is room_full.
    let many: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    let (s, e) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "group", "member_ids": many}),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("room_full")));

    let (s, g) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "group", "name": "Team", "member_ids": [b.id]}),
        )
        .await;
    assert_eq!(s, 201);
    let gid = g["room"]["id"].as_str().unwrap().to_string();
    assert_eq!(g["room"]["name"], "Team");
    assert_eq!(g["room"]["created_by"], a.id.as_str());
    assert_eq!(g["room"]["roles"][&a.id], "owner");
    assert_eq!(g["room"]["roles"][&b.id], "member");

    // Only owner/admin may rename or add; members may not.
    let (s, _) = api
        .call(
            "PUT",
            &format!("/api/chat-rooms/{gid}"),
            Some(&b.token),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, r) = api
        .call(
            "PUT",
            &format!("/api/chat-rooms/{gid}"),
            Some(&a.token),
            Some(json!({"name": "Team 2"})),
        )
        .await;
    assert_eq!((s, r["room"]["name"].as_str()), (200, Some("Team 2")));
    let (s, _) = api
        .post(
            &format!("/api/chat-rooms/{gid}/participants"),
            &b.token,
            json!({"user_ids": [c.id]}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, r) = api
        .post(
            &format!("/api/chat-rooms/{gid}/participants"),
            &a.token,
            json!({"user_ids": [c.id]}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["room"]["member_ids"].as_array().unwrap().len(), 3);
    // c can read now; promote b to admin; b removes c; c loses access.
    let (s, _) = api.get(&format!("/api/chat-rooms/{gid}"), &c.token).await;
    assert_eq!(s, 200);
    let (s, r) = api
        .call(
            "PUT",
            &format!("/api/chat-rooms/{gid}/participants/{}", b.id),
            Some(&a.token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(
        (s, r["room"]["roles"][&b.id].as_str()),
        (200, Some("admin"))
    );
    let s = api.remove_participant(&gid, &a.id, &b).await;
    assert_eq!(s, 403, "an admin cannot remove the owner");
    let s = api.remove_participant(&gid, &c.id, &b).await;
    assert_eq!(s, 204);
    let (s, _) = api
        .get(&format!("/api/chat-rooms/{gid}/messages"), &c.token)
        .await;
    assert_eq!(s, 403);
    // Only the owner deletes.
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/chat-rooms/{gid}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/chat-rooms/{gid}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = api.get(&format!("/api/chat-rooms/{gid}"), &a.token).await;
    assert_eq!(s, 404);
}

#[actix_rt::test]
async fn group_member_limit_at_and_past_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[limits]\nmax_group_members = 3\n").unwrap();
    let server = Server::start_with(&["--config", cfg.to_str().unwrap()], &[]);
    let api = rest(&server);
    let [a, b, c, d] = api.register_all(["a", "b", "c", "d"]).await;
    let (s, g) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "group", "member_ids": [b.id, c.id]}),
        )
        .await;
    assert_eq!(s, 201, "exactly at the limit: {g}");
    let gid = g["room"]["id"].as_str().unwrap();
    let (s, e) = api
        .post(
            &format!("/api/chat-rooms/{gid}/participants"),
            &a.token,
            json!({"user_ids": [d.id]}),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("room_full")));
    let (s, e) = api
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "group", "member_ids": [b.id, c.id, d.id]}),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("room_full")));
}

#[actix_rt::test]
async fn messages_history_edit_delete_reactions_replies_search() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    let room = api.group(&a, &[&b]).await;

    let m1 = api.send(&a, &room, "hello #Rust and #dovie").await;
    assert_eq!(m1["seq"], 1);
    assert_eq!(m1["kind"], "text");
    assert_eq!(m1["hashtags"], json!(["rust", "dovie"]));
    assert_eq!(m1["deleted"], false);
    assert_eq!(m1["reactions"], json!({}));
    for i in 2..=120 {
        let m = api
            .send(
                if i % 2 == 0 { &b } else { &a },
                &room,
                &format!("message {i}"),
            )
            .await;
        assert_eq!(m["seq"], i);
    }

    // Idempotent by nonce.
    let path = format!("/api/chat-rooms/{room}/messages");
    let (s, n1) = api
        .post(&path, &a.token, json!({"content": "once", "nonce": "n-1"}))
        .await;
    assert_eq!(s, 201);
    let (s, n2) = api
        .post(&path, &a.token, json!({"content": "once", "nonce": "n-1"}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(n1["message"]["id"], n2["message"]["id"]);
    assert_eq!(n1["message"]["seq"], 121);
    // Another user may use the same nonce.
    let (s, n3) = api
        .post(&path, &b.token, json!({"content": "mine", "nonce": "n-1"}))
        .await;
    assert_eq!((s, n3["message"]["seq"].as_u64()), (201, Some(122)));

    // History: default page is the latest 50, ascending.
    let (s, h) = api.get(&path, &a.token).await;
    assert_eq!(s, 200);
    let msgs = h["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 50);
    assert_eq!(msgs[0]["seq"], 73);
    assert_eq!(msgs[49]["seq"], 122);
    assert_eq!(h["has_more"], true);
    let h = api.history(&a, &room, "?before=11&limit=5").await;
    assert_eq!(
        h.iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![6, 7, 8, 9, 10]
    );
    let h = api.history(&a, &room, "?after=118").await;
    assert_eq!(
        h.iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![119, 120, 121, 122]
    );
    let (_, h) = api.get(&format!("{path}?after=118"), &a.token).await;
    assert_eq!(h["has_more"], false);
    let h = api.history(&a, &room, "?after=0&limit=1000").await;
    assert_eq!(h.len(), 100, "limit is capped at 100");
    let (s, _) = api.get(&format!("{path}?limit=0"), &a.token).await;
    assert_eq!(s, 400);
    let (s, _) = api.get(&format!("{path}?before=abc"), &a.token).await;
    assert_eq!(s, 400);

    // Replies must name a message of the room.
    let m1_id = m1["id"].as_str().unwrap();
    let (s, r) = api
        .post(&path, &b.token, json!({"content": "re", "reply_to": m1_id}))
        .await;
    assert_eq!((s, r["message"]["reply_to"].as_str()), (201, Some(m1_id)));
    let (s, _) = api
        .post(
            &path,
            &b.token,
            json!({"content": "re", "reply_to": "nope"}),
        )
        .await;
    assert_eq!(s, 404, "a reply to no message of the room");

    // Edit: sender only.
    let (s, e) = api
        .call(
            "PUT",
            &format!("/api/messages/{m1_id}"),
            Some(&b.token),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, e) = api
        .call(
            "PUT",
            &format!("/api/messages/{m1_id}"),
            Some(&a.token),
            Some(json!({"content": "edited #new"})),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["message"]["content"], "edited #new");
    assert_eq!(e["message"]["hashtags"], json!(["new"]));
    assert!(e["message"]["edited_at"].is_i64());
    let (s, _) = api
        .call(
            "PUT",
            &format!("/api/messages/{m1_id}"),
            Some(&c.token),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(s, 403, "non-members cannot touch messages");

    // Reactions: default 👍, who reacted.
    let like = format!("/api/messages/{m1_id}/like");
    let (s, l) = api.call("POST", &like, Some(&b.token), None).await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["message"]["reactions"], json!({"👍": [b.id]}));
    let (_, l) = api
        .call("POST", &like, Some(&a.token), Some(json!({"emoji": "🎉"})))
        .await;
    assert_eq!(
        l["message"]["reactions"],
        json!({"👍": [b.id], "🎉": [a.id]})
    );
    let (_, l) = api.call("DELETE", &like, Some(&b.token), None).await;
    assert_eq!(l["message"]["reactions"], json!({"🎉": [a.id]}));
    let (s, _) = api.call("POST", &like, Some(&c.token), None).await;
    assert_eq!(s, 403);

    // Delete: another member may not; the sender may; it stays as a tombstone.
    let m2 = api.history(&a, &room, "?after=1&limit=1").await[0].clone();
    let m2_id = m2["id"].as_str().unwrap();
    assert_eq!(m2["sender_id"], b.id.as_str());
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/messages/{m1_id}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/messages/{m1_id}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    // The owner (admin of the room) may delete someone else's message.
    let (s, _) = api
        .call(
            "DELETE",
            &format!("/api/messages/{m2_id}"),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let h = api.history(&a, &room, "?after=0&limit=2").await;
    for m in &h {
        assert_eq!(m["deleted"], true);
        assert_eq!(m["content"], "");
    }
    let (s, _) = api
        .call("DELETE", "/api/messages/no-such", Some(&a.token), None)
        .await;
    assert_eq!(s, 404);

    // Search: words (in my rooms only) and hashtags.
    api.send(&a, &room, "the quick brown fox #Animals").await;
    let other = api.group(&c, &[]).await;
    api.send(&c, &other, "a quick hidden fox").await;
    let (s, r) = api
        .get("/api/messages/search?q=quick%20fox", &a.token)
        .await;
    assert_eq!(s, 200);
    let found = r["messages"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{r}");
    assert_eq!(found[0]["content"], "the quick brown fox #Animals");
    let (_, r) = api
        .get(
            &format!("/api/chat-rooms/{room}/messages/search?q=qui"),
            &a.token,
        )
        .await;
    assert_eq!(r["messages"].as_array().unwrap().len(), 1, "prefix match");
    let (_, r) = api
        .get("/api/messages/search?hashtag=animals", &a.token)
        .await;
    assert_eq!(r["messages"].as_array().unwrap().len(), 1);
    let (_, r) = api.get("/api/messages/search?q=edited", &a.token).await;
    assert_eq!(
        r["messages"].as_array().unwrap().len(),
        0,
        "deleted messages are not found"
    );
    let (s, _) = api
        .get("/api/messages/search?q=%22%20OR%20*", &a.token)
        .await;
    assert_eq!(s, 200, "FTS syntax in a query is text, not an error");
    let (s, _) = api
        .get(
            &format!("/api/chat-rooms/{other}/messages/search?q=fox"),
            &a.token,
        )
        .await;
    assert_eq!(s, 403);
}

#[actix_rt::test]
async fn unread_counts_and_room_list() {
    let server = Server::start();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    for i in 0..5 {
        api.send(&a, &room, &format!("m{i}")).await;
    }
    let (_, u) = api.get("/api/unread-counts", &b.token).await;
    assert_eq!(u["counts"][&room], 5);
    let (_, u) = api.get("/api/unread-counts", &a.token).await;
    assert_eq!(u["counts"][&room], 0, "my own messages are read");
    let (_, l) = api.get("/api/chat-rooms", &b.token).await;
    let entry = &l["rooms"][0];
    assert_eq!(entry["room"]["id"], room.as_str());
    assert_eq!(entry["unread_count"], 5);
    assert_eq!(entry["last_message"]["content"], "m4");
    let (s, _) = api
        .post(
            &format!("/api/chat-rooms/{room}/read"),
            &b.token,
            json!({"seq": 3}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, u) = api.get("/api/unread-counts", &b.token).await;
    assert_eq!(u["counts"][&room], 2);
    // A read mark never goes back, and never past the end.
    api.post(
        &format!("/api/chat-rooms/{room}/read"),
        &b.token,
        json!({"seq": 1}),
    )
    .await;
    let (_, u) = api.get("/api/unread-counts", &b.token).await;
    assert_eq!(u["counts"][&room], 2);
    api.post(
        &format!("/api/chat-rooms/{room}/read"),
        &b.token,
        json!({"seq": 999}),
    )
    .await;
    let (_, u) = api.get("/api/unread-counts", &b.token).await;
    assert_eq!(u["counts"][&room], 0);
    let c = api.register("c").await;
    let (s, _) = api
        .post(
            &format!("/api/chat-rooms/{room}/read"),
            &c.token,
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(s, 403);
}

#[actix_rt::test]
async fn limits_and_bad_input_change_nothing() {
    let server = Server::start();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let path = format!("/api/chat-rooms/{room}/messages");

    let at_limit = "가".repeat(4000);
    let (s, _) = api
        .post(&path, &a.token, json!({"content": at_limit}))
        .await;
    assert_eq!(s, 201, "4000 characters is allowed");
    let (s, e) = api
        .post(&path, &a.token, json!({"content": "x".repeat(4001)}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("validation_failed"))
    );
    let (s, _) = api.post(&path, &a.token, json!({"content": "   "})).await;
    assert_eq!(s, 400);
    let (s, _) = api
        .post(&path, &a.token, json!({"text": "wrong field"}))
        .await;
    assert_eq!(s, 400);
    let (s, _, body) = api
        .raw(
            "POST",
            &path,
            &[
                ("authorization", &format!("Bearer {}", a.token)),
                ("content-type", "application/json"),
            ],
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(s, 400);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["error"]["code"], "bad_request");
    let (s, _, body) = api
        .raw(
            "POST",
            &path,
            &[
                ("authorization", &format!("Bearer {}", a.token)),
                ("content-type", "text/plain"),
            ],
            b"hi".to_vec(),
        )
        .await;
    assert_eq!(s, 415);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["error"]["code"], "unsupported_media_type");
    let big = serde_json::to_vec(&json!({"content": "x".repeat(300 * 1024)})).unwrap();
    let (s, _, body) = api
        .raw(
            "POST",
            &path,
            &[
                ("authorization", &format!("Bearer {}", a.token)),
                ("content-type", "application/json"),
            ],
            big,
        )
        .await;
    assert_eq!(s, 413);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["error"]["code"], "payload_too_large");
    // Nothing of the rejected sends was stored.
    let all = api.all_messages(&a, &room).await;
    assert_eq!(all.len(), 1);
    // Non-members cannot send or read.
    let c = api.register("c").await;
    let (s, _) = api
        .post(&path, &c.token, json!({"content": "intruder"}))
        .await;
    assert_eq!(s, 403);
    let (s, _) = api
        .post(
            "/api/chat-rooms/nope/messages",
            &a.token,
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(api.all_messages(&a, &room).await.len(), 1);
}

#[actix_rt::test]
async fn rest_speaks_messagepack_on_request() {
    let server = Server::start();
    let api = rest(&server);
    let body = rmp_serde::to_vec_named(
        &json!({"email": "mp@example.com", "password": "12345678", "display_name": "MP"}),
    )
    .unwrap();
    let (s, ct, bytes) = api
        .raw(
            "POST",
            "/api/auth/register",
            &[
                ("content-type", "application/msgpack"),
                ("accept", "application/msgpack"),
            ],
            body,
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(ct, "application/msgpack");
    let v: Value = rmp_serde::from_slice(&bytes).expect("a MessagePack answer");
    assert_eq!(v["user"]["email"], "mp@example.com");
    let token = v["access_token"].as_str().unwrap();
    // JSON body, MessagePack answer.
    let (s, ct, bytes) = api
        .raw(
            "GET",
            "/api/auth/me",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("accept", "application/msgpack"),
            ],
            vec![],
        )
        .await;
    assert_eq!((s, ct.as_str()), (200, "application/msgpack"));
    let v: Value = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(v["user"]["display_name"], "MP");
    // Malformed MessagePack is a clear 400.
    let (s, _, _) = api
        .raw(
            "POST",
            "/api/auth/login",
            &[("content-type", "application/msgpack")],
            vec![0xc1, 0x00],
        )
        .await;
    assert_eq!(s, 400);
}

#[actix_rt::test]
async fn openapi_lists_every_route_and_ops_endpoints_answer() {
    let server = Server::start();
    let api = rest(&server);
    let (s, doc) = api.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/api/auth/register"),
        ("post", "/api/auth/login"),
        ("post", "/api/auth/refresh"),
        ("post", "/api/auth/logout"),
        ("get", "/api/auth/me"),
        ("get", "/api/chat-rooms"),
        ("post", "/api/chat-rooms"),
        ("get", "/api/chat-rooms/{id}"),
        ("put", "/api/chat-rooms/{id}"),
        ("delete", "/api/chat-rooms/{id}"),
        ("get", "/api/chat-rooms/{id}/messages"),
        ("post", "/api/chat-rooms/{id}/messages"),
        ("put", "/api/messages/{id}"),
        ("delete", "/api/messages/{id}"),
        ("post", "/api/messages/{id}/like"),
        ("delete", "/api/messages/{id}/like"),
        ("post", "/api/chat-rooms/{id}/participants"),
        ("delete", "/api/chat-rooms/{id}/participants/{user_id}"),
        ("get", "/api/unread-counts"),
        ("post", "/api/chat-rooms/{id}/read"),
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from OpenAPI"
        );
    }
    // The WebSocket gateway is described beside the REST operations, not as one.
    assert_eq!(doc["x-websocket"]["path"], "/ws");
    assert!(paths.get("/ws").is_none());
    // A method a known path does not serve is 405 with `Allow` naming the ones it does (unless
    // another documented pattern fits the same path: `/api/messages/search` is also
    // `/api/messages/{id}`).
    let token = api.register("o").await.token;
    let fits = |pattern: &str, concrete: &str| {
        let (p, c): (Vec<&str>, Vec<&str>) =
            (pattern.split('/').collect(), concrete.split('/').collect());
        p.len() == c.len() && p.iter().zip(&c).all(|(p, c)| p == c || p.starts_with('{'))
    };
    for (path, ops) in paths {
        let concrete = path.replace("{id}", "x").replace("{user_id}", "y");
        let served: Vec<String> = ops
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let elsewhere = paths.iter().any(|(other, ops)| {
                other != path && fits(other, &concrete) && ops.get(method.to_lowercase()).is_some()
            });
            if served.iter().any(|m| m == method) || elsewhere {
                continue;
            }
            let (s, b, headers) = api.call_full(method, &concrete, Some(&token), None).await;
            assert_eq!(s, 405, "{method} {path}: {b}");
            assert_eq!(b["error"]["code"], "method_not_allowed");
            let allow: Vec<String> = headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .split(", ")
                .map(str::to_string)
                .collect();
            assert!(
                served.iter().all(|m| allow.contains(m)) && !allow.iter().any(|m| m == method),
                "{method} {path}: Allow {allow:?}, served {served:?}"
            );
        }
    }
    // Every documented route is served (none answers the router's 404).
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "x").replace("{user_id}", "y");
            let (s, b) = api
                .call(&method.to_uppercase(), &concrete, Some(&token), None)
                .await;
            assert!(
                !(s == 404 && b["error"]["message"] == "no such route"),
                "{method} {path} is documented but not served"
            );
        }
    }
    let (s, b) = api.call("GET", "/health", None, None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
    let (s, r) = api.call("GET", "/ready", None, None).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("ready")));
    assert!(r["node_id"].is_string() && r["sessions"].is_u64() && r["active_rooms"].is_u64());
    let (s, text) = api.call("GET", "/metrics", None, None).await;
    assert_eq!(s, 200);
    let text = text.as_str().unwrap_or_default().to_string();
    for series in [
        "dovie_http_requests_total",
        "dovie_store_op_seconds",
        "dovie_room_actors",
    ] {
        assert!(text.contains(series), "metrics lack {series}");
    }
    let (s, b) = api.call("GET", "/api/nope", None, None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
}

#[actix_rt::test]
async fn nonce_idempotency_and_history_survive_a_restart() {
    let mut server = Server::start();
    let api = rest(&server);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let path = format!("/api/chat-rooms/{room}/messages");
    let (s, first) = api
        .post(
            &path,
            &a.token,
            json!({"content": "durable", "nonce": "keep-me"}),
        )
        .await;
    assert_eq!(s, 201);
    assert!(server.terminate(), "SIGTERM must exit cleanly");
    server.restart();
    let api = rest(&server);
    let (s, again) = api
        .post(
            &path,
            &a.token,
            json!({"content": "durable", "nonce": "keep-me"}),
        )
        .await;
    assert_eq!(s, 200, "same nonce after a restart: {again}");
    assert_eq!(first["message"]["id"], again["message"]["id"]);
    let next = api.send(&b, &room, "next").await;
    assert_eq!(next["seq"], 2, "seq continues with no gap and no reuse");
    // Tokens issued before the restart still work (the secret is kept in the data dir).
    let (s, _) = api.get("/api/auth/me", &a.token).await;
    assert_eq!(s, 200);
}

#[test]
fn migrate_applies_the_schema_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(dir.path().join("dovie.db").exists());
    let again = run();
    assert!(again.status.success(), "migrate is idempotent");
    // A bad flag value is a clear configuration error, not a panic.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let bad_env = std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("DOVIE_STORE", "nonsense")
        .output()
        .unwrap();
    assert!(!bad_env.status.success());
}

#[actix_rt::test]
async fn profiles_are_public_without_private_fields_and_hidden_when_not_discoverable() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    api.group(&a, &[&b]).await;
    let (s, u) = api.get(&format!("/api/users/{}", b.id), &a.token).await;
    assert_eq!((s, u["user"]["id"].as_str()), (200, Some(b.id.as_str())));
    // Someone else's profile is public: no email, no phone, no role.
    for private in ["email", "phone", "role"] {
        assert!(u["user"].get(private).is_none(), "{private} shown: {u}");
    }
    assert_eq!(u["user"]["display_name"], "b");
    // My own carries them.
    let (s, me) = api.get(&format!("/api/users/{}", a.id), &a.token).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], a.email.as_str());
    assert_eq!(me["user"]["role"], "user");
    // A discoverable stranger's public profile shows; an undiscoverable one is not found,
    // except to room mates.
    let (s, u) = api.get(&format!("/api/users/{}", c.id), &a.token).await;
    assert_eq!(s, 200);
    assert!(
        u["user"].get("email").is_none() && u["user"].get("online").is_none(),
        "{u}"
    );
    for (who, token) in [(&c, &c.token), (&b, &b.token)] {
        let (s, body) = api
            .call(
                "PATCH",
                "/api/users/me",
                Some(token),
                Some(serde_json::json!({"discoverable": false})),
            )
            .await;
        assert_eq!(s, 200, "{} {body}", who.id);
    }
    let (s, _) = api.get(&format!("/api/users/{}", c.id), &a.token).await;
    assert_eq!(s, 404, "undiscoverable strangers are not found");
    let (s, _) = api.get(&format!("/api/users/{}", b.id), &a.token).await;
    assert_eq!(s, 200, "room mates are");
}

#[test]
fn admin_grant_makes_an_account_admin() {
    let server = Server::start();
    let rt = actix_rt::System::new();
    let user = rt.block_on(async { rest(&server).register("boss").await });
    let grant = |email: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
            .args(["admin", "grant", email, "--data-dir"])
            .arg(server.dir.path())
            .output()
            .unwrap()
    };
    let out = grant(&user.email.to_uppercase());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me = rt.block_on(async { rest(&server).get("/api/auth/me", &user.token).await });
    assert_eq!(me.1["user"]["role"], "admin", "{}", me.1);
    let missing = grant("nobody@example.com");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account"));
}

#[actix_rt::test]
async fn repeated_participants_and_the_last_member_leaving() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    let room = api.group(&a, &[]).await;
    // [b, c, b]: each once, no store error.
    let (s, r) = api
        .post(
            &format!("/api/chat-rooms/{room}/participants"),
            &a.token,
            json!({"user_ids": [b.id, c.id, b.id, c.id]}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["room"]["member_ids"].as_array().unwrap().len(), 3);
    // An empty id is refused, and changes nothing.
    let (s, _) = api
        .post(
            &format!("/api/chat-rooms/{room}/participants"),
            &a.token,
            json!({"user_ids": [""]}),
        )
        .await;
    assert_eq!(s, 400);
    // Everyone but the owner leaves; then the owner, the last member: the group is gone.
    for u in [&b, &c] {
        let s = api.remove_participant(&room, &u.id, u).await;
        assert_eq!(s, 204);
    }
    let s = api.remove_participant(&room, &a.id, &a).await;
    assert_eq!(s, 204);
    let (s, _) = api.get(&format!("/api/chat-rooms/{room}"), &a.token).await;
    assert_eq!(s, 404, "nobody is left to delete it: it is deleted");
    let (_, rooms) = api.get("/api/chat-rooms", &a.token).await;
    assert!(rooms["rooms"].as_array().unwrap().is_empty());
}

#[actix_rt::test]
async fn http_series_have_a_fixed_method_label() {
    let server = Server::start();
    let api = rest(&server);
    for method in ["FROB", "X-CUSTOM", "BREW"] {
        let (s, _) = api.call(method, "/health", None, None).await;
        assert_eq!(s, 405);
    }
    let (_, metrics) = api.call("GET", "/metrics", None, None).await;
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert!(text.contains("method=\"other\""), "{text}");
    for method in ["FROB", "X-CUSTOM", "BREW"] {
        assert!(!text.contains(method), "a series for {method}");
    }
}

#[actix_rt::test]
async fn bodies_must_be_objects() {
    let server = Server::start();
    let api = rest(&server);
    let a = api.register("a").await;
    let room = api.group(&a, &[]).await;
    let (s, _) = api
        .call(
            "PUT",
            &format!("/api/chat-rooms/{room}"),
            Some(&a.token),
            Some(json!(["renamed"])),
        )
        .await;
    assert_eq!(
        s, 400,
        "an array is not an object (serde would read it by position)"
    );
    let (s, r) = api
        .call(
            "PUT",
            &format!("/api/chat-rooms/{room}"),
            Some(&a.token),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!((s, r["room"]["name"].as_str()), (200, Some("renamed")));
    // MessagePack: a map is an object, an array is not.
    let array = rmp_serde::to_vec(&json!(["x"])).unwrap();
    let (s, _, _) = api
        .raw(
            "PUT",
            &format!("/api/chat-rooms/{room}"),
            &[
                ("authorization", &format!("Bearer {}", a.token)),
                ("content-type", "application/msgpack"),
            ],
            array,
        )
        .await;
    assert_eq!(s, 400);
}
