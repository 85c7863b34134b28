//! Every Prometheus series Dovie exports, defined in one place with its help text and labels.
//! Code calls the small functions here (or the actors' `Telemetry` port), never ad-hoc counters.
//! Rendered as Prometheus text at `/metrics`.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Operations per group commit, 1 to 1024.
const JOB_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

pub struct Metrics {
    registry: Registry,
    pub ws_connections: IntGaugeVec,
    pub ws_commands: IntCounterVec,
    pub ws_events: IntCounterVec,
    pub send_durable: Histogram,
    pub send_delivered: Histogram,
    pub store_ops: HistogramVec,
    pub store_writer: HistogramVec,
    pub store_commit_jobs: Histogram,
    pub room_actors: IntGauge,
    pub replays: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub file_bytes: IntCounterVec,
    pub file_uploads: IntCounterVec,
    pub file_previews: IntCounterVec,
    pub auto_transcriptions: IntCounterVec,
    pub audit_entries: IntCounterVec,
    pub file_integrity_errors: IntCounter,
    pub link_previews: IntCounterVec,
    pub location_shares: IntCounterVec,
    pub location_updates: IntCounterVec,
    pub nearby_queries: HistogramVec,
    pub ws_connects: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub draining: IntGauge,
    pub ready: IntGauge,
    pub sends_in_flight: IntGauge,
    pub process_rss: IntGauge,
    pub process_cpu: prometheus::Gauge,
    pub process_start: IntGauge,
    pub push_jobs: IntCounterVec,
    pub push_attempts: IntCounterVec,
    pub push_queue_depth: IntGauge,
    pub push_latency: Histogram,
    pub push_expand: Histogram,
    pub ai_calls: IntCounterVec,
    pub ai_call_seconds: HistogramVec,
    pub ai_tokens: IntCounterVec,
    pub reminders_fired: IntCounter,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("dovie".into()), None)?;
    let hist = |name: &str, help: &str, labels: &[&str]| {
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
            labels,
        )
    };
    let plain = |name: &str, help: &str, buckets: &[f64]| {
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
    };
    let m = Metrics {
        ws_connections: IntGaugeVec::new(
            Opts::new("ws_connections", "Open WebSocket connections by codec"),
            &["codec"],
        )?,
        ws_commands: IntCounterVec::new(
            Opts::new("ws_commands_total", "WebSocket commands received, by type"),
            &["type"],
        )?,
        ws_events: IntCounterVec::new(
            Opts::new("ws_events_total", "Events written to sessions, by type"),
            &["type"],
        )?,
        send_durable: plain(
            "send_durable_seconds",
            "From a send arriving to its message being durably stored",
            LATENCY_BUCKETS,
        )?,
        send_delivered: plain(
            "send_delivered_seconds",
            "From a send arriving to its event being handed to every recipient session on this node (once per message and node)",
            LATENCY_BUCKETS,
        )?,
        store_ops: hist(
            "store_op_seconds",
            "Store operation latency by kind (read, write)",
            &["kind"],
        )?,
        store_writer: hist(
            "store_writer_seconds",
            "Embedded store background work: time per group commit, full-text index step and WAL checkpoint",
            &["phase"],
        )?,
        store_commit_jobs: plain(
            "store_commit_jobs",
            "Embedded store: write operations per group commit",
            JOB_BUCKETS,
        )?,
        room_actors: IntGauge::new("room_actors", "Active room actors on this node")?,
        replays: IntCounterVec::new(
            Opts::new(
                "replays_total",
                "Resume replays by source: memory (the room's window), store, resync",
            ),
            &["source"],
        )?,
        http_requests: IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?,
        http_latency: hist(
            "http_request_seconds",
            "HTTP request latency by route",
            &["route"],
        )?,
        file_bytes: IntCounterVec::new(
            Opts::new(
                "file_bytes_total",
                "File plaintext bytes by direction: in (uploads stored), out (downloads served)",
            ),
            &["direction"],
        )?,
        file_uploads: IntCounterVec::new(
            Opts::new(
                "file_uploads_total",
                "Uploads by kind (unknown before the type is told) and result: stored, too_large, quota, refused_type, aborted, failed",
            ),
            &["kind", "result"],
        )?,
        file_previews: IntCounterVec::new(
            Opts::new(
                "file_preview_jobs_total",
                "Preview jobs by result: done (previews made), none (nothing to show), failed",
            ),
            &["result"],
        )?,
        push_jobs: IntCounterVec::new(
            Opts::new(
                "push_jobs_total",
                "Push deliveries by provider (webpush, apns) and result: accepted, retry, dead (target removed), failed (refused, kept), expired (not accepted within 24 h)",
            ),
            &["provider", "result"],
        )?,
        push_attempts: IntCounterVec::new(
            Opts::new("push_attempts_total", "Push delivery attempts by provider"),
            &["provider"],
        )?,
        push_queue_depth: IntGauge::new(
            "push_queue_depth",
            "Push jobs queued or waiting for a retry (as last sampled by this node)",
        )?,
        push_latency: plain(
            "push_latency_seconds",
            "From a message being sent to its push being accepted by the push service",
            LATENCY_BUCKETS,
        )?,
        push_expand: plain(
            "push_expand_seconds",
            "Time to turn a message, read or notice into per-device push jobs",
            LATENCY_BUCKETS,
        )?,
        ai_calls: IntCounterVec::new(
            Opts::new(
                "ai_calls_total",
                "Provider calls of the AI assistants by provider (openai, youtube), call and result: ok, failed, timeout",
            ),
            &["provider", "call", "result"],
        )?,
        ai_call_seconds: hist(
            "ai_call_seconds",
            "Time of the AI assistants' provider calls",
            &["provider"],
        )?,
        ai_tokens: IntCounterVec::new(
            Opts::new(
                "ai_tokens_total",
                "Tokens the chat model reported using, by kind: prompt, completion",
            ),
            &["kind"],
        )?,
        auto_transcriptions: IntCounterVec::new(
            Opts::new(
                "auto_transcriptions_total",
                "Automatic transcription attempts by result: done, skipped (file gone or not transcribable, consent withdrawn), retry (put off), gave_up",
            ),
            &["result"],
        )?,
        audit_entries: IntCounterVec::new(
            Opts::new(
                "audit_entries_total",
                "Entries appended to the audit log, by action",
            ),
            &["action"],
        )?,
        reminders_fired: IntCounter::new(
            "reminders_fired_total",
            "Reminders fired (each once, by one node of the cluster)",
        )?,
        file_integrity_errors: IntCounter::new(
            "file_integrity_errors_total",
            "Stored file chunks or keys that failed to authenticate (tampering, corruption, a wrong key): never served",
        )?,
        link_previews: IntCounterVec::new(
            Opts::new(
                "link_preview_fetches_total",
                "Link preview fetches by result: ok, none (no metadata), refused (egress guard), failed, cached",
            ),
            &["result"],
        )?,
        location_shares: IntCounterVec::new(
            Opts::new(
                "location_shares_total",
                "Live location shares by event: started, stopped (by the sharer or a newer share), expired (ended by a node's sweeper)",
            ),
            &["event"],
        )?,
        location_updates: IntCounterVec::new(
            Opts::new(
                "location_updates_total",
                "Live location updates by result: ok, rate_limited, ended, not_found",
            ),
            &["result"],
        )?,
        nearby_queries: hist(
            "location_search_seconds",
            "Location searches by kind (nearby users, location rooms): time to answer",
            &["kind"],
        )?,
        ws_connects: IntCounterVec::new(
            Opts::new("ws_connects_total", "WebSocket sessions opened, by codec"),
            &["codec"],
        )?,
        store_errors: IntCounterVec::new(
            Opts::new(
                "store_errors_total",
                "Store operations that failed on the backend (answered store_unavailable), by backend",
            ),
            &["backend"],
        )?,
        draining: IntGauge::new(
            "draining",
            "1 while this node drains (SIGTERM received), else 0",
        )?,
        ready: IntGauge::new(
            "ready",
            "What this node's last /ready answered: 1 ready, 0 not (store unreachable or draining)",
        )?,
        sends_in_flight: IntGauge::new(
            "room_sends_in_flight",
            "Sends room actors accepted and have not answered yet (queued or being stored): the depth of the rooms' queues",
        )?,
        process_rss: IntGauge::new(
            "process_resident_memory_bytes",
            "Resident memory of this process, bytes",
        )?,
        process_cpu: prometheus::Gauge::new(
            "process_cpu_seconds_total",
            "CPU time this process used (user + system), seconds",
        )?,
        process_start: IntGauge::new(
            "process_start_time_seconds",
            "When this process started, Unix seconds",
        )?,
        registry,
    };
    m.registry.register(Box::new(m.ws_connections.clone()))?;
    m.registry.register(Box::new(m.ws_commands.clone()))?;
    m.registry.register(Box::new(m.ws_events.clone()))?;
    m.registry.register(Box::new(m.send_durable.clone()))?;
    m.registry.register(Box::new(m.send_delivered.clone()))?;
    m.registry.register(Box::new(m.store_ops.clone()))?;
    m.registry.register(Box::new(m.store_writer.clone()))?;
    m.registry.register(Box::new(m.store_commit_jobs.clone()))?;
    m.registry.register(Box::new(m.replays.clone()))?;
    m.registry.register(Box::new(m.room_actors.clone()))?;
    m.registry.register(Box::new(m.http_requests.clone()))?;
    m.registry.register(Box::new(m.http_latency.clone()))?;
    m.registry.register(Box::new(m.file_bytes.clone()))?;
    m.registry.register(Box::new(m.file_uploads.clone()))?;
    m.registry.register(Box::new(m.file_previews.clone()))?;
    m.registry
        .register(Box::new(m.file_integrity_errors.clone()))?;
    m.registry.register(Box::new(m.link_previews.clone()))?;
    m.registry.register(Box::new(m.push_jobs.clone()))?;
    m.registry.register(Box::new(m.push_attempts.clone()))?;
    m.registry.register(Box::new(m.push_queue_depth.clone()))?;
    m.registry.register(Box::new(m.push_latency.clone()))?;
    m.registry.register(Box::new(m.push_expand.clone()))?;
    m.registry.register(Box::new(m.ai_calls.clone()))?;
    m.registry.register(Box::new(m.ai_call_seconds.clone()))?;
    m.registry.register(Box::new(m.ai_tokens.clone()))?;
    m.registry.register(Box::new(m.reminders_fired.clone()))?;
    m.registry
        .register(Box::new(m.auto_transcriptions.clone()))?;
    m.registry.register(Box::new(m.audit_entries.clone()))?;
    m.registry.register(Box::new(m.location_shares.clone()))?;
    m.registry.register(Box::new(m.location_updates.clone()))?;
    m.registry.register(Box::new(m.nearby_queries.clone()))?;
    m.registry.register(Box::new(m.ws_connects.clone()))?;
    m.registry.register(Box::new(m.store_errors.clone()))?;
    m.registry.register(Box::new(m.draining.clone()))?;
    m.registry.register(Box::new(m.ready.clone()))?;
    m.registry.register(Box::new(m.sends_in_flight.clone()))?;
    m.registry.register(Box::new(m.process_rss.clone()))?;
    m.registry.register(Box::new(m.process_cpu.clone()))?;
    m.registry.register(Box::new(m.process_start.clone()))?;
    // Series alerts and dashboards read exist from the start, at zero, not only after a first
    // event (an absent series hides an alert).
    for codec in ["json", "msgpack"] {
        m.ws_connections.with_label_values(&[codec]);
        m.ws_connects.with_label_values(&[codec]);
    }
    for backend in STORE_BACKENDS {
        m.store_errors.with_label_values(&[backend]);
    }
    for kind in ["read", "write"] {
        m.store_ops.with_label_values(&[kind]);
    }
    for direction in ["in", "out"] {
        m.file_bytes.with_label_values(&[direction]);
    }
    m.process_start.set(process::start_time_secs().unwrap_or(0));
    Ok(m)
}

