//! What the social network keeps: posts newest first per author and merged across authors
//! with a cursor, edits and deletions; likes and comments whose counts stay exact under
//! concurrency; follows both ways; and the trend counters (uses and distinct accounts per tag
//! and day, peaks listed by day).

use dovie::store::{ActivityRecord, CommentRecord, PostCursor, PostRecord, Visibility};

use super::*;

pub(crate) fn post(id: &str, author: &str, at: i64) -> PostRecord {
    PostRecord {
        id: id.into(),
        author_id: author.into(),
        business_id: None,
        content: format!("post {id} #tag"),
        hashtags: vec!["tag".into()],
        mentions: vec!["someone".into()],
        attachments: Vec::new(),
        visibility: Visibility::Public,
        like_count: 0,
        comment_count: 0,
        created_at: at,
        edited_at: None,
    }
}

fn ids(posts: &[PostRecord]) -> Vec<&str> {
    posts.iter().map(|p| p.id.as_str()).collect()
}

pub async fn posts(s: SharedStore) {
    let mut followers_only = post("p3", "soc-b", 300);
    followers_only.visibility = Visibility::Followers;
    for p in [
        post("p1", "soc-a", 100),
        post("p2", "soc-a", 200),
        followers_only.clone(),
        post("p4", "soc-a", 300),
        post("p5", "soc-c", 400),
    ] {
        s.create_post(&p).await.unwrap();
    }
    assert_eq!(s.post("p3").await.unwrap(), Some(followers_only));
    assert_eq!(s.post("nope").await.unwrap(), None);

    // Merged across authors, newest first (ties by id, descending), paged by cursor.
    let authors = vec!["soc-a".to_string(), "soc-b".to_string()];
    let all = s.posts_by_authors(&authors, None, 10).await.unwrap();
    assert_eq!(ids(&all), ["p4", "p3", "p2", "p1"]);
    let first = s.posts_by_authors(&authors, None, 2).await.unwrap();
    assert_eq!(ids(&first), ["p4", "p3"]);
    let cursor = PostCursor::of(&first[1]);
    let second = s
        .posts_by_authors(&authors, Some(&cursor), 2)
        .await
        .unwrap();
    assert_eq!(ids(&second), ["p2", "p1"]);
    let end = PostCursor::of(&second[1]);
    assert!(s
        .posts_by_authors(&authors, Some(&end), 2)
        .await
        .unwrap()
        .is_empty());

    // Edited: what an edit may change, changed.
    let mut edited = post("p2", "soc-a", 200);
    edited.content = "edited #other".into();
    edited.hashtags = vec!["other".into()];
    edited.mentions = Vec::new();
    edited.visibility = Visibility::Followers;
    edited.edited_at = Some(250);
    s.update_post(&edited).await.unwrap();
    assert_eq!(s.post("p2").await.unwrap(), Some(edited));

    // Public posts by tag, newest first: p2 went followers-only, p3 always was.
    assert_eq!(
        ids(&s.public_posts_tagged("tag", 10).await.unwrap()),
        ["p5", "p4", "p1"]
    );
    assert_eq!(ids(&s.public_posts_tagged("tag", 1).await.unwrap()), ["p5"]);
    assert!(s.public_posts_tagged("other", 10).await.unwrap().is_empty());

    // Deleted: gone from reads and lists, once.
    assert!(s.delete_post("p4", 500).await.unwrap());
    assert!(!s.delete_post("p4", 501).await.unwrap());
    assert_eq!(s.post("p4").await.unwrap(), None);
    assert_eq!(
        ids(&s.posts_by_authors(&authors, None, 10).await.unwrap()),
        ["p3", "p2", "p1"]
    );
    assert!(!s.like_post("p4", "soc-x", 600).await.unwrap());
    assert_eq!(
        ids(&s.public_posts_tagged("tag", 10).await.unwrap()),
        ["p5", "p1"]
    );
}

