//! Per-key accounting of a probe: what the kernel counted (matched, sampled
//! out, dropped), what the reader took out of the ring (emitted) and what
//! the consumer was handed (delivered), and what is still in flight
//! (pending). For every key, once drained:
//! `matched == delivered + dropped + sampled_out` (pending is then 0).
//!
//! A key removed and added again (a pid namespace inode reused by a new
//! container, a trace deleted and created again) starts a new lifetime: its
//! kernel counters start at 0. The stats list a key's latest lifetime apart
//! from what its earlier lifetimes counted (summed in one entry), each
//! balanced on its own; the totals include every lifetime.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use crate::abi::{FilterKey, KeyCounters};
use crate::error::Result;
use crate::probe::{GlobalCounters, Probe};
use crate::reader::{Batch, ReaderCounters};

/// Counts of one filter key in one lifetime (or its earlier lifetimes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyStats {
    pub key: FilterKey,
    /// Which lifetime of the key this counts: `n` >= 1 for its latest (the
    /// live one, or the last if the key is removed), the key's `n`-th; 0 for
    /// the sum of every lifetime before the latest.
    pub lifetime: u32,
    /// Calls that matched the key in the kernel.
    pub matched: u64,
    /// Matched calls the kernel's sampling skipped.
    pub sampled_out: u64,
    /// Matched calls lost in the kernel: ring full, over the key's fair
    /// share, or no per-task memory.
    pub dropped: u64,
    /// Of `dropped`: the key held more than its fair share of the ring.
    pub over_share: u64,
    /// Records read out of the ring (delivered or queued for a poll).
    pub emitted: u64,
    /// Records handed to the consumer.
    pub delivered: u64,
    /// Matched calls neither delivered nor dropped nor sampled out yet (in
    /// a syscall still running, in the ring, or queued).
    pub pending: u64,
}

impl KeyStats {
    /// The stats of `key` from its kernel counters and the user-space counts.
    #[must_use]
    pub fn new(key: FilterKey, c: &KeyCounters, emitted: u64, delivered: u64) -> Self {
        Self {
            key,
            lifetime: 1,
            matched: c.matched,
            sampled_out: c.sampled_out,
            dropped: c.dropped,
            over_share: c.over_share,
            emitted,
            delivered,
            pending: c
                .matched
                .saturating_sub(c.sampled_out.saturating_add(c.dropped))
                .saturating_sub(delivered),
        }
    }
}

/// What the ended lifetimes of a key counted (kept in user space once the
/// key's kernel counters are deleted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyHistory {
    /// Lifetimes ended: the live one, if any, is number `ended + 1`.
    pub ended: u32,
    /// The last ended lifetime.
    pub last: KeyCounters,
    /// The sum of the lifetimes that ended before the last.
    pub before: KeyCounters,
}

impl KeyHistory {
    /// Ends a lifetime that counted `c`.
    pub fn end(&mut self, c: &KeyCounters) {
        add_counters(&mut self.before, &self.last);
        self.last = *c;
        self.ended = self.ended.saturating_add(1);
    }
}

/// One entry of a key's counters: `lifetime` as in [`KeyStats::lifetime`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLifetime {
    pub key: FilterKey,
    pub lifetime: u32,
    pub counters: KeyCounters,
}

/// The entries of `key`: its latest lifetime (`live` counters, else the
/// last ended one), then, if it had any, the sum of its earlier lifetimes.
#[must_use]
pub fn lifetimes(
    key: FilterKey,
    live: Option<&KeyCounters>,
    hist: Option<&KeyHistory>,
) -> Vec<KeyLifetime> {
    let h = hist.copied().unwrap_or_default();
    let entry = |lifetime, counters| KeyLifetime {
        key,
        lifetime,
        counters,
    };
    match live {
        Some(c) => {
            let mut out = vec![entry(h.ended.saturating_add(1), *c)];
            if h.ended > 0 {
                let mut earlier = h.before;
                add_counters(&mut earlier, &h.last);
                out.push(entry(0, earlier));
            }
            out
        }
        None if h.ended == 0 => Vec::new(),
        None => {
            let mut out = vec![entry(h.ended, h.last)];
            if h.ended > 1 {
                out.push(entry(0, h.before));
            }
            out
        }
    }
}

