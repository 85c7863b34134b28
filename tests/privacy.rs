//! Data exports end to end on one node: an export holds every kind of item the user created —
//! profile, sessions, contacts, blocks, rooms, their messages (in a room they left too, none of
//! anyone else's), posts, comments, likes, follows, location history, consents, saved
//! commands, security events — and the bytes of their files, checked against what was
//! uploaded; one job at a time; a file whose bytes are gone is listed as missing instead of
//! failing the archive; the download link works without a token, is refused when tampered
//! with, and is answered 404 to anyone else, as is the export itself. An erased account stops
//! at once (sockets closed 4003, logins refused), its messages become tombstones, and nothing
//! of it is left in any table or object of the store but the audit log, while the others'
//! data stays; its email registers again.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{rest, samples, Auth, Rest, Server, User, Ws};
use dovie_protocol::Codec;
use serde_json::{json, Value};

/// Asks for an export and waits (at most 60 s) until it is no longer pending.
async fn export_of(api: &Rest, user: &User) -> Value {
    let (status, body) = api.post("/api/me/export", &user.token, json!({})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["export"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = api.get(&format!("/api/me/exports/{id}"), &user.token).await;
        assert_eq!(status, 200, "{body}");
        if body["export"]["status"] != "pending" {
            return body["export"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the export is still pending: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `url`'s path on the test node (the node's `public_url` names the port it was asked to
/// listen on, 0 in tests).
fn on_node(server: &Server, url: &str) -> String {
    let path = url.splitn(4, '/').nth(3).unwrap();
    format!("http://{}/{path}", server.addr)
}

/// Downloads `url` (absolute) with optional headers: status and body.
async fn fetch(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut res = req.send().await.unwrap();
    let body = res.body().limit(256 * 1024 * 1024).await.unwrap();
    (res.status().as_u16(), body.to_vec())
}

struct Archive(zip::ZipArchive<std::io::Cursor<Vec<u8>>>);

impl Archive {
    fn bytes(&mut self, name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        self.0
            .by_name(name)
            .unwrap_or_else(|_| panic!("no {name} in the archive"))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn json(&mut self, name: &str) -> Value {
        serde_json::from_slice(&self.bytes(name)).unwrap()
    }
}

fn contents(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn an_export_holds_everything_the_user_created_with_their_files() {
    let server = Server::start();
    let api = rest(&server);
    let [ann, bob, cat] = api.register_all(["ann", "bob", "cat"]).await;

    // Ann's people, rooms and messages (one room she leaves afterwards).
    api.post("/api/contacts", &ann.token, json!({"user_id": bob.id}))
        .await;
    api.post("/api/blocks", &ann.token, json!({"user_id": cat.id}))
        .await;
    let kept = api.group(&ann, &[&bob]).await;
    let left = api.group(&bob, &[&ann]).await;
    api.send(&ann, &kept, "hello bob").await;
    api.send(&bob, &kept, "hi ann (bob's own)").await;
    api.send(&ann, &left, "said before leaving").await;
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/chat-rooms/{left}/participants/{}", ann.id),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{kept}/location"),
            &ann.token,
            json!({"lat": 37.5665, "lon": 126.978}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Her files: a photo and a document; bytes checked below.
    let photo = samples::png(64, 48);
    let pdf = samples::pdf(2, "Ann's notes");
    let photo_id = api.upload(&ann, "photo.png", photo.clone()).await;
    let pdf_id = api.upload(&ann, "notes.pdf", pdf.clone()).await;
    let bob_file = api.upload(&bob, "bob.png", samples::png(8, 8)).await;

    // Her social life.
    let (status, body) = api
        .post(
            "/api/posts",
            &ann.token,
            json!({"content": "ann's post #export", "visibility": "public"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, bob_post) = api
        .post(
            "/api/posts",
            &bob.token,
            json!({"content": "bob's post", "visibility": "public"}),
        )
        .await;
    let bob_post = bob_post["post"]["id"].as_str().unwrap().to_string();
    api.post(
        &format!("/api/posts/{bob_post}/like"),
        &ann.token,
        json!({}),
    )
    .await;
    let (status, body) = api
        .post(
            &format!("/api/posts/{bob_post}/comments"),
            &ann.token,
            json!({"content": "ann's comment"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    api.post(
        &format!("/api/users/{}/follow", bob.id),
        &ann.token,
        json!({}),
    )
    .await;
    api.post(
        &format!("/api/users/{}/follow", ann.id),
        &bob.token,
        json!({}),
    )
    .await;
    let (status, body) = api
        .call(
            "PUT",
            "/api/me/consents",
            Some(&ann.token),
            Some(json!({"location": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let export = export_of(&api, &ann).await;
    assert_eq!(export["status"], "ready", "{export}");
    let expires = export["expires_at"].as_i64().unwrap();
    let week = 7 * 86_400_000;
    let created = export["created_at"].as_i64().unwrap();
    assert!(expires > created + week - 120_000 && expires <= created + week + 120_000);
    let url = export["download_url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http"), "{url}");
    let url = on_node(&server, &url);

    // The signed link works without a token.
    let (status, zip_bytes) = fetch(&url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(zip_bytes.len() as u64, export["size"].as_u64().unwrap());
    let mut zip = Archive(zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap());

    let profile = zip.json("profile.json");
    assert_eq!(profile["user"]["id"], ann.id.as_str());
    assert_eq!(profile["user"]["email"], ann.email.as_str());
    assert_eq!(zip.json("sessions.json").as_array().unwrap().len(), 1);
    assert_eq!(zip.json("contacts.json")[0]["user_id"], bob.id.as_str());
    assert_eq!(zip.json("blocks.json")[0]["user_id"], cat.id.as_str());
    let rooms = zip.json("rooms.json");
    assert_eq!(
        rooms.as_array().unwrap().len(),
        1,
        "a room she left is not hers"
    );
    let mut mine = contents(&zip.json("messages.json"));
    mine.sort();
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert!(mine.contains(&"hello bob".to_string()));
    assert!(mine.contains(&"said before leaving".to_string()));
    assert!(!mine.iter().any(|c| c.contains("bob's own")));
    assert_eq!(contents(&zip.json("posts.json")), ["ann's post #export"]);
    assert_eq!(contents(&zip.json("comments.json")), ["ann's comment"]);
    assert_eq!(zip.json("likes.json")[0]["post_id"], bob_post.as_str());
    assert_eq!(zip.json("following.json")[0]["user_id"], bob.id.as_str());
    assert_eq!(zip.json("followers.json")[0]["user_id"], bob.id.as_str());
    let places = zip.json("location_history.json");
    assert_eq!(places.as_array().unwrap().len(), 1, "{places}");
    assert_eq!(zip.json("consents.json")[0]["kind"], "location");
    let events = zip.json("security_events.json");
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"export.requested"), "{actions:?}");

    // Her files' bytes, exactly, and none of Bob's.
    let manifest = zip.json("manifest.json");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{manifest}");
    for (id, bytes) in [(&photo_id, &photo), (&pdf_id, &pdf)] {
        let f = files.iter().find(|f| f["id"] == id.as_str()).unwrap();
        assert_eq!(f["status"], "included");
        assert_eq!(&zip.bytes(f["path"].as_str().unwrap()), bytes);
    }
    assert!(!files.iter().any(|f| f["id"] == bob_file.as_str()));

    // Nobody else reads it: not the export, not the archive even with the link.
    let id = export["id"].as_str().unwrap();
    let (status, body) = api.get(&format!("/api/me/exports/{id}"), &bob.token).await;
    assert_eq!(status, 404, "{body}");
    let bob_auth = format!("Bearer {}", bob.token);
    let (status, _) = fetch(&url, &[("authorization", bob_auth.as_str())]).await;
    assert_eq!(status, 404);
    // A tampered link is refused; no link and no token is unauthorized.
    let tampered = url.replace("sig=", "sig=x");
    assert_eq!(fetch(&tampered, &[]).await.0, 403);
    let bare = url.split('?').next().unwrap();
    assert_eq!(fetch(bare, &[]).await.0, 401);
    // The owner's token alone is enough; a range is answered 206.
    let ann_auth = format!("Bearer {}", ann.token);
    let (status, head) = fetch(
        bare,
        &[("authorization", ann_auth.as_str()), ("range", "bytes=0-3")],
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(head, b"PK\x03\x04");
}

#[actix_rt::test]
async fn one_export_at_a_time_and_a_missing_file_is_listed_not_fatal() {
    let server = Server::start();
    let api = rest(&server);
    let ann = api.register("ann").await;
    let kept = api.upload(&ann, "kept.png", samples::png(32, 32)).await;
    let lost = api.upload(&ann, "lost.png", samples::png(16, 16)).await;

    // The second file's stored object disappears: objects have random names, so each is
    // taken away in turn (newest first) until the file's download fails, and put back if not.
    let objects = server.dir.path().join("files").join("objects");
    let mut stored: Vec<(std::time::SystemTime, std::path::PathBuf)> = Vec::new();
    for dir in std::fs::read_dir(&objects).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let f = f.unwrap();
            stored.push((f.metadata().unwrap().modified().unwrap(), f.path()));
        }
    }
    stored.sort();
    let auth = format!("Bearer {}", ann.token);
    let mut removed = false;
    for (_, path) in stored.iter().rev() {
        let saved = std::fs::read(path).unwrap();
        std::fs::remove_file(path).unwrap();
        let (status, _, _) = api
            .raw(
                "GET",
                &format!("/api/files/{lost}"),
                &[("authorization", auth.as_str())],
                Vec::new(),
            )
            .await;
        if status != 200 {
            removed = true;
            break;
        }
        std::fs::write(path, saved).unwrap();
    }
    assert!(removed, "could not find the lost file's object");

    // Two asks at once: one job.
    let (s1, first) = api.post("/api/me/export", &ann.token, json!({})).await;
    let (s2, second) = api.post("/api/me/export", &ann.token, json!({})).await;
    assert_eq!((s1, s2), (202, 202));
    let first_id = first["export"]["id"].as_str().unwrap().to_string();
    if second["export"]["status"] == "pending" {
        assert_eq!(
            second["export"]["id"],
            first_id.as_str(),
            "one job at a time"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let export = loop {
        let (_, body) = api
            .get(&format!("/api/me/exports/{first_id}"), &ann.token)
            .await;
        if body["export"]["status"] != "pending" {
            break body["export"].clone();
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(export["status"], "ready", "{export}");
    let (status, bytes) = fetch(
        &on_node(&server, export["download_url"].as_str().unwrap()),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let mut zip = Archive(zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap());
    let manifest = zip.json("manifest.json");
    let files = manifest["files"].as_array().unwrap();
    let status_of = |id: &str| {
        files
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of(&kept).as_deref(), Some("included"), "{manifest}");
    assert_eq!(status_of(&lost).as_deref(), Some("missing"), "{manifest}");
    // Listed, newest first; a new ask after it finished starts a new job.
    let (_, list) = api.get("/api/me/exports", &ann.token).await;
    assert_eq!(list["exports"][0]["id"], first_id.as_str());
    let again = export_of(&api, &ann).await;
    assert_ne!(again["id"], first_id.as_str());
}

/// Waits (at most 60 s) until every preview of `user`'s file `id` is written.
async fn previews_done(api: &Rest, user: &User, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = api.get("/api/files", &user.token).await;
        let ready = body["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == id && f["preview_ready"] == true);
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "previews of {id} not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every stored object of the node.
fn objects(server: &Server) -> std::collections::BTreeSet<std::path::PathBuf> {
    let root = server.dir.path().join("files").join("objects");
    let mut out = std::collections::BTreeSet::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for dir in dirs {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            out.insert(f.unwrap().path());
        }
    }
    out
}

/// The tables of the node's store holding a row with `needle` in any column, with the count.
fn rows_holding(server: &Server, needle: &str) -> std::collections::BTreeMap<String, usize> {
    let db = rusqlite::Connection::open_with_flags(
        server.dir.path().join("dovie.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut found = std::collections::BTreeMap::new();
    for t in tables {
        let Ok(mut st) = db.prepare(&format!("SELECT * FROM \"{t}\"")) else {
            continue;
        };
        let columns = st.column_count();
        let mut rows = st.query([]).unwrap();
        let mut n = 0;
        while let Some(row) = rows.next().unwrap() {
            let hit = (0..columns).any(|i| match row.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    String::from_utf8_lossy(b).contains(needle)
                }
                _ => false,
            });
            n += usize::from(hit);
        }
        if n > 0 {
            found.insert(t, n);
        }
    }
    found
}

#[actix_rt::test]
async fn an_erased_account_leaves_nothing_behind_but_the_audit_log() {
    let server = Server::start();
    let api = rest(&server);
    let [ann, bob, cat] = api.register_all(["ann", "bob", "cat"]).await;
    let marker = "Qzxv Annabelle";
    let (status, body) = api
        .call(
            "PATCH",
            "/api/users/me",
            Some(&ann.token),
            Some(json!({"display_name": marker, "bio": "ann's secret bio"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Bob's file first: its objects are the ones that must stay.
    let bob_file = api.upload(&bob, "bob.png", samples::png(40, 30)).await;
    previews_done(&api, &bob, &bob_file).await;
    let bobs_objects = objects(&server);

    // Ann's life: rooms (one she owns with others, one she is alone in), messages, a file,
    // a post, a comment, a like, follows, contacts, blocks, consents, a place.
    let owned = api.group(&ann, &[&bob, &cat]).await;
    let alone = api.group(&ann, &[]).await;
    api.send(&ann, &owned, "ann's private words").await;
    api.send(&bob, &owned, "bob stays").await;
    api.send(&ann, &alone, "a note to self").await;
    let ann_file = api
        .upload(&ann, "ann-secret.png", samples::png(64, 64))
        .await;
    previews_done(&api, &ann, &ann_file).await;
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{owned}/messages"),
            &ann.token,
            json!({"content": "see attached", "attachments": [ann_file]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, post) = api
        .post(
            "/api/posts",
            &ann.token,
            json!({"content": "ann's public musings", "visibility": "public"}),
        )
        .await;
    let (_, bob_post) = api
        .post(
            "/api/posts",
            &bob.token,
            json!({"content": "bob's post", "visibility": "public"}),
        )
        .await;
    let bob_post = bob_post["post"]["id"].as_str().unwrap().to_string();
    api.post(
        &format!("/api/posts/{bob_post}/like"),
        &ann.token,
        json!({}),
    )
    .await;
    api.post(
        &format!("/api/posts/{bob_post}/comments"),
        &ann.token,
        json!({"content": "ann's remark"}),
    )
    .await;
    api.post(
        &format!("/api/users/{}/follow", bob.id),
        &ann.token,
        json!({}),
    )
    .await;
    api.post(
        &format!("/api/users/{}/follow", ann.id),
        &bob.token,
        json!({}),
    )
    .await;
    api.post("/api/contacts", &ann.token, json!({"user_id": bob.id}))
        .await;
    api.post("/api/contacts", &bob.token, json!({"user_id": ann.id}))
        .await;
    api.post("/api/blocks", &cat.token, json!({"user_id": ann.id}))
        .await;
    api.call(
        "PUT",
        "/api/me/consents",
        Some(&ann.token),
        Some(json!({"location": true})),
    )
    .await;
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{owned}/location"),
            &ann.token,
            json!({"lat": 48.8566, "lon": 2.3522}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(objects(&server).len() > bobs_objects.len());
    let mut ws = Ws::connect(&server, Codec::Json, Auth::Query(&ann.token)).await;

    // A wrong password changes nothing.
    let (status, body) = api
        .call(
            "DELETE",
            "/api/me",
            Some(&ann.token),
            Some(json!({"password": "not it"})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = api.get("/api/auth/me", &ann.token).await;
    assert_eq!(status, 200);

    let (status, body) = api
        .call(
            "DELETE",
            "/api/me",
            Some(&ann.token),
            Some(json!({"password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // Stopped at once: her socket closed, her logins refused.
    ws.expect("force_logout").await;
    assert_eq!(ws.expect_close().await, 4003);
    let login = json!({"email": ann.email, "password": "correct horse"});
    let (status, _) = api
        .call("POST", "/api/auth/login", None, Some(login.clone()))
        .await;
    assert!(status == 403 || status == 401, "{status}");

    // Erased: her profile is gone (within 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = api.get(&format!("/api/users/{}", ann.id), &bob.token).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the account is still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Her messages are tombstones in order; Bob's stay.
    let history = api.history(&bob, &owned, "").await;
    let by_ann: Vec<&Value> = history
        .iter()
        .filter(|m| m["sender_id"] == ann.id.as_str())
        .collect();
    assert_eq!(by_ann.len(), 3, "{history:?}");
    assert!(by_ann
        .iter()
        .all(|m| m["deleted"] == true && m["content"] == ""));
    assert!(history.iter().any(|m| m["content"] == "bob stays"));
    // The group she owned passed on and lost her; the one she was alone in is gone.
    let (status, room) = api
        .get(&format!("/api/chat-rooms/{owned}"), &bob.token)
        .await;
    assert_eq!(status, 200, "{room}");
    let members = room["room"]["member_ids"].as_array().unwrap();
    assert!(!members.contains(&json!(ann.id)));
    assert_eq!(room["room"]["roles"][&bob.id], "owner", "{room}");
    let (status, _) = api
        .get(&format!("/api/chat-rooms/{alone}"), &bob.token)
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .get(
            &format!("/api/posts/{}", post["post"]["id"].as_str().unwrap()),
            &bob.token,
        )
        .await;
    assert_eq!(status, 404);

    // Nothing of her in any table but the audit log; none of her objects, all of Bob's.
    for needle in [
        ann.email.as_str(),
        marker,
        "ann's secret bio",
        "ann's private words",
        "a note to self",
        "ann-secret.png",
        "ann's public musings",
        "ann's remark",
    ] {
        let left = rows_holding(&server, needle);
        assert!(
            left.keys().all(|t| t == "audit_log"),
            "`{needle}` is still in {left:?}"
        );
    }
    // Her id (a random UUID, naming no one once the account is gone) stays where others'
    // history needs it: the tombstones of her messages and posts, the rooms' creator.
    let by_id = rows_holding(&server, &ann.id);
    let allowed = ["audit_log", "messages", "user_posts", "chat_rooms"];
    assert!(
        by_id.keys().all(|t| allowed.contains(&t.as_str())),
        "her id is still in {by_id:?}"
    );
    assert_eq!(objects(&server), bobs_objects);

    // Bob's side: no contact, follower or like of hers left; his own file still reads.
    let (_, contacts) = api.get("/api/contacts", &bob.token).await;
    assert_eq!(
        contacts["contacts"].as_array().unwrap().len(),
        0,
        "{contacts}"
    );
    let auth = format!("Bearer {}", bob.token);
    let (status, _, _) = api
        .raw(
            "GET",
            &format!("/api/files/{bob_file}"),
            &[("authorization", auth.as_str())],
            Vec::new(),
        )
        .await;
    assert_eq!(status, 200);

    // Her email is free again.
    let (status, body) = api
        .call(
            "POST",
            "/api/auth/register",
            None,
            Some(
                json!({"email": ann.email, "password": "another horse", "display_name": "New Ann"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[actix_rt::test]
async fn admins_erase_accounts_but_not_their_own_or_the_last_admin() {
    let server = Server::start();
    let api = rest(&server);
    let [admin, bob] = api.register_all(["boss", "bob"]).await;
    server.grant_admin(&admin);
    let (status, body) = api
        .call(
            "DELETE",
            &format!("/api/admin/users/{}", admin.id),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = api
        .call(
            "DELETE",
            &format!("/api/admin/users/{}", admin.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .call(
            "DELETE",
            "/api/me",
            Some(&admin.token),
            Some(json!({"password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 409, "the last admin stays: {body}");
    let (status, body) = api
        .call(
            "DELETE",
            &format!("/api/admin/users/{}", bob.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = api
            .get(&format!("/api/admin/users/{}", bob.id), &admin.token)
            .await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "bob is still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, log) = api
        .get(
            &format!("/api/admin/audit-log?target_type=user&target_id={}", bob.id),
            &admin.token,
        )
        .await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.erasure_requested"), "{actions:?}");
    assert!(actions.contains(&"user.erased"), "{actions:?}");
}
