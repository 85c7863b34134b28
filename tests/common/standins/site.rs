//! A web site, as link previews and other fetches meet one: an HTML page with Open Graph tags,
//! redirects, and a body larger than any fetch should read. Like many real sites, it refuses
//! requests that carry no `User-Agent` (403).

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::{Log, StandIn};

/// The page's HTML.
pub const PAGE: &str = "<!doctype html><html><head><title>Dovie stand-in</title>\
<meta property=\"og:title\" content=\"A page\"><meta property=\"og:site_name\" content=\"Stand-in\">\
</head><body>hello</body></html>";

/// `/article`: a page with a full Open Graph card whose image is relative (`/img.png`).
pub const ARTICLE: &str = "<!doctype html><html><head><title>Plain title</title>\
<meta property=\"og:title\" content=\"An article\"><meta property=\"og:description\" content=\"What it says\">\
<meta property=\"og:site_name\" content=\"Stand-in\"><meta property=\"og:image\" content=\"/img.png\">\
</head><body>text</body></html>";

async fn article(req: HttpRequest, log: web::Data<Log>, body: Bytes) -> HttpResponse {
    if let Some(refused) = checked(&req, &log, &body) {
        return refused;
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(ARTICLE)
}

async fn img(req: HttpRequest, log: web::Data<Log>, body: Bytes) -> HttpResponse {
    if let Some(refused) = checked(&req, &log, &body) {
        return refused;
    }
    HttpResponse::Ok()
        .content_type("image/png")
        .body(crate::common::samples::png(64, 32))
}

/// Bytes `/big` answers.
pub const BIG_BYTES: usize = 4 * 1024 * 1024;

fn checked(req: &HttpRequest, log: &Log, body: &Bytes) -> Option<HttpResponse> {
    log.record(req, body);
    if req.headers().get("user-agent").is_none() {
        return Some(HttpResponse::Forbidden().body("no user agent"));
    }
    None
}

async fn page(req: HttpRequest, log: web::Data<Log>, body: Bytes) -> HttpResponse {
    if let Some(refused) = checked(&req, &log, &body) {
        return refused;
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

/// `/redirect?to=URL`: 302 to `URL`.
async fn redirect(req: HttpRequest, log: web::Data<Log>, body: Bytes) -> HttpResponse {
    if let Some(refused) = checked(&req, &log, &body) {
        return refused;
    }
    let to = req
        .query_string()
        .strip_prefix("to=")
        .map(percent_decode)
        .unwrap_or_default();
    HttpResponse::Found()
        .insert_header(("location", to))
        .finish()
}

/// `/loop`: redirects to itself, forever.
async fn redirect_loop(req: HttpRequest, log: web::Data<Log>, body: Bytes) -> HttpResponse {
    if let Some(refused) = checked(&req, &log, &body) {
        return refused;
    }
    HttpResponse::Found()
        .insert_header(("location", "/loop"))
        .finish()
}

async fn big(req: HttpRequest, log: web::Data<Log>, body: Bytes) -> HttpResponse {
    if let Some(refused) = checked(&req, &log, &body) {
        return refused;
    }
    HttpResponse::Ok()
        .content_type("text/html")
        .body(vec![b'x'; BIG_BYTES])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn start() -> StandIn {
    StandIn::start(|cfg| {
        cfg.route("/page", web::get().to(page))
            .route("/article", web::get().to(article))
            .route("/img.png", web::get().to(img))
            .route("/redirect", web::get().to(redirect))
            .route("/loop", web::get().to(redirect_loop))
            .route("/big", web::get().to(big));
    })
}
