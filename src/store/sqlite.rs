//! The embedded store: SQLite in WAL mode, FTS5 for search.
//!
//! One writer thread owns the only write connection and commits in groups: it takes every job
//! waiting in its queue, runs each in its own savepoint inside one transaction, commits once
//! (fsync once, with `synchronous = FULL`), then answers all of them. A job's answer is sent only
//! after the commit, so an `Ok` always means durable. A checkpoint thread with its own
//! connection copies the write-ahead log back into the database beside it, so commits never
//! wait for a checkpoint. Reads run on a small pool of read
//! connections via `spawn_blocking`, never on the async runtime's threads.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dovie_actors::ports::{AppendError, AppendOutcome, Draft, ReceiptKind, RoomSnapshot};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::{Message, MessageKind, Role, Room, RoomType, User};
use parking_lot::{Condvar, Mutex};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::*;

/// The schema migrations, in order. Each runs once, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../schema/sqlite/0001_init.sql")),
    (2, include_str!("../../schema/sqlite/0002_deferred_fts.sql")),
];
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
const MESSAGE_COLUMNS: &str =
    "id, room_id, seq, sender_id, kind, content, nonce, reply_to, hashtags, \
     reactions, attachments, created_at, edited_at, deleted";

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
    })
}

const USER_COLUMNS: &str = "id, email, display_name, avatar_url, bio, created_at";

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

fn load_room(conn: &Connection, id: &str) -> StoreResult<Option<Room>> {
    let row = db(conn
        .query_row(
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
        )
        .optional())?;
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

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, record: UserRecord) -> StoreResult<User> {
        self.write(move |c| {
            let u = &record.user;
            let r = c.execute(
                "INSERT INTO users (id, email, password_hash, display_name, avatar_url, bio, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![u.id, u.email, record.password_hash, u.display_name, u.avatar_url, u.bio, u.created_at],
            );
            match r {
                Ok(_) => Ok(record.user),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(ErrorBody::new(ErrorCode::Conflict, "an account with this email exists"))
                }
                Err(e) => Err(unavailable(e)),
            }
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_string();
        self.read(move |c| {
            db(c.query_row(
                &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1"),
                [&email],
                |r| {
                    Ok(UserRecord {
                        user: user_from_row(r)?,
                        password_hash: r.get(6)?,
                    })
                },
            )
            .optional())
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_string();
        self.read(move |c| {
            db(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [&id],
                user_from_row,
            )
            .optional())
        })
        .await
    }

    async fn existing_users(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached("SELECT 1 FROM users WHERE id = ?1"))?;
            let mut found = Vec::new();
            for id in ids {
                if db(stmt.exists([&id]))? {
                    found.push(id);
                }
            }
            Ok(found)
        })
        .await
    }
}

