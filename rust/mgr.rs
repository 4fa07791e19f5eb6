// SPDX-License-Identifier: GPL-2.0

//! The `writeboost-mgr` target: the singleton control device.
//!
//! Table: `0 1 writeboost-mgr` (no arguments). `switch_to <id>` selects a
//! cache id; the other messages act on the selected cache. `dmsetup status`
//! shows the selected cache, or for id 0 the global structure sizes.
//! Every refused message logs one line saying why and changes nothing.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::cache::{self, Cache};
use crate::ctr_err;
use crate::ffi::{Args, Bio, CtrError, DevT, MapResult, Out, Target, TargetOps};
use crate::parse;
use crate::registry::{self, DevEntry, Tables, MAX_ID, SLOTS};
use crate::wbformat::{format as fmt, index::LineMeta};

/// The private data of the manager target.
pub(crate) struct MgrTarget {
    md: usize,
}

/// Bytes of a segment header block actually used (fields and metablocks).
const SEGMENT_HEADER_DEVICE_BYTES: usize =
    64 + fmt::LINES_PER_SEGMENT as usize * fmt::METABLOCK_SIZE + fmt::MAX_DISCARDS * fmt::DISCARD_ENTRY_SIZE;

/// A tunable of a cache: name, range, and how to read and write it.
struct Tunable {
    name: &'static str,
    min: u64,
    max: u64,
    get: fn(&Cache) -> u64,
    set: fn(&Cache, u64),
}

fn b(v: bool) -> u64 {
    v as u64
}

const TUNABLES: &[Tunable] = &[
    Tunable {
        name: "allow_migrate",
        min: 0,
        max: 1,
        get: |c| b(c.tun.allow_migrate.load(Ordering::Relaxed)),
        set: |c, v| {
            c.tun.allow_migrate.store(v != 0, Ordering::Relaxed);
            c.migrator_cv.notify_all();
        },
    },
    Tunable {
        name: "force_migrate",
        min: 0,
        max: 1,
        get: |c| b(c.tun.force_migrate.load(Ordering::Relaxed)),
        set: |c, v| {
            c.tun.force_migrate.store(v != 0, Ordering::Relaxed);
            c.migrator_cv.notify_all();
        },
    },
    Tunable {
        name: "write_around_mode",
        min: 0,
        max: 1,
        get: |c| b(c.tun.write_around.load(Ordering::Relaxed)),
        set: |c, v| c.tun.write_around.store(v != 0, Ordering::Relaxed),
    },
    Tunable {
        name: "barrier_deadline_ms",
        min: 1,
        max: 10_000,
        get: |c| u64::from(c.tun.barrier_deadline_ms.load(Ordering::Relaxed)),
        set: |c, v| c.tun.barrier_deadline_ms.store(v as u32, Ordering::Relaxed),
    },
    Tunable {
        name: "nr_max_batched_migration",
        min: 1,
        max: cache::MAX_BATCH as u64,
        get: |c| u64::from(c.tun.nr_max_batched_migration.load(Ordering::Relaxed)),
        set: |c, v| c.tun.nr_max_batched_migration.store(v as u32, Ordering::Relaxed),
    },
    Tunable {
        name: "update_interval",
        min: 0,
        max: 3600,
        get: |c| u64::from(c.tun.update_interval.load(Ordering::Relaxed)),
        set: |c, v| c.tun.update_interval.store(v as u32, Ordering::Relaxed),
    },
    Tunable {
        name: "commit_super_block_interval",
        min: 0,
        max: 3600,
        get: |c| u64::from(c.tun.commit_super_block_interval.load(Ordering::Relaxed)),
        set: |c, v| c.tun.commit_super_block_interval.store(v as u32, Ordering::Relaxed),
    },
    Tunable {
        name: "flush_current_buffer_interval",
        min: 0,
        max: 3600,
        get: |c| u64::from(c.tun.flush_current_buffer_interval.load(Ordering::Relaxed)),
        set: |c, v| c.tun.flush_current_buffer_interval.store(v as u32, Ordering::Relaxed),
    },
    Tunable {
        name: "idle_seal_ms",
        min: 0,
        max: 3_600_000,
        get: |c| u64::from(c.tun.idle_seal_ms.load(Ordering::Relaxed)),
        set: |c, v| {
            c.tun.idle_seal_ms.store(v as u32, Ordering::Relaxed);
            c.flusher_cv.notify_all();
        },
    },
    // Read caching (off by default; refused on a cache formatted by an
    // older module, see `set_attr`).
    Tunable {
        name: "read_cache_threshold",
        min: 0,
        max: 127,
        get: |c| u64::from(c.read_cache().0),
        set: |c, v| {
            let _ = c.set_read_cache(v as u32, c.read_cache().1);
        },
    },
    Tunable {
        name: "nr_read_cache_cells",
        min: 1,
        max: 2048,
        get: |c| u64::from(c.read_cache().1),
        set: |c, v| {
            let _ = c.set_read_cache(c.read_cache().0, v as u32);
        },
    },
];

