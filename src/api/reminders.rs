//! Reminders over REST (AI-5): `POST /api/reminders` reads the time from the text with the
//! local parser (`ai::when`) in the caller's time zone (the body's `tz`, else their profile's
//! `time_zone`, else UTC); only when it finds none is the chat model asked — with the caller's
//! `ai` consent and quota, and only the text they wrote or a message they can read. Firing is
//! `ai::reminders`.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;

use dovie_protocol::error::ErrorCode;

use super::ai::{admit, check_text};
use super::people::{next_cursor, page_limit, CURSOR_PARAM};
use super::{invalid, Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc, LIMIT_PARAM};
use crate::ai::when;
use crate::providers::openai::Ask;
use crate::state::AppState;
use crate::store::Reminder;

#[derive(Deserialize)]
struct ReminderBody {
    text: Option<String>,
    message_id: Option<String>,
    tz: Option<String>,
}

/// The zone a reminder is read in: `tz` if given, else the user's own, else UTC.
fn zone(given: Option<&str>, own: Option<&str>) -> ApiResult<Tz> {
    match given {
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| invalid("tz must be an IANA time zone, like Asia/Seoul")),
        None => Ok(own.and_then(|n| n.parse::<Tz>().ok()).unwrap_or(Tz::UTC)),
    }
}

/// `POST /api/reminders`: 201 with the reminder; 400 when the text names no time to come.
async fn create(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<ReminderBody>,
) -> ApiResult<HttpResponse> {
    let (text, message) = match (b.text, b.message_id) {
        (Some(text), None) => {
            check_text(&state, &text)?;
            (text.trim().to_string(), None)
        }
        (None, Some(id)) => {
            let m = super::messages::member_message(&state, &id, &who.user_id).await?;
            if m.deleted || m.content.trim().is_empty() {
                return Err(invalid("the message has no text to be reminded of"));
            }
            (m.content.trim().to_string(), Some(m))
        }
        _ => return Err(invalid("give either text or message_id")),
    };
    let user = state
        .store
        .user_by_id(&who.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))?;
    let tz = zone(b.tz.as_deref(), user.time_zone.as_deref())?;
    let limits = &state.config.ai;
    if state.store.reminders_of(&who.user_id).await?.len() >= limits.max_reminders {
        return Err(invalid(format!(
            "you can have at most {} reminders waiting",
            limits.max_reminders
        )));
    }
    let now_ms = dovie_actors::now_ms();
    let now = tz
        .timestamp_millis_opt(now_ms)
        .single()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the server clock is out of range"))?;
    let due = match when::parse(&text, now) {
        Some(t) => Some(t),
        None => ask_model(&state, &who.user_id, &text, now).await?,
    }
    .ok_or_else(|| invalid("no time to be reminded at was found in the text"))?;
    let due_at = due.timestamp_millis();
    if due_at - now_ms > i64::from(limits.max_reminder_days) * 86_400_000 {
        return Err(invalid(format!(
            "a reminder can be set at most {} days ahead",
            limits.max_reminder_days
        )));
    }
    let reminder = Reminder {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: who.user_id.clone(),
        text,
        due_at,
        room_id: message.as_ref().map(|m| m.room_id.clone()),
        message_id: message.map(|m| m.id),
        created_at: now_ms,
    };
    state.store.add_reminder(&reminder).await?;
    Ok(out.created(&serde_json::json!({ "reminder": reminder })))
}

/// The chat model's reading of the time in `text`, when the caller allows it to see the text
/// (configured, consent, quota): otherwise, or when the model finds none, none.
async fn ask_model(
    state: &AppState,
    user_id: &str,
    text: &str,
    now: DateTime<Tz>,
) -> ApiResult<Option<DateTime<Tz>>> {
    if state.ai.chat_ready().is_err() || admit(state, user_id).await.is_err() {
        return Ok(None);
    }
    let system = format!(
        "It is now {} ({}, {}). The user wants to be reminded of their message. Answer with the \
         local date and time they mean as YYYY-MM-DDTHH:MM and nothing else, or `none` if the \
         message names no time.",
        now.format("%Y-%m-%dT%H:%M"),
        now.format("%A"),
        now.timezone().name(),
    );
    let answer = state
        .ai
        .ask(
            "reminder",
            &Ask {
                system: &system,
                user: text,
                max_tokens: 20,
                temperature: 0.0,
            },
        )
        .await?;
    Ok(read_model_time(&answer, now))
}

