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
//! # Locking
//!
//! `state` (a spinlock) guards the index and all bookkeeping; it is only
//! ever held for O(1) work (or O(255) when a segment opens) and never across
//! I/O or a copy of bio data. Waiting is done on the condition variables
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

use crate::ffi::{self, Bio, BioList, BdevFile, IoKind, KThread, ModuleRef, Msg, SharedBuf, SysfsDir};
use crate::wbformat::format::{self as fmt, Geometry};
use crate::wbformat::index::{Index, Key, LineMeta};

pub(crate) use migrate::MAX_BATCH;
pub(crate) use recover::{format_device, resume, Devices};

/// RAM buffers per cache (1 MiB each).
pub(crate) const NR_BUFS: usize = 8;
const LINES: u32 = fmt::LINES_PER_SEGMENT as u32;
const SEG_BYTES: usize = fmt::SEGMENT_SECTORS as usize * 512;
const BLOCK: usize = fmt::BLOCK_SIZE as usize;
const SLOTS: usize = 128;

/// Tunables, readable without the lock.
pub(crate) struct Tunables {
    pub(crate) allow_migrate: AtomicBool,
    pub(crate) force_migrate: AtomicBool,
    pub(crate) barrier_deadline_ms: AtomicU32,
    pub(crate) nr_max_batched_migration: AtomicU32,
    pub(crate) update_interval: AtomicU32,
    pub(crate) commit_super_block_interval: AtomicU32,
    pub(crate) flush_current_buffer_interval: AtomicU32,
}

/// What the header of a buffered segment will say about one line.
#[derive(Clone, Copy, Default)]
pub(crate) struct LineRec {
    pub(crate) sector: u64,
    pub(crate) dev: u8,
    pub(crate) bits: u8,
}

/// Bookkeeping of one RAM buffer.
pub(crate) struct BufState {
    /// Segment held (0 = none).
    pub(crate) seg_id: u64,
    pub(crate) slot: u64,
    pub(crate) nr_lines: u32,
    pub(crate) writers: u32,
    pub(crate) readers: u32,
    pub(crate) sealed: bool,
    /// Per line: writes being copied in.
    pub(crate) pending: KVec<u8>,
    /// Per line: key and written bits, for the header.
    pub(crate) lines: KVec<LineRec>,
    /// FLUSH/FUA bios completed once this segment is durable.
    pub(crate) barriers: BioList,
}

/// Everything guarded by the cache spinlock.
pub(crate) struct State {
    pub(crate) index: Index<kernel::alloc::VVec<LineMeta>, kernel::alloc::VVec<u32>>,
    pub(crate) bufs: KVec<BufState>,
    /// The buffer holding the open segment.
    pub(crate) cur: Option<usize>,
    /// Id of the newest segment opened.
    pub(crate) last_id: u64,
    /// Every segment id <= this is sealed.
    pub(crate) sealed_upto: u64,
    /// Every segment id <= this is on the cache device.
    pub(crate) last_flushed: u64,
    /// Every segment id <= this is written back and flushed (in memory).
    pub(crate) last_migrated: u64,
    /// What the on-disk record says about `last_migrated`.
    pub(crate) record_migrated: u64,
    /// Number of lines used by each segment slot (for migration reads).
    pub(crate) seg_lines: KVVec<u8>,
    /// Barrier bios needing only a cache-device flush (everything acked is
    /// already written).
    pub(crate) flush_only: BioList,
    /// When the open segment must be sealed for its waiting barriers.
    pub(crate) barrier_deadline: Option<u64>,
    /// Devices whose writes this cache accepts.
    pub(crate) attached: [bool; SLOTS],
    /// Dirty lines per device.
    pub(crate) dirty: [u64; SLOTS],
    /// Writers are waiting for migration to free a segment slot.
    pub(crate) urgent: bool,
    /// A fatal cache-device write error: writes fail, reads still work.
    pub(crate) error: Option<i32>,
    /// A migration error being retried (for status).
    pub(crate) migrate_error: Option<i32>,
    /// Set by free_cache: the threads exit.
    pub(crate) stopping: bool,
    /// Statistics: index = write | hit << 1 | on_buffer << 2 | fullsize << 3.
    pub(crate) stats: [u64; 16],
    /// Global index of the line allocated last.
    pub(crate) cursor: u64,
    /// Partial segments written because of a barrier or a forced flush.
    pub(crate) nr_partial_flushed: u64,
}

