// SPDX-License-Identifier: GPL-2.0

//! Formatting a cache device, and resuming a cache from it (fresh or after
//! a crash).
//!
//! Resume reads the superblock and the newer valid record, then walks the
//! log from `last_migrated + 1`: each segment must have the expected id, a
//! valid header and a matching checksum over header and data; the log ends
//! at the first one that does not (a torn or never-written segment). Every
//! accepted segment is replayed into the index in log order, so an older
//! copy of a block loses exactly the sectors a newer copy rewrote. Before
//! anything is published, every device that owns dirty data must be
//! registered in the record and present with the same backing size and
//! (when the record has one) the same backing identity; otherwise resume is
//! refused and nothing changes.

use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

use super::flush::new_header;
use super::{new_cache, new_engine, Cache, BLOCK, SEG_BYTES, SLOTS};
use crate::ffi::{self, BdevFile, DevT, IoKind, Msg};
use crate::wbformat::format::{self as fmt, Geometry, Record, Superblock};
use crate::wbformat::recovery::{self, LogDevice, ResumeError};

fn msg(args: core::fmt::Arguments<'_>) -> Msg {
    Msg::new(args)
}

fn open_exclusive(path: &CStr) -> core::result::Result<BdevFile, Msg> {
    let f = BdevFile::open_name(path, true).map_err(|e| {
        if e == EBUSY {
            msg(format_args!("{}: device is busy (mounted, or used by another cache or device)", path.to_str().unwrap_or("?")))
        } else {
            msg(format_args!("{}: cannot open (error {})", path.to_str().unwrap_or("?"), e.to_errno()))
        }
    })?;
    // A cache on a writeboost device would write its log through itself.
    if let Some(id) = crate::registry::writeboost_device(f.bdev().devt()) {
        return Err(msg(format_args!(
            "{}: is writeboost device_id {}: a cache cannot live on a writeboost device",
            path.to_str().unwrap_or("?"),
            id
        )));
    }
    if crate::registry::is_private_device(f.bdev().devt()) {
        return Err(msg(format_args!("{}: is a writeboost device: a cache cannot live on a writeboost device", path.to_str().unwrap_or("?"))));
    }
    Ok(f)
}

/// Formats `path` as an empty cache.
pub(crate) fn format_device(path: &CStr, for_resume: bool) -> core::result::Result<u64, Msg> {
    let dev = open_exclusive(path)?;
    let bdev = dev.bdev();
    let sectors = bdev.sectors();
    let mut format_id = ffi::random_u64();
    if format_id == 0 {
        format_id = 1;
    }
    let min = (fmt::MIN_SEGMENTS + 1) * fmt::SEGMENT_SECTORS;
    if sectors < min {
        return Err(msg(format_args!(
            "device {} is too small for a cache: {} sectors, at least {} ({} MiB) needed",
            DevT(bdev.devt()),
            sectors,
            min,
            min / 2048
        )));
    }
    let sb = Superblock::new(sectors, format_id, ffi::real_seconds())
        .map_err(|e| msg(format_args!("cannot format {} ({} sectors): {}", DevT(bdev.devt()), sectors, e)))?;
    // Formatted to be resumed at once: a cache whose index this machine
    // has no memory for is refused before anything is written.
    if for_resume {
        check_index_memory(sb.geometry())?;
    }
    let mut block = KVec::from_elem(0u8, BLOCK, GFP_KERNEL).map_err(|_| msg(format_args!("out of memory")))?;
    // The records first, the superblock last: a format cut short leaves a
    // device without a valid superblock, never a half-formatted cache.
    // `Record::new(format_id)`, on the heap (1 KiB; a 2.2-form table load
    // formats deep in its stack).
    let mut rec = KBox::<Record>::init(kernel::init::zeroed(), GFP_KERNEL).map_err(|_| msg(format_args!("out of memory")))?;
    rec.format_id = format_id;
    for generation in 0..2 {
        rec.generation = generation;
        fmt::encode_record(&rec, &mut block).map_err(|_| msg(format_args!("internal error encoding the record")))?;
        ffi::sync_io(bdev, rec.sector(), 8, &mut block, IoKind::Write)
            .map_err(|e| msg(format_args!("writing the record failed (error {})", e.to_errno())))?;
    }
    fmt::encode_superblock(&sb, &mut block).map_err(|_| msg(format_args!("internal error encoding the superblock")))?;
    ffi::sync_io(bdev, 0, 8, &mut block, IoKind::WriteFlushFua)
        .map_err(|e| msg(format_args!("writing the superblock failed (error {})", e.to_errno())))?;
    Ok(sb.nr_segments())
}

