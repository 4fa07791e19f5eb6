//! `writeboost-recover`: writes a cache's dirty data back to its backing
//! disks from userland, with the kernel module not loaded.
//!
//! Nothing here decides what is dirty or in which order it goes: the cache
//! is resumed with [`wbformat::recovery::resume_engine`], the function the
//! kernel's `resume_cache` runs (superblock, record, log walk, checksums,
//! replay into the index, the proof of lost data past the end, the stale
//! segments to invalidate), into a [`wbformat::engine::Engine`], and the
//! write-back is the engine's migrator loop, as the kernel's migrator
//! thread drives it (`rust/cache/migrate.rs`): rounds of segments oldest
//! first (`migrator_next`, `round_entries`), the dirty sectors of a round
//! written sorted by device and sector, consecutive ones merged into writes
//! of up to 1 MiB, every backing disk of the round flushed, then the lines
//! cleaned (`round_done`) and the record written (`record_snapshot`) saying
//! how far the log is migrated. Only the I/O is this module's.
//!
//! Before anything is written, every check is made and every refusal
//! listed: a dry run and a refused run change no byte. While the cache is
//! being resumed, its writes (the headers `resume_engine` invalidates) go
//! to an overlay in memory; a real run applies them to the cache device
//! (as the kernel would at resume) only once every check passed.
//! An interrupted run leaves a cache that the kernel or a rerun resumes as
//! usual: the record only ever names segments whose data is on the backing
//! disks and flushed.

use crate::blockdev::{AlignedBuf, Disk, Identity, OpenError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use wbformat::engine::{writeback_runs, BufLine, DevMeta, Engine, MigEntry, MigratorJob, Parts, SlotMeta, StageCell, Storage, NR_BUFS};
use wbformat::format::*;
use wbformat::index::{buckets_for, LineMeta, Link};
use wbformat::recovery::{resume_engine, LogDevice, LogEnd, ResumeError};

/// Bytes of one segment slot.
const SEG_BYTES: usize = BLOCK_SIZE * BLOCKS_PER_SEGMENT;
/// Largest round the tool takes (segments), as the kernel's migrator.
pub const MAX_BATCH: u32 = 32;

/// The engine's storage on the host: vectors.
pub struct VecStore;

impl Storage for VecStore {
    type Lines = Vec<LineMeta>;
    type Buckets = Vec<Link>;
    type Slots = Vec<SlotMeta>;
    type BufLines = Vec<BufLine>;
    type Discards = Vec<Discard>;
    type Devs = Vec<DevMeta>;
    type Cells = Vec<StageCell>;
}

/// An empty engine for a cache of geometry `geo`.
pub fn host_engine(geo: Geometry, format_id: u64, generation: u64) -> anyhow::Result<Engine<VecStore>> {
    let n = geo.nr_lines() as usize;
    let parts = Parts::<VecStore> {
        lines: vec![LineMeta::EMPTY; n],
        buckets: vec![Link::NONE; buckets_for(n)],
        slots: vec![SlotMeta::default(); geo.nr_segments() as usize],
        buf_lines: vec![BufLine::default(); NR_BUFS * LINES_PER_SEGMENT as usize],
        discards: vec![Discard::EMPTY; NR_BUFS * MAX_DISCARDS],
        devs: vec![DevMeta::default(); REGISTRY_ENTRIES],
        // No read caching while recovering.
        cells: Vec::new(),
    };
    Engine::new(geo, format_id, generation, parts).map_err(|e| anyhow::anyhow!("cannot set up the cache engine: {e}"))
}

/// What to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Backing disk of each device id.
    pub maps: BTreeMap<u8, PathBuf>,
    /// Device ids whose dirty data is not written anywhere: it is dropped
    /// when the cache is marked clean.
    pub skip: Vec<u8>,
    /// Go on when the log's end is proven lost (`resume_cache ...
    /// accept_data_loss`).
    pub accept_data_loss: bool,
    /// Write to a disk whose identity differs from (or cannot be compared
    /// with) the one the record registered.
    pub ignore_identity: bool,
    /// List what would be written; change nothing.
    pub dry_run: bool,
    /// Segments per write-back round (1..=32).
    pub batch: u32,
}

