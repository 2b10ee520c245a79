//! A batch of validated raw records, as the reader thread hands them to the
//! consumer: the records' bytes, where each starts, how many each filter key
//! has, and the runs the router works on.

use std::collections::HashMap;

use crate::abi::{self, FilterKey};
use crate::decode;

/// A run of validated raw records, each starting 8-byte aligned in `data`.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub offsets: Vec<u32>,
    /// Records per filter key in this batch (for delivered counts).
    pub per_key: Vec<(FilterKey, u64)>,
    /// Runs of consecutive records of one filter key and pid namespace, the
    /// router's unit of work, noted by [`Batch::push_record`] while each
    /// record is in the cache (empty for a batch built otherwise).
    pub runs: Vec<RecordRun>,
}

/// Records `start..end` of a batch: one filter key (`key_ns`, `nr`) and one
/// pid namespace, their sequence numbers between `min_seq` and `max_seq`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordRun {
    pub key_ns: u32,
    pub nr: u32,
    pub pid_ns: u32,
    pub start: usize,
    pub end: usize,
    pub min_seq: u64,
    pub max_seq: u64,
}

impl Batch {
    #[must_use]
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The raw bytes of record `i`.
    #[must_use]
    pub fn record(&self, i: usize) -> &[u8] {
        let start = self.offsets[i] as usize;
        let hdr_size = self
            .data
            .get(start + 4..start + 8)
            .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]) as usize);
        &self.data[start..(start + hdr_size).min(self.data.len())]
    }

    /// Record `i` with the zeros that pad it to 8 bytes, found from the
    /// offsets alone (the record itself is not read): what the packed form
    /// codes, whose words end at the same place either way.
    #[must_use]
    pub fn padded_record(&self, i: usize) -> &[u8] {
        let start = self.offsets[i] as usize;
        let end = self
            .offsets
            .get(i + 1)
            .map_or(self.data.len(), |&o| o as usize);
        &self.data[start..end.max(start)]
    }

    /// Header of record `i` (validated when the batch was built).
    #[must_use]
    pub fn header(&self, i: usize) -> abi::SyscallEvent {
        abi::SyscallEvent::read(&self.data[self.offsets[i] as usize..]).unwrap_or_default()
    }

    /// An empty batch with room for `records` records of `bytes` bytes (the
    /// reader sizes each batch after the one before, so it seldom grows).
    #[must_use]
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        Self {
            data: Vec::with_capacity(bytes),
            offsets: Vec::with_capacity(records),
            per_key: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// The noted runs that hold any of records `start..end` (the first and
    /// last may reach past either end); None when [`Batch::push_record`] did
    /// not note the batch's runs.
    #[must_use]
    pub fn runs_over(&self, start: usize, end: usize) -> Option<&[RecordRun]> {
        if self.runs.last().map(|r| r.end) != Some(self.len()) {
            return None;
        }
        let first = self.runs.partition_point(|r| r.end <= start);
        let last = self.runs.partition_point(|r| r.start < end);
        Some(&self.runs[first..last.max(first)])
    }

    /// The runs of records `start..end` if [`Batch::push_record`] noted them
    /// (indices relative to `start`); None when it did not, or a run crosses
    /// either end.
    #[must_use]
    pub fn runs_of(&self, start: usize, end: usize) -> Option<Vec<RecordRun>> {
        self.runs_over(start, end)?
            .iter()
            .map(|r| {
                (r.start >= start && r.end <= end).then_some(RecordRun {
                    start: r.start - start,
                    end: r.end - start,
                    ..*r
                })
            })
            .collect()
    }

    /// Records per filter key, from the noted runs (the reader's `per_key`).
    #[must_use]
    pub fn key_counts(&self) -> Vec<(FilterKey, u64)> {
        let mut counts: HashMap<FilterKey, u64> = HashMap::new();
        for r in &self.runs {
            let key = FilterKey {
                pid_ns: r.key_ns,
                nr: r.nr,
            };
            *counts.entry(key).or_default() += (r.end - r.start) as u64;
        }
        counts.into_iter().collect()
    }

    /// Appends one record if it validates; returns false if it was rejected.
    pub fn push(&mut self, rec: &[u8], keys: &mut HashMap<FilterKey, u64>) -> bool {
        let Some(key) = self.push_record(rec) else {
            return false;
        };
        *keys.entry(key).or_default() += 1;
        true
    }

    /// Appends one record if it validates: its filter key, or None if it
    /// was rejected.
    pub fn push_record(&mut self, rec: &[u8]) -> Option<FilterKey> {
        let hdr = decode::check(rec).ok()?;
        let at = self.len();
        let start = self.data.len();
        self.offsets.push(u32::try_from(start).unwrap_or(u32::MAX));
        let size = hdr.size as usize;
        self.data.extend_from_slice(&rec[..size]);
        self.data.resize(start + size.div_ceil(8) * 8, 0);
        let key = hdr.filter_key();
        match self.runs.last_mut() {
            Some(r)
                if r.end == at
                    && r.key_ns == key.pid_ns
                    && r.nr == key.nr
                    && r.pid_ns == hdr.pid_ns =>
            {
                r.end = at + 1;
                r.min_seq = r.min_seq.min(hdr.seq);
                r.max_seq = r.max_seq.max(hdr.seq);
            }
            _ => self.runs.push(RecordRun {
                key_ns: key.pid_ns,
                nr: key.nr,
                pid_ns: hdr.pid_ns,
                start: at,
                end: at + 1,
                min_seq: hdr.seq,
                max_seq: hdr.seq,
            }),
        }
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::SyscallEvent;
    use crate::decode::testutil::record_with;

    fn rec(nr: u32, pid_ns: u32, seq: u64) -> Vec<u8> {
        record_with(
            SyscallEvent {
                nr,
                pid_ns,
                seq,
                ..SyscallEvent::default()
            },
            &[],
        )
    }

    fn batch(recs: &[(u32, u32, u64)]) -> Batch {
        let mut b = Batch::default();
        for &(nr, ns, seq) in recs {
            assert!(b.push_record(&rec(nr, ns, seq)).is_some());
        }
        b
    }

    #[test]
    fn runs_are_noted_as_records_are_pushed() {
        let b = batch(&[(39, 7, 5), (39, 7, 3), (39, 8, 9), (0, 8, 1), (0, 8, 2)]);
        let got: Vec<_> = b
            .runs
            .iter()
            .map(|r| (r.nr, r.pid_ns, r.start, r.end, r.min_seq, r.max_seq))
            .collect();
        assert_eq!(
            got,
            [(39, 7, 0, 2, 3, 5), (39, 8, 2, 3, 9, 9), (0, 8, 3, 5, 1, 2)]
        );
        // Records per key, from the runs (key_ns is the pid namespace here).
        let mut counts = b.key_counts();
        counts.sort();
        let key = |pid_ns, nr| FilterKey { pid_ns, nr };
        assert_eq!(counts, [(key(7, 39), 2), (key(8, 0), 2), (key(8, 39), 1)]);
        // A rejected record is not a run's member.
        let mut b2 = batch(&[(39, 7, 1)]);
        assert!(b2.push_record(&[0u8; 8]).is_none());
        assert_eq!(b2.runs.len(), 1);
        assert_eq!(b2.runs[0].end, 1);
    }

    #[test]
    fn runs_of_a_view_are_relative_or_none_when_a_run_is_cut() {
        let b = batch(&[(39, 7, 1), (39, 7, 2), (39, 8, 3), (0, 8, 4)]);
        let whole = b.runs_of(0, 4).unwrap();
        assert_eq!(whole, b.runs);
        let tail = b.runs_of(2, 4).unwrap();
        assert_eq!(
            tail.iter().map(|r| (r.start, r.end)).collect::<Vec<_>>(),
            [(0, 1), (1, 2)]
        );
        assert!(b.runs_of(1, 4).is_none(), "cuts the first run");
        assert!(b.runs_of(0, 3).unwrap().len() == 2);
        // Built without push_record: no runs, the caller scans.
        let bare = Batch {
            data: b.data.clone(),
            offsets: b.offsets.clone(),
            ..Batch::default()
        };
        assert!(bare.runs_of(0, 4).is_none());
    }
}
