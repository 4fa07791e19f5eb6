// SPDX-License-Identifier: GPL-2.0

//! The metablock index: which cache line holds the newest dirty data of each
//! 512-byte sector of each 4 KiB block of each backing device.
//!
//! Keys are `(device_id, block)` with `block = backing sector / 8`. Lines are
//! identified by their global index (see [`Geometry`](super::format::Geometry));
//! [`NO_LINE`] means none. The storage is passed in by the caller (one
//! [`LineMeta`] per cache line and a power-of-two array of hash buckets), so
//! the index never allocates.
//!
//! # Invariant (disjoint chains)
//!
//! For one key, the lines holding dirty data for it form a chain, newest to
//! oldest. The newest line (the head) is in the hash bucket list of the key;
//! older ones hang off it through `prev`. Their dirty bit sets are pairwise
//! disjoint: each dirty sector of a block is owned by exactly one line, the
//! one with the newest data for that sector. Hence a chain has at most 8
//! lines, and every operation is O(chain length) plus the (expected O(1))
//! bucket walk. A line whose dirty set is empty is in no chain and not in the
//! hash: it is free or clean.
//!
//! Writing new data for some sectors therefore takes those sectors away from
//! every older line, which is exactly what makes replay after a crash correct:
//! a line fully superseded by newer data becomes clean and is never written
//! back over the newer data.

use super::format::MAX_DEVICE_ID;
use core::fmt;
use core::ops::DerefMut;

/// "No line".
pub const NO_LINE: u32 = u32::MAX;

/// Most lines a chain can have (one per sector of a 4 KiB block).
pub const MAX_CHAIN: usize = 8;

/// Odd 64-bit multiplier of the multiply-shift hash (2^64 / golden ratio).
const HASH_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

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

/// Per-line state of the index (24 bytes). Kernel code allocates one per
/// cache line and hands the slice to [`Index::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineMeta {
    block: u64,
    hnext: u32,
    prev: u32,
    device_id: u8,
    dirty: u8,
}

impl LineMeta {
    /// A free line.
    pub const EMPTY: LineMeta = LineMeta {
        block: 0,
        hnext: NO_LINE,
        prev: NO_LINE,
        device_id: 0,
        dirty: 0,
    };

    /// The dirty sectors of the line (bit `j` = sector `j`).
    pub fn dirty(&self) -> u8 {
        self.dirty
    }

    /// The key the line holds dirty data for, if it is dirty.
    pub fn key(&self) -> Option<Key> {
        if self.dirty == 0 {
            None
        } else {
            Some(Key {
                device_id: self.device_id,
                block: self.block,
            })
        }
    }

