// SPDX-License-Identifier: GPL-2.0

//! The dm-writeboost 2.2 table form of the `writeboost` target.
//!
//! Table: `<start> <len> writeboost <backing path> <cache path> [<#opt
//! args> <key> <value> ...]`, chosen when the first argument is a path or
//! `maj:min` (the rule, and the options, are in `wbformat::compat`).
//!
//! The device gets a *private* cache on `<cache path>`: the same cache
//! machinery as a 2013 cache (format, replay, attach, write-back), but not
//! in the manager's table and without `writeboost-mgr`. Inside it the
//! device is device id 1. Its first table formats the cache device when the
//! device's first sector is zeroed and otherwise replays its log exactly
//! like `resume_cache`; a reload with the same two devices reuses the live
//! cache; the last table's destructor writes the RAM buffer and the record
//! out and releases the cache device before it returns.
//!
//! A per-device thread (`wb_sense22`) does what the 2013 form leaves to the
//! userland daemon: every second it measures the backing device's
//! utilisation and allows background write-back only below
//! `writeback_threshold` percent (urgent write-back when the log is full
//! always runs); every `sync_data_interval` seconds it writes the RAM buffer
//! and flushes the cache device; every `update_sb_record_interval` seconds
//! it writes the record.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};
use kernel::new_mutex;

use crate::cache::{self, Cache, Routed};
use crate::ctr_err;
use crate::ffi::{self, Args, Bio, BioOp, BdevFile, CtrError, DevT, DmDev, IoKind, KThread, MapResult, Msg, Out, Target, ThreadBody};
use crate::registry::{self, PrivSlot, PrivUse};
use crate::wbformat::compat::{self, Key, Message, Options};
use crate::wbformat::index::MAX_BACKING_SECTORS;

/// The device's id inside its private cache.
const DEV: u8 = 1;

/// The dynamic settings of a 2.2-form device (messages change them).
struct Settings {
    writeback_threshold: AtomicU32,
    sync_data_interval: AtomicU32,
    update_sb_record_interval: AtomicU32,
    read_cache_threshold: AtomicU32,
}

impl Settings {
    fn from(o: &Options) -> Self {
        Self {
            writeback_threshold: AtomicU32::new(o.get(Key::WritebackThreshold)),
            sync_data_interval: AtomicU32::new(o.get(Key::SyncDataInterval)),
            update_sb_record_interval: AtomicU32::new(o.get(Key::UpdateSbRecordInterval)),
            read_cache_threshold: AtomicU32::new(o.get(Key::ReadCacheThreshold)),
        }
    }
}

/// A 2.2-form device's private cache and its settings, shared by its
/// tables (two during a reload).
#[pin_data]
pub(crate) struct Private {
    cache: Arc<Cache>,
    set: Arc<Settings>,
    /// Running `drop_caches` messages (they set `force_migrate`).
    #[pin]
    drainers: Mutex<u32>,
    #[pin]
    sensor: Mutex<Option<KThread<Sensor>>>,
}

/// The `wb_sense22` thread.
struct Sensor {
    cache: Arc<Cache>,
    set: Arc<Settings>,
    backing: Arc<BdevFile>,
}

impl ThreadBody for Sensor {
    fn run(&self) {
        let c = &*self.cache;
        let mut t_load = ffi::now_ms();
        let mut ticks = self.backing.bdev().io_ticks_ms();
        let mut t_sync = t_load;
        let mut t_record = t_load;
        let mut sync_failing = false;
        let mut record_failing = false;
        while !ffi::should_stop() {
            ffi::msleep(100);
            let now = ffi::now_ms();
            let thr = self.set.writeback_threshold.load(Ordering::Relaxed);
            if thr == 0 {
                c.tun.allow_migrate.store(false, Ordering::Relaxed);
            } else if now.saturating_sub(t_load) >= 1000 {
                let t = self.backing.bdev().io_ticks_ms();
                let allow = compat::writeback_allowed(thr, t.saturating_sub(ticks), now - t_load);
                if allow && !c.tun.allow_migrate.load(Ordering::Relaxed) {
                    c.tun.allow_migrate.store(true, Ordering::Relaxed);
                    c.migrator_cv.notify_all();
                } else if !allow {
                    c.tun.allow_migrate.store(false, Ordering::Relaxed);
                }
                ticks = t;
                t_load = now;
            }
            every(&self.set.sync_data_interval, now, &mut t_sync, &mut sync_failing, "sync_data_interval: flushing the cache", || c.flush_all());
            every(&self.set.update_sb_record_interval, now, &mut t_record, &mut record_failing, "update_sb_record_interval: writing the record", || {
                c.commit_record()
            });
        }
    }
}