/// The refusal of a resume whose caller is being killed (its replay
/// stopped after `ms` milliseconds, or its threads could not start): the
/// cache is not resumed, and nothing of it is left behind.
pub(crate) fn interrupted(ms: u64) -> Msg {
    msg(format_args!(
        "interrupted by a fatal signal after {} ms of replay (error {}): the cache is not resumed; resume it again",
        ms,
        EINTR.to_errno()
    ))
    .errno(EINTR)
}

/// Memory kept free beyond a resumed cache's index, of `avail` bytes
/// available: what the resume allocates after the index (RAM buffers,
/// read-ahead, the segment buffer: about 10 MiB) and what the rest of the
/// system needs meanwhile. At least an eighth and 48 MiB (breakI: an index
/// just under MemAvailable was allocated, and the next allocation invoked
/// the OOM killer).
fn keep_free(avail: u64) -> u64 {
    (avail / 8).max(48 << 20)
}

/// The refusal of a cache of geometry `geo` for want of memory, `avail`
/// bytes being available (ENOMEM).
fn no_memory(geo: Geometry, avail: u64) -> Msg {
    msg(format_args!(
        "not enough memory for the cache's index ({} MiB; {} MiB available, {} MiB of it kept free; error {}): free memory or use a smaller cache",
        super::index_alloc_bytes(geo).div_ceil(1 << 20),
        avail >> 20,
        keep_free(avail) >> 20,
        ENOMEM.to_errno()
    ))
    .errno(ENOMEM)
}

/// Refuses (ENOMEM) a cache of geometry `geo` whose index the machine has
/// not the memory for: allocating it anyway would drain memory until the
/// allocation fails, and other allocations meanwhile would invoke the OOM
/// killer. (The allocation itself never invokes it: see `ffi::BigVec`.)
fn check_index_memory(geo: Geometry) -> core::result::Result<(), Msg> {
    let avail = ffi::mem_available_bytes();
    if super::index_alloc_bytes(geo).saturating_add(keep_free(avail)) > avail {
        return Err(no_memory(geo, avail));
    }
    Ok(())
}

/// The cache's threads did not start ([`super::start`] failed with `e`),
/// after a resume: an `EINTR` there means the caller is being killed.
pub(crate) fn start_failed(e: Error) -> Msg {
    if e == EINTR {
        msg(format_args!(
            "interrupted by a fatal signal before the cache's threads started (error {}): the cache is not resumed; resume it again",
            e.to_errno()
        ))
        .errno(e)
    } else {
        msg(format_args!("cannot start the cache threads (error {})", e.to_errno())).errno(e)
    }
}

/// What resume needs to know about the device ids that exist.
pub(crate) trait Devices {
    /// (backing dev_t, backing sectors) of the device with this id.
    fn lookup(&self, id: u8) -> Option<(u32, u64)>;
}

