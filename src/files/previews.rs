//! The preview jobs: off the request path, a few at a time, each file's metadata and preview
//! images made from its decrypted bytes (see `media`), the images stored encrypted like the
//! file, the results recorded on the file — which then shows them — and the messages that carry
//! the file amended. A job interrupted by a crash is picked up again at the next start: the
//! file stays `pending` in the store until its job finishes.

use std::io::BufReader;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::media::{self, Thumb};
use super::{preview_aad, Files};
use crate::store::{FileKind, FileMeta, FileRecord, PreviewObject, PreviewState, SharedStore};

/// Pending files picked up at start.
const RESUME_BATCH: usize = 1000;

/// Called with the file when its previews are done.
pub type OnDone = Arc<dyn Fn(FileRecord) + Send + Sync>;

/// The queue of files waiting for previews.
pub struct Queue {
    tx: mpsc::UnboundedSender<String>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    pub fn new() -> Queue {
        let (tx, rx) = mpsc::unbounded_channel();
        Queue {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    pub fn push(&self, file_id: &str) {
        let _ = self.tx.send(file_id.to_string());
    }
}

/// Where the workers reach this node's own HTTP server (for ffmpeg's range reads).
#[derive(Clone)]
pub struct Worker {
    pub files: Arc<Files>,
    pub store: SharedStore,
    pub self_url: String,
    pub on_done: OnDone,
}

/// Starts the workers (once) and queues the files a previous run left pending.
pub fn start(w: Worker) {
    let Some(rx) = w.files.previews.rx.lock().take() else {
        return;
    };
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..w.files.config.preview_workers {
        let (w, rx) = (w.clone(), rx.clone());
        tokio::spawn(async move {
            loop {
                let Some(id) = rx.lock().await.recv().await else {
                    return;
                };
                w.run(&id).await;
            }
        });
    }
    let w2 = w.clone();
    tokio::spawn(async move {
        match w2.store.pending_previews(RESUME_BATCH).await {
            Ok(files) => {
                for f in files {
                    w2.files.previews.push(&f.id);
                }
            }
            Err(e) => tracing::warn!(error = %e.message, "cannot list pending previews"),
        }
    });
}

impl Worker {
    async fn run(&self, id: &str) {
        let f = match self.store.file(id).await {
            Ok(Some(f)) if f.deleted_at.is_none() && f.preview_state == PreviewState::Pending => f,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(file = id, error = %e.message, "preview job cannot load the file");
                return;
            }
        };
        let (meta, thumbs) = match self.learn(&f).await {
            Ok(r) => r,
            Err(why) => {
                tracing::info!(file = id, %why, "no preview");
                crate::metrics::file_preview("failed");
                (f.meta.clone(), Vec::new())
            }
        };
        let mut meta = meta;
        for t in thumbs {
            let aad = preview_aad(&f.id, t.size);
            match self.files.put_sealed(&aad, &t.bytes).await {
                Ok(sealed) => meta.previews.push(PreviewObject {
                    size: t.size.to_string(),
                    object: sealed.object,
                    wrapped_key: sealed.wrapped_key,
                    key_id: sealed.key_id,
                    content_type: t.content_type.to_string(),
                    bytes: t.bytes.len() as u64,
                    width: t.width,
                    height: t.height,
                }),
                Err(e) => tracing::warn!(file = id, error = %e, "cannot store a preview"),
            }
        }
        crate::metrics::file_preview(if meta.previews.is_empty() {
            "none"
        } else {
            "done"
        });
        if let Err(e) = self.store.set_file_meta(&f.id, &meta).await {
            tracing::warn!(file = id, error = %e.message, "cannot record previews");
            return;
        }
        // Deleted meanwhile: its previews go too.
        match self.store.file(&f.id).await {
            Ok(Some(done)) if done.deleted_at.is_some() => self.files.delete_objects(&done).await,
            Ok(Some(done)) => (self.on_done)(done),
            _ => {}
        }
    }

    /// What the file's bytes tell, and its preview images.
    async fn learn(&self, f: &FileRecord) -> Result<(FileMeta, Vec<Thumb>), String> {
        let mut meta = f.meta.clone();
        meta.previews.clear();
        let files = self.files.clone();
        let rt = tokio::runtime::Handle::current();
        let cfg = files.config.clone();
        let record = f.clone();
        match f.kind {
            FileKind::Image if f.content_type == "image/svg+xml" => Ok((meta, Vec::new())),
            FileKind::Image => {
                let reader = files.blocking_reader(f, rt).map_err(|e| e.to_string())?;
                let square = f.public;
                tokio::task::spawn_blocking(move || {
                    let img = media::decode_image(
                        BufReader::with_capacity(64 * 1024, reader),
                        cfg.max_image_pixels,
                        cfg.max_image_alloc_bytes,
                    )?;
                    meta.width = Some(img.width());
                    meta.height = Some(img.height());
                    let sizes: &[(&'static str, u32)] = if square {
                        &media::AVATAR_SIZES
                    } else {
                        &media::SIZES
                    };
                    Ok((meta, media::thumbnails(&img, sizes, square)))
                })
                .await
                .map_err(|e| e.to_string())?
            }
            FileKind::Audio => {
                let reader = files.blocking_reader(f, rt).map_err(|e| e.to_string())?;
                let (len, ct) = (f.size, f.content_type.clone());
                tokio::task::spawn_blocking(move || {
                    meta.duration_ms = media::audio_duration(reader, len, &ct);
                    Ok((meta, Vec::new()))
                })
                .await
                .map_err(|e| e.to_string())?
            }
            FileKind::Video => {
                let url = format!(
                    "{}/api/files/{}?{}",
                    self.self_url,
                    f.id,
                    files.link_query(&f.id)
                );
                tokio::task::spawn_blocking(move || {
                    let frame = media::video_poster(&cfg.ffmpeg, &url).and_then(|png| {
                        media::decode_image(
                            std::io::Cursor::new(png),
                            cfg.max_image_pixels,
                            cfg.max_image_alloc_bytes,
                        )
                        .ok()
                    });
                    let img = match frame {
                        Some(img) => {
                            meta.width = Some(img.width());
                            meta.height = Some(img.height());
                            img
                        }
                        None => media::video_placeholder(),
                    };
                    Ok((meta, media::thumbnails(&img, &media::SIZES, false)))
                })
                .await
                .map_err(|e| e.to_string())?
            }
            FileKind::Document => {
                let ct = f.content_type.clone();
                let pdf = if ct == "application/pdf" && f.size <= media::MAX_PARSED_DOCUMENT {
                    Some(files.read_all(f).await.map_err(|e| e.to_string())?)
                } else {
                    None
                };
                let reader = files.blocking_reader(f, rt).map_err(|e| e.to_string())?;
                tokio::task::spawn_blocking(move || {
                    let (label, page) = if let Some(pdf) = pdf {
                        let (pages, title) = media::pdf_info(&pdf);
                        meta.pages = pages;
                        meta.title = title;
                        ("PDF", media::pdf_first_page(&cfg.pdftoppm, pdf))
                    } else if ct.contains("wordprocessingml") {
                        let (pages, title) = media::docx_info(reader);
                        meta.pages = pages;
                        meta.title = title;
                        ("DOCX", None)
                    } else if ct == "application/msword" {
                        let (pages, title) = media::doc_info(reader);
                        meta.pages = pages;
                        meta.title = title;
                        ("DOC", None)
                    } else {
                        ("TEXT", None)
                    };
                    let img = page
                        .and_then(|png| {
                            media::decode_image(
                                std::io::Cursor::new(png),
                                cfg.max_image_pixels,
                                cfg.max_image_alloc_bytes,
                            )
                            .ok()
                        })
                        .unwrap_or_else(|| {
                            let title = meta.title.clone().unwrap_or(record.filename.clone());
                            media::document_card(&title, meta.pages, label)
                        });
                    Ok((meta, media::thumbnails(&img, &media::SIZES, false)))
                })
                .await
                .map_err(|e| e.to_string())?
            }
            FileKind::Archive => Ok((meta, Vec::new())),
        }
    }
}
