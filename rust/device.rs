// SPDX-License-Identifier: GPL-2.0

//! The `writeboost` target: a logical device over a backing disk.
//!
//! Table: `<start> <len> writeboost <device_id> <backing path> <cache_id>`.
//! With `cache_id` 0 the device passes every bio to the backing device.

use core::fmt::Write;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::cache::Routed;
use crate::ctr_err;
use crate::ffi::{Args, Bio, BioOp, CtrError, DevT, DmDev, MapResult, Out, Target, TargetOps};
use crate::parse;
use crate::registry::{self, DevEntry, DeviceClash, NewDev, Tables, MAX_ID};

/// The private data of one `writeboost` target.
pub(crate) struct DeviceTarget {
    entry: Arc<DevEntry>,
    backing: DmDev,
    /// The cache id of this table (0 = pass-through).
    cache_id: u8,
    /// First sector of this target in its table.
    begin: u64,
}

/// Binds a device to its cache when its table is loaded. On error the
/// caller drops the table's use of the entry.
fn bind(t: &mut Tables, entry: &Arc<DevEntry>, is_new: bool, cache_id: u8) -> core::result::Result<(), CtrError> {
    let id = entry.id;
    let bound = entry.cache();
    if cache_id != 0 {
        let Some(cache) = t.cache(cache_id).cloned() else {
            return Err(ctr_err!(ENOENT, "cache {} does not exist (resume it with writeboost-mgr first)", cache_id));
        };
        if let Some(b) = bound.as_ref().filter(|b| !Arc::ptr_eq(b, &cache)) {
            b.detach(id, true).map_err(|m| ctr_err!(EBUSY, "{}", m.as_str()))?;
            entry.bind(None);
        }
        cache
            .attach(id, entry.backing_devt, entry.backing_sectors)
            .map_err(|m| ctr_err!(EINVAL, "cannot attach to cache {}: {}", cache_id, m.as_str()))?;
        entry.bind(Some(cache));
        return Ok(());
    }
    if let Some(b) = bound {
        // A reload with cache_id 0 detaches, only without dirty data.
        b.detach(id, true).map_err(|m| ctr_err!(EBUSY, "cannot detach: {}", m.as_str()))?;
        entry.bind(None);
    } else if is_new {
        // A cache that holds dirty data of this id takes the new device's
        // I/O, so reads never miss that data.
        let holder = t.caches.iter().flatten().find(|c| c.dirty_of(id) > 0).cloned();
        if let Some(c) = holder {
            c.attach(id, entry.backing_devt, entry.backing_sectors)
                .map_err(|m| ctr_err!(EINVAL, "cache {} holds dirty data of device_id {}: {}", c.id, id, m.as_str()))?;
            pr_info!("device_id {}: cache {} holds its dirty data; I/O goes through that cache\n", id, c.id);
            entry.bind(Some(c));
        }
    }
    Ok(())
}

/// Refuses a table over a backing disk (`devt`) that holds dirty data of
/// another device id in some cache: the disk's contents are stale, and that
/// data would be written back over the new device's writes.
fn check_backing_free(t: &Tables, id: u8, devt: u32) -> core::result::Result<(), CtrError> {
    for c in t.caches.iter().flatten() {
        if let Some((holder, dirty)) = c.dirty_holder_of(devt, id) {
            return Err(ctr_err!(
                EBUSY,
                "backing device {} holds {} dirty lines of device_id {} in cache {}: create device_id {} over it (to read that data or write it back), then use it as device_id {}",
                DevT(devt),
                dirty,
                holder,
                c.id,
                holder,
                id
            ));
        }
    }
    Ok(())
}

impl DeviceTarget {
    fn route(&self, r: Routed) -> MapResult {
        match r {
            Routed::Backing(mut bio, sector) | Routed::NotAttached(mut bio, sector) => {
                bio.remap(self.backing.bdev(), sector);
                MapResult::Remapped(bio)
            }
            Routed::Remapped(bio) => MapResult::Remapped(bio),
            Routed::Done => MapResult::Submitted,
        }
    }
}

