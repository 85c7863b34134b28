//! Twilio's Messages API: `POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`
//! with HTTP Basic auth (account SID, auth token) and the form fields `To`, `From`, `Body`;
//! Twilio answers 201 with the message resource.

use dovie_protocol::error::ErrorBody;

use super::{failed, not_configured};
use crate::config::TwilioConfig;
use crate::egress::Egress;

pub struct Twilio {
    config: TwilioConfig,
    egress: Egress,
}

impl Twilio {
    pub fn new(config: TwilioConfig, egress: Egress) -> Twilio {
        Twilio { config, egress }
    }

    pub fn configured(&self) -> bool {
        !self.config.account_sid.is_empty()
            && !self.config.auth_token.is_empty()
            && !self.config.from.is_empty()
    }

    /// Sends one SMS; answers Twilio's message SID.
    pub async fn send_sms(&self, to: &str, body: &str) -> Result<String, ErrorBody> {
        if !self.configured() {
            return Err(not_configured("SMS (Twilio)"));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.base_url.trim_end_matches('/'),
            self.config.account_sid
        );
        let url =
            reqwest::Url::parse(&url).map_err(|e| failed("twilio", format!("base_url: {e}")))?;
        let req = self
            .egress
            .client()
            .post(url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&[
                ("To", to),
                ("From", self.config.from.as_str()),
                ("Body", body),
            ]);
        let res = self
            .egress
            .send(req)
            .await
            .map_err(|e| failed("twilio", e))?;
        let status = res.status();
        let bytes = self
            .egress
            .body(res)
            .await
            .map_err(|e| failed("twilio", e))?;
        if !status.is_success() {
            return Err(failed(
                "twilio",
                format!(
                    "Messages answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| failed("twilio", format!("body: {e}")))?;
        Ok(v["sid"].as_str().unwrap_or_default().to_string())
    }
}
