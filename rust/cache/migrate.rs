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
//! newer data. A failed round changes nothing and is retried with backoff;
//! dirty data is never dropped.
//!
//! Migration runs when `allow_migrate` (or `force_migrate`) is set, and
//! always when writers wait for a segment slot (the log is full).

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::time::msecs_to_jiffies;

use super::{Cache, BLOCK, SEG_BYTES, SLOTS};
use crate::wbformat::engine::{MigEntry, MigratorJob};

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
                    match g.eng.migrator_next(allowed, s.batch) {
                        MigratorJob::Exit => return,
                        MigratorJob::Idle { ms, wake_flusher } => {
                            if wake_flusher {
                                c.flusher_cv.notify_all();
                            }
                            let _ = c.migrator_cv.wait_interruptible_timeout(&mut g, msecs_to_jiffies(ms as u32));
                        }
                        MigratorJob::Record => break (MigratorJob::Record, 0),
                        job @ MigratorJob::Round { start, end } => {
                            let mut count = 0usize;
                            let entries = &mut s.entries;
                            g.eng.round_entries(start, end, |e| {
                                if let Some(x) = entries.get_mut(count) {
                                    *x = e;
                                    count += 1;
                                }
                            });
                            break (job, count);
                        }
                    }
                }
            };
            match job {
                MigratorJob::Round { start, end } => {
                    let r = migrate_batch(c, s, start, end, count);
                    let entries = s.entries.get(..count).unwrap_or(&[]);
                    c.lock().eng.round_done(start, end, entries, r.map_err(|e| e.to_errno()));
                    if r.is_err() {
                        backoff_ms = 1000;
                    }
                    c.space.notify_all();
                }
                MigratorJob::Record => {
                    if let Err(e) = c.commit_record() {
                        pr_err!("cache {}: writing the record failed (error {}); retrying\n", c.id, e.to_errno());
                        backoff_ms = 1000;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Reads the batch's dirty lines and writes them back; nothing in memory
/// changes.
fn migrate_batch(c: &Cache, s: &mut Scratch, start: u64, end: u64, count: usize) -> Result {
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
    // The backing devices.
    let mut devs: [Option<Arc<BdevFile>>; SLOTS] = [const { None }; SLOTS];
    {
        let bk = c.backings.lock();
        for e in entries.iter() {
            let d = e.dev as usize;
            if devs.get(d).is_some_and(|x| x.is_none()) {
                match bk.get(d).and_then(|x| x.clone()) {
                    Some(f) => devs[d] = Some(f),
                    None => {
                        pr_err!("cache {}: migration: device_id {} has dirty data but no backing device is known\n", c.id, e.dev);
                        return Err(ENODEV);
                    }
                }
            }
        }
    }
    entries.sort_unstable_by_key(|e| (e.dev, e.sector));
    let data: &[u8] = &s.data;
    let mut batch = IoBatch::new()?;
    for e in entries.iter() {
        let Some(f) = devs.get(e.dev as usize).and_then(|x| x.as_ref()) else { return Err(ENODEV) };
        let base = e.seg as usize * SEG_BYTES + e.k as usize * BLOCK;
        let line = data.get(base..base + BLOCK).ok_or(EINVAL)?;
        // One write per run of consecutive dirty sectors.
        let mut j = 0u32;
        while j < 8 {
            if e.bits & (1 << j) == 0 {
                j += 1;
                continue;
            }
            let mut n = 1;
            while j + n < 8 && e.bits & (1 << (j + n)) != 0 {
                n += 1;
            }
            let part = line.get(j as usize * 512..(j + n) as usize * 512).ok_or(EINVAL)?;
            batch.add_write(f.bdev(), e.sector + u64::from(j), u64::from(n), part, IoKind::Write)?;
            j += n;
        }
    }
    batch.wait().map_err(|e| {
        pr_err!("cache {}: migration: writing back segments {}..{} failed (error {}); will retry\n", c.id, start, end, e.to_errno());
        e
    })?;
    for f in devs.iter().flatten() {
        f.bdev().flush().map_err(|e| {
            pr_err!("cache {}: migration: flushing backing device {} failed (error {}); will retry\n", c.id, ffi::DevT(f.bdev().devt()), e.to_errno());
            e
        })?;
    }
    Ok(())
}
