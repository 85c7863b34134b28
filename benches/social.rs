//! The social network at the size of the targets, on the embedded store, without the
//! network: 10,000 users following 500 each, 100,000 posts, then
//! - a feed page (20 posts) as `GET /api/feed` builds it — the followee list, the page across
//!   500 authors with every visibility check, `liked_by_me` — p50/p95/p99 over 1,000 readers;
//! - a post by an account with 10,000 followers: how long until every follower's feed shows it
//!   (fan-out on read: the post's commit), and a check that all 10,000 feeds do;
//! - trend counting for one minute of traffic (1,000 public posts with two hashtags each) as it
//!   arrives (many at once) and one after another, and the trending list;
//! - fan-out on write measured beside it on a plain timeline table in its own database: writing
//!   one post into 10,000 followers' timelines, reading a 20-post page from a timeline, and the
//!   table's size (the 1,000 readers' timelines written, all users' extrapolated).
//!
//! Run with `cargo bench -p dovie --bench social` (`-- --quick`: a tenth of the size). Prints
//! a table and one JSON line; results are recorded in `load-tests/results/social.md`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dovie::social::{self, trends, Viewer};
use dovie::store::sqlite::SqliteStore;
use dovie::store::{PostRecord, SharedStore, Visibility};
use futures_util::future::try_join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The sizes.
const USERS: usize = 10_000;
const FOLLOWS_EACH: usize = 500;
const POSTS: usize = 100_000;
const FOLLOWERS_OF_STAR: usize = 10_000;
const READERS: usize = 1_000;
const PAGE: usize = 20;
const MINUTE_OF_POSTS: usize = 1_000;
/// Store calls in flight while seeding (the writer commits them in groups).
const IN_FLIGHT: usize = 512;

