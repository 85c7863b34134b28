//! Google Sign-In: an ID token (a JWT) is verified here, locally, against Google's published
//! keys (JWKS at `providers.google.certs_url`): RS256 only, the key named by the token's `kid`,
//! `aud` one of `client_ids`, `iss` Google's, `exp` in the future (60 s leeway for clocks).
//! Keys are cached as long as the JWKS response's `Cache-Control: max-age` says, and fetched
//! again when a token names a `kid` the cache lacks — at most once per [`REFETCH_FLOOR`], so
//! forged `kid`s cannot make Dovie hammer Google.

use std::time::{Duration, Instant};

use dovie_protocol::error::ErrorBody;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{failed, not_configured, rejected};
use crate::config::GoogleConfig;
use crate::egress::Egress;

const ISSUERS: &[&str] = &["accounts.google.com", "https://accounts.google.com"];
/// Clock skew allowed on `exp`/`nbf`.
const LEEWAY_SECS: u64 = 60;
/// Keys kept when the JWKS answer says nothing about caching.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The least time between two fetches of the JWKS for unknown `kid`s.
pub const REFETCH_FLOOR: Duration = Duration::from_secs(10);

/// Who Google says the token's holder is.
#[derive(Debug, Clone)]
pub struct GoogleIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    /// A boolean, or (in older tokens) the string "true".
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
}

struct Cached {
    keys: JwkSet,
    until: Instant,
    /// When a token's unknown `kid` last made Dovie fetch the keys again.
    missed: Option<Instant>,
}

pub struct Google {
    config: GoogleConfig,
    egress: Egress,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

/// `max-age` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl Google {
    pub fn new(config: GoogleConfig, egress: Egress) -> Google {
        Google {
            config,
            egress,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    pub fn configured(&self) -> bool {
        !self.config.client_ids.is_empty()
    }

    async fn fetch(&self) -> Result<Cached, ErrorBody> {
        let res = self
            .egress
            .get(&self.config.certs_url)
            .await
            .map_err(|e| failed("google", e))?;
        if !res.status().is_success() {
            return Err(failed("google", format!("JWKS answered {}", res.status())));
        }
        let ttl = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE);
        let body = self
            .egress
            .body(res)
            .await
            .map_err(|e| failed("google", e))?;
        let keys: JwkSet =
            serde_json::from_slice(&body).map_err(|e| failed("google", format!("JWKS: {e}")))?;
        Ok(Cached {
            keys,
            until: Instant::now() + ttl,
            missed: None,
        })
    }

    /// The key named `kid`: from the cache while it is fresh, else (or when it lacks the kid)
    /// from a new fetch.
    async fn key(&self, kid: &str) -> Result<DecodingKey, ErrorBody> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        let stale = cache.as_ref().is_none_or(|c| c.until <= now);
        let missing = cache.as_ref().is_some_and(|c| c.keys.find(kid).is_none());
        let may_refetch = cache
            .as_ref()
            .and_then(|c| c.missed)
            .is_none_or(|at| now.duration_since(at) >= REFETCH_FLOOR);
        if stale {
            *cache = Some(self.fetch().await?);
        } else if missing && may_refetch {
            let mut fresh = self.fetch().await?;
            fresh.missed = Some(now);
            *cache = Some(fresh);
        }
        let jwk = cache
            .as_ref()
            .and_then(|c| c.keys.find(kid))
            .ok_or_else(|| rejected("the ID token is signed with a key Google does not publish"))?;
        DecodingKey::from_jwk(jwk).map_err(|e| failed("google", format!("JWK {kid}: {e}")))
    }

    /// Verifies an ID token; 401 for a token Google does not vouch for, 502 when its keys
    /// cannot be fetched.
    pub async fn verify(&self, id_token: &str) -> Result<GoogleIdentity, ErrorBody> {
        if !self.configured() {
            return Err(not_configured("Google sign-in"));
        }
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|_| rejected("the ID token is malformed"))?;
        if header.alg != Algorithm::RS256 {
            return Err(rejected("the ID token must be signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| rejected("the ID token names no key"))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = LEEWAY_SECS;
        v.set_audience(&self.config.client_ids);
        v.set_issuer(ISSUERS);
        v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(id_token, &key, &v)
            .map_err(|e| {
                tracing::debug!(error = %e, "Google ID token refused");
                rejected("the ID token is not valid for this app")
            })?
            .claims;
        let email_verified = match claims.email_verified {
            Some(serde_json::Value::Bool(b)) => b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        Ok(GoogleIdentity {
            subject: claims.sub,
            email: claims.email.map(|e| e.to_lowercase()),
            email_verified,
            name: claims.name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=19800, must-revalidate, no-transform"),
            Some(Duration::from_secs(19800))
        );
        assert_eq!(max_age("no-cache"), None);
    }
}
