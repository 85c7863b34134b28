//! The `spray` scenario: a password-spraying client (one source address, `attempts` wrong
//! logins over `accounts` accounts, `concurrency` at a time) against a node with its real login
//! limits, while other users log in correctly from other addresses — first alone (the
//! baseline), then during the spray. It reports how the spray was answered (401: a bcrypt was
//! spent; 429: refused before any hashing), how long it took, and the other users' login
//! latency and success in both phases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::scenario::Scenario;
use crate::targets::Target;
use crate::wire::{self, Http};

const PASSWORD: &str = "correct horse battery";

async fn register(target: &Target, name: &str) -> Result<String, String> {
    let mut http = Http::connect(wire::source(0, 1), target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let email = format!("{name}@spray.example");
    let body = json!({"email": email, "password": PASSWORD, "display_name": name});
    let (s, v) = http
        .call("POST", "/api/auth/register", None, Some(&body))
        .await
        .map_err(|e| e.to_string())?;
    if s != 201 {
        return Err(format!("register answered {s}: {v}"));
    }
    Ok(email)
}

/// Logins each user makes per phase: well under the per-account limit (10 a minute) over both
/// phases, as people log in — now and then, not in a loop.
const LOGINS_PER_USER: u32 = 3;

/// Correct logins by `users`, each from its own address (127.0.0.3 …), [`LOGINS_PER_USER`]
/// spread over `duration`; answers (latencies in µs, failures).
async fn legit_logins(target: &Target, users: &[String], duration: Duration) -> (Vec<u64>, u64) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0u64));
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, email)| {
            let (lat, failed, email, addr) =
                (lat.clone(), failed.clone(), email.clone(), target.addr);
            tokio::spawn(async move {
                let from = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3 + i as u8));
                let gap = duration / LOGINS_PER_USER;
                // Users start apart, so their logins spread over the phase.
                tokio::time::sleep(gap * (i as u32 % 10) / 10).await;
                for _ in 0..LOGINS_PER_USER {
                    let t = Instant::now();
                    let ok = match Http::connect(from, addr).await {
                        Ok(mut h) => {
                            let body = json!({"email": email, "password": PASSWORD});
                            matches!(
                                h.call("POST", "/api/auth/login", None, Some(&body)).await,
                                Ok((200, _))
                            )
                        }
                        Err(_) => false,
                    };
                    if ok {
                        lat.lock().push(t.elapsed().as_micros() as u64);
                    } else {
                        *failed.lock() += 1;
                    }
                    tokio::time::sleep(gap).await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let mut l = lat.lock().clone();
    l.sort_unstable();
    let f = *failed.lock();
    (l, f)
}

fn pct(sorted: &[u64], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    json!((sorted[i] as f64 / 100.0).round() / 10.0)
}

fn phase(lat: &[u64], failed: u64) -> Value {
    json!({ "logins": lat.len(), "failed": failed, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99) })
}

pub async fn run(sc: &Scenario, target: &Target) -> Result<Value, String> {
    let mut victims = Vec::new();
    for i in 0..sc.accounts {
        victims.push(register(target, &format!("victim{i}")).await?);
    }
    let mut users = Vec::new();
    for i in 0..sc.legit_users {
        users.push(register(target, &format!("person{i}")).await?);
    }
    let window = Duration::from_secs(sc.legit_secs.max(1));
    let (base_lat, base_failed) = legit_logins(target, &users, window).await;
    // The spray and the people, together.
    let answers = Arc::new(Mutex::new((0u64, 0u64, 0u64)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let attacker = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    let sprayers: Vec<_> = (0..sc.concurrency.max(1))
        .map(|_| {
            let (answers, next, victims, addr, attempts) =
                (answers.clone(), next.clone(), victims.clone(), target.addr, sc.attempts);
            tokio::spawn(async move {
                let Ok(mut h) = Http::connect(attacker, addr).await else { return };
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= attempts {
                        return;
                    }
                    let body = json!({"email": victims[i % victims.len()], "password": format!("guess-{i}")});
                    let s = match h.call("POST", "/api/auth/login", None, Some(&body)).await {
                        Ok((s, _)) => s,
                        Err(_) => match Http::connect(attacker, addr).await {
                            Ok(n) => {
                                h = n;
                                0
                            }
                            Err(_) => return,
                        },
                    };
                    let mut a = answers.lock();
                    match s {
                        401 => a.0 += 1,
                        429 => a.1 += 1,
                        _ => a.2 += 1,
                    }
                }
            })
        })
        .collect();
    let people = legit_logins(target, &users, window);
    let (spray_lat, spray_failed) = people.await;
    for s in sprayers {
        let _ = s.await;
    }
    let spray_secs = started.elapsed().as_secs_f64();
    let (wrong, limited, other) = *answers.lock();
    Ok(json!({
        "target": target.kind.label(),
        "spray": {
            "attempts": sc.attempts, "accounts": sc.accounts, "concurrency": sc.concurrency,
            "answered_401": wrong, "answered_429": limited, "other": other,
            "seconds": (spray_secs * 100.0).round() / 100.0,
        },
        "others_alone": phase(&base_lat, base_failed),
        "others_during_spray": phase(&spray_lat, spray_failed),
    }))
}

pub fn table(summary: &Value) -> String {
    let mut t = String::from("| target | spray attempts | 401 (bcrypt spent) | 429 (refused first) | spray s | others' logins alone: n / p50 / p99 ms | during the spray: n / failed / p50 / p99 ms |\n|---|---|---|---|---|---|---|\n");
    for r in summary["targets"].as_array().cloned().unwrap_or_default() {
        let (s, a, d) = (&r["spray"], &r["others_alone"], &r["others_during_spray"]);
        t += &format!(
            "| {} | {} | {} | {} | {} | {} / {} / {} | {} / {} / {} / {} |\n",
            r["target"].as_str().unwrap_or(""),
            s["attempts"],
            s["answered_401"],
            s["answered_429"],
            s["seconds"],
            a["logins"],
            a["p50_ms"],
            a["p99_ms"],
            d["logins"],
            d["failed"],
            d["p50_ms"],
            d["p99_ms"],
        );
    }
    t
}
