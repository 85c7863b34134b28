//! The REST surface under `/api`: the one error type the API speaks ([`ApiError`]), body and
//! response codec negotiation (JSON by default, MessagePack on request), the bearer-token
//! extractor, and the route table. Routes are registered through [`Api`], which also records
//! each route's documentation, so `/api/openapi.json` lists exactly the routes served.

pub mod admin;
pub mod ai;
pub mod auth;
pub mod business;
pub mod erasure;
pub mod files;
pub mod location;
pub mod messages;
pub mod monitor;
pub mod ops;
pub mod people;
pub mod privacy;
pub mod push;
pub mod reminders;
pub mod reports;
pub mod rooms;
pub mod social;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use bytes::BytesMut;
use dovie_actors::ports::Authenticator;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::Codec;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::state::AppState;

pub const MSGPACK: &str = "application/msgpack";

/// The error every handler returns: a code, a human message, the status the code implies —
/// and, for `rate_limited`, the seconds to wait (`Retry-After`).
#[derive(Debug, Clone)]
pub struct ApiError(pub ErrorBody, pub Option<u64>);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(ErrorBody::new(code, message), None)
    }

    /// 429 `rate_limited`, retry after `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        ApiError(
            ErrorBody::new(
                ErrorCode::RateLimited,
                format!("too many requests; try again in {secs} s"),
            ),
            Some(secs),
        )
    }
}

/// 400 `validation_failed` with this text.
pub fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed, msg)
}

impl From<ErrorBody> for ApiError {
    fn from(e: ErrorBody) -> Self {
        ApiError(e, None)
    }
}

impl From<crate::ratelimit::Limited> for ApiError {
    fn from(l: crate::ratelimit::Limited) -> Self {
        ApiError::rate_limited(l.retry_after_secs)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code.as_str(), self.0.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Some(secs) = self.1 {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(serde_json::json!({ "error": self.0 }))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn is_msgpack(v: &str) -> bool {
    let v = v.split(';').next().unwrap_or("").trim();
    v.eq_ignore_ascii_case(MSGPACK) || v.eq_ignore_ascii_case("application/x-msgpack")
}

/// The codec of a request body, from its `Content-Type` (none: JSON).
fn request_codec(req: &HttpRequest) -> Result<Codec, ApiError> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(Codec::Json);
    };
    let ct = ct.to_str().unwrap_or("");
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if is_msgpack(&base) {
        Ok(Codec::MsgPack)
    } else if base == "application/json" || base.is_empty() || base.ends_with("+json") {
        Ok(Codec::Json)
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send application/json or application/msgpack",
        ))
    }
}

/// A decoded request body. An empty body decodes as `{}` (for optional payloads).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let codec = request_codec(req);
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(256 * 1024, |s| s.config.limits.max_body_bytes);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let codec = codec?;
            let too_large = || {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body exceeds {limit} bytes"),
                )
            };
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let mut buf = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::new(ErrorCode::BadRequest, format!("cannot read the body: {e}"))
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            if buf.is_empty() {
                let empty: &[u8] = match codec {
                    Codec::Json => b"{}",
                    Codec::MsgPack => &[0x80],
                };
                return codec.decode(empty).map(Body).map_err(|_| {
                    ApiError::new(ErrorCode::ValidationFailed, "a request body is required")
                });
            }
            // Every body is an object: serde would also read a struct from an array, by position.
            let object = match codec {
                Codec::Json => buf.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
                Codec::MsgPack => matches!(buf[0], 0x80..=0x8f | 0xde | 0xdf),
            };
            if !object {
                return Err(ApiError::new(
                    ErrorCode::ValidationFailed,
                    "the body must be an object",
                ));
            }
            match codec {
                Codec::Json => serde_json::from_slice(&buf).map(Body).map_err(|e| {
                    let code = if e.is_data() {
                        ErrorCode::ValidationFailed
                    } else {
                        ErrorCode::BadRequest
                    };
                    ApiError::new(code, format!("invalid JSON body: {e}"))
                }),
                Codec::MsgPack => codec.decode(&buf).map(Body).map_err(|e| {
                    ApiError::new(
                        ErrorCode::ValidationFailed,
                        format!("invalid MessagePack body: {}", e.0),
                    )
                }),
            }
        })
    }
}

/// The codec the client wants answers in: MessagePack if it `Accept`s it, or sent MessagePack
/// without asking for anything else; JSON otherwise.
pub struct Out(pub Codec);

