//! The file benchmark (`dovie-load files`): a large upload and download through Dovie — sniffed,
//! encrypted, stored, decrypted — against the same transfer to a bare actix-web sink and from
//! its source (`dovie-filesink`), in the same run; Dovie's RSS growth while the file streams;
//! random 1 MiB range reads of the stored file; then many concurrent uploads at once.
//!
//! The client speaks plain HTTP/1.1 over one TCP connection per request, writing the body in
//! 256 KiB pieces generated on the fly (an MP4 header, then pseudo-random bytes, so the node
//! sees a video it cannot compress) and reading answers without keeping them.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::targets::{Bins, Target};
use crate::wire::{self, Http};

const PIECE: usize = 256 * 1024;
/// Random range reads of the large file.
const RANGE_READS: usize = 100;
const RANGE_BYTES: u64 = 1024 * 1024;
/// A whole run's bound.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
const MIB: f64 = 1024.0 * 1024.0;

/// What the file benchmark measures.
pub struct Plan {
    pub size_mib: u64,
    pub concurrent: usize,
    pub each_mib: u64,
}

/// Random bytes the upload bodies are cut from (generated once, so the client spends its CPU
/// on sending, not on generating).
const POOL_BYTES: usize = 8 * 1024 * 1024;

fn pool() -> &'static [u8] {
    static POOL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut out = Vec::with_capacity(POOL_BYTES);
        while out.len() < POOL_BYTES {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    })
}

/// Piece `index` of an upload body: an MP4 header first, then incompressible bytes.
fn piece(index: u64, len: usize) -> std::borrow::Cow<'static, [u8]> {
    let pool = pool();
    let at = (index as usize * 7919 * 64) % (POOL_BYTES - len);
    let slice = &pool[at..at + len];
    if index == 0 && len >= 32 {
        let mut first = slice.to_vec();
        first[..32].copy_from_slice(b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41");
        std::borrow::Cow::Owned(first)
    } else {
        std::borrow::Cow::Borrowed(slice)
    }
}

/// Uploads `size` bytes to `path`; answers (status, answer body, seconds).
pub(crate) async fn upload(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    size: u64,
) -> Result<(u16, Value, f64), String> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut sent = 0u64;
    let mut i = 0u64;
    while sent < size {
        let n = (size - sent).min(PIECE as u64) as usize;
        s.write_all(&piece(i, n)).await.map_err(|e| e.to_string())?;
        sent += n as u64;
        i += 1;
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text}"))?;
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .map(|b| {
            // A chunked answer: the JSON sits between the size lines.
            let b = b.trim();
            if b.starts_with('{') {
                b.to_string()
            } else {
                b.lines().nth(1).unwrap_or("").to_string()
            }
        })
        .unwrap_or_default();
    Ok((
        status,
        serde_json::from_str(&body).unwrap_or(Value::Null),
        secs,
    ))
}

/// Downloads `path` (optionally a `Range`), discarding the body; answers (status, body bytes,
/// seconds).
pub(crate) async fn download(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    range: Option<(u64, u64)>,
) -> Result<(u16, u64, f64), String> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let range = range
        .map(|(a, b)| format!("Range: bytes={a}-{b}\r\n"))
        .unwrap_or_default();
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}{range}Connection: close\r\n\r\n");
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; PIECE];
    let mut head_bytes = Vec::new();
    let mut body = 0u64;
    let mut in_body = false;
    loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        if in_body {
            body += n as u64;
            continue;
        }
        head_bytes.extend_from_slice(&buf[..n]);
        if let Some(end) = head_bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            body += (head_bytes.len() - end - 4) as u64;
            in_body = true;
        }
    }
    let status = String::from_utf8_lossy(&head_bytes)
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body, started.elapsed().as_secs_f64()))
}

