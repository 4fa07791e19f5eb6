//! The deterministic op stream.

use crate::stamp::splitmix64;

/// Default I/O sizes in bytes (those that do not fit the region are
/// dropped when --sizes is not given).
pub const DEFAULT_SIZES: [u64; 4] = [512, 4096, 65536, 1 << 20];
/// Largest single I/O.
pub const MAX_IO_BYTES: u64 = 1 << 30;
/// Largest number of ops in a stream (the op table costs 12 bytes per op).
pub const MAX_OPS: u64 = 100_000_000;

const STREAM_SALT: u64 = 0x5742_5054_5354_524D; // "WBPTSTRM"

/// A range of 512-byte sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
    pub fn start_bytes(&self) -> u64 {
        self.start * 512
    }
    pub fn end_bytes(&self) -> u64 {
        self.end() * 512
    }
}

/// splitmix64 generator (the op-stream PRNG).
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        // splitmix64() adds the golden-ratio increment before mixing.
        let z = self.0;
        self.0 = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(z)
    }
    /// Uniform-ish value in 0..n (n > 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Everything that defines an op stream.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub region: Region,
    pub ops: u64,
    pub seed: u32,
    /// Explicit I/O sizes in bytes; `None` = DEFAULT_SIZES that fit.
    pub sizes: Option<Vec<u64>>,
    pub align: u64,
    pub sequential: bool,
    pub gen_base: u64,
}

/// A generated op stream: op i (1-based) writes `len(i)` sectors from
/// `start(i)` with generation `gen_base + i`.
#[derive(Clone, Debug)]
pub struct Stream {
    pub region: Region,
    pub seed: u32,
    pub gen_base: u64,
    pub sizes: Vec<u64>,
    starts: Vec<u64>,
    lens: Vec<u32>,
}

impl StreamSpec {
    pub fn build(&self) -> Result<Stream, String> {
        let r = self.region;
        if r.len == 0
            || r.start
                .checked_add(r.len)
                .is_none_or(|e| e > u64::MAX / 512)
        {
            return Err("invalid region".to_string());
        }
        if self.ops > MAX_OPS {
            return Err(format!(
                "--ops {} is more than the limit of {MAX_OPS}",
                self.ops
            ));
        }
        if self.gen_base.checked_add(self.ops).is_none() {
            return Err("--gen-base + --ops overflows a 64-bit generation".to_string());
        }
        let align = self.align;
        if align == 0 || !align.is_multiple_of(512) {
            return Err(format!(
                "--align {align} must be a non-zero multiple of 512"
            ));
        }
        let end_b = r.end_bytes();
        let astart = r
            .start_bytes()
            .div_ceil(align)
            .checked_mul(align)
            .ok_or("region start overflows")?;
        let fits = |s: u64| astart.checked_add(s).is_some_and(|e| e <= end_b);
        let sizes: Vec<u64> = match &self.sizes {
            Some(v) => {
                if v.is_empty() {
                    return Err("--sizes is empty".to_string());
                }
                for &s in v {
                    if s == 0 || !s.is_multiple_of(512) || s > MAX_IO_BYTES {
                        return Err(format!(
                            "I/O size {s} must be a non-zero multiple of 512 of at most 1 GiB"
                        ));
                    }
                    if !fits(s) {
                        return Err(format!(
                            "I/O size {s} bytes does not fit in the region ({} bytes from the first {align}-byte aligned offset)",
                            end_b.saturating_sub(astart)
                        ));
                    }
                }
                v.clone()
            }
            None => {
                let v: Vec<u64> = DEFAULT_SIZES.iter().copied().filter(|&s| fits(s)).collect();
                if v.is_empty() {
                    return Err(format!(
                        "region is too small for any I/O aligned to {align} bytes"
                    ));
                }
                v
            }
        };
        let n = self.ops as usize;
        let mut starts: Vec<u64> = Vec::new();
        let mut lens: Vec<u32> = Vec::new();
        starts
            .try_reserve_exact(n)
            .and_then(|_| lens.try_reserve_exact(n))
            .map_err(|_| format!("out of memory for a table of {n} ops"))?;
        let mut rng = SplitMix64::new(u64::from(self.seed) ^ STREAM_SALT);
        let mut pos = astart;
        for _ in 0..n {
            let size = sizes[rng.below(sizes.len() as u64) as usize];
            let pick = rng.next_u64();
            let off = if self.sequential {
                if pos.checked_add(size).is_none_or(|e| e > end_b) {
                    pos = astart;
                }
                let o = pos;
                pos = (o + size).div_ceil(align).saturating_mul(align);
                o
            } else {
                let count = (end_b - size - astart) / align + 1;
                astart + ((u128::from(pick) * u128::from(count)) >> 64) as u64 * align
            };
            starts.push(off / 512);
            lens.push((size / 512) as u32);
        }
        Ok(Stream {
            region: r,
            seed: self.seed,
            gen_base: self.gen_base,
            sizes,
            starts,
            lens,
        })
    }
}

impl Stream {
    /// Number of ops.
    pub fn n(&self) -> u64 {
        self.starts.len() as u64
    }

    /// (first sector, sector count) of op `i`, 1 <= i <= n.
    pub fn op(&self, i: u64) -> (u64, u64) {
        let k = (i - 1) as usize;
        (self.starts[k], u64::from(self.lens[k]))
    }