/// The process-wide metrics.
// unwrap: the metric definitions above are static and valid; a failure is a programming error
// caught by the unit test below.
#[allow(clippy::unwrap_used)]
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| build().unwrap());

/// `ws_events_total` resolved once for every event type the protocol has.
static EVENT_COUNTERS: LazyLock<HashMap<&'static str, IntCounter>> = LazyLock::new(|| {
    dovie_protocol::events::ALL
        .iter()
        .map(|t| (*t, METRICS.ws_events.with_label_values(&[t])))
        .collect()
});

/// `ws_commands_total` resolved once for every command type the protocol has.
static COMMAND_COUNTERS: LazyLock<HashMap<&'static str, IntCounter>> = LazyLock::new(|| {
    dovie_protocol::commands::ALL
        .iter()
        .map(|t| (*t, METRICS.ws_commands.with_label_values(&[t])))
        .collect()
});

/// The Prometheus text exposition of every series.
/// Upload results, as in `dovie_file_uploads_total{result}`.
const UPLOAD_RESULTS: [&str; 6] = [
    "stored",
    "too_large",
    "quota",
    "refused_type",
    "aborted",
    "failed",
];

/// Makes the series of every known label value exist at zero, so dashboards and alerts see a
/// fresh node's series before their first event. Called once at start.
pub fn init() {
    LazyLock::force(&EVENT_COUNTERS);
    LazyLock::force(&COMMAND_COUNTERS);
    let m = &*METRICS;
    for source in ["memory", "store", "resync"] {
        m.replays.with_label_values(&[source]);
    }
    for kind in ["nearby", "rooms"] {
        m.nearby_queries.with_label_values(&[kind]);
    }
    for (provider, call) in AI_CALLS {
        m.ai_call_seconds.with_label_values(&[provider]);
        for result in AI_RESULTS {
            m.ai_calls.with_label_values(&[provider, call, result]);
        }
    }
    for kind in ["prompt", "completion"] {
        m.ai_tokens.with_label_values(&[kind]);
    }
    for provider in PUSH_PROVIDERS {
        m.push_attempts.with_label_values(&[provider]);
        for result in PUSH_RESULTS {
            m.push_jobs.with_label_values(&[provider, result]);
        }
    }
    let kinds = crate::store::FileKind::ALL.map(|k| k.as_str());
    for kind in kinds.iter().chain(&["unknown"]) {
        for result in UPLOAD_RESULTS {
            m.file_uploads.with_label_values(&[kind, result]);
        }
    }
}

