//! The social network (SOC-1..5): who may see a post, how a post is shown to a viewer, and
//! hashtag trends ([`trends`]). Every read path — a post by id, a user's posts, the feed, likes,
//! comments — asks [`can_see`]: the author and admins see everything; otherwise nobody blocked
//! either way sees anything, public posts are seen by everyone else, followers-only posts by
//! the author's followers (a business post's: the business's followers).

pub mod trends;

use serde_json::{json, Value};

use crate::store::{PostCursor, PostRecord, SharedStore, StoreResult, Visibility};

/// The longest post, in characters.
pub const MAX_POST_CHARS: usize = 5000;
/// The longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Who is looking: their id and whether they are an admin.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub id: &'a str,
    pub admin: bool,
}

/// Whether `viewer` may see `p`.
pub async fn can_see(store: &SharedStore, viewer: Viewer<'_>, p: &PostRecord) -> StoreResult<bool> {
    if p.author_id == viewer.id || viewer.admin {
        return Ok(true);
    }
    if store.blocked_either(viewer.id, &p.author_id).await? {
        return Ok(false);
    }
    Ok(match p.visibility {
        Visibility::Public => true,
        // A business's followers-only post is for the business's followers.
        Visibility::Followers => store.is_following(viewer.id, p.feed_key()).await?,
    })
}

/// Pages of posts read for one answered page at most (the rest may be hidden from the viewer).
const MAX_ROUNDS: usize = 10;

/// A page of the posts under `keys` (users or businesses, see [`PostRecord::feed_key`]) that
/// `viewer` may see, newest first, strictly older than `before`; and where the next page
/// starts (`None`: no more). Posts the viewer may not see are skipped, reading on until the page
/// is full — a bounded number of rounds: then the page is short and the cursor says where to go
/// on. What the feed, a user's posts and a business's posts answer.
pub async fn page(
    store: &SharedStore,
    viewer: Viewer<'_>,
    keys: &[String],
    before: Option<PostCursor>,
    limit: usize,
) -> StoreResult<(Vec<PostRecord>, Option<PostCursor>)> {
    let mut cursor = before;
    let mut shown = Vec::new();
    let mut next = None;
    for _ in 0..MAX_ROUNDS {
        let batch = store.posts_by_authors(keys, cursor.as_ref(), limit).await?;
        let exhausted = batch.len() < limit;
        for p in batch {
            let visible = can_see(store, viewer, &p).await?;
            cursor = Some(PostCursor::of(&p));
            if visible {
                shown.push(p);
                if shown.len() == limit {
                    break;
                }
            }
        }
        let full = shown.len() == limit;
        next = if full || !exhausted {
            cursor.clone()
        } else {
            None
        };
        if full || exhausted {
            break;
        }
    }
    Ok((shown, next))
}

/// Posts as `viewer_id` sees them (`liked_by_me` filled in).
pub async fn views(
    store: &SharedStore,
    viewer_id: &str,
    posts: &[PostRecord],
) -> StoreResult<Vec<Value>> {
    let ids: Vec<String> = posts.iter().map(|p| p.id.clone()).collect();
    let liked = store.liked_posts(viewer_id, &ids).await?;
    Ok(posts
        .iter()
        .map(|p| view(p, liked.contains(&p.id)))
        .collect())
}

/// A post as the API shows it.
pub fn view(p: &PostRecord, liked_by_me: bool) -> Value {
    let mut v = json!({
        "id": p.id,
        "author_id": p.author_id,
        "content": p.content,
        "hashtags": p.hashtags,
        "mentions": p.mentions,
        "attachments": p.attachments,
        "visibility": p.visibility.as_str(),
        "like_count": p.like_count,
        "comment_count": p.comment_count,
        "liked_by_me": liked_by_me,
        "created_at": p.created_at,
    });
    if let Some(b) = &p.business_id {
        v["business_id"] = json!(b);
    }
    if let Some(e) = p.edited_at {
        v["edited_at"] = json!(e);
    }
    v
}

/// The share a post's attachments are shared under (the file store's "room" of a share).
pub fn share_key(post_id: &str) -> String {
    format!("post:{post_id}")
}

/// The post a file share belongs to, if it is a post's.
pub fn post_of_share(key: &str) -> Option<&str> {
    key.strip_prefix("post:")
}

/// A cursor of a list ordered by time, then id: `created_at.id`.
pub fn time_cursor(at: i64, id: &str) -> String {
    format!("{at}.{id}")
}

/// Reads a cursor written by [`time_cursor`]; any other text is none (the list's start).
pub fn parse_time_cursor(text: &str) -> Option<(i64, String)> {
    let (at, id) = text.split_once('.')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// The cursor after `p` in a newest-first list of posts.
pub fn cursor_text(p: &PostRecord) -> String {
    time_cursor(p.created_at, &p.id)
}

/// Reads a cursor written by [`cursor_text`]; any other text starts from the newest.
pub fn parse_cursor(text: &str) -> Option<crate::store::PostCursor> {
    let (created_at, id) = parse_time_cursor(text)?;
    Some(crate::store::PostCursor { created_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_starts_over() {
        let c = parse_cursor("1700000000000.0190-abc.def").expect("a cursor");
        assert_eq!(c.created_at, 1_700_000_000_000);
        assert_eq!(c.id, "0190-abc.def");
        assert!(parse_cursor("").is_none());
        assert!(parse_cursor("x.y").is_none());
        assert!(parse_cursor("12").is_none());
    }
}
