//! Server texts in eight languages, through the public interface: REST errors in the account's
//! language, else `Accept-Language`'s, else the configured default (Korean); WebSocket errors
//! the same; error codes never change.

mod common;

use common::{rest, Auth, Server, Ws};
use dovie_protocol::Codec;
use serde_json::{json, Value};

/// A node with the shipped default language (the test harness otherwise reads English).
fn korean_node() -> Server {
    Server::start_with(&[], &[("DOVIE_I18N__DEFAULT_LOCALE", "ko")])
}

/// `GET /api/chat-rooms/nope` with the given headers: (status, error body).
async fn missing_room(server: &Server, headers: &[(&str, &str)]) -> (u16, Value) {
    let (status, _, body) = rest(server)
        .raw("GET", "/api/chat-rooms/nope/messages", headers, Vec::new())
        .await;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, body["error"].clone())
}

#[actix_rt::test]
async fn errors_speak_the_readers_language_and_keep_their_codes() {
    let server = korean_node();
    // No account, no header: the default, Korean.
    let (status, body, _) = rest(&server)
        .call_full("GET", "/api/users/me", None, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(body["error"]["message"], "Bearer 토큰이 필요합니다");

    // The header, with q-values and the Chinese scripts.
    for (header, want) in [
        ("en-US,en;q=0.9", "a bearer token is required"),
        ("ja", "Bearer トークンが必要です"),
        ("zh-CN", "需要 Bearer 令牌"),
        ("zh-TW", "需要 Bearer 權杖"),
        (
            "pt-BR, es;q=0.5, de;q=0.8",
            "ein Bearer-Token ist erforderlich",
        ),
        ("fr-CA;q=0.9, it", "un jeton Bearer est requis"),
        ("es-MX", "se necesita un token Bearer"),
        ("it, pt", "Bearer 토큰이 필요합니다"),
    ] {
        let (status, _, bytes) = rest(&server)
            .raw(
                "GET",
                "/api/users/me",
                &[("accept-language", header)],
                Vec::new(),
            )
            .await;
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(status, 401, "{header}");
        assert_eq!(body["error"]["code"], "unauthorized", "{header}");
        assert_eq!(body["error"]["message"], want, "{header}");
    }

    // Answers made outside a handler: an unknown route, a method a path does not serve (its
    // `Allow` kept).
    let (status, _, bytes) = rest(&server)
        .raw(
            "GET",
            "/api/nowhere",
            &[("accept-language", "ja")],
            Vec::new(),
        )
        .await;
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
    assert_eq!(body["error"]["message"], "そのルートは存在しません");
    let (status, headers, body) = rest(&server)
        .call_full_with("DELETE", "/health", &[("accept-language", "fr")])
        .await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(
        body["error"]["message"],
        "DELETE n'est pas servi ici ; autorisés : GET"
    );
    assert_eq!(
        headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );

    // An account made with a header speaks that language; its own choice wins over any header.
    let (status, _, bytes) = rest(&server)
        .raw(
            "POST",
            "/api/auth/register",
            &[
                ("accept-language", "ja-JP"),
                ("content-type", "application/json"),
            ],
            serde_json::to_vec(&json!({
                "email": "kenji@example.com", "password": "correct horse", "display_name": "Kenji"
            }))
            .unwrap_or_default(),
        )
        .await;
    assert_eq!(status, 201);
    let session: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(session["user"]["locale"], "ja");
    let token = session["access_token"].as_str().expect("token").to_string();
    let bearer = format!("Bearer {token}");
    let (status, error) = missing_room(&server, &[("authorization", &bearer)]).await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["message"], "そのルームは存在しません");
    let (_, error) = missing_room(
        &server,
        &[("authorization", &bearer), ("accept-language", "de")],
    )
    .await;
    assert_eq!(
        error["message"], "そのルームは存在しません",
        "the account wins"
    );

    let api = rest(&server);
    let (status, _) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&token),
            Some(json!({"locale": "es"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, error) = missing_room(&server, &[("authorization", &bearer)]).await;
    assert_eq!(
        error["message"], "no existe esa sala",
        "a change is seen at once"
    );

    // Formatted values survive translation; a validation error of the same call in French.
    let (_, body) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&token),
            Some(json!({"locale": "fr"})),
        )
        .await;
    assert_eq!(body["user"]["locale"], "fr");
    let (status, body) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&token),
            Some(json!({"locale": "xx"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(
        body["error"]["message"],
        "locale doit être l'une de ces valeurs : ko, en, ja, zh-Hans, zh-Hant, es, fr, de"
    );
}

#[actix_rt::test]
async fn websocket_errors_speak_the_sessions_language() {
    let server = korean_node();
    let api = rest(&server);
    // Before an account is known: the upgrade's header.
    let mut ws = Ws::open_with(
        &server,
        Codec::Json,
        &Auth::None,
        true,
        &[("accept-language", "de-DE")],
    )
    .await;
    ws.expect("connection_established").await;
    ws.send_frame("auth", None, json!({"token": "not-a-token"}))
        .await;
    let refused = ws.expect("auth_error").await;
    assert_eq!(refused["d"]["code"], "unauthorized");
    assert_eq!(refused["d"]["message"], "fehlerhaftes Token");

    // After: the account's language, whatever the header said.
    let user = api.register("mei").await;
    let (status, _) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&user.token),
            Some(json!({"locale": "zh-Hant"})),
        )
        .await;
    assert_eq!(status, 200);
    let mut ws = Ws::open_with(
        &server,
        Codec::MsgPack,
        &Auth::Header(&user.token),
        true,
        &[("accept-language", "fr")],
    )
    .await;
    ws.expect("connection_established").await;
    ws.expect("auth_success").await;
    // The account's language is read at the first error: errors met meanwhile wait for it and
    // keep their order.
    ws.send_frame(
        "send_message",
        Some(1),
        json!({"room_id": "nope", "content": "hi"}),
    )
    .await;
    ws.send_frame(
        "react",
        Some(2),
        json!({"room_id": "nope", "message_id": "m", "emoji": ""}),
    )
    .await;
    let first = ws.expect("error").await;
    let second = ws.expect("error").await;
    assert_eq!(
        (&first["id"], &second["id"]),
        (&json!(1), &json!(2)),
        "in order"
    );
    assert_eq!(first["d"]["code"], "not_found", "{first}");
    assert_eq!(first["d"]["message"], "沒有這個聊天室", "{first}");
    assert_eq!(second["d"]["code"], "validation_failed", "{second}");
    assert_eq!(
        second["d"]["message"], "表情必須為 1 到 16 個字元",
        "{second}"
    );
    // Later errors: the same language at once.
    let third = ws
        .request("send_message", json!({"room_id": "nope", "content": "hi"}))
        .await;
    assert_eq!(third["d"]["message"], "沒有這個聊天室", "{third}");
}
