//! The storage conformance suite: one set of tests for the storage traits, run against every
//! store implementation. A backend is added by one line in `backends!` at the bottom; a feature
//! is not done until every backend passes. One file per storage concern, as in `src/store/`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use dovie::store::{AuthSession, Created, Rotation, SharedStore, TagDay, UserRecord, DAY_MS};
use dovie_actors::ports::{AppendError, AppendOutcome, Draft, ReceiptKind};
use dovie_protocol::error::ErrorCode;
use dovie_protocol::model::{Role, Room, RoomType, User, UserRole};

fn user(id: &str) -> UserRecord {
    UserRecord {
        user: User {
            email: Some(format!("{id}@example.com")),
            bio: Some("bio".into()),
            ..User::new(id.into(), id.to_uppercase(), 1)
        },
        password_hash: format!("hash-{id}"),
    }
}

fn room(id: &str, kind: RoomType, members: &[&str]) -> Room {
    let roles: BTreeMap<String, Role> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                m.to_string(),
                if i == 0 && kind == RoomType::Group {
                    Role::Owner
                } else {
                    Role::Member
                },
            )
        })
        .collect();
    Room {
        id: id.into(),
        kind,
        name: Some("name".into()),
        member_ids: members.iter().map(|m| m.to_string()).collect(),
        created_by: members[0].into(),
        created_at: 10,
        roles,
    }
}

fn draft(id: &str, sender: &str, content: &str, nonce: Option<&str>) -> Draft {
    Draft {
        id: id.into(),
        sender_id: sender.into(),
        content: content.into(),
        nonce: nonce.map(str::to_string),
        reply_to: None,
        hashtags: dovie_protocol::model::extract_hashtags(content),
        mentions: dovie_protocol::model::extract_mentions(content),
        created_at: 100,
        kind: dovie_protocol::model::MessageKind::Text,
        attachments: Vec::new(),
        location: None,
        suggest_location: false,
    }
}

async fn seed(store: &SharedStore) {
    for id in ["u1", "u2", "u3"] {
        store.create_user(user(id)).await.unwrap();
    }
    store
        .create_room(room("g", RoomType::Group, &["u1", "u2"]))
        .await
        .unwrap();
}

async fn append_ok(
    store: &SharedStore,
    room: &str,
    first: u64,
    drafts: Vec<Draft>,
) -> Vec<AppendOutcome> {
    let epoch = store.load_room(room, 1).await.unwrap().unwrap().epoch;
    match store.append(room, epoch, first, drafts).await {
        Ok(o) => o,
        Err(AppendError::SeqMismatch { last_seq }) => panic!("seq mismatch, store has {last_seq}"),
        Err(AppendError::Failed(e)) => panic!("append failed: {e:?}"),
        Err(AppendError::Fenced) => panic!("fenced right after claiming"),
    }
}

mod admin;
mod ai;
mod business;
mod files;
mod geo;
mod messages;
mod people;
mod privacy;
mod push;
mod rooms;
mod social;
mod users;

/// Looks under a store, at its tables, for what the traits cannot show (rows left behind).
pub enum Probe {
    Embedded(std::path::PathBuf),
    Cql { nodes: String, keyspace: String },
}

/// What a room may leave behind in a store, to count after a delete.
pub struct Traces<'a> {
    pub room_id: &'a str,
    pub members: &'a [&'a str],
    pub message_ids: &'a [String],
    pub nonces: &'a [(&'a str, &'a str)],
    pub tags: &'a [&'a str],
    pub words: &'a [&'a str],
}

