//! What the tools report about a cache device, computed with `wbformat`
//! exactly as the kernel computes it at resume.

use crate::device::CacheDevice;
use anyhow::Result;
use serde::Serialize;
use wbformat::format::*;
use wbformat::index::{buckets_for, Index, LineMeta, Link};
use wbformat::recovery::{check_registry, replay_segment, DirtyCounts, LogEnd, LogScan};

/// `0x`-prefixed 16-digit hex, as format ids are shown.
pub fn hex64(v: u64) -> String {
    format!("{v:#018x}")
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The superblock, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct SuperblockInfo {
    /// Superblock version (2; 3 with a log horizon; 4 with xxh64 segment
    /// checksums).
    pub version: u32,
    /// The segment checksum: `"crc32c"` (versions 2, 3) or `"xxh64"` (4).
    pub segment_checksum: &'static str,
    /// Log horizon (0 for a version 2 superblock): resume reads at most
    /// this many headers past the end of the log.
    pub log_horizon: u32,
    /// Format id (hex).
    pub format_id: String,
    /// Number of segment slots.
    pub nr_segments: u64,
    /// Device size at format time, in sectors.
    pub device_sectors: u64,
    /// Format time, seconds since the epoch.
    pub format_time: u64,
    /// Format time, readable.
    pub format_time_utc: String,
}

impl SuperblockInfo {
    /// From a decoded superblock.
    pub fn new(sb: &Superblock) -> Self {
        Self {
            version: sb.version(),
            segment_checksum: match crate::segment_sum(sb) {
                SegmentSum::Crc32c(_) => "crc32c",
                SegmentSum::Xxh64(_) => "xxh64",
            },
            log_horizon: sb.log_horizon(),
            format_id: hex64(sb.format_id()),
            nr_segments: sb.nr_segments(),
            device_sectors: sb.device_sectors(),
            format_time: sb.format_time(),
            format_time_utc: utc(sb.format_time()),
        }
    }
}

/// A registry entry.
#[derive(Clone, Debug, Serialize)]
pub struct RegistryEntry {
    /// Device id.
    pub device_id: u8,
    /// Registered backing size in sectors.
    pub backing_sectors: u64,
    /// Recorded identity of the backing disk (`None`: not recorded, a
    /// record of an older version).
    pub backing_identity: Option<u64>,
}

/// One record slot, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct RecordSlotInfo {
    /// Slot (0 = block 1, 1 = block 2).
    pub slot: u32,
    /// Block number.
    pub block: u64,
    /// `current`, `previous` or `invalid`.
    pub status: String,
    /// Why it is invalid.
    pub error: Option<String>,
    /// Generation.
    pub generation: Option<u64>,
    /// Last migrated segment id.
    pub last_migrated_segment_id: Option<u64>,
    /// Registered devices.
    pub registry: Vec<RegistryEntry>,
}

/// The registered devices of a record.
pub fn registry_of(r: &Record, block: &[u8]) -> Vec<RegistryEntry> {
    r.registered_set()
        .iter()
        .map(|d| RegistryEntry {
            device_id: d,
            backing_sectors: r.registered(d).unwrap_or(0),
            backing_identity: record_identity(block, d),
        })
        .collect()
}

/// Reads and decodes the superblock.
pub fn read_superblock(dev: &CacheDevice) -> Result<Result<Superblock, SuperblockError>> {
    if dev.sectors() < SECTORS_PER_BLOCK {
        return Ok(Err(SuperblockError::Truncated {
            found: (dev.sectors() * SECTOR_SIZE as u64) as usize,
        }));
    }
    Ok(decode_superblock(&dev.read_block(0)?))
}

/// Both record slots checked against `format_id`, and the current one.
pub struct Records {
    /// Each slot's decoding.
    pub slots: [Result<Record, RecordError>; 2],
    /// Each slot's block (it holds the backing identities).
    pub blocks: [Vec<u8>; 2],
    /// The current record, or why there is none.
    pub choice: Result<RecordChoice, NoValidRecord>,
}

/// Reads both record slots.
pub fn read_records(dev: &CacheDevice, format_id: u64) -> Result<Records> {
    let b1 = dev.read_block(RECORD_BLOCKS[0])?;
    let b2 = dev.read_block(RECORD_BLOCKS[1])?;
    Ok(Records {
        slots: [
            decode_record_slot(&b1, format_id, 0),
            decode_record_slot(&b2, format_id, 1),
        ],
        choice: select_record(&b1, &b2, format_id),
        blocks: [b1, b2],
    })
}

