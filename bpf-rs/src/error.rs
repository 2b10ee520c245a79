//! Errors of the kernel-facing layer; the bindings map each variant to one
//! Python exception (see `rust/src/lib.rs`).

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown syscall `{name}`{}", suggest(suggestions))]
    UnknownSyscall {
        name: String,
        suggestions: Vec<String>,
    },
    #[error(
        "permission denied while {what}: syshub needs root, or CAP_BPF and CAP_PERFMON \
         (and CAP_SYS_ADMIN to mount tracefs)"
    )]
    Permission { what: String },
    #[error(
        "tracefs is not mounted (looked at /sys/kernel/tracing and /sys/kernel/debug/tracing) \
         and mounting it failed: {reason}; run `mount -t tracefs tracefs /sys/kernel/tracing`"
    )]
    NoTracefs { reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Bpf(String),
    #[error("the probe is closed")]
    Closed,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(
            " (did you mean {}?)",
            s.iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl Error {
    /// Wraps an I/O error, turning EPERM/EACCES into [`Error::Permission`].
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        let context = context.into();
        match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Self::Permission { what: context },
            _ => Self::Io { context, source },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
