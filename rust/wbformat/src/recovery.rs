// SPDX-License-Identifier: GPL-2.0

//! Recovery at resume: find the replayable log and rebuild the index from it.
//!
//! The record says every segment id `<= L` (`last_migrated_segment_id`) is
//! written back. The log to replay is `L+1, L+2, ...`, each id in its slot
//! `(id-1) % nr_segments`, and it ends at the first segment that is missing,
//! invalid, torn (bad CRC) or out of order, or after `nr_segments` segments.
//! Because a slot is overwritten only after the record on disk says the
//! segment previously in it is migrated, the log `L+1..=E` is always intact
//! after a crash; the only thing past `E` can be one torn segment.
//!
//! [`LogScan`] drives the walk (the caller does the I/O), [`replay_segment`]
//! applies one accepted segment to the [`Index`], [`DirtyCounts`] keeps the
//! per-device dirty-line counts and yields the owners that
//! [`check_registry`] compares with the record's registry. [`replay_log`] ties
//! them together for callers that can read synchronously.

use super::format::SegmentSum;
use super::format::{
    decode_segment_header_into, segment_header_names, verify_segment, DeviceSet, Geometry, GeometryError, Record,
    RegistryError, SegmentError, SegmentHeader, BLOCKS_PER_SEGMENT, BLOCK_SIZE, LINES_PER_SEGMENT,
    MAX_DEVICE_ID, REGISTRY_ENTRIES, SECTORS_PER_BLOCK,
};
use super::engine::{Engine, Storage};
use super::index::{range_bits, Index, IndexError, Key, LineMeta, Link};
use core::fmt;
use core::ops::DerefMut;

/// Errors of the recovery helpers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryError {
    /// The scan is finished; nothing more can be accepted.
    ScanFinished,
    /// The segment offered to [`LogScan::accept`] is not the one expected.
    UnexpectedId {
        /// Id expected.
        expected: u64,
        /// Id offered.
        found: u64,
    },
    /// A segment header is replayed into a slot that is not its own.
    WrongSlot {
        /// The segment id.
        id: u64,
        /// The slot given.
        slot: u32,
    },
    /// A geometry computation failed.
    Geometry(GeometryError),
    /// The index rejected an operation (a log reusing a line, or a bug).
    Index(IndexError),
    /// A per-device dirty counter would go negative or overflow.
    CounterOverflow {
        /// The device id.
        device_id: u8,
    },
    /// The segment buffer given to [`replay_log`] is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        found: usize,
    },
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ScanFinished => write!(f, "recovery: the log scan is already finished"),
            Self::UnexpectedId { expected, found } => {
                write!(
                    f,
                    "recovery: segment {found} offered where segment {expected} was expected"
                )
            }
            Self::WrongSlot { id, slot } => {
                write!(f, "recovery: segment {id} does not live in slot {slot}")
            }
            Self::Geometry(e) => write!(f, "recovery: {e}"),
            Self::Index(e) => write!(f, "recovery: {e}"),
            Self::CounterOverflow { device_id } => {
                write!(
                    f,
                    "recovery: dirty-line counter of device {device_id} out of range"
                )
            }
            Self::BufferTooSmall { needed, found } => {
                write!(
                    f,
                    "recovery: segment buffer too small ({found} bytes, {needed} needed)"
                )
            }
        }
    }
}

impl core::error::Error for RecoveryError {}

impl From<GeometryError> for RecoveryError {
    fn from(e: GeometryError) -> Self {
        Self::Geometry(e)
    }
}

impl From<IndexError> for RecoveryError {
    fn from(e: IndexError) -> Self {
        Self::Index(e)
    }
}

/// A segment the scan wants checked next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The id expected.
    pub id: u64,
    /// The slot it must be in.
    pub slot: u32,
    /// First sector of the slot (its header block).
    pub start_sector: u64,
}

/// Why the log ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// The segment expected next is not valid (never written, an older lap,
    /// torn, corrupt...).
    Invalid {
        /// The id expected.
        id: u64,
        /// Its slot.
        slot: u32,
        /// Why it is not valid.
        error: SegmentError,
    },
    /// Every slot holds a segment of the log (`nr_segments` segments were
    /// accepted): the next write must wait for migration.
    RingFull,
}

impl fmt::Display for LogEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { id, slot, error } => {
                write!(f, "log ends before segment {id} (slot {slot}): {error}")
            }
            Self::RingFull => write!(f, "log fills every segment slot"),
        }
    }
}

