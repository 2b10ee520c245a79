//! The strace-like text line of a decoded event.

use std::fmt::Write as _;

use super::args::Decoded;
use super::errno::errno_name;
use super::escape::escape;
use crate::abi;
use crate::syscalls::{RetKind, SyscallTable};

impl Decoded {
    /// The strace-like line: `comm[pid] openat(AT_FDCWD, "/x", O_RDONLY) = 3 <0.000012>`.
    /// The command name and strings are escaped (see [`super::escape`]).
    #[must_use]
    pub fn to_text(&self) -> String {
        let comm = &self.hdr.comm;
        let comm = &comm[..comm.iter().position(|&b| b == 0).unwrap_or(comm.len())];
        let mut s = escape(comm);
        let _ = write!(s, "[{}] {}(", self.hdr.tgid, self.name);
        // open/openat only use `mode` with O_CREAT or O_TMPFILE; strace omits it otherwise.
        let creates = self
            .args
            .iter()
            .find(|a| a.name == "flags")
            .is_some_and(|a| a.raw & (0o100 | 0o20000000) != 0);
        let skip_mode = matches!(&*self.name, "open" | "openat") && !creates;
        let shown = self
            .args
            .iter()
            .filter(|a| !(skip_mode && a.name == "mode"));
        for (i, a) in shown.enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&a.value.to_text());
        }
        s.push(')');
        if self.hdr.flags & abi::EVF_NO_EXIT != 0 {
            s.push_str(" = ?");
            return s;
        }
        let kind = SyscallTable::get().by_nr(self.hdr.nr).map(|d| d.ret);
        match self.errno {
            Some(e) => {
                let _ = write!(s, " = -1 {}", errno_name(e).unwrap_or("E?"));
            }
            None if matches!(kind, Some(RetKind::Ptr | RetKind::Hex)) => {
                let _ = write!(s, " = {:#x}", self.hdr.ret);
            }
            None => {
                let _ = write!(s, " = {}", self.hdr.ret);
            }
        }
        let dur = self.hdr.exit_ns.saturating_sub(self.hdr.enter_ns);
        let _ = write!(
            s,
            " <{}.{:06}>",
            dur / 1_000_000_000,
            (dur % 1_000_000_000) / 1000
        );
        s
    }
}
