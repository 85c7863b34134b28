//! The `/ws` upgrade: codec negotiation (subprotocol, then `?format=`), the token on the upgrade
//! (`?token=` or `Authorization: Bearer`), and the socket plumbing of a session.
//!
//! Two ways in, one session actor behind both:
//! - **the lean transport** ([`serve_socket`]): a fresh connection whose first request is
//!   `GET /ws` never meets the HTTP dispatcher. The gateway reads the head, answers `101` and
//!   drives the socket with `dovie-transport`, which keeps no buffers while the socket is idle.
//!   This is how clients connect, and what the memory-per-session numbers measure.
//! - **the actix-web route** ([`upgrade`]): an upgrade that arrives on a reused keep-alive
//!   connection (after REST requests) is served by `actix-ws` with a writer task.

use std::time::Duration;

use actix::{Actor, AsyncContext};
use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytes::Bytes;
use dovie_actors::ports::{Outlet, OutletFull};
use dovie_actors::session::{FromSocket, Hello, Inbound};
use dovie_actors::SessionActor;
use dovie_protocol::error::ErrorCode;
use dovie_protocol::Codec;
use dovie_transport::handshake::{self, Head, HeadError};
use dovie_transport::{Outbox, Settings};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::api::{bearer, ApiError};
use crate::state::AppState;

/// How long a client may take to send its upgrade request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing the upgrade answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a refused connection is read (and discarded) after the answer, so that closing it
/// with unread bytes does not reset it before the client has read the answer.
const LINGER: Duration = Duration::from_secs(1);

/// How long a close may wait for the socket before the connection is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

#[derive(Deserialize, Default)]
struct WsQuery {
    format: Option<String>,
    token: Option<String>,
}

enum Out {
    Frame(Bytes),
    Close(u16, String),
}

enum Ctl {
    Ping,
    Pong(Bytes),
    /// Close now, dropping what is queued (the queue is full: the peer does not read).
    CloseNow(u16, String),
}

struct WsOutlet {
    frames: mpsc::Sender<Out>,
    ctl: mpsc::UnboundedSender<Ctl>,
}

impl Outlet for WsOutlet {
    fn send(&self, frame: Bytes) -> Result<(), OutletFull> {
        self.frames
            .try_send(Out::Frame(frame))
            .map_err(|_| OutletFull)
    }

    fn ping(&self) {
        let _ = self.ctl.send(Ctl::Ping);
    }

    fn send_pong(&self, payload: Bytes) {
        let _ = self.ctl.send(Ctl::Pong(payload));
    }

    fn close(&self, code: u16, reason: &str) {
        // Behind what is queued if there is room; otherwise at once.
        if self
            .frames
            .try_send(Out::Close(code, reason.to_string()))
            .is_err()
        {
            let _ = self.ctl.send(Ctl::CloseNow(code, reason.to_string()));
        }
    }
}

fn close_reason(code: u16, reason: String) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::from(code),
        description: (!reason.is_empty()).then_some(reason),
    })
}

async fn close(session: actix_ws::Session, code: u16, reason: String) {
    let _ = tokio::time::timeout(CLOSE_GRACE, session.close(close_reason(code, reason))).await;
}

/// Owns the socket's write half: writes queued frames in order, pings, and closes. When the
/// session is gone (both senders dropped) it still writes what was queued, then closes.
async fn writer(
    mut session: actix_ws::Session,
    mut frames: mpsc::Receiver<Out>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    codec: Codec,
) {
    let mut ctl_open = true;
    loop {
        tokio::select! {
            biased;
            c = ctl.recv(), if ctl_open => match c {
                Some(Ctl::Ping) => { if session.ping(b"").await.is_err() { return; } }
                Some(Ctl::Pong(p)) => { if session.pong(&p).await.is_err() { return; } }
                Some(Ctl::CloseNow(code, reason)) => return close(session, code, reason).await,
                None => ctl_open = false,
            },
            f = frames.recv() => match f {
                Some(Out::Frame(bytes)) => {
                    let write = async {
                        match codec {
                            Codec::MsgPack => session.binary(bytes).await,
                            // JSON frames are UTF-8 (serde_json writes nothing else).
                            Codec::Json => match bytestring::ByteString::try_from(bytes) {
                                Ok(text) => session.text(text).await,
                                Err(_) => Ok(()),
                            },
                        }
                    };
                    // A peer that does not read blocks the write; an urgent close still wins.
                    let urgent = {
                        tokio::pin!(write);
                        loop {
                            tokio::select! {
                                biased;
                                c = ctl.recv(), if ctl_open => match c {
                                    Some(Ctl::CloseNow(code, reason)) => break Some((code, reason)),
                                    Some(_) => {}
                                    None => ctl_open = false,
                                },
                                r = &mut write => {
                                    if r.is_err() {
                                        return;
                                    }
                                    break None;
                                }
                            }
                        }
                    };
                    if let Some((code, reason)) = urgent {
                        return close(session, code, reason).await;
                    }
                }
                Some(Out::Close(code, reason)) => return close(session, code, reason).await,
                None => return close(session, 1000, String::new()).await,
            },
        }
    }
}