/// The log walk of recovery. The caller loops:
///
/// 1. [`next_candidate`](Self::next_candidate) gives the id and slot to read
///    (`None`: the walk is over);
/// 2. it reads the header block, decodes it with the expected id, reads the
///    data blocks and verifies the CRC (see
///    [`check_segment`](super::format::check_segment));
/// 3. on success it replays the segment ([`replay_segment`]) and calls
///    [`accept`](Self::accept), otherwise [`stop`](Self::stop) with the
///    reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogScan {
    geometry: Geometry,
    last_migrated: u64,
    replayed: u32,
    end: Option<LogEnd>,
}

impl LogScan {
    /// Starts a walk after `last_migrated` (the record's
    /// `last_migrated_segment_id`).
    pub fn new(geometry: Geometry, last_migrated: u64) -> Self {
        Self {
            geometry,
            last_migrated,
            replayed: 0,
            end: None,
        }
    }

    /// The geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The record's `last_migrated_segment_id` the walk started from.
    pub fn last_migrated(&self) -> u64 {
        self.last_migrated
    }

    fn expected(&self) -> Option<u64> {
        self.last_migrated
            .checked_add(u64::from(self.replayed))?
            .checked_add(1)
    }

    /// The next segment to check, or `None` when the walk is over.
    pub fn next_candidate(&mut self) -> Option<Candidate> {
        if self.end.is_some() {
            return None;
        }
        if self.replayed >= self.geometry.nr_segments() {
            self.end = Some(LogEnd::RingFull);
            return None;
        }
        let id = self.expected()?;
        let slot = self.geometry.slot_of_id(id).ok()?;
        let start_sector = self.geometry.segment_start_sector(slot).ok()?;
        Some(Candidate {
            id,
            slot,
            start_sector,
        })
    }

    /// The segment expected next was valid and has been replayed.
    pub fn accept(&mut self, header: &SegmentHeader) -> Result<(), RecoveryError> {
        if self.end.is_some() || self.replayed >= self.geometry.nr_segments() {
            return Err(RecoveryError::ScanFinished);
        }
        let expected = self.expected().ok_or(RecoveryError::ScanFinished)?;
        if header.id != expected {
            return Err(RecoveryError::UnexpectedId {
                expected,
                found: header.id,
            });
        }
        self.replayed = self.replayed.saturating_add(1);
        Ok(())
    }

    /// The segment expected next is not valid: the log ends before it.
    pub fn stop(&mut self, error: SegmentError) {
        if self.end.is_some() {
            return;
        }
        if let Some(id) = self.expected() {
            let slot = self.geometry.slot_of_id(id).unwrap_or(u32::MAX);
            self.end = Some(LogEnd::Invalid { id, slot, error });
        } else {
            self.end = Some(LogEnd::RingFull);
        }
    }

    /// Whether the walk is over.
    pub fn is_finished(&self) -> bool {
        self.end.is_some()
    }

    /// Why the log ended (`None` while the walk goes on).
    pub fn end(&self) -> Option<LogEnd> {
        self.end
    }

    /// Number of segments accepted.
    pub fn replayed(&self) -> u32 {
        self.replayed
    }

    /// The last segment id of the log (`last_migrated` if the log is empty).
    pub fn last_valid_id(&self) -> u64 {
        self.last_migrated.saturating_add(u64::from(self.replayed))
    }

    /// The first segment id to write after resume (`last_valid_id() + 1`).
    /// Its slot may be written once
    /// [`Geometry::may_write`](super::format::Geometry::may_write) holds,
    /// i.e. at once unless the log fills the ring.
    pub fn next_id(&self) -> u64 {
        self.last_valid_id().saturating_add(1)
    }

    /// The slots past the end of the log that still belong to the ring window
    /// of this record: ids `next_id() + 1 ..= last_migrated + nr_segments`
    /// (empty while the walk goes on or when the log fills the ring).
    ///
    /// None of them may hold a valid segment with the id it is checked for
    /// when the next life starts writing: such a segment (left, for example,
    /// by a volatile disk cache that persisted a later segment but not the
    /// torn one before it) is ignored by this recovery, but after the next
    /// crash it could be replayed after a rewritten `next_id()`, in place of
    /// newer data. Unless segment writes are strictly ordered (each one
    /// durable before the next is issued), a resume must invalidate (zero the
    /// header of) every such segment before writing `next_id()`. See
    /// invariant 3 in `Documentation/on-disk-format.md`.
    pub fn beyond_end(&self) -> impl Iterator<Item = Candidate> + '_ {
        let (first, last) = match self.end {
            Some(LogEnd::Invalid { .. }) => (
                self.next_id().saturating_add(1),
                self.last_migrated
                    .saturating_add(u64::from(self.geometry.nr_segments())),
            ),
            _ => (1, 0),
        };
        (first..=last).filter_map(move |id| {
            let slot = self.geometry.slot_of_id(id).ok()?;
            let start_sector = self.geometry.segment_start_sector(slot).ok()?;
            Some(Candidate {
                id,
                slot,
                start_sector,
            })
        })
    }
}

