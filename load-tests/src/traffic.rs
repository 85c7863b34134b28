//! The scenarios themselves: set-up over REST, sessions over the WebSocket, traffic phases with
//! windows and pacing, and the tally of what came back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::report;
use crate::scan::{self, FrameKind};
use crate::scenario::{Kind, Scenario};
use crate::targets::{Target, TargetKind};
use crate::wire::{self, Incoming, Reader, Socket, Writer};

const SUBPROTOCOL: &str = "dovie.msgpack.v1";
/// Parallel REST set-up connections.
const SETUP_CONNECTIONS: usize = 16;
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Metrics a report quotes (their change over a phase).
const QUOTED_SERIES: &[&str] = &[
    "dovie_send_durable_seconds_count",
    "dovie_send_durable_seconds_sum",
    "dovie_send_delivered_seconds_count",
    "dovie_send_delivered_seconds_sum",
    "dovie_ws_events_total{type=\"new_message\"}",
    "dovie_store_op_seconds_count",
    "dovie_store_writer_seconds_count",
    "dovie_store_writer_seconds_sum",
    "dovie_store_commit_jobs_count",
    "dovie_store_commit_jobs_sum",
    "dovie_replays_total",
    "dovie_ws_commands_total{type=\"send_message\"}",
];

/// Traffic phases run so far (part of every nonce).
static PHASES: AtomicU64 = AtomicU64::new(0);

/// One REST-created user.
#[derive(Clone)]
pub(crate) struct User {
    pub id: String,
    pub token: String,
}

// ---------------------------------------------------------------- set-up over REST

pub(crate) async fn register_users(
    target: &Target,
    n: usize,
    sources: usize,
) -> Result<Vec<User>, String> {
    let run = format!("{}-{}", std::process::id(), target.addr.port());
    let next = Arc::new(AtomicUsize::new(0));
    let out: Arc<Mutex<Vec<Option<User>>>> = Arc::new(Mutex::new(vec![None; n]));
    let mut tasks = Vec::new();
    for c in 0..SETUP_CONNECTIONS.min(n) {
        let (next, out, run, addr) = (next.clone(), out.clone(), run.clone(), target.addr);
        tasks.push(tokio::spawn(async move {
            let mut http = wire::Http::connect(wire::source(c, sources), addr)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), String>(());
                }
                let body = json!({
                    "email": format!("load-{run}-{i}@load.test"),
                    "password": "load-test-password",
                    "display_name": format!("u{i}"),
                });
                let (status, v) = http
                    .call("POST", "/api/auth/register", None, Some(&body))
                    .await
                    .map_err(|e| e.to_string())?;
                let (Some(id), Some(token)) =
                    (v["user"]["id"].as_str(), v["access_token"].as_str())
                else {
                    return Err(format!("register answered {status}: {v}"));
                };
                out.lock()[i] = Some(User {
                    id: id.to_string(),
                    token: token.to_string(),
                });
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let users = std::mem::take(&mut *out.lock());
    users
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "a registration is missing".into())
}

/// Creates one group of `owner` and `members`; answers its id.
pub(crate) async fn create_group(
    target: &Target,
    owner: &User,
    members: &[User],
) -> Result<String, String> {
    // A create names at most 100 members; the rest join 100 at a time.
    const PER_CALL: usize = 100;
    let first = members.len().min(PER_CALL);
    let mut all = vec![owner.clone()];
    all.extend_from_slice(&members[..first]);
    let room = create_rooms(target, &all, all.len())
        .await?
        .pop()
        .ok_or_else(|| "no room was created".to_string())?;
    let mut http = wire::Http::connect(wire::source(0, 1), target.addr)
        .await
        .map_err(|e| e.to_string())?;
    for chunk in members[first..].chunks(PER_CALL) {
        let ids: Vec<&str> = chunk.iter().map(|u| u.id.as_str()).collect();
        let (status, v) = http
            .call(
                "POST",
                &format!("/api/chat-rooms/{room}/participants"),
                Some(&owner.token),
                Some(&json!({ "user_ids": ids })),
            )
            .await
            .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("add participants answered {status}: {v}"));
        }
    }
    Ok(room)
}

