//! A ZIP written as a stream (data descriptors, no seeking back; ZIP64 records as soon as an
//! entry, an offset or the entry count needs them: `rawzip`) from entries sent over a channel,
//! handed on in pieces over another: data exports and backups are made this way, never whole
//! in memory. The writer runs on a blocking thread.

use std::io::Write;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Archive bytes handed on at a time.
pub const PIECE: usize = 256 * 1024;

/// What the reading stage asks of the ZIP writer.
#[derive(Debug)]
pub enum Op {
    /// Starts an entry (the previous one ends); `deflate`: compress it.
    Entry {
        name: String,
        deflate: bool,
    },
    Data(Bytes),
    /// Something failed: the archive must not be completed.
    Abort(String),
}

/// Writes a streamed ZIP of the entries `ops` describes, in pieces of about [`PIECE`]
/// bytes, into `out`; a closed `ops` completes the archive, an [`Op::Abort`] ends `out` with
/// an error. Runs on a blocking thread.
pub fn write_zip(mut ops: mpsc::Receiver<Op>, out: mpsc::Sender<Result<Bytes, std::io::Error>>) {
    let sink = Pieces {
        buf: Vec::with_capacity(PIECE),
        out: out.clone(),
    };
    let result = write_entries(&mut ops, sink);
    if let Err(e) = result {
        let _ = out.blocking_send(Err(e));
    }
}

fn write_entries(ops: &mut mpsc::Receiver<Op>, sink: Pieces) -> std::io::Result<()> {
    let zip_err = |e: rawzip::Error| std::io::Error::other(e.to_string());
    let mut archive = rawzip::ZipArchiveWriter::new(sink);
    let mut next = ops.blocking_recv();
    while let Some(op) = next.take() {
        let (name, deflate) = match op {
            Op::Entry { name, deflate } => (name, deflate),
            Op::Data(_) => return Err(std::io::Error::other("data before an entry")),
            Op::Abort(why) => return Err(std::io::Error::other(why)),
        };
        let method = if deflate {
            rawzip::CompressionMethod::DEFLATE
        } else {
            rawzip::CompressionMethod::STORE
        };
        let (mut entry, config) = archive
            .new_file(name.as_str())
            .compression_method(method)
            .start()
            .map_err(zip_err)?;
        // The entry's data until the next entry (or the end).
        let mut feed = |w: &mut dyn Write| -> std::io::Result<Option<Op>> {
            loop {
                match ops.blocking_recv() {
                    Some(Op::Data(b)) => w.write_all(&b)?,
                    Some(Op::Abort(why)) => return Err(std::io::Error::other(why)),
                    other => return Ok(other),
                }
            }
        };
        let descriptor = if deflate {
            let encoder =
                flate2::write::DeflateEncoder::new(&mut entry, flate2::Compression::default());
            let mut writer = config.wrap(encoder);
            next = feed(&mut writer)?;
            let (encoder, descriptor) = writer.finish().map_err(zip_err)?;
            encoder.finish()?;
            descriptor
        } else {
            let mut writer = config.wrap(&mut entry);
            next = feed(&mut writer)?;
            let (_, descriptor) = writer.finish().map_err(zip_err)?;
            descriptor
        };
        entry.finish(descriptor).map_err(zip_err)?;
    }
    let mut sink = archive.finish().map_err(zip_err)?;
    sink.flush_piece()
}

/// The archive's bytes, handed on in pieces.
struct Pieces {
    buf: Vec<u8>,
    out: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Pieces {
    fn flush_piece(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.out
            .blocking_send(Ok(Bytes::from(piece)))
            .map_err(|_| std::io::Error::other("the archive's reader is gone"))
    }
}

impl Write for Pieces {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.flush_piece()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the ZIP stage on `ops` and answers the archive's bytes.
    fn zip_of(ops: Vec<Op>) -> std::io::Result<Vec<u8>> {
        let (ops_tx, ops_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let writer = std::thread::spawn(move || write_zip(ops_rx, out_tx));
        let feeder = std::thread::spawn(move || {
            for op in ops {
                if ops_tx.blocking_send(op).is_err() {
                    break;
                }
            }
        });
        let mut bytes = Vec::new();
        let mut failure = None;
        while let Some(piece) = out_rx.blocking_recv() {
            match piece {
                Ok(b) => bytes.extend_from_slice(&b),
                Err(e) => failure = Some(e),
            }
        }
        let _ = (writer.join(), feeder.join());
        match failure {
            Some(e) => Err(e),
            None => Ok(bytes),
        }
    }

    fn entry(name: &str, deflate: bool) -> Op {
        Op::Entry {
            name: name.into(),
            deflate,
        }
    }

    #[test]
    fn entries_round_trip_through_a_standard_reader() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let ops = vec![
            entry("a.json", true),
            Op::Data(Bytes::from_static(b"[1,")),
            Op::Data(Bytes::from_static(b"2]")),
            entry("files/x/photo.bin", false),
            Op::Data(Bytes::from(big.clone())),
            entry("empty.json", true),
        ];
        let bytes = zip_of(ops).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 3);
        let read = |zip: &mut zip::ZipArchive<_>, name: &str| {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut out).unwrap();
            out
        };
        assert_eq!(read(&mut zip, "a.json"), b"[1,2]");
        assert_eq!(read(&mut zip, "files/x/photo.bin"), big);
        assert!(read(&mut zip, "empty.json").is_empty());
    }

    #[test]
    fn past_65535_entries_the_archive_is_zip64() {
        let n = 70_000usize;
        let ops: Vec<Op> = (0..n)
            .flat_map(|i| {
                [
                    entry(&format!("e/{i}"), false),
                    Op::Data(Bytes::from(i.to_string())),
                ]
            })
            .collect();
        let bytes = zip_of(ops).unwrap();
        // The ZIP64 end of central directory record is there...
        assert!(bytes.windows(4).any(|w| w == [0x50, 0x4b, 0x06, 0x06]));
        // ...and a standard reader finds every entry.
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), n);
        let mut last = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("e/69999").unwrap(), &mut last).unwrap();
        assert_eq!(last, "69999");
    }

    #[test]
    fn an_abort_fails_the_archive() {
        let ops = vec![
            entry("a.json", true),
            Op::Data(Bytes::from_static(b"[")),
            Op::Abort("the store failed".into()),
        ];
        let err = zip_of(ops).unwrap_err();
        assert!(err.to_string().contains("the store failed"));
    }
}