/// Runs `f` when `interval` seconds (0 = never) have passed since `*last`;
/// a failure is logged once until `f` succeeds again (`what` names it).
fn every(interval: &AtomicU32, now: u64, last: &mut u64, failing: &mut bool, what: &str, f: impl FnOnce() -> Result) {
    let ms = u64::from(interval.load(Ordering::Relaxed)) * 1000;
    if ms == 0 {
        *last = now;
        return;
    }
    if now.saturating_sub(*last) < ms {
        return;
    }
    *last = now;
    let r = f();
    if let Err(e) = &r {
        if !*failing {
            pr_err!("writeboost: {} failed (error {}); retrying\n", what, e.to_errno());
        }
    }
    *failing = r.is_err();
}

/// The one device a private cache may hold data of.
struct OneDevice {
    devt: u32,
    sectors: u64,
}

impl cache::Devices for OneDevice {
    fn lookup(&self, id: u8) -> Option<(u32, u64)> {
        (id == DEV).then_some((self.devt, self.sectors))
    }
}

/// Builds the private cache on `path` (formatted when its first sector is
/// zeroed, replayed otherwise) for backing `devt`, attached and running.
fn build(path: &kernel::str::CStr, zeroed: bool, devt: u32, sectors: u64, o: &Options) -> core::result::Result<Arc<Private>, Msg> {
    if zeroed {
        let n = cache::format_device(path, true)?;
        pr_info!("{}: first sector zeroed: formatted as a private cache of {} segments\n", path.to_str().unwrap_or("?"), n);
    }
    let c = cache::resume(0, path, &OneDevice { devt, sectors }, false)?;
    let undo = |c: &Arc<Cache>, m: Msg| {
        let _ = c.shutdown();
        m
    };
    c.attach(DEV, devt, sectors).map_err(|m| undo(&c, m))?;
    c.set_read_cache(o.get(Key::ReadCacheThreshold), o.get(Key::NrReadCacheCells)).map_err(|e| undo(&c, Msg::new(format_args!("read_cache_threshold {}: {}", o.get(Key::ReadCacheThreshold), e))))?;
    c.tun.allow_migrate.store(false, Ordering::Relaxed);
    c.tun.write_around.store(o.get(Key::WriteAroundMode) != 0, Ordering::Relaxed);
    c.tun.nr_max_batched_migration.store(o.get(Key::NrMaxBatchedWriteback), Ordering::Relaxed);
    cache::start(&c).map_err(|e| undo(&c, cache::start_failed(e)))?;
    let backing = c.backings.lock().get(DEV as usize).and_then(|b| b.clone());
    let Some(backing) = backing else {
        return Err(undo(&c, Msg::new(format_args!("internal error: the backing device is not open"))));
    };
    let set = Arc::new(Settings::from(o), GFP_KERNEL).map_err(|_| undo(&c, Msg::new(format_args!("out of memory"))))?;
    let sensor = Arc::new(Sensor { cache: c.clone(), set: set.clone(), backing }, GFP_KERNEL)
        .map_err(|_| undo(&c, Msg::new(format_args!("out of memory"))))?;
    let name = kernel::str::CString::try_from_fmt(kernel::fmt!("wb_sense22/{}", DevT(devt)))
        .map_err(|_| undo(&c, Msg::new(format_args!("out of memory"))))?;
    let thread = KThread::spawn(&name, sensor)
        .map_err(|e| undo(&c, Msg::new(format_args!("cannot start the load-sensing thread (error {})", e.to_errno()))))?;
    let cache = c.clone();
    Arc::pin_init(
        pin_init!(Private {
            cache,
            set,
            drainers <- new_mutex!(0, "writeboost_drainers"),
            sensor <- new_mutex!(Some(thread), "writeboost_sensor"),
        }),
        GFP_KERNEL,
    )
    .map_err(|_| undo(&c, Msg::new(format_args!("out of memory"))))
}

