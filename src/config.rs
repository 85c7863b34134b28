//! Configuration, layered with `figment`: built-in defaults < the TOML file (`--config`) <
//! environment < command-line flags. Every key is settable from the environment as
//! `DOVIE_<SECTION>__<KEY>` (sections nested with `__`, e.g. `DOVIE_LIMITS__MAX_GROUP_MEMBERS`;
//! top-level keys as `DOVIE_<KEY>`). An unknown key in the file, or under a known section in the
//! environment, is an error naming it. Every key is documented in `config/default.toml`; a test
//! checks that the file parses into exactly these defaults, so the two cannot drift.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(
    name = "dovie",
    version,
    about = "Dovie: a messenger back end (actor-model realtime cluster)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Start one node.
    Serve(Flags),
    /// Apply the schema of the configured store and exit.
    Migrate(Flags),
    /// Administration from the command line (same store flags as `serve`).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Write one archive of the node's store, secrets and stored files (consistent while it
    /// serves).
    Backup {
        /// The archive to write.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        flags: Flags,
    },
    /// Put a backup back into an empty node (checked whole first; `--force` replaces data).
    Restore {
        /// The archive to read.
        #[arg(long)]
        from: std::path::PathBuf,
        /// Replace what the node holds.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        flags: Flags,
    },
    /// Ask a running node's `/health` (a container's health check: no shell or curl needed);
    /// exits 0 when it answers 200.
    Health {
        /// The node's address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make the account with this email an administrator.
    Grant {
        /// The account's email.
        email: String,
        #[command(flatten)]
        flags: Flags,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Embedded,
    Scylla,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    Local,
    Redis,
}

/// Flags shared by `serve` and `migrate`; each also reads `DOVIE_<FLAG>`.
#[derive(Debug, Clone, Default, Args)]
pub struct Flags {
    /// TOML config file (keys as in config/default.toml).
    #[arg(long, env = "DOVIE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "DOVIE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded store and generated secrets [default: ./data].
    #[arg(long, env = "DOVIE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage backend [default: embedded].
    #[arg(long, env = "DOVIE_STORE")]
    pub store: Option<StoreKind>,
    /// ScyllaDB contact points, HOST:PORT[,..].
    #[arg(long, env = "DOVIE_SCYLLA")]
    pub scylla: Option<String>,
    /// ScyllaDB keyspace.
    #[arg(long, env = "DOVIE_KEYSPACE")]
    pub keyspace: Option<String>,
    /// Event bus between nodes [default: local].
    #[arg(long, env = "DOVIE_BUS")]
    pub bus: Option<BusKind>,
    /// Redis URL for the redis bus.
    #[arg(long, env = "DOVIE_REDIS")]
    pub redis: Option<String>,
    /// This node's id [default: random].
    #[arg(long, env = "DOVIE_NODE_ID")]
    pub node_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub store: StoreKind,
    pub scylla: String,
    pub keyspace: String,
    pub bus: BusKind,
    pub redis: String,
    pub node_id: String,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub ws: WsConfig,
    pub http: HttpConfig,
    pub embedded: EmbeddedConfig,
    pub cql: CqlConfig,
    /// The address clients reach this service at (links in QR codes and exports); empty means
    /// `http://<listen>`.
    pub public_url: String,
    pub egress: EgressConfig,
    pub providers: ProvidersConfig,
    pub rate_limits: RateLimitsConfig,
    pub privacy: PrivacyConfig,
    pub files: FilesConfig,
    pub location: LocationConfig,
    pub i18n: I18nConfig,
    pub push: PushConfig,
    pub ai: AiConfig,
}

/// AI assistants (see `crate::ai`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// Provider calls (chat, transcription, YouTube) a user may make per hour, on every node
    /// together.
    pub requests_per_hour: u64,
    /// Recent messages of a room a smart-reply request shows the model (1–100).
    pub context_messages: usize,
    /// Pending reminders a user may have at once.
    pub max_reminders: usize,
    /// How far ahead a reminder may be set, in days.
    pub max_reminder_days: u32,
    /// How often each node looks for due reminders (ms).
    pub reminder_sweep_ms: u64,
    /// Transcribe new voice messages by themselves (their sender's `ai` consent given).
    pub auto_transcribe: bool,
    /// The first delay before an automatic transcription that failed is tried again (ms); each
    /// next one is 4 times longer.
    pub transcribe_retry_ms: u64,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            requests_per_hour: 100,
            context_messages: 20,
            max_reminders: 100,
            max_reminder_days: 3650,
            reminder_sweep_ms: 1000,
            auto_transcribe: false,
            transcribe_retry_ms: 30_000,
        }
    }
}

