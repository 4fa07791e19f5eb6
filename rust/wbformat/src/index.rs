// SPDX-License-Identifier: GPL-2.0

//! The metablock index: which cache line holds the newest dirty data of each
//! 512-byte sector of each 4 KiB block of each backing device.
//!
//! Keys are `(device_id, block)` with `block = backing sector / 8`. Lines are
//! identified by their global index (see [`Geometry`](super::format::Geometry)),
//! a `u64` below [`MAX_LINES`]; [`NO_LINE`] means none. The storage is passed
//! in by the caller (one [`LineMeta`] per cache line and an array of
//! [`Link`] hash buckets, see [`buckets_for`]), so the index never allocates.
//!
//! # Layout (13 bytes per line + 5 bytes per bucket)
//!
//! A [`LineMeta`] is 13 bytes with alignment 1: one 64-bit word packing the
//! dirty bits (bits 0..8), the device id (bits 8..15, 7 bits for ids
//! `1..=127`), the block number (bits 15..63, 48 bits, so blocks below
//! [`BLOCK_LIMIT`] = 2^48, i.e. backing devices below 2^51 sectors = 1 EiB)
//! and the CLEAN flag (bit 63: the line is a *clean* line, see below),
//! followed by a 40-bit [`Link`] to the next line of the same hash bucket.
//! A bucket is a 40-bit [`Link`] to the first line of its list. With
//! [`buckets_for`] giving `max(1, nr_lines / 2)` buckets the index takes at
//! most `13 + 5/2 = 15.5` bytes per cache line.
//!
//! # Invariant (disjoint dirty sets, newest first)
//!
//! Every line holding dirty data is in the list of the bucket its key hashes
//! to; a line whose dirty set is empty is in no list (it is free or clean).
//! The lines of one key appear in their bucket list newest first: a line that
//! becomes dirty is inserted at the front of the list, and replay writes in
//! log order. Lines of other keys may sit in between. The dirty sets of the
//! lines of one key are pairwise disjoint: each dirty sector of a block is
//! owned by exactly one line, the one with the newest data for that sector.
//! Hence a key has at most 8 lines, and every operation is one or two walks
//! of one bucket list (expected length at most about 2 keys' lines).
//!
//! Writing new data for some sectors therefore takes those sectors away from
//! every older line, which is exactly what makes replay after a crash correct:
//! a line fully superseded by newer data becomes clean and is never written
//! back over the newer data.
//!
//! # Clean lines (read caching)
//!
//! A *clean* line ([`Index::write_clean`]) holds a copy of all 8 sectors of
//! its block that equals the backing device's. It is linked like a dirty
//! line and owns all 8 sectors for reads ([`Index::owner`],
//! [`Index::read_run`], [`Index::lookup`]), but it is not dirty:
//! [`Index::dirty`] is 0 and [`Index::key_of`] is `None` for it, so
//! write-back never sees it. A key with a clean line has no other line.
//! Any write or discard of the block drops the clean line (a write into the
//! clean line itself turns it into a dirty line of all 8 sectors); reusing
//! its slot ([`Index::release`]) unlinks it.

use super::format::MAX_DEVICE_ID;
use core::fmt;
use core::ops::DerefMut;

/// "No line".
pub const NO_LINE: u64 = u64::MAX;

/// Line numbers are below this (2^40 - 1; the all-ones 40-bit value is the
/// empty [`Link`]).
pub const MAX_LINES: u64 = (1 << 40) - 1;

/// Block numbers are below this (2^48: 48 bits of the line word).
pub const BLOCK_LIMIT: u64 = 1 << 48;

/// Backing devices must have fewer sectors than this (2^51 sectors = 1 EiB):
/// their blocks are then below [`BLOCK_LIMIT`].
pub const MAX_BACKING_SECTORS: u64 = BLOCK_LIMIT * 8;

// Every line of the largest cache has a 40-bit link.
const _: () =
    assert!(super::format::MAX_SEGMENTS * super::format::LINES_PER_SEGMENT as u64 <= MAX_LINES);

/// Most lines a key can have (one per sector of a 4 KiB block).
pub const MAX_CHAIN: usize = 8;

/// Odd 64-bit multiplier of the multiply-shift hash (2^64 / golden ratio).
const HASH_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

const DEV_SHIFT: u32 = 8;
const BLOCK_SHIFT: u32 = 15;
/// Bit 63 of the line word: a clean line.
const CLEAN_BIT: u64 = 1 << 63;
const BLOCK_MASK: u64 = BLOCK_LIMIT - 1;

/// An index key: a 4 KiB block of a backing device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The backing device id (`1..=127`).
    pub device_id: u8,
    /// The 4 KiB block number (backing sector / 8).
    pub block: u64,
}

impl Key {
    /// The key of block `block` of device `device_id`.
    pub const fn new(device_id: u8, block: u64) -> Self {
        Self { device_id, block }
    }

    /// The key of the block containing backing sector `sector`.
    pub const fn from_sector(device_id: u8, sector: u64) -> Self {
        Self {
            device_id,
            block: sector / 8,
        }
    }

    /// First backing sector of the block, `None` on overflow.
    pub fn sector(&self) -> Option<u64> {
        self.block.checked_mul(8)
    }
}

/// A 40-bit link in 5 bytes (little-endian): `line + 1`, 0 meaning none.
/// With that encoding an empty index (every line free, every bucket empty)
/// is all zero bytes, so setting up a large one is one `memset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link([u8; 5]);

impl Link {
    /// No line (an empty bucket, the end of a list).
    pub const NONE: Link = Link([0; 5]);

