//! Encryption at rest: AES-256-GCM over fixed-size chunks.
//!
//! Each file has its own random 256-bit data key, stored only wrapped (AES-256-GCM) by the
//! master key, with the master key's id beside it so keys can rotate. The plaintext is cut into
//! chunks of `chunk_bytes` (the last one shorter); each chunk is stored as
//! `nonce (12) ‖ ciphertext ‖ tag (16)` with a fresh random nonce, and authenticated with
//! associated data that binds it to its file id, its index and whether it is the last chunk —
//! so chunks cannot be reordered, dropped, appended to or spliced in from another file, and a
//! file cannot be truncated at a chunk boundary. A range read fetches and opens only the
//! chunks it touches. A chunk that fails to open is never served.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const NONCE_BYTES: usize = 12;
pub const TAG_BYTES: usize = 16;
/// What each stored chunk adds to its plaintext.
pub const CHUNK_OVERHEAD: usize = NONCE_BYTES + TAG_BYTES;
const CHUNK_AAD: &[u8] = b"dovie-file-chunk-v1";
const WRAP_AAD: &[u8] = b"dovie-file-key-v1";

/// A chunk or key that does not open: tampered, truncated, or under another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityError(pub String);

impl std::fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "integrity check failed: {}", self.0)
    }
}

impl std::error::Error for IntegrityError {}

/// A 256-bit key.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    pub fn random() -> SecretKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        SecretKey(k)
    }

    /// From base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<SecretKey, String> {
        let raw = B64
            .decode(s.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let k: [u8; 32] = raw
            .try_into()
            .map_err(|_| "a key must be 32 bytes".to_string())?;
        Ok(SecretKey(k))
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// A short id of the key (hex of its SHA-256, first 8 bytes): names it without revealing it.
    pub fn fingerprint(&self) -> String {
        let d = Sha256::digest(self.0);
        d[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }
}

fn random_nonce() -> [u8; NONCE_BYTES] {
    let mut n = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

fn seal(key: &Aes256Gcm, aad: &[u8], plain: &[u8]) -> Bytes {
    let nonce = random_nonce();
    let mut out = BytesMut::with_capacity(plain.len() + CHUNK_OVERHEAD);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let body = &mut out[NONCE_BYTES..];
    // unwrap-free: encryption fails only past GCM's 64 GiB message limit; chunks are ≤ 4 MiB.
    let tag = key
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, body)
        .unwrap_or_default();
    out.extend_from_slice(&tag);
    out.freeze()
}

fn open(key: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, IntegrityError> {
    if sealed.len() < CHUNK_OVERHEAD {
        return Err(IntegrityError("chunk too short".into()));
    }
    let (nonce, rest) = sealed.split_at(NONCE_BYTES);
    let (body, tag) = rest.split_at(rest.len() - TAG_BYTES);
    let mut plain = body.to_vec();
    key.decrypt_in_place_detached(
        Nonce::from_slice(nonce),
        aad,
        &mut plain,
        Tag::from_slice(tag),
    )
    .map_err(|_| IntegrityError("a chunk does not authenticate".into()))?;
    Ok(plain)
}

/// Wraps a file's data key under the master key, bound to the file id.
pub fn wrap_key(master: &SecretKey, file_id: &str, data_key: &SecretKey) -> String {
    let aad = [WRAP_AAD, file_id.as_bytes()].concat();
    B64.encode(seal(&master.cipher(), &aad, &data_key.0))
}

/// Unwraps a file's data key.
pub fn unwrap_key(
    master: &SecretKey,
    file_id: &str,
    wrapped: &str,
) -> Result<SecretKey, IntegrityError> {
    let sealed = B64
        .decode(wrapped)
        .map_err(|_| IntegrityError("wrapped key is not base64".into()))?;
    let aad = [WRAP_AAD, file_id.as_bytes()].concat();
    let raw = open(&master.cipher(), &aad, &sealed)?;
    let k: [u8; 32] = raw
        .try_into()
        .map_err(|_| IntegrityError("wrapped key has the wrong length".into()))?;
    Ok(SecretKey(k))
}

fn chunk_aad(file_id: &str, index: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(CHUNK_AAD.len() + file_id.len() + 10);
    aad.extend_from_slice(CHUNK_AAD);
    aad.push(file_id.len() as u8);
    aad.extend_from_slice(file_id.as_bytes());
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(last as u8);
    aad
}

/// How a file of `size` plaintext bytes is laid out in chunks of `chunk` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub size: u64,
    pub chunk: u64,
}

impl Layout {
    pub fn new(size: u64, chunk_bytes: u32) -> Layout {
        Layout {
            size,
            chunk: chunk_bytes.max(1) as u64,
        }
    }

    /// Chunks stored: an empty file still has one (empty, final) chunk.
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(self.chunk).max(1)
    }

    /// Stored bytes of the whole object.
    pub fn stored_size(&self) -> u64 {
        self.size + self.chunks() * CHUNK_OVERHEAD as u64
    }

    /// Stored byte range of chunks `first..=last`.
    pub fn stored_range(&self, first: u64, last: u64) -> std::ops::Range<u64> {
        let stride = self.chunk + CHUNK_OVERHEAD as u64;
        let start = first * stride;
        let end = ((last + 1) * stride).min(self.stored_size());
        start..end
    }

    /// The chunks holding plaintext bytes `range` (non-empty, within the file).
    pub fn chunks_of(&self, range: &std::ops::Range<u64>) -> (u64, u64) {
        (
            range.start / self.chunk,
            (range.end.max(1) - 1) / self.chunk,
        )
    }
}

