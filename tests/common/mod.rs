//! The integration harness: starts the real `dovie` binary on a free loopback port with its own
//! data dir, and drives it with independent REST and WebSocket clients (awc). Everything that
//! waits, waits with a timeout and fails with a message saying what it waited for.

#![allow(dead_code)]

pub mod samples;
pub mod standins;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::ws::{Codec as WsCodec, Frame, Message};
use awc::BoxedSocket;
use bytes::Bytes;
use dovie_protocol::Codec;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[], &[])
    }

    /// Starts a node with extra flags and environment (e.g. a config file).
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Server {
            child: None,
            addr: String::new(),
            dir,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn("127.0.0.1:0");
        s
    }

    fn spawn(&mut self, listen: &str) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dovie"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.args)
            .env("DOVIE_BCRYPT_COST", "4")
            // Tests not about limits must not meet them (those that are set their own).
            .env("DOVIE_RATE_LIMITS__REGISTER_PER_HOUR", "100000000")
            .env("DOVIE_RATE_LIMITS__LOGIN_PER_MINUTE", "100000000")
            .env("DOVIE_RATE_LIMITS__API_PER_MINUTE", "100000000")
            .env("DOVIE_LOG", "info")
            // Tests read English texts; those about languages set their own default.
            .env("DOVIE_I18N__DEFAULT_LOCALE", "en")
            .env_remove("DOVIE_JWT_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start dovie");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let pid = child.id();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                if std::env::var("DOVIE_TEST_LOGS").is_ok() {
                    eprintln!("[dovie {pid}] {line}");
                }
            }
        });
        // Generous: a node on a CQL server may first create its keyspace.
        let addr = rx
            .recv_timeout(Duration::from_secs(90))
            .expect("dovie did not log `listening on` within 90 s");
        self.addr = addr;
        self.child = Some(child);
    }

    /// The flags the node was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Makes the account an admin through `dovie admin grant` on this node's data directory.
    pub fn grant_admin(&self, who: &User) {
        let status = Command::new(env!("CARGO_BIN_EXE_dovie"))
            .args(["admin", "grant", &who.email, "--data-dir"])
            .arg(self.dir.path())
            .status()
            .expect("dovie admin grant");
        assert!(status.success(), "dovie admin grant failed");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{}", self.addr, query)
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited with success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        unsafe_kill(child.id(), "TERM");
        wait_exit(&mut child, Duration::from_secs(20))
    }

    /// SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again on the same address and data dir.
    pub fn restart(&mut self) {
        let addr = self.addr.clone();
        let deadline = Instant::now() + WAIT;
        loop {
            // The port may linger briefly after the old process.
            let ok = std::net::TcpListener::bind(&addr).is_ok();
            if ok || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn(&addr);
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A REST client bound to one server.
pub struct Rest {
    client: awc::Client,
    base: String,
}

pub fn rest(server: &Server) -> Rest {
    Rest {
        client: awc::Client::builder().timeout(WAIT).finish(),
        base: format!("http://{}", server.addr),
    }
}

impl Rest {
    /// JSON request; answers (status, body as JSON or Null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, value, _) = self.call_full(method, path, token, body).await;
        (status, value)
    }

    /// JSON request; answers (status, body as JSON or Null, response headers).
    pub async fn call_full(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, awc::http::header::HeaderMap) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.body().limit(16 * 1024 * 1024).await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value, headers)
    }

    /// A request without a body but with headers; answers (status, response headers, body as
    /// JSON or Null).
    pub async fn call_full_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, awc::http::header::HeaderMap, Value) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.body().limit(16 * 1024 * 1024).await.expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// A raw request with explicit headers and body bytes; answers (status, content-type, body).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String, Bytes) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut res = req.send_body(body).await.expect("request");
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = res.body().limit(16 * 1024 * 1024).await.expect("body");
        (res.status().as_u16(), ct, bytes)
    }

    /// Uploads `bytes` as `user`'s file named `name` (raw body); answers its id.
    pub async fn upload(&self, user: &User, name: &str, bytes: Vec<u8>) -> String {
        let auth = format!("Bearer {}", user.token);
        let (status, _, body) = self
            .raw(
                "POST",
                &format!("/api/upload?filename={name}"),
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/octet-stream"),
                ],
                bytes,
            )
            .await;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(status, 201, "{body}");
        body["file"]["id"].as_str().expect("a file id").to_string()
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    /// Registers a user; answers (user id, access token, refresh token).
    /// Registers one user per name, in order.
    pub async fn register_all<const N: usize>(&self, names: [&str; N]) -> [User; N] {
        let mut users = Vec::with_capacity(N);
        for name in names {
            users.push(self.register(name).await);
        }
        match users.try_into() {
            Ok(users) => users,
            Err(_) => unreachable!("one user per name"),
        }
    }

    pub async fn register(&self, name: &str) -> User {
        let email = format!("{}-{}@example.com", name, uuid_like());
        let (status, body) = self
            .call(
                "POST",
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse", "display_name": name})),
            )
            .await;
        assert_eq!(status, 201, "register: {body}");
        User {
            id: body["user"]["id"].as_str().expect("id").to_string(),
            email,
            token: body["access_token"].as_str().expect("token").to_string(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
        }
    }

    /// `DELETE /api/chat-rooms/{room}/participants/{user_id}` as `by` (yourself: leaving);
    /// answers the status.
    pub async fn remove_participant(&self, room: &str, user_id: &str, by: &User) -> u16 {
        let path = format!("/api/chat-rooms/{room}/participants/{user_id}");
        self.call("DELETE", &path, Some(&by.token), None).await.0
    }

    pub async fn group(&self, owner: &User, members: &[&User]) -> String {
        let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
        let (status, body) = self
            .post(
                "/api/chat-rooms",
                &owner.token,
                json!({"type": "group", "name": "g", "member_ids": ids}),
            )
            .await;
        assert_eq!(status, 201, "create group: {body}");
        body["room"]["id"].as_str().expect("room id").to_string()
    }

    pub async fn send(&self, user: &User, room: &str, content: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/chat-rooms/{room}/messages"),
                &user.token,
                json!({"content": content}),
            )
            .await;
        assert_eq!(status, 201, "send: {body}");
        body["message"].clone()
    }

    pub async fn history(&self, user: &User, room: &str, query: &str) -> Vec<Value> {
        let (status, body) = self
            .get(
                &format!("/api/chat-rooms/{room}/messages{query}"),
                &user.token,
            )
            .await;
        assert_eq!(status, 200, "history: {body}");
        body["messages"].as_array().expect("messages").clone()
    }

    /// Every message of a room, ascending, following `after` pages.
    pub async fn all_messages(&self, user: &User, room: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let page = self
                .history(user, room, &format!("?after={after}&limit=100"))
                .await;
            if page.is_empty() {
                return out;
            }
            after = page.last().and_then(|m| m["seq"].as_u64()).expect("seq");
            out.extend(page);
        }
    }
}

