//! The YouTube Data API v3: `GET {base_url}/search?part=snippet&type=video&q=…&maxResults=…&key=…`
//! (`search.list`) and `GET {base_url}/videos?part=snippet&id=…&key=…` (`videos.list`, for link
//! previews of shared videos), mapped to Dovie's video objects. YouTube writes titles HTML-escaped
//! (`&#39;`, `&amp;`): they are unescaped here, so clients show them as written.

use serde::{Deserialize, Serialize};

use crate::config::YouTubeConfig;
use crate::egress::Egress;

/// Results a search answers at most (YouTube's own ceiling for `maxResults`).
pub const MAX_RESULTS: u32 = 50;
/// The most a search answer may weigh.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Video {
    pub id: String,
    pub title: String,
    pub channel: String,
    pub thumbnail_url: Option<String>,
    pub url: String,
    /// Milliseconds since the epoch.
    pub published_at: Option<i64>,
}

#[derive(Deserialize)]
struct SearchList {
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: ItemId,
    #[serde(default)]
    snippet: Option<Snippet>,
}

/// One video as `videos.list` describes it (the link preview of a shared video).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoDetail {
    pub video: Video,
    pub description: String,
}

#[derive(Deserialize)]
struct VideoList {
    #[serde(default)]
    items: Vec<VideoItem>,
}

#[derive(Deserialize)]
struct VideoItem {
    id: String,
    #[serde(default)]
    snippet: Option<Snippet>,
}

#[derive(Deserialize)]
struct ItemId {
    #[serde(rename = "videoId")]
    video_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snippet {
    #[serde(default)]
    title: String,
    #[serde(default)]
    channel_title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    published_at: Option<String>,
    #[serde(default)]
    thumbnails: std::collections::HashMap<String, Thumbnail>,
}

#[derive(Deserialize)]
struct Thumbnail {
    url: String,
}

pub struct YouTube {
    config: YouTubeConfig,
    egress: Egress,
}

impl YouTube {
    pub fn new(config: YouTubeConfig, egress: Egress) -> YouTube {
        YouTube { config, egress }
    }

    pub fn configured(&self) -> bool {
        !self.config.api_key.is_empty()
    }

    /// Videos matching `q`, at most `limit` (1–[`MAX_RESULTS`]); the failure for the log.
    pub async fn search(&self, q: &str, limit: u32) -> Result<Vec<Video>, String> {
        let url = format!("{}/search", self.config.base_url.trim_end_matches('/'));
        let mut url = reqwest::Url::parse(&url).map_err(|e| format!("base_url: {e}"))?;
        url.query_pairs_mut()
            .append_pair("part", "snippet")
            .append_pair("type", "video")
            .append_pair("q", q)
            .append_pair("maxResults", &limit.clamp(1, MAX_RESULTS).to_string())
            .append_pair("key", &self.config.api_key);
        let body = self.get("search.list", url).await?;
        let list: SearchList =
            serde_json::from_slice(&body).map_err(|e| format!("search.list body: {e}"))?;
        Ok(search_results(list))
    }

    /// The video `id` (see [`video_id_of`]), or `None` when YouTube knows no such video; the
    /// failure for the log.
    pub async fn video(&self, id: &str) -> Result<Option<VideoDetail>, String> {
        let url = format!("{}/videos", self.config.base_url.trim_end_matches('/'));
        let mut url = reqwest::Url::parse(&url).map_err(|e| format!("base_url: {e}"))?;
        url.query_pairs_mut()
            .append_pair("part", "snippet")
            .append_pair("id", id)
            .append_pair("key", &self.config.api_key);
        let body = self.get("videos.list", url).await?;
        let list: VideoList =
            serde_json::from_slice(&body).map_err(|e| format!("videos.list body: {e}"))?;
        Ok(list.items.into_iter().find(|i| i.id == id).and_then(|i| {
            let snippet = i.snippet?;
            let description = unescape(&snippet.description);
            Some(VideoDetail {
                video: to_video(i.id, snippet),
                description,
            })
        }))
    }

