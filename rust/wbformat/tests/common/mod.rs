//! Helpers shared by the integration tests: a sparse in-memory disk and
//! builders for formatted cache images.
#![allow(dead_code)]

use std::collections::HashMap;
use wbformat::crc32c::crc32c_raw_update;
use wbformat::format::*;

/// An xxh64 with seed 0 of the concatenation of `pieces`, over the
/// `xxhash-rust` crate (the tools' implementation).
pub fn xxh64_pieces(pieces: [&[u8]; 4]) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for p in pieces {
        h.update(p);
    }
    h.digest()
}

/// The segment checksum of the cache of `sb`.
pub fn sum_of(sb: &Superblock) -> SegmentSum {
    sb.segment_sum(crc32c_raw_update, xxh64_pieces)
}

/// The segment checksum of a cache formatted now (superblock version 4).
pub fn default_sum() -> SegmentSum {
    SegmentSum::Xxh64(xxh64_pieces)
}

/// Format id used by the tests.
pub const FORMAT_ID: u64 = 0x5eed_0123_4567_89ab;

/// A sparse disk of 512-byte sectors; unwritten sectors read as zeros.
#[derive(Clone, Default)]
pub struct MemDisk {
    pub nr_sectors: u64,
    map: HashMap<u64, [u8; SECTOR_SIZE]>,
}

impl MemDisk {
    pub fn new(nr_sectors: u64) -> Self {
        Self {
            nr_sectors,
            map: HashMap::new(),
        }
    }

    /// Writes whole sectors.
    pub fn write(&mut self, sector: u64, data: &[u8]) {
        assert_eq!(data.len() % SECTOR_SIZE, 0);
        for (i, chunk) in data.chunks(SECTOR_SIZE).enumerate() {
            let s = sector + i as u64;
            assert!(s < self.nr_sectors, "write past the end");
            let mut b = [0u8; SECTOR_SIZE];
            b.copy_from_slice(chunk);
            self.map.insert(s, b);
        }
    }

    /// Writes only the sectors of `data` selected by `keep(i)`.
    pub fn write_partial(&mut self, sector: u64, data: &[u8], keep: impl Fn(usize) -> bool) {
        for (i, chunk) in data.chunks(SECTOR_SIZE).enumerate() {
            if keep(i) {
                self.write(sector + i as u64, chunk);
            }
        }
    }