/// The on-disk record as this cache keeps it.
pub(crate) struct RecordState {
    pub(crate) generation: u64,
    /// Registered backing size per device id (0 = not registered).
    pub(crate) registry: [u64; SLOTS],
    pub(crate) scratch: KVec<u8>,
}

/// The cache threads (stopped by [`Cache::shutdown`]).
struct Threads {
    _flusher: KThread<flush::Flusher>,
    _migrator: KThread<migrate::Migrator>,
}

/// One cache.
#[pin_data]
pub(crate) struct Cache {
    pub(crate) id: u8,
    pub(crate) dev: BdevFile,
    pub(crate) geo: Geometry,
    pub(crate) format_id: u64,
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
    #[pin]
    pub(crate) record: Mutex<RecordState>,
    /// Backing devices of the devices with data in this cache.
    #[pin]
    pub(crate) backings: Mutex<[Option<Arc<BdevFile>>; SLOTS]>,
    #[pin]
    threads: Mutex<Option<Threads>>,
    #[pin]
    sysfs: Mutex<Option<SysfsDir>>,
    pub(crate) bufs: KVec<SharedBuf>,
    /// Reads remapped to each segment slot that are still in flight.
    pub(crate) inflight: KVVec<AtomicI32>,
    pub(crate) tun: Tunables,
    /// Incremented whenever a segment is written (idle detection).
    pub(crate) flushes: AtomicU64,
    _module: ModuleRef,
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
}

fn bits_of(off: u32, n: u32) -> u8 {
    // off + n <= 8 by construction.
    (((1u32 << n) - 1) << off) as u8
}

impl Cache {
    pub(crate) fn line_slot(line: u32) -> u64 {
        u64::from(line / LINES)
    }

