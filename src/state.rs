//! The state every handler shares: config, store, auth, the outbound client, the actor
//! system's registry and room directory, and the drain flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dovie_actors::{Ports, Registry, RoomDirectory, SessionConfig};

use crate::auth::SharedAuth;
use crate::config::Config;
use crate::store::SharedStore;

pub struct AppState {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub auth: SharedAuth,
    pub ports: Ports,
    pub registry: Arc<Registry>,
    pub directory: Arc<RoomDirectory>,
    pub session_config: SessionConfig,
    /// The one outbound HTTP client, behind the SSRF guard.
    pub egress: crate::egress::Egress,
    /// The identity and SMS providers.
    pub providers: Providers,
    /// Rate limits of the sensitive calls.
    pub limiter: Arc<crate::ratelimit::Limiter>,
    /// The per-user bucket of every authenticated REST call.
    pub api_quota: Arc<crate::quota::Quota>,
    /// Files: storage, encryption, links, previews.
    pub files: Arc<crate::files::Files>,
    /// Attachments and link previews of messages (the actors' `MessageExtras` port).
    pub extras: Arc<crate::files::attach::ServerExtras>,
    /// Location: live shares, "nearby", location rooms, suggestions.
    pub geo: Arc<crate::geo::Geo>,
    /// Push: the cluster's VAPID key and the rules of registration.
    pub push: Arc<crate::push::Push>,
    /// Push: the queue and pipeline of this node.
    pub pusher: Arc<crate::push::pipeline::Pusher>,
    /// AI assistants: the chat model and YouTube.
    pub ai: Arc<crate::ai::Ai>,
    /// Transcriptions asked for and automatic.
    pub transcriber: Arc<crate::ai::transcriber::Transcriber>,
    /// Server texts in eight languages.
    pub texts: Arc<crate::i18n::Texts>,
    /// Public profiles kept a few seconds for listings.
    pub profiles: Arc<crate::people::profiles::Profiles>,
    /// Cluster mode (`--bus redis`); `None` on a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    pub draining: AtomicBool,
}

/// The external services people features use.
pub struct Providers {
    pub google: crate::providers::google::Google,
    pub facebook: crate::providers::facebook::Facebook,
    pub twilio: crate::providers::twilio::Twilio,
}

impl AppState {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// `user_id`'s push devices changed: this node and every other forget what they knew.
    pub fn push_devices_changed(&self, user_id: &str) {
        self.pusher.devices.forget(user_id);
        if let Some(c) = &self.cluster {
            c.devices_changed(user_id);
        }
    }
}
