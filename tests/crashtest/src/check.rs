//! The crash-point loop: pick crash points in the log, replay up to each
//! one (incrementally), bring the stack up on a throw-away snapshot of the
//! replayed disk as after a reboot, read every sector of every device and
//! judge it against what the workload's marks say was promised.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::time::Instant;

use crate::dev::{Buf, Dev, Window};
use crate::dm::{mknod, DevNo, Dm, Target};
use crate::logfmt::{self, Entry, Log};
use crate::model::{DevModel, DevState, DiscardPolicy, Kind, Violation};
use crate::plan::{plan, Mix, PlanCfg};
use crate::replay::{DiscardAs, Replayer};
use crate::rng::Rng;
use crate::stamp::{decode, Content, SECTOR};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// writeboost devices over a cache slice and backing slices.
    Writeboost,
    /// The workload wrote the slices directly (a self-test of the harness:
    /// any violation is a harness bug).
    Raw,
}

pub struct CheckCfg {
    pub log: String,
    pub scratch: String,
    pub cow: String,
    pub node_dir: String,
    pub points: usize,
    pub seed: u64,
    pub stack: Stack,
    pub details: usize,
    pub policy: DiscardPolicy,
    pub discard_as: DiscardAs,
    pub skip: Vec<usize>,
    pub drop_every: usize,
    pub verbose: bool,
}

/// Where the slices live on the logged disk (512-byte sectors), from the
/// `ct:layout:` mark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub cache: Option<(u64, u64)>,
    pub devs: Vec<(u32, u64, u64)>,
}

pub fn parse_layout(s: &str) -> Result<Layout, String> {
    let mut l = Layout::default();
    for item in s.split(',') {
        let (k, v) = item.split_once('=').ok_or_else(|| format!("bad layout item '{item}'"))?;
        let (o, n) = v.split_once('+').ok_or_else(|| format!("bad layout range '{v}'"))?;
        let o: u64 = o.parse().map_err(|_| format!("bad offset in '{item}'"))?;
        let n: u64 = n.parse().map_err(|_| format!("bad length in '{item}'"))?;
        if k == "cache" {
            l.cache = Some((o, n));
        } else {
            let id: u32 = k.parse().map_err(|_| format!("bad device id in '{item}'"))?;
            l.devs.push((id, o, n));
        }
    }
    if l.devs.is_empty() {
        return Err(format!("layout '{s}' names no device"));
    }
    Ok(l)
}

pub fn parse_cfg(s: &str) -> Result<(PlanCfg, Vec<u32>), String> {
    let mut seed = None;
    let mut ops = None;
    let mut sectors = None;
    let mut devs = Vec::new();
    let mut mix = Mix::default();
    for item in s.split(',') {
        let (k, v) = item.split_once('=').ok_or_else(|| format!("bad config item '{item}'"))?;
        let num = || v.parse::<u64>().map_err(|_| format!("bad number in '{item}'"));
        match k {
            "seed" => seed = Some(num()?),
            "ops" => ops = Some(num()? as u32),
            "sectors" => sectors = Some(num()?),
            "mix" => mix = Mix::parse(v)?,
            "devs" => {
                for d in v.split('+') {
                    devs.push(d.parse().map_err(|_| format!("bad device id in '{item}'"))?);
                }
            }
            _ => return Err(format!("unknown config item '{item}'")),
        }
    }
    match (seed, ops, sectors) {
        (Some(seed), Some(ops), Some(sectors)) if !devs.is_empty() => Ok((PlanCfg { seed, ops, sectors, mix }, devs)),
        _ => Err(format!("incomplete config mark '{s}'")),
    }
}

/// What the marks up to a point say.
#[derive(Clone, Debug)]
pub struct Promises {
    pub devs: BTreeMap<u32, DevState>,
    pub formatted: bool,
    pub resumed: bool,
}

impl Promises {
    pub fn any(&self) -> bool {
        self.devs.values().any(|d| d.promised())
    }

