//! Privacy over REST (OPS-9): data exports (`POST /api/me/export`, `GET /api/me/exports`,
//! `GET /api/me/exports/{id}` and its signed download) and consents (`GET/PUT
//! /api/me/consents`).
//!
//! Consents: Each consent — `ai`, `location`, `analytics`,
//! `marketing` — is off until given; every change is kept with its time, so the history shows
//! what the user had agreed to at any moment. Features that need a consent ask
//! [`consent_given`] before they act (the AI assistants before any content leaves the server).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use dovie_protocol::error::ErrorCode;

use super::{Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::privacy::export;
use crate::state::AppState;
use crate::store::{ConsentRecord, ExportRecord, ExportStatus};

/// The consents there are.
pub const KINDS: [&str; 4] = ["ai", "location", "analytics", "marketing"];

/// A consent named in the body must be `true` or `false` (absent: unchanged; `null` refused).
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    bool::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentsBody {
    #[serde(default, deserialize_with = "given")]
    ai: Option<bool>,
    #[serde(default, deserialize_with = "given")]
    location: Option<bool>,
    #[serde(default, deserialize_with = "given")]
    analytics: Option<bool>,
    #[serde(default, deserialize_with = "given")]
    marketing: Option<bool>,
}

/// Each consent's current state, from its history (the last change of each kind).
fn current(history: &[ConsentRecord]) -> BTreeMap<&'static str, bool> {
    KINDS.iter().map(|k| (*k, granted(history, k))).collect()
}

/// Whether the last record of `kind` in `history` grants it (none: not given).
pub(crate) fn granted(history: &[ConsentRecord], kind: &str) -> bool {
    history
        .iter()
        .rev()
        .find(|r| r.kind == kind)
        .is_some_and(|r| r.granted)
}

/// Whether `user_id` has given consent `kind` (never given: no).
pub async fn consent_given(state: &AppState, user_id: &str, kind: &str) -> ApiResult<bool> {
    let history = state.store.consents(user_id).await?;
    Ok(granted(&history, kind))
}

/// 403 `consent_required` unless `user_id` has given consent `kind`.
pub async fn require_consent(state: &AppState, user_id: &str, kind: &str) -> ApiResult<()> {
    if consent_given(state, user_id, kind).await? {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::ConsentRequired,
        format!("this needs your `{kind}` consent (PUT /api/me/consents)"),
    ))
}

fn answer(out: &Out, history: Vec<ConsentRecord>) -> HttpResponse {
    out.ok(&serde_json::json!({ "consents": current(&history), "history": history }))
}

/// `GET /api/me/consents`: each consent's state and every change.
async fn get(state: web::Data<AppState>, out: Out, who: Authed) -> ApiResult<HttpResponse> {
    let history = state.store.consents(&who.user_id).await?;
    Ok(answer(&out, history))
}

/// `PUT /api/me/consents`: gives or withdraws the consents named; a change is recorded only
/// when the state changes.
async fn put(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<ConsentsBody>,
) -> ApiResult<HttpResponse> {
    let asked = [
        ("ai", b.ai),
        ("location", b.location),
        ("analytics", b.analytics),
        ("marketing", b.marketing),
    ];
    if asked.iter().all(|(_, v)| v.is_none()) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "name at least one consent: ai, location, analytics or marketing",
        ));
    }
    let mut history = state.store.consents(&who.user_id).await?;
    let now = current(&history);
    // After the last change, so the history stays in order even if the clock stepped back.
    let at = dovie_actors::now_ms().max(history.last().map_or(0, |r| r.at + 1));
    let changes: Vec<ConsentRecord> = asked
        .iter()
        .filter_map(|(kind, v)| {
            let granted = (*v)?;
            (now.get(kind) != Some(&granted)).then(|| ConsentRecord {
                kind: kind.to_string(),
                granted,
                at,
            })
        })
        .collect();
    if !changes.is_empty() {
        state.store.add_consents(&who.user_id, &changes).await?;
        history.extend(changes);
    }
    Ok(answer(&out, history))
}

/// `POST /api/me/export`: starts an export of my data (202), or answers the one running.
async fn start_export(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
) -> ApiResult<HttpResponse> {
    let e = export::request(&state, who.actor(), &who.user_id).await?;
    Ok(out.accepted(&serde_json::json!({ "export": export::view(&state, &e) })))
}

/// My export `id` (another user's is not found).
async fn my_export(state: &AppState, user_id: &str, id: &str) -> ApiResult<ExportRecord> {
    state
        .store
        .export(id)
        .await?
        .filter(|e| e.user_id == user_id)
        .ok_or_else(no_export)
}