fn tunable(name: &str) -> Option<&'static Tunable> {
    TUNABLES.iter().find(|t| parse::is(t.name, name))
}

/// Sets tunable `name` of `c` from decimal text, or runs one of the two
/// actions (`flush_current_buffer`, `commit_super_block`, value 1).
fn set_attr(c: &Cache, name: &str, value: &str) -> Result {
    if parse::is(name, "flush_current_buffer") || parse::is(name, "commit_super_block") {
        if value != "1" {
            pr_err!("cache {}: {}: write 1 to run it (got '{}')\n", c.id, name, value);
            return Err(EINVAL);
        }
        let r = if parse::is(name, "flush_current_buffer") { c.flush_all() } else { c.commit_record() };
        return r.map_err(|e| {
            pr_err!("cache {}: {} failed (error {})\n", c.id, name, e.to_errno());
            e
        });
    }
    let Some(t) = tunable(name) else {
        pr_err!("cache {}: unknown setting '{}'\n", c.id, name);
        return Err(EINVAL);
    };
    let Some(v) = parse::ranged(value, t.min, t.max) else {
        pr_err!("cache {}: {}: invalid value '{}' (must be {}..{})\n", c.id, t.name, value, t.min, t.max);
        return Err(EINVAL);
    };
    if parse::is(t.name, "read_cache_threshold") {
        if let Err(e) = c.set_read_cache(v as u32, c.read_cache().1) {
            pr_err!("cache {}: read_cache_threshold {}: {}\n", c.id, v, e);
            return Err(EINVAL);
        }
        return Ok(());
    }
    (t.set)(c, v);
    Ok(())
}

/// sysfs `caches/<id>/<attr>` show.
pub(crate) fn cache_attr_show(c: &Arc<Cache>, attr: &str, out: &mut Out<'_>) -> Result {
    let v = match attr {
        "flush_current_buffer" | "commit_super_block" => 0,
        "last_flushed_segment_id" => c.lock().eng.last_flushed(),
        "last_migrated_segment_id" => c.lock().eng.last_migrated(),
        "nr_dirty_caches" => c.lock().eng.total_dirty(),
        "index_bytes" => c.index_bytes(),
        _ => (tunable(attr).ok_or(EINVAL)?.get)(c),
    };
    writeln!(out, "{}", v).map_err(|_| EINVAL)
}

/// sysfs `caches/<id>/<attr>` store.
pub(crate) fn cache_attr_store(c: &Arc<Cache>, attr: &str, value: &str) -> Result {
    set_attr(c, attr, value)
}

/// The devices that existed when a `resume_cache` started.
/// The device entries present when a resume began, by id (on the heap:
/// 1 KiB, on a DM message's stack).
struct Present(KBox<[Option<Arc<DevEntry>>; SLOTS]>);

impl Present {
    fn entry(&self, id: u8) -> Option<&Arc<DevEntry>> {
        self.0.get(id as usize)?.as_ref()
    }
}

impl cache::Devices for Present {
    fn lookup(&self, id: u8) -> Option<(u32, u64)> {
        self.entry(id).map(|e| (e.backing_devt, e.backing_sectors))
    }
}