/// Push (see `crate::push`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// The contact in every VAPID token (`mailto:` or `https:`); empty means `public_url`.
    pub vapid_subject: String,
    /// Hosts Web Push endpoints may be on (`*.` matches any subdomain): the browsers' push
    /// services.
    pub allowed_endpoint_hosts: Vec<String>,
    /// The notification sounds users and rooms may choose (the apps ship them); `none` is silent.
    pub sounds: Vec<String>,
    /// Apple's push service (`[push.apns]`); unset, iOS tokens are kept but not pushed to.
    pub apns: ApnsConfig,
    /// Push jobs a node works on at once (1–4096).
    pub max_in_flight: usize,
}

/// APNs with token authentication: an ES256 provider token signed with the team's `.p8` key.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApnsConfig {
    /// `https://api.push.apple.com` (production) or `https://api.sandbox.push.apple.com`.
    pub base_url: String,
    /// The sandbox service, for tokens registered as `sandbox`; empty means `base_url`.
    pub sandbox_url: String,
    /// The `.p8` key (PKCS#8 PEM of a P-256 key) from Apple's developer account.
    pub key_file: String,
    /// The key's id (the token's `kid`).
    pub key_id: String,
    /// The team id (the token's `iss`).
    pub team_id: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
}

impl Default for ApnsConfig {
    fn default() -> Self {
        ApnsConfig {
            base_url: "https://api.push.apple.com".into(),
            sandbox_url: "https://api.sandbox.push.apple.com".into(),
            key_file: String::new(),
            key_id: String::new(),
            team_id: String::new(),
            topic: String::new(),
        }
    }
}

impl ApnsConfig {
    /// Whether APNs is set up (a key to sign with and the app to push to).
    pub fn configured(&self) -> bool {
        !self.key_file.is_empty()
            && !self.key_id.is_empty()
            && !self.team_id.is_empty()
            && !self.topic.is_empty()
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            vapid_subject: String::new(),
            allowed_endpoint_hosts: [
                "fcm.googleapis.com",
                "*.push.services.mozilla.com",
                "*.notify.windows.com",
                "*.push.apple.com",
            ]
            .map(String::from)
            .to_vec(),
            sounds: ["default", "chime", "ping", "none"]
                .map(String::from)
                .to_vec(),
            apns: ApnsConfig::default(),
            max_in_flight: dovie_actors::push::MAX_IN_FLIGHT,
        }
    }
}

/// Languages of server texts (see `crate::i18n`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct I18nConfig {
    /// The language of readers with no account language and no `Accept-Language` Dovie
    /// speaks: one of ko, en, ja, zh-Hans, zh-Hant, es, fr, de.
    pub default_locale: String,
}

impl Default for I18nConfig {
    fn default() -> Self {
        I18nConfig {
            default_locale: crate::i18n::FALLBACK_LOCALE.into(),
        }
    }
}

/// External services, each off until configured (calls then answer 503
/// `provider_not_configured`); every `*_url` defaults to the real service.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    pub google: GoogleConfig,
    pub facebook: FacebookConfig,
    pub twilio: TwilioConfig,
    pub openai: OpenAiConfig,
    pub youtube: YouTubeConfig,
}

/// An OpenAI-compatible API (OpenAI itself, or a self-hosted model server).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API's base, up to and including `/v1`.
    pub base_url: String,
    /// The bearer key; empty: AI calls answer `provider_not_configured`.
    pub api_key: String,
    /// The model of smart replies, translation and hashtag ideas.
    pub chat_model: String,
    /// The model of transcriptions.
    pub transcribe_model: String,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "https://api.openai.com/v1".into(),
            api_key: String::new(),
            chat_model: "gpt-4o-mini".into(),
            transcribe_model: "whisper-1".into(),
        }
    }
}

/// The YouTube Data API v3.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct YouTubeConfig {
    /// The API's base, up to and including `/youtube/v3`.
    pub base_url: String,
    /// The API key; empty: YouTube search answers `provider_not_configured`.
    pub api_key: String,
}

