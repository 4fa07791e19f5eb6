//! Engine scenarios of known bugs, step by step (the simulator covers the
//! interleavings at random; these pin the exact triggers).

use wbformat::engine::*;
use wbformat::format::*;
mod common;
use common::{host_engine, HostStore};

fn engine(nr_segments: u64) -> Engine<HostStore> {
    let geo = Geometry::from_nr_segments(nr_segments).unwrap();
    let mut e = host_engine(geo, 1, 1);
    e.resumed(0, 0, &[0; REGISTRY_ENTRIES]);
    e.register(1, 1 << 20).unwrap();
    e.set_attached(1, true);
    let s = e.record_snapshot();
    e.record_done(s, true);
    e
}

fn write(e: &mut Engine<HostStore>, sector: u64, n: u32, fua: bool) -> (WriteTicket, bool) {
    let WriteStep::Go(t) = e.begin_write(1, sector, n, &|_| false, Direct::No) else { panic!("write did not go") };
    let d = e.end_write(t, true, fua, 0, 3);
    (t, d.hold)
}

/// Runs the flusher until nothing is sealed and unwritten.
fn flush_sealed(e: &mut Engine<HostStore>, has_flush_only: bool) -> Vec<(u64, bool)> {
    let mut out = Vec::new();
    loop {
        match e.flusher_next(0, has_flush_only) {
            FlusherJob::Segment { id, slot, nr_lines, durable, .. } => {
                e.segment_done(id, slot, nr_lines, durable, true, 0);
                out.push((id, durable));
            }
            FlusherJob::FlushOnly { upto } => e.flush_done(upto, true),
            _ => return out,
        }
    }
}

/// Issue 8's trigger: A at block 100 made durable by a FLUSH, B over it
/// still in RAM, migration runs. The record must not pass segment 1 while
/// segment 2 (holding B) is unwritten; the migrator seals it.
#[test]
fn record_waits_for_the_superseding_segment() {
    let mut e = engine(8);
    write(&mut e, 800, 8, false);
    assert!(matches!(e.begin_flush(0, 3), FlushStep::Held(_)));
    e.seal();
    assert_eq!(flush_sealed(&mut e, false), vec![(1, true)]);
    assert_eq!(e.durable_upto(), 1);
    write(&mut e, 800, 8, false); // B, segment 2, open
    // A's sectors belong to B now: segment 1 has nothing to write back, so
    // the migrator passes it without a round, and the record waits for
    // segment 2, which the migrator seals for it.
    let MigratorJob::Idle { wake_flusher: true, .. } = e.migrator_next(true, 4, 0) else { panic!() };
    assert_eq!(e.last_migrated(), 1);
    assert_eq!(e.record_target(), (0, Some(2)), "the record waits for segment 2");
    assert_eq!(e.sealed_upto(), 2);
    assert_eq!(flush_sealed(&mut e, false), vec![(2, false)]);
    assert_eq!(e.migrator_next(true, 4, 0), MigratorJob::Record);
    let s = e.record_snapshot();
    assert_eq!(s.last_migrated, 1);
    e.record_done(s, true);
    // The record write carried PREFLUSH: segment 2 is durable with it.
    assert_eq!(e.durable_upto(), 2);
}

/// A discard of data held by an older segment is logged in the open one,
/// which must be durable before the device detaches.
#[test]
fn discard_is_logged_and_durable_before_detach() {
    let mut e = engine(8);
    write(&mut e, 0, 8, true);
    e.seal();
    flush_sealed(&mut e, false);
    assert_eq!(e.discard(1, 0, 8, &|_| false), DiscardStep::Pass);
    assert_eq!(e.dirty_of(1), 0);
    assert_eq!(e.detach(1, true), DetachStep::NeedRecord, "the logged discard is not on record yet");
    assert_eq!(e.sealed_upto(), 2, "detach sealed the segment holding the discard");
    let mut hdr = SegmentHeader::new(0, 0);
    let FlusherJob::Segment { buf, id, slot, durable, .. } = e.flusher_next(0, false) else { panic!() };
    e.fill_header(buf, id, durable, &mut hdr);
    assert_eq!(hdr.discard_entries(), &[Discard { sector: 0, nr_sectors: 8, device_id: 1 }]);
    e.segment_done(id, slot, 0, durable, true, 0);
    assert_eq!(e.detach(1, true), DetachStep::NeedRecord, "written, but the record is behind");
    // Migration is off, but the waiting detach makes the migrator pass the
    // clean segments and write the record (with PREFLUSH: durable).
    assert_eq!(e.migrator_next(false, 4, 0), MigratorJob::Record);
    let s = e.record_snapshot();
    assert_eq!(s.last_migrated, 2);
    e.record_done(s, true);
    assert_eq!(e.durable_upto(), 2);
    assert_eq!(e.detach(1, true), DetachStep::Done { commit: true });
}

/// An empty flush right after a durable segment needs nothing; after a
/// plain segment write it needs one cache-device flush.
#[test]
fn flush_completes_as_soon_as_everything_is_durable() {
    let mut e = engine(8);
    assert_eq!(e.begin_flush(0, 3), FlushStep::Done);
    write(&mut e, 0, 8, false);
    e.seal();
    flush_sealed(&mut e, false);
    assert_eq!(e.begin_flush(0, 3), FlushStep::FlushOnly);
    e.flush_done(e.last_flushed(), true);
    assert_eq!(e.begin_flush(0, 3), FlushStep::Done);
}

/// One step of the cache's threads: the flusher writes what is sealed, then
/// the migrator does its next job (`failed(dev)`: the error of `dev`'s
/// write-back, `None` when its disk works; relocated lines are moved at
/// `now`).
fn migrator_step(e: &mut Engine<HostStore>, now: u64, failed: &dyn Fn(u8) -> Option<i32>) {
    let mut m = Migrator { reloc: None, batch: 2, seal_idle: true };
    m.step(e, now, failed);
    // A relocation job is done whole.
    while m.reloc.is_some() {
        m.step(e, now, failed);
    }
}

/// Two devices' write-back fails (dead disks, or disks of removed devices
/// that another table holds: the glue reports EBUSY); device 3's lines lie
/// behind a segment full of device 1's. When device 3's retry is due, the
/// migrator must reach its lines (moving device 1's parked segment out of
/// the way) and try again, so that device 3 drains once its disk works,
/// while device 1's lines stay (breakK: device 3's retry was never made,
/// because only devices that never failed counted as waiting behind).
#[test]
fn a_due_retry_behind_a_parked_segment_is_made() {
    let mut e = engine(8);
    e.register(3, 1 << 20).unwrap();
    e.set_attached(3, true);
    let s = e.record_snapshot();
    e.record_done(s, true);
    // Segments 1-3: device 1's, more than a round's batch (2); segment 4:
    // device 3's.
    for (dev, n) in [(1u8, 3 * 255u64), (3, 40)] {
        for b in 0..n {
            let WriteStep::Go(t) = e.begin_write(dev, b * 8, 8, &|_| false, Direct::No) else { panic!() };
            e.end_write(t, true, false, 0, 3);
        }
        e.seal();
    }
    flush_sealed(&mut e, false);
    let dirty1 = e.dirty_of(1);
    // Both have failed: device 1 often (retried every 30 s), device 3 once
    // (retried after 1 s); device 3's disk works from 20 s on.
    for _ in 0..8 {
        e.set_failing(1, -16, 0);
    }
    e.set_failing(3, -16, 0);
    let mut now = 0u64;
    while now < 300_000 && e.dirty_of(3) > 0 {
        now += 500;
        let t = now;
        migrator_step(&mut e, now, &|d| (d == 1 || (d == 3 && t < 20_000)).then_some(-16));
    }
    assert_eq!(e.dirty_of(3), 0, "device 3 never retried behind device 1's parked segment");
    assert_eq!(e.dirty_of(1), dirty1, "device 1's parked lines are kept");
    assert!(now < 80_000, "device 3 drained only at {now} ms (retries are at most 30 s apart)");
}

/// Issue 9's first case: device 1's disk is dead while it has dirty lines;
/// device 2 writes five times the cache through it. Every write of device
/// 2 goes in (the migrator moves device 1's parked lines to the head of the
/// log instead of waiting for its disk), device 1's lines are never
/// dropped, and they drain once its disk works again.
#[test]
fn dead_disk_does_not_stop_the_other_device() {
    let mut e = engine(8);
    e.register(2, 1 << 20).unwrap();
    e.set_attached(2, true);
    let s = e.record_snapshot();
    e.record_done(s, true);
    // Device 1: 300 dirty lines (more than one segment).
    for b in 0..300u64 {
        let WriteStep::Go(t) = e.begin_write(1, b * 8, 8, &|_| false, Direct::No) else { panic!() };
        e.end_write(t, true, false, 0, 3);
    }
    let dirty1 = e.dirty_of(1);
    assert_eq!(dirty1, 300);
    let mut dead = true;
    let mut now = 0u64;
    let mut written = 0u64;
    let lines = u64::from(e.geometry().nr_lines());
    let mut b = 0u64;
    // One step of the cache's threads; `dead`: device 1's writes fail.
    let step = |e: &mut Engine<HostStore>, dead: bool, now: u64| migrator_step(e, now, &|d| (dead && d == 1).then_some(-5));
    while written < 5 * lines {
        now += 10;
        match e.begin_write(2, (b % 4096) * 8, 8, &|_| false, Direct::No) {
            WriteStep::Go(t) => {
                e.end_write(t, true, false, now, 3);
                written += 1;
                b += 1;
            }
            WriteStep::Wait(_) => step(&mut e, dead, now),
            other => panic!("device 2's write got {other:?} after {written} writes"),
        }
        assert!(now < 10_000_000, "device 2 stalled after {written} writes");
    }
    assert_eq!(e.dirty_of(1), dirty1, "device 1's parked lines are kept");
    assert_ne!(e.dev(1).fail_errno, 0);
    assert!(e.nr_relocated() >= 300, "parked lines were moved ({})", e.nr_relocated());
    // Its own writes fail once it holds half the cache.
    let mut accepted = 0;
    while let WriteStep::Go(t) = e.begin_write(1, (10_000 + accepted) * 8, 8, &|_| false, Direct::No) {
        e.end_write(t, true, false, now, 3);
        accepted += 1;
        assert!(accepted <= lines, "a failing device filled the cache");
    }
    // The disk comes back: everything drains.
    dead = false;
    for _ in 0..100_000 {
        now += 100;
        step(&mut e, dead, now);
        if e.total_dirty() == 0 {
            break;
        }
    }
    assert_eq!(e.total_dirty(), 0, "everything drains once the disk works");
    assert_eq!(e.dev(1).fail_errno, 0);
}

/// drop_caches right after a dead backing disk came back: its parked lines
/// are retried at once (`retry_now`), not after the back-off, so the drain
/// does not fail on the stale error.
#[test]
fn retry_now_ends_the_back_off() {
    let mut e = engine(8);
    for b in 0..10u64 {
        write(&mut e, b * 8, 8, false);
    }
    e.seal();
    flush_sealed(&mut e, false);
    e.set_failing(1, -5, 0);
    e.set_failing(1, -5, 0);
    let parked = |e: &mut Engine<HostStore>| loop {
        match e.migrator_next(true, 2, 5) {
            MigratorJob::Record => {
                let s = e.record_snapshot();
                e.record_done(s, true);
            }
            MigratorJob::Round { .. } => return false,
            _ => return true,
        }
    };
    assert!(parked(&mut e), "a failing device's lines are parked during the back-off");
    assert_eq!(e.retry_now(1), 2, "the failed attempts so far");
    assert!(!parked(&mut e), "after retry_now the next round takes the parked lines");
    assert_ne!(e.dev(1).fail_errno, 0, "still failing until a round succeeds");
}

