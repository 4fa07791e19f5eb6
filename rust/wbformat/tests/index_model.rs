//! The metablock index against a simple model: a map from
//! (device, 512-byte sector) to the line owning its newest dirty data, plus
//! each dirty line's key and the time it became dirty.

use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use wbformat::index::*;

const LINES: u64 = 24;
const DEVS: u8 = 3;
const BLOCKS: u64 = 4;

#[derive(Clone, Debug)]
enum Op {
    Write {
        line: u64,
        dev: u8,
        block: u64,
        bits: u8,
    },
    Clean {
        line: u64,
        bits: u8,
    },
    Discard {
        dev: u8,
        block: u64,
        bits: u8,
    },
    Release {
        line: u64,
    },
    ReadRun {
        dev: u8,
        block: u64,
        first: u8,
        nr: u8,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    // Lines slightly out of range and device ids 0 / 128 exercise the errors.
    let line = 0..LINES + 2;
    let dev = prop_oneof![20 => 1..=DEVS, 1 => Just(0u8), 1 => Just(128u8)];
    prop_oneof![
        6 => (line.clone(), dev.clone(), 0..BLOCKS, any::<u8>())
            .prop_map(|(line, dev, block, bits)| Op::Write { line, dev, block, bits }),
        2 => (line.clone(), any::<u8>()).prop_map(|(line, bits)| Op::Clean { line, bits }),
        1 => (dev.clone(), 0..BLOCKS, any::<u8>()).prop_map(|(dev, block, bits)| Op::Discard { dev, block, bits }),
        1 => line.prop_map(|line| Op::Release { line }),
        2 => (dev, 0..BLOCKS, 0u8..10, 0u8..10).prop_map(|(dev, block, first, nr)| Op::ReadRun { dev, block, first, nr }),
    ]
}

#[derive(Default)]
struct Model {
    /// (dev, block, sector j) -> owning line.
    owner: HashMap<(u8, u64, u8), u64>,
    /// Dirty line -> (key, birth time).
    meta: HashMap<u64, (Key, u64)>,
    clock: u64,
}

impl Model {
    fn dirty(&self, line: u64) -> u8 {
        let mut bits = 0;
        for (&(_, _, j), &l) in &self.owner {
            if l == line {
                bits |= 1 << j;
            }
        }
        bits
    }

    fn head(&self, key: Key) -> Option<u64> {
        self.meta
            .iter()
            .filter(|(_, (k, _))| *k == key)
            .max_by_key(|(_, (_, t))| *t)
            .map(|(l, _)| *l)
    }

