// SPDX-License-Identifier: GPL-2.0

//! The flusher thread: writes sealed segments to the cache device in id
//! order and completes the FLUSH/FUA bios waiting for them.
//!
//! A segment is one write of its header block and its lines. When bios wait
//! for it, the write carries REQ_PREFLUSH | REQ_FUA: the preflush makes
//! every earlier segment durable and the FUA this one, which is exactly
//! what the waiting bios were promised. The flusher also seals the open
//! segment when the oldest waiting barrier reaches `barrier_deadline_ms`,
//! so several barriers share one partial segment.

use core::sync::atomic::Ordering;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::time::msecs_to_jiffies;

use super::{Cache, BLOCK};
use crate::ffi::{self, BioList, IoKind, ThreadBody};
use crate::wbformat::format::{self as fmt, Metablock, SegmentHeader};

/// The flusher thread's state.
pub(crate) struct Flusher {
    cache: Arc<Cache>,
}

impl Flusher {
    pub(crate) fn new(cache: Arc<Cache>) -> Result<Self> {
        Ok(Self { cache })
    }
}

enum Job {
    /// Write segment `id` held in buffer `buf`.
    Segment { buf: usize, id: u64, slot: u64, nr_lines: u32 },
    /// Flush the cache device for these bios.
    FlushOnly(BioList),
    /// The cache failed: complete these bios with an error.
    Fail(BioList),
}

/// A heap-allocated segment header (4 KiB: not for the stack).
pub(crate) fn new_header() -> Result<KBox<SegmentHeader>> {
    let b = KBox::<SegmentHeader>::new_uninit(GFP_KERNEL)?;
    Ok(KBox::write(b, SegmentHeader::new(0, 0)))
}

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
                    if ffi::should_stop() {
                        return;
                    }
                    if g.error.is_some() {
                        let mut fail = BioList::new();
                        fail.append(&mut g.flush_only);
                        for b in g.bufs.iter_mut() {
                            fail.append(&mut b.barriers);
                        }
                        if !fail.is_empty() {
                            break Job::Fail(fail);
                        }
                    } else {
                        if let Some(d) = g.barrier_deadline {
                            if ffi::now_ms() >= d {
                                c.seal_locked(&mut g);
                            }
                        }
                        let next = g.last_flushed + 1;
                        if next <= g.sealed_upto {
                            if let Some(b) = g.bufs.iter().position(|x| x.seg_id == next) {
                                let ready = g.bufs.get(b).is_some_and(|x| x.writers == 0);
                                if ready {
                                    let (slot, nr_lines) = g.bufs.get(b).map_or((0, 0), |x| (x.slot, x.nr_lines));
                                    hdr.reset(c.format_id, next);
                                    if let Some(x) = g.bufs.get_mut(b) {
                                        for l in x.lines.iter().take(nr_lines as usize) {
                                            let _ = hdr.push(Metablock { sector: l.sector, device_id: l.dev, dirty_bits: l.bits });
                                        }
                                        waiting.append(&mut x.barriers);
                                    }
                                    waiting.append(&mut g.flush_only);
                                    break Job::Segment { buf: b, id: next, slot, nr_lines };
                                }
                            } else {
                                pr_err!("cache {}: sealed segment {} has no buffer (internal error)\n", c.id, next);
                                g.error = Some(-5);
                                continue;
                            }
                        }
                        if !g.flush_only.is_empty() {
                            let mut l = BioList::new();
                            l.append(&mut g.flush_only);
                            break Job::FlushOnly(l);
                        }
                    }
                    if g.stopping {
                        return;
                    }
                    let wait_ms = match g.barrier_deadline {
                        Some(d) => d.saturating_sub(ffi::now_ms()).clamp(1, 1000),
                        None => 1000,
                    };
                    let _ = c.flusher_cv.wait_interruptible_timeout(&mut g, msecs_to_jiffies(wait_ms as u32));
                }
            };
            match job {
                Job::Fail(mut l) => l.end_all(Err(EIO)),
                Job::FlushOnly(mut l) => {
                    let r = c.dev.bdev().flush();
                    if let Err(e) = r {
                        pr_err!("cache {}: flush of the cache device failed (error {})\n", c.id, e.to_errno());
                    }
                    l.end_all(r);
                }
                Job::Segment { buf, id, slot, nr_lines } => {
                    let r = write_segment(c, &hdr, buf, slot, nr_lines, !waiting.is_empty());
                    let mut g = c.lock();
                    match r {
                        Ok(()) => {
                            g.last_flushed = id;
                            if let Some(s) = g.seg_lines.get_mut(slot as usize) {
                                *s = nr_lines as u8;
                            }
                            drop(g);
                            c.flushes.fetch_add(1, Ordering::Relaxed);
                            c.space.notify_all();
                            c.migrator_cv.notify_all();
                            waiting.end_all(Ok(()));
                        }
                        Err(e) => {
                            pr_err!(
                                "cache {}: writing segment {} failed (error {}): the cache stops accepting writes; its data stays in RAM and on disk\n",
                                c.id,
                                id,
                                e.to_errno()
                            );
                            g.error = Some(e.to_errno());
                            drop(g);
                            c.space.notify_all();
                            waiting.end_all(Err(EIO));
                        }
                    }
                }
            }
        }
    }
}

/// Fills the header into the buffer and writes the segment; a failed write
/// is retried twice.
fn write_segment(c: &Cache, hdr: &SegmentHeader, b: usize, slot: u64, nr_lines: u32, barrier: bool) -> Result {
    let buf = c.bufs.get(b).ok_or(EINVAL)?;
    let data_len = nr_lines as usize * BLOCK;
    // SAFETY: block 0 of a buffer is only ever touched by this thread
    // (readers read line blocks, writers write line blocks).
    let head = unsafe { buf.slice_mut(0, BLOCK)? };
    // SAFETY: the segment is sealed and has no writers (checked under the
    // lock before this job was taken, and no writer can enter a sealed
    // segment), so nobody writes its line blocks while this slice lives.
    let data = unsafe { buf.slice(BLOCK, data_len)? };
    fmt::encode_segment_header(hdr, head, data, ffi::crc32c_update).map_err(|_| EINVAL)?;
    let sector = c.geo.segment_start_sector(slot as u32).map_err(|_| EINVAL)?;
    let sectors = fmt::segment_write_sectors(nr_lines).ok_or(EINVAL)?;
    let kind = if barrier { IoKind::WriteFlushFua } else { IoKind::Write };
    let mut r = Err(EIO);
    for attempt in 0..3u32 {
        r = buf.io(c.dev.bdev(), sector, sectors, 0, kind);
        if r.is_ok() {
            break;
        }
        if attempt < 2 {
            ffi::msleep(100 * (attempt + 1) * (attempt + 1));
        }
    }
    r
}
