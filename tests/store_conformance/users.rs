//! Accounts and login sessions.

use super::*;

pub async fn users(store: SharedStore) {
    let created = store.create_user(user("a")).await.unwrap();
    assert_eq!(created.email.as_deref(), Some("a@example.com"));
    let err = store.create_user(user("a")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    let mut other = user("b");
    other.user.email = Some("a@example.com".into());
    assert_eq!(
        store.create_user(other).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    let rec = store.user_by_email("a@example.com").await.unwrap().unwrap();
    assert_eq!(
        (rec.user.id.as_str(), rec.password_hash.as_str()),
        ("a", "hash-a")
    );
    assert!(store
        .user_by_email("zz@example.com")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.user_by_id("a").await.unwrap().unwrap().bio.as_deref(),
        Some("bio")
    );
    assert!(store.user_by_id("nope").await.unwrap().is_none());
    let ids = store
        .existing_users(&["a".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(ids, vec!["a".to_string()]);
    store.set_last_seen("a", 5).await.unwrap();
}

pub async fn auth_sessions(store: SharedStore) {
    // Times near now: revocations are looked up over the access-token lifetime, not all time.
    let t = dovie_actors::now_ms();
    store.create_user(user("a")).await.unwrap();
    let s = AuthSession {
        id: "s1".into(),
        user_id: "a".into(),
        created_at: t,
        expires_at: t + 1_000,
        revoked_at: None,
        device: None,
        user_agent: None,
        ip: None,
        last_seen_at: t,
    };
    store.create_session(s, "h1").await.unwrap();
    assert!(matches!(
        store
            .rotate_refresh("nope", "x", t + 2, t + 2_000)
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    match store
        .rotate_refresh("h1", "h2", t + 2, t + 2_000)
        .await
        .unwrap()
    {
        Rotation::Rotated(s) => assert_eq!(
            (s.id.as_str(), s.user_id.as_str(), s.expires_at),
            ("s1", "a", t + 2_000)
        ),
        other => panic!("{other:?}"),
    }
    // Replaying the spent token revokes the family; the current token dies with it.
    assert!(matches!(
        store
            .rotate_refresh("h1", "h3", t + 3, t + 3_000)
            .await
            .unwrap(),
        Rotation::Reused(_)
    ));
    assert!(matches!(
        store
            .rotate_refresh("h2", "h4", t + 4, t + 4_000)
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    assert_eq!(
        store.revoked_since(t).await.unwrap(),
        vec!["s1".to_string()]
    );
    assert!(store.revoked_since(t + 10).await.unwrap().is_empty());
    // Expired refresh tokens are invalid; logout revokes.
    let s2 = AuthSession {
        id: "s2".into(),
        user_id: "a".into(),
        created_at: t,
        expires_at: t + 50,
        revoked_at: None,
        device: None,
        user_agent: None,
        ip: None,
        last_seen_at: t,
    };
    store.create_session(s2, "e1").await.unwrap();
    assert!(matches!(
        store
            .rotate_refresh("e1", "e2", t + 60, t + 100)
            .await
            .unwrap(),
        Rotation::Invalid
    ));
    store.revoke_session("s2", t + 70).await.unwrap();
    assert_eq!(
        store.revoked_since(t + 70).await.unwrap(),
        vec!["s2".to_string()]
    );
}

/// Accounts start as `user`; a role change sticks and shows on every read.
pub async fn user_roles(store: SharedStore) {
    store.create_user(user("r1")).await.unwrap();
    let u = store.user_by_id("r1").await.unwrap().unwrap();
    assert_eq!(u.role, UserRole::User);
    let u = store.set_user_role("r1", UserRole::Admin).await.unwrap();
    assert_eq!(u.role, UserRole::Admin);
    assert_eq!(
        store.user_by_id("r1").await.unwrap().unwrap().role,
        UserRole::Admin
    );
    let rec = store
        .user_by_email("r1@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.user.role, UserRole::Admin);
    let err = store
        .set_user_role("nobody", UserRole::Admin)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}