    fn matches(&self, key: Key) -> bool {
        self.dirty != 0 && self.block == key.block && self.device_id == key.device_id
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

/// The number of hash buckets to allocate for `nr_lines` lines: the next
/// power of two (at least 1), for an average load of at most one.
pub fn buckets_for(nr_lines: usize) -> usize {
    match nr_lines.checked_next_power_of_two() {
        Some(n) => n,
        None => 1 << (usize::BITS - 1),
    }
}

/// Errors of the index operations (misuse or, for `Corrupt`, a broken
/// invariant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexError {
    /// More lines than `u32::MAX` (indices must stay below [`NO_LINE`]).
    TooManyLines {
        /// Number of lines given.
        len: usize,
    },
    /// The bucket count is not a nonzero power of two.
    BadBucketCount {
        /// Number of buckets given.
        len: usize,
    },
    /// A line index is out of range.
    LineOutOfRange {
        /// The line.
        line: u32,
        /// Number of lines.
        nr_lines: u32,
    },
    /// A device id outside `1..=127`.
    InvalidDeviceId(u8),
    /// An empty dirty-bit set was written.
    NoBits,
    /// The line to write is dirty for another key (or is an older line of
    /// this key's chain): only a free line or the key's head can be written.
    LineInUse {
        /// The line.
        line: u32,
    },
    /// The line to release still holds dirty data.
    LineDirty {
        /// The line.
        line: u32,
        /// Its dirty bits.
        dirty: u8,
    },
    /// The index structure is inconsistent around this line (a bug).
    Corrupt {
        /// The line.
        line: u32,
    },
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyLines { len } => {
                write!(
                    f,
                    "index: {len} lines given, at most {} supported",
                    u32::MAX
                )
            }
            Self::BadBucketCount { len } => {
                write!(
                    f,
                    "index: {len} hash buckets given, a nonzero power of two is required"
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
    lines: [u32; MAX_CHAIN],
    len: u8,
}

impl LineList {
    const fn new() -> Self {
        Self {
            lines: [NO_LINE; MAX_CHAIN],
            len: 0,
        }
    }

    fn push(&mut self, line: u32) -> bool {
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
    pub fn as_slice(&self) -> &[u32] {
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
    /// The written line went from clean to dirty (it is a new head).
    pub became_dirty: bool,
    /// Older lines of the chain that lost all their dirty sectors and were
    /// unlinked (they are clean now).
    pub cleaned: LineList,
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
}

impl DiscardOutcome {
    /// Net change of the number of dirty lines of `device_id` (<= 0).
    pub fn dirty_delta(&self) -> i32 {
        -(self.cleaned.len() as i32)
    }
}

/// Where a key is, or would be, in its bucket list.
#[derive(Clone, Copy)]
struct Found {
    bucket: usize,
    /// The element before `head` in the bucket list (or, if the key is
    /// absent, the last element), `NO_LINE` for the bucket itself.
    pred: u32,
    /// The key's head line, `NO_LINE` if absent.
    head: u32,
}

/// Chain members newest to oldest with their new dirty bits.
struct Chain {
    lines: [u32; MAX_CHAIN + 1],
    dirty: [u8; MAX_CHAIN + 1],
    len: usize,
}

impl Chain {
    const fn new() -> Self {
        Self {
            lines: [NO_LINE; MAX_CHAIN + 1],
            dirty: [0; MAX_CHAIN + 1],
            len: 0,
        }
    }

    fn push(&mut self, line: u32, dirty: u8) -> bool {
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

    fn iter(&self) -> impl Iterator<Item = (u32, u8)> + '_ {
        self.lines
            .iter()
            .copied()
            .zip(self.dirty.iter().copied())
            .take(self.len)
    }
}

/// The metablock index over caller-provided storage (see the module
/// documentation for the invariant it maintains).
///
/// `L` is any owner of a `[LineMeta]` slice (one entry per cache line, global
/// line index = position), `B` of a `[u32]` slice of bucket heads whose length
/// is a nonzero power of two (see [`buckets_for`]).
pub struct Index<L, B> {
    lines: L,
    buckets: B,
    shift: u32,
}

impl<L, B> Index<L, B>
where
    L: DerefMut<Target = [LineMeta]>,
    B: DerefMut<Target = [u32]>,
{
    /// Builds an empty index over `lines` and `buckets`, resetting both.
    pub fn new(mut lines: L, mut buckets: B) -> Result<Self, IndexError> {
        if lines.len() > u32::MAX as usize {
            return Err(IndexError::TooManyLines { len: lines.len() });
        }
        let nb = buckets.len();
        if nb == 0 || !nb.is_power_of_two() {
            return Err(IndexError::BadBucketCount { len: nb });
        }
        lines.fill(LineMeta::EMPTY);
        buckets.fill(NO_LINE);
        let shift = 64 - nb.trailing_zeros();
        Ok(Self {
            lines,
            buckets,
            shift,
        })
    }

    /// Gives the storage back.
    pub fn into_parts(self) -> (L, B) {
        (self.lines, self.buckets)
    }

    /// Number of lines.
    pub fn nr_lines(&self) -> u32 {
        self.lines.len() as u32
    }

    fn bucket_of(&self, key: Key) -> usize {
        let x = key.block ^ (u64::from(key.device_id) << 56);
        let h = x.wrapping_mul(HASH_MUL);
        // `shift` is 64 for a single bucket: everything goes to bucket 0.
        h.checked_shr(self.shift).unwrap_or(0) as usize
    }

    fn check_line(&self, line: u32) -> Result<(), IndexError> {
        if (line as usize) < self.lines.len() {
            Ok(())
        } else {
            Err(IndexError::LineOutOfRange {
                line,
                nr_lines: self.nr_lines(),
            })
        }
    }

    fn meta(&self, line: u32) -> Result<&LineMeta, IndexError> {
        self.lines
            .get(line as usize)
            .ok_or(IndexError::Corrupt { line })
    }

    fn meta_mut(&mut self, line: u32) -> Result<&mut LineMeta, IndexError> {
        self.lines
            .get_mut(line as usize)
            .ok_or(IndexError::Corrupt { line })
    }

    fn find(&self, key: Key) -> Result<Found, IndexError> {
        let bucket = self.bucket_of(key);
        let mut cur = *self
            .buckets
            .get(bucket)
            .ok_or(IndexError::Corrupt { line: NO_LINE })?;
        let mut pred = NO_LINE;
        // A bucket list can never be longer than the number of lines; a longer
        // walk means a cycle.
        let mut budget = self.lines.len();
        while cur != NO_LINE {
            let m = self.meta(cur)?;
            if m.matches(key) {
                return Ok(Found {
                    bucket,
                    pred,
                    head: cur,
                });
            }
            budget = budget
                .checked_sub(1)
                .ok_or(IndexError::Corrupt { line: cur })?;
            pred = cur;
            cur = m.hnext;
        }
        Ok(Found {
            bucket,
            pred,
            head: NO_LINE,
        })
    }

    /// Appends the lines from `start` following `prev` (with their dirty bits
    /// transformed by `f`) to `chain`.
    fn collect(
        &self,
        start: u32,
        key: Key,
        chain: &mut Chain,
        f: impl Fn(u32, u8) -> u8,
    ) -> Result<(), IndexError> {
        let mut cur = start;
        while cur != NO_LINE {
            let m = self.meta(cur)?;
            if !m.matches(key) || !chain.push(cur, f(cur, m.dirty)) {
                return Err(IndexError::Corrupt { line: cur });
            }
            cur = m.prev;
        }
        Ok(())
    }

    fn set_link(&mut self, bucket: usize, pred: u32, to: u32) -> Result<(), IndexError> {
        if pred == NO_LINE {
            let b = self
                .buckets
                .get_mut(bucket)
                .ok_or(IndexError::Corrupt { line: NO_LINE })?;
            *b = to;
        } else {
            self.meta_mut(pred)?.hnext = to;
        }
        Ok(())
    }

    /// Rewrites the chain at `found` to the survivors of `chain` (members with
    /// nonzero new dirty bits, in order); members left clean are reset.
    /// `hnext` is what followed the old head in the bucket list. Every member
    /// must already carry the key.
    fn relink(&mut self, found: Found, hnext: u32, chain: &Chain) -> Result<(), IndexError> {
        let mut first = NO_LINE;
        let mut last = NO_LINE;
        for (line, dirty) in chain.iter() {
            let m = self.meta_mut(line)?;
            if dirty == 0 {
                *m = LineMeta::EMPTY;
                continue;
            }
            m.dirty = dirty;
            m.prev = NO_LINE;
            m.hnext = NO_LINE;
            if last == NO_LINE {
                first = line;
            } else {
                self.meta_mut(last)?.prev = line;
            }
            last = line;
        }
        let next = if first != NO_LINE {
            self.meta_mut(first)?.hnext = hnext;
            first
        } else {
            hnext
        };
        self.set_link(found.bucket, found.pred, next)
    }

    fn hnext_of(&self, found: Found) -> Result<u32, IndexError> {
        if found.head == NO_LINE {
            Ok(NO_LINE)
        } else {
            Ok(self.meta(found.head)?.hnext)
        }
    }

    /// The newest line holding dirty data for `key`.
    pub fn lookup(&self, key: Key) -> Option<u32> {
        match self.find(key) {
            Ok(f) if f.head != NO_LINE => Some(f.head),
            _ => None,
        }
    }

    /// The lines holding dirty data for `key`, newest first.
    pub fn chain(&self, key: Key) -> LineList {
        let mut list = LineList::new();
        let mut cur = self.lookup(key).unwrap_or(NO_LINE);
        while cur != NO_LINE {
            let Ok(m) = self.meta(cur) else { break };
            if !list.push(cur) {
                break;
            }
            cur = m.prev;
        }
        list
    }

    /// Owners of the 8 sectors of `key` (`NO_LINE` = not dirty in the cache).
    fn owners(&self, key: Key) -> [u32; 8] {
        let mut owners = [NO_LINE; 8];
        for line in self.chain(key).as_slice() {
            let dirty = self.meta(*line).map(|m| m.dirty).unwrap_or(0);
            for (j, o) in (0u8..8).zip(owners.iter_mut()) {
                if dirty & (1 << j) != 0 && *o == NO_LINE {
                    *o = *line;
                }
            }
        }
        owners
    }

    /// The line owning the newest dirty data of sector `sector_in_block`
    /// (`0..8`) of `key`; `None` if that sector is not dirty in the cache.
    pub fn owner(&self, key: Key, sector_in_block: u8) -> Option<u32> {
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
    pub fn read_run(&self, key: Key, first_sector: u8, nr: u8) -> (Option<u32>, u8) {
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
    /// If `line` is already the head of the key's chain the bits are added to
    /// it; otherwise `line` must be free and becomes the new head. Either way
    /// every older line of the chain loses `bits`, and older lines left with
    /// no dirty sector are unlinked (reported in the outcome).
    pub fn write(&mut self, line: u32, key: Key, bits: u8) -> Result<WriteOutcome, IndexError> {
        self.check_line(line)?;
        if key.device_id == 0 || key.device_id > MAX_DEVICE_ID {
            return Err(IndexError::InvalidDeviceId(key.device_id));
        }
        if bits == 0 {
            return Err(IndexError::NoBits);
        }
        let found = self.find(key)?;
        let hnext = self.hnext_of(found)?;
        let mut chain = Chain::new();
        let older_start;
        let became_dirty;
        if found.head == line {
            let m = self.meta(line)?;
            chain.push(line, m.dirty | bits);
            older_start = m.prev;
            became_dirty = false;
        } else {
            if self.meta(line)?.dirty != 0 {
                return Err(IndexError::LineInUse { line });
            }
            chain.push(line, bits);
            older_start = found.head;
            became_dirty = true;
        }
        self.collect(older_start, key, &mut chain, |_, d| d & !bits)?;
        let mut cleaned = LineList::new();
        for (l, d) in chain.iter().skip(1) {
            if d == 0 && !cleaned.push(l) {
                return Err(IndexError::Corrupt { line: l });
            }
        }
        if became_dirty {
            let m = self.meta_mut(line)?;
            m.block = key.block;
            m.device_id = key.device_id;
        }
        self.relink(found, hnext, &chain)?;
        Ok(WriteOutcome {
            device_id: key.device_id,
            became_dirty,
            cleaned,
        })
    }

    /// Removes `bits` from `line` (they were written back, or discarded),
    /// unlinking the line if it becomes clean. Bits that are not dirty are
    /// ignored; a clean line is left alone.
    pub fn clean(&mut self, line: u32, bits: u8) -> Result<CleanOutcome, IndexError> {
        self.check_line(line)?;
        let m = *self.meta(line)?;
        let removed = m.dirty & bits;
        if removed == 0 {
            return Ok(CleanOutcome {
                device_id: m.device_id,
                removed: 0,
                became_clean: false,
            });
        }
        let left = m.dirty & !bits;
        if left != 0 {
            self.meta_mut(line)?.dirty = left;
            return Ok(CleanOutcome {
                device_id: m.device_id,
                removed,
                became_clean: false,
            });
        }
        let key = Key {
            device_id: m.device_id,
            block: m.block,
        };
        let found = self.find(key)?;
        if found.head == NO_LINE {
            return Err(IndexError::Corrupt { line });
        }
        let hnext = self.hnext_of(found)?;
        let mut chain = Chain::new();
        self.collect(
            found.head,
            key,
            &mut chain,
            |l, d| if l == line { 0 } else { d },
        )?;
        if !chain.iter().any(|(l, _)| l == line) {
            return Err(IndexError::Corrupt { line });
        }
        self.relink(found, hnext, &chain)?;
        Ok(CleanOutcome {
            device_id: m.device_id,
            removed,
            became_clean: true,
        })
    }

    /// Removes `bits` from every line of `key`'s chain (a discard of those
    /// sectors: the cache forgets them).
    pub fn discard(&mut self, key: Key, bits: u8) -> Result<DiscardOutcome, IndexError> {
        if key.device_id == 0 || key.device_id > MAX_DEVICE_ID {
            return Err(IndexError::InvalidDeviceId(key.device_id));
        }
        let mut out = DiscardOutcome {
            device_id: key.device_id,
            removed_any: false,
            cleaned: LineList::new(),
        };
        let found = self.find(key)?;
        if found.head == NO_LINE || bits == 0 {
            return Ok(out);
        }
        let hnext = self.hnext_of(found)?;
        let mut chain = Chain::new();
        self.collect(found.head, key, &mut chain, |_, d| d & !bits)?;
        for (l, d) in chain.iter() {
            let old = self.meta(l)?.dirty;
            if old != d {
                out.removed_any = true;
            }
            if d == 0 && !out.cleaned.push(l) {
                return Err(IndexError::Corrupt { line: l });
            }
        }
        if out.removed_any {
            self.relink(found, hnext, &chain)?;
        }
        Ok(out)
    }

    /// The dirty bits of `line`.
    pub fn dirty(&self, line: u32) -> Result<u8, IndexError> {
        self.check_line(line)?;
        Ok(self.meta(line)?.dirty)
    }

    /// The key `line` holds dirty data for, `None` if it is clean.
    pub fn key_of(&self, line: u32) -> Result<Option<Key>, IndexError> {
        self.check_line(line)?;
        Ok(self.meta(line)?.key())
    }

    /// The line is about to be reused for a new segment; it must be clean.
    pub fn release(&mut self, line: u32) -> Result<(), IndexError> {
        self.check_line(line)?;
        let m = self.meta_mut(line)?;
        if m.dirty != 0 {
            return Err(IndexError::LineDirty {
                line,
                dirty: m.dirty,
            });
        }
        *m = LineMeta::EMPTY;
        Ok(())
    }

    /// Checks the whole structure (O(lines + buckets); for tests, fuzzing and
    /// debugging) and returns the number of dirty lines.
    ///
    /// Verified: every bucket list holds heads of distinct keys that hash to
    /// that bucket, with no cycle; every chain is made of lines of its key with
    /// nonzero, pairwise disjoint dirty sets and unlinked `hnext`; the lines
    /// reached this way are exactly the dirty lines; clean lines are
    /// [`LineMeta::EMPTY`].
    pub fn check_consistency(&self) -> Result<u32, IndexError> {
        let mut reached: u64 = 0;
        let mut budget = self.lines.len();
        for (b, &first) in (0..self.buckets.len()).zip(self.buckets.iter()) {
            let mut cur = first;
            while cur != NO_LINE {
                budget = budget
                    .checked_sub(1)
                    .ok_or(IndexError::Corrupt { line: cur })?;
                let head = *self.meta(cur)?;
                let Some(key) = head.key() else {
                    return Err(IndexError::Corrupt { line: cur });
                };
                if self.bucket_of(key) != b || self.find(key)?.head != cur {
                    return Err(IndexError::Corrupt { line: cur });
                }
                let mut seen: u8 = 0;
                let mut l = cur;
                let mut n = 0usize;
                while l != NO_LINE {
                    let m = self.meta(l)?;
                    n = n.saturating_add(1);
                    if !m.matches(key)
                        || m.dirty & seen != 0
                        || n > MAX_CHAIN
                        || (l != cur && m.hnext != NO_LINE)
                    {
                        return Err(IndexError::Corrupt { line: l });
                    }
                    seen |= m.dirty;
                    reached = reached.saturating_add(1);
                    l = m.prev;
                }
                cur = head.hnext;
            }
        }
        let mut dirty_lines: u64 = 0;
        for (i, m) in (0..self.lines.len()).zip(self.lines.iter()) {
            if m.dirty != 0 {
                dirty_lines = dirty_lines.saturating_add(1);
            } else if *m != LineMeta::EMPTY {
                return Err(IndexError::Corrupt { line: i as u32 });
            }
        }
        if reached != dirty_lines {
            return Err(IndexError::Corrupt { line: NO_LINE });
        }
        Ok(dirty_lines as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn index(n: usize) -> Index<Vec<LineMeta>, Vec<u32>> {
        Index::new(vec![LineMeta::EMPTY; n], vec![0; buckets_for(n)]).unwrap()
    }

    #[test]
    fn line_meta_is_small() {
        assert!(core::mem::size_of::<LineMeta>() <= 24);
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
        let mut ix = Index::new(vec![LineMeta::EMPTY; 8], vec![0u32; 1]).unwrap();
        for i in 0..8 {
            ix.write(i, Key::new(1 + i as u8 % 3, u64::from(i)), 0xff)
                .unwrap();
        }
        assert_eq!(ix.check_consistency(), Ok(8));
        for i in 0..8 {
            assert_eq!(ix.lookup(Key::new(1 + i as u8 % 3, u64::from(i))), Some(i));
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
            Index::new(vec![LineMeta::EMPTY; 4], vec![0u32; 3]),
            Err(IndexError::BadBucketCount { len: 3 })
        ));
        assert!(matches!(
            Index::new(vec![LineMeta::EMPTY; 4], Vec::<u32>::new()),
            Err(IndexError::BadBucketCount { len: 0 })
        ));
        assert_eq!(buckets_for(0), 1);
        assert_eq!(buckets_for(1000), 1024);
    }
}