/// The backends of stored state (Redis holds rate limits and nearby positions), as named in
/// logs and `dovie_store_errors_total{backend}`.
pub const STORE_BACKENDS: [&str; 3] = ["embedded", "cql", "redis"];

pub fn render() -> String {
    METRICS
        .sends_in_flight
        .set(dovie_actors::room::SENDS_IN_FLIGHT.load(std::sync::atomic::Ordering::Relaxed));
    if let Some(rss) = process::resident_bytes() {
        METRICS.process_rss.set(rss);
    }
    if let Some(cpu) = process::cpu_seconds() {
        METRICS.process_cpu.set(cpu);
    }
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub fn file_bytes(direction: &'static str, n: u64) {
    METRICS.file_bytes.with_label_values(&[direction]).inc_by(n);
}

pub fn file_upload(kind: &str, result: &'static str) {
    METRICS
        .file_uploads
        .with_label_values(&[kind, result])
        .inc();
}

pub fn file_preview(result: &'static str) {
    METRICS.file_previews.with_label_values(&[result]).inc();
}

/// A live share started, or ended (`stopped`, `expired`).
pub fn location_share(event: &str) {
    METRICS.location_shares.with_label_values(&[event]).inc();
}

pub fn location_update(result: &'static str) {
    METRICS.location_updates.with_label_values(&[result]).inc();
}

/// A location search (`nearby`, `rooms`) answered in `elapsed`.
pub fn location_search(kind: &'static str, elapsed: Duration) {
    METRICS
        .nearby_queries
        .with_label_values(&[kind])
        .observe(elapsed.as_secs_f64());
}

/// The AI assistants' provider calls, as `dovie_ai_calls_total{provider, call}` names them.
pub const AI_CALLS: [(&str, &str); 6] = [
    ("openai", "smart_replies"),
    ("openai", "translate"),
    ("openai", "transcribe"),
    ("openai", "hashtags"),
    ("openai", "reminder"),
    ("youtube", "search"),
];
/// How a provider call ended.
pub const AI_RESULTS: [&str; 3] = ["ok", "failed", "timeout"];

pub fn ai_call(provider: &str, call: &str, result: &str, elapsed: Duration) {
    METRICS
        .ai_calls
        .with_label_values(&[provider, call, result])
        .inc();
    METRICS
        .ai_call_seconds
        .with_label_values(&[provider])
        .observe(elapsed.as_secs_f64());
}

/// An automatic transcription attempt ended (`done`, `skipped`, `retry`, `gave_up`).
pub fn auto_transcription(result: &'static str) {
    METRICS
        .auto_transcriptions
        .with_label_values(&[result])
        .inc();
}

/// An entry was appended to the audit log.
pub fn audit_entry(action: &'static str) {
    METRICS.audit_entries.with_label_values(&[action]).inc();
}

pub fn reminder_fired() {
    METRICS.reminders_fired.inc();
}

pub fn ai_tokens(prompt: u64, completion: u64) {
    METRICS
        .ai_tokens
        .with_label_values(&["prompt"])
        .inc_by(prompt);
    METRICS
        .ai_tokens
        .with_label_values(&["completion"])
        .inc_by(completion);
}

/// Push providers, as `dovie_push_jobs_total{provider}` names them.
pub const PUSH_PROVIDERS: [&str; 2] = ["webpush", "apns"];
/// What becomes of a push delivery attempt.
pub const PUSH_RESULTS: [&str; 5] = ["accepted", "retry", "dead", "failed", "expired"];

pub fn push_job(provider: &str, result: &str) {
    METRICS
        .push_jobs
        .with_label_values(&[provider, result])
        .inc();
}

pub fn push_attempt(provider: &str) {
    METRICS.push_attempts.with_label_values(&[provider]).inc();
}

pub fn push_queue_depth(n: u64) {
    METRICS.push_queue_depth.set(n as i64);
}

pub fn push_latency(elapsed: Duration) {
    METRICS.push_latency.observe(elapsed.as_secs_f64());
}

pub fn push_expanded(elapsed: Duration) {
    METRICS.push_expand.observe(elapsed.as_secs_f64());
}

pub fn file_integrity_error() {
    METRICS.file_integrity_errors.inc();
}

pub fn link_preview(result: &'static str) {
    METRICS.link_previews.with_label_values(&[result]).inc();
}

pub fn store_op(kind: &str, elapsed: Duration) {
    METRICS
        .store_ops
        .with_label_values(&[kind])
        .observe(elapsed.as_secs_f64());
}

/// One phase of the embedded store's writer thread (`commit`, `index`, `checkpoint`).
pub fn store_writer(phase: &str, elapsed: Duration) {
    METRICS
        .store_writer
        .with_label_values(&[phase])
        .observe(elapsed.as_secs_f64());
}

/// How many write operations one group commit carried.
pub fn store_commit_jobs(jobs: usize) {
    METRICS.store_commit_jobs.observe(jobs as f64);
}

/// The `method` label: the standard methods by name, anything else (any token a client may
/// send) as `other`, so clients cannot create series.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    METRICS
        .http_requests
        .with_label_values(&[route, method_label(method), &status.to_string()])
        .inc();
    METRICS
        .http_latency
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
}

