//! Sequences of index operations on a small index, checked against a model
//! of per-sector ownership and the index's own consistency check.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use wbformat::index::*;

#[derive(Arbitrary, Debug)]
enum Op {
    Write {
        line: u8,
        dev: u8,
        block: u8,
        bits: u8,
    },
    Clean {
        line: u8,
        bits: u8,
    },
    Discard {
        dev: u8,
        block: u8,
        bits: u8,
    },
    Release {
        line: u8,
    },
    ReadRun {
        dev: u8,
        block: u8,
        first: u8,
        nr: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    lines: u8,
    bucket_bits: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let nlines = usize::from(input.lines % 40) + 1;
    let nb = usize::from(input.bucket_bits % 64) + 1;
    let mut ix = Index::new(vec![LineMeta::EMPTY; nlines], vec![Link::NONE; nb]).unwrap();
    // (dev, block, sector) -> line
    let mut owner: HashMap<(u8, u64, u8), u64> = HashMap::new();
    for op in input.ops.iter().take(500) {
        match *op {
            Op::Write {
                line,
                dev,
                block,
                bits,
            } => {
                let key = Key::new(dev % 5, u64::from(block % 6));
                if let Ok(o) = ix.write(u64::from(line), key, bits) {
                    for j in 0..8u8 {
                        if bits & (1 << j) != 0 {
                            owner.insert((key.device_id, key.block, j), u64::from(line));
                        }
                    }
                    for c in o.cleaned.as_slice() {
                        assert!(!owner.values().any(|l| l == c));
                    }
                }
            }
            Op::Clean { line, bits } => {
                if ix.clean(u64::from(line), bits).is_ok() {
                    owner.retain(|&(_, _, j), l| !(*l == u64::from(line) && bits & (1 << j) != 0));
                }
            }
            Op::Discard { dev, block, bits } => {
                let key = Key::new(dev % 5, u64::from(block % 6));
                if ix.discard(key, bits).is_ok() {
                    owner.retain(|&(d, b, j), _| {
                        !(d == key.device_id && b == key.block && bits & (1 << j) != 0)
                    });
                }
            }
            Op::Release { line } => {
                let r = ix.release(u64::from(line));
                if r.is_ok() {
                    assert!(!owner.values().any(|&l| l == u64::from(line)));
                }
            }
            Op::ReadRun {
                dev,
                block,
                first,
                nr,
            } => {
                let key = Key::new(dev % 5, u64::from(block % 6));
                let (o, run) = ix.read_run(key, first, nr);
                assert!(run <= nr);
                if first < 8 {
                    assert!(first + run <= 8);
                } else {
                    assert_eq!((o, run), (None, 0));
                }
                if run > 0 {
                    assert_eq!(o, owner.get(&(key.device_id, key.block, first)).copied());
                }
            }
        }
        for (&(d, b, j), &l) in &owner {
            assert_eq!(ix.owner(Key::new(d, b), j), Some(l));
        }
        let dirty_lines: std::collections::HashSet<u64> = owner.values().copied().collect();
        assert_eq!(ix.check_consistency(), Ok(dirty_lines.len() as u64));
    }
});
