//! The commands. Each one checks everything it can first (ids, paths,
//! names, the current state) and refuses with [`Error::Invalid`] before
//! touching the kernel; then it takes its locks, re-checks, acts, and says
//! what it did on standard output.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use wbformat::format::{decode_superblock, Geometry, Superblock, SuperblockError, BLOCK_SIZE};

use crate::blockdev::block_device;
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::lock::{self, Lock, LockKind};
use crate::progress::Progress;
use crate::state::{self, Disk};
use crate::status::MgrStatus;
use crate::sysfs::Sys;
use crate::topology::{self, require_cache, require_mgr, WbDevice};
use crate::validate;

// ---------------------------------------------------------------------------
// Helpers.

/// The manager, locked: a sequence of messages (`switch_to` then an action)
/// that no other tool interleaves with.
pub struct MgrSession<'a> {
    ctx: &'a Ctx,
    name: String,
    _lock: Lock,
}

impl<'a> MgrSession<'a> {
    /// Checks the manager exists and takes its lock.
    pub fn open(ctx: &'a Ctx) -> Result<Self> {
        let name = require_mgr(&ctx.dm, &ctx.sys)?;
        let lock = lock::acquire(LockKind::Mgr, &ctx.intr, None)?;
        Ok(MgrSession { ctx, name, _lock: lock })
    }

    /// A message to the manager (`dmsetup message <mgr> 0 ARGS...`).
    pub fn message(&self, args: &[&str]) -> Result<()> {
        self.ctx.dm.message(&self.name, args)
    }

    /// Selects a cache id.
    pub fn switch_to(&self, id: u8) -> Result<()> {
        self.message(&["switch_to", &id.to_string()])
    }

    /// The manager's status (of the selected cache).
    pub fn status(&self) -> Result<MgrStatus> {
        let out = self.ctx.dm.status(&self.name)?;
        MgrStatus::parse(&out).map_err(|e| Error::failed(format!("status of {}: {}", self.name, e)))
    }
}

/// Reads the superblock of a would-be cache device (direct I/O, so the
/// page cache never shows a stale block). The outer error is an I/O error,
/// the inner one says why it is not a writeboost superblock.
pub fn read_superblock(path: &Path) -> Result<std::result::Result<Superblock, SuperblockError>> {
    let mut buf = vec![0u8; 2 * BLOCK_SIZE];
    let off = buf.as_ptr().align_offset(BLOCK_SIZE);
    let block = &mut buf[off..off + BLOCK_SIZE];
    let direct = OpenOptions::new().read(true).custom_flags(nix::libc::O_DIRECT).open(path);
    let mut f = match direct {
        Ok(f) => f,
        Err(_) => OpenOptions::new().read(true).open(path).map_err(|e| Error::io("cannot open", path, e))?,
    };
    f.read_exact(block).map_err(|e| Error::io("cannot read the first block of", path, e))?;
    Ok(decode_superblock(block))
}

/// `2024-05-01 12:00:00 UTC` from seconds since the epoch.
pub fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `512 MiB` from 512-byte sectors.
pub fn size(sectors: u64) -> String {
    let b = sectors as f64 * 512.0;
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, units[i])
    } else {
        format!("{:.1} {}", v, units[i])
    }
}

fn dirty_of(ctx: &Ctx, dev: &WbDevice) -> Result<u64> {
    if ctx.sys.device_dir(dev.id()).join("nr_dirty_caches").exists() {
        return ctx.sys.device_value(dev.id(), "nr_dirty_caches");
    }
    let out = ctx.dm.status(&dev.name)?;
    crate::status::DeviceStatus::parse(&out).map(|s| s.nr_dirty_caches).map_err(Error::failed)
}

fn strerror(neg_errno: i64) -> String {
    let e = nix::errno::Errno::from_raw((-neg_errno) as i32);
    format!("{} ({})", neg_errno, e.desc())
}

/// Sets a cache's `force_migrate` to 1 for the time of a drain and puts
/// the old value back afterwards, also on error or interruption.
struct ForceMigrate<'a> {
    sys: &'a Sys,
    cache: u8,
    saved: u64,
    done: bool,
}

impl<'a> ForceMigrate<'a> {
    fn engage(sys: &'a Sys, cache: u8) -> Result<Self> {
        let saved = sys.cache_value(cache, "force_migrate")?;
        if saved != 1 {
            sys.set_cache_value(cache, "force_migrate", 1)?;
        }
        Ok(ForceMigrate { sys, cache, saved, done: false })
    }

    fn restore(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if self.saved != 1 && self.sys.cache_dir(self.cache).is_dir() {
            self.sys.set_cache_value(self.cache, "force_migrate", self.saved)?;
        }
        Ok(())
    }
}

