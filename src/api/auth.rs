//! `/api/auth/*`: register, login, refresh, logout, me.

use actix_web::{web, HttpResponse};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::User;
use serde::{Deserialize, Serialize};

use super::{Api, ApiError, ApiResult, Authed, Body, Out, RouteDoc};
use crate::auth::Tokens;
use crate::state::AppState;

#[derive(Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    display_name: String,
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Serialize)]
struct Session {
    user: User,
    #[serde(flatten)]
    tokens: Tokens,
}

async fn register_user(
    state: web::Data<AppState>,
    out: Out,
    Body(b): Body<RegisterBody>,
) -> ApiResult<HttpResponse> {
    let (user, tokens) = state
        .auth
        .register(&b.email, &b.password, &b.display_name)
        .await?;
    Ok(out.created(&Session { user, tokens }))
}

async fn login(
    state: web::Data<AppState>,
    out: Out,
    Body(b): Body<LoginBody>,
) -> ApiResult<HttpResponse> {
    let (user, tokens) = state.auth.login(&b.email, &b.password).await?;
    Ok(out.ok(&Session { user, tokens }))
}

async fn refresh(
    state: web::Data<AppState>,
    out: Out,
    Body(b): Body<RefreshBody>,
) -> ApiResult<HttpResponse> {
    let tokens = state.auth.refresh(&b.refresh_token).await?;
    Ok(out.ok(&tokens))
}

async fn logout(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    state.auth.logout(&who.auth_session_id).await?;
    if let Some(c) = &state.cluster {
        c.revoke(&who.auth_session_id);
    }
    state
        .registry
        .kick_auth_session(&who.auth_session_id, "logged out");
    Ok(HttpResponse::NoContent().finish())
}

async fn me(state: web::Data<AppState>, out: Out, who: Authed) -> ApiResult<HttpResponse> {
    let user =
        state.store.user_by_id(&who.user_id).await?.ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthorized, "the account no longer exists")
        })?;
    Ok(out.ok(&serde_json::json!({ "user": user })))
}

/// A user's profile: yourself, or someone you share a room with (others are not found, so user
/// ids cannot be probed for emails).
async fn user(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such user");
    if *id != who.user_id && !state.store.co_members(&who.user_id).await?.contains(&id) {
        return Err(not_found());
    }
    let user = state.store.user_by_id(&id).await?.ok_or_else(not_found)?;
    // Email (and, later, phone) only on my own account.
    if *id == who.user_id {
        return Ok(out.ok(&serde_json::json!({ "user": user })));
    }
    Ok(out.ok(&serde_json::json!({ "user": user.public() })))
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
            errors: &[400, 409, 413, 415],
            query: &[],
            also_ok: &[],
        },
        register_user,
    );
    api.route(
        RouteDoc {
            method: "POST",
            path: "/api/auth/login",
            summary: "Log in with email and password",
            auth: false,
            body: Some("LoginRequest"),
            ok: (200, Some("AuthResponse")),
            errors: &[400, 401],
            query: &[],
            also_ok: &[],
        },
        login,
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
            method: "GET",
            path: "/api/auth/me",
            summary: "The caller's profile",
            auth: true,
            body: None,
            ok: (200, Some("UserResponse")),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        me,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/users/{id}",
            summary: "A user's profile (yourself, or someone you share a room with)",
            auth: true,
            body: None,
            ok: (200, Some("ProfileResponse")),
            errors: &[404],
            query: &[],
            also_ok: &[],
        },
        user,
    );
}
