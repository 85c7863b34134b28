//! AI providers as Dovie meets them: an OpenAI-compatible API (`/v1/chat/completions`) that
//! checks the bearer key, the model and the request's shape and answers like the real one —
//! its error bodies (`{"error": {"message", "type", "param", "code"}}`) and 429 with
//! `Retry-After` included — and the YouTube Data API's `search.list`, which checks its key and
//! parameters as YouTube does. Both record every request, so tests can see what left Dovie.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{Log, StandIn};

/// What the chat model answers next: a reply's text, or a failure.
#[derive(Debug, Clone)]
pub enum Scripted {
    Reply(String),
    /// Status, the OpenAI error `code`, and a `Retry-After` in seconds.
    Fail(u16, &'static str, Option<u32>),
}

/// An OpenAI-compatible API with one key and one chat model.
pub struct OpenAi {
    pub server: StandIn,
    pub api_key: String,
    pub chat_model: String,
    script: Arc<Mutex<VecDeque<Scripted>>>,
}

fn openai_error(status: u16, message: &str, kind: &str, code: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    }))
}

/// Checks a chat completion request as the API does; the error it would answer.
fn check_chat(body: &Value, model: &str) -> Result<(), Box<HttpResponse>> {
    let bad = |msg: &str| {
        Box::new(openai_error(
            400,
            msg,
            "invalid_request_error",
            "invalid_request",
        ))
    };
    if body["model"].as_str() != Some(model) {
        return Err(Box::new(openai_error(
            404,
            &format!("The model `{}` does not exist", body["model"]),
            "invalid_request_error",
            "model_not_found",
        )));
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err(bad("'messages' must be a non-empty array"));
    };
    for m in messages {
        let role_ok = matches!(
            m["role"].as_str(),
            Some("system" | "developer" | "user" | "assistant")
        );
        let content_ok = m["content"].is_string() || m["content"].is_array();
        if !role_ok || !content_ok {
            return Err(bad("each message needs a role and content"));
        }
    }
    for key in ["max_completion_tokens", "max_tokens", "n"] {
        if !body[key].is_null() && body[key].as_u64().unwrap_or(0) == 0 {
            return Err(bad(&format!("'{key}' must be a positive integer")));
        }
    }
    if !body["temperature"].is_null()
        && !body["temperature"]
            .as_f64()
            .is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return Err(bad("'temperature' must be between 0 and 2"));
    }
    Ok(())
}

impl OpenAi {
    pub fn start() -> OpenAi {
        let api_key = "sk-dovie-test-0123456789".to_string();
        let chat_model = "dovie-chat-1".to_string();
        let script: Arc<Mutex<VecDeque<Scripted>>> = Arc::default();
        let (key, model, s) = (api_key.clone(), chat_model.clone(), script.clone());
        let server = StandIn::start(move |cfg| {
            let (key, model, s) = (key.clone(), model.clone(), s.clone());
            cfg.route(
                "/v1/chat/completions",
                web::post().to(move |req: HttpRequest, log: web::Data<Log>, body: Bytes| {
                    let (key, model, s) = (key.clone(), model.clone(), s.clone());
                    async move {
                        log.record(&req, &body);
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        if auth != format!("Bearer {key}") {
                            return openai_error(
                                401,
                                "Incorrect API key provided",
                                "invalid_request_error",
                                "invalid_api_key",
                            );
                        }
                        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
                            return openai_error(
                                400,
                                "We could not parse the JSON body of your request.",
                                "invalid_request_error",
                                "invalid_json",
                            );
                        };
                        if let Err(e) = check_chat(&body, &model) {
                            return *e;
                        }
                        let next = s.lock().unwrap().pop_front();
                        let text = match next {
                            Some(Scripted::Fail(status, code, retry)) => {
                                let mut res = openai_error(status, "scripted failure", "server_error", code);
                                if let Some(secs) = retry {
                                    res.headers_mut().insert(
                                        actix_web::http::header::RETRY_AFTER,
                                        secs.to_string().parse().unwrap(),
                                    );
                                }
                                return res;
                            }
                            Some(Scripted::Reply(t)) => t,
                            None => r#"["Sounds good", "See you then"]"#.to_string(),
                        };
                        let prompt_tokens = body.to_string().len() / 4;
                        let completion_tokens = text.len() / 4 + 1;
                        HttpResponse::Ok().json(json!({
                            "id": "chatcmpl-dovie",
                            "object": "chat.completion",
                            "created": 1_700_000_000,
                            "model": model,
                            "choices": [{
                                "index": 0,
                                "message": { "role": "assistant", "content": text, "refusal": null },
                                "logprobs": null,
                                "finish_reason": "stop"
                            }],
                            "usage": {
                                "prompt_tokens": prompt_tokens,
                                "completion_tokens": completion_tokens,
                                "total_tokens": prompt_tokens + completion_tokens
                            }
                        }))
                    }
                }),
            );
        });
        OpenAi {
            server,
            api_key,
            chat_model,
            script,
        }
    }

    /// The API's base as Dovie is configured with it.
    pub fn base_url(&self) -> String {
        self.server.url("/v1")
    }

    /// Queues what the model answers next (in order; afterwards a default reply).
    pub fn script(&self, next: Scripted) {
        self.script.lock().unwrap().push_back(next);
    }

    /// The chat completion requests received, as JSON.
    pub fn chats(&self) -> Vec<Value> {
        self.server
            .log
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/chat/completions")
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }
}

