//! The embedded store: SQLite in WAL mode, FTS5 for search.
//!
//! One writer thread owns the only write connection and commits in groups: it takes every job
//! waiting in its queue, runs each in its own savepoint inside one transaction, commits once
//! (fsync once, with `synchronous = FULL`), then answers all of them. A job's answer is sent only
//! after the commit, so an `Ok` always means durable. A checkpoint thread with its own
//! connection copies the write-ahead log back into the database beside it, so commits never
//! wait for a checkpoint. Reads run on a small pool of read connections, never on the async
//! runtime's threads.
//!
//! This module is the plumbing (writer, readers, checkpointer, migrations, row mapping); each
//! storage concern is a module of its own: `users`, `auth`, `rooms`, `history`, and
//! `room_store` (the room actors' port).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dovie_actors::ports::{AppendError, AppendOutcome, Draft, ReceiptKind, RoomSnapshot};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::{Message, MessageKind, Role, Room, RoomType, Theme, User};
use parking_lot::{Condvar, Mutex};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

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

/// The schema migrations, in order. Each runs once, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../schema/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../../schema/sqlite/0002_deferred_fts.sql"),
    ),
    (3, include_str!("../../../schema/sqlite/0003_roles.sql")),
    (
        4,
        include_str!("../../../schema/sqlite/0004_fts_watermark.sql"),
    ),
    (5, include_str!("../../../schema/sqlite/0005_people.sql")),
    (6, include_str!("../../../schema/sqlite/0006_files.sql")),
    (7, include_str!("../../../schema/sqlite/0007_location.sql")),
    (8, include_str!("../../../schema/sqlite/0008_push.sql")),
    (
        9,
        include_str!("../../../schema/sqlite/0009_push_queue.sql"),
    ),
    (10, include_str!("../../../schema/sqlite/0010_ai.sql")),
    (
        11,
        include_str!("../../../schema/sqlite/0011_reminders.sql"),
    ),
    (
        12,
        include_str!("../../../schema/sqlite/0012_transcripts.sql"),
    ),
    (
        13,
        include_str!("../../../schema/sqlite/0013_transcription_jobs.sql"),
    ),
    (14, include_str!("../../../schema/sqlite/0014_social.sql")),
    (15, include_str!("../../../schema/sqlite/0015_business.sql")),
    (
        ADMIN_VERSION,
        include_str!("../../../schema/sqlite/0016_admin.sql"),
    ),
    (17, include_str!("../../../schema/sqlite/0017_privacy.sql")),
];
/// The version from which the name index holds every account (those before it are indexed
/// when it is applied).
const ADMIN_VERSION: i64 = 16;
/// A migration that rebuilds a table says so with this line: foreign keys are turned off
/// around its transaction (they cannot be inside one) and checked before it commits.
const FOREIGN_KEYS_OFF: &str = "-- dovie: foreign_keys off";
/// How long new messages may wait for the full-text index while writes keep coming (search
/// catches the index up itself, so this bounds work, not visibility).
const INDEX_EVERY: Duration = Duration::from_millis(250);
/// Messages indexed per indexing transaction.
const INDEX_BATCH: i64 = 20_000;
/// Jobs committed together at most.
const MAX_JOBS_PER_COMMIT: usize = 1024;
/// Prepared statements kept per connection (the writer uses a few dozen).
const STATEMENT_CACHE: usize = 128;
/// Page cache per connection, KiB: the writer's profile showed it re-reading index pages its
/// 2 MiB default had evicted.
const PAGE_CACHE_KIB: i64 = 32 * 1024;
/// How often the checkpointer copies the write-ahead log back into the database. Checkpoints
/// run on their own connection and thread, so a commit never waits for one.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages after which the writer checkpoints itself anyway (a backstop for a checkpointer
/// that cannot keep up: 16,384 pages of 4 KiB, 64 MiB).
const WRITER_CHECKPOINT_PAGES: i64 = 16_384;
const DAY_MS: i64 = 86_400_000;
const MESSAGE_COLUMNS: &str =
    "id, room_id, seq, sender_id, kind, content, nonce, reply_to, hashtags, \
     reactions, attachments, created_at, edited_at, deleted, link_previews, location, \
     suggest_location, mentions";

type Done = Box<dyn FnOnce(StoreResult<()>) + Send>;
type Job = Box<dyn FnOnce(Option<&mut Transaction>) -> Done + Send>;

