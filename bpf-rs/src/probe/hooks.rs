//! Hooks: per-syscall tracepoints attached on demand (refcounted by syscall
//! number through the filter keys), the raw sys_enter/sys_exit hooks for the
//! rest, tracefs, and detaching without making the caller wait.
//!
//! A syscall's exit hook is always attached; its entry hook only when the
//! entry is needed ([`SyscallDef::needs_entry`], or a filter on it wants
//! durations). Without it a call is recorded at exit only, which costs one
//! tracepoint instead of two. Once attached, an entry hook stays until the
//! syscall is no longer traced (detaching it alone would cost the same RCU
//! waits as below, on the caller's path).
//!
//! Why detaching is bounded rather than parallel: closing a tracepoint perf
//! event runs `perf_trace_destroy`, which waits for an RCU (tasks-trace and
//! normal) grace period *while holding the kernel's global `event_mutex`*.
//! Detaches therefore run one after another whatever the number of threads
//! (36-140 ms each here: 383 syscalls, 766 events, took 24-28 s to close).
//! So at most `ProbeConfig::tracepoint_syscalls` (default
//! [`MAX_TP_SYSCALLS`]) syscalls use their own tracepoints: when
//! one more is traced, every traced syscall moves to the raw hooks (whose
//! links are released without a synchronous grace period) and the
//! tracepoint hooks, silent from then on, are parked for the reaper. Tracing
//! many syscalls makes every syscall pay the raw hooks (~+45 ns instead of
//! ~+16 ns), which is small next to tracing that many.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aya::programs::trace_point::TracePointLink;
use aya::programs::{RawTracePoint, TracePoint};

use super::{Probe, load_error, program};
use crate::abi;
use crate::error::{Error, Result};
use crate::names;
use crate::syscalls::SyscallDef;

/// Default of `ProbeConfig::tracepoint_syscalls` (parked ones included);
/// detaching each costs 2 x 36-140 ms of serialized RCU waits.
pub const MAX_TP_SYSCALLS: usize = 3;

/// How long unneeded hooks stay attached before the reaper drops them.
const PARK_GRACE: Duration = Duration::from_millis(500);

pub const TRACEFS_DIRS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// How a syscall number is hooked.
#[derive(Debug)]
pub(super) enum Hook {
    Tracepoint {
        enter: Option<TracePointLink>,
        exit: TracePointLink,
    },
    Raw {
        entry: bool,
    },
}

/// Tracepoint hooks no filter needs any more, still attached (inert: no
/// filter matches) for a grace period, so a syscall traced again soon takes
/// them back instead of attaching twice.
pub(super) struct Parked {
    enter: Option<TracePointLink>,
    exit: TracePointLink,
    since: Instant,
}

/// Finds tracefs, mounting it at /sys/kernel/tracing when it is missing.
///
/// # Errors
/// [`Error::NoTracefs`] when it is absent and cannot be mounted.
pub fn ensure_tracefs() -> Result<&'static str> {
    for dir in TRACEFS_DIRS {
        if Path::new(dir).join("events/syscalls").is_dir() {
            return Ok(dir);
        }
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings; mount(2) has no other preconditions.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
            return Err(Error::Permission {
                what: "mounting tracefs at /sys/kernel/tracing".into(),
            });
        }
        return Err(Error::NoTracefs {
            reason: e.to_string(),
        });
    }
    if Path::new("/sys/kernel/tracing/events/syscalls").is_dir() {
        Ok("/sys/kernel/tracing")
    } else {
        Err(Error::NoTracefs {
            reason: "mounted, but it has no events/syscalls (CONFIG_FTRACE_SYSCALLS off?)".into(),
        })
    }
}

/// Argument count of a syscall tracepoint, from its tracefs format file.
pub(super) fn tracepoint_nargs(tracefs: &str, event: &str) -> Option<u8> {
    let fmt = std::fs::read_to_string(format!("{tracefs}/events/syscalls/{event}/format")).ok()?;
    let n = fmt
        .lines()
        .filter(|l| l.trim_start().starts_with("field:"))
        .filter(|l| !l.contains("common_") && !l.contains("__syscall_nr"))
        .count();
    u8::try_from(n.min(abi::NARGS)).ok()
}

fn reaper_loop(parked: &Mutex<HashMap<u32, Parked>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        // One syscall's hooks per lock: the lock is what keeps a syscall
        // traced again from attaching while its old hooks are still being
        // detached (both would run, counting its calls twice), and holding it
        // for one detach only keeps add_filter waiting at most that long.
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut map) = parked.lock() else { return };
            let old = map
                .iter()
                .find(|(_, p)| p.since.elapsed() >= PARK_GRACE)
                .map(|(nr, _)| *nr);
            let Some(nr) = old else { break };
            drop(map.remove(&nr));
            drop(map);
        }
    }
}

