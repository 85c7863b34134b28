//! What administration keeps: the audit log (appended whole, listed newest first by time,
//! actor, action and target, paged by a cursor, across periods), suspensions (put, replaced,
//! listed, lifted once), every account found by id, email, phone or name — discoverable or
//! not — the admins, counted and listed, reports (one open per reporter and target, resolved once), and
//! every room listed page by page.

use dovie::store::{AuditFilter, AuditRecord, ProfilePatch, ReportRecord, Suspension};

use super::*;

fn entry(id: &str, at: i64, actor: &str, action: &str, target: &str) -> AuditRecord {
    AuditRecord {
        id: id.into(),
        at,
        actor_id: actor.into(),
        action: action.into(),
        target_type: "user".into(),
        target_id: target.into(),
        target_label: Some(format!("{target}@example.com")),
        ip: Some("192.0.2.7".into()),
        details: serde_json::json!({ "reason": "spam", "n": 1 }),
    }
}

fn ids(list: &[AuditRecord]) -> Vec<&str> {
    list.iter().map(|e| e.id.as_str()).collect()
}

pub async fn audit_log(s: SharedStore) {
    const DAY: i64 = 86_400_000;
    let now = dovie_actors::now_ms();
    // Entries across several 30-day periods (one a year old), two at the same time.
    let all = [
        entry("e1", now - 400 * DAY, "admin1", "user.suspended", "u1"),
        entry("e2", now - 45 * DAY, "u2", "auth.login", "u2"),
        entry("e3", now - 3 * DAY, "admin1", "user.role_changed", "u3"),
        entry("e4", now - 1000, "admin2", "user.suspended", "u3"),
        entry("e5", now - 1000, "admin1", "user.suspended", "u1"),
        entry("e6", now, "system", "user.unsuspended", "u1"),
    ];
    for e in &all {
        s.append_audit(e).await.unwrap();
    }
    let list = |f: AuditFilter, limit| {
        let s = s.clone();
        async move { s.audit_entries(&f, limit).await.unwrap() }
    };
    let everything = list(AuditFilter::default(), 100).await;
    assert_eq!(ids(&everything), ["e6", "e5", "e4", "e3", "e2", "e1"]);
    assert_eq!(everything[5], all[0], "kept whole");

    // Paged: each page strictly after the last entry of the one before, none twice.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = list(
            AuditFilter {
                before: before.clone(),
                ..AuditFilter::default()
            },
            2,
        )
        .await;
        if page.is_empty() {
            break;
        }
        before = page.last().map(|e| (e.at, e.id.clone()));
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(seen, ["e6", "e5", "e4", "e3", "e2", "e1"]);

    let by_actor = list(
        AuditFilter {
            actor_id: Some("admin1".into()),
            ..AuditFilter::default()
        },
        100,
    )
    .await;
    assert_eq!(ids(&by_actor), ["e5", "e3", "e1"]);
    let by_action = list(
        AuditFilter {
            action: Some("user.suspended".into()),
            ..AuditFilter::default()
        },
        100,
    )
    .await;
    assert_eq!(ids(&by_action), ["e5", "e4", "e1"]);
    let by_both = list(
        AuditFilter {
            actor_id: Some("admin1".into()),
            action: Some("user.suspended".into()),
            ..AuditFilter::default()
        },
        1,
    )
    .await;
    assert_eq!(ids(&by_both), ["e5"]);
    let by_target = list(
        AuditFilter {
            target: Some(("user".into(), "u1".into())),
            ..AuditFilter::default()
        },
        100,
    )
    .await;
    assert_eq!(ids(&by_target), ["e6", "e5", "e1"]);
    let after_e5 = list(
        AuditFilter {
            action: Some("user.suspended".into()),
            before: Some((now - 1000, "e5".into())),
            ..AuditFilter::default()
        },
        100,
    )
    .await;
    assert_eq!(ids(&after_e5), ["e4", "e1"], "same time: by id");
    assert!(list(
        AuditFilter {
            actor_id: Some("nobody".into()),
            ..AuditFilter::default()
        },
        10
    )
    .await
    .is_empty());

    // Addresses age out: those of entries in the window go from every listing, the rest stay.
    assert_eq!(
        s.forget_audit_ips(now - 500 * DAY, now - 10 * DAY)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.forget_audit_ips(now - 500 * DAY, now - 10 * DAY)
            .await
            .unwrap(),
        0,
        "once"
    );
    for filter in [
        AuditFilter::default(),
        AuditFilter {
            actor_id: Some("admin1".into()),
            ..AuditFilter::default()
        },
        AuditFilter {
            action: Some("user.suspended".into()),
            ..AuditFilter::default()
        },
        AuditFilter {
            target: Some(("user".into(), "u1".into())),
            ..AuditFilter::default()
        },
    ] {
        for e in list(filter, 100).await {
            let old = e.at < now - 10 * DAY;
            assert_eq!(e.ip.is_none(), old, "{e:?}");
            let written = all.iter().find(|w| w.id == e.id).unwrap();
            assert_eq!(
                AuditRecord {
                    ip: written.ip.clone(),
                    ..e
                },
                *written,
                "only the address changed"
            );
        }
    }
}

