//! AI providers as Dovie meets them: an OpenAI-compatible API (`/v1/chat/completions` and the
//! multipart `/v1/audio/transcriptions`) that checks the bearer key, the model and the
//! request's shape and answers like the real one —
//! its error bodies (`{"error": {"message", "type", "param", "code"}}`) and 429 with
//! `Retry-After` included — and the YouTube Data API's `search.list` and `videos.list`, which
//! check their key and parameters as YouTube does and serve a small catalogue (with thumbnails). Both record every request, so tests can see what left Dovie.

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
    pub transcribe_model: String,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    heard: Arc<Mutex<VecDeque<Scripted>>>,
}

/// A transcription request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Transcription {
    pub filename: String,
    pub model: String,
    pub bytes: Vec<u8>,
    pub response_format: String,
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

/// One part of a `multipart/form-data` body.
pub struct FormPart {
    pub name: String,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// The parts of a `multipart/form-data` body.
pub fn form_parts(content_type: &str, body: &[u8]) -> Option<Vec<FormPart>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, &delimiter)?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        rest = &rest[head_end + 4..];
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(&delimiter);
        let end = find(rest, &end_marker)?;
        let content = rest[..end].to_vec();
        rest = &rest[end + end_marker.len()..];
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?
            .to_string();
        let param = |key: &str| {
            disposition.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix(&format!("{key}="))
                    .map(|v| v.trim_matches('"').to_string())
            })
        };
        parts.push(FormPart {
            name: param("name")?,
            filename: param("filename"),
            bytes: content,
        });
    }
}

/// Checks a transcription request as the API does; the form's file (name, bytes) and the
/// response format, or the error it would answer.
fn check_transcription(
    req: &HttpRequest,
    body: &[u8],
    model: &str,
) -> Result<(String, Vec<u8>, String), Box<HttpResponse>> {
    let bad = |msg: &str| {
        Box::new(openai_error(
            400,
            msg,
            "invalid_request_error",
            "invalid_request",
        ))
    };
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return Err(bad("Content-Type must be multipart/form-data"));
    }
    let parts =
        form_parts(content_type, body).ok_or_else(|| bad("Could not parse multipart form"))?;
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.bytes).to_string())
    };
    if field("model").as_deref() != Some(model) {
        return Err(Box::new(openai_error(
            404,
            &format!(
                "The model `{}` does not exist",
                field("model").unwrap_or_default()
            ),
            "invalid_request_error",
            "model_not_found",
        )));
    }
    let Some(FormPart {
        filename: Some(filename),
        bytes,
        ..
    }) = parts.iter().find(|p| p.name == "file")
    else {
        return Err(bad("'file' is a required property"));
    };
    const FORMATS: [&str; 10] = [
        "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm",
    ];
    let ext = filename
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if !FORMATS.contains(&ext.as_str()) || bytes.is_empty() {
        return Err(bad(&format!(
            "Invalid file format. Supported formats: {FORMATS:?}"
        )));
    }
    let format = field("response_format").unwrap_or_else(|| "json".into());
    if !["json", "text", "srt", "verbose_json", "vtt"].contains(&format.as_str()) {
        return Err(bad("'response_format' is not one of the supported formats"));
    }
    Ok((filename.clone(), bytes.clone(), format))
}

/// The Bearer key check of every OpenAI route.
fn key_ok(req: &HttpRequest, key: &str) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a == format!("Bearer {key}"))
}

/// A scripted failure as the API answers it.
fn scripted_failure(status: u16, code: &str, retry: Option<u32>) -> HttpResponse {
    let mut res = openai_error(status, "scripted failure", "server_error", code);
    if let Some(secs) = retry {
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            secs.to_string().parse().unwrap(),
        );
    }
    res
}

