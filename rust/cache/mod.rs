// SPDX-License-Identifier: GPL-2.0

//! One cache: a log of 1 MiB segments on a fast device, shared by the
//! devices attached to it.
//!
//! # Data path
//!
//! Writes are copied into the open segment's RAM buffer, laid out exactly
//! as the segment will be on disk (header block, then 255 line blocks), and
//! acknowledged. A full (or forced) segment is *sealed*; the flusher thread
//! writes sealed segments in id order, one sequential write each, then
//! completes the FLUSH/FUA bios that waited for them. The migrator thread
//! writes dirty lines back to the backing devices in log order, flushes
//! them, and records its progress in the on-disk record, after which the
//! segment slots it freed may be reused.
//!
//! Large writes (64 KiB and more, not FUA) on a superblock version 5 cache
//! are *direct*: the engine reserves their lines as for a copy, and the bio
//! is remapped to the lines' place on the cache device instead of being
//! copied (no RAM copy, no second write of the data). The flusher writes
//! such a segment once its direct writes ended, header last with
//! REQ_PREFLUSH (see `flush.rs`).
//!
//! # Locking
//!
//! `state` (a spinlock) guards the index and all bookkeeping; it is only
//! ever held for O(1) work (or O(255) when a segment opens, a bounded piece
//! of a discard) and never across I/O or a copy of bio data. Waiting is done on the condition variables
//! with the lock released. `record` (a mutex) serialises writes of the
//! on-disk record; it is taken without holding `state`. Nothing here runs in
//! interrupt context: the only interrupt-context code is in the C shim.
//!
//! # The protocol that makes the RAM buffers safe to share
//!
//! - A writer reserves a line (or an in-place update of a line of the open
//!   segment) under `state`, increments the buffer's `writers` and the
//!   line's `pending`, copies outside the lock, then decrements both.
//! - The flusher touches a sealed buffer only when `writers == 0`; after
//!   sealing no new writer can enter it. Only the flusher writes block 0.
//! - A reader of a line in RAM waits for the line's `pending` to drop to 0
//!   and holds the buffer's `readers` count while it copies.
//! - A buffer is reused only when its segment is on disk and it has no
//!   writers and no readers.
//! - A segment slot on disk is reused only when the on-disk record says its
//!   previous segment was migrated, and no read remapped to it is in flight.

mod flush;
mod migrate;
mod recover;

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex, SpinLock};
use kernel::{new_condvar, new_mutex, new_spinlock};

use crate::ffi::{self, Bio, BioList, BdevFile, IoKind, KThread, ModuleRef, ThreadBody, Msg, SharedBuf, SysfsDir};
use crate::wbformat::engine::{
    self as eng, AroundStep, BufLine, DetachStep, DevMeta, DiscardRange, DiscardStep, Engine, FlushStep, InjectStep, Parts, ReadStep, SlotMeta, Wait, WriteStep, WriteTicket,
};
use crate::wbformat::format::{self as fmt, Discard, Geometry};
use crate::wbformat::index::{self as idx, LineMeta, Link};

pub(crate) use migrate::MAX_BATCH;
pub(crate) use recover::{format_device, resume, start_failed, Devices};

/// RAM buffers per cache (1 MiB each).
pub(crate) const NR_BUFS: usize = eng::NR_BUFS;
/// Longest a write or discard waits for room in the log before it fails
/// with EIO (ms), counted from the later of its first wait and the last
/// progress of write-back, unless a round is in flight when the time is up. Room comes from write-back; it does not come when the cache device
/// failed or when parked lines of failing devices fill it.
pub(crate) const SPACE_TIMEOUT_MS: u64 = 30_000;
const SEG_BYTES: usize = fmt::SEGMENT_SECTORS as usize * 512;
const BLOCK: usize = fmt::BLOCK_SIZE as usize;
const SLOTS: usize = fmt::REGISTRY_ENTRIES;
/// Default `idle_seal_ms`: an idle open RAM buffer reaches the cache device
/// (and can be written back) within seconds, without a daemon or a flush.
pub(crate) const DEFAULT_IDLE_SEAL_MS: u32 = 5000;

/// A device's lines in a cache, for messages (see [`Cache::held`]).
pub(crate) struct Held(pub(crate) u64);

impl core::fmt::Display for Held {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 == 0 {
            f.write_str("lines written back but not yet on the record")
        } else {
            write!(f, "{} dirty lines", self.0)
        }
    }
}

/// Tunables, readable without the lock.
pub(crate) struct Tunables {
    pub(crate) allow_migrate: AtomicBool,
    pub(crate) force_migrate: AtomicBool,
    pub(crate) barrier_deadline_ms: AtomicU32,
    pub(crate) nr_max_batched_migration: AtomicU32,
    pub(crate) update_interval: AtomicU32,
    pub(crate) commit_super_block_interval: AtomicU32,
    pub(crate) flush_current_buffer_interval: AtomicU32,
    /// The flusher seals the open RAM buffer after this many milliseconds
    /// without a write into it (0: never).
    pub(crate) idle_seal_ms: AtomicU32,
    /// Write-around mode: writes go to the backing devices, cached copies
    /// of the written sectors are dropped ([`Cache::map_write_around`]).
    pub(crate) write_around: AtomicBool,
}

/// The engine's storage in the kernel: vmalloc'd vectors; the three that
/// grow with the cache are [`ffi::BigVec`]s (a lack of memory fails the
/// resume instead of invoking the OOM killer).
pub(crate) struct KStore;

impl eng::Storage for KStore {
    type Lines = ffi::BigVec<LineMeta>;
    type Buckets = ffi::BigVec<Link>;
    type Slots = ffi::BigVec<SlotMeta>;
    type BufLines = kernel::alloc::VVec<BufLine>;
    type Discards = kernel::alloc::VVec<Discard>;
    type Devs = kernel::alloc::VVec<DevMeta>;
    type Cells = kernel::alloc::VVec<eng::StageCell>;
}

/// Everything guarded by the cache spinlock: the engine (every decision)
/// and the bios it holds.
///
/// # Invariants
///
/// `barriers[b]` is non-empty only while the engine's buffer `b` has
/// `barriers` set or is being written by the flusher; `flush_only` holds
/// the bios the engine answered [`FlushStep::FlushOnly`] for.
pub(crate) struct State {
    /// On the heap (about 1 KiB): the state is built deep in a DM ioctl's
    /// or a table load's stack.
    pub(crate) eng: KBox<Engine<KStore>>,
    /// FLUSH/FUA bios completed once buffer `b`'s segment is durable.
    pub(crate) barriers: [BioList; NR_BUFS],
    /// Bios needing only a cache-device flush.
    pub(crate) flush_only: BioList,
    /// Threads waiting on `Cache::space` (counted under this lock, see
    /// [`Cache::wait_space`]): the I/O path wakes `space` only when this is
    /// not 0, so a write nobody waits for costs no wait-queue operation.
    pub(crate) space_waiters: u32,
    /// Staged reads for the stager thread (read caching): the bios, in
    /// order, and for each its device, sector and the clean line's ticket.
    pub(crate) stage_bios: BioList,
    /// A ring of [`STAGE_Q`] entries (on the heap: the state is built on
    /// a deep stack).
    pub(crate) stage_q: KVec<Option<(u8, u64, WriteTicket)>>,
    pub(crate) stage_head: usize,
    pub(crate) stage_len: usize,
    /// Write-around writes whose drop is reserved, for the flusher to
    /// write ([`Cache::do_around`]; the engine lets at most `MAX_AROUND`
    /// be in flight).
    pub(crate) around_q: [Option<AroundJob>; eng::MAX_AROUND],
    /// Reads remapped to the cache device that its logical block size
    /// does not allow as they are, for the stager ([`Cache::bounce_read`]).
    pub(crate) bounce: BioList,
}

/// A write-around write for the flusher (see [`Cache::map_write_around`]).
pub(crate) struct AroundJob {
    bio: Bio,
    t: eng::AroundTicket,
    dev: u8,
    sector: u64,
    sectors: u32,
}

/// Most staged reads queued for the stager thread.
pub(crate) const STAGE_Q: usize = 32;

/// The cache threads (stopped by [`Cache::shutdown`]).
struct Threads {
    _flusher: KThread<flush::Flusher>,
    _migrator: KThread<migrate::Migrator>,
    _stager: KThread<Stager>,
    _completer: KThread<Completer>,
}

/// The completion thread of direct writes: ends the tickets of completed
/// direct writes under the cache lock (which their interrupt-context
/// completion cannot take), then the bios.
struct Completer {
    cache: Arc<Cache>,
}

impl ThreadBody for Completer {
    fn run(&self) {
        let c = &*self.cache;
        loop {
            let mut done = c.dq.take(1000);
            if done.is_empty() && ffi::should_stop() {
                return;
            }
            while let Some(bio) = done.pop() {
                c.end_direct(bio);
            }
        }
    }
}

/// Bytes of the stager's bounce buffer (see [`Cache::bounce_read`]).
const BOUNCE_BYTES: usize = 64 * 1024;
/// Most sectors of one bounced read: with a partial logical block at
/// either end (at most 7 sectors each), it fits [`BOUNCE_BYTES`].
const BOUNCE_MAX_SECTORS: u32 = (BOUNCE_BYTES / 512) as u32 - 16;

