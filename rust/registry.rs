// SPDX-License-Identifier: GPL-2.0

//! The module-wide tables: devices by `device_id`, the manager, the
//! selected cache id, and the sysfs directories.
//!
//! One mutex protects the tables. It is taken by constructors,
//! destructors, messages and sysfs, never by the I/O path: a device target
//! holds an `Arc<DevEntry>` and reads its cache binding without it.
//!
//! The mutex is never held across I/O that can take long (replaying a
//! log, formatting, flushing a backing device, writing a record). Such an
//! operation reserves what it changes under the lock (a cache id being
//! resumed or freed, a device whose binding changes, a cache a device is
//! attaching to or detaching from), does its I/O without the lock, and
//! publishes the result under it. A concurrent operation on a reserved
//! object is refused with EBUSY instead of waiting.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock};

use crate::cache::Cache;

use crate::ffi::{BdevFile, DevT, Global, GlobalGuard, Out, SysfsDir, SysfsKind};
use crate::parse;

/// Device ids and cache ids are `1..=MAX_ID`; 0 means "none".
pub(crate) const MAX_ID: u8 = 127;
pub(crate) const SLOTS: usize = MAX_ID as usize + 1;

/// Default `migrate_threshold` of a device, in percent.
pub(crate) const DEFAULT_MIGRATE_THRESHOLD: u32 = 70;

/// One `device_id`: shared by every table (old and new, during a reload)
/// of the same DM device.
#[pin_data]
pub(crate) struct DevEntry {
    /// The device id (1..=127).
    pub(crate) id: u8,
    /// Identity of the mapped device that owns this id.
    pub(crate) md: usize,
    /// `dev_t` of the mapped device itself.
    pub(crate) md_devt: u32,
    /// `dev_t` of the backing device.
    pub(crate) backing_devt: u32,
    /// Size of the backing device in sectors.
    pub(crate) backing_sectors: u64,
    /// Utilisation threshold (%) above which the daemon stops migration.
    pub(crate) migrate_threshold: AtomicU32,
    /// The cache id of the table resumed last (0 = none).
    pub(crate) table_cache_id: AtomicU32,
    /// Writes of this device may have reached the backing device without
    /// a backing flush since, while it is bound to a cache: empty flushes
    /// then flush the backing device too. Set before such a write is
    /// submitted (or before a live device is bound); cleared only while
    /// the device is suspended, after a backing flush.
    pub(crate) passthrough: AtomicBool,
    /// The cache this device's I/O goes through (attached by a table, or
    /// bound by resume_cache because the cache holds its dirty data).
    #[pin]
    binding: SpinLock<Option<Arc<Cache>>>,
}

/// The fields of a new [`DevEntry`].
pub(crate) struct NewDev {
    pub(crate) id: u8,
    /// The table the new target is part of ([`crate::ffi::Target::table_id`]).
    pub(crate) table: usize,
    pub(crate) md: usize,
    pub(crate) md_devt: u32,
    pub(crate) backing_devt: u32,
    pub(crate) backing_sectors: u64,
    pub(crate) table_cache_id: u8,
}

impl DevEntry {
    /// The cache the device's I/O goes through.
    pub(crate) fn cache(&self) -> Option<Arc<Cache>> {
        self.binding.lock().clone()
    }

    /// Binds (or unbinds) the device.
    pub(crate) fn bind(&self, c: Option<Arc<Cache>>) {
        *self.binding.lock() = c;
    }

    /// Id of the bound cache (0 = none).
    pub(crate) fn cache_id(&self) -> u8 {
        self.binding.lock().as_ref().map_or(0, |c| c.id)
    }

    /// Dirty lines of this device in its cache.
    pub(crate) fn nr_dirty(&self) -> u64 {
        self.cache().map_or(0, |c| c.dirty_of(self.id))
    }

    /// Write-back health in its cache: (errno of the failing write-back,
    /// 0 when it works; failed write-back attempts so far).
    pub(crate) fn writeback_health(&self) -> (i32, u64) {
        self.cache().map_or((0, 0), |c| {
            let d = c.lock().eng.dev(self.id);
            (d.fail_errno, d.writeback_errors)
        })
    }
}

struct DevSlot {
    entry: Arc<DevEntry>,
    /// Number of live tables using the entry (2 during a reload); 0 while
    /// the last table's removal detaches the device (`changing` is set).
    tables: u32,
    /// The binding is being changed without the registry lock (a resume,
    /// or the removal of the last table).
    changing: bool,
    /// The table of the newest constructor (0 once that table is gone): a
    /// second target of the id in the same table is refused.
    last_table: usize,
}