impl Private {
    /// Stops the sensor and shuts the cache down (its last flush and
    /// record); the cache device is released when the last reference goes.
    fn shutdown(&self) {
        drop(self.sensor.lock().take());
        if let Err(e) = self.cache.shutdown() {
            pr_err!("writeboost: private cache: the last flush at removal failed (error {}); its dirty data stays in the log\n", e.to_errno());
        }
    }

    fn apply(&self, o: &Options) {
        self.set.writeback_threshold.store(o.get(Key::WritebackThreshold), Ordering::Relaxed);
        self.set.sync_data_interval.store(o.get(Key::SyncDataInterval), Ordering::Relaxed);
        self.set.update_sb_record_interval.store(o.get(Key::UpdateSbRecordInterval), Ordering::Relaxed);
        // Checked by the reload's constructor (`check_read_cache`).
        if self.cache.set_read_cache(o.get(Key::ReadCacheThreshold), o.get(Key::NrReadCacheCells)).is_ok() {
            self.set.read_cache_threshold.store(o.get(Key::ReadCacheThreshold), Ordering::Relaxed);
        }
        self.cache.tun.nr_max_batched_migration.store(o.get(Key::NrMaxBatchedWriteback), Ordering::Relaxed);
    }

    fn drop_caches(&self) -> core::result::Result<(), (Error, Msg)> {
        let c = &self.cache;
        {
            let mut n = self.drainers.lock();
            *n += 1;
            c.tun.force_migrate.store(true, Ordering::Relaxed);
        }
        let r = c.write_back_all(DEV);
        {
            let mut n = self.drainers.lock();
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.tun.force_migrate.store(false, Ordering::Relaxed);
            }
        }
        r
    }
}

/// A table of the 2.2 form.
pub(crate) struct PrivateTarget {
    private: Arc<Private>,
    backing: DmDev,
    cache_devt: u32,
    opts: Options,
    begin: u64,
    md: usize,
    /// The table's options were applied by its first resume.
    applied: AtomicBool,
}

/// What `dev` is used for by a 2013-form device or cache, if anything.
fn legacy_use(t: &registry::Tables, devt: u32) -> Option<Msg> {
    for c in t.caches.iter().flatten() {
        if c.dev.bdev().devt() == devt {
            return Some(Msg::new(format_args!("is the cache device of cache {} (writeboost-mgr)", c.id)));
        }
        if let Some((d, n)) = c.dirty_holder_of(devt, 0) {
            return Some(Msg::new(format_args!("has {} of device_id {} in cache {}", crate::cache::Held(n), d, c.id)));
        }
    }
    for id in 1..=registry::MAX_ID {
        if let Some(e) = t.device(id) {
            if e.backing_devt == devt {
                return Some(Msg::new(format_args!("is the backing device of device_id {} ({})", id, DevT(e.md_devt))));
            }
            if e.md_devt == devt {
                return Some(Msg::new(format_args!("is writeboost device_id {}: writeboost devices do not stack", id)));
            }
        }
    }
    None
}

fn use_msg(u: &PrivUse, md_devt: u32) -> Msg {
    match u {
        PrivUse::Backing => Msg::new(format_args!("is the backing device of writeboost device {}", DevT(md_devt))),
        PrivUse::Cache => Msg::new(format_args!("is the private cache device of writeboost device {}", DevT(md_devt))),
        PrivUse::Itself => Msg::new(format_args!("is writeboost device {}: writeboost devices do not stack", DevT(md_devt))),
    }
}

/// Refuses a 2013-form table over a disk a 2.2-form device uses.
pub(crate) fn check_legacy_backing(t: &registry::Tables, devt: u32) -> core::result::Result<(), CtrError> {
    match t.private_use(devt, 0) {
        Some((u, md)) => Err(ctr_err!(EBUSY, "backing device {} {}", DevT(devt), use_msg(&u, md).as_str())),
        None => Ok(()),
    }
}

/// What the registry said about a new table.
enum Slot {
    Reuse(Arc<Private>),
    Build(usize),
}

