//! Consents (OPS-9): `GET/PUT /api/me/consents`. Each consent — `ai`, `location`, `analytics`,
//! `marketing` — is off until given; every change is kept with its time, so the history shows
//! what the user had agreed to at any moment. Features that need a consent ask
//! [`consent_given`] before they act (the AI assistants before any content leaves the server).

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use dovie_protocol::error::ErrorCode;

use super::{Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::state::AppState;
use crate::store::ConsentRecord;

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
}

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