struct MgrSlot {
    md: usize,
    md_devt: u32,
    tables: u32,
}

/// Everything under the registry mutex.
pub(crate) struct Tables {
    mgr: Option<MgrSlot>,
    /// The cache id later `writeboost-mgr` messages act on.
    pub(crate) cache_id_ptr: u8,
    devices: [Option<DevSlot>; SLOTS],
    device_sysfs: [Option<SysfsDir>; SLOTS],
    /// Caches by id.
    pub(crate) caches: [Option<Arc<Cache>>; SLOTS],
    /// Cache ids a `resume_cache` or `free_cache` is working on.
    reserved: [bool; SLOTS],
    /// Disks of devices removed while a cache was reserved, held (opened
    /// exclusively) by device id for a cache being resumed: it is not in
    /// `caches` yet, so it cannot claim them itself. Its publication takes
    /// them (`take_pending_claim`); a new device of the id releases its
    /// own; the rest are released when no cache is reserved any more.
    pending_claims: KVec<Option<(u8, BdevFile)>>,
    /// Per cache id: device bindings changing to or from it right now.
    changing_users: [u32; SLOTS],
    /// Devices of the 2.2 table form, each with its private cache (not
    /// in `caches`: the manager never sees them).
    pub(crate) privates: [Option<PrivSlot>; SLOTS],
}

/// One device of the 2.2 table form (see `crate::device22`).
pub(crate) struct PrivSlot {
    /// Identity of the mapped device.
    pub(crate) md: usize,
    /// `dev_t` of the mapped device.
    pub(crate) md_devt: u32,
    pub(crate) backing_devt: u32,
    pub(crate) cache_devt: u32,
    /// Live tables (2 during a reload).
    pub(crate) tables: u32,
    /// The table of the newest constructor: a second target over the same
    /// cache in one table is refused.
    pub(crate) last_table: usize,
    /// The private cache; `None` while the first constructor builds it.
    pub(crate) private: Option<Arc<crate::device22::Private>>,
}

/// What a 2.2-form device uses a disk for (see [`Tables::private_use`]).
pub(crate) enum PrivUse {
    Backing,
    Cache,
    Itself,
}

/// The module-wide registry.
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    tables: Mutex<Tables>,
}

static REGISTRY: Global<Registry> = Global::new();

/// Creates the registry at module init; it is freed when the guard drops.
pub(crate) fn install() -> Result<GlobalGuard<Registry>> {
    let r = KBox::pin_init(
        pin_init!(Registry {
            tables <- new_mutex!(Tables {
                mgr: None,
                cache_id_ptr: 0,
                devices: [const { None }; SLOTS],
                device_sysfs: [const { None }; SLOTS],
                caches: [const { None }; SLOTS],
                reserved: [false; SLOTS],
                pending_claims: KVec::new(),
                changing_users: [0; SLOTS],
                privates: [const { None }; SLOTS],
            }),
        }),
        GFP_KERNEL,
    )?;
    Ok(REGISTRY.install(r))
}

/// Runs `f` with the tables locked.
pub(crate) fn with<R>(f: impl FnOnce(&mut Tables) -> R) -> Result<R> {
    let reg = REGISTRY.get().ok_or(ENODEV)?;
    let mut guard = reg.tables.lock();
    Ok(f(&mut guard))
}

impl Tables {
    /// Registers a manager table for mapped device `md`. Only one manager
    /// device may exist; a reload of it is allowed.
    pub(crate) fn add_mgr(&mut self, md: usize, md_devt: u32) -> core::result::Result<(), u32> {
        match &mut self.mgr {
            Some(m) if m.md == md => {
                m.tables += 1;
                Ok(())
            }
            Some(m) => Err(m.md_devt),
            None => {
                self.mgr = Some(MgrSlot { md, md_devt, tables: 1 });
                Ok(())
            }
        }
    }

    /// Drops one manager table of `md`.
    pub(crate) fn remove_mgr(&mut self, md: usize) {
        if let Some(m) = &mut self.mgr {
            if m.md == md {
                m.tables = m.tables.saturating_sub(1);
                if m.tables == 0 {
                    self.mgr = None;
                }
            }
        }
    }

