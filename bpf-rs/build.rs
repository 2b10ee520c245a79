//! Compiles the C eBPF probe with clang into OUT_DIR; the library embeds the
//! object, so wheels need no clang at run time.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCES: &[&str] = &[
    "bpf/syshub.bpf.c",
    "bpf/syshub_abi.h",
    "bpf/kernel.h",
    "bpf/state.h",
    "bpf/capture.h",
    "bpf/scope.h",
    "bpf/stage.h",
    "bpf/metrics.bpf.c",
    "bpf/metrics_abi.h",
];

/// Each C program and the object it becomes in OUT_DIR.
const OBJECTS: &[(&str, &str)] = &[
    ("bpf/syshub.bpf.c", "syshub.bpf.o"),
    ("bpf/metrics.bpf.c", "metrics.bpf.o"),
];

fn main() {
    for src in SOURCES {
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=data/syscalls_x86_64.tsv");
    println!("cargo:rerun-if-changed=data/errno.tsv");
    println!("cargo:rerun-if-env-changed=SYSHUB_CLANG");
    println!("cargo:rerun-if-env-changed=SYSHUB_DATA_DIR");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    // The data tables are copied next to the object so the library embeds
    // them; SYSHUB_DATA_DIR points elsewhere for experiments.
    let data = env::var("SYSHUB_DATA_DIR").unwrap_or_else(|_| "data".into());
    for f in ["syscalls_x86_64.tsv", "errno.tsv"] {
        let src = PathBuf::from(&data).join(f);
        std::fs::copy(&src, out.join(f))
            .unwrap_or_else(|e| panic!("copying data file {}: {e}", src.display()));
    }
    let candidates: Vec<String> = match env::var("SYSHUB_CLANG") {
        Ok(c) => vec![c],
        Err(_) => vec!["clang-19".into(), "clang".into()],
    };
    let mut tried = Vec::new();
    for clang in &candidates {
        match compile(clang, &out) {
            Ok(()) => return,
            Err(e) => tried.push(e),
        }
    }
    panic!(
        "no clang to build the eBPF probe (tried {}); install clang-19 and libbpf-dev \
         (apt-get install clang-19 libbpf-dev) or set SYSHUB_CLANG",
        tried.join(", ")
    );
}

/// Compiles every object with `clang`; `Err` when `clang` cannot be run
/// (another candidate is tried), a panic when it fails on a source.
fn compile(clang: &str, out: &std::path::Path) -> Result<(), String> {
    for (src, obj) in OBJECTS {
        let status = Command::new(clang)
            .args([
                "-target",
                "bpf",
                "-O2",
                "-g",
                "-Wall",
                "-Werror",
                "-I/usr/include/x86_64-linux-gnu",
                "-c",
                *src,
                "-o",
            ])
            .arg(out.join(obj))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("`{clang}` failed to compile {src} ({s})"),
            Err(e) => return Err(format!("`{clang}`: {e}")),
        }
    }
    Ok(())
}
