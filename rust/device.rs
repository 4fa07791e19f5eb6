// SPDX-License-Identifier: GPL-2.0

//! The `writeboost` target: a logical device over a backing disk.
//!
//! Two table forms, chosen by the first argument (`wbformat::compat`): a
//! device (a path or `maj:min`) starts the dm-writeboost 2.2 form, anything
//! else is the 2013 form `<start> <len> writeboost <device_id>
//! <backing path> <cache_id>` (this file; with `cache_id` 0 the device
//! passes every bio to the backing device); the 2.2 form is `<backing
//! path> <cache path> [<#opt args> <key> <value> ...]` with a private cache
//! (`crate::device22`).

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::cache::{Cache, Routed};
use crate::device22::PrivateTarget;
use crate::wbformat::compat;
use crate::ctr_err;
use crate::ffi::{Args, Bio, BioOp, CtrError, DevT, DmDev, MapResult, Msg, Out, Target, TargetOps};
use crate::parse;
use crate::registry::{self, DevEntry, DeviceClash, NewDev, Tables, MAX_ID};
use crate::wbformat::index::MAX_BACKING_SECTORS;

/// The private data of one `writeboost` target: a table of either form.
pub(crate) enum DeviceTarget {
    Legacy(LegacyTarget),
    Private(PrivateTarget),
}

/// A `writeboost` target of the 2013 form.
pub(crate) struct LegacyTarget {
    entry: Arc<DevEntry>,
    backing: DmDev,
    /// The cache id of this table (0 = pass-through).
    cache_id: u8,
    /// First sector of this target in its table.
    begin: u64,
    /// The table's binding was applied by a resume; later resumes of the
    /// same table (after a plain suspend) change nothing.
    applied: AtomicBool,
    /// The table this target is part of.
    table: usize,
    /// Last, so it drops after `backing` released the disk.
    _claim: ClaimOnDrop,
}

/// When dropped: if device `id` is gone but still has dirty data in a
/// cache, that cache claims its backing disk (see
/// `Cache::claim_if_dirty`). Dropped after the table let go of the disk.
struct ClaimOnDrop {
    id: u8,
    /// The backing disk, once opened (0 before).
    devt: u32,
}

impl Drop for ClaimOnDrop {
    fn drop(&mut self) {
        registry::claim_removed(self.id, self.devt);
    }
}

/// What resuming a table changes in its device's binding.
struct Plan {
    /// Leave this cache first (the device has no dirty data in it).
    detach: Option<Arc<Cache>>,
    /// Then attach to this one (possibly the bound cache again, which
    /// registers the current backing size).
    attach: Option<Arc<Cache>>,
}

type Refusal = (Error, Msg);

fn same(a: &Option<Arc<Cache>>, b: &Arc<Cache>) -> bool {
    a.as_ref().is_some_and(|a| Arc::ptr_eq(a, b))
}

/// Works out, under the registry lock, what resuming a table with
/// `cache_id` would change, or why it would be refused. The constructor
/// calls it to refuse a table early; the resume calls it again and then
/// does the I/O.
fn plan(t: &Tables, entry: &DevEntry, cache_id: u8) -> core::result::Result<Plan, Refusal> {
    let id = entry.id;
    let bound = entry.cache();
    let target = if cache_id != 0 {
        match t.cache(cache_id) {
            Some(c) => Some(c.clone()),
            None if t.cache_reserved(cache_id) => {
                return Err((EBUSY, Msg::new(format_args!("cache {} is being resumed or freed; try again", cache_id))));
            }
            None => {
                return Err((
                    ENOENT,
                    Msg::new(format_args!("cache {} does not exist (resume it with writeboost-mgr first)", cache_id)),
                ));
            }
        }
    } else if bound.is_none() {
        // A cache that holds data of this id (the device was removed
        // dirty, or created after resume_cache) takes its I/O, so reads
        // never miss that data; so does one whose written-back lines of it
        // the record has not passed yet, so that writes made meanwhile
        // supersede them in its log (made around it, a replay after a
        // crash would write the older lines back over them).
        t.caches.iter().flatten().find(|c| c.holds(id)).cloned()
    } else {
        None
    };
    if let Some(h) = t.caches.iter().flatten().find(|c| !same(&bound, c) && !same(&target, c) && c.holds(id)) {
        return Err((
            EBUSY,
            Msg::new(format_args!("cache {} holds {} of device_id {}: use cache_id {} until they are written back", h.id, h.held(id), id, h.id)),
        ));
    }
    let detach = bound.filter(|b| !same(&target, b));
    if let Some(b) = &detach {
        let d = b.dirty_of(id);
        if d > 0 {
            return Err((
                EBUSY,
                Msg::new(format_args!(
                    "cannot detach: device_id {} still has {} dirty lines in cache {}: allow migration and wait for nr_dirty_caches to reach 0",
                    id, d, b.id
                )),
            ));
        }
    }
    Ok(Plan { detach, attach: target })
}

