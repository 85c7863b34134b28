//! `dovie-relay`: the bare fan-out relay the load tool measures Dovie against.
//!
//! It runs on Dovie's own WebSocket stack (actix-server workers, `dovie-transport` sockets and
//! outboxes) and does nothing else: no auth, no decoding, no actors, no storage. A client joins
//! a room with `GET /relay?room=<name>`; every message a client sends is queued, as the same
//! shared bytes, on every socket of its room (the sender's included, as Dovie delivers a
//! message to its sender's sessions too).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_service::fn_service;
use bytes::Bytes;
use clap::Parser;
use dovie_transport::handshake::{self, Head};
use dovie_transport::{Inbound, Outbox, Settings};
use parking_lot::RwLock;
use tokio::net::TcpStream;

/// The same allocator as the `dovie` node, so the ratio compares the work, not the allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The same per-socket queue and message limits as Dovie's defaults.
const OUTBOX_FRAMES: usize = 512;
const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "dovie-relay",
    about = "Bare WebSocket fan-out relay (load-test baseline)"
)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: String,
    /// Worker threads; 0 = one per core.
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

#[derive(Default)]
struct Rooms {
    sockets: RwLock<HashMap<String, Vec<(u64, Outbox)>>>,
    next_id: AtomicU64,
}

impl Rooms {
    fn join(&self, room: &str, outbox: Outbox) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.sockets
            .write()
            .entry(room.to_string())
            .or_default()
            .push((id, outbox));
        id
    }

    fn leave(&self, room: &str, id: u64) {
        let mut map = self.sockets.write();
        if let Some(list) = map.get_mut(room) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                map.remove(room);
            }
        }
    }

    fn relay(&self, room: &str, frame: Bytes) {
        if let Some(list) = self.sockets.read().get(room) {
            for (_, outbox) in list {
                // A full outbox drops the frame: the relay has no slow-consumer policy to model.
                let _ = outbox.send(frame.clone());
            }
        }
    }
}

fn room_of(head: &Head) -> Option<String> {
    head.query.as_deref()?.split('&').find_map(|kv| {
        kv.strip_prefix("room=")
            .filter(|r| !r.is_empty())
            .map(str::to_string)
    })
}

async fn serve(mut stream: TcpStream, rooms: Arc<Rooms>) {
    let Ok(head) = handshake::read_head(&mut stream, HEAD_TIMEOUT).await else {
        return;
    };
    let (Some(room), Ok(key), "/relay") =
        (room_of(&head), head.websocket_key(), head.path.as_str())
    else {
        let answer = handshake::response(
            400,
            "text/plain",
            b"GET /relay?room=<name> upgrades only",
            &[],
        );
        let _ = handshake::write_all(&mut stream, &answer, ANSWER_TIMEOUT).await;
        return;
    };
    let answer = handshake::switching_protocols(key, None);
    if handshake::write_all(&mut stream, &answer, ANSWER_TIMEOUT)
        .await
        .is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let outbox = Outbox::new(OUTBOX_FRAMES);
    let id = rooms.join(&room, outbox.clone());
    let settings = Settings {
        max_message: MAX_MESSAGE,
        binary: true,
    };
    let writer = outbox.clone();
    let Head { rest, .. } = head;
    let relay_rooms = rooms.clone();
    let relay_room = room.clone();
    dovie_transport::drive(stream, rest, outbox, settings, move |item| match item {
        Inbound::Frame(frame) => relay_rooms.relay(&relay_room, frame),
        Inbound::Ping(p) => writer.pong(p),
        Inbound::Pong => {}
        Inbound::TooLarge | Inbound::Invalid(_) | Inbound::Closed => writer.close(1000, ""),
    })
    .await;
    rooms.leave(&room, id);
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let _ = dovie_transport::process::raise_file_limit();
    let _ = dovie_transport::process::no_transparent_huge_pages();
    let workers = match cli.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let rooms = Arc::new(Rooms::default());
    let addr: std::net::SocketAddr = cli
        .listen
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    actix_rt::System::new().block_on(async move {
        let listener = dovie_transport::listen(addr, 4096)?;
        let addr = listener.local_addr()?;
        let server = actix_server::Server::build()
            .workers(workers)
            .backlog(4096)
            .max_concurrent_connections(250_000)
            .listen("relay", listener, move || {
                let rooms = rooms.clone();
                fn_service(move |stream: TcpStream| {
                    let rooms = rooms.clone();
                    async move {
                        serve(stream, rooms).await;
                        Ok::<_, ()>(())
                    }
                })
            })?
            .run();
        println!("relay listening on {addr}");
        server.await
    })
}
