//! `check`: read the region back and verify every sector against the
//! op stream.

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::dev::{AlignedBuf, Dev};
use crate::stamp::{inspect, Found, SECTOR_SIZE};
use crate::stream::Stream;

/// What a sector that no (relevant) op wrote must contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initial {
    /// All zero bytes.
    Zero,
    /// Anything.
    Any,
    /// A valid stamp (same seed) of this generation, e.g. from `fill`.
    Gen(u64),
}

/// Options of `check` that are not part of the stream.
#[derive(Clone, Debug)]
pub struct CheckOpts {
    /// Last op known durable (crash recovery); `None` = all N ops completed.
    pub durable: Option<u64>,
    pub initial: Initial,
    /// The stream was written with --jobs > 1: ops that overlap have no
    /// defined order, so any op that wrote a sector is accepted.
    pub any_order: bool,
    /// How many mismatch lines to keep.
    pub max_details: usize,
}

/// Result of a check.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub checked: u64,
    pub ok: u64,
    pub bad: u64,
    pub wrong_gen: u64,
    pub zeros: u64,
    pub garbage: u64,
    pub misplaced: u64,
    pub foreign: u64,
    pub first_bad: Option<u64>,
    pub last_bad: Option<u64>,
    pub details: Vec<String>,
}

impl Report {
    /// The lines `check` prints, the summary last.
    pub fn lines(&self) -> Vec<String> {
        let mut v = self.details.clone();
        let shown = self.details.len() as u64;
        if self.bad > shown {
            v.push(format!(
                "... and {} more bad sectors not shown",
                self.bad - shown
            ));
        }
        if self.bad > 0 {
            v.push(format!(
                "bad sectors: {} wrong generation, {} zeros, {} garbage, {} misplaced, {} other seed; first bad sector {}, last {}",
                self.wrong_gen,
                self.zeros,
                self.garbage,
                self.misplaced,
                self.foreign,
                self.first_bad.unwrap_or(0),
                self.last_bad.unwrap_or(0)
            ));
        }
        v.push(format!(
            "checked {} sectors: {} ok, {} bad",
            self.checked, self.ok, self.bad
        ));
        v
    }
}

/// Sectors per window of the "last op" table (16 MiB of u32).
const WINDOW: u64 = 1 << 22;
/// Sectors per read (1 MiB).
const CHUNK: u64 = 2048;

struct Judge<'a> {
    stream: &'a Stream,
    opts: &'a CheckOpts,
    /// The durable point D (N without --durable).
    d: u64,
}

impl Judge<'_> {
    /// Is `found` acceptable for sector `s`, whose last op <= D is `a`
    /// (0 = none)?
    fn ok(&self, found: Found, a: u64, s: u64) -> bool {
        if a == 0 {
            let initial_ok = match (self.opts.initial, found) {
                (Initial::Any, _) => true,
                (Initial::Zero, Found::Zeros) => true,
                (Initial::Gen(g), Found::Valid(f)) => f == g,
                _ => false,
            };
            if initial_ok {
                return true;
            }
        }
        let Found::Valid(g) = found else {
            return false;
        };
        let Some(f) = self.stream.op_of_gen(g) else {
            return false;
        };
        if !self.stream.covers(f, s) {
            return false;
        }
        // With --jobs > 1: any op that wrote the sector.
        // Otherwise: exactly the last durable op, or any later op that
        // may have landed before the crash.
        self.opts.any_order || f == a || f > self.d
    }

    fn initial_desc(&self) -> String {
        match self.opts.initial {
            Initial::Zero => "initial zeros".to_string(),
            Initial::Any => "initial (anything)".to_string(),
            Initial::Gen(g) => format!("initial gen {g}"),
        }
    }

    fn expected(&self, a: u64, s: u64) -> String {
        let st = self.stream;
        if self.opts.any_order {
            let gens: Vec<u64> = st
                .ops_covering(s, 1, st.n())
                .iter()
                .map(|&i| st.gen(i))
                .collect();
            return match (a == 0, gens.is_empty()) {
                (true, true) => self.initial_desc(),
                (true, false) => {
                    format!("{} or any of gens {}", self.initial_desc(), fmt_list(&gens))
                }
                (false, _) => format!("any of gens {}", fmt_list(&gens)),
            };
        }
        let base = if a == 0 {
            self.initial_desc()
        } else {
            format!("gen {}", st.gen(a))
        };
        let later: Vec<u64> = st
            .ops_covering(s, self.d + 1, st.n())
            .iter()
            .map(|&i| st.gen(i))
            .collect();
        if later.is_empty() {
            base
        } else {
            format!("{base} (or one of later gens {})", fmt_list(&later))
        }
    }

    fn found_desc(&self, found: Found, s: u64) -> String {
        match found {
            Found::Zeros => "found zeros".to_string(),
            Found::Garbage => "found garbage".to_string(),
            Found::BadStamp { sector, gen } => format!(
                "found garbage (stamp with bad CRC/filler, header claims sector {sector} gen {gen}: torn or corrupted)"
            ),
            Found::Misplaced { sector, gen } => {
                format!("found data of sector {sector} gen {gen} (misplaced/misdirected)")
            }
            Found::ForeignSeed { seed, gen } => {
                format!("found gen {gen} of another seed {seed}")
            }
            Found::Valid(g) => match self.stream.op_of_gen(g) {
                Some(f) if !self.stream.covers(f, s) => {
                    format!("found gen {g} (op {f} never wrote this sector)")
                }
                Some(_) => format!("found gen {g}"),
                None => format!("found gen {g} (not a generation of this stream)"),
            },
        }
    }
}

