//! The social network in the embedded store: `user_posts` (counts on the row, changed in the
//! transaction of the like or comment that changes them), `post_likes`, `post_comments`,
//! `follows`, the hashtag trend counters (`tag_days`, `tag_day_accounts`, `tag_peaks`) and each
//! user's `activities`.

use super::*;

const POST_COLS: &str = "id, author_id, business_id, content, hashtags, mentions, attachments, \
                         visibility, like_count, comment_count, created_at, edited_at";
pub(super) const COMMENT_COLS: &str = "id, post_id, author_id, content, reply_to, created_at";

fn post(r: &Row) -> rusqlite::Result<PostRecord> {
    let hashtags: String = r.get(4)?;
    let mentions: String = r.get(5)?;
    let attachments: String = r.get(6)?;
    let visibility: String = r.get(7)?;
    Ok(PostRecord {
        id: r.get(0)?,
        author_id: r.get(1)?,
        business_id: r.get(2)?,
        content: r.get(3)?,
        hashtags: serde_json::from_str(&hashtags).unwrap_or_default(),
        mentions: serde_json::from_str(&mentions).unwrap_or_default(),
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        visibility: Visibility::parse(&visibility).unwrap_or(Visibility::Followers),
        like_count: r.get(8)?,
        comment_count: r.get(9)?,
        created_at: r.get(10)?,
        edited_at: r.get(11)?,
    })
}