/// Whether `later`, a header found valid past the end of the log (one of
/// [`LogScan::beyond_end`]), proves that the log's end is not a torn tail
/// but lost data: its writer knew every segment up to `durable_upto` was
/// durable, and the segment where the log ended (`end_id`) is among them.
pub fn proves_loss(end_id: u64, later: &SegmentHeader) -> bool {
    later.id > end_id && later.durable_upto >= end_id
}

/// Per-device dirty-line counters, fed by [`replay_segment`]'s callback (or by
/// the index outcomes during normal operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirtyCounts {
    counts: [u64; REGISTRY_ENTRIES],
}

impl Default for DirtyCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl DirtyCounts {
    /// All zero.
    pub const fn new() -> Self {
        Self {
            counts: [0; REGISTRY_ENTRIES],
        }
    }

    /// Adds `delta` to the count of `device_id`.
    pub fn apply(&mut self, device_id: u8, delta: i32) -> Result<(), RecoveryError> {
        let c = self
            .counts
            .get_mut(usize::from(device_id))
            .ok_or(RecoveryError::CounterOverflow { device_id })?;
        let new = if delta >= 0 {
            c.checked_add(u64::from(delta.unsigned_abs()))
        } else {
            c.checked_sub(u64::from(delta.unsigned_abs()))
        };
        *c = new.ok_or(RecoveryError::CounterOverflow { device_id })?;
        Ok(())
    }

    /// Dirty lines of `device_id`.
    pub fn get(&self, device_id: u8) -> u64 {
        self.counts
            .get(usize::from(device_id))
            .copied()
            .unwrap_or(0)
    }

    /// Total dirty lines.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// The device ids with at least one dirty line.
    pub fn owners(&self) -> DeviceSet {
        let mut set = DeviceSet::EMPTY;
        for (id, &c) in (0u8..=MAX_DEVICE_ID).zip(self.counts.iter()) {
            if c != 0 {
                set.insert(id);
            }
        }
        set
    }
}

/// What [`replay_segment`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Metablocks with dirty bits written into the index.
    pub lines_replayed: u32,
    /// Older lines that became clean because this segment superseded them.
    pub lines_superseded: u32,
}

/// Replays segment `header` (already validated, CRC included) stored in
/// `slot` into `index`: for each metablock `k` with dirty bits, in `k` order,
/// `index.write(line_index(slot, k), key, dirty_bits)` (`index.write_clean`
/// for a clean line). Older copies lose the
/// sectors this segment rewrote and become clean when fully superseded.
///
/// `on_dirty(device_id, delta)` is called with the net change of the number of
/// dirty lines of that device after each metablock whose replay changed it
/// (for example [`DirtyCounts::apply`]).
pub fn replay_segment<L, B>(
    index: &mut Index<L, B>,
    geometry: &Geometry,
    slot: u32,
    header: &SegmentHeader,
    mut on_dirty: impl FnMut(u8, i32) -> Result<(), RecoveryError>,
) -> Result<ReplayStats, RecoveryError>
where
    L: DerefMut<Target = [LineMeta]>,
    B: DerefMut<Target = [Link]>,
{
    if geometry.slot_of_id(header.id)? != slot {
        return Err(RecoveryError::WrongSlot {
            id: header.id,
            slot,
        });
    }
    let mut stats = ReplayStats::default();
    // Discards logged in this segment apply to older segments only; this
    // segment's own lines carry what survived them.
    for d in header.discard_entries() {
        let out = discard_range(index, d.device_id, d.sector, u64::from(d.nr_sectors))?;
        stats.lines_superseded = stats.lines_superseded.saturating_add(out.1);
        if out.0 != 0 {
            on_dirty(d.device_id, out.0)?;
        }
    }
    for (k, mb) in (0..LINES_PER_SEGMENT).zip(header.lines().iter()) {
        if mb.dirty_bits == 0 {
            continue;
        }
        let line = geometry.line_index(slot, k)?;
        let key = Key::from_sector(mb.device_id, mb.sector);
        // A clean line supersedes every older copy of its block (see
        // `Index::write_clean` for when it comes back dirty).
        let out = if mb.is_clean() {
            index.write_clean(line, key)?
        } else {
            index.write(line, key, mb.dirty_bits)?
        };
        stats.lines_replayed = stats.lines_replayed.saturating_add(1);
        stats.lines_superseded = stats
            .lines_superseded
            .saturating_add(out.cleaned.len() as u32);
        let delta = out.dirty_delta();
        if delta != 0 {
            on_dirty(out.device_id, delta)?;
        }
    }
    Ok(stats)
}

