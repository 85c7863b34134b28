//! Node lifecycle: start (open the store, warm auth, start room arbiters and the HTTP server),
//! run, and drain on SIGTERM/SIGINT — stop accepting, tell every session `server_maintenance`
//! and close it with 1001, let every room actor finish its in-flight writes, then stop.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::{HttpService, KeepAlive};
use actix_rt::net::TcpStream;
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt,
};
use actix_web::dev::AppConfig;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, App, HttpMessage, HttpResponse, ResponseError};
use dovie_actors::room::{Drain, Responder};
use dovie_actors::session::Kick;
use dovie_actors::{Ports, Registry, RoomDirectory, SessionConfig};
use dovie_protocol::error::ErrorCode;
use futures_util::future::{join_all, Either};

use crate::api::{self, Api, ApiError};
use crate::auth::{load_secret, AuthService};
use crate::cluster::Cluster;
use crate::config::{BusKind, Config, StoreKind};
use crate::metrics::PromTelemetry;
use crate::state::AppState;
use crate::store::cql::ScyllaStore;
use crate::store::sqlite::SqliteStore;
use crate::store::SharedStore;

/// Who reads a response: what the request says of its language (header values are shared
/// bytes: keeping them costs no copy on the requests that succeed).
struct Reader {
    authorization: Option<HeaderValue>,
    accept_language: Option<HeaderValue>,
}

impl Reader {
    fn of(req: &actix_web::dev::ServiceRequest) -> Reader {
        let h = req.headers();
        Reader {
            authorization: h.get(header::AUTHORIZATION).cloned(),
            accept_language: h.get(header::ACCEPT_LANGUAGE).cloned(),
        }
    }

    /// The reader's language: the account's (when the request carries a valid token), else
    /// the header's, else the default. The store is read only here, for error answers.
    async fn locale(&self, state: &AppState) -> &'static str {
        use dovie_actors::ports::Authenticator;
        let token = self
            .authorization
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(api::bearer_token);
        let account = match token.map(|t| state.auth.verify(t)) {
            Some(Ok(identity)) => state
                .store
                .user_by_id(&identity.user_id)
                .await
                .ok()
                .flatten()
                .map(|u| u.locale),
            _ => None,
        };
        let accept_language = self.accept_language.as_ref().and_then(|v| v.to_str().ok());
        state.texts.negotiate(account.as_deref(), accept_language)
    }
}

