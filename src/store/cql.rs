//! The cluster store: ScyllaDB over CQL (the `scylla` driver, 1.x API), portable to Apache
//! Cassandra, which the test suite runs as the CQL server.
//!
//! Every statement is prepared once at connect and kept in [`Stmts`]; the driver routes each to a
//! replica of its partition (token-aware by default). Writes run under a semaphore that bounds
//! how many are in flight. Messages live in `((room_id, bucket), seq)` partitions of
//! [`BUCKET_SIZE`] seqs. The room's owner is its single writer, so appends, nonces and read marks
//! need no lightweight transactions; registration, direct-room creation and refresh-token
//! rotation (rare, and racing across nodes) use them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use dovie_actors::ports::{AppendError, AppendOutcome, Draft, ReceiptKind, RoomSnapshot};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::{Message, MessageKind, Role, Room, RoomType, User};
use futures_util::future::try_join_all;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use tokio::sync::Semaphore;

use super::*;

/// Seqs per message partition.
pub const BUCKET_SIZE: u64 = 4096;
/// Writes in flight at most, per node.
const MAX_INFLIGHT_WRITES: usize = 256;
/// Prefixes indexed for search, in characters.
const MIN_PREFIX: usize = super::text::MIN_PREFIX_CHARS;
const MAX_PREFIX: usize = 12;
/// Search candidates read per room.
const SEARCH_CANDIDATES: i32 = 500;
const DAY_MS: i64 = 86_400_000;

const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../../schema/scylla/0001_init.cql"))];

const MSG_COLS: &str =
    "room_id, seq, id, sender_id, kind, content, nonce, reply_to, hashtags, reactions, \
                        attachments, created_at, edited_at, deleted";

type MsgRow = (
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<Vec<String>>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<bool>,
);

fn bucket(seq: u64) -> i64 {
    (seq / BUCKET_SIZE) as i64
}

fn unavailable(cause: impl std::fmt::Display) -> ErrorBody {
    super::unavailable_from("cql", cause)
}

fn to_message(r: MsgRow) -> Message {
    Message {
        room_id: r.0,
        seq: r.1 as u64,
        id: r.2,
        sender_id: r.3,
        kind: MessageKind::parse(&r.4).unwrap_or(MessageKind::Text),
        content: r.5,
        nonce: r.6,
        reply_to: r.7,
        hashtags: r.8.unwrap_or_default(),
        reactions: r
            .9
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        attachments: r
            .10
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
        created_at: r.11,
        edited_at: r.12,
        deleted: r.13.unwrap_or(false),
    }
}

/// Checks a keyspace name: it is spliced into DDL, so only `[A-Za-z0-9_]`, 1..=48 characters.
pub fn valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every statement, prepared once.
struct Stmts {
    insert_user: PreparedStatement,
    claim_email: PreparedStatement,
    user_by_id: PreparedStatement,
    user_exists: PreparedStatement,
    user_id_by_email: PreparedStatement,
    password_of: PreparedStatement,
    set_last_seen: PreparedStatement,
    insert_session: PreparedStatement,
    insert_refresh: PreparedStatement,
    refresh_by_hash: PreparedStatement,
    session_by_id: PreparedStatement,
    use_refresh: PreparedStatement,
    set_session_expiry: PreparedStatement,
    revoke_session: PreparedStatement,
    insert_revoked: PreparedStatement,
    revoked_in_day: PreparedStatement,
    insert_room: PreparedStatement,
    claim_pair: PreparedStatement,
    room_of_pair: PreparedStatement,
    room_by_id: PreparedStatement,
    room_last_seq: PreparedStatement,
    room_epoch: PreparedStatement,
    claim_epoch: PreparedStatement,
    claim_first_epoch: PreparedStatement,
    commit_last_seq: PreparedStatement,
    rename_room: PreparedStatement,
    delete_room: PreparedStatement,
    delete_members: PreparedStatement,
    delete_bucket: PreparedStatement,
    insert_member: PreparedStatement,
    members_of: PreparedStatement,
    member_marks: PreparedStatement,
    delete_member: PreparedStatement,
    set_role: PreparedStatement,
    set_read: PreparedStatement,
    set_delivered: PreparedStatement,
    insert_user_room: PreparedStatement,
    delete_user_room: PreparedStatement,
    rooms_of_user: PreparedStatement,
    insert_message: PreparedStatement,
    insert_message_id: PreparedStatement,
    insert_nonce: PreparedStatement,
    nonce_seq: PreparedStatement,
    message_at: PreparedStatement,
    message_loc: PreparedStatement,
    messages_desc: PreparedStatement,
    messages_asc: PreparedStatement,
    edit_message: PreparedStatement,
    tombstone: PreparedStatement,
    set_reactions: PreparedStatement,
    insert_like: PreparedStatement,
    delete_like: PreparedStatement,
    delete_likes: PreparedStatement,
    likes_of: PreparedStatement,
    insert_tag: PreparedStatement,
    delete_tag: PreparedStatement,
    messages_by_tag: PreparedStatement,
    insert_term: PreparedStatement,
    term_seqs: PreparedStatement,
}

/// Qualifies the table of a statement with the keyspace (no session-wide `USE`: servers warn
/// about it with prepared statements, and it is ambiguous across sessions).
fn qualify(cql: &str, keyspace: &str) -> String {
    if let Some(rest) = cql.strip_prefix("UPDATE ") {
        return format!("UPDATE {keyspace}.{rest}");
    }
    if let Some(rest) = cql.strip_prefix("INSERT INTO ") {
        return format!("INSERT INTO {keyspace}.{rest}");
    }
    cql.replacen(" FROM ", &format!(" FROM {keyspace}."), 1)
}

