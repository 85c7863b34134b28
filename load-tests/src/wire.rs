//! The load tool's own client side of the wire: a small HTTP/1.1 client for REST set-up and a
//! lean WebSocket client (masked frames out, many frames per write; frames in parsed straight
//! from one read buffer), both bound to a chosen loopback source address so that sessions can
//! spread over 127.0.0.x and get past one address's ephemeral ports.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use actix_http::ws::{OpCode, Parser};
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// The largest frame the client accepts from a server.
const MAX_FRAME: usize = 16 << 20;
const READ_CHUNK: usize = 64 * 1024;
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// The `n`th source address of `count` (127.0.0.1, 127.0.0.2, …).
pub fn source(n: usize, count: usize) -> IpAddr {
    let i = (n % count.max(1)) as u8;
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i))
}

/// Connects from `from` (any free port) to `to`.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = socket.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads one response head (up to the blank line); returns it and the bytes after it.
async fn read_head(stream: &mut TcpStream) -> io::Result<(String, BytesMut)> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let _ = buf.split_to(end + 4);
            return Ok((head, buf));
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head too large"));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::other("closed before a response head"));
        }
    }
}

/// A keep-alive HTTP/1.1 connection for JSON requests.
pub struct Http {
    stream: TcpStream,
    host: SocketAddr,
}

impl Http {
    pub async fn connect(from: IpAddr, to: SocketAddr) -> io::Result<Http> {
        Ok(Http {
            stream: connect_from(from, to).await?,
            host: to,
        })
    }

    /// One request; answers the status and the JSON body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> io::Result<(u16, Value)> {
        tokio::time::timeout(HTTP_TIMEOUT, self.exchange(method, path, token, body))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "HTTP request timed out"))?
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> io::Result<(u16, Value)> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.write_all(req.as_bytes()).await?;
        let (head, mut rest) = read_head(&mut self.stream).await?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line: {head}")))?;
        let declared: Option<usize> = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        });
        // 204 and 304 answers have no body, and need not say so.
        let length = match declared {
            Some(n) => n,
            None if status == 204 || status == 304 => 0,
            None => return Err(io::Error::other("no content-length")),
        };
        while rest.len() < length {
            if self.stream.read_buf(&mut rest).await? == 0 {
                return Err(io::Error::other("closed mid-body"));
            }
        }
        let value = if length == 0 {
            Value::Null
        } else {
            serde_json::from_slice(&rest[..length]).map_err(io::Error::other)?
        };
        Ok((status, value))
    }
}

/// An open WebSocket, split so that one task can read while another writes.
pub struct Socket {
    pub reader: Reader,
    pub writer: Writer,
}

/// Upgrades a fresh connection at `path_and_query` (offering `subprotocol`).
pub async fn websocket(
    from: IpAddr,
    to: SocketAddr,
    path_and_query: &str,
    subprotocol: Option<&str>,
) -> io::Result<Socket> {
    let mut stream = connect_from(from, to).await?;
    let protocol = subprotocol
        .map(|p| format!("sec-websocket-protocol: {p}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET {path_and_query} HTTP/1.1\r\nhost: {to}\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: ZG92aWUtbG9hZC1jbGllbnQ=\r\n{protocol}\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let (head, rest) = read_head(&mut stream).await?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(io::Error::other(format!(
            "upgrade refused: {}",
            head.lines().next().unwrap_or("")
        )));
    }
    let (rd, wr) = stream.into_split();
    Ok(Socket {
        reader: Reader { rd, buf: rest },
        writer: Writer {
            wr,
            buf: BytesMut::new(),
        },
    })
}

/// What the server sent.
pub enum Incoming {
    Message(Bytes),
    Ping(Bytes),
    Close(Option<u16>),
}

pub struct Reader {
    rd: OwnedReadHalf,
    buf: BytesMut,
}

impl Reader {
    /// The next frame; `None` when the connection ended without a close frame.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            match Parser::parse(&mut self.buf, false, MAX_FRAME) {
                Ok(Some((_, op, payload))) => {
                    let payload = payload.map(BytesMut::freeze).unwrap_or_default();
                    match op {
                        OpCode::Text | OpCode::Binary | OpCode::Continue => {
                            return Some(Incoming::Message(payload))
                        }
                        OpCode::Ping => return Some(Incoming::Ping(payload)),
                        OpCode::Close => {
                            let code = (payload.len() >= 2)
                                .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                            return Some(Incoming::Close(code));
                        }
                        OpCode::Pong | OpCode::Bad => continue,
                    }
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            self.buf.reserve(READ_CHUNK);
            match self.rd.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

pub struct Writer {
    wr: OwnedWriteHalf,
    buf: BytesMut,
}

impl Writer {
    /// Queues one binary message (masked, as a client must).
    pub fn push(&mut self, payload: &[u8]) {
        Parser::write_message(&mut self.buf, payload, OpCode::Binary, true, true);
    }

    /// Queues a pong.
    pub fn push_pong(&mut self, payload: &[u8]) {
        Parser::write_message(&mut self.buf, payload, OpCode::Pong, true, true);
    }

    /// Writes everything queued in one go.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let out = self.buf.split();
        self.wr.write_all(&out).await
    }

    pub async fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        self.push(payload);
        self.flush().await
    }
}
