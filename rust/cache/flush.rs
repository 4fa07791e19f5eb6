// SPDX-License-Identifier: GPL-2.0

//! The flusher thread: runs the engine's flusher jobs (write a sealed
//! segment, flush the cache device for flush-only bios, fail held bios
//! after an error) and completes the FLUSH/FUA bios waiting for them.
//!
//! What to write and with which flags is the engine's decision
//! ([`Engine::flusher_next`](crate::wbformat::engine::Engine::flusher_next)):
//! a segment for which bios wait is written with REQ_PREFLUSH | REQ_FUA, which
//! makes it and every earlier segment durable.
//!
//! A segment with direct lines (see [`Cache::map_write`]) is written only
//! once every direct write into it ended, and then only its header and the
//! lines in RAM: the runs after line 0 first, then the header block (with
//! the run at line 0) with REQ_PREFLUSH, so the header is never durable
//! before the direct data it describes.

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::time::msecs_to_jiffies;

use super::{Cache, BLOCK};
use crate::ffi::{self, BioList, IoKind, ThreadBody};
use crate::wbformat::engine::{FlusherJob, IdleStep};
use crate::wbformat::format::{self as fmt, SegmentHeader};

/// What the flusher does next.
enum Work {
    Job(FlusherJob),
    Around(super::AroundJob),
}

/// The flusher thread's state.
pub(crate) struct Flusher {
    cache: Arc<Cache>,
}

impl Flusher {
    pub(crate) fn new(cache: Arc<Cache>) -> Result<Self> {
        Ok(Self { cache })
    }
}

/// A heap-allocated segment header (4 KiB: not for the stack).
pub(crate) fn new_header() -> Result<KBox<SegmentHeader>> {
    // Zeroed in place: building `SegmentHeader::new(0, 0)` and moving it
    // into the box took a 5 KiB stack frame, in resume's call chain, around
    // the allocation (which may enter reclaim).
    KBox::init(kernel::init::zeroed(), GFP_KERNEL)
}

// Every field of `SegmentHeader` is an integer or an array of `Discard` /
// `Metablock`, whose fields are all integers; all-zero bytes are the value
// of `SegmentHeader::new(0, 0)` (`Discard::EMPTY`, `Metablock::EMPTY`).
// SAFETY: so all-zero bytes are a valid `SegmentHeader`.
unsafe impl kernel::init::Zeroable for SegmentHeader {}

