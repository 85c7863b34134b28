//! `dovie-filesink`: the bare file sink and source the file benchmark compares Dovie against —
//! actix-web with nothing else: `POST /sink` reads the body and counts it (no sniffing, no
//! encryption, no storage), `GET /source/{n}` streams `n` bytes. Loopback only.

use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::StreamExt;

/// Bytes per streamed piece of `/source`.
const PIECE: usize = 64 * 1024;

async fn sink(mut body: web::Payload) -> HttpResponse {
    let mut n: u64 = 0;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => n += c.len() as u64,
            Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
        }
    }
    HttpResponse::Created().json(serde_json::json!({ "size": n }))
}

async fn source(n: web::Path<u64>) -> HttpResponse {
    let total = n.into_inner();
    let piece = Bytes::from(vec![0x5au8; PIECE]);
    let pieces = total.div_ceil(PIECE as u64);
    let stream = futures_util::stream::iter((0..pieces).map(move |i| {
        let left = total - i * PIECE as u64;
        Ok::<Bytes, std::io::Error>(piece.slice(..(left as usize).min(PIECE)))
    }));
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .no_chunking(total)
        .streaming(stream)
}

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .skip_while(|a| a != "--listen")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| std::io::Error::other(format!("--listen {listen}: {e}")))?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other("loopback only"));
    }
    actix_rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .route("/sink", web::post().to(sink))
                .route("/source/{n}", web::get().to(source))
                .route(
                    "/health",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                )
        })
        .workers(2)
        .bind(addr)?
        .run()
        .await
    })
}