impl Drop for ForceMigrate<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("warning: could not restore force_migrate of cache {}: {}", self.cache, e);
        }
    }
}

/// How long a drain may take and when it reports a stall.
#[derive(Clone, Debug)]
pub struct DrainOpts {
    /// Give up (changing nothing) after this long.
    pub timeout: Option<Duration>,
    /// Say why there is no progress after this long without any.
    pub stall: Duration,
    /// Longest time the device may stay suspended for the final step.
    pub suspended_timeout: Duration,
}

impl Default for DrainOpts {
    fn default() -> Self {
        DrainOpts { timeout: None, stall: Duration::from_secs(30), suspended_timeout: Duration::from_secs(120) }
    }
}

/// Why a cache makes no migration progress, as far as can be told.
fn diagnose_stall(ctx: &Ctx, cache: u8, dirty: u64, grew: bool) -> String {
    let mut why = format!("no write-back progress for a while ({} dirty lines left): ", dirty);
    let error = MgrSession::open(ctx)
        .and_then(|s| {
            s.switch_to(cache)?;
            s.status()
        })
        .ok()
        .and_then(|st| st.cache)
        .map(|c| c.error)
        .unwrap_or(0);
    if error != 0 {
        why += &format!(
            "cache {} reports I/O error {}; migration cannot finish until that is fixed (see dmesg)",
            cache,
            strerror(error)
        );
    } else if grew {
        why += "new writes arrive faster than they are written back; the final step suspends the device";
    } else {
        why += "migration is forced on, but the backing device takes nothing: is it very slow or failing, or does another table hold the disk of a removed device (write-back paused)? (see dmesg)";
    }
    why
}

/// Writes back dirty data until `dirty()` is 0: forces migration on the
/// cache, flushes the RAM buffer whenever the rest of the log is written
/// back, shows progress, says why when it stalls, and stops on Ctrl-C or
/// at `deadline` with an error saying `left_state`.
fn drain(
    ctx: &Ctx,
    cache: u8,
    dirty: &dyn Fn() -> Result<u64>,
    p: &mut Progress,
    o: &DrainOpts,
    deadline: Option<Instant>,
    left_state: &str,
) -> Result<()> {
    let start = Instant::now();
    ctx.sys.set_cache_value(cache, "flush_current_buffer", 1)?;
    let mut last_flush = Instant::now();
    let mut best = u64::MAX;
    let mut last_migrated = 0;
    let mut last_progress = Instant::now();
    let mut reported = false;
    let mut grew = false;
    loop {
        let d = dirty()?;
        p.left(d);
        if d == 0 {
            return Ok(());
        }
        let lm = ctx.sys.cache_value(cache, "last_migrated_segment_id")?;
        let lf = ctx.sys.cache_value(cache, "last_flushed_segment_id")?;
        if d < best || lm != last_migrated {
            if best != u64::MAX && d > best {
                grew = true;
            }
            best = best.min(d);
            last_migrated = lm;
            last_progress = Instant::now();
            reported = false;
        } else if d > best {
            grew = true;
        }
        // Everything on the cache device is written back: what is left is
        // in the RAM buffer.
        if lm >= lf && last_flush.elapsed() >= Duration::from_secs(1) {
            ctx.sys.set_cache_value(cache, "flush_current_buffer", 1)?;
            last_flush = Instant::now();
        }
        if !reported && last_progress.elapsed() >= o.stall {
            p.println(&diagnose_stall(ctx, cache, d, grew));
            reported = true;
        }
        if deadline.is_some_and(|t| Instant::now() >= t) {
            return Err(Error::failed(format!(
                "gave up after {} s: {} dirty lines are left; {}",
                start.elapsed().as_secs(),
                d,
                left_state
            )));
        }
        if !ctx.intr.sleep(Duration::from_millis(200)) {
            return Err(Error::Interrupted(format!("{} dirty lines are left; {}", d, left_state)));
        }
    }
}

// ---------------------------------------------------------------------------
// The manager.

/// `writeboost-create --mgr`: creates the manager device.
pub fn create_mgr(ctx: &Ctx) -> Result<()> {
    ctx.sys.require_module()?;
    if let Some(n) = ctx.dm.mgr_name()? {
        return Err(Error::invalid(format!("the writeboost manager already exists ({})", n)));
    }
    if ctx.dm.info(crate::dm::MGR_NAME)?.is_some() {
        return Err(Error::invalid(format!("a device named {} exists but is not a writeboost manager", crate::dm::MGR_NAME)));
    }
    let _l = lock::acquire(LockKind::Mgr, &ctx.intr, None)?;
    ctx.dm.create(crate::dm::MGR_NAME, "0 1 writeboost-mgr")?;
    println!("created the writeboost manager ({})", crate::dm::MGR_NAME);
    Ok(())
}

