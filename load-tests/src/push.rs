//! The push benchmark (`dovie-load push`): a message to a room of 2,000 other members, every one
//! offline and subscribed to Web Push, against a push service sink on loopback.
//!
//! 1. The room's send rate with nobody subscribed (the baseline): `sends` messages over
//!    `connections` REST connections at once.
//! 2. Everyone subscribes. One message: the time from its send to the sink accepting each of its
//!    2,000 pushes — encrypted (`aes128gcm`) and VAPID-signed by the node, each request checked
//!    for its encoding, `TTL`, VAPID `Authorization` and a body that can hold an `aes128gcm`
//!    record (the integration tests decrypt and verify them; here the sink stays cheap, as a
//!    push service on another machine costs the node nothing).
//! 3. The room's send rate again, now that every message pushes 2,000 devices, while the node
//!    works through those pushes; and how long until every one of them was accepted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::targets::{Bins, Target};
use crate::traffic::{create_group, register_users, User};
use crate::wire::{self, Http};

/// A whole run's bound.
const RUN_TIMEOUT: Duration = Duration::from_secs(1500);
/// How long pushes may take to be accepted before the run calls it failed.
const PUSHES_TIMEOUT: Duration = Duration::from_secs(900);
/// The P-256 generator point, uncompressed: a valid browser key (the sink does not decrypt).
const BROWSER_KEY: &str =
    "BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
/// The smallest `aes128gcm` body: an 86-byte header and one 17-byte record (a delimiter and the
/// 16-byte tag).
const MIN_AES128GCM_BYTES: usize = 86 + 17;

/// What the push benchmark measures.
pub struct Plan {
    /// Members besides the sender.
    pub members: usize,
    /// Messages of each send-rate phase.
    pub sends: usize,
    /// REST connections sending at once.
    pub connections: usize,
    /// Wait only this long for the pushes of the send-rate phase (`None`: until all).
    pub drain_secs: Option<u64>,
}

/// The push service sink: counts accepted pushes with their arrival times.
#[derive(Default)]
struct Sink {
    accepted: AtomicU64,
    refused: AtomicU64,
    arrivals: Mutex<Vec<Instant>>,
}

async fn receive(req: HttpRequest, sink: web::Data<Arc<Sink>>, body: web::Bytes) -> HttpResponse {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let ok = h("content-encoding") == Some("aes128gcm")
        && h("ttl").is_some_and(|t| t.parse::<u32>().is_ok())
        && h("authorization").is_some_and(|a| a.starts_with("vapid t=") && a.contains(", k="))
        && body.len() >= MIN_AES128GCM_BYTES;
    if !ok {
        sink.refused.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::BadRequest().finish();
    }
    sink.arrivals.lock().push(Instant::now());
    sink.accepted.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Created().finish()
}

/// Starts the sink on its own thread; answers its address.
fn start_sink(sink: Arc<Sink>) -> Result<(SocketAddr, actix_web::dev::ServerHandle), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(sink.clone()))
                    .route("/push/{id}", web::post().to(receive))
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0));
            let server = match server {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let addr = server.addrs()[0];
            let server = server.run();
            let _ = tx.send(Ok((addr, server.handle())));
            let _ = server.await;
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("the push sink did not start: {e}"))?
}

