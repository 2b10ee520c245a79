//! Property tests of the record decoder and the reader's batch builder over
//! generated ring records: well-formed ones, and the same truncated, with
//! corrupted header fields or capture lengths, or with random bytes written
//! over them. Nothing may panic; a record is either accepted by both the
//! validator and the batch builder (and then decodes and renders) or refused
//! by both with a [`DecodeError`] naming the fault. Rendered text never holds
//! a raw control character.
//!
//! Cases: `SYSHUB_FUZZ_CASES` (default 4,000 per property, so CI stays
//! short). The benchmark run: `SYSHUB_FUZZ_CASES=1000000 cargo test
//! --release -p syshub-bpf --test fuzz_records -- --nocapture`, which prints
//! how many records were accepted and refused and why.

use std::collections::HashMap;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use syshub_bpf::abi::{self, Capture, SyscallEvent};
use syshub_bpf::decode::{self, DecodeError};
use syshub_bpf::reader::Batch;

/// Outcomes over every case of one property, printed at the end.
#[derive(Default)]
struct Counts(Mutex<HashMap<&'static str, u64>>);

impl Counts {
    fn add(&self, what: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(what).or_default() += 1;
        }
    }

    fn report(&self, name: &str) {
        let mut v: Vec<_> = self
            .0
            .lock()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        v.sort_unstable();
        let total: u64 = v.iter().map(|(_, n)| n).sum();
        println!("{name}: {total} records checked: {v:?}");
    }
}

fn cases() -> u32 {
    std::env::var("SYSHUB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    })
}

fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: only the POD ABI structs (fixed-width fields, padding spelled out).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

/// One capture: slot, kind, flags, index and data.
type Cap = (u8, u8, u16, u32, Vec<u8>);

fn capture() -> impl Strategy<Value = Cap> {
    (
        prop_oneof![9 => 0u8..6, 1 => any::<u8>()],
        prop_oneof![9 => 1u8..=6, 1 => any::<u8>()],
        any::<u16>(),
        prop_oneof![3 => 0u32..4, 1 => any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..300),
    )
}

fn header() -> impl Strategy<Value = SyscallEvent> {
    (
        prop_oneof![9 => 0u32..abi::MAX_SYSCALLS, 1 => any::<u32>()],
        any::<u16>(),
        any::<[u64; abi::NARGS]>(),
        any::<[u8; abi::COMM_LEN]>(),
        any::<(i64, u64, u32, u32, u16)>(),
    )
        .prop_map(
            |(nr, flags, args, comm, (ret, seq, tgid, pid_ns, scope))| SyscallEvent {
                nr,
                flags,
                args,
                comm,
                ret,
                seq,
                tgid,
                pid_ns,
                scope,
                ..SyscallEvent::default()
            },
        )
}

/// A well-formed record: header, then each capture and its data, 8-byte aligned.
fn build(mut hdr: SyscallEvent, caps: &[Cap]) -> Vec<u8> {
    let mut body = Vec::new();
    for (slot, kind, flags, index, data) in caps {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let c = Capture {
            slot: *slot,
            kind: *kind,
            flags: *flags,
            len,
            orig_len: len,
            index: *index,
        };
        body.extend(bytes_of(&c));
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(8), 0);
    }
    hdr.kind = abi::REC_SYSCALL;
    hdr.size = u32::try_from(abi::EVENT_SIZE + body.len()).unwrap_or(u32::MAX);
    hdr.ncaptures = u16::try_from(caps.len()).unwrap_or(u16::MAX);
    let mut r = bytes_of(&hdr);
    r.extend(body);
    r
}

/// How a well-formed record is damaged.
#[derive(Clone, Debug)]
enum Damage {
    None,
    Truncate(usize),
    /// Overwrite the u32 at this offset (size, nr, a capture length...).
    Word(usize, u32),
    /// Overwrite the u16 capture count.
    Ncaptures(u16),
    Kind(u16),
    /// Random bytes written at random offsets.
    Bytes(Vec<(usize, u8)>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => Just(Damage::None),
        2 => any::<usize>().prop_map(Damage::Truncate),
        // 4 = size, 8 = nr, 160.. = the first capture (len at +4).
        2 => (prop_oneof![Just(4usize), Just(8), Just(164), Just(196), any::<usize>()], any::<u32>())
            .prop_map(|(o, v)| Damage::Word(o, v)),
        1 => any::<u16>().prop_map(Damage::Ncaptures),
        1 => any::<u16>().prop_map(Damage::Kind),
        2 => prop::collection::vec(any::<(usize, u8)>(), 1..8).prop_map(Damage::Bytes),
    ]
}

