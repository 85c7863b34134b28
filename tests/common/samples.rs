//! Sample files of every format Dovie takes, made in the test itself (no fixtures to download):
//! real images through the `image` crate, a PCM WAV, a two-page PDF with a title, a DOCX and a
//! ZIP through `zip`, a Word 97 compound file through `cfb`, and the container headers of the
//! video and audio formats (enough for their signatures). With `ffmpeg` installed, real MP4,
//! MP3, OGG and M4A files too.

use std::io::{Cursor, Write};
use std::process::Command;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    encode(DynamicImage::ImageRgb8(img), ImageFormat::Png)
}

/// A PNG of noise: it does not compress, so its size is about 3 bytes a pixel.
pub fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    let img = RgbImage::from_fn(w, h, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    encode(DynamicImage::ImageRgb8(img), ImageFormat::Png)
}

pub fn png_with_alpha(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, _| Rgba([200, 10, 10, (x % 256) as u8]));
    encode(DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, 40, (y % 256) as u8]));
    encode(DynamicImage::ImageRgb8(img), ImageFormat::Jpeg)
}

pub fn gif(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, _| Rgba([(x % 256) as u8, 9, 9, 255]));
    encode(DynamicImage::ImageRgba8(img), ImageFormat::Gif)
}

pub fn webp(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| {
        Rgba([(x % 256) as u8, (y % 256) as u8, 3, 255])
    });
    encode(DynamicImage::ImageRgba8(img), ImageFormat::WebP)
}

fn encode(img: DynamicImage, f: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, f).expect("encode a sample image");
    out.into_inner()
}

/// A JPEG of `w`×`h` stored pixels whose EXIF says "rotate 90° clockwise" (orientation 6):
/// viewed, it is `h`×`w`.
pub fn jpeg_rotated(w: u32, h: u32) -> Vec<u8> {
    let plain = jpeg(w, h);
    // APP1 "Exif\0\0", a little-endian TIFF header, one IFD with one entry: Orientation = 6.
    let mut tiff = vec![b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0];
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A PNG that declares `w`×`h` pixels but carries almost no data: a decompression bomb's header.
pub fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_in = kind.to_vec();
    crc_in.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_in).to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub const SVG: &str = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><script>alert(1)</script><rect width=\"10\" height=\"10\"/></svg>";

/// Mono 16-bit PCM at 8 kHz, `ms` long.
pub fn wav(ms: u32) -> Vec<u8> {
    let rate = 8000u32;
    let samples = rate * ms / 1000;
    let data_len = samples * 2;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let v = (((i % 40) as i16) - 20) * 800;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A PDF of `pages` pages whose Info dictionary has `title`.
pub fn pdf(pages: usize, title: &str) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 4 + i)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {pages} >>",
        kids.join(" ")
    ));
    objects.push(format!("<< /Title ({title}) /Producer (Dovie tests) >>"));
    for _ in 0..pages {
        objects.push("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>".into());
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 3 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A DOCX with a title and a page count in its document properties.
pub fn docx(title: &str, pages: u32) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    let mut put = |name: &str, body: &str| {
        zip.start_file(name, opts).expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    };
    put("[Content_Types].xml", "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>");
    put("_rels/.rels", "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"/>");
    put("word/document.xml", "<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>");
    put("docProps/core.xml", &format!("<?xml version=\"1.0\"?><cp:coreProperties xmlns:cp=\"x\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>{title}</dc:title></cp:coreProperties>"));
    put(
        "docProps/app.xml",
        &format!("<?xml version=\"1.0\"?><Properties><Pages>{pages}</Pages></Properties>"),
    );
    zip.finish().expect("zip").into_inner()
}

/// A ZIP archive with one text entry.
pub fn zip_archive() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("notes.txt", zip::write::SimpleFileOptions::default())
        .expect("zip entry");
    zip.write_all(b"some notes").expect("zip write");
    zip.finish().expect("zip").into_inner()
}