pub async fn likes_and_comments(s: SharedStore) {
    s.create_post(&post("lp", "soc-a", 100)).await.unwrap();
    // 20 accounts like at once, each twice: exactly 20.
    let tries = futures_util::future::join_all((0..40).map(|i| {
        let s = s.clone();
        async move {
            s.like_post("lp", &format!("fan{}", i % 20), 200 + i)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(tries.iter().filter(|t| **t).count(), 20);
    assert_eq!(s.post("lp").await.unwrap().unwrap().like_count, 20);
    assert!(s.unlike_post("lp", "fan3").await.unwrap());
    assert!(!s.unlike_post("lp", "fan3").await.unwrap());
    assert_eq!(s.post("lp").await.unwrap().unwrap().like_count, 19);
    let asked: Vec<String> = ["lp", "other"].map(String::from).to_vec();
    assert_eq!(s.liked_posts("fan4", &asked).await.unwrap(), ["lp"]);
    assert!(s.liked_posts("fan3", &asked).await.unwrap().is_empty());

    let c = |id: &str, at: i64, reply_to: Option<&str>| CommentRecord {
        id: id.into(),
        post_id: "lp".into(),
        author_id: "soc-b".into(),
        content: format!("comment {id}"),
        reply_to: reply_to.map(String::from),
        created_at: at,
    };
    for cm in [
        c("c2", 20, None),
        c("c1", 10, None),
        c("r1", 30, Some("c1")),
        c("r2", 40, Some("c1")),
    ] {
        s.add_comment(&cm).await.unwrap();
    }
    assert_eq!(
        s.comment("r1").await.unwrap(),
        Some(c("r1", 30, Some("c1")))
    );
    let listed: Vec<String> = s
        .comments("lp", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, ["c1", "c2", "r1", "r2"]);
    let after: Vec<String> = s
        .comments("lp", Some((20, "c2".into())), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(after, ["r1"]);
    assert_eq!(s.post("lp").await.unwrap().unwrap().comment_count, 4);
    // A comment goes with its replies.
    assert_eq!(s.delete_comment(&c("c1", 10, None)).await.unwrap(), 3);
    assert_eq!(s.comment("r2").await.unwrap(), None);
    assert_eq!(s.post("lp").await.unwrap().unwrap().comment_count, 1);
    // No comment on a post that is not there.
    let mut orphan = c("c9", 50, None);
    orphan.post_id = "nope".into();
    assert_eq!(
        s.add_comment(&orphan).await.unwrap_err().code,
        ErrorCode::NotFound
    );
}

pub async fn follows(s: SharedStore) {
    assert!(s.follow("fa", "fb", 1).await.unwrap());
    assert!(!s.follow("fa", "fb", 2).await.unwrap());
    assert!(s.follow("fa", "fc", 3).await.unwrap());
    assert!(s.follow("fc", "fb", 4).await.unwrap());
    assert!(s.is_following("fa", "fb").await.unwrap());
    assert!(!s.is_following("fb", "fa").await.unwrap());
    assert_eq!(s.following("fa", "", 10).await.unwrap(), ["fb", "fc"]);
    assert_eq!(s.following("fa", "fb", 10).await.unwrap(), ["fc"]);
    assert_eq!(s.followers("fb", "", 10).await.unwrap(), ["fa", "fc"]);
    assert_eq!(s.followers("fb", "", 1).await.unwrap(), ["fa"]);
    assert!(s.unfollow("fa", "fb").await.unwrap());
    assert!(!s.unfollow("fa", "fb").await.unwrap());
    assert_eq!(s.followers("fb", "", 10).await.unwrap(), ["fc"]);
    assert_eq!(s.following("fa", "", 10).await.unwrap(), ["fc"]);
}

pub async fn trends(s: SharedStore) {
    let day = 20_000;
    for (account, delta) in [("ta", 1), ("ta", 1), ("tb", 1), ("tc", 1)] {
        s.count_tag_use("rust", day, account, delta).await.unwrap();
    }
    let days = s.tag_days("rust", &[day, day - 1]).await.unwrap();
    assert_eq!(
        days[0],
        TagDay {
            day,
            uses: 4,
            accounts: 3
        }
    );
    assert_eq!(
        days[1],
        TagDay {
            day: day - 1,
            uses: 0,
            accounts: 0
        }
    );
    // An account leaves with its last use, not before; nothing goes below zero.
    s.count_tag_use("rust", day, "ta", -1).await.unwrap();
    assert_eq!(
        s.tag_days("rust", &[day]).await.unwrap()[0],
        TagDay {
            day,
            uses: 3,
            accounts: 3
        }
    );
    s.count_tag_use("rust", day, "ta", -1).await.unwrap();
    s.count_tag_use("rust", day, "ta", -1).await.unwrap();
    assert_eq!(
        s.tag_days("rust", &[day]).await.unwrap()[0],
        TagDay {
            day,
            uses: 2,
            accounts: 2
        }
    );
    // Many accounts at once: each counted once.
    futures_util::future::join_all((0..12).map(|i| {
        let s = s.clone();
        async move {
            s.count_tag_use("busy", day, &format!("acct{}", i % 6), 1)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        s.tag_days("busy", &[day]).await.unwrap()[0],
        TagDay {
            day,
            uses: 12,
            accounts: 6
        }
    );

    assert_eq!(s.tag_peak("rust").await.unwrap(), None);
    s.set_tag_peak("rust", 16.0, day * DAY_MS + 5)
        .await
        .unwrap();
    s.set_tag_peak("go", 9.0, (day - 1) * DAY_MS).await.unwrap();
    assert_eq!(
        s.tag_peak("rust").await.unwrap(),
        Some((16.0, day * DAY_MS + 5))
    );
    let mut peaked = s.tags_peaked_on(&[day, day - 1]).await.unwrap();
    peaked.sort();
    assert_eq!(peaked, ["go", "rust"]);
    assert!(s.tags_peaked_on(&[day - 5]).await.unwrap().is_empty());
}

pub async fn activities(s: SharedStore) {
    let a = |id: &str, user: &str, at: i64| ActivityRecord {
        id: id.into(),
        user_id: user.into(),
        kind: "like".into(),
        actor_id: "act-x".into(),
        post_id: Some("p".into()),
        comment_id: None,
        created_at: at,
    };
    for r in [
        a("a1", "act-u", 10),
        a("a3", "act-u", 30),
        a("a2", "act-u", 20),
        a("b1", "act-v", 25),
    ] {
        s.add_activity(&r).await.unwrap();
    }
    assert_eq!(
        s.activities("act-u", None, 10).await.unwrap(),
        [
            a("a3", "act-u", 30),
            a("a2", "act-u", 20),
            a("a1", "act-u", 10)
        ]
    );
    assert_eq!(
        s.activities("act-u", None, 1).await.unwrap(),
        [a("a3", "act-u", 30)]
    );
    assert_eq!(
        s.activities("act-u", Some((20, "a2".into())), 10)
            .await
            .unwrap(),
        [a("a1", "act-u", 10)]
    );
    assert!(s.activities("act-w", None, 10).await.unwrap().is_empty());
}
