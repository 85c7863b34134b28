//! Cluster black-box tests: three `dovie serve` processes on loopback sharing a CQL keyspace and
//! a Redis of the test's own. Cross-node delivery in one order, a SIGKILL of a room's owner
//! mid-traffic with exact accounting, a Redis restart, and a CQL outage for one node.
//! Needs DOVIE_TEST_CQL (scripts/test.sh starts Cassandra) and `redis-server`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{rest, Auth, Proxy, RedisServer, Server, User, Ws};
use dovie_protocol::Codec;
use serde_json::json;

const SECRET: &str = "cluster-test-secret-0123456789abcdef";
const LIMITS: &str =
    "[limits]\nws_rate_per_sec = 100000.0\nws_rate_burst = 100000.0\nws_outbound_queue = 16384\nuser_sends_per_minute = 100000\n";

fn cql() -> Option<String> {
    match std::env::var("DOVIE_TEST_CQL") {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok() => {
            panic!("DOVIE_TEST_CQL is not set: CI must run the cluster tests")
        }
        _ => {
            eprintln!("DOVIE_TEST_CQL is not set: skipping the cluster tests (scripts/test.sh starts a CQL server)");
            None
        }
    }
}

struct Cluster {
    nodes: Vec<Server>,
    _cfg: tempfile::TempDir,
}

fn start_cluster(cql: &[&str], redis: &RedisServer, n: usize) -> Cluster {
    start_nodes(cql, &redis.url(), n, LIMITS)
}

/// The keyspace of this test run: created once (schema changes are slow on a CQL server), shared
/// by the tests, which never share rooms or users. Each test has a Redis of its own.
fn keyspace() -> String {
    static KEYSPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEYSPACE
        .get_or_init(|| format!("dovie_cluster_{}", common::uuid_like()))
        .clone()
}

/// `n` nodes (`n1`, `n2`…) on the run's keyspace with a config file holding `config`.
fn start_nodes(cql: &[&str], redis_url: &str, n: usize, config: &str) -> Cluster {
    start_nodes_env(cql, redis_url, n, config, &[])
}

/// [`start_nodes`] with environment of its own (which, unlike the file, outranks the harness's).
fn start_nodes_env(
    cql: &[&str],
    redis_url: &str,
    n: usize,
    config: &str,
    env: &[(&str, &str)],
) -> Cluster {
    start_nodes_in(&keyspace(), cql, redis_url, n, config, env)
}