impl ThreadBody for Flusher {
    fn run(&self) {
        let c = &*self.cache;
        let mut hdr = loop {
            match new_header() {
                Ok(h) => break h,
                Err(_) if ffi::should_stop() => return,
                Err(_) => ffi::msleep(100),
            }
        };
        loop {
            let mut waiting = BioList::new();
            let job = {
                let mut g = c.lock();
                loop {
                    // Write-around writes first: the segment holding their
                    // drops waits for them.
                    if let Some(j) = g.around_q.iter_mut().find_map(|x| x.take()) {
                        break Work::Around(j);
                    }
                    if ffi::should_stop() {
                        return;
                    }
                    let has_flush_only = !g.flush_only.is_empty();
                    let now = ffi::now_ms();
                    // An open buffer left idle is sealed (written next).
                    let idle = u64::from(c.tun.idle_seal_ms.load(Ordering::Relaxed));
                    let idle_due = match g.eng.seal_if_idle(now, idle) {
                        IdleStep::Due { ms } => ms,
                        IdleStep::Sealed | IdleStep::Nothing => u64::MAX,
                    };
                    let job = g.eng.flusher_next(now, has_flush_only);
                    match job {
                        FlusherJob::Idle(ms) => {
                            if g.eng.stopping() {
                                return;
                            }
                            let ms = ms.min(idle_due).max(1);
                            let _ = c.flusher_cv.wait_interruptible_timeout(&mut g, msecs_to_jiffies(ms as u32));
                        }
                        FlusherJob::Segment { buf, id, durable, .. } => {
                            g.eng.fill_header(buf, id, durable, &mut hdr);
                            if durable {
                                if let Some(l) = g.barriers.get_mut(buf) {
                                    waiting.append(l);
                                }
                                waiting.append(&mut g.flush_only);
                            }
                            break Work::Job(job);
                        }
                        FlusherJob::FlushOnly { .. } => {
                            waiting.append(&mut g.flush_only);
                            break Work::Job(job);
                        }
                        FlusherJob::FailHeld => {
                            waiting.append(&mut g.flush_only);
                            for l in g.barriers.iter_mut() {
                                waiting.append(l);
                            }
                            // The cache device failed (a failed direct
                            // write, with no segment write to fail): the
                            // RAM buffers still go to the backing devices.
                            let salvage = !c.salvaged.load(Ordering::Relaxed);
                            if waiting.is_empty() && !salvage {
                                if g.eng.stopping() {
                                    return;
                                }
                                let _ = c.flusher_cv.wait_interruptible_timeout(&mut g, msecs_to_jiffies(1000));
                                continue;
                            }
                            break Work::Job(job);
                        }
                    }
                }
            };
            let job = match job {
                Work::Around(j) => {
                    c.do_around(j);
                    continue;
                }
                Work::Job(j) => j,
            };
            match job {
                FlusherJob::Idle(_) => {}
                FlusherJob::FailHeld => {
                    waiting.end_all(Err(EIO));
                    if !c.salvaged.swap(true, Ordering::Relaxed) {
                        super::migrate::salvage(c);
                    }
                }
                FlusherJob::FlushOnly { upto } => {
                    let r = c.dev.bdev().flush();
                    if let Err(e) = r {
                        pr_err!("cache {}: flush of the cache device failed (error {})\n", c.id, e.to_errno());
                    }
                    c.lock().eng.flush_done(upto, r.is_ok());
                    c.space.notify_all();
                    waiting.end_all(r);
                }
                FlusherJob::Segment { buf, id, slot, nr_lines, durable } => {
                    let r = wait_direct(c, buf, id).and_then(|()| write_segment(c, &hdr, buf, slot, nr_lines, durable));
                    c.lock().eng.segment_done(id, slot, nr_lines, durable, r.is_ok(), r.err().map_or(0, |e| e.to_errno()));
                    c.space.notify_all();
                    c.migrator_cv.notify_all();
                    match r {
                        Ok(()) => {
                            c.flushes.fetch_add(1, Ordering::Relaxed);
                            // Bios held for a segment written without
                            // PREFLUSH stay held (the engine marks the next
                            // write durable for them).
                            waiting.end_all(Ok(()));
                        }
                        Err(e) => {
                            pr_err!(
                                "cache {}: writing segment {} failed (error {}): the cache stops accepting writes; its data stays in RAM and on disk\n",
                                c.id,
                                id,
                                e.to_errno()
                            );
                            waiting.end_all(Err(EIO));
                            if !c.salvaged.swap(true, Ordering::Relaxed) {
                                super::migrate::salvage(c);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Waits until no direct write into buffer `b` (segment `id`) is in flight;
/// EIO if one of them failed (the segment is then not written: its header
/// would describe data that is not there). A device that neither completes
/// nor fails a write is waited for (the block layer's timeouts end it),
/// with a message every 30 s.
fn wait_direct(c: &Cache, b: usize, id: u64) -> Result {
    let w = c.direct.get(b).ok_or(EINVAL)?;
    let mut waited = 0u32;
    while !w.wait_zero(1000) {
        waited += 1;
        if waited % 30 == 0 {
            pr_warn!("cache {}: segment {}: {} direct writes to the cache device not completed after {} s\n", c.id, id, w.count(), waited);
        }
    }
    if w.failed() {
        pr_err!("cache {}: segment {}: a direct write to the cache device failed\n", c.id, id);
        return Err(EIO);
    }
    Ok(())
}

/// Writes `sectors` sectors of buffer `buf` from byte `off` to `sector`; a
/// failed write is retried twice.
fn write_retry(c: &Cache, buf: &ffi::SharedBuf, sector: u64, sectors: u64, off: usize, kind: IoKind) -> Result {
    let mut r = Err(EIO);
    for attempt in 0..3u32 {
        r = buf.io(c.dev.bdev(), sector, sectors, off, kind);
        if r.is_ok() {
            break;
        }
        if attempt < 2 {
            ffi::msleep(100 * (attempt + 1) * (attempt + 1));
        }
    }
    r
}

/// Fills the header into the buffer and writes the segment: in one I/O
/// (REQ_PREFLUSH | REQ_FUA if `durable`), or, with direct lines, its runs
/// in RAM and last the header with REQ_PREFLUSH (and REQ_FUA if `durable`).
fn write_segment(c: &Cache, hdr: &SegmentHeader, b: usize, slot: u32, nr_lines: u32, durable: bool) -> Result {
    let buf = c.bufs.get(b).ok_or(EINVAL)?;
    let data_len = nr_lines as usize * BLOCK;
    // SAFETY: block 0 of a buffer is only ever touched by this thread
    // (readers read line blocks, writers write line blocks).
    let head = unsafe { buf.slice_mut(0, BLOCK)? };
    // SAFETY: the segment is sealed and has no writers (the engine hands
    // out the job only then, and no writer can enter a sealed segment), so
    // nobody writes its line blocks while this slice lives.
    let data = unsafe { buf.slice(BLOCK, data_len)? };
    fmt::encode_segment_header(hdr, head, data, c.sum).map_err(|_| EINVAL)?;
    let sector = c.geo.segment_start_sector(slot).map_err(|_| EINVAL)?;
    if !hdr.lines().iter().any(|m| m.is_direct()) {
        let sectors = fmt::segment_write_sectors(nr_lines).ok_or(EINVAL)?;
        let kind = if durable { IoKind::WriteFlushFua } else { IoKind::Write };
        return write_retry(c, buf, sector, sectors, 0, kind);
    }
    let spb = fmt::SECTORS_PER_BLOCK;
    let mut first = 0u32;
    for (k, n) in fmt::segment_runs(hdr) {
        if k == 0 {
            first = n;
            continue;
        }
        let at = sector + (u64::from(k) + 1) * spb;
        write_retry(c, buf, at, u64::from(n) * spb, (k as usize + 1) * BLOCK, IoKind::Write)?;
    }
    let kind = if durable { IoKind::WriteFlushFua } else { IoKind::WriteFlush };
    write_retry(c, buf, sector, (u64::from(first) + 1) * spb, 0, kind)
}
