//! The upgrade handshake: recognising a WebSocket request by peeking at the socket, reading the
//! request head (bounded in size and time), and writing the `101 Switching Protocols` answer or a
//! plain HTTP error response.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest request head accepted for an upgrade.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Headers an upgrade request may carry.
const MAX_HEADERS: usize = 48;
/// How long `peek_path` waits for a request line to arrive in pieces.
const PEEK_PATIENCE: Duration = Duration::from_millis(200);
const PEEK_STEP: Duration = Duration::from_millis(2);

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    Io(io::Error),
    /// The head is larger than [`MAX_HEAD_BYTES`].
    TooLarge,
    /// Not an HTTP/1.1 request.
    Malformed,
    /// The client did not finish the head in time.
    Timeout,
    /// The client closed the connection before finishing the head.
    Closed,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Io(e) => write!(f, "i/o error: {e}"),
            HeadError::TooLarge => f.write_str("request head too large"),
            HeadError::Malformed => f.write_str("malformed request head"),
            HeadError::Timeout => f.write_str("request head timed out"),
            HeadError::Closed => f.write_str("connection closed"),
        }
    }
}

/// A parsed request head, with whatever bytes the client sent after it.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string (after `?`), if any.
    pub query: Option<String>,
    /// Headers with lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    /// Bytes read past the head: the first WebSocket frames of an eager client.
    pub rest: BytesMut,
}

impl Head {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated lists split and trimmed.
    pub fn header_tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// Checks the request is a version-13 WebSocket upgrade; answers its `Sec-WebSocket-Key`.
    pub fn websocket_key(&self) -> Result<&str, &'static str> {
        if self.method != "GET" {
            return Err("a WebSocket upgrade must be a GET");
        }
        if !self.has_token("upgrade", "websocket") {
            return Err("no `Upgrade: websocket` header");
        }
        if !self.has_token("connection", "upgrade") {
            return Err("no `Connection: upgrade` header");
        }
        if self.header("sec-websocket-version") != Some("13") {
            return Err("only WebSocket version 13 is supported");
        }
        match self.header("sec-websocket-key") {
            Some(k) if !k.is_empty() => Ok(k),
            _ => Err("no `Sec-WebSocket-Key` header"),
        }
    }
}

/// Whether the request on this fresh connection is `GET <path>` (followed by a space or a
/// query), judged from the bytes already sent, without consuming them.
pub async fn peek_path(stream: &TcpStream, path: &str) -> bool {
    let want = format!("GET {path}");
    let mut buf = [0u8; 64];
    let need = (want.len() + 1).min(buf.len());
    let deadline = tokio::time::Instant::now() + PEEK_PATIENCE;
    loop {
        let n = match stream.peek(&mut buf[..need]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let seen = &buf[..n];
        let common = n.min(want.len());
        if seen[..common] != want.as_bytes()[..common] {
            return false;
        }
        if n >= need {
            return matches!(seen[want.len()], b' ' | b'?');
        }
        // The request line arrived in pieces: wait a little for the rest.
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(PEEK_STEP).await;
    }
}

/// Reads one request head (up to [`MAX_HEAD_BYTES`], within `timeout`).
pub async fn read_head(stream: &mut TcpStream, timeout: Duration) -> Result<Head, HeadError> {
    match tokio::time::timeout(timeout, read_head_inner(stream)).await {
        Ok(r) => r,
        Err(_) => Err(HeadError::Timeout),
    }
}

async fn read_head_inner(stream: &mut TcpStream) -> Result<Head, HeadError> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        buf.reserve(1024);
        let n = stream.read_buf(&mut buf).await.map_err(HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        if let Some(head) = parse_head(&mut buf)? {
            return Ok(head);
        }
    }
}

/// Parses a complete head from the front of `buf`; `None` while it is incomplete.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let method = req.method.unwrap_or("").to_string();
    let _ = buf.split_to(len);
    let rest = if buf.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&buf[..])
    };
    Ok(Some(Head {
        method,
        path,
        query,
        headers,
        rest,
    }))
}

/// The `101 Switching Protocols` answer to an upgrade with this key.
pub fn switching_protocols(key: &str, subprotocol: Option<&str>) -> Vec<u8> {
    let accept = actix_http::ws::hash_key(key.as_bytes());
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: ",
    );
    out.extend_from_slice(&accept);
    out.extend_from_slice(b"\r\n");
    if let Some(p) = subprotocol {
        out.extend_from_slice(b"sec-websocket-protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A complete non-upgrade response that closes the connection.
pub fn response(status: u16, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    )
    .into_bytes();
    for (name, value) in extra {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Writes a whole response, giving up after `timeout`.
pub async fn write_all(stream: &mut TcpStream, bytes: &[u8], timeout: Duration) -> io::Result<()> {
    match tokio::time::timeout(timeout, stream.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// Bytes a lingering close reads and discards at most.
const LINGER_BYTES: usize = 64 * 1024;

/// A lingering close: shuts the write side, then reads and discards what the client still
/// sends (bounded in bytes and time) so that the close does not turn into a reset that could
/// destroy the answer before the client read it.
pub async fn linger(stream: &mut TcpStream, patience: Duration) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(patience, async {
        let mut sink = [0u8; 4096];
        let mut seen = 0;
        while seen < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<Head>, HeadError> {
        parse_head(&mut BytesMut::from(raw.as_bytes()))
    }

    const UPGRADE: &str = "GET /ws?format=msgpack&token=abc HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: a, dovie.msgpack\r\n\r\n";

    #[test]
    fn parses_an_upgrade_with_eager_frames() {
        let raw = format!("{UPGRADE}\u{82}\u{0}");
        let h = head(&raw).expect("parses").expect("complete");
        assert_eq!(h.path, "/ws");
        assert_eq!(h.query.as_deref(), Some("format=msgpack&token=abc"));
        assert_eq!(h.websocket_key(), Ok("dGhlIHNhbXBsZSBub25jZQ=="));
        let protocols: Vec<&str> = h.header_tokens("sec-websocket-protocol").collect();
        assert_eq!(protocols, ["a", "dovie.msgpack"]);
        assert_eq!(h.rest.len(), raw.len() - UPGRADE.len());
    }

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        let out = switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", None);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn incomplete_heads_wait_and_bad_ones_fail() {
        assert!(matches!(head("GET /ws HTTP/1.1\r\nHost: x\r\n"), Ok(None)));
        assert!(matches!(
            head("\u{1}\u{2} nonsense\r\n\r\n"),
            Err(HeadError::Malformed)
        ));
        let huge = format!(
            "GET /ws HTTP/1.1\r\nx-big: {}\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(matches!(head(&huge), Err(HeadError::TooLarge)));
    }

    #[test]
    fn plain_gets_are_not_upgrades() {
        let h = head("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("parses")
            .expect("complete");
        assert!(h.websocket_key().is_err());
        let h = head("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: k\r\n\r\n")
            .expect("parses")
            .expect("complete");
        assert_eq!(
            h.websocket_key(),
            Err("only WebSocket version 13 is supported")
        );
    }
}
