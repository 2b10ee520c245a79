//! Filter keys: add/remove (attaching and detaching hooks as needed), the
//! settings per key, and the per-key counters (live in the kernel, those of
//! a key's ended lifetimes in user space).

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::Probe;
use crate::abi::{self, FilterCfg, FilterKey, KeyCounters};
use crate::accounting::{KeyLifetime, lifetimes};
use crate::error::{Error, Result};

/// Slots of the kernel's counters array: one per live key, named in its
/// filter so a matched call counts without a hash lookup.
///
/// Never-used slots are handed out first, then freed ones oldest first: a
/// call still in flight when its key is removed may count into the slot it
/// started with, and that slot is given to another key only after every
/// other slot has been.
#[derive(Debug, Default)]
pub(super) struct Slots {
    live: HashMap<FilterKey, u32>,
    next: u32,
    free: VecDeque<u32>,
}

impl Slots {
    /// The slot of a live key.
    pub(super) fn of(&self, key: &FilterKey) -> Option<u32> {
        self.live.get(key).copied()
    }

    fn take(&mut self, key: FilterKey, capacity: u32) -> Option<u32> {
        let slot = if self.next < capacity {
            self.next += 1;
            self.next - 1
        } else {
            self.free.pop_front()?
        };
        self.live.insert(key, slot);
        Some(slot)
    }

    fn give_back(&mut self, key: &FilterKey) -> Option<u32> {
        let slot = self.live.remove(key)?;
        self.free.push_back(slot);
        Some(slot)
    }

    fn iter(&self) -> impl Iterator<Item = (&FilterKey, &u32)> {
        self.live.iter()
    }
}

/// Capture settings of one filter key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    pub sample_rate: u32,
    pub str_max: u16,
    pub argv_max: u16,
    pub buf_max: u32,
    /// Time each call from entry to exit (attaches the syscall's entry hook;
    /// without it a call carries its exit time only).
    pub durations: bool,
}

impl Default for FilterSpec {
    fn default() -> Self {
        Self {
            sample_rate: 1,
            str_max: abi::STR_DEFAULT,
            argv_max: abi::ARGV_DEFAULT,
            buf_max: 64,
            durations: false,
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
            slot: 0,
        })
    }
}

impl Probe {
    /// Traces `nr` in pid namespace `pid_ns` (0 = every namespace; a scope id
    /// from [`Probe::add_scope`] = that process tree), or updates the
    /// settings of an existing key.
    ///
    /// # Errors
    /// Unknown syscall number, bad settings, or a kernel refusal.
    pub fn add_filter(&mut self, pid_ns: u32, nr: u32, spec: FilterSpec) -> Result<()> {
        let def = self.table.by_nr(nr).ok_or_else(|| Error::UnknownSyscall {
            name: nr.to_string(),
            suggestions: Vec::new(),
        })?;
        let mut cfg = spec.to_cfg()?;
        let key = FilterKey { pid_ns, nr };
        // A live key keeps its counters (and sequence) when its settings change.
        let live = self.slots.of(&key);
        let created = live.is_none();
        cfg.slot = match live {
            Some(slot) => slot,
            None => {
                let slot = self.slots.take(key, self.counters.len()).ok_or_else(|| {
                    Error::Bpf(format!(
                        "the kernel filter map is full ({} keys): cannot trace syscall {nr} in \
                         namespace {pid_ns}; remove other filters first",
                        self.keys.len()
                    ))
                })?;
                if let Err(e) = self.counters.set(slot, KeyCounters::default(), 0) {
                    self.slots.give_back(&key);
                    return Err(Error::Bpf(format!("creating counters for {key:?}: {e}")));
                }
                slot
            }
        };
        let r = self.install(key, def, cfg, spec.durations);
        if r.is_err() && created {
            self.slots.give_back(&key);
            self.close_key_read(key);
        }
        r?;
        self.keys.insert(key, spec);
        self.bump_match_gen()?;
        self.stage_hook_on()
    }

    /// The read count, hooks and filter entry of a key whose counters exist.
    fn install(
        &mut self,
        key: FilterKey,
        def: &crate::syscalls::SyscallDef,
        cfg: FilterCfg,
        durations: bool,
    ) -> Result<()> {
        self.open_key_read(key)?;
        let entry = durations || def.needs_entry();
        let new_hook = !self.hooks.contains_key(&key.nr);
        if new_hook {
            self.attach(def, entry)?;
        } else {
            self.ensure_entry(def, entry)?;
        }
        if let Err(e) = self.filters.insert(key, cfg, 0) {
            if new_hook {
                let _ = self.detach(key.nr);
            }
            return Err(Error::Bpf(format!("inserting filter {key:?}: {e}")));
        }
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
        self.bump_match_gen()?;
        // End the key's lifetime: its counters move into user space, so the
        // kernel map holds only live keys (it would fill after 65536 keys
        // otherwise), and a later add starts a new lifetime from 0.
        let c = self.slot_counters(&key).unwrap_or_default();
        self.slots.give_back(&key);
        self.retired.entry(key).or_default().end(&c);
        self.close_key_read(key);
        if !self.keys.keys().any(|k| k.nr == nr) {
            self.detach(nr)?;
        }
        if self.keys.is_empty() {
            self.stage_hook_off()?;
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

    /// Per-key counters of every key this probe traced, in key order: each
    /// key's latest lifetime (live from the kernel, else its last ended
    /// one), then the sum of its earlier lifetimes if it had any (see
    /// [`crate::accounting::lifetimes`]).
    ///
    /// # Errors
    /// A kernel refusal while iterating.
    pub fn key_counters(&self) -> Result<Vec<KeyLifetime>> {
        let live: HashMap<FilterKey, KeyCounters> = self.live_counters()?.into_iter().collect();
        let keys: BTreeSet<FilterKey> = live.keys().chain(self.retired.keys()).copied().collect();
        Ok(keys
            .into_iter()
            .flat_map(|k| lifetimes(k, live.get(&k), self.retired.get(&k)))
            .collect())
    }

    /// The current sequence (matched count since the key was added) of every
    /// live key, as the kernel stamps it on records.
    ///
    /// # Errors
    /// A kernel refusal while iterating.
    pub fn sequences(&self) -> Result<Vec<(FilterKey, u64)>> {
        let mut out: Vec<(FilterKey, u64)> = self
            .live_counters()?
            .into_iter()
            .map(|(k, c)| (k, c.matched))
            .collect();
        out.sort_by_key(|(k, _)| *k);
        Ok(out)
    }

    /// The kernel counters of every live key (at their slots).
    fn live_counters(&self) -> Result<Vec<(FilterKey, KeyCounters)>> {
        self.slots
            .iter()
            .map(|(k, &slot)| {
                let c = self
                    .counters
                    .get(&slot, 0)
                    .map_err(|e| Error::Bpf(format!("reading counters: {e}")))?;
                Ok((*k, c))
            })
            .collect()
    }

    /// Matched count of one key's latest lifetime (the live one, else the
    /// last ended one), without reading every key.
    #[must_use]
    pub fn key_matched(&self, pid_ns: u32, nr: u32) -> u64 {
        let key = FilterKey { pid_ns, nr };
        match self.slot_counters(&key) {
            Some(c) => c.matched,
            None => self.retired.get(&key).map_or(0, |h| h.last.matched),
        }
    }

    /// The kernel counters of a live key.
    fn slot_counters(&self, key: &FilterKey) -> Option<KeyCounters> {
        self.counters.get(&self.slots.of(key)?, 0).ok()
    }
}