/// Samples a process's RSS every 20 ms until stopped; answers the peak (KiB).
pub(crate) fn sample_rss(pid: Option<u32>) -> (Arc<AtomicBool>, Arc<AtomicU64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let (s, p) = (stop.clone(), peak.clone());
    tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            if let Some(kib) = pid.and_then(crate::report::rss_kib) {
                p.fetch_max(kib, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (stop, peak)
}

struct Sink {
    addr: SocketAddr,
    child: Child,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_sink(bins: &Bins) -> Result<Sink, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    drop(l);
    let child = Command::new(bins.sink())
        .args(["--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bins.sink().display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err("the sink did not come up".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Sink { addr, child })
}

pub(crate) async fn token(target: &Target) -> Result<String, String> {
    let mut http = Http::connect(wire::source(0, 1), target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let body = json!({"email": "files@bench.example", "password": "correct horse battery", "display_name": "bench"});
    let (s, v) = http
        .call("POST", "/api/auth/register", None, Some(&body))
        .await
        .map_err(|e| e.to_string())?;
    if s != 201 {
        return Err(format!("register answered {s}: {v}"));
    }
    Ok(v["access_token"].as_str().unwrap_or("").to_string())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs the benchmark; answers its summary.
pub async fn run(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    tokio::time::timeout(RUN_TIMEOUT, run_inner(bins, config, plan))
        .await
        .map_err(|_| "the file benchmark did not finish in time".to_string())?
}

async fn run_inner(bins: &Bins, config: &str, plan: &Plan) -> Result<Value, String> {
    let size = plan.size_mib * 1024 * 1024;
    // The bare sink and source first, alone.
    let sink = start_sink(bins).await?;
    let (s, _, sink_up) = upload(sink.addr, "/sink", None, size).await?;
    if s != 201 {
        return Err(format!("the sink answered {s}"));
    }
    let (s, got, sink_down) = download(sink.addr, &format!("/source/{size}"), None, None).await?;
    if s != 200 || got != size {
        return Err(format!("the source answered {s} with {got} bytes"));
    }
    drop(sink);

    let dovie = Target::start_dovie(bins, config).await?;
    let token = token(&dovie).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base_kib = dovie.rss_kib().unwrap_or(0);
    let (stop, peak) = sample_rss(dovie.pid);
    let (s, answer, up) = upload(
        dovie.addr,
        "/api/upload?filename=big.mp4",
        Some(&token),
        size,
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    if s != 201 {
        return Err(format!("the upload answered {s}: {answer}"));
    }
    let up_peak = peak.load(Ordering::Relaxed);
    let id = answer["file"]["id"].as_str().unwrap_or("").to_string();
    let path = format!("/api/files/{id}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_down = dovie.rss_kib().unwrap_or(0);
    let (stop, peak) = sample_rss(dovie.pid);
    let (s, got, down) = download(dovie.addr, &path, Some(&token), None).await?;
    stop.store(true, Ordering::Relaxed);
    if s != 200 || got != size {
        return Err(format!("the download answered {s} with {got} bytes"));
    }
    let down_peak = peak.load(Ordering::Relaxed);

    // Random 1 MiB ranges of the stored file, one after another.
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut lat = Vec::with_capacity(RANGE_READS);
    for _ in 0..RANGE_READS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let start = x % (size - RANGE_BYTES);
        let (s, got, secs) = download(
            dovie.addr,
            &path,
            Some(&token),
            Some((start, start + RANGE_BYTES - 1)),
        )
        .await?;
        if s != 206 || got != RANGE_BYTES {
            return Err(format!("a range read answered {s} with {got} bytes"));
        }
        lat.push(secs * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));

    // Many uploads at once.
    let each = plan.each_mib * 1024 * 1024;
    let before_many = dovie.rss_kib().unwrap_or(0);
    let (stop, peak) = sample_rss(dovie.pid);
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.concurrent)
        .map(|i| {
            let (addr, token) = (dovie.addr, token.clone());
            tokio::spawn(async move {
                upload(
                    addr,
                    &format!("/api/upload?filename=c{i}.mp4"),
                    Some(&token),
                    each,
                )
                .await
            })
        })
        .collect();
    let mut ok = 0;
    let mut failed = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok((201, _, _))) => ok += 1,
            Ok(Ok((s, v, _))) => failed.push(format!("{s}: {v}")),
            Ok(Err(e)) => failed.push(e),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let many_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let many_peak = peak.load(Ordering::Relaxed);
    drop(dovie);

    let mb = size as f64 / MIB;
    let kib_to_mib = |k: u64| round(k as f64 / 1024.0);
    Ok(json!({
        "size_mib": plan.size_mib,
        "bare": {
            "upload_mib_per_sec": round(mb / sink_up),
            "download_mib_per_sec": round(mb / sink_down),
        },
        "dovie": {
            "upload_mib_per_sec": round(mb / up),
            "download_mib_per_sec": round(mb / down),
            "rss_base_mib": kib_to_mib(base_kib),
            "upload_rss_growth_mib": kib_to_mib(up_peak.saturating_sub(base_kib)),
            "download_rss_growth_mib": kib_to_mib(down_peak.saturating_sub(before_down)),
        },
        "ratios": {
            "upload": round(sink_up / up),
            "download": round(sink_down / down),
        },
        "range_reads": {
            "count": RANGE_READS,
            "bytes": RANGE_BYTES,
            "p50_ms": round(percentile(&lat, 0.5)),
            "p99_ms": round(percentile(&lat, 0.99)),
            "max_ms": round(lat.last().copied().unwrap_or(0.0)),
        },
        "concurrent_uploads": {
            "count": plan.concurrent,
            "each_mib": plan.each_mib,
            "ok": ok,
            "failed": failed.len(),
            "first_failures": failed.iter().take(3).collect::<Vec<_>>(),
            "seconds": round(many_secs),
            "mib_per_sec": round((plan.concurrent as u64 * each) as f64 / MIB / many_secs),
            "rss_growth_mib": kib_to_mib(many_peak.saturating_sub(before_many)),
        },
    }))
}

/// The markdown table of a summary.
pub fn table(s: &Value) -> String {
    let d = &s["result"];
    format!(
        "| measure | bare actix-web | Dovie | Dovie / bare |\n| --- | --- | --- | --- |\n\
         | upload of {size} MiB, MiB/s | {bu} | {du} | {ru} |\n\
         | download of {size} MiB, MiB/s | {bd} | {dd} | {rd} |\n\
         | RSS growth while uploading / downloading, MiB | — | {gu} / {gd} (base {base}) | |\n\
         | random 1 MiB range read, p50 / p99 / max ms | — | {p50} / {p99} / {max} | |\n\
         | {n} concurrent uploads of {each} MiB: ok / failed, s, RSS growth MiB | — | {ok} / {failed}, {secs} s, {gm} | |\n",
        size = d["size_mib"],
        bu = d["bare"]["upload_mib_per_sec"],
        du = d["dovie"]["upload_mib_per_sec"],
        ru = ratio(&d["dovie"]["upload_mib_per_sec"], &d["bare"]["upload_mib_per_sec"]),
        bd = d["bare"]["download_mib_per_sec"],
        dd = d["dovie"]["download_mib_per_sec"],
        rd = ratio(&d["dovie"]["download_mib_per_sec"], &d["bare"]["download_mib_per_sec"]),
        gu = d["dovie"]["upload_rss_growth_mib"],
        gd = d["dovie"]["download_rss_growth_mib"],
        base = d["dovie"]["rss_base_mib"],
        p50 = d["range_reads"]["p50_ms"],
        p99 = d["range_reads"]["p99_ms"],
        max = d["range_reads"]["max_ms"],
        n = d["concurrent_uploads"]["count"],
        each = d["concurrent_uploads"]["each_mib"],
        ok = d["concurrent_uploads"]["ok"],
        failed = d["concurrent_uploads"]["failed"],
        secs = d["concurrent_uploads"]["seconds"],
        gm = d["concurrent_uploads"]["rss_growth_mib"],
    )
}

fn ratio(a: &Value, b: &Value) -> String {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}
