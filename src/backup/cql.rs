//! The CQL store in a backup: every table of the keyspace exported page by page as JSON rows
//! (`SELECT JSON`, one line per row, `tables/<table>.jsonl`), and put back into a migrated
//! keyspace (`INSERT … JSON ?`; counter columns added to their rows with `UPDATE … SET c = c +
//! ?`, keys bound with `fromJson`). Statements are bound, never built from values; table and
//! column names come from the keyspace's own schema.
//!
//! A paged export is not one instant of the whole keyspace (CQL has no such read): each row is
//! as it was when its page was read.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlValue;

use super::Writer;
use crate::config::Config;

/// The folder of the table entries.
pub const TABLES: &str = "tables/";
/// Rows written at once while restoring.
const WRITES_IN_FLIGHT: usize = 64;
/// Rows per exported piece of an entry, and per batch read back.
const ROWS_PER_PIECE: usize = 512;
pub const ROWS_PER_BATCH: usize = 1024;

/// A table's columns: names by kind.
#[derive(Debug, Default)]
struct Columns {
    /// Partition and clustering key columns.
    keys: Vec<String>,
    counters: Vec<String>,
}

async fn tables(session: &Session, keyspace: &str) -> Result<BTreeMap<String, Columns>, String> {
    let err = |e: &dyn std::fmt::Display| format!("reading the schema of {keyspace}: {e}");
    let mut out: BTreeMap<String, Columns> = BTreeMap::new();
    let mut rows = session
        .query_iter(
            "SELECT table_name, column_name, kind, type FROM system_schema.columns WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .map_err(|e| err(&e))?
        .rows_stream::<(String, String, String, String)>()
        .map_err(|e| err(&e))?;
    while let Some(row) = rows.next().await {
        let (table, column, kind, kind_of_value) = row.map_err(|e| err(&e))?;
        let t = out.entry(table).or_default();
        if kind == "partition_key" || kind == "clustering" {
            t.keys.push(column);
        } else if kind_of_value == "counter" {
            t.counters.push(column);
        }
    }
    Ok(out)
}

/// Writes every table of the configured keyspace into the archive (`schema_migrations` too: a
/// restore migrates the target first, and the rows agree).
pub(super) async fn export(w: &mut Writer, config: &Config) -> Result<(), String> {
    let session = crate::store::cql::keyspace_session(&config.scylla, &config.keyspace).await?;
    for table in tables(&session, &config.keyspace).await?.keys() {
        // Table names come from the keyspace's schema (letters, digits and _ only).
        if !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("unexpected table name `{table}`"));
        }
        let err = |e: &dyn std::fmt::Display| format!("exporting {table}: {e}");
        let rows = session
            .query_iter(format!("SELECT JSON * FROM {table}"), &[])
            .await
            .map_err(|e| err(&e))?
            .rows_stream::<(String,)>()
            .map_err(|e| err(&e))?;
        let table_err = table.clone();
        let pieces = rows
            .map(move |r| {
                r.map(|(json,)| json)
                    .map_err(|e| format!("exporting {table_err}: {e}"))
            })
            .chunks(ROWS_PER_PIECE)
            .map(|rows| {
                let mut piece = Vec::new();
                for row in rows {
                    piece.extend_from_slice(row?.as_bytes());
                    piece.push(b'\n');
                }
                Ok::<_, String>(Bytes::from(piece))
            });
        w.entry(&format!("{TABLES}{table}.jsonl"), true, Box::pin(pieces))
            .await?;
    }
    Ok(())
}

/// Whether the keyspace holds an account or a room.
pub(super) async fn has_data(config: &Config) -> Result<bool, String> {
    let session = crate::store::cql::keyspace_session(&config.scylla, &config.keyspace).await?;
    for table in ["users", "chat_rooms"] {
        let found = session
            .query_unpaged(format!("SELECT * FROM {table} LIMIT 1"), &[])
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?
            .rows_num();
        if found > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Puts tables back into the configured (migrated) keyspace.
pub(super) struct Importer {
    session: Session,
    schema: BTreeMap<String, Columns>,
}

/// Puts one table's rows back, batch by batch.
pub(super) struct TableWriter<'a> {
    session: &'a Session,
    table: String,
    statement: PreparedStatement,
    /// The table's counter and key columns, if it counts.
    counts: Option<&'a Columns>,
}

impl Importer {
    pub(super) async fn open(config: &Config) -> Result<Importer, String> {
        let session = crate::store::cql::keyspace_session(&config.scylla, &config.keyspace).await?;
        let schema = tables(&session, &config.keyspace).await?;
        Ok(Importer { session, schema })
    }

    /// Starts restoring `table`; `truncate` empties it first (`--force`: counters are not
    /// added twice, rows not left over).
    pub(super) async fn table(
        &self,
        table: &str,
        truncate: bool,
    ) -> Result<TableWriter<'_>, String> {
        let columns = self.schema.get(table).ok_or_else(|| {
            format!("the backup holds a table `{table}` this keyspace does not have")
        })?;
        let err = |e: &dyn std::fmt::Display| format!("restoring {table}: {e}");
        if truncate {
            self.session
                .query_unpaged(format!("TRUNCATE {table}"), &[])
                .await
                .map_err(|e| err(&e))?;
        }
        let (cql, counts) = if columns.counters.is_empty() {
            (format!("INSERT INTO {table} JSON ?"), None)
        } else {
            // Counters: each row's counts added to its (empty) row, keys bound from JSON.
            let sets: Vec<String> = columns
                .counters
                .iter()
                .map(|c| format!("{c} = {c} + ?"))
                .collect();
            let wheres: Vec<String> = columns
                .keys
                .iter()
                .map(|k| format!("{k} = fromJson(?)"))
                .collect();
            let cql = format!(
                "UPDATE {table} SET {} WHERE {}",
                sets.join(", "),
                wheres.join(" AND ")
            );
            (cql, Some(columns))
        };
        let statement = self.session.prepare(cql).await.map_err(|e| err(&e))?;
        Ok(TableWriter {
            session: &self.session,
            table: table.to_string(),
            statement,
            counts,
        })
    }
}

impl TableWriter<'_> {
    /// Writes rows (JSON lines), [`WRITES_IN_FLIGHT`] at a time.
    pub(super) async fn write(&self, lines: Vec<String>) -> Result<(), String> {
        let table = &self.table;
        let err = |e: &dyn std::fmt::Display| format!("restoring {table}: {e}");
        let mut rows: Vec<Vec<CqlValue>> = Vec::with_capacity(lines.len());
        for line in lines {
            rows.push(match self.counts {
                None => vec![CqlValue::Text(line)],
                Some(columns) => {
                    let row: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&line).map_err(|e| err(&e))?;
                    let mut values = Vec::new();
                    for c in &columns.counters {
                        let v = row.get(c).and_then(serde_json::Value::as_i64).unwrap_or(0);
                        values.push(CqlValue::Counter(scylla::value::Counter(v)));
                    }
                    for k in &columns.keys {
                        let v = row.get(k).cloned().unwrap_or(serde_json::Value::Null);
                        values.push(CqlValue::Text(v.to_string()));
                    }
                    values
                }
            });
        }
        let mut writes = futures_util::stream::iter(rows.into_iter().map(|values| async move {
            self.session.execute_unpaged(&self.statement, values).await
        }))
        .buffer_unordered(WRITES_IN_FLIGHT);
        while let Some(done) = writes.next().await {
            done.map_err(|e| err(&e))?;
        }
        Ok(())
    }
}
