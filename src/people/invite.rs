//! Contact invites (AUTH-5): a token `<payload>.<mac>` — the payload (base64url JSON: inviter,
//! expiry, a random nonce) signed with HMAC-SHA256 under a key derived from the server secret —
//! so any node verifies it and nothing is stored. The invite link is
//! `{public_url}/invite/{token}`; its QR code is rendered as PNG or SVG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use dovie_protocol::error::{ErrorBody, ErrorCode};
use qrcode::{EcLevel, QrCode};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::auth::AuthService;

/// How long an invite is good for.
pub const INVITE_TTL_MS: i64 = 24 * 3600 * 1000;
/// Pixels per QR module in the PNG, and modules of quiet zone around the code.
const PNG_MODULE_PX: u32 = 8;
const QUIET_MODULES: u32 = 4;
/// The longest token accepted (a real one is about 150 characters).
const MAX_TOKEN_CHARS: usize = 512;
const PURPOSE: &str = "dovie-contact-invite";

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The inviter.
    u: String,
    /// Expiry, ms since the epoch.
    e: i64,
    n: String,
}

/// A verified invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub inviter: String,
    pub expires_at: i64,
}

fn forged() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::VerificationFailed,
        "the invite is not valid or has expired",
    )
}

/// A new invite token of `inviter`, valid until `expires_at`.
pub fn sign(auth: &AuthService, inviter: &str, expires_at: i64) -> String {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let payload = Payload {
        u: inviter.to_string(),
        e: expires_at,
        n: B64.encode(nonce),
    };
    // A derive-serialized struct of strings and an integer always encodes.
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let body = B64.encode(json);
    let mac = auth.keyed_hash(PURPOSE, body.as_bytes());
    format!("{body}.{mac}")
}

/// Checks a token's signature and expiry at `now`.
pub fn verify(auth: &AuthService, token: &str, now: i64) -> Result<Invite, ErrorBody> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(forged());
    }
    let (body, mac) = token.split_once('.').ok_or_else(forged)?;
    let expected = auth.keyed_hash(PURPOSE, body.as_bytes());
    if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
        return Err(forged());
    }
    let json = B64.decode(body).map_err(|_| forged())?;
    let p: Payload = serde_json::from_slice(&json).map_err(|_| forged())?;
    if p.e <= now {
        return Err(forged());
    }
    Ok(Invite {
        inviter: p.u,
        expires_at: p.e,
    })
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn code(text: &str) -> Result<QrCode, ErrorBody> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| {
        tracing::error!(error = %e, "cannot encode a QR code");
        ErrorBody::new(ErrorCode::Internal, "cannot draw the QR code")
    })
}

/// The QR code of `text` as an SVG document.
pub fn svg(text: &str) -> Result<String, ErrorBody> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// The QR code of `text` as a greyscale PNG (black modules on white, with a quiet zone).
pub fn png(text: &str) -> Result<Vec<u8>, ErrorBody> {
    let qr = code(text)?;
    let modules = qr.width() as u32;
    let colors = qr.to_colors();
    let side = (modules + 2 * QUIET_MODULES) * PNG_MODULE_PX;
    let mut pixels = vec![255u8; (side * side) as usize];
    for (i, c) in colors.iter().enumerate() {
        if *c != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i as u32 % modules, i as u32 / modules);
        for dy in 0..PNG_MODULE_PX {
            let y = (my + QUIET_MODULES) * PNG_MODULE_PX + dy;
            let row = (y * side) as usize;
            let x0 = ((mx + QUIET_MODULES) * PNG_MODULE_PX) as usize;
            pixels[row + x0..row + x0 + PNG_MODULE_PX as usize].fill(0);
        }
    }
    let mut out = Vec::new();
    let mut encode = || -> Result<(), png::EncodingError> {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&pixels)?;
        w.finish()
    };
    encode().map_err(|e| {
        tracing::error!(error = %e, "cannot encode a PNG");
        ErrorBody::new(ErrorCode::Internal, "cannot draw the QR code")
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AuthService {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            crate::store::sqlite::SqliteStore::open(dir.path(), "NORMAL", 1).expect("store");
        let ttl = std::time::Duration::from_secs(60);
        AuthService::new(vec![9; 32], ttl, ttl, 4, std::sync::Arc::new(store)).expect("auth")
    }

    #[test]
    fn invites_verify_until_they_expire_and_not_when_changed() {
        let a = auth();
        let t = sign(&a, "u1", 1_000);
        assert_eq!(
            verify(&a, &t, 999).expect("valid"),
            Invite {
                inviter: "u1".into(),
                expires_at: 1_000
            }
        );
        assert!(verify(&a, &t, 1_000).is_err(), "expired");
        // Another inviter in the payload, the old signature: refused.
        let (_, mac) = t.split_once('.').expect("dot");
        let other = B64.encode(br#"{"u":"u2","e":1000,"n":"x"}"#);
        assert!(verify(&a, &format!("{other}.{mac}"), 0).is_err());
        assert!(verify(&a, "garbage", 0).is_err());
        let b = AuthService::new(
            vec![8; 32],
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(60),
            4,
            std::sync::Arc::new(
                crate::store::sqlite::SqliteStore::open(
                    tempfile::tempdir().expect("dir").path(),
                    "NORMAL",
                    1,
                )
                .expect("store"),
            ),
        )
        .expect("auth");
        assert!(verify(&b, &t, 0).is_err(), "another server's secret");
    }

    #[test]
    fn the_png_decodes_to_the_text() {
        let text = "http://127.0.0.1:8080/invite/abc.def";
        let bytes = png(text).expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("info");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("frame");
        let (w, h) = (info.width as usize, info.height as usize);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().expect("decode");
        assert_eq!(content, text);
        assert!(svg(text).expect("svg").starts_with("<?xml"));
    }
}