    /// The entry for `id`, if a device has it.
    pub(crate) fn device(&self, id: u8) -> Option<&Arc<DevEntry>> {
        self.devices.get(id as usize)?.as_ref().map(|s| &s.entry)
    }

    /// Takes `id` for mapped device `md` (a new device, or another table of
    /// the same device during a reload).
    /// Returns the entry and whether it is new (the first table).
    pub(crate) fn add_device(&mut self, new: NewDev) -> core::result::Result<(Arc<DevEntry>, bool), DeviceClash> {
        // One disk, one device id: two ids over one disk would alias it.
        let other = self.devices.iter().flatten().find(|s| s.tables > 0 && s.entry.id != new.id && s.entry.backing_devt == new.backing_devt);
        if let Some(s) = other {
            return Err(DeviceClash::BackingInUse(s.entry.id, s.entry.md_devt));
        }
        // A writeboost device over a writeboost device: its write-back
        // could need room in the very log it frees.
        if let Some(s) = self.devices.iter().flatten().find(|s| s.tables > 0 && s.entry.md_devt == new.backing_devt) {
            return Err(DeviceClash::Stacked(s.entry.id));
        }
        let slot = self.devices.get_mut(new.id as usize).ok_or(DeviceClash::BadId)?;
        if let Some(s) = slot {
            if s.entry.md != new.md {
                return Err(DeviceClash::InUse(s.entry.md_devt));
            }
            if s.tables > 0 && s.last_table == new.table {
                return Err(DeviceClash::TwiceInTable);
            }
            if s.tables == 0 {
                return Err(DeviceClash::Leaving);
            }
            if s.entry.backing_devt != new.backing_devt {
                return Err(DeviceClash::OtherBacking(s.entry.backing_devt));
            }
            s.tables += 1;
            s.last_table = new.table;
            return Ok((s.entry.clone(), false));
        }
        let entry = Arc::pin_init(
            pin_init!(DevEntry {
                id: new.id,
                md: new.md,
                md_devt: new.md_devt,
                backing_devt: new.backing_devt,
                backing_sectors: new.backing_sectors,
                migrate_threshold: AtomicU32::new(DEFAULT_MIGRATE_THRESHOLD),
                table_cache_id: AtomicU32::new(u32::from(new.table_cache_id)),
                passthrough: AtomicBool::new(false),
                binding <- new_spinlock!(None, "writeboost_binding"),
            }),
            GFP_KERNEL,
        )
        .map_err(|_| DeviceClash::NoMemory)?;
        *slot = Some(DevSlot { entry: entry.clone(), tables: 1, changing: false, last_table: new.table });
        Ok((entry, true))
    }

    /// Every device entry, by id, into `r` (a snapshot for `resume_cache`).
    pub(crate) fn device_entries(&self, r: &mut [Option<Arc<DevEntry>>; SLOTS]) {
        for (d, s) in r.iter_mut().zip(self.devices.iter()) {
            *d = s.as_ref().filter(|s| s.tables > 0).map(|s| s.entry.clone());
        }
    }

    /// The cache with this id.
    pub(crate) fn cache(&self, id: u8) -> Option<&Arc<Cache>> {
        self.caches.get(id as usize)?.as_ref()
    }

    /// Ids of the devices bound to `c`.
    pub(crate) fn devices_of(&self, c: &Arc<Cache>) -> [bool; SLOTS] {
        let mut r = [false; SLOTS];
        for (i, s) in self.devices.iter().enumerate() {
            if let Some(s) = s {
                if s.entry.cache().is_some_and(|x| Arc::ptr_eq(&x, c)) {
                    r[i] = true;
                }
            }
        }
        r
    }

    /// Drops one table's use of `entry`; when none is left the id is free
    /// once the device has left its cache (its dirty data stays there,
    /// with the cache's own reference to the backing device).
    ///
    /// The caller must pass the result to [`finish_leave`] after releasing
    /// the registry lock: the detach does I/O, and removing a sysfs
    /// directory waits for running show/store calls, which take the lock.
    #[must_use]
    pub(crate) fn remove_device(&mut self, entry: &Arc<DevEntry>, table: usize) -> Leave {
        let mut leave = Leave { entry: entry.clone(), cache: None, dir: None };
        let Some(slot) = self.devices.get_mut(entry.id as usize) else { return leave };
        let Some(s) = slot.as_mut() else { return leave };
        if !Arc::ptr_eq(&s.entry, entry) || s.tables == 0 {
            return leave;
        }
        if s.last_table == table {
            s.last_table = 0;
        }
        s.tables -= 1;
        if s.tables > 0 {
            return leave;
        }
        leave.dir = self.device_sysfs.get_mut(entry.id as usize).and_then(|d| d.take());
        match entry.cache() {
            Some(c) => {
                // The id stays taken (EBUSY for a new device) until the
                // detach is done.
                s.changing = true;
                self.hold(c.id);
                leave.cache = Some(c);
            }
            None => *slot = None,
        }
        leave
    }

