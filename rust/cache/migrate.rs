// SPDX-License-Identifier: GPL-2.0

//! The migrator thread: writes dirty lines back to the backing devices in
//! log order, then records the progress on the cache device.
//!
//! A round takes up to `nr_max_batched_migration` flushed segments, oldest
//! first, snapshots the dirty bits of their lines, reads them from the
//! cache device, writes the dirty sectors to the backing devices sorted by
//! (device, sector), flushes those devices, and only then marks the lines
//! clean and writes the record. Because the index keeps the dirty sectors of
//! one block disjoint across lines, no round ever writes stale data over
//! newer data. Each device is written back on its own: a device whose
//! backing device fails is marked failing by the engine (its lines stay
//! dirty, parked, retried after 1, 2, 4 ... 30 s) while the other devices'
//! lines are written back and cleaned. When parked lines hold up the log
//! the engine has the migrator move them to its head (a relocation), so a
//! dead disk never stops the other devices. A round that cannot read the
//! cache device changes nothing and is retried after a second; dirty data
//! is never dropped.
//!
//! Migration runs when `allow_migrate` (or `force_migrate`) is set, and
//! always when writers wait for a segment slot (the log is full).

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::time::msecs_to_jiffies;

use super::{Cache, BLOCK, SEG_BYTES, SLOTS};
use crate::wbformat::engine::{self, MigEntry, MigratorJob};

const LINES: u32 = crate::wbformat::format::LINES_PER_SEGMENT;
use crate::ffi::{self, BdevFile, IoBatch, IoKind, ThreadBody};

/// Largest batch the migrator accepts.
pub(crate) const MAX_BATCH: u32 = 32;

/// The migrator thread's state.
pub(crate) struct Migrator {
    cache: Arc<Cache>,
}

impl Migrator {
    pub(crate) fn new(cache: Arc<Cache>) -> Result<Self> {
        Ok(Self { cache })
    }
}

struct Scratch {
    data: kernel::alloc::VVec<u8>,
    entries: kernel::alloc::VVec<MigEntry>,
    batch: u32,
}

impl Scratch {
    fn new(batch: u32) -> Result<Self> {
        Ok(Self {
            data: kernel::alloc::VVec::from_elem(0u8, batch as usize * SEG_BYTES, GFP_KERNEL)?,
            entries: kernel::alloc::VVec::from_elem(MigEntry::default(), (batch * LINES) as usize, GFP_KERNEL)?,
            batch,
        })
    }
}

