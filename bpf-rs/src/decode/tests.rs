use super::testutil::record;
use super::*;
use crate::abi;
use crate::syscalls::RetKind;

#[test]
fn decodes_openat_with_path() {
    let r = record(257, &[(1, abi::CAP_STR, b"/etc/hostname")]);
    let d = decode(&r).unwrap();
    assert_eq!(d.name, "openat");
    assert_eq!(d.args[0].value.to_text(), "AT_FDCWD");
    assert_eq!(d.args[1].value.to_text(), "\"/etc/hostname\"");
    assert_eq!(d.args[2].value.to_text(), "O_RDONLY|O_CLOEXEC");
    assert!(
        d.to_text()
            .contains("openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY|O_CLOEXEC")
    );
}

#[test]
fn rejects_overrunning_capture() {
    let mut r = record(257, &[(1, abi::CAP_STR, b"/etc/hostname")]);
    // Claim a longer capture than the record holds.
    r[abi::EVENT_SIZE + 4] = 200;
    assert!(matches!(validate(&r), Err(DecodeError::Capture { .. })));
}

#[test]
fn rejects_bad_kind_and_size() {
    let mut r = record(39, &[]);
    r[0] = 9;
    assert_eq!(validate(&r), Err(DecodeError::Kind(9)));
    let r = record(39, &[]);
    assert!(matches!(validate(&r[..100]), Err(DecodeError::Short(100))));
}

#[test]
fn sockaddr_inet_port_is_host_order() {
    let sa = [2u8, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        SockAddr::parse(&sa),
        Some(SockAddr::Inet {
            addr: std::net::Ipv4Addr::LOCALHOST,
            port: 8080
        })
    );
}

#[test]
fn sockaddr_unix_abstract() {
    let mut sa = vec![1u8, 0, 0];
    sa.extend_from_slice(b"hidden");
    match SockAddr::parse(&sa).unwrap() {
        SockAddr::Unix {
            path,
            abstract_name,
        } => {
            assert_eq!(path, "@hidden");
            assert!(abstract_name);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errno_and_pointer_returns() {
    assert_eq!(errno_of(-2, Some(RetKind::Int)), Some(2));
    assert_eq!(errno_of(3, Some(RetKind::Fd)), None);
    // A high mmap address is not an error.
    assert_eq!(errno_of(0x7f00_0000_0000, Some(RetKind::Ptr)), None);
    assert_eq!(errno_name(2), Some("ENOENT"));
    assert_eq!(errno_number("EWOULDBLOCK"), Some(11));
}

/// Decode rate on this machine; run with
/// `cargo test --release -p syshub-bpf decode_throughput -- --ignored --nocapture`
/// (`SYSHUB_BENCH_N` sets the records per case, e.g. small under callgrind).
#[test]
#[ignore = "benchmark, not a test"]
fn decode_throughput() {
    let recs = [
        record(
            257,
            &[(1, abi::CAP_STR, b"/usr/lib/x86_64-linux-gnu/libc.so.6")],
        ),
        record(110, &[]),
        record(
            59,
            &[(0, abi::CAP_STR, b"/bin/sh"), (1, abi::CAP_STRV, b"sh")],
        ),
    ];
    for (name, rec) in ["openat+path", "getppid", "execve"].iter().zip(&recs) {
        let n: u32 = std::env::var("SYSHUB_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000_000);
        let t = std::time::Instant::now();
        let mut args = 0usize;
        for _ in 0..n {
            let d = decode(std::hint::black_box(rec)).unwrap();
            args += d.args.len();
        }
        let el = t.elapsed().as_secs_f64();
        println!(
            "decode {name}: {:.2} M records/s ({args} args)",
            f64::from(n) / el / 1e6
        );
        let t = std::time::Instant::now();
        for _ in 0..n {
            validate(std::hint::black_box(rec)).unwrap();
        }
        let el = t.elapsed().as_secs_f64();
        println!(
            "validate {name}: {:.2} M records/s",
            f64::from(n) / el / 1e6
        );
    }
}

#[test]
fn structs_decode() {
    let mut ts = Vec::new();
    ts.extend_from_slice(&1i64.to_le_bytes());
    ts.extend_from_slice(&500i64.to_le_bytes());
    assert_eq!(
        decode_struct(StructType::Timespec, &ts).unwrap().to_text(),
        "{tv_sec=1, tv_nsec=500}"
    );
    let mut rl = Vec::new();
    rl.extend_from_slice(&1024u64.to_le_bytes());
    rl.extend_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        decode_struct(StructType::Rlimit, &rl).unwrap().to_text(),
        "{rlim_cur=1024, rlim_max=RLIM64_INFINITY}"
    );
    assert!(decode_struct(StructType::Timespec, &ts[..8]).is_none());
    let at_flags = |syscall: &str| match ArgType::parse("at_flags", &[], syscall) {
        ArgType::Scalar(r) => render_scalar(r, 0x200, &[0; 6], 0).to_text(),
        ArgType::Capture(c) => panic!("{c:?}"),
    };
    assert_eq!(at_flags("faccessat2"), "AT_EACCESS");
    assert_eq!(at_flags("unlinkat"), "AT_REMOVEDIR");
    let ArgType::Scalar(optname) = ArgType::parse("sock_optname", &[], "setsockopt") else {
        panic!("sock_optname is a scalar");
    };
    assert_eq!(
        render_scalar(optname, 2, &[3, 1, 2, 0, 4, 0], 2).to_text(),
        "SO_REUSEADDR"
    );
}

#[test]
fn random_bytes_never_panic() {
    // Deterministic xorshift: random and truncated records.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let base = record(
        59,
        &[(0, abi::CAP_STR, b"/bin/sh"), (1, abi::CAP_STRV, b"sh")],
    );
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut r = base.clone();
        let n = (x % 8) as usize + 1;
        for k in 0..n {
            let pos = ((x >> (k * 8)) as usize) % r.len();
            r[pos] = (x >> (k * 5)) as u8;
        }
        let cut = (x as usize >> 3) % (r.len() + 1);
        let r = if i % 3 == 0 { &r[..cut] } else { &r[..] };
        if let Ok(d) = decode(r) {
            let _ = d.to_text();
        }
    }
}

#[test]
fn text_escapes_comm_and_strings() {
    let mut h = crate::abi::SyscallEvent {
        nr: 257,
        tgid: 42,
        ret: 3,
        ..Default::default()
    };
    h.comm[..8].copy_from_slice(b"\x1b[2Jevil");
    h.args[0] = (-100i64).cast_unsigned();
    let r = super::testutil::record_with(h, &[(1, abi::CAP_STR, b"/tmp/\x1b]0;x\x07\xff\"q\"")]);
    let text = decode(&r).unwrap().to_text();
    assert!(
        text.starts_with(r#"\33[2Jevil[42] openat(AT_FDCWD, "/tmp/\33]0;x\7\377\"q\"", O_RDONLY)"#),
        "{text}"
    );
    assert!(!text.chars().any(char::is_control), "{text}");
}
