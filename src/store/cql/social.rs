//! The social network in the cluster store: `user_posts` with `posts_by_author` (newest first),
//! `post_counts` (counters changed only by a like or comment whose LWT applied: exact under
//! concurrency), `post_likes` (every write an LWT), `post_comments` with `comments_by_post`,
//! `follows`/`followers`, and the trend counters (`tag_day_counts`, `tag_day_accounts` changed
//! by compare-and-set, `tag_peaks` listed by day in `tag_peaks_by_day`), and each user's
//! `activities` (a partition per user, newest first).

use scylla::value::Counter;

use super::*;

/// Compare-and-set rounds on one account's uses of a tag before the store counts as busy.
const CAS_ROUNDS: usize = 16;

pub(super) struct SocialStmts {
    insert_post: PreparedStatement,
    post_by_id: PreparedStatement,
    update_post: PreparedStatement,
    delete_post: PreparedStatement,
    insert_by_author: PreparedStatement,
    by_author: PreparedStatement,
    by_author_before: PreparedStatement,
    delete_by_author: PreparedStatement,
    insert_by_tag: PreparedStatement,
    by_tag: PreparedStatement,
    delete_by_tag: PreparedStatement,
    counts: PreparedStatement,
    count_likes: PreparedStatement,
    count_comments: PreparedStatement,
    insert_like: PreparedStatement,
    delete_like: PreparedStatement,
    like_of: PreparedStatement,
    insert_comment: PreparedStatement,
    comment_by_id: PreparedStatement,
    delete_comment: PreparedStatement,
    insert_comment_by_post: PreparedStatement,
    comments_by_post: PreparedStatement,
    delete_comment_by_post: PreparedStatement,
    insert_follow: PreparedStatement,
    insert_follower: PreparedStatement,
    delete_follow: PreparedStatement,
    delete_follower: PreparedStatement,
    follow_of: PreparedStatement,
    count_followers: PreparedStatement,
    follower_count: PreparedStatement,
    following: PreparedStatement,
    followers: PreparedStatement,
    count_tag: PreparedStatement,
    tag_day: PreparedStatement,
    account_uses: PreparedStatement,
    insert_account_uses: PreparedStatement,
    update_account_uses: PreparedStatement,
    delete_account_uses: PreparedStatement,
    peak: PreparedStatement,
    set_peak: PreparedStatement,
    list_peak: PreparedStatement,
    peaked_on: PreparedStatement,
    insert_activity: PreparedStatement,
    activities: PreparedStatement,
    activities_before: PreparedStatement,
}