/// Why the devices owning dirty data in `c` cannot be bound to it now.
fn bind_conflict(t: &Tables, c: &Arc<Cache>) -> Option<crate::ffi::Msg> {
    for dev in 1..=MAX_ID {
        let d = c.dirty_of(dev);
        if d == 0 {
            continue;
        }
        if t.device_changing(dev) {
            return Some(crate::ffi::Msg::new(format_args!("device_id {} is changing its cache binding; try again", dev)));
        }
        if let Some(b) = t.device(dev).and_then(|e| e.cache()).filter(|b| !Arc::ptr_eq(b, c)) {
            return Some(crate::ffi::Msg::new(format_args!(
                "device_id {} owns {} dirty lines in this cache but is attached to cache {}: detach it first",
                dev, d, b.id
            )));
        }
    }
    None
}

fn list_ids(ids: &[bool]) -> crate::ffi::Msg {
    let mut m = crate::ffi::Msg::new(format_args!(""));
    for (i, _) in ids.iter().enumerate().filter(|(_, &x)| x) {
        let _ = write!(m, " {}", i);
    }
    m
}

impl MgrTarget {
    fn selected(t: &Tables, msg: &str) -> Result<Arc<Cache>> {
        let ptr = t.cache_id_ptr;
        match t.cache(ptr) {
            Some(c) => Ok(c.clone()),
            None if t.cache_reserved(ptr) => {
                pr_err!("writeboost-mgr: {}: cache {} is busy (being resumed or freed); try again\n", msg, ptr);
                Err(EBUSY)
            }
            None => {
                pr_err!("writeboost-mgr: {}: no cache {} (switch_to a resumed cache first)\n", msg, ptr);
                Err(EINVAL)
            }
        }
    }

    /// `resume_cache`: reserves the selected id, replays the log and
    /// attaches the devices owning dirty data without the registry lock,
    /// then publishes the cache and binds those devices under it.
    fn resume_cache(args: &Args<'_>) -> Result {
        let path = args.cstr(1).ok_or(EINVAL)?;
        let path_s = args.str(1).unwrap_or("?");
        let accept_loss = args.len() == 3;
        let mut present = Present(KBox::new([const { None }; SLOTS], GFP_KERNEL)?);
        let id = registry::with(|t| -> Result<u8> {
            let id = t.cache_id_ptr;
            if id == 0 {
                pr_err!("writeboost-mgr: resume_cache: select a cache id first (switch_to 1..{})\n", MAX_ID);
                return Err(EINVAL);
            }
            if t.cache(id).is_some() {
                pr_err!("writeboost-mgr: resume_cache: cache {} already exists (free_cache it first)\n", id);
                return Err(EEXIST);
            }
            if t.cache_busy(id) {
                pr_err!("writeboost-mgr: resume_cache: cache {} is busy (being resumed or freed); try again\n", id);
                return Err(EBUSY);
            }
            t.set_reserved(id, true);
            t.device_entries(&mut present.0);
            Ok(id)
        })??;
        let r = Self::resume_reserved(id, path, path_s, &present, accept_loss);
        if r.is_err() {
            let _ = registry::with(|t| t.set_reserved(id, false));
        }
        r
    }

