// SPDX-License-Identifier: GPL-2.0

//! The cache engine: every decision of the data path, as a state machine
//! that does no I/O.
//!
//! The kernel module (`rust/cache/`) and the host simulator
//! (`tests/sim.rs`) drive the same [`Engine`]: they call it under one lock
//! with *events* (a write, a read, a flush, a discard, an I/O that completed
//! or failed, a tick) and it answers with what to do (copy into buffer X
//! line K, write segment S with these flags, flush the cache device, write
//! back these lines, write the record, complete or hold this bio). The
//! callers only move bytes, run threads and complete bios.
//!
//! # Durability rules (see `Documentation/design.md`, "The contract")
//!
//! * `last_flushed`: every segment id `<=` it has been written (completed)
//!   to the cache device; `durable_upto`: every id `<=` it is known durable
//!   (covered by a completed `REQ_PREFLUSH`). A FLUSH/FUA bio completes only
//!   once the newest segment holding acknowledged data is durable.
//! * A write (or a logged discard) that takes sectors away from a line of an
//!   older segment makes that segment *depend* on the newer one
//!   ([`SlotMeta::dep`]): migration skips the superseded sectors, so the
//!   record may move past the older segment only once the newer one is
//!   written; the record write carries `REQ_PREFLUSH`, which makes it
//!   durable. Otherwise a crash could lose both copies (the older one no
//!   longer replayed, the newer one never written).
//! * The record never names a segment before the backing devices were
//!   flushed for it (the caller flushes them at the end of a round).
//! * A discard that drops data of older segments is logged in the open
//!   segment, so replay drops the same data; a device detaches only once
//!   everything it logged is durable.
//!
//! # Invariants
//!
//! * `durable_upto <= last_flushed <= sealed_upto <= last_id`, and
//!   `record_migrated <= last_migrated <= last_flushed`.
//! * Segment id `g` is in slot `(g - 1) % nr_segments`; it is opened only
//!   once `record_migrated >= g - nr_segments`.
//! * At most one buffer is open (`cur`); a sealed buffer gets no new writer.
//! * A buffer holds one segment id; it is reused only once that segment is
//!   written and it has no writers and no readers.

use super::format::{
    Discard, Geometry, Metablock, SegmentHeader, LINES_PER_SEGMENT, MAX_DEVICE_ID,
    MAX_DISCARDS, MAX_DISCARD_SECTORS, Record, RegistryError, REGISTRY_ENTRIES, SECTORS_PER_BLOCK,
};
use super::index::{Index, IndexError, Key, LineMeta, Link};
use core::ops::DerefMut;

/// RAM buffers per cache (1 MiB each).
pub const NR_BUFS: usize = 8;
const LINES: u32 = LINES_PER_SEGMENT;
/// Bytes of one 4 KiB line.
pub const LINE_BYTES: usize = 4096;

/// Per segment slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotMeta {
    /// Lines the segment in this slot was written with.
    pub nr_lines: u8,
    /// The newest segment id that took sectors away from a line of this
    /// segment (0 = none): it must be written before the record passes this
    /// segment.
    pub dep: u64,
}

/// Per line of a RAM buffer: what the header will say, and copies in
/// progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufLine {
    /// Backing sector of the block (a multiple of 8).
    pub sector: u64,
    /// Owner device.
    pub dev: u8,
    /// Sectors written into the line (cleared again by a discard).
    pub bits: u8,
    /// Writers copying into the line right now.
    pub pending: u16,
    /// A clean line (read caching): `bits` is 0xFF and the data equals the
    /// backing device's; the header marks it [`METABLOCK_CLEAN`](super::format::METABLOCK_CLEAN).
    pub clean: bool,
    /// A direct line: its data goes from the users' bios straight to its
    /// place on the cache device, not through the RAM buffer (see
    /// [`Direct`]); the header marks it
    /// [`METABLOCK_DIRECT`](super::format::METABLOCK_DIRECT).
    pub direct: bool,
    /// Sectors (bit `j` = sector `j`) whose direct write failed: their data
    /// is not on the cache device, and reads of them fail (EIO) instead of
    /// returning what the slot held before.
    pub lost: u8,
}

/// Most read-cache cells a cache may have (`nr_read_cache_cells`).
pub const MAX_READ_CACHE_CELLS: u32 = 2048;
/// Most `read_cache_threshold` (dm-writeboost 2.2's range).
pub const MAX_READ_CACHE_THRESHOLD: u32 = 127;

/// One read-cache cell: a 4 KiB read miss being staged (read from the
/// backing device) before it is injected into the log as a clean line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageCell {
    /// Block number (backing sector / 8).
    pub block: u64,
    /// Device id.
    pub dev: u8,
    /// 0 free, 1 staging, 2 cancelled (a write or discard of the block
    /// came first: not injected).
    pub state: u8,
}

const CELL_FREE: u8 = 0;
const CELL_STAGING: u8 = 1;
const CELL_CANCELLED: u8 = 2;

/// A block being staged: see [`Engine::stage_begin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageTicket {
    /// The cell.
    pub cell: u32,
    /// Device id.
    pub dev: u8,
    /// Block number (backing sector / 8).
    pub block: u64,
}

/// Answer to [`Engine::stage_inject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectStep {
    /// Copy the 4096 staged bytes at the ticket (one line), then call
    /// [`Engine::end_write`] (`barrier` false).
    Go(WriteTicket),
    /// Not injected (cancelled, cached meanwhile, no room without waiting,
    /// or read caching was turned off): drop the staged data.
    Dropped,
}

/// Why [`Engine::set_read_cache`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadCacheError {
    /// The cache was formatted with a superblock older than version 4: its
    /// segment headers cannot mark clean lines.
    OldFormat,
    /// `threshold` above [`MAX_READ_CACHE_THRESHOLD`] or `cells` outside
    /// `1..=`[`MAX_READ_CACHE_CELLS`].
    OutOfRange,
}

impl core::fmt::Display for ReadCacheError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OldFormat => write!(f, "cache formatted by an older module (superblock version 3 or older): reformat it to use read caching"),
            Self::OutOfRange => write!(f, "read_cache_threshold must be 0..={MAX_READ_CACHE_THRESHOLD} and nr_read_cache_cells 1..={MAX_READ_CACHE_CELLS}"),
        }
    }
}

/// Per device id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevMeta {
    /// Writes of this device are accepted.
    pub attached: bool,
    /// Dirty lines.
    pub dirty: u64,
    /// Registered backing size in sectors (0 = not registered), as the next
    /// record will say.
    pub registered: u64,
    /// Identity of the registered backing disk (0 = unknown), as the next
    /// record will say (`format::backing_identity`).
    pub identity: u64,
    /// Newest segment id holding a write or a logged discard of the device.
    pub last_seg: u64,
    /// Newest segment id (or later) holding a line of the device that a
    /// round wrote back since the resume: until the record passes it, a
    /// replay brings such lines back as dirty.
    pub cleaned_seg: u64,
    /// Errno of the device's last failed write-back (0 = write-back works).
    /// While it is set the device is *failing*: its dirty lines are parked
    /// (skipped by migration until `retry_at`, moved to the head of the log
    /// when they hold the log up) and never dropped.
    pub fail_errno: i32,
    /// While failing: the next write-back attempt is due at this time (ms).
    pub retry_at: u64,
    /// Consecutive failed write-back attempts.
    pub nr_failures: u32,
    /// Failed write-back attempts since the cache started (status).
    pub writeback_errors: u64,
    /// Writes published (a generation: a discard skip hint of the device is
    /// valid while it does not change).
    pub writes: u64,
}

/// Bookkeeping of one RAM buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufMeta {
    /// Segment held (0 = none).
    pub seg_id: u64,
    /// Its slot.
    pub slot: u32,
    /// Lines reserved.
    pub nr_lines: u32,
    /// Discard entries logged.
    pub nr_discards: u32,
    /// Writers copying in.
    pub writers: u32,
    /// Readers copying out.
    pub readers: u32,
    /// No new writer may enter.
    pub sealed: bool,
    /// FLUSH/FUA bios are held for this segment (the caller holds them).
    pub barriers: bool,
    /// The flusher is writing the segment.
    pub writing: bool,
    /// Write-around writes whose drop is logged in this segment and whose
    /// data is not yet durable on the backing device (see
    /// [`Engine::write_around`]): the segment is not written before they
    /// end ([`Engine::end_around`]), so a drop is never durable before the
    /// data that replaces the dropped copies.
    pub around: u32,
}

/// The storage an engine works in, allocated by the caller (the kernel with
/// `vmalloc`, the host with `Vec`). Lengths: `Lines` one per cache line,
/// `Buckets` `index::buckets_for(lines)`, `Slots` one per segment slot,
/// `BufLines` `NR_BUFS * 255`, `Discards` `NR_BUFS * MAX_DISCARDS`, `Devs`
/// `REGISTRY_ENTRIES`.
pub trait Storage {
    /// Index line table.
    type Lines: DerefMut<Target = [LineMeta]>;
    /// Index hash buckets.
    type Buckets: DerefMut<Target = [Link]>;
    /// Per-slot metadata.
    type Slots: DerefMut<Target = [SlotMeta]>;
    /// Per-buffer-line metadata.
    type BufLines: DerefMut<Target = [BufLine]>;
    /// Per-buffer discard entries.
    type Discards: DerefMut<Target = [Discard]>;
    /// Per-device metadata.
    type Devs: DerefMut<Target = [DevMeta]>;
    /// Read-cache cells (any length up to [`MAX_READ_CACHE_CELLS`]; 0 makes
    /// read caching impossible).
    type Cells: DerefMut<Target = [StageCell]>;
}

/// The storage handed to [`Engine::new`].
pub struct Parts<S: Storage> {
    /// See [`Storage`].
    pub lines: S::Lines,
    /// See [`Storage`].
    pub buckets: S::Buckets,
    /// See [`Storage`].
    pub slots: S::Slots,
    /// See [`Storage`].
    pub buf_lines: S::BufLines,
    /// See [`Storage`].
    pub discards: S::Discards,
    /// See [`Storage`].
    pub devs: S::Devs,
    /// See [`Storage`].
    pub cells: S::Cells,
}

/// Why an engine could not be built or refuses an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// A storage slice has the wrong length.
    BadStorage,
    /// The index refused (a broken invariant or a bad log).
    Index(IndexError),
    /// A device id out of range.
    BadDevice(u8),
}

impl From<IndexError> for EngineError {
    fn from(e: IndexError) -> Self {
        Self::Index(e)
    }
}

impl core::fmt::Display for EngineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadStorage => write!(f, "engine storage has the wrong size"),
            Self::Index(e) => write!(f, "index: {e}"),
            Self::BadDevice(d) => write!(f, "invalid device id {d}"),
        }
    }
}

/// What a caller must wait for before retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Until the flusher or the migrator frees a buffer or a slot (a wake-up
    /// on the caller's "space" condition).
    Space,
    /// A short sleep (reads remapped to the slot are still in flight).
    Sleep(u32),
    /// Another write is still copying into the line this one would update
    /// in place: wait until a copy ends (a wake-up on "space"), retry. Two
    /// copies into one line at once could tear its sectors.
    Pending,
}

/// First delay before a failing device's write-back is retried (ms); it
/// doubles with every failure up to [`RETRY_MAX_MS`].
pub const RETRY_FIRST_MS: u64 = 1000;
/// Longest delay between two write-back attempts of a failing device (ms).
pub const RETRY_MAX_MS: u64 = 30_000;
/// Segment slots kept free for moving parked lines (see
/// [`MigratorJob::Relocate`]); ordinary writes never take them.
pub const RESERVED_SEGMENTS: u64 = 1;

/// Whether a write may go straight to the cache device instead of through
/// the RAM buffer (a *direct* write: no copy of its data in RAM). Direct
/// lines exist only in segments of header version 4
/// ([`SEGMENT_VERSION_V4`](super::format::SEGMENT_VERSION_V4)); on older
/// caches every answer is a RAM copy.
///
/// The caller's duty for a direct ticket: count the device write in flight
/// for its buffer under the lock, submit the write to `cache_sector`, and
/// call [`Engine::end_write`] when it completes, with its status (not at
/// once: until then the ticket's lines are pending, so reads of them wait
/// instead of reading what the slot held before, which may be another
/// device's data, and the flusher is not given the segment); not let the
/// flusher write the buffer's segment before every such write ended; the
/// segment is then written with `REQ_PREFLUSH` (see
/// [`format::segment_runs`](super::format::segment_runs)): its header is
/// never durable before the direct data it describes.
///
/// A failed direct write (`end_write` with `ok == false`) puts the engine
/// in error and marks its sectors *lost*: reads of them answer
/// [`ReadStep::Fail`] (their place holds the slot's older contents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direct {
    /// Never direct (a FUA write, held until its segment is durable): a
    /// direct line of the open segment is not updated in place, the
    /// segment is sealed and the write goes to a new line.
    No,
    /// RAM copies for new lines; an in-place update of a direct line of the
    /// open segment is direct (a small write).
    May,
    /// New lines are direct; an in-place update of a line in RAM is a RAM
    /// copy (a large write).
    Want,
}

/// Smallest write (sectors) the kernel sends direct ([`Direct::Want`]): 64
/// KiB. Smaller writes are batched in the RAM buffer into whole-segment
/// writes, which is what makes a log fast for them.
pub const DIRECT_MIN_SECTORS: u32 = 128;

/// Where a write copies its data: `sectors` sectors to the consecutive
/// lines `k..k + nr_lines` of buffer `buf`, contiguous in the buffer from
/// byte `byte_off` (or, `direct`, on the cache device from `cache_sector`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteTicket {
    /// The buffer.
    pub buf: usize,
    /// The first line in it.
    pub k: u32,
    /// Lines the write covers (`1..=255`).
    pub nr_lines: u32,
    /// Byte offset of the first sector in the buffer.
    pub byte_off: usize,
    /// Sectors of the write this ticket takes (from its first sector; the
    /// caller handles the rest with a new [`Engine::begin_write`]).
    pub sectors: u32,
    /// A direct write (see [`Direct`]): the data goes to the cache device
    /// at `cache_sector`, not into the buffer.
    pub direct: bool,
    /// Cache-device sector of the ticket's first sector (its place in the
    /// segment's slot; meaningful when `direct`).
    pub cache_sector: u64,
}

/// Most 4 KiB blocks one read step covers (16 MiB): bounds the index
/// look-ups per lock hold.
pub const MAX_READ_BLOCKS: u32 = 4096;

/// Answer to [`Engine::begin_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// Copy the data at the ticket, then call [`Engine::end_write`].
    Go(WriteTicket),
    /// Wait, then ask again.
    Wait(Wait),
    /// The device is not attached: send the bio to the backing device.
    NotAttached,
    /// Fail the bio with EIO (the cache is in error).
    Fail,
}

/// Answer to [`Engine::end_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteDone {
    /// Hold the bio until the buffer's segment is durable (FUA/PREFLUSH).
    pub hold: bool,
    /// Wake the flusher.
    pub wake_flusher: bool,
}

/// Answer to [`Engine::begin_read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// The backing device has the newest data of the first `run` sectors.
    Backing {
        /// Sectors.
        run: u32,
    },
    /// Copy `run` sectors from buffer `buf` at `byte_off`, then call
    /// [`Engine::end_buffer_read`].
    Buffer {
        /// The buffer.
        buf: usize,
        /// Byte offset in it.
        byte_off: usize,
        /// Sectors.
        run: u32,
    },
    /// Remap `run` sectors to the cache device at `sector`; the read holds
    /// slot `slot` (the caller counts reads in flight per slot).
    Cache {
        /// The slot.
        slot: u32,
        /// Cache-device sector.
        sector: u64,
        /// Sectors.
        run: u32,
    },
    /// A write into that line is being copied: wait for space, retry.
    WaitPending,
    /// Fail the first `run` sectors with EIO: their direct write failed
    /// (see [`Direct`]), the cache device does not hold them.
    Fail {
        /// Sectors.
        run: u32,
    },
}

/// Answer to [`Engine::begin_flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushStep {
    /// Everything acknowledged is durable: complete now.
    Done,
    /// A cache-device flush suffices: queue it for the flusher.
    FlushOnly,
    /// Hold the bio with buffer `0` until its segment is durable.
    Held(usize),
    /// Fail it (cache in error).
    Fail,
}

/// Answer to [`Engine::discard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscardStep {
    /// Pass the discard to the backing device.
    Pass,
    /// Wait, then ask again (a segment must be opened to log it).
    Wait(Wait),
    /// The work budget of the call is used up: call again (after dropping
    /// the lock for a moment).
    Again,
    /// Fail it (cache in error).
    Fail,
}

