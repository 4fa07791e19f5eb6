//! The contract, per device and sector, at one crash point.
//!
//! Ops of one device are issued one at a time (op `i + 1` only after op `i`
//! completed). What the workload knows at a crash point comes from the
//! marks logged before it:
//!
//! * `issued`: the highest op that may have been submitted;
//! * `flushed`: every op `<= flushed` completed before a flush that then
//!   completed, so all of them are durable;
//! * `fua[i]`: FUA write `i` completed, so it is durable itself.
//!
//! A sector must then read the value of its last durable write, or of any
//! write to it issued after that one; with no durable write, its initial
//! value (zeroes) or any issued write. A discard adds zeroes to what the
//! sector may read and keeps what it could read before (its pre-discard
//! content). Anything else is a violation: older data, another device's or
//! sector's data, a future op, a damaged stamp, garbage.

use crate::plan::Op;
use crate::stamp::{Content, Stamp};

/// What a device's workload has promised at one crash point.
#[derive(Clone, Debug, Default)]
pub struct DevState {
    pub issued: u32,
    pub flushed: u32,
    /// Indexed by op number; true once a FUA write's completion was marked.
    pub fua: Vec<bool>,
    pub fua_count: u32,
}

impl DevState {
    pub fn new(ops: u32) -> Self {
        DevState { issued: 0, flushed: 0, fua: vec![false; ops as usize + 1], fua_count: 0 }
    }

    pub fn durable(&self, op: u32) -> bool {
        op <= self.flushed || self.fua.get(op as usize).copied().unwrap_or(false)
    }

    /// Anything durable promised yet?
    pub fn promised(&self) -> bool {
        self.flushed > 0 || self.fua_count > 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscardPolicy {
    /// Zeroes or the pre-discard content (what the sector could read just
    /// before the discard).
    Strict,
    /// Zeroes or any earlier value of the same sector of the same device.
    Lax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Older data than allowed (including zeroes where data was durable).
    Stale,
    /// Data of an op not issued before the crash point.
    Future,
    /// This device's data from another sector.
    Misplaced,
    /// Another device's data.
    Foreign,
    /// A stamp of another run (seed).
    OtherRun,
    /// A stamp of this device and sector from an op that never wrote it.
    Unknown,
    /// A stamp with a wrong CRC or filler (torn inside a sector, corrupted).
    Damaged,
    /// Neither zeroes nor a stamp.
    Garbage,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Stale => "stale",
            Kind::Future => "future",
            Kind::Misplaced => "misplaced",
            Kind::Foreign => "foreign",
            Kind::OtherRun => "other-run",
            Kind::Unknown => "unknown-op",
            Kind::Damaged => "damaged",
            Kind::Garbage => "garbage",
        }
    }
}

/// What a sector may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The last durable write to it (None: none, the base is the initial
    /// content).
    pub base: Option<u32>,
    /// Ops whose data it may hold, ascending.
    pub ops: Vec<u32>,
    pub zero_ok: bool,
    /// A discard of it was issued (the violation may be about discard
    /// semantics rather than durability).
    pub discarded: bool,
}

impl Allowed {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.base {
            Some(b) => parts.push(format!("durable op {b}")),
            None => parts.push("no durable write".to_string()),
        }
        let later: Vec<String> = self.ops.iter().filter(|&&o| Some(o) != self.base).map(|o| o.to_string()).collect();
        let mut s = String::from("one of [");
        let mut items = Vec::new();
        if let Some(b) = self.base {
            if self.ops.contains(&b) {
                items.push(format!("op {b}"));
            }
        }
        if !later.is_empty() {
            items.push(format!("later op {}", later.join("/")));
        }
        if self.zero_ok {
            items.push("zeroes".to_string());
        }
        s.push_str(&items.join(", "));
        s.push(']');
        parts.push(s);
        if self.discarded {
            parts.push("(discarded)".to_string());
        }
        parts.join(" ")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub sector: u64,
    pub kind: Kind,
    pub found: Content,
    pub allowed: Allowed,
}

pub struct DevModel {
    pub dev: u32,
    pub seed: u64,
    pub ops: Vec<Op>,
    /// Per sector, the ops (1-based) that write or discard it, ascending.
    hist: Vec<Vec<u32>>,
    pub policy: DiscardPolicy,
}