    pub fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), String> {
        assert_eq!(buf.len() % SECTOR_SIZE, 0);
        let n = (buf.len() / SECTOR_SIZE) as u64;
        if sector + n > self.nr_sectors {
            return Err(format!("read past the end: sector {sector} + {n}"));
        }
        for (i, chunk) in buf.chunks_mut(SECTOR_SIZE).enumerate() {
            match self.map.get(&(sector + i as u64)) {
                Some(b) => chunk.copy_from_slice(b),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }

    pub fn read_vec(&self, sector: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.read(sector, &mut v).unwrap();
        v
    }

    pub fn block(&self, block: u64) -> Vec<u8> {
        self.read_vec(block * SECTORS_PER_BLOCK, BLOCK_SIZE)
    }
}

/// The 512-byte content that sector `j` of line `k` of segment `id` holds in
/// the tests: a recognisable tag.
pub fn sector_tag(id: u64, k: u32, j: u32) -> [u8; SECTOR_SIZE] {
    let mut b = [0u8; SECTOR_SIZE];
    for (i, chunk) in b.chunks_mut(16).enumerate() {
        chunk[..8].copy_from_slice(&id.to_le_bytes());
        chunk[8..12].copy_from_slice(&k.to_le_bytes());
        chunk[12] = j as u8;
        chunk[13] = i as u8;
        chunk[14] = 0xa5;
        chunk[15] = 0x5a;
    }
    b
}

/// Decodes a tag written by [`sector_tag`].
pub fn parse_tag(b: &[u8]) -> (u64, u32, u32) {
    (
        u64::from_le_bytes(b[..8].try_into().unwrap()),
        u32::from_le_bytes(b[8..12].try_into().unwrap()),
        u32::from(b[12]),
    )
}

/// The bytes of segment `id` with the given metablocks: header block followed
/// by one tagged data block per line.
pub fn segment_bytes(format_id: u64, id: u64, lines: &[Metablock]) -> Vec<u8> {
    segment_bytes_full(format_id, id, default_sum(), lines, FORMAT_VERSION)
}

/// [`segment_bytes`] checksummed with `sum`.
pub fn segment_bytes_with(format_id: u64, id: u64, sum: SegmentSum, lines: &[Metablock]) -> Vec<u8> {
    segment_bytes_full(format_id, id, sum, lines, FORMAT_VERSION)
}

/// [`segment_bytes`] with a header of version `version` (2, or 3 with line
/// flags).
pub fn segment_bytes_version(format_id: u64, id: u64, lines: &[Metablock], version: u32) -> Vec<u8> {
    segment_bytes_full(format_id, id, default_sum(), lines, version)
}

/// [`segment_bytes`] checksummed with `sum`, with a header of version `version`.
pub fn segment_bytes_full(format_id: u64, id: u64, sum: SegmentSum, lines: &[Metablock], version: u32) -> Vec<u8> {
    let mut h = SegmentHeader::new(format_id, id);
    h.version = version;
    for mb in lines {
        h.push(*mb).unwrap();
    }
    let mut buf = vec![0u8; BLOCK_SIZE * (lines.len() + 1)];
    for k in 0..lines.len() {
        for j in 0..8 {
            let off = BLOCK_SIZE * (k + 1) + SECTOR_SIZE * j;
            buf[off..off + SECTOR_SIZE].copy_from_slice(&sector_tag(id, k as u32, j as u32));
        }
    }
    encode_segment_buffer(&h, &mut buf, sum).unwrap();
    buf
}

/// A formatted in-memory cache device.
pub struct Image {
    pub disk: MemDisk,
    pub sb: Superblock,
    pub record: Record,
}

impl Image {
    /// Formats a device of `nr_segments` segments (plus `extra` unused
    /// sectors at the end).
    pub fn format(nr_segments: u64, extra: u64) -> Self {
        let device_sectors = (nr_segments + 1) * SEGMENT_SECTORS + extra;
        let mut disk = MemDisk::new(device_sectors);
        let sb = Superblock::new(device_sectors, FORMAT_ID, 1_700_000_000).unwrap();
        let mut b = vec![0u8; BLOCK_SIZE];
        encode_superblock(&sb, &mut b).unwrap();
        disk.write(0, &b);
        let record = Record::new(FORMAT_ID);
        let mut img = Self { disk, sb, record };
        img.write_record();
        img
    }

    pub fn geometry(&self) -> Geometry {
        self.sb.geometry()
    }

    /// Writes `self.record` to its slot.
    pub fn write_record(&mut self) {
        let mut b = vec![0u8; BLOCK_SIZE];
        encode_record(&self.record, &mut b).unwrap();
        self.disk.write(self.record.sector(), &b);
    }

    /// Bumps the generation, applies `f` and writes the record.
    pub fn update_record(&mut self, f: impl FnOnce(&mut Record)) {
        self.record = self.record.next_generation().unwrap();
        f(&mut self.record);
        self.write_record();
    }

    /// Writes segment `id` completely.
    pub fn write_segment(&mut self, id: u64, lines: &[Metablock]) {
        let bytes = segment_bytes_with(FORMAT_ID, id, sum_of(&self.sb), lines);
        let slot = self.geometry().slot_of_id(id).unwrap();
        let start = self.geometry().segment_start_sector(slot).unwrap();
        self.disk.write(start, &bytes);
    }

    /// Start sector of the slot of segment `id`.
    pub fn segment_start(&self, id: u64) -> u64 {
        let g = self.geometry();
        g.segment_start_sector(g.slot_of_id(id).unwrap()).unwrap()
    }
}

/// A dirty metablock.
pub fn mb(device_id: u8, block: u64, bits: u8) -> Metablock {
    Metablock {
        sector: block * SECTORS_PER_BLOCK,
        device_id,
        dirty_bits: bits,
        flags: 0,
    }
}

use wbformat::index::{buckets_for, Index, LineMeta, Link};
use wbformat::recovery::{replay_log, DirtyCounts, RecoverySummary, ReplayError};

/// An index over heap storage.
pub type VecIndex = Index<Vec<LineMeta>, Vec<Link>>;

/// A fresh index for geometry `g`.
pub fn new_index(g: &Geometry) -> VecIndex {
    let n = g.nr_lines() as usize;
    Index::new(vec![LineMeta::EMPTY; n], vec![Link::NONE; buckets_for(n)]).unwrap()
}

/// What recovery of an image produced.
pub struct Recovered {
    pub index: VecIndex,
    pub counts: DirtyCounts,
    pub summary: RecoverySummary,
    pub record: Record,
}

/// Runs recovery on `disk` exactly as the kernel would: superblock, record
/// selection, then the log walk.
pub fn recover(disk: &MemDisk) -> Result<Recovered, String> {
    let sb = decode_superblock(&disk.block(0)).map_err(|e| e.to_string())?;
    check_device_size(&sb, disk.nr_sectors).map_err(|e| e.to_string())?;
    let choice =
        select_record(&disk.block(1), &disk.block(2), sb.format_id()).map_err(|e| e.to_string())?;
    let g = sb.geometry();
    let mut index = new_index(&g);
    let mut counts = DirtyCounts::new();
    let mut header = SegmentHeader::default();
    let mut buf = vec![0u8; BLOCK_SIZE * BLOCKS_PER_SEGMENT];
    let summary = replay_log(
        &g,
        sb.format_id(),
        choice.record.last_migrated_segment_id,
        sum_of(&sb),
        &mut index,
        &mut counts,
        &mut header,
        &mut buf,
        |sector, b| disk.read(sector, b),
    )
    .map_err(|e: ReplayError<String>| e.to_string())?;
    Ok(Recovered {
        index,
        counts,
        summary,
        record: choice.record,
    })
}

/// The engine's storage on the host: plain vectors.
pub struct HostStore;

impl wbformat::engine::Storage for HostStore {
    type Lines = Vec<wbformat::index::LineMeta>;
    type Buckets = Vec<wbformat::index::Link>;
    type Slots = Vec<wbformat::engine::SlotMeta>;
    type BufLines = Vec<wbformat::engine::BufLine>;
    type Discards = Vec<Discard>;
    type Devs = Vec<wbformat::engine::DevMeta>;
    type Cells = Vec<wbformat::engine::StageCell>;
}

/// An empty engine over host storage.
pub fn host_engine(geo: Geometry, format_id: u64, generation: u64) -> wbformat::engine::Engine<HostStore> {
    use wbformat::engine::*;
    let n = geo.nr_lines() as usize;
    let parts = Parts::<HostStore> {
        lines: vec![wbformat::index::LineMeta::EMPTY; n],
        buckets: vec![wbformat::index::Link::NONE; wbformat::index::buckets_for(n)],
        slots: vec![SlotMeta::default(); geo.nr_segments() as usize],
        buf_lines: vec![BufLine::default(); NR_BUFS * LINES_PER_SEGMENT as usize],
        discards: vec![Discard::EMPTY; NR_BUFS * MAX_DISCARDS],
        devs: vec![DevMeta::default(); REGISTRY_ENTRIES],
        cells: vec![StageCell::default(); MAX_READ_CACHE_CELLS as usize],
    };
    Engine::new(geo, format_id, generation, parts).expect("engine storage")
}

/// [`segment_bytes`] with the header's `durable_upto` set.
pub fn segment_bytes_durable(format_id: u64, id: u64, durable_upto: u64, lines: &[Metablock]) -> Vec<u8> {
    segment_bytes_durable_with(format_id, id, durable_upto, default_sum(), lines)
}

/// [`segment_bytes_durable`] checksummed with `sum`.
pub fn segment_bytes_durable_with(format_id: u64, id: u64, durable_upto: u64, sum: SegmentSum, lines: &[Metablock]) -> Vec<u8> {
    let mut h = SegmentHeader::new(format_id, id);
    h.durable_upto = durable_upto;
    for mb in lines {
        h.push(*mb).unwrap();
    }
    let mut buf = segment_bytes_with(format_id, id, sum, lines);
    encode_segment_buffer(&h, &mut buf, sum).unwrap();
    buf
}

impl Image {
    /// Formats like [`Image::format`] with the superblock's log horizon set
    /// (0: a version 2 superblock, as older versions formatted).
    pub fn format_with_horizon(nr_segments: u64, log_horizon: u32) -> Self {
        let mut img = Self::format(nr_segments, 0);
        img.sb = img.sb.with_log_horizon(log_horizon);
        let mut b = vec![0u8; BLOCK_SIZE];
        encode_superblock(&img.sb, &mut b).unwrap();
        img.disk.write(0, &b);
        img
    }

    /// Writes segment `id` completely, its header saying `durable_upto`.
    pub fn write_segment_durable(&mut self, id: u64, durable_upto: u64, lines: &[Metablock]) {
        let bytes = segment_bytes_durable_with(FORMAT_ID, id, durable_upto, sum_of(&self.sb), lines);
        let start = self.segment_start(id);
        self.disk.write(start, &bytes);
    }

    /// Whether the slot of `id` holds a header that decodes as segment `id`.
    pub fn holds(&self, id: u64) -> bool {
        let b = self.disk.read_vec(self.segment_start(id), BLOCK_SIZE);
        decode_segment_header(&b, FORMAT_ID, id).is_ok()
    }

    /// Runs the kernel's resume ([`resume_engine`]) on this image with the
    /// superblock's horizon (or `horizon` when given), counting reads.
    pub fn resume(
        &mut self,
        horizon: Option<u32>,
        accept_loss: bool,
    ) -> Result<wbformat::recovery::ResumeSummary, wbformat::recovery::ResumeError<String>> {
        self.resume_on(horizon, accept_loss, None).0
    }

    /// [`Image::resume`], with reads of more than a block at `fail_big`
    /// failing; also returns the number of reads.
    pub fn resume_on(
        &mut self,
        horizon: Option<u32>,
        accept_loss: bool,
        fail_big: Option<u64>,
    ) -> (Result<wbformat::recovery::ResumeSummary, wbformat::recovery::ResumeError<String>>, u64) {
        let geo = self.geometry();
        let rec = self.record;
        let mut e = host_engine(geo, FORMAT_ID, rec.generation);
        let mut hdr = SegmentHeader::default();
        let mut buf = vec![0u8; BLOCK_SIZE * BLOCKS_PER_SEGMENT];
        let h = horizon.unwrap_or(self.sb.log_horizon());
        let mut dev = MemLog { disk: &mut self.disk, reads: 0, fail_big };
        let r = wbformat::recovery::resume_engine(&mut dev, geo, FORMAT_ID, &rec, sum_of(&self.sb), &mut e, &mut hdr, &mut buf, h, accept_loss);
        (r, dev.reads)
    }
}

/// A [`MemDisk`] as resume's device, counting reads.
pub struct MemLog<'a> {
    pub disk: &'a mut MemDisk,
    pub reads: u64,
    /// Reads of more than one block at this sector fail.
    pub fail_big: Option<u64>,
}

impl wbformat::recovery::LogDevice for MemLog<'_> {
    type Error = String;
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), String> {
        self.reads += 1;
        if self.fail_big == Some(sector) && buf.len() > BLOCK_SIZE {
            return Err(format!("injected read error at {sector}"));
        }
        self.disk.read(sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), String> {
        self.disk.write(sector, buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
}