/// A cache full of a dead disk's lines: moving them would free nothing, so
/// the migrator does not churn the log (writers then time out with EIO in
/// the kernel), and nothing is dropped.
#[test]
fn full_of_parked_lines_does_not_churn() {
    let mut e = engine(4);
    e.register(2, 1 << 20).unwrap();
    e.set_attached(2, true);
    let mut now = 0;
    // Device 1 fills the log (migration off), then its disk dies.
    let mut b = 0u64;
    loop {
        match e.begin_write(1, b * 8, 8, &|_| false, Direct::No) {
            WriteStep::Go(t) => {
                e.end_write(t, true, false, 0, 3);
                b += 1;
            }
            _ => break,
        }
        flush_sealed(&mut e, false);
    }
    e.seal();
    flush_sealed(&mut e, false);
    let dirty = e.dirty_of(1);
    let mut relocated = Vec::new();
    for _ in 0..2000 {
        now += 1000;
        match e.migrator_next(true, 4, now) {
            MigratorJob::Round { start, end } => {
                let mut entries = Vec::new();
                e.round_entries(start, end, false, |x| entries.push(x));
                e.round_done(start, end, &entries, Ok(()), &|_| Some(-5));
            }
            MigratorJob::Relocate { id } => {
                let mut entries = Vec::new();
                e.round_entries(id, id, true, |x| entries.push(x));
                for x in &entries {
                    match e.begin_relocate(x.line, &|_| false) {
                        Ok(Some((t, _))) => {
                            e.end_write(t, true, false, now, 3);
                        }
                        _ => break,
                    }
                }
                e.relocate_done();
                flush_sealed(&mut e, false);
            }
            MigratorJob::Record => {
                let s = e.record_snapshot();
                e.record_done(s, true);
            }
            _ => {}
        }
        // A writer of another device keeps asking for room.
        assert!(matches!(e.begin_write(2, 0, 8, &|_| false, Direct::No), WriteStep::Wait(_)), "room appeared in a full cache");
        relocated.push(e.nr_relocated());
    }
    assert_eq!(e.dirty_of(1), dirty, "nothing dropped");
    let late = relocated[1999] - relocated[1000];
    assert_eq!(late, 0, "the migrator keeps moving full segments of parked lines ({late} lines in the last 1000 steps)");
}

// ---------------------------------------------------------------------------
// Issue 9, item 5: a discard costs what the cache holds, not the size of its
// range.

/// 64 TiB in sectors.
const BIG: u64 = 64 << 31;

fn big_engine(nr_segments: u64) -> Engine<HostStore> {
    let geo = Geometry::from_nr_segments(nr_segments).unwrap();
    let mut e = host_engine(geo, 1, 1);
    e.resumed(0, 0, &[0; REGISTRY_ENTRIES]);
    for d in 1..=2 {
        e.register(d, BIG).unwrap();
        e.set_attached(d, true);
    }
    let s = e.record_snapshot();
    e.record_done(s, true);
    e
}

fn write_dev(e: &mut Engine<HostStore>, dev: u8, sector: u64, n: u32) {
    let WriteStep::Go(t) = e.begin_write(dev, sector, n, &|_| false, Direct::No) else { panic!("write did not go") };
    e.end_write(t, true, false, 0, 3);
}

/// Runs the flusher until nothing is sealed and unwritten, keeping the
/// header of every segment written.
fn flush_keep(e: &mut Engine<HostStore>, headers: &mut Vec<(u32, Box<SegmentHeader>)>) {
    loop {
        match e.flusher_next(0, false) {
            FlusherJob::Segment { buf, id, slot, nr_lines, durable } => {
                let mut h = Box::new(SegmentHeader::new(0, 0));
                e.fill_header(buf, id, durable, &mut h);
                e.segment_done(id, slot, nr_lines, durable, true, 0);
                headers.push((slot, h));
            }
            FlusherJob::FlushOnly { upto } => e.flush_done(upto, true),
            _ => return,
        }
    }
}

/// Whether sector `s` of `dev` is served from the cache.
fn cached(e: &mut Engine<HostStore>, dev: u8, s: u64) -> bool {
    match e.begin_read(dev, s, 1) {
        ReadStep::Backing { .. } => false,
        ReadStep::Buffer { buf, .. } => {
            e.end_buffer_read(buf);
            true
        }
        ReadStep::Cache { .. } => true,
        ReadStep::WaitPending => panic!("no copy is pending"),
        ReadStep::Fail { .. } => panic!("no direct write failed"),
    }
}

/// A discard of almost all of a 64 TiB device (unaligned ends, as a
/// partition would have) over data spread over the device, flushed in older
/// segments and still in the open one, with partial blocks at both ends and
/// another device's data at the same offsets: it finishes in a few calls,
/// drops exactly the cached sectors of its range, logs entries of at most
/// `MAX_DISCARD_SECTORS` that lie within it, and replaying the headers
/// drops exactly the same.
#[test]
fn huge_discard_costs_what_the_cache_holds() {
    let mut e = big_engine(16);
    let (start, end) = (13u64, BIG - 3);
    // (device, sector, sectors): 300 lines spread over the whole device,
    // then the ends of the range.
    let mut writes: Vec<(u8, u64, u32)> = (0..300u64).map(|i| (1 + (i % 7 == 0) as u8, (i * 0x9E37_79B9 % (BIG / 8)) * 8, 8)).collect();
    writes.extend([(1, 8, 8), (1, 0, 8), (1, BIG - 8, 8), (1, BIG - 16, 4), (2, 8, 8), (1, 3 << 20, 8)]);
    let mut headers = Vec::new();
    for (i, &(d, s, n)) in writes.iter().enumerate() {
        write_dev(&mut e, d, s, n);
        if i == 150 || i == 290 {
            e.seal();
            flush_keep(&mut e, &mut headers);
        }
    }
    // Overwrite some flushed lines in the open segment (superseded older
    // lines in the range must go too).
    for &(d, s, n) in writes.iter().take(20) {
        write_dev(&mut e, d, s, n);
    }
    let sectors: Vec<(u8, u64)> = writes.iter().flat_map(|&(d, s, n)| (s..s + u64::from(n)).map(move |x| (d, x))).collect();
    let before: Vec<bool> = sectors.iter().map(|&(d, s)| cached(&mut e, d, s)).collect();
    assert!(before.iter().all(|&c| c));

    let mut d = DiscardRange::new(1, start, end - start);
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 200, "the discard did not finish within 200 calls of budget 4096");
        match e.discard_step(&mut d, 4096, &|_| false) {
            DiscardStep::Pass => break,
            DiscardStep::Again => {}
            DiscardStep::Wait(w) => {
                // Entries fill segments: let the flusher write them.
                assert_eq!(w, Wait::Space);
                flush_keep(&mut e, &mut headers);
            }
            DiscardStep::Fail => panic!("discard failed"),
        }
    }
    assert!(d.walks_lines(), "a range larger than the log walks the lines");
    // Exactly the sectors of device 1 in the range are gone.
    for &(dv, s) in &sectors {
        let expect = !(dv == 1 && s >= start && s < end);
        assert_eq!(cached(&mut e, dv, s), expect, "device {dv} sector {s}");
    }
    e.seal();
    flush_keep(&mut e, &mut headers);
    let mut entries = 0;
    for (_, h) in &headers {
        for x in h.discard_entries() {
            entries += 1;
            assert_eq!(x.device_id, 1);
            assert!(x.nr_sectors <= MAX_DISCARD_SECTORS && x.sector >= start && x.sector + u64::from(x.nr_sectors) <= end, "{x:?}");
        }
    }
    // One entry per chunk holding older data, not per chunk of the range.
    assert!(entries > 0 && entries <= writes.len(), "{entries} discard entries");

    // Replay of every header in log order gives the same index.
    let geo = e.geometry();
    let mut ix = wbformat::index::Index::new(
        vec![wbformat::index::LineMeta::EMPTY; geo.nr_lines() as usize],
        vec![wbformat::index::Link::NONE; wbformat::index::buckets_for(geo.nr_lines() as usize)],
    )
    .unwrap();
    for (slot, h) in &headers {
        wbformat::recovery::replay_segment(&mut ix, &geo, *slot, h, |_, _| Ok(())).unwrap();
    }
    for &(dv, s) in &sectors {
        let key = wbformat::index::Key::from_sector(dv, s);
        let live = e.index.owner(key, (s % 8) as u8).is_some();
        assert_eq!(ix.owner(key, (s % 8) as u8).is_some(), live, "replay of device {dv} sector {s}");
    }
    assert_eq!(ix.check_consistency().unwrap() as u64, e.total_dirty());
}

/// A huge discard of a device with nothing cached costs one call, whatever
/// else the cache holds.
#[test]
fn huge_discard_of_an_uncached_device_is_free() {
    let mut e = big_engine(8);
    for i in 0..200 {
        write_dev(&mut e, 2, i * 8, 8);
    }
    let mut d = DiscardRange::new(1, 0, BIG);
    assert_eq!(e.discard_step(&mut d, 1, &|_| false), DiscardStep::Pass);
    assert_eq!(e.dirty_of(2), 200);
    // Same with the convenience call, and a range ending past u64.
    assert_eq!(e.discard(1, u64::MAX - 5, u32::MAX, &|_| false), DiscardStep::Pass);
}

/// A small discard still walks its blocks (and costs about that).
#[test]
fn small_discard_walks_blocks() {
    let mut e = big_engine(8);
    for i in 0..600 {
        write_dev(&mut e, 1, i * 8, 8);
    }
    let mut d = DiscardRange::new(1, 800, 100);
    assert_eq!(e.discard_step(&mut d, u32::MAX, &|_| false), DiscardStep::Pass);
    assert!(!d.walks_lines());
    assert_eq!(e.dirty_of(1), 600 - 12, "blocks 101..=111 dropped, blocks 100 and 112 keep sectors");
    assert!(cached(&mut e, 1, 799) && !cached(&mut e, 1, 800) && !cached(&mut e, 1, 899) && cached(&mut e, 1, 900));
}

/// What `blkdiscard` of a 64 TiB device sends: 4 GiB discards in order.
/// Only those holding cached data walk the lines; the others skip at once
/// (a write of the device in between makes the next one walk again).
#[test]
fn sequential_huge_discards_skip_between_cached_data() {
    let mut e = big_engine(8);
    let places = [0u64, 8 << 20, BIG / 2 + 4, BIG - 8 - 50 * 8 * 1024];
    for &p in &places {
        for i in 0..50 {
            // One line each (the rest of the block at an unaligned place).
            write_dev(&mut e, 1, p + i * 8 * 1024, 8 - (p % 8) as u32);
        }
    }
    let step = 8u64 << 20;
    let mut agains = 0u64;
    let mut walks = 0u64;
    let mut s = 0;
    while s < BIG {
        let mut d = DiscardRange::new(1, s, step);
        loop {
            match e.discard_step(&mut d, 64, &|_| false) {
                DiscardStep::Pass => break,
                DiscardStep::Again => agains += 1,
                x => panic!("{x:?}"),
            }
        }
        walks += d.walks_lines() as u64;
        s += step;
        if s == BIG / 2 {
            assert_eq!(e.dirty_of(1), 100, "the second half is still cached");
            // A write restarts the walks (the hint is stale).
            write_dev(&mut e, 1, s + step + 8, 8);
        }
    }
    assert_eq!(e.dirty_of(1), 0);
    assert!(walks <= 6, "{walks} discards walked the lines");
    assert!(agains < 2000, "{agains} pieces of work");
}