pub(super) fn comment(r: &Row) -> rusqlite::Result<CommentRecord> {
    Ok(CommentRecord {
        id: r.get(0)?,
        post_id: r.get(1)?,
        author_id: r.get(2)?,
        content: r.get(3)?,
        reply_to: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Indexes a public post under its hashtags, or takes it out of the index.
fn index_tags(c: &Connection, p: &PostRecord, add: bool) -> StoreResult<()> {
    if p.visibility != Visibility::Public {
        return Ok(());
    }
    let sql = if add {
        "INSERT INTO post_tags (tag, created_at, post_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM post_tags WHERE tag = ?1 AND created_at = ?2 AND post_id = ?3"
    };
    let mut st = db(c.prepare_cached(sql))?;
    for tag in &p.hashtags {
        db(st.execute(params![tag, p.created_at, p.id]))?;
    }
    Ok(())
}

/// The post `id` as stored, unless deleted.
fn stored_post(c: &Connection, id: &str) -> StoreResult<Option<PostRecord>> {
    let mut st = db(c.prepare_cached(&format!(
        "SELECT {POST_COLS} FROM user_posts WHERE id = ?1 AND deleted_at IS NULL"
    )))?;
    db(st.query_row([id], post).optional())
}

/// Whether the post `id` exists and is not deleted.
fn live_post(c: &Connection, id: &str) -> StoreResult<bool> {
    db(
        c.prepare_cached("SELECT 1 FROM user_posts WHERE id = ?1 AND deleted_at IS NULL")
            .and_then(|mut st| st.exists([id])),
    )
}

#[async_trait]
impl PostStore for SqliteStore {
    async fn create_post(&self, p: &PostRecord) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            db(c.execute(
                &format!(
                    "INSERT INTO user_posts ({POST_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, ?9, ?10)"
                ),
                params![
                    p.id,
                    p.author_id,
                    p.business_id,
                    p.content,
                    json(&p.hashtags),
                    json(&p.mentions),
                    json(&p.attachments),
                    p.visibility.as_str(),
                    p.created_at,
                    p.edited_at
                ],
            ))?;
            index_tags(c, &p, true)
        })
        .await
    }

    async fn post(&self, id: &str) -> StoreResult<Option<PostRecord>> {
        let id = id.to_string();
        self.read(move |c| stored_post(c, &id)).await
    }

    async fn update_post(&self, p: &PostRecord) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            let Some(before) = stored_post(c, &p.id)? else {
                return Ok(());
            };
            index_tags(c, &before, false)?;
            index_tags(c, &p, true)?;
            db(c.execute(
                "UPDATE user_posts SET content = ?2, hashtags = ?3, mentions = ?4, \
                 attachments = ?5, visibility = ?6, edited_at = ?7 \
                 WHERE id = ?1 AND deleted_at IS NULL",
                params![
                    p.id,
                    p.content,
                    json(&p.hashtags),
                    json(&p.mentions),
                    json(&p.attachments),
                    p.visibility.as_str(),
                    p.edited_at
                ],
            ))?;
            Ok(())
        })
        .await
    }

    async fn delete_post(&self, id: &str, at: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            if let Some(before) = stored_post(c, &id)? {
                index_tags(c, &before, false)?;
            }
            let gone = db(c.execute(
                "UPDATE user_posts SET deleted_at = ?2, content = '', attachments = '[]' \
                 WHERE id = ?1 AND deleted_at IS NULL",
                params![id, at],
            ))? == 1;
            if gone {
                db(c.execute("DELETE FROM post_likes WHERE post_id = ?1", [&id]))?;
                db(c.execute("DELETE FROM post_comments WHERE post_id = ?1", [&id]))?;
            }
            Ok(gone)
        })
        .await
    }

    async fn posts_by_authors(
        &self,
        authors: &[String],
        before: Option<&PostCursor>,
        limit: usize,
    ) -> StoreResult<Vec<PostRecord>> {
        let authors = authors.to_vec();
        let (at, id) = before.map_or((i64::MAX, String::new()), |b| (b.created_at, b.id.clone()));
        self.read(move |c| {
            // Each author's newest `limit` (time and id only, read from the feed-key index
            // alone), merged; then only the page's rows are read: never a scan of everyone's
            // posts, and 20 rows parsed for a page across 500 authors, not 10,000.
            let mut st = db(c.prepare_cached(
                "SELECT created_at, id FROM user_posts \
                 WHERE coalesce(business_id, author_id) = ?1 AND deleted_at IS NULL \
                 AND (created_at < ?2 OR (created_at = ?2 AND ?3 != '' AND id < ?3)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?4",
            ))?;
            let mut listed: Vec<(i64, String)> = Vec::new();
            for a in &authors {
                let rows = db(st.query_map(params![a, at, id, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                }))?;
                for r in rows {
                    listed.push(db(r)?);
                }
            }
            listed.sort_by(|a, b| b.cmp(a));
            listed.truncate(limit);
            let mut all = Vec::with_capacity(listed.len());
            for (_, id) in &listed {
                if let Some(p) = stored_post(c, id)? {
                    all.push(p);
                }
            }
            Ok(all)
        })
        .await
    }

    async fn public_posts_tagged(&self, tag: &str, limit: usize) -> StoreResult<Vec<PostRecord>> {
        let tag = tag.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT post_id FROM post_tags WHERE tag = ?1 \
                 ORDER BY created_at DESC, post_id DESC LIMIT ?2",
            ))?;
            let ids: Vec<String> = db(st
                .query_map(params![tag, limit as i64], |r| r.get(0))
                .and_then(|rows| rows.collect()))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(p) = stored_post(c, &id)? {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn like_post(&self, post_id: &str, user_id: &str, at: i64) -> StoreResult<bool> {
        let (post_id, user_id) = (post_id.to_string(), user_id.to_string());
        self.write(move |c| {
            if !live_post(c, &post_id)? {
                return Ok(false);
            }
            let new = db(c.execute(
                "INSERT INTO post_likes (post_id, user_id, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                params![post_id, user_id, at],
            ))? == 1;
            if new {
                db(c.execute(
                    "UPDATE user_posts SET like_count = like_count + 1 WHERE id = ?1",
                    [&post_id],
                ))?;
            }
            Ok(new)
        })
        .await
    }

    async fn unlike_post(&self, post_id: &str, user_id: &str) -> StoreResult<bool> {
        let (post_id, user_id) = (post_id.to_string(), user_id.to_string());
        self.write(move |c| {
            let gone = db(c.execute(
                "DELETE FROM post_likes WHERE post_id = ?1 AND user_id = ?2",
                params![post_id, user_id],
            ))? == 1;
            if gone {
                db(c.execute(
                    "UPDATE user_posts SET like_count = like_count - 1 WHERE id = ?1",
                    [&post_id],
                ))?;
            }
            Ok(gone)
        })
        .await
    }

    async fn liked_posts(&self, user_id: &str, post_ids: &[String]) -> StoreResult<Vec<String>> {
        let (user_id, ids) = (user_id.to_string(), post_ids.to_vec());
        self.read(move |c| {
            let mut st = db(
                c.prepare_cached("SELECT 1 FROM post_likes WHERE post_id = ?1 AND user_id = ?2")
            )?;
            let mut out = Vec::new();
            for id in ids {
                if db(st.exists(params![id, user_id]))? {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn add_comment(&self, cm: &CommentRecord) -> StoreResult<()> {
        let cm = cm.clone();
        self.write(move |c| {
            if !live_post(c, &cm.post_id)? {
                return Err(not_found("post"));
            }
            db(c.execute(
                &format!(
                    "INSERT INTO post_comments ({COMMENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![
                    cm.id,
                    cm.post_id,
                    cm.author_id,
                    cm.content,
                    cm.reply_to,
                    cm.created_at
                ],
            ))?;
            db(c.execute(
                "UPDATE user_posts SET comment_count = comment_count + 1 WHERE id = ?1",
                [&cm.post_id],
            ))?;
            Ok(())
        })
        .await
    }

    async fn comment(&self, id: &str) -> StoreResult<Option<CommentRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {COMMENT_COLS} FROM post_comments WHERE id = ?1"
            )))?;
            db(st.query_row([&id], comment).optional())
        })
        .await
    }

    async fn comments(
        &self,
        post_id: &str,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>> {
        let post_id = post_id.to_string();
        let (at, id) = after.unwrap_or((i64::MIN, String::new()));
        self.read(move |c| {
            let mut st = db(c.prepare_cached(&format!(
                "SELECT {COMMENT_COLS} FROM post_comments WHERE post_id = ?1 \
                 AND (created_at > ?2 OR (created_at = ?2 AND id > ?3)) \
                 ORDER BY created_at, id LIMIT ?4"
            )))?;
            let rows = db(st.query_map(params![post_id, at, id, limit as i64], comment))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn delete_comment(&self, cm: &CommentRecord) -> StoreResult<usize> {
        let cm = cm.clone();
        self.write(move |c| {
            let gone = db(c.execute(
                "DELETE FROM post_comments WHERE id = ?1 OR reply_to = ?1",
                [&cm.id],
            ))?;
            if gone > 0 {
                db(c.execute(
                    "UPDATE user_posts SET comment_count = comment_count - ?2 WHERE id = ?1",
                    params![cm.post_id, gone as i64],
                ))?;
            }
            Ok(gone)
        })
        .await
    }
}

#[async_trait]
impl FollowStore for SqliteStore {
    async fn follow(&self, follower: &str, followee: &str, at: i64) -> StoreResult<bool> {
        let (a, b) = (follower.to_string(), followee.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                params![a, b, at],
            ))? == 1)
        })
        .await
    }

    async fn unfollow(&self, follower: &str, followee: &str) -> StoreResult<bool> {
        let (a, b) = (follower.to_string(), followee.to_string());
        self.write(move |c| {
            Ok(db(c.execute(
                "DELETE FROM follows WHERE follower_id = ?1 AND followee_id = ?2",
                params![a, b],
            ))? == 1)
        })
        .await
    }

    async fn follower_count(&self, followee: &str) -> StoreResult<i64> {
        let id = followee.to_string();
        self.read(move |c| {
            db(
                c.prepare_cached("SELECT count(*) FROM follows WHERE followee_id = ?1")
                    .and_then(|mut st| st.query_row([&id], |r| r.get(0))),
            )
        })
        .await
    }

    async fn is_following(&self, follower: &str, followee: &str) -> StoreResult<bool> {
        let (a, b) = (follower.to_string(), followee.to_string());
        self.read(move |c| {
            db(c.prepare_cached(
                "SELECT 1 FROM follows WHERE follower_id = ?1 AND followee_id = ?2",
            )
            .and_then(|mut st| st.exists(params![a, b])))
        })
        .await
    }

    async fn following(
        &self,
        follower: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let (a, after) = (follower.to_string(), after.to_string());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT followee_id FROM follows WHERE follower_id = ?1 AND followee_id > ?2 \
                 ORDER BY followee_id LIMIT ?3",
            ))?;
            let rows = db(st.query_map(params![a, after, limit as i64], |r| r.get(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn followers(
        &self,
        followee: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let (b, after) = (followee.to_string(), after.to_string());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT follower_id FROM follows WHERE followee_id = ?1 AND follower_id > ?2 \
                 ORDER BY follower_id LIMIT ?3",
            ))?;
            let rows = db(st.query_map(params![b, after, limit as i64], |r| r.get(0)))?;
            rows.map(db).collect()
        })
        .await
    }
}

