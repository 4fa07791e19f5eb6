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
//! registered in the record and present with the same backing size;
//! otherwise resume is refused and nothing changes.

use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

use super::flush::new_header;
use super::{new_cache, Cache, BLOCK, SLOTS};
use crate::ffi::{self, BdevFile, DevT, IoKind, Msg};
use crate::wbformat::format::{self as fmt, Record, Superblock};
use crate::wbformat::recovery::{self, LogScan};

fn msg(args: core::fmt::Arguments<'_>) -> Msg {
    Msg::new(args)
}

fn open_exclusive(path: &CStr) -> core::result::Result<BdevFile, Msg> {
    BdevFile::open_path(path, true).map_err(|e| {
        if e == EBUSY {
            msg(format_args!("{}: device is busy (mounted, or used by another cache or device)", path.to_str().unwrap_or("?")))
        } else {
            msg(format_args!("{}: cannot open (error {})", path.to_str().unwrap_or("?"), e.to_errno()))
        }
    })
}

/// Formats `path` as an empty cache.
pub(crate) fn format_device(path: &CStr) -> core::result::Result<u64, Msg> {
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
    let mut block = KVec::from_elem(0u8, BLOCK, GFP_KERNEL).map_err(|_| msg(format_args!("out of memory")))?;
    // The records first, the superblock last: a format cut short leaves a
    // device without a valid superblock, never a half-formatted cache.
    let mut rec = Record::new(format_id);
    for _ in 0..2 {
        fmt::encode_record(&rec, &mut block).map_err(|_| msg(format_args!("internal error encoding the record")))?;
        ffi::sync_io(bdev, rec.sector(), 8, &mut block, IoKind::Write)
            .map_err(|e| msg(format_args!("writing the record failed (error {})", e.to_errno())))?;
        rec = rec.next_generation().unwrap_or(rec);
    }
    fmt::encode_superblock(&sb, &mut block).map_err(|_| msg(format_args!("internal error encoding the superblock")))?;
    ffi::sync_io(bdev, 0, 8, &mut block, IoKind::WriteFlushFua)
        .map_err(|e| msg(format_args!("writing the superblock failed (error {})", e.to_errno())))?;
    Ok(sb.nr_segments())
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
    let sb = fmt::decode_superblock(&block).map_err(|e| msg(format_args!("not a usable writeboost cache: {} (format it with format_cache_device)", e)))?;
    fmt::check_device_size(&sb, bdev.sectors()).map_err(|e| msg(format_args!("{}", e)))?;
    ffi::sync_io(bdev, 8, 8, &mut block, IoKind::Read).map_err(|e| msg(format_args!("reading the record failed (error {})", e.to_errno())))?;
    ffi::sync_io(bdev, 16, 8, &mut block2, IoKind::Read).map_err(|e| msg(format_args!("reading the record failed (error {})", e.to_errno())))?;
    let choice = fmt::select_record(&block, &block2, sb.format_id()).map_err(|e| msg(format_args!("{}", e)))?;
    let rec = choice.record;
    let mut registry = [0u64; SLOTS];
    for (i, r) in registry.iter_mut().enumerate() {
        *r = rec.registered(i as u8).unwrap_or(0);
    }
    let geo = sb.geometry();
    let format_id = sb.format_id();
    let cache = new_cache(id, dev, geo, format_id, rec.generation).map_err(|e| msg(format_args!("cannot allocate the cache (error {})", e.to_errno())))?;
    let mut hdr = new_header().map_err(|_| msg(format_args!("out of memory")))?;

    // Walk and replay the log: the decisions are wbformat's (LogScan,
    // verify_segment, replay_segment, beyond_end), tested on the host; this
    // function only does the I/O.
    let last_migrated = rec.last_migrated_segment_id;
    let mut scan = LogScan::new(geo, last_migrated);
    let buf = cache.bufs.first().ok_or_else(|| msg(format_args!("internal error")))?;
    while let Some(cand) = scan.next_candidate() {
        // A read error is not the end of the log: the segment may hold
        // acknowledged data. Refuse to resume rather than drop it.
        let read_err = |e: Error| {
            msg(format_args!("segment {}: read error {}: cannot resume without it; check the cache device", cand.id, e.to_errno()))
        };
        buf.io(bdev_of(&cache), cand.start_sector, 8, 0, IoKind::Read).map_err(read_err)?;
        // SAFETY: the cache is not published and has no threads yet.
        let head = unsafe { buf.slice(0, BLOCK) }.map_err(|_| msg(format_args!("internal error")))?;
        if let Err(e) = fmt::decode_segment_header_into(head, format_id, cand.id, &mut hdr) {
            scan.stop(e);
            break;
        }
        let nr_lines = hdr.nr_lines;
        if nr_lines > 0 {
            buf.io(bdev_of(&cache), cand.start_sector + 8, u64::from(nr_lines) * 8, BLOCK, IoKind::Read).map_err(read_err)?;
        }
        // SAFETY: as above, this is the only user of the buffer.
        let (head, data) = unsafe { (buf.slice(0, BLOCK), buf.slice(BLOCK, nr_lines as usize * BLOCK)) };
        let (head, data) = (head.map_err(|_| msg(format_args!("internal error")))?, data.map_err(|_| msg(format_args!("internal error")))?);
        if let Err(e) = fmt::verify_segment(&hdr, head, data, ffi::crc32c_update) {
            scan.stop(e);
            break;
        }
        let mut deltas = [0i32; SLOTS];
        let mut g = cache.lock();
        let replayed = recovery::replay_segment(&mut g.eng.index, &geo, cand.slot, &hdr, |dev, delta| {
            if let Some(d) = deltas.get_mut(dev as usize) {
                *d = d.saturating_add(delta);
            }
            Ok(())
        });
        for (i, &d) in deltas.iter().enumerate() {
            if d != 0 {
                g.eng.account(i as u8, d);
            }
        }
        g.eng.replayed(cand.id, cand.slot, &hdr);
        drop(g);
        replayed.map_err(|e| msg(format_args!("segment {}: replay failed: {}", cand.id, e)))?;
        scan.accept(&hdr).map_err(|e| msg(format_args!("segment {}: {}", cand.id, e)))?;
    }
    let last_valid = scan.last_valid_id();

    // Past the end of the log, a later segment may have reached the disk
    // while an earlier one did not (a volatile disk cache reorders writes).
    // It must not survive: after the next crash it would be replayed after a
    // rewritten, newer segment. Invalidate every header that still decodes
    // as the segment its slot would hold, then flush, before any new write.
    // A valid segment there that knew the segment where the log ended was
    // already durable proves that segment is corrupt, not torn: acknowledged
    // data would be lost. Refuse (changing nothing) unless told otherwise.
    let end_id = last_valid + 1;
    let mut stale = 0u32;
    for cand in scan.beyond_end() {
        ffi::sync_io(bdev_of(&cache), cand.start_sector, 8, &mut block, IoKind::Read)
            .map_err(|e| msg(format_args!("segment slot {}: read error {}: cannot resume", cand.slot, e.to_errno())))?;
        if fmt::decode_segment_header_into(&block, format_id, cand.id, &mut hdr).is_ok() {
            stale += 1;
            if recovery::proves_loss(end_id, &hdr) && !accept_loss {
                return Err(msg(format_args!(
                    "segment {} (slot {}) is corrupt, but segment {} was written after it was durable: acknowledged data is lost; run writeboost-check, or resume_cache {} accept_data_loss to drop segments {}.. and go on",
                    end_id,
                    geo.slot_of_id(end_id).unwrap_or(0),
                    cand.id,
                    path.to_str().unwrap_or("?"),
                    end_id
                )));
            }
        }
    }
    let mut zapped = 0u32;
    for cand in scan.beyond_end().filter(|_| stale > 0) {
        ffi::sync_io(bdev_of(&cache), cand.start_sector, 8, &mut block, IoKind::Read)
            .map_err(|e| msg(format_args!("segment slot {}: read error {}: cannot resume", cand.slot, e.to_errno())))?;
        if fmt::decode_segment_header_into(&block, format_id, cand.id, &mut hdr).is_ok() {
            block.iter_mut().for_each(|b| *b = 0);
            ffi::sync_io(bdev_of(&cache), cand.start_sector, 8, &mut block, IoKind::Write)
                .map_err(|e| msg(format_args!("segment slot {}: cannot invalidate a stale segment (error {})", cand.slot, e.to_errno())))?;
            zapped += 1;
        }
    }
    if zapped > 0 {
        bdev_of(&cache).flush().map_err(|e| msg(format_args!("flushing the cache device failed (error {})", e.to_errno())))?;
        pr_info!("cache {}: invalidated {} segments written past the end of the log\n", id, zapped);
    }
    cache.lock().eng.resumed(last_migrated, last_valid, &registry);
    if let Some((dev_id, sector)) = cache.lock().eng.out_of_bounds() {
        return Err(msg(format_args!(
            "device_id {} has a dirty line at sector {} beyond its registered size {}: corrupt log or record; run writeboost-check",
            dev_id,
            sector,
            rec.registered(dev_id).unwrap_or(0)
        )));
    }

    // Every device that owns dirty data must be there, as registered.
    let mut dirty = [0u64; SLOTS];
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
        if sectors != reg {
            return Err(msg(format_args!(
                "device_id {}: its backing device {} has {} sectors but the cache registered {}: wrong backing device?",
                dev_id,
                DevT(devt),
                sectors,
                reg
            )));
        }
        let f = BdevFile::open_devt(devt)
            .and_then(|f| Arc::new(f, GFP_KERNEL).map_err(|_| ENOMEM))
            .map_err(|e| msg(format_args!("device_id {}: cannot open backing device {} (error {})", dev_id, DevT(devt), e.to_errno())))?;
        if let Some(s) = cache.backings.lock().get_mut(i) {
            *s = Some(f);
        }
    }
    match scan.end() {
        Some(end) => pr_info!("cache {}: replayed {} segments ({}..{}); {}\n", id, scan.replayed(), last_migrated + 1, last_valid, end),
        None => pr_info!("cache {}: replayed {} segments\n", id, scan.replayed()),
    }
    Ok(cache)
}

fn bdev_of(c: &Cache) -> ffi::Bdev<'_> {
    c.dev.bdev()
}
