//! Per-CPU staging (bpf/stage.h): the sched_switch hook that hands a CPU's
//! staged records to the ring when it switches tasks, attached while any
//! filter exists, and the flusher that runs the same program on every CPU
//! (`BPF_PROG_TEST_RUN` with `BPF_F_TEST_RUN_ON_CPU`) when the reader is idle
//! or asked to sync, so no record waits in a buffer for long.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Probe, load_error};
use crate::error::{Error, Result};
use crate::names;

/// `BPF_PROG_TEST_RUN` (include/uapi/linux/bpf.h, enum bpf_cmd).
const BPF_PROG_TEST_RUN: libc::c_long = 10;
/// `BPF_F_TEST_RUN_ON_CPU`.
const TEST_RUN_ON_CPU: u32 = 1;
/// Runs of the flush program per CPU while it finds the buffer busy (a
/// program is writing it: a few hundred ns at most).
const BUSY_RETRIES: usize = 64;

/// The `test` member of `union bpf_attr`, as the kernel reads it.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// Runs a raw tracepoint program once on `cpu`; its return value.
fn run_on_cpu(prog: &OwnedFd, cpu: u32) -> std::io::Result<u32> {
    let mut attr = TestRunAttr {
        prog_fd: u32::try_from(prog.as_raw_fd()).unwrap_or(u32::MAX),
        flags: TEST_RUN_ON_CPU,
        cpu,
        ..TestRunAttr::default()
    };
    // SAFETY: `attr` is a valid, zero-padded bpf_attr prefix of the size given;
    // the kernel writes only `retval` (and nothing past the size).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(attr.retval)
}

/// CPUs online now, from `/sys/devices/system/cpu/online` ("0-3,5").
fn online_cpus() -> Vec<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, '-').map(|n| n.trim().parse::<u32>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => cpus.push(a),
            (Some(Ok(a)), Some(Ok(b))) if a <= b => cpus.extend(a..=b),
            _ => {}
        }
    }
    if cpus.is_empty() {
        cpus.push(0);
    }
    cpus
}

/// Hands every CPU's staged records to the ring; cheap to clone into the
/// reader thread.
pub struct StageFlusher {
    prog: OwnedFd,
    cpus: Vec<u32>,
    /// Some filter exists (else nothing can be staged and no CPU is bothered).
    active: Arc<AtomicBool>,
}

impl StageFlusher {
    /// Runs the flush program on every online CPU (each run is an IPI to that
    /// CPU and takes a few microseconds); CPUs gone offline are skipped.
    pub fn flush(&self) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        for &cpu in &self.cpus {
            for _ in 0..BUSY_RETRIES {
                match run_on_cpu(&self.prog, cpu) {
                    Ok(0) => std::hint::spin_loop(),
                    Ok(_) | Err(_) => break,
                }
            }
        }
    }
}

impl Probe {
    /// A flusher for the reader thread.
    ///
    /// # Errors
    /// When the program's fd cannot be duplicated.
    pub fn stage_flusher(&mut self) -> Result<StageFlusher> {
        let prog = self.raw_prog(names::PROG_STAGE_FLUSH)?;
        let fd = prog
            .fd()
            .map_err(|e| Error::Bpf(format!("stage flush program: {e}")))?
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("duplicating the stage flush program's fd", e))?;
        Ok(StageFlusher {
            prog: fd,
            cpus: online_cpus(),
            active: Arc::clone(&self.stage_active),
        })
    }

    /// Attaches the sched_switch hand-over with the first filter.
    pub(super) fn stage_hook_on(&mut self) -> Result<()> {
        if self.stage_link.is_none() {
            let link = self
                .raw_prog(names::PROG_STAGE_FLUSH)?
                .attach("sched_switch")
                .map_err(|e| load_error(e, "attaching to sched_switch"))?;
            self.stage_link = Some(link);
        }
        self.stage_active.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Detaches it after the last filter, once every CPU handed over.
    pub(super) fn stage_hook_off(&mut self) -> Result<()> {
        if let Ok(f) = self.stage_flusher() {
            f.flush();
        }
        self.stage_active.store(false, Ordering::Relaxed);
        if let Some(link) = self.stage_link.take() {
            self.raw_prog(names::PROG_STAGE_FLUSH)?
                .detach(link)
                .map_err(|e| Error::Bpf(format!("detaching the sched_switch hook: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::online_cpus;

    #[test]
    fn online_cpus_lists_at_least_cpu_0() {
        let cpus = online_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }
}
