// SPDX-License-Identifier: GPL-2.0

//! Format v1 of the writeboost cache device: constants, geometry, and the
//! encoders and decoders of the superblock, the record and the segment
//! header. `Documentation/on-disk-format.md` is the reference; every offset
//! used here appears there.
//!
//! All integers are little-endian. Decoders never trust the input: every
//! field is range-checked and every error is a distinct enum variant with a
//! human-readable [`Display`](core::fmt::Display).

use super::crc32c::{Crc32c, UpdateFn};
use core::fmt;

/// Bytes per sector.
pub const SECTOR_SIZE: usize = 512;
/// Bytes per block (a cache line, a segment header, a metadata block).
pub const BLOCK_SIZE: usize = 4096;
/// Sectors per block.
pub const SECTORS_PER_BLOCK: u64 = 8;

/// The end (exclusive) of the dirty sectors `bits` of the block at
/// `sector`: a line lies within a backing device of `size` sectors when
/// this is `<= size`. The last block of a device whose size is not a
/// multiple of [`SECTORS_PER_BLOCK`] is partial, and only its sectors
/// within the device can be dirty. `None` on overflow.
pub const fn dirty_end(sector: u64, bits: u8) -> Option<u64> {
    sector.checked_add((8 - bits.leading_zeros()) as u64)
}
/// Sectors per segment (1 MiB).
pub const SEGMENT_SECTORS: u64 = 2048;
/// Blocks per segment: the header block and [`LINES_PER_SEGMENT`] lines.
pub const BLOCKS_PER_SEGMENT: usize = 256;
/// Cache lines (4 KiB data blocks) per segment.
pub const LINES_PER_SEGMENT: u32 = 255;
/// Sectors of the superblock region at the start of the device.
pub const SUPERBLOCK_REGION_SECTORS: u64 = 2048;
/// The format version of the record and the segment headers, which this
/// crate reads and writes.
pub const FORMAT_VERSION: u32 = 2;
/// The superblock version this crate writes. Version 5 is version 4 whose
/// segments are written with header version 4, which may hold *direct*
/// lines ([`METABLOCK_DIRECT`]: large writes go from the bio straight to
/// their place on the cache device, and the segment checksum leaves them
/// out). Version 4 is version 3 whose segments are checksummed with xxh64
/// instead of CRC32C (see [`SegmentSum`]) and written with header version
/// 3 (metablock flags: clean lines, read caching). Version 3 is version 2
/// with the `log_horizon` field (offset 28), which promises that every
/// segment header of the cache satisfies `durable_upto + log_horizon >= id`
/// (see [`LOG_HORIZON`]). Versions 2 (no promise), 3 and 4 are still read.
pub const SUPERBLOCK_VERSION: u32 = 5;
/// Superblock version 4: the layout and checksum of version 5, but its
/// segments are written with version 3 headers (no direct lines). Still
/// read and written (a cache keeps its version).
pub const SUPERBLOCK_VERSION_V4: u32 = 4;
/// Superblock version 3: the layout of version 4, but its segments are
/// checksummed with CRC32C and written with version 2 headers (no line
/// flags, so no clean lines: read caching is refused on such a cache).
/// Still read, and written again by [`Superblock::with_version`] (tests
/// build the caches older modules formatted).
pub const SUPERBLOCK_VERSION_V3: u32 = 3;
/// The segment header version with the metablock `flags` byte
/// ([`METABLOCK_CLEAN`]); the segments of a version 4 superblock's cache.
pub const SEGMENT_VERSION_V3: u32 = 3;
/// The segment header version that may mark lines [`METABLOCK_DIRECT`];
/// the segments of a version 5 superblock's cache.
pub const SEGMENT_VERSION_V4: u32 = 4;
/// Metablock flag bit 0 (header version 3): the line is *clean*, its data
/// equals the backing device's for all 8 sectors (`dirty_bits` is 0xFF).
/// Replay makes it the block's copy; it is never written back.
pub const METABLOCK_CLEAN: u8 = 1;
/// Metablock flag bit 1 (header version 4): the line is *direct*, its data
/// was written to its place in the segment on the cache device by the
/// user's bio itself, before the header (which is written with
/// `REQ_PREFLUSH`, so the header is never durable before that data). The
/// segment checksum does not cover a direct line's data (see
/// [`segment_checksum_of`]). Never set together with [`METABLOCK_CLEAN`].
pub const METABLOCK_DIRECT: u8 = 2;
/// The oldest superblock version this crate reads (no `log_horizon`).
pub const SUPERBLOCK_VERSION_V2: u32 = 2;
/// The log horizon a new format records and the engine keeps: a segment is
/// written only when every segment id up to `id - LOG_HORIZON` is known
/// durable (else its write carries `REQ_PREFLUSH`). It bounds how far past
/// the end of the log a valid segment can be after a crash, so that resume
/// reads the live log and at most about `LOG_HORIZON` headers past it,
/// instead of every slot.
pub const LOG_HORIZON: u32 = 64;
/// Largest `log_horizon` a superblock may record.
pub const MAX_LOG_HORIZON: u32 = 1 << 20;
/// Highest valid device id. Valid ids are `1..=MAX_DEVICE_ID`; 0 never owns
/// a line.
pub const MAX_DEVICE_ID: u8 = 127;
/// Number of device-registry entries in the record (ids `0..=127`).
pub const REGISTRY_ENTRIES: usize = 128;
/// Fewest segments a cache device may have.
pub const MIN_SEGMENTS: u64 = 2;
/// Most segments a cache device may have: slots are `u32` and global line
/// indices (`u64`) must fit the index's 40-bit links
/// (`MAX_SEGMENTS * 255 < index::MAX_LINES = 2^40 - 1`): about 4 PiB of
/// cache.
pub const MAX_SEGMENTS: u64 = u32::MAX as u64;

/// Magic of the superblock (block 0).
pub const SUPERBLOCK_MAGIC: [u8; 8] = *b"WBRSUPER";
/// Magic of a record slot (blocks 1 and 2).
pub const RECORD_MAGIC: [u8; 8] = *b"WBRSREC\0";
/// Magic of a segment header (block 0 of a segment).
pub const SEGMENT_MAGIC: [u8; 8] = *b"WBRSSEG\0";

/// Block number (in 4 KiB blocks from the device start) of the superblock.
pub const SUPERBLOCK_BLOCK: u64 = 0;
/// Block numbers of the two record slots; generation `g` is written to
/// `RECORD_BLOCKS[g % 2]`.
pub const RECORD_BLOCKS: [u64; 2] = [1, 2];

/// Bit 0 of a registry entry's flags: the device id is registered.
pub const REGISTRY_FLAG_REGISTERED: u32 = 1;

/// Byte offset of the CRC field, the same in all three structures.
pub const CHECKSUM_OFFSET: usize = 12;

// Superblock layout.
const SB_VERSION: usize = 8;
const SB_BLOCK_SIZE: usize = 16;
const SB_SEGMENT_SECTORS: usize = 20;
const SB_LINES: usize = 24;
const SB_LOG_HORIZON: usize = 28;
const SB_NR_SEGMENTS: usize = 32;
const SB_DEVICE_SECTORS: usize = 40;
const SB_FORMAT_ID: usize = 48;
const SB_FORMAT_TIME: usize = 56;
const SB_END: usize = 64;

// Record layout.
const REC_VERSION: usize = 8;
const REC_FORMAT_ID: usize = 16;
const REC_GENERATION: usize = 24;
const REC_LAST_MIGRATED: usize = 32;
const REC_RESERVED: usize = 40;
const REC_REGISTRY: usize = 64;
const REC_ENTRY_SIZE: usize = 16;
const REC_IDENTITY: usize = REC_REGISTRY + REC_ENTRY_SIZE * REGISTRY_ENTRIES; // 2112
const REC_END: usize = REC_IDENTITY + 8 * REGISTRY_ENTRIES; // 3136

// Segment header layout.
const SEG_VERSION: usize = 8;
const SEG_FORMAT_ID: usize = 16;
const SEG_ID: usize = 24;
const SEG_NR_LINES: usize = 32;
const SEG_DURABLE_UPTO: usize = 36;
const SEG_NR_DISCARDS: usize = 44;
const SEG_RESERVED: usize = 48;
const SEG_METABLOCKS: usize = 64;
/// Size in bytes of one on-disk metablock entry.
pub const METABLOCK_SIZE: usize = 12;
const SEG_END: usize = SEG_METABLOCKS + METABLOCK_SIZE * LINES_PER_SEGMENT as usize; // 3124
/// Size in bytes of one on-disk discard entry.
pub const DISCARD_ENTRY_SIZE: usize = 16;
/// Most discard entries one segment header holds.
pub const MAX_DISCARDS: usize = 60;
/// Most sectors one discard entry covers (1 MiB): bounds the replay cost.
pub const MAX_DISCARD_SECTORS: u32 = 2048;
/// Largest segment id a record may name (far beyond any real log; keeps all
/// id arithmetic clear of overflow on crafted records).
pub const MAX_SEGMENT_ID: u64 = 1 << 62;
const SEG_DISCARDS: usize = SEG_END;
const SEG_DISCARDS_END: usize = SEG_DISCARDS + DISCARD_ENTRY_SIZE * MAX_DISCARDS; // 4084

// ---------------------------------------------------------------------------
// Little-endian helpers. Callers check the buffer length first; the
// fallbacks only exist so that nothing can panic.

fn get_u32(buf: &[u8], off: usize) -> u32 {
    match buf.get(off..).and_then(|s| s.first_chunk::<4>()) {
        Some(b) => u32::from_le_bytes(*b),
        None => 0,
    }
}

fn get_u64(buf: &[u8], off: usize) -> u64 {
    match buf.get(off..).and_then(|s| s.first_chunk::<8>()) {
        Some(b) => u64::from_le_bytes(*b),
        None => 0,
    }
}

fn get_u8(buf: &[u8], off: usize) -> u8 {
    buf.get(off).copied().unwrap_or(0)
}

fn put_bytes(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(off..).and_then(|s| s.get_mut(..bytes.len())) {
        dst.copy_from_slice(bytes);
    }
}

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    put_bytes(buf, off, &v.to_le_bytes());
}

fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    put_bytes(buf, off, &v.to_le_bytes());
}

fn put_u8(buf: &mut [u8], off: usize, v: u8) {
    if let Some(b) = buf.get_mut(off) {
        *b = v;
    }
}

/// Offset of the first nonzero byte of `buf[start..end]`, if any.
fn first_nonzero(buf: &[u8], start: usize, end: usize) -> Option<usize> {
    let part = buf.get(start..end)?;
    part.iter()
        .position(|&b| b != 0)
        .and_then(|p| start.checked_add(p))
}

/// The first [`BLOCK_SIZE`] bytes of `buf`, if it is that long.
fn block_of(buf: &[u8]) -> Option<&[u8]> {
    buf.get(..BLOCK_SIZE)
}

fn block_of_mut(buf: &mut [u8]) -> Option<&mut [u8]> {
    buf.get_mut(..BLOCK_SIZE)
}

/// CRC of a 4 KiB metadata block with its CRC field (bytes 12..16) treated
/// as zero, plus `data` after it.
fn block_checksum(block: &[u8], data: &[u8], update: UpdateFn) -> u32 {
    let mut c = Crc32c::with_update(update);
    feed_block_without_checksum(&mut c, block);
    c.update(data);
    c.finish()
}

/// Feeds `block` with the bytes of its CRC field (those that exist) replaced
/// by zeros.
fn feed_block_without_checksum(c: &mut Crc32c<UpdateFn>, block: &[u8]) {
    let head = block.get(..CHECKSUM_OFFSET).unwrap_or(block);
    c.update(head);
    let crc_len = block.len().saturating_sub(CHECKSUM_OFFSET).min(4);
    c.update_zeros(crc_len);
    c.update(block.get(CHECKSUM_OFFSET + 4..).unwrap_or(&[]));
}

