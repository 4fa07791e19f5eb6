//! Recovery on random logs against a reference model that applies the writes
//! of the replayable segments in log order. Covers wrap-around (ids larger
//! than the number of slots, stale segments of earlier laps in the ring), a
//! crash at any point of the last segment write (any subset of its sectors
//! reached the disk, header included), and lines with nothing to replay.

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use wbformat::format::*;
use wbformat::index::Key;
use wbformat::recovery::LogEnd;

const DEVS: u8 = 3;
const BLOCKS: u64 = 6;

#[derive(Clone, Debug)]
struct Case {
    nr_segments: u64,
    segments: Vec<Vec<Metablock>>,
    /// How far before the last id the record's last_migrated is (the log
    /// must fit in the ring, so 1..=nr_segments).
    log_len: u64,
    /// Sectors of the last segment write that reached the disk (`None`: all).
    tear: Option<Vec<bool>>,
}

fn arb_line() -> impl Strategy<Value = Metablock> {
    prop_oneof![
        8 => (1..=DEVS, 0..BLOCKS, 1u8..=255).prop_map(|(d, b, bits)| mb(d, b, bits)),
        1 => (1..=DEVS, 0..BLOCKS, Just(0xffu8)).prop_map(|(d, b, bits)| mb(d, b, bits)),
        1 => Just(Metablock::EMPTY),
    ]
}

fn arb_case() -> impl Strategy<Value = Case> {
    (2u64..=6).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(
                prop::collection::vec(arb_line(), 0..=7),
                1..=(3 * n as usize),
            ),
            1..=n,
            prop::option::of(prop::collection::vec(any::<bool>(), 64)),
        )
            .prop_map(|(nr_segments, segments, log_len, tear)| Case {
                nr_segments,
                segments,
                log_len,
                tear,
            })
    })
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let n = case.nr_segments;
    let last = case.segments.len() as u64; // ids 1..=last
    let lm = last.saturating_sub(case.log_len); // record's last_migrated
    let mut img = Image::format(n, 3);
    img.update_record(|r| {
        r.last_migrated_segment_id = lm;
        for d in 1..=DEVS {
            r.register(d, 1 << 30).unwrap();
        }
    });
    // Write the segments in order; the last one may be torn.
    let mut last_intact = true;
    for (i, lines) in case.segments.iter().enumerate() {
        let id = i as u64 + 1;
        let bytes = segment_bytes(FORMAT_ID, id, lines);
        let start = img.segment_start(id);
        match (&case.tear, id == last) {
            (Some(keep), true) => {
                img.disk
                    .write_partial(start, &bytes, |s| keep[s % keep.len()]);
                last_intact = img.disk.read_vec(start, bytes.len()) == bytes;
            }
            _ => img.disk.write(start, &bytes),
        }
    }
    let end = if last_intact { last } else { last - 1 };

    // Reference model: apply the writes of segments lm+1..=end in order.
    let mut owner: BTreeMap<(u8, u64, u8), (u64, u32)> = BTreeMap::new();
    for id in lm + 1..=end {
        for (k, m) in case.segments[id as usize - 1].iter().enumerate() {
            for j in 0..8u8 {
                if m.dirty_bits & (1 << j) != 0 {
                    owner.insert((m.device_id, m.block(), j), (id, k as u32));
                }
            }
        }
    }

    let rec = recover(&img.disk).map_err(TestCaseError::fail)?;
    let s = rec.summary;
    prop_assert_eq!(s.last_migrated, lm);
    prop_assert_eq!(s.last_valid_id, end);
    prop_assert_eq!(s.next_id, end + 1);
    prop_assert_eq!(u64::from(s.replayed), end - lm);
    if end - lm == n {
        prop_assert_eq!(s.end, LogEnd::RingFull);
    } else {
        let ok = matches!(s.end, LogEnd::Invalid { id, .. } if id == end + 1);
        prop_assert!(ok, "end {:?}", s.end);
    }

    let g = img.geometry();
    let id_of_slot = |slot: u32| {
        (lm + 1..=end)
            .find(|&id| g.slot_of_id(id).unwrap() == slot)
            .unwrap()
    };
    for dev in 1..=DEVS {
        for block in 0..BLOCKS {
            for j in 0..8u8 {
                let got = rec.index.owner(Key::new(dev, block), j).map(|line| {
                    let (slot, k) = g.line_location(line).unwrap();
                    // The data the kernel would serve is the newest write.
                    let data = img
                        .disk
                        .read_vec(g.line_sector(slot, k).unwrap() + u64::from(j), SECTOR_SIZE);
                    let (tid, tk, tj) = parse_tag(&data);
                    assert_eq!((tid, tk, tj), (id_of_slot(slot), k, u32::from(j)));
                    (id_of_slot(slot), k)
                });
                prop_assert_eq!(
                    got,
                    owner.get(&(dev, block, j)).copied(),
                    "dev {} block {} sector {}",
                    dev,
                    block,
                    j
                );
            }
        }
    }
    // No stale dirty line anywhere: the dirty lines are exactly the owners.
    let owning: BTreeSet<(u64, u32)> = owner.values().copied().collect();
    let mut dirty = BTreeSet::new();
    for line in 0..g.nr_lines() {
        if rec.index.dirty(line).unwrap() != 0 {
            let (slot, k) = g.line_location(line).unwrap();
            dirty.insert((id_of_slot(slot), k));
        }
    }
    prop_assert_eq!(&dirty, &owning);
    prop_assert_eq!(rec.index.check_consistency(), Ok(owning.len() as u64));
    for d in 1..=DEVS {
        let want = owner
            .iter()
            .filter(|((dev, _, _), _)| *dev == d)
            .map(|(_, v)| *v)
            .collect::<BTreeSet<_>>()
            .len();
        prop_assert_eq!(rec.counts.get(d), want as u64);
    }
    prop_assert_eq!(
        rec.counts.owners().len() as usize,
        (1..=DEVS).filter(|&d| rec.counts.get(d) > 0).count()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn recovery_matches_model(case in arb_case()) {
        run(case)?;
    }
}