fn no_export() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such export")
}

/// `GET /api/me/exports/{id}`: where my export stands, with its download link once ready.
async fn get_export(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let e = my_export(&state, &who.user_id, &id).await?;
    Ok(out.ok(&serde_json::json!({ "export": export::view(&state, &e) })))
}

/// `GET /api/me/exports`: my exports, newest first.
async fn list_exports(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
) -> ApiResult<HttpResponse> {
    let list: Vec<serde_json::Value> = state
        .store
        .exports_of(&who.user_id)
        .await?
        .iter()
        .map(|e| export::view(&state, e))
        .collect();
    Ok(out.ok(&serde_json::json!({ "exports": list })))
}

#[derive(Deserialize)]
struct LinkQuery {
    exp: Option<i64>,
    sig: Option<String>,
}

/// `GET /api/me/exports/{id}/download`: the archive, by its signed link (no token needed) or
/// with the owner's token; a token of anyone else is answered 404 even with a valid link.
async fn download_export(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    link: web::Query<LinkQuery>,
) -> ApiResult<HttpResponse> {
    let e = state.store.export(&id).await?.ok_or_else(no_export)?;
    match super::files::optional_caller(&state, &req)? {
        Some(caller) if caller != e.user_id => return Err(no_export()),
        Some(_) => {}
        None => match (link.exp, link.sig.as_deref()) {
            (Some(exp), Some(sig))
                if state
                    .files
                    .signed_valid(&export::link_subject(&e), exp, sig) => {}
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "the link is invalid or expired",
                ))
            }
            _ => {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "a bearer token or a signed link is required",
                ))
            }
        },
    }
    let file = match e.status {
        ExportStatus::Ready => export::archive_file(&e),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::Conflict,
            format!("the export is {}, not ready", e.status.as_str()),
        )
    })?;
    super::files::serve(&state, &req, &file, "private, no-store").await
}

pub fn register(api: &mut Api) {
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/me/consents",
            summary: "My consents (ai, location, analytics, marketing) and every change of them",
            auth: true,
            body: None,
            ok: (200, Some("ConsentsResponse")),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        get,
    );
    api.route(
        RouteDoc {
            method: "PUT",
            path: "/api/me/consents",
            summary: "Give or withdraw consents; each change is recorded with its time",
            auth: true,
            body: Some("ConsentsRequest"),
            ok: (200, Some("ConsentsResponse")),
            errors: &[400],
            query: &[],
            also_ok: &[],
        },
        put,
    );
    let r = RouteDoc::authed;
    api.route(
        r(
            "POST",
            "/api/me/export",
            "Starts an export of my data (a ZIP of JSON and my files' bytes), or answers the one still running",
            None,
            (202, Some("ExportResponse")),
            &[],
            &[],
        ),
        start_export,
    );
    api.route(
        r(
            "GET",
            "/api/me/exports",
            "My data exports, newest first",
            None,
            (200, Some("ExportList")),
            &[],
            &[],
        ),
        list_exports,
    );
    api.route(
        r(
            "GET",
            "/api/me/exports/{id}",
            "One of my data exports: pending, ready (with a signed download link until expires_at), failed or expired",
            None,
            (200, Some("ExportResponse")),
            &[404],
            &[],
        ),
        get_export,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/me/exports/{id}/download",
            summary: "The export's ZIP: by its signed link (exp, sig) or with the owner's token; Range requests answered 206",
            auth: false,
            body: None,
            ok: (200, None),
            errors: &[401, 403, 404, 409, 416],
            query: &EXPORT_LINK_QUERY,
            also_ok: &[206, 304],
        },
        download_export,
    );
}

const EXPORT_LINK_QUERY: [super::QueryParam; 2] = [
    super::QueryParam {
        name: "exp",
        required: false,
        schema: r#"{"type": "integer", "minimum": 0, "maximum": 9007199254740991, "description": "the link's end (unix seconds), with sig"}"#,
    },
    super::QueryParam {
        name: "sig",
        required: false,
        schema: r#"{"type": "string", "maxLength": 128}"#,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_change_of_each_kind_counts() {
        let r = |kind: &str, granted, at| ConsentRecord {
            kind: kind.into(),
            granted,
            at,
        };
        let now = current(&[r("ai", true, 1), r("location", true, 1), r("ai", false, 2)]);
        assert!(!now["ai"]);
        assert!(now["location"]);
        assert!(!now["marketing"]);
        assert_eq!(now.len(), KINDS.len());
    }
}
