//! Facebook Login: a user access token is checked with the Graph API — `GET /debug_token`
//! with the app token (`app_id|app_secret`) must say it is valid and issued to this app — and
//! the profile comes from `GET /me?fields=id,name,email`, signed with `appsecret_proof`
//! (HMAC-SHA256 of the token with the app secret), whose `id` must be the token's user.

use dovie_protocol::error::ErrorBody;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::{failed, not_configured, rejected};
use crate::config::FacebookConfig;
use crate::egress::Egress;

/// Who Facebook says the token's holder is (Facebook shares only confirmed emails).
#[derive(Debug, Clone)]
pub struct FacebookIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct Debug {
    data: DebugData,
}

#[derive(Deserialize)]
struct DebugData {
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    is_valid: bool,
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct Me {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

pub struct Facebook {
    config: FacebookConfig,
    egress: Egress,
}

impl Facebook {
    pub fn new(config: FacebookConfig, egress: Egress) -> Facebook {
        Facebook { config, egress }
    }

    pub fn configured(&self) -> bool {
        !self.config.app_id.is_empty() && !self.config.app_secret.is_empty()
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, ErrorBody> {
        reqwest::Url::parse(&format!(
            "{}{path}",
            self.config.graph_url.trim_end_matches('/')
        ))
        .map_err(|e| failed("facebook", format!("graph_url: {e}")))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: reqwest::Url,
        query: &[(&str, &str)],
    ) -> Result<T, ErrorBody> {
        let res = self
            .egress
            .send(self.egress.client().get(url).query(query))
            .await
            .map_err(|e| failed("facebook", e))?;
        if !res.status().is_success() {
            return Err(failed(
                "facebook",
                format!("Graph answered {}", res.status()),
            ));
        }
        let body = self
            .egress
            .body(res)
            .await
            .map_err(|e| failed("facebook", e))?;
        serde_json::from_slice(&body).map_err(|e| failed("facebook", format!("Graph body: {e}")))
    }

    fn proof(&self, token: &str) -> Result<String, ErrorBody> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.config.app_secret.as_bytes())
            .map_err(|e| failed("facebook", e))?;
        mac.update(token.as_bytes());
        Ok(mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// Checks a user token; 401 for one Facebook does not vouch for (for this app), 502 when
    /// the Graph API fails.
    pub async fn verify(&self, token: &str) -> Result<FacebookIdentity, ErrorBody> {
        if !self.configured() {
            return Err(not_configured("Facebook login"));
        }
        let app_token = format!("{}|{}", self.config.app_id, self.config.app_secret);
        let debug: Debug = self
            .get_json(
                self.url("/debug_token")?,
                &[("input_token", token), ("access_token", &app_token)],
            )
            .await?;
        let d = debug.data;
        if !d.is_valid || d.app_id.as_deref() != Some(self.config.app_id.as_str()) {
            return Err(rejected("the Facebook token is not valid for this app"));
        }
        let user = d
            .user_id
            .ok_or_else(|| rejected("the Facebook token names no user"))?;
        let proof = self.proof(token)?;
        let me: Me = self
            .get_json(
                self.url("/me")?,
                &[
                    ("fields", "id,name,email"),
                    ("access_token", token),
                    ("appsecret_proof", &proof),
                ],
            )
            .await?;
        if me.id != user {
            return Err(failed(
                "facebook",
                "/me answered another user than debug_token",
            ));
        }
        Ok(FacebookIdentity {
            subject: me.id,
            email: me.email.map(|e| e.to_lowercase()),
            name: me.name,
        })
    }
}
