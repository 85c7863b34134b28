//! The `/ws` upgrade: codec negotiation (subprotocol, then `?format=`), the token on the upgrade
//! (`?token=` or `Authorization: Bearer`), and the socket plumbing of a session — the inbound
//! frame stream handed to the [`SessionActor`] and the [`Outlet`] writer task that owns the write
//! half with a bounded queue.

use std::time::Duration;

use actix::{Actor, AsyncContext};
use actix_web::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use bytes::Bytes;
use dovie_actors::ports::{Outlet, OutletFull};
use dovie_actors::session::Inbound;
use dovie_actors::SessionActor;
use dovie_protocol::error::ErrorCode;
use dovie_protocol::Codec;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::api::{bearer, ApiError};
use crate::state::AppState;

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

/// Picks the codec: the first subprotocol we speak, else `?format=`, else JSON.
fn negotiate(
    req: &HttpRequest,
    format: Option<&str>,
) -> Result<(Codec, Option<&'static str>), ApiError> {
    let offered = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(Codec::from_subprotocol);
    if let Some(codec) = offered {
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
    let (codec, subprotocol) = negotiate(&req, query.format.as_deref())?;
    let token = query
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| bearer(&req).map(str::to_string));
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
    let (ports, registry, directory, config) = (
        state.ports.clone(),
        state.registry.clone(),
        state.directory.clone(),
        state.session_config.clone(),
    );
    SessionActor::create(move |ctx| {
        ctx.add_stream(inbound);
        SessionActor::new(codec, outlet, ports, registry, directory, config, token)
    });
    Ok(response)
}
