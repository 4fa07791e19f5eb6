//! The metablock index against a simple model: a map from
//! (device, 512-byte sector) to the line owning its newest dirty data, plus
//! each dirty line's key and the time it became dirty.

use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use wbformat::index::*;

const LINES: u32 = 24;
const DEVS: u8 = 3;
const BLOCKS: u64 = 4;

#[derive(Clone, Debug)]
enum Op {
    Write {
        line: u32,
        dev: u8,
        block: u64,
        bits: u8,
    },
    Clean {
        line: u32,
        bits: u8,
    },
    Discard {
        dev: u8,
        block: u64,
        bits: u8,
    },
    Release {
        line: u32,
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
    owner: HashMap<(u8, u64, u8), u32>,
    /// Dirty line -> (key, birth time).
    meta: HashMap<u32, (Key, u64)>,
    clock: u64,
}

impl Model {
    fn dirty(&self, line: u32) -> u8 {
        let mut bits = 0;
        for (&(_, _, j), &l) in &self.owner {
            if l == line {
                bits |= 1 << j;
            }
        }
        bits
    }

    fn head(&self, key: Key) -> Option<u32> {
        self.meta
            .iter()
            .filter(|(_, (k, _))| *k == key)
            .max_by_key(|(_, (_, t))| *t)
            .map(|(l, _)| *l)
    }

    /// Drops lines left without dirty sectors; returns them.
    fn gc(&mut self) -> BTreeSet<u32> {
        let dead: BTreeSet<u32> = self
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

fn check_all(ix: &Index<Vec<LineMeta>, Vec<u32>>, m: &Model) -> Result<(), TestCaseError> {
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
            for j in 0..8u8 {
                prop_assert_eq!(ix.owner(key, j), m.owner.get(&(dev, block, j)).copied());
            }
        }
    }
    prop_assert_eq!(ix.check_consistency(), Ok(m.meta.len() as u32));
    Ok(())
}

fn run(ops: Vec<Op>, buckets: usize) -> Result<(), TestCaseError> {
    let mut ix = Index::new(vec![LineMeta::EMPTY; LINES as usize], vec![0u32; buckets]).unwrap();
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
}

#[test]
fn hash_spreads_keys() {
    // Aligned sectors of one device and equal blocks of many devices must
    // not pile up in few buckets (the 2013 `sector % size` hash did).
    let n = 1 << 12;
    let mut ix = Index::new(vec![LineMeta::EMPTY; n], vec![0u32; buckets_for(n)]).unwrap();
    for i in 0..n as u32 {
        let key = if i % 2 == 0 {
            Key::new(1, u64::from(i) * 256)
        } else {
            Key::new((i % 127 + 1) as u8, u64::from(i / 127))
        };
        ix.write(i, key, 0xff).unwrap();
    }
    assert_eq!(ix.check_consistency(), Ok(n as u32));
    let (_, buckets) = ix.into_parts();
    // Count distinct bucket heads used: with a good hash about 1-1/e of them.
    let used = buckets.iter().filter(|&&b| b != NO_LINE).count();
    assert!(used > n / 2, "only {used} of {n} buckets used");
}