/// [`start_nodes_env`] on a keyspace of the caller's: for a test whose nodes must be the only
/// ones on it (every node sweeps the keyspace's expired live shares, and the other tests run
/// clusters of their own on the shared keyspace at the same time).
fn start_nodes_in(
    keyspace: &str,
    cql: &[&str],
    redis_url: &str,
    n: usize,
    config: &str,
    env: &[(&str, &str)],
) -> Cluster {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("c.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut nodes = Vec::new();
    for i in 0..n {
        let node_id = format!("n{}", i + 1);
        let contact = cql[i.min(cql.len() - 1)];
        nodes.push(Server::start_with(
            &[
                "--config",
                cfg.to_str().unwrap(),
                "--store",
                "scylla",
                "--scylla",
                contact,
                "--keyspace",
                keyspace,
                "--bus",
                "redis",
                "--redis",
                redis_url,
                "--node-id",
                &node_id,
            ],
            &[&[("DOVIE_JWT_SECRET", SECRET)], env].concat(),
        ));
    }
    // Every node sees every other before the test starts.
    std::thread::sleep(Duration::from_millis(2500));
    Cluster {
        nodes,
        _cfg: cfg_dir,
    }
}

/// Makes `who` an admin of the run's keyspace (`dovie admin grant`).
fn grant_admin(cql: &str, who: &User) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
        .args([
            "admin", "grant", &who.email, "--store", "scylla", "--scylla", cql,
        ])
        .args(["--keyspace", &keyspace()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn node_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

/// Revocation reaches other nodes over the bus within moments: wait for it.
async fn until_refused(node: &Server, token: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = rest(node).get("/api/auth/me", token).await;
        if s == 401 || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends until acknowledged (same nonce on every retry), on whichever node answers.
async fn send_until_acked(ws: &mut Ws, room: &str, nonce: &str, deadline: Instant) -> Option<u64> {
    while Instant::now() < deadline {
        let r = ws
            .request(
                "send_message",
                json!({"room_id": room, "content": nonce, "nonce": nonce}),
            )
            .await;
        if r["t"] == "reply" {
            return r["d"]["message"]["seq"].as_u64();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[actix_rt::test]
async fn members_on_different_nodes_see_one_order() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_cluster(&[&cql], &redis, 3);
    let api = rest(&cluster.nodes[0]);
    let mut users: Vec<User> = Vec::new();
    for i in 0..6 {
        users.push(api.register(&format!("c{i}")).await);
    }
    let others: Vec<&User> = users.iter().skip(1).collect();
    let room = api.group(&users[0], &others).await;
    // Two members per node; everyone sends at once.
    let mut sockets = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let node = &cluster.nodes[i % 3];
        let codec = if i % 2 == 0 {
            Codec::MsgPack
        } else {
            Codec::Json
        };
        sockets.push(Ws::connect(node, codec, Auth::Query(&u.token)).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // room subscriptions settle
    const EACH: usize = 30;
    let total = EACH * users.len();
    let results = futures_util::future::join_all(sockets.iter_mut().enumerate().map(|(i, ws)| {
        let room = room.clone();
        async move {
            for k in 0..EACH {
                let nonce = format!("{i}-{k}");
                ws.send_frame(
                    "send_message",
                    Some(k as u64 + 1),
                    json!({"room_id": room, "content": nonce, "nonce": nonce}),
                )
                .await;
            }
            let mut seqs = Vec::new();
            while seqs.len() < total {
                let f = ws
                    .next_within(Duration::from_secs(30))
                    .await
                    .expect("cross-node delivery stalled");
                assert_ne!(f["t"], "error", "{f}");
                if f["t"] == "new_message" {
                    seqs.push(f["d"]["message"]["seq"].as_u64().unwrap());
                }
            }
            seqs
        }
    }))
    .await;
    let expected: Vec<u64> = (1..=total as u64).collect();
    for (i, seqs) in results.iter().enumerate() {
        assert_eq!(
            seqs,
            &expected,
            "member {i} (node n{}) saw another order",
            i % 3 + 1
        );
    }
    // Every node knows the others.
    let (_, ready) = rest(&cluster.nodes[2])
        .call("GET", "/ready", None, None)
        .await;
    assert_eq!(ready["live_nodes"], json!(["n1", "n2", "n3"]));
    // Any node answers REST for any room.
    for node in &cluster.nodes {
        let history = rest(node).all_messages(&users[1], &room).await;
        assert_eq!(history.len(), total);
    }
    // Logout on one node kicks the sockets of that login on another.
    let (_, login) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": users[2].email, "password": "correct horse"})),
        )
        .await;
    let t = login["access_token"].as_str().unwrap().to_string();
    let mut elsewhere = Ws::connect(&cluster.nodes[2], Codec::Json, Auth::Query(&t)).await;
    let (s, _) = rest(&cluster.nodes[1])
        .call("POST", "/api/auth/logout", Some(&t), None)
        .await;
    assert_eq!(s, 204);
    elsewhere.expect("force_logout").await;
    assert_eq!(elsewhere.expect_close().await, 4003);
    assert_eq!(
        until_refused(&cluster.nodes[0], &t).await,
        401,
        "the revoked token is refused on every node"
    );
}

#[actix_rt::test]
async fn killing_a_rooms_owner_loses_nothing_acknowledged() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let mut cluster = start_cluster(&[&cql], &redis, 3);
    let api = rest(&cluster.nodes[0]);
    let [a, b, c] = api.register_all(["a", "b", "c"]).await;
    // A room owned by n3, the node we kill.
    let ids = node_ids(3);
    let mut room = String::new();
    for _ in 0..50 {
        let r = api.group(&a, &[&b, &c]).await;
        if dovie::cluster::owner_of(&ids, &r).map(String::as_str) == Some("n3") {
            room = r;
            break;
        }
    }
    assert!(!room.is_empty(), "no room owned by n3 in 50 tries");
    let mut wa = Ws::connect(&cluster.nodes[0], Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut wb = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&b.token)).await;
    let mut wc = Ws::connect(&cluster.nodes[2], Codec::MsgPack, Auth::Query(&c.token)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut unacked: Vec<String> = Vec::new();
    let mut killed_at: Option<Instant> = None;
    let mut failover: Option<Duration> = None;
    // Traffic from a and b (on surviving nodes) while n3 owns the room.
    for i in 0..40 {
        for (ws, who) in [(&mut wa, "a"), (&mut wb, "b")] {
            let nonce = format!("{who}{i}");
            let r = ws
                .request(
                    "send_message",
                    json!({"room_id": room, "content": nonce, "nonce": nonce}),
                )
                .await;
            if r["t"] == "reply" {
                acked.insert(nonce, r["d"]["message"]["seq"].as_u64().unwrap());
                if let (Some(k), None) = (killed_at, failover) {
                    failover = Some(k.elapsed());
                }
            } else {
                unacked.push(nonce);
            }
        }
        if i == 20 {
            cluster.nodes[2].kill();
            killed_at = Some(Instant::now());
        }
    }
    let killed_at = killed_at.unwrap();
    // c's node died: c reconnects to n1 and resumes from the last seq it saw.
    let mut c_seen: Vec<u64> = Vec::new();
    while let Some(f) = wc.next_within(Duration::from_millis(200)).await {
        if f["t"] == "new_message" {
            c_seen.push(f["d"]["message"]["seq"].as_u64().unwrap());
        }
    }
    // Retry what was not acknowledged until the new owner takes it.
    let deadline = Instant::now() + Duration::from_secs(40);
    for nonce in unacked.clone() {
        let ws = if nonce.starts_with('a') {
            &mut wa
        } else {
            &mut wb
        };
        let seq = send_until_acked(ws, &room, &nonce, deadline)
            .await
            .expect("a retry was never acknowledged");
        failover.get_or_insert(killed_at.elapsed());
        acked.insert(nonce, seq);
    }
    let after = send_until_acked(&mut wa, &room, "after-kill", deadline)
        .await
        .expect("the room never came back");
    acked.insert("after-kill".into(), after);
    let failover = failover.unwrap_or_else(|| killed_at.elapsed());

    let history = api.all_messages(&a, &room).await;
    common::assert_history_accounts_for(&history, &acked);
    // c resumes on a surviving node and gets exactly what it missed.
    let mut wc2 = Ws::connect(&cluster.nodes[0], Codec::Json, Auth::Query(&c.token)).await;
    let last_seen = c_seen.last().copied().unwrap_or(0);
    assert_eq!(
        c_seen,
        (1..=last_seen).collect::<Vec<_>>(),
        "c saw a gapless prefix before the kill"
    );
    wc2.send_frame("resume", None, json!({"rooms": {room.clone(): last_seen}}))
        .await;
    let mut replayed = Vec::new();
    loop {
        let f = wc2
            .next_within(Duration::from_secs(20))
            .await
            .expect("resume stalled");
        match f["t"].as_str() {
            Some("new_message") => replayed.push(f["d"]["message"]["seq"].as_u64().unwrap()),
            Some("resume_done") => break,
            Some("error") => panic!("resume failed: {f}"),
            _ => {}
        }
    }
    let want: Vec<u64> = (last_seen + 1..=history.len() as u64).collect();
    assert_eq!(replayed, want, "exactly the missed messages, in order");
    eprintln!(
        "cluster kill: {} acked ({} retried after the kill), stored {}, losses 0, duplicates 0, failover {:.1} s",
        acked.len(),
        unacked.len(),
        history.len(),
        failover.as_secs_f64()
    );
}

#[actix_rt::test]
async fn a_redis_restart_heals_by_itself() {
    let Some(cql) = cql() else { return };
    let mut redis = RedisServer::start();
    let cluster = start_cluster(&[&cql], &redis, 2);
    let api = rest(&cluster.nodes[0]);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let mut wa = Ws::connect(&cluster.nodes[0], Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut wb = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&b.token)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    send_until_acked(&mut wa, &room, "before", deadline)
        .await
        .unwrap();
    wb.expect("new_message").await;

    redis.restart();
    // Nodes re-register, resubscribe and route again on their own.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delivered = false;
    let mut i = 0;
    while !delivered && Instant::now() < deadline {
        let nonce = format!("after{i}");
        i += 1;
        if send_until_acked(&mut wa, &room, &nonce, deadline)
            .await
            .is_none()
        {
            break;
        }
        while let Some(f) = wb.next_within(Duration::from_millis(500)).await {
            if f["t"] == "new_message" && f["d"]["message"]["nonce"] == nonce.as_str() {
                delivered = true;
            }
        }
    }
    assert!(
        delivered,
        "cross-node delivery did not come back after the Redis restart"
    );
    // Anything b missed meanwhile comes back by resume (retried while ownership settles: on a
    // loaded two-core machine that has taken more than 20 s).
    let mut seqs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    'resume: while Instant::now() < deadline {
        wb.clear();
        seqs.clear();
        wb.send_frame("resume", None, json!({"rooms": {room.clone(): 1}}))
            .await;
        // A room caught in the churn is answered `unavailable` (its error comes before that
        // resume's `resume_done`): once the resume is done, resume again.
        let mut failed = false;
        loop {
            let Some(f) = wb.next_within(Duration::from_secs(8)).await else {
                continue 'resume;
            };
            match f["t"].as_str() {
                Some("new_message") => seqs.push(f["d"]["message"]["seq"].as_u64().unwrap()),
                Some("error") => failed = true,
                Some("resume_done") if failed => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue 'resume;
                }
                Some("resume_done") => break 'resume,
                _ => {}
            }
        }
    }
    let total = api.all_messages(&a, &room).await.len() as u64;
    assert_eq!(seqs, (2..=total).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn a_cql_outage_refuses_sends_and_heals() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let proxy = Proxy::start(&cql).await;
    // One node, reaching the CQL server through a proxy the test can cut.
    let cluster = start_cluster(&[&proxy.addr], &redis, 1);
    let node = &cluster.nodes[0];
    let api = rest(node);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let room = api.group(&a, &[&b]).await;
    let mut ws = Ws::connect(node, Codec::MsgPack, Auth::Query(&a.token)).await;
    api.send(&a, &room, "before").await;

    proxy.cut();
    let path = format!("/api/chat-rooms/{room}/messages");
    let mut refused = 0;
    for i in 0..5 {
        let (s, e) = api
            .post(
                &path,
                &a.token,
                json!({"content": "during", "nonce": format!("d{i}")}),
            )
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (503, Some("store_unavailable")),
            "{e}"
        );
        let r = ws
            .request(
                "send_message",
                json!({"room_id": room, "content": "during", "nonce": format!("w{i}")}),
            )
            .await;
        assert_eq!(r["t"], "error", "{r}");
        assert!(
            matches!(
                r["d"]["code"].as_str(),
                Some("store_unavailable" | "unavailable")
            ),
            "{r}"
        );
        refused += 2;
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    let seq = send_until_acked(&mut ws, &room, "after", deadline)
        .await
        .expect("the node never recovered");
    assert_eq!(seq, 2, "nothing refused during the outage was stored");
    let history = api.all_messages(&a, &room).await;
    assert_eq!(history.len(), 2);
    eprintln!("cql outage: {refused} sends refused with a clear error, none stored; recovered");
}

#[actix_rt::test]
async fn a_draining_owner_hands_its_rooms_over() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let mut cluster = start_cluster(&[&cql], &redis, 2);
    let api = rest(&cluster.nodes[0]);
    let (a, b) = (api.register("a").await, api.register("b").await);
    let ids = node_ids(2);
    let mut room = String::new();
    for _ in 0..50 {
        let r = api.group(&a, &[&b]).await;
        if dovie::cluster::owner_of(&ids, &r).map(String::as_str) == Some("n2") {
            room = r;
            break;
        }
    }
    assert!(!room.is_empty());
    let mut wa = Ws::connect(&cluster.nodes[0], Codec::MsgPack, Auth::Query(&a.token)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..10 {
        send_until_acked(&mut wa, &room, &format!("before{i}"), deadline)
            .await
            .unwrap();
    }
    let t = Instant::now();
    assert!(cluster.nodes[1].terminate(), "SIGTERM exits cleanly");
    let mut handover = None;
    for i in 0..10 {
        send_until_acked(&mut wa, &room, &format!("after{i}"), deadline)
            .await
            .expect("n1 took the room over");
        handover.get_or_insert(t.elapsed());
    }
    let history = api.all_messages(&a, &room).await;
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=20).collect::<Vec<_>>(),
        "seq continues with no gap and no reuse"
    );
    eprintln!(
        "drain handover: first send on the new owner {:.2} s after SIGTERM",
        handover.unwrap().as_secs_f64()
    );
}

#[actix_rt::test]
async fn presence_is_counted_across_nodes() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_cluster(&[&cql], &redis, 2);
    let api = rest(&cluster.nodes[0]);
    let (a, b) = (api.register("a").await, api.register("b").await);
    api.group(&a, &[&b]).await;
    let mut wa = Ws::connect(&cluster.nodes[0], Codec::Json, Auth::Query(&a.token)).await;
    // b comes online on n2: a (on n1) hears it.
    let b1 = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&b.token)).await;
    let e = wa.expect("user_online").await;
    assert_eq!(e["d"]["user_id"], b.id.as_str());
    // A second session on the other node is not a second "online"; closing one of the two is
    // not "offline".
    let b2 = Ws::connect(&cluster.nodes[0], Codec::Json, Auth::Query(&b.token)).await;
    wa.expect_none("user_online", Duration::from_millis(500))
        .await;
    drop(b1);
    wa.expect_none("user_offline", Duration::from_millis(800))
        .await;
    drop(b2);
    let e = wa.expect("user_offline").await;
    assert_eq!(e["d"]["user_id"], b.id.as_str());
}