impl TargetOps for DeviceTarget {
    fn ctr(t: &Target<'_>, args: &Args<'_>) -> core::result::Result<KBox<Self>, CtrError> {
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
        // Allocated first, so nothing needs undoing if it fails.
        let slot = KBox::<DeviceTarget>::new_uninit(GFP_KERNEL).map_err(|_| ctr_err!(ENOMEM, "out of memory"))?;
        let path = args.cstr(1).ok_or_else(|| ctr_err!(EINVAL, "missing backing device path"))?;
        let backing = t.get_device(path).map_err(|e| {
            ctr_err!(e, "cannot open backing device '{}' (error {})", args.str(1).unwrap_or("?"), e.to_errno())
        })?;
        let bdev = backing.bdev();
        let backing_sectors = bdev.sectors();
        if t.len() > backing_sectors {
            return Err(ctr_err!(
                EINVAL,
                "target length {} sectors exceeds backing device {} ({} sectors)",
                t.len(),
                DevT(bdev.devt()),
                backing_sectors
            ));
        }
        // Bios larger than a 4 KiB line are cut by DM when a cache is named;
        // map() also cuts them itself for a device bound later.
        t.setup_device(if cache_id != 0 { 8 } else { 0 }).map_err(|e| ctr_err!(e, "cannot configure the target"))?;

        let new = NewDev {
            id,
            md: t.md_id(),
            md_devt: t.md_devt(),
            backing_devt: bdev.devt(),
            backing_sectors,
            table_cache_id: cache_id,
        };
        let entry = registry::with(|tables| {
            check_backing_free(tables, id, bdev.devt()).map_err(|e| (e, None))?;
            let (entry, is_new) = tables.add_device(new).map_err(|c| (match c {
                DeviceClash::BadId => ctr_err!(EINVAL, "invalid device_id {}", id),
                DeviceClash::InUse(devt) => ctr_err!(EBUSY, "device_id {} is already used by device {}", id, DevT(devt)),
                DeviceClash::OtherBacking(devt) => ctr_err!(
                    EINVAL,
                    "device_id {} is backed by {}; a reload cannot change the backing device",
                    id,
                    DevT(devt)
                ),
                DeviceClash::NoMemory => ctr_err!(ENOMEM, "out of memory"),
            }, None))?;
            if let Err(e) = bind(tables, &entry, is_new, cache_id) {
                return Err((e, tables.remove_device(&entry)));
            }
            entry.table_cache_id.store(u32::from(cache_id), core::sync::atomic::Ordering::Relaxed);
            Ok(entry)
        })
        .map_err(|e| ctr_err!(e, "module is unloading"))?
        // A sysfs directory is removed only after the registry lock is
        // released (see `Tables::remove_device`).
        .map_err(|(e, dir)| {
            drop(dir);
            e
        })?;
        Ok(KBox::write(slot, DeviceTarget { entry, backing, cache_id, begin: t.begin() }))
    }

    fn dtr(&self, _t: &Target<'_>) {
        // The directory (if any) is dropped after the lock is released.
        let dir = registry::with(|tables| tables.remove_device(&self.entry));
        drop(dir);
    }

    fn map(&self, _t: &Target<'_>, mut bio: Bio) -> MapResult {
        // Sectors are relative to the start of this target in its table.
        let sector = bio.sector().saturating_sub(self.begin);
        let Some(cache) = self.entry.cache() else {
            bio.remap(self.backing.bdev(), sector);
            return MapResult::Remapped(bio);
        };
        let id = self.entry.id;
        let r = match bio.op() {
            BioOp::Read => cache.map_read(id, sector, bio),
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

    fn backing(&self) -> Option<&DmDev> {
        Some(&self.backing)
    }
}