/// An error answer of the API in the reader's language (same status, code and headers).
async fn localize_error<B>(
    res: ServiceResponse<B>,
    reader: Reader,
    state: &AppState,
) -> ServiceResponse<actix_web::body::EitherBody<B>> {
    let err = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    {
        Some(e) => e.clone(),
        None => return res.map_into_left_body(),
    };
    // Refusals that must stay cheap or cannot reach the store speak the request's language
    // without reading the account: a rate limit, a store outage, a draining node.
    let locale = match err.0.code {
        ErrorCode::RateLimited | ErrorCode::StoreUnavailable | ErrorCode::Unavailable => {
            let header = reader
                .accept_language
                .as_ref()
                .and_then(|v| v.to_str().ok());
            state.texts.negotiate(None, header)
        }
        _ => reader.locale(state).await,
    };
    let localized = ApiError(state.texts.error(locale, &err.0), err.1);
    let mut answer = localized.error_response();
    // The handler may have answered another status than the code's (416 for a bad range).
    *answer.status_mut() = res.status();
    for (name, value) in res.response().headers() {
        if !answer.headers().contains_key(name) {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    res.into_response(answer).map_into_right_body()
}

/// How long an idle HTTP keep-alive connection stays open.
const HTTP_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long a client may take to send a request head.
const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Arbiters (threads) that run room actors.
const ROOM_ARBITERS: usize = 2;
/// How long the drain waits for sessions to close before closing the listener anyway.
const SESSION_DRAIN_WAIT: Duration = Duration::from_secs(3);
/// How often the push queue's depth is sampled into its gauge.
const PUSH_DEPTH_EVERY: Duration = Duration::from_secs(10);

/// Opens the configured store (migrations applied).
pub async fn open_store(config: &Config) -> Result<SharedStore, String> {
    match config.store {
        StoreKind::Embedded => {
            let store = SqliteStore::open(
                &config.data_dir,
                &config.embedded.synchronous.to_ascii_uppercase(),
                config.embedded.read_connections,
            )?;
            Ok(Arc::new(store))
        }
        StoreKind::Scylla => {
            let store = ScyllaStore::open(
                &config.scylla,
                &config.keyspace,
                config.cql.replication_factor,
            )
            .await?;
            Ok(Arc::new(store))
        }
    }
}

/// `dovie admin grant EMAIL`: makes that account an administrator (on the configured store).
pub async fn grant_admin(config: &Config, email: &str) -> Result<(), String> {
    let store = open_store(config).await?;
    let email = email.trim().to_lowercase();
    let record = store
        .user_by_email(&email)
        .await
        .map_err(|e| e.message)?
        .ok_or_else(|| format!("no account with the email {email}"))?;
    store
        .set_user_role(&record.user.id, dovie_protocol::model::UserRole::Admin)
        .await
        .map_err(|e| e.message)?;
    println!("{email} ({}) is now an admin", record.user.id);
    Ok(())
}

/// `dovie migrate`: applies the schema of the configured store and exits.
pub async fn migrate(config: &Config) -> Result<(), String> {
    match config.store {
        StoreKind::Embedded => {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| e.to_string())?;
            let path = config.data_dir.join("dovie.db");
            let mut conn = rusqlite::Connection::open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let ran = crate::store::sqlite::migrate(&mut conn).map_err(|e| e.to_string())?;
            tracing::info!(applied = ran, db = %path.display(), "embedded schema is current");
        }
        StoreKind::Scylla => {
            let ran = crate::store::cql::migrate(
                &config.scylla,
                &config.keyspace,
                config.cql.replication_factor,
            )
            .await?;
            tracing::info!(applied = ran, keyspace = %config.keyspace, "CQL schema is current");
        }
    }
    Ok(())
}

fn cors_allows(config: &Config, origin: &str) -> bool {
    config
        .http
        .cors_origins
        .iter()
        .any(|o| o == "*" || o == origin)
}

/// Every served path and its methods (built once).
static ROUTES: std::sync::LazyLock<api::RouteTable> =
    std::sync::LazyLock::new(|| api::RouteTable::new(&[("GET", crate::openapi::WS_PATH)]));

/// What no route matched: a known path with another method is 405 with `Allow`, else 404.
async fn unrouted(req: actix_web::HttpRequest) -> HttpResponse {
    let allowed = ROUTES.allowed(req.path());
    if allowed.is_empty() {
        return HttpResponse::from_error(ApiError::new(ErrorCode::NotFound, "no such route"));
    }
    // From the error, so the answer keeps it (and is said in the reader's language).
    let mut res = HttpResponse::from_error(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not served here; allowed: {}",
            req.method(),
            allowed.join(", ")
        ),
    ));
    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    res
}

/// Starts the node and runs it until SIGTERM/SIGINT has drained it.
/// Attempts of a store read a node needs before it serves, and the pause between them.
const STARTUP_STORE_ATTEMPTS: u32 = 5;
const STARTUP_RETRY_PAUSE: Duration = Duration::from_secs(2);