/// A refusal or a warning: a code (as `writeboost-check` names its
/// findings) and a sentence.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// Short machine-readable code.
    pub code: String,
    /// One explanatory sentence.
    pub message: String,
}

fn finding(code: &str, message: String) -> Finding {
    Finding { code: code.into(), message }
}

/// One device of the cache, as found and as handled.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeviceReport {
    /// Device id.
    pub device_id: u8,
    /// Backing size the record registers (None: not registered).
    pub registered_sectors: Option<u64>,
    /// Identity the record registers (hex; None: not recorded).
    pub registered_identity: Option<String>,
    /// The disk given with `--map`.
    pub backing: Option<String>,
    /// Its size.
    pub backing_sectors: Option<u64>,
    /// Its identity, as the kernel would compute it (hex).
    pub backing_identity: Option<String>,
    /// The name the identity hashes (`dm-name:...`), or why it is unknown.
    pub backing_identity_name: Option<String>,
    /// `match`, `not-recorded`, `mismatch`, `unknown`, or `ignored-...`.
    pub identity_check: Option<String>,
    /// `--skip-device`: its dirty data is dropped.
    pub skipped: bool,
    /// Lines holding its newest dirty data.
    pub dirty_lines: u64,
    /// Dirty sectors.
    pub dirty_sectors: u64,
    /// Bytes written (or that a dry run would write).
    pub bytes_written: u64,
    /// Write I/Os issued (or that a dry run would issue).
    pub writes: u64,
}

/// One write to a backing disk.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct WriteInfo {
    /// Device id.
    pub device_id: u8,
    /// First sector on the backing disk.
    pub sector: u64,
    /// Sectors.
    pub sectors: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Everything a run found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The cache device.
    pub cache: String,
    /// Nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// `clean` (written back, the cache marked clean), `already-clean`,
    /// `dry-run`, `refused` (nothing changed), `interrupted` or `failed`.
    pub outcome: String,
    /// Format id (hex).
    pub format_id: Option<String>,
    /// Segment slots.
    pub nr_segments: Option<u64>,
    /// Generation of the record read.
    pub record_generation: Option<u64>,
    /// Its `last_migrated_segment_id`.
    pub last_migrated_before: Option<u64>,
    /// Last id of the replayed log.
    pub log_last_id: Option<u64>,
    /// Segments replayed.
    pub replayed: Option<u32>,
    /// Why the log ends.
    pub log_end: Option<String>,
    /// Stale segment headers past the end (and a torn end) that resume
    /// invalidates (a dry run: would invalidate).
    pub invalidated_headers: u32,
    /// The devices: registered, owning dirty data, or mapped.
    pub devices: Vec<DeviceReport>,
    /// Why nothing was done.
    pub refusals: Vec<Finding>,
    /// What was let through by an option, or worth knowing.
    pub warnings: Vec<Finding>,
    /// Bytes to write in all.
    pub bytes_total: u64,
    /// Bytes written (a dry run: that would be).
    pub bytes_written: u64,
    /// Bytes of skipped devices, dropped.
    pub bytes_dropped: u64,
    /// Write-back rounds done.
    pub rounds: u64,
    /// Records written (a dry run: that would be).
    pub records_written: u64,
    /// `last_migrated_segment_id` of the last record written.
    pub last_migrated_after: Option<u64>,
    /// The error that stopped a failed run.
    pub error: Option<String>,
    /// The writes, in order (a dry run only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<WriteInfo>,
    /// After a real run: the cache read back with the kernel's resume
    /// replays this many segments and finds this many dirty lines.
    pub verify_replayed: Option<u32>,
    /// See `verify_replayed`.
    pub verify_dirty_lines: Option<u64>,
}

impl Report {
    fn refuse(&mut self, code: &str, message: String) {
        self.refusals.push(finding(code, message));
    }
    fn warn(&mut self, code: &str, message: String) {
        self.warnings.push(finding(code, message));
    }
}

/// Progress callbacks of a run.
pub trait Progress {
    /// The run starts writing `total` bytes.
    fn start(&mut self, total: u64);
    /// `bytes` more were written.
    fn advance(&mut self, bytes: u64);
    /// The run ends.
    fn finish(&mut self);
}

