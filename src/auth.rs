//! Accounts and tokens: bcrypt password hashes, short-lived HS256 JWT access tokens
//! (`jsonwebtoken`), rotating refresh tokens (stored hashed), logout that revokes a login
//! session's tokens at once.
//!
//! An access token carries `sub` (user id) and `sid` (login session). Verification checks the
//! signature, the algorithm (HS256 only), the expiry, and the in-memory set of revoked sessions
//! (warmed from the store at start, so a restart does not resurrect a logged-out token). That set
//! holds a session only while one of its access tokens could still be presented.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use dovie_actors::ports::{Authenticator, Identity};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::User;
use dovie_protocol::rules;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{AuthSession, Rotation, SharedStore, UserRecord};

/// What a login records about the client (AUTH-6).
#[derive(Debug, Clone, Default)]
pub struct SessionMeta {
    pub device: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// Longest device name and user agent kept, in characters.
const MAX_DEVICE_CHARS: usize = 64;
const MAX_USER_AGENT_CHARS: usize = 256;

impl SessionMeta {
    /// The meta of a request: the client's device name (trimmed, cut), user agent and address.
    pub fn new(device: Option<&str>, user_agent: Option<&str>, ip: Option<String>) -> SessionMeta {
        let cut = |s: &str, n: usize| -> Option<String> {
            let t: String = s
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(n)
                .collect();
            (!t.is_empty()).then_some(t)
        };
        SessionMeta {
            device: device.and_then(|d| cut(d, MAX_DEVICE_CHARS)),
            user_agent: user_agent.and_then(|u| cut(u, MAX_USER_AGENT_CHARS)),
            ip,
        }
    }
}

const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_CHARS: usize = 72;
/// bcrypt reads at most 72 bytes: a longer password (more than 72 bytes in at most 72
/// characters) is hashed as the base64 of its SHA-256, so no part of it is ignored.
const BCRYPT_MAX_BYTES: usize = 72;
const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Slack for clocks a little apart between nodes when revoked sessions are forgotten.
const REVOCATION_SLACK_MS: i64 = 60_000;
/// Revocations recorded between two sweeps of the ones no token can use any more.
const REVOCATIONS_PER_SWEEP: usize = 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iat: i64,
    exp: i64,
}

/// Tokens handed to a client after register, login or refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

pub struct AuthService {
    /// The signing secret, also the root of the keyed hashes (invites, SMS codes).
    secret: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
    bcrypt_cost: u32,
    /// A hash of a random password at the configured cost: an unknown email is checked against
    /// it, so it takes as long as a wrong password.
    dummy_hash: String,
    revoked: RwLock<Revocations>,
    store: SharedStore,
}

/// Sessions revoked recently enough that one of their access tokens may still be presented, each
/// with the time after which none can be (revocation + access-token lifetime + slack). Older
/// ones are swept out as new ones arrive, so the set is bounded by the revocations of one
/// access-token lifetime.
#[derive(Debug, Default)]
struct Revocations {
    until: HashMap<String, i64>,
    since_sweep: usize,
}

impl Revocations {
    /// Records a revocation at `now` whose tokens live at most `ttl_ms`.
    fn insert(&mut self, session_id: String, now: i64, ttl_ms: i64) {
        let until = now + ttl_ms + REVOCATION_SLACK_MS;
        let entry = self.until.entry(session_id).or_insert(until);
        *entry = (*entry).max(until);
        self.since_sweep += 1;
        if self.since_sweep >= REVOCATIONS_PER_SWEEP {
            self.sweep(now);
        }
    }

    /// Forgets the revocations no token can use any more.
    fn sweep(&mut self, now: i64) {
        self.until.retain(|_, until| *until > now);
        self.since_sweep = 0;
    }

    fn contains(&self, session_id: &str) -> bool {
        self.until.contains_key(session_id)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.until.len()
    }
}

fn now_ms() -> i64 {
    dovie_actors::now_ms()
}

fn unauthorized(msg: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unauthorized, msg)
}