    /// Applies one mark; unknown marks are ignored.
    pub fn apply(&mut self, m: &str) -> Result<(), String> {
        match m {
            "ct:formatted" => self.formatted = true,
            "ct:resumed" => self.resumed = true,
            _ => {
                let p: Vec<&str> = m.split(':').collect();
                if p.len() == 4 && p[0] == "ct" && matches!(p[1], "i" | "d" | "u") {
                    let dev: u32 = p[2].parse().map_err(|_| format!("bad mark '{m}'"))?;
                    let op: u32 = p[3].parse().map_err(|_| format!("bad mark '{m}'"))?;
                    let st = self.devs.get_mut(&dev).ok_or_else(|| format!("mark '{m}' names an unknown device"))?;
                    if op as usize >= st.fua.len() {
                        return Err(format!("mark '{m}': op beyond the plan"));
                    }
                    match p[1] {
                        "i" => st.issued = st.issued.max(op),
                        "d" => st.flushed = st.flushed.max(op),
                        _ => {
                            if !st.fua[op as usize] {
                                st.fua[op as usize] = true;
                                st.fua_count += 1;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.devs
            .iter()
            .map(|(id, s)| format!("dev{id} issued {} flushed {} fua {}", s.issued, s.flushed, s.fua_count))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Crash points (index of the last entry applied), ascending: every
/// FLUSH/FUA entry while they fit in three quarters of the budget (a seeded
/// sample otherwise), other data entries for the rest, and the end.
pub fn pick_points(log: &Log, budget: usize, seed: u64) -> (Vec<usize>, usize) {
    let barriers: Vec<usize> = log.entries.iter().filter(|e| e.is_barrier()).map(|e| e.index).collect();
    let others: Vec<usize> = log.entries.iter().filter(|e| e.is_data() && !e.is_barrier()).map(|e| e.index).collect();
    let mut rng = Rng::new(seed ^ 0xC4A5);
    let budget = budget.max(1);
    let want_b = if barriers.len() * 4 <= budget * 3 { barriers.len() } else { budget * 3 / 4 };
    let mut pts = rng.sample(&barriers, want_b);
    let nb = pts.len();
    let rest = budget.saturating_sub(nb + 1);
    pts.extend(rng.sample(&others, rest));
    if let Some(last) = log.entries.len().checked_sub(1) {
        pts.push(last);
    }
    pts.sort_unstable();
    pts.dedup();
    (pts, nb)
}

/// Kernel messages since the last drain (for errors).
struct Kmsg(Option<File>);

impl Kmsg {
    fn open() -> Kmsg {
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").ok();
        let mut k = Kmsg(f);
        k.drain();
        k
    }

    fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(f) = self.0.as_mut() else { return out };
        let mut b = vec![0u8; 8192];
        loop {
            match f.read(&mut b) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&b[..n]);
                    let line = rec.lines().next().unwrap_or("");
                    if let Some((_, msg)) = line.split_once(';') {
                        out.push(msg.to_string());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

fn devno_of(path: &str) -> Result<DevNo, String> {
    let md = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    let r = md.rdev();
    let (ma, mi) = (libc::major(r), libc::minor(r));
    if ma == 0 && mi == 0 {
        return Err(format!("{path} is not a block device"));
    }
    Ok(DevNo(((mi as u64) & 0xff) | ((ma as u64) << 8) | (((mi as u64) & !0xff) << 12)))
}

const SNAP: &str = "wbct-snap";
const CACHE: &str = "wbct-cache";
const MGR: &str = "writeboost-mgr";

fn slice_name(id: u32) -> String {
    format!("wbct-slice{id}")
}
fn wb_name(id: u32) -> String {
    format!("wbct-wb{id}")
}

/// One violation range for the report.
struct Range {
    dev: u32,
    first: u64,
    last: u64,
    kind: Kind,
    found: String,
    allowed: String,
}

fn found_desc(c: &Content, m: &DevModel, st: &DevState, sector: u64) -> String {
    match c {
        Content::Zero => "zeroes".to_string(),
        Content::Stamp(s) if s.dev == m.dev && s.seed == m.seed && (s.op as usize) <= m.ops.len() && s.op > 0 => {
            let dur = if st.durable(s.op) { "durable" } else { "not durable" };
            let at = if s.sector == sector { String::new() } else { format!(" of sector {}", s.sector) };
            format!("op {} ({}, {dur}){at}", s.op, m.op(s.op).name())
        }
        Content::Stamp(s) => format!("stamp dev {} op {} sector {} seed {}", s.dev, s.op, s.sector, s.seed),
        Content::Damaged(s) => format!("damaged stamp (dev {} op {} sector {})", s.dev, s.op, s.sector),
        Content::Garbage => "garbage".to_string(),
    }
}

struct PointResult {
    bad: BTreeMap<Kind, u64>,
    ranges: Vec<Range>,
    refused: Option<String>,
    sectors: u64,
}

struct Env<'a> {
    cfg: &'a CheckCfg,
    dm: Dm,
    layout: Layout,
    models: Vec<DevModel>,
    scratch_no: DevNo,
    cow_no: DevNo,
    scratch_sectors: u64,
    kmsg: Kmsg,
    /// Seconds spent per phase: replay, setup, resume, read, teardown.
    time: [f64; 5],
}

const PHASES: [&str; 5] = ["replay", "setup", "resume", "read+judge", "teardown"];

impl Env<'_> {
    fn node(&self, name: &str, dev: DevNo) -> Result<String, String> {
        let p = format!("{}/{name}", self.cfg.node_dir);
        mknod(&p, dev)?;
        Ok(p)
    }

    fn teardown(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        let mut rm = |n: &str| {
            if self.dm.exists(n) {
                if let Err(e) = self.dm.remove(n) {
                    errs.push(e);
                }
            }
        };
        for m in &self.models {
            rm(&wb_name(m.dev));
        }
        if self.dm.exists(MGR) && self.cfg.stack == Stack::Writeboost {
            // The cache may not exist (resume refused): ignore that error.
            let _ = self.dm.message(MGR, "switch_to 1");
            let _ = self.dm.message(MGR, "free_cache");
        }
        let mut rm = |n: &str| {
            if self.dm.exists(n) {
                if let Err(e) = self.dm.remove(n) {
                    errs.push(e);
                }
            }
        };
        rm(MGR);
        for m in &self.models {
            rm(&slice_name(m.dev));
        }
        rm(CACHE);
        rm(SNAP);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    /// Brings the stack up on a snapshot of the replayed disk, reads and
    /// judges every device, tears it down.
    fn check_point(&mut self, pr: &Promises) -> Result<PointResult, String> {
        let r = self.check_point_inner(pr);
        let t0 = Instant::now();
        let t = self.teardown();
        self.time[4] += t0.elapsed().as_secs_f64();
        match (r, t) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(format!("teardown: {e}")),
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(t)) => Err(format!("{e}; teardown: {t}")),
        }
    }

    fn check_point_inner(&mut self, pr: &Promises) -> Result<PointResult, String> {
        self.kmsg.drain();
        let mut t = Instant::now();
        let mut lap = |env_time: &mut [f64; 5], i: usize| {
            env_time[i] += t.elapsed().as_secs_f64();
            t = Instant::now();
        };
        let mut times = [0f64; 5];
        let r = self.bring_up_and_read(pr, &mut times, &mut lap);
        for (a, b) in self.time.iter_mut().zip(times) {
            *a += b;
        }
        r
    }

    fn bring_up_and_read(
        &mut self,
        pr: &Promises,
        times: &mut [f64; 5],
        lap: &mut dyn FnMut(&mut [f64; 5], usize),
    ) -> Result<PointResult, String> {
        let dm = &self.dm;
        let snap = dm.create(
            SNAP,
            &[Target::new(self.scratch_sectors, "snapshot", format!("{} {} N 8", self.scratch_no.arg(), self.cow_no.arg()))],
        )?;
        let mut res = PointResult { bad: BTreeMap::new(), ranges: Vec::new(), refused: None, sectors: 0 };
        let mut slices = BTreeMap::new();
        for &(id, off, len) in &self.layout.devs {
            let d = dm.create(&slice_name(id), &[Target::new(len, "linear", format!("{} {off}", snap.arg()))])?;
            slices.insert(id, (d, len));
        }
        let mut read_devs: Vec<(u32, DevNo)> = Vec::new();
        if self.cfg.stack == Stack::Writeboost {
            let (coff, clen) = self.layout.cache.ok_or("the layout has no cache slice")?;
            let c = dm.create(CACHE, &[Target::new(clen, "linear", format!("{} {coff}", snap.arg()))])?;
            let cpath = self.node(CACHE, c)?;
            dm.create(MGR, &[Target::new(1, "writeboost-mgr", String::new())])?;
            for m in &self.models {
                let (b, len) = slices[&m.dev];
                let d = dm.create(&wb_name(m.dev), &[Target::new(len, "writeboost", format!("{} {} 0", m.dev, b.arg()))])?;
                read_devs.push((m.dev, d));
            }
            dm.message(MGR, "switch_to 1")?;
            lap(times, 1);
            let resumed = dm.message(MGR, &format!("resume_cache {cpath}"));
            lap(times, 2);
            if let Err(e) = resumed {
                let k = self.kmsg.drain();
                let why = k.iter().rev().find(|l| l.contains("writeboost")).cloned().unwrap_or_default();
                res.refused = Some(format!("{e} [{why}]"));
                return Ok(res);
            }
        } else {
            for m in &self.models {
                read_devs.push((m.dev, slices[&m.dev].0));
            }
            lap(times, 1);
        }
        // Each device is read by its own thread (the guest has two CPUs).
        let mut jobs = Vec::new();
        for (id, d) in read_devs {
            jobs.push((id, self.node(&format!("read{id}"), d)?));
        }
        let models = &self.models;
        let outs: Vec<Result<Vec<Violation>, String>> = std::thread::scope(|sc| {
            let hs: Vec<_> = jobs
                .iter()
                .map(|(id, path)| {
                    let m = models.iter().find(|m| m.dev == *id).unwrap();
                    let st = &pr.devs[id];
                    sc.spawn(move || read_and_judge(m, st, path))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("reader thread panicked".into()))).collect()
        });
        for ((id, path), out) in jobs.iter().zip(outs) {
            let _ = std::fs::remove_file(path);
            let m = self.models.iter().find(|m| m.dev == *id).unwrap();
            for v in out? {
                record(&mut res, m, &pr.devs[id], v);
            }
            res.sectors += m.sectors();
        }
        lap(times, 3);
        Ok(res)
    }
}

/// Reads every sector of a device and judges it.
fn read_and_judge(m: &DevModel, st: &DevState, path: &str) -> Result<Vec<Violation>, String> {
    let dev = Dev::open(path, false)?;
    let total = m.sectors();
    if dev.size()? / 512 != total {
        return Err(format!("{path}: {} sectors, expected {total}", dev.size()? / 512));
    }
    let chunk = 2048u64;
    let mut buf = Buf::new(chunk as usize * SECTOR);
    let mut bad = Vec::new();
    let mut s = 0u64;
    while s < total {
        let n = chunk.min(total - s);
        let b = &mut buf.get_mut()[..n as usize * SECTOR];
        dev.read_exact_at(b, s * 512)?;
        for (i, sec) in b.chunks(SECTOR).enumerate() {
            if let Some(v) = m.judge(st, s + i as u64, decode(sec)) {
                bad.push(v);
            }
        }
        s += n;
    }
    Ok(bad)
}

fn record(res: &mut PointResult, m: &DevModel, st: &DevState, v: Violation) {
    *res.bad.entry(v.kind).or_insert(0) += 1;
    let found = found_desc(&v.found, m, st, v.sector);
    let allowed = v.allowed.describe();
    if let Some(r) = res.ranges.last_mut() {
        if r.dev == m.dev && r.last + 1 == v.sector && r.kind == v.kind && r.allowed == allowed && same_source(&r.found, &found) {
            r.last = v.sector;
            return;
        }
    }
    res.ranges.push(Range { dev: m.dev, first: v.sector, last: v.sector, kind: v.kind, found, allowed });
}

// Consecutive sectors of one op read as one range ("of sector N" differs).
fn same_source(a: &str, b: &str) -> bool {
    a.split(" of sector").next() == b.split(" of sector").next()
}

pub fn run(cfg: &CheckCfg) -> Result<bool, String> {
    let t0 = Instant::now();
    let logdev = Dev::open(&cfg.log, false)?;
    let log_size = logdev.size()?;
    let log = logfmt::parse(&Window::new(&logdev, log_size), log_size)?;
    let t_parse = t0.elapsed().as_secs_f64();
    let ss = log.sectorsize;
    let marks: Vec<(usize, &str)> =
        log.entries.iter().filter_map(|e| e.mark.as_deref().map(|m| (e.index, m))).collect();
    let find = |prefix: &str| marks.iter().find_map(|(_, m)| m.strip_prefix(prefix));
    let layout = parse_layout(find("ct:layout:").ok_or("the log has no ct:layout: mark")?)?;
    let (pcfg, ids) = parse_cfg(find("ct:cfg:").ok_or("the log has no ct:cfg: mark (did the workload start?)")?)?;
    let ended = marks.iter().any(|(_, m)| *m == "ct:end");
    if log.entries.last().and_then(|e| e.mark.as_deref()) != Some("dm-log-writes-end") {
        return Err("the log does not end with dm-log-writes-end (log-writes not removed cleanly, or the log overflowed)".into());
    }
    // Ops per device: the planned ones, or more (the workload runs past its
    // plan until every device is done); the issue marks say how many.
    let mut nops: BTreeMap<u32, u32> = ids.iter().map(|&id| (id, pcfg.ops)).collect();
    for (_, m) in &marks {
        let p: Vec<&str> = m.split(':').collect();
        if p.len() == 4 && p[0] == "ct" && p[1] == "i" {
            if let (Ok(d), Ok(n)) = (p[2].parse::<u32>(), p[3].parse::<u32>()) {
                if let Some(x) = nops.get_mut(&d) {
                    *x = (*x).max(n);
                }
            }
        }
    }
    let mut models = Vec::new();
    for &id in &ids {
        let (_, _, len) = layout.devs.iter().find(|d| d.0 == id).ok_or(format!("device {id} is not in the layout"))?;
        if *len != pcfg.sectors {
            return Err(format!("device {id}: layout says {len} sectors, config {}", pcfg.sectors));
        }
        let c = PlanCfg { ops: nops[&id], ..pcfg };
        models.push(DevModel::new(id, pcfg.seed, pcfg.sectors, plan(&c, id), cfg.policy));
    }
    let data_entries = log.entries.iter().filter(|e| e.is_data()).count();
    let barriers = log.entries.iter().filter(|e| e.is_barrier()).count();
    println!(
        "log: {} entries ({} marks, {} data, {} FLUSH/FUA), sector size {ss}; workload {}; seed {}, ops {:?}, {} devices of {} sectors, mix {}",
        log.entries.len(),
        marks.len(),
        data_entries,
        barriers,
        if ended { "completed" } else { "did not complete" },
        pcfg.seed,
        nops.values().collect::<Vec<_>>(),
        ids.len(),
        pcfg.sectors,
        pcfg.mix.to_arg()
    );
    let (points, nb) = pick_points(&log, cfg.points, cfg.seed);
    println!(
        "crash points: {} ({} at FLUSH/FUA entries, {} elsewhere), seed {}; log parsed in {t_parse:.1}s",
        points.len(),
        nb,
        points.len() - nb,
        cfg.seed
    );

    let scratch = Dev::open(&cfg.scratch, true)?;
    let scratch_size = scratch.size()?;
    let need = layout.devs.iter().map(|d| d.1 + d.2).chain(layout.cache.map(|c| c.0 + c.1)).max().unwrap_or(0);
    if scratch_size / 512 < need {
        return Err(format!("{}: {} sectors, the layout needs {need}", cfg.scratch, scratch_size / 512));
    }
    std::fs::create_dir_all(&cfg.node_dir).map_err(|e| format!("{}: {e}", cfg.node_dir))?;
    let mut env = Env {
        cfg,
        dm: Dm::open()?,
        layout,
        models,
        scratch_no: devno_of(&cfg.scratch)?,
        cow_no: devno_of(&cfg.cow)?,
        scratch_sectors: scratch_size / 512,
        kmsg: Kmsg::open(),
        time: [0.0; 5],
    };
    env.teardown()?;
    let mut rep = Replayer::new(&log, &logdev, &scratch, cfg.discard_as)?;
    rep.skip = cfg.skip.clone();
    rep.drop_every = cfg.drop_every;
    let mut pr = Promises {
        devs: ids.iter().map(|&id| (id, DevState::new(nops[&id]))).collect(),
        formatted: false,
        resumed: false,
    };
    let mut marks_seen = 0usize;
    let mut totals: BTreeMap<Kind, u64> = BTreeMap::new();
    let (mut bad_points, mut refused_ok, mut refused_bad, mut checked) = (0usize, 0usize, 0usize, 0usize);
    let mut first_bad: Option<String> = None;
    let t_check = Instant::now();
    for (n, &p) in points.iter().enumerate() {
        while marks_seen < marks.len() && marks[marks_seen].0 <= p {
            pr.apply(marks[marks_seen].1)?;
            marks_seen += 1;
        }
        let tr = Instant::now();
        rep.advance_to(p + 1)?;
        env.time[0] += tr.elapsed().as_secs_f64();
        let e: &Entry = &log.entries[p];
        let head = format!("point {}/{} after entry {}/{} ({})", n + 1, points.len(), p, log.entries.len(), e.describe(ss));
        let r = env.check_point(&pr).map_err(|m| format!("{head}: {m}"))?;
        checked += 1;
        if let Some(why) = &r.refused {
            if pr.any() {
                refused_bad += 1;
                bad_points += 1;
                println!("{head}: VIOLATION: resume_cache refused after durable promises ({}): {why}", pr.describe());
                first_bad.get_or_insert(head.clone());
            } else {
                refused_ok += 1;
                let when = if pr.resumed {
                    "after the first resume, before any durable write"
                } else if pr.formatted {
                    "after format, before any durable write"
                } else {
                    "before the format completed"
                };
                println!("{head}: resume refused {when}: legitimate{}", if cfg.verbose { format!(" ({why})") } else { String::new() });
            }
            continue;
        }
        let nbad: u64 = r.bad.values().sum();
        if nbad == 0 {
            println!("{head}: ok, {} sectors ({})", r.sectors, pr.describe());
            continue;
        }
        bad_points += 1;
        first_bad.get_or_insert(head.clone());
        let kinds: Vec<String> = r.bad.iter().map(|(k, c)| format!("{c} {}", k.name())).collect();
        println!("{head}: VIOLATION: {nbad} bad sectors ({}) [{}]", kinds.join(", "), pr.describe());
        for rg in r.ranges.iter().take(cfg.details) {
            println!(
                "    dev {} sectors {}..{} ({}): {}: found {}, allowed {}",
                rg.dev,
                rg.first,
                rg.last,
                rg.last - rg.first + 1,
                rg.kind.name(),
                rg.found,
                rg.allowed
            );
        }
        if r.ranges.len() > cfg.details {
            println!("    ... {} more ranges", r.ranges.len() - cfg.details);
        }
        for (k, c) in r.bad {
            *totals.entry(k).or_insert(0) += c;
        }
    }
    if !rep.ambiguous.is_empty() {
        println!(
            "replay: {} plain writes or discards overlap a FUA/flush write logged earlier in the same flush epoch (their order is \
             ambiguous in a dm-log-writes log), first at entries {:?}",
            rep.ambiguous.len(),
            &rep.ambiguous[..rep.ambiguous.len().min(8)]
        );
    }
    if !rep.dropped.is_empty() {
        println!(
            "fault injection: {} logged writes left out of the replay (entries {:?}{})",
            rep.dropped.len(),
            &rep.dropped[..rep.dropped.len().min(10)],
            if rep.dropped.len() > 10 { ", ..." } else { "" }
        );
    }
    let per = if checked > 0 { t_check.elapsed().as_secs_f64() / checked as f64 } else { 0.0 };
    println!(
        "crashtest: {checked} crash points checked in {:.1}s ({per:.2}s each, {:.1}s total), {} replayed MiB; {refused_ok} legitimate resume refusals",
        t_check.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        rep.bytes_written >> 20
    );
    if checked > 0 {
        let parts: Vec<String> =
            PHASES.iter().zip(env.time).map(|(n, t)| format!("{n} {:.2}s", t / checked as f64)).collect();
        println!("time per crash point: {}", parts.join(", "));
    }
    if bad_points == 0 {
        println!("crashtest: no violations");
        Ok(true)
    } else {
        let kinds: Vec<String> = totals.iter().map(|(k, c)| format!("{c} {}", k.name())).collect();
        println!(
            "crashtest: VIOLATIONS at {bad_points} of {checked} crash points ({} refused resumes; bad sectors: {}); first: {}",
            refused_bad,
            if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") },
            first_bad.unwrap_or_default()
        );
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logfmt::{parse, Builder, FLAG_FUA};

    #[test]
    fn layout_and_cfg() {
        let l = parse_layout("cache=0+24576,1=24576+8192,2=32768+8192").unwrap();
        assert_eq!(l.cache, Some((0, 24576)));
        assert_eq!(l.devs, vec![(1, 24576, 8192), (2, 32768, 8192)]);
        assert!(parse_layout("cache=0+1").is_err());
        let (c, d) = parse_cfg("seed=3,ops=10,sectors=8192,devs=1+2").unwrap();
        assert_eq!(c, PlanCfg { seed: 3, ops: 10, sectors: 8192, mix: Mix::default() });
        let (c, _) = parse_cfg("seed=3,ops=10,sectors=8192,devs=1+2,mix=5:4:3:60").unwrap();
        assert_eq!(c.mix, Mix { flush: 5, fua: 4, discard: 3, hot: 60, again: 0 });
        assert_eq!(d, vec![1, 2]);
        assert!(parse_cfg("seed=3").is_err());
    }

    #[test]
    fn promises_from_marks() {
        let mut p = Promises { devs: [(1, DevState::new(10))].into_iter().collect(), formatted: false, resumed: false };
        p.apply("ct:i:1:4").unwrap();
        p.apply("ct:d:1:3").unwrap();
        p.apply("ct:u:1:4").unwrap();
        p.apply("ct:u:1:4").unwrap();
        p.apply("something else").unwrap();
        let s = &p.devs[&1];
        assert_eq!((s.issued, s.flushed, s.fua_count), (4, 3, 1));
        assert!(s.durable(4) && s.durable(2) && !s.durable(5));
        assert!(p.apply("ct:i:2:1").is_err());
        assert!(p.apply("ct:i:1:11").is_err());
    }

    #[test]
    fn points_cover_barriers_and_end() {
        let mut b = Builder::new(512);
        for i in 0..40 {
            b.write(i, &[1u8; 512], if i % 4 == 0 { FLAG_FUA } else { 0 });
            if i % 10 == 9 {
                b.flush();
            }
        }
        b.mark("dm-log-writes-end");
        let img = b.finish();
        let log = parse(&img, img.len() as u64).unwrap();
        let (p, nb) = pick_points(&log, 30, 1);
        assert_eq!(nb, 14);
        assert_eq!(p.len(), 30);
        assert_eq!(*p.last().unwrap(), log.entries.len() - 1);
        assert!(log.entries.iter().filter(|e| e.is_barrier()).all(|e| p.contains(&e.index)));
        let (p, nb) = pick_points(&log, 8, 1);
        assert_eq!(nb, 6);
        assert!(p.len() <= 8);
    }
}
