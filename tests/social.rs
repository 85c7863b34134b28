//! The social network end to end on one node: posts with visibility checked on every read
//! path, follows and the home feed (newest first, paged with no duplicate or gap while posts
//! keep arriving), likes exact under concurrency, comments with one level of replies, blocks,
//! and hashtag trends against a hand-computed expectation.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{rest, Rest, Server, User};
use serde_json::{json, Value};

fn assert_error(status: u16, body: &Value, want: u16, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn post(api: &Rest, who: &User, body: Value) -> Value {
    let (status, body) = api.post("/api/posts", &who.token, body).await;
    assert_eq!(status, 201, "{body}");
    body["post"].clone()
}

async fn ids_of(api: &Rest, who: &User, path: &str) -> Vec<String> {
    let (status, body) = api.get(path, &who.token).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of `path` (with `limit`), following `next_cursor`.
async fn all_pages(api: &Rest, who: &User, path: &str, limit: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, body) = api.get(&url, &who.token).await;
        assert_eq!(status, 200, "{body}");
        for p in body["posts"].as_array().unwrap() {
            out.push(p["id"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

#[actix_rt::test]
async fn posts_are_seen_only_by_who_may_and_follows_make_the_feed() {
    let server = Server::start();
    let api = rest(&server);
    let [ann, bob, cat] = api.register_all(["ann", "bob", "cat"]).await;

    // Bad input changes nothing.
    for bad in [
        json!({}),
        json!({"content": "   "}),
        json!({"content": "x".repeat(5001)}),
        json!({"content": "hi", "visibility": "friends"}),
    ] {
        let (status, body) = api.post("/api/posts", &ann.token, bad).await;
        assert_error(status, &body, 400, "validation_failed");
    }
    assert!(ids_of(&api, &ann, &format!("/api/users/{}/posts", ann.id))
        .await
        .is_empty());

    let public = post(
        &api,
        &ann,
        json!({"content": "hello #Rust world <@someone>"}),
    )
    .await;
    assert_eq!(public["hashtags"], json!(["rust"]));
    assert_eq!(public["mentions"], json!(["someone"]));
    assert_eq!(public["visibility"], "public");
    assert_eq!(public["like_count"], 0);
    assert_eq!(public["liked_by_me"], false);
    let at_limit = post(
        &api,
        &ann,
        json!({"content": "y".repeat(5000), "visibility": "followers"}),
    )
    .await;
    let secret = at_limit["id"].as_str().unwrap();
    let pid = public["id"].as_str().unwrap();

    // Bob does not follow Ann: the public post only, everywhere.
    let (status, _) = api.get(&format!("/api/posts/{pid}"), &bob.token).await;
    assert_eq!(status, 200);
    let (status, body) = api.get(&format!("/api/posts/{secret}"), &bob.token).await;
    assert_error(status, &body, 404, "not_found");
    assert_eq!(
        ids_of(&api, &bob, &format!("/api/users/{}/posts", ann.id)).await,
        [pid]
    );
    assert!(ids_of(&api, &bob, "/api/feed").await.is_empty());
    let (status, body) = api
        .post(&format!("/api/posts/{secret}/like"), &bob.token, json!({}))
        .await;
    assert_error(status, &body, 404, "not_found");

    // Following: the followers-only post too, and Ann's posts in Bob's feed with his own.
    let (status, body) = api
        .post(
            &format!("/api/users/{}/follow", bob.id),
            &bob.token,
            json!({}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let (status, _) = api
        .post(
            &format!("/api/users/{}/follow", ann.id),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .post(
            &format!("/api/users/{}/follow", ann.id),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(status, 204, "idempotent");
    let own = post(&api, &bob, json!({"content": "bob here"})).await;
    assert_eq!(
        ids_of(&api, &bob, "/api/feed").await,
        [own["id"].as_str().unwrap(), secret, pid]
    );
    let (status, body) = api
        .get(&format!("/api/users/{}/followers", ann.id), &cat.token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"][0]["id"], bob.id.as_str());
    assert!(body["users"][0].get("email").is_none(), "{body}");
    let (_, body) = api
        .get(&format!("/api/users/{}/following", bob.id), &bob.token)
        .await;
    assert_eq!(body["users"].as_array().unwrap().len(), 1);

    // A block hides everything both ways, and stops follows.
    let (status, _) = api
        .post("/api/blocks", &ann.token, json!({"user_id": cat.id}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = api.get(&format!("/api/posts/{pid}"), &cat.token).await;
    assert_eq!(status, 404);
    let (status, _) = api
        .get(&format!("/api/users/{}/posts", ann.id), &cat.token)
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .post(
            &format!("/api/users/{}/follow", ann.id),
            &cat.token,
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .get(&format!("/api/users/{}/followers", ann.id), &cat.token)
        .await;
    assert_eq!(status, 404);

    // Unfollowed: the followers-only post is gone from Bob's view again.
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/users/{}/follow", ann.id),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api.get(&format!("/api/posts/{secret}"), &bob.token).await;
    assert_eq!(status, 404);
    assert_eq!(
        ids_of(&api, &bob, "/api/feed").await,
        [own["id"].as_str().unwrap()]
    );

    // Edits and deletion are the author's.
    let (status, body) = api
        .call(
            "PATCH",
            &format!("/api/posts/{pid}"),
            Some(&bob.token),
            Some(json!({"content": "mine now"})),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = api
        .call(
            "PATCH",
            &format!("/api/posts/{pid}"),
            Some(&ann.token),
            Some(json!({"content": "now #go"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["post"]["hashtags"], json!(["go"]));
    assert!(body["post"]["edited_at"].is_i64());
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/posts/{pid}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/posts/{pid}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api.get(&format!("/api/posts/{pid}"), &ann.token).await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn the_feed_pages_without_duplicates_or_gaps_while_posts_arrive() {
    let server = Server::start();
    let api = rest(&server);
    let [ann, bob, reader] = api.register_all(["ann", "bob", "reader"]).await;
    for who in [&ann, &bob] {
        let (status, _) = api
            .post(
                &format!("/api/users/{}/follow", who.id),
                &reader.token,
                json!({}),
            )
            .await;
        assert_eq!(status, 204);
    }
    let mut before = Vec::new();
    for i in 0..30 {
        let who = if i % 3 == 0 { &bob } else { &ann };
        let p = post(&api, who, json!({"content": format!("post {i}")})).await;
        before.push(p["id"].as_str().unwrap().to_string());
    }
    before.reverse();
    // Paging while both keep posting: every post made before the walk, newest first, each
    // once; posts made during it are only ever ahead of where the walk is.
    let writer = async {
        for i in 0..20 {
            let who = if i % 2 == 0 { &bob } else { &ann };
            post(&api, who, json!({"content": format!("late {i}")})).await;
        }
    };
    let (paged, ()) = futures_util::join!(all_pages(&api, &reader, "/api/feed", 7), writer);
    let unique: HashSet<&String> = paged.iter().collect();
    assert_eq!(unique.len(), paged.len(), "no duplicates");
    assert!(paged.len() >= before.len(), "{}", paged.len());
    assert_eq!(
        &paged[paged.len() - before.len()..],
        &before[..],
        "newest first, no gaps"
    );
    // Afterwards, all fifty.
    let all = all_pages(&api, &reader, "/api/feed", 7).await;
    assert_eq!(all.len(), 50);
    assert_eq!(&all[20..], &before[..]);
    let (status, body) = api.get("/api/feed?limit=0", &reader.token).await;
    assert_error(status, &body, 400, "validation_failed");
}

#[actix_rt::test]
async fn likes_are_exact_under_concurrency_and_comments_nest_once() {
    let server = Server::start();
    let api = rest(&server);
    let [ann, bob, eve] = api.register_all(["ann", "bob", "eve"]).await;
    let fans: Vec<User> = futures_util::future::join_all((0..12).map(|i| {
        let api = &api;
        async move { api.register(&format!("fan{i}")).await }
    }))
    .await;
    let p = post(&api, &ann, json!({"content": "like me"})).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let likes = futures_util::future::join_all(fans.iter().chain(fans.iter()).map(|f| {
        let (api, pid) = (&api, pid.clone());
        async move {
            api.post(&format!("/api/posts/{pid}/like"), &f.token, json!({}))
                .await
        }
    }))
    .await;
    assert!(likes.iter().all(|(s, _)| *s == 200));
    let (_, body) = api.get(&format!("/api/posts/{pid}"), &fans[0].token).await;
    assert_eq!(body["post"]["like_count"], 12);
    assert_eq!(body["post"]["liked_by_me"], true);
    let (_, body) = api.get(&format!("/api/posts/{pid}"), &bob.token).await;
    assert_eq!(body["post"]["liked_by_me"], false);
    for _ in 0..2 {
        let (status, body) = api
            .call(
                "DELETE",
                &format!("/api/posts/{pid}/like"),
                Some(&fans[0].token),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["post"]["like_count"], 11);
    }

    // Comments, one level of replies.
    let comment = |who: &User, body: Value| {
        let (api, pid, token) = (&api, pid.clone(), who.token.clone());
        async move {
            api.post(&format!("/api/posts/{pid}/comments"), &token, body)
                .await
        }
    };
    let (status, body) = comment(&bob, json!({"content": " "})).await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = comment(&bob, json!({"content": "x".repeat(2001)})).await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, top) = comment(&bob, json!({"content": "first!"})).await;
    assert_eq!(status, 201, "{top}");
    let top_id = top["comment"]["id"].as_str().unwrap();
    let (status, reply) = comment(&eve, json!({"content": "agreed", "reply_to": top_id})).await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["comment"]["reply_to"], top_id);
    let reply_id = reply["comment"]["id"].as_str().unwrap();
    let (status, body) = comment(&ann, json!({"content": "deeper", "reply_to": reply_id})).await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = comment(&ann, json!({"content": "?", "reply_to": "nope"})).await;
    assert_error(status, &body, 404, "not_found");
    let (_, body) = api
        .get(&format!("/api/posts/{pid}/comments"), &eve.token)
        .await;
    let listed: Vec<&str> = body["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [top_id, reply_id]);
    let (_, body) = api.get(&format!("/api/posts/{pid}"), &eve.token).await;
    assert_eq!(body["post"]["comment_count"], 2);
    // Eve may not delete Bob's comment; the post's author may, and its reply goes with it.
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/comments/{top_id}"),
            Some(&eve.token),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/comments/{top_id}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, body) = api.get(&format!("/api/posts/{pid}"), &eve.token).await;
    assert_eq!(body["post"]["comment_count"], 0);
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/comments/{reply_id}"),
            Some(&eve.token),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn trends_rise_with_distinct_accounts_and_drop_deleted_posts() {
    let server = Server::start();
    let api = rest(&server);
    let people: Vec<User> = futures_util::future::join_all((0..7).map(|i| {
        let api = &api;
        async move { api.register(&format!("tr{i}")).await }
    }))
    .await;
    // Four accounts: below the floor of five, not trending.
    let mut posts = Vec::new();
    for who in &people[..4] {
        posts.push(post(&api, who, json!({"content": "#Dovie is out"})).await);
    }
    // Repeats by one account and followers-only posts do not count as accounts.
    post(&api, &people[0], json!({"content": "again #dovie"})).await;
    post(
        &api,
        &people[5],
        json!({"content": "#dovie", "visibility": "followers"}),
    )
    .await;
    let (status, body) = api.get("/api/trends/hashtags", &people[6].token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hashtags"], json!([]));
    // The sixth account: (6 − 1)² / 1 = 25 (no use yesterday: expected 1).
    posts.push(post(&api, &people[4], json!({"content": "#dovie"})).await);
    posts.push(post(&api, &people[6], json!({"content": "#dovie #other"})).await);
    let (_, body) = api
        .get("/api/trends/hashtags?limit=5", &people[6].token)
        .await;
    let t = &body["hashtags"][0];
    assert_eq!(t["tag"], "dovie", "{body}");
    assert_eq!(t["accounts_today"], 6);
    assert_eq!(t["uses_today"], 7);
    let score = t["score"].as_f64().unwrap();
    assert!(
        (24.9..=25.0).contains(&score),
        "decays from 25 only slightly: {score}"
    );
    assert_eq!(t["history"].as_array().unwrap().len(), 7);
    assert_eq!(t["history"][0]["accounts"], 6);
    assert_eq!(t["history"][1]["accounts"], 0);
    assert_eq!(
        body["hashtags"].as_array().unwrap().len(),
        1,
        "#other: one account"
    );
    // Hashtag suggestions read public posts (a word that is a tag there, and the tags that come
    // with it) and add what is trending, with no provider at all.
    let suggest = |text: &'static str| {
        let (api, token) = (&api, people[6].token.clone());
        async move {
            let (status, body) = api
                .post("/api/hashtag-suggestions", &token, json!({ "text": text }))
                .await;
            assert_eq!(status, 200, "{body}");
            body["hashtags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect::<Vec<String>>()
        }
    };
    let tags = suggest("trying dovie today").await;
    assert_eq!(&tags[..2], ["dovie", "other"], "{tags:?}");
    let tags = suggest("nothing related here").await;
    assert_eq!(tags, ["dovie"], "trending: {tags:?}");
    assert!(!suggest("about #dovie").await.contains(&"dovie".to_string()));

    // Deleted posts drop out: back under the floor, no longer trending.
    // tr1 and tr2 take theirs back (tr0 still has one): four accounts.
    for p in &posts[1..3] {
        let author = people
            .iter()
            .find(|u| u.id == p["author_id"].as_str().unwrap())
            .unwrap();
        let (status, _) = api
            .call(
                "DELETE",
                &format!("/api/posts/{}", p["id"].as_str().unwrap()),
                Some(&author.token),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    let (_, body) = api.get("/api/trends/hashtags", &people[6].token).await;
    assert_eq!(body["hashtags"], json!([]), "{body}");
    let (status, body) = api
        .get("/api/trends/hashtags?limit=51", &people[6].token)
        .await;
    assert_error(status, &body, 400, "validation_failed");
}

#[actix_rt::test]
async fn activity_is_listed_and_told_live() {
    use common::{Auth, Ws};
    use dovie_protocol::Codec;
    let server = Server::start();
    let api = rest(&server);
    let [ann, bob, cat] = api.register_all(["ann", "bob", "cat"]).await;
    let mut wa = Ws::connect(&server, Codec::Json, Auth::Query(&ann.token)).await;
    let mut wb = Ws::connect(&server, Codec::Json, Auth::Query(&bob.token)).await;
    let (status, _) = api
        .post(
            &format!("/api/users/{}/follow", ann.id),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let live = wa.expect("activity").await;
    assert_eq!(live["d"]["item"]["kind"], "follow", "{live}");
    assert_eq!(live["d"]["item"]["actor_id"], bob.id.as_str());

    let p = post(
        &api,
        &ann,
        json!({"content": format!("thanks <@{}>", bob.id)}),
    )
    .await;
    let pid = p["id"].as_str().unwrap();
    let live = wb.expect("activity").await;
    assert_eq!(live["d"]["item"]["kind"], "mention");
    assert_eq!(live["d"]["item"]["post_id"], pid);
    // One's own doing is no activity.
    api.post(&format!("/api/posts/{pid}/like"), &ann.token, json!({}))
        .await;
    api.post(&format!("/api/posts/{pid}/like"), &bob.token, json!({}))
        .await;
    api.post(&format!("/api/posts/{pid}/like"), &bob.token, json!({}))
        .await;
    let live = wa.expect("activity").await;
    assert_eq!(live["d"]["item"]["kind"], "like");
    let (status, c) = api
        .post(
            &format!("/api/posts/{pid}/comments"),
            &bob.token,
            json!({"content": "welcome"}),
        )
        .await;
    assert_eq!(status, 201);
    let cid = c["comment"]["id"].as_str().unwrap();
    assert_eq!(wa.expect("activity").await["d"]["item"]["kind"], "comment");
    let (status, _) = api
        .post(
            &format!("/api/posts/{pid}/comments"),
            &cat.token,
            json!({"content": "+1", "reply_to": cid}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(wb.expect("activity").await["d"]["item"]["kind"], "reply");
    assert_eq!(wa.expect("activity").await["d"]["item"]["kind"], "comment");
    wa.expect_none("activity", std::time::Duration::from_millis(500))
        .await;

    let (status, body) = api.get("/api/activity", &ann.token).await;
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["comment", "comment", "like", "follow"]);
    let (_, page) = api.get("/api/activity?limit=3", &ann.token).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest_page) = api
        .get(
            &format!("/api/activity?limit=3&cursor={cursor}"),
            &ann.token,
        )
        .await;
    assert_eq!(rest_page["items"][0]["kind"], "follow");
    assert_eq!(rest_page["next_cursor"], Value::Null);
}