fn sha256_hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// The signing secret: configured, or generated once and kept in the data dir.
pub fn load_secret(configured: &str, data_dir: &Path) -> Result<Vec<u8>, String> {
    if !configured.is_empty() {
        if configured.len() < 16 {
            return Err("the JWT secret must be at least 16 characters".into());
        }
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let s = existing.trim();
        if s.len() >= 32 {
            return Ok(s.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &secret).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

impl AuthService {
    pub fn new(
        secret: Vec<u8>,
        access_ttl: Duration,
        refresh_ttl: Duration,
        bcrypt_cost: u32,
        store: SharedStore,
    ) -> Result<Self, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let dummy_hash = bcrypt::hash(random_token(), bcrypt_cost)
            .map_err(|e| format!("cannot hash with bcrypt cost {bcrypt_cost}: {e}"))?;
        Ok(AuthService {
            encoding: EncodingKey::from_secret(&secret),
            secret: secret.clone(),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            access_ttl,
            refresh_ttl,
            bcrypt_cost,
            dummy_hash,
            revoked: RwLock::new(Revocations::default()),
            store,
        })
    }

    /// Loads the sessions revoked recently enough that their access tokens could still be live.
    pub async fn warm_revocations(&self) -> Result<(), ErrorBody> {
        let now = now_ms();
        let since = now - self.ttl_ms() - REVOCATION_SLACK_MS;
        let ids = self.store.revoked_since(since).await?;
        let mut revoked = self.revoked.write();
        for id in ids {
            revoked.insert(id, now, self.ttl_ms());
        }
        Ok(())
    }

    fn ttl_ms(&self) -> i64 {
        self.access_ttl.as_millis() as i64
    }

    fn revoke_cached(&self, session_id: String) {
        self.revoked
            .write()
            .insert(session_id, now_ms(), self.ttl_ms());
    }

    fn access_token(&self, user_id: &str, sid: &str) -> Result<String, ErrorBody> {
        let iat = now_ms() / 1000;
        let claims = Claims {
            sub: user_id.into(),
            sid: sid.into(),
            iat,
            exp: iat + self.access_ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "cannot sign an access token");
            ErrorBody::new(ErrorCode::Internal, "cannot issue a token")
        })
    }

    /// HMAC-SHA256 of `data` under a key derived from the secret for `purpose`, hex.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        derive.update(purpose.as_bytes());
        let key = derive.finalize().into_bytes();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(data);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Opens a login session for the user (a refresh-token family) and answers its tokens.
    pub async fn start_session(
        &self,
        user_id: &str,
        meta: SessionMeta,
    ) -> Result<Tokens, ErrorBody> {
        let now = now_ms();
        if crate::admin::suspension_in_force(&self.store, user_id, now)
            .await?
            .is_some()
        {
            return Err(crate::admin::suspended());
        }
        let session = AuthSession {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.into(),
            created_at: now,
            expires_at: now + self.refresh_ttl.as_millis() as i64,
            revoked_at: None,
            device: meta.device,
            user_agent: meta.user_agent,
            ip: meta.ip,
            last_seen_at: now,
        };
        let refresh = random_token();
        self.store
            .create_session(session.clone(), &sha256_hex(&refresh))
            .await?;
        Ok(Tokens {
            access_token: self.access_token(user_id, &session.id)?,
            refresh_token: refresh,
            expires_in: self.access_ttl.as_secs(),
        })
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        locale: &str,
        meta: SessionMeta,
    ) -> Result<(User, Tokens), ErrorBody> {
        if !rules::valid_email(email) {
            return Err(ErrorBody::new(
                ErrorCode::ValidationFailed,
                "email is not a valid address",
            ));
        }
        let email = email.to_lowercase();
        if display_name.chars().count() > MAX_DISPLAY_NAME_CHARS || !rules::not_blank(display_name)
        {
            return Err(ErrorBody::new(
                ErrorCode::ValidationFailed,
                "display_name must be 1 to 64 characters, not all blank",
            ));
        }
        let display_name = display_name.trim();
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(ErrorBody::new(
                ErrorCode::ValidationFailed,
                "password must be at least 8 characters",
            ));
        }
        if password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(ErrorBody::new(
                ErrorCode::ValidationFailed,
                "password must be at most 72 characters",
            ));
        }
        let hash = self.hash_password(password.to_string()).await?;
        let mut user = User::new(
            uuid::Uuid::now_v7().to_string(),
            display_name.into(),
            now_ms(),
        );
        user.email = Some(email);
        user.locale = locale.to_string();
        let user = self
            .store
            .create_user(UserRecord {
                user,
                password_hash: hash,
            })
            .await?;
        let tokens = self.start_session(&user.id, meta).await?;
        Ok((user, tokens))
    }

    /// Creates an account with no password (social or phone login).
    pub async fn create_passwordless(&self, user: User) -> Result<User, ErrorBody> {
        self.store
            .create_user(UserRecord {
                user,
                password_hash: String::new(),
            })
            .await
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
        meta: SessionMeta,
    ) -> Result<(User, Tokens), ErrorBody> {
        let email = email.trim().to_lowercase();
        let record = self.store.user_by_email(&email).await?;
        let (hash, user) = match record {
            // An account without a password (social or phone login) is checked against the
            // dummy hash too: it cannot be logged into with a password, and takes as long.
            Some(r) if r.password_hash.is_empty() => (self.dummy_hash.clone(), None),
            Some(r) => (r.password_hash, Some(r.user)),
            // Spend the same time on unknown emails (a hash of the same cost), so timing does
            // not tell which exist.
            None => (self.dummy_hash.clone(), None),
        };
        let ok = self.verify_password(password.to_string(), hash).await?;
        match (ok, user) {
            (true, Some(user)) => {
                let tokens = self.start_session(&user.id, meta).await?;
                Ok((user, tokens))
            }
            _ => Err(unauthorized("wrong email or password")),
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ErrorBody> {
        Ok(self.refresh_session(refresh_token).await?.0)
    }

    /// Rotates a refresh token; answers the new tokens and their login session.
    pub async fn refresh_session(
        &self,
        refresh_token: &str,
    ) -> Result<(Tokens, String), ErrorBody> {
        let new = random_token();
        let now = now_ms();
        let expires_at = now + self.refresh_ttl.as_millis() as i64;
        match self
            .store
            .rotate_refresh(
                &sha256_hex(refresh_token),
                &sha256_hex(&new),
                now,
                expires_at,
            )
            .await?
        {
            Rotation::Rotated(session)
                if crate::admin::suspension_in_force(&self.store, &session.user_id, now)
                    .await?
                    .is_some() =>
            {
                // Suspended since the session began (a login racing the suspension).
                self.logout(&session.id).await?;
                Err(crate::admin::suspended())
            }
            Rotation::Rotated(session) => Ok((
                Tokens {
                    access_token: self.access_token(&session.user_id, &session.id)?,
                    refresh_token: new,
                    expires_in: self.access_ttl.as_secs(),
                },
                session.id,
            )),
            Rotation::Reused(session) => {
                tracing::warn!(session = %session.id, "refresh token reused; session revoked");
                self.revoke_cached(session.id);
                Err(unauthorized(
                    "refresh token already used; the session is revoked",
                ))
            }
            Rotation::Invalid => Err(unauthorized("invalid or expired refresh token")),
        }
    }

    /// Whether `password` is `user`'s (an account without one never matches; the same time
    /// is spent either way).
    pub async fn password_matches(&self, user: &User, password: &str) -> Result<bool, ErrorBody> {
        let record = match &user.email {
            Some(email) => self.store.user_by_email(email).await?,
            None => None,
        };
        let (hash, real) = match record {
            Some(r) if r.user.id == user.id && !r.password_hash.is_empty() => {
                (r.password_hash, true)
            }
            _ => (self.dummy_hash.clone(), false),
        };
        Ok(self.verify_password(password.to_string(), hash).await? && real)
    }

    /// Revokes a login session: its refresh token and every access token issued to it.
    pub async fn logout(&self, session_id: &str) -> Result<(), ErrorBody> {
        self.store.revoke_session(session_id, now_ms()).await?;
        self.revoke_cached(session_id.to_string());
        Ok(())
    }

    /// Marks a session revoked in this node's cache (another node revoked it in the store).
    pub fn revoke_local(&self, session_id: &str) {
        self.revoke_cached(session_id.to_string());
    }

    async fn hash_password(&self, password: String) -> Result<String, ErrorBody> {
        let cost = self.bcrypt_cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(bcrypt_input(&password), cost))
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| ErrorBody::new(ErrorCode::Internal, "cannot hash the password"))
    }

    async fn verify_password(&self, password: String, hash: String) -> Result<bool, ErrorBody> {
        tokio::task::spawn_blocking(move || {
            bcrypt::verify(bcrypt_input(&password), &hash).unwrap_or(false)
        })
        .await
        .map_err(|_| ErrorBody::new(ErrorCode::Internal, "cannot verify the password"))
    }
}