/// Builds cache `id` from the device at `path`. The returned cache has its
/// index replayed and its backing devices opened, but no threads yet.
///
/// With `accept_loss`, a log that ends at a corrupt segment although a
/// later segment proves it was durable is resumed anyway (the lost
/// segment's data is gone); otherwise that refuses the resume.
pub(crate) fn resume(id: u8, path: &CStr, devices: &dyn Devices, accept_loss: bool) -> core::result::Result<Arc<Cache>, Msg> {
    let dev = open_exclusive(path)?;
    let bdev = dev.bdev();
    let oom = |_: kernel::alloc::AllocError| msg(format_args!("out of memory"));
    let mut block = KVec::from_elem(0u8, BLOCK, GFP_KERNEL).map_err(oom)?;
    let mut block2 = KVec::from_elem(0u8, BLOCK, GFP_KERNEL).map_err(oom)?;
    ffi::sync_io(bdev, 0, 8, &mut block, IoKind::Read).map_err(|e| msg(format_args!("reading the superblock failed (error {})", e.to_errno())))?;
    // (Id 0 is a 2.2-form device's private cache: formatted when its first
    // sector is zeroed.)
    let how = if id == 0 { "zero its first sector to have it formatted" } else { "format it with format_cache_device" };
    let sb = fmt::decode_superblock(&block).map_err(|e| msg(format_args!("not a usable writeboost cache: {} ({})", e, how)))?;
    fmt::check_device_size(&sb, bdev.sectors()).map_err(|e| msg(format_args!("{}", e)))?;
    ffi::sync_io(bdev, 8, 8, &mut block, IoKind::Read).map_err(|e| msg(format_args!("reading the record failed (error {})", e.to_errno())))?;
    ffi::sync_io(bdev, 16, 8, &mut block2, IoKind::Read).map_err(|e| msg(format_args!("reading the record failed (error {})", e.to_errno())))?;
    // The record is 1 KiB: on the heap, decoded in place (resume runs deep
    // in a DM ioctl's or a table load's stack).
    let mut rec = KBox::<Record>::init(kernel::init::zeroed(), GFP_KERNEL).map_err(|_| msg(format_args!("out of memory")))?;
    let choice = fmt::select_record_into(&block, &block2, sb.format_id(), &mut rec).map_err(|e| msg(format_args!("{}", e)))?;
    let rec: &Record = &rec;
    // The chosen record block: it holds the backing identities.
    let rec_block: &[u8] = if choice.slot == 0 { &block } else { &block2 };
    let geo = sb.geometry();
    let format_id = sb.format_id();
    let t_alloc = ffi::now_ms();
    check_index_memory(geo)?;
    let mut engine = new_engine(geo, format_id, rec.generation).map_err(|_| no_memory(geo, ffi::mem_available_bytes()))?;
    // The one place deciding the segment header version: the superblock's.
    engine.set_segment_version(sb.segment_version());
    let mut hdr = new_header().map_err(|_| msg(format_args!("out of memory")))?;

    // Walk and replay the log, refuse a proven loss, invalidate stale
    // segments past the end, check the registry: all of it is
    // wbformat::recovery::resume_engine, the code the host simulator runs;
    // this function only provides the I/O.
    let last_migrated = rec.last_migrated_segment_id;
    let mut seg = kernel::alloc::KVVec::from_elem(0u8, SEG_BYTES, GFP_KERNEL).map_err(oom)?;
    let mut log = KernelLog::new(dev.bdev());
    let t_log = ffi::now_ms();
    let summary = recovery::resume_engine(&mut log, geo, format_id, rec, ffi::segment_sum(&sb), &mut *engine, &mut hdr, &mut seg, sb.log_horizon(), accept_loss)
        .map_err(|e| match e {
            ResumeError::Read { error, .. } if error == EINTR => interrupted(ffi::now_ms().saturating_sub(t_log)),
            ResumeError::Read { id, error } => {
                msg(format_args!("segment {}: read error {}: cannot resume without it; check the cache device", id, error.to_errno()))
            }
            ResumeError::Write { slot, error } => {
                msg(format_args!("segment slot {}: cannot invalidate a stale segment (error {})", slot, error.to_errno()))
            }
            ResumeError::LostDurable { end_id, proof_id, proof_slot } => msg(format_args!(
                "segment {} (slot {}) is corrupt, but segment {} (slot {}) was written after it was durable: acknowledged data is lost; run writeboost-check, or resume_cache {} accept_data_loss to drop segments {}.. and go on",
                end_id,
                geo.slot_of_id(end_id).unwrap_or(0),
                proof_id,
                proof_slot,
                path.to_str().unwrap_or("?"),
                end_id
            )),
            ResumeError::Recovery(e) => msg(format_args!("replay failed: {}", e)),
            ResumeError::OutOfBounds { device_id, sector } => msg(format_args!(
                "device_id {} has a dirty line at sector {} beyond its registered size {}: corrupt log or record; run writeboost-check",
                device_id,
                sector,
                rec.registered(device_id).unwrap_or(0)
            )),
            ResumeError::Unregistered { device_id, dirty } => msg(format_args!(
                "device_id {} owns {} dirty lines but is not in the cache's registry (corrupt record?); run writeboost-check",
                device_id, dirty
            )),
            ResumeError::BufferTooSmall => msg(format_args!("internal error")),
        })?;
    let t_done = ffi::now_ms();
    let read_ms = log.read_ms;
    // Ends the last read-ahead (the walk's final read starts one).
    drop(log);
    drop(seg);
    for d in 1..=fmt::MAX_DEVICE_ID {
        engine.resumed_identity(d, fmt::record_identity(rec_block, d).unwrap_or(0));
    }
    if summary.clean_dropped > 0 {
        pr_info!("cache {}: {} clean lines of the log not kept (read caching starts cold after a resume)\n", id, summary.clean_dropped);
    }
    if summary.torn_end {
        pr_info!("cache {}: invalidated the torn segment at the end of the log\n", id);
    }
    if summary.invalidated > 0 {
        pr_info!("cache {}: invalidated {} segments written past the end of the log\n", id, summary.invalidated);
    }
    let last_valid = summary.last_valid;
    let cache = new_cache(id, dev, geo, format_id, ffi::segment_sum(&sb), engine).map_err(|e| msg(format_args!("cannot allocate the cache (error {})", e.to_errno())).errno(e))?;
    let t_cache = ffi::now_ms();

    // Every device that owns dirty data must be there, as registered.
    // (On the heap: 1 KiB, on a deep stack.)
    let mut dirty = KVec::from_elem(0u64, SLOTS, GFP_KERNEL).map_err(oom)?;
    for (i, d) in cache.lock().eng.dirty_devices() {
        if let Some(x) = dirty.get_mut(i as usize) {
            *x = d;
        }
    }
    for (i, &d) in dirty.iter().enumerate() {
        if d == 0 {
            continue;
        }
        let dev_id = i as u8;
        let Some(reg) = rec.registered(dev_id) else {
            return Err(msg(format_args!(
                "device_id {} owns {} dirty lines but is not in the cache's registry (corrupt record?); run writeboost-check",
                dev_id, d
            )));
        };
        let Some((devt, sectors)) = devices.lookup(dev_id) else {
            return Err(msg(format_args!(
                "device_id {} owns {} dirty lines in this cache: create it (with cache_id 0, backing of {} sectors) before resume_cache",
                dev_id, d, reg
            )));
        };
        // A grown disk is fine (every dirty line lies below the registered
        // size, checked above; the attach that follows registers the new
        // size); a smaller one is not the disk the data belongs to.
        if sectors < reg {
            return Err(msg(format_args!(
                "device_id {}: its backing device {} has {} sectors but the cache registered {}: shrunk or wrong backing device?",
                dev_id,
                DevT(devt),
                sectors,
                reg
            )));
        }
        let f = BdevFile::open_devt(devt)
            .and_then(|f| Arc::new(f, GFP_KERNEL).map_err(|_| ENOMEM))
            .map_err(|e| msg(format_args!("device_id {}: cannot open backing device {} (error {})", dev_id, DevT(devt), e.to_errno())))?;
        check_identity(rec_block, dev_id, d, &f)?;
        if let Some(s) = cache.backings.lock().get_mut(i) {
            *s = Some(f);
        }
    }
    match summary.end {
        Some(end) => pr_info!("cache {}: replayed {} segments ({}..{}); {}\n", id, summary.replayed, last_migrated.saturating_add(1), last_valid, end),
        None => pr_info!("cache {}: replayed {} segments\n", id, summary.replayed),
    }
    // How much of the ring resume looked at: about the live log plus the
    // log horizon, or every slot (a version 2 superblock, accept_data_loss).
    pr_info!(
        "cache {}: resume read {} segment headers in {} ms, {} ms of it reading ({}; {} slots, superblock version {}); index of {} lines set up in {} ms, the cache in {} ms\n",
        id,
        summary.headers_read,
        t_done.saturating_sub(t_log),
        read_ms,
        if summary.full_scan { "every slot past the end" } else { "the live log and its horizon" },
        geo.nr_segments(),
        sb.version(),
        geo.nr_lines(),
        t_log.saturating_sub(t_alloc),
        t_cache.saturating_sub(t_done)
    );
    Ok(cache)
}

