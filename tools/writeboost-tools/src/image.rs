//! Builds cache image files: formatted as the kernel formats a cache device,
//! with a record and any number of segments, optionally torn or corrupted
//! afterwards with [`patch`]. Used by the tools' tests; handy for
//! experiments (the file is sparse, so a 1 GiB image costs almost nothing).

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use wbformat::format::*;

/// Default format id of built images.
pub const DEFAULT_FORMAT_ID: u64 = 0x5742_5253_0000_0001;

/// One segment to write.
#[derive(Clone, Debug)]
pub struct SegmentPlan {
    /// Segment id (the slot follows from it).
    pub id: u64,
    /// Format id written in its header (normally the image's).
    pub format_id: u64,
    /// Its lines.
    pub lines: Vec<Metablock>,
    /// Sectors of the segment write (0 = first header sector) that do not
    /// reach the disk: a torn write. They keep their previous content.
    pub lost_sectors: Vec<u64>,
    /// `durable_upto` written in its header (what its writer knew was
    /// durable; 0 = nothing).
    pub durable_upto: u64,
}

/// A cache image under construction.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    device_sectors: u64,
    format_id: u64,
    format_time: u64,
    record: Record,
    identities: [u64; REGISTRY_ENTRIES],
    previous_record: bool,
    segments: Vec<SegmentPlan>,
    crc32c_segments: bool,
    sb_version: Option<u32>,
}

/// The 4 KiB content of line `k` of segment `id` in built images: every
/// 16 bytes hold `id` (u64), `k` (u32), the sector within the line, and a
/// marker, so a reader can tell which write it sees.
pub fn line_data(id: u64, k: u32) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK_SIZE];
    for (i, chunk) in b.chunks_mut(16).enumerate() {
        chunk[..8].copy_from_slice(&id.to_le_bytes());
        chunk[8..12].copy_from_slice(&k.to_le_bytes());
        chunk[12] = (i * 16 / SECTOR_SIZE) as u8;
        chunk[13..16].copy_from_slice(b"WBL");
    }
    b
}

/// The bytes of a whole segment write: header block then line blocks.
pub fn segment_bytes(format_id: u64, id: u64, sum: SegmentSum, lines: &[Metablock]) -> Result<Vec<u8>> {
    segment_bytes_durable(format_id, id, 0, sum, lines)
}

/// [`segment_bytes`] with the header's `durable_upto` set.
pub fn segment_bytes_durable(format_id: u64, id: u64, durable_upto: u64, sum: SegmentSum, lines: &[Metablock]) -> Result<Vec<u8>> {
    let mut h = SegmentHeader::new(format_id, id);
    h.durable_upto = durable_upto;
    // The header version the module writes with this checksum: version 3
    // (line flags, clean lines) on a version 4 superblock's cache.
    if matches!(sum, SegmentSum::Xxh64(_)) {
        h.version = SEGMENT_VERSION_V3;
    }
    for mb in lines {
        h.push(*mb)
            .map_err(|e| anyhow::anyhow!("segment {id}: {e}"))?;
    }
    let mut buf = vec![0u8; BLOCK_SIZE * (lines.len() + 1)];
    for k in 0..lines.len() {
        buf[BLOCK_SIZE * (k + 1)..BLOCK_SIZE * (k + 2)].copy_from_slice(&line_data(id, k as u32));
    }
    encode_segment_buffer(&h, &mut buf, sum)
        .map_err(|e| anyhow::anyhow!("segment {id}: {e}"))?;
    Ok(buf)
}

impl ImageBuilder {
    /// An image of `device_sectors` sectors.
    pub fn new(device_sectors: u64) -> Result<Self> {
        Geometry::from_device_sectors(device_sectors)?;
        Ok(Self {
            device_sectors,
            format_id: DEFAULT_FORMAT_ID,
            format_time: 1_700_000_000,
            record: Record::new(DEFAULT_FORMAT_ID),
            identities: [0; REGISTRY_ENTRIES],
            previous_record: true,
            segments: Vec::new(),
            crc32c_segments: false,
            sb_version: None,
        })
    }

    /// An image with `nr_segments` segment slots.
    pub fn with_segments(nr_segments: u64) -> Result<Self> {
        Self::new((nr_segments + 1) * SEGMENT_SECTORS)
    }

    /// The geometry.
    pub fn geometry(&self) -> Geometry {
        Geometry::from_device_sectors(self.device_sectors).expect("checked in new")
    }

    /// Sets the format id.
    pub fn format_id(&mut self, format_id: u64) -> &mut Self {
        self.format_id = format_id;
        self.record.format_id = format_id;
        self
    }

    /// The format id.
    pub fn get_format_id(&self) -> u64 {
        self.format_id
    }

    /// Builds a superblock version 3 image (CRC32C segment checksums), as
    /// modules before version 4 formatted, instead of a version 4 one.
    pub fn crc32c_segments(&mut self, yes: bool) -> &mut Self {
        self.crc32c_segments = yes;
        self
    }

    /// Builds an image of superblock version `v` (2 to 5; see
    /// `Superblock::with_version`) instead of the current one.
    pub fn superblock_version(&mut self, v: u32) -> &mut Self {
        self.sb_version = Some(v);
        self
    }

    /// Sets the format time.
    pub fn format_time(&mut self, t: u64) -> &mut Self {
        self.format_time = t;
        self
    }

    /// Registers a device in the record.
    pub fn register(&mut self, device_id: u8, backing_sectors: u64) -> Result<&mut Self> {
        self.record.register(device_id, backing_sectors)?;
        Ok(self)
    }