impl PrivateTarget {
    // Not inlined into `DeviceTarget::ctr` (see `LegacyTarget::ctr`).
    #[inline(never)]
    pub(crate) fn ctr(t: &Target<'_>, args: &Args<'_>) -> core::result::Result<Self, CtrError> {
        const USAGE: &str = "<backing path> <cache path> [<#opt args> <key> <value> ...]";
        if args.len() < 2 {
            return Err(ctr_err!(EINVAL, "expected {} (2.2 form) or <device_id> <backing path> <cache_id> (2013 form), got {} arguments", USAGE, args.len()));
        }
        let mut rest = [""; 16];
        let n = args.len() - 2;
        if n > rest.len() {
            return Err(ctr_err!(EINVAL, "too many arguments ({}): expected {}", args.len(), USAGE));
        }
        for (i, r) in rest.iter_mut().enumerate().take(n) {
            *r = args.str(i + 2).unwrap_or("?");
        }
        let opts = Options::parse(rest.get(..n).unwrap_or(&[])).map_err(|e| {
            // In full (ti->error holds 159 bytes; the list of keys is longer).
            pr_err!("writeboost: {}\n", e);
            ctr_err!(EINVAL, "{}", e)
        })?;

        let bpath = args.cstr(0).ok_or_else(|| ctr_err!(EINVAL, "missing backing device path"))?;
        let cpath = args.cstr(1).ok_or_else(|| ctr_err!(EINVAL, "missing cache device path"))?;
        let bname = args.str(0).unwrap_or("?");
        let cname = args.str(1).unwrap_or("?");
        let backing = t.get_device(bpath).map_err(|e| ctr_err!(e, "cannot open backing device '{}' (error {})", bname, e.to_errno()))?;
        let bdev = backing.bdev();
        let bdevt = bdev.devt();
        let sectors = bdev.sectors();
        if sectors >= MAX_BACKING_SECTORS {
            return Err(ctr_err!(EINVAL, "backing device {} too large: {} sectors, writeboost supports fewer than {} (1 EiB)", DevT(bdevt), sectors, MAX_BACKING_SECTORS));
        }
        if t.len() > sectors {
            return Err(ctr_err!(EINVAL, "target length {} sectors exceeds backing device {} ({} sectors)", t.len(), DevT(bdevt), sectors));
        }
        // Opened shared, only to know the device and its first sector.
        let (cdevt, zeroed) = {
            let f = BdevFile::open_name(cpath, false).map_err(|e| ctr_err!(e, "cannot open cache device '{}' (error {})", cname, e.to_errno()))?;
            // The first 4 KiB block: a disk with 4 KiB logical blocks
            // takes nothing smaller.
            let mut block = KVec::from_elem(0u8, 4096, GFP_KERNEL).map_err(|_| ctr_err!(ENOMEM, "out of memory"))?;
            ffi::sync_io(f.bdev(), 0, 8, &mut block, IoKind::Read)
                .map_err(|e| ctr_err!(e, "cannot read the first sector of cache device '{}' (error {})", cname, e.to_errno()))?;
            (f.bdev().devt(), block.get(..512).is_some_and(|s| s.iter().all(|&b| b == 0)))
        };
        if cdevt == bdevt {
            return Err(ctr_err!(EINVAL, "the backing and the cache device are the same device {}", DevT(bdevt)));
        }
        t.setup_device(0).map_err(|e| ctr_err!(e, "cannot configure the target"))?;
        let md = t.md_id();
        let md_devt = t.md_devt();
        let table = t.table_id();
        let slot = registry::with(|tb| -> core::result::Result<Slot, CtrError> {
            for (devt, what) in [(bdevt, "backing"), (cdevt, "cache")] {
                if let Some(m) = legacy_use(tb, devt) {
                    return Err(ctr_err!(EBUSY, "{} device {} {}", what, DevT(devt), m.as_str()));
                }
                if let Some((u, other)) = tb.private_use(devt, md) {
                    return Err(ctr_err!(EBUSY, "{} device {} {}", what, DevT(devt), use_msg(&u, other).as_str()));
                }
            }
            if let Some(p) = tb.privates.iter_mut().flatten().find(|p| p.md == md) {
                if p.last_table == table && (p.backing_devt != bdevt || p.cache_devt != cdevt) {
                    return Err(ctr_err!(
                        EINVAL,
                        "a table can hold one 2.2-form writeboost target only (its first one uses backing {} and cache {}); make a device for each",
                        DevT(p.backing_devt),
                        DevT(p.cache_devt)
                    ));
                }
                if p.backing_devt != bdevt || p.cache_devt != cdevt {
                    return Err(ctr_err!(
                        EINVAL,
                        "this device uses backing {} and cache {}; a reload cannot change them (remove the device first)",
                        DevT(p.backing_devt),
                        DevT(p.cache_devt)
                    ));
                }
                if p.last_table == table {
                    return Err(ctr_err!(EINVAL, "two targets of one table use the same private cache"));
                }
                let Some(pr) = p.private.clone() else {
                    return Err(ctr_err!(EBUSY, "the private cache of this device is being created or removed; try again"));
                };
                let live = pr.cache.tun.write_around.load(Ordering::Relaxed);
                if live != (opts.get(Key::WriteAroundMode) != 0) {
                    return Err(ctr_err!(
                        EINVAL,
                        "write_around_mode is fixed when the device is created (it is {}): remove the device to change it",
                        live as u8
                    ));
                }
                if opts.get(Key::ReadCacheThreshold) > 0 && !pr.cache.can_read_cache() {
                    return Err(ctr_err!(EINVAL, "read_cache_threshold {}: {}", opts.get(Key::ReadCacheThreshold), crate::wbformat::engine::ReadCacheError::OldFormat));
                }
                p.tables += 1;
                p.last_table = table;
                return Ok(Slot::Reuse(pr));
            }
            let i = tb.privates.iter().position(|p| p.is_none()).ok_or_else(|| ctr_err!(EBUSY, "too many writeboost devices"))?;
            if let Some(s) = tb.privates.get_mut(i) {
                *s = Some(PrivSlot { md, md_devt, backing_devt: bdevt, cache_devt: cdevt, tables: 1, last_table: table, private: None });
            }
            Ok(Slot::Build(i))
        })
        .map_err(|e| ctr_err!(e, "module is unloading"))??;
        let private = match slot {
            Slot::Reuse(p) => p,
            Slot::Build(i) => match build(cpath, zeroed, bdevt, sectors, &opts) {
                Ok(p) => {
                    let _ = registry::with(|tb| {
                        if let Some(Some(s)) = tb.privates.get_mut(i) {
                            s.private = Some(p.clone());
                        }
                    });
                    pr_info!("writeboost device {}: backing {}, private cache on {}\n", DevT(md_devt), bname, cname);
                    p
                }
                Err(m) => {
                    let _ = registry::with(|tb| {
                        if let Some(s) = tb.privates.get_mut(i) {
                            *s = None;
                        }
                    });
                    // In full (with the path, it may not fit ti->error).
                    pr_err!("writeboost: cache device '{}': {}\n", cname, m.as_str());
                    return Err(ctr_err!(m.error(), "cache device '{}': {}", cname, m.as_str()));
                }
            },
        };
        Ok(Self { private, backing, cache_devt: cdevt, opts, begin: t.begin(), md, applied: AtomicBool::new(false) })
    }

