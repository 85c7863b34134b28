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
    /// Cluster mode (`--bus redis`); `None` on a single node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    pub draining: AtomicBool,
}

impl AppState {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