    /// Drops lines left without dirty sectors; returns them.
    fn gc(&mut self) -> BTreeSet<u64> {
        let dead: BTreeSet<u64> = self
            .meta
            .keys()
            .copied()
            .filter(|&l| self.dirty(l) == 0)
            .collect();
        for l in &dead {
            self.meta.remove(l);
        }
        dead
    }
}

fn check_all(ix: &Index<Vec<LineMeta>, Vec<Link>>, m: &Model) -> Result<(), TestCaseError> {
    for line in 0..LINES {
        prop_assert_eq!(
            ix.dirty(line),
            Ok(m.dirty(line)),
            "dirty bits of line {}",
            line
        );
        prop_assert_eq!(ix.key_of(line), Ok(m.meta.get(&line).map(|(k, _)| *k)));
    }
    for dev in 1..=DEVS {
        for block in 0..BLOCKS {
            let key = Key::new(dev, block);
            prop_assert_eq!(ix.lookup(key), m.head(key));
            let chain = ix.chain(key);
            prop_assert!(chain.len() <= MAX_CHAIN);
            // The key's lines in its bucket list are newest first.
            let mut want: Vec<(u64, u64)> = m
                .meta
                .iter()
                .filter(|(_, (k, _))| *k == key)
                .map(|(l, (_, t))| (*t, *l))
                .collect();
            want.sort_by(|a, b| b.cmp(a));
            let want: Vec<u64> = want.into_iter().map(|(_, l)| l).collect();
            prop_assert_eq!(
                chain.as_slice(),
                &want[..],
                "order of the lines of {:?}",
                key
            );
            for j in 0..8u8 {
                prop_assert_eq!(ix.owner(key, j), m.owner.get(&(dev, block, j)).copied());
            }
        }
    }
    prop_assert_eq!(ix.check_consistency(), Ok(m.meta.len() as u64));
    Ok(())
}

fn run(ops: Vec<Op>, buckets: usize) -> Result<(), TestCaseError> {
    let mut ix = Index::new(
        vec![LineMeta::EMPTY; LINES as usize],
        vec![Link::NONE; buckets],
    )
    .unwrap();
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Write {
                line,
                dev,
                block,
                bits,
            } => {
                let key = Key::new(dev, block);
                let r = ix.write(line, key, bits);
                if line >= LINES {
                    prop_assert_eq!(
                        r,
                        Err(IndexError::LineOutOfRange {
                            line,
                            nr_lines: LINES
                        })
                    );
                    continue;
                }
                if dev == 0 || dev > 127 {
                    prop_assert_eq!(r, Err(IndexError::InvalidDeviceId(dev)));
                    continue;
                }
                if bits == 0 {
                    prop_assert_eq!(r, Err(IndexError::NoBits));
                    continue;
                }
                let was_dirty = m.dirty(line) != 0;
                if was_dirty && m.head(key) != Some(line) {
                    prop_assert_eq!(r, Err(IndexError::LineInUse { line }));
                    continue;
                }
                let out = r.unwrap();
                if !was_dirty {
                    m.clock += 1;
                    m.meta.insert(line, (key, m.clock));
                }
                for j in 0..8u8 {
                    if bits & (1 << j) != 0 {
                        m.owner.insert((dev, block, j), line);
                    }
                }
                let dead = m.gc();
                prop_assert_eq!(out.device_id, dev);
                prop_assert_eq!(out.became_dirty, !was_dirty);
                prop_assert_eq!(
                    out.cleaned
                        .as_slice()
                        .iter()
                        .copied()
                        .collect::<BTreeSet<_>>(),
                    dead.clone()
                );
                prop_assert_eq!(out.dirty_delta(), i32::from(!was_dirty) - dead.len() as i32);
            }
            Op::Clean { line, bits } => {
                let r = ix.clean(line, bits);
                if line >= LINES {
                    prop_assert_eq!(
                        r,
                        Err(IndexError::LineOutOfRange {
                            line,
                            nr_lines: LINES
                        })
                    );
                    continue;
                }
                let before = m.dirty(line);
                m.owner
                    .retain(|&(_, _, j), l| !(*l == line && bits & (1 << j) != 0));
                let dead = m.gc();
                let out = r.unwrap();
                prop_assert_eq!(out.removed, before & bits);
                prop_assert_eq!(out.became_clean, dead.contains(&line));
                prop_assert_eq!(out.dirty_delta(), -(dead.len() as i32));
            }
            Op::Discard { dev, block, bits } => {
                let r = ix.discard(Key::new(dev, block), bits);
                if dev == 0 || dev > 127 {
                    prop_assert_eq!(r, Err(IndexError::InvalidDeviceId(dev)));
                    continue;
                }
                let before = m.owner.len();
                m.owner
                    .retain(|&(d, b, j), _| !(d == dev && b == block && bits & (1 << j) != 0));
                let removed_any = m.owner.len() != before;
                let dead = m.gc();
                let out = r.unwrap();
                prop_assert_eq!(out.removed_any, removed_any);
                prop_assert_eq!(
                    out.cleaned
                        .as_slice()
                        .iter()
                        .copied()
                        .collect::<BTreeSet<_>>(),
                    dead
                );
            }
            Op::Release { line } => {
                let r = ix.release(line);
                if line >= LINES {
                    prop_assert_eq!(
                        r,
                        Err(IndexError::LineOutOfRange {
                            line,
                            nr_lines: LINES
                        })
                    );
                } else if m.dirty(line) != 0 {
                    prop_assert_eq!(
                        r,
                        Err(IndexError::LineDirty {
                            line,
                            dirty: m.dirty(line)
                        })
                    );
                } else {
                    prop_assert_eq!(r, Ok(()));
                }
            }
            Op::ReadRun {
                dev,
                block,
                first,
                nr,
            } => {
                let key = Key::new(dev, block);
                let (owner, run) = ix.read_run(key, first, nr);
                if first >= 8 || nr == 0 {
                    prop_assert_eq!((owner, run), (None, 0));
                } else {
                    let own = |j: u8| m.owner.get(&(dev, block, j)).copied();
                    prop_assert_eq!(owner, own(first));
                    let max = nr.min(8 - first);
                    let mut want = 0;
                    while want < max && own(first + want) == own(first) {
                        want += 1;
                    }
                    prop_assert_eq!(run, want);
                }
            }
        }
        check_all(&ix, &m)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_model(ops in prop::collection::vec(arb_op(), 1..120)) {
        run(ops, 32)?;
    }

    /// Everything in one bucket: long bucket lists, heads in the middle.
    #[test]
    fn index_matches_model_one_bucket(ops in prop::collection::vec(arb_op(), 1..120)) {
        run(ops, 1)?;
    }

    #[test]
    fn index_matches_model_two_buckets(ops in prop::collection::vec(arb_op(), 1..120)) {
        run(ops, 2)?;
    }

    /// A bucket count that is no power of two (the index takes any).
    #[test]
    fn index_matches_model_three_buckets(ops in prop::collection::vec(arb_op(), 1..120)) {
        run(ops, 3)?;
    }

    /// Collision-heavy: long histories in one bucket, so lines of many keys
    /// interleave in the list and unlinking walks past other keys.
    #[test]
    fn index_matches_model_one_bucket_long(ops in prop::collection::vec(arb_op(), 200..400)) {
        run(ops, 1)?;
    }
}