/// Refuses a table over a backing disk (`devt`) that holds dirty data of
/// another device id in some cache: the disk's contents are stale, and that
/// data would be written back over the new device's writes.
fn check_backing_free(t: &Tables, id: u8, devt: u32) -> core::result::Result<(), CtrError> {
    for c in t.caches.iter().flatten() {
        // The id's own dirty data is for the disk it was attached with.
        if let Some(other) = c.backing_of(id).filter(|&d| d != devt) {
            if c.holds(id) {
                return Err(ctr_err!(
                    EINVAL,
                    "cache {} holds {} of device_id {} for disk {}, not {}",
                    c.id,
                    c.held(id),
                    id,
                    DevT(other),
                    DevT(devt)
                ));
            }
        }
        if let Some((holder, dirty)) = c.dirty_holder_of(devt, id) {
            return Err(ctr_err!(
                EBUSY,
                "disk {} holds {} of device_id {} in cache {}: create device_id {} over it first, not {}",
                DevT(devt),
                crate::cache::Held(dirty),
                holder,
                c.id,
                holder,
                id
            ));
        }
    }
    Ok(())
}

impl LegacyTarget {
    fn route(&self, r: Routed) -> MapResult {
        match r {
            Routed::NotAttached(mut bio, sector) | Routed::Around(mut bio, sector) => {
                // Before the write is submitted: a FLUSH that arrives after
                // it completed then also flushes the backing device.
                self.entry.passthrough.store(true, Ordering::SeqCst);
                bio.remap(self.backing.bdev(), sector);
                MapResult::Remapped(bio)
            }
            Routed::Backing(mut bio, sector) => {
                bio.remap(self.backing.bdev(), sector);
                MapResult::Remapped(bio)
            }
            Routed::Remapped(bio) => MapResult::Remapped(bio),
            Routed::Done => MapResult::Submitted,
        }
    }

    /// Does the I/O of a planned binding change (the device is suspended).
    fn apply(&self, p: &Plan) -> core::result::Result<(), Refusal> {
        let id = self.entry.id;
        if let Some(b) = &p.detach {
            b.detach(id, true).map_err(|m| (EBUSY, m))?;
            self.entry.bind(None);
            pr_info!("device_id {}: detached from cache {}\n", id, b.id);
        }
        if let Some(c) = &p.attach {
            let was = self.entry.cache();
            c.attach(id, self.entry.backing_devt, self.entry.backing_sectors)
                .map_err(|m| (EINVAL, Msg::new(format_args!("cannot attach to cache {}: {}", c.id, m.as_str()))))?;
            // The attach flushed the backing device after every earlier
            // write completed (the device is suspended).
            self.entry.passthrough.store(false, Ordering::SeqCst);
            self.entry.bind(Some(c.clone()));
            if !same(&was, c) {
                if self.cache_id == 0 {
                    pr_info!("device_id {}: cache {} holds {} of it; I/O goes through that cache\n", id, c.id, c.held(id));
                } else {
                    pr_info!("device_id {}: attached to cache {}\n", id, c.id);
                }
            }
        }
        Ok(())
    }
}

impl TargetOps for DeviceTarget {
    fn ctr(t: &Target<'_>, args: &Args<'_>) -> core::result::Result<KBox<Self>, CtrError> {
        // Allocated first, so nothing needs undoing if it fails.
        let slot = KBox::<DeviceTarget>::new_uninit(GFP_KERNEL).map_err(|_| ctr_err!(ENOMEM, "out of memory"))?;
        let this = if compat::is_22_form(args.str(0)) {
            DeviceTarget::Private(PrivateTarget::ctr(t, args)?)
        } else {
            DeviceTarget::Legacy(LegacyTarget::ctr(t, args)?)
        };
        Ok(KBox::write(slot, this))
    }

    fn dtr(&self, t: &Target<'_>) {
        match self {
            DeviceTarget::Legacy(d) => d.dtr(t),
            DeviceTarget::Private(d) => d.dtr(),
        }
    }