    /// The link to `line` ([`Link::NONE`] for [`NO_LINE`] and any number
    /// not below [`MAX_LINES`]).
    pub const fn new(line: u64) -> Self {
        if line >= MAX_LINES {
            return Self::NONE;
        }
        let b = (line + 1).to_le_bytes();
        Link([b[0], b[1], b[2], b[3], b[4]])
    }

    /// The line linked to, [`NO_LINE`] if none.
    pub const fn get(&self) -> u64 {
        let b = self.0;
        let v = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], 0, 0, 0]);
        if v == 0 {
            NO_LINE
        } else {
            v - 1
        }
    }
}

impl Default for Link {
    fn default() -> Self {
        Self::NONE
    }
}

/// Per-line state of the index (13 bytes, alignment 1): the packed word
/// (dirty bits, device id, block) and the bucket-list link. Kernel code
/// allocates one per cache line and hands the slice to [`Index::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineMeta {
    word: [u8; 8],
    next: Link,
}

impl LineMeta {
    /// A free line.
    pub const EMPTY: LineMeta = LineMeta {
        word: [0; 8],
        next: Link::NONE,
    };

    fn word(&self) -> u64 {
        u64::from_le_bytes(self.word)
    }

    fn set_word(&mut self, w: u64) {
        self.word = w.to_le_bytes();
    }

    fn pack(key: Key, dirty: u8) -> u64 {
        ((key.block & BLOCK_MASK) << BLOCK_SHIFT)
            | (u64::from(key.device_id & 0x7f) << DEV_SHIFT)
            | u64::from(dirty)
    }

    fn pack_clean(key: Key) -> u64 {
        Self::pack(key, 0xff) | CLEAN_BIT
    }

    /// The sectors the line owns (dirty bits, or all 8 for a clean line).
    fn bits(&self) -> u8 {
        self.word[0]
    }

    /// Whether the line is a clean line.
    pub fn is_clean(&self) -> bool {
        self.word() & CLEAN_BIT != 0
    }

    fn set_dirty(&mut self, dirty: u8) {
        self.set_word((self.word() & !0xff) | u64::from(dirty));
    }

    fn next(&self) -> u64 {
        self.next.get()
    }

    /// The dirty sectors of the line (bit `j` = sector `j`; 0 for a clean
    /// line).
    pub fn dirty(&self) -> u8 {
        if self.is_clean() {
            0
        } else {
            self.word[0]
        }
    }

    fn device_id(&self) -> u8 {
        self.word[1] & 0x7f
    }

    fn block(&self) -> u64 {
        (self.word() >> BLOCK_SHIFT) & BLOCK_MASK
    }

    fn owned_key(&self) -> Option<Key> {
        if self.bits() == 0 {
            None
        } else {
            Some(Key {
                device_id: self.device_id(),
                block: self.block(),
            })
        }
    }

    /// The key the line holds dirty data for, if it is dirty.
    pub fn key(&self) -> Option<Key> {
        if self.dirty() == 0 {
            None
        } else {
            Some(Key {
                device_id: self.device_id(),
                block: self.block(),
            })
        }
    }

    fn matches(&self, key: Key) -> bool {
        self.bits() != 0 && self.block() == key.block && self.device_id() == key.device_id
    }
}

impl Default for LineMeta {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// The sectors of 4 KiB block `block` that lie in `start..end` (bit `j` =
/// sector `j` of the block).
pub fn range_bits(block: u64, start: u64, end: u64) -> u8 {
    let first = block.saturating_mul(8);
    let lo = start.max(first);
    let hi = end.min(first.saturating_add(8));
    if lo >= hi {
        return 0;
    }
    let off = lo.saturating_sub(first).min(7) as u32;
    let n = hi.saturating_sub(lo).clamp(1, 8) as u32;
    ((0xffu32 >> 8u32.saturating_sub(n)) << off) as u8
}

/// The number of hash buckets to allocate for `nr_lines` lines:
/// `nr_lines / 2`, at least 1 (2.5 bytes per line; an average of at most two
/// keys per bucket when every line is dirty for a key of its own).
pub fn buckets_for(nr_lines: usize) -> usize {
    (nr_lines / 2).max(1)
}

/// Errors of the index operations (misuse or, for `Corrupt`, a broken
/// invariant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexError {
    /// More lines than a [`Link`] can address (at most [`MAX_LINES`]).
    TooManyLines {
        /// Number of lines given.
        len: usize,
    },
    /// No hash bucket given.
    BadBucketCount {
        /// Number of buckets given.
        len: usize,
    },
    /// A line index is out of range.
    LineOutOfRange {
        /// The line.
        line: u64,
        /// Number of lines.
        nr_lines: u64,
    },
    /// A device id outside `1..=127`.
    InvalidDeviceId(u8),
    /// A block number not below [`BLOCK_LIMIT`] (a backing device of 2^51
    /// sectors or more, which registration refuses).
    BlockTooLarge(u64),
    /// An empty dirty-bit set was written.
    NoBits,
    /// The line to write is dirty for another key (or is an older line of
    /// this key): only a free line or the key's newest line can be written.
    LineInUse {
        /// The line.
        line: u64,
    },
    /// The line to release still holds dirty data.
    LineDirty {
        /// The line.
        line: u64,
        /// Its dirty bits.
        dirty: u8,
    },
    /// The index structure is inconsistent around this line (a bug).
    Corrupt {
        /// The line.
        line: u64,
    },
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyLines { len } => {
                write!(f, "index: {len} lines given, at most {MAX_LINES} supported")
            }
            Self::BadBucketCount { len } => {
                write!(
                    f,
                    "index: {len} hash buckets given, at least one is required"
                )
            }
            Self::LineOutOfRange { line, nr_lines } => {
                write!(f, "index: line {line} out of range ({nr_lines} lines)")
            }
            Self::InvalidDeviceId(id) => {
                write!(
                    f,
                    "index: invalid device id {id} (valid: 1..={MAX_DEVICE_ID})"
                )
            }
            Self::BlockTooLarge(block) => {
                write!(
                    f,
                    "index: block {block} too large (blocks below {BLOCK_LIMIT} supported, i.e. backing devices below 2^51 sectors)"
                )
            }
            Self::NoBits => write!(f, "index: empty dirty-bit set"),
            Self::LineInUse { line } => {
                write!(f, "index: line {line} already holds dirty data and is not the newest line of this block")
            }
            Self::LineDirty { line, dirty } => {
                write!(
                    f,
                    "index: line {line} still holds dirty data (bits {dirty:#04x})"
                )
            }
            Self::Corrupt { line } => write!(f, "index: internal structure corrupt at line {line}"),
        }
    }
}