// ---------------------------------------------------------------------------
// Encoding errors.

/// Errors of the encoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output (or data) buffer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        found: usize,
    },
    /// The format id to encode is 0.
    ZeroFormatId,
    /// The segment id to encode is 0.
    ZeroSegmentId,
    /// The segment header to encode is invalid; the error is the one its
    /// decoder would report.
    InvalidSegment(SegmentError),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, found } => {
                write!(f, "buffer too small: {needed} bytes needed, {found} given")
            }
            Self::ZeroFormatId => write!(f, "refusing to encode format id 0"),
            Self::ZeroSegmentId => write!(f, "refusing to encode segment id 0"),
            Self::InvalidSegment(e) => {
                write!(f, "refusing to encode an invalid segment header: {e}")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

fn need(buf_len: usize, needed: usize) -> Result<(), EncodeError> {
    if buf_len < needed {
        Err(EncodeError::BufferTooSmall {
            needed,
            found: buf_len,
        })
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Geometry.

/// Errors of the geometry helpers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometryError {
    /// The device is too small to hold the superblock region and
    /// [`MIN_SEGMENTS`] segments.
    TooSmall {
        /// Device size in sectors.
        device_sectors: u64,
    },
    /// The device has more than [`MAX_SEGMENTS`] segments.
    TooLarge {
        /// Number of segments it would have.
        nr_segments: u64,
    },
    /// A segment slot is out of range.
    SlotOutOfRange {
        /// The slot.
        slot: u32,
        /// Number of segments.
        nr_segments: u32,
    },
    /// A line number within a segment is not below 255.
    LineOutOfRange {
        /// The line number.
        k: u32,
    },
    /// A global line index is out of range.
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// Number of lines of the device.
        nr_lines: u64,
    },
    /// Segment id 0 is never valid.
    ZeroSegmentId,
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooSmall { device_sectors } => write!(
                f,
                "cache device too small: {device_sectors} sectors, at least {} needed \
                 (1 MiB superblock region + {MIN_SEGMENTS} segments of 1 MiB)",
                (MIN_SEGMENTS + 1) * SEGMENT_SECTORS
            ),
            Self::TooLarge { nr_segments } => write!(
                f,
                "cache device too large: {nr_segments} segments, at most {MAX_SEGMENTS} supported"
            ),
            Self::SlotOutOfRange { slot, nr_segments } => {
                write!(
                    f,
                    "segment slot {slot} out of range (device has {nr_segments} segments)"
                )
            }
            Self::LineOutOfRange { k } => {
                write!(
                    f,
                    "line {k} out of range (a segment has {LINES_PER_SEGMENT} lines)"
                )
            }
            Self::IndexOutOfRange { index, nr_lines } => {
                write!(
                    f,
                    "line index {index} out of range (device has {nr_lines} lines)"
                )
            }
            Self::ZeroSegmentId => write!(f, "segment id 0 is invalid"),
        }
    }
}

impl core::error::Error for GeometryError {}

/// The layout of a cache device: how many segment slots it has, and where
/// segments and lines are.
///
/// Slot `s` occupies sectors `[2048*(s+1), 2048*(s+2))`; line `k` of slot `s`
/// is at sector `2048*(s+1) + 8*(k+1)` and has global index `255*s + k`.
/// Segment id `g >= 1` lives in slot `(g-1) % nr_segments`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    nr_segments: u32,
}

impl Geometry {
    /// The geometry of a device of `device_sectors` sectors:
    /// `nr_segments = device_sectors / 2048 - 1`.
    pub fn from_device_sectors(device_sectors: u64) -> Result<Self, GeometryError> {
        let units = device_sectors / SEGMENT_SECTORS;
        match units.checked_sub(1) {
            Some(n) if n >= MIN_SEGMENTS => Self::from_nr_segments(n),
            _ => Err(GeometryError::TooSmall { device_sectors }),
        }
    }

    /// The geometry with `nr_segments` slots.
    pub fn from_nr_segments(nr_segments: u64) -> Result<Self, GeometryError> {
        if nr_segments < MIN_SEGMENTS {
            let device_sectors = nr_segments
                .saturating_add(1)
                .saturating_mul(SEGMENT_SECTORS);
            return Err(GeometryError::TooSmall { device_sectors });
        }
        if nr_segments > MAX_SEGMENTS {
            return Err(GeometryError::TooLarge { nr_segments });
        }
        match u32::try_from(nr_segments) {
            Ok(n) => Ok(Self { nr_segments: n }),
            Err(_) => Err(GeometryError::TooLarge { nr_segments }),
        }
    }

    /// Number of segment slots.
    pub fn nr_segments(&self) -> u32 {
        self.nr_segments
    }

    /// Number of cache lines (`nr_segments * 255`, more than `u32::MAX` for
    /// a cache of more than 16 TiB).
    pub fn nr_lines(&self) -> u64 {
        u64::from(self.nr_segments) * u64::from(LINES_PER_SEGMENT)
    }

    /// Sectors covered by the superblock region and all segments; sectors past
    /// this are unused.
    pub fn used_sectors(&self) -> u64 {
        (u64::from(self.nr_segments) + 1) * SEGMENT_SECTORS
    }

    fn check_slot(&self, slot: u32) -> Result<(), GeometryError> {
        if slot < self.nr_segments {
            Ok(())
        } else {
            Err(GeometryError::SlotOutOfRange {
                slot,
                nr_segments: self.nr_segments,
            })
        }
    }

    /// First sector of segment slot `slot`.
    pub fn segment_start_sector(&self, slot: u32) -> Result<u64, GeometryError> {
        self.check_slot(slot)?;
        Ok((u64::from(slot) + 1) * SEGMENT_SECTORS)
    }

    /// Sector of the data of line `k` of slot `slot`
    /// (segment start + `8 * (k + 1)`).
    pub fn line_sector(&self, slot: u32, k: u32) -> Result<u64, GeometryError> {
        let start = self.segment_start_sector(slot)?;
        if k >= LINES_PER_SEGMENT {
            return Err(GeometryError::LineOutOfRange { k });
        }
        Ok(start + (u64::from(k) + 1) * SECTORS_PER_BLOCK)
    }

    /// The slot of segment id `id` (`(id - 1) % nr_segments`).
    pub fn slot_of_id(&self, id: u64) -> Result<u32, GeometryError> {
        let Some(pos) = id.checked_sub(1) else {
            return Err(GeometryError::ZeroSegmentId);
        };
        let n = u64::from(self.nr_segments);
        match pos.checked_rem(n).map(u32::try_from) {
            Some(Ok(slot)) => Ok(slot),
            _ => Err(GeometryError::SlotOutOfRange {
                slot: u32::MAX,
                nr_segments: self.nr_segments,
            }),
        }
    }

    /// Global index of line `k` of slot `slot` (`slot * 255 + k`).
    pub fn line_index(&self, slot: u32, k: u32) -> Result<u64, GeometryError> {
        self.check_slot(slot)?;
        if k >= LINES_PER_SEGMENT {
            return Err(GeometryError::LineOutOfRange { k });
        }
        // slot < 2^32 and k < 255: no overflow.
        Ok(u64::from(slot) * u64::from(LINES_PER_SEGMENT) + u64::from(k))
    }

    /// `(slot, k)` of global line index `index`.
    pub fn line_location(&self, index: u64) -> Result<(u32, u32), GeometryError> {
        if index >= self.nr_lines() {
            return Err(GeometryError::IndexOutOfRange {
                index,
                nr_lines: self.nr_lines(),
            });
        }
        let per = u64::from(LINES_PER_SEGMENT);
        match u32::try_from(index / per) {
            Ok(slot) => Ok((slot, (index % per) as u32)),
            Err(_) => Err(GeometryError::IndexOutOfRange {
                index,
                nr_lines: self.nr_lines(),
            }),
        }
    }

    /// Sector of the data of global line `index`.
    pub fn line_sector_of_index(&self, index: u64) -> Result<u64, GeometryError> {
        let (slot, k) = self.line_location(index)?;
        self.line_sector(slot, k)
    }

    /// Whether segment id `id` may be written now: the slot it goes to held
    /// id `id - nr_segments` (if any), which must be migrated, i.e.
    /// `id <= last_migrated + nr_segments`.
    pub fn may_write(&self, id: u64, last_migrated: u64) -> bool {
        id != 0 && id <= last_migrated.saturating_add(u64::from(self.nr_segments))
    }
}

/// Number of sectors of a segment write of `nr_lines` lines (the header block
/// and the lines), or `None` if `nr_lines > 255`.
pub fn segment_write_sectors(nr_lines: u32) -> Option<u64> {
    if nr_lines > LINES_PER_SEGMENT {
        None
    } else {
        Some((u64::from(nr_lines) + 1) * SECTORS_PER_BLOCK)
    }
}

// ---------------------------------------------------------------------------
// Superblock.

/// The superblock: block 0 of the device, written once by format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    geometry: Geometry,
    device_sectors: u64,
    format_id: u64,
    format_time: u64,
    log_horizon: u32,
    version: u32,
}

/// Errors of [`decode_superblock`] and [`check_device_size`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuperblockError {
    /// Fewer than 4096 bytes were given.
    Truncated {
        /// Bytes given.
        found: usize,
    },
    /// The magic is not `WBRSUPER`: not a writeboost cache device.
    BadMagic,
    /// A version this code does not understand.
    UnsupportedVersion(u32),
    /// The CRC does not match.
    BadChecksum {
        /// CRC stored in the block.
        stored: u32,
        /// CRC computed over the block.
        computed: u32,
    },
    /// Block size, segment size or lines per segment differ from the
    /// constants of format v1.
    BadGeometry {
        /// Stored block size.
        block_size: u32,
        /// Stored segment size in sectors.
        segment_sectors: u32,
        /// Stored lines per segment.
        lines_per_segment: u32,
    },
    /// `nr_segments` is not `device_sectors / 2048 - 1` or is below
    /// [`MIN_SEGMENTS`].
    InconsistentSize {
        /// Stored number of segments.
        nr_segments: u64,
        /// Stored device size in sectors.
        device_sectors: u64,
    },
    /// More than [`MAX_SEGMENTS`] segments.
    TooLarge {
        /// Stored number of segments.
        nr_segments: u64,
    },
    /// The format id is 0.
    ZeroFormatId,
    /// A version 3 superblock whose `log_horizon` is 0 or above
    /// [`MAX_LOG_HORIZON`].
    BadLogHorizon(u32),
    /// A reserved byte is not zero.
    NonZeroReserved {
        /// Offset of the first nonzero reserved byte.
        offset: usize,
    },
    /// The device is smaller than when it was formatted.
    DeviceShrunk {
        /// Size in sectors when formatted.
        formatted: u64,
        /// Actual size in sectors.
        actual: u64,
    },
}

