//! Dovie's WebSocket transport, lean by design: what stays allocated for an idle socket is one
//! task, the socket and a small [`Outbox`] — no read or write buffer survives between bursts.
//!
//! - [`handshake`] reads the upgrade request head and writes the `101` (or an error) response.
//! - [`socket`] drives one upgraded socket: decodes client frames (RFC 6455: masking, fragments,
//!   control frames, a size limit) into [`Inbound`] items, and writes what the [`Outbox`] holds,
//!   many frames per `write` call.
//! - [`process`] sets what a socket-heavy process needs (open-file limit, small pages).
//!
//! Frame parsing and encoding use `actix-http`'s WebSocket parser, so both of Dovie's HTTP paths
//! frame bytes identically.

pub mod handshake;
pub mod process;
pub mod socket;

pub use handshake::{Head, HeadError};
pub use socket::{drive, Inbound, Outbox, OutboxFull, Settings};

/// A listening socket with the given accept backlog (the standard library's `bind` always asks
/// for 128, too few for a reconnect storm: the kernel drops SYNs past it and clients wait
/// seconds for the retry). Address reuse is on, as servers expect.
pub fn listen(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(backlog)?;
    listener.into_std()
}