impl Stmts {
    async fn prepare(s: &Session, keyspace: &str) -> Result<Stmts, String> {
        let p = |cql: String| async move {
            let cql = qualify(&cql, keyspace);
            let mut st = s
                .prepare(cql.clone())
                .await
                .map_err(|e| format!("preparing `{cql}`: {e}"))?;
            st.set_consistency(Consistency::Quorum);
            Ok::<_, String>(st)
        };
        Ok(Stmts {
            insert_user: p("INSERT INTO users (id, email, password_hash, display_name, avatar_url, bio, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)".into()).await?,
            claim_email: p("INSERT INTO users_by_email (email, user_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            user_by_id: p("SELECT id, email, display_name, avatar_url, bio, created_at FROM users WHERE id = ?".into()).await?,
            user_exists: p("SELECT id FROM users WHERE id = ?".into()).await?,
            user_id_by_email: p("SELECT user_id FROM users_by_email WHERE email = ?".into()).await?,
            password_of: p("SELECT password_hash FROM users WHERE id = ?".into()).await?,
            set_last_seen: p("UPDATE users SET last_seen_at = ? WHERE id = ?".into()).await?,
            insert_session: p("INSERT INTO auth_sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)".into()).await?,
            insert_refresh: p("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)".into()).await?,
            refresh_by_hash: p("SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?".into()).await?,
            session_by_id: p("SELECT id, user_id, created_at, expires_at, revoked_at FROM auth_sessions WHERE id = ?".into()).await?,
            use_refresh: p("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? IF used_at = null".into()).await?,
            set_session_expiry: p("UPDATE auth_sessions SET expires_at = ? WHERE id = ?".into()).await?,
            revoke_session: p("UPDATE auth_sessions SET revoked_at = ? WHERE id = ?".into()).await?,
            insert_revoked: p("INSERT INTO revoked_sessions (day, revoked_at, session_id) VALUES (?, ?, ?)".into()).await?,
            revoked_in_day: p("SELECT session_id FROM revoked_sessions WHERE day = ? AND revoked_at >= ?".into()).await?,
            insert_room: p("INSERT INTO chat_rooms (id, type, name, created_by, created_at, last_seq) VALUES (?, ?, ?, ?, ?, 0)".into()).await?,
            claim_pair: p("INSERT INTO direct_rooms (pair, room_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            room_of_pair: p("SELECT room_id FROM direct_rooms WHERE pair = ?".into()).await?,
            room_by_id: p("SELECT id, type, name, created_by, created_at, last_seq FROM chat_rooms WHERE id = ?".into()).await?,
            room_epoch: p("SELECT owner_epoch FROM chat_rooms WHERE id = ?".into()).await?,
            claim_epoch: p("UPDATE chat_rooms SET owner_epoch = ? WHERE id = ? IF owner_epoch = ?".into()).await?,
            claim_first_epoch: p("UPDATE chat_rooms SET owner_epoch = ? WHERE id = ? IF owner_epoch = null".into()).await?,
            room_last_seq: p("SELECT last_seq FROM chat_rooms WHERE id = ?".into()).await?,
            commit_last_seq: p("UPDATE chat_rooms SET last_seq = ? WHERE id = ? IF owner_epoch = ? AND last_seq = ?".into()).await?,
            rename_room: p("UPDATE chat_rooms SET name = ? WHERE id = ?".into()).await?,
            delete_room: p("DELETE FROM chat_rooms WHERE id = ?".into()).await?,
            delete_members: p("DELETE FROM room_members WHERE room_id = ?".into()).await?,
            delete_bucket: p("DELETE FROM messages WHERE room_id = ? AND bucket = ?".into()).await?,
            insert_member: p("INSERT INTO room_members (room_id, user_id, role, joined_at, read_seq, delivered_seq) VALUES (?, ?, ?, ?, ?, ?)".into()).await?,
            members_of: p("SELECT user_id, role, joined_at FROM room_members WHERE room_id = ?".into()).await?,
            member_marks: p("SELECT read_seq, delivered_seq FROM room_members WHERE room_id = ? AND user_id = ?".into()).await?,
            delete_member: p("DELETE FROM room_members WHERE room_id = ? AND user_id = ?".into()).await?,
            set_role: p("UPDATE room_members SET role = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            set_read: p("UPDATE room_members SET read_seq = ?, delivered_seq = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            set_delivered: p("UPDATE room_members SET delivered_seq = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            insert_user_room: p("INSERT INTO user_rooms (user_id, room_id) VALUES (?, ?)".into()).await?,
            delete_user_room: p("DELETE FROM user_rooms WHERE user_id = ? AND room_id = ?".into()).await?,
            rooms_of_user: p("SELECT room_id FROM user_rooms WHERE user_id = ?".into()).await?,
            insert_message: p(format!("INSERT INTO messages (bucket, epoch, {MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            insert_message_id: p("INSERT INTO messages_by_id (id, room_id, seq, epoch) VALUES (?, ?, ?, ?)".into()).await?,
            insert_nonce: p("INSERT INTO message_nonces (room_id, sender_id, nonce, epoch, seq) VALUES (?, ?, ?, ?, ?)".into()).await?,
            nonce_seq: p("SELECT seq FROM message_nonces WHERE room_id = ? AND sender_id = ? AND nonce = ?".into()).await?,
            message_at: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq = ? ORDER BY seq DESC LIMIT 1")).await?,
            message_loc: p("SELECT room_id, seq, epoch FROM messages_by_id WHERE id = ?".into()).await?,
            messages_desc: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?")).await?,
            messages_asc: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?")).await?,
            edit_message: p("UPDATE messages SET content = ?, hashtags = ?, edited_at = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            tombstone: p("UPDATE messages SET content = '', hashtags = [], reactions = '{}', attachments = '[]', deleted = true, edited_at = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            set_reactions: p("UPDATE messages SET reactions = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            insert_like: p("INSERT INTO message_likes (message_id, emoji, user_id, created_at) VALUES (?, ?, ?, ?)".into()).await?,
            delete_like: p("DELETE FROM message_likes WHERE message_id = ? AND emoji = ? AND user_id = ?".into()).await?,
            delete_likes: p("DELETE FROM message_likes WHERE message_id = ?".into()).await?,
            likes_of: p("SELECT emoji, user_id, created_at FROM message_likes WHERE message_id = ?".into()).await?,
            insert_tag: p("INSERT INTO message_hashtags (tag, created_at, message_id, room_id) VALUES (?, ?, ?, ?)".into()).await?,
            delete_tag: p("DELETE FROM message_hashtags WHERE tag = ? AND created_at = ? AND message_id = ?".into()).await?,
            messages_by_tag: p("SELECT message_id, room_id FROM message_hashtags WHERE tag = ?".into()).await?,
            insert_term: p("INSERT INTO message_terms (room_id, term, seq) VALUES (?, ?, ?)".into()).await?,
            term_seqs: p("SELECT seq FROM message_terms WHERE room_id = ? AND term = ? LIMIT ?".into()).await?,
        })
    }
}

pub struct ScyllaStore {
    session: Session,
    st: Stmts,
    writes: Semaphore,
}

/// Connects to the contact points (`HOST:PORT,..`) and opens a session without a keyspace.
async fn connect(contact_points: &str) -> Result<Session, String> {
    let mut builder = SessionBuilder::new();
    for node in contact_points
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        builder = builder.known_node(node);
    }
    builder
        .build()
        .await
        .map_err(|e| format!("cannot connect to the CQL cluster at {contact_points}: {e}"))
}

/// Splits a `.cql` file into statements (`;` ending a line), dropping `--` comment lines.
fn statements(cql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in cql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    out
}

/// Creates the keyspace if needed and applies every migration not yet applied.
pub async fn migrate(
    contact_points: &str,
    keyspace: &str,
    replication_factor: u32,
) -> Result<usize, String> {
    if !valid_keyspace(keyspace) {
        return Err(format!(
            "invalid keyspace name `{keyspace}`: use letters, digits and _"
        ));
    }
    let session = connect(contact_points).await?;
    let ddl = |cql: String| {
        let session = &session;
        async move {
            session
                .query_unpaged(cql.clone(), &[])
                .await
                .map_err(|e| format!("`{}`: {e}", cql.lines().next().unwrap_or("")))?;
            session
                .await_schema_agreement()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        }
    };
    ddl(format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}"
    ))
    .await?;
    session
        .use_keyspace(keyspace, false)
        .await
        .map_err(|e| e.to_string())?;
    ddl(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at bigint)"
            .into(),
    )
    .await?;
    let mut ran = 0;
    for (version, cql) in MIGRATIONS {
        let done = session
            .query_unpaged(
                "SELECT version FROM schema_migrations WHERE version = ?",
                (version,),
            )
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?
            .rows_num()
            > 0;
        if done {
            continue;
        }
        for stmt in statements(cql) {
            ddl(stmt).await?;
        }
        session
            .query_unpaged(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, dovie_actors::now_ms()),
            )
            .await
            .map_err(|e| e.to_string())?;
        ran += 1;
    }
    Ok(ran)
}

impl ScyllaStore {
    /// Connects, applies migrations, prepares every statement.
    pub async fn open(
        contact_points: &str,
        keyspace: &str,
        replication_factor: u32,
    ) -> Result<ScyllaStore, String> {
        migrate(contact_points, keyspace, replication_factor).await?;
        let session = connect(contact_points).await?;
        let st = Stmts::prepare(&session, keyspace).await?;
        Ok(ScyllaStore {
            session,
            st,
            writes: Semaphore::new(MAX_INFLIGHT_WRITES),
        })
    }

    /// Runs a prepared write, bounded by the in-flight semaphore.
    async fn write(
        &self,
        st: &PreparedStatement,
        values: impl ::scylla::serialize::row::SerializeRow,
    ) -> StoreResult<()> {
        let _permit = self.writes.acquire().await.map_err(unavailable)?;
        self.session
            .execute_unpaged(st, values)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Runs a lightweight transaction; answers whether it applied.
    async fn lwt(
        &self,
        st: &PreparedStatement,
        values: impl ::scylla::serialize::row::SerializeRow,
    ) -> StoreResult<bool> {
        let _permit = self.writes.acquire().await.map_err(unavailable)?;
        let res = self
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(unavailable)?;
        let rows = res.into_rows_result().map_err(unavailable)?;
        // An LWT answers `[applied]` first; when not applied, the existing values follow.
        let row = rows
            .rows::<::scylla::value::Row>()
            .map_err(unavailable)?
            .next()
            .ok_or_else(|| unavailable("an LWT answered no row"))?
            .map_err(unavailable)?;
        match row.columns.first() {
            Some(Some(::scylla::value::CqlValue::Boolean(applied))) => Ok(*applied),
            _ => Err(unavailable("an LWT answered no [applied] column")),
        }
    }

    /// Rows of a prepared read, deserialized as `R`.
    async fn rows<R>(
        &self,
        st: &PreparedStatement,
        values: impl ::scylla::serialize::row::SerializeRow,
    ) -> StoreResult<Vec<R>>
    where
        R: for<'f, 'm> ::scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let res = self
            .session
            .execute_unpaged(st, values)
            .await
            .map_err(unavailable)?;
        let rows = res.into_rows_result().map_err(unavailable)?;
        let it = rows.rows::<R>().map_err(unavailable)?;
        it.map(|r| r.map_err(unavailable)).collect()
    }

    async fn row<R>(
        &self,
        st: &PreparedStatement,
        values: impl ::scylla::serialize::row::SerializeRow,
    ) -> StoreResult<Option<R>>
    where
        R: for<'f, 'm> ::scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        Ok(self.rows(st, values).await?.into_iter().next())
    }

    async fn load_room(&self, id: &str) -> StoreResult<Option<(Room, u64)>> {
        type RoomRow = (String, String, Option<String>, String, i64, Option<i64>);
        let Some((id, kind, name, created_by, created_at, last_seq)) =
            self.row::<RoomRow>(&self.st.room_by_id, (id,)).await?
        else {
            return Ok(None);
        };
        let mut members = self
            .rows::<(String, String, i64)>(&self.st.members_of, (&id,))
            .await?;
        members.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
        let roles: BTreeMap<String, Role> = members
            .iter()
            .map(|(u, r, _)| (u.clone(), Role::parse(r).unwrap_or(Role::Member)))
            .collect();
        let room = Room {
            id,
            kind: RoomType::parse(&kind).unwrap_or(RoomType::Group),
            name,
            member_ids: members.into_iter().map(|m| m.0).collect(),
            created_by,
            created_at,
            roles,
        };
        Ok(Some((room, last_seq.unwrap_or(0).max(0) as u64)))
    }

    async fn room_or_404(&self, id: &str) -> StoreResult<Room> {
        Ok(self
            .load_room(id)
            .await?
            .ok_or_else(|| not_found("room"))?
            .0)
    }

    async fn last_seq(&self, room_id: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .row::<(Option<i64>,)>(&self.st.room_last_seq, (room_id,))
            .await?
            .map(|(s,)| s.unwrap_or(0).max(0) as u64))
    }

    async fn message_at(&self, room_id: &str, seq: u64) -> StoreResult<Option<Message>> {
        Ok(self
            .row::<MsgRow>(&self.st.message_at, (room_id, bucket(seq), seq as i64))
            .await?
            .map(to_message))
    }

    async fn get_message_by_id(&self, id: &str) -> StoreResult<Option<Message>> {
        Ok(self.locate(id).await?.map(|(m, _)| m))
    }

    /// The message with this id and the epoch of its row — only if it is its seq's message (the
    /// location may outlive it: a deleted room, or a fenced owner's row that never counted).
    async fn locate(&self, id: &str) -> StoreResult<Option<(Message, i64)>> {
        let Some((room_id, seq, epoch)) = self
            .row::<(String, i64, Option<i64>)>(&self.st.message_loc, (id,))
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .message_at(&room_id, seq as u64)
            .await?
            .filter(|m| m.id == id)
            .map(|m| (m, epoch.unwrap_or(0))))
    }

