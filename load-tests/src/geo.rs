//! The location benchmark (`dovie-load geo`), through the node's public interface:
//!
//! - **nearby**: `users` accounts opted in to "nearby" across a 55 × 55 km city, then `queries`
//!   `GET /api/nearby-users` (5 km) from opted-in users at their own places: latency.
//! - **rooms**: `rooms` location rooms across the same city, then `queries` discoveries (5 km).
//! - **live**: the send latency of a busy room (one sender, a message every 20 ms, acknowledged
//!   over the socket) first with `shares` sharers connected and idle, then with each moving its
//!   live share every 2 s over its own socket (members of 10-member rooms hear every move).
//!
//! On the embedded store by default; with `--scylla HOST:PORT` a node on the CQL store with
//! `--bus redis` and a Redis of its own (so "nearby" runs on Redis GEO). Loopback only; every
//! phase is bounded in count and time.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::report;
use crate::targets::{Bins, Target};
use crate::wire::{self, Http, Incoming};

/// HTTP connections the set-up uses at once.
const SETUP_CONNECTIONS: usize = 32;
/// Connections the saturated queries use at once (the latency runs use one).
const SATURATING_CONNECTIONS: usize = 4;
/// Queries one user makes (the node allows 60 searches a minute per user).
const QUERIES_PER_USER: usize = 10;
/// The city: south-west corner and side, degrees.
const CITY: (f64, f64, f64) = (37.30, 126.70, 0.5);
const SEARCH_RADIUS_M: u32 = 5_000;
const SHARERS_PER_ROOM: usize = 10;
const SEND_EVERY: Duration = Duration::from_millis(20);
const MOVE_EVERY: Duration = Duration::from_secs(2);
const RUN_TIMEOUT: Duration = Duration::from_secs(3_600);
const SUBPROTOCOL: &str = "dovie.msgpack.v1";

pub struct Plan {
    pub users: usize,
    pub rooms: usize,
    pub queries: usize,
    pub shares: usize,
    pub phase_secs: u64,
    /// A CQL contact point: run the node on the CQL store with a Redis bus.
    pub scylla: Option<String>,
}

struct Account {
    id: String,
    token: String,
    lat: f64,
    lon: f64,
}

/// A deterministic spread of places (the same city every run).
fn place(i: usize) -> (f64, f64) {
    let mut x = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    x ^= x >> 33;
    let a = (x & 0xffff_ffff) as f64 / u32::MAX as f64;
    let b = (x >> 32) as f64 / u32::MAX as f64;
    (CITY.0 + a * CITY.2, CITY.1 + b * CITY.2)
}

fn new_histogram() -> Histogram<u64> {
    // unwrap: constant, valid bounds.
    #[allow(clippy::unwrap_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

fn frame(t: &str, id: u64, d: Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&json!({ "t": t, "id": id, "d": d })).unwrap_or_default()
}

/// A Redis server of the benchmark's own on a free loopback port, killed when dropped.
struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Result<Redis, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    std::thread::sleep(Duration::from_millis(300));
    Ok(Redis {
        child,
        url: format!("redis://127.0.0.1:{port}"),
    })
}

/// Runs `n` jobs over `connections` keep-alive connections; answers their results in order.
async fn fan<T, F, Fut>(
    target: &Target,
    n: usize,
    connections: usize,
    job: F,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize, Http) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(T, Http), String>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections.min(n.max(1)) {
        let (next, job, addr) = (next.clone(), job.clone(), target.addr);
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(wire::source(c, 4), addr)
                .await
                .map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<_, String>(out);
                }
                let (t, h) = job(i, http).await?;
                http = h;
                out.push((i, t));
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

async fn call(
    http: &mut Http,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    http.call(method, path, token, body.as_ref())
        .await
        .map_err(|e| format!("{method} {path}: {e}"))
}

