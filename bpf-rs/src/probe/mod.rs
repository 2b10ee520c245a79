//! Loading and driving the kernel probe: filter keys (`filters`), hooks
//! attached on demand and detached off the caller's path (`hooks`), process
//! scopes (`scopes`), counters.

mod filters;
mod hooks;
mod scopes;
mod share;
mod stage;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use share::KeyRead;

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::raw_trace_point::RawTracePointLinkId;
use aya::programs::{RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};

pub use filters::FilterSpec;
use hooks::{Hook, Parked, tracepoint_nargs};
pub use hooks::{MAX_TP_SYSCALLS, TRACEFS_DIRS, ensure_tracefs};
pub use share::{FAIR_SHARE_PCT, ReadFeedback, check_pct, share_from};
pub use stage::StageFlusher;

use crate::abi::{self, FilterCfg, FilterKey, KeyCounters};
use crate::error::{Error, Result};
use crate::names;
use crate::syscalls::SyscallTable;

/// Load-time settings.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Pending bytes past which the probe wakes the reader (default: a
    /// quarter of the ring, at most 256 KiB).
    pub wakeup_bytes: Option<u64>,
    /// Host pid whose syscalls are never traced (default: this process).
    pub self_tgid: Option<u32>,
    /// Syscalls hooked through their own tracepoints at most (see `hooks`):
    /// more are all moved to the raw hooks. Low for a short-lived tracer
    /// (leaving is fast), high for a long-lived one (other syscalls stay cheap).
    pub tracepoint_syscalls: usize,
    /// Percent of the ring past which each key is held to its fair share
    /// (see `share`); 100 turns the fair share off.
    pub fair_share_pct: u8,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            ring_bytes: 16 << 20,
            wakeup_bytes: None,
            self_tgid: None,
            tracepoint_syscalls: MAX_TP_SYSCALLS,
            fair_share_pct: FAIR_SHARE_PCT,
        }
    }
}

/// Kernel-wide counters (sums over CPUs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalCounters {
    pub matched: u64,
    pub sampled_out: u64,
    pub dropped: u64,
    pub emitted: u64,
    pub orphaned: u64,
    pub nomem: u64,
    pub nokey: u64,
    /// Forked children not put in their parent's scope: scope map full.
    pub scope_full: u64,
    /// Records dropped because their key was over its fair share of the
    /// ring (also in `dropped`).
    pub over_share: u64,
}

/// Type information of the running kernel, needed for CO-RE relocations.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The fair share's map and globals (see `share`).
const MAP_KEY_READ: &str = "key_read";
const GLOBAL_RING_SIZE: &str = "ring_size";
const GLOBAL_STAGE_LIMIT: &str = "stage_limit";
/// Bytes of a CPU's staging buffer (bpf/stage.h `STAGE_BYTES`).
const STAGE_BYTES: u32 = 8192;
/// One bare record (`syshub_event`).
const STAGE_MIN: u32 = 160;
const GLOBAL_SHARE_FROM: &str = "share_from";

fn load_error(e: impl std::fmt::Display + std::fmt::Debug, what: &str) -> Error {
    let text = format!("{e:?}");
    if text.contains("PermissionDenied") || text.contains("os error 1)") || text.contains("EPERM") {
        return Error::Permission { what: what.into() };
    }
    Error::Bpf(format!("{what}: {e}"))
}