/// Encrypts a stream of plaintext into stored chunks. A full chunk is sealed only when more
/// bytes arrive after it, so the last chunk is known to be last.
pub struct Sealer {
    cipher: Aes256Gcm,
    file_id: String,
    chunk: usize,
    index: u64,
    buf: Vec<u8>,
}

impl Sealer {
    pub fn new(key: &SecretKey, file_id: &str, chunk_bytes: u32) -> Sealer {
        Sealer {
            cipher: key.cipher(),
            file_id: file_id.to_string(),
            chunk: chunk_bytes as usize,
            index: 0,
            buf: Vec::with_capacity(chunk_bytes as usize),
        }
    }

    /// Takes plaintext; answers the sealed chunks it completed.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Bytes>) {
        while !data.is_empty() {
            if self.buf.len() == self.chunk {
                let aad = chunk_aad(&self.file_id, self.index, false);
                out.push(seal(&self.cipher, &aad, &self.buf));
                self.buf.clear();
                self.index += 1;
            }
            if self.buf.is_empty() && data.len() > self.chunk {
                // A whole chunk with more bytes after it: sealed straight from the input.
                let aad = chunk_aad(&self.file_id, self.index, false);
                out.push(seal(&self.cipher, &aad, &data[..self.chunk]));
                self.index += 1;
                data = &data[self.chunk..];
                continue;
            }
            let take = (self.chunk - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }

    /// Seals what is left as the last chunk.
    pub fn finish(self) -> Bytes {
        let aad = chunk_aad(&self.file_id, self.index, true);
        seal(&self.cipher, &aad, &self.buf)
    }
}

/// Opens stored chunks of one file.
#[derive(Clone)]
pub struct Opener {
    cipher: Aes256Gcm,
    file_id: String,
    layout: Layout,
}

impl Opener {
    pub fn new(key: &SecretKey, file_id: &str, layout: Layout) -> Opener {
        Opener {
            cipher: key.cipher(),
            file_id: file_id.to_string(),
            layout,
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Opens the stored bytes of chunks `first..` (as fetched with `Layout::stored_range`),
    /// answering their plaintext, in order.
    pub fn open_chunks(&self, first: u64, stored: &[u8]) -> Result<Vec<u8>, IntegrityError> {
        let stride = self.layout.chunk as usize + CHUNK_OVERHEAD;
        let last_index = self.layout.chunks() - 1;
        // One copy; each chunk is opened in place and its plaintext moved down over the
        // nonces and tags before it.
        let mut buf = stored.to_vec();
        let (mut read, mut written) = (0usize, 0usize);
        let mut index = first;
        while read < buf.len() {
            if index > last_index {
                return Err(IntegrityError("more chunks than the file has".into()));
            }
            let expected = if index == last_index {
                (self.layout.size - index * self.layout.chunk) as usize + CHUNK_OVERHEAD
            } else {
                stride
            };
            if buf.len() - read < expected {
                return Err(IntegrityError(format!("chunk {index} is cut short")));
            }
            let aad = chunk_aad(&self.file_id, index, index == last_index);
            let mut nonce = [0u8; NONCE_BYTES];
            nonce.copy_from_slice(&buf[read..read + NONCE_BYTES]);
            let mut tag = [0u8; TAG_BYTES];
            tag.copy_from_slice(&buf[read + expected - TAG_BYTES..read + expected]);
            let body = read + NONCE_BYTES..read + expected - TAG_BYTES;
            self.cipher
                .decrypt_in_place_detached(
                    Nonce::from_slice(&nonce),
                    &aad,
                    &mut buf[body.clone()],
                    Tag::from_slice(&tag),
                )
                .map_err(|_| IntegrityError("a chunk does not authenticate".into()))?;
            let n = body.len();
            buf.copy_within(body, written);
            written += n;
            read += expected;
            index += 1;
        }
        buf.truncate(written);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(key: &SecretKey, id: &str, data: &[u8], chunk: u32) -> Vec<u8> {
        let mut s = Sealer::new(key, id, chunk);
        let mut out = Vec::new();
        for piece in data.chunks(7) {
            s.push(piece, &mut out);
        }
        out.push(s.finish());
        out.concat()
    }

    #[test]
    fn chunks_round_trip_and_ranges_open_alone() {
        let key = SecretKey::random();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let stored = sealed(&key, "f1", &data, 4096);
        let layout = Layout::new(data.len() as u64, 4096);
        assert_eq!(stored.len() as u64, layout.stored_size());
        let o = Opener::new(&key, "f1", layout);
        assert_eq!(o.open_chunks(0, &stored).unwrap(), data);
        let r = layout.stored_range(1, 2);
        let plain = o
            .open_chunks(1, &stored[r.start as usize..r.end as usize])
            .unwrap();
        assert_eq!(plain, data[4096..]);
        assert_eq!(layout.chunks_of(&(5000..5001)), (1, 1));
        assert_eq!(layout.chunks_of(&(0..10_000)), (0, 2));
    }

    #[test]
    fn empty_and_exact_multiple_files_have_a_final_chunk() {
        let key = SecretKey::random();
        for len in [0usize, 4096, 8192] {
            let data = vec![7u8; len];
            let stored = sealed(&key, "f", &data, 4096);
            let layout = Layout::new(len as u64, 4096);
            assert_eq!(stored.len() as u64, layout.stored_size(), "len {len}");
            assert_eq!(
                Opener::new(&key, "f", layout)
                    .open_chunks(0, &stored)
                    .unwrap(),
                data
            );
        }
    }

    #[test]
    fn tampering_truncation_reordering_and_splicing_fail() {
        let key = SecretKey::random();
        let data = vec![42u8; 9000];
        let stored = sealed(&key, "a", &data, 4096);
        let layout = Layout::new(9000, 4096);
        let o = Opener::new(&key, "a", layout);
        let mut flipped = stored.clone();
        flipped[5000] ^= 1;
        assert!(o.open_chunks(0, &flipped).is_err());
        // Truncated at a chunk boundary: the second chunk was not sealed as the last.
        let short = Opener::new(&key, "a", Layout::new(8192, 4096));
        assert!(short.open_chunks(0, &stored[..2 * (4096 + 28)]).is_err());
        // Swapped chunks.
        let stride = 4096 + CHUNK_OVERHEAD;
        let mut swapped = stored[stride..2 * stride].to_vec();
        swapped.extend_from_slice(&stored[..stride]);
        swapped.extend_from_slice(&stored[2 * stride..]);
        assert!(o.open_chunks(0, &swapped).is_err());
        // The same bytes under another file's id.
        let other = Opener::new(&key, "b", layout);
        assert!(other.open_chunks(0, &stored).is_err());
    }

    #[test]
    fn keys_wrap_bound_to_their_file() {
        let master = SecretKey::random();
        let dk = SecretKey::random();
        let w = wrap_key(&master, "f1", &dk);
        assert_eq!(unwrap_key(&master, "f1", &w).unwrap().0, dk.0);
        assert!(unwrap_key(&master, "f2", &w).is_err());
        assert!(unwrap_key(&SecretKey::random(), "f1", &w).is_err());
        assert_eq!(
            SecretKey::from_base64(&master.to_base64()).unwrap().0,
            master.0
        );
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
    }
}