pub async fn accounts_and_suspensions(s: SharedStore) {
    for id in ["u1", "u2", "u3"] {
        s.create_user(user(id)).await.unwrap();
    }
    s.set_phone("u2", "+821012345678").await.unwrap();
    s.update_profile(
        "u3",
        &ProfilePatch {
            display_name: Some("Hidden Person".into()),
            discoverable: Some(false),
            ..ProfilePatch::default()
        },
    )
    .await
    .unwrap();
    let found = |q: Option<&'static str>, after: Option<&'static str>, limit| {
        let s = s.clone();
        async move {
            let mut ids: Vec<String> = s
                .admin_users(q, after, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(found(None, None, 10).await, ["u1", "u2", "u3"]);
    // Paged by the store's cursor (the last id): every account once.
    let first = s.admin_users(None, None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = s.admin_users(None, Some(&first[1].id), 2).await.unwrap();
    let mut all: Vec<String> = first.iter().chain(&rest).map(|u| u.id.clone()).collect();
    all.sort();
    assert_eq!(all, ["u1", "u2", "u3"]);
    assert_eq!(found(Some("u1"), None, 10).await, ["u1"], "by id");
    assert_eq!(
        found(Some("U1@Example.com"), None, 10).await,
        ["u1"],
        "by email"
    );
    assert_eq!(
        found(Some("+821012345678"), None, 10).await,
        ["u2"],
        "by phone"
    );
    assert_eq!(
        found(Some("hid"), None, 10).await,
        ["u3"],
        "not discoverable: found"
    );
    assert_eq!(found(Some("pers"), None, 10).await, ["u3"], "by a word");
    assert!(found(Some("nobody"), None, 10).await.is_empty());
    // People search still keeps to discoverable accounts.
    assert!(s.search_users("hid", None, 10).await.unwrap().is_empty());
    assert_eq!(s.search_users("u", None, 10).await.unwrap().len(), 2);
    // A rename moves the account in the index.
    s.update_profile(
        "u3",
        &ProfilePatch {
            display_name: Some("Renamed".into()),
            ..ProfilePatch::default()
        },
    )
    .await
    .unwrap();
    assert!(found(Some("hid"), None, 10).await.is_empty());
    assert_eq!(found(Some("ren"), None, 10).await, ["u3"]);

    // Admins are counted.
    assert_eq!(s.admin_count().await.unwrap(), 0);
    s.set_user_role("u1", UserRole::Admin).await.unwrap();
    s.set_user_role("u2", UserRole::Admin).await.unwrap();
    assert_eq!(s.admin_count().await.unwrap(), 2);
    assert_eq!(s.admin_ids().await.unwrap(), ["u1", "u2"]);
    s.set_user_role("u2", UserRole::User).await.unwrap();
    assert_eq!(s.admin_count().await.unwrap(), 1);
    assert_eq!(s.admin_ids().await.unwrap(), ["u1"]);

    // Suspensions.
    let sus = |user: &str, until: Option<i64>| Suspension {
        user_id: user.into(),
        reason: "spam".into(),
        since: 100,
        until,
        by: "u1".into(),
    };
    assert_eq!(s.suspension("u2").await.unwrap(), None);
    s.put_suspension(&sus("u2", None)).await.unwrap();
    s.put_suspension(&sus("u3", Some(500))).await.unwrap();
    assert_eq!(s.suspension("u2").await.unwrap(), Some(sus("u2", None)));
    let replaced = Suspension {
        reason: "abuse".into(),
        until: Some(900),
        ..sus("u2", None)
    };
    s.put_suspension(&replaced).await.unwrap();
    assert_eq!(s.suspension("u2").await.unwrap(), Some(replaced.clone()));
    assert!(replaced.active(899) && !replaced.active(900));
    assert_eq!(
        s.suspensions(None, 10).await.unwrap(),
        [replaced, sus("u3", Some(500))]
    );
    assert_eq!(s.suspensions(Some("u2"), 10).await.unwrap().len(), 1);
    assert_eq!(s.suspensions(None, 1).await.unwrap().len(), 1);
    let missing = s.put_suspension(&sus("ghost", None)).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
    assert!(s.lift_suspension("u2").await.unwrap());
    assert!(!s.lift_suspension("u2").await.unwrap(), "lifted once");
    assert_eq!(s.suspension("u2").await.unwrap(), None);
    assert_eq!(s.suspensions(None, 10).await.unwrap().len(), 1);
}

fn report(id: &str, reporter: &str, target: &str, at: i64) -> ReportRecord {
    ReportRecord {
        id: id.into(),
        reporter_id: reporter.into(),
        target_type: "message".into(),
        target_id: target.into(),
        reason: "spam".into(),
        comment: Some("buy now".into()),
        snapshot: serde_json::json!({ "content": "cheap pills", "sender_id": "s1" }),
        status: "open".into(),
        created_at: at,
        action: None,
        note: None,
        resolved_by: None,
        resolved_at: None,
    }
}

pub async fn reports(s: SharedStore) {
    let r1 = report("r1", "alice", "m1", 10);
    assert_eq!(s.file_report(&r1).await.unwrap(), (r1.clone(), true));
    // One open report per reporter and target: the repeat answers the open one.
    let again = report("r1b", "alice", "m1", 11);
    assert_eq!(s.file_report(&again).await.unwrap(), (r1.clone(), false));
    assert_eq!(
        s.report("r1b").await.unwrap(),
        None,
        "the repeat left nothing"
    );
    let r2 = report("r2", "bob", "m1", 20);
    let r3 = report("r3", "bob", "m2", 30);
    for r in [&r2, &r3] {
        assert!(s.file_report(r).await.unwrap().1);
    }
    assert_eq!(s.report("r1").await.unwrap(), Some(r1.clone()));
    assert_eq!(
        s.reports("open", None, 10).await.unwrap(),
        [r1.clone(), r2.clone(), r3.clone()]
    );
    assert_eq!(
        s.reports("open", Some((10, "r1".into())), 1).await.unwrap(),
        std::slice::from_ref(&r2)
    );
    assert_eq!(
        s.open_reports_of("message", "m1").await.unwrap(),
        [r1.clone(), r2.clone()]
    );

    // Resolved once; then listed under its new status, and the reporter may report again.
    let done = ReportRecord {
        status: "resolved".into(),
        action: Some("delete_content".into()),
        note: Some("gone".into()),
        resolved_by: Some("admin".into()),
        resolved_at: Some(40),
        ..r1.clone()
    };
    assert!(s.resolve_report(&done).await.unwrap());
    assert!(!s.resolve_report(&done).await.unwrap(), "once");
    assert_eq!(s.report("r1").await.unwrap(), Some(done.clone()));
    assert_eq!(
        s.reports("open", None, 10).await.unwrap(),
        [r2.clone(), r3.clone()]
    );
    assert_eq!(s.reports("resolved", None, 10).await.unwrap(), [done]);
    assert_eq!(s.open_reports_of("message", "m1").await.unwrap(), [r2]);
    let later = report("r4", "alice", "m1", 50);
    assert_eq!(s.file_report(&later).await.unwrap(), (later, true));
    assert!(s.reports("dismissed", None, 10).await.unwrap().is_empty());
}

pub async fn every_room_page_by_page(s: SharedStore) {
    assert!(s.all_room_ids(None, 10).await.unwrap().is_empty());
    let mut made: Vec<String> = Vec::new();
    for i in 0..5 {
        let id = format!("room-{i}");
        s.create_room(room(&id, RoomType::Group, &["u1", "u2"]))
            .await
            .unwrap();
        made.push(id);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let page = s.all_room_ids(after.as_deref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().cloned());
        if page.len() < 2 {
            break;
        }
        after = page.last().cloned();
    }
    seen.sort();
    assert_eq!(seen, made, "every room once");
    // A room added after the first page is met later or not at all, never twice.
    let first = s.all_room_ids(None, 2).await.unwrap();
    s.create_room(room("room-late", RoomType::Group, &["u1"]))
        .await
        .unwrap();
    let rest = s
        .all_room_ids(first.last().map(String::as_str), 100)
        .await
        .unwrap();
    assert!(first.iter().all(|id| !rest.contains(id)));
    assert_eq!(
        first.len() + rest.len(),
        6 - usize::from(!rest.contains(&"room-late".to_string()))
    );
}
