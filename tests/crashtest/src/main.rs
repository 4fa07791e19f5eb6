//! wbcrash: crash-point testing of writeboost with dm-log-writes.
//!
//!   wbcrash work   --log NAME --dev ID:PATH... --seed S --ops N [--mix F:U:D:H] [--pause-every K --pause-ms M]
//!   wbcrash check  --log PATH --scratch PATH --cow PATH [--points N] [--seed S]
//!                  [--stack writeboost|raw] [--details K] [--discard strict|lax]
//!                  [--replay-discard zero|keep] [--skip-entry N]... [--drop-every K] [--node-dir DIR] [-v]
//!   wbcrash replay --log PATH --target PATH (--entries N | --until-mark TEXT)
//!   wbcrash dump   --log PATH [--from N] [--count N] [--tail N]
//!   wbcrash mark   --log NAME TEXT
//!   wbcrash ops    [--seed S] [--ops N] [--sectors N] [--mix F:U:D:H] [--dev ID] [--sector X]
//!
//! See tests/crashtest/README.md.

mod check;
mod crc;
mod dev;
mod dm;
mod logfmt;
mod model;
mod plan;
mod replay;
mod rng;
mod stamp;
mod work;

use std::collections::HashMap;
use std::process::exit;

const USAGE: &str = "usage:
  wbcrash work   --log NAME --dev ID:PATH [--dev ID:PATH]... --seed S --ops N [--mix FLUSH:FUA:DISCARD:HOT]
                 [--pause-every K] [--pause-ms M]
                 [--flush-before-fua]
  wbcrash check  --log PATH --scratch PATH --cow PATH [--points N] [--seed S] [--stack writeboost|raw]
                 [--details K] [--discard strict|lax] [--replay-discard zero|keep] [--skip-entry N]...
                 [--drop-every K] [--node-dir DIR] [-v]
  wbcrash replay --log PATH --target PATH (--entries N | --until-mark TEXT)
  wbcrash dump   --log PATH [--from N] [--count N]
  wbcrash mark   --log NAME TEXT
  wbcrash ops    [--seed S] [--ops N] [--sectors N] [--mix M] [--dev ID] [--sector X]
                 (the op stream: flushes and the ops touching sector X)
exit status: 0 ok, 1 violations found, 2 usage or harness error";

struct Args {
    opts: HashMap<String, Vec<String>>,
    flags: Vec<String>,
    free: Vec<String>,
}

fn parse_args(v: &[String], with_value: &[&str]) -> Result<Args, String> {
    let mut a = Args { opts: HashMap::new(), flags: Vec::new(), free: Vec::new() };
    let mut i = 0;
    while i < v.len() {
        let s = &v[i];
        if let Some(k) = s.strip_prefix("--") {
            if with_value.contains(&k) {
                let val = v.get(i + 1).ok_or_else(|| format!("--{k} needs a value"))?;
                a.opts.entry(k.to_string()).or_default().push(val.clone());
                i += 2;
                continue;
            }
            if k != "flush-before-fua" {
                return Err(format!("unknown option --{k}"));
            }
            a.flags.push(s.clone());
            i += 1;
            continue;
        } else if s == "-v" {
            a.flags.push(s.clone());
        } else {
            a.free.push(s.clone());
        }
        i += 1;
    }
    Ok(a)
}

impl Args {
    fn get(&self, k: &str) -> Option<&str> {
        self.opts.get(k).and_then(|v| v.last()).map(|s| s.as_str())
    }
    fn req(&self, k: &str) -> Result<&str, String> {
        self.get(k).ok_or_else(|| format!("--{k} is required"))
    }
    fn num<T: std::str::FromStr>(&self, k: &str, def: T) -> Result<T, String> {
        match self.get(k) {
            None => Ok(def),
            Some(s) => s.parse().map_err(|_| format!("--{k}: not a number: {s}")),
        }
    }
}

fn cmd_work(a: &Args) -> Result<i32, String> {
    let mut devs = Vec::new();
    for d in a.opts.get("dev").ok_or("--dev is required")? {
        let (id, path) = d.split_once(':').ok_or_else(|| format!("--dev {d}: expected ID:PATH"))?;
        let id: u32 = id.parse().map_err(|_| format!("--dev {d}: bad id"))?;
        devs.push((id, path.to_string()));
    }
    let first = dev::Dev::open(&devs[0].1, false)?;
    let sectors = first.size()? / 512;
    drop(first);
    let cfg = work::WorkCfg {
        logdev: a.req("log")?.to_string(),
        devs,
        plan: plan::PlanCfg {
            seed: a.num("seed", 1)?,
            ops: a.num("ops", 300)?,
            sectors,
            mix: a.get("mix").map(plan::Mix::parse).transpose()?.unwrap_or_default(),
        },
        pause_every: a.num("pause-every", 0)?,
        pause_ms: a.num("pause-ms", 0)?,
        flush_before_fua: a.flags.iter().any(|f| f == "--flush-before-fua"),
    };
    if cfg.plan.ops < 1 {
        return Err("--ops must be at least 1".into());
    }
    work::run(&cfg)?;
    Ok(0)
}

