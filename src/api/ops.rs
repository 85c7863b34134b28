//! Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use actix_web::{web, HttpResponse};

use super::{Api, RouteDoc};
use crate::state::AppState;

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the store answers (a point read; CQL refuses empty keys, hence a named probe key)
/// and the node is not draining.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.is_draining() {
        crate::metrics::set_ready(false);
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "draining" }));
    }
    let answer = state.store.user_by_id("dovie-readiness-probe").await;
    crate::metrics::set_ready(answer.is_ok());
    match answer {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "node_id": state.config.node_id,
            "active_rooms": state.directory.active_count(),
            "sessions": state.registry.session_count(),
            "live_nodes": state.cluster.as_ref().map(|c| c.live_nodes()),
        })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "store_unavailable", "error": e })),
    }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

pub fn register(api: &mut Api) {
    api.route(
        RouteDoc {
            method: "GET",
            path: "/health",
            summary: "Liveness: the process serves HTTP",
            auth: false,
            body: None,
            ok: (200, Some("Status")),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        health,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/ready",
            summary: "Readiness: the store answers and the node is not draining (503 otherwise)",
            auth: false,
            body: None,
            ok: (200, Some("Status")),
            errors: &[503],
            query: &[],
            also_ok: &[],
        },
        ready,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/metrics",
            summary: "Prometheus metrics (text exposition format)",
            auth: false,
            body: None,
            ok: (200, None),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        metrics,
    );
    api.route(
        RouteDoc {
            method: "GET",
            path: "/api/openapi.json",
            summary: "This OpenAPI document",
            auth: false,
            body: None,
            ok: (200, None),
            errors: &[],
            query: &[],
            also_ok: &[],
        },
        openapi,
    );
}