/// A Word 97–2003 document: a compound file whose root storage has Word's class id, and whose
/// summary information names `title` and `pages`.
pub fn doc_titled(title: &str, pages: u32) -> Vec<u8> {
    let mut comp = cfb::CompoundFile::create(Cursor::new(Vec::new())).expect("cfb");
    let word = uuid::Uuid::parse_str("00020906-0000-0000-c000-000000000046").expect("clsid");
    comp.set_storage_clsid("/", word).expect("clsid");
    let mut s = comp.create_stream("/WordDocument").expect("stream");
    s.write_all(&[0xEC, 0xA5, 0xC1, 0x00]).expect("write");
    s.write_all(&vec![0u8; 4096]).expect("write");
    drop(s);
    // MS-OLEPS: a header, one section with PIDSI_TITLE (VT_LPSTR) and PIDSI_PAGECOUNT (VT_I4).
    let mut text = title.as_bytes().to_vec();
    text.push(0);
    let title_value = [
        &30u32.to_le_bytes()[..],
        &(text.len() as u32).to_le_bytes(),
        &text,
    ]
    .concat();
    let pages_value = [&3u32.to_le_bytes()[..], &pages.to_le_bytes()].concat();
    let pad = |mut v: Vec<u8>| {
        v.resize(v.len().div_ceil(4) * 4, 0);
        v
    };
    let (title_value, pages_value) = (pad(title_value), pad(pages_value));
    let first = 8 + 2 * 8;
    let mut section = Vec::new();
    let size = first + title_value.len() + pages_value.len();
    section.extend_from_slice(&(size as u32).to_le_bytes());
    section.extend_from_slice(&2u32.to_le_bytes());
    section.extend_from_slice(&2u32.to_le_bytes());
    section.extend_from_slice(&(first as u32).to_le_bytes());
    section.extend_from_slice(&14u32.to_le_bytes());
    section.extend_from_slice(&((first + title_value.len()) as u32).to_le_bytes());
    section.extend_from_slice(&title_value);
    section.extend_from_slice(&pages_value);
    let mut set = vec![0xFE, 0xFF, 0, 0, 0, 0, 0, 0];
    set.extend_from_slice(&[0u8; 16]);
    set.extend_from_slice(&1u32.to_le_bytes());
    set.extend_from_slice(&[
        0xE0, 0x85, 0x9F, 0xF2, 0xF9, 0x4F, 0x68, 0x10, 0xAB, 0x91, 0x08, 0x00, 0x2B, 0x27, 0xB3,
        0xD9,
    ]);
    set.extend_from_slice(&48u32.to_le_bytes());
    set.extend_from_slice(&section);
    let mut s = comp
        .create_stream("/\u{5}SummaryInformation")
        .expect("stream");
    s.write_all(&set).expect("write");
    drop(s);
    comp.flush().expect("flush");
    comp.into_inner().into_inner()
}

/// A Word 97–2003 document: a compound file whose root storage has Word's class id.
pub fn doc() -> Vec<u8> {
    let mut comp = cfb::CompoundFile::create(Cursor::new(Vec::new())).expect("cfb");
    let word = uuid::Uuid::parse_str("00020906-0000-0000-c000-000000000046").expect("clsid");
    comp.set_storage_clsid("/", word).expect("clsid");
    let mut s = comp.create_stream("/WordDocument").expect("stream");
    s.write_all(&[0xEC, 0xA5, 0xC1, 0x00]).expect("write");
    s.write_all(&vec![0u8; 4096]).expect("write");
    drop(s);
    comp.flush().expect("flush");
    comp.into_inner().into_inner()
}

pub fn rar() -> Vec<u8> {
    let mut out = b"Rar!\x1a\x07\x01\x00".to_vec();
    out.extend_from_slice(&[
        0x33, 0x92, 0xb5, 0xe5, 0x0a, 0x01, 0x05, 0x06, 0x00, 0x05, 0x01, 0x01, 0x80, 0x80, 0x00,
    ]);
    out
}

/// The head of an MP4 (an `ftyp` box with the `isom` brand) followed by `len` filler bytes.
pub fn mp4_like(len: usize) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0x20];
    out.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2avc1mp41");
    out.extend((0..len).map(|i| (i * 31 % 251) as u8));
    out
}

pub fn mov_like() -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0x14];
    out.extend_from_slice(b"ftypqt  \0\0\x02\0qt  ");
    out.extend_from_slice(&[0u8; 64]);
    out
}

pub fn webm_like() -> Vec<u8> {
    let mut out = vec![
        0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01,
    ];
    out.extend_from_slice(&[
        0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84,
    ]);
    out.extend_from_slice(b"webm");
    out.extend_from_slice(&[0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02]);
    out.extend_from_slice(&[0u8; 64]);
    out
}

pub fn avi_like() -> Vec<u8> {
    let mut out = b"RIFF\0\0\0\0AVI LIST".to_vec();
    out.extend_from_slice(&[0u8; 64]);
    out
}

pub fn mp3_like() -> Vec<u8> {
    let mut out = b"ID3\x04\0\0\0\0\0\0".to_vec();
    out.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
    out.extend_from_slice(&[0u8; 413]);
    out
}

pub fn ogg_like() -> Vec<u8> {
    let mut out = b"OggS\0\x02\0\0\0\0\0\0\0\0".to_vec();
    out.extend_from_slice(&[0u8; 64]);
    out
}

pub fn m4a_like() -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0x18];
    out.extend_from_slice(b"ftypM4A \0\0\x02\0M4A isom");
    out.extend_from_slice(&[0u8; 64]);
    out
}

/// Whether ffmpeg is installed (the test script installs it; CI requires it).
pub fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("CI").is_ok() {
        panic!("CI must have ffmpeg (scripts/test.sh installs it)");
    }
    ok
}

/// A file ffmpeg makes from its test sources: `args` are the input and codec options,
/// `ext` the container.
pub fn ffmpeg_make(args: &[&str], ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join(format!("sample.{ext}"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made the sample {ext}");
    std::fs::read(out).expect("read the sample")
}