impl Records {
    /// The report of both slots.
    pub fn info(&self) -> Vec<RecordSlotInfo> {
        let current = self.choice.as_ref().ok().map(|c| c.slot);
        (0..2u32)
            .zip(self.slots.iter())
            .map(|(slot, r)| match r {
                Ok(rec) => RecordSlotInfo {
                    slot,
                    block: RECORD_BLOCKS[slot as usize],
                    status: if current == Some(slot) {
                        "current"
                    } else {
                        "previous"
                    }
                    .into(),
                    error: None,
                    generation: Some(rec.generation),
                    last_migrated_segment_id: Some(rec.last_migrated_segment_id),
                    registry: registry_of(rec, &self.blocks[slot as usize]),
                },
                Err(e) => RecordSlotInfo {
                    slot,
                    block: RECORD_BLOCKS[slot as usize],
                    status: "invalid".into(),
                    error: Some(e.to_string()),
                    generation: None,
                    last_migrated_segment_id: None,
                    registry: vec![],
                },
            })
            .collect()
    }
}

/// The state of one segment slot.
#[derive(Clone, Debug, Serialize)]
pub struct SlotInfo {
    /// Slot number.
    pub slot: u32,
    /// First sector.
    pub start_sector: u64,
    /// Segment id in the header, if the header parses.
    pub id: Option<u64>,
    /// Number of lines, if the header parses.
    pub nr_lines: Option<u32>,
    /// Dirty lines (lines with dirty bits that are not clean lines).
    pub dirty_lines: Option<u32>,
    /// Clean lines (read caching: a copy of the backing device's data,
    /// never written back).
    pub clean_lines: Option<u32>,
    /// Direct lines (written by the user's bio straight to the cache
    /// device, not covered by the segment checksum).
    pub direct_lines: Option<u32>,
    /// `valid`, `empty`, `foreign`, `bad-header`, `bad-checksum` or
    /// `missing` (past the end of a shrunk device).
    pub status: String,
    /// Details of a bad status.
    pub error: Option<String>,
    /// The segment is part of the replayable log.
    pub in_log: bool,
    /// The metablocks, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineInfo>>,
}

/// One metablock, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct LineInfo {
    /// Line number within the segment.
    pub k: u32,
    /// Owner device id.
    pub device_id: u8,
    /// Backing sector.
    pub sector: u64,
    /// Dirty bits (bit j = sector j of the line).
    pub dirty_bits: u8,
    /// A clean line (read caching): its 8 sectors equal the backing
    /// device's and are never written back.
    pub clean: bool,
    /// A direct line (written straight to the cache device by the user's
    /// bio; its data is not covered by the segment checksum).
    pub direct: bool,
}

