//! The bare CQL writer: the floor any design on the CQL store pays. The same driver Dovie uses,
//! one plain prepared `INSERT` per message into a table of the very layout of Dovie's
//! `messages` (its DDL is read from `schema/scylla/`), at the same consistency (`QUORUM`), with
//! a fixed number of inserts in flight over a number of partitions, and nothing else: no
//! sequencing, no indexes, no fencing. Runs in a keyspace of its own, dropped after.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;
use serde_json::{json, Value};

use crate::report;

/// Dovie's CQL migrations, in order: the messages table is whatever they make of it.
const SCHEMA: &[&str] = &[
    include_str!("../../schema/scylla/0001_init.cql"),
    include_str!("../../schema/scylla/0002_rosters_roles_terms.cql"),
    include_str!("../../schema/scylla/0003_people.cql"),
    include_str!("../../schema/scylla/0004_files.cql"),
    include_str!("../../schema/scylla/0005_location.cql"),
    include_str!("../../schema/scylla/0006_location_cells.cql"),
];
/// Dovie's own append writes these columns of each message (`src/store/cql/mod.rs`).
const INSERT: &str = "INSERT INTO messages (bucket, epoch, room_id, seq, id, sender_id, kind, \
     content, nonce, reply_to, hashtags, attachments, created_at, location, suggest_location) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// The longest a run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// What to write.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Inserts in all.
    pub messages: usize,
    /// Partitions (rooms) they go to, round robin.
    pub partitions: usize,
    /// Inserts in flight at once.
    pub concurrency: usize,
    pub payload_bytes: usize,
}

/// The statements of Dovie's migrations that make its `messages` table, comments dropped.
fn messages_ddl() -> Vec<String> {
    SCHEMA
        .iter()
        .flat_map(|file| {
            // Comments first: they may hold a `;`.
            let text: Vec<&str> = file
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect();
            text.join("\n")
                .split(';')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| {
            s.starts_with("CREATE TABLE IF NOT EXISTS messages (")
                || s.starts_with("ALTER TABLE messages ")
        })
        .collect()
}

async fn ddl(session: &Session, cql: String) -> Result<(), String> {
    session
        .query_unpaged(cql.clone(), &[])
        .await
        .map_err(|e| format!("{cql}: {e}"))?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes `plan.messages` rows and answers the rate and the latency of each insert.
pub async fn run(contact: &str, plan: &Plan) -> Result<Value, String> {
    let keyspace = format!("dovie_floor_{}", std::process::id());
    let session = SessionBuilder::new()
        .known_node(contact)
        .build()
        .await
        .map_err(|e| format!("CQL {contact}: {e}"))?;
    ddl(&session, format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")).await?;
    session
        .use_keyspace(&keyspace, false)
        .await
        .map_err(|e| e.to_string())?;
    for stmt in messages_ddl() {
        ddl(&session, stmt).await?;
    }
    let result = tokio::time::timeout(RUN_TIMEOUT, write(&session, plan))
        .await
        .map_err(|_| format!("the bare writer took over {RUN_TIMEOUT:?}"))
        .and_then(|r| r);
    let _ = session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), &[])
        .await;
    result
}

async fn write(session: &Session, plan: &Plan) -> Result<Value, String> {
    let mut insert = session.prepare(INSERT).await.map_err(|e| e.to_string())?;
    insert.set_consistency(Consistency::Quorum);
    let content = "x".repeat(plan.payload_bytes);
    let next = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let latency = parking_lot::Mutex::new(new_histogram());
    let shared = Arc::new((insert, content));
    let started = Instant::now();
    let worker = || async {
        let (insert, content) = &*shared;
        let mut local = new_histogram();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed) as usize;
            if i >= plan.messages {
                break;
            }
            let room = format!("floor-room-{}", i % plan.partitions.max(1));
            let seq = (i / plan.partitions.max(1)) as i64 + 1;
            let values = (
                0_i64,
                1_i64,
                room,
                seq,
                format!("floor-{i}"),
                "floor-sender",
                "text",
                content.as_str(),
                format!("n{i}"),
                None::<String>,
                Vec::<String>::new(),
                "[]",
                0_i64,
                None::<String>,
                false,
            );
            let t = Instant::now();
            match session.execute_unpaged(insert, values).await {
                Ok(_) => {
                    let _ = local.record(t.elapsed().as_micros() as u64);
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let _ = latency.lock().add(&local);
    };
    futures_util::future::join_all((0..plan.concurrency.max(1)).map(|_| worker())).await;
    let secs = started.elapsed().as_secs_f64();
    let errors = errors.load(Ordering::Relaxed);
    let written = plan.messages as u64 - errors.min(plan.messages as u64);
    let latency = latency.lock();
    Ok(json!({
        "target": "cql-floor",
        "messages": plan.messages,
        "partitions": plan.partitions,
        "concurrency": plan.concurrency,
        "errors": errors,
        "inserts_per_sec": (written as f64 / secs).round(),
        "latency": report::percentiles(&latency),
    }))
}

/// One line for the bare writer's result.
pub fn row(r: &Value) -> String {
    let l = &r["latency"];
    format!(
        "| bare CQL writer | {} partitions, {} in flight | {} inserts | {} inserts/s | {} / {} / {} ms | {} errors |\n",
        r["partitions"], r["concurrency"], r["messages"], r["inserts_per_sec"],
        l["p50_ms"], l["p99_ms"], l["max_ms"], r["errors"],
    )
}

/// The table of `dovie-load cql-floor`.
pub fn table(summary: &Value) -> String {
    format!(
        "| target | load | written | rate | p50 / p99 / max | |\n|---|---|---|---|---|---|\n{}",
        row(&summary["result"])
    )
}

fn new_histogram() -> Histogram<u64> {
    // unwrap: constant, valid bounds.
    #[allow(clippy::unwrap_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_table_is_dovies_messages_table() {
        let ddl = messages_ddl();
        assert!(ddl[0].starts_with("CREATE TABLE IF NOT EXISTS messages ("));
        assert!(ddl[0].contains("PRIMARY KEY ((room_id, bucket), seq, epoch)"));
        assert!(ddl
            .iter()
            .any(|s| s == "ALTER TABLE messages ADD suggest_location boolean"));
        // Every column the insert names exists in the table the statements make.
        let all = ddl.join("\n");
        let cols = INSERT
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(cols, _)| cols)
            .unwrap();
        for col in cols.split(',').map(str::trim) {
            assert!(
                all.contains(&format!("{col} ")) || all.contains(&format!("{col},")),
                "{col} is not a column of messages"
            );
        }
    }
}