/// No progress shown.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// The cache device as `resume_engine` sees it: reads from the disk, writes
/// kept in memory (and read back from there) until [`Overlay::apply`].
struct Overlay<'a> {
    disk: &'a Disk,
    writes: Vec<(u64, Vec<u8>)>,
}

impl LogDevice for Overlay<'_> {
    type Error = std::io::Error;
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), std::io::Error> {
        self.disk.read_at(sector, buf)?;
        let end = sector + (buf.len() / SECTOR_SIZE) as u64;
        for (s, data) in &self.writes {
            let wend = s + (data.len() / SECTOR_SIZE) as u64;
            let (a, b) = ((*s).max(sector), wend.min(end));
            if a < b {
                let dst = ((a - sector) as usize) * SECTOR_SIZE;
                let src = ((a - s) as usize) * SECTOR_SIZE;
                let n = ((b - a) as usize) * SECTOR_SIZE;
                buf[dst..dst + n].copy_from_slice(&data[src..src + n]);
            }
        }
        Ok(())
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), std::io::Error> {
        self.writes.push((sector, buf.to_vec()));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

impl Overlay<'_> {
    /// Writes what resume wrote to the cache device, and flushes it.
    fn apply(&self) -> std::io::Result<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        for (s, data) in &self.writes {
            self.disk.write_at(*s, data)?;
        }
        self.disk.sync()
    }
}

/// The cache resumed as the kernel resumes it.
struct Resumed {
    sb: Superblock,
    record: Record,
    engine: Engine<VecStore>,
    /// The writes resume made, not yet applied.
    overlay_writes: Vec<(u64, Vec<u8>)>,
}

