//! `/api/auth/*`: register, login (password, Google, Facebook, SMS code), refresh, logout, me,
//! and the caller's login sessions (list, revoke one, log out everywhere). Logins are rate
//! limited per client address and per account before any password is hashed.

use actix_web::{web, HttpRequest, HttpResponse};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::User;
use dovie_protocol::rules;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{client_ip, Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::audit;
use crate::auth::{SessionMeta, Tokens};
use crate::people::{invite::constant_time_eq, sms};
use crate::ratelimit::Rule;
use crate::state::AppState;
use crate::store::PhoneVerification;

#[derive(Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    display_name: String,
    #[serde(default)]
    device: Option<String>,
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    device: Option<String>,
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
struct SocialBody {
    provider: String,
    token: String,
    #[serde(default)]
    device: Option<String>,
}

#[derive(Deserialize)]
struct SendSmsBody {
    phone: String,
}

#[derive(Deserialize)]
struct VerifySmsBody {
    verification_id: String,
    code: String,
    #[serde(default)]
    device: Option<String>,
}

#[derive(Serialize)]
struct Session {
    user: User,
    #[serde(flatten)]
    tokens: Tokens,
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    device: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    current: bool,
}

fn ip_of(req: &HttpRequest) -> String {
    client_ip(req).map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
}

/// Writes a security event of the account `user_id` (the actor and the target) to the audit
/// log; the event stands whatever the log answers.
async fn security_event(
    state: &AppState,
    req: &HttpRequest,
    action: &'static str,
    user: &User,
    details: serde_json::Value,
) {
    let ip = client_ip(req).map(|ip| ip.to_string());
    audit::note(
        &state.store,
        audit::Actor {
            id: &user.id,
            ip: ip.as_deref(),
        },
        action,
        audit::Target {
            kind: "user",
            id: &user.id,
            label: Some(crate::admin::label(user)),
        },
        details,
    )
    .await;
}

/// A login that did not succeed (wrong password, unknown email, suspended account), against
/// the account of that email when there is one.
async fn login_failed(state: &AppState, req: &HttpRequest, email: &str, error: &ErrorBody) {
    let email: String = email
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_EMAIL_LOGGED)
        .collect();
    let account = state.store.user_by_email(&email).await.ok().flatten();
    let ip = client_ip(req).map(|ip| ip.to_string());
    let (kind, id) = match &account {
        Some(a) => ("user", a.user.id.as_str()),
        None => ("email", email.as_str()),
    };
    audit::note(
        &state.store,
        audit::Actor {
            id: audit::ANONYMOUS,
            ip: ip.as_deref(),
        },
        "auth.login_failed",
        audit::Target {
            kind,
            id,
            label: Some(&email),
        },
        serde_json::json!({ "method": "password", "code": error.code }),
    )
    .await;
}

/// An email written into the audit log of a failed login, at most (characters).
const MAX_EMAIL_LOGGED: usize = 254;

fn meta(req: &HttpRequest, device: Option<&str>) -> SessionMeta {
    let ua = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    SessionMeta::new(device, ua, client_ip(req).map(|ip| ip.to_string()))
}

fn accept_language(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

/// The language of an account made by this request: its `Accept-Language`, else the default.
fn new_account_locale(state: &AppState, req: &HttpRequest) -> &'static str {
    state.texts.negotiate(None, accept_language(req))
}

fn login_rule(state: &AppState, name: &'static str) -> Rule {
    Rule::per_minute(name, state.config.rate_limits.login_per_minute)
}

