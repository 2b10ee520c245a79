//! Loading and driving the kernel probe: filter keys, per-syscall hooks
//! attached on demand (refcounted by syscall number), counters.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::raw_trace_point::RawTracePointLinkId;
use aya::programs::trace_point::TracePointLink;
use aya::programs::{RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};

use crate::abi::{self, FilterCfg, FilterKey, KeyCounters};
use crate::error::{Error, Result};
use crate::names;
use crate::syscalls::{SyscallDef, SyscallTable};

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
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            ring_bytes: 16 << 20,
            wakeup_bytes: None,
            self_tgid: None,
        }
    }
}

/// Capture settings of one filter key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    pub sample_rate: u32,
    pub str_max: u16,
    pub argv_max: u16,
    pub buf_max: u32,
}

impl Default for FilterSpec {
    fn default() -> Self {
        Self {
            sample_rate: 1,
            str_max: abi::STR_DEFAULT,
            argv_max: abi::ARGV_DEFAULT,
            buf_max: 64,
        }
    }
}

impl FilterSpec {
    fn to_cfg(self) -> Result<FilterCfg> {
        if self.str_max == 0 || u32::from(self.str_max) > abi::CAP_MAX {
            return Err(Error::InvalidArgument(format!(
                "string capture size must be 1..={}, got {}",
                abi::CAP_MAX,
                self.str_max
            )));
        }
        if self.argv_max > abi::ARGV_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "argv capture count must be 0..={}, got {}",
                abi::ARGV_LIMIT,
                self.argv_max
            )));
        }
        if self.buf_max > abi::CAP_MAX {
            return Err(Error::InvalidArgument(format!(
                "buffer capture size must be 0..={}, got {}",
                abi::CAP_MAX,
                self.buf_max
            )));
        }
        Ok(FilterCfg {
            sample_rate: self.sample_rate.max(1),
            str_max: self.str_max,
            argv_max: self.argv_max,
            buf_max: self.buf_max,
            _pad0: 0,
        })
    }
}

/// How a syscall number is hooked.
#[derive(Debug)]
enum Hook {
    Tracepoint {
        enter: TracePointLink,
        exit: TracePointLink,
    },
    Raw,
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
}

/// `BPF_NOEXIST` map update flag (include/uapi/linux/bpf.h).
const BPF_NOEXIST: u64 = 1;

pub const TRACEFS_DIRS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

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
fn tracepoint_nargs(tracefs: &str, event: &str) -> Option<u8> {
    let fmt = std::fs::read_to_string(format!("{tracefs}/events/syscalls/{event}/format")).ok()?;
    let n = fmt
        .lines()
        .filter(|l| l.trim_start().starts_with("field:"))
        .filter(|l| !l.contains("common_") && !l.contains("__syscall_nr"))
        .count();
    u8::try_from(n.min(abi::NARGS)).ok()
}

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
    counters: BpfHashMap<MapData, FilterKey, KeyCounters>,
    raw_on: Array<MapData, u32>,
    globals: PerCpuArray<MapData, u64>,
    hooks: HashMap<u32, Hook>,
    raw_links: Option<(RawTracePointLinkId, RawTracePointLinkId)>,
    keys: BTreeMap<FilterKey, FilterSpec>,
    /// Counters of removed keys (their kernel entries are deleted).
    retired: HashMap<FilterKey, KeyCounters>,
    tracefs: &'static str,
    table: &'static SyscallTable,
    /// Hooks of syscalls no filter needs any more, still attached (inert:
    /// no filter matches) for a grace period. Closing a perf event waits for
    /// an RCU grace period in the kernel (tens of ms), so a reaper thread
    /// drops expired ones, many at once; a syscall traced again within the
    /// grace period takes its hooks back instead of attaching twice.
    parked: Arc<Mutex<HashMap<u32, Parked>>>,
    reaper_stop: Arc<AtomicBool>,
    reaper: Option<std::thread::JoinHandle<()>>,
}

struct Parked {
    enter: TracePointLink,
    exit: TracePointLink,
    since: Instant,
}

