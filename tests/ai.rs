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
    let voice = api.upload(&a, "voice.wav", common::samples::wav(300)).await;
    let (status, body) = api
        .post("/api/transcribe", &a.token, json!({"file_id": voice}))
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
            "id": "dovieVid000",
            "title": "lofi beats & friends #0",
            "channel": "Dovie 's Channel",
            "thumbnail_url": "https://i.ytimg.com/vi/dovieVid000/hqdefault.jpg",
            "url": "https://www.youtube.com/watch?v=dovieVid000",
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
async fn a_shared_youtube_video_is_previewed_from_the_data_api() {
    let rig = rig();
    let api = rest(&rig.server);
    let [a, b] = api.register_all(["yt-a", "yt-b"]).await;
    consent(&api, &a, true).await;
    let room = api.group(&a, &[&b]).await;
    let mut wb = Ws::connect(&rig.server, Codec::Json, Auth::Query(&b.token)).await;
    let (status, body) = api
        .post("/api/youtube-search", &a.token, json!({"q": "jazz"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let shared = body["videos"][1]["url"].as_str().unwrap().to_string();

    api.send(&a, &room, &format!("listen {shared}")).await;
    wb.expect("new_message").await;
    let edited = wb.expect("message_edited").await;
    let p = &edited["d"]["message"]["link_previews"][0];
    assert_eq!(p["url"], shared.as_str(), "{edited}");
    assert_eq!(p["title"], "Video & number 1");
    assert_eq!(p["description"], "What video 1 shows, over two lines.");
    assert_eq!(p["site_name"], "YouTube");
    assert_eq!(
        p["video"],
        json!({
            "provider": "youtube",
            "id": "dovieVid001",
            "url": "https://www.youtube.com/watch?v=dovieVid001",
            "channel": "Dovie 's Channel",
            "published_at": 1_714_979_289_000i64,
        })
    );
    // The thumbnail is Dovie's copy of YouTube's, served as a file.
    let img = p["image_url"].as_str().unwrap();
    assert!(img.starts_with("/api/files/"), "{img}");
    let res = reqwest::Client::new()
        .get(rig.server.url(img))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap()[..3], [0xFF, 0xD8, 0xFF]);
    // videos.list was asked as the real API is: the id, the part, the key.
    let lookups = rig.youtube.video_lookups();
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert_eq!(lookups[0]["id"], "dovieVid001");
    assert_eq!(lookups[0]["part"], "snippet");
    assert_eq!(lookups[0]["key"], rig.youtube.api_key);
    let hist = api.history(&b, &room, "").await;
    assert_eq!(hist[0]["link_previews"][0]["video"]["id"], "dovieVid001");

    // Every link form of the same video is read; a second sharing is served from the cache.
    api.send(&a, &room, "short form https://youtu.be/dovieVid001?t=3")
        .await;
    wb.expect("new_message").await;
    let edited = wb.expect("message_edited").await;
    assert_eq!(
        edited["d"]["message"]["link_previews"][0]["video"]["id"],
        "dovieVid001"
    );
    api.send(&a, &room, &format!("again {shared}")).await;
    wb.expect("new_message").await;
    wb.expect("message_edited").await;
    assert_eq!(rig.youtube.video_lookups().len(), 2);

    // A video YouTube does not know has no preview.
    api.send(
        &a,
        &room,
        "gone https://www.youtube.com/watch?v=dovieVid999",
    )
    .await;
    wb.expect("new_message").await;
    wb.expect_none("message_edited", std::time::Duration::from_secs(2))
        .await;
    assert_eq!(rig.youtube.video_lookups().len(), 3);
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

#[actix_rt::test]
async fn transcription_streams_a_file_i_can_read_and_keeps_its_transcript() {
    let rig = rig_with(&[(
        "DOVIE_PROVIDERS__OPENAI__TRANSCRIBE_MODEL",
        "dovie-whisper-1",
    )]);
    assert_eq!(rig.openai.transcribe_model, "dovie-whisper-1");
    let api = rest(&rig.server);
    let [a, b, e] = api.register_all(["ann", "bob", "eve"]).await;
    let room = api.group(&a, &[&b]).await;
    let audio = common::samples::wav(400);
    let voice = api.upload(&a, "kim-voice-memo.wav", audio.clone()).await;
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{room}/messages"),
            &a.token,
            json!({"content": "", "attachments": [voice]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let message_id = body["message"]["id"].as_str().unwrap().to_string();
    let transcribe = |who: &User| {
        let token = who.token.clone();
        let api = &api;
        let voice = voice.clone();
        async move {
            api.post("/api/transcribe", &token, json!({ "file_id": voice }))
                .await
        }
    };

    // Someone outside the room, and a member without the ai consent: nothing leaves.
    let (status, body) = transcribe(&e).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = transcribe(&b).await;
    assert_error(status, &body, 403, "consent_required");
    let (status, body) = api
        .post("/api/transcribe", &b.token, json!({ "file_id": "nope" }))
        .await;
    assert_error(status, &body, 404, "not_found");
    assert!(rig.openai.transcriptions().is_empty());

    // Bob may: the decrypted audio is sent under a neutral name, the transcript kept on the
    // file and shown to the room (message_edited with the attachment's transcript).
    consent(&api, &b, true).await;
    let mut ws = Ws::connect(&rig.server, Codec::Json, Auth::Query(&a.token)).await;
    rig.openai
        .script_transcript(Scripted::Reply("회의는 세 시에 시작합니다".into()));
    let (status, body) = transcribe(&b).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["transcript"],
        json!({ "file_id": voice, "text": "회의는 세 시에 시작합니다", "language": "ko" })
    );
    let sent = rig.openai.transcriptions();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes, audio, "the whole file, decrypted");
    assert_eq!(
        sent[0].filename, "audio.wav",
        "the user's file name stays here"
    );
    assert_eq!(sent[0].model, "dovie-whisper-1");
    assert_eq!(sent[0].response_format, "verbose_json");
    let edited = ws.expect("message_edited").await;
    let m = &edited["d"]["message"];
    assert_eq!(m["id"], message_id.as_str());
    assert_eq!(
        m["attachments"][0]["transcript"],
        json!({ "text": "회의는 세 시에 시작합니다", "language": "ko" })
    );
    let (status, files) = api.get("/api/files", &a.token).await;
    assert_eq!(status, 200, "{files}");
    let listed = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == voice.as_str())
        .cloned()
        .unwrap();
    assert_eq!(listed["transcript"]["text"], "회의는 세 시에 시작합니다");

    // Asked again (by anyone who may read it): the kept transcript, no provider call.
    consent(&api, &a, true).await;
    let (status, again) = transcribe(&a).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["transcript"], body["transcript"]);
    assert_eq!(rig.openai.transcriptions().len(), 1);

    // Not audio: refused before anything is sent; a provider failure keeps nothing.
    let picture = api.upload(&a, "pic.png", common::samples::png(8, 8)).await;
    let (status, body) = api
        .post("/api/transcribe", &a.token, json!({ "file_id": picture }))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let other = api.upload(&a, "memo.wav", common::samples::wav(200)).await;
    rig.openai
        .script_transcript(Scripted::Fail(500, "server_error", None));
    let (status, body) = api
        .post("/api/transcribe", &a.token, json!({ "file_id": other }))
        .await;
    assert_error(status, &body, 502, "provider_error");
    assert!(!body.to_string().contains("scripted"), "{body}");
    rig.openai
        .script_transcript(Scripted::Reply("Call me back after lunch".into()));
    let (status, body) = api
        .post("/api/transcribe", &a.token, json!({ "file_id": other }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["transcript"]["language"], "en");
    assert_eq!(rig.openai.transcriptions().len(), 3);
}

/// `dovie_auto_transcriptions_total{result}` of the node.
async fn auto_transcriptions(api: &Rest, result: &str) -> u64 {
    let (status, _, text) = api.raw("GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(status, 200);
    let series = format!("dovie_auto_transcriptions_total{{result=\"{result}\"}} ");
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Sends a voice message (a WAV of `ms`) into `room`; its message.
async fn voice_message(api: &Rest, who: &User, room: &str, ms: u32) -> Value {
    let auth = format!("Bearer {}", who.token);
    let (status, _, body) = api
        .raw(
            "POST",
            &format!("/api/voice-messages?room_id={room}&filename=memo.wav"),
            &[("authorization", &auth)],
            common::samples::wav(ms),
        )
        .await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 201, "{body}");
    body["message"].clone()
}

#[actix_rt::test]
async fn new_voice_messages_are_transcribed_by_themselves_retried_and_kept_across_a_restart() {
    let mut rig = rig_with(&[
        (
            "DOVIE_PROVIDERS__OPENAI__TRANSCRIBE_MODEL",
            "dovie-whisper-1",
        ),
        ("DOVIE_AI__AUTO_TRANSCRIBE", "true"),
        ("DOVIE_AI__TRANSCRIBE_RETRY_MS", "400"),
    ]);
    let api = rest(&rig.server);
    let [a, b] = api.register_all(["ann", "bob"]).await;
    consent(&api, &a, true).await;
    let room = api.group(&a, &[&b]).await;
    let mut wb = Ws::connect(&rig.server, Codec::Json, Auth::Query(&b.token)).await;

    // Ann's voice message: the model fails once, the job is put off and tried again.
    rig.openai
        .script_transcript(Scripted::Fail(500, "server_error", None));
    rig.openai
        .script_transcript(Scripted::Reply("see you at three".into()));
    let m = voice_message(&api, &a, &room, 600).await;
    assert!(m["attachments"][0].get("transcript").is_none(), "{m}");
    wb.expect("new_message").await;
    // (The audio's preview job amends the message too.)
    let edited = loop {
        let e = wb.expect("message_edited").await;
        if e["d"]["message"]["attachments"][0]
            .get("transcript")
            .is_some()
        {
            break e;
        }
    };
    let shown = &edited["d"]["message"];
    assert_eq!(shown["id"], m["id"], "{edited}");
    assert_eq!(
        shown["attachments"][0]["transcript"],
        json!({ "text": "see you at three", "language": "en" })
    );
    let sent = rig.openai.transcriptions();
    assert_eq!(sent.len(), 2, "one failure, one success");
    assert_eq!(sent[1].bytes, common::samples::wav(600));
    assert_eq!(sent[1].filename, "audio.wav");
    assert_eq!(auto_transcriptions(&api, "retry").await, 1);
    assert_eq!(auto_transcriptions(&api, "done").await, 1);
    let hist = api.history(&b, &room, "").await;
    assert_eq!(
        hist[0]["attachments"][0]["transcript"]["text"],
        "see you at three"
    );
    // Asking for it now costs no call: it is kept.
    consent(&api, &b, true).await;
    let file = m["attachments"][0]["id"].as_str().unwrap();
    let (status, body) = api
        .post("/api/transcribe", &b.token, json!({ "file_id": file }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rig.openai.transcriptions().len(), 2);

    // Without the sender's consent nothing leaves Dovie.
    consent(&api, &b, false).await;
    wb.clear();
    voice_message(&api, &b, &room, 500).await;
    let quiet = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while let Some(f) = wb
        .next_within(quiet.saturating_duration_since(std::time::Instant::now()))
        .await
    {
        let transcribed = f["d"]["message"]["attachments"][0].get("transcript");
        assert!(transcribed.is_none(), "{f}");
    }
    assert_eq!(rig.openai.transcriptions().len(), 2);

    // A queued job outlives the node: it fails, the node dies before the next attempt, and the
    // restarted node finishes it.
    rig.openai
        .script_transcript(Scripted::Fail(503, "server_error", None));
    let m = voice_message(&api, &a, &room, 700).await;
    // Killed once the failure is recorded (put off, counted), before the next attempt is due.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while auto_transcriptions(&api, "retry").await < 2 {
        assert!(std::time::Instant::now() < deadline, "no first attempt");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(rig.openai.transcriptions().len(), 3);
    rig.server.kill();
    rig.openai
        .script_transcript(Scripted::Reply("after the restart".into()));
    rig.server.restart();
    let api = rest(&rig.server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let hist = api.history(&b, &room, "").await;
        let now = hist.iter().find(|h| h["id"] == m["id"]).unwrap();
        if now["attachments"][0]["transcript"]["text"] == "after the restart" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(rig.openai.transcriptions().len(), 4, "once more, not twice");
}