impl Default for YouTubeConfig {
    fn default() -> Self {
        YouTubeConfig {
            base_url: "https://www.googleapis.com/youtube/v3".into(),
            api_key: String::new(),
        }
    }
}

/// Google Sign-In: ID tokens verified against Google's keys.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleConfig {
    /// OAuth client ids whose ID tokens are accepted (`aud`); empty: Google login is off.
    pub client_ids: Vec<String>,
    /// The JWKS with Google's signing keys.
    pub certs_url: String,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        GoogleConfig {
            client_ids: Vec::new(),
            certs_url: "https://www.googleapis.com/oauth2/v3/certs".into(),
        }
    }
}

/// Facebook Login: user tokens checked with the Graph API.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FacebookConfig {
    /// The app's id and secret; empty: Facebook login is off.
    pub app_id: String,
    pub app_secret: String,
    pub graph_url: String,
}

impl Default for FacebookConfig {
    fn default() -> Self {
        FacebookConfig {
            app_id: String::new(),
            app_secret: String::new(),
            graph_url: "https://graph.facebook.com".into(),
        }
    }
}

/// Twilio's Messages API, for SMS codes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    pub base_url: String,
    /// Account SID and auth token; empty: SMS is off.
    pub account_sid: String,
    pub auth_token: String,
    /// The sending number (E.164) or messaging service.
    pub from: String,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: String::new(),
            from: String::new(),
        }
    }
}

/// Rate limits of the sensitive calls; shared by every node of a cluster (Redis).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Login and social-login attempts per minute, per client address and per account.
    pub login_per_minute: u64,
    /// Registrations per hour per client address.
    pub register_per_hour: u64,
    /// SMS codes per hour per phone.
    pub sms_per_hour: u64,
    /// SMS codes per hour per client address.
    pub sms_per_hour_per_ip: u64,
    /// Seconds between two codes to one phone.
    pub sms_resend_secs: u64,
    /// Code checks (verify-sms) per hour per client address.
    pub verify_per_hour: u64,
    /// Authenticated REST calls per minute per user.
    pub api_per_minute: u64,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig {
            login_per_minute: 10,
            register_per_hour: 20,
            sms_per_hour: 5,
            sms_per_hour_per_ip: 20,
            sms_resend_secs: 30,
            verify_per_hour: 60,
            api_per_minute: 600,
        }
    }
}

/// What Dovie keeps about people, and how long.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Days a session's client address is kept after its last use.
    pub ip_retention_days: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            ip_retention_days: 30,
        }
    }
}

/// Location: live shares, maps, "nearby", history (see `crate::geo`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocationConfig {
    /// Days a user's location history is kept.
    pub history_days: u64,
    /// The Google Maps link of every location (`?api=1&query=<lat>,<lon>` is added).
    pub maps_url: String,
    /// Google Static Maps: the API's address and key; an empty key means no static maps.
    pub static_map_url: String,
    pub static_api_key: String,
    /// Shortest and longest live share, seconds.
    pub min_live_seconds: u64,
    pub max_live_seconds: u64,
    /// Least time between two moves of one live share, ms.
    pub update_interval_ms: u64,
    /// Least time between two "nearby" updates of one user, seconds.
    pub nearby_update_secs: u64,
    /// How long a "nearby" position stays, seconds.
    pub nearby_ttl_secs: u64,
    /// How often each node looks for live shares past their end, ms.
    pub sweep_ms: u64,
}

impl Default for LocationConfig {
    fn default() -> Self {
        LocationConfig {
            history_days: 30,
            maps_url: "https://www.google.com/maps/search/".into(),
            static_map_url: "https://maps.googleapis.com/maps/api/staticmap".into(),
            static_api_key: String::new(),
            min_live_seconds: 60,
            max_live_seconds: 86_400,
            update_interval_ms: 2_000,
            nearby_update_secs: 60,
            nearby_ttl_secs: 86_400,
            sweep_ms: 500,
        }
    }
}

/// Where file bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileBackend {
    /// A directory on this machine (`files.local_dir`).
    Local,
    /// An S3-compatible object store (`[files.s3]`): what a cluster's nodes share.
    S3,
}