    /// Messages of a room with `lo < seq < hi`, at most `limit`, ascending or descending.
    async fn range(
        &self,
        room_id: &str,
        lo: u64,
        hi: u64,
        limit: usize,
        ascending: bool,
    ) -> StoreResult<Vec<Message>> {
        let Some(last) = self.last_seq(room_id).await? else {
            return Ok(Vec::new());
        };
        let hi = hi.min(last + 1);
        if hi <= lo + 1 {
            return Ok(Vec::new());
        }
        let (first_b, last_b) = (bucket(lo + 1), bucket(hi - 1));
        let mut out = Vec::new();
        let buckets: Vec<i64> = if ascending {
            (first_b..=last_b).collect()
        } else {
            (first_b..=last_b).rev().collect()
        };
        let st = if ascending {
            &self.st.messages_asc
        } else {
            &self.st.messages_desc
        };
        for b in buckets {
            // A seq may have several rows (see the schema): its message is the highest epoch's,
            // last in ascending order and first in descending order. Read a little more than
            // needed and page on by seq while duplicates ate into the page.
            let (mut from, mut to) = (lo, hi);
            loop {
                let want = limit - out.len();
                let ask = (want * 2 + 16) as i32;
                let rows = self
                    .rows::<MsgRow>(st, (room_id, b, from as i64, to as i64, ask))
                    .await?;
                let full = rows.len() == ask as usize;
                let mut page: Vec<Message> = Vec::new();
                for m in rows.into_iter().map(to_message) {
                    match page.last_mut() {
                        Some(prev) if prev.seq == m.seq => {
                            if ascending {
                                *prev = m;
                            }
                        }
                        _ => page.push(m),
                    }
                }
                // The last seq of a full page may have more rows on the next page.
                if full && page.len() > 1 {
                    page.pop();
                }
                let Some(edge) = page.last().map(|m| m.seq) else {
                    break;
                };
                out.extend(page.into_iter().take(want));
                if out.len() >= limit || !full {
                    break;
                }
                if ascending {
                    from = edge;
                } else {
                    to = edge;
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn reactions_of(&self, message_id: &str) -> StoreResult<BTreeMap<String, Vec<String>>> {
        let mut likes = self
            .rows::<(String, String, i64)>(&self.st.likes_of, (message_id,))
            .await?;
        likes.sort_by(|a, b| (a.2, &a.1).cmp(&(b.2, &b.1)));
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (emoji, user, _) in likes {
            map.entry(emoji).or_default().push(user);
        }
        Ok(map)
    }

    /// Index rows for a message's words and their prefixes.
    fn terms(content: &str) -> BTreeSet<String> {
        let mut terms = BTreeSet::new();
        for w in super::text::words(content) {
            let chars: Vec<char> = w.chars().collect();
            for n in MIN_PREFIX..=chars.len().min(MAX_PREFIX) {
                terms.insert(chars[..n].iter().collect());
            }
            terms.insert(w);
        }
        terms
    }

    async fn index(&self, m: &Message) -> StoreResult<()> {
        let terms = try_join_all(
            Self::terms(&m.content)
                .into_iter()
                .map(|t| self.write(&self.st.insert_term, (m.room_id.clone(), t, m.seq as i64))),
        );
        let tags = try_join_all(m.hashtags.iter().map(|tag| {
            self.write(
                &self.st.insert_tag,
                (tag.clone(), m.created_at, m.id.clone(), m.room_id.clone()),
            )
        }));
        futures_util::future::try_join(terms, tags).await?;
        Ok(())
    }

    async fn unindex_tags(&self, m: &Message) -> StoreResult<()> {
        try_join_all(m.hashtags.iter().map(|tag| {
            self.write(
                &self.st.delete_tag,
                (tag.clone(), m.created_at, m.id.clone()),
            )
        }))
        .await?;
        Ok(())
    }

    async fn epoch(&self, room_id: &str) -> StoreResult<u64> {
        Ok(self
            .row::<(Option<i64>,)>(&self.st.room_epoch, (room_id,))
            .await?
            .and_then(|(e,)| e)
            .unwrap_or(0)
            .max(0) as u64)
    }

    /// Claims the room for this node: the next ownership epoch, set with an LWT.
    async fn claim(&self, room_id: &str) -> StoreResult<u64> {
        for _ in 0..10 {
            let current = self
                .row::<(Option<i64>,)>(&self.st.room_epoch, (room_id,))
                .await?
                .and_then(|(e,)| e);
            let applied = match current {
                None => {
                    self.lwt(&self.st.claim_first_epoch, (1i64, room_id))
                        .await?
                }
                Some(e) => self.lwt(&self.st.claim_epoch, (e + 1, room_id, e)).await?,
            };
            if applied {
                return Ok(current.unwrap_or(0).max(0) as u64 + 1);
            }
        }
        Err(unavailable("cannot claim the room: too much contention"))
    }

    async fn my_rooms(&self, user_id: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .rows::<(String,)>(&self.st.rooms_of_user, (user_id,))
            .await?
            .into_iter()
            .map(|(r,)| r)
            .collect())
    }
}

#[async_trait]
impl UserStore for ScyllaStore {
    async fn create_user(&self, record: UserRecord) -> StoreResult<User> {
        let u = &record.user;
        if self
            .row::<(String,)>(&self.st.user_exists, (&u.id,))
            .await?
            .is_some()
        {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "an account with this id exists",
            ));
        }
        if !self.lwt(&self.st.claim_email, (&u.email, &u.id)).await? {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                "an account with this email exists",
            ));
        }
        self.write(
            &self.st.insert_user,
            (
                &u.id,
                &u.email,
                &record.password_hash,
                &u.display_name,
                &u.avatar_url,
                &u.bio,
                u.created_at,
            ),
        )
        .await?;
        Ok(record.user)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let Some((id,)) = self
            .row::<(String,)>(&self.st.user_id_by_email, (email,))
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.user_by_id(&id).await? else {
            return Ok(None);
        };
        let hash = self
            .row::<(Option<String>,)>(&self.st.password_of, (&id,))
            .await?
            .and_then(|(h,)| h)
            .unwrap_or_default();
        Ok(Some(UserRecord {
            user,
            password_hash: hash,
        }))
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        type UserRow = (String, String, String, Option<String>, Option<String>, i64);
        Ok(self
            .row::<UserRow>(&self.st.user_by_id, (id,))
            .await?
            .map(|r| User {
                id: r.0,
                email: r.1,
                display_name: r.2,
                avatar_url: r.3,
                bio: r.4,
                created_at: r.5,
            }))
    }

    async fn existing_users(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        let found = try_join_all(ids.iter().map(|id| async move {
            Ok::<_, ErrorBody>(
                self.row::<(String,)>(&self.st.user_exists, (id,))
                    .await?
                    .map(|_| id.clone()),
            )
        }))
        .await?;
        Ok(found.into_iter().flatten().collect())
    }
}

