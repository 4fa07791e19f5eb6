//! writeboost-recover: writes the dirty data of a writeboost cache device
//! back to its backing disks from userland, without the kernel module (after
//! a kernel upgrade the module does not build for, or to retire a cache).
//! See `writeboost_tools::recover`.
//!
//! Exit status: 0 = done (the cache is clean), or a dry run that would
//! succeed; 1 = refused, nothing changed; 2 = usage or I/O error before
//! anything changed; 3 = failed part-way (what the record says is written
//! back is on the disks; rerun); 130 = interrupted (the same).

use clap::Parser;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use writeboost_tools::recover::{recover, Options, Progress, Report, MAX_BATCH};
use writeboost_tools::{emit, human_size};

const EXAMPLE: &str = "\
Example (tests/guest/recover-offline: two devices shared cache /dev/vdb when
the power was cut; this boot has no writeboost module; shortened):

  # writeboost-recover /dev/vdb --map 1=/dev/mapper/back1 --map 2=/dev/mapper/back2 --dry-run
  cache /dev/vdb: 127 segments, format id 0x0d1e8dfacbfcdce4, record generation 3
  log: 22 segments replayed (1..=22, last migrated 0), ends before segment 23 (slot 22): no
  segment header (bad magic): never written or overwritten
  device 1: /dev/mapper/back1 (24576 sectors; registered 24576), identity matches (dm-name:back1)
    1306 dirty lines, 8726 sectors (4.3 MiB) in 357 writes
  device 2: /dev/mapper/back2 (24576 sectors; registered 24576), identity matches (dm-name:back2)
    1333 dirty lines, 8912 sectors (4.4 MiB) in 358 writes
  would write (device, first sector, sectors, bytes):
    1 88 1 512
    1 101 1 512
    ...
  dry run: nothing was written; 8.6 MiB would be written in 715 writes, 1 round, then the cache
  marked clean
  # writeboost-recover /dev/vdb --map 1=/dev/mapper/back1 --map 2=/dev/mapper/back2
  ...
  wrote 8.6 MiB (715 writes) in 1 round and flushed the disks; the record now says every
  segment up to 22 is migrated: the cache is clean (read back: resume replays 0 segments, 0
  dirty lines)
  # writeboost-recover /dev/vdb --map 1=/dev/mapper/back1 --map 2=/dev/mapper/back3
  ...
  REFUSED (identity): device 2: /dev/mapper/back3 is another disk than the one the cache
  registered (registered identity 0xc98db0c608d2c467, this disk 0xc98dafc608d2c2b4 =
  dm-name:back3): wrong disk? (--ignore-identity writes to it anyway)
  refused: nothing was changed

Every registered device id needs --map ID=DISK (or --skip-device ID, which
drops its data). A backing disk must be at least as large as registered and,
when the record holds its identity, be that disk: a device-mapper device
under the same DM uuid (else name), a SCSI or NVMe disk with the same
unique id, another disk under the same kernel name; an image file has no
identity (--ignore-identity). Nothing is written before every check passed.

Exit status: 0 done (the cache is clean), or a dry run that would succeed;
1 refused, nothing changed; 2 usage or I/O error before anything changed;
3 failed part-way; 130 interrupted (for both: what the record says is
migrated is on the disks, the rest is still dirty in the cache: run the same
command again).";

