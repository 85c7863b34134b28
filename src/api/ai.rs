//! AI assistants over REST (AI-1..6) and saved commands. Every call that sends content to a
//! provider checks, in this order: the input, that the caller may read what is sent (room
//! membership; blocked senders' messages are left out), that the provider is configured (503),
//! the caller's `ai` consent (403), and the caller's hourly quota (429, all nodes together).
//! Local work — language detection, hashtag suggestions, commands — needs none of that.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::Message;

use super::{invalid, Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::ai::transcriber::Transcriber;
use crate::ai::{commands, hashtags, lang, replies};
use crate::providers::openai::Ask;
use crate::ratelimit::Rule;
use crate::state::AppState;
use crate::store::{SavedCommand, Transcript, TranslationRecord};

/// The longest YouTube query.
const MAX_QUERY_CHARS: usize = 200;
/// Videos a search answers unless told.
const DEFAULT_VIDEOS: u32 = 10;
/// Tags the model is asked for when the local ones are fewer than this.
const WANT_TAGS: usize = 3;

/// A text sent for detection, translation or suggestions: not blank, at most a message long.
pub(super) fn check_text(state: &AppState, text: &str) -> ApiResult<()> {
    if text.trim().is_empty() {
        return Err(invalid("the text is empty"));
    }
    let max = state.config.limits.max_message_chars;
    if text.chars().count() > max {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("the text is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// The caller may send content to a provider now: their `ai` consent, then their quota.
pub(super) async fn admit(state: &AppState, user_id: &str) -> ApiResult<()> {
    super::privacy::require_consent(state, user_id, "ai").await?;
    let rule = Rule::per_hour("ai", state.config.ai.requests_per_hour);
    state.limiter.hit(rule, user_id).await?;
    Ok(())
}

/// The caller's language, as a translation target (their locale; English if it is none).
async fn language_of(state: &AppState, user_id: &str) -> ApiResult<lang::Target> {
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
    Ok(lang::target(&user.locale)
        .or_else(|| lang::target(dovie_protocol::model::DEFAULT_LOCALE))
        .unwrap_or(lang::ENGLISH))
}

#[derive(Deserialize)]
struct RoomRef {
    room_id: String,
}

/// `POST /api/smart-suggestions`: 1–3 replies the caller could send next in a room, in their
/// language, from the room's recent messages they can read.
async fn smart_suggestions(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<RoomRef>,
) -> ApiResult<HttpResponse> {
    super::rooms::member_room(&state, &b.room_id, &who.user_id).await?;
    state.ai.chat_ready()?;
    admit(&state, &who.user_id).await?;
    let (page, blocked, (_, _, language)) = futures_util::try_join!(
        async {
            Ok::<_, ApiError>(
                state
                    .store
                    .history(&b.room_id, None, None, state.config.ai.context_messages)
                    .await?,
            )
        },
        async { Ok(state.store.blocked_by(&who.user_id).await?) },
        language_of(&state, &who.user_id),
    )?;
    let shown: Vec<&Message> = page
        .messages
        .iter()
        .filter(|m| !m.deleted && !m.content.trim().is_empty())
        .filter(|m| !blocked.contains(&m.sender_id))
        .collect();
    if shown.is_empty() {
        return Err(invalid("the room has no messages to reply to yet"));
    }
    let mut ids: Vec<String> = shown.iter().map(|m| m.sender_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let names: std::collections::HashMap<String, String> = state
        .store
        .users_by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.display_name))
        .collect();
    let transcript: String = shown
        .iter()
        .map(|m| {
            let who_said = if m.sender_id == who.user_id {
                "Me".to_string()
            } else {
                names
                    .get(&m.sender_id)
                    .cloned()
                    .unwrap_or_else(|| "Someone".into())
            };
            format!("{who_said}: {}\n", m.content.replace('\n', " "))
        })
        .collect();
    let system = format!(
        "You suggest replies in a chat. Write 1 to 3 short, different replies (each under 15 \
         words) that \"Me\" could send next, in {language}. Answer with a JSON array of strings \
         and nothing else."
    );
    let answer = state
        .ai
        .ask(
            "smart_replies",
            &Ask {
                system: &system,
                user: &transcript,
                max_tokens: 200,
                temperature: 0.7,
            },
        )
        .await?;
    let suggestions = replies::suggestions(&answer);
    if suggestions.is_empty() {
        return Err(crate::providers::failed(
            "openai",
            format!("no suggestions in the model's answer: {answer:.200}"),
        )
        .into());
    }
    Ok(out.ok(&serde_json::json!({ "suggestions": suggestions })))
}

#[derive(Deserialize)]
struct TranscribeBody {
    file_id: String,
}

/// `POST /api/transcribe`: the transcript of a voice message, audio or video file I can read,
/// streamed decrypted from the file store to the model. Kept on the file, so asking again costs
/// no provider call; the messages carrying the file are amended (`message_edited`, the
/// attachment's `transcript`).
async fn transcribe(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<TranscribeBody>,
) -> ApiResult<HttpResponse> {
    let f = super::files::file_readable_by(&state, &b.file_id, &who.user_id).await?;
    let upload_name = Transcriber::transcribable(&f)?;
    if let Some(t) = &f.transcript {
        return Ok(out.ok(&transcript_json(&f.id, t)));
    }
    state.ai.transcribe_ready()?;
    admit(&state, &who.user_id).await?;
    let t = state.transcriber.transcribe(&f, upload_name).await?;
    Ok(out.ok(&transcript_json(&f.id, &t)))
}

fn transcript_json(file_id: &str, t: &Transcript) -> serde_json::Value {
    serde_json::json!({ "transcript": {
        "file_id": file_id,
        "text": t.text,
        "language": t.language,
    }})
}

#[derive(Deserialize)]
struct TranslateBody {
    text: Option<String>,
    message_id: Option<String>,
    target: Option<String>,
}

/// `POST /api/translate`: a text, or a message the caller can read, in one of the eight
/// languages (the caller's own unless told). A message's translation is kept per target and
/// message version; a text already in the target language is answered as it is.
async fn translate(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<TranslateBody>,
) -> ApiResult<HttpResponse> {
    let target = match b.target.as_deref() {
        Some(t) => lang::target(t)
            .ok_or_else(|| invalid("target is one of ko, en, ja, zh-Hans, zh-Hant, es, fr, de"))?,
        None => language_of(&state, &who.user_id).await?,
    };
    let (locale, code, name) = target;
    let (text, message) = match (b.text, b.message_id) {
        (Some(text), None) => {
            check_text(&state, &text)?;
            (text, None)
        }
        (None, Some(id)) => {
            let m = super::messages::member_message(&state, &id, &who.user_id).await?;
            if m.deleted || m.content.trim().is_empty() {
                return Err(invalid("the message has no text to translate"));
            }
            (m.content.clone(), Some(m))
        }
        _ => return Err(invalid("give either text or message_id")),
    };
    let version = message.as_ref().map_or(0, |m| m.edited_at.unwrap_or(0));
    if let Some(m) = &message {
        if let Some(kept) = state.store.translation(&m.id, locale).await? {
            if kept.version == version {
                return Ok(out.ok(&serde_json::json!({ "translation": {
                    "text": kept.text,
                    "source_language": kept.source_language,
                    "target_language": locale,
                }})));
            }
        }
    }
    let source = lang::detect(&text).map_or("und", |d| d.language);
    // Already in the target language (Chinese: only the script could differ, so it is sent).
    let translated = if source == code && code != "zh" {
        text.clone()
    } else {
        state.ai.chat_ready()?;
        admit(&state, &who.user_id).await?;
        let system = format!(
            "Translate the user's message into {name}. Answer with the translation only: no \
             quotes, notes or explanations. Keep names, emoji, links and #hashtags as they are."
        );
        let max_tokens = (text.chars().count() as u32 * 4).clamp(64, 4096);
        state
            .ai
            .ask(
                "translate",
                &Ask {
                    system: &system,
                    user: &text,
                    max_tokens,
                    temperature: 0.0,
                },
            )
            .await?
            .trim()
            .to_string()
    };
    if let Some(m) = &message {
        state
            .store
            .put_translation(&TranslationRecord {
                message_id: m.id.clone(),
                target: locale.to_string(),
                version,
                source_language: source.to_string(),
                text: translated.clone(),
            })
            .await?;
    }
    Ok(out.ok(&serde_json::json!({ "translation": {
        "text": translated,
        "source_language": source,
        "target_language": locale,
    }})))
}

#[derive(Deserialize)]
struct TextBody {
    text: String,
}

/// `POST /api/detect-language`: local, no provider.
async fn detect_language(
    state: web::Data<AppState>,
    out: Out,
    _who: Authed,
    Body(b): Body<TextBody>,
) -> ApiResult<HttpResponse> {
    check_text(&state, &b.text)?;
    let body = match lang::detect(&b.text) {
        Some(d) => serde_json::json!({ "language": d.language, "confidence": d.confidence }),
        // ISO 639's "undetermined".
        None => serde_json::json!({ "language": "und", "confidence": 0.0 }),
    };
    Ok(out.ok(&body))
}

#[derive(Deserialize)]
struct YouTubeBody {
    q: String,
    limit: Option<u32>,
}

/// `POST /api/youtube-search`: videos from the YouTube Data API.
async fn youtube_search(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<YouTubeBody>,
) -> ApiResult<HttpResponse> {
    let q = b.q.trim();
    if q.is_empty() || q.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid("q is 1 to 200 characters"));
    }
    let limit = b.limit.unwrap_or(DEFAULT_VIDEOS);
    if !(1..=crate::providers::youtube::MAX_RESULTS).contains(&limit) {
        return Err(invalid("limit is 1 to 50"));
    }
    state.ai.youtube_ready()?;
    admit(&state, &who.user_id).await?;
    let videos = state.ai.youtube_search(q, limit).await?;
    Ok(out.ok(&serde_json::json!({ "videos": videos })))
}

/// `POST /api/hashtag-suggestions`: tags from what the caller can read; when those are few and
/// the caller has given the `ai` consent, the model may add more (its failure leaves the local
/// answer as it is).
async fn hashtag_suggestions(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<TextBody>,
) -> ApiResult<HttpResponse> {
    check_text(&state, &b.text)?;
    let mut tags = hashtags::suggest(&state.store, &who.user_id, &b.text).await?;
    if tags.len() < WANT_TAGS
        && state.ai.has_chat_model()
        && admit(&state, &who.user_id).await.is_ok()
    {
        let system = "Suggest up to 5 hashtags for the user's post, in the post's language. \
                      Answer with a JSON array of tags without '#', and nothing else.";
        let ask = Ask {
            system,
            user: &b.text,
            max_tokens: 100,
            temperature: 0.3,
        };
        if let Ok(answer) = state.ai.ask("hashtags", &ask).await {
            let own = dovie_protocol::model::extract_hashtags(&b.text);
            for tag in replies::hashtags(&answer) {
                if tags.len() == hashtags::MAX_SUGGESTIONS {
                    break;
                }
                if !tags.contains(&tag) && !own.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
    }
    Ok(out.ok(&serde_json::json!({ "hashtags": tags })))
}

#[derive(Deserialize)]
struct CommandBody {
    name: String,
    text: String,
}

/// `GET /api/commands`: mine, by name.
async fn list_commands(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
) -> ApiResult<HttpResponse> {
    let commands = state.store.commands(&who.user_id).await?;
    Ok(out.ok(&serde_json::json!({ "commands": commands })))
}

/// `POST /api/commands`: 201; 409 if I already have one of that name.
async fn add_command(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<CommandBody>,
) -> ApiResult<HttpResponse> {
    let name = commands::check_name(&b.name)?;
    dovie_actors::room::validate_send(&b.text, 0, state.config.limits.max_message_chars)?;
    // A text that is itself `/name` is sent as written: expansion happens once.
    if state.store.commands(&who.user_id).await?.len() >= commands::MAX_COMMANDS {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("you can keep at most {} commands", commands::MAX_COMMANDS),
        ));
    }
    let command = SavedCommand {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: who.user_id,
        name,
        text: b.text,
        created_at: dovie_actors::now_ms(),
    };
    if !state.store.put_command(&command).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you already have a command of that name",
        ));
    }
    Ok(out.created(&serde_json::json!({ "command": command })))
}

