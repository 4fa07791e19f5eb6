//! writeboost-check: verifies a writeboost cache device or image the way the
//! kernel's recovery reads it: superblock, record slots, then the log from
//! `last_migrated_segment_id + 1` (headers, checksums, replay into the
//! index), where and why the log ends, the slots past the end, and the
//! devices owning dirty data against the record's registry.
//!
//! Exit status: 0 = consistent (a torn segment just past the log end is
//! normal after a crash and only noted), 1 = inconsistent or corrupt, 2 =
//! usage or I/O error.

use clap::Parser;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use writeboost_tools::device::CacheDevice;
use writeboost_tools::inspect::{check, CheckReport};
use writeboost_tools::{emit, human_size};

/// Check the consistency of a writeboost cache device or image.
#[derive(Parser)]
#[command(name = "writeboost-check", version)]
struct Args {
    /// Cache device or image file (read only).
    device: PathBuf,
    /// Print JSON instead of text (an error before the report, exit status
    /// 2, is {"device", "outcome": "error", "error"}; a usage error, such as
    /// an unknown flag, {"outcome": "error", "error"}).
    #[arg(long)]
    json: bool,
    /// Print nothing on standard output, not even with --json: only the exit
    /// status tells the result (an error still goes to standard error).
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args: Args = match writeboost_tools::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let rep = match CacheDevice::open(&args.device).and_then(|dev| check(&dev)) {
        Ok(r) => r,
        Err(e) => return writeboost_tools::fail("writeboost-check", "device", &args.device, &format!("{e:#}"), args.json && !args.quiet),
    };
    if !args.quiet {
        let text = if args.json {
            match serde_json::to_string_pretty(&rep) {
                Ok(s) => s + "\n",
                Err(e) => {
                    eprintln!("writeboost-check: {e}");
                    return ExitCode::from(2);
                }
            }
        } else {
            render(&rep)
        };
        if let Err(e) = emit(&text) {
            eprintln!("writeboost-check: {e}");
            return ExitCode::from(2);
        }
    }
    if rep.consistent {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn render(rep: &CheckReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "device {}: {} sectors ({})",
        rep.device,
        rep.device_sectors,
        human_size(rep.device_sectors)
    );
    if let Some(sb) = &rep.superblock {
        let _ = writeln!(
            out,
            "superblock: ok (format id {}, {} segments, formatted {})",
            sb.format_id, sb.nr_segments, sb.format_time_utc
        );
    }
    for r in &rep.records {
        match (&r.error, r.generation, r.last_migrated_segment_id) {
            (None, Some(g), Some(lm)) => {
                let _ = writeln!(
                    out,
                    "record slot {}: {}, generation {g}, last migrated segment {lm}",
                    r.slot, r.status
                );
            }
            (Some(e), _, _) => {
                let _ = writeln!(out, "record slot {}: invalid: {e}", r.slot);
            }
            _ => {}
        }
    }
    if let Some(log) = &rep.log {
        if log.replayed == 0 {
            let _ = writeln!(
                out,
                "log: empty (every segment up to {} is migrated); next segment id {}",
                log.last_migrated_segment_id, log.next_id
            );
        } else {
            let _ = writeln!(
                out,
                "log: segments {}..={} replayable ({} segments); next segment id {}",
                log.first_id, log.last_id, log.replayed, log.next_id
            );
        }
        let _ = writeln!(out, "log end ({}): {}", log.end_kind, log.end);
        let _ = writeln!(
            out,
            "dirty lines after replay: {} ({} older lines fully superseded)",
            log.dirty_lines, log.superseded_lines
        );
        for d in &log.devices {
            let reg = match d.registered_sectors {
                Some(s) => format!("registered, {s} sectors"),
                None => "NOT registered".into(),
            };
            let _ = writeln!(
                out,
                "  device {}: {} dirty lines ({reg})",
                d.device_id, d.dirty_lines
            );
        }
    }
    for n in &rep.notes {
        let _ = writeln!(out, "note: {}", n.message);
    }
    for p in &rep.problems {
        let _ = writeln!(out, "PROBLEM ({}): {}", p.code, p.message);
    }
    if rep.consistent {
        let _ = writeln!(out, "result: consistent");
    } else {
        let n = rep.problems.len();
        let _ = writeln!(
            out,
            "result: INCONSISTENT ({n} problem{})",
            if n == 1 { "" } else { "s" }
        );
    }
    out
}