/// The crash-test accounting: a room's history must hold consecutive seqs 1..n, each nonce once,
/// and every acknowledged nonce under the seq it was acknowledged with. Answers nonce → seq.
pub fn assert_history_accounts_for(
    history: &[Value],
    acked: &std::collections::BTreeMap<String, u64>,
) -> std::collections::BTreeMap<String, u64> {
    let seqs: Vec<u64> = history
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "consecutive seqs, no reuse"
    );
    let stored: std::collections::BTreeMap<String, u64> = history
        .iter()
        .filter_map(|m| Some((m["nonce"].as_str()?.to_string(), m["seq"].as_u64()?)))
        .collect();
    let with_nonce = history.iter().filter(|m| m["nonce"].is_string()).count();
    assert_eq!(stored.len(), with_nonce, "no nonce stored twice");
    for (nonce, seq) in acked {
        assert_eq!(
            stored.get(nonce),
            Some(seq),
            "acknowledged {nonce} lost or moved"
        );
    }
    stored
}

/// Send quotas count in wall-clock minutes: waits, if need be, until `needed` fits in what is
/// left of the current minute, so a check of a quota does not straddle two windows (where the
/// new window would rightly admit sends again).
pub async fn fit_in_one_quota_window(needed: Duration) {
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 60_000) as u64;
    let needed = needed.as_millis() as u64;
    if into_minute + needed > 60_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute + 100)).await;
    }
}

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}{}", N.fetch_add(1, Ordering::Relaxed))
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

/// A WebSocket client speaking one codec.
pub struct Ws {
    framed: Framed<BoxedSocket, WsCodec>,
    pub codec: Codec,
    /// Frames read while waiting for another one, handed out first.
    backlog: std::collections::VecDeque<Value>,
    next_id: u64,
}