impl Probe {
    /// Rows still there that belong to the room, by table (tables with none are left out).
    pub async fn leftovers(&self, t: &Traces<'_>) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        match self {
            Probe::Embedded(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                let count = |sql: &str, arg: &str| -> usize {
                    c.query_row(sql, [arg], |r| r.get::<_, i64>(0)).unwrap() as usize
                };
                let mut add = |table: &str, n: usize| {
                    if n > 0 {
                        *out.entry(table.to_string()).or_insert(0) += n;
                    }
                };
                add(
                    "chat_rooms",
                    count("SELECT count(*) FROM chat_rooms WHERE id = ?1", t.room_id),
                );
                add(
                    "chat_participants",
                    count(
                        "SELECT count(*) FROM chat_participants WHERE room_id = ?1",
                        t.room_id,
                    ),
                );
                add(
                    "messages",
                    count(
                        "SELECT count(*) FROM messages WHERE room_id = ?1",
                        t.room_id,
                    ),
                );
                for id in t.message_ids {
                    add(
                        "message_likes",
                        count(
                            "SELECT count(*) FROM message_likes WHERE message_id = ?1",
                            id,
                        ),
                    );
                    add(
                        "message_hashtags",
                        count(
                            "SELECT count(*) FROM message_hashtags WHERE message_id = ?1",
                            id,
                        ),
                    );
                }
                for w in t.words {
                    add(
                        "messages_fts",
                        count(
                            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1",
                            w,
                        ),
                    );
                }
            }
            Probe::Cql { nodes, keyspace } => {
                let session = scylla::client::session_builder::SessionBuilder::new()
                    .known_nodes(nodes.split(','))
                    .build()
                    .await
                    .unwrap();
                let count = |cql: String, values: Vec<String>| {
                    let session = &session;
                    async move {
                        session
                            .query_unpaged(cql, values)
                            .await
                            .unwrap()
                            .into_rows_result()
                            .unwrap()
                            .rows_num()
                    }
                };
                let ks = keyspace;
                let room = t.room_id.to_string();
                let mut found: Vec<(&str, usize)> = vec![
                    ("chat_rooms", count(format!("SELECT id FROM {ks}.chat_rooms WHERE id = ?"), vec![room.clone()]).await),
                    ("room_members", count(format!("SELECT user_id FROM {ks}.room_members WHERE room_id = ?"), vec![room.clone()]).await),
                    ("room_rosters", count(format!("SELECT room_id FROM {ks}.room_rosters WHERE room_id = ?"), vec![room.clone()]).await),
                    ("messages", count(format!("SELECT seq FROM {ks}.messages WHERE room_id = ? AND bucket = 0"), vec![room.clone()]).await),
                    ("search_terms", count(format!("SELECT seq FROM {ks}.search_terms WHERE room_id = ? AND bucket = 0"), vec![room.clone()]).await),
                ];
                for u in t.members {
                    let n = count(
                        format!(
                            "SELECT room_id FROM {ks}.user_rooms WHERE user_id = ? AND room_id = ?"
                        ),
                        vec![u.to_string(), room.clone()],
                    )
                    .await;
                    found.push(("user_rooms", n));
                }
                for id in t.message_ids {
                    found.push((
                        "messages_by_id",
                        count(
                            format!("SELECT id FROM {ks}.messages_by_id WHERE id = ?"),
                            vec![id.clone()],
                        )
                        .await,
                    ));
                    found.push((
                        "message_likes",
                        count(
                            format!("SELECT user_id FROM {ks}.message_likes WHERE message_id = ?"),
                            vec![id.clone()],
                        )
                        .await,
                    ));
                }
                for (sender, nonce) in t.nonces {
                    let n = count(format!("SELECT seq FROM {ks}.message_nonces WHERE room_id = ? AND sender_id = ? AND nonce = ?"), vec![room.clone(), sender.to_string(), nonce.to_string()]).await;
                    found.push(("message_nonces", n));
                }
                for tag in t.tags {
                    let n = count(
                        format!("SELECT message_id FROM {ks}.message_hashtags WHERE tag = ?"),
                        vec![tag.to_string()],
                    )
                    .await;
                    found.push(("message_hashtags", n));
                }
                for (table, n) in found {
                    if n > 0 {
                        *out.entry(table.to_string()).or_insert(0) += n;
                    }
                }
            }
        }
        out
    }
}

