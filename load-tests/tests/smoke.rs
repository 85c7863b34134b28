//! Proves the load tool works end to end: the tiny scenarios run against a real Dovie node and
//! the bare relay (both started by the tool), and what they report adds up. Numbers are not
//! asserted — they are benchmarks, recorded by the full scenarios, not by the test suite.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const RUN_LIMIT: Duration = Duration::from_secs(240);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The directory holding the `dovie` binary of this profile beside the load tool's own.
///
/// `dovie` belongs to another package, so it is built here, once for all tests (a build of
/// one package resolves its dependencies' features apart from the suite's, which can take
/// minutes on a loaded machine: the scenarios' time limit starts after it).
fn bin_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let load = PathBuf::from(env!("CARGO_BIN_EXE_dovie-load"));
            let dir = load.parent().unwrap().to_path_buf();
            let mut build = Command::new(env!("CARGO"));
            build
                .current_dir(root())
                .args(["build", "-q", "-p", "dovie", "--bin", "dovie"]);
            if dir.ends_with("release") {
                build.arg("--release");
            }
            assert!(build.status().unwrap().success(), "cannot build dovie");
            assert!(dir.join("dovie").exists() && dir.join("dovie-relay").exists());
            dir
        })
        .clone()
}

fn run(scenario: &str) -> Value {
    let out = tempfile_dir(scenario);
    let bin_dir = bin_dir();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dovie-load"))
        .current_dir(root())
        .args(["run", &format!("load-tests/scenarios/{scenario}.toml")])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&out)
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{scenario} failed");
            break;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("{scenario} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let json = std::fs::read_to_string(out.join(format!("{scenario}.json"))).unwrap();
    let md = std::fs::read_to_string(out.join(format!("{scenario}.md"))).unwrap();
    assert!(md.contains("| target") || md.contains("| sessions"), "{md}");
    let _ = std::fs::remove_dir_all(&out);
    serde_json::from_str(&json).unwrap()
}

fn tempfile_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dovie-load-smoke-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn rooms_scenario_against_dovie_and_the_relay() {
    let report = run("smoke");
    assert!(report["machine"]["cores"].as_u64().unwrap() > 0);
    assert!(report["command"].as_str().unwrap().contains("smoke.toml"));
    for name in ["dovie", "relay"] {
        let t = target(&report, name);
        assert_eq!(
            t["phases"],
            serde_json::json!(["saturated", "at_25pct", "half_rate"]),
            "{name}"
        );
        for phase in ["saturated", "at_25pct", "half_rate"] {
            let p = &t[phase];
            // 2 rooms x 3 members, 40 messages: every member gets its room's 20.
            assert_eq!(p["sent"], 40, "{name} {phase}: {p}");
            assert_eq!(p["acknowledged"], 40, "{name} {phase}: {p}");
            assert_eq!(p["deliveries"], 120, "{name} {phase}: {p}");
            assert_eq!(p["complete"], true, "{name} {phase}: {p}");
            assert_eq!(p["errors"], serde_json::json!({}), "{name} {phase}: {p}");
            assert_eq!(p["latency"]["samples"], 120, "{name} {phase}: {p}");
        }
    }
    // Dovie's own series saw the same traffic the client counted.
    let m = &target(&report, "dovie")["metrics_saturated"];
    assert_eq!(m["dovie_send_durable_seconds_count"], 40.0, "{m}");
    assert_eq!(m["dovie_send_delivered_seconds_count"], 40.0, "{m}");
    let node = &target(&report, "dovie")["half_rate"]["server_send_delivered"];
    assert_eq!(node["observations"], 40.0, "{node}");
    assert_eq!(
        m["dovie_ws_events_total{type=\"new_message\"}"], 120.0,
        "{m}"
    );
    assert!(report["ratios"]["deliveries_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn idle_scenario_reports_memory_per_session() {
    let report = run("smoke-idle");
    for name in ["dovie", "relay"] {
        let i = &target(&report, name)["idle"];
        assert_eq!(i["sessions"], 40, "{name}: {i}");
        assert!(i["rss_after_kib"].as_u64().unwrap() > 0, "{name}: {i}");
        assert!(i["bytes_per_session"].is_number(), "{name}: {i}");
    }
    let m = &target(&report, "dovie")["metrics"];
    assert_eq!(m["dovie_ws_connections{codec=\"msgpack\"}"], 40.0, "{m}");
}

#[test]
fn storm_scenario_resumes_everyone_exactly() {
    let report = run("smoke-storm");
    let s = &target(&report, "dovie")["storm"];
    // 2 rooms x 3 members, each missed 4 messages.
    assert_eq!(s["resumed"], 6, "{s}");
    assert_eq!(s["replayed_events"], 24, "{s}");
    assert_eq!(
        s["sessions_with_exactly_the_missed_seqs_in_order"], 6,
        "{s}"
    );
    let m = &target(&report, "dovie")["metrics_storm"];
    assert_eq!(m["dovie_replays_total{source=\"memory\"}"], 6.0, "{m}");
}

/// `dovie-load geo` with tiny numbers: every phase runs and what it reports adds up.
#[test]
fn geo_benchmark_runs_every_phase() {
    let out = tempfile_dir("geo");
    let status = Command::new(env!("CARGO_BIN_EXE_dovie-load"))
        .current_dir(root())
        .args([
            "geo",
            "--users",
            "300",
            "--rooms",
            "200",
            "--queries",
            "40",
            "--shares",
            "20",
            "--phase-secs",
            "3",
        ])
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "dovie-load geo failed");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("geo.json")).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let r = &report["result"];
    assert_eq!(r["store"], "embedded");
    for kind in ["nearby", "rooms"] {
        for run in ["one_at_a_time", "saturated"] {
            let m = &r[kind][run];
            assert_eq!(m["latency"]["samples"], 40, "{kind} {run}: {r}");
            assert!(
                m["mean_items_answered"].as_f64().unwrap() > 0.0,
                "{kind} {run}: {r}"
            );
            assert!(m["per_sec"].as_f64().unwrap() > 0.0, "{kind} {run}: {r}");
        }
    }
    let l = &r["live"];
    assert_eq!(l["shares"], 20, "{l}");
    assert_eq!(l["sharers_failed"], 0, "{l}");
    // 20 shares moving every 2 s for about 3 s: each moved at least once, every move taken.
    let sent = l["moves_sent"].as_u64().unwrap();
    assert!(sent >= 20, "{l}");
    assert_eq!(l["moves_ok"].as_u64().unwrap(), sent, "{l}");
    assert_eq!(l["moves_refused"], 0, "{l}");
    // Each move is heard by the other 9 sharers of its room.
    assert!(
        l["location_updated_heard"].as_u64().unwrap() >= sent * 9 * 9 / 10,
        "{l}"
    );
    assert!(l["baseline"]["samples"].as_u64().unwrap() > 100, "{l}");
    assert!(l["with_moves"]["samples"].as_u64().unwrap() > 100, "{l}");
}