    /// The body of a successful answer to `url`; the failure, with the start of the error body.
    async fn get(&self, call: &str, url: reqwest::Url) -> Result<bytes::Bytes, String> {
        let req = self.egress.client().get(url);
        let res = self.egress.send(req).await.map_err(|e| format!("{e:?}"))?;
        let status = res.status();
        let body = self
            .egress
            .body_capped(res, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| format!("{e:?}"))?;
        if !status.is_success() {
            return Err(format!(
                "{call} answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
        Ok(body)
    }
}

/// The length of every YouTube video id.
const VIDEO_ID_LEN: usize = 11;

/// The video a YouTube link points at: `youtube.com/watch?v=…` (also `m.`, `music.` and
/// `www.`), `/shorts/…`, `/embed/…`, `/live/…`, `/v/…`, `youtube-nocookie.com/embed/…` and
/// `youtu.be/…`. Ids are eleven characters of `A–Z a–z 0–9 - _`; anything else is no video.
pub fn video_id_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
    let id = match host {
        "youtu.be" => segments.next()?.to_string(),
        "youtube.com" | "m.youtube.com" | "music.youtube.com" | "youtube-nocookie.com" => {
            match segments.next()? {
                "watch" => url
                    .query_pairs()
                    .find(|(k, _)| k == "v")
                    .map(|(_, v)| v.into_owned())?,
                "shorts" | "embed" | "live" | "v" => segments.next()?.to_string(),
                _ => return None,
            }
        }
        _ => return None,
    };
    let valid = id.len() == VIDEO_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(id)
}

/// The videos of a search answer (channels and playlists it may also hold are left out).
fn search_results(list: SearchList) -> Vec<Video> {
    list.items
        .into_iter()
        .filter_map(|i| Some(to_video(i.id.video_id?, i.snippet?)))
        .collect()
}

fn to_video(id: String, snippet: Snippet) -> Video {
    let thumbnail_url = ["high", "medium", "default"]
        .iter()
        .find_map(|k| snippet.thumbnails.get(*k))
        .map(|t| t.url.clone());
    let published_at = snippet
        .published_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    Video {
        url: format!("https://www.youtube.com/watch?v={id}"),
        id,
        title: unescape(&snippet.title),
        channel: unescape(&snippet.channel_title),
        thumbnail_url,
        published_at,
    }
}

/// The HTML character references YouTube puts in titles, resolved.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
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
    fn titles_are_unescaped() {
        assert_eq!(unescape("Rock &amp; Roll"), "Rock & Roll");
        assert_eq!(
            unescape("Don&#39;t stop &quot;now&quot;"),
            "Don't stop \"now\""
        );
        assert_eq!(unescape("&#x1F600; &lt;3"), "😀 <3");
        assert_eq!(unescape("a & b &bogus; &#;"), "a & b &bogus; &#;");
    }

    #[test]
    fn items_map_to_videos() {
        let list: SearchList = serde_json::from_value(serde_json::json!({
            "items": [
                {"id": {"kind": "youtube#video", "videoId": "abc"},
                 "snippet": {"title": "A &amp; B", "channelTitle": "Chan",
                             "publishedAt": "2024-01-02T03:04:05Z",
                             "thumbnails": {"default": {"url": "d"}, "high": {"url": "h"}}}},
                {"id": {"kind": "youtube#channel", "channelId": "c"}, "snippet": {"title": "x"}}
            ]
        }))
        .unwrap();
        let videos = search_results(list);
        assert_eq!(videos.len(), 1);
        assert_eq!(videos[0].title, "A & B");
        assert_eq!(videos[0].thumbnail_url.as_deref(), Some("h"));
        assert_eq!(videos[0].url, "https://www.youtube.com/watch?v=abc");
        assert_eq!(videos[0].published_at, Some(1_704_164_645_000));
    }

    #[test]
    fn video_links_name_their_video() {
        let id = Some("dQw4w9WgXcQ".to_string());
        for url in [
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com/watch?feature=share&v=dQw4w9WgXcQ&t=42",
            "http://m.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=x",
            "https://youtu.be/dQw4w9WgXcQ?si=abc",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://www.youtube.com/embed/dQw4w9WgXcQ",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/live/dQw4w9WgXcQ",
            "HTTPS://WWW.YOUTUBE.COM/watch?v=dQw4w9WgXcQ",
        ] {
            assert_eq!(video_id_of(url), id, "{url}");
        }
        for url in [
            "https://www.youtube.com/watch?v=short",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ1",
            "https://www.youtube.com/watch?v=dQw4w9Wg%3CQ",
            "https://www.youtube.com/channel/UCdQw4w9WgXcQ",
            "https://www.youtube.com/",
            "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
            "https://notyoutube.com/watch?v=dQw4w9WgXcQ",
            "ftp://youtu.be/dQw4w9WgXcQ",
        ] {
            assert_eq!(video_id_of(url), None, "{url}");
        }
    }
}
