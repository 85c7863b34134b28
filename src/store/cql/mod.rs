//! The cluster store: ScyllaDB over CQL (the `scylla` driver, 1.x API), portable to Apache
//! Cassandra, which the test suite runs as the CQL server.
//!
//! Every statement is prepared once at connect and kept in [`Stmts`]; the driver routes each to a
//! replica of its partition (token-aware by default). Writes run under a semaphore that bounds
//! how many are in flight. Messages live in `((room_id, bucket), seq)` partitions of
//! [`BUCKET_SIZE`] seqs. The room's owner is its single writer, so appends, nonces and read marks
//! need no lightweight transactions; registration, direct-room creation, refresh-token rotation
//! and group rosters (rare, and racing across nodes) use them.
//!
//! This module is the plumbing (connection, migrations, every prepared statement, the shared
//! helpers); each storage concern is a module of its own: `users`, `auth`, `rooms`, `history`,
//! and `room_store` (the room actors' port).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use dovie_actors::ports::{AppendError, AppendOutcome, Draft, ReceiptKind, RoomSnapshot};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::{Message, MessageKind, Role, Room, RoomType, Theme, User};
use futures_util::future::try_join_all;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use tokio::sync::Semaphore;

use super::*;

mod admin;
mod ai;
mod auth;
mod business;
mod files;
mod geo;
mod history;
mod people;
mod privacy;
mod push;
mod reminders;
mod room_store;
mod rooms;
mod social;
mod transcriptions;
mod users;

/// Seqs per message partition.
pub const BUCKET_SIZE: u64 = 4096;
/// Writes in flight at most, per node.
const MAX_INFLIGHT_WRITES: usize = 256;
/// Prefixes indexed for search, in characters.
const MIN_PREFIX: usize = super::text::MIN_PREFIX_CHARS;
const MAX_PREFIX: usize = 12;
/// The migration that moved the search index to `search_terms`: existing messages are indexed
/// again when it runs.
const SEARCH_TERMS_VERSION: i32 = 2;
/// The migration that indexed places by cell: existing ones are copied into the cells when it
/// runs.
const LOCATION_CELLS_VERSION: i32 = 6;
/// The migration from which the name index holds every account and the admins are listed:
/// existing accounts are indexed and listed when it runs.
const ADMIN_VERSION: i32 = 15;
/// The migration that indexed what each user wrote (rooms sent in, likes, comments): existing
/// rows are indexed when it runs.
const PRIVACY_VERSION: i32 = 16;
/// Attempts of a compare-and-set on a room's roster before answering `store_unavailable`.
const ROSTER_ATTEMPTS: usize = 32;
const DAY_MS: i64 = 86_400_000;

/// A `chat_rooms` row: id, type, name, created_by, created_at, last_seq.
type RoomRow = (String, String, Option<String>, String, i64, Option<i64>);
/// Rooms one multi-partition read asks for (ScyllaDB's default
/// `max_partition_key_restrictions_per_query` is 100).
const ROOMS_PER_READ: usize = 100;

/// A room from its row and its members (user, role, joined at), with its last seq.
fn room_of(row: RoomRow, mut members: Vec<(String, String, i64)>) -> (Room, u64) {
    let (id, kind, name, created_by, created_at, last_seq) = row;
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
    (room, last_seq.unwrap_or(0).max(0) as u64)
}

const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../schema/scylla/0001_init.cql")),
    (
        2,
        include_str!("../../../schema/scylla/0002_rosters_roles_terms.cql"),
    ),
    (3, include_str!("../../../schema/scylla/0003_people.cql")),
    (4, include_str!("../../../schema/scylla/0004_files.cql")),
    (5, include_str!("../../../schema/scylla/0005_location.cql")),
    (
        6,
        include_str!("../../../schema/scylla/0006_location_cells.cql"),
    ),
    (7, include_str!("../../../schema/scylla/0007_push.cql")),
    (
        8,
        include_str!("../../../schema/scylla/0008_push_queue.cql"),
    ),
    (9, include_str!("../../../schema/scylla/0009_ai.cql")),
    (
        10,
        include_str!("../../../schema/scylla/0010_reminders.cql"),
    ),
    (
        11,
        include_str!("../../../schema/scylla/0011_transcripts.cql"),
    ),
    (
        12,
        include_str!("../../../schema/scylla/0012_transcription_jobs.cql"),
    ),
    (13, include_str!("../../../schema/scylla/0013_social.cql")),
    (14, include_str!("../../../schema/scylla/0014_business.cql")),
    (
        ADMIN_VERSION,
        include_str!("../../../schema/scylla/0015_admin.cql"),
    ),
    (
        PRIVACY_VERSION,
        include_str!("../../../schema/scylla/0016_privacy.cql"),
    ),
];

