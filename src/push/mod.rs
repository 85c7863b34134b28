//! Push (PUSH-1..7): the cluster's VAPID key (RFC 8292; generated once and kept in the store, so
//! every node signs with the same key) and the checks of what devices register — Web Push
//! subscriptions (the endpoint on an allowed push service, never a private address; the
//! browser's P-256 key a point on the curve; a 16-byte auth secret) and APNs device tokens
//! (hex). Beside it: notification settings (`settings`), which rooms users have on screen
//! (`active`), who has devices (`devices`), the durable queues (`queue`), the pipeline's work
//! (`pipeline`), and the senders (`webpush`, `apns`) with what their answers mean (`delivery`).

pub mod active;
pub mod apns;
pub mod delivery;
pub mod devices;
pub mod pipeline;
pub mod queue;
pub mod settings;
pub mod webpush;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use dovie_protocol::error::{ErrorBody, ErrorCode};

use crate::config::Config;
use crate::store::SharedStore;

/// The store's name of the cluster's VAPID private key.
const VAPID_SECRET: &str = "vapid_private_key";
/// Longest endpoint URL accepted (push services' are a few hundred bytes).
pub const MAX_ENDPOINT_BYTES: usize = 2048;
/// An uncompressed P-256 point: 0x04, x, y.
const P256_POINT_BYTES: usize = 65;
/// RFC 8291's authentication secret.
const AUTH_SECRET_BYTES: usize = 16;
/// APNs device tokens: 32 bytes today, up to 100 allowed for the future (hex).
const MIN_APNS_TOKEN_HEX: usize = 64;
const MAX_APNS_TOKEN_HEX: usize = 200;

/// Content encodings of Web Push payloads.
pub const ENCODINGS: [&str; 2] = ["aes128gcm", "aesgcm"];
/// APNs environments.
pub const ENVIRONMENTS: [&str; 2] = ["production", "sandbox"];

/// The push side of a node: its VAPID key and the rules of registration.
pub struct Push {
    /// The cluster's signing key (the sender signs VAPID tokens with it).
    vapid: p256::SecretKey,
    vapid_public: String,
    allowed_hosts: Vec<String>,
    allow_private: bool,
}

fn invalid(msg: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::ValidationFailed, msg)
}

impl Push {
    /// Loads the cluster's VAPID key from the store, making it if this is the first node.
    pub async fn open(config: &Config, store: &SharedStore) -> Result<Push, String> {
        let candidate = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let stored = store
            .secret_or_insert(VAPID_SECRET, &B64URL.encode(candidate.to_bytes()))
            .await
            .map_err(|e| format!("cannot load the VAPID key: {}", e.message))?;
        let bytes = B64URL
            .decode(stored.trim())
            .map_err(|e| format!("the stored VAPID key is not base64url: {e}"))?;
        let vapid = p256::SecretKey::from_slice(&bytes)
            .map_err(|e| format!("the stored VAPID key is not a P-256 key: {e}"))?;
        let point = vapid.public_key().to_sec1_bytes();
        Ok(Push {
            vapid_public: B64URL.encode(point),
            vapid,
            allowed_hosts: config
                .push
                .allowed_endpoint_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allow_private: config.egress.allow_private_addresses,
        })
    }

    /// The cluster's VAPID signing key.
    pub fn vapid_key(&self) -> &p256::SecretKey {
        &self.vapid
    }

    /// The VAPID public key browsers subscribe with (`applicationServerKey`): base64url of the
    /// uncompressed point.
    pub fn vapid_public_key(&self) -> &str {
        &self.vapid_public
    }

    /// Checks a Web Push subscription; answers the encoding to store.
    pub fn check_subscription(
        &self,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        encoding: Option<&str>,
    ) -> Result<&'static str, ErrorBody> {
        self.check_endpoint(endpoint)?;
        let key = decode(p256dh)
            .filter(|k| k.len() == P256_POINT_BYTES)
            .ok_or_else(|| {
                invalid("keys.p256dh must be a P-256 public key (65 bytes, base64url)")
            })?;
        p256::PublicKey::from_sec1_bytes(&key)
            .map_err(|_| invalid("keys.p256dh is not a point on the P-256 curve"))?;
        if decode(auth).is_none_or(|a| a.len() != AUTH_SECRET_BYTES) {
            return Err(invalid("keys.auth must be 16 bytes, base64url"));
        }
        match encoding {
            None => Ok(ENCODINGS[0]),
            Some(e) => ENCODINGS
                .into_iter()
                .find(|known| *known == e)
                .ok_or_else(|| invalid("encoding must be \"aes128gcm\" or \"aesgcm\"")),
        }
    }

    /// An endpoint on an allowed push service: https (http only where private addresses are
    /// allowed, as in tests), a host on the list, never a private address written as such.
    pub fn check_endpoint(&self, endpoint: &str) -> Result<(), ErrorBody> {
        if endpoint.len() > MAX_ENDPOINT_BYTES {
            return Err(invalid("endpoint is too long"));
        }
        let url = url::Url::parse(endpoint).map_err(|_| invalid("endpoint must be a URL"))?;
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && self.allow_private);
        if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("endpoint must be an https URL of a push service"));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(invalid("endpoint must be an https URL of a push service")),
        };
        if !self
            .allowed_hosts
            .iter()
            .any(|glob| host_matches(glob, &host))
        {
            return Err(invalid("endpoint is not on an allowed push service"));
        }
        let private = match url.host() {
            Some(url::Host::Ipv4(ip)) => !crate::egress::allowed(ip.into(), false),
            Some(url::Host::Ipv6(ip)) => !crate::egress::allowed(ip.into(), false),
            _ => host == "localhost" || host.ends_with(".localhost"),
        };
        if private && !self.allow_private {
            return Err(invalid("endpoint is not on an allowed push service"));
        }
        Ok(())
    }
}

