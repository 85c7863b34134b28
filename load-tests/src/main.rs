//! `dovie-load`: a first, simple load tool for Dovie (the full generator with scenarios grows
//! here). It speaks the public protocol only: REST to set up users and rooms, MessagePack over
//! WebSocket for traffic. Two measurements:
//!
//! - `idle`: N authenticated idle sessions; server RSS per session, read from `/proc/<pid>`.
//! - `busy-room`: one room of M members, S of them sending as fast as their in-flight window
//!   allows; durable messages/s, deliveries/s and send→receive latency percentiles.
//!
//! Results go to stdout and, as JSON plus a markdown table, to `--out` (load-tests/results/).
//! Targets are loopback only; every loop is bounded in count and time.

use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::ws::{Codec as WsCodec, Frame, Message};
use awc::BoxedSocket;
use clap::{Parser, Subcommand};
use dovie_protocol::Codec;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(
    name = "dovie-load",
    about = "Load and memory measurements for a Dovie node"
)]
struct Cli {
    /// Base URL of the node (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Directory for the JSON and markdown results.
    #[arg(long, default_value = "load-tests/results")]
    out: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Open idle authenticated sessions and measure the server's memory per session.
    Idle {
        #[arg(long, default_value_t = 5000)]
        sessions: usize,
        /// The server's pid, to read its RSS from /proc.
        #[arg(long)]
        pid: u32,
    },
    /// One busy room: members, senders, messages.
    BusyRoom {
        #[arg(long, default_value_t = 50)]
        members: usize,
        #[arg(long, default_value_t = 5)]
        senders: usize,
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Sends in flight per sender (unacknowledged).
        #[arg(long, default_value_t = 64)]
        window: usize,
    },
}

type Ws = Framed<BoxedSocket, WsCodec>;

fn ensure_loopback(url: &str) -> Result<(), String> {
    let host = url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
        Ok(())
    } else {
        Err(format!("refusing to load {host}: loopback targets only"))
    }
}

async fn register(client: &awc::Client, url: &str, name: &str) -> Result<(String, String), String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let email = format!("{name}-{nanos}-{}@load.test", std::process::id());
    let mut res = client
        .post(format!("{url}/api/auth/register"))
        .send_json(&json!({"email": email, "password": "load-test-password", "display_name": name}))
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = res.json().await.map_err(|e| e.to_string())?;
    let id = body["user"]["id"]
        .as_str()
        .ok_or(format!("register: {body}"))?
        .to_string();
    let token = body["access_token"].as_str().ok_or("no token")?.to_string();
    Ok((id, token))
}

async fn connect(client: &awc::Client, url: &str, token: &str) -> Result<Ws, String> {
    let ws_url = format!("{}/ws?token={token}", url.replacen("http", "ws", 1));
    let (_, mut ws) = client
        .ws(ws_url)
        .protocols([Codec::MsgPack.subprotocol()])
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    // Wait for auth_success.
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let f = next_frame(&mut ws, deadline)
            .await
            .ok_or("no auth_success")?;
        if f["t"] == "auth_success" {
            return Ok(ws);
        }
        if f["t"] == "auth_error" {
            return Err(format!("auth failed: {f}"));
        }
    }
}

async fn next_frame(ws: &mut Ws, deadline: Instant) -> Option<Value> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await.ok()??.ok()? {
            Frame::Binary(b) => return rmp_serde::from_slice(&b).ok(),
            Frame::Text(b) => return serde_json::from_slice(&b).ok(),
            Frame::Close(_) => return None,
            Frame::Ping(p) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            _ => {}
        }
    }
}

/// A client with no cap on simultaneous connections (awc's default is 100).
fn client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0))
        .timeout(SETUP_TIMEOUT)
        .finish()
}

fn rss_kb(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(str::to_string))
        .unwrap_or_default();
    json!({ "cpu": cpu, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "memory": mem })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn write_results(out: &str, name: &str, result: &Value, table: &str) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let json_path = format!("{out}/{name}.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(result).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(format!("{out}/{name}.md"), table).map_err(|e| e.to_string())?;
    println!("{table}\nwrote {json_path}");
    Ok(())
}

async fn idle(url: &str, out: &str, sessions: usize, pid: u32) -> Result<(), String> {
    let client = client();
    let (_, token) = register(&client, url, "idle").await?;
    // Warm the server (first connection allocates one-time state), then measure.
    let warm = connect(&client, url, &token).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kb(pid)?;
    let started = Instant::now();
    let mut open = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        open.push(connect(&client, url, &token).await?);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kb(pid)?;
    let per_session = (after.saturating_sub(before)) as f64 * 1024.0 / sessions as f64;
    let result = json!({
        "scenario": "idle", "sessions": sessions, "rss_before_kb": before, "rss_after_kb": after,
        "bytes_per_session": per_session.round(), "connect_per_sec": (sessions as f64 / connect_secs).round(),
        "machine": machine(), "command": std::env::args().collect::<Vec<_>>().join(" "),
    });
    let table = format!(
        "| scenario | sessions | server RSS before | after | per idle session | connects/s |\n|---|---|---|---|---|---|\n| idle | {sessions} | {before} KB | {after} KB | {:.1} KB | {:.0} |\n",
        per_session / 1024.0,
        sessions as f64 / connect_secs
    );
    drop(warm);
    write_results(out, "idle", &result, &table)
}

