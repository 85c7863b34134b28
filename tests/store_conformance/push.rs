//! Push targets: browsers' Web Push subscriptions (one per endpoint, moving to the user who
//! subscribes last) and APNs device tokens.

use dovie::store::{ApnsToken, WebPushSubscription};

use super::*;

fn sub(id: &str, endpoint: &str, user: &str, keys: &str) -> WebPushSubscription {
    WebPushSubscription {
        id: id.into(),
        endpoint: endpoint.into(),
        user_id: user.into(),
        p256dh: format!("p256dh-{keys}"),
        auth: format!("auth-{keys}"),
        encoding: "aes128gcm".into(),
        created_at: 5,
    }
}

fn token(token: &str, user: &str, env: &str) -> ApnsToken {
    ApnsToken {
        token: token.into(),
        user_id: user.into(),
        environment: env.into(),
        created_at: 7,
    }
}

fn endpoints(v: &[WebPushSubscription]) -> Vec<(&str, &str)> {
    let mut e: Vec<(&str, &str)> = v
        .iter()
        .map(|s| (s.user_id.as_str(), s.endpoint.as_str()))
        .collect();
    e.sort();
    e
}

pub async fn web_push_subscriptions(store: SharedStore) {
    seed(&store).await;
    let (stored, new) = store
        .put_web_push(sub("s1", "https://push.example/a", "u1", "k1"))
        .await
        .unwrap();
    assert!(new);
    assert_eq!(stored, sub("s1", "https://push.example/a", "u1", "k1"));
    store
        .put_web_push(sub("s2", "https://push.example/b", "u1", "k2"))
        .await
        .unwrap();
    // The same endpoint again: same id and creation time, new keys.
    let mut again = sub("s9", "https://push.example/a", "u1", "k3");
    again.created_at = 99;
    let (stored, new) = store.put_web_push(again).await.unwrap();
    assert!(!new);
    assert_eq!((stored.id.as_str(), stored.created_at), ("s1", 5));
    assert_eq!(stored.p256dh, "p256dh-k3");
    let mine = store.web_push_of(&["u1".into()]).await.unwrap();
    assert_eq!(
        endpoints(&mine),
        [
            ("u1", "https://push.example/a"),
            ("u1", "https://push.example/b")
        ]
    );
    assert!(mine.iter().any(|s| s.id == "s1" && s.auth == "auth-k3"));
    // Another user logs in on that browser: the endpoint is theirs now, and only theirs.
    let (moved, new) = store
        .put_web_push(sub("s7", "https://push.example/a", "u2", "k4"))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!((moved.id.as_str(), moved.user_id.as_str()), ("s1", "u2"));
    let both = store
        .web_push_of(&["u1".into(), "u2".into(), "u3".into()])
        .await
        .unwrap();
    assert_eq!(
        endpoints(&both),
        [
            ("u1", "https://push.example/b"),
            ("u2", "https://push.example/a")
        ]
    );
    // Removal is the owner's: u1 cannot remove what moved to u2.
    assert!(!store
        .delete_web_push("u1", "https://push.example/a")
        .await
        .unwrap());
    assert_eq!(store.web_push_of(&["u2".into()]).await.unwrap().len(), 1);
    assert!(store
        .delete_web_push("u2", "https://push.example/a")
        .await
        .unwrap());
    assert!(!store
        .delete_web_push("u2", "https://push.example/a")
        .await
        .unwrap());
    assert!(store.web_push_of(&["u2".into()]).await.unwrap().is_empty());
    // Subscribing again after a removal is a new subscription.
    let (_, new) = store
        .put_web_push(sub("s8", "https://push.example/a", "u2", "k5"))
        .await
        .unwrap();
    assert!(new);
    assert!(store.web_push_of(&[]).await.unwrap().is_empty());
}

pub async fn apns_tokens(store: SharedStore) {
    seed(&store).await;
    assert!(store
        .put_apns_token(token("aa01", "u1", "production"))
        .await
        .unwrap());
    assert!(store
        .put_apns_token(token("bb02", "u1", "sandbox"))
        .await
        .unwrap());
    assert!(!store
        .put_apns_token(token("aa01", "u1", "sandbox"))
        .await
        .unwrap());
    let mut mine = store.apns_tokens_of(&["u1".into()]).await.unwrap();
    mine.sort_by(|a, b| a.token.cmp(&b.token));
    assert_eq!(
        mine,
        [
            token("aa01", "u1", "sandbox"),
            token("bb02", "u1", "sandbox")
        ]
    );
    // The device changes hands: the token is the new user's only.
    assert!(!store
        .put_apns_token(token("aa01", "u2", "production"))
        .await
        .unwrap());
    let tokens = |v: Vec<ApnsToken>| {
        let mut t: Vec<(String, String)> = v.into_iter().map(|t| (t.user_id, t.token)).collect();
        t.sort();
        t
    };
    assert_eq!(
        tokens(
            store
                .apns_tokens_of(&["u1".into(), "u2".into()])
                .await
                .unwrap()
        ),
        [
            ("u1".to_string(), "bb02".to_string()),
            ("u2".to_string(), "aa01".to_string())
        ]
    );
    assert!(!store.delete_apns_token("u1", "aa01").await.unwrap());
    assert!(store.delete_apns_token("u2", "aa01").await.unwrap());
    assert!(!store.delete_apns_token("u2", "aa01").await.unwrap());
    assert_eq!(
        tokens(
            store
                .apns_tokens_of(&["u1".into(), "u2".into()])
                .await
                .unwrap()
        ),
        [("u1".to_string(), "bb02".to_string())]
    );
}