// ---------------------------------------------------------------------------
// The log horizon: resume's bounded walk past the end of the log gives what
// the full scan of every slot gives, on logs written as a writer keeping the
// horizon writes them, with a volatile disk cache persisting any subset of
// the writes that were not durable, and at most one durable segment corrupt.

#[derive(Clone, Debug)]
struct HorizonCase {
    nr_segments: u64,
    horizon: u32,
    /// Per segment written: a flush completed before it was written.
    flush_before: Vec<bool>,
    /// Per segment: what reached the disk if it was not durable (0 all, 1
    /// the header only, 2 nothing).
    persisted: Vec<u8>,
    /// Where the record is, as a fraction of the durable segments.
    record_at: u8,
    /// Corrupt one durable segment of the log (picked by this number).
    corrupt: Option<u8>,
}

fn arb_horizon_case() -> impl Strategy<Value = HorizonCase> {
    (8u64..=24, 1u32..=5).prop_flat_map(|(n, h)| {
        let w = 1..(2 * n as usize);
        (
            Just(n),
            Just(h),
            prop::collection::vec(prop::bool::weighted(0.15), w.clone()),
            prop::collection::vec(0u8..3, 2 * n as usize),
            any::<u8>(),
            prop::option::of(any::<u8>()),
        )
            .prop_map(|(nr_segments, horizon, flush_before, persisted, record_at, corrupt)| HorizonCase {
                nr_segments,
                horizon,
                flush_before,
                persisted,
                record_at,
                corrupt,
            })
    })
}

fn run_horizon(case: HorizonCase) -> Result<(), TestCaseError> {
    let n = case.nr_segments;
    let h = u64::from(case.horizon);
    let w = case.flush_before.len() as u64;
    // The writer: `known` is what it knows durable, `durable` what is.
    let (mut known, mut durable) = (0u64, 0u64);
    let mut header_d = vec![0u64; w as usize + 1];
    for m in 1..=w {
        if case.flush_before[m as usize - 1] {
            known = m - 1;
            durable = m - 1;
        }
        if m > known + h {
            // Written with REQ_PREFLUSH: everything before it is durable.
            known = m - 1;
            durable = m - 1;
        }
        header_d[m as usize] = known;
    }
    // The record: somewhere up to the durable point, and late enough that
    // no slot of the log was reused (`may_write`).
    let lm = (durable * u64::from(case.record_at) / 255).max(w.saturating_sub(n));
    prop_assume!(lm <= durable);
    let mut img = Image::format_with_horizon(n, case.horizon);
    img.update_record(|r| {
        r.last_migrated_segment_id = lm;
        r.register(1, 1 << 30).unwrap();
    });
    for m in 1..=w {
        let bytes = common::segment_bytes_durable(FORMAT_ID, m, header_d[m as usize], &[mb(1, m % BLOCKS, 0xff)]);
        let start = img.segment_start(m);
        match if m <= durable { 0 } else { case.persisted[m as usize - 1] } {
            0 => img.disk.write(start, &bytes),
            1 => img.disk.write(start, &bytes[..BLOCK_SIZE]),
            _ => {}
        }
    }
    if let Some(c) = case.corrupt {
        if durable > lm {
            let id = lm + 1 + u64::from(c) % (durable - lm);
            let s = img.segment_start(id) + 8;
            let mut b = img.disk.read_vec(s, SECTOR_SIZE);
            b[7] ^= 0x40;
            img.disk.write(s, &b);
        }
    }
    let mut full = Image { disk: img.disk.clone(), sb: img.sb, record: img.record };
    let bounded = img.resume(None, false);
    let all = full.resume(Some(0), false);
    let headers = |i: &Image| -> Vec<Vec<u8>> {
        (0..n).map(|s| i.disk.read_vec(i.geometry().segment_start_sector(s as u32).unwrap(), BLOCK_SIZE)).collect()
    };
    match (bounded, all) {
        (Ok(b), Ok(a)) => {
            prop_assert!(!b.full_scan && a.full_scan);
            prop_assert_eq!((b.last_valid, b.invalidated, b.torn_end), (a.last_valid, a.invalidated, a.torn_end));
            prop_assert!(headers(&img) == headers(&full), "the bounded walk left other headers on disk");
            let bound = u64::from(b.replayed) + 1 + h * (u64::from(b.invalidated) + 1);
            prop_assert!(b.headers_read <= bound, "{} headers read, bound {}", b.headers_read, bound);
        }
        (
            Err(wbformat::recovery::ResumeError::LostDurable { end_id: e1, proof_id: p1, .. }),
            Err(wbformat::recovery::ResumeError::LostDurable { end_id: e2, proof_id: p2, .. }),
        ) => {
            prop_assert_eq!((e1, p1), (e2, p2));
        }
        (b, a) => prop_assert!(false, "bounded {:?}, full scan {:?}", b, a),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn bounded_walk_past_the_end_matches_the_full_scan(case in arb_horizon_case()) {
        run_horizon(case)?;
    }
}