fn to_inbound(item: Result<AggregatedMessage, ProtocolError>) -> Option<Inbound> {
    Some(match item {
        Ok(AggregatedMessage::Text(t)) => Inbound::Frame(t.into_bytes()),
        Ok(AggregatedMessage::Binary(b)) => Inbound::Frame(b),
        Ok(AggregatedMessage::Ping(p)) => Inbound::Ping(p),
        Ok(AggregatedMessage::Pong(_)) => Inbound::Pong,
        Ok(AggregatedMessage::Close(_)) => Inbound::Closed,
        Err(ProtocolError::Overflow) => Inbound::TooLarge,
        Err(e) => Inbound::Invalid(e.to_string()),
    })
}

/// Picks the codec: the first offered subprotocol we speak, else `?format=`, else JSON.
fn negotiate<'a>(
    mut subprotocols: impl Iterator<Item = &'a str>,
    format: Option<&str>,
) -> Result<(Codec, Option<&'static str>), ApiError> {
    if let Some(codec) = subprotocols.find_map(Codec::from_subprotocol) {
        return Ok((codec, Some(codec.subprotocol())));
    }
    match format {
        None => Ok((Codec::Json, None)),
        Some(f) => Codec::from_format(f)
            .map(|c| (c, None))
            .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "format must be json or msgpack")),
    }
}

pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "this node is draining; connect to another",
        ));
    }
    let query = web::Query::<WsQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let offered = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    let (codec, subprotocol) = negotiate(offered, query.format.as_deref())?;
    let token = query
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| bearer(&req).map(str::to_string));
    let locale = state.texts.negotiate(
        None,
        req.headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let (mut response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("not a WebSocket upgrade: {e}"),
        )
    })?;
    if let Some(p) = subprotocol {
        response
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    let limits = &state.config.limits;
    let inbound = stream
        .max_frame_size(limits.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_frame_bytes)
        .filter_map(|item| std::future::ready(to_inbound(item)));
    let (frames_tx, frames_rx) = mpsc::channel(limits.ws_outbound_queue);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    actix_rt::spawn(writer(session, frames_rx, ctl_rx, codec));
    let outlet = Box::new(WsOutlet {
        frames: frames_tx,
        ctl: ctl_tx,
    });
    let session = new_session(&state, codec, outlet, Hello { token, locale });
    SessionActor::create(move |ctx| {
        ctx.add_stream(inbound);
        session
    });
    Ok(response)
}

/// A session actor of this node, not yet started.
fn new_session(
    state: &AppState,
    codec: Codec,
    outlet: Box<dyn Outlet + Sync>,
    hello: Hello,
) -> SessionActor {
    SessionActor::new(
        codec,
        outlet,
        state.ports.clone(),
        state.registry.clone(),
        state.directory.clone(),
        state.session_config.clone(),
        hello,
    )
}

/// Whether a fresh connection's first request is `GET /ws` (peeked, nothing consumed).
pub async fn is_upgrade(stream: &TcpStream) -> bool {
    handshake::peek_path(stream, crate::openapi::WS_PATH).await
}

/// The socket as the session actor sees it, on the lean transport.
struct LeanOutlet(Outbox);

impl Outlet for LeanOutlet {
    fn send(&self, frame: Bytes) -> Result<(), OutletFull> {
        self.0.send(frame).map_err(|_| OutletFull)
    }

    fn send_batch(&self, frames: &mut dyn Iterator<Item = Bytes>) -> Result<(), OutletFull> {
        self.0.send_batch(frames).map_err(|_| OutletFull)
    }

    fn ping(&self) {
        self.0.ping();
    }

    fn send_pong(&self, payload: Bytes) {
        self.0.pong(payload);
    }

    fn close(&self, code: u16, reason: &str) {
        self.0.close(code, reason);
    }
}

/// What a valid upgrade request asks for.
struct Upgrade {
    codec: Codec,
    subprotocol: Option<&'static str>,
    token: Option<String>,
    /// The language of the session's texts until its account is known.
    locale: &'static str,
}