async fn populate(target: &Target, users: usize) -> Result<Vec<Account>, String> {
    let run = format!("{}-{}", std::process::id(), target.addr.port());
    fan(target, users, SETUP_CONNECTIONS, move |i, mut http| {
        let run = run.clone();
        async move {
            let body = json!({"email": format!("g{i}-{run}@bench.example"), "password": "correct horse battery", "display_name": format!("geo {i}")});
            let (s, v) = call(&mut http, "POST", "/api/auth/register", None, Some(body)).await?;
            if s != 201 {
                return Err(format!("register answered {s}: {v}"));
            }
            let token = v["access_token"].as_str().unwrap_or("").to_string();
            let id = v["user"]["id"].as_str().unwrap_or("").to_string();
            let (lat, lon) = place(i);
            let (s, v) = call(&mut http, "PUT", "/api/users/me/location", Some(&token), Some(json!({"lat": lat, "lon": lon}))).await?;
            if s != 204 {
                return Err(format!("publishing a place answered {s}: {v}"));
            }
            Ok((Account { id, token, lat, lon }, http))
        }
    })
    .await
}

/// What one run of searches measured.
struct Searches {
    latency: Histogram<u64>,
    mean_items: f64,
    per_sec: f64,
}

impl Searches {
    fn json(&self, connections: usize) -> Value {
        json!({
            "connections": connections, "latency": report::percentiles(&self.latency),
            "mean_items_answered": (self.mean_items * 10.0).round() / 10.0,
            "per_sec": self.per_sec.round(),
        })
    }
}