/// The stager thread: reads staged blocks from the backing device into
/// their clean lines and completes the read bios from there. (A read
/// submitted from the map function would wait on the submitter's own
/// bio list: the block layer dispatches it only after map returns.) It
/// also serves reads of the cache device that its logical block size
/// does not allow as they are ([`Cache::bounce_read`]).
struct Stager {
    cache: Arc<Cache>,
    bounce: SharedBuf,
}

impl ThreadBody for Stager {
    fn run(&self) {
        let c = &*self.cache;
        loop {
            let job = {
                let mut g = c.lock();
                loop {
                    if let Some(bio) = g.bounce.pop() {
                        drop(g);
                        c.bounce_read(bio, &self.bounce);
                        g = c.lock();
                        continue;
                    }
                    if g.stage_len > 0 {
                        let h = g.stage_head;
                        let e = g.stage_q.get_mut(h).and_then(|x| x.take());
                        g.stage_head = (h + 1) % STAGE_Q;
                        g.stage_len -= 1;
                        let bio = g.stage_bios.pop();
                        break e.zip(bio);
                    }
                    // Stopped only with nothing queued (shutdown flushes
                    // first, which waits for the queued lines' copies; no
                    // read is bounced once the engine stopped).
                    if ffi::should_stop() {
                        return;
                    }
                    let _ = c.stage_cv.wait_interruptible_timeout(&mut g, kernel::time::msecs_to_jiffies(1000));
                }
            };
            if let Some(((dev, sector, w), bio)) = job {
                c.stage_read(dev, sector, bio, w);
            }
        }
    }
}

/// One cache.
///
/// # Invariants
///
/// `bufs[b]` is the RAM buffer of the engine's buffer `b`; `inflight[s]`
/// counts reads remapped to slot `s` still in flight (decremented by the C
/// `end_io`), and the engine never reuses a slot whose count is not 0.
#[pin_data]
pub(crate) struct Cache {
    pub(crate) id: u8,
    pub(crate) dev: BdevFile,
    pub(crate) geo: Geometry,
    pub(crate) format_id: u64,
    /// How this cache's segments are checksummed (from its superblock).
    pub(crate) sum: fmt::SegmentSum,
    #[pin]
    pub(crate) state: SpinLock<State>,
    /// Writers and readers waiting for space or a line; flush waiters.
    #[pin]
    pub(crate) space: CondVar,
    /// The flusher's wake-up.
    #[pin]
    pub(crate) flusher_cv: CondVar,
    /// The migrator's wake-up.
    #[pin]
    pub(crate) migrator_cv: CondVar,
    /// The stager's wake-up.
    #[pin]
    pub(crate) stage_cv: CondVar,
    /// Serialises record writes (and holds their scratch block).
    #[pin]
    pub(crate) record: Mutex<KBox<RecordScratch>>,
    /// Backing devices of the devices with data in this cache.
    #[pin]
    pub(crate) backings: Mutex<Backings>,
    #[pin]
    threads: Mutex<Option<Threads>>,
    #[pin]
    sysfs: Mutex<Option<SysfsDir>>,
    pub(crate) bufs: KVec<SharedBuf>,
    /// Direct writes into each RAM buffer's segment still in flight (see
    /// [`Cache::map_write`]): the flusher writes the segment only when its
    /// count is 0.
    pub(crate) direct: KVec<ffi::WaitCount>,
    /// Completed direct writes, for the completion thread
    /// ([`Cache::end_direct`]).
    pub(crate) dq: ffi::DirectQueue,
    /// Reads remapped to each segment slot that are still in flight.
    pub(crate) inflight: KVVec<AtomicI32>,
    pub(crate) tun: Tunables,
    /// Incremented whenever a segment is written (idle detection).
    pub(crate) flushes: AtomicU64,
    /// The RAM buffers were written straight to the backing devices after
    /// the cache device failed ([`migrate::salvage`], done once).
    pub(crate) salvaged: AtomicBool,
    /// Writers out of room (see [`SPACE_TIMEOUT_MS`]).
    no_room: NoRoom,
    /// Rate limits of log lines a failing disk could repeat.
    log_limits: LogLimits,
    /// The cache device's logical block size in sectors (1 for 512-byte
    /// sectors, 8 for 4 KiB).
    lbs_sectors: u64,
    /// Write-back counters (manager status).
    pub(crate) wb_stats: WbStats,
    /// The migrator's last cache-device I/O failed (a record write, or a
    /// read of a round or a relocation): the record may not move.
    pub(crate) mig_io_failing: AtomicBool,
    _module: ModuleRef,
}

/// The backing devices a cache knows, by device id (it derefs to `files`).
pub(crate) struct Backings {
    /// Opened shared, for write-back, while the device has data here; one
    /// per device id (on the heap, as `claims`).
    pub(crate) files: KVec<Option<Arc<BdevFile>>>,
    /// Exclusive claims of the backing disks of removed devices that still
    /// have dirty data here (see [`Cache::claim_if_dirty`]); one per
    /// device id (on the heap: the cache is built on a deep stack).
    claims: KVec<Option<BdevFile>>,
    /// Removed devices whose disk could not be claimed (another table or
    /// exclusive user holds it): their write-back is paused, and the
    /// migrator tries the claim again at each retry (see
    /// [`Backings::claim_paused`]); one per device id.
    paused: KVec<bool>,
}

impl Backings {
    /// No device's file, claim or pause. Not inlined: its frame stays off
    /// `new_cache`'s deep stack.
    #[inline(never)]
    fn new() -> Result<Self> {
        let mut b = Self { files: KVec::with_capacity(SLOTS, GFP_KERNEL)?, claims: KVec::with_capacity(SLOTS, GFP_KERNEL)?, paused: KVec::with_capacity(SLOTS, GFP_KERNEL)? };
        for _ in 0..SLOTS {
            b.files.push(None, GFP_KERNEL)?;
            b.claims.push(None, GFP_KERNEL)?;
            b.paused.push(false, GFP_KERNEL)?;
        }
        Ok(b)
    }

    /// The write-back of device `dev` is due: `false` if it is paused (a
    /// removed device's disk that this cache does not hold) and the disk
    /// still cannot be claimed. A claim that succeeds now ends the pause.
    /// Under the backings lock, so a constructor of `dev` (which first
    /// gives up the claims and pauses of its id, [`Cache::release_claim`])
    /// never finds its disk claimed by a retry that read an old state.
    pub(crate) fn claim_paused(&mut self, cache: u8, dev: u8) -> bool {
        let d = dev as usize;
        if !self.paused.get(d).copied().unwrap_or(false) {
            return true;
        }
        let Some(devt) = self.files.get(d).and_then(|x| x.as_ref().map(|f| f.bdev().devt())) else {
            return false;
        };
        let Ok(f) = BdevFile::claim_devt(devt) else { return false };
        if let (Some(c), Some(p)) = (self.claims.get_mut(d), self.paused.get_mut(d)) {
            *c = Some(f);
            *p = false;
        }
        pr_info!(
            "cache {}: claimed backing device {} of removed device_id {}: its write-back goes on; create device_id {} over it to use it\n",
            cache,
            ffi::DevT(devt),
            dev,
            dev
        );
        true
    }
}

impl core::ops::Deref for Backings {
    type Target = [Option<Arc<BdevFile>>];
    fn deref(&self) -> &Self::Target {
        &self.files
    }
}

impl core::ops::DerefMut for Backings {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.files
    }
}

/// When a rate-limited log line was last logged (ms; see [`ffi::every_10s`]).
struct LogLimits {
    /// A write-around write to a backing device failed.
    around_ms: AtomicU64,
    /// A bounced read of the cache device failed.
    cache_read_ms: AtomicU64,
}

/// Writers that found no room in the log.
struct NoRoom {
    /// When the last "no room" error was logged (ms; rate limit).
    log_ms: AtomicU64,
    /// A bio timed out waiting for room; cleared when the record moves.
    stalled: AtomicBool,
    /// When write-back last made progress (ms): a round wrote lines back,
    /// or a relocation moved lines or the record moved leaving writers
    /// room (`Engine::writer_room`).
    progress_ms: AtomicU64,
}

/// Cumulative write-back counters of a cache (since it was resumed).
#[derive(Default)]
pub(crate) struct WbStats {
    /// Write-back rounds that read their segments.
    pub(crate) rounds: AtomicU64,
    /// Write I/Os they sent to backing devices (after merging).
    pub(crate) ios: AtomicU64,
    /// Bytes those carried.
    pub(crate) bytes: AtomicU64,
}

impl WbStats {
    /// Counts one round that submitted `n`.
    pub(crate) fn round(&self, n: migrate::WriteBackCount) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        self.ios.fetch_add(n.ios, Ordering::Relaxed);
        self.bytes.fetch_add(n.bytes, Ordering::Relaxed);
    }
}

impl Cache {
    /// Logs a failed write-around write (at most once per 10 s per cache).
    fn pr_err_ratelimited_around(&self, dev: u8) {
        if ffi::every_10s(&self.log_limits.around_ms) {
            pr_err!("cache {}: write-around write of device {} to its backing device failed; its cached copies are kept\n", self.id, dev);
        }
    }

    /// Write-back made progress now (see `NoRoom::progress_ms`).
    pub(crate) fn progressed(&self) {
        self.no_room.progress_ms.store(ffi::now_ms(), Ordering::Relaxed);
    }
}


/// Where a mapped bio goes.
pub(crate) enum Routed {
    /// To the backing device at this (device-relative) sector.
    Backing(Bio, u64),
    /// Already remapped to the cache device: return it to DM.
    Remapped(Bio),
    /// Completed or held by the cache.
    Done,
    /// The device is not attached to this cache (any more): send it to the
    /// backing device at this sector.
    NotAttached(Bio, u64),
    /// A write-around write: send it to the backing device at this sector;
    /// a later FLUSH must reach the backing device too.
    Around(Bio, u64),
}