async fn register_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    out: Out,
    Body(b): Body<RegisterBody>,
) -> ApiResult<HttpResponse> {
    let rule = Rule::per_hour("register_ip", state.config.rate_limits.register_per_hour);
    state.limiter.hit(rule, &ip_of(&req)).await?;
    let (user, tokens) = state
        .auth
        .register(
            &b.email,
            &b.password,
            &b.display_name,
            new_account_locale(&state, &req),
            meta(&req, b.device.as_deref()),
        )
        .await?;
    Ok(out.created(&Session { user, tokens }))
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    out: Out,
    Body(b): Body<LoginBody>,
) -> ApiResult<HttpResponse> {
    // Per address (one client spraying many accounts) and per account (many clients on one):
    // both before the password is hashed, so neither costs the node a bcrypt.
    state
        .limiter
        .hit(login_rule(&state, "login_ip"), &ip_of(&req))
        .await?;
    let account = b.email.trim().to_lowercase();
    state
        .limiter
        .hit(login_rule(&state, "login_account"), &account)
        .await?;
    let (user, tokens) = match state
        .auth
        .login(&b.email, &b.password, meta(&req, b.device.as_deref()))
        .await
    {
        Ok(done) => done,
        Err(e) => {
            if matches!(e.code, ErrorCode::Unauthorized | ErrorCode::Suspended) {
                login_failed(&state, &req, &b.email, &e).await;
            }
            return Err(e.into());
        }
    };
    security_event(
        &state,
        &req,
        "auth.login",
        &user,
        json!({ "method": "password" }),
    )
    .await;
    Ok(out.ok(&Session { user, tokens }))
}

async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    out: Out,
    Body(b): Body<RefreshBody>,
) -> ApiResult<HttpResponse> {
    let (tokens, session_id) = state.auth.refresh_session(&b.refresh_token).await?;
    let ip = client_ip(&req).map(|ip| ip.to_string());
    if let Err(e) = state
        .store
        .touch_session(&session_id, dovie_actors::now_ms(), ip.as_deref())
        .await
    {
        tracing::warn!(error = %e.message, "cannot record the session's use");
    }
    Ok(out.ok(&tokens))
}

/// Revokes a login session everywhere: its tokens stop working on every node, its sockets get
/// `force_logout` and close 4003.
pub(super) async fn revoke(state: &AppState, session_id: &str, reason: &str) -> ApiResult<()> {
    state.auth.logout(session_id).await?;
    if let Some(c) = &state.cluster {
        c.revoke(session_id);
    }
    state.registry.kick_auth_session(session_id, reason);
    Ok(())
}

/// Writes a revocation of the caller's sessions to the audit log.
async fn revoked(state: &AppState, who: &Authed, action: &'static str, details: serde_json::Value) {
    let user = state.store.user_by_id(&who.user_id).await.ok().flatten();
    audit::note(
        &state.store,
        who.actor(),
        action,
        audit::Target {
            kind: "user",
            id: &who.user_id,
            label: user.as_ref().map(crate::admin::label),
        },
        details,
    )
    .await;
}

async fn logout(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    revoke(&state, &who.auth_session_id, "logged out").await?;
    revoked(
        &state,
        &who,
        "session.revoked",
        json!({ "session_id": who.auth_session_id, "reason": "logout" }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

async fn logout_all(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    let sessions = state
        .store
        .sessions_of(&who.user_id, dovie_actors::now_ms())
        .await?;
    for s in sessions {
        revoke(&state, &s.id, "logged out everywhere").await?;
    }
    // The caller's own session may have expired from the list's view; revoke it regardless.
    revoke(&state, &who.auth_session_id, "logged out everywhere").await?;
    revoked(&state, &who, "session.revoked_all", json!({})).await;
    Ok(HttpResponse::NoContent().finish())
}

async fn sessions(state: web::Data<AppState>, out: Out, who: Authed) -> ApiResult<HttpResponse> {
    let list: Vec<SessionView> = state
        .store
        .sessions_of(&who.user_id, dovie_actors::now_ms())
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: s.id == who.auth_session_id,
            id: s.id,
            device: s.device,
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
        })
        .collect();
    Ok(out.ok(&serde_json::json!({ "sessions": list })))
}

async fn revoke_session(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let mine = state
        .store
        .session(&id)
        .await?
        .filter(|s| s.user_id == who.user_id && s.revoked_at.is_none());
    if mine.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, "no such session"));
    }
    revoke(&state, &id, "session revoked").await?;
    revoked(
        &state,
        &who,
        "session.revoked",
        json!({ "session_id": id.as_str(), "reason": "revoked" }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

async fn me(state: web::Data<AppState>, out: Out, who: Authed) -> ApiResult<HttpResponse> {
    let user =
        state.store.user_by_id(&who.user_id).await?.ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthorized, "the account no longer exists")
        })?;
    Ok(out.ok(&serde_json::json!({ "user": user })))
}

