//! Push services, as Dovie meets them.
//!
//! - [`WebPushService`]: what a browser's push service and the browser do together. Tests make
//!   [`Browser`]s (their own P-256 key pairs and auth secrets, like `PushManager.subscribe`);
//!   each push to a browser's endpoint must carry a VAPID token (RFC 8292) signed by the key
//!   the test says the server's is, for this service's origin, expiring within 24 h, with a
//!   `sub`; its body must decrypt (RFC 8291 `aes128gcm`, or `aesgcm`) with the browser's keys.
//!   What decrypts is recorded; anything else is refused (401/400) and recorded as refused.
//!   Tests can make an endpoint answer 404/410/429/500 instead.
//! - [`ApnsService`]: Apple's push service over HTTP/2 (cleartext, prior knowledge): checks the
//!   ES256 provider token (`kid`, `iss`, signature, age under an hour), the topic, the push type
//!   and the payload, and answers Apple's error bodies.

#![allow(clippy::unwrap_used)] // a test stand-in: a poisoned lock or a bad literal is a failed test

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use super::StandIn;

/// A browser's push subscription keys, made as a browser makes them.
#[derive(Clone)]
pub struct Browser {
    pub id: String,
    secret: Vec<u8>,
    public: Vec<u8>,
    auth: [u8; 16],
}

impl Browser {
    pub fn new(id: &str) -> Browser {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let public = secret.public_key().to_sec1_bytes().to_vec();
        let mut auth = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut auth);
        Browser {
            id: id.to_string(),
            secret: secret.to_bytes().to_vec(),
            public,
            auth,
        }
    }

    pub fn p256dh(&self) -> String {
        B64URL.encode(&self.public)
    }

    pub fn auth(&self) -> String {
        B64URL.encode(self.auth)
    }

    fn components(&self) -> ece::crypto::EcKeyComponents {
        ece::crypto::EcKeyComponents::new(self.secret.clone(), self.public.clone())
    }
}

/// One push a browser received and decrypted.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub browser: String,
    pub payload: Value,
    pub encoding: String,
    pub ttl: Option<u32>,
    pub urgency: Option<String>,
    pub topic: Option<String>,
}

#[derive(Default)]
struct WebState {
    vapid_key: Mutex<Option<Vec<u8>>>,
    browsers: Mutex<HashMap<String, Browser>>,
    delivered: Mutex<Vec<Delivered>>,
    refused: Mutex<Vec<String>>,
    scripted: Mutex<HashMap<String, VecDeque<u16>>>,
    /// Requests per browser, whatever was answered.
    attempts: Mutex<HashMap<String, usize>>,
    /// Answers wait this long first (a slow service).
    delay_ms: AtomicUsize,
    origin: Mutex<String>,
}

pub struct WebPushService {
    pub standin: StandIn,
    state: Arc<WebState>,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Checks the VAPID `Authorization` header; answers what is wrong.
fn check_vapid(state: &WebState, req: &HttpRequest) -> Result<(), String> {
    let auth = header(req, "authorization").ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("vapid ")
        .ok_or("Authorization is not `vapid t=…, k=…`")?;
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v);
        } else if let Some(v) = part.strip_prefix("k=") {
            k = Some(v);
        }
    }
    let (t, k) = (t.ok_or("no t=")?, k.ok_or("no k=")?);
    let k = B64URL.decode(k).map_err(|_| "k is not base64url")?;
    let expected = state
        .vapid_key
        .lock()
        .unwrap()
        .clone()
        .ok_or("no VAPID key told")?;
    if k != expected {
        return Err("k is not the application server key the browser subscribed with".into());
    }
    let point = p256::PublicKey::from_sec1_bytes(&k).map_err(|_| "k is not a P-256 point")?;
    let encoded = p256::EncodedPoint::from(point);
    let x = B64URL.encode(encoded.x().ok_or("no x")?);
    let y = B64URL.encode(encoded.y().ok_or("no y")?);
    let key = jsonwebtoken::DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    let origin = state.origin.lock().unwrap().clone();
    v.set_audience(&[origin.as_str()]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(t, &key, &v)
        .map_err(|e| format!("the VAPID token does not verify: {e}"))?
        .claims;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().ok_or("exp is not a number")?;
    if exp > now + 24 * 3600 {
        return Err("exp is more than 24 hours ahead".into());
    }
    let sub = claims["sub"].as_str().unwrap_or("");
    if !(sub.starts_with("mailto:") || sub.starts_with("https:") || sub.starts_with("http:")) {
        return Err(format!("sub is not a contact: {sub}"));
    }
    Ok(())
}

