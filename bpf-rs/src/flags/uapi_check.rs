//! Every constant the decoder names, checked against the system headers:
//! `tests/progs/uapi_constants.c` (the kernel's UAPI headers) and
//! `tests/progs/libc_constants.c` (what only glibc defines) are compiled with
//! gcc and print `NAME VALUE`; each (value, name) of every table in
//! [`super::tables`] and every errno name of `data/errno.tsv` must match.
//! A name the programs do not print fails the check: a new constant needs
//! its line in one of the C programs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::tables;

/// Names newer than the installed headers (linux-libc-dev 6.1), with their
/// value in Linux 6.18's include/uapi. Checked like the others as soon as
/// the headers define them (the programs print `?` until then).
const NEWER_THAN_HEADERS: &[(&str, u64)] = &[
    ("MFD_NOEXEC_SEAL", 0x8),
    ("MFD_EXEC", 0x10),
    ("STATX_MNT_ID_UNIQUE", 0x4000),
    ("STATX_SUBVOL", 0x8000),
    ("STATX_WRITE_ATOMIC", 0x1_0000),
    ("BPF_TOKEN_CREATE", 36),
];

/// Kernel-internal errnos (include/linux/errno.h, not UAPI): a syscall
/// exit tracepoint can see them, user space headers do not define them.
const KERNEL_ONLY_ERRNOS: &[(&str, u64)] = &[
    ("ERESTARTSYS", 512),
    ("ERESTARTNOINTR", 513),
    ("ERESTARTNOHAND", 514),
    ("ENOIOCTLCMD", 515),
    ("ERESTART_RESTARTBLOCK", 516),
    ("EPROBE_DEFER", 517),
    ("EOPENSTALE", 518),
    ("ENOPARAM", 519),
    ("EBADHANDLE", 521),
    ("ENOTSYNC", 522),
    ("EBADCOOKIE", 523),
    ("ENOTSUPP", 524),
    ("ETOOSMALL", 525),
    ("ESERVERFAULT", 526),
    ("EBADTYPE", 527),
    ("EJUKEBOX", 528),
    ("EIOCBQUEUED", 529),
    ("ERECALLCONFLICT", 530),
    ("ENOGRACE", 531),
];

fn progs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/progs")
}

/// Compiles and runs one program; its `NAME VALUE` lines (`None`: `?`).
fn run_prog(name: &str) -> Vec<(String, Option<i64>)> {
    let out_dir = std::env::temp_dir().join(format!("syshub-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(name);
    let src = progs_dir().join(format!("{name}.c"));
    let cc = Command::new("gcc")
        .args(["-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("gcc runs (the header check needs a C compiler)");
    assert!(
        cc.status.success(),
        "gcc {}: {}",
        src.display(),
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let _ = std::fs::remove_dir_all(&out_dir);
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_owned(), v.parse().ok())
        })
        .collect()
}

/// Every name the decoder uses with its value: the flag tables and errno.tsv
/// (names and aliases).
fn rust_names() -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for (table, entries) in tables() {
        for &(v, n) in *entries {
            out.push(((*table).to_owned(), n.to_owned(), v));
        }
    }
    for (n, name, aliases) in crate::decode::errno_entries() {
        let v = n.cast_unsigned();
        out.push(("errno.tsv".into(), name.to_owned(), v));
        for a in aliases {
            out.push(("errno.tsv".into(), a.to_owned(), v));
        }
    }
    out
}

/// The header's value and the table's agree: equal, or the table holds the
/// low 32 bits of a negative int (RUSAGE_CHILDREN).
fn agrees(header: i64, table: u64) -> bool {
    header.cast_unsigned() == table || (header < 0 && header.cast_unsigned() & 0xffff_ffff == table)
}

#[test]
fn every_constant_matches_the_headers() {
    let mut header: HashMap<String, Option<i64>> = HashMap::new();
    for prog in ["uapi_constants", "libc_constants"] {
        for (n, v) in run_prog(prog) {
            if let Some(old) = header.insert(n.clone(), v) {
                assert_eq!(old, v, "{n}: the two programs disagree");
            }
        }
    }
    let newer: HashMap<&str, u64> = NEWER_THAN_HEADERS.iter().copied().collect();
    let internal: HashMap<&str, u64> = KERNEL_ONLY_ERRNOS.iter().copied().collect();
    let mut bad = Vec::new();
    let mut checked = 0;
    for (table, name, v) in rust_names() {
        let ok = match header.get(name.as_str()) {
            Some(Some(h)) => {
                checked += 1;
                agrees(*h, v)
            }
            Some(None) => newer.get(name.as_str()) == Some(&v),
            None => internal.get(name.as_str()) == Some(&v),
        };
        if !ok {
            let h = header.get(name.as_str());
            bad.push(format!("{table}: {name} = {v:#x}, headers: {h:?}"));
        }
    }
    assert!(bad.is_empty(), "constants that differ:\n{}", bad.join("\n"));
    assert!(checked > 600, "only {checked} constants compared");
}

#[test]
fn tables_lists_every_table() {
    let sources = [
        include_str!("fdflags.rs"),
        include_str!("fs.rs"),
        include_str!("mem.rs"),
        include_str!("names.rs"),
        include_str!("net.rs"),
        include_str!("process.rs"),
    ];
    let listed: Vec<&str> = tables().iter().map(|(n, _)| *n).collect();
    for src in sources {
        for line in src.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let Some((name, ty)) = rest.split_once(':') else {
                continue;
            };
            if ty.trim_start().starts_with("&[(u64, &str)]") {
                assert!(listed.contains(&name), "{name} is missing from tables()");
            }
        }
    }
}