impl ThreadBody for Migrator {
    fn run(&self) {
        let c = &*self.cache;
        let mut scratch: Option<Scratch> = None;
        let mut backoff_ms: u32 = 0;
        // The record write failed last time (logged once, not per retry).
        let mut record_failing = false;
        loop {
            if ffi::should_stop() {
                return;
            }
            let want = c.tun.nr_max_batched_migration.load(Ordering::Relaxed).clamp(1, MAX_BATCH);
            if scratch.as_ref().map_or(true, |s| s.batch != want) {
                scratch = None;
                match Scratch::new(want) {
                    Ok(s) => scratch = Some(s),
                    Err(_) => {
                        pr_err!("cache {}: migration: out of memory for a batch of {}; retrying\n", c.id, want);
                        ffi::msleep(1000);
                        continue;
                    }
                }
            }
            let Some(s) = scratch.as_mut() else { continue };
            let (job, count) = {
                let mut g = c.lock();
                loop {
                    if ffi::should_stop() {
                        return;
                    }
                    if backoff_ms > 0 {
                        let _ = c.migrator_cv.wait_interruptible_timeout(&mut g, msecs_to_jiffies(backoff_ms));
                        backoff_ms = 0;
                        continue;
                    }
                    let force = c.tun.force_migrate.load(Ordering::Relaxed);
                    let allowed = c.tun.allow_migrate.load(Ordering::Relaxed) || force;
                    if force && g.eng.drain() {
                        c.flusher_cv.notify_all();
                    }
                    let sealed = g.eng.sealed_upto();
                    let job = g.eng.migrator_next(allowed, s.batch, ffi::now_ms());
                    if g.eng.sealed_upto() != sealed {
                        // The relocation's own segment was sealed.
                        c.flusher_cv.notify_all();
                    }
                    let (start, end, parked) = match job {
                        MigratorJob::Exit => return,
                        MigratorJob::Idle { ms, wake_flusher } => {
                            if wake_flusher {
                                c.flusher_cv.notify_all();
                            }
                            let _ = c.migrator_cv.wait_interruptible_timeout(&mut g, msecs_to_jiffies(ms as u32));
                            continue;
                        }
                        MigratorJob::Record => break (job, 0),
                        MigratorJob::Round { start, end } => (start, end, false),
                        MigratorJob::Relocate { id } => (id, id, true),
                    };
                    // The snapshot is taken one segment per lock hold (the
                    // round is in flight: no slot of it can be reused).
                    let mut count = 0usize;
                    let entries = &mut s.entries;
                    for (i, id) in (0u32..).zip(start..=end) {
                        if i > 0 {
                            drop(g);
                            g = c.lock();
                        }
                        g.eng.round_entries(id, id, parked, |mut e| {
                            if let Some(x) = entries.get_mut(count) {
                                e.seg = i;
                                *x = e;
                                count += 1;
                            }
                        });
                    }
                    break (job, count);
                }
            };
            match job {
                MigratorJob::Round { start, end } => {
                    let mut failed = DevErrors::new();
                    let r = migrate_batch(c, s, start, end, count, &mut failed).map(|n| c.wb_stats.round(n));
                    let entries = s.entries.get(..count).unwrap_or(&[]);
                    let before = failing_set(&c.lock().eng, entries);
                    // Cleaned at most one segment's worth of lines per lock
                    // hold.
                    if r.is_ok() {
                        for piece in entries.chunks(LINES as usize) {
                            c.lock().eng.round_clean(piece, &|d| failed.get(d));
                        }
                    }
                    let mut g = c.lock();
                    g.eng.round_finish(start, end, entries, r.map(|_| ()).map_err(|e| e.to_errno()), &|d| failed.get(d));
                    let after = failing_set(&g.eng, entries);
                    let dirty = |d: u8| g.eng.dirty_of(d);
                    report_transitions(c, &before, &after, &failed, dirty);
                    drop(g);
                    if r.is_ok() && entries.iter().any(|e| failed.get(e.dev).is_none()) {
                        c.progressed();
                    }
                    if r.is_err() {
                        c.mig_io_failing.store(true, Ordering::Relaxed);
                        backoff_ms = 1000;
                    }
                    c.space.notify_all();
                    c.release_clean_claims();
                }
                MigratorJob::Relocate { id } => {
                    match relocate(c, s, id, count) {
                        Ok(0) => {}
                        // Progress for writers waiting for room only if
                        // they can get some.
                        Ok(_) if c.lock().eng.writer_room() => c.progressed(),
                        Ok(_) => {}
                        Err(e) => {
                            pr_err!("cache {}: moving parked lines of segment {} failed (error {}); will retry\n", c.id, id, e.to_errno());
                            c.mig_io_failing.store(true, Ordering::Relaxed);
                            backoff_ms = 1000;
                        }
                    }
                    let mut g = c.lock();
                    let sealed = g.eng.sealed_upto();
                    g.eng.relocate_done();
                    c.unlock_waking_flusher(g, sealed);
                    c.space.notify_all();
                }
                MigratorJob::Record => match c.commit_record() {
                    Err(e) => {
                        c.mig_io_failing.store(true, Ordering::Relaxed);
                        if !record_failing {
                            pr_err!("cache {}: writing the record failed (error {}); retrying every second\n", c.id, e.to_errno());
                        }
                        record_failing = true;
                        backoff_ms = 1000;
                    }
                    Ok(()) => {
                        if record_failing {
                            pr_info!("cache {}: writing the record works again\n", c.id);
                        }
                        record_failing = false;
                        c.mig_io_failing.store(false, Ordering::Relaxed);
                        // A removed device's claim waits for the record
                        // to pass its lines.
                        c.release_clean_claims();
                    }
                },
                _ => {}
            }
        }
    }
}