    /// Records the identity of a registered device's backing disk
    /// (`wbformat::format::backing_identity`).
    pub fn identity(&mut self, device_id: u8, identity: u64) -> Result<&mut Self> {
        let slot = self
            .identities
            .get_mut(usize::from(device_id))
            .filter(|_| device_id != 0)
            .ok_or(RegistryError::InvalidDeviceId(device_id))?;
        *slot = identity;
        Ok(self)
    }

    /// Sets the record's `last_migrated_segment_id`.
    pub fn last_migrated(&mut self, id: u64) -> &mut Self {
        self.record.last_migrated_segment_id = id;
        self
    }

    /// Sets the record's generation.
    pub fn generation(&mut self, g: u64) -> &mut Self {
        self.record.generation = g;
        self
    }

    /// Whether the other record slot gets the previous generation (default)
    /// or stays zero.
    pub fn previous_record(&mut self, yes: bool) -> &mut Self {
        self.previous_record = yes;
        self
    }

    /// Adds segment `id` with these lines, written completely.
    pub fn segment(&mut self, id: u64, lines: &[Metablock]) -> &mut Self {
        self.segments.push(SegmentPlan {
            id,
            format_id: self.format_id,
            lines: lines.to_vec(),
            lost_sectors: vec![],
            durable_upto: 0,
        });
        self
    }

    /// Adds segment `id`, of which the sectors `lost` (0 = first header
    /// sector) never reached the disk.
    pub fn torn_segment(&mut self, id: u64, lines: &[Metablock], lost: &[u64]) -> &mut Self {
        self.segments.push(SegmentPlan {
            id,
            format_id: self.format_id,
            lines: lines.to_vec(),
            lost_sectors: lost.to_vec(),
            durable_upto: 0,
        });
        self
    }

    /// Adds segment `id` whose header says every id up to `durable_upto`
    /// was durable when it was written.
    pub fn durable_segment(&mut self, id: u64, durable_upto: u64, lines: &[Metablock]) -> &mut Self {
        self.segments.push(SegmentPlan {
            id,
            format_id: self.format_id,
            lines: lines.to_vec(),
            lost_sectors: vec![],
            durable_upto,
        });
        self
    }

    /// Adds a segment as written by another format of the device.
    pub fn foreign_segment(&mut self, id: u64, format_id: u64, lines: &[Metablock]) -> &mut Self {
        self.segments.push(SegmentPlan {
            id,
            format_id,
            lines: lines.to_vec(),
            lost_sectors: vec![],
            durable_upto: 0,
        });
        self
    }

    /// Writes the image to `path` (created or truncated; sparse).
    pub fn write_file(&self, path: &Path) -> Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.set_len(self.device_sectors * SECTOR_SIZE as u64)?;
        self.write_to(&file)
    }

    /// Writes the image to an open file of the right size.
    pub fn write_to(&self, file: &File) -> Result<()> {
        let g = self.geometry();
        let mut b = vec![0u8; BLOCK_SIZE];
        let mut sb = Superblock::new(self.device_sectors, self.format_id, self.format_time)?;
        if self.crc32c_segments {
            sb = sb.with_version(SUPERBLOCK_VERSION_V3);
        }
        if let Some(v) = self.sb_version {
            sb = sb.with_version(v);
        }
        encode_superblock(&sb, &mut b)?;
        file.write_all_at(&b, 0)?;
        if self.previous_record && self.record.generation > 0 {
            let mut prev = self.record;
            prev.generation -= 1;
            encode_record_with_identities(&prev, &self.identities, &mut b)?;
            file.write_all_at(&b, prev.sector() * SECTOR_SIZE as u64)?;
        }
        encode_record_with_identities(&self.record, &self.identities, &mut b)?;
        file.write_all_at(&b, self.record.sector() * SECTOR_SIZE as u64)?;
        for s in &self.segments {
            let bytes = segment_bytes_durable(s.format_id, s.id, s.durable_upto, crate::segment_sum(&sb), &s.lines)?;
            let start = g.segment_start_sector(g.slot_of_id(s.id)?)?;
            for (i, sector) in bytes.chunks(SECTOR_SIZE).enumerate() {
                if !s.lost_sectors.contains(&(i as u64)) {
                    file.write_all_at(sector, (start + i as u64) * SECTOR_SIZE as u64)?;
                }
            }
        }
        Ok(())
    }
}

/// Overwrites bytes of a file at byte offset `offset`.
pub fn patch(path: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all_at(bytes, offset)?;
    Ok(())
}

/// Xors one byte of a file.
pub fn flip(path: &Path, offset: u64, mask: u8) -> Result<()> {
    let f = OpenOptions::new().read(true).write(true).open(path)?;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset)?;
    b[0] ^= mask;
    f.write_all_at(&b, offset)?;
    Ok(())
}

/// Byte offset of the header of the slot of segment `id`.
pub fn segment_offset(geometry: &Geometry, id: u64) -> Result<u64> {
    let slot = geometry.slot_of_id(id)?;
    Ok(geometry.segment_start_sector(slot)? * SECTOR_SIZE as u64)
}

/// A dirty line of `device_id` at 4 KiB block `block` of its backing device.
pub fn dirty(device_id: u8, block: u64, bits: u8) -> Metablock {
    Metablock {
        sector: block * SECTORS_PER_BLOCK,
        device_id,
        dirty_bits: bits,
        flags: 0,
    }
}

/// Checks that `path` looks like an image this module wrote (for tests).
pub fn file_sectors(path: &Path) -> Result<u64> {
    let len = std::fs::metadata(path)?.len();
    if len % SECTOR_SIZE as u64 != 0 {
        bail!("{} is not a whole number of sectors", path.display());
    }
    Ok(len / SECTOR_SIZE as u64)
}