pub async fn notification_settings(store: SharedStore) {
    seed(&store).await;
    assert_eq!(store.notification_settings("u1").await.unwrap(), None);
    // The first write expects nothing stored; a second "first" write loses.
    assert!(store
        .put_notification_settings("u1", "{\"a\":1}", 1, None)
        .await
        .unwrap());
    assert!(!store
        .put_notification_settings("u1", "{\"b\":1}", 1, None)
        .await
        .unwrap());
    assert_eq!(
        store.notification_settings("u1").await.unwrap(),
        Some(("{\"a\":1}".to_string(), 1))
    );
    // Compare-and-set on the version: of two changes from version 1, one lands.
    assert!(store
        .put_notification_settings("u1", "{\"c\":1}", 2, Some(1))
        .await
        .unwrap());
    assert!(!store
        .put_notification_settings("u1", "{\"d\":1}", 2, Some(1))
        .await
        .unwrap());
    assert_eq!(
        store.notification_settings("u1").await.unwrap(),
        Some(("{\"c\":1}".to_string(), 2))
    );
    // Someone else's settings are their own.
    assert_eq!(store.notification_settings("u2").await.unwrap(), None);
}

fn job(id: &str, lane: u8, due_at: i64) -> dovie::store::PushJobRecord {
    dovie::store::PushJobRecord {
        id: id.into(),
        body: format!("{{\"job\":\"{id}\"}}"),
        due_at,
        attempts: 0,
        lane,
    }
}

fn ids(v: &[dovie::store::PushJobRecord]) -> Vec<&str> {
    v.iter().map(|j| j.id.as_str()).collect()
}

/// The push queue of a node without Redis: two lanes claimed apart, due order, followers added
/// with the finish, retries later, an id never doubled.
pub async fn push_queue(store: SharedStore) {
    const EXPAND: u8 = 0;
    const DELIVER: u8 = 1;
    assert_eq!(store.push_jobs_queued().await.unwrap(), 0);
    store
        .add_push_jobs(&[
            job("m:2", EXPAND, 200),
            job("m:1", EXPAND, 100),
            job("m:3", EXPAND, 5_000),
        ])
        .await
        .unwrap();
    // The same id again is one job (a repeated expansion does not double it).
    store
        .add_push_jobs(&[job("m:1", EXPAND, 100)])
        .await
        .unwrap();
    assert_eq!(store.push_jobs_queued().await.unwrap(), 3);
    let due = store.due_push_jobs(EXPAND, 1_000, 10).await.unwrap();
    assert_eq!(ids(&due), ["m:1", "m:2"], "due ones, oldest first");
    assert_eq!(due[0].body, "{\"job\":\"m:1\"}");
    assert_eq!(due[0].lane, EXPAND);
    assert_eq!(
        ids(&store.due_push_jobs(EXPAND, 1_000, 1).await.unwrap()),
        ["m:1"]
    );
    assert!(store
        .due_push_jobs(DELIVER, 1_000, 10)
        .await
        .unwrap()
        .is_empty());

    store
        .finish_push_job(
            EXPAND,
            "m:1",
            &[job("m:1:a", DELIVER, 150), job("m:1:b", DELIVER, 150)],
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&store.due_push_jobs(EXPAND, 1_000, 10).await.unwrap()),
        ["m:2"]
    );
    let deliveries = store.due_push_jobs(DELIVER, 1_000, 10).await.unwrap();
    assert_eq!(
        ids(&deliveries),
        ["m:1:a", "m:1:b"],
        "followers in their lane"
    );
    assert_eq!(deliveries[0].lane, DELIVER);
    store
        .retry_push_job(DELIVER, "m:1:a", 2_000, 1)
        .await
        .unwrap();
    let due = store.due_push_jobs(DELIVER, 1_000, 10).await.unwrap();
    assert_eq!(ids(&due), ["m:1:b"], "a retry waits for its time");
    let later = store.due_push_jobs(DELIVER, 2_500, 10).await.unwrap();
    assert_eq!(ids(&later), ["m:1:b", "m:1:a"]);
    assert_eq!(later[1].attempts, 1);
    assert_eq!(later[1].due_at, 2_000);
    assert_eq!(store.push_jobs_queued().await.unwrap(), 4);
    for (lane, id) in [
        (DELIVER, "m:1:a"),
        (DELIVER, "m:1:b"),
        (EXPAND, "m:2"),
        (EXPAND, "m:3"),
    ] {
        store.finish_push_job(lane, id, &[]).await.unwrap();
    }
    assert_eq!(store.push_jobs_queued().await.unwrap(), 0);
    for lane in [EXPAND, DELIVER] {
        assert!(store
            .due_push_jobs(lane, i64::MAX, 10)
            .await
            .unwrap()
            .is_empty());
    }
}

/// Several users' settings documents at once: only those who changed theirs.
pub async fn settings_of_many(store: SharedStore) {
    seed(&store).await;
    assert!(store
        .put_notification_settings("u1", "{\"a\":1}", 1, None)
        .await
        .unwrap());
    assert!(store
        .put_notification_settings("u3", "{\"c\":3}", 1, None)
        .await
        .unwrap());
    let mut got = store
        .notification_settings_of(&["u1".into(), "u2".into(), "u3".into()])
        .await
        .unwrap();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("u1".to_string(), "{\"a\":1}".to_string()),
            ("u3".to_string(), "{\"c\":3}".to_string())
        ]
    );
}