pub async fn serve(config: Config) -> Result<(), String> {
    if config.bus == BusKind::Redis && config.store == StoreKind::Embedded {
        return Err("--bus redis (a cluster) needs a shared store: add --store scylla".into());
    }
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let secret = load_secret(&config.auth.jwt_secret, &config.data_dir)?;
    let auth = Arc::new(AuthService::new(
        secret,
        config.access_ttl(),
        Duration::from_secs(config.auth.refresh_ttl_secs),
        config.auth.bcrypt_cost,
        store.clone(),
    )?);
    // A store that is busy (a CQL server under load) answers a timeout now and then: the node
    // tries again before giving up on starting.
    let mut attempt = 1;
    while let Err(e) = auth.warm_revocations().await {
        if attempt == STARTUP_STORE_ATTEMPTS {
            return Err(e.message);
        }
        tracing::warn!(attempt, error = %e.message, "cannot read the revoked sessions; trying again");
        tokio::time::sleep(STARTUP_RETRY_PAUSE).await;
        attempt += 1;
    }
    let telemetry: Arc<dyn dovie_actors::Telemetry> = Arc::new(PromTelemetry);
    let registry = Registry::new(telemetry.clone());
    let cluster = match config.bus {
        BusKind::Local => None,
        BusKind::Redis => {
            let c = Cluster::start(
                &config.redis,
                &config.node_id,
                registry.clone(),
                auth.clone(),
                store.clone(),
            )
            .await?;
            Some(c)
        }
    };
    let fanout: Arc<dyn dovie_actors::Fanout> = match &cluster {
        Some(c) => c.clone(),
        None => registry.clone(),
    };
    let quota = crate::quota::Quota::new(config.limits.user_sends_per_minute);
    if let Some(c) = &cluster {
        quota.share(c.connection());
    }
    let egress = crate::egress::Egress::new(&config.egress)?;
    let files = crate::files::Files::open(&config, store.as_ref()).await?;
    let ai = Arc::new(crate::ai::Ai::new(&config, &egress)?);
    let links = Arc::new(crate::files::links::LinkPreviewer {
        egress: egress.clone(),
        files: files.clone(),
        store: store.clone(),
        ai: ai.clone(),
    });
    let geo = crate::geo::Geo::new(
        config.location.clone(),
        store.clone(),
        fanout.clone(),
        cluster.clone(),
    );
    let extras =
        crate::files::attach::ServerExtras::new(files.clone(), store.clone(), links, geo.clone());
    crate::metrics::init();
    let texts = Arc::new(crate::i18n::Texts::new(&config.i18n.default_locale)?);
    let push = Arc::new(crate::push::Push::open(&config, &store).await?);
    let active = match &cluster {
        Some(c) => crate::push::active::ActiveRooms::shared(c.clone(), &config.node_id).await,
        None => crate::push::active::ActiveRooms::local(),
    };
    let devices = Arc::new(crate::push::devices::Devices::new(store.clone()));
    let (push_queue, push_depth): (
        Arc<dyn dovie_actors::push::PushQueue>,
        Arc<dyn crate::push::queue::Depth>,
    ) = match &cluster {
        Some(c) => {
            c.set_devices(devices.clone());
            let q = crate::push::queue::RedisQueue::open(c.clone(), &config.node_id).await?;
            (q.clone(), q)
        }
        None => {
            let q = crate::push::queue::StoreQueue::new(store.clone());
            (q.clone(), q)
        }
    };
    let pusher = crate::push::pipeline::Pusher::new(push_queue, devices.clone());
    extras.set_pusher(pusher.clone());
    let ports = Ports {
        store: store.clone(),
        auth: auth.clone(),
        telemetry,
        fanout,
        quota,
        extras: extras.clone(),
        texts: Arc::new(crate::i18n::SessionTexts {
            texts: texts.clone(),
            store: store.clone(),
        }),
        activity: active.clone(),
    };
    let arbiters: Vec<actix::Arbiter> = (0..ROOM_ARBITERS).map(|_| actix::Arbiter::new()).collect();
    let directory =
        RoomDirectory::new(ports.clone(), arbiters.iter().map(|a| a.handle()).collect());
    if let Some(c) = &cluster {
        directory.set_placement(c.clone());
        c.set_directory(directory.clone());
    }
    extras.set_directory(directory.clone());
    let vapid_subject = if config.push.vapid_subject.is_empty() {
        config.public_url.clone()
    } else {
        config.push.vapid_subject.clone()
    };
    pusher.start(
        Arc::new(crate::push::pipeline::Worker {
            store: store.clone(),
            texts: texts.clone(),
            active,
            devices,
            // Its own pool: many pushes at once to few push services, each kept alive.
            web: crate::push::webpush::WebPushSender::new(
                crate::egress::Egress::with_pool(&config.egress, config.push.max_in_flight)?,
                push.vapid_key(),
                vapid_subject,
            ),
            apns: crate::push::apns::ApnsSender::new(&config.push.apns, &config.egress)?,
        }),
        config.push.max_in_flight,
    );
    crate::push::queue::spawn_depth_sampler(push_depth, PUSH_DEPTH_EVERY);
    let limits = &config.limits;
    let session_config = SessionConfig {
        heartbeat: Duration::from_millis(config.ws.heartbeat_ms),
        client_timeout: Duration::from_millis(config.ws.client_timeout_ms),
        auth_timeout: Duration::from_millis(config.ws.auth_timeout_ms),
        rate_per_sec: limits.ws_rate_per_sec,
        rate_burst: limits.ws_rate_burst,
        max_strikes: limits.ws_max_strikes,
        max_message_chars: limits.max_message_chars,
        presence_max_room_members: limits.presence_max_room_members,
    };
    let limiter = Arc::new(crate::ratelimit::Limiter::new());
    let api_quota = crate::quota::Quota::named("api", config.rate_limits.api_per_minute);
    if let Some(c) = &cluster {
        limiter.share(c.connection());
        api_quota.share(c.connection());
    }
    let reminders = crate::ai::reminders::Reminders::new(
        store.clone(),
        ports.fanout.clone(),
        pusher.clone(),
        texts.clone(),
        cluster.clone(),
        config.ai.reminder_sweep_ms,
    );
    let transcriber = crate::ai::transcriber::Transcriber::new(
        &config.ai,
        ai.clone(),
        files.clone(),
        store.clone(),
        extras.clone(),
        limiter.clone(),
    );
    extras.set_transcriber(transcriber.clone());
    let state = web::Data::new(AppState {
        config: config.clone(),
        ai,
        transcriber: transcriber.clone(),
        profiles: Arc::new(crate::people::profiles::Profiles::new(store.clone())),
        texts,
        push,
        pusher,
        store,
        auth,
        ports,
        registry,
        directory,
        session_config,
        egress: egress.clone(),
        providers: crate::state::Providers {
            google: crate::providers::google::Google::new(
                config.providers.google.clone(),
                egress.clone(),
            ),
            facebook: crate::providers::facebook::Facebook::new(
                config.providers.facebook.clone(),
                egress.clone(),
            ),
            twilio: crate::providers::twilio::Twilio::new(config.providers.twilio.clone(), egress),
        },
        limiter,
        api_quota,
        files: files.clone(),
        extras: extras.clone(),
        geo: geo.clone(),
        cluster,
        draining: Default::default(),
    });

    spawn_ip_sweeper(state.clone());
    crate::admin::spawn_sweeper(state.store.clone());
    crate::admin::monitor::spawn_reporter(state.clone());
    crate::privacy::export::spawn_sweeper(state.clone());
    crate::api::erasure::spawn_resumer(state.clone());
    geo.spawn_sweeper();
    reminders.spawn_sweeper();
    transcriber.spawn_sweeper();

    let app_state = state.clone();
    let make_app = move || {
        let state = app_state.clone();
        App::new()
            .app_data(state.clone())
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::new(ErrorCode::ValidationFailed, format!("bad query: {e}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                ApiError::new(ErrorCode::ValidationFailed, format!("bad path: {e}")).into()
            }))
            .wrap_fn(move |req, srv| {
                let started = Instant::now();
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let method = req.method().clone();
                let origin = req
                    .headers()
                    .get(header::ORIGIN)
                    .and_then(|o| o.to_str().ok())
                    .filter(|o| cors_allows(&state.config, o))
                    .map(str::to_string);
                if method == Method::OPTIONS && origin.is_some() {
                    // CORS preflight.
                    let mut res = HttpResponse::NoContent().finish();
                    add_cors(res.headers_mut(), origin.as_deref());
                    let h = res.headers_mut();
                    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"));
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("authorization, content-type, accept"),
                    );
                    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
                    return Either::Left(std::future::ready(Ok(req.into_response(res).map_into_right_body())));
                }
                let request_id = uuid::Uuid::now_v7().to_string();
                req.extensions_mut().insert(request_id.clone());
                let reader = Reader::of(&req);
                let fut = srv.call(req);
                let state = state.clone();
                Either::Right(async move {
                    let res: ServiceResponse<_> = fut.await?;
                    let mut res = localize_error(res, reader, &state).await;
                    crate::metrics::http_request(&route, method.as_str(), res.status().as_u16(), started.elapsed());
                    if res.status().is_server_error() {
                        tracing::warn!(%route, %method, status = res.status().as_u16(), request_id, "request failed");
                    }
                    let h = res.headers_mut();
                    add_cors(h, origin.as_deref());
                    add_security_headers(h);
                    if let Ok(v) = HeaderValue::from_str(&request_id) {
                        h.insert(HeaderName::from_static("x-request-id"), v);
                    }
                    Ok(res)
                })
            })
            .configure(|cfg| {
                let mut api = Api::new(Some(cfg));
                api::register(&mut api);
                cfg.route(crate::openapi::WS_PATH, web::get().to(crate::ws::upgrade));
            })
            .default_service(web::to(unrouted))
    };

    let listener = dovie_transport::listen(config.listen, config.http.backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listen address: {e}"))?;
    let on_done_extras = extras.clone();
    crate::files::previews::start(crate::files::previews::Worker {
        files,
        store: state.store.clone(),
        self_url: format!("http://{}", loopback_of(addr)),
        on_done: Arc::new(move |f| on_done_extras.refresh(&f)),
    });
    let workers = match config.http.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let gateway_state = state.clone();
    let server = actix_server::Server::build()
        .workers(workers)
        .backlog(config.http.backlog)
        .max_concurrent_connections(config.http.max_connections_per_worker)
        .disable_signals()
        .shutdown_timeout(config.http.shutdown_timeout_secs)
        .listen("dovie", listener, move || {
            gateway(make_app.clone(), gateway_state.clone(), addr)
        })
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?
        .run();
    tracing::info!(node = %config.node_id, "listening on {addr}");
    let handle = server.handle();
    let drain_state = state.clone();
    actix_rt::spawn(async move {
        wait_for_signal().await;
        drain(&drain_state).await;
        handle.stop(true).await;
    });
    server.await.map_err(|e| e.to_string())?;
    for a in arbiters {
        a.stop();
    }
    tracing::info!("stopped");
    Ok(())
}