    pub(crate) fn lock(&self) -> kernel::sync::lock::Guard<'_, State, kernel::sync::lock::spinlock::SpinLockBackend> {
        self.state.lock()
    }

    /// The buffer holding segment slot `slot`, if any.
    fn buf_of_slot(st: &State, slot: u64) -> Option<usize> {
        st.bufs.iter().position(|b| b.seg_id != 0 && b.slot == slot)
    }

    pub(crate) fn account(st: &mut State, dev: u8, delta: i32) {
        Self::account_dirty(&mut st.dirty, dev, delta);
    }

    /// Applies a change of the number of dirty lines of `dev`.
    pub(crate) fn account_dirty(dirty: &mut [u64; SLOTS], dev: u8, delta: i32) {
        if let Some(d) = dirty.get_mut(dev as usize) {
            *d = if delta >= 0 { d.saturating_add(delta as u64) } else { d.saturating_sub(u64::from(delta.unsigned_abs())) };
        }
    }

    /// Seals the open segment (if it holds anything) so the flusher writes it.
    pub(crate) fn seal_locked(&self, st: &mut State) {
        let Some(b) = st.cur else { return };
        let Some(buf) = st.bufs.get_mut(b) else { return };
        if buf.nr_lines == 0 {
            return;
        }
        if buf.nr_lines < LINES {
            st.nr_partial_flushed += 1;
        }
        buf.sealed = true;
        st.sealed_upto = buf.seg_id;
        st.cur = None;
        st.barrier_deadline = None;
        self.flusher_cv.notify_all();
    }

    /// Opens a new segment. `Err(wait_ms)` says the caller must wait (for a
    /// buffer, a free slot, or reads in flight) and retry.
    fn open_segment(&self, st: &mut State) -> core::result::Result<(), Option<u32>> {
        let next_id = st.last_id + 1;
        let nr = u64::from(self.geo.nr_segments());
        let slot = (next_id - 1) % nr;
        if next_id > nr && st.record_migrated < next_id - nr {
            st.urgent = true;
            self.migrator_cv.notify_all();
            return Err(None);
        }
        if self.inflight.get(slot as usize).map_or(0, |c| c.load(Ordering::Acquire)) > 0 {
            return Err(Some(1));
        }
        let reusable = |b: &BufState, lf: u64| b.seg_id == 0 || (b.seg_id <= lf && b.writers == 0 && b.readers == 0);
        // A buffer still holding this slot from an older lap must go.
        if let Some(old) = Self::buf_of_slot(st, slot) {
            let lf = st.last_flushed;
            if !st.bufs.get(old).is_some_and(|b| reusable(b, lf)) {
                return Err(None);
            }
            if let Some(b) = st.bufs.get_mut(old) {
                b.seg_id = 0;
            }
        }
        // Prefer an empty buffer, else the one holding the oldest segment.
        let lf = st.last_flushed;
        let mut pick: Option<usize> = None;
        for (i, b) in st.bufs.iter().enumerate() {
            if Some(i) == st.cur || !reusable(b, lf) {
                continue;
            }
            let better = match pick.and_then(|p| st.bufs.get(p)) {
                None => true,
                Some(p) => b.seg_id < p.seg_id,
            };
            if better {
                pick = Some(i);
            }
        }
        let Some(b) = pick else { return Err(None) };
        // The slot's lines were all migrated: make sure the index agrees.
        for k in 0..LINES {
            let _ = st.index.release(slot as u32 * LINES + k);
        }
        if let Some(sl) = st.seg_lines.get_mut(slot as usize) {
            *sl = 0;
        }
        let buf = match st.bufs.get_mut(b) {
            Some(x) => x,
            None => return Err(None),
        };
        buf.seg_id = next_id;
        buf.slot = slot;
        buf.nr_lines = 0;
        buf.writers = 0;
        buf.readers = 0;
        buf.sealed = false;
        for p in buf.pending.iter_mut() {
            *p = 0;
        }
        for l in buf.lines.iter_mut() {
            *l = LineRec::default();
        }
        st.cur = Some(b);
        st.last_id = next_id;
        st.urgent = false;
        Ok(())
    }

    /// Waits on `space` with the lock, or sleeps `ms` without it.
    fn wait_space<'a>(
        &'a self,
        mut g: kernel::sync::lock::Guard<'a, State, kernel::sync::lock::spinlock::SpinLockBackend>,
        ms: Option<u32>,
    ) -> kernel::sync::lock::Guard<'a, State, kernel::sync::lock::spinlock::SpinLockBackend> {
        match ms {
            None => {
                self.space.wait(&mut g);
                g
            }
            Some(ms) => {
                drop(g);
                ffi::msleep(ms);
                self.lock()
            }
        }
    }

    // -----------------------------------------------------------------------
    // map()
    // -----------------------------------------------------------------------

    /// Handles a write of device `dev` at device-relative `sector`.
    pub(crate) fn map_write(&self, dev: u8, sector: u64, mut bio: Bio) -> Routed {
        let off = (sector % 8) as u32;
        let n = bio.sectors().min(8 - off);
        if n == 0 {
            bio.end(Err(EIO));
            return Routed::Done;
        }
        bio.accept_partial(n);
        let key = Key { device_id: dev, block: sector / 8 };
        let bits = bits_of(off, n);
        let barrier = bio.is_fua() || bio.is_preflush();
        let mut g = self.lock();
        let (b, k, hit, on_buffer) = loop {
            if g.error.is_some() {
                drop(g);
                bio.end(Err(EIO));
                return Routed::Done;
            }
            if !g.attached.get(dev as usize).copied().unwrap_or(false) {
                return Routed::NotAttached(bio, sector);
            }
            let head = g.index.lookup(key);
            if let (Some(h), Some(c)) = (head, g.cur) {
                if g.bufs.get(c).is_some_and(|x| x.slot == Self::line_slot(h)) {
                    break (c, h % LINES, true, true);
                }
            }
            if let Some(c) = g.cur {
                let cursor_base;
                let reserved = match g.bufs.get_mut(c) {
                    Some(x) if x.nr_lines < LINES => {
                        let k = x.nr_lines;
                        x.nr_lines += 1;
                        if let Some(l) = x.lines.get_mut(k as usize) {
                            *l = LineRec { sector: key.block * 8, dev, bits: 0 };
                        }
                        cursor_base = x.slot * u64::from(LINES);
                        Some(k)
                    }
                    _ => {
                        cursor_base = 0;
                        None
                    }
                };
                if let Some(k) = reserved {
                    g.cursor = cursor_base + u64::from(k);
                    break (c, k, head.is_some(), false);
                }
                self.seal_locked(&mut g);
            }
            match self.open_segment(&mut g) {
                Ok(()) => continue,
                Err(ms) => g = self.wait_space(g, ms),
            }
        };
        let slot = g.bufs.get(b).map_or(0, |x| x.slot);
        let line = slot as u32 * LINES + k;
        // Publish now, in allocation order (see the module docs); readers
        // of this line wait for `pending` before reading the buffer.
        match g.index.write(line, key, bits) {
            Ok(o) => Self::account(&mut g, dev, o.dirty_delta()),
            Err(_) => {
                // An index invariant is broken: refuse to go on silently.
                pr_err!("cache {}: index refused line {} (internal error)\n", self.id, line);
                g.error = Some(-5);
                drop(g);
                bio.end(Err(EIO));
                return Routed::Done;
            }
        }
        let st_idx = 1 | ((hit as usize) << 1) | ((on_buffer as usize) << 2) | (((n == 8) as usize) << 3);
        if let Some(s) = g.stats.get_mut(st_idx) {
            *s += 1;
        }
        if let Some(x) = g.bufs.get_mut(b) {
            if let Some(l) = x.lines.get_mut(k as usize) {
                l.bits |= bits;
            }
            if let Some(p) = x.pending.get_mut(k as usize) {
                *p = p.saturating_add(1);
            }
            x.writers += 1;
        }
        drop(g);

        let copied = match self.bufs.get(b) {
            Some(buf) => buf.fill_from_bio((k as usize + 1) * BLOCK + off as usize * 512, &bio),
            None => Err(EINVAL),
        };

        let mut g = self.lock();
        if copied.is_err() {
            pr_err!("cache {}: copy into RAM buffer failed (internal error)\n", self.id);
            g.error = Some(-5);
        }
        let is_cur = g.cur == Some(b);
        let Some(x) = g.bufs.get_mut(b) else {
            drop(g);
            bio.end(Err(EIO));
            return Routed::Done;
        };
        if let Some(p) = x.pending.get_mut(k as usize) {
            *p = p.saturating_sub(1);
        }
        x.writers -= 1;
        let wake_flusher = x.writers == 0 && x.sealed;
        // A FUA (or preflush) write completes once its segment is durable.
        let hold = barrier && copied.is_ok();
        let bio = if hold {
            x.barriers.push(bio);
            None
        } else {
            Some(bio)
        };
        if hold && is_cur && g.barrier_deadline.is_none() {
            let deadline_ms = u64::from(self.tun.barrier_deadline_ms.load(Ordering::Relaxed));
            g.barrier_deadline = Some(ffi::now_ms() + deadline_ms);
            self.flusher_cv.notify_all();
        }
        if wake_flusher {
            self.flusher_cv.notify_all();
        }
        self.space.notify_all();
        drop(g);
        if let Some(bio) = bio {
            bio.end(copied.map_err(|_| EIO));
        }
        Routed::Done
    }

    /// Handles a read of device `dev` at device-relative `sector`.
    pub(crate) fn map_read(&self, dev: u8, sector: u64, mut bio: Bio) -> Routed {
        let off = (sector % 8) as u32;
        let n = bio.sectors().min(8 - off);
        if n == 0 {
            bio.end(Err(EIO));
            return Routed::Done;
        }
        let key = Key { device_id: dev, block: sector / 8 };
        let mut g = self.lock();
        loop {
            let (owner, run) = g.index.read_run(key, off as u8, n as u8);
            let run = u32::from(run).clamp(1, n);
            let Some(line) = owner else {
                let idx = ((n == 8) as usize) << 3;
                if let Some(s) = g.stats.get_mut(idx) {
                    *s += 1;
                }
                drop(g);
                bio.accept_partial(run);
                return Routed::Backing(bio, sector);
            };
            let slot = Self::line_slot(line);
            let k = line % LINES;
            if let Some(b) = Self::buf_of_slot(&g, slot) {
                let pending = g.bufs.get(b).and_then(|x| x.pending.get(k as usize).copied()).unwrap_or(0);
                if pending > 0 {
                    self.space.wait(&mut g);
                    continue;
                }
                let idx = 2 | (1 << 2) | (((n == 8) as usize) << 3);
                if let Some(s) = g.stats.get_mut(idx) {
                    *s += 1;
                }
                if let Some(x) = g.bufs.get_mut(b) {
                    x.readers += 1;
                }
                drop(g);
                bio.accept_partial(run);
                let r = match self.bufs.get(b) {
                    Some(buf) => buf.copy_to_bio((k as usize + 1) * BLOCK + off as usize * 512, &mut bio),
                    None => Err(EIO),
                };
                let mut g = self.lock();
                if let Some(x) = g.bufs.get_mut(b) {
                    x.readers -= 1;
                }
                self.space.notify_all();
                drop(g);
                bio.end(r);
                return Routed::Done;
            }
            let idx = 2 | (((n == 8) as usize) << 3);
            if let Some(s) = g.stats.get_mut(idx) {
                *s += 1;
            }
            let Some(counter) = self.inflight.get(slot as usize) else {
                drop(g);
                bio.end(Err(EIO));
                return Routed::Done;
            };
            counter.fetch_add(1, Ordering::AcqRel);
            drop(g);
            bio.accept_partial(run);
            let target = self.geo.line_sector(slot as u32, k).unwrap_or(0) + u64::from(off);
            // A cache is freed only after its devices are detached and their
            // I/O completed; a slot is reused only when its counter is 0.
            // SAFETY: so `counter` (in `self.inflight`) outlives this bio.
            unsafe { bio.set_inflight(counter) };
            bio.remap(self.dev.bdev(), target);
            return Routed::Remapped(bio);
        }
    }

    /// Handles a discard: drops cached data of the range, then passes it on.
    pub(crate) fn map_discard(&self, dev: u8, sector: u64, mut bio: Bio) -> Routed {
        // At most 1 MiB per call; DM resubmits the rest.
        let n = bio.sectors().min(2048 - (sector % 2048) as u32).max(1);
        bio.accept_partial(n);
        let mut g = self.lock();
        let mut s = sector;
        let end = sector + u64::from(n);
        while s < end {
            let off = (s % 8) as u32;
            let cnt = (8 - off).min((end - s) as u32);
            let key = Key { device_id: dev, block: s / 8 };
            if let Ok(o) = g.index.discard(key, bits_of(off, cnt)) {
                Self::account(&mut g, dev, o.dirty_delta());
            }
            s += u64::from(cnt);
        }
        drop(g);
        Routed::Backing(bio, sector)
    }

    /// Handles an empty flush: completes once everything acknowledged
    /// before it is durable on the cache device.
    pub(crate) fn map_flush(&self, bio: Bio) -> Routed {
        let mut g = self.lock();
        if g.error.is_some() {
            drop(g);
            bio.end(Err(EIO));
            return Routed::Done;
        }
        let deadline_ms = u64::from(self.tun.barrier_deadline_ms.load(Ordering::Relaxed));
        // The newest segment holding acknowledged data.
        let open_has_data = g.cur.and_then(|c| g.bufs.get(c)).is_some_and(|x| x.nr_lines > 0);
        let need = if open_has_data { g.last_id } else { g.sealed_upto };
        if need <= g.last_flushed {
            g.flush_only.push(bio);
        } else if let Some(b) = g.bufs.iter().position(|x| x.seg_id == need) {
            if let Some(x) = g.bufs.get_mut(b) {
                x.barriers.push(bio);
            }
            if open_has_data && g.barrier_deadline.is_none() {
                g.barrier_deadline = Some(ffi::now_ms() + deadline_ms);
            }
        } else {
            g.flush_only.push(bio);
        }
        self.flusher_cv.notify_all();
        Routed::Done
    }

    // -----------------------------------------------------------------------
    // Control
    // -----------------------------------------------------------------------

    /// Seals the open segment and waits until everything sealed is on the
    /// cache device (used by suspend, flush_current_buffer and free_cache).
    pub(crate) fn flush_all(&self) -> Result {
        let mut g = self.lock();
        self.seal_locked(&mut g);
        let target = g.sealed_upto;
        while g.last_flushed < target {
            if let Some(e) = g.error {
                return Err(Error::from_errno(e));
            }
            if g.stopping {
                return Err(EIO);
            }
            self.flusher_cv.notify_all();
            self.space.wait(&mut g);
        }
        Ok(())
    }

    /// Accepts writes of device `dev` (backing `devt`, `sectors` long),
    /// registering it in the on-disk record.
    pub(crate) fn attach(&self, dev: u8, devt: u32, sectors: u64) -> core::result::Result<(), Msg> {
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
        let registered = {
            let r = self.record.lock();
            r.registry.get(dev as usize).copied().unwrap_or(0)
        };
        if registered != sectors {
            {
                let mut r = self.record.lock();
                if let Some(e) = r.registry.get_mut(dev as usize) {
                    *e = sectors;
                }
            }
            self.commit_record().map_err(|e| Msg::new(format_args!("cannot write the cache record (error {})", e.to_errno())))?;
        }
        let mut g = self.lock();
        if let Some(a) = g.attached.get_mut(dev as usize) {
            *a = true;
        }
        Ok(())
    }

    /// Stops accepting writes of `dev`. With `require_clean`, refuses (and
    /// changes nothing) while the device has dirty data here; on success the
    /// device is unregistered.
    pub(crate) fn detach(&self, dev: u8, require_clean: bool) -> core::result::Result<(), Msg> {
        let dirty = {
            let mut g = self.lock();
            let d = g.dirty.get(dev as usize).copied().unwrap_or(0);
            if require_clean && d > 0 {
                return Err(Msg::new(format_args!(
                    "device_id {} still has {} dirty lines in cache {}: allow migration and wait for nr_dirty_caches to reach 0",
                    dev, d, self.id
                )));
            }
            if let Some(a) = g.attached.get_mut(dev as usize) {
                *a = false;
            }
            d
        };
        if dirty == 0 {
            {
                let mut r = self.record.lock();
                if let Some(e) = r.registry.get_mut(dev as usize) {
                    *e = 0;
                }
            }
            if let Err(e) = self.commit_record() {
                pr_err!("cache {}: cannot write the record after detaching device {} (error {})\n", self.id, dev, e.to_errno());
            }
            if let Some(s) = self.backings.lock().get_mut(dev as usize) {
                *s = None;
            }
        }
        Ok(())
    }

    /// Whether `dev` has dirty data here.
    pub(crate) fn dirty_of(&self, dev: u8) -> u64 {
        self.lock().dirty.get(dev as usize).copied().unwrap_or(0)
    }

    /// Writes the on-disk record (last migrated id and device registry).
    pub(crate) fn commit_record(&self) -> Result {
        let mut r = self.record.lock();
        let last_migrated = self.lock().last_migrated;
        let generation = r.generation + 1;
        let mut rec = fmt::Record::new(self.format_id);
        rec.generation = generation;
        rec.last_migrated_segment_id = last_migrated;
        for (i, &s) in r.registry.iter().enumerate() {
            if s != 0 {
                rec.register(i as u8, s).map_err(|_| EINVAL)?;
            }
        }
        let RecordState { scratch, .. } = &mut *r;
        fmt::encode_record(&rec, scratch).map_err(|_| EINVAL)?;
        let sector = rec.sector();
        ffi::sync_io(self.dev.bdev(), sector, 8, scratch, IoKind::WriteFua)?;
        r.generation = generation;
        drop(r);
        let mut g = self.lock();
        if g.record_migrated < last_migrated {
            g.record_migrated = last_migrated;
        }
        drop(g);
        self.space.notify_all();
        Ok(())
    }

    /// Flushes, stops the threads and writes the record: the cache can be
    /// dropped afterwards. Dirty data stays in the log for a later resume.
    pub(crate) fn shutdown(&self) -> Result {
        let flushed = self.flush_all();
        {
            let mut g = self.lock();
            g.stopping = true;
        }
        self.flusher_cv.notify_all();
        self.migrator_cv.notify_all();
        self.space.notify_all();
        // Joins both threads.
        drop(self.threads.lock().take());
        let rec = self.commit_record();
        // Barrier bios still held (only after an error) fail now.
        let mut g = self.lock();
        let mut held = BioList::new();
        held.append(&mut g.flush_only);
        for b in g.bufs.iter_mut() {
            held.append(&mut b.barriers);
        }
        drop(g);
        held.end_all(Err(EIO));
        flushed.and(rec)
    }

    /// Clears the statistics.
    pub(crate) fn clear_stats(&self) {
        let mut g = self.lock();
        g.stats = [0; 16];
        g.nr_partial_flushed = 0;
    }

    /// Approximate static memory use in bytes.
    pub(crate) fn static_ram(&self) -> u64 {
        let lines = u64::from(self.geo.nr_segments()) * u64::from(LINES);
        lines * core::mem::size_of::<LineMeta>() as u64
            + lines.next_power_of_two() * 4
            + (NR_BUFS * SEG_BYTES) as u64
            + u64::from(self.geo.nr_segments()) * 5
    }

    /// Writes the manager status of this cache.
    pub(crate) fn status(&self, out: &mut ffi::Out<'_>) {
        use core::fmt::Write;
        let g = self.lock();
        // The seed's exact sequence first; additions after the counters.
        let _ = write!(
            out,
            "\nstatic RAM(approx.): {} (byte)\nallow_migrate: {}\nnr_segments: {}\nlast_migrated_segment_id: {}\nlast_flushed_segment_id: {}\ncurrent segment id: {}\ncursor: {}\n\nwrite? hit? on_buffer? fullsize?",
            self.static_ram(),
            self.tun.allow_migrate.load(Ordering::Relaxed) as u8,
            self.geo.nr_segments(),
            g.last_migrated,
            g.last_flushed,
            g.last_id,
            g.cursor,
        );
        for (i, c) in g.stats.iter().enumerate() {
            let _ = write!(out, "\n{} {} {} {} {}", i & 1, (i >> 1) & 1, (i >> 2) & 1, (i >> 3) & 1, c);
        }
        let _ = write!(
            out,
            "\n\nnr_dirty_caches: {}\nnr_partial_flushed: {}\nerror: {}",
            g.dirty.iter().sum::<u64>(),
            g.nr_partial_flushed,
            g.error.or(g.migrate_error).unwrap_or(0),
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

/// Builds a cache object around an opened, validated device. Recovery fills
/// the index afterwards, then [`start`] launches the threads.
pub(crate) fn new_cache(id: u8, dev: BdevFile, geo: Geometry, format_id: u64, generation: u64, registry: [u64; SLOTS]) -> Result<Arc<Cache>> {
    let nr_lines = geo.nr_lines() as usize;
    let lines = kernel::alloc::VVec::from_elem(LineMeta::EMPTY, nr_lines, GFP_KERNEL)?;
    let buckets = kernel::alloc::VVec::from_elem(0u32, crate::wbformat::index::buckets_for(nr_lines), GFP_KERNEL)?;
    let index = Index::new(lines, buckets).map_err(|_| ENOMEM)?;
    let mut bufs_state = KVec::with_capacity(NR_BUFS, GFP_KERNEL)?;
    let mut bufs = KVec::with_capacity(NR_BUFS, GFP_KERNEL)?;
    for _ in 0..NR_BUFS {
        bufs_state.push(
            BufState {
                seg_id: 0,
                slot: 0,
                nr_lines: 0,
                writers: 0,
                readers: 0,
                sealed: false,
                pending: KVec::from_elem(0u8, LINES as usize, GFP_KERNEL)?,
                lines: KVec::from_elem(LineRec::default(), LINES as usize, GFP_KERNEL)?,
                barriers: BioList::new(),
            },
            GFP_KERNEL,
        )?;
        bufs.push(SharedBuf::new(SEG_BYTES)?, GFP_KERNEL)?;
    }
    let nr_slots = geo.nr_segments() as usize;
    let mut inflight = KVVec::with_capacity(nr_slots, GFP_KERNEL)?;
    for _ in 0..nr_slots {
        inflight.push(AtomicI32::new(0), GFP_KERNEL)?;
    }
    let seg_lines = KVVec::from_elem(0u8, nr_slots, GFP_KERNEL)?;
    let scratch = KVec::from_elem(0u8, BLOCK, GFP_KERNEL)?;
    let module = ModuleRef::get()?;
    let state = State {
        index,
        bufs: bufs_state,
        cur: None,
        last_id: 0,
        sealed_upto: 0,
        last_flushed: 0,
        last_migrated: 0,
        record_migrated: 0,
        seg_lines,
        flush_only: BioList::new(),
        barrier_deadline: None,
        attached: [false; SLOTS],
        dirty: [0; SLOTS],
        urgent: false,
        error: None,
        migrate_error: None,
        stopping: false,
        stats: [0; 16],
        cursor: 0,
        nr_partial_flushed: 0,
    };
    Arc::pin_init(
        pin_init!(Cache {
            id,
            dev,
            geo,
            format_id,
            state <- new_spinlock!(state, "writeboost_cache"),
            space <- new_condvar!("writeboost_space"),
            flusher_cv <- new_condvar!("writeboost_flusher"),
            migrator_cv <- new_condvar!("writeboost_migrator"),
            record <- new_mutex!(RecordState { generation, registry, scratch }, "writeboost_record"),
            backings <- new_mutex!([const { None }; SLOTS], "writeboost_backings"),
            threads <- new_mutex!(None, "writeboost_threads"),
            sysfs <- new_mutex!(None, "writeboost_sysfs"),
            bufs,
            inflight,
            tun: Tunables {
                allow_migrate: AtomicBool::new(false),
                force_migrate: AtomicBool::new(false),
                barrier_deadline_ms: AtomicU32::new(3),
                nr_max_batched_migration: AtomicU32::new(4),
                update_interval: AtomicU32::new(1),
                commit_super_block_interval: AtomicU32::new(0),
                flush_current_buffer_interval: AtomicU32::new(0),
            },
            flushes: AtomicU64::new(0),
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
    *cache.threads.lock() = Some(Threads { _flusher: flusher, _migrator: migrator });
    Ok(())
}