impl OpenAi {
    pub fn start() -> OpenAi {
        let api_key = "sk-dovie-test-0123456789".to_string();
        let chat_model = "dovie-chat-1".to_string();
        let transcribe_model = "dovie-whisper-1".to_string();
        let script: Arc<Mutex<VecDeque<Scripted>>> = Arc::default();
        let heard: Arc<Mutex<VecDeque<Scripted>>> = Arc::default();
        let (key, model, s) = (api_key.clone(), chat_model.clone(), script.clone());
        let (wkey, wmodel, h) = (api_key.clone(), transcribe_model.clone(), heard.clone());
        let server = StandIn::start(move |cfg| {
            let (wkey, wmodel, h) = (wkey.clone(), wmodel.clone(), h.clone());
            cfg.route(
                "/v1/audio/transcriptions",
                web::post().to(move |req: HttpRequest, log: web::Data<Log>, body: Bytes| {
                    let (key, model, h) = (wkey.clone(), wmodel.clone(), h.clone());
                    async move {
                        log.record(&req, &body);
                        if !key_ok(&req, &key) {
                            return openai_error(
                                401,
                                "Incorrect API key provided",
                                "invalid_request_error",
                                "invalid_api_key",
                            );
                        }
                        let (_, _, format) = match check_transcription(&req, &body, &model) {
                            Ok(ok) => ok,
                            Err(e) => return *e,
                        };
                        let text = match h.lock().unwrap().pop_front() {
                            Some(Scripted::Fail(status, code, retry)) => {
                                return scripted_failure(status, code, retry)
                            }
                            Some(Scripted::Reply(t)) => t,
                            None => "This is a voice message.".to_string(),
                        };
                        // What a model hears: Korean speech as Korean, the rest as English.
                        let language = if text.chars().any(|c| ('가'..='힣').contains(&c)) {
                            "korean"
                        } else {
                            "english"
                        };
                        match format.as_str() {
                            "text" => HttpResponse::Ok().content_type("text/plain").body(text),
                            "verbose_json" => HttpResponse::Ok().json(json!({
                                "task": "transcribe",
                                "language": language,
                                "duration": 1.5,
                                "text": text,
                                "segments": [],
                            })),
                            _ => HttpResponse::Ok().json(json!({ "text": text })),
                        }
                    }
                }),
            );
            let (key, model, s) = (key.clone(), model.clone(), s.clone());
            cfg.route(
                "/v1/chat/completions",
                web::post().to(move |req: HttpRequest, log: web::Data<Log>, body: Bytes| {
                    let (key, model, s) = (key.clone(), model.clone(), s.clone());
                    async move {
                        log.record(&req, &body);
                        if !key_ok(&req, &key) {
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
                                return scripted_failure(status, code, retry)
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
            transcribe_model,
            script,
            heard,
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

    /// Queues what the transcription model hears next (afterwards a default text).
    pub fn script_transcript(&self, next: Scripted) {
        self.heard.lock().unwrap().push_back(next);
    }

    /// The transcription requests received.
    pub fn transcriptions(&self) -> Vec<Transcription> {
        self.server
            .log
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/audio/transcriptions")
            .filter_map(|r| {
                let content_type = r
                    .headers
                    .iter()
                    .find(|(k, _)| k == "content-type")
                    .map(|(_, v)| v.clone())?;
                let parts = form_parts(&content_type, &r.body)?;
                let file = parts.iter().find(|p| p.name == "file")?;
                let field = |name: &str| {
                    parts
                        .iter()
                        .find(|p| p.name == name)
                        .map(|p| String::from_utf8_lossy(&p.bytes).to_string())
                        .unwrap_or_default()
                };
                Some(Transcription {
                    filename: file.filename.clone().unwrap_or_default(),
                    model: field("model"),
                    bytes: file.bytes.clone(),
                    response_format: field("response_format"),
                })
            })
            .collect()
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

/// The catalogue's `i`th video id (eleven characters, like YouTube's).
pub fn video_id(i: u64) -> String {
    format!("dovieVid{i:03}")
}

/// A YouTube request recorded, its query parameters, refused as YouTube does without the key.
fn youtube_query(
    req: &HttpRequest,
    log: &Log,
    key: &str,
) -> Result<std::collections::HashMap<String, String>, Box<HttpResponse>> {
    log.record(req, &Bytes::new());
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    if q.get("key").map(String::as_str) != Some(key) {
        return Err(Box::new(youtube_error(
            400,
            "API key not valid. Please pass a valid API key.",
            "badRequest",
        )));
    }
    Ok(q)
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
            let api_key_for_videos = key.clone();
            let key = key.clone();
            cfg.route(
                "/youtube/v3/search",
                web::get().to(move |req: HttpRequest, log: web::Data<Log>| {
                    let key = key.clone();
                    async move {
                        let q = match youtube_query(&req, &log, &key) {
                            Ok(q) => q,
                            Err(refused) => return *refused,
                        };
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
                                "id": { "kind": "youtube#video", "videoId": video_id(i) },
                                "snippet": {
                                    "publishedAt": "2024-05-06T07:08:09Z",
                                    "channelId": "UCdovie",
                                    "title": format!("{query} &amp; friends #{i}"),
                                    "description": "a video",
                                    "thumbnails": {
                                        "default": { "url": format!("https://i.ytimg.com/vi/{}/default.jpg", video_id(i)), "width": 120, "height": 90 },
                                        "high": { "url": format!("https://i.ytimg.com/vi/{}/hqdefault.jpg", video_id(i)), "width": 480, "height": 360 }
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
            let key = api_key_for_videos.clone();
            cfg.route(
                "/youtube/v3/videos",
                web::get().to(move |req: HttpRequest, log: web::Data<Log>| {
                    let key = key.clone();
                    async move {
                        let q = match youtube_query(&req, &log, &key) {
                            Ok(q) => q,
                            Err(refused) => return *refused,
                        };
                        let Some(part) = q.get("part").filter(|p| !p.is_empty()) else {
                            return youtube_error(400, "Required parameter: part", "missingRequiredParameter");
                        };
                        if !part.split(',').all(|p| ["snippet", "contentDetails", "statistics", "id"].contains(&p)) {
                            return youtube_error(400, "Unknown part", "unknownPart");
                        }
                        let Some(ids) = q.get("id").filter(|s| !s.is_empty()) else {
                            return youtube_error(400, "No filter selected. Expected one of: id, chart, myRating", "missingRequiredParameter");
                        };
                        let host = req.connection_info().host().to_string();
                        let items: Vec<Value> = ids
                            .split(',')
                            .filter_map(|id| (0..3).find(|i| video_id(*i) == id))
                            .map(|i| json!({
                                "kind": "youtube#video",
                                "etag": format!("v{i}"),
                                "id": video_id(i),
                                "snippet": {
                                    "publishedAt": "2024-05-06T07:08:09Z",
                                    "channelId": "UCdovie",
                                    "title": format!("Video &amp; number {i}"),
                                    "description": format!("What video {i} shows,\n\nover two lines."),
                                    "thumbnails": {
                                        "default": { "url": format!("http://{host}/vi/{}/default.jpg", video_id(i)), "width": 120, "height": 90 },
                                        "high": { "url": format!("http://{host}/vi/{}/hqdefault.jpg", video_id(i)), "width": 480, "height": 360 }
                                    },
                                    "channelTitle": "Dovie &#39;s Channel",
                                    "categoryId": "10",
                                    "liveBroadcastContent": "none"
                                }
                            }))
                            .collect();
                        HttpResponse::Ok().json(json!({
                            "kind": "youtube#videoListResponse",
                            "pageInfo": { "totalResults": items.len(), "resultsPerPage": items.len() },
                            "items": items
                        }))
                    }
                }),
            );
            cfg.route(
                "/vi/{id}/{name}",
                web::get().to(|req: HttpRequest, log: web::Data<Log>| async move {
                    log.record(&req, &Bytes::new());
                    HttpResponse::Ok()
                        .content_type("image/jpeg")
                        .body(crate::common::samples::jpeg(48, 36))
                }),
            );
        });
        YouTube { server, api_key }
    }

    /// The `videos.list` requests received, as their query parameters.
    pub fn video_lookups(&self) -> Vec<std::collections::HashMap<String, String>> {
        self.server
            .log
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/videos"))
            .map(|r| {
                url::form_urlencoded::parse(r.query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .collect()
    }

    pub fn base_url(&self) -> String {
        self.server.url("/youtube/v3")
    }
}
