//! The data export benchmark (`dovie-load export`): a user with many messages and one large
//! file asks for an export of their data; how long until the archive is ready, its rate, the
//! node's RSS growth while it builds (the archive streams from the store and the files into the
//! object store: it must stay flat whatever the size), and the archive's download.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::files::{download, round, sample_rss, token, upload};
use crate::targets::{Bins, Target};
use crate::wire::{self, Http};

/// A whole run's bound.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
const MIB: f64 = 1024.0 * 1024.0;

/// What the export benchmark measures.
pub struct Plan {
    pub file_mib: u64,
    pub messages: usize,
}

/// Runs the benchmark; answers its summary.
pub async fn run(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    tokio::time::timeout(RUN_TIMEOUT, run_inner(bins, config, plan))
        .await
        .map_err(|_| "the export benchmark did not finish in time".to_string())?
}

async fn run_inner(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    let dovie = Target::start_dovie_env(
        bins,
        config,
        &[("DOVIE_LIMITS__USER_SENDS_PER_MINUTE", "100000000")],
    )
    .await?;
    let token = token(&dovie).await?;
    let mut http = Http::connect(wire::source(0, 1), dovie.addr)
        .await
        .map_err(|e| e.to_string())?;
    let (s, room) = http
        .call(
            "POST",
            "/api/chat-rooms",
            Some(&token),
            Some(&json!({"type": "group", "name": "export bench", "member_ids": []})),
        )
        .await
        .map_err(|e| e.to_string())?;
    if s != 201 {
        return Err(format!("creating the room answered {s}: {room}"));
    }
    let room = room["room"]["id"].as_str().unwrap_or("").to_string();
    let path = format!("/api/chat-rooms/{room}/messages");
    for i in 0..plan.messages {
        let body = json!({"content": format!("message {i} of the export benchmark, with some words #bench")});
        let (s, v) = http
            .call("POST", &path, Some(&token), Some(&body))
            .await
            .map_err(|e| e.to_string())?;
        if s != 201 {
            return Err(format!("a send answered {s}: {v}"));
        }
    }
    let size = plan.file_mib * 1024 * 1024;
    let (s, v, _) = upload(
        dovie.addr,
        "/api/upload?filename=big.mp4",
        Some(&token),
        size,
    )
    .await?;
    if s != 201 {
        return Err(format!("the upload answered {s}: {v}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let base_kib = dovie.rss_kib().unwrap_or(0);
    let (stop, peak) = sample_rss(dovie.pid);
    let started = Instant::now();
    let (s, v) = http
        .call("POST", "/api/me/export", Some(&token), Some(&json!({})))
        .await
        .map_err(|e| e.to_string())?;
    if s != 202 {
        return Err(format!("asking for the export answered {s}: {v}"));
    }
    let id = v["export"]["id"].as_str().unwrap_or("").to_string();
    let export = loop {
        let (s, v) = http
            .call("GET", &format!("/api/me/exports/{id}"), Some(&token), None)
            .await
            .map_err(|e| e.to_string())?;
        if s != 200 {
            return Err(format!("reading the export answered {s}: {v}"));
        }
        if v["export"]["status"] != "pending" {
            break v["export"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let export_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let export_peak = peak.load(Ordering::Relaxed);
    if export["status"] != "ready" {
        return Err(format!("the export ended {export}"));
    }
    let archive = export["size"].as_u64().unwrap_or(0);
    let (s, got, down) = download(
        dovie.addr,
        &format!("/api/me/exports/{id}/download"),
        Some(&token),
        None,
    )
    .await?;
    if s != 200 || got != archive {
        return Err(format!(
            "the archive download answered {s} with {got} bytes"
        ));
    }
    drop(dovie);
    let mib = archive as f64 / MIB;
    let kib_to_mib = |k: u64| round(k as f64 / 1024.0);
    Ok(json!({
        "messages": plan.messages,
        "file_mib": plan.file_mib,
        "archive_mib": round(mib),
        "export_seconds": round(export_secs),
        "export_mib_per_sec": round(mib / export_secs),
        "rss_base_mib": kib_to_mib(base_kib),
        "export_rss_growth_mib": kib_to_mib(export_peak.saturating_sub(base_kib)),
        "download_mib_per_sec": round(mib / down),
    }))
}

/// The markdown table of a summary.
pub fn table(s: &Value) -> String {
    let d = &s["result"];
    format!(
        "| measure | value |\n| --- | --- |\n\
         | export of {m} messages and a {f} MiB file: ready after, s | {secs} |\n\
         | archive, MiB (rate while building, MiB/s) | {a} ({rate}) |\n\
         | RSS growth while the export builds, MiB (base) | {g} ({base}) |\n\
         | archive download, MiB/s | {down} |\n",
        m = d["messages"],
        f = d["file_mib"],
        secs = d["export_seconds"],
        a = d["archive_mib"],
        rate = d["export_mib_per_sec"],
        g = d["export_rss_growth_mib"],
        base = d["rss_base_mib"],
        down = d["download_mib_per_sec"],
    )
}
