//! Backups (ADM-6): `dovie backup --out FILE` writes one archive of a node's whole state while
//! it serves, `dovie restore --from FILE [--force]` puts it back into an empty node.
//!
//! The archive is a ZIP streamed to the file (never whole in memory: [`crate::zipstream`]):
//! `backup.json` (format, version, store kind, time); the store — on the embedded store
//! `store/dovie.db`, a consistent copy taken with `VACUUM INTO` (one read transaction, so the
//! node keeps writing), on the CQL store every table of the keyspace as JSON rows (`cql`);
//! `node/jwt_secret` (a generated signing secret, so tokens stay valid); every stored object
//! under `objects/` exactly as stored (still encrypted; the wrapped keys and the generated
//! master key travel in the store); and last `manifest.json`: every entry with its size and
//! SHA-256. A restore checks the whole archive against the manifest before it writes anything,
//! so a truncated or damaged archive restores nothing; it refuses a target that holds data
//! unless `--force`.
//!
//! Restoring one store kind into the other (the embedded store into ScyllaDB: the migration
//! from one machine to a cluster) answers that it is not built yet.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{ObjectStore, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::{Config, StoreKind};

mod cql;
use crate::zipstream::{write_zip, Op};

pub const FORMAT: &str = "dovie-backup";
pub const VERSION: u32 = 1;
const META: &str = "backup.json";
const MANIFEST: &str = "manifest.json";
const DB_ENTRY: &str = "store/dovie.db";
const SECRET_ENTRY: &str = "node/jwt_secret";
const OBJECTS: &str = "objects/";
/// Bytes read at a time from a file or an archive entry.
const CHUNK: usize = 1024 * 1024;
/// Entries the reading stage may be ahead of the ZIP writer, and pieces ahead of the file.
const IN_FLIGHT: usize = 8;
/// How long the copy of the embedded store waits for the node's writer.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a backup holds.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format: String,
    version: u32,
    /// `embedded` or `cql`.
    store: String,
    created_at: i64,
    dovie_version: String,
}

/// One entry's checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sum {
    size: u64,
    sha256: String,
}

/// What a backup or a restore did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub entries: usize,
    pub objects: usize,
    pub bytes: u64,
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn store_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Embedded => "embedded",
        StoreKind::Scylla => "cql",
    }
}

/// The reading stage of a backup: entries with their checksums.
struct Writer {
    ops: mpsc::Sender<Op>,
    sums: BTreeMap<String, Sum>,
    summary: Summary,
}

impl Writer {
    async fn send(&self, op: Op) -> Result<(), String> {
        self.ops
            .send(op)
            .await
            .map_err(|_| "the archive writer stopped".to_string())
    }

    async fn entry(
        &mut self,
        name: &str,
        deflate: bool,
        mut chunks: impl futures_util::Stream<Item = Result<Bytes, String>> + Unpin,
    ) -> Result<(), String> {
        self.send(Op::Entry {
            name: name.to_string(),
            deflate,
        })
        .await?;
        let (mut sha, mut size) = (Sha256::new(), 0u64);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            sha.update(&chunk);
            size += chunk.len() as u64;
            self.send(Op::Data(chunk)).await?;
        }
        self.sums.insert(
            name.to_string(),
            Sum {
                size,
                sha256: hex(sha.finalize()),
            },
        );
        self.summary.entries += 1;
        self.summary.bytes += size;
        Ok(())
    }

    async fn bytes(&mut self, name: &str, deflate: bool, b: Vec<u8>) -> Result<(), String> {
        let one = futures_util::stream::iter([Ok(Bytes::from(b))]);
        self.entry(name, deflate, one).await
    }

    async fn file(&mut self, name: &str, path: &Path) -> Result<(), String> {
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let chunks = futures_util::stream::poll_fn(move |_| {
            let mut buf = vec![0u8; CHUNK];
            match f.read(&mut buf) {
                Ok(0) => std::task::Poll::Ready(None),
                Ok(n) => {
                    buf.truncate(n);
                    std::task::Poll::Ready(Some(Ok(Bytes::from(buf))))
                }
                Err(e) => std::task::Poll::Ready(Some(Err(e.to_string()))),
            }
        });
        self.entry(name, true, chunks).await
    }

    /// Every object of the store, as stored.
    async fn objects(&mut self, objects: &dyn ObjectStore) -> Result<(), String> {
        let mut listed = objects.list(None);
        let mut names = Vec::new();
        while let Some(meta) = listed.next().await {
            names.push(meta.map_err(|e| e.to_string())?.location);
        }
        for location in names {
            let got = objects.get(&location).await.map_err(|e| e.to_string())?;
            let stream = got.into_stream().map(|r| r.map_err(|e| e.to_string()));
            self.entry(&format!("{OBJECTS}{location}"), false, stream)
                .await?;
            self.summary.objects += 1;
        }
        Ok(())
    }
}