fn decrypt(browser: &Browser, req: &HttpRequest, body: &[u8]) -> Result<(String, Vec<u8>), String> {
    match header(req, "content-encoding") {
        Some("aes128gcm") => ece::decrypt(&browser.components(), &browser.auth, body)
            .map(|p| ("aes128gcm".to_string(), p))
            .map_err(|e| format!("aes128gcm does not decrypt: {e}")),
        Some("aesgcm") => {
            let param = |h: &str, name: &str| -> Option<Vec<u8>> {
                header(req, h)?
                    .split([';', ','])
                    .find_map(|p| p.trim().strip_prefix(name))
                    .and_then(|v| B64URL.decode(v.trim_end_matches('=')).ok())
            };
            let dh = param("crypto-key", "dh=").ok_or("no dh in Crypto-Key")?;
            let salt = param("encryption", "salt=").ok_or("no salt in Encryption")?;
            let block = ece::legacy::AesGcmEncryptedBlock::new(&dh, &salt, 4096, body.to_vec())
                .map_err(|e| e.to_string())?;
            ece::legacy::decrypt_aesgcm(&browser.components(), &browser.auth, &block)
                .map(|p| ("aesgcm".to_string(), p))
                .map_err(|e| format!("aesgcm does not decrypt: {e}"))
        }
        other => Err(format!("Content-Encoding {other:?}")),
    }
}

async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Arc<WebState>>,
    body: Bytes,
) -> HttpResponse {
    let id = path.into_inner();
    *state
        .attempts
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_default() += 1;
    let delay = state.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let browser = state.browsers.lock().unwrap().get(&id).cloned();
    let Some(browser) = browser else {
        return HttpResponse::NotFound().body("no such subscription");
    };
    if let Some(status) = state
        .scripted
        .lock()
        .unwrap()
        .get_mut(&id)
        .and_then(|q| q.pop_front())
    {
        let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
        if status == 429 {
            res.insert_header(("Retry-After", "1"));
        }
        return res.body(format!("scripted {status}"));
    }
    if let Err(e) = check_vapid(&state, &req) {
        state.refused.lock().unwrap().push(e.clone());
        return HttpResponse::Unauthorized().body(e);
    }
    let ttl = header(&req, "ttl").and_then(|t| t.parse().ok());
    if ttl.is_none() {
        state.refused.lock().unwrap().push("no TTL".into());
        return HttpResponse::BadRequest().body("TTL is required");
    }
    match decrypt(&browser, &req, &body) {
        Ok((encoding, plain)) => {
            let payload = serde_json::from_slice(&plain).unwrap_or(Value::Null);
            state.delivered.lock().unwrap().push(Delivered {
                browser: id,
                payload,
                encoding,
                ttl,
                urgency: header(&req, "urgency").map(str::to_string),
                topic: header(&req, "topic").map(str::to_string),
            });
            HttpResponse::Created().finish()
        }
        Err(e) => {
            state.refused.lock().unwrap().push(e.clone());
            HttpResponse::BadRequest().body(e)
        }
    }
}

impl WebPushService {
    pub fn start() -> WebPushService {
        let state = Arc::new(WebState::default());
        let data = state.clone();
        let standin = StandIn::start(move |cfg| {
            cfg.app_data(web::Data::new(data.clone()))
                .app_data(web::PayloadConfig::new(64 * 1024))
                .route("/push/{id}", web::post().to(receive));
        });
        *state.origin.lock().unwrap() = standin.base_url.clone();
        WebPushService { standin, state }
    }

    /// The server's VAPID public key (base64url), as a browser's `applicationServerKey`.
    pub fn expect_vapid_key(&self, key: &str) {
        *self.state.vapid_key.lock().unwrap() = Some(B64URL.decode(key).expect("base64url"));
    }