/// The loaded probe (without its ring buffer, which the reader owns).
pub struct Probe {
    bpf: Ebpf,
    filters: BpfHashMap<MapData, FilterKey, FilterCfg>,
    /// Per-key counters, at the slot each live key's filter names.
    counters: Array<MapData, KeyCounters>,
    slots: filters::Slots,
    /// Records the reader took out of the ring, per live key (see `share`).
    key_read: KeyRead,
    fair_share: bool,
    /// `abi::HOOK_*` bits per syscall number, read by the programs.
    hook_modes: Array<MapData, u32>,
    /// Bumped after every filter or scope change (the tasks' match caches).
    match_gen: Array<MapData, u64>,
    match_gen_value: u64,
    globals: PerCpuArray<MapData, u64>,
    hooks: HashMap<u32, Hook>,
    raw_links: Option<(RawTracePointLinkId, RawTracePointLinkId)>,
    keys: BTreeMap<FilterKey, FilterSpec>,
    /// Counters of keys' ended lifetimes (their kernel entries are deleted).
    retired: HashMap<FilterKey, crate::accounting::KeyHistory>,
    tracefs: &'static str,
    table: &'static SyscallTable,
    /// Tracepoint hooks of syscalls no filter needs any more, dropped by
    /// the reaper thread after a grace period (see `hooks`).
    parked: Arc<Mutex<HashMap<u32, Parked>>>,
    reaper_stop: Arc<AtomicBool>,
    reaper: Option<std::thread::JoinHandle<()>>,
    self_tgid: u32,
    tracepoint_syscalls: usize,
    /// Live process scopes: id -> root pid.
    scopes: BTreeMap<u16, u32>,
    /// The scope id handed out last (ids go round, 1..=65535).
    last_scope: u16,
    scope_count: Array<MapData, u32>,
    scope_tasks: BpfHashMap<MapData, u32, u32>,
    /// The fork and exit hooks, attached while a scope exists.
    scope_links: Option<(RawTracePointLinkId, RawTracePointLinkId)>,
    /// The sched_switch hand-over of staged records, attached while any
    /// filter exists (see `stage`).
    stage_link: Option<RawTracePointLinkId>,
    stage_active: Arc<AtomicBool>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.detach_all();
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("keys", &self.keys)
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

/// A program of the probe, as its concrete type.
fn program<'a, T>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    bpf.program_mut(name)
        .ok_or_else(|| Error::Bpf(format!("program `{name}` missing")))?
        .try_into()
        .map_err(|e| Error::Bpf(format!("program `{name}`: {e}")))
}