    /// Generation written by op `i`.
    pub fn gen(&self, i: u64) -> u64 {
        self.gen_base + i
    }

    /// The op that writes generation `g`, if any.
    pub fn op_of_gen(&self, g: u64) -> Option<u64> {
        let i = g.checked_sub(self.gen_base)?;
        (i >= 1 && i <= self.n()).then_some(i)
    }

    /// Does op `i` write sector `s`?
    pub fn covers(&self, i: u64, s: u64) -> bool {
        let (st, ln) = self.op(i);
        s >= st && s < st + ln
    }

    /// Ops in `lo..=hi` that write sector `s`, in order.
    pub fn ops_covering(&self, s: u64, lo: u64, hi: u64) -> Vec<u64> {
        (lo.max(1)..=hi.min(self.n()))
            .filter(|&i| self.covers(i, s))
            .collect()
    }

    /// Largest I/O of the stream in bytes.
    pub fn max_io_bytes(&self) -> u64 {
        self.lens
            .iter()
            .map(|&l| u64::from(l) * 512)
            .max()
            .unwrap_or(512)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(start: u64, len: u64, ops: u64) -> StreamSpec {
        StreamSpec {
            region: Region { start, len },
            ops,
            seed: 1,
            sizes: None,
            align: 512,
            sequential: false,
            gen_base: 0,
        }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = spec(100, 10_000, 500).build().unwrap();
        let b = spec(100, 10_000, 500).build().unwrap();
        assert_eq!(a.starts, b.starts);
        assert_eq!(a.lens, b.lens);
        let mut s = spec(100, 10_000, 500);
        s.seed = 2;
        let c = s.build().unwrap();
        assert_ne!(a.starts, c.starts);
        // A prefix of a longer stream is the shorter stream.
        let d = spec(100, 10_000, 200).build().unwrap();
        assert_eq!(&a.starts[..200], &d.starts[..]);
    }

    #[test]
    fn ops_inside_region_and_aligned() {
        for seed in 0..20u32 {
            for &(start, len, align) in &[
                (0u64, 5000u64, 512u64),
                (3, 4099, 4096),
                (1000, 300_000, 65536),
            ] {
                let mut s = spec(start, len, 300);
                s.seed = seed;
                s.align = align;
                s.sizes = Some(vec![512, 1536, 4096, 12288, 65536])
                    .map(|v| v.into_iter().filter(|&x| x <= (len * 512) - 4096).collect());
                let st = s.build().unwrap();
                for i in 1..=st.n() {
                    let (a, l) = st.op(i);
                    assert!(a >= start && a + l <= start + len, "op {i} outside");
                    assert_eq!(a * 512 % align, 0, "op {i} misaligned");
                    assert!(st.sizes.contains(&(l * 512)));
                }
            }
        }
    }

    #[test]
    fn all_sizes_used_and_region_covered() {
        let st = spec(0, 4096, 2000).build().unwrap();
        for sz in [512u64, 4096, 65536, 1 << 20] {
            assert!(
                (1..=st.n()).any(|i| st.op(i).1 * 512 == sz),
                "size {sz} unused"
            );
        }
        // the first and the last possible offsets both occur
        let st = spec(100, 16, 2000).build().unwrap();
        let mut first_hit = false;
        let mut last_hit = false;
        for i in 1..=st.n() {
            let (a, l) = st.op(i);
            first_hit |= a == 100;
            last_hit |= a + l == 116;
        }
        assert!(first_hit && last_hit);
    }

    #[test]
    fn sequential_back_to_back_and_wraps() {
        let mut s = spec(10, 1000, 100);
        s.sequential = true;
        s.sizes = Some(vec![4096, 65536]);
        let st = s.build().unwrap();
        let mut expect = 10u64;
        let mut wrapped = false;
        for i in 1..=st.n() {
            let (a, l) = st.op(i);
            if expect + l > 1010 {
                expect = 10;
                wrapped = true;
            }
            assert_eq!(a, expect);
            expect = a + l;
        }
        assert!(wrapped);
    }

    #[test]
    fn default_sizes_filtered_explicit_rejected() {
        let st = spec(0, 16, 10).build().unwrap();
        assert_eq!(st.sizes, vec![512, 4096]);
        let mut s = spec(0, 16, 10);
        s.sizes = Some(vec![512, 65536]);
        assert!(s.build().is_err());
        let mut s = spec(1, 8, 10);
        s.align = 4096;
        // only sector 8 (byte 4096) is 4 KiB aligned in sectors 1..9
        let st = s.build().unwrap();
        assert_eq!(st.sizes, vec![512]);
        assert!((1..=10).all(|i| st.op(i) == (8, 1)));
        s.sizes = Some(vec![4096]);
        assert!(s.build().is_err());
    }

    #[test]
    fn gens() {
        let mut s = spec(0, 100, 10);
        s.gen_base = 1000;
        let st = s.build().unwrap();
        assert_eq!(st.gen(1), 1001);
        assert_eq!(st.op_of_gen(1001), Some(1));
        assert_eq!(st.op_of_gen(1010), Some(10));
        assert_eq!(st.op_of_gen(1011), None);
        assert_eq!(st.op_of_gen(1000), None);
        assert_eq!(st.op_of_gen(5), None);
    }
}
