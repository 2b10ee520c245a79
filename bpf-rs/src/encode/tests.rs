//! Encoder unit tests on hand-built records (the Python tests compare the
//! encoders with `to_dict()`, `to_text()` and the generated proto classes on
//! recorded batches).

use super::*;
use crate::abi;
use crate::decode::testutil::record;

fn json_of(rec: &[u8], containers: &Containers, node: Option<&str>) -> String {
    let mut out = Vec::new();
    encode_json(&[rec], containers, node, &mut out);
    String::from_utf8(out).unwrap()
}

fn json_str(s: &[u8]) -> String {
    let mut out = Vec::new();
    JsonSink::new(&mut out).lossy(s);
    String::from_utf8(out).unwrap()
}

#[test]
fn json_strings_escape_as_python_ensure_ascii() {
    // json.dumps("a\"b\\c\n\x01\x7f\xe9\U0001f600\x08\x0c\t\r")
    assert_eq!(
        json_str("a\"b\\c\n\x01\x7f\u{e9}\u{1f600}\x08\x0c\t\r".as_bytes()),
        r#""a\"b\\c\n\u0001\u007f\u00e9\ud83d\ude00\b\f\t\r""#
    );
    // Invalid UTF-8: one U+FFFD per invalid sequence, as from_utf8_lossy.
    assert_eq!(json_str(b"a\xffb\xe2\x82"), r#""a\ufffdb\ufffd""#);
    assert_eq!(json_str(b""), r#""""#);
}

#[test]
fn json_line_is_the_document() {
    let r = record(257, &[(1, abi::CAP_STR, b"/etc/host\"name")]);
    let line = json_of(&r, &Containers::new(), None);
    assert!(line.ends_with("}\n"), "{line}");
    assert_eq!(line.matches('\n').count(), 1);
    assert!(line.starts_with(r#"{"syscall":{"nr":257,"name":"sys_openat","class":"#));
    assert!(line.contains(r#""error":"OK","errno":null,"return":3,"returned":true,"#));
    assert!(line.contains(r#""args":{"dfd":"AT_FDCWD","filename":"/etc/host\"name","#));
    assert!(line.ends_with(",\"container\":null}\n"), "{line}");
}

#[test]
fn json_container_and_node_close_the_document() {
    let r = record(257, &[]);
    let hdr = crate::abi::SyscallEvent::read(&r).unwrap();
    let c = Doc::Map(vec![
        ("id".into(), Doc::Str("abc".into())),
        (
            "labels".into(),
            Doc::Map(vec![("app".into(), Doc::Str("x\u{e9}".into()))]),
        ),
        ("pid".into(), Doc::Int(42)),
    ]);
    let containers = Containers::from([(hdr.pid_ns, Some(c))]);
    let line = json_of(&r, &containers, Some("node-1"));
    let want = r#","container":{"id":"abc","labels":{"app":"x\u00e9"},"pid":42},"node":"node-1"}"#;
    assert!(line.ends_with(&format!("{want}\n")), "{line}");
    // Two events of one namespace: the same container text twice.
    let mut out = Vec::new();
    encode_json(&[&r[..], &r[..]], &containers, None, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches(r#""container":{"id":"abc""#).count(), 2);
}

#[test]
fn exit_group_did_not_return() {
    let mut hdr = crate::abi::SyscallEvent {
        nr: 231,
        flags: abi::EVF_NO_EXIT,
        ..Default::default()
    };
    hdr.args[0] = 3;
    let r = crate::decode::testutil::record_with(hdr, &[]);
    let line = json_of(&r, &Containers::new(), None);
    assert!(
        line.contains(r#""error":null,"errno":null,"return":null,"returned":false,"#),
        "{line}"
    );
    let mut out = Vec::new();
    encode_proto(std::iter::once(&r[..]), &Containers::new(), "", 0, &mut out);
    // Event 1: syscall nr 231, no error string, no ret/errno, returned unset.
    assert!(!out.windows(2).any(|w| w == [0x52, 0x02]), "{out:?}");
}

#[test]
fn text_lines_are_to_text() {
    let r = record(257, &[(1, abi::CAP_STR, b"/x")]);
    let mut out = Vec::new();
    encode_text(&[&r[..], &r[..]], &mut out);
    let line = decoded(&r).to_text();
    assert_eq!(String::from_utf8(out).unwrap(), format!("{line}\n{line}\n"));
}

#[test]
fn proto_lengths_grow_past_127_bytes() {
    let long = vec![b'a'; 300];
    let r = record(257, &[(1, abi::CAP_STR, &long)]);
    let mut out = Vec::new();
    encode_proto(
        std::iter::once(&r[..]),
        &Containers::new(),
        "n",
        7,
        &mut out,
    );
    // EventBatch.events (field 1, wire 2) with a two-byte length.
    assert_eq!(out[0], 0x0a);
    let len = usize::from(out[1] & 0x7f) | (usize::from(out[2]) << 7);
    assert!(out[2] > 0 && out[1] & 0x80 != 0);
    let rest = &out[3 + len..];
    // Then node "n" (field 2) and the offset 7 (field 3).
    assert_eq!(rest, [0x12, 1, b'n', 0x18, 7]);
    // The path is in there as a string of 300 bytes (Arg.str, field 6).
    let needle = [0x32, 0xac, 0x02];
    assert!(out.windows(3).any(|w| w == needle));
}

#[test]
fn json_numbers() {
    let mut out = Vec::new();
    let mut s = JsonSink::new(&mut out);
    s.begin_list();
    for v in [0, 7, 10, 99, 100, 101, 12_345, u64::MAX] {
        s.uint(v);
    }
    for v in [-1, i64::MIN, i64::MAX] {
        s.int(v);
    }
    s.end_list();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "[0,7,10,99,100,101,12345,18446744073709551615,-1,-9223372036854775808,9223372036854775807]"
    );
}

#[test]
fn description_keys_need_no_escaping() {
    // The JSON sink writes `Sink::field` keys verbatim: argument names from
    // the syscall table must be plain printable ASCII without quotes.
    let table = crate::syscalls::SyscallTable::get();
    let names: Vec<&str> = table
        .iter()
        .flat_map(|d| d.args.iter().map(|a| a.name.as_str()))
        .collect();
    assert!(names.len() > 500);
    for n in names {
        assert!(
            !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
            "{n:?}"
        );
    }
}

mod packed_records {
    use super::super::packed::{pack, unpack};
    use proptest::prelude::*;

    /// A record of `len` bytes (at least 8) whose size field says so.
    fn sized(mut bytes: Vec<u8>, len: usize) -> Vec<u8> {
        bytes.resize(len.max(8), 0);
        let n = u32::try_from(bytes.len()).unwrap().to_ne_bytes();
        bytes[4..8].copy_from_slice(&n);
        bytes
    }

    fn round_trip(records: &[Vec<u8>]) -> usize {
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let mut blob = vec![0xAA]; // packing appends
        pack(&refs, &mut blob);
        let u = unpack(&blob[1..]).unwrap();
        assert_eq!(u.offsets.len(), records.len());
        for (i, r) in records.iter().enumerate() {
            assert_eq!(u.record(i), r.as_slice(), "record {i}");
            assert_eq!(u.offsets[i] % 8, 0);
        }
        blob.len() - 1
    }

    /// Records that mostly repeat the one before with a few words changed,
    /// as a stream of one call does; sizes change now and then.
    fn similar() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let base = (8usize..400, prop::collection::vec(any::<u8>(), 400));
        let edits = prop::collection::vec(
            (
                any::<bool>(),
                8usize..400,
                prop::collection::vec((0usize..400, any::<u8>()), 0..6),
            ),
            0..40,
        );
        (base, edits).prop_map(|((len, bytes), edits)| {
            let mut cur = sized(bytes[..len].to_vec(), len);
            let mut out = vec![cur.clone()];
            for (resize, len, pokes) in edits {
                let mut next = cur.clone();
                if resize {
                    next = sized(next, len);
                }
                for (at, v) in pokes {
                    let at = at % next.len();
                    if !(4..8).contains(&at) {
                        next[at] = v;
                    }
                }
                out.push(next.clone());
                cur = next;
            }
            out
        })
    }

    proptest! {
        #[test]
        fn any_records_round_trip(
            recs in prop::collection::vec(
                (8usize..300, prop::collection::vec(any::<u8>(), 0..300)), 0..20)
        ) {
            let recs: Vec<Vec<u8>> = recs.into_iter().map(|(len, b)| sized(b, len)).collect();
            round_trip(&recs);
        }

        #[test]
        fn similar_records_round_trip(recs in similar()) {
            round_trip(&recs);
        }

        #[test]
        fn same_size_records_round_trip(
            words in 1usize..70,
            base in prop::collection::vec(any::<u8>(), 560),
            pokes in prop::collection::vec(prop::collection::vec((0usize..560, any::<u8>()), 0..4), 1..30),
        ) {
            // Whole words, one size: pack's one-pass path (up to 65 words).
            let mut cur = sized(base[..8 * words].to_vec(), 8 * words);
            let mut recs = vec![cur.clone()];
            for p in pokes {
                for (at, v) in p {
                    let at = at % cur.len();
                    if !(4..8).contains(&at) {
                        cur[at] = v;
                    }
                }
                recs.push(cur.clone());
            }
            round_trip(&recs);
        }

        #[test]
        fn garbage_never_panics(blob in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(u) = unpack(&blob) {
                // Whatever decodes, packs back to something that decodes the same.
                let recs: Vec<Vec<u8>> =
                    (0..u.offsets.len()).map(|i| u.record(i).to_vec()).collect();
                round_trip(&recs);
            }
        }
    }

    #[test]
    fn a_repeated_call_costs_a_few_bytes() {
        // 160-byte records differing in two words (time and sequence number).
        let recs: Vec<Vec<u8>> = (0..100u64)
            .map(|i| {
                let mut r = sized(vec![7; 160], 160);
                r[72..80].copy_from_slice(&(1_000_000 + 280 * i).to_ne_bytes());
                r[88..96].copy_from_slice(&(i + 1).to_ne_bytes());
                r
            })
            .collect();
        let len = round_trip(&recs);
        assert!(len < 160 + 99 * 8, "{len} bytes for 100 records");
    }

    #[test]
    fn malformed_blobs_are_named() {
        assert_eq!(unpack(&[]).unwrap().offsets.len(), 0);
        let e = unpack(&[0x80]).unwrap_err();
        assert_eq!(e, "packed record 0 at byte 0: truncated");
        // Word 0 with size 4 (zigzag 4 << 33): below the 8 bytes of word 0.
        let e = unpack(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).unwrap_err();
        assert_eq!(e, "packed record 0 at byte 0: size 4 is below 8 bytes");
        let mut blob = Vec::new();
        pack(&[&sized(vec![1; 64], 64)], &mut blob);
        let e = unpack(&blob[..blob.len() - 1]).unwrap_err();
        assert!(e.starts_with("packed record 0 at byte 0: truncated"), "{e}");
    }
}