/// What a provider said about the token's holder, the same for every provider.
struct External {
    provider: &'static str,
    subject: String,
    /// An email the provider vouches for.
    verified_email: Option<String>,
    /// An email it does not vouch for (never linked, never stored).
    unverified_email: Option<String>,
    name: Option<String>,
}

/// Finds the account of an external identity, links one by verified email, or creates one;
/// answers it and whether it is new.
async fn account_of(
    state: &AppState,
    ext: External,
    locale: &'static str,
) -> ApiResult<(User, bool)> {
    let store = &state.store;
    if let Some(id) = store.identity(ext.provider, &ext.subject).await? {
        if let Some(user) = store.user_by_id(&id).await? {
            return Ok((user, false));
        }
    }
    let now = dovie_actors::now_ms();
    if let Some(email) = &ext.verified_email {
        if let Some(existing) = store.user_by_email(email).await? {
            let linked = store
                .link_identity(ext.provider, &ext.subject, &existing.user.id, now)
                .await?;
            let user = store
                .user_by_id(&linked)
                .await?
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the linked account is gone"))?;
            return Ok((user, false));
        }
    }
    if let Some(email) = &ext.unverified_email {
        if store.user_by_email(email).await?.is_some() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "an account with this email exists; the provider has not verified the email, so log in and link instead",
            ));
        }
    }
    let name = ext
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| rules::not_blank(n))
        .map(|n| n.chars().take(64).collect::<String>())
        .unwrap_or_else(|| "Dovie user".to_string());
    let mut user = User::new(uuid::Uuid::now_v7().to_string(), name, now);
    user.email = ext.verified_email.clone();
    user.locale = locale.to_string();
    let created = state.auth.create_passwordless(user).await?;
    let linked = store
        .link_identity(ext.provider, &ext.subject, &created.id, now)
        .await?;
    if linked != created.id {
        // Another node linked this identity meanwhile: its account wins.
        let user = store
            .user_by_id(&linked)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "the linked account is gone"))?;
        return Ok((user, false));
    }
    Ok((created, true))
}

async fn social_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    out: Out,
    Body(b): Body<SocialBody>,
) -> ApiResult<HttpResponse> {
    state
        .limiter
        .hit(login_rule(&state, "social_ip"), &ip_of(&req))
        .await?;
    let ext = match b.provider.as_str() {
        "google" => {
            let g = state.providers.google.verify(&b.token).await?;
            let (verified, unverified) = match g.email {
                Some(e) if g.email_verified => (Some(e), None),
                other => (None, other),
            };
            External {
                provider: "google",
                subject: g.subject,
                verified_email: verified,
                unverified_email: unverified,
                name: g.name,
            }
        }
        "facebook" => {
            let f = state.providers.facebook.verify(&b.token).await?;
            External {
                provider: "facebook",
                subject: f.subject,
                verified_email: f.email,
                unverified_email: None,
                name: f.name,
            }
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::ValidationFailed,
                "provider must be \"google\" or \"facebook\"",
            ))
        }
    };
    let key = format!("{}:{}", ext.provider, ext.subject);
    state
        .limiter
        .hit(login_rule(&state, "social_account"), &key)
        .await?;
    let method = ext.provider;
    let (user, created) = account_of(&state, ext, new_account_locale(&state, &req)).await?;
    let tokens = state
        .auth
        .start_session(&user.id, meta(&req, b.device.as_deref()))
        .await?;
    security_event(
        &state,
        &req,
        "auth.login",
        &user,
        json!({ "method": method }),
    )
    .await;
    let body = Session { user, tokens };
    Ok(out.created_or_ok(created, &body))
}