const MSG_COLS: &str =
    "room_id, seq, id, sender_id, kind, content, nonce, reply_to, hashtags, reactions, \
                        attachments, created_at, edited_at, deleted, link_previews, location, \
                        suggest_location, mentions";
/// What an append writes (link previews come later, by amendment; reactions, edits and
/// deletion are absent until they happen).
const MSG_INSERT_COLS: &str =
    "room_id, seq, id, sender_id, kind, content, nonce, reply_to, hashtags, \
                        attachments, created_at, location, suggest_location, mentions";

/// One `messages` row as [`MSG_COLS`] selects it (columns matched by name).
#[derive(::scylla::DeserializeRow)]
struct MsgRow {
    room_id: String,
    seq: i64,
    id: String,
    sender_id: String,
    kind: String,
    content: String,
    nonce: Option<String>,
    reply_to: Option<String>,
    hashtags: Option<Vec<String>>,
    reactions: Option<String>,
    attachments: Option<String>,
    created_at: i64,
    edited_at: Option<i64>,
    deleted: Option<bool>,
    link_previews: Option<String>,
    location: Option<String>,
    suggest_location: Option<bool>,
    mentions: Option<Vec<String>>,
}

fn bucket(seq: u64) -> i64 {
    (seq / BUCKET_SIZE) as i64
}

fn unavailable(cause: impl std::fmt::Display) -> ErrorBody {
    super::unavailable_from("cql", cause)
}

/// A JSON column, if present and well-formed.
fn json<T: serde::de::DeserializeOwned>(j: Option<String>) -> Option<T> {
    j.and_then(|j| serde_json::from_str(&j).ok())
}

fn to_message(r: MsgRow) -> Message {
    Message {
        room_id: r.room_id,
        seq: r.seq as u64,
        id: r.id,
        sender_id: r.sender_id,
        kind: MessageKind::parse(&r.kind).unwrap_or(MessageKind::Text),
        content: r.content,
        nonce: r.nonce,
        reply_to: r.reply_to,
        hashtags: r.hashtags.unwrap_or_default(),
        reactions: json(r.reactions).unwrap_or_default(),
        attachments: json(r.attachments).unwrap_or_default(),
        created_at: r.created_at,
        edited_at: r.edited_at,
        deleted: r.deleted.unwrap_or(false),
        link_previews: json(r.link_previews).unwrap_or_default(),
        location: json(r.location),
        suggest_location: r.suggest_location.unwrap_or(false),
        mentions: r.mentions.unwrap_or_default(),
    }
}

/// Checks a keyspace name: it is spliced into DDL, so only `[A-Za-z0-9_]`, 1..=48 characters.
pub fn valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub struct ScyllaStore {
    session: Session,
    st: Stmts,
    writes: Semaphore,
    /// Senders already in `sender_rooms` (written once per pair and process).
    seen_senders: crate::store::SeenSenders,
}

