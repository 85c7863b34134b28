//! Backup and restore of an embedded node, black-box through the CLI: a backup taken while the
//! node keeps taking messages restores into a fresh node with the same accounts (passwords and
//! tokens work), rooms, ids, seqs without a gap, contents, reactions, posts and file bytes, and a
//! client resumes against it; a node holding data is not overwritten without `--force`; a
//! damaged or truncated archive restores nothing. The same for a node on the CQL store (its
//! keyspace into a fresh one).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{rest, samples, Auth, Server, Ws};
use dovie_protocol::Codec;
use serde_json::json;

/// Runs `dovie <args>`: success and what it printed.
fn dovie(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dovie"))
        .args(args)
        .env("DOVIE_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[actix_rt::test]
async fn a_backup_taken_while_serving_restores_into_a_fresh_node() {
    let mut source = Server::start();
    let api = rest(&source);
    let (ann, bob) = (api.register("ann").await, api.register("bob").await);
    let room = api.group(&ann, &[&bob]).await;
    for i in 0..5 {
        api.send(&ann, &room, &format!("before {i}")).await;
    }
    let first = api.history(&ann, &room, "").await;
    let liked = first[1]["id"].as_str().unwrap().to_string();
    let (status, body) = api
        .call(
            "POST",
            &format!("/api/messages/{liked}/like"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let photo = samples::png(48, 32);
    let file = api.upload(&ann, "photo.png", photo.clone()).await;
    let (status, post) = api
        .post(
            "/api/posts",
            &ann.token,
            json!({"content": "backed up post", "visibility": "public"}),
        )
        .await;
    assert_eq!(status, 201, "{post}");

    // The backup runs while messages keep arriving.
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("node.zip");
    let sender = {
        let api = rest(&source);
        let (ann, room) = (ann.clone(), room.clone());
        actix_rt::spawn(async move {
            for i in 0..40 {
                api.send(&ann, &room, &format!("during {i}")).await;
            }
        })
    };
    let (ok, out) = dovie(&[
        "backup",
        "--out",
        path(&archive),
        "--data-dir",
        path(source.dir.path()),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("backed up"), "{out}");
    sender.await.unwrap();
    let at_source = api.history(&ann, &room, "?limit=100").await;
    source.terminate();

    // A fresh node (started once, so it is a node of its own, then stopped) from the archive.
    let mut target = Server::start();
    target.terminate();
    let target_dir = target.dir.path().to_path_buf();
    let (ok, out) = dovie(&[
        "restore",
        "--from",
        path(&archive),
        "--data-dir",
        path(&target_dir),
    ]);
    assert!(ok, "{out}");
    target.restart();
    let api = rest(&target);

    // The same accounts: the password logs in, the old token still works.
    let (status, body) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": ann.email, "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, me) = api.get("/api/auth/me", &ann.token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["id"], ann.id.as_str());

    // The same room: ids, seqs 1..n without a gap, contents as they were at the source.
    let restored = api.history(&ann, &room, "?limit=100").await;
    let n = restored.len();
    assert!(n >= 5, "{restored:?}");
    for (i, m) in restored.iter().enumerate() {
        assert_eq!(m["seq"], (i + 1) as u64, "no gap");
        let was = &at_source[i];
        assert_eq!(m["id"], was["id"]);
        assert_eq!(m["content"], was["content"]);
        assert_eq!(m["created_at"], was["created_at"]);
    }
    assert_eq!(restored[1]["reactions"], json!({"👍": [bob.id]}));
    let (status, p) = api
        .get(
            &format!("/api/posts/{}", post["post"]["id"].as_str().unwrap()),
            &bob.token,
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["post"]["content"], "backed up post");
    let auth = format!("Bearer {}", ann.token);
    let (status, _, bytes) = api
        .raw(
            "GET",
            &format!("/api/files/{file}"),
            &[("authorization", auth.as_str())],
            Vec::new(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(bytes.to_vec(), photo);

    // A client resumes from where it was and gets the rest in order; sending continues the seqs.
    let mut ws = Ws::connect(&target, Codec::Json, Auth::Query(&bob.token)).await;
    ws.send_frame("resume", None, json!({"rooms": {room.clone(): 2}}))
        .await;
    let mut seqs = Vec::new();
    loop {
        let f = ws.next_within(Duration::from_secs(10)).await.unwrap();
        match f["t"].as_str() {
            Some("new_message") => seqs.push(f["d"]["message"]["seq"].as_u64().unwrap()),
            Some("resume_done") => break,
            _ => {}
        }
    }
    assert_eq!(seqs, (3..=n as u64).collect::<Vec<_>>());
    let next = api.send(&ann, &room, "after the restore").await;
    assert_eq!(next["seq"], (n + 1) as u64);
    // The restore is in the restored node's audit log.
    target.grant_admin(&ann);
    let (status, log) = api
        .get("/api/admin/audit-log?action=backup.restored", &ann.token)
        .await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["entries"].as_array().unwrap().len(), 1, "{log}");

    // The node holds data now: not restored over without --force.
    target.terminate();
    let (ok, out) = dovie(&[
        "restore",
        "--from",
        path(&archive),
        "--data-dir",
        path(&target_dir),
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("--force"), "{out}");
    let (ok, out) = dovie(&[
        "restore",
        "--from",
        path(&archive),
        "--data-dir",
        path(&target_dir),
        "--force",
    ]);
    assert!(ok, "{out}");
}

#[actix_rt::test]
async fn a_damaged_or_truncated_archive_restores_nothing() {
    let source = Server::start();
    let api = rest(&source);
    let ann = api.register("ann").await;
    // Enough bytes that a flipped byte lands inside an entry.
    api.upload(&ann, "noise.png", samples::noise_png(200, 200))
        .await;
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("node.zip");
    let (ok, out) = dovie(&[
        "backup",
        "--out",
        path(&archive),
        "--data-dir",
        path(source.dir.path()),
    ]);
    assert!(ok, "{out}");
    let good = std::fs::read(&archive).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let truncated = good[..good.len() * 2 / 3].to_vec();
    for (name, bytes) in [("flipped.zip", flipped), ("truncated.zip", truncated)] {
        let bad = work.path().join(name);
        std::fs::write(&bad, bytes).unwrap();
        let target = tempfile::tempdir().unwrap();
        let (ok, out) = dovie(&[
            "restore",
            "--from",
            path(&bad),
            "--data-dir",
            path(target.path()),
        ]);
        assert!(!ok, "{name}: {out}");
        assert!(out.contains("damaged"), "{name}: {out}");
        assert!(
            !target.path().join("dovie.db").exists(),
            "{name}: nothing restored"
        );
        let objects = target.path().join("files").join("objects");
        assert!(!objects.exists() || std::fs::read_dir(&objects).unwrap().next().is_none());
    }
    // Not a backup at all.
    let target = tempfile::tempdir().unwrap();
    let (ok, out) = dovie(&[
        "restore",
        "--from",
        path(&work.path().join("missing.zip")),
        "--data-dir",
        path(target.path()),
    ]);
    assert!(!ok, "{out}");
}

fn cql() -> Option<String> {
    match std::env::var("DOVIE_TEST_CQL") {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok() => panic!("DOVIE_TEST_CQL is not set: CI must run this"),
        _ => {
            eprintln!("DOVIE_TEST_CQL is not set: skipping (scripts/test.sh starts a CQL server)");
            None
        }
    }
}

#[actix_rt::test]
async fn a_cql_node_backs_up_and_restores_into_a_fresh_keyspace() {
    let Some(nodes) = cql() else { return };
    let (ks_a, ks_b) = (
        format!("dovie_bk_{}", common::uuid_like()),
        format!("dovie_bk_{}", common::uuid_like()),
    );
    let flags = |ks: &str| -> Vec<String> {
        [
            "--store",
            "scylla",
            "--scylla",
            nodes.as_str(),
            "--keyspace",
            ks,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let fa = flags(&ks_a);
    let source = Server::start_with(&fa.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let api = rest(&source);
    let (ann, bob) = (api.register("ann").await, api.register("bob").await);
    let room = api.group(&ann, &[&bob]).await;
    for i in 0..6 {
        api.send(&ann, &room, &format!("cql {i}")).await;
    }
    let history = api.history(&ann, &room, "").await;
    let liked = history[0]["id"].as_str().unwrap().to_string();
    api.call(
        "POST",
        &format!("/api/messages/{liked}/like"),
        Some(&bob.token),
        None,
    )
    .await;
    let (_, post) = api
        .post(
            "/api/posts",
            &ann.token,
            json!({"content": "cql post", "visibility": "public"}),
        )
        .await;
    let post_id = post["post"]["id"].as_str().unwrap().to_string();
    api.post(&format!("/api/posts/{post_id}/like"), &bob.token, json!({}))
        .await;
    let photo = samples::png(20, 20);
    let file = api.upload(&ann, "cql.png", photo.clone()).await;

    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("cql.zip");
    let mut args: Vec<&str> = vec![
        "backup",
        "--out",
        path(&archive),
        "--data-dir",
        path(source.dir.path()),
    ];
    args.extend(fa.iter().map(String::as_str));
    let (ok, out) = dovie(&args);
    assert!(ok, "{out}");
    let at_source = api.history(&ann, &room, "").await;

    // Into a fresh keyspace and data dir.
    let fb = flags(&ks_b);
    let mut target = Server::start_with(&fb.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    target.terminate();
    let mut args: Vec<&str> = vec![
        "restore",
        "--from",
        path(&archive),
        "--data-dir",
        path(target.dir.path()),
    ];
    args.extend(fb.iter().map(String::as_str));
    let (ok, out) = dovie(&args);
    assert!(ok, "{out}");
    // An embedded node does not take a CQL backup.
    let other = tempfile::tempdir().unwrap();
    let (ok, out) = dovie(&[
        "restore",
        "--from",
        path(&archive),
        "--data-dir",
        path(other.path()),
    ]);
    assert!(!ok && out.contains("not built yet"), "{out}");
    target.restart();
    let api = rest(&target);

    let (status, me) = api.get("/api/auth/me", &ann.token).await;
    assert_eq!(status, 200, "{me}");
    let restored = api.history(&ann, &room, "").await;
    assert_eq!(restored.len(), at_source.len());
    for (m, was) in restored.iter().zip(&at_source) {
        assert_eq!(m["id"], was["id"]);
        assert_eq!(m["seq"], was["seq"]);
        assert_eq!(m["content"], was["content"]);
    }
    assert_eq!(restored[0]["reactions"], json!({"👍": [bob.id]}));
    let (status, p) = api.get(&format!("/api/posts/{post_id}"), &ann.token).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["post"]["like_count"], 1, "a counter restored once: {p}");
    let auth = format!("Bearer {}", ann.token);
    let (status, _, bytes) = api
        .raw(
            "GET",
            &format!("/api/files/{file}"),
            &[("authorization", auth.as_str())],
            Vec::new(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(bytes.to_vec(), photo);
    let next = api.send(&ann, &room, "after").await;
    assert_eq!(next["seq"], at_source.len() as u64 + 1);

    // Holding data now: refused without --force; with it, counters are not doubled.
    target.terminate();
    let mut args: Vec<&str> = vec![
        "restore",
        "--from",
        path(&archive),
        "--data-dir",
        path(target.dir.path()),
    ];
    args.extend(fb.iter().map(String::as_str));
    let (ok, out) = dovie(&args);
    assert!(!ok && out.contains("--force"), "{out}");
    args.push("--force");
    let (ok, out) = dovie(&args);
    assert!(ok, "{out}");
    target.restart();
    let api = rest(&target);
    let (_, p) = api.get(&format!("/api/posts/{post_id}"), &ann.token).await;
    assert_eq!(p["post"]["like_count"], 1, "{p}");
}