/// Write a writeboost cache's dirty data back to its backing disks, without
/// the kernel module.
///
/// Reads the superblock, the record and the log exactly as the module's
/// resume_cache does (the same code), then writes every line still dirty,
/// newest copy only, 512-byte sectors as the module's write-back does, in
/// its order: rounds of segments oldest first, each round's writes sorted by
/// device and sector, every disk flushed, then the record written saying
/// how far the log is written back. At the end the record says everything
/// is migrated: a later resume_cache replays nothing. Ctrl-C stops after the
/// write in flight (what was written is flushed and stays written; a rerun
/// goes on from the last record); a second Ctrl-C ends it at once. The
/// cache device and the disks are opened exclusively: the cache must not be
/// resumed by the module.
#[derive(Parser)]
#[command(name = "writeboost-recover", version, after_help = EXAMPLE)]
struct Args {
    /// The cache device (or image file).
    cache: PathBuf,
    /// Backing disk of a device id: ID=DISK (repeat for each device).
    #[arg(long = "map", value_name = "ID=DISK", value_parser = parse_map)]
    maps: Vec<(u8, PathBuf)>,
    /// List what would be written (devices, sector ranges, bytes); change
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of text (an error before the report, exit status
    /// 2, is {"cache", "outcome": "error", "error"}; a usage error, such as
    /// an unknown flag, {"outcome": "error", "error"}).
    #[arg(long)]
    json: bool,
    /// Do not write device ID's dirty data anywhere: it is DROPPED when the
    /// cache is marked clean (a disk that is gone for good).
    #[arg(long = "skip-device", value_name = "ID")]
    skip: Vec<u8>,
    /// Go on when the log's end is proven lost (a corrupt segment that a
    /// later one shows was durable), dropping it, as `resume_cache <dev>
    /// accept_data_loss` does.
    #[arg(long)]
    accept_data_loss: bool,
    /// Write to a disk whose identity differs from the one the cache
    /// registered, or cannot be compared (an image file).
    #[arg(long)]
    ignore_identity: bool,
    /// Segments per write-back round (1..=32).
    #[arg(long, default_value_t = MAX_BATCH, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH as i64))]
    batch: u32,
    /// Show progress on standard error even when it is not a terminal (a
    /// line every 5 s; a bar on a terminal is shown without it).
    #[arg(long)]
    progress: bool,
    /// No progress display, even on a terminal.
    #[arg(long, conflicts_with = "progress")]
    no_progress: bool,
}

fn parse_map(s: &str) -> Result<(u8, PathBuf), String> {
    let (id, path) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected ID=DISK, e.g. 1=/dev/sdb"))?;
    let id: u8 = id.trim().parse().map_err(|_| format!("{s:?}: {id:?} is not a device id (1..=127)"))?;
    if path.is_empty() {
        return Err(format!("{s:?}: no disk given"));
    }
    Ok((id, PathBuf::from(path)))
}

/// A bar on a terminal, plain lines with `--progress` otherwise.
struct Shown {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    total: u64,
    done: u64,
    last: Instant,
}

impl Progress for Shown {
    fn start(&mut self, total: u64) {
        self.total = total;
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
        if self.plain {
            eprintln!("writing back {} ...", human_size(total / 512));
        }
    }
    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if let Some(b) = &self.bar {
            b.inc(bytes);
        } else if self.plain && self.last.elapsed() >= Duration::from_secs(5) {
            eprintln!("written {} of {}", human_size(self.done / 512), human_size(self.total / 512));
            self.last = Instant::now();
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// An error before the report (exit status 2; JSON too with `--json`).
fn fail(args: &Args, msg: &str) -> ExitCode {
    writeboost_tools::fail("writeboost-recover", "cache", &args.cache, msg, args.json)
}

fn main() -> ExitCode {
    let args: Args = match writeboost_tools::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut maps = BTreeMap::new();
    for (id, p) in &args.maps {
        if maps.insert(*id, p.clone()).is_some() {
            return fail(&args, &format!("--map {id}=... is given twice"));
        }
    }
    let opts = Options {
        maps,
        skip: args.skip.clone(),
        accept_data_loss: args.accept_data_loss,
        ignore_identity: args.ignore_identity,
        dry_run: args.dry_run,
        batch: args.batch,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        // A second signal ends the program at once (a write hanging on a
        // dead disk): the record does not cover the round in flight.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let tty = writeboost_tools::fancy_terminal();
    let show = !args.no_progress && !args.dry_run && (tty || args.progress);
    let bar = (show && tty).then(|| {
        let b = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
        b.set_style(
            indicatif::ProgressStyle::with_template("writing back [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    });
    let mut shown = Shown { plain: show && bar.is_none(), bar, total: 0, done: 0, last: Instant::now() };
    let rep = match recover(&args.cache, &opts, &mut shown, &stop) {
        Ok(r) => r,
        Err(e) => return fail(&args, &format!("{e:#}")),
    };
    let text = if args.json { serde_json::to_string_pretty(&rep).map(|s| s + "\n").map_err(|e| e.to_string()) } else { Ok(render(&rep)) };
    // The exit status tells what happened to the disks, so a report that
    // cannot be printed (a full disk or closed pipe on standard output)
    // does not change it: the work is done either way.
    if let Err(e) = text.and_then(|t| emit(&t).map_err(|e| e.to_string())) {
        eprintln!("writeboost-recover: cannot print the report ({e}); the outcome was: {}", rep.outcome);
    }
    match rep.outcome.as_str() {
        "clean" | "already-clean" | "dry-run" => ExitCode::SUCCESS,
        // A usage error (a device id out of range, an id both mapped and
        // skipped) is exit 2, as --help says; the report still names it.
        "refused" if !rep.refusals.is_empty() && rep.refusals.iter().all(|r| r.code == "usage") => ExitCode::from(2),
        "refused" => ExitCode::from(1),
        "interrupted" => ExitCode::from(130),
        _ => ExitCode::from(3),
    }
}

fn render(rep: &Report) -> String {
    let mut out = String::new();
    if let (Some(n), Some(f), Some(g)) = (rep.nr_segments, &rep.format_id, rep.record_generation) {
        let _ = writeln!(out, "cache {}: {n} segments, format id {f}, record generation {g}", rep.cache);
    }
    if let (Some(r), Some(last), Some(lm)) = (rep.replayed, rep.log_last_id, rep.last_migrated_before) {
        let end = rep.log_end.as_deref().map(|e| format!(", ends {e}")).unwrap_or_default();
        if r == 0 {
            let _ = writeln!(out, "log: empty (every segment up to {lm} is migrated){end}");
        } else {
            let _ = writeln!(out, "log: {r} segments replayed ({}..={last}, last migrated {lm}){end}", lm + 1);
        }
    }
    if rep.invalidated_headers > 0 {
        let verb = if rep.dry_run || rep.outcome == "refused" { "would invalidate" } else { "invalidated" };
        let _ = writeln!(out, "{verb} {} stale segment headers past the end of the log (as resume does)", rep.invalidated_headers);
    }
    for d in &rep.devices {
        let mut line = format!("device {}:", d.device_id);
        if d.skipped {
            line += " skipped (--skip-device: its data is dropped)";
        } else if let Some(b) = &d.backing {
            line += &format!(" {b}");
            if let Some(s) = d.backing_sectors {
                line += &format!(" ({s} sectors; registered {})", d.registered_sectors.unwrap_or(0));
            }
            match d.identity_check.as_deref() {
                Some("match") => line += &format!(", identity matches ({})", d.backing_identity_name.as_deref().unwrap_or("?")),
                Some("not-recorded") => line += ", no identity recorded (checked by size)",
                Some(other) => line += &format!(", identity {other}"),
                None => {}
            }
        } else {
            match d.registered_sectors {
                Some(s) => line += &format!(" registered ({s} sectors), no --map"),
                None => line += " not registered",
            }
        }
        let _ = writeln!(out, "{line}");
        let _ = writeln!(
            out,
            "  {} dirty lines, {} sectors ({}){}",
            d.dirty_lines,
            d.dirty_sectors,
            human_size(d.dirty_sectors),
            if d.writes > 0 { format!(" in {} writes", d.writes) } else { String::new() }
        );
    }
    if !rep.writes.is_empty() {
        let _ = writeln!(out, "would write (device, first sector, sectors, bytes):");
        for w in &rep.writes {
            let _ = writeln!(out, "  {} {} {} {}", w.device_id, w.sector, w.sectors, w.bytes);
        }
    }
    for w in &rep.warnings {
        let _ = writeln!(out, "warning ({}): {}", w.code, w.message);
    }
    for r in &rep.refusals {
        let _ = writeln!(out, "REFUSED ({}): {}", r.code, r.message);
    }
    let rounds = |n: u64| format!("{n} round{}", if n == 1 { "" } else { "s" });
    let writes: u64 = rep.devices.iter().map(|d| d.writes).sum();
    let dropped = if rep.bytes_dropped > 0 { format!("; {} of skipped devices dropped", human_size(rep.bytes_dropped / 512)) } else { String::new() };
    let _ = match rep.outcome.as_str() {
        "refused" => writeln!(out, "refused: nothing was changed"),
        "dry-run" => writeln!(
            out,
            "dry run: nothing was written; {} would be written in {} writes, {}{dropped}, then the cache marked clean",
            human_size(rep.bytes_written / 512),
            writes,
            rounds(rep.rounds)
        ),
        "already-clean" => writeln!(out, "nothing to write: the cache is clean (a resume_cache replays nothing)"),
        "clean" => writeln!(
            out,
            "wrote {} ({} writes) in {} and flushed the disks{dropped}; the record now says every segment up to {} is migrated: \
             the cache is clean (read back: resume replays {} segments, {} dirty lines)",
            human_size(rep.bytes_written / 512),
            writes,
            rounds(rep.rounds),
            rep.last_migrated_after.unwrap_or(0),
            rep.verify_replayed.unwrap_or(0),
            rep.verify_dirty_lines.unwrap_or(0)
        ),
        "interrupted" => writeln!(
            out,
            "interrupted: {} of {} written and flushed; the record says segments up to {} are migrated; the rest is still dirty in \
             the cache: run the same command again to go on",
            human_size(rep.bytes_written / 512),
            human_size(rep.bytes_total / 512),
            rep_last(rep)
        ),
        _ => writeln!(
            out,
            "FAILED: {}; {} written; the record says segments up to {} are migrated (their data is on the disks); the rest is still \
             dirty in the cache: fix the cause and run the same command again",
            rep.error.as_deref().unwrap_or("?"),
            human_size(rep.bytes_written / 512),
            rep_last(rep)
        ),
    };
    out
}

fn rep_last(rep: &Report) -> u64 {
    rep.last_migrated_after.or(rep.last_migrated_before).unwrap_or(0)
}