/// Records a lifetime wrote into the ring (each is read out once, then
/// delivered once).
fn written(c: &KeyCounters) -> u64 {
    c.matched
        .saturating_sub(c.sampled_out.saturating_add(c.dropped))
}

/// Sums over every key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub matched: u64,
    pub sampled_out: u64,
    pub dropped: u64,
    pub over_share: u64,
    pub delivered: u64,
}

impl Totals {
    /// The sums of `keys`.
    #[must_use]
    pub fn of(keys: &[KeyStats]) -> Self {
        keys.iter().fold(Self::default(), |t, k| Self {
            matched: t.matched + k.matched,
            sampled_out: t.sampled_out + k.sampled_out,
            dropped: t.dropped + k.dropped,
            over_share: t.over_share + k.over_share,
            delivered: t.delivered + k.delivered,
        })
    }
}

/// A snapshot of the reader thread's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    pub records: u64,
    pub decode_errors: u64,
    pub batches: u64,
    pub wakeups: u64,
}

impl From<&ReaderCounters> for ReaderStats {
    fn from(c: &ReaderCounters) -> Self {
        Self {
            records: c.records.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            wakeups: c.wakeups.load(Ordering::Relaxed),
        }
    }
}

/// Everything a probe counts, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeStats {
    /// Every key the probe traced (live and removed), in key order.
    pub keys: Vec<KeyStats>,
    pub total: Totals,
    /// Kernel-wide counters.
    pub kernel: GlobalCounters,
    pub reader: ReaderStats,
}

impl ProbeStats {
    /// Joins per-key kernel counters (the entries of [`lifetimes`], a key's
    /// together) with the reader's emitted counts and the consumer's
    /// delivered counts (keys missing from a map count 0).
    ///
    /// The reader and the consumer count per key, not per lifetime; a key's
    /// records are read and delivered in the order they were written, so the
    /// first ones are its earlier lifetimes', up to what those wrote into
    /// the ring (`matched - dropped - sampled_out`), and the rest its latest
    /// lifetime's.
    #[must_use]
    pub fn from_parts(
        counters: &[KeyLifetime],
        emitted: &HashMap<FilterKey, u64>,
        delivered: &HashMap<FilterKey, u64>,
        kernel: GlobalCounters,
        reader: ReaderStats,
    ) -> Self {
        let count = |m: &HashMap<FilterKey, u64>, k| m.get(k).copied().unwrap_or(0);
        let mut earlier_written: HashMap<FilterKey, u64> = HashMap::new();
        for e in counters.iter().filter(|e| e.lifetime == 0) {
            *earlier_written.entry(e.key).or_default() += written(&e.counters);
        }
        let keys: Vec<KeyStats> = counters
            .iter()
            .map(|e| {
                let k = &e.key;
                let (em, de) = (count(emitted, k), count(delivered, k));
                let before = count(&earlier_written, k);
                let (em, de) = if e.lifetime == 0 {
                    (em.min(before), de.min(before))
                } else {
                    (em.saturating_sub(before), de.saturating_sub(before))
                };
                KeyStats {
                    lifetime: e.lifetime,
                    ..KeyStats::new(*k, &e.counters, em, de)
                }
            })
            .collect();
        Self {
            total: Totals::of(&keys),
            keys,
            kernel,
            reader,
        }
    }

    /// Reads the probe's counters and joins them with the reader's and the
    /// consumer's counts.
    ///
    /// # Errors
    /// A kernel refusal while reading the counter maps.
    pub fn collect(probe: &Probe, reader: &ReaderCounters, delivered: &Delivered) -> Result<Self> {
        let counters = probe.key_counters()?;
        let kernel = probe.global_counters()?;
        let emitted = reader.per_key.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(Self::from_parts(
            &counters,
            &emitted,
            &delivered.snapshot(),
            kernel,
            ReaderStats::from(reader),
        ))
    }
}

/// Adds `c`'s kernel counts to `into` (a removed key's counters joining
/// what its earlier lifetimes counted).
pub fn add_counters(into: &mut KeyCounters, c: &KeyCounters) {
    into.matched += c.matched;
    into.sampled_out += c.sampled_out;
    into.dropped += c.dropped;
    into.over_share += c.over_share;
}

/// Records handed to the consumer, per key. Thread-safe.
#[derive(Debug, Default)]
pub struct Delivered(Mutex<HashMap<FilterKey, u64>>);

