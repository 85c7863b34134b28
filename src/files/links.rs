//! Link previews: the URLs in a message are fetched through the egress guard (http and https
//! only, every redirect re-checked, at most 5 redirects, 5 s, 1 MiB, HTML only), their
//! OpenGraph / Twitter card / HTML metadata read, the preview image fetched the same way and
//! stored as a Dovie file (so clients never hot-link a third party), and the result cached in
//! the store (`link_previews`) — a page with no metadata is cached as none. A link to a YouTube
//! video is described by the YouTube Data API (`videos.list`) when it is configured — title,
//! channel, description and thumbnail, plus a `video` object — and read like any page when not.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use super::{Files, UploadRequest};
use crate::ai::Ai;
use crate::egress::{Egress, EgressError};
use crate::providers::youtube::{video_id_of, VideoDetail};
use crate::store::{FileKind, LinkPreviewRecord, SharedStore};
use dovie_protocol::model::UserRole;

/// Links previewed per message at most.
pub const MAX_LINKS: usize = 3;
/// A fetch's whole time limit.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest page read.
const MAX_PAGE_BYTES: u64 = 1024 * 1024;
/// Largest preview image fetched.
const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// A cached preview is fetched again after this long.
const CACHE_TTL_MS: i64 = 24 * 3600 * 1000;
const MAX_URL_CHARS: usize = 2048;
const MAX_TITLE_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 500;
/// The owner of proxied preview images (no account has this id).
pub const LINK_IMAGES_OWNER: &str = "dovie:link-previews";

/// The http(s) URLs in a text, in order, without duplicates, at most [`MAX_LINKS`].
pub fn urls_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"') {
        let lower = word.to_ascii_lowercase();
        let Some(start) = lower.find("https://").or_else(|| lower.find("http://")) else {
            continue;
        };
        let url = word[start..].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'']);
        if url.len() > MAX_URL_CHARS || out.iter().any(|u| u == url) {
            continue;
        }
        if url::Url::parse(url).is_ok_and(|u| u.host_str().is_some()) {
            out.push(url.to_string());
        }
        if out.len() == MAX_LINKS {
            break;
        }
    }
    out
}

/// Fetches, parses and caches link previews.
pub struct LinkPreviewer {
    pub egress: Egress,
    pub files: Arc<Files>,
    pub store: SharedStore,
    /// YouTube's description of shared videos.
    pub ai: Arc<Ai>,
}

impl LinkPreviewer {
    /// The preview of `url` (cached), or `None` when the page has none or cannot be fetched.
    pub async fn preview(&self, url: &str) -> Option<Value> {
        let now = dovie_actors::now_ms();
        if let Ok(Some(cached)) = self.store.link_preview(url).await {
            if now - cached.fetched_at < CACHE_TTL_MS {
                crate::metrics::link_preview("cached");
                return (!cached.preview.is_null()).then_some(cached.preview);
            }
        }
        let fetched = match video_id_of(url).filter(|_| self.ai.youtube_ready().is_ok()) {
            Some(id) => match self.ai.youtube_video(&id).await {
                Ok(video) => Ok(match video {
                    Some(v) => Some(self.video_preview(url, v).await),
                    None => None,
                }),
                Err(_) => {
                    // Logged and counted by the provider call; not cached, so tried again.
                    crate::metrics::link_preview("failed");
                    return None;
                }
            },
            None => self.fetch(url).await,
        };
        let preview = match fetched {
            Ok(p) => {
                crate::metrics::link_preview(if p.is_some() { "ok" } else { "none" });
                p
            }
            Err(EgressError::Refused(why)) => {
                // Not cached: a refusal depends on the config, not on the page.
                tracing::info!(url, %why, "link preview refused by the egress guard");
                crate::metrics::link_preview("refused");
                return None;
            }
            Err(e) => {
                tracing::info!(url, error = %e, "link preview fetch failed");
                crate::metrics::link_preview("failed");
                None
            }
        };
        let record = LinkPreviewRecord {
            url: url.to_string(),
            preview: preview.clone().unwrap_or(Value::Null),
            fetched_at: now,
        };
        if let Err(e) = self.store.put_link_preview(&record).await {
            tracing::warn!(error = %e.message, "cannot cache a link preview");
        }
        preview
    }