    pub(crate) fn dtr(&self) {
        let last = registry::with(|tb| {
            let Some(i) = tb.privates.iter().position(|p| p.as_ref().is_some_and(|p| p.md == self.md)) else { return false };
            let Some(Some(s)) = tb.privates.get_mut(i) else { return false };
            s.tables = s.tables.saturating_sub(1);
            if s.tables > 0 {
                return false;
            }
            // Out of the table only after the shutdown (below): until then
            // the devices stay refused to others.
            s.private = None;
            true
        })
        .unwrap_or(false);
        if last {
            self.private.shutdown();
            let _ = registry::with(|tb| {
                if let Some(s) = tb.privates.iter_mut().find(|p| p.as_ref().is_some_and(|p| p.md == self.md)) {
                    *s = None;
                }
            });
        }
    }

    pub(crate) fn map(&self, bio: Bio) -> MapResult {
        let sector = bio.sector().saturating_sub(self.begin);
        let op = bio.op();
        let c = &self.private.cache;
        let around = c.tun.write_around.load(Ordering::Relaxed);
        if op == BioOp::Flush && bio.target_nr() != 0 {
            if around {
                // Write-around writes went to the backing device.
                let mut bio = bio;
                bio.remap(self.backing.bdev(), sector);
                return MapResult::Remapped(bio);
            }
            // Writes reach the backing device only by write-back, which
            // flushes it itself.
            bio.end(Ok(()));
            return MapResult::Submitted;
        }
        let r = match op {
            BioOp::Read => c.map_read(DEV, sector, bio),
            BioOp::Write if around => c.map_write_around(DEV, sector, bio),
            BioOp::Write => c.map_write(DEV, sector, bio),
            BioOp::Flush => c.map_flush(bio),
            BioOp::Discard => c.map_discard(DEV, sector, bio),
            BioOp::Other => {
                bio.end(Err(Error::from_errno(-95)));
                Routed::Done
            }
        };
        match r {
            Routed::NotAttached(mut bio, sector) | Routed::Backing(mut bio, sector) | Routed::Around(mut bio, sector) => {
                bio.remap(self.backing.bdev(), sector);
                MapResult::Remapped(bio)
            }
            Routed::Remapped(bio) => MapResult::Remapped(bio),
            Routed::Done => MapResult::Submitted,
        }
    }