fn check_upgrade(head: &Head, state: &AppState) -> Result<(Upgrade, String), ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "this node is draining; connect to another",
        ));
    }
    let query = web::Query::<WsQuery>::from_query(head.query.as_deref().unwrap_or(""))
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let (codec, subprotocol) = negotiate(
        head.header_tokens("sec-websocket-protocol"),
        query.format.as_deref(),
    )?;
    let token = query.token.filter(|t| !t.is_empty()).or_else(|| {
        head.header("authorization")
            .and_then(crate::api::bearer_token)
            .map(str::to_string)
    });
    let key = head.websocket_key().map_err(|e| {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("not a WebSocket upgrade: {e}"),
        )
    })?;
    let upgrade = Upgrade {
        codec,
        subprotocol,
        token,
        locale: locale_of(head, state),
    };
    Ok((upgrade, key.to_string()))
}

/// The language of a connection's texts until its account is known.
fn locale_of(head: &Head, state: &AppState) -> &'static str {
    state.texts.negotiate(None, head.header("accept-language"))
}

/// Answers a refused upgrade with the API's error body (in `locale`) and closes the connection.
async fn refuse(stream: &mut TcpStream, err: &ApiError, locale: &str, state: &AppState) -> u16 {
    let status = err.0.code.http_status();
    let err = state.texts.error(locale, &err.0);
    let body = serde_json::to_vec(&serde_json::json!({ "error": err })).unwrap_or_default();
    let answer = handshake::response(
        status,
        "application/json",
        &body,
        &[
            ("x-content-type-options", "nosniff"),
            ("cache-control", "no-store"),
        ],
    );
    if handshake::write_all(stream, &answer, ANSWER_TIMEOUT)
        .await
        .is_ok()
    {
        handshake::linger(stream, LINGER).await;
    }
    status
}

/// Serves a connection whose first request is `GET /ws` on the lean transport: the upgrade,
/// then the session until the socket closes.
pub async fn serve_socket(stream: TcpStream, state: web::Data<AppState>) {
    // The handshake's state (head buffers, timers) lives in its own allocation, freed before
    // the socket is driven: what a connection's task keeps for its lifetime is only the drive.
    let Some((stream, rest, upgrade)) = Box::pin(handshake_phase(stream, &state)).await else {
        return;
    };
    let limits = &state.config.limits;
    let outbox = Outbox::new(limits.ws_outbound_queue);
    let outlet = Box::new(LeanOutlet(outbox.clone()));
    let Upgrade {
        codec,
        token,
        locale,
        ..
    } = upgrade;
    let session = new_session(&state, codec, outlet, Hello { token, locale });
    let session = SessionActor::create(move |_| session);
    let settings = Settings {
        max_message: limits.max_frame_bytes,
        binary: codec == Codec::MsgPack,
    };
    drop(state);
    let reader = session.clone();
    dovie_transport::drive(stream, rest, outbox, settings, move |item| {
        reader.do_send(FromSocket(from_transport(item)));
    })
    .await;
    // The socket is gone (a failed write ends it without a read): make sure the session knows.
    session.do_send(FromSocket(Inbound::Closed));
}

/// Reads and checks the upgrade request and answers it: `101` (then the socket, the bytes read
/// past the head, and what was asked for) or an error response (then `None`).
async fn handshake_phase(
    mut stream: TcpStream,
    state: &AppState,
) -> Option<(TcpStream, bytes::BytesMut, Upgrade)> {
    let started = std::time::Instant::now();
    let record = |status: u16| {
        crate::metrics::http_request(crate::openapi::WS_PATH, "GET", status, started.elapsed());
    };
    let head = match handshake::read_head(&mut stream, HEAD_TIMEOUT).await {
        Ok(head) => head,
        Err(HeadError::TooLarge) => {
            let err = ApiError::new(ErrorCode::BadRequest, "request head too large");
            let locale = state.texts.default_locale();
            record(refuse(&mut stream, &err, locale, state).await);
            return None;
        }
        Err(e) => {
            tracing::debug!(error = %e, "no upgrade request");
            return None;
        }
    };
    let (upgrade, key) = match check_upgrade(&head, state) {
        Ok(u) => u,
        Err(err) => {
            let locale = locale_of(&head, state);
            record(refuse(&mut stream, &err, locale, state).await);
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let answer = handshake::switching_protocols(&key, upgrade.subprotocol);
    handshake::write_all(&mut stream, &answer, ANSWER_TIMEOUT)
        .await
        .ok()?;
    record(101);
    Some((stream, head.rest, upgrade))
}

fn from_transport(item: dovie_transport::Inbound) -> Inbound {
    use dovie_transport::Inbound as T;
    match item {
        T::Frame(b) => Inbound::Frame(b),
        T::Ping(p) => Inbound::Ping(p),
        T::Pong => Inbound::Pong,
        T::TooLarge => Inbound::TooLarge,
        T::Invalid(e) => Inbound::Invalid(e),
        T::Closed => Inbound::Closed,
    }
}
