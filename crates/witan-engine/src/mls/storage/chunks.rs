//! Large rows stored in content-addressed chunks, so that rewriting one writes only the
//! chunks that changed.
//!
//! OpenMLS rewrites a group's whole message secrets after every message (see the module doc
//! of `storage`): at 128 members about 25 KB, of which one message changes one sender's
//! ratchet — a few dozen bytes. Written as one row, every packet applied in its own
//! transaction put the whole row (seven pages and more) into the write-ahead log.
//!
//! A value of at least [`MIN_CHUNKED`] bytes is cut where its content says (a rolling "gear"
//! hash of the last bytes, so that an edit moves no boundary outside the chunks it touches),
//! each chunk stored under the row's key + `#` + its SHA-256 (hex, 128 bits), and the row
//! itself holds a header naming the chunks in order. Rewriting the value writes the chunks
//! the old header does not name and deletes those the new one does not. Chunks are checked
//! against their hash and the header's length on reading.
//!
//! Header: [`HEADER`] · total length u32 le · count u32 le · count × 16-byte hash. A row
//! that does not start with [`HEADER`] is a value stored whole (as every row was before, and
//! small values still are).

use sha2::{Digest, Sha256};

/// First byte of a chunk header (neither the codec's magic byte nor one that starts JSON).
pub const HEADER: u8 = 0xC7;
/// Values shorter than this are stored whole.
pub const MIN_CHUNKED: usize = 4096;
/// Bounds of a chunk's length, and the mask that makes a boundary (about one in 1,024 bytes
/// past the minimum).
const MIN_CHUNK: usize = 512;
const MAX_CHUNK: usize = 4096;
const BOUNDARY_MASK: u64 = (1 << 10) - 1;
/// Hash bytes kept per chunk.
const HASH_LEN: usize = 16;
/// Most chunks a header may name (a 64 MiB value at the smallest chunks would need fewer).
const MAX_CHUNKS: usize = 1 << 17;

/// A chunk's hash, as named in a header.
pub type ChunkHash = [u8; HASH_LEN];

/// The gear table: one pseudo-random word per byte value (splitmix64 of the byte).
const GEAR: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut z = (i as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        table[i] = z ^ (z >> 31);
        i += 1;
    }
    table
};

/// Cuts `value` into chunks at content-defined boundaries.
pub fn split(value: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(value.len() / 1024 + 1);
    let mut rest = value;
    while !rest.is_empty() {
        let cut = boundary(rest);
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Length of the first chunk of `bytes`.
fn boundary(bytes: &[u8]) -> usize {
    if bytes.len() <= MIN_CHUNK {
        return bytes.len();
    }
    let end = bytes.len().min(MAX_CHUNK);
    let mut h = 0u64;
    // Warm the rolling hash on the bytes just before the first possible cut.
    for &b in &bytes[MIN_CHUNK - 64..MIN_CHUNK] {
        h = (h << 1).wrapping_add(GEAR[b as usize]);
    }
    for (i, &b) in bytes.iter().enumerate().take(end).skip(MIN_CHUNK) {
        h = (h << 1).wrapping_add(GEAR[b as usize]);
        // The high bits depend on the last 64 bytes.
        if (h >> 40) & BOUNDARY_MASK == 0 {
            return i + 1;
        }
    }
    end
}

/// The hash naming `chunk`.
pub fn hash(chunk: &[u8]) -> ChunkHash {
    let digest = Sha256::digest(chunk);
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&digest[..HASH_LEN]);
    out
}

/// The row key of chunk `hash` of row `key`.
pub fn chunk_key(key: &[u8], hash: &ChunkHash) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1 + 2 * HASH_LEN);
    out.extend_from_slice(key);
    out.push(b'#');
    for b in hash {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    out
}

/// A parsed header: the value's length and its chunks in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub len: usize,
    pub chunks: Vec<ChunkHash>,
}

impl Header {
    /// The header of `chunks` (the pieces of one value).
    pub fn of(chunks: &[&[u8]]) -> Header {
        Header {
            len: chunks.iter().map(|c| c.len()).sum(),
            chunks: chunks.iter().map(|c| hash(c)).collect(),
        }
    }

    /// The header's row bytes.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let len = u32::try_from(self.len).map_err(|_| "chunked value too long")?;
        let count = u32::try_from(self.chunks.len()).map_err(|_| "too many chunks")?;
        let mut out = Vec::with_capacity(9 + HASH_LEN * self.chunks.len());
        out.push(HEADER);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        for h in &self.chunks {
            out.extend_from_slice(h);
        }
        Ok(out)
    }

    /// The header in `row`, `None` when the row is a value stored whole.
    pub fn decode(row: &[u8]) -> Result<Option<Header>, String> {
        let Some((&HEADER, rest)) = row.split_first() else {
            return Ok(None);
        };
        let word = |at: usize| -> Result<usize, String> {
            let bytes = rest.get(at..at + 4).ok_or("truncated chunk header")?;
            let mut w = [0u8; 4];
            w.copy_from_slice(bytes);
            Ok(u32::from_le_bytes(w) as usize)
        };
        let (len, count) = (word(0)?, word(4)?);
        let hashes = &rest[8..];
        if count > MAX_CHUNKS || hashes.len() != count * HASH_LEN {
            return Err(format!(
                "chunk header names {count} chunks in {} bytes",
                hashes.len()
            ));
        }
        let chunks = hashes
            .chunks_exact(HASH_LEN)
            .map(|h| {
                let mut out = [0u8; HASH_LEN];
                out.copy_from_slice(h);
                out
            })
            .collect();
        Ok(Some(Header { len, chunks }))
    }

    /// Joins the chunks `fetch` returns into the value, checking each against its hash and
    /// the whole against the header's length.
    pub fn assemble(
        &self,
        mut fetch: impl FnMut(&ChunkHash) -> Result<Option<Vec<u8>>, String>,
    ) -> Result<Vec<u8>, String> {
        let mut value = Vec::with_capacity(self.len.min(MAX_CHUNKS * MIN_CHUNK));
        for h in &self.chunks {
            let chunk = fetch(h)?.ok_or("a chunk named by its header is missing")?;
            if hash(&chunk) != *h {
                return Err("a chunk does not match its hash".into());
            }
            value.extend_from_slice(&chunk);
        }
        if value.len() != self.len {
            return Err("chunked value of the wrong length".into());
        }
        Ok(value)
    }
}

#[cfg(test)]
#[path = "chunks_tests.rs"]
mod tests;