/// Write-back errors of one round, per device id.
struct DevErrors([i32; SLOTS]);

impl DevErrors {
    fn new() -> Self {
        Self([0; SLOTS])
    }
    fn set(&mut self, dev: u8, errno: i32) {
        if let Some(x) = self.0.get_mut(dev as usize) {
            if *x == 0 {
                *x = if errno == 0 { -5 } else { errno };
            }
        }
    }
    fn get(&self, dev: u8) -> Option<i32> {
        self.0.get(dev as usize).copied().filter(|&e| e != 0)
    }
}

/// Which devices of `entries` are failing (bit per device id).
fn failing_set(eng: &crate::wbformat::engine::Engine<super::KStore>, entries: &[MigEntry]) -> [bool; SLOTS] {
    let mut out = [false; SLOTS];
    for e in entries {
        if let Some(x) = out.get_mut(e.dev as usize) {
            *x = eng.dev(e.dev).fail_errno != 0;
        }
    }
    out
}

/// Logs a device's write-back failing, or working again, once per change
/// (a dead disk fails every retry; the log shows it once).
fn report_transitions(c: &Cache, before: &[bool; SLOTS], after: &[bool; SLOTS], failed: &DevErrors, dirty: impl Fn(u8) -> u64) {
    for d in 1..SLOTS {
        let dev = d as u8;
        match (before.get(d).copied().unwrap_or(false), after.get(d).copied().unwrap_or(false)) {
            (false, true) if failed.get(dev) == Some(EBUSY.to_errno()) => pr_warn!(
                "cache {}: device_id {}: write-back paused: another table or user holds its backing device; its {} dirty lines stay in the cache and the claim is retried (every {} s at most)\n",
                c.id,
                dev,
                dirty(dev),
                crate::wbformat::engine::RETRY_MAX_MS / 1000
            ),
            (false, true) => pr_err!(
                "cache {}: device_id {}: write-back to its backing device failed (error {}); its {} dirty lines stay in the cache, parked, and are retried (every {} s at most)\n",
                c.id,
                dev,
                failed.get(dev).unwrap_or(-5),
                dirty(dev),
                crate::wbformat::engine::RETRY_MAX_MS / 1000
            ),
            (true, false) => pr_info!("cache {}: device_id {}: write-back works again\n", c.id, dev),
            _ => {}
        }
    }
}

/// Reads segment `id` and moves its parked lines (`s.entries[..count]`) to
/// the head of the log (see `MigratorJob::Relocate`). Returns how many
/// lines it moved.
fn relocate(c: &Cache, s: &mut Scratch, id: u64, count: usize) -> Result<usize> {
    let entries = s.entries.get(..count).ok_or(EINVAL)?;
    let top = entries.iter().map(|e| e.k + 1).max().unwrap_or(0);
    if top == 0 {
        return Ok(0);
    }
    let mut moved = 0usize;
    let slot = c.geo.slot_of_id(id).map_err(|_| EINVAL)?;
    let sector = c.geo.line_sector(slot, 0).map_err(|_| EINVAL)?;
    let buf = s.data.get_mut(..top as usize * BLOCK).ok_or(EINVAL)?;
    ffi::sync_io(c.dev.bdev(), sector, u64::from(top) * 8, buf, IoKind::Read)?;
    let data: &[u8] = &s.data;
    for e in entries.iter() {
        let mut tries = 0u32;
        let step = loop {
            let r = c.lock().eng.begin_relocate(e.line, &c.slot_busy());
            match r {
                Err(crate::wbformat::engine::Wait::Sleep(ms)) if tries < 100 => {
                    tries += 1;
                    ffi::msleep(ms);
                }
                other => break other,
            }
        };
        let Ok(Some((t, bits))) = step else {
            // No room (or nothing left to move): the rest stays parked here.
            if step.is_err() {
                break;
            }
            continue;
        };
        let base = e.k as usize * BLOCK;
        let mut ok = true;
        for j in 0..8usize {
            if bits & (1 << j) == 0 {
                continue;
            }
            let src = data.get(base + j * 512..base + (j + 1) * 512);
            let r = match (src, c.bufs.get(t.buf)) {
                (Some(src), Some(b)) => b.fill_from_slice(t.byte_off + j * 512, src),
                _ => Err(EINVAL),
            };
            ok &= r.is_ok();
        }
        let done = c.lock().eng.end_write(t, ok, false, ffi::now_ms(), c.deadline_ms());
        if done.wake_flusher {
            c.flusher_cv.notify_all();
        }
        if !ok {
            return Err(EINVAL);
        }
        moved += 1;
    }
    c.flusher_cv.notify_all();
    Ok(moved)
}

