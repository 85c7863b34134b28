//! Files: uploads streamed through the sniffer, the size guard and the chunk encryptor into the
//! object store (`object_store`: a local directory on one node, S3 in a cluster); reads that
//! open only the chunks a range touches; signed links; and the file object the API shows.
//!
//! Nothing of an upload is held whole in memory or written anywhere in clear: the body is
//! read a piece at a time, sealed chunk by chunk and handed to a multipart upload with a small
//! bounded buffer. An upload refused half-way (too large, over quota, a wrong type, the client
//! gone) is aborted, leaving nothing stored.
//!
//! Submodules: `crypto` (AES-256-GCM chunks, key wrapping), `sniff` (types from bytes),
//! `media` (dimensions, durations, pages, thumbnails), `previews` (the preview job queue),
//! `links` (link previews of messages).

pub mod attach;
pub mod crypto;
pub mod links;
pub mod media;
pub mod previews;
pub mod sniff;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use dovie_protocol::model::UserRole;
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::api::{ApiError, ApiResult};
use crate::config::{Config, FileBackend, FileLimits, FilesConfig};
use crate::store::{FileKind, FileMeta, FileRecord, PreviewObject, PreviewState, Store};
use crypto::{Layout, Opener, SecretKey};

/// A stream stored encrypted: its object, its data key wrapped by the master key `key_id`,
/// chunk size, plaintext size and SHA-256 (hex).
pub struct SealedStream {
    pub object: String,
    pub key_id: String,
    pub wrapped_key: String,
    pub chunk_bytes: u32,
    pub size: u64,
    pub sha256: String,
}

/// A small derived object stored encrypted (a preview), and how to open it.
#[derive(Debug, Clone)]
pub struct SealedObject {
    pub object: String,
    pub key_id: String,
    pub wrapped_key: String,
    pub chunk_bytes: u32,
}

/// Chunks fetched and opened together when streaming a download (1 MiB at the default size).
const READ_GROUP_CHUNKS: u64 = 16;
/// Plaintext sealed together on a blocking thread while the next batch is received and hashed.
const SEAL_BATCH_BYTES: usize = 1024 * 1024;
/// Parts of a multipart upload in flight at once (bounds an upload's memory).
const UPLOAD_PARTS_IN_FLIGHT: usize = 2;
/// Part size on S3 (its minimum is 5 MiB) and on the local backend.
const S3_PART_BYTES: usize = 5 * 1024 * 1024;
const LOCAL_PART_BYTES: usize = 1024 * 1024;
/// Signed links expire on a grid of this many seconds, so a link stays the same (and cacheable)
/// for a while.
const LINK_GRID_SECS: i64 = 300;
const MASTER_KEY_SECRET: &str = "files.master_key";
const LINK_KEY_SECRET: &str = "files.link_key";
/// The longest original file name kept, in characters.
const MAX_FILENAME_CHARS: usize = 255;
/// Hashtags one file carries at most.
pub const MAX_FILE_HASHTAGS: usize = 20;

/// What an upload is, before its bytes arrive.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub uploader_id: String,
    pub role: UserRole,
    pub filename: String,
    /// `Content-Length` of the body, when the client sent one.
    pub declared_len: Option<u64>,
    pub room_id: Option<String>,
    pub hashtags: Vec<String>,
    /// Readable by anyone (profile images).
    pub public: bool,
    /// Only these kinds are accepted here (voice messages: audio; profile images: image).
    pub only: Option<&'static [FileKind]>,
    /// A cap below the kind's limit (profile images).
    pub max_bytes: Option<u64>,
}

/// The file service every node runs.
pub struct Files {
    objects: Arc<dyn ObjectStore>,
    master_id: String,
    master: SecretKey,
    previous: HashMap<String, SecretKey>,
    link_key: Vec<u8>,
    config: FilesConfig,
    part_bytes: usize,
    uploads: Semaphore,
    previews: previews::Queue,
}