/// Sends `n` messages from `sender` over `connections` connections; answers messages/s.
async fn send_burst(
    target: &Target,
    sender: &User,
    room: &str,
    n: usize,
    connections: usize,
    tag: &str,
) -> Result<f64, String> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (next, addr, token) = (next.clone(), target.addr, sender.token.clone());
        let (room, tag) = (room.to_string(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(wire::source(c, 1), addr)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<(), String>(());
                }
                let body = json!({"content": format!("{tag} message {i}")});
                let (s, v) = http
                    .call(
                        "POST",
                        &format!("/api/chat-rooms/{room}/messages"),
                        Some(&token),
                        Some(&body),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                if s != 201 {
                    return Err(format!("send answered {s}: {v}"));
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Waits until the sink has accepted `total` pushes; answers when the last one arrived.
async fn until_accepted(sink: &Sink, total: u64) -> Result<Instant, String> {
    let deadline = Instant::now() + PUSHES_TIMEOUT;
    while sink.accepted.load(Ordering::Relaxed) < total {
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {total} pushes accepted, {} refused, after {} s",
                sink.accepted.load(Ordering::Relaxed),
                sink.refused.load(Ordering::Relaxed),
                PUSHES_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(sink.arrivals.lock()[total as usize - 1])
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

pub async fn run(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    tokio::time::timeout(RUN_TIMEOUT, run_inner(bins, config, plan))
        .await
        .map_err(|_| "the push benchmark did not finish in time".to_string())?
}

async fn run_inner(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    let sink = Arc::new(Sink::default());
    let (sink_addr, sink_handle) = start_sink(sink.clone())?;
    let env = [
        ("DOVIE_EGRESS__ALLOW_PRIVATE_ADDRESSES", "true"),
        ("DOVIE_PUSH__ALLOWED_ENDPOINT_HOSTS", "[\"127.0.0.1\"]"),
    ];
    let dovie = Target::start_dovie_env(bins, config, &env).await?;
    let users = register_users(&dovie, plan.members + 1, 1).await?;
    let room = create_group(&dovie, &users[0], &users[1..]).await?;
    let sender = &users[0];

    // 1. Nobody subscribed.
    let warm = send_burst(
        &dovie,
        sender,
        &room,
        plan.sends,
        plan.connections,
        "warm-up",
    )
    .await?;
    let baseline = send_burst(
        &dovie,
        sender,
        &room,
        plan.sends,
        plan.connections,
        "baseline",
    )
    .await?;

    // 2. Everyone subscribes; one message.
    let mut http = Http::connect(wire::source(0, 1), dovie.addr)
        .await
        .map_err(|e| e.to_string())?;
    for (i, u) in users[1..].iter().enumerate() {
        let body = json!({
            "endpoint": format!("http://{sink_addr}/push/{i}"),
            "keys": {"p256dh": BROWSER_KEY, "auth": "AAECAwQFBgcICQoLDA0ODw"},
        });
        let (s, v) = http
            .call("POST", "/api/push-subscribe", Some(&u.token), Some(&body))
            .await
            .map_err(|e| e.to_string())?;
        if s != 201 {
            return Err(format!("subscribe answered {s}: {v}"));
        }
    }
    let members = plan.members as u64;
    let sent_at = Instant::now();
    send_burst(&dovie, sender, &room, 1, 1, "one").await?;
    let acked = sent_at.elapsed();
    let last = until_accepted(&sink, members).await?;
    let first = sink.arrivals.lock()[0];
    let one = json!({
        "pushes": members,
        "send_acked_ms": ms(acked),
        "first_push_ms": ms(first - sent_at),
        "all_pushes_ms": ms(last - sent_at),
        "refused": sink.refused.load(Ordering::Relaxed),
    });

    // 3. Sends while every message pushes everyone.
    let before = sink.accepted.load(Ordering::Relaxed);
    let burst_at = Instant::now();
    let with_push = send_burst(
        &dovie,
        sender,
        &room,
        plan.sends,
        plan.connections,
        "pushed",
    )
    .await?;
    let total = before + members * plan.sends as u64;
    let (accepted, drain_secs) = match plan.drain_secs {
        None => {
            let drained = until_accepted(&sink, total).await?;
            (total - before, (drained - burst_at).as_secs_f64())
        }
        Some(secs) => {
            // Only a window of the drain: what was accepted by then.
            tokio::time::sleep_until((burst_at + Duration::from_secs(secs)).into()).await;
            let n = sink.accepted.load(Ordering::Relaxed) - before;
            (n, burst_at.elapsed().as_secs_f64())
        }
    };
    let metrics = dovie.metrics().await;
    drop(dovie);
    drop(sink_handle.stop(false));
    Ok(json!({
        "members": plan.members,
        "sends": plan.sends,
        "connections": plan.connections,
        "send_rate": {
            "warm_up_per_sec": warm.round(),
            "without_push_per_sec": baseline.round(),
            "with_push_per_sec": with_push.round(),
            "with_push_share": (with_push / baseline * 100.0).round(),
        },
        "one_message": one,
        "burst": {
            "pushes": members * plan.sends as u64,
            "accepted": accepted,
            "accepted_within_secs": (drain_secs * 100.0).round() / 100.0,
            "pushes_per_sec": (accepted as f64 / drain_secs).round(),
            "refused": sink.refused.load(Ordering::Relaxed),
        },
        "node_push_jobs": metrics
            .iter()
            .filter(|(k, _)| k.starts_with("dovie_push_jobs_total"))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
    }))
}

pub fn table(s: &Value) -> String {
    let d = &s["result"];
    format!(
        "| measure | value |\n| --- | --- |\n\
         | room members besides the sender, all offline and subscribed | {m} |\n\
         | one message: send acknowledged | {ack} ms |\n\
         | one message: first push accepted by the service | {first} ms |\n\
         | one message: all {m} pushes accepted | **{all} ms** |\n\
         | send rate without push ({n} sends, {c} connections) | {base}/s |\n\
         | send rate while every message pushes {m} devices | {with}/s (**{share} %**) |\n\
         | of those {pushes} pushes, accepted | {accepted} within {drain} s ({pps} pushes/s) |\n\
         | pushes refused by the sink | {refused} |\n",
        m = d["members"],
        ack = d["one_message"]["send_acked_ms"],
        first = d["one_message"]["first_push_ms"],
        all = d["one_message"]["all_pushes_ms"],
        n = d["sends"],
        c = d["connections"],
        base = d["send_rate"]["without_push_per_sec"],
        with = d["send_rate"]["with_push_per_sec"],
        share = d["send_rate"]["with_push_share"],
        pushes = d["burst"]["pushes"],
        accepted = d["burst"]["accepted"],
        drain = d["burst"]["accepted_within_secs"],
        pps = d["burst"]["pushes_per_sec"],
        refused = d["burst"]["refused"],
    )
}
