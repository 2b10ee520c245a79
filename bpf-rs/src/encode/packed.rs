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

use super::prefetch_ahead;

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

/// Word `i` of a record (the last one zero-padded; 0 past its end).
#[inline]
fn word(rec: &[u8], i: usize) -> u64 {
    if let Some(s) = rec.get(8 * i..8 * i + 8) {
        return u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
    }
    let mut last = [0u8; 8];
    if let Some(rest) = rec.get(8 * i..) {
        last[..rest.len()].copy_from_slice(rest);
    }
    u64::from_ne_bytes(last)
}

/// Appends the packed form of `records` to `out`. Every record must hold at
/// least its first word (8 bytes) and its own size in bytes 4..8, as reader
/// records do.
pub fn pack(records: &[&[u8]], out: &mut Vec<u8>) {
    let mut prev: &[u8] = &[];
    for (k, &rec) in records.iter().enumerate() {
        // Records the reader wrote long before: packing is memory-bound.
        prefetch_ahead(records, k);
        if rec.len() == prev.len() && rec.len() % 8 == 0 && (8..=8 * 65).contains(&rec.len()) {
            pack_same_size(rec, prev, out);
            prev = rec;
            continue;
        }
        let n = rec.len().div_ceil(8).max(1);
        let m = n.min(prev.len().div_ceil(8));
        let mask_len = (n - 1).div_ceil(8);
        out.reserve(10 + mask_len + 10 * n);
        put_varint(out, zigzag(word(rec, 0).wrapping_sub(word(prev, 0))));
        let mask_at = out.len();
        out.resize(mask_at + mask_len, 0);
        for i in 1..n {
            let p = if i < m { word(prev, i) } else { 0 };
            let d = word(rec, i).wrapping_sub(p);
            if d != 0 {
                out[mask_at + (i - 1) / 8] |= 1 << ((i - 1) % 8);
                put_varint(out, zigzag(d));
            }
        }
        prev = rec;
    }
}

/// [`pack`] of a record of whole words (at most 65) after one of the same
/// size: the changed words found in one branch-free pass, then only those
/// visited. The same bytes as the general loop.
fn pack_same_size(rec: &[u8], prev: &[u8], out: &mut Vec<u8>) {
    let n = rec.len() / 8;
    // The changed words' bits, 8 at a time in a register.
    let mut mask = 0u64;
    for j in 0..(n - 1).div_ceil(8) {
        let mut g = 0u64;
        for k in 0..8 {
            let i = 1 + 8 * j + k;
            if i < n {
                g |= u64::from(word(rec, i) != word(prev, i)) << k;
            }
        }
        mask |= g << (8 * j);
    }
    let mask_len = (n - 1).div_ceil(8);
    out.reserve(10 + mask_len + 10 * mask.count_ones() as usize);
    put_varint(out, zigzag(word(rec, 0).wrapping_sub(word(prev, 0))));
    out.extend_from_slice(&mask.to_le_bytes()[..mask_len]);
    while mask != 0 {
        let i = 1 + mask.trailing_zeros() as usize;
        mask &= mask - 1;
        put_varint(out, zigzag(word(rec, i).wrapping_sub(word(prev, i))));
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
    unpack_checked(blob, |_, _| Ok(()))
}

/// [`unpack`], `check` called with each record's index and bytes as soon as
/// it is unpacked (while it is in the cache); its error ends the unpacking.
pub fn unpack_checked(
    blob: &[u8],
    mut check: impl FnMut(usize, &[u8]) -> Result<(), String>,
) -> Result<Unpacked, String> {
    let mut data: Vec<u8> = Vec::with_capacity(blob.len() * 24);
    let mut offsets = Vec::with_capacity(blob.len() / 4);
    // The previous record: its offset in `data` and its words.
    let mut prev = (0, 0);
    let mut at = 0;
    while at < blob.len() {
        let start = at;
        let k = offsets.len();
        let err = |what: &str| format!("packed record {k} at byte {start}: {what}");
        let d0 = get_varint(blob, &mut at).ok_or_else(|| err("truncated"))?;
        let (poff, pn) = prev;
        let p0 = if pn > 0 { word(&data[poff..], 0) } else { 0 };
        let b0 = p0.wrapping_add(unzigzag(d0)).to_ne_bytes();
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
        // The previous record's words, then zeros; word 0; the deltas.
        let off = data.len();
        data.extend_from_within(poff..poff + 8 * n.min(pn));
        data.resize(off + 8 * n, 0);
        data[off..off + 8].copy_from_slice(&b0);
        for (byte, &bits) in mask.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                let i = 1 + 8 * byte + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let d = get_varint(blob, &mut at).ok_or_else(|| err("truncated"))?;
                if let Some(s) = data.get_mut(off + 8 * i..off + 8 * i + 8) {
                    let w = word(s, 0).wrapping_add(unzigzag(d));
                    s.copy_from_slice(&w.to_ne_bytes());
                }
            }
        }
        check(k, &data[off..off + size])?;
        offsets.push(off);
        prev = (off, n);
    }
    Ok(Unpacked { data, offsets })
}
