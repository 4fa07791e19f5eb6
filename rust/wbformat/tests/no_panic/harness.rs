//! Compiled by `tests/no_panic.rs` the way the kernel compiles the shared
//! module files (`#[path]`, `no_std`, overflow checks, `panic=abort`), with
//! one concrete instance of every generic entry point. The test then checks
//! that the object file references no panic routine.

#![no_std]

/// The shared module files, as the kernel module includes them.
#[path = "../../src"]
pub mod wbformat {
    pub mod crc32c;
    pub mod engine;
    pub mod format;
    pub mod index;
    pub mod recovery;
}

use wbformat::crc32c::{crc32c, crc32c_raw_update, Crc32c};
use wbformat::format::*;
use wbformat::index::*;
use wbformat::recovery::*;

/// Index over borrowed slices, as the kernel would use it.
pub type Ix<'a> = Index<&'a mut [LineMeta], &'a mut [Link]>;

/// Instance.
pub fn index_new<'a>(l: &'a mut [LineMeta], b: &'a mut [Link]) -> Option<Ix<'a>> {
    Index::new(l, b).ok()
}

/// Instance.
pub fn index_ops(ix: &mut Ix<'_>, line: u64, key: Key, bits: u8, first: u8, nr: u8) -> u64 {
    let mut acc = 0u64;
    if let Ok(o) = ix.write(line, key, bits) {
        acc ^= o.dirty_delta() as u64 ^ o.cleaned.as_slice().len() as u64;
    }
    if let Ok(o) = ix.clean(line, bits) {
        acc ^= o.dirty_delta() as u64;
    }
    if let Ok(o) = ix.discard(key, bits) {
        acc ^= o.dirty_delta() as u64;
    }
    let (o, n) = ix.read_run(key, first, nr);
    acc ^= o.unwrap_or(0) ^ u64::from(n);
    acc ^= ix.owner(key, first).unwrap_or(0) ^ ix.lookup(key).unwrap_or(0);
    acc ^= ix.chain(key).len() as u64;
    acc ^= u64::from(ix.dirty(line).unwrap_or(0));
    acc ^= ix.key_of(line).ok().flatten().map(|k| k.block).unwrap_or(0);
    acc ^= u64::from(ix.release(line).is_ok());
    acc ^= ix.check_consistency().unwrap_or(0);
    acc ^= ix.memory_bytes() ^ ix.nr_buckets();
    acc ^= Link::new(line).get() ^ buckets_for(line as usize) as u64;
    acc ^ ix.nr_lines()
}

/// Instance.
pub fn recovery_ops(
    ix: &mut Ix<'_>,
    g: &Geometry,
    h: &mut SegmentHeader,
    counts: &mut DirtyCounts,
    buf: &mut [u8],
    record: &Record,
    read: fn(u64, &mut [u8]) -> Result<(), i32>,
) -> u64 {
    let mut acc = 0u64;
    if let Ok(st) = replay_segment(ix, g, 0, h, |d, x| counts.apply(d, x)) {
        acc ^= u64::from(st.lines_replayed);
    }
    if let Ok(s) = replay_log(g, 5, 0, SegmentSum::Xxh64(xxh64_stand_in), ix, counts, h, buf, read) {
        acc ^= s.next_id;
    }
    let mut scan = LogScan::new(*g, acc);
    while let Some(c) = scan.next_candidate() {
        acc ^= c.start_sector;
        if scan.accept(h).is_err() {
            scan.stop(SegmentError::BadMagic);
        }
    }
    acc ^= scan.last_valid_id() ^ scan.next_id() ^ u64::from(scan.replayed());
    for c in scan.beyond_end() {
        acc ^= c.id;
    }
    acc ^= u64::from(check_registry(&counts.owners(), record).is_ok());
    acc ^ counts.total()
}