/// `queries` GETs of `path(account, i)` over `connections` connections, by users from `first`
/// on, [`QUERIES_PER_USER`] each; `key` names the answer's list.
async fn measure(
    target: &Target,
    accounts: &Arc<Vec<Account>>,
    (queries, connections, first): (usize, usize, usize),
    key: &'static str,
    path: fn(&Account, usize) -> String,
) -> Result<Searches, String> {
    let accounts = accounts.clone();
    let started = Instant::now();
    let results = fan(target, queries, connections, move |i, mut http| {
        let accounts = accounts.clone();
        async move {
            let a = &accounts[(first + i / QUERIES_PER_USER) % accounts.len()];
            let started = Instant::now();
            let (s, v) = call(&mut http, "GET", &path(a, i), Some(&a.token), None).await?;
            let us = started.elapsed().as_micros() as u64;
            if s != 200 {
                return Err(format!("a search answered {s}: {v}"));
            }
            let n = v[key].as_array().map_or(0, Vec::len);
            Ok(((us, n), http))
        }
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let mut latency = new_histogram();
    let mut total = 0usize;
    for (us, n) in &results {
        let _ = latency.record((*us).max(1));
        total += n;
    }
    Ok(Searches {
        latency,
        mean_items: total as f64 / results.len().max(1) as f64,
        per_sec: results.len() as f64 / secs.max(1e-9),
    })
}

async fn create_rooms(
    target: &Target,
    accounts: &Arc<Vec<Account>>,
    rooms: usize,
) -> Result<(), String> {
    let accounts = accounts.clone();
    fan(target, rooms, SETUP_CONNECTIONS, move |i, mut http| {
        let accounts = accounts.clone();
        async move {
            let a = &accounts[i % accounts.len()];
            let (lat, lon) = place(i + 7_000_000);
            let body =
                json!({"name": format!("place {i}"), "lat": lat, "lon": lon, "radius_m": 500});
            let (s, v) = call(
                &mut http,
                "POST",
                "/api/location-chat-rooms",
                Some(&a.token),
                Some(body),
            )
            .await?;
            if s != 201 {
                return Err(format!("creating a location room answered {s}: {v}"));
            }
            Ok(((), http))
        }
    })
    .await
    .map(drop)
}

async fn group(http: &mut Http, owner: &Account, members: &[String]) -> Result<String, String> {
    let body = json!({"type": "group", "name": "bench", "member_ids": members});
    let (s, v) = call(
        http,
        "POST",
        "/api/chat-rooms",
        Some(&owner.token),
        Some(body),
    )
    .await?;
    if s != 201 {
        return Err(format!("creating a group answered {s}: {v}"));
    }
    Ok(v["room"]["id"].as_str().unwrap_or("").to_string())
}

/// The sharers' shared state: whether to move, whether to stop, what they did.
#[derive(Default)]
struct Sharers {
    moving: AtomicBool,
    stop: AtomicBool,
    sent: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    heard: AtomicU64,
}

/// One sharer: its socket stays open (answering pings) until `stop`; while `moving`, it moves
/// its share every [`MOVE_EVERY`], starting at `offset`.
async fn sharer(
    addr: std::net::SocketAddr,
    source: usize,
    token: String,
    share: String,
    offset: Duration,
    counts: Arc<Sharers>,
) -> Result<(), String> {
    let path = format!("/ws?token={token}");
    let mut ws = wire::websocket(wire::source(source, 8), addr, &path, Some(SUBPROTOCOL))
        .await
        .map_err(|e| e.to_string())?;
    let mut next = tokio::time::Instant::now() + offset;
    let mut id = 0u64;
    while !counts.stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {
                next += MOVE_EVERY;
                if counts.moving.load(Ordering::Relaxed) {
                    id += 1;
                    let (lat, lon) = place(id as usize + source * 1000);
                    ws.writer.push(&frame("location_update", id, json!({"share_id": share, "lat": lat, "lon": lon})));
                    ws.writer.flush().await.map_err(|e| e.to_string())?;
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            incoming = ws.reader.next() => match incoming {
                Some(Incoming::Message(b)) => {
                    if memchr::memmem::find(&b, b"location_updated").is_some() {
                        counts.heard.fetch_add(1, Ordering::Relaxed);
                    }
                    if memchr::memmem::find(&b, b"reply").is_some() && memchr::memmem::find(&b, b"share_id").is_some() {
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                    } else if memchr::memmem::find(&b, b"\xa5error").is_some() {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Incoming::Ping(p)) => {
                    ws.writer.push_pong(&p);
                    ws.writer.flush().await.map_err(|e| e.to_string())?;
                }
                Some(Incoming::Close(_)) | None => return Err("a sharer's socket closed".into()),
            },
        }
    }
    Ok(())
}

/// The busy room's sender for `secs`: a message every [`SEND_EVERY`], each timed to its reply.
async fn sender(
    addr: std::net::SocketAddr,
    token: &str,
    room: &str,
    secs: u64,
    tag: &str,
) -> Result<Histogram<u64>, String> {
    let path = format!("/ws?token={token}");
    let mut ws = wire::websocket(wire::source(0, 1), addr, &path, Some(SUBPROTOCOL))
        .await
        .map_err(|e| e.to_string())?;
    let mut h = new_histogram();
    let mut pending: HashMap<u64, Instant> = HashMap::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut next = tokio::time::Instant::now();
    let mut id = 0u64;
    loop {
        let now = tokio::time::Instant::now();
        if now >= end && pending.is_empty() {
            break;
        }
        if now >= end + Duration::from_secs(10) {
            return Err(format!("{} sends were never acknowledged", pending.len()));
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next), if now < end => {
                next += SEND_EVERY;
                id += 1;
                let d = json!({"room_id": room, "content": format!("busy room {tag} {id}"), "nonce": format!("{tag}-{id}")});
                ws.writer.push(&frame("send_message", id, d));
                ws.writer.flush().await.map_err(|e| e.to_string())?;
                pending.insert(id, Instant::now());
            }
            incoming = ws.reader.next() => match incoming {
                Some(Incoming::Message(b)) => {
                    let v: Value = rmp_serde::from_slice(&b).unwrap_or(Value::Null);
                    if v["t"] == "reply" {
                        if let Some(sent) = v["id"].as_u64().and_then(|i| pending.remove(&i)) {
                            let _ = h.record((sent.elapsed().as_micros() as u64).max(1));
                        }
                    } else if v["t"] == "error" {
                        return Err(format!("a send was refused: {v}"));
                    }
                }
                Some(Incoming::Ping(p)) => {
                    ws.writer.push_pong(&p);
                    ws.writer.flush().await.map_err(|e| e.to_string())?;
                }
                Some(Incoming::Close(_)) | None => return Err("the sender's socket closed".into()),
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    Ok(h)
}

async fn live(target: &Target, accounts: &Arc<Vec<Account>>, plan: &Plan) -> Result<Value, String> {
    let n = plan.shares.min(accounts.len().saturating_sub(2));
    let sharers: Vec<&Account> = accounts.iter().rev().take(n).collect();
    let mut http = Http::connect(wire::source(1, 4), target.addr)
        .await
        .map_err(|e| e.to_string())?;
    // Rooms of ten sharers; each starts a live share in its room.
    let mut shares = Vec::new();
    for chunk in sharers.chunks(SHARERS_PER_ROOM) {
        let others: Vec<String> = chunk[1..].iter().map(|a| a.id.clone()).collect();
        let room = group(&mut http, chunk[0], &others).await?;
        for a in chunk {
            let body = json!({"lat": a.lat, "lon": a.lon, "live_seconds": 3600});
            let path = format!("/api/chat-rooms/{room}/location");
            let (s, v) = call(&mut http, "POST", &path, Some(&a.token), Some(body)).await?;
            if s != 201 {
                return Err(format!("starting a live share answered {s}: {v}"));
            }
            shares.push((
                a.token.clone(),
                v["share"]["id"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    let busy = group(&mut http, &accounts[0], &[accounts[1].id.clone()]).await?;
    let counts = Arc::new(Sharers::default());
    let mut tasks = Vec::new();
    for (i, (token, share)) in shares.into_iter().enumerate() {
        let offset = MOVE_EVERY * (i as u32) / (n.max(1) as u32);
        tasks.push(tokio::spawn(sharer(
            target.addr,
            i,
            token,
            share,
            offset,
            counts.clone(),
        )));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = sender(
        target.addr,
        &accounts[0].token,
        &busy,
        plan.phase_secs,
        "idle",
    )
    .await?;
    counts.moving.store(true, Ordering::Relaxed);
    tokio::time::sleep(MOVE_EVERY).await;
    let during = sender(
        target.addr,
        &accounts[0].token,
        &busy,
        plan.phase_secs,
        "moving",
    )
    .await?;
    counts.moving.store(false, Ordering::Relaxed);
    // The last moves' answers are still on their way.
    tokio::time::sleep(Duration::from_secs(1)).await;
    counts.stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    let ratio = |q: f64| {
        let (a, b) = (
            baseline.value_at_quantile(q) as f64,
            during.value_at_quantile(q) as f64,
        );
        (b / a.max(1.0) * 100.0).round() / 100.0
    };
    Ok(json!({
        "shares": n, "sharers_failed": failed, "phase_secs": plan.phase_secs,
        "send_every_ms": SEND_EVERY.as_millis() as u64,
        "baseline": report::percentiles(&baseline), "with_moves": report::percentiles(&during),
        "p50_ratio": ratio(0.5), "p99_ratio": ratio(0.99),
        "moves_sent": counts.sent.load(Ordering::Relaxed), "moves_ok": counts.ok.load(Ordering::Relaxed),
        "moves_refused": counts.refused.load(Ordering::Relaxed),
        "location_updated_heard": counts.heard.load(Ordering::Relaxed),
    }))
}

pub async fn run(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    tokio::time::timeout(RUN_TIMEOUT, run_inner(bins, config, plan))
        .await
        .map_err(|_| "the location benchmark did not finish in time".to_string())?
}

async fn run_inner(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    let mut _redis = None;
    let (store, extra) = match &plan.scylla {
        None => ("embedded", Vec::new()),
        Some(cql) => {
            let r = start_redis()?;
            let extra = vec![
                "--store".into(),
                "scylla".into(),
                "--scylla".into(),
                cql.clone(),
                "--keyspace".into(),
                format!("dovie_geo_{}", std::process::id()),
                "--bus".into(),
                "redis".into(),
                "--redis".into(),
                r.url.clone(),
                "--node-id".into(),
                "geo1".into(),
            ];
            _redis = Some(r);
            ("cql+redis", extra)
        }
    };
    let target = Target::start_dovie_args(bins, config, false, &extra).await?;
    let started = Instant::now();
    let accounts = populate(&target, plan.users).await?;
    let populate_secs = started.elapsed().as_secs_f64();
    let accounts = Arc::new(accounts);
    // One query at a time (latency), then four at once (the machine saturated), by other users.
    let nearby_path = |a: &Account, _: usize| {
        format!(
            "/api/nearby-users?lat={}&lon={}&radius_m={SEARCH_RADIUS_M}",
            a.lat, a.lon
        )
    };
    let users_per_run = plan.queries.div_ceil(QUERIES_PER_USER);
    let nearby = measure(
        &target,
        &accounts,
        (plan.queries, 1, 0),
        "users",
        nearby_path,
    )
    .await?;
    let nearby_sat = measure(
        &target,
        &accounts,
        (plan.queries, SATURATING_CONNECTIONS, users_per_run),
        "users",
        nearby_path,
    )
    .await?;
    let started = Instant::now();
    create_rooms(&target, &accounts, plan.rooms).await?;
    let rooms_secs = started.elapsed().as_secs_f64();
    let rooms_path = |_: &Account, i: usize| {
        let (lat, lon) = place(i + 9_000_000);
        format!("/api/location-chat-rooms?lat={lat}&lon={lon}&radius_m={SEARCH_RADIUS_M}")
    };
    let rooms = measure(
        &target,
        &accounts,
        (plan.queries, 1, 0),
        "rooms",
        rooms_path,
    )
    .await?;
    let rooms_sat = measure(
        &target,
        &accounts,
        (plan.queries, SATURATING_CONNECTIONS, users_per_run),
        "rooms",
        rooms_path,
    )
    .await?;
    let live = if plan.shares > 0 {
        live(&target, &accounts, plan).await?
    } else {
        Value::Null
    };
    Ok(json!({
        "store": store,
        "nearby": { "opted_in_users": plan.users, "populate_secs": (populate_secs * 10.0).round() / 10.0,
            "radius_m": SEARCH_RADIUS_M, "queries": plan.queries,
            "one_at_a_time": nearby.json(1), "saturated": nearby_sat.json(SATURATING_CONNECTIONS) },
        "rooms": { "location_rooms": plan.rooms, "create_secs": (rooms_secs * 10.0).round() / 10.0,
            "radius_m": SEARCH_RADIUS_M, "queries": plan.queries,
            "one_at_a_time": rooms.json(1), "saturated": rooms_sat.json(SATURATING_CONNECTIONS) },
        "live": live,
        "server_rss_kib": target.rss_kib(),
    }))
}

pub fn table(s: &Value) -> String {
    let r = &s["result"];
    let lat = |v: &Value| format!("{} / {} / {} ms", v["p50_ms"], v["p99_ms"], v["max_ms"]);
    let mut t = format!(
        "Store: {}\n\n| measure | p50 / p99 / max | note |\n|---|---|---|\n",
        r["store"].as_str().unwrap_or("?")
    );
    for (kind, what, count) in [
        ("nearby", "nearby query", "opted_in_users"),
        ("rooms", "location-room discovery", "location_rooms"),
    ] {
        for run in ["one_at_a_time", "saturated"] {
            let m = &r[kind][run];
            t +=
                &format!(
                "| {what}, {} {}, {} connection(s) | {} | {} queries/s, {} answered on average |\n",
                r[kind][count], if kind == "nearby" { "opted-in users" } else { "rooms" },
                m["connections"], lat(&m["latency"]), m["per_sec"], m["mean_items_answered"]
            );
        }
    }
    if !r["live"].is_null() {
        let l = &r["live"];
        t += &format!(
            "| busy room's send→ack, {} sharers idle | {} | a message every {} ms |\n| busy room's send→ack, {} shares moving every 2 s | {} | p50 ×{}, p99 ×{}; {} moves sent, {} ok, {} refused, {} location_updated heard |\n",
            l["shares"], lat(&l["baseline"]), l["send_every_ms"], l["shares"], lat(&l["with_moves"]),
            l["p50_ratio"], l["p99_ratio"], l["moves_sent"], l["moves_ok"], l["moves_refused"], l["location_updated_heard"]
        );
    }
    t
}