#[actix_rt::test]
async fn send_quotas_are_shared_across_nodes() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    // Nodes of their own config: a small quota.
    let cluster = start_nodes(
        &[&cql],
        &redis.url(),
        2,
        "[limits]\nuser_sends_per_minute = 10\n",
    );
    let nodes = &cluster.nodes;
    let (api1, api2) = (rest(&nodes[0]), rest(&nodes[1]));
    let a = api1.register("a").await;
    let room = api1.group(&a, &[]).await;
    let path = format!("/api/chat-rooms/{room}/messages");
    common::fit_in_one_quota_window(Duration::from_secs(15)).await;
    for _ in 0..7 {
        let (s, _) = api1.post(&path, &a.token, json!({"content": "n1"})).await;
        assert_eq!(s, 201);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await; // counters reconcile
    let mut admitted = 0;
    for _ in 0..10 {
        let (s, _) = api2.post(&path, &a.token, json!({"content": "n2"})).await;
        if s == 201 {
            admitted += 1;
        } else {
            assert_eq!(s, 429);
        }
    }
    // The second node learns the first node's count at its first reconciliation (every 250 ms):
    // it may admit a few beyond the quota before that, never many.
    assert!(
        (3..=6).contains(&admitted),
        "admitted {admitted} on the second node"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for api in [&api1, &api2] {
        let (s, e) = api.post(&path, &a.token, json!({"content": "over"})).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (429, Some("rate_limited")),
            "both nodes refuse now"
        );
    }
}