#[async_trait]
impl AuthStore for ScyllaStore {
    async fn create_session(&self, s: AuthSession, refresh_hash: &str) -> StoreResult<()> {
        self.write(
            &self.st.insert_session,
            (&s.id, &s.user_id, s.created_at, s.expires_at),
        )
        .await?;
        self.write(
            &self.st.insert_refresh,
            (refresh_hash, &s.id, s.created_at, s.expires_at),
        )
        .await
    }

    async fn rotate_refresh(
        &self,
        old: &str,
        new: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Rotation> {
        let Some((session_id, token_expires, used_at)) = self
            .row::<(String, i64, Option<i64>)>(&self.st.refresh_by_hash, (old,))
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        type SessionRow = (String, String, i64, i64, Option<i64>);
        let Some(r) = self
            .row::<SessionRow>(&self.st.session_by_id, (&session_id,))
            .await?
        else {
            return Ok(Rotation::Invalid);
        };
        let mut session = AuthSession {
            id: r.0,
            user_id: r.1,
            created_at: r.2,
            expires_at: r.3,
            revoked_at: r.4,
        };
        if session.revoked_at.is_some() || token_expires <= now {
            return Ok(Rotation::Invalid);
        }
        // Spend the token exactly once, even when two nodes race to rotate it.
        if used_at.is_some() || !self.lwt(&self.st.use_refresh, (now, old)).await? {
            self.revoke_session(&session.id, now).await?;
            session.revoked_at = Some(now);
            return Ok(Rotation::Reused(session));
        }
        self.write(&self.st.insert_refresh, (new, &session.id, now, expires_at))
            .await?;
        self.write(&self.st.set_session_expiry, (expires_at, &session.id))
            .await?;
        session.expires_at = expires_at;
        Ok(Rotation::Rotated(session))
    }

    async fn revoke_session(&self, session_id: &str, at: i64) -> StoreResult<()> {
        type SessionRow = (String, String, i64, i64, Option<i64>);
        let Some(r) = self
            .row::<SessionRow>(&self.st.session_by_id, (session_id,))
            .await?
        else {
            return Ok(());
        };
        if r.4.is_some() {
            return Ok(());
        }
        self.write(&self.st.revoke_session, (at, session_id))
            .await?;
        self.write(&self.st.insert_revoked, (at / DAY_MS, at, session_id))
            .await
    }

    async fn revoked_since(&self, since: i64) -> StoreResult<Vec<String>> {
        let today = dovie_actors::now_ms() / DAY_MS;
        let first = (since.max(0) / DAY_MS).max(today - 60);
        let mut out = Vec::new();
        for day in first..=today.max(first) {
            for (id,) in self
                .rows::<(String,)>(&self.st.revoked_in_day, (day, since))
                .await?
            {
                out.push(id);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl RoomRecords for ScyllaStore {
    async fn create_room(&self, room: Room) -> StoreResult<Created> {
        if room.kind == RoomType::Direct {
            let mut pair = room.member_ids.clone();
            pair.sort();
            let pair = pair.join(":");
            if !self.lwt(&self.st.claim_pair, (&pair, &room.id)).await? {
                // The pair has a room: answer it (it may still be being written by its creator).
                for _ in 0..50 {
                    let existing = self
                        .rows::<(String,)>(&self.st.room_of_pair, (&pair,))
                        .await?;
                    if let Some((id,)) = existing.into_iter().next() {
                        if let Some((r, _)) = self.load_room(&id).await? {
                            if r.member_ids.len() == 2 {
                                return Ok(Created::Existing(r));
                            }
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                return Err(unavailable("direct room claimed but not readable"));
            }
        }
        // Members first, the room row last: a room is visible only once complete.
        let writes = room.member_ids.iter().enumerate().map(|(i, user)| {
            let role = room.role_of(user).unwrap_or(Role::Member);
            let joined = room.created_at + i as i64;
            let room_id = room.id.clone();
            async move {
                self.write(
                    &self.st.insert_member,
                    (&room_id, user, role.as_str(), joined, 0i64, 0i64),
                )
                .await?;
                self.write(&self.st.insert_user_room, (user, &room_id))
                    .await
            }
        });
        try_join_all(writes).await?;
        self.write(
            &self.st.insert_room,
            (
                &room.id,
                room.kind.as_str(),
                &room.name,
                &room.created_by,
                room.created_at,
            ),
        )
        .await?;
        Ok(Created::New(self.room_or_404(&room.id).await?))
    }

    async fn get_room(&self, id: &str) -> StoreResult<Option<Room>> {
        Ok(self.load_room(id).await?.map(|(r, _)| r))
    }

    async fn rename_room(&self, id: &str, name: Option<&str>) -> StoreResult<Room> {
        self.room_or_404(id).await?;
        self.write(&self.st.rename_room, (name, id)).await?;
        self.room_or_404(id).await
    }

    async fn delete_room(&self, id: &str) -> StoreResult<()> {
        let (room, last) = self.load_room(id).await?.ok_or_else(|| not_found("room"))?;
        self.write(&self.st.delete_room, (id,)).await?;
        try_join_all(
            room.member_ids
                .iter()
                .map(|u| self.write(&self.st.delete_user_room, (u, id))),
        )
        .await?;
        self.write(&self.st.delete_members, (id,)).await?;
        try_join_all((0..=bucket(last)).map(|b| self.write(&self.st.delete_bucket, (id, b))))
            .await?;
        Ok(())
    }

    async fn add_members(
        &self,
        id: &str,
        members: &[(String, Role)],
        max: usize,
    ) -> StoreResult<Room> {
        let (room, last) = self.load_room(id).await?.ok_or_else(|| not_found("room"))?;
        let new: Vec<&(String, Role)> =
            members.iter().filter(|(u, _)| !room.is_member(u)).collect();
        if room.member_ids.len() + new.len() > max {
            return Err(ErrorBody::new(
                ErrorCode::RoomFull,
                format!("a group has at most {max} members"),
            ));
        }
        let now = dovie_actors::now_ms();
        try_join_all(
            new.into_iter()
                .enumerate()
                .map(|(i, (user, role))| async move {
                    self.write(
                        &self.st.insert_member,
                        (
                            id,
                            user,
                            role.as_str(),
                            now + i as i64,
                            last as i64,
                            last as i64,
                        ),
                    )
                    .await?;
                    self.write(&self.st.insert_user_room, (user, id)).await
                }),
        )
        .await?;
        self.room_or_404(id).await
    }

    async fn remove_member(&self, id: &str, user_id: &str) -> StoreResult<Room> {
        let room = self.room_or_404(id).await?;
        if !room.is_member(user_id) {
            return Err(not_found("member"));
        }
        self.write(&self.st.delete_member, (id, user_id)).await?;
        self.write(&self.st.delete_user_room, (user_id, id)).await?;
        self.room_or_404(id).await
    }

    async fn set_role(&self, id: &str, user_id: &str, role: Role) -> StoreResult<Room> {
        let room = self.room_or_404(id).await?;
        if !room.is_member(user_id) {
            return Err(not_found("member"));
        }
        self.write(&self.st.set_role, (role.as_str(), id, user_id))
            .await?;
        self.room_or_404(id).await
    }

    async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<RoomSummary>> {
        let rooms = self.my_rooms(user_id).await?;
        let loaded = try_join_all(rooms.iter().map(|id| async move {
            let Some((room, last)) = self.load_room(id).await? else {
                return Ok::<_, ErrorBody>(None);
            };
            let read = self
                .row::<(Option<i64>, Option<i64>)>(&self.st.member_marks, (id, user_id))
                .await?
                .and_then(|(r, _)| r)
                .unwrap_or(0)
                .max(0) as u64;
            let last_message = if last > 0 {
                self.message_at(id, last).await?
            } else {
                None
            };
            Ok(Some(RoomSummary {
                room,
                last_message,
                unread_count: last.saturating_sub(read),
            }))
        }))
        .await?;
        let mut out: Vec<RoomSummary> = loaded.into_iter().flatten().collect();
        out.sort_by_key(|s| {
            std::cmp::Reverse(
                s.last_message
                    .as_ref()
                    .map_or(s.room.created_at, |m| m.created_at),
            )
        });
        Ok(out)
    }

    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.my_rooms(user_id).await
    }

    async fn unread_counts(&self, user_id: &str) -> StoreResult<HashMap<String, u64>> {
        Ok(self
            .rooms_of(user_id)
            .await?
            .into_iter()
            .map(|s| (s.room.id, s.unread_count))
            .collect())
    }
}

#[async_trait]
impl History for ScyllaStore {
    async fn history(
        &self,
        room_id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page> {
        let lo = after.unwrap_or(0);
        let hi = before.unwrap_or(u64::MAX / 2);
        let ascending = after.is_some();
        let mut messages = self.range(room_id, lo, hi, limit + 1, ascending).await?;
        let has_more = messages.len() > limit;
        messages.truncate(limit);
        if !ascending {
            messages.reverse();
        }
        Ok(Page { messages, has_more })
    }

    async fn search(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let words = super::text::query_words(query);
        let Some(last) = words.last() else {
            return Ok(Vec::new());
        };
        // The index term: the first word when there are several (whole words), else the only
        // word's prefix (at most MAX_PREFIX characters are indexed) or, if too short to be a
        // prefix, the word itself.
        let term: String = if words.len() == 1 && super::text::last_is_prefix(&words) {
            last.chars().take(MAX_PREFIX).collect()
        } else {
            words[0].clone()
        };
        let mine = self.my_rooms(user_id).await?;
        let rooms: Vec<String> = match room_id {
            Some(r) if mine.iter().any(|m| m == r) => vec![r.to_string()],
            Some(_) => Vec::new(),
            None => mine,
        };
        let found = try_join_all(rooms.iter().map(|room| {
            let (term, words) = (term.clone(), &words);
            async move {
                let seqs = self
                    .rows::<(i64,)>(&self.st.term_seqs, (room, &term, SEARCH_CANDIDATES))
                    .await?;
                let msgs = try_join_all(
                    seqs.into_iter()
                        .map(|(seq,)| self.message_at(room, seq as u64)),
                )
                .await?;
                Ok::<_, ErrorBody>(
                    msgs.into_iter()
                        .flatten()
                        .filter(|m| !m.deleted && super::text::matches(&m.content, words))
                        .collect::<Vec<_>>(),
                )
            }
        }))
        .await?;
        let mut out: Vec<Message> = found.into_iter().flatten().collect();
        out.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.seq)));
        out.truncate(limit);
        Ok(out)
    }

    async fn by_hashtag(
        &self,
        user_id: &str,
        tag: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let tag = tag.trim_start_matches('#').to_lowercase();
        let mine: BTreeSet<String> = self.my_rooms(user_id).await?.into_iter().collect();
        let mut out = Vec::new();
        // Newest first; the driver pages through the tag's partition.
        let mut pager = self
            .session
            .execute_iter(self.st.messages_by_tag.clone(), (&tag,))
            .await
            .map_err(unavailable)?
            .rows_stream::<(String, String)>()
            .map_err(unavailable)?;
        use futures_util::StreamExt;
        while let Some(row) = pager.next().await {
            let (message_id, room) = row.map_err(unavailable)?;
            if !mine.contains(&room) {
                continue;
            }
            if let Some(m) = self.get_message_by_id(&message_id).await? {
                if !m.deleted && m.hashtags.contains(&tag) {
                    out.push(m);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl dovie_actors::RoomStore for ScyllaStore {
    async fn load_room(
        &self,
        room_id: &str,
        window: usize,
    ) -> Result<Option<RoomSnapshot>, ErrorBody> {
        let Some((room, last_seq)) = ScyllaStore::load_room(self, room_id).await? else {
            return Ok(None);
        };
        let epoch = self.claim(room_id).await?;
        // Read after the claim: whatever the previous owner acknowledged is visible now.
        let last_seq = self.last_seq(room_id).await?.unwrap_or(last_seq);
        let mut recent = self.range(room_id, 0, last_seq + 1, window, false).await?;
        recent.reverse();
        Ok(Some(RoomSnapshot {
            room,
            last_seq,
            recent,
            epoch,
        }))
    }

    async fn append(
        &self,
        room_id: &str,
        epoch: u64,
        first_seq: u64,
        drafts: Vec<Draft>,
    ) -> Result<Vec<AppendOutcome>, AppendError> {
        let failed = AppendError::Failed;
        if self.epoch(room_id).await.map_err(failed)? != epoch {
            return Err(AppendError::Fenced);
        }
        let stored_last = self
            .last_seq(room_id)
            .await
            .map_err(failed)?
            .ok_or_else(|| AppendError::Failed(not_found("room")))?;
        if stored_last + 1 != first_seq {
            return Err(AppendError::SeqMismatch {
                last_seq: stored_last,
            });
        }
        // Earlier messages with these nonces, looked up all at once.
        let earlier = try_join_all(drafts.iter().map(|d| async move {
            let Some(nonce) = &d.nonce else {
                return Ok::<_, ErrorBody>(None);
            };
            // One row per epoch that stored the nonce; only a message that is really its seq's,
            // committed (seq <= last) and the same counts.
            let seqs = self
                .rows::<(i64,)>(&self.st.nonce_seq, (room_id, &d.sender_id, nonce))
                .await?;
            for (seq,) in seqs {
                let found = self.message_at(room_id, seq as u64).await?.filter(|m| {
                    m.nonce.as_ref() == Some(nonce)
                        && m.sender_id == d.sender_id
                        && m.seq <= stored_last
                });
                if found.is_some() {
                    return Ok(found);
                }
            }
            Ok(None)
        }))
        .await
        .map_err(failed)?;
        let mut next = first_seq;
        let mut out = Vec::with_capacity(drafts.len());
        let mut batch_nonces: HashMap<(String, String), Message> = HashMap::new();
        let mut stored = Vec::new();
        for (d, earlier) in drafts.into_iter().zip(earlier) {
            if let Some(m) = earlier {
                out.push(AppendOutcome::Duplicate(m));
                continue;
            }
            if let Some(nonce) = &d.nonce {
                if let Some(m) = batch_nonces.get(&(d.sender_id.clone(), nonce.clone())) {
                    out.push(AppendOutcome::Duplicate(m.clone()));
                    continue;
                }
            }
            if let Some(reply_to) = &d.reply_to {
                let target = self.get_message_by_id(reply_to).await.map_err(failed)?;
                let in_room = target.is_some_and(|m| m.room_id == room_id)
                    || stored.iter().any(|m: &Message| &m.id == reply_to);
                if !in_room {
                    out.push(AppendOutcome::Rejected(ErrorBody::new(
                        ErrorCode::ValidationFailed,
                        "reply_to names no message of this room",
                    )));
                    continue;
                }
            }
            let m = d.into_message(room_id, next);
            if let Some(n) = &m.nonce {
                batch_nonces.insert((m.sender_id.clone(), n.clone()), m.clone());
            }
            stored.push(m.clone());
            out.push(AppendOutcome::Stored(m));
            next += 1;
        }
        if stored.is_empty() {
            return Ok(out);
        }
        // Rows of one partition go in one unlogged batch; the indexes in parallel; `last_seq`
        // (what makes the messages count) only after all of them.
        let mut by_bucket: BTreeMap<i64, Vec<&Message>> = BTreeMap::new();
        for m in &stored {
            by_bucket.entry(bucket(m.seq)).or_default().push(m);
        }
        let batches = by_bucket.into_iter().map(|(b, msgs)| async move {
            let mut batch = Batch::new(BatchType::Unlogged);
            batch.set_consistency(Consistency::Quorum);
            let mut values = Vec::new();
            for m in msgs {
                batch.append_statement(self.st.insert_message.clone());
                values.push((
                    b,
                    epoch as i64,
                    m.room_id.clone(),
                    m.seq as i64,
                    m.id.clone(),
                    m.sender_id.clone(),
                    m.kind.as_str(),
                    m.content.clone(),
                    m.nonce.clone(),
                    m.reply_to.clone(),
                    m.hashtags.clone(),
                    "{}",
                    "[]",
                    m.created_at,
                    None::<i64>,
                    false,
                ));
            }
            let _permit = self.writes.acquire().await.map_err(unavailable)?;
            self.session
                .batch(&batch, values)
                .await
                .map_err(unavailable)?;
            Ok::<_, ErrorBody>(())
        });
        try_join_all(batches).await.map_err(failed)?;
        let side = stored.iter().map(|m| async move {
            self.write(
                &self.st.insert_message_id,
                (&m.id, &m.room_id, m.seq as i64, epoch as i64),
            )
            .await?;
            if let Some(n) = &m.nonce {
                self.write(
                    &self.st.insert_nonce,
                    (&m.room_id, &m.sender_id, n, epoch as i64, m.seq as i64),
                )
                .await?;
            }
            self.index(m).await
        });
        try_join_all(side).await.map_err(failed)?;
        // Senders have read up to their own message.
        let mut last_by_sender: HashMap<&str, u64> = HashMap::new();
        for m in &stored {
            last_by_sender.insert(&m.sender_id, m.seq);
        }
        try_join_all(last_by_sender.into_iter().map(|(sender, seq)| async move {
            self.set_receipt(room_id, sender, ReceiptKind::Read, seq)
                .await
        }))
        .await
        .map_err(failed)?;
        // The batch counts only if this node still owns the room and nobody committed meanwhile:
        // one conditional write per batch. Otherwise nothing here is acknowledged, and the rows
        // left behind carry an epoch lower than any later owner's, so they never show.
        let committed = self
            .lwt(
                &self.st.commit_last_seq,
                ((next - 1) as i64, room_id, epoch as i64, stored_last as i64),
            )
            .await
            .map_err(failed)?;
        if !committed {
            return Err(AppendError::Fenced);
        }
        Ok(out)
    }

    async fn messages_after(
        &self,
        room_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ErrorBody> {
        self.range(room_id, after, u64::MAX / 2, limit, true).await
    }

    async fn get_message(&self, message_id: &str) -> Result<Option<Message>, ErrorBody> {
        self.get_message_by_id(message_id).await
    }

    async fn edit_message(
        &self,
        id: &str,
        content: &str,
        hashtags: &[String],
        at: i64,
    ) -> Result<Message, ErrorBody> {
        let (old, epoch) = self
            .locate(id)
            .await?
            .filter(|(m, _)| !m.deleted)
            .ok_or_else(|| not_found("message"))?;
        self.unindex_tags(&old).await?;
        self.write(
            &self.st.edit_message,
            (
                content,
                hashtags.to_vec(),
                at,
                &old.room_id,
                bucket(old.seq),
                old.seq as i64,
                epoch,
            ),
        )
        .await?;
        let m = self
            .message_at(&old.room_id, old.seq)
            .await?
            .ok_or_else(|| not_found("message"))?;
        self.index(&m).await?;
        Ok(m)
    }

    async fn delete_message(&self, id: &str, at: i64) -> Result<Message, ErrorBody> {
        let (old, epoch) = self.locate(id).await?.ok_or_else(|| not_found("message"))?;
        self.unindex_tags(&old).await?;
        self.write(&self.st.delete_likes, (id,)).await?;
        self.write(
            &self.st.tombstone,
            (at, &old.room_id, bucket(old.seq), old.seq as i64, epoch),
        )
        .await?;
        self.message_at(&old.room_id, old.seq)
            .await?
            .ok_or_else(|| not_found("message"))
    }

    async fn set_reaction(
        &self,
        id: &str,
        user_id: &str,
        emoji: &str,
        on: bool,
    ) -> Result<Message, ErrorBody> {
        let (m, epoch) = self.locate(id).await?.ok_or_else(|| not_found("message"))?;
        if on {
            let already = self
                .reactions_of(id)
                .await?
                .get(emoji)
                .is_some_and(|us| us.iter().any(|u| u == user_id));
            if !already {
                self.write(
                    &self.st.insert_like,
                    (id, emoji, user_id, dovie_actors::now_ms()),
                )
                .await?;
            }
        } else {
            self.write(&self.st.delete_like, (id, emoji, user_id))
                .await?;
        }
        let reactions = self.reactions_of(id).await?;
        let json = serde_json::to_string(&reactions).unwrap_or_else(|_| "{}".into());
        self.write(
            &self.st.set_reactions,
            (json, &m.room_id, bucket(m.seq), m.seq as i64, epoch),
        )
        .await?;
        self.message_at(&m.room_id, m.seq)
            .await?
            .ok_or_else(|| not_found("message"))
    }

    async fn set_receipt(
        &self,
        room_id: &str,
        user_id: &str,
        kind: ReceiptKind,
        seq: u64,
    ) -> Result<(), ErrorBody> {
        // The room's owner serializes receipts, so read-then-raise needs no transaction.
        let Some((read, delivered)) = self
            .row::<(Option<i64>, Option<i64>)>(&self.st.member_marks, (room_id, user_id))
            .await?
        else {
            return Ok(());
        };
        let (read, delivered) = (
            read.unwrap_or(0).max(0) as u64,
            delivered.unwrap_or(0).max(0) as u64,
        );
        match kind {
            ReceiptKind::Read if seq > read || seq > delivered => {
                self.write(
                    &self.st.set_read,
                    (
                        seq.max(read) as i64,
                        seq.max(delivered) as i64,
                        room_id,
                        user_id,
                    ),
                )
                .await
            }
            ReceiptKind::Delivered if seq > delivered => {
                self.write(&self.st.set_delivered, (seq as i64, room_id, user_id))
                    .await
            }
            _ => Ok(()),
        }
    }

    async fn current_epoch(&self, room_id: &str) -> Result<u64, ErrorBody> {
        self.epoch(room_id).await
    }

    async fn co_members(&self, user_id: &str) -> Result<Vec<String>, ErrorBody> {
        self.presence_audience(user_id, usize::MAX).await
    }

    async fn presence_audience(
        &self,
        user_id: &str,
        max_room_members: usize,
    ) -> Result<Vec<String>, ErrorBody> {
        let rooms = self.my_rooms(user_id).await?;
        let members = try_join_all(
            rooms
                .iter()
                .map(|r| self.rows::<(String, String, i64)>(&self.st.members_of, (r,))),
        )
        .await?;
        let set: BTreeSet<String> = members
            .into_iter()
            .filter(|m| m.len() <= max_room_members)
            .flatten()
            .map(|(u, _, _)| u)
            .filter(|u| u != user_id)
            .collect();
        Ok(set.into_iter().collect())
    }

    async fn set_last_seen(&self, user_id: &str, at: i64) -> Result<(), ErrorBody> {
        self.write(&self.st.set_last_seen, (at, user_id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_qualified_with_the_keyspace() {
        assert_eq!(
            qualify("UPDATE users SET a = ? WHERE id = ?", "ks"),
            "UPDATE ks.users SET a = ? WHERE id = ?"
        );
        assert_eq!(
            qualify("DELETE FROM users WHERE id = ?", "ks"),
            "DELETE FROM ks.users WHERE id = ?"
        );
        assert_eq!(
            qualify("SELECT a FROM users WHERE id = ?", "ks"),
            "SELECT a FROM ks.users WHERE id = ?"
        );
        assert_eq!(
            qualify("INSERT INTO users (a) VALUES (?)", "ks"),
            "INSERT INTO ks.users (a) VALUES (?)"
        );
    }

    #[test]
    fn keyspace_names_are_checked() {
        assert!(valid_keyspace("dovie_test_1"));
        assert!(!valid_keyspace("x; DROP KEYSPACE y"));
        assert!(!valid_keyspace(""));
    }

    #[test]
    fn statements_split_on_line_ending_semicolons() {
        let s = statements("-- c\nCREATE TABLE a (x int PRIMARY KEY);\n\nCREATE TABLE b (\n y int PRIMARY KEY\n) WITH x = 1;\n");
        assert_eq!(s.len(), 2);
        assert!(s[1].starts_with("CREATE TABLE b"));
        assert!(!s[1].ends_with(';'));
    }

    #[test]
    fn terms_hold_words_and_short_prefixes() {
        let t = ScyllaStore::terms("Hello wonderful");
        assert!(
            t.contains("he")
                && t.contains("hello")
                && t.contains("wonderful")
                && t.contains("wonderfu")
        );
        assert!(!t.contains("h"));
        let long = ScyllaStore::terms("abcdefghijklmnopqrstu");
        assert!(
            long.contains("abcdefghijkl")
                && !long.contains("abcdefghijklm")
                && long.contains("abcdefghijklmnopqrstu")
        );
    }
}