async fn busy_room(
    url: &str,
    out: &str,
    members: usize,
    senders: usize,
    messages: usize,
    window: usize,
) -> Result<(), String> {
    let client = client();
    let mut users = Vec::new();
    for i in 0..members {
        users.push(register(&client, url, &format!("m{i}")).await?);
    }
    let ids: Vec<&str> = users.iter().skip(1).map(|u| u.0.as_str()).collect();
    let mut res = client
        .post(format!("{url}/api/chat-rooms"))
        .bearer_auth(&users[0].1)
        .send_json(&json!({"type": "group", "name": "busy", "member_ids": ids}))
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = res.json().await.map_err(|e| e.to_string())?;
    let room = body["room"]["id"]
        .as_str()
        .ok_or(format!("create room: {body}"))?
        .to_string();
    let mut sockets = Vec::new();
    for (_, token) in &users {
        sockets.push(connect(&client, url, token).await?);
    }
    let origin = Instant::now();
    let per_sender = messages / senders;
    let total = per_sender * senders;
    let deadline = Instant::now() + Duration::from_secs(300);
    let tasks = sockets.into_iter().enumerate().map(|(i, mut ws)| {
        let room = room.clone();
        async move {
            let mut sent = 0usize;
            let mut acked = 0usize;
            let mut received = 0usize;
            let mut latencies = Vec::new();
            let sending = i < senders;
            while received < total && Instant::now() < deadline {
                while sending && sent < per_sender && sent - acked < window {
                    let ts = origin.elapsed().as_micros();
                    let frame = json!({"t": "send_message", "id": sent, "d": {"room_id": room, "content": ts.to_string(), "nonce": format!("{i}-{sent}")}});
                    let bytes = Codec::MsgPack.encode(&frame).map_err(|e| e.to_string())?;
                    ws.send(Message::Binary(bytes)).await.map_err(|e| e.to_string())?;
                    sent += 1;
                }
                let Some(f) = next_frame(&mut ws, deadline).await else { break };
                match f["t"].as_str() {
                    Some("reply") => acked += 1,
                    Some("new_message") => {
                        received += 1;
                        if let Some(ts) = f["d"]["message"]["content"].as_str().and_then(|c| c.parse::<u128>().ok()) {
                            latencies.push((origin.elapsed().as_micros() - ts) as f64 / 1000.0);
                        }
                    }
                    Some("error") => {
                        eprintln!("dovie-load: session {i} got an error, giving up: {f}");
                        return Err(format!("error: {f}"));
                    }
                    _ => {}
                }
            }
            Ok::<_, String>((received, acked, latencies))
        }
    });
    let started = Instant::now();
    let results = futures_util::future::join_all(tasks).await;
    let secs = started.elapsed().as_secs_f64();
    let mut deliveries = 0usize;
    let mut acked = 0usize;
    let mut lat = Vec::new();
    for r in results {
        let (d, a, l) = r?;
        deliveries += d;
        acked += a;
        lat.extend(l);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let result = json!({
        "scenario": "busy-room", "members": members, "senders": senders, "messages": total, "window": window,
        "acked": acked, "deliveries": deliveries, "seconds": secs,
        "durable_messages_per_sec": (acked as f64 / secs).round(),
        "deliveries_per_sec": (deliveries as f64 / secs).round(),
        "latency_ms": { "p50": percentile(&lat, 50.0), "p90": percentile(&lat, 90.0), "p99": percentile(&lat, 99.0),
                        "p999": percentile(&lat, 99.9), "max": lat.last().copied().unwrap_or(0.0) },
        "machine": machine(), "command": std::env::args().collect::<Vec<_>>().join(" "),
    });
    let table = format!(
        "| scenario | members | senders | messages | durable msg/s | deliveries/s | p50 | p99 | max |\n|---|---|---|---|---|---|---|---|---|\n| busy-room | {members} | {senders} | {total} | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
        acked as f64 / secs,
        deliveries as f64 / secs,
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0.0)
    );
    if acked != total || deliveries != total * members {
        return Err(format!(
            "incomplete run: acked {acked}/{total}, deliveries {deliveries}/{}",
            total * members
        ));
    }
    write_results(out, "busy-room", &result, &table)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(e) = ensure_loopback(&cli.url) {
        eprintln!("dovie-load: {e}");
        return std::process::ExitCode::from(2);
    }
    let result = actix_rt::System::new().block_on(async {
        match cli.scenario {
            Scenario::Idle { sessions, pid } => idle(&cli.url, &cli.out, sessions, pid).await,
            Scenario::BusyRoom {
                members,
                senders,
                messages,
                window,
            } => busy_room(&cli.url, &cli.out, members, senders, messages, window).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dovie-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