impl Probe {
    fn tracepoint_event(&self, def: &SyscallDef) -> Option<String> {
        let tp = def.tp.as_ref()?;
        let dir = format!("{}/events/syscalls/sys_enter_{tp}", self.tracefs);
        Path::new(&dir).is_dir().then(|| tp.clone())
    }

    fn tp_prog(&mut self, name: &str) -> Result<&mut TracePoint> {
        program(&mut self.bpf, name)
    }

    pub(super) fn raw_prog(&mut self, name: &str) -> Result<&mut RawTracePoint> {
        program(&mut self.bpf, name)
    }

    /// Syscalls holding tracepoint hooks now, attached or parked.
    fn tracepoint_hooks(&self) -> usize {
        let live = self
            .hooks
            .values()
            .filter(|h| matches!(h, Hook::Tracepoint { .. }))
            .count();
        live + self.parked.lock().map_or(0, |m| m.len())
    }

    fn set_mode(&mut self, nr: u32, mode: u32) -> Result<()> {
        self.hook_modes
            .set(nr, mode, 0)
            .map_err(|e| Error::Bpf(format!("setting the hook mode of syscall {nr}: {e}")))
    }

    /// Hooks `nr`; with `entry` its entry hook too (else its calls are
    /// recorded at exit only).
    pub(super) fn attach(&mut self, def: &SyscallDef, entry: bool) -> Result<()> {
        if let Some(tp) = self.tracepoint_event(def) {
            let parked = self.parked.lock().ok().and_then(|mut m| m.remove(&def.nr));
            if let Some(p) = parked {
                let (enter, exit) = (p.enter, p.exit);
                // intent: the mode may have been changed meanwhile (a move to
                // the raw hooks and back): it says again what is attached
                self.set_mode(def.nr, if enter.is_some() { abi::HOOK_ENTRY } else { 0 })?;
                self.hooks.insert(def.nr, Hook::Tracepoint { enter, exit });
                return self.ensure_entry(def, entry);
            }
            if self.tracepoint_hooks() < self.tracepoint_syscalls {
                return self.attach_tracepoint(def.nr, &tp, entry);
            }
        }
        // No per-syscall tracepoint (or enough of them): the raw hooks,
        // attached while any syscall needs them.
        self.attach_raw()?;
        let mode = abi::HOOK_RAW | if entry { abi::HOOK_ENTRY } else { 0 };
        self.set_mode(def.nr, mode)?;
        self.hooks.insert(def.nr, Hook::Raw { entry });
        if self.tracepoint_event(def).is_some() {
            self.migrate_to_raw()?;
        }
        Ok(())
    }