macro_rules! backends {
    ($($backend:ident => $open:expr;)*) => {
        $(
            mod $backend {
                use super::*;

                async fn open() -> Option<(SharedStore, Box<dyn std::any::Any>, Probe)> {
                    #[allow(unreachable_code)]
                    Some($open)
                }

                #[actix_rt::test]
                async fn geo_live_shares() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::geo::live_shares(s).await;
                }

                #[actix_rt::test]
                async fn geo_history() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::geo::location_history(s).await;
                }

                #[actix_rt::test]
                async fn geo_nearby() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::geo::nearby(s).await;
                }

                #[actix_rt::test]
                async fn geo_location_rooms() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::geo::location_rooms(s).await;
                }

                #[actix_rt::test]
                async fn geo_location_messages() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::geo::location_messages(s).await;
                }

                #[actix_rt::test]
                async fn ai_saved_commands() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::ai::saved_commands(s).await;
                }

                #[actix_rt::test]
                async fn privacy_consents() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::ai::consents(s).await;
                }

                #[actix_rt::test]
                async fn ai_reminders() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::ai::reminders(s).await;
                }

                #[actix_rt::test]
                async fn ai_transcription_jobs() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::ai::transcription_jobs(s).await;
                }

                #[actix_rt::test]
                async fn business_profiles() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::business::profiles(s).await;
                }

                #[actix_rt::test]
                async fn business_networking() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::business::networking(s).await;
                }

                #[actix_rt::test]
                async fn business_analytics() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::business::analytics(s).await;
                }

                #[actix_rt::test]
                async fn admin_audit_log() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::admin::audit_log(s).await;
                }

                #[actix_rt::test]
                async fn admin_accounts_and_suspensions() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::admin::accounts_and_suspensions(s).await;
                }

                #[actix_rt::test]
                async fn admin_reports() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::admin::reports(s).await;
                }

                #[actix_rt::test]
                async fn privacy_exports() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::privacy::exports(s).await;
                }

                #[actix_rt::test]
                async fn privacy_forget_account() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::privacy::forget_account(s).await;
                }

                #[actix_rt::test]
                async fn privacy_what_a_user_wrote() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::privacy::what_a_user_wrote(s).await;
                }

                #[actix_rt::test]
                async fn admin_every_room() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::admin::every_room_page_by_page(s).await;
                }

                #[actix_rt::test]
                async fn social_posts() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::social::posts(s).await;
                }

                #[actix_rt::test]
                async fn social_likes_and_comments() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::social::likes_and_comments(s).await;
                }

                #[actix_rt::test]
                async fn social_follows() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::social::follows(s).await;
                }

                #[actix_rt::test]
                async fn social_activities() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::social::activities(s).await;
                }

                #[actix_rt::test]
                async fn social_trends() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::social::trends(s).await;
                }

                #[actix_rt::test]
                async fn ai_translations() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::ai::translations(s).await;
                }

                #[actix_rt::test]
                async fn push_web_subscriptions() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::push::web_push_subscriptions(s).await;
                }

                #[actix_rt::test]
                async fn push_notification_settings() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::push::notification_settings(s).await;
                }

                #[actix_rt::test]
                async fn push_apns_tokens() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::push::apns_tokens(s).await;
                }

                #[actix_rt::test]
                async fn push_queue() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::push::push_queue(s).await;
                }

                #[actix_rt::test]
                async fn push_settings_of_many() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::push::settings_of_many(s).await;
                }

                #[actix_rt::test]
                async fn users() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::users::users(s).await;
                }

                #[actix_rt::test]
                async fn auth_sessions() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::users::auth_sessions(s).await;
                }

                #[actix_rt::test]
                async fn rooms() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::rooms::rooms(s).await;
                }

                #[actix_rt::test]
                async fn fencing() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::messages::fencing(s).await;
                }

                #[actix_rt::test]
                async fn messages() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::messages::messages(s).await;
                }

                #[actix_rt::test]
                async fn a_room_delete_leaves_nothing() {
                    let Some((s, _guard, probe)) = open().await else { return };
                    crate::rooms::a_room_delete_leaves_nothing(s, probe).await;
                }

                #[actix_rt::test]
                async fn repeated_ids_are_added_once() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::rooms::repeated_ids_are_added_once(s).await;
                }

                #[actix_rt::test]
                async fn the_member_limit_holds_under_concurrent_adds() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::rooms::the_member_limit_holds_under_concurrent_adds(s).await;
                }

                #[actix_rt::test]
                async fn search_finds_old_messages_and_every_word() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::messages::search_finds_old_messages_and_every_word(s).await;
                }

                #[actix_rt::test]
                async fn search_finds_every_word_of_long_messages() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::messages::search_finds_every_word_of_long_messages(s).await;
                }

                #[actix_rt::test]
                async fn search_survives_deleting_the_newest_messages() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::messages::search_survives_deleting_the_newest_messages(s).await;
                }

                #[actix_rt::test]
                async fn user_roles() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::users::user_roles(s).await;
                }

                #[actix_rt::test]
                async fn profiles_and_search() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::people::profiles_and_search(s).await;
                }

                #[actix_rt::test]
                async fn phones_and_identities() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::people::phones_and_identities(s).await;
                }

                #[actix_rt::test]
                async fn sessions_and_addresses() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::people::sessions_and_addresses(s).await;
                }

                #[actix_rt::test]
                async fn phone_verifications() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::people::phone_verifications(s).await;
                }

                #[actix_rt::test]
                async fn contacts() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::people::contacts(s).await;
                }

                #[actix_rt::test]
                async fn blocks_hide_presence_and_close_direct_rooms() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::people::blocks_hide_presence_and_close_direct_rooms(s).await;
                }

                #[actix_rt::test]
                async fn files() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::files::files(s).await;
                }

                #[actix_rt::test]
                async fn file_listings_page_without_gaps() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::files::file_listings_page_without_gaps(s).await;
                }

                #[actix_rt::test]
                async fn link_previews_secrets_and_amendments() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::files::link_previews_secrets_and_amendments(s).await;
                }

                #[actix_rt::test]
                async fn search_follows_edits_and_deletes() {
                    let Some((s, _guard, _probe)) = open().await else { return };
                    crate::messages::search_follows_edits_and_deletes(s).await;
                }
            }
        )*
    };
}