    fn map(&self, t: &Target<'_>, bio: Bio) -> MapResult {
        match self {
            DeviceTarget::Legacy(d) => d.map(t, bio),
            DeviceTarget::Private(d) => d.map(bio),
        }
    }

    fn status(&self, t: &Target<'_>, table: bool, out: &mut Out<'_>) {
        match self {
            DeviceTarget::Legacy(d) => d.status(t, table, out),
            DeviceTarget::Private(d) => d.status(table, out),
        }
    }

    fn postsuspend(&self, t: &Target<'_>) {
        match self {
            DeviceTarget::Legacy(d) => d.postsuspend(t),
            DeviceTarget::Private(d) => d.postsuspend(),
        }
    }

    fn preresume(&self, t: &Target<'_>) -> Result {
        match self {
            DeviceTarget::Legacy(d) => d.preresume(t),
            DeviceTarget::Private(d) => d.preresume(),
        }
    }

    fn message(&self, t: &Target<'_>, args: &Args<'_>, out: &mut Out<'_>) -> Result<bool> {
        match self {
            DeviceTarget::Legacy(d) => d.message(t, args, out),
            DeviceTarget::Private(d) => d.message(args),
        }
    }

    fn backing(&self) -> Option<&DmDev> {
        match self {
            DeviceTarget::Legacy(d) => Some(&d.backing),
            DeviceTarget::Private(d) => Some(d.backing()),
        }
    }
}

impl LegacyTarget {
    // Not inlined into `DeviceTarget::ctr`: only one of the two forms'
    // frames is then on the table load's stack (see scripts/stack-check.py).
    #[inline(never)]
    fn ctr(t: &Target<'_>, args: &Args<'_>) -> core::result::Result<Self, CtrError> {
        if args.len() != 3 {
            return Err(ctr_err!(
                EINVAL,
                "expected 3 arguments: <device_id> <backing path> <cache_id>, got {}",
                args.len()
            ));
        }
        let id_str = args.str(0).unwrap_or("?");
        let id = parse::ranged(id_str, 1, MAX_ID as u64)
            .ok_or_else(|| ctr_err!(EINVAL, "invalid device_id '{}': must be a number in 1..{}", id_str, MAX_ID))?
            as u8;
        let cid_str = args.str(2).unwrap_or("?");
        let cache_id = parse::ranged(cid_str, 0, MAX_ID as u64)
            .ok_or_else(|| ctr_err!(EINVAL, "invalid cache_id '{}': must be a number in 0..{}", cid_str, MAX_ID))?
            as u8;
        let path = args.cstr(1).ok_or_else(|| ctr_err!(EINVAL, "missing backing device path"))?;
        // A cache holding dirty data of a removed device of this id claims
        // its disk: the device of the same id gets it back (claimed again
        // if this constructor fails; declared before `backing`, so that is
        // released first).
        registry::release_claims(id);
        let mut reclaim = ClaimOnDrop { id, devt: 0 };
        let backing = t.get_device(path).map_err(|e| match registry::claimed_disk() {
            Some((c, d, devt)) if e == EBUSY => ctr_err!(
                e,
                "cannot open backing device '{}': busy (cache {} claims disk {} for removed device_id {}, whose data it holds: create device_id {} over it)",
                args.str(1).unwrap_or("?"),
                c,
                DevT(devt),
                d,
                d
            ),
            None if e == EBUSY => match registry::reserved_cache() {
                Some(c) => ctr_err!(
                    e,
                    "cannot open backing device '{}': busy (in use, or claimed by cache {}, which is being resumed or freed: try again when it is done)",
                    args.str(1).unwrap_or("?"),
                    c
                ),
                None => ctr_err!(e, "cannot open backing device '{}': busy (mounted, or used by another table)", args.str(1).unwrap_or("?")),
            },
            _ => ctr_err!(e, "cannot open backing device '{}' (error {})", args.str(1).unwrap_or("?"), e.to_errno()),
        })?;
        let bdev = backing.bdev();
        reclaim.devt = bdev.devt();
        let backing_sectors = bdev.sectors();
        if backing_sectors >= MAX_BACKING_SECTORS {
            return Err(ctr_err!(
                EINVAL,
                "backing device {} too large: {} sectors, writeboost supports fewer than {} (1 EiB)",
                DevT(bdev.devt()),
                backing_sectors,
                MAX_BACKING_SECTORS
            ));
        }
        if t.len() > backing_sectors {
            return Err(ctr_err!(
                EINVAL,
                "target length {} sectors exceeds backing device {} ({} sectors)",
                t.len(),
                DevT(bdev.devt()),
                backing_sectors
            ));
        }
        // Bios of any size reach map(): it cuts them only where the cache's
        // engine must (the end of the open segment, the edges of cached
        // data), so large I/O is not split into 4 KiB pieces.
        t.setup_device(0).map_err(|e| ctr_err!(e, "cannot configure the target"))?;

        let table = t.table_id();
        let new = NewDev {
            id,
            md: t.md_id(),
            md_devt: t.md_devt(),
            table,
            backing_devt: bdev.devt(),
            backing_sectors,
            table_cache_id: cache_id,
        };
        // Only checks: the binding changes when the table is resumed.
        let entry = registry::with(|tables| {
            check_backing_free(tables, id, bdev.devt()).map_err(|e| (e, None))?;
            crate::device22::check_legacy_backing(tables, bdev.devt()).map_err(|e| (e, None))?;
            let (entry, _) = tables.add_device(new).map_err(|c| (match c {
                DeviceClash::BadId => ctr_err!(EINVAL, "invalid device_id {}", id),
                DeviceClash::InUse(devt) => ctr_err!(EBUSY, "device_id {} is already used by device {}", id, DevT(devt)),
                DeviceClash::OtherBacking(devt) => ctr_err!(
                    EINVAL,
                    "device_id {} is backed by {}; a reload cannot change the backing device",
                    id,
                    DevT(devt)
                ),
                DeviceClash::NoMemory => ctr_err!(ENOMEM, "out of memory"),
                DeviceClash::Leaving => ctr_err!(EBUSY, "device_id {} is being removed; try again", id),
                DeviceClash::BackingInUse(other, md) => {
                    ctr_err!(EBUSY, "backing device {} is already used by device_id {} ({}): one device id per disk", DevT(bdev.devt()), other, DevT(md))
                }
                DeviceClash::Stacked(other) => ctr_err!(
                    EINVAL,
                    "backing device {} is writeboost device_id {}: writeboost devices do not stack",
                    DevT(bdev.devt()),
                    other
                ),
                DeviceClash::TwiceInTable => ctr_err!(EINVAL, "device_id {} appears twice in one table", id),
            }, None))?;
            if let Err((e, m)) = plan(tables, &entry, cache_id) {
                return Err((CtrError { err: e, msg: m }, Some(tables.remove_device(&entry, table))));
            }
            Ok(entry)
        })
        .map_err(|e| ctr_err!(e, "module is unloading"))?
        // What a removal leaves to do runs after the lock is released.
        .map_err(|(e, leave)| {
            if let Some(l) = leave {
                registry::finish_leave(l);
            }
            e
        })?;
        Ok(LegacyTarget { entry, backing, cache_id, begin: t.begin(), applied: AtomicBool::new(false), table, _claim: reclaim })
    }