impl Delivered {
    /// Counts records `range` of `b` as delivered.
    pub fn count(&self, b: &Batch, range: Range<usize>) {
        let Ok(mut d) = self.0.lock() else { return };
        if range.start == 0 && range.end == b.len() {
            for (k, n) in &b.per_key {
                *d.entry(*k).or_default() += n;
            }
        } else if let Some(runs) = b.runs_over(range.start, range.end) {
            // Part of a batch (a poll took fewer than it held): the reader's
            // runs give the keys, without reading every record again.
            for r in runs {
                let n = r.end.min(range.end) - r.start.max(range.start);
                let key = FilterKey {
                    pid_ns: r.key_ns,
                    nr: r.nr,
                };
                *d.entry(key).or_default() += n as u64;
            }
        } else {
            for i in range {
                *d.entry(b.header(i).filter_key()).or_default() += 1;
            }
        }
    }

    /// Delivered counts so far.
    #[must_use]
    pub fn snapshot(&self) -> HashMap<FilterKey, u64> {
        self.0.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pid_ns: u32, nr: u32) -> FilterKey {
        FilterKey { pid_ns, nr }
    }

    fn counters(matched: u64, sampled_out: u64, dropped: u64) -> KeyCounters {
        KeyCounters {
            matched,
            sampled_out,
            dropped,
            over_share: dropped / 2,
            ..KeyCounters::default()
        }
    }

    #[test]
    fn pending_closes_the_balance() {
        let s = KeyStats::new(key(1, 2), &counters(100, 30, 5), 60, 50);
        assert_eq!(s.pending, 15);
        assert_eq!(
            s.matched,
            s.delivered + s.dropped + s.sampled_out + s.pending
        );
        // Never negative, even when counters are read at different moments.
        assert_eq!(
            KeyStats::new(key(1, 2), &counters(10, 5, 5), 3, 3).pending,
            0
        );
        assert_eq!(
            KeyStats::new(key(1, 2), &counters(1, u64::MAX, 1), 0, 0).pending,
            0
        );
    }

    #[test]
    fn joins_maps_and_sums() {
        let (a, b) = (key(1, 0), key(2, 39));
        let emitted = HashMap::from([(a, 7), (key(9, 9), 1)]);
        let delivered = HashMap::from([(a, 6)]);
        let one = |key, counters| KeyLifetime {
            key,
            lifetime: 1,
            counters,
        };
        let s = ProbeStats::from_parts(
            &[one(a, counters(10, 2, 1)), one(b, counters(4, 0, 4))],
            &emitted,
            &delivered,
            GlobalCounters::default(),
            ReaderStats::default(),
        );
        assert_eq!(s.keys.len(), 2);
        assert_eq!(
            (s.keys[0].emitted, s.keys[0].delivered, s.keys[0].pending),
            (7, 6, 1)
        );
        assert_eq!(
            (s.keys[1].emitted, s.keys[1].delivered, s.keys[1].pending),
            (0, 0, 0)
        );
        let want = Totals {
            matched: 14,
            sampled_out: 2,
            dropped: 5,
            over_share: 2,
            delivered: 6,
        };
        assert_eq!(s.total, want);
    }

    fn header_only(pid_ns: u32, nr: u32) -> Vec<u8> {
        let hdr = crate::abi::SyscallEvent {
            nr,
            pid_ns,
            ..Default::default()
        };
        crate::decode::testutil::record_with(hdr, &[])
    }

    #[test]
    fn counts_whole_and_partial_batches() {
        let mut b = Batch::default();
        let mut per_key = HashMap::new();
        for (ns, nr) in [(1, 0), (1, 0), (2, 39)] {
            assert!(b.push(&header_only(ns, nr), &mut per_key));
        }
        b.per_key = per_key.into_iter().collect();
        let d = Delivered::default();
        d.count(&b, 0..3);
        d.count(&b, 1..2);
        let got = d.snapshot();
        assert_eq!(got.get(&key(1, 0)), Some(&3));
        assert_eq!(got.get(&key(2, 39)), Some(&1));
        // A part across two runs counts the same from the runs as from the
        // records themselves (a batch built without runs).
        let bare = Batch {
            data: b.data.clone(),
            offsets: b.offsets.clone(),
            ..Batch::default()
        };
        for (batch, what) in [(&b, "runs"), (&bare, "records")] {
            let d = Delivered::default();
            d.count(batch, 1..3);
            let got = d.snapshot();
            assert_eq!(got.get(&key(1, 0)), Some(&1), "{what}");
            assert_eq!(got.get(&key(2, 39)), Some(&1), "{what}");
        }
    }