pub struct SqliteStore {
    writer: mpsc::SyncSender<Job>,
    readers: Arc<ReadPool>,
    /// One permit per read connection, taken before a blocking thread is asked for: thousands
    /// of concurrent reads (a reconnect storm's presence lookups) wait here, as futures, instead
    /// of each holding a blocking-pool thread parked on the pool.
    read_permits: Arc<tokio::sync::Semaphore>,
    /// Dropped with the store, which ends the checkpoint thread.
    _stop_checkpoints: mpsc::Sender<()>,
    /// Senders already in `sender_rooms` (written once per pair and process).
    seen_senders: Arc<crate::store::SeenSenders>,
}

struct ReadPool {
    conns: Mutex<Vec<Connection>>,
    available: Condvar,
}

impl ReadPool {
    fn take(&self) -> Connection {
        let mut conns = self.conns.lock();
        loop {
            if let Some(c) = conns.pop() {
                return c;
            }
            self.available.wait(&mut conns);
        }
    }

    fn put(&self, conn: Connection) {
        self.conns.lock().push(conn);
        self.available.notify_one();
    }
}

fn unavailable(cause: impl std::fmt::Display) -> ErrorBody {
    super::unavailable_from("embedded", cause)
}

fn open_conn(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    // Room for every statement the writer and readers use, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals and sorts in memory, not in temporary files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// Applies every migration not yet applied. Returns how many ran.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let mut ran = 0;
    for (version, sql) in MIGRATIONS {
        let rebuilds = sql.lines().any(|l| l.trim() == FOREIGN_KEYS_OFF);
        if rebuilds {
            conn.pragma_update(None, "foreign_keys", "OFF")?;
        }
        let result = migrate_one(conn, *version, sql, rebuilds);
        if rebuilds {
            conn.pragma_update(None, "foreign_keys", "ON")?;
        }
        ran += result?;
    }
    Ok(ran)
}

/// Runs one migration in its own transaction unless it ran before; answers 1 if it ran.
fn migrate_one(
    conn: &mut Connection,
    version: i64,
    sql: &str,
    check_keys: bool,
) -> rusqlite::Result<usize> {
    let mut ran = 0;
    {
        let tx = conn.transaction()?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            tx.execute_batch(sql)?;
            if version == ADMIN_VERSION {
                index_every_name(&tx)?;
            }
            if check_keys {
                let broken: Option<String> = tx
                    .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                    .optional()?;
                if let Some(table) = broken {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                        Some(format!(
                            "migration {version} broke a foreign key of {table}"
                        )),
                    ));
                }
            }
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, dovie_actors::now_ms()],
            )?;
            ran += 1;
        }
        tx.commit()?;
    }
    Ok(ran)
}