/// A session on `keyspace` for tools that read or write its tables wholesale (backups).
pub async fn keyspace_session(contact_points: &str, keyspace: &str) -> Result<Session, String> {
    if !valid_keyspace(keyspace) {
        return Err(format!("invalid keyspace name `{keyspace}`"));
    }
    let session = connect(contact_points).await?;
    session
        .use_keyspace(keyspace, false)
        .await
        .map_err(|e| e.to_string())?;
    Ok(session)
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

/// `ALTER TABLE t ADD c …`: the table and the column it adds.
fn added_column(stmt: &str) -> Option<(String, String)> {
    let words: Vec<&str> = stmt.split_whitespace().collect();
    match words.as_slice() {
        [alter, table, t, add, c, ..]
            if alter.eq_ignore_ascii_case("ALTER")
                && table.eq_ignore_ascii_case("TABLE")
                && add.eq_ignore_ascii_case("ADD") =>
        {
            Some((t.to_lowercase(), c.to_lowercase()))
        }
        _ => None,
    }
}

async fn column_exists(
    session: &Session,
    keyspace: &str,
    table: &str,
    column: &str,
) -> Result<bool, String> {
    Ok(session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND column_name = ?",
            (keyspace, table, column),
        )
        .await
        .map_err(|e| e.to_string())?
        .into_rows_result()
        .map_err(|e| e.to_string())?
        .rows_num()
        > 0)
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
            // Nodes starting together run the same migration: a column another node added
            // meanwhile is not an error (CQL has no `ADD IF NOT EXISTS` on every server).
            let added = added_column(&stmt);
            if let Some((table, column)) = &added {
                if column_exists(&session, keyspace, table, column).await? {
                    continue;
                }
            }
            if let Err(e) = ddl(stmt).await {
                match &added {
                    Some((table, column))
                        if column_exists(&session, keyspace, table, column).await? => {}
                    _ => return Err(e),
                }
            }
        }
        if *version == SEARCH_TERMS_VERSION {
            history::reindex_search(&session).await?;
        }
        if *version == LOCATION_CELLS_VERSION {
            geo::index_cells(&session).await?;
        }
        if *version == ADMIN_VERSION {
            admin::index_accounts(&session).await?;
        }
        if *version == PRIVACY_VERSION {
            privacy::index_authors(&session).await?;
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
        // Boxed: preparing every statement is one long future, too big for a small stack
        // (a test thread's, in a debug build) when kept inline in its callers'.
        Box::pin(migrate(contact_points, keyspace, replication_factor)).await?;
        let session = connect(contact_points).await?;
        let st = Box::pin(Stmts::prepare(&session, keyspace)).await?;
        Ok(ScyllaStore {
            session,
            st,
            writes: Semaphore::new(MAX_INFLIGHT_WRITES),
            seen_senders: Default::default(),
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

    /// Every row of a prepared read as a stream, fetched page by page by the driver.
    async fn paged<R>(
        &self,
        st: &PreparedStatement,
        values: impl ::scylla::serialize::row::SerializeRow,
    ) -> StoreResult<::scylla::client::pager::TypedRowStream<R>>
    where
        R: for<'f, 'm> ::scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        self.session
            .execute_iter(st.clone(), values)
            .await
            .map_err(unavailable)?
            .rows_stream::<R>()
            .map_err(unavailable)
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
        let Some(row) = self.row::<RoomRow>(&self.st.room_by_id, (id,)).await? else {
            return Ok(None);
        };
        let members = self
            .rows::<(String, String, i64)>(&self.st.members_of, (id,))
            .await?;
        Ok(Some(room_of(row, members)))
    }

    /// The rooms of these ids that exist, in the order asked: a multi-partition read of the
    /// rooms and one of their members per [`ROOMS_PER_READ`].
    async fn load_rooms(&self, ids: &[String]) -> StoreResult<Vec<Room>> {
        let chunks = try_join_all(ids.chunks(ROOMS_PER_READ).map(|chunk| async move {
            let ids = chunk.to_vec();
            let (rooms, members) = futures_util::try_join!(
                self.rows::<RoomRow>(&self.st.rooms_by_ids, (&ids,)),
                self.rows::<(String, String, String, i64)>(&self.st.members_of_rooms, (&ids,)),
            )?;
            Ok::<_, ErrorBody>((rooms, members))
        }))
        .await?;
        let mut members_of: HashMap<String, Vec<(String, String, i64)>> = HashMap::new();
        let mut rows = HashMap::new();
        for (rooms, members) in chunks {
            for (room_id, user, role, joined) in members {
                members_of
                    .entry(room_id)
                    .or_default()
                    .push((user, role, joined));
            }
            rows.extend(rooms.into_iter().map(|r| (r.0.clone(), r)));
        }
        Ok(ids
            .iter()
            .filter_map(|id| {
                let row = rows.get(id)?.clone();
                let members = members_of.get(id).cloned().unwrap_or_default();
                Some(room_of(row, members).0)
            })
            .collect())
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

    /// Indexes a message for search (its terms) and its hashtags.
    async fn index(&self, m: &Message) -> StoreResult<()> {
        let terms = try_join_all(Self::terms(&m.content).into_iter().map(|t| {
            self.write(
                &self.st.insert_term,
                (m.room_id.clone(), bucket(m.seq), t, m.seq as i64),
            )
        }));
        futures_util::future::try_join(terms, self.index_tags(m)).await?;
        Ok(())
    }

    /// Indexes a message's hashtags (a partition per tag).
    async fn index_tags(&self, m: &Message) -> StoreResult<()> {
        try_join_all(m.hashtags.iter().map(|tag| {
            self.write(
                &self.st.insert_tag,
                (tag.clone(), m.created_at, m.id.clone(), m.room_id.clone()),
            )
        }))
        .await?;
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

/// Every statement, prepared once.
struct Stmts {
    files: files::FileStmts,
    geo: geo::GeoStmts,
    push: push::PushStmts,
    ai: ai::AiStmts,
    reminders: reminders::ReminderStmts,
    transcriptions: transcriptions::TranscriptionStmts,
    social: social::SocialStmts,
    business: business::BusinessStmts,
    admin: admin::AdminStmts,
    privacy: privacy::PrivacyStmts,
    insert_user: PreparedStatement,
    claim_email: PreparedStatement,
    user_by_id: PreparedStatement,
    users_by_ids: PreparedStatement,
    set_user_role: PreparedStatement,
    set_avatar: PreparedStatement,
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
    rooms_by_ids: PreparedStatement,
    room_last_seq: PreparedStatement,
    room_epoch: PreparedStatement,
    room_marks: PreparedStatement,
    claim_epoch: PreparedStatement,
    claim_first_epoch: PreparedStatement,
    commit_last_seq: PreparedStatement,
    rename_room: PreparedStatement,
    delete_room: PreparedStatement,
    delete_members: PreparedStatement,
    delete_bucket: PreparedStatement,
    insert_member: PreparedStatement,
    members_of: PreparedStatement,
    members_of_rooms: PreparedStatement,
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
    amend_attachments: PreparedStatement,
    amend_link_previews: PreparedStatement,
    set_reactions: PreparedStatement,
    insert_like: PreparedStatement,
    delete_like: PreparedStatement,
    delete_likes: PreparedStatement,
    delete_translations: PreparedStatement,
    likes_of: PreparedStatement,
    insert_tag: PreparedStatement,
    delete_tag: PreparedStatement,
    messages_by_tag: PreparedStatement,
    insert_term: PreparedStatement,
    term_seqs: PreparedStatement,
    delete_terms: PreparedStatement,
    delete_message_id: PreparedStatement,
    delete_nonces: PreparedStatement,
    bucket_keys: PreparedStatement,
    roster: PreparedStatement,
    create_roster: PreparedStatement,
    swap_roster: PreparedStatement,
    delete_roster: PreparedStatement,
    claim_phone: PreparedStatement,
    take_phone: PreparedStatement,
    release_phone: PreparedStatement,
    release_email: PreparedStatement,
    user_id_by_phone: PreparedStatement,
    update_profile: PreparedStatement,
    set_phone: PreparedStatement,
    insert_name_prefix: PreparedStatement,
    delete_name_prefix: PreparedStatement,
    name_prefix_users: PreparedStatement,
    last_seen_of: PreparedStatement,
    insert_user_session: PreparedStatement,
    sessions_of_user: PreparedStatement,
    touch_session: PreparedStatement,
    touch_session_ip: PreparedStatement,
    insert_ip_day: PreparedStatement,
    ips_in_day: PreparedStatement,
    delete_ip_day: PreparedStatement,
    clear_ip: PreparedStatement,
    identity_of: PreparedStatement,
    claim_identity: PreparedStatement,
    insert_verification: PreparedStatement,
    insert_verification_by_phone: PreparedStatement,
    verification_by_id: PreparedStatement,
    verifications_since: PreparedStatement,
    count_attempt: PreparedStatement,
    consume_verification: PreparedStatement,
    insert_contact: PreparedStatement,
    insert_contact_of: PreparedStatement,
    contact_added: PreparedStatement,
    delete_contact: PreparedStatement,
    delete_contact_of: PreparedStatement,
    contacts_page: PreparedStatement,
    insert_block: PreparedStatement,
    insert_blocked_by: PreparedStatement,
    block_at: PreparedStatement,
    delete_block: PreparedStatement,
    delete_blocked_by: PreparedStatement,
    blocks_page: PreparedStatement,
    blocked_of: PreparedStatement,
    blockers: PreparedStatement,
}

/// Qualifies the table of a statement with the keyspace (no session-wide `USE`: servers warn
/// about it with prepared statements, and it is ambiguous across sessions).
/// A read that sees every applied lightweight transaction (and completes one in progress).
fn serial(mut st: PreparedStatement) -> PreparedStatement {
    st.set_consistency(Consistency::Serial);
    st
}

fn qualify(cql: &str, keyspace: &str) -> String {
    if let Some(rest) = cql.strip_prefix("UPDATE ") {
        return format!("UPDATE {keyspace}.{rest}");
    }
    if let Some(rest) = cql.strip_prefix("INSERT INTO ") {
        return format!("INSERT INTO {keyspace}.{rest}");
    }
    cql.replacen(" FROM ", &format!(" FROM {keyspace}."), 1)
}

/// How often a statement is prepared before its error counts, and the pause between tries.
///
/// Nodes starting together migrate together: the one that did not run an `ALTER` sees the new
/// column in `system_schema` a moment before the server's table accepts it, so a statement
/// naming it is refused for that moment. Preparation is tried again until it passes or these run
/// out (a statement that is simply wrong fails after them).
const PREPARE_ATTEMPTS: u32 = 40;
const PREPARE_RETRY: Duration = Duration::from_millis(250);

/// Prepares one statement, qualified with the keyspace, at QUORUM.
async fn prepare_statement(
    s: &Session,
    keyspace: &str,
    cql: String,
) -> Result<PreparedStatement, String> {
    let cql = qualify(&cql, keyspace);
    let mut attempt = 1;
    let mut st = loop {
        match Box::pin(s.prepare(cql.clone())).await {
            Ok(st) => break st,
            Err(_) if attempt < PREPARE_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(PREPARE_RETRY).await;
            }
            Err(e) => return Err(format!("preparing `{cql}`: {e}")),
        }
    };
    st.set_consistency(Consistency::Quorum);
    Ok(st)
}

impl Stmts {
    async fn prepare(s: &Session, keyspace: &str) -> Result<Stmts, String> {
        let p = |cql: String| prepare_statement(s, keyspace, cql);
        Ok(Stmts {
            files: Box::pin(files::FileStmts::prepare(s, keyspace)).await?,
            geo: Box::pin(geo::GeoStmts::prepare(s, keyspace)).await?,
            push: Box::pin(push::PushStmts::prepare(s, keyspace)).await?,
            ai: Box::pin(ai::AiStmts::prepare(s, keyspace)).await?,
            reminders: Box::pin(reminders::ReminderStmts::prepare(s, keyspace)).await?,
            transcriptions: Box::pin(transcriptions::TranscriptionStmts::prepare(s, keyspace)).await?,
            social: Box::pin(social::SocialStmts::prepare(s, keyspace)).await?,
            business: Box::pin(business::BusinessStmts::prepare(s, keyspace)).await?,
            admin: Box::pin(admin::AdminStmts::prepare(s, keyspace)).await?,
            privacy: Box::pin(privacy::PrivacyStmts::prepare(s, keyspace)).await?,
            insert_user: p("INSERT INTO users (id, email, password_hash, display_name, avatar_url, bio, created_at, role, phone, status_message, theme, locale, presence_visible, discoverable, time_zone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)".into()).await?,
            claim_email: p("INSERT INTO users_by_email (email, user_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            user_by_id: p("SELECT id, email, display_name, avatar_url, bio, created_at, role, phone, status_message, theme, locale, presence_visible, discoverable, time_zone FROM users WHERE id = ?".into()).await?,
            users_by_ids: p("SELECT id, email, display_name, avatar_url, bio, created_at, role, phone, status_message, theme, locale, presence_visible, discoverable, time_zone FROM users WHERE id IN ?".into()).await?,
            set_user_role: p("UPDATE users SET role = ? WHERE id = ?".into()).await?,
            set_avatar: p("UPDATE users SET avatar_url = ? WHERE id = ?".into()).await?,
            user_exists: p("SELECT id FROM users WHERE id = ?".into()).await?,
            user_id_by_email: p("SELECT user_id FROM users_by_email WHERE email = ?".into()).await?,
            password_of: p("SELECT password_hash FROM users WHERE id = ?".into()).await?,
            set_last_seen: p("UPDATE users SET last_seen_at = ? WHERE id = ?".into()).await?,
            insert_session: p("INSERT INTO auth_sessions (id, user_id, created_at, expires_at, device, user_agent, ip, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)".into()).await?,
            insert_refresh: p("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?, ?, ?, ?)".into()).await?,
            refresh_by_hash: p("SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?".into()).await?,
            session_by_id: p("SELECT id, user_id, created_at, expires_at, revoked_at, device, user_agent, ip, last_seen_at FROM auth_sessions WHERE id = ?".into()).await?,
            use_refresh: p("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? IF used_at = null".into()).await?,
            set_session_expiry: p("UPDATE auth_sessions SET expires_at = ?, last_seen_at = ? WHERE id = ?".into()).await?,
            revoke_session: p("UPDATE auth_sessions SET revoked_at = ? WHERE id = ?".into()).await?,
            insert_revoked: p("INSERT INTO revoked_sessions (day, revoked_at, session_id) VALUES (?, ?, ?)".into()).await?,
            revoked_in_day: p("SELECT session_id FROM revoked_sessions WHERE day = ? AND revoked_at >= ?".into()).await?,
            insert_room: p("INSERT INTO chat_rooms (id, type, name, created_by, created_at, last_seq) VALUES (?, ?, ?, ?, ?, 0)".into()).await?,
            claim_pair: p("INSERT INTO direct_rooms (pair, room_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            room_of_pair: p("SELECT room_id FROM direct_rooms WHERE pair = ?".into()).await?,
            room_by_id: p("SELECT id, type, name, created_by, created_at, last_seq FROM chat_rooms WHERE id = ?".into()).await?,
            rooms_by_ids: p("SELECT id, type, name, created_by, created_at, last_seq FROM chat_rooms WHERE id IN ?".into()).await?,
            room_epoch: p("SELECT owner_epoch FROM chat_rooms WHERE id = ?".into()).await?,
            room_marks: p("SELECT owner_epoch, last_seq FROM chat_rooms WHERE id = ?".into()).await?,
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
            members_of_rooms: p("SELECT room_id, user_id, role, joined_at FROM room_members WHERE room_id IN ?".into()).await?,
            member_marks: p("SELECT read_seq, delivered_seq FROM room_members WHERE room_id = ? AND user_id = ?".into()).await?,
            delete_member: p("DELETE FROM room_members WHERE room_id = ? AND user_id = ?".into()).await?,
            set_role: p("UPDATE room_members SET role = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            set_read: p("UPDATE room_members SET read_seq = ?, delivered_seq = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            set_delivered: p("UPDATE room_members SET delivered_seq = ? WHERE room_id = ? AND user_id = ?".into()).await?,
            insert_user_room: p("INSERT INTO user_rooms (user_id, room_id) VALUES (?, ?)".into()).await?,
            delete_user_room: p("DELETE FROM user_rooms WHERE user_id = ? AND room_id = ?".into()).await?,
            rooms_of_user: p("SELECT room_id FROM user_rooms WHERE user_id = ?".into()).await?,
            insert_message: p(format!("INSERT INTO messages (bucket, epoch, {MSG_INSERT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")).await?,
            insert_message_id: p("INSERT INTO messages_by_id (id, room_id, seq, epoch) VALUES (?, ?, ?, ?)".into()).await?,
            insert_nonce: p("INSERT INTO message_nonces (room_id, sender_id, nonce, epoch, seq) VALUES (?, ?, ?, ?, ?)".into()).await?,
            nonce_seq: p("SELECT seq FROM message_nonces WHERE room_id = ? AND sender_id = ? AND nonce = ?".into()).await?,
            message_at: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq = ? ORDER BY seq DESC LIMIT 1")).await?,
            message_loc: p("SELECT room_id, seq, epoch FROM messages_by_id WHERE id = ?".into()).await?,
            messages_desc: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?")).await?,
            messages_asc: p(format!("SELECT {MSG_COLS} FROM messages WHERE room_id = ? AND bucket = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?")).await?,
            edit_message: p("UPDATE messages SET content = ?, hashtags = ?, edited_at = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            tombstone: p("UPDATE messages SET content = '', hashtags = [], reactions = '{}', attachments = '[]', link_previews = '[]', location = null, suggest_location = false, deleted = true, edited_at = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            amend_attachments: p("UPDATE messages SET attachments = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            amend_link_previews: p("UPDATE messages SET link_previews = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            set_reactions: p("UPDATE messages SET reactions = ? WHERE room_id = ? AND bucket = ? AND seq = ? AND epoch = ?".into()).await?,
            insert_like: p("INSERT INTO message_likes (message_id, emoji, user_id, created_at) VALUES (?, ?, ?, ?)".into()).await?,
            delete_like: p("DELETE FROM message_likes WHERE message_id = ? AND emoji = ? AND user_id = ?".into()).await?,
            delete_likes: p("DELETE FROM message_likes WHERE message_id = ?".into()).await?,
            delete_translations: p("DELETE FROM translations WHERE message_id = ?".into()).await?,
            likes_of: p("SELECT emoji, user_id, created_at FROM message_likes WHERE message_id = ?".into()).await?,
            insert_tag: p("INSERT INTO message_hashtags (tag, created_at, message_id, room_id) VALUES (?, ?, ?, ?)".into()).await?,
            delete_tag: p("DELETE FROM message_hashtags WHERE tag = ? AND created_at = ? AND message_id = ?".into()).await?,
            messages_by_tag: p("SELECT message_id, room_id FROM message_hashtags WHERE tag = ?".into()).await?,
            insert_term: p("INSERT INTO search_terms (room_id, bucket, term, seq) VALUES (?, ?, ?, ?)".into()).await?,
            term_seqs: p("SELECT seq FROM search_terms WHERE room_id = ? AND bucket = ? AND term = ?".into()).await?,
            delete_terms: p("DELETE FROM search_terms WHERE room_id = ? AND bucket = ?".into()).await?,
            delete_message_id: p("DELETE FROM messages_by_id WHERE id = ?".into()).await?,
            delete_nonces: p("DELETE FROM message_nonces WHERE room_id = ? AND sender_id = ? AND nonce = ?".into()).await?,
            bucket_keys: p("SELECT id, sender_id, nonce, hashtags, created_at FROM messages WHERE room_id = ? AND bucket = ?".into()).await?,
            roster: serial(p("SELECT members FROM room_rosters WHERE room_id = ?".into()).await?),
            create_roster: p("INSERT INTO room_rosters (room_id, members) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            swap_roster: p("UPDATE room_rosters SET members = ? WHERE room_id = ? IF members = ?".into()).await?,
            delete_roster: p("DELETE FROM room_rosters WHERE room_id = ?".into()).await?,
            claim_phone: p("INSERT INTO users_by_phone (phone, user_id) VALUES (?, ?) IF NOT EXISTS".into()).await?,
            take_phone: p("UPDATE users_by_phone SET user_id = ? WHERE phone = ? IF user_id = ?".into()).await?,
            release_phone: p("DELETE FROM users_by_phone WHERE phone = ? IF user_id = ?".into()).await?,
            release_email: p("DELETE FROM users_by_email WHERE email = ? IF user_id = ?".into()).await?,
            user_id_by_phone: p("SELECT user_id FROM users_by_phone WHERE phone = ?".into()).await?,
            update_profile: p("UPDATE users SET display_name = ?, bio = ?, status_message = ?, theme = ?, locale = ?, presence_visible = ?, discoverable = ?, time_zone = ? WHERE id = ?".into()).await?,
            set_phone: p("UPDATE users SET phone = ? WHERE id = ?".into()).await?,
            insert_name_prefix: p("INSERT INTO user_name_prefixes (prefix, user_id) VALUES (?, ?)".into()).await?,
            delete_name_prefix: p("DELETE FROM user_name_prefixes WHERE prefix = ? AND user_id = ?".into()).await?,
            name_prefix_users: p("SELECT user_id FROM user_name_prefixes WHERE prefix = ? AND user_id > ? LIMIT ?".into()).await?,
            last_seen_of: p("SELECT last_seen_at FROM users WHERE id = ?".into()).await?,
            insert_user_session: p("INSERT INTO sessions_by_user (user_id, session_id) VALUES (?, ?)".into()).await?,
            sessions_of_user: p("SELECT session_id FROM sessions_by_user WHERE user_id = ?".into()).await?,
            touch_session: p("UPDATE auth_sessions SET last_seen_at = ? WHERE id = ?".into()).await?,
            touch_session_ip: p("UPDATE auth_sessions SET last_seen_at = ?, ip = ? WHERE id = ?".into()).await?,
            insert_ip_day: p("INSERT INTO session_ips_by_day (day, session_id) VALUES (?, ?)".into()).await?,
            ips_in_day: p("SELECT session_id FROM session_ips_by_day WHERE day = ?".into()).await?,
            delete_ip_day: p("DELETE FROM session_ips_by_day WHERE day = ? AND session_id = ?".into()).await?,
            clear_ip: p("UPDATE auth_sessions SET ip = null WHERE id = ?".into()).await?,
            identity_of: p("SELECT user_id FROM user_identities WHERE provider = ? AND subject = ?".into()).await?,
            claim_identity: p("INSERT INTO user_identities (provider, subject, user_id, linked_at) VALUES (?, ?, ?, ?) IF NOT EXISTS".into()).await?,
            insert_verification: p("INSERT INTO phone_verifications (id, phone, code_hash, created_at, expires_at, attempts, consumed_at) VALUES (?, ?, ?, ?, ?, ?, ?)".into()).await?,
            insert_verification_by_phone: p("INSERT INTO verifications_by_phone (phone, created_at, id) VALUES (?, ?, ?)".into()).await?,
            verification_by_id: serial(p("SELECT id, phone, code_hash, created_at, expires_at, attempts, consumed_at FROM phone_verifications WHERE id = ?".into()).await?),
            verifications_since: p("SELECT created_at FROM verifications_by_phone WHERE phone = ? AND created_at >= ?".into()).await?,
            count_attempt: p("UPDATE phone_verifications SET attempts = ? WHERE id = ? IF attempts = ?".into()).await?,
            consume_verification: p("UPDATE phone_verifications SET consumed_at = ? WHERE id = ? IF consumed_at = null".into()).await?,
            insert_contact: p("INSERT INTO contacts (owner_id, contact_id, added_at) VALUES (?, ?, ?) IF NOT EXISTS".into()).await?,
            insert_contact_of: p("INSERT INTO contacts_of (contact_id, owner_id) VALUES (?, ?)".into()).await?,
            contact_added: p("SELECT added_at FROM contacts WHERE owner_id = ? AND contact_id = ?".into()).await?,
            delete_contact: p("DELETE FROM contacts WHERE owner_id = ? AND contact_id = ?".into()).await?,
            delete_contact_of: p("DELETE FROM contacts_of WHERE contact_id = ? AND owner_id = ?".into()).await?,
            contacts_page: p("SELECT contact_id, added_at FROM contacts WHERE owner_id = ? AND contact_id > ? LIMIT ?".into()).await?,
            insert_block: p("INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?) IF NOT EXISTS".into()).await?,
            insert_blocked_by: p("INSERT INTO blocked_by (blocked_id, blocker_id) VALUES (?, ?)".into()).await?,
            block_at: p("SELECT created_at FROM blocks WHERE blocker_id = ? AND blocked_id = ?".into()).await?,
            delete_block: p("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?".into()).await?,
            delete_blocked_by: p("DELETE FROM blocked_by WHERE blocked_id = ? AND blocker_id = ?".into()).await?,
            blocks_page: p("SELECT blocked_id, created_at FROM blocks WHERE blocker_id = ? AND blocked_id > ? LIMIT ?".into()).await?,
            blocked_of: p("SELECT blocked_id FROM blocks WHERE blocker_id = ?".into()).await?,
            blockers: p("SELECT blocker_id FROM blocked_by WHERE blocked_id = ?".into()).await?,
        })
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
    fn added_columns_are_recognised() {
        assert_eq!(
            added_column("ALTER TABLE users ADD role text"),
            Some(("users".into(), "role".into()))
        );
        assert_eq!(added_column("CREATE TABLE IF NOT EXISTS x (a int)"), None);
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
