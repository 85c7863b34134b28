-- Dovie embedded store, schema version 14: the social network (SOC-1..5). Posts
-- (`user_posts`, counts kept on the row and changed in the same transaction as the like or
-- comment that changes them), `post_likes`, `post_comments`, `follows`, and hashtag trends kept
-- incrementally from public posts: uses and distinct accounts per tag and day, each account's
-- uses of a tag that day (so a deleted post takes its account away only with its last use),
-- and each tag's peak score.

CREATE TABLE IF NOT EXISTS user_posts (
    id TEXT PRIMARY KEY,
    author_id TEXT NOT NULL,
    business_id TEXT,
    content TEXT NOT NULL,
    hashtags TEXT NOT NULL,
    mentions TEXT NOT NULL,
    attachments TEXT NOT NULL,
    visibility TEXT NOT NULL,
    like_count INTEGER NOT NULL DEFAULT 0,
    comment_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    edited_at INTEGER,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS user_posts_by_author
    ON user_posts (author_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Public posts by hashtag, newest first (kept by every write of a post).
CREATE TABLE IF NOT EXISTS post_tags (
    tag TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    post_id TEXT NOT NULL,
    PRIMARY KEY (tag, created_at, post_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS post_likes (
    post_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS post_comments (
    id TEXT PRIMARY KEY,
    post_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    content TEXT NOT NULL,
    reply_to TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS post_comments_by_post ON post_comments (post_id, created_at, id);
CREATE INDEX IF NOT EXISTS post_comments_by_parent ON post_comments (reply_to)
    WHERE reply_to IS NOT NULL;

CREATE TABLE IF NOT EXISTS follows (
    follower_id TEXT NOT NULL,
    followee_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follows_by_followee ON follows (followee_id, follower_id);

CREATE TABLE IF NOT EXISTS tag_days (
    tag TEXT NOT NULL,
    day INTEGER NOT NULL,
    uses INTEGER NOT NULL,
    accounts INTEGER NOT NULL,
    PRIMARY KEY (tag, day)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tag_day_accounts (
    tag TEXT NOT NULL,
    day INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    uses INTEGER NOT NULL,
    PRIMARY KEY (tag, day, account_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tag_peaks (
    tag TEXT PRIMARY KEY,
    score REAL NOT NULL,
    at INTEGER NOT NULL,
    day INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tag_peaks_by_day ON tag_peaks (day);

-- What happened to each user (likes, comments, replies, follows, mentions), newest first.
CREATE TABLE IF NOT EXISTS activities (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    post_id TEXT,
    comment_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS activities_by_user ON activities (user_id, created_at DESC, id DESC);