/// Resumes the cache on `disk` into a fresh engine, as the kernel's
/// `resume_cache` would, without writing to it. Refusals go to `rep`
/// (`None` returned).
fn resume(disk: &Disk, accept_loss: bool, rep: &mut Report) -> anyhow::Result<Option<Resumed>> {
    let mut block = AlignedBuf::new(BLOCK_SIZE);
    if disk.sectors() < 3 * SECTORS_PER_BLOCK {
        rep.refuse("superblock", format!("{} is too small to hold a writeboost cache ({} sectors)", disk.path().display(), disk.sectors()));
        return Ok(None);
    }
    if let Err(e) = disk.read_at(0, block.as_mut_slice()) {
        rep.refuse("read-error", format!("{}: reading the superblock (sectors 0..8) failed: {e}; check the cache device", disk.path().display()));
        return Ok(None);
    }
    let sb = match decode_superblock(block.as_slice()) {
        Ok(sb) => sb,
        Err(e) => {
            rep.refuse("superblock", format!("{}: not a usable writeboost cache: {e}", disk.path().display()));
            return Ok(None);
        }
    };
    rep.format_id = Some(crate::inspect::hex64(sb.format_id()));
    rep.nr_segments = Some(sb.nr_segments());
    if let Err(e) = check_device_size(&sb, disk.sectors()) {
        rep.refuse("device-size", format!("{e}: the segments at the end of the device are missing"));
        return Ok(None);
    }
    let mut b1 = AlignedBuf::new(BLOCK_SIZE);
    let mut b2 = AlignedBuf::new(BLOCK_SIZE);
    for (blk, b) in [(RECORD_BLOCKS[0], &mut b1), (RECORD_BLOCKS[1], &mut b2)] {
        let sector = blk * SECTORS_PER_BLOCK;
        if let Err(e) = disk.read_at(sector, b.as_mut_slice()) {
            rep.refuse(
                "read-error",
                format!("{}: reading the record (sectors {sector}..{}) failed: {e}; check the cache device", disk.path().display(), sector + SECTORS_PER_BLOCK),
            );
            return Ok(None);
        }
    }
    let choice = match select_record(b1.as_slice(), b2.as_slice(), sb.format_id()) {
        Ok(c) => c,
        Err(e) => {
            rep.refuse("record", format!("{e}: nothing tells what was migrated, so neither the kernel nor this tool can resume the cache"));
            return Ok(None);
        }
    };
    let record = choice.record;
    let rec_block = if choice.slot == 0 { b1.as_slice() } else { b2.as_slice() };
    rep.record_generation = Some(record.generation);
    rep.last_migrated_before = Some(record.last_migrated_segment_id);
    let geo = sb.geometry();
    let mut engine = host_engine(geo, sb.format_id(), record.generation)?;
    let mut header = Box::new(SegmentHeader::default());
    let mut seg = AlignedBuf::new(SEG_BYTES);
    let mut log = Overlay { disk, writes: vec![] };
    let r = resume_engine(
        &mut log,
        geo,
        sb.format_id(),
        &record,
        crate::segment_sum(&sb),
        &mut engine,
        &mut header,
        seg.as_mut_slice(),
        sb.log_horizon(),
        accept_loss,
    );
    match r {
        Ok(s) => {
            rep.replayed = Some(s.replayed);
            rep.log_last_id = Some(s.last_valid);
            rep.log_end = s.end.map(|e| end_text(&e));
            rep.invalidated_headers = s.invalidated + u32::from(s.torn_end);
        }
        Err(ResumeError::LostDurable { end_id, proof_id, proof_slot }) => {
            rep.refuse(
                "lost-durable-segment",
                format!(
                    "segment {end_id} (slot {}) is corrupt, but segment {proof_id} (slot {proof_slot}) was written after it was durable: \
                     acknowledged data is lost; the kernel refuses to resume (run writeboost-check); --accept-data-loss drops \
                     segments {end_id}.. and goes on, as `resume_cache <dev> accept_data_loss` does",
                    geo.slot_of_id(end_id).unwrap_or(0)
                ),
            );
            return Ok(None);
        }
        Err(ResumeError::Read { id, error }) => {
            rep.refuse("read-error", format!("segment {id}: read error ({error}): the segment may hold acknowledged data; check the cache device"));
            return Ok(None);
        }
        Err(ResumeError::Write { slot, error }) => anyhow::bail!("internal error: slot {slot}: {error}"),
        Err(ResumeError::Recovery(e)) => {
            rep.refuse("replay", format!("replay failed: {e} (run writeboost-check)"));
            return Ok(None);
        }
        Err(ResumeError::BufferTooSmall) => anyhow::bail!("internal error: segment buffer too small"),
        // Checked after the replay: the engine is resumed; the caller
        // names every device concerned.
        Err(ResumeError::OutOfBounds { .. }) | Err(ResumeError::Unregistered { .. }) => {
            rep.log_last_id = Some(engine.last_id());
            rep.replayed = Some(engine.last_id().saturating_sub(record.last_migrated_segment_id) as u32);
        }
    }
    for d in 1..=MAX_DEVICE_ID {
        engine.resumed_identity(d, record_identity(rec_block, d).unwrap_or(0));
    }
    Ok(Some(Resumed { sb, record, engine, overlay_writes: log.writes }))
}

fn end_text(e: &LogEnd) -> String {
    match e {
        LogEnd::RingFull => "the log fills every segment slot".into(),
        LogEnd::Invalid { id, slot, error } => format!("before segment {id} (slot {slot}): {error}"),
    }
}

fn id_hex(v: u64) -> String {
    crate::inspect::hex64(v)
}

/// Every dirty line of the resumed log, in log order.
fn dirty_entries(eng: &Engine<VecStore>, record: &Record) -> Vec<MigEntry> {
    let mut v = vec![];
    let first = record.last_migrated_segment_id + 1;
    if eng.last_id() >= first {
        eng.round_entries(first, eng.last_id(), false, |e| v.push(e));
    }
    v
}

/// The writes of a round's entries (sorted by device and sector), merged by
/// the kernel's own rule (`engine::writeback_runs`, which the module's
/// migration uses): dirty sectors that follow each other on the backing
/// disk and in the round's buffer (consecutive lines of one segment) go in
/// one write of at most 1 MiB. Each is `(device, sector, sectors, byte
/// offset in the round buffer)`.
fn merged_writes(entries: &[MigEntry]) -> Vec<(u8, u64, u64, usize)> {
    let mut out = vec![];
    let r: Result<(), core::convert::Infallible> = writeback_runs(
        entries,
        |e| Ok((0, e.seg as usize * SEG_BYTES + e.k as usize * BLOCK_SIZE)),
        |r| {
            out.push((r.dev, r.sector, r.sectors, r.off));
            Ok(())
        },
    );
    let Ok(()) = r;
    out
}