#[async_trait]
impl AuthStore for SqliteStore {
    async fn create_session(&self, s: AuthSession, refresh_hash: &str) -> StoreResult<()> {
        let refresh_hash = refresh_hash.to_string();
        self.write(move |c| {
            db(c.execute(
                "INSERT INTO auth_sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![s.id, s.user_id, s.created_at, s.expires_at],
            ))?;
            db(c.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![refresh_hash, s.id, s.created_at, s.expires_at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        old: &str,
        new: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Rotation> {
        let (old, new) = (old.to_string(), new.to_string());
        self.write(move |c| {
            let row = db(c
                .query_row(
                    "SELECT s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at, t.used_at, t.expires_at \
                     FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = ?1",
                    [&old],
                    |r| {
                        Ok((
                            AuthSession {
                                id: r.get(0)?,
                                user_id: r.get(1)?,
                                created_at: r.get(2)?,
                                expires_at: r.get(3)?,
                                revoked_at: r.get(4)?,
                            },
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )
                .optional())?;
            let Some((mut session, used_at, token_expires)) = row else {
                return Ok(Rotation::Invalid);
            };
            if session.revoked_at.is_some() || token_expires <= now {
                return Ok(Rotation::Invalid);
            }
            if used_at.is_some() {
                // A spent token came back: someone holds a copy. Revoke the whole family.
                db(c.execute("UPDATE auth_sessions SET revoked_at = ?2 WHERE id = ?1", params![session.id, now]))?;
                session.revoked_at = Some(now);
                return Ok(Rotation::Reused(session));
            }
            db(c.execute("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1", params![old, now]))?;
            db(c.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![new, session.id, now, expires_at],
            ))?;
            db(c.execute("UPDATE auth_sessions SET expires_at = ?2 WHERE id = ?1", params![session.id, expires_at]))?;
            session.expires_at = expires_at;
            Ok(Rotation::Rotated(session))
        })
        .await
    }

    async fn revoke_session(&self, session_id: &str, at: i64) -> StoreResult<()> {
        let id = session_id.to_string();
        self.write(move |c| {
            db(c.execute(
                "UPDATE auth_sessions SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, at],
            ))?;
            Ok(())
        })
        .await
    }

    async fn revoked_since(&self, since: i64) -> StoreResult<Vec<String>> {
        self.read(move |c| {
            let mut stmt =
                db(c.prepare_cached("SELECT id FROM auth_sessions WHERE revoked_at >= ?1"))?;
            let rows = db(stmt.query_map([since], |r| r.get::<_, String>(0)))?;
            rows.map(db).collect()
        })
        .await
    }
}

#[async_trait]
impl RoomRecords for SqliteStore {
    async fn create_room(&self, room: Room) -> StoreResult<Created> {
        self.write(move |c| {
            let direct_key = (room.kind == RoomType::Direct).then(|| {
                let mut pair = room.member_ids.clone();
                pair.sort();
                pair.join(":")
            });
            let inserted = db(c.execute(
                "INSERT INTO chat_rooms (id, type, name, created_by, created_at, direct_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (direct_key) DO NOTHING",
                params![room.id, room.kind.as_str(), room.name, room.created_by, room.created_at, direct_key],
            ))?;
            if inserted == 0 {
                let existing: String = db(c.query_row(
                    "SELECT id FROM chat_rooms WHERE direct_key = ?1",
                    [&direct_key],
                    |r| r.get(0),
                ))?;
                return Ok(Created::Existing(room_or_404(c, &existing)?));
            }
            let mut stmt = db(c.prepare_cached(
                "INSERT INTO chat_participants (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
            ))?;
            for (i, user) in room.member_ids.iter().enumerate() {
                let role = room.role_of(user).unwrap_or(Role::Member);
                db(stmt.execute(params![room.id, user, role.as_str(), room.created_at + i as i64]))?;
            }
            Ok(Created::New(room_or_404(c, &room.id)?))
        })
        .await
    }

    async fn get_room(&self, id: &str) -> StoreResult<Option<Room>> {
        let id = id.to_string();
        self.read(move |c| load_room(c, &id)).await
    }

    async fn rename_room(&self, id: &str, name: Option<&str>) -> StoreResult<Room> {
        let (id, name) = (id.to_string(), name.map(str::to_string));
        self.write(move |c| {
            db(c.execute(
                "UPDATE chat_rooms SET name = ?2 WHERE id = ?1",
                params![id, name],
            ))?;
            room_or_404(c, &id)
        })
        .await
    }

    async fn delete_room(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |c| {
            let n = db(c.execute("DELETE FROM chat_rooms WHERE id = ?1", [&id]))?;
            if n == 0 {
                return Err(not_found("room"));
            }
            Ok(())
        })
        .await
    }

    async fn add_members(
        &self,
        id: &str,
        members: &[(String, Role)],
        max: usize,
    ) -> StoreResult<Room> {
        let (id, members) = (id.to_string(), members.to_vec());
        self.write(move |c| {
            let room = room_or_404(c, &id)?;
            let new: Vec<&(String, Role)> = members.iter().filter(|(u, _)| !room.is_member(u)).collect();
            if room.member_ids.len() + new.len() > max {
                return Err(ErrorBody::new(ErrorCode::RoomFull, format!("a group has at most {max} members")));
            }
            let now = dovie_actors::now_ms();
            let last = last_seq(c, &id)?.unwrap_or(0) as i64;
            let mut stmt = db(c.prepare_cached(
                "INSERT INTO chat_participants (room_id, user_id, role, joined_at, read_seq, delivered_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            ))?;
            for (i, (user, role)) in new.into_iter().enumerate() {
                // A new member has nothing unread from before they joined.
                db(stmt.execute(params![id, user, role.as_str(), now + i as i64, last]))?;
            }
            room_or_404(c, &id)
        })
        .await
    }

    async fn remove_member(&self, id: &str, user_id: &str) -> StoreResult<Room> {
        let (id, user_id) = (id.to_string(), user_id.to_string());
        self.write(move |c| {
            let n = db(c.execute(
                "DELETE FROM chat_participants WHERE room_id = ?1 AND user_id = ?2",
                params![id, user_id],
            ))?;
            if n == 0 {
                return Err(not_found("member"));
            }
            room_or_404(c, &id)
        })
        .await
    }

    async fn set_role(&self, id: &str, user_id: &str, role: Role) -> StoreResult<Room> {
        let (id, user_id) = (id.to_string(), user_id.to_string());
        self.write(move |c| {
            let n = db(c.execute(
                "UPDATE chat_participants SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
                params![id, user_id, role.as_str()],
            ))?;
            if n == 0 {
                return Err(not_found("member"));
            }
            room_or_404(c, &id)
        })
        .await
    }

    async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<RoomSummary>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                "SELECT r.id, r.last_seq, p.read_seq FROM chat_rooms r \
                 JOIN chat_participants p ON p.room_id = r.id WHERE p.user_id = ?1",
            ))?;
            let rows: Vec<(String, i64, i64)> = db(stmt
                .query_map([&user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>()))?;
            let last_sql =
                format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq = ?2");
            let mut out = Vec::with_capacity(rows.len());
            for (room_id, last, read) in rows {
                let Some(room) = load_room(c, &room_id)? else {
                    continue;
                };
                let last_message = query_messages(c, &last_sql, params![room_id, last])?
                    .into_iter()
                    .next();
                out.push(RoomSummary {
                    room,
                    last_message,
                    unread_count: (last - read).max(0) as u64,
                });
            }
            out.sort_by_key(|s| {
                std::cmp::Reverse(
                    s.last_message
                        .as_ref()
                        .map_or(s.room.created_at, |m| m.created_at),
                )
            });
            Ok(out)
        })
        .await
    }

    async fn room_ids_of(&self, user_id: &str) -> StoreResult<Vec<String>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt =
                db(c.prepare_cached("SELECT room_id FROM chat_participants WHERE user_id = ?1"))?;
            let rows = db(stmt.query_map([&user_id], |r| r.get::<_, String>(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn unread_counts(&self, user_id: &str) -> StoreResult<HashMap<String, u64>> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                "SELECT r.id, MAX(r.last_seq - p.read_seq, 0) FROM chat_rooms r \
                 JOIN chat_participants p ON p.room_id = r.id WHERE p.user_id = ?1",
            ))?;
            let rows = db(stmt.query_map([&user_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            }))?;
            rows.map(db).collect()
        })
        .await
    }
}

#[async_trait]
impl History for SqliteStore {
    async fn history(
        &self,
        room_id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            let take = limit as i64 + 1;
            let lo = after.unwrap_or(0) as i64;
            let hi = before.map_or(i64::MAX, |b| b as i64);
            let (sql, ascending) = if after.is_some() {
                (format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq ASC LIMIT ?4"), true)
            } else {
                (format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"), false)
            };
            let mut messages = query_messages(c, &sql, params![room_id, lo, hi, take])?;
            let has_more = messages.len() > limit;
            messages.truncate(limit);
            if !ascending {
                messages.reverse();
            }
            Ok(Page { messages, has_more })
        })
        .await
    }

    async fn search(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        query: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let Some(q) = fts_query(query) else {
            return Ok(Vec::new());
        };
        // Everything sent before this search is searchable: bring the index up to date first.
        self.write(|c| {
            while index_pending(c, INDEX_BATCH)? as i64 >= INDEX_BATCH {}
            Ok(())
        })
        .await?;
        let (user_id, room_id) = (user_id.to_string(), room_id.map(str::to_string));
        self.read(move |c| {
            let cols = MESSAGE_COLUMNS
                .split(", ")
                .map(|col| format!("m.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {cols} FROM messages_fts f JOIN messages m ON m.rowid = f.rowid \
                 JOIN chat_participants p ON p.room_id = m.room_id AND p.user_id = ?1 \
                 WHERE messages_fts MATCH ?2 AND m.deleted = 0 AND (?3 IS NULL OR m.room_id = ?3) \
                 ORDER BY m.created_at DESC, m.seq DESC LIMIT ?4"
            );
            query_messages(c, &sql, params![user_id, q, room_id, limit as i64])
        })
        .await
    }

    async fn by_hashtag(
        &self,
        user_id: &str,
        tag: &str,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let (user_id, tag) = (
            user_id.to_string(),
            tag.trim_start_matches('#').to_lowercase(),
        );
        self.read(move |c| {
            let cols = MESSAGE_COLUMNS
                .split(", ")
                .map(|col| format!("m.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {cols} FROM message_hashtags h JOIN messages m ON m.id = h.message_id \
                 JOIN chat_participants p ON p.room_id = h.room_id AND p.user_id = ?1 \
                 WHERE h.tag = ?2 AND m.deleted = 0 ORDER BY h.created_at DESC LIMIT ?3"
            );
            query_messages(c, &sql, params![user_id, tag, limit as i64])
        })
        .await
    }
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

#[async_trait]
impl dovie_actors::RoomStore for SqliteStore {
    async fn load_room(
        &self,
        room_id: &str,
        window: usize,
    ) -> Result<Option<RoomSnapshot>, ErrorBody> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            let Some(room) = load_room(c, &room_id)? else {
                return Ok(None);
            };
            let last_seq = last_seq(c, &room_id)?.unwrap_or(0);
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 ORDER BY seq DESC LIMIT ?2");
            let mut recent = query_messages(c, &sql, params![room_id, window as i64])?;
            recent.reverse();
            // One process owns an embedded store: no epochs to claim.
            Ok(Some(RoomSnapshot { room, last_seq, recent, epoch: 0 }))
        })
        .await
    }

    async fn append(
        &self,
        room_id: &str,
        _epoch: u64,
        first_seq: u64,
        drafts: Vec<Draft>,
    ) -> Result<Vec<AppendOutcome>, AppendError> {
        let room_id = room_id.to_string();
        let result = self
            .write(move |c| {
                let stored_last = last_seq(c, &room_id)?.ok_or_else(|| not_found("room"))?;
                if stored_last + 1 != first_seq {
                    return Ok(Err(stored_last));
                }
                let mut next = first_seq;
                let mut out = Vec::with_capacity(drafts.len());
                let mut read_upto: HashMap<String, u64> = HashMap::new();
                // A repeated nonce inserts nothing (the unique index answers it in the same
                // probe as the insert); only then is the stored message looked up.
                let mut insert = db(c.prepare_cached(
                    "INSERT INTO messages (id, room_id, seq, sender_id, kind, content, nonce, reply_to, hashtags, created_at) \
                     VALUES (?1, ?2, ?3, ?4, 'text', ?5, ?6, ?7, ?8, ?9) \
                     ON CONFLICT (room_id, sender_id, nonce) WHERE nonce IS NOT NULL DO NOTHING",
                ))?;
                let mut reply_exists = db(c.prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND room_id = ?2"))?;
                let mut receipt = db(c.prepare_cached(
                    "UPDATE chat_participants SET read_seq = MAX(read_seq, ?3), delivered_seq = MAX(delivered_seq, ?3) \
                     WHERE room_id = ?1 AND user_id = ?2",
                ))?;
                for d in drafts {
                    if let Some(reply_to) = &d.reply_to {
                        if !db(reply_exists.exists(params![reply_to, room_id]))? {
                            out.push(AppendOutcome::Rejected(ErrorBody::new(
                                ErrorCode::ValidationFailed,
                                "reply_to names no message of this room",
                            )));
                            continue;
                        }
                    }
                    let hashtags = serde_json::to_string(&d.hashtags).unwrap_or_else(|_| "[]".into());
                    let inserted = db(insert.execute(params![
                        d.id, room_id, next as i64, d.sender_id, d.content, d.nonce, d.reply_to, hashtags, d.created_at
                    ]))?;
                    if inserted == 0 {
                        // The nonce was used before: answer the stored message.
                        let by_nonce = format!(
                            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND sender_id = ?2 AND nonce = ?3"
                        );
                        let found = query_messages(c, &by_nonce, params![room_id, d.sender_id, d.nonce])?;
                        match found.into_iter().next() {
                            Some(m) => out.push(AppendOutcome::Duplicate(m)),
                            None => return Err(unavailable("a message was neither stored nor found by its nonce")),
                        }
                        continue;
                    }
                    // Sending implies having read everything up to one's own message (one
                    // update per sender and batch, below).
                    read_upto.insert(d.sender_id.clone(), next);
                    let m = d.into_message(&room_id, next);
                    insert_hashtags(c, &m)?;
                    out.push(AppendOutcome::Stored(m));
                    next += 1;
                }
                for (sender, seq) in &read_upto {
                    db(receipt.execute(params![room_id, sender, *seq as i64]))?;
                }
                exec_cached(c, "UPDATE chat_rooms SET last_seq = ?2 WHERE id = ?1", params![room_id, (next - 1) as i64])?;
                Ok(Ok(out))
            })
            .await;
        match result {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(last_seq)) => Err(AppendError::SeqMismatch { last_seq }),
            Err(e) => Err(AppendError::Failed(e)),
        }
    }

    async fn messages_after(
        &self,
        room_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ErrorBody> {
        let room_id = room_id.to_string();
        self.read(move |c| {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3");
            query_messages(c, &sql, params![room_id, after as i64, limit as i64])
        })
        .await
    }

    async fn get_message(&self, message_id: &str) -> Result<Option<Message>, ErrorBody> {
        let id = message_id.to_string();
        self.read(move |c| get_message(c, &id)).await
    }

    async fn edit_message(
        &self,
        id: &str,
        content: &str,
        hashtags: &[String],
        at: i64,
    ) -> Result<Message, ErrorBody> {
        let (id, content, tags) = (id.to_string(), content.to_string(), hashtags.to_vec());
        self.write(move |c| {
            let tags_json = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
            let n = db(c.execute(
                "UPDATE messages SET content = ?2, hashtags = ?3, edited_at = ?4 WHERE id = ?1 AND deleted = 0",
                params![id, content, tags_json, at],
            ))?;
            if n == 0 {
                return Err(not_found("message"));
            }
            let m = get_message(c, &id)?.ok_or_else(|| not_found("message"))?;
            replace_hashtags(c, &m)?;
            Ok(m)
        })
        .await
    }

    async fn delete_message(&self, id: &str, at: i64) -> Result<Message, ErrorBody> {
        let id = id.to_string();
        self.write(move |c| {
            let n = db(c.execute(
                "UPDATE messages SET content = '', hashtags = '[]', reactions = '{}', attachments = '[]', \
                 deleted = 1, edited_at = ?2 WHERE id = ?1",
                params![id, at],
            ))?;
            if n == 0 {
                return Err(not_found("message"));
            }
            db(c.execute("DELETE FROM message_hashtags WHERE message_id = ?1", [&id]))?;
            db(c.execute("DELETE FROM message_likes WHERE message_id = ?1", [&id]))?;
            get_message(c, &id)?.ok_or_else(|| not_found("message"))
        })
        .await
    }

    async fn set_reaction(
        &self,
        id: &str,
        user_id: &str,
        emoji: &str,
        on: bool,
    ) -> Result<Message, ErrorBody> {
        let (id, user_id, emoji) = (id.to_string(), user_id.to_string(), emoji.to_string());
        self.write(move |c| {
            if on {
                db(c.execute(
                    "INSERT OR IGNORE INTO message_likes (message_id, user_id, emoji, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id, user_id, emoji, dovie_actors::now_ms()],
                ))?;
            } else {
                db(c.execute(
                    "DELETE FROM message_likes WHERE message_id = ?1 AND user_id = ?2 AND emoji = ?3",
                    params![id, user_id, emoji],
                ))?;
            }
            let reactions = reactions_of(c, &id)?;
            let json = serde_json::to_string(&reactions).unwrap_or_else(|_| "{}".into());
            db(c.execute("UPDATE messages SET reactions = ?2 WHERE id = ?1", params![id, json]))?;
            get_message(c, &id)?.ok_or_else(|| not_found("message"))
        })
        .await
    }

    async fn set_receipt(
        &self,
        room_id: &str,
        user_id: &str,
        kind: ReceiptKind,
        seq: u64,
    ) -> Result<(), ErrorBody> {
        let (room_id, user_id) = (room_id.to_string(), user_id.to_string());
        self.write(move |c| {
            let sql = match kind {
                ReceiptKind::Read => "UPDATE chat_participants SET read_seq = MAX(read_seq, ?3), \
                                      delivered_seq = MAX(delivered_seq, ?3) WHERE room_id = ?1 AND user_id = ?2",
                ReceiptKind::Delivered => "UPDATE chat_participants SET delivered_seq = MAX(delivered_seq, ?3) \
                                           WHERE room_id = ?1 AND user_id = ?2",
            };
            exec_cached(c, sql, params![room_id, user_id, seq as i64])?;
            Ok(())
        })
        .await
    }

    async fn current_epoch(&self, _room_id: &str) -> Result<u64, ErrorBody> {
        Ok(0)
    }

    async fn co_members(&self, user_id: &str) -> Result<Vec<String>, ErrorBody> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                "SELECT DISTINCT b.user_id FROM chat_participants a JOIN chat_participants b ON a.room_id = b.room_id \
                 WHERE a.user_id = ?1 AND b.user_id != ?1",
            ))?;
            let rows = db(stmt.query_map([&user_id], |r| r.get::<_, String>(0)))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn presence_audience(
        &self,
        user_id: &str,
        max_room_members: usize,
    ) -> Result<Vec<String>, ErrorBody> {
        let user_id = user_id.to_string();
        self.read(move |c| {
            let mut stmt = db(c.prepare_cached(
                // The user's small rooms first (each counted only up to the limit), then
                // their members: a large room costs at most `limit + 1` rows, once.
                "WITH small AS MATERIALIZED ( \
                     SELECT m.room_id FROM chat_participants m WHERE m.user_id = ?1 \
                     AND (SELECT COUNT(*) FROM (SELECT 1 FROM chat_participants n \
                          WHERE n.room_id = m.room_id LIMIT ?2 + 1)) <= ?2) \
                 SELECT DISTINCT b.user_id FROM chat_participants b JOIN small s ON s.room_id = b.room_id \
                 WHERE b.user_id != ?1",
            ))?;
            let rows = db(stmt.query_map(params![user_id, max_room_members as i64], |r| {
                r.get::<_, String>(0)
            }))?;
            rows.map(db).collect()
        })
        .await
    }

    async fn set_last_seen(&self, user_id: &str, at: i64) -> Result<(), ErrorBody> {
        let user_id = user_id.to_string();
        self.write(move |c| {
            db(c.execute(
                "UPDATE users SET last_seen_at = ?2 WHERE id = ?1",
                params![user_id, at],
            ))?;
            Ok(())
        })
        .await
    }
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