/// `writeboost-remove --mgr`: removes the manager (no cache may be resumed).
pub fn remove_mgr(ctx: &Ctx) -> Result<()> {
    let name = require_mgr(&ctx.dm, &ctx.sys)?;
    let caches = ctx.sys.cache_ids();
    if !caches.is_empty() {
        let ids = caches.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
        return Err(Error::invalid(format!(
            "{} {} still resumed; free {} first (writeboost-free-cache {})",
            if caches.len() == 1 { "cache" } else { "caches" },
            ids,
            if caches.len() == 1 { "it" } else { "them" },
            caches[0]
        )));
    }
    let _l = lock::acquire(LockKind::Mgr, &ctx.intr, None)?;
    ctx.dm.remove(&name)?;
    println!("removed the writeboost manager ({})", name);
    Ok(())
}

// ---------------------------------------------------------------------------
// Devices.

/// What `writeboost-create` makes.
#[derive(Clone, Debug)]
pub struct CreateOpts {
    /// Device-mapper name.
    pub name: String,
    /// Device id.
    pub id: u8,
    /// Backing device path.
    pub backing: std::path::PathBuf,
    /// Length in sectors (default: the whole backing device).
    pub sectors: Option<u64>,
    /// The cache the device is for (0: none). Not resumed yet: the device
    /// is created with cache 0 for the resume to bind; resumed: attached.
    pub cache: u8,
    /// Use the disk although its last cache may hold dirty data of it and
    /// is not resumed (see [`crate::state`]).
    pub force: bool,
}

/// The identities of the devices of the resumed caches.
fn resumed_cache_keys(ctx: &Ctx) -> Result<Vec<String>> {
    Ok(topology::caches(&ctx.sys)?.iter().filter_map(|c| c.device).map(|d| state::disk_key(&ctx.sys, d)).collect())
}

/// `writeboost-create NAME ID BACKING [CACHE_ID]`: a pass-through device
/// (cache 0) with its sysfs directory; attached to CACHE_ID if that cache
/// is resumed. Refused (unless forced) when the state says the disk's last
/// cache may hold dirty data of it, is not resumed, and is not CACHE_ID.
pub fn create(ctx: &Ctx, o: &CreateOpts) -> Result<()> {
    validate::device_name(&o.name)?;
    let kpath = validate::kernel_path(&o.backing)?;
    ctx.sys.require_module()?;
    let bd = block_device(&ctx.sys, &o.backing, "backing device")?;
    let len = o.sectors.unwrap_or(bd.sectors);
    if len == 0 || len > bd.sectors {
        return Err(Error::invalid(format!(
            "--sectors {} is not within the backing device {} (1..={} sectors)",
            len,
            o.backing.display(),
            bd.sectors
        )));
    }
    if ctx.dm.info(&o.name)?.is_some() {
        return Err(Error::invalid(format!("a device-mapper device named {} already exists", o.name)));
    }
    let devs = topology::devices(&ctx.dm, &ctx.sys)?;
    if let Some(d) = devs.iter().find(|d| d.id() == o.id) {
        return Err(Error::invalid(format!("device id {} is already used by {}", o.id, d.name)));
    }
    if let Some(d) = devs.iter().find(|d| d.table.backing == bd.devno) {
        return Err(Error::invalid(format!("{} is already the backing device of {}", o.backing.display(), d.label())));
    }
    if let Some(d) = devs.iter().find(|d| d.info.as_ref().is_some_and(|i| i.major == bd.devno.major && i.minor == bd.devno.minor)) {
        return Err(Error::invalid(format!("{} is itself a writeboost device ({})", o.backing.display(), d.label())));
    }
    if let Some(c) = topology::caches(&ctx.sys)?.iter().find(|c| c.device == Some(bd.devno)) {
        return Err(Error::invalid(format!("{} is the cache device of cache {}", o.backing.display(), c.id)));
    }
    // The forgotten cache: a disk whose last cache may hold dirty data of it
    // must not be used without that cache (see crate::state).
    let backing = o.backing.display().to_string();
    let disk = Disk::of(&ctx.sys, bd.devno, Some(&backing));
    let st = ctx.state.load();
    let resumed = resumed_cache_keys(ctx)?;
    let forgotten = state::check_create(&st, &disk.key, o.cache, &|k| resumed.iter().any(|r| r == k));
    if let Some(e) = &forgotten {
        if !o.force {
            return Err(Error::invalid(state::refusal(e, &o.name, &backing, o.cache)));
        }
    }
    create_locked(ctx, o, len, kpath, &disk, forgotten.as_ref())?;
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, o.id)?;
    if o.cache == 0 {
        return Ok(());
    }
    if ctx.sys.cache(o.cache)?.is_some() {
        if dev.bound_cache() == 0 || dev.bound_cache() == o.cache {
            return attach(ctx, o.id, o.cache, None);
        }
        return Ok(());
    }
    let cache_dev = st.entry(&disk.key).filter(|e| e.cache_id == o.cache).map_or("<cache device>".to_string(), |e| e.cache_path.clone());
    println!(
        "cache {c} is not resumed: resume it next (writeboost-resume-cache {c} {cd}); it binds device {id} if it holds \
         dirty data of it; then writeboost-attach {id} {c}",
        c = o.cache,
        cd = cache_dev,
        id = o.id
    );
    Ok(())
}