/// How long unneeded hooks stay attached before the reaper drops them.
const PARK_GRACE: Duration = Duration::from_millis(500);

fn reaper_loop(parked: &Mutex<HashMap<u32, Parked>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(mut map) = parked.lock() else { return };
        let old: Vec<u32> = map
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= PARK_GRACE)
            .map(|(nr, _)| *nr)
            .collect();
        let expired: Vec<Box<dyn Send>> = old
            .iter()
            .filter_map(|nr| map.remove(nr))
            .flat_map(|p| [Box::new(p.enter) as Box<dyn Send>, Box::new(p.exit)])
            .collect();
        // Dropped under the lock: a syscall traced again meanwhile waits here
        // rather than attaching while its old hook is still being detached
        // (both would run, counting its calls twice).
        drop_in_parallel(expired);
        drop(map);
    }
}

/// Drops links on several threads at once, so their grace periods overlap.
fn drop_in_parallel(links: Vec<Box<dyn Send>>) {
    if links.is_empty() {
        return;
    }
    let per = links.len().div_ceil(32).max(1);
    let mut chunks: Vec<Vec<Box<dyn Send>>> = Vec::new();
    let mut it = links.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(per).collect());
    }
    std::thread::scope(|s| {
        for chunk in chunks {
            s.spawn(move || drop(chunk));
        }
    });
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.reaper_stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.reaper.take() {
            let _ = h.join();
        }
        let mut links: Vec<Box<dyn Send>> = Vec::new();
        for (_, hook) in self.hooks.drain() {
            if let Hook::Tracepoint { enter, exit } = hook {
                links.push(Box::new(enter));
                links.push(Box::new(exit));
            }
        }
        if let Ok(mut map) = self.parked.lock() {
            for (_, p) in map.drain() {
                links.push(Box::new(p.enter));
                links.push(Box::new(p.exit));
            }
        }
        drop_in_parallel(links);
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
        let table = SyscallTable::get();
        let self_tgid = cfg.self_tgid.unwrap_or_else(std::process::id);
        let wakeup = cfg
            .wakeup_bytes
            .unwrap_or_else(|| (u64::from(cfg.ring_bytes) / 4).min(256 << 10));
        let nr_exit = table.by_name("exit").map_or(60, |d| d.nr);
        let nr_exit_group = table.by_name("exit_group").map_or(231, |d| d.nr);
        let mut bpf = EbpfLoader::new()
            // Task storage is only used by the probe itself, never from user space.
            .allow_unsupported_maps()
            .override_global(names::GLOBAL_SELF_TGID, &self_tgid, true)
            .override_global(names::GLOBAL_WAKEUP_BYTES, &wakeup, true)
            .override_global(names::GLOBAL_NR_EXIT, &nr_exit, true)
            .override_global(names::GLOBAL_NR_EXIT_GROUP, &nr_exit_group, true)
            .map_max_entries(names::MAP_EVENTS, cfg.ring_bytes)
            .load(object)
            .map_err(|e| load_error(e, "loading the eBPF probe"))?;
        for name in [names::PROG_SYS_ENTER, names::PROG_SYS_EXIT] {
            program::<TracePoint>(&mut bpf, name)?
                .load()
                .map_err(|e| load_error(e, &format!("verifying program `{name}`")))?;
        }
        for name in [names::PROG_RAW_ENTER, names::PROG_RAW_EXIT] {
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
        let probe = Self {
            filters: take(&mut bpf, names::MAP_FILTERS)?,
            counters: take(&mut bpf, names::MAP_COUNTERS)?,
            raw_on: take(&mut bpf, names::MAP_RAW_SYSCALLS)?,
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
        };
        Ok((probe, ring))
    }

    #[must_use]
    pub fn table(&self) -> &'static SyscallTable {
        self.table
    }

    fn tracepoint_event(&self, def: &SyscallDef) -> Option<String> {
        let tp = def.tp.as_ref()?;
        let dir = format!("{}/events/syscalls/sys_enter_{tp}", self.tracefs);
        Path::new(&dir).is_dir().then(|| tp.clone())
    }

    fn tp_prog(&mut self, name: &str) -> Result<&mut TracePoint> {
        program(&mut self.bpf, name)
    }

    fn raw_prog(&mut self, name: &str) -> Result<&mut RawTracePoint> {
        program(&mut self.bpf, name)
    }

    fn attach(&mut self, def: &SyscallDef) -> Result<()> {
        if let Some(tp) = self.tracepoint_event(def) {
            let parked = self.parked.lock().ok().and_then(|mut m| m.remove(&def.nr));
            if let Some(p) = parked {
                self.hooks.insert(
                    def.nr,
                    Hook::Tracepoint {
                        enter: p.enter,
                        exit: p.exit,
                    },
                );
                return Ok(());
            }
            // Exit first, so an entry seen is always followed by its exit.
            let exit = self
                .tp_prog(names::PROG_SYS_EXIT)?
                .attach("syscalls", &format!("sys_exit_{tp}"))
                .map_err(|e| load_error(e, &format!("attaching to sys_exit_{tp}")))?;
            let enter = match self
                .tp_prog(names::PROG_SYS_ENTER)?
                .attach("syscalls", &format!("sys_enter_{tp}"))
            {
                Ok(l) => l,
                Err(e) => {
                    let _ = self.tp_prog(names::PROG_SYS_EXIT)?.detach(exit);
                    return Err(load_error(e, &format!("attaching to sys_enter_{tp}")));
                }
            };
            let enter = self
                .tp_prog(names::PROG_SYS_ENTER)?
                .take_link(enter)
                .map_err(|e| Error::Bpf(format!("owning link: {e}")))?;
            let exit = self
                .tp_prog(names::PROG_SYS_EXIT)?
                .take_link(exit)
                .map_err(|e| Error::Bpf(format!("owning link: {e}")))?;
            self.hooks.insert(def.nr, Hook::Tracepoint { enter, exit });
            self.start_reaper();
            return Ok(());
        }
        // No per-syscall tracepoint: the raw hooks, attached while any needs them.
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
        self.raw_on
            .set(def.nr, 1, 0)
            .map_err(|e| Error::Bpf(format!("enabling raw hook for `{}`: {e}", def.name)))?;
        self.hooks.insert(def.nr, Hook::Raw);
        Ok(())
    }

    fn detach(&mut self, nr: u32) -> Result<()> {
        match self.hooks.remove(&nr) {
            Some(Hook::Tracepoint { enter, exit }) => {
                // The filter is already gone, so the hooks emit nothing more;
                // they are parked and dropped later, off the caller's path.
                if let Ok(mut m) = self.parked.lock() {
                    m.insert(
                        nr,
                        Parked {
                            enter,
                            exit,
                            since: Instant::now(),
                        },
                    );
                }
            }
            Some(Hook::Raw) => {
                self.raw_on
                    .set(nr, 0, 0)
                    .map_err(|e| Error::Bpf(format!("disabling raw hook: {e}")))?;
                if !self.hooks.values().any(|h| matches!(h, Hook::Raw))
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

    /// Traces `nr` in pid namespace `pid_ns` (0 = every namespace), or
    /// updates the settings of an existing key.
    ///
    /// # Errors
    /// Unknown syscall number, bad settings, or a kernel refusal.
    pub fn add_filter(&mut self, pid_ns: u32, nr: u32, spec: FilterSpec) -> Result<()> {
        let def = self.table.by_nr(nr).ok_or_else(|| Error::UnknownSyscall {
            name: nr.to_string(),
            suggestions: Vec::new(),
        })?;
        let cfg = spec.to_cfg()?;
        let key = FilterKey { pid_ns, nr };
        // Counters survive filter removal, so the sequence never restarts.
        match self
            .counters
            .insert(key, KeyCounters::default(), BPF_NOEXIST)
        {
            Ok(()) => {}
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(Error::Bpf(format!("creating counters for {key:?}: {e}"))),
        }
        let new_hook = !self.hooks.contains_key(&nr);
        if new_hook {
            self.attach(def)?;
        }
        if let Err(e) = self.filters.insert(key, cfg, 0) {
            if new_hook {
                let _ = self.detach(nr);
            }
            return Err(Error::Bpf(format!("inserting filter {key:?}: {e}")));
        }
        self.keys.insert(key, spec);
        Ok(())
    }

    /// Stops tracing a key; detaches the syscall's hooks when no key needs them.
    /// Returns false when the key was not traced.
    ///
    /// # Errors
    /// A kernel refusal while deleting or detaching.
    pub fn remove_filter(&mut self, pid_ns: u32, nr: u32) -> Result<bool> {
        let key = FilterKey { pid_ns, nr };
        if self.keys.remove(&key).is_none() {
            return Ok(false);
        }
        match self.filters.remove(&key) {
            Ok(()) => {}
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(Error::Bpf(format!("removing filter {key:?}: {e}"))),
        }
        // Retire the key's counters into user space, so the kernel map holds
        // only live keys (it would fill after 65536 keys otherwise).
        if let Ok(c) = self.counters.get(&key, 0) {
            let r = self.retired.entry(key).or_default();
            r.matched += c.matched;
            r.sampled_out += c.sampled_out;
            r.dropped += c.dropped;
            let _ = self.counters.remove(&key);
        }
        if !self.keys.keys().any(|k| k.nr == nr) {
            self.detach(nr)?;
        }
        Ok(true)
    }

    /// Filter keys and settings as read back from the kernel map.
    ///
    /// # Errors
    /// A kernel refusal while iterating.
    pub fn filters(&self) -> Result<Vec<(FilterKey, FilterCfg)>> {
        let mut out = Vec::new();
        for item in self.filters.iter() {
            out.push(item.map_err(|e| Error::Bpf(format!("reading filters: {e}")))?);
        }
        out.sort_by_key(|(k, _)| *k);
        Ok(out)
    }

    /// Per-key counters of every key this probe traced: live keys from the
    /// kernel plus the totals of removed keys.
    ///
    /// # Errors
    /// A kernel refusal while iterating.
    pub fn key_counters(&self) -> Result<Vec<(FilterKey, KeyCounters)>> {
        let mut all: BTreeMap<FilterKey, KeyCounters> = self.retired.clone().into_iter().collect();
        for item in self.counters.iter() {
            let (k, c) = item.map_err(|e| Error::Bpf(format!("reading counters: {e}")))?;
            let r = all.entry(k).or_default();
            r.matched += c.matched;
            r.sampled_out += c.sampled_out;
            r.dropped += c.dropped;
        }
        Ok(all.into_iter().collect())
    }

    /// The current sequence (matched count since the key was added) of every
    /// live key, as the kernel stamps it on records.
    ///
    /// # Errors
    /// A kernel refusal while iterating.
    pub fn sequences(&self) -> Result<Vec<(FilterKey, u64)>> {
        let mut out = Vec::new();
        for item in self.counters.iter() {
            let (k, c) = item.map_err(|e| Error::Bpf(format!("reading counters: {e}")))?;
            out.push((k, c.matched));
        }
        Ok(out)
    }

    /// Matched count of one key (live plus retired), without reading every key.
    #[must_use]
    pub fn key_matched(&self, pid_ns: u32, nr: u32) -> u64 {
        let key = FilterKey { pid_ns, nr };
        let live = self.counters.get(&key, 0).map_or(0, |c| c.matched);
        live + self.retired.get(&key).map_or(0, |c| c.matched)
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
        })
    }

    /// Syscall numbers with hooks attached now, and whether each is raw.
    #[must_use]
    pub fn hooked(&self) -> Vec<(u32, bool)> {
        let mut v: Vec<(u32, bool)> = self
            .hooks
            .iter()
            .map(|(&nr, h)| (nr, matches!(h, Hook::Raw)))
            .collect();
        v.sort_unstable();
        v
    }
}