/// Lines of one key stay newest first among lines of other keys in one
/// bucket; superseding, cleaning and discarding unlink from the middle, the
/// front and the end of the list.
#[test]
fn one_bucket_newest_first() {
    let n = 32;
    let mut ix = Index::new(vec![LineMeta::EMPTY; n], vec![Link::NONE; 1]).unwrap();
    let a = Key::new(1, 7);
    let b = Key::new(2, 7);
    let c = Key::new(1, 8);
    // a gets lines 0, 2, 4, 6 (one sector pair each), b and c interleave.
    for i in 0..4u64 {
        ix.write(2 * i, a, 0b11 << (2 * i)).unwrap();
        let bits = if i < 2 { 0x0f } else { 0xf0 };
        ix.write(2 * i + 1, if i % 2 == 0 { b } else { c }, bits)
            .unwrap();
    }
    assert_eq!(ix.chain(a).as_slice(), &[6, 4, 2, 0]);
    assert_eq!(ix.chain(b).as_slice(), &[5, 1]);
    assert_eq!(ix.chain(c).as_slice(), &[7, 3]);
    assert_eq!(ix.owner(a, 0), Some(0));
    assert_eq!(ix.owner(a, 7), Some(6));
    assert_eq!(ix.read_run(b, 0, 8), (Some(1), 4));
    assert_eq!(ix.read_run(b, 4, 8), (Some(5), 4));
    assert_eq!(ix.check_consistency(), Ok(8));
    // A new line of a supersedes the middle one (line 2) only.
    let o = ix.write(8, a, 0b1100).unwrap();
    assert_eq!(o.cleaned.as_slice(), &[2]);
    assert_eq!(ix.chain(a).as_slice(), &[8, 6, 4, 0]);
    assert_eq!(ix.lookup(a), Some(8));
    // Writing more sectors into the newest line takes them from the oldest.
    let o = ix.write(8, a, 0b11).unwrap();
    assert!(!o.became_dirty);
    assert_eq!(o.cleaned.as_slice(), &[0]);
    assert_eq!(ix.chain(a).as_slice(), &[8, 6, 4]);
    assert_eq!(ix.dirty(8), Ok(0b1111));
    // Writing into an older line of a is refused.
    assert_eq!(ix.write(6, a, 1), Err(IndexError::LineInUse { line: 6 }));
    // Cleaning the list's front (8), then a discard of the rest of a.
    assert!(ix.clean(8, 0xff).unwrap().became_clean);
    assert_eq!(ix.lookup(a), Some(6));
    let d = ix.discard(a, 0xff).unwrap();
    assert_eq!(d.cleaned.as_slice(), &[6, 4]);
    assert_eq!(ix.lookup(a), None);
    assert_eq!(ix.chain(b).as_slice(), &[5, 1]);
    assert_eq!(ix.chain(c).as_slice(), &[7, 3]);
    // The list's end (3, the oldest line) goes, the rest stays reachable.
    assert!(ix.clean(3, 0xff).unwrap().became_clean);
    assert_eq!(ix.chain(c).as_slice(), &[7]);
    assert_eq!(ix.chain(b).as_slice(), &[5, 1]);
    assert_eq!(ix.check_consistency(), Ok(3));
}

/// Replay order: writing a key's lines in log order leaves the newest at
/// the front, whatever the bucket count.
#[test]
fn replay_order_newest_first() {
    for buckets in [1usize, 2, 5, 16] {
        let mut ix = Index::new(vec![LineMeta::EMPTY; 64], vec![Link::NONE; buckets]).unwrap();
        for l in 0..64u64 {
            let key = Key::new(1 + (l % 3) as u8, l % 5);
            ix.write(l, key, 1 << (l / 15)).unwrap();
        }
        for dev in 1..=3u8 {
            for block in 0..5u64 {
                let chain = ix.chain(Key::new(dev, block));
                let v = chain.as_slice();
                assert!(
                    v.windows(2).all(|w| w[0] > w[1]),
                    "{buckets} buckets, {dev}/{block}: {v:?}"
                );
            }
        }
        ix.check_consistency().unwrap();
    }
}

#[test]
fn hash_spreads_keys() {
    // Aligned sectors of one device and equal blocks of many devices must
    // not pile up in few buckets (the 2013 `sector % size` hash did).
    let n = 1 << 12;
    let mut ix = Index::new(vec![LineMeta::EMPTY; n], vec![Link::NONE; buckets_for(n)]).unwrap();
    for i in 0..n as u64 {
        let key = if i % 2 == 0 {
            Key::new(1, u64::from(i) * 256)
        } else {
            Key::new((i % 127 + 1) as u8, u64::from(i / 127))
        };
        ix.write(i, key, 0xff).unwrap();
    }
    assert_eq!(ix.check_consistency(), Ok(n as u64));
    let (_, buckets) = ix.into_parts();
    // Count distinct buckets used: with a good hash and two keys per bucket
    // on average about 1-1/e^2 of them.
    let nb = buckets.len();
    assert_eq!(nb, n / 2);
    let used = buckets.iter().filter(|&&b| b.get() != NO_LINE).count();
    assert!(used > nb * 3 / 4, "only {used} of {nb} buckets used");
}
