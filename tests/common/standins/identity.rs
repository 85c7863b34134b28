//! Identity and SMS providers as Dovie meets them: Google's JWKS endpoint (the test signs ID
//! tokens with the stand-in's own RSA key), Facebook's Graph API (`/debug_token` checks the app
//! token, `/me` checks `appsecret_proof`), and Twilio's Messages API (Basic auth, the account
//! path, the form fields; the messages are kept so a test can read the code it sent).

use std::sync::{Arc, Mutex};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{Log, StandIn};

/// Google: a JWKS with one RSA key (`kid` "k1", or another after [`Google::rotate`]), and the
/// means to sign ID tokens with it.
pub struct Google {
    pub server: StandIn,
    keys: Arc<Mutex<Vec<(String, rsa::RsaPrivateKey)>>>,
    /// When false, the JWKS answers 503.
    pub up: Arc<std::sync::atomic::AtomicBool>,
}

fn jwk(kid: &str, key: &rsa::RsaPrivateKey) -> Value {
    json!({ "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": B64.encode(key.n().to_bytes_be()), "e": B64.encode(key.e().to_bytes_be()) })
}

fn new_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("an RSA key")
}

impl Google {
    pub fn start() -> Google {
        let keys = Arc::new(Mutex::new(vec![("k1".to_string(), new_key())]));
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (k, u) = (keys.clone(), up.clone());
        let server = StandIn::start(move |cfg| {
            let (k, u) = (k.clone(), u.clone());
            cfg.route(
                "/certs",
                web::get().to(move |req: HttpRequest, log: web::Data<Log>, body: Bytes| {
                    let (k, u) = (k.clone(), u.clone());
                    async move {
                        log.record(&req, &body);
                        if !u.load(std::sync::atomic::Ordering::SeqCst) {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
                        let keys: Vec<Value> = k
                            .lock()
                            .expect("keys")
                            .iter()
                            .map(|(kid, key)| jwk(kid, key))
                            .collect();
                        HttpResponse::Ok()
                            .insert_header(("cache-control", "public, max-age=3600"))
                            .json(json!({ "keys": keys }))
                    }
                }),
            );
        });
        Google { server, keys, up }
    }

    pub fn certs_url(&self) -> String {
        self.server.url("/certs")
    }

    /// Publishes a new key (as Google does every few days); tokens signed with it name `kid`.
    pub fn rotate(&self, kid: &str) {
        self.keys
            .lock()
            .expect("keys")
            .push((kid.to_string(), new_key()));
    }

    /// JWKS fetches so far.
    pub fn fetches(&self) -> usize {
        self.server.log.requests().len()
    }

    /// An ID token with `claims` (iss, aud, exp… as given), signed RS256 with key `kid`.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let keys = self.keys.lock().expect("keys");
        let key = &keys
            .iter()
            .find(|(k, _)| k == kid)
            .expect("a key of that kid")
            .1;
        let der = key.to_pkcs1_der().expect("der");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
        )
        .expect("sign")
    }

    /// Claims Google would put in an ID token for `sub`, for audience `aud`, valid an hour.
    pub fn claims(aud: &str, sub: &str, email: &str, verified: bool) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        json!({ "iss": "https://accounts.google.com", "aud": aud, "sub": sub, "email": email,
                "email_verified": verified, "name": "Gina Google", "iat": now, "exp": now + 3600 })
    }
}

/// Facebook's Graph API for one app; `tokens` maps user tokens to (user id, name, email).
pub struct Facebook {
    pub server: StandIn,
    pub app_id: String,
    pub app_secret: String,
}