fn cmd_check(a: &Args) -> Result<i32, String> {
    let skip = a
        .opts
        .get("skip-entry")
        .map(|v| v.iter().map(|s| s.parse().map_err(|_| format!("--skip-entry {s}: not a number"))).collect())
        .unwrap_or(Ok(Vec::new()))?;
    let cfg = check::CheckCfg {
        log: a.req("log")?.to_string(),
        scratch: a.req("scratch")?.to_string(),
        cow: a.req("cow")?.to_string(),
        node_dir: a.get("node-dir").unwrap_or("/tmp/wbcrash-nodes").to_string(),
        points: a.num("points", 200)?,
        seed: a.num("seed", 1)?,
        stack: match a.get("stack").unwrap_or("writeboost") {
            "writeboost" => check::Stack::Writeboost,
            "raw" => check::Stack::Raw,
            s => return Err(format!("--stack {s}: writeboost or raw")),
        },
        details: a.num("details", 6)?,
        policy: match a.get("discard").unwrap_or("strict") {
            "strict" => model::DiscardPolicy::Strict,
            "lax" => model::DiscardPolicy::Lax,
            s => return Err(format!("--discard {s}: strict or lax")),
        },
        discard_as: match a.get("replay-discard").unwrap_or("zero") {
            "zero" => replay::DiscardAs::Zero,
            "keep" => replay::DiscardAs::Keep,
            s => return Err(format!("--replay-discard {s}: zero or keep")),
        },
        skip,
        drop_every: a.num("drop-every", 0)?,
        verbose: a.flags.iter().any(|f| f == "-v"),
    };
    Ok(if check::run(&cfg)? { 0 } else { 1 })
}

fn cmd_replay(a: &Args) -> Result<i32, String> {
    let logdev = dev::Dev::open(a.req("log")?, false)?;
    let size = logdev.size()?;
    let log = logfmt::parse(&dev::Window::new(&logdev, size), size)?;
    let n = if let Some(m) = a.get("until-mark") {
        log.entries
            .iter()
            .find(|e| e.mark.as_deref() == Some(m))
            .map(|e| e.index + 1)
            .ok_or_else(|| format!("no mark '{m}' in the log"))?
    } else {
        a.num("entries", log.entries.len())?
    };
    let target = dev::Dev::open(a.req("target")?, true)?;
    let mut r = replay::Replayer::new(&log, &logdev, &target, replay::DiscardAs::Zero)?;
    r.advance_to(n)?;
    println!("replayed {} of {} entries ({} KiB)", r.applied, log.entries.len(), r.bytes_written / 1024);
    Ok(0)
}

fn cmd_dump(a: &Args) -> Result<i32, String> {
    let logdev = dev::Dev::open(a.req("log")?, false)?;
    let size = logdev.size()?;
    let log = logfmt::parse(&dev::Window::new(&logdev, size), size)?;
    let tail: usize = a.num("tail", 0)?;
    let from: usize = if tail > 0 { log.entries.len().saturating_sub(tail) } else { a.num("from", 0)? };
    let count: usize = a.num("count", usize::MAX)?;
    println!("{} entries, sector size {}", log.entries.len(), log.sectorsize);
    for e in log.entries.iter().skip(from).take(count) {
        println!("{:7} {}", e.index, e.describe(log.sectorsize));
    }
    Ok(0)
}

fn cmd_ops(a: &Args) -> Result<i32, String> {
    let cfg = plan::PlanCfg {
        seed: a.num("seed", 1)?,
        ops: a.num("ops", 300)?,
        sectors: a.num("sectors", 8192)?,
        mix: a.get("mix").map(plan::Mix::parse).transpose()?.unwrap_or_default(),
    };
    let dev: u32 = a.num("dev", 1)?;
    let sector: Option<u64> = a.get("sector").map(|s| s.parse().map_err(|_| format!("--sector {s}: not a number"))).transpose()?;
    for (i, op) in plan::plan(&cfg, dev).iter().enumerate() {
        let touches = match (sector, op.range()) {
            (None, _) => true,
            (Some(x), Some((s, l))) => x >= s && x < s + l as u64,
            (Some(_), None) => true,
        };
        if touches {
            match op.range() {
                Some((s, l)) => println!("dev {dev} op {}: {} {s}+{l}", i + 1, op.name()),
                None => println!("dev {dev} op {}: {}", i + 1, op.name()),
            }
        }
    }
    Ok(0)
}

fn cmd_mark(a: &Args) -> Result<i32, String> {
    let text = a.free.first().ok_or("mark needs TEXT")?;
    work::mark(&dm::Dm::open()?, a.req("log")?, text)?;
    Ok(0)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        eprintln!("{USAGE}");
        exit(2);
    };
    let rest = &argv[1..];
    let r = match cmd.as_str() {
        "work" => parse_args(rest, &["log", "dev", "seed", "ops", "mix", "pause-every", "pause-ms"]).and_then(|a| cmd_work(&a)),
        "check" => parse_args(
            rest,
            &["log", "scratch", "cow", "points", "seed", "stack", "details", "discard", "replay-discard", "skip-entry", "drop-every", "node-dir"],
        )
        .and_then(|a| cmd_check(&a)),
        "replay" => parse_args(rest, &["log", "target", "entries", "until-mark"]).and_then(|a| cmd_replay(&a)),
        "dump" => parse_args(rest, &["log", "from", "count", "tail"]).and_then(|a| cmd_dump(&a)),
        "mark" => parse_args(rest, &["log"]).and_then(|a| cmd_mark(&a)),
        "ops" => parse_args(rest, &["seed", "ops", "sectors", "dev", "sector", "mix"]).and_then(|a| cmd_ops(&a)),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        _ => Err(format!("unknown command '{cmd}'\n{USAGE}")),
    };
    match r {
        Ok(code) => exit(code),
        Err(e) => {
            eprintln!("wbcrash {cmd}: {e}");
            exit(2);
        }
    }
}