/// Removes sectors `sector .. sector + nr` of `device_id` from the index (a
/// discard). Returns the net change of the device's dirty-line count and the
/// number of lines that became clean. O(min(nr / 8, lines)) index
/// operations: a range with more blocks than the index has lines is done by
/// walking the lines.
pub fn discard_range<L, B>(
    index: &mut Index<L, B>,
    device_id: u8,
    sector: u64,
    nr: u64,
) -> Result<(i32, u32), IndexError>
where
    L: DerefMut<Target = [LineMeta]>,
    B: DerefMut<Target = [Link]>,
{
    let mut delta = 0i32;
    let mut cleaned = 0u32;
    let end = sector.saturating_add(nr);
    if nr / SECTORS_PER_BLOCK > index.nr_lines() {
        for line in 0..index.nr_lines() {
            let Some(key) = index.key_of(line)? else {
                continue;
            };
            let bits = range_bits(key.block, sector, end);
            if key.device_id != device_id || bits == 0 {
                continue;
            }
            // The whole chain of the block loses the sectors; its other
            // lines are clean or keep only sectors outside the range.
            let o = index.discard(key, bits)?;
            delta = delta.saturating_add(o.dirty_delta());
            cleaned = cleaned.saturating_add(o.cleaned.len() as u32);
        }
        return Ok((delta, cleaned));
    }
    let mut s = sector;
    while s < end {
        let off = (s % SECTORS_PER_BLOCK) as u32;
        let cnt = (SECTORS_PER_BLOCK as u32)
            .saturating_sub(off)
            .min(end.saturating_sub(s).min(8) as u32)
            .max(1);
        let bits = ((0xffu32 >> (8 - cnt.min(8))) << off.min(7)) as u8;
        let o = index.discard(Key::from_sector(device_id, s), bits)?;
        delta = delta.saturating_add(o.dirty_delta());
        cleaned = cleaned.saturating_add(o.cleaned.len() as u32);
        s = s.saturating_add(u64::from(cnt));
    }
    Ok((delta, cleaned))
}

/// Checks that every device owning dirty data after replay is registered in
/// the record; the error names the ones that are not.
pub fn check_registry(dirty_owners: &DeviceSet, record: &Record) -> Result<(), RegistryError> {
    let missing = dirty_owners.difference(&record.registered_set());
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RegistryError::Unregistered { devices: missing })
    }
}

/// Errors of [`replay_log`]: the caller's I/O error, or a recovery error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError<E> {
    /// The loader failed (an I/O error: the log cannot be trusted to end
    /// here, so recovery must fail rather than drop data).
    Io(E),
    /// A recovery step failed.
    Recovery(RecoveryError),
}

impl<E: fmt::Display> fmt::Display for ReplayError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "recovery: I/O error while reading the log: {e}"),
            Self::Recovery(e) => write!(f, "{e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for ReplayError<E> {}

impl<E> From<RecoveryError> for ReplayError<E> {
    fn from(e: RecoveryError) -> Self {
        Self::Recovery(e)
    }
}

/// The outcome of [`replay_log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoverySummary {
    /// The record's `last_migrated_segment_id`.
    pub last_migrated: u64,
    /// The last id of the log (== `last_migrated` if it is empty).
    pub last_valid_id: u64,
    /// The first id to write after resume.
    pub next_id: u64,
    /// Segments replayed.
    pub replayed: u32,
    /// Why the log ended.
    pub end: LogEnd,
    /// Dirty metablocks written into the index.
    pub lines_replayed: u32,
    /// Lines superseded by newer data during replay.
    pub lines_superseded: u32,
}

