//! People: profiles and the name index, phones, provider identities, session devices and
//! addresses, phone verifications, contacts and blocks.

use dovie::store::{PhoneVerification, ProfilePatch};
use dovie_protocol::model::Theme;

use super::*;

fn named(id: &str, name: &str) -> UserRecord {
    let mut r = user(id);
    r.user.display_name = name.into();
    r
}

pub async fn profiles_and_search(store: SharedStore) {
    store.create_user(named("a1", "Kim Min-jun")).await.unwrap();
    store
        .create_user(named("a2", "Kimberly Ann"))
        .await
        .unwrap();
    store.create_user(named("a3", "Lee Kim")).await.unwrap();
    let ids = |v: Vec<User>| v.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.search_users("kim", None, 10).await.unwrap()),
        ["a1", "a2", "a3"]
    );
    assert_eq!(
        ids(store.search_users("kim m", None, 10).await.unwrap()),
        ["a1"]
    );
    assert_eq!(
        ids(store.search_users("kim", None, 2).await.unwrap()),
        ["a1", "a2"]
    );
    assert_eq!(
        ids(store.search_users("kim", Some("a2"), 2).await.unwrap()),
        ["a3"]
    );
    assert!(store.search_users("im", None, 10).await.unwrap().is_empty());
    // A rename moves the index; a hidden account leaves it.
    let patch = ProfilePatch {
        display_name: Some("Park Ji-woo".into()),
        bio: Some(None),
        status_message: Some(Some("busy".into())),
        theme: Some(Theme::Dark),
        locale: Some("ko".into()),
        time_zone: Some(Some("Asia/Seoul".into())),
        ..ProfilePatch::default()
    };
    let u = store.update_profile("a1", &patch).await.unwrap();
    assert_eq!(u.time_zone.as_deref(), Some("Asia/Seoul"));
    assert_eq!(
        (
            u.display_name.as_str(),
            u.bio.as_deref(),
            u.status_message.as_deref(),
            u.theme,
            u.locale.as_str()
        ),
        ("Park Ji-woo", None, Some("busy"), Theme::Dark, "ko")
    );
    assert_eq!(store.user_by_id("a1").await.unwrap().unwrap(), u);
    let cleared = ProfilePatch {
        time_zone: Some(None),
        ..ProfilePatch::default()
    };
    let u = store.update_profile("a1", &cleared).await.unwrap();
    assert_eq!(u.time_zone, None);
    assert_eq!(store.user_by_id("a1").await.unwrap().unwrap(), u);
    assert_eq!(
        ids(store.search_users("kim", None, 10).await.unwrap()),
        ["a2", "a3"]
    );
    assert_eq!(
        ids(store.search_users("ji", None, 10).await.unwrap()),
        ["a1"]
    );
    let hide = ProfilePatch {
        discoverable: Some(false),
        presence_visible: Some(false),
        ..ProfilePatch::default()
    };
    let u = store.update_profile("a2", &hide).await.unwrap();
    assert!(!u.discoverable && !u.presence_visible);
    assert_eq!(
        ids(store.search_users("kim", None, 10).await.unwrap()),
        ["a3"]
    );
    assert_eq!(
        store.update_profile("nope", &hide).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    let found = store
        .users_by_ids(&["a3".into(), "nope".into(), "a1".into()])
        .await
        .unwrap();
    assert_eq!(ids(found), ["a3", "a1"]);
    assert_eq!(store.last_seen("a3").await.unwrap(), None);
    store.set_last_seen("a3", 77).await.unwrap();
    assert_eq!(store.last_seen("a3").await.unwrap(), Some(77));
}