/// Reads the header and (if it parses) the data of `slot`, and says what it
/// holds. `format_id` is the superblock's.
pub fn inspect_slot(
    dev: &CacheDevice,
    g: &Geometry,
    slot: u32,
    format_id: u64,
    sum: SegmentSum,
    with_lines: bool,
) -> Result<SlotInfo> {
    let start = g.segment_start_sector(slot)?;
    let mut buf = vec![0u8; BLOCK_SIZE];
    let mut info = SlotInfo {
        slot,
        start_sector: start,
        id: None,
        nr_lines: None,
        dirty_lines: None,
        clean_lines: None,
        direct_lines: None,
        status: String::new(),
        error: None,
        in_log: false,
        lines: None,
    };
    if start + SEGMENT_SECTORS > dev.sectors() {
        info.status = "missing".into();
        info.error = Some(format!(
            "the slot is past the end of the device ({} sectors)",
            dev.sectors()
        ));
        return Ok(info);
    }
    dev.read_at(start, &mut buf)?;
    let h = match parse_segment_header(&buf) {
        Ok(h) => h,
        Err(SegmentError::BadMagic) => {
            info.status = if buf.iter().all(|&b| b == 0) {
                "empty"
            } else {
                "bad-header"
            }
            .into();
            if info.status != "empty" {
                info.error = Some(SegmentError::BadMagic.to_string());
            }
            return Ok(info);
        }
        Err(e) => {
            info.status = "bad-header".into();
            info.error = Some(e.to_string());
            return Ok(info);
        }
    };
    info.id = Some(h.id);
    info.nr_lines = Some(h.nr_lines);
    info.dirty_lines = Some(h.lines().iter().filter(|m| m.dirty_bits != 0 && !m.is_clean()).count() as u32);
    info.clean_lines = Some(h.lines().iter().filter(|m| m.is_clean()).count() as u32);
    info.direct_lines = Some(h.lines().iter().filter(|m| m.is_direct()).count() as u32);
    if with_lines {
        info.lines = Some(
            h.lines()
                .iter()
                .zip(0u32..)
                .map(|(m, k)| LineInfo {
                    k,
                    device_id: m.device_id,
                    sector: m.sector,
                    dirty_bits: m.dirty_bits,
                    clean: m.is_clean(),
                    direct: m.is_direct(),
                })
                .collect(),
        );
    }
    if h.format_id != format_id {
        info.status = "foreign".into();
        info.error = Some(
            SegmentError::WrongFormatId {
                expected: format_id,
                found: h.format_id,
            }
            .to_string(),
        );
        return Ok(info);
    }
    let slot_ok = g.slot_of_id(h.id).map(|s| s == slot).unwrap_or(false);
    if !slot_ok {
        info.status = "bad-header".into();
        info.error = Some(format!(
            "segment id {} does not belong in slot {slot}",
            h.id
        ));
        return Ok(info);
    }
    let mut data = vec![0u8; h.nr_lines as usize * BLOCK_SIZE];
    if !data.is_empty() {
        dev.read_at(start + SECTORS_PER_BLOCK, &mut data)?;
    }
    match verify_segment(&h, &buf, &data, sum) {
        Ok(()) => info.status = "valid".into(),
        Err(e) => {
            info.status = "bad-checksum".into();
            info.error = Some(e.to_string());
        }
    }
    Ok(info)
}

/// A problem or a note of `writeboost-check`.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Short machine-readable code.
    pub code: String,
    /// One explanatory sentence.
    pub message: String,
}

/// Dirty data of one device after replay.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceDirty {
    /// Device id.
    pub device_id: u8,
    /// Lines holding its newest dirty data.
    pub dirty_lines: u64,
    /// Registered backing size, if registered.
    pub registered_sectors: Option<u64>,
}

/// One replayed segment.
#[derive(Clone, Debug, Serialize)]
pub struct LogSegment {
    /// Segment id.
    pub id: u64,
    /// Slot.
    pub slot: u32,
    /// Lines written.
    pub nr_lines: u32,
    /// Metablocks of dirty lines (clean lines not counted).
    pub dirty_metablocks: u32,
    /// Metablocks of clean lines (read caching).
    pub clean_metablocks: u32,
}

/// The replayable log, as the kernel's recovery sees it.
#[derive(Clone, Debug, Serialize)]
pub struct LogReport {
    /// The record's `last_migrated_segment_id`.
    pub last_migrated_segment_id: u64,
    /// First id of the log (`last_migrated + 1`).
    pub first_id: u64,
    /// Last id of the log (`== last_migrated` when the log is empty).
    pub last_id: u64,
    /// Segments replayed.
    pub replayed: u32,
    /// Id the kernel writes next.
    pub next_id: u64,
    /// `ring-full`, `never-written`, `stale`, `foreign`, `torn`,
    /// `newer-than-expected` or `corrupt`.
    pub end_kind: String,
    /// Why the log ends, in words.
    pub end: String,
    /// The replayed segments.
    pub segments: Vec<LogSegment>,
    /// Lines holding dirty data after replay.
    pub dirty_lines: u64,
    /// Lines whose data was entirely superseded by newer segments.
    pub superseded_lines: u64,
    /// Dirty data per device.
    pub devices: Vec<DeviceDirty>,
}

/// Everything `writeboost-check` found.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Path checked.
    pub device: String,
    /// Its size in sectors.
    pub device_sectors: u64,
    /// No problem was found.
    pub consistent: bool,
    /// The superblock, if valid.
    pub superblock: Option<SuperblockInfo>,
    /// Both record slots.
    pub records: Vec<RecordSlotInfo>,
    /// The log, if the metadata allowed walking it.
    pub log: Option<LogReport>,
    /// Problems: the cache is inconsistent or corrupt.
    pub problems: Vec<Finding>,
    /// Notes: normal states worth knowing.
    pub notes: Vec<Finding>,
}