/// How often session addresses past `privacy.ip_retention_days` are forgotten.
const IP_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// How far before the retention limit each sweep looks for audit entries still holding an
/// address.
const AUDIT_IP_CATCH_UP_MS: i64 = 30 * 86_400_000;

/// Forgets the client addresses of sessions unused for longer than the retention, and those
/// of audit log entries older than it, at start and every [`IP_SWEEP_EVERY`].
fn spawn_ip_sweeper(state: web::Data<AppState>) {
    actix_rt::spawn(async move {
        let keep_ms = state.config.privacy.ip_retention_days as i64 * 86_400_000;
        loop {
            let before = dovie_actors::now_ms() - keep_ms;
            match state.store.forget_session_ips(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "forgot old session addresses"),
                Err(e) => tracing::warn!(error = %e.message, "cannot forget old session addresses"),
            }
            // The audit log's addresses too: those that aged out since a while before the last
            // sweep (a node down for up to that long still catches up).
            match state
                .store
                .forget_audit_ips(before - AUDIT_IP_CATCH_UP_MS, before)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "forgot old audit log addresses"),
                Err(e) => {
                    tracing::warn!(error = %e.message, "cannot forget old audit log addresses")
                }
            }
            tokio::time::sleep(IP_SWEEP_EVERY).await;
        }
    });
}

