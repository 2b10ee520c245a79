//! Syscall metrics in the kernel: the metrics program (`bpf/metrics.bpf.c`),
//! separate from the trace probe, counts every syscall per (pid namespace,
//! syscall, errno) in a bounded per-CPU hash, and with `latency` on adds
//! each call's time and a log2 latency histogram. Its hooks are attached
//! only while metrics are on; [`MetricsProbe::snapshot`] reads the map and
//! sums the CPUs.
//!
//! Hooks: `tp_btf/sys_exit` counts (one program run per syscall);
//! `tp_btf/sched_process_exit` counts threads that die in exit/exit_group;
//! latency adds `tp_btf/sys_enter`, which stamps each call's start.
//!
//! Modes: [`Mode::Node`] counts every namespace; [`Mode::Containers`] only the
//! namespaces added with [`MetricsProbe::add_namespace`]; [`Mode::Bare`]
//! attaches an empty enter+exit pair and counts nothing (the cost baseline
//! of the benchmarks).

pub mod abi;
mod batch;
pub mod ring;

use std::os::fd::AsFd;

use aya::maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, PerCpuHashMap};
use aya::programs::raw_trace_point::RawTracePointLinkId;
use aya::programs::tp_btf::BtfTracePointLinkId;
use aya::programs::{BtfTracePoint, RawTracePoint};
use aya::{Btf, Ebpf, EbpfLoader};

use crate::error::{Error, Result};
use crate::syscalls::SyscallTable;
pub use abi::{BUCKETS, MetricKey, MetricValue, bucket_of};

/// The compiled metrics program, embedded at build time.
pub static METRICS_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/metrics.bpf.o"));

/// Names of the metrics program's programs, maps and globals.
pub mod names {
    pub const PROG_ENTER: &str = "syshub_mx_enter";
    pub const PROG_EXIT: &str = "syshub_mx_exit";
    pub const PROG_TASK_EXIT: &str = "syshub_mx_task_exit";
    pub const PROG_BARE_ENTER: &str = "syshub_mx_bare_enter";
    pub const PROG_BARE_EXIT: &str = "syshub_mx_bare_exit";
    pub const MAP_STATS: &str = "mx_stats";
    pub const MAP_OVERFLOW: &str = "mx_overflow";
    pub const MAP_COUNTERS: &str = "mx_counters";
    pub const MAP_NAMESPACES: &str = "mx_namespaces";
    pub const GLOBAL_SELF_TGID: &str = "self_tgid";
    pub const GLOBAL_MODE: &str = "mode";
    pub const GLOBAL_NR_EXIT: &str = "nr_exit";
    pub const GLOBAL_NR_EXIT_GROUP: &str = "nr_exit_group";
    pub const GLOBAL_LATENCY: &str = "latency";
    /// Globals holding syscall numbers the exit hook needs (the calls that
    /// create a task, rt_sigreturn).
    pub const GLOBALS_NR: [(&str, &str); 5] = [
        ("nr_clone", "clone"),
        ("nr_fork", "fork"),
        ("nr_vfork", "vfork"),
        ("nr_clone3", "clone3"),
        ("nr_rt_sigreturn", "rt_sigreturn"),
    ];
}

/// Series the stats map holds by default.
pub const DEFAULT_MAX_ENTRIES: u32 = 16384;
/// Bounds of `max_entries`.
pub const MAX_ENTRIES_MIN: u32 = 1;
pub const MAX_ENTRIES_MAX: u32 = 1 << 22;

/// What the program counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every syscall of every pid namespace.
    Node,
    /// Only the pid namespaces in the namespace set.
    Containers,
    /// An empty enter+exit pair: counts nothing (benchmark baseline).
    Bare,
}

impl Mode {
    /// `"node"`, `"containers"` or `"bare"`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "node" => Ok(Self::Node),
            "containers" => Ok(Self::Containers),
            "bare" => Ok(Self::Bare),
            _ => Err(Error::InvalidArgument(format!(
                "metrics mode must be \"node\" or \"containers\", got {name:?}"
            ))),
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Containers => "containers",
            Self::Bare => "bare",
        }
    }
}

/// Load-time settings.
#[derive(Clone, Debug)]
pub struct MetricsConfig {
    pub mode: Mode,
    /// Series the stats map holds; calls of series past it go to the overflow.
    pub max_entries: u32,
    /// Host pid whose syscalls are never counted (default: this process).
    pub self_tgid: Option<u32>,
    /// Time every call (entry hook, two clock reads: the histogram's
    /// price); off: counts and errnos only, one hook.
    pub latency: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Node,
            max_entries: DEFAULT_MAX_ENTRIES,
            self_tgid: None,
            latency: true,
        }
    }
}