/// Recovery's discard of a huge range walks the index's lines.
#[test]
fn recovery_discard_range_is_bounded() {
    let geo = Geometry::from_nr_segments(4).unwrap();
    let n = geo.nr_lines() as usize;
    let mut ix = wbformat::index::Index::new(vec![wbformat::index::LineMeta::EMPTY; n], vec![wbformat::index::Link::NONE; wbformat::index::buckets_for(n)]).unwrap();
    ix.write(0, wbformat::index::Key::new(1, 5), 0xff).unwrap();
    ix.write(1, wbformat::index::Key::new(1, BIG / 8 - 1), 0xff).unwrap();
    ix.write(2, wbformat::index::Key::new(2, 5), 0xff).unwrap();
    ix.write(3, wbformat::index::Key::new(1, 0), 0xff).unwrap();
    ix.write(4, wbformat::index::Key::new(1, 10), 0xff).unwrap();
    let t = std::time::Instant::now();
    let (delta, cleaned) = wbformat::recovery::discard_range(&mut ix, 1, 44, BIG - 44 - 4).unwrap();
    assert!(t.elapsed().as_secs() < 2);
    assert_eq!((delta, cleaned), (-1, 1), "only block 10 is wholly in the range");
    assert_eq!(ix.dirty(0), Ok(0x0f), "block 5 (sectors 40..48) keeps 40..44");
    assert_eq!(ix.dirty(1), Ok(0xf0), "the last block keeps its last 4 sectors");
    assert_eq!(ix.dirty(2), Ok(0xff), "another device");
    assert_eq!(ix.dirty(3), Ok(0xff), "block 0 is outside");
    assert_eq!(ix.dirty(4), Ok(0));
    assert_eq!(ix.check_consistency(), Ok(4));
}

// ---------------------------------------------------------------------------
// Issue 9, item 6: an idle open buffer is sealed by the kernel.

#[test]
fn idle_open_segment_is_sealed_and_migrated() {
    let mut e = engine(8);
    assert_eq!(e.seal_if_idle(0, 5000), IdleStep::Nothing, "nothing open");
    let WriteStep::Go(t) = e.begin_write(1, 0, 8, &|_| false, Direct::No) else { panic!() };
    e.end_write(t, true, false, 100, 3);
    assert_eq!(e.seal_if_idle(1000, 0), IdleStep::Nothing, "idle sealing off");
    assert_eq!(e.seal_if_idle(1000, 5000), IdleStep::Due { ms: 4100 });
    // A new write restarts the idle time.
    let WriteStep::Go(t) = e.begin_write(1, 8, 8, &|_| false, Direct::No) else { panic!() };
    e.end_write(t, true, false, 2000, 3);
    assert_eq!(e.seal_if_idle(5100, 5000), IdleStep::Due { ms: 1900 });
    assert_eq!(e.sealed_upto(), 0);
    assert_eq!(e.seal_if_idle(7000, 5000), IdleStep::Sealed);
    assert_eq!(e.sealed_upto(), 1);
    assert_eq!(flush_sealed(&mut e, false), vec![(1, false)]);
    let MigratorJob::Round { start: 1, end: 1 } = e.migrator_next(true, 4, 0) else { panic!("no round") };
    let mut entries = Vec::new();
    e.round_entries(1, 1, false, |x| entries.push(x));
    assert_eq!(entries.len(), 2);
    e.round_done(1, 1, &entries, Ok(()), &|_| None);
    assert_eq!(e.dirty_of(1), 0);
    assert_eq!(e.seal_if_idle(9000, 5000), IdleStep::Nothing);
}

/// A [`common::MemDisk`] as the log device of a resume.
struct Dev<'a>(&'a mut common::MemDisk);