/// Reads the batch's dirty lines and writes them back, each device on its
/// own: a device whose writes or flush fail is noted in `failed` and the
/// others go on. `Err`: the cache device could not be read (nothing was
/// written back). Nothing in memory changes.
fn migrate_batch(c: &Cache, s: &mut Scratch, start: u64, end: u64, count: usize, failed: &mut DevErrors) -> Result<WriteBackCount> {
    let entries = s.entries.get_mut(..count).ok_or(EINVAL)?;
    // Read each segment of the batch that has dirty lines (one I/O each, up
    // to its highest dirty line).
    let bdev = c.dev.bdev();
    for (i, id) in (start..=end).enumerate() {
        let top = entries.iter().filter(|e| e.seg == i as u32).map(|e| e.k + 1).max().unwrap_or(0);
        if top == 0 {
            continue;
        }
        let slot = c.geo.slot_of_id(id).map_err(|_| EINVAL)?;
        let sector = c.geo.line_sector(slot, 0).map_err(|_| EINVAL)?;
        let off = i * SEG_BYTES;
        let buf = s.data.get_mut(off..off + top as usize * BLOCK).ok_or(EINVAL)?;
        ffi::sync_io(bdev, sector, u64::from(top) * 8, buf, IoKind::Read).map_err(|e| {
            pr_err!("cache {}: migration: reading segment {} from the cache device failed (error {})\n", c.id, id, e.to_errno());
            e
        })?;
    }
    let devs = backing_files(c, entries, failed);
    entries.sort_unstable_by_key(|e| (e.dev, e.sector));
    let data: &[u8] = &s.data;
    write_entries(
        entries,
        &devs,
        failed,
        |e| Ok((0, e.seg as usize * SEG_BYTES + e.k as usize * BLOCK)),
        |_, off, len| data.get(off..off + len).ok_or(EINVAL),
    )
}

/// The backing devices of the devices in `entries`; a device without one
/// is noted in `failed` (ENODEV), and so is a removed device whose disk
/// this cache could not claim (EBUSY: its write-back is paused, see
/// `Backings::claim_paused`).
fn backing_files(c: &Cache, entries: &[MigEntry], failed: &mut DevErrors) -> [Option<Arc<BdevFile>>; SLOTS] {
    let mut devs: [Option<Arc<BdevFile>>; SLOTS] = [const { None }; SLOTS];
    let mut bk = c.backings.lock();
    for e in entries.iter() {
        let d = e.dev as usize;
        if devs.get(d).is_some_and(|x| x.is_none()) && failed.get(e.dev).is_none() {
            if !bk.claim_paused(c.id, e.dev) {
                failed.set(e.dev, EBUSY.to_errno());
                continue;
            }
            match bk.get(d).and_then(|x| x.clone()) {
                Some(f) => devs[d] = Some(f),
                None => failed.set(e.dev, ENODEV.to_errno()),
            }
        }
    }
    devs
}

/// What a call of [`write_entries`] submitted.
#[derive(Clone, Copy, Default)]
pub(crate) struct WriteBackCount {
    /// Write I/Os to backing devices.
    pub(crate) ios: u64,
    /// Bytes they carried.
    pub(crate) bytes: u64,
}