impl CheckReport {
    fn problem(&mut self, code: &str, message: String) {
        self.problems.push(Finding {
            code: code.into(),
            message,
        });
    }

    fn note(&mut self, code: &str, message: String) {
        self.notes.push(Finding {
            code: code.into(),
            message,
        });
    }
}

/// Checks a cache device as the kernel's resume would, and more: the
/// superblock, both record slots, the log walk from `last_migrated + 1`
/// (headers, checksums, replay into an index), the end of the log, the slots
/// past it, and the dirty owners against the registry. `Err` only for I/O
/// errors.
pub fn check(dev: &CacheDevice) -> Result<CheckReport> {
    let mut rep = CheckReport {
        device: dev.path().display().to_string(),
        device_sectors: dev.sectors(),
        consistent: false,
        superblock: None,
        records: vec![],
        log: None,
        problems: vec![],
        notes: vec![],
    };
    let sb = match read_superblock(dev)? {
        Ok(sb) => sb,
        Err(e) => {
            rep.problem(
                "superblock",
                format!("The superblock is not valid ({e}), so nothing else can be located."),
            );
            return Ok(rep);
        }
    };
    rep.superblock = Some(SuperblockInfo::new(&sb));
    if let Err(e) = check_device_size(&sb, dev.sectors()) {
        rep.problem(
            "device-size",
            format!("{e}: the segments at the end of the device are missing."),
        );
        return Ok(rep);
    }
    if dev.sectors() > sb.device_sectors() {
        rep.note(
            "device-grew",
            format!(
                "The device has {} sectors, {} more than when formatted; the extra space is unused.",
                dev.sectors(),
                dev.sectors() - sb.device_sectors()
            ),
        );
    }
    let records = read_records(dev, sb.format_id())?;
    rep.records = records.info();
    let choice = match records.choice {
        Ok(c) => c,
        Err(e) => {
            rep.problem(
                "record",
                format!("{e}; the kernel cannot know what was migrated, so it refuses to resume."),
            );
            return Ok(rep);
        }
    };
    if let Err(e) = choice.other {
        rep.note(
            "record-slot",
            format!(
                "Record slot {} is not valid ({e}); this is normal after a torn record write or right after format.",
                1 - choice.slot
            ),
        );
    }
    walk_log(dev, &sb, &choice.record, &mut rep)?;
    rep.consistent = rep.problems.is_empty();
    Ok(rep)
}

fn classify_end(end: &LogEnd) -> (&'static str, bool) {
    match end {
        LogEnd::RingFull => ("ring-full", false),
        LogEnd::Invalid { error, .. } => match error {
            SegmentError::BadMagic => ("never-written", false),
            SegmentError::WrongFormatId { .. } => ("foreign", false),
            SegmentError::WrongId { expected, found } if found < expected => ("stale", false),
            SegmentError::WrongId { .. } => ("newer-than-expected", true),
            SegmentError::UnsupportedVersion(_) => ("corrupt", true),
            SegmentError::BadChecksum { .. }
            | SegmentError::Truncated { .. }
            | SegmentError::TooManyLines(_)
            | SegmentError::BadMetablock { .. }
            | SegmentError::TooManyDiscards(_)
            | SegmentError::BadDiscard { .. }
            | SegmentError::NonZeroReserved { .. } => ("torn", false),
        },
    }
}