impl Out {
    fn of(req: &HttpRequest) -> Out {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.split(',').any(is_msgpack) {
            return Out(Codec::MsgPack);
        }
        let wants_json = accept
            .split(',')
            .any(|a| a.trim().starts_with("application/json"));
        if !wants_json && matches!(request_codec(req), Ok(Codec::MsgPack)) {
            return Out(Codec::MsgPack);
        }
        Out(Codec::Json)
    }

    pub fn respond<T: Serialize>(&self, status: StatusCode, value: &T) -> HttpResponse {
        match self.0.encode(value) {
            Ok(bytes) => {
                let ct = match self.0 {
                    Codec::Json => "application/json",
                    Codec::MsgPack => MSGPACK,
                };
                HttpResponse::build(status).content_type(ct).body(bytes)
            }
            Err(e) => ApiError::new(ErrorCode::Internal, e.to_string()).error_response(),
        }
    }

    pub fn ok<T: Serialize>(&self, value: &T) -> HttpResponse {
        self.respond(StatusCode::OK, value)
    }

    pub fn created<T: Serialize>(&self, value: &T) -> HttpResponse {
        self.respond(StatusCode::CREATED, value)
    }

    /// 202: taken on, done later.
    pub fn accepted<T: Serialize>(&self, value: &T) -> HttpResponse {
        self.respond(StatusCode::ACCEPTED, value)
    }

    /// 201 for something made now, 200 for an idempotent repeat that found it made.
    pub fn created_or_ok<T: Serialize>(&self, new: bool, value: &T) -> HttpResponse {
        if new {
            self.created(value)
        } else {
            self.ok(value)
        }
    }
}

impl FromRequest for Out {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Out::of(req)))
    }
}

/// The caller, from `Authorization: Bearer <access token>`.
pub struct Authed {
    pub user_id: String,
    pub auth_session_id: String,
    /// The client's address (for the audit log).
    pub ip: Option<String>,
}

impl Authed {
    /// The caller as the audit log names an actor.
    pub fn actor(&self) -> crate::audit::Actor<'_> {
        crate::audit::Actor {
            id: &self.user_id,
            ip: self.ip.as_deref(),
        }
    }
}

/// The client's address: the peer, or — behind a trusted proxy (`http.trusted_proxies`) — the
/// right-most `X-Forwarded-For` address that is not one of those proxies.
pub fn client_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.http.trusted_proxies.clone())
        .unwrap_or_default();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer),
    )
}

/// A field that is present (even as `null`) deserializes as `Some`: with `#[serde(default)]`,
/// absent is `None`, `null` is `Some(None)`.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    bearer_token(req.headers().get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(v: &str) -> Option<&str> {
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequest for Authed {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = (|| {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::new(ErrorCode::Internal, "no app state"))?;
            let token = bearer(req).ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthorized, "a bearer token is required")
            })?;
            let id = state.auth.verify(token)?;
            use dovie_actors::SendQuota;
            if !state.api_quota.allow_send(&id.user_id) {
                return Err(ApiError::rate_limited(crate::quota::retry_after_secs()));
            }
            Ok(Authed {
                user_id: id.user_id,
                auth_session_id: id.auth_session_id,
                ip: client_ip(req).map(|ip| ip.to_string()),
            })
        })();
        std::future::ready(result)
    }
}

/// One route's documentation, for the OpenAPI document.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Needs a bearer token.
    pub auth: bool,
    /// Name of the request body schema (components/schemas), if any.
    pub body: Option<&'static str>,
    /// Success status and the name of its schema (`None`: no body).
    pub ok: (u16, Option<&'static str>),
    /// Error codes this route documents beyond `unauthorized`/`internal`.
    pub errors: &'static [u16],
    /// Query parameters: name, required, and the JSON Schema of the value.
    pub query: &'static [QueryParam],
    /// Other success statuses, with the same body (e.g. 200 for an idempotent repeat of a 201).
    pub also_ok: &'static [u16],
}

impl RouteDoc {
    /// A route that needs a bearer token and has one success status.
    pub const fn authed(
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        body: Option<&'static str>,
        ok: (u16, Option<&'static str>),
        errors: &'static [u16],
        query: &'static [QueryParam],
    ) -> RouteDoc {
        RouteDoc {
            method,
            path,
            summary,
            auth: true,
            body,
            ok,
            errors,
            query,
            also_ok: &[],
        }
    }
}

/// One documented query parameter.
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub required: bool,
    /// JSON Schema of the value, as JSON text.
    pub schema: &'static str,
}