impl Files {
    /// Opens the object store of the config and settles the keys: the configured master key or
    /// the one generated once into the store, and the link-signing key (always the store's).
    pub async fn open(config: &Config, store: &dyn Store) -> Result<Arc<Files>, String> {
        let fc = config.files.clone();
        let (objects, part_bytes) = object_store_of(config)?;
        let secret = |name: &'static str| async move {
            store
                .secret_or_insert(name, &SecretKey::random().to_base64())
                .await
                .map_err(|e| format!("cannot read the generated {name}: {}", e.message))
        };
        let master = if fc.master_key.is_empty() {
            SecretKey::from_base64(&secret(MASTER_KEY_SECRET).await?)?
        } else {
            SecretKey::from_base64(&fc.master_key).map_err(|e| format!("files.master_key: {e}"))?
        };
        let master_id = if fc.master_key_id.is_empty() {
            master.fingerprint()
        } else {
            fc.master_key_id.clone()
        };
        let mut previous = HashMap::new();
        for (id, k) in &fc.previous_master_keys {
            let key = SecretKey::from_base64(k)
                .map_err(|e| format!("files.previous_master_keys.{id}: {e}"))?;
            previous.insert(id.clone(), key);
        }
        let link_key = SecretKey::from_base64(&secret(LINK_KEY_SECRET).await?)?;
        Ok(Arc::new(Files {
            objects,
            master_id,
            master,
            previous,
            link_key: link_key.to_base64().into_bytes(),
            uploads: Semaphore::new(fc.max_concurrent_uploads),
            previews: previews::Queue::new(),
            part_bytes,
            config: fc,
        }))
    }

    pub fn config(&self) -> &FilesConfig {
        &self.config
    }

    fn limits(&self, role: UserRole) -> &FileLimits {
        match role {
            UserRole::Admin => &self.config.admin_limits,
            UserRole::User => &self.config.limits,
        }
    }

    /// The largest upload of `kind` for `role`.
    pub fn limit(&self, kind: FileKind, role: UserRole) -> u64 {
        let l = self.limits(role);
        match kind {
            FileKind::Image => l.image,
            FileKind::Audio => l.audio,
            FileKind::Video => l.video,
            FileKind::Document => l.document,
            FileKind::Archive => l.archive,
        }
    }

    fn key_for(&self, key_id: &str) -> Option<&SecretKey> {
        if key_id == self.master_id {
            Some(&self.master)
        } else {
            self.previous.get(key_id)
        }
    }

    /// The data key of an object, unwrapped.
    fn data_key(&self, aad_id: &str, key_id: &str, wrapped: &str) -> ApiResult<SecretKey> {
        let master = self.key_for(key_id).ok_or_else(|| {
            crate::metrics::file_integrity_error();
            tracing::error!(key_id, "a file's key is wrapped by an unknown master key");
            ApiError::new(ErrorCode::Internal, "the file cannot be read")
        })?;
        crypto::unwrap_key(master, aad_id, wrapped).map_err(integrity)
    }

    /// Receives an upload: sniffs, checks limits and quota, encrypts and stores it, records it.
    pub async fn upload<S, E>(
        &self,
        store: &dyn Store,
        req: UploadRequest,
        mut body: S,
    ) -> ApiResult<FileRecord>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let _permit = self
            .uploads
            .acquire()
            .await
            .map_err(|_| ApiError::new(ErrorCode::Unavailable, "not taking uploads"))?;
        let filename = clean_filename(&req.filename);
        let ceiling = req.max_bytes.unwrap_or(u64::MAX).min(
            FileKind::ALL
                .iter()
                .map(|k| self.limit(*k, req.role))
                .max()
                .unwrap_or(0),
        );
        if req.declared_len.is_some_and(|n| n > ceiling) {
            crate::metrics::file_upload("unknown", "too_large");
            return Err(too_large(ceiling));
        }
        let quota = (req.role != UserRole::Admin && self.config.user_quota_bytes > 0)
            .then_some(self.config.user_quota_bytes);
        let used = match quota {
            Some(_) => store.storage_used(&req.uploader_id).await?,
            None => 0,
        };
        let over_quota = |n: u64| quota.is_some_and(|q| used.saturating_add(n) > q);
        if over_quota(req.declared_len.unwrap_or(0)) {
            crate::metrics::file_upload("unknown", "quota");
            return Err(quota_error(quota.unwrap_or(0), used));
        }

        // The head: enough to tell the type (the rest streams).
        let mut head: Vec<u8> = Vec::with_capacity(sniff::SNIFF_BYTES);
        let mut eof = false;
        while head.len() < sniff::SNIFF_BYTES {
            match body.next().await {
                Some(Ok(b)) => head.extend_from_slice(&b),
                Some(Err(e)) => return Err(body_error(e)),
                None => {
                    eof = true;
                    break;
                }
            }
            if head.len() as u64 > ceiling {
                crate::metrics::file_upload("unknown", "too_large");
                return Err(too_large(ceiling));
            }
        }
        let sniffed =
            sniff::sniff(&head[..head.len().min(sniff::SNIFF_BYTES)], eof).map_err(|r| {
                crate::metrics::file_upload("unknown", "refused_type");
                refused_type(r)
            })?;
        let kind = sniffed.kind;
        if req.only.is_some_and(|only| !only.contains(&kind)) {
            crate::metrics::file_upload(kind.as_str(), "refused_type");
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("a {} file is not accepted here", kind.as_str()),
            ));
        }
        let limit = self.limit(kind, req.role).min(ceiling);
        if req.declared_len.is_some_and(|n| n > limit) || head.len() as u64 > limit {
            crate::metrics::file_upload(kind.as_str(), "too_large");
            return Err(too_large(limit));
        }

        let id = uuid::Uuid::now_v7().to_string();
        let dims = (kind == FileKind::Image)
            .then(|| media::image_dimensions(&head))
            .flatten();
        let check = |total: u64| {
            if total > limit {
                crate::metrics::file_upload(kind.as_str(), "too_large");
                return Err(too_large(limit));
            }
            if over_quota(total) {
                crate::metrics::file_upload(kind.as_str(), "quota");
                return Err(quota_error(quota.unwrap_or(0), used));
            }
            Ok(())
        };
        let sealed = match self
            .seal_stream(&id, Bytes::from(head), eof, &mut body, check)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                if e.0.code == ErrorCode::BadRequest {
                    crate::metrics::file_upload(kind.as_str(), "aborted");
                } else if e.0.code == ErrorCode::StoreUnavailable {
                    crate::metrics::file_upload(kind.as_str(), "failed");
                }
                return Err(e);
            }
        };
        let (object, total, sha256) = (sealed.object, sealed.size, sealed.sha256);
        let path = ObjectPath::from(object.as_str());

        let mut meta = FileMeta::default();
        if let Some((w, h)) = dims {
            meta.width = Some(w);
            meta.height = Some(h);
        }
        let record = FileRecord {
            wrapped_key: sealed.wrapped_key,
            key_id: sealed.key_id,
            id,
            uploader_id: req.uploader_id,
            filename,
            content_type: sniffed.content_type.to_string(),
            kind,
            size: total,
            sha256,
            object,
            chunk_bytes: self.config.chunk_bytes,
            hashtags: req.hashtags,
            room_id: req.room_id,
            public: req.public,
            meta,
            preview_state: PreviewState::Pending,
            created_at: dovie_actors::now_ms(),
            deleted_at: None,
            transcript: None,
        };
        if let Err(e) = store.insert_file(&record).await {
            let _ = self.objects.delete(&path).await;
            crate::metrics::file_upload(kind.as_str(), "failed");
            return Err(e.into());
        }
        crate::metrics::file_upload(kind.as_str(), "stored");
        crate::metrics::file_bytes("in", total);
        self.previews.push(&record.id);
        Ok(record)
    }

    /// Encrypts a stream into a new object under a fresh data key bound to `aad_id`: `head`
    /// (already received; `eof` when it is everything) then the rest of `body`, with `check`
    /// asked the running total before each piece is kept (an error aborts the object). A
    /// blocking thread seals one batch while the next is received and hashed.
    pub(crate) async fn seal_stream<S, E>(
        &self,
        aad_id: &str,
        head: Bytes,
        mut eof: bool,
        body: &mut S,
        check: impl Fn(u64) -> ApiResult<()>,
    ) -> ApiResult<SealedStream>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let object = object_name();
        let data_key = SecretKey::random();
        let sealer = crypto::Sealer::new(&data_key, aad_id, self.config.chunk_bytes);
        let mut sha = Sha256::new();
        let path = ObjectPath::from(object.as_str());
        let upload = self
            .objects
            .put_multipart(&path)
            .await
            .map_err(object_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_bytes);
        let mut total: u64 = 0;
        let mut piece = head;
        let mut batch: Vec<u8> = Vec::with_capacity(SEAL_BATCH_BYTES);
        let mut sealing: Option<Sealing> = None;
        let mut idle_sealer = Some(sealer);
        let outcome: ApiResult<()> = loop {
            if !piece.is_empty() {
                total += piece.len() as u64;
                if let Err(e) = check(total) {
                    break Err(e);
                }
                sha.update(&piece);
                batch.extend_from_slice(&piece);
            }
            if batch.len() >= SEAL_BATCH_BYTES || (eof && sealing.is_some()) {
                if let Some(done) = sealing.take() {
                    match drain_sealed(&mut writer, done).await {
                        Ok(s) => idle_sealer = Some(s),
                        Err(e) => break Err(e),
                    }
                }
                if batch.len() >= SEAL_BATCH_BYTES {
                    let plain = std::mem::replace(&mut batch, Vec::with_capacity(SEAL_BATCH_BYTES));
                    let Some(mut s) = idle_sealer.take() else {
                        break Err(ApiError::new(ErrorCode::Internal, "no sealer"));
                    };
                    sealing = Some(tokio::task::spawn_blocking(move || {
                        let mut out = Vec::new();
                        s.push(&plain, &mut out);
                        (s, out)
                    }));
                }
            }
            if eof && sealing.is_none() {
                break Ok(());
            }
            if eof {
                piece = Bytes::new();
                continue;
            }
            match body.next().await {
                Some(Ok(b)) => piece = b,
                Some(Err(e)) => break Err(body_error(e)),
                None => {
                    eof = true;
                    piece = Bytes::new();
                }
            }
        };
        let sealed = match (outcome, idle_sealer) {
            (Ok(()), Some(mut s)) => {
                // The last batch, and the last chunk.
                let mut rest = Vec::new();
                s.push(&batch, &mut rest);
                rest.push(s.finish());
                write_chunks(&mut writer, rest).await
            }
            (Ok(()), None) => Err(ApiError::new(ErrorCode::Internal, "no sealer")),
            (Err(e), _) => Err(e),
        };
        if let Err(e) = sealed {
            if let Some(h) = sealing {
                let _ = h.await;
            }
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(object_error)?;
        Ok(SealedStream {
            object,
            key_id: self.master_id.clone(),
            wrapped_key: crypto::wrap_key(&self.master, aad_id, &data_key),
            chunk_bytes: self.config.chunk_bytes,
            size: total,
            sha256: sha.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// Deletes an object (a missing one is no error).
    pub async fn delete_object(&self, object: &str) {
        if let Err(e) = self.objects.delete(&ObjectPath::from(object)).await {
            if !matches!(e, object_store::Error::NotFound { .. }) {
                tracing::warn!(object, error = %e, "cannot delete an object");
            }
        }
    }

    /// Reads plaintext bytes `range` of a file as a stream. The first group of chunks is
    /// fetched and opened before this answers, so a file whose start fails its integrity
    /// check answers an error instead of a truncated body; a later failing chunk ends the
    /// stream with an error (the connection is cut: nothing of that chunk is sent).
    pub async fn read(
        self: &Arc<Self>,
        f: &FileRecord,
        range: Range<u64>,
    ) -> ApiResult<impl Stream<Item = Result<Bytes, std::io::Error>> + 'static> {
        let opener = self.opener(f)?;
        if range.is_empty() {
            return Ok(futures_util::stream::iter(Vec::new()).left_stream());
        }
        let (first_chunk, last_chunk) = opener.layout().chunks_of(&range);
        let first = self
            .read_group(&opener, &f.object, &range, first_chunk)
            .await?;
        // While one group goes out, the next is fetched and opened (on a blocking thread).
        let prefetch = {
            let (files, opener, object, range) = (
                self.clone(),
                opener.clone(),
                f.object.clone(),
                range.clone(),
            );
            move |from: u64| {
                let (files, opener, object, range) =
                    (files.clone(), opener.clone(), object.clone(), range.clone());
                tokio::spawn(async move { files.read_group(&opener, &object, &range, from).await })
            }
        };
        let next_from = first_chunk + READ_GROUP_CHUNKS;
        let next = (next_from <= last_chunk).then(|| prefetch(next_from));
        let state = (Some(Ok(first)), next, next_from);
        Ok(
            futures_util::stream::unfold(state, move |(ready, next, from)| {
                let prefetch = prefetch.clone();
                async move {
                    let current = match ready {
                        Some(r) => r,
                        None => match next {
                            None => return None,
                            Some(h) => {
                                let r = h.await.unwrap_or_else(|_| {
                                    Err(ApiError::new(ErrorCode::Internal, "a read failed"))
                                });
                                let following = from + READ_GROUP_CHUNKS;
                                let after = (following <= last_chunk).then(|| prefetch(following));
                                return Some(Self::yield_group(r, (None, after, following)));
                            }
                        },
                    };
                    Some(Self::yield_group(current, (None, next, from)))
                }
            })
            .right_stream(),
        )
    }

    /// One group of a download, counted; an error ends the stream.
    #[allow(clippy::type_complexity)]
    fn yield_group(
        group: ApiResult<Vec<u8>>,
        then: (
            Option<ApiResult<Vec<u8>>>,
            Option<tokio::task::JoinHandle<ApiResult<Vec<u8>>>>,
            u64,
        ),
    ) -> (
        Result<Bytes, std::io::Error>,
        (
            Option<ApiResult<Vec<u8>>>,
            Option<tokio::task::JoinHandle<ApiResult<Vec<u8>>>>,
            u64,
        ),
    ) {
        match group {
            Ok(b) => {
                crate::metrics::file_bytes("out", b.len() as u64);
                (Ok(Bytes::from(b)), then)
            }
            Err(e) => (Err(std::io::Error::other(e.0.message)), (None, None, 0)),
        }
    }

    fn opener(&self, f: &FileRecord) -> ApiResult<Opener> {
        let key = self.data_key(&f.id, &f.key_id, &f.wrapped_key)?;
        Ok(Opener::new(&key, &f.id, Layout::new(f.size, f.chunk_bytes)))
    }

    /// The plaintext of chunk group starting at chunk `from` (aligned to the range's first
    /// chunk), cut to `range`; empty past the range.
    async fn read_group(
        &self,
        opener: &Opener,
        object: &str,
        range: &Range<u64>,
        from: u64,
    ) -> ApiResult<Vec<u8>> {
        let layout = opener.layout();
        let (_, last) = layout.chunks_of(range);
        if from > last {
            return Ok(Vec::new());
        }
        let to = (from + READ_GROUP_CHUNKS - 1).min(last);
        let stored = self
            .objects
            .get_range(&ObjectPath::from(object), layout.stored_range(from, to))
            .await
            .map_err(object_error)?;
        let opener = opener.clone();
        let plain = tokio::task::spawn_blocking(move || opener.open_chunks(from, &stored))
            .await
            .map_err(|_| ApiError::new(ErrorCode::Internal, "a read failed"))?
            .map_err(integrity)?;
        let mut plain = plain;
        let base = from * layout.chunk;
        let start = range.start.saturating_sub(base) as usize;
        let end = ((range.end - base) as usize).min(plain.len());
        plain.truncate(end);
        if start > 0 {
            plain.drain(..start.min(end));
        }
        Ok(plain)
    }

    /// A file's whole plaintext (previews and small files only: callers bound the size).
    pub async fn read_all(self: &Arc<Self>, f: &FileRecord) -> ApiResult<Vec<u8>> {
        let mut out = Vec::with_capacity(f.size as usize);
        let mut s = Box::pin(self.read(f, 0..f.size).await?);
        while let Some(b) = s.next().await {
            out.extend_from_slice(
                &b.map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// A blocking `Read + Seek` over a file's plaintext, for decoders that need one (run it on
    /// a blocking thread: each chunk is fetched through the runtime `rt`).
    pub fn blocking_reader(
        self: &Arc<Self>,
        f: &FileRecord,
        rt: tokio::runtime::Handle,
    ) -> ApiResult<BlockingReader> {
        Ok(BlockingReader {
            files: self.clone(),
            opener: self.opener(f)?,
            object: f.object.clone(),
            rt,
            pos: 0,
            cached: None,
        })
    }

    /// Stores a small derived object (a preview) encrypted under a key of its own.
    pub async fn put_sealed(&self, aad_id: &str, plain: &[u8]) -> ApiResult<SealedObject> {
        let key = SecretKey::random();
        // One chunk: previews are small and always read whole.
        let chunk_bytes = (plain.len() as u32).max(1);
        let mut sealer = crypto::Sealer::new(&key, aad_id, chunk_bytes);
        let mut chunks = Vec::new();
        sealer.push(plain, &mut chunks);
        chunks.push(sealer.finish());
        let object = object_name();
        let payload: PutPayload = chunks.into_iter().collect();
        self.objects
            .put(&ObjectPath::from(object.as_str()), payload)
            .await
            .map_err(object_error)?;
        Ok(SealedObject {
            object,
            key_id: self.master_id.clone(),
            wrapped_key: crypto::wrap_key(&self.master, aad_id, &key),
            chunk_bytes,
        })
    }

    /// Reads a preview's plaintext.
    pub async fn read_preview(&self, file_id: &str, p: &PreviewObject) -> ApiResult<Vec<u8>> {
        let aad_id = preview_aad(file_id, &p.size);
        let key = self.data_key(&aad_id, &p.key_id, &p.wrapped_key)?;
        let layout = Layout::new(p.bytes, (p.bytes as u32).max(1));
        let opener = Opener::new(&key, &aad_id, layout);
        let stored = self
            .objects
            .get_range(
                &ObjectPath::from(p.object.as_str()),
                layout.stored_range(0, layout.chunks() - 1),
            )
            .await
            .map_err(object_error)?;
        opener.open_chunks(0, &stored).map_err(integrity)
    }

    /// Removes a file's bytes and its previews' (the record stays, marked deleted).
    pub async fn delete_objects(&self, f: &FileRecord) {
        let objects = std::iter::once(f.object.as_str())
            .chain(f.meta.previews.iter().map(|p| p.object.as_str()));
        for o in objects {
            if let Err(e) = self.objects.delete(&ObjectPath::from(o)).await {
                if !matches!(e, object_store::Error::NotFound { .. }) {
                    tracing::warn!(object = o, error = %e, "cannot delete a file object");
                }
            }
        }
    }

    /// The signature of a link to `what` (`file:<id>`, `export:<id>:<user>`) valid until `exp`
    /// (unix seconds).
    fn signature(&self, what: &str, exp: i64) -> String {
        // unwrap-free: HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.link_key)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(b"").expect("hmac"));
        mac.update(format!("{what}:{exp}").as_bytes());
        B64URL.encode(mac.finalize().into_bytes())
    }

    /// `exp=…&sig=…` for a link to file `id`.
    pub fn link_query(&self, id: &str) -> String {
        let now = dovie_actors::now_ms() / 1000;
        let until = now + self.config.link_ttl_secs as i64;
        let exp = (until + LINK_GRID_SECS - 1) / LINK_GRID_SECS * LINK_GRID_SECS;
        format!(
            "exp={exp}&sig={}",
            self.signature(&format!("file:{id}"), exp)
        )
    }

    /// Whether a link's `exp` and `sig` are valid for file `id` now.
    pub fn link_valid(&self, id: &str, exp: i64, sig: &str) -> bool {
        self.signed_valid(&format!("file:{id}"), exp, sig)
    }

    /// `exp=…&sig=…` for a link to `what` (see [`Files::signed_valid`]) valid until `exp` (unix
    /// seconds).
    pub fn signed_query(&self, what: &str, exp: i64) -> String {
        format!("exp={exp}&sig={}", self.signature(what, exp))
    }

    /// Whether a link's `exp` and `sig` are valid for `what` now.
    pub fn signed_valid(&self, what: &str, exp: i64, sig: &str) -> bool {
        let now = dovie_actors::now_ms() / 1000;
        if exp < now {
            return false;
        }
        let expected = self.signature(what, exp);
        // Constant-time comparison.
        expected.len() == sig.len()
            && expected
                .bytes()
                .zip(sig.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The file object the API shows, with signed links.
    pub fn present(&self, f: &FileRecord) -> Value {
        let mut v = object_of(f);
        self.sign(&mut v);
        v
    }

    /// Adds the signed `url` (and `preview_url`) to a stored file object.
    pub fn sign(&self, v: &mut Value) {
        let Some(o) = v.as_object_mut() else { return };
        if o.get("deleted").and_then(Value::as_bool) == Some(true) {
            o.remove("url");
            o.remove("preview_url");
            return;
        }
        let Some(id) = o.get("id").and_then(Value::as_str).map(str::to_string) else {
            return;
        };
        let q = self.link_query(&id);
        o.insert("url".into(), json!(format!("/api/files/{id}?{q}")));
        if o.get("has_preview").and_then(Value::as_bool) == Some(true) {
            o.insert(
                "preview_url".into(),
                json!(format!("/api/file-preview/{id}?size=medium&{q}")),
            );
        }
    }
}

/// A batch being sealed on a blocking thread: the sealer comes back with the chunks it made.
type Sealing = tokio::task::JoinHandle<(crypto::Sealer, Vec<Bytes>)>;

/// Writes a finished batch's chunks to the upload; answers the sealer for the next batch.
async fn drain_sealed(writer: &mut WriteMultipart, done: Sealing) -> ApiResult<crypto::Sealer> {
    let (sealer, chunks) = done
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "sealing failed"))?;
    write_chunks(writer, chunks).await?;
    Ok(sealer)
}

/// Hands sealed chunks to the multipart upload, waiting while too many parts are in flight.
async fn write_chunks(writer: &mut WriteMultipart, chunks: Vec<Bytes>) -> ApiResult<()> {
    for c in chunks {
        writer
            .wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT)
            .await
            .map_err(object_error)?;
        writer.write(&c);
    }
    Ok(())
}

/// A file object without links (as kept in a message's attachments).
/// The files `ids` names for `uploader` to attach (to a message, a post, a verification
/// request): each one theirs, not deleted, named once; else the error that says which rule.
/// A page of the files `user_id` uploaded and did not delete, newest first, ids below
/// `before` (`limit` read per page); and the cursor of the next page, `None` at the end.
pub async fn uploaded_by(
    store: &crate::store::SharedStore,
    user_id: &str,
    before: Option<String>,
    limit: usize,
) -> crate::store::StoreResult<(Vec<FileRecord>, Option<String>)> {
    let page = store
        .list_files(&crate::store::FileQuery {
            user_id: user_id.to_string(),
            rooms: Vec::new(),
            room_id: None,
            hashtag: None,
            kind: None,
            before,
            limit,
        })
        .await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|f| f.id.clone()))
        .flatten();
    let mine = page
        .into_iter()
        .filter(|f| f.uploader_id == user_id)
        .collect();
    Ok((mine, next))
}

pub async fn own_files(
    store: &crate::store::SharedStore,
    uploader: &str,
    ids: &[String],
) -> Result<Vec<FileRecord>, dovie_protocol::error::ErrorBody> {
    use dovie_protocol::error::{ErrorBody, ErrorCode};
    let mut files: Vec<FileRecord> = Vec::with_capacity(ids.len());
    for id in ids {
        let f = store
            .file(id)
            .await?
            .filter(|f| f.deleted_at.is_none())
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, format!("no such file: {id}")))?;
        if f.uploader_id != uploader {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "only files you uploaded can be attached",
            ));
        }
        if files.iter().any(|g| g.id == f.id) {
            return Err(ErrorBody::new(
                ErrorCode::ValidationFailed,
                "a file is attached twice",
            ));
        }
        files.push(f);
    }
    Ok(files)
}