impl fmt::Display for SuperblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { found } => {
                write!(
                    f,
                    "superblock truncated: {found} bytes, {BLOCK_SIZE} needed"
                )
            }
            Self::BadMagic => write!(
                f,
                "no writeboost superblock (bad magic): not a formatted cache device"
            ),
            Self::UnsupportedVersion(v) => write!(
                f,
                "superblock has format version {v}, this code supports versions \
                 {SUPERBLOCK_VERSION_V2} to {SUPERBLOCK_VERSION}"
            ),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "superblock checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 the superblock is corrupt"
            ),
            Self::BadGeometry {
                block_size,
                segment_sectors,
                lines_per_segment,
            } => write!(
                f,
                "superblock geometry unsupported: block size {block_size}, segment sectors \
                 {segment_sectors}, lines per segment {lines_per_segment} (expected {BLOCK_SIZE}, \
                 {SEGMENT_SECTORS}, {LINES_PER_SEGMENT})"
            ),
            Self::InconsistentSize {
                nr_segments,
                device_sectors,
            } => write!(
                f,
                "superblock sizes inconsistent: {nr_segments} segments recorded for a device of \
                 {device_sectors} sectors (expected device_sectors/2048-1, at least {MIN_SEGMENTS})"
            ),
            Self::TooLarge { nr_segments } => write!(
                f,
                "superblock records {nr_segments} segments, at most {MAX_SEGMENTS} supported"
            ),
            Self::ZeroFormatId => write!(f, "superblock format id is 0"),
            Self::BadLogHorizon(h) => write!(
                f,
                "superblock log horizon {h} out of range (1..={MAX_LOG_HORIZON})"
            ),
            Self::NonZeroReserved { offset } => {
                write!(f, "superblock reserved byte at offset {offset} is not zero")
            }
            Self::DeviceShrunk { formatted, actual } => write!(
                f,
                "cache device shrank: formatted with {formatted} sectors, now {actual} sectors"
            ),
        }
    }
}

impl core::error::Error for SuperblockError {}

impl Superblock {
    /// A superblock for a device of `device_sectors` sectors. `format_id` is
    /// a random nonzero nonce chosen at format time; `format_time` is the
    /// format time in seconds since the epoch (informational).
    pub fn new(
        device_sectors: u64,
        format_id: u64,
        format_time: u64,
    ) -> Result<Self, SuperblockError> {
        if format_id == 0 {
            return Err(SuperblockError::ZeroFormatId);
        }
        let geometry = match Geometry::from_device_sectors(device_sectors) {
            Ok(g) => g,
            Err(GeometryError::TooLarge { nr_segments }) => {
                return Err(SuperblockError::TooLarge { nr_segments })
            }
            Err(_) => {
                let nr_segments = (device_sectors / SEGMENT_SECTORS).saturating_sub(1);
                return Err(SuperblockError::InconsistentSize {
                    nr_segments,
                    device_sectors,
                });
            }
        };
        Ok(Self {
            geometry,
            device_sectors,
            format_id,
            format_time,
            log_horizon: LOG_HORIZON,
            version: SUPERBLOCK_VERSION,
        })
    }

    /// The same superblock with another log horizon: 0 makes it a version 2
    /// superblock (no horizon; resume then reads every slot's header past
    /// the end of the log), which tests use to build the caches older
    /// versions formatted. Values above [`MAX_LOG_HORIZON`] are clamped.
    pub fn with_log_horizon(mut self, log_horizon: u32) -> Self {
        self.log_horizon = log_horizon.min(MAX_LOG_HORIZON);
        if self.log_horizon == 0 {
            self.version = SUPERBLOCK_VERSION_V2;
        } else if self.version == SUPERBLOCK_VERSION_V2 {
            self.version = SUPERBLOCK_VERSION_V3;
        }
        self
    }

    /// The same superblock as version `v` (2 to 5; other values are
    /// ignored): tests build the caches older modules formatted. Version 2
    /// has no log horizon (it is set to 0); versions 3 to 5 get
    /// [`LOG_HORIZON`] if they had none.
    pub fn with_version(mut self, v: u32) -> Self {
        match v {
            SUPERBLOCK_VERSION_V2 => {
                self.log_horizon = 0;
                self.version = v;
            }
            SUPERBLOCK_VERSION_V3 | SUPERBLOCK_VERSION_V4 | SUPERBLOCK_VERSION => {
                if self.log_horizon == 0 {
                    self.log_horizon = LOG_HORIZON;
                }
                self.version = v;
            }
            _ => {}
        }
        self
    }

    /// How this cache's segments are checksummed: CRC32C with `crc` for
    /// versions 2 and 3, xxh64 with `xxh64` for versions 4 and 5. The caller
    /// passes the implementations (the kernel's, or a library's in the tools).
    pub fn segment_sum(&self, crc: UpdateFn, xxh64: Xxh64Fn) -> SegmentSum {
        if self.version >= SUPERBLOCK_VERSION_V4 {
            SegmentSum::Xxh64(xxh64)
        } else {
            SegmentSum::Crc32c(crc)
        }
    }

    /// The version of the segment headers written to this cache: the one
    /// place that decides it. [`SEGMENT_VERSION_V4`] (direct lines too) for
    /// a version 5 superblock, [`SEGMENT_VERSION_V3`] (line flags, so clean
    /// lines and read caching) for version 4, [`FORMAT_VERSION`] (2) for
    /// older ones.
    pub fn segment_version(&self) -> u32 {
        if self.version >= SUPERBLOCK_VERSION {
            SEGMENT_VERSION_V4
        } else if self.version >= SUPERBLOCK_VERSION_V4 {
            SEGMENT_VERSION_V3
        } else {
            FORMAT_VERSION
        }
    }

    /// The log horizon (0: a version 2 superblock, none promised): every
    /// segment header of this cache has `durable_upto + log_horizon >= id`.
    pub fn log_horizon(&self) -> u32 {
        self.log_horizon
    }

    /// The superblock's version: [`SUPERBLOCK_VERSION`] for a new format,
    /// [`SUPERBLOCK_VERSION_V3`] or [`SUPERBLOCK_VERSION_V2`] (without a
    /// log horizon) for the caches older modules formatted.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The device geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Number of segment slots.
    pub fn nr_segments(&self) -> u64 {
        u64::from(self.geometry.nr_segments())
    }

    /// Device size in sectors at format time.
    pub fn device_sectors(&self) -> u64 {
        self.device_sectors
    }

    /// The format id (random nonce, nonzero).
    pub fn format_id(&self) -> u64 {
        self.format_id
    }

    /// Format time, seconds since the epoch.
    pub fn format_time(&self) -> u64 {
        self.format_time
    }
}

/// Encodes `sb` into the first 4096 bytes of `out` (reserved bytes zeroed,
/// CRC filled).
pub fn encode_superblock(sb: &Superblock, out: &mut [u8]) -> Result<(), EncodeError> {
    need(out.len(), BLOCK_SIZE)?;
    let Some(b) = block_of_mut(out) else {
        return Err(EncodeError::BufferTooSmall {
            needed: BLOCK_SIZE,
            found: 0,
        });
    };
    b.fill(0);
    put_bytes(b, 0, &SUPERBLOCK_MAGIC);
    put_u32(b, SB_VERSION, sb.version());
    put_u32(b, SB_BLOCK_SIZE, BLOCK_SIZE as u32);
    put_u32(b, SB_SEGMENT_SECTORS, SEGMENT_SECTORS as u32);
    put_u32(b, SB_LINES, LINES_PER_SEGMENT);
    put_u32(b, SB_LOG_HORIZON, sb.log_horizon);
    put_u64(b, SB_NR_SEGMENTS, sb.nr_segments());
    put_u64(b, SB_DEVICE_SECTORS, sb.device_sectors);
    put_u64(b, SB_FORMAT_ID, sb.format_id);
    put_u64(b, SB_FORMAT_TIME, sb.format_time);
    let crc = block_checksum(b, &[], super::crc32c::crc32c_raw_update);
    put_u32(b, CHECKSUM_OFFSET, crc);
    Ok(())
}

/// What is wrong with the preamble shared by every metadata block: the
/// magic, the format version and (for self-checksummed blocks) the CRC.
enum Preamble {
    BadMagic,
    UnsupportedVersion(u32),
    BadChecksum { stored: u32, computed: u32 },
}

/// Checks a block's magic and version and, with `self_checksum`, its CRC
/// over the block alone (superblock and record; a segment's CRC also
/// covers its data and is checked separately).
fn check_preamble(
    b: &[u8],
    magic: &[u8; 8],
    version_off: usize,
    self_checksum: bool,
) -> Result<(), Preamble> {
    check_preamble_versions(b, magic, version_off, self_checksum, &[FORMAT_VERSION])
}

/// [`check_preamble`] accepting any of `versions`.
fn check_preamble_versions(
    b: &[u8],
    magic: &[u8; 8],
    version_off: usize,
    self_checksum: bool,
    versions: &[u32],
) -> Result<(), Preamble> {
    if b.get(..8) != Some(&magic[..]) {
        return Err(Preamble::BadMagic);
    }
    let version = get_u32(b, version_off);
    if !versions.contains(&version) {
        return Err(Preamble::UnsupportedVersion(version));
    }
    if self_checksum {
        let stored = get_u32(b, CHECKSUM_OFFSET);
        let computed = block_checksum(b, &[], super::crc32c::crc32c_raw_update);
        if stored != computed {
            return Err(Preamble::BadChecksum { stored, computed });
        }
    }
    Ok(())
}

/// Decodes and validates the superblock in the first 4096 bytes of `block`.
///
/// Checks, in this order: length, magic, version (2 to 5), CRC, geometry constants,
/// sizes, format id, reserved bytes.
pub fn decode_superblock(block: &[u8]) -> Result<Superblock, SuperblockError> {
    let Some(b) = block_of(block) else {
        return Err(SuperblockError::Truncated { found: block.len() });
    };
    check_preamble_versions(
        b,
        &SUPERBLOCK_MAGIC,
        SB_VERSION,
        true,
        &[SUPERBLOCK_VERSION_V2, SUPERBLOCK_VERSION_V3, SUPERBLOCK_VERSION_V4, SUPERBLOCK_VERSION],
    )
    .map_err(|e| match e {
        Preamble::BadMagic => SuperblockError::BadMagic,
        Preamble::UnsupportedVersion(v) => SuperblockError::UnsupportedVersion(v),
        Preamble::BadChecksum { stored, computed } => {
            SuperblockError::BadChecksum { stored, computed }
        }
    })?;
    let block_size = get_u32(b, SB_BLOCK_SIZE);
    let segment_sectors = get_u32(b, SB_SEGMENT_SECTORS);
    let lines_per_segment = get_u32(b, SB_LINES);
    if block_size as usize != BLOCK_SIZE
        || u64::from(segment_sectors) != SEGMENT_SECTORS
        || lines_per_segment != LINES_PER_SEGMENT
    {
        return Err(SuperblockError::BadGeometry {
            block_size,
            segment_sectors,
            lines_per_segment,
        });
    }
    let nr_segments = get_u64(b, SB_NR_SEGMENTS);
    let device_sectors = get_u64(b, SB_DEVICE_SECTORS);
    let geometry = match Geometry::from_device_sectors(device_sectors) {
        Ok(g) if u64::from(g.nr_segments()) == nr_segments => g,
        Err(GeometryError::TooLarge { .. }) if nr_segments > MAX_SEGMENTS => {
            return Err(SuperblockError::TooLarge { nr_segments })
        }
        _ => {
            return Err(SuperblockError::InconsistentSize {
                nr_segments,
                device_sectors,
            })
        }
    };
    let format_id = get_u64(b, SB_FORMAT_ID);
    if format_id == 0 {
        return Err(SuperblockError::ZeroFormatId);
    }
    let format_time = get_u64(b, SB_FORMAT_TIME);
    // Version 2: bytes 28..32 are reserved; versions 3 and 4: the log horizon.
    let version = get_u32(b, SB_VERSION);
    let log_horizon = if version == SUPERBLOCK_VERSION_V2 {
        if let Some(offset) = first_nonzero(b, SB_LOG_HORIZON, SB_LOG_HORIZON + 4) {
            return Err(SuperblockError::NonZeroReserved { offset });
        }
        0
    } else {
        let h = get_u32(b, SB_LOG_HORIZON);
        if h == 0 || h > MAX_LOG_HORIZON {
            return Err(SuperblockError::BadLogHorizon(h));
        }
        h
    };
    if let Some(offset) = first_nonzero(b, SB_END, BLOCK_SIZE) {
        return Err(SuperblockError::NonZeroReserved { offset });
    }
    Ok(Superblock {
        geometry,
        device_sectors,
        format_id,
        format_time,
        log_horizon,
        version,
    })
}