impl DevModel {
    pub fn new(dev: u32, seed: u64, sectors: u64, ops: Vec<Op>, policy: DiscardPolicy) -> Self {
        let mut hist = vec![Vec::new(); sectors as usize];
        for (i, op) in ops.iter().enumerate() {
            if let Some((s, l)) = op.range() {
                for x in s..s + l as u64 {
                    hist[x as usize].push(i as u32 + 1);
                }
            }
        }
        DevModel { dev, seed, ops, hist, policy }
    }

    pub fn sectors(&self) -> u64 {
        self.hist.len() as u64
    }

    pub fn op(&self, n: u32) -> &Op {
        &self.ops[n as usize - 1]
    }

    pub fn allowed(&self, st: &DevState, sector: u64) -> Allowed {
        let mut a = Allowed { base: None, ops: Vec::new(), zero_ok: true, discarded: false };
        let mut earlier: Vec<u32> = Vec::new();
        for &h in &self.hist[sector as usize] {
            if h > st.issued {
                break;
            }
            match self.op(h) {
                Op::Write { .. } | Op::Fua { .. } => {
                    if st.durable(h) {
                        a.ops.clear();
                        a.zero_ok = false;
                        a.base = Some(h);
                    }
                    a.ops.push(h);
                    earlier.push(h);
                }
                Op::Discard { .. } => {
                    a.zero_ok = true;
                    a.discarded = true;
                    if self.policy == DiscardPolicy::Lax {
                        for &e in &earlier {
                            if !a.ops.contains(&e) {
                                a.ops.push(e);
                            }
                        }
                        a.ops.sort_unstable();
                    }
                }
                Op::Flush => unreachable!(),
            }
        }
        a
    }

    /// None if `found` is allowed at `sector`.
    pub fn judge(&self, st: &DevState, sector: u64, found: Content) -> Option<Violation> {
        let allowed = self.allowed(st, sector);
        let kind = match found {
            Content::Zero => {
                if allowed.zero_ok {
                    return None;
                }
                Kind::Stale
            }
            Content::Stamp(s) => {
                if s.seed == self.seed && s.dev == self.dev && s.sector == sector && allowed.ops.contains(&s.op) {
                    return None;
                }
                self.classify(st, sector, s)
            }
            Content::Damaged(_) => Kind::Damaged,
            Content::Garbage => Kind::Garbage,
        };
        Some(Violation { sector, kind, found, allowed })
    }

