//! The Web Push sender (PUSH-1): the `web-push` crate encrypts the payload for the browser
//! (RFC 8291, `aes128gcm`, or `aesgcm` for old browsers) and signs the VAPID token (RFC 8292,
//! ES256 with the cluster's key: `aud` the endpoint's origin, `exp` within 24 h, `sub` the
//! configured contact); the request it builds is sent by the shared egress client, so the SSRF
//! guard holds for every endpoint. A VAPID token is reused per origin until near its expiry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use parking_lot::Mutex;
use web_push::{
    ContentEncoding, SubscriptionInfo, Urgency, VapidSignature, VapidSignatureBuilder,
    WebPushMessageBuilder,
};

use super::delivery::{retry_after, Sent};
use crate::egress::{Egress, EgressError};

/// How long a VAPID token is valid (RFC 8292 allows up to 24 h).
const VAPID_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A cached token is replaced when less than this is left of it.
const VAPID_RENEW_BEFORE: Duration = Duration::from_secs(3600);

/// How urgent a push is (Web Push `Urgency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    Normal,
    High,
    Low,
}

pub struct WebPushSender {
    egress: Egress,
    /// The cluster's VAPID private key (base64url of the P-256 scalar).
    key: String,
    subject: String,
    tokens: Mutex<HashMap<String, (VapidSignature, Instant)>>,
}

/// One browser to push to.
pub struct Target<'a> {
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
    pub encoding: &'a str,
}

/// The origin of an endpoint (`scheme://host[:port]`): the VAPID token's audience.
pub fn origin(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

impl WebPushSender {
    pub fn new(egress: Egress, vapid: &p256::SecretKey, subject: String) -> WebPushSender {
        WebPushSender {
            egress,
            key: B64URL.encode(vapid.to_bytes()),
            subject,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The VAPID token for `origin`, signed anew when the cached one is near its end.
    fn vapid(&self, info: &SubscriptionInfo, origin: &str) -> Result<VapidSignature, String> {
        if let Some((sig, made)) = self.tokens.lock().get(origin) {
            if made.elapsed() + VAPID_RENEW_BEFORE < VAPID_LIFETIME {
                return Ok(sig.clone());
            }
        }
        let mut builder = VapidSignatureBuilder::from_base64(&self.key, info)
            .map_err(|e| format!("the VAPID key: {e}"))?;
        builder.add_claim("sub", self.subject.as_str());
        // The crate's own audience leaves out the port; RFC 8292 wants the origin.
        builder.add_claim("aud", origin);
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d + VAPID_LIFETIME)
            .unwrap_or_default()
            .as_secs();
        builder.add_claim("exp", exp);
        let sig = builder
            .build()
            .map_err(|e| format!("cannot sign the VAPID token: {e}"))?;
        self.tokens
            .lock()
            .insert(origin.to_string(), (sig.clone(), Instant::now()));
        Ok(sig)
    }

    /// Encrypts `payload` for the browser and sends it.
    pub async fn send(
        &self,
        target: &Target<'_>,
        payload: &[u8],
        ttl: u32,
        priority: Priority,
        topic: Option<&str>,
    ) -> Sent {
        let Some(origin) = origin(target.endpoint) else {
            return Sent::Dead(format!("not an endpoint URL: {}", target.endpoint));
        };
        let info = SubscriptionInfo::new(target.endpoint, target.p256dh, target.auth);
        let sig = match self.vapid(&info, &origin) {
            Ok(s) => s,
            Err(e) => return Sent::Failed(e),
        };
        let mut message = WebPushMessageBuilder::new(&info);
        let encoding = if target.encoding == "aesgcm" {
            ContentEncoding::AesGcm
        } else {
            ContentEncoding::Aes128Gcm
        };
        message.set_payload(encoding, payload);
        message.set_ttl(ttl);
        message.set_urgency(match priority {
            Priority::High => Urgency::High,
            Priority::Normal => Urgency::Normal,
            Priority::Low => Urgency::Low,
        });
        if let Some(t) = topic {
            message.set_topic(t.to_string());
        }
        message.set_vapid_signature(sig);
        let built = match message.build() {
            Ok(m) => m,
            // Keys that do not encrypt will never do: the subscription is useless.
            Err(e) => return Sent::Dead(format!("cannot encrypt for this subscription: {e}")),
        };
        let request = web_push::request_builder::build_request::<Vec<u8>>(built);
        let mut out = self.egress.client().post(request.uri().to_string());
        for (name, value) in request.headers() {
            out = out.header(name.as_str(), value.as_bytes());
        }
        let out = out.body(request.into_body());
        match self.egress.send(out).await {
            Ok(res) => {
                let status = res.status().as_u16();
                let wait = retry_after(res.headers());
                match status {
                    200..=299 => Sent::Accepted,
                    404 | 410 => Sent::Dead(format!("the push service answered {status}")),
                    429 | 500..=599 => {
                        Sent::Later(wait, format!("the push service answered {status}"))
                    }
                    _ => {
                        let body = self.egress.body_capped(res, 1024).await.unwrap_or_default();
                        Sent::Failed(format!(
                            "the push service answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        ))
                    }
                }
            }
            Err(EgressError::Refused(e)) => {
                Sent::Failed(format!("refused by the egress guard: {e}"))
            }
            Err(e) => Sent::Later(None, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_the_origin_with_its_port() {
        assert_eq!(
            origin("https://fcm.googleapis.com/fcm/send/abc").as_deref(),
            Some("https://fcm.googleapis.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/push/x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("not a url"), None);
    }
}