    /// Whether device id `id` is taken by `entry` with its binding free to
    /// change (no other change in progress).
    pub(crate) fn begin_change(&mut self, entry: &Arc<DevEntry>) -> bool {
        match self.devices.get_mut(entry.id as usize).and_then(|s| s.as_mut()) {
            Some(s) if Arc::ptr_eq(&s.entry, entry) && !s.changing && s.tables > 0 => {
                s.changing = true;
                true
            }
            _ => false,
        }
    }

    /// Ends a change started by [`Tables::begin_change`].
    pub(crate) fn end_change(&mut self, entry: &Arc<DevEntry>) {
        if let Some(s) = self.devices.get_mut(entry.id as usize).and_then(|s| s.as_mut()) {
            if Arc::ptr_eq(&s.entry, entry) {
                s.changing = false;
            }
        }
    }

    /// Whether the binding of device `id` is being changed.
    pub(crate) fn device_changing(&self, id: u8) -> bool {
        self.devices.get(id as usize).and_then(|s| s.as_ref()).is_some_and(|s| s.changing)
    }

    /// Notes a device binding change to or from cache `id` in progress:
    /// `free_cache` of it is refused until [`Tables::release`].
    pub(crate) fn hold(&mut self, id: u8) {
        if let Some(n) = self.changing_users.get_mut(id as usize) {
            *n += 1;
        }
    }

    /// Ends what [`Tables::hold`] noted.
    pub(crate) fn release(&mut self, id: u8) {
        if let Some(n) = self.changing_users.get_mut(id as usize) {
            *n = n.saturating_sub(1);
        }
    }

    /// Whether cache id `id` is reserved by a resume or a free in progress,
    /// or a device is attaching to or detaching from it.
    pub(crate) fn cache_busy(&self, id: u8) -> bool {
        self.reserved.get(id as usize).is_some_and(|&r| r) || self.changing_users.get(id as usize).is_some_and(|&n| n > 0)
    }

    /// Whether cache id `id` is reserved by a resume or a free in progress.
    pub(crate) fn cache_reserved(&self, id: u8) -> bool {
        self.reserved.get(id as usize).is_some_and(|&r| r)
    }

    /// Reserves or releases cache id `id` for a `resume_cache` or
    /// `free_cache` running without the lock.
    pub(crate) fn set_reserved(&mut self, id: u8, r: bool) {
        if let Some(x) = self.reserved.get_mut(id as usize) {
            *x = r;
        }
        if !self.reserved.iter().any(|&x| x) {
            // No resume left to take them: the disks are free again.
            drop(core::mem::replace(&mut self.pending_claims, KVec::new()));
        }
    }

    /// The disk held for removed device `dev` while a cache was resumed
    /// (see `pending_claims`).
    pub(crate) fn take_pending_claim(&mut self, dev: u8) -> Option<BdevFile> {
        let slot = self.pending_claims.iter_mut().find(|c| c.as_ref().is_some_and(|(d, _)| *d == dev))?;
        slot.take().map(|(_, f)| f)
    }

    /// Whether a 2.2-form device (other than of mapped device `md`) uses
    /// disk `devt`: as its backing device, its cache device, or it is that
    /// device. Returns the use and the mapped device's `dev_t`.
    pub(crate) fn private_use(&self, devt: u32, md: usize) -> Option<(PrivUse, u32)> {
        self.privates.iter().flatten().filter(|p| p.md != md).find_map(|p| {
            if p.backing_devt == devt {
                Some((PrivUse::Backing, p.md_devt))
            } else if p.cache_devt == devt {
                Some((PrivUse::Cache, p.md_devt))
            } else if p.md_devt == devt {
                Some((PrivUse::Itself, p.md_devt))
            } else {
                None
            }
        })
    }

