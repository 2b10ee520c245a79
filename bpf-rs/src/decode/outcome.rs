//! Did a call return to the program, and with what? exit/exit_group never
//! return; a task with SIGKILL pending at syscall exit dies first; and the
//! kernel-internal restart codes (-512..=-516) are never what the program
//! sees (the call is restarted, turned into EINTR, or the task dies). For
//! those the program's result is unknown: strace prints `= ?`.

use super::errno::errno_of;
use crate::abi::{self, SyscallEvent};
use crate::syscalls::SyscallTable;

/// Kernel-internal restart codes and strace's text for them.
const RESTARTS: [(&str, &str); 5] = [
    ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    ("ERESTARTNOINTR", "To be restarted"),
    ("ERESTARTNOHAND", "To be restarted if no handler"),
    ("ENOIOCTLCMD", "No ioctl command"),
    ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
];
const ERESTARTSYS: i64 = 512;

/// The name and strace's description of a kernel-internal restart code
/// (`ret` is the raw return, -512..=-516).
#[must_use]
pub fn restart_name(ret: i64) -> Option<(&'static str, &'static str)> {
    let i = usize::try_from(ret.checked_neg()?.checked_sub(ERESTARTSYS)?).ok()?;
    RESTARTS.get(i).copied()
}

/// True unless the call never returned to the program (see the module doc).
#[must_use]
#[inline]
pub fn returned(hdr: &SyscallEvent) -> bool {
    hdr.flags & (abi::EVF_NO_EXIT | abi::EVF_KILLED) == 0
        && !(-ERESTARTSYS - 4..=-ERESTARTSYS).contains(&hdr.ret)
}

/// `(ret, errno)` as the program saw them: both `None` when the call did not
/// return; errno `Some(n)` when it returned -n.
#[must_use]
pub fn result_of(hdr: &SyscallEvent) -> (Option<i64>, Option<i64>) {
    if !returned(hdr) {
        return (None, None);
    }
    let kind = SyscallTable::get().by_nr(hdr.nr).map(|d| d.ret);
    (Some(hdr.ret), errno_of(hdr.ret, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(flags: u16, ret: i64) -> SyscallEvent {
        SyscallEvent {
            nr: 0,
            flags,
            ret,
            ..SyscallEvent::default()
        }
    }

    #[test]
    fn restarts_kills_and_exits_do_not_return() {
        assert_eq!(
            restart_name(-512),
            Some(("ERESTARTSYS", "To be restarted if SA_RESTART is set"))
        );
        assert_eq!(restart_name(-516).unwrap().0, "ERESTART_RESTARTBLOCK");
        assert_eq!(restart_name(-511), None);
        assert_eq!(restart_name(-517), None);
        assert_eq!(restart_name(i64::MIN), None);
        assert!(returned(&hdr(0, -2)));
        assert_eq!(result_of(&hdr(0, -2)), (Some(-2), Some(2)));
        assert_eq!(result_of(&hdr(0, 5)), (Some(5), None));
        for (flags, ret) in [
            (0, -512),
            (0, -514),
            (abi::EVF_KILLED, -4),
            (abi::EVF_NO_EXIT, 0),
        ] {
            assert!(!returned(&hdr(flags, ret)), "{flags} {ret}");
            assert_eq!(result_of(&hdr(flags, ret)), (None, None));
        }
    }
}