/// Checks that a device of `actual_sectors` sectors can hold the cache
/// formatted as `sb`: it must not be smaller than at format time (a larger
/// device is fine; the extra space is unused).
pub fn check_device_size(sb: &Superblock, actual_sectors: u64) -> Result<(), SuperblockError> {
    if actual_sectors < sb.device_sectors {
        Err(SuperblockError::DeviceShrunk {
            formatted: sb.device_sectors,
            actual: actual_sectors,
        })
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Device id sets.

/// A set of device ids (`0..=127`), as a bitmap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceSet {
    bits: [u64; 2],
}

impl DeviceSet {
    /// The empty set.
    pub const EMPTY: DeviceSet = DeviceSet { bits: [0; 2] };

    /// Adds `id`; returns false (and does nothing) if `id > 127`.
    pub fn insert(&mut self, id: u8) -> bool {
        match self.bits.get_mut(usize::from(id >> 6)) {
            Some(w) => {
                *w |= 1u64 << (id & 63);
                true
            }
            None => false,
        }
    }

    /// Removes `id`.
    pub fn remove(&mut self, id: u8) {
        if let Some(w) = self.bits.get_mut(usize::from(id >> 6)) {
            *w &= !(1u64 << (id & 63));
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u8) -> bool {
        match self.bits.get(usize::from(id >> 6)) {
            Some(w) => w & (1u64 << (id & 63)) != 0,
            None => false,
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits == [0; 2]
    }

    /// Number of ids in the set.
    pub fn len(&self) -> u32 {
        self.bits[0].count_ones() + self.bits[1].count_ones()
    }

    /// The ids in `self` but not in `other`.
    pub fn difference(&self, other: &DeviceSet) -> DeviceSet {
        DeviceSet {
            bits: [self.bits[0] & !other.bits[0], self.bits[1] & !other.bits[1]],
        }
    }

    /// The ids in `self` or in `other`.
    pub fn union(&self, other: &DeviceSet) -> DeviceSet {
        DeviceSet {
            bits: [self.bits[0] | other.bits[0], self.bits[1] | other.bits[1]],
        }
    }

    /// The ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0u8..128).filter(move |&id| self.contains(id))
    }
}

impl fmt::Display for DeviceSet {
    /// Comma-separated ids, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "none");
        }
        let mut first = true;
        for id in self.iter() {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Record.

/// What is wrong with a device-registry entry of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryEntryFault {
    /// Entry 0 is not all zero (device id 0 is never valid).
    EntryZeroUsed,
    /// The REGISTERED flag is set iff `backing_sectors != 0`, and it is not.
    FlagMismatch,
    /// A reserved flag bit is set.
    ReservedFlags,
    /// The reserved `u32` is not zero.
    NonZeroReserved,
    /// An identity is recorded for a device id that is not registered.
    IdentityUnregistered,
}

impl fmt::Display for RegistryEntryFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EntryZeroUsed => write!(f, "entry 0 must be all zero"),
            Self::FlagMismatch => {
                write!(
                    f,
                    "the REGISTERED flag must be set exactly when backing_sectors is nonzero"
                )
            }
            Self::ReservedFlags => write!(f, "reserved flag bits are set"),
            Self::NonZeroReserved => write!(f, "the reserved field is not zero"),
            Self::IdentityUnregistered => {
                write!(f, "a backing identity is recorded but the id is not registered")
            }
        }
    }
}

/// Errors of the record decoder and of [`select_record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer than 4096 bytes were given.
    Truncated {
        /// Bytes given.
        found: usize,
    },
    /// The magic is not `WBRSREC\0` (for example a slot never written).
    BadMagic,
    /// A version this code does not understand.
    UnsupportedVersion(u32),
    /// The CRC does not match (for example a torn record write).
    BadChecksum {
        /// CRC stored in the block.
        stored: u32,
        /// CRC computed over the block.
        computed: u32,
    },
    /// The record's format id is 0.
    ZeroFormatId,
    /// The record belongs to another format of the device.
    WrongFormatId {
        /// The superblock's format id.
        expected: u64,
        /// The record's format id.
        found: u64,
    },
    /// The record's generation does not belong in the slot it was read from
    /// (generation `g` lives in slot `g % 2`).
    WrongSlot {
        /// The record's generation.
        generation: u64,
        /// The slot it was read from (0 = block 1, 1 = block 2).
        slot: u32,
    },
    /// A device-registry entry is invalid.
    BadRegistryEntry {
        /// The entry's device id.
        device_id: u8,
        /// What is wrong.
        fault: RegistryEntryFault,
    },
    /// A reserved byte is not zero.
    NonZeroReserved {
        /// Offset of the first nonzero reserved byte.
        offset: usize,
    },
    /// `last_migrated_segment_id` or the generation is beyond
    /// [`MAX_SEGMENT_ID`] (a crafted or corrupt record).
    ImplausibleCounter {
        /// The value found.
        value: u64,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { found } => write!(f, "record truncated: {found} bytes, {BLOCK_SIZE} needed"),
            Self::BadMagic => write!(f, "no record here (bad magic)"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "record has format version {v}, this code supports version {FORMAT_VERSION}"
            ),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 torn or corrupt record"
            ),
            Self::ZeroFormatId => write!(f, "record format id is 0"),
            Self::WrongFormatId { expected, found } => write!(
                f,
                "record belongs to another format (format id {found:#018x}, superblock has {expected:#018x})"
            ),
            Self::WrongSlot { generation, slot } => write!(
                f,
                "record generation {generation} found in slot {slot} but belongs in slot {}",
                generation % 2
            ),
            Self::BadRegistryEntry { device_id, fault } => {
                write!(f, "record registry entry for device id {device_id} is invalid: {fault}")
            }
            Self::NonZeroReserved { offset } => {
                write!(f, "record reserved byte at offset {offset} is not zero")
            }
            Self::ImplausibleCounter { value } => {
                write!(f, "record counter {value} is implausibly large (corrupt record)")
            }
        }
    }
}

impl core::error::Error for RecordError {}

/// Errors about the device registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryError {
    /// A device id outside `1..=127`.
    InvalidDeviceId(u8),
    /// A backing size of 0 cannot be registered (0 means "not registered").
    ZeroSize {
        /// The device id.
        device_id: u8,
    },
    /// Devices own dirty data in the log but are not registered.
    Unregistered {
        /// The device ids.
        devices: DeviceSet,
    },
    /// The device is not registered.
    NotRegistered {
        /// The device id.
        device_id: u8,
    },
    /// The device is registered with another backing size.
    SizeMismatch {
        /// The device id.
        device_id: u8,
        /// Registered backing size in sectors.
        registered: u64,
        /// Actual backing size in sectors.
        actual: u64,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDeviceId(id) => {
                write!(f, "device id {id} is invalid (valid ids are 1..={MAX_DEVICE_ID})")
            }
            Self::ZeroSize { device_id } => {
                write!(f, "device id {device_id}: a backing device of 0 sectors cannot be registered")
            }
            Self::Unregistered { devices } => write!(
                f,
                "device ids {devices} own dirty data in the cache log but are not registered in the record"
            ),
            Self::NotRegistered { device_id } => {
                write!(f, "device id {device_id} is not registered with this cache")
            }
            Self::SizeMismatch { device_id, registered, actual } => write!(
                f,
                "device id {device_id} was registered with {registered} backing sectors but the \
                 device has {actual}"
            ),
        }
    }
}

impl core::error::Error for RegistryError {}

/// The record: migration progress and the device registry, rewritten by the
/// kernel in alternating slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Format id of the device (must equal the superblock's).
    pub format_id: u64,
    /// Generation; written to slot `generation % 2`.
    pub generation: u64,
    /// Every segment id `<=` this is fully written back to the backing
    /// devices.
    pub last_migrated_segment_id: u64,
    backing: [u64; REGISTRY_ENTRIES],
}

/// The backing identity recorded for a disk whose stable name (see
/// Documentation/on-disk-format.md, "Backing identity") is `name`: its
/// 64-bit FNV-1a hash, 1 if that is 0 (0 means "not recorded").
pub fn backing_identity(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if h == 0 {
        1
    } else {
        h
    }
}

fn check_device_id(device_id: u8) -> Result<usize, RegistryError> {
    if device_id == 0 || device_id > MAX_DEVICE_ID {
        Err(RegistryError::InvalidDeviceId(device_id))
    } else {
        Ok(usize::from(device_id))
    }
}

impl Record {
    /// The record of a freshly formatted device: generation 0, nothing
    /// migrated, no device registered.
    pub fn new(format_id: u64) -> Self {
        Self {
            format_id,
            generation: 0,
            last_migrated_segment_id: 0,
            backing: [0; REGISTRY_ENTRIES],
        }
    }

    /// Slot this record is written to: `generation % 2` (0 = block 1,
    /// 1 = block 2).
    pub fn slot(&self) -> u32 {
        (self.generation & 1) as u32
    }

    /// Block number (4 KiB units from the device start) this record is written
    /// to: `1 + generation % 2`.
    pub fn block(&self) -> u64 {
        1 + (self.generation & 1)
    }

    /// Sector this record is written to.
    pub fn sector(&self) -> u64 {
        self.block() * SECTORS_PER_BLOCK
    }

    /// A copy with the generation incremented, ready to be written to the
    /// other slot. `None` if the generation would overflow.
    pub fn next_generation(&self) -> Option<Self> {
        let generation = self.generation.checked_add(1)?;
        Some(Self {
            generation,
            ..*self
        })
    }

    /// Registers `device_id` with a backing device of `backing_sectors`
    /// sectors (replacing any previous size).
    pub fn register(&mut self, device_id: u8, backing_sectors: u64) -> Result<(), RegistryError> {
        let i = check_device_id(device_id)?;
        if backing_sectors == 0 {
            return Err(RegistryError::ZeroSize { device_id });
        }
        match self.backing.get_mut(i) {
            Some(slot) => {
                *slot = backing_sectors;
                Ok(())
            }
            None => Err(RegistryError::InvalidDeviceId(device_id)),
        }
    }

    /// Unregisters `device_id` (no-op if it was not registered).
    pub fn unregister(&mut self, device_id: u8) -> Result<(), RegistryError> {
        let i = check_device_id(device_id)?;
        if let Some(slot) = self.backing.get_mut(i) {
            *slot = 0;
        }
        Ok(())
    }

    /// The registered backing size of `device_id` in sectors, if registered.
    pub fn registered(&self, device_id: u8) -> Option<u64> {
        match self.backing.get(usize::from(device_id)) {
            Some(&s) if s != 0 => Some(s),
            _ => None,
        }
    }

    /// The set of registered device ids.
    pub fn registered_set(&self) -> DeviceSet {
        let mut set = DeviceSet::EMPTY;
        for (id, &s) in (0u8..=MAX_DEVICE_ID).zip(self.backing.iter()) {
            if s != 0 {
                set.insert(id);
            }
        }
        set
    }

    /// Checks that a device attaching as `device_id` with
    /// `backing_sectors` sectors matches the registry.
    pub fn check_device(&self, device_id: u8, backing_sectors: u64) -> Result<(), RegistryError> {
        check_device_id(device_id)?;
        match self.registered(device_id) {
            None => Err(RegistryError::NotRegistered { device_id }),
            Some(registered) if registered != backing_sectors => Err(RegistryError::SizeMismatch {
                device_id,
                registered,
                actual: backing_sectors,
            }),
            Some(_) => Ok(()),
        }
    }
}

