//! A room actor that panics mid-traffic is restarted by its supervisor; nothing acknowledged is
//! lost or duplicated, and retries with the same nonce settle every send exactly once.
//! In-process: the real actors over the real embedded store, with a panic injected.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dovie::metrics::PromTelemetry;
use dovie::store::sqlite::SqliteStore;
use dovie::store::{SharedStore, UserRecord};
use dovie_actors::ports::{Authenticator, Draft, Identity};
use dovie_actors::room::{InjectPanic, Post, Responder};
use dovie_actors::{Ports, Registry, RoomDirectory};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::{Role, Room, RoomType, User};

struct NoAuth;

impl Authenticator for NoAuth {
    fn verify(&self, _: &str) -> Result<Identity, ErrorBody> {
        Err(ErrorBody::new(ErrorCode::Unauthorized, "not in this test"))
    }
}

fn draft(i: usize) -> Draft {
    Draft {
        id: format!("m-{i}-{}", Instant::now().elapsed().as_nanos()),
        sender_id: "u1".into(),
        content: format!("message {i}"),
        nonce: Some(format!("nonce-{i}")),
        reply_to: None,
        hashtags: Vec::new(),
        mentions: Vec::new(),
        created_at: dovie_actors::now_ms(),
        kind: dovie_protocol::model::MessageKind::Text,
        attachments: Vec::new(),
        location: None,
        suggest_location: false,
    }
}

#[actix_rt::test]
async fn a_panicking_room_actor_restarts_without_loss_or_duplication() {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(dir.path(), "FULL", 2).unwrap());
    store
        .create_user(UserRecord {
            user: User {
                email: Some("u1@example.com".into()),
                ..User::new("u1".into(), "U".into(), 0)
            },
            password_hash: "x".into(),
        })
        .await
        .unwrap();
    store
        .create_room(Room {
            id: "r1".into(),
            kind: RoomType::Group,
            name: None,
            member_ids: vec!["u1".into()],
            created_by: "u1".into(),
            created_at: 0,
            roles: BTreeMap::from([("u1".to_string(), Role::Owner)]),
        })
        .await
        .unwrap();
    let registry = Registry::new(Arc::new(PromTelemetry));
    let ports = Ports {
        store: store.clone(),
        auth: Arc::new(NoAuth),
        telemetry: Arc::new(PromTelemetry),
        fanout: registry.clone(),
        quota: dovie::quota::Quota::new(1_000_000),
        extras: Arc::new(dovie_actors::ports::NoExtras),
        texts: Arc::new(dovie_actors::ports::English),
        activity: Arc::new(dovie_actors::ports::NoActivity),
    };
    let directory = RoomDirectory::new(ports, Vec::new());
    let room = directory.owned("r1").unwrap();

    const SENDS: usize = 600;
    let mut answers = Vec::new();
    for i in 0..SENDS {
        let (reply, rx) = Responder::channel();
        room.do_send(Post {
            draft: draft(i),
            reply,
            started: Instant::now(),
        });
        answers.push(rx);
        if i == SENDS / 3 || i == 2 * SENDS / 3 {
            // Mid-traffic: writes are in flight and more are queued behind the panic.
            room.do_send(InjectPanic);
        }
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = Vec::new();
    for (i, rx) in answers.into_iter().enumerate() {
        match tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("every send is answered")
        {
            Ok(Ok((m, _))) => {
                acked.insert(m.nonce.clone().unwrap(), m.seq);
            }
            Ok(Err(e)) => {
                assert_eq!(e.code, ErrorCode::Internal, "{e:?}");
                failed.push(i);
            }
            Err(_) => panic!("responder dropped without an answer"),
        }
    }
    assert!(
        !failed.is_empty(),
        "the panic should have interrupted some sends"
    );
    assert!(
        !acked.is_empty(),
        "sends before the panic were acknowledged"
    );
    // (That the restarted actor serves again is shown below: every retry is answered.)

    // The store holds every acked message under its acked seq, with consecutive seqs.
    let page = store.history("r1", None, Some(0), 10_000).await.unwrap();
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let stored: BTreeMap<String, u64> = page
        .messages
        .iter()
        .map(|m| (m.nonce.clone().unwrap(), m.seq))
        .collect();
    for (nonce, seq) in &acked {
        assert_eq!(
            stored.get(nonce),
            Some(seq),
            "{nonce} was acknowledged but is not stored as acked"
        );
    }

    // Retrying the failed sends (same nonces, same actor address) settles each exactly once.
    for i in failed {
        let (reply, rx) = Responder::channel();
        room.do_send(Post {
            draft: draft(i),
            reply,
            started: Instant::now(),
        });
        let (m, _) = rx.await.unwrap().unwrap();
        assert_eq!(m.nonce.as_deref(), Some(format!("nonce-{i}").as_str()));
    }
    let page = store.history("r1", None, Some(0), 10_000).await.unwrap();
    assert_eq!(page.messages.len(), SENDS);
    let nonces: HashSet<_> = page.messages.iter().map(|m| m.nonce.clone()).collect();
    assert_eq!(nonces.len(), SENDS, "no duplicates");
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=SENDS as u64).collect::<Vec<_>>());
}
