//! One upgraded socket: [`drive`] reads client frames and hands them over as [`Inbound`] items,
//! and writes what the socket's [`Outbox`] holds.
//!
//! Memory is the design constraint: an idle socket keeps no buffer. Reads go into a buffer that
//! is dropped once every complete frame is handed over; writes gather every queued frame into one
//! buffer, written with as few `write` calls as the kernel allows and dropped once flushed. The
//! outbox is a mutex-guarded queue of shared frame bytes (an event is encoded once and the same
//! bytes go to every recipient), bounded so that a peer that does not read is noticed.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser, ProtocolError};
use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 8 * 1024;
/// Reads per poll before yielding to other sockets on the thread.
const READS_PER_POLL: usize = 16;
/// Bytes gathered for one flush before writing them out.
const WRITE_GATHER: usize = 256 * 1024;
/// A buffer with more spare capacity than this is dropped when empty.
const KEEP_CAPACITY: usize = 0;
/// A queue that grew past this many slots is given back when it empties (smaller ones are
/// kept: regrowing a queue on every burst costs more than the few hundred bytes).
const KEEP_QUEUE_SLOTS: usize = 64;
/// The longest header of an unmasked server frame (opcode, 64-bit length).
const MAX_FRAME_HEADER: usize = 10;
/// How long a closing socket may take to flush before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What the socket hands its owner.
#[derive(Debug)]
pub enum Inbound {
    /// A complete text or binary message (fragments joined).
    Frame(Bytes),
    Ping(Bytes),
    Pong,
    /// A message over the size limit; nothing more is read.
    TooLarge,
    /// The peer broke the WebSocket protocol; nothing more is read.
    Invalid(String),
    /// The peer closed (close frame, end of stream or an error); nothing more is read.
    Closed,
}

/// Per-socket settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The largest message accepted, fragments joined.
    pub max_message: usize,
    /// Whether outbound messages are binary frames (else text).
    pub binary: bool,
}

/// The outbox is full: the peer does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

enum Closing {
    /// Close after what is queued.
    After(u16, String),
    /// Close now, dropping what is queued.
    Now(u16, String),
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    pong: Option<Bytes>,
    ping: bool,
    closing: Option<Closing>,
    waker: Option<Waker>,
    /// The socket is gone: nothing more is written.
    ended: bool,
}

struct Shared {
    state: Mutex<State>,
    limit: usize,
    /// Live [`Outbox`] handles; when the last goes, the socket closes (1000).
    handles: AtomicUsize,
}

impl Shared {
    fn wake(&self, state: &mut State) {
        if let Some(w) = state.waker.take() {
            w.wake();
        }
    }
}

/// The write side of one socket: a bounded queue of frames plus pings, pongs and the close.
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    /// An outbox holding at most `limit` queued frames.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                limit: limit.max(1),
                handles: AtomicUsize::new(1),
            }),
        }
    }

    /// Queues one message. `Err` when the queue is full; frames after a close are dropped.
    pub fn send(&self, frame: Bytes) -> Result<(), OutboxFull> {
        let mut st = self.shared.state.lock();
        if st.ended || st.closing.is_some() {
            return Ok(());
        }
        if st.frames.len() >= self.shared.limit {
            return Err(OutboxFull);
        }
        st.frames.push_back(frame);
        self.shared.wake(&mut st);
        Ok(())
    }

    /// Queues several messages under one lock and one wake. `Err` (with nothing queued) when
    /// they do not all fit.
    pub fn send_batch(&self, frames: &mut dyn Iterator<Item = Bytes>) -> Result<(), OutboxFull> {
        let mut st = self.shared.state.lock();
        if st.ended || st.closing.is_some() {
            return Ok(());
        }
        let before = st.frames.len();
        for f in frames {
            if st.frames.len() >= self.shared.limit {
                st.frames.truncate(before);
                return Err(OutboxFull);
            }
            st.frames.push_back(f);
        }
        self.shared.wake(&mut st);
        Ok(())
    }

    pub fn ping(&self) {
        let mut st = self.shared.state.lock();
        st.ping = true;
        self.shared.wake(&mut st);
    }

    pub fn pong(&self, payload: Bytes) {
        let mut st = self.shared.state.lock();
        st.pong = Some(payload);
        self.shared.wake(&mut st);
    }

    /// Closes after what is queued if there is room in the queue, otherwise at once.
    pub fn close(&self, code: u16, reason: &str) {
        let mut st = self.shared.state.lock();
        if st.closing.is_some() {
            return;
        }
        st.closing = Some(if st.frames.len() < self.shared.limit {
            Closing::After(code, reason.to_string())
        } else {
            Closing::Now(code, reason.to_string())
        });
        self.shared.wake(&mut st);
    }

    /// Frames waiting to be written.
    pub fn queued(&self) -> usize {
        self.shared.state.lock().frames.len()
    }

    /// Whether the socket is gone.
    pub fn is_ended(&self) -> bool {
        self.shared.state.lock().ended
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Outbox {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Outbox {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut st = self.shared.state.lock();
            self.shared.wake(&mut st);
        }
    }
}