/// The creation itself, under the device lock.
fn create_locked(ctx: &Ctx, o: &CreateOpts, len: u64, kpath: &str, disk: &Disk, forced: Option<&state::DiskEntry>) -> Result<()> {
    let _l = lock::acquire(LockKind::Device(o.id), &ctx.intr, None)?;
    let table = format!("0 {} writeboost {} {} 0", len, o.id, kpath);
    ctx.dm.create(&o.name, &table)?;
    if let Err(e) = ctx.dm.message(&o.name, &["add_sysfs"]) {
        let undo = ctx.dm.remove(&o.name);
        return Err(match undo {
            Ok(()) => e.context(format!("{} was created but its sysfs directory was not, so it was removed again", o.name)),
            Err(u) => e.context(format!("{} was created but its sysfs directory was not, and removing it failed too ({})", o.name, u)),
        });
    }
    if let Some(e) = forced {
        ctx.state.record(&ctx.intr, &format!("the use of {} without its cache", disk.path), |s, now| s.used_without(&disk.key, now));
        eprintln!(
            "warning: --force: {} is used without {}, which may hold older data of it; resuming that cache later \
             replays it over what is written now (writeboost-resume-cache warns)",
            disk.path,
            e.cache_label()
        );
    }
    println!(
        "created {}: device {} over {} ({}, {} sectors), not attached to a cache; /dev/mapper/{}",
        o.name,
        o.id,
        o.backing.display(),
        size(len),
        len,
        o.name
    );
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, o.id)?;
    if dev.bound_cache() != 0 && dev.bound_cache() != o.cache {
        println!(
            "cache {c} holds dirty data of device {id}: its I/O goes through cache {c} (run writeboost-attach {id} {c} to make that permanent)",
            c = dev.bound_cache(),
            id = o.id
        );
    }
    Ok(())
}

/// Whether `dev` can be attached to `cache`; `Ok(true)` when the table
/// only needs to catch up with a binding made by resume_cache.
pub fn check_attach(label: &str, table_cache: u8, bound_cache: u8, cache: u8) -> std::result::Result<bool, String> {
    match (table_cache, bound_cache) {
        (0, 0) => Ok(false),
        (0, b) if b == cache => Ok(true),
        (0, b) => Err(format!("{} holds dirty data in cache {} (bound when that cache was resumed); attach it to cache {} or detach it first", label, b, b)),
        (t, _) if t == cache => Err(format!("{} is already attached to cache {}", label, cache)),
        (t, _) => Err(format!("{} is attached to cache {}; detach it first (writeboost-detach)", label, t)),
    }
}

/// `writeboost-attach ID CACHE_ID`.
pub fn attach(ctx: &Ctx, id: u8, cache: u8, threshold: Option<u8>) -> Result<()> {
    ctx.sys.require_module()?;
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    require_cache(&ctx.sys, cache)?;
    check_attach(&dev.label(), dev.table.cache_id, dev.bound_cache(), cache).map_err(Error::Invalid)?;
    let _dl = lock::acquire(LockKind::Device(id), &ctx.intr, None)?;
    let _cl = lock::acquire(LockKind::Cache(cache), &ctx.intr, None)?;
    // The state may have changed while we waited for the locks.
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    require_cache(&ctx.sys, cache)?;
    let catch_up = check_attach(&dev.label(), dev.table.cache_id, dev.bound_cache(), cache).map_err(Error::Invalid)?;
    // Recorded first: a crash right after the attach must not leave the
    // disk unknown to the forgotten-cache check.
    record_attached(ctx, &dev, cache);
    // Suspended while the table changes, so no I/O sees a half-made switch.
    ctx.dm.suspend(&dev.name)?;
    if let Err(e) = ctx.dm.load(&dev.name, &dev.table.with_cache(cache)) {
        return Err(match ctx.dm.resume(&dev.name) {
            Ok(()) => e.context(format!("{} was not attached", dev.label())),
            Err(r) => e.context(format!("{} was not attached, and resuming it failed ({}): run dmsetup resume {}", dev.label(), r, dev.name)),
        });
    }
    ctx.dm.resume(&dev.name).map_err(|e| e.context(format!("{} has its new table loaded but is still suspended", dev.label())))?;
    if let Some(t) = threshold {
        ctx.sys.write(&ctx.sys.device_dir(id).join("migrate_threshold"), &t.to_string())?;
    }
    let after = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    if after.bound_cache() != cache || after.table.cache_id != cache {
        return Err(Error::failed(format!(
            "{} reports cache {} (table: {}) after the attach, not {}",
            after.label(),
            after.bound_cache(),
            after.table.cache_id,
            cache
        )));
    }
    if catch_up {
        println!("attached {} to cache {} (it was already bound by its dirty data; its table now says so)", dev.label(), cache);
    } else {
        println!("attached {} to cache {}", dev.label(), cache);
    }
    Ok(())
}