pub fn object_of(f: &FileRecord) -> Value {
    let mut v = json!({
        "id": f.id,
        "filename": f.filename,
        "content_type": f.content_type,
        "kind": f.kind.as_str(),
        "size": f.size,
        "sha256": f.sha256,
        "hashtags": f.hashtags,
        "uploader_id": f.uploader_id,
        "created_at": f.created_at,
        "has_preview": !f.meta.previews.is_empty(),
        "preview_ready": f.preview_state == PreviewState::Done,
    });
    let o = v.as_object_mut().expect("a json! object");
    let m = &f.meta;
    if let Some(w) = m.width {
        o.insert("width".into(), json!(w));
    }
    if let Some(h) = m.height {
        o.insert("height".into(), json!(h));
    }
    if let Some(d) = m.duration_ms {
        o.insert("duration_ms".into(), json!(d));
    }
    if let Some(p) = m.pages {
        o.insert("pages".into(), json!(p));
    }
    if let Some(t) = &m.title {
        o.insert("title".into(), json!(t));
    }
    if let Some(r) = &f.room_id {
        o.insert("room_id".into(), json!(r));
    }
    if f.deleted_at.is_some() {
        o.insert("deleted".into(), json!(true));
    }
    if let Some(t) = &f.transcript {
        o.insert(
            "transcript".into(),
            json!({ "text": t.text, "language": t.language }),
        );
    }
    v
}