impl Facebook {
    pub fn start(
        app_id: &str,
        app_secret: &str,
        tokens: Vec<(&str, &str, &str, &str)>,
    ) -> Facebook {
        let tokens: Arc<Vec<(String, String, String, String)>> = Arc::new(
            tokens
                .into_iter()
                .map(|(t, id, n, e)| (t.into(), id.into(), n.into(), e.into()))
                .collect(),
        );
        let (app, secret) = (app_id.to_string(), app_secret.to_string());
        let (t1, a1, s1) = (tokens.clone(), app.clone(), secret.clone());
        let server = StandIn::start(move |cfg| {
            let (t1, a1, s1) = (t1.clone(), a1.clone(), s1.clone());
            let (t2, s2) = (t1.clone(), s1.clone());
            cfg.route(
                "/debug_token",
                web::get().to(move |req: HttpRequest, log: web::Data<Log>, body: Bytes| {
                    let (tokens, app, secret) = (t1.clone(), a1.clone(), s1.clone());
                    async move {
                        log.record(&req, &body);
                        let q = query(&req);
                        if q.get("access_token") != Some(&format!("{app}|{secret}")) {
                            return HttpResponse::BadRequest().json(json!({"error": {
                                "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190 }}));
                        }
                        let input = q.get("input_token").cloned().unwrap_or_default();
                        let data = match tokens.iter().find(|t| t.0 == input) {
                            Some((_, id, _, _)) => json!({ "app_id": app, "type": "USER", "is_valid": true, "user_id": id }),
                            None => json!({ "is_valid": false, "error": { "code": 190, "message": "Invalid OAuth access token." } }),
                        };
                        HttpResponse::Ok().json(json!({ "data": data }))
                    }
                }),
            )
            .route(
                "/me",
                web::get().to(move |req: HttpRequest, log: web::Data<Log>, body: Bytes| {
                    let (tokens, secret) = (t2.clone(), s2.clone());
                    async move {
                        log.record(&req, &body);
                        let q = query(&req);
                        let token = q.get("access_token").cloned().unwrap_or_default();
                        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
                        mac.update(token.as_bytes());
                        let proof: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
                        if q.get("appsecret_proof") != Some(&proof) {
                            return HttpResponse::BadRequest().json(json!({"error": {"message": "Invalid appsecret_proof"}}));
                        }
                        match tokens.iter().find(|t| t.0 == token) {
                            Some((_, id, name, email)) => HttpResponse::Ok().json(json!({ "id": id, "name": name, "email": email })),
                            None => HttpResponse::BadRequest().json(json!({"error": {"message": "Invalid OAuth access token."}})),
                        }
                    }
                }),
            );
        });
        Facebook {
            server,
            app_id: app,
            app_secret: secret,
        }
    }
}

fn query(req: &HttpRequest) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Twilio's Messages API for one account.
pub struct Twilio {
    pub server: StandIn,
    pub account_sid: String,
    pub auth_token: String,
    /// (To, Body) of every message accepted.
    pub sent: Arc<Mutex<Vec<(String, String)>>>,
}

impl Twilio {
    pub fn start(account_sid: &str, auth_token: &str, from: &str) -> Twilio {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (sid, token, from) = (
            account_sid.to_string(),
            auth_token.to_string(),
            from.to_string(),
        );
        let (s, sid2, tok2, from2) = (sent.clone(), sid.clone(), token.clone(), from.clone());
        let server = StandIn::start(move |cfg| {
            let (s, sid, token, from) = (s.clone(), sid2.clone(), tok2.clone(), from2.clone());
            cfg.route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                web::post().to(move |req: HttpRequest, log: web::Data<Log>, body: Bytes, path: web::Path<String>| {
                    let (s, sid, token, from) = (s.clone(), sid.clone(), token.clone(), from.clone());
                    async move {
                        log.record(&req, &body);
                        let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                        let expected = format!("Basic {}", STANDARD.encode(format!("{sid}:{token}")));
                        if auth != expected {
                            return HttpResponse::Unauthorized().json(json!({"code": 20003, "message": "Authenticate", "status": 401}));
                        }
                        if *path != sid {
                            return HttpResponse::NotFound().json(json!({"code": 20404, "status": 404}));
                        }
                        let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&body)
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                        let (Some(to), Some(f), Some(text)) = (form.get("To"), form.get("From"), form.get("Body")) else {
                            return HttpResponse::BadRequest().json(json!({"code": 21604, "message": "A 'To' phone number is required.", "status": 400}));
                        };
                        if *f != from {
                            return HttpResponse::BadRequest().json(json!({"code": 21606, "status": 400}));
                        }
                        s.lock().expect("sent").push((to.clone(), text.clone()));
                        HttpResponse::Created().json(json!({ "sid": format!("SM{}", s.lock().expect("sent").len()), "status": "queued", "to": to, "body": text }))
                    }
                }),
            );
        });
        Twilio {
            server,
            account_sid: sid,
            auth_token: token,
            sent,
        }
    }

    /// The six-digit code of the last message to `phone`.
    pub fn last_code(&self, phone: &str) -> Option<String> {
        let sent = self.sent.lock().expect("sent");
        let (_, body) = sent.iter().rev().find(|(to, _)| to == phone)?;
        body.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .map(str::to_string)
    }
}
