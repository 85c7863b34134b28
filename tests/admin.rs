//! Administration end to end on one node: every admin route refuses non-admins; accounts found
//! by id, email, phone and name (discoverable or not), by status, page by page; a suspension
//! closes the account's sockets (`force_logout`, 4003), revokes its sessions, refuses its
//! logins and ends on time (logged by the server as lifted); the last admin is never suspended
//! or demoted; the audit log holds the admin actions and the security events with their actor,
//! target label and address, filtered and paged; reports of what the reporter can see, one open
//! per reporter and target, whose snapshots outlive the content, resolved for every reporter of
//! the target at once (told over WebSocket), with the content deleted or its author suspended;
//! rooms are monitored with their live figures, busiest first; the status shows the node, its
//! store and bus; the node's recent log lines are read by level and time.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{rest, Auth, Rest, Server, User, Ws};
use dovie_protocol::Codec;
use serde_json::{json, Value};

fn assert_error(status: u16, body: &Value, want: u16, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn login(api: &Rest, email: &str, password: &str) -> (u16, Value) {
    api.call(
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

/// The audit log's entries for a query (`?…`), as the admin reads them.
async fn audit(api: &Rest, admin: &User, query: &str) -> Vec<Value> {
    let (status, body) = api
        .get(&format!("/api/admin/audit-log{query}"), &admin.token)
        .await;
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

fn ids_of(body: &Value) -> Vec<String> {
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn every_admin_route_refuses_everyone_else() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, bob] = api.register_all(["boss", "bob"]).await;
    server.grant_admin(&admin);
    let target = format!("/api/admin/users/{}", admin.id);
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/admin/users".into(), None),
        ("GET", "/api/admin/users?q=boss".into(), None),
        ("GET", target.clone(), None),
        (
            "POST",
            format!("{target}/suspend"),
            Some(json!({"reason": "x"})),
        ),
        ("POST", format!("{target}/unsuspend"), None),
        (
            "PUT",
            format!("{target}/role"),
            Some(json!({"role": "user"})),
        ),
        ("GET", "/api/admin/audit-log".into(), None),
        ("GET", "/api/admin/rooms".into(), None),
        ("GET", "/api/admin/rooms?sort=id".into(), None),
        ("GET", "/api/admin/rooms/some-room".into(), None),
        ("GET", "/api/admin/status".into(), None),
        ("GET", "/api/admin/logs".into(), None),
        ("DELETE", target.clone(), None),
        ("GET", "/api/admin/verifications".into(), None),
        ("GET", "/api/admin/reports".into(), None),
        (
            "POST",
            "/api/admin/reports/some-report/resolve".into(),
            Some(json!({"action": "dismiss"})),
        ),
    ];
    for (method, path, body) in &calls {
        let (status, answer) = api.call(method, path, Some(&bob.token), body.clone()).await;
        assert_error(status, &answer, 403, "forbidden");
        let (status, answer) = api.call(method, path, None, body.clone()).await;
        assert_error(status, &answer, 401, "unauthorized");
    }
    // Nothing changed: the admin is still an admin and not suspended.
    let (status, body) = api.get(&target, &admin.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["status"], "active");
}

#[actix_rt::test]
async fn accounts_are_found_by_id_email_phone_and_name() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, quiet, other] = api.register_all(["boss", "quiet", "other"]).await;
    server.grant_admin(&admin);
    // Hidden from people search, not from administration.
    let (status, body) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&quiet.token),
            Some(json!({"display_name": "Zed Quietly", "discoverable": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, found) = api.get("/api/users?q=zed", &other.token).await;
    assert!(found["users"].as_array().unwrap().is_empty(), "{found}");

    for q in [
        quiet.id.clone(),
        quiet.email.to_uppercase(),
        "zed".to_string(),
        "quietl".to_string(),
    ] {
        let (status, body) = api
            .get(
                &format!("/api/admin/users?q={}", urlencode(&q)),
                &admin.token,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(ids_of(&body), [quiet.id.as_str()], "q={q}: {body}");
        let u = &body["users"][0];
        assert_eq!(
            u["user"]["email"],
            quiet.email.as_str(),
            "admins see the email"
        );
        assert_eq!(u["status"], "active");
        assert_eq!(u["session_count"], 1);
        assert!(u["suspension"].is_null());
    }
    // Every account, page by page, none twice.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => "/api/admin/users?limit=2".to_string(),
            Some(c) => format!("/api/admin/users?limit=2&cursor={}", urlencode(c)),
        };
        let (status, body) = api.get(&path, &admin.token).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids_of(&body));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    let mut all = vec![admin.id.clone(), quiet.id.clone(), other.id.clone()];
    all.sort();
    assert_eq!(seen, all);

    // Bad input: clear errors.
    let (status, body) = api.get("/api/admin/users?status=gone", &admin.token).await;
    assert_error(status, &body, 400, "validation_failed");
    let long = "x".repeat(257);
    let (status, body) = api
        .get(&format!("/api/admin/users?q={long}"), &admin.token)
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = api.get("/api/admin/users/nobody", &admin.token).await;
    assert_error(status, &body, 404, "not_found");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_rt::test]