/// Runs the whole recovery walk synchronously with `read(sector, buf)`, which
/// fills `buf` from the cache device starting at `sector`.
///
/// For each candidate the header block is read into `buf[..4096]` and decoded
/// with the expected id; if that succeeds the `nr_lines` data blocks are read
/// into `buf[4096..]` and the CRC is verified. A segment failing any check
/// ends the log; a `read` error aborts the whole recovery (an unreadable
/// segment is not proof that the log ends there). `buf` must hold a whole
/// segment (1 MiB). `index` and `counts` must be fresh; `header` is scratch
/// space (4 KiB, so that it need not live on the stack) and holds the last
/// segment checked on return.
#[allow(clippy::too_many_arguments)]
pub fn replay_log<L, B, E>(
    geometry: &Geometry,
    format_id: u64,
    last_migrated: u64,
    sum: SegmentSum,
    index: &mut Index<L, B>,
    counts: &mut DirtyCounts,
    header: &mut SegmentHeader,
    buf: &mut [u8],
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
) -> Result<RecoverySummary, ReplayError<E>>
where
    L: DerefMut<Target = [LineMeta]>,
    B: DerefMut<Target = [Link]>,
{
    let seg_bytes = BLOCK_SIZE * BLOCKS_PER_SEGMENT;
    if buf.len() < seg_bytes {
        return Err(ReplayError::Recovery(RecoveryError::BufferTooSmall {
            needed: seg_bytes,
            found: buf.len(),
        }));
    }
    let found = buf.len();
    let Some((hb, data)) = buf.split_first_chunk_mut::<BLOCK_SIZE>() else {
        return Err(ReplayError::Recovery(RecoveryError::BufferTooSmall {
            needed: seg_bytes,
            found,
        }));
    };
    let mut scan = LogScan::new(*geometry, last_migrated);
    let mut lines_replayed = 0u32;
    let mut lines_superseded = 0u32;
    while let Some(c) = scan.next_candidate() {
        read(c.start_sector, &mut *hb).map_err(ReplayError::Io)?;
        if let Err(e) = decode_segment_header_into(hb, format_id, c.id, header) {
            scan.stop(e);
            continue;
        }
        let len = header.data_len().map_err(|_| RecoveryError::ScanFinished)?;
        let Some(d) = data.get_mut(..len) else {
            return Err(ReplayError::Recovery(RecoveryError::BufferTooSmall {
                needed: seg_bytes,
                found: 0,
            }));
        };
        if len > 0 {
            read(c.start_sector.saturating_add(SECTORS_PER_BLOCK), &mut *d)
                .map_err(ReplayError::Io)?;
        }
        if let Err(e) = verify_segment(header, hb, d, sum) {
            scan.stop(e);
            continue;
        }
        let st = replay_segment(index, geometry, c.slot, header, |dev, delta| {
            counts.apply(dev, delta)
        })?;
        lines_replayed = lines_replayed.saturating_add(st.lines_replayed);
        lines_superseded = lines_superseded.saturating_add(st.lines_superseded);
        scan.accept(header)?;
    }
    Ok(RecoverySummary {
        last_migrated,
        last_valid_id: scan.last_valid_id(),
        next_id: scan.next_id(),
        replayed: scan.replayed(),
        end: scan.end().unwrap_or(LogEnd::RingFull),
        lines_replayed,
        lines_superseded,
    })
}

/// The cache device as [`resume_engine`] sees it: synchronous sector I/O.
pub trait LogDevice {
    /// The device's error.
    type Error;
    /// Reads `buf.len()` bytes (a multiple of 512) from `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes `buf` at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), Self::Error>;
    /// Flushes the device's volatile cache.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// Why [`resume_engine`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeError<E> {
    /// Reading segment `id` (or the slot of a stale one) failed: the segment
    /// may hold acknowledged data, so the resume cannot go on.
    Read {
        /// Segment id.
        id: u64,
        /// The device's error.
        error: E,
    },
    /// Invalidating a stale segment or flushing failed.
    Write {
        /// Slot.
        slot: u32,
        /// The device's error.
        error: E,
    },
    /// The log ends at segment `end_id`, but segment `proof_id` (slot
    /// `proof_slot`) was written when `end_id` was already durable: the end
    /// is lost acknowledged data, not a torn tail.
    LostDurable {
        /// Where the log ends.
        end_id: u64,
        /// The segment that proves it.
        proof_id: u64,
        /// Its slot.
        proof_slot: u32,
    },
    /// Replay failed (a broken log or a bug).
    Recovery(RecoveryError),
    /// A dirty line lies beyond its device's registered size.
    OutOfBounds {
        /// Device.
        device_id: u8,
        /// Sector of the line.
        sector: u64,
    },
    /// A device owns dirty data but is not registered.
    Unregistered {
        /// Device.
        device_id: u8,
        /// Its dirty lines.
        dirty: u64,
    },
    /// The scratch buffer is smaller than a segment.
    BufferTooSmall,
}

