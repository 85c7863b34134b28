//! What business keeps: profiles found by name prefix and category (renames and recategorising
//! move them), exact follower counts, business posts listed under the business; connection
//! requests (one open per pair either way, decided once, asked again after a decline);
//! verification requests (decided once, the badge with an approval, listed by status); channels;
//! analytics counters per day and metric with impressions once per viewer and day.

use dovie::store::{
    BusinessRecord, ChannelRecord, ConnectionRecord, Metric, PostRecord, VerificationRecord,
    Visibility,
};

use super::*;

fn business(id: &str, name: &str, category: &str) -> BusinessRecord {
    BusinessRecord {
        id: id.into(),
        owner_id: "biz-owner".into(),
        name: name.into(),
        category: category.into(),
        description: "we sell things".into(),
        website: Some("https://shop.example".into()),
        email: None,
        phone: Some("+821012345678".into()),
        address: None,
        hours: Some("9-18".into()),
        admins: vec!["biz-admin".into()],
        verified: false,
        created_at: 10,
        updated_at: 10,
    }
}

fn ids(list: &[BusinessRecord]) -> Vec<&str> {
    list.iter().map(|b| b.id.as_str()).collect()
}

pub async fn profiles(s: SharedStore) {
    let bakery = business("b1", "Kim's Bakery", "food");
    s.create_business(&bakery).await.unwrap();
    s.create_business(&business("b2", "Bakery Two", "food"))
        .await
        .unwrap();
    s.create_business(&business("b3", "Kim Motors", "cars"))
        .await
        .unwrap();
    assert_eq!(s.business("b1").await.unwrap(), Some(bakery.clone()));
    assert_eq!(s.business("none").await.unwrap(), None);

    // By a word prefix, by category, both, and neither; paged by id.
    let search = |p: Option<&'static str>, c: Option<&'static str>, after: &'static str| {
        let s = s.clone();
        async move { s.search_businesses(p, c, after, 10).await.unwrap() }
    };
    assert_eq!(ids(&search(Some("bak"), None, "").await), ["b1", "b2"]);
    assert_eq!(ids(&search(Some("kim"), None, "").await), ["b1", "b3"]);
    assert_eq!(ids(&search(Some("kim"), Some("cars"), "").await), ["b3"]);
    assert_eq!(ids(&search(None, Some("food"), "").await), ["b1", "b2"]);
    assert_eq!(ids(&search(None, Some("food"), "b1").await), ["b2"]);
    let mut all = ids(&search(None, None, "").await)
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    all.sort();
    assert_eq!(all, ["b1", "b2", "b3"]);
    let first = s.search_businesses(Some("kim"), None, "", 1).await.unwrap();
    assert_eq!(ids(&first), ["b1"]);

    // Renamed and recategorised: found by the new name and category only.
    let mut renamed = bakery.clone();
    renamed.name = "Lee Patisserie".into();
    renamed.category = "sweets".into();
    renamed.admins = Vec::new();
    renamed.verified = true;
    renamed.email = Some("hi@shop.example".into());
    renamed.updated_at = 20;
    s.update_business(&renamed).await.unwrap();
    assert_eq!(s.business("b1").await.unwrap(), Some(renamed));
    assert_eq!(ids(&search(Some("bak"), None, "").await), ["b2"]);
    assert_eq!(ids(&search(Some("pat"), None, "").await), ["b1"]);
    assert_eq!(ids(&search(None, Some("food"), "").await), ["b2"]);
    assert_eq!(ids(&search(None, Some("sweets"), "").await), ["b1"]);
    assert!(s
        .update_business(&business("none", "x", "y"))
        .await
        .is_err());

    // Follower counts are exact: a repeated follow or unfollow changes nothing.
    for u in ["f1", "f2", "f3"] {
        assert!(s.follow(u, "b2", 5).await.unwrap());
    }
    assert!(!s.follow("f1", "b2", 6).await.unwrap());
    assert!(s.unfollow("f3", "b2").await.unwrap());
    assert!(!s.unfollow("f3", "b2").await.unwrap());
    assert_eq!(s.follower_count("b2").await.unwrap(), 2);
    assert_eq!(s.follower_count("b3").await.unwrap(), 0);

    // A business post is listed under its business, not under the user who wrote it.
    let post = |id: &str, business: Option<&str>, at: i64| PostRecord {
        id: id.into(),
        author_id: "biz-admin".into(),
        business_id: business.map(String::from),
        content: "news".into(),
        hashtags: Vec::new(),
        mentions: Vec::new(),
        attachments: vec![serde_json::json!({"id": "file-1"})],
        visibility: Visibility::Public,
        like_count: 0,
        comment_count: 0,
        created_at: at,
        edited_at: None,
    };
    s.create_post(&post("bp1", Some("b2"), 100)).await.unwrap();
    s.create_post(&post("bp2", None, 200)).await.unwrap();
    let of = |key: &str| {
        let (s, key) = (s.clone(), key.to_string());
        async move {
            s.posts_by_authors(&[key], None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(of("b2").await, ["bp1"]);
    assert_eq!(of("biz-admin").await, ["bp2"]);
    assert_eq!(
        s.post("bp1").await.unwrap().unwrap().attachments,
        vec![serde_json::json!({"id": "file-1"})]
    );
    assert!(s.delete_post("bp1", 300).await.unwrap());
    assert!(of("b2").await.is_empty());
}

fn connection(id: &str, from: &str, to: &str, at: i64) -> ConnectionRecord {
    ConnectionRecord {
        id: id.into(),
        from: from.into(),
        to: to.into(),
        status: "pending".into(),
        created_at: at,
        decided_at: None,
    }
}

fn verification(id: &str, business: &str, at: i64) -> VerificationRecord {
    VerificationRecord {
        id: id.into(),
        business_id: business.into(),
        requested_by: "biz-owner".into(),
        documents: vec!["doc-1".into(), "doc-2".into()],
        note: "our licence".into(),
        status: "pending".into(),
        reason: None,
        decided_by: None,
        created_at: at,
        decided_at: None,
    }
}

pub async fn networking(s: SharedStore) {
    for id in ["n1", "n2", "n3"] {
        s.create_business(&business(id, id, "trade")).await.unwrap();
    }
    // One open request per pair, whichever way.
    s.create_connection(&connection("c1", "n1", "n2", 10))
        .await
        .unwrap();
    let err = s
        .create_connection(&connection("c2", "n2", "n1", 11))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    s.create_connection(&connection("c3", "n3", "n1", 12))
        .await
        .unwrap();
    assert_eq!(
        s.connection("c1").await.unwrap(),
        Some(connection("c1", "n1", "n2", 10))
    );
    // Decided once.
    assert!(s.decide_connection("c1", "accepted", 20).await.unwrap());
    assert!(!s.decide_connection("c1", "declined", 21).await.unwrap());
    assert!(!s.decide_connection("none", "accepted", 21).await.unwrap());
    let c1 = s.connection("c1").await.unwrap().unwrap();
    assert_eq!((c1.status.as_str(), c1.decided_at), ("accepted", Some(20)));
    // Accepted still holds the pair; a declined request frees it.
    assert!(s
        .create_connection(&connection("c4", "n2", "n1", 13))
        .await
        .is_err());
    assert!(s.decide_connection("c3", "declined", 22).await.unwrap());
    s.create_connection(&connection("c5", "n1", "n3", 30))
        .await
        .unwrap();
    let listed: Vec<String> = s
        .connections_of("n1", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| format!("{}:{}", c.id, c.status))
        .collect();
    assert_eq!(listed, ["c5:pending", "c3:declined", "c1:accepted"]);
    assert_eq!(s.connections_of("n1", 1).await.unwrap().len(), 1);

    // Verification: pending, listed by status oldest first, decided once, the badge set.
    let (v1, v2) = (verification("v1", "n1", 100), verification("v2", "n2", 200));
    s.create_business_verification(&v1).await.unwrap();
    s.create_business_verification(&v2).await.unwrap();
    assert_eq!(
        s.business_verification("v1").await.unwrap(),
        Some(v1.clone())
    );
    let pending = |after: Option<(i64, String)>| {
        let s = s.clone();
        async move {
            s.business_verifications("pending", after, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|v| v.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(pending(None).await, ["v1", "v2"]);
    assert_eq!(pending(Some((100, "v1".into()))).await, ["v2"]);
    let mut approved = v1.clone();
    approved.status = "approved".into();
    approved.decided_by = Some("admin".into());
    approved.decided_at = Some(150);
    assert!(s.decide_business_verification(&approved).await.unwrap());
    let mut again = approved.clone();
    again.status = "rejected".into();
    assert!(!s.decide_business_verification(&again).await.unwrap());
    assert_eq!(s.business_verification("v1").await.unwrap(), Some(approved));
    assert!(s.business("n1").await.unwrap().unwrap().verified);
    let mut rejected = v2.clone();
    rejected.status = "rejected".into();
    rejected.reason = Some("blurry".into());
    rejected.decided_at = Some(250);
    assert!(s.decide_business_verification(&rejected).await.unwrap());
    assert!(!s.business("n2").await.unwrap().unwrap().verified);
    assert!(pending(None).await.is_empty());
    let decided = |status: &'static str| {
        let s = s.clone();
        async move {
            s.business_verifications(status, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|v| v.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(decided("approved").await, ["v1"]);
    assert_eq!(decided("rejected").await, ["v2"]);
    let v3 = verification("v3", "n2", 300);
    s.create_business_verification(&v3).await.unwrap();
    let of_n2: Vec<String> = s
        .verifications_of("n2")
        .await
        .unwrap()
        .into_iter()
        .map(|v| format!("{}:{}", v.id, v.status))
        .collect();
    assert_eq!(of_n2, ["v3:pending", "v2:rejected"]);

    // Channels, oldest first.
    let channel = |id: &str, at: i64| ChannelRecord {
        id: id.into(),
        room_id: format!("room-{id}"),
        business_id: "n1".into(),
        name: format!("channel {id}"),
        description: (at > 10).then(|| "news".to_string()),
        created_at: at,
    };
    s.create_channel(&channel("ch2", 20)).await.unwrap();
    s.create_channel(&channel("ch1", 10)).await.unwrap();
    assert_eq!(s.channel("ch2").await.unwrap(), Some(channel("ch2", 20)));
    assert_eq!(s.channel("none").await.unwrap(), None);
    let listed: Vec<String> = s
        .channels_of("n1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, ["ch1", "ch2"]);
    assert!(s.channels_of("n2").await.unwrap().is_empty());
}

pub async fn analytics(s: SharedStore) {
    s.count_metric("a1", 100, Metric::Followers, 1)
        .await
        .unwrap();
    s.count_metric("a1", 100, Metric::Followers, 1)
        .await
        .unwrap();
    s.count_metric("a1", 101, Metric::Followers, -1)
        .await
        .unwrap();
    s.count_metric("a1", 101, Metric::ProfileViews, 3)
        .await
        .unwrap();
    s.count_metric("a1", 105, Metric::Likes, 1).await.unwrap();
    s.count_metric("a2", 100, Metric::Likes, 7).await.unwrap();
    let mut days = s.metric_days("a1", 100, 101).await.unwrap();
    days.sort_by_key(|(d, m, _)| (*d, m.as_str()));
    assert_eq!(
        days,
        [
            (100, Metric::Followers, 2),
            (101, Metric::Followers, -1),
            (101, Metric::ProfileViews, 3),
        ]
    );
    assert_eq!(
        s.metric_days("a1", 102, 110).await.unwrap(),
        [(105, Metric::Likes, 1)]
    );
    // Once per viewer, post and day.
    assert!(s.first_view("post-1", 100, "v1").await.unwrap());
    assert!(!s.first_view("post-1", 100, "v1").await.unwrap());
    assert!(s.first_view("post-1", 101, "v1").await.unwrap());
    assert!(s.first_view("post-1", 100, "v2").await.unwrap());
    assert!(s.first_view("post-2", 100, "v1").await.unwrap());
}
