//! Backing-disk utilisation from `/proc/diskstats`.
//!
//! Lines are parsed field by field (`procfs-core`), matched by
//! `major:minor` (so partitions and DM devices work), and the utilisation
//! is the share of wall-clock time the device had I/O in flight:
//! `Δio_ticks / Δelapsed`, field 13 ("time spent doing I/Os", ms). Unlike
//! the seed's sum of read and write latencies over the nominal interval, it
//! is always within 0..100 % and right when the daemon runs late.

use std::collections::HashMap;
use std::io::BufRead;

use procfs_core::DiskStat;

use crate::blockdev::DevNo;
use crate::error::{Error, Result};

/// The counters of one device at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Milliseconds with I/O in flight (io_ticks).
    pub io_ticks_ms: u64,
    /// When it was read, in ms of a monotonic clock.
    pub at_ms: u64,
}

/// Parses `/proc/diskstats` text into io_ticks by device number.
pub fn parse(text: &str) -> Result<HashMap<DevNo, DiskStat>> {
    let mut m = HashMap::new();
    for (i, line) in text.as_bytes().lines().enumerate() {
        let line = line.map_err(|e| Error::failed(format!("/proc/diskstats: {}", e)))?;
        if line.trim().is_empty() {
            continue;
        }
        let s = DiskStat::from_line(&line)
            .map_err(|e| Error::failed(format!("/proc/diskstats line {}: cannot parse '{}': {}", i + 1, line.trim(), e)))?;
        if s.major < 0 || s.minor < 0 {
            return Err(Error::failed(format!("/proc/diskstats line {}: bad device number", i + 1)));
        }
        m.insert(DevNo { major: s.major as u32, minor: s.minor as u32 }, s);
    }
    Ok(m)
}

/// Reads and parses `/proc/diskstats`.
pub fn read() -> Result<HashMap<DevNo, DiskStat>> {
    let p = std::path::Path::new("/proc/diskstats");
    let text = std::fs::read_to_string(p).map_err(|e| Error::io("cannot read", p, e))?;
    parse(&text)
}

/// Utilisation in percent (0..=100) between two samples of one device, or
/// `None` when it cannot be known: no time passed, or the counter went
/// back by more than a 32-bit wrap explains (the device was re-created).
pub fn utilisation(prev: Sample, cur: Sample) -> Option<f64> {
    let elapsed = cur.at_ms.checked_sub(prev.at_ms)?;
    if elapsed == 0 {
        return None;
    }
    let busy = if cur.io_ticks_ms >= prev.io_ticks_ms {
        cur.io_ticks_ms - prev.io_ticks_ms
    } else if prev.io_ticks_ms <= u64::from(u32::MAX) {
        // The kernel prints io_ticks as a 32-bit count of ms.
        (cur.io_ticks_ms + (1u64 << 32)).checked_sub(prev.io_ticks_ms)?
    } else {
        return None;
    };
    if busy > elapsed.saturating_mul(2) + 1000 {
        return None;
    }
    Some((busy as f64 * 100.0 / elapsed as f64).min(100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
 254       0 vda 1200 0 96000 5300 84000 10 672000 912345 0 80123 917645 0 0 0 0 210 22
 254       1 vda1 100 0 800 50 20 0 160 40 0 60 90 0 0 0 0 0 0
 254      16 vdb 300 0 2400 100 9000 0 72000 4000 2 7000 4100 12 0 96 3
 253       0 dm-0 5 0 40 0 0 0 0 0 0 4 4
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
";

    #[test]
    fn parses_all_field_counts() {
        let m = parse(TEXT).unwrap();
        assert_eq!(m.len(), 5);
        let vda = &m[&DevNo { major: 254, minor: 0 }];
        assert_eq!(vda.name, "vda");
        assert_eq!(vda.time_in_progress, 80123);
        assert_eq!(vda.time_writing, 912345);
        assert_eq!(vda.flushes, Some(210));
        // A partition is its own line, found by its own number.
        assert_eq!(m[&DevNo { major: 254, minor: 1 }].time_in_progress, 60);
        // 18-field (no flush) and 14-field (old kernel) lines.
        assert_eq!(m[&DevNo { major: 254, minor: 16 }].flushes, None);
        assert_eq!(m[&DevNo { major: 254, minor: 16 }].discards, Some(12));
        assert_eq!(m[&DevNo { major: 253, minor: 0 }].time_in_progress, 4);
    }

    #[test]
    fn rejects_garbage() {
        let e = parse("254 0 vda 1 2 3\n").unwrap_err();
        assert!(e.to_string().contains("/proc/diskstats line 1"), "{e}");
        assert!(parse("x 0 vda 0 0 0 0 0 0 0 0 0 0 0\n").is_err());
        assert!(parse("\n\n").unwrap().is_empty());
    }

    fn s(t: u64, at: u64) -> Sample {
        Sample { io_ticks_ms: t, at_ms: at }
    }

    #[test]
    fn utilisation_uses_elapsed_time() {
        // 500 ms busy in 1 s: 50 %.
        assert_eq!(utilisation(s(1000, 0), s(1500, 1000)), Some(50.0));
        // The daemon ran late: 2.5 s elapsed, not the nominal 1 s.
        assert_eq!(utilisation(s(1000, 0), s(1500, 2500)), Some(20.0));
        // Idle and saturated.
        assert_eq!(utilisation(s(7, 0), s(7, 1000)), Some(0.0));
        assert_eq!(utilisation(s(0, 0), s(1000, 1000)), Some(100.0));
        // Rounding of the kernel's tick accounting never exceeds 100 %.
        assert_eq!(utilisation(s(0, 0), s(1004, 1000)), Some(100.0));
    }

    #[test]
    fn utilisation_unknown_or_wrapped() {
        assert_eq!(utilisation(s(0, 1000), s(10, 1000)), None);
        assert_eq!(utilisation(s(0, 1000), s(10, 500)), None);
        // 32-bit wrap of io_ticks.
        let u = utilisation(s(u64::from(u32::MAX) - 99, 0), s(400, 1000)).unwrap();
        assert!((u - 50.0).abs() < 0.2, "{u}");
        // Went back: a new device with the same number.
        assert_eq!(utilisation(s(5_000_000, 0), s(10, 1000)), None);
        // Jumped far beyond the elapsed time.
        assert_eq!(utilisation(s(0, 0), s(1_000_000, 1000)), None);
    }
}