type Guard<'a> = kernel::sync::lock::Guard<'a, State, kernel::sync::lock::spinlock::SpinLockBackend>;

impl Cache {
    pub(crate) fn lock(&self) -> Guard<'_> {
        self.state.lock()
    }

    /// Drops the lock, then wakes the flusher if a segment was sealed since
    /// `sealed_upto` was `sealed` (its last writer may have finished before
    /// it was sealed, so nobody else would).
    fn unlock_waking_flusher(&self, g: Guard<'_>, sealed: u64) {
        let seal_wake = g.eng.sealed_upto() != sealed;
        drop(g);
        if seal_wake {
            self.flusher_cv.notify_all();
        }
    }

    fn slot_busy(&self) -> impl Fn(u32) -> bool + '_ {
        move |slot| self.inflight.get(slot as usize).map_or(0, |c| c.load(Ordering::Acquire)) > 0
    }

    fn deadline_ms(&self) -> u64 {
        u64::from(self.tun.barrier_deadline_ms.load(Ordering::Relaxed))
    }

    /// Waits as the engine asked: on `space` with the lock, or a short sleep
    /// without it. The migrator is woken (a full log makes it urgent).
    /// `None` (the lock released): the bio has waited for room since
    /// `since` (ms) for longer than [`SPACE_TIMEOUT_MS`] and must fail.
    fn wait<'a>(&'a self, mut g: Guard<'a>, w: Wait, since: u64) -> Option<Guard<'a>> {
        self.migrator_cv.notify_all();
        self.flusher_cv.notify_all();
        match w {
            Wait::Space => {
                let now = ffi::now_ms();
                // Once one bio timed out, the others fail at once until the
                // record moves again (a large write is many bios).
                // A write-back round in flight is progress (a round of many
                // segments on a slow disk takes long): keep waiting then.
                let stalled = self.no_room.stalled.load(Ordering::Relaxed);
                let from = since.max(self.no_room.progress_ms.load(Ordering::Relaxed));
                if stalled || (now.saturating_sub(from) > SPACE_TIMEOUT_MS && !g.eng.round_in_flight()) {
                    drop(g);
                    self.no_room.stalled.store(true, Ordering::Relaxed);
                    if ffi::every_10s(&self.no_room.log_ms) {
                        pr_err!(
                            "cache {}: no room in the log for {} s (write-back cannot make room: see the devices' writeback_errors); writes of devices with nothing in the log go around it to their backing devices, the others fail with EIO\n",
                            self.id,
                            SPACE_TIMEOUT_MS / 1000
                        );
                    }
                    return None;
                }
                let r = self.wait_space_for(&mut g, 100);
                if matches!(r, kernel::sync::CondVarTimeoutResult::Signal { .. }) {
                    // A pending signal ends interruptible waits at once:
                    // sleep instead of spinning.
                    drop(g);
                    ffi::msleep(10);
                    return Some(self.lock());
                }
                Some(g)
            }
            Wait::Pending => {
                // Woken by the end of a copy (`space_waiters` is counted).
                let _ = self.wait_space_for(&mut g, 100);
                Some(g)
            }
            Wait::Sleep(ms) => {
                drop(g);
                ffi::msleep(ms);
                Some(self.lock())
            }
        }
    }

    /// Waits on `space` with the lock (released while asleep), at most
    /// `ms` milliseconds (0: until woken). Counted in `space_waiters`: a
    /// waiter is registered under the lock before it sleeps, so a waker
    /// that checks the count under the lock cannot miss it.
    fn wait_space_for(&self, g: &mut Guard<'_>, ms: u32) -> kernel::sync::CondVarTimeoutResult {
        g.space_waiters = g.space_waiters.saturating_add(1);
        let r = if ms == 0 {
            self.space.wait(g);
            kernel::sync::CondVarTimeoutResult::Woken { jiffies: 0 }
        } else {
            self.space.wait_interruptible_timeout(g, kernel::time::msecs_to_jiffies(ms))
        };
        g.space_waiters = g.space_waiters.saturating_sub(1);
        r
    }

    /// [`Cache::wait_space_for`] without a time limit.
    pub(crate) fn wait_space(&self, g: &mut Guard<'_>) {
        let _ = self.wait_space_for(g, 0);
    }

    /// Seals the open segment (if it holds anything) so the flusher writes it.
    pub(crate) fn seal_locked(&self, st: &mut State) {
        if st.eng.seal() {
            self.flusher_cv.notify_all();
        }
    }

    // -----------------------------------------------------------------------
    // map(): classify, then act. The engine decides; this code moves bytes
    // and completes bios.
    // -----------------------------------------------------------------------

    /// Handles a write of device `dev` at device-relative `sector`.
    ///
    /// The engine takes as much of the bio as goes to consecutive lines of
    /// the open segment (a whole segment's worth in one call); the bio is
    /// cut there (DM maps the rest again), copied in one piece and
    /// completed (or held, for FUA).
    ///
    /// A *direct* ticket (a write of whole 4 KiB blocks, at least
    /// [`eng::DIRECT_MIN_SECTORS`], without FUA, on a cache of superblock
    /// version 5, or an aligned write into a line that is already direct) is not
    /// copied: the bio is remapped to the lines' place on the cache device
    /// and completes when that write does. Its count in `direct[buf]`
    /// keeps the flusher from writing the segment's header before it ends.
    pub(crate) fn map_write(&self, dev: u8, sector: u64, mut bio: Bio) -> Routed {
        let n = bio.sectors();
        if n == 0 {
            bio.end(Err(EIO));
            return Routed::Done;
        }
        let barrier = bio.is_fua() || bio.is_preflush();
        // Only whole 4 KiB blocks go direct: a cache device with 4 KiB
        // logical blocks refuses anything finer (the RAM path writes whole
        // segments). An unaligned write into a direct line seals its
        // segment and takes a new line, as a FUA write does.
        let aligned = sector % fmt::SECTORS_PER_BLOCK == 0 && u64::from(n) % fmt::SECTORS_PER_BLOCK == 0;
        let mode = if barrier || !aligned {
            eng::Direct::No
        } else if n >= eng::DIRECT_MIN_SECTORS {
            eng::Direct::Want
        } else {
            eng::Direct::May
        };
        let since = ffi::now_ms();
        let mut g = self.lock();
        let sealed = g.eng.sealed_upto();
        let t = loop {
            match g.eng.begin_write(dev, sector, n, &self.slot_busy(), mode) {
                WriteStep::Go(t) => {
                    if t.sectors < n {
                        bio.accept_partial(t.sectors);
                    }
                    break t;
                }
                WriteStep::Wait(w) => match self.wait(g, w, since) {
                    Some(x) => g = x,
                    None => {
                        if let Some(sectors) = self.around_when_full(dev, sector, n) {
                            if sectors < n {
                                bio.accept_partial(sectors);
                            }
                            return Routed::Around(bio, sector);
                        }
                        bio.end(Err(EIO));
                        return Routed::Done;
                    }
                },
                WriteStep::NotAttached => return Routed::NotAttached(bio, sector),
                WriteStep::Fail => {
                    drop(g);
                    bio.end(Err(EIO));
                    return Routed::Done;
                }
            }
        };
        if t.direct {
            return self.write_direct(g, sealed, t, bio);
        }
        // A full segment sealed by this write goes to the flusher now.
        self.unlock_waking_flusher(g, sealed);
        let copied = match self.bufs.get(t.buf) {
            Some(buf) => buf.fill_from_bio(t.byte_off, &bio),
            None => Err(EINVAL),
        };
        if copied.is_err() {
            pr_err!("cache {}: copy into RAM buffer failed (internal error)\n", self.id);
        }
        let mut g = self.lock();
        let done = g.eng.end_write(t, copied.is_ok(), barrier, ffi::now_ms(), self.deadline_ms());
        let bio = if done.hold {
            if let Some(l) = g.barriers.get_mut(t.buf) {
                l.push(bio);
            }
            None
        } else {
            Some(bio)
        };
        // Readers may wait for these lines' copy, writers for the buffer.
        let waiters = g.space_waiters > 0;
        drop(g);
        if done.wake_flusher {
            self.flusher_cv.notify_all();
        }
        if waiters {
            self.space.notify_all();
        }
        if let Some(bio) = bio {
            bio.end(copied.map_err(|_| EIO));
        }
        Routed::Done
    }

    /// No room in the log for [`SPACE_TIMEOUT_MS`] (write-back cannot make
    /// any: parked data fills the log): a write of a device with nothing
    /// in the log that a replay would read (nothing cached, read caching
    /// off) goes around the cache to its backing device, a write-around
    /// write that needs no log entry (`Engine::write_around`), so parked
    /// data of other devices does not fail a healthy device's writes.
    /// Returns the sectors to remap (the caller sets the device's
    /// pass-through flag: a FLUSH then reaches the backing device), or
    /// `None`: the write fails. Not for a 2.2 table's private cache (id 0),
    /// whose FLUSH does not reach the backing device.
    fn around_when_full(&self, dev: u8, sector: u64, n: u32) -> Option<u32> {
        if self.id == 0 {
            return None;
        }
        let mut g = self.lock();
        if !g.eng.around_unlogged(dev) {
            return None;
        }
        match g.eng.write_around(dev, sector, n, &self.slot_busy()) {
            AroundStep::Pass { sectors, logged: None } => Some(sectors),
            AroundStep::Pass { logged: Some(t), .. } => {
                g.eng.end_around(t, false);
                None
            }
            _ => None,
        }
    }

    /// The direct part of [`Cache::map_write`]: counts the write in flight
    /// for its buffer (under the lock, before the engine may hand the
    /// segment to the flusher) and remaps the bio to the cache device. The
    /// ticket stays open (its lines pending: reads of them wait) until the
    /// write completes and the completion thread ends it
    /// ([`Cache::end_direct`]).
    fn write_direct(&self, mut g: Guard<'_>, sealed: u64, t: WriteTicket, mut bio: Bio) -> Routed {
        let words = [t.buf as u32, t.k, t.nr_lines, t.byte_off as u32, t.sectors];
        let Some(w) = self.direct.get(t.buf) else {
            let _ = g.eng.end_write(t, false, false, ffi::now_ms(), self.deadline_ms());
            drop(g);
            pr_err!("cache {}: direct write into an unknown buffer (internal error)\n", self.id);
            bio.end(Err(EIO));
            return Routed::Done;
        };
        w.inc();
        self.unlock_waking_flusher(g, sealed);
        // `w` and `self.dq` live as long as the cache; the completion
        // thread ends every queued bio while the cache lives (it stops
        // only in `shutdown`, after the cache's devices are gone); and a
        // cache outlives the devices whose bios it maps (DM ends a
        // device's bios before its destructor runs).
        // SAFETY: so `w` and `dq` outlive the bio.
        unsafe { bio.set_direct(w, &self.dq, &words) };
        bio.remap(self.dev.bdev(), t.cache_sector);
        Routed::Remapped(bio)
    }

    /// A direct write completed (taken from `dq` by the completion thread):
    /// ends its ticket with its status, then the bio. A failure puts the
    /// cache in error (the engine marks the write's sectors lost: reads of
    /// them fail).
    pub(crate) fn end_direct(&self, bio: Bio) {
        let ([buf, k, nr_lines, byte_off, sectors], status) = bio.direct_ticket();
        let t = WriteTicket { buf: buf as usize, k, nr_lines, byte_off: byte_off as usize, sectors, direct: true, cache_sector: 0 };
        let ok = status == 0;
        let mut g = self.lock();
        let first_error = !ok && g.eng.error().is_none();
        let done = g.eng.end_write(t, ok, false, ffi::now_ms(), self.deadline_ms());
        let waiters = g.space_waiters > 0;
        drop(g);
        if done.wake_flusher {
            self.flusher_cv.notify_all();
        }
        if waiters {
            self.space.notify_all();
        }
        if first_error {
            pr_err!("cache {}: a direct write to the cache device failed (error {}): the cache stops accepting writes\n", self.id, status);
        }
        bio.end(if ok { Ok(()) } else { Err(Error::from_errno(status)) });
    }

    /// Handles a write of device `dev` at device-relative `sector` in
    /// write-around mode (see `Engine::write_around`): one piece of at most
    /// 1 MiB per call (DM maps the rest again). When the device has nothing
    /// in the log a replay would read, the bio is remapped to `backing`
    /// as it is. Otherwise a drop entry is reserved, the flusher writes the
    /// data with `REQ_PREFLUSH | REQ_FUA`, and only then are
    /// the cached copies dropped and the drop logged (on failure the cache
    /// keeps them and the bio fails); a FUA bio is then held until the
    /// drop is durable too.
    pub(crate) fn map_write_around(&self, dev: u8, sector: u64, mut bio: Bio) -> Routed {
        let n = bio.sectors();
        if n == 0 {
            bio.end(Err(EIO));
            return Routed::Done;
        }
        let since = ffi::now_ms();
        let mut g = self.lock();
        let sealed = g.eng.sealed_upto();
        let (sectors, ticket) = loop {
            match g.eng.write_around(dev, sector, n, &self.slot_busy()) {
                AroundStep::Pass { sectors, logged } => break (sectors, logged),
                AroundStep::Wait(w) => match self.wait(g, w, since) {
                    Some(x) => g = x,
                    None => {
                        bio.end(Err(EIO));
                        return Routed::Done;
                    }
                },
                AroundStep::Cache => {
                    drop(g);
                    return self.map_write(dev, sector, bio);
                }
                AroundStep::Fail => {
                    drop(g);
                    bio.end(Err(EIO));
                    return Routed::Done;
                }
            }
        };
        self.unlock_waking_flusher(g, sealed);
        if sectors < n {
            bio.accept_partial(sectors);
        }
        let Some(t) = ticket else { return Routed::Around(bio, sector) };
        // The data is written by the flusher thread: a synchronous write
        // from map() would wait for a bio queued behind this one. A
        // stopping cache's flusher may be gone: fail it (nothing dropped).
        let mut g = self.lock();
        let stopping = g.eng.stopping();
        match g.around_q.iter_mut().find(|q| q.is_none()).filter(|_| !stopping) {
            Some(q) => *q = Some(AroundJob { bio, t, dev, sector, sectors }),
            None => {
                g.eng.end_around(t, false);
                drop(g);
                bio.end(Err(EIO));
                return Routed::Done;
            }
        }
        drop(g);
        self.flusher_cv.notify_all();
        Routed::Done
    }

    /// The flusher's part of a write-around write whose drop is reserved:
    /// writes the data with `REQ_PREFLUSH | REQ_FUA`, then lets the engine
    /// drop the cached copies and log the drop (or keep them, on failure);
    /// completes the bio, or holds a FUA bio until the drop is durable.
    pub(crate) fn do_around(&self, j: AroundJob) {
        let AroundJob { bio, t, dev, sector, sectors } = j;
        let backing = self.backings.lock().get(dev as usize).and_then(|x| x.clone());
        let r = match backing {
            Some(b) => SharedBuf::new(bio.bytes()).and_then(|buf| {
                buf.fill_from_bio(0, &bio)?;
                buf.io(b.bdev(), sector, u64::from(sectors), 0, IoKind::WriteFlushFua)
            }),
            None => Err(EIO),
        };
        let mut g = self.lock();
        g.eng.end_around(t, r.is_ok());
        let mut bio = Some(bio);
        if r.is_ok() && bio.as_ref().is_some_and(|b| b.is_fua()) {
            // Acknowledged once the drop is durable, as an empty flush.
            match g.eng.begin_flush(ffi::now_ms(), self.deadline_ms()) {
                FlushStep::Done | FlushStep::Fail => {}
                FlushStep::FlushOnly => {
                    if let Some(b) = bio.take() {
                        g.flush_only.push(b);
                    }
                }
                FlushStep::Held(x) => {
                    if let (Some(b), Some(l)) = (bio.take(), g.barriers.get_mut(x)) {
                        l.push(b);
                    }
                }
            }
        }
        let failed = g.eng.error().is_some();
        drop(g);
        self.space.notify_all();
        if let Some(b) = bio {
            if r.is_err() {
                self.pr_err_ratelimited_around(dev);
            }
            b.end(if failed { Err(EIO) } else { r.map_err(|_| EIO) });
        }
    }

    /// Handles a read of device `dev` at device-relative `sector`.
    ///
    /// The engine answers with the longest prefix of one source (the
    /// backing device, a RAM buffer, or consecutive lines on the cache
    /// device); the bio is cut there and DM maps the rest again. An
    /// uncached read thus goes to the backing device whole.
    ///
    /// With read caching on, a full aligned 4 KiB miss may be staged: it is
    /// injected as a clean line at once (under the same lock hold as the
    /// miss, so no write or write-back of the block can come in between),
    /// read from the backing device into the reserved line by the stager
    /// thread while the line's copy is pending (readers and writers of the
    /// block wait), and served from there.
    pub(crate) fn map_read(&self, dev: u8, sector: u64, mut bio: Bio) -> Routed {
        let n = bio.sectors();
        if n == 0 {
            bio.end(Err(EIO));
            return Routed::Done;
        }
        let mut g = self.lock();
        loop {
            match g.eng.begin_read(dev, sector, n) {
                ReadStep::WaitPending => self.wait_space(&mut g),
                ReadStep::Fail { run } => {
                    // Sectors whose direct write failed: not on the cache
                    // device (the cache is in error, logged then).
                    drop(g);
                    if run < n {
                        bio.accept_partial(run);
                    }
                    bio.end(Err(EIO));
                    return Routed::Done;
                }
                ReadStep::Backing { run } => {
                    if run == 8 && n == 8 && sector % 8 == 0 && g.stage_len < STAGE_Q && !g.eng.stopping() {
                        if let Some(t) = g.eng.stage_begin(dev, sector, 8) {
                            let sealed = g.eng.sealed_upto();
                            if let InjectStep::Go(w) = g.eng.stage_inject(t, &self.slot_busy()) {
                                let i = (g.stage_head + g.stage_len) % STAGE_Q;
                                if let Some(x) = g.stage_q.get_mut(i) {
                                    *x = Some((dev, sector, w));
                                }
                                g.stage_len += 1;
                                g.stage_bios.push(bio);
                                self.unlock_waking_flusher(g, sealed);
                                self.stage_cv.notify_all();
                                return Routed::Done;
                            }
                        }
                    }
                    drop(g);
                    if run < n {
                        bio.accept_partial(run);
                    }
                    return Routed::Backing(bio, sector);
                }
                ReadStep::Buffer { buf, byte_off, run } => {
                    drop(g);
                    if run < n {
                        bio.accept_partial(run);
                    }
                    let r = match self.bufs.get(buf) {
                        Some(b) => b.copy_to_bio(byte_off, &mut bio),
                        None => Err(EIO),
                    };
                    let mut g = self.lock();
                    g.eng.end_buffer_read(buf);
                    let waiters = g.space_waiters > 0;
                    drop(g);
                    if waiters {
                        self.space.notify_all();
                    }
                    bio.end(r);
                    return Routed::Done;
                }
                ReadStep::Cache { slot, sector: target, run } => {
                    // A cache shutting down takes no new remapped reads (it
                    // waits for those in flight; only a detached device's
                    // read can race it, and none should).
                    let counter = if g.eng.stopping() { None } else { self.inflight.get(slot as usize) };
                    let Some(counter) = counter else {
                        drop(g);
                        bio.end(Err(EIO));
                        return Routed::Done;
                    };
                    // Counted under the lock: the engine cannot reuse the
                    // slot from now on.
                    counter.fetch_add(1, Ordering::AcqRel);
                    // A read the cache device cannot take as it is (512-byte
                    // granular on a device with 4 KiB logical blocks: the
                    // block layer fails it) is bounced through whole blocks.
                    let spb = self.lbs_sectors;
                    let bounce = spb > 1 && (target % spb != 0 || u64::from(run) % spb != 0);
                    let run = if bounce { run.min(BOUNCE_MAX_SECTORS) } else { run };
                    if run < n {
                        bio.accept_partial(run);
                    }
                    // A slot is reused only when its counter is 0, and
                    // `shutdown` (which runs before a cache is dropped) waits
                    // for every counter to reach 0 after stopping, when no
                    // new count can start (checked above under the lock).
                    // SAFETY: so `counter` (in `self.inflight`) outlives this bio.
                    unsafe { bio.set_inflight(counter) };
                    bio.remap(self.dev.bdev(), target);
                    if !bounce {
                        drop(g);
                        return Routed::Remapped(bio);
                    }
                    // Queued in the same lock hold as the count: the stager,
                    // which stops only with nothing queued, ends it.
                    g.bounce.push(bio);
                    drop(g);
                    self.stage_cv.notify_all();
                    return Routed::Done;
                }
            }
        }
    }

    /// Sets read caching (see [`Engine::set_read_cache`]).
    pub(crate) fn set_read_cache(&self, threshold: u32, cells: u32) -> core::result::Result<(), eng::ReadCacheError> {
        self.lock().eng.set_read_cache(threshold, cells)
    }

    /// Whether the cache's segments can mark clean lines (a version 4
    /// superblock).
    pub(crate) fn can_read_cache(&self) -> bool {
        self.lock().eng.segment_version() >= fmt::SEGMENT_VERSION_V3
    }

    /// `(read_cache_threshold, nr_read_cache_cells)`.
    pub(crate) fn read_cache(&self) -> (u32, u32) {
        self.lock().eng.read_cache()
    }

    /// Reads block `sector / 8` of `dev` from `backing` into the clean line
    /// of injection ticket `w` and serves `bio` (4 KiB) from it; on a
    /// failed read the line is dropped and the bio fails (as the read of
    /// the backing device would have). Runs in the stager thread.
    /// Serves a read remapped to the cache device (its sector and size are
    /// the cache device's, at most [`BOUNCE_MAX_SECTORS`]) that is not
    /// aligned to the device's logical blocks: reads the whole blocks into
    /// `buf` and copies the bio's part. Ending the bio releases its slot
    /// count (the C `end_io`).
    fn bounce_read(&self, mut bio: Bio, buf: &SharedBuf) {
        let spb = self.lbs_sectors;
        let sector = bio.sector();
        let end = sector.saturating_add(u64::from(bio.sectors()));
        let first = sector - sector % spb;
        let last = end.div_ceil(spb).saturating_mul(spb);
        let off = ((sector - first) * 512) as usize;
        let r = buf.io(self.dev.bdev(), first, last - first, 0, IoKind::Read).and_then(|()| buf.copy_to_bio(off, &mut bio));
        if let Err(e) = r {
            // At most once per 10 s per cache: a failing disk repeats it.
            if ffi::every_10s(&self.log_limits.cache_read_ms) {
                pr_err!("cache {}: read of the cache device at sector {} failed (error {})\n", self.id, first, e.to_errno());
            }
        }
        bio.end(r.map_err(|_| EIO));
    }

    fn stage_read(&self, dev: u8, sector: u64, mut bio: Bio, w: WriteTicket) {
        let backing = self.backings.lock().get(dev as usize).and_then(|x| x.clone());
        let r = match (self.bufs.get(w.buf), backing) {
            (Some(b), Some(f)) => b.io(f.bdev(), sector, 8, w.byte_off, IoKind::Read).and_then(|()| b.copy_to_bio(w.byte_off, &mut bio)),
            _ => Err(EIO),
        };
        let mut g = self.lock();
        if r.is_err() {
            g.eng.stage_failed(w, dev, sector / 8);
        }
        let done = g.eng.end_write(w, true, false, ffi::now_ms(), self.deadline_ms());
        let waiters = g.space_waiters > 0;
        drop(g);
        if done.wake_flusher {
            self.flusher_cv.notify_all();
        }
        if waiters {
            self.space.notify_all();
        }
        bio.end(r.map_err(|_| EIO));
    }

    /// Handles a discard: drops cached data of the range (logging the drop
    /// when older segments held it), then passes it on. The whole bio is
    /// handled at once (DM cuts discards only at the backing device's
    /// limit); the engine's work follows what the cache holds of the
    /// device, and the lock is dropped between bounded pieces of it.
    pub(crate) fn map_discard(&self, dev: u8, sector: u64, bio: Bio) -> Routed {
        /// Index look-ups per lock hold.
        const BUDGET: u32 = 4096;
        let mut d = DiscardRange::new(dev, sector, u64::from(bio.sectors()));
        let since = ffi::now_ms();
        let mut g = self.lock();
        let sealed = g.eng.sealed_upto();
        loop {
            match g.eng.discard_step(&mut d, BUDGET, &self.slot_busy()) {
                DiscardStep::Pass => break,
                DiscardStep::Again => {
                    drop(g);
                    g = self.lock();
                }
                DiscardStep::Wait(w) => match self.wait(g, w, since) {
                    Some(x) => g = x,
                    None => {
                        bio.end(Err(EIO));
                        return Routed::Done;
                    }
                },
                DiscardStep::Fail => {
                    drop(g);
                    bio.end(Err(EIO));
                    return Routed::Done;
                }
            }
        }
        // Segments sealed to log the drops go to the flusher.
        let wake = g.eng.sealed_upto() != sealed;
        drop(g);
        if wake {
            self.flusher_cv.notify_all();
        }
        Routed::Backing(bio, sector)
    }

    /// Handles an empty flush: completes once everything acknowledged
    /// before it is durable on the cache device.
    pub(crate) fn map_flush(&self, bio: Bio) -> Routed {
        let mut g = self.lock();
        match g.eng.begin_flush(ffi::now_ms(), self.deadline_ms()) {
            FlushStep::Done => {
                drop(g);
                bio.end(Ok(()));
            }
            FlushStep::Fail => {
                drop(g);
                bio.end(Err(EIO));
            }
            FlushStep::FlushOnly => {
                g.flush_only.push(bio);
                drop(g);
                self.flusher_cv.notify_all();
            }
            FlushStep::Held(b) => {
                if let Some(l) = g.barriers.get_mut(b) {
                    l.push(bio);
                }
                drop(g);
                self.flusher_cv.notify_all();
            }
        }
        Routed::Done
    }

    // -----------------------------------------------------------------------
    // Control
    // -----------------------------------------------------------------------

    /// Seals the open segment and waits until everything acknowledged is
    /// durable on the cache device (suspend, flush_current_buffer,
    /// free_cache, detach).
    pub(crate) fn flush_all(&self) -> Result {
        let mut g = self.lock();
        self.seal_locked(&mut g);
        let target = g.eng.sealed_upto();
        while g.eng.last_flushed() < target {
            if let Some(e) = g.eng.error() {
                return Err(Error::from_errno(e));
            }
            if g.eng.stopping() {
                return Err(EIO);
            }
            self.flusher_cv.notify_all();
            self.wait_space(&mut g);
        }
        if g.eng.durable_upto() < target {
            let upto = g.eng.last_flushed();
            drop(g);
            let r = self.dev.bdev().flush();
            self.lock().eng.flush_done(upto, r.is_ok());
            r?;
        }
        Ok(())
    }

    /// Accepts writes of device `dev` (backing `devt`, `sectors` long),
    /// registering it in the on-disk record.
    pub(crate) fn attach(&self, dev: u8, devt: u32, sectors: u64) -> core::result::Result<(), Msg> {
        if sectors >= idx::MAX_BACKING_SECTORS {
            return Err(Msg::new(format_args!(
                "backing device {} too large: {} sectors, writeboost supports fewer than {} (1 EiB)",
                ffi::DevT(devt),
                sectors,
                idx::MAX_BACKING_SECTORS
            )));
        }
        {
            let mut bk = self.backings.lock();
            let slot = bk.get_mut(dev as usize).ok_or_else(|| Msg::new(format_args!("bad device id {}", dev)))?;
            match slot {
                Some(f) if f.bdev().devt() != devt => {
                    return Err(Msg::new(format_args!(
                        "cache {} holds data of device_id {} for backing device {}, not {}",
                        self.id,
                        dev,
                        ffi::DevT(f.bdev().devt()),
                        ffi::DevT(devt)
                    )));
                }
                Some(_) => {}
                None => {
                    let f = BdevFile::open_devt(devt)
                        .and_then(|f| Arc::new(f, GFP_KERNEL).map_err(|_| ENOMEM))
                        .map_err(|e| Msg::new(format_args!("cannot open backing device {} (error {})", ffi::DevT(devt), e.to_errno())))?;
                    *slot = Some(f);
                }
            }
        }
        // Writes that went straight to the backing device must be durable
        // before this device's flushes only cover the cache.
        let mut identity = 0;
        if let Some(f) = self.backings.lock().get(dev as usize).and_then(|x| x.clone()) {
            f.bdev().flush().map_err(|e| Msg::new(format_args!("cannot flush backing device {} (error {})", ffi::DevT(devt), e.to_errno())))?;
            identity = f.bdev().identity().map_err(|e| {
                Msg::new(format_args!("cannot identify backing device {} (error {})", ffi::DevT(devt), e.to_errno()))
            })?;
        }
        let changed = {
            let mut g = self.lock();
            let bad = |_| Msg::new(format_args!("bad device id {}", dev));
            let sized = g.eng.register(dev, sectors).map_err(bad)?;
            g.eng.set_identity(dev, identity).map_err(bad)? || sized
        };
        if changed {
            self.commit_record().map_err(|e| Msg::new(format_args!("cannot write the cache record (error {})", e.to_errno())))?;
        }
        let mut g = self.lock();
        g.eng.set_attached(dev, true);
        // Write-back paused or failing before: the device's table holds
        // its disk now, so the next round tries at once.
        let _ = g.eng.retry_now(dev);
        Ok(())
    }

    /// Stops accepting writes of `dev`. With `require_clean`, refuses (and
    /// changes nothing) while the device has dirty data here; a clean
    /// device is unregistered, and stays attached if that record cannot be
    /// written.
    pub(crate) fn detach(&self, dev: u8, require_clean: bool) -> core::result::Result<(), Msg> {
        let registered = self.lock().eng.registered(dev);
        let mut tries = 0u32;
        let commit = loop {
            let mut g = self.lock();
            match g.eng.detach(dev, require_clean) {
                DetachStep::Dirty(d) => {
                    return Err(Msg::new(format_args!(
                        "device_id {} still has {} dirty lines in cache {}: allow migration and wait for nr_dirty_caches to reach 0",
                        dev, d, self.id
                    )));
                }
                DetachStep::Done { commit } => break commit,
                DetachStep::WaitRound => {
                    let _ = self.wait_space_for(&mut g, 100);
                }
                DetachStep::NeedRecord => {
                    if let Some(e) = g.eng.error() {
                        return Err(Msg::new(format_args!("the cache device failed (error {})", e)));
                    }
                    self.flusher_cv.notify_all();
                    self.migrator_cv.notify_all();
                    let _ = self.wait_space_for(&mut g, 100);
                }
            }
            tries += 1;
            if tries > 600 {
                return Err(Msg::new(format_args!(
                    "device_id {}: timed out after 60 s waiting for cache {} to write back and record the log before the device's last segment; retry",
                    dev, self.id
                )));
            }
        };
        if commit {
            if let Err(e) = self.commit_record() {
                self.lock().eng.undo_detach(dev, registered);
                return Err(Msg::new(format_args!("cannot write the cache record (error {}): device_id {} stays attached", e.to_errno(), dev)));
            }
            if let Some(s) = self.backings.lock().get_mut(dev as usize) {
                *s = None;
            }
        }
        Ok(())
    }

    /// Another device id than `except` whose data for backing device
    /// `devt` is here, dirty or not yet past the record ([`Cache::holds`]):
    /// `(device_id, dirty lines)`.
    pub(crate) fn dirty_holder_of(&self, devt: u32, except: u8) -> Option<(u8, u64)> {
        let mut ids = [false; SLOTS];
        {
            let bk = self.backings.lock();
            for (i, s) in bk.iter().enumerate() {
                if i != except as usize && s.as_ref().is_some_and(|f| f.bdev().devt() == devt) {
                    if let Some(x) = ids.get_mut(i) {
                        *x = true;
                    }
                }
            }
        }
        ids.iter().enumerate().filter(|(_, &x)| x).map(|(i, _)| i as u8).find(|&d| self.holds(d)).map(|d| (d, self.dirty_of(d)))
    }

    /// Device `dev` was removed (its last table is gone and has released
    /// its backing disk): while it has dirty data here, claim that disk, so
    /// no file system, table or other exclusive opener can use the disk's
    /// stale contents, and write-back cannot later put older data over
    /// theirs. Only a device of the same id gets it back
    /// ([`Cache::release_claim`]). Best effort: a disk that another table
    /// still holds cannot be claimed (logged).
    pub(crate) fn claim_if_dirty(&self, dev: u8) {
        // Dirty, or written back but not yet past the record (a replay
        // would bring the lines back): released once the record passes
        // them (`release_clean_claims`).
        if !self.holds(dev) {
            return;
        }
        let dirty = self.dirty_of(dev);
        let mut bk = self.backings.lock();
        let Some(devt) = bk.get(dev as usize).and_then(|x| x.as_ref().map(|f| f.bdev().devt())) else {
            return;
        };
        let Some(slot) = bk.claims.get_mut(dev as usize) else { return };
        if slot.is_some() {
            return;
        }
        match BdevFile::claim_devt(devt) {
            Ok(f) => {
                *slot = Some(f);
                self.log_claimed(devt, dev, dirty);
            }
            Err(e) => {
                if let Some(p) = bk.paused.get_mut(dev as usize) {
                    *p = true;
                }
                pr_warn!(
                    "cache {}: cannot claim backing device {} of removed device_id {} (error {}: another table or user holds it): write-back of the id's {} dirty lines is paused until that user lets go of the disk (the claim is retried) or device_id {} is created over it again\n",
                    self.id,
                    ffi::DevT(devt),
                    dev,
                    e.to_errno(),
                    dirty,
                    dev
                );
            }
        }
    }

    fn log_claimed(&self, devt: u32, dev: u8, dirty: u64) {
        pr_info!(
            "cache {}: claimed backing device {}: removed device_id {} has {} here; create device_id {} over it to use it\n",
            self.id,
            ffi::DevT(devt),
            dev,
            Held(dirty),
            dev
        );
    }

    /// Takes over `f`, the disk of removed device `dev` held while this
    /// cache was resumed: kept as the claim of that disk if the cache has
    /// dirty data of `dev` and it is the disk the cache knows for it
    /// (else released).
    pub(crate) fn adopt_claim(&self, dev: u8, f: BdevFile) {
        let dirty = self.dirty_of(dev);
        let mut bk = self.backings.lock();
        let known = bk.get(dev as usize).and_then(|x| x.as_ref().map(|b| b.bdev().devt()));
        if dirty == 0 || known != Some(f.bdev().devt()) {
            return;
        }
        let devt = f.bdev().devt();
        if let Some(slot) = bk.claims.get_mut(dev as usize).filter(|s| s.is_none()) {
            *slot = Some(f);
            if let Some(p) = bk.paused.get_mut(dev as usize) {
                *p = false;
            }
            self.log_claimed(devt, dev, dirty);
        }
    }

    /// The backing disk this cache knows for device `dev`.
    pub(crate) fn backing_of(&self, dev: u8) -> Option<u32> {
        self.backings.lock().get(dev as usize).and_then(|x| x.as_ref().map(|f| f.bdev().devt()))
    }

    /// A device of id `dev` is being created: give up the claim of its
    /// disk (returns whether there was one) and end a pause of its
    /// write-back (the device's table holds the disk now; if its
    /// constructor fails, the removal path claims or pauses again).
    pub(crate) fn release_claim(&self, dev: u8) -> bool {
        let mut bk = self.backings.lock();
        if let Some(p) = bk.paused.get_mut(dev as usize) {
            *p = false;
        }
        let f = bk.claims.get_mut(dev as usize).and_then(|x| x.take());
        drop(bk);
        f.is_some()
    }

    /// The disks claimed for removed devices: (device id, dev_t).
    pub(crate) fn claimed(&self, mut f: impl FnMut(u8, u32)) {
        for (i, c) in self.backings.lock().claims.iter().enumerate() {
            if let Some(c) = c {
                f(i as u8, c.bdev().devt());
            }
        }
    }

    /// Releases the claims of devices whose data is all written back and
    /// past the record (a replay cannot bring any of it back).
    pub(crate) fn release_clean_claims(&self) {
        let mut ids = [false; SLOTS];
        self.claimed(|d, _| {
            if let Some(x) = ids.get_mut(d as usize) {
                *x = true;
            }
        });
        for (d, _) in ids.iter().enumerate().filter(|(_, &x)| x) {
            // Written back but not yet past the record: asked again after
            // the next record.
            if !self.holds(d as u8) && self.release_claim(d as u8) {
                pr_info!("cache {}: device_id {} is written back: its backing device is released\n", self.id, d);
            }
        }
    }

    /// Whether `dev` has dirty data here.
    pub(crate) fn dirty_of(&self, dev: u8) -> u64 {
        self.lock().eng.dirty_of(dev)
    }

    /// What `dev` has here, for messages: `N dirty lines`, or (no dirty
    /// line) `lines written back but not yet on the record`.
    pub(crate) fn held(&self, dev: u8) -> Held {
        Held(self.dirty_of(dev))
    }

    /// Whether the log holds lines of `dev` that a replay would bring
    /// back (dirty, or written back but not yet past the record): the
    /// id's I/O must go through this cache, and its disk is not free.
    /// Asking makes the record pass written-back lines soon (the migrator
    /// moves parked lines in front for it). Takes the cache lock only.
    pub(crate) fn holds(&self, dev: u8) -> bool {
        let mut g = self.lock();
        let sealed = g.eng.sealed_upto();
        let free = g.eng.replay_free(dev);
        let wanted = !free && g.eng.dirty_of(dev) == 0;
        self.unlock_waking_flusher(g, sealed);
        if wanted {
            self.migrator_cv.notify_all();
        }
        !free
    }

    /// Writes the on-disk record (the engine says what it holds) with
    /// REQ_PREFLUSH | REQ_FUA: every segment written before it, which the
    /// record may depend on, is durable with it.
    pub(crate) fn commit_record(&self) -> Result {
        let mut guard = self.record.lock();
        let scratch = &mut **guard;
        let snap = {
            let g = self.lock();
            for (i, (r, x)) in scratch.registry.iter_mut().zip(scratch.identities.iter_mut()).enumerate() {
                *r = g.eng.registered(i as u8);
                *x = g.eng.identity(i as u8);
            }
            g.eng.record_snapshot()
        };
        let rec = snap.record(self.format_id, &scratch.registry).map_err(|_| EINVAL)?;
        fmt::encode_record_with_identities(&rec, &scratch.identities, &mut scratch.block).map_err(|_| EINVAL)?;
        let r = ffi::sync_io(self.dev.bdev(), rec.sector(), 8, &mut scratch.block, IoKind::WriteFlushFua);
        let mut g = self.lock();
        let moved = r.is_ok() && snap.last_migrated > g.eng.record_migrated();
        g.eng.record_done(snap, r.is_ok());
        // Slots freed count as progress for writers waiting for room only
        // if they can use them (not when parked lines moved round a log
        // nearly full of them take them at once).
        let moved = moved && g.eng.writer_room();
        drop(g);
        if moved {
            // Slots were freed: writers may wait for room again.
            self.no_room.stalled.store(false, Ordering::Relaxed);
            self.progressed();
        }
        drop(guard);
        self.space.notify_all();
        r
    }

    /// Flushes, stops the threads and writes the record: the cache can be
    /// dropped afterwards. Dirty data stays in the log for a later resume.
    pub(crate) fn shutdown(&self) -> Result {
        let flushed = self.flush_all();
        self.lock().eng.stop();
        self.flusher_cv.notify_all();
        self.migrator_cv.notify_all();
        self.space.notify_all();
        self.stage_cv.notify_all();
        // Joins the threads.
        drop(self.threads.lock().take());
        self.wait_remapped_reads();
        let rec = self.commit_record();
        // Barrier bios still held (only after an error) fail now.
        let mut g = self.lock();
        let mut held = BioList::new();
        held.append(&mut g.flush_only);
        // (Write-around writes the flusher did not take: none is expected,
        // the flusher takes them before it looks at its stop flag.)
        for i in 0..eng::MAX_AROUND {
            if let Some(j) = g.around_q.get_mut(i).and_then(|q| q.take()) {
                g.eng.end_around(j.t, false);
                held.push(j.bio);
            }
        }
        for b in g.barriers.iter_mut() {
            held.append(b);
        }
        drop(g);
        held.end_all(Err(EIO));
        flushed.and(rec)
    }

    /// Waits until no read remapped to the cache device is in flight (their
    /// completion decrements a counter in this cache). Called once the
    /// engine is stopped, so no new one starts. A bio in flight always
    /// completes (the block layer times out a stuck request), so this
    /// waits for as long as it takes, saying so every 10 s.
    fn wait_remapped_reads(&self) {
        let mut waited = 0u32;
        loop {
            let n: i64 = self.inflight.iter().map(|c| i64::from(c.load(Ordering::Acquire))).sum();
            if n <= 0 {
                return;
            }
            if waited > 0 && waited % 1000 == 0 {
                pr_warn!("cache {}: waiting for {} reads from the cache device to complete\n", self.id, n);
            }
            ffi::msleep(10);
            waited = waited.wrapping_add(1);
        }
    }

    /// The engine's figures of a 2.2-form status line (the tunables are
    /// the device's to fill in).
    pub(crate) fn status22(&self) -> crate::wbformat::compat::Status {
        let g = self.lock();
        let e = &g.eng;
        crate::wbformat::compat::Status {
            cursor: e.cursor(),
            nr_cache_lines: self.geo.nr_lines(),
            nr_segments: u64::from(self.geo.nr_segments()),
            current_id: e.last_id(),
            last_flushed_id: e.last_flushed(),
            last_writeback_id: e.last_migrated(),
            nr_dirty: e.total_dirty(),
            engine_stats: *e.stats(),
            nr_partial_flushed: e.nr_partial_flushed(),
            nr_cur_batched_writeback: self.tun.nr_max_batched_migration.load(Ordering::Relaxed),
            ..Default::default()
        }
    }

    /// Writes every dirty line back, the open RAM buffer included, and
    /// returns once none is left (the caller has `force_migrate` set).
    /// Ends early, with what is left said, when device `dev`'s write-back
    /// fails, the cache device fails, a signal is pending, or no line was
    /// written back for 60 s.
    pub(crate) fn write_back_all(&self, dev: u8) -> core::result::Result<(), (Error, Msg)> {
        let mut least = u64::MAX;
        let mut since = ffi::now_ms();
        // A write-back that failed before this request is retried at once
        // (the disk may be back): only a failure from now on ends it.
        let errors_before = self.lock().eng.retry_now(dev);
        loop {
            self.migrator_cv.notify_all();
            self.flush_all().map_err(|e| (e, Msg::new(format_args!("writing the RAM buffer to the cache device failed (error {})", e.to_errno()))))?;
            let (dirty, fail, errors) = {
                let g = self.lock();
                let d = g.eng.dev(dev);
                (g.eng.total_dirty(), d.fail_errno, d.writeback_errors)
            };
            if dirty == 0 {
                return Ok(());
            }
            if fail != 0 && errors > errors_before {
                return Err((EIO, Msg::new(format_args!("write-back to the backing device fails (error {}); {} dirty lines stay in the cache", fail, dirty))));
            }
            if ffi::signal_pending() {
                return Err((EINTR, Msg::new(format_args!("interrupted; {} dirty lines left", dirty))));
            }
            let now = ffi::now_ms();
            if dirty < least {
                least = dirty;
                since = now;
            } else if now.saturating_sub(since) > 60_000 {
                return Err((Error::from_errno(-110), Msg::new(format_args!("no line written back for 60 s; {} dirty lines left", dirty))));
            }
            ffi::msleep(20);
        }
    }

    /// Clears the statistics.
    pub(crate) fn clear_stats(&self) {
        self.lock().eng.clear_stats();
    }

    /// Bytes of the index's allocations (line table and hash buckets), as
    /// allocated.
    pub(crate) fn index_bytes(&self) -> u64 {
        self.lock().eng.index.memory_bytes()
    }

    /// Approximate static memory use in bytes: the index (`index_bytes`),
    /// the RAM buffers, and per slot its metadata and in-flight read count.
    fn static_ram(&self, index_bytes: u64) -> u64 {
        let per_slot = (core::mem::size_of::<SlotMeta>() + core::mem::size_of::<AtomicI32>()) as u64;
        index_bytes
            .saturating_add((NR_BUFS * SEG_BYTES) as u64)
            .saturating_add(u64::from(self.geo.nr_segments()).saturating_mul(per_slot))
    }

    /// Writes the manager status of this cache.
    pub(crate) fn status(&self, out: &mut ffi::Out<'_>) {
        use core::fmt::Write;
        let g = self.lock();
        let e = &g.eng;
        let index_bytes = e.index.memory_bytes();
        // The seed's exact sequence first; additions after the counters.
        let _ = write!(
            out,
            "\nstatic RAM(approx.): {} (byte)\nallow_migrate: {}\nnr_segments: {}\nlast_migrated_segment_id: {}\nlast_flushed_segment_id: {}\ncurrent segment id: {}\ncursor: {}\n\nwrite? hit? on_buffer? fullsize?",
            self.static_ram(index_bytes),
            self.tun.allow_migrate.load(Ordering::Relaxed) as u8,
            self.geo.nr_segments(),
            e.last_migrated(),
            e.last_flushed(),
            e.last_id(),
            e.cursor(),
        );
        for (i, c) in e.stats().iter().enumerate() {
            let _ = write!(out, "\n{} {} {} {} {}", i & 1, (i >> 1) & 1, (i >> 2) & 1, (i >> 3) & 1, c);
        }
        let _ = write!(
            out,
            "\n\nnr_dirty_caches: {}\nnr_partial_flushed: {}\nerror: {}\nrecord_migrated_segment_id: {}\ndurable_segment_id: {}\nnr_relocated_lines: {}\nindex_bytes: {}\nwriteback_rounds: {}\nwriteback_ios: {}\nwriteback_bytes: {}\nwrite_around_mode: {}",
            e.total_dirty(),
            e.nr_partial_flushed(),
            e.error().or(e.migrate_error()).unwrap_or(0),
            e.record_migrated(),
            e.durable_upto(),
            e.nr_relocated(),
            index_bytes,
            self.wb_stats.rounds.load(Ordering::Relaxed),
            self.wb_stats.ios.load(Ordering::Relaxed),
            self.wb_stats.bytes.load(Ordering::Relaxed),
            self.tun.write_around.load(Ordering::Relaxed) as u8,
        );
        let (clean, injected, dropped) = e.read_cache_stats();
        let (threshold, cells) = e.read_cache();
        let _ = write!(
            out,
            "\nread_cache_threshold: {}\nnr_read_cache_cells: {}\nnr_clean_caches: {}\nread_cache_injected: {}\nread_cache_dropped: {}\nsegment_header_version: {}",
            threshold,
            cells,
            clean,
            injected,
            dropped,
            e.segment_version(),
        );
    }

    /// Takes the sysfs directory `caches/<id>` out of the cache; drop it
    /// outside the registry lock (removal waits for show/store calls).
    pub(crate) fn take_sysfs(&self) -> Option<SysfsDir> {
        self.sysfs.lock().take()
    }

    /// Installs the sysfs directory `caches/<id>`.
    pub(crate) fn add_sysfs(&self) -> Result {
        let d = SysfsDir::add(ffi::SysfsKind::Cache, self.id, Some(self.dev.bdev()))?;
        *self.sysfs.lock() = Some(d);
        Ok(())
    }
}