/// Answer to [`Engine::write_around`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AroundStep {
    /// Write the first `sectors` sectors to the backing device (the caller
    /// cuts the bio there and asks again for the rest). `logged: Some(t)`:
    /// a drop entry is reserved in the open segment, which is not written
    /// until [`Engine::end_around`] is called with `t`: write the data with
    /// `REQ_PREFLUSH | REQ_FUA` (durable before the drop can be), then call
    /// it with the result; a FUA write is acknowledged only once the drop
    /// is durable too (hold it as an empty flush: [`Engine::begin_flush`]).
    /// `None`: nothing needs logging, a plain remap will do (a later FLUSH
    /// must then reach the backing device).
    Pass {
        /// Sectors of this piece.
        sectors: u32,
        /// The reserved drop entry: write the data durably, then
        /// [`Engine::end_around`].
        logged: Option<AroundTicket>,
    },
    /// Wait, then ask again (a migration round holds a copy of these
    /// blocks, or a segment must be opened to log the drop).
    Wait(Wait),
    /// The device's write-back is failing (its backing disk refuses
    /// writes): write it through the cache like a write in normal mode
    /// ([`Engine::begin_write`]), so no cached copy is dropped for a write
    /// that will probably not reach the disk.
    Cache,
    /// Fail it (cache in error).
    Fail,
}

/// A write-around write in flight whose drop is reserved (see
/// [`Engine::write_around`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AroundTicket {
    sector: u64,
    n: u16,
    dev: u8,
    buf: u8,
}

/// Write-around writes in flight with a reserved drop, at most (more
/// wait).
pub const MAX_AROUND: usize = 8;

/// A discard in progress: the range and how far
/// [`Engine::discard_step`] got in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscardRange {
    dev: u8,
    start: u64,
    end: u64,
    walk: DiscardWalk,
}

/// How a discard finds the cached data of its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DiscardWalk {
    /// Not started: chosen at the first step.
    New,
    /// Every chunk of the range, from sector `next`.
    Blocks { next: u64 },
    /// The lines of the segments `id..=last` (the log when the discard
    /// started), from line `k` of segment `id`; `above`: the lowest dirty
    /// sector of the device at or past the end of the range seen so far;
    /// `writes`: the device's write generation when the walk started.
    Lines { id: u64, k: u32, last: u64, above: u64, writes: u64 },
}

impl DiscardRange {
    /// A discard of `nr` sectors of device `dev` from `sector`.
    pub fn new(dev: u8, sector: u64, nr: u64) -> Self {
        Self { dev, start: sector, end: sector.saturating_add(nr), walk: DiscardWalk::New }
    }

    /// Whether the range is walked through the cache's lines rather than
    /// block by block (decided by the first step).
    pub fn walks_lines(&self) -> bool {
        matches!(self.walk, DiscardWalk::Lines { .. })
    }
}

/// Answer to [`Engine::seal_if_idle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleStep {
    /// The open segment was sealed: the flusher writes it next.
    Sealed,
    /// It holds data and becomes idle in `ms` milliseconds unless written
    /// to.
    Due {
        /// Milliseconds.
        ms: u64,
    },
    /// Nothing open holds data (or idle sealing is off).
    Nothing,
}

/// The flusher's next job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlusherJob {
    /// Fill the header with [`Engine::fill_header`], write the segment
    /// (`nr_lines + 1` blocks from the start of `slot`), then call
    /// [`Engine::segment_done`]. With `durable` the write carries
    /// `REQ_PREFLUSH | REQ_FUA`: take the buffer's held bios and the
    /// flush-only bios, and complete them after it.
    Segment {
        /// Buffer.
        buf: usize,
        /// Segment id.
        id: u64,
        /// Its slot.
        slot: u32,
        /// Lines.
        nr_lines: u32,
        /// `REQ_PREFLUSH | REQ_FUA`.
        durable: bool,
    },
    /// Flush the cache device for the queued flush-only bios, then call
    /// [`Engine::flush_done`] with `upto`.
    FlushOnly {
        /// Every id `<=` this is durable once the flush completes.
        upto: u64,
    },
    /// The cache failed: complete every held bio with EIO.
    FailHeld,
    /// Nothing to do; sleep at most this long (ms).
    Idle(u64),
}

/// The migrator's next job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigratorJob {
    /// Write back segments `start..=end`: collect [`Engine::round_entries`],
    /// read, write back, flush the backing devices, then
    /// [`Engine::round_done`]. `start` is the oldest segment not migrated,
    /// or a later one when the oldest hold only parked lines (the round
    /// writes back the other devices' lines past them).
    Round {
        /// First id.
        start: u64,
        /// Last id.
        end: u64,
    },
    /// Segment `id` (the oldest not migrated) holds only dirty lines of
    /// failing devices and holds the log up (writers wait for room, or a
    /// detach for the record): read it, then move each of its
    /// lines ([`Engine::round_entries`] with `parked`) to the head of the log
    /// with [`Engine::begin_relocate`] and [`Engine::end_write`], then call
    /// [`Engine::relocate_done`]. The data is never dropped; the record
    /// passes `id` only once the new copies are written.
    Relocate {
        /// Segment id.
        id: u64,
    },
    /// Write the record ([`Engine::record_snapshot`], then
    /// [`Engine::record_done`]).
    Record,
    /// Nothing to do; sleep at most this long (ms). `wake_flusher`: a
    /// segment was sealed for the record.
    Idle {
        /// Milliseconds.
        ms: u64,
        /// Wake the flusher.
        wake_flusher: bool,
    },
    /// The cache is stopping.
    Exit,
}

/// A dirty line to write back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigEntry {
    /// Global line index.
    pub line: u64,
    /// Position of its segment in the round (0 = `start`).
    pub seg: u32,
    /// Line within the segment.
    pub k: u32,
    /// Device.
    pub dev: u8,
    /// Backing sector of the block.
    pub sector: u64,
    /// Dirty sectors.
    pub bits: u8,
}

/// Most sectors one write-back write carries (2048: 1 MiB).
pub const MAX_MERGE_SECTORS: u64 = 2048;

/// One write-back write: `sectors` dirty sectors from `sector` of device
/// `dev`, whose bytes are at byte `off` of memory region `region` (the
/// caller's: a RAM buffer, a round's snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBackRun {
    /// Device.
    pub dev: u8,
    /// Memory region holding the data.
    pub region: usize,
    /// Byte offset of the first sector in the region.
    pub off: usize,
    /// First backing sector.
    pub sector: u64,
    /// Number of sectors (1..=[`MAX_MERGE_SECTORS`]).
    pub sectors: u64,
}

/// The writes that put the dirty sectors of `entries` (sorted by device and
/// sector) on their backing devices, in order, each passed to `emit`: dirty
/// sectors that follow each other both on the backing device and in memory
/// (consecutive lines of one segment, as sequential writes leave them) go in
/// one write of up to [`MAX_MERGE_SECTORS`]. `span(e)`: where entry `e`'s
/// 4 KiB are, as `(region, byte offset)`. The kernel's migration and
/// `writeboost-recover` both write back with this. Stops at the first error
/// of `span` or `emit` and returns it.
pub fn writeback_runs<E>(
    entries: &[MigEntry],
    mut span: impl FnMut(&MigEntry) -> Result<(usize, usize), E>,
    mut emit: impl FnMut(WriteBackRun) -> Result<(), E>,
) -> Result<(), E> {
    let mut run: Option<WriteBackRun> = None;
    for e in entries {
        let (region, off) = span(e)?;
        // Each run of consecutive dirty sectors of the line.
        let mut j = 0u32;
        while j < 8 {
            if e.bits & (1 << j) == 0 {
                j += 1;
                continue;
            }
            let mut n = 1;
            while j + n < 8 && e.bits & (1 << (j + n)) != 0 {
                n += 1;
            }
            let sector = e.sector + u64::from(j);
            let o = off + j as usize * 512;
            let n = u64::from(n);
            match run.as_mut() {
                Some(r)
                    if r.dev == e.dev
                        && r.region == region
                        && r.off + (r.sectors as usize) * 512 == o
                        && r.sector + r.sectors == sector
                        && r.sectors + n <= MAX_MERGE_SECTORS =>
                {
                    r.sectors += n;
                }
                _ => {
                    if let Some(r) = run.take() {
                        emit(r)?;
                    }
                    run = Some(WriteBackRun { dev: e.dev, region, off: o, sector, sectors: n });
                }
            }
            j += n as u32;
        }
    }
    if let Some(r) = run {
        emit(r)?;
    }
    Ok(())
}

/// What the next record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSnap {
    /// Generation to write.
    pub generation: u64,
    /// `last_migrated_segment_id`.
    pub last_migrated: u64,
    /// Registry version it carries.
    pub version: u64,
    /// `last_flushed` when it was taken: the record's `REQ_PREFLUSH` makes
    /// every segment up to it durable.
    pub flushed: u64,
}

impl RecordSnap {
    /// The record this snapshot describes, for a cache of `format_id` whose
    /// registry (backing sectors per device id, 0 = none) is `registry`;
    /// what the kernel and `writeboost-recover` write (with
    /// `format::encode_record_with_identities`).
    pub fn record(&self, format_id: u64, registry: &[u64; REGISTRY_ENTRIES]) -> Result<Record, RegistryError> {
        let mut rec = Record::new(format_id);
        rec.generation = self.generation;
        rec.last_migrated_segment_id = self.last_migrated;
        for (i, &s) in (0u8..).zip(registry.iter()) {
            if s != 0 {
                rec.register(i, s)?;
            }
        }
        Ok(rec)
    }
}

/// Answer to [`Engine::detach`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetachStep {
    /// The device still has this many dirty lines.
    Dirty(u64),
    /// A migration round is in flight: wait for space, retry.
    WaitRound,
    /// The record has not passed every segment holding lines (or logged
    /// discards) of the device yet: wake the migrator (it writes back and
    /// moves what stands before them, even with migration off), wait, retry.
    /// Otherwise a replay after a crash could bring those lines back once
    /// the device writes straight to its backing device.
    NeedRecord,
    /// Detached. With `commit`, the device was unregistered: write the
    /// record; if that fails, call [`Engine::undo_detach`].
    Done {
        /// Write the record.
        commit: bool,
    },
}

const BUF_LINES_LEN: usize = NR_BUFS * LINES as usize;
const DISCARDS_LEN: usize = NR_BUFS * MAX_DISCARDS;

/// Byte offset in a RAM buffer of sector `off` of line `k`.
pub fn line_offset(k: u32, off: u32) -> usize {
    (k as usize).saturating_add(1).saturating_mul(LINE_BYTES).saturating_add((off as usize).saturating_mul(512))
}

/// Global line number of line `k` of slot `slot` (`slot * 255 + k`).
fn line_no(slot: u32, k: u32) -> u64 {
    u64::from(slot).wrapping_mul(u64::from(LINES)).wrapping_add(u64::from(k))
}

/// Slot and line-in-segment of global line number `line`.
fn slot_k(line: u64) -> (u32, u32) {
    let per = u64::from(LINES);
    (line.checked_div(per).unwrap_or(0) as u32, line.checked_rem(per).unwrap_or(0) as u32)
}

fn bits_of(off: u32, n: u32) -> u8 {
    if off >= 8 || n == 0 {
        return 0;
    }
    let n = n.min(8u32.saturating_sub(off));
    ((0xffu32 >> (8 - n.min(8))) << off.min(7)) as u8
}

/// The pieces of `sector..end` within one 4 KiB block each: their first
/// sector and their sectors' bits in the block.
fn block_pieces(sector: u64, end: u64) -> impl Iterator<Item = (u64, u8)> {
    let mut s = sector;
    core::iter::from_fn(move || {
        if s >= end {
            return None;
        }
        let off = (s % SECTORS_PER_BLOCK) as u32;
        let cnt = 8u32.saturating_sub(off).min(end.saturating_sub(s).min(8) as u32).max(1);
        let piece = (s, bits_of(off, cnt));
        s = s.saturating_add(u64::from(cnt));
        Some(piece)
    })
}

/// One cache's state and decisions. See the module documentation.
pub struct Engine<S: Storage> {
    geo: Geometry,
    format_id: u64,
    /// The metablock index.
    pub index: Index<S::Lines, S::Buckets>,
    slots: S::Slots,
    buf_lines: S::BufLines,
    discards: S::Discards,
    devs: S::Devs,
    bufs: [BufMeta; NR_BUFS],
    cur: Option<usize>,
    /// The relocation's own open segment (see [`Engine::begin_relocate`]):
    /// not `cur`, so writers cannot take the lines the relocation needs.
    /// Kept open across consecutive relocation jobs (packing their lines),
    /// sealed by [`Engine::migrator_next`] before any other job. No other
    /// segment is opened meanwhile (`cur` is `None`): it is the newest.
    reloc_buf: Option<usize>,
    last_id: u64,
    sealed_upto: u64,
    last_flushed: u64,
    durable_upto: u64,
    log_horizon: u64,
    last_migrated: u64,
    record_migrated: u64,
    generation: u64,
    registry_version: u64,
    record_version: u64,
    round: Option<(u64, u64)>,
    /// The devices parked when the round in flight started (a bit per
    /// device id): its entries skip their lines.
    round_parked: u128,
    /// Write-back past the tail: every flushed segment up to `.0` has had
    /// its dirty lines written back but those of the devices in `.1` (a bit
    /// per device id, parked when the rounds ran). Rounds go on from there
    /// while the tail segment holds only parked lines, so that the parked
    /// lines are moved only to make room (see [`Engine::migrator_next`]).
    /// Valid while it is past the tail and none of `.1` is due for a retry.
    wb_past: (u64, u128),
    /// The migrator's clock (ms), from [`Engine::migrator_next`].
    mig_now: u64,
    /// A detach waits for the record to pass this segment id.
    record_wanted: u64,
    barrier_deadline: Option<u64>,
    urgent: bool,
    error: Option<i32>,
    migrate_error: Option<i32>,
    stopping: bool,
    stats: [u64; 16],
    cursor: u64,
    nr_partial_flushed: u64,
    nr_relocated: u64,
    /// When a write last reached the open segment (for idle sealing).
    last_write_ms: Option<u64>,
    /// What the last discard that walked the lines learnt.
    discard_hint: Option<DiscardHint>,
    /// Write-around writes in flight with a reserved drop (no migration
    /// round starts meanwhile: it could write an older copy back after
    /// them).
    around_count: u32,
    /// Version of the segment headers written (from
    /// [`Superblock::segment_version`](super::format::Superblock::segment_version)).
    seg_version: u32,
    /// Read caching: `read_cache_threshold` (0 = off) and the cells used.
    rc_threshold: u32,
    rc_cells: u32,
    cells: S::Cells,
    /// Cells in use (staging or cancelled), and one past the highest.
    cells_busy: u32,
    cells_hwm: u32,
    /// Sequential read detection: the block after the last staged one and
    /// the length of the run.
    seq: (u8, u64, u32),
    /// Clean lines injected, staged blocks dropped (status).
    nr_injected: u64,
    nr_stage_dropped: u64,
}

/// Device `dev` had no dirty sector in `from..next` when its write
/// generation was `writes` (found by a discard walking every live line:
/// the next discards of a sequential series skip at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DiscardHint {
    dev: u8,
    from: u64,
    next: u64,
    writes: u64,
}

impl<S: Storage> Engine<S> {
    /// An empty engine for a cache of geometry `geo` and format `format_id`
    /// whose record has `generation`.
    pub fn new(geo: Geometry, format_id: u64, generation: u64, mut p: Parts<S>) -> Result<Self, EngineError> {
        let nr_slots = geo.nr_segments() as usize;
        if p.lines.len() != geo.nr_lines() as usize
            || p.slots.len() != nr_slots
            || p.buf_lines.len() != BUF_LINES_LEN
            || p.discards.len() != DISCARDS_LEN
            || p.devs.len() != REGISTRY_ENTRIES
            || p.cells.len() > MAX_READ_CACHE_CELLS as usize
        {
            return Err(EngineError::BadStorage);
        }
        p.slots.fill(SlotMeta::default());
        p.buf_lines.fill(BufLine::default());
        p.discards.fill(Discard::EMPTY);
        p.devs.fill(DevMeta::default());
        p.cells.fill(StageCell::default());
        let index = Index::new(p.lines, p.buckets)?;
        Ok(Self {
            geo,
            format_id,
            index,
            slots: p.slots,
            buf_lines: p.buf_lines,
            discards: p.discards,
            devs: p.devs,
            bufs: [BufMeta::default(); NR_BUFS],
            cur: None,
            reloc_buf: None,
            last_id: 0,
            sealed_upto: 0,
            last_flushed: 0,
            durable_upto: 0,
            log_horizon: u64::from(super::format::LOG_HORIZON),
            last_migrated: 0,
            record_migrated: 0,
            generation,
            registry_version: 0,
            record_version: 0,
            round: None,
            round_parked: 0,
            wb_past: (0, 0),
            mig_now: 0,
            record_wanted: 0,
            barrier_deadline: None,
            urgent: false,
            error: None,
            migrate_error: None,
            stopping: false,
            stats: [0; 16],
            cursor: 0,
            nr_partial_flushed: 0,
            nr_relocated: 0,
            last_write_ms: None,
            discard_hint: None,
            around_count: 0,
            seg_version: super::format::FORMAT_VERSION,
            rc_threshold: 0,
            rc_cells: MAX_READ_CACHE_CELLS,
            cells: p.cells,
            cells_busy: 0,
            cells_hwm: 0,
            seq: (0, 0, 0),
            nr_injected: 0,
            nr_stage_dropped: 0,
        })
    }