/// Whether `host` matches `glob`: exactly, or `*.example.com` for any subdomain of it.
fn host_matches(glob: &str, host: &str) -> bool {
    match glob.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => glob == host,
    }
}

/// Base64url, padded or not.
fn decode(s: &str) -> Option<Vec<u8>> {
    B64URL.decode(s.trim_end_matches('=')).ok()
}

/// An APNs device token as stored: lower-case hex of a sensible length.
pub fn check_apns_token(token: &str) -> Result<String, ErrorBody> {
    let ok = (MIN_APNS_TOKEN_HEX..=MAX_APNS_TOKEN_HEX).contains(&token.len())
        && token.len().is_multiple_of(2)
        && token.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(invalid(
            "token must be an APNs device token (64 to 200 hex digits)",
        ));
    }
    Ok(token.to_ascii_lowercase())
}

/// An APNs environment, `production` unless said.
pub fn check_environment(env: Option<&str>) -> Result<&'static str, ErrorBody> {
    match env {
        None => Ok(ENVIRONMENTS[0]),
        Some(e) => ENVIRONMENTS
            .into_iter()
            .find(|known| *known == e)
            .ok_or_else(|| invalid("environment must be \"production\" or \"sandbox\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(allow_private: bool) -> Push {
        let vapid = p256::SecretKey::random(&mut rand::rngs::OsRng);
        Push {
            vapid_public: B64URL.encode(vapid.public_key().to_sec1_bytes()),
            vapid,
            allowed_hosts: vec![
                "fcm.googleapis.com".into(),
                "*.push.services.mozilla.com".into(),
                "127.0.0.1".into(),
            ],
            allow_private,
        }
    }

    fn browser_key() -> String {
        let k = p256::SecretKey::random(&mut rand::rngs::OsRng);
        B64URL.encode(k.public_key().to_sec1_bytes())
    }

    #[test]
    fn endpoints_must_be_on_an_allowed_push_service() {
        let p = push(false);
        assert!(p
            .check_endpoint("https://fcm.googleapis.com/fcm/send/abc")
            .is_ok());
        assert!(p
            .check_endpoint("https://updates.push.services.mozilla.com/wpush/v2/x")
            .is_ok());
        for bad in [
            "http://fcm.googleapis.com/fcm/send/abc",
            "https://evil.example/fcm",
            "https://push.services.mozilla.com.evil.example/x",
            "https://xpush.services.mozilla.com/x",
            "https://user:pw@fcm.googleapis.com/x",
            "https://127.0.0.1/x",
            "not a url",
        ] {
            assert!(p.check_endpoint(bad).is_err(), "{bad}");
        }
        let long = format!(
            "https://fcm.googleapis.com/{}",
            "a".repeat(MAX_ENDPOINT_BYTES)
        );
        assert!(p.check_endpoint(&long).is_err());
        // Where private addresses are allowed (tests), a loopback stand-in on the list is fine.
        assert!(push(true)
            .check_endpoint("http://127.0.0.1:9/push/1")
            .is_ok());
    }

    #[test]
    fn browser_keys_are_checked() {
        let p = push(false);
        let ep = "https://fcm.googleapis.com/fcm/send/abc";
        let auth = B64URL.encode([7u8; 16]);
        let key = browser_key();
        assert_eq!(p.check_subscription(ep, &key, &auth, None), Ok("aes128gcm"));
        assert_eq!(
            p.check_subscription(ep, &key, &format!("{auth}=="), Some("aesgcm")),
            Ok("aesgcm")
        );
        // Not a point on the curve: a valid prefix, then garbage.
        let mut off = B64URL.decode(&key).unwrap_or_default();
        off[64] ^= 1;
        assert!(p
            .check_subscription(ep, &B64URL.encode(&off), &auth, None)
            .is_err());
        assert!(p.check_subscription(ep, &key[..20], &auth, None).is_err());
        assert!(p
            .check_subscription(ep, &key, &B64URL.encode([7u8; 8]), None)
            .is_err());
        assert!(p.check_subscription(ep, &key, &auth, Some("gzip")).is_err());
    }

    #[test]
    fn apns_tokens_are_hex() {
        let t = "A".repeat(64);
        assert_eq!(check_apns_token(&t), Ok("a".repeat(64)));
        for bad in [
            "",
            "abc",
            &"g".repeat(64),
            &"a".repeat(63),
            &"a".repeat(202),
        ] {
            assert!(check_apns_token(bad).is_err(), "{bad}");
        }
        assert_eq!(check_environment(None), Ok("production"));
        assert_eq!(check_environment(Some("sandbox")), Ok("sandbox"));
        assert!(check_environment(Some("dev")).is_err());
    }
}