async fn send_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    out: Out,
    Body(b): Body<SendSmsBody>,
) -> ApiResult<HttpResponse> {
    let phone = b.phone.trim().to_string();
    if !rules::valid_phone(&phone) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "phone must be an E.164 number, like +821012345678",
        ));
    }
    if !state.providers.twilio.configured() {
        return Err(ErrorBody::new(
            ErrorCode::ProviderNotConfigured,
            "SMS (Twilio) is not configured on this server",
        )
        .into());
    }
    let limits = &state.config.rate_limits;
    let now = dovie_actors::now_ms();
    // Per phone, from the store (durable, the same on every node): a cooldown between codes
    // and an hourly cap — SMS pumping costs real money.
    let sent = state
        .store
        .verifications_since(&phone, now - 3_600_000)
        .await?;
    let resend_ms = (limits.sms_resend_secs * 1000) as i64;
    if let Some(last) = sent.first() {
        if last + resend_ms > now {
            return Err(ApiError::rate_limited(
                ((last + resend_ms - now + 999) / 1000) as u64,
            ));
        }
    }
    if sent.len() as u64 >= limits.sms_per_hour {
        let oldest = sent.iter().copied().min().unwrap_or(now);
        return Err(ApiError::rate_limited(
            ((oldest + 3_600_000 - now + 999) / 1000).max(1) as u64,
        ));
    }
    let rule = Rule::per_hour("sms_ip", limits.sms_per_hour_per_ip);
    state.limiter.hit(rule, &ip_of(&req)).await?;
    let account = state.store.user_by_phone(&phone).await?.map(|u| u.locale);
    let locale = state
        .texts
        .negotiate(account.as_deref(), accept_language(&req));
    let id = uuid::Uuid::now_v7().to_string();
    let code = sms::new_code();
    state
        .providers
        .twilio
        .send_sms(&phone, &sms::text(&state.texts, locale, &code))
        .await?;
    let v = PhoneVerification {
        code_hash: sms::hash(&state.auth, &id, &code),
        id,
        phone,
        created_at: now,
        expires_at: now + sms::CODE_TTL_MS,
        attempts: 0,
        consumed_at: None,
    };
    state.store.create_verification(v.clone()).await?;
    let body = serde_json::json!({
        "verification_id": v.id,
        "expires_at": v.expires_at,
        "resend_after": now + resend_ms,
    });
    Ok(out.respond(actix_web::http::StatusCode::ACCEPTED, &body))
}

fn verification_failed() -> ApiError {
    ApiError::new(
        ErrorCode::VerificationFailed,
        "the code is wrong or has expired",
    )
}

/// Checks a code against its verification, counting a wrong one; answers the verified phone.
async fn check_code(state: &AppState, id: &str, code: &str) -> ApiResult<String> {
    let now = dovie_actors::now_ms();
    for _ in 0..sms::MAX_ATTEMPTS {
        let v = state
            .store
            .verification(id)
            .await?
            .ok_or_else(verification_failed)?;
        if v.consumed_at.is_some() || v.expires_at <= now || v.attempts >= sms::MAX_ATTEMPTS {
            return Err(verification_failed());
        }
        let given = sms::hash(&state.auth, id, code.trim());
        if constant_time_eq(given.as_bytes(), v.code_hash.as_bytes()) {
            if !state.store.consume_verification(id, now).await? {
                return Err(verification_failed());
            }
            return Ok(v.phone);
        }
        // Counted by compare-and-set: a guess racing another re-reads and counts again.
        if state.store.count_attempt(id, v.attempts).await? {
            return Err(verification_failed());
        }
    }
    Err(verification_failed())
}