/// What [`resume_engine`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeSummary {
    /// Segments replayed.
    pub replayed: u32,
    /// Last id of the log.
    pub last_valid: u64,
    /// Why the log ended (`None` never happens once the walk is over).
    pub end: Option<LogEnd>,
    /// Stale segments past the end that were invalidated.
    pub invalidated: u32,
    /// The end segment was torn (its header named the expected id) and was
    /// invalidated too.
    pub torn_end: bool,
    /// Segment headers read (the live log, its end, and the slots looked
    /// at past the end): with a log horizon about `replayed + horizon`,
    /// without one `nr_segments` once the log does not fill the ring.
    pub headers_read: u64,
    /// Every slot of the ring window past the end was read (no log horizon,
    /// `accept_loss`, or a header that breaks the horizon).
    pub full_scan: bool,
    /// Clean lines the replay found and dropped (`Engine::drop_clean_lines`:
    /// a copy in the log may be older than the disk; read caching starts
    /// cold).
    pub clean_dropped: u64,
}

/// Whether segment `h` keeps the log horizon `horizon` (the superblock's
/// `log_horizon`): its writer knew every id up to `id - horizon` was
/// durable. Every segment a writer of a version 3 cache writes does.
pub fn keeps_horizon(h: &SegmentHeader, horizon: u32) -> bool {
    h.durable_upto.saturating_add(u64::from(horizon)) >= h.id
}

/// The ids past the end of the log that [`resume_engine`] reads, given the
/// ids found valid so far. With a log horizon `H` (every header has
/// `durable_upto + H >= id`), a valid segment `m > e` (the end) had every id
/// up to `m - H` durable when it was written; unless that proves `e` lost,
/// `m < e + H`, and the ids between `e` and `m - H` are durable, hence
/// valid. So the valid ids past the end never leave a gap of more than `H`
/// ids after `e` or after one another, and the walk stops at the first such
/// gap. Without a horizon it covers the whole ring window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PastEnd {
    next: u64,
    last: u64,
    seen: u64,
    horizon: u64,
}

impl PastEnd {
    /// The walk past `scan`'s end, `horizon` 0 meaning none (read the whole
    /// ring window). Empty while the walk goes on or when the log fills the
    /// ring.
    pub fn new(scan: &LogScan, horizon: u32) -> Self {
        let end = scan.next_id();
        let (next, last) = match scan.end() {
            Some(LogEnd::Invalid { .. }) => (
                end.saturating_add(1),
                scan.last_migrated()
                    .saturating_add(u64::from(scan.geometry().nr_segments())),
            ),
            _ => (1, 0),
        };
        Self {
            next,
            last,
            seen: end,
            horizon: u64::from(horizon),
        }
    }

    /// The next id to read, or `None` when the walk is over.
    pub fn next_id(&mut self) -> Option<u64> {
        if self.next > self.last {
            return None;
        }
        if self.horizon != 0 && self.next.saturating_sub(self.seen) > self.horizon {
            return None;
        }
        let id = self.next;
        self.next = self.next.saturating_add(1);
        Some(id)
    }

    /// Id `id` (the last one given) holds a valid segment.
    pub fn found(&mut self, id: u64) {
        self.seen = self.seen.max(id);
    }

    /// Drops the horizon: the rest of the ring window is read.
    pub fn unbounded(&mut self) {
        self.horizon = 0;
    }
}