/// The largest `limit` a list call takes (larger pages are cut to the call's own maximum).
pub const LIMIT_CEILING: u64 = 2_147_483_647;

/// `?limit=`: 1 to [`LIMIT_CEILING`]; a call answers at most its own page maximum.
pub const LIMIT_PARAM: QueryParam = QueryParam {
    name: "limit",
    required: false,
    schema: r#"{"type": "integer", "minimum": 1, "maximum": 2147483647, "description": "at most 100 are answered"}"#,
};

/// Registers routes and records their docs; with no `ServiceConfig` it only records.
pub struct Api<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    pub docs: Vec<RouteDoc>,
}

impl<'a> Api<'a> {
    pub fn new(cfg: Option<&'a mut web::ServiceConfig>) -> Self {
        Api {
            cfg,
            docs: Vec::new(),
        }
    }

    pub fn route<F, Args>(&mut self, doc: RouteDoc, handler: F)
    where
        F: actix_web::Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        if let Some(cfg) = self.cfg.as_deref_mut() {
            // unwrap-free: every method name in the table is a valid token.
            let method = Method::from_bytes(doc.method.as_bytes()).unwrap_or(Method::GET);
            cfg.route(doc.path, web::method(method).to(handler));
        }
        self.docs.push(doc);
    }
}

/// Which methods each served path answers, to tell "no such path" (404) from "no such method
/// here" (405 with `Allow`).
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<&'static str>, &'static str)>,
}

impl RouteTable {
    /// The table of every registered route, plus `extra` (`/ws`, served outside [`Api`]).
    pub fn new(extra: &[(&'static str, &'static str)]) -> RouteTable {
        let mut api = Api::new(None);
        register(&mut api);
        let routes = api
            .docs
            .iter()
            .map(|d| (d.method, d.path))
            .chain(extra.iter().copied())
            .map(|(method, path)| (path.split('/').collect(), method))
            .collect();
        RouteTable { routes }
    }

    /// The methods served at `path`: those of the most specific patterns that fit it (`{param}`
    /// segments fit any one non-empty segment; a literal segment is more specific, so
    /// `/api/messages/search` answers for itself, not for `/api/messages/{id}`).
    pub fn allowed(&self, path: &str) -> Vec<&'static str> {
        let segs: Vec<&str> = path.split('/').collect();
        let mut best = 0;
        let mut out: Vec<&'static str> = Vec::new();
        for (pattern, method) in &self.routes {
            let fits = pattern.len() == segs.len()
                && pattern.iter().zip(&segs).all(|(p, s)| {
                    p == s || (p.starts_with('{') && p.ends_with('}') && !s.is_empty())
                });
            if !fits {
                continue;
            }
            let literal = pattern.iter().filter(|p| !p.starts_with('{')).count();
            if literal > best {
                best = literal;
                out.clear();
            }
            if literal == best && !out.contains(method) {
                out.push(method);
            }
        }
        out
    }
}

/// Every route Dovie serves (REST and the operational endpoints; `/ws` is added by the server).
pub fn register(api: &mut Api) {
    auth::register(api);
    people::register(api);
    rooms::register(api);
    messages::register(api);
    files::register(api);
    location::register(api);
    push::register(api);
    ai::register(api);
    reminders::register(api);
    social::register(api);
    business::register(api);
    admin::register(api);
    monitor::register(api);
    erasure::register(api);
    reports::register(api);
    privacy::register(api);
    ops::register(api);
}

#[cfg(test)]
mod route_table_tests {
    use super::*;

    #[test]
    fn known_paths_answer_their_methods() {
        let table = RouteTable::new(&[("GET", "/ws")]);
        let allowed = table.allowed("/api/chat-rooms");
        assert!(
            allowed.contains(&"GET") && allowed.contains(&"POST"),
            "{allowed:?}"
        );
        assert_eq!(table.allowed("/ws"), vec!["GET"]);
        assert!(!table.allowed("/api/chat-rooms/abc").is_empty());
        assert!(table.allowed("/api/chat-rooms//messages").is_empty());
        assert!(table.allowed("/api/nothing-here").is_empty());
        assert_eq!(table.allowed("/api/messages/search"), vec!["GET"]);
        let by_id = table.allowed("/api/messages/m1");
        assert!(by_id.contains(&"PUT") && by_id.contains(&"DELETE") && !by_id.contains(&"GET"));
    }
}