/// Encodes `record` into the first 4096 bytes of `out` (CRC filled). Write the
/// result to block [`Record::block`].
pub fn encode_record(record: &Record, out: &mut [u8]) -> Result<(), EncodeError> {
    need(out.len(), BLOCK_SIZE)?;
    if record.format_id == 0 {
        return Err(EncodeError::ZeroFormatId);
    }
    let Some(b) = block_of_mut(out) else {
        return Err(EncodeError::BufferTooSmall {
            needed: BLOCK_SIZE,
            found: 0,
        });
    };
    b.fill(0);
    put_bytes(b, 0, &RECORD_MAGIC);
    put_u32(b, REC_VERSION, FORMAT_VERSION);
    put_u64(b, REC_FORMAT_ID, record.format_id);
    put_u64(b, REC_GENERATION, record.generation);
    put_u64(b, REC_LAST_MIGRATED, record.last_migrated_segment_id);
    let mut off = REC_REGISTRY;
    for &s in record.backing.iter() {
        put_u64(b, off, s);
        put_u32(
            b,
            off + 8,
            if s != 0 { REGISTRY_FLAG_REGISTERED } else { 0 },
        );
        off += REC_ENTRY_SIZE;
    }
    let crc = block_checksum(b, &[], super::crc32c::crc32c_raw_update);
    put_u32(b, CHECKSUM_OFFSET, crc);
    Ok(())
}

/// Encodes `record` like [`encode_record`], with the backing identities
/// `identities[i]` of device ids `i` (see [`backing_identity`]; 0 =
/// unknown); only those of registered ids are written. Identities live in
/// the block, not in [`Record`], which stays small enough for kernel
/// stacks.
pub fn encode_record_with_identities(record: &Record, identities: &[u64], out: &mut [u8]) -> Result<(), EncodeError> {
    encode_record(record, out)?;
    let Some(b) = block_of_mut(out) else {
        return Err(EncodeError::BufferTooSmall {
            needed: BLOCK_SIZE,
            found: 0,
        });
    };
    let mut off = REC_IDENTITY;
    for (&s, &id) in record.backing.iter().zip(identities.iter()) {
        put_u64(b, off, if s != 0 { id } else { 0 });
        off = off.saturating_add(8);
    }
    let crc = block_checksum(b, &[], super::crc32c::crc32c_raw_update);
    put_u32(b, CHECKSUM_OFFSET, crc);
    Ok(())
}

/// The backing identity recorded for `device_id` in a record block that
/// [`decode_record`] accepted; `None` if it has none (the id is not
/// registered, or the record was written before identities were
/// recorded).
pub fn record_identity(block: &[u8], device_id: u8) -> Option<u64> {
    if device_id == 0 || device_id > MAX_DEVICE_ID {
        return None;
    }
    let b = block_of(block)?;
    match get_u64(b, REC_IDENTITY.saturating_add(8usize.saturating_mul(usize::from(device_id)))) {
        0 => None,
        x => Some(x),
    }
}

/// Decodes and validates a record slot (the first 4096 bytes of `block`).
///
/// Checks, in this order: length, magic, version, CRC, format id nonzero,
/// reserved header bytes, registry entries, reserved tail bytes. The format id is not compared with
/// the superblock's here; [`select_record`] does that.
pub fn decode_record(block: &[u8]) -> Result<Record, RecordError> {
    let mut r = Record::new(0);
    decode_record_into(block, &mut r)?;
    Ok(r)
}

/// [`decode_record`] into caller-provided storage (no 1 KiB value on the
/// kernel's stack). On error, `out` holds unspecified (but valid) values.
pub fn decode_record_into(block: &[u8], out: &mut Record) -> Result<(), RecordError> {
    let Some(b) = block_of(block) else {
        return Err(RecordError::Truncated { found: block.len() });
    };
    check_preamble(b, &RECORD_MAGIC, REC_VERSION, true).map_err(|e| match e {
        Preamble::BadMagic => RecordError::BadMagic,
        Preamble::UnsupportedVersion(v) => RecordError::UnsupportedVersion(v),
        Preamble::BadChecksum { stored, computed } => RecordError::BadChecksum { stored, computed },
    })?;
    let format_id = get_u64(b, REC_FORMAT_ID);
    if format_id == 0 {
        return Err(RecordError::ZeroFormatId);
    }
    if let Some(offset) = first_nonzero(b, REC_RESERVED, REC_REGISTRY) {
        return Err(RecordError::NonZeroReserved { offset });
    }
    let backing = &mut out.backing;
    let mut off = REC_REGISTRY;
    for (device_id, slot) in (0u8..=MAX_DEVICE_ID).zip(backing.iter_mut()) {
        let sectors = get_u64(b, off);
        let flags = get_u32(b, off + 8);
        let reserved = get_u32(b, off + 12);
        let fault = if device_id == 0 && (sectors != 0 || flags != 0 || reserved != 0) {
            Some(RegistryEntryFault::EntryZeroUsed)
        } else if flags & !REGISTRY_FLAG_REGISTERED != 0 {
            Some(RegistryEntryFault::ReservedFlags)
        } else if (flags & REGISTRY_FLAG_REGISTERED != 0) != (sectors != 0) {
            Some(RegistryEntryFault::FlagMismatch)
        } else if reserved != 0 {
            Some(RegistryEntryFault::NonZeroReserved)
        } else {
            None
        };
        if let Some(fault) = fault {
            return Err(RecordError::BadRegistryEntry { device_id, fault });
        }
        *slot = sectors;
        off += REC_ENTRY_SIZE;
    }
    let mut off = REC_IDENTITY;
    for (device_id, &sectors) in (0u8..=MAX_DEVICE_ID).zip(backing.iter()) {
        let id = get_u64(b, off);
        off = off.saturating_add(8);
        if id != 0 && sectors == 0 {
            return Err(RecordError::BadRegistryEntry {
                device_id,
                fault: if device_id == 0 {
                    RegistryEntryFault::EntryZeroUsed
                } else {
                    RegistryEntryFault::IdentityUnregistered
                },
            });
        }
    }
    if let Some(offset) = first_nonzero(b, REC_END, BLOCK_SIZE) {
        return Err(RecordError::NonZeroReserved { offset });
    }
    for value in [get_u64(b, REC_GENERATION), get_u64(b, REC_LAST_MIGRATED)] {
        if value > MAX_SEGMENT_ID {
            return Err(RecordError::ImplausibleCounter { value });
        }
    }
    out.format_id = format_id;
    out.generation = get_u64(b, REC_GENERATION);
    out.last_migrated_segment_id = get_u64(b, REC_LAST_MIGRATED);
    Ok(())
}

/// Decodes one record slot and checks it against the superblock's format id
/// and the slot it was read from (0 = block 1, 1 = block 2).
pub fn decode_record_slot(block: &[u8], format_id: u64, slot: u32) -> Result<Record, RecordError> {
    let mut r = Record::new(0);
    decode_record_slot_into(block, format_id, slot, &mut r)?;
    Ok(r)
}

/// [`decode_record_slot`] into caller-provided storage; on error `r` holds
/// unspecified (but valid) values.
pub fn decode_record_slot_into(block: &[u8], format_id: u64, slot: u32, r: &mut Record) -> Result<(), RecordError> {
    decode_record_into(block, r)?;
    if r.format_id != format_id {
        return Err(RecordError::WrongFormatId {
            expected: format_id,
            found: r.format_id,
        });
    }
    if r.slot() != slot {
        return Err(RecordError::WrongSlot {
            generation: r.generation,
            slot,
        });
    }
    Ok(())
}

/// The current record, chosen by [`select_record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordChoice {
    /// The current record (the valid one with the highest generation).
    pub record: Record,
    /// The slot it was read from (0 = block 1, 1 = block 2).
    pub slot: u32,
    /// The other slot: its generation if valid, else why not.
    pub other: Result<u64, RecordError>,
}

/// Where [`select_record_into`] found the current record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSlot {
    /// The slot it was read from (0 = block 1, 1 = block 2).
    pub slot: u32,
    /// The other slot: its generation if valid, else why not.
    pub other: Result<u64, RecordError>,
}

/// [`select_record`] with the current record decoded into `out` (the
/// kernel's resume keeps it on the heap: a [`Record`] is 1 KiB). Each slot
/// is decoded at most twice; the choice is the same as
/// [`select_record`]'s. On error `out` holds unspecified (but valid)
/// values.
pub fn select_record_into(
    block1: &[u8],
    block2: &[u8],
    format_id: u64,
    out: &mut Record,
) -> Result<RecordSlot, NoValidRecord> {
    let b = decode_record_slot_into(block2, format_id, 1, out).map(|()| out.generation);
    let a = decode_record_slot_into(block1, format_id, 0, out).map(|()| out.generation);
    match (a, b) {
        (Ok(ga), Ok(gb)) if ga >= gb => Ok(RecordSlot { slot: 0, other: Ok(gb) }),
        (Ok(ga), Ok(_)) => match decode_record_slot_into(block2, format_id, 1, out) {
            Ok(()) => Ok(RecordSlot { slot: 1, other: Ok(ga) }),
            // Decoded once already: the same bytes give the same answer.
            Err(eb) => match decode_record_slot_into(block1, format_id, 0, out) {
                Ok(()) => Ok(RecordSlot { slot: 0, other: Err(eb) }),
                Err(ea) => Err(NoValidRecord { slot0: ea, slot1: eb }),
            },
        },
        (Ok(_), Err(eb)) => Ok(RecordSlot { slot: 0, other: Err(eb) }),
        (Err(ea), Ok(_)) => match decode_record_slot_into(block2, format_id, 1, out) {
            Ok(()) => Ok(RecordSlot { slot: 1, other: Err(ea) }),
            Err(eb) => Err(NoValidRecord { slot0: ea, slot1: eb }),
        },
        (Err(ea), Err(eb)) => Err(NoValidRecord { slot0: ea, slot1: eb }),
    }
}

/// Neither record slot holds a valid record of this format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoValidRecord {
    /// Why slot 0 (block 1) is invalid.
    pub slot0: RecordError,
    /// Why slot 1 (block 2) is invalid.
    pub slot1: RecordError,
}

impl fmt::Display for NoValidRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no valid record: slot 0 (block 1): {}; slot 1 (block 2): {}",
            self.slot0, self.slot1
        )
    }
}

impl core::error::Error for NoValidRecord {}

/// Decodes both record slots (`block1` = block 1 = slot 0, `block2` = block 2
/// = slot 1), keeps the valid ones of format `format_id` in their proper slot,
/// and returns the one with the highest generation.
pub fn select_record(
    block1: &[u8],
    block2: &[u8],
    format_id: u64,
) -> Result<RecordChoice, NoValidRecord> {
    let a = decode_record_slot(block1, format_id, 0);
    let b = decode_record_slot(block2, format_id, 1);
    match (a, b) {
        (Ok(ra), Ok(rb)) => {
            if ra.generation >= rb.generation {
                Ok(RecordChoice {
                    record: ra,
                    slot: 0,
                    other: Ok(rb.generation),
                })
            } else {
                Ok(RecordChoice {
                    record: rb,
                    slot: 1,
                    other: Ok(ra.generation),
                })
            }
        }
        (Ok(ra), Err(eb)) => Ok(RecordChoice {
            record: ra,
            slot: 0,
            other: Err(eb),
        }),
        (Err(ea), Ok(rb)) => Ok(RecordChoice {
            record: rb,
            slot: 1,
            other: Err(ea),
        }),
        (Err(ea), Err(eb)) => Err(NoValidRecord {
            slot0: ea,
            slot1: eb,
        }),
    }
}

// ---------------------------------------------------------------------------
// Segment header.