/// Instance.
pub fn format_ops(b: &[u8], out: &mut [u8], h: &mut SegmentHeader, n: u64, x: u32, y: u32) -> u64 {
    let crc: UpdateFnAlias = crc32c_raw_update;
    let u = SegmentSum::Crc32c(crc);
    let v = SegmentSum::Xxh64(xxh64_stand_in);
    let mut acc = u64::from(crc32c(b));
    let mut c = Crc32c::new();
    c.update(b);
    c.update_zeros(x as usize);
    acc ^= u64::from(c.finish());
    if let Ok(sb) = decode_superblock(b) {
        acc ^= sb.nr_segments() ^ u64::from(check_device_size(&sb, n).is_ok());
        let _ = encode_superblock(&sb, out);
    }
    if let Ok(sb) = Superblock::new(n, 1, 2) {
        let _ = encode_superblock(&sb, out);
    }
    if let Ok(r) = decode_record(b) {
        acc ^= r.generation;
        let _ = encode_record(&r, out);
        let mut r2 = r.next_generation().unwrap_or(r);
        let _ = r2.register(x as u8, n);
        let _ = r2.unregister(y as u8);
        acc ^= u64::from(r2.check_device(x as u8, n).is_ok()) ^ r2.sector();
    }
    if let Ok(c) = select_record(b, out, n) {
        acc ^= c.record.generation;
    }
    let _ = decode_segment_header_into(b, 1, 2, h);
    let _ = parse_segment_header(b).map(|p| acc ^= p.id);
    let _ = decode_segment_header(b, 1, 2).map(|p| acc ^= p.id);
    let _ = verify_segment(h, b, b, u);
    let _ = verify_segment_buffer(h, b, u);
    let _ = check_segment(b, b, 1, n, u, h);
    let _ = h.push(Metablock::EMPTY);
    let _ = encode_segment_buffer(h, out, u);
    let _ = encode_segment_header(h, out, b, v);
    let _ = check_segment(b, b, 1, n, v, h);
    let mut s = segment_checksum_stream(b, crc);
    s.update(out);
    acc ^= u64::from(s.finish()) ^ u64::from(segment_checksum(b, out, u)) ^ u64::from(segment_checksum(b, out, v));
    let _ = set_segment_checksum(out, x);
    if let Ok(g) = Geometry::from_device_sectors(n) {
        acc ^= g.line_sector(x, y).unwrap_or(0) ^ g.line_index(x, y).unwrap_or(0) ^ g.nr_lines();
        acc ^= u64::from(g.slot_of_id(n).unwrap_or(0)) ^ u64::from(g.line_location(n).map(|p| p.1).unwrap_or(0));
        acc ^= g.used_sectors() ^ g.line_sector_of_index(n).unwrap_or(0) ^ u64::from(g.may_write(n, acc));
        acc ^= g.segment_start_sector(x).unwrap_or(0);
    }
    acc ^ segment_write_sectors(x).unwrap_or(0)
}

/// Stands in for an xxh64 (the kernel passes its own).
fn xxh64_stand_in(pieces: [&[u8]; 4]) -> u64 {
    pieces.iter().fold(0u64, |a, p| a.rotate_left(7) ^ p.len() as u64 ^ u64::from(p.first().copied().unwrap_or(0)))
}

/// The kernel passes its own function of this type.
pub type UpdateFnAlias = wbformat::crc32c::UpdateFn;

/// A `fmt::Write` sink that only counts bytes.
struct Sink(usize);

impl core::fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0 = self.0.wrapping_add(s.len());
        Ok(())
    }
}

/// Instance of every `Display` implementation and of the small helpers.
#[allow(clippy::too_many_arguments)]
pub fn display_ops(
    a: &EncodeError,
    b: &GeometryError,
    c: &SuperblockError,
    d: &RecordError,
    e: &RegistryError,
    f: &NoValidRecord,
    g: &SegmentError,
    h: &IndexError,
    i: &RecoveryError,
    j: &LogEnd,
    k: &ReplayError<SegmentError>,
    set: &mut DeviceSet,
    id: u8,
) -> usize {
    use core::fmt::Write;
    let mut s = Sink(0);
    let _ = write!(s, "{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{set}");
    let _ = write!(s, "{}{}", RegistryEntryFault::FlagMismatch, MetablockFault::UnusedNotZero);
    set.insert(id);
    set.remove(id.wrapping_add(1));
    let other = set.union(&DeviceSet::EMPTY).difference(&DeviceSet::EMPTY);
    s.0 ^ other.len() as usize ^ usize::from(set.contains(id)) ^ usize::from(set.is_empty()) ^ usize::from(set.iter().last().unwrap_or(0))
}