/// Puts every account's name into the name index (before [`ADMIN_VERSION`] only discoverable
/// accounts were in it).
fn index_every_name(c: &Connection) -> rusqlite::Result<()> {
    let ids: Vec<String> = c
        .prepare("SELECT id FROM users WHERE discoverable = 0")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        users::reindex_name(c, &id).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(e.message),
            )
        })?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/dovie.db`, applies migrations, starts the writer thread.
    pub fn open(
        dir: &Path,
        synchronous: &str,
        read_connections: usize,
    ) -> Result<SqliteStore, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("dovie.db");
        let mut writer =
            open_conn(&path, synchronous).map_err(|e| format!("{}: {e}", path.display()))?;
        migrate(&mut writer).map_err(|e| format!("migrating {}: {e}", path.display()))?;
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(|e| e.to_string())?;
        let checkpointer = open_conn(&path, synchronous).map_err(|e| e.to_string())?;
        let mut conns = Vec::new();
        for _ in 0..read_connections.max(1) {
            conns.push(open_conn(&path, synchronous).map_err(|e| e.to_string())?);
        }
        let (tx, rx) = mpsc::sync_channel::<Job>(8192);
        std::thread::Builder::new()
            .name("dovie-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| e.to_string())?;
        let (stop_checkpoints, stop) = mpsc::channel();
        std::thread::Builder::new()
            .name("dovie-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, stop))
            .map_err(|e| e.to_string())?;
        let read_connections = conns.len();
        Ok(SqliteStore {
            writer: tx,
            _stop_checkpoints: stop_checkpoints,
            seen_senders: Default::default(),
            read_permits: Arc::new(tokio::sync::Semaphore::new(read_connections)),
            readers: Arc::new(ReadPool {
                conns: Mutex::new(conns),
                available: Condvar::new(),
            }),
        })
    }

    /// Runs `f` in the writer's next group commit; answers after the commit.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |t: Option<&mut Transaction>| -> Done {
            let result = match t {
                None => Err(unavailable("no transaction")),
                Some(t) => in_savepoint(t, f),
            };
            Box::new(move |commit: StoreResult<()>| {
                let _ = tx.send(commit.and(result));
            })
        });
        let started = std::time::Instant::now();
        // The queue is bounded: only a full queue needs a blocking thread to wait on.
        match self.writer.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(unavailable("writer stopped")),
            Err(mpsc::TrySendError::Full(job)) => {
                let writer = self.writer.clone();
                tokio::task::spawn_blocking(move || writer.send(job))
                    .await
                    .map_err(unavailable)?
                    .map_err(|_| unavailable("writer stopped"))?;
            }
        }
        let r = rx
            .await
            .map_err(|_| unavailable("writer dropped the job"))?;
        crate::metrics::store_op("write", started.elapsed());
        r
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let pool = self.readers.clone();
        let started = std::time::Instant::now();
        let _permit = self
            .read_permits
            .acquire()
            .await
            .map_err(|_| unavailable("store closed"))?;
        let r = tokio::task::spawn_blocking(move || {
            let conn = pool.take();
            let r = f(&conn);
            pool.put(conn);
            r
        })
        .await
        .map_err(unavailable)?;
        crate::metrics::store_op("read", started.elapsed());
        r
    }
}

/// Runs one job in a savepoint of the group commit: its writes count only if it succeeds, and
/// a failing job leaves the other jobs' writes alone. The savepoint statements are cached (the
/// per-job parse of `SAVEPOINT`/`RELEASE` showed in the writer's profile).
fn in_savepoint<T>(
    t: &mut Transaction,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    exec_cached(t, "SAVEPOINT job", [])?;
    let r = f(t);
    if r.is_err() {
        exec_cached(t, "ROLLBACK TO job", [])?;
    }
    exec_cached(t, "RELEASE job", [])?;
    r
}

/// Executes a statement from the connection's statement cache (parsed once per connection).
fn exec_cached(c: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
    db(c.prepare_cached(sql).and_then(|mut st| st.execute(params)))
}

/// Indexes up to `limit` messages not yet in the full-text index, inside the caller's
/// transaction; answers how many.
fn index_pending(c: &Connection, limit: i64) -> StoreResult<usize> {
    let upto: i64 = db(c.query_row(
        "SELECT indexed_upto FROM fts_progress WHERE id = 1",
        [],
        |r| r.get(0),
    ))?;
    let last: Option<i64> = db(c.query_row(
        "SELECT MAX(rowid) FROM (SELECT rowid FROM messages WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)",
        params![upto, limit],
        |r| r.get(0),
    ))?;
    let Some(last) = last else {
        return Ok(0);
    };
    let n = db(c.execute(
        "INSERT INTO messages_fts(rowid, content) SELECT rowid, content FROM messages WHERE rowid > ?1 AND rowid <= ?2",
        params![upto, last],
    ))?;
    db(c.execute(
        "UPDATE fts_progress SET indexed_upto = ?1 WHERE id = 1",
        [last],
    ))?;
    Ok(n)
}

/// One indexing transaction of its own; answers whether messages may remain unindexed.
fn index_step(conn: &mut Connection) -> bool {
    let started = Instant::now();
    let result = conn.transaction().map_err(unavailable).and_then(|t| {
        let n = index_pending(&t, INDEX_BATCH)?;
        t.commit().map_err(unavailable)?;
        Ok(n)
    });
    crate::metrics::store_writer("index", started.elapsed());
    match result {
        Ok(n) => n as i64 >= INDEX_BATCH,
        Err(e) => {
            tracing::warn!(error = %e.message, "full-text indexing failed; will retry");
            true
        }
    }
}

/// Copies committed WAL frames into the database every [`CHECKPOINT_EVERY`], beside the writer
/// (a passive checkpoint never blocks a commit). Stops when the store is dropped (`stop`
/// disconnects).
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let started = Instant::now();
        let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match r {
            Ok((log, done)) if log > 0 => {
                crate::metrics::store_writer("checkpoint", started.elapsed());
                tracing::trace!(log, done, "checkpoint");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; will retry"),
        }
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    // Whether messages may be waiting for the full-text index, and when it last caught up.
    let mut unindexed = true;
    let mut last_index = Instant::now();
    loop {
        let first = if unindexed {
            let wait = INDEX_EVERY.saturating_sub(last_index.elapsed());
            match rx.recv_timeout(wait) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    unindexed = index_step(&mut conn);
                    last_index = Instant::now();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        unindexed = true;
        if last_index.elapsed() >= INDEX_EVERY {
            unindexed = index_step(&mut conn);
            last_index = Instant::now();
        }
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_COMMIT {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        crate::metrics::store_commit_jobs(jobs.len());
        match conn.transaction() {
            Ok(mut t) => {
                let dones: Vec<Done> = jobs.into_iter().map(|j| j(Some(&mut t))).collect();
                let commit = t.commit().map_err(unavailable);
                crate::metrics::store_writer("commit", started.elapsed());
                for d in dones {
                    d(commit.clone());
                }
            }
            Err(e) => {
                let err = unavailable(e);
                for j in jobs {
                    j(None)(Err(err.clone()));
                }
            }
        }
    }
}

fn db<T>(r: rusqlite::Result<T>) -> StoreResult<T> {
    r.map_err(unavailable)
}

fn message_from_row(r: &Row) -> rusqlite::Result<Message> {
    let kind: String = r.get(4)?;
    let hashtags: String = r.get(8)?;
    let reactions: String = r.get(9)?;
    let attachments: String = r.get(10)?;
    Ok(Message {
        id: r.get(0)?,
        room_id: r.get(1)?,
        seq: r.get::<_, i64>(2)? as u64,
        sender_id: r.get(3)?,
        kind: MessageKind::parse(&kind).unwrap_or(MessageKind::Text),
        content: r.get(5)?,
        nonce: r.get(6)?,
        reply_to: r.get(7)?,
        hashtags: serde_json::from_str(&hashtags).unwrap_or_default(),
        reactions: serde_json::from_str(&reactions).unwrap_or_default(),
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        created_at: r.get(11)?,
        edited_at: r.get(12)?,
        deleted: r.get::<_, i64>(13)? != 0,
        link_previews: serde_json::from_str(&r.get::<_, String>(14)?).unwrap_or_default(),
        location: r
            .get::<_, Option<String>>(15)?
            .and_then(|j| serde_json::from_str(&j).ok()),
        suggest_location: r.get::<_, i64>(16)? != 0,
        mentions: serde_json::from_str(&r.get::<_, String>(17)?).unwrap_or_default(),
    })
}

fn user_from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        display_name: r.get(2)?,
        avatar_url: r.get(3)?,
        bio: r.get(4)?,
        created_at: r.get(5)?,
        role: UserRole::parse(&r.get::<_, String>(6)?).unwrap_or_default(),
        phone: r.get(7)?,
        status_message: r.get(8)?,
        theme: Theme::parse(&r.get::<_, String>(9)?).unwrap_or_default(),
        locale: r.get(10)?,
        presence_visible: r.get::<_, i64>(11)? != 0,
        discoverable: r.get::<_, i64>(12)? != 0,
        time_zone: r.get(13)?,
    })
}

/// The columns [`user_from_row`] reads, in its order.
const USER_COLUMNS: &str = "id, email, display_name, avatar_url, bio, created_at, role, phone, \
     status_message, theme, locale, presence_visible, discoverable, time_zone";

fn query_messages(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<Message>> {
    let mut stmt = db(conn.prepare_cached(sql))?;
    let rows = db(stmt.query_map(params, message_from_row))?;
    rows.map(db).collect()
}

fn get_message(conn: &Connection, id: &str) -> StoreResult<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1");
    Ok(query_messages(conn, &sql, [id])?.into_iter().next())
}

/// The one row `sql` finds, if any, from the connection's statement cache (a fresh prepare of
/// a point read cost more than the read itself on the hot paths: every member check loads the
/// room, every list its users).
fn query_one<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&Row) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    let mut st = db(c.prepare_cached(sql))?;
    db(st.query_row(params, map).optional())
}

fn load_room(conn: &Connection, id: &str) -> StoreResult<Option<Room>> {
    let row = query_one(
        conn,
        "SELECT id, type, name, created_by, created_at FROM chat_rooms WHERE id = ?1",
        [id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )?;
    let Some((id, kind, name, created_by, created_at)) = row else {
        return Ok(None);
    };
    let mut stmt = db(conn.prepare_cached(
        "SELECT user_id, role FROM chat_participants WHERE room_id = ?1 ORDER BY joined_at, user_id",
    ))?;
    let members = db(stmt.query_map([&id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    }))?;
    let mut member_ids = Vec::new();
    let mut roles = BTreeMap::new();
    for m in members {
        let (user, role) = db(m)?;
        roles.insert(user.clone(), Role::parse(&role).unwrap_or(Role::Member));
        member_ids.push(user);
    }
    Ok(Some(Room {
        id,
        kind: RoomType::parse(&kind).unwrap_or(RoomType::Group),
        name,
        member_ids,
        created_by,
        created_at,
        roles,
    }))
}

fn room_or_404(conn: &Connection, id: &str) -> StoreResult<Room> {
    load_room(conn, id)?.ok_or_else(|| not_found("room"))
}

fn last_seq(conn: &Connection, room_id: &str) -> StoreResult<Option<u64>> {
    let v: Option<i64> = db(conn
        .prepare_cached("SELECT last_seq FROM chat_rooms WHERE id = ?1")
        .and_then(|mut st| st.query_row([room_id], |r| r.get(0)).optional()))?;
    Ok(v.map(|v| v as u64))
}

fn replace_hashtags(conn: &Connection, m: &Message) -> StoreResult<()> {
    db(conn.execute(
        "DELETE FROM message_hashtags WHERE message_id = ?1",
        [&m.id],
    ))?;
    insert_hashtags(conn, m)
}

/// Indexes a message's hashtags (a new message has none indexed yet).
fn insert_hashtags(conn: &Connection, m: &Message) -> StoreResult<()> {
    if m.hashtags.is_empty() {
        return Ok(());
    }
    let mut stmt = db(conn.prepare_cached(
        "INSERT OR IGNORE INTO message_hashtags (tag, message_id, room_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    ))?;
    for tag in &m.hashtags {
        db(stmt.execute(params![tag, m.id, m.room_id, m.created_at]))?;
    }
    Ok(())
}

/// The FTS5 query for a user's query: each word quoted (no operator reaches the parser), the
/// last one as a prefix; the same rules as `text::matches`.
fn fts_query(query: &str) -> Option<String> {
    let words = super::text::query_words(query);
    if words.is_empty() {
        return None;
    }
    let star = if super::text::last_is_prefix(&words) {
        "*"
    } else {
        ""
    };
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    Some(format!("{}{star}", quoted.join(" ")))
}

fn reactions_of(conn: &Connection, message_id: &str) -> StoreResult<BTreeMap<String, Vec<String>>> {
    let mut stmt = db(conn.prepare_cached(
        "SELECT emoji, user_id FROM message_likes WHERE message_id = ?1 ORDER BY created_at, user_id",
    ))?;
    let rows = db(stmt.query_map([message_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    }))?;
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows {
        let (emoji, user) = db(row)?;
        map.entry(emoji).or_default().push(user);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_job_leaves_the_other_jobs_of_its_commit_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER UNIQUE)")
            .unwrap();
        let mut t = conn.transaction().unwrap();
        in_savepoint(&mut t, |c| exec_cached(c, "INSERT INTO t VALUES (1)", [])).unwrap();
        // Writes, then fails: its write must not survive.
        let failed = in_savepoint(&mut t, |c| {
            exec_cached(c, "INSERT INTO t VALUES (2)", [])?;
            exec_cached(c, "INSERT INTO t VALUES (1)", [])
        });
        assert!(failed.is_err());
        in_savepoint(&mut t, |c| exec_cached(c, "INSERT INTO t VALUES (3)", [])).unwrap();
        t.commit().unwrap();
        let mut st = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows: Vec<i64> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows, vec![1, 3]);
    }

    #[test]
    fn fts_queries_are_quoted() {
        assert_eq!(
            fts_query("hello wor").as_deref(),
            Some("\"hello\" \"wor\"*")
        );
        assert_eq!(fts_query("a\"b OR").as_deref(), Some("\"a\" \"b\" \"or\"*"));
        assert_eq!(fts_query("x y").as_deref(), Some("\"x\" \"y\""));
        assert_eq!(fts_query("  ?! "), None);
    }
}