pub enum Auth<'a> {
    Query(&'a str),
    Header(&'a str),
    Frame(&'a str),
    None,
}

impl Ws {
    /// Connects with the codec's subprotocol and authenticates as asked; for every auth but
    /// `None`, waits for `auth_success`.
    pub async fn connect(server: &Server, codec: Codec, auth: Auth<'_>) -> Ws {
        let mut ws = Ws::open(server, codec, &auth, true).await;
        if !matches!(auth, Auth::None) {
            if let Auth::Frame(t) = auth {
                ws.send_frame("auth", None, json!({"token": t})).await;
            }
            ws.expect("connection_established").await;
            let ok = ws.expect("auth_success").await;
            assert!(ok["d"]["user_id"].is_string(), "auth_success: {ok}");
        }
        ws
    }

    pub async fn open(server: &Server, codec: Codec, auth: &Auth<'_>, subprotocol: bool) -> Ws {
        Ws::open_with(server, codec, auth, subprotocol, &[]).await
    }

    /// [`Ws::open`] with extra upgrade-request headers (e.g. `Accept-Language`).
    pub async fn open_with(
        server: &Server,
        codec: Codec,
        auth: &Auth<'_>,
        subprotocol: bool,
        headers: &[(&str, &str)],
    ) -> Ws {
        let query = match auth {
            Auth::Query(t) => format!("?token={t}"),
            _ => String::new(),
        };
        let client = awc::Client::builder().timeout(WAIT).finish();
        let mut req = client
            .ws(server.ws_url(&query))
            .max_frame_size(8 * 1024 * 1024);
        if subprotocol {
            req = req.protocols([codec.subprotocol()]);
        } else if codec == Codec::MsgPack {
            req = client
                .ws(server.ws_url(&format!(
                    "{}{}format=msgpack",
                    query,
                    if query.is_empty() { "?" } else { "&" }
                )))
                .max_frame_size(8 * 1024 * 1024);
        }
        if let Auth::Header(t) = auth {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.set_header(*k, *v);
        }
        let (res, framed) = tokio::time::timeout(WAIT, req.connect())
            .await
            .expect("ws connect timed out")
            .expect("ws connect");
        if subprotocol {
            let echoed = res
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert_eq!(
                echoed,
                codec.subprotocol(),
                "server must echo the chosen subprotocol"
            );
        }
        Ws {
            framed,
            codec,
            backlog: Default::default(),
            next_id: 1,
        }
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.framed.send(msg).await.expect("ws send");
    }

    pub async fn send_frame(&mut self, t: &str, id: Option<u64>, d: Value) {
        let mut frame = json!({"t": t, "d": d});
        if let Some(id) = id {
            frame["id"] = json!(id);
        }
        let bytes = self.codec.encode(&frame).expect("encode");
        let msg = match self.codec {
            Codec::Json => Message::Text(String::from_utf8(bytes.to_vec()).expect("utf8").into()),
            Codec::MsgPack => Message::Binary(bytes),
        };
        self.send_raw(msg).await;
    }

    /// Sends a command with a fresh id and waits for its `reply` or `error`.
    pub async fn request(&mut self, t: &str, d: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_frame(t, Some(id), d).await;
        let deadline = Instant::now() + WAIT;
        loop {
            let f = self
                .read_wire(deadline)
                .await
                .unwrap_or_else(|| panic!("no answer to {t} #{id}"));
            if f["id"] == json!(id)
                && (f["t"] == "reply" || f["t"] == "error" || f["t"] == "heartbeat")
            {
                return f;
            }
            self.backlog.push_back(f);
        }
    }

    /// Reads the next frame from the wire (not the backlog); `None` on timeout or close.
    async fn read_wire(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let item = tokio::time::timeout(left, self.framed.next())
                .await
                .ok()??;
            match item.ok()? {
                Frame::Text(b) => {
                    assert_eq!(
                        self.codec,
                        Codec::Json,
                        "text frame on a MessagePack connection"
                    );
                    return Some(serde_json::from_slice(&b).expect("server sent invalid JSON"));
                }
                Frame::Binary(b) => {
                    assert_eq!(
                        self.codec,
                        Codec::MsgPack,
                        "binary frame on a JSON connection"
                    );
                    return Some(
                        rmp_serde::from_slice(&b).expect("server sent invalid MessagePack"),
                    );
                }
                Frame::Close(reason) => {
                    let code: u16 = reason.map(|r| r.code.into()).unwrap_or(1005);
                    return Some(json!({"t": "__close", "code": code}));
                }
                Frame::Ping(p) => {
                    let _ = self.framed.send(Message::Pong(p)).await;
                }
                _ => {}
            }
        }
    }

    /// The next frame (backlog first) within `timeout`, or `None`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        self.read_wire(Instant::now() + timeout).await
    }

    pub async fn next(&mut self) -> Value {
        self.next_within(WAIT)
            .await
            .expect("no frame within the timeout")
    }

    /// Waits for the next frame of type `t`, keeping the others for later.
    pub async fn expect(&mut self, t: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        if let Some(i) = self.backlog.iter().position(|f| f["t"] == t) {
            return self.backlog.remove(i).expect("index");
        }
        loop {
            let f = self.read_wire(deadline).await.unwrap_or_else(|| {
                panic!(
                    "no `{t}` frame within {WAIT:?}; backlog: {:?}",
                    self.backlog
                )
            });
            if f["t"] == t {
                return f;
            }
            self.backlog.push_back(f);
        }
    }

    /// Waits for the socket to close; answers the close code.
    pub async fn expect_close(&mut self) -> u16 {
        let f = self.expect("__close").await;
        f["code"].as_u64().expect("code") as u16
    }

    /// Asserts that no frame of type `t` arrives within `quiet`.
    pub async fn expect_none(&mut self, t: &str, quiet: Duration) {
        assert!(
            !self.backlog.iter().any(|f| f["t"] == t),
            "unexpected `{t}` in backlog"
        );
        let deadline = Instant::now() + quiet;
        while let Some(f) = self.read_wire(deadline).await {
            assert_ne!(f["t"], t, "unexpected `{t}`: {f}");
            self.backlog.push_back(f);
        }
    }

    pub fn clear(&mut self) {
        self.backlog.clear();
    }
}