/// Files: storage, encryption at rest, limits and previews (see `crate::files`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    pub backend: FileBackend,
    /// Directory of the local backend; empty means `<data_dir>/files`.
    pub local_dir: String,
    pub s3: S3Config,
    /// The master key (base64 of 32 bytes) that wraps every file's data key; empty: one is
    /// generated once and kept in the store (shared by every node of a cluster).
    pub master_key: String,
    /// The id recorded with each wrapped key; empty: derived from the key.
    pub master_key_id: String,
    /// Earlier master keys still accepted for reading (id → base64 key), after a rotation.
    pub previous_master_keys: std::collections::BTreeMap<String, String>,
    /// Plaintext bytes per encrypted chunk of new files (a range read decrypts whole chunks).
    pub chunk_bytes: u32,
    /// Largest upload per kind for ordinary users.
    pub limits: FileLimits,
    /// Largest upload per kind for admins.
    pub admin_limits: FileLimits,
    /// Bytes of files (not deleted) one user may keep; 0: no quota. Admins have none.
    pub user_quota_bytes: u64,
    /// Largest profile image.
    pub profile_image_bytes: u64,
    /// Lifetime of signed file and preview links.
    pub link_ttl_secs: u64,
    /// Largest image (pixels) thumbnails are made of; larger ones get no preview.
    pub max_image_pixels: u64,
    /// Memory the image decoder may use for one preview.
    pub max_image_alloc_bytes: u64,
    /// The ffmpeg program for video poster frames; empty or not installed: a placeholder.
    pub ffmpeg: String,
    /// The pdftoppm program (poppler) for a PDF's first page; empty or missing: a card.
    pub pdftoppm: String,
    /// Preview jobs run at once.
    pub preview_workers: usize,
    /// Uploads received at once by this node; more wait.
    pub max_concurrent_uploads: usize,
}

/// Upload limits per kind, bytes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileLimits {
    pub image: u64,
    pub audio: u64,
    pub video: u64,
    pub document: u64,
    pub archive: u64,
}

const MB: u64 = 1024 * 1024;

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            image: 20 * MB,
            audio: 50 * MB,
            video: 500 * MB,
            document: 100 * MB,
            archive: 100 * MB,
        }
    }
}

/// An S3-compatible object store.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL; empty: AWS itself (by region).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow a plain-http endpoint (a store on a private network).
    pub allow_http: bool,
    /// Path-style requests (`endpoint/bucket/key`), as most self-hosted stores want.
    pub path_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            allow_http: false,
            path_style: true,
        }
    }
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            backend: FileBackend::Local,
            local_dir: String::new(),
            s3: S3Config::default(),
            master_key: String::new(),
            master_key_id: String::new(),
            previous_master_keys: Default::default(),
            chunk_bytes: 64 * 1024,
            limits: FileLimits::default(),
            admin_limits: FileLimits {
                image: 50 * MB,
                audio: 200 * MB,
                video: 2048 * MB,
                document: 500 * MB,
                archive: 500 * MB,
            },
            user_quota_bytes: 10 * 1024 * MB,
            profile_image_bytes: 5 * MB,
            link_ttl_secs: 3600,
            max_image_pixels: 64_000_000,
            max_image_alloc_bytes: 512 * MB,
            ffmpeg: "ffmpeg".into(),
            pdftoppm: "pdftoppm".into(),
            preview_workers: 2,
            max_concurrent_uploads: 256,
        }
    }
}

/// Outbound HTTP (link previews, push endpoints, providers): see `crate::egress`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Let outbound fetches reach loopback, private, link-local and metadata addresses (tests and
    /// closed networks only).
    pub allow_private_addresses: bool,
    /// Whole-request time limit, milliseconds.
    pub timeout_ms: u64,
    /// Connect time limit, milliseconds.
    pub connect_timeout_ms: u64,
    /// Largest response body read, bytes.
    pub max_body_bytes: u64,
    /// Redirects followed at most (each one re-checked).
    pub max_redirects: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow_private_addresses: false,
            timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            max_body_bytes: 1024 * 1024,
            max_redirects: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CqlConfig {
    /// Replication factor of the keyspace `dovie migrate` creates (SimpleStrategy).
    pub replication_factor: u32,
}