/// Reads segment `c` for the walk: the whole slot in one I/O when it can
/// (the header and up to 255 lines, what a segment write put there), else
/// the header, then the data. Returns the header-decoding outcome.
fn read_candidate<D: LogDevice>(
    dev: &mut D,
    c: &Candidate,
    format_id: u64,
    buf: &mut [u8],
    header: &mut SegmentHeader,
) -> Result<Result<(), SegmentError>, ResumeError<D::Error>> {
    if dev.read(c.start_sector, buf).is_ok() {
        let hb = buf.get(..BLOCK_SIZE).ok_or(ResumeError::BufferTooSmall)?;
        return Ok(decode_segment_header_into(hb, format_id, c.id, header));
    }
    // Part of the slot may be unreadable: read what the segment needs, so
    // that only an error there aborts the resume.
    let (hb, data) = buf.split_at_mut(BLOCK_SIZE);
    dev.read(c.start_sector, hb).map_err(|error| ResumeError::Read { id: c.id, error })?;
    if let Err(e) = decode_segment_header_into(hb, format_id, c.id, header) {
        return Ok(Err(e));
    }
    let len = (header.nr_lines as usize).saturating_mul(BLOCK_SIZE);
    let d = data.get_mut(..len).ok_or(ResumeError::BufferTooSmall)?;
    if len > 0 {
        dev.read(c.start_sector.saturating_add(SECTORS_PER_BLOCK), d)
            .map_err(|error| ResumeError::Read { id: c.id, error })?;
    }
    Ok(Ok(()))
}

