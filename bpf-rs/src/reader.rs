//! The ring-buffer reader thread: waits on the ring fd with epoll (the probe
//! wakes it only when enough data is pending, so it also polls on a short
//! timer), drains records, validates them and hands batches to the consumer
//! through a bounded channel. When the consumer lags, the channel fills, the
//! reader stops draining and the kernel counts the drops per key: no record
//! is ever lost silently in user space.
//!
//! [`Reader::sync`] wakes the thread and waits until it has emptied the ring
//! once after the call: then every record the kernel wrote before it is
//! counted as read (`per_key`), however late the timer would have fired.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};

use crate::abi::{self, FilterKey};
pub use crate::batch::{Batch, RecordRun};
use crate::error::{Error, Result};

/// Called with the records per key of each batch taken out of the ring.
pub type OnRead = Box<dyn FnMut(&[(FilterKey, u64)]) + Send>;
/// Called when the ring was quiet for a poll period or a sync was asked
/// (the probe's hand-over of staged records, `StageFlusher::flush`).
pub type OnIdle = Box<dyn Fn() + Send>;

/// The records of one ring record, in order: `None` for a malformed tail
/// (a size that is too small or runs past the end), which ends the split.
fn split_records(item: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut off = 0usize;
    let mut bad = false;
    std::iter::from_fn(move || {
        if bad || off >= item.len() {
            return None;
        }
        let rest = &item[off..];
        let size = rest
            .get(4..8)
            .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]) as usize);
        if size < std::mem::size_of::<abi::SyscallEvent>() || size > rest.len() {
            bad = true;
            return Some(None);
        }
        off += size.div_ceil(8) * 8;
        Some(Some(&rest[..size]))
    })
}

/// Records handed over at most per batch.
pub const BATCH_RECORDS: usize = 8192;
const BATCH_BYTES: usize = 4 << 20;
/// Batches queued between the reader and the consumer.
const QUEUE_BATCHES: usize = 64;

/// Whether a batch is full: it goes to the consumer now.
fn is_full(b: &Batch) -> bool {
    b.offsets.len() >= BATCH_RECORDS || b.data.len() >= BATCH_BYTES
}

/// Counters kept by the reader thread.
#[derive(Debug, Default)]
pub struct ReaderCounters {
    /// Records taken out of the ring, per filter key.
    pub per_key: Mutex<HashMap<FilterKey, u64>>,
    pub records: AtomicU64,
    pub decode_errors: AtomicU64,
    pub batches: AtomicU64,
    pub wakeups: AtomicU64,
    sync: SyncState,
}

/// Requests of [`Reader::sync`] and the reader's answers.
#[derive(Debug, Default)]
struct SyncState {
    /// Requests made so far.
    requested: AtomicU64,
    /// State the waiters watch.
    done: Mutex<SyncDone>,
    cond: Condvar,
}

#[derive(Debug, Default)]
struct SyncDone {
    /// The requests made before the last pass that emptied the ring began.
    served: u64,
    /// The thread waits for the consumer (whatever it read is counted) or
    /// has stopped: no pass will end soon, a waiter does not wait for one.
    stalled: bool,
}

impl SyncState {
    fn set(&self, f: impl FnOnce(&mut SyncDone)) {
        if let Ok(mut d) = self.done.lock() {
            f(&mut d);
            self.cond.notify_all();
        }
    }
}

/// Owner side of the reader thread.
#[derive(Debug)]
pub struct Reader {
    rx: Mutex<Option<Receiver<Batch>>>,
    shutdown: Arc<AtomicBool>,
    wake: Mutex<Option<OwnedFd>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    pub counters: Arc<ReaderCounters>,
}

fn eventfd() -> Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(Error::io("eventfd", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh, valid descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn epoll_with(fds: &[i32]) -> Result<OwnedFd> {
    // SAFETY: plain syscall.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(Error::io("epoll_create1", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd we own.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for (i, &fd) in fds.iter().enumerate() {
        let mut ev = libc::epoll_event {
            // Edge-triggered: the ring's fd is readable whenever a record is
            // pending, so level-triggered epoll returns at once after every
            // pass under load (tiny batches, 2x the consumer's CPU per event,
            // benches throughput 2026-11-30). Edge-triggered, the reader wakes
            // when the kernel forces a wake-up (pending bytes crossed
            // `wakeup_bytes`), on the eventfd, or on the `poll_ms` timer.
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: i as u64,
        };
        // SAFETY: valid epoll fd, valid fd, valid event pointer.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &raw mut ev) } < 0 {
            return Err(Error::io("epoll_ctl", std::io::Error::last_os_error()));
        }
    }
    Ok(ep)
}

