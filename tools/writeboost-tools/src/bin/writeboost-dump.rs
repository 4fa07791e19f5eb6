//! writeboost-dump: shows the on-disk metadata of a writeboost cache device
//! or image: superblock, both record slots, the device registry, and the
//! segment slots (with `--lines`, every metablock).
//!
//! Exit status: 0 = shown, 1 = the superblock is invalid (only the record
//! slots are shown), 2 = usage or I/O error.

use clap::Parser;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use writeboost_tools::device::CacheDevice;
use writeboost_tools::inspect::{dump, DumpReport, RecordSlotInfo, SegmentSelection};
use writeboost_tools::{emit, human_size};

/// Show the on-disk metadata of a writeboost cache device or image.
#[derive(Parser)]
#[command(name = "writeboost-dump", version)]
struct Args {
    /// Cache device or image file (read only).
    device: PathBuf,
    /// Print JSON instead of text (an error before the report, exit status
    /// 2, is {"device", "outcome": "error", "error"}; a usage error, such as
    /// an unknown flag, {"outcome": "error", "error"}).
    #[arg(long)]
    json: bool,
    /// Segment slots to list: all, valid (the replayable log), none, N (one
    /// slot) or N..M (slots N to M-1).
    #[arg(long, default_value = "all", value_name = "WHICH")]
    segments: SegmentSelection,
    /// Also list the metablocks (line k, device id, sector, dirty bits, and
    /// "clean line" for a line cached by read caching, never written back)
    /// of the listed segments. The segment table's "dirty" and "clean"
    /// columns count the two kinds of lines.
    #[arg(long)]
    lines: bool,
}

fn main() -> ExitCode {
    let args: Args = match writeboost_tools::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let result =
        CacheDevice::open(&args.device).and_then(|dev| dump(&dev, args.segments, args.lines));
    let rep = match result {
        Ok(r) => r,
        Err(e) => return writeboost_tools::fail("writeboost-dump", "device", &args.device, &format!("{e:#}"), args.json),
    };
    let text = if args.json {
        match serde_json::to_string_pretty(&rep) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("writeboost-dump: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        render(&rep, args.segments, args.lines)
    };
    if let Err(e) = emit(&text) {
        eprintln!("writeboost-dump: {e}");
        return ExitCode::from(2);
    }
    if rep.superblock.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn record_line(out: &mut String, r: &RecordSlotInfo) {
    let _ = write!(
        out,
        "record slot {} (block {}): {}",
        r.slot, r.block, r.status
    );
    match (&r.error, r.generation, r.last_migrated_segment_id) {
        (Some(e), _, _) => {
            let _ = writeln!(out, ": {e}");
        }
        (None, Some(g), Some(lm)) => {
            let _ = writeln!(out, ", generation {g}, last migrated segment {lm}");
            if r.registry.is_empty() {
                let _ = writeln!(out, "  registered devices: none");
            } else {
                let list: Vec<String> = r
                    .registry
                    .iter()
                    .map(|e| match e.backing_identity {
                        Some(x) => format!("{} ({} sectors, identity {x:#018x})", e.device_id, e.backing_sectors),
                        None => format!("{} ({} sectors)", e.device_id, e.backing_sectors),
                    })
                    .collect();
                let _ = writeln!(out, "  registered devices: {}", list.join(", "));
            }
        }
        _ => {
            let _ = writeln!(out);
        }
    }
}

fn bits_map(bits: u8) -> String {
    (0..8)
        .map(|j| if bits & (1 << j) != 0 { 'X' } else { '.' })
        .collect()
}

fn render(rep: &DumpReport, sel: SegmentSelection, lines: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "device {}: {} sectors ({})",
        rep.device,
        rep.device_sectors,
        human_size(rep.device_sectors)
    );
    match (&rep.superblock, &rep.superblock_error) {
        (Some(sb), _) => {
            let _ = writeln!(
                out,
                "superblock: format v{}, format id {}, {} segments, formatted for {} sectors on {}{}, {} segment checksums",
                sb.version,
                sb.format_id,
                sb.nr_segments,
                sb.device_sectors,
                sb.format_time_utc,
                if sb.log_horizon == 0 {
                    String::from(" (no log horizon: resume reads every slot past the log)")
                } else {
                    format!(", log horizon {}", sb.log_horizon)
                }, sb.segment_checksum
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "superblock: INVALID: {e}");
        }
        (None, None) => {}
    }
    for r in &rep.records {
        record_line(&mut out, r);
    }
    match (rep.log_first_id, rep.log_last_id) {
        (Some(a), Some(b)) if b >= a => {
            let _ = writeln!(
                out,
                "replayable log: segments {a}..={b} ({} segments)",
                b - a + 1
            );
        }
        (Some(a), Some(_)) => {
            let _ = writeln!(
                out,
                "replayable log: empty (every segment up to {} is migrated)",
                a - 1
            );
        }
        _ => {}
    }
    if rep.superblock.is_none() || sel == SegmentSelection::None {
        return out;
    }
    let which = match sel {
        SegmentSelection::All => "all slots".to_string(),
        SegmentSelection::Valid => "the replayable log".to_string(),
        SegmentSelection::Range(a, b) => format!("slots {a}..{b}"),
        SegmentSelection::None => String::new(),
    };
    let _ = writeln!(out, "segments ({which}):");
    let _ = writeln!(
        out,
        "{:>8} {:>12} {:>5} {:>5} {:>5} {:>6}  status",
        "slot", "id", "lines", "dirty", "clean", "direct"
    );
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for s in &rep.segments {
        let mut status = s.status.clone();
        if s.in_log {
            status.push_str(", in log");
        }
        if let Some(e) = &s.error {
            status.push_str(": ");
            status.push_str(e);
        }
        let _ = writeln!(
            out,
            "{:>8} {:>12} {:>5} {:>5} {:>5} {:>6}  {}",
            s.slot,
            dash(s.id.map(|v| v.to_string())),
            dash(s.nr_lines.map(|v| v.to_string())),
            dash(s.dirty_lines.map(|v| v.to_string())),
            dash(s.clean_lines.map(|v| v.to_string())),
            dash(s.direct_lines.map(|v| v.to_string())),
            status
        );
        if lines {
            if let Some(ls) = &s.lines {
                for l in ls {
                    let _ = writeln!(
                        out,
                        "{:>14} k {:>3}  device {:>3}  sector {:>14}  {} {:#04x} {}",
                        "",
                        l.k,
                        l.device_id,
                        l.sector,
                        if l.clean {
                            "clean line"
                        } else if l.direct {
                            "dirty (direct)"
                        } else {
                            "dirty"
                        },
                        l.dirty_bits,
                        bits_map(l.dirty_bits)
                    );
                }
            }
        }
    }
    out
}