    #[test]
    fn adds_retired_counters() {
        let mut r = counters(1, 2, 3);
        add_counters(&mut r, &counters(10, 20, 30));
        assert_eq!(r, counters(11, 22, 33));
    }

    fn balanced(k: &KeyStats) -> bool {
        k.matched == k.delivered + k.dropped + k.sampled_out + k.pending
    }

    #[test]
    fn a_key_lists_its_latest_lifetime_then_the_earlier_ones() {
        let k = key(4_026_531_836, 39);
        let (one, two, three) = (counters(5, 0, 2), counters(7, 1, 0), counters(3, 0, 0));
        assert_eq!(lifetimes(k, None, None), vec![]);
        let live = lifetimes(k, Some(&one), None);
        assert_eq!(live.iter().map(|e| e.lifetime).collect::<Vec<_>>(), [1]);
        assert_eq!(live[0].counters, one);
        // Removed once: the ended lifetime is the latest, nothing earlier.
        let mut h = KeyHistory::default();
        h.end(&one);
        let removed = lifetimes(k, None, Some(&h));
        assert_eq!(removed.len(), 1);
        assert_eq!((removed[0].lifetime, removed[0].counters), (1, one));
        // Added again: the live one from 0, the first apart.
        let again = lifetimes(k, Some(&two), Some(&h));
        let got: Vec<_> = again.iter().map(|e| (e.lifetime, e.counters)).collect();
        assert_eq!(got, [(2, two), (0, one)]);
        // Removed again, added a third time: lifetimes 1 and 2 summed.
        h.end(&two);
        let mut sum = one;
        add_counters(&mut sum, &two);
        let got: Vec<_> = lifetimes(k, None, Some(&h))
            .iter()
            .map(|e| (e.lifetime, e.counters))
            .collect();
        assert_eq!(got, [(2, two), (0, one)]);
        let got: Vec<_> = lifetimes(k, Some(&three), Some(&h))
            .iter()
            .map(|e| (e.lifetime, e.counters))
            .collect();
        assert_eq!(got, [(3, three), (0, sum)]);
        assert_eq!(h.ended, 2);
    }

    #[test]
    fn read_and_delivered_counts_go_to_the_earlier_lifetimes_first() {
        let k = key(7, 39);
        // Earlier lifetimes wrote 12 - 1 - 1 = 10 records; the live one 5.
        let entries = [
            KeyLifetime {
                key: k,
                lifetime: 2,
                counters: KeyCounters {
                    matched: 5,
                    ..KeyCounters::default()
                },
            },
            KeyLifetime {
                key: k,
                lifetime: 0,
                counters: counters(12, 1, 1),
            },
        ];
        let split = |emitted: u64, delivered: u64| {
            ProbeStats::from_parts(
                &entries,
                &HashMap::from([(k, emitted)]),
                &HashMap::from([(k, delivered)]),
                GlobalCounters::default(),
                ReaderStats::default(),
            )
        };
        // Some of the earlier lifetimes' records still in flight.
        let s = split(8, 6);
        let (now, before) = (s.keys[0], s.keys[1]);
        assert_eq!((now.lifetime, before.lifetime), (2, 0));
        assert_eq!(
            (before.emitted, before.delivered, before.pending),
            (8, 6, 4)
        );
        assert_eq!((now.emitted, now.delivered, now.pending), (0, 0, 5));
        // Everything read and delivered: each lifetime balances on its own.
        let s = split(15, 15);
        let (now, before) = (s.keys[0], s.keys[1]);
        assert_eq!(
            (before.emitted, before.delivered, before.pending),
            (10, 10, 0)
        );
        assert_eq!((now.emitted, now.delivered, now.pending), (5, 5, 0));
        assert!(s.keys.iter().all(balanced));
        // The totals hold every lifetime.
        assert_eq!(
            (s.total.matched, s.total.delivered, s.total.dropped),
            (17, 15, 1)
        );
        assert_eq!(
            s.total.matched,
            s.total.delivered + s.total.dropped + s.total.sampled_out
        );
    }
}
