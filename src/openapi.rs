//! The OpenAPI 3.1 document, generated from the route table in `api::register` (the same calls
//! that register the routes), so it lists exactly what the server serves. Schemas of the shared
//! objects are written here, beside PROTOCOL.md's shapes.

use dovie_protocol::error::ErrorCode;
use dovie_protocol::rules;
use serde_json::{json, Map, Value};

use crate::api::{self, Api};
use crate::business::{EMAIL_PATTERN, PHONE_PATTERN, WEBSITE_PATTERN};

/// The WebSocket upgrade, served outside the REST table.
pub const WS_PATH: &str = "/ws";

fn schemas() -> Value {
    // Answers: exactly these properties. Requests: unknown properties are ignored (clients may
    // be newer than the server), the listed ones checked as the server checks them.
    let out = |props: Value, required: &[&str]| json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false });
    let req = |props: Value, required: &[&str]| json!({ "type": "object", "properties": props, "required": required, "additionalProperties": true });
    let reference = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let not_blank = rules::NOT_BLANK_PATTERN;
    let id = json!({ "type": "string", "minLength": 1 });
    let seq = json!({ "type": "integer", "minimum": 0, "maximum": rules::MAX_SEQ });
    let locales = dovie_protocol::model::LOCALES;
    let cursor = json!({ "type": ["string", "null"], "description": "pass as ?cursor= for the next page; null: no more" });
    let device = json!({ "type": ["string", "null"], "description": "a name for this device, shown in the session list (cut to 64 characters)" });
    let mut locales_or_null: Vec<Value> = locales.iter().map(|l| json!(l)).collect();
    locales_or_null.push(Value::Null);
    let lat = json!({ "type": "number", "minimum": -90, "maximum": 90 });
    let lon = json!({ "type": "number", "minimum": -180, "maximum": 180 });
    let number_or_null = json!({ "type": ["number", "null"] });
    let message_text =
        json!({ "type": "string", "minLength": 1, "maxLength": 4000, "pattern": not_blank });
    let analytics = {
        let counts = json!({ "followers": { "type": "integer", "description": "new followers less those who left" },
                "profile_views": { "type": "integer" },
                "post_views": { "type": "integer", "description": "impressions of the business's posts: once per viewer, post and day" },
                "likes": { "type": "integer" }, "comments": { "type": "integer" },
                "channel_subscribers": { "type": "integer", "description": "new subscribers less those who left" } });
        let names = [
            "followers",
            "profile_views",
            "post_views",
            "likes",
            "comments",
            "channel_subscribers",
        ];
        let mut day = counts.clone();
        day["day"] = json!({ "type": "string", "format": "date" });
        let mut day_names = names.to_vec();
        day_names.push("day");
        out(
            json!({ "business_id": { "type": "string" }, "from": { "type": "string", "format": "date" },
                "to": { "type": "string", "format": "date" },
                "totals": out(counts, &names), "daily": { "type": "array", "items": out(day, &day_names) },
                "follower_count": { "type": "integer", "description": "followers now" } }),
            &[
                "business_id",
                "from",
                "to",
                "totals",
                "daily",
                "follower_count",
            ],
        )
    };
    json!({
        "Error": out(json!({ "error": out(json!({
            "code": { "type": "string", "enum": codes },
            "message": { "type": "string" } }), &["code", "message"]) }), &["error"]),
        "User": out(json!({
            "id": { "type": "string" }, "email": { "type": ["string", "null"], "description": "null for an account made by phone or by a provider without a verified email" },
            "phone": { "type": "string" }, "display_name": { "type": "string" },
            "avatar_url": { "type": "string" }, "bio": { "type": "string" }, "status_message": { "type": "string" },
            "theme": { "type": "string", "enum": ["light", "dark", "system"] }, "locale": { "type": "string", "enum": locales },
            "time_zone": { "type": "string", "description": "IANA time zone reminders are read in; absent: UTC" },
            "presence_visible": { "type": "boolean" }, "discoverable": { "type": "boolean" },
            "created_at": { "type": "integer" }, "role": { "type": "string", "enum": ["user", "admin"] } }),
            &["id", "email", "display_name", "theme", "locale", "presence_visible", "discoverable", "created_at", "role"]),
        "PublicUser": out(json!({
            "id": { "type": "string" }, "display_name": { "type": "string" },
            "avatar_url": { "type": "string" }, "bio": { "type": "string" }, "status_message": { "type": "string" },
            "created_at": { "type": "integer" },
            "online": { "type": "boolean", "description": "only when the user shows their presence to me" },
            "last_seen_at": { "type": ["integer", "null"], "description": "only when the user shows their presence to me" } }),
            &["id", "display_name", "created_at"]),
        "PatchMeRequest": req(json!({
            "display_name": { "type": ["string", "null"], "minLength": 1, "maxLength": 64, "pattern": not_blank, "description": "null: unchanged" },
            "bio": { "type": ["string", "null"], "maxLength": 500, "description": "null or blank clears it" },
            "status_message": { "type": ["string", "null"], "maxLength": 140, "description": "null or blank clears it" },
            "theme": { "type": ["string", "null"], "enum": ["light", "dark", "system", null], "description": "null: unchanged" },
            "locale": { "type": ["string", "null"], "enum": locales_or_null, "description": "null: unchanged" },
            "time_zone": { "type": ["string", "null"], "description": "an IANA time zone (Asia/Seoul) reminders are read in; null or blank clears it (UTC)" },
            "presence_visible": { "type": ["boolean", "null"], "description": "null: unchanged" },
            "discoverable": { "type": ["boolean", "null"], "description": "null: unchanged" } }), &[]),
        "UserList": out(json!({ "users": { "type": "array", "items": reference("PublicUser") }, "next_cursor": cursor }), &["users", "next_cursor"]),
        "Presence": out(json!({ "online": { "type": "boolean" }, "last_seen_at": { "type": ["integer", "null"] } }), &["online", "last_seen_at"]),
        "PresenceMap": out(json!({ "presence": { "type": "object", "additionalProperties": reference("Presence") } }), &["presence"]),
        "UserRefRequest": req(json!({ "user_id": { "type": "string" } }), &["user_id"]),
        "Contact": out(json!({ "user": reference("PublicUser"), "mutual": { "type": "boolean" }, "added_at": { "type": "integer" } }), &["user", "mutual", "added_at"]),
        "ContactResponse": out(json!({ "contact": reference("Contact") }), &["contact"]),
        "ContactList": out(json!({ "contacts": { "type": "array", "items": reference("Contact") }, "next_cursor": cursor }), &["contacts", "next_cursor"]),
        "InviteResponse": out(json!({ "invite": out(json!({ "token": { "type": "string" }, "url": { "type": "string" },
            "expires_at": { "type": "integer" } }), &["token", "url", "expires_at"]) }), &["invite"]),
        "Block": out(json!({ "user": reference("PublicUser"), "blocked_at": { "type": "integer" } }), &["user", "blocked_at"]),
        "BlockResponse": out(json!({ "block": reference("Block") }), &["block"]),
        "BlockList": out(json!({ "blocks": { "type": "array", "items": reference("Block") }, "next_cursor": cursor }), &["blocks", "next_cursor"]),
        "Session": out(json!({ "id": { "type": "string" }, "device": { "type": ["string", "null"] },
            "user_agent": { "type": ["string", "null"] }, "ip": { "type": ["string", "null"], "description": "forgotten privacy.ip_retention_days after the last use" },
            "created_at": { "type": "integer" }, "last_seen_at": { "type": "integer" }, "current": { "type": "boolean" } }),
            &["id", "device", "user_agent", "ip", "created_at", "last_seen_at", "current"]),
        "SessionList": out(json!({ "sessions": { "type": "array", "items": reference("Session") } }), &["sessions"]),
        "SocialLoginRequest": req(json!({ "provider": { "type": "string", "enum": ["google", "facebook"] },
            "token": { "type": "string", "description": "Google: an ID token; Facebook: a user access token" },
            "device": device }), &["provider", "token"]),
        "SendSmsRequest": req(json!({ "phone": { "type": "string", "pattern": rules::PHONE_PATTERN, "description": "E.164" } }), &["phone"]),
        "SmsSent": out(json!({ "verification_id": { "type": "string" }, "expires_at": { "type": "integer" },
            "resend_after": { "type": "integer" } }), &["verification_id", "expires_at", "resend_after"]),
        "VerifySmsRequest": req(json!({ "verification_id": { "type": "string" }, "code": { "type": "string" }, "device": device }),
            &["verification_id", "code"]),
        "VerifySmsResponse": { "oneOf": [reference("AuthResponse"), reference("UserResponse")],
            "description": "without a bearer token: the login shape; with one: the account the phone is now linked to" },
        "Png": { "type": "string", "format": "binary" },
        "Svg": { "type": "string" },
        "Tokens": out(json!({ "access_token": { "type": "string" }, "refresh_token": { "type": "string" },
            "expires_in": { "type": "integer", "description": "seconds" } }), &["access_token", "refresh_token", "expires_in"]),
        "AuthResponse": out(json!({ "user": reference("User"), "access_token": { "type": "string" },
            "refresh_token": { "type": "string" }, "expires_in": { "type": "integer" } }),
            &["user", "access_token", "refresh_token", "expires_in"]),
        "UserResponse": out(json!({ "user": reference("User") }), &["user"]),
        "ProfileResponse": out(json!({ "user": { "oneOf": [reference("User"), reference("PublicUser")],
            "description": "my own account (with email), or another user's public profile" } }), &["user"]),
        "RegisterRequest": req(json!({
            "email": { "type": "string", "maxLength": rules::MAX_EMAIL_CHARS, "pattern": rules::EMAIL_PATTERN },
            "password": { "type": "string", "minLength": 8, "maxLength": 72 },
            "display_name": { "type": "string", "minLength": 1, "maxLength": 64, "pattern": not_blank },
            "device": device }),
            &["email", "password", "display_name"]),
        "LoginRequest": req(json!({ "email": { "type": "string" }, "password": { "type": "string" }, "device": device }), &["email", "password"]),
        "RefreshRequest": req(json!({ "refresh_token": { "type": "string" } }), &["refresh_token"]),
        "Room": out(json!({
            "id": { "type": "string" }, "type": { "type": "string", "enum": ["direct", "group", "location", "channel"] },
            "location": out(json!({ "lat": lat, "lon": lon, "radius_m": { "type": "number" } }), &["lat", "lon", "radius_m"]),
            "name": { "type": "string" }, "member_ids": { "type": "array", "items": { "type": "string" } },
            "created_by": { "type": "string" }, "created_at": { "type": "integer" },
            "roles": { "type": "object", "additionalProperties": { "type": "string", "enum": ["owner", "admin", "member"] } } }),
            &["id", "type", "member_ids", "created_by", "created_at"]),
        "DiscoveredRoom": out(json!({
            "id": { "type": "string" }, "type": { "type": "string", "enum": ["location"] },
            "location": out(json!({ "lat": lat, "lon": lon, "radius_m": { "type": "number" } }), &["lat", "lon", "radius_m"]),
            "name": { "type": "string" },
            "member_ids": { "type": "array", "items": { "type": "string" }, "description": "only for members of the room" },
            "created_by": { "type": "string" }, "created_at": { "type": "integer" },
            "roles": { "type": "object", "description": "only for members of the room",
                "additionalProperties": { "type": "string", "enum": ["owner", "admin", "member"] } } }),
            &["id", "type", "location", "created_by", "created_at"]),
        "ConsentsRequest": json!({ "type": "object", "minProperties": 1, "additionalProperties": false,
            "properties": { "ai": { "type": "boolean" }, "location": { "type": "boolean" },
            "analytics": { "type": "boolean" }, "marketing": { "type": "boolean" } } }),
        "ConsentsResponse": out(json!({
            "consents": out(json!({ "ai": { "type": "boolean" }, "location": { "type": "boolean" },
                "analytics": { "type": "boolean" }, "marketing": { "type": "boolean" } }), &["ai", "location", "analytics", "marketing"]),
            "history": { "type": "array", "items": out(json!({ "kind": { "type": "string", "enum": ["ai", "location", "analytics", "marketing"] },
                "granted": { "type": "boolean" }, "at": { "type": "integer" } }), &["kind", "granted", "at"]) } }), &["consents", "history"]),
        "SmartSuggestionsRequest": req(json!({ "room_id": id }), &["room_id"]),
        "SmartSuggestions": out(json!({ "suggestions": { "type": "array", "minItems": 1, "maxItems": 3, "items": { "type": "string" } } }), &["suggestions"]),
        "TranslateRequest": req(json!({ "text": message_text,
            "message_id": id, "target": { "type": "string", "enum": locales } }), &[]),
        "TranslationResponse": out(json!({ "translation": out(json!({ "text": { "type": "string" },
            "source_language": { "type": "string", "description": "ISO 639-1 (und: undetermined)" },
            "target_language": { "type": "string", "enum": locales } }), &["text", "source_language", "target_language"]) }), &["translation"]),
        "TextRequest": req(json!({ "text": message_text }), &["text"]),
        "DetectedLanguage": out(json!({ "language": { "type": "string", "description": "ISO 639-1 (und: undetermined)" },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 } }), &["language", "confidence"]),
        "YouTubeSearchRequest": req(json!({ "q": { "type": "string", "minLength": 1, "maxLength": 200, "pattern": not_blank },
            "limit": { "type": "integer", "minimum": 1, "maximum": 50 } }), &["q"]),
        "YouTubeVideos": out(json!({ "videos": { "type": "array", "items": out(json!({ "id": { "type": "string" },
            "title": { "type": "string" }, "channel": { "type": "string" }, "thumbnail_url": { "type": ["string", "null"] },
            "url": { "type": "string" }, "published_at": { "type": ["integer", "null"] } }),
            &["id", "title", "channel", "thumbnail_url", "url", "published_at"]) } }), &["videos"]),
        "HashtagSuggestions": out(json!({ "hashtags": { "type": "array", "items": { "type": "string" } } }), &["hashtags"]),
        "CommandRequest": req(json!({ "name": { "type": "string", "pattern": "^/?[a-z0-9_-]{1,32}$" },
            "text": message_text }), &["name", "text"]),
        "CommandResponse": out(json!({ "command": reference("Command") }), &["command"]),
        "CommandList": out(json!({ "commands": { "type": "array", "items": reference("Command") } }), &["commands"]),
        "Command": out(json!({ "id": { "type": "string" }, "name": { "type": "string" }, "text": { "type": "string" },
            "created_at": { "type": "integer" } }), &["id", "name", "text", "created_at"]),
        "TranscribeRequest": req(json!({ "file_id": id }), &["file_id"]),
        "TranscriptResponse": out(json!({ "transcript": out(json!({ "file_id": { "type": "string" }, "text": { "type": "string" },
            "language": { "type": "string", "description": "ISO 639-1 (und: undetermined)" } }), &["file_id", "text", "language"]) }), &["transcript"]),
        "PostRequest": req(json!({ "content": { "type": "string", "minLength": 1, "maxLength": 5000, "pattern": not_blank,
                "description": "not blank; #hashtags and <@user_id> mentions are read from it" },
            "visibility": { "type": ["string", "null"], "enum": ["public", "followers", null], "default": "public", "description": "null: public" },
            "attachments": { "type": ["array", "null"], "maxItems": 10, "items": { "type": "string" },
                "description": "ids of files I uploaded, each once; whoever may see the post may read them" } }), &["content"]),
        "PostPatch": json!({ "type": "object",
            "anyOf": [{ "required": ["content"], "properties": { "content": { "type": "string" } } },
                      { "required": ["visibility"], "properties": { "visibility": { "type": "string" } } }],
            "properties": {
                "content": { "type": ["string", "null"], "minLength": 1, "maxLength": 5000, "pattern": not_blank, "description": "null: unchanged" },
                "visibility": { "type": ["string", "null"], "enum": ["public", "followers", null], "description": "null: unchanged" } } }),
        "Post": out(json!({ "id": { "type": "string" }, "author_id": { "type": "string" },
            "business_id": { "type": "string" }, "content": { "type": "string" },
            "hashtags": { "type": "array", "items": { "type": "string" } },
            "mentions": { "type": "array", "items": { "type": "string" } },
            "attachments": { "type": "array", "items": reference("File") },
            "visibility": { "type": "string", "enum": ["public", "followers"] },
            "like_count": { "type": "integer" }, "comment_count": { "type": "integer" },
            "liked_by_me": { "type": "boolean" }, "created_at": { "type": "integer" }, "edited_at": { "type": "integer" } }),
            &["id", "author_id", "content", "hashtags", "attachments", "visibility", "like_count", "comment_count", "liked_by_me", "created_at"]),
        "PostResponse": out(json!({ "post": reference("Post") }), &["post"]),
        "PostList": out(json!({ "posts": { "type": "array", "items": reference("Post") }, "next_cursor": cursor }), &["posts", "next_cursor"]),
        "CommentRequest": req(json!({ "content": { "type": "string", "minLength": 1, "maxLength": 2000, "pattern": not_blank },
            "reply_to": { "type": ["string", "null"], "description": "a top-level comment of the same post" } }), &["content"]),
        "Comment": out(json!({ "id": { "type": "string" }, "post_id": { "type": "string" }, "author_id": { "type": "string" },
            "content": { "type": "string" }, "reply_to": { "type": "string" }, "created_at": { "type": "integer" } }),
            &["id", "post_id", "author_id", "content", "created_at"]),
        "CommentResponse": out(json!({ "comment": reference("Comment") }), &["comment"]),
        "CommentList": out(json!({ "comments": { "type": "array", "items": reference("Comment") }, "next_cursor": cursor }), &["comments", "next_cursor"]),
        "BusinessRequest": req(json!({
            "name": { "type": "string", "minLength": 1, "maxLength": 100, "pattern": not_blank },
            "category": { "type": "string", "minLength": 1, "maxLength": 50, "pattern": not_blank, "description": "kept in lower case" },
            "description": { "type": "string", "maxLength": 2000 },
            "website": { "type": ["string", "null"], "maxLength": 2048, "pattern": WEBSITE_PATTERN },
            "email": { "type": ["string", "null"], "maxLength": 254, "pattern": EMAIL_PATTERN },
            "phone": { "type": ["string", "null"], "pattern": PHONE_PATTERN },
            "address": { "type": ["string", "null"], "maxLength": 500, "description": "blank: none" },
            "hours": { "type": ["string", "null"], "maxLength": 500, "description": "opening hours as text; blank: none" } }),
            &["name", "category", "description"]),
        "BusinessPatch": req(json!({
            "name": { "type": ["string", "null"], "minLength": 1, "maxLength": 100, "pattern": not_blank, "description": "null: unchanged" },
            "category": { "type": ["string", "null"], "minLength": 1, "maxLength": 50, "pattern": not_blank, "description": "null: unchanged" },
            "description": { "type": ["string", "null"], "maxLength": 2000, "description": "null: unchanged" },
            "website": { "type": ["string", "null"], "maxLength": 2048, "pattern": WEBSITE_PATTERN, "description": "null clears it" },
            "email": { "type": ["string", "null"], "maxLength": 254, "pattern": EMAIL_PATTERN, "description": "null clears it" },
            "phone": { "type": ["string", "null"], "pattern": PHONE_PATTERN, "description": "null clears it" },
            "address": { "type": ["string", "null"], "maxLength": 500, "description": "null or blank clears it" },
            "hours": { "type": ["string", "null"], "maxLength": 500, "description": "null or blank clears it" } }), &[]),
        "Business": out(json!({ "id": { "type": "string" }, "owner_id": { "type": "string" },
            "name": { "type": "string" }, "category": { "type": "string" }, "description": { "type": "string" },
            "website": { "type": ["string", "null"] }, "email": { "type": ["string", "null"] },
            "phone": { "type": ["string", "null"] }, "address": { "type": ["string", "null"] },
            "hours": { "type": ["string", "null"] },
            "admins": { "type": "array", "items": { "type": "string" }, "description": "users who act for the business beside its owner" },
            "verified": { "type": "boolean" }, "follower_count": { "type": "integer" },
            "created_at": { "type": "integer" }, "updated_at": { "type": "integer" } }),
            &["id", "owner_id", "name", "category", "description", "website", "email", "phone", "address", "hours", "admins", "verified", "follower_count", "created_at", "updated_at"]),
        "BusinessResponse": out(json!({ "business": reference("Business") }), &["business"]),
        "BusinessList": out(json!({ "businesses": { "type": "array", "items": reference("Business") }, "next_cursor": cursor }), &["businesses", "next_cursor"]),
        "BusinessPostRequest": req(json!({ "business_id": { "type": "string" },
            "content": { "type": "string", "minLength": 1, "maxLength": 5000, "pattern": not_blank },
            "visibility": { "type": ["string", "null"], "enum": ["public", "followers", null], "default": "public", "description": "followers: the business's followers" },
            "attachments": { "type": ["array", "null"], "maxItems": 10, "items": { "type": "string" }, "description": "ids of files I uploaded, each once" } }),
            &["business_id", "content"]),
        "ChannelRequest": req(json!({ "business_id": { "type": "string" },
            "name": { "type": "string", "minLength": 1, "maxLength": 100, "pattern": not_blank },
            "description": { "type": ["string", "null"], "maxLength": 2000, "description": "blank: none" } }), &["business_id", "name"]),
        "Channel": out(json!({ "id": { "type": "string" }, "room_id": { "type": "string", "description": "the room of type channel: its messages are the channel's posts" },
            "business_id": { "type": "string" }, "name": { "type": "string" }, "description": { "type": ["string", "null"] },
            "subscriber_count": { "type": "integer" }, "created_at": { "type": "integer" } }),
            &["id", "room_id", "business_id", "name", "description", "subscriber_count", "created_at"]),
        "ChannelResponse": out(json!({ "channel": reference("Channel") }), &["channel"]),
        "ChannelList": out(json!({ "channels": { "type": "array", "items": reference("Channel") } }), &["channels"]),
        "ConnectionRequest": req(json!({ "from_business_id": { "type": "string", "description": "a business I run" } }), &["from_business_id"]),
        "Connection": out(json!({ "id": { "type": "string" }, "from": { "type": "string" }, "to": { "type": "string" },
            "status": { "type": "string", "enum": ["pending", "accepted", "declined"] },
            "created_at": { "type": "integer" }, "decided_at": { "type": "integer" } }),
            &["id", "from", "to", "status", "created_at"]),
        "ConnectionResponse": out(json!({ "connection": reference("Connection") }), &["connection"]),
        "ConnectionList": out(json!({ "connections": { "type": "array", "items": reference("Connection") } }), &["connections"]),
        "VerificationRequest": req(json!({
            "documents": { "type": "array", "minItems": 1, "maxItems": 10, "items": { "type": "string" }, "description": "ids of files I uploaded, each once" },
            "note": { "type": ["string", "null"], "maxLength": 2000 } }), &["documents"]),
        "VerificationRejection": req(json!({ "reason": { "type": "string", "minLength": 1, "maxLength": 2000, "pattern": not_blank } }), &["reason"]),
        "Verification": out(json!({ "id": { "type": "string" }, "business_id": { "type": "string" },
            "requested_by": { "type": "string" }, "documents": { "type": "array", "items": { "type": "string" } },
            "note": { "type": "string" }, "status": { "type": "string", "enum": ["pending", "approved", "rejected"] },
            "reason": { "type": "string" }, "decided_by": { "type": "string" },
            "created_at": { "type": "integer" }, "decided_at": { "type": "integer" } }),
            &["id", "business_id", "requested_by", "documents", "note", "status", "created_at"]),
        "VerificationResponse": out(json!({ "verification": reference("Verification") }), &["verification"]),
        "VerificationList": out(json!({ "verifications": { "type": "array", "items": reference("Verification") }, "next_cursor": cursor }), &["verifications", "next_cursor"]),
        "BusinessAnalytics": analytics,
        "AuditEntry": out(json!({
            "id": { "type": "string" }, "at": { "type": "integer" }, "actor_id": { "type": "string", "description": "an account, or `system`" },
            "action": { "type": "string", "description": "e.g. auth.login, auth.login_failed, session.revoked, user.suspended, user.unsuspended, user.role_changed, phone.changed, verification.approved" },
            "target_type": { "type": "string" }, "target_id": { "type": "string" },
            "target_label": { "type": ["string", "null"], "description": "the target's email or name when the entry was written" },
            "ip": { "type": ["string", "null"] }, "details": {} }),
            &["id", "at", "actor_id", "action", "target_type", "target_id", "target_label", "ip", "details"]),
        "AuditList": out(json!({ "entries": { "type": "array", "items": reference("AuditEntry") }, "next_cursor": cursor }), &["entries", "next_cursor"]),
        "Suspension": out(json!({ "user_id": { "type": "string" }, "reason": { "type": "string" },
            "since": { "type": "integer" }, "until": { "type": ["integer", "null"] }, "by": { "type": "string" } }),
            &["user_id", "reason", "since", "until", "by"]),
        "AdminUser": out(json!({ "user": reference("User"), "status": { "type": "string", "enum": ["active", "suspended"] },
            "suspension": { "oneOf": [reference("Suspension"), { "type": "null" }] },
            "last_seen_at": { "type": ["integer", "null"] }, "session_count": { "type": "integer", "minimum": 0 } }),
            &["user", "status", "suspension", "last_seen_at", "session_count"]),
        "AdminUserList": out(json!({ "users": { "type": "array", "items": reference("AdminUser") }, "next_cursor": cursor }), &["users", "next_cursor"]),
        "AdminRoom": out(json!({ "room": reference("Room"), "member_count": { "type": "integer", "minimum": 0 },
            "online_members": { "type": "integer", "minimum": 0, "description": "members with a session on some live node" },
            "messages_last_hour": { "type": "integer", "minimum": 0 },
            "last_message_at": { "type": ["integer", "null"] } }),
            &["room", "member_count", "online_members", "messages_last_hour", "last_message_at"]),
        "AdminRoomList": out(json!({ "rooms": { "type": "array", "items": reference("AdminRoom") }, "next_cursor": cursor }), &["rooms", "next_cursor"]),
        "NodeStatus": out(json!({ "node_id": { "type": "string" }, "version": { "type": "string" },
            "started_at": { "type": "integer" }, "ready": { "type": "boolean" },
            "sessions": { "type": "integer", "minimum": 0 }, "active_rooms": { "type": "integer", "minimum": 0 },
            "rss_bytes": { "type": "integer" }, "reported_at": { "type": "integer", "description": "when the node made this report (0: a live node that has not reported yet)" } }),
            &["node_id", "version", "started_at", "ready", "sessions", "active_rooms", "rss_bytes"]),
        "BackendHealth": out(json!({ "kind": { "type": "string", "enum": ["embedded", "cql", "local", "redis"] },
            "ok": { "type": "boolean" }, "latency_ms": { "type": ["number", "null"] }, "error": { "type": "string" } }),
            &["kind", "ok", "latency_ms"]),
        "ClusterStatus": out(json!({ "nodes": { "type": "array", "items": reference("NodeStatus") },
            "store": reference("BackendHealth"), "bus": reference("BackendHealth") }), &["nodes", "store", "bus"]),
        "LogLine": out(json!({ "at": { "type": "integer" }, "level": { "type": "string", "enum": ["error", "warn", "info", "debug", "trace"] },
            "target": { "type": "string" }, "message": { "type": "string" } }), &["at", "level", "target", "message"]),
        "LogLines": out(json!({ "node_id": { "type": "string" }, "lines": { "type": "array", "items": reference("LogLine") } }), &["node_id", "lines"]),
        "Export": out(json!({ "id": { "type": "string" }, "status": { "type": "string", "enum": ["pending", "ready", "failed", "expired"] },
            "created_at": { "type": "integer" }, "finished_at": { "type": "integer" }, "error": { "type": "string" },
            "expires_at": { "type": "integer", "description": "when the archive is deleted (ms); ready only" },
            "size": { "type": "integer", "minimum": 0 },
            "download_url": { "type": "string", "description": "signed link to the ZIP, valid until expires_at; ready only" } }),
            &["id", "status", "created_at"]),
        "ExportResponse": out(json!({ "export": reference("Export") }), &["export"]),
        "ExportList": out(json!({ "exports": { "type": "array", "items": reference("Export") } }), &["exports"]),
        "EraseRequest": req(json!({ "password": { "type": "string" } }), &["password"]),
        "ErasureResponse": out(json!({ "erasure": out(json!({ "user_id": { "type": "string" }, "status": { "type": "string", "enum": ["erasing"] } }), &["user_id", "status"]) }), &["erasure"]),
        "SuspendRequest": req(json!({ "reason": { "type": "string", "minLength": 1, "maxLength": crate::admin::MAX_REASON_CHARS, "pattern": not_blank },
            "until": { "type": ["integer", "null"], "minimum": 0, "maximum": rules::MAX_SEQ, "description": "when it ends by itself (ms); absent or null: until lifted; must be in the future" } }), &["reason"]),
        "ReportRequest": req(json!({ "target_type": { "type": "string", "enum": crate::api::reports::TARGET_TYPES },
            "target_id": { "type": "string", "minLength": 1, "maxLength": 128 },
            "reason": { "type": "string", "enum": crate::api::reports::REASONS },
            "comment": { "type": ["string", "null"], "maxLength": crate::api::reports::MAX_COMMENT_CHARS } }), &["target_type", "target_id", "reason"]),
        "Report": out(json!({ "id": { "type": "string" }, "status": { "type": "string", "enum": ["open", "resolved", "dismissed"] },
            "target_type": { "type": "string" }, "target_id": { "type": "string" }, "reason": { "type": "string" },
            "comment": { "type": ["string", "null"] }, "created_at": { "type": "integer" } }),
            &["id", "status", "target_type", "target_id", "reason", "comment", "created_at"]),
        "ReportResponse": out(json!({ "report": reference("Report") }), &["report"]),
        "AdminReport": out(json!({ "id": { "type": "string" }, "reporter_id": { "type": "string" },
            "status": { "type": "string", "enum": ["open", "resolved", "dismissed"] },
            "target_type": { "type": "string" }, "target_id": { "type": "string" }, "reason": { "type": "string" },
            "comment": { "type": ["string", "null"] }, "snapshot": { "description": "the target as the reporter saw it" },
            "created_at": { "type": "integer" }, "action": { "type": ["string", "null"] }, "note": { "type": ["string", "null"] },
            "resolved_by": { "type": ["string", "null"] }, "resolved_at": { "type": ["integer", "null"] },
            "open_reports_of_target": { "type": "integer", "description": "open reports of the same target (in lists)" } }),
            &["id", "reporter_id", "status", "target_type", "target_id", "reason", "snapshot", "created_at"]),
        "ReportList": out(json!({ "reports": { "type": "array", "items": reference("AdminReport") }, "next_cursor": cursor }), &["reports", "next_cursor"]),
        "AdminReportResponse": out(json!({ "report": reference("AdminReport") }), &["report"]),
        "ReportResolution": req(json!({ "action": { "type": "string", "enum": crate::api::reports::ACTIONS },
            "note": { "type": ["string", "null"], "maxLength": crate::api::reports::MAX_COMMENT_CHARS } }), &["action"]),
        "RoleRequest": req(json!({ "role": { "type": "string", "enum": ["user", "admin"] } }), &["role"]),
        "FollowList": out(json!({ "users": { "type": "array", "items": reference("PublicUser") }, "next_cursor": cursor }), &["users", "next_cursor"]),
        "ActivityList": out(json!({ "items": { "type": "array", "items": out(json!({ "id": { "type": "string" },
                "kind": { "type": "string", "enum": ["like", "comment", "reply", "follow", "mention"] },
                "actor_id": { "type": "string" }, "post_id": { "type": "string" }, "comment_id": { "type": "string" },
                "created_at": { "type": "integer" } }), &["id", "kind", "actor_id", "created_at"]) }, "next_cursor": cursor }),
            &["items", "next_cursor"]),
        "TrendList": out(json!({ "hashtags": { "type": "array", "items": out(json!({ "tag": { "type": "string" },
                "score": { "type": "number" }, "uses_today": { "type": "integer" }, "accounts_today": { "type": "integer" },
                "history": { "type": "array", "items": out(json!({ "day": { "type": "string", "format": "date" },
                    "uses": { "type": "integer" }, "accounts": { "type": "integer" } }), &["day", "uses", "accounts"]) } }),
                &["tag", "score", "uses_today", "accounts_today", "history"]) } }), &["hashtags"]),
        "ReminderRequest": req(json!({ "text": message_text, "message_id": id,
            "tz": { "type": "string", "description": "IANA time zone the text is read in; default my time_zone, else UTC" } }), &[]),
        "Reminder": out(json!({ "id": { "type": "string" }, "text": { "type": "string" }, "due_at": { "type": "integer" },
            "room_id": { "type": "string" }, "message_id": { "type": "string" }, "created_at": { "type": "integer" } }),
            &["id", "text", "due_at", "created_at"]),
        "ReminderResponse": out(json!({ "reminder": reference("Reminder") }), &["reminder"]),
        "ReminderList": out(json!({ "reminders": { "type": "array", "items": reference("Reminder") }, "next_cursor": cursor }), &["reminders", "next_cursor"]),
        "VapidKey": out(json!({ "public_key": { "type": "string", "description": "base64url of the uncompressed P-256 point" } }), &["public_key"]),
        "PushSubscribeRequest": req(json!({ "endpoint": { "type": "string", "format": "uri", "maxLength": 2048 },
            "keys": req(json!({ "p256dh": { "type": "string" }, "auth": { "type": "string" } }), &["p256dh", "auth"]),
            "encoding": { "type": ["string", "null"], "enum": ["aes128gcm", "aesgcm", null] } }), &["endpoint", "keys"]),
        "PushSubscriptionResponse": out(json!({ "subscription": out(json!({ "id": { "type": "string" },
            "endpoint": { "type": "string" }, "encoding": { "type": "string", "enum": ["aes128gcm", "aesgcm"] },
            "created_at": { "type": "integer" } }), &["id", "endpoint", "encoding", "created_at"]) }), &["subscription"]),
        "PushUnsubscribeRequest": req(json!({ "endpoint": { "type": "string" } }), &["endpoint"]),
        "IosTokenRequest": req(json!({ "token": { "type": "string", "pattern": "^[0-9a-fA-F]{64,200}$" },
            "environment": { "type": ["string", "null"], "enum": ["production", "sandbox", null] } }), &["token"]),
        "SendNotificationRequest": req(json!({ "user_id": { "type": "string" },
            "title": { "type": "string", "minLength": 1, "maxLength": 200 },
            "body": { "type": "string", "maxLength": 2000 },
            "data": { "type": ["object", "null"] } }), &["user_id", "title", "body"]),
        "SendNotificationResponse": out(json!({ "job_id": { "type": "string" } }), &["job_id"]),
        "IosTokenRef": req(json!({ "token": { "type": "string", "pattern": "^[0-9a-fA-F]{64,200}$" } }), &["token"]),
        "IosTokenResponse": out(json!({ "token": out(json!({ "token": { "type": "string" },
            "environment": { "type": "string", "enum": ["production", "sandbox"] } }), &["token", "environment"]) }), &["token"]),
        "NotificationSettingsResponse": out(json!({ "settings": out(json!({
            "enabled": { "type": "boolean" }, "sound": { "type": "string" }, "preview": { "type": "boolean" },
            "quiet_hours": { "oneOf": [ { "type": "null" }, out(json!({ "start": { "type": "string" }, "end": { "type": "string" }, "tz": { "type": "string" } }), &["start", "end", "tz"]) ] },
            "rooms": { "type": "object", "additionalProperties": out(json!({
                "level": { "type": "string", "enum": ["all", "mentions", "none"] },
                "muted_until": { "type": "integer" }, "sound": { "type": "string" } }), &["level"]) } }),
            &["enabled", "sound", "preview", "quiet_hours", "rooms"]) }), &["settings"]),
        "NotificationSettingsChange": out(json!({
            "enabled": { "type": ["boolean", "null"] },
            "sound": { "type": ["string", "null"], "minLength": 1, "description": "one of push.sounds" },
            "preview": { "type": ["boolean", "null"] },
            "quiet_hours": { "oneOf": [ { "type": "null" }, out(json!({
                "start": { "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" },
                "end": { "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" },
                "tz": { "type": "string", "minLength": 1, "description": "an IANA time zone" } }), &["start", "end", "tz"]) ] },
            "rooms": { "type": ["object", "null"], "description": "room id → settings, or null to remove a room's override (my rooms only)",
                "additionalProperties": { "oneOf": [ { "type": "null" }, out(json!({
                    "level": { "type": "string", "enum": ["all", "mentions", "none"] },
                    "muted_until": { "type": ["integer", "null"], "minimum": 0 },
                    "sound": { "type": ["string", "null"] } }), &["level"]) ] } } }), &[]),
        "RoomResponse": out(json!({ "room": reference("Room") }), &["room"]),
        "RoomList": out(json!({ "rooms": { "type": "array", "items": out(json!({ "room": reference("Room"),
            "last_message": reference("Message"), "unread_count": { "type": "integer" } }), &["room", "unread_count"]) } }), &["rooms"]),
        "CreateRoomRequest": { "oneOf": [
            req(json!({ "type": { "type": "string", "enum": ["direct"] },
                "member_ids": { "type": "array", "items": id, "minItems": 1, "maxItems": 1,
                    "description": "the other user" },
                "name": { "type": ["string", "null"], "description": "ignored for direct rooms" } }),
                &["type", "member_ids"]),
            req(json!({ "type": { "type": "string", "enum": ["group"] },
                "member_ids": { "type": "array", "items": id, "maxItems": 99,
                    "description": "the other founding members (repeats count once; with the creator at most limits.max_group_members, 100 by default: more is 400 room_full)" },
                "name": { "type": ["string", "null"], "maxLength": 100 } }),
                &["type"]) ] },
        "UpdateRoomRequest": req(json!({ "name": { "type": ["string", "null"], "maxLength": 100,
            "description": "absent: unchanged; null or blank: no name" } }), &[]),
        "AddParticipantsRequest": req(json!({
            "user_ids": { "type": "array", "items": id, "minItems": 1, "maxItems": 100,
                "description": "repeats count once" },
            "role": { "type": "string", "enum": ["member", "admin"] } }), &["user_ids"]),
        "SetRoleRequest": req(json!({ "role": { "type": "string", "enum": ["owner", "admin", "member"] } }), &["role"]),
        "ReadRequest": req(json!({ "seq": seq }), &["seq"]),
        "UnreadCounts": out(json!({ "counts": { "type": "object", "additionalProperties": { "type": "integer" } } }), &["counts"]),
        "Message": out(json!({
            "id": { "type": "string" }, "room_id": { "type": "string" }, "seq": { "type": "integer", "minimum": 1 },
            "sender_id": { "type": "string" },
            "kind": { "type": "string", "enum": ["text", "image", "video", "voice", "file", "location", "system"] },
            "content": { "type": "string" }, "nonce": { "type": "string" }, "reply_to": { "type": "string" },
            "hashtags": { "type": "array", "items": { "type": "string" } },
            "mentions": { "type": "array", "items": { "type": "string" }, "description": "ids of the members `<@id>` names" },
            "reactions": { "type": "object", "additionalProperties": { "type": "array", "items": { "type": "string" } } },
            "attachments": { "type": "array", "items": reference("File") },
            "link_previews": { "type": "array", "items": reference("LinkPreview") },
            "location": reference("Location"),
            "suggest_location": { "type": "boolean", "description": "the text asks where someone is (members got location_suggestion)" },
            "created_at": { "type": "integer" }, "edited_at": { "type": "integer" }, "deleted": { "type": "boolean" } }),
            &["id", "room_id", "seq", "sender_id", "kind", "content", "hashtags", "reactions", "attachments", "created_at", "deleted"]),
        "MessageResponse": out(json!({ "message": reference("Message") }), &["message"]),
        "MessageList": out(json!({ "messages": { "type": "array", "items": reference("Message") } }), &["messages"]),
        "MessagePage": out(json!({ "messages": { "type": "array", "items": reference("Message") }, "has_more": { "type": "boolean" } }),
            &["messages", "has_more"]),
        "File": json!({ "type": "object", "additionalProperties": false,
            "required": ["id", "filename", "content_type", "kind", "size", "sha256", "hashtags", "uploader_id", "created_at"],
            "properties": {
                "id": { "type": "string" }, "filename": { "type": "string" }, "content_type": { "type": "string" },
                "kind": { "type": "string", "enum": ["image", "video", "audio", "document", "archive"] },
                "size": { "type": "integer", "minimum": 0 }, "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                "url": { "type": "string", "description": "signed link, valid about an hour, needs no Authorization" },
                "preview_url": { "type": "string", "description": "signed link to the medium preview (small and large with ?size=)" },
                "width": { "type": "integer" }, "height": { "type": "integer" }, "duration_ms": { "type": "integer" },
                "pages": { "type": "integer" }, "title": { "type": "string" },
                "hashtags": { "type": "array", "items": { "type": "string" } },
                "room_id": { "type": "string" }, "uploader_id": { "type": "string" }, "created_at": { "type": "integer" },
                "has_preview": { "type": "boolean", "description": "preview images exist" },
                "preview_ready": { "type": "boolean", "description": "the preview job has run (metadata and previews are final)" },
                "deleted": { "type": "boolean", "description": "in a message: the file was deleted" },
                "transcript": { "type": "object", "description": "audio and video: once transcribed (POST /api/transcribe)",
                    "properties": { "text": { "type": "string" }, "language": { "type": "string" } } } } }),
        "FileResponse": out(json!({ "file": reference("File") }), &["file"]),
        "FileList": out(json!({ "files": { "type": "array", "items": reference("File") }, "next_cursor": cursor }), &["files", "next_cursor"]),
        "LinkPreview": json!({ "type": "object", "required": ["url"], "properties": {
            "url": { "type": "string" }, "title": { "type": ["string", "null"] }, "description": { "type": ["string", "null"] },
            "image_url": { "type": ["string", "null"], "description": "the page's image, stored by Dovie (never hot-linked)" },
            "site_name": { "type": ["string", "null"] },
            "video": { "type": "object", "description": "a YouTube video link, described by the YouTube Data API",
                "properties": { "provider": { "type": "string", "enum": ["youtube"] }, "id": { "type": "string" },
                    "url": { "type": "string" }, "channel": { "type": "string" },
                    "published_at": { "type": ["integer", "null"] } } } } }),
        "Binary": { "type": "string", "format": "binary" },
        "FileUpload": { "type": "string", "format": "binary" },
        "SendMessageRequest": send_request(req(json!({ "content": { "type": "string", "maxLength": 4000,
                "description": "at least one non-blank character unless files are attached" },
            "attachments": { "type": "array", "maxItems": 10, "uniqueItems": true, "items": { "type": "string" },
                "description": "ids of my uploaded files; the message's kind follows the first" },
            "nonce": { "type": ["string", "null"], "pattern": rules::NONCE_PATTERN,
                "description": "idempotency key: up to 128 printable ASCII characters; empty or null means none" },
            "reply_to": { "type": ["string", "null"], "description": "a message id of this room (else 404); empty or null means none" } }), &[]), &message_text),
        "EditMessageRequest": req(json!({ "content": message_text }), &["content"]),
        "LikeRequest": req(json!({ "emoji": { "type": ["string", "null"], "minLength": 1, "maxLength": 16, "pattern": not_blank,
            "default": "👍", "description": "absent or null: 👍" } }), &[]),
        "Location": out(json!({ "lat": lat, "lon": lon, "accuracy_m": number_or_null, "label": { "type": ["string", "null"] },
            "map_url": { "type": "string", "description": "a Google Maps link" },
            "static_map_url": { "type": "string", "description": "only when location.static_api_key is set" },
            "share_id": { "type": "string", "description": "a live share" }, "live_until": { "type": "integer" } }),
            &["lat", "lon", "accuracy_m", "label", "map_url"]),
        "LocationRequest": req(json!({ "lat": lat, "lon": lon,
            "accuracy_m": { "type": ["number", "null"], "minimum": 0, "maximum": 1_000_000 },
            "label": { "type": ["string", "null"], "maxLength": 200 },
            "live_seconds": { "type": ["integer", "null"], "minimum": 60, "maximum": 86_400,
                "description": "a live share of this many seconds (location.min_live_seconds to max_live_seconds); one per user and room: a new one ends the old" } }),
            &["lat", "lon"]),
        "LocationShare": out(json!({ "id": { "type": "string" }, "room_id": { "type": "string" }, "user_id": { "type": "string" },
            "message_id": { "type": ["string", "null"] }, "lat": lat, "lon": lon, "accuracy_m": number_or_null,
            "heading": number_or_null, "label": { "type": ["string", "null"] }, "started_at": { "type": "integer" },
            "live_until": { "type": "integer" }, "updated_at": { "type": "integer" }, "ended_at": { "type": ["integer", "null"] },
            "end_reason": { "type": ["string", "null"], "enum": ["stopped", "expired", null] } }),
            &["id", "room_id", "user_id", "message_id", "lat", "lon", "accuracy_m", "heading", "label", "started_at", "live_until", "updated_at", "ended_at", "end_reason"]),
        "LocationResponse": out(json!({ "message": reference("Message"), "share": reference("LocationShare") }), &["message"]),
        "LocationShareList": out(json!({ "shares": { "type": "array", "items": reference("LocationShare") } }), &["shares"]),
        "LocationRequestSent": out(json!({ "request_id": { "type": "string" }, "room_id": { "type": "string" },
            "user_id": { "type": "string" }, "created_at": { "type": "integer" } }), &["request_id", "room_id", "user_id", "created_at"]),
        "PositionRequest": req(json!({ "lat": lat, "lon": lon }), &["lat", "lon"]),
        "NearbyUsers": out(json!({ "users": { "type": "array", "items": out(json!({ "user": reference("PublicUser"),
            "distance_m": { "type": "integer", "multipleOf": 500, "minimum": 500, "description": "between ~1 km cells, rounded to 500 m" } }),
            &["user", "distance_m"]) } }), &["users"]),
        "CreateLocationRoomRequest": req(json!({ "name": { "type": "string", "minLength": 1, "maxLength": 100, "pattern": not_blank },
            "lat": lat, "lon": lon, "radius_m": { "type": "number", "minimum": 100, "maximum": 50_000 } }),
            &["name", "lat", "lon", "radius_m"]),
        "LocationRoomResponse": out(json!({ "room": reference("Room") }), &["room"]),
        "LocationRoomList": out(json!({ "rooms": { "type": "array", "items": out(json!({ "room": reference("DiscoveredRoom"),
            "distance_m": { "type": "integer", "minimum": 0 }, "member_count": { "type": "integer", "minimum": 1 } }),
            &["room", "distance_m", "member_count"]) } }), &["rooms"]),
        "LocationHistory": out(json!({ "items": { "type": "array", "items": out(json!({ "id": { "type": "string" },
            "kind": { "type": "string", "enum": ["message", "live", "nearby"] }, "room_id": { "type": "string" },
            "lat": lat, "lon": lon, "at": { "type": "integer" } }), &["id", "kind", "lat", "lon", "at"]) },
            "next_cursor": cursor }), &["items", "next_cursor"]),
        "Status": { "type": "object", "properties": { "status": { "type": "string" } }, "required": ["status"] },
    })
}

