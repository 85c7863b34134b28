//! The APNs sender (PUSH-2), token-based: an ES256 provider token (`kid` the key id, `iss` the
//! team, `iat` now) signed with the team's `.p8` key, reused until it is 50 minutes old (Apple
//! refuses tokens older than an hour and throttles fresher renewals), sent over HTTP/2 — one
//! pooled, multiplexed connection per service — to `{base_url}/3/device/{token}` with
//! `apns-topic`, `apns-push-type`, `apns-priority` and `apns-expiration`. Apple's error bodies
//! (`{"reason": "Unregistered"}` …) decide what becomes of the token.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::delivery::{retry_after, Sent};
use crate::config::ApnsConfig;
use crate::egress::{Egress, EgressError};

/// A provider token is replaced when it is this old.
pub const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(50 * 60);
/// Longest error body read from APNs.
const MAX_ERROR_BODY: u64 = 4096;

#[derive(Serialize)]
struct ProviderClaims<'a> {
    iss: &'a str,
    iat: u64,
}

#[derive(Deserialize)]
struct ApnsError {
    reason: String,
}

pub struct ApnsSender {
    config: ApnsConfig,
    key: EncodingKey,
    /// HTTP/2 from the first byte for a cleartext service (a stand-in); TLS agrees on h2 by ALPN.
    client: Egress,
    token: Mutex<Option<(String, Instant)>>,
}

/// What one push carries to APNs.
pub struct ApnsPush<'a> {
    pub token: &'a str,
    pub sandbox: bool,
    /// `alert` or `background`.
    pub push_type: &'a str,
    /// 10: now; 5: when convenient (badge-only).
    pub priority: u8,
    pub expires_at_secs: u64,
    pub payload: &'a [u8],
    pub collapse_id: Option<&'a str>,
}

impl ApnsSender {
    /// The sender, if APNs is configured: the key must read as a P-256 PKCS#8 PEM.
    pub fn new(
        config: &ApnsConfig,
        egress: &crate::config::EgressConfig,
    ) -> Result<Option<ApnsSender>, String> {
        if !config.configured() {
            return Ok(None);
        }
        let pem = std::fs::read(&config.key_file)
            .map_err(|e| format!("cannot read push.apns.key_file {}: {e}", config.key_file))?;
        let key = p256::SecretKey::from_pkcs8_pem(&String::from_utf8_lossy(&pem))
            .and_then(|k| k.to_pkcs8_der())
            .map(|der| EncodingKey::from_ec_der(der.as_bytes()))
            .map_err(|e| {
                format!("push.apns.key_file is not a P-256 private key (PKCS#8 PEM): {e}")
            })?;
        let cleartext = config.base_url.starts_with("http://");
        let client = if cleartext {
            Egress::http2_only(egress)?
        } else {
            Egress::new(egress)?
        };
        let sender = ApnsSender {
            config: config.clone(),
            key,
            client,
            token: Mutex::new(None),
        };
        sender.provider_token()?;
        Ok(Some(sender))
    }

    /// The current provider token, signed anew when it is [`TOKEN_RENEW_AFTER`] old.
    fn provider_token(&self) -> Result<String, String> {
        let mut current = self.token.lock();
        if let Some((t, made)) = current.as_ref() {
            if made.elapsed() < TOKEN_RENEW_AFTER {
                return Ok(t.clone());
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.config.key_id.clone());
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = ProviderClaims {
            iss: &self.config.team_id,
            iat,
        };
        let t = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign the APNs provider token: {e}"))?;
        *current = Some((t.clone(), Instant::now()));
        Ok(t)
    }

    /// Forgets the provider token (APNs said it expired or is invalid).
    fn drop_token(&self) {
        *self.token.lock() = None;
    }

    pub async fn send(&self, push: &ApnsPush<'_>) -> Sent {
        let token = match self.provider_token() {
            Ok(t) => t,
            Err(e) => return Sent::Failed(e),
        };
        let base = if push.sandbox && !self.config.sandbox_url.is_empty() {
            &self.config.sandbox_url
        } else {
            &self.config.base_url
        };
        let url = format!("{}/3/device/{}", base.trim_end_matches('/'), push.token);
        let mut req = self
            .client
            .client()
            .post(url)
            .header("authorization", format!("bearer {token}"))
            .header("apns-topic", &self.config.topic)
            .header("apns-push-type", push.push_type)
            .header("apns-priority", push.priority.to_string())
            .header("apns-expiration", push.expires_at_secs.to_string())
            .header("content-type", "application/json")
            .body(push.payload.to_vec());
        if let Some(c) = push.collapse_id {
            req = req.header("apns-collapse-id", c);
        }
        let res = match self.client.send(req).await {
            Ok(r) => r,
            Err(EgressError::Refused(e)) => {
                return Sent::Failed(format!("refused by the egress guard: {e}"))
            }
            Err(e) => return Sent::Later(None, e.to_string()),
        };
        let status = res.status().as_u16();
        if status == 200 {
            return Sent::Accepted;
        }
        let wait = retry_after(res.headers());
        let body = self
            .client
            .body_capped(res, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let reason = serde_json::from_slice::<ApnsError>(&body)
            .map(|e| e.reason)
            .unwrap_or_default();
        let said = format!("APNs answered {status} {reason}");
        match (status, reason.as_str()) {
            (410, _) | (400, "BadDeviceToken") | (400, "DeviceTokenNotForTopic") => {
                Sent::Dead(said)
            }
            (403, "ExpiredProviderToken") | (403, "InvalidProviderToken") => {
                self.drop_token();
                Sent::Later(None, said)
            }
            (429, _) | (500..=599, _) => Sent::Later(wait, said),
            _ => Sent::Failed(said),
        }
    }
}