pub async fn phones_and_identities(store: SharedStore) {
    let mut p = user("p1");
    p.user.email = None;
    p.user.phone = Some("+821012345678".into());
    p.password_hash = String::new();
    store.create_user(p.clone()).await.unwrap();
    let mut dup = user("p2");
    dup.user.email = None;
    dup.user.phone = Some("+821012345678".into());
    assert_eq!(
        store.create_user(dup).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    let mut no_email = user("p3");
    no_email.user.email = None;
    store.create_user(no_email).await.unwrap();
    assert_eq!(store.user_by_id("p3").await.unwrap().unwrap().email, None);
    assert_eq!(
        store
            .user_by_phone("+821012345678")
            .await
            .unwrap()
            .unwrap()
            .id,
        "p1"
    );
    // A phone moves only when its holder lets go of it.
    assert_eq!(
        store
            .set_phone("p3", "+821012345678")
            .await
            .unwrap_err()
            .code,
        ErrorCode::Conflict
    );
    store.set_phone("p1", "+821099999999").await.unwrap();
    assert!(store
        .user_by_phone("+821012345678")
        .await
        .unwrap()
        .is_none());
    let u = store.set_phone("p3", "+821012345678").await.unwrap();
    assert_eq!(u.phone.as_deref(), Some("+821012345678"));
    assert_eq!(
        store
            .user_by_phone("+821012345678")
            .await
            .unwrap()
            .unwrap()
            .id,
        "p3"
    );
    assert_eq!(
        store
            .set_phone("nope", "+14155550100")
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );

    assert_eq!(store.identity("google", "sub-1").await.unwrap(), None);
    assert_eq!(
        store
            .link_identity("google", "sub-1", "p1", 5)
            .await
            .unwrap(),
        "p1"
    );
    // The first link holds.
    assert_eq!(
        store
            .link_identity("google", "sub-1", "p3", 6)
            .await
            .unwrap(),
        "p1"
    );
    assert_eq!(
        store.identity("google", "sub-1").await.unwrap().as_deref(),
        Some("p1")
    );
    assert_eq!(store.identity("facebook", "sub-1").await.unwrap(), None);
}

pub async fn sessions_and_addresses(store: SharedStore) {
    let t = dovie_actors::now_ms();
    store.create_user(user("a")).await.unwrap();
    store.create_user(user("b")).await.unwrap();
    let session = |id: &str, user: &str, created: i64, ip: Option<&str>| AuthSession {
        id: id.into(),
        user_id: user.into(),
        created_at: created,
        expires_at: t + 100_000,
        revoked_at: None,
        device: Some("phone".into()),
        user_agent: Some("Dovie/1".into()),
        ip: ip.map(str::to_string),
        last_seen_at: created,
    };
    store
        .create_session(session("s1", "a", t, Some("10.0.0.1")), "h1")
        .await
        .unwrap();
    store
        .create_session(session("s2", "a", t + 1, None), "h2")
        .await
        .unwrap();
    store
        .create_session(session("s3", "b", t, None), "h3")
        .await
        .unwrap();
    let mine = store.sessions_of("a", t).await.unwrap();
    assert_eq!(
        mine.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s2", "s1"]
    );
    assert_eq!(mine[1].device.as_deref(), Some("phone"));
    assert_eq!(mine[1].ip.as_deref(), Some("10.0.0.1"));
    store.revoke_session("s2", t + 2).await.unwrap();
    assert_eq!(store.sessions_of("a", t).await.unwrap().len(), 1);
    assert!(
        store
            .sessions_of("a", t + 200_000)
            .await
            .unwrap()
            .is_empty(),
        "expired"
    );
    store
        .touch_session("s1", t + 10, Some("10.0.0.2"))
        .await
        .unwrap();
    let s1 = store.session("s1").await.unwrap().unwrap();
    assert_eq!(
        (s1.last_seen_at, s1.ip.as_deref()),
        (t + 10, Some("10.0.0.2"))
    );
    store.touch_session("s1", t + 5, None).await.unwrap();
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().last_seen_at,
        t + 10,
        "never back"
    );
    // Addresses of sessions unused since before the cut are forgotten; newer ones are kept.
    store
        .create_session(session("s4", "b", t + 20, Some("10.0.0.4")), "h4")
        .await
        .unwrap();
    assert_eq!(store.forget_session_ips(t + 15).await.unwrap(), 1);
    assert_eq!(store.session("s1").await.unwrap().unwrap().ip, None);
    assert_eq!(
        store.session("s4").await.unwrap().unwrap().ip.as_deref(),
        Some("10.0.0.4")
    );
    assert!(store.session("nope").await.unwrap().is_none());
}