fn fmt_list(v: &[u64]) -> String {
    if v.len() <= 8 {
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    } else {
        format!(
            "{}, {}, {}, ..., {}, {} ({} in all)",
            v[0],
            v[1],
            v[2],
            v[v.len() - 2],
            v[v.len() - 1],
            v.len()
        )
    }
}

/// Read the stream's region from `path` and verify every sector.
pub fn run_check(path: &Path, stream: &Stream, opts: &CheckOpts) -> Result<Report, String> {
    let n = stream.n();
    let d = opts.durable.unwrap_or(n);
    if d > n {
        return Err(format!("--durable {d} is larger than --ops {n}"));
    }
    let mut dev = Dev::open(path, false, false)?;
    let region = stream.region;
    dev.ensure_size(region.end_bytes(), false)?;
    let judge = Judge { stream, opts, d };

    let win = WINDOW.min(region.len) as usize;
    let mut last: Vec<u32> = Vec::new();
    last.try_reserve_exact(win)
        .map_err(|_| "out of memory for the sector table".to_string())?;
    last.resize(win, 0);
    let mut buf = AlignedBuf::new((CHUNK as usize) * SECTOR_SIZE)?;
    let mut rep = Report::default();

    let mut ws = region.start;
    while ws < region.end() {
        let we = (ws + WINDOW).min(region.end());
        let table = &mut last[..(we - ws) as usize];
        // last op <= D writing each sector of the window (0 = none)
        table.fill(0);
        for i in 1..=d {
            let (st, ln) = stream.op(i);
            let lo = st.max(ws);
            let hi = (st + ln).min(we);
            if lo < hi {
                table[(lo - ws) as usize..(hi - ws) as usize].fill(i as u32);
            }
        }
        let mut cs = ws;
        while cs < we {
            let cn = CHUNK.min(we - cs);
            let data = &mut buf.get_mut()[..(cn as usize) * SECTOR_SIZE];
            dev.file
                .read_exact_at(data, cs * 512)
                .map_err(|e| dev.io_error(&format!("read at sector {cs} ({cn} sectors)"), &e))?;
            for (k, sec) in data.chunks_exact(SECTOR_SIZE).enumerate() {
                let s = cs + k as u64;
                let a = u64::from(table[(s - ws) as usize]);
                let found = inspect(sec, stream.seed, s);
                rep.checked += 1;
                if judge.ok(found, a, s) {
                    rep.ok += 1;
                    continue;
                }
                rep.bad += 1;
                match found {
                    Found::Zeros => rep.zeros += 1,
                    Found::Garbage | Found::BadStamp { .. } => rep.garbage += 1,
                    Found::Misplaced { .. } => rep.misplaced += 1,
                    Found::ForeignSeed { .. } => rep.foreign += 1,
                    Found::Valid(_) => rep.wrong_gen += 1,
                }
                rep.first_bad.get_or_insert(s);
                rep.last_bad = Some(s);
                if rep.details.len() < opts.max_details {
                    rep.details.push(format!(
                        "sector {s}: expected {}, {}",
                        judge.expected(a, s),
                        judge.found_desc(found, s)
                    ));
                }
            }
            cs += cn;
        }
        ws = we;
    }
    Ok(rep)
}
