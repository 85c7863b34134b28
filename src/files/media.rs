//! What can be learnt from a file's plaintext, and the preview images made of it: image
//! dimensions and thumbnails (EXIF orientation applied, the first frame of an animation,
//! decoder limits on pixels and memory), audio durations (`symphonia`, from the container or by
//! counting packets), PDF page counts and titles (`lopdf`), DOCX titles and page counts (its
//! `docProps`), video poster frames (`ffmpeg`, when installed), a PDF's first page (`pdftoppm`,
//! when installed), and generated images when there is nothing better: a video placeholder
//! and a document card with the title and page count.
//!
//! Everything here is blocking: the preview jobs run it on blocking threads.

use std::io::{BufRead, Cursor, Read, Seek};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgba, RgbaImage};

/// The preview sizes, and the box each fits in (pixels).
pub const SIZES: [(&str, u32); 3] = [("small", 160), ("medium", 480), ("large", 1080)];
/// A square profile image's sizes.
pub const AVATAR_SIZES: [(&str, u32); 3] = [("small", 64), ("medium", 256), ("large", 512)];
/// How long an external preview program may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest document parsed whole for its metadata (PDF).
pub const MAX_PARSED_DOCUMENT: u64 = 64 * 1024 * 1024;
/// Packets counted at most for a duration the container does not state.
const MAX_PACKETS: usize = 2_000_000;

/// One made preview.
#[derive(Debug, Clone)]
pub struct Thumb {
    pub size: &'static str,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Dimensions from an image's header, when the header is within `head`.
pub fn image_dimensions(head: &[u8]) -> Option<(u32, u32)> {
    ImageReader::new(Cursor::new(head))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// Decodes an image within the limits, orientation applied. The header is read first, so a
/// decompression bomb is refused before anything is allocated for it.
pub fn decode_image<R: BufRead + Seek>(
    mut reader: R,
    max_pixels: u64,
    max_alloc: u64,
) -> Result<DynamicImage, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let start = reader.stream_position().map_err(|e| err(&e))?;
    let format = ImageReader::new(&mut reader)
        .with_guessed_format()
        .map_err(|e| err(&e))?
        .format()
        .ok_or("unknown image format")?;
    reader
        .seek(std::io::SeekFrom::Start(start))
        .map_err(|e| err(&e))?;
    let (w, h) = ImageReader::with_format(&mut reader, format)
        .into_dimensions()
        .map_err(|e| err(&e))?;
    if w == 0 || h == 0 || (w as u64) * (h as u64) > max_pixels {
        return Err(format!("{w}×{h} pixels is outside the preview limits"));
    }
    reader
        .seek(std::io::SeekFrom::Start(start))
        .map_err(|e| err(&e))?;
    let mut r = ImageReader::with_format(reader, format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_alloc);
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    r.limits(limits);
    let mut decoder = r.into_decoder().map_err(|e| err(&e))?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| err(&e))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img)
}