fn walk_log(
    dev: &CacheDevice,
    sb: &Superblock,
    record: &Record,
    rep: &mut CheckReport,
) -> Result<()> {
    let g = sb.geometry();
    let fid = sb.format_id();
    let lm = record.last_migrated_segment_id;
    let n = g.nr_lines() as usize;
    let mut index = Index::new(vec![LineMeta::EMPTY; n], vec![Link::NONE; buckets_for(n)])?;
    let mut counts = DirtyCounts::new();
    let mut scan = LogScan::new(g, lm);
    let mut header = Box::new(SegmentHeader::default());
    let mut hb = vec![0u8; BLOCK_SIZE];
    let mut data = vec![0u8; BLOCK_SIZE * LINES_PER_SEGMENT as usize];
    let mut segments = vec![];
    let mut superseded = 0u64;
    let mut out_of_range = vec![];
    while let Some(c) = scan.next_candidate() {
        dev.read_at(c.start_sector, &mut hb)?;
        if let Err(e) = decode_segment_header_into(&hb, fid, c.id, &mut header) {
            scan.stop(e);
            continue;
        }
        let len = header.nr_lines as usize * BLOCK_SIZE;
        if len > 0 {
            dev.read_at(c.start_sector + SECTORS_PER_BLOCK, &mut data[..len])?;
        }
        if let Err(e) = verify_segment(&header, &hb, &data[..len], crate::segment_sum(sb)) {
            scan.stop(e);
            continue;
        }
        for (m, k) in header.lines().iter().zip(0u32..) {
            if m.dirty_bits == 0 {
                continue;
            }
            if let Some(size) = record.registered(m.device_id) {
                if dirty_end(m.sector, m.dirty_bits).is_none_or(|end| end > size)
                {
                    out_of_range.push(format!(
                        "Segment {} line {k} holds dirty data of device {} at sector {}, past the end of its \
                         registered backing device ({size} sectors): migration would write outside the device.",
                        c.id, m.device_id, m.sector
                    ));
                }
            }
        }
        let st = replay_segment(&mut index, &g, c.slot, &header, |d, delta| {
            counts.apply(d, delta)
        })?;
        superseded += u64::from(st.lines_superseded);
        segments.push(LogSegment {
            id: c.id,
            slot: c.slot,
            nr_lines: header.nr_lines,
            dirty_metablocks: header.lines().iter().filter(|m| m.dirty_bits != 0 && !m.is_clean()).count() as u32,
            clean_metablocks: header.lines().iter().filter(|m| m.is_clean()).count() as u32,
        });
        scan.accept(&header)?;
    }
    let end = scan.end().unwrap_or(LogEnd::RingFull);
    let (kind, bad) = classify_end(&end);
    let last = scan.last_valid_id();
    let end_text = match (&end, kind) {
        (LogEnd::RingFull, _) => format!(
            "The log fills all {} segment slots; the kernel must migrate segment {} before it can write segment {}.",
            g.nr_segments(),
            lm + 1,
            scan.next_id()
        ),
        (LogEnd::Invalid { id, slot, .. }, "never-written") => {
            format!("Slot {slot}, where segment {id} would be, was never written (or was zeroed): the normal end of the log.")
        }
        (LogEnd::Invalid { id, slot, .. }, "foreign") => format!(
            "Slot {slot}, where segment {id} would be, holds a segment of an earlier format of the device: the normal end of the log."
        ),
        (LogEnd::Invalid { slot, error: SegmentError::WrongId { expected, found }, .. }, "stale") => format!(
            "Slot {slot} still holds segment {found} from an earlier pass around the ring, not segment {expected}: the normal end of the log."
        ),
        (LogEnd::Invalid { slot, error: SegmentError::WrongId { expected, found }, .. }, "newer-than-expected") => format!(
            "Slot {slot} holds segment {found} where segment {expected} was expected: the slot was overwritten although the \
             record does not say its previous segment was migrated (last_migrated_segment_id {lm} is behind the log)."
        ),
        (LogEnd::Invalid { id, slot, error }, "torn") => format!(
            "Segment {id} in slot {slot} is incomplete ({error}): a torn write, normal after a crash while it was being \
             written; its data was never acknowledged as durable and is dropped."
        ),
        (LogEnd::Invalid { id, slot, error }, _) => {
            format!("Segment {id} in slot {slot} is corrupt ({error}); the log ends before it.")
        }
    };
    if bad {
        rep.problem(kind, end_text.clone());
    } else if let (LogEnd::Invalid { id, .. }, "torn") = (&end, kind) {
        rep.note(
            "torn-segment",
            format!("The log ends at torn segment {id}: normal after a crash, nothing acknowledged is lost."),
        );
    }
    // Slots past the end must not hold a valid segment of the window.
    for c in scan.beyond_end() {
        dev.read_at(c.start_sector, &mut hb)?;
        if decode_segment_header_into(&hb, fid, c.id, &mut header).is_err() {
            continue;
        }
        if wbformat::recovery::proves_loss(last + 1, &header) {
            rep.problem(
                "lost-durable-segment",
                format!(
                    "Segment {} is unreadable or corrupt, but segment {} (slot {}) was written after segments up to {}                      were durable: acknowledged data in segment {} is lost (media corruption, not a torn write).                      The kernel refuses to resume; `resume_cache <dev> accept_data_loss` resumes without it.",
                    last + 1,
                    c.id,
                    c.slot,
                    header.durable_upto,
                    last + 1
                ),
            );
        }
        let len = header.nr_lines as usize * BLOCK_SIZE;
        if len > 0 {
            dev.read_at(c.start_sector + SECTORS_PER_BLOCK, &mut data[..len])?;
        }
        if verify_segment(&header, &hb, &data[..len], crate::segment_sum(sb)).is_ok() {
            rep.problem(
                "valid-past-end",
                format!(
                    "Segment {} in slot {} is valid but lies past the end of the log (which stops before segment {}): \
                     recovery ignores it now, and unless it is invalidated before segment {} is rewritten it would be \
                     replayed later in place of newer data.",
                    c.id,
                    c.slot,
                    last + 1,
                    last + 1
                ),
            );
        }
    }
    for p in out_of_range {
        rep.problem("out-of-range", p);
    }
    let owners = counts.owners();
    if let Err(RegistryError::Unregistered { devices }) = check_registry(&owners, record) {
        for d in devices.iter() {
            rep.problem(
                "unregistered-owner",
                format!(
                    "Device id {d} owns {} dirty lines in the log but is not registered in the record, so the kernel \
                     cannot tell which backing device they belong to and refuses to resume.",
                    counts.get(d)
                ),
            );
        }
    }
    for d in record.registered_set().difference(&owners).iter() {
        rep.note(
            "registered-clean",
            format!("Device id {d} is registered but owns no dirty data in the log."),
        );
    }
    let dirty_lines = index.check_consistency()?;
    let devices = owners
        .union(&record.registered_set())
        .iter()
        .map(|d| DeviceDirty {
            device_id: d,
            dirty_lines: counts.get(d),
            registered_sectors: record.registered(d),
        })
        .collect();
    rep.log = Some(LogReport {
        last_migrated_segment_id: lm,
        first_id: lm + 1,
        last_id: last,
        replayed: scan.replayed(),
        next_id: scan.next_id(),
        end_kind: kind.into(),
        end: end_text,
        segments,
        dirty_lines,
        superseded_lines: superseded,
        devices,
    });
    Ok(())
}