/// The actors' telemetry port, onto the series above.
/// A store operation failed on its backend.
pub fn store_error(backend: &str) {
    METRICS.store_errors.with_label_values(&[backend]).inc();
}

/// What this node's readiness check found.
pub fn set_ready(ready: bool) {
    METRICS.ready.set(i64::from(ready));
}

/// Whether this node drains.
pub fn set_draining(on: bool) {
    METRICS.draining.set(i64::from(on));
}

/// This process's memory and CPU, from `/proc/self` (Linux; elsewhere the gauges stay 0).
pub mod process {
    /// Kernel clock ticks per second (`sysconf(_SC_CLK_TCK)`): 100 on every Linux Dovie runs on.
    const CLOCK_TICKS_PER_SEC: f64 = 100.0;
    const PAGE_BYTES: i64 = 4096;

    /// The fields of `/proc/self/stat` after the command name, which may hold spaces.
    fn stat_fields() -> Option<Vec<String>> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after = &stat[stat.rfind(')')? + 1..];
        Some(after.split_whitespace().map(str::to_string).collect())
    }

    pub fn resident_bytes() -> Option<i64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * PAGE_BYTES)
    }

    pub fn cpu_seconds() -> Option<f64> {
        // After the name: state is field 3 of stat(5), so utime (14) and stime (15) are at 11, 12.
        let f = stat_fields()?;
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / CLOCK_TICKS_PER_SEC)
    }

    pub fn start_time_secs() -> Option<i64> {
        let f = stat_fields()?;
        let start_ticks: f64 = f.get(19)?.parse().ok()?;
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let boot: i64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        Some(boot + (start_ticks / CLOCK_TICKS_PER_SEC) as i64)
    }
}