fn user(i: usize) -> String {
    format!("u{i:05}")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Runs `n` calls of `f`, `IN_FLIGHT` at a time.
async fn in_batches<F, Fut>(n: usize, f: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut i = 0;
    while i < n {
        let end = (i + IN_FLIGHT).min(n);
        futures_util::future::join_all((i..end).map(&f)).await;
        i = end;
    }
}

fn post(id: usize, author: &str, at: i64, tags: &[&str]) -> PostRecord {
    PostRecord {
        id: format!("p{id:07}"),
        author_id: author.to_string(),
        business_id: None,
        content: format!(
            "post {id} {}",
            tags.iter()
                .map(|t| format!("#{t}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        hashtags: tags.iter().map(|t| t.to_string()).collect(),
        mentions: Vec::new(),
        attachments: Vec::new(),
        // One in ten for followers only: the visibility check has work to do.
        visibility: if id.is_multiple_of(10) {
            Visibility::Followers
        } else {
            Visibility::Public
        },
        like_count: 0,
        comment_count: 0,
        created_at: at,
        edited_at: None,
    }
}

/// A feed page as the REST handler builds it; answers the posts shown.
async fn feed(store: &SharedStore, who: &str) -> Vec<PostRecord> {
    let mut keys = store.following(who, "", 5000).await.unwrap();
    keys.push(who.to_string());
    let admin = store
        .user_by_id(who)
        .await
        .unwrap()
        .is_some_and(|u| u.role == dovie_protocol::model::UserRole::Admin);
    let viewer = Viewer { id: who, admin };
    let (posts, _) = social::page(store, viewer, &keys, None, PAGE)
        .await
        .unwrap();
    social::views(store, who, &posts).await.unwrap();
    posts
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let (users, posts_n, star_followers) =
        (USERS / scale, POSTS / scale, FOLLOWERS_OF_STAR / scale);
    let readers = READERS / scale;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store: SharedStore = Arc::new(SqliteStore::open(dir.path(), "NORMAL", 2).unwrap());
        let mut rng = StdRng::seed_from_u64(20261207);

        // Seed: follows (each user 500 others), then posts by random authors over a week.
        let started = Instant::now();
        let follows: Vec<Vec<String>> = (0..users)
            .map(|_| {
                let mut set = std::collections::BTreeSet::new();
                while set.len() < FOLLOWS_EACH.min(users - 1) {
                    set.insert(rng.gen_range(0..users));
                }
                set.into_iter().map(user).collect()
            })
            .collect();
        let pairs: Vec<(String, String)> = follows
            .iter()
            .enumerate()
            .flat_map(|(i, fs)| fs.iter().filter(move |f| **f != user(i)).map(move |f| (user(i), f.clone())))
            .collect();
        in_batches(pairs.len(), |k| {
            let (s, (a, b)) = (store.clone(), pairs[k].clone());
            async move {
                s.follow(&a, &b, 1).await.unwrap();
            }
        })
        .await;
        let seeded_follows = started.elapsed();
        let week_ms = 7 * 24 * 3600 * 1000;
        let now = dovie_actors::now_ms();
        let authors: Vec<usize> = (0..posts_n).map(|_| rng.gen_range(0..users)).collect();
        let times: Vec<i64> = (0..posts_n).map(|_| now - rng.gen_range(0..week_ms)).collect();
        let started = Instant::now();
        in_batches(posts_n, |k| {
            let s = store.clone();
            let p = post(k, &user(authors[k]), times[k], &[]);
            async move {
                s.create_post(&p).await.unwrap();
            }
        })
        .await;
        let seeded_posts = started.elapsed();
        eprintln!(
            "seeded {} follows in {:.1} s, {} posts in {:.1} s",
            pairs.len(),
            seeded_follows.as_secs_f64(),
            posts_n,
            seeded_posts.as_secs_f64()
        );

        // Feed pages: 1,000 readers, one after another (what one request costs).
        let mut took = Vec::with_capacity(readers);
        let mut shown = 0;
        for r in 0..readers {
            let who = user((r * 7919) % users);
            let t = Instant::now();
            shown += feed(&store, &who).await.len();
            took.push(t.elapsed());
        }
        took.sort();
        let (p50, p95, p99) = (percentile(&took, 0.5), percentile(&took, 0.95), percentile(&took, 0.99));
        assert!(shown >= readers * (PAGE - 1), "feeds were short: {shown}");
        eprintln!("feed page p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms ({readers} readers)");

        // A star with 10,000 followers posts: visible to all once committed.
        let star = "star".to_string();
        in_batches(star_followers, |k| {
            let (s, star) = (store.clone(), star.clone());
            async move {
                s.follow(&user(k % users), &star, 1).await.unwrap();
            }
        })
        .await;
        let t = Instant::now();
        let news = post(posts_n + 1, &star, dovie_actors::now_ms() + 1000, &[]);
        store.create_post(&news).await.unwrap();
        let visible_after = t.elapsed();
        let t = Instant::now();
        let mut seen = 0;
        for k in 0..star_followers.min(users) {
            let first = feed(&store, &user(k)).await;
            seen += usize::from(first.first().is_some_and(|p| p.id == news.id));
        }
        let checked_in = t.elapsed();
        assert_eq!(seen, star_followers.min(users), "the star's post is missing from feeds");
        eprintln!(
            "star post visible after {:.2} ms; {seen} feeds checked",
            visible_after.as_secs_f64() * 1000.0
        );

        // Trends: one minute of traffic (1,000 public posts, two tags each) counted as the posts
        // arrive (many at once, as request handlers count them), then one after another (the
        // sum of every count's latency), then listed.
        let tags = ["rust", "chat", "news", "music", "food", "travel", "kpop", "sports"];
        let minute: Vec<(String, [String; 2])> = (0..MINUTE_OF_POSTS)
            .map(|k| {
                let pair = [tags[k % tags.len()], tags[(k / 3) % tags.len()]];
                (user(rng.gen_range(0..users)), pair.map(String::from))
            })
            .collect();
        let t = Instant::now();
        in_batches(MINUTE_OF_POSTS, |k| {
            let (s, (a, pair)) = (store.clone(), minute[k].clone());
            async move {
                trends::count(&s, &pair, &a, dovie_actors::now_ms(), 1)
                    .await
                    .unwrap();
            }
        })
        .await;
        let counted = t.elapsed();
        let t = Instant::now();
        for (a, pair) in &minute {
            trends::count(&store, pair, a, dovie_actors::now_ms(), 1)
                .await
                .unwrap();
        }
        let counted_one_by_one = t.elapsed();
        let t = Instant::now();
        let listed = trends::trending(&store, dovie_actors::now_ms(), 10).await.unwrap();
        let listing = t.elapsed();
        assert!(!listed.is_empty(), "nothing trends");

        // Fan-out on write, beside it: a timeline row per follower per post.
        let tl = rusqlite::Connection::open(dir.path().join("timelines.db")).unwrap();
        tl.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE timelines (user_id TEXT, created_at INTEGER, post_id TEXT,
                                     PRIMARY KEY (user_id, created_at, post_id)) WITHOUT ROWID;",
        )
        .unwrap();
        // Fan-out on write keeps, per user, what their 500 followees wrote: ~500 × 10 posts
        // each, 50,000,000 rows for all 10,000 users. Only the timelines that are read below
        // (the 1,000 readers') are written; the full table's size is extrapolated from them.
        let reader_ids: Vec<usize> = (0..readers).map(|r| (r * 7919) % users).collect();
        let t = Instant::now();
        let mut timeline_rows = 0usize;
        {
            let mut by_author: Vec<Vec<usize>> = vec![Vec::new(); users];
            for (k, a) in authors.iter().enumerate() {
                by_author[*a].push(k);
            }
            let mut sorted = reader_ids.clone();
            sorted.sort_unstable();
            let tx = tl.unchecked_transaction().unwrap();
            {
                let mut st = tx
                    .prepare("INSERT OR IGNORE INTO timelines VALUES (?1, ?2, ?3)")
                    .unwrap();
                for who in sorted {
                    let owner = user(who);
                    for f in &follows[who] {
                        let a: usize = f[1..].parse().unwrap();
                        for k in &by_author[a] {
                            st.execute(rusqlite::params![owner, times[*k], format!("p{k:07}")])
                                .unwrap();
                            timeline_rows += 1;
                        }
                    }
                }
            }
            tx.commit().unwrap();
        }
        let timeline_seed = t.elapsed();
        let t = Instant::now();
        {
            let tx = tl.unchecked_transaction().unwrap();
            {
                let mut st = tx
                    .prepare("INSERT INTO timelines VALUES (?1, ?2, ?3)")
                    .unwrap();
                for k in 0..star_followers.min(users) {
                    st.execute(rusqlite::params![user(k), now + 2000, "star-post"])
                        .unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let fanout_write = t.elapsed();
        let mut read = Vec::with_capacity(readers);
        {
            let mut st = tl
                .prepare(
                    "SELECT post_id FROM timelines WHERE user_id = ?1 \
                     ORDER BY created_at DESC, post_id DESC LIMIT ?2",
                )
                .unwrap();
            for &r in &reader_ids {
                let who = user(r);
                let t = Instant::now();
                let ids: Vec<String> = st
                    .query_map(rusqlite::params![who, PAGE as i64], |row| row.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                // The page's rows, as the feed would then read them.
                try_join_all(ids.iter().map(|id| store.post(id))).await.unwrap();
                read.push(t.elapsed());
            }
        }
        read.sort();
        let db_size = |name: &str| {
            std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len())
                + std::fs::metadata(dir.path().join(format!("{name}-wal"))).map_or(0, |m| m.len())
        };

        println!("| measure | value |");
        println!("| --- | --- |");
        println!("| feed page p50 / p95 / p99 (fan-out on read, {readers} readers × 500 follows) | {p50:.2} / {p95:.2} / {p99:.2} ms |");
        println!("| post by a {star_followers}-follower account visible in every follower's feed after | {:.2} ms (its commit); all {seen} feeds checked in {:.1} s |", visible_after.as_secs_f64() * 1000.0, checked_in.as_secs_f64());
        println!("| trends: one minute of traffic ({MINUTE_OF_POSTS} posts × 2 tags) counted as it arrives / one after another | {:.1} ms / {:.1} ms; the list in {:.2} ms |", counted.as_secs_f64() * 1000.0, counted_one_by_one.as_secs_f64() * 1000.0, listing.as_secs_f64() * 1000.0);
        println!("| fan-out on write: one post into {star_followers} timelines | {:.1} ms |", fanout_write.as_secs_f64() * 1000.0);
        println!("| fan-out on write: timeline page p50 / p99 | {:.2} / {:.2} ms |", percentile(&read, 0.5), percentile(&read, 0.99));
        let all_rows = pairs.len() * posts_n / users;
        let per_row = db_size("timelines.db") as f64 / timeline_rows.max(1) as f64;
        println!("| fan-out on write: the {readers} readers' timelines ({timeline_rows} rows) written | {:.1} s, {} MB; all {users} users' (~{all_rows} rows) ≈ {:.0} MB (the whole social store: {} MB) |", timeline_seed.as_secs_f64(), db_size("timelines.db") / 1_000_000, per_row * all_rows as f64 / 1e6, db_size("dovie.db") / 1_000_000);
        println!(
            "{}",
            serde_json::json!({
                "users": users, "follows_each": FOLLOWS_EACH, "posts": posts_n,
                "feed_ms": {"p50": p50, "p95": p95, "p99": p99},
                "star_followers": star_followers,
                "star_visible_after_ms": visible_after.as_secs_f64() * 1000.0,
                "trends_minute_ms": counted.as_secs_f64() * 1000.0,
                "trends_minute_one_by_one_ms": counted_one_by_one.as_secs_f64() * 1000.0,
                "trends_list_ms": listing.as_secs_f64() * 1000.0,
                "fanout_write_one_post_ms": fanout_write.as_secs_f64() * 1000.0,
                "fanout_write_page_ms": {"p50": percentile(&read, 0.5), "p99": percentile(&read, 0.99)},
                "timeline_rows_written": timeline_rows, "timeline_rows_all_users": all_rows,
                "timeline_seed_s": timeline_seed.as_secs_f64(),
                "timelines_bytes": db_size("timelines.db"),
                "timelines_all_users_bytes_estimate": (per_row * all_rows as f64) as u64,
                "social_store_bytes": db_size("dovie.db"),
            })
        );
    });
}