async fn verify_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    out: Out,
    Body(b): Body<VerifySmsBody>,
) -> ApiResult<HttpResponse> {
    // A bearer token links the phone to that account; a bad one is refused, never ignored.
    let linking = match super::bearer(&req) {
        Some(token) => {
            use dovie_actors::ports::Authenticator;
            Some(state.auth.verify(token)?)
        }
        None => None,
    };
    let rule = Rule::per_hour("verify_ip", state.config.rate_limits.verify_per_hour);
    state.limiter.hit(rule, &ip_of(&req)).await?;
    let phone = check_code(&state, &b.verification_id, &b.code).await?;
    if let Some(who) = linking {
        let user = state.store.set_phone(&who.user_id, &phone).await?;
        security_event(&state, &req, "phone.changed", &user, json!({})).await;
        return Ok(out.ok(&serde_json::json!({ "user": user })));
    }
    let (user, created) = match state.store.user_by_phone(&phone).await? {
        Some(u) => (u, false),
        None => {
            let tail: String = phone
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let mut u = User::new(
                uuid::Uuid::now_v7().to_string(),
                format!("Dovie user {tail}"),
                dovie_actors::now_ms(),
            );
            u.phone = Some(phone.clone());
            u.locale = new_account_locale(&state, &req).to_string();
            match state.auth.create_passwordless(u).await {
                Ok(u) => (u, true),
                // Another request made the account of this phone meanwhile.
                Err(e) if e.code == ErrorCode::Conflict => (
                    state
                        .store
                        .user_by_phone(&phone)
                        .await?
                        .ok_or_else(verification_failed)?,
                    false,
                ),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let tokens = state
        .auth
        .start_session(&user.id, meta(&req, b.device.as_deref()))
        .await?;
    security_event(
        &state,
        &req,
        "auth.login",
        &user,
        json!({ "method": "sms" }),
    )
    .await;
    let body = Session { user, tokens };
    Ok(out.created_or_ok(created, &body))
}

pub fn register(api: &mut Api) {
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/register",
            summary: "Create an account; answers the user and a token pair",
            auth: false,
            body: Some("RegisterRequest"),
            ok: (201, Some("AuthResponse")),
            errors: &[400, 409, 413, 415, 429],
            query: &[],
            also_ok: &[],
        },
        register_user,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/login",
            summary: "Log in with email and password (rate limited per address and account)",
            auth: false,
            body: Some("LoginRequest"),
            ok: (200, Some("AuthResponse")),
            errors: &[400, 401, 429],
            query: &[],
            also_ok: &[],
        },
        login,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/social-login",
            summary: "Log in (or sign up) with a Google ID token or a Facebook user token",
            auth: false,
            body: Some("SocialLoginRequest"),
            ok: (200, Some("AuthResponse")),
            errors: &[400, 401, 409, 429, 502, 503],
            query: &[],
            also_ok: &[201],
        },
        social_login,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/send-sms",
            summary: "Text a 6-digit code to a phone (valid 5 minutes)",
            auth: false,
            body: Some("SendSmsRequest"),
            ok: (202, Some("SmsSent")),
            errors: &[400, 429, 502, 503],
            query: &[],
            also_ok: &[],
        },
        send_sms,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/verify-sms",
            summary: "Check an SMS code: with a bearer token links the phone ({user}); without, logs in or signs up",
            auth: false,
            body: Some("VerifySmsRequest"),
            ok: (200, Some("VerifySmsResponse")),
            errors: &[400, 401, 409, 429],
            query: &[],
            also_ok: &[201],
        },
        verify_sms,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/refresh",
            summary:
                "Rotate a refresh token; the old one stops working (reuse revokes the session)",
            auth: false,
            body: Some("RefreshRequest"),
            ok: (200, Some("Tokens")),
            errors: &[400, 401],
            query: &[],
            also_ok: &[],
        },
        refresh,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/logout",
            summary: "Revoke this login session (its access and refresh tokens); kicks its sockets",
            auth: true,
            body: None,
            ok: (204, None),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        logout,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/logout-all",
            summary: "Revoke every login session of mine, this one included (sockets get force_logout, 4003)",
            auth: true,
            body: None,
            ok: (204, None),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        logout_all,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/auth/sessions",
            summary: "My login sessions: device, user agent, address, when created and last used",
            auth: true,
            body: None,
            ok: (200, Some("SessionList")),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        sessions,
    );
    api.route(
        RouteDoc {
            method: "DELETE",
            path: "/api/auth/sessions/{id}",
            summary: "Revoke one of my sessions: its tokens stop working, its sockets get force_logout (every node)",
            auth: true,
            body: None,
            ok: (204, None),
            errors: &[404],
            query: &[],
            also_ok: &[],
        },
        revoke_session,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/auth/me",
            summary: "The caller's account",
            auth: true,
            body: None,
            ok: (200, Some("UserResponse")),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        me,
    );
}
