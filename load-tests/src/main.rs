//! `dovie-load`: runs a scenario file against a Dovie node — and, where the scenario asks, the
//! same scenario against the bare relay (`dovie-relay`) in the same run — over the MessagePack
//! WebSocket protocol, and writes what it measured (JSON + a markdown table, with the machine
//! and the command) to `load-tests/results/`.
//!
//! It starts the servers itself (release binaries next to its own, a fresh data directory,
//! `load-tests/server.toml`) unless `--url` names a running node. Loopback targets only; every
//! phase is bounded in count and time.

mod export;
mod files;
mod floor;
mod geo;
mod push;
mod report;
mod scan;
mod scenario;
mod spray;
mod targets;
mod traffic;
mod wire;

use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::scenario::{Kind, Scenario};
use crate::targets::{Target, TargetKind};

#[derive(Parser)]
#[command(
    name = "dovie-load",
    about = "Load, latency and memory measurements for Dovie"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one scenario file.
    Run {
        /// The scenario (e.g. load-tests/scenarios/rooms-100.toml).
        scenario: String,
        /// A running Dovie node to load instead of starting one (loopback only).
        #[arg(long)]
        url: Option<String>,
        /// That node's pid, for its memory (when --url is given).
        #[arg(long)]
        pid: Option<u32>,
        /// The config the started node runs with.
        #[arg(long, default_value = "load-tests/server.toml")]
        config: String,
        /// Where `dovie` and `dovie-relay` are (default: next to this binary).
        #[arg(long)]
        bin_dir: Option<String>,
        /// Where results go.
        #[arg(long, default_value = "load-tests/results")]
        out: String,
        /// Client threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// A CQL server (HOST:PORT): start the node on the CQL store (a keyspace of its own),
        /// and before it run the bare CQL writer against the same server (the floor).
        #[arg(long)]
        scylla: Option<String>,
        /// Inserts the bare CQL writer keeps in flight (Dovie's node keeps at most 256 CQL
        /// writes in flight).
        #[arg(long, default_value_t = 256)]
        floor_concurrency: usize,
    },
    /// The bare CQL writer alone: one plain prepared insert per message into Dovie's messages
    /// table layout, at QUORUM, a fixed number in flight.
    CqlFloor {
        /// The CQL server, HOST:PORT.
        #[arg(long)]
        scylla: String,
        #[arg(long, default_value_t = 50_000)]
        messages: usize,
        #[arg(long, default_value_t = 50)]
        partitions: usize,
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        #[arg(long, default_value_t = 64)]
        payload_bytes: usize,
        #[arg(long, default_value = "load-tests/results")]
        out: String,
    },
    /// The file benchmark: a large upload and download through Dovie against a bare actix-web
    /// sink and source, RSS while it streams, random range reads, concurrent uploads.
    Files {
        /// The large file, MiB.
        #[arg(long, default_value_t = 500)]
        size_mib: u64,
        /// Concurrent uploads.
        #[arg(long, default_value_t = 100)]
        concurrent: usize,
        /// Each concurrent upload, MiB.
        #[arg(long, default_value_t = 10)]
        each_mib: u64,
        /// The config the started node runs with.
        #[arg(long, default_value = "load-tests/files-server.toml")]
        config: String,
        #[arg(long)]
        bin_dir: Option<String>,
        #[arg(long, default_value = "load-tests/results")]
        out: String,
    },
    /// The data export benchmark: a user with many messages and a large file asks for an
    /// export; time until ready, the archive's rate, RSS growth while it builds, the download.
    Export {
        /// The large file, MiB.
        #[arg(long, default_value_t = 500)]
        file_mib: u64,
        /// Messages the user sent.
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// The config the started node runs with.
        #[arg(long, default_value = "load-tests/files-server.toml")]
        config: String,
        #[arg(long)]
        bin_dir: Option<String>,
        #[arg(long, default_value = "load-tests/results")]
        out: String,
    },
    /// The push benchmark: a message to a room of 2,000 offline members, every one subscribed
    /// to Web Push, against a push service sink; the room's send rate with and without push.
    Push {
        /// Members besides the sender.
        #[arg(long, default_value_t = 2_000)]
        members: usize,
        /// Messages of each send-rate phase.
        #[arg(long, default_value_t = 100)]
        sends: usize,
        /// REST connections sending at once.
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Wait only this many seconds for the pushes of the send-rate phase (default: all).
        #[arg(long)]
        drain_secs: Option<u64>,
        #[arg(long, default_value = "load-tests/server.toml")]
        config: String,
        #[arg(long)]
        bin_dir: Option<String>,
        #[arg(long, default_value = "load-tests/results")]
        out: String,
    },
    /// The location benchmark: "nearby" and location-room searches among many users and rooms,
    /// and a busy room's send latency while live shares move.
    Geo {
        /// Users opted in to "nearby".
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// Location rooms.
        #[arg(long, default_value_t = 50_000)]
        rooms: usize,
        /// Searches of each kind.
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
        /// Live shares moving every 2 s during the second phase.
        #[arg(long, default_value_t = 1_000)]
        shares: usize,
        /// Seconds of each live phase.
        #[arg(long, default_value_t = 20)]
        phase_secs: u64,
        /// A CQL server (HOST:PORT): run the node on the CQL store with a Redis bus of its own.
        #[arg(long)]
        scylla: Option<String>,
        #[arg(long, default_value = "load-tests/server.toml")]
        config: String,
        #[arg(long)]
        bin_dir: Option<String>,
        #[arg(long, default_value = "load-tests/results")]
        out: String,
    },
}