    async fn fetch(&self, url: &str) -> Result<Option<Value>, EgressError> {
        let req = self
            .egress
            .client()
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .header("accept", "text/html,application/xhtml+xml");
        let res = self.egress.send(req).await?;
        if !res.status().is_success() {
            return Ok(None);
        }
        let html = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let ct = ct.to_ascii_lowercase();
                ct.starts_with("text/html") || ct.starts_with("application/xhtml+xml")
            });
        if !html {
            return Ok(None);
        }
        let final_url = res.url().clone();
        let body = match self.egress.body_capped(res, MAX_PAGE_BYTES).await {
            Ok(b) => b,
            Err(EgressError::TooLarge) => return Ok(None),
            Err(e) => return Err(e),
        };
        let page = String::from_utf8_lossy(&body);
        let meta = parse_html(&page);
        if meta.title.is_none() && meta.description.is_none() {
            return Ok(None);
        }
        let image_url = match meta.image.and_then(|i| final_url.join(&i).ok()) {
            Some(img) if matches!(img.scheme(), "http" | "https") => {
                self.proxy_image(img.as_str()).await
            }
            _ => None,
        };
        Ok(Some(json!({
            "url": url,
            "title": meta.title,
            "description": meta.description,
            "image_url": image_url,
            "site_name": meta.site_name.or_else(|| final_url.host_str().map(str::to_string)),
        })))
    }

    /// The preview of a YouTube video: what `videos.list` says, its thumbnail stored by Dovie.
    async fn video_preview(&self, url: &str, v: VideoDetail) -> Value {
        let image_url = match &v.video.thumbnail_url {
            Some(t) => self.proxy_image(t).await,
            None => None,
        };
        let description: String = v
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(MAX_DESCRIPTION_CHARS)
            .collect();
        json!({
            "url": url,
            "title": v.video.title.chars().take(MAX_TITLE_CHARS).collect::<String>(),
            "description": (!description.is_empty()).then_some(description),
            "image_url": image_url,
            "site_name": "YouTube",
            "video": {
                "provider": "youtube",
                "id": v.video.id,
                "url": v.video.url,
                "channel": v.video.channel,
                "published_at": v.video.published_at,
            },
        })
    }

    /// Fetches a preview image and stores it as a public Dovie file; its link.
    async fn proxy_image(&self, url: &str) -> Option<String> {
        let req = self.egress.client().get(url).timeout(FETCH_TIMEOUT);
        let res = self.egress.send(req).await.ok()?;
        if !res.status().is_success() {
            return None;
        }
        let bytes = self.egress.body_capped(res, MAX_IMAGE_BYTES).await.ok()?;
        let req = UploadRequest {
            uploader_id: LINK_IMAGES_OWNER.into(),
            role: UserRole::Admin,
            filename: url
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("preview")
                .to_string(),
            declared_len: Some(bytes.len() as u64),
            room_id: None,
            hashtags: Vec::new(),
            public: true,
            only: Some(&[FileKind::Image]),
            max_bytes: Some(MAX_IMAGE_BYTES),
        };
        let body = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(bytes)]);
        match self.files.upload(self.store.as_ref(), req, body).await {
            // SVG is never an inline preview image.
            Ok(f) if f.content_type != "image/svg+xml" => Some(format!("/api/files/{}", f.id)),
            Ok(_) => None,
            Err(e) => {
                tracing::info!(url, error = %e, "link preview image not stored");
                None
            }
        }
    }
}

/// What a page says of itself.
#[derive(Debug, Default, PartialEq)]
pub struct PageMeta {
    pub title: Option<String>,
    pub description: Option<String>,
    pub image: Option<String>,
    pub site_name: Option<String>,
}

