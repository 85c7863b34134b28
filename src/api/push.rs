//! Push registration (PUSH-1, PUSH-2): the cluster's VAPID key, browsers' Web Push subscriptions
//! and iOS devices' APNs tokens; notification settings (PUSH-4, PUSH-6); notifications sent on
//! demand (`send-notification`: admins to anyone, anyone to themselves). What is registered is
//! checked by `crate::push` (allowed push services only, real P-256 keys, hex tokens) and kept
//! on both stores; every node forgets what it knew of the user's devices.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use dovie_protocol::error::ErrorCode;

use super::{Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::push::settings::{Change, Settings};
use crate::state::AppState;
use crate::store::{ApnsToken, WebPushSubscription};

#[derive(Deserialize)]
struct SubscribeBody {
    endpoint: String,
    keys: BrowserKeys,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct BrowserKeys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
struct EndpointBody {
    endpoint: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
    #[serde(default)]
    environment: Option<String>,
}

#[derive(Deserialize)]
struct TokenRef {
    token: String,
}

#[derive(Serialize)]
struct SubscriptionView<'a> {
    id: &'a str,
    endpoint: &'a str,
    encoding: &'a str,
    created_at: i64,
}

/// `GET /api/push-vapid-key`: the key browsers subscribe with.
async fn vapid_key(state: web::Data<AppState>, out: Out) -> HttpResponse {
    out.ok(&serde_json::json!({ "public_key": state.push.vapid_public_key() }))
}

/// `POST /api/push-subscribe`: 201 for a new endpoint, 200 (same id) for one already known.
async fn subscribe(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<SubscribeBody>,
) -> ApiResult<HttpResponse> {
    let encoding = state.push.check_subscription(
        &b.endpoint,
        &b.keys.p256dh,
        &b.keys.auth,
        b.encoding.as_deref(),
    )?;
    let sub = WebPushSubscription {
        id: format!("ps_{}", uuid::Uuid::now_v7().simple()),
        endpoint: b.endpoint,
        user_id: who.user_id,
        p256dh: b.keys.p256dh.trim_end_matches('=').to_string(),
        auth: b.keys.auth.trim_end_matches('=').to_string(),
        encoding: encoding.to_string(),
        created_at: dovie_actors::now_ms(),
    };
    let (stored, new) = state.store.put_web_push(sub).await?;
    state.push_devices_changed(&stored.user_id);
    let body = serde_json::json!({ "subscription": SubscriptionView {
        id: &stored.id,
        endpoint: &stored.endpoint,
        encoding: &stored.encoding,
        created_at: stored.created_at,
    }});
    Ok(out.created_or_ok(new, &body))
}

/// `DELETE /api/push-unsubscribe`: 204, whether or not the endpoint was mine (idempotent).
async fn unsubscribe(
    state: web::Data<AppState>,
    who: Authed,
    Body(b): Body<EndpointBody>,
) -> ApiResult<HttpResponse> {
    state
        .store
        .delete_web_push(&who.user_id, &b.endpoint)
        .await?;
    state.push_devices_changed(&who.user_id);
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/ios-push-token`: 201 for a new token, 200 for one already known.
async fn add_ios_token(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<TokenBody>,
) -> ApiResult<HttpResponse> {
    let token = crate::push::check_apns_token(&b.token)?;
    let environment = crate::push::check_environment(b.environment.as_deref())?;
    let t = ApnsToken {
        token,
        user_id: who.user_id,
        environment: environment.to_string(),
        created_at: dovie_actors::now_ms(),
    };
    let body = serde_json::json!({ "token": { "token": t.token, "environment": t.environment } });
    let user_id = t.user_id.clone();
    let new = state.store.put_apns_token(t).await?;
    state.push_devices_changed(&user_id);
    Ok(out.created_or_ok(new, &body))
}

/// `DELETE /api/ios-push-token`: 204 (idempotent).
async fn remove_ios_token(
    state: web::Data<AppState>,
    who: Authed,
    Body(b): Body<TokenRef>,
) -> ApiResult<HttpResponse> {
    let token = crate::push::check_apns_token(&b.token)?;
    state.store.delete_apns_token(&who.user_id, &token).await?;
    state.push_devices_changed(&who.user_id);
    Ok(HttpResponse::NoContent().finish())
}

/// Longest notification title and body (characters), and `data` (bytes of JSON).
const MAX_NOTICE_TITLE_CHARS: usize = 200;
const MAX_NOTICE_BODY_CHARS: usize = 2000;
const MAX_NOTICE_DATA_BYTES: usize = 2048;

#[derive(Deserialize)]
struct NoticeBody {
    user_id: String,
    title: String,
    body: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// `POST /api/send-notification`: 202 with the job id once the job is durable; admins to anyone,
/// anyone to themselves.
async fn send_notification(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(b): Body<NoticeBody>,
) -> ApiResult<HttpResponse> {
    let invalid = |m: &str| ApiError::new(ErrorCode::ValidationFailed, m);
    let title = b.title.trim();
    if title.is_empty() || title.chars().count() > MAX_NOTICE_TITLE_CHARS {
        return Err(invalid("title must be 1 to 200 characters"));
    }
    if b.body.chars().count() > MAX_NOTICE_BODY_CHARS {
        return Err(invalid("body must be at most 2000 characters"));
    }
    if let Some(d) = &b.data {
        if !d.is_object() || d.to_string().len() > MAX_NOTICE_DATA_BYTES {
            return Err(invalid("data must be a JSON object of at most 2048 bytes"));
        }
    }
    if b.user_id != who.user_id {
        let me = state
            .store
            .user_by_id(&who.user_id)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "no such account"))?;
        if me.role != dovie_protocol::model::UserRole::Admin {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only admins send notifications to others",
            ));
        }
        if state.store.user_by_id(&b.user_id).await?.is_none() {
            return Err(ApiError::new(ErrorCode::NotFound, "no such user"));
        }
    }
    let job_id = state
        .pusher
        .notify(&b.user_id, title.to_string(), b.body, b.data)
        .await?;
    Ok(out.accepted(&serde_json::json!({ "job_id": job_id })))
}

/// Rounds of read–change–compare-and-set a settings change tries before giving up.
const SETTINGS_ATTEMPTS: usize = 8;

/// The stored settings and their version, or the defaults.
async fn stored_settings(state: &AppState, user_id: &str) -> ApiResult<(Settings, Option<i64>)> {
    match state.store.notification_settings(user_id).await? {
        Some((doc, version)) => {
            let settings = serde_json::from_str(&doc).map_err(|e| {
                tracing::error!(error = %e, user_id, "stored notification settings do not parse");
                ApiError::new(ErrorCode::Internal, "cannot read the notification settings")
            })?;
            Ok((settings, Some(version)))
        }
        None => Ok((Settings::default(), None)),
    }
}

/// `GET /api/notification-settings`: mine, the defaults until changed.
async fn get_settings(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
) -> ApiResult<HttpResponse> {
    let (settings, _) = stored_settings(&state, &who.user_id).await?;
    Ok(out.ok(&serde_json::json!({ "settings": settings })))
}

/// `PUT /api/notification-settings`: a partial change; room overrides only for my rooms.
async fn put_settings(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    Body(body): Body<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let change = Change::parse(&body, &state.config.push.sounds)?;
    let rooms = change.rooms_set();
    if !rooms.is_empty() {
        let found = state.store.rooms_by_ids(&rooms).await?;
        let mine = |id: &String| {
            found
                .iter()
                .any(|r| &r.id == id && r.is_member(&who.user_id))
        };
        if !rooms.iter().all(mine) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "you are not a member of this room",
            ));
        }
    }
    for _ in 0..SETTINGS_ATTEMPTS {
        let (settings, version) = stored_settings(&state, &who.user_id).await?;
        let changed = change.apply(settings)?;
        let doc = serde_json::to_string(&changed)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let next = version.map_or(1, |v| v + 1);
        if state
            .store
            .put_notification_settings(&who.user_id, &doc, next, version)
            .await?
        {
            return Ok(out.ok(&serde_json::json!({ "settings": changed })));
        }
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "the settings changed too often meanwhile; try again",
    ))
}

pub fn register(api: &mut Api) {
    let r = |method, path, summary, auth, body, ok, errors: &'static [u16]| RouteDoc {
        method,
        path,
        summary,
        auth,
        body,
        ok,
        errors,
        query: &[],
        also_ok: &[],
    };
    api.route(
        r(
            "GET",
            "/api/push-vapid-key",
            "The cluster's VAPID public key (a browser's applicationServerKey)",
            false,
            None,
            (200, Some("VapidKey")),
            &[],
        ),
        vapid_key,
    );
    api.route(
        RouteDoc {
            also_ok: &[200],
            ..r(
                "POST",
                "/api/push-subscribe",
                "Register this browser's Web Push subscription (201 new, 200 known endpoint)",
                true,
                Some("PushSubscribeRequest"),
                (201, Some("PushSubscriptionResponse")),
                &[400],
            )
        },
        subscribe,
    );
    api.route(
        r(
            "DELETE",
            "/api/push-unsubscribe",
            "Remove this browser's Web Push subscription",
            true,
            Some("PushUnsubscribeRequest"),
            (204, None),
            &[400],
        ),
        unsubscribe,
    );
    api.route(
        RouteDoc {
            also_ok: &[200],
            ..r(
                "POST",
                "/api/ios-push-token",
                "Register this iOS device's APNs token (201 new, 200 known)",
                true,
                Some("IosTokenRequest"),
                (201, Some("IosTokenResponse")),
                &[400],
            )
        },
        add_ios_token,
    );
    api.route(
        r(
            "GET",
            "/api/notification-settings",
            "My notification settings (the defaults until changed)",
            true,
            None,
            (200, Some("NotificationSettingsResponse")),
            &[],
        ),
        get_settings,
    );
    api.route(
        r(
            "PUT",
            "/api/notification-settings",
            "Change my notification settings (partial; rooms merge, null removes a room's override)",
            true,
            Some("NotificationSettingsChange"),
            (200, Some("NotificationSettingsResponse")),
            &[400, 403, 409],
        ),
        put_settings,
    );
    api.route(
        r(
            "POST",
            "/api/send-notification",
            "Push a notification to a user's devices (admins to anyone, anyone to themselves); 202 once queued",
            true,
            Some("SendNotificationRequest"),
            (202, Some("SendNotificationResponse")),
            &[400, 403, 404],
        ),
        send_notification,
    );
    api.route(
        r(
            "DELETE",
            "/api/ios-push-token",
            "Remove this iOS device's APNs token",
            true,
            Some("IosTokenRef"),
            (204, None),
            &[400],
        ),
        remove_ios_token,
    );
}