    fn resume_reserved(id: u8, path: &kernel::str::CStr, path_s: &str, present: &Present, accept_loss: bool) -> Result {
        let c = cache::resume(id, path, present, accept_loss).map_err(|m| {
            pr_err!("writeboost-mgr: resume_cache {} on {}: {}\n", id, path_s, m.as_str());
            m.error()
        })?;
        // Nothing is written yet: a conflict found now just drops the cache.
        if let Some(m) = registry::with(|t| bind_conflict(t, &c))? {
            pr_err!("writeboost-mgr: resume_cache {} on {}: {}\n", id, path_s, m.as_str());
            return Err(EBUSY);
        }
        // Devices owning dirty data route their I/O through the cache.
        let mut bound = [false; SLOTS];
        for dev in 1..=MAX_ID {
            if c.dirty_of(dev) == 0 {
                continue;
            }
            if let Some(e) = present.entry(dev) {
                if let Err(m) = c.attach(dev, e.backing_devt, e.backing_sectors) {
                    pr_err!("writeboost-mgr: resume_cache {}: device_id {}: {}\n", id, dev, m.as_str());
                    let _ = c.shutdown();
                    return Err(EINVAL);
                }
                bound[dev as usize] = true;
            }
        }
        if let Err(e) = cache::start(&c) {
            pr_err!("writeboost-mgr: resume_cache {} on {}: {}\n", id, path_s, cache::start_failed(e).as_str());
            let _ = c.shutdown();
            return Err(e);
        }
        if let Err(e) = c.add_sysfs() {
            pr_err!("writeboost-mgr: resume_cache {}: sysfs directory not created (error {})\n", id, e.to_errno());
        }
        let mut removed = [false; SLOTS];
        let mut wrong_disk = [false; SLOTS];
        let mut adopted = KVec::new();
        let published = registry::with(|t| {
            if let Some(m) = bind_conflict(t, &c) {
                return Err(m);
            }
            for dev in 1..=MAX_ID {
                let (true, Some(was)) = (bound[dev as usize], present.entry(dev)) else { continue };
                match t.device(dev) {
                    // The same device, or one re-created over the same backing
                    // device while the log was replayed.
                    Some(e) if e.backing_devt == was.backing_devt => {
                        // The device is live: writes that went to the backing
                        // device before the bind must stay covered by flushes.
                        e.passthrough.store(true, Ordering::SeqCst);
                        e.bind(Some(c.clone()));
                    }
                    Some(e) => {
                        pr_err!(
                            "writeboost-mgr: resume_cache {}: device_id {} was re-created over {} while the cache was resumed; its dirty data belongs to {}, so it is not bound (the cache claims {})\n",
                            id,
                            dev,
                            DevT(e.backing_devt),
                            DevT(was.backing_devt),
                            DevT(was.backing_devt)
                        );
                        wrong_disk[dev as usize] = true;
                    }
                    // Removed meanwhile: its data stays in the cache,
                    // which claims its disk once published (the removal's
                    // own claim found no cache to do it).
                    None => {
                        removed[dev as usize] = true;
                        // Held for this cache since the removal.
                        if let Some(f) = t.take_pending_claim(dev) {
                            // (On failure the disk is released; the claim
                            // below then takes it.)
                            let _ = adopted.push((dev, f), GFP_KERNEL);
                        }
                    }
                }
            }
            if let Some(s) = t.caches.get_mut(id as usize) {
                *s = Some(c.clone());
            }
            t.set_reserved(id, false);
            Ok(())
        })?;
        if let Err(m) = published {
            pr_err!("writeboost-mgr: resume_cache {} on {}: {}\n", id, path_s, m.as_str());
            let _ = c.shutdown();
            drop(c.take_sysfs());
            return Err(EBUSY);
        }
        pr_info!("cache {} resumed on {}\n", id, path_s);
        // Without the registry lock (claiming opens the disk); a device of
        // that id created since gets the disk back (its constructor
        // releases claims first; `claim_removed` skips an id in use).
        for (dev, f) in adopted {
            c.adopt_claim(dev, f);
        }
        for dev in 1..=MAX_ID {
            if removed[dev as usize] {
                registry::claim_removed(dev, c.backing_of(dev).unwrap_or(0));
            }
            // A device of this id over another disk does not protect the
            // disk its dirty data belongs to: the cache claims that one,
            // unless the device was re-created over it again meanwhile.
            if wrong_disk[dev as usize] {
                let disk = c.backing_of(dev);
                let owner_back = registry::with(|t| t.device(dev).map(|e| e.backing_devt)).ok().flatten();
                if disk.is_some() && owner_back != disk {
                    c.claim_if_dirty(dev);
                }
            }
        }
        Ok(())
    }

    /// Takes the selected cache out of the table if no device uses it. Its
    /// shutdown (I/O) and sysfs removal happen after the registry lock is
    /// released: removing a kobject waits for show/store calls, which take
    /// that lock.
    fn take_cache_for_free(t: &mut Tables) -> Result<Arc<Cache>> {
        let c = Self::selected(t, "free_cache")?;
        if t.cache_busy(c.id) {
            pr_err!("writeboost-mgr: free_cache: cache {} is busy: a device is attaching to or leaving it; try again\n", c.id);
            return Err(EBUSY);
        }
        let users = t.devices_of(&c);
        if users.iter().any(|&x| x) {
            pr_err!(
                "writeboost-mgr: free_cache: cache {} still serves device ids{}: detach them (reload with cache_id 0) or remove them first\n",
                c.id,
                list_ids(&users).as_str()
            );
            return Err(EBUSY);
        }
        if let Some(s) = t.caches.get_mut(c.id as usize) {
            *s = None;
        }
        // The id stays reserved until the shutdown is done.
        t.set_reserved(c.id, true);
        Ok(c)
    }

