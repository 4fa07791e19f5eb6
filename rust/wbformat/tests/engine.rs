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
    let WriteStep::Go(t) = e.begin_write(1, sector, n, &|_| false) else { panic!("write did not go") };
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
        let WriteStep::Go(t) = e.begin_write(1, b * 8, 8, &|_| false) else { panic!() };
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
    let step = |e: &mut Engine<HostStore>, dead: bool, now: u64| {
        flush_sealed(e, false);
        match e.migrator_next(true, 2, now) {
            MigratorJob::Round { start, end } => {
                let mut entries = Vec::new();
                e.round_entries(start, end, false, |x| entries.push(x));
                e.round_done(start, end, &entries, Ok(()), &|d| (dead && d == 1).then_some(-5));
            }
            MigratorJob::Relocate { id } => {
                let mut entries = Vec::new();
                e.round_entries(id, id, true, |x| entries.push(x));
                for x in &entries {
                    match e.begin_relocate(x.line, &|_| false) {
                        Ok(Some((t, _))) => {
                            e.end_write(t, true, false, now, 3);
                        }
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
                e.relocate_done();
            }
            MigratorJob::Record => {
                let s = e.record_snapshot();
                e.record_done(s, true);
            }
            MigratorJob::Idle { wake_flusher, .. } => {
                if !wake_flusher {
                    e.seal();
                }
            }
            MigratorJob::Exit => {}
        }
    };
    while written < 5 * lines {
        now += 10;
        match e.begin_write(2, (b % 4096) * 8, 8, &|_| false) {
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
    while let WriteStep::Go(t) = e.begin_write(1, (10_000 + accepted) * 8, 8, &|_| false) {
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
        match e.begin_write(1, b * 8, 8, &|_| false) {
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
        assert!(matches!(e.begin_write(2, 0, 8, &|_| false), WriteStep::Wait(_)), "room appeared in a full cache");
        relocated.push(e.nr_relocated());
    }
    assert_eq!(e.dirty_of(1), dirty, "nothing dropped");
    let late = relocated[1999] - relocated[1000];
    assert_eq!(late, 0, "the migrator keeps moving full segments of parked lines ({late} lines in the last 1000 steps)");
}