/// The reading half's state between polls.
struct Reader {
    buf: BytesMut,
    /// A fragmented message being joined: (is text, bytes so far).
    fragments: Option<BytesMut>,
    done: bool,
}

/// Drives one upgraded socket until it closes: hands every inbound item to `on_inbound` and
/// writes what `outbox` queues. `rest` holds bytes read past the upgrade head. The outbox
/// handle passed in is consumed: when every other handle is gone, the socket closes with 1000.
pub async fn drive(
    stream: TcpStream,
    rest: BytesMut,
    outbox: Outbox,
    settings: Settings,
    mut on_inbound: impl FnMut(Inbound),
) {
    let shared = outbox.shared.clone();
    drop(outbox);
    let mut reader = Reader {
        buf: rest,
        fragments: None,
        done: false,
    };
    let mut wbuf = BytesMut::new();
    let mut close_written = false;
    let mut grace: Option<Pin<Box<Sleep>>> = None;
    // Frames that came with the upgrade head.
    if !reader.buf.is_empty() {
        parse_frames(&mut reader, settings, &mut on_inbound);
    }
    poll_fn(|cx| {
        loop {
            let more_queued = fill(&shared, &mut wbuf, &mut close_written, settings, cx.waker());
            if close_written && grace.is_none() {
                grace = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
            match flush(&stream, &mut wbuf, cx) {
                Poll::Ready(Err(())) => return Poll::Ready(()),
                Poll::Ready(Ok(())) if close_written => {
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(())) if more_queued => continue,
                _ => {}
            }
            if !reader.done {
                match read(&stream, &mut reader, settings, &mut on_inbound, cx) {
                    ReadStep::Blocked => {}
                    ReadStep::Yield => {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    ReadStep::Finished => {
                        // The peer is gone or broke the protocol: the owner answers with a close;
                        // give it the grace period to be written.
                        if grace.is_none() {
                            grace = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
                        }
                    }
                }
            }
            if let Some(g) = grace.as_mut() {
                if g.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            return Poll::Pending;
        }
    })
    .await;
    let mut st = shared.state.lock();
    st.ended = true;
    st.frames = VecDeque::new();
    st.waker = None;
}

/// Moves what the outbox holds into `wbuf` as WebSocket frames. Answers whether frames remain
/// queued (the gather limit was reached).
fn fill(
    shared: &Shared,
    wbuf: &mut BytesMut,
    close_written: &mut bool,
    settings: Settings,
    waker: &Waker,
) -> bool {
    let mut st = shared.state.lock();
    if st.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
        st.waker = Some(waker.clone());
    }
    if *close_written {
        st.frames.clear();
        return false;
    }
    if let Some(Closing::Now(code, reason)) = &st.closing {
        write_close(wbuf, *code, reason);
        st.frames.clear();
        *close_written = true;
        return false;
    }
    if let Some(p) = st.pong.take() {
        Parser::write_message(wbuf, &p[..p.len().min(125)], OpCode::Pong, true, false);
    }
    if std::mem::take(&mut st.ping) {
        Parser::write_message(wbuf, b"", OpCode::Ping, true, false);
        // Pings come every heartbeat: a quiet socket gives its queue's memory back here.
        if st.frames.is_empty() {
            st.frames = VecDeque::new();
        }
    }
    let op = if settings.binary {
        OpCode::Binary
    } else {
        OpCode::Text
    };
    // One allocation for the whole gather: payloads plus the largest frame header each.
    let mut need = 0;
    for f in &st.frames {
        if need >= WRITE_GATHER {
            break;
        }
        need += f.len() + MAX_FRAME_HEADER;
    }
    wbuf.reserve(need + 2 * MAX_FRAME_HEADER);
    while wbuf.len() < WRITE_GATHER {
        let Some(frame) = st.frames.pop_front() else {
            break;
        };
        Parser::write_message(wbuf, &frame, op, true, false);
    }
    if !st.frames.is_empty() {
        return true;
    }
    if st.frames.capacity() > KEEP_QUEUE_SLOTS {
        st.frames = VecDeque::new();
    }
    let orphaned = shared.handles.load(Ordering::Acquire) == 0;
    match &st.closing {
        Some(Closing::After(code, reason)) => {
            write_close(wbuf, *code, reason);
            *close_written = true;
        }
        None if orphaned => {
            write_close(wbuf, 1000, "");
            *close_written = true;
        }
        _ => {}
    }
    false
}

fn write_close(wbuf: &mut BytesMut, code: u16, reason: &str) {
    let reason = CloseReason {
        code: CloseCode::from(code),
        description: (!reason.is_empty()).then(|| reason.to_string()),
    };
    Parser::write_close(wbuf, Some(reason), false);
}

/// Writes `wbuf` out; `Ready(Ok)` once it is empty (and its memory given back).
fn flush(stream: &TcpStream, wbuf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
    while !wbuf.is_empty() {
        match stream.poll_write_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
            Poll::Ready(Ok(())) => match stream.try_write(wbuf) {
                Ok(n) => wbuf.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(Err(())),
            },
        }
    }
    if wbuf.capacity() > KEEP_CAPACITY {
        *wbuf = BytesMut::new();
    }
    Poll::Ready(Ok(()))
}

enum ReadStep {
    /// Nothing more to read for now (the waker is registered).
    Blocked,
    /// Read budget spent; poll again soon.
    Yield,
    /// Reading is over (close, end of stream, error, limit).
    Finished,
}

fn read(
    stream: &TcpStream,
    reader: &mut Reader,
    settings: Settings,
    on_inbound: &mut impl FnMut(Inbound),
    cx: &mut Context<'_>,
) -> ReadStep {
    for _ in 0..READS_PER_POLL {
        match stream.poll_read_ready(cx) {
            Poll::Pending => {
                if reader.buf.is_empty() && reader.buf.capacity() > KEEP_CAPACITY {
                    reader.buf = BytesMut::new();
                }
                return ReadStep::Blocked;
            }
            Poll::Ready(Err(_)) => return finish(reader, Inbound::Closed, on_inbound),
            Poll::Ready(Ok(())) => {}
        }
        reader.buf.reserve(READ_CHUNK);
        match stream.try_read_buf(&mut reader.buf) {
            Ok(0) => return finish(reader, Inbound::Closed, on_inbound),
            Ok(_) => {
                parse_frames(reader, settings, on_inbound);
                if reader.done {
                    return ReadStep::Finished;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return finish(reader, Inbound::Closed, on_inbound),
        }
    }
    ReadStep::Yield
}

fn finish(reader: &mut Reader, last: Inbound, on_inbound: &mut impl FnMut(Inbound)) -> ReadStep {
    reader.done = true;
    reader.buf = BytesMut::new();
    reader.fragments = None;
    on_inbound(last);
    ReadStep::Finished
}

/// Hands over every complete message in the read buffer.
fn parse_frames(reader: &mut Reader, settings: Settings, on_inbound: &mut impl FnMut(Inbound)) {
    while !reader.done {
        let parsed = Parser::parse(&mut reader.buf, true, settings.max_message);
        let (fin, op, payload) = match parsed {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(ProtocolError::Overflow) => {
                finish(reader, Inbound::TooLarge, on_inbound);
                return;
            }
            Err(e) => {
                finish(reader, Inbound::Invalid(e.to_string()), on_inbound);
                return;
            }
        };
        let payload = payload.unwrap_or_default();
        match op {
            OpCode::Text | OpCode::Binary if reader.fragments.is_some() => {
                let e = "a new message began before the fragmented one ended";
                finish(reader, Inbound::Invalid(e.into()), on_inbound);
            }
            OpCode::Text | OpCode::Binary if fin => on_inbound(Inbound::Frame(payload.freeze())),
            OpCode::Text | OpCode::Binary => reader.fragments = Some(payload),
            OpCode::Continue => match reader.fragments.as_mut() {
                None => {
                    let e = "a continuation frame without a message";
                    finish(reader, Inbound::Invalid(e.into()), on_inbound);
                }
                Some(so_far) if so_far.len() + payload.len() > settings.max_message => {
                    finish(reader, Inbound::TooLarge, on_inbound);
                }
                Some(so_far) => {
                    so_far.extend_from_slice(&payload);
                    if fin {
                        if let Some(whole) = reader.fragments.take() {
                            on_inbound(Inbound::Frame(whole.freeze()));
                        }
                    }
                }
            },
            OpCode::Ping => on_inbound(Inbound::Ping(payload.freeze())),
            OpCode::Pong => on_inbound(Inbound::Pong),
            OpCode::Close => {
                finish(reader, Inbound::Closed, on_inbound);
            }
            OpCode::Bad => {
                finish(
                    reader,
                    Inbound::Invalid("unknown opcode".into()),
                    on_inbound,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const SETTINGS: Settings = Settings {
        max_message: 1024,
        binary: true,
    };

    fn client_frame(op: OpCode, fin: bool, payload: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        Parser::write_message(&mut b, payload, op, fin, true);
        b
    }

    /// A connected pair: the server end driven with an outbox, the client end raw.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = l.accept().await.expect("accept");
        (server, client)
    }

    async fn read_frames(client: &mut TcpStream, n: usize) -> Vec<(OpCode, Vec<u8>)> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        while out.len() < n {
            while let Some((_, op, p)) = Parser::parse(&mut buf, false, 1 << 20).expect("valid") {
                out.push((op, p.map(|p| p.to_vec()).unwrap_or_default()));
            }
            if out.len() >= n {
                break;
            }
            let r = tokio::time::timeout(Duration::from_secs(5), client.read_buf(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(r > 0, "socket closed early");
        }
        out
    }

    #[tokio::test]
    async fn joins_fragments_and_writes_the_queue_in_order() {
        let (server, mut client) = pair().await;
        let outbox = Outbox::new(8);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(drive(
            server,
            BytesMut::new(),
            outbox.clone(),
            SETTINGS,
            move |i| {
                let _ = tx.send(i);
            },
        ));
        let mut wire = client_frame(OpCode::Text, false, b"hel");
        wire.extend_from_slice(&client_frame(OpCode::Ping, true, b"p"));
        wire.extend_from_slice(&client_frame(OpCode::Continue, true, b"lo"));
        client.write_all(&wire).await.expect("write");
        match rx.recv().await {
            Some(Inbound::Ping(p)) => assert_eq!(&p[..], b"p"),
            other => panic!("expected the ping first, got {other:?}"),
        }
        match rx.recv().await {
            Some(Inbound::Frame(f)) => assert_eq!(&f[..], b"hello"),
            other => panic!("expected the joined message, got {other:?}"),
        }
        for i in 0..3u8 {
            outbox.send(Bytes::from(vec![i; 3])).expect("room");
        }
        outbox.close(4000, "bye");
        let frames = read_frames(&mut client, 4).await;
        assert_eq!(frames[0], (OpCode::Binary, vec![0, 0, 0]));
        assert_eq!(frames[2], (OpCode::Binary, vec![2, 2, 2]));
        assert_eq!(frames[3].0, OpCode::Close);
        assert_eq!(&frames[3].1[..2], &4000u16.to_be_bytes());
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("drive ends after the close")
            .expect("no panic");
        assert!(outbox.is_ended());
    }

    #[tokio::test]
    async fn a_full_outbox_refuses_and_an_oversized_message_stops_reading() {
        let (server, mut client) = pair().await;
        let outbox = Outbox::new(2);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Not driven yet: the queue cannot drain.
        outbox.send(Bytes::from_static(b"a")).expect("room");
        outbox.send(Bytes::from_static(b"b")).expect("room");
        assert_eq!(outbox.send(Bytes::from_static(b"c")), Err(OutboxFull));
        let task = tokio::spawn(drive(
            server,
            BytesMut::new(),
            outbox.clone(),
            SETTINGS,
            move |i| {
                let _ = tx.send(i);
            },
        ));
        let big = client_frame(OpCode::Binary, true, &[7u8; 1025]);
        client.write_all(&big).await.expect("write");
        assert!(matches!(rx.recv().await, Some(Inbound::TooLarge)));
        // At the limit is fine on a fresh socket.
        drop(outbox);
        let frames = read_frames(&mut client, 3).await;
        assert_eq!(
            frames[2].0,
            OpCode::Close,
            "last handle gone: closed with 1000"
        );
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends")
            .expect("no panic");
    }

    #[tokio::test]
    async fn a_message_at_the_limit_passes_and_unmasked_frames_are_refused() {
        let (server, mut client) = pair().await;
        let outbox = Outbox::new(2);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(drive(
            server,
            BytesMut::new(),
            outbox.clone(),
            SETTINGS,
            move |i| {
                let _ = tx.send(i);
            },
        ));
        let at_limit = client_frame(OpCode::Binary, true, &[1u8; 1024]);
        client.write_all(&at_limit).await.expect("write");
        match rx.recv().await {
            Some(Inbound::Frame(f)) => assert_eq!(f.len(), 1024),
            other => panic!("expected the message, got {other:?}"),
        }
        let mut unmasked = BytesMut::new();
        Parser::write_message(&mut unmasked, b"x", OpCode::Binary, true, false);
        client.write_all(&unmasked).await.expect("write");
        assert!(matches!(rx.recv().await, Some(Inbound::Invalid(_))));
    }

    #[tokio::test]
    async fn end_of_stream_is_a_close() {
        let (server, client) = pair().await;
        let outbox = Outbox::new(2);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(drive(
            server,
            BytesMut::new(),
            outbox.clone(),
            SETTINGS,
            move |i| {
                let _ = tx.send(i);
            },
        ));
        drop(client);
        assert!(matches!(rx.recv().await, Some(Inbound::Closed)));
        outbox.close(1000, "");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends")
            .expect("no panic");
    }
}
