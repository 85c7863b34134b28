//! The AI assistants end to end against stand-ins of their providers: what leaves Dovie is only
//! what the caller can read and only with their `ai` consent; answers are mapped as documented;
//! a provider's failure or absence gives the documented errors with nothing leaked; the hourly
//! quota holds; translations are kept per message, target and version; language detection and
//! hashtag suggestions work with no provider at all; saved commands expand on REST and WS.

#![allow(clippy::unwrap_used)]

mod common;

use common::standins::ai::{OpenAi, Scripted, YouTube};
use common::{rest, Auth, Rest, Server, User, Ws};
use dovie_protocol::Codec;
use serde_json::{json, Value};

struct Rig {
    server: Server,
    openai: OpenAi,
    youtube: YouTube,
}

fn rig_with(extra: &[(&str, &str)]) -> Rig {
    let openai = OpenAi::start();
    let youtube = YouTube::start();
    let (oa_url, yt_url) = (openai.base_url(), youtube.base_url());
    let mut env = vec![
        ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
        ("DOVIE_PROVIDERS__OPENAI__BASE_URL", oa_url.as_str()),
        ("DOVIE_PROVIDERS__OPENAI__API_KEY", openai.api_key.as_str()),
        (
            "DOVIE_PROVIDERS__OPENAI__CHAT_MODEL",
            openai.chat_model.as_str(),
        ),
        ("DOVIE_PROVIDERS__YOUTUBE__BASE_URL", yt_url.as_str()),
        (
            "DOVIE_PROVIDERS__YOUTUBE__API_KEY",
            youtube.api_key.as_str(),
        ),
    ];
    env.extend_from_slice(extra);
    let server = Server::start_with(&[], &env);
    Rig {
        server,
        openai,
        youtube,
    }
}

fn rig() -> Rig {
    rig_with(&[])
}

async fn consent(api: &Rest, user: &User, ai: bool) {
    let (status, body) = api
        .call(
            "PUT",
            "/api/me/consents",
            Some(&user.token),
            Some(json!({ "ai": ai })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consents"]["ai"], ai);
}

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

#[actix_rt::test]
async fn smart_replies_see_only_my_room_and_need_my_consent() {
    let rig = rig();
    let api = rest(&rig.server);
    let [a, b, c, d] = api.register_all(["ann", "bob", "cat", "dan"]).await;
    let room = api.group(&a, &[&b, &c]).await;
    let other = api.group(&b, &[&d]).await;
    api.send(&b, &other, "secret plans in another room").await;
    api.send(&b, &room, "lunch at noon?").await;
    api.send(&c, &room, "cat was here").await;
    api.send(&a, &room, "maybe").await;
    // Ann blocks Cat: Cat's words are not shown to the model on Ann's behalf.
    let (status, body) = api
        .post("/api/blocks", &a.token, json!({"user_id": c.id}))
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let (status, _) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&a.token),
            Some(json!({"locale": "ko"})),
        )
        .await;
    assert_eq!(status, 200);

    let ask = json!({"room_id": room});
    let (status, body) = api
        .post("/api/smart-suggestions", &a.token, ask.clone())
        .await;
    assert_error(status, &body, 403, "consent_required");
    assert!(
        rig.openai.chats().is_empty(),
        "nothing left without consent"
    );

    consent(&api, &a, true).await;
    consent(&api, &d, true).await;
    let (status, body) = api
        .post("/api/smart-suggestions", &d.token, ask.clone())
        .await;
    assert_error(status, &body, 403, "forbidden");
    assert!(
        rig.openai.chats().is_empty(),
        "nothing left for a non-member"
    );

    rig.openai.script(Scripted::Reply(
        "Here:\n```json\n[\"좋아요\", \"몇 시요?\", \"좋아요\", \"다음에요\", \"넷째\"]\n```"
            .into(),
    ));
    let (status, body) = api.post("/api/smart-suggestions", &a.token, ask).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["suggestions"],
        json!(["좋아요", "몇 시요?", "다음에요"])
    );

    let chats = rig.openai.chats();
    assert_eq!(chats.len(), 1);
    let sent = chats[0].to_string();
    assert_eq!(chats[0]["model"], rig.openai.chat_model.as_str());
    assert!(sent.contains("lunch at noon?"), "{sent}");
    assert!(sent.contains("Me: maybe"), "{sent}");
    assert!(sent.contains("Korean"), "in my language: {sent}");
    assert!(
        !sent.contains("secret plans"),
        "another room leaked: {sent}"
    );
    assert!(
        !sent.contains("cat was here"),
        "a blocked user's words: {sent}"
    );

    // Withdrawn consent stops it again.
    consent(&api, &a, false).await;
    let (status, body) = api
        .post("/api/smart-suggestions", &a.token, json!({"room_id": room}))
        .await;
    assert_error(status, &body, 403, "consent_required");
    assert_eq!(rig.openai.chats().len(), 1);
}