/// Records in the state that `dev`'s disk may have dirty data in `cache`.
fn record_attached(ctx: &Ctx, dev: &WbDevice, cache: u8) {
    let what = format!("the attachment of {} to cache {}", dev.label(), cache);
    let Some(cdev) = ctx.sys.cache(cache).ok().flatten().and_then(|c| c.device) else {
        eprintln!("warning: {} was not recorded in the writeboost state: the cache's device is not known", what);
        return;
    };
    let disk = Disk::of(&ctx.sys, dev.table.backing, None);
    let c = Disk::of(&ctx.sys, cdev, None);
    ctx.state.record(&ctx.intr, &what, |s, now| s.attached(&disk, dev.id(), &dev.name, cache, &c, now));
}

/// `writeboost-detach ID`: writes back the device's dirty data, then
/// reloads its table with cache 0. Never detaches with dirty data left (the
/// kernel refuses such a table too); on Ctrl-C, timeout or error the device
/// stays attached and the cache's `force_migrate` gets its old value back.
pub fn detach(ctx: &Ctx, id: u8, o: &DrainOpts) -> Result<()> {
    ctx.sys.require_module()?;
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    if dev.bound_cache() == 0 {
        return Err(Error::invalid(format!("{} is not attached to a cache", dev.label())));
    }
    let _dl = lock::acquire(LockKind::Device(id), &ctx.intr, None)?;
    detach_locked(ctx, id, o)
}

/// Detach with the device lock held.
fn detach_locked(ctx: &Ctx, id: u8, o: &DrainOpts) -> Result<()> {
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    let cache = dev.bound_cache();
    if cache == 0 {
        return Err(Error::invalid(format!("{} is not attached to a cache", dev.label())));
    }
    let _cl = lock::acquire(LockKind::Cache(cache), &ctx.intr, None)?;
    let start = Instant::now();
    let deadline = o.timeout.map(|t| start + t);
    let initial = dirty_of(ctx, &dev)?;
    let mut force = ForceMigrate::engage(&ctx.sys, cache)?;
    let mut p = Progress::countdown(&format!("writing back {}", dev.name), "dirty lines", initial, ctx.quiet);
    let dirty = || dirty_of(ctx, &dev);
    let stays = format!("{} stays attached to cache {}", dev.label(), cache);

    // 1. While the device is in use: the bulk of the data.
    if let Err(e) = drain(ctx, cache, &dirty, &mut p, o, deadline, &stays) {
        p.finish();
        drop(force); // restores force_migrate (or warns)
        return Err(e);
    }

    // 2. Suspended (suspend flushes the RAM buffer): what arrived since,
    //    then the table with cache 0. The kernel refuses it if any dirty
    //    line is left, so nothing is ever detached dirty.
    p.set_label(&format!("writing back {} (suspended)", dev.name));
    if let Err(e) = ctx.dm.suspend(&dev.name) {
        p.finish();
        drop(force);
        return Err(e.context(stays));
    }
    let suspended_deadline = Some(deadline.map_or(Instant::now() + o.suspended_timeout, |d| d.min(Instant::now() + o.suspended_timeout)));
    let switched = (|| -> Result<()> {
        let mut tries = 0;
        loop {
            drain(ctx, cache, &dirty, &mut p, o, suspended_deadline, &stays)?;
            match ctx.dm.load(&dev.name, &dev.table.with_cache(0)) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_busy() && tries < 3 => tries += 1,
                Err(e) => return Err(e.context(&stays)),
            }
        }
    })();
    p.finish();
    let resumed = ctx.dm.resume(&dev.name);
    let restored = force.restore();
    switched?;
    restored?;
    // The detach itself happens at the resume (the kernel's preresume): if
    // it is refused there, the device stays suspended with the new table
    // and still bound to its cache.
    resumed.map_err(|e| {
        e.context(format!(
            "{} could not be detached at resume and is still suspended, bound to cache {}: once its dirty data is written back run dmsetup resume {} (or load its previous table and resume)",
            dev.label(),
            cache,
            dev.name
        ))
    })?;
    let after = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    if after.bound_cache() != 0 {
        return Err(Error::failed(format!("{} still reports cache {} after the detach", after.label(), after.bound_cache())));
    }
    let disk = state::disk_key(&ctx.sys, dev.table.backing);
    ctx.state.record(&ctx.intr, &format!("the detach of {}", dev.label()), |s, now| s.clean(&disk, now));
    println!(
        "detached {} from cache {} in {:.1} s ({} dirty lines at the start, all written back)",
        dev.label(),
        cache,
        start.elapsed().as_secs_f64(),
        initial
    );
    Ok(())
}

