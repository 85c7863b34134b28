//! What privacy keeps: export jobs (one running per user; a stuck one failed and replaced; a
//! finished one no longer running; ready ones found once expired), and what each user wrote,
//! found for their export and erasure — every room they sent in (left ones too), their likes
//! and their comments, page by page; and an account forgotten whole (its lookups freed, its
//! sessions, identities, consents, settings, exports, suspension and indexes gone, the others'
//! untouched).

use dovie::store::{
    AuthSession, CommentRecord, ConsentRecord, ExportBegin, ExportRecord, ExportStatus, Suspension,
};

use super::*;

fn job(id: &str, user: &str, at: i64) -> ExportRecord {
    ExportRecord::pending(id.into(), user.into(), at)
}

pub async fn exports(s: SharedStore) {
    let now = dovie_actors::now_ms();
    let first = job("x1", "u1", now);
    assert_eq!(
        s.begin_export(&first, now - 60_000).await.unwrap(),
        ExportBegin::Started
    );
    // One at a time: a second ask answers the running one.
    match s
        .begin_export(&job("x2", "u1", now + 1), now - 60_000)
        .await
        .unwrap()
    {
        ExportBegin::Running(r) => assert_eq!(r.id, "x1"),
        other => panic!("{other:?}"),
    }
    assert!(
        s.export("x2").await.unwrap().is_none(),
        "nothing of x2 written"
    );
    // Another user's export is independent.
    assert_eq!(
        s.begin_export(&job("y1", "u2", now), now - 60_000)
            .await
            .unwrap(),
        ExportBegin::Started
    );
    // A beat keeps it alive; a beat for a job that is not running answers false.
    assert!(s.beat_export("u1", "x1", now + 10).await.unwrap());
    assert!(!s.beat_export("u1", "x2", now + 10).await.unwrap());
    assert_eq!(
        s.export("x1").await.unwrap().unwrap().heartbeat_at,
        now + 10
    );
    // Silent past the staleness bound: failed as stuck and replaced.
    let third = job("x3", "u1", now + 100);
    assert_eq!(
        s.begin_export(&third, now + 50).await.unwrap(),
        ExportBegin::Started
    );
    let stuck = s.export("x1").await.unwrap().unwrap();
    assert_eq!(stuck.status, ExportStatus::Failed);
    assert!(stuck.error.unwrap().contains("stuck"));
    assert!(
        !s.beat_export("u1", "x1", now + 200).await.unwrap(),
        "x1 lost its claim"
    );
    // Finished: ready with its archive, no longer running; a new one can begin.
    let ready = ExportRecord {
        status: ExportStatus::Ready,
        finished_at: Some(now + 300),
        expires_at: Some(now + 1_000),
        object: Some("objects/ab/cd".into()),
        key_id: Some("k1".into()),
        wrapped_key: Some("wrapped".into()),
        chunk_bytes: 65_536,
        size: 12_345,
        sha256: Some("00ff".into()),
        ..third.clone()
    };
    s.end_export(&ready).await.unwrap();
    assert_eq!(s.export("x3").await.unwrap().unwrap(), ready);
    let list: Vec<String> = s
        .exports_of("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(list, ["x3", "x1"], "newest first");
    assert_eq!(
        s.begin_export(&job("x4", "u1", now + 400), now)
            .await
            .unwrap(),
        ExportBegin::Started
    );
    // Expiry: found only once due; expired ones are not found again.
    assert!(s.expired_exports(now + 999, 10).await.unwrap().is_empty());
    let due = s.expired_exports(now + 1_000, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["x3"]
    );
    s.end_export(&ExportRecord {
        status: ExportStatus::Expired,
        object: None,
        ..ready
    })
    .await
    .unwrap();
    assert!(s.expired_exports(now + 2_000, 10).await.unwrap().is_empty());
    assert_eq!(
        s.export("x3").await.unwrap().unwrap().status,
        ExportStatus::Expired
    );
}

pub async fn what_a_user_wrote(s: SharedStore) {
    seed(&s).await;
    s.create_room(room("h", RoomType::Group, &["u2", "u1"]))
        .await
        .unwrap();
    append_ok(
        &s,
        "g",
        1,
        vec![
            draft("m1", "u1", "one", None),
            draft("m2", "u2", "two", None),
        ],
    )
    .await;
    append_ok(&s, "h", 1, vec![draft("m3", "u1", "three", None)]).await;
    append_ok(&s, "g", 3, vec![draft("m4", "u1", "four", None)]).await;
    // Leaving a room keeps it among the rooms sent in.
    s.remove_member("h", "u1").await.unwrap();
    assert_eq!(s.rooms_sent_in("u1").await.unwrap(), ["g", "h"]);
    assert_eq!(s.rooms_sent_in("u2").await.unwrap(), ["g"]);
    assert!(s.rooms_sent_in("u3").await.unwrap().is_empty());

    for (i, id) in ["p1", "p2", "p3"].iter().enumerate() {
        s.create_post(&crate::social::post(id, "u2", 100 + i as i64))
            .await
            .unwrap();
        assert!(s.like_post(id, "u1", 200 + i as i64).await.unwrap());
    }
    assert!(s.unlike_post("p2", "u1").await.unwrap());
    let first = s.likes_by("u1", None, 1).await.unwrap();
    assert_eq!(first, [("p1".to_string(), 200)]);
    let rest = s.likes_by("u1", Some("p1"), 10).await.unwrap();
    assert_eq!(rest, [("p3".to_string(), 202)]);
    assert!(s.likes_by("u2", None, 10).await.unwrap().is_empty());

    let comment = |id: &str, author: &str, reply_to: Option<&str>| CommentRecord {
        id: id.into(),
        post_id: "p1".into(),
        author_id: author.into(),
        content: format!("comment {id}"),
        reply_to: reply_to.map(str::to_string),
        created_at: 300,
    };
    for c in [
        comment("c1", "u1", None),
        comment("c2", "u2", Some("c1")),
        comment("c3", "u1", None),
        comment("c4", "u1", None),
    ] {
        s.add_comment(&c).await.unwrap();
    }
    // Deleting c3 leaves c1 and c4, found page by page.
    s.delete_comment(&comment("c3", "u1", None)).await.unwrap();
    let page = s.comments_by("u1", None, 1).await.unwrap();
    assert_eq!(page, [comment("c1", "u1", None)]);
    let page = s.comments_by("u1", Some("c1"), 10).await.unwrap();
    assert_eq!(page, [comment("c4", "u1", None)]);
    assert_eq!(
        s.comments_by("u2", None, 10).await.unwrap(),
        [comment("c2", "u2", Some("c1"))]
    );
}

pub async fn forget_account(s: SharedStore) {
    seed(&s).await; // u1, u2, u3; room g of u1 and u2
    let now = dovie_actors::now_ms();
    let u1 = s.set_phone("u1", "+821012345678").await.unwrap();
    s.link_identity("google", "sub-u1", "u1", now)
        .await
        .unwrap();
    s.link_identity("google", "sub-u2", "u2", now)
        .await
        .unwrap();
    let session = |id: &str, user: &str| AuthSession {
        id: id.into(),
        user_id: user.into(),
        created_at: now,
        expires_at: now + 100_000,
        revoked_at: None,
        device: None,
        user_agent: None,
        ip: Some("192.0.2.1".into()),
        last_seen_at: now,
    };
    s.create_session(session("s1", "u1"), "h1").await.unwrap();
    s.create_session(session("s2", "u2"), "h2").await.unwrap();
    let consent = ConsentRecord {
        kind: "ai".into(),
        granted: true,
        at: now,
    };
    s.add_consents("u1", std::slice::from_ref(&consent))
        .await
        .unwrap();
    s.add_consents("u2", std::slice::from_ref(&consent))
        .await
        .unwrap();
    assert!(s
        .put_notification_settings("u1", "{}", 1, None)
        .await
        .unwrap());
    s.begin_export(&job("e1", "u1", now), now - 1)
        .await
        .unwrap();
    append_ok(
        &s,
        "g",
        1,
        vec![
            draft("m1", "u1", "one", None),
            draft("m2", "u2", "two", None),
        ],
    )
    .await;
    s.create_post(&crate::social::post("p1", "u2", 1))
        .await
        .unwrap();
    s.like_post("p1", "u1", 2).await.unwrap();
    s.put_suspension(&Suspension {
        user_id: "u1".into(),
        reason: "erasing".into(),
        since: now,
        until: None,
        by: "u1".into(),
    })
    .await
    .unwrap();

    s.forget_account(&u1).await.unwrap();
    // Forgetting twice is harmless (an erasure taken up again).
    s.forget_account(&u1).await.unwrap();

    assert!(s.user_by_id("u1").await.unwrap().is_none());
    assert!(s.user_by_email("u1@example.com").await.unwrap().is_none());
    assert!(s.user_by_phone("+821012345678").await.unwrap().is_none());
    assert!(s.identity("google", "sub-u1").await.unwrap().is_none());
    assert!(s.session("s1").await.unwrap().is_none());
    assert!(s.consents("u1").await.unwrap().is_empty());
    assert!(s.notification_settings("u1").await.unwrap().is_none());
    assert!(s.exports_of("u1").await.unwrap().is_empty());
    assert!(s.export("e1").await.unwrap().is_none());
    assert!(s.rooms_sent_in("u1").await.unwrap().is_empty());
    assert!(s.likes_by("u1", None, 10).await.unwrap().is_empty());
    assert!(s.suspension("u1").await.unwrap().is_none());
    assert!(s
        .admin_users(Some("U1"), None, 10)
        .await
        .unwrap()
        .iter()
        .all(|u| u.id != "u1"));
    // The others keep theirs.
    assert!(s.user_by_id("u2").await.unwrap().is_some());
    assert_eq!(
        s.identity("google", "sub-u2").await.unwrap().as_deref(),
        Some("u2")
    );
    assert!(s.session("s2").await.unwrap().is_some());
    assert_eq!(s.consents("u2").await.unwrap().len(), 1);
    assert_eq!(s.rooms_sent_in("u2").await.unwrap(), ["g"]);
    // The email and the phone may be used again.
    let mut again = user("u9");
    again.user.email = Some("u1@example.com".into());
    s.create_user(again).await.unwrap();
    s.set_phone("u9", "+821012345678").await.unwrap();
}