/// Refuses a backing disk of `dev_id` (which owns `dirty` lines) whose
/// identity is not the one the record registered (a disk of the same size
/// but another one). A record without an identity (written by an older
/// version) is checked by size only.
fn check_identity(rec_block: &[u8], dev_id: u8, dirty: u64, f: &BdevFile) -> core::result::Result<(), Msg> {
    let Some(want) = fmt::record_identity(rec_block, dev_id) else {
        return Ok(());
    };
    let devt = f.bdev().devt();
    let have = f.bdev().identity().map_err(|e| {
        msg(format_args!("device_id {}: cannot identify backing device {} (error {})", dev_id, DevT(devt), e.to_errno()))
    })?;
    if have != want {
        // The identities on a line of their own: the message (at most 159
        // bytes) keeps the advice.
        pr_err!("device_id {}: registered backing identity {:#018x}, disk {} has {:#018x}\n", dev_id, want, DevT(devt), have);
        return Err(msg(format_args!(
            "device_id {} owns {} dirty lines of another disk than its backing device {}: create it over its own disk (see writeboost-dump) before resume_cache",
            dev_id,
            dirty,
            DevT(devt)
        )));
    }
    Ok(())
}

/// The cache device as recovery sees it; `read_ms` adds up the time spent
/// in reads (for the kernel log line).
/// The cache device as the recovery walk sees it. The walk reads the log
/// in order, so each read starts a read-ahead of the same size right after
/// it: the next segment arrives while this one is checked.
struct KernelLog<'a> {
    bdev: ffi::Bdev<'a>,
    read_ms: u64,
    /// `None` if its buffer could not be allocated (reads stay synchronous).
    ahead: Option<ffi::ReadAhead<'a>>,
}