impl wbformat::recovery::LogDevice for Dev<'_> {
    type Error = String;
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), String> {
        self.0.read(sector, buf)
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), String> {
        self.0.write(sector, buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Resumes a new engine from `img` as the module does (`resume_engine`).
fn resume(img: &mut common::Image) -> (Engine<HostStore>, wbformat::recovery::ResumeSummary) {
    let geo = img.geometry();
    let rec = img.record;
    let mut e = common::host_engine(geo, common::FORMAT_ID, rec.generation);
    let mut hdr = SegmentHeader::default();
    let mut buf = vec![0u8; BLOCK_SIZE * BLOCKS_PER_SEGMENT];
    let sum = wbformat::recovery::resume_engine(&mut Dev(&mut img.disk), geo, common::FORMAT_ID, &rec, common::default_sum(), &mut e, &mut hdr, &mut buf, LOG_HORIZON, false).unwrap();
    (e, sum)
}

/// A torn end segment (its header names the expected id, its data fails the
/// checksum) is invalidated by resume like the stale segments past it:
/// otherwise, after the slot is rewritten and that rewrite is lost in a
/// crash, the old header could verify again and replay what this resume
/// dropped (found by the simulator's extra seeds).
#[test]
fn resume_invalidates_a_torn_end_segment() {
    use common::{mb, Image};
    use wbformat::recovery::LogEnd;
    let mut img = Image::format(4, 0);
    img.update_record(|r| r.register(1, 1 << 20).unwrap());
    img.write_segment(1, &[mb(1, 0, 0xff)]);
    img.write_segment(2, &[mb(1, 1, 0xff), mb(1, 2, 0xff)]);
    // Segment 2 torn: its second line never reached the disk.
    let s2 = img.segment_start(2);
    img.disk.write(s2 + 16, &[0u8; 4096]);
    let (_e, sum) = resume(&mut img);
    assert_eq!(sum.last_valid, 1);
    assert!(matches!(sum.end, Some(LogEnd::Invalid { id: 2, .. })));
    assert!(sum.torn_end);
    assert!(img.disk.read_vec(s2, 4096).iter().all(|&b| b == 0), "the torn header is still on disk");
}

/// The same for an end segment whose header names the expected id but
/// fails a check of the header itself (here an unused metablock that is
/// not zero: sectors of an older header of the slot under the new one's).
/// Left on disk, a rewrite of the slot under that id, cut short by a
/// crash, mixed with it into a header that verified and replayed a write
/// the first resume had dropped (simulator seed 615 of 1000).
#[test]
fn resume_invalidates_an_end_segment_naming_its_id_with_a_bad_header() {
    use common::{mb, Image};
    use wbformat::recovery::LogEnd;
    let mut img = Image::format(4, 0);
    img.update_record(|r| r.register(1, 1 << 20).unwrap());
    img.write_segment(1, &[mb(1, 0, 0xff)]);
    img.write_segment(2, &[mb(1, 1, 0xff)]);
    let s2 = img.segment_start(2);
    // Metablock 37 of segment 2 (past its one line) not zero: metablocks
    // start at byte 64 of the header, 12 bytes each.
    let off = 64 + 37 * METABLOCK_SIZE;
    let sector = s2 + (off / 512) as u64;
    let mut b = img.disk.read_vec(sector, 512);
    b[off % 512] = 0x5a;
    img.disk.write(sector, &b);
    let (_e, sum) = resume(&mut img);
    assert_eq!(sum.last_valid, 1);
    assert!(matches!(sum.end, Some(LogEnd::Invalid { id: 2, .. })), "{:?}", sum.end);
    assert!(sum.torn_end);
    assert!(img.disk.read_vec(s2, 4096).iter().all(|&b| b == 0), "the bad header is still on disk");
    // A header of another id there (an older lap) is left alone.
    let mut img = Image::format(4, 0);
    img.update_record(|r| r.register(1, 1 << 20).unwrap());
    img.write_segment(1, &[mb(1, 0, 0xff)]);
    let (_e, sum) = resume(&mut img);
    assert!(!sum.torn_end);
}

/// Issue 10: a large write is not cut into 4 KiB pieces. A 1 MiB write
/// takes the open segment's lines in one ticket (contiguous in the RAM
/// buffer) up to the end of the segment, and the rest goes on in the next.
#[test]
fn large_write_takes_consecutive_lines_in_one_step() {
    let mut e = engine(8);
    let n = 2048u32; // 1 MiB
    let WriteStep::Go(t) = e.begin_write(1, 0, n, &|_| false, Direct::No) else { panic!() };
    assert_eq!((t.k, t.nr_lines, t.sectors, t.byte_off), (0, 255, 255 * 8, line_offset(0, 0)));
    e.end_write(t, true, false, 0, 3);
    let WriteStep::Go(t2) = e.begin_write(1, u64::from(t.sectors), n - t.sectors, &|_| false, Direct::No) else { panic!() };
    assert_eq!((t2.k, t2.nr_lines, t2.sectors), (0, 1, 8), "the rest goes to the next segment");
    assert_ne!(t2.buf, t.buf);
    e.end_write(t2, true, false, 0, 3);
    assert_eq!(e.dirty_of(1), 256);
    // An unaligned write: a partial first and last block, one ticket.
    let WriteStep::Go(t3) = e.begin_write(1, 4100, 20, &|_| false, Direct::No) else { panic!() };
    assert_eq!((t3.k, t3.nr_lines, t3.sectors, t3.byte_off), (1, 3, 20, line_offset(1, 4)));
    e.end_write(t3, true, false, 0, 3);
    // Rewriting blocks already in the open segment updates them in place,
    // as long as their lines follow each other.
    let WriteStep::Go(t4) = e.begin_write(1, 4096, 24, &|_| false, Direct::No) else { panic!() };
    assert_eq!((t4.k, t4.nr_lines, t4.sectors), (1, 3, 24));
    e.end_write(t4, true, false, 0, 3);
    // A run stops where the next block's line is not the next line.
    write(&mut e, 4800, 8, false); // block 600: line 4
    let WriteStep::Go(t5) = e.begin_write(1, 4096 + 16, 16, &|_| false, Direct::No) else { panic!() };
    assert_eq!((t5.k, t5.nr_lines, t5.sectors), (3, 1, 8));
    e.end_write(t5, true, false, 0, 3);
    assert_eq!(e.dirty_of(1), 256 + 3 + 1);
}

/// Issue 10: a read is split only at the edges of what is cached. An
/// uncached device's read goes to the backing device whole; cached lines
/// that follow each other in one segment are one piece.
#[test]
fn large_read_is_split_only_at_cached_edges() {
    let mut e = engine(8);
    assert_eq!(e.begin_read(1, 0, 2048), ReadStep::Backing { run: 2048 });
    write(&mut e, 800, 64, false); // blocks 100..108, lines 0..8 of segment 1
    assert_eq!(e.begin_read(1, 0, 2048), ReadStep::Backing { run: 800 });
    let ReadStep::Buffer { buf, byte_off, run } = e.begin_read(1, 800, 2048 - 800) else { panic!() };
    assert_eq!((byte_off, run), (line_offset(0, 0), 64));
    e.end_buffer_read(buf);
    assert_eq!(e.begin_read(1, 864, 2048 - 864), ReadStep::Backing { run: 2048 - 864 });
    // A piece may start inside a block.
    let ReadStep::Buffer { buf, run, .. } = e.begin_read(1, 804, 100) else { panic!() };
    assert_eq!(run, 60);
    e.end_buffer_read(buf);
    // A partly cached block ends the run where its cached sectors end.
    write(&mut e, 870, 2, false);
    assert_eq!(e.begin_read(1, 864, 100), ReadStep::Backing { run: 6 });
}

/// The log horizon: a writer that never flushes still makes every segment
/// say that the segments up to `id - log_horizon` were durable (the write of
/// a segment that far past `durable_upto` carries PREFLUSH), which is what
/// lets resume stop `log_horizon` ids past the end of the log. Also after a
/// resume, and with the horizon of another superblock.
#[test]
fn segments_keep_the_log_horizon_without_flushes() {
    for h in [0u32, 1, 3, 8] {
        let mut e = engine(64);
        e.set_log_horizon(h);
        let want = if h == 0 { u64::from(LOG_HORIZON) } else { u64::from(h) };
        assert_eq!(e.log_horizon(), want);
        let mut hdr = SegmentHeader::new(0, 0);
        let mut preflushes = 0;
        for i in 0..40u64 {
            write(&mut e, i * 8, 8, false);
            e.seal();
            let FlusherJob::Segment { buf, id, slot, nr_lines, durable } = e.flusher_next(0, false) else { panic!() };
            assert_eq!(id, i + 1);
            e.fill_header(buf, id, durable, &mut hdr);
            assert!(wbformat::recovery::keeps_horizon(&hdr, want as u32), "h {h}: segment {id} says {}", hdr.durable_upto);
            // Only as many PREFLUSH writes as the horizon needs.
            assert_eq!(durable, id > e.durable_upto() + want, "h {h} segment {id}");
            preflushes += u64::from(durable);
            e.segment_done(id, slot, nr_lines, durable, true, 0);
        }
        assert_eq!(preflushes, 40 / (want + 1), "h {h}");
    }
}

/// Found by the break-it run of issue 10: two writes updating one line of
/// the open segment in place at once copied into it together and tore its
/// sectors. A write that would update a line another write is still
/// copying into waits; a write that only runs into such a line stops
/// before it.
#[test]
fn in_place_update_waits_for_a_copy_in_progress() {
    let mut e = engine(8);
    write(&mut e, 0, 16, false); // blocks 0 and 1: lines 0 and 1
    let WriteStep::Go(a) = e.begin_write(1, 8, 8, &|_| false, Direct::No) else { panic!() };
    assert_eq!((a.k, a.nr_lines), (1, 1));
    assert_eq!(e.begin_write(1, 8, 8, &|_| false, Direct::No), WriteStep::Wait(Wait::Pending), "a second copy into line 1");
    assert_eq!(e.begin_write(1, 12, 2, &|_| false, Direct::No), WriteStep::Wait(Wait::Pending), "also for other sectors of the line");
    let WriteStep::Go(b) = e.begin_write(1, 0, 16, &|_| false, Direct::No) else { panic!() };
    assert_eq!((b.k, b.nr_lines, b.sectors), (0, 1, 8), "a run stops before the busy line");
    e.end_write(b, true, false, 0, 3);
    e.end_write(a, true, false, 0, 3);
    let WriteStep::Go(c) = e.begin_write(1, 8, 8, &|_| false, Direct::No) else { panic!("the copy ended") };
    assert_eq!(c.k, 1);
    e.end_write(c, true, false, 0, 3);
}

// ---------------------------------------------------------------------------
// Write-around (issue 11)

fn around(e: &mut Engine<HostStore>, sector: u64, n: u32) -> AroundStep {
    e.write_around(1, sector, n, &|_| false)
}

/// A write-around piece that logs: reserve, (write), end.
fn around_ok(e: &mut Engine<HostStore>, sector: u64, n: u32) {
    let AroundStep::Pass { logged: Some(t), .. } = around(e, sector, n) else { panic!("must log") };
    e.end_around(t, true);
}

/// A device with nothing in the log past the record logs nothing.
#[test]
fn write_around_of_a_clean_device_logs_nothing() {
    let mut e = engine(8);
    assert_eq!(around(&mut e, 0, 8), AroundStep::Pass { sectors: 8, logged: None });
    assert_eq!(e.last_id(), 0, "no segment opened");
    // A piece never crosses a 1 MiB chunk.
    assert_eq!(around(&mut e, 2040, 100), AroundStep::Pass { sectors: 8, logged: None });
}

/// `around_unlogged` (the kernel's write-around fallback when the log is
/// full asks it first, so that it never reserves an entry it would undo)
/// says what `write_around` then does.
#[test]
fn around_unlogged_predicts_a_write_around_without_entry() {
    let mut e = engine(8);
    e.register(2, 1 << 20).unwrap();
    e.set_attached(2, true);
    assert!(e.around_unlogged(1));
    assert_eq!(around(&mut e, 0, 8), AroundStep::Pass { sectors: 8, logged: None });
    // Lines in the log past the record: an entry.
    write(&mut e, 0, 8, false);
    e.seal();
    flush_sealed(&mut e, false);
    assert!(!e.around_unlogged(1));
    assert!(e.around_unlogged(2), "another device's lines do not count");
    assert!(matches!(around(&mut e, 0, 8), AroundStep::Pass { logged: Some(_), .. }));
    // A failing device's write-around writes go through the cache.
    e.set_failing(2, -5, 0);
    assert!(!e.around_unlogged(2));
    assert_eq!(e.write_around(2, 0, 8, &|_| false), AroundStep::Cache);
}

/// Dirty data of older segments: dropped from the index once the data is
/// written, and logged in the open segment; adjacent drops merge into one
/// entry; the segment is not written while the write is in flight, and a
/// failed write changes nothing.
#[test]
fn write_around_drops_and_logs_older_copies() {
    let mut e = engine(8);
    write(&mut e, 0, 16, false);
    e.seal();
    flush_sealed(&mut e, false);
    assert_eq!(e.dirty_of(1), 2);
    let AroundStep::Pass { sectors: 8, logged: Some(t) } = around(&mut e, 0, 8) else { panic!() };
    assert_eq!(e.dirty_of(1), 2, "nothing dropped before the data is written");
    write(&mut e, 800, 8, false);
    e.seal();
    assert!(matches!(e.flusher_next(0, false), FlusherJob::Idle(1)), "the segment waits for the backing write");
    // No write-back round starts meanwhile (it could write the old copy
    // back after the new data).
    assert!(matches!(e.migrator_next(true, 4, 0), MigratorJob::Idle { .. }));
    e.end_around(t, true);
    assert_eq!(e.dirty_of(1), 2, "the overwritten line left the index");
    let MigratorJob::Round { start, end } = e.migrator_next(true, 4, 0) else { panic!() };
    let mut entries = Vec::new();
    e.round_entries(start, end, false, |x| entries.push(x));
    assert_eq!(entries.len(), 1, "only the line not written around is written back");
    assert_eq!(entries[0].sector, 8);
    e.round_done(start, end, &entries, Ok(()), &|_| None);
    assert_eq!(e.begin_read(1, 0, 8), ReadStep::Backing { run: 8 }, "reads of it go to the backing device");
    let FlusherJob::Segment { buf, id, durable, .. } = e.flusher_next(0, false) else { panic!() };
    let mut hdr = Box::new(SegmentHeader::new(0, 0));
    e.fill_header(buf, id, durable, &mut hdr);
    assert_eq!(hdr.discard_entries(), &[Discard { sector: 0, nr_sectors: 8, device_id: 1 }]);
    // Merging: adjacent pieces, one entry; a failed write keeps the copy.
    let mut e = engine(8);
    write(&mut e, 0, 24, false);
    e.seal();
    flush_sealed(&mut e, false);
    around_ok(&mut e, 8, 8);
    around_ok(&mut e, 0, 8);
    let AroundStep::Pass { logged: Some(t), .. } = around(&mut e, 16, 4) else { panic!() };
    e.end_around(t, false);
    assert_eq!(e.dirty_of(1), 1, "a failed write-around write drops nothing");
    assert!(matches!(e.begin_read(1, 16, 8), ReadStep::Cache { .. } | ReadStep::Buffer { .. }));
    e.seal();
    let FlusherJob::Segment { buf, id, durable, .. } = e.flusher_next(0, false) else { panic!() };
    e.fill_header(buf, id, durable, &mut hdr);
    assert_eq!(hdr.discard_entries(), &[Discard { sector: 0, nr_sectors: 16, device_id: 1 }]);
}

/// Lines written back but not yet past the durable record can come back in
/// a replay: the drop is logged although the index holds nothing; once the
/// record passes them, nothing is logged.
#[test]
fn write_around_logs_while_the_record_lags() {
    let mut e = engine(8);
    write(&mut e, 0, 8, false);
    e.seal();
    flush_sealed(&mut e, false);
    // Write back segment 1, record not yet written.
    let MigratorJob::Round { start, end } = e.migrator_next(true, 4, 0) else { panic!() };
    let mut entries = Vec::new();
    e.round_entries(start, end, false, |x| entries.push(x));
    // During the round: the write waits (a copy is on its way to the disk).
    assert_eq!(around(&mut e, 0, 8), AroundStep::Wait(Wait::Sleep(1)));
    e.round_done(start, end, &entries, Ok(()), &|_| None);
    assert_eq!(e.dirty_of(1), 0);
    assert_eq!(e.record_migrated(), 0);
    around_ok(&mut e, 0, 8);
    // The record passes segment 1 but not segment 2 (the drop): still logs.
    assert_eq!(e.migrator_next(true, 4, 0), MigratorJob::Record);
    let s = e.record_snapshot();
    e.record_done(s, true);
    assert_eq!(e.record_migrated(), 1);
    around_ok(&mut e, 8, 8);
    // Segment 2 written and passed by the record: nothing more to log.
    e.seal();
    flush_sealed(&mut e, false);
    loop {
        match e.migrator_next(true, 4, 0) {
            MigratorJob::Record => {
                let s = e.record_snapshot();
                e.record_done(s, true);
            }
            MigratorJob::Round { start, end } => {
                let mut entries = Vec::new();
                e.round_entries(start, end, false, |x| entries.push(x));
                e.round_done(start, end, &entries, Ok(()), &|_| None);
            }
            _ => break,
        }
    }
    assert_eq!(e.record_migrated(), 2);
    assert_eq!(around(&mut e, 0, 8), AroundStep::Pass { sectors: 8, logged: None });
}

/// A FUA write-around write waits for its drop: begin_flush holds it on the
/// open segment, which carries PREFLUSH|FUA.
#[test]
fn write_around_fua_waits_for_the_drop() {
    let mut e = engine(8);
    write(&mut e, 0, 8, false);
    e.seal();
    flush_sealed(&mut e, false);
    around_ok(&mut e, 0, 8);
    assert!(matches!(e.begin_flush(0, 3), FlushStep::Held(_)));
    e.seal();
    assert_eq!(flush_sealed(&mut e, false), vec![(2, true)]);
    assert_eq!(e.begin_flush(0, 3), FlushStep::Done);
}

/// The open segment's own lines lose the sectors in their header entry;
/// a failing device writes through the cache.
#[test]
fn write_around_clears_open_segment_lines() {
    let mut e = engine(8);
    write(&mut e, 0, 8, false);
    around_ok(&mut e, 0, 4);
    assert_eq!(e.begin_read(1, 0, 4), ReadStep::Backing { run: 4 });
    e.seal();
    let FlusherJob::Segment { buf, id, durable, .. } = e.flusher_next(0, false) else { panic!() };
    let mut hdr = Box::new(SegmentHeader::new(0, 0));
    e.fill_header(buf, id, durable, &mut hdr);
    assert_eq!(hdr.lines()[0].dirty_bits, 0xf0);
    e.set_failing(1, -5, 0);
    assert_eq!(around(&mut e, 0, 8), AroundStep::Cache);
}

// ---------------------------------------------------------------------
// Read caching (clean lines)

fn rc_engine(threshold: u32, cells: u32) -> Engine<HostStore> {
    let mut e = engine(8);
    e.set_segment_version(SEGMENT_VERSION_V3);
    e.set_read_cache(threshold, cells).unwrap();
    e
}

/// Stages and injects block `block` of device 1 (the read missed first).
fn stage(e: &mut Engine<HostStore>, block: u64) -> Option<StageTicket> {
    assert!(matches!(e.begin_read(1, block * 8, 8), ReadStep::Backing { run: 8 }), "block {block} is a miss");
    e.stage_begin(1, block * 8, 8)
}

fn inject(e: &mut Engine<HostStore>, t: StageTicket) -> bool {
    match e.stage_inject(t, &|_| false) {
        InjectStep::Go(w) => {
            assert_eq!((w.nr_lines, w.sectors), (1, 8));
            e.end_write(w, true, false, 0, 3);
            true
        }
        InjectStep::Dropped => false,
    }
}

/// The race of the brief: read miss -> staged -> a write of the block ->
/// the staging read completes -> inject. The staged data predates the
/// write: it must not be injected (it would shadow the write's other
/// sectors... and the write itself once it is written back).
#[test]
fn write_before_injection_cancels_the_staged_block() {
    let mut e = rc_engine(8, 16);
    let t = stage(&mut e, 100).expect("staged");
    // A second staging of the same block is refused while it is in flight.
    assert!(e.stage_begin(1, 800, 8).is_none());
    write(&mut e, 802, 2, false);
    // The write is even written back (the block is a miss again) before
    // the staging read completes: the staged data is still older.
    e.seal();
    flush_sealed(&mut e, false);
    let MigratorJob::Round { start, end } = e.migrator_next(true, 4, 0) else { panic!("a round") };
    let mut entries = Vec::new();
    e.round_entries(start, end, false, |m| entries.push(m));
    assert_eq!(entries.len(), 1);
    e.round_done(start, end, &entries, Ok(()), &|_| None);
    assert_eq!(e.total_dirty(), 0);
    assert!(matches!(e.begin_read(1, 800, 8), ReadStep::Backing { run: 8 }));
    assert!(!inject(&mut e, t), "a write came first");
    assert_eq!(e.index.nr_clean(), 0);
    // Sectors 800..802 still come from the backing device.
    assert!(matches!(e.begin_read(1, 800, 2), ReadStep::Backing { run: 2 }));
    // The same with a discard, and with the public call (write-around).
    let t = stage(&mut e, 200).unwrap();
    assert_eq!(e.discard(1, 1600, 8, &|_| false), DiscardStep::Pass);
    assert!(!inject(&mut e, t), "a discard came first");
    let t = stage(&mut e, 300).unwrap();
    e.cancel_staging(1, 2407, 1);
    assert!(!inject(&mut e, t), "cancel_staging came first");
    // Another block of the range is not touched.
    let t = stage(&mut e, 301).unwrap();
    e.cancel_staging(1, 2400, 8);
    assert!(inject(&mut e, t));
    assert_eq!(e.index.nr_clean(), 1);
}

#[test]
fn clean_lines_are_hits_never_written_back_and_dropped_by_writes() {
    let mut e = rc_engine(8, 16);
    let t = stage(&mut e, 10).unwrap();
    assert!(inject(&mut e, t));
    assert_eq!(e.total_dirty(), 0);
    e.clear_stats();
    // A read hit in the RAM buffer (read, hit, on buffer, full size).
    let ReadStep::Buffer { buf, byte_off, run: 8 } = e.begin_read(1, 80, 8) else { panic!("hit") };
    e.end_buffer_read(buf);
    assert_eq!(byte_off % 4096, 0);
    assert_eq!(e.stats()[4 | 2 | 8], 1);
    // Partial reads are hits too, never staged.
    assert!(e.stage_begin(1, 80, 4).is_none());
    assert!(e.stage_begin(1, 84, 8).is_none());
    e.seal();
    let segs = flush_sealed(&mut e, false);
    assert_eq!(segs.len(), 1);
    // Written: still a hit (the RAM copy of the written segment).
    match e.begin_read(1, 80, 8) {
        ReadStep::Buffer { buf, run: 8, .. } => e.end_buffer_read(buf),
        ReadStep::Cache { run: 8, .. } => {}
        r => panic!("{r:?}"),
    }
    // Nothing to write back: the migrator passes the segment without I/O.
    let mut n = 0;
    e.round_entries(1, 1, false, |_| n += 1);
    assert_eq!(n, 0);
    for _ in 0..4 {
        if let MigratorJob::Round { .. } = e.migrator_next(true, 4, 0) {
            panic!("a round for a clean line");
        }
    }
    assert_eq!(e.last_migrated(), 1);
    // A partial write drops the clean line; the other sectors come from
    // the backing device again.
    write(&mut e, 81, 1, false);
    assert_eq!(e.index.nr_clean(), 0);
    assert!(matches!(e.begin_read(1, 82, 6), ReadStep::Backing { run: 6 }));
    assert_eq!(e.total_dirty(), 1);
}

#[test]
fn clean_line_header_and_in_place_write() {
    let mut e = rc_engine(8, 16);
    let t = stage(&mut e, 10).unwrap();
    assert!(inject(&mut e, t));
    let t = stage(&mut e, 20).unwrap();
    assert!(inject(&mut e, t));
    // A write into the clean line of the open segment: a dirty line of
    // all 8 sectors (the other sectors equal the backing device's).
    let (w, _) = write(&mut e, 160, 1, false);
    assert_eq!(w.k, 1, "written in place");
    assert_eq!(e.total_dirty(), 1);
    assert_eq!(e.index.nr_clean(), 1);
    e.seal();
    let mut hdr = SegmentHeader::default();
    e.fill_header(0, 1, false, &mut hdr);
    assert_eq!(hdr.version, SEGMENT_VERSION_V3);
    let l = hdr.lines();
    assert_eq!((l[0].sector, l[0].dirty_bits, l[0].flags), (80, 0xff, METABLOCK_CLEAN));
    assert_eq!((l[1].sector, l[1].dirty_bits, l[1].flags), (160, 0xff, 0));
    hdr.validate().unwrap();
}

#[test]
fn sequential_run_is_not_cached() {
    let mut e = rc_engine(2, 16);
    let a = stage(&mut e, 50).unwrap();
    let b = stage(&mut e, 51).unwrap();
    assert!(stage(&mut e, 52).is_none(), "a third consecutive block: sequential");
    assert!(stage(&mut e, 53).is_none());
    assert!(!inject(&mut e, a) && !inject(&mut e, b), "the run's first blocks are dropped too");
    // A random read after it is cached again.
    let t = stage(&mut e, 7).unwrap();
    assert!(inject(&mut e, t));
}

#[test]
fn read_cache_cells_and_refusals() {
    let mut e = rc_engine(8, 2);
    let a = stage(&mut e, 1).unwrap();
    let _b = stage(&mut e, 3).unwrap();
    assert!(stage(&mut e, 5).is_none(), "two cells only");
    e.stage_abort(a);
    assert!(stage(&mut e, 7).is_some(), "a cell is free again");
    assert_eq!(e.set_read_cache(128, 1), Err(ReadCacheError::OutOfRange));
    assert_eq!(e.set_read_cache(1, 0), Err(ReadCacheError::OutOfRange));
    assert_eq!(e.set_read_cache(1, 2049), Err(ReadCacheError::OutOfRange));
    // Off: nothing staged.
    let mut off = rc_engine(8, 16);
    off.set_read_cache(0, 16).unwrap();
    assert!(off.stage_begin(1, 800, 8).is_none());
    // A cache of an older format cannot mark clean lines.
    let mut old = engine(8);
    assert_eq!(old.set_read_cache(1, 16), Err(ReadCacheError::OldFormat));
    assert_eq!(old.set_read_cache(0, 16), Ok(()));
}

/// A detached device's clean lines go (its writes bypass the cache now).
#[test]
fn detach_drops_clean_lines() {
    let mut e = rc_engine(8, 16);
    let t = stage(&mut e, 10).unwrap();
    assert!(inject(&mut e, t));
    let pending = stage(&mut e, 11).unwrap();
    e.set_attached(1, false);
    assert_eq!(e.index.nr_clean(), 0);
    assert!(!inject(&mut e, pending));
}

/// Replay: a clean line supersedes older copies and stays clean; over a
/// dirty older copy (written back, the backing device maybe not flushed
/// when the block was staged) it comes back as a dirty line of 8 sectors.
#[test]
fn replayed_clean_lines() {
    use wbformat::index::*;
    use wbformat::recovery::replay_segment;
    let geo = Geometry::from_nr_segments(8).unwrap();
    let n = geo.nr_lines() as usize;
    let mut ix = Index::new(vec![LineMeta::EMPTY; n], vec![Link::NONE; buckets_for(n)]).unwrap();
    let clean = |block: u64| Metablock { sector: block * 8, device_id: 1, dirty_bits: 0xff, flags: METABLOCK_CLEAN };
    let dirty = |block: u64, bits: u8| Metablock { sector: block * 8, device_id: 1, dirty_bits: bits, flags: 0 };
    let mut dirty_lines = 0i64;
    let mut replay = |ix: &mut Index<Vec<LineMeta>, Vec<Link>>, id: u64, lines: &[Metablock]| {
        let mut h = SegmentHeader::new(1, id);
        h.version = SEGMENT_VERSION_V3;
        for m in lines {
            h.push(*m).unwrap();
        }
        replay_segment(ix, &geo, geo.slot_of_id(id).unwrap(), &h, |_, d| {
            dirty_lines += i64::from(d);
            Ok(())
        })
        .unwrap();
    };
    replay(&mut ix, 1, &[dirty(5, 0x0f), clean(9)]);
    replay(&mut ix, 2, &[clean(5), clean(6)]);
    // Block 5: promoted (segment 1's copy was replayed, so its write-back
    // may not be durable); block 6: clean; block 9: clean.
    assert_eq!(ix.nr_clean(), 2);
    let l5 = ix.lookup(Key::new(1, 5)).unwrap();
    assert_eq!((l5, ix.dirty(l5).unwrap()), (255, 0xff));
    assert!(ix.is_clean(ix.lookup(Key::new(1, 6)).unwrap()).unwrap());
    assert!(ix.is_clean(ix.lookup(Key::new(1, 9)).unwrap()).unwrap());
    assert_eq!(ix.check_consistency(), Ok(1));
    // A later write supersedes a clean line; a logged discard drops one.
    let mut h = SegmentHeader::new(1, 3);
    h.version = SEGMENT_VERSION_V3;
    h.push(dirty(6, 0x01)).unwrap();
    h.push_discard(Discard { sector: 72, nr_sectors: 8, device_id: 1 }).unwrap();
    replay_segment(&mut ix, &geo, 2, &h, |_, d| {
        dirty_lines += i64::from(d);
        Ok(())
    })
    .unwrap();
    assert_eq!(ix.nr_clean(), 0);
    assert_eq!(ix.lookup(Key::new(1, 9)), None);
    assert_eq!(ix.read_run(Key::new(1, 6), 1, 7), (None, 7));
    assert_eq!(ix.check_consistency(), Ok(2));
    assert_eq!(dirty_lines, 2, "clean lines are not counted dirty");
}

/// A round takes its entries when it starts; a discard may drop such a line
/// from the index before the round writes it back. A write-around write of
/// that block must still wait for the round (the old copy would land on the
/// backing device after the new data). Found by the simulator (seed 83 of
/// 200) once read caching changed its workload.
#[test]
fn write_around_waits_for_a_round_whose_lines_a_discard_dropped() {
    let mut e = engine(8);
    write(&mut e, 0, 8, false);
    e.seal();
    flush_sealed(&mut e, false);
    let MigratorJob::Round { start, end } = e.migrator_next(true, 4, 0) else { panic!("a round") };
    let mut entries = Vec::new();
    e.round_entries(start, end, false, |x| entries.push(x));
    assert_eq!(entries.len(), 1);
    assert_eq!(e.discard(1, 0, 8, &|_| false), DiscardStep::Pass);
    assert_eq!(e.dirty_of(1), 0, "the discard dropped the line from the index");
    assert!(matches!(around(&mut e, 0, 8), AroundStep::Wait(_)), "the round may still write the old copy back");
    e.round_done(start, end, &entries, Ok(()), &|_| None);
    assert!(matches!(around(&mut e, 0, 8), AroundStep::Pass { .. }));
}

/// A block with a clean line (read caching) is written around through the
/// cache: a drop not yet durable at a crash would let the replayed clean
/// line (old data) shadow the new data on the backing device. And a clean
/// line injected while a write-around write is in flight (its backing read
/// may predate the data) is dropped when the write ends.
#[test]
fn write_around_and_clean_lines() {
    let mut e = rc_engine(8, 16);
    let t = stage(&mut e, 10).expect("staged");
    assert!(inject(&mut e, t));
    assert_eq!(around(&mut e, 80, 8), AroundStep::Cache);
    // In flight first, then a read of another block is staged and injected.
    let AroundStep::Pass { logged: Some(a), .. } = around(&mut e, 160, 16) else { panic!("logged with read caching on") };
    let t = stage(&mut e, 21).expect("staged");
    assert!(inject(&mut e, t));
    assert!(matches!(e.begin_read(1, 168, 8), ReadStep::Buffer { .. } | ReadStep::Cache { .. }), "a hit before the write ends");
    e.end_around(a, true);
    assert!(matches!(e.begin_read(1, 168, 8), ReadStep::Backing { .. }), "the clean line injected meanwhile is gone");
}

// ---------------------------------------------------------------------
// Direct writes (segment header version 4)

fn direct_engine() -> Engine<HostStore> {
    let mut e = engine(8);
    e.set_segment_version(SEGMENT_VERSION_V4);
    e
}

fn go(e: &mut Engine<HostStore>, sector: u64, n: u32, d: Direct) -> WriteTicket {
    match e.begin_write(1, sector, n, &|_| false, d) {
        WriteStep::Go(t) => t,
        other => panic!("write of {sector}+{n} ({d:?}) did not go: {other:?}"),
    }
}

/// Where line `k` of buffer `b`'s segment is on the cache device.
fn line_at(e: &Engine<HostStore>, b: usize, k: u32) -> u64 {
    e.geometry().line_sector(e.buf(b).unwrap().slot, k).unwrap()
}

#[test]
fn direct_want_takes_new_lines_at_their_place() {
    let mut e = direct_engine();
    // Aligned: 32 new lines in one direct ticket.
    let t = go(&mut e, 0, 256, Direct::Want);
    assert!(t.direct);
    assert_eq!((t.k, t.nr_lines, t.sectors), (0, 32, 256));
    let start = e.geometry().segment_start_sector(e.buf(t.buf).unwrap().slot).unwrap();
    assert_eq!(t.cache_sector, start + (t.byte_off / 512) as u64);
    assert_eq!(t.cache_sector, line_at(&e, t.buf, 0));
    e.end_write(t, true, false, 0, 3);
    // Unaligned: starts at sector 3 of its first line, the next lines follow.
    let u = go(&mut e, 8 * 100 + 3, 200, Direct::Want);
    assert!(u.direct);
    assert_eq!((u.k, u.sectors), (32, 200));
    assert_eq!(u.nr_lines, 26, "5 + 24 * 8 + 3 sectors");
    assert_eq!(u.cache_sector, line_at(&e, u.buf, 32) + 3);
    assert_eq!(u.cache_sector, e.geometry().segment_start_sector(e.buf(u.buf).unwrap().slot).unwrap() + (u.byte_off / 512) as u64);
    e.end_write(u, true, false, 0, 3);
    // May and No take RAM lines for new blocks.
    assert!(!go(&mut e, 8 * 1000, 16, Direct::May).direct);
    assert!(!go(&mut e, 8 * 2000, 16, Direct::No).direct);
}

#[test]
fn version_3_engine_never_gives_direct_tickets() {
    let mut e = engine(8);
    e.set_segment_version(SEGMENT_VERSION_V3);
    let t = go(&mut e, 0, 256, Direct::Want);
    assert!(!t.direct);
    assert_eq!(t.sectors, 256);
    e.end_write(t, true, false, 0, 3);
    assert!(!go(&mut e, 2, 2, Direct::May).direct, "in place: still RAM");
    // Version 2 neither.
    let mut e = engine(8);
    assert!(!go(&mut e, 0, 256, Direct::Want).direct);
}

#[test]
fn direct_ticket_is_cut_by_a_ram_line_in_place() {
    let mut e = direct_engine();
    let (r, _) = write(&mut e, 40, 8, false); // block 5, a RAM line
    assert!(!r.direct);
    // Blocks 0..4 new and direct; block 5 is in RAM: the ticket ends there.
    let t = go(&mut e, 0, 128, Direct::Want);
    assert!(t.direct);
    assert_eq!(t.sectors, 40);
    e.end_write(t, true, false, 0, 3);
    // The rest starts at the RAM line: a RAM copy in place.
    let u = go(&mut e, 40, 88, Direct::Want);
    assert!(!u.direct);
    assert_eq!(u.k, r.k);
    e.end_write(u, true, false, 0, 3);
    // A RAM ticket that went on over new lines made them RAM lines; a
    // direct ticket is cut where a RAM line of the open segment is.
    let v = go(&mut e, 0, 8 * 7, Direct::Want);
    assert!(v.direct);
    assert_eq!(v.sectors, 40, "stops before block 5 (RAM)");
    e.end_write(v, true, false, 0, 3);
    // In place over consecutive lines: direct lines then a RAM line, and
    // a RAM line then a direct one.
    let mut e = direct_engine();
    let d = go(&mut e, 0, 16, Direct::Want); // lines 0, 1
    e.end_write(d, true, false, 0, 3);
    write(&mut e, 16, 8, false); // line 2
    let d2 = go(&mut e, 24, 8, Direct::Want); // line 3
    e.end_write(d2, true, false, 0, 3);
    let a = go(&mut e, 0, 32, Direct::Want);
    assert!(a.direct);
    assert_eq!((a.k, a.sectors), (0, 16), "cut before the RAM line 2");
    e.end_write(a, true, false, 0, 3);
    let b = go(&mut e, 16, 16, Direct::May);
    assert!(!b.direct);
    assert_eq!((b.k, b.sectors), (2, 8), "cut before the direct line 3");
    e.end_write(b, true, false, 0, 3);
}

#[test]
fn may_and_want_on_a_direct_line_in_place_are_direct() {
    let mut e = direct_engine();
    let t = go(&mut e, 0, 128, Direct::Want);
    e.end_write(t, true, false, 0, 3);
    let id = e.last_id();
    let s = go(&mut e, 10, 2, Direct::May);
    assert!(s.direct, "a small write in place of a direct line");
    assert_eq!((s.k, s.nr_lines), (1, 1));
    assert_eq!(s.cache_sector, line_at(&e, t.buf, 1) + 2);
    e.end_write(s, true, false, 0, 3);
    let w = go(&mut e, 16, 128, Direct::Want);
    assert!(w.direct);
    assert_eq!((w.k, w.sectors), (2, 128), "14 lines in place, then 2 new ones");
    assert_eq!(w.cache_sector, line_at(&e, t.buf, 2));
    e.end_write(w, true, false, 0, 3);
    assert_eq!(e.last_id(), id, "no segment sealed");
}

#[test]
fn fua_write_on_a_direct_line_seals_and_takes_a_new_line() {
    let mut e = direct_engine();
    let t = go(&mut e, 0, 128, Direct::Want);
    e.end_write(t, true, false, 0, 3);
    let id = e.last_id();
    let f = go(&mut e, 8, 8, Direct::No);
    assert!(!f.direct);
    assert_eq!(e.sealed_upto(), id, "the direct line's segment is sealed");
    assert_eq!(e.last_id(), id + 1);
    assert_ne!(f.buf, t.buf);
    assert_eq!(f.k, 0, "a new line of the next segment");
    e.end_write(f, true, true, 0, 3);
    // The write went to the new line: reads of block 1 come from RAM.
    assert!(matches!(e.begin_read(1, 8, 8), ReadStep::Buffer { buf, run: 8, .. } if buf == f.buf));
}

#[test]
fn reads_of_direct_lines_answer_cache() {
    let mut e = direct_engine();
    let (r, _) = write(&mut e, 128, 8, false); // block 16 in RAM
    let t = go(&mut e, 0, 128, Direct::Want);
    assert!(t.direct && t.sectors == 128);
    // The device write is in flight (the ticket has not ended): reads wait,
    // the cache device holds what the slot held before.
    assert_eq!(e.begin_read(1, 8, 8), ReadStep::WaitPending);
    e.end_write(t, true, false, 0, 3);
    let slot = e.buf(t.buf).unwrap().slot;
    // Blocks 0..15 on the cache device in one run; block 16 (RAM) not in it.
    assert_eq!(e.begin_read(1, 0, 136), ReadStep::Cache { slot, sector: line_at(&e, t.buf, 1), run: 128 });
    assert_eq!(e.begin_read(1, 12, 2), ReadStep::Cache { slot, sector: line_at(&e, t.buf, 2) + 4, run: 2 });
    match e.begin_read(1, 128, 16) {
        ReadStep::Buffer { buf, run: 8, .. } => {
            assert_eq!(buf, r.buf);
            e.end_buffer_read(buf);
        }
        other => panic!("{other:?}"),
    }
    // A RAM line then a direct one: the run stops at the direct line.
    let (q, _) = write(&mut e, 8 * 40, 8, false);
    let d = go(&mut e, 8 * 41, 128, Direct::Want);
    assert!(d.direct);
    e.end_write(d, true, false, 0, 3);
    match e.begin_read(1, 8 * 40, 16) {
        ReadStep::Buffer { buf, run: 8, .. } => {
            assert_eq!(buf, q.buf);
            e.end_buffer_read(buf);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fill_header_marks_direct_lines() {
    let mut e = direct_engine();
    write(&mut e, 800, 8, false); // line 0: RAM
    let t = go(&mut e, 0, 20, Direct::Want); // lines 1..3: direct
    assert!(t.direct);
    e.end_write(t, true, false, 0, 3);
    write(&mut e, 900, 4, false); // line 4: RAM
    e.seal();
    let FlusherJob::Segment { buf, id, durable, nr_lines, .. } = e.flusher_next(0, false) else { panic!() };
    assert_eq!(nr_lines, 5);
    let mut hdr = Box::new(SegmentHeader::new(0, 0));
    e.fill_header(buf, id, durable, &mut hdr);
    assert_eq!(hdr.version, SEGMENT_VERSION_V4);
    let direct: Vec<bool> = hdr.lines().iter().map(|m| m.is_direct()).collect();
    assert_eq!(direct, [false, true, true, true, false]);
    assert_eq!(hdr.lines()[3].dirty_bits, 0x0f);
    assert!(hdr.lines().iter().all(|m| !m.is_clean()));
    assert_eq!(segment_runs(&hdr).collect::<Vec<_>>(), [(0, 1), (4, 1)]);
    hdr.validate().unwrap();
}

#[test]
fn salvage_skips_direct_lines() {
    let mut e = direct_engine();
    write(&mut e, 800, 8, false);
    let t = go(&mut e, 0, 128, Direct::Want);
    e.end_write(t, true, false, 0, 3);
    write(&mut e, 808, 8, false);
    e.set_error(-5);
    let mut v = Vec::new();
    e.salvage_entries(|m| v.push((m.sector, m.k)));
    assert_eq!(v, [(800, 0), (808, 17)], "only the lines in RAM");
}

#[test]
fn relocation_into_a_direct_line_seals() {
    // Block 0's sectors 0..4 in segment 1 (on the cache device), then a
    // direct write of its sectors 4.. in the open segment 2: relocating
    // segment 1's line must not copy into the direct line.
    let mut e = direct_engine();
    write(&mut e, 0, 4, false);
    e.seal();
    flush_sealed(&mut e, false);
    let t = go(&mut e, 4, 128, Direct::Want);
    assert!(t.direct);
    e.end_write(t, true, false, 0, 3);
    assert_eq!(e.last_id(), 2);
    let mut entries = Vec::new();
    e.round_entries(1, 1, false, |m| entries.push(m));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].bits, 0x0f);
    let (r, bits) = e.begin_relocate(entries[0].line, &|_| false).unwrap().expect("relocated");
    assert_eq!(bits, 0x0f);
    assert!(!r.direct);
    assert_eq!(e.sealed_upto(), 2, "the direct line's segment was sealed");
    assert_eq!(e.last_id(), 3);
    assert_ne!(r.buf, t.buf);
    e.end_write(r, true, false, 0, 3);
}

#[test]
fn relocation_into_a_ram_line_stays_in_place() {
    // The control of the test above: the newer line is in RAM.
    let mut e = direct_engine();
    write(&mut e, 0, 4, false);
    e.seal();
    flush_sealed(&mut e, false);
    let (t, _) = write(&mut e, 4, 4, false);
    let mut entries = Vec::new();
    e.round_entries(1, 1, false, |m| entries.push(m));
    let (r, _) = e.begin_relocate(entries[0].line, &|_| false).unwrap().expect("relocated");
    assert_eq!((r.buf, r.k), (t.buf, t.k));
    assert_eq!(e.last_id(), 2);
    e.end_write(r, true, false, 0, 3);
}

/// The protocol of `Direct`: a direct ticket ends when its device write
/// completes. Until then the flusher is not given its segment; a failed
/// one puts the cache in error, so the segment's header is never written.
#[test]
fn direct_ticket_holds_its_segment_until_the_device_write_ends() {
    let mut e = direct_engine();
    let t = go(&mut e, 0, 128, Direct::Want);
    e.seal();
    assert!(matches!(e.flusher_next(0, false), FlusherJob::Idle(_)), "the device write is in flight");
    let d = e.end_write(t, true, false, 0, 3);
    assert!(d.wake_flusher && !d.hold);
    assert!(matches!(e.flusher_next(0, false), FlusherJob::Segment { id: 1, nr_lines: 16, .. }));
    // A failed one.
    let mut e = direct_engine();
    let t = go(&mut e, 0, 128, Direct::Want);
    e.seal();
    e.end_write(t, false, false, 0, 3);
    assert!(e.error().is_some());
    assert_eq!(e.flusher_next(0, false), FlusherJob::FailHeld);
}

/// A failed direct write loses exactly its sectors: reads of them fail
/// (EIO) instead of reading what the slot held before; the other sectors
/// of its lines, written before by a direct write that worked, still read
/// from the cache device, and other lines are not touched.
#[test]
fn failed_direct_write_fails_reads_of_its_sectors_only() {
    let mut e = direct_engine();
    // Blocks 0..16 direct and written; then sectors 3..13 again, failing.
    let t = go(&mut e, 0, 128, Direct::Want);
    e.end_write(t, true, false, 0, 3);
    let t = go(&mut e, 3, 10, Direct::May);
    assert!(t.direct);
    e.end_write(t, false, false, 0, 3);
    assert!(e.error().is_some());
    for s in 0..24u64 {
        let r = e.begin_read(1, s, 1);
        if (3..13).contains(&s) {
            assert_eq!(r, ReadStep::Fail { run: 1 }, "sector {s}");
        } else {
            assert!(matches!(r, ReadStep::Cache { run: 1, .. }), "sector {s}: {r:?}");
        }
    }
    // A read over the edge stops where the lost sectors begin or end.
    assert!(matches!(e.begin_read(1, 0, 8), ReadStep::Cache { run: 3, .. }));
    assert_eq!(e.begin_read(1, 3, 16), ReadStep::Fail { run: 5 });
    assert_eq!(e.begin_read(1, 8, 8), ReadStep::Fail { run: 5 });
    assert!(matches!(e.begin_read(1, 13, 8), ReadStep::Cache { .. }));
}

/// After a resume the status `cursor` is the last line of the replayed log
/// (the 2.2 status' `cursor_pos`), not 0; the next write takes the line
/// after it.
#[test]
fn cursor_continues_after_a_resume() {
    use common::{mb, Image};
    let mut img = Image::format(4, 0);
    img.update_record(|r| r.register(1, 1 << 20).unwrap());
    img.write_segment(1, &[mb(1, 0, 0xff)]);
    img.write_segment(2, &[mb(1, 1, 0xff), mb(1, 2, 0xff), mb(1, 3, 0xff)]);
    let (mut e, sum) = resume(&mut img);
    assert_eq!(sum.last_valid, 2);
    let lines = u64::from(wbformat::format::LINES_PER_SEGMENT);
    assert_eq!(e.cursor(), lines + 2, "segment 2 (slot 1), its third line");
    e.set_attached(1, true);
    let WriteStep::Go(t) = e.begin_write(1, 800, 8, &|_| false, Direct::No) else { panic!() };
    e.end_write(t, true, false, 100, 3);
    assert_eq!(e.cursor(), 2 * lines, "the next write opens segment 3 (slot 2)");
}


/// The migrator's side of the kernel, one line of a relocation per step:
/// the kernel takes the lock per line, so writers run in between.
struct Migrator {
    reloc: Option<(Vec<MigEntry>, usize)>,
    /// Segments per round.
    batch: u32,
    /// An idle migrator seals the open segment (else only the test does,
    /// as the kernel's idle sealing after seconds without a write).
    seal_idle: bool,
}

impl Migrator {
    /// One step: the flusher writes what is sealed; then one line of the
    /// relocation in flight, or the next job (a round or a record done at
    /// once). `failed(dev)`: `dev`'s write-back error.
    fn step(&mut self, e: &mut Engine<HostStore>, now: u64, failed: &dyn Fn(u8) -> Option<i32>) {
        flush_sealed(e, false);
        if let Some((entries, next)) = self.reloc.as_mut() {
            let done = match entries.get(*next).map(|x| e.begin_relocate(x.line, &|_| false)) {
                Some(Ok(Some((t, _)))) => {
                    e.end_write(t, true, false, now, 3);
                    false
                }
                Some(Ok(None)) => false,
                Some(Err(_)) | None => true,
            };
            *next += 1;
            if done || *next >= entries.len() {
                self.reloc = None;
                e.relocate_done();
            }
            return;
        }
        match e.migrator_next(true, self.batch, now) {
            MigratorJob::Round { start, end } => {
                let mut entries = Vec::new();
                e.round_entries(start, end, false, |x| entries.push(x));
                e.round_done(start, end, &entries, Ok(()), failed);
            }
            MigratorJob::Relocate { id } => {
                let mut entries = Vec::new();
                e.round_entries(id, id, true, |x| entries.push(x));
                self.reloc = Some((entries, 0));
            }
            MigratorJob::Record => {
                let s = e.record_snapshot();
                e.record_done(s, true);
            }
            MigratorJob::Idle { wake_flusher, .. } => {
                if !wake_flusher && self.seal_idle {
                    e.seal();
                }
            }
            MigratorJob::Exit => {}
        }
    }
}

/// breakK: a removed device's lines, paused (another table holds its disk;
/// retried every 30 s), fill two thirds of the cache, and device 2 writes
/// five times the cache. Device 2's writes must keep going in, with the
/// migrator moving the parked lines out of the way a line at a time and
/// writers running in between. Before, writers took the lines of the
/// segment a relocation had opened in the slot they leave free, the
/// relocation stopped half done with the log full (for good: the record
/// could not pass the half-moved segment); and once device 2's data was
/// written back, a tail segment full of parked lines was not moved though
/// the clean segments behind it would have made room. The kernel failed
/// device 2's writes with EIO after 30 s without room.
/// A 31-segment cache whose device 1 has written `parked` lines (durable)
/// and whose write-back has failed 8 times (paused: its lines are
/// parked); device 2 is registered and attached, with nothing cached.
fn parked_cache(parked: u64) -> Engine<HostStore> {
    let mut e = engine(31);
    e.register(2, 1 << 20).unwrap();
    e.set_attached(2, true);
    let s = e.record_snapshot();
    e.record_done(s, true);
    for b in 0..parked {
        let WriteStep::Go(t) = e.begin_write(1, b * 8, 8, &|_| false, Direct::No) else { panic!("device 1's write {b}") };
        e.end_write(t, true, false, 0, 3);
        flush_sealed(&mut e, false);
    }
    e.seal();
    flush_sealed(&mut e, false);
    for _ in 0..8 {
        e.set_failing(1, -16, 0);
    }
    e
}

#[test]
fn paused_lines_filling_most_of_the_cache_leave_room_for_the_others() {
    for parked in [3000u64, 5000, 6000, 6800] {
        let mut e = parked_cache(parked);
        let dirty1 = e.dirty_of(1);
        let lines = u64::from(e.geometry().nr_lines());
        let failed = |d: u8| (d == 1).then_some(-16);
        let mut m = Migrator { reloc: None, batch: 2, seal_idle: true };
        let (mut now, mut written, mut since) = (0u64, 0u64, 0u64);
        while written < 5 * lines {
            // 1 ms per step; device 2's writer between any two steps of
            // the migrator (a 48 MiB region, rewritten).
            now += 1;
            match e.begin_write(2, (written % 12288) * 8, 8, &|_| false, Direct::No) {
                WriteStep::Go(t) => {
                    e.end_write(t, true, false, now, 3);
                    written += 1;
                    since = now;
                }
                WriteStep::Wait(_) => {}
                other => panic!("device 2's write got {other:?} after {written} writes"),
            }
            m.step(&mut e, now, &failed);
            assert!(now - since < 20_000, "{parked} parked lines: device 2 got no room for 20 s after {written} writes ({} lines relocated)", e.nr_relocated());
        }
        assert_eq!(e.dirty_of(1), dirty1, "device 1's paused lines are kept");
    }
}

/// The tail segment is full of a paused device's lines and the clean
/// segments behind it (device 2's, written back by a round that spanned
/// it) would make room: with writers waiting, the migrator moves the
/// parked segment out of the way. Before, a segment full of parked lines
/// was never moved for writers ("it frees nothing"), so device 2 got no
/// room until device 1's next retry, up to 30 s later, and its writes failed
/// with EIO in the kernel.
#[test]
fn clean_segments_behind_a_parked_one_are_reached() {
    let mut e = engine(8);
    e.register(2, 1 << 20).unwrap();
    e.set_attached(2, true);
    let s = e.record_snapshot();
    e.record_done(s, true);
    let w = |e: &mut Engine<HostStore>, dev: u8, b: u64| -> bool {
        match e.begin_write(dev, b * 8, 8, &|_| false, Direct::No) {
            WriteStep::Go(t) => {
                e.end_write(t, true, false, 0, 3);
                flush_sealed(e, false);
                true
            }
            _ => false,
        }
    };
    // Segment 1: 100 lines of device 1, 155 of device 2; segment 2: device
    // 1's only; then device 2's up to the reserve.
    for b in 0..100 {
        assert!(w(&mut e, 1, b));
    }
    for b in 0..155 {
        assert!(w(&mut e, 2, b));
    }
    for b in 100..355 {
        assert!(w(&mut e, 1, b));
    }
    let mut b2 = 155;
    while w(&mut e, 2, b2) {
        b2 += 1;
    }
    e.seal();
    flush_sealed(&mut e, false);
    // Device 1 paused, retried every 30 s; rounds span the whole log.
    for _ in 0..8 {
        e.set_failing(1, -16, 0);
    }
    let dirty1 = e.dirty_of(1);
    let failed = |d: u8| (d == 1).then_some(-16);
    let mut m = Migrator { reloc: None, batch: 8, seal_idle: false };
    let mut now = 0;
    let mut got = 0;
    while now < 20_000 && got < 600 {
        now += 1;
        if w(&mut e, 2, 100_000 + got) { got += 1; }
        m.step(&mut e, now, &failed);
    }
    assert!(got >= 600, "device 2 got {got} lines in 20 s (relocated {})", e.nr_relocated());
    assert_eq!(e.dirty_of(1), dirty1, "device 1's paused lines are kept");
}

/// Runs the migrator's rounds (all written back) and records at once, at
/// 100 ms, until another job comes: returns it.
fn rounds_and_records(e: &mut Engine<HostStore>) -> MigratorJob {
    loop {
        match e.migrator_next(true, 8, 100) {
            MigratorJob::Round { start, end } => {
                let mut entries = Vec::new();
                e.round_entries(start, end, false, |x| entries.push(x));
                e.round_done(start, end, &entries, Ok(()), &|_| None);
            }
            MigratorJob::Record => {
                let s = e.record_snapshot();
                e.record_done(s, true);
            }
            other => return other,
        }
    }
}

/// While a relocation fills its own segment no other segment is opened,
/// but that is not "no room": a failing device's write (which fails at once
/// when the log has no room) waits for the relocation instead of failing.
#[test]
fn a_failing_device_write_waits_for_a_relocation() {
    let mut e = engine(8);
    e.register(2, 1 << 20).unwrap();
    e.set_attached(2, true);
    let s = e.record_snapshot();
    e.record_done(s, true);
    // Segment 1: device 1's 255 lines; then device 2's until its writers
    // wait for room (the open segment full).
    for b in 0..255u64 {
        let WriteStep::Go(t) = e.begin_write(1, b * 8, 8, &|_| false, Direct::No) else { panic!() };
        e.end_write(t, true, false, 0, 3);
    }
    e.seal();
    flush_sealed(&mut e, false);
    let mut b = 0u64;
    while let WriteStep::Go(t) = e.begin_write(2, b * 8, 8, &|_| false, Direct::No) {
        e.end_write(t, true, false, 0, 3);
        flush_sealed(&mut e, false);
        b += 1;
    }
    assert!(e.urgent(), "device 2's writers wait for room");
    e.set_failing(1, -5, 0);
    // Device 1's are moved for the waiting writers.
    let MigratorJob::Relocate { id } = rounds_and_records(&mut e) else { panic!("no relocation") };
    let mut entries = Vec::new();
    e.round_entries(id, id, true, |x| entries.push(x));
    // The lines go to the relocation's own segment.
    for x in &entries[..20] {
        let Ok(Some((t, _))) = e.begin_relocate(x.line, &|_| false) else { panic!() };
        e.end_write(t, true, false, 100, 3);
    }
    match e.begin_write(1, 10_000 * 8, 8, &|_| false, Direct::No) {
        WriteStep::Wait(_) => {}
        other => panic!("device 1's write during the relocation got {other:?}"),
    }
    for x in &entries[20..] {
        let Ok(Some((t, _))) = e.begin_relocate(x.line, &|_| false) else { panic!() };
        e.end_write(t, true, false, 100, 3);
    }
    e.relocate_done();
    // The flusher writes it, the record frees the slots behind it; then
    // device 1 writes.
    flush_sealed(&mut e, false);
    rounds_and_records(&mut e);
    let got = e.begin_write(1, 10_000 * 8, 8, &|_| false, Direct::No);
    assert!(matches!(got, WriteStep::Go(_)), "device 1's write after the relocation: {got:?} (last_id {} lm {} rm {} lf {})", e.last_id(), e.last_migrated(), e.record_migrated(), e.last_flushed());
}

/// breakL: the parked lines (of a paused id) fill 28 of a 31-segment
/// cache: packed they leave writers no segment (the relocation in progress
/// and the slot writers leave free take the rest), so they are not moved
/// for waiting writers, who get no room (EIO after 30 s in the kernel).
/// Before, they were moved round the log for ever while the writers
/// waited, and as every move advanced the record, the writers' wait never
/// timed out.
#[test]
fn a_log_nearly_full_of_parked_lines_is_not_churned() {
    let mut e = parked_cache(7168);
    let dirty1 = e.dirty_of(1);
    let failed = |d: u8| (d == 1).then_some(-16);
    let mut m = Migrator { reloc: None, batch: 2, seal_idle: true };
    let mut relocated = Vec::new();
    let mut written = 0u64;
    for now in 1..=40_000u64 {
        if let WriteStep::Go(t) = e.begin_write(2, (written % 12288) * 8, 8, &|_| false, Direct::No) {
            e.end_write(t, true, false, now, 3);
            written += 1;
        }
        m.step(&mut e, now, &failed);
        relocated.push(e.nr_relocated());
    }
    let late = relocated[39_999] - relocated[19_999];
    assert_eq!(late, 0, "{late} parked lines moved in the last 20 s for writers that got no room ({written} lines written)");
    assert_eq!(e.dirty_of(1), dirty1, "device 1's paused lines are kept");
}

/// breakN: a paused id's lines fill about two thirds of the cache,
/// scattered through the log, and a healthy device writes now and then
/// (one line every 20 ms, far slower than write-back). Moving the parked
/// lines is needed only to give writers room: once per lap of the log at
/// most, about `parked / free` lines moved per line written. Before, every
/// healthy line written ahead of parked ones had all of them moved out of
/// its way ("they hold up its write-back"), and the moved lines then lay
/// behind the next line written: 20 to 60 lines were moved per line
/// written, for ever.
#[test]
fn parked_lines_are_not_moved_round_the_log_for_each_line_written() {
    let parked = 5000u64;
    let mut e = parked_cache(parked);
    let dirty1 = e.dirty_of(1);
    let lines = u64::from(e.geometry().nr_lines());
    let failed = |d: u8| (d == 1).then_some(-16);
    let mut m = Migrator { reloc: None, batch: 2, seal_idle: false };
    let (mut written, mut now) = (0u64, 0u64);
    let (mut last_go, mut worst) = (0u64, 0u64);
    // Three laps of the room the parked lines leave.
    while written < 3 * (lines - parked) {
        now += 1;
        if now % 20 == 0 {
            match e.begin_write(2, (written % 12288) * 8, 8, &|_| false, Direct::No) {
                WriteStep::Go(t) => {
                    e.end_write(t, true, false, now, 3);
                    written += 1;
                    worst = worst.max(now - last_go);
                    last_go = now;
                }
                WriteStep::Wait(_) => {}
                other => panic!("device 2's write got {other:?} after {written} writes"),
            }
        }
        let _ = e.seal_if_idle(now, 5000);
        m.step(&mut e, now, &failed);
        assert!(now - last_go < 20_000, "device 2 got no room for 20 s after {written} writes");
    }
    let per_line = e.nr_relocated() as f64 / written as f64;
    let bound = parked as f64 / (lines - parked) as f64 + 1.0;
    assert!(per_line <= bound, "{} parked lines moved for {written} lines written: {per_line:.1} per line (at most {bound:.1})", e.nr_relocated());
    assert_eq!(e.dirty_of(1), dirty1, "device 1's paused lines are kept");
    eprintln!("moved {} for {written} written ({per_line:.2} per line), worst wait {worst} ms", e.nr_relocated());
}

/// A failing device's write fails at once when the log has no room (its
/// writers must not wait 30 s for room its own parked lines may take).
/// With other devices' data written back behind its parked lines, there
/// is room to be had, and device 2 (healthy) writes three times the cache.
/// Both must get room, without parked lines going round the log for it.
/// With write-back going on past the parked lines (435581f) the
/// relocation's own segment was sealed after each job (its own segment
/// opening cleared the writers' urgency): every lap moved the parked lines
/// into segments as sparse as the ones they came from, 1.9 million moves
/// in 2000 s while device 2 got no room at all. Before that, the parked
/// lines were moved out of device 2's way all the time: 716,336 moves for
/// 23,715 lines written.
#[test]
fn a_failing_device_writes_while_the_log_is_full_of_clean_segments() {
    let mut e = parked_cache(3000);
    // Device 1 stays failing, retried every 30 s, and writes now and then.
    let failed = |d: u8| (d == 1).then_some(-16);
    let lines = u64::from(e.geometry().nr_lines());
    let mut m = Migrator { reloc: None, batch: 2, seal_idle: false };
    let (mut written, mut now, mut refused, mut tried) = (0u64, 0u64, 0u64, 0u64);
    while written < 3 * lines {
        now += 1;
        assert!(now < 2_000_000, "device 2 wrote only {written} lines in 2000 s ({} moved)", e.nr_relocated());
        if now % 4 == 0 {
            if let WriteStep::Go(t) = e.begin_write(2, (written % 12288) * 8, 8, &|_| false, Direct::No) {
                e.end_write(t, true, false, now, 3);
                written += 1;
            }
        }
        if now % 200 == 0 {
            tried += 1;
            match e.begin_write(1, (100_000 + tried) * 8, 8, &|_| false, Direct::No) {
                WriteStep::Go(t) => {
                    e.end_write(t, true, false, now, 3);
                }
                WriteStep::Fail => refused += 1,
                WriteStep::Wait(_) => {}
                other => panic!("device 1's write got {other:?}"),
            }
        }
        let _ = e.seal_if_idle(now, 5000);
        m.step(&mut e, now, &failed);
    }
    eprintln!("device 1: {refused} of {tried} writes refused; {} lines moved for {written} written", e.nr_relocated());
    assert!(refused * 20 <= tried, "device 1's writes refused {refused} times of {tried}, with room to be had behind its parked lines");
    assert!(e.nr_relocated() <= 2 * written, "{} parked lines moved for {written} lines written", e.nr_relocated());
}

/// breakO: a device's lines written back past parked ones are clean in RAM
/// but come back in a replay until the record passes them: `replay_free`
/// says so, and asking makes the migrator move the parked lines in front
/// so that the record passes (the kernel releases a removed device's disk
/// only then). Before, the claim was released on "no dirty line" alone.
#[test]
fn lines_written_back_past_parked_ones_are_replay_free_only_past_the_record() {
    let mut e = parked_cache(1000);
    for b in 0..300u64 {
        let WriteStep::Go(t) = e.begin_write(2, b * 8, 8, &|_| false, Direct::No) else { panic!() };
        e.end_write(t, true, false, 0, 3);
    }
    e.seal();
    flush_sealed(&mut e, false);
    let failed = |d: u8| (d == 1).then_some(-16);
    let mut m = Migrator { reloc: None, batch: 2, seal_idle: false };
    let mut now = 0;
    while e.dirty_of(2) > 0 {
        now += 1;
        assert!(now < 10_000, "device 2 never written back");
        m.step(&mut e, now, &failed);
    }
    assert_eq!(e.record_migrated(), 0, "the record stays behind the parked lines");
    assert!(!e.replay_free(2), "device 2's lines are still in the log past the record");
    while !e.replay_free(2) {
        now += 1;
        assert!(now < 20_000, "the record never passed device 2's lines (record at {})", e.record_migrated());
        m.step(&mut e, now, &failed);
    }
    assert!(e.nr_relocated() >= 1000, "the parked lines in front were moved");
    assert_eq!(e.dirty_of(1), 1000, "device 1's parked lines are kept");
}

/// `replayable` counts only lines a replay brings back as dirty: dirty ones
/// and those written back since the resume that the record has not passed;
/// once the record passes them the device is free. (The first version
/// counted any line past the record, clean read-cache lines included, and
/// routed a table asking for pass-through through the cache after a
/// resume: `powercut-readcache-passthrough` failed.)
#[test]
fn replayable_counts_written_back_lines_until_the_record() {
    let mut e = engine(8);
    e.register(2, 1 << 20).unwrap();
    e.set_attached(2, true);
    assert!(!e.replayable(1) && !e.replayable(2));
    write(&mut e, 0, 8, false);
    assert!(e.replayable(1), "dirty");
    e.seal();
    flush_sealed(&mut e, false);
    let (start, end) = loop {
        match e.migrator_next(true, 4, 0) {
            MigratorJob::Round { start, end } => break (start, end),
            MigratorJob::Record => {
                let s = e.record_snapshot();
                e.record_done(s, true);
            }
            other => panic!("{other:?}"),
        }
    };
    let mut entries = Vec::new();
    e.round_entries(start, end, false, |x| entries.push(x));
    e.round_done(start, end, &entries, Ok(()), &|_| None);
    assert_eq!(e.dirty_of(1), 0);
    assert!(e.replayable(1), "written back, the record behind");
    assert!(!e.replayable(2), "device 2 has nothing in the log");
    let s = e.record_snapshot();
    e.record_done(s, true);
    assert!(!e.replayable(1), "the record passed it");
    assert!(e.replay_free(1));
}