/// Runs `writeboost-recover` on the cache device `cache` with `opts`. The
/// report says what was found and done (`outcome`); `Err` only for an I/O
/// error before anything was written or an internal error.
pub fn recover(cache: &Path, opts: &Options, progress: &mut dyn Progress, stop: &AtomicBool) -> anyhow::Result<Report> {
    let mut rep = Report { cache: cache.display().to_string(), dry_run: opts.dry_run, ..Report::default() };
    let batch = opts.batch.clamp(1, MAX_BATCH);
    for d in opts.maps.keys().chain(opts.skip.iter()) {
        if *d == 0 || *d > MAX_DEVICE_ID {
            rep.refuse("usage", format!("device id {d} is out of range (1..={MAX_DEVICE_ID})"));
        }
    }
    for d in &opts.skip {
        if opts.maps.contains_key(d) {
            rep.refuse("usage", format!("device {d} is given both --map and --skip-device"));
        }
    }
    if !rep.refusals.is_empty() {
        rep.outcome = "refused".into();
        return Ok(rep);
    }
    let disk = match Disk::open(cache, !opts.dry_run) {
        Ok(d) => d,
        Err(e) => {
            let hint = if matches!(e, OpenError::Busy { .. }) {
                " (a cache resumed by the kernel module holds its device: free it first, `writeboost-free-cache`, or use the module itself)"
            } else {
                ""
            };
            rep.refuse("open", format!("the cache device: {e}{hint}"));
            rep.outcome = "refused".into();
            return Ok(rep);
        }
    };
    let Some(res) = resume(&disk, opts.accept_data_loss, &mut rep)? else {
        rep.outcome = "refused".into();
        return Ok(rep);
    };
    let Resumed { sb, record, mut engine, overlay_writes } = res;
    let mut rec_block = AlignedBuf::new(BLOCK_SIZE);
    disk.read_at(record.sector(), rec_block.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("{}: reading the record again failed: {e}", disk.path().display()))?;
    let entries = dirty_entries(&engine, &record);

    // The devices: registered, owning dirty data, or mapped.
    let mut devs: BTreeMap<u8, DeviceReport> = BTreeMap::new();
    for d in record.registered_set().iter() {
        devs.entry(d).or_default();
    }
    for e in &entries {
        let r = devs.entry(e.dev).or_default();
        r.dirty_lines += 1;
        r.dirty_sectors += u64::from(e.bits.count_ones());
    }
    for d in opts.maps.keys() {
        devs.entry(*d).or_default();
    }
    // A --skip-device of an id the cache knows nothing of is a typo: it
    // would drop nothing, and the device meant keeps its data unwritten.
    for d in &opts.skip {
        if !devs.contains_key(d) {
            let known: Vec<String> = devs.keys().map(|k| k.to_string()).collect();
            rep.refuse(
                "usage",
                format!(
                    "--skip-device {d}: the cache has no device {d} (registered or owning dirty data: {})",
                    if known.is_empty() { String::from("none") } else { known.join(", ") }
                ),
            );
        }
    }
    if !rep.refusals.is_empty() {
        rep.outcome = "refused".into();
        return Ok(rep);
    }
    for (&d, r) in devs.iter_mut() {
        r.device_id = d;
        r.registered_sectors = record.registered(d);
        r.registered_identity = record_identity(rec_block.as_slice(), d).filter(|&v| v != 0).map(id_hex);
        r.skipped = opts.skip.contains(&d);
    }
    // Lines past their device's registered size (the kernel refuses them).
    let mut out_of_range: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
    for e in &entries {
        let size = record.registered(e.dev).unwrap_or(0);
        if size != 0 && dirty_end(e.sector, e.bits).is_none_or(|end| end > size) {
            let x = out_of_range.entry(e.dev).or_insert((0, e.sector));
            x.0 += 1;
        }
    }

    let mut backings: BTreeMap<u8, Disk> = BTreeMap::new();
    let ids: Vec<u8> = devs.keys().copied().collect();
    for d in ids {
        let r = devs.get(&d).cloned().unwrap_or_default();
        let registered = r.registered_sectors;
        if r.skipped {
            if r.dirty_lines > 0 {
                rep.warn(
                    "skipped",
                    format!(
                        "--skip-device {d}: its {} dirty lines ({} bytes) are not written anywhere and are dropped when the cache is marked clean",
                        r.dirty_lines,
                        r.dirty_sectors * SECTOR_SIZE as u64
                    ),
                );
            }
            continue;
        }
        if registered.is_none() {
            if r.dirty_lines > 0 {
                rep.refuse(
                    "unregistered-owner",
                    format!(
                        "device {d} owns {} dirty lines but is not in the cache's registry (corrupt record?): the kernel refuses to resume; \
                         nothing tells which disk they belong to (run writeboost-check; --skip-device {d} drops them)",
                        r.dirty_lines
                    ),
                );
            } else {
                rep.refuse("unknown-map", format!("--map {d}=...: device {d} is not registered in this cache and owns no data in it"));
            }
            continue;
        }
        if let Some((n, sector)) = out_of_range.get(&d) {
            rep.refuse(
                "out-of-range",
                format!(
                    "device {d} has {n} dirty lines beyond its registered size {} (the first at sector {sector}): corrupt log or record; \
                     the kernel refuses to resume (run writeboost-check; --skip-device {d} drops its data)",
                    registered.unwrap_or(0)
                ),
            );
            continue;
        }
        let Some(path) = opts.maps.get(&d) else {
            // The disk of this machine with the registered identity, if any.
            let hint = record_identity(rec_block.as_slice(), d)
                .filter(|&v| v != 0)
                .and_then(|v| crate::blockdev::find_by_identity(Path::new("/sys"), v))
                .map(|(node, name)| format!("; the disk with its registered identity is {} ({name})", node.display()))
                .unwrap_or_default();
            rep.refuse(
                "no-map",
                format!(
                    "device {d} is registered in the cache ({} sectors, {} dirty lines) but has no --map {d}=DISK \
                     (give its backing disk, or --skip-device {d} to drop its data){hint}",
                    registered.unwrap_or(0),
                    r.dirty_lines
                ),
            );
            continue;
        };
        let entry = devs.get_mut(&d).expect("listed");
        entry.backing = Some(path.display().to_string());
        if disk.is_at(path) {
            rep.refuse("same-disk", format!("device {d}: {} is the cache device", path.display()));
            continue;
        }
        if let Some((o, _)) = backings.iter().find(|(_, x)| x.is_at(path)) {
            rep.refuse("same-disk", format!("device {d}: {} is also given for device {o}", path.display()));
            continue;
        }
        let b = match Disk::open(path, !opts.dry_run) {
            Ok(b) => b,
            Err(e) => {
                rep.refuse("open", format!("device {d}: {e}"));
                continue;
            }
        };
        entry.backing_sectors = Some(b.sectors());
        let reg = registered.unwrap_or(0);
        if b.sectors() < reg {
            rep.refuse(
                "backing-size",
                format!(
                    "device {d}: {} has {} sectors but the cache registered {reg}: shrunk or wrong backing disk?",
                    path.display(),
                    b.sectors()
                ),
            );
            continue;
        }
        let want = record_identity(rec_block.as_slice(), d).filter(|&v| v != 0);
        let have = b.identity();
        match &have {
            Identity::Known { name, value } => {
                entry.backing_identity = Some(id_hex(*value));
                entry.backing_identity_name = Some(name.clone());
            }
            Identity::Unknown(why) => entry.backing_identity_name = Some(why.clone()),
        }
        let check = match (want, &have) {
            (None, _) => "not-recorded",
            (Some(w), Identity::Known { value, .. }) if w == *value => "match",
            (Some(w), Identity::Known { name, value }) => {
                let msg = format!(
                    "device {d}: {} is another disk than the one the cache registered (registered identity {}, this disk {} = {name})",
                    path.display(),
                    id_hex(w),
                    id_hex(*value)
                );
                if opts.ignore_identity {
                    rep.warn("identity", format!("{msg}; written anyway (--ignore-identity)"));
                    "ignored-mismatch"
                } else {
                    rep.refuse("identity", format!("{msg}: wrong disk? (--ignore-identity writes to it anyway)"));
                    "mismatch"
                }
            }
            (Some(w), Identity::Unknown(why)) => {
                let msg = format!("device {d}: the identity of {} cannot be compared with the registered {} ({why})", path.display(), id_hex(w));
                if opts.ignore_identity {
                    rep.warn("identity-unknown", format!("{msg}; written anyway (--ignore-identity)"));
                    "ignored-unknown"
                } else {
                    rep.refuse("identity-unknown", format!("{msg}: --ignore-identity writes to it if it is the right disk"));
                    "unknown"
                }
            }
        };
        entry.identity_check = Some(check.into());
        backings.insert(d, b);
    }
    rep.devices = devs.values().cloned().collect();
    if !rep.refusals.is_empty() {
        rep.outcome = "refused".into();
        return Ok(rep);
    }
    if opts.accept_data_loss {
        rep.warn("accept-data-loss", "--accept-data-loss: a log end proven lost is dropped, as `resume_cache <dev> accept_data_loss` drops it".into());
    }
    rep.bytes_total = entries.iter().filter(|e| !opts.skip.contains(&e.dev)).map(|e| u64::from(e.bits.count_ones()) * SECTOR_SIZE as u64).sum();

    // Every check passed: from here on the cache and the disks may change.
    if !opts.dry_run {
        let ov = Overlay { disk: &disk, writes: overlay_writes };
        ov.apply().map_err(|e| anyhow::anyhow!("invalidating stale segment headers on the cache device failed: {e}"))?;
    }
    let already_clean = engine.last_id() == record.last_migrated_segment_id;
    progress.start(rep.bytes_total);
    let result = write_back(&disk, &sb, &mut engine, &backings, opts, batch, &mut rep, progress, stop);
    progress.finish();
    rep.last_migrated_after = Some(engine.record_migrated());
    match result {
        Ok(true) => {}
        Ok(false) => {
            rep.outcome = "interrupted".into();
            return Ok(rep);
        }
        Err(e) => {
            rep.outcome = "failed".into();
            rep.error = Some(format!("{e:#}"));
            return Ok(rep);
        }
    }
    if opts.dry_run {
        rep.outcome = "dry-run".into();
        return Ok(rep);
    }
    // Read the cache back as the kernel would resume it.
    drop(backings);
    let mut check = Report::default();
    match resume(&disk, false, &mut check)? {
        Some(r) => {
            rep.verify_replayed = Some(check.replayed.unwrap_or(0));
            rep.verify_dirty_lines = Some(r.engine.total_dirty());
            if r.engine.total_dirty() != 0 || check.replayed.unwrap_or(0) != 0 {
                rep.outcome = "failed".into();
                rep.error = Some(format!(
                    "the cache read back still replays {} segments with {} dirty lines",
                    check.replayed.unwrap_or(0),
                    r.engine.total_dirty()
                ));
                return Ok(rep);
            }
        }
        None => {
            rep.outcome = "failed".into();
            rep.error = Some(format!(
                "the cache read back does not resume: {}",
                check.refusals.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ")
            ));
            return Ok(rep);
        }
    }
    rep.outcome = if already_clean && rep.invalidated_headers == 0 { "already-clean" } else { "clean" }.into();
    Ok(rep)
}

