//! The packed records form (`EventBatch.packed_records`): the probe's raw
//! records, each coded against the one before it in the same message, so a
//! stream of similar calls costs a few bytes per event instead of the
//! record's 160 or more, and [`unpack`] gives back exactly the same records.
//!
//! A record is taken as `n` native-endian 8-byte words (its `size` bytes,
//! the last word zero-padded). Word `i`'s delta is `w[i] - p[i]` (wrapping),
//! `p` being the previous record's words in the message (0 for the first
//! record, and past the end of a shorter previous record). Each record is:
//!
//! 1. word 0's delta (kind, flags, size) as a zigzag varint: once it is
//!    decoded, `size` (bytes 4..8 of word 0) gives `n`;
//! 2. a bitmask of the words 1..n whose delta is not 0, `ceil((n-1)/8)`
//!    bytes, bit `i-1` (byte `(i-1)/8`, bit `(i-1)%8`) for word `i`;
//! 3. those deltas as zigzag varints, in word order.
//!
//! A getppid record from a thread that called it just before costs about 8
//! bytes: one for word 0, three of mask, two or three for the exit time and
//! one for the sequence number. Unchanged words cost one bit; a word that
//! changes completely (captured data) up to 10 bytes.

/// Zigzag: small negative and positive deltas both make short varints.
fn zigzag(d: u64) -> u64 {
    (d << 1) ^ ((d as i64 >> 63) as u64)
}

fn unzigzag(z: u64) -> u64 {
    (z >> 1) ^ (z & 1).wrapping_neg()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The words of a record: its bytes, the last word zero-padded.
fn words_of(rec: &[u8], words: &mut Vec<u64>) {
    words.clear();
    let mut chunks = rec.chunks_exact(8);
    for c in &mut chunks {
        words.push(u64::from_ne_bytes([
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
        ]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        words.push(u64::from_ne_bytes(last));
    }
}

/// Appends the packed form of `records` to `out`. Every record must hold at
/// least its first word (8 bytes) and its own size in bytes 4..8, as reader
/// records do.
pub fn pack(records: &[&[u8]], out: &mut Vec<u8>) {
    let mut prev: Vec<u64> = Vec::with_capacity(32);
    let mut cur: Vec<u64> = Vec::with_capacity(32);
    for rec in records {
        words_of(rec, &mut cur);
        if cur.is_empty() {
            cur.push(0);
        }
        let n = cur.len();
        let mask_len = (n - 1).div_ceil(8);
        out.reserve(10 + mask_len + 10 * n);
        put_varint(
            out,
            zigzag(cur[0].wrapping_sub(prev.first().copied().unwrap_or(0))),
        );
        let mask_at = out.len();
        out.resize(mask_at + mask_len, 0);
        for (i, &w) in cur.iter().enumerate().skip(1) {
            let d = w.wrapping_sub(prev.get(i).copied().unwrap_or(0));
            if d != 0 {
                out[mask_at + (i - 1) / 8] |= 1 << ((i - 1) % 8);
                put_varint(out, zigzag(d));
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
}

/// Reads the varint at `*at`, advancing it; None when truncated or longer
/// than 10 bytes.
fn get_varint(blob: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *blob.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Records unpacked from a packed blob: each record's bytes, 8-byte
/// aligned, in one buffer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// The records, each padded to a multiple of 8 bytes with zeros.
    pub data: Vec<u8>,
    /// Where each record starts in `data`.
    pub offsets: Vec<usize>,
}

impl Unpacked {
    /// Record `i` (its `size` bytes).
    #[must_use]
    pub fn record(&self, i: usize) -> &[u8] {
        let start = self.offsets[i];
        let s = &self.data[start + 4..start + 8];
        let size = u32::from_ne_bytes([s[0], s[1], s[2], s[3]]) as usize;
        &self.data[start..start + size]
    }
}

/// The records of a packed blob; an error naming the first record (and the
/// byte where it starts) that does not decode. Records are not validated
/// here beyond their size (at least the 8 bytes of word 0).
pub fn unpack(blob: &[u8]) -> Result<Unpacked, String> {
    let mut out = Unpacked {
        data: Vec::with_capacity(blob.len() * 16),
        offsets: Vec::new(),
    };
    let mut prev: Option<(usize, usize)> = None; // (offset, words) in out.data
    let mut at = 0;
    while at < blob.len() {
        let start = at;
        let k = out.offsets.len();
        let err = |what: &str| format!("packed record {k} at byte {start}: {what}");
        let word = |data: &[u8], i: usize| -> u64 {
            prev.filter(|&(_, n)| i < n).map_or(0, |(off, _)| {
                let s = &data[off + 8 * i..off + 8 * i + 8];
                u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
            })
        };
        let d0 = get_varint(blob, &mut at).ok_or_else(|| err("truncated"))?;
        let w0 = word(&out.data, 0).wrapping_add(unzigzag(d0));
        let b0 = w0.to_ne_bytes();
        let size = u32::from_ne_bytes([b0[4], b0[5], b0[6], b0[7]]) as usize;
        if size < 8 {
            return Err(err(&format!("size {size} is below 8 bytes")));
        }
        let n = size.div_ceil(8);
        let mask_len = (n - 1).div_ceil(8);
        let mask = blob
            .get(at..at + mask_len)
            .ok_or_else(|| err("truncated mask"))?;
        at += mask_len;
        let off = out.data.len();
        out.data.reserve(8 * n);
        out.data.extend_from_slice(&b0);
        for i in 1..n {
            let mut w = word(&out.data, i);
            if mask[(i - 1) / 8] & (1 << ((i - 1) % 8)) != 0 {
                let d = get_varint(blob, &mut at).ok_or_else(|| err("truncated"))?;
                w = w.wrapping_add(unzigzag(d));
            }
            out.data.extend_from_slice(&w.to_ne_bytes());
        }
        out.offsets.push(off);
        prev = Some((off, n));
    }
    Ok(out)
}