fn apply(mut rec: Vec<u8>, d: &Damage) -> Vec<u8> {
    let n = rec.len();
    match d {
        Damage::None => {}
        Damage::Truncate(at) => rec.truncate(at % (n + 1)),
        Damage::Word(off, v) => {
            let off = off % n.saturating_sub(3).max(1);
            if let Some(w) = rec.get_mut(off..off + 4) {
                w.copy_from_slice(&v.to_ne_bytes());
            }
        }
        Damage::Ncaptures(v) => rec[52..54].copy_from_slice(&v.to_ne_bytes()),
        Damage::Kind(v) => rec[0..2].copy_from_slice(&v.to_ne_bytes()),
        Damage::Bytes(list) => {
            for (off, b) in list {
                rec[off % n] = *b;
            }
        }
    }
    rec
}

/// A rendered line must hold no raw control character (C0, DEL, C1).
fn clean_text(s: &str) -> bool {
    !s.chars()
        .any(|c| (c as u32) < 0x20 || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c))
}

/// The one property: validator, batch builder and decoder agree and never panic.
fn check(rec: &[u8], counts: &Counts) -> Result<(), TestCaseError> {
    let valid = decode::validate(rec);
    let mut batch = Batch::default();
    let mut keys = HashMap::new();
    let pushed = batch.push(rec, &mut keys);
    prop_assert_eq!(
        pushed,
        valid.is_ok(),
        "validator and batch builder disagree"
    );
    match valid {
        Ok(hdr) => {
            counts.add("accepted");
            prop_assert_eq!(batch.record(0), &rec[..hdr.size as usize]);
            prop_assert_eq!(keys.get(&hdr.filter_key()).copied(), Some(1));
            let d = decode::decode(rec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let text = d.to_text();
            prop_assert!(clean_text(&text), "raw control character in {text:?}");
            for a in &d.args {
                prop_assert!(clean_text(&a.value.to_text()));
            }
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            counts.add(match e {
                DecodeError::Short(_) => "refused: short",
                DecodeError::Kind(_) => "refused: kind",
                DecodeError::Size { .. } => "refused: size",
                DecodeError::Capture { .. } => "refused: capture",
                DecodeError::Nr(_) => "refused: nr",
            });
            prop_assert!(decode::decode(rec).is_err());
        }
    }
    Ok(())
}

#[test]
fn generated_records_are_accepted_or_refused_never_crash() {
    let mut r = runner();
    let strat = (header(), prop::collection::vec(capture(), 0..6), damage());
    let counts = Counts::default();
    let res = r.run(&strat, |(hdr, caps, d)| {
        check(&apply(build(hdr, &caps), &d), &counts)
    });
    counts.report("generated records");
    res.unwrap();
}

#[test]
fn random_bytes_are_refused_or_decode() {
    let mut r = runner();
    // Half of them claim kind 1 and their own length as size, so the
    // capture walk sees random capture headers.
    let strat = (prop::collection::vec(any::<u8>(), 0..600), any::<bool>());
    let counts = Counts::default();
    let res = r.run(&strat, |(mut bytes, plausible)| {
        if plausible && bytes.len() >= abi::EVENT_SIZE {
            let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            bytes[0..2].copy_from_slice(&abi::REC_SYSCALL.to_ne_bytes());
            bytes[4..8].copy_from_slice(&size.to_ne_bytes());
            let nr = u32::from(bytes[8]) % abi::MAX_SYSCALLS;
            let ncaptures = u16::from(bytes[52] % 8);
            bytes[8..12].copy_from_slice(&nr.to_ne_bytes());
            bytes[52..54].copy_from_slice(&ncaptures.to_ne_bytes());
        }
        check(&bytes, &counts)
    });
    counts.report("random bytes");
    res.unwrap();
}

#[test]
fn well_formed_records_are_all_accepted() {
    let mut r = runner();
    let strat = (header(), prop::collection::vec(capture(), 0..6));
    let counts = Counts::default();
    let res = r.run(&strat, |(mut hdr, mut caps)| {
        hdr.nr %= abi::MAX_SYSCALLS;
        for c in &mut caps {
            c.0 %= 6;
        }
        let rec = build(hdr, &caps);
        prop_assume!(rec.len() <= abi::REC_MAX);
        prop_assert!(decode::validate(&rec).is_ok());
        check(&rec, &counts)
    });
    counts.report("well-formed records");
    res.unwrap();
}