/// One line's metadata in a segment header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metablock {
    /// Backing sector of the line (a multiple of 8).
    pub sector: u64,
    /// Owner device id (`1..=127` when `dirty_bits != 0`).
    pub device_id: u8,
    /// Bit `j` set: sector `j` of the 4 KiB line holds dirty data. 0 = the
    /// line holds nothing to replay.
    pub dirty_bits: u8,
    /// Line flags (header versions 3 and 4, byte 10; 0 in version 2
    /// headers): [`METABLOCK_CLEAN`], [`METABLOCK_DIRECT`] (version 4) or 0.
    pub flags: u8,
}

impl Metablock {
    /// An all-zero entry.
    pub const EMPTY: Metablock = Metablock {
        sector: 0,
        device_id: 0,
        dirty_bits: 0,
        flags: 0,
    };

    /// The 4 KiB block number on the backing device (`sector / 8`).
    pub fn block(&self) -> u64 {
        self.sector / SECTORS_PER_BLOCK
    }

    /// Whether the line is clean ([`METABLOCK_CLEAN`]).
    pub fn is_clean(&self) -> bool {
        self.flags & METABLOCK_CLEAN != 0
    }

    /// Whether the line is direct ([`METABLOCK_DIRECT`]).
    pub fn is_direct(&self) -> bool {
        self.flags & METABLOCK_DIRECT != 0
    }

    /// Checks the entry as a used line (`k < nr_lines`) of a header of
    /// version 3 or 4 (the caller refuses flags a version does not have).
    pub fn validate(&self) -> Result<(), MetablockFault> {
        let bad = self.flags & !(METABLOCK_CLEAN | METABLOCK_DIRECT) != 0 || (self.is_clean() && (self.dirty_bits != 0xff || self.is_direct()));
        if bad {
            return Err(MetablockFault::BadFlags(self.flags));
        }
        if self.dirty_bits != 0 {
            if self.device_id == 0 || self.device_id > MAX_DEVICE_ID {
                return Err(MetablockFault::InvalidDeviceId(self.device_id));
            }
            if self.sector & (SECTORS_PER_BLOCK - 1) != 0 {
                return Err(MetablockFault::UnalignedSector(self.sector));
            }
        }
        Ok(())
    }
}

/// What is wrong with a metablock entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetablockFault {
    /// A dirty line's device id is not in `1..=127`.
    InvalidDeviceId(u8),
    /// A dirty line's sector is not a multiple of 8.
    UnalignedSector(u64),
    /// The reserved `u16` (version 2) or byte 11 (version 3) is not zero.
    NonZeroReserved,
    /// Flags other than [`METABLOCK_CLEAN`] and [`METABLOCK_DIRECT`], a
    /// clean line whose `dirty_bits` are not 0xFF or that is direct too,
    /// flags in a version 2 header, or a direct line in a version 3 header.
    BadFlags(u8),
    /// An entry at or past `nr_lines` is not all zero.
    UnusedNotZero,
    /// A discard entry with an empty or overflowing range.
    BadRange,
}

impl fmt::Display for MetablockFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDeviceId(id) => {
                write!(
                    f,
                    "dirty line with invalid device id {id} (valid: 1..={MAX_DEVICE_ID})"
                )
            }
            Self::UnalignedSector(s) => write!(f, "dirty line at sector {s}, not a multiple of 8"),
            Self::NonZeroReserved => write!(f, "reserved field is not zero"),
            Self::BadFlags(x) => write!(f, "bad line flags {x:#04x} (a clean line has all 8 sectors and only flag bit 0 is defined, in version 3 headers)"),
            Self::UnusedNotZero => write!(f, "entry past nr_lines is not all zero"),
            Self::BadRange => write!(f, "discard entry with an empty or overflowing range"),
        }
    }
}

/// A logged discard: sectors `sector .. sector + nr_sectors` of device
/// `device_id` were discarded before this segment was written. On replay it
/// removes those sectors from every line of *earlier* segments (lines of
/// the same segment already carry only what survived the discard).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discard {
    /// First backing sector discarded.
    pub sector: u64,
    /// Number of sectors (`1..`).
    pub nr_sectors: u32,
    /// Device id (`1..=127`).
    pub device_id: u8,
}

impl Discard {
    /// An all-zero entry.
    pub const EMPTY: Discard = Discard {
        sector: 0,
        nr_sectors: 0,
        device_id: 0,
    };

    /// Checks a used entry.
    pub fn validate(&self) -> Result<(), MetablockFault> {
        if self.device_id == 0 || self.device_id > MAX_DEVICE_ID {
            return Err(MetablockFault::InvalidDeviceId(self.device_id));
        }
        if self.nr_sectors == 0
            || self.nr_sectors > MAX_DISCARD_SECTORS
            || self.sector.checked_add(u64::from(self.nr_sectors)).is_none()
        {
            return Err(MetablockFault::BadRange);
        }
        Ok(())
    }
}

/// Errors of the segment-header decoder and of the segment checksum check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// A buffer is too short.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        found: usize,
    },
    /// The magic is not `WBRSSEG\0` (never written, zeroed, or garbage).
    BadMagic,
    /// A version this code does not understand.
    UnsupportedVersion(u32),
    /// The header belongs to another format of the device.
    WrongFormatId {
        /// The superblock's format id.
        expected: u64,
        /// The header's format id.
        found: u64,
    },
    /// The header is not the segment expected in this slot (an older lap, an
    /// id going backwards, id 0...).
    WrongId {
        /// Id expected.
        expected: u64,
        /// Id found.
        found: u64,
    },
    /// `nr_lines` is larger than 255.
    TooManyLines(u32),
    /// `nr_discards` is larger than [`MAX_DISCARDS`].
    TooManyDiscards(u32),
    /// A discard entry is invalid.
    BadDiscard {
        /// Entry number.
        index: u32,
        /// What is wrong.
        reason: MetablockFault,
    },
    /// A metablock entry is invalid.
    BadMetablock {
        /// Entry number `k`.
        index: u32,
        /// What is wrong.
        reason: MetablockFault,
    },
    /// A reserved header byte is not zero.
    NonZeroReserved {
        /// Offset of the first nonzero reserved byte.
        offset: usize,
    },
    /// The CRC over the header and the data does not match (torn or corrupt
    /// segment).
    BadChecksum {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over header and data.
        computed: u32,
    },
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, found } => {
                write!(f, "segment truncated: {needed} bytes needed, {found} available")
            }
            Self::BadMagic => write!(f, "no segment header (bad magic): never written or overwritten"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "segment header has format version {v}, this code supports versions {FORMAT_VERSION} to {SEGMENT_VERSION_V4}"
            ),
            Self::WrongFormatId { expected, found } => write!(
                f,
                "segment header from another format (format id {found:#018x}, superblock has {expected:#018x})"
            ),
            Self::WrongId { expected, found } => {
                write!(f, "segment id {found} found where id {expected} was expected")
            }
            Self::TooManyLines(n) => {
                write!(f, "segment header claims {n} lines, at most {LINES_PER_SEGMENT}")
            }
            Self::BadMetablock { index, reason } => write!(f, "metablock {index} is invalid: {reason}"),
            Self::TooManyDiscards(n) => {
                write!(f, "segment header claims {n} discard entries, at most {MAX_DISCARDS}")
            }
            Self::BadDiscard { index, reason } => write!(f, "discard entry {index} is invalid: {reason}"),
            Self::NonZeroReserved { offset } => {
                write!(f, "segment header reserved byte at offset {offset} is not zero")
            }
            Self::BadChecksum { stored, computed } => write!(
                f,
                "segment checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 torn or corrupt segment"
            ),
        }
    }
}

impl core::error::Error for SegmentError {}

/// A decoded segment header. The metablocks are held in a fixed array (no
/// allocation); only the first `nr_lines` entries are meaningful, the others
/// are [`Metablock::EMPTY`] after decoding.
///
/// The struct is about 4 KiB: kernel code should keep it in allocated
/// memory and decode with [`decode_segment_header_into`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format id of the device.
    pub format_id: u64,
    /// Segment id (`>= 1`).
    pub id: u64,
    /// Number of lines written (`0..=255`).
    pub nr_lines: u32,
    /// Every segment id `<=` this was durable on the cache device when this
    /// segment was written (the writer's knowledge; 0 = none). Recovery uses
    /// it to tell a torn tail from a corrupt segment that was promised.
    pub durable_upto: u64,
    /// Number of discard entries (`0..=MAX_DISCARDS`).
    pub nr_discards: u32,
    /// Discard entry `i` (only `0..nr_discards` are meaningful).
    pub discards: [Discard; MAX_DISCARDS],
    /// CRC stored in the header (filled by the decoder; ignored by the
    /// encoders, which compute it).
    pub checksum: u32,
    /// Metablock `k` describes line `k`.
    pub metablocks: [Metablock; LINES_PER_SEGMENT as usize],
    /// Header version: [`FORMAT_VERSION`] (2, no line flags) or
    /// [`SEGMENT_VERSION_V3`] (metablock flags). Filled by the decoder; the
    /// encoder writes it (the engine sets it from
    /// [`Superblock::segment_version`]).
    pub version: u32,
}

impl SegmentHeader {
    /// An empty header (no lines) for segment `id` of format `format_id`.
    pub const fn new(format_id: u64, id: u64) -> Self {
        Self {
            format_id,
            id,
            nr_lines: 0,
            durable_upto: 0,
            nr_discards: 0,
            discards: [Discard::EMPTY; MAX_DISCARDS],
            checksum: 0,
            metablocks: [Metablock::EMPTY; LINES_PER_SEGMENT as usize],
            version: FORMAT_VERSION,
        }
    }

    /// Resets `self` in place to [`SegmentHeader::new`]`(format_id, id)`.
    pub fn reset(&mut self, format_id: u64, id: u64) {
        self.format_id = format_id;
        self.id = id;
        self.nr_lines = 0;
        self.durable_upto = 0;
        self.nr_discards = 0;
        self.discards = [Discard::EMPTY; MAX_DISCARDS];
        self.checksum = 0;
        self.metablocks = [Metablock::EMPTY; LINES_PER_SEGMENT as usize];
        self.version = FORMAT_VERSION;
    }

    /// The used discard entries.
    pub fn discard_entries(&self) -> &[Discard] {
        self.discards
            .get(..self.nr_discards as usize)
            .unwrap_or(&self.discards)
    }

    /// Appends a discard entry; returns its number.
    pub fn push_discard(&mut self, d: Discard) -> Result<u32, SegmentError> {
        let i = self.nr_discards;
        match self.discards.get_mut(i as usize) {
            Some(slot) => {
                *slot = d;
                self.nr_discards = i + 1;
                Ok(i)
            }
            None => Err(SegmentError::TooManyDiscards(i.saturating_add(1))),
        }
    }

    /// The used metablocks (`0..nr_lines`, or all 255 if `nr_lines` is out
    /// of range).
    pub fn lines(&self) -> &[Metablock] {
        self.metablocks
            .get(..self.nr_lines as usize)
            .unwrap_or(&self.metablocks)
    }

    /// Appends a line; returns its number `k`.
    pub fn push(&mut self, mb: Metablock) -> Result<u32, SegmentError> {
        let k = self.nr_lines;
        match self.metablocks.get_mut(k as usize) {
            Some(slot) => {
                *slot = mb;
                self.nr_lines = k + 1;
                Ok(k)
            }
            None => Err(SegmentError::TooManyLines(k.saturating_add(1))),
        }
    }

    /// Whether no more line fits.
    pub fn is_full(&self) -> bool {
        self.nr_lines >= LINES_PER_SEGMENT
    }

    /// Bytes of data that follow the header on disk (`nr_lines * 4096`).
    pub fn data_len(&self) -> Result<usize, SegmentError> {
        if self.nr_lines > LINES_PER_SEGMENT {
            return Err(SegmentError::TooManyLines(self.nr_lines));
        }
        Ok(self.nr_lines as usize * BLOCK_SIZE)
    }

