//! The strace-like text line of a decoded event.

use std::fmt::Write as _;

use super::args::Decoded;
use super::errno::errno_name;
use super::escape::escape_into;
use super::outcome::restart_name;
use super::value::Arg;
use crate::abi;
use crate::flags as f;
use crate::syscalls::{RetKind, SyscallTable};

/// fcntl commands strace prints without their third argument.
const FCNTL_NO_ARG: [&str; 7] = [
    "F_GETFD",
    "F_GETFL",
    "F_GETOWN",
    "F_GETSIG",
    "F_GETLEASE",
    "F_GETPIPE_SZ",
    "F_GET_SEALS",
];

/// The name of the argument strace leaves out of this call, if any:
/// open's mode without O_CREAT/O_TMPFILE, mknod's dev unless the node is a
/// device, fcntl's argument for commands that take none.
fn hidden_arg(name: &str, args: &[Arg]) -> Option<&'static str> {
    let raw = |n: &str| args.iter().find(|a| a.name == n).map(|a| a.raw);
    match name {
        "open" | "openat" => {
            let creates = raw("flags").is_some_and(|v| v & (f::O_CREAT | f::O_TMPFILE_BIT) != 0);
            (!creates).then_some("mode")
        }
        "mknod" | "mknodat" => {
            let kind = raw("mode").unwrap_or(0) & f::S_IFMT;
            let device = ["S_IFCHR", "S_IFBLK"]
                .iter()
                .any(|n| f::S_TYPES.iter().any(|(v, x)| x == n && *v == kind));
            (!device).then_some("dev")
        }
        "fcntl" => {
            let cmd = f::enum_name(raw("cmd").unwrap_or(0) & 0xffff_ffff, f::FCNTL);
            FCNTL_NO_ARG.contains(&cmd.as_str()).then_some("arg")
        }
        _ => None,
    }
}

impl Decoded {
    /// The strace-like line: `comm[pid] openat(AT_FDCWD, "/x", O_RDONLY) = 3 <0.000012>`.
    /// The command name and strings are escaped (see [`super::escape`]).
    /// A call that did not return to the program ends in `= ?` (with the
    /// restart code when the kernel restarts it), as strace prints it.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_text(&mut s);
        s
    }

    /// Appends [`Decoded::to_text`] to `s` (an encoder reuses one buffer:
    /// no allocation per event for a call without arguments).
    pub fn write_text(&self, s: &mut String) {
        let comm = &self.hdr.comm;
        let comm = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(comm.len())];
        escape_into(s, comm, false);
        s.push('[');
        s.push_str(itoa::Buffer::new().format(self.hdr.tgid));
        s.push_str("] ");
        s.push_str(&self.name);
        s.push('(');
        let hidden = hidden_arg(&self.name, &self.args);
        let shown = self.args.iter().filter(|a| Some(a.name) != hidden);
        for (i, a) in shown.enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&a.value.to_text());
        }
        s.push(')');
        if self.returned() {
            let kind = SyscallTable::get().by_nr(self.hdr.nr).map(|d| d.ret);
            match self.errno {
                Some(e) => {
                    let _ = write!(s, " = -1 {}", errno_name(e).unwrap_or("E?"));
                }
                None if matches!(kind, Some(RetKind::Ptr | RetKind::Hex)) => {
                    let _ = write!(s, " = {:#x}", self.hdr.ret);
                }
                None if self.name == "umask" => {
                    let _ = write!(s, " = {}", f::octal(self.hdr.ret.cast_unsigned()));
                }
                None => {
                    s.push_str(" = ");
                    s.push_str(itoa::Buffer::new().format(self.hdr.ret));
                }
            }
        } else {
            s.push_str(" = ?");
            let died = self.hdr.flags & (abi::EVF_NO_EXIT | abi::EVF_KILLED) != 0;
            if let Some((name, why)) = restart_name(self.hdr.ret).filter(|_| !died) {
                let _ = write!(s, " {name} ({why})");
            }
        }
        // intent: a duration only for calls timed from entry to exit
        if self.hdr.exit_ns != 0 && self.hdr.enter_ns != 0 {
            let dur = self.hdr.exit_ns.saturating_sub(self.hdr.enter_ns);
            let _ = write!(
                s,
                " <{}.{:06}>",
                dur / 1_000_000_000,
                (dur % 1_000_000_000) / 1000
            );
        }
    }
}