/// The associated-data id of a file's preview of one size.
pub fn preview_aad(file_id: &str, size: &str) -> String {
    format!("{file_id}/preview/{size}")
}

/// A blocking reader over a file's plaintext (see [`Files::blocking_reader`]).
pub struct BlockingReader {
    files: Arc<Files>,
    opener: Opener,
    object: String,
    rt: tokio::runtime::Handle,
    pos: u64,
    /// The chunk last opened: its index and plaintext.
    cached: Option<(u64, Vec<u8>)>,
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let layout = self.opener.layout();
        if self.pos >= layout.size || buf.is_empty() {
            return Ok(0);
        }
        let index = self.pos / layout.chunk;
        if self.cached.as_ref().map(|c| c.0) != Some(index) {
            let range = layout.stored_range(index, index);
            let path = ObjectPath::from(self.object.as_str());
            let stored = self
                .rt
                .block_on(self.files.objects.get_range(&path, range))
                .map_err(std::io::Error::other)?;
            let plain = self.opener.open_chunks(index, &stored).map_err(|e| {
                crate::metrics::file_integrity_error();
                std::io::Error::other(e)
            })?;
            self.cached = Some((index, plain));
        }
        let (_, plain) = self.cached.as_ref().expect("cached above");
        let offset = (self.pos - index * layout.chunk) as usize;
        let n = (plain.len() - offset).min(buf.len());
        buf[..n].copy_from_slice(&plain[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlockingReader {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let size = self.opener.layout().size as i128;
        let target = match pos {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => size + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

/// The object store of the config (the local file system under the data dir, or S3) and the
/// part size its multipart uploads use.
pub fn object_store_of(config: &Config) -> Result<(Arc<dyn ObjectStore>, usize), String> {
    let fc = &config.files;
    let (objects, part_bytes): (Arc<dyn ObjectStore>, usize) = match fc.backend {
        FileBackend::Local => {
            let dir = if fc.local_dir.is_empty() {
                config.data_dir.join("files")
            } else {
                std::path::PathBuf::from(&fc.local_dir)
            };
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| format!("files.local_dir {}: {e}", dir.display()))?;
            (Arc::new(local), LOCAL_PART_BYTES)
        }
        FileBackend::S3 => {
            let s3 = &fc.s3;
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_allow_http(s3.allow_http)
                .with_virtual_hosted_style_request(!s3.path_style);
            if !s3.endpoint.is_empty() {
                b = b.with_endpoint(&s3.endpoint);
            }
            if !s3.access_key_id.is_empty() {
                b = b
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(&s3.secret_access_key);
            }
            let s3 = b.build().map_err(|e| format!("files.s3: {e}"))?;
            (Arc::new(s3), S3_PART_BYTES)
        }
    };
    Ok((objects, part_bytes))
}

/// A random stored object name: 128 random bits, fanned out over 256 directories.
fn object_name() -> String {
    let mut raw = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("objects/{}/{hex}", &hex[..2])
}

/// The original name, kept only for `Content-Disposition`: no path, no control characters, at
/// most [`MAX_FILENAME_CHARS`]; empty becomes `file`.
pub fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

fn integrity(e: crypto::IntegrityError) -> ApiError {
    crate::metrics::file_integrity_error();
    tracing::error!(error = %e, "a stored file failed its integrity check");
    ApiError::new(
        ErrorCode::Internal,
        "the stored file failed its integrity check",
    )
}

fn object_error(e: object_store::Error) -> ApiError {
    tracing::error!(error = %e, "object store error");
    ApiError(
        ErrorBody::new(
            ErrorCode::StoreUnavailable,
            "the file store is unavailable; try again",
        ),
        None,
    )
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the file exceeds the limit of {limit} bytes for its kind"),
    )
}

fn quota_error(quota: u64, used: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("storage quota exceeded: {used} of {quota} bytes used"),
    )
}

fn body_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::BadRequest,
        format!("cannot read the upload: {e}"),
    )
}

fn refused_type(r: sniff::Refused) -> ApiError {
    let what = match r {
        sniff::Refused::Executable(t) => format!("executables are not accepted ({t})"),
        sniff::Refused::Unknown(Some(t)) => format!("files of type {t} are not accepted"),
        sniff::Refused::Unknown(None) => "the file's type is unknown or not accepted".into(),
    };
    ApiError::new(ErrorCode::UnsupportedMediaType, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_filename("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(clean_filename(""), "file");
        assert_eq!(clean_filename(".htaccess"), "htaccess");
        assert_eq!(clean_filename("사진.jpg"), "사진.jpg");
        assert_eq!(clean_filename(&"x".repeat(400)).chars().count(), 255);
    }

    #[test]
    fn object_names_are_random_and_fanned_out() {
        let (a, b) = (object_name(), object_name());
        assert_ne!(a, b);
        assert!(a.starts_with("objects/") && a.len() == "objects/ab/".len() + 32);
    }
}