    /// Creates `devices/<id>/` in sysfs.
    pub(crate) fn add_device_sysfs(&mut self, id: u8, backing: crate::ffi::Bdev<'_>) -> Result {
        let slot = self.device_sysfs.get_mut(id as usize).ok_or(EINVAL)?;
        if slot.is_some() {
            return Err(EEXIST);
        }
        *slot = Some(SysfsDir::add(SysfsKind::Device, id, Some(backing))?);
        Ok(())
    }

    /// Takes `devices/<id>/` out of the table; the caller drops it after
    /// releasing the registry lock (see [`Tables::remove_device`]).
    pub(crate) fn remove_device_sysfs(&mut self, id: u8) -> Result<SysfsDir> {
        let slot = self.device_sysfs.get_mut(id as usize).ok_or(EINVAL)?;
        slot.take().ok_or(ENOENT)
    }
}

/// Why a device id could not be taken.
pub(crate) enum DeviceClash {
    /// The id is out of range.
    BadId,
    /// Another DM device (this `dev_t`) uses the id.
    InUse(u32),
    /// A reload tried to change the backing device (this `dev_t`).
    OtherBacking(u32),
    /// Allocation failed.
    NoMemory,
    /// The id's last table was just removed and its device is still
    /// leaving its cache.
    Leaving,
    /// Another device id (this one, of this mapped device) uses the backing
    /// device.
    BackingInUse(u8, u32),
    /// The backing device is the writeboost device of this id.
    Stacked(u8),
    /// The table has two targets of this id.
    TwiceInTable,
}

/// What is left to do after a table stopped using a device entry (see
/// [`Tables::remove_device`]).
pub(crate) struct Leave {
    entry: Arc<DevEntry>,
    /// The cache the device leaves (held in the tables).
    cache: Option<Arc<Cache>>,
    dir: Option<SysfsDir>,
}

/// The device id whose writeboost device is `devt`, if any.
pub(crate) fn writeboost_device(devt: u32) -> Option<u8> {
    with(|t| t.devices.iter().flatten().find(|s| s.tables > 0 && s.entry.md_devt == devt).map(|s| s.entry.id)).ok().flatten()
}

/// Whether `devt` is a writeboost device of the 2.2 table form.
pub(crate) fn is_private_device(devt: u32) -> bool {
    with(|t| t.privates.iter().flatten().any(|p| p.md_devt == devt)).unwrap_or(false)
}

/// The live caches (references taken under the lock, used without it).
fn live_caches() -> KVec<Arc<Cache>> {
    let mut caches = KVec::<Arc<Cache>>::new();
    let _ = with(|t| {
        for c in t.caches.iter().flatten() {
            // Out of memory: fewer caches are visited (claims are best effort).
            let _ = caches.push(c.clone(), GFP_KERNEL);
        }
    });
    caches
}

/// Device `id` (whose backing disk was `devt`; 0: unknown) may be gone: if
/// it is and a cache still holds dirty data of it, that cache claims its
/// backing disk. While a cache is being resumed (not in the table yet, its
/// dirty data not known yet), the disk is held for it instead (see
/// `Tables::pending_claims`). Called without the lock.
pub(crate) fn claim_removed(id: u8, devt: u32) {
    let mut caches = KVec::<Arc<Cache>>::new();
    let mut resuming = false;
    let _ = with(|t| {
        if t.devices.get(id as usize).is_some_and(|s| s.is_none()) {
            for c in t.caches.iter().flatten() {
                let _ = caches.push(c.clone(), GFP_KERNEL);
            }
            resuming = t.reserved.iter().any(|&r| r);
        }
    });
    for c in caches.iter() {
        c.claim_if_dirty(id);
    }
    if !resuming || devt == 0 {
        return;
    }
    // Fails if a live cache claimed it just now (or anything else holds it).
    let Ok(f) = BdevFile::claim_devt(devt) else { return };
    let _ = with(|t| {
        let gone = t.devices.get(id as usize).is_some_and(|s| s.is_none());
        let resuming = t.reserved.iter().any(|&r| r);
        let held = t.pending_claims.iter().flatten().any(|(d, _)| *d == id);
        if gone && resuming && !held && t.pending_claims.push(Some((id, f)), GFP_KERNEL).is_ok() {
            pr_info!("device_id {}: backing device {} held while a cache is resumed (it may hold dirty data of it)\n", id, DevT(devt));
        }
    });
}