/// Writes the dirty sectors of `entries` (sorted by device and sector) to
/// their backing devices, one batch per device, all in flight together,
/// then flushes each device. `span(e)`: where entry `e`'s 4 KiB of data
/// are (a region and a byte offset in it); `bytes(region, off, len)`: those
/// bytes. Dirty sectors that follow each other both on the backing device
/// and in memory (consecutive lines of one segment, as sequential writes
/// leave them) go in one write of up to 1 MiB. A device whose writes or
/// flush fail is noted in `failed`; the others go on.
fn write_entries<'a>(
    entries: &[MigEntry],
    devs: &[Option<Arc<BdevFile>>; SLOTS],
    failed: &mut DevErrors,
    span: impl Fn(&MigEntry) -> Result<(usize, usize)>,
    bytes: impl Fn(usize, usize, usize) -> Result<&'a [u8]>,
) -> Result<WriteBackCount> {
    let mut batches: KVec<(u8, IoBatch<'a>)> = KVec::new();
    let mut count = WriteBackCount::default();
    engine::writeback_runs(entries, span, |r| {
        // A device without a backing file or whose I/O failed gets nothing.
        let Some(f) = devs.get(r.dev as usize).and_then(|x| x.as_ref()) else { return Ok(()) };
        if failed.get(r.dev).is_some() {
            return Ok(());
        }
        if batches.last().map_or(true, |b| b.0 != r.dev) {
            batches.push((r.dev, IoBatch::new()?), GFP_KERNEL)?;
        }
        let Some((_, batch)) = batches.last_mut() else { return Err(EINVAL) };
        let len = (r.sectors * 512) as usize;
        let data = bytes(r.region, r.off, len)?;
        match batch.add_write(f.bdev(), r.sector, r.sectors, data, IoKind::Write) {
            Ok(()) => {
                count.ios += 1;
                count.bytes += len as u64;
            }
            Err(err) => failed.set(r.dev, err.to_errno()),
        }
        Ok(())
    })?;
    for (dev, batch) in batches.iter_mut() {
        let r = batch.wait().and_then(|()| match devs.get(*dev as usize).and_then(|x| x.as_ref()) {
            Some(f) => f.bdev().flush(),
            None => Err(ENODEV),
        });
        if let Err(e) = r {
            failed.set(*dev, e.to_errno());
        }
    }
    Ok(count)
}

/// The cache device failed: writes the lines whose newest copy is still in
/// a RAM buffer straight to their backing devices (where those work), so
/// they survive the cache. Called by the flusher once, after the failed
/// segment write; data only in segments on the failed device is not
/// reachable (see Documentation/design.md, "Errors").
pub(crate) fn salvage(c: &Cache) {
    // Copies into the buffers still running end soon (new ones fail).
    for _ in 0..100 {
        let busy = {
            let g = c.lock();
            (0..super::NR_BUFS).any(|b| g.eng.buf(b).is_some_and(|x| x.writers > 0))
        };
        if !busy {
            break;
        }
        ffi::msleep(10);
    }
    let mut entries: KVec<MigEntry> = KVec::new();
    let mut short = false;
    c.lock().eng.salvage_entries(|e| {
        if entries.push(e, GFP_ATOMIC).is_err() {
            short = true;
        }
    });
    if short {
        pr_err!("cache {}: out of memory listing the RAM buffers' lines; writing back what was listed\n", c.id);
    }
    entries.sort_unstable_by_key(|e| (e.dev, e.sector));
    let mut failed = DevErrors::new();
    let devs = backing_files(c, &entries, &mut failed);
    let r = write_entries(
        &entries,
        &devs,
        &mut failed,
        |e| Ok((e.seg as usize, crate::wbformat::engine::line_offset(e.k, 0))),
        |region, off, len| {
            let b = c.bufs.get(region).ok_or(EINVAL)?;
            // SAFETY: the engine is in error, so no writer enters a buffer,
            // and the copies that were running ended above; nobody writes
            // the bytes of these lines while the slices live.
            unsafe { b.slice(off, len) }
        },
    );
    c.lock().eng.salvage_done(&entries, &|d| if r.is_err() { Some(-5) } else { failed.get(d) });
    let lost = entries.iter().filter(|e| r.is_err() || failed.get(e.dev).is_some()).count();
    pr_err!(
        "cache {}: the cache device failed: wrote {} lines still in RAM straight to the backing devices ({} could not be written)\n",
        c.id,
        entries.len() - lost,
        lost
    );
}