pub async fn phone_verifications(store: SharedStore) {
    let t = dovie_actors::now_ms();
    let v = PhoneVerification {
        id: "v1".into(),
        phone: "+14155550100".into(),
        code_hash: "hash".into(),
        created_at: t,
        expires_at: t + 300_000,
        attempts: 0,
        consumed_at: None,
    };
    store.create_verification(v.clone()).await.unwrap();
    store
        .create_verification(PhoneVerification {
            id: "v2".into(),
            created_at: t + 30_000,
            ..v.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.verification("v1").await.unwrap().unwrap(), v);
    assert!(store.verification("nope").await.unwrap().is_none());
    assert_eq!(
        store.verifications_since("+14155550100", t).await.unwrap(),
        vec![t + 30_000, t]
    );
    assert_eq!(
        store
            .verifications_since("+14155550100", t + 1)
            .await
            .unwrap(),
        vec![t + 30_000]
    );
    assert!(store
        .verifications_since("+14155550101", 0)
        .await
        .unwrap()
        .is_empty());
    // Attempts count by compare-and-set: a stale count does not count.
    assert!(store.count_attempt("v1", 0).await.unwrap());
    assert!(!store.count_attempt("v1", 0).await.unwrap());
    assert!(store.count_attempt("v1", 1).await.unwrap());
    assert_eq!(store.verification("v1").await.unwrap().unwrap().attempts, 2);
    assert!(store.consume_verification("v1", t + 1).await.unwrap());
    assert!(
        !store.consume_verification("v1", t + 2).await.unwrap(),
        "once"
    );
    assert_eq!(
        store.verification("v1").await.unwrap().unwrap().consumed_at,
        Some(t + 1)
    );
}

pub async fn contacts(store: SharedStore) {
    for id in ["a", "b", "c"] {
        store.create_user(user(id)).await.unwrap();
    }
    let (e, new) = store.add_contact("a", "b", 10).await.unwrap();
    assert!(new && e.user_id == "b" && e.added_at == 10);
    let (e, new) = store.add_contact("a", "b", 20).await.unwrap();
    assert!(!new && e.added_at == 10, "a repeat keeps the first");
    store.add_contact("a", "c", 30).await.unwrap();
    store.add_contact("c", "a", 40).await.unwrap();
    let page = store.contacts("a", None, 1).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.user_id.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    let page = store.contacts("a", Some("b"), 10).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.user_id.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(
        store
            .has_contacts("a", &["b".into(), "c".into(), "x".into()])
            .await
            .unwrap(),
        ["b", "c"]
    );
    assert_eq!(
        store
            .contact_of("a", &["b".into(), "c".into()])
            .await
            .unwrap(),
        ["c"]
    );
    assert!(store.remove_contact("a", "b").await.unwrap());
    assert!(!store.remove_contact("a", "b").await.unwrap());
    assert_eq!(store.contacts("a", None, 10).await.unwrap().len(), 1);
}

pub async fn blocks_hide_presence_and_close_direct_rooms(store: SharedStore) {
    for id in ["a", "b", "c"] {
        store.create_user(user(id)).await.unwrap();
    }
    store
        .create_room(room("g", RoomType::Group, &["a", "b", "c"]))
        .await
        .unwrap();
    store
        .create_room(room("d", RoomType::Direct, &["a", "b"]))
        .await
        .unwrap();
    assert_eq!(
        store.direct_room("b", "a").await.unwrap().as_deref(),
        Some("d")
    );
    assert_eq!(store.direct_room("a", "c").await.unwrap(), None);
    assert!(!store.load_room("d", 1).await.unwrap().unwrap().blocked);
    assert_eq!(store.presence_audience("a", 100).await.unwrap(), ["b", "c"]);

    let (e, new) = store.block("b", "a", 5).await.unwrap();
    assert!(new && e.user_id == "a" && e.added_at == 5);
    let (e, new) = store.block("b", "a", 6).await.unwrap();
    assert!(!new && e.added_at == 5, "a repeat keeps the first");
    assert!(store.blocked_either("a", "b").await.unwrap());
    assert!(store.blocked_either("b", "a").await.unwrap());
    assert!(!store.blocked_either("a", "c").await.unwrap());
    assert_eq!(store.blocked_by("b").await.unwrap(), ["a"]);
    assert_eq!(store.blockers_of("a").await.unwrap(), ["b"]);
    assert_eq!(store.blocked_users("b").await.unwrap(), ["a"]);
    let page = store.blocks("b", None, 10).await.unwrap();
    assert_eq!((page[0].user_id.as_str(), page[0].added_at), ("a", 5));
    // Neither hears the other's presence; the direct room loads closed; groups stay open.
    assert_eq!(store.presence_audience("a", 100).await.unwrap(), ["c"]);
    assert_eq!(store.presence_audience("b", 100).await.unwrap(), ["c"]);
    assert!(store.load_room("d", 1).await.unwrap().unwrap().blocked);
    assert!(!store.load_room("g", 1).await.unwrap().unwrap().blocked);
    // A user who hides presence has no audience at all.
    let hide = ProfilePatch {
        presence_visible: Some(false),
        ..ProfilePatch::default()
    };
    store.update_profile("c", &hide).await.unwrap();
    assert!(store.presence_audience("c", 100).await.unwrap().is_empty());

    assert!(store.unblock("b", "a").await.unwrap());
    assert!(!store.unblock("b", "a").await.unwrap());
    assert!(!store.blocked_either("a", "b").await.unwrap());
    assert!(!store.load_room("d", 1).await.unwrap().unwrap().blocked);
    assert!(store.blocked_by("b").await.unwrap().is_empty());
}