#[actix_rt::test]
async fn translations_are_kept_per_message_target_and_version() {
    let rig = rig();
    let api = rest(&rig.server);
    let [a, b, c] = api.register_all(["ann", "bob", "cat"]).await;
    let room = api.group(&a, &[&b]).await;
    let m = api
        .send(&b, &room, "내일 오후 세 시에 회의실에서 만나요")
        .await;
    let id = m["id"].as_str().unwrap();
    consent(&api, &a, true).await;
    consent(&api, &c, true).await;

    let (status, body) = api
        .post(
            "/api/translate",
            &c.token,
            json!({"message_id": id, "target": "en"}),
        )
        .await;
    assert_error(status, &body, 403, "forbidden");

    rig.openai.script(Scripted::Reply(
        "Let's meet in the meeting room at 3 pm tomorrow".into(),
    ));
    let ask = json!({"message_id": id, "target": "en"});
    let (status, body) = api.post("/api/translate", &a.token, ask.clone()).await;
    assert_eq!(status, 200, "{body}");
    let t = &body["translation"];
    assert_eq!(t["text"], "Let's meet in the meeting room at 3 pm tomorrow");
    assert_eq!(t["source_language"], "ko");
    assert_eq!(t["target_language"], "en");
    let chats = rig.openai.chats();
    assert_eq!(chats.len(), 1);
    assert!(chats[0].to_string().contains("English"));
    assert!(chats[0].to_string().contains("회의실"));

    // Kept: Bob asking the same costs no provider call.
    let (status, again) = api.post("/api/translate", &b.token, ask.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(again["translation"], body["translation"]);
    assert_eq!(rig.openai.chats().len(), 1);

    // An edit is a new version: translated again.
    let (status, _) = api
        .call(
            "PUT",
            &format!("/api/messages/{id}"),
            Some(&b.token),
            Some(json!({"content": "내일 오후 네 시에 만나요"})),
        )
        .await;
    assert_eq!(status, 200);
    rig.openai
        .script(Scripted::Reply("See you at 4 pm tomorrow".into()));
    let (_, body) = api.post("/api/translate", &a.token, ask).await;
    assert_eq!(body["translation"]["text"], "See you at 4 pm tomorrow");
    assert_eq!(rig.openai.chats().len(), 2);

    // Already in the target language: answered as it is, no provider call.
    let (status, body) = api
        .post(
            "/api/translate",
            &a.token,
            json!({"text": "Let us meet tomorrow afternoon in the big room", "target": "en"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["translation"]["text"],
        "Let us meet tomorrow afternoon in the big room"
    );
    assert_eq!(rig.openai.chats().len(), 2);

    for bad in [
        json!({"text": "hi", "target": "pt"}),
        json!({"text": "   ", "target": "en"}),
        json!({"target": "en"}),
        json!({"text": "hi", "message_id": id}),
        json!({"text": "x".repeat(4001)}),
    ] {
        let (status, body) = api.post("/api/translate", &a.token, bad.clone()).await;
        assert_error(status, &body, 400, "validation_failed");
    }
    assert_eq!(rig.openai.chats().len(), 2, "bad input sends nothing");
}

#[actix_rt::test]
async fn provider_failures_are_502_with_nothing_leaked_and_the_quota_holds() {
    let rig = rig_with(&[("DOVIE_AI__REQUESTS_PER_HOUR", "3")]);
    let api = rest(&rig.server);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    let room = api.group(&a, &[&b]).await;
    api.send(&b, &room, "are you coming?").await;
    consent(&api, &a, true).await;
    let ask = json!({"room_id": room});

    rig.openai.script(Scripted::Fail(500, "server_error", None));
    rig.openai
        .script(Scripted::Fail(429, "rate_limit_exceeded", Some(7)));
    for _ in 0..2 {
        let (status, body) = api
            .post("/api/smart-suggestions", &a.token, ask.clone())
            .await;
        assert_error(status, &body, 502, "provider_error");
        let text = body.to_string();
        assert!(!text.contains("scripted failure"), "{text}");
        assert!(!text.contains(&rig.openai.api_key), "{text}");
    }
    assert_eq!(rig.openai.chats().len(), 2, "the SDK retried nothing");

    let (status, body) = api
        .post("/api/smart-suggestions", &a.token, ask.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, headers) = api
        .call_full("POST", "/api/smart-suggestions", Some(&a.token), Some(ask))
        .await;
    assert_error(status, &body, 429, "rate_limited");
    assert!(headers.get("retry-after").is_some());
    assert_eq!(rig.openai.chats().len(), 3, "past the quota nothing leaves");

    // Bad provider answers: not JSON, or no usable suggestion.
    let [c] = api.register_all(["cat"]).await;
    consent(&api, &c, true).await;
    let room2 = api.group(&c, &[&b]).await;
    api.send(&b, &room2, "hello").await;
    rig.openai.script(Scripted::Reply("   ".into()));
    let (status, body) = api
        .post(
            "/api/smart-suggestions",
            &c.token,
            json!({"room_id": room2}),
        )
        .await;
    assert_error(status, &body, 502, "provider_error");
}

#[actix_rt::test]
async fn a_wrong_key_or_no_provider_gives_the_documented_errors() {
    let rig = rig_with(&[("DOVIE_PROVIDERS__OPENAI__API_KEY", "sk-wrong")]);
    let api = rest(&rig.server);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    let room = api.group(&a, &[&b]).await;
    api.send(&b, &room, "hi").await;
    consent(&api, &a, true).await;
    let (status, body) = api
        .post("/api/smart-suggestions", &a.token, json!({"room_id": room}))
        .await;
    assert_error(status, &body, 502, "provider_error");
    assert!(!body.to_string().contains("sk-wrong"));
    assert!(!body.to_string().contains("Incorrect API key"));

    // No provider at all: 503, while local features work.
    let bare = Server::start();
    let api = rest(&bare);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    let room = api.group(&a, &[&b]).await;
    api.send(&a, &room, "Road trip to #jeju with #family this summer")
        .await;
    api.send(&b, &room, "the #jeju trip photos are up #travel")
        .await;
    consent(&api, &a, true).await;
    let (status, body) = api
        .post("/api/smart-suggestions", &a.token, json!({"room_id": room}))
        .await;
    assert_error(status, &body, 503, "provider_not_configured");
    let (status, body) = api
        .post(
            "/api/translate",
            &a.token,
            json!({"text": "안녕하세요 반갑습니다", "target": "en"}),
        )
        .await;
    assert_error(status, &body, 503, "provider_not_configured");
    let (status, body) = api
        .post("/api/youtube-search", &a.token, json!({"q": "cats"}))
        .await;
    assert_error(status, &body, 503, "provider_not_configured");

    let (status, body) = api
        .post(
            "/api/detect-language",
            &a.token,
            json!({"text": "오늘 저녁에 뭐 먹을까요?"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "ko");
    assert!(body["confidence"].as_f64().unwrap() > 0.5);
    let (_, body) = api
        .post(
            "/api/detect-language",
            &a.token,
            json!({"text": "Where shall we have dinner tonight?"}),
        )
        .await;
    assert_eq!(body["language"], "en");
    let (status, body) = api
        .post("/api/detect-language", &a.token, json!({"text": " "}))
        .await;
    assert_error(status, &body, 400, "validation_failed");

    // Hashtags: from what Ann can read; a stranger who cannot read the room gets none of them.
    let (status, body) = api
        .post(
            "/api/hashtag-suggestions",
            &a.token,
            json!({"text": "new trip photos from #family"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let tags: Vec<&str> = body["hashtags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"jeju"), "{tags:?}");
    assert!(tags.contains(&"travel"), "{tags:?}");
    assert!(!tags.contains(&"family"), "already in the text: {tags:?}");
    let [z] = api.register_all(["zed"]).await;
    let (_, body) = api
        .post(
            "/api/hashtag-suggestions",
            &z.token,
            json!({"text": "new trip photos from #family"}),
        )
        .await;
    assert_eq!(
        body["hashtags"],
        json!([]),
        "nothing from rooms Zed cannot read"
    );
}

#[actix_rt::test]
async fn youtube_search_sends_the_real_parameters_and_maps_the_answer() {
    let rig = rig();
    let api = rest(&rig.server);
    let [a] = api.register_all(["ann"]).await;
    let (status, body) = api
        .post("/api/youtube-search", &a.token, json!({"q": "lofi"}))
        .await;
    assert_error(status, &body, 403, "consent_required");
    consent(&api, &a, true).await;
    for bad in [
        json!({"q": "  "}),
        json!({"q": "x", "limit": 0}),
        json!({"q": "x", "limit": 51}),
        json!({"q": "x".repeat(201)}),
    ] {
        let (status, body) = api.post("/api/youtube-search", &a.token, bad).await;
        assert_error(status, &body, 400, "validation_failed");
    }
    assert!(rig.youtube.server.log.requests().is_empty());

    let (status, body) = api
        .post(
            "/api/youtube-search",
            &a.token,
            json!({"q": "lofi beats", "limit": 2}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let videos = body["videos"].as_array().unwrap();
    assert_eq!(videos.len(), 2);
    assert_eq!(
        videos[0],
        json!({
            "id": "vid0",
            "title": "lofi beats & friends #0",
            "channel": "Dovie 's Channel",
            "thumbnail_url": "https://i.ytimg.com/vi/vid0/hqdefault.jpg",
            "url": "https://www.youtube.com/watch?v=vid0",
            "published_at": 1_714_979_289_000i64,
        })
    );
    let req = &rig.youtube.server.log.requests()[0];
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(q["part"], "snippet");
    assert_eq!(q["type"], "video");
    assert_eq!(q["q"], "lofi beats");
    assert_eq!(q["maxResults"], "2");
    assert_eq!(q["key"], rig.youtube.api_key);

    let wrong = rig_with(&[("DOVIE_PROVIDERS__YOUTUBE__API_KEY", "bad-key")]);
    let api = rest(&wrong.server);
    let [b] = api.register_all(["bob"]).await;
    consent(&api, &b, true).await;
    let (status, body) = api
        .post("/api/youtube-search", &b.token, json!({"q": "cats"}))
        .await;
    assert_error(status, &body, 502, "provider_error");
    assert!(!body.to_string().contains("bad-key"));
}

#[actix_rt::test]
async fn saved_commands_expand_on_rest_and_ws() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    let room = api.group(&a, &[&b]).await;

    let (status, body) = api
        .post(
            "/api/commands",
            &a.token,
            json!({"name": "/addr", "text": "12 Harbour Road, #busan"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let cmd = body["command"].clone();
    assert_eq!(cmd["name"], "addr");
    let (status, body) = api
        .post(
            "/api/commands",
            &a.token,
            json!({"name": "addr", "text": "other"}),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    for bad in [
        json!({"name": "Has Space", "text": "x"}),
        json!({"name": "ok", "text": "  "}),
        json!({"name": "x".repeat(33), "text": "x"}),
    ] {
        let (status, body) = api.post("/api/commands", &a.token, bad).await;
        assert_error(status, &body, 400, "validation_failed");
    }
    let (status, body) = api.get("/api/commands", &a.token).await;
    assert_eq!(status, 200);
    assert_eq!(body["commands"], json!([cmd]));
    let (_, body) = api.get("/api/commands", &b.token).await;
    assert_eq!(body["commands"], json!([]));

    // REST: mine expands; Bob has no such command, so his is sent as written.
    let m = api.send(&a, &room, "/addr").await;
    assert_eq!(m["content"], "12 Harbour Road, #busan");
    assert_eq!(m["hashtags"], json!(["busan"]));
    let m = api.send(&b, &room, "/addr").await;
    assert_eq!(m["content"], "/addr");
    let m = api.send(&a, &room, "/addr now").await;
    assert_eq!(m["content"], "/addr now");

    // WebSocket: the same.
    let mut ws = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let r = ws
        .request(
            "send_message",
            json!({"room_id": room, "content": " /addr "}),
        )
        .await;
    assert_eq!(r["t"], "reply", "{r}");
    assert_eq!(r["d"]["message"]["content"], "12 Harbour Road, #busan");
    assert_eq!(r["d"]["message"]["hashtags"], json!(["busan"]));
    let r = ws
        .request(
            "send_message",
            json!({"room_id": room, "content": "/unknown"}),
        )
        .await;
    assert_eq!(r["d"]["message"]["content"], "/unknown");

    // Only mine to delete; then it is gone.
    let id = cmd["id"].as_str().unwrap();
    let path = format!("/api/commands/{id}");
    let (status, body) = api.call("DELETE", &path, Some(&b.token), None).await;
    assert_error(status, &body, 404, "not_found");
    let (status, _) = api.call("DELETE", &path, Some(&a.token), None).await;
    assert_eq!(status, 204);
    let (status, _) = api.call("DELETE", &path, Some(&a.token), None).await;
    assert_eq!(status, 404);
    let m = api.send(&a, &room, "/addr").await;
    assert_eq!(m["content"], "/addr");
}

#[actix_rt::test]
async fn consents_keep_their_history() {
    let server = Server::start();
    let api = rest(&server);
    let [a] = api.register_all(["ann"]).await;
    let (status, body) = api.get("/api/me/consents", &a.token).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["consents"],
        json!({"ai": false, "location": false, "analytics": false, "marketing": false})
    );
    assert_eq!(body["history"], json!([]));
    let put = |v: Value| {
        let api = &api;
        let token = a.token.clone();
        async move {
            api.call("PUT", "/api/me/consents", Some(&token), Some(v))
                .await
        }
    };
    let (status, _) = put(json!({"ai": true, "marketing": true})).await;
    assert_eq!(status, 200);
    let (_, _) = put(json!({"ai": true})).await;
    let (status, body) = put(json!({"ai": false})).await;
    assert_eq!(status, 200);
    assert_eq!(body["consents"]["ai"], false);
    assert_eq!(body["consents"]["marketing"], true);
    let history = body["history"].as_array().unwrap();
    let kinds: Vec<(&str, bool)> = history
        .iter()
        .map(|h| (h["kind"].as_str().unwrap(), h["granted"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("ai", true), ("marketing", true), ("ai", false)],
        "an unchanged consent adds nothing"
    );
    assert!(history[2]["at"].as_i64() > history[0]["at"].as_i64());
    let (status, body) = put(json!({})).await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = put(json!({"ai": "yes"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = put(json!({"ai": true, "marketing": null})).await;
    assert_eq!(status, 400, "null is not a consent: {body}");
    let (_, again) = api.get("/api/me/consents", &a.token).await;
    assert_eq!(again["history"].as_array().unwrap().len(), 3);
}