impl Reader {
    /// Starts the reader thread on `ring`; `poll_ms` bounds the latency of
    /// records that arrive without a wake-up.
    ///
    /// # Errors
    /// When the eventfd, epoll set or thread cannot be created.
    pub fn start(ring: RingBuf<MapData>, poll_ms: i32) -> Result<Self> {
        Self::start_with(ring, poll_ms, None, None)
    }

    /// Like [`Reader::start`]; `on_read` is called with the records per key
    /// of every batch taken out of the ring, before it is handed over (the
    /// probe's fair-share feedback, `Probe::read_feedback`).
    ///
    /// # Errors
    /// As [`Reader::start`].
    pub fn start_with(
        ring: RingBuf<MapData>,
        poll_ms: i32,
        on_read: Option<OnRead>,
        on_idle: Option<OnIdle>,
    ) -> Result<Self> {
        let wake = eventfd()?;
        let ep = epoll_with(&[ring.as_fd().as_raw_fd(), wake.as_raw_fd()])?;
        let (tx, rx) = sync_channel(QUEUE_BATCHES);
        let shutdown = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(ReaderCounters::default());
        let (sd, ctr) = (Arc::clone(&shutdown), Arc::clone(&counters));
        let wake_fd = wake.as_raw_fd();
        let handle = std::thread::Builder::new()
            .name("syshub-reader".into())
            .spawn(move || {
                run(
                    ring, &ep, wake_fd, &tx, &sd, &ctr, poll_ms, on_read, on_idle,
                )
            })
            .map_err(|e| Error::io("spawn reader thread", e))?;
        Ok(Self {
            rx: Mutex::new(Some(rx)),
            shutdown,
            wake: Mutex::new(Some(wake)),
            handle: Mutex::new(Some(handle)),
            counters,
        })
    }