impl SocialStmts {
    pub(super) async fn prepare(s: &Session, keyspace: &str) -> Result<SocialStmts, String> {
        let p = |cql: &str| prepare_statement(s, keyspace, cql.to_string());
        Ok(SocialStmts {
            insert_post: p("INSERT INTO user_posts (id, author_id, business_id, content, hashtags, mentions, attachments, visibility, created_at, edited_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").await?,
            post_by_id: p("SELECT id, author_id, business_id, content, hashtags, mentions, attachments, visibility, created_at, edited_at, deleted_at FROM user_posts WHERE id = ?").await?,
            update_post: p("UPDATE user_posts SET content = ?, hashtags = ?, mentions = ?, attachments = ?, visibility = ?, edited_at = ? WHERE id = ?").await?,
            delete_post: p("UPDATE user_posts SET deleted_at = ?, content = '', attachments = '[]' WHERE id = ?").await?,
            insert_by_author: p("INSERT INTO posts_by_author (author_id, created_at, id) VALUES (?, ?, ?)").await?,
            by_author: p("SELECT created_at, id FROM posts_by_author WHERE author_id = ? LIMIT ?").await?,
            by_author_before: p("SELECT created_at, id FROM posts_by_author WHERE author_id = ? AND (created_at, id) < (?, ?) LIMIT ?").await?,
            delete_by_author: p("DELETE FROM posts_by_author WHERE author_id = ? AND created_at = ? AND id = ?").await?,
            insert_by_tag: p("INSERT INTO posts_by_tag (tag, created_at, id) VALUES (?, ?, ?)").await?,
            by_tag: p("SELECT id FROM posts_by_tag WHERE tag = ? LIMIT ?").await?,
            delete_by_tag: p("DELETE FROM posts_by_tag WHERE tag = ? AND created_at = ? AND id = ?").await?,
            counts: p("SELECT likes, comments FROM post_counts WHERE post_id = ?").await?,
            count_likes: p("UPDATE post_counts SET likes = likes + ? WHERE post_id = ?").await?,
            count_comments: p("UPDATE post_counts SET comments = comments + ? WHERE post_id = ?").await?,
            insert_like: p("INSERT INTO post_likes (post_id, user_id, created_at) VALUES (?, ?, ?) IF NOT EXISTS").await?,
            delete_like: p("DELETE FROM post_likes WHERE post_id = ? AND user_id = ? IF EXISTS").await?,
            like_of: p("SELECT user_id FROM post_likes WHERE post_id = ? AND user_id = ?").await?,
            insert_comment: p("INSERT INTO post_comments (id, post_id, author_id, content, reply_to, created_at) VALUES (?, ?, ?, ?, ?, ?)").await?,
            comment_by_id: p("SELECT id, post_id, author_id, content, reply_to, created_at FROM post_comments WHERE id = ?").await?,
            delete_comment: p("DELETE FROM post_comments WHERE id = ?").await?,
            insert_comment_by_post: p("INSERT INTO comments_by_post (post_id, created_at, id, reply_to) VALUES (?, ?, ?, ?)").await?,
            comments_by_post: p("SELECT created_at, id, reply_to FROM comments_by_post WHERE post_id = ?").await?,
            delete_comment_by_post: p("DELETE FROM comments_by_post WHERE post_id = ? AND created_at = ? AND id = ?").await?,
            insert_follow: p("INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?) IF NOT EXISTS").await?,
            insert_follower: p("INSERT INTO followers (followee_id, follower_id, created_at) VALUES (?, ?, ?)").await?,
            delete_follow: p("DELETE FROM follows WHERE follower_id = ? AND followee_id = ? IF EXISTS").await?,
            delete_follower: p("DELETE FROM followers WHERE followee_id = ? AND follower_id = ?").await?,
            count_followers: p("UPDATE follower_counts SET followers = followers + ? WHERE id = ?").await?,
            follower_count: p("SELECT followers FROM follower_counts WHERE id = ?").await?,
            follow_of: p("SELECT followee_id FROM follows WHERE follower_id = ? AND followee_id = ?").await?,
            following: p("SELECT followee_id FROM follows WHERE follower_id = ? AND followee_id > ? LIMIT ?").await?,
            followers: p("SELECT follower_id FROM followers WHERE followee_id = ? AND follower_id > ? LIMIT ?").await?,
            count_tag: p("UPDATE tag_day_counts SET uses = uses + ?, accounts = accounts + ? WHERE tag = ? AND day = ?").await?,
            tag_day: p("SELECT uses, accounts FROM tag_day_counts WHERE tag = ? AND day = ?").await?,
            account_uses: p("SELECT uses FROM tag_day_accounts WHERE tag = ? AND day = ? AND account_id = ?").await?,
            insert_account_uses: p("INSERT INTO tag_day_accounts (tag, day, account_id, uses) VALUES (?, ?, ?, ?) IF NOT EXISTS").await?,
            update_account_uses: p("UPDATE tag_day_accounts SET uses = ? WHERE tag = ? AND day = ? AND account_id = ? IF uses = ?").await?,
            delete_account_uses: p("DELETE FROM tag_day_accounts WHERE tag = ? AND day = ? AND account_id = ? IF uses = ?").await?,
            peak: p("SELECT score, at FROM tag_peaks WHERE tag = ?").await?,
            set_peak: p("INSERT INTO tag_peaks (tag, score, at) VALUES (?, ?, ?)").await?,
            list_peak: p("INSERT INTO tag_peaks_by_day (day, tag) VALUES (?, ?)").await?,
            peaked_on: p("SELECT tag FROM tag_peaks_by_day WHERE day = ?").await?,
            insert_activity: p("INSERT INTO activities (user_id, created_at, id, kind, actor_id, post_id, comment_id) VALUES (?, ?, ?, ?, ?, ?, ?)").await?,
            activities: p("SELECT id, user_id, kind, actor_id, post_id, comment_id, created_at FROM activities WHERE user_id = ? LIMIT ?").await?,
            activities_before: p("SELECT id, user_id, kind, actor_id, post_id, comment_id, created_at FROM activities WHERE user_id = ? AND (created_at, id) < (?, ?) LIMIT ?").await?,
        })
    }
}

type PostRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<Vec<String>>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

type CommentRow = (String, String, String, String, Option<String>, i64);

fn comment_of(r: CommentRow) -> CommentRecord {
    CommentRecord {
        id: r.0,
        post_id: r.1,
        author_id: r.2,
        content: r.3,
        reply_to: r.4,
        created_at: r.5,
    }
}

impl ScyllaStore {
    /// Indexes a public post under its hashtags, or takes it out of the index.
    async fn index_post_tags(&self, p: &PostRecord, add: bool) -> StoreResult<()> {
        if p.visibility != Visibility::Public {
            return Ok(());
        }
        let st = &self.st.social;
        let which = if add {
            &st.insert_by_tag
        } else {
            &st.delete_by_tag
        };
        for tag in &p.hashtags {
            self.write(which, (tag, p.created_at, &p.id)).await?;
        }
        Ok(())
    }

    /// The post `id` unless deleted, with its counts.
    async fn post_row(&self, id: &str) -> StoreResult<Option<PostRecord>> {
        let st = &self.st.social;
        let (row, counts) = futures_util::try_join!(
            self.row::<PostRow>(&st.post_by_id, (id,)),
            self.row::<(Option<Counter>, Option<Counter>)>(&st.counts, (id,)),
        )?;
        let Some(r) = row.filter(|r| r.10.is_none()) else {
            return Ok(None);
        };
        let (likes, comments) = counts.unwrap_or((None, None));
        Ok(Some(PostRecord {
            id: r.0,
            author_id: r.1,
            business_id: r.2,
            content: r.3.unwrap_or_default(),
            hashtags: r.4.unwrap_or_default(),
            mentions: r.5.unwrap_or_default(),
            attachments: r
                .6
                .and_then(|a| serde_json::from_str(&a).ok())
                .unwrap_or_default(),
            visibility: r
                .7
                .as_deref()
                .and_then(Visibility::parse)
                .unwrap_or(Visibility::Followers),
            like_count: likes.map_or(0, |c| c.0).max(0),
            comment_count: comments.map_or(0, |c| c.0).max(0),
            created_at: r.8,
            edited_at: r.9,
        }))
    }

    /// One author's posts (time and id), newest first, strictly older than `before`.
    async fn author_post_ids(
        &self,
        author: &str,
        before: Option<&PostCursor>,
        limit: usize,
    ) -> StoreResult<Vec<(i64, String)>> {
        let st = &self.st.social;
        let limit = limit.min(i32::MAX as usize) as i32;
        match before {
            Some(b) => {
                self.rows(&st.by_author_before, (author, b.created_at, &b.id, limit))
                    .await
            }
            None => self.rows(&st.by_author, (author, limit)).await,
        }
    }
}

#[async_trait]
impl PostStore for ScyllaStore {
    async fn create_post(&self, p: &PostRecord) -> StoreResult<()> {
        let st = &self.st.social;
        let attachments = serde_json::to_string(&p.attachments).unwrap_or_else(|_| "[]".into());
        self.write(
            &st.insert_post,
            (
                &p.id,
                &p.author_id,
                &p.business_id,
                &p.content,
                &p.hashtags,
                &p.mentions,
                attachments,
                p.visibility.as_str(),
                p.created_at,
                p.edited_at,
            ),
        )
        .await?;
        self.write(&st.insert_by_author, (p.feed_key(), p.created_at, &p.id))
            .await?;
        self.index_post_tags(p, true).await
    }