/// The engine over borrowed slices.
pub struct SliceStore<'a>(core::marker::PhantomData<&'a ()>);

impl<'a> wbformat::engine::Storage for SliceStore<'a> {
    type Lines = &'a mut [LineMeta];
    type Buckets = &'a mut [Link];
    type Slots = &'a mut [wbformat::engine::SlotMeta];
    type BufLines = &'a mut [wbformat::engine::BufLine];
    type Discards = &'a mut [Discard];
    type Devs = &'a mut [wbformat::engine::DevMeta];
    type Cells = &'a mut [wbformat::engine::StageCell];
}

/// Instance: every engine entry point.
pub fn engine_ops(e: &mut wbformat::engine::Engine<SliceStore<'_>>, dev: u8, sector: u64, n: u32, now: u64, h: &mut SegmentHeader) -> u64 {
    use wbformat::engine::*;
    let busy = |_s: u32| false;
    let mut acc = 0u64;
    if let WriteStep::Go(t) = e.begin_write(dev, sector, n, &busy, Direct::No) {
        let d = e.end_write(t, true, n == 1, now, 3);
        acc ^= u64::from(d.hold) ^ t.byte_off as u64;
    }
    match e.begin_read(dev, sector, n) {
        ReadStep::Buffer { buf, .. } => e.end_buffer_read(buf),
        ReadStep::Cache { sector, .. } => acc ^= sector,
        _ => {}
    }
    acc ^= matches!(e.begin_flush(now, 3), FlushStep::Done) as u64;
    acc ^= matches!(e.discard(dev, sector, n, &busy), DiscardStep::Pass) as u64;
    let mut d = DiscardRange::new(dev, sector, u64::from(n) << 20);
    acc ^= matches!(e.discard_step(&mut d, n, &busy), DiscardStep::Again) as u64;
    acc ^= matches!(e.seal_if_idle(now, u64::from(n)), IdleStep::Sealed) as u64;
    match e.flusher_next(now, n == 2) {
        FlusherJob::Segment { buf, id, slot, nr_lines, durable } => {
            e.fill_header(buf, id, durable, h);
            e.segment_done(id, slot, nr_lines, durable, true, 0);
        }
        FlusherJob::FlushOnly { upto } => e.flush_done(upto, true),
        _ => {}
    }
    match e.migrator_next(true, n, now) {
        MigratorJob::Round { start, end } => {
            let mut last = MigEntry::default();
            e.round_entries(start, end, false, |x| last = x);
            let failing = n as u8;
            e.round_done(start, end, &[last], Ok(()), &|d| (d == failing).then_some(-5));
        }
        MigratorJob::Relocate { id } => {
            let mut last = MigEntry::default();
            e.round_entries(id, id, true, |x| last = x);
            if let Ok(Some((t, bits))) = e.begin_relocate(last.line, &busy) {
                acc ^= u64::from(bits);
                let _ = e.end_write(t, true, false, now, 3);
            }
            e.relocate_done();
        }
        _ => {}
    }
    e.set_failing(dev, -5, now);
    let snap = e.record_snapshot();
    e.record_done(snap, true);
    let _ = e.register(dev, sector);
    if let DetachStep::Done { .. } = e.detach(dev, true) {
        e.undo_detach(dev, sector);
    }
    e.account(dev, n as i32);
    e.replayed(sector, n, h);
    e.resumed(sector, sector, &[sector]);
    acc ^= e.out_of_bounds().map_or(0, |x| x.1);
    acc ^= e.record_target().0 ^ e.total_dirty() ^ u64::from(e.seal()) ^ u64::from(e.drain());
    acc ^ u64::from(e.all_durable())
}

/// Instance.
pub fn engine_new<'a>(g: Geometry, p: wbformat::engine::Parts<SliceStore<'a>>) -> Option<wbformat::engine::Engine<SliceStore<'a>>> {
    wbformat::engine::Engine::new(g, 1, 0, p).ok()
}
