//! The deterministic op stream of one device: op `i` (1-based) of device
//! `d` is a function of (seed, d, i) and the device size alone, so the
//! checker rebuilds exactly what the workload issued.

use crate::rng::Rng;

/// Sizes and offsets are in 512-byte sectors, device-relative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A plain O_DIRECT write.
    Write { start: u64, len: u32 },
    /// An O_DIRECT write with RWF_DSYNC through Linux AIO: a REQ_FUA write
    /// without a following flush.
    Fua { start: u64, len: u32 },
    /// fdatasync: an empty REQ_PREFLUSH.
    Flush,
    /// BLKDISCARD of a small range.
    Discard { start: u64, len: u32 },
}

impl Op {
    pub fn range(&self) -> Option<(u64, u32)> {
        match *self {
            Op::Write { start, len } | Op::Fua { start, len } | Op::Discard { start, len } => Some((start, len)),
            Op::Flush => None,
        }
    }

    pub fn writes_data(&self) -> bool {
        matches!(self, Op::Write { .. } | Op::Fua { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Write { .. } => "write",
            Op::Fua { .. } => "fua-write",
            Op::Flush => "flush",
            Op::Discard { .. } => "discard",
        }
    }
}

/// Everything the op stream depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanCfg {
    pub seed: u64,
    pub ops: u32,
    /// Size of each device in sectors (all devices of a run are alike).
    pub sectors: u64,
    pub mix: Mix,
}

/// Percentages of the op kinds (the rest are plain writes), of writes aimed
/// at the hot zone (the first eighth of the device, at least 512 KiB), and
/// of writes that rewrite all or part of one of the device's last 8 writes
/// (overwrites of data just flushed, or not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub flush: u32,
    pub fua: u32,
    pub discard: u32,
    pub hot: u32,
    pub again: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix { flush: 13, fua: 9, discard: 8, hot: 33, again: 0 }
    }
}

impl Mix {
    /// "flush:fua:discard:hot[:again]", e.g. "13:9:8:33" or "6:4:5:60:30".
    pub fn parse(s: &str) -> Result<Mix, String> {
        let v: Vec<u32> = s.split(':').map(|x| x.parse().map_err(|_| format!("bad mix '{s}'"))).collect::<Result<_, _>>()?;
        if !(4..=5).contains(&v.len()) || v[0] + v[1] + v[2] > 100 || v[3] > 100 || v.get(4).is_some_and(|&a| a > 100) {
            return Err(format!("bad mix '{s}': flush:fua:discard:hot[:again], percentages"));
        }
        Ok(Mix { flush: v[0], fua: v[1], discard: v[2], hot: v[3], again: v.get(4).copied().unwrap_or(0) })
    }

    pub fn to_arg(self) -> String {
        format!("{}:{}:{}:{}:{}", self.flush, self.fua, self.discard, self.hot, self.again)
    }
}

/// Write sizes (sectors, weight): 512 B .. 256 KiB, mostly small.
const SIZES: &[(u32, u32)] = &[
    (1, 12), (2, 5), (3, 3), (4, 5), (8, 22), (16, 12), (24, 4),
    (32, 10), (64, 10), (128, 8), (256, 5), (512, 4),
];
const DISCARD_SIZES: &[(u32, u32)] = &[(1, 2), (8, 5), (16, 3), (64, 2), (128, 1)];

#[derive(Clone, Copy)]
enum Kind {
    Write,
    Fua,
    Flush,
    Discard,
}