/// Creates one group per chunk of `members` users; answers the room ids.
async fn create_rooms(
    target: &Target,
    users: &[User],
    members: usize,
) -> Result<Vec<String>, String> {
    let mut http = wire::Http::connect(wire::source(0, 1), target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut rooms = Vec::new();
    for (i, chunk) in users.chunks(members).enumerate() {
        let ids: Vec<&str> = chunk[1..].iter().map(|u| u.id.as_str()).collect();
        let body = json!({"type": "group", "name": format!("load room {i}"), "member_ids": ids});
        let (status, v) = http
            .call(
                "POST",
                "/api/chat-rooms",
                Some(&chunk[0].token),
                Some(&body),
            )
            .await
            .map_err(|e| e.to_string())?;
        let id = v["room"]["id"]
            .as_str()
            .ok_or_else(|| format!("create room answered {status}: {v}"))?;
        rooms.push(id.to_string());
    }
    Ok(rooms)
}

/// Creates one company channel per chunk of `members` users: the chunk's first user makes a
/// business and its channel, the others subscribe (each with its own token, a few at a time);
/// answers the channels' room ids.
async fn create_channels(
    target: &Target,
    users: &[User],
    members: usize,
) -> Result<Vec<String>, String> {
    /// Subscriptions in flight at once.
    const AT_ONCE: usize = 16;
    let mut rooms = Vec::new();
    for (i, chunk) in users.chunks(members).enumerate() {
        let mut http = wire::Http::connect(wire::source(0, 1), target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let owner = &chunk[0];
        let (status, b) = http
            .call(
                "POST",
                "/api/business-profiles",
                Some(&owner.token),
                Some(&json!({"name": format!("load business {i}"), "category": "load", "description": "load test"})),
            )
            .await
            .map_err(|e| e.to_string())?;
        let business = b["business"]["id"]
            .as_str()
            .ok_or_else(|| format!("create business answered {status}: {b}"))?;
        let (status, c) = http
            .call(
                "POST",
                "/api/company-channels",
                Some(&owner.token),
                Some(&json!({"business_id": business, "name": format!("load channel {i}")})),
            )
            .await
            .map_err(|e| e.to_string())?;
        let (channel, room) = match (
            c["channel"]["id"].as_str(),
            c["channel"]["room_id"].as_str(),
        ) {
            (Some(ch), Some(r)) => (ch.to_string(), r.to_string()),
            _ => return Err(format!("create channel answered {status}: {c}")),
        };
        let subscribers = &chunk[1..];
        let per_task = subscribers.len().div_ceil(AT_ONCE).max(1);
        let tasks: Vec<_> = subscribers
            .chunks(per_task)
            .map(|part| {
                let (part, path, addr) = (
                    part.to_vec(),
                    format!("/api/company-channels/{channel}/subscribe"),
                    target.addr,
                );
                tokio::spawn(async move {
                    let mut http = wire::Http::connect(wire::source(0, 1), addr)
                        .await
                        .map_err(|e| e.to_string())?;
                    for u in &part {
                        let (status, v) = http
                            .call("POST", &path, Some(&u.token), None)
                            .await
                            .map_err(|e| e.to_string())?;
                        if status != 204 {
                            return Err(format!("subscribe answered {status}: {v}"));
                        }
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        rooms.push(room);
    }
    Ok(rooms)
}

// ---------------------------------------------------------------- frames

#[derive(Serialize)]
struct OutFrame<'a, D: Serialize> {
    t: &'a str,
    id: u64,
    d: D,
}

#[derive(Serialize)]
struct SendData<'a> {
    room_id: &'a str,
    content: &'a str,
    nonce: &'a str,
}

#[derive(Deserialize)]
struct InFrame {
    t: String,
    #[serde(default)]
    d: Option<InData>,
}

#[derive(Deserialize, Default)]
struct InData {
    #[serde(default)]
    message: Option<InMessage>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct InMessage {
    seq: u64,
}

fn encode<D: Serialize>(t: &str, id: u64, d: D) -> Vec<u8> {
    // unwrap: these frames are plain maps of strings and integers.
    #[allow(clippy::unwrap_used)]
    rmp_serde::to_vec_named(&OutFrame { t, id, d }).unwrap()
}

/// A latency histogram in µs, from 1 µs to 10 minutes at 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    // unwrap: constant, valid bounds.
    #[allow(clippy::unwrap_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

// ---------------------------------------------------------------- sessions

/// One open session and what it knows.
struct Session {
    reader: Reader,
    writer: Writer,
    room: usize,
    last_seq: u64,
}

/// Opens `paths.len()` sessions, `concurrency` at a time; Dovie sessions are authenticated
/// (token on the upgrade) before they count as open.
async fn open_sessions(
    target: &Target,
    specs: Vec<(String, usize)>,
    sc: &Scenario,
) -> Result<(Vec<Session>, f64), String> {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(sc.connect_concurrency));
    let dovie = target.kind == TargetKind::Dovie;
    let mut tasks = Vec::with_capacity(specs.len());
    for (i, (path, room)) in specs.into_iter().enumerate() {
        let (gate, addr, sources) = (gate.clone(), target.addr, sc.sources);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            let from = wire::source(i, sources);
            open_one(from, addr, &path, dovie)
                .await
                .map(|s| Session {
                    reader: s.reader,
                    writer: s.writer,
                    room,
                    last_seq: 0,
                })
                .map_err(|e| format!("session {i}: {e}"))
        }));
    }
    let mut sessions = Vec::with_capacity(tasks.len());
    for t in tasks {
        sessions.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok((sessions, started.elapsed().as_secs_f64()))
}

async fn open_one(
    from: std::net::IpAddr,
    addr: SocketAddr,
    path: &str,
    dovie: bool,
) -> Result<Socket, String> {
    let subprotocol = dovie.then_some(SUBPROTOCOL);
    let mut s = tokio::time::timeout(
        SETUP_TIMEOUT,
        wire::websocket(from, addr, path, subprotocol),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    if dovie {
        wait_for(&mut s.reader, "auth_success").await?;
    }
    Ok(s)
}

/// Reads until a frame of type `t` (failing on a close or an auth error).
async fn wait_for(reader: &mut Reader, t: &str) -> Result<(), String> {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reader.next()).await {
            Err(_) => return Err(format!("no {t} in time")),
            Ok(None) => return Err(format!("disconnected before {t}")),
            Ok(Some(Incoming::Close(code))) => return Err(format!("closed ({code:?}) before {t}")),
            Ok(Some(Incoming::Ping(_))) => {}
            Ok(Some(Incoming::Message(b))) => {
                if let Ok(f) = rmp_serde::from_slice::<InFrame>(&b) {
                    if f.t == t {
                        return Ok(());
                    }
                    if f.t == "auth_error" {
                        return Err("auth_error".into());
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- traffic phases

/// What every reader adds to.
struct Tally {
    origin: Instant,
    deliveries: AtomicU64,
    acks: AtomicU64,
    sent: AtomicU64,
    last_delivery_us: AtomicU64,
    last_ack_us: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    latency: Mutex<Histogram<u64>>,
}

impl Tally {
    fn new() -> Arc<Tally> {
        Arc::new(Tally {
            origin: Instant::now(),
            deliveries: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            last_delivery_us: AtomicU64::new(0),
            last_ack_us: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(new_histogram()),
        })
    }

    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    fn error(&self, kind: String) {
        *self.errors.lock().entry(kind).or_default() += 1;
    }
}

/// The paced phases a rooms scenario runs after the saturated one, as fractions of its rate:
/// `rate_fractions`, and 0.5 for `half_rate_phase`, lowest load first.
fn paced_fractions(sc: &Scenario) -> Vec<f64> {
    let mut f: Vec<f64> = sc
        .rate_fractions
        .iter()
        .copied()
        .filter(|f| *f > 0.0 && *f <= 1.0)
        .collect();
    if sc.half_rate_phase && !f.contains(&0.5) {
        f.push(0.5);
    }
    f.sort_by(f64::total_cmp);
    f.dedup();
    f
}

/// `half_rate` for 0.5 (the name reports have always used), else `at_10pct` and the like.
fn phase_name(fraction: f64) -> String {
    if fraction == 0.5 {
        "half_rate".into()
    } else {
        format!("at_{:.0}pct", fraction * 100.0)
    }
}

/// A paced sender's schedule: its k-th send is due at `offset + k × step` from the start.
#[derive(Clone, Copy)]
struct Pace {
    step: Duration,
    offset: Duration,
}

/// One phase: every sender of every room sends its share; every member reads until it has
/// every message of its room (or the phase limit passes).
async fn phase(
    sessions: Vec<Session>,
    room_ids: &[String],
    sc: &Scenario,
    messages: usize,
    senders_per_room: usize,
    rate: f64,
) -> (Vec<Session>, Value) {
    let tally = Tally::new();
    let phase_id = PHASES.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(sc.phase_limit_secs);
    let total_senders = room_ids.len() * senders_per_room;
    let per_sender = messages / total_senders.max(1);
    let per_room = (per_sender * senders_per_room) as u64;
    let mut rank_in_room = vec![0usize; room_ids.len()];
    let mut tasks = Vec::with_capacity(sessions.len());
    let step = (rate > 0.0).then(|| Duration::from_secs_f64(total_senders as f64 / rate));
    let mut sender_index = 0usize;
    for (i, s) in sessions.into_iter().enumerate() {
        let rank = rank_in_room[s.room];
        rank_in_room[s.room] += 1;
        let sends = if rank < senders_per_room {
            per_sender
        } else {
            0
        };
        let room_id = room_ids[s.room].clone();
        let (tally, payload) = (tally.clone(), sc.payload_bytes);
        // Paced senders start spread over one step, so the total rate is even rather than
        // every sender firing at the same instants.
        let pace = step.map(|step| Pace {
            step,
            offset: step.mul_f64(sender_index as f64 / total_senders.max(1) as f64),
        });
        if sends > 0 {
            sender_index += 1;
        }
        let window = sc.window;
        tasks.push(tokio::spawn(async move {
            let id = (phase_id, i);
            session_phase(
                s, id, room_id, sends, per_room, window, pace, payload, tally, deadline,
            )
            .await
        }));
    }
    let mut back = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(s) = t.await {
            back.push(s);
        }
    }
    let secs = |us: u64| us as f64 / 1e6;
    let deliveries = tally.deliveries.load(Ordering::Relaxed);
    let acks = tally.acks.load(Ordering::Relaxed);
    let delivery_secs = secs(tally.last_delivery_us.load(Ordering::Relaxed));
    let ack_secs = secs(tally.last_ack_us.load(Ordering::Relaxed));
    let expected = per_room * sc.members as u64 * room_ids.len() as u64;
    let rate_of = |n: u64, s: f64| if s > 0.0 { (n as f64 / s).round() } else { 0.0 };
    let result = json!({
        "rate_asked": rate,
        "sent": tally.sent.load(Ordering::Relaxed),
        "acknowledged": acks,
        "deliveries": deliveries,
        "deliveries_expected": expected,
        "complete": deliveries == expected,
        "seconds": delivery_secs,
        "acked_per_sec": rate_of(acks, ack_secs),
        "deliveries_per_sec": rate_of(deliveries, delivery_secs),
        "latency": report::percentiles(&tally.latency.lock()),
        "errors": *tally.errors.lock(),
    });
    (back, result)
}

#[allow(clippy::too_many_arguments)]
async fn session_phase(
    s: Session,
    (phase_id, index): (u64, usize),
    room_id: String,
    sends: usize,
    expect: u64,
    window: usize,
    pace: Option<Pace>,
    payload: usize,
    tally: Arc<Tally>,
    deadline: Instant,
) -> Session {
    let Session {
        mut reader,
        writer,
        room,
        mut last_seq,
    } = s;
    let permits = Arc::new(Semaphore::new(window));
    // The receiver answers pings (the server drops peers it does not hear from); the sender
    // writes sends.
    let writer = Arc::new(tokio::sync::Mutex::new(writer));
    // Nonces are unique per phase (a repeated nonce is, rightly, not a new message).
    let nonce_prefix = format!("p{phase_id}-{index}-");
    let sender = {
        let (permits, tally, writer) = (permits.clone(), tally.clone(), writer.clone());
        let nonce_prefix = nonce_prefix.clone();
        async move {
            let started = Instant::now();
            let mut k = 0usize;
            while k < sends && Instant::now() < deadline {
                if let Some(Pace { step, offset }) = pace {
                    let due = started + offset + step.mul_f64(k as f64);
                    if due > deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                let Ok(p) = permits.acquire().await else {
                    break;
                };
                p.forget();
                let mut batch = 0u64;
                let mut writer = writer.lock().await;
                loop {
                    let stamp = tally.now_us();
                    let mut content = format!("{stamp} ");
                    while content.len() < payload {
                        content.push('x');
                    }
                    let nonce = format!("{nonce_prefix}{k}");
                    let d = SendData {
                        room_id: &room_id,
                        content: &content,
                        nonce: &nonce,
                    };
                    writer.push(&encode("send_message", k as u64, d));
                    k += 1;
                    batch += 1;
                    if k >= sends || pace.is_some() || batch >= window as u64 {
                        break;
                    }
                    match permits.try_acquire() {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    }
                }
                tally.sent.fetch_add(batch, Ordering::Relaxed);
                if writer.flush().await.is_err() {
                    tally.error("write failed".into());
                    break;
                }
            }
        }
    };
    let receiver = async {
        let (mut got, mut answered) = (0u64, 0u64);
        // Per session, merged into the tally once at the end (no lock per delivery).
        let mut latency = new_histogram();
        // Every message of the room, and an answer to every own send.
        while got < expect || answered < sends as u64 {
            let left = deadline.saturating_duration_since(Instant::now());
            let item = match tokio::time::timeout(left, reader.next()).await {
                Err(_) => {
                    tally.error("phase limit reached".into());
                    break;
                }
                Ok(None) => {
                    tally.error("disconnected".into());
                    break;
                }
                Ok(Some(i)) => i,
            };
            let bytes = match item {
                Incoming::Message(b) => b,
                Incoming::Ping(p) => {
                    let mut w = writer.lock().await;
                    w.push_pong(&p);
                    let _ = w.flush().await;
                    continue;
                }
                Incoming::Close(code) => {
                    tally.error(format!("closed {}", code.unwrap_or(1005)));
                    break;
                }
            };
            let (stamp, ack) = match scan::kind(&bytes) {
                FrameKind::NewMessage => {
                    if let Some(seq) = scan::uint_field(&bytes, "seq") {
                        last_seq = last_seq.max(seq);
                    }
                    (Some(scan::stamp(&bytes)), false)
                }
                // The relay's echo of a send frame; the sender's own echo is its ack.
                FrameKind::SendMessage => {
                    let own = scan::str_field(&bytes, "nonce")
                        .is_some_and(|n| n.starts_with(nonce_prefix.as_bytes()));
                    (Some(scan::stamp(&bytes)), own)
                }
                FrameKind::Reply => (None, true),
                FrameKind::Error => {
                    let code = scan::str_field(&bytes, "code")
                        .map(|c| String::from_utf8_lossy(c).into_owned());
                    tally.error(code.unwrap_or_else(|| "error".into()));
                    answered += 1;
                    permits.add_permits(1);
                    (None, false)
                }
                FrameKind::Other => (None, false),
            };
            if ack {
                answered += 1;
                tally.acks.fetch_add(1, Ordering::Relaxed);
                tally
                    .last_ack_us
                    .fetch_max(tally.now_us(), Ordering::Relaxed);
                permits.add_permits(1);
            }
            if let Some(stamp) = stamp {
                got += 1;
                let now = tally.now_us();
                tally.deliveries.fetch_add(1, Ordering::Relaxed);
                tally.last_delivery_us.fetch_max(now, Ordering::Relaxed);
                match stamp {
                    Some(sent) => {
                        let _ = latency.record(now.saturating_sub(sent).max(1));
                    }
                    None => tally.error("delivery without a stamp".into()),
                }
            }
        }
        let _ = tally.latency.lock().add(&latency);
        // The relay has no acks beyond the echo; make sure the sender can finish.
        permits.close();
    };
    tokio::join!(sender, receiver);
    // unwrap-free: both tasks are done, so this is the last handle.
    let writer = match Arc::try_unwrap(writer) {
        Ok(w) => w.into_inner(),
        Err(_) => unreachable!("the sender and receiver have finished"),
    };
    Session {
        reader,
        writer,
        room,
        last_seq,
    }
}

// ---------------------------------------------------------------- scenarios

pub async fn run_target(sc: &Scenario, target: &Target) -> Result<Value, String> {
    println!(
        "== {} on {} ({})",
        sc.name,
        target.kind.label(),
        target.addr
    );
    let mut out = match sc.kind {
        Kind::Idle => idle(sc, target).await?,
        Kind::Rooms => rooms(sc, target).await?,
        Kind::Storm => storm(sc, target).await?,
        Kind::Spray => crate::spray::run(sc, target).await?,
    };
    out["target"] = json!(target.kind.label());
    Ok(out)
}

async fn idle(sc: &Scenario, target: &Target) -> Result<Value, String> {
    let dovie = target.kind == TargetKind::Dovie;
    let users = if dovie {
        register_users(target, sc.users, sc.sources).await?
    } else {
        Vec::new()
    };
    let path = |i: usize| {
        if dovie {
            format!("/ws?token={}", users[i % users.len()].token)
        } else {
            format!("/relay?room=idle{}", i % sc.users)
        }
    };
    // One warm session first, so the baseline includes what any first session allocates.
    let (warm, _) = open_sessions(target, vec![(path(0), 0)], sc).await?;
    tokio::time::sleep(Duration::from_secs(sc.settle_secs)).await;
    let metrics_before = target.metrics().await;
    let before = target.rss_kib();
    let specs = (0..sc.sessions).map(|i| (path(i), 0)).collect();
    let (sessions, connect_secs) = open_sessions(target, specs, sc).await?;
    tokio::time::sleep(Duration::from_secs(sc.settle_secs)).await;
    let after = target.rss_kib();
    let metrics_after = target.metrics().await;
    let per_session = match (before, after) {
        (Some(b), Some(a)) => {
            json!(((a.saturating_sub(b)) as f64 * 1024.0 / sc.sessions as f64).round())
        }
        _ => Value::Null,
    };
    let result = json!({
        "idle": {
            "sessions": sessions.len(),
            "users": if dovie { sc.users } else { 0 },
            "connect_seconds": connect_secs,
            "connects_per_sec": (sessions.len() as f64 / connect_secs).round(),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "bytes_per_session": per_session,
        },
        "metrics": report::metric_deltas(&metrics_before, &metrics_after, &["dovie_ws_connections"]),
    });
    drop(sessions);
    drop(warm);
    Ok(result)
}

async fn rooms(sc: &Scenario, target: &Target) -> Result<Value, String> {
    let dovie = target.kind == TargetKind::Dovie;
    let (room_ids, paths) = if dovie {
        let users = register_users(target, sc.rooms * sc.members, sc.sources).await?;
        let room_ids = if sc.channel {
            create_channels(target, &users, sc.members).await?
        } else {
            create_rooms(target, &users, sc.members).await?
        };
        let paths: Vec<(String, usize)> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("/ws?token={}", u.token), i / sc.members))
            .collect();
        (room_ids, paths)
    } else {
        let room_ids: Vec<String> = (0..sc.rooms).map(|r| format!("r{r}")).collect();
        let paths = (0..sc.rooms * sc.members)
            .map(|i| (format!("/relay?room=r{}", i / sc.members), i / sc.members))
            .collect();
        (room_ids, paths)
    };
    let (sessions, connect_secs) = open_sessions(target, paths, sc).await?;
    let rss_connected = target.rss_kib();
    let m0 = target.metrics().await;
    println!(
        "   {} sessions open in {connect_secs:.1} s; saturated phase",
        sessions.len()
    );
    let (sessions, saturated) =
        phase(sessions, &room_ids, sc, sc.messages, sc.senders, sc.rate).await;
    let m1 = target.metrics().await;
    let mut out = json!({
        "sessions": sessions.len(),
        "connects_per_sec": (sessions.len() as f64 / connect_secs).round(),
        "rss_connected_kib": rss_connected,
        "saturated": saturated,
        "metrics_saturated": report::metric_deltas(&m0, &m1, QUOTED_SERIES),
    });
    let max = out["saturated"]["acked_per_sec"].as_f64().unwrap_or(0.0);
    let mut phases = vec![json!("saturated")];
    let (mut sessions, mut m_prev) = (sessions, m1);
    for fraction in paced_fractions(sc) {
        if max <= 0.0 {
            break;
        }
        let name = phase_name(fraction);
        println!("   {name} phase at {:.0} msg/s", max * fraction);
        let (back, result) = phase(
            sessions,
            &room_ids,
            sc,
            sc.messages,
            sc.senders,
            max * fraction,
        )
        .await;
        let m = target.metrics().await;
        out[&name] = result;
        out[format!("metrics_{name}")] = report::metric_deltas(&m_prev, &m, QUOTED_SERIES);
        out[&name]["server_send_delivered"] =
            report::bucket_quantiles(&m_prev, &m, "dovie_send_delivered_seconds");
        phases.push(json!(name));
        (sessions, m_prev) = (back, m);
    }
    drop(sessions);
    out["phases"] = Value::Array(phases);
    out["rss_after_kib"] = json!(target.rss_kib());
    Ok(out)
}

/// Every session drops at once while the rooms move on, then all resume together.
async fn storm(sc: &Scenario, target: &Target) -> Result<Value, String> {
    if target.kind != TargetKind::Dovie {
        return Err("the storm scenario needs Dovie (the relay has no resume)".into());
    }
    let users = register_users(target, sc.rooms * sc.members, sc.sources).await?;
    let room_ids = create_rooms(target, &users, sc.members).await?;
    let paths: Vec<(String, usize)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (format!("/ws?token={}", u.token), i / sc.members))
        .collect();
    let (sessions, connect_secs) = open_sessions(target, paths.clone(), sc).await?;
    println!(
        "   {} sessions open in {connect_secs:.1} s; warm traffic",
        sessions.len()
    );
    let (sessions, warm) = phase(sessions, &room_ids, sc, sc.messages, 1, 0.0).await;
    let last_seen: Vec<(usize, u64)> = sessions.iter().map(|s| (s.room, s.last_seq)).collect();
    drop(sessions);
    // While everyone is away, one fresh session per room sends what they will have missed.
    let senders: Vec<(String, usize)> = (0..sc.rooms)
        .map(|r| paths[r * sc.members].clone())
        .collect();
    let (senders, _) = open_sessions(target, senders, sc).await?;
    let mut missed_sc = sc.clone();
    missed_sc.members = 1;
    let (senders, missed) =
        phase(senders, &room_ids, &missed_sc, sc.missed * sc.rooms, 1, 0.0).await;
    drop(senders);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = target.metrics().await;
    println!("   storm: {} sessions resume at once", paths.len());
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(sc.connect_concurrency));
    let mut tasks = Vec::new();
    for (i, ((path, room), (_, after))) in paths.into_iter().zip(last_seen).enumerate() {
        let (gate, addr, sources) = (gate.clone(), target.addr, sc.sources);
        let (room_id, expect) = (room_ids[room].clone(), sc.missed as u64);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            resume_one(
                wire::source(i, sources),
                addr,
                &path,
                &room_id,
                after,
                expect,
            )
            .await
        }));
    }
    let mut replayed = 0u64;
    let mut exact = 0usize;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?;
    for t in tasks {
        match t.await.map_err(|e| e.to_string())? {
            Ok((n, in_order, at)) => {
                replayed += n;
                if in_order && n == sc.missed as u64 {
                    exact += 1;
                }
                let _ = hist.record(at.duration_since(started).as_micros().max(1) as u64);
            }
            Err(e) => *failures.entry(e).or_default() += 1,
        }
    }
    let all_secs = hist.max() as f64 / 1e6;
    let after = target.metrics().await;
    Ok(json!({
        "sessions": hist.len(),
        "connects_per_sec": (hist.len() as f64 / connect_secs).round(),
        "warm": warm,
        "missed_phase": missed,
        "storm": {
            "resumed": hist.len(),
            "failed": failures,
            "all_resumed_seconds": all_secs,
            "resume_time": report::percentiles(&hist),
            "replayed_events": replayed,
            "sessions_with_exactly_the_missed_seqs_in_order": exact,
        },
        "metrics_storm": report::metric_deltas(&before, &after, QUOTED_SERIES),
    }))
}

/// Reconnects, resumes one room from `after`, and reads the replay up to `resume_done`.
async fn resume_one(
    from: std::net::IpAddr,
    addr: SocketAddr,
    path: &str,
    room_id: &str,
    after: u64,
    expect: u64,
) -> Result<(u64, bool, Instant), String> {
    let mut s = open_one(from, addr, path, true).await?;
    let rooms: BTreeMap<&str, u64> = [(room_id, after)].into_iter().collect();
    let frame = encode("resume", 1, json!({ "rooms": rooms }));
    s.writer.send(&frame).await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let (mut n, mut next, mut in_order) = (0u64, after + 1, true);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = tokio::time::timeout(left, s.reader.next())
            .await
            .map_err(|_| "no resume_done in time".to_string())?
            .ok_or("disconnected during resume")?;
        let Incoming::Message(bytes) = item else {
            continue;
        };
        let Ok(f) = rmp_serde::from_slice::<InFrame>(&bytes) else {
            continue;
        };
        match f.t.as_str() {
            "new_message" => {
                if let Some(m) = f.d.and_then(|d| d.message) {
                    in_order &= m.seq == next;
                    next = m.seq + 1;
                    n += 1;
                }
            }
            "resume_done" => return Ok((n, in_order && n == expect, Instant::now())),
            "resync_required" => return Err("resync_required".into()),
            "error" => {
                return Err(format!(
                    "error {}",
                    f.d.and_then(|d| d.code).unwrap_or_default()
                ))
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- the table

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{f:.0}"),
        Some(f) => format!("{f:.2}"),
        None => "–".into(),
    }
}

/// The markdown table of a run.
pub fn table(sc: &Scenario, summary: &Value, command: &str) -> String {
    let m = &summary["machine"];
    let mut t = format!(
        "### {} ({})\n\nMachine: {} × {} cores, {} GiB, Linux {}. Command: `{command}`\n\n",
        sc.name,
        summary["kind"].as_str().unwrap_or(""),
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or("?"),
    );
    let targets = summary["targets"].as_array().cloned().unwrap_or_default();
    match sc.kind {
        Kind::Idle => {
            t += "| target | sessions | connects/s | RSS before | RSS after | bytes per idle session |\n|---|---|---|---|---|---|\n";
            for r in &targets {
                let i = &r["idle"];
                t += &format!(
                    "| {} | {} | {} | {} KiB | {} KiB | {} |\n",
                    r["target"].as_str().unwrap_or(""),
                    num(&i["sessions"]),
                    num(&i["connects_per_sec"]),
                    num(&i["rss_before_kib"]),
                    num(&i["rss_after_kib"]),
                    num(&i["bytes_per_session"]),
                );
            }
        }
        Kind::Rooms => {
            t += "| target | phase | sessions | sent | acked/s | deliveries/s | p50 ms | p90 ms | p99 ms | p999 ms | max ms | node p99 ≤ ms | complete | errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
            for r in &targets {
                let phases: Vec<&str> = match r["phases"].as_array() {
                    Some(p) => p.iter().filter_map(Value::as_str).collect(),
                    None => vec!["saturated", "half_rate"],
                };
                for phase in phases {
                    let p = &r[phase];
                    if p.is_null() {
                        continue;
                    }
                    let l = &p["latency"];
                    t += &format!(
                        "| {} | {phase} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                        r["target"].as_str().unwrap_or(""),
                        num(&r["sessions"]),
                        num(&p["sent"]),
                        num(&p["acked_per_sec"]),
                        num(&p["deliveries_per_sec"]),
                        num(&l["p50_ms"]),
                        num(&l["p90_ms"]),
                        num(&l["p99_ms"]),
                        num(&l["p999_ms"]),
                        num(&l["max_ms"]),
                        num(&p["server_send_delivered"]["p99_ms_at_most"]),
                        p["complete"],
                        p["errors"],
                    );
                }
            }
            if let Some(floor) = targets.iter().find(|r| r["target"] == "cql-floor") {
                t += "\nThe same CQL server, before the node, with nothing but inserts:\n\n| target | load | written | rate | p50 / p99 / max | |\n|---|---|---|---|---|---|\n";
                t += &crate::floor::row(floor);
                if let Some(share) = summary["ratios"]["durable_share_of_cql_floor"].as_f64() {
                    t += &format!(
                        "\nDovie's durable rate is **{:.1} %** of the bare writer's.\n",
                        share * 100.0
                    );
                }
            }
            if let Some(r) = summary["ratios"]["deliveries_per_sec"].as_f64() {
                t += &format!(
                    "\nDovie's saturated deliveries/s as a share of the bare relay's: **{:.0}%**\n",
                    r * 100.0
                );
            }
        }
        Kind::Spray => t += &crate::spray::table(summary),
        Kind::Storm => {
            t += "| sessions | all resumed in | resume p50 ms | p99 ms | replayed events | exact sessions | failed |\n|---|---|---|---|---|---|---|\n";
            for r in &targets {
                let s = &r["storm"];
                t += &format!(
                    "| {} | {} s | {} | {} | {} | {} | {} |\n",
                    num(&s["resumed"]),
                    num(&s["all_resumed_seconds"]),
                    num(&s["resume_time"]["p50_ms"]),
                    num(&s["resume_time"]["p99_ms"]),
                    num(&s["replayed_events"]),
                    num(&s["sessions_with_exactly_the_missed_seqs_in_order"]),
                    s["failed"],
                );
                t += &format!("\nServer series over the storm: `{}`\n", r["metrics_storm"]);
            }
        }
    }
    t
}