/// `writeboost-remove ID`: detaches (writing back dirty data) and removes
/// the device.
pub fn remove(ctx: &Ctx, id: u8, o: &DrainOpts) -> Result<()> {
    ctx.sys.require_module()?;
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    let open = |d: &WbDevice| d.info.as_ref().map_or(0, |i| i.open);
    if open(&dev) > 0 {
        return Err(Error::invalid(format!(
            "{} is open ({} opener(s): mounted or in use); close it first",
            dev.label(),
            open(&dev)
        )));
    }
    let _dl = lock::acquire(LockKind::Device(id), &ctx.intr, None)?;
    let dev = topology::device_by_id(&ctx.dm, &ctx.sys, id)?;
    if dev.bound_cache() != 0 {
        detach_locked(ctx, id, o)?;
    }
    {
        // Removing the device removes devices/<id>/ (see LockKind::Sysfs).
        let _x = ctx.sys.exclusive(&ctx.intr)?;
        ctx.dm.remove(&dev.name)?;
    }
    println!("removed {}", dev.label());
    Ok(())
}

// ---------------------------------------------------------------------------
// Caches.

/// `writeboost-format-cache PATH`.
pub fn format_cache(ctx: &Ctx, path: &Path, force: bool) -> Result<()> {
    let kpath = validate::kernel_path(path)?;
    let bd = block_device(&ctx.sys, path, "cache device")?;
    require_mgr(&ctx.dm, &ctx.sys)?;
    if let Some(c) = topology::caches(&ctx.sys)?.iter().find(|c| c.device == Some(bd.devno)) {
        return Err(Error::invalid(format!(
            "{} is cache {}, which is resumed; free it first (writeboost-free-cache {})",
            path.display(),
            c.id,
            c.id
        )));
    }
    if let Some(d) = topology::devices(&ctx.dm, &ctx.sys)?.iter().find(|d| d.table.backing == bd.devno) {
        return Err(Error::invalid(format!("{} is the backing device of {}", path.display(), d.label())));
    }
    Geometry::from_device_sectors(bd.sectors).map_err(|e| Error::invalid(format!("{}: {}", path.display(), e)))?;
    if let Ok(sb) = read_superblock(path)? {
        if !force {
            return Err(Error::invalid(format!(
                "{} already holds a writeboost cache ({} segments, formatted {}); formatting erases it, with any \
                 data not yet written back. Use --force to format it anyway",
                path.display(),
                sb.nr_segments(),
                utc(sb.format_time())
            )));
        }
    }
    let s = MgrSession::open(ctx)?;
    let p = Progress::spinner(&format!("formatting {}", path.display()), ctx.quiet);
    let r = s.message(&["format_cache_device", kpath]);
    p.finish();
    r?;
    let key = state::disk_key(&ctx.sys, bd.devno);
    ctx.state.record(&ctx.intr, &format!("the format of {}", path.display()), |s, now| s.cache_clean(&key, now));
    let sb = read_superblock(path)?.map_err(|e| Error::failed(format!("{}: formatted, but its superblock reads back wrong: {}", path.display(), e)))?;
    println!(
        "formatted {} as a writeboost cache: {} segments of 1 MiB ({} of {})",
        path.display(),
        sb.nr_segments(),
        size(sb.nr_segments() * 2048),
        size(bd.sectors)
    );
    Ok(())
}