/// The whole of recovery, shared by the kernel and the simulator: walks the
/// log after `record`'s `last_migrated_segment_id`, replays every valid
/// segment into `engine`, refuses a log whose end is proven lost (unless
/// `accept_loss`), invalidates stale segments past the end, and checks that
/// every dirty line is within a registered device. `buf` is scratch space
/// of at least one segment (1 MiB), `header` of one header.
///
/// `log_horizon` is the superblock's (0 for a version 2 superblock): with
/// one, only the slots [`PastEnd`] gives are read past the end (about
/// `log_horizon` headers); without one, or with `accept_loss`, or when a
/// header read breaks the horizon ([`keeps_horizon`]), every slot of the
/// ring window past the end is.
#[allow(clippy::too_many_arguments)]
pub fn resume_engine<S: Storage, D: LogDevice>(
    dev: &mut D,
    geometry: Geometry,
    format_id: u64,
    record: &Record,
    sum: SegmentSum,
    engine: &mut Engine<S>,
    header: &mut SegmentHeader,
    buf: &mut [u8],
    log_horizon: u32,
    accept_loss: bool,
) -> Result<ResumeSummary, ResumeError<D::Error>> {
    let seg_bytes = BLOCK_SIZE * BLOCKS_PER_SEGMENT;
    let Some(buf) = buf.get_mut(..seg_bytes) else {
        return Err(ResumeError::BufferTooSmall);
    };
    let last_migrated = record.last_migrated_segment_id;
    let mut scan = LogScan::new(geometry, last_migrated);
    let mut headers_read = 0u64;
    let mut horizon_kept = log_horizon != 0 && !accept_loss;
    // The end segment's header named the id expected there (torn).
    let mut torn_end = false;
    while let Some(c) = scan.next_candidate() {
        headers_read = headers_read.saturating_add(1);
        if let Err(e) = read_candidate(dev, &c, format_id, buf, header)? {
            // A header naming the expected id that fails a later check
            // (a metablock, a count) is as torn as one whose checksum fails:
            // sectors of an unfinished write of this id. Invalidated below,
            // or a rewrite of the slot under the same id that a crash cuts
            // short could mix with it into a header that verifies, and
            // replay what this resume dropped (simulator seed 615 of 1000).
            // (A version this code does not know is left alone.)
            torn_end = !matches!(e, SegmentError::UnsupportedVersion(_))
                && buf.get(..BLOCK_SIZE).is_some_and(|hb| segment_header_names(hb, format_id, c.id));
            scan.stop(e);
            break;
        }
        let (hb, data) = buf.split_at_mut(BLOCK_SIZE);
        let len = (header.nr_lines as usize).saturating_mul(BLOCK_SIZE);
        let Some(d) = data.get(..len) else {
            return Err(ResumeError::BufferTooSmall);
        };
        if let Err(e) = verify_segment(header, hb, d, sum) {
            torn_end = true;
            scan.stop(e);
            break;
        }
        horizon_kept &= keeps_horizon(header, log_horizon);
        let mut deltas = [0i32; REGISTRY_ENTRIES];
        replay_segment(&mut engine.index, &geometry, c.slot, header, |d, x| {
            if let Some(v) = deltas.get_mut(d as usize) {
                *v = v.saturating_add(x);
            }
            Ok(())
        })
        .map_err(ResumeError::Recovery)?;
        for (d, &x) in (0u8..=MAX_DEVICE_ID).zip(deltas.iter()) {
            if x != 0 {
                engine.account(d, x);
            }
        }
        engine.replayed(c.id, c.slot, header);
        scan.accept(header).map_err(ResumeError::Recovery)?;
    }
    let last_valid = scan.last_valid_id();
    let end_id = last_valid.saturating_add(1);
    // Past the end: proof of lost data, or stale segments to invalidate.
    // Nothing is written before this walk is over, so a refusal changes
    // nothing.
    let mut past = PastEnd::new(&scan, if horizon_kept { log_horizon } else { 0 });
    let mut full_scan = !horizon_kept;
    let mut stale = 0u32;
    let mut stale_ids = (u64::MAX, 0u64);
    while let Some(id) = past.next_id() {
        let c = scan_candidate(&geometry, id).ok_or(ResumeError::BufferTooSmall)?;
        let hb = buf.get_mut(..BLOCK_SIZE).ok_or(ResumeError::BufferTooSmall)?;
        headers_read = headers_read.saturating_add(1);
        dev.read(c.start_sector, hb).map_err(|error| ResumeError::Read { id: c.id, error })?;
        if decode_segment_header_into(hb, format_id, c.id, header).is_ok() {
            if proves_loss(end_id, header) && !accept_loss {
                return Err(ResumeError::LostDurable { end_id, proof_id: c.id, proof_slot: c.slot });
            }
            if !full_scan && !keeps_horizon(header, log_horizon) {
                // Not written under the horizon: trust nothing past it.
                past.unbounded();
                full_scan = true;
            }
            past.found(id);
            stale = stale.saturating_add(1);
            stale_ids = (stale_ids.0.min(id), stale_ids.1.max(id));
        }
    }
    // The end segment itself, when its header names the id expected there
    // but the segment failed its checks (torn): invalidated too, or a later
    // rewrite of that slot that is lost in a crash could let the old header
    // verify again and replay what this resume dropped.
    let end_slot = match scan.end() {
        Some(LogEnd::Invalid { slot, .. }) if torn_end => geometry.segment_start_sector(slot).ok().map(|start| (start, slot)),
        _ => None,
    };
    let mut invalidated = 0u32;
    if let Some((start, slot)) = end_slot {
        let hb = buf.get_mut(..BLOCK_SIZE).ok_or(ResumeError::BufferTooSmall)?;
        hb.fill(0);
        dev.write(start, hb).map_err(|error| ResumeError::Write { slot, error })?;
        if stale == 0 {
            dev.flush().map_err(|error| ResumeError::Write { slot: u32::MAX, error })?;
        }
    }
    if stale > 0 {
        for id in stale_ids.0..=stale_ids.1 {
            let c = scan_candidate(&geometry, id).ok_or(ResumeError::BufferTooSmall)?;
            let hb = buf.get_mut(..BLOCK_SIZE).ok_or(ResumeError::BufferTooSmall)?;
            dev.read(c.start_sector, hb).map_err(|error| ResumeError::Read { id: c.id, error })?;
            if decode_segment_header_into(hb, format_id, c.id, header).is_ok() {
                hb.fill(0);
                dev.write(c.start_sector, hb).map_err(|error| ResumeError::Write { slot: c.slot, error })?;
                invalidated = invalidated.saturating_add(1);
            }
        }
        dev.flush().map_err(|error| ResumeError::Write { slot: u32::MAX, error })?;
    }
    let mut registry = [0u64; REGISTRY_ENTRIES];
    for (d, r) in (0u8..=MAX_DEVICE_ID).zip(registry.iter_mut()) {
        *r = record.registered(d).unwrap_or(0);
    }
    engine.resumed(last_migrated, last_valid, &registry);
    engine.set_log_horizon(log_horizon);
    if let Some((device_id, sector)) = engine.out_of_bounds() {
        return Err(ResumeError::OutOfBounds { device_id, sector });
    }
    if let Some((device_id, dirty)) = engine.dirty_devices().find(|&(d, _)| record.registered(d).is_none()) {
        return Err(ResumeError::Unregistered { device_id, dirty });
    }
    let clean_dropped = engine.drop_clean_lines();
    Ok(ResumeSummary {
        replayed: scan.replayed(),
        last_valid,
        end: scan.end(),
        invalidated,
        torn_end: end_slot.is_some(),
        headers_read,
        full_scan,
        clean_dropped,
    })
}

/// The candidate (slot and start sector) for segment `id`.
fn scan_candidate(geometry: &Geometry, id: u64) -> Option<Candidate> {
    let slot = geometry.slot_of_id(id).ok()?;
    let start_sector = geometry.segment_start_sector(slot).ok()?;
    Some(Candidate { id, slot, start_sector })
}