/// The record writer's scratch space (`Cache::record`): the encoded block
/// and the registry's sizes and identities, on the heap (2 KiB of arrays
/// had no place on the stack of `free_cache`'s DM message).
pub(crate) struct RecordScratch {
    block: KVec<u8>,
    registry: [u64; SLOTS],
    identities: [u64; SLOTS],
}

/// Lengths (elements) of the tables [`new_engine`] allocates in proportion
/// to the cache: lines, hash buckets, slots. `None`: too many lines for
/// this machine's address space.
fn index_lens(geo: Geometry) -> Option<(usize, usize, usize)> {
    let lines = usize::try_from(geo.nr_lines()).ok()?;
    Some((lines, idx::buckets_for(lines), geo.nr_segments() as usize))
}

/// Bytes of the tables [`new_engine`] allocates in proportion to the cache
/// (lines, hash buckets, slots): what a resume needs in memory.
pub(crate) fn index_alloc_bytes(geo: Geometry) -> u64 {
    let Some((lines, buckets, slots)) = index_lens(geo) else { return u64::MAX };
    let bytes = |n: usize, size: usize| (n as u64).saturating_mul(size as u64);
    bytes(lines, core::mem::size_of::<LineMeta>())
        .saturating_add(bytes(buckets, core::mem::size_of::<Link>()))
        .saturating_add(bytes(slots, core::mem::size_of::<SlotMeta>()))
}