    /// A removed device of `c` whose lines are written back but not yet
    /// on the record (asking makes the record pass them soon).
    fn unrecorded_removed(c: &Cache) -> Option<u8> {
        let removed = registry::with(|t| {
            let mut r = [false; SLOTS];
            for d in 1..=MAX_ID {
                if let Some(x) = r.get_mut(d as usize) {
                    *x = t.device(d).is_none();
                }
            }
            r
        })
        .ok()?;
        (1..=MAX_ID).find(|&d| removed.get(d as usize).copied().unwrap_or(false) && c.dirty_of(d) == 0 && c.holds(d))
    }

    fn free_cache() -> Result {
        // Lines of removed devices written back but not yet on the record
        // (a failing disk's parked lines in front hold it): freed now, a
        // later resume of this cache would replay them as dirty, over what
        // is written to their disks once the claims end (breakP). Give the
        // record 10 s to pass them (the migrator moves the parked lines
        // for it), then refuse, unless the cache device fails (no record
        // can be written): then free, saying so.
        if let Some(c) = registry::with(|t| t.cache(t.cache_id_ptr).cloned())? {
            let mut waited = 0;
            while let Some(dev) = Self::unrecorded_removed(&c) {
                let failing = c.lock().eng.error().is_some() || c.mig_io_failing.load(Ordering::Relaxed);
                if failing {
                    pr_warn!(
                        "writeboost-mgr: free_cache: cache {} keeps lines of removed device_id {} that are written back but not yet on its record (its cache device fails): a resume of this cache replays them; resume it before writing to that device's disk\n",
                        c.id,
                        dev
                    );
                    break;
                }
                if waited >= 100 {
                    pr_err!(
                        "writeboost-mgr: free_cache: cache {} holds lines of removed device_id {} written back but not yet on its record (it waits for a failing disk's parked data to be moved); try again later\n",
                        c.id,
                        dev
                    );
                    return Err(EBUSY);
                }
                crate::ffi::msleep(100);
                waited += 1;
            }
        }
        let c = registry::with(Self::take_cache_for_free)??;
        let r = c.shutdown();
        drop(c.take_sysfs());
        let _ = registry::with(|t| t.set_reserved(c.id, false));
        if let Err(e) = r {
            pr_err!("writeboost-mgr: free_cache: cache {} freed, but its last flush failed (error {})\n", c.id, e.to_errno());
        } else {
            pr_info!("cache {} freed\n", c.id);
        }
        r
    }
}

impl TargetOps for MgrTarget {
    fn ctr(t: &Target<'_>, args: &Args<'_>) -> core::result::Result<KBox<Self>, CtrError> {
        if args.len() != 0 {
            return Err(ctr_err!(EINVAL, "writeboost-mgr takes no arguments (table: 0 1 writeboost-mgr), got {}", args.len()));
        }
        let slot = KBox::<MgrTarget>::new_uninit(GFP_KERNEL).map_err(|_| ctr_err!(ENOMEM, "out of memory"))?;
        let md = t.md_id();
        registry::with(|tables| tables.add_mgr(md, t.md_devt()))
            .map_err(|e| ctr_err!(e, "module is unloading"))?
            .map_err(|devt| ctr_err!(EBUSY, "a writeboost-mgr already exists (device {}); only one is allowed", DevT(devt)))?;
        t.setup_mgr();
        Ok(KBox::write(slot, MgrTarget { md }))
    }

    fn dtr(&self, _t: &Target<'_>) {
        let _ = registry::with(|tables| tables.remove_mgr(self.md));
    }

    fn map(&self, _t: &Target<'_>, bio: Bio) -> MapResult {
        // Never called: the C shim completes manager I/O itself.
        bio.end(Ok(()));
        MapResult::Submitted
    }

    fn status(&self, _t: &Target<'_>, table: bool, out: &mut Out<'_>) {
        if table {
            return;
        }
        let Ok((ptr, c)) = registry::with(|t| (t.cache_id_ptr, t.cache(t.cache_id_ptr).cloned())) else { return };
        let _ = write!(out, "\ncurrent cache_id_ptr: {}", ptr);
        if ptr == 0 {
            let _ = write!(
                out,
                "\nsizeof struct\nmetablock: {}\nmetablock_device: {}\nsegment_header: {}\nsegment_header_device: {} (<= 4096)",
                core::mem::size_of::<LineMeta>(),
                fmt::METABLOCK_SIZE,
                core::mem::size_of::<crate::wbformat::format::SegmentHeader>(),
                SEGMENT_HEADER_DEVICE_BYTES
            );
        } else if let Some(c) = c {
            c.status(out);
        }
    }