#[actix_rt::test]
async fn over_a_redis_cluster_pubsub_is_sharded() {
    let Some(cql) = cql() else { return };
    let redis = common::RedisCluster::start();
    let cluster = start_nodes(&[&cql], &redis.url(), 2, LIMITS);
    let nodes = &cluster.nodes;
    let api = rest(&nodes[0]);
    let (a, b) = (api.register("a").await, api.register("b").await);
    // Several rooms, so that both nodes own some and channels land on several shards.
    let mut rooms = Vec::new();
    for _ in 0..4 {
        rooms.push(api.group(&a, &[&b]).await);
    }
    let mut wa = Ws::connect(&nodes[0], Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut wb = Ws::connect(&nodes[1], Codec::Json, Auth::Query(&b.token)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    for room in &rooms {
        let seq = send_until_acked(&mut wa, room, &format!("hello {room}"), deadline)
            .await
            .unwrap();
        assert_eq!(seq, 1);
        let e = wb.expect("new_message").await;
        assert_eq!(
            e["d"]["message"]["room_id"],
            room.as_str(),
            "delivered across nodes over sharded pub/sub"
        );
    }
    // Logout propagates over the sharded broadcast channel too.
    let (s, _) = rest(&nodes[1])
        .call("POST", "/api/auth/logout", Some(&b.token), None)
        .await;
    assert_eq!(s, 204);
    wb.expect("force_logout").await;
    assert_eq!(until_refused(&nodes[0], &b.token).await, 401);
}

/// Joins, leaves and renames reach members on every node, once each, in order with the room's
/// messages — whichever node takes the REST call and whichever owns the room.
#[actix_rt::test]
async fn membership_events_reach_every_node() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_cluster(&[&cql], &redis, 3);
    let api = rest(&cluster.nodes[0]);
    let [a, b, c] = api.register_all(["ma", "mb", "mc"]).await;
    let room = api.group(&a, &[&b]).await;
    let mut wa = Ws::connect(&cluster.nodes[0], Codec::Json, Auth::Query(&a.token)).await;
    let mut wb = Ws::connect(&cluster.nodes[1], Codec::MsgPack, Auth::Query(&b.token)).await;
    let mut wc = Ws::connect(&cluster.nodes[2], Codec::Json, Auth::Query(&c.token)).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // room subscriptions settle
    wa.clear();
    wb.clear();
    wc.clear();

    // c is added through the third node.
    let (s, body) = rest(&cluster.nodes[2])
        .post(
            &format!("/api/chat-rooms/{room}/participants"),
            &a.token,
            json!({"user_ids": [c.id]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    for ws in [&mut wa, &mut wb, &mut wc] {
        let e = ws.expect("user_joined").await;
        assert_eq!(e["d"]["user_id"], c.id.as_str());
        assert_eq!(e["d"]["room_id"], room.as_str());
        // (The founders' room_updated may still be on its way on a loaded machine.)
        loop {
            let e = ws.expect("room_updated").await;
            if e["d"]["room"]["member_ids"].as_array().unwrap().len() == 3 {
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // c's node follows the room

    // Renamed through the second node, then a message: everyone sees both, in that order.
    let (s, body) = rest(&cluster.nodes[1])
        .call(
            "PUT",
            &format!("/api/chat-rooms/{room}"),
            Some(&a.token),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let r = wa
        .request(
            "send_message",
            json!({"room_id": room, "content": "after the rename"}),
        )
        .await;
    assert_eq!(r["t"], "reply", "{r}");
    for ws in [&mut wa, &mut wb, &mut wc] {
        let mut order = Vec::new();
        while order.len() < 2 {
            let f = ws.next().await;
            if f["t"] == "room_updated" || f["t"] == "new_message" {
                order.push(f);
            }
        }
        assert_eq!(order[0]["t"], "room_updated");
        assert_eq!(order[0]["d"]["room"]["name"], "renamed");
        assert_eq!(order[1]["t"], "new_message");
    }

    // b leaves (through the first node): a, c and b himself hear it.
    let s = rest(&cluster.nodes[0])
        .remove_participant(&room, &b.id, &b)
        .await;
    assert_eq!(s, 204);
    for ws in [&mut wa, &mut wb, &mut wc] {
        let e = ws.expect("user_left").await;
        assert_eq!(e["d"]["user_id"], b.id.as_str());
    }
    // Each event once.
    for ws in [&mut wa, &mut wb, &mut wc] {
        ws.expect_none("user_left", Duration::from_millis(600))
            .await;
        ws.expect_none("user_joined", Duration::from_millis(10))
            .await;
    }
}

/// Adds racing on two nodes never pass the member limit.
#[actix_rt::test]
async fn the_member_limit_holds_across_nodes() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let config = format!("{LIMITS}max_group_members = 8\n");
    let cluster = start_nodes(&[&cql], &redis.url(), 2, &config);
    let api = rest(&cluster.nodes[0]);
    let owner = api.register("lim-owner").await;
    let mut users = Vec::new();
    for i in 0..16 {
        users.push(api.register(&format!("lim{i}")).await);
    }
    let room = api.group(&owner, &[]).await;
    let results = futures_util::future::join_all(users.iter().enumerate().map(|(i, u)| {
        let node = &cluster.nodes[i % 2];
        let (room, token, id) = (room.clone(), owner.token.clone(), u.id.clone());
        async move {
            rest(node)
                .post(
                    &format!("/api/chat-rooms/{room}/participants"),
                    &token,
                    json!({"user_ids": [id, id]}),
                )
                .await
        }
    }))
    .await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let full = results
        .iter()
        .filter(|(s, b)| *s == 400 && b["error"]["code"] == "room_full")
        .count();
    assert_eq!(ok + full, users.len(), "{results:?}");
    let (s, body) = api
        .get(&format!("/api/chat-rooms/{room}"), &owner.token)
        .await;
    assert_eq!(s, 200);
    let members = body["room"]["member_ids"].as_array().unwrap().len();
    assert_eq!(members, 8, "{body}");
    assert_eq!(ok, 7, "the owner and seven more");
}

#[actix_rt::test]
async fn people_work_from_any_node() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_nodes_env(
        &[&cql],
        &redis.url(),
        2,
        LIMITS,
        &[("DOVIE_RATE_LIMITS__LOGIN_PER_MINUTE", "4")],
    );
    let (api1, api2) = (rest(&cluster.nodes[0]), rest(&cluster.nodes[1]));
    let (a, b) = (api1.register("a").await, api1.register("b").await);
    // A session of b's logged in on n2, revoked from n1: its socket on n2 is kicked, its token
    // refused on n2.
    let (s, phone) = api2
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": b.email, "password": "correct horse", "device": "phone"})),
        )
        .await;
    assert_eq!(s, 200, "{phone}");
    let phone_token = phone["access_token"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&phone_token)).await;
    let (_, list) = api1.get("/api/auth/sessions", &b.token).await;
    let id = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["device"] == "phone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = api1
        .call(
            "DELETE",
            &format!("/api/auth/sessions/{id}"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    ws.expect("force_logout").await;
    assert_eq!(ws.expect_close().await, 4003);
    assert_eq!(until_refused(&cluster.nodes[1], &phone_token).await, 401);
    // Presence of a user connected to n2, asked on n1.
    api1.group(&a, &[&b]).await;
    let _wb = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&b.token)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, p) = api1
            .get(&format!("/api/presence?user_ids={}", b.id), &a.token)
            .await;
        if p["presence"][&b.id]["online"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b never showed online on n1: {p}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A block made on n1 holds on n2, whichever node owns the direct room.
    let (_, direct) = api1
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "direct", "member_ids": [b.id]}),
        )
        .await;
    let direct = direct["room"]["id"].as_str().unwrap().to_string();
    let (s, _) = api2
        .post(
            &format!("/api/chat-rooms/{direct}/messages"),
            &b.token,
            json!({"content": "before"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = api1
        .post("/api/blocks", &a.token, json!({"user_id": b.id}))
        .await;
    assert_eq!(s, 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = api2
            .post(
                &format!("/api/chat-rooms/{direct}/messages"),
                &b.token,
                json!({"content": "after"}),
            )
            .await;
        if s == 403 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the block never reached the room's owner ({s})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, _) = api2
        .post(
            "/api/chat-rooms",
            &b.token,
            json!({"type": "direct", "member_ids": [a.id]}),
        )
        .await;
    assert_eq!(s, 403);
    // Login limits are one limit over the cluster (shared through Redis).
    let mut statuses = Vec::new();
    for api in [&api1, &api2, &api1, &api2, &api1, &api2] {
        let body = json!({"email": a.email, "password": "wrong"});
        statuses.push(
            api.call("POST", "/api/auth/login", None, Some(body))
                .await
                .0,
        );
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        refused >= 2,
        "the account's limit of 4 a minute holds across nodes: {statuses:?}"
    );
}

/// The S3-compatible store of the file tests (`scripts/test.sh` starts SeaweedFS and sets
/// this to its endpoint); without it the S3 tests skip — except in CI, where they fail.
fn s3() -> Option<String> {
    match std::env::var("DOVIE_TEST_S3") {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok() => {
            panic!("DOVIE_TEST_S3 is not set: CI must run the S3 file tests")
        }
        _ => {
            eprintln!("DOVIE_TEST_S3 is not set: skipping the S3 file tests (scripts/test.sh starts SeaweedFS)");
            None
        }
    }
}

fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    vec![
        ("DOVIE_FILES__BACKEND", "s3".into()),
        ("DOVIE_FILES__S3__ENDPOINT", endpoint.to_string()),
        (
            "DOVIE_FILES__S3__BUCKET",
            var("DOVIE_S3_BUCKET", "dovie-test"),
        ),
        (
            "DOVIE_FILES__S3__ACCESS_KEY_ID",
            var("DOVIE_S3_ACCESS_KEY", "dovietest"),
        ),
        (
            "DOVIE_FILES__S3__SECRET_ACCESS_KEY",
            var("DOVIE_S3_SECRET_KEY", "dovietestsecret"),
        ),
        ("DOVIE_FILES__S3__ALLOW_HTTP", "true".into()),
    ]
}

#[actix_rt::test]
async fn files_work_from_any_node_over_s3() {
    let Some(cql) = cql() else { return };
    let Some(endpoint) = s3() else { return };
    let redis = RedisServer::start();
    let env = s3_env(&endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cluster = start_nodes_env(&[&cql], &redis.url(), 2, LIMITS, &env);
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (api1, api2) = (rest(n1), rest(n2));
    let (a, b) = (api1.register("s3a").await, api1.register("s3b").await);
    let (_, room) = api1
        .post(
            "/api/chat-rooms",
            &a.token,
            json!({"type": "group", "name": "s3", "member_ids": [b.id]}),
        )
        .await;
    let room = room["room"]["id"].as_str().unwrap().to_string();
    // 12 MB: an S3 multipart upload of three parts.
    let marker = b"DOVIE-S3-PLAINTEXT-MARKER";
    let mut data = vec![0u8; 32];
    data[4..12].copy_from_slice(b"ftypisom");
    data[3] = 0x20;
    while data.len() < 12 * 1024 * 1024 {
        data.extend_from_slice(marker);
        data.extend((0..100u32).map(|i| (i * 13 % 251) as u8));
    }
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .finish();
    let mut res = client
        .post(n1.url(&format!("/api/upload?filename=big.mp4&room_id={room}")))
        .insert_header(("authorization", format!("Bearer {}", a.token)))
        .send_body(data.clone())
        .await
        .unwrap();
    let body: serde_json::Value = res.json().limit(1 << 20).await.unwrap();
    assert_eq!(res.status().as_u16(), 201, "{body}");
    let id = body["file"]["id"].as_str().unwrap().to_string();
    // Read from the other node (the master key came from the shared store): whole and ranged.
    let get = |range: Option<String>| {
        let mut req = client
            .get(n2.url(&format!("/api/files/{id}")))
            .insert_header(("authorization", format!("Bearer {}", b.token)));
        if let Some(r) = range {
            req = req.insert_header(("range", r));
        }
        req
    };
    let mut res = get(None).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let whole = res.body().limit(64 << 20).await.unwrap();
    assert!(
        whole.as_ref() == data.as_slice(),
        "the file reads back whole from the other node"
    );
    let mut res = get(Some("bytes=5242000-5243999".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 206);
    assert_eq!(
        res.body().await.unwrap().as_ref(),
        &data[5_242_000..5_244_000]
    );
    // The bucket holds no plaintext.
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_bucket_name(
            env.iter()
                .find(|(k, _)| *k == "DOVIE_FILES__S3__BUCKET")
                .unwrap()
                .1,
        )
        .with_region("us-east-1")
        .with_access_key_id(
            env.iter()
                .find(|(k, _)| *k == "DOVIE_FILES__S3__ACCESS_KEY_ID")
                .unwrap()
                .1,
        )
        .with_secret_access_key(
            env.iter()
                .find(|(k, _)| *k == "DOVIE_FILES__S3__SECRET_ACCESS_KEY")
                .unwrap()
                .1,
        )
        .build()
        .unwrap();
    use futures_util::StreamExt;
    use object_store::ObjectStore;
    let objects: Vec<_> = store.list(None).collect::<Vec<_>>().await;
    let expected = data.len() + data.len().div_ceil(65536) * 28;
    let mine: Vec<_> = objects
        .into_iter()
        .map(|o| o.unwrap())
        .filter(|o| o.size as usize == expected)
        .collect();
    assert_eq!(mine.len(), 1, "the file's one object in the bucket");
    let stored = store
        .get(&mine[0].location)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        !stored.windows(marker.len()).any(|w| w == marker),
        "no plaintext in the bucket"
    );
    // Deleted on n2: gone for n1, and from the bucket.
    let (s, _) = api2
        .call("DELETE", &format!("/api/files/{id}"), Some(&a.token), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = api1.get(&format!("/api/files/{id}"), &a.token).await;
    assert_eq!(s, 404);
    assert!(
        store.head(&mine[0].location).await.is_err(),
        "the object is deleted"
    );
}

/// Location across nodes: a live share started on one node, moved through a second and heard on
/// a third, ends on time after its starting node is killed — announced exactly once although
/// every node sweeps; "nearby" through Redis GEO from any node; location rooms and suggestions
/// from any node.
#[actix_rt::test]
async fn location_works_across_nodes() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let mut cluster = start_nodes_in(
        &format!("dovie_location_{}", common::uuid_like()),
        &[&cql],
        &redis.url(),
        3,
        LIMITS,
        &[("DOVIE_LOCATION__MIN_LIVE_SECONDS", "1")],
    );
    let (api1, api2, api3) = (
        rest(&cluster.nodes[0]),
        rest(&cluster.nodes[1]),
        rest(&cluster.nodes[2]),
    );
    let (a, b) = (api1.register("a").await, api2.register("b").await);
    let room = api1.group(&a, &[&b]).await;
    let mut wa = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&a.token)).await;
    let mut wb = Ws::connect(&cluster.nodes[2], Codec::MsgPack, Auth::Query(&b.token)).await;

    let (s, body) = api1
        .post(
            &format!("/api/chat-rooms/{room}/location"),
            &a.token,
            json!({"lat": 37.5663, "lon": 126.9779, "live_seconds": 4}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let started = Instant::now();
    let share = body["share"]["id"].as_str().unwrap().to_string();
    let r = wa
        .request(
            "location_update",
            json!({"share_id": share, "lat": 37.567, "lon": 126.978}),
        )
        .await;
    assert_eq!(r["t"], "reply", "{r}");
    let moved = wb.expect("location_updated").await;
    assert_eq!(moved["d"]["share_id"], json!(share));
    assert_eq!(moved["d"]["lat"], json!(37.567));

    // The node that started the share dies; another ends it on time, once.
    cluster.nodes[0].kill();
    let ended = wb.expect("location_share_ended").await;
    let took = started.elapsed();
    assert_eq!(ended["d"]["share_id"], json!(share));
    assert_eq!(ended["d"]["reason"], "expired");
    // On time by the node the live set places it on, or 1.5 s late by any other once that
    // node is gone (the killed node holds its lease for up to 5 s).
    assert!(
        took >= Duration::from_millis(3_900) && took < Duration::from_millis(8_000),
        "ended after {took:?}"
    );
    wb.expect_none("location_share_ended", Duration::from_millis(1_500))
        .await;
    let (_, shares) = api3
        .get(&format!("/api/chat-rooms/{room}/location-shares"), &b.token)
        .await;
    assert!(shares["shares"].as_array().unwrap().is_empty(), "{shares}");

    // Nearby: published on one node, found from another, kept in Redis GEO.
    for (api, u, lat) in [(&api2, &a, 37.5663), (&api3, &b, 37.5690)] {
        let (s, body) = api
            .call(
                "PUT",
                "/api/users/me/location",
                Some(&u.token),
                Some(json!({"lat": lat, "lon": 126.9779})),
            )
            .await;
        assert_eq!(s, 204, "{body}");
    }
    let (s, near) = api3
        .get(
            "/api/nearby-users?lat=37.5663&lon=126.9779&radius_m=5000",
            &a.token,
        )
        .await;
    assert_eq!(s, 200, "{near}");
    assert_eq!(near["users"][0]["user"]["id"], json!(b.id), "{near}");
    assert_eq!(near["users"][0]["distance_m"].as_u64().unwrap() % 500, 0);
    let geo = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "GEOPOS",
            "{dovie:nearby}:geo",
            &b.id,
        ])
        .output()
        .unwrap();
    let pos = String::from_utf8_lossy(&geo.stdout);
    assert!(pos.contains("126.9"), "b's cell is in Redis GEO: {pos}");

    // Location rooms and suggestions from any node.
    let (s, body) = api2
        .post(
            "/api/location-chat-rooms",
            &a.token,
            json!({"name": "plaza", "lat": 37.5663, "lon": 126.9779, "radius_m": 300}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let plaza = body["room"]["id"].as_str().unwrap().to_string();
    let (_, found) = api3
        .get(
            "/api/location-chat-rooms?lat=37.567&lon=126.978&radius_m=1000",
            &b.token,
        )
        .await;
    assert_eq!(found["rooms"][0]["room"]["id"], json!(plaza), "{found}");
    let (s, _) = api3
        .post(
            &format!("/api/chat-rooms/{plaza}/join"),
            &b.token,
            json!({"lat": 37.567, "lon": 126.978}),
        )
        .await;
    assert_eq!(s, 200);
    let m = api2.send(&a, &room, "어디야?").await;
    assert_eq!(m["suggest_location"], true);
    let s = wb.expect("location_suggestion").await;
    assert_eq!(s["d"]["message_id"], m["id"]);
}

/// Nodes that may push to a loopback Web Push stand-in.
const PUSH_ENV: [(&str, &str); 2] = [
    ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
    ("DOVIE_PUSH__ALLOWED_ENDPOINT_HOSTS", "[\"127.0.0.1\"]"),
];

/// Subscribes a new browser of `user` at `web` through `node`.
async fn push_browser(
    node: &Server,
    web: &common::standins::push::WebPushService,
    user: &User,
) -> common::standins::push::Browser {
    let b =
        common::standins::push::Browser::new(&format!("{}-{}", &user.id[..8], common::uuid_like()));
    let (status, body) = rest(node)
        .post(
            "/api/push-subscribe",
            &user.token,
            json!({"endpoint": web.subscribe(&b), "keys": {"p256dh": b.p256dh(), "auth": b.auth()}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    b
}

#[actix_rt::test]
async fn a_room_on_screen_on_one_node_silences_pushes_decided_on_another() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_nodes_env(&[&cql], &redis.url(), 3, LIMITS, &PUSH_ENV);
    let web = common::standins::push::WebPushService::start();
    let (_, key) = rest(&cluster.nodes[0])
        .call("GET", "/api/push-vapid-key", None, None)
        .await;
    let key = key["public_key"].as_str().unwrap().to_string();
    for n in &cluster.nodes[1..] {
        let (_, other) = rest(n).call("GET", "/api/push-vapid-key", None, None).await;
        assert_eq!(
            other["public_key"],
            key.as_str(),
            "one VAPID key for the cluster"
        );
    }
    web.expect_vapid_key(&key);
    let api = rest(&cluster.nodes[0]);
    let [a, b, c] = api.register_all(["ann", "bob", "cat"]).await;
    let room = api.group(&a, &[&b, &c]).await;
    let bb = push_browser(&cluster.nodes[1], &web, &b).await;
    let cb = push_browser(&cluster.nodes[2], &web, &c).await;
    // Bob looks at the room in a session on n3; Cat is away.
    let mut bob = Ws::connect(&cluster.nodes[2], Codec::Json, Auth::Query(&b.token)).await;
    bob.request("active", json!({"room_id": room})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, node) in cluster.nodes.iter().enumerate() {
        rest(node).send(&a, &room, &format!("via n{}", i + 1)).await;
    }
    let got = web.wait_for(&cb, 3, Duration::from_secs(15)).await;
    assert_eq!(
        got.len(),
        3,
        "Cat hears of every message, whichever node took it"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        web.delivered_to(&bb).is_empty(),
        "Bob looks at the room on n3"
    );
    assert!(web.refused().is_empty(), "{:?}", web.refused());
    // Bob's session ends: he is pushed again, from any node.
    drop(bob);
    tokio::time::sleep(Duration::from_millis(500)).await;
    rest(&cluster.nodes[0]).send(&a, &room, "after").await;
    let got = web.wait_for(&bb, 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload["body"], "after");
}

#[actix_rt::test]
async fn pushes_queued_on_a_killed_node_are_delivered_by_another() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    // Two pushes in flight per node: the rest of a message's pushes wait in the stream.
    let env = [&PUSH_ENV[..], &[("DOVIE_PUSH__MAX_IN_FLIGHT", "2")]].concat();
    let mut cluster = start_nodes_env(&[&cql], &redis.url(), 3, LIMITS, &env);
    let web = common::standins::push::WebPushService::start();
    let (_, key) = rest(&cluster.nodes[0])
        .call("GET", "/api/push-vapid-key", None, None)
        .await;
    web.expect_vapid_key(key["public_key"].as_str().unwrap());
    let api = rest(&cluster.nodes[0]);
    let a = api.register("ann").await;
    let mut members = Vec::new();
    for i in 0..16 {
        members.push(api.register(&format!("m{i}")).await);
    }
    let refs: Vec<&User> = members.iter().collect();
    let room = api.group(&a, &refs).await;
    let mut browsers = Vec::new();
    for m in &members {
        browsers.push(push_browser(&cluster.nodes[0], &web, m).await);
    }
    // The push service answers slowly: when two of the three nodes die, each has pushes in
    // flight and the stream holds the rest.
    web.slow_down(Duration::from_secs(3));
    rest(&cluster.nodes[2]).send(&a, &room, "queued").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while browsers.iter().all(|b| web.attempts(b) == 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.nodes[0].kill();
    cluster.nodes[1].kill();
    // What the push service held when they died: sent by a dead node, maybe not acknowledged.
    let in_flight: Vec<bool> = browsers.iter().map(|b| web.attempts(b) > 0).collect();
    let held = in_flight.iter().filter(|f| **f).count();
    assert!(
        (1..=6).contains(&held),
        "at most two in flight per node: {held}"
    );
    web.slow_down(Duration::ZERO);
    for b in &browsers {
        let got = web.wait_for(b, 1, Duration::from_secs(30)).await;
        assert_eq!(got.len(), 1, "every push delivered, by the node that lives");
        assert_eq!(got[0].payload["body"], "queued");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (b, was_in_flight) in browsers.iter().zip(in_flight) {
        let n = web.delivered_to(b).len();
        if was_in_flight {
            // Received by the service from a node that died before it heard the answer: the
            // live node cannot know, and sends again (at least once, never lost).
            assert!((1..=2).contains(&n), "{n}");
        } else {
            assert_eq!(
                n, 1,
                "a push still queued when its node died is delivered once"
            );
        }
    }
}

#[actix_rt::test]
async fn the_social_network_works_from_any_node() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_nodes_env(&[&cql], &redis.url(), 2, LIMITS, &[]);
    let (api1, api2) = (rest(&cluster.nodes[0]), rest(&cluster.nodes[1]));
    let (ann, bob) = (api1.register("ann").await, api2.register("bob").await);
    // Bob follows Ann on n2 and is told nothing; Ann, on n1, is told live.
    let mut wa = Ws::connect(&cluster.nodes[0], Codec::Json, Auth::Query(&ann.token)).await;
    let (s, _) = api2
        .post(
            &format!("/api/users/{}/follow", ann.id),
            &bob.token,
            json!({}),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(wa.expect("activity").await["d"]["item"]["kind"], "follow");
    // A followers-only post made on n1 is in Bob's feed on n2.
    let (s, p) = api1
        .post(
            "/api/posts",
            &ann.token,
            json!({"content": "#cluster news", "visibility": "followers"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let pid = p["post"]["id"].as_str().unwrap().to_string();
    let (s, feed) = api2.get("/api/feed", &bob.token).await;
    assert_eq!(s, 200, "{feed}");
    assert_eq!(feed["posts"][0]["id"], pid.as_str());
    // Likes from both nodes at once: exact.
    let fans: Vec<_> = futures_util::future::join_all((0..8).map(|i| {
        let api = if i % 2 == 0 { &api1 } else { &api2 };
        async move { (i, api.register(&format!("fan{i}")).await) }
    }))
    .await;
    for (_, f) in &fans {
        api1.post(
            &format!("/api/users/{}/follow", ann.id),
            &f.token,
            json!({}),
        )
        .await;
    }
    let likes = futures_util::future::join_all(fans.iter().map(|(i, f)| {
        let (api, pid) = (if i % 2 == 0 { &api2 } else { &api1 }, pid.clone());
        async move {
            api.post(&format!("/api/posts/{pid}/like"), &f.token, json!({}))
                .await
                .0
        }
    }))
    .await;
    assert!(likes.iter().all(|s| *s == 200), "{likes:?}");
    let (_, got) = api1.get(&format!("/api/posts/{pid}"), &ann.token).await;
    assert_eq!(got["post"]["like_count"], 8, "{got}");
}

#[actix_rt::test]
async fn business_works_from_any_node() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_nodes_env(&[&cql], &redis.url(), 2, LIMITS, &[]);
    let (api1, api2) = (rest(&cluster.nodes[0]), rest(&cluster.nodes[1]));
    let owner = api1.register("bizowner").await;
    let subs: Vec<_> = futures_util::future::join_all((0..6).map(|i| {
        let api = if i % 2 == 0 { &api1 } else { &api2 };
        async move { api.register(&format!("bizsub{i}")).await }
    }))
    .await;
    // A business made on n1, followed from n2: its post (n1) is in the follower's feed (n2).
    let (s, b) = api1
        .post(
            "/api/business-profiles",
            &owner.token,
            json!({"name": "Cluster Cafe", "category": "food", "description": "coffee"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let bid = b["business"]["id"].as_str().unwrap().to_string();
    let (s, _) = api2
        .post(
            &format!("/api/business-profiles/{bid}/follow"),
            &subs[0].token,
            json!({}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, p) = api1
        .post(
            "/api/business-posts",
            &owner.token,
            json!({"business_id": bid, "content": "open late"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let (_, feed) = api2.get("/api/feed", &subs[0].token).await;
    assert_eq!(feed["posts"][0]["id"], p["post"]["id"], "{feed}");
    // A channel made on n2; subscribers on both nodes get the owner's post sent on n1, and a
    // subscriber cannot post on either node.
    let (s, ch) = api2
        .post(
            "/api/company-channels",
            &owner.token,
            json!({"business_id": bid, "name": "Deals"}),
        )
        .await;
    assert_eq!(s, 201, "{ch}");
    let (cid, room) = (
        ch["channel"]["id"].as_str().unwrap().to_string(),
        ch["channel"]["room_id"].as_str().unwrap().to_string(),
    );
    let mut sockets = Vec::new();
    for (i, u) in subs.iter().enumerate() {
        let api = if i % 2 == 0 { &api2 } else { &api1 };
        let (s, _) = api
            .post(
                &format!("/api/company-channels/{cid}/subscribe"),
                &u.token,
                json!({}),
            )
            .await;
        assert_eq!(s, 204);
        sockets.push(Ws::connect(&cluster.nodes[i % 2], Codec::Json, Auth::Query(&u.token)).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ws_owner = Ws::connect(&cluster.nodes[0], Codec::Json, Auth::Query(&owner.token)).await;
    send_until_acked(&mut ws_owner, &room, "channel-post", deadline)
        .await
        .expect("the owner's channel post is acknowledged");
    for ws in &mut sockets {
        let e = ws.expect("new_message").await;
        assert_eq!(e["d"]["message"]["content"], "channel-post");
    }
    for ws in sockets.iter_mut().take(2) {
        let r = ws
            .request(
                "send_message",
                json!({"room_id": room, "content": "x", "nonce": "sub"}),
            )
            .await;
        assert_eq!(r["d"]["code"], "forbidden", "{r}");
    }
    // Analytics counted on both nodes add up.
    let (_, report) = api2
        .get(
            &format!("/api/business-analytics?business_id={bid}"),
            &owner.token,
        )
        .await;
    assert_eq!(report["totals"]["followers"], 1, "{report}");
    assert_eq!(report["totals"]["channel_subscribers"], 6, "{report}");
    assert_eq!(report["totals"]["post_views"], 1, "{report}");
}

#[actix_rt::test]
async fn a_suspension_takes_effect_on_every_node_at_once() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_nodes_env(&[&cql], &redis.url(), 2, LIMITS, &[]);
    let (api1, api2) = (rest(&cluster.nodes[0]), rest(&cluster.nodes[1]));
    let admin = api1.register("clusteradmin").await;
    grant_admin(&cql, &admin);
    let mallory = api2.register("mallory").await;
    // Mallory's sockets on both nodes.
    let mut on1 = Ws::connect(&cluster.nodes[0], Codec::Json, Auth::Query(&mallory.token)).await;
    let mut on2 = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&mallory.token)).await;
    let (s, body) = api1
        .post(
            &format!("/api/admin/users/{}/suspend", mallory.id),
            &admin.token,
            json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    for ws in [&mut on1, &mut on2] {
        ws.expect("force_logout").await;
        assert_eq!(ws.expect_close().await, 4003);
    }
    let login = json!({"email": mallory.email, "password": "correct horse"});
    for api in [&api1, &api2] {
        let (s, body) = api
            .call("POST", "/api/auth/login", None, Some(login.clone()))
            .await;
        assert_eq!(s, 403, "{body}");
        assert_eq!(body["error"]["code"], "suspended");
        let (s, _) = api.get("/api/auth/me", &mallory.token).await;
        assert_eq!(s, 401, "the old token is refused on every node");
    }
    // Lifted on n2: logins work on both nodes.
    let (s, body) = api2
        .post(
            &format!("/api/admin/users/{}/unsuspend", mallory.id),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    for api in [&api1, &api2] {
        let (s, body) = api
            .call("POST", "/api/auth/login", None, Some(login.clone()))
            .await;
        assert_eq!(s, 200, "{body}");
    }
    // Both nodes read one audit log.
    let (s, body) = api2
        .get(
            &format!(
                "/api/admin/audit-log?target_type=user&target_id={}",
                mallory.id
            ),
            &admin.token,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let actions: Vec<&str> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "auth.login",
            "auth.login",
            "user.unsuspended",
            "auth.login_failed",
            "auth.login_failed",
            "user.suspended"
        ]
    );
}

/// Monitoring sees the whole cluster from any node: the status lists both nodes with their
/// sessions and the store's and Redis's health; a room owned by the other node shows its
/// messages of the last hour and its online members.
#[actix_rt::test]
async fn the_status_and_room_activity_span_the_cluster() {
    let Some(cql) = cql() else { return };
    let redis = RedisServer::start();
    let cluster = start_cluster(&[&cql], &redis, 2);
    let (api1, api2) = (rest(&cluster.nodes[0]), rest(&cluster.nodes[1]));
    let admin = api1.register("monitoradmin").await;
    grant_admin(&cql, &admin);
    let (a, b) = (api2.register("a").await, api2.register("b").await);
    let ids = node_ids(2);
    let mut room = String::new();
    for _ in 0..50 {
        let r = api2.group(&a, &[&b]).await;
        if dovie::cluster::owner_of(&ids, &r).map(String::as_str) == Some("n2") {
            room = r;
            break;
        }
    }
    assert!(!room.is_empty());
    let _b_online = Ws::connect(&cluster.nodes[1], Codec::Json, Auth::Query(&b.token)).await;
    for i in 0..4 {
        api1.send(&a, &room, &format!("m{i}")).await;
    }
    // n2 stored them; n1 reads n2's report (published every 2 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let figures = loop {
        let (status, body) = api1
            .get(&format!("/api/admin/rooms/{room}"), &admin.token)
            .await;
        assert_eq!(status, 200, "{body}");
        if body["messages_last_hour"] == 4 || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(figures["messages_last_hour"], 4, "{figures}");
    assert_eq!(figures["member_count"], 2, "{figures}");
    assert_eq!(figures["online_members"], 1, "{figures}");
    let (_, list) = api1.get("/api/admin/rooms", &admin.token).await;
    assert!(
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room"]["id"] == room.as_str()),
        "{list}"
    );

    let (status, body) = api1.get("/api/admin/status", &admin.token).await;
    assert_eq!(status, 200, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes
        .iter()
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n1", "n2"], "{body}");
    assert!(nodes.iter().all(|n| n["ready"] == true), "{body}");
    assert!(nodes[1]["sessions"].as_u64().unwrap() >= 1, "{body}");
    assert_eq!(body["store"]["kind"], "cql");
    assert_eq!(body["store"]["ok"], true);
    assert_eq!(body["bus"]["kind"], "redis");
    assert_eq!(body["bus"]["ok"], true);
    assert!(body["bus"]["latency_ms"].as_f64().unwrap() >= 0.0);
}