    /// Makes sure a hooked syscall's entry hook runs when `entry` is asked
    /// (a filter wanting durations came); never removes one.
    pub(super) fn ensure_entry(&mut self, def: &SyscallDef, entry: bool) -> Result<()> {
        let nr = def.nr;
        match self.hooks.get(&nr) {
            Some(Hook::Raw { entry: false }) if entry => {
                self.set_mode(nr, abi::HOOK_RAW | abi::HOOK_ENTRY)?;
                self.hooks.insert(nr, Hook::Raw { entry: true });
            }
            Some(Hook::Tracepoint { enter: None, .. }) if entry => {
                let Some(tp) = def.tp.clone() else {
                    return Ok(());
                };
                let link = self.attach_enter(&tp)?;
                // intent: the exit program leaves calls to the entry hook only
                // once it is attached (in between, calls are recorded at exit)
                self.set_mode(nr, abi::HOOK_ENTRY)?;
                if let Some(Hook::Tracepoint { enter, .. }) = self.hooks.get_mut(&nr) {
                    *enter = Some(link);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Moves every syscall hooked through its own tracepoint to the raw
    /// hooks; the tracepoint programs skip raw-hooked syscalls, so a call
    /// that entered through one and leaves through the other is seen once.
    fn migrate_to_raw(&mut self) -> Result<()> {
        let nrs: Vec<(u32, bool)> = self
            .hooks
            .iter()
            .filter_map(|(&nr, h)| match h {
                Hook::Tracepoint { enter, .. } => Some((nr, enter.is_some())),
                Hook::Raw { .. } => None,
            })
            .collect();
        for (nr, entry) in nrs {
            let mode = abi::HOOK_RAW | if entry { abi::HOOK_ENTRY } else { 0 };
            self.set_mode(nr, mode)?;
            if let Some(Hook::Tracepoint { enter, exit }) =
                self.hooks.insert(nr, Hook::Raw { entry })
                && let Ok(mut m) = self.parked.lock()
            {
                let since = Instant::now();
                m.insert(nr, Parked { enter, exit, since });
            }
        }
        Ok(())
    }

    fn attach_raw(&mut self) -> Result<()> {
        if self.raw_links.is_none() {
            let exit = self
                .raw_prog(names::PROG_RAW_EXIT)?
                .attach("sys_exit")
                .map_err(|e| load_error(e, "attaching to raw sys_exit"))?;
            let enter = match self.raw_prog(names::PROG_RAW_ENTER)?.attach("sys_enter") {
                Ok(l) => l,
                Err(e) => {
                    let _ = self.raw_prog(names::PROG_RAW_EXIT)?.detach(exit);
                    return Err(load_error(e, "attaching to raw sys_enter"));
                }
            };
            self.raw_links = Some((enter, exit));
        }
        Ok(())
    }

    fn attach_enter(&mut self, tp: &str) -> Result<TracePointLink> {
        let prog = self.tp_prog(names::PROG_SYS_ENTER)?;
        let id = prog
            .attach("syscalls", &format!("sys_enter_{tp}"))
            .map_err(|e| load_error(e, &format!("attaching to sys_enter_{tp}")))?;
        prog.take_link(id)
            .map_err(|e| Error::Bpf(format!("owning link: {e}")))
    }

    fn attach_tracepoint(&mut self, nr: u32, tp: &str, entry: bool) -> Result<()> {
        // Exit first, so an entry seen is always followed by its exit; the
        // mode first of all, so the exit hook knows whether an entry hook runs.
        self.set_mode(nr, if entry { abi::HOOK_ENTRY } else { 0 })?;
        let prog = self.tp_prog(names::PROG_SYS_EXIT)?;
        let id = prog
            .attach("syscalls", &format!("sys_exit_{tp}"))
            .map_err(|e| load_error(e, &format!("attaching to sys_exit_{tp}")))?;
        let exit = prog
            .take_link(id)
            .map_err(|e| Error::Bpf(format!("owning link: {e}")))?;
        let enter = if entry {
            Some(self.attach_enter(tp)?) // on error `exit` is dropped: detached
        } else {
            None
        };
        self.hooks.insert(nr, Hook::Tracepoint { enter, exit });
        self.start_reaper();
        Ok(())
    }

    pub(super) fn detach(&mut self, nr: u32) -> Result<()> {
        match self.hooks.remove(&nr) {
            Some(Hook::Tracepoint { enter, exit }) => {
                // The filter is already gone, so the hooks emit nothing more;
                // they are parked and dropped later, off the caller's path.
                if let Ok(mut m) = self.parked.lock() {
                    let since = Instant::now();
                    m.insert(nr, Parked { enter, exit, since });
                }
            }
            Some(Hook::Raw { .. }) => {
                self.set_mode(nr, 0)?;
                if !self.hooks.values().any(|h| matches!(h, Hook::Raw { .. }))
                    && let Some((enter, exit)) = self.raw_links.take()
                {
                    self.raw_prog(names::PROG_RAW_ENTER)?
                        .detach(enter)
                        .map_err(|e| Error::Bpf(format!("detaching: {e}")))?;
                    self.raw_prog(names::PROG_RAW_EXIT)?
                        .detach(exit)
                        .map_err(|e| Error::Bpf(format!("detaching: {e}")))?;
                }
            }
            None => {}
        }
        Ok(())
    }

    fn start_reaper(&mut self) {
        if self.reaper.is_some() {
            return;
        }
        let (parked, stop) = (Arc::clone(&self.parked), Arc::clone(&self.reaper_stop));
        self.reaper = std::thread::Builder::new()
            .name("syshub-detach".into())
            .spawn(move || reaper_loop(&parked, &stop))
            .ok();
    }

    /// Detaches every hook (on drop): the reaper stops, then each tracepoint
    /// link is closed in turn (they serialize in the kernel anyway).
    pub(super) fn detach_all(&mut self) {
        self.reaper_stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.reaper.take() {
            let _ = h.join();
        }
        self.hooks.clear();
        if let Ok(mut map) = self.parked.lock() {
            map.clear();
        }
        // The raw links and scope hooks are owned by their programs and go
        // with `bpf`.
    }

    /// Syscall numbers with hooks attached now, and whether each is raw.
    #[must_use]
    pub fn hooked(&self) -> Vec<(u32, bool)> {
        let mut v: Vec<(u32, bool)> = self
            .hooks
            .iter()
            .map(|(&nr, h)| (nr, matches!(h, Hook::Raw { .. })))
            .collect();
        v.sort_unstable();
        v
    }

    /// Syscall numbers whose entry hook runs now (the rest are recorded at
    /// exit only).
    #[must_use]
    pub fn entry_hooked(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .hooks
            .iter()
            .filter(|(_, h)| {
                matches!(
                    h,
                    Hook::Raw { entry: true } | Hook::Tracepoint { enter: Some(_), .. }
                )
            })
            .map(|(&nr, _)| nr)
            .collect();
        v.sort_unstable();
        v
    }
}