/// Which segment slots `writeboost-dump` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentSelection {
    /// Every slot.
    All,
    /// The replayable log only.
    Valid,
    /// Slots `start..end`.
    Range(u32, u32),
    /// None.
    None,
}

impl std::str::FromStr for SegmentSelection {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "all" => Ok(Self::All),
            "valid" => Ok(Self::Valid),
            "none" => Ok(Self::None),
            _ => {
                let bad = || {
                    format!("invalid segment selection {s:?}: expected all, valid, none, N or N..M (slots)")
                };
                if let Some((a, b)) = s.split_once("..") {
                    let a: u32 = a.parse().map_err(|_| bad())?;
                    let b: u32 = b.parse().map_err(|_| bad())?;
                    if a > b {
                        return Err(bad());
                    }
                    Ok(Self::Range(a, b))
                } else {
                    let a: u32 = s.parse().map_err(|_| bad())?;
                    Ok(Self::Range(a, a.saturating_add(1)))
                }
            }
        }
    }
}

/// Everything `writeboost-dump` shows.
#[derive(Clone, Debug, Serialize)]
pub struct DumpReport {
    /// Path dumped.
    pub device: String,
    /// Its size in sectors.
    pub device_sectors: u64,
    /// The superblock, if valid.
    pub superblock: Option<SuperblockInfo>,
    /// Why the superblock is invalid.
    pub superblock_error: Option<String>,
    /// Both record slots.
    pub records: Vec<RecordSlotInfo>,
    /// The replayable log range `first..=last` (empty when `last < first`).
    pub log_first_id: Option<u64>,
    /// See `log_first_id`.
    pub log_last_id: Option<u64>,
    /// The listed slots.
    pub segments: Vec<SlotInfo>,
}