/// The first `YYYY-MM-DDTHH:MM` (or with a space) in the model's answer, as a time after `now`.
fn read_model_time(answer: &str, now: DateTime<Tz>) -> Option<DateTime<Tz>> {
    let start = answer.find(|c: char| c.is_ascii_digit())?;
    let candidate: String = answer[start..].chars().take(16).collect();
    let local =
        NaiveDateTime::parse_from_str(&candidate.replace(' ', "T"), "%Y-%m-%dT%H:%M").ok()?;
    now.timezone()
        .from_local_datetime(&local)
        .earliest()
        .filter(|t| *t > now)
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A reminder's place in the list: its due time (zero-padded: text order is time order), then
/// its id.
fn list_key(r: &Reminder) -> String {
    format!("{:020}.{}", r.due_at.max(0), r.id)
}

/// `GET /api/reminders`: mine not yet fired, soonest first.
async fn list(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let limit = page_limit(page.limit)?;
    let all = state.store.reminders_of(&who.user_id).await?;
    // The cursor is the last answered reminder's key (due time, then id): reminders set or
    // fired meanwhile neither repeat nor hide others, and any text is a position in that order.
    let after = page.cursor.as_deref().unwrap_or("");
    let items: Vec<Reminder> = all
        .into_iter()
        .filter(|r| list_key(r).as_str() > after)
        .take(limit)
        .collect();
    let keys: Vec<String> = items.iter().map(list_key).collect();
    let next = next_cursor(&keys, limit, |k| k.as_str());
    Ok(out.ok(&serde_json::json!({ "reminders": items, "next_cursor": next })))
}

/// `DELETE /api/reminders/{id}`: 204 (it will not fire); 404 if I have no such reminder.
async fn delete(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if !state.store.delete_reminder(&who.user_id, &id).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "no such reminder"));
    }
    Ok(HttpResponse::NoContent().finish())
}

pub fn register(api: &mut Api) {
    let r = RouteDoc::authed;
    api.route(
        r(
            "POST",
            "/api/reminders",
            "A reminder of a text or a message I can read, at the time it names (read locally in my time zone; the chat model only if none is found)",
            Some("ReminderRequest"),
            (201, Some("ReminderResponse")),
            &[400, 403, 404, 429, 502],
            &[],
        ),
        create,
    );
    api.route(
        r(
            "GET",
            "/api/reminders",
            "My reminders not yet fired, soonest first",
            None,
            (200, Some("ReminderList")),
            &[400],
            &[LIMIT_PARAM, CURSOR_PARAM],
        ),
        list,
    );
    api.route(
        r(
            "DELETE",
            "/api/reminders/{id}",
            "Deletes one of my reminders (it will not fire)",
            None,
            (204, None),
            &[404],
            &[],
        ),
        delete,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_is_the_given_one_then_the_users_then_utc() {
        assert_eq!(
            zone(Some("Asia/Seoul"), None).ok(),
            Some(chrono_tz::Asia::Seoul)
        );
        assert_eq!(
            zone(None, Some("Europe/Paris")).ok(),
            Some(chrono_tz::Europe::Paris)
        );
        assert_eq!(zone(None, None).ok(), Some(Tz::UTC));
        assert!(zone(Some("Mars/Olympus"), Some("Europe/Paris")).is_err());
    }

    #[test]
    fn the_models_time_is_read_in_the_zone_and_must_be_ahead() {
        let now = chrono_tz::Asia::Seoul
            .with_ymd_and_hms(2026, 12, 3, 10, 0, 0)
            .single()
            .expect("a time");
        let t = read_model_time("2026-12-04T15:30", now).expect("a time");
        assert_eq!(t.to_rfc3339(), "2026-12-04T15:30:00+09:00");
        assert!(read_model_time("`2026-12-04 15:30`", now).is_some());
        assert_eq!(read_model_time("none", now), None);
        assert_eq!(read_model_time("2026-12-02T15:30", now), None);
        assert_eq!(read_model_time("2026-13-02T15:30", now), None);
    }
}