/// A device of id `id` is being created: the caches give up their claims
/// of its disk. Called without the lock.
pub(crate) fn release_claims(id: u8) {
    for c in live_caches().iter() {
        c.release_claim(id);
    }
    let _ = with(|t| drop(t.take_pending_claim(id)));
}

/// A cache id reserved by a resume or a free in progress, the first found
/// (such a cache may hold claims on disks while it is not in the table).
pub(crate) fn reserved_cache() -> Option<u8> {
    with(|t| (1..=MAX_ID).find(|&id| t.cache_reserved(id))).ok().flatten()
}

/// A disk claimed by a cache: (cache id, device id, dev_t), the first found.
pub(crate) fn claimed_disk() -> Option<(u8, u8, u32)> {
    let mut found = None;
    for c in live_caches().iter() {
        c.claimed(|d, devt| {
            found = found.or(Some((c.id, d, devt)));
        });
    }
    found
}

/// Completes a [`Leave`]: detaches the device from its cache (keeping its
/// dirty data there), frees the id and removes its sysfs directory. Must be
/// called without the registry lock.
pub(crate) fn finish_leave(leave: Leave) {
    let Leave { entry, cache, dir } = leave;
    if let Some(c) = cache {
        if let Err(m) = c.detach(entry.id, false) {
            pr_err!("device_id {}: leaving cache {}: {}\n", entry.id, c.id, m.as_str());
        }
        entry.bind(None);
        let _ = with(|t| {
            t.release(c.id);
            if let Some(slot) = t.devices.get_mut(entry.id as usize) {
                if slot.as_ref().is_some_and(|s| Arc::ptr_eq(&s.entry, &entry) && s.tables == 0) {
                    *slot = None;
                }
            }
        });
    }
    drop(dir);
}

// ---------------------------------------------------------------------------
// sysfs
// ---------------------------------------------------------------------------

/// The sysfs attributes of the module's directories.
pub(crate) struct Sysfs;

impl crate::ffi::SysfsOps for Sysfs {
    fn show(kind: SysfsKind, id: u8, attr: &str, out: &mut Out<'_>) -> Result {
        sysfs_show(kind, id, attr, out)
    }
    fn store(kind: SysfsKind, id: u8, attr: &str, input: &[u8]) -> Result {
        sysfs_store(kind, id, attr, input)
    }
}

/// Shows a sysfs attribute.
fn sysfs_show(kind: SysfsKind, id: u8, attr: &str, out: &mut Out<'_>) -> Result {
    use core::fmt::Write;
    match kind {
        SysfsKind::Device => {
            let e = with(|t| t.device(id).cloned())?.ok_or(ENODEV)?;
            let r = match attr {
                "cache_id" => writeln!(out, "{}", e.cache_id()),
                "dev" => writeln!(out, "{}", DevT(e.md_devt)),
                "device_no" => writeln!(out, "{}", DevT(e.backing_devt)),
                "migrate_threshold" => writeln!(out, "{}", e.migrate_threshold.load(Ordering::Relaxed)),
                "nr_dirty_caches" => writeln!(out, "{}", e.nr_dirty()),
                "writeback_error" => writeln!(out, "{}", e.writeback_health().0),
                "writeback_errors" => writeln!(out, "{}", e.writeback_health().1),
                _ => return Err(EINVAL),
            };
            r.map_err(|_| EINVAL)
        }
        SysfsKind::Cache => {
            let c = with(|t| t.cache(id).cloned())?.ok_or(ENODEV)?;
            crate::mgr::cache_attr_show(&c, attr, out)
        }
    }
}

/// Stores a sysfs attribute.
fn sysfs_store(kind: SysfsKind, id: u8, attr: &str, input: &[u8]) -> Result {
    let s = parse::sysfs_input(input)?;
    match kind {
        SysfsKind::Device => {
            let e = with(|t| t.device(id).cloned())?.ok_or(ENODEV)?;
            match attr {
                "migrate_threshold" => {
                    let v = parse::ranged(s, 0, 100).ok_or_else(|| {
                        pr_err!("devices/{}/migrate_threshold: '{}' is not a percentage (0..100)\n", id, s);
                        EINVAL
                    })?;
                    e.migrate_threshold.store(v as u32, Ordering::Relaxed);
                    Ok(())
                }
                _ => Err(EACCES),
            }
        }
        SysfsKind::Cache => {
            let c = with(|t| t.cache(id).cloned())?.ok_or(ENODEV)?;
            crate::mgr::cache_attr_store(&c, attr, s)
        }
    }
}