/// Thumbnails of an image, each fitting its box (never enlarged); `square`: cropped to fill a
/// square (profile images).
pub fn thumbnails(img: &DynamicImage, sizes: &[(&'static str, u32)], square: bool) -> Vec<Thumb> {
    let alpha = img.color().has_alpha();
    sizes
        .iter()
        .filter_map(|&(size, edge)| {
            let t = if square {
                let side = edge.min(img.width()).min(img.height()).max(1);
                img.resize_to_fill(side, side, image::imageops::FilterType::Lanczos3)
            } else if img.width() <= edge && img.height() <= edge {
                img.clone()
            } else {
                img.thumbnail(edge, edge)
            };
            encode(&t, alpha).map(|(bytes, content_type)| Thumb {
                size,
                width: t.width(),
                height: t.height(),
                bytes,
                content_type,
            })
        })
        .collect()
}

/// PNG when there is transparency, JPEG otherwise.
fn encode(img: &DynamicImage, alpha: bool) -> Option<(Vec<u8>, &'static str)> {
    let mut out = Cursor::new(Vec::new());
    if alpha {
        img.write_to(&mut out, ImageFormat::Png).ok()?;
        Some((out.into_inner(), "image/png"))
    } else {
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82);
        enc.encode_image(&rgb).ok()?;
        Some((out.into_inner(), "image/jpeg"))
    }
}

/// An audio file's duration in milliseconds.
pub fn audio_duration<R: Read + Seek + Send + Sync + 'static>(
    reader: R,
    len: u64,
    content_type: &str,
) -> Option<u64> {
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let source = Source { inner: reader, len };
    let mss = MediaSourceStream::new(Box::new(source), Default::default());
    let mut hint = Hint::new();
    hint.mime_type(content_type.split(';').next().unwrap_or(""));
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .ok()?;
    let mut format = probed.format;
    let track = format.default_track()?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    let tb = params.time_base.or_else(|| {
        params
            .sample_rate
            .map(|r| symphonia::core::units::TimeBase::new(1, r))
    })?;
    if let Some(frames) = params.n_frames {
        let t = tb.calc_time(frames);
        return Some(t.seconds * 1000 + (t.frac * 1000.0) as u64);
    }
    // No stated length (e.g. an MP3 without a Xing header): add the packets up.
    let mut total: u64 = 0;
    for _ in 0..MAX_PACKETS {
        match format.next_packet() {
            Ok(p) if p.track_id() == track_id => total += p.dur,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (total > 0).then(|| {
        let t = tb.calc_time(total);
        t.seconds * 1000 + (t.frac * 1000.0) as u64
    })
}

struct Source<R> {
    inner: R,
    len: u64,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for Source<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<R: Read + Seek + Send + Sync> symphonia::core::io::MediaSource for Source<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// A PDF's page count and title.
pub fn pdf_info(bytes: &[u8]) -> (Option<u32>, Option<String>) {
    let Ok(doc) = lopdf::Document::load_mem(bytes) else {
        return (None, None);
    };
    let pages = Some(doc.get_pages().len() as u32);
    let title = doc
        .trailer
        .get(b"Info")
        .ok()
        .and_then(|o| o.as_reference().ok())
        .and_then(|r| doc.get_dictionary(r).ok())
        .and_then(|info| info.get(b"Title").ok())
        .and_then(|t| match t {
            lopdf::Object::String(b, _) => Some(pdf_text(b)),
            _ => None,
        })
        .filter(|t| !t.trim().is_empty());
    (pages, title)
}

/// PDF text strings are UTF-16BE with a byte-order mark, or PDFDocEncoding (Latin-1-like).
fn pdf_text(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        b.iter().map(|&c| c as char).collect()
    }
}

/// A DOCX's page count (`docProps/app.xml`) and title (`docProps/core.xml`).
pub fn docx_info<R: Read + Seek>(reader: R) -> (Option<u32>, Option<String>) {
    let Ok(mut zip) = zip::ZipArchive::new(reader) else {
        return (None, None);
    };
    let mut part = |name: &str| -> Option<String> {
        let f = zip.by_name(name).ok()?;
        let mut s = String::new();
        f.take(1024 * 1024).read_to_string(&mut s).ok()?;
        Some(s)
    };
    let pages = part("docProps/app.xml")
        .and_then(|x| xml_text(&x, "Pages"))
        .and_then(|p| p.trim().parse().ok());
    let title = part("docProps/core.xml")
        .and_then(|x| xml_text(&x, "dc:title"))
        .map(|t| unescape_xml(&t))
        .filter(|t| !t.trim().is_empty());
    (pages, title)
}

/// A Word 97–2003 document's page count and title, from its `\u{5}SummaryInformation` property
/// set (MS-OLEPS: PIDSI_TITLE 2 as a code-page string, PIDSI_PAGECOUNT 14 as a 4-byte integer).
pub fn doc_info<R: Read + Seek>(reader: R) -> (Option<u32>, Option<String>) {
    const MAX_STREAM: u64 = 1024 * 1024;
    let Ok(mut comp) = cfb::CompoundFile::open(reader) else {
        return (None, None);
    };
    let Ok(stream) = comp.open_stream("/\u{5}SummaryInformation") else {
        return (None, None);
    };
    let mut buf = Vec::new();
    if stream.take(MAX_STREAM).read_to_end(&mut buf).is_err() {
        return (None, None);
    }
    summary_information(&buf)
}

fn summary_information(b: &[u8]) -> (Option<u32>, Option<String>) {
    let u32_at = |o: usize| -> Option<u32> {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    // Header (28 bytes), then the first section's FMTID (16) and offset (4).
    let Some(section) = u32_at(28 + 16).map(|o| o as usize) else {
        return (None, None);
    };
    let count = u32_at(section + 4).unwrap_or(0).min(256) as usize;
    let (mut pages, mut title) = (None, None);
    for i in 0..count {
        let entry = section + 8 + i * 8;
        let (Some(id), Some(offset)) = (u32_at(entry), u32_at(entry + 4)) else {
            break;
        };
        let at = section + offset as usize;
        let kind = u32_at(at).map(|t| t & 0xFFFF);
        match (id, kind) {
            (14, Some(3)) => pages = u32_at(at + 4),
            (2, Some(30)) => {
                let len = u32_at(at + 4).unwrap_or(0) as usize;
                if let Some(raw) = b.get(at + 8..at + 8 + len.min(1024)) {
                    // Code-page text; the ASCII and Latin-1 range read as is.
                    let t: String = raw
                        .iter()
                        .take_while(|&&c| c != 0)
                        .map(|&c| c as char)
                        .collect();
                    if !t.trim().is_empty() {
                        title = Some(t.trim().to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (pages, title)
}

/// The text of the first `<tag>…</tag>` (no nesting: the metadata parts are flat).
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}");
    let start = xml.find(&open)?;
    let after = &xml[start + open.len()..];
    let gt = after.find('>')?;
    if after[..gt].ends_with('/') {
        return None;
    }
    let body = &after[gt + 1..];
    let end = body.find(&format!("</{tag}>"))?;
    Some(body[..end].to_string())
}

fn unescape_xml(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Runs a preview program with a time limit; its standard output when it succeeds.
fn run_tool(mut cmd: Command, stdin: Option<Vec<u8>>) -> Option<Vec<u8>> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut pipe, &data);
        });
    }
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = reader.join().ok()?;
                return (status.success() && !out.is_empty()).then_some(out);
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A video's poster frame through ffmpeg, reading the video from `url` (a signed loopback link:
/// ffmpeg seeks with range requests, so the video is never written out in clear).
pub fn video_poster(ffmpeg: &str, url: &str) -> Option<Vec<u8>> {
    if ffmpeg.is_empty() {
        return None;
    }
    for at in ["1", "0"] {
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-nostdin", "-v", "error", "-ss", at, "-i", url])
            .args(["-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"]);
        if let Some(png) = run_tool(cmd, None) {
            return Some(png);
        }
    }
    None
}

/// A PDF's first page as PNG through pdftoppm (the PDF goes in on standard input).
pub fn pdf_first_page(pdftoppm: &str, pdf: Vec<u8>) -> Option<Vec<u8>> {
    if pdftoppm.is_empty() {
        return None;
    }
    let mut cmd = Command::new(pdftoppm);
    cmd.args([
        "-png",
        "-f",
        "1",
        "-l",
        "1",
        "-singlefile",
        "-scale-to",
        "1080",
        "-",
        "-",
    ]);
    run_tool(cmd, Some(pdf))
}

/// A generated video placeholder: a dark frame with a play mark.
pub fn video_placeholder() -> DynamicImage {
    let (w, h) = (640u32, 360u32);
    let mut img = RgbaImage::from_pixel(w, h, Rgba([38, 42, 51, 255]));
    let (cx, cy, r) = (w as i32 / 2, h as i32 / 2, 60i32);
    for y in 0..h as i32 {
        for x in 0..w as i32 {
            let (dx, dy) = (x - cx, y - cy);
            let in_circle = dx * dx + dy * dy <= r * r;
            // A triangle pointing right inside the circle.
            let tx = dx + r / 3;
            let in_triangle = tx >= 0 && tx <= r && dy.abs() * 2 <= (r - tx);
            if in_triangle {
                img.put_pixel(x as u32, y as u32, Rgba([245, 245, 245, 255]));
            } else if in_circle {
                img.put_pixel(x as u32, y as u32, Rgba([80, 88, 104, 255]));
            }
        }
    }
    DynamicImage::ImageRgba8(img)
}

/// A generated document card: a page with the title and the page count written on it
/// (an 8×8 bitmap font, scaled; characters it lacks show as `?`).
pub fn document_card(title: &str, pages: Option<u32>, label: &str) -> DynamicImage {
    let (w, h) = (480u32, 640u32);
    let mut img = RgbaImage::from_pixel(w, h, Rgba([250, 250, 247, 255]));
    let ink = Rgba([40, 44, 52, 255]);
    let faint = Rgba([200, 204, 210, 255]);
    // Ruled lines, like a page.
    for line in 0..14u32 {
        let y = 260 + line * 24;
        for x in 40..w - 40 {
            img.put_pixel(x, y, faint);
        }
    }
    let mut y = 48;
    for row in wrap(title, 17).into_iter().take(5) {
        draw_text(&mut img, 40, y, &row, 3, ink);
        y += 34;
    }
    let footer = match pages {
        Some(1) => format!("{label} - 1 page"),
        Some(n) => format!("{label} - {n} pages"),
        None => label.to_string(),
    };
    draw_text(&mut img, 40, h - 56, &footer, 2, ink);
    DynamicImage::ImageRgba8(img)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split_whitespace() {
        let word: String = word.chars().take(width).collect();
        if !row.is_empty() && row.chars().count() + 1 + word.chars().count() > width {
            rows.push(std::mem::take(&mut row));
        }
        if !row.is_empty() {
            row.push(' ');
        }
        row.push_str(&word);
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows
}

fn draw_text(img: &mut RgbaImage, x0: u32, y0: u32, text: &str, scale: u32, ink: Rgba<u8>) {
    use font8x8::UnicodeFonts;
    let mut x = x0;
    for c in text.chars() {
        let glyph = font8x8::BASIC_FONTS
            .get(c)
            .or_else(|| font8x8::LATIN_FONTS.get(c))
            .or_else(|| font8x8::BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..8u32 {
                if bits & (1 << gx) != 0 {
                    for sy in 0..scale {
                        for sx in 0..scale {
                            let (px, py) = (x + gx * scale + sx, y0 + gy as u32 * scale + sy);
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, ink);
                            }
                        }
                    }
                }
            }
        }
        x += 8 * scale;
        if x + 8 * scale > img.width() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([9, 9, 9])));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn thumbnails_fit_their_boxes_and_never_grow() {
        let img = decode_image(Cursor::new(png(2000, 1000)), 64_000_000, 512 << 20).unwrap();
        let t = thumbnails(&img, &SIZES, false);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].width, t[0].height), (160, 80));
        assert_eq!((t[2].width, t[2].height), (1080, 540));
        let one = decode_image(Cursor::new(png(1, 1)), 64_000_000, 512 << 20).unwrap();
        let t = thumbnails(&one, &SIZES, false);
        assert!(t.iter().all(|t| t.width == 1 && t.height == 1));
        let sq = thumbnails(&img, &AVATAR_SIZES, true);
        assert!(sq.iter().all(|t| t.width == t.height));
    }

    #[test]
    fn images_past_the_pixel_limit_are_refused_before_decoding() {
        let err = decode_image(Cursor::new(png(3000, 3000)), 1_000_000, 512 << 20).unwrap_err();
        assert!(err.contains("limits"), "{err}");
        assert_eq!(image_dimensions(&png(33, 17)), Some((33, 17)));
    }

    #[test]
    fn generated_images_render() {
        assert_eq!(video_placeholder().width(), 640);
        let card = document_card("Quarterly report on everything", Some(12), "PDF");
        assert_eq!((card.width(), card.height()), (480, 640));
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
    }

    #[test]
    fn summary_information_gives_title_and_pages() {
        let mut b = vec![0xFE, 0xFF, 0, 0];
        b.extend_from_slice(&[0u8; 24]);
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(&48u32.to_le_bytes());
        let mut section = Vec::new();
        let title = b"Minutes\0";
        let props: Vec<(u32, Vec<u8>)> = vec![
            (
                2,
                [
                    &30u32.to_le_bytes()[..],
                    &(title.len() as u32).to_le_bytes(),
                    title,
                ]
                .concat(),
            ),
            (14, [&3u32.to_le_bytes()[..], &9u32.to_le_bytes()].concat()),
        ];
        let mut offset = 8 + props.len() * 8;
        let mut index = Vec::new();
        let mut values = Vec::new();
        for (id, v) in &props {
            index.extend_from_slice(&id.to_le_bytes());
            index.extend_from_slice(&(offset as u32).to_le_bytes());
            offset += v.len().div_ceil(4) * 4;
            let mut v = v.clone();
            v.resize(v.len().div_ceil(4) * 4, 0);
            values.extend_from_slice(&v);
        }
        section.extend_from_slice(&((8 + index.len() + values.len()) as u32).to_le_bytes());
        section.extend_from_slice(&(props.len() as u32).to_le_bytes());
        section.extend_from_slice(&index);
        section.extend_from_slice(&values);
        b.extend_from_slice(&section);
        assert_eq!(summary_information(&b), (Some(9), Some("Minutes".into())));
        assert_eq!(summary_information(&[1, 2, 3]), (None, None));
    }

    #[test]
    fn xml_metadata_is_read() {
        let core = "<cp:coreProperties><dc:title>R&amp;D plan</dc:title></cp:coreProperties>";
        assert_eq!(
            xml_text(core, "dc:title").map(|t| unescape_xml(&t)),
            Some("R&D plan".into())
        );
        assert_eq!(
            xml_text("<Properties><Pages>7</Pages></Properties>", "Pages"),
            Some("7".into())
        );
        assert_eq!(xml_text("<x><dc:title/></x>", "dc:title"), None);
    }
}