/// Runs one benchmark subcommand (`files`, `geo`) on a two-thread runtime and writes its summary
/// (machine, command, result) and table to `out`; exits 1 if it failed.
fn bench<F, Fut>(name: &str, kind: &str, out: &str, table: fn(&Value) -> String, run: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let result = run().await?;
                let command = std::env::args().collect::<Vec<_>>().join(" ");
                let summary = json!({
                    "scenario": name, "kind": kind, "command": command,
                    "machine": report::machine(), "result": result,
                });
                let table = format!(
                    "### {name}\n\nMachine: {} × {} cores, {} GiB. Command: `{command}`\n\n{}",
                    summary["machine"]["cpu"].as_str().unwrap_or("?"),
                    summary["machine"]["cores"],
                    summary["machine"]["memory_gib"],
                    table(&summary)
                );
                report::write(out, name, &summary, &table)
            })
        });
    if let Err(e) = result {
        eprintln!("dovie-load: {e}");
        std::process::exit(1);
    }
}

fn main() {
    let cli = Cli::parse();
    if let Cmd::Geo {
        users,
        rooms,
        queries,
        shares,
        phase_secs,
        scylla,
        config,
        bin_dir,
        out,
    } = cli.cmd
    {
        let _ = dovie_transport::process::raise_file_limit();
        let name = if scylla.is_some() {
            "geo-cluster"
        } else {
            "geo"
        };
        let plan = geo::Plan {
            users,
            rooms,
            queries,
            shares,
            phase_secs,
            scylla,
        };
        return bench(name, "geo", &out, geo::table, move || async move {
            let bins = targets::Bins::locate(bin_dir.as_deref())?;
            geo::run(&bins, &config, &plan).await
        });
    }
    if let Cmd::Push {
        members,
        sends,
        connections,
        drain_secs,
        config,
        bin_dir,
        out,
    } = cli.cmd
    {
        let plan = push::Plan {
            members,
            sends,
            connections,
            drain_secs,
        };
        return bench("push", "push", &out, push::table, move || async move {
            let bins = targets::Bins::locate(bin_dir.as_deref())?;
            push::run(&bins, &config, &plan).await
        });
    }
    if let Cmd::Files {
        size_mib,
        concurrent,
        each_mib,
        config,
        bin_dir,
        out,
    } = cli.cmd
    {
        let plan = files::Plan {
            size_mib,
            concurrent,
            each_mib,
        };
        return bench("files", "files", &out, files::table, move || async move {
            let bins = targets::Bins::locate(bin_dir.as_deref())?;
            files::run(&bins, &config, &plan).await
        });
    }
    if let Cmd::Export {
        file_mib,
        messages,
        config,
        bin_dir,
        out,
    } = cli.cmd
    {
        let plan = export::Plan { file_mib, messages };
        return bench(
            "export",
            "export",
            &out,
            export::table,
            move || async move {
                let bins = targets::Bins::locate(bin_dir.as_deref())?;
                export::run(&bins, &config, &plan).await
            },
        );
    }
    if let Cmd::CqlFloor {
        scylla,
        messages,
        partitions,
        concurrency,
        payload_bytes,
        out,
    } = cli.cmd
    {
        let plan = floor::Plan {
            messages,
            partitions,
            concurrency,
            payload_bytes,
        };
        return bench(
            "cql-floor",
            "cql-floor",
            &out,
            floor::table,
            move || async move { floor::run(&scylla, &plan).await },
        );
    }
    let Cmd::Run {
        scenario,
        url,
        pid,
        config,
        bin_dir,
        out,
        threads,
        scylla,
        floor_concurrency,
    } = cli.cmd
    else {
        return;
    };
    let fd_limit = dovie_transport::process::raise_file_limit().unwrap_or(0);
    let _ = dovie_transport::process::no_transparent_huge_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build();
    let result = runtime.map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let sc = Scenario::load(&scenario)?;
            let needed = sc.session_count() as u64 + 64;
            if fd_limit < needed {
                eprintln!(
                    "warning: this process may open {fd_limit} files; the scenario needs about {needed}"
                );
            }
            let bins = targets::Bins::locate(bin_dir.as_deref())?;
            let cql = scylla.map(|contact| (contact, floor_concurrency));
            run(&sc, &scenario, url, pid, &config, &bins, &out, cql).await
        })
    });
    if let Err(e) = result {
        eprintln!("dovie-load: {e}");
        std::process::exit(1);
    }
}

