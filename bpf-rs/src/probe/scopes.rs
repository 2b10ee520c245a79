//! Process scopes: a process and its descendants traced under a small scope
//! id (1..=65535) used as the filter key's namespace, wherever the processes
//! live. The kernel follows forks and exits while a scope exists (two raw
//! tracepoint hooks, attached only then); descendants that already exist are
//! added here by walking `/proc/<pid>/task/*/children`.

use std::collections::{HashMap, VecDeque};

use super::{Probe, load_error};
use crate::abi;
use crate::error::{Error, Result};
use crate::names;

/// The thread-group id of `pid` from /proc, or a clear error.
fn process_tgid(pid: u32) -> Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|_| Error::InvalidArgument(format!("no process with pid {pid}")))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::InvalidArgument(format!("no process with pid {pid}")))
}

/// Whether process `tgid` still runs (not gone, not a zombie whose exit the
/// kernel hook has already seen).
fn running(tgid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{tgid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    field("Tgid:").and_then(|v| v.parse::<u32>().ok()) == Some(tgid)
        && !field("State:").is_some_and(|v| v.starts_with('Z') || v.starts_with('X'))
}

/// Child processes of `pid` (of all its threads).
fn children(pid: u32, by_parent: Option<&HashMap<u32, Vec<u32>>>) -> Vec<u32> {
    if let Some(map) = by_parent {
        return map.get(&pid).cloned().unwrap_or_default();
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|s| s.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Parent of every process, from /proc/*/status, for kernels without
/// /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN off).
fn parent_map() -> HashMap<u32, Vec<u32>> {
    let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        if let Some(ppid) = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
        {
            map.entry(ppid).or_default().push(pid);
        }
    }
    map
}

impl Probe {
    /// Puts process `pid` (a host pid) and its descendants, those alive now
    /// and those it forks later, in a new scope. Returns the scope id, to be
    /// used as the namespace of [`Probe::add_filter`].
    ///
    /// # Errors
    /// No such process, a thread id, the tracer itself, a process already in
    /// a scope, every id in use, or a kernel refusal.
    pub fn add_scope(&mut self, pid: u32) -> Result<u16> {
        let tgid = process_tgid(pid)?;
        if tgid != pid {
            return Err(Error::InvalidArgument(format!(
                "pid {pid} is a thread of process {tgid}: scope the process"
            )));
        }
        if tgid == self.self_tgid {
            return Err(Error::InvalidArgument(format!(
                "pid {pid} is the tracer itself, which is never traced"
            )));
        }
        if let Ok(id) = self.scope_tasks.get(&tgid, 0) {
            return Err(Error::InvalidArgument(format!(
                "process {pid} is already in scope {id}"
            )));
        }
        let id = self.free_scope_id()?;
        // The fork hook first: a child forked from here on is added by it.
        self.attach_scope_hooks()?;
        let scope = u32::from(id);
        if let Err(e) = self.scope_tasks.insert(tgid, scope, 0) {
            if self.scopes.is_empty() {
                self.detach_scope_hooks()?;
            }
            return Err(Error::Bpf(format!("adding process {pid} to a scope: {e}")));
        }
        self.last_scope = id;
        self.scopes.insert(id, tgid);
        self.set_scope_count()?;
        // It may have exited before its entry existed: then no exit hook
        // removes it, and its pid, once reused, must not be traced.
        if !running(tgid) {
            self.remove_scope(id)?;
            return Err(Error::InvalidArgument(format!("process {pid} has exited")));
        }
        // Existing descendants, each added before its own children are read,
        // so none forked meanwhile is missed (the /proc-wide fallback reads a
        // snapshot first: a fork racing the walk may be missed there).
        let by_parent = (!std::path::Path::new(&format!("/proc/{tgid}/task/{tgid}/children"))
            .exists())
        .then(parent_map);
        let mut queue: VecDeque<u32> = children(tgid, by_parent.as_ref()).into();
        while let Some(p) = queue.pop_front() {
            if p == self.self_tgid || self.scope_tasks.get(&p, 0).is_ok() {
                continue;
            }
            // A full map leaves the rest untraced; the kernel counts its own.
            if self.scope_tasks.insert(p, scope, 0).is_err() {
                break;
            }
            // Exited before its entry existed: no exit hook will remove it.
            if !running(p) {
                let _ = self.scope_tasks.remove(&p);
                continue;
            }
            queue.extend(children(p, by_parent.as_ref()));
        }
        Ok(id)
    }

    /// Ends scope `id`: its processes leave it and its filters are removed;
    /// the fork and exit hooks go with the last scope. False when no such
    /// scope exists.
    ///
    /// # Errors
    /// A kernel refusal while removing filters or detaching.
    pub fn remove_scope(&mut self, id: u16) -> Result<bool> {
        if self.scopes.remove(&id).is_none() {
            return Ok(false);
        }
        let scope = u32::from(id);
        let keys: Vec<_> = self
            .keys
            .keys()
            .filter(|k| k.pid_ns == scope)
            .copied()
            .collect();
        for k in keys {
            self.remove_filter(k.pid_ns, k.nr)?;
        }
        for tgid in self.scope_pids(id) {
            let _ = self.scope_tasks.remove(&tgid);
        }
        self.set_scope_count()?;
        if self.scopes.is_empty() {
            self.detach_scope_hooks()?;
        }
        Ok(true)
    }

    /// Live scopes: (scope id, root pid).
    #[must_use]
    pub fn scopes(&self) -> Vec<(u16, u32)> {
        self.scopes.iter().map(|(&id, &root)| (id, root)).collect()
    }

    /// Processes (host tgids) in scope `id` now, sorted.
    #[must_use]
    pub fn scope_pids(&self, id: u16) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .scope_tasks
            .iter()
            .flatten()
            .filter(|&(_, s)| s == u32::from(id))
            .map(|(tgid, _)| tgid)
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether the fork/exit hooks that follow scoped processes are attached.
    #[must_use]
    pub fn scope_hooked(&self) -> bool {
        self.scope_links.is_some()
    }

    /// The next id after the last one handed out that is not in use, so an
    /// id (and its retired counters) is not reused soon after its removal.
    fn free_scope_id(&self) -> Result<u16> {
        let max = u16::try_from(abi::SCOPE_MAX).unwrap_or(u16::MAX);
        (1..=max)
            .map(|i| (u32::from(self.last_scope) + u32::from(i) - 1) % u32::from(max) + 1)
            .filter_map(|i| u16::try_from(i).ok())
            .find(|i| !self.scopes.contains_key(i))
            .ok_or_else(|| Error::InvalidArgument("every process scope id is in use".into()))
    }

    /// Publishes the scope count after scopes or their processes changed
    /// (and so makes every task's cached match stale).
    fn set_scope_count(&mut self) -> Result<()> {
        let n = u32::try_from(self.scopes.len()).unwrap_or(u32::MAX);
        self.scope_count
            .set(0, n, 0)
            .map_err(|e| Error::Bpf(format!("setting the scope count: {e}")))?;
        self.bump_match_gen()
    }

    fn attach_scope_hooks(&mut self) -> Result<()> {
        if self.scope_links.is_some() {
            return Ok(());
        }
        let fork = self
            .raw_prog(names::PROG_SCOPE_FORK)?
            .attach("sched_process_fork")
            .map_err(|e| load_error(e, "attaching to sched_process_fork"))?;
        let exit = match self
            .raw_prog(names::PROG_SCOPE_EXIT)?
            .attach("sched_process_exit")
        {
            Ok(l) => l,
            Err(e) => {
                let _ = self.raw_prog(names::PROG_SCOPE_FORK)?.detach(fork);
                return Err(load_error(e, "attaching to sched_process_exit"));
            }
        };
        self.scope_links = Some((fork, exit));
        Ok(())
    }

    fn detach_scope_hooks(&mut self) -> Result<()> {
        if let Some((fork, exit)) = self.scope_links.take() {
            self.raw_prog(names::PROG_SCOPE_FORK)?
                .detach(fork)
                .map_err(|e| Error::Bpf(format!("detaching the fork hook: {e}")))?;
            self.raw_prog(names::PROG_SCOPE_EXIT)?
                .detach(exit)
                .map_err(|e| Error::Bpf(format!("detaching the exit hook: {e}")))?;
        }
        Ok(())
    }
}