    /// A browser subscribed at this service: its endpoint.
    pub fn subscribe(&self, browser: &Browser) -> String {
        self.state
            .browsers
            .lock()
            .unwrap()
            .insert(browser.id.clone(), browser.clone());
        self.standin.url(&format!("/push/{}", browser.id))
    }

    /// The next answers to `browser`'s endpoint (instead of accepting).
    pub fn answer(&self, browser: &Browser, statuses: &[u16]) {
        self.state
            .scripted
            .lock()
            .unwrap()
            .entry(browser.id.clone())
            .or_default()
            .extend(statuses);
    }

    /// Every answer waits this long first.
    pub fn slow_down(&self, by: Duration) {
        self.state
            .delay_ms
            .store(by.as_millis() as usize, Ordering::Relaxed);
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.state.delivered.lock().unwrap().clone()
    }

    pub fn delivered_to(&self, browser: &Browser) -> Vec<Delivered> {
        self.delivered()
            .into_iter()
            .filter(|d| d.browser == browser.id)
            .collect()
    }

    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().unwrap().clone()
    }

    pub fn attempts(&self, browser: &Browser) -> usize {
        self.state
            .attempts
            .lock()
            .unwrap()
            .get(&browser.id)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `browser` has `n` pushes (or the time is up); answers them.
    pub async fn wait_for(&self, browser: &Browser, n: usize, within: Duration) -> Vec<Delivered> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.delivered_to(browser);
            if got.len() >= n || std::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One push APNs accepted.
#[derive(Debug, Clone)]
pub struct ApnsDelivered {
    pub token: String,
    pub payload: Value,
    pub push_type: String,
    pub priority: Option<String>,
}

struct ApnsState {
    key_x: String,
    key_y: String,
    key_id: String,
    team_id: String,
    topic: String,
    delivered: Mutex<Vec<ApnsDelivered>>,
    refused: Mutex<Vec<String>>,
    scripted: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
    /// Scripted answers given, by token.
    answered: Mutex<HashMap<String, usize>>,
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// Apple's push service on HTTP/2 (cleartext).
pub struct ApnsService {
    pub base_url: String,
    /// The provider key's PKCS#8 PEM (what `push.apns.key_file` holds).
    pub key_pem: String,
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
    state: Arc<ApnsState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type H2Response = hyper::Response<http_body_util::Full<Bytes>>;

fn apns_answer(status: u16, reason: &str) -> H2Response {
    let body = if reason.is_empty() {
        Bytes::new()
    } else {
        Bytes::from(serde_json::json!({ "reason": reason }).to_string())
    };
    hyper::Response::builder()
        .status(status)
        .header("apns-id", "00000000-0000-0000-0000-000000000000")
        .body(http_body_util::Full::new(body))
        .unwrap()
}

async fn apns_handle(
    state: Arc<ApnsState>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<H2Response, std::convert::Infallible> {
    use http_body_util::BodyExt;
    state.requests.fetch_add(1, Ordering::Relaxed);
    let refuse = |status: u16, reason: &str| {
        state.refused.lock().unwrap().push(reason.to_string());
        Ok(apns_answer(status, reason))
    };
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (auth, topic, push_type, priority) = (
        h("authorization"),
        h("apns-topic"),
        h("apns-push-type"),
        h("apns-priority"),
    );
    let path = req.uri().path().to_string();
    let Some(token) = path.strip_prefix("/3/device/").map(str::to_string) else {
        return refuse(404, "BadPath");
    };
    if req.method() != hyper::Method::POST {
        return refuse(405, "MethodNotAllowed");
    }
    let Some(jwt) = auth.as_deref().and_then(|a| a.strip_prefix("bearer ")) else {
        return refuse(403, "MissingProviderToken");
    };
    let Ok(head) = jsonwebtoken::decode_header(jwt) else {
        return refuse(403, "InvalidProviderToken");
    };
    if head.alg != jsonwebtoken::Algorithm::ES256 || head.kid.as_deref() != Some(&state.key_id) {
        return refuse(403, "InvalidProviderToken");
    }
    let key = jsonwebtoken::DecodingKey::from_ec_components(&state.key_x, &state.key_y).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_required_spec_claims(&["iss", "iat"]);
    v.validate_exp = false;
    v.set_issuer(&[state.team_id.as_str()]);
    let Ok(data) = jsonwebtoken::decode::<Value>(jwt, &key, &v) else {
        return refuse(403, "InvalidProviderToken");
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iat = data.claims["iat"].as_u64().unwrap_or(0);
    if iat + 3600 < now || iat > now + 60 {
        return refuse(403, "ExpiredProviderToken");
    }
    if topic.as_deref() != Some(&state.topic) {
        return refuse(
            400,
            if topic.is_none() {
                "MissingTopic"
            } else {
                "DeviceTokenNotForTopic"
            },
        );
    }
    if !matches!(push_type.as_deref(), Some("alert" | "background")) {
        return refuse(400, "InvalidPushType");
    }
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(400, "BadDeviceToken");
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return refuse(400, "BadPayload"),
    };
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return refuse(400, "BadPayload");
    };
    if !payload["aps"].is_object() {
        return refuse(400, "PayloadEmpty");
    }
    if let Some((status, reason)) = state
        .scripted
        .lock()
        .unwrap()
        .get_mut(&token)
        .and_then(|q| q.pop_front())
    {
        *state.answered.lock().unwrap().entry(token).or_default() += 1;
        return Ok(apns_answer(status, &reason));
    }
    state.delivered.lock().unwrap().push(ApnsDelivered {
        token,
        payload,
        push_type: push_type.unwrap_or_default(),
        priority,
    });
    Ok(apns_answer(200, ""))
}

impl ApnsService {
    pub fn start() -> ApnsService {
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let key_pem = secret
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        let point = p256::EncodedPoint::from(secret.public_key());
        let state = Arc::new(ApnsState {
            key_x: B64URL.encode(point.x().unwrap()),
            key_y: B64URL.encode(point.y().unwrap()),
            key_id: "ABC123DEFG".into(),
            team_id: "DEF123GHIJ".into(),
            topic: "chat.dovie.app".into(),
            delivered: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            scripted: Mutex::new(HashMap::new()),
            answered: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().port()).unwrap();
                let mut stopped = stopped;
                loop {
                    let conn = tokio::select! {
                        c = listener.accept() => c,
                        _ = &mut stopped => return,
                    };
                    let Ok((stream, _)) = conn else { continue };
                    served.connections.fetch_add(1, Ordering::Relaxed);
                    let state = served.clone();
                    tokio::spawn(async move {
                        let service =
                            hyper::service::service_fn(move |req| apns_handle(state.clone(), req));
                        let _ = hyper::server::conn::http2::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                    });
                }
            });
        });
        let port = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        ApnsService {
            base_url: format!("http://127.0.0.1:{port}"),
            key_pem,
            key_id: state.key_id.clone(),
            team_id: state.team_id.clone(),
            topic: state.topic.clone(),
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The next answers for `token` (status, Apple's reason).
    pub fn answer(&self, token: &str, answers: &[(u16, &str)]) {
        self.state
            .scripted
            .lock()
            .unwrap()
            .entry(token.to_string())
            .or_default()
            .extend(answers.iter().map(|(s, r)| (*s, r.to_string())));
    }

    pub fn delivered(&self) -> Vec<ApnsDelivered> {
        self.state.delivered.lock().unwrap().clone()
    }

    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().unwrap().clone()
    }

    /// TCP connections opened to this service so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Waits until `token` has had `n` of its scripted answers; how many it had.
    pub async fn wait_answered(&self, token: &str, n: usize, within: Duration) -> usize {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self
                .state
                .answered
                .lock()
                .unwrap()
                .get(token)
                .copied()
                .unwrap_or(0);
            if got >= n || std::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for(&self, token: &str, n: usize, within: Duration) -> Vec<ApnsDelivered> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got: Vec<_> = self
                .delivered()
                .into_iter()
                .filter(|d| d.token == token)
                .collect();
            if got.len() >= n || std::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ApnsService {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