/// The CQL server for the `cql` backend (`scripts/test.sh` starts one and sets this). Without
/// it the CQL tests say so and skip — except in CI, where they fail.
fn cql_contact_points() -> Option<String> {
    match std::env::var("DOVIE_TEST_CQL") {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok() => {
            panic!("DOVIE_TEST_CQL is not set: CI must run the CQL conformance tests")
        }
        _ => {
            eprintln!(
                "DOVIE_TEST_CQL is not set: skipping the CQL backend (scripts/test.sh starts one)"
            );
            None
        }
    }
}

/// Drops a test's keyspace when the test ends (passed or not): every keyspace holds the whole
/// schema, and a CQL server keeps memory per table, so a run must not pile them up.
struct DropKeyspace {
    nodes: String,
    keyspace: String,
}

impl Drop for DropKeyspace {
    fn drop(&mut self) {
        let (nodes, ks) = (self.nodes.clone(), self.keyspace.clone());
        // Its own thread and runtime: the test's runtime may be the one ending.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let session = scylla::client::session_builder::SessionBuilder::new()
                    .known_nodes(nodes.split(','))
                    .build()
                    .await;
                if let Ok(session) = session {
                    let _ = session
                        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), &[])
                        .await;
                }
            });
        })
        .join();
    }
}

/// A fresh, uniquely named keyspace per test.
fn unique_keyspace() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "dovie_t{}_{}_{}",
        nanos % 1_000_000_000_000,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

backends! {
    embedded => {
        let dir = tempfile::tempdir().unwrap();
        let store = dovie::store::sqlite::SqliteStore::open(dir.path(), "NORMAL", 2).unwrap();
        let probe = Probe::Embedded(dir.path().join("dovie.db"));
        (std::sync::Arc::new(store) as SharedStore, Box::new(dir), probe)
    };
    cql => {
        let nodes = cql_contact_points()?;
        let keyspace = unique_keyspace();
        let store = dovie::store::cql::ScyllaStore::open(&nodes, &keyspace, 1).await.unwrap();
        let guard = DropKeyspace { nodes: nodes.clone(), keyspace: keyspace.clone() };
        (std::sync::Arc::new(store) as SharedStore, Box::new(guard), Probe::Cql { nodes, keyspace })
    };
}