    /// Checks the header as the decoder would (except for identity and CRC).
    pub fn validate(&self) -> Result<(), SegmentError> {
        if self.nr_lines > LINES_PER_SEGMENT {
            return Err(SegmentError::TooManyLines(self.nr_lines));
        }
        if !matches!(self.version, FORMAT_VERSION | SEGMENT_VERSION_V3 | SEGMENT_VERSION_V4) {
            return Err(SegmentError::UnsupportedVersion(self.version));
        }
        for (k, mb) in (0..LINES_PER_SEGMENT).zip(self.metablocks.iter()) {
            let r = if k < self.nr_lines {
                if (mb.flags != 0 && self.version == FORMAT_VERSION) || (mb.is_direct() && self.version < SEGMENT_VERSION_V4) {
                    Err(MetablockFault::BadFlags(mb.flags))
                } else {
                    mb.validate()
                }
            } else if *mb != Metablock::EMPTY {
                Err(MetablockFault::UnusedNotZero)
            } else {
                Ok(())
            };
            if let Err(reason) = r {
                return Err(SegmentError::BadMetablock { index: k, reason });
            }
        }
        if self.nr_discards as usize > MAX_DISCARDS {
            return Err(SegmentError::TooManyDiscards(self.nr_discards));
        }
        for (i, d) in (0..MAX_DISCARDS as u32).zip(self.discards.iter()) {
            let r = if i < self.nr_discards {
                d.validate()
            } else if *d != Discard::EMPTY {
                Err(MetablockFault::UnusedNotZero)
            } else {
                Ok(())
            };
            if let Err(reason) = r {
                return Err(SegmentError::BadDiscard { index: i, reason });
            }
        }
        Ok(())
    }
}

impl Default for SegmentHeader {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

/// Writes the header fields of `h` into the first 4096 bytes of `out`, with
/// the CRC field set to zero. The caller then computes the checksum (see
/// [`segment_checksum_stream`]) and stores it with [`set_segment_checksum`].
/// Most callers want [`encode_segment_header`] or [`encode_segment_buffer`].
pub fn encode_segment_header_fields(h: &SegmentHeader, out: &mut [u8]) -> Result<(), EncodeError> {
    need(out.len(), BLOCK_SIZE)?;
    if h.format_id == 0 {
        return Err(EncodeError::ZeroFormatId);
    }
    if h.id == 0 {
        return Err(EncodeError::ZeroSegmentId);
    }
    h.validate().map_err(EncodeError::InvalidSegment)?;
    let Some(b) = block_of_mut(out) else {
        return Err(EncodeError::BufferTooSmall {
            needed: BLOCK_SIZE,
            found: 0,
        });
    };
    b.fill(0);
    put_bytes(b, 0, &SEGMENT_MAGIC);
    put_u32(b, SEG_VERSION, h.version);
    put_u64(b, SEG_FORMAT_ID, h.format_id);
    put_u64(b, SEG_ID, h.id);
    put_u32(b, SEG_NR_LINES, h.nr_lines);
    put_u64(b, SEG_DURABLE_UPTO, h.durable_upto);
    put_u32(b, SEG_NR_DISCARDS, h.nr_discards);
    let mut off = SEG_METABLOCKS;
    for mb in h.lines() {
        put_u64(b, off, mb.sector);
        put_u8(b, off + 8, mb.device_id);
        put_u8(b, off + 9, mb.dirty_bits);
        put_u8(b, off + 10, mb.flags);
        off += METABLOCK_SIZE;
    }
    let mut off = SEG_DISCARDS;
    for d in h.discard_entries() {
        put_u64(b, off, d.sector);
        put_u32(b, off + 8, d.nr_sectors);
        put_u8(b, off + 12, d.device_id);
        off += DISCARD_ENTRY_SIZE;
    }
    Ok(())
}

/// Stores `crc` in the CRC field of the header block `out`.
pub fn set_segment_checksum(out: &mut [u8], crc: u32) -> Result<(), EncodeError> {
    need(out.len(), BLOCK_SIZE)?;
    put_u32(out, CHECKSUM_OFFSET, crc);
    Ok(())
}

/// Starts a streaming CRC32C segment checksum (the segments of superblock
/// versions 2 and 3): the returned state has been fed the header block with
/// its CRC field treated as zero (the block is not copied). Feed the
/// `nr_lines` data blocks in order, then call [`Crc32c::finish`].
pub fn segment_checksum_stream(header_block: &[u8], update: UpdateFn) -> Crc32c<UpdateFn> {
    let mut c = Crc32c::with_update(update);
    feed_block_without_checksum(&mut c, header_block);
    c
}

/// The segment checksum: over `header_block` with bytes 12..16 treated as
/// zero (fed as bytes 0..12, four zero bytes, bytes 16..), then `data` (the
/// `nr_lines` data blocks), CRC32C or the low 32 bits of xxh64 as `sum`
/// says. Nothing is copied. `header_block` should be exactly the 4096-byte
/// header block.
pub fn segment_checksum(header_block: &[u8], data: &[u8], sum: SegmentSum) -> u32 {
    match sum {
        SegmentSum::Crc32c(update) => block_checksum(header_block, data, update),
        // The low half: the field holds 32 bits.
        SegmentSum::Xxh64(xxh64) => xxh64_header(header_block, data, xxh64) as u32,
    }
}

/// The runs of consecutive lines of `h` that are not direct
/// ([`METABLOCK_DIRECT`]), in order, as `(first line, lines)`: what of the
/// segment's data its checksum covers and the flusher writes from the RAM
/// buffer. Without direct lines: one run `(0, nr_lines)` (none if the
/// segment has no lines).
pub fn segment_runs(h: &SegmentHeader) -> impl Iterator<Item = (u32, u32)> + '_ {
    let lines = h.lines();
    let mut k = 0usize;
    core::iter::from_fn(move || {
        while lines.get(k).is_some_and(|m| m.is_direct()) {
            k = k.saturating_add(1);
        }
        let start = k;
        while lines.get(k).is_some_and(|m| !m.is_direct()) {
            k = k.saturating_add(1);
        }
        (k > start).then(|| (start as u32, k.saturating_sub(start) as u32))
    })
}

/// The checksum of segment `h`: [`segment_checksum`] when it has no
/// direct lines. Otherwise only the runs of [`segment_runs`] are covered:
/// CRC32C over the header block (CRC field as zero) followed by the runs'
/// data; xxh64 over the header block and the first run if it starts at
/// line 0 (else nothing after the header), then for every further run
/// `x = xxh64(le64(x) ++ run)`. The low 32 bits are stored. `data` holds
/// the `nr_lines` data blocks as laid out on disk (the direct lines'
/// bytes are not read).
pub fn segment_checksum_of(h: &SegmentHeader, header_block: &[u8], data: &[u8], sum: SegmentSum) -> u32 {
    if !h.lines().iter().any(|m| m.is_direct()) {
        return segment_checksum(header_block, data, sum);
    }
    let run = |(k, n): (u32, u32)| {
        let from = (k as usize).saturating_mul(BLOCK_SIZE);
        data.get(from..from.saturating_add((n as usize).saturating_mul(BLOCK_SIZE))).unwrap_or(&[])
    };
    match sum {
        SegmentSum::Crc32c(update) => {
            let mut c = segment_checksum_stream(header_block, update);
            for r in segment_runs(h) {
                c.update(run(r));
            }
            c.finish()
        }
        SegmentSum::Xxh64(xxh64) => {
            let mut runs = segment_runs(h).peekable();
            let first = match runs.peek() {
                Some(&(0, n)) => {
                    let _ = runs.next();
                    run((0, n))
                }
                _ => &[],
            };
            let mut acc = xxh64_header(header_block, first, xxh64);
            for r in runs {
                acc = xxh64([&acc.to_le_bytes(), run(r), &[], &[]]);
            }
            acc as u32
        }
    }
}

/// The full 64-bit xxh64 of a header block (CRC field as zero) and `data`.
fn xxh64_header(header_block: &[u8], data: &[u8], xxh64: Xxh64Fn) -> u64 {
    let head = header_block.get(..CHECKSUM_OFFSET).unwrap_or(header_block);
    let zeros = [0u8; 4];
    let crc_len = header_block.len().saturating_sub(CHECKSUM_OFFSET).min(4);
    let tail = header_block.get(CHECKSUM_OFFSET + 4..).unwrap_or(&[]);
    let z = zeros.get(..crc_len).unwrap_or(&[]);
    xxh64([head, z, tail, data])
}

/// An xxh64 with seed 0 of the concatenation of the four `pieces` (the
/// kernel passes one over its `xxh64_reset`/`xxh64_update`/`xxh64_digest`,
/// the tools one over the `xxhash-rust` crate). A segment checksum is four
/// pieces: the header up to its checksum field, the field as zeros, the
/// rest of the header, the data.
pub type Xxh64Fn = fn(pieces: [&[u8]; 4]) -> u64;

/// How a cache's segments are checksummed, as its superblock's version says
/// ([`Superblock::segment_sum`]), with the implementation to use.
///
/// Both store 32 bits at offset 12 of the header and cover the same bytes.
/// CRC32C costs about one table look-up per byte on CPUs (or emulators)
/// without a fast CRC instruction, which made it the bottleneck of large
/// writes; xxh64 mixes 8 bytes per multiply and detects a torn segment as
/// well (a stale or garbage segment passes with probability 2^-32 either
/// way).
#[derive(Clone, Copy, Debug)]
pub enum SegmentSum {
    /// CRC32C (superblock versions 2 and 3) with this raw update function
    /// (see [`crate::crc32c`]).
    Crc32c(UpdateFn),
    /// The low 32 bits of xxh64 with seed 0 (superblock version 4).
    Xxh64(Xxh64Fn),
}

/// Encodes `h` into the header block `out` (4096 bytes) and fills the CRC,
/// computed over the header and `data`, which must hold at least the
/// `nr_lines` data blocks (only the first `nr_lines * 4096` bytes are used).
/// Returns the CRC.
pub fn encode_segment_header(
    h: &SegmentHeader,
    out: &mut [u8],
    data: &[u8],
    sum: SegmentSum,
) -> Result<u32, EncodeError> {
    encode_segment_header_fields(h, out)?;
    let len = h.data_len().map_err(EncodeError::InvalidSegment)?;
    let Some(data) = data.get(..len) else {
        return Err(EncodeError::BufferTooSmall {
            needed: len,
            found: data.len(),
        });
    };
    let Some(b) = block_of_mut(out) else {
        return Err(EncodeError::BufferTooSmall {
            needed: BLOCK_SIZE,
            found: 0,
        });
    };
    let crc = segment_checksum_of(h, b, data, sum);
    put_u32(b, CHECKSUM_OFFSET, crc);
    Ok(crc)
}

/// Encodes `h` in place at the start of `buf`, a segment buffer laid out
/// exactly like the segment on disk (header block, then line `k` at byte
/// `4096 * (k + 1)`), and fills the CRC computed in one pass over the first
/// `(nr_lines + 1) * 4096` bytes. The caller then writes those bytes to the
/// segment's start sector in one I/O. Returns the CRC.
pub fn encode_segment_buffer(
    h: &SegmentHeader,
    buf: &mut [u8],
    sum: SegmentSum,
) -> Result<u32, EncodeError> {
    let len = h.data_len().map_err(EncodeError::InvalidSegment)?;
    need(buf.len(), BLOCK_SIZE + len)?;
    let found = buf.len();
    let Some((head, data)) = buf.split_first_chunk_mut::<BLOCK_SIZE>() else {
        return Err(EncodeError::BufferTooSmall {
            needed: BLOCK_SIZE,
            found,
        });
    };
    encode_segment_header(h, head, data, sum)
}