#[async_trait]
impl TrendStore for SqliteStore {
    async fn count_tag_use(
        &self,
        tag: &str,
        day: i64,
        account: &str,
        delta: i64,
    ) -> StoreResult<()> {
        let (tag, account) = (tag.to_string(), account.to_string());
        self.write(move |c| {
            let before: i64 = db(c
                .query_row(
                    "SELECT uses FROM tag_day_accounts WHERE tag = ?1 AND day = ?2 AND account_id = ?3",
                    params![tag, day, account],
                    |r| r.get(0),
                )
                .optional())?
            .unwrap_or(0);
            let after = (before + delta).max(0);
            if after == before {
                return Ok(());
            }
            if after == 0 {
                db(c.execute(
                    "DELETE FROM tag_day_accounts WHERE tag = ?1 AND day = ?2 AND account_id = ?3",
                    params![tag, day, account],
                ))?;
            } else {
                db(c.execute(
                    "INSERT INTO tag_day_accounts (tag, day, account_id, uses) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (tag, day, account_id) DO UPDATE SET uses = excluded.uses",
                    params![tag, day, account, after],
                ))?;
            }
            let accounts = match (before, after) {
                (0, _) => 1,
                (_, 0) => -1,
                _ => 0,
            };
            db(c.execute(
                "INSERT INTO tag_days (tag, day, uses, accounts) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tag, day) DO UPDATE SET uses = uses + excluded.uses, \
                 accounts = accounts + excluded.accounts",
                params![tag, day, after - before, accounts],
            ))?;
            Ok(())
        })
        .await
    }