    fn message(&self, _t: &Target<'_>, args: &Args<'_>, _out: &mut Out<'_>) -> Result<bool> {
        let name = args.str(0).unwrap_or("");
        let argc = args.len();
        let one_arg = |usage: &str| -> Result<&str> {
            match args.str(1) {
                Some(a) if argc == 2 => Ok(a),
                _ => {
                    pr_err!("writeboost-mgr: usage: {} {}\n", name, usage);
                    Err(EINVAL)
                }
            }
        };
        let no_arg = || -> Result {
            if argc == 1 {
                Ok(())
            } else {
                pr_err!("writeboost-mgr: {} takes no argument\n", name);
                Err(EINVAL)
            }
        };
        if parse::is(name, "switch_to") {
            let arg = one_arg("<cache_id 0..127>")?;
            let Some(id) = parse::ranged(arg, 0, MAX_ID as u64) else {
                pr_err!("writeboost-mgr: switch_to: invalid cache_id '{}' (must be 0..{})\n", arg, MAX_ID);
                return Err(EINVAL);
            };
            registry::with(|t| t.cache_id_ptr = id as u8)?;
        } else if parse::is(name, "format_cache_device") {
            one_arg("<cache device path>")?;
            let path = args.cstr(1).ok_or(EINVAL)?;
            let path_s = args.str(1).unwrap_or("?");
            // Without the registry lock: the format opens the device
            // exclusively, so a live cache or a resume_cache of the same
            // device excludes it (and it them).
            match cache::format_device(path, false) {
                Ok(n) => pr_info!("formatted {} as a cache of {} segments\n", path_s, n),
                Err(m) => {
                    pr_err!("writeboost-mgr: format_cache_device {}: {}\n", path_s, m.as_str());
                    return Err(EINVAL);
                }
            }
        } else if parse::is(name, "resume_cache") {
            let ok = match (argc, args.str(2)) {
                (2, _) => true,
                (3, Some(o)) => parse::is(o, "accept_data_loss"),
                _ => false,
            };
            if !ok {
                pr_err!("writeboost-mgr: usage: resume_cache <cache device path> [accept_data_loss]\n");
                return Err(EINVAL);
            }
            Self::resume_cache(args)?;
        } else if parse::is(name, "free_cache") {
            no_arg()?;
            Self::free_cache()?;
        } else if parse::is(name, "clear_stat") {
            no_arg()?;
            registry::with(|t| Self::selected(t, "clear_stat"))??.clear_stats();
        } else if parse::is(name, "migrate_threshold") {
            let (Some(d), Some(v), 3) = (args.str(1), args.str(2), argc) else {
                pr_err!("writeboost-mgr: usage: migrate_threshold <device_id> <0..100>\n");
                return Err(EINVAL);
            };
            let (Some(d), Some(v)) = (parse::ranged(d, 1, MAX_ID as u64), parse::ranged(v, 0, 100)) else {
                pr_err!("writeboost-mgr: migrate_threshold: invalid device id '{}' or percentage '{}'\n", d, v);
                return Err(EINVAL);
            };
            let e = registry::with(|t| t.device(d as u8).cloned())?.ok_or_else(|| {
                pr_err!("writeboost-mgr: migrate_threshold: no device {}\n", d);
                ENODEV
            })?;
            e.migrate_threshold.store(v as u32, Ordering::Relaxed);
        } else if tunable(name).is_some() || parse::is(name, "flush_current_buffer") || parse::is(name, "commit_super_block") {
            let v = if argc == 1 && (parse::is(name, "flush_current_buffer") || parse::is(name, "commit_super_block")) {
                "1"
            } else {
                one_arg("<value>")?
            };
            let c = registry::with(|t| Self::selected(t, name))??;
            set_attr(&c, name, v)?;
        } else {
            pr_err!("writeboost-mgr: unknown message '{}'\n", name);
            return Err(EINVAL);
        }
        Ok(false)
    }
}