    // -------------------------------------------------------------------
    // Recovery

    /// Recovery: adds `delta` dirty lines to `dev` (from
    /// [`replay_segment`](super::recovery::replay_segment)'s callback).
    pub fn account(&mut self, dev: u8, delta: i32) {
        if let Some(d) = self.devs.get_mut(dev as usize) {
            d.dirty = if delta >= 0 {
                d.dirty.saturating_add(delta as u64)
            } else {
                d.dirty.saturating_sub(u64::from(delta.unsigned_abs()))
            };
        }
    }

    /// Recovery: segment `id` in `slot` was replayed with `nr_lines` lines
    /// and touched these devices.
    pub fn replayed(&mut self, id: u64, slot: u32, header: &SegmentHeader) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.nr_lines = header.nr_lines.min(LINES) as u8;
            s.dep = 0;
        }
        for mb in header.lines().iter().filter(|m| m.dirty_bits != 0) {
            if let Some(d) = self.devs.get_mut(mb.device_id as usize) {
                d.last_seg = id;
            }
        }
        for dc in header.discard_entries() {
            if let Some(d) = self.devs.get_mut(dc.device_id as usize) {
                d.last_seg = id;
            }
        }
    }

    /// Recovery: the log is `last_migrated + 1 ..= last_valid` (all of it
    /// durable, it was read back), the record registers `registry[i]`
    /// sectors for device `i`.
    pub fn resumed(&mut self, last_migrated: u64, last_valid: u64, registry: &[u64]) {
        self.last_id = last_valid;
        self.sealed_upto = last_valid;
        self.last_flushed = last_valid;
        self.durable_upto = last_valid;
        self.last_migrated = last_migrated;
        self.record_migrated = last_migrated;
        self.wb_past = (0, 0);
        for (d, &r) in self.devs.iter_mut().zip(registry.iter()) {
            d.registered = r;
            d.cleaned_seg = 0;
        }
        // The status `cursor` goes on from the last line of the log (as
        // it would have without the restart), not from line 0.
        if let Ok(slot) = self.geo.slot_of_id(last_valid) {
            let n = self.slots.get(slot as usize).map_or(0, |s| u32::from(s.nr_lines));
            if n > 0 {
                self.cursor = line_no(slot, n - 1);
            }
        }
    }

    /// At resume: the backing identity the record holds for `dev`
    /// (`format::record_identity`; the same record, so nothing to write).
    pub fn resumed_identity(&mut self, dev: u8, identity: u64) {
        if let Some(d) = self.devs.get_mut(dev as usize) {
            d.identity = identity;
        }
    }

    /// The first dirty line with dirty sectors outside its device's
    /// registered size: `(device, sector)`. At resume only the segments of the log
    /// (`last_migrated + 1 ..= last_id`) can hold dirty lines, so only their
    /// lines are looked at: O(live log), not O(cache).
    pub fn out_of_bounds(&self) -> Option<(u8, u64)> {
        let first = self.last_migrated.saturating_add(1);
        let last = self.last_id.min(self.last_migrated.saturating_add(u64::from(self.geo.nr_segments())));
        let lines = (first..=last).filter_map(|id| self.geo.slot_of_id(id).ok()).flat_map(|slot| (0..LINES).filter_map(move |k| self.geo.line_index(slot, k).ok()));
        for line in lines {
            let Ok(Some(key)) = self.index.key_of(line) else { continue };
            let size = self.devs.get(key.device_id as usize).map_or(0, |d| d.registered);
            let sector = key.block.saturating_mul(SECTORS_PER_BLOCK);
            let bits = self.index.dirty(line).unwrap_or(0xff);
            if super::format::dirty_end(sector, bits).is_none_or(|end| end > size) {
                return Some((key.device_id, sector));
            }
        }
        None
    }

    // -------------------------------------------------------------------
    // Accessors

    /// The geometry.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }
    /// Buffer bookkeeping.
    pub fn buf(&self, b: usize) -> Option<&BufMeta> {
        self.bufs.get(b)
    }
    /// Per-device state.
    pub fn dev(&self, dev: u8) -> DevMeta {
        self.devs.get(dev as usize).copied().unwrap_or_default()
    }
    /// Dirty lines of `dev`.
    pub fn dirty_of(&self, dev: u8) -> u64 {
        self.dev(dev).dirty
    }
    /// Dirty lines of every device.
    pub fn total_dirty(&self) -> u64 {
        self.devs.iter().fold(0u64, |a, d| a.saturating_add(d.dirty))
    }
    /// Device ids with dirty lines.
    pub fn dirty_devices(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        (0u8..=MAX_DEVICE_ID).zip(self.devs.iter()).filter(|(_, d)| d.dirty > 0).map(|(i, d)| (i, d.dirty))
    }
    /// Registered size of `dev` (0 = none).
    pub fn registered(&self, dev: u8) -> u64 {
        self.dev(dev).registered
    }
    /// Newest segment opened.
    pub fn last_id(&self) -> u64 {
        self.last_id
    }
    /// Every id `<=` this is sealed.
    pub fn sealed_upto(&self) -> u64 {
        self.sealed_upto
    }
    /// Every id `<=` this is written.
    pub fn last_flushed(&self) -> u64 {
        self.last_flushed
    }
    /// Every id `<=` this is durable.
    pub fn durable_upto(&self) -> u64 {
        self.durable_upto
    }
    /// Every id `<=` this is written back (in memory).
    pub fn last_migrated(&self) -> u64 {
        self.last_migrated
    }
    /// What the on-disk record says.
    pub fn record_migrated(&self) -> u64 {
        self.record_migrated
    }
    /// Fatal cache-device error.
    pub fn error(&self) -> Option<i32> {
        self.error
    }
    /// Sets the fatal error (the caller saw an internal failure).
    pub fn set_error(&mut self, e: i32) {
        self.error = Some(e);
    }
    /// Migration error being retried.
    pub fn migrate_error(&self) -> Option<i32> {
        self.migrate_error
    }
    /// Whether the cache is stopping.
    pub fn stopping(&self) -> bool {
        self.stopping
    }
    /// Stop the threads.
    pub fn stop(&mut self) {
        self.stopping = true;
    }
    /// Writers wait for migration (the log is full).
    pub fn urgent(&self) -> bool {
        self.urgent
    }
    /// The 16 counters: index = write | hit << 1 | on_buffer << 2 | fullsize << 3.
    pub fn stats(&self) -> &[u64; 16] {
        &self.stats
    }
    /// Global index of the line allocated last.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }
    /// Partial segments sealed.
    pub fn nr_partial_flushed(&self) -> u64 {
        self.nr_partial_flushed
    }
    /// Lines of failing devices moved to the head of the log so far.
    pub fn nr_relocated(&self) -> u64 {
        self.nr_relocated
    }
    /// Clears the counters.
    pub fn clear_stats(&mut self) {
        self.stats = [0; 16];
        self.nr_partial_flushed = 0;
    }
    /// Lines the segment in `slot` was written with.
    pub fn slot_lines(&self, slot: u32) -> u32 {
        self.slots.get(slot as usize).map_or(0, |s| u32::from(s.nr_lines))
    }
    /// When the open segment must be sealed for its held barriers (ms).
    pub fn barrier_deadline(&self) -> Option<u64> {
        self.barrier_deadline
    }
    /// Whether a migration round is in flight.
    pub fn round_in_flight(&self) -> bool {
        self.round.is_some()
    }

    fn buf_line(&mut self, b: usize, k: u32) -> Option<&mut BufLine> {
        self.buf_lines.get_mut(b.saturating_mul(LINES as usize).saturating_add(k as usize))
    }

    /// Reserves the next free line of buffer `b` for `key` (None: the
    /// segment is full); `cursor`: a user's write (the status `cursor`).
    fn reserve_line(&mut self, b: usize, key: Key, cursor: bool) -> Option<u32> {
        let x = self.bufs.get_mut(b).filter(|x| x.nr_lines < LINES)?;
        let (k, slot) = (x.nr_lines, x.slot);
        x.nr_lines = k.saturating_add(1);
        if let Some(l) = self.buf_line(b, k) {
            *l = BufLine { sector: key.block.saturating_mul(SECTORS_PER_BLOCK), dev: key.device_id, bits: 0, pending: 0, clean: false, direct: false, lost: 0 };
        }
        if cursor {
            self.cursor = line_no(slot, k);
        }
        Some(k)
    }

    /// Whether line `k` of buffer `b` is direct.
    fn line_direct(&self, b: usize, k: u32) -> bool {
        self.buf_lines.get(b.saturating_mul(LINES as usize).saturating_add(k as usize)).is_some_and(|l| l.direct)
    }

    /// Whether a write is copying into line `k` of buffer `b` right now.
    fn line_pending(&self, b: usize, k: u32) -> bool {
        self.buf_lines.get(b.saturating_mul(LINES as usize).saturating_add(k as usize)).is_some_and(|l| l.pending > 0)
    }

    fn buf_of_slot(&self, slot: u32) -> Option<usize> {
        self.bufs.iter().position(|b| b.seg_id != 0 && b.slot == slot)
    }

    fn open_has_data(&self) -> bool {
        self.cur.and_then(|c| self.bufs.get(c)).is_some_and(|x| x.nr_lines > 0 || x.nr_discards > 0)
    }

    fn set_dep(&mut self, line: u64, newer: u64) {
        let (slot, _) = slot_k(line);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.dep < newer {
                s.dep = newer;
            }
        }
    }

    fn touch_dev(&mut self, dev: u8, id: u64) {
        if let Some(d) = self.devs.get_mut(dev as usize) {
            d.last_seg = d.last_seg.max(id);
        }
    }

    // -------------------------------------------------------------------
    // Segments

    /// Seals the open segment (if it holds anything) so the flusher writes
    /// it. Returns whether it did.
    pub fn seal(&mut self) -> bool {
        let Some(b) = self.cur else { return false };
        let Some(buf) = self.bufs.get_mut(b) else { return false };
        if buf.nr_lines == 0 && buf.nr_discards == 0 {
            return false;
        }
        if buf.nr_lines < LINES {
            self.nr_partial_flushed = self.nr_partial_flushed.saturating_add(1);
        }
        buf.sealed = true;
        self.sealed_upto = buf.seg_id;
        self.cur = None;
        self.barrier_deadline = None;
        self.last_write_ms = None;
        true
    }

    /// Seals the relocation's own segment (if open): the flusher writes it
    /// in its turn. Returns whether it sealed one holding anything (an
    /// empty one is given back).
    fn close_reloc(&mut self) -> bool {
        let Some(b) = self.reloc_buf.take() else { return false };
        let Some(buf) = self.bufs.get_mut(b) else { return false };
        if buf.nr_lines == 0 && buf.nr_discards == 0 && self.cur.is_none() && buf.seg_id == self.last_id {
            // Nothing moved into it: it becomes the open segment.
            self.cur = Some(b);
            return false;
        }
        if buf.nr_lines < LINES {
            self.nr_partial_flushed = self.nr_partial_flushed.saturating_add(1);
        }
        buf.sealed = true;
        self.sealed_upto = self.sealed_upto.max(buf.seg_id);
        true
    }

    /// Whether a writer could take a new line now as far as the log's
    /// room goes: the open segment has a free line, or a segment can be
    /// opened leaving the reserve free. (Progress of write-back that does
    /// not give writers room, such as moving parked lines round a log full
    /// of them, must not keep them waiting past their time limit.)
    pub fn writer_room(&self) -> bool {
        if self.reloc_buf.is_some() {
            return false;
        }
        if self.cur.and_then(|b| self.bufs.get(b)).is_some_and(|x| x.nr_lines < LINES) {
            return true;
        }
        self.slot_free(self.reserve())
    }

    /// Whether a relocation could move a line now without waiting for room:
    /// its own segment or the open one has a free line, or a slot can be
    /// opened (the one writers leave free).
    fn reloc_room(&self) -> bool {
        let free = |b: Option<usize>| b.and_then(|b| self.bufs.get(b)).is_some_and(|x| x.nr_lines < LINES);
        if free(self.reloc_buf) || free(self.cur) {
            return true;
        }
        self.slot_free(0)
    }

    /// Whether the next segment can be opened leaving `reserve` further
    /// slots free: the record has freed the slot it needs.
    fn slot_free(&self, reserve: u64) -> bool {
        let need = self.last_id.saturating_add(1).saturating_add(reserve);
        let nr = u64::from(self.geo.nr_segments());
        need <= nr || self.record_migrated >= need.saturating_sub(nr)
    }

    /// Idle sealing: seals the open segment once it holds data and no
    /// write reached it for `idle_ms` milliseconds (0: never), so that
    /// data does not stay in RAM without a daemon or a flush. The idle time
    /// counts from the last write into the segment (or, for a segment
    /// holding only logged discards, from the first call that saw it).
    pub fn seal_if_idle(&mut self, now_ms: u64, idle_ms: u64) -> IdleStep {
        if idle_ms == 0 || !self.open_has_data() {
            return IdleStep::Nothing;
        }
        let since = *self.last_write_ms.get_or_insert(now_ms);
        let due = since.saturating_add(idle_ms);
        if now_ms >= due {
            self.seal();
            IdleStep::Sealed
        } else {
            IdleStep::Due { ms: due.saturating_sub(now_ms) }
        }
    }

    /// Segment slots ordinary writes leave free (see [`RESERVED_SEGMENTS`]).
    fn reserve(&self) -> u64 {
        if self.geo.nr_segments() > 2 {
            RESERVED_SEGMENTS
        } else {
            0
        }
    }

    /// Opens the next segment, leaving `reserve` further slots free.
    /// `slot_busy(slot)`: reads remapped to that slot are in flight.
    fn open_segment(&mut self, slot_busy: &dyn Fn(u32) -> bool, reserve: u64) -> Result<(), Wait> {
        if self.reloc_buf.is_some() {
            // The relocation's own segment is the newest until it is
            // sealed: lines enter the index in the order of their segments.
            // Not `Space`: the log may have room (a failing device's write
            // would fail at once on `Space`), the relocation ends soon.
            return Err(Wait::Sleep(1));
        }
        let next_id = self.last_id.saturating_add(1);
        let Ok(slot) = self.geo.slot_of_id(next_id) else { return Err(Wait::Space) };
        if !self.slot_free(reserve) {
            self.urgent = true;
            return Err(Wait::Space);
        }
        if slot_busy(slot) {
            return Err(Wait::Sleep(1));
        }
        let lf = self.last_flushed;
        let reusable = |b: &BufMeta| b.seg_id == 0 || (b.seg_id <= lf && b.writers == 0 && b.readers == 0);
        if let Some(old) = self.buf_of_slot(slot) {
            if !self.bufs.get(old).is_some_and(reusable) {
                return Err(Wait::Space);
            }
            if let Some(b) = self.bufs.get_mut(old) {
                b.seg_id = 0;
            }
        }
        let mut pick: Option<usize> = None;
        for (i, b) in (0..NR_BUFS).zip(self.bufs.iter()) {
            if Some(i) == self.cur || !reusable(b) {
                continue;
            }
            if pick.and_then(|p| self.bufs.get(p)).map_or(true, |p| b.seg_id < p.seg_id) {
                pick = Some(i);
            }
        }
        let Some(b) = pick else { return Err(Wait::Space) };
        // The slot's previous segment is migrated and on record: its lines
        // are clean.
        for k in 0..LINES {
            let _ = self.index.release(line_no(slot, k));
        }
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = SlotMeta::default();
        }
        let base = b.saturating_mul(LINES as usize);
        if let Some(ls) = self.buf_lines.get_mut(base..base.saturating_add(LINES as usize)) {
            ls.fill(BufLine::default());
        }
        let base = b.saturating_mul(MAX_DISCARDS);
        if let Some(ds) = self.discards.get_mut(base..base.saturating_add(MAX_DISCARDS)) {
            ds.fill(Discard::EMPTY);
        }
        if let Some(buf) = self.bufs.get_mut(b) {
            *buf = BufMeta { seg_id: next_id, slot, ..BufMeta::default() };
        }
        self.cur = Some(b);
        self.last_write_ms = None;
        self.last_id = next_id;
        self.urgent = false;
        Ok(())
    }

    // -------------------------------------------------------------------
    // Writes

    /// A write of `n` sectors (`n >= 1`, any size) of device `dev` at device
    /// sector `sector`. The ticket of [`WriteStep::Go`] takes the first
    /// `sectors` of them: as many consecutive blocks as go to consecutive
    /// lines of the open segment (new lines, or lines of the open segment
    /// already holding the blocks); the caller copies them in one piece and
    /// asks again for the rest.
    ///
    /// A device whose write-back is failing gets [`WriteStep::Fail`] when
    /// there is no room in the log, and once its dirty lines fill half the
    /// cache (so a dead disk can never take the whole cache from the other
    /// devices).
    ///
    /// `direct` says whether the write may go straight to the cache device
    /// (see [`Direct`]); the ticket's `direct` says whether it does. A
    /// ticket's lines are all direct or all in RAM.
    pub fn begin_write(&mut self, dev: u8, sector: u64, n: u32, slot_busy: &dyn Fn(u32) -> bool, direct: Direct) -> WriteStep {
        let off = (sector % SECTORS_PER_BLOCK) as u32;
        let first = n.min(8u32.saturating_sub(off));
        let direct = if self.seg_version >= super::format::SEGMENT_VERSION_V4 { direct } else { Direct::No };
        match self.begin_write_block(dev, sector, first, slot_busy, direct) {
            WriteStep::Go(mut t) => {
                self.extend_write(dev, sector, n, &mut t);
                if t.direct {
                    let slot = self.bufs.get(t.buf).map_or(0, |x| x.slot);
                    let start = self.geo.segment_start_sector(slot).unwrap_or(0);
                    t.cache_sector = start.saturating_add((t.byte_off / 512) as u64);
                }
                WriteStep::Go(t)
            }
            other => other,
        }
    }

    /// Extends ticket `t` (of the first block of a write of `n` sectors at
    /// `sector`) over the following blocks while each goes to the line after
    /// the previous one in the same buffer.
    fn extend_write(&mut self, dev: u8, sector: u64, n: u32, t: &mut WriteTicket) {
        let b = t.buf;
        while t.sectors < n && self.cur == Some(b) {
            let s = sector.saturating_add(u64::from(t.sectors));
            let m = n.saturating_sub(t.sectors).min(8);
            let key = Key::from_sector(dev, s);
            let k = t.k.saturating_add(t.nr_lines);
            let Some(buf) = self.bufs.get(b).copied() else { break };
            let d = self.dev(dev);
            if d.fail_errno != 0 && d.dirty.saturating_mul(2) >= u64::from(self.geo.nr_lines()) {
                break;
            }
            let head = self.index.lookup(key);
            let (hit, on_buffer) = match head {
                Some(h) if slot_k(h).0 == buf.slot => {
                    if slot_k(h).1 != k || self.line_pending(b, k) || self.line_direct(b, k) != t.direct {
                        break;
                    }
                    (true, true)
                }
                _ => {
                    if buf.nr_lines != k || self.reserve_line(b, key, true).is_none() {
                        break;
                    }
                    self.mark_direct(b, k, t.direct);
                    (head.is_some(), false)
                }
            };
            if !matches!(self.publish(dev, key, bits_of(0, m), 0, m, b, k, hit, on_buffer), WriteStep::Go(_)) {
                break;
            }
            t.nr_lines = t.nr_lines.saturating_add(1);
            t.sectors = t.sectors.saturating_add(m);
        }
    }

    /// Marks new line `k` of buffer `b` direct (or not).
    fn mark_direct(&mut self, b: usize, k: u32, direct: bool) {
        if let Some(l) = self.buf_line(b, k) {
            l.direct = direct;
        }
    }

    /// A write of `n` sectors (`1..=8 - sector % 8`) within one block.
    fn begin_write_block(&mut self, dev: u8, sector: u64, n: u32, slot_busy: &dyn Fn(u32) -> bool, direct: Direct) -> WriteStep {
        let off = (sector % SECTORS_PER_BLOCK) as u32;
        let bits = bits_of(off, n);
        let key = Key::from_sector(dev, sector);
        if bits == 0 || dev == 0 || dev > MAX_DEVICE_ID {
            return WriteStep::Fail;
        }
        loop {
            if self.error.is_some() {
                return WriteStep::Fail;
            }
            let d = self.dev(dev);
            if !d.attached {
                return WriteStep::NotAttached;
            }
            let failing = d.fail_errno != 0;
            if failing && d.dirty.saturating_mul(2) >= u64::from(self.geo.nr_lines()) {
                return WriteStep::Fail;
            }
            let head = self.index.lookup(key);
            if let (Some(h), Some(c)) = (head, self.cur) {
                if self.bufs.get(c).is_some_and(|x| x.slot == slot_k(h).0) {
                    let k = slot_k(h).1;
                    if self.line_pending(c, k) {
                        return WriteStep::Wait(Wait::Pending);
                    }
                    let is_direct = self.line_direct(c, k);
                    if !(is_direct && direct == Direct::No) {
                        return Self::with_direct(self.publish(dev, key, bits, off, n, c, k, true, true), is_direct);
                    }
                    // A FUA write is never direct: this line's segment is
                    // sealed, the write goes to a line of the next one.
                    self.seal();
                    continue;
                }
            }
            if let Some(c) = self.cur {
                if let Some(k) = self.reserve_line(c, key, true) {
                    let d = direct == Direct::Want;
                    self.mark_direct(c, k, d);
                    return Self::with_direct(self.publish(dev, key, bits, off, n, c, k, head.is_some(), false), d);
                }
                self.seal();
            }
            let reserve = self.reserve();
            match self.open_segment(slot_busy, reserve) {
                Ok(()) => {}
                Err(Wait::Space) if failing => return WriteStep::Fail,
                Err(w) => return WriteStep::Wait(w),
            }
        }
    }

    fn with_direct(step: WriteStep, direct: bool) -> WriteStep {
        match step {
            WriteStep::Go(t) => WriteStep::Go(WriteTicket { direct, ..t }),
            other => other,
        }
    }

    /// Moves the dirty sectors of `line` (a line of the segment of a
    /// [`MigratorJob::Relocate`] job) to the head of the log: the same as a
    /// write of those sectors with the line's data, allowed into the
    /// reserved slots and for a detached device. Once the open segment is
    /// full, the lines go to a segment of the relocation's own, which
    /// writers do not see (they wait for room meanwhile) and which later
    /// relocation jobs go on filling, so that a relocation always finishes
    /// in the slot writers leave free and parked lines are packed into
    /// whole segments. Returns the ticket (its
    /// `byte_off` is sector 0 of the new line) and the sectors to copy
    /// (bit `j` = sector `j` of the block), `None` when nothing of the line
    /// is dirty any more.
    pub fn begin_relocate(&mut self, line: u64, slot_busy: &dyn Fn(u32) -> bool) -> Result<Option<(WriteTicket, u8)>, Wait> {
        let bits = self.index.dirty(line).unwrap_or(0);
        let Ok(Some(key)) = self.index.key_of(line) else { return Ok(None) };
        if bits == 0 || self.error.is_some() {
            return Ok(None);
        }
        let dev = key.device_id;
        loop {
            // A newer copy of the block in an open buffer takes the sectors.
            if let Some(h) = self.index.lookup(key).filter(|&h| h != line) {
                let (hs, hk) = slot_k(h);
                for c in [self.reloc_buf, self.cur].into_iter().flatten() {
                    if !self.bufs.get(c).is_some_and(|x| x.slot == hs) {
                        continue;
                    }
                    if self.line_pending(c, hk) {
                        return Err(Wait::Sleep(1));
                    }
                    if !self.line_direct(c, hk) {
                        return Ok(self.publish_relocated(dev, key, bits, c, hk));
                    }
                }
                if self.cur.is_some_and(|c| self.bufs.get(c).is_some_and(|x| x.slot == hs)) {
                    // A relocation copies into RAM: not into a direct line.
                    self.seal();
                    continue;
                }
            }
            if let Some(r) = self.reloc_buf {
                if let Some(k) = self.reserve_line(r, key, false) {
                    return Ok(self.publish_relocated(dev, key, bits, r, k));
                }
                self.close_reloc();
            } else if let Some(c) = self.cur {
                if let Some(k) = self.reserve_line(c, key, false) {
                    return Ok(self.publish_relocated(dev, key, bits, c, k));
                }
                self.seal();
            }
            // The segment of its own, in the slot writers leave free: no
            // writer can take its lines (they would starve the relocation,
            // and a log whose last slot holds half a relocation is stuck).
            // Writers that waited for room still wait: their urgency stays,
            // so the relocation goes on (packing its segment) until they
            // have a slot. (Cleared here, the next job sealed the segment
            // with one source segment's lines in it: a log whose parked
            // lines were spread thin stayed so, moved round it for ever
            // while the writers got no room.)
            let urgent = self.urgent;
            self.open_segment(slot_busy, 0)?;
            self.urgent = urgent;
            self.reloc_buf = self.cur.take();
        }
    }

    fn publish_relocated(&mut self, dev: u8, key: Key, bits: u8, b: usize, k: u32) -> Option<(WriteTicket, u8)> {
        match self.publish(dev, key, bits, 0, 0, b, k, false, false) {
            WriteStep::Go(t) => {
                self.nr_relocated = self.nr_relocated.saturating_add(1);
                Some((t, bits))
            }
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn publish(&mut self, dev: u8, key: Key, bits: u8, off: u32, n: u32, b: usize, k: u32, hit: bool, on_buffer: bool) -> WriteStep {
        let Some(buf) = self.bufs.get(b).copied() else { return WriteStep::Fail };
        let line = line_no(buf.slot, k);
        // Older lines losing sectors to this write: their segments depend
        // on this one (see the module docs).
        let chain = self.index.chain(key);
        for &l in chain.as_slice() {
            if l != line && self.index.dirty(l).unwrap_or(0) & bits != 0 {
                self.set_dep(l, buf.seg_id);
            }
        }
        self.cancel_block(dev, key.block);
        match self.index.write(line, key, bits) {
            Ok(o) => self.account(dev, o.dirty_delta()),
            Err(_) => {
                self.error = Some(-5);
                return WriteStep::Fail;
            }
        }
        if let Some(l) = self.buf_line(b, k).filter(|l| l.clean) {
            // A clean line of this buffer written in place: dirty, all 8
            // sectors (as the index has it).
            l.clean = false;
            l.bits = 0xff;
        }
        self.touch_dev(dev, buf.seg_id);
        if let Some(d) = self.devs.get_mut(dev as usize) {
            d.writes = d.writes.wrapping_add(1);
        }
        let idx = 1 | ((hit as usize) << 1) | ((on_buffer as usize) << 2) | (((n == 8) as usize) << 3);
        // A relocation (`n == 0`) is not a user's write.
        if let Some(s) = self.stats.get_mut(idx).filter(|_| n > 0) {
            *s = s.saturating_add(1);
        }
        if let Some(l) = self.buf_line(b, k) {
            l.bits |= bits;
            l.pending = l.pending.saturating_add(1);
        }
        if let Some(x) = self.bufs.get_mut(b) {
            x.writers = x.writers.saturating_add(1);
        }
        WriteStep::Go(WriteTicket { buf: b, k, nr_lines: 1, byte_off: line_offset(k, off), sectors: n, direct: false, cache_sector: 0 })
    }

    /// The copy of `t` finished (`ok` = it worked). `barrier`: the bio is
    /// FUA or PREFLUSH.
    pub fn end_write(&mut self, t: WriteTicket, ok: bool, barrier: bool, now_ms: u64, deadline_ms: u64) -> WriteDone {
        if !ok {
            self.error = Some(-5);
            self.mark_lost(t);
        }
        let is_cur = self.cur == Some(t.buf);
        if is_cur {
            self.last_write_ms = Some(now_ms);
        }
        for j in 0..t.nr_lines {
            if let Some(l) = self.buf_line(t.buf, t.k.saturating_add(j)) {
                l.pending = l.pending.saturating_sub(1);
            }
        }
        let Some(x) = self.bufs.get_mut(t.buf) else {
            return WriteDone { hold: false, wake_flusher: false };
        };
        x.writers = x.writers.saturating_sub(t.nr_lines);
        let mut wake = x.writers == 0 && x.sealed;
        let hold = barrier && ok;
        if hold {
            x.barriers = true;
            if is_cur && self.barrier_deadline.is_none() {
                self.barrier_deadline = Some(now_ms.saturating_add(deadline_ms));
            }
            wake = true;
        }
        WriteDone { hold, wake_flusher: wake }
    }

    /// A failed direct write `t`: marks its sectors lost in its lines.
    fn mark_lost(&mut self, t: WriteTicket) {
        let first = line_offset(t.k, 0);
        let Some(rel) = t.byte_off.checked_sub(first) else { return };
        let start = (rel / 512) as u64;
        let end = start.saturating_add(u64::from(t.sectors));
        for j in 0..t.nr_lines {
            let lo = u64::from(j).saturating_mul(SECTORS_PER_BLOCK);
            let a = start.max(lo);
            let b = end.min(lo.saturating_add(SECTORS_PER_BLOCK));
            if a >= b {
                continue;
            }
            let bits = bits_of((a - lo) as u32, (b - a) as u32);
            if let Some(l) = self.buf_line(t.buf, t.k.saturating_add(j)).filter(|l| l.direct) {
                l.lost |= bits;
            }
        }
    }

    /// Lost sectors of line `k` of buffer `b` (see [`BufLine::lost`]).
    fn line_lost(&self, b: usize, k: u32) -> u8 {
        self.buf_lines.get(b.saturating_mul(LINES as usize).saturating_add(k as usize)).map_or(0, |l| l.lost)
    }

    // -------------------------------------------------------------------
    // Reads

    /// A read of `n` sectors (`n >= 1`, any size) of `dev` at `sector`. The
    /// answer's `run` covers the longest prefix that has one source: the
    /// backing device (uncached sectors; a device without dirty lines gets
    /// the whole read at once), or consecutive lines of one segment (in a
    /// RAM buffer or on the cache device). A read is thus split only where
    /// what is cached begins or ends, and at most [`MAX_READ_BLOCKS`]
    /// blocks are looked up per call.
    pub fn begin_read(&mut self, dev: u8, sector: u64, n: u32) -> ReadStep {
        let n = n.max(1);
        if self.dev(dev).dirty == 0 && self.index.nr_clean() == 0 {
            if let Some(s) = self.stats.get_mut(((n >= 8) as usize) << 3) {
                *s = s.saturating_add(1);
            }
            return ReadStep::Backing { run: n };
        }
        let (step, line) = self.begin_read_block(dev, sector, n);
        let off = (sector % SECTORS_PER_BLOCK) as u32;
        let first = n.min(8u32.saturating_sub(off));
        let whole = off.saturating_add(first) == 8;
        match step {
            ReadStep::Backing { run } if run == first => {
                ReadStep::Backing { run: run.saturating_add(self.extend_read(dev, sector, n, first, None)) }
            }
            ReadStep::Buffer { buf, byte_off, run } if run == first && whole => {
                ReadStep::Buffer { buf, byte_off, run: run.saturating_add(self.extend_read(dev, sector, n, first, line)) }
            }
            ReadStep::Cache { slot, sector: cs, run } if run == first && whole => {
                ReadStep::Cache { slot, sector: cs, run: run.saturating_add(self.extend_read(dev, sector, n, first, line)) }
            }
            other => other,
        }
    }

    /// Sectors after the first `done` of a read of `n` at `sector` that come
    /// from the same source as the first: the backing device (`prev` None)
    /// or the lines after `prev` in its segment, whole blocks only except
    /// for the last.
    fn extend_read(&mut self, dev: u8, sector: u64, n: u32, mut done: u32, mut prev: Option<u64>) -> u32 {
        let start = done;
        let mut blocks = 1u32;
        while done < n && blocks < MAX_READ_BLOCKS {
            let s = sector.saturating_add(u64::from(done));
            let m = n.saturating_sub(done).min(8);
            let (owner, run) = self.index.read_run(Key::from_sector(dev, s), 0, m as u8);
            let run = u32::from(run);
            match (prev, owner) {
                (None, None) => {}
                (Some(p), Some(o)) if o == p.saturating_add(1) && slot_k(o).0 == slot_k(p).0 => {
                    let (slot, k) = slot_k(o);
                    // A run in RAM or on the cache device: direct lines of a
                    // buffer are on the device.
                    if self.buf_of_slot(slot).is_some_and(|b| self.buf_line(b, k).map_or(0, |l| l.pending) > 0 || self.line_lost(b, k) != 0 || self.line_direct(b, k) != self.line_direct(b, slot_k(p).1)) {
                        break;
                    }
                    prev = Some(o);
                }
                _ => break,
            }
            done = done.saturating_add(run);
            blocks = blocks.saturating_add(1);
            if run < m || run < 8 {
                break;
            }
        }
        done.saturating_sub(start)
    }

    /// A read of `n` sectors (`1..=8 - sector % 8`) of `dev` at `sector`,
    /// and the line it reads from (None: the backing device).
    fn begin_read_block(&mut self, dev: u8, sector: u64, n: u32) -> (ReadStep, Option<u64>) {
        let off = (sector % SECTORS_PER_BLOCK) as u32;
        let key = Key::from_sector(dev, sector);
        let n = n.clamp(1, 8u32.saturating_sub(off).max(1));
        let full = ((n == 8) as usize) << 3;
        let (owner, run) = self.index.read_run(key, off as u8, n as u8);
        let run = u32::from(run).clamp(1, n);
        let Some(line) = owner else {
            if let Some(s) = self.stats.get_mut(full) {
                *s = s.saturating_add(1);
            }
            return (ReadStep::Backing { run }, None);
        };
        let (slot, k) = slot_k(line);
        let mut run = run;
        if let Some(b) = self.buf_of_slot(slot) {
            if self.buf_line(b, k).map_or(0, |l| l.pending) > 0 {
                return (ReadStep::WaitPending, None);
            }
            let lost = self.line_lost(b, k);
            if lost != 0 {
                // The run of sectors from `off` that are all lost, or all
                // not lost.
                let is_lost = |j: u32| lost & (1u8 << (j & 7)) != 0;
                let first = is_lost(off);
                let same = (0..run).take_while(|&i| is_lost(off.saturating_add(i)) == first).count() as u32;
                if first {
                    return (ReadStep::Fail { run: same.max(1) }, None);
                }
                run = same.max(1);
            }
        }
        if let Some(b) = self.buf_of_slot(slot).filter(|&b| !self.line_direct(b, k)) {
            if let Some(s) = self.stats.get_mut(2 | 4 | full) {
                *s = s.saturating_add(1);
            }
            if let Some(x) = self.bufs.get_mut(b) {
                x.readers = x.readers.saturating_add(1);
            }
            return (ReadStep::Buffer { buf: b, byte_off: line_offset(k, off), run }, Some(line));
        }
        if let Some(s) = self.stats.get_mut(2 | full) {
            *s = s.saturating_add(1);
        }
        let sector = self.geo.line_sector(slot, k).unwrap_or(0).saturating_add(u64::from(off));
        (ReadStep::Cache { slot, sector, run }, Some(line))
    }

    /// The copy out of buffer `b` finished.
    pub fn end_buffer_read(&mut self, b: usize) {
        if let Some(x) = self.bufs.get_mut(b) {
            x.readers = x.readers.saturating_sub(1);
        }
    }

    // -------------------------------------------------------------------
    // Flush and discard

    /// An empty flush bio.
    pub fn begin_flush(&mut self, now_ms: u64, deadline_ms: u64) -> FlushStep {
        if self.error.is_some() {
            return FlushStep::Fail;
        }
        let open = self.open_has_data();
        let need = if open { self.last_id } else { self.sealed_upto };
        if need <= self.durable_upto {
            return FlushStep::Done;
        }
        if need <= self.last_flushed {
            return FlushStep::FlushOnly;
        }
        match self.bufs.iter().position(|x| x.seg_id == need) {
            // Being written without PREFLUSH: a flush queued behind it
            // covers it.
            Some(b) if self.bufs.get(b).is_some_and(|x| x.writing) => FlushStep::FlushOnly,
            Some(b) => {
                if let Some(x) = self.bufs.get_mut(b) {
                    x.barriers = true;
                }
                if open && self.barrier_deadline.is_none() {
                    self.barrier_deadline = Some(now_ms.saturating_add(deadline_ms));
                }
                FlushStep::Held(b)
            }
            None => FlushStep::FlushOnly,
        }
    }

    /// A discard of `n` sectors of `dev` at `sector`, done at once (no work
    /// limit): [`discard_step`](Self::discard_step) on a fresh
    /// [`DiscardRange`]. After [`DiscardStep::Wait`] the caller asks again
    /// for the whole range (the chunks already dropped cost nothing then).
    pub fn discard(&mut self, dev: u8, sector: u64, n: u32, slot_busy: &dyn Fn(u32) -> bool) -> DiscardStep {
        let mut d = DiscardRange::new(dev, sector, u64::from(n));
        self.discard_step(&mut d, u32::MAX, slot_busy)
    }

    /// Goes on with discard `d`: drops the cached data of its range, logging
    /// the drops of data held by older segments, chunk by chunk
    /// (`MAX_DISCARD_SECTORS`-aligned chunks, each done whole under one
    /// call: a logged entry never covers more than what was dropped at that
    /// moment from older segments). Chunks holding nothing of the device
    /// are skipped without being looked at one block at a time: when the
    /// range has more blocks than the live log has lines, the live log's
    /// lines are walked instead, so a discard costs O(min(range blocks,
    /// live lines)) whatever the size of the range, and nothing at all
    /// when the device has no dirty line. `budget` bounds the work of one
    /// call (index look-ups, about); [`DiscardStep::Again`] asks the caller
    /// to call again (after dropping its lock for a moment).
    pub fn discard_step(&mut self, d: &mut DiscardRange, budget: u32, slot_busy: &dyn Fn(u32) -> bool) -> DiscardStep {
        let dev = d.dev;
        if dev == 0 || dev > MAX_DEVICE_ID {
            return DiscardStep::Pass;
        }
        let chunk = u64::from(MAX_DISCARD_SECTORS);
        let mut left = u64::from(budget.max(1));
        loop {
            if d.walk == DiscardWalk::New {
                self.cancel_staging(dev, d.start, d.end.saturating_sub(d.start));
            }
            if (self.dev(dev).dirty == 0 && self.index.nr_clean() == 0) || d.start >= d.end {
                return DiscardStep::Pass;
            }
            let cost;
            match d.walk {
                DiscardWalk::New => {
                    if let Some(h) = self.discard_hint {
                        if h.dev == dev && h.writes == self.dev(dev).writes && h.from <= d.start && d.end <= h.next {
                            return DiscardStep::Pass;
                        }
                    }
                    let blocks = (d.end.saturating_sub(1) / SECTORS_PER_BLOCK)
                        .saturating_sub(d.start / SECTORS_PER_BLOCK)
                        .saturating_add(1);
                    let live = self.last_id.saturating_sub(self.last_migrated).saturating_mul(u64::from(LINES));
                    d.walk = if blocks <= live {
                        DiscardWalk::Blocks { next: d.start }
                    } else {
                        DiscardWalk::Lines {
                            id: self.last_migrated.saturating_add(1),
                            k: 0,
                            last: self.last_id,
                            above: u64::MAX,
                            writes: self.dev(dev).writes,
                        }
                    };
                    cost = 1;
                }
                DiscardWalk::Blocks { next } => {
                    if next >= d.end {
                        return DiscardStep::Pass;
                    }
                    let ce = d.end.min((next / chunk).saturating_add(1).saturating_mul(chunk));
                    if let Err(step) = self.discard_chunk(dev, next, ce, slot_busy) {
                        return step;
                    }
                    d.walk = DiscardWalk::Blocks { next: ce };
                    cost = (ce.saturating_sub(next) / SECTORS_PER_BLOCK).saturating_add(1);
                }
                DiscardWalk::Lines { id, k, last, mut above, writes } => {
                    // Segments written back since hold no dirty line (and
                    // their slots may hold newer segments by now).
                    let (id, k) = if id <= self.last_migrated { (self.last_migrated.saturating_add(1), 0) } else { (id, k) };
                    if id > last {
                        // Every dirty line of the device was seen.
                        if self.dev(dev).writes == writes {
                            self.discard_hint = Some(DiscardHint { dev, from: d.end, next: above, writes });
                        }
                        return DiscardStep::Pass;
                    }
                    let Ok(slot) = self.geo.slot_of_id(id) else { return DiscardStep::Pass };
                    let line = line_no(slot, k);
                    let mut c = 1;
                    if let Ok(Some(key)) = self.index.cached_key_of(line) {
                        let first = key.block.saturating_mul(SECTORS_PER_BLOCK);
                        if key.device_id == dev && first.saturating_add(SECTORS_PER_BLOCK) > d.end {
                            above = above.min(first.max(d.end));
                        }
                        if key.device_id == dev && first < d.end && first.saturating_add(SECTORS_PER_BLOCK) > d.start {
                            // The whole chunk of this block (within the range).
                            let s = first.max(d.start);
                            let cs = s.saturating_sub(s % chunk).max(d.start);
                            let ce = d.end.min((s / chunk).saturating_add(1).saturating_mul(chunk));
                            if let Err(step) = self.discard_chunk(dev, cs, ce, slot_busy) {
                                d.walk = DiscardWalk::Lines { id, k, last, above, writes };
                                return step;
                            }
                            c = (ce.saturating_sub(cs) / SECTORS_PER_BLOCK).saturating_add(1);
                        }
                    }
                    let (id, k) = if k.saturating_add(1) >= LINES { (id.saturating_add(1), 0) } else { (id, k.saturating_add(1)) };
                    d.walk = DiscardWalk::Lines { id, k, last, above, writes };
                    cost = c;
                }
            }
            left = left.saturating_sub(cost);
            if left == 0 {
                return DiscardStep::Again;
            }
        }
    }

    /// Drops the cached data of `dev` in `sector..end` (at most
    /// `MAX_DISCARD_SECTORS` sectors, within one aligned chunk), logging it
    /// in the open segment when it removes data of older segments. Either
    /// does all of it or, with `Err`, nothing.
    fn discard_chunk(&mut self, dev: u8, sector: u64, end: u64, slot_busy: &dyn Fn(u32) -> bool) -> Result<(), DiscardStep> {
        let n = end.saturating_sub(sector).clamp(1, u64::from(MAX_DISCARD_SECTORS)) as u32;
        let end = sector.saturating_add(u64::from(n));
        // Anything cached at all?
        let mut any = false;
        let mut b = sector / SECTORS_PER_BLOCK;
        while b.saturating_mul(SECTORS_PER_BLOCK) < end {
            if self.index.lookup(Key::new(dev, b)).is_some() {
                any = true;
                break;
            }
            b = b.saturating_add(1);
        }
        if !any {
            return Ok(());
        }
        // A discard entry must fit in the open segment.
        loop {
            if self.error.is_some() {
                return Err(DiscardStep::Fail);
            }
            if let Some(c) = self.cur {
                if self.bufs.get(c).is_some_and(|x| (x.nr_discards as usize) < MAX_DISCARDS) {
                    break;
                }
                self.seal();
            }
            if let Err(w) = self.open_segment(slot_busy, self.reserve()) {
                return Err(DiscardStep::Wait(w));
            }
        }
        let Some(c) = self.cur else { return Err(DiscardStep::Fail) };
        let Some(cb) = self.bufs.get(c).copied() else { return Err(DiscardStep::Fail) };
        let mut logged = false;
        for (s, bits) in block_pieces(sector, end) {
            let key = Key::from_sector(dev, s);
            let chain = self.index.chain(key);
            for &l in chain.as_slice() {
                let clean = self.index.is_clean(l).unwrap_or(false);
                if !clean && self.index.dirty(l).unwrap_or(0) & bits == 0 {
                    continue;
                }
                if slot_k(l).0 == cb.slot {
                    // A line of the open segment: its header entry loses
                    // the sectors directly (a clean line all of them).
                    if let Some(bl) = self.buf_line(c, slot_k(l).1) {
                        if clean {
                            bl.bits = 0;
                            bl.clean = false;
                        } else {
                            bl.bits &= !bits;
                        }
                    }
                } else {
                    self.set_dep(l, cb.seg_id);
                    logged = true;
                }
            }
            match self.index.discard(key, bits) {
                Ok(o) => self.account(dev, o.dirty_delta()),
                Err(_) => {
                    self.error = Some(-5);
                    return Err(DiscardStep::Fail);
                }
            }
        }
        if logged {
            if let Some(x) = self.bufs.get_mut(c) {
                let i = c.saturating_mul(MAX_DISCARDS).saturating_add(x.nr_discards as usize);
                x.nr_discards = x.nr_discards.saturating_add(1);
                if let Some(d) = self.discards.get_mut(i) {
                    *d = Discard { sector, nr_sectors: n, device_id: dev };
                }
            }
            self.touch_dev(dev, cb.seg_id);
        }
        Ok(())
    }

    // -------------------------------------------------------------------
    // Write-around

    /// Whether a write-around write of `dev` would need no log entry now
    /// (nothing of the device in the log a replay would read, read caching
    /// off, neither the cache nor the device failing): then
    /// [`Engine::write_around`] answers `Pass { logged: None }`. No side
    /// effect.
    pub fn around_unlogged(&self, dev: u8) -> bool {
        self.error.is_none() && self.dev(dev).fail_errno == 0 && self.index.nr_clean() == 0 && self.around_needs_no_entry(dev)
    }

    /// Nothing of `dev` in the log a replay would read, and read caching
    /// off (see [`Engine::write_around`]).
    fn around_needs_no_entry(&self, dev: u8) -> bool {
        dev == 0 || dev > MAX_DEVICE_ID || (self.dev(dev).last_seg <= self.record_migrated && self.rc_threshold == 0)
    }

    /// A write-around write of `n` sectors (`n >= 1`) of `dev` at `sector`:
    /// the data goes to the backing device, and the cached copies of those
    /// sectors (lines of any segment, RAM buffers included) leave the
    /// index. One piece at a time, within one `MAX_DISCARD_SECTORS`-aligned
    /// chunk.
    ///
    /// Durability: the index holds only what write-back still has to do;
    /// the log may hold older copies of the device's blocks past the
    /// durable record (written back since, or not yet), and a replay after
    /// a crash would bring them back over the new data on the backing
    /// device. So when the device has lines in any segment past the record
    /// (`last_seg > record_migrated`), the drop is logged in the open
    /// segment like a discard that dropped data (merged with the previous
    /// entry when adjacent): replay drops the same. Such a write is done in
    /// two steps: this call reserves the entry (`logged: Some(ticket)`),
    /// the caller writes the data durably (`REQ_PREFLUSH | REQ_FUA`), then
    /// [`Engine::end_around`] drops the copies and fills the entry if the
    /// write succeeded, or leaves the cache as it was if it failed. The
    /// segment is not written in between, so a drop is never durable
    /// before the data that replaces the copies; migration rounds skip the
    /// range meanwhile, so no older copy is written back over it. A device
    /// with nothing past the record logs nothing (`logged: None`: a plain
    /// remap; a later FLUSH must reach the backing device).
    ///
    /// Order against write-back: a copy in a segment of the migration round
    /// in flight may be on its way to the backing device; the write waits
    /// until that round ends.
    pub fn write_around(&mut self, dev: u8, sector: u64, n: u32, slot_busy: &dyn Fn(u32) -> bool) -> AroundStep {
        let chunk = u64::from(MAX_DISCARD_SECTORS);
        let room = chunk.saturating_sub(sector % chunk);
        let n = u64::from(n.max(1)).min(room) as u32;
        let end = sector.saturating_add(u64::from(n));
        if self.error.is_some() {
            return AroundStep::Fail;
        }
        self.cancel_staging(dev, sector, u64::from(n));
        if self.dev(dev).fail_errno != 0 {
            return AroundStep::Cache;
        }
        // A block with a clean line (read caching) is written through the
        // cache: the log's newer copy supersedes the clean one in RAM and in
        // replay. Around it, a drop not yet durable at a crash would let a
        // replayed clean line (the old data) shadow the new data on the
        // backing device until it is evicted, a change without a write.
        if self.index.nr_clean() > 0 {
            let mut b = sector / SECTORS_PER_BLOCK;
            while b.saturating_mul(SECTORS_PER_BLOCK) < end {
                let head = self.index.chain(Key::new(dev, b)).as_slice().first().copied();
                if head.is_some_and(|l| self.index.is_clean(l).unwrap_or(false)) {
                    return AroundStep::Cache;
                }
                b = b.saturating_add(1);
            }
        }
        // With read caching on, every write-around write takes the logged
        // path, even with nothing to replay: its end (`end_around`, once the
        // data is durable) drops what a read staged meanwhile, whose backing
        // read may predate the data. A plain remap has no end to do it at.
        if self.around_needs_no_entry(dev) {
            // Nothing of the device in the log a replay would read (and so
            // nothing in the index either).
            self.count_around(sector, end);
            return AroundStep::Pass { sectors: n, logged: None };
        }
        // A copy on its way to the backing device? The round's entries were
        // taken when it started: a line dropped from the index since (by a
        // discard) may still be written back, so the index cannot tell.
        // Wait for any round in flight (no round starts while this write
        // is in flight, see `migrator_next`).
        if self.round.is_some() {
            return AroundStep::Wait(Wait::Sleep(1));
        }
        if self.around_count as usize >= MAX_AROUND {
            return AroundStep::Wait(Wait::Sleep(1));
        }
        // The entry is reserved in the open segment.
        loop {
            if self.error.is_some() {
                return AroundStep::Fail;
            }
            if let Some(c) = self.cur {
                if self.bufs.get(c).is_some_and(|x| (x.nr_discards as usize).saturating_add(x.around as usize) < MAX_DISCARDS) {
                    break;
                }
                self.seal();
            }
            if let Err(w) = self.open_segment(slot_busy, self.reserve()) {
                return AroundStep::Wait(w);
            }
        }
        let Some(c) = self.cur else { return AroundStep::Fail };
        if let Some(x) = self.bufs.get_mut(c) {
            x.around = x.around.saturating_add(1);
        }
        self.around_count = self.around_count.saturating_add(1);
        self.count_around(sector, end);
        AroundStep::Pass { sectors: n, logged: Some(AroundTicket { sector, n: n as u16, dev, buf: c as u8 }) }
    }

    /// Status counters of a write-around piece: a write miss per 4 KiB
    /// block (full when the piece covers the whole block).
    fn count_around(&mut self, sector: u64, end: u64) {
        let mut b = sector / SECTORS_PER_BLOCK;
        while b.saturating_mul(SECTORS_PER_BLOCK) < end {
            let (bs, be) = (b.saturating_mul(SECTORS_PER_BLOCK), b.saturating_add(1).saturating_mul(SECTORS_PER_BLOCK));
            let full = sector <= bs && be <= end;
            if let Some(x) = self.stats.get_mut(1 | ((full as usize) << 3)) {
                *x = x.saturating_add(1);
            }
            b = b.saturating_add(1);
        }
    }

    /// The data of write-around ticket `t` was written durably (`ok`) or
    /// not: with `ok` the cached copies of its sectors in its segment and
    /// older ones leave the index and the drop is logged; without, nothing
    /// changes (the cache keeps serving the old copies). The segment may
    /// be written once no ticket of it is left.
    pub fn end_around(&mut self, t: AroundTicket, ok: bool) {
        let r = t;
        self.around_count = self.around_count.saturating_sub(1);
        let c = usize::from(r.buf);
        if let Some(x) = self.bufs.get_mut(c) {
            x.around = x.around.saturating_sub(1);
        }
        if !ok {
            return;
        }
        let Some(cb) = self.bufs.get(c).copied() else { return };
        let (dev, sector, end) = (r.dev, r.sector, r.sector.saturating_add(u64::from(r.n)));
        // A read staged or injected while the data was on its way may hold
        // the data from before it: cancel the stagings, drop clean lines
        // of the range (in any segment: a clean line is a block's only
        // line, and the segments after this one are not written before it).
        self.cancel_staging(dev, sector, end.saturating_sub(sector));
        let mut b = sector / SECTORS_PER_BLOCK;
        while b.saturating_mul(SECTORS_PER_BLOCK) < end {
            let key = Key::new(dev, b);
            let head = self.index.chain(key).as_slice().first().copied();
            if let Some(l) = head.filter(|&l| self.index.is_clean(l).unwrap_or(false)) {
                let (slot, k) = slot_k(l);
                if let Some(bl) = self.buf_of_slot(slot).and_then(|x| self.buf_line(x, k)) {
                    bl.bits = 0;
                    bl.clean = false;
                }
                if self.index.discard(key, 0xff).is_err() {
                    self.error = Some(-5);
                    return;
                }
            }
            b = b.saturating_add(1);
        }
        for (s, bits) in block_pieces(sector, end) {
            let key = Key::from_sector(dev, s);
            let chain = self.index.chain(key);
            for &l in chain.as_slice() {
                if self.index.dirty(l).unwrap_or(0) & bits == 0 {
                    continue;
                }
                let slot = slot_k(l).0;
                if slot == cb.slot {
                    if let Some(bl) = self.buf_line(c, slot_k(l).1) {
                        bl.bits &= !bits;
                    }
                } else if self.newer_than(slot, cb.seg_id) {
                    // A write into a later segment meanwhile: it stays (the
                    // entry drops only what is older, as replay does).
                    continue;
                } else {
                    self.set_dep(l, cb.seg_id);
                }
                match self.index.clean(l, bits) {
                    Ok(o) => self.account(dev, o.dirty_delta()),
                    Err(_) => {
                        self.error = Some(-5);
                        return;
                    }
                }
            }
        }
        let base = c.saturating_mul(MAX_DISCARDS);
        match self.merge_target(c, dev, sector, end) {
            Some(j) => {
                if let Some(d) = self.discards.get_mut(base.saturating_add(j)) {
                    let lo = d.sector.min(sector);
                    let hi = d.sector.saturating_add(u64::from(d.nr_sectors)).max(end);
                    *d = Discard { sector: lo, nr_sectors: hi.saturating_sub(lo) as u32, device_id: dev };
                }
            }
            None => {
                if let Some(x) = self.bufs.get_mut(c) {
                    let j = base.saturating_add(x.nr_discards as usize);
                    x.nr_discards = x.nr_discards.saturating_add(1);
                    if let Some(d) = self.discards.get_mut(j) {
                        *d = Discard { sector, nr_sectors: end.saturating_sub(sector) as u32, device_id: dev };
                    }
                }
            }
        }
        self.touch_dev(dev, cb.seg_id);
    }

    /// Whether the segment in `slot` is newer than segment `id`.
    fn newer_than(&self, slot: u32, id: u64) -> bool {
        let mut x = id.saturating_add(1);
        while x <= self.last_id {
            if self.geo.slot_of_id(x).is_ok_and(|s| s == slot) {
                return true;
            }
            x = x.saturating_add(1);
        }
        false
    }

    /// The index of buffer `c`'s last drop entry when `sector..end` of
    /// `dev` can be merged into it (same device, touching or overlapping,
    /// the union within `MAX_DISCARD_SECTORS`).
    fn merge_target(&self, c: usize, dev: u8, sector: u64, end: u64) -> Option<usize> {
        let x = self.bufs.get(c)?;
        let i = (x.nr_discards as usize).checked_sub(1)?;
        let d = self.discards.get(c.saturating_mul(MAX_DISCARDS).saturating_add(i))?;
        let de = d.sector.saturating_add(u64::from(d.nr_sectors));
        if d.device_id != dev || sector > de || d.sector > end {
            return None;
        }
        let lo = d.sector.min(sector);
        let hi = de.max(end);
        (hi.saturating_sub(lo) <= u64::from(MAX_DISCARD_SECTORS)).then_some(i)
    }

    // -------------------------------------------------------------------
    // Flusher

    /// Sets the log horizon the flusher keeps (the superblock's
    /// `log_horizon`; 0 keeps [`LOG_HORIZON`](super::format::LOG_HORIZON)).
    pub fn set_log_horizon(&mut self, h: u32) {
        if h != 0 {
            self.log_horizon = u64::from(h);
        }
    }

    /// The log horizon the flusher keeps: every segment header it writes has
    /// `durable_upto + log_horizon >= id`.
    pub fn log_horizon(&self) -> u64 {
        self.log_horizon
    }

    /// The flusher's next job. `has_flush_only`: flush-only bios are queued.
    ///
    /// A segment more than the log horizon past `durable_upto` is written
    /// with `REQ_PREFLUSH | REQ_FUA` (one cache-device flush per
    /// `log_horizon` segments at most), so that every header says that the
    /// segments up to `id - log_horizon` were durable: after a crash no valid
    /// segment lies more than the horizon past the end of the log unless it
    /// proves a loss, and resume reads only that far.
    pub fn flusher_next(&mut self, now_ms: u64, has_flush_only: bool) -> FlusherJob {
        if self.error.is_some() {
            return FlusherJob::FailHeld;
        }
        if let Some(d) = self.barrier_deadline {
            if now_ms >= d {
                self.seal();
            }
        }
        let next = self.last_flushed.saturating_add(1);
        if next <= self.sealed_upto {
            match self.bufs.iter().position(|x| x.seg_id == next) {
                // The relocation's own segment is written once sealed.
                Some(b) if self.reloc_buf == Some(b) => {}
                Some(b) => {
                    if let Some(x) = self.bufs.get_mut(b) {
                        if x.writers == 0 && x.around == 0 {
                            let durable = x.barriers
                                || has_flush_only
                                || next > self.durable_upto.saturating_add(self.log_horizon);
                            x.barriers = false;
                            x.writing = true;
                            return FlusherJob::Segment { buf: b, id: next, slot: x.slot, nr_lines: x.nr_lines, durable };
                        }
                    }
                }
                None => {
                    self.error = Some(-5);
                    return FlusherJob::FailHeld;
                }
            }
        }
        if has_flush_only {
            return FlusherJob::FlushOnly { upto: self.last_flushed };
        }
        let ms = match self.barrier_deadline {
            Some(d) => d.saturating_sub(now_ms).clamp(1, 1000),
            None => 1000,
        };
        // The next segment waits for write-around writes to end: look again soon.
        let around = next <= self.sealed_upto && self.bufs.iter().any(|x| x.seg_id == next && x.around > 0);
        FlusherJob::Idle(if around { 1 } else { ms })
    }

    /// Fills `hdr` for segment job `id` in buffer `b`.
    pub fn fill_header(&self, b: usize, id: u64, durable: bool, hdr: &mut SegmentHeader) {
        hdr.reset(self.format_id, id);
        hdr.version = self.seg_version;
        hdr.durable_upto = if durable { id.saturating_sub(1) } else { self.durable_upto };
        let Some(x) = self.bufs.get(b) else { return };
        let base = b.saturating_mul(LINES as usize);
        for l in self.buf_lines.get(base..base.saturating_add(x.nr_lines as usize)).unwrap_or(&[]) {
            // A direct line keeps its flag with no sectors left: its place
            // holds no RAM data for the flusher to write.
            let flags = if l.clean {
                super::format::METABLOCK_CLEAN
            } else if l.direct {
                super::format::METABLOCK_DIRECT
            } else {
                0
            };
            let mb = if l.bits == 0 { Metablock { flags: flags & super::format::METABLOCK_DIRECT, ..Metablock::EMPTY } } else { Metablock { sector: l.sector, device_id: l.dev, dirty_bits: l.bits, flags } };
            let _ = hdr.push(mb);
        }
        let base = b.saturating_mul(MAX_DISCARDS);
        for d in self.discards.get(base..base.saturating_add(x.nr_discards as usize)).unwrap_or(&[]) {
            let _ = hdr.push_discard(*d);
        }
    }

    /// Segment `id` (slot `slot`, `nr_lines` lines) was written (`ok`) or
    /// failed for good. `durable`: the write carried PREFLUSH|FUA.
    pub fn segment_done(&mut self, id: u64, slot: u32, nr_lines: u32, durable: bool, ok: bool, errno: i32) {
        if let Some(x) = self.bufs.iter_mut().find(|x| x.seg_id == id) {
            x.writing = false;
        }
        if !ok {
            self.error = Some(errno);
            return;
        }
        self.last_flushed = id;
        if durable {
            self.durable_upto = id;
        }
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.nr_lines = nr_lines.min(LINES) as u8;
        }
    }

    /// A cache-device flush issued when `last_flushed` was `upto` completed.
    pub fn flush_done(&mut self, upto: u64, ok: bool) {
        if ok && upto > self.durable_upto && upto <= self.last_flushed {
            self.durable_upto = upto;
        }
    }

    // -------------------------------------------------------------------
    // Migration and the record

    /// How far the record may go: the highest id `R <= last_migrated` such
    /// that every segment up to `R` only depends on written segments, and
    /// the first blocking dependency.
    pub fn record_target(&self) -> (u64, Option<u64>) {
        let mut r = self.record_migrated;
        while r < self.last_migrated {
            let id = r.saturating_add(1);
            let dep = match self.geo.slot_of_id(id) {
                Ok(slot) => self.slots.get(slot as usize).map_or(0, |s| s.dep),
                Err(_) => return (r, None),
            };
            if dep > self.last_flushed {
                return (r, Some(dep));
            }
            r = id;
        }
        (r, None)
    }

    /// The migrator's next job. `allowed`: `allow_migrate` or
    /// `force_migrate`; `batch`: segments per round; `now_ms`: the clock
    /// the retries of failing devices follow.
    pub fn migrator_next(&mut self, allowed: bool, batch: u32, now_ms: u64) -> MigratorJob {
        let job = self.next_job(allowed, batch, now_ms);
        // The relocation's own segment stays open only for the next
        // relocation job (see `begin_relocate`), or a record between two
        // (closing it there would leave a partial segment behind every
        // full one, and those circle the log for ever).
        if !matches!(job, MigratorJob::Relocate { .. } | MigratorJob::Record) && self.close_reloc() {
            if let MigratorJob::Idle { ms, .. } = job {
                return MigratorJob::Idle { ms, wake_flusher: true };
            }
        }
        job
    }

    fn next_job(&mut self, allowed: bool, batch: u32, now_ms: u64) -> MigratorJob {
        if self.stopping {
            return MigratorJob::Exit;
        }
        self.mig_now = now_ms;
        // Writers wait for room, or a detach waits for the record.
        let forced = self.urgent || self.record_wanted > self.record_migrated;
        if self.round.is_none() && (allowed || forced) {
            self.advance_migrated(batch);
        }
        let (target, blocker) = self.record_target();
        if target > self.record_migrated || self.registry_version != self.record_version {
            return MigratorJob::Record;
        }
        let mut wake_flusher = false;
        if let Some(dep) = blocker {
            // The segment the record waits for must be written: seal it if
            // it is still open.
            if self.cur.is_some() && dep >= self.last_id {
                wake_flusher = self.seal();
            } else {
                wake_flusher = true;
            }
        }
        let mut ms = if blocker.is_some() { 10 } else { 1000 };
        if self.around_count > 0 {
            // Write-around writes with a reserved drop are in flight: a
            // round could write an older copy back after them.
            ms = 1;
        }
        if self.round.is_none() && self.around_count == 0 && (allowed || forced) && self.last_migrated < self.last_flushed {
            let start = self.last_migrated.saturating_add(1);
            let (healthy, parked) = self.seg_dirty(start);
            if healthy > 0 || parked == 0 {
                let end = self.last_flushed.min(self.last_migrated.saturating_add(u64::from(batch.max(1))));
                self.round_parked = self.parked_mask();
                self.round = Some((start, end));
                return MigratorJob::Round { start, end };
            }
            // Only lines of failing devices. Move them to the head of the
            // log only to make room: for a detach (the record must pass
            // them) or for waiting writers, for whom it makes room only if
            // the log is not full of them (else moving them frees nothing:
            // no churn; see `parked_leaves_room`). Once per lap at most.
            let detach = self.record_wanted > self.record_migrated;
            // For writers only while they have no slot: the relocation's
            // own segment, open across consecutive jobs, keeps writers from
            // opening one, so relocating on while a slot is free starves
            // them (breakM: 25,000 lines a second after a power cut, the
            // writer stalled until EIO).
            let for_writers = self.urgent && !self.slot_free(self.reserve()) && self.parked_leaves_room();
            let want = detach || for_writers;
            if want && self.reloc_room() {
                self.round_parked = self.parked_mask();
                self.round = Some((start, start));
                return MigratorJob::Relocate { id: start };
            }
            if want {
                // A relocation waits for the record to free a slot.
                ms = ms.min(10);
                wake_flusher = true;
            }
            // The other devices' lines behind them are written back where
            // they are. (Moving the parked lines out of their way, as
            // before, put the moved lines behind the next line written:
            // all of them were moved round the log for every line a
            // healthy device wrote, 20 to 60 per line in breakN.)
            let from = self.written_back_upto(start).saturating_add(1);
            if from <= self.last_flushed && self.healthy_dirty() > 0 {
                let end = self.last_flushed.min(from.saturating_add(u64::from(batch.max(1)) - 1));
                self.round_parked = self.parked_mask();
                self.round = Some((from, end));
                return MigratorJob::Round { start: from, end };
            }
            let due = self.devs.iter().filter(|d| d.fail_errno != 0 && d.dirty > 0).map(|d| d.retry_at).min();
            if let Some(due) = due {
                ms = ms.min(due.saturating_sub(now_ms).max(10));
            }
        }
        MigratorJob::Idle { ms, wake_flusher }
    }

    /// Whether `dev`'s dirty lines are parked now: its write-back failed and
    /// the next attempt is not due.
    fn parked(&self, dev: u8) -> bool {
        let d = self.dev(dev);
        d.fail_errno != 0 && self.mig_now < d.retry_at
    }

    /// The devices parked now (`parked`), a bit per device id.
    fn parked_mask(&self) -> u128 {
        (0..self.devs.len().min(REGISTRY_ENTRIES)).filter(|&i| self.parked(i as u8)).fold(0, |m, i| m | 1u128 << i)
    }

    /// The last segment id up to which every flushed segment from the tail
    /// `start` (`last_migrated + 1`) on has had the lines of the devices
    /// not parked now written back (`wb_past`), or `start - 1`.
    fn written_back_upto(&self, start: u64) -> u64 {
        let (upto, skipped) = self.wb_past;
        if upto >= start && skipped & !self.parked_mask() == 0 {
            upto.min(self.last_flushed)
        } else {
            start.saturating_sub(1)
        }
    }

    /// A round of `start..=end` wrote back its entries: extends `wb_past`
    /// when the round joins it (or starts at the tail `tail`). The lines
    /// it skipped: those of the devices parked when it started, and of
    /// those that failed in it (parked now).
    fn note_written_back(&mut self, tail: u64, start: u64, end: u64) {
        let parked = self.parked_mask();
        let skipped = self.round_parked | parked;
        let (upto, old) = self.wb_past;
        if upto >= tail && old & !parked == 0 && start <= upto.saturating_add(1) {
            self.wb_past = (upto.max(end), old | skipped);
        } else if start <= tail {
            self.wb_past = (end, skipped);
        }
    }

    /// Dirty lines of devices whose write-back may run now: it works, or
    /// it failed and its retry is due (a retry must reach the device's
    /// lines even when they lie behind another device's parked ones).
    fn healthy_dirty(&self) -> u64 {
        self.dirty_parked(false)
    }

    /// Dirty lines of the devices whose lines are parked now (`parked`),
    /// or of the others.
    fn dirty_parked(&self, parked: bool) -> u64 {
        (0..self.devs.len())
            .filter(|&i| self.parked(i as u8) == parked)
            .map(|i| self.devs.get(i).map_or(0, |d| d.dirty))
            .fold(0, u64::saturating_add)
    }

    /// Whether moving parked lines can give waiting writers a segment:
    /// packed, the parked lines fill `ceil(parked / LINES)` segments, a
    /// relocation in progress holds one more (the segment it empties and
    /// its own), and writers need one besides the slot they leave free.
    /// A log (nearly) full of parked lines fails that: moving them would
    /// free nothing for writers, only churn for ever (breakL: 28 MiB of
    /// parked lines in a 31-segment cache were moved round the log at 20,000
    /// lines/s while the writers waited), so writers get EIO after 30 s.
    fn parked_leaves_room(&self) -> bool {
        let parked = self.dirty_parked(true);
        let lines = u64::from(LINES);
        let segs = parked.saturating_add(lines - 1) / lines;
        segs.saturating_add(self.reserve()).saturating_add(3) <= u64::from(self.geo.nr_segments())
    }

    /// Dirty lines of segment `id`: (of devices not parked, parked).
    fn seg_dirty(&self, id: u64) -> (u32, u32) {
        let Ok(slot) = self.geo.slot_of_id(id) else { return (0, 0) };
        let (mut healthy, mut parked) = (0u32, 0u32);
        for k in 0..self.slot_lines(slot) {
            let line = line_no(slot, k);
            if self.index.dirty(line).unwrap_or(0) == 0 {
                continue;
            }
            let Ok(Some(key)) = self.index.key_of(line) else { continue };
            if self.parked(key.device_id) {
                parked = parked.saturating_add(1);
            } else {
                healthy = healthy.saturating_add(1);
            }
        }
        (healthy, parked)
    }

    /// Moves `last_migrated` past written segments left without dirty
    /// lines (after a round that wrote back only some devices, or a
    /// relocation), looking at `batch` segments at most.
    fn advance_migrated(&mut self, batch: u32) {
        for _ in 0..batch.max(1) {
            if self.last_migrated >= self.last_flushed || self.seg_dirty(self.last_migrated.saturating_add(1)) != (0, 0) {
                return;
            }
            self.last_migrated = self.last_migrated.saturating_add(1);
        }
    }

    /// `force_migrate` (or a detach waiting for write-back): everything must
    /// reach the backing devices, the open RAM buffer included. Seals the
    /// open segment once everything before it is written back (so no
    /// partial segment is sealed needlessly); returns whether it did.
    pub fn drain(&mut self) -> bool {
        // Written back as far as it goes: all of it, or all but lines that
        // are parked (a failing device's lines never hold the others up:
        // rounds go on past them).
        let tail = self.last_migrated.saturating_add(1);
        let done = self.last_migrated >= self.last_flushed || (self.seg_dirty(tail).0 == 0 && (self.written_back_upto(tail) >= self.last_flushed || self.healthy_dirty() == 0));
        if done && self.last_flushed >= self.sealed_upto && self.open_has_data() {
            self.seal()
        } else {
            false
        }
    }

    /// The dirty lines of round `start..=end`, in log order: those of
    /// devices not parked (for a round), or with `parked` only those of
    /// parked devices (for a relocation).
    pub fn round_entries(&self, start: u64, end: u64, parked: bool, mut f: impl FnMut(MigEntry)) {
        for (i, id) in (0..u32::MAX).zip(start..=end) {
            let Ok(slot) = self.geo.slot_of_id(id) else { continue };
            for k in 0..self.slot_lines(slot) {
                let line = line_no(slot, k);
                let bits = self.index.dirty(line).unwrap_or(0);
                if bits == 0 {
                    continue;
                }
                let Ok(Some(key)) = self.index.key_of(line) else { continue };
                if self.parked(key.device_id) != parked {
                    continue;
                }
                f(MigEntry { line, seg: i, k, dev: key.device_id, sector: key.block.saturating_mul(SECTORS_PER_BLOCK), bits });
            }
        }
    }

    /// Round `start..=end` ended. With `Ok`, the lines of `entries` of every
    /// device for which `failed(dev)` is `None` were written back and their
    /// backing devices flushed; a device with `Some(errno)` is failing from
    /// now on (its lines stay dirty, parked until the next retry). `Err`:
    /// nothing was written back (the cache device could not be read).
    pub fn round_done(&mut self, start: u64, end: u64, entries: &[MigEntry], result: Result<(), i32>, failed: &dyn Fn(u8) -> Option<i32>) {
        if result.is_ok() {
            self.round_clean(entries, failed);
        }
        self.round_finish(start, end, entries, result, failed);
    }

    /// The first part of [`Engine::round_done`] for a piece of a round's
    /// entries: marks those of devices for which `failed(dev)` is `None`
    /// clean. A caller may clean a round in pieces (dropping its lock in
    /// between, so that no lock hold covers thousands of lines), then call
    /// [`Engine::round_finish`] once with all the entries; the round stays
    /// in flight until then.
    pub fn round_clean(&mut self, entries: &[MigEntry], failed: &dyn Fn(u8) -> Option<i32>) {
        for e in entries {
            if failed(e.dev).is_none() {
                if let Ok(o) = self.index.clean(e.line, e.bits) {
                    self.account(e.dev, o.dirty_delta());
                }
            }
        }
    }

    /// The rest of [`Engine::round_done`] after every entry went through
    /// [`Engine::round_clean`] (when `result` is `Ok`): the devices' health
    /// and `last_migrated`. O(entries) without index work.
    pub fn round_finish(&mut self, start: u64, end: u64, entries: &[MigEntry], result: Result<(), i32>, failed: &dyn Fn(u8) -> Option<i32>) {
        self.round = None;
        if let Err(e) = result {
            self.migrate_error = Some(e);
            return;
        }
        let mut seen = [false; REGISTRY_ENTRIES];
        let mut any = None;
        for e in entries {
            let err = failed(e.dev);
            match seen.get_mut(e.dev as usize) {
                Some(s) if !*s => *s = true,
                _ => continue,
            }
            match err {
                Some(errno) => {
                    self.set_failing(e.dev, errno, self.mig_now);
                    any = Some(self.dev(e.dev).fail_errno);
                }
                None => {
                    if let Some(d) = self.devs.get_mut(e.dev as usize) {
                        d.fail_errno = 0;
                        d.nr_failures = 0;
                        d.retry_at = 0;
                    }
                }
            }
        }
        // Lines written back: a replay brings them back until the record
        // passes their segments (`replayable`).
        for e in entries {
            if failed(e.dev).is_none() {
                if let Some(d) = self.devs.get_mut(e.dev as usize) {
                    d.cleaned_seg = d.cleaned_seg.max(start.saturating_add(u64::from(e.seg)));
                }
            }
        }
        self.note_written_back(self.last_migrated.saturating_add(1), start, end);
        self.advance_migrated(end.saturating_sub(start).saturating_add(1).min(u64::from(u32::MAX)) as u32);
        self.migrate_error = any;
    }

    /// The relocation job ended (every line moved, or some left where they
    /// are because the log had no room).
    pub fn relocate_done(&mut self) {
        self.round = None;
        if self.reloc_buf.and_then(|b| self.bufs.get(b)).is_some_and(|x| x.nr_lines >= LINES) {
            self.close_reloc();
        }
        self.advance_migrated(1);
    }

    /// The cache device failed (the engine is in error): the lines whose
    /// newest copy is in a RAM buffer, for writing them straight to the
    /// backing devices. `MigEntry::seg` is the buffer, `k` the line in it
    /// (its data is at [`line_offset`]`(k, 0)` in the buffer). Call it once
    /// no writer copies into a buffer any more.
    pub fn salvage_entries(&self, mut f: impl FnMut(MigEntry)) {
        for (b, buf) in (0u32..).zip(self.bufs.iter()) {
            if buf.seg_id == 0 {
                continue;
            }
            for k in 0..buf.nr_lines.min(LINES) {
                let line = line_no(buf.slot, k);
                let bits = self.index.dirty(line).unwrap_or(0);
                // A direct line's data is not in RAM (it is on the failed
                // cache device).
                if bits == 0 || self.line_direct(b as usize, k) {
                    continue;
                }
                let Ok(Some(key)) = self.index.key_of(line) else { continue };
                f(MigEntry { line, seg: b, k, dev: key.device_id, sector: key.block.saturating_mul(SECTORS_PER_BLOCK), bits });
            }
        }
    }

    /// The lines of `entries` of every device for which `failed(dev)` is
    /// `None` were written to their backing devices (and those flushed).
    pub fn salvage_done(&mut self, entries: &[MigEntry], failed: &dyn Fn(u8) -> Option<i32>) {
        for e in entries {
            if failed(e.dev).is_none() {
                if let Ok(o) = self.index.clean(e.line, e.bits) {
                    self.account(e.dev, o.dirty_delta());
                }
            }
        }
    }

    /// A drain request (`drop_caches`): if `dev`'s write-back is failing,
    /// its next attempt is due now instead of after the back-off (the disk
    /// may be back). Returns its count of failed attempts so far, so that
    /// the caller can tell a new failure from the one before the request.
    pub fn retry_now(&mut self, dev: u8) -> u64 {
        match self.devs.get_mut(dev as usize) {
            Some(d) => {
                if d.fail_errno != 0 {
                    d.retry_at = 0;
                }
                d.writeback_errors
            }
            None => 0,
        }
    }

    /// Marks `dev`'s write-back as failing (as a failed round would), for
    /// callers that find its backing device gone.
    pub fn set_failing(&mut self, dev: u8, errno: i32, now_ms: u64) {
        if let Some(d) = self.devs.get_mut(dev as usize) {
            d.fail_errno = if errno == 0 { -5 } else { errno };
            d.nr_failures = d.nr_failures.saturating_add(1);
            d.writeback_errors = d.writeback_errors.saturating_add(1);
            let shift = d.nr_failures.saturating_sub(1).min(16);
            d.retry_at = now_ms.saturating_add(RETRY_FIRST_MS.saturating_mul(1 << shift).min(RETRY_MAX_MS));
        }
    }

    /// What the next record says (its write must carry `REQ_PREFLUSH |
    /// REQ_FUA`).
    pub fn record_snapshot(&self) -> RecordSnap {
        RecordSnap {
            generation: self.generation.saturating_add(1),
            last_migrated: self.record_target().0,
            version: self.registry_version,
            flushed: self.last_flushed,
        }
    }

    /// The record `snap` was written (`ok`) or not.
    pub fn record_done(&mut self, snap: RecordSnap, ok: bool) {
        if !ok {
            return;
        }
        self.generation = snap.generation;
        if snap.last_migrated > self.record_migrated {
            self.record_migrated = snap.last_migrated;
        }
        if snap.version > self.record_version {
            self.record_version = snap.version;
        }
        self.flush_done(snap.flushed, true);
    }

    /// The record generation last written.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    // -------------------------------------------------------------------
    // Devices

    /// Registers `dev` with `sectors` for the next record; returns whether
    /// the registry changed (the caller then writes the record).
    pub fn register(&mut self, dev: u8, sectors: u64) -> Result<bool, EngineError> {
        if dev == 0 || dev > MAX_DEVICE_ID {
            return Err(EngineError::BadDevice(dev));
        }
        let d = self.devs.get_mut(dev as usize).ok_or(EngineError::BadDevice(dev))?;
        if d.registered == sectors {
            return Ok(false);
        }
        d.registered = sectors;
        self.registry_version = self.registry_version.saturating_add(1);
        Ok(true)
    }

    /// Records the identity of `dev`'s backing disk (written with the
    /// registry). Returns whether it changed (the record must be written).
    pub fn set_identity(&mut self, dev: u8, identity: u64) -> Result<bool, EngineError> {
        if dev == 0 || dev > MAX_DEVICE_ID {
            return Err(EngineError::BadDevice(dev));
        }
        let d = self.devs.get_mut(dev as usize).ok_or(EngineError::BadDevice(dev))?;
        if d.identity == identity {
            return Ok(false);
        }
        d.identity = identity;
        self.registry_version = self.registry_version.saturating_add(1);
        Ok(true)
    }

    /// The identity of `dev`'s backing disk as the next record will say.
    pub fn identity(&self, dev: u8) -> u64 {
        self.dev(dev).identity
    }

    /// Accepts (or stops accepting, without any check) writes of `dev`.
    pub fn set_attached(&mut self, dev: u8, attached: bool) {
        if let Some(d) = self.devs.get_mut(dev as usize) {
            d.attached = attached;
        }
        if !attached {
            // Its writes go to the backing device now: no clean copy may
            // outlive them, and nothing staged may be injected.
            self.drop_clean_of(dev);
            self.cancel_staging(dev, 0, u64::MAX);
        }
    }

    /// Drops every clean line of `dev` from the index (O(lines), only when
    /// clean lines exist).
    fn drop_clean_of(&mut self, dev: u8) {
        self.drop_clean_where(|d| d == dev);
    }

    /// Drops every clean line from the index and returns how many there
    /// were (O(lines), only when clean lines exist).
    /// `recovery::resume_engine` calls it after the replay: a clean line of the log, a copy of what the disk held
    /// when it was read, may no longer be. A device created after a
    /// `writeboost-mgr` resume may write pass-through before it attaches;
    /// and a write-around write over a block whose clean line had been
    /// superseded in RAM puts newer data on the disk while the drop it logs
    /// may not be durable at a crash. Dirty lines are kept; a clean line
    /// replayed over older copies was made dirty by the replay (see
    /// `Documentation/design.md`, rule 6).
    ///
    /// After a replay the clean lines are in the replayed segments
    /// (`record_migrated + 1 ..= last_id`): only their lines are looked at,
    /// so a cache with a short log is done in proportion to the log; the
    /// whole index only if some are left elsewhere.
    pub fn drop_clean_lines(&mut self) -> u64 {
        let n = self.index.nr_clean();
        let nr = u64::from(self.geo.nr_segments());
        let first = self.record_migrated.saturating_add(1).max(self.last_id.saturating_sub(nr.saturating_sub(1)));
        for id in first..=self.last_id {
            if self.index.nr_clean() == 0 {
                break;
            }
            let Ok(slot) = self.geo.slot_of_id(id) else { continue };
            for k in 0..LINES {
                self.drop_clean_line(line_no(slot, k), &|_| true);
            }
        }
        self.drop_clean_where(|_| true);
        n
    }

    fn drop_clean_where(&mut self, of: impl Fn(u8) -> bool) {
        if self.index.nr_clean() == 0 {
            return;
        }
        for line in 0..self.index.nr_lines() {
            self.drop_clean_line(line, &of);
        }
    }

    /// Drops `line` from the index if it is a clean line of a device `of`
    /// accepts.
    fn drop_clean_line(&mut self, line: u64, of: &dyn Fn(u8) -> bool) {
        if !self.index.is_clean(line).unwrap_or(false) {
            return;
        }
        if let Ok(Some(key)) = self.index.cached_key_of(line) {
            if of(key.device_id) {
                let _ = self.index.discard(key, 0xff);
                let (slot, k) = slot_k(line);
                if let Some(b) = self.buf_of_slot(slot) {
                    if let Some(bl) = self.buf_line(b, k) {
                        bl.bits = 0;
                        bl.clean = false;
                    }
                }
            }
        }
    }

    // -------------------------------------------------------------------
    // Read caching

    /// Sets the version of the segment headers this engine writes: the
    /// caller passes [`Superblock::segment_version`](super::format::Superblock::segment_version)
    /// (the one place that decides it). Version 3 allows clean lines.
    pub fn set_segment_version(&mut self, v: u32) {
        self.seg_version = v;
    }

    /// The segment header version written.
    pub fn segment_version(&self) -> u32 {
        self.seg_version
    }

    /// Sets read caching: `threshold` (`read_cache_threshold`, 0 = off;
    /// a run of more than `threshold` consecutive staged blocks is a
    /// sequential read and is not cached) and `cells` (most blocks staged
    /// at once, `1..=2048`; capped by the storage given). Turning it on is
    /// refused on a cache whose segments cannot mark clean lines (a
    /// superblock older than version 4). Turning it off cancels the blocks
    /// being staged; clean lines already in the log stay (they are correct).
    pub fn set_read_cache(&mut self, threshold: u32, cells: u32) -> Result<(), ReadCacheError> {
        if threshold > MAX_READ_CACHE_THRESHOLD || cells == 0 || cells > MAX_READ_CACHE_CELLS {
            return Err(ReadCacheError::OutOfRange);
        }
        if threshold > 0 && self.seg_version < super::format::SEGMENT_VERSION_V3 {
            return Err(ReadCacheError::OldFormat);
        }
        self.rc_threshold = threshold;
        self.rc_cells = cells;
        if threshold == 0 {
            for c in self.cells.iter_mut().filter(|c| c.state == CELL_STAGING) {
                c.state = CELL_CANCELLED;
            }
        }
        Ok(())
    }

    /// `(read_cache_threshold, nr_read_cache_cells)`.
    pub fn read_cache(&self) -> (u32, u32) {
        (self.rc_threshold, self.rc_cells)
    }

    /// Clean lines in the index, lines injected since start, staged blocks
    /// dropped since start (status).
    pub fn read_cache_stats(&self) -> (u64, u64, u64) {
        (self.index.nr_clean(), self.nr_injected, self.nr_stage_dropped)
    }

    /// A read of `n` sectors at `sector` of `dev` missed (the backing device
    /// has the newest data of all of it). If it is one full aligned 4 KiB
    /// block, read caching is on, nothing of the block is cached or staged,
    /// a cell is free and the read does not make a sequential run longer
    /// than the threshold, the block is staged: the caller reads it from the
    /// backing device (it may use the read's own data, read after this call)
    /// and then calls [`stage_inject`](Self::stage_inject), or
    /// [`stage_abort`](Self::stage_abort) if the read failed. A write or
    /// discard of the block in between cancels it.
    ///
    /// Data read before this call must not be staged: a write-back of the
    /// block may have been in flight then.
    pub fn stage_begin(&mut self, dev: u8, sector: u64, n: u32) -> Option<StageTicket> {
        if self.rc_threshold == 0 || n != 8 || sector % SECTORS_PER_BLOCK != 0 || self.error.is_some() {
            return None;
        }
        let d = self.dev(dev);
        if !d.attached || d.fail_errno != 0 || dev == 0 || dev > MAX_DEVICE_ID {
            return None;
        }
        let block = sector / SECTORS_PER_BLOCK;
        if block >= super::index::BLOCK_LIMIT {
            return None;
        }
        // Sequential detection.
        let (sd, next, len) = self.seq;
        let len = if sd == dev && next == block { len.saturating_add(1) } else { 1 };
        self.seq = (dev, block.saturating_add(1), len);
        if len > self.rc_threshold {
            if len == self.rc_threshold.saturating_add(1) {
                // The run's first blocks are not cached either (those not
                // injected yet).
                let from = block.saturating_sub(u64::from(self.rc_threshold)).saturating_mul(SECTORS_PER_BLOCK);
                self.cancel_staging(dev, from, u64::from(self.rc_threshold).saturating_mul(SECTORS_PER_BLOCK));
            }
            return None;
        }
        if self.index.lookup(Key::new(dev, block)).is_some() {
            return None;
        }
        let limit = (self.rc_cells as usize).min(self.cells.len());
        if self.cells_busy as usize >= limit {
            return None;
        }
        let hwm = self.cells_hwm as usize;
        let mut free = None;
        for (i, c) in self.cells.iter().enumerate().take(limit.max(hwm)) {
            if c.state == CELL_FREE {
                if free.is_none() && i < limit {
                    free = Some(i);
                }
            } else if c.dev == dev && c.block == block {
                return None;
            }
        }
        let i = free?;
        let c = self.cells.get_mut(i)?;
        *c = StageCell { block, dev, state: CELL_STAGING };
        self.cells_busy = self.cells_busy.saturating_add(1);
        self.cells_hwm = self.cells_hwm.max(i as u32 + 1);
        Some(StageTicket { cell: i as u32, dev, block })
    }

    fn free_cell(&mut self, t: StageTicket) -> bool {
        let Some(c) = self.cells.get_mut(t.cell as usize) else { return false };
        if c.state == CELL_FREE || c.dev != t.dev || c.block != t.block {
            return false;
        }
        let live = c.state == CELL_STAGING;
        *c = StageCell::default();
        self.cells_busy = self.cells_busy.saturating_sub(1);
        while self.cells_hwm > 0 && self.cells.get(self.cells_hwm as usize - 1).is_some_and(|c| c.state == CELL_FREE) {
            self.cells_hwm -= 1;
        }
        live
    }

    /// The staging read of `t` failed (or the caller gives up): frees the
    /// cell.
    pub fn stage_abort(&mut self, t: StageTicket) {
        self.free_cell(t);
        self.nr_stage_dropped = self.nr_stage_dropped.saturating_add(1);
    }

    /// The staging read of `t` completed with the block's data: injects it
    /// as a clean line of the open segment unless it was cancelled or the
    /// block got cached meanwhile. Never waits: with no room in the log it
    /// answers [`InjectStep::Dropped`]. `slot_busy` as for writes.
    pub fn stage_inject(&mut self, t: StageTicket, slot_busy: &dyn Fn(u32) -> bool) -> InjectStep {
        let live = self.free_cell(t);
        let key = Key::new(t.dev, t.block);
        let d = self.dev(t.dev);
        if !live || self.rc_threshold == 0 || self.error.is_some() || !d.attached || d.fail_errno != 0 || self.index.lookup(key).is_some() {
            self.nr_stage_dropped = self.nr_stage_dropped.saturating_add(1);
            return InjectStep::Dropped;
        }
        let mut tries = 0;
        let (c, k) = loop {
            if let Some(c) = self.cur {
                if let Some(k) = self.reserve_line(c, key, false) {
                    break (c, k);
                }
                self.seal();
            }
            tries += 1;
            let reserve = self.reserve();
            if tries > 2 || self.open_segment(slot_busy, reserve).is_err() {
                self.nr_stage_dropped = self.nr_stage_dropped.saturating_add(1);
                return InjectStep::Dropped;
            }
        };
        let Some(buf) = self.bufs.get(c).copied() else { return InjectStep::Dropped };
        match self.index.write_clean(line_no(buf.slot, k), key) {
            Ok(o) if !o.became_dirty => {}
            _ => {
                self.error = Some(-5);
                return InjectStep::Dropped;
            }
        }
        self.touch_dev(t.dev, buf.seg_id);
        if let Some(l) = self.buf_line(c, k) {
            l.bits = 0xff;
            l.clean = true;
            l.pending = l.pending.saturating_add(1);
        }
        if let Some(x) = self.bufs.get_mut(c) {
            x.writers = x.writers.saturating_add(1);
        }
        self.nr_injected = self.nr_injected.saturating_add(1);
        InjectStep::Go(WriteTicket { buf: c, k, nr_lines: 1, byte_off: line_offset(k, 0), sectors: 8, direct: false, cache_sector: 0 })
    }

    /// The read filling the clean line of injection ticket `w` (block
    /// `block` of `dev`) failed: drops the line (call before
    /// [`end_write`](Self::end_write) of `w`, which must still follow).
    /// For callers that inject first and read into the line (the kernel
    /// does both of [`stage_begin`](Self::stage_begin) and
    /// [`stage_inject`](Self::stage_inject) in one lock hold, then reads
    /// the block into the reserved line while its copy is pending).
    pub fn stage_failed(&mut self, w: WriteTicket, dev: u8, block: u64) {
        let Some(buf) = self.bufs.get(w.buf).copied() else { return };
        let line = line_no(buf.slot, w.k);
        if self.index.is_clean(line).unwrap_or(false) {
            let _ = self.index.discard(Key::new(dev, block), 0xff);
        }
        if let Some(bl) = self.buf_line(w.buf, w.k).filter(|l| l.clean) {
            bl.bits = 0;
            bl.clean = false;
        }
        self.nr_injected = self.nr_injected.saturating_sub(1);
        self.nr_stage_dropped = self.nr_stage_dropped.saturating_add(1);
    }

    /// Cancels the staging of every block of `dev` overlapping sectors
    /// `sector..sector + n`. Every path that writes or discards data of a
    /// device without going through [`begin_write`](Self::begin_write) or
    /// [`discard_step`](Self::discard_step) (which call it) must call it
    /// first (for example write-around). O(cells in use), nothing when no
    /// block is being staged.
    pub fn cancel_staging(&mut self, dev: u8, sector: u64, n: u64) {
        if self.cells_busy == 0 || n == 0 {
            return;
        }
        let first = sector / SECTORS_PER_BLOCK;
        let last = sector.saturating_add(n - 1) / SECTORS_PER_BLOCK;
        let hwm = self.cells_hwm as usize;
        for c in self.cells.iter_mut().take(hwm) {
            if c.state == CELL_STAGING && c.dev == dev && c.block >= first && c.block <= last {
                c.state = CELL_CANCELLED;
            }
        }
    }

    fn cancel_block(&mut self, dev: u8, block: u64) {
        if self.cells_busy != 0 {
            self.cancel_staging(dev, block.saturating_mul(SECTORS_PER_BLOCK), SECTORS_PER_BLOCK);
        }
    }

    /// Whether the log holds lines of `dev` that a replay would bring back
    /// as dirty: dirty lines, or lines written back that the record has not
    /// passed yet (clean lines of read caching and superseded or discarded
    /// lines do not come back dirty). No side effect (see
    /// [`Engine::replay_free`]).
    pub fn replayable(&self, dev: u8) -> bool {
        let d = self.dev(dev);
        d.dirty > 0 || d.cleaned_seg > self.record_migrated
    }

    /// Whether nothing of `dev` is left in the log that a replay would
    /// bring back: no dirty line, and the record past the device's last
    /// segment (lines written back past parked ones are clean in RAM but
    /// dirty again in a replay until the record passes them). With no dirty
    /// line but the record behind, asks for the record to pass (as a
    /// detach does: parked lines in front are moved for it) and returns
    /// `false`; ask again once a record was written. `true` with no dirty
    /// line once the cache device failed (no record can be written). For releasing the
    /// claim of a removed device's disk: until then, data written to the
    /// disk could be overwritten by the replayed older lines.
    pub fn replay_free(&mut self, dev: u8) -> bool {
        let d = self.dev(dev);
        if d.dirty > 0 {
            return false;
        }
        // A failed cache device writes no record any more: nothing to wait
        // for (what a failed cache keeps is in the design's Errors).
        if self.replayable(dev) && self.error.is_none() {
            self.record_wanted = self.record_wanted.max(d.cleaned_seg);
            return false;
        }
        true
    }

    /// Detaches `dev`. With `require_clean`, refuses while it has dirty
    /// lines; a clean device is unregistered.
    pub fn detach(&mut self, dev: u8, require_clean: bool) -> DetachStep {
        let d = self.dev(dev);
        if d.dirty > 0 && require_clean {
            return DetachStep::Dirty(d.dirty);
        }
        if d.dirty > 0 {
            self.set_attached(dev, false);
            return DetachStep::Done { commit: false };
        }
        if self.round.is_some() {
            return DetachStep::WaitRound;
        }
        // Lines of the device (clean now: written back, superseded or
        // discarded) must not come back in a replay once its writes go
        // straight to the backing device.
        if d.last_seg > self.record_migrated {
            self.record_wanted = self.record_wanted.max(d.last_seg);
            if d.last_seg > self.sealed_upto {
                self.seal();
            }
            return DetachStep::NeedRecord;
        }
        self.set_attached(dev, false);
        self.drop_clean_of(dev);
        let commit = d.registered != 0;
        if commit {
            if let Some(m) = self.devs.get_mut(dev as usize) {
                m.registered = 0;
            }
            self.registry_version = self.registry_version.saturating_add(1);
        }
        DetachStep::Done { commit }
    }

    /// The record after a detach of `dev` (registered with `sectors`) could
    /// not be written: the device stays attached and registered.
    pub fn undo_detach(&mut self, dev: u8, sectors: u64) {
        if let Some(m) = self.devs.get_mut(dev as usize) {
            m.registered = sectors;
            m.attached = true;
        }
        self.registry_version = self.registry_version.saturating_add(1);
    }

    /// Whether everything acknowledged is durable (for suspend and
    /// shutdown): nothing open, nothing sealed unwritten, all durable.
    pub fn all_durable(&self) -> bool {
        !self.open_has_data() && self.sealed_upto <= self.durable_upto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mig(dev: u8, seg: u32, k: u32, sector: u64, bits: u8) -> MigEntry {
        MigEntry { line: 0, seg, k, dev, sector, bits }
    }

    fn runs(entries: &[MigEntry]) -> std::vec::Vec<WriteBackRun> {
        let mut v = std::vec::Vec::new();
        let r: Result<(), ()> = writeback_runs(entries, |e| Ok((e.seg as usize, e.k as usize * 4096)), |r| {
            v.push(r);
            Ok(())
        });
        r.unwrap();
        v
    }

    /// Write-back merges dirty sectors that follow each other on the backing
    /// device and in memory, and nothing else: not across a clean sector,
    /// a memory gap, another region, another device or the 1 MiB limit.
    #[test]
    fn writeback_runs_merge_only_what_is_contiguous_twice() {
        let run = |dev, region, off, sector, sectors| WriteBackRun { dev, region, off, sector, sectors };
        // Two whole lines, consecutive on disk and in memory: one write.
        assert_eq!(runs(&[mig(1, 0, 0, 800, 0xff), mig(1, 0, 1, 808, 0xff)]), [run(1, 0, 0, 800, 16)]);
        // A clean sector in the middle of a line splits it.
        assert_eq!(runs(&[mig(1, 0, 0, 800, 0b1110_1111)]), [run(1, 0, 0, 800, 4), run(1, 0, 2560, 805, 3)]);
        // The line's tail and the next line's head join; a hole does not.
        assert_eq!(runs(&[mig(1, 0, 0, 800, 0x80), mig(1, 0, 1, 808, 0x01)]), [run(1, 0, 3584, 807, 2)]);
        assert_eq!(runs(&[mig(1, 0, 0, 800, 0x40), mig(1, 0, 1, 808, 0x01)]).len(), 2);
        // Consecutive on disk but not in memory, or in another region.
        assert_eq!(runs(&[mig(1, 0, 0, 800, 0xff), mig(1, 0, 5, 808, 0xff)]).len(), 2);
        assert_eq!(runs(&[mig(1, 0, 0, 800, 0xff), mig(1, 1, 1, 808, 0xff)]).len(), 2);
        // Another device never joins.
        assert_eq!(runs(&[mig(1, 0, 0, 800, 0xff), mig(2, 0, 1, 808, 0xff)]).len(), 2);
        // 300 consecutive whole lines: writes of 2048 sectors and the rest.
        let many: std::vec::Vec<MigEntry> = (0..300u32).map(|k| mig(3, 0, k, 8 * u64::from(k), 0xff)).collect();
        let r = runs(&many);
        assert_eq!(r.iter().map(|x| x.sectors).collect::<std::vec::Vec<_>>(), [2048, 352]);
        assert_eq!(r[1], run(3, 0, 2048 * 512, 2048, 352));
    }

    /// Line numbers of caches beyond 16 TiB (slots past 2^32 / 255) do not
    /// wrap: the engine's slot/line arithmetic agrees with the geometry.
    #[test]
    fn line_numbers_past_u32() {
        let g = Geometry::from_nr_segments(super::super::format::MAX_SEGMENTS).unwrap();
        for slot in [0u32, 1, 16_843_008, 16_843_009, 100_000_000, g.nr_segments() - 1] {
            for k in [0u32, 1, 254] {
                let line = line_no(slot, k);
                assert_eq!(Ok(line), g.line_index(slot, k));
                assert_eq!(slot_k(line), (slot, k));
            }
        }
        assert_eq!(line_no(16_843_009, 0), u64::from(u32::MAX));
        assert!(line_no(16_843_010, 0) > u64::from(u32::MAX));
    }
}