    pub(crate) fn status(&self, table: bool, out: &mut Out<'_>) {
        if table {
            let _ = write!(out, "{} {}", DevT(self.backing.bdev().devt()), DevT(self.cache_devt));
            let _ = self.opts.write_table(out);
            return;
        }
        let set = &self.private.set;
        let mut s = self.private.cache.status22();
        s.writeback_threshold = set.writeback_threshold.load(Ordering::Relaxed);
        s.sync_data_interval = set.sync_data_interval.load(Ordering::Relaxed);
        s.update_sb_record_interval = set.update_sb_record_interval.load(Ordering::Relaxed);
        s.read_cache_threshold = set.read_cache_threshold.load(Ordering::Relaxed);
        let _ = s.write(out);
    }

    pub(crate) fn postsuspend(&self) {
        if let Err(e) = self.private.cache.flush_all() {
            pr_err!("writeboost device: flushing the private cache at suspend failed (error {})\n", e.to_errno());
        }
        // Write-around writes went to the backing device (nothing is in
        // flight now).
        if self.private.cache.tun.write_around.load(Ordering::Relaxed) {
            if let Err(e) = self.backing.bdev().flush() {
                pr_err!("writeboost device: flushing the backing device at suspend failed (error {})\n", e.to_errno());
            }
        }
    }

    pub(crate) fn preresume(&self) -> Result {
        // A new table's options take effect when it is resumed (later
        // messages change the live values, not the table line).
        if !self.applied.swap(true, Ordering::AcqRel) {
            self.private.apply(&self.opts);
        }
        Ok(())
    }

    pub(crate) fn message(&self, args: &Args<'_>) -> Result<bool> {
        let mut a = [""; 3];
        let n = args.len().min(3);
        for (i, x) in a.iter_mut().enumerate().take(n) {
            *x = args.str(i).unwrap_or("?");
        }
        let m = compat::parse_message(a.get(..n).unwrap_or(&[])).map_err(|e| {
            pr_err!("writeboost: message: {}\n", e);
            EINVAL
        })?;
        let p = &self.private;
        match m {
            Message::ClearStat => p.cache.clear_stats(),
            Message::DropCaches => p.drop_caches().map_err(|(e, m)| {
                pr_err!("writeboost: drop_caches: {}\n", m.as_str());
                e
            })?,
            Message::Set(k, v) => match k {
                Key::WritebackThreshold => {
                    p.set.writeback_threshold.store(v, Ordering::Relaxed);
                    p.cache.migrator_cv.notify_all();
                }
                Key::NrMaxBatchedWriteback => p.cache.tun.nr_max_batched_migration.store(v, Ordering::Relaxed),
                Key::UpdateSbRecordInterval => p.set.update_sb_record_interval.store(v, Ordering::Relaxed),
                Key::SyncDataInterval => p.set.sync_data_interval.store(v, Ordering::Relaxed),
                Key::ReadCacheThreshold => {
                    let cells = p.cache.read_cache().1;
                    if let Err(e) = p.cache.set_read_cache(v, cells) {
                        pr_err!("writeboost: read_cache_threshold {}: {}\n", v, e);
                        return Err(EINVAL);
                    }
                    p.set.read_cache_threshold.store(v, Ordering::Relaxed);
                }
                Key::WriteAroundMode | Key::NrReadCacheCells => return Err(EINVAL),
            },
        }
        Ok(false)
    }

    pub(crate) fn backing(&self) -> &DmDev {
        &self.backing
    }
}