impl Default for CqlConfig {
    fn default() -> Self {
        CqlConfig {
            replication_factor: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Shared HS256 signing secret; empty: generated once and kept in the data dir.
    pub jwt_secret: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub bcrypt_cost: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_message_chars: usize,
    pub max_frame_bytes: usize,
    pub max_body_bytes: usize,
    pub max_group_members: usize,
    /// Subscribers a company channel holds at most (channels have no group-size cap).
    pub max_channel_subscribers: usize,
    /// Rooms with more members than this carry no presence (`user_online`/`user_offline`).
    pub presence_max_room_members: usize,
    pub ws_rate_per_sec: f64,
    pub ws_rate_burst: f64,
    pub ws_max_strikes: u32,
    pub ws_outbound_queue: usize,
    /// Messages one user may send per minute, over all devices (and nodes).
    pub user_sends_per_minute: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    pub heartbeat_ms: u64,
    pub client_timeout_ms: u64,
    pub auth_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins allowed by CORS; empty allows none (same-origin only). `*` allows any.
    pub cors_origins: Vec<String>,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Seconds to drain on SIGTERM before closing what is left.
    pub shutdown_timeout_secs: u64,
    /// Open connections (HTTP and WebSocket) each worker accepts before it pauses accepting.
    pub max_connections_per_worker: usize,
    /// The listen backlog.
    pub backlog: u32,
    /// Addresses of reverse proxies (load balancers, ingress) whose `X-Forwarded-For` is
    /// believed: the client is the right-most address in it that is not one of these. Empty:
    /// the peer address is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// SQLite `synchronous`: FULL (fsync every batch; acks survive power loss) or NORMAL.
    pub synchronous: String,
    pub read_connections: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            store: StoreKind::Embedded,
            scylla: "127.0.0.1:9042".into(),
            keyspace: "dovie".into(),
            bus: BusKind::Local,
            redis: "redis://127.0.0.1:6379".into(),
            node_id: String::new(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            ws: WsConfig::default(),
            http: HttpConfig::default(),
            embedded: EmbeddedConfig::default(),
            cql: CqlConfig::default(),
            public_url: String::new(),
            egress: EgressConfig::default(),
            providers: ProvidersConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            privacy: PrivacyConfig::default(),
            files: FilesConfig::default(),
            location: LocationConfig::default(),
            i18n: I18nConfig::default(),
            push: PushConfig::default(),
            ai: AiConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: String::new(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            bcrypt_cost: 10,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_chars: 4000,
            max_frame_bytes: 64 * 1024,
            max_body_bytes: 256 * 1024,
            max_group_members: 100,
            max_channel_subscribers: 100_000,
            presence_max_room_members: 100,
            ws_rate_per_sec: 50.0,
            ws_rate_burst: 100.0,
            ws_max_strikes: 50,
            ws_outbound_queue: 512,
            user_sends_per_minute: 3000,
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            heartbeat_ms: 25_000,
            client_timeout_ms: 60_000,
            auth_timeout_ms: 10_000,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            cors_origins: Vec::new(),
            workers: 0,
            shutdown_timeout_secs: 10,
            max_connections_per_worker: 250_000,
            backlog: 4096,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            synchronous: "FULL".into(),
            read_connections: 4,
        }
    }
}

impl Config {
    /// Builds the effective config: defaults, then the file, then the environment, then flags.
    pub fn load(flags: &Flags) -> Result<Config, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &flags.config {
            figment = figment.merge(Toml::string(&read_file(path)?));
        }
        figment = figment.merge(env_layer());
        for (key, value) in signed_number_strings() {
            figment = figment.merge(Serialized::default(&key, value));
        }
        let mut config = figment
            .extract::<Config>()
            .map_err(|e| config_error(&e, flags.config.as_deref()))?;
        if let Some(v) = flags.listen {
            config.listen = v;
        }
        if let Some(v) = &flags.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = flags.store {
            config.store = v;
        }
        if let Some(v) = &flags.scylla {
            config.scylla = v.clone();
        }
        if let Some(v) = &flags.keyspace {
            config.keyspace = v.clone();
        }
        if let Some(v) = flags.bus {
            config.bus = v;
        }
        if let Some(v) = &flags.redis {
            config.redis = v.clone();
        }
        if let Some(v) = &flags.node_id {
            config.node_id = v.clone();
        }
        // The short names kept from before sections could be set from the environment.
        if let Ok(secret) = std::env::var("DOVIE_JWT_SECRET") {
            config.auth.jwt_secret = secret;
        }
        if let Ok(cost) = std::env::var("DOVIE_BCRYPT_COST") {
            config.auth.bcrypt_cost = cost
                .parse()
                .map_err(|_| format!("DOVIE_BCRYPT_COST: not a number: {cost}"))?;
        }
        if config.node_id.is_empty() {
            config.node_id = format!("node-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        }
        if config.public_url.is_empty() {
            config.public_url = format!("http://{}", config.listen);
        }
        config.public_url = config.public_url.trim_end_matches('/').to_string();
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, String> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(&read_file(path)?))
            .extract()
            .map_err(|e| config_error(&e, Some(path)))
    }

    fn validate(&self) -> Result<(), String> {
        if self.ai.max_reminders == 0 || self.ai.max_reminder_days == 0 {
            return Err("ai.max_reminders and ai.max_reminder_days must be at least 1".into());
        }
        if !(1..=100).contains(&self.ai.context_messages) {
            return Err(format!(
                "ai.context_messages must be 1 to 100, not {}",
                self.ai.context_messages
            ));
        }
        if !(1..=4096).contains(&self.push.max_in_flight) {
            return Err(format!(
                "push.max_in_flight must be 1 to 4096, not {}",
                self.push.max_in_flight
            ));
        }
        if !self.public_url.starts_with("http://") && !self.public_url.starts_with("https://") {
            return Err(format!(
                "public_url must be an http:// or https:// URL, not `{}`",
                self.public_url
            ));
        }
        if crate::i18n::canonical(&self.i18n.default_locale)
            .is_none_or(|l| l != self.i18n.default_locale)
        {
            return Err(format!(
                "i18n.default_locale must be one of {}, not `{}`",
                crate::i18n::LOCALES.join(", "),
                self.i18n.default_locale
            ));
        }
        if self.egress.timeout_ms == 0 || self.egress.connect_timeout_ms == 0 {
            return Err("egress.timeout_ms and egress.connect_timeout_ms must be positive".into());
        }
        let r = &self.rate_limits;
        if [
            r.login_per_minute,
            r.register_per_hour,
            r.sms_per_hour,
            r.sms_per_hour_per_ip,
            r.verify_per_hour,
            r.api_per_minute,
        ]
        .contains(&0)
        {
            return Err("rate_limits: every limit must be at least 1".into());
        }
        if self.privacy.ip_retention_days == 0 {
            return Err("privacy.ip_retention_days must be at least 1".into());
        }
        let f = &self.files;
        if !(4096..=4 * 1024 * 1024).contains(&f.chunk_bytes) {
            return Err("files.chunk_bytes must be between 4096 and 4194304".into());
        }
        if f.preview_workers == 0 || f.max_concurrent_uploads == 0 || f.link_ttl_secs < 60 {
            return Err(
                "files.preview_workers and files.max_concurrent_uploads must be positive, \
                 files.link_ttl_secs at least 60"
                    .into(),
            );
        }
        if f.backend == FileBackend::S3 && f.s3.bucket.is_empty() {
            return Err("files.backend = \"s3\" needs files.s3.bucket".into());
        }
        if !(4..=31).contains(&self.auth.bcrypt_cost) {
            return Err("auth.bcrypt_cost must be between 4 and 31".into());
        }
        if self.limits.max_group_members < 2 {
            return Err("limits.max_group_members must be at least 2".into());
        }
        if self.limits.max_channel_subscribers < 1 {
            return Err("limits.max_channel_subscribers must be at least 1".into());
        }
        if self.limits.ws_outbound_queue == 0 || self.limits.ws_rate_per_sec <= 0.0 {
            return Err(
                "limits.ws_outbound_queue and limits.ws_rate_per_sec must be positive".into(),
            );
        }
        if !matches!(
            self.embedded.synchronous.to_ascii_uppercase().as_str(),
            "FULL" | "NORMAL" | "EXTRA"
        ) {
            return Err("embedded.synchronous must be FULL, NORMAL or EXTRA".into());
        }
        Ok(())
    }

    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.auth.access_ttl_secs)
    }
}

fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The environment layer: `DOVIE_<KEY>` and `DOVIE_<SECTION>__<KEY>`, for the keys of the
/// config only (other `DOVIE_*` variables — `DOVIE_LOG`, `DOVIE_CONFIG`, a test harness's own —
/// are not config keys and are left alone).
fn env_layer() -> Env {
    let top: Vec<String> = match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(keys)) => keys.keys().cloned().collect(),
        _ => Vec::new(),
    };
    Env::prefixed("DOVIE_").split("__").filter(move |key| {
        // The key as the variable names it (`limits__max_group_members`) or already split.
        let first = key
            .as_str()
            .split("__")
            .next()
            .and_then(|k| k.split('.').next())
            .unwrap_or_default();
        top.iter().any(|t| t.eq_ignore_ascii_case(first))
    })
}

/// Environment values that read as signed numbers but are text — an E.164 phone number such as
/// `DOVIE_PROVIDERS__TWILIO__FROM=+15005550006` — as (dotted key, text). The environment layer
/// parses values, which would turn `+15005550006` into the number 15005550006; no config key
/// is a signed number, so these are kept as the text they are.
fn signed_number_strings() -> Vec<(String, String)> {
    std::env::vars()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("DOVIE_")?;
            let digits = v.strip_prefix('+')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let dotted = key.to_ascii_lowercase().replace("__", ".");
            let first = dotted.split('.').next().unwrap_or_default().to_string();
            let known = serde_json::to_value(Config::default())
                .ok()
                .and_then(|c| c.get(&first).cloned())
                .is_some();
            known.then_some((dotted, v))
        })
        .collect()
}

