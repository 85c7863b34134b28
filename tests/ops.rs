//! What operators rely on, checked against a running node: every metric the chart's alerts
//! (`helm/dovie/templates/prometheusrule.yaml`) and Grafana dashboard
//! (`helm/dovie/files/dashboard.json`) query is one the node exports, and the container's
//! health check (`dovie health`) tells a live node from a dead one.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{rest, Server};

/// Series Prometheus makes itself for every target (not exported by the node).
const FROM_PROMETHEUS: [&str; 1] = ["up"];

/// PromQL words that look like metric names but are functions, keywords or label names.
fn is_promql_word(word: &str) -> bool {
    const WORDS: [&str; 26] = [
        "sum",
        "max",
        "by",
        "rate",
        "increase",
        "histogram_quantile",
        "and",
        "on",
        "or",
        "unless",
        "without",
        "le",
        "job",
        "pod",
        "kind",
        "codec",
        "type",
        "route",
        "status",
        "direction",
        "result",
        "backend",
        "provider",
        "source",
        "label_values",
        "ignoring",
    ];
    WORDS.contains(&word)
}

/// The metric names an expression reads: identifiers outside `{…}`, strings and `[…]`, that are
/// not PromQL words or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = false;
    let mut word = String::new();
    let flush = |word: &mut String, names: &mut BTreeSet<String>| {
        if !word.is_empty()
            && !word.starts_with(|c: char| c.is_ascii_digit())
            && !is_promql_word(word)
        {
            names.insert(word.clone());
        }
        word.clear();
    };
    for c in expr.chars() {
        if in_string {
            in_string = c != '"';
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => {
                flush(&mut word, &mut names);
                depth_brace += 1;
            }
            '}' => depth_brace -= 1,
            '[' => {
                flush(&mut word, &mut names);
                depth_bracket += 1;
            }
            ']' => depth_bracket -= 1,
            c if (c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && depth_brace == 0
                && depth_bracket == 0 =>
            {
                word.push(c)
            }
            _ => flush(&mut word, &mut names),
        }
    }
    flush(&mut word, &mut names);
    names
}

/// The names of the series a node's `/metrics` exposition holds.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn alert_expressions(root: &Path) -> Vec<String> {
    let rules = std::fs::read_to_string(root.join("helm/dovie/templates/prometheusrule.yaml"))
        .expect("the chart's PrometheusRule");
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        // Helm expressions inside an expression are values (the job, thresholds): not metrics.
        .map(|e| {
            let mut out = String::new();
            let mut rest = e;
            while let Some(open) = rest.find("{{") {
                out.push_str(&rest[..open]);
                out.push_str("HELM");
                rest = rest[open..]
                    .find("}}")
                    .map_or("", |c| &rest[open + c + 2..]);
            }
            out.push_str(rest);
            out.replace("\"HELM\"", "\"x\"").replace("HELM", "1")
        })
        .collect()
}

fn dashboard_expressions(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("helm/dovie/files/dashboard.json"))
        .expect("the chart's dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(e) = target["expr"].as_str() {
                exprs.push(e.replace("$__rate_interval", "1m"));
            }
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = var["query"]["query"].as_str() {
            // label_values(<series selector>, <label>)
            if let Some(inner) = q.strip_prefix("label_values(") {
                exprs.push(inner.rsplit_once(',').map_or(inner, |(s, _)| s).to_string());
            }
        }
    }
    exprs
}

#[test]
fn promql_names_are_read_from_expressions() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, kind) (rate(dovie_store_op_seconds_bucket{job="a", pod=~"$pod"}[5m]))) > 0.25 and on (pod) up{job="x"} == 0"#,
    );
    let want: BTreeSet<String> = ["dovie_store_op_seconds_bucket", "up"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, want);
}

#[actix_rt::test]
async fn every_metric_of_the_alerts_and_the_dashboard_is_exported() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let alerts = alert_expressions(root);
    let panels = dashboard_expressions(root);
    assert!(alerts.len() >= 7, "the alerts are read: {alerts:?}");
    assert!(panels.len() >= 25, "the panels are read: {}", panels.len());

    let server = Server::start();
    let api = rest(&server);
    // One request first: HTTP series exist once a request has been answered.
    let (status, _) = api.call("GET", "/health", None, None).await;
    assert_eq!(status, 200);
    let (status, _, text) = api.raw("GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(status, 200);
    let have = exported(&String::from_utf8_lossy(&text));
    assert!(have.contains("dovie_room_actors"), "{have:?}");

    let mut missing = Vec::new();
    for (source, expr) in alerts
        .iter()
        .map(|e| ("alert", e))
        .chain(panels.iter().map(|e| ("dashboard", e)))
    {
        for name in metric_names(expr) {
            if !have.contains(&name) && !FROM_PROMETHEUS.contains(&name.as_str()) {
                missing.push(format!("{source}: {name} in {expr}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "queried but not exported:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_health_check_tells_a_live_node_from_a_dead_one() {
    let server = Server::start();
    let addr = server.url("").trim_start_matches("http://").to_string();
    let run = |addr: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dovie"))
            .args(["health", "--addr", addr])
            .output()
            .expect("run dovie health")
    };
    let live = run(&addr);
    assert!(live.status.success(), "{live:?}");
    drop(server);
    let dead = run(&addr);
    assert!(!dead.status.success(), "a stopped node is not healthy");
    assert!(String::from_utf8_lossy(&dead.stderr).contains("dovie health"));
}