/// A new, empty engine for a cache of geometry `geo`, on the heap.
///
/// Errors: `ENOMEM` if its index or tables cannot be allocated.
pub(crate) fn new_engine(geo: Geometry, format_id: u64, generation: u64) -> Result<KBox<Engine<KStore>>> {
    use kernel::alloc::VVec;
    let (nr_lines, nr_buckets, nr_slots) = index_lens(geo).ok_or(ENOMEM)?;
    let parts = Parts::<KStore> {
        lines: ffi::BigVec::from_elem(LineMeta::EMPTY, nr_lines)?,
        buckets: ffi::BigVec::from_elem(Link::NONE, nr_buckets)?,
        slots: ffi::BigVec::from_elem(SlotMeta::default(), nr_slots)?,
        buf_lines: VVec::from_elem(BufLine::default(), NR_BUFS * fmt::LINES_PER_SEGMENT as usize, GFP_KERNEL)?,
        discards: VVec::from_elem(Discard::EMPTY, NR_BUFS * fmt::MAX_DISCARDS, GFP_KERNEL)?,
        devs: VVec::from_elem(DevMeta::default(), SLOTS, GFP_KERNEL)?,
        cells: VVec::from_elem(eng::StageCell::default(), eng::MAX_READ_CACHE_CELLS as usize, GFP_KERNEL)?,
    };
    // The box first: the engine is then moved once, from the result of
    // `Engine::new` into it (one engine-sized temporary on the stack).
    let slot = KBox::<Engine<KStore>>::new_uninit(GFP_KERNEL)?;
    let e = Engine::new(geo, format_id, generation, parts).map_err(|_| ENOMEM)?;
    Ok(KBox::write(slot, e))
}