/// A config error naming the key and where its value came from.
fn config_error(e: &figment::Error, file: Option<&Path>) -> String {
    let mut out = String::new();
    for err in e.clone() {
        let key = err.path.join(".");
        let from = match &err.metadata {
            Some(m) if m.name.contains("TOML") => file
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| m.name.to_string()),
            Some(m) => m.name.to_string(),
            None => "config".to_string(),
        };
        let key = if key.is_empty() {
            String::new()
        } else {
            format!(" (key `{key}`)")
        };
        out.push_str(&format!("{from}{key}: {}\n", err.kind));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_documents_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let from_file = Config::from_file(&path).expect("config/default.toml parses");
        assert_eq!(from_file, Config::default());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test jail answers its own error type
    fn flags_override_the_file() {
        // In a jail: the environment test beside this one sets DOVIE_* variables meanwhile.
        figment::Jail::expect_with(|_| {
            flags_override_the_file_body();
            Ok(())
        });
    }

    fn flags_override_the_file_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_group_members = 7\n",
        )
        .expect("write");
        let flags = Flags {
            config: Some(path),
            listen: Some("127.0.0.1:9001".parse().expect("addr")),
            ..Flags::default()
        };
        let c = Config::load(&flags).expect("load");
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.limits.max_group_members, 7);
        assert!(c.node_id.starts_with("node-"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").expect("write");
        let err = Config::from_file(&path).expect_err("unknown keys");
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn unknown_keys_in_a_section_name_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[egress]\nallow_private = true\n").expect("write");
        let err = Config::from_file(&path).expect_err("unknown key");
        assert!(err.contains("allow_private"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test jail answers its own error type
    fn every_key_comes_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DOVIE_LIMITS__MAX_GROUP_MEMBERS", "42");
            jail.set_env("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true");
            jail.set_env("DOVIE_PUBLIC_URL", "https://chat.example/");
            jail.set_env("DOVIE_HTTP__CORS_ORIGINS", "[\"https://a.example\"]");
            jail.set_env("DOVIE_LOG", "debug");
            jail.set_env("DOVIE_PROVIDERS__TWILIO__FROM", "+15005550006");
            let c = Config::load(&Flags::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.limits.max_group_members, 42);
            assert!(c.egress.allow_private_addresses);
            assert_eq!(c.public_url, "https://chat.example");
            assert_eq!(c.http.cors_origins, vec!["https://a.example".to_string()]);
            assert_eq!(
                c.providers.twilio.from, "+15005550006",
                "a phone stays text"
            );
            jail.set_env("DOVIE_LIMITS__MAX_GRUP_MEMBERS", "42");
            let err = Config::load(&Flags::default()).expect_err("unknown key");
            assert!(err.contains("max_grup_members"), "{err}");
            Ok(())
        });
    }
}