/// One read of the maps, per-CPU values summed.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every series, sorted by key.
    pub rows: Vec<(MetricKey, MetricValue)>,
    /// Calls that found the stats map full (not attributed to a series).
    pub overflow: MetricValue,
    /// Syscall entries not timed: no per-task slot could be created.
    pub nomem: u64,
    /// Calls counted without a duration (latency on): their entry was not
    /// stamped (in flight at attach, no slot). 0 with latency off.
    pub untimed: u64,
}

fn bpf_error(e: impl std::fmt::Display + std::fmt::Debug, what: &str) -> Error {
    let text = format!("{e:?}");
    if text.contains("PermissionDenied") || text.contains("os error 1)") || text.contains("EPERM") {
        return Error::Permission { what: what.into() };
    }
    Error::Bpf(format!("{what}: {e}"))
}

fn take<T>(bpf: &mut Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<Map>,
    <T as TryFrom<Map>>::Error: std::fmt::Display,
{
    let map = bpf
        .take_map(name)
        .ok_or_else(|| Error::Bpf(format!("map `{name}` missing from the metrics object")))?;
    T::try_from(map).map_err(|e| Error::Bpf(format!("map `{name}`: {e}")))
}

/// The loaded metrics program. Dropping it detaches and unloads everything.
pub struct MetricsProbe {
    bpf: Ebpf,
    mode: Mode,
    latency: bool,
    max_entries: u32,
    ncpus: usize,
    /// The stats map (a per-CPU hash); views are made on demand.
    stats: Map,
    overflow: PerCpuArray<MapData, MetricValue>,
    counters: PerCpuArray<MapData, u64>,
    namespaces: BpfHashMap<MapData, u32, u8>,
    /// Attached hooks, in attach order (detached in reverse).
    links: Option<Vec<(&'static str, Link)>>,
    /// Whether the batch lookup works here (else: key by key).
    batch_ok: bool,
}

impl std::fmt::Debug for MetricsProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsProbe")
            .field("mode", &self.mode)
            .field("latency", &self.latency)
            .field("max_entries", &self.max_entries)
            .field("attached", &self.links.is_some())
            .finish_non_exhaustive()
    }
}

impl MetricsProbe {
    /// Loads the embedded metrics program (not attached yet: see
    /// [`MetricsProbe::attach`]).
    ///
    /// # Errors
    /// [`Error::Permission`] without root / CAP_BPF + CAP_PERFMON,
    /// [`Error::InvalidArgument`] for a bad `max_entries`, or [`Error::Bpf`].
    pub fn open(cfg: &MetricsConfig) -> Result<Self> {
        if !(MAX_ENTRIES_MIN..=MAX_ENTRIES_MAX).contains(&cfg.max_entries) {
            return Err(Error::InvalidArgument(format!(
                "max_entries must be in {MAX_ENTRIES_MIN}..={MAX_ENTRIES_MAX}, got {}",
                cfg.max_entries
            )));
        }
        let table = SyscallTable::get();
        let self_tgid = cfg.self_tgid.unwrap_or_else(std::process::id);
        let mode = match cfg.mode {
            Mode::Containers => abi::MODE_CONTAINERS,
            Mode::Node | Mode::Bare => abi::MODE_NODE,
        };
        let nr_exit = table.by_name("exit").map_or(60, |d| d.nr);
        let nr_exit_group = table.by_name("exit_group").map_or(231, |d| d.nr);
        let latency = u32::from(cfg.latency);
        let clone_nrs: Vec<(&str, u32)> = names::GLOBALS_NR
            .iter()
            .filter_map(|(global, call)| table.by_name(call).ok().map(|d| (*global, d.nr)))
            .collect();
        let ncpus =
            aya::util::nr_cpus().map_err(|(what, e)| Error::Bpf(format!("reading {what}: {e}")))?;
        let btf = Btf::from_sys_fs().map_err(|e| {
            Error::Bpf(format!(
                "reading the kernel's BTF (/sys/kernel/btf/vmlinux): {e}"
            ))
        })?;
        let mut loader = EbpfLoader::new();
        for (global, nr) in &clone_nrs {
            loader.override_global(global, nr, true);
        }
        let mut bpf = loader
            .btf(Some(&btf))
            // Task storage is only used by the program itself.
            .allow_unsupported_maps()
            .override_global(names::GLOBAL_SELF_TGID, &self_tgid, true)
            .override_global(names::GLOBAL_MODE, &mode, true)
            .override_global(names::GLOBAL_NR_EXIT, &nr_exit, true)
            .override_global(names::GLOBAL_NR_EXIT_GROUP, &nr_exit_group, true)
            .override_global(names::GLOBAL_LATENCY, &latency, true)
            .map_max_entries(names::MAP_STATS, cfg.max_entries)
            .load(METRICS_OBJECT)
            .map_err(|e| bpf_error(e, "loading the metrics program"))?;
        for (name, hook) in hooks(cfg.mode, cfg.latency) {
            let loaded = match hook {
                Hook::Raw(_) => raw_prog(&mut bpf, name)?.load(),
                Hook::Btf(tp) => btf_prog(&mut bpf, name)?.load(tp, &btf),
            };
            loaded.map_err(|e| bpf_error(e, &format!("verifying program `{name}`")))?;
        }
        Ok(Self {
            stats: bpf
                .take_map(names::MAP_STATS)
                .ok_or_else(|| Error::Bpf("map `mx_stats` missing".into()))?,
            overflow: take(&mut bpf, names::MAP_OVERFLOW)?,
            counters: take(&mut bpf, names::MAP_COUNTERS)?,
            namespaces: take(&mut bpf, names::MAP_NAMESPACES)?,
            bpf,
            mode: cfg.mode,
            latency: cfg.latency && cfg.mode != Mode::Bare,
            max_entries: cfg.max_entries,
            ncpus,
            links: None,
            batch_ok: true,
        })
    }

    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    #[must_use]
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    #[must_use]
    pub fn attached(&self) -> bool {
        self.links.is_some()
    }