/// CQL only: an owner fenced after writing rows (it passed its first epoch check just before
/// another node claimed the room) leaves rows that never show, even when they land last.
#[actix_rt::test]
async fn cql_rows_of_a_fenced_owner_never_show() {
    let Some(nodes) = cql_contact_points() else {
        return;
    };
    let ks = unique_keyspace();
    let store: SharedStore = std::sync::Arc::new(
        dovie::store::cql::ScyllaStore::open(&nodes, &ks, 1)
            .await
            .unwrap(),
    );
    seed(&store).await;
    let stale = store.load_room("g", 1).await.unwrap().unwrap().epoch;
    let current = store.load_room("g", 1).await.unwrap().unwrap().epoch;
    let out = store
        .append(
            "g",
            current,
            1,
            vec![draft("b1", "u2", "from the owner", Some("n"))],
        )
        .await
        .unwrap();
    assert!(matches!(&out[0], AppendOutcome::Stored(m) if m.seq == 1));
    // The fenced owner's writes for the same seq land afterwards.
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(&nodes)
        .build()
        .await
        .unwrap();
    session
        .query_unpaged(
            format!(
                "INSERT INTO {ks}.messages (room_id, bucket, seq, epoch, id, sender_id, kind, content, nonce, created_at, deleted) \
                 VALUES ('g', 0, 1, ?, 'a1', 'u1', 'text', 'from a fenced owner', 'm', 1, false)"
            ),
            (stale as i64,),
        )
        .await
        .unwrap();
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.messages_by_id (id, room_id, seq, epoch) VALUES ('a1', 'g', 1, ?)"),
            (stale as i64,),
        )
        .await
        .unwrap();
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.message_nonces (room_id, sender_id, nonce, epoch, seq) VALUES ('g', 'u1', 'm', ?, 1)"),
            (stale as i64,),
        )
        .await
        .unwrap();
    let page = store.history("g", None, None, 10).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].content, "from the owner");
    assert_eq!(store.messages_after("g", 0, 10).await.unwrap()[0].id, "b1");
    assert!(store.get_message("a1").await.unwrap().is_none());
    assert_eq!(
        store.get_message("b1").await.unwrap().unwrap().content,
        "from the owner"
    );
    // The fenced owner's nonce does not count as sent: sending it now stores it.
    let out = store
        .append(
            "g",
            current,
            2,
            vec![draft("a2", "u1", "retried", Some("m"))],
        )
        .await
        .unwrap();
    assert!(matches!(&out[0], AppendOutcome::Stored(m) if m.seq == 2));
    // And its commit can never succeed.
    assert!(matches!(
        store
            .append("g", stale, 3, vec![draft("a3", "u1", "late", None)])
            .await,
        Err(AppendError::Fenced)
    ));
    let page = store.history("g", None, None, 10).await.unwrap();
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

/// Embedded only: committed pages reach the database file by the checkpoint thread, while the
/// writer's own checkpoint backstop (64 MiB of log) is far away — and every acknowledged
/// message is still there when the store is reopened.
#[actix_rt::test]
async fn embedded_checkpoints_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("dovie.db");
    {
        let store: SharedStore = std::sync::Arc::new(
            dovie::store::sqlite::SqliteStore::open(dir.path(), "FULL", 2).unwrap(),
        );
        seed(&store).await;
        // Let any checkpoint of the seed pass, then measure the file the log is copied into.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let before = std::fs::metadata(&db_file).unwrap().len();
        for i in 0..20u64 {
            let drafts = (0..25)
                .map(|k| {
                    let n = i * 25 + k;
                    draft(
                        &format!("m{n}"),
                        "u1",
                        &"x".repeat(400),
                        Some(&format!("n{n}")),
                    )
                })
                .collect();
            append_ok(&store, "g", i * 25 + 1, drafts).await;
        }
        // 500 messages of 400 bytes: about 50 pages, well under the writer's backstop.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let now = std::fs::metadata(&db_file).unwrap().len();
            if now >= before + 150_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stayed at {now} bytes (was {before}): nothing was checkpointed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let store: SharedStore = std::sync::Arc::new(
        dovie::store::sqlite::SqliteStore::open(dir.path(), "FULL", 2).unwrap(),
    );
    let page = store.history("g", None, None, 500).await.unwrap();
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=500).collect::<Vec<u64>>());
}