    async fn post(&self, id: &str) -> StoreResult<Option<PostRecord>> {
        self.post_row(id).await
    }

    async fn update_post(&self, p: &PostRecord) -> StoreResult<()> {
        let Some(before) = self.post_row(&p.id).await? else {
            return Ok(());
        };
        self.index_post_tags(&before, false).await?;
        self.index_post_tags(p, true).await?;
        let attachments = serde_json::to_string(&p.attachments).unwrap_or_else(|_| "[]".into());
        self.write(
            &self.st.social.update_post,
            (
                &p.content,
                &p.hashtags,
                &p.mentions,
                attachments,
                p.visibility.as_str(),
                p.edited_at,
                &p.id,
            ),
        )
        .await
    }

    async fn delete_post(&self, id: &str, at: i64) -> StoreResult<bool> {
        let Some(p) = self.post_row(id).await? else {
            return Ok(false);
        };
        let st = &self.st.social;
        self.write(&st.delete_post, (at, id)).await?;
        self.write(&st.delete_by_author, (p.feed_key(), p.created_at, id))
            .await?;
        self.index_post_tags(&p, false).await?;
        Ok(true)
    }

    async fn posts_by_authors(
        &self,
        authors: &[String],
        before: Option<&PostCursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>> {
        // Each author's newest `limit` (a partition slice each, 32 at a time), merged; then
        // only the page's rows are read.
        let mut listed: Vec<(i64, String)> = Vec::new();
        for chunk in authors.chunks(32) {
            let lists =
                try_join_all(chunk.iter().map(|a| self.author_post_ids(a, before, limit))).await?;
            listed.extend(lists.into_iter().flatten());
            listed.sort_by(|a, b| b.cmp(a));
            listed.truncate(limit);
        }
        Ok(try_join_all(listed.iter().map(|(_, id)| self.post_row(id)))
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn public_posts_tagged(&self, tag: &str, limit: usize) -> StoreResult<Vec<PostRecord>> {
        let limit = limit.min(i32::MAX as usize) as i32;
        let ids = self
            .rows::<(String,)>(&self.st.social.by_tag, (tag, limit))
            .await?;
        Ok(try_join_all(ids.iter().map(|(id,)| self.post_row(id)))
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn like_post(&self, post_id: &str, user_id: &str, at: i64) -> StoreResult<bool> {
        if self.post_row(post_id).await?.is_none() {
            return Ok(false);
        }
        let st = &self.st.social;
        let new = self.lwt(&st.insert_like, (post_id, user_id, at)).await?;
        if new {
            self.write(&self.st.privacy.index_like, (user_id, post_id, at))
                .await?;
            self.write(&st.count_likes, (Counter(1), post_id)).await?;
        }
        Ok(new)
    }

    async fn unlike_post(&self, post_id: &str, user_id: &str) -> StoreResult<bool> {
        let st = &self.st.social;
        let gone = self.lwt(&st.delete_like, (post_id, user_id)).await?;
        if gone {
            self.write(&self.st.privacy.unindex_like, (user_id, post_id))
                .await?;
            self.write(&st.count_likes, (Counter(-1), post_id)).await?;
        }
        Ok(gone)
    }

    async fn liked_posts(&self, user_id: &str, post_ids: &[String]) -> StoreResult<Vec<String>> {
        let st = &self.st.social;
        let found = try_join_all(
            post_ids
                .iter()
                .map(|id| self.row::<(String,)>(&st.like_of, (id, user_id))),
        )
        .await?;
        Ok(post_ids
            .iter()
            .zip(found)
            .filter(|(_, f)| f.is_some())
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn add_comment(&self, c: &CommentRecord) -> StoreResult<()> {
        if self.post_row(&c.post_id).await?.is_none() {
            return Err(not_found("post"));
        }
        let st = &self.st.social;
        self.write(
            &st.insert_comment,
            (
                &c.id,
                &c.post_id,
                &c.author_id,
                &c.content,
                &c.reply_to,
                c.created_at,
            ),
        )
        .await?;
        self.write(
            &st.insert_comment_by_post,
            (&c.post_id, c.created_at, &c.id, &c.reply_to),
        )
        .await?;
        self.write(&self.st.privacy.index_comment, (&c.author_id, &c.id))
            .await?;
        self.write(&st.count_comments, (Counter(1), &c.post_id))
            .await
    }

    async fn comment(&self, id: &str) -> StoreResult<Option<CommentRecord>> {
        Ok(self
            .row::<CommentRow>(&self.st.social.comment_by_id, (id,))
            .await?
            .map(comment_of))
    }

    async fn comments(
        &self,
        post_id: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>> {
        let listed = self
            .rows::<(i64, String, Option<String>)>(&self.st.social.comments_by_post, (post_id,))
            .await?;
        let ids: Vec<String> = listed
            .into_iter()
            .filter(|(at, id, _)| {
                after
                    .as_ref()
                    .is_none_or(|(a_at, a_id)| (*at, id) > (*a_at, a_id))
            })
            .take(limit)
            .map(|(_, id, _)| id)
            .collect();
        Ok(try_join_all(ids.iter().map(|id| self.comment(id)))
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn delete_comment(&self, c: &CommentRecord) -> StoreResult<usize> {
        let st = &self.st.social;
        let listed = self
            .rows::<(i64, String, Option<String>)>(&st.comments_by_post, (&c.post_id,))
            .await?;
        let going: Vec<(i64, String)> = listed
            .into_iter()
            .filter(|(_, id, reply_to)| *id == c.id || reply_to.as_deref() == Some(c.id.as_str()))
            .map(|(at, id, _)| (at, id))
            .collect();
        for (at, id) in &going {
            self.write(&st.delete_comment_by_post, (&c.post_id, *at, id))
                .await?;
            self.write(&st.delete_comment, (id,)).await?;
        }
        if !going.is_empty() {
            self.write(
                &st.count_comments,
                (Counter(-(going.len() as i64)), &c.post_id),
            )
            .await?;
        }
        Ok(going.len())
    }
}

#[async_trait]
impl FollowStore for ScyllaStore {
    async fn follow(&self, follower: &str, followee: &str, at: i64) -> StoreResult<bool> {
        let st = &self.st.social;
        let new = self
            .lwt(&st.insert_follow, (follower, followee, at))
            .await?;
        if new {
            self.write(&st.count_followers, (Counter(1), followee))
                .await?;
        }
        // Written again when it is not new: a crash may have left it out.
        self.write(&st.insert_follower, (followee, follower, at))
            .await?;
        Ok(new)
    }

    async fn unfollow(&self, follower: &str, followee: &str) -> StoreResult<bool> {
        let st = &self.st.social;
        let gone = self.lwt(&st.delete_follow, (follower, followee)).await?;
        if gone {
            self.write(&st.count_followers, (Counter(-1), followee))
                .await?;
        }
        self.write(&st.delete_follower, (followee, follower))
            .await?;
        Ok(gone)
    }

    async fn follower_count(&self, followee: &str) -> StoreResult<i64> {
        Ok(self
            .row::<(Option<Counter>,)>(&self.st.social.follower_count, (followee,))
            .await?
            .and_then(|(c,)| c)
            .map_or(0, |c| c.0)
            .max(0))
    }

    async fn is_following(&self, follower: &str, followee: &str) -> StoreResult<bool> {
        Ok(self
            .row::<(String,)>(&self.st.social.follow_of, (follower, followee))
            .await?
            .is_some())
    }

    async fn following(
        &self,
        follower: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let limit = limit.min(i32::MAX as usize) as i32;
        Ok(self
            .rows::<(String,)>(&self.st.social.following, (follower, after, limit))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect())
    }

    async fn followers(
        &self,
        followee: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let limit = limit.min(i32::MAX as usize) as i32;
        Ok(self
            .rows::<(String,)>(&self.st.social.followers, (followee, after, limit))
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect())
    }
}

#[async_trait]
impl TrendStore for ScyllaStore {
    async fn count_tag_use(
        &self,
        tag: &str,
        day: i64,
        account: &str,
        delta: i64,
    ) -> StoreResult<()> {
        let st = &self.st.social;
        for _ in 0..CAS_ROUNDS {
            let before = self
                .row::<(i32,)>(&st.account_uses, (tag, day, account))
                .await?
                .map_or(0, |(u,)| i64::from(u));
            let after = (before + delta).max(0);
            if after == before {
                return Ok(());
            }
            let applied = match (before, after) {
                (0, n) => {
                    self.lwt(&st.insert_account_uses, (tag, day, account, n as i32))
                        .await?
                }
                (b, 0) => {
                    self.lwt(&st.delete_account_uses, (tag, day, account, b as i32))
                        .await?
                }
                (b, n) => {
                    self.lwt(
                        &st.update_account_uses,
                        (n as i32, tag, day, account, b as i32),
                    )
                    .await?
                }
            };
            if applied {
                let accounts: i64 = match (before, after) {
                    (0, _) => 1,
                    (_, 0) => -1,
                    _ => 0,
                };
                return self
                    .write(
                        &st.count_tag,
                        (Counter(after - before), Counter(accounts), tag, day),
                    )
                    .await;
            }
        }
        Err(unavailable("a tag's use count kept changing under us"))
    }

    async fn tag_days(&self, tag: &str, days: &[i64]) -> StoreResult<Vec<TagDay>> {
        let st = &self.st.social;
        let found =
            try_join_all(days.iter().map(|day| {
                self.row::<(Option<Counter>, Option<Counter>)>(&st.tag_day, (tag, *day))
            }))
            .await?;
        Ok(days
            .iter()
            .zip(found)
            .map(|(day, f)| {
                let (uses, accounts) = f.unwrap_or((None, None));
                TagDay {
                    day: *day,
                    uses: uses.map_or(0, |c| c.0).max(0),
                    accounts: accounts.map_or(0, |c| c.0).max(0),
                }
            })
            .collect())
    }

    async fn tag_peak(&self, tag: &str) -> StoreResult<Option<(f64, i64)>> {
        self.row::<(f64, i64)>(&self.st.social.peak, (tag,)).await
    }

    async fn set_tag_peak(&self, tag: &str, score: f64, at: i64) -> StoreResult<()> {
        let st = &self.st.social;
        self.write(&st.list_peak, (at.div_euclid(DAY_MS), tag))
            .await?;
        self.write(&st.set_peak, (tag, score, at)).await
    }

    async fn tags_peaked_on(&self, days: &[i64]) -> StoreResult<Vec<String>> {
        let st = &self.st.social;
        let lists = try_join_all(
            days.iter()
                .map(|day| self.rows::<(String,)>(&st.peaked_on, (*day,))),
        )
        .await?;
        Ok(lists.into_iter().flatten().map(|(t,)| t).collect())
    }
}

type ActivityRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

#[async_trait]
impl ActivityStore for ScyllaStore {
    async fn add_activity(&self, a: &ActivityRecord) -> StoreResult<()> {
        self.write(
            &self.st.social.insert_activity,
            (
                &a.user_id,
                a.created_at,
                &a.id,
                &a.kind,
                &a.actor_id,
                &a.post_id,
                &a.comment_id,
            ),
        )
        .await
    }

    async fn activities(
        &self,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<ActivityRecord>> {
        let st = &self.st.social;
        let limit = limit.min(i32::MAX as usize) as i32;
        let rows = match before {
            Some((at, id)) => {
                self.rows::<ActivityRow>(&st.activities_before, (user_id, at, id, limit))
                    .await?
            }
            None => {
                self.rows::<ActivityRow>(&st.activities, (user_id, limit))
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|r| ActivityRecord {
                id: r.0,
                user_id: r.1,
                kind: r.2,
                actor_id: r.3,
                post_id: r.4,
                comment_id: r.5,
                created_at: r.6,
            })
            .collect())
    }
}