impl core::error::Error for IndexError {}

/// A short list of lines (at most [`MAX_CHAIN`]), returned by the operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineList {
    lines: [u64; MAX_CHAIN],
    len: u8,
}

impl LineList {
    const fn new() -> Self {
        Self {
            lines: [NO_LINE; MAX_CHAIN],
            len: 0,
        }
    }

    fn push(&mut self, line: u64) -> bool {
        match self.lines.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = line;
                self.len = self.len.wrapping_add(1);
                true
            }
            None => false,
        }
    }

    /// The lines.
    pub fn as_slice(&self) -> &[u64] {
        self.lines.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Result of [`Index::write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The key's device.
    pub device_id: u8,
    /// The written line went from clean to dirty (it is the key's newest).
    pub became_dirty: bool,
    /// Older lines of the key that lost all their dirty sectors and were
    /// unlinked (they are clean now).
    pub cleaned: LineList,
    /// A clean line of the key that was dropped (or, written in place,
    /// turned dirty), [`NO_LINE`] if none.
    pub dropped_clean: u64,
}

impl WriteOutcome {
    /// Net change of the number of dirty lines of `device_id`.
    pub fn dirty_delta(&self) -> i32 {
        i32::from(self.became_dirty) - self.cleaned.len() as i32
    }
}

/// Result of [`Index::clean`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanOutcome {
    /// The line's device (0 if the line was clean).
    pub device_id: u8,
    /// Bits actually removed (those of the request that were dirty).
    pub removed: u8,
    /// The line lost its last dirty sector and was unlinked.
    pub became_clean: bool,
}

impl CleanOutcome {
    /// Net change of the number of dirty lines of `device_id` (0 or -1).
    pub fn dirty_delta(&self) -> i32 {
        -i32::from(self.became_clean)
    }
}

/// Result of [`Index::discard`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscardOutcome {
    /// The key's device.
    pub device_id: u8,
    /// Some dirty sector was removed.
    pub removed_any: bool,
    /// Lines that became clean and were unlinked.
    pub cleaned: LineList,
    /// A clean line of the key was dropped (it counts in `removed_any`).
    pub dropped_clean: bool,
}

impl DiscardOutcome {
    /// Net change of the number of dirty lines of `device_id` (<= 0).
    pub fn dirty_delta(&self) -> i32 {
        -(self.cleaned.len() as i32)
    }
}

/// The lines of one key, newest first, with their dirty bits.
struct Chain {
    lines: [u64; MAX_CHAIN],
    dirty: [u8; MAX_CHAIN],
    len: usize,
}

impl Chain {
    const fn new() -> Self {
        Self {
            lines: [NO_LINE; MAX_CHAIN],
            dirty: [0; MAX_CHAIN],
            len: 0,
        }
    }

    fn push(&mut self, line: u64, dirty: u8) -> bool {
        match (self.lines.get_mut(self.len), self.dirty.get_mut(self.len)) {
            (Some(l), Some(d)) => {
                *l = line;
                *d = dirty;
                self.len = self.len.wrapping_add(1);
                true
            }
            _ => false,
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        self.lines
            .iter()
            .copied()
            .zip(self.dirty.iter().copied())
            .take(self.len)
    }

    fn head(&self) -> u64 {
        if self.len == 0 {
            NO_LINE
        } else {
            self.lines.first().copied().unwrap_or(NO_LINE)
        }
    }
}

/// The metablock index over caller-provided storage (see the module
/// documentation for the layout and the invariant it maintains).
///
/// `L` is any owner of a `[LineMeta]` slice (one entry per cache line, global
/// line index = position), `B` of a nonempty `[Link]` slice of bucket heads
/// (see [`buckets_for`]).
pub struct Index<L, B> {
    lines: L,
    buckets: B,
    nr_clean: u64,
}

impl<L, B> Index<L, B>
where
    L: DerefMut<Target = [LineMeta]>,
    B: DerefMut<Target = [Link]>,
{
    /// Builds an empty index over `lines` and `buckets`, resetting both.
    pub fn new(mut lines: L, mut buckets: B) -> Result<Self, IndexError> {
        if lines.len() as u64 > MAX_LINES {
            return Err(IndexError::TooManyLines { len: lines.len() });
        }
        if buckets.is_empty() {
            return Err(IndexError::BadBucketCount { len: 0 });
        }
        lines.fill(LineMeta::EMPTY);
        buckets.fill(Link::NONE);
        Ok(Self { lines, buckets, nr_clean: 0 })
    }

    /// Gives the storage back.
    pub fn into_parts(self) -> (L, B) {
        (self.lines, self.buckets)
    }

    /// Number of lines.
    pub fn nr_lines(&self) -> u64 {
        self.lines.len() as u64
    }

    /// Number of clean lines (see the module documentation).
    pub fn nr_clean(&self) -> u64 {
        self.nr_clean
    }

    /// Number of hash buckets.
    pub fn nr_buckets(&self) -> u64 {
        self.buckets.len() as u64
    }

    /// Bytes of the storage the index works in: the line table and the
    /// buckets, as allocated by the caller.
    pub fn memory_bytes(&self) -> u64 {
        let lines = core::mem::size_of_val::<[LineMeta]>(&self.lines) as u64;
        let buckets = core::mem::size_of_val::<[Link]>(&self.buckets) as u64;
        lines.saturating_add(buckets)
    }

    fn bucket_of(&self, key: Key) -> usize {
        let x = key.block ^ (u64::from(key.device_id) << 56);
        let h = x.wrapping_mul(HASH_MUL);
        // Multiply-high maps the hash onto `0..nr_buckets` by its top bits.
        (u128::from(h).wrapping_mul(self.buckets.len() as u128) >> 64) as usize
    }

    fn check_line(&self, line: u64) -> Result<(), IndexError> {
        if line < self.nr_lines() {
            Ok(())
        } else {
            Err(IndexError::LineOutOfRange {
                line,
                nr_lines: self.nr_lines(),
            })
        }
    }

    fn meta(&self, line: u64) -> Result<&LineMeta, IndexError> {
        usize::try_from(line)
            .ok()
            .and_then(|i| self.lines.get(i))
            .ok_or(IndexError::Corrupt { line })
    }

    fn meta_mut(&mut self, line: u64) -> Result<&mut LineMeta, IndexError> {
        usize::try_from(line)
            .ok()
            .and_then(|i| self.lines.get_mut(i))
            .ok_or(IndexError::Corrupt { line })
    }

    fn first(&self, bucket: usize) -> Result<u64, IndexError> {
        self.buckets
            .get(bucket)
            .map(Link::get)
            .ok_or(IndexError::Corrupt { line: NO_LINE })
    }

    /// Points the bucket (`pred == NO_LINE`) or line `pred` at `to`.
    fn set_link(&mut self, bucket: usize, pred: u64, to: u64) -> Result<(), IndexError> {
        if pred == NO_LINE {
            let b = self
                .buckets
                .get_mut(bucket)
                .ok_or(IndexError::Corrupt { line: NO_LINE })?;
            *b = Link::new(to);
        } else {
            self.meta_mut(pred)?.next = Link::new(to);
        }
        Ok(())
    }

    /// The lines of `key` in its bucket list (newest first) with their dirty
    /// bits. A list longer than the number of lines (a cycle) or more than
    /// [`MAX_CHAIN`] lines of one key are reported as corruption.
    fn collect(&self, bucket: usize, key: Key) -> Result<Chain, IndexError> {
        let mut chain = Chain::new();
        let mut cur = self.first(bucket)?;
        let mut budget = self.lines.len();
        while cur != NO_LINE {
            budget = budget
                .checked_sub(1)
                .ok_or(IndexError::Corrupt { line: cur })?;
            let m = self.meta(cur)?;
            if m.matches(key) && !chain.push(cur, m.bits()) {
                return Err(IndexError::Corrupt { line: cur });
            }
            cur = m.next();
        }
        Ok(chain)
    }

    /// Walks the bucket list and gives every line of `key` the dirty bits
    /// `f(line, dirty)`; lines left with none are unlinked and reset.
    fn rewrite(
        &mut self,
        bucket: usize,
        key: Key,
        f: impl Fn(u64, u8) -> u8,
    ) -> Result<(), IndexError> {
        let mut pred = NO_LINE;
        let mut cur = self.first(bucket)?;
        let mut budget = self.lines.len();
        while cur != NO_LINE {
            budget = budget
                .checked_sub(1)
                .ok_or(IndexError::Corrupt { line: cur })?;
            let m = *self.meta(cur)?;
            let next = m.next();
            if m.matches(key) {
                let d = f(cur, m.dirty());
                if d == 0 {
                    self.set_link(bucket, pred, next)?;
                    *self.meta_mut(cur)? = LineMeta::EMPTY;
                    cur = next;
                    continue;
                }
                let mm = self.meta_mut(cur)?;
                mm.set_word((mm.word() & !(0xff | CLEAN_BIT)) | u64::from(d));
            }
            pred = cur;
            cur = next;
        }
        Ok(())
    }

    /// Unlinks `line` from its bucket list and resets it.
    fn unlink(&mut self, bucket: usize, line: u64) -> Result<(), IndexError> {
        let mut pred = NO_LINE;
        let mut cur = self.first(bucket)?;
        let mut budget = self.lines.len();
        while cur != NO_LINE {
            budget = budget
                .checked_sub(1)
                .ok_or(IndexError::Corrupt { line: cur })?;
            let next = self.meta(cur)?.next();
            if cur == line {
                self.set_link(bucket, pred, next)?;
                *self.meta_mut(cur)? = LineMeta::EMPTY;
                return Ok(());
            }
            pred = cur;
            cur = next;
        }
        Err(IndexError::Corrupt { line })
    }

    fn check_key(key: Key) -> Result<(), IndexError> {
        if key.device_id == 0 || key.device_id > MAX_DEVICE_ID {
            return Err(IndexError::InvalidDeviceId(key.device_id));
        }
        if key.block >= BLOCK_LIMIT {
            return Err(IndexError::BlockTooLarge(key.block));
        }
        Ok(())
    }

    /// The newest line holding dirty data for `key`.
    pub fn lookup(&self, key: Key) -> Option<u64> {
        let bucket = self.bucket_of(key);
        let mut cur = self.first(bucket).unwrap_or(NO_LINE);
        let mut budget = self.lines.len();
        while cur != NO_LINE {
            let m = self.meta(cur).ok()?;
            if m.matches(key) {
                return Some(cur);
            }
            budget = budget.checked_sub(1)?;
            cur = m.next();
        }
        None
    }

    /// The lines holding dirty data for `key`, newest first.
    pub fn chain(&self, key: Key) -> LineList {
        let mut list = LineList::new();
        if let Ok(c) = self.collect(self.bucket_of(key), key) {
            for (l, _) in c.iter() {
                list.push(l);
            }
        }
        list
    }

    /// Owners of the 8 sectors of `key` (`NO_LINE` = not dirty in the cache).
    fn owners(&self, key: Key) -> [u64; 8] {
        let mut owners = [NO_LINE; 8];
        let Ok(c) = self.collect(self.bucket_of(key), key) else {
            return owners;
        };
        for (line, dirty) in c.iter() {
            for (j, o) in (0u8..8).zip(owners.iter_mut()) {
                if dirty & (1 << j) != 0 && *o == NO_LINE {
                    *o = line;
                }
            }
        }
        owners
    }

    /// The line owning the newest dirty data of sector `sector_in_block`
    /// (`0..8`) of `key`; `None` if that sector is not dirty in the cache.
    pub fn owner(&self, key: Key, sector_in_block: u8) -> Option<u64> {
        match self.owners(key).get(usize::from(sector_in_block)) {
            Some(&l) if l != NO_LINE => Some(l),
            _ => None,
        }
    }

    /// The owner of sector `first_sector` of `key` (`None` = the backing
    /// device has the newest data) and how many consecutive sectors from
    /// `first_sector` (at most `nr`, and not past the end of the block) have
    /// that same owner. Returns `(None, 0)` if `nr == 0` or
    /// `first_sector >= 8`.
    pub fn read_run(&self, key: Key, first_sector: u8, nr: u8) -> (Option<u64>, u8) {
        if first_sector >= 8 || nr == 0 {
            return (None, 0);
        }
        let owners = self.owners(key);
        let first = usize::from(first_sector);
        let Some(&o) = owners.get(first) else {
            return (None, 0);
        };
        let end = usize::from(first_sector.saturating_add(nr)).min(8);
        let mut run: u8 = 0;
        for &x in owners.get(first..end).unwrap_or(&[]) {
            if x != o {
                break;
            }
            run = run.wrapping_add(1);
        }
        let owner = if o == NO_LINE { None } else { Some(o) };
        (owner, run)
    }

    /// Records that `line` now holds the newest data for sectors `bits` of
    /// `key`.
    ///
    /// If `line` is already the key's newest line the bits are added to it;
    /// otherwise `line` must be free and becomes the key's newest line (at
    /// the front of the bucket list). Either way every older line of the key
    /// loses `bits`, and older lines left with no dirty sector are unlinked
    /// (reported in the outcome).
    pub fn write(&mut self, line: u64, key: Key, bits: u8) -> Result<WriteOutcome, IndexError> {
        self.check_line(line)?;
        Self::check_key(key)?;
        if bits == 0 {
            return Err(IndexError::NoBits);
        }
        let bucket = self.bucket_of(key);
        let mut chain = self.collect(bucket, key)?;
        let mut dropped_clean = NO_LINE;
        if chain.head() != NO_LINE && self.meta(chain.head())?.is_clean() {
            let c = chain.head();
            dropped_clean = c;
            self.nr_clean = self.nr_clean.saturating_sub(1);
            if c == line {
                // Written in place: the line now holds the newest data of
                // all 8 sectors (the others still equal the backing
                // device's), as a dirty line.
                self.meta_mut(line)?.set_word(LineMeta::pack(key, 0xff));
                return Ok(WriteOutcome {
                    device_id: key.device_id,
                    became_dirty: true,
                    cleaned: LineList::new(),
                    dropped_clean,
                });
            }
            self.unlink(bucket, c)?;
            chain = self.collect(bucket, key)?;
        }
        let became_dirty = chain.head() != line;
        if became_dirty && self.meta(line)?.bits() != 0 {
            return Err(IndexError::LineInUse { line });
        }
        let mut cleaned = LineList::new();
        let mut older_change = false;
        for (l, d) in chain.iter().filter(|&(l, _)| l != line) {
            if d & bits != 0 {
                older_change = true;
                if d & !bits == 0 && !cleaned.push(l) {
                    return Err(IndexError::Corrupt { line: l });
                }
            }
        }
        if older_change {
            self.rewrite(
                bucket,
                key,
                |l, d| if l == line { d | bits } else { d & !bits },
            )?;
        } else if !became_dirty {
            let m = self.meta_mut(line)?;
            m.set_dirty(m.dirty() | bits);
        }
        if became_dirty {
            let first = self.first(bucket)?;
            let m = self.meta_mut(line)?;
            m.set_word(LineMeta::pack(key, bits));
            m.next = Link::new(first);
            self.set_link(bucket, NO_LINE, line)?;
        }
        Ok(WriteOutcome {
            device_id: key.device_id,
            became_dirty,
            cleaned,
            dropped_clean,
        })
    }

    /// Records that free line `line` holds a copy of all 8 sectors of `key`
    /// equal to the backing device's: a clean line (read caching). Every
    /// older line of the key is superseded (and unlinked).
    ///
    /// The engine stages a block only when nothing of it is cached, so at
    /// run time the key has no line. In replay older dirty lines may exist
    /// (their write-back completed but the backing device was not flushed
    /// yet when the block was staged: a crash may have lost that write-back);
    /// then the line is made a *dirty* line of all 8 sectors instead, which
    /// is always correct (it holds the newest data of the whole block) and
    /// gets written back again. `became_dirty` says which it was.
    pub fn write_clean(&mut self, line: u64, key: Key) -> Result<WriteOutcome, IndexError> {
        self.check_line(line)?;
        Self::check_key(key)?;
        if self.meta(line)?.bits() != 0 {
            return Err(IndexError::LineInUse { line });
        }
        let bucket = self.bucket_of(key);
        let chain = self.collect(bucket, key)?;
        let mut cleaned = LineList::new();
        let mut dropped_clean = NO_LINE;
        for (l, _) in chain.iter() {
            if self.meta(l)?.is_clean() {
                dropped_clean = l;
                self.nr_clean = self.nr_clean.saturating_sub(1);
            } else if !cleaned.push(l) {
                return Err(IndexError::Corrupt { line: l });
            }
        }
        for (l, _) in chain.iter() {
            self.unlink(bucket, l)?;
        }
        let became_dirty = !cleaned.is_empty();
        let first = self.first(bucket)?;
        let m = self.meta_mut(line)?;
        m.set_word(if became_dirty { LineMeta::pack(key, 0xff) } else { LineMeta::pack_clean(key) });
        m.next = Link::new(first);
        self.set_link(bucket, NO_LINE, line)?;
        if !became_dirty {
            self.nr_clean = self.nr_clean.saturating_add(1);
        }
        Ok(WriteOutcome { device_id: key.device_id, became_dirty, cleaned, dropped_clean })
    }

    /// Whether `line` is a clean line.
    pub fn is_clean(&self, line: u64) -> Result<bool, IndexError> {
        self.check_line(line)?;
        Ok(self.meta(line)?.is_clean())
    }

    /// The key `line` holds data for, dirty or clean (`None`: free).
    pub fn cached_key_of(&self, line: u64) -> Result<Option<Key>, IndexError> {
        self.check_line(line)?;
        Ok(self.meta(line)?.owned_key())
    }

    /// Removes `bits` from `line` (they were written back, or discarded),
    /// unlinking the line if it becomes clean. Bits that are not dirty are
    /// ignored; a clean line is left alone.
    pub fn clean(&mut self, line: u64, bits: u8) -> Result<CleanOutcome, IndexError> {
        self.check_line(line)?;
        let m = *self.meta(line)?;
        let removed = m.dirty() & bits;
        let mut out = CleanOutcome {
            device_id: m.device_id(),
            removed,
            became_clean: false,
        };
        if removed == 0 {
            return Ok(out);
        }
        let left = m.dirty() & !bits;
        if left != 0 {
            self.meta_mut(line)?.set_dirty(left);
            return Ok(out);
        }
        let key = Key {
            device_id: m.device_id(),
            block: m.block(),
        };
        self.unlink(self.bucket_of(key), line)?;
        out.became_clean = true;
        Ok(out)
    }

    /// Removes `bits` from every line of `key` (a discard of those sectors:
    /// the cache forgets them).
    pub fn discard(&mut self, key: Key, bits: u8) -> Result<DiscardOutcome, IndexError> {
        if key.device_id == 0 || key.device_id > MAX_DEVICE_ID {
            return Err(IndexError::InvalidDeviceId(key.device_id));
        }
        let mut out = DiscardOutcome {
            device_id: key.device_id,
            removed_any: false,
            cleaned: LineList::new(),
            dropped_clean: false,
        };
        if bits == 0 || key.block >= BLOCK_LIMIT {
            // No line can hold such a block.
            return Ok(out);
        }
        let bucket = self.bucket_of(key);
        let mut chain = self.collect(bucket, key)?;
        if chain.head() != NO_LINE && self.meta(chain.head())?.is_clean() {
            self.unlink(bucket, chain.head())?;
            self.nr_clean = self.nr_clean.saturating_sub(1);
            out.removed_any = true;
            out.dropped_clean = true;
            chain = self.collect(bucket, key)?;
        }
        for (l, d) in chain.iter() {
            if d & bits != 0 {
                out.removed_any = true;
                if d & !bits == 0 && !out.cleaned.push(l) {
                    return Err(IndexError::Corrupt { line: l });
                }
            }
        }
        if out.removed_any {
            self.rewrite(bucket, key, |_, d| d & !bits)?;
        }
        Ok(out)
    }

    /// The dirty bits of `line`.
    pub fn dirty(&self, line: u64) -> Result<u8, IndexError> {
        self.check_line(line)?;
        Ok(self.meta(line)?.dirty())
    }

    /// The key `line` holds dirty data for, `None` if it is clean.
    pub fn key_of(&self, line: u64) -> Result<Option<Key>, IndexError> {
        self.check_line(line)?;
        Ok(self.meta(line)?.key())
    }

    /// The line is about to be reused for a new segment; it must not be
    /// dirty (a clean line is unlinked).
    pub fn release(&mut self, line: u64) -> Result<(), IndexError> {
        self.check_line(line)?;
        let m = *self.meta(line)?;
        if m.is_clean() {
            if let Some(key) = m.owned_key() {
                self.unlink(self.bucket_of(key), line)?;
                self.nr_clean = self.nr_clean.saturating_sub(1);
                return Ok(());
            }
        }
        let m = self.meta_mut(line)?;
        if m.dirty() != 0 {
            return Err(IndexError::LineDirty {
                line,
                dirty: m.dirty(),
            });
        }
        *m = LineMeta::EMPTY;
        Ok(())
    }

    /// Checks the whole structure (O(lines + sum of squared bucket lengths);
    /// for tests, fuzzing and debugging) and returns the number of dirty
    /// lines.
    ///
    /// Verified: every bucket list holds dirty or clean lines whose keys
    /// hash to that bucket, with no cycle; the lines of each key are at most
    /// [`MAX_CHAIN`] with pairwise disjoint dirty sets; a clean line owns
    /// all 8 sectors and is its key's only line; the lines reached this way
    /// are exactly the dirty and clean lines ([`Index::nr_clean`] of them
    /// clean); free lines are [`LineMeta::EMPTY`].
    pub fn check_consistency(&self) -> Result<u64, IndexError> {
        let mut reached: u64 = 0;
        let mut budget = self.lines.len();
        for b in 0..self.buckets.len() {
            let mut cur = self.first(b)?;
            while cur != NO_LINE {
                budget = budget
                    .checked_sub(1)
                    .ok_or(IndexError::Corrupt { line: cur })?;
                let m = *self.meta(cur)?;
                let Some(key) = m.owned_key() else {
                    return Err(IndexError::Corrupt { line: cur });
                };
                if self.bucket_of(key) != b {
                    return Err(IndexError::Corrupt { line: cur });
                }
                let chain = self.collect(b, key)?;
                if m.is_clean() && (m.bits() != 0xff || chain.len != 1) {
                    return Err(IndexError::Corrupt { line: cur });
                }
                let mut seen: u8 = 0;
                for (l, d) in chain.iter() {
                    if d & seen != 0 {
                        return Err(IndexError::Corrupt { line: l });
                    }
                    seen |= d;
                }
                reached = reached.saturating_add(1);
                cur = m.next();
            }
        }
        let mut dirty_lines: u64 = 0;
        let mut clean_lines: u64 = 0;
        for (i, m) in self.lines.iter().enumerate() {
            if m.is_clean() {
                clean_lines = clean_lines.saturating_add(1);
            } else if m.dirty() != 0 {
                dirty_lines = dirty_lines.saturating_add(1);
            } else if *m != LineMeta::EMPTY {
                return Err(IndexError::Corrupt { line: i as u64 });
            }
        }
        if clean_lines != self.nr_clean || reached != dirty_lines.saturating_add(clean_lines) {
            return Err(IndexError::Corrupt { line: NO_LINE });
        }
        Ok(dirty_lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn index(n: usize) -> Index<Vec<LineMeta>, Vec<Link>> {
        Index::new(vec![LineMeta::EMPTY; n], vec![Link::NONE; buckets_for(n)]).unwrap()
    }

    #[test]
    fn layout_is_small() {
        assert_eq!(core::mem::size_of::<LineMeta>(), 13);
        assert_eq!(core::mem::align_of::<LineMeta>(), 1);
        assert_eq!(core::mem::size_of::<Link>(), 5);
        // 13 + 5 * (n / 2) / n <= 15.5 bytes per line.
        for n in [1usize, 2, 3, 255, 510, 1 << 20, 255 * 1000 + 1] {
            let ix = index(n);
            assert!(
                ix.memory_bytes() * 2 <= 31 * n as u64 + 5,
                "{n} lines: {} bytes",
                ix.memory_bytes()
            );
        }
    }

    #[test]
    fn word_packing() {
        let mut m = LineMeta::EMPTY;
        let k = Key::new(127, BLOCK_LIMIT - 1);
        m.set_word(LineMeta::pack(k, 0x81));
        assert_eq!(m.key(), Some(k));
        assert_eq!(m.dirty(), 0x81);
        m.set_dirty(0x10);
        assert_eq!(m.key(), Some(k));
        let k = Key::new(1, 0);
        m.set_word(LineMeta::pack(k, 1));
        assert_eq!(m.key(), Some(k));
        assert_eq!(Link::new(MAX_LINES - 1).get(), MAX_LINES - 1);
        assert_eq!(Link::new(1 << 33).get(), 1 << 33);
        assert_eq!(Link::new(NO_LINE), Link::NONE);
        assert_eq!(Link::NONE.get(), NO_LINE);
    }

    #[test]
    fn block_limit() {
        let mut ix = index(4);
        assert_eq!(
            ix.write(0, Key::new(1, BLOCK_LIMIT), 1),
            Err(IndexError::BlockTooLarge(BLOCK_LIMIT))
        );
        ix.write(0, Key::new(1, BLOCK_LIMIT - 1), 1).unwrap();
        // A larger block never matches the truncated one.
        assert_eq!(ix.lookup(Key::new(1, BLOCK_LIMIT - 1 + BLOCK_LIMIT)), None);
        assert!(
            !ix.discard(Key::new(1, 2 * BLOCK_LIMIT - 1), 0xff)
                .unwrap()
                .removed_any
        );
        assert_eq!(ix.lookup(Key::new(1, BLOCK_LIMIT - 1)), Some(0));
    }

    #[test]
    fn clean_lines() {
        let mut ix = index(16);
        let k = Key::new(3, 77);
        let o = ix.write_clean(2, k).unwrap();
        assert!(!o.became_dirty && o.cleaned.is_empty());
        assert_eq!(ix.nr_clean(), 1);
        assert_eq!(ix.dirty(2), Ok(0));
        assert_eq!(ix.key_of(2), Ok(None));
        assert_eq!(ix.cached_key_of(2), Ok(Some(k)));
        assert_eq!(ix.lookup(k), Some(2));
        assert_eq!(ix.read_run(k, 0, 8), (Some(2), 8));
        assert_eq!(ix.check_consistency(), Ok(0));
        // Write-back never sees it.
        assert!(!ix.clean(2, 0xff).unwrap().became_clean);
        assert_eq!(ix.lookup(k), Some(2));
        // A partial write elsewhere drops it; the write's line owns its bits.
        let o = ix.write(5, k, 0b11).unwrap();
        assert!(o.became_dirty && o.cleaned.is_empty());
        assert_eq!(o.dropped_clean, 2);
        assert_eq!(o.dirty_delta(), 1);
        assert_eq!(ix.nr_clean(), 0);
        assert_eq!(ix.read_run(k, 0, 8), (Some(5), 2));
        assert_eq!(ix.read_run(k, 2, 6), (None, 6));
        assert_eq!(ix.check_consistency(), Ok(1));
        // Written in place: a dirty line of all 8 sectors.
        let k2 = Key::new(3, 78);
        ix.write_clean(6, k2).unwrap();
        let o = ix.write(6, k2, 0b100).unwrap();
        assert!(o.became_dirty);
        assert_eq!(ix.dirty(6), Ok(0xff));
        assert_eq!(ix.check_consistency(), Ok(2));
        // A discard drops a clean line and says so.
        let k3 = Key::new(3, 79);
        ix.write_clean(7, k3).unwrap();
        let o = ix.discard(k3, 0b1000_0000).unwrap();
        assert!(o.removed_any && o.dropped_clean && o.cleaned.is_empty());
        assert_eq!(o.dirty_delta(), 0);
        assert_eq!(ix.lookup(k3), None);
        // Release unlinks a clean line.
        ix.write_clean(8, k3).unwrap();
        ix.release(8).unwrap();
        assert_eq!(ix.lookup(k3), None);
        assert_eq!(ix.nr_clean(), 0);
        assert_eq!(ix.check_consistency(), Ok(2));
        // Replay: a clean line over dirty lines becomes a dirty full line.
        let o = ix.write_clean(9, k).unwrap();
        assert!(o.became_dirty);
        assert_eq!(o.cleaned.as_slice(), &[5]);
        assert_eq!(o.dirty_delta(), 0);
        assert_eq!(ix.dirty(9), Ok(0xff));
        // Over a clean line: clean again, the old one dropped.
        ix.write_clean(10, k3).unwrap();
        let o = ix.write_clean(11, k3).unwrap();
        assert!(!o.became_dirty && o.dropped_clean == 10);
        assert_eq!(ix.nr_clean(), 1);
        assert_eq!(ix.check_consistency(), Ok(2));
        // A used line cannot take a clean copy.
        assert_eq!(ix.write_clean(11, Key::new(3, 1)), Err(IndexError::LineInUse { line: 11 }));
        assert_eq!(ix.write_clean(9, Key::new(3, 1)), Err(IndexError::LineInUse { line: 9 }));
        // The top block still packs with the CLEAN bit.
        let top = Key::new(127, BLOCK_LIMIT - 1);
        ix.write_clean(12, top).unwrap();
        assert_eq!(ix.cached_key_of(12), Ok(Some(top)));
        assert_eq!(ix.check_consistency(), Ok(2));
    }

    #[test]
    fn supersede_and_clean() {
        let mut ix = index(16);
        let k = Key::new(1, 10);
        let o = ix.write(0, k, 0b0000_1111).unwrap();
        assert!(o.became_dirty && o.cleaned.is_empty());
        let o = ix.write(1, k, 0b0000_0011).unwrap();
        assert_eq!(o.dirty_delta(), 1);
        assert_eq!(ix.dirty(0), Ok(0b1100));
        assert_eq!(ix.owner(k, 0), Some(1));
        assert_eq!(ix.owner(k, 2), Some(0));
        assert_eq!(ix.owner(k, 4), None);
        assert_eq!(ix.read_run(k, 0, 8), (Some(1), 2));
        assert_eq!(ix.read_run(k, 2, 8), (Some(0), 2));
        assert_eq!(ix.read_run(k, 4, 8), (None, 4));
        let o = ix.write(2, k, 0b0000_1100).unwrap();
        assert_eq!(o.cleaned.as_slice(), &[0]);
        assert_eq!(o.dirty_delta(), 0);
        assert_eq!(ix.check_consistency(), Ok(2));
        assert_eq!(
            ix.write(0, Key::new(1, 11), 1).map(|o| o.became_dirty),
            Ok(true)
        );
        assert_eq!(ix.write(0, k, 1), Err(IndexError::LineInUse { line: 0 }));
        assert_eq!(
            ix.release(0),
            Err(IndexError::LineDirty { line: 0, dirty: 1 })
        );
        let c = ix.clean(0, 0xff).unwrap();
        assert!(c.became_clean);
        ix.release(0).unwrap();
        assert_eq!(ix.check_consistency(), Ok(2));
    }

    #[test]
    fn single_bucket() {
        let mut ix = Index::new(vec![LineMeta::EMPTY; 8], vec![Link::NONE; 1]).unwrap();
        for i in 0..8 {
            ix.write(i, Key::new(1 + i as u8 % 3, i), 0xff).unwrap();
        }
        assert_eq!(ix.check_consistency(), Ok(8));
        for i in 0..8 {
            assert_eq!(ix.lookup(Key::new(1 + i as u8 % 3, i)), Some(i));
        }
    }

    #[test]
    fn range_bits_clip() {
        assert_eq!(range_bits(1, 0, 100), 0xff);
        assert_eq!(range_bits(1, 10, 100), 0b1111_1100);
        assert_eq!(range_bits(1, 0, 13), 0b0001_1111);
        assert_eq!(range_bits(1, 9, 11), 0b0000_0110);
        assert_eq!(range_bits(1, 16, 100), 0);
        assert_eq!(range_bits(1, 0, 8), 0);
        assert_eq!(range_bits(u64::MAX, 0, u64::MAX), 0);
    }

    #[test]
    fn bad_storage() {
        assert!(matches!(
            Index::new(vec![LineMeta::EMPTY; 4], Vec::<Link>::new()),
            Err(IndexError::BadBucketCount { len: 0 })
        ));
        // Any nonzero bucket count works.
        assert!(Index::new(vec![LineMeta::EMPTY; 4], vec![Link::NONE; 3]).is_ok());
        assert_eq!(buckets_for(0), 1);
        assert_eq!(buckets_for(1), 1);
        assert_eq!(buckets_for(1000), 500);
    }
}