    fn dtr(&self, _t: &Target<'_>) {
        // A table that was never resumed changes no binding; the last
        // table of a device takes it out of its cache.
        if let Ok(leave) = registry::with(|tables| tables.remove_device(&self.entry, self.table)) {
            registry::finish_leave(leave);
        }
    }

    fn map(&self, _t: &Target<'_>, mut bio: Bio) -> MapResult {
        // Sectors are relative to the start of this target in its table.
        let sector = bio.sector().saturating_sub(self.begin);
        let op = bio.op();
        let bound = self.entry.cache();
        if op == BioOp::Flush && bio.target_nr() != 0 {
            // The second clone of an empty flush is for the backing device:
            // needed when the device is bound and writes may have reached
            // the backing device since its last flush.
            if bound.is_some() && self.entry.passthrough.load(Ordering::SeqCst) {
                bio.remap(self.backing.bdev(), sector);
                return MapResult::Remapped(bio);
            }
            bio.end(Ok(()));
            return MapResult::Submitted;
        }
        let Some(cache) = bound else {
            bio.remap(self.backing.bdev(), sector);
            return MapResult::Remapped(bio);
        };
        let id = self.entry.id;
        let r = match op {
            BioOp::Read => cache.map_read(id, sector, bio),
            BioOp::Write if cache.tun.write_around.load(Ordering::Relaxed) => {
                // Before the write is submitted (see `route`).
                self.entry.passthrough.store(true, Ordering::SeqCst);
                cache.map_write_around(id, sector, bio)
            }
            BioOp::Write => cache.map_write(id, sector, bio),
            BioOp::Flush => cache.map_flush(bio),
            BioOp::Discard => cache.map_discard(id, sector, bio),
            BioOp::Other => {
                bio.end(Err(Error::from_errno(-95)));
                Routed::Done
            }
        };
        self.route(r)
    }