/// The YouTube Data API v3 with one key and a small catalogue of videos.
pub struct YouTube {
    pub server: StandIn,
    pub api_key: String,
}

fn youtube_error(status: u16, message: &str, reason: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(json!({
        "error": { "code": status, "message": message,
                   "errors": [{ "message": message, "domain": "youtube.parameter", "reason": reason }] }
    }))
}

impl YouTube {
    pub fn start() -> YouTube {
        let api_key = "AIzaDovieTestKey".to_string();
        let key = api_key.clone();
        let server = StandIn::start(move |cfg| {
            let key = key.clone();
            cfg.route(
                "/youtube/v3/search",
                web::get().to(move |req: HttpRequest, log: web::Data<Log>| {
                    let key = key.clone();
                    async move {
                        log.record(&req, &Bytes::new());
                        let q: std::collections::HashMap<String, String> =
                            url::form_urlencoded::parse(req.query_string().as_bytes())
                                .into_owned()
                                .collect();
                        if q.get("key") != Some(&key) {
                            return youtube_error(400, "API key not valid. Please pass a valid API key.", "badRequest");
                        }
                        if q.get("part").map(String::as_str) != Some("snippet") {
                            return youtube_error(400, "Required parameter: part", "missingRequiredParameter");
                        }
                        if q.get("type").map(String::as_str) != Some("video") {
                            return youtube_error(400, "Only video searches are expected here", "invalidSearchFilter");
                        }
                        let Some(query) = q.get("q").filter(|s| !s.is_empty()) else {
                            return youtube_error(400, "Required parameter: q", "missingRequiredParameter");
                        };
                        let max: u64 = match q.get("maxResults").map(|m| m.parse::<u64>()) {
                            None => 5,
                            Some(Ok(n)) if n <= 50 => n,
                            _ => return youtube_error(400, "Invalid value for maxResults", "invalidParameter"),
                        };
                        let items: Vec<Value> = (0..max.min(3))
                            .map(|i| json!({
                                "kind": "youtube#searchResult",
                                "etag": format!("e{i}"),
                                "id": { "kind": "youtube#video", "videoId": format!("vid{i}") },
                                "snippet": {
                                    "publishedAt": "2024-05-06T07:08:09Z",
                                    "channelId": "UCdovie",
                                    "title": format!("{query} &amp; friends #{i}"),
                                    "description": "a video",
                                    "thumbnails": {
                                        "default": { "url": format!("https://i.ytimg.com/vi/vid{i}/default.jpg"), "width": 120, "height": 90 },
                                        "high": { "url": format!("https://i.ytimg.com/vi/vid{i}/hqdefault.jpg"), "width": 480, "height": 360 }
                                    },
                                    "channelTitle": "Dovie &#39;s Channel",
                                    "liveBroadcastContent": "none"
                                }
                            }))
                            .collect();
                        HttpResponse::Ok().json(json!({
                            "kind": "youtube#searchListResponse",
                            "regionCode": "KR",
                            "pageInfo": { "totalResults": items.len(), "resultsPerPage": max },
                            "items": items
                        }))
                    }
                }),
            );
        });
        YouTube { server, api_key }
    }

    pub fn base_url(&self) -> String {
        self.server.url("/youtube/v3")
    }
}
