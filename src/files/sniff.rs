//! What a file is, from its first bytes (never from its name or the client's `Content-Type`):
//! `infer`'s signatures for binary formats, plus the text formats it cannot tell — SVG and
//! plain text. Only the formats Dovie accepts come out; unknown binaries, executables, scripts
//! and HTML are refused.

use crate::store::FileKind;

/// Bytes read before deciding (one chunk's worth is plenty for every accepted format).
pub const SNIFF_BYTES: usize = 16 * 1024;

/// An accepted type: the content type Dovie serves it as, and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: &'static str,
    pub kind: FileKind,
}

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A program or script.
    Executable(&'static str),
    /// A type Dovie does not take (or none could be told).
    Unknown(Option<&'static str>),
}

const fn ok(content_type: &'static str, kind: FileKind) -> Option<Sniffed> {
    Some(Sniffed { content_type, kind })
}

/// Decides from the first bytes (`head`, up to [`SNIFF_BYTES`]; `complete`: the whole file).
pub fn sniff(head: &[u8], complete: bool) -> Result<Sniffed, Refused> {
    // Program headers, however short the file (`infer` wants whole headers).
    const PROGRAMS: &[(&[u8], &str)] = &[
        (b"\x7fELF", "application/x-executable"),
        (b"MZ", "application/vnd.microsoft.portable-executable"),
        (b"\xfe\xed\xfa\xce", "application/x-mach-binary"),
        (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
        (b"\xce\xfa\xed\xfe", "application/x-mach-binary"),
        (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
        (b"\0asm", "application/wasm"),
        (b"dex\n", "application/vnd.android.dex"),
    ];
    if let Some((_, t)) = PROGRAMS.iter().find(|(m, _)| head.starts_with(m)) {
        return Err(Refused::Executable(t));
    }
    if is_svg(head) {
        return Ok(Sniffed {
            content_type: "image/svg+xml",
            kind: FileKind::Image,
        });
    }
    if is_word_97(head) {
        return Ok(Sniffed {
            content_type: "application/msword",
            kind: FileKind::Document,
        });
    }
    if is_docx(head) {
        return Ok(Sniffed {
            content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            kind: FileKind::Document,
        });
    }
    if let Some(t) = infer::get(head) {
        if t.matcher_type() == infer::MatcherType::App {
            return Err(Refused::Executable(t.mime_type()));
        }
        let accepted = match t.mime_type() {
            "image/jpeg" => ok("image/jpeg", FileKind::Image),
            "image/png" => ok("image/png", FileKind::Image),
            "image/gif" => ok("image/gif", FileKind::Image),
            "image/webp" => ok("image/webp", FileKind::Image),
            "video/mp4" | "video/x-m4v" => ok("video/mp4", FileKind::Video),
            "video/quicktime" => ok("video/quicktime", FileKind::Video),
            "video/x-msvideo" => ok("video/x-msvideo", FileKind::Video),
            "video/webm" => ok("video/webm", FileKind::Video),
            "audio/mpeg" => ok("audio/mpeg", FileKind::Audio),
            "audio/x-wav" => ok("audio/wav", FileKind::Audio),
            "audio/ogg" | "audio/opus" => ok("audio/ogg", FileKind::Audio),
            "audio/m4a" => ok("audio/mp4", FileKind::Audio),
            "application/pdf" => ok("application/pdf", FileKind::Document),
            "application/msword" => ok("application/msword", FileKind::Document),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => ok(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                FileKind::Document,
            ),
            "application/zip" => ok("application/zip", FileKind::Archive),
            "application/vnd.rar" => ok("application/vnd.rar", FileKind::Archive),
            "text/x-shellscript" => return Err(Refused::Executable("text/x-shellscript")),
            _ => None,
        };
        return accepted.ok_or(Refused::Unknown(Some(t.mime_type())));
    }
    if is_plain_text(head, complete) {
        if head.starts_with(b"#!") {
            return Err(Refused::Executable("text/x-script"));
        }
        return Ok(Sniffed {
            content_type: "text/plain; charset=utf-8",
            kind: FileKind::Document,
        });
    }
    Err(Refused::Unknown(None))
}

/// A Word document (Office Open XML): a ZIP whose local headers name the package's content
/// types and a `word/` part (`infer` looks only at the first few entries, in one order).
fn is_docx(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
        && contains(head, b"[Content_Types].xml")
        && contains(head, b"word/document.xml")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A Word 97–2003 document: an OLE compound file whose root storage has Word's class id. Read
/// from the header directly (`infer` parses the whole compound file, which a head cut short
/// is not): the first directory sector holds the root entry, its class id at offset 0x50.
fn is_word_97(head: &[u8]) -> bool {
    const MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    const WORD_CLSID: [u8; 16] = [
        0x06, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x46,
    ];
    if head.len() < 0x40 || head[..8] != MAGIC {
        return false;
    }
    let shift = u16::from_le_bytes([head[0x1E], head[0x1F]]);
    if !(7..=16).contains(&shift) {
        return false;
    }
    let sector = 1usize << shift;
    let dir = u32::from_le_bytes([head[0x30], head[0x31], head[0x32], head[0x33]]) as usize;
    let Some(root) = dir.checked_add(1).and_then(|d| d.checked_mul(sector)) else {
        return false;
    };
    head.get(root + 0x50..root + 0x60) == Some(&WORD_CLSID[..])
}

fn trim_start(mut b: &[u8]) -> &[u8] {
    if let Some(rest) = b.strip_prefix(b"\xEF\xBB\xBF") {
        b = rest;
    }
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// An SVG document: XML (or a bare `<svg`) whose head names an `<svg` element.
fn is_svg(head: &[u8]) -> bool {
    let b = trim_start(head);
    let xmlish = b.starts_with(b"<?xml")
        || b.starts_with(b"<!--")
        || b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"<svg")
        || b.len() >= 9 && b[..9].eq_ignore_ascii_case(b"<!doctype");
    xmlish && contains_ci(b, b"<svg")
}

/// UTF-8 text: no NUL, hardly any control characters, valid UTF-8 (a character cut at the end
/// of an incomplete head is fine), and not markup a browser would run.
fn is_plain_text(head: &[u8], complete: bool) -> bool {
    if head.is_empty() {
        return complete;
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if !complete && e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            // unwrap-free: valid_up_to is a char boundary by definition.
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
        .count();
    if controls > 0 {
        return false;
    }
    let lead = trim_start(text.as_bytes());
    !(contains_ci(&lead[..lead.len().min(64)], b"<html")
        || contains_ci(&lead[..lead.len().min(64)], b"<!doctype")
        || contains_ci(&lead[..lead.len().min(64)], b"<script"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(b: &[u8]) -> Result<&'static str, Refused> {
        sniff(b, true).map(|s| s.content_type)
    }

    #[test]
    fn binary_formats_are_told_from_their_bytes() {
        assert_eq!(kind(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Ok("image/jpeg"));
        assert_eq!(kind(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Ok("image/png"));
        assert_eq!(kind(b"GIF89a\x01\0\x01\0"), Ok("image/gif"));
        assert_eq!(kind(b"RIFF\0\0\0\0WEBPVP8 "), Ok("image/webp"));
        assert_eq!(kind(b"%PDF-1.7\n"), Ok("application/pdf"));
        assert_eq!(kind(b"Rar!\x1a\x07\x01\0"), Ok("application/vnd.rar"));
        assert_eq!(kind(b"ID3\x04\0\0\0\0\0\0"), Ok("audio/mpeg"));
        assert_eq!(kind(b"RIFF\0\0\0\0WAVEfmt "), Ok("audio/wav"));
        assert_eq!(kind(b"RIFF\0\0\0\0AVI LIST"), Ok("video/x-msvideo"));
    }

    #[test]
    fn executables_and_unknowns_are_refused() {
        assert!(matches!(
            sniff(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff", true),
            Err(Refused::Executable(_))
        ));
        assert!(matches!(
            sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0", true),
            Err(Refused::Executable(_))
        ));
        assert!(matches!(
            sniff(b"#!/bin/sh\nrm -rf /\n", true),
            Err(Refused::Executable(_))
        ));
        assert!(matches!(
            sniff(&[0u8, 1, 2, 3, 250, 251, 252], true),
            Err(Refused::Unknown(_))
        ));
        assert!(sniff(b"<!DOCTYPE html><html><script>x</script>", true).is_err());
    }

    #[test]
    fn svg_and_text_are_recognised() {
        assert_eq!(
            kind(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Ok("image/svg+xml")
        );
        assert_eq!(
            kind(b"  <svg viewBox=\"0 0 1 1\"></svg>"),
            Ok("image/svg+xml")
        );
        assert_eq!(
            kind("안녕하세요, plain text.\n".as_bytes()),
            Ok("text/plain; charset=utf-8")
        );
        // A multi-byte character cut by the end of the head is still text.
        let t = "가나다".as_bytes();
        assert!(sniff(&t[..4], false).is_ok());
        assert!(sniff(&t[..4], true).is_err());
    }
}