/// The migrator loop. `Ok(true)`: everything written back and recorded;
/// `Ok(false)`: interrupted (what was written is flushed; the record names
/// only completed rounds).
#[allow(clippy::too_many_arguments)]
fn write_back(
    disk: &Disk,
    sb: &Superblock,
    eng: &mut Engine<VecStore>,
    backings: &BTreeMap<u8, Disk>,
    opts: &Options,
    batch: u32,
    rep: &mut Report,
    progress: &mut dyn Progress,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let geo = sb.geometry();
    let mut data = AlignedBuf::new(batch as usize * SEG_BYTES);
    let t0 = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let now = t0.elapsed().as_millis() as u64;
        match eng.migrator_next(true, batch, now) {
            MigratorJob::Round { start, end } => {
                let mut entries = vec![];
                for (i, id) in (0u32..).zip(start..=end) {
                    eng.round_entries(id, id, false, |mut e| {
                        e.seg = i;
                        entries.push(e)
                    });
                }
                // Read each segment of the round that has dirty lines, up to
                // its highest one.
                for (i, id) in (start..=end).enumerate() {
                    let top = entries.iter().filter(|e| e.seg == i as u32).map(|e| e.k + 1).max().unwrap_or(0);
                    if top == 0 {
                        continue;
                    }
                    let slot = geo.slot_of_id(id)?;
                    let sector = geo.line_sector(slot, 0)?;
                    let off = i * SEG_BYTES;
                    disk.read_at(sector, &mut data.as_mut_slice()[off..off + top as usize * BLOCK_SIZE])
                        .map_err(|e| anyhow::anyhow!("reading segment {id} from the cache device failed: {e}"))?;
                }
                entries.sort_unstable_by_key(|e| (e.dev, e.sector));
                let mut written: Vec<u8> = vec![];
                let mut interrupted = false;
                for (dev, sector, n, off) in merged_writes(&entries) {
                    let bytes = n * SECTOR_SIZE as u64;
                    if opts.skip.contains(&dev) {
                        rep.bytes_dropped += bytes;
                        continue;
                    }
                    if stop.load(Ordering::SeqCst) {
                        interrupted = true;
                        break;
                    }
                    let dr = rep.devices.iter_mut().find(|r| r.device_id == dev);
                    if let Some(dr) = dr {
                        dr.bytes_written += bytes;
                        dr.writes += 1;
                    }
                    rep.bytes_written += bytes;
                    if opts.dry_run {
                        rep.writes.push(WriteInfo { device_id: dev, sector, sectors: n, bytes });
                    } else {
                        let b = backings.get(&dev).ok_or_else(|| anyhow::anyhow!("internal error: no disk for device {dev}"))?;
                        b.write_at(sector, &data.as_slice()[off..off + bytes as usize])
                            .map_err(|e| anyhow::anyhow!("device {dev}: writing sectors {sector}..{} of {} failed: {e}", sector + n, b.path().display()))?;
                        if written.last() != Some(&dev) {
                            written.push(dev);
                        }
                    }
                    progress.advance(bytes);
                }
                // What was written is made durable, interrupted or not.
                for dev in &written {
                    if let Some(b) = backings.get(dev) {
                        b.sync().map_err(|e| anyhow::anyhow!("device {dev}: flushing {} failed: {e}", b.path().display()))?;
                    }
                }
                if interrupted {
                    return Ok(false);
                }
                eng.round_done(start, end, &entries, Ok(()), &|_| None);
                rep.rounds += 1;
            }
            MigratorJob::Record => {
                let snap = eng.record_snapshot();
                let mut registry = [0u64; REGISTRY_ENTRIES];
                let mut identities = [0u64; REGISTRY_ENTRIES];
                for (i, (r, x)) in (0u8..).zip(registry.iter_mut().zip(identities.iter_mut())) {
                    *r = eng.registered(i);
                    *x = eng.identity(i);
                }
                let rec = snap.record(sb.format_id(), &registry).map_err(|e| anyhow::anyhow!("internal error: {e}"))?;
                let mut block = AlignedBuf::new(BLOCK_SIZE);
                encode_record_with_identities(&rec, &identities, block.as_mut_slice()).map_err(|e| anyhow::anyhow!("internal error: {e}"))?;
                if !opts.dry_run {
                    // The backing disks of every round it covers are flushed
                    // already; the record is durable before the next round.
                    disk.write_at(rec.sector(), block.as_slice())
                        .and_then(|()| disk.sync())
                        .map_err(|e| anyhow::anyhow!("writing the record to the cache device failed: {e}"))?;
                }
                eng.record_done(snap, true);
                rep.records_written += 1;
            }
            MigratorJob::Idle { .. } => {
                if eng.record_migrated() >= eng.last_id() && eng.total_dirty() == 0 {
                    return Ok(true);
                }
                anyhow::bail!(
                    "internal error: write-back stalled at segment {} of {} ({} dirty lines left)",
                    eng.record_migrated(),
                    eng.last_id(),
                    eng.total_dirty()
                );
            }
            MigratorJob::Relocate { id } => anyhow::bail!("internal error: the engine asked to relocate segment {id}"),
            MigratorJob::Exit => anyhow::bail!("internal error: the engine stopped"),
        }
    }
}
