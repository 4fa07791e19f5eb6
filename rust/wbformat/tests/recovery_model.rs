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