impl Authenticator for AuthService {
    fn verify(&self, token: &str) -> Result<Identity, ErrorBody> {
        use jsonwebtoken::errors::ErrorKind;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => unauthorized("token expired"),
                ErrorKind::InvalidSignature => unauthorized("invalid token signature"),
                ErrorKind::InvalidAlgorithm => unauthorized("unsupported token algorithm"),
                _ => unauthorized("malformed token"),
            })?
            .claims;
        if self.revoked.read().contains(&claims.sid) {
            return Err(unauthorized("token revoked"));
        }
        Ok(Identity {
            user_id: claims.sub,
            auth_session_id: claims.sid,
        })
    }
}

pub type SharedAuth = Arc<AuthService>;

/// What bcrypt hashes for a password: the password itself when bcrypt reads all of it, else the
/// base64 of its SHA-256 (the same rule at registration and at login).
fn bcrypt_input(password: &str) -> String {
    if password.len() <= BCRYPT_MAX_BYTES {
        return password.to_string();
    }
    B64.encode(Sha256::digest(password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_email_costs_a_hash_of_the_configured_cost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            crate::store::sqlite::SqliteStore::open(dir.path(), "NORMAL", 1).expect("store");
        let store: SharedStore = Arc::new(store);
        for cost in [4, 6] {
            let ttl = Duration::from_secs(900);
            let auth = AuthService::new(vec![7; 32], ttl, ttl, cost, store.clone()).expect("auth");
            // bcrypt's `$2b$NN$`: the work factor a verification against it spends.
            assert!(
                auth.dummy_hash.starts_with(&format!("$2b${cost:02}$")),
                "{}",
                auth.dummy_hash
            );
        }
    }

    #[test]
    fn long_passwords_are_hashed_whole() {
        let long = "ü".repeat(60); // 60 characters, 120 bytes
        let other = format!("{}x", "ü".repeat(59));
        assert_ne!(bcrypt_input(&long), bcrypt_input(&other));
        assert_eq!(bcrypt_input("short one"), "short one");
        let hash = bcrypt::hash(bcrypt_input(&long), 4).expect("hash");
        assert!(bcrypt::verify(bcrypt_input(&long), &hash).expect("verify"));
        assert!(!bcrypt::verify(bcrypt_input(&other), &hash).expect("verify"));
    }

    #[test]
    fn revocations_are_kept_only_while_a_token_could_be_presented() {
        let ttl = 900_000;
        let mut r = Revocations::default();
        // A day of revocations, one a minute: only those of the last ttl (+ slack) remain.
        for i in 0..(24 * 60) {
            r.insert(format!("s{i}"), i * 60_000, ttl);
        }
        let now = 24 * 60 * 60_000;
        r.sweep(now);
        let live = (ttl + REVOCATION_SLACK_MS) / 60_000;
        assert!(r.len() as i64 <= live, "{} kept", r.len());
        assert!(r.contains(&format!("s{}", 24 * 60 - 1)), "the newest stays");
        assert!(!r.contains("s0"), "the oldest is gone");
        // Sweeps happen on their own as revocations arrive.
        let mut r = Revocations::default();
        for i in 0..(10 * REVOCATIONS_PER_SWEEP as i64) {
            r.insert(format!("s{i}"), i * 60_000, ttl);
        }
        assert!(r.len() <= REVOCATIONS_PER_SWEEP + live as usize);
    }
}