/// Gathers the dump. `Err` for I/O errors only.
pub fn dump(dev: &CacheDevice, sel: SegmentSelection, with_lines: bool) -> Result<DumpReport> {
    let mut rep = DumpReport {
        device: dev.path().display().to_string(),
        device_sectors: dev.sectors(),
        superblock: None,
        superblock_error: None,
        records: vec![],
        log_first_id: None,
        log_last_id: None,
        segments: vec![],
    };
    let sb = match read_superblock(dev)? {
        Ok(sb) => sb,
        Err(e) => {
            rep.superblock_error = Some(e.to_string());
            if dev.sectors() >= 3 * SECTORS_PER_BLOCK {
                // Show what the record slots hold anyway.
                for (slot, block) in (0u32..).zip(RECORD_BLOCKS) {
                    let b = dev.read_block(block)?;
                    let r = decode_record(&b);
                    rep.records.push(RecordSlotInfo {
                        slot,
                        block,
                        status: if r.is_ok() { "unchecked" } else { "invalid" }.into(),
                        error: r.as_ref().err().map(|e| e.to_string()),
                        generation: r.as_ref().ok().map(|r| r.generation),
                        last_migrated_segment_id: r
                            .as_ref()
                            .ok()
                            .map(|r| r.last_migrated_segment_id),
                        registry: r.as_ref().map(|r| registry_of(r, &b)).unwrap_or_default(),
                    });
                }
            }
            return Ok(rep);
        }
    };
    rep.superblock = Some(SuperblockInfo::new(&sb));
    let g = sb.geometry();
    let records = read_records(dev, sb.format_id())?;
    rep.records = records.info();
    // The log range, from a header-and-checksum walk.
    let mut log_ids = None;
    if let Ok(c) = &records.choice {
        let lm = c.record.last_migrated_segment_id;
        let mut scan = LogScan::new(g, lm);
        let mut hb = vec![0u8; BLOCK_SIZE];
        let mut data = vec![0u8; BLOCK_SIZE * LINES_PER_SEGMENT as usize];
        let mut h = Box::new(SegmentHeader::default());
        while let Some(cand) = scan.next_candidate() {
            if cand.start_sector + SEGMENT_SECTORS > dev.sectors() {
                let found = dev.sectors().saturating_sub(cand.start_sector) as usize * SECTOR_SIZE;
                scan.stop(SegmentError::Truncated {
                    needed: BLOCK_SIZE * BLOCKS_PER_SEGMENT,
                    found,
                });
                continue;
            }
            dev.read_at(cand.start_sector, &mut hb)?;
            let len = match decode_segment_header_into(&hb, sb.format_id(), cand.id, &mut h) {
                Ok(()) => h.nr_lines as usize * BLOCK_SIZE,
                Err(e) => {
                    scan.stop(e);
                    continue;
                }
            };
            if len > 0 {
                dev.read_at(cand.start_sector + SECTORS_PER_BLOCK, &mut data[..len])?;
            }
            match verify_segment(&h, &hb, &data[..len], crate::segment_sum(&sb)) {
                Ok(()) => scan.accept(&h)?,
                Err(e) => scan.stop(e),
            }
        }
        rep.log_first_id = Some(lm + 1);
        rep.log_last_id = Some(scan.last_valid_id());
        log_ids = Some(lm + 1..=scan.last_valid_id());
    }
    let in_log = |id: Option<u64>| match (&log_ids, id) {
        (Some(r), Some(id)) => r.contains(&id),
        _ => false,
    };
    let slots: Vec<u32> = match sel {
        SegmentSelection::None => vec![],
        SegmentSelection::All => (0..g.nr_segments()).collect(),
        SegmentSelection::Range(a, b) => (a..b.min(g.nr_segments())).collect(),
        SegmentSelection::Valid => match &log_ids {
            Some(r) => r.clone().filter_map(|id| g.slot_of_id(id).ok()).collect(),
            None => vec![],
        },
    };
    if let SegmentSelection::Range(a, b) = sel {
        if a >= g.nr_segments() || b > g.nr_segments() {
            let what = if b == a.saturating_add(1) { format!("slot {a}") } else { format!("slots {a}..{b}") };
            anyhow::bail!("{what} out of range: the device has {} segment slots (0..{})", g.nr_segments(), g.nr_segments());
        }
    }
    for slot in slots {
        let mut info = inspect_slot(dev, &g, slot, sb.format_id(), crate::segment_sum(&sb), with_lines)?;
        info.in_log = info.status == "valid" && in_log(info.id);
        rep.segments.push(info);
    }
    Ok(rep)
}
