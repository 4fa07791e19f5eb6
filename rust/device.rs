// SPDX-License-Identifier: GPL-2.0

//! The `writeboost` target: a logical device over a backing disk.
//!
//! Table: `<start> <len> writeboost <device_id> <backing path> <cache_id>`.
//! With `cache_id` 0 the device passes every bio to the backing device.

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::ctr_err;
use crate::ffi::{Args, Bio, BioOp, CtrError, DevT, DmDev, MapResult, Out, Target, TargetOps};
use crate::parse;
use crate::registry::{self, DevEntry, DeviceClash, DEFAULT_MIGRATE_THRESHOLD, MAX_ID};

/// The private data of one `writeboost` target.
pub(crate) struct DeviceTarget {
    entry: Arc<DevEntry>,
    backing: DmDev,
    /// The cache id of this table (0 = pass-through).
    cache_id: u8,
    /// Whether this table's destructor has run its registry clean-up.
    begin: u64,
}

/// What `map` decided to do with a bio.
enum Action {
    /// Send it to the backing device at this sector.
    Backing(u64),
}

impl DeviceTarget {
    fn classify(&self, bio: &Bio) -> Action {
        // Sectors are relative to the start of this target in its table.
        Action::Backing(bio.sector().saturating_sub(self.begin))
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
        if cache_id != 0 {
            return Err(ctr_err!(ENOENT, "cache {} does not exist (resume it with writeboost-mgr first)", cache_id));
        }
        t.setup_device(0).map_err(|e| ctr_err!(e, "cannot configure the target"))?;

        let new = DevEntry {
            id,
            md: t.md_id(),
            md_devt: t.md_devt(),
            backing_devt: bdev.devt(),
            backing_sectors,
            migrate_threshold: AtomicU32::new(DEFAULT_MIGRATE_THRESHOLD),
            table_cache_id: AtomicU32::new(u32::from(cache_id)),
        };
        let entry = registry::with(|tables| tables.add_device(new))
            .map_err(|e| ctr_err!(e, "module is unloading"))?
            .map_err(|c| match c {
                DeviceClash::BadId => ctr_err!(EINVAL, "invalid device_id {}", id),
                DeviceClash::InUse(devt) => {
                    ctr_err!(EBUSY, "device_id {} is already used by device {}", id, DevT(devt))
                }
                DeviceClash::OtherBacking(devt) => ctr_err!(
                    EINVAL,
                    "device_id {} is backed by {}; a reload cannot change the backing device",
                    id,
                    DevT(devt)
                ),
                DeviceClash::NoMemory => ctr_err!(ENOMEM, "out of memory"),
            })?;
        KBox::new(DeviceTarget { entry, backing, cache_id, begin: t.begin() }, GFP_KERNEL)
            .map_err(|_| ctr_err!(ENOMEM, "out of memory"))
    }

    fn dtr(&self, _t: &Target<'_>) {
        let _ = registry::with(|tables| tables.remove_device(&self.entry, None));
    }

    fn map(&self, _t: &Target<'_>, mut bio: Bio) -> MapResult {
        match bio.op() {
            BioOp::Flush | BioOp::Read | BioOp::Write | BioOp::Discard | BioOp::Other => match self.classify(&bio) {
                Action::Backing(sector) => {
                    bio.remap(self.backing.bdev(), sector);
                    MapResult::Remapped(bio)
                }
            },
        }
    }

    fn status(&self, _t: &Target<'_>, table: bool, out: &mut Out<'_>) {
        let _ = if table {
            write!(out, "{} {} {}", self.entry.id, DevT(self.entry.backing_devt), self.cache_id)
        } else {
            write!(out, "cache_id {} nr_dirty_caches {}", self.cache_id, 0)
        };
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
            registry::with(|t| t.remove_device_sysfs(id))?.map_err(|e| {
                pr_err!("device {}: remove_sysfs: no sysfs directory to remove\n", id);
                e
            })?;
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