/// `cql`: a CQL server and the bare writer's concurrency — the node runs on the CQL store there,
/// after the bare writer.
#[allow(clippy::too_many_arguments)]
async fn run(
    sc: &Scenario,
    scenario_path: &str,
    url: Option<String>,
    pid: Option<u32>,
    config: &str,
    bins: &targets::Bins,
    out: &str,
    cql: Option<(String, usize)>,
) -> Result<(), String> {
    let mut results: Vec<Value> = Vec::new();
    // The relay first, then Dovie: each alone on the machine with the client.
    if sc.kind == Kind::Spray {
        // Against the node's own login limits (the other scenarios lift them).
        let dovie = Target::start_dovie_with(bins, config, true).await?;
        let result = spray::run(sc, &dovie).await?;
        drop(dovie);
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let summary = json!({
            "scenario": sc.name, "kind": "spray", "scenario_file": scenario_path,
            "command": command, "machine": report::machine(), "targets": [result],
        });
        let table = format!(
            "### {} (spray)\n\nMachine: {} × {} cores, {} GiB. Command: `{command}`\n\n{}",
            sc.name,
            summary["machine"]["cpu"].as_str().unwrap_or("?"),
            summary["machine"]["cores"],
            summary["machine"]["memory_gib"],
            spray::table(&summary)
        );
        return report::write(out, &sc.name, &summary, &table);
    }
    if sc.relay && sc.kind != Kind::Storm {
        let relay = Target::start_relay(bins).await?;
        results.push(traffic::run_target(sc, &relay).await?);
        drop(relay);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let dovie = match (url, &cql) {
        (Some(url), _) => Target::external(&url, pid)?,
        (None, Some((contact, concurrency))) => {
            let plan = floor::Plan {
                messages: sc.messages,
                partitions: sc.rooms,
                concurrency: *concurrency,
                payload_bytes: sc.payload_bytes,
            };
            println!("== {} on the bare CQL writer ({contact})", sc.name);
            results.push(floor::run(contact, &plan).await?);
            let extra = [
                "--store".to_string(),
                "scylla".into(),
                "--scylla".into(),
                contact.clone(),
                "--keyspace".into(),
                format!("dovie_load_{}", std::process::id()),
            ];
            Target::start_dovie_args(bins, config, false, &extra).await?
        }
        (None, None) => Target::start_dovie(bins, config).await?,
    };
    results.push(traffic::run_target(sc, &dovie).await?);
    drop(dovie);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let scenario_text = std::fs::read_to_string(scenario_path).unwrap_or_default();
    let summary = json!({
        "scenario": sc.name,
        "kind": format!("{:?}", sc.kind).to_lowercase(),
        "scenario_file": scenario_path,
        "scenario_toml": scenario_text,
        "command": command,
        "machine": report::machine(),
        "targets": results,
        "ratios": ratios(&results),
    });
    let table = traffic::table(sc, &summary, &command);
    report::write(out, &sc.name, &summary, &table)
}

/// Dovie's numbers as a share of the relay's, where both ran.
fn ratios(results: &[Value]) -> Value {
    let find = |kind: TargetKind| {
        results
            .iter()
            .find(|r| r["target"] == kind.label())
            .cloned()
    };
    let Some(dovie) = find(TargetKind::Dovie) else {
        return Value::Null;
    };
    let floor = results.iter().find(|r| r["target"] == "cql-floor");
    let durable_share_of_floor = match (
        dovie["saturated"]["acked_per_sec"].as_f64(),
        floor.and_then(|f| f["inserts_per_sec"].as_f64()),
    ) {
        (Some(d), Some(f)) if f > 0.0 => json!((d / f * 1000.0).round() / 1000.0),
        _ => Value::Null,
    };
    let Some(relay) = find(TargetKind::Relay) else {
        return json!({ "durable_share_of_cql_floor": durable_share_of_floor });
    };
    let ratio = |path: &[&str]| {
        let get = |v: &Value| path.iter().fold(v.clone(), |v, k| v[*k].clone()).as_f64();
        match (get(&dovie), get(&relay)) {
            (Some(d), Some(r)) if r > 0.0 => json!((d / r * 1000.0).round() / 1000.0),
            _ => Value::Null,
        }
    };
    json!({
        "deliveries_per_sec": ratio(&["saturated", "deliveries_per_sec"]),
        "bytes_per_session": ratio(&["idle", "bytes_per_session"]),
        "durable_share_of_cql_floor": durable_share_of_floor,
    })
}
