//! `#[repr(C)]` mirror of `bpf/metrics_abi.h`, the metrics program's ABI.

#![allow(
    missing_docs,
    reason = "each item mirrors the documented C declaration of the same name"
)]

/// Latency buckets: bucket b holds calls of `ns` with b significant bits
/// (`2^(b-1) <= ns < 2^b`, 0 ns in bucket 0); the last one is open-ended.
pub const BUCKETS: usize = 40;

pub const MODE_NODE: u32 = 0;
pub const MODE_CONTAINERS: u32 = 1;

pub const C_NOMEM: u32 = 0;
pub const C_OVERFLOW: u32 = 1;
pub const C_UNTIMED: u32 = 2;

/// One series: pid namespace inode, syscall number, errno (0 = success).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricKey {
    pub pid_ns: u32,
    pub nr: u16,
    pub err: u16,
}

// SAFETY: plain integers, no padding (4 + 2 + 2 bytes).
unsafe impl aya::Pod for MetricKey {}

/// Calls, their total time and their latency histogram.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricValue {
    pub count: u64,
    pub total_ns: u64,
    pub hist: [u64; BUCKETS],
}

// SAFETY: plain u64s, no padding.
unsafe impl aya::Pod for MetricValue {}

impl Default for MetricValue {
    fn default() -> Self {
        Self {
            count: 0,
            total_ns: 0,
            hist: [0; BUCKETS],
        }
    }
}

impl MetricValue {
    /// Adds `other` (another CPU's share) into `self`.
    pub fn add(&mut self, other: &Self) {
        self.count = self.count.wrapping_add(other.count);
        self.total_ns = self.total_ns.wrapping_add(other.total_ns);
        for (a, b) in self.hist.iter_mut().zip(other.hist.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// The sum of per-CPU values.
    #[must_use]
    pub fn sum<'a>(values: impl IntoIterator<Item = &'a Self>) -> Self {
        let mut out = Self::default();
        for v in values {
            out.add(v);
        }
        out
    }
}

/// The bucket of a call of `ns` nanoseconds (as the kernel computes it).
#[must_use]
pub fn bucket_of(ns: u64) -> usize {
    let bits = (u64::BITS - ns.leading_zeros()) as usize;
    bits.min(BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_c_header() {
        assert_eq!(std::mem::size_of::<MetricKey>(), 8);
        assert_eq!(std::mem::size_of::<MetricValue>(), 8 * (2 + BUCKETS));
    }

    #[test]
    fn buckets_are_significant_bits() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(4), 3);
        assert_eq!(bucket_of(3_000_000), 22);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn values_sum_per_field() {
        let mut a = MetricValue {
            count: 2,
            ..MetricValue::default()
        };
        a.hist[3] = 2;
        let mut b = MetricValue {
            count: 1,
            total_ns: 7,
            ..MetricValue::default()
        };
        b.hist[3] = 1;
        let s = MetricValue::sum([&a, &b]);
        assert_eq!((s.count, s.total_ns, s.hist[3]), (3, 7, 3));
    }
}