    async fn tag_days(&self, tag: &str, days: &[i64]) -> StoreResult<Vec<TagDay>> {
        let (tag, days) = (tag.to_string(), days.to_vec());
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT uses, accounts FROM tag_days WHERE tag = ?1 AND day = ?2",
            ))?;
            days.into_iter()
                .map(|day| {
                    let (uses, accounts) = db(st
                        .query_row(params![tag, day], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional())?
                    .unwrap_or((0, 0));
                    Ok(TagDay {
                        day,
                        uses,
                        accounts,
                    })
                })
                .collect()
        })
        .await
    }

    async fn tag_peak(&self, tag: &str) -> StoreResult<Option<(f64, i64)>> {
        let tag = tag.to_string();
        self.read(move |c| {
            db(c.query_row(
                "SELECT score, at FROM tag_peaks WHERE tag = ?1",
                [&tag],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional())
        })
        .await
    }

    async fn set_tag_peak(&self, tag: &str, score: f64, at: i64) -> StoreResult<()> {
        let tag = tag.to_string();
        let day = at.div_euclid(DAY_MS);
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO tag_peaks (tag, score, at, day) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tag) DO UPDATE SET score = excluded.score, at = excluded.at, \
                 day = excluded.day",
                params![tag, score, at, day],
            ))?;
            Ok(())
        })
        .await
    }

    async fn tags_peaked_on(&self, days: &[i64]) -> StoreResult<Vec<String>> {
        let days = days.to_vec();
        self.read(move |c| {
            let mut st = db(c.prepare_cached("SELECT tag FROM tag_peaks WHERE day = ?1"))?;
            let mut out = Vec::new();
            for day in days {
                let rows = db(st.query_map([day], |r| r.get::<_, String>(0)))?;
                for r in rows {
                    out.push(db(r)?);
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl ActivityStore for SqliteStore {
    async fn add_activity(&self, a: &ActivityRecord) -> StoreResult<()> {
        let a = a.clone();
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO activities (id, user_id, kind, actor_id, post_id, comment_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![a.id, a.user_id, a.kind, a.actor_id, a.post_id, a.comment_id, a.created_at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn activities(
        &self,
        user_id: &str,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> StoreResult<Vec<ActivityRecord>> {
        let user_id = user_id.to_string();
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        self.read(move |c| {
            let mut st = db(c.prepare_cached(
                "SELECT id, user_id, kind, actor_id, post_id, comment_id, created_at FROM activities \
                 WHERE user_id = ?1 AND (created_at < ?2 OR (created_at = ?2 AND ?3 != '' AND id < ?3)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?4",
            ))?;
            let rows = db(st.query_map(params![user_id, at, id, limit as i64], |r| {
                Ok(ActivityRecord {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    kind: r.get(2)?,
                    actor_id: r.get(3)?,
                    post_id: r.get(4)?,
                    comment_id: r.get(5)?,
                    created_at: r.get(6)?,
                })
            }))?;
            rows.map(db).collect()
        })
        .await
    }
}