/// Builds a cache object around an opened, validated device and its
/// recovered engine; [`start`] then launches the threads.
pub(crate) fn new_cache(id: u8, dev: BdevFile, geo: Geometry, format_id: u64, sum: fmt::SegmentSum, engine: KBox<Engine<KStore>>) -> Result<Arc<Cache>> {
    let nr_slots = geo.nr_segments() as usize;
    let mut bufs = KVec::with_capacity(NR_BUFS, GFP_KERNEL)?;
    for _ in 0..NR_BUFS {
        bufs.push(SharedBuf::new(SEG_BYTES)?, GFP_KERNEL)?;
    }
    let mut direct = KVec::with_capacity(NR_BUFS, GFP_KERNEL)?;
    for _ in 0..NR_BUFS {
        direct.push(ffi::WaitCount::new()?, GFP_KERNEL)?;
    }
    let dq = ffi::DirectQueue::new()?;
    let mut inflight = KVVec::with_capacity(nr_slots, GFP_KERNEL)?;
    for _ in 0..nr_slots {
        inflight.push(AtomicI32::new(0), GFP_KERNEL)?;
    }
    let block = KVec::from_elem(0u8, BLOCK, GFP_KERNEL)?;
    let scratch = KBox::init(
        init!(RecordScratch { block, registry <- kernel::init::zeroed(), identities <- kernel::init::zeroed() }),
        GFP_KERNEL,
    )?;
    let backings = Backings::new()?;
    let module = ModuleRef::get()?;
    let lbs_sectors = u64::from(dev.bdev().logical_block_size() / 512).max(1);
    let state = State {
        eng: engine,
        barriers: [const { BioList::new() }; NR_BUFS],
        flush_only: BioList::new(),
        space_waiters: 0,
        stage_bios: BioList::new(),
        stage_q: KVec::from_elem(None, STAGE_Q, GFP_KERNEL)?,
        stage_head: 0,
        stage_len: 0,
        around_q: [const { None }; eng::MAX_AROUND],
        bounce: BioList::new(),
    };
    Arc::pin_init(
        pin_init!(Cache {
            id,
            dev,
            geo,
            format_id,
            sum,
            state <- new_spinlock!(state, "writeboost_cache"),
            space <- new_condvar!("writeboost_space"),
            flusher_cv <- new_condvar!("writeboost_flusher"),
            migrator_cv <- new_condvar!("writeboost_migrator"),
            stage_cv <- new_condvar!("writeboost_stager"),
            record <- new_mutex!(scratch, "writeboost_record"),
            backings <- new_mutex!(backings, "writeboost_backings"),
            threads <- new_mutex!(None, "writeboost_threads"),
            sysfs <- new_mutex!(None, "writeboost_sysfs"),
            bufs,
            direct,
            dq,
            inflight,
            tun: Tunables {
                allow_migrate: AtomicBool::new(false),
                force_migrate: AtomicBool::new(false),
                barrier_deadline_ms: AtomicU32::new(3),
                nr_max_batched_migration: AtomicU32::new(4),
                update_interval: AtomicU32::new(1),
                commit_super_block_interval: AtomicU32::new(0),
                flush_current_buffer_interval: AtomicU32::new(0),
                idle_seal_ms: AtomicU32::new(DEFAULT_IDLE_SEAL_MS),
                write_around: AtomicBool::new(false),
            },
            flushes: AtomicU64::new(0),
            salvaged: AtomicBool::new(false),
            no_room: NoRoom { log_ms: AtomicU64::new(0), stalled: AtomicBool::new(false), progress_ms: AtomicU64::new(0) },
            log_limits: LogLimits { around_ms: AtomicU64::new(0), cache_read_ms: AtomicU64::new(0) },
            wb_stats: WbStats::default(),
            mig_io_failing: AtomicBool::new(false),
            lbs_sectors,
            _module: module,
        }),
        GFP_KERNEL,
    )
}

