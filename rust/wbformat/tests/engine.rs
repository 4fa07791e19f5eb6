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