fn decode_segment_impl(
    block: &[u8],
    identity: Option<(u64, u64)>,
    out: &mut SegmentHeader,
) -> Result<(), SegmentError> {
    let Some(b) = block_of(block) else {
        return Err(SegmentError::Truncated {
            needed: BLOCK_SIZE,
            found: block.len(),
        });
    };
    check_preamble_versions(b, &SEGMENT_MAGIC, SEG_VERSION, false, &[FORMAT_VERSION, SEGMENT_VERSION_V3, SEGMENT_VERSION_V4]).map_err(|e| match e {
        Preamble::BadMagic => SegmentError::BadMagic,
        Preamble::UnsupportedVersion(v) => SegmentError::UnsupportedVersion(v),
        // Not checked here: the segment CRC covers the data too.
        Preamble::BadChecksum { stored, computed } => {
            SegmentError::BadChecksum { stored, computed }
        }
    })?;
    let format_id = get_u64(b, SEG_FORMAT_ID);
    let id = get_u64(b, SEG_ID);
    if let Some((expected_format, expected_id)) = identity {
        if format_id != expected_format || format_id == 0 {
            return Err(SegmentError::WrongFormatId {
                expected: expected_format,
                found: format_id,
            });
        }
        if id != expected_id || id == 0 {
            return Err(SegmentError::WrongId {
                expected: expected_id,
                found: id,
            });
        }
    }
    let version = get_u32(b, SEG_VERSION);
    let nr_lines = get_u32(b, SEG_NR_LINES);
    if nr_lines > LINES_PER_SEGMENT {
        return Err(SegmentError::TooManyLines(nr_lines));
    }
    let nr_discards = get_u32(b, SEG_NR_DISCARDS);
    if nr_discards as usize > MAX_DISCARDS {
        return Err(SegmentError::TooManyDiscards(nr_discards));
    }
    if let Some(offset) = first_nonzero(b, SEG_RESERVED, SEG_METABLOCKS) {
        return Err(SegmentError::NonZeroReserved { offset });
    }
    out.format_id = format_id;
    out.id = id;
    out.nr_lines = nr_lines;
    out.durable_upto = get_u64(b, SEG_DURABLE_UPTO);
    out.nr_discards = nr_discards;
    out.checksum = get_u32(b, CHECKSUM_OFFSET);
    out.version = version;
    let mut off = SEG_METABLOCKS;
    for (k, slot) in (0..LINES_PER_SEGMENT).zip(out.metablocks.iter_mut()) {
        let mb = Metablock {
            sector: get_u64(b, off),
            device_id: get_u8(b, off + 8),
            dirty_bits: get_u8(b, off + 9),
            flags: if version == FORMAT_VERSION { 0 } else { get_u8(b, off + 10) },
        };
        // Version 2: bytes 10..12 reserved; version 3: byte 10 is `flags`.
        let reserved = if version == FORMAT_VERSION {
            u16::from_le_bytes([get_u8(b, off + 10), get_u8(b, off + 11)])
        } else {
            u16::from(get_u8(b, off + 11))
        };
        let fault = if k < nr_lines {
            if reserved != 0 {
                Err(MetablockFault::NonZeroReserved)
            } else if mb.is_direct() && version < SEGMENT_VERSION_V4 {
                Err(MetablockFault::BadFlags(mb.flags))
            } else {
                mb.validate()
            }
        } else if reserved != 0 || mb != Metablock::EMPTY {
            Err(MetablockFault::UnusedNotZero)
        } else {
            Ok(())
        };
        if let Err(reason) = fault {
            return Err(SegmentError::BadMetablock { index: k, reason });
        }
        *slot = mb;
        off += METABLOCK_SIZE;
    }
    let mut off = SEG_DISCARDS;
    for (i, slot) in (0..MAX_DISCARDS as u32).zip(out.discards.iter_mut()) {
        let d = Discard {
            sector: get_u64(b, off),
            nr_sectors: get_u32(b, off + 8),
            device_id: get_u8(b, off + 12),
        };
        let reserved = first_nonzero(b, off + 13, off + DISCARD_ENTRY_SIZE).is_some();
        let fault = if i < nr_discards {
            if reserved {
                Err(MetablockFault::NonZeroReserved)
            } else {
                d.validate()
            }
        } else if reserved || d != Discard::EMPTY {
            Err(MetablockFault::UnusedNotZero)
        } else {
            Ok(())
        };
        if let Err(reason) = fault {
            return Err(SegmentError::BadDiscard { index: i, reason });
        }
        *slot = d;
        off += DISCARD_ENTRY_SIZE;
    }
    if let Some(offset) = first_nonzero(b, SEG_DISCARDS_END, BLOCK_SIZE) {
        return Err(SegmentError::NonZeroReserved { offset });
    }
    Ok(())
}

/// Decodes and validates the segment header in the first 4096 bytes of
/// `block`, which must be segment `expected_id` of format `format_id`.
/// Everything but the CRC is checked (see [`verify_segment`]).
///
/// Checks, in this order: length, magic, version, format id, id, `nr_lines`,
/// reserved header bytes, metablocks (`k` increasing), reserved tail bytes.
pub fn decode_segment_header(
    block: &[u8],
    format_id: u64,
    expected_id: u64,
) -> Result<SegmentHeader, SegmentError> {
    let mut h = SegmentHeader::new(0, 0);
    decode_segment_header_into(block, format_id, expected_id, &mut h)?;
    Ok(h)
}

/// [`decode_segment_header`] into caller-provided storage (no 4 KiB value on
/// the stack). On error, `out` holds unspecified (but valid) values.
pub fn decode_segment_header_into(
    block: &[u8],
    format_id: u64,
    expected_id: u64,
    out: &mut SegmentHeader,
) -> Result<(), SegmentError> {
    decode_segment_impl(block, Some((format_id, expected_id)), out)
}

/// Whether `block` starts like a segment header of `format_id` naming
/// segment `id` (magic, format id and id fields), whatever the rest holds.
/// Recovery treats a header that does but fails its other checks like one
/// whose checksum fails: the slot's write was torn.
pub fn segment_header_names(block: &[u8], format_id: u64, id: u64) -> bool {
    block.len() >= BLOCK_SIZE
        && block.get(..8) == Some(&SEGMENT_MAGIC[..])
        && format_id != 0
        && id != 0
        && get_u64(block, SEG_FORMAT_ID) == format_id
        && get_u64(block, SEG_ID) == id
}

/// Decodes a segment header without checking its format id and id (for
/// inspection tools). Everything else is validated as by
/// [`decode_segment_header`].
pub fn parse_segment_header(block: &[u8]) -> Result<SegmentHeader, SegmentError> {
    let mut h = SegmentHeader::new(0, 0);
    decode_segment_impl(block, None, &mut h)?;
    Ok(h)
}

/// Verifies the CRC of a segment: `header` was decoded from `header_block`;
/// `data` holds at least its `nr_lines` data blocks (only those are used).
pub fn verify_segment(
    header: &SegmentHeader,
    header_block: &[u8],
    data: &[u8],
    sum: SegmentSum,
) -> Result<(), SegmentError> {
    let Some(hb) = block_of(header_block) else {
        return Err(SegmentError::Truncated {
            needed: BLOCK_SIZE,
            found: header_block.len(),
        });
    };
    let len = header.data_len()?;
    let Some(data) = data.get(..len) else {
        return Err(SegmentError::Truncated {
            needed: len,
            found: data.len(),
        });
    };
    let computed = segment_checksum_of(header, hb, data, sum);
    if computed != header.checksum {
        return Err(SegmentError::BadChecksum {
            stored: header.checksum,
            computed,
        });
    }
    Ok(())
}

/// [`verify_segment`] for a buffer laid out like the segment on disk (header
/// block followed by the data blocks).
pub fn verify_segment_buffer(
    header: &SegmentHeader,
    buf: &[u8],
    sum: SegmentSum,
) -> Result<(), SegmentError> {
    let Some(hb) = block_of(buf) else {
        return Err(SegmentError::Truncated {
            needed: BLOCK_SIZE,
            found: buf.len(),
        });
    };
    let data = buf.get(BLOCK_SIZE..).unwrap_or(&[]);
    verify_segment(header, hb, data, sum)
}

/// Decodes `header_block` as segment `expected_id` of format `format_id` into
/// `out` and verifies its CRC over `data`: everything recovery needs to
/// decide whether the segment is part of the log.
pub fn check_segment(
    header_block: &[u8],
    data: &[u8],
    format_id: u64,
    expected_id: u64,
    sum: SegmentSum,
    out: &mut SegmentHeader,
) -> Result<(), SegmentError> {
    decode_segment_header_into(header_block, format_id, expected_id, out)?;
    verify_segment(out, header_block, data, sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_constants() {
        assert_eq!(REC_IDENTITY, 2112);
        assert_eq!(REC_END, 3136);
        assert_eq!(SEG_END, 3124);
        assert_eq!(SEG_DISCARDS_END, 4084);
        assert_eq!(SECTORS_PER_BLOCK as usize * SECTOR_SIZE, BLOCK_SIZE);
        assert_eq!(
            BLOCKS_PER_SEGMENT as u64 * SECTORS_PER_BLOCK,
            SEGMENT_SECTORS
        );
        assert_eq!(LINES_PER_SEGMENT as usize + 1, BLOCKS_PER_SEGMENT);
        // Every line number fits a 40-bit index link; slots fit a u32.
        assert!(MAX_SEGMENTS * u64::from(LINES_PER_SEGMENT) < super::super::index::MAX_LINES);
        assert!(u32::try_from(MAX_SEGMENTS).is_ok());
    }

    #[test]
    fn geometry_beyond_16_tib() {
        // A 20 TiB cache: more than 2^32 lines, line numbers past u32.
        let sectors = 20u64 << 31;
        let g = Geometry::from_device_sectors(sectors).unwrap();
        assert_eq!(u64::from(g.nr_segments()), sectors / 2048 - 1);
        assert!(g.nr_lines() > u64::from(u32::MAX));
        let last = g.nr_segments() - 1;
        let idx = g.line_index(last, 254).unwrap();
        assert_eq!(idx, g.nr_lines() - 1);
        assert_eq!(g.line_location(idx), Ok((last, 254)));
        assert_eq!(
            g.line_sector_of_index(idx),
            Ok((u64::from(last) + 1) * SEGMENT_SECTORS + 255 * SECTORS_PER_BLOCK)
        );
        assert!(g.line_sector_of_index(g.nr_lines()).is_err());
        // The largest cache: 2^32 - 1 slots.
        let g = Geometry::from_nr_segments(MAX_SEGMENTS).unwrap();
        assert_eq!(g.line_index(g.nr_segments() - 1, 254), Ok(g.nr_lines() - 1));
        assert!(Geometry::from_nr_segments(MAX_SEGMENTS + 1).is_err());
    }

    #[test]
    fn geometry_basics() {
        assert!(Geometry::from_device_sectors(3 * 2048 - 1).is_err());
        let g = Geometry::from_device_sectors(3 * 2048 + 100).unwrap();
        assert_eq!(g.nr_segments(), 2);
        assert_eq!(g.segment_start_sector(1), Ok(4096));
        assert_eq!(g.line_sector(1, 254), Ok(4096 + 8 * 255));
        assert_eq!(g.slot_of_id(3), Ok(0));
        assert_eq!(g.slot_of_id(0), Err(GeometryError::ZeroSegmentId));
        assert_eq!(g.line_index(1, 3), Ok(258));
        assert_eq!(g.line_location(258), Ok((1, 3)));
        assert!(g.line_location(510).is_err());
        assert!(g.line_index(2, 0).is_err());
        assert!(g.line_index(0, 255).is_err());
    }
}