/// A Redis server of the test's own, on a free loopback port (Debian's `redis-server`).
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut r = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        r.spawn();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills Redis (losing everything it held) and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy on loopback that a test can cut (refusing and dropping connections) and restore:
/// the way to take a backing service "down" for one node without stopping it for everyone.
pub struct Proxy {
    pub addr: String,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    /// Starts the proxy on its own thread (the test's runtime is often blocked waiting for a
    /// server to start, and the proxy must keep serving meanwhile).
    pub async fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr").to_string();
        let open = std::sync::Arc::new(AtomicBool::new(true));
        let generation = std::sync::Arc::new(AtomicU64::new(0));
        let (o, g, up) = (open.clone(), generation.clone(), upstream.to_string());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !o.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection close
                    }
                    let (g2, gen_at_start, up) = (g.clone(), g.load(Ordering::SeqCst), up.clone());
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(&up).await else {
                            return;
                        };
                        let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                        let cut = async {
                            while g2.load(Ordering::SeqCst) == gen_at_start {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        };
                        tokio::select! {
                            _ = copy => {}
                            _ = cut => {}
                        }
                    });
                }
            });
        });
        Proxy {
            addr,
            open,
            generation,
        }
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        use std::sync::atomic::Ordering;
        self.open.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A Redis Cluster of three masters on free loopback ports (Debian's redis-server and redis-cli).
pub struct RedisCluster {
    children: Vec<Child>,
    pub ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..3)
            .map(|_| {
                // Cluster bus ports are port + 10000: pick ports that leave room for them.
                loop {
                    let p = std::net::TcpListener::bind("127.0.0.1:0")
                        .and_then(|l| l.local_addr())
                        .map(|a| a.port())
                        .expect("a free port");
                    if p < 55000 && std::net::TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
                        return p;
                    }
                }
            })
            .collect();
        let mut children = Vec::new();
        for p in &ports {
            let d = dir.path().join(p.to_string());
            std::fs::create_dir_all(&d).expect("dir");
            children.push(
                Command::new("redis-server")
                    .args([
                        "--port",
                        &p.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                    ])
                    .args([
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .arg("--dir")
                    .arg(&d)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server"),
            );
        }
        for p in &ports {
            let deadline = Instant::now() + WAIT;
            while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not listen");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &ports[0].to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not become ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster {
            children,
            ports,
            _dir: dir,
        }
    }

    /// The seed URLs, comma-separated, as `--redis` takes them for a cluster.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