    /// Waits up to `timeout` for the next batch. `Ok(None)` on timeout.
    ///
    /// # Errors
    /// [`Error::Closed`] once the reader has stopped and every batch was taken.
    pub fn recv(&self, timeout: Duration) -> Result<Option<Batch>> {
        let guard = self.rx.lock().map_err(|_| Error::Closed)?;
        let Some(rx) = guard.as_ref() else {
            return Err(Error::Closed);
        };
        match rx.recv_timeout(timeout) {
            Ok(b) => Ok(Some(b)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// Takes a batch if one is ready, without waiting.
    ///
    /// # Errors
    /// [`Error::Closed`] once the reader has stopped and every batch was taken.
    pub fn try_recv(&self) -> Result<Option<Batch>> {
        self.recv(Duration::ZERO)
    }

    /// Wakes the thread and waits up to `timeout` until it has emptied the
    /// ring once after this call, so that every record the kernel wrote
    /// before the call is counted in [`ReaderCounters::per_key`]. True if
    /// so; also true at once while the thread waits for the consumer (what it
    /// read is counted already) or once it has stopped.
    pub fn sync(&self, timeout: Duration) -> bool {
        let sync = &self.counters.sync;
        let ticket = sync.requested.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(wake) = self.wake.lock() {
            wake_up(wake.as_ref());
        }
        let end = Instant::now() + timeout;
        let Ok(mut d) = sync.done.lock() else {
            return false;
        };
        while d.served < ticket && !d.stalled {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            d = match sync.cond.wait_timeout(d, left) {
                Ok((g, _)) => g,
                Err(_) => return false,
            };
        }
        true
    }

    /// Stops the thread (idempotent). Batches already queued stay readable.
    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let Ok(mut wake) = self.wake.lock() else {
            return;
        };
        wake_up(wake.as_ref());
        if let Ok(mut h) = self.handle.lock()
            && let Some(h) = h.take()
        {
            let _ = h.join();
        }
        // Every descriptor goes with the thread: the ring and epoll fds with
        // its stack, the wake-up eventfd here.
        wake.take();
    }
}

/// Makes the reader's epoll wait return.
fn wake_up(fd: Option<&OwnedFd>) {
    if let Some(fd) = fd {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our own eventfd.
        let _ = unsafe { libc::write(fd.as_raw_fd(), (&raw const one).cast::<libc::c_void>(), 8) };
    }
}

/// Resets the eventfd (non-blocking): its counter goes back to 0, and the next
/// write reports it again.
fn clear_wake(fd: i32) {
    let mut v: u64 = 0;
    // SAFETY: reading 8 bytes into a local from an eventfd that outlives the
    // reader thread (closed only after it was joined).
    let _ = unsafe { libc::read(fd, (&raw mut v).cast::<libc::c_void>(), 8) };
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop();
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the reader thread's whole state, passed once"
)]
fn run(
    mut ring: RingBuf<MapData>,
    ep: &OwnedFd,
    wake_fd: i32,
    tx: &SyncSender<Batch>,
    shutdown: &AtomicBool,
    ctr: &ReaderCounters,
    poll_ms: i32,
    mut on_read: Option<OnRead>,
    on_idle: Option<OnIdle>,
) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
    let mut batch = Batch::default();
    let mut last_ticket = 0;
    'outer: while !shutdown.load(Ordering::Relaxed) {
        // SAFETY: valid epoll fd and buffer of 2 events.
        let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), 2, poll_ms) };
        if n > 0 {
            ctr.wakeups.fetch_add(1, Ordering::Relaxed);
            let n = usize::try_from(n).unwrap_or(0).min(events.len());
            if events[..n].iter().any(|e| {
                let which = e.u64;
                which == 1
            }) {
                clear_wake(wake_fd);
            }
        }
        // The sync requests made before this pass began are served once it
        // has emptied the ring (the eventfd was reset first: a request made
        // after this load wakes the next pass).
        let ticket = ctr.sync.requested.load(Ordering::SeqCst);
        // Records staged on a CPU reach the ring when its buffer fills or it
        // switches tasks; when the ring had nothing to say for a poll period,
        // or a sync was asked, every CPU hands over what it holds.
        if n == 0 || ticket != last_ticket {
            if let Some(f) = on_idle.as_ref() {
                f();
            }
            last_ticket = ticket;
        }
        // Drain until the ring is empty; only a full batch goes round again
        // at once. Going round after a partial batch would hand over the few
        // records written meanwhile, again and again: tiny batches under a
        // steady producer, and the consumer's CPU spent per batch. Records
        // written after the ring was found empty wait for the next wake-up.
        loop {
            let mut full = false;
            while let Some(item) = ring.next() {
                // One ring record holds one or more records (a CPU's staged
                // buffer is handed over whole).
                for rec in split_records(&item) {
                    if rec.and_then(|r| batch.push_record(r)).is_none() {
                        ctr.decode_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(item);
                if is_full(&batch) {
                    full = true;
                    break;
                }
            }
            // Hand over what was drained: a full batch, or whatever the ring had.
            if !batch.is_empty() {
                batch.per_key = batch.key_counts();
                ctr.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if let Some(f) = on_read.as_mut() {
                    f(&batch.per_key);
                }
                if let Ok(mut m) = ctr.per_key.lock() {
                    for (k, n) in &batch.per_key {
                        *m.entry(*k).or_default() += n;
                    }
                }
                // The next batch gets room for this one's size and a quarter
                // more (full batches differ by a staged buffer or so).
                let (n, bytes) = (batch.offsets.len(), batch.data.len());
                let next = Batch::with_capacity(n + n / 4, bytes + bytes / 4);
                let mut b = std::mem::replace(&mut batch, next);
                // Sized after a bigger batch: do not hold its room while queued.
                if b.data.capacity() > 2 * b.data.len() + (64 << 10) {
                    b.data.shrink_to_fit();
                    b.offsets.shrink_to_fit();
                }
                if !send(tx, b, shutdown, &ctr.sync) {
                    break 'outer;
                }
                ctr.batches.fetch_add(1, Ordering::Relaxed);
            }
            if !full {
                break;
            }
        }
        ctr.sync.set(|d| d.served = d.served.max(ticket));
    }
    ctr.sync.set(|d| d.stalled = true);
}

/// Sends, waiting while the consumer lags; false once shutting down or the
/// consumer is gone. While it waits, a sync does not wait for it.
fn send(tx: &SyncSender<Batch>, mut b: Batch, shutdown: &AtomicBool, sync: &SyncState) -> bool {
    let mut stalled = false;
    loop {
        match tx.try_send(b) {
            Ok(()) => {
                if stalled {
                    sync.set(|d| d.stalled = false);
                }
                return true;
            }
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                if shutdown.load(Ordering::Relaxed) {
                    return false;
                }
                if !stalled {
                    stalled = true;
                    sync.set(|d| d.stalled = true);
                }
                b = back;
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }
}