/// Reads OpenGraph, Twitter card and plain HTML metadata (`<meta>` tags and `<title>`), the
/// first of each in that order of preference.
pub fn parse_html(html: &str) -> PageMeta {
    let mut og = PageMeta::default();
    let mut tw = PageMeta::default();
    let mut plain = PageMeta::default();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<meta") {
        let start = at + i;
        let Some(end) = lower[start..].find('>') else {
            break;
        };
        let tag = &html[start + 5..start + end];
        at = start + end;
        let attrs = attributes(tag);
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(content) = get("content").map(|c| unescape(&c)) else {
            continue;
        };
        let key = get("property")
            .or_else(|| get("name"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let slot = match key.as_str() {
            "og:title" => &mut og.title,
            "og:description" => &mut og.description,
            "og:image" | "og:image:url" | "og:image:secure_url" => &mut og.image,
            "og:site_name" => &mut og.site_name,
            "twitter:title" => &mut tw.title,
            "twitter:description" => &mut tw.description,
            "twitter:image" | "twitter:image:src" => &mut tw.image,
            "description" => &mut plain.description,
            "application-name" => &mut plain.site_name,
            _ => continue,
        };
        if slot.is_none() && !content.trim().is_empty() {
            *slot = Some(content.trim().to_string());
        }
    }
    if let Some(s) = lower.find("<title") {
        if let Some(gt) = lower[s..].find('>') {
            let from = s + gt + 1;
            if let Some(e) = lower[from..].find("</title") {
                let t = unescape(html[from..from + e].trim());
                if !t.is_empty() {
                    plain.title = Some(t);
                }
            }
        }
    }
    let cut = |s: Option<String>, n: usize| {
        s.map(|s| {
            let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
            s.chars().take(n).collect::<String>()
        })
    };
    PageMeta {
        title: cut(og.title.or(tw.title).or(plain.title), MAX_TITLE_CHARS),
        description: cut(
            og.description.or(tw.description).or(plain.description),
            MAX_DESCRIPTION_CHARS,
        ),
        image: og.image.or(tw.image),
        site_name: cut(og.site_name.or(plain.site_name), MAX_TITLE_CHARS),
    }
}

/// `name="value"` pairs of a tag (double, single or no quotes), names lower-cased.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = tag.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let name = tag[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let ve = tag[vs..].find(q as char).map_or(b.len(), |e| vs + e);
                i = (ve + 1).min(b.len());
                tag[vs..ve].to_string()
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                tag[vs..i].to_string()
            };
            if !name.is_empty() {
                out.push((name, value));
            }
        } else if !name.is_empty() {
            out.push((name, String::new()));
        } else {
            i += 1;
        }
    }
    out
}

/// The common HTML character references.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_found_in_text() {
        assert_eq!(
            urls_in("see https://example.com/a?b=1, and (http://x.org/y). also https://example.com/a?b=1"),
            vec!["https://example.com/a?b=1", "http://x.org/y"]
        );
        assert!(urls_in("no links; ftp://x.org; javascript:alert(1)").is_empty());
        assert_eq!(
            urls_in("a https://1.x b https://2.x c https://3.x d https://4.x").len(),
            3
        );
    }

    #[test]
    fn page_metadata_prefers_opengraph() {
        let html = r#"<html><head><title>Plain &amp; simple</title>
            <meta name="description" content="plain desc">
            <meta property='og:title' content="OG &quot;title&quot;" />
            <meta content="https://img.example/a.png" property="og:image">
            <meta name=twitter:description content=tw-desc>
            </head></html>"#;
        let m = parse_html(html);
        assert_eq!(m.title.as_deref(), Some("OG \"title\""));
        assert_eq!(m.description.as_deref(), Some("tw-desc"));
        assert_eq!(m.image.as_deref(), Some("https://img.example/a.png"));
        let plain = parse_html("<title>Only &#xC548;&#45397; title</title>");
        assert_eq!(plain.title.as_deref(), Some("Only 안녕 title"));
        assert_eq!(parse_html("<p>nothing</p>"), PageMeta::default());
    }
}