/// `writeboost-resume-cache ID PATH`: builds cache `id` from the device,
/// replaying its log, then applies the given tunables.
pub fn resume_cache(ctx: &Ctx, id: u8, path: &Path, accept_data_loss: bool, tunables: &[(&str, u64)]) -> Result<()> {
    let kpath = validate::kernel_path(path)?;
    let bd = block_device(&ctx.sys, path, "cache device")?;
    require_mgr(&ctx.dm, &ctx.sys)?;
    if let Some(c) = ctx.sys.cache(id)? {
        return Err(Error::invalid(format!(
            "cache {} is already resumed (on {})",
            id,
            c.device.and_then(|d| ctx.sys.dev_path(d)).unwrap_or_else(|| "?".into())
        )));
    }
    if let Some(c) = topology::caches(&ctx.sys)?.iter().find(|c| c.device == Some(bd.devno)) {
        return Err(Error::invalid(format!("{} is already resumed as cache {}", path.display(), c.id)));
    }
    let cdisk = Disk::of(&ctx.sys, bd.devno, Some(&path.display().to_string()));
    for e in state::used_without(&ctx.state.load(), &cdisk.key) {
        eprintln!("{}", used_without_warning(e, id));
    }
    let sb = match read_superblock(path)? {
        Ok(sb) => Some(sb),
        Err(SuperblockError::BadMagic) => {
            return Err(Error::invalid(format!(
                "{} is not a writeboost cache device (format it first: writeboost-format-cache {})",
                path.display(),
                path.display()
            )))
        }
        // Anything else: the kernel explains it.
        Err(_) => None,
    };
    for (name, v) in tunables {
        check_tunable(name, *v)?;
    }
    let _cl = lock::acquire(LockKind::Cache(id), &ctx.intr, None)?;
    {
        let s = MgrSession::open(ctx)?;
        s.switch_to(id)?;
        let p = Progress::spinner(&format!("resuming cache {} on {} (replaying its log)", id, path.display()), ctx.quiet);
        let mut msg = vec!["resume_cache", kpath];
        if accept_data_loss {
            msg.push("accept_data_loss");
        }
        let r = s.message(&msg);
        p.finish();
        r.map_err(|e| e.context(format!("cache {} was not resumed", id)))?;
    }
    for (name, v) in tunables {
        ctx.sys.set_cache_value(id, name, *v).map_err(|e| e.context(format!("cache {} was resumed, but setting {} failed", id, name)))?;
    }
    let c = require_cache(&ctx.sys, id)?;
    println!(
        "resumed cache {} on {}: {} segments, {} dirty lines",
        id,
        path.display(),
        sb.map_or_else(|| "?".to_string(), |s| s.nr_segments().to_string()),
        c.nr_dirty_caches
    );
    let devs = topology::devices(&ctx.dm, &ctx.sys)?;
    let bound: Vec<&WbDevice> = devs.iter().filter(|d| d.bound_cache() == id).collect();
    // The kernel resumed it, so it holds dirty data only of the devices it
    // bound: every other disk recorded with it is clean in it.
    let bound_disks: Vec<(Disk, u8, String)> = bound.iter().map(|d| (Disk::of(&ctx.sys, d.table.backing, None), d.id(), d.name.clone())).collect();
    ctx.state.record(&ctx.intr, &format!("the resume of cache {}", id), |s, now| {
        s.cache_clean(&cdisk.key, now);
        for (disk, dev_id, name) in &bound_disks {
            s.attached(disk, *dev_id, name, id, &cdisk, now);
        }
    });
    if !bound.is_empty() {
        println!(
            "bound to cache {} by the dirty data it holds: {} (writeboost-attach makes their tables say so)",
            id,
            topology::list_labels(&bound)
        );
    }
    Ok(())
}

/// What `writeboost-resume-cache` says of a disk used without the cache.
pub fn used_without_warning(e: &state::DiskEntry, id: u8) -> String {
    format!(
        "warning: {disk} (device {dev}) was used without this cache since {t} (writeboost-create --force), \
         while the cache may hold older data of it. If device {dev} exists, resuming cache {id} replays that older \
         data over what was written since; if it does not, the kernel refuses the resume while the cache holds \
         data of it",
        disk = e.path,
        dev = e.device_id,
        t = utc(e.used_without_cache.unwrap_or(0)),
        id = id,
    )
}

/// Checks a tunable's name and range (the kernel's ranges).
pub fn check_tunable(name: &str, v: u64) -> Result<()> {
    match crate::sysfs::CACHE_TUNABLES.iter().find(|(n, _, _)| *n == name) {
        Some((_, lo, hi)) if (*lo..=*hi).contains(&v) => Ok(()),
        Some((_, lo, hi)) => Err(Error::invalid(format!("{} must be within {}..{}, not {}", name, lo, hi, v))),
        None => Err(Error::invalid(format!("unknown cache setting '{}'", name))),
    }
}