    fn classify(&self, st: &DevState, sector: u64, s: Stamp) -> Kind {
        if s.seed != self.seed {
            Kind::OtherRun
        } else if s.dev != self.dev {
            Kind::Foreign
        } else if s.sector != sector {
            Kind::Misplaced
        } else if !self.hist[sector as usize].contains(&s.op) || !self.op(s.op).writes_data() {
            Kind::Unknown
        } else if s.op > st.issued {
            Kind::Future
        } else {
            Kind::Stale
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(dev: u32, op: u32, sector: u64) -> Content {
        Content::Stamp(Stamp { dev, op, sector, seed: 1 })
    }

    // Sector 0 history: 1 write, 2 write, 3 flush, 4 write, 5 fua, 6 discard, 7 write.
    fn model(policy: DiscardPolicy) -> DevModel {
        let w = Op::Write { start: 0, len: 1 };
        let ops = vec![w, w, Op::Flush, w, Op::Fua { start: 0, len: 2 }, Op::Discard { start: 0, len: 1 }, w, Op::Flush];
        DevModel::new(1, 1, 4, ops, policy)
    }

    fn state(issued: u32, flushed: u32, fua: &[u32]) -> DevState {
        let mut s = DevState::new(8);
        s.issued = issued;
        s.flushed = flushed;
        for &f in fua {
            s.fua[f as usize] = true;
            s.fua_count += 1;
        }
        s
    }

    #[test]
    fn nothing_durable() {
        let m = model(DiscardPolicy::Strict);
        let s = state(2, 0, &[]);
        assert_eq!(m.judge(&s, 0, Content::Zero), None);
        assert_eq!(m.judge(&s, 0, st(1, 1, 0)), None);
        assert_eq!(m.judge(&s, 0, st(1, 2, 0)), None);
        assert_eq!(m.judge(&s, 0, st(1, 4, 0)).unwrap().kind, Kind::Future);
        assert_eq!(m.judge(&s, 0, st(2, 1, 0)).unwrap().kind, Kind::Foreign);
        assert_eq!(m.judge(&s, 0, st(1, 1, 1)).unwrap().kind, Kind::Misplaced);
        assert_eq!(m.judge(&s, 1, Content::Zero), None);
    }

    #[test]
    fn flushed_and_later() {
        let m = model(DiscardPolicy::Strict);
        let s = state(4, 3, &[]);
        let v = m.judge(&s, 0, st(1, 1, 0)).unwrap();
        assert_eq!(v.kind, Kind::Stale);
        assert_eq!(v.allowed.base, Some(2));
        assert_eq!(m.judge(&s, 0, Content::Zero).unwrap().kind, Kind::Stale);
        assert_eq!(m.judge(&s, 0, st(1, 2, 0)), None);
        assert_eq!(m.judge(&s, 0, st(1, 4, 0)), None);
    }

    #[test]
    fn fua_is_durable_alone() {
        let m = model(DiscardPolicy::Strict);
        // FUA op 5 durable; op 4 was never flushed: only 5 (and nothing older).
        let s = state(5, 3, &[5]);
        assert_eq!(m.judge(&s, 0, st(1, 5, 0)), None);
        assert_eq!(m.judge(&s, 0, st(1, 4, 0)).unwrap().kind, Kind::Stale);
        assert_eq!(m.judge(&s, 0, st(1, 2, 0)).unwrap().kind, Kind::Stale);
        // Sector 1 was written by the FUA op only.
        assert_eq!(m.judge(&s, 1, Content::Zero).unwrap().kind, Kind::Stale);
        // Issued but not yet marked complete: 5 or older may show.
        let s = state(5, 3, &[]);
        assert_eq!(m.judge(&s, 0, st(1, 4, 0)), None);
        assert_eq!(m.judge(&s, 1, Content::Zero), None);
    }

    #[test]
    fn discard() {
        let m = model(DiscardPolicy::Strict);
        let s = state(6, 3, &[5]);
        assert_eq!(m.judge(&s, 0, Content::Zero), None);
        assert_eq!(m.judge(&s, 0, st(1, 5, 0)), None);
        let v = m.judge(&s, 0, st(1, 4, 0)).unwrap();
        assert_eq!(v.kind, Kind::Stale);
        assert!(v.allowed.discarded);
        let lax = model(DiscardPolicy::Lax);
        assert_eq!(lax.judge(&s, 0, st(1, 4, 0)), None);
        // A durable write after the discard ends both.
        let s = state(8, 8, &[5]);
        assert_eq!(m.judge(&s, 0, Content::Zero).unwrap().kind, Kind::Stale);
        assert_eq!(lax.judge(&s, 0, st(1, 5, 0)).unwrap().kind, Kind::Stale);
        assert_eq!(m.judge(&s, 0, st(1, 7, 0)), None);
    }

    #[test]
    fn damaged_and_garbage() {
        let m = model(DiscardPolicy::Strict);
        let s = state(2, 0, &[]);
        let d = Content::Damaged(Stamp { dev: 1, op: 1, sector: 0, seed: 1 });
        assert_eq!(m.judge(&s, 0, d).unwrap().kind, Kind::Damaged);
        assert_eq!(m.judge(&s, 0, Content::Garbage).unwrap().kind, Kind::Garbage);
        assert_eq!(m.judge(&s, 0, Content::Stamp(Stamp { dev: 1, op: 1, sector: 0, seed: 2 })).unwrap().kind, Kind::OtherRun);
        assert_eq!(m.judge(&s, 2, st(1, 1, 2)).unwrap().kind, Kind::Unknown);
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::plan::{plan, PlanCfg};
    use crate::stamp::{decode, fill, Stamp, SECTOR};

    #[test]
    #[ignore]
    fn judge_speed() {
        let cfg = PlanCfg { seed: 1, ops: 400, sectors: 8192, mix: crate::plan::Mix::default() };
        let m = DevModel::new(1, 1, 8192, plan(&cfg, 1), DiscardPolicy::Strict);
        let mut st = DevState::new(400);
        st.issued = 400;
        st.flushed = 300;
        let mut data = vec![0u8; 8192 * SECTOR];
        for (i, s) in data.chunks_mut(SECTOR).enumerate() {
            fill(s, &Stamp { dev: 1, op: 7, sector: i as u64, seed: 1 });
        }
        let t = std::time::Instant::now();
        let mut bad = 0;
        for (i, s) in data.chunks(SECTOR).enumerate() {
            if m.judge(&st, i as u64, decode(s)).is_some() {
                bad += 1;
            }
        }
        eprintln!("8192 sectors judged in {:?} ({bad} bad)", t.elapsed());
        let t = std::time::Instant::now();
        for s in data.chunks(SECTOR) {
            std::hint::black_box(decode(s));
        }
        eprintln!("decode only: {:?}", t.elapsed());
    }
}
