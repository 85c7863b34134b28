//! Administration over REST (ADM-*): what admins read about the service. So far the audit
//! log, by target; written only through `crate::audit::record`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::social::is_admin;
use super::{invalid, Api, ApiError, ApiResult, Authed, Out, QueryParam, RouteDoc};
use crate::state::AppState;
use dovie_protocol::error::ErrorCode;

/// Entries answered by default, and at most.
const DEFAULT_ENTRIES: usize = 50;
const MAX_ENTRIES: usize = 500;

#[derive(Deserialize)]
struct AuditQuery {
    target_kind: Option<String>,
    target_id: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
}

/// `GET /api/admin/audit?target_kind=&target_id=`: what was done to one target, newest first.
async fn audit(
    state: web::Data<AppState>,
    out: Out,
    who: Authed,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let kind = q
        .target_kind
        .as_deref()
        .ok_or_else(|| invalid("target_kind is required"))?;
    let id = q
        .target_id
        .as_deref()
        .ok_or_else(|| invalid("target_id is required"))?;
    let limit = match q.limit {
        None => DEFAULT_ENTRIES,
        Some(0) => return Err(invalid("limit must be at least 1")),
        Some(l) => l.min(MAX_ENTRIES as u64) as usize,
    };
    if !is_admin(&state, &who.user_id).await? {
        return Err(ApiError::new(ErrorCode::Forbidden, "only admins do this"));
    }
    let entries = state.store.audit_of(kind, id, limit).await?;
    Ok(out.ok(&json!({ "entries": entries })))
}

pub fn register(api: &mut Api) {
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/admin/audit",
            summary: "Admins: the audit log of one target (a business…), newest first",
            auth: true,
            body: None,
            ok: (200, Some("AuditList")),
            errors: &[400, 403],
            query: &[
                QueryParam {
                    name: "target_kind",
                    required: true,
                    schema: r#"{"type": "string", "maxLength": 64}"#,
                },
                QueryParam {
                    name: "target_id",
                    required: true,
                    schema: r#"{"type": "string", "maxLength": 128}"#,
                },
                QueryParam {
                    name: "limit",
                    required: false,
                    schema: r#"{"type": "integer", "minimum": 1, "maximum": 2147483647, "description": "at most 500 are answered"}"#,
                },
            ],
            also_ok: &[],
        },
        audit,
    );
}
