//! What a run reports: the machine, server memory from `/proc`, the server's own Prometheus
//! series, latency histograms, and the JSON + markdown written to `load-tests/results/`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// The machine the run happened on.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": (mem_kb as f64 / 1048576.0 * 10.0).round() / 10.0,
        "kernel": kernel,
        "fd_limit": rlimit::getrlimit(rlimit::Resource::NOFILE).map(|l| l.0).unwrap_or(0),
    })
}

/// Resident memory of a local process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Prometheus text exposition, flattened to `name{labels}` → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The differences of the series named, between two scrapes.
pub fn metric_deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    names: &[&str],
) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in after {
        if names.iter().any(|n| k.starts_with(n)) {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            out.insert(k.clone(), json!(d));
        }
    }
    Value::Object(out)
}

/// p50/p90/p99 in milliseconds of a Prometheus histogram between two scrapes, as the upper
/// bound of the bucket each quantile falls in (what Grafana's `histogram_quantile` shows before
/// interpolating). Null when nothing was observed.
pub fn bucket_quantiles(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    histogram: &str,
) -> Value {
    let prefix = format!("{histogram}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, v - before.get(k).copied().unwrap_or(0.0)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map_or(0.0, |b| b.1);
    if total <= 0.0 {
        return Value::Null;
    }
    let at = |q: f64| {
        let bound = buckets
            .iter()
            .find(|(_, n)| *n >= q * total)
            .map_or(f64::INFINITY, |b| b.0);
        if bound.is_finite() {
            json!(bound * 1000.0)
        } else {
            json!("+Inf")
        }
    };
    json!({
        "observations": total,
        "p50_ms_at_most": at(0.5),
        "p90_ms_at_most": at(0.9),
        "p99_ms_at_most": at(0.99),
    })
}

/// Latency percentiles in milliseconds, from a histogram of microseconds.
pub fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    if h.is_empty() {
        return json!(null);
    }
    json!({
        "samples": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// Writes `<out>/<name>.json` and `<out>/<name>.md`.
pub fn write(out: &str, name: &str, result: &Value, table: &str) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{out}: {e}"))?;
    let json_path = format!("{out}/{name}.json");
    let text = serde_json::to_string_pretty(result).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{json_path}: {e}"))?;
    let md_path = format!("{out}/{name}.md");
    std::fs::write(&md_path, table).map_err(|e| format!("{md_path}: {e}"))?;
    println!("{table}\nwrote {json_path} and {md_path}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_parses_and_deltas_subtract() {
        let a = parse_metrics("# HELP x\ndovie_a_total{k=\"v\"} 3\ndovie_b 1\n");
        let b = parse_metrics("dovie_a_total{k=\"v\"} 10\ndovie_b 4\n");
        let d = metric_deltas(&a, &b, &["dovie_a"]);
        assert_eq!(d, json!({"dovie_a_total{k=\"v\"}": 7.0}));
    }

    #[test]
    fn bucket_quantiles_use_the_deltas_between_scrapes() {
        let h = "dovie_x_seconds_bucket";
        let a = parse_metrics(&format!(
            "{h}{{le=\"0.001\"}} 100\n{h}{{le=\"0.01\"}} 100\n{h}{{le=\"+Inf\"}} 100\n"
        ));
        // Between the scrapes: 90 observations ≤ 1 ms, 9 more ≤ 10 ms, 1 beyond.
        let b = parse_metrics(&format!(
            "{h}{{le=\"0.001\"}} 190\n{h}{{le=\"0.01\"}} 199\n{h}{{le=\"+Inf\"}} 200\n"
        ));
        let q = bucket_quantiles(&a, &b, "dovie_x_seconds");
        assert_eq!(q["observations"], 100.0);
        assert_eq!(q["p50_ms_at_most"], 1.0);
        assert_eq!(q["p90_ms_at_most"], 1.0);
        assert_eq!(q["p99_ms_at_most"], 10.0);
        assert_eq!(bucket_quantiles(&b, &b, "dovie_x_seconds"), Value::Null);
    }

    #[test]
    fn percentiles_come_in_milliseconds() {
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for us in 1..=1000u64 {
            h.record(us * 10).expect("record");
        }
        let p = percentiles(&h);
        assert_eq!(p["samples"], 1000);
        assert!(
            (p["p50_ms"].as_f64().expect("p50") - 5.0).abs() < 0.1,
            "{p}"
        );
        assert!(
            (p["max_ms"].as_f64().expect("max") - 10.0).abs() < 0.1,
            "{p}"
        );
    }
}