/// Starts the flusher and migrator threads of `cache`.
pub(crate) fn start(cache: &Arc<Cache>) -> Result {
    let name = kernel::str::CString::try_from_fmt(kernel::fmt!("wb_flush/{}", cache.id))?;
    let flusher = KThread::spawn(&name, Arc::new(flush::Flusher::new(cache.clone())?, GFP_KERNEL)?)?;
    let name = kernel::str::CString::try_from_fmt(kernel::fmt!("wb_migrate/{}", cache.id))?;
    let migrator = KThread::spawn(&name, Arc::new(migrate::Migrator::new(cache.clone())?, GFP_KERNEL)?)?;
    let name = kernel::str::CString::try_from_fmt(kernel::fmt!("wb_stage/{}", cache.id))?;
    let stager = KThread::spawn(&name, Arc::new(Stager { cache: cache.clone(), bounce: SharedBuf::new(BOUNCE_BYTES)? }, GFP_KERNEL)?)?;
    let name = kernel::str::CString::try_from_fmt(kernel::fmt!("wb_direct/{}", cache.id))?;
    let completer = KThread::spawn(&name, Arc::new(Completer { cache: cache.clone() }, GFP_KERNEL)?)?;
    *cache.threads.lock() = Some(Threads { _flusher: flusher, _migrator: migrator, _stager: stager, _completer: completer });
    Ok(())
}