fn take<T>(bpf: &mut Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<aya::maps::Map>,
    <T as TryFrom<aya::maps::Map>>::Error: std::fmt::Display,
{
    let map = bpf
        .take_map(name)
        .ok_or_else(|| Error::Bpf(format!("map `{name}` missing from the probe object")))?;
    T::try_from(map).map_err(|e| Error::Bpf(format!("map `{name}`: {e}")))
}

impl Probe {
    /// Loads the embedded probe. Returns the probe and its ring buffer.
    ///
    /// # Errors
    /// [`Error::Permission`] without root / CAP_BPF + CAP_PERFMON,
    /// [`Error::NoTracefs`], or [`Error::Bpf`] with the kernel's reason.
    pub fn open(cfg: &ProbeConfig) -> Result<(Self, RingBuf<MapData>)> {
        Self::open_object(cfg, crate::PROBE_OBJECT)
    }

    /// Like [`Probe::open`] with an explicit object file's bytes.
    ///
    /// # Errors
    /// As [`Probe::open`].
    pub fn open_object(cfg: &ProbeConfig, object: &[u8]) -> Result<(Self, RingBuf<MapData>)> {
        let page = 4096u32;
        if cfg.ring_bytes < page || !cfg.ring_bytes.is_power_of_two() {
            return Err(Error::InvalidArgument(format!(
                "ring size must be a power of two of at least {page} bytes, got {}",
                cfg.ring_bytes
            )));
        }
        let tracefs = ensure_tracefs()?;
        if !std::path::Path::new(KERNEL_BTF).exists() {
            return Err(Error::Bpf(format!(
                "kernel BTF is missing ({KERNEL_BTF} does not exist): syshub needs a kernel \
                 built with CONFIG_DEBUG_INFO_BTF=y and /sys mounted"
            )));
        }
        let table = SyscallTable::get();
        let self_tgid = cfg.self_tgid.unwrap_or_else(std::process::id);
        let wakeup = cfg
            .wakeup_bytes
            .unwrap_or_else(|| (u64::from(cfg.ring_bytes) / 4).min(256 << 10));
        let fair_share_pct = share::check_pct(cfg.fair_share_pct)?;
        let ring_size = u64::from(cfg.ring_bytes);
        let share_from = share::share_from(cfg.ring_bytes, fair_share_pct);
        // A sixteenth of the ring at most, one record at least: a small ring
        // still takes whole buffers.
        let stage_limit: u32 = (cfg.ring_bytes / 16).clamp(STAGE_MIN, STAGE_BYTES);
        let nr_exit = table.by_name("exit").map_or(60, |d| d.nr);
        let nr_exit_group = table.by_name("exit_group").map_or(231, |d| d.nr);
        let mut bpf = EbpfLoader::new()
            // Task storage is only used by the probe itself, never from user space.
            .allow_unsupported_maps()
            .override_global(names::GLOBAL_SELF_TGID, &self_tgid, true)
            .override_global(names::GLOBAL_WAKEUP_BYTES, &wakeup, true)
            .override_global(GLOBAL_RING_SIZE, &ring_size, true)
            .override_global(GLOBAL_SHARE_FROM, &share_from, true)
            .override_global(names::GLOBAL_NR_EXIT, &nr_exit, true)
            .override_global(names::GLOBAL_NR_EXIT_GROUP, &nr_exit_group, true)
            .override_global(GLOBAL_STAGE_LIMIT, &stage_limit, true)
            .map_max_entries(names::MAP_EVENTS, cfg.ring_bytes)
            .load(object)
            .map_err(|e| load_error(e, "loading the eBPF probe"))?;
        for name in [names::PROG_SYS_ENTER, names::PROG_SYS_EXIT] {
            program::<TracePoint>(&mut bpf, name)?
                .load()
                .map_err(|e| load_error(e, &format!("verifying program `{name}`")))?;
        }
        for name in [
            names::PROG_RAW_ENTER,
            names::PROG_RAW_EXIT,
            names::PROG_SCOPE_FORK,
            names::PROG_SCOPE_EXIT,
            names::PROG_STAGE_FLUSH,
        ] {
            program::<RawTracePoint>(&mut bpf, name)?
                .load()
                .map_err(|e| load_error(e, &format!("verifying program `{name}`")))?;
        }
        let mut specs: Array<MapData, abi::CaptureSpec> = take(&mut bpf, names::MAP_CAPTURE_SPECS)?;
        for def in table.iter() {
            let mut spec = def.capture_spec();
            if let Some(n) = def
                .tp
                .as_ref()
                .and_then(|tp| tracepoint_nargs(tracefs, &format!("sys_enter_{tp}")))
            {
                spec.nargs = n;
            }
            specs
                .set(def.nr, spec, 0)
                .map_err(|e| Error::Bpf(format!("setting capture spec of `{}`: {e}", def.name)))?;
        }
        let ring: RingBuf<MapData> = take(&mut bpf, names::MAP_EVENTS)?;
        let scope_count = take(&mut bpf, names::MAP_SCOPE_COUNT)?;
        let scope_tasks = take(&mut bpf, names::MAP_SCOPE_TASKS)?;
        let probe = Self {
            filters: take(&mut bpf, names::MAP_FILTERS)?,
            counters: take(&mut bpf, names::MAP_COUNTERS)?,
            slots: filters::Slots::default(),
            key_read: Arc::new(Mutex::new(take(&mut bpf, MAP_KEY_READ)?)),
            fair_share: fair_share_pct < 100,
            hook_modes: take(&mut bpf, names::MAP_HOOK_MODES)?,
            match_gen: take(&mut bpf, names::MAP_MATCH_GEN)?,
            match_gen_value: 0,
            globals: take(&mut bpf, names::MAP_GLOBAL_COUNTERS)?,
            bpf,
            hooks: HashMap::new(),
            raw_links: None,
            keys: BTreeMap::new(),
            retired: HashMap::new(),
            tracefs,
            table,
            parked: Arc::new(Mutex::new(HashMap::new())),
            reaper_stop: Arc::new(AtomicBool::new(false)),
            reaper: None,
            self_tgid,
            tracepoint_syscalls: cfg.tracepoint_syscalls,
            scopes: BTreeMap::new(),
            last_scope: 0,
            scope_count,
            scope_tasks,
            scope_links: None,
            stage_link: None,
            stage_active: Arc::new(AtomicBool::new(false)),
        };
        Ok((probe, ring))
    }

    /// Tells the programs that filters or scopes changed: every task's
    /// cached match is stale from now on.
    fn bump_match_gen(&mut self) -> Result<()> {
        self.match_gen_value += 1;
        self.match_gen
            .set(0, self.match_gen_value, 0)
            .map_err(|e| Error::Bpf(format!("updating the match generation: {e}")))
    }

    #[must_use]
    pub fn table(&self) -> &'static SyscallTable {
        self.table
    }

    /// Kernel-wide counters summed over CPUs.
    ///
    /// # Errors
    /// A kernel refusal while reading.
    pub fn global_counters(&self) -> Result<GlobalCounters> {
        let read = |i: u32| -> Result<u64> {
            let v = self
                .globals
                .get(&i, 0)
                .map_err(|e| Error::Bpf(format!("reading global counter {i}: {e}")))?;
            Ok(v.iter().sum())
        };
        Ok(GlobalCounters {
            matched: read(abi::GC_MATCHED)?,
            sampled_out: read(abi::GC_SAMPLED_OUT)?,
            dropped: read(abi::GC_DROPPED)?,
            emitted: read(abi::GC_EMITTED)?,
            orphaned: read(abi::GC_ORPHANED)?,
            nomem: read(abi::GC_NOMEM)?,
            nokey: read(abi::GC_NOKEY)?,
            scope_full: read(abi::GC_SCOPE_FULL)?,
            over_share: read(abi::GC_OVER_SHARE)?,
        })
    }
}