/// `DELETE /api/commands/{id}`: 204; 404 if I have no such command.
async fn delete_command(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if !state.store.delete_command(&who.user_id, &id).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "no such command"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The text a send's content stands for: a saved command's text when the content calls one of
/// the sender's commands, else the content itself.
pub async fn expand(state: &AppState, user_id: &str, content: String) -> ApiResult<String> {
    let Some(name) = commands::called(&content) else {
        return Ok(content);
    };
    Ok(match state.store.command_named(user_id, name).await? {
        Some(c) => c.text,
        None => content,
    })
}

pub fn register(api: &mut Api) {
    let r = |method, path, summary, body, ok, errors: &'static [u16]| RouteDoc {
        method,
        path,
        summary,
        auth: true,
        body,
        ok,
        errors,
        query: &[],
        also_ok: &[],
    };
    api.route(
        r(
            "POST",
            "/api/smart-suggestions",
            "1-3 short replies I could send next in a room, in my language (the chat model; needs the ai consent)",
            Some("SmartSuggestionsRequest"),
            (200, Some("SmartSuggestions")),
            &[400, 403, 404, 429, 502, 503],
        ),
        smart_suggestions,
    );
    api.route(
        r(
            "POST",
            "/api/transcribe",
            "The transcript of a voice message, audio or video file I can read (kept; the messages carrying it are amended)",
            Some("TranscribeRequest"),
            (200, Some("TranscriptResponse")),
            &[400, 403, 404, 429, 502, 503],
        ),
        transcribe,
    );
    api.route(
        r(
            "POST",
            "/api/translate",
            "A text or a message I can read, translated (kept per message and target)",
            Some("TranslateRequest"),
            (200, Some("TranslationResponse")),
            &[400, 403, 404, 429, 502, 503],
        ),
        translate,
    );
    api.route(
        r(
            "POST",
            "/api/detect-language",
            "The language of a text (local, no provider)",
            Some("TextRequest"),
            (200, Some("DetectedLanguage")),
            &[400],
        ),
        detect_language,
    );
    api.route(
        r(
            "POST",
            "/api/youtube-search",
            "YouTube videos matching a query (YouTube Data API search.list)",
            Some("YouTubeSearchRequest"),
            (200, Some("YouTubeVideos")),
            &[400, 403, 429, 502, 503],
        ),
        youtube_search,
    );
    api.route(
        r(
            "POST",
            "/api/hashtag-suggestions",
            "Hashtags for a text, from what I can read (the model may add some)",
            Some("TextRequest"),
            (200, Some("HashtagSuggestions")),
            &[400],
        ),
        hashtag_suggestions,
    );
    api.route(
        r(
            "GET",
            "/api/commands",
            "My saved commands, by name",
            None,
            (200, Some("CommandList")),
            &[],
        ),
        list_commands,
    );
    api.route(
        r(
            "POST",
            "/api/commands",
            "Save a command: a message that is just /name is sent as its text",
            Some("CommandRequest"),
            (201, Some("CommandResponse")),
            &[400, 409],
        ),
        add_command,
    );
    api.route(
        r(
            "DELETE",
            "/api/commands/{id}",
            "Delete one of my saved commands",
            None,
            (204, None),
            &[404],
        ),
        delete_command,
    );
}