/// The first `cfg.ops` ops of device `dev`'s stream (index 0 is op 1). The
/// stream does not depend on `cfg.ops`: a longer plan extends a shorter one
/// (the workload may run past its planned ops, see work.rs).
pub fn plan(cfg: &PlanCfg, dev: u32) -> Vec<Op> {
    let mut rng = Rng::new(cfg.seed ^ ((dev as u64) << 40) ^ 0xD15C);
    let n = cfg.sectors;
    // A hot zone (an eighth of the device, at least 512 KiB when it fits)
    // takes a third of the writes: overwrites of flushed and unflushed data.
    let hot = (n / 8).max(1024).min(n);
    let m = cfg.mix;
    let kinds = [(Kind::Write, 100 - m.flush - m.fua - m.discard), (Kind::Fua, m.fua), (Kind::Flush, m.flush), (Kind::Discard, m.discard)];
    let mut ops = Vec::with_capacity(cfg.ops as usize);
    let mut recent: Vec<(u64, u32)> = Vec::new();
    for _ in 0..cfg.ops {
        let kind = rng.weighted(&kinds);
        let op = match kind {
            Kind::Flush => Op::Flush,
            Kind::Write | Kind::Fua | Kind::Discard => {
                let len = match kind {
                    Kind::Discard => rng.weighted(DISCARD_SIZES),
                    _ => rng.weighted(SIZES),
                }
                .min(n as u32)
                .max(1);
                let zone = if rng.below(100) < m.hot as u64 { hot } else { n };
                let span = zone.max(len as u64) - len as u64 + 1;
                let mut start = rng.below(span);
                if rng.below(2) == 0 && len % 8 == 0 {
                    start &= !7; // 4 KiB aligned
                }
                let mut len = len;
                if !matches!(kind, Kind::Discard) && !recent.is_empty() && rng.below(100) < m.again as u64 {
                    // All of a recent write, or a piece of it.
                    let (s0, l0) = recent[rng.below(recent.len() as u64) as usize];
                    if rng.below(2) == 0 || l0 == 1 {
                        (start, len) = (s0, l0);
                    } else {
                        let l = 1 + rng.below(l0 as u64 - 1) as u32;
                        (start, len) = (s0 + rng.below((l0 - l + 1) as u64), l);
                    }
                }
                if !matches!(kind, Kind::Discard) {
                    recent.push((start, len));
                    if recent.len() > 8 {
                        recent.remove(0);
                    }
                }
                match kind {
                    Kind::Write => Op::Write { start, len },
                    Kind::Fua => Op::Fua { start, len },
                    _ => Op::Discard { start, len },
                }
            }
        };
        ops.push(op);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_bounds_and_deterministic() {
        let cfg = PlanCfg { seed: 5, ops: 2000, sectors: 8192, mix: Mix::default() };
        let a = plan(&cfg, 1);
        assert_eq!(a, plan(&cfg, 1));
        assert_ne!(a, plan(&cfg, 2));
        assert_eq!(a.len(), 2000);
        let short = plan(&PlanCfg { ops: 700, ..cfg }, 1);
        assert_eq!(short[..], a[..700]);
        for op in &a {
            if let Some((s, l)) = op.range() {
                assert!(l >= 1 && s + l as u64 <= 8192, "{op:?}");
            }
        }
        for k in ["write", "fua-write", "flush", "discard"] {
            assert!(a.iter().any(|o| o.name() == k), "no {k}");
        }
        let m = Mix::parse("20:0:0:50").unwrap();
        assert_eq!(m.to_arg(), "20:0:0:50:0");
        assert_eq!(Mix::parse("6:4:5:60:30").unwrap().again, 30);
        let c = plan(&PlanCfg { mix: Mix::parse("10:5:5:0:50").unwrap(), ..cfg }, 1);
        let w: Vec<(u64, u32)> = c.iter().filter(|o| o.writes_data()).filter_map(|o| o.range()).collect();
        let repeats = w.windows(9).filter(|x| x[..8].iter().any(|r| r.0 <= x[8].0 && x[8].0 + x[8].1 as u64 <= r.0 + r.1 as u64)).count();
        assert!(repeats * 3 > w.len(), "{repeats} of {}", w.len());
        for (s, l) in w {
            assert!(l >= 1 && s + l as u64 <= 8192);
        }
        let b = plan(&PlanCfg { mix: m, ..cfg }, 1);
        assert!(b.iter().all(|o| matches!(o, Op::Write { .. } | Op::Flush)));
        assert!(Mix::parse("60:30:20:0").is_err());
    }
}