impl<'a> KernelLog<'a> {
    fn new(bdev: ffi::Bdev<'a>) -> Self {
        Self { bdev, read_ms: 0, ahead: ffi::ReadAhead::new(bdev, SEG_BYTES).ok() }
    }
}

impl LogDevice for KernelLog<'_> {
    type Error = Error;
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result {
        // The task whose system call replays the log is being killed (a
        // service manager's timeout, Ctrl-C): stop now rather than read
        // the rest of the log for nothing (its threads could not start).
        if ffi::fatal_signal_pending() {
            return Err(EINTR);
        }
        let t = ffi::now_ms();
        let nr = (buf.len() / 512) as u64;
        let mut done = false;
        if let Some(ra) = self.ahead.as_mut() {
            if ra.pending() == Some((sector, nr)) {
                // A failed read-ahead is read again below.
                if let Ok(data) = ra.wait() {
                    if let Some(src) = data.get(..buf.len()) {
                        buf.copy_from_slice(src);
                        done = true;
                    }
                }
            } else {
                ra.cancel();
            }
        }
        let r = if done { Ok(()) } else { ffi::sync_io(self.bdev, sector, nr, buf, IoKind::Read) };
        if let Some(ra) = self.ahead.as_mut() {
            let next = sector.saturating_add(nr);
            if r.is_ok() && next.saturating_add(nr) <= self.bdev.sectors() {
                let _ = ra.start(next, nr);
            }
        }
        self.read_ms = self.read_ms.saturating_add(ffi::now_ms().saturating_sub(t));
        r
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result {
        // A read-ahead must not race the write (it could return old bytes).
        if let Some(ra) = self.ahead.as_mut() {
            ra.cancel();
        }
        // sync_io takes a mutable buffer for both directions.
        let mut b = KVec::with_capacity(buf.len(), GFP_KERNEL)?;
        b.extend_from_slice(buf, GFP_KERNEL)?;
        ffi::sync_io(self.bdev, sector, (buf.len() / 512) as u64, &mut b, IoKind::Write)
    }
    fn flush(&mut self) -> Result {
        if let Some(ra) = self.ahead.as_mut() {
            ra.cancel();
        }
        self.bdev.flush()
    }
}

// `Record` is three `u64`s and an array of `u64`s; all-zero bytes are a
// valid value (format id 0, generation 0, nothing registered), which
// `select_record_into` then overwrites.
// SAFETY: so all-zero bytes are a valid `Record`.
unsafe impl kernel::init::Zeroable for Record {}