/// CQL only: the migration that introduced `search_terms` indexes the history already stored
/// (simulated: the index emptied and the migration recorded as not applied, then run again).
#[actix_rt::test]
async fn cql_search_index_is_rebuilt_by_its_migration() {
    let Some(nodes) = cql_contact_points() else {
        return;
    };
    let keyspace = unique_keyspace();
    let store: SharedStore = std::sync::Arc::new(
        dovie::store::cql::ScyllaStore::open(&nodes, &keyspace, 1)
            .await
            .unwrap(),
    );
    seed(&store).await;
    append_ok(
        &store,
        "g",
        1,
        vec![
            draft("r1", "u1", "ancient wisdom", None),
            draft("r2", "u2", "modern wisdom", None),
        ],
    )
    .await;
    store.delete_message("r2", 500).await.unwrap();
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(nodes.split(','))
        .build()
        .await
        .unwrap();
    for cql in [
        format!("TRUNCATE {keyspace}.search_terms"),
        format!("DELETE FROM {keyspace}.schema_migrations WHERE version = 2"),
    ] {
        session.query_unpaged(cql, &[]).await.unwrap();
    }
    assert!(store
        .search("u1", None, "wisdom", 10)
        .await
        .unwrap()
        .is_empty());
    let ran = dovie::store::cql::migrate(&nodes, &keyspace, 1)
        .await
        .unwrap();
    assert_eq!(ran, 1);
    let found: Vec<String> = store
        .search("u1", None, "wisd", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(found, ["r1"], "the deleted message stays out");
}

/// CQL only: places stored before schema version 6 (by tile, not yet by cell) are found after
/// the migration that indexes them by cell — location rooms, and "nearby" positions still live.
#[actix_rt::test]
async fn cql_places_of_schema_5_are_found_after_the_cell_migration() {
    use dovie::store::{GeoBox, GeoStore};
    let Some(nodes) = cql_contact_points() else {
        return;
    };
    let ks = unique_keyspace();
    let _guard = DropKeyspace {
        nodes: nodes.clone(),
        keyspace: ks.clone(),
    };
    let store = dovie::store::cql::ScyllaStore::open(&nodes, &ks, 1)
        .await
        .unwrap();
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(nodes.split(','))
        .build()
        .await
        .unwrap();
    let now = dovie_actors::now_ms();
    // What a node of version 5 wrote: the rows, and nothing in the cells.
    for (cql, values) in [
        (
            format!(
                "INSERT INTO {ks}.location_rooms (room_id, lat, lon, radius_m) VALUES (?, ?, ?, ?)"
            ),
            ("old-room".to_string(), 37.5, 127.0, 500.0),
        ),
        (
            format!(
                "INSERT INTO {ks}.location_rooms (room_id, lat, lon, radius_m) VALUES (?, ?, ?, ?)"
            ),
            ("far-room".to_string(), 48.85, 2.35, 500.0),
        ),
    ] as [(String, (String, f64, f64, f64)); 2]
    {
        session.query_unpaged(cql, values).await.unwrap();
    }
    let nearby = format!(
        "INSERT INTO {ks}.nearby_users (user_id, tile, lat, lon, updated_at, expires_at) VALUES (?, '75:254', ?, ?, ?, ?)"
    );
    session
        .query_unpaged(nearby.clone(), ("live", 37.5, 127.0, now, now + 3_600_000))
        .await
        .unwrap();
    session
        .query_unpaged(nearby, ("expired", 37.5, 127.0, now - 7_200_000, now - 1))
        .await
        .unwrap();
    let city = [GeoBox {
        min_lat: 37.4,
        max_lat: 37.6,
        min_lon: 126.9,
        max_lon: 127.1,
    }];
    assert!(store.location_rooms_in(&city, 10).await.unwrap().is_empty());
    // The node of version 6 starts: the migration runs again from version 5.
    session
        .query_unpaged(
            format!("DELETE FROM {ks}.schema_migrations WHERE version = 6"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(dovie::store::cql::migrate(&nodes, &ks, 1).await.unwrap(), 1);
    let rooms = store.location_rooms_in(&city, 10).await.unwrap();
    assert_eq!(
        rooms.iter().map(|r| r.room_id.as_str()).collect::<Vec<_>>(),
        ["old-room"]
    );
    let near = store.nearby_in(&city, now, 10).await.unwrap();
    assert_eq!(
        near.iter().map(|p| p.user_id.as_str()).collect::<Vec<_>>(),
        ["live"]
    );
}