/// `dovie backup --out FILE`: one archive of the configured node's store, secrets and objects,
/// consistent while the node serves.
pub async fn backup(config: &Config, out: &Path) -> Result<Summary, String> {
    if config.store == StoreKind::Scylla {
        let result = write_archive(config, out, None).await;
        if result.is_err() {
            let _ = std::fs::remove_file(out);
        }
        return result;
    }
    let db = config.data_dir.join("dovie.db");
    if !db.exists() {
        return Err(format!("no embedded store at {}", db.display()));
    }
    // A consistent copy of the store beside the archive, removed when done.
    let snapshot = out.with_extension("snapshot.db");
    let _ = std::fs::remove_file(&snapshot);
    {
        let c = rusqlite::Connection::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
        c.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
        let target = snapshot.to_string_lossy().to_string();
        c.execute("VACUUM INTO ?1", [&target])
            .map_err(|e| format!("cannot copy the store: {e}"))?;
    }
    let result = write_archive(config, out, Some(&snapshot)).await;
    let _ = std::fs::remove_file(&snapshot);
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

/// Writes the archive: the embedded store's `snapshot`, or (`None`) the CQL keyspace's tables.
async fn write_archive(
    config: &Config,
    out: &Path,
    snapshot: Option<&Path>,
) -> Result<Summary, String> {
    let (objects, _) = crate::files::object_store_of(config)?;
    let (ops_tx, ops_rx) = mpsc::channel::<Op>(IN_FLIGHT);
    let (out_tx, mut out_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    let zipper = tokio::task::spawn_blocking(move || write_zip(ops_rx, out_tx));
    let path = out.to_path_buf();
    let file_writer = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        while let Some(piece) = out_rx.blocking_recv() {
            let piece = piece.map_err(|e| e.to_string())?;
            f.write_all(&piece).map_err(|e| e.to_string())?;
        }
        f.sync_all().map_err(|e| e.to_string())
    });
    let mut w = Writer {
        ops: ops_tx,
        sums: BTreeMap::new(),
        summary: Summary::default(),
    };
    let reading = async {
        let meta = Meta {
            format: FORMAT.into(),
            version: VERSION,
            store: store_name(config.store).into(),
            created_at: dovie_actors::now_ms(),
            dovie_version: env!("CARGO_PKG_VERSION").into(),
        };
        w.bytes(
            META,
            true,
            serde_json::to_vec_pretty(&meta).unwrap_or_default(),
        )
        .await?;
        match snapshot {
            Some(db) => w.file(DB_ENTRY, db).await?,
            None => cql::export(&mut w, config).await?,
        }
        let secret = config.data_dir.join("jwt_secret");
        if secret.exists() {
            w.file(SECRET_ENTRY, &secret).await?;
        }
        w.objects(objects.as_ref()).await?;
        let manifest = serde_json::to_vec_pretty(&w.sums).map_err(|e| e.to_string())?;
        w.send(Op::Entry {
            name: MANIFEST.into(),
            deflate: true,
        })
        .await?;
        w.send(Op::Data(Bytes::from(manifest))).await?;
        Ok::<_, String>(())
    }
    .await;
    if let Err(e) = &reading {
        let _ = w.ops.send(Op::Abort(e.clone())).await;
    }
    let summary = std::mem::take(&mut w.summary);
    drop(w);
    let _ = zipper.await;
    let written = file_writer
        .await
        .map_err(|_| "the archive file writer failed".to_string())?;
    reading?;
    written?;
    Ok(summary)
}