pub struct PromTelemetry;

impl dovie_actors::Telemetry for PromTelemetry {
    fn command(&self, name: &str) {
        match COMMAND_COUNTERS.get(name) {
            Some(c) => c.inc(),
            None => METRICS.ws_commands.with_label_values(&[name]).inc(),
        }
    }
    fn events_delivered(&self, t: &str, n: u64) {
        // Once per event and fan-out: a resolved counter, no label hashing under a lock.
        match EVENT_COUNTERS.get(t) {
            Some(c) => c.inc_by(n),
            None => METRICS.ws_events.with_label_values(&[t]).inc_by(n),
        }
    }
    fn send_durable(&self, elapsed: Duration) {
        METRICS.send_durable.observe(elapsed.as_secs_f64());
    }
    fn send_delivered(&self, elapsed: Duration) {
        METRICS.send_delivered.observe(elapsed.as_secs_f64());
    }
    fn room_actor_started(&self) {
        METRICS.room_actors.inc();
    }
    fn room_actor_stopped(&self) {
        METRICS.room_actors.dec();
    }
    fn session_opened(&self, codec: &str) {
        METRICS.ws_connections.with_label_values(&[codec]).inc();
        METRICS.ws_connects.with_label_values(&[codec]).inc();
    }
    fn session_closed(&self, codec: &str) {
        METRICS.ws_connections.with_label_values(&[codec]).dec();
    }
    fn replay(&self, source: &'static str) {
        METRICS.replays.with_label_values(&[source]).inc();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_build_and_render() {
        assert!(super::build().is_ok());
        super::store_op("read", std::time::Duration::from_millis(1));
        let text = super::render();
        assert!(text.contains("dovie_store_op_seconds"));
        // Linux: the process's own figures are read.
        let rss = super::process::resident_bytes().unwrap_or(0);
        assert!(rss > 1_000_000, "resident memory {rss}");
        assert!(super::process::cpu_seconds().is_some());
        let started = super::process::start_time_secs().unwrap_or(0);
        assert!(started > 1_600_000_000, "start time {started}");
    }
}
