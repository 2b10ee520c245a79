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

fn text_of(nr: u32, args: [u64; 6], ret: i64, flags: u16, caps: &[(u8, u8, &[u8])]) -> String {
    let mut h = crate::abi::SyscallEvent {
        nr,
        tgid: 7,
        ret,
        flags,
        args,
        enter_ns: 1,
        exit_ns: if flags & abi::EVF_NO_EXIT != 0 {
            0
        } else {
            2001
        },
        ..Default::default()
    };
    h.comm[..2].copy_from_slice(b"sh");
    decode(&super::testutil::record_with(h, caps))
        .unwrap()
        .to_text()
}

#[test]
fn calls_that_did_not_return_show_a_question_mark() {
    // read interrupted by a signal, restarted by the kernel.
    let t = text_of(0, [0, 0x1000, 10, 0, 0, 0], -512, 0, &[]);
    assert!(
        t.ends_with(") = ? ERESTARTSYS (To be restarted if SA_RESTART is set) <0.000002>"),
        "{t}"
    );
    // killed during the call: no errno, whatever the kernel returned.
    let t = text_of(230, [0, 0, 0x1000, 0, 0, 0], -4, abi::EVF_KILLED, &[]);
    assert!(t.ends_with(") = ? <0.000002>"), "{t}");
    let t = text_of(231, [0; 6], 0, abi::EVF_NO_EXIT, &[]);
    assert_eq!(t, "sh[7] exit_group(0) = ?");
    let r = super::testutil::record_with(
        crate::abi::SyscallEvent {
            nr: 0,
            ret: -514,
            ..Default::default()
        },
        &[],
    );
    let d = decode(&r).unwrap();
    assert!(!d.returned());
    assert_eq!((d.ret(), d.errno), (None, None));
}

#[test]
fn modes_umask_and_hidden_arguments_as_strace() {
    let chmod = text_of(
        90,
        [0, 0o100744, 0, 0, 0, 0],
        0,
        0,
        &[(0, abi::CAP_STR, b"f")],
    );
    assert!(chmod.contains("chmod(\"f\", 0100744) = 0"), "{chmod}");
    let mknod = text_of(
        133,
        [0, 0o10644, 0, 0, 0, 0],
        0,
        0,
        &[(0, abi::CAP_STR, b"p")],
    );
    assert!(mknod.contains("mknod(\"p\", S_IFIFO|0644) = 0"), "{mknod}");
    let mknod = text_of(
        133,
        [0, 0o20600, 0x103, 0, 0, 0],
        0,
        0,
        &[(0, abi::CAP_STR, b"c")],
    );
    assert!(
        mknod.contains("mknod(\"c\", S_IFCHR|0600, makedev(0x1, 0x3)) = 0"),
        "{mknod}"
    );
    let umask = text_of(95, [0o77, 0, 0, 0, 0, 0], 0o22, 0, &[]);
    assert!(umask.contains("umask(077) = 022"), "{umask}");
    let getfl = text_of(72, [3, 3, 0, 0, 0, 0], 0o100002, 0, &[]);
    assert!(getfl.contains("fcntl(3, F_GETFL) = 32770"), "{getfl}");
    let setfd = text_of(72, [3, 2, 1, 0, 0, 0], 0, 0, &[]);
    assert!(
        setfd.contains("fcntl(3, F_SETFD, FD_CLOEXEC) = 0"),
        "{setfd}"
    );
    let setfl = text_of(72, [3, 4, 0o4002, 0, 0, 0], 0, 0, &[]);
    assert!(
        setfl.contains("fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0"),
        "{setfl}"
    );
    let dupfd = text_of(72, [3, 1030, 10, 0, 0, 0], 10, 0, &[]);
    assert!(
        dupfd.contains("fcntl(3, F_DUPFD_CLOEXEC, 10) = 10"),
        "{dupfd}"
    );
    let mut fl = vec![0u8; 32];
    fl[0] = 1; // F_WRLCK
    fl[8] = 4; // l_start
    let setlk = text_of(
        72,
        [3, 6, 0x7000, 0, 0, 0],
        0,
        0,
        &[(2, abi::CAP_STRUCT, &fl)],
    );
    assert!(
        setlk.contains(
            "fcntl(3, F_SETLK, {l_type=F_WRLCK, l_whence=SEEK_SET, l_start=4, l_len=0}) = 0"
        ),
        "{setlk}"
    );
    let opath = text_of(
        257,
        [(-100i64).cast_unsigned(), 0, 0o10000000, 0, 0, 0],
        3,
        0,
        &[],
    );
    assert!(
        opath.contains("AT_FDCWD, NULL, O_RDONLY|O_PATH) = 3"),
        "{opath}"
    );
    let statx = text_of(332, [3, 0, 0x1000, 0xfff, 0, 0], 0, 0, &[]);
    assert!(
        statx.contains("statx(3, NULL, AT_STATX_SYNC_AS_STAT|AT_EMPTY_PATH, "),
        "{statx}"
    );
}

#[test]
fn stat_and_epoll_structs_as_strace() {
    let mut st = vec![0u8; 144];
    st[24..28].copy_from_slice(&0o100644u32.to_le_bytes());
    st[48..56].copy_from_slice(&1234i64.to_le_bytes());
    let t = text_of(
        5,
        [3, 0x1000, 0, 0, 0, 0],
        0,
        0,
        &[(1, abi::CAP_STRUCT, &st)],
    );
    assert!(
        t.contains("fstat(3, {st_mode=S_IFREG|0644, st_size=1234}) = 0"),
        "{t}"
    );
    st[24..28].copy_from_slice(&0o20620u32.to_le_bytes());
    st[40..48].copy_from_slice(&0x8801u64.to_le_bytes());
    let t = text_of(
        5,
        [3, 0x1000, 0, 0, 0, 0],
        0,
        0,
        &[(1, abi::CAP_STRUCT, &st)],
    );
    assert!(
        t.contains("{st_mode=S_IFCHR|0620, st_rdev=makedev(0x88, 0x1)}"),
        "{t}"
    );
    let mut ev = Vec::new();
    for fd in [5u64, 7] {
        ev.extend_from_slice(&1u32.to_le_bytes());
        ev.extend_from_slice(&fd.to_le_bytes());
    }
    let t = text_of(
        232,
        [4, 0x1000, 8, 0xffff_ffff, 0, 0],
        2,
        0,
        &[(1, abi::CAP_STRUCT, &ev)],
    );
    assert!(
        t.contains(
            "epoll_wait(4, [{events=EPOLLIN, data={u32=5, u64=5}}, \
             {events=EPOLLIN, data={u32=7, u64=7}}], 8, -1) = 2"
        ),
        "{t}"
    );
    let t = text_of(
        233,
        [4, 1, 5, 0x1000, 0, 0],
        0,
        0,
        &[(3, abi::CAP_STRUCT, &ev[..12])],
    );
    assert!(
        t.contains("epoll_ctl(4, EPOLL_CTL_ADD, 5, {events=EPOLLIN, data={u32=5, u64=5}}) = 0"),
        "{t}"
    );
    let t = text_of(
        79,
        [0x1000, 4096, 0, 0, 0, 0],
        5,
        0,
        &[(0, abi::CAP_STR, b"/tmp")],
    );
    assert!(t.contains("getcwd(\"/tmp\", 4096) = 5"), "{t}");
}