    /// Whether calls are timed (the histogram is filled).
    #[must_use]
    pub fn latency(&self) -> bool {
        self.latency
    }

    /// Attaches the hooks (the exits first, so no call is stamped without
    /// its exit being seen). Idempotent.
    ///
    /// # Errors
    /// A kernel refusal.
    pub fn attach(&mut self) -> Result<()> {
        if self.links.is_some() {
            return Ok(());
        }
        let mut links = Vec::new();
        for (name, hook) in hooks(self.mode, self.latency) {
            let attached = match hook {
                Hook::Raw(tp) => raw_prog(&mut self.bpf, name)?.attach(tp).map(Link::Raw),
                Hook::Btf(_) => btf_prog(&mut self.bpf, name)?.attach().map(Link::Btf),
            };
            match attached {
                Ok(link) => links.push((name, link)),
                Err(e) => {
                    let _ = self.detach_links(links);
                    return Err(bpf_error(
                        e,
                        &format!("attaching the metrics program `{name}`"),
                    ));
                }
            }
        }
        self.links = Some(links);
        Ok(())
    }

    fn detach_links(&mut self, links: Vec<(&'static str, Link)>) -> Result<()> {
        let mut first_err = None;
        for (name, link) in links.into_iter().rev() {
            let res = match link {
                Link::Raw(id) => raw_prog(&mut self.bpf, name)?.detach(id),
                Link::Btf(id) => btf_prog(&mut self.bpf, name)?.detach(id),
            };
            if let Err(e) = res {
                first_err.get_or_insert(Error::Bpf(format!("detaching `{name}`: {e}")));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Detaches every hook (the entry first). Idempotent.
    ///
    /// # Errors
    /// A kernel refusal.
    pub fn detach(&mut self) -> Result<()> {
        match self.links.take() {
            Some(links) => self.detach_links(links),
            None => Ok(()),
        }
    }

    /// Counts pid namespace `pid_ns` (containers mode). False if it was.
    ///
    /// # Errors
    /// The namespace set is full, or a kernel refusal.
    pub fn add_namespace(&mut self, pid_ns: u32) -> Result<bool> {
        if self.namespaces.get(&pid_ns, 0).is_ok() {
            return Ok(false);
        }
        self.namespaces
            .insert(pid_ns, 1, 0)
            .map_err(|e| Error::Bpf(format!("adding pid namespace {pid_ns}: {e}")))?;
        Ok(true)
    }

    /// Stops counting `pid_ns`. False if it was not counted.
    ///
    /// # Errors
    /// A kernel refusal.
    pub fn remove_namespace(&mut self, pid_ns: u32) -> Result<bool> {
        if self.namespaces.get(&pid_ns, 0).is_err() {
            return Ok(false);
        }
        self.namespaces
            .remove(&pid_ns)
            .map_err(|e| Error::Bpf(format!("removing pid namespace {pid_ns}: {e}")))?;
        Ok(true)
    }

    /// The namespace set, sorted.
    #[must_use]
    pub fn namespaces(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self.namespaces.keys().filter_map(Result::ok).collect();
        out.sort_unstable();
        out
    }

    fn stats_view(&self) -> Result<PerCpuHashMap<&MapData, MetricKey, MetricValue>> {
        PerCpuHashMap::try_from(&self.stats).map_err(|e| Error::Bpf(format!("map `mx_stats`: {e}")))
    }

    fn stats_view_mut(&mut self) -> Result<PerCpuHashMap<&mut MapData, MetricKey, MetricValue>> {
        PerCpuHashMap::try_from(&mut self.stats)
            .map_err(|e| Error::Bpf(format!("map `mx_stats`: {e}")))
    }

    fn read_rows(&mut self) -> Result<Vec<(MetricKey, MetricValue)>> {
        if self.batch_ok {
            let Map::PerCpuHashMap(data) = &self.stats else {
                return Err(Error::Bpf("map `mx_stats` is not a per-CPU hash".into()));
            };
            match batch::lookup_all(data.fd().as_fd(), self.ncpus, 1024) {
                Ok(rows) => return Ok(rows),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
                    // 524 = ENOTSUPP: no batch operations; read key by key.
                    self.batch_ok = false;
                }
                Err(e) => return Err(Error::io("reading the metrics map", e)),
            }
        }
        let view = self.stats_view()?;
        let mut rows = Vec::new();
        for item in view.iter() {
            // intent: a key deleted between listing and reading is skipped
            let Ok((key, values)) = item else { continue };
            rows.push((key, MetricValue::sum(values.iter())));
        }
        Ok(rows)
    }

    /// Reads every series (summed over CPUs), the overflow and the counters.
    ///
    /// # Errors
    /// A kernel refusal while reading.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        let mut rows = self.read_rows()?;
        rows.sort_unstable_by_key(|(k, _)| *k);
        let overflow = self
            .overflow
            .get(&0, 0)
            .map(|v| MetricValue::sum(v.iter()))
            .map_err(|e| Error::Bpf(format!("reading the metrics overflow: {e}")))?;
        let counter = |idx: u32| -> Result<u64> {
            self.counters
                .get(&idx, 0)
                .map(|v| v.iter().fold(0u64, |a, b| a.wrapping_add(*b)))
                .map_err(|e| Error::Bpf(format!("reading the metrics counters: {e}")))
        };
        Ok(Snapshot {
            rows,
            overflow,
            nomem: counter(abi::C_NOMEM)?,
            untimed: counter(abi::C_UNTIMED)?,
        })
    }

    /// Series in the stats map now.
    ///
    /// # Errors
    /// A kernel refusal while reading.
    pub fn entries(&self) -> Result<usize> {
        Ok(self.stats_view()?.keys().filter(Result::is_ok).count())
    }

    /// Deletes the series of `keys`; returns how many existed.
    ///
    /// # Errors
    /// A kernel refusal while reading the map.
    pub fn remove_series(&mut self, keys: &[MetricKey]) -> Result<usize> {
        let mut view = self.stats_view_mut()?;
        Ok(keys.iter().filter(|k| view.remove(k).is_ok()).count())
    }

    /// Deletes every series of `pid_ns` (its container stopped). Returns how
    /// many were deleted.
    ///
    /// # Errors
    /// A kernel refusal.
    pub fn prune_namespace(&mut self, pid_ns: u32) -> Result<usize> {
        let keys: Vec<MetricKey> = self
            .stats_view()?
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.pid_ns == pid_ns)
            .collect();
        let mut view = self.stats_view_mut()?;
        let mut n = 0;
        for k in keys {
            if view.remove(&k).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

impl Drop for MetricsProbe {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

/// Where a program hooks: a raw tracepoint (by name) or a BTF tracepoint.
#[derive(Clone, Copy)]
enum Hook {
    Raw(&'static str),
    Btf(&'static str),
}

enum Link {
    Raw(RawTracePointLinkId),
    Btf(BtfTracePointLinkId),
}

/// The programs of a mode, in attach order (exits before the entry).
fn hooks(mode: Mode, latency: bool) -> Vec<(&'static str, Hook)> {
    match mode {
        Mode::Bare => vec![
            (names::PROG_BARE_EXIT, Hook::Raw("sys_exit")),
            (names::PROG_BARE_ENTER, Hook::Raw("sys_enter")),
        ],
        Mode::Node | Mode::Containers => {
            let mut out = vec![
                (names::PROG_EXIT, Hook::Btf("sys_exit")),
                (names::PROG_TASK_EXIT, Hook::Btf("sched_process_exit")),
            ];
            if latency {
                out.push((names::PROG_ENTER, Hook::Btf("sys_enter")));
            }
            out
        }
    }
}

fn btf_prog<'a>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut BtfTracePoint> {
    bpf.program_mut(name)
        .ok_or_else(|| Error::Bpf(format!("program `{name}` missing")))?
        .try_into()
        .map_err(|e| Error::Bpf(format!("program `{name}`: {e}")))
}

fn raw_prog<'a>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut RawTracePoint> {
    bpf.program_mut(name)
        .ok_or_else(|| Error::Bpf(format!("program `{name}` missing")))?
        .try_into()
        .map_err(|e| Error::Bpf(format!("program `{name}`: {e}")))
}