async fn a_suspension_closes_every_session_and_ends_on_time() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, bob] = api.register_all(["boss", "bob"]).await;
    server.grant_admin(&admin);
    let mut ws = Ws::connect(&server, Codec::Json, Auth::Query(&bob.token)).await;
    let (status, second) = login(&api, &bob.email, "correct horse").await;
    assert_eq!(status, 200, "{second}");

    // Bad suspensions change nothing.
    let suspend = format!("/api/admin/users/{}/suspend", bob.id);
    for bad in [
        json!({"reason": ""}),
        json!({"reason": "   "}),
        json!({"reason": "x".repeat(501)}),
        json!({"reason": "spam", "until": 1}),
        json!({}),
    ] {
        let (status, body) = api.post(&suspend, &admin.token, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = api
        .post(
            "/api/admin/users/nobody/suspend",
            &admin.token,
            json!({"reason": "spam"}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    ws.request("ping", json!({})).await;

    let until = dovie_actors::now_ms() + 4000;
    let (status, body) = api
        .post(
            &suspend,
            &admin.token,
            json!({"reason": "x".repeat(500), "until": until}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "suspended");
    assert_eq!(body["suspension"]["until"], until);
    assert_eq!(body["suspension"]["by"], admin.id.as_str());
    assert_eq!(body["session_count"], 0, "every session revoked");

    // The socket is told and closed; tokens and refreshes stop working; logins are refused.
    let e = ws.expect("force_logout").await;
    assert!(e["d"]["reason"].is_string());
    assert_eq!(ws.expect_close().await, 4003);
    let (status, _) = api.get("/api/auth/me", &bob.token).await;
    assert_eq!(status, 401);
    let (status, body) = api
        .call(
            "POST",
            "/api/auth/refresh",
            None,
            Some(json!({"refresh_token": second["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = login(&api, &bob.email, "correct horse").await;
    assert_error(status, &body, 403, "suspended");
    let (status, body) = login(&api, &bob.email, "wrong password").await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = api
        .get("/api/admin/users?status=suspended", &admin.token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids_of(&body), [bob.id.as_str()]);
    let (_, body) = api
        .get("/api/admin/users?status=active", &admin.token)
        .await;
    assert_eq!(ids_of(&body), [admin.id.as_str()]);

    // It ends on time: the login works again, and the server logs the lift once.
    tokio::time::sleep(Duration::from_millis(
        (until - dovie_actors::now_ms()).max(0) as u64 + 200,
    ))
    .await;
    let (status, body) = login(&api, &bob.email, "correct horse").await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = api
        .get(&format!("/api/admin/users/{}", bob.id), &admin.token)
        .await;
    assert_eq!(body["status"], "active");
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let lifted = loop {
        let lifted = audit(&api, &admin, "?action=user.unsuspended").await;
        if !lifted.is_empty() || std::time::Instant::now() > deadline {
            break lifted;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(lifted.len(), 1, "lifted once: {lifted:?}");
    assert_eq!(lifted[0]["actor_id"], "system");
    assert_eq!(lifted[0]["target_id"], bob.id.as_str());

    // The log: the suspension by the admin, the refused and failed logins, the logins.
    let about_bob = audit(
        &api,
        &admin,
        &format!("?target_type=user&target_id={}", bob.id),
    )
    .await;
    // The lift and the login after the end may be logged in either order.
    let mut newest: Vec<&str> = actions(&about_bob)[..2].to_vec();
    newest.sort();
    assert_eq!(newest, ["auth.login", "user.unsuspended"]);
    assert_eq!(
        actions(&about_bob)[2..],
        [
            "auth.login_failed",
            "auth.login_failed",
            "user.suspended",
            "auth.login",
        ]
    );
    let suspended = &about_bob[4];
    assert_eq!(suspended["actor_id"], admin.id.as_str());
    assert_eq!(suspended["target_label"], bob.email.as_str());
    assert_eq!(suspended["ip"], "127.0.0.1");
    assert_eq!(suspended["details"]["sessions_revoked"], 2);
    assert_eq!(about_bob[3]["details"]["code"], "suspended");
    assert_eq!(about_bob[2]["details"]["code"], "unauthorized");
    assert_eq!(about_bob[2]["actor_id"], "anonymous");
}

#[actix_rt::test]
async fn the_last_admin_stays_and_roles_are_audited() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, bob] = api.register_all(["boss", "bob"]).await;
    server.grant_admin(&admin);
    let own = format!("/api/admin/users/{}", admin.id);
    let (status, body) = api
        .post(
            &format!("{own}/suspend"),
            &admin.token,
            json!({"reason": "me"}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = api
        .call(
            "PUT",
            &format!("{own}/role"),
            Some(&admin.token),
            Some(json!({"role": "user"})),
        )
        .await;
    assert_error(status, &body, 409, "conflict");
    let bobs = format!("/api/admin/users/{}", bob.id);
    let (status, body) = api
        .call(
            "PUT",
            &format!("{bobs}/role"),
            Some(&admin.token),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");

    // Two admins: one may step down; the other is then the last.
    let (status, body) = api
        .call(
            "PUT",
            &format!("{bobs}/role"),
            Some(&admin.token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    let (status, body) = api
        .call(
            "PUT",
            &format!("{own}/role"),
            Some(&admin.token),
            Some(json!({"role": "user"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .post(
            &format!("{bobs}/suspend"),
            &bob.token,
            json!({"reason": "x"}),
        )
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = api.get("/api/admin/users", &admin.token).await;
    assert_error(status, &body, 403, "forbidden");

    // Unsuspending lifts at once (and twice is harmless).
    let (status, body) = api
        .post(
            &format!("{own}/suspend"),
            &bob.token,
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = login(&api, &admin.email, "correct horse").await;
    assert_error(status, &body, 403, "suspended");
    for _ in 0..2 {
        let (status, body) = api
            .post(&format!("{own}/unsuspend"), &bob.token, json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "active");
    }
    let (status, body) = login(&api, &admin.email, "correct horse").await;
    assert_eq!(status, 200, "{body}");

    let by_bob = audit(&api, &bob, &format!("?actor={}", bob.id)).await;
    assert_eq!(actions(&by_bob), ["user.unsuspended", "user.suspended"]);
    let roles = audit(&api, &bob, "?action=user.role_changed").await;
    assert_eq!(roles.len(), 2);
    assert_eq!(roles[0]["details"], json!({"from": "admin", "to": "user"}));
    assert_eq!(roles[0]["target_id"], admin.id.as_str());
    assert_eq!(roles[1]["details"], json!({"from": "user", "to": "admin"}));
}

#[actix_rt::test]
async fn the_audit_log_holds_security_events_page_by_page() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, carol] = api.register_all(["boss", "carol"]).await;
    server.grant_admin(&admin);
    let (status, _) = login(&api, &carol.email, "not her password").await;
    assert_eq!(status, 401);
    let (status, _) = login(&api, "nobody@example.com", "whatever1").await;
    assert_eq!(status, 401);
    let (status, l) = login(&api, &carol.email, "correct horse").await;
    assert_eq!(status, 200);
    let t = l["access_token"].as_str().unwrap();
    let (status, _) = api.call("POST", "/api/auth/logout", Some(t), None).await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call("POST", "/api/auth/logout-all", Some(&carol.token), None)
        .await;
    assert_eq!(status, 204);

    let by_carol = audit(&api, &admin, &format!("?actor={}", carol.id)).await;
    assert_eq!(
        actions(&by_carol),
        ["session.revoked_all", "session.revoked", "auth.login"]
    );
    for e in &by_carol {
        assert_eq!(e["target_label"], carol.email.as_str());
        assert_eq!(e["ip"], "127.0.0.1");
    }
    let failed = audit(&api, &admin, "?action=auth.login_failed").await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0]["target_type"], "email");
    assert_eq!(failed[0]["target_id"], "nobody@example.com");
    assert_eq!(failed[1]["target_type"], "user");
    assert_eq!(failed[1]["target_id"], carol.id.as_str());

    // Paged, newest first, none twice.
    let whole = audit(&api, &admin, "?limit=100").await;
    assert!(whole.len() >= 5, "{whole:?}");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let q = match &cursor {
            None => "?limit=2".to_string(),
            Some(c) => format!("?limit=2&cursor={}", urlencode(c)),
        };
        let (status, body) = api
            .get(&format!("/api/admin/audit-log{q}"), &admin.token)
            .await;
        assert_eq!(status, 200, "{body}");
        seen.extend(
            body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let whole_ids: Vec<Value> = whole.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(seen, whole_ids);

    let (status, body) = api
        .get("/api/admin/audit-log?target_type=user", &admin.token)
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = api.get("/api/admin/audit-log?limit=0", &admin.token).await;
    assert_error(status, &body, 400, "validation_failed");
}

#[actix_rt::test]
async fn reports_keep_their_snapshot_and_are_resolved_for_every_reporter() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, alice, bob, carol, mallory] = api
        .register_all(["boss", "alice", "bob", "carol", "mallory"])
        .await;
    server.grant_admin(&admin);
    let room = api.group(&alice, &[&bob, &mallory]).await;
    let spam = api.send(&mallory, &room, "cheap pills here").await;
    let spam_id = spam["id"].as_str().unwrap().to_string();
    let (status, post) = api
        .post(
            "/api/posts",
            &mallory.token,
            json!({"content": "buy my stuff"}),
        )
        .await;
    assert_eq!(status, 201, "{post}");
    let post_id = post["post"]["id"].as_str().unwrap().to_string();
    let mut alice_ws = Ws::connect(&server, Codec::Json, Auth::Query(&alice.token)).await;
    let mut bob_ws = Ws::connect(&server, Codec::Json, Auth::Query(&bob.token)).await;

    let file = |who: &User, kind: &str, id: &str, reason: &str| {
        let body = json!({"target_type": kind, "target_id": id, "reason": reason, "comment": "please look"});
        let (api, token) = (&api, who.token.clone());
        async move { api.post("/api/reports", &token, body).await }
    };
    // Only what the reporter can see; clear errors for bad input.
    let (status, body) = file(&carol, "message", &spam_id, "spam").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = file(&alice, "user", &alice.id, "spam").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = file(&alice, "planet", &spam_id, "spam").await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = file(&alice, "message", &spam_id, "boring").await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = file(&alice, "room", "no-such-room", "spam").await;
    assert_eq!(status, 404, "{body}");

    let (status, first) = file(&alice, "message", &spam_id, "spam").await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["report"]["status"], "open");
    let report_id = first["report"]["id"].as_str().unwrap().to_string();
    let (status, again) = file(&alice, "message", &spam_id, "abuse").await;
    assert_eq!(
        status, 200,
        "one open report per reporter and target: {again}"
    );
    assert_eq!(again["report"]["id"], report_id.as_str());
    let (status, _) = file(&bob, "message", &spam_id, "abuse").await;
    assert_eq!(status, 201);
    let (status, on_post) = file(&carol, "post", &post_id, "spam").await;
    assert_eq!(status, 201, "{on_post}");
    let (status, _) = file(&carol, "user", &mallory.id, "harassment").await;
    assert_eq!(status, 201);

    let (status, list) = api.get("/api/admin/reports", &admin.token).await;
    assert_eq!(status, 200, "{list}");
    let reports = list["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 4, "{list}");
    assert_eq!(reports[0]["id"], report_id.as_str(), "oldest first");
    assert_eq!(reports[0]["open_reports_of_target"], 2, "grouped by target");
    assert_eq!(reports[0]["snapshot"]["content"], "cheap pills here");
    assert_eq!(reports[0]["reporter_id"], alice.id.as_str());
    assert_eq!(reports[2]["open_reports_of_target"], 1);

    // Deleting the content resolves both reports of the message; both reporters are told.
    let resolve = format!("/api/admin/reports/{report_id}/resolve");
    let (status, body) = api
        .post(&resolve, &admin.token, json!({"action": "ban"}))
        .await;
    assert_error(status, &body, 400, "validation_failed");
    let (status, body) = api
        .post(
            &resolve,
            &admin.token,
            json!({"action": "delete_content", "note": "spam removed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["report"]["status"], "resolved");
    assert_eq!(body["report"]["action"], "delete_content");
    assert_eq!(body["report"]["resolved_by"], admin.id.as_str());
    for ws in [&mut alice_ws, &mut bob_ws] {
        let deleted = ws.expect("message_deleted").await;
        assert_eq!(deleted["d"]["message_id"], spam_id.as_str());
        let told = ws.expect("report_resolved").await;
        assert_eq!(told["d"]["report"]["status"], "resolved", "{told}");
        assert_eq!(told["d"]["action"], "delete_content");
    }
    let history = api.history(&alice, &room, "").await;
    let gone = history
        .iter()
        .find(|m| m["id"] == spam_id.as_str())
        .unwrap();
    assert_eq!(gone["deleted"], true, "{gone}");
    assert_ne!(gone["content"], "cheap pills here");
    let (status, body) = api
        .post(&resolve, &admin.token, json!({"action": "dismiss"}))
        .await;
    assert_error(status, &body, 409, "conflict");
    // The snapshot outlives the content.
    let (_, resolved) = api
        .get("/api/admin/reports?status=resolved", &admin.token)
        .await;
    let resolved = resolved["reports"].as_array().unwrap().clone();
    assert_eq!(resolved.len(), 2);
    assert!(resolved
        .iter()
        .all(|r| r["snapshot"]["content"] == "cheap pills here"));

    // Suspending the author of a post: the account is suspended, the reporter told.
    let mut carol_ws = Ws::connect(&server, Codec::Json, Auth::Query(&carol.token)).await;
    let post_report = on_post["report"]["id"].as_str().unwrap();
    let (status, body) = api
        .post(
            &format!("/api/admin/reports/{post_report}/resolve"),
            &admin.token,
            json!({"action": "suspend_user"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let told = carol_ws.expect("report_resolved").await;
    assert_eq!(told["d"]["report"]["target_id"], post_id.as_str());
    let (status, body) = login(&api, &mallory.email, "correct horse").await;
    assert_error(status, &body, 403, "suspended");
    let (_, open) = api.get("/api/admin/reports", &admin.token).await;
    assert_eq!(open["reports"].as_array().unwrap().len(), 1, "{open}");
    // Dismissing the last one.
    let last = open["reports"][0]["id"].as_str().unwrap();
    let (status, body) = api
        .post(
            &format!("/api/admin/reports/{last}/resolve"),
            &admin.token,
            json!({"action": "dismiss"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["report"]["status"], "dismissed");

    let audited = audit(&api, &admin, "?action=report.resolved").await;
    assert_eq!(audited.len(), 3);
    assert_eq!(audited[2]["target_id"], spam_id.as_str());
    assert_eq!(audited[2]["details"]["action"], "delete_content");
    assert_eq!(
        audited[2]["details"]["reports"].as_array().unwrap().len(),
        2
    );
    assert_eq!(audited[1]["details"]["author_id"], mallory.id.as_str());
    let suspended = audit(
        &api,
        &admin,
        &format!("?target_type=user&target_id={}", mallory.id),
    )
    .await;
    assert!(
        actions(&suspended).contains(&"user.suspended"),
        "{suspended:?}"
    );
}

fn room_ids(body: &Value) -> Vec<String> {
    body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn rooms_are_monitored_busiest_first() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, alice, bob, carol] = api.register_all(["boss", "alice", "bob", "carol"]).await;
    server.grant_admin(&admin);
    let busy = api.group(&alice, &[&bob, &carol]).await;
    let quiet = api.group(&bob, &[&carol]).await;
    let idle = api.group(&carol, &[&alice]).await;
    // Alice is online; Bob and Carol are not.
    let _alice_ws = Ws::connect(&server, Codec::Json, Auth::Query(&alice.token)).await;
    let mut last = Value::Null;
    for i in 0..3 {
        last = api.send(&alice, &busy, &format!("busy {i}")).await;
    }
    api.send(&bob, &quiet, "quiet").await;

    let (status, body) = api
        .get("/api/admin/rooms?sort=activity", &admin.token)
        .await;
    assert_eq!(status, 200, "{body}");
    // Only rooms with a message in the last hour, the busiest first.
    assert_eq!(room_ids(&body), [busy.clone(), quiet.clone()], "{body}");
    let first = &body["rooms"][0];
    assert_eq!(first["member_count"], 3, "{first}");
    assert_eq!(first["online_members"], 1, "{first}");
    assert_eq!(first["messages_last_hour"], 3, "{first}");
    assert_eq!(first["last_message_at"], last["created_at"], "{first}");
    assert_eq!(body["rooms"][1]["messages_last_hour"], 1);
    assert_eq!(body["next_cursor"], Value::Null);

    // Page by page: the same order, nothing twice.
    let (_, page1) = api.get("/api/admin/rooms?limit=1", &admin.token).await;
    assert_eq!(room_ids(&page1), [busy.as_str()]);
    let cursor = page1["next_cursor"].as_str().unwrap().to_string();
    let (_, page2) = api
        .get(
            &format!("/api/admin/rooms?limit=1&cursor={cursor}"),
            &admin.token,
        )
        .await;
    assert_eq!(room_ids(&page2), [quiet.as_str()], "{page2}");
    assert_eq!(page2["next_cursor"], Value::Null);

    // Every room by id, the idle one too (its last message read from the store: none).
    let mut all = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (status, page) = api
            .get(
                &format!("/api/admin/rooms?sort=id&limit=2{cursor}"),
                &admin.token,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        all.extend(room_ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut want = vec![busy.clone(), quiet.clone(), idle.clone()];
    want.sort();
    assert_eq!(all, want);

    let (status, one) = api
        .get(&format!("/api/admin/rooms/{idle}"), &admin.token)
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["room"]["id"], idle.as_str());
    assert_eq!(one["member_count"], 2);
    assert_eq!(one["online_members"], 1, "alice is a member and online");
    assert_eq!(one["messages_last_hour"], 0);
    assert_eq!(one["last_message_at"], Value::Null);
    let (status, one) = api
        .get(&format!("/api/admin/rooms/{busy}"), &admin.token)
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["messages_last_hour"], 3);

    for (path, want, code) in [
        ("/api/admin/rooms/no-such-room", 404, "not_found"),
        ("/api/admin/rooms?sort=loudest", 400, "validation_failed"),
        ("/api/admin/rooms?cursor=garbage", 400, "validation_failed"),
        ("/api/admin/rooms?limit=0", 400, "validation_failed"),
    ] {
        let (status, body) = api.get(path, &admin.token).await;
        assert_error(status, &body, want, code);
    }
}

#[actix_rt::test]
async fn the_status_shows_the_node_and_logs_are_read_by_level_and_time() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, alice] = api.register_all(["boss", "alice"]).await;
    server.grant_admin(&admin);
    let _ws = Ws::connect(&server, Codec::Json, Auth::Query(&alice.token)).await;
    let (status, body) = api.get("/api/admin/status", &admin.token).await;
    assert_eq!(status, 200, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{body}");
    let node = &nodes[0];
    assert_eq!(node["ready"], true, "{body}");
    assert_eq!(node["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(node["sessions"], 1, "{body}");
    assert!(node["rss_bytes"].as_i64().unwrap() > 1_000_000, "{body}");
    let started = node["started_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(started <= now && started > now - 600_000, "{body}");
    assert_eq!(body["store"]["kind"], "embedded");
    assert_eq!(body["store"]["ok"], true);
    assert!(body["store"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(body["bus"]["kind"], "local");
    assert_eq!(body["bus"]["ok"], true);

    // The node logged where it listens at start (info).
    let (status, body) = api.get("/api/admin/logs", &admin.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["node_id"], node["node_id"]);
    let lines = body["lines"].as_array().unwrap();
    let listening = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().starts_with("listening on"))
        .unwrap_or_else(|| panic!("no start line in {body}"));
    assert_eq!(listening["level"], "info");
    let at = listening["at"].as_i64().unwrap();
    // Errors only: not the start line.
    let (_, errors) = api.get("/api/admin/logs?level=error", &admin.token).await;
    assert!(errors["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["level"] == "error"));
    // Since the start line: not it.
    let (_, later) = api
        .get(&format!("/api/admin/logs?since={at}"), &admin.token)
        .await;
    assert!(later["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["at"].as_i64().unwrap() > at));
    let (_, one) = api.get("/api/admin/logs?limit=1", &admin.token).await;
    assert_eq!(one["lines"].as_array().unwrap().len(), 1);
    for path in ["/api/admin/logs?level=loud", "/api/admin/logs?limit=0"] {
        let (status, body) = api.get(path, &admin.token).await;
        assert_error(status, &body, 400, "validation_failed");
    }
}

#[actix_rt::test]
async fn two_admins_suspending_each_other_at_once_leave_one_standing() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["ada", "bea"]).await;
    server.grant_admin(&a);
    server.grant_admin(&b);
    for round in 0..5 {
        // Fresh tokens each round (a suspension revokes the suspended admin's).
        let login = |u: &User| {
            let api = rest(&server);
            let email = u.email.clone();
            async move {
                let (s, body) = login(&api, &email, "correct horse").await;
                assert_eq!(s, 200, "{body}");
                body["access_token"].as_str().unwrap().to_string()
            }
        };
        let (ta, tb) = (login(&a).await, login(&b).await);
        let suspend = |token: String, target: String| {
            let api = rest(&server);
            async move {
                api.post(
                    &format!("/api/admin/users/{target}/suspend"),
                    &token,
                    json!({"reason": "race"}),
                )
                .await
                .0
            }
        };
        let (sa, sb) = futures_util::join!(
            suspend(ta.clone(), b.id.clone()),
            suspend(tb.clone(), a.id.clone())
        );
        // Never both: one admin is always left in good standing.
        let status_of = |id: String, token: String| {
            let api = rest(&server);
            async move {
                let (s, body) = api.get(&format!("/api/admin/users/{id}"), &token).await;
                (s, body["status"].as_str().unwrap_or("").to_string())
            }
        };
        let a_view = status_of(a.id.clone(), ta.clone()).await;
        let b_view = status_of(b.id.clone(), tb.clone()).await;
        let a_ok = a_view.0 == 200;
        let b_ok = b_view.0 == 200;
        assert!(a_ok || b_ok, "round {round}: {sa} {sb}: nobody can act");
        // Whoever stands lifts the other, for the next round.
        let (token, other) = if a_ok { (&ta, &b) } else { (&tb, &a) };
        let (s, body) = api
            .post(
                &format!("/api/admin/users/{}/unsuspend", other.id),
                token,
                json!({}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
    }
}
