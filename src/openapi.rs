//! The OpenAPI 3.1 document, generated from the route table in `api::register` (the same calls
//! that register the routes), so it lists exactly what the server serves. Schemas of the shared
//! objects are written here, beside PROTOCOL.md's shapes.

use serde_json::{json, Map, Value};

use crate::api::{self, Api};

/// The WebSocket upgrade, served outside the REST table.
pub const WS_PATH: &str = "/ws";

fn schemas() -> Value {
    let s = |props: Value, required: &[&str]| json!({ "type": "object", "properties": props, "required": required });
    let reference = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    json!({
        "Error": s(json!({ "error": s(json!({
            "code": { "type": "string", "enum": [
                "bad_request", "validation_failed", "unauthorized", "forbidden", "not_found", "conflict",
                "payload_too_large", "unsupported_media_type", "rate_limited", "room_full",
                "provider_not_configured", "store_unavailable", "unavailable", "internal"] },
            "message": { "type": "string" } }), &["code", "message"]) }), &["error"]),
        "User": s(json!({
            "id": { "type": "string" }, "email": { "type": "string" }, "display_name": { "type": "string" },
            "avatar_url": { "type": "string" }, "bio": { "type": "string" }, "created_at": { "type": "integer" } }),
            &["id", "email", "display_name", "created_at"]),
        "Tokens": s(json!({ "access_token": { "type": "string" }, "refresh_token": { "type": "string" },
            "expires_in": { "type": "integer", "description": "seconds" } }), &["access_token", "refresh_token", "expires_in"]),
        "AuthResponse": s(json!({ "user": reference("User"), "access_token": { "type": "string" },
            "refresh_token": { "type": "string" }, "expires_in": { "type": "integer" } }),
            &["user", "access_token", "refresh_token", "expires_in"]),
        "UserResponse": s(json!({ "user": reference("User") }), &["user"]),
        "RegisterRequest": s(json!({ "email": { "type": "string" }, "password": { "type": "string", "minLength": 8 },
            "display_name": { "type": "string" } }), &["email", "password", "display_name"]),
        "LoginRequest": s(json!({ "email": { "type": "string" }, "password": { "type": "string" } }), &["email", "password"]),
        "RefreshRequest": s(json!({ "refresh_token": { "type": "string" } }), &["refresh_token"]),
        "Room": s(json!({
            "id": { "type": "string" }, "type": { "type": "string", "enum": ["direct", "group"] },
            "name": { "type": "string" }, "member_ids": { "type": "array", "items": { "type": "string" } },
            "created_by": { "type": "string" }, "created_at": { "type": "integer" },
            "roles": { "type": "object", "additionalProperties": { "type": "string", "enum": ["owner", "admin", "member"] } } }),
            &["id", "type", "member_ids", "created_by", "created_at"]),
        "RoomResponse": s(json!({ "room": reference("Room") }), &["room"]),
        "RoomList": s(json!({ "rooms": { "type": "array", "items": s(json!({ "room": reference("Room"),
            "last_message": reference("Message"), "unread_count": { "type": "integer" } }), &["room", "unread_count"]) } }), &["rooms"]),
        "CreateRoomRequest": s(json!({ "type": { "type": "string", "enum": ["direct", "group"] },
            "member_ids": { "type": "array", "items": { "type": "string" }, "maxItems": 100 }, "name": { "type": "string" } }),
            &["type", "member_ids"]),
        "UpdateRoomRequest": s(json!({ "name": { "type": "string" } }), &[]),
        "AddParticipantsRequest": s(json!({ "user_ids": { "type": "array", "items": { "type": "string" } },
            "role": { "type": "string", "enum": ["member", "admin"] } }), &["user_ids"]),
        "SetRoleRequest": s(json!({ "role": { "type": "string", "enum": ["owner", "admin", "member"] } }), &["role"]),
        "ReadRequest": s(json!({ "seq": { "type": "integer", "minimum": 0 } }), &["seq"]),
        "UnreadCounts": s(json!({ "counts": { "type": "object", "additionalProperties": { "type": "integer" } } }), &["counts"]),
        "Message": s(json!({
            "id": { "type": "string" }, "room_id": { "type": "string" }, "seq": { "type": "integer", "minimum": 1 },
            "sender_id": { "type": "string" },
            "kind": { "type": "string", "enum": ["text", "image", "video", "voice", "file", "location", "system"] },
            "content": { "type": "string" }, "nonce": { "type": "string" }, "reply_to": { "type": "string" },
            "hashtags": { "type": "array", "items": { "type": "string" } },
            "reactions": { "type": "object", "additionalProperties": { "type": "array", "items": { "type": "string" } } },
            "attachments": { "type": "array", "items": {} },
            "created_at": { "type": "integer" }, "edited_at": { "type": "integer" }, "deleted": { "type": "boolean" } }),
            &["id", "room_id", "seq", "sender_id", "kind", "content", "hashtags", "reactions", "attachments", "created_at", "deleted"]),
        "MessageResponse": s(json!({ "message": reference("Message") }), &["message"]),
        "MessageList": s(json!({ "messages": { "type": "array", "items": reference("Message") } }), &["messages"]),
        "MessagePage": s(json!({ "messages": { "type": "array", "items": reference("Message") }, "has_more": { "type": "boolean" } }),
            &["messages", "has_more"]),
        "SendMessageRequest": s(json!({ "content": { "type": "string", "maxLength": 4000 }, "nonce": { "type": "string" },
            "reply_to": { "type": "string" } }), &["content"]),
        "EditMessageRequest": s(json!({ "content": { "type": "string", "maxLength": 4000 } }), &["content"]),
        "LikeRequest": s(json!({ "emoji": { "type": "string", "default": "👍" } }), &[]),
        "Status": s(json!({ "status": { "type": "string" } }), &["status"]),
    })
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

fn error_response(status: u16) -> (String, Value) {
    (
        status.to_string(),
        json!({ "description": format!("error ({status})"),
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
    )
}

/// The whole document.
pub fn document() -> Value {
    let mut api = Api::new(None);
    api::register(&mut api);
    let mut paths = Map::new();
    for doc in &api.docs {
        let mut responses = Map::new();
        let (status, schema) = doc.ok;
        let ok = match schema {
            Some(name) => json!({ "description": "success", "content": {
                "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } },
                "application/msgpack": { "schema": { "$ref": format!("#/components/schemas/{name}") } } } }),
            None => json!({ "description": "success" }),
        };
        responses.insert(status.to_string(), ok);
        let mut errors: Vec<u16> = doc.errors.to_vec();
        if doc.auth {
            errors.push(401);
        }
        errors.push(500);
        for e in errors {
            let (k, v) = error_response(e);
            responses.entry(k).or_insert(v);
        }
        let mut op = json!({
            "summary": doc.summary,
            "operationId": format!("{} {}", doc.method, doc.path),
            "responses": responses,
        });
        let mut params = path_params(doc.path);
        for q in doc.query {
            // unwrap-free: a bad schema text shows in the document as an empty schema, and the
            // test below fails on it.
            let schema: Value = serde_json::from_str(q.schema).unwrap_or_else(|_| json!({}));
            params.push(
                json!({ "name": q.name, "in": "query", "required": q.required, "schema": schema }),
            );
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if doc.auth {
            op["security"] = json!([{ "bearer": [] }]);
        }
        if let Some(body) = doc.body {
            let schema = json!({ "$ref": format!("#/components/schemas/{body}") });
            op["requestBody"] = json!({ "required": true, "content": {
                "application/json": { "schema": schema }, "application/msgpack": { "schema": schema } } });
        }
        let entry = paths
            .entry(doc.path.to_string())
            .or_insert_with(|| json!({}));
        entry[doc.method.to_ascii_lowercase()] = op;
    }
    paths.insert(
        WS_PATH.into(),
        json!({ "get": {
            "summary": "WebSocket upgrade (subprotocols dovie.msgpack.v1, dovie.json.v1; ?token= or a first auth frame). See docs/protocol.md",
            "operationId": "GET /ws",
            "parameters": [
                { "name": "token", "in": "query", "required": false, "schema": { "type": "string" } },
                { "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["json", "msgpack"] } }],
            "responses": {
                "101": { "description": "switching protocols" },
                "400": { "description": "not a WebSocket upgrade, an unknown format, or a request head over 8 KB (error body)" },
                "503": { "description": "this node is draining; connect to another (error body)" } } } }),
    );
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Dovie", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Dovie messenger REST API. Bodies are JSON, or MessagePack with Content-Type/Accept application/msgpack." },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_parameter_schema_parses() {
        let mut api = Api::new(None);
        api::register(&mut api);
        for doc in &api.docs {
            for q in doc.query {
                let v: Result<Value, _> = serde_json::from_str(q.schema);
                assert!(
                    v.is_ok(),
                    "{} {} ?{}: {}",
                    doc.method,
                    doc.path,
                    q.name,
                    q.schema
                );
            }
        }
    }

    #[test]
    fn every_referenced_schema_is_defined() {
        let doc = document();
        let text = doc.to_string();
        let defined = doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                defined.contains_key(&name),
                "schema {name} is referenced but not defined"
            );
        }
    }
}