/// Reads a whole archive entry through `f` in chunks.
fn each_chunk(
    zip: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
    mut f: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut entry = zip
        .by_name(name)
        .map_err(|e| format!("the archive is damaged: {name}: {e}"))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| format!("the archive is damaged: {name}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n])?;
    }
}

fn read_entry(zip: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    each_chunk(zip, name, |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// Checks every entry against the manifest (and the manifest against the entries).
fn verify(zip: &mut zip::ZipArchive<std::fs::File>) -> Result<BTreeMap<String, Sum>, String> {
    let manifest: BTreeMap<String, Sum> = serde_json::from_slice(&read_entry(zip, MANIFEST)?)
        .map_err(|e| format!("the archive is damaged: {MANIFEST}: {e}"))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    for name in &names {
        if name != MANIFEST && !manifest.contains_key(name) {
            return Err(format!(
                "the archive is damaged: {name} is not in its manifest"
            ));
        }
    }
    for (name, want) in &manifest {
        let (mut sha, mut size) = (Sha256::new(), 0u64);
        each_chunk(zip, name, |b| {
            sha.update(b);
            size += b.len() as u64;
            Ok(())
        })?;
        let got = Sum {
            size,
            sha256: hex(sha.finalize()),
        };
        if &got != want {
            return Err(format!(
                "the archive is damaged: {name} does not match its checksum"
            ));
        }
    }
    Ok(manifest)
}

/// Whether the target already holds data: an embedded store with any account or room, or any
/// stored object.
async fn target_has_data(config: &Config, objects: &dyn ObjectStore) -> Result<bool, String> {
    let db = config.data_dir.join("dovie.db");
    if db.exists() {
        let c = rusqlite::Connection::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
        let rows = |table: &str| -> i64 {
            c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap_or(0)
        };
        if rows("users") > 0 || rows("chat_rooms") > 0 {
            return Ok(true);
        }
    }
    Ok(objects.list(None).next().await.is_some())
}

/// `dovie restore --from FILE [--force]`: checks the whole archive, then puts the store, the
/// secret and the objects back into the configured node (stopped), refusing one that holds
/// data unless `force`.
pub async fn restore(config: &Config, from: &Path, force: bool) -> Result<Summary, String> {
    let file = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| format!("the archive is damaged or not a Dovie backup: {e}"))?;
    let meta: Meta = serde_json::from_slice(&read_entry(&mut zip, META)?)
        .map_err(|e| format!("not a Dovie backup: {META}: {e}"))?;
    if meta.format != FORMAT || meta.version != VERSION {
        return Err(format!(
            "not a Dovie backup of a known version ({} {})",
            meta.format, meta.version
        ));
    }
    if meta.store != store_name(config.store) {
        return Err(format!(
            "this is a backup of the {} store; restoring it into the {} store (one kind into the \
             other) is not built yet",
            meta.store,
            store_name(config.store)
        ));
    }
    let manifest = verify(&mut zip)?;
    let (objects, part_bytes) = crate::files::object_store_of(config)?;
    if config.store == StoreKind::Scylla {
        // The keyspace's schema, as the backup's tables expect it.
        crate::server::migrate(config).await?;
    }
    let holds_data = match config.store {
        StoreKind::Embedded => target_has_data(config, objects.as_ref()).await?,
        StoreKind::Scylla => {
            cql::has_data(config).await? || objects.list(None).next().await.is_some()
        }
    };
    if !force && holds_data {
        return Err(format!(
            "the node ({}) holds data: restore into an empty node, or add --force to replace it",
            match config.store {
                StoreKind::Embedded => config.data_dir.display().to_string(),
                StoreKind::Scylla => format!("keyspace {}", config.keyspace),
            }
        ));
    }
    let mut summary = Summary::default();
    std::fs::create_dir_all(&config.data_dir).map_err(|e| e.to_string())?;
    match config.store {
        StoreKind::Embedded => {
            // The store: written beside, then swapped in whole.
            let db = config.data_dir.join("dovie.db");
            let incoming = config.data_dir.join("dovie.db.restoring");
            {
                let mut f = std::fs::File::create(&incoming).map_err(|e| e.to_string())?;
                each_chunk(&mut zip, DB_ENTRY, |b| {
                    f.write_all(b).map_err(|e| e.to_string())
                })?;
                f.sync_all().map_err(|e| e.to_string())?;
            }
            for stale in ["dovie.db-wal", "dovie.db-shm"] {
                let _ = std::fs::remove_file(config.data_dir.join(stale));
            }
            std::fs::rename(&incoming, &db).map_err(|e| e.to_string())?;
            summary.entries += 1;
        }
        StoreKind::Scylla => {
            let importer = cql::Importer::open(config).await?;
            for name in manifest.keys() {
                let Some(table) = name
                    .strip_prefix(cql::TABLES)
                    .and_then(|t| t.strip_suffix(".jsonl"))
                else {
                    continue;
                };
                let writer = importer.table(table, force).await?;
                let entry = zip
                    .by_name(name)
                    .map_err(|e| format!("the archive is damaged: {name}: {e}"))?;
                let mut lines = std::io::BufRead::lines(std::io::BufReader::new(entry));
                loop {
                    let batch: Vec<String> = lines
                        .by_ref()
                        .take(cql::ROWS_PER_BATCH)
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("the archive is damaged: {name}: {e}"))?;
                    if batch.is_empty() {
                        break;
                    }
                    writer.write(batch).await?;
                }
                summary.entries += 1;
            }
        }
    }
    if manifest.contains_key(SECRET_ENTRY) {
        let secret = read_entry(&mut zip, SECRET_ENTRY)?;
        write_private(&config.data_dir.join("jwt_secret"), &secret)?;
        summary.entries += 1;
    }
    for (name, sum) in &manifest {
        let Some(location) = name.strip_prefix(OBJECTS) else {
            continue;
        };
        let path = object_store::path::Path::from(location);
        let upload = objects
            .put_multipart(&path)
            .await
            .map_err(|e| format!("{location}: {e}"))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_bytes);
        // Streamed: a chunk read, a chunk put (at most two parts in flight).
        let mut entry = zip
            .by_name(name)
            .map_err(|e| format!("the archive is damaged: {name}: {e}"))?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("the archive is damaged: {name}: {e}"))?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(2)
                .await
                .map_err(|e| format!("{location}: {e}"))?;
            writer.put(Bytes::copy_from_slice(&buf[..n]));
        }
        drop(entry);
        writer
            .finish()
            .await
            .map_err(|e| format!("{location}: {e}"))?;
        summary.objects += 1;
        summary.entries += 1;
        summary.bytes += sum.size;
    }
    // The restored store's audit log says so.
    let store = crate::server::open_store(config).await?;
    let label = from.display().to_string();
    let system = crate::audit::Actor {
        id: crate::audit::SYSTEM,
        ip: None,
    };
    crate::audit::note(
        &store,
        system,
        "backup.restored",
        crate::audit::Target {
            kind: "node",
            id: &config.node_id,
            label: Some(&label),
        },
        serde_json::json!({ "backup_created_at": meta.created_at, "entries": summary.entries, "objects": summary.objects, "forced": force }),
    )
    .await;
    Ok(summary)
}

fn write_private(path: &PathBuf, contents: &[u8]) -> Result<(), String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(contents))
        .map_err(|e| format!("{}: {e}", path.display()))
}