/// A send carries text, or files, or both: text that is not blank, or at least one attachment.
fn send_request(mut schema: Value, text: &Value) -> Value {
    schema["anyOf"] = json!([
        { "required": ["content"], "properties": { "content": text } },
        { "required": ["attachments"], "properties": { "attachments": { "minItems": 1 } } }
    ]);
    schema
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
/// Whether a request schema names required fields (in itself or in every `oneOf` branch).
fn body_has_required_fields(components: &Value, name: &str) -> bool {
    let schema = &components[name];
    let own = |s: &Value| s["required"].as_array().is_some_and(|r| !r.is_empty());
    match (schema["oneOf"].as_array(), schema["anyOf"].as_array()) {
        (Some(branches), _) => branches.iter().all(own),
        // Every way to satisfy it names a field: an empty body cannot.
        (None, Some(branches)) => own(schema) || branches.iter().all(own),
        (None, None) => own(schema),
    }
}

pub fn document() -> Value {
    let components = schemas();
    let mut api = Api::new(None);
    api::register(&mut api);
    let mut paths = Map::new();
    for doc in &api.docs {
        let mut responses = Map::new();
        let (status, schema) = doc.ok;
        let ok = match schema {
            Some("Png") => json!({ "description": "success", "content": {
                "image/png": { "schema": { "$ref": "#/components/schemas/Png" } } } }),
            Some("Binary") => json!({ "description": "success", "content": {
                "*/*": { "schema": { "$ref": "#/components/schemas/Binary" } } } }),
            Some("Svg") => json!({ "description": "success", "content": {
                "image/svg+xml": { "schema": { "$ref": "#/components/schemas/Svg" } } } }),
            Some(name) => json!({ "description": "success", "content": {
                "application/json": { "schema": { "$ref": format!("#/components/schemas/{name}") } },
                "application/msgpack": { "schema": { "$ref": format!("#/components/schemas/{name}") } } } }),
            None => json!({ "description": "success" }),
        };
        for also in doc.also_ok {
            responses.insert(also.to_string(), ok.clone());
        }
        responses.insert(status.to_string(), ok);
        let mut errors: Vec<u16> = doc.errors.to_vec();
        if doc.auth {
            // And the per-user bucket of every authenticated call.
            errors.extend([401, 429]);
        }
        // What any route of its kind may answer: a bad parameter or body (400), a body too
        // large or of another type (413, 415), the store down (503), a fault (500).
        if doc.body.is_some() || !doc.query.is_empty() || doc.path.contains('{') {
            errors.push(400);
        }
        if doc.body.is_some() {
            errors.extend([413, 415]);
        }
        errors.extend([500, 503]);
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
        if doc.body == Some("FileUpload") {
            op["requestBody"] = json!({ "required": true, "content": {
                "application/octet-stream": { "schema": { "$ref": "#/components/schemas/FileUpload" } },
                "multipart/form-data": { "schema": { "type": "object", "required": ["file"],
                    "properties": { "file": { "type": "string", "format": "binary" } } } } } });
        } else if let Some(body) = doc.body {
            let schema = json!({ "$ref": format!("#/components/schemas/{body}") });
            // A body whose every field is optional may be left out (it reads as `{}`).
            let required = body_has_required_fields(&components, body);
            op["requestBody"] = json!({ "required": required, "content": {
                "application/json": { "schema": schema }, "application/msgpack": { "schema": schema } } });
        }
        let entry = paths
            .entry(doc.path.to_string())
            .or_insert_with(|| json!({}));
        entry[doc.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Dovie", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Dovie messenger REST API. Bodies are JSON, or MessagePack with Content-Type/Accept application/msgpack. A known path asked with a method it does not serve answers 405 with Allow. Error bodies keep their code; their message is in the reader's language: the account's locale, else Accept-Language (ko, en, ja, zh-Hans, zh-Hant, es, fr, de; zh-TW → zh-Hant, zh-CN → zh-Hans), else the server's i18n.default_locale. The WebSocket gateway is not a REST operation: see x-websocket and docs/protocol.md." },
        "x-websocket": {
            "path": WS_PATH,
            "summary": "GET upgrade to WebSocket: subprotocol dovie.msgpack.v1 or dovie.json.v1 (or ?format=json|msgpack); authenticate with ?token= or a first auth frame",
            "responses": {
                "101": "switching protocols",
                "400": "not a WebSocket upgrade, an unknown format, or a request head over 8 KB (error body)",
                "503": "this node is draining; connect to another (error body)" } },
        "paths": paths,
        "components": {
            "schemas": components,
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