    fn status(&self, _t: &Target<'_>, table: bool, out: &mut Out<'_>) {
        let _ = if table {
            write!(out, "{} {} {}", self.entry.id, DevT(self.entry.backing_devt), self.cache_id)
        } else {
            {
                let (err, errors) = self.entry.writeback_health();
                write!(
                    out,
                    "cache_id {} nr_dirty_caches {} writeback_error {} writeback_errors {}",
                    self.entry.cache_id(),
                    self.entry.nr_dirty(),
                    err,
                    errors
                )
            }
        };
    }

    fn postsuspend(&self, _t: &Target<'_>) {
        if let Some(c) = self.entry.cache() {
            if let Err(e) = c.flush_all() {
                pr_err!("device {}: flushing cache {} at suspend failed (error {})\n", self.entry.id, c.id, e.to_errno());
            }
        }
        // No I/O is in flight: after this flush, writes that went straight
        // to the backing device are durable, and flushes need not go there.
        if self.entry.passthrough.load(Ordering::SeqCst) {
            match self.backing.bdev().flush() {
                Ok(()) => self.entry.passthrough.store(false, Ordering::SeqCst),
                Err(e) => pr_err!("device {}: flushing the backing device at suspend failed (error {})\n", self.entry.id, e.to_errno()),
            }
        }
    }

    fn preresume(&self, _t: &Target<'_>) -> Result {
        if self.applied.load(Ordering::Acquire) {
            return Ok(());
        }
        let id = self.entry.id;
        let planned = registry::with(|tables| {
            let p = plan(tables, &self.entry, self.cache_id)?;
            if !tables.begin_change(&self.entry) {
                return Err((EBUSY, Msg::new(format_args!("device_id {} is busy changing its cache binding", id))));
            }
            for c in [&p.detach, &p.attach].into_iter().flatten() {
                tables.hold(c.id);
            }
            Ok(p)
        })?;
        // The I/O (waiting for a migration round, flushes, record writes)
        // runs without the registry lock.
        let r = planned.and_then(|p| {
            let r = self.apply(&p);
            let _ = registry::with(|tables| {
                for c in [&p.detach, &p.attach].into_iter().flatten() {
                    tables.release(c.id);
                }
                tables.end_change(&self.entry);
            });
            r
        });
        match r {
            Ok(()) => {
                self.entry.table_cache_id.store(u32::from(self.cache_id), Ordering::Relaxed);
                self.applied.store(true, Ordering::Release);
                Ok(())
            }
            Err((e, m)) => {
                pr_err!(
                    "device {} (device_id {}): resume with cache_id {} refused: {}; the device stays suspended, bound to cache_id {}: resume it again, or load its previous table and resume\n",
                    DevT(self.entry.md_devt),
                    id,
                    self.cache_id,
                    m.as_str(),
                    self.entry.cache_id()
                );
                Err(e)
            }
        }
    }

    fn message(&self, _t: &Target<'_>, args: &Args<'_>, _out: &mut Out<'_>) -> Result<bool> {
        let id = self.entry.id;
        let name = args.str(0).unwrap_or("");
        if args.len() != 1 {
            pr_err!("device {}: message '{}': expected no arguments (add_sysfs, remove_sysfs)\n", id, name);
            return Err(EINVAL);
        }
        if parse::is(name, "add_sysfs") {
            registry::with(|t| t.add_device_sysfs(id, self.backing.bdev()))?.map_err(|e| {
                pr_err!("device {}: add_sysfs failed (error {}): already added?\n", id, e.to_errno());
                e
            })?;
        } else if parse::is(name, "remove_sysfs") {
            let dir = registry::with(|t| t.remove_device_sysfs(id))?.map_err(|e| {
                pr_err!("device {}: remove_sysfs: no sysfs directory to remove\n", id);
                e
            })?;
            // Removed outside the registry lock (see `Tables::remove_device`).
            drop(dir);
        } else {
            pr_err!("device {}: unknown message '{}' (known: add_sysfs, remove_sysfs)\n", id, name);
            return Err(EINVAL);
        }
        Ok(false)
    }
}