/// One worker's connection service: a fresh connection whose first request is `GET /ws` goes to
/// the lean WebSocket transport; every other connection to actix-web's HTTP/1 dispatcher.
fn gateway<F, A, B>(
    make_app: F,
    state: web::Data<AppState>,
    addr: std::net::SocketAddr,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = (), InitError = ()>
where
    F: Fn() -> App<A> + Clone + 'static,
    A: ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    fn_factory(move || {
        let http = HttpService::build()
            .keep_alive(KeepAlive::Timeout(HTTP_KEEP_ALIVE))
            .client_request_timeout(HTTP_REQUEST_TIMEOUT)
            .local_addr(addr)
            .finish(map_config(
                make_app()
                    .into_factory()
                    .map_err(|e: actix_web::Error| e.error_response()),
                |_| AppConfig::default(),
            ))
            .tcp();
        let state = state.clone();
        async move {
            let http = Rc::new(http.new_service(()).await?);
            Ok(fn_service(move |stream: TcpStream| {
                let (http, state) = (http.clone(), state.clone());
                async move {
                    if crate::ws::is_upgrade(&stream).await {
                        crate::ws::serve_socket(stream, state).await;
                        Ok(())
                    } else {
                        // Boxed: the HTTP dispatcher's state is large, and an unboxed branch would
                        // size every connection's task — WebSocket ones included — to fit it.
                        Box::pin(http.call(stream)).await.map_err(|_| ())
                    }
                }
            }))
        }
    })
}

/// This node's own address as a local client reaches it (a wildcard listen address becomes
/// loopback).
fn loopback_of(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let mut a = listen;
    if a.ip().is_unspecified() {
        a.set_ip(match a.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

fn add_cors(h: &mut actix_web::http::header::HeaderMap, origin: Option<&str>) {
    if let Some(v) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn add_security_headers(h: &mut actix_web::http::header::HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A response that set its own policy (served files: a sandbox) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Drain: refuse new sockets, close every session with `server_maintenance` + 1001, and wait
/// until every room actor has finished its writes in flight.
pub async fn drain(state: &AppState) {
    tracing::info!("draining");
    state.draining.store(true, Ordering::Relaxed);
    crate::metrics::set_draining(true);
    for s in state.registry.all() {
        s.do_send(Kick::maintenance("server restarting; reconnect"));
    }
    let deadline = Instant::now() + SESSION_DRAIN_WAIT;
    while state.registry.session_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Leave the cluster first: the other nodes take this node's rooms over.
    if let Some(c) = &state.cluster {
        c.leave().await;
        state.directory.relinquish_moved();
    }
    let drains = state.directory.all().into_iter().map(|room| async move {
        let (reply, rx) = Responder::channel();
        room.do_send(Drain { reply });
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
    });
    join_all(drains).await;
    // Let the writers flush their close frames.
    tokio::time::sleep(Duration::from_millis(100)).await;
    tracing::info!("drained");
}