/// What `writeboost-free-cache` does with dirty data of removed devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtyPolicy {
    /// Refuse to free a cache that holds dirty data.
    Refuse,
    /// Write it back first.
    Drain,
    /// Free anyway: it stays on the cache device until the next resume.
    Keep,
}

/// `writeboost-free-cache ID`.
pub fn free_cache(ctx: &Ctx, id: u8, policy: DirtyPolicy, o: &DrainOpts) -> Result<()> {
    require_mgr(&ctx.dm, &ctx.sys)?;
    let c = require_cache(&ctx.sys, id)?;
    let check_users = || -> Result<()> {
        let devs = topology::devices(&ctx.dm, &ctx.sys)?;
        let users: Vec<&WbDevice> = devs.iter().filter(|d| d.bound_cache() == id).collect();
        if users.is_empty() {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "cache {} still serves {}: detach first (writeboost-detach {})",
            id,
            topology::list_labels(&users),
            users[0].id()
        )))
    };
    check_users()?;
    if c.nr_dirty_caches > 0 && policy == DirtyPolicy::Refuse {
        return Err(Error::invalid(format!(
            "cache {} holds {} dirty lines of removed devices. --drain writes them back first; --keep-dirty \
             frees the cache anyway (they stay on the cache device, and resuming it needs those devices again)",
            id, c.nr_dirty_caches
        )));
    }
    let _cl = lock::acquire(LockKind::Cache(id), &ctx.intr, None)?;
    check_users()?;
    let dirty = ctx.sys.cache_value(id, "nr_dirty_caches")?;
    if dirty > 0 && policy == DirtyPolicy::Drain {
        let mut force = ForceMigrate::engage(&ctx.sys, id)?;
        let mut p = Progress::countdown(&format!("writing back cache {}", id), "dirty lines", dirty, ctx.quiet);
        let r = drain(ctx, id, &|| ctx.sys.cache_value(id, "nr_dirty_caches"), &mut p, o, o.timeout.map(|t| Instant::now() + t), &format!("cache {} stays resumed", id));
        p.finish();
        let restored = force.restore();
        r?;
        restored?;
        println!("wrote back the {} dirty lines of removed devices in cache {}", dirty, id);
    }
    let s = MgrSession::open(ctx)?;
    s.switch_to(id)?;
    {
        // free_cache removes caches/<id>/ (see LockKind::Sysfs).
        let _x = ctx.sys.exclusive(&ctx.intr)?;
        s.message(&["free_cache"]).map_err(|e| e.context(format!("cache {} was not freed", id)))?;
    }
    if dirty == 0 || policy == DirtyPolicy::Drain {
        if let Some(d) = c.device {
            let key = state::disk_key(&ctx.sys, d);
            ctx.state.record(&ctx.intr, &format!("the free of cache {}", id), |s, now| s.cache_clean(&key, now));
        }
    }
    // Point the manager at nothing, so its status shows the global view.
    s.switch_to(0)?;
    let dev = c.device.and_then(|d| ctx.sys.dev_path(d)).unwrap_or_else(|| "its device".into());
    println!("freed cache {} ({}); resume it again with: writeboost-resume-cache {} {}", id, dev, id, dev);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(1_048_576), "512 MiB");
        assert_eq!(size(262_144), "128 MiB");
        assert_eq!(size(3), "1.5 KiB");
        assert_eq!(size(1), "512 B");
    }

    #[test]
    fn attach_rules() {
        let l = "device 1 (wb1)";
        assert_eq!(check_attach(l, 0, 0, 1), Ok(false));
        assert_eq!(check_attach(l, 0, 1, 1), Ok(true));
        assert!(check_attach(l, 0, 2, 1).unwrap_err().contains("holds dirty data in cache 2"));
        assert_eq!(check_attach(l, 1, 1, 1).unwrap_err(), "device 1 (wb1) is already attached to cache 1");
        assert!(check_attach(l, 2, 2, 1).unwrap_err().contains("is attached to cache 2; detach it first"));
    }

    #[test]
    fn tunable_ranges() {
        check_tunable("update_interval", 0).unwrap();
        check_tunable("nr_max_batched_migration", 32).unwrap();
        assert!(check_tunable("nr_max_batched_migration", 33).is_err());
        assert!(check_tunable("barrier_deadline_ms", 0).is_err());
        assert!(check_tunable("bogus", 1).is_err());
    }

    #[test]
    fn superblock_of_a_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("img");
        std::fs::write(&f, vec![0u8; 8192]).unwrap();
        assert_eq!(read_superblock(&f).unwrap().unwrap_err(), SuperblockError::BadMagic);
        std::fs::write(&f, vec![0u8; 100]).unwrap();
        assert!(read_superblock(&f).is_err());
    }
}
